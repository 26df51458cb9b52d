"""Continuous control: PPO on Pendulum-v1 with a diagonal Gaussian policy, over several seeds.

The preset (ppo_ref.train.trainer.PRESETS["Pendulum-v1"]) turns on what continuous control needs: a
DiagGaussian policy with a state-independent log std, observation normalisation with running
statistics, and reward scaling by the std of a running discounted return; actions are sampled
unclipped and clipped to [-2, 2] only when sent to the env. Pendulum's return is the negative of
an angle/velocity/torque cost summed over 200 steps (0 is perfect; a random policy scores about
-1200); a common bar for "solved" is a mean return above -250, aimed for here within 200k steps.

Curves: training episodic return (mean of each run's last 20 episodes, stochastic policy), each
seed thin and the mean +- std band thick; right: each seed's final evaluation (20 episodes of the
deterministic policy, the Gaussian mean, on unseen seeds).

    python demos/pendulum.py --out out/pendulum             # 5 seeds x 200k steps
"""
from __future__ import annotations

import _common

import dataclasses

import numpy as np

from ppo_ref.train.trainer import PRESETS

TARGET = -250.0


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv,
                              extra=_common.seeds_option("number of seeds"))
    import matplotlib.pyplot as plt

    config = PRESETS["Pendulum-v1"]
    n_seeds = _common.n_seeds(args)
    if args.quick:
        config = dataclasses.replace(config, total_steps=1024, num_envs=2, num_steps=256,
                                     num_minibatches=4, update_epochs=1, eval_episodes=2)
    root = args.out / "pendulum_runs"
    _common.train_seeds("pendulum", config, n_seeds, root)

    seeds = list(range(n_seeds))
    metrics, evals, curves = _common.read_seed_runs(root, seeds)

    fig, (ax, ax_eval) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 1]})
    x, mean, std = _common.plot_seed_curves(ax, curves, TARGET, f"target {TARGET:g}",
                                            "training episodic return (last 20 episodes,"
                                            "\nstochastic policy, 200 steps each)", seed_alpha=0.8)

    eval_means = [evals[s]["mean_return"] for s in seeds]
    ax_eval.errorbar(seeds, eval_means, yerr=[evals[s]["std_return"] for s in seeds], fmt="o",
                     capsize=3)
    ax_eval.axhline(TARGET, color="C3", ls="--", lw=0.9)
    ax_eval.set_xticks(seeds)
    ax_eval.set_xlabel("seed (bars: ± std over the episodes)")
    ax_eval.set_ylabel(f"evaluation return ({evals[0]['episodes']} episodes, deterministic)")
    ax_eval.grid(alpha=0.3)
    reached = sum(m > TARGET for m in eval_means)
    fig.suptitle(f"PPO (preset: DiagGaussian, obs normalisation, reward scaling) on Pendulum-v1: "
                 f"{reached}/{n_seeds} seeds evaluate above {TARGET:g}\nafter "
                 f"{config.total_steps // 1000}k steps (mean {np.mean(eval_means):.0f} ± "
                 f"{np.std(eval_means, ddof=1) if n_seeds > 1 else 0:.0f} over seeds)", fontsize=11)
    fig.tight_layout()
    _common.save_figure(fig, args.out / "pendulum.png")

    per_seed = {}
    for s in seeds:
        steps, ret = curves[s]
        hits = np.flatnonzero(ret > TARGET)
        per_seed[s] = {"final_train_return": float(ret[-1]),
                       "first_step_train_return_above_target": int(steps[hits[0]]) if len(hits) else None,
                       "eval_mean_return": evals[s]["mean_return"],
                       "eval_std_return": evals[s]["std_return"]}
    keep = np.isfinite(mean)
    _common.save_json({
        "env_id": config.env_id, "total_steps": config.total_steps, "target": TARGET,
        "seeds_above_target": int(reached),
        "eval_mean_return_over_seeds": float(np.mean(eval_means)),
        "eval_std_return_over_seeds": float(np.std(eval_means, ddof=1)) if n_seeds > 1 else 0.0,
        "final_train_return_over_seeds": float(np.mean([v["final_train_return"]
                                                        for v in per_seed.values()])),
        "per_seed": per_seed,
        "config": config.to_dict(),
        "curve": {"global_step": x[keep], "mean": mean[keep], "std": std[keep]},
    }, args.out / "pendulum.json")
    for s, v in per_seed.items():
        print(f"seed {s}: final training return {v['final_train_return']:8.1f}   evaluation "
              f"{v['eval_mean_return']:8.1f} ± {v['eval_std_return']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
