"""`ppo-ref compare`: do two sets of runs differ, and which is better? With interval estimates.

    ppo-ref compare --a RUN... --b RUN... [--metric auc|final|steps_to_threshold] [--threshold X]
                    [--json FILE] [--plot FILE] [--seed S] [--n-boot B]

Each run is reduced to one score (the metric), and the two samples of scores are compared with the
statistics of Agarwal et al. 2021 (ppo_ref/stats.py): for each group, n, the IQM and the mean with
95 % percentile bootstrap intervals; then P(a better than b), the probability that a run of a
beats a run of b, with a 95 % interval from resampling the runs of both groups (the stratified
bootstrap, each group resampled separately), and a verdict:

    "a better" / "b better"       the interval of P excludes 0.5
    "no difference detectable with n and m runs"   otherwise (more runs may still find one)

Inputs (--a and --b each take any mix):
    a run folder (ppo-ref train): its metrics.csv holds, each update, the mean return of the last
        20 finished training episodes (episodic_return) and how many have finished (episodes);
    a CSV file with columns run, global_step, episodic_return, one row per finished training
        episode (global_step: when it finished), any number of runs told apart by `run`. This is
        what a PyTorch or JAX PPO logs; the learning curve is made the same way as a run folder's,
        the mean of the last 20 episodes after each row.

Metrics (a score per run):
    auc (default)        the mean of the learning curve over the steps it spans: the area under
                         it (trapezoid rule over global_step) divided by its width. Higher is
                         better.
    final                eval.json's mean_return (run folders only). Higher is better.
    steps_to_threshold   the first global_step at which at least 20 episodes have finished and the
                         last 20 average >= --threshold; a run that never gets there counts as its
                         step budget (its last global_step), so it is not dropped. Lower is better,
                         so P(a better than b) is P(steps_a < steps_b) there.

Exit status 0; 2 for bad input (one line on stderr naming the file or flag).
"""
from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .stats import bootstrap_ci, iqm, probability_of_improvement, stratified_bootstrap_ci

__all__ = ["METRICS", "WINDOW", "Run", "load_runs", "score", "compare", "main"]

METRICS = ("auc", "final", "steps_to_threshold")
WINDOW = 20                 # episodes averaged into the learning curve (as metrics.csv's return)
CSV_COLUMNS = ("run", "global_step", "episodic_return")
CONFIDENCE = 0.95


@dataclass
class Run:
    """One run's learning curve: after each row, the env steps so far, the mean return of the last
    (up to) WINDOW finished episodes, and how many episodes have finished. `folder` is the run
    folder it came from (None for a CSV run): `final` reads its eval.json."""
    name: str
    steps: np.ndarray       # (R,) global_step, nondecreasing
    returns: np.ndarray     # (R,) mean of the last <= WINDOW episodes
    episodes: np.ndarray    # (R,) episodes finished so far
    budget: int             # the run's last global_step
    folder: Path | None = None


# ----- reading runs ------------------------------------------------------------------------------

def _folder_run(path: Path) -> Run:
    from .train.runs import read_metrics
    every = read_metrics(path)
    rows = [r for r in every if np.isfinite(r["episodic_return"])]   # nan: no episode yet
    if not rows:
        raise ValueError(f"{path}: metrics.csv has no update with a finished episode")
    column = lambda k: np.array([r[k] for r in rows], dtype=np.float64)  # noqa: E731
    return Run(str(path), column("global_step"), column("episodic_return"), column("episodes"),
               int(every[-1]["global_step"]), folder=path)


def _csv_runs(path: Path) -> list:
    """The runs in a CSV file of finished episodes (module docstring), in order of first row."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            found = ", ".join(reader.fieldnames or ())
            raise ValueError(f"{path}: the CSV has no column {', '.join(missing)} (it needs "
                             f"{', '.join(CSV_COLUMNS)}; found {found})")
        episodes = {}
        for line, row in enumerate(reader, start=2):
            try:
                step, ret = float(row["global_step"]), float(row["episodic_return"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}, line {line}: global_step and episodic_return must be "
                                 f"numbers, got {row['global_step']!r}, {row['episodic_return']!r}")
            if not (np.isfinite(step) and np.isfinite(ret)):
                raise ValueError(f"{path}, line {line}: non-finite global_step or episodic_return")
            episodes.setdefault(row["run"], []).append((step, ret))
    if not episodes:
        raise ValueError(f"{path}: the CSV holds no runs (no rows under its header)")
    runs = []
    for name, rows in episodes.items():
        rows.sort(key=lambda r: r[0])          # stable: episodes ending on one step keep order
        steps, rets = np.array(rows).T
        # trailing mean of the last WINDOW episodes after each row; this replaces the loop
        # [rets[max(0, i - WINDOW + 1):i + 1].mean() for i in range(len(rets))]
        cum = np.concatenate([[0.0], np.cumsum(rets)])
        i = np.arange(1, len(rets) + 1)
        start = np.maximum(0, i - WINDOW)
        smooth = (cum[i] - cum[start]) / (i - start)
        runs.append(Run(f"{path}:{name}", steps, smooth, i.astype(np.float64), int(steps[-1])))
    return runs


def load_runs(paths, flag: str) -> list:
    """The runs in `paths` (run folders and CSV files, module docstring); `flag` (--a, --b) names
    the group in errors."""
    runs = []
    for p in map(Path, paths):
        if p.is_dir():
            runs.append(_folder_run(p))
        elif p.is_file():
            runs.extend(_csv_runs(p))
        else:
            raise ValueError(f"{flag}: {p} does not exist (give run folders or CSV files)")
    if not runs:
        raise ValueError(f"{flag}: no runs given")
    return runs


# ----- one score per run -------------------------------------------------------------------------

def score(run: Run, metric: str, threshold: float | None = None) -> float:
    """The run's score under `metric` (module docstring)."""
    if metric == "auc":
        if len(run.steps) == 1 or run.steps[-1] == run.steps[0]:
            return float(run.returns.mean())   # no width to average over
        # trapezoid rule: sum_i (s_{i+1} - s_i) (R_i + R_{i+1}) / 2, over the span s_R - s_1
        area = np.sum(np.diff(run.steps) * (run.returns[1:] + run.returns[:-1]) / 2)
        return float(area / (run.steps[-1] - run.steps[0]))
    if metric == "final":
        if run.folder is None:
            raise ValueError(f"--metric final reads a run folder's eval.json; {run.name} comes "
                             f"from a CSV (use auc or steps_to_threshold)")
        from .train.runs import read_eval
        return float(read_eval(run.folder)["mean_return"])
    reached = (run.episodes >= WINDOW) & (run.returns >= threshold)
    return float(run.steps[np.argmax(reached)]) if reached.any() else float(run.budget)


# ----- the comparison ----------------------------------------------------------------------------

def _summary(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> dict:
    return {"n": len(x), "iqm": iqm(x),
            "iqm_ci": list(bootstrap_ci(x, iqm, n_boot, CONFIDENCE, rng)),
            "mean": float(x.mean()),
            "mean_ci": list(bootstrap_ci(x, np.mean, n_boot, CONFIDENCE, rng))}


def compare(a, b, metric: str = "auc", n_boot: int = 2000,
            rng: np.random.Generator | None = None) -> dict:
    """Scores a and b (one per run) compared as the module docstring says; the dict is the JSON
    that --json writes. For steps_to_threshold, lower scores are better, so P(a better than b) is
    P(-a > -b) = P(a < b)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    for name, x in (("a", a), ("b", b)):
        if len(x) < 2:   # one run: every bootstrap resample is that run, a zero-width interval
            raise ValueError(f"group {name} has {len(x)} run(s); a comparison needs at least 2 "
                             f"per group (the spread between runs is what it measures)")
    rng = np.random.default_rng(0) if rng is None else rng
    sign = -1.0 if metric == "steps_to_threshold" else 1.0
    p = probability_of_improvement(sign * a, sign * b)
    p_ci = stratified_bootstrap_ci((sign * a, sign * b), probability_of_improvement, n_boot,
                                   CONFIDENCE, rng)
    if p_ci[0] > 0.5:
        verdict = "a better"
    elif p_ci[1] < 0.5:
        verdict = "b better"
    else:
        verdict = f"no difference detectable with {len(a)} and {len(b)} runs"
    return {"metric": metric, "a": _summary(a, n_boot, rng), "b": _summary(b, n_boot, rng),
            "probability_of_improvement": {"estimate": p, "ci": list(p_ci)}, "verdict": verdict}


# ----- the figure --------------------------------------------------------------------------------

def plot_curves(groups: dict, out, n_boot: int, rng: np.random.Generator, points: int = 100):
    """Each group's IQM learning curve with its 95 % bootstrap band (resampling runs) into `out`;
    groups maps a legend label to its runs.
    The runs are put on one grid of `points` steps by linear interpolation, each holding its first
    and last value outside its own span."""
    from .plots import require_matplotlib
    require_matplotlib()
    import matplotlib.pyplot as plt   # lazily: only --plot needs matplotlib

    all_runs = [r for runs in groups.values() for r in runs]
    grid = np.linspace(min(r.steps[0] for r in all_runs), max(r.steps[-1] for r in all_runs),
                       points)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (label, runs), color in zip(groups.items(), ("C0", "C3")):   # label: legend text
        curves = np.array([np.interp(grid, r.steps, r.returns) for r in runs])   # (runs, points)
        # resampling runs = resampling the row indices of `curves`; the IQM at every grid point
        low, high = bootstrap_ci(np.arange(len(runs), dtype=np.float64),
                                 lambda idx: iqm(curves[idx.astype(int)], axis=0),
                                 n_boot, CONFIDENCE, rng)
        ax.plot(grid, iqm(curves, axis=0), color=color, label=f"{label} (n={len(runs)})")
        ax.fill_between(grid, low, high, color=color, alpha=0.25, linewidth=0)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"training return (mean of last {WINDOW} episodes)")
    ax.set_title("IQM over runs, 95 % bootstrap band: where the bands part, the groups differ",
                 fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


# ----- the command -------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):   # argparse prints usage and exits; the CLI wants one line, status 2
        raise ValueError(message)


def _parser():
    p = _Parser(prog="ppo-ref compare", description="Compare two groups of runs (run folders or "
                "CSV files of run, global_step, episodic_return) with IQM, mean, P(a better than "
                "b) and 95 %% bootstrap intervals (Agarwal et al. 2021).")
    p.add_argument("--a", nargs="+", required=True, metavar="RUN", help="group a: run folders "
                   "and/or CSV files")
    p.add_argument("--b", nargs="+", required=True, metavar="RUN", help="group b, the same")
    p.add_argument("--metric", choices=METRICS, default="auc", help="the score of a run "
                   "(default auc: the mean training return over the run's steps)")
    p.add_argument("--threshold", type=float, help="the return steps_to_threshold waits for")
    p.add_argument("--json", metavar="FILE", help="also write the result to FILE")
    p.add_argument("--plot", metavar="FILE", help="draw both groups' IQM learning curves with "
                   "bootstrap bands into FILE (needs matplotlib)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    return p


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"   # steps as 36,352, not 3.635e+04


def _interval(ci) -> str:
    return f"[{_num(ci[0])}, {_num(ci[1])}]"


def main(argv=None) -> int:
    """ppo-ref compare (module docstring)."""
    args = _parser().parse_args(argv)
    if args.metric == "steps_to_threshold" and args.threshold is None:
        raise ValueError("--metric steps_to_threshold needs --threshold (the return to reach)")
    if args.n_boot < 1:
        raise ValueError(f"--n-boot must be at least 1, got {args.n_boot}")
    groups = {"a": load_runs(args.a, "--a"), "b": load_runs(args.b, "--b")}
    scores = {k: [score(r, args.metric, args.threshold) for r in runs]
              for k, runs in groups.items()}
    rng = np.random.default_rng(args.seed)
    result = compare(scores["a"], scores["b"], args.metric, args.n_boot, rng)

    print(f"metric: {args.metric}" + (f" (threshold {args.threshold:g}; fewer steps is better)"
                                      if args.metric == "steps_to_threshold" else ""))
    for k in ("a", "b"):
        s = result[k]
        print(f"  {k}: n {s['n']:3d}   IQM {_num(s['iqm'])} {_interval(s['iqm_ci'])}   "
              f"mean {_num(s['mean'])} {_interval(s['mean_ci'])}")
    p = result["probability_of_improvement"]
    low, high = p["ci"]
    print(f"P(a better than b) = {p['estimate']:.3f} [{low:.3f}, {high:.3f}]   (95 % CIs, "
          f"{args.n_boot} bootstrap resamples, seed {args.seed})")
    print(f"verdict: {result['verdict']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        labels = {k: f"{k}: {Path(paths[0]).name}" + (" + ..." if len(paths) > 1 else "")
                  for k, paths in (("a", args.a), ("b", args.b))}
        plot_curves({labels[k]: runs for k, runs in groups.items()}, args.plot, args.n_boot, rng)
        print(f"wrote {args.plot}")
    return 0
