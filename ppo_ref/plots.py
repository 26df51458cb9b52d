"""Learning curves: mean +- std bands across seeds (or IQM with bootstrap bands), from run folders
or a sweep CSV.

A run folder (written by `ppo_ref.train.trainer.train(config, out_dir=...)`) holds metrics.csv, one row per
update, and config.json. Runs whose configs are equal except for the seed are one group; a group is
drawn as its mean across runs with a band of +- one standard deviation:

    mean_k = (1/n) sum_i y_ik,      std_k = sqrt( sum_i (y_ik - mean_k)^2 / (n - 1) )

at each logged global step k. Conventions: the std is the sample std (ddof=1, the usual "across
seeds" spread; a group of one run has no band). The trainer logs episodic_return as the mean of
the last 20 finished episodes, NaN until the first one ends; any NaN after that is filled with the
previous value (as a running episode-return monitor would show it), and a step where no run has a
value yet is left out. Optional smoothing (`smooth=N`, `--smooth N`) replaces each run's curve by
its trailing mean over N updates before the mean and std across runs are taken.

With `ci=True` (`--ci`) each group is drawn as the interquartile mean across its runs instead,
with a 95 % percentile-bootstrap band that resamples runs (Agarwal et al. 2021; ppo_ref.stats):

    IQM_k = iqm(y_1k, ..., y_nk),    band_k = the 2.5 and 97.5 % quantiles of IQM_k over
                                     n_boot resamples of the n runs, drawn with replacement

The band is an interval for the IQM, not a spread of the runs: it narrows as seeds are added,
which a std band does not. A step where some run has no value yet is left out of the IQM curve
(all runs count at every drawn step); the bootstrap is seeded (`seed`), so a figure redraws the same.

matplotlib is imported inside the drawing functions only: the rest of ppo_ref does not need it.

    ppo-ref plot runs/cartpole-s0 runs/cartpole-s1 runs/cartpole-s2 --out curves.png
    ppo-ref plot runs/sweep.csv --out sweep.png --smooth 10   # a sweep CSV works too
    ppo-ref plot runs/sweep.csv --out sweep_ci.png --ci      # IQM with 95 % bootstrap bands
"""
from __future__ import annotations

import io
import json
import math
import textwrap
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .train.checkpoint import atomic_write_bytes
from .train.runs import read_config, read_metrics
from .stats import bootstrap_ci, iqm
from .sweep import read_csv

__all__ = ["require_matplotlib", "load_runs", "group_runs", "groups_from_rows", "forward_fill",
           "moving_average", "mean_std", "iqm_band", "plot_band", "plot_groups", "plot_runs", "main",
           "DEFAULT_METRICS", "METRIC_LABELS"]

# What a reader looks at first: is it learning, and is each update staying a small step?
DEFAULT_METRICS = ("episodic_return", "approx_kl", "clip_fraction", "entropy")
METRIC_LABELS = {
    "episodic_return": "episodic return (sum of rewards per episode)",
    "eval_return": "evaluation return (deterministic policy)",
    "approx_kl": "approx KL(π_old‖π_new) per update (nats)",
    "clip_fraction": "clip fraction (share of samples with |r−1| > ε)",
    "entropy": "policy entropy (nats)",
    "value_loss": "value loss ½(V−R)²",
    "policy_loss": "policy loss",
    "explained_variance": "explained variance of V",
    "beta": "KL penalty coefficient β",
}
# Metrics that are only defined when an episode ended during the update (forward-filled).
EPISODIC = ("episodic_return", "episodic_length", "episode_return", "episode_length")


def load_runs(paths: Iterable[str | Path]) -> list[dict]:
    """Each run folder as {"path", "label", "config", "metrics": {column: float array}}.

    The label names the config (env, objective, and whatever else differs among the folders given),
    never the seed, so the seeds of one experiment share a label.
    """
    loaded = []
    for p in paths:
        p = Path(p)
        folder = p.parent if p.name == "metrics.csv" else p
        rows = read_metrics(folder)          # a damaged or binary file: ValueError naming it
        if not rows:
            raise ValueError(f"load_runs: {folder}/metrics.csv has no rows yet")
        config = read_config(folder) if (folder / "config.json").exists() else {}
        metrics = {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
        loaded.append({"path": folder, "config": config, "metrics": metrics})
    _label_runs(loaded)
    return loaded


def _config_key(config: Mapping) -> str:
    """The config as a string, minus what differs between seeds of one experiment."""
    return json.dumps({k: v for k, v in config.items() if k not in ("seed", "out_dir")},
                      sort_keys=True, default=str)


def _label_runs(runs: list[dict]) -> None:
    """Label each run by its env and objective, plus whatever else differs among the groups."""
    keys = sorted({_config_key(r["config"]) for r in runs})
    configs = [json.loads(k) for k in keys]
    differing = sorted({name for c in configs for name in c
                        if len({json.dumps(d.get(name), default=str) for d in configs}) > 1})
    for run in runs:
        c = run["config"]
        if not c:
            run["label"] = run["path"].name
            continue
        parts = [str(c.get("env_id", "")), str(c.get("objective", ""))]
        extra = [f"{name}={c.get(name)}" for name in differing if name not in ("env_id", "objective")]
        if len(extra) > 3:  # runs of different presets differ in many fields: name a few, and
            # number the config so that labels (the group keys) stay unique
            parts.insert(0, f"[{keys.index(_config_key(c)) + 1}]")
            extra = extra[:3] + [f"+{len(extra) - 3} more"]
        run["label"] = textwrap.fill(" ".join(p for p in parts + extra if p), 50)  # fits the legend
        run["group"] = _config_key(c)


def group_runs(runs: Sequence[dict]) -> dict[str, list[dict]]:
    """{label: [run, ...]}: runs sharing a config (all but the seed) in one group, in first-seen order."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(run["label"], []).append(run)
    return groups


def groups_from_rows(rows: Sequence[Mapping], group: str = "run") -> dict[str, list[dict]]:
    """Rows of a sweep (ppo_ref.sweep) as {group value: [{"metrics": {column: array}}, one per seed]}."""
    by_run: dict[tuple, list[Mapping]] = {}
    for row in rows:
        by_run.setdefault((row[group], row["seed"]), []).append(row)
    groups: dict[str, list[dict]] = {}
    for (name, _seed), run_rows in by_run.items():
        keys = [k for k in run_rows[0] if isinstance(run_rows[0][k], (int, float))]
        metrics = {k: np.array([float(r.get(k, math.nan)) for r in run_rows]) for k in keys}
        groups.setdefault(str(name), []).append({"metrics": metrics})
    return groups


def forward_fill(y: np.ndarray) -> np.ndarray:
    """Replace each NaN by the last non-NaN value before it (leading NaNs stay NaN).

    Loop it replaces: for k in 1..K-1: if isnan(y[k]): y[k] = y[k-1].
    """
    y = np.asarray(y, dtype=np.float64)
    idx = np.where(np.isnan(y), 0, np.arange(len(y)))
    np.maximum.accumulate(idx, out=idx)
    filled = y[idx]
    filled[np.isnan(y) & (np.cumsum(~np.isnan(y)) == 0)] = math.nan
    return filled


def moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last `window` values (fewer at the start), skipping NaNs.

    Loop it replaces: out[k] = nanmean(y[max(0, k - window + 1) : k + 1]) (NaN if all are NaN).
    """
    y = np.asarray(y, dtype=np.float64)
    if int(window) != window or window < 1:
        raise ValueError(f"moving_average: window must be an integer >= 1, got {window!r}")
    if window == 1:
        return y.copy()
    valid = ~np.isnan(y)
    total = np.concatenate([[0.0], np.cumsum(np.where(valid, y, 0.0))])
    count = np.concatenate([[0], np.cumsum(valid)])
    k = np.arange(1, len(y) + 1)
    start = np.maximum(k - int(window), 0)
    n = count[k] - count[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (total[k] - total[start]) / np.maximum(n, 1), math.nan)


def mean_std(curves: Sequence[tuple[np.ndarray, np.ndarray]]):
    """Mean and sample std (ddof=1) across runs at each x -> (x, mean, std, n_runs_with_a_value).

    Runs that logged at the same steps (seeds of one config do) are compared step by step; otherwise
    each is linearly interpolated onto the shortest run's steps within the common range.
    """
    if not curves:
        raise ValueError("mean_std: no curves")
    xs = [np.asarray(x, dtype=np.float64) for x, _ in curves]
    ys = [np.asarray(y, dtype=np.float64) for _, y in curves]
    for i, (x, y) in enumerate(zip(xs, ys)):
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"mean_std: curve {i} has x of shape {x.shape} and y of shape {y.shape}")
    if all(len(x) == len(xs[0]) and np.array_equal(x, xs[0]) for x in xs):
        grid, stacked = xs[0], np.stack(ys)
    else:
        lo, hi = max(x[0] for x in xs), min(x[-1] for x in xs)
        grid = min(xs, key=len)
        grid = grid[(grid >= lo) & (grid <= hi)]
        stacked = np.stack([np.interp(grid, x, y) for x, y in zip(xs, ys)])
    n = np.sum(~np.isnan(stacked), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.nansum(stacked, axis=0)
        mean = np.where(n > 0, total / np.maximum(n, 1), math.nan)
        sq = np.nansum((stacked - mean) ** 2, axis=0)
        std = np.where(n > 1, np.sqrt(sq / np.maximum(n - 1, 1)), 0.0)
    return grid, mean, std, n


def iqm_band(curves: Sequence[tuple[np.ndarray, np.ndarray]], n_boot: int = 1000,
             confidence: float = 0.95, rng: np.random.Generator | None = None):
    """IQM across runs at each x with its percentile-bootstrap band -> (x, iqm, low, high, n_runs).

    The runs are put on one grid as mean_std does; only steps where every run has a value are
    kept (the IQM of a changing set of runs would jump where one starts). Resampling runs is
    resampling the rows of the (runs, steps) array; each replicate takes the IQM of every column.
    """
    grid, _, _, n = mean_std(curves)                 # checks the curves, finds the common grid
    xs = [np.asarray(x, dtype=np.float64) for x, _ in curves]
    ys = [np.asarray(y, dtype=np.float64) for _, y in curves]
    if all(len(x) == len(grid) and np.array_equal(x, grid) for x in xs):
        stacked = np.stack(ys)
    else:
        stacked = np.stack([np.interp(grid, x, y) for x, y in zip(xs, ys)])
    full = n == len(curves)
    grid, stacked = grid[full], stacked[:, full]
    if grid.size == 0:
        nan = np.full(0, math.nan)
        return grid, nan, nan, nan, len(curves)
    center = iqm(stacked, axis=0)
    rng = np.random.default_rng(0) if rng is None else rng
    low, high = bootstrap_ci(np.arange(len(curves), dtype=np.float64),
                             lambda idx: iqm(stacked[idx.astype(int)], axis=0),
                             n_boot, confidence, rng)
    return grid, np.atleast_1d(center), np.atleast_1d(low), np.atleast_1d(high), len(curves)


def _curve(run: Mapping, metric: str, x: str, smooth: int = 1):
    m = run["metrics"]
    y = m[metric]
    if metric in EPISODIC:
        y = forward_fill(y)
    return m[x], moving_average(y, smooth)


def plot_band(ax, x, mean, std, label: str, color=None, low=None, high=None):
    """Draw mean as a line and mean +- std as a translucent band of the same colour (or the band
    from low to high when they are given: a confidence interval)."""
    keep = ~np.isnan(mean)
    low = mean - std if low is None else np.asarray(low)
    high = mean + std if high is None else np.asarray(high)
    line, = ax.plot(x[keep], mean[keep], label=label, color=color, lw=1.6)
    ax.fill_between(x[keep], low[keep], high[keep], color=line.get_color(), alpha=0.2, lw=0)
    return line


def plot_groups(axes, groups: Mapping[str, list[dict]], metrics: Sequence[str],
                x: str = "global_step", smooth: int = 1, ci: bool = False,
                n_boot: int = 1000, seed: int = 0) -> dict:
    """Draw one band per group on each axis (one axis per metric); return the numbers drawn.

    smooth: each run's curve is first averaged over its last `smooth` updates (moving_average),
    then the mean and std are taken across runs. 1 draws the raw per-update values.
    ci: draw the IQM with its 95 % bootstrap band (iqm_band, n_boot resamples from
    default_rng(seed)) instead of mean +- std.
    """
    rng = np.random.default_rng(seed)
    center_key = "iqm" if ci else "mean"
    drawn = {}
    for ax, metric in zip(axes, metrics):
        drawn[metric] = {}
        for k, (label, runs) in enumerate(groups.items()):
            curves = [_curve(r, metric, x, smooth) for r in runs if metric in r["metrics"]]
            if not curves:
                continue
            if ci:
                grid, center, low, high, n = iqm_band(curves, n_boot, 0.95, rng)
                band = {"x": grid, "iqm": center, "low": low, "high": high, "n_runs": n}
                plot_band(ax, grid, center, None, f"{label} (n={n})", color=f"C{k % 10}",
                          low=low, high=high)
            else:
                grid, mean, std, n = mean_std(curves)
                band = {"x": grid, "mean": mean, "std": std, "n_runs": len(curves)}
                plot_band(ax, grid, mean, std, f"{label} (n={len(curves)})", color=f"C{k % 10}")
            drawn[metric][label] = band
        _label_axis(ax, metric, x)
        if metric == "approx_kl":
            _log_axis(ax, [band[center_key] for band in drawn[metric].values()])
        if metric == "clip_fraction":
            ax.set_ylim(bottom=0.0)   # a fraction: a band's mean - std below 0 is not a value
    return drawn


def _label_axis(ax, metric: str, x: str) -> None:
    ax.set_xlabel("environment steps" if x == "global_step" else x)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(alpha=0.3)


def _log_axis(ax, means) -> None:
    """KLs span decades: a log y axis whose bottom sits a decade under the smallest mean, so a
    band whose lower edge (mean - std) is <= 0 runs off the bottom instead of stretching the axis."""
    positive = np.concatenate([m[np.isfinite(m) & (m > 0)] for m in means] or [np.zeros(0)])
    if len(positive):
        ax.set_yscale("log")
        ax.set_ylim(bottom=positive.min() / 10)


def require_matplotlib() -> None:
    """ValueError saying what to install when matplotlib is missing (`pip install .` brings
    none; the demos call this too, before they train)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError("plotting needs matplotlib, which is not installed: "
                         "pip install 'ppo_ref[plot]' (or pip install matplotlib)") from None


def plot_runs(paths: Sequence[str | Path], out: str | Path, metrics: Sequence[str] | None = None,
              title: str | None = None, smooth: int = 1, ci: bool = False, n_boot: int = 1000):
    """Learning curves of run folders (or sweep CSVs) into one PNG; returns the figure's numbers.
    ci: IQM with 95 % bootstrap bands (n_boot resamples) instead of mean +- std."""
    require_matplotlib()
    import matplotlib.pyplot as plt  # lazily: only plotting needs matplotlib

    if not paths:
        raise ValueError("plot_runs: no runs given; pass run folders or sweep CSV files")
    groups = {}
    for p in paths:
        if Path(p).is_file() and Path(p).name != "metrics.csv":      # a sweep CSV
            groups.update(groups_from_rows(_read_sweep_csv(p)))
    folders = [p for p in paths if not (Path(p).is_file() and Path(p).name != "metrics.csv")]
    if folders:
        for label, runs in group_runs(load_runs(folders)).items():
            groups.setdefault(label, []).extend(runs)
    available = set().union(*(r["metrics"] for runs in groups.values() for r in runs))
    if metrics:                # asked for by name: each must be in at least one run
        unknown = [m for m in metrics if m not in available]
        if unknown:
            raise ValueError(f"plot_runs: no run has the metric(s) {', '.join(unknown)}; "
                             f"they have {', '.join(sorted(available))}")
    else:                      # the defaults: draw those the runs have
        metrics = [m for m in DEFAULT_METRICS if m in available]
        if not metrics:
            raise ValueError(f"plot_runs: the runs have none of the default metrics "
                             f"{', '.join(DEFAULT_METRICS)}; they have "
                             f"{', '.join(sorted(available))}; choose some with --metrics")

    ncols = min(2, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 3.8 * nrows), squeeze=False)
    drawn = plot_groups(axes.ravel(), groups, metrics, smooth=smooth, ci=ci, n_boot=n_boot)
    for ax in axes.ravel()[len(metrics):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=9)
    fig.suptitle(title or _default_title(groups, smooth, ci))
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Drawn in memory, then written atomically as checkpoints are (temporary file in the same
    # folder, then os.replace): a save that fails leaves no partial file and any earlier one whole.
    image = io.BytesIO()
    try:
        fig.savefig(image, format=out.suffix[1:].lower() or "png", dpi=90)
    finally:
        plt.close(fig)
    atomic_write_bytes(out, image.getvalue())
    return drawn


def _default_title(groups: Mapping[str, list], smooth: int, ci: bool = False) -> str:
    """Say what is drawn: mean ± std (or IQM with its CI) only when some config has more than
    one run."""
    n_runs, n_configs = sum(len(r) for r in groups.values()), len(groups)
    counts = (f"{n_runs} run{'s' if n_runs > 1 else ''}, "
              f"{n_configs} config{'s' if n_configs > 1 else ''}")
    smoothed = f", each run averaged over its last {smooth} updates" if smooth > 1 else ""
    if n_runs == n_configs:      # one run per config: nothing to take a std over
        return f"Learning curves, one run per config ({counts}{smoothed})"
    if ci:
        return (f"Learning curves: IQM over the seeds of each config, 95 % bootstrap CI "
                f"({counts}{smoothed})")
    return f"Learning curves: mean ± std over the seeds of each config ({counts}{smoothed})"


def _read_sweep_csv(path) -> list[dict]:
    """read_csv, refusing a file that is not a sweep CSV (the message names the file; read_csv's
    own name the line and column too)."""
    rows = read_csv(path)
    if not rows:
        raise ValueError(f"{path}: a sweep CSV with no rows")
    missing = [c for c in ("run", "seed", "global_step") if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: not a run folder or a sweep CSV "
                         f"(no column {', '.join(missing)})")
    return rows


def main(argv=None) -> int:
    """`ppo-ref plot RUN [RUN ...] --out FILE.png [--metrics m1 m2 ...] [--title TEXT] [--ci]`."""
    from .cli import OneLineParser   # one-line errors; -1e-3 is a number
    parser = OneLineParser(
        prog="ppo-ref plot",
        description="Learning curves (mean ± std over runs that share a config) from run folders "
                    "or sweep CSVs.")
    parser.add_argument("runs", nargs="+", help="run folders (with metrics.csv) or sweep CSV files")
    parser.add_argument("--out", required=True, help="the PNG file to write")
    parser.add_argument("--metrics", nargs="+", default=None,
                        help=f"columns to plot, one panel each (default: {' '.join(DEFAULT_METRICS)})")
    parser.add_argument("--title", default=None, help="figure title")
    parser.add_argument("--smooth", type=int, default=1,
                        help="average each run over its last N updates before taking mean ± std")
    parser.add_argument("--ci", action="store_true",
                        help="draw the IQM over runs with its 95 %% bootstrap band (resampling runs) "
                             "instead of mean ± std")
    parser.add_argument("--n-boot", type=int, default=1000,
                        help="bootstrap resamples for --ci (default 1000)")
    args = parser.parse_args(argv)
    try:
        plot_runs(args.runs, args.out, args.metrics, args.title, args.smooth, args.ci, args.n_boot)
    except ValueError as err:
        parser.exit(2, f"ppo-ref plot: error: {err}\n")
    print(f"wrote {args.out}")
    return 0
