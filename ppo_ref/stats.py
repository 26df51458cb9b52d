"""Statistics for comparing runs of an RL algorithm: the methods of Agarwal et al. 2021, "Deep
Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS; the rliable library).

A handful of seeds is a small sample from a wide distribution, so a score is reported with an
interval estimate and with statistics that a single odd run cannot swing:

    iqm                         the interquartile mean: robust as the median, efficient as the mean
    probability_of_improvement  P(X > Y): how often a run of one algorithm beats a run of the other
    bootstrap_ci                percentile bootstrap confidence interval of a statistic of a sample
    stratified_bootstrap_ci     the same, resampling within each group (task, algorithm) apart
    performance_profile         the fraction of runs scoring above each threshold tau, with bands

Everything is numpy; randomness comes from the numpy.random.Generator passed in, so an interval
is reproduced exactly by passing a generator with the same seed.

    >>> import numpy as np
    >>> from ppo_ref.stats import iqm, bootstrap_ci, probability_of_improvement
    >>> iqm([1, 2, 3, 4, 5, 6, 7, 100])           # drops 1, 2 and 7, 100
    4.5
    >>> low, high = bootstrap_ci([3., 5., 4., 6., 5.], iqm, rng=np.random.default_rng(0))
    >>> probability_of_improvement([2, 3], [1, 2])  # 3 wins + 1 tie of 4 pairs
    0.875
"""
from __future__ import annotations

import numpy as np

from ._checks import check_count, check_finite, check_nonempty, check_scalar, values_of

__all__ = ["iqm", "probability_of_improvement", "bootstrap_ci", "stratified_bootstrap_ci",
           "performance_profile"]


# ----- input checks (each public function makes one call) ----------------------------------------

def _sample(name: str, x) -> np.ndarray:
    """`x` as a non-empty, finite, 1-D float array; a ValueError naming `name` otherwise."""
    arr = values_of(name, x).astype(np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one score per run), got shape {arr.shape}")
    check_nonempty(name, arr)
    check_finite(name, arr)
    return arr


def _check_iqm(x, axis) -> np.ndarray:
    arr = values_of("x", x).astype(np.float64)
    if axis is None:
        arr = arr.reshape(-1)
        axis = 0
    if arr.ndim == 0 or arr.shape[axis] == 0:
        raise ValueError(f"x is empty along the axis averaged (shape {arr.shape}); "
                         f"there is nothing to average")
    check_finite("x", arr)
    return np.moveaxis(arr, axis, 0)


def _check_bootstrap(n_boot, confidence, rng) -> np.random.Generator:
    check_count("n_boot", n_boot, 1)
    check_scalar("confidence", confidence, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    return np.random.default_rng() if rng is None else rng


def _check_groups(groups) -> list:
    if isinstance(groups, np.ndarray) or not hasattr(groups, "__len__") or len(groups) == 0:
        raise ValueError("groups must be a non-empty sequence of 1-D samples "
                         "(a list or tuple of arrays, one per group)")
    return [_sample(f"groups[{g}]", x) for g, x in enumerate(groups)]


# ----- point estimates ---------------------------------------------------------------------------

def iqm(x, axis=None):
    """The interquartile mean, the 25 % trimmed mean (Agarwal et al. 2021, section 4.1):

        IQM(x) = 1/(n - 2k) * sum_{i=k+1}^{n-k} x_(i),   k = floor(n / 4),

    x_(1) <= ... <= x_(n) the sorted sample: floor(n/4) values are dropped from each end, as
    scipy.stats.trim_mean(x, 0.25) does (so for n < 4 nothing is dropped: the mean). With axis
    None, over all values; with an int axis, along it (a float per remaining index)."""
    values = _check_iqm(x, axis)              # the averaged axis first
    n = values.shape[0]
    k = n // 4
    trimmed = np.sort(values, axis=0)[k:n - k]
    out = trimmed.mean(axis=0)
    return float(out) if out.ndim == 0 else out


def probability_of_improvement(x, y) -> float:
    """P(X > Y) for a run X of one algorithm and a run Y of another, ties counting one half
    (Agarwal et al. 2021, section 4.3):

        P(X > Y) = 1/(n m) * sum_{i=1}^{n} sum_{j=1}^{m} S(x_i, y_j),
        S(a, b) = 1 if a > b,  1/2 if a = b,  0 if a < b,

    which is the Mann-Whitney U statistic of x against y divided by n m. 0.5 means neither tends
    to score higher; the statistic says how often, not by how much."""
    x, y = _sample("x", x), _sample("y", y)
    # all n*m pairs at once; the double loop over i and j written as an (n, m) comparison
    wins = (x[:, None] > y[None, :]).mean()
    ties = (x[:, None] == y[None, :]).mean()
    return float(wins + 0.5 * ties)


# ----- interval estimates ------------------------------------------------------------------------

def _percentile_interval(replicates: np.ndarray, confidence: float) -> tuple:
    """The percentile interval: the (1 - c)/2 and (1 + c)/2 quantiles of the bootstrap replicates,
    numpy's default (linear) interpolation between order statistics, as rliable (through arch)."""
    alpha = 1.0 - confidence
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2], axis=0)
    return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)


def bootstrap_ci(samples, statistic, n_boot: int = 2000, confidence: float = 0.95,
                 rng: np.random.Generator | None = None) -> tuple:
    """Percentile bootstrap confidence interval of statistic(samples) (Efron 1979; Agarwal et al.
    2021, section 4.1):

        x*_b = (x_{I_b1}, ..., x_{I_bn}),  I_bi drawn uniformly from {0, ..., n-1},  b = 1..n_boot
        (low, high) = the (1-c)/2 and (1+c)/2 quantiles of statistic(x*_1), ..., statistic(x*_B).

    samples: 1-D, one score per run. statistic: a function of a 1-D array returning a float, or an
    array (e.g. one value per point of a learning curve): low and high then have its shape.
    Replicate b draws its n indices as rng.integers(0, n, size=n), replicate after replicate, so
    the same generator state gives the same interval. rng None: a fresh, unseeded generator."""
    x = _sample("samples", samples)
    rng = _check_bootstrap(n_boot, confidence, rng)
    n = len(x)
    replicates = np.array([statistic(x[rng.integers(0, n, size=n)]) for _ in range(n_boot)])
    return _percentile_interval(replicates, confidence)


def stratified_bootstrap_ci(groups, statistic, n_boot: int = 2000, confidence: float = 0.95,
                            rng: np.random.Generator | None = None) -> tuple:
    """Percentile bootstrap interval of statistic(*groups), resampling within each group
    (Agarwal et al. 2021, section 4.1: the stratified bootstrap):

        g*_{b,k} = n_k draws with replacement from group k, for every group k (its size n_k kept),
        (low, high) = the (1-c)/2 and (1+c)/2 quantiles of statistic(g*_{b,1}, ..., g*_{b,K}).

    The groups are the strata: the tasks of a benchmark (scores of one algorithm on each env), or
    the two algorithms whose probability of improvement is estimated:
    stratified_bootstrap_ci((x, y), probability_of_improvement) resamples x's runs and y's runs
    independently. Replicate b draws rng.integers(0, n_k, size=n_k) for group 0, 1, ... in turn."""
    samples = _check_groups(groups)
    rng = _check_bootstrap(n_boot, confidence, rng)
    replicates = []
    for _ in range(n_boot):
        resampled = [g[rng.integers(0, len(g), size=len(g))] for g in samples]
        replicates.append(statistic(*resampled))
    return _percentile_interval(np.array(replicates), confidence)


def performance_profile(scores, taus, n_boot: int = 2000, confidence: float = 0.95,
                        rng: np.random.Generator | None = None) -> tuple:
    """The score distribution, or performance profile (Agarwal et al. 2021, section 4.2):

        F(tau) = 1/n * sum_{i=1}^{n} 1[x_i > tau],

    the fraction of runs scoring above tau, for each tau in taus; returns (F, low, high), arrays
    of taus' length, the band being the percentile bootstrap interval of F(tau) at each tau
    (resampling runs, as bootstrap_ci). A profile above another everywhere means stochastic
    dominance: at every threshold, more of its runs clear it."""
    x = _sample("scores", scores)
    thresholds = _sample("taus", taus)
    rng = _check_bootstrap(n_boot, confidence, rng)

    def fraction_above(sample):
        return (sample[:, None] > thresholds[None, :]).mean(axis=0)   # (taus,)

    low, high = bootstrap_ci(x, fraction_above, n_boot, confidence, rng)
    return fraction_above(x), np.asarray(low), np.asarray(high)
