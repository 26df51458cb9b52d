"""Running statistics for observation normalisation and reward scaling.

Both tricks matter for continuous control and hardly at all for CartPole; the
"implementation matters" study (Engstrom et al. 2020, "Implementation Matters in
Deep Policy Gradients") lists them among the code-level details that change PPO's
results. Everything here is plain numpy and every object has a
``state_dict()`` of plain arrays and floats, so a checkpoint can store it.

RunningMeanStd merges batch statistics with the parallel algorithm of Chan,
Golub & LeVeque (1979, "Updating formulae and a pairwise algorithm for computing
sample variances"). For a running (mean m_a, variance v_a, count n_a) and a batch
(m_b, v_b, n_b), with delta = m_b - m_a and n = n_a + n_b:

    m   = m_a + delta * n_b / n
    M2  = v_a * n_a + v_b * n_b + delta^2 * n_a * n_b / n
    v   = M2 / n

Conventions: the variance is the population variance (ddof=0), so after any
sequence of updates mean/var equal np.mean/np.var of all the data seen; the
count starts at exactly 0 (not a small epsilon as in OpenAI baselines), so the
first batch's statistics are taken as they are.
"""
from __future__ import annotations

import numpy as np

__all__ = ["RunningMeanStd", "ObservationNormalizer", "RewardScaler"]


class RunningMeanStd:
    """Running mean and (population) variance of arrays of a fixed `shape`.

    update(x) takes a batch x of shape (B, *shape) and merges its statistics
    (Chan et al. 1979, equations in the module docstring).
    """

    def __init__(self, shape=()):
        self.shape = tuple(shape)
        self.mean = np.zeros(self.shape, dtype=np.float64)
        self.var = np.ones(self.shape, dtype=np.float64)  # merge() ignores it (n_a = 0)
        self.count = 0.0

    def update(self, x) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[1:] != self.shape:
            raise ValueError(f"RunningMeanStd.update: x has shape {x.shape}, expected "
                             f"(B, *{self.shape})")
        if x.shape[0] == 0:
            return
        if not np.all(np.isfinite(x)):
            i = np.unravel_index(np.argmax(~np.isfinite(x)), x.shape)
            raise ValueError(f"RunningMeanStd.update: x has a non-finite entry {x[i]!r} "
                             f"at index {tuple(int(j) for j in i)}")
        self.merge(x.mean(axis=0), x.var(axis=0), x.shape[0])

    def merge(self, batch_mean, batch_var, batch_count) -> None:
        """Merge the statistics of a batch of `batch_count` samples (Chan et al. 1979)."""
        n_a, n_b = self.count, float(batch_count)
        n = n_a + n_b
        delta = batch_mean - self.mean
        m2 = self.var * n_a + batch_var * n_b + delta ** 2 * (n_a * n_b / n)
        self.mean = self.mean + delta * (n_b / n)
        self.var = m2 / n
        self.count = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def state_dict(self) -> dict:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": float(self.count)}

    def load_state_dict(self, state: dict) -> None:
        mean = np.asarray(state["mean"], dtype=np.float64)
        var = np.asarray(state["var"], dtype=np.float64)
        if mean.shape != self.shape or var.shape != self.shape:
            raise ValueError(f"RunningMeanStd.load_state_dict: mean {mean.shape} / var {var.shape} "
                             f"do not match shape {self.shape}")
        self.mean, self.var, self.count = mean.copy(), var.copy(), float(state["count"])


class ObservationNormalizer:
    """obs -> clip((obs - mean) / sqrt(var + epsilon), -clip, clip), per feature, except the
    columns marked in `skip`, which pass through unchanged.

    Calling the normaliser first updates the running statistics with the batch
    (unless ``frozen``), then normalises it with the updated statistics (as
    gymnasium's NormalizeObservation wrapper does). Set ``frozen = True`` for
    evaluation, so that test episodes do not move the statistics the policy was
    trained with. ``normalize(obs)`` never updates.

    skip: bool (D,) for flat observations of shape (D,), or None: the one-hot and 0/1 columns
    of an encoded observation (spaces.one_hot_columns). They are on a unit scale already, and a
    standardised indicator that is rarely 1 becomes a large, rare input. Their statistics are
    still kept (so the state has one shape), just not applied.
    """

    def __init__(self, shape, clip: float = 10.0, epsilon: float = 1e-8, skip=None):
        if clip <= 0:
            raise ValueError(f"ObservationNormalizer: clip must be > 0, got {clip}")
        self.rms = RunningMeanStd(shape)
        self.clip = float(clip)
        self.epsilon = float(epsilon)
        self.frozen = False
        self.skip = self._check_skip(skip)

    def _check_skip(self, skip):
        if skip is None:
            return None
        skip = np.asarray(skip)
        if skip.dtype != bool or skip.shape != self.rms.shape:
            raise ValueError(f"ObservationNormalizer: skip must be a bool array of the "
                             f"observation shape {self.rms.shape}, got {skip.dtype} {skip.shape}")
        return skip.copy() if skip.any() else None     # nothing skipped: the plain normaliser

    def normalize(self, obs) -> np.ndarray:
        """obs (B, *shape) or (*shape,) normalised, float64, without updating the statistics."""
        obs = np.asarray(obs, dtype=np.float64)
        z = (obs - self.rms.mean) / np.sqrt(self.rms.var + self.epsilon)
        z = np.clip(z, -self.clip, self.clip)
        if self.skip is not None:
            z = np.where(self.skip, obs, z)
        return z

    def __call__(self, obs) -> np.ndarray:
        """Update with the batch obs (B, *shape) unless frozen, then normalise it."""
        if not self.frozen:
            self.rms.update(obs)
        return self.normalize(obs)

    def state_dict(self) -> dict:
        state = {**self.rms.state_dict(), "clip": self.clip, "epsilon": self.epsilon}
        if self.skip is not None:
            state["skip"] = self.skip.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.rms.load_state_dict(state)
        self.clip, self.epsilon = float(state["clip"]), float(state["epsilon"])
        self.skip = self._check_skip(state.get("skip"))


class RewardScaler:
    """Divide rewards by the standard deviation of a running discounted return.

    This is the "reward scaling" of Engstrom et al. (2020) (also OpenAI
    baselines' VecNormalize). For each of the N environments keep

        R_t = gamma * R_{t-1} + r_t,     R reset to 0 after an episode ends,

    update a RunningMeanStd with the R_t, and hand the learner r_t / sqrt(var(R) + epsilon).
    Conventions: the mean is NOT subtracted (shifting rewards would change which
    policies are optimal, scaling does not); R is reset after termination and after
    truncation (as baselines' and SB3's VecNormalize; gymnasium's NormalizeReward
    resets it only at termination); the statistics are updated before scaling, so
    the first rewards are divided by the std of the first N returns R = r. When those
    are all equal (one env, or a reward of 1 in every env as CartPole's) that std is
    0 and says nothing about the scale: rewards then pass unscaled until the returns
    spread (gymnasium and SB3 instead start the count at 1e-4 with var 1, which still
    multiplies such first rewards by ~70); `clip`, when given, clips the scaled reward to [-clip, clip]
    (off by default).
    Steps marked not `valid` (the autoreset step of a next-step-autoreset vector
    env, see rollout.py) neither advance R nor enter the statistics.
    """

    def __init__(self, num_envs: int, gamma: float = 0.99, epsilon: float = 1e-8,
                 clip: float | None = None):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"RewardScaler: gamma must be in [0, 1], got {gamma}")
        self.num_envs = int(num_envs)
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.clip = None if clip is None else float(clip)
        self.rms = RunningMeanStd(())
        self.returns = np.zeros(self.num_envs, dtype=np.float64)  # R, one per env

    def __call__(self, rewards, dones, valid=None) -> np.ndarray:
        """rewards, dones (terminated | truncated), valid: arrays (N,). Returns scaled rewards (N,)."""
        rewards = np.asarray(rewards, dtype=np.float64)
        dones = np.asarray(dones, dtype=bool)
        valid = np.ones(self.num_envs, dtype=bool) if valid is None else np.asarray(valid, bool)
        for name, a in (("rewards", rewards), ("dones", dones), ("valid", valid)):
            if a.shape != (self.num_envs,):
                raise ValueError(f"RewardScaler: {name} has shape {a.shape}, expected "
                                 f"({self.num_envs},)")
        self.returns[valid] = self.gamma * self.returns[valid] + rewards[valid]
        self.rms.update(self.returns[valid])
        # The std of one return, or of equal ones, says nothing about the reward scale: until
        # the statistics hold a spread (var > 0), rewards pass unscaled (1/sqrt(epsilon) = 1e4
        # would multiply the first rewards of one env, or of CartPole's equal rewards).
        scaled = rewards / np.sqrt(self.rms.var + self.epsilon) if self.rms.var > 0 else rewards.copy()
        if self.clip is not None:
            scaled = np.clip(scaled, -self.clip, self.clip)
        self.returns[dones] = 0.0
        return scaled

    def state_dict(self) -> dict:
        return {**self.rms.state_dict(), "returns": self.returns.copy(), "gamma": self.gamma,
                "epsilon": self.epsilon}

    def load_state_dict(self, state: dict) -> None:
        returns = np.asarray(state["returns"], dtype=np.float64)
        if returns.shape != (self.num_envs,):
            raise ValueError(f"RewardScaler.load_state_dict: returns has shape {returns.shape}, "
                             f"expected ({self.num_envs},)")
        self.rms.load_state_dict(state)
        self.returns = returns.copy()
        self.gamma, self.epsilon = float(state["gamma"]), float(state["epsilon"])
