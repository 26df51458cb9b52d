"""Multi-seed sweeps: a grid of (config x seed) runs on any concurrent.futures.Executor.

One PPO run is a pure function of its config and seed, (config, seed) -> history (a list of one
dict of metrics per update; same seed => bit-identical history). Runs share nothing, so a sweep
is just a map over the grid:

    histories = executor.map(job, configs, seeds)

which is why any `concurrent.futures.Executor` can run it: a ProcessPoolExecutor on this machine
(the default, one worker per usable core), a ThreadPoolExecutor for debugging, or a distributed one
(Dask's `Client.get_executor()`) unchanged -- the job, its config and its history are picklable.

Results are gathered in grid order, not completion order, so the CSV of a sweep does not depend
on which worker finished first. The CSV is long format: one row per (run, seed, update), with the
columns run, seed, env_id, objective, global_step, then the metrics in alphabetical order.

Each worker process is one core's worth of work; numpy's BLAS should not start threads of its own
on top (our matrices are tiny, and on a busy machine BLAS threads made training ~10x slower).
Importing ppo_ref before numpy pins BLAS to one thread (ppo_ref.single_threaded_blas), and every
worker inherits that setting from its parent's environment.

    from dataclasses import replace
    from ppo_ref.train.trainer import PRESETS
    from ppo_ref.sweep import run_sweep
    cfg = PRESETS["CartPole-v1"]
    rows = run_sweep({"clip": cfg, "unclipped": replace(cfg, objective="unclipped")}, seeds=range(5),
                     csv_path="runs/sweep.csv")
"""
from __future__ import annotations

import csv
import dataclasses
import math
import operator
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

__all__ = ["SweepJob", "make_grid", "usable_cores", "train_history", "run_sweep", "write_csv",
           "read_csv", "KEY_COLUMNS"]

KEY_COLUMNS = ("run", "seed", "env_id", "objective", "global_step")


@dataclasses.dataclass(frozen=True)
class SweepJob:
    """One cell of the grid: the run's name (shared by all its seeds), its config and seed."""
    run: str
    config: object
    seed: int


def make_grid(configs: Mapping[str, object] | Sequence[object], seeds: Iterable[int]) -> list[SweepJob]:
    """Every (config, seed) pair, configs outermost; a list of configs is named env_id/objective.

    Seeds must be distinct integers: a repeated seed would give two runs with the same (run, seed)
    key, which the CSV and the plots could not tell apart.
    """
    checked = []
    for i, s in enumerate(seeds):
        try:
            checked.append(operator.index(s))       # int or numpy integer; 1.5 or "1" is an error
        except TypeError:
            raise TypeError(f"make_grid: seeds[{i}] must be an integer, got {s!r}") from None
        if checked[-1] in checked[:-1]:
            raise ValueError(f"make_grid: seeds[{i}] repeats the seed {s}")
    seeds = checked
    if not seeds:
        raise ValueError("make_grid: seeds is empty; give at least one seed")
    if not isinstance(configs, Mapping):
        named = {}
        for i, c in enumerate(configs):
            name = f"{c.env_id}/{c.objective}"
            if name in named:
                raise ValueError(f"make_grid: configs[{i}] repeats the name {name!r}; "
                                 f"pass a dict {{name: config}} to tell them apart")
            named[name] = c
        configs = named
    if not configs:
        raise ValueError("make_grid: configs is empty; give at least one config")
    return [SweepJob(name, config, seed) for name, config in configs.items() for seed in seeds]


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS reports one (a container
    or `taskset` can allow fewer than os.cpu_count()), else os.cpu_count()."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def train_history(config, seed: int) -> list[dict]:
    """The default job: train `config` with its seed replaced by `seed`, return the per-update history.

    Defined at module level so that process pools can pickle it by name.
    """
    from .train.trainer import train  # imported here: a sweep of other jobs does not need the trainer

    return list(train(dataclasses.replace(config, seed=int(seed))).history)


def run_sweep(configs, seeds: Iterable[int], executor: Executor | None = None,
              job: Callable[[object, int], list] = train_history,
              csv_path: str | os.PathLike | None = None) -> list[dict]:
    """Run `job(config, seed)` for every cell of make_grid(configs, seeds); return the long-format rows.

    executor: any concurrent.futures.Executor; None builds a ProcessPoolExecutor with
        min(cores this process may use, number of jobs) workers and shuts it down afterwards. An
        executor you pass in stays open (you own it).
    job: a picklable callable (config, seed) -> list of dicts, each with a "global_step" key.
    csv_path: if given, the rows are also written there (see write_csv).

    Each row is {"run", "seed", "env_id", "objective", "global_step", **metrics of that update}.
    """
    grid = make_grid(configs, seeds)
    own = executor is None
    if own:
        executor = ProcessPoolExecutor(max_workers=min(usable_cores(), len(grid)))
    try:
        futures = [executor.submit(job, cell.config, cell.seed) for cell in grid]
        histories = [f.result() for f in futures]  # grid order, whatever the completion order
    finally:
        if own:
            executor.shutdown()

    rows = []
    for cell, history in zip(grid, histories):
        for i, record in enumerate(history):
            if "global_step" not in record:
                raise ValueError(f"run_sweep: run {cell.run!r} seed {cell.seed}: history[{i}] "
                                 f"has no 'global_step' (keys: {sorted(record)})")
            rows.append({"run": cell.run, "seed": cell.seed,
                         "env_id": getattr(cell.config, "env_id", ""),
                         "objective": getattr(cell.config, "objective", ""), **record})
    if csv_path is not None:
        write_csv(rows, csv_path)
    return rows


def write_csv(rows: Sequence[Mapping], path: str | os.PathLike) -> Path:
    """Write rows as CSV: KEY_COLUMNS first, then every other key (union over rows) alphabetically.

    A metric missing from a row is written as an empty cell; floats are written with repr(), which
    round-trips exactly, so a CSV read back gives bit-identical numbers.
    """
    keys = sorted({k for row in rows for k in row} - set(KEY_COLUMNS))
    columns = list(KEY_COLUMNS) + keys
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c, "")) for c in columns])
    return path


def _cell(value):
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "item"):           # numpy scalar
        return _cell(value.item())
    return value


def read_csv(path: str | os.PathLike) -> list[dict]:
    """Read a sweep CSV back: run/env_id/objective stay strings, seed is an int, the rest floats
    (an empty cell becomes NaN; a metric that is not a number stays text).

    A seed or global_step that is not a number, a row with more cells than the header, and a
    file that is not UTF-8 text are ValueErrors naming the file, the line and the column.
    """
    rows = []
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        try:
            for raw in reader:
                rows.append(_parse_row(raw, f"{path}, line {reader.line_num}"))
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); is it a "
                             f"binary file?") from None
        except csv.Error as e:
            raise ValueError(f"{path}, line {reader.line_num}: {e}") from None
    return rows


def _parse_row(raw: Mapping, where: str) -> dict:
    if None in raw:                  # csv.DictReader keeps the cells beyond the header there
        raise ValueError(f"{where}: {len(raw) - 1 + len(raw[None])} cells, the header has "
                         f"{len(raw) - 1}")
    row = {}
    for key, text in raw.items():
        if key in ("run", "env_id", "objective"):
            row[key] = text
        elif key in ("seed", "global_step"):       # the keys a row is grouped and drawn by
            try:
                row[key] = int(text) if key == "seed" else float(text)
            except (TypeError, ValueError):        # TypeError: a short row's missing cell
                kind = "an integer" if key == "seed" else "a number"
                got = "missing" if text is None else f"{text!r}, not {kind}"
                raise ValueError(f"{where}, column {key}: {got}") from None
        elif text is None or text == "":
            row[key] = math.nan
        else:
            try:
                row[key] = float(text)
            except ValueError:        # a non-numeric metric (e.g. a label) stays text
                row[key] = text
    return row
