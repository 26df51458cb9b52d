"""PPO on CartPole-v1 with the default config, over several seeds: the learning curve and evaluation.

Each seed is one independent run (ppo_ref.sweep runs them in parallel, one process per core) that
writes a run folder; the figure is drawn from those folders by ppo_ref.plots, the same code as
`ppo-ref plot`. The curve is the training episodic return (mean of each run's last 20 finished
episodes, stochastic policy) averaged over seeds with a +- 1 std band; the markers on the right
are each seed's final evaluation (20 episodes of the deterministic policy, seeds unseen in training).

    python demos/cartpole.py --out out/cartpole              # 5 seeds x 100k steps
"""
from __future__ import annotations

import _common

import dataclasses

import numpy as np

from ppo_ref.plots import group_runs, load_runs, plot_groups
from ppo_ref.train.trainer import PRESETS
from ppo_ref.train.runs import read_eval

SOLVED = 475.0   # gymnasium's reward_threshold for CartPole-v1 (the episode cap is 500)


def first_step_at_or_above(steps, values, threshold):
    """The first global step whose value reaches `threshold`, or None."""
    hits = np.flatnonzero(np.asarray(values) >= threshold)
    return int(steps[hits[0]]) if len(hits) else None


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv,
                              extra=_common.seeds_option("number of seeds"))
    import matplotlib.pyplot as plt

    config = PRESETS["CartPole-v1"]
    n_seeds = _common.n_seeds(args)
    if args.quick:
        config = dataclasses.replace(config, total_steps=1024, update_epochs=4, eval_episodes=3)
    root = args.out / "cartpole_runs"
    _common.train_seeds("cartpole", config, n_seeds, root)

    runs = load_runs(sorted(root.iterdir()))
    evals = {int(r["path"].name[len("seed"):]): read_eval(r["path"]) for r in runs}
    fig, (ax, ax_eval) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 1]})
    drawn = plot_groups([ax], group_runs(runs), ["episodic_return"])["episodic_return"]
    band = next(iter(drawn.values()))
    ax.axhline(SOLVED, color="0.4", ls="--", lw=0.8, label=f"solved threshold ({SOLVED:g})")
    ax.set_ylabel("training episodic return\n(last 20 episodes, stochastic policy)")
    ax.set_ylim(0, 520)          # the episode cap is 500: a band's mean + std above it is no value
    ax.legend(loc="lower right", fontsize=8)

    seeds = sorted(evals)
    means = [evals[s]["mean_return"] for s in seeds]
    ax_eval.errorbar(seeds, means, yerr=[evals[s]["std_return"] for s in seeds], fmt="o", capsize=3)
    ax_eval.axhline(SOLVED, color="0.4", ls="--", lw=0.8)
    ax_eval.set_xticks(seeds)
    ax_eval.set_xlabel("seed (bars: ± std over the episodes)")
    ax_eval.set_ylabel(f"evaluation return ({evals[seeds[0]]['episodes']} episodes, "
                       f"deterministic)")
    ax_eval.set_ylim(0, 520)
    solved = sum(m >= SOLVED for m in means)
    fig.suptitle(f"PPO (default config) on CartPole-v1: mean ± std over {n_seeds} seeds; "
                 f"{solved}/{n_seeds} seeds evaluate ≥ {SOLVED:g} after "
                 f"{config.total_steps // 1000}k steps")
    fig.tight_layout()
    _common.save_figure(fig, args.out / "cartpole.png")

    per_seed = {}
    for r in runs:
        seed = int(r["path"].name[len("seed"):])
        m = r["metrics"]
        per_seed[seed] = {
            "final_train_return": float(m["episodic_return"][-1]),
            "first_step_train_return_ge_475": first_step_at_or_above(
                m["global_step"], m["episodic_return"], SOLVED),
            "eval_mean_return": evals[seed]["mean_return"],
            "eval_std_return": evals[seed]["std_return"]}
    first = [v["first_step_train_return_ge_475"] for v in per_seed.values()]
    _common.save_json({
        "env_id": config.env_id, "total_steps": config.total_steps, "seeds": seeds,
        "eval_mean_return_over_seeds": float(np.mean(means)),
        "eval_std_return_over_seeds": float(np.std(means, ddof=1)) if len(means) > 1 else 0.0,
        "seeds_solved": int(solved),
        "median_first_step_train_return_ge_475": (float(np.median(first))
                                                  if all(f is not None for f in first) else None),
        "per_seed": per_seed,
        "curve": {"global_step": band["x"], "mean": band["mean"], "std": band["std"]},
    }, args.out / "cartpole.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
