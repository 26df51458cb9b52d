"""ppo_ref.stats against hand computations and naive loops written here."""
import numpy as np
import pytest

from ppo_ref.stats import (bootstrap_ci, iqm, performance_profile, probability_of_improvement,
                           stratified_bootstrap_ci)


# ----- iqm ---------------------------------------------------------------------------------------

def test_iqm_of_one_to_eight_drops_two_from_each_end():
    # n = 8, floor(8/4) = 2: drop 1, 2 and 7, 8; (3 + 4 + 5 + 6) / 4 = 4.5
    assert iqm([8, 3, 1, 7, 2, 6, 4, 5]) == 4.5


def test_iqm_ignores_outliers_in_the_tails():
    # n = 9, floor(9/4) = 2: drop -1000, 1 and 9, 1000 of the sorted sample; (2+3+4+5+6)/5 = 4
    assert iqm([1000, 2, 3, 4, 5, 6, 9, -1000, 1]) == 4.0


@pytest.mark.parametrize("x, expected", [([5.0], 5.0), ([1.0, 4.0], 2.5), ([1.0, 2.0, 9.0], 4.0),
                                         ([1.0, 2.0, 3.0, 10.0], 2.5),   # k=1: (2+3)/2
                                         ([0.0, 1.0, 2.0, 3.0, 100.0], 2.0)])  # k=1: (1+2+3)/3
def test_iqm_small_samples_drop_floor_n_over_4(x, expected):
    assert iqm(x) == pytest.approx(expected, abs=1e-15)


def test_iqm_along_an_axis_is_the_iqm_of_each_column():
    x = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 400.0]])   # k = 1
    np.testing.assert_allclose(iqm(x, axis=0), [2.5, 25.0], rtol=0, atol=1e-12)


def test_iqm_rejects_empty_and_nan_naming_x():
    with pytest.raises(ValueError, match="x is empty"):
        iqm([])
    with pytest.raises(ValueError, match=r"x contains .*nan.* index \(2,\)"):
        iqm([1.0, 2.0, np.nan])


# ----- probability of improvement ----------------------------------------------------------------

def _naive_probability(x, y):
    total = 0.0
    for xi in x:
        for yj in y:
            total += 1.0 if xi > yj else 0.5 if xi == yj else 0.0
    return total / (len(x) * len(y))


def test_probability_of_improvement_by_hand():
    # pairs (2,1) win, (2,2) tie, (3,1) win, (3,2) win: (3 + 0.5) / 4
    assert probability_of_improvement([2, 3], [1, 2]) == 0.875
    assert probability_of_improvement([1, 2], [2, 3]) == 0.125


def test_probability_of_improvement_matches_a_double_loop():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, size=13).astype(float)   # small integers: many ties
    y = rng.integers(0, 6, size=7).astype(float)
    p = probability_of_improvement(x, y)
    assert isinstance(p, float)
    assert p == pytest.approx(_naive_probability(x, y), abs=1e-15)
    assert p + probability_of_improvement(y, x) == pytest.approx(1.0, abs=1e-15)


def test_probability_of_improvement_names_the_bad_argument():
    with pytest.raises(ValueError, match="y is empty"):
        probability_of_improvement([1.0], [])
    with pytest.raises(ValueError, match=r"x contains .* index \(1,\)"):
        probability_of_improvement([1.0, np.nan], [1.0])


# ----- bootstrap ---------------------------------------------------------------------------------

def _linear_quantile(sorted_values, q):
    """The quantile with linear interpolation between order statistics, written out."""
    h = (len(sorted_values) - 1) * q
    lo = int(np.floor(h))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def test_bootstrap_ci_matches_a_naive_loop_with_the_same_rng():
    x = np.array([3.0, 7.0, 1.0, 9.0, 4.0, 4.0, 12.0])
    rng = np.random.default_rng(11)
    replicates = []
    for _ in range(500):
        idx = rng.integers(0, len(x), size=len(x))
        replicates.append(np.mean([x[i] for i in idx]))
    replicates.sort()
    expected = (_linear_quantile(replicates, 0.05), _linear_quantile(replicates, 0.95))
    low, high = bootstrap_ci(x, np.mean, n_boot=500, confidence=0.9,
                             rng=np.random.default_rng(11))
    assert (low, high) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_ci_is_reproducible_with_a_seeded_generator():
    x = np.arange(10.0)
    a = bootstrap_ci(x, iqm, rng=np.random.default_rng(5))
    b = bootstrap_ci(x, iqm, rng=np.random.default_rng(5))
    assert a == b
    assert a[0] <= iqm(x) <= a[1]


def test_bootstrap_ci_of_an_array_statistic_has_its_shape():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    low, high = bootstrap_ci(x, lambda s: np.array([s.min(), s.max()]), n_boot=200,
                             rng=np.random.default_rng(0))
    assert low.shape == high.shape == (2,)
    assert np.all(low <= high)


def test_bootstrap_ci_of_the_mean_covers_the_true_mean_about_95_percent_of_the_time():
    # 200 samples of 30 from N(2, 1), each with its 95 % interval: a percentile bootstrap of the
    # mean covers 2 in roughly 93-95 % of them (slightly below nominal at n = 30). Binomial
    # spread of the count at p = 0.94 is sqrt(200 * 0.94 * 0.06) = 3.4 runs, so [170, 198] is
    # well over 4 standard deviations wide.
    rng = np.random.default_rng(2021)
    covered = 0
    for _ in range(200):
        sample = rng.normal(2.0, 1.0, size=30)
        low, high = bootstrap_ci(sample, np.mean, n_boot=400, rng=rng)
        covered += low <= 2.0 <= high
    assert 170 <= covered <= 198


def test_bootstrap_ci_validates_its_arguments_by_name():
    with pytest.raises(ValueError, match="samples is empty"):
        bootstrap_ci([], np.mean)
    with pytest.raises(ValueError, match=r"samples contains .* index \(0,\)"):
        bootstrap_ci([np.nan, 1.0], np.mean)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], np.mean, confidence=1.0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], np.mean, confidence=0.0)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci([1.0, 2.0], np.mean, n_boot=0)
    with pytest.raises(ValueError, match="samples must be 1-D"):
        bootstrap_ci(np.ones((2, 2)), np.mean)
    with pytest.raises(TypeError, match="rng"):
        bootstrap_ci([1.0, 2.0], np.mean, rng=0)


def test_stratified_bootstrap_keeps_each_groups_size_and_draws_from_it_alone():
    a = np.array([1.0, 2.0, 3.0])          # 3 runs
    b = np.array([10.0, 20.0, 30.0, 40.0, 50.0])  # 5 runs
    seen = []

    def record(ra, rb):
        seen.append((ra.copy(), rb.copy()))
        return 0.0

    stratified_bootstrap_ci((a, b), record, n_boot=50, rng=np.random.default_rng(0))
    assert len(seen) == 50
    for ra, rb in seen:
        assert len(ra) == 3 and len(rb) == 5
        assert set(ra) <= set(a) and set(rb) <= set(b)


def test_stratified_bootstrap_matches_a_naive_loop_with_the_same_rng():
    x = np.array([5.0, 6.0, 7.0, 3.0])
    y = np.array([4.0, 5.0, 1.0])
    rng = np.random.default_rng(9)
    replicates = []
    for _ in range(300):
        rx = [x[i] for i in rng.integers(0, len(x), size=len(x))]
        ry = [y[i] for i in rng.integers(0, len(y), size=len(y))]
        replicates.append(_naive_probability(rx, ry))
    replicates.sort()
    expected = (_linear_quantile(replicates, 0.025), _linear_quantile(replicates, 0.975))
    got = stratified_bootstrap_ci((x, y), probability_of_improvement, n_boot=300,
                                  rng=np.random.default_rng(9))
    assert got == pytest.approx(expected, abs=1e-12)


def test_stratified_bootstrap_names_the_empty_group():
    with pytest.raises(ValueError, match=r"groups\[1\] is empty"):
        stratified_bootstrap_ci(([1.0], []), probability_of_improvement)
    with pytest.raises(ValueError, match="groups"):
        stratified_bootstrap_ci([], probability_of_improvement)


# ----- performance profile -----------------------------------------------------------------------

def test_performance_profile_counts_runs_strictly_above_each_tau():
    scores = [1.0, 2.0, 2.0, 5.0]
    taus = [0.0, 1.0, 2.0, 4.9, 5.0]
    # above 0: all 4; above 1: 3; above 2: 1 (the 5); above 4.9: 1; above 5: none
    profile, low, high = performance_profile(scores, taus, n_boot=300,
                                             rng=np.random.default_rng(0))
    np.testing.assert_array_equal(profile, [1.0, 0.75, 0.25, 0.25, 0.0])
    assert low.shape == high.shape == (5,)
    assert np.all(low <= profile) and np.all(profile <= high)
    assert low[0] == high[0] == 1.0 and low[-1] == high[-1] == 0.0  # no resample changes these


def test_performance_profile_band_is_the_bootstrap_of_each_fraction():
    scores = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    taus = np.array([1.0, 3.0])
    rng = np.random.default_rng(4)
    replicates = []
    for _ in range(200):
        r = scores[rng.integers(0, 6, size=6)]
        replicates.append([np.mean([s > t for s in r]) for t in taus])
    replicates = np.array(replicates)
    _, low, high = performance_profile(scores, taus, n_boot=200, rng=np.random.default_rng(4))
    for j in range(2):
        column = sorted(replicates[:, j])
        assert low[j] == pytest.approx(_linear_quantile(column, 0.025), abs=1e-12)
        assert high[j] == pytest.approx(_linear_quantile(column, 0.975), abs=1e-12)


def test_performance_profile_names_bad_taus():
    with pytest.raises(ValueError, match="taus is empty"):
        performance_profile([1.0], [])
    with pytest.raises(ValueError, match="scores contains"):
        performance_profile([np.inf], [1.0])
