"""Step 5 of the trainer's loop: one log row per update (metrics.csv's columns), the progress line.

    update, global_step    updates done, environment steps taken (all envs, reset steps included)
    episodic_return        mean return of the last RETURN_WINDOW finished training episodes
                           (stochastic policy, unscaled rewards); episodes: how many have finished
    policy_loss, value_loss, entropy
                           the terms of eq. 9 (losses.py), means over the update's minibatches
    approx_kl              mean over the minibatches of the k3 estimate of KL(pi_old || pi) on the
                           sampled actions, measured before each step (so the first is 0)
    kl_exact               the exact mean KL(pi_old || pi_new) over the batch states after the
                           update (the paper's d, which the adaptive KL rule reacts to)
    clip_fraction          share of samples whose ratio lies outside [1 - eps, 1 + eps]
    explained_variance     1 - Var(R - V_old) / Var(R) on the batch: how well V_old predicted R
    lr, clip_eps, beta     the learning rate, clip range and KL coefficient the update used
                           (beta: nan without a KL objective)
    grad_norm              mean global gradient norm (before clipping) over the steps taken
    minibatches            steps taken (fewer than K * num_minibatches when target_kl stops early)
    time_s, steps_per_s    wall time so far (across resumes), steps per second since (re)start

Means over the minibatches of an update, as SB3 logs (CleanRL logs the last); the minibatch whose
approx_kl stopped the update early counts (it was measured, not stepped).
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from ..losses import KL_OBJECTIVES, explained_variance

__all__ = ["RETURN_WINDOW", "Log", "metrics_row"]

RETURN_WINDOW = 20        # episodic_return = mean of the last 20 finished episodes


def metrics_row(state, infos: list, batch: dict, clip_eps: float, kl_exact: float,
                steps_per_s: float) -> dict:
    """The metrics.csv row (module docstring) of the update just counted in state (a TrainState);
    infos: the update rule's info dict per minibatch (update.py)."""
    recent = [r for _, r, _ in state.episodes[-RETURN_WINDOW:]]
    mean = lambda k: float(np.mean([i[k] for i in infos]))  # noqa: E731
    stepped = [i["grad_norm"] for i in infos if not i.get("stopped", False)]
    return {"update": state.update, "global_step": state.global_step,
            "episodic_return": float(np.mean(recent)) if recent else math.nan,
            "episodes": len(state.episodes), "policy_loss": mean("policy_loss"),
            "value_loss": mean("value_loss"), "entropy": mean("entropy"),
            "approx_kl": mean("approx_kl"), "kl_exact": kl_exact,
            "clip_fraction": mean("clip_fraction"),
            "explained_variance": float(explained_variance(batch["values"], batch["returns"])),
            "lr": state.optimizer.lr, "clip_eps": float(clip_eps),
            "beta": float(state.beta) if state.config.objective in KL_OBJECTIVES else math.nan,
            "grad_norm": float(np.mean(stepped)) if stepped else 0.0,
            "minibatches": len(stepped), "time_s": float(state.time_s),
            "steps_per_s": float(steps_per_s)}


class Log:
    """The run's log: the rows so far (history), each new one appended to the run folder's
    metrics.csv and, with progress, shown on stderr. The clock starts when it is made, from the
    state's step count and wall time (both nonzero in a resumed run)."""

    def __init__(self, state, run, progress: bool = False):
        self.history, self.folder, self.progress = list(run.history), run.folder, progress
        self.total_steps, self.num_updates = state.config.total_steps, state.config.num_updates
        self.start, self.start_step, self.time_before = time.perf_counter(), state.global_step, \
            state.time_s

    def wall_time(self) -> float:
        """Seconds of training so far, those before a resume included."""
        return self.time_before + (time.perf_counter() - self.start)

    def write(self, state, infos: list, batch: dict, clip_eps: float, kl_exact: float) -> dict:
        """Log the update just counted in state (TrainState.end_update); returns its row."""
        seconds = state.time_s - self.time_before
        row = metrics_row(state, infos, batch, clip_eps, kl_exact,
                          (state.global_step - self.start_step) / max(seconds, 1e-9))
        self.history.append(row)
        if self.folder is not None:
            self.folder.append_metrics(row)
        if self.progress:
            self._show(row)
        return row

    def close(self) -> None:
        if self.progress and sys.stderr.isatty():
            print(file=sys.stderr)                   # end the line rewritten in place

    def _show(self, row: dict) -> None:
        """On a terminal, rewrite one line in place each update. Elsewhere ('\\r' would make a log
        file one endless line) print a plain line at the updates k where floor(20 k / U) grows,
        i.e. each time another 5% of the U updates is done: at most 20 lines a run, the last one
        included."""
        line = (f"step {row['global_step']:>9,}/{self.total_steps:,} | "
                f"{row['steps_per_s']:7,.0f} steps/s | return {row['episodic_return']:8.2f} | "
                f"approx_kl {row['approx_kl']:.4f} | clip_frac {row['clip_fraction']:.3f}")
        k, U = row["update"], self.num_updates
        if sys.stderr.isatty():
            print("\r" + line + " ", end="", file=sys.stderr, flush=True)
        elif 20 * k // U > 20 * (k - 1) // U:
            print(line, file=sys.stderr, flush=True)
