"""Ablations: full PPO against PPO with one stabilising mechanism removed at a time.

Full PPO here is the env's preset (ppo_ref.train.config.PRESETS) with every mechanism on:

    the ratio clip           min(r A, clip(r, 1-eps, 1+eps) A)       off: the unclipped surrogate r A
    advantage normalisation  A <- (A - mean A) / std A per minibatch  off: raw GAE advantages
    value-loss clipping      V clipped to eps around V_old            off: plain 0.5 (V - R)^2
    the entropy bonus        + 0.01 H[pi]                             off: ent_coef 0
    global gradient clipping ||g|| <= 0.5                             off: max_grad_norm inf
    learning-rate annealing  lr linearly to 0                         off: constant lr
    orthogonal initialisation (gains sqrt 2 / 0.01 / 1)               off: Gaussian N(0, gain^2 / fan_in)
    observation normalisation  running mean/std                       off: raw observations
    reward scaling           r / std(discounted return)                off: raw rewards

(Engstrom et al. 2020, "Implementation Matters in Deep Policy Gradients"; Andrychowicz et al.
2021, "What Matters for On-Policy Deep Actor-Critic Methods?".) The trainer has no init switch,
so the Gaussian arm re-draws the weights of the agent the trainer builds (gaussian_init below):
the same scale per layer as the orthogonal init, so the arm isolates orthogonality itself.

The score of a run is its AUC: the mean of its training learning curve (mean return of the last
20 episodes) over the steps it spans, as `ppo-ref compare --metric auc` computes it. Per arm:
the IQM of the seeds' AUCs with a 95 % bootstrap CI, and P(full > ablated), the probability that
a full run beats an ablated one, with a 95 % CI from resampling both groups' runs (ppo_ref.stats,
Agarwal et al. 2021). A P whose CI lies above 0.5 means the mechanism helps here.

    python demos/ablations.py --out out/ablations --quick     # ~10 s: 2 seeds, 1024 steps
    python demos/ablations.py --out out/ablations             # 10 seeds x 10 arms x 2 envs

Full mode: 200 runs of 100k steps (CartPole-v1 and Acrobot-v1 presets). Runtime on 2 cores,
an estimate from measured shorter runs of the full-PPO configs (20k steps took 3.7 s on
CartPole-v1, 2.7 s on Acrobot-v1, one core): 100 x 18.5 s + 100 x 13.5 s over 2 workers, about
27 minutes on an idle machine. The sweep is kept in OUT/runs: kill it and run the
same command again, and it resumes (finished runs are not trained again).
"""
from __future__ import annotations

import _common

import contextlib
import dataclasses
import math

import numpy as np

from ppo_ref import compare, sweep
from ppo_ref.train import state as train_state
from ppo_ref.train.config import PPOConfig, PRESETS

ENVS = ("CartPole-v1", "Acrobot-v1")
# arm -> what it changes in full PPO
ABLATIONS = {
    "full PPO": {},
    "- ratio clip": {"objective": "unclipped"},
    "- advantage norm": {"norm_adv": False},
    "- value clip": {"clip_vloss": False},
    "- entropy bonus": {"ent_coef": 0.0},
    "- grad clip": {"max_grad_norm": math.inf},
    "- lr annealing": {"anneal_lr": False},
    "- orthogonal init": {"init": "gaussian"},
    "- obs norm": {"normalize_obs": False},
    "- reward scaling": {"scale_rewards": False},
}


@dataclasses.dataclass(frozen=True)
class Arm:
    """A sweep cell's config: a PPOConfig and the initialisation, which PPOConfig lacks."""
    config: PPOConfig
    init: str = "orthogonal"          # orthogonal (the trainer's) | gaussian

    @property
    def env_id(self) -> str:
        return self.config.env_id

    @property
    def objective(self) -> str:
        return self.config.objective


@contextlib.contextmanager
def gaussian_init():
    """While active, the agent a run builds gets Gaussian weights W ~ N(0, gain^2 / fan_in) in
    place of orthogonal ones, each layer keeping its gain (sqrt 2 hidden, 0.01 policy head, 1
    value head), drawn from the run's own init generator after the orthogonal draw."""
    build = train_state.build_agent

    def build_gaussian(config, observation_space, action_space, rng):
        agent = build(config, observation_space, action_space, rng)
        for mlp, head_gain in ((agent.pi, 0.01), (agent.vf, 1.0)):
            for i, layer in enumerate(mlp.layers):
                gain = head_gain if i == len(mlp.layers) - 1 else math.sqrt(2)
                w = rng.normal(0.0, gain / math.sqrt(layer.in_features), layer.weight.data.shape)
                layer.weight.data[...] = w.astype(layer.weight.data.dtype)
        return agent

    train_state.build_agent = build_gaussian
    try:
        yield
    finally:
        train_state.build_agent = build


def train_arm(arm: Arm, seed: int, run_dir) -> list:
    """The sweep job: train the arm's config into run_dir (resuming what is there)."""
    init = gaussian_init() if arm.init == "gaussian" else contextlib.nullcontext()
    with init:
        return sweep.train_history(arm.config, seed, run_dir)


def full_config(env_id: str, quick: bool) -> PPOConfig:
    config = dataclasses.replace(PRESETS[env_id], objective="clip", norm_adv=True,
                                 clip_vloss=True, ent_coef=0.01, max_grad_norm=0.5,
                                 anneal_lr=True, normalize_obs=True, scale_rewards=True)
    if quick:
        config = quick_config(config)
    return config


def quick_config(config: PPOConfig) -> PPOConfig:
    """A few updates with small batches (every env finishes an episode: Acrobot's last 500 steps)."""
    return dataclasses.replace(config, total_steps=1024, num_envs=2, num_steps=256,
                               num_minibatches=2, update_epochs=1, eval_episodes=1)


def make_arms(configs: dict) -> dict:
    """name -> Arm for every (env, ablation); name is 'ENV|ablation'."""
    arms = {}
    for env_id, base in configs.items():
        for name, change in ABLATIONS.items():
            change = dict(change)
            init = change.pop("init", "orthogonal")
            arms[f"{env_id}|{name}"] = Arm(dataclasses.replace(base, **change), init)
    return arms


def auc_per_seed(rows, run: str) -> list:
    """One AUC per seed of `run` (ppo_ref.compare.score with metric auc, on the rows' curve)."""
    scores = []
    for seed in sorted({r["seed"] for r in rows if r["run"] == run}):
        curve = [r for r in rows if r["run"] == run and r["seed"] == seed
                 and math.isfinite(r["episodic_return"])]
        if not curve:                          # no episode finished: nothing to score
            continue
        steps = np.array([r["global_step"] for r in curve])
        returns = np.array([r["episodic_return"] for r in curve])
        scores.append(compare.score(compare.Run(run, steps, returns, np.ones_like(steps),
                                                int(steps[-1])), "auc"))
    return scores


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv,
                              extra=_common.seeds_option("seeds per arm (default 10)"))
    import matplotlib.pyplot as plt

    n_seeds = args.seeds or (2 if args.quick else 10)
    arms = make_arms({e: full_config(e, args.quick) for e in ENVS})
    rows = sweep.run_sweep(arms, seeds=range(n_seeds), job=train_arm, out_dir=args.out / "runs",
                           csv_path=args.out / "ablations.csv", progress=True)

    rng = np.random.default_rng(0)
    n_boot = 200 if args.quick else 2000
    results = {}
    for env_id in ENVS:
        full = auc_per_seed(rows, f"{env_id}|full PPO")
        results[env_id] = {}
        for name in ABLATIONS:
            scores = auc_per_seed(rows, f"{env_id}|{name}")
            verdict = compare.compare(full, scores, "auc", n_boot, rng)
            results[env_id][name] = {"auc_per_seed": scores, **verdict[("b")],
                                     "p_full_better": verdict["probability_of_improvement"],
                                     "verdict": verdict["verdict"].replace("a better",
                                                                           "full better")
                                                                  .replace("b better",
                                                                           "ablated better")}

    names = list(ABLATIONS)
    fig, axes = plt.subplots(len(ENVS), 2, figsize=(12, 3.2 * len(ENVS) + 1.0), squeeze=False)
    ypos = np.arange(len(names))[::-1]
    for row, env_id in enumerate(ENVS):
        res = results[env_id]
        ax = axes[row, 0]
        for y, name in zip(ypos, names):
            r = res[name]
            color = "C0" if name == "full PPO" else "C1"
            ax.errorbar(r["iqm"], y, xerr=[[r["iqm"] - r["iqm_ci"][0]], [r["iqm_ci"][1] - r["iqm"]]],
                        fmt="o", color=color, capsize=3)
        ax.axvline(res["full PPO"]["iqm"], color="C0", lw=0.8, ls=":")
        ax.set_yticks(ypos, names)
        ax.set_xlabel("AUC: mean training return over the run (IQM over seeds, 95 % CI)")
        ax.set_title(f"{env_id}: score of each arm", fontsize=10)
        ax.grid(alpha=0.3)
        ax = axes[row, 1]
        for y, name in zip(ypos[1:], names[1:]):
            p = res[name]["p_full_better"]
            ax.errorbar(p["estimate"], y, xerr=[[p["estimate"] - p["ci"][0]],
                                                [p["ci"][1] - p["estimate"]]],
                        fmt="s", color="C2" if p["ci"][0] > 0.5 else
                        ("C3" if p["ci"][1] < 0.5 else "0.4"), capsize=3)
        ax.axvline(0.5, color="k", lw=0.8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_yticks(ypos[1:], names[1:])
        ax.set_xlabel("P(full PPO > ablated) on AUC, 95 % CI  (green: mechanism helps; red: hurts)")
        ax.set_title(f"{env_id}: does removing it hurt?", fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(f"PPO ablations, {n_seeds} seeds per arm"
                 f"{' (quick mode: too short to mean anything)' if args.quick else ''}: "
                 f"a mechanism matters where P(full > ablated)'s CI clears 0.5", fontsize=11)
    fig.tight_layout()
    _common.save_figure(fig, args.out / "ablations.png", dpi=90)
    _common.save_json({"envs": ENVS, "seeds": list(range(n_seeds)), "n_boot": n_boot,
                       "configs": {e: dataclasses.asdict(arms[f"{e}|full PPO"].config) for e in ENVS},
                       "ablations": {k: {kk: (str(vv) if isinstance(vv, float) and math.isinf(vv)
                                              else vv) for kk, vv in v.items()}
                                     for k, v in ABLATIONS.items()},
                       "results": results}, args.out / "ablations.json")
    for env_id in ENVS:
        for name, r in results[env_id].items():
            p = r["p_full_better"]
            print(f"{env_id:12s} {name:18s} AUC IQM {r['iqm']:8.1f} [{r['iqm_ci'][0]:7.1f}, "
                  f"{r['iqm_ci'][1]:7.1f}]   P(full > it) {p['estimate']:.2f} "
                  f"[{p['ci'][0]:.2f}, {p['ci'][1]:.2f}]  {r['verdict']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
