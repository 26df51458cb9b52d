"""The run folder: what one training run leaves on disk, and how to read it back.

    RUN/
      config.json          the PPOConfig, field by field (enough to rebuild it: PPOConfig(**json))
      metrics.csv          one row per update, columns METRIC_COLUMNS (see ppo.py for their meaning)
      checkpoints/         update_000050.npz + .json, ... (checkpoint.py), the last one at the end
      eval.json            {"mean_return", "std_return", "episodes", "returns"}, written at the end
      env.json             only when train() was given the env (a callable or a VectorEnv): what it
                           was and whether config.json's env_id rebuilds it (`describe_env`)

Numbers in metrics.csv are written with Python's repr, which reads back to the same float, so two
runs can be compared exactly; only `time_s` and `steps_per_s` depend on the clock. A metric that
does not apply (beta without a KL objective, a return before any episode ended) is `nan`.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

from .checkpoint import atomic_write_bytes

__all__ = ["METRIC_COLUMNS", "TIMING_COLUMNS", "RunFolder", "read_metrics", "read_config",
           "read_eval", "describe_env", "read_env"]

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
