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
                     csv_path="runs/sweep.csv", out_dir="runs/sweep", progress=True)

A sweep given an out_dir survives being killed. Each cell keeps its own folder and, once done, its
rows:

    OUT/<run>/config.txt        repr of the run's config: a re-run with another config is refused
    OUT/<run>/seed_<s>/         the job's folder: for training, the trainer's run folder
    OUT/<run>/seed_<s>.csv      the cell's rows, written (atomically) when its job has returned

Run the same sweep into the same out_dir again and a cell with its rows is not run again, and
any other cell's job is called with its folder, where the trainer resumes from the last
checkpoint (train(..., resume=True)); a resumed run writes the metrics an uninterrupted one
writes, so the finished sweep's rows are those of a sweep never stopped. With out_dir, every
cell's rows are read back from its CSV, finished earlier or now, so the rows have one form
(repr floats read back bit-identical; seed an int, the rest floats).

The progress line (progress=True, on stderr) counts runs done of the total and estimates the
time left from this session's pace:

    ETA = elapsed / (runs finished in this session) * (runs still to finish)

which assumes the runs left cost what the finished ones did, on as many workers.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import operator
import os
import re
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

__all__ = ["SweepJob", "make_grid", "usable_cores", "train_history", "run_sweep", "write_csv",
           "read_csv", "cell_paths", "eta_seconds", "format_duration", "KEY_COLUMNS"]

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


def train_history(config, seed: int, run_dir=None) -> list[dict]:
    """The default job: train `config` with its seed replaced by `seed`, return the per-update history.

    run_dir: the run folder (a sweep with an out_dir passes one): a folder that already holds a
    run's config.json is resumed from its last checkpoint, by the trainer's own resume.
    Defined at module level so that process pools can pickle it by name.
    """
    from .train.trainer import train  # imported here: a sweep of other jobs does not need the trainer

    config = dataclasses.replace(config, seed=int(seed))
    if run_dir is None:
        return list(train(config).history)
    resume = (Path(run_dir) / "config.json").exists()
    return list(train(config, out_dir=run_dir, resume=resume).history)


def cell_paths(out_dir, run: str, seed: int) -> tuple[Path, Path]:
    """(the job's folder, the file of its rows) of one cell of a sweep kept in out_dir.

    The run's name becomes a folder name with every character outside [A-Za-z0-9._-] replaced by
    '_' (so "CartPole-v1/clip" is one folder, CartPole-v1_clip, not two nested ones)."""
    folder = Path(out_dir) / _slug(run)
    return folder / f"seed_{seed}", folder / f"seed_{seed}.csv"


def _slug(run: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(run)) or "_"


def eta_seconds(elapsed: float, finished_now: int, remaining: int) -> float:
    """Time left at this session's pace: elapsed / finished_now * remaining (NaN before the
    first run of this session has finished: there is no pace yet; 0 when nothing remains)."""
    if remaining == 0:
        return 0.0
    if finished_now == 0:
        return math.nan
    return elapsed / finished_now * remaining


def format_duration(seconds: float) -> str:
    """1h02m03s, 4m05s or 6s; '?' for NaN (no estimate yet)."""
    if math.isnan(seconds):
        return "?"
    s = int(round(seconds))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def run_sweep(configs, seeds: Iterable[int], executor: Executor | None = None,
              job: Callable[..., list] = train_history,
              csv_path: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None,
              progress: bool = False, stream=None) -> list[dict]:
    """Run `job(config, seed)` for every cell of make_grid(configs, seeds); return the long-format rows.

    executor: any concurrent.futures.Executor; None builds a ProcessPoolExecutor with
        min(cores this process may use, number of jobs) workers and shuts it down afterwards. An
        executor you pass in stays open (you own it).
    job: a picklable callable (config, seed) -> list of dicts, each with a "global_step" key;
        with an out_dir it is called as job(config, seed, run_dir), run_dir its cell's folder.
    csv_path: if given, the rows are also written there (see write_csv).
    out_dir: keep each cell's folder and rows there (module docstring): a re-run skips the cells
        that finished and resumes the others.
    progress: print "sweep: done/total runs ..., ETA ..." to `stream` (stderr) as runs finish.

    Each row is {"run", "seed", "env_id", "objective", "global_step", **metrics of that update}.
    A job that raises does not stop the others: the sweep finishes every other cell (keeping
    their rows with an out_dir) and then raises the first failure in grid order, naming its cell.
    """
    grid = make_grid(configs, seeds)
    todo = list(range(len(grid)))             # cells by index: a config need not be hashable
    if out_dir is not None:
        _claim_configs(out_dir, grid)
        todo = [i for i in todo if not cell_paths(out_dir, grid[i].run, grid[i].seed)[1].exists()]
    meter = _Progress(len(grid), len(grid) - len(todo), (stream or sys.stderr) if progress else None)
    histories, errors = {}, {}
    own = executor is None and bool(todo)
    if own:
        executor = ProcessPoolExecutor(max_workers=min(usable_cores(), len(todo)))
    futures = {}
    try:
        for i in todo:
            cell = grid[i]
            extra = () if out_dir is None else (cell_paths(out_dir, cell.run, cell.seed)[0],)
            futures[executor.submit(job, cell.config, cell.seed, *extra)] = i
        for future in as_completed(futures):
            i = futures[future]
            cell = grid[i]
            try:
                rows = _cell_rows(cell, future.result())
            except Exception as err:       # noqa: BLE001 -- every other cell still finishes
                errors[i] = err
                meter.failed()
                continue
            if out_dir is not None:
                _write_cell(rows, cell_paths(out_dir, cell.run, cell.seed)[1])
            histories[i] = rows
            meter.finished()
    except BaseException:                    # Ctrl-C, or a row that fails its check: stop
        for future in futures:               # the queued jobs rather than run them all first
            future.cancel()
        raise
    finally:
        if own:
            executor.shutdown(cancel_futures=True)
    if errors:
        first = min(errors)                  # the first failure in grid order
        cell, err = grid[first], errors[first]
        where = f"; re-run it into {out_dir} to resume" if out_dir is not None else ""
        if isinstance(err, ValueError) and str(err).startswith("run_sweep:"):
            raise err
        raise RuntimeError(f"run_sweep: {len(errors)} of {len(grid)} runs failed, the first "
                           f"run {cell.run!r} seed {cell.seed}: {err!r}{where}") from err

    rows = []
    for i, cell in enumerate(grid):   # grid order, whatever the completion order
        if out_dir is not None:
            rows.extend(read_csv(cell_paths(out_dir, cell.run, cell.seed)[1]))
        else:
            rows.extend(histories[i])
    if csv_path is not None:
        write_csv(rows, csv_path)
    return rows


def _cell_rows(cell: SweepJob, history: list) -> list[dict]:
    rows = []
    for i, record in enumerate(history):
        if "global_step" not in record:
            raise ValueError(f"run_sweep: run {cell.run!r} seed {cell.seed}: history[{i}] "
                             f"has no 'global_step' (keys: {sorted(record)})")
        rows.append({"run": cell.run, "seed": cell.seed,
                     "env_id": getattr(cell.config, "env_id", ""),
                     "objective": getattr(cell.config, "objective", ""), **record})
    return rows


def _claim_configs(out_dir, grid: list[SweepJob]) -> None:
    """Record each run's config in out_dir (repr), or check it is the one recorded: finished
    cells are reused, so a re-run with a changed config must not silently mix the two."""
    seen = {}
    for cell in grid:
        folder = cell_paths(out_dir, cell.run, cell.seed)[0].parent
        if seen.setdefault(folder, cell.run) != cell.run:
            raise ValueError(f"run_sweep: runs {seen[folder]!r} and {cell.run!r} share the folder "
                             f"{folder}; give them names that differ in letters or digits")
        record, text = folder / "config.txt", repr(cell.config)
        if record.exists():
            if record.read_text() != text:
                raise ValueError(f"run_sweep: run {cell.run!r} in {out_dir} was swept with another "
                                 f"config ({record}); use a new out_dir or the same config")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            record.write_text(text)


def _write_cell(rows: list[dict], path: Path) -> None:
    """write_csv to a temporary name, then rename: a sweep killed mid-write leaves no cell file
    that looks finished."""
    tmp = path.with_name(path.name + ".tmp")
    write_csv(rows, tmp)
    os.replace(tmp, path)


class _Progress:
    """The progress line: runs done of the total, the failures, the elapsed time and the ETA."""

    def __init__(self, total: int, done_before: int, stream):
        self.total, self.done_before, self.stream = total, done_before, stream
        self.now, self.errors, self.start = 0, 0, time.monotonic()
        if stream is not None and done_before:
            self._print()

    def finished(self) -> None:
        self.now += 1
        self._print()

    def failed(self) -> None:
        self.errors += 1
        self._print()

    def _print(self) -> None:
        if self.stream is None:
            return
        elapsed = time.monotonic() - self.start
        done = self.done_before + self.now
        left = self.total - done - self.errors
        earlier = f" ({self.done_before} done earlier)" if self.done_before else ""
        failed = f", {self.errors} failed" if self.errors else ""
        print(f"sweep: {done}/{self.total} runs done{earlier}{failed}, elapsed "
              f"{format_duration(elapsed)}, ETA {format_duration(eta_seconds(elapsed, self.now, left))}",
              file=self.stream, flush=True)


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
