"""Clip vs KL penalty vs no trust region, on CartPole-v1 and Acrobot-v1, over several seeds.

The four policy objectives of ppo_ref.train.trainer (Schulman et al. 2017, Sections 3-4 and Table 1):

    clip         mean min(r A, clip(r, 1-eps, 1+eps) A)                        (eq. 7)
    kl_adaptive  mean r A - beta mean KL(pi_old || pi), beta halved/doubled to hold KL near d_targ
    kl_fixed     the same with beta fixed (1.0)                                  (eq. 8)
    unclipped    mean r A, the unclipped surrogate (no trust region at all)

Every other hyperparameter is the environment's preset (ppo_ref.train.trainer.PRESETS). The (objective x
env x seed) grid runs in parallel through ppo_ref.sweep, which also writes every per-update number
to one long-format CSV. Panels: training episodic return (mean of the last 20 episodes), and per
update the approx_kl (k3 estimator of KL(pi_old || pi_new) on the minibatches), the fraction of
samples whose ratio left [1-eps, 1+eps], and the policy entropy, each mean +- std over seeds (each
run first averaged over its last ~1/40 of its updates: per-update diagnostics are noisy). The
legends give each objective's final training return, mean +- std over seeds.

    python demos/compare_objectives.py --out out/compare_objectives           # 5 seeds
"""
from __future__ import annotations

import _common

import dataclasses

import numpy as np

from ppo_ref.plots import groups_from_rows, plot_groups
from ppo_ref.train.trainer import PRESETS
from ppo_ref.sweep import run_sweep

ENVS = ("CartPole-v1", "Acrobot-v1")
# The returns an episode can have (500 steps at most; CartPole pays +1 per step, Acrobot -1 until
# it swings up): the return axis shows this range, which a band's mean +- std can overshoot.
RETURN_RANGE = {"CartPole-v1": (0.0, 500.0), "Acrobot-v1": (-500.0, 0.0)}
OBJECTIVES = ("clip", "kl_adaptive", "kl_fixed", "unclipped")
METRICS = ("episodic_return", "approx_kl", "clip_fraction", "entropy")
SHORT_LABELS = ("episodic return\n(sum of rewards)", "approx KL(π_old‖π_new)\nper update (nats)",
                "clip fraction\n(share of samples)", "policy entropy (nats)")


def quick_config(config):
    """A few updates with tiny batches, for the smoke test (long enough that every env finishes
    an episode: Acrobot's episodes last up to 500 steps)."""
    return dataclasses.replace(config, total_steps=1024, num_envs=2, num_steps=256,
                               num_minibatches=2, update_epochs=1)


def summarise(rows, env_id, objective):
    """Per-seed final return (last logged mean of 20 episodes) and training-average diagnostics."""
    by_seed = {}
    for row in rows:
        if row["env_id"] == env_id and row["objective"] == objective:
            by_seed.setdefault(row["seed"], []).append(row)
    final = [seed_rows[-1]["episodic_return"] for seed_rows in by_seed.values()]
    mean_of = {m: [float(np.mean([r[m] for r in seed_rows])) for seed_rows in by_seed.values()]
               for m in ("approx_kl", "clip_fraction", "entropy")}
    return {"final_return_per_seed": final,
            "final_return_mean": float(np.mean(final)),
            "final_return_std": float(np.std(final, ddof=1)) if len(final) > 1 else 0.0,
            **{f"training_mean_{m}": float(np.mean(v)) for m, v in mean_of.items()}}


def finite_points(band):
    """The drawn curve without the steps where no seed had a value yet (NaN is not JSON)."""
    keep = np.isfinite(band["mean"])
    return {"global_step": band["x"][keep], "mean": band["mean"][keep], "std": band["std"][keep],
            "n_runs": band["n_runs"]}


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv,
                              extra=_common.seeds_option("seeds per (env, objective)"))
    import matplotlib.pyplot as plt

    n_seeds = _common.n_seeds(args)
    configs = {}
    for env_id in ENVS:
        for objective in OBJECTIVES:
            config = dataclasses.replace(PRESETS[env_id], objective=objective)
            configs[f"{env_id}/{objective}"] = quick_config(config) if args.quick else config
    rows = run_sweep(configs, seeds=range(n_seeds), csv_path=args.out / "compare_objectives.csv")
    print(f"wrote {args.out / 'compare_objectives.csv'} ({len(rows)} rows)")

    # One column per env, one row per metric: a tall figure stays legible at README width.
    fig, axes = plt.subplots(len(METRICS), len(ENVS), figsize=(5.4 * len(ENVS), 3.1 * len(METRICS)),
                             squeeze=False)
    summary, curves, smoothing = {}, {}, {}
    for i, env_id in enumerate(ENVS):
        summary[env_id] = {obj: summarise(rows, env_id, obj) for obj in OBJECTIVES}
        groups = groups_from_rows([r for r in rows if r["env_id"] == env_id], group="objective")
        labelled = {f"{obj}: final {s['final_return_mean']:.0f} ± {s['final_return_std']:.0f}":
                    groups[obj] for obj, s in summary[env_id].items()}
        # Per-update diagnostics are noisy: average each run over ~1/40 of its updates.
        smoothing[env_id] = max(1, configs[f"{env_id}/clip"].num_updates // 40)
        column = axes[:, i]
        drawn = plot_groups(column, labelled, METRICS, smooth=smoothing[env_id])
        curves[env_id] = {m: {label.split(":")[0]: finite_points(band)
                              for label, band in by_label.items()}
                          for m, by_label in drawn.items()}
        column[0].set_title(f"{env_id}: training return", fontsize=10)
        lo, hi = RETURN_RANGE[env_id]
        column[0].set_ylim(lo - 0.04 * (hi - lo), hi + 0.04 * (hi - lo))
        column[1].set_title(f"{env_id}: how far each update moves π (log axis)", fontsize=10)
        column[2].set_title(f"{env_id}: share of samples outside [1−ε, 1+ε]", fontsize=10)
        column[3].set_title(f"{env_id}: exploration left", fontsize=10)
        column[0].legend(fontsize=8.5, loc="lower right", title="objective: final return ± std",
                         title_fontsize=8.5)
        for ax, ylabel in zip(column, SHORT_LABELS):   # the titles say what each row shows
            ax.set_ylabel(ylabel if i == 0 else "")
        for ax in column[:-1]:
            ax.set_xlabel("")         # the bottom row names the x axis for its column

    kl_ratio = {env_id: summary[env_id]["unclipped"]["training_mean_approx_kl"]
                / max(summary[env_id]["clip"]["training_mean_approx_kl"], 1e-12) for env_id in ENVS}
    fig.suptitle(f"PPO's objectives compared: mean ± std over {n_seeds} seeds, presets otherwise.\n"
                 f"Without a trust region ('unclipped') an update moves the policy "
                 + " and ".join(f"{kl_ratio[e]:.0f}x ({e})" for e in ENVS)
                 + "\nas far as PPO-clip's (mean approx_kl). Curves: each run's trailing mean over "
                 + " / ".join(f"{smoothing[e]}" for e in ENVS) + " updates", fontsize=11)
    fig.tight_layout()
    _common.save_figure(fig, args.out / "compare_objectives.png", dpi=90)
    _common.save_json({"envs": ENVS, "objectives": OBJECTIVES, "seeds": list(range(n_seeds)),
                       "total_steps": {e: configs[f"{e}/clip"].total_steps for e in ENVS},
                       "smoothing_updates": smoothing,
                       "unclipped_over_clip_mean_approx_kl": kl_ratio,
                       "summary": summary, "curves": curves}, args.out / "compare_objectives.json")
    for env_id in ENVS:
        for obj, s in summary[env_id].items():
            print(f"{env_id:12s} {obj:12s} final return {s['final_return_mean']:8.1f} ± "
                  f"{s['final_return_std']:6.1f}   mean approx_kl {s['training_mean_approx_kl']:.4f}"
                  f"   mean clip fraction {s['training_mean_clip_fraction']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
