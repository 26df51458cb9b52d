"""LunarLander-v3 from rl-zoo3's PPO hyperparameters (the `LunarLander-v3` preset), over seeds.

Needs the box2d extra (`pip install -e .[box2d]`: the `box2d` and `pygame` wheels); without it the
demo says so and exits 0. The preset is rl-zoo3's (16 envs x 1024 steps, minibatches of 64, 4
epochs, gamma 0.999, lambda 0.98, entropy 0.01, 1M steps; ppo_ref/train/config.py cites it). A
landing scores 100-140 plus leg contacts, a crash -100; "solved" is a mean return of 200.

Left: training episodic return (mean of each run's last 20 episodes, stochastic policy), each seed
thin and the mean +- std band thick, with the first step and the wall time at which each run's
training return reached 200. Right: each seed's final evaluation (deterministic policy).

    python demos/lunarlander.py --out out/lunarlander            # 5 seeds x 1M steps (hours)
    python demos/lunarlander.py --out out/lunarlander --quick    # two tiny runs (the tests)

The runs are run folders OUT/lunarlander_runs/seed<S>; `--from-runs` draws the figure from the
finished ones already there (e.g. trained one by one with
`ppo-ref train --preset LunarLander-v3 --seed S --out OUT/lunarlander_runs/seedS`).
"""
from __future__ import annotations

import _common

import dataclasses
import importlib.util

import numpy as np

from ppo_ref.train.config import PRESETS

TARGET = 200.0


def _options(parser):
    _common.seeds_option("number of seeds")(parser)
    parser.add_argument("--from-runs", action="store_true",
                        help="do not train: draw the finished runs in OUT/lunarlander_runs")


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv, extra=_options)
    import matplotlib.pyplot as plt

    config = PRESETS["LunarLander-v3"]
    n_seeds = _common.n_seeds(args)
    if args.quick:
        config = dataclasses.replace(config, total_steps=2 * 256, num_envs=2, num_steps=128,
                                     num_minibatches=4, update_epochs=1, eval_episodes=2)
    root = args.out / "lunarlander_runs"
    if args.from_runs:
        seeds = sorted(int(p.name[4:]) for p in root.glob("seed*") if (p / "eval.json").exists())
        if not seeds:
            print(f"no finished runs (with eval.json) in {root}")
            return 1
        n_seeds = len(seeds)
    elif importlib.util.find_spec("Box2D") is None:   # drawing finished runs needs no Box2D
        print("LunarLander-v3 needs Box2D: pip install -e .[box2d] (the box2d and pygame wheels); "
              "skipped")
        return 0
    else:
        _common.train_seeds("lunarlander", config, n_seeds, root)
        seeds = list(range(n_seeds))
    metrics, evals, curves = _common.read_seed_runs(root, seeds)
    per_seed = {}
    for s in seeds:
        steps, ret = curves[s]
        hit = np.flatnonzero(ret >= TARGET)
        per_seed[s] = {"first_step_train_return_200": int(steps[hit[0]]) if len(hit) else None,
                       "wall_time_s_to_200": float(metrics[s][hit[0]]["time_s"]) if len(hit) else None,
                       "total_wall_time_s": float(metrics[s][-1]["time_s"]),
                       "final_train_return": float(ret[-1]),
                       "eval_mean_return": evals[s]["mean_return"]}

    fig, (ax, ax_eval) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 1]})
    x, mean, std = _common.plot_seed_curves(ax, curves, TARGET, f"solved: {TARGET:g}",
                                            "training episodic return (last 20 episodes)")
    eval_means = [per_seed[s]["eval_mean_return"] for s in seeds]
    ax_eval.plot(seeds, eval_means, "o")
    ax_eval.axhline(TARGET, color="C3", ls="--", lw=0.9)
    ax_eval.set_xticks(seeds)
    ax_eval.set_xlabel("seed")
    ax_eval.set_ylabel(f"evaluation return ({evals[seeds[0]]['episodes']} episodes, deterministic)")
    ax_eval.grid(alpha=0.3)
    reached = sum(m >= TARGET for m in eval_means)
    fig.suptitle(f"PPO (rl-zoo3's hyperparameters) on LunarLander-v3: {reached}/{n_seeds} seeds "
                 f"evaluate at >= {TARGET:g} after {config.total_steps // 1000}k steps", fontsize=11)
    fig.tight_layout()
    _common.save_figure(fig, args.out / "lunarlander.png")
    keep = np.isfinite(mean)
    _common.save_json({"env_id": config.env_id, "total_steps": config.total_steps,
                       "target": TARGET, "seeds_evaluating_above_target": int(reached),
                       "per_seed": per_seed, "config": config.to_dict(),
                       "curve": {"global_step": x[keep], "mean": mean[keep], "std": std[keep]}},
                      args.out / "lunarlander.json")
    for s, v in per_seed.items():
        print(f"seed {s}: training return {v['final_train_return']:7.1f}, evaluation "
              f"{v['eval_mean_return']:7.1f}, 200 first reached at step "
              f"{v['first_step_train_return_200']} ({v['wall_time_s_to_200']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
