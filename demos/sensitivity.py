"""Hyperparameter sensitivity: clip epsilon x learning rate on CartPole-v1, and what a small epsilon does.

PPO is "still sensitive to hyperparameters", and "may under-optimise if clipping is too strict".
The grid:

    eps in {0.02, 0.05, 0.1, 0.2, 0.3, 0.5} and the unclipped surrogate (no eps at all),
    lr  in {1e-4, 3e-4, 1e-3, 3e-3},

every other hyperparameter the CartPole-v1 preset's, except that eps is held fixed
(anneal_clip off: an eps annealed to 0 would blur what each eps does). Each run is scored by its
AUC (the mean of its training learning curve over the run, as `ppo-ref compare --metric auc`);
each cell of the heatmap is the IQM of its seeds' AUCs, annotated with its 95 % bootstrap CI
(ppo_ref.stats), which shows the seeds' spread.

Why a small eps under-optimises: the clipped objective min(r A, clip(r, 1-eps, 1+eps) A) has zero
gradient for a sample once its ratio r has left [1-eps, 1+eps] in the direction A favours, so an
update can move each action's probability by about a factor 1 +- eps only. The claim: with
eps = 0.02 the policy moves little per update (a small exact KL(pi_old || pi_new), logged as
kl_exact, and a higher clip fraction), so learning is slow. The lower panels
show the per-update kl_exact and clip fraction at lr = 1e-3 for each eps (IQM over seeds, 95 %
bootstrap band).

    python demos/sensitivity.py --out out/sensitivity --quick    # ~10 s: 2 seeds, 1024 steps
    python demos/sensitivity.py --out out/sensitivity            # 5 seeds: 7 x 4 x 5 = 140 runs

Full mode: 140 runs of 100k steps, measured at 2 cores shared with other work: see
docs/experiments.md for the time the committed figure took (an estimate from a 20k-step run of
the preset, 3.7 s on one core: 140 x 18.5 s / 2, about 22 minutes on an idle machine). The sweep is kept in OUT/runs: a killed run of this command resumes.
"""
from __future__ import annotations

import _common

import dataclasses
import math

import numpy as np

from ppo_ref import sweep
from ppo_ref.plots import groups_from_rows, plot_groups
from ppo_ref.stats import bootstrap_ci, iqm
from ppo_ref.train.config import PRESETS

from ablations import auc_per_seed, quick_config

EPSILONS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, None)      # None: the unclipped surrogate
LRS = (1e-4, 3e-4, 1e-3, 3e-3)
CURVE_LR = 1e-3                                       # the preset's lr: the diagnostics panels


def eps_label(eps) -> str:
    return "unclipped" if eps is None else f"ε={eps:g}"


def run_name(eps, lr) -> str:
    return f"{eps_label(eps)}|lr={lr:g}"


def make_configs(quick: bool) -> dict:
    base = dataclasses.replace(PRESETS["CartPole-v1"], anneal_clip=False)
    if quick:
        base = dataclasses.replace(quick_config(base), update_epochs=4)   # let the clip bind
    configs = {}
    for eps in EPSILONS:
        for lr in LRS:
            change = {"objective": "unclipped"} if eps is None else {"clip_eps": eps}
            configs[run_name(eps, lr)] = dataclasses.replace(base, lr=lr, **change)
    return configs


def training_mean(rows, run: str, metric: str) -> list:
    """Per seed, the mean of `metric` over the run's updates."""
    seeds = sorted({r["seed"] for r in rows if r["run"] == run})
    return [float(np.nanmean([r[metric] for r in rows if r["run"] == run and r["seed"] == s]))
            for s in seeds]


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv,
                              extra=_common.seeds_option("seeds per cell"))
    import matplotlib.pyplot as plt

    n_seeds = _common.n_seeds(args)
    configs = make_configs(args.quick)
    rows = sweep.run_sweep(configs, seeds=range(n_seeds), out_dir=args.out / "runs",
                           csv_path=args.out / "sensitivity.csv", progress=True)

    rng = np.random.default_rng(0)
    n_boot = 200 if args.quick else 2000
    grid = np.full((len(LRS), len(EPSILONS)), math.nan)
    cells = {}
    for j, eps in enumerate(EPSILONS):
        for i, lr in enumerate(LRS):
            scores = np.array(auc_per_seed(rows, run_name(eps, lr)))
            low, high = bootstrap_ci(scores, iqm, n_boot, 0.95, rng)
            grid[i, j] = iqm(scores)
            cells[run_name(eps, lr)] = {"eps": eps, "lr": lr, "auc_per_seed": scores.tolist(),
                                        "iqm": grid[i, j], "iqm_ci": [low, high]}
    per_eps = {}
    for eps in EPSILONS:
        run = run_name(eps, CURVE_LR)
        kl, clipped = training_mean(rows, run, "kl_exact"), training_mean(rows, run, "clip_fraction")
        per_eps[eps_label(eps)] = {"training_mean_kl_exact_per_seed": kl,
                                   "training_mean_clip_fraction_per_seed": clipped,
                                   "kl_exact_iqm": iqm(kl), "clip_fraction_iqm": iqm(clipped),
                                   "auc_iqm": cells[run]["iqm"]}

    fig = plt.figure(figsize=(13, 9))
    ax = fig.add_subplot(2, 1, 1)
    image = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
    for i, lr in enumerate(LRS):
        for j, eps in enumerate(EPSILONS):
            c = cells[run_name(eps, lr)]
            ax.text(j, i, f"{c['iqm']:.0f}\n[{c['iqm_ci'][0]:.0f}, {c['iqm_ci'][1]:.0f}]",
                    ha="center", va="center", fontsize=8,
                    color="white" if c["iqm"] < np.nanmean(grid) else "black")
    ax.set_xticks(range(len(EPSILONS)), [eps_label(e) for e in EPSILONS])
    ax.set_yticks(range(len(LRS)), [f"{lr:g}" for lr in LRS])
    ax.set_xlabel("clip ε (fixed over training)")
    ax.set_ylabel("Adam learning rate")
    ax.set_title(f"CartPole-v1 AUC (mean training return over the run): IQM over {n_seeds} seeds, "
                 f"[95 % CI]", fontsize=10)
    fig.colorbar(image, ax=ax, label="IQM AUC")

    curve_rows = [r for r in rows if r["run"].endswith(f"|lr={CURVE_LR:g}")]
    groups = groups_from_rows(curve_rows)
    groups = {name.split("|")[0]: groups[name] for name in groups}
    axes = [fig.add_subplot(2, 3, 4 + k) for k in range(3)]
    smooth = max(1, configs[run_name(0.2, CURVE_LR)].num_updates // 40)
    plot_groups(axes, groups, ("episodic_return", "kl_exact", "clip_fraction"), smooth=smooth,
                ci=True, n_boot=n_boot)
    axes[0].set_title(f"training return, lr={CURVE_LR:g}", fontsize=10)
    axes[1].set_ylabel("exact mean KL(π_old‖π_new) per update (nats)")
    axes[1].set_yscale("log")
    axes[1].set_title("how far each update moves π", fontsize=10)
    axes[2].set_title("share of samples outside [1−ε, 1+ε]", fontsize=10)
    axes[2].legend(fontsize=7, loc="upper right")
    fig.suptitle("PPO's sensitivity to clip ε and learning rate. Does a small ε under-optimise? "
                 "Compare each ε's KL per update (middle) with how fast it learns (left, heatmap)"
                 f"{' (quick mode: too short to mean anything)' if args.quick else ''}", fontsize=11)
    fig.tight_layout()
    _common.save_figure(fig, args.out / "sensitivity.png", dpi=90)
    _common.save_json({"epsilons": [eps_label(e) for e in EPSILONS], "lrs": LRS,
                       "seeds": list(range(n_seeds)), "n_boot": n_boot,
                       "total_steps": configs[run_name(0.2, CURVE_LR)].total_steps,
                       "curve_lr": CURVE_LR, "curve_smoothing_updates": smooth,
                       "cells": cells, "per_eps_at_curve_lr": per_eps}, args.out / "sensitivity.json")
    print("IQM AUC (rows: lr, columns: eps)")
    print(" " * 8 + "".join(f"{eps_label(e):>11s}" for e in EPSILONS))
    for i, lr in enumerate(LRS):
        print(f"{lr:8g}" + "".join(f"{v:11.1f}" for v in grid[i]))
    for label, d in per_eps.items():
        print(f"{label:10s} lr={CURVE_LR:g}: mean kl_exact {d['kl_exact_iqm']:.5f}, "
              f"mean clip fraction {d['clip_fraction_iqm']:.3f}, AUC {d['auc_iqm']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
