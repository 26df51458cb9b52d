"""Reward-model over-optimisation scaling (Gao et al. 2022) in miniature: gold reward against sqrt(KL).

Gao et al. 2022, "Scaling Laws for Reward Model Overoptimization", measure the gold reward of a
policy optimised against a proxy reward model as a function of d = sqrt(KL(pi || pi_ref)), and
find, for best-of-n sampling and for RL,

    R_bon(d) = d (alpha - beta d),          R_RL(d) = d (alpha - beta log d),

R the gold reward's gain over pi_ref's. Here, on ppo_ref.rlhf's toy language (demos/rlhf.py
explains the world): the reward model's capacity is varied through the preference pairs it is
trained on (PAIRS), and the optimisation power along two axes:

* RL: PPO fine-tuning against r_phi with no KL penalty (beta = 0); every few iterations the
  policy's gold reward and KL(pi || pi_ref) are measured on fresh samples (the stepwise estimator
  E_x[sum_t KL(pi(.|x_<t) || pi_ref(.|x_<t))], nats per sequence, an unbiased estimate of the
  sequence KL). More iterations = more optimisation power.
* best-of-n: draw n sequences from pi_ref, keep the one r_phi scores highest, for n = 1 .. 256.
  Its KL is computed from the distribution of r_phi under pi_ref, not from the bound
  log n - (n-1)/n (which holds with equality only when no two sequences tie): with F(r) =
  P_ref(r_phi <= r) and F-(r) = P_ref(r_phi < r), best-of-n lands on the reward level r with
  probability F(r)^n - F-(r)^n (ties broken uniformly), so pi_bon(x) / pi_ref(x) depends on
  r_phi(x) only and

      KL(pi_bon || pi_ref) = sum_r p_bon(r) log(p_bon(r) / p_ref(r)),   p_bon(r) = F(r)^n - F-(r)^n,

  computed on REF_SAMPLES samples of pi_ref (their empirical distribution stands in for pi_ref's;
  r_phi sees letter counts only, so sequences with the same counts tie). Its gold reward is
  sum_r p_bon(r) * (mean gold of the samples at level r).

Both forms are fitted by linear least squares (R is linear in alpha and beta), per reward-model
size, to the points of all its seeds; the JSON reports alpha, beta and R^2, the figure draws the
fitted curves over the points.

    python demos/overoptimization.py --out out/overopt --quick    # ~20 s: 1 seed, tiny world
    python demos/overoptimization.py --out out/overopt            # 3 sizes x 3 seeds

Full mode: 9 (world, fine-tuning) jobs of 200 PPO iterations; docs/experiments.md states the
time the committed figure took on 2 shared cores.
"""
from __future__ import annotations

import _common

import dataclasses
import math

import numpy as np

from ppo_ref import sweep
from ppo_ref.rlhf import RLHFConfig, WorldConfig, prepare_world, rlhf_finetune

PAIRS = (100, 500, 3000)        # preference pairs the reward model is trained on
BON_NS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
REF_SAMPLES = 20_000


@dataclasses.dataclass(frozen=True)
class Study:
    """One sweep cell: the world (its reward model's training pairs) and the RL fine-tuning."""
    world: WorldConfig
    tune: RLHFConfig
    ref_samples: int = REF_SAMPLES


def make_studies(quick: bool) -> dict:
    studies = {}
    for pairs in PAIRS:
        if quick:
            world = WorldConfig(corpus_size=400, pretrain_epochs=2, train_pairs=pairs,
                                test_pairs=200, rm_epochs=4)
            tune = RLHFConfig(iterations=8, batch_size=32, eval_every=2, eval_samples=64, beta=0.0)
            studies[f"pairs={pairs}"] = Study(world, tune, ref_samples=2000)
        else:
            world = WorldConfig(train_pairs=pairs)
            tune = RLHFConfig(iterations=200, batch_size=128, eval_every=5, eval_samples=400,
                              beta=0.0)
            studies[f"pairs={pairs}"] = Study(world, tune)
    return studies


def best_of_n(proxy: np.ndarray, gold: np.ndarray, ns) -> list:
    """(n, KL(pi_bon || pi_ref), gold reward of best-of-n) for each n, from samples of pi_ref
    (module docstring): exact for the samples' empirical distribution."""
    levels, inverse = np.unique(proxy, return_inverse=True)         # sorted reward levels
    p_ref = np.bincount(inverse) / len(proxy)                       # P_ref(r_phi = level)
    gold_at = np.bincount(inverse, weights=gold) / np.bincount(inverse)
    F = np.cumsum(p_ref)                                            # P_ref(r_phi <= level)
    F_below = F - p_ref                                             # P_ref(r_phi < level)
    out = []
    for n in ns:
        p_bon = F ** n - F_below ** n
        keep = p_bon > 0
        kl = float(np.sum(p_bon[keep] * np.log(p_bon[keep] / p_ref[keep])))
        out.append((n, max(kl, 0.0), float(np.sum(p_bon * gold_at))))
    return out


def run_study(study: Study, seed: int) -> list:
    """The sweep job: build the world, then best-of-n and RL points, as rows with global_step =
    n (best-of-n) or the PPO iteration (RL), and method, kl, gold, proxy."""
    rng = np.random.default_rng(seed)
    world = prepare_world(study.world, rng)
    tokens, _ = world.reference.sample(study.ref_samples, rng)
    proxy, gold = world.reward_model(tokens), world.gold(tokens)
    gold_ref = float(gold.mean())
    rows = [{"global_step": n, "method": "bon", "kl": kl, "gold": g, "gold_gain": g - gold_ref,
             "rm_accuracy": world.rm_accuracy} for n, kl, g in best_of_n(proxy, gold, BON_NS)]
    evals, _ = rlhf_finetune(world.reference.copy(), world.reference, world.reward_model,
                             dataclasses.replace(study.tune), rng, gold_fn=world.gold)
    rows += [{"global_step": ev["iteration"], "method": "rl", "kl": max(ev["kl"], 0.0),
              "gold": ev["gold"], "gold_gain": ev["gold"] - gold_ref, "proxy": ev["proxy"],
              "rm_accuracy": world.rm_accuracy} for ev in evals]
    return rows


def fit(d: np.ndarray, r: np.ndarray, form: str) -> dict:
    """Least squares for R = alpha d - beta g(d), g(d) = d^2 (bon) or d log d (rl); R^2 of the fit."""
    g = d ** 2 if form == "bon" else d * np.log(np.where(d > 0, d, 1.0))   # d log d -> 0 at d = 0
    design = np.stack([d, -g], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(design, r, rcond=None)
    residual = r - design @ np.array([alpha, beta])
    total = np.sum((r - r.mean()) ** 2)
    return {"alpha": float(alpha), "beta": float(beta),
            "r2": float(1 - np.sum(residual ** 2) / total) if total > 0 else 1.0,
            "points": int(len(d))}


def curve(form: str, alpha: float, beta: float, d: np.ndarray) -> np.ndarray:
    g = d ** 2 if form == "bon" else d * np.log(np.where(d > 0, d, 1.0))
    return alpha * d - beta * g


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv,
                              extra=_common.seeds_option("seeds per reward-model size "
                                                         "(default 3; 1 with --quick)"))
    import matplotlib.pyplot as plt

    n_seeds = args.seeds or (1 if args.quick else 3)
    studies = make_studies(args.quick)
    rows = sweep.run_sweep(studies, seeds=range(n_seeds), job=run_study,
                           csv_path=args.out / "overoptimization.csv", progress=True)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    fits = {}
    for k, name in enumerate(studies):
        fits[name] = {}
        mine = [r for r in rows if r["run"] == name]
        accuracy = float(np.mean([r["rm_accuracy"] for r in mine]))
        for ax, method in zip(axes, ("bon", "rl")):
            pts = [r for r in mine if r["method"] == method]
            d = np.sqrt(np.array([r["kl"] for r in pts]))
            gain = np.array([r["gold_gain"] for r in pts])
            fits[name][method] = {**fit(d, gain, method), "rm_accuracy": accuracy}
            f = fits[name][method]
            color = f"C{k}"
            ax.plot(d, gain, "o", color=color, ms=3.5, alpha=0.6)
            xs = np.linspace(0, d.max() * 1.02, 100)
            ax.plot(xs, curve(method, f["alpha"], f["beta"], xs), color=color,
                    label=f"{name} (RM acc {accuracy:.2f}): α={f['alpha']:.2f}, "
                          f"β={f['beta']:.2f}, R²={f['r2']:.2f}")
    axes[0].set_title("best-of-n, n = 1 … 256: R(d) = d (α − β d)", fontsize=10)
    axes[1].set_title("PPO against the reward model (β_KL = 0): R(d) = d (α − β log d)",
                      fontsize=10)
    for ax in axes:
        ax.axhline(0, color="k", lw=0.7)
        ax.set_xlabel("d = √KL(π ‖ π_ref)  (√nats)")
        ax.set_ylabel("gold reward gain over π_ref")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, title="reward model trained on", title_fontsize=8)
    fig.suptitle("Reward-model over-optimisation (Gao et al. 2022 forms fitted): the gold reward "
                 "rises, then falls as optimisation pushes π away from π_ref"
                 f"{' (quick mode: too short to mean anything)' if args.quick else ''}",
                 fontsize=11)
    fig.tight_layout()
    _common.save_figure(fig, args.out / "overoptimization.png", dpi=90)
    _common.save_json({"pairs": PAIRS, "bon_ns": BON_NS, "seeds": list(range(n_seeds)),
                       "ref_samples": {n: s.ref_samples for n, s in studies.items()},
                       "rl_config": dataclasses.asdict(next(iter(studies.values())).tune),
                       "fits": fits,
                       "points": [{k: v for k, v in r.items() if not (isinstance(v, float)
                                                                      and math.isnan(v))}
                                  for r in rows]}, args.out / "overoptimization.json")
    for name, by_method in fits.items():
        for method, f in by_method.items():
            print(f"{name:12s} {method:4s} alpha {f['alpha']:7.3f}  beta {f['beta']:7.3f}  "
                  f"R^2 {f['r2']:.3f}  ({f['points']} points, RM accuracy {f['rm_accuracy']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
