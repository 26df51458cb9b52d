"""Generalized Advantage Estimation (Schulman et al. 2016, "High-Dimensional Continuous
Control Using Generalized Advantage Estimation"), with episode ends done right.

Rollout arrays are time-major: shape (T,) for one environment or (T, N) for N
environments stepped together; row t holds the transition s_t --a_t--> s_{t+1}.
Both functions take numpy arrays (and return arrays) or autodiff Tensors for the
float inputs (and return Tensors, differentiable with respect to them).

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)     (TD error, eq. 11)
    A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1},   A_T = 0           (GAE)
            = sum_{l >= 0} (gamma * lam)^l * delta_{t+l}    (to the episode's end, eq. 16)
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
from ._checks import arrays_or_tensors, check_overflow, check_rollout

__all__ = ["compute_gae", "discounted_returns"]


@arrays_or_tensors
def compute_gae(rewards, values, next_values, terminated, truncated, gamma: float = 0.99,
                lam: float = 0.95):
    """Advantages and value targets by GAE(gamma, lam) (Schulman et al. 2016, eq. 11 and 16).

    rewards r_t, values V(s_t) (of the policy that collected the data), next_values V(s_{t+1})
    of the true next state (the final observation when truncated; read only where not
    terminated), terminated and truncated (bool or 0/1; when both are set, terminated wins):
    all of one shape, (T,) or (T, N), time on axis 0. gamma, lam in [0, 1].

    Returns (advantages, returns) of the input shape, in the input's float dtype (float64 for
    integers): arrays for arrays; Tensors, differentiable with respect to them, when rewards,
    values or next_values is a Tensor (PPO treats them as constants; the gradient is there for
    checking and teaching). With done_t = terminated_t or truncated_t:

        delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)                  (eq. 11)
        A_t     = sum_{l >= 0} (gamma lam)^l delta_{t+l}, to the episode's end          (eq. 16)
                = delta_t + gamma lam (1 - done_t) A_{t+1},  A_T = 0       (computed backwards)
        R_t     = A_t + V(s_t)                                                (value target)
    """
    rewards, values, next_values, terminated, truncated, gamma, lam = check_rollout(
        rewards=rewards, values=values, next_values=next_values, terminated=terminated,
        truncated=truncated, gamma=gamma, lam=lam)
    not_terminated = 1.0 - terminated.astype(rewards.dtype)            # 1: bootstrap V(s_{t+1})
    not_done = 1.0 - (terminated | truncated).astype(rewards.dtype)     # 1: the episode goes on
    delta = rewards + gamma * not_terminated * next_values - values     # every t at once
    advantage, rows = 0.0, []        # advantage: A_{t+1} on reaching row t, A_t after it
    for t in reversed(range(len(delta))):
        advantage = delta[t] + gamma * lam * not_done[t] * advantage
        rows.append(advantage)
    advantages = ad.stack(rows[::-1])                                    # rows t = 0 .. T-1
    returns = advantages + values
    check_overflow("advantages", advantages.data, "rewards and values")
    check_overflow("returns", returns.data, "rewards and values")
    return advantages, returns


@arrays_or_tensors
def discounted_returns(rewards, terminated, truncated, gamma: float = 0.99,
                       bootstrap_values=None):
    """Monte-Carlo returns G_t = sum_{l >= 0} gamma^l r_{t+l}, summed to the episode's end.

    Where the data stops without the episode having terminated (a truncation, or the
    end of the rollout), the unobserved tail is replaced by bootstrap_values[t] =
    V(s_{t+1}); bootstrap_values has the shape of `rewards` and is read only at those
    rows. Without it (None) the tail counts as 0: the plain return of the rewards seen.

    With bootstrap_values = next_values and next_values[t] == values[t+1] inside
    episodes, compute_gae(..., lam=1) returns exactly these G_t (its advantages are
    G_t - values). Kept for teaching and cross-checking; training uses compute_gae.

        G_t = r_t + gamma * G_{t+1}             inside an episode
        G_t = r_t                               if terminated_t (even if also truncated_t)
        G_t = r_t + gamma * bootstrap_values[t] if truncated_t, or at the last row t = T-1
    """
    rewards, terminated, truncated, gamma, tail = check_rollout(
        rewards=rewards, terminated=terminated, truncated=truncated, gamma=gamma,
        bootstrap_values=bootstrap_values)
    if tail is None:
        tail = np.zeros(rewards.shape, dtype=rewards.dtype)
    following, rows = tail[-1], []   # G_{t+1}: after the last row the data stops, so the bootstrap
    for t in reversed(range(len(rewards))):
        following = ad.where(truncated[t], tail[t], following)   # the bootstrap where cut short,
        following = ad.where(terminated[t], 0.0, following)      # 0 after a terminal state
        following = rewards[t] + gamma * following
        rows.append(following)
    returns = ad.stack(rows[::-1])                                       # rows t = 0 .. T-1
    check_overflow("returns", returns.data, "rewards and bootstrap_values")
    return returns
