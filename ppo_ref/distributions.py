"""Action distributions of a policy pi(a|s): Categorical (discrete), DiagGaussian (continuous),
MultiCategorical (several discrete choices at once) and Bernoulli (several on/off switches).

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

from ._checks import (check_binary_actions, check_continuous_actions,
                      check_discrete_actions, check_gaussian, check_logits,
                      check_multi_categorical, check_multi_discrete_actions, check_rng,
                      check_same_family, first_index)
from .autodiff import Tensor, log_softmax, pick, stack, take_along_axis

__all__ = ["Categorical", "DiagGaussian", "MultiCategorical", "Bernoulli"]

_LOG_2PI = math.log(2.0 * math.pi)


class Categorical:
    """pi(a) = softmax(logits)_a over A actions, for each row of a batch.

    logits: (B, A) (any leading batch shape (..., A) works the same way).
        log pi(a)   = logits_a - logsumexp(logits)           (log_softmax)
        H(pi)       = -sum_a pi(a) log pi(a)
        KL(p || q)  = sum_a p(a) (log p(a) - log q(a))
    """

    def __init__(self, logits):
        self.logits = check_logits(logits)
        self.batch_shape = self.logits.shape[:-1]
        self.num_actions = self.logits.shape[-1]
        self._log_probs = log_softmax(self.logits, axis=-1)  # (B, A), finite for finite logits

    def log_probs(self) -> Tensor:
        """log pi(a) = logits_a - logsumexp(logits) for every action: (B, A)."""
        return self._log_probs

    def probs(self) -> np.ndarray:
        """pi(a) = exp(log pi(a)) for every action, as a plain array (B, A)."""
        return np.exp(self._log_probs.data)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw a ~ pi by inverse CDF, one uniform u ~ U[0, 1) per row: a = #{k : cdf_k <= u}.

        The CDF is divided by its last entry so it ends at exactly 1.0 despite rounding;
        then u < cdf_{A-1} always, and an action of probability 0 is never drawn.
        Returns int64 (B,).
        """
        check_rng(rng, "Categorical.sample")
        cdf = self.probs().cumsum(axis=-1)                        # (B, A), non-decreasing
        cdf = cdf / cdf[..., -1:]
        u = rng.random(self.batch_shape + (1,))                   # (B, 1)
        # the loop it replaces: a = min k with u < cdf[k]
        return (cdf <= u).sum(axis=-1).astype(np.int64)

    def mode(self) -> np.ndarray:
        """argmax_a pi(a), the most probable action (the first one at ties), int64 (B,)."""
        return np.argmax(self.logits.data, axis=-1).astype(np.int64)

    def log_prob(self, actions) -> Tensor:
        """log pi(a_b) = logits_{b, a_b} - logsumexp(logits_b) for integer actions (B,) -> (B,)."""
        a = check_discrete_actions(actions, self.batch_shape, self.num_actions)
        return pick(self._log_probs, a)                                   # (B,)

    def entropy(self) -> Tensor:
        """H = -sum_a pi(a) log pi(a), (B,). log_softmax is finite for finite logits, so an
        action with pi(a) = 0 contributes 0 * (finite) = 0, never 0 * (-inf)."""
        logp = self._log_probs
        return -(logp.exp() * logp).sum(axis=-1)

    def kl(self, other: "Categorical") -> Tensor:
        """KL(self || other) = sum_a p(a) (log p(a) - log q(a)) >= 0, (B,)."""
        check_same_family(self, other, "Categorical.kl", "logits")
        logp, logq = self._log_probs, other._log_probs
        return (logp.exp() * (logp - logq)).sum(axis=-1)


class DiagGaussian:
    """pi(a) = N(a; mean, diag(std^2)) with std = exp(log_std), D action dimensions.

    mean: (B, D). log_std: (D,) (state-independent, as in the PPO paper's MuJoCo experiments,
    Schulman et al. 2017, sec. 6.1) or (B, D). With z = (a - mean) / std:
        log pi(a)  = sum_d [ -z_d^2 / 2 - log_std_d - log(2 pi) / 2 ]
        H(pi)      = sum_d [ log_std_d + (1 + log(2 pi)) / 2 ]
        KL(p || q) = sum_d [ log_std_q - log_std_p + (std_p^2 + (mean_p - mean_q)^2) / (2 std_q^2) - 1/2 ]
    """

    def __init__(self, mean, log_std):
        self.mean, self.log_std = check_gaussian(mean, log_std)
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
        check_rng(rng, "DiagGaussian.sample")
        eps = rng.standard_normal(self.mean.shape)
        return np.asarray(self.mean.data + self.std * eps, dtype=self.mean.dtype)

    def mode(self) -> np.ndarray:
        """The mean, (B, D)."""
        return self.mean.data.copy()

    def log_prob(self, actions) -> Tensor:
        """log pi(a_b) = sum_d [-z_d^2 / 2 - log_std_d - log(2 pi) / 2], z = (a - mean) / std:
        actions (B, D) float -> Tensor (B,)."""
        a = check_continuous_actions(actions, self.mean)
        z = (a - self.mean) * _inv_std(self._log_std, "DiagGaussian.log_prob")  # (B, D); times 1/std
        return (-0.5 * (z * z) - self._log_std - 0.5 * _LOG_2PI).sum(axis=-1)

    def entropy(self) -> Tensor:
        """H = sum_d [log_std_d + (1 + log 2 pi) / 2], (B,)."""
        return (self._log_std + 0.5 * (1.0 + _LOG_2PI)).sum(axis=-1)

    def kl(self, other: "DiagGaussian") -> Tensor:
        """KL(self || other) = sum_d [log(std_q / std_p) + (std_p^2 + (mean_p - mean_q)^2) /
        (2 std_q^2) - 1/2], (B,). Written with log-stds: std_p^2 / std_q^2 =
        exp(2 (log_std_p - log_std_q)), so no variance underflows to 0."""
        check_same_family(self, other, "DiagGaussian.kl", "mean")
        log_ratio = self._log_std - other._log_std                     # log(std_p / std_q)
        dz = (self.mean - other.mean) * _inv_std(other._log_std, "DiagGaussian.kl")  # / std_q
        terms = 0.5 * ((2.0 * log_ratio).exp() + dz * dz) - log_ratio - 0.5
        return terms.sum(axis=-1)


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


class MultiCategorical:
    """K independent categoricals, one per component of a MultiDiscrete action space:
    pi(a) = prod_k softmax(logits^(k))_{a_k}, with the logits of all components side by side.

    logits: (B, sum(nvec)), component k owning the nvec[k] columns after those of components
    0 .. k-1; actions (B, K) int. Independence makes every quantity a sum over components
    (never a mean: a mean would be the log-probability of no distribution, and would shrink the
    ratio and the entropy bonus by 1/K):
        log pi(a)   = sum_k log pi_k(a_k)
        H(pi)       = sum_k H(pi_k)
        KL(p || q)  = sum_k KL(p_k || q_k)
    """

    def __init__(self, logits, nvec):
        self.logits, self.nvec = check_multi_categorical(logits, nvec)
        self.batch_shape = self.logits.shape[:-1]
        ends = np.cumsum(self.nvec)
        # component k is a Categorical over its own columns (a slice keeps the gradient path)
        self.components = [Categorical(self.logits[..., end - n:end])
                           for n, end in zip(self.nvec, ends)]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """a_k ~ pi_k for k = 0 .. K-1 in turn (each Categorical.sample draws one uniform per row):
        int64 (B, K)."""
        check_rng(rng, "MultiCategorical.sample")
        return np.stack([c.sample(rng) for c in self.components], axis=-1)

    def mode(self) -> np.ndarray:
        """(argmax_a pi_k(a))_k, int64 (B, K): independent components, so the joint mode."""
        return np.stack([c.mode() for c in self.components], axis=-1)

    def log_prob(self, actions) -> Tensor:
        """log pi(a_b) = sum_k log pi_k(a_bk): actions (B, K) int -> (B,)."""
        a = check_multi_discrete_actions(actions, self.batch_shape, self.nvec)
        per_component = [take_along_axis(c.log_probs(), a[..., k, None], axis=-1)[..., 0]
                         for k, c in enumerate(self.components)]           # K x (B,)
        return stack(per_component, axis=-1).sum(axis=-1)

    def entropy(self) -> Tensor:
        """H = sum_k H(pi_k), (B,)."""
        return stack([c.entropy() for c in self.components], axis=-1).sum(axis=-1)

    def kl(self, other: "MultiCategorical") -> Tensor:
        """KL(self || other) = sum_k KL(p_k || q_k) >= 0, (B,)."""
        check_same_family(self, other, "MultiCategorical.kl", "logits")
        if other.nvec != self.nvec:
            raise ValueError(f"MultiCategorical.kl: nvec {self.nvec} and {other.nvec} differ")
        return stack([p.kl(q) for p, q in zip(self.components, other.components)],
                     axis=-1).sum(axis=-1)


class Bernoulli:
    """D independent Bernoullis, one per entry of a MultiBinary action space, from logits:
    pi(a_d = 1) = sigmoid(l_d). With softplus(l) = log(1 + e^l):

    logits: (B, D); actions (B, D) of 0/1.
        log pi(a)   = sum_d [a_d l_d - softplus(l_d)]
        H(pi)       = sum_d [softplus(l_d) - sigmoid(l_d) l_d]
        KL(p || q)  = sum_d [sigmoid(l_d) (l_d - m_d) + softplus(m_d) - softplus(l_d)]   (q has logits m)

    Computed as the Categorical over the two logits (0, l_d) of each entry, which is the same
    distribution: softmax((0, l)) = (1 - sigmoid(l), sigmoid(l)). Its log_softmax gives
    log(1 - p) = -softplus(l) and log p = l - softplus(l) finite for logits of +-1e3, where
    log(sigmoid(l)) would take the log of an underflowed 0. Like MultiCategorical, every
    quantity is a sum over the D entries, not a mean.
    """

    def __init__(self, logits):
        self.logits = check_logits(logits, "Bernoulli", "D")
        self.batch_shape = self.logits.shape[:-1]
        zeros = np.zeros(self.logits.shape, dtype=self.logits.dtype)
        self.pairs = Categorical(stack([zeros, self.logits], axis=-1))   # (B, D, 2): (0, l_d)

    def probs(self) -> np.ndarray:
        """pi(a_d = 1) = sigmoid(l_d), as a plain array (B, D)."""
        return self.pairs.probs()[..., 1]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """a_d ~ Bernoulli(sigmoid(l_d)), one uniform u per entry: a_d = 1 iff u >= 1 - p_d
        (Categorical.sample over (1 - p_d, p_d)). int64 (B, D)."""
        check_rng(rng, "Bernoulli.sample")
        return self.pairs.sample(rng)

    def mode(self) -> np.ndarray:
        """a_d = 1 where l_d > 0 (p_d > 1/2), else 0 (0 at l_d = 0), int64 (B, D)."""
        return self.pairs.mode()

    def log_prob(self, actions) -> Tensor:
        """log pi(a_b) = sum_d [a_d l_d - softplus(l_d)]: actions (B, D) of 0/1 -> (B,)."""
        a = check_binary_actions(actions, self.logits.shape)
        picked = take_along_axis(self.pairs.log_probs(), a[..., None], axis=-1)   # (B, D, 1)
        return picked[..., 0].sum(axis=-1)

    def entropy(self) -> Tensor:
        """H = sum_d H(Bernoulli(p_d)), (B,)."""
        return self.pairs.entropy().sum(axis=-1)

    def kl(self, other: "Bernoulli") -> Tensor:
        """KL(self || other) = sum_d KL(Bernoulli(p_d) || Bernoulli(q_d)) >= 0, (B,)."""
        check_same_family(self, other, "Bernoulli.kl", "logits")
        return self.pairs.kl(other.pairs).sum(axis=-1)
