"""Tests for ppo_ref/normalize.py: expected values come from np.mean/np.var of all
the data at once, or from a naive loop written here."""
import numpy as np
import pytest

from ppo_ref.train.normalize import ObservationNormalizer, RewardScaler, RunningMeanStd


def test_running_stats_equal_mean_and_population_var_of_concatenated_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 3)) for n in (1, 7, 50, 2)]
    rms = RunningMeanStd((3,))
    for b in batches:
        rms.update(b)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean, everything.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rms.var, everything.var(axis=0), rtol=1e-12)  # ddof=0
    assert rms.count == len(everything)


def test_first_batch_statistics_are_taken_exactly():
    rms = RunningMeanStd(())
    rms.update(np.array([1.0, 2.0, 6.0]))
    assert rms.mean == pytest.approx(3.0)
    assert rms.var == pytest.approx(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 3)


def test_empty_batch_changes_nothing_and_bad_shapes_or_nan_are_rejected():
    rms = RunningMeanStd((2,))
    rms.update(np.zeros((0, 2)))
    assert rms.count == 0
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        rms.update(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"index \(1, 0\)"):
        rms.update(np.array([[0.0, 1.0], [np.nan, 2.0]]))


def test_observation_normalizer_updates_then_normalises_and_clips_to_ten():
    norm = ObservationNormalizer((2,))
    x = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])
    z = norm(x)
    mean, var = x.mean(axis=0), x.var(axis=0)
    np.testing.assert_allclose(z, (x - mean) / np.sqrt(var + 1e-8))
    far = norm.normalize(np.array([[1000.0, 10.0]]))
    assert far[0, 0] == 10.0  # clipped
    assert norm.rms.count == 3  # normalize() does not update


def test_frozen_observation_normalizer_does_not_move_its_statistics():
    norm = ObservationNormalizer((1,))
    norm(np.array([[1.0], [3.0]]))
    before = norm.state_dict()
    norm.frozen = True
    norm(np.array([[100.0]]))
    after = norm.state_dict()
    assert after["count"] == before["count"] and np.array_equal(after["mean"], before["mean"])


def test_reward_scaler_matches_a_naive_loop_over_discounted_returns():
    gamma, eps = 0.9, 1e-8
    rng = np.random.default_rng(1)
    T, N = 30, 3
    rewards = rng.normal(size=(T, N))
    dones = rng.random((T, N)) < 0.15
    valid = rng.random((T, N)) < 0.9
    scaler = RewardScaler(N, gamma=gamma, epsilon=eps)
    got = np.stack([scaler(rewards[t], dones[t], valid[t]) for t in range(T)])

    # naive: keep every discounted return seen so far in a list and take np.var of it
    R = [0.0] * N
    seen, expected = [], np.zeros((T, N))
    for t in range(T):
        for n in range(N):
            if valid[t, n]:
                R[n] = gamma * R[n] + rewards[t, n]
                seen.append(R[n])
        var = np.var(seen) if seen else 1.0
        for n in range(N):
            expected[t, n] = rewards[t, n] / np.sqrt(var + eps) if var > 0 else rewards[t, n]
            if dones[t, n]:
                R[n] = 0.0
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_reward_scaler_passes_rewards_unscaled_until_the_returns_spread():
    # One env's first return, or equal first returns in every env (CartPole pays 1 each), have
    # std 0: dividing by sqrt(0 + 1e-8) would multiply the first rewards by 1e4.
    for n in (1, 8):
        scaler = RewardScaler(n, gamma=0.99)
        np.testing.assert_array_equal(scaler(np.ones(n), np.zeros(n, bool)), np.ones(n))
        # second step: returns 1 and 1.99 seen, population var 0.245025 -> divided by its root
        np.testing.assert_allclose(scaler(np.ones(n), np.zeros(n, bool)),
                                   np.ones(n) / np.sqrt(0.245025 + 1e-8), rtol=1e-12)


def test_reward_scaler_state_round_trip_continues_identically():
    rng = np.random.default_rng(2)
    a = RewardScaler(2, gamma=0.99)
    for _ in range(5):
        a(rng.normal(size=2), rng.random(2) < 0.3)
    b = RewardScaler(2, gamma=0.5)
    b.load_state_dict(a.state_dict())
    r, d = rng.normal(size=2), np.array([False, True])
    np.testing.assert_array_equal(a(r, d), b(r, d))
    np.testing.assert_array_equal(a.returns, b.returns)


def test_reward_scaler_rejects_wrong_shapes_and_gamma():
    with pytest.raises(ValueError, match="gamma"):
        RewardScaler(2, gamma=1.5)
    with pytest.raises(ValueError, match=r"rewards has shape \(3,\)"):
        RewardScaler(2)(np.zeros(3), np.zeros(2, bool))


def test_skipped_columns_pass_through_and_the_others_are_standardised():
    """Columns 0 and 2 are one-hot (skipped): returned as they came; column 1 is standardised
    with the population mean and variance of the data, written out here."""
    obs = np.array([[1.0, 3.0, 0.0], [0.0, 5.0, 1.0], [0.0, 10.0, 1.0], [1.0, -2.0, 0.0]])
    norm = ObservationNormalizer((3,), skip=np.array([True, False, True]))
    out = norm(obs)
    col = obs[:, 1]
    mean = sum(col) / 4
    var = sum((v - mean) ** 2 for v in col) / 4
    np.testing.assert_array_equal(out[:, [0, 2]], obs[:, [0, 2]])
    np.testing.assert_allclose(out[:, 1], (col - mean) / np.sqrt(var + 1e-8), rtol=1e-12)


def test_skip_is_saved_with_the_state_and_a_mask_of_no_columns_is_no_mask():
    norm = ObservationNormalizer((3,), skip=np.array([False, True, False]))
    norm(np.arange(6.0).reshape(2, 3))
    other = ObservationNormalizer((3,))
    other.load_state_dict(norm.state_dict())
    np.testing.assert_array_equal(other.skip, [False, True, False])
    x = np.array([[7.0, 8.0, 9.0]])
    np.testing.assert_array_equal(other.normalize(x), norm.normalize(x))
    assert ObservationNormalizer((3,), skip=np.zeros(3, bool)).skip is None
    assert "skip" not in ObservationNormalizer((3,)).state_dict()


def test_skip_of_the_wrong_shape_or_dtype_names_skip():
    with pytest.raises(ValueError, match="skip"):
        ObservationNormalizer((3,), skip=np.array([True, False]))
    with pytest.raises(ValueError, match="skip"):
        ObservationNormalizer((3,), skip=np.array([1, 0, 1]))
