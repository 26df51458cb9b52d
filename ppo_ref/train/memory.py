"""Refusing at once what cannot fit in memory, rather than failing with a MemoryError (or being
killed) after minutes of allocating: a run whose rollout batch or history, or an evaluation whose
side-by-side episodes, need more memory than the machine has available.

The figures are lower bounds, counting only arrays whose size the config fixes (observations and
actions counted as one number each when their size is not known yet), so a refusal is certain to
be right; a run that passes may still need more than is free.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["available_memory", "check_fits", "check_run_fits", "training_bytes",
           "evaluation_bytes", "ROW_BYTES"]

ROW_BYTES = 800     # one metrics row kept in memory (a dict of 18 numbers: about 900 bytes)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation: MemAvailable of /proc/meminfo (Linux),
    else the free physical pages; None when the system says neither."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check_fits(what: str, nbytes: int, advice: str) -> None:
    """ValueError if `what` needs more than the available memory (`nbytes`, a lower bound)."""
    available = available_memory()
    if available is not None and nbytes > available:
        raise ValueError(f"{what} needs at least {_gb(nbytes)} of memory, more than the "
                         f"{_gb(available)} available; {advice}")


def check_run_fits(config) -> None:
    """ValueError, before anything is allocated, if a run of this PPOConfig cannot fit: its
    training (`training_bytes`), or its final evaluation of eval_episodes side by side."""
    c = config
    check_fits(f"num_envs * num_steps = {c.batch_size:,} transitions a rollout and "
               f"{c.num_updates:,} updates", training_bytes(c),
               "lower num_envs, num_steps or total_steps")
    check_fits(f"the final evaluation of eval_episodes = {c.eval_episodes:,} episodes side by "
               f"side", evaluation_bytes(c.eval_episodes, 1, 1), "lower eval_episodes")


def _gb(n: int) -> str:
    return f"{n / 2**30:,.1f} GB"


def training_bytes(config, obs_size: int = 1, action_size: int = 1) -> int:
    """A lower bound on a run's memory: the rollout buffer of T * N transitions (observation,
    action, log pi_old, V_old, reward, next value: floats of config.dtype; three flags), the
    batch made of its valid rows (as many again), and one kept metrics row per update."""
    itemsize = np.dtype(config.dtype).itemsize
    transition = (obs_size + action_size + 4) * itemsize + 3
    return 2 * config.num_envs * config.num_steps * transition + config.num_updates * ROW_BYTES


def evaluation_bytes(episodes: int, obs_size: int, action_size: int) -> int:
    """A lower bound on an evaluation's memory: per episode (one env copy each, side by side) its
    observation as returned, normalised and cast (float64), its action output, return, flag."""
    return episodes * ((3 * obs_size + action_size + 1) * 8 + 1)
