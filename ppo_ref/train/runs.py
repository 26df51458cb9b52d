"""The run folder: what one training run leaves on disk, how train() keeps it, how to read it back.

    RUN/
      config.json          the PPOConfig, field by field (enough to rebuild it: PPOConfig(**json))
      metrics.csv          one row per update, columns METRIC_COLUMNS (log.py says what each means)
      checkpoints/         update_000050.npz + .json, ... (checkpoint.py), the last one at the end;
                           only the newest config.keep_checkpoints are kept
      eval.json            {"mean_return", "std_return", "episodes", "returns"}, written at the end
      env.json             only when train() was given the env (a callable or a VectorEnv): what it
                           was and whether config.json's env_id rebuilds it (`describe_env`)
      .lock                the lock a writing run holds (guards.FolderLock); its process id

Numbers in metrics.csv are written with Python's repr, which reads back to the same float, so two
runs can be compared exactly; only `time_s` and `steps_per_s` depend on the clock. A metric that
does not apply (beta without a KL objective, a return before any episode ended) is `nan`.

train() keeps its folder through a `Run`: `Run.open` checks the env's provenance, locks the folder
(one writer at a time), and makes a new run (only in a new or empty folder: a user's files or
another run's are never overwritten) or restores the training state from a checkpoint;
`checkpoint_if_due` and `close` save checkpoints. A checkpoint is written only after the
metrics.csv rows it counts are on disk, and resuming drops any rows logged after it (and checks
that those kept are the rows of updates 1..k), so a resumed run's metrics.csv is the one an
uninterrupted run writes. A run stopped before its first checkpoint resumes from update 0, which
its config alone determines. docs/reliability.md lists these guarantees and their tests.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import pickle
from pathlib import Path

from .checkpoint import (atomic_write_bytes, is_checkpoint_file, is_temp_file, checkpoint_name, checkpoint_update,
                         list_checkpoints, load_checkpoint, remove_checkpoint, remove_orphans,
                         remove_temp_files, save_checkpoint)
from .config import PPOConfig
from .guards import LOCK_NAME, DeferredInterrupt, FolderLock

__all__ = ["METRIC_COLUMNS", "TIMING_COLUMNS", "Run", "RunFolder", "read_metrics", "read_config",
           "restore_config", "read_eval", "describe_env", "read_env", "check_env_provenance",
           "check_env_id_rebuilds"]

METRIC_COLUMNS = ("update", "global_step", "episodic_return", "episodes", "policy_loss",
                  "value_loss", "entropy", "approx_kl", "kl_exact", "clip_fraction",
                  "explained_variance", "lr", "clip_eps", "beta", "grad_norm", "minibatches",
                  "time_s", "steps_per_s")
TIMING_COLUMNS = ("time_s", "steps_per_s")  # the only columns that may differ between twin runs


RUN_FILES = ("config.json", "metrics.csv", "checkpoints", "eval.json", "env.json", LOCK_NAME)


def _fmt(x) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


class RunFolder:
    """The paths of one run's folder (see the module docstring) and its writes."""

    def __init__(self, path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.metrics_path = self.path / "metrics.csv"

    def check_new(self) -> None:
        """ValueError naming a file unless a new run may write here: the folder does not exist,
        is empty, or holds only what a run stopped before writing config.json leaves (its lock
        file, an empty checkpoints/). A new run never overwrites a user's files or a run's."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise ValueError(f"{self.path} is a file, not a run folder")
        names = sorted(p.name for p in self.path.iterdir() if not is_temp_file(p))
        if self.checkpoints.is_dir():
            names += sorted(f"checkpoints/{p.name}" for p in self.checkpoints.iterdir()
                            if not is_temp_file(p))
        foreign = [n for n in names if n not in RUN_FILES and not n.startswith("checkpoints/")
                   or n.startswith("checkpoints/") and not is_checkpoint_file(n)]
        if foreign:
            raise ValueError(f"{self.path} holds files a ppo_ref run did not write "
                             f"({', '.join(foreign[:3])}); a new run writes only into a new or "
                             f"empty folder: choose another out_dir")
        held = [n for n in names if n not in ("checkpoints", LOCK_NAME)]
        if held:
            raise ValueError(f"{self.path} already holds a run's files ({', '.join(held[:3])}): "
                             f"resume it if it is a run, or choose another out_dir")

    def holds_run(self) -> bool:
        """Whether a run wrote here: a config.json or a checkpoint."""
        return (self.path / "config.json").exists() or bool(list_checkpoints(self.checkpoints))

    def lock(self) -> FolderLock:
        """Make the folder and take its lock (guards.py): ValueError if another run holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        return FolderLock(self.path)

    def write_json(self, name: str, obj) -> None:
        atomic_write_bytes(self.path / name, (json.dumps(obj, indent=2) + "\n").encode())

    def append_metrics(self, row: dict) -> None:
        """Append one row (a dict with every METRIC_COLUMNS key); writes the header first."""
        new = not self.metrics_path.exists()
        with open(self.metrics_path, "a", newline="") as f:
            if new:
                f.write(",".join(METRIC_COLUMNS) + "\n")
            f.write(",".join(_fmt(row[c]) for c in METRIC_COLUMNS) + "\n")

    def sync_metrics(self) -> None:
        """fsync metrics.csv, so that after a system crash it holds at least the rows of every
        checkpoint saved after this call (resume needs them; it drops any later rows)."""
        if self.metrics_path.exists():
            with open(self.metrics_path, "rb+") as f:
                os.fsync(f.fileno())

    def cut_metrics(self, updates: int) -> list:
        """The rows of updates 1 .. `updates`, which must head metrics.csv (else ValueError naming
        it, the file untouched); the rows after them, logged after the checkpoint being resumed
        from (the last perhaps half-written by a crash), are dropped from the file, to be made
        again by the resumed run."""
        lines = self.metrics_path.read_bytes().splitlines(keepends=True) \
            if self.metrics_path.exists() else []
        head = b"".join(lines[:1 + updates])
        rows = _parse_metrics(head, self.metrics_path) if head else []
        logged = [r["update"] for r in rows]
        if logged != list(range(1, updates + 1)):
            first = next((i for i, (a, b) in enumerate(zip(logged, range(1, updates + 1)))
                          if a != b), len(logged))
            raise ValueError(f"{self.metrics_path} does not hold the rows of updates "
                             f"1..{updates} the checkpoint counts: it has {len(logged)} rows, "
                             f"and row {first + 1} is "
                             f"{'missing' if first >= len(logged) else f'update {logged[first]}'}")
        if len(lines) > 1 + updates:
            atomic_write_bytes(self.metrics_path, head)
        return rows


class Run:
    """A training run's folder as train() keeps it, one call per job:

        with Run.open(out_dir, state, env, resume) as run:   env provenance, the folder's lock,
                                                             then a new folder, or `state`
                                                             restored from a checkpoint
            run.checkpoint_if_due(state)                     after every update: a checkpoint
                                                             every checkpoint_every updates, or
                                                             after Ctrl-C (then KeyboardInterrupt)
            run.close(state)                                 the last checkpoint, at the end
                                                             (leaving the `with` releases the lock)

    out_dir None: a run in memory, nothing written (env provenance is still checked).
    Attributes: folder (a RunFolder or None), env_record (env.json's record of an env passed to
    train(), or None), history (the metrics.csv rows already logged: those of a resumed run).
    """

    def __init__(self, folder: RunFolder | None, env_record: dict | None, history: list,
                 lock: FolderLock | None = None):
        self.folder, self.env_record, self.history = folder, env_record, history
        self._lock = lock
        self._interrupt = DeferredInterrupt() if folder is not None else None

    @property
    def path(self) -> Path | None:
        return None if self.folder is None else self.folder.path

    @classmethod
    def open(cls, out_dir, state, env=None, resume: bool = False,
             from_checkpoint: int | None = None) -> "Run":
        """state: the TrainState just built (state.py). env: what was passed to train().
        from_checkpoint: resume from the checkpoint saved after this update instead of the last
        (the later ones are removed: the resumed run makes them again)."""
        if from_checkpoint is not None and not resume:
            raise ValueError("from_checkpoint chooses the checkpoint to resume from: it needs "
                             "resume=True")
        env_record = check_env_provenance(state.config, env, state.envs, out_dir, resume)
        if out_dir is None:
            if resume:
                raise ValueError("resume=True needs out_dir, the run folder to continue")
            return cls(None, env_record, [])
        folder = RunFolder(out_dir)
        # refused before the lock file is made in a folder that is not a run's
        if resume and not folder.holds_run():
            raise ValueError(f"{folder.path} holds no checkpoint and no config.json: no "
                             f"checkpoint to resume from")
        if not resume:
            folder.check_new()
        lock = folder.lock()
        try:
            remove_temp_files(folder.path)              # left by writes killed before their
            remove_orphans(folder.checkpoints)          # rename; no other writer holds the lock
            history = _restore(folder, state, from_checkpoint) if resume else \
                _create(folder, state.config, env_record)
        except BaseException:
            lock.release()
            raise
        return cls(folder, env_record, history, lock)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        if self._interrupt is not None:
            self._interrupt.restore()
        if self._lock is not None:
            self._lock.release()

    def checkpoint_if_due(self, state) -> None:
        """After each update: a checkpoint every checkpoint_every updates; after a Ctrl-C
        (guards.DeferredInterrupt), a checkpoint and KeyboardInterrupt."""
        if self.folder is None:
            return
        if self._due(state) or self._interrupt.requested:
            self.save(state)
        if self._interrupt.requested:
            raise KeyboardInterrupt(f"stopped after update {state.update}, saved in "
                                    f"{self.folder.checkpoints}")

    def close(self, state) -> None:
        """The last checkpoint, unless checkpoint_if_due has just written it. Ctrl-C acts at once
        again from here on (a Ctrl-C during the last update stops the run before evaluation)."""
        if self.folder is None:
            return
        if not self._due(state):
            self.save(state)
        self._interrupt.restore()
        if self._interrupt.requested:
            raise KeyboardInterrupt(f"stopped after the last update, saved in "
                                    f"{self.folder.checkpoints}")

    def save(self, state) -> None:
        """checkpoints/update_NNNNNN of the state, after fsync'ing the metrics rows it counts;
        then only the newest keep_checkpoints checkpoints are kept."""
        tree = state.state_dict()
        self.folder.sync_metrics()
        save_checkpoint(self.folder.checkpoints / checkpoint_name(state.update), tree)
        keep = state.config.keep_checkpoints
        for old in list_checkpoints(self.folder.checkpoints)[:-keep] if keep else ():
            remove_checkpoint(old)

    @staticmethod
    def _due(state) -> bool:
        every = state.config.checkpoint_every
        return bool(every) and state.update % every == 0


def _create(folder: RunFolder, config, env_record) -> list:
    """A new run, the folder locked: refuse a folder that holds a run or a user's files (again:
    another run may have written it since the first look); write config.json (and env.json)."""
    folder.check_new()
    folder.checkpoints.mkdir(exist_ok=True)
    folder.write_json("config.json", config.to_dict())
    if env_record is not None:
        folder.write_json("env.json", env_record)
    return []


def _restore(folder: RunFolder, state, from_checkpoint: int | None) -> list:
    """Load a checkpoint of the folder (the last one, or that of update from_checkpoint) into
    `state` (a TrainState of the same config) and cut metrics.csv to the rows it counts; returns
    those rows. A run stopped before its first checkpoint restarts from update 0, which its
    config alone determines. ValueError if the checkpoint is damaged (naming the previous intact
    one), belongs to another env, network or config, or if its env could not be saved."""
    found = list_checkpoints(folder.checkpoints)
    if not found:
        return _restart(folder, state)
    path = found[-1] if from_checkpoint is None else _chosen(found, from_checkpoint, folder)
    try:
        saved = load_checkpoint(path, expect=state.header())
    except ValueError as e:
        raise ValueError(f"{e}{_previous_intact(found, path, state, folder)}") from None
    try:
        saved_config, saved_update = PPOConfig.from_dict(saved["config"]), int(saved["update"])
    except (KeyError, TypeError, ValueError) as e:
        raise _malformed(path, e) from None
    _check_same_config(saved_config, state.config, f"checkpoint {path} was written with")
    if saved["env"] is None:
        raise ValueError(f"cannot resume {folder.path} exactly: its environment could not be "
                         f"saved ({saved.get('env_error')})")
    if saved_update != checkpoint_update(path):
        raise _malformed(path, ValueError(f"its name says update {checkpoint_update(path)}, "
                                          f"it holds update {saved_update}"))
    try:
        state.load_state_dict(saved)
    # a well-formed file holding a bad state, or a pickled env another gymnasium cannot read
    except (KeyError, TypeError, ValueError, AttributeError, ImportError, EOFError,
            pickle.UnpicklingError) as e:
        raise _malformed(path, e) from None
    history = folder.cut_metrics(state.update)      # drop rows logged after this checkpoint
    for later in found[found.index(path) + 1:]:
        remove_checkpoint(later)                    # made again, the same, by the resumed run
    return history


def _malformed(path, error: Exception) -> ValueError:
    return ValueError(f"checkpoint {path} is incomplete or malformed: {error!r}")


def _check_same_config(saved: PPOConfig, config: PPOConfig, where: str) -> None:
    """ValueError naming the fields in which the config a run was written with differs."""
    if saved != config:
        theirs = saved.to_dict()
        diff = sorted(k for k, v in config.to_dict().items() if theirs.get(k) != v)
        raise ValueError(f"{where} another config (fields {diff} differ); resume with the "
                         f"run's own config.json")


def _restart(folder: RunFolder, state) -> list:
    """Resume a run stopped before its first checkpoint: from update 0, the state built from its
    config (config.json must be this run's), with metrics.csv emptied of the rows logged."""
    if not (folder.path / "config.json").exists():
        raise ValueError(f"{folder.path} holds no checkpoint and no config.json: no checkpoint "
                         f"to resume from")
    _check_same_config(PPOConfig.from_dict(read_config(folder.path)), state.config,
                       f"{folder.path}/config.json holds")
    folder.checkpoints.mkdir(exist_ok=True)
    folder.metrics_path.unlink(missing_ok=True)     # logged again from the first row
    return []


def _chosen(found: list, update: int, folder: RunFolder) -> Path:
    """The checkpoint of `update` among `found`; ValueError listing the ones there are."""
    for path in found:
        if checkpoint_update(path) == update:
            return path
    raise ValueError(f"{folder.checkpoints} holds no checkpoint of update {update}; it holds "
                     f"those of updates {[checkpoint_update(p) for p in found]}")


def _previous_intact(found: list, damaged: Path, state, folder: RunFolder) -> str:
    """The hint appended to the error for a damaged checkpoint: the newest earlier one that
    loads (hash and header), and how to resume from it."""
    for path in reversed(found[:found.index(damaged)]):
        try:
            load_checkpoint(path, expect=state.header())
        except ValueError:
            continue
        k = checkpoint_update(path)
        return (f". The previous checkpoint, of update {k}, is intact: resume from it with "
                f"`ppo-ref train --resume {folder.path} --from-checkpoint {k}` "
                f"(train(..., resume=True, from_checkpoint={k}))")
    return ""


def restore_config(run) -> Path:
    """Write a run folder's missing (or unreadable) config.json back from its newest intact
    checkpoint, which holds the run's config; returns its path. ValueError if config.json is
    readable (it is not replaced) or if no checkpoint is intact."""
    path = Path(run) / "config.json"
    if path.exists():
        try:
            json.loads(path.read_bytes())
            raise ValueError(f"{path} exists and is readable; --restore-config only writes back "
                             f"a missing or unreadable one")
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
    errors = []
    for checkpoint in reversed(list_checkpoints(Path(run) / "checkpoints")):
        try:
            config = PPOConfig.from_dict(load_checkpoint(checkpoint)["config"])
        except (ValueError, KeyError, TypeError) as e:
            errors.append(str(e))
            continue
        RunFolder(run).write_json("config.json", config.to_dict())
        return path
    raise ValueError(f"{run}: no intact checkpoint to restore config.json from"
                     + (f" ({errors[0]})" if errors else ""))


def read_metrics(run) -> list:
    """metrics.csv of a run folder as a list of dicts of floats (the integer columns as int)."""
    path = Path(run) / "metrics.csv"
    if not path.exists():
        raise ValueError(f"{run}: no metrics.csv (not a run folder?)")
    return _parse_metrics(path.read_bytes(), path)


def _parse_metrics(data: bytes, path: Path) -> list:
    """The rows of metrics.csv's bytes `data`; ValueError naming `path` if they are damaged."""
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is damaged: it is not a text (UTF-8) CSV file") from None
    ints = ("update", "global_step", "episodes", "minibatches")
    try:
        return [{k: (int(v) if k in ints else float(v)) for k, v in r.items()} for r in rows]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path} is damaged: {e}") from None


def read_config(run) -> dict:
    """config.json of a run folder. Missing or unreadable while checkpoints remain: ValueError
    saying how to write it back from them (`restore_config`)."""
    path = Path(run) / "config.json"
    restorable = bool(list_checkpoints(Path(run) / "checkpoints"))
    hint = (f"; its checkpoints hold the run's config: write it back with `ppo-ref train "
            f"--resume {run} --restore-config` (runs.restore_config)") if restorable else ""
    if not path.exists():
        raise ValueError(f"{run}: no config.json" + (hint or " (not a run folder?)"))
    return _read_json(path, hint)


def _read_json(path: Path, hint: str = "") -> dict:
    """A run folder's JSON file; a damaged one is a ValueError naming it."""
    try:
        return json.loads(path.read_bytes())
    except ValueError as e:    # UnicodeDecodeError included
        raise ValueError(f"{path} is not valid JSON: {e}{hint}") from None


def read_eval(run) -> dict:
    path = Path(run) / "eval.json"
    if not path.exists():
        raise ValueError(f"{run}: no eval.json (the run has not finished)")
    return _read_json(path)


def describe_env(env, envs, env_id: str) -> dict:
    """env.json for an env passed to train(): a callable returning an Env, or a VectorEnv; `envs`
    is the VectorEnv the run steps. Records its kind, repr and gymnasium spec id (None if it has
    no spec), and "env_id_rebuilds_it": whether gym.make(env_id) makes the same env (the
    registered spec, no other kwargs, no wrappers). Only such a run can be evaluated or resumed
    from its env id alone (`ppo-ref eval`, `ppo-ref train --resume`); any other must be given
    its env again."""
    vector = hasattr(env, "num_envs")
    if vector:    # a vector wrapper does not show in the spec: a wrapped VectorEnv has none here
        spec = getattr(env, "spec", None) if env.unwrapped is env else None
    else:
        spec = getattr(envs.unwrapped.envs[0], "spec", None)
    return {"passed_to_train": "VectorEnv" if vector else "callable", "repr": repr(env),
            "spec_id": spec.id if spec is not None else None,
            "env_id_rebuilds_it": spec is not None and _is_registered_spec(spec, env_id)}


def _is_registered_spec(spec, env_id: str) -> bool:
    """spec == the registered spec of env_id, once what a vector env's spec adds is set aside
    (num_envs and the vectorization mode, which do not change an episode, and the registered
    max_episode_steps, which gym.make_vec writes into the kwargs)."""
    import gymnasium as gym
    try:
        registered = gym.spec(env_id)
    except gym.error.Error:
        return False
    kwargs = {k: v for k, v in spec.kwargs.items() if k not in ("num_envs", "vectorization_mode")}
    if kwargs.get("max_episode_steps", -1) == registered.max_episode_steps:
        del kwargs["max_episode_steps"]
    return dataclasses.replace(spec, kwargs=kwargs) == registered


def read_env(run) -> dict | None:
    """env.json of a run folder (`describe_env`), or None: the run made config.json's env_id."""
    path = Path(run) / "env.json"
    return _read_json(path) if path.exists() else None


def check_env_provenance(config, env, envs, out_dir=None, resume: bool = False) -> dict | None:
    """The env.json record (`describe_env`) of an env passed to train(), None if none was; first,
    ValueError where the run's env id would silently stand for another env:
    * a VectorEnv passed in must be config.env_id's (evaluation and checkpoints use env_id);
    * resuming without the env: the run must have been trained on one env_id rebuilds (env.json);
    * with a run folder, a VectorEnv passed in must be one env_id rebuilds (the final evaluation
      makes fresh envs from it).
    envs: the VectorEnv the run steps (built from env)."""
    spec = getattr(env, "spec", None) if hasattr(env, "num_envs") else None
    if spec is not None and spec.id != config.env_id:
        raise ValueError(f"the VectorEnv passed in is {spec.id!r} but config.env_id is "
                         f"{config.env_id!r}; set env_id to match")
    if resume and env is None and out_dir is not None:
        check_env_id_rebuilds(out_dir, config.env_id)
    if env is None:
        return None
    record = describe_env(env, envs, config.env_id)
    if out_dir is not None and hasattr(env, "num_envs") and not record["env_id_rebuilds_it"]:
        raise ValueError(f"config.env_id {config.env_id!r} does not rebuild the VectorEnv passed "
                         f"in ({record['repr']}), and the run folder's final evaluation makes "
                         f"fresh envs from it; pass a callable returning one Env instead")
    return record


def check_env_id_rebuilds(run_dir, env_id: str) -> None:
    """ValueError if the run in run_dir was trained on an env passed to train() that env_id does
    not rebuild (its env.json): going by the id would silently use another environment."""
    record = read_env(run_dir)
    if record is not None and not record.get("env_id_rebuilds_it"):
        raise ValueError(f"{run_dir} was trained on an env passed to train() ({record.get('repr')}"
                         f"), which env id {env_id!r} does not rebuild; pass that env again from "
                         f"Python: train(config, env=..., out_dir=RUN, resume=True), "
                         f"load_agent(RUN, env=...)")
