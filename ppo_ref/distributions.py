"""Action distributions of a policy pi(a|s): Categorical (discrete) and DiagGaussian (continuous).

Parameters may be Tensors (then log_prob, entropy and kl are differentiable with
respect to them) or plain arrays (then the results are constant Tensors).
Sampling returns numpy arrays and uses only the Generator it is given.

Numerical stability: everything is computed from log-probabilities
(log_softmax) or log standard deviations, never from probabilities that can
underflow to 0 and then be logged. Logits of +-1e3 and log_std of -20 give finite
values and gradients. Logits must be finite: mask an action with a large negative
finite logit (e.g. -1e9), not -inf, so that 0 * log 0 never appears.
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import first_index
from .autodiff import Tensor, as_tensor, log_softmax, take_along_axis

__all__ = ["Categorical", "DiagGaussian"]

_LOG_2PI = math.log(2.0 * math.pi)


def _check_rng(rng, owner: str) -> None:
    # only an explicit Generator: passing the np.random module would sample from global state
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{owner}: rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _check_finite(x: Tensor, name: str, owner: str) -> None:
    bad = ~np.isfinite(x.data)
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"{owner}: {name} has a non-finite entry {x.data[i].item()!r} at index {i}")


def _inv_std(log_std: Tensor, owner: str) -> Tensor:
    """1 / std = exp(-log_std), refusing a log_std so negative that this overflows (below about
    -709 in float64, -88 in float32): z = (a - mean) * inf would be nan where a = mean."""
    with np.errstate(over="ignore"):
        inv = (-log_std).exp()
    bad = ~np.isfinite(inv.data)
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"{owner}: log_std {log_std.data[i].item()!r} at index {i} is too small for "
                         f"{inv.dtype}: 1 / std = exp(-log_std) overflows")
    return inv


class Categorical:
    """pi(a) = softmax(logits)_a over A actions, for each row of a batch.

    logits: (B, A) (any leading batch shape (..., A) works the same way).
        log pi(a)   = logits_a - logsumexp(logits)           (log_softmax)
        H(pi)       = -sum_a pi(a) log pi(a)
        KL(p || q)  = sum_a p(a) (log p(a) - log q(a))
    """

    def __init__(self, logits):
        self.logits = as_tensor(logits)
        if self.logits.ndim < 1 or self.logits.shape[-1] < 1:
            raise ValueError(f"Categorical: logits must have shape (B, A) with A >= 1, "
                             f"got {self.logits.shape}")
        _check_finite(self.logits, "logits", "Categorical")
        self.batch_shape = self.logits.shape[:-1]
        self.num_actions = self.logits.shape[-1]
        self._log_probs = log_softmax(self.logits, axis=-1)  # (B, A), finite for finite logits

    def log_probs(self) -> Tensor:
        """log pi(a) for every action: (B, A)."""
        return self._log_probs

    def probs(self) -> np.ndarray:
        """pi(a) for every action, as a plain array (B, A)."""
        return np.exp(self._log_probs.data)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw a ~ pi by inverse CDF, one uniform u ~ U[0, 1) per row: a = #{k : cdf_k <= u}.

        The CDF is divided by its last entry so it ends at exactly 1.0 despite rounding;
        then u < cdf_{A-1} always, and an action of probability 0 is never drawn.
        Returns int64 (B,).
        """
        _check_rng(rng, "Categorical.sample")
        cdf = np.cumsum(self.probs(), axis=-1)                    # (B, A), non-decreasing
        cdf = cdf / cdf[..., -1:]
        u = rng.random(self.batch_shape + (1,))                   # (B, 1)
        # the loop it replaces: a = min k with u < cdf[k]
        return np.sum(cdf <= u, axis=-1).astype(np.int64)

    def mode(self) -> np.ndarray:
        """The most probable action (first one at ties), int64 (B,)."""
        return np.argmax(self.logits.data, axis=-1).astype(np.int64)

    def log_prob(self, actions) -> Tensor:
        """log pi(a_b) for integer actions (B,) -> Tensor (B,)."""
        a = np.asarray(actions.data if isinstance(actions, Tensor) else actions)
        if a.dtype.kind not in "iu":
            raise TypeError(f"Categorical.log_prob: actions must be integers, got dtype {a.dtype}")
        if a.shape != self.batch_shape:
            raise ValueError(f"Categorical.log_prob: actions have shape {a.shape}, "
                             f"logits {self.logits.shape} need actions of shape {self.batch_shape}")
        bad = (a < 0) | (a >= self.num_actions)
        if bad.any():
            i = first_index(bad)
            raise ValueError(f"Categorical.log_prob: action {a[i]} at index {i} is outside "
                             f"[0, {self.num_actions})")
        picked = take_along_axis(self._log_probs, a[..., None], axis=-1)  # (B, 1)
        return picked.reshape(self.batch_shape)

    def entropy(self) -> Tensor:
        """H = -sum_a pi(a) log pi(a), (B,). log_softmax is finite for finite logits, so an
        action with pi(a) = 0 contributes 0 * (finite) = 0, never 0 * (-inf)."""
        logp = self._log_probs
        return -(logp.exp() * logp).sum(axis=-1)

    def kl(self, other: "Categorical") -> Tensor:
        """KL(self || other) = sum_a p(a) (log p(a) - log q(a)) >= 0, (B,)."""
        if not isinstance(other, Categorical):
            raise TypeError(f"Categorical.kl: other must be a Categorical, got {type(other).__name__}")
        if other.logits.shape != self.logits.shape:
            raise ValueError(f"Categorical.kl: logits shapes {self.logits.shape} and "
                             f"{other.logits.shape} differ")
        logp, logq = self._log_probs, other._log_probs
        return (logp.exp() * (logp - logq)).sum(axis=-1)


class DiagGaussian:
    """pi(a) = N(a; mean, diag(std^2)) with std = exp(log_std), D action dimensions.

    mean: (B, D). log_std: (D,) (state-independent, as in the PPO paper's MuJoCo
    experiments) or (B, D). With z = (a - mean) / std:
        log pi(a)  = sum_d [ -z_d^2 / 2 - log_std_d - log(2 pi) / 2 ]
        H(pi)      = sum_d [ log_std_d + (1 + log(2 pi)) / 2 ]
        KL(p || q) = sum_d [ log_std_q - log_std_p + (std_p^2 + (mean_p - mean_q)^2) / (2 std_q^2) - 1/2 ]
    """

    def __init__(self, mean, log_std):
        self.mean = as_tensor(mean)
        self.log_std = as_tensor(log_std)
        if self.mean.ndim < 1:
            raise ValueError(f"DiagGaussian: mean must have shape (B, D), got {self.mean.shape}")
        try:
            ok = np.broadcast_shapes(self.mean.shape, self.log_std.shape) == self.mean.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"DiagGaussian: log_std of shape {self.log_std.shape} does not match "
                             f"mean of shape {self.mean.shape}; use (D,) or the mean's shape")
        _check_finite(self.mean, "mean", "DiagGaussian")
        _check_finite(self.log_std, "log_std", "DiagGaussian")
        self.batch_shape = self.mean.shape[:-1]
        # log_std broadcast to the mean's shape (B, D); the gradient is summed back to (D,)
        self._log_std = self.log_std if self.log_std.shape == self.mean.shape \
            else self.log_std + np.zeros(self.mean.shape, dtype=self.log_std.dtype)

    @property
    def std(self) -> np.ndarray:
        """exp(log_std), broadcast to (B, D), as a plain array."""
        return np.exp(self._log_std.data)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """a = mean + std * eps with eps ~ N(0, I) from rng.standard_normal: (B, D), the mean's dtype."""
        _check_rng(rng, "DiagGaussian.sample")
        eps = rng.standard_normal(self.mean.shape)
        return (self.mean.data + self.std * eps).astype(self.mean.dtype, copy=False)

    def mode(self) -> np.ndarray:
        """The mean, (B, D)."""
        return self.mean.data.copy()

    def log_prob(self, actions) -> Tensor:
        """log pi(a_b), summed over the D dimensions: actions (B, D) float -> Tensor (B,)."""
        if isinstance(actions, Tensor):
            a = actions
        else:
            a = np.asarray(actions)
            if a.dtype.kind == "f":
                a = a.astype(self.mean.dtype, copy=False)
        if a.dtype.kind != "f":
            raise TypeError(f"DiagGaussian.log_prob: actions must be floating point, got dtype {a.dtype}")
        if a.shape != self.mean.shape:
            raise ValueError(f"DiagGaussian.log_prob: actions have shape {a.shape}, "
                             f"the mean has shape {self.mean.shape}")
        _check_finite(as_tensor(a), "actions", "DiagGaussian.log_prob")
        z = (a - self.mean) * _inv_std(self._log_std, "DiagGaussian.log_prob")  # (B, D); times 1/std
        return (-0.5 * (z * z) - self._log_std - 0.5 * _LOG_2PI).sum(axis=-1)

    def entropy(self) -> Tensor:
        """H = sum_d [log_std_d + (1 + log 2 pi) / 2], (B,)."""
        return (self._log_std + 0.5 * (1.0 + _LOG_2PI)).sum(axis=-1)

    def kl(self, other: "DiagGaussian") -> Tensor:
        """KL(self || other) in closed form, (B,). Written with log-stds:
        var_p / var_q = exp(2 (log_std_p - log_std_q)), so no variance underflows to 0."""
        if not isinstance(other, DiagGaussian):
            raise TypeError(f"DiagGaussian.kl: other must be a DiagGaussian, got {type(other).__name__}")
        if other.mean.shape != self.mean.shape:
            raise ValueError(f"DiagGaussian.kl: mean shapes {self.mean.shape} and "
                             f"{other.mean.shape} differ")
        log_ratio = self._log_std - other._log_std                     # log(std_p / std_q)
        # (mean_p - mean_q) / std_q
        dz = (self.mean - other.mean) * _inv_std(other._log_std, "DiagGaussian.kl")
        terms = 0.5 * ((2.0 * log_ratio).exp() + dz * dz) - log_ratio - 0.5
        return terms.sum(axis=-1)
