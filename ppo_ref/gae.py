"""Generalized Advantage Estimation (Schulman et al. 2016, "High-Dimensional Continuous
Control Using Generalized Advantage Estimation"), with episode ends done right.

Rollout arrays are time-major: shape (T,) for one environment or (T, N) for N
environments stepped together; row t holds the transition s_t --a_t--> s_{t+1}.
Both functions take numpy arrays (and return arrays) or autodiff Tensors for the
float inputs (and return Tensors, differentiable with respect to them).

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)           (TD error)
    A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1},   A_T = 0           (GAE)
            = sum_{l >= 0} (gamma * lam)^l * delta_{t+l}    (summed up to the episode's end)
    R_t     = A_t + V(s_t)                                   (the value target, "returns")

where done_t = terminated_t or truncated_t. lam = 0 gives the one-step TD error,
lam = 1 the Monte-Carlo return minus V(s_t) (bootstrapped where the data stops).
A_T = 0 cuts the sum at the end of the rollout, as the PPO paper's truncated
estimator (Schulman et al. 2017, eq. 11) does; delta_{T-1} still bootstraps.

Termination vs truncation (gymnasium's two flags). `terminated` means s_{t+1} is a
terminal state of the MDP: its value is 0 by definition, so nothing is bootstrapped.
`truncated` means the episode was cut short for an outside reason (a time limit, the
end of the rollout's data): the future still exists, so delta_t bootstraps from
V(s_{t+1}), the value of the final observation. In both cases the recursion stops
(A_t does not look past the episode's end into the next one). Treating truncation
as termination, as many older implementations did, teaches the critic that the
state before a time limit is worth nothing.

next_values[t] must be V of the TRUE next state s_{t+1}. With gymnasium >= 1.0's
default next-step autoreset, the observation returned together with a done flag IS
the final observation, so next_values[t] = V(obs_{t+1}); the step after it is a
dummy transition (the env resets and ignores the action) that the rollout marks
invalid and leaves out of the loss. With same-step autoreset (gymnasium < 1.0,
Stable-Baselines3's VecEnv) the returned observation is already the first one of
the next episode and the final one sits in `info` — V of the returned observation
would then be wrong.
"""
from __future__ import annotations

import numpy as np

from . import autodiff as ad
from ._checks import check_finite, check_same_shape, check_scalar, first_index, values_of
from .autodiff import Tensor

__all__ = ["compute_gae", "discounted_returns"]


def compute_gae(rewards, values, next_values, terminated, truncated, gamma: float = 0.99,
                lam: float = 0.95):
    """Advantages and value targets by GAE(gamma, lam); see the module docstring.

    Args (all of one shape, (T,) or (T, N), time on axis 0):
        rewards:     r_t.
        values:      V(s_t), under the policy that collected the data.
        next_values: V(s_{t+1}) of the true next state (the final observation when the
                     episode was truncated; read only where not terminated).
        terminated:  bool (or 0/1): s_{t+1} is terminal, do not bootstrap.
        truncated:   bool (or 0/1): the episode was cut after this step; bootstrap.
                     When both flags are set, terminated wins (no bootstrap).
        gamma, lam:  discount and GAE parameter, each in [0, 1].

    Returns (advantages, returns), both of the input shape, in the input's float dtype
    (float64 for integer input). returns = advantages + values. When rewards, values or
    next_values is a Tensor, both are Tensors, differentiable with respect to those inputs
    (PPO itself treats them as constants; the gradient is there for checking and teaching).
    """
    tensors = _tensor_inputs(rewards=rewards, values=values, next_values=next_values)
    rewards, values, next_values = _float_arrays(rewards=rewards, values=values,
                                                 next_values=next_values)
    terminated, truncated = _flags(rewards, terminated=terminated, truncated=truncated)
    gamma = check_scalar("gamma", gamma, 0.0, 1.0)
    lam = check_scalar("lam", lam, 0.0, 1.0)
    if tensors:  # the caller's own Tensors, so gradients reach them
        rewards, values, next_values = (tensors.get(k, a) for k, a in (
            ("rewards", rewards), ("values", values), ("next_values", next_values)))

    not_terminated = 1.0 - terminated.astype(rewards.dtype)            # (T, ...) 1 = bootstrap
    not_done = 1.0 - (terminated | truncated).astype(rewards.dtype)     # (T, ...) 1 = continue
    # delta_t for every t at once: (T,) or (T, N)
    delta = rewards + gamma * not_terminated * next_values - values
    # The backward recursion A_t = delta_t + gamma lam (1 - done_t) A_{t+1}, one time step at
    # a time (vectorised over environments), starting from A_T = 0. next_advantage holds
    # A_{t+1} when row t is reached and A_t after it.
    next_advantage, rows = 0.0, []
    for t in reversed(range(rewards.shape[0])):
        next_advantage = delta[t] + gamma * lam * not_done[t] * next_advantage
        rows.append(next_advantage)
    advantages = (ad.stack if tensors else np.stack)(rows[::-1])        # rows t = 0 .. T-1
    return advantages, advantages + values


def discounted_returns(rewards, terminated, truncated, gamma: float = 0.99,
                       bootstrap_values=None):
    """Monte-Carlo returns G_t = sum_{l >= 0} gamma^l r_{t+l}, summed to the episode's end.

        G_t = r_t + gamma * G_{t+1}             inside an episode
        G_t = r_t                               if terminated_t (even if also truncated_t)
        G_t = r_t + gamma * bootstrap_values[t] if truncated_t, or at the last row t = T-1

    Where the data stops without the episode having terminated (a truncation, or the
    end of the rollout), the unobserved tail is replaced by bootstrap_values[t] =
    V(s_{t+1}); bootstrap_values has the shape of `rewards` and is read only at those
    rows. Without it (None) the tail counts as 0: the plain return of the rewards seen.

    With bootstrap_values = next_values and next_values[t] == values[t+1] inside
    episodes, compute_gae(..., lam=1) returns exactly these G_t (its advantages are
    G_t - values). Kept for teaching and cross-checking; training uses compute_gae.
    """
    if bootstrap_values is None:
        tensors = _tensor_inputs(rewards=rewards)
        (rewards,) = _float_arrays(rewards=rewards)
        tail = np.zeros_like(rewards)
    else:
        tensors = _tensor_inputs(rewards=rewards, bootstrap_values=bootstrap_values)
        rewards, tail = _float_arrays(rewards=rewards, bootstrap_values=bootstrap_values)
    terminated, truncated = _flags(rewards, terminated=terminated, truncated=truncated)
    gamma = check_scalar("gamma", gamma, 0.0, 1.0)
    rewards = tensors.get("rewards", rewards)          # the caller's Tensors, if any
    tail = tensors.get("bootstrap_values", tail)
    where = ad.where if tensors else np.where

    # The value of what follows step t: the next return inside an episode, the
    # bootstrap where the data is cut short, 0 after a terminal state.
    cut = truncated.copy()
    cut[-1] = True
    rows = []
    following = np.zeros_like(terminated[0], dtype=rewards.dtype)   # G_{t+1}, shape (N,) or ()
    for t in reversed(range(rewards.shape[0])):
        following = where(cut[t], tail[t], following)
        following = where(terminated[t], 0.0, following)
        following = rewards[t] + gamma * following
        rows.append(following)
    return (ad.stack if tensors else np.stack)(rows[::-1])             # rows t = 0 .. T-1


# ----- input validation -----------------------------------------------------------------

def _tensor_inputs(**arrays) -> dict:
    """{name: x} for the arguments that are Tensors: the results are then Tensors too."""
    return {name: x for name, x in arrays.items() if isinstance(x, Tensor)}


def _float_arrays(**arrays):
    """Each argument as a float array of shape (T,) or (T, N), finite, all of one shape."""
    out, first_name = [], None
    for name, x in arrays.items():
        arr = values_of(name, x)
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float64)
        if arr.ndim not in (1, 2) or arr.shape[0] == 0:
            raise ValueError(f"{name} must have shape (T,) or (T, N) with T >= 1, got {arr.shape}")
        check_finite(name, arr)
        if first_name is None:
            first_name = name
        else:
            check_same_shape(first_name, out[0], name, arr)
        out.append(arr)
    if len(out) > 1:  # compute in one common float dtype
        dtype = np.result_type(*out)
        out = [a.astype(dtype, copy=False) for a in out]
    return out


def _flags(reference: np.ndarray, **flags):
    """Done flags as bool arrays of the reference's shape; each entry must be bool or 0/1."""
    out = []
    for name, x in flags.items():
        arr = values_of(name, x)
        check_same_shape("rewards", reference, name, arr)
        if arr.dtype != bool:
            bad = (arr != 0) & (arr != 1)     # also catches NaN
            if bad.any():
                i = first_index(bad)
                raise ValueError(f"{name} must be boolean or 0/1, got {arr[i].item()!r} at index {i}")
            arr = arr == 1
        out.append(arr)
    return out
