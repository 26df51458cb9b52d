"""What every demo shares: the command line (--out DIR, --quick) and saving figures and numbers.

A demo is `python demos/NAME.py --out DIR [--quick]`. It writes its PNG figure(s) and a JSON file
holding every number drawn in them into DIR. `--quick` shrinks the run to seconds; the test suite
runs each demo that way (tests/test_demos.py), so the quick path exercises all of a demo's code.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import sys
from pathlib import Path

# Let `python demos/NAME.py` work from a source checkout without installing the package: the
# script's own folder (demos/) is on sys.path, the repository root above it is not.
_REPO_ROOT = Path(__file__).resolve().parents[1]
if (_REPO_ROOT / "ppo_ref").is_dir() and str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

os.environ.setdefault("MPLBACKEND", "Agg")  # demos only write files; never open a window
# Importing ppo_ref pins BLAS to one thread before numpy loads (sweeps parallelise by processes).
import ppo_ref  # noqa: E402,F401
import numpy as np  # noqa: E402

from ppo_ref.plots import forward_fill, mean_std, plot_band, require_matplotlib  # noqa: E402
from ppo_ref.spec.golden import json_ready  # noqa: E402
from ppo_ref.sweep import run_sweep  # noqa: E402
from ppo_ref.train.runs import read_eval, read_metrics  # noqa: E402


def train_in_folder(config, seed: int, root) -> list:
    """A sweep job (ppo_ref.sweep): train `config` with `seed` into the run folder ROOT/seed<seed>.

    The folder gets config.json, metrics.csv and eval.json (deterministic evaluation at the end).
    Bind `root` with functools.partial; the partial of a module-level function stays picklable.
    """
    import dataclasses
    from ppo_ref.train.trainer import train

    config = dataclasses.replace(config, seed=int(seed))
    return list(train(config, out_dir=Path(root) / f"seed{seed}").history)


def train_seeds(name: str, config, n_seeds: int, root) -> None:
    """Train `config` with seeds 0 .. n_seeds - 1 into the run folders ROOT/seed<seed>, one
    process per core (ppo_ref.sweep). An earlier ROOT is removed first: train() refuses to
    overwrite a run folder."""
    shutil.rmtree(root, ignore_errors=True)
    run_sweep({name: config}, seeds=range(n_seeds), job=functools.partial(train_in_folder, root=root))


def read_seed_runs(root, seeds) -> tuple:
    """The runs ROOT/seed<seed> that train_seeds wrote: (metrics, evals, curves), each a dict by
    seed; a curve is (global steps, training return with its gaps forward-filled)."""
    metrics = {s: read_metrics(Path(root) / f"seed{s}") for s in seeds}
    evals = {s: read_eval(Path(root) / f"seed{s}") for s in seeds}
    curves = {s: (np.array([r["global_step"] for r in metrics[s]], dtype=float),
                  forward_fill(np.array([r["episodic_return"] for r in metrics[s]])))
              for s in seeds}
    return metrics, evals, curves


def _number(kind, low, strict):
    """An argparse type: text -> kind(text), which must be finite and > low (>= low if not strict).

    A bad value is then argparse's one-line usage error naming the option, never a traceback
    from deep inside training (or, worse, a silent fallback to the default for a 0)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            bound = f"{'>' if strict else '>='} {low:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value
    parse.__name__ = kind.__name__      # argparse names the type in some messages
    return parse


positive_int = _number(int, 0, strict=True)
nonnegative_int = _number(int, 0, strict=False)
positive_float = _number(float, 0.0, strict=True)
nonnegative_float = _number(float, 0.0, strict=False)


def seeds_option(what: str):
    """An `extra` for parse_args: --seeds N, a positive count, `what` in its help. Read it with
    n_seeds(args)."""
    return lambda parser: parser.add_argument("--seeds", type=positive_int, default=None,
                                              help=f"{what} (default 5; 2 with --quick)")


def n_seeds(args) -> int:
    """--seeds if given, else 5 seeds (2 with --quick)."""
    return args.seeds or (2 if args.quick else 5)


def parse_args(description: str, argv=None, extra=None) -> argparse.Namespace:
    """--out DIR (created if missing), --quick, plus demo-specific options added by `extra(parser)`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path("out") / "demos",
                        help="folder for the PNG figures and the JSON of numbers (default out/demos)")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run that finishes in seconds (used by the test suite)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    try:                      # say so now, not after minutes of training
        require_matplotlib()
    except ValueError as err:
        parser.error(str(err))
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:       # --out names a file, or a folder we may not create
        parser.error(f"--out {args.out}: cannot create the folder ({err.strerror or err})")
    return args


def _check_finite(obj, where="result"):
    """Raise ValueError naming the first non-finite number inside nested dicts/lists."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            _check_finite(value, f"{where}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_finite(value, f"{where}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where} is {obj}; a demo's JSON must hold finite numbers only")


def save_json(obj, path: Path) -> Path:
    """Write the numbers behind a figure; refuses NaN/inf so every number in a JSON is meaningful."""
    obj = json_ready(obj)
    _check_finite(obj)
    path = Path(path)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    print(f"wrote {path}")
    return path


def save_figure(fig, path: Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as a small PNG and close it.

    The image is reduced to a 256-colour palette (Pillow ships with matplotlib): line plots use far
    fewer colours than that, and the file shrinks about threefold, which keeps the figures committed
    for the README well under 200 KB.
    """
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256).save(path, format="PNG", optimize=True)
    print(f"wrote {path}")
    return path


def plot_seed_curves(ax, curves: dict, target: float, target_label: str, ylabel: str,
                     seed_alpha: float = 1.0) -> tuple:
    """The learning-curve panel of a multi-seed demo: each seed's curve in grey, their mean +- std
    as a band, the target return as a dashed line. curves: seed -> (global steps, returns).
    Returns the band drawn, (x, mean, std)."""
    seeds = list(curves)
    for s in seeds:
        ax.plot(*curves[s], color="0.6", lw=0.7, alpha=seed_alpha,
                label="individual seeds" if s == seeds[0] else None)
    x, mean, std, _ = mean_std(list(curves.values()))
    plot_band(ax, x, mean, std, f"mean ± std over {len(seeds)} seeds", color="C0")
    ax.axhline(target, color="C3", ls="--", lw=0.9, label=target_label)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return x, mean, std
