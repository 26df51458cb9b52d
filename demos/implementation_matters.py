"""Implementation matters: PPO-M, PPO, TRPO and TRPO+ (Engstrom et al. 2020), returns and trust regions.

Engstrom et al. 2020, "Implementation Matters in Deep Policy Gradients", separate PPO's clipped
objective from its code-level optimisations and find that the optimisations carry much of PPO's
edge over TRPO, and that the ratio clip does not keep the ratio inside [1 - eps, 1 + eps]. Four
arms, as they measured:

    PPO-M   the clipped objective with none of the code-level optimisations: raw advantages,
            constant lr, no gradient clipping, no value clipping, raw observations and rewards,
            a Gaussian initialisation (ablations.gaussian_init)
    PPO     the clipped objective with all of them (ablations.full_config)
    TRPO    the trust-region step (ppo_ref.trpo, max mean KL 0.01) with none of them
    TRPO+   the trust-region step with all of them that apply to it (advantage normalisation,
            observation normalisation, reward scaling, orthogonal init, and for the value
            function lr annealing and gradient clipping)

Every other hyperparameter is the env's preset. Per update, the trust-region diagnostics:
max |r - 1| over the batch after the update (r = pi_new(a|s) / pi_old(a|s), measured here by
wrapping the trainer's update rule, which does not log it) and the exact mean
KL(pi_old || pi_new) (the trainer's kl_exact). Each panel is the IQM over seeds with a 95 %
bootstrap band; the JSON holds each arm's AUC (as `ppo-ref compare --metric auc`) with its CI and
P(X > Y) with CIs for the pairs the claims are about.

    python demos/implementation_matters.py --out out/impl --quick   # ~10 s: 2 seeds, 1024 steps
    python demos/implementation_matters.py --out out/impl           # 10 seeds x 4 arms x 2 envs

Full mode: 80 runs of 100k steps. Runtime on 2 cores, an estimate from measured 20k-step runs
of the PPO configs (3.7 s on CartPole-v1, 2.7 s on Acrobot-v1, one core): about
40 x 18.5 s + 40 x 13.5 s over 2 workers, some 11 minutes on an idle machine (TRPO's step,
conjugate gradient and line search, not measured, may cost more). The sweep is kept in OUT/runs
and resumes when the command is run again.
"""
from __future__ import annotations

import _common

import contextlib
import dataclasses
import math
from pathlib import Path

import numpy as np

from ppo_ref import compare, sweep
from ppo_ref.autodiff import no_grad
from ppo_ref.plots import groups_from_rows, plot_groups
from ppo_ref.train import update as train_update
from ppo_ref.train.trainer import train

from ablations import Arm, auc_per_seed, full_config, gaussian_init

ENVS = ("CartPole-v1", "Acrobot-v1")
ARMS = ("PPO-M", "PPO", "TRPO", "TRPO+")
NO_OPTIMISATIONS = {"norm_adv": False, "anneal_lr": False, "max_grad_norm": math.inf,
                    "clip_vloss": False, "ent_coef": 0.0, "normalize_obs": False,
                    "scale_rewards": False}
PAIRS = (("PPO", "PPO-M"), ("TRPO+", "TRPO"), ("PPO", "TRPO+"), ("PPO-M", "TRPO"),
         ("PPO", "TRPO"))


def make_arms(env_id: str, quick: bool) -> dict:
    full = full_config(env_id, quick)
    if quick:
        full = dataclasses.replace(full, update_epochs=4)      # let the ratio move
    bare = dataclasses.replace(full, **NO_OPTIMISATIONS)
    return {f"{env_id}|PPO-M": Arm(bare, "gaussian"),
            f"{env_id}|PPO": Arm(full),
            f"{env_id}|TRPO": Arm(dataclasses.replace(bare, objective="trpo"), "gaussian"),
            f"{env_id}|TRPO+": Arm(dataclasses.replace(full, objective="trpo"))}


@contextlib.contextmanager
def ratio_deviation(objective: str, record: list):
    """While active, the update rule of `objective` appends, after each update, the largest
    |r - 1| over the batch, r = exp(log pi_new(a|s) - log pi_old(a|s)), to `record`."""
    rule = train_update.UPDATE_RULES[objective]

    def measured(agent, optimizer, batch, config, minibatches, **kwargs):
        infos = rule(agent, optimizer, batch, config, minibatches, **kwargs)
        with no_grad():
            logp_new = agent.distribution(batch["obs"]).log_prob(batch["actions"]).data
        record.append(float(np.max(np.abs(np.exp(logp_new - batch["logp"]) - 1.0))))
        return infos

    train_update.UPDATE_RULES[objective] = measured
    try:
        yield
    finally:
        train_update.UPDATE_RULES[objective] = rule


def train_measured(arm: Arm, seed: int, run_dir) -> list:
    """The sweep job: train the arm into run_dir (resuming what is there); each history row gets
    max_ratio_dev, the largest |r - 1| of its update (missing for updates before a resume)."""
    record = []

    def add_deviation(row):
        row["max_ratio_dev"] = record[-1]

    config = dataclasses.replace(arm.config, seed=int(seed))
    resume = (Path(run_dir) / "config.json").exists()
    init = gaussian_init() if arm.init == "gaussian" else contextlib.nullcontext()
    with init, ratio_deviation(config.objective, record):
        return list(train(config, out_dir=run_dir, resume=resume, callback=add_deviation).history)


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv,
                              extra=_common.seeds_option("seeds per arm (default 10)"))
    import matplotlib.pyplot as plt

    n_seeds = args.seeds or (2 if args.quick else 10)
    arms = {name: arm for env_id in ENVS for name, arm in make_arms(env_id, args.quick).items()}
    rows = sweep.run_sweep(arms, seeds=range(n_seeds), job=train_measured,
                           out_dir=args.out / "runs",
                           csv_path=args.out / "implementation_matters.csv", progress=True)

    rng = np.random.default_rng(0)
    n_boot = 200 if args.quick else 2000
    results = {}
    metrics = ("episodic_return", "max_ratio_dev", "kl_exact")
    fig, axes = plt.subplots(len(ENVS), 3, figsize=(15, 3.9 * len(ENVS)), squeeze=False)
    for row, env_id in enumerate(ENVS):
        scores = {a: auc_per_seed(rows, f"{env_id}|{a}") for a in ARMS}
        per_arm = {}
        for a in ARMS:
            ratio = [float(np.nanmax([r["max_ratio_dev"] for r in rows
                                      if r["run"] == f"{env_id}|{a}" and r["seed"] == s]))
                     for s in range(n_seeds)]
            kl = [float(np.nanmean([r["kl_exact"] for r in rows
                                    if r["run"] == f"{env_id}|{a}" and r["seed"] == s]))
                  for s in range(n_seeds)]
            per_arm[a] = {"auc_per_seed": scores[a], "max_ratio_dev_over_run_per_seed": ratio,
                          "mean_kl_exact_per_seed": kl}
        pairs = {}
        for x, y in PAIRS:
            c = compare.compare(scores[x], scores[y], "auc", n_boot, rng)
            per_arm[x].update({"auc_iqm": c["a"]["iqm"], "auc_iqm_ci": c["a"]["iqm_ci"]})
            per_arm[y].update({"auc_iqm": c["b"]["iqm"], "auc_iqm_ci": c["b"]["iqm_ci"]})
            pairs[f"P({x} > {y})"] = {**c["probability_of_improvement"],
                                      "verdict": c["verdict"].replace("a better", f"{x} better")
                                                             .replace("b better", f"{y} better")}
        results[env_id] = {"arms": per_arm, "pairs": pairs}

        groups = groups_from_rows([r for r in rows if r["env_id"] == env_id])
        groups = {f"{name.split('|')[1]}: AUC {per_arm[name.split('|')[1]]['auc_iqm']:.0f}": g
                  for name, g in groups.items()}
        smooth = max(1, arms[f"{env_id}|PPO"].config.num_updates // 40)
        plot_groups(axes[row], groups, metrics, smooth=smooth, ci=True, n_boot=n_boot)
        axes[row, 0].set_title(f"{env_id}: training return (legend: IQM AUC)", fontsize=10)
        axes[row, 1].set_ylabel("max |r − 1| over the batch")
        axes[row, 1].axhline(0.2, color="k", lw=0.8, ls="--")
        axes[row, 1].set_yscale("log")
        axes[row, 1].set_title(f"{env_id}: does the clip bound the ratio? (dashed: ε = 0.2)",
                               fontsize=10)
        axes[row, 2].set_ylabel("exact mean KL(π_old‖π_new) (nats)")
        axes[row, 2].axhline(0.01, color="k", lw=0.8, ls="--")
        axes[row, 2].set_yscale("log")
        axes[row, 2].set_title(f"{env_id}: step size (dashed: TRPO's δ = 0.01)", fontsize=10)
        axes[row, 0].legend(fontsize=8)
    fig.suptitle(f"Implementation matters (Engstrom et al. 2020), IQM over {n_seeds} seeds, 95 % "
                 f"bootstrap bands{' (quick mode: too short to mean anything)' if args.quick else ''}"
                 f".\nCompare PPO with PPO-M and TRPO+ with TRPO for the code-level optimisations' "
                 f"share; max |r − 1| above the dashed line: the clip did not bound the ratio",
                 fontsize=11)
    fig.tight_layout()
    _common.save_figure(fig, args.out / "implementation_matters.png", dpi=90)
    _common.save_json({"envs": ENVS, "arms": ARMS, "seeds": list(range(n_seeds)),
                       "n_boot": n_boot, "no_optimisations": {k: str(v) for k, v in
                                                              NO_OPTIMISATIONS.items()},
                       "results": results}, args.out / "implementation_matters.json")
    for env_id in ENVS:
        for a, r in results[env_id]["arms"].items():
            print(f"{env_id:12s} {a:6s} AUC IQM {r['auc_iqm']:8.1f} [{r['auc_iqm_ci'][0]:7.1f}, "
                  f"{r['auc_iqm_ci'][1]:7.1f}]  max|r-1| (median over seeds) "
                  f"{np.median(r['max_ratio_dev_over_run_per_seed']):.3f}  mean KL "
                  f"{np.median(r['mean_kl_exact_per_seed']):.5f}")
        for pair, p in results[env_id]["pairs"].items():
            print(f"{env_id:12s} {pair:18s} {p['estimate']:.2f} [{p['ci'][0]:.2f}, "
                  f"{p['ci'][1]:.2f}]  {p['verdict']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
