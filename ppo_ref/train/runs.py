"""The run folder: what one training run leaves on disk, how train() keeps it, how to read it back.

    RUN/
      config.json          the PPOConfig, field by field (enough to rebuild it: PPOConfig(**json))
      metrics.csv          one row per update, columns METRIC_COLUMNS (log.py says what each means)
      checkpoints/         update_000050.npz + .json, ... (checkpoint.py), the last one at the end
      eval.json            {"mean_return", "std_return", "episodes", "returns"}, written at the end
      env.json             only when train() was given the env (a callable or a VectorEnv): what it
                           was and whether config.json's env_id rebuilds it (`describe_env`)

Numbers in metrics.csv are written with Python's repr, which reads back to the same float, so two
runs can be compared exactly; only `time_s` and `steps_per_s` depend on the clock. A metric that
does not apply (beta without a KL objective, a return before any episode ended) is `nan`.

train() keeps its folder through a `Run`: `Run.open` checks the env's provenance and makes a new
folder or restores the training state from the folder's last checkpoint; `checkpoint_if_due` and
`close` save checkpoints. A checkpoint is written only after the metrics.csv rows it counts are on
disk, and resuming drops any rows logged after it, so a resumed run's metrics.csv is the one an
uninterrupted run writes.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import pickle
from pathlib import Path

from .checkpoint import (atomic_write_bytes, latest_checkpoint, list_checkpoints, load_checkpoint,
                         save_checkpoint)

__all__ = ["METRIC_COLUMNS", "TIMING_COLUMNS", "Run", "RunFolder", "read_metrics", "read_config",
           "read_eval", "describe_env", "read_env", "check_env_provenance",
           "check_env_id_rebuilds"]

METRIC_COLUMNS = ("update", "global_step", "episodic_return", "episodes", "policy_loss",
                  "value_loss", "entropy", "approx_kl", "kl_exact", "clip_fraction",
                  "explained_variance", "lr", "clip_eps", "beta", "grad_norm", "minibatches",
                  "time_s", "steps_per_s")
TIMING_COLUMNS = ("time_s", "steps_per_s")  # the only columns that may differ between twin runs


def _fmt(x) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


class RunFolder:
    """Writes one run's folder (see the module docstring). Creates the directory if needed."""

    def __init__(self, path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.metrics_path = self.path / "metrics.csv"
        self.checkpoints.mkdir(parents=True, exist_ok=True)

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

    def truncate_metrics(self, updates: int) -> None:
        """Keep the header and the rows of the first `updates` updates (resume after a crash:
        rows written after the checkpoint being resumed from are dropped, then re-made)."""
        if not self.metrics_path.exists():
            return
        lines = self.metrics_path.read_text().splitlines(keepends=True)
        atomic_write_bytes(self.metrics_path, "".join(lines[:1 + updates]).encode())


class Run:
    """A training run's folder as train() keeps it, one call per job:

        run = Run.open(out_dir, state, env, resume)   env provenance, then a new folder, or
                                                      `state` restored from its last checkpoint
        run.checkpoint_if_due(state)                  after every checkpoint_every-th update
        run.close(state)                              the last checkpoint, at the end

    out_dir None: a run in memory, nothing written (env provenance is still checked).
    Attributes: folder (a RunFolder or None), env_record (env.json's record of an env passed to
    train(), or None), history (the metrics.csv rows already logged: those of a resumed run).
    """

    def __init__(self, folder: RunFolder | None, env_record: dict | None, history: list):
        self.folder, self.env_record, self.history = folder, env_record, history

    @property
    def path(self) -> Path | None:
        return None if self.folder is None else self.folder.path

    @classmethod
    def open(cls, out_dir, state, env=None, resume: bool = False) -> "Run":
        """state: the TrainState just built (state.py). env: what was passed to train()."""
        env_record = check_env_provenance(state.config, env, state.envs, out_dir, resume)
        if out_dir is None:
            if resume:
                raise ValueError("resume=True needs out_dir, the run folder to continue")
            return cls(None, env_record, [])
        folder = RunFolder(out_dir)
        if resume:
            return cls(folder, env_record, _restore(folder, state))
        _create(folder, state.config, env_record)
        return cls(folder, env_record, [])

    def checkpoint_if_due(self, state) -> None:
        if self.folder is not None and self._due(state):
            self.save(state)

    def close(self, state) -> None:
        """The last checkpoint, unless checkpoint_if_due has just written it."""
        if self.folder is not None and not self._due(state):
            self.save(state)

    def save(self, state) -> None:
        """checkpoints/update_NNNNNN of the state, after fsync'ing the metrics rows it counts."""
        tree = state.state_dict()
        self.folder.sync_metrics()
        save_checkpoint(self.folder.checkpoints / f"update_{state.update:06d}", tree)

    @staticmethod
    def _due(state) -> bool:
        every = state.config.checkpoint_every
        return bool(every) and state.update % every == 0


def _create(folder: RunFolder, config, env_record) -> None:
    """A new run: refuse a folder that already holds one; write config.json (and env.json)."""
    if folder.metrics_path.exists() or list_checkpoints(folder.checkpoints):
        raise ValueError(f"{folder.path} already holds a run (metrics.csv or checkpoints); "
                         f"resume it or choose another out_dir")
    folder.write_json("config.json", config.to_dict())
    if env_record is not None:
        folder.write_json("env.json", env_record)


def _restore(folder: RunFolder, state) -> list:
    """Load the folder's last checkpoint into `state` (a TrainState of the same config) and cut
    metrics.csv to the rows it counts; returns those rows. ValueError if there is no checkpoint,
    if it belongs to another env, network or config, or if its env could not be saved."""
    path = latest_checkpoint(folder.checkpoints)
    if path is None:
        raise ValueError(f"{folder.path}: no checkpoint to resume from")
    saved = load_checkpoint(path, expect=state.header())
    config = state.config.to_dict()
    try:
        if saved["config"] != config:
            diff = sorted(k for k, v in config.items() if saved["config"].get(k) != v)
            raise ValueError(f"checkpoint {path} was written with another config (fields "
                             f"{diff} differ); resume with the run's own config.json")
        if saved["env"] is None:
            raise ValueError(f"cannot resume {folder.path} exactly: its environment could "
                             f"not be saved ({saved['env_error']})")
        state.load_state_dict(saved)
    # a hand-edited .json (the .npz is hashed), or a pickled env another gymnasium cannot read
    except (KeyError, TypeError, AttributeError, ImportError, EOFError,
            pickle.UnpicklingError) as e:
        raise ValueError(f"checkpoint {path} is incomplete or malformed: {e!r}") from None
    folder.truncate_metrics(state.update)     # drop rows logged after this checkpoint
    history = read_metrics(folder.path)
    if len(history) != state.update:
        raise ValueError(f"{folder.path}/metrics.csv has {len(history)} rows, the "
                         f"checkpoint is at update {state.update}")
    return history


def read_metrics(run) -> list:
    """metrics.csv of a run folder as a list of dicts of floats (the integer columns as int)."""
    path = Path(run) / "metrics.csv"
    if not path.exists():
        raise ValueError(f"{run}: no metrics.csv (not a run folder?)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ints = ("update", "global_step", "episodes", "minibatches")
    try:
        return [{k: (int(v) if k in ints else float(v)) for k, v in r.items()} for r in rows]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path} is damaged: {e}") from None


def read_config(run) -> dict:
    path = Path(run) / "config.json"
    if not path.exists():
        raise ValueError(f"{run}: no config.json (not a run folder?)")
    return _read_json(path)


def _read_json(path: Path) -> dict:
    """A run folder's JSON file; a damaged one is a ValueError naming it."""
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


def read_eval(run) -> dict:
    path = Path(run) / "eval.json"
    if not path.exists():
        raise ValueError(f"{run}: no eval.json (the run has not finished)")
    return json.loads(path.read_text())


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
