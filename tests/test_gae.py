"""Specification tests for ppo_ref.gae: GAE and Monte-Carlo returns.

Expected values come from hand calculations (written out in comments) or from the
naive forward-sum loops below, which follow the definitions rather than the
backward recursion the module uses.
"""
import numpy as np
import pytest

from ppo_ref.autodiff import Tensor
from ppo_ref.gae import compute_gae, discounted_returns
from ppo_ref.gradcheck import gradcheck


# ----- naive references: the definitions, summed forward, one environment at a time ---------

def naive_gae_1d(rewards, values, next_values, terminated, truncated, gamma, lam):
    """A_t = sum_l (gamma lam)^l delta_{t+l}, summing until (and including) the first done step."""
    T = len(rewards)
    advantages = np.zeros(T)
    for t in range(T):
        total, weight = 0.0, 1.0
        for k in range(t, T):
            bootstrap = 0.0 if terminated[k] else gamma * next_values[k]
            delta = rewards[k] + bootstrap - values[k]
            total += weight * delta
            if terminated[k] or truncated[k]:
                break
            weight *= gamma * lam
        advantages[t] = total
    return advantages


def naive_returns_1d(rewards, terminated, truncated, gamma, bootstrap_values=None):
    """G_t = sum_l gamma^l r_{t+l} to the episode's end, plus gamma^(l+1) V where the data is cut."""
    T = len(rewards)
    returns = np.zeros(T)
    for t in range(T):
        total, discount = 0.0, 1.0
        for k in range(t, T):
            total += discount * rewards[k]
            if terminated[k]:
                break
            if truncated[k] or k == T - 1:
                if bootstrap_values is not None:
                    total += discount * gamma * bootstrap_values[k]
                break
            discount *= gamma
        returns[t] = total
    return returns


def random_rollout(rng, T=12, N=3, p_term=0.15, p_trunc=0.1):
    rewards = rng.normal(size=(T, N))
    values = rng.normal(size=(T, N))
    next_values = rng.normal(size=(T, N))
    terminated = rng.random((T, N)) < p_term
    truncated = rng.random((T, N)) < p_trunc
    return rewards, values, next_values, terminated, truncated


def consistent_next_values(rng, values, terminated, truncated):
    """next_values[t] = values[t+1] inside an episode; a fresh V(final obs) where the data stops."""
    next_values = np.empty_like(values)
    next_values[:-1] = values[1:]
    ends = terminated | truncated
    ends[-1] = True
    next_values[ends] = rng.normal(size=int(ends.sum()))
    return next_values


# ----- hand-worked cases ----------------------------------------------------------------------

@pytest.mark.parametrize("terminated, truncated, expected_adv", [
    (False, False, 2.3),   # delta = 1 + 0.9*2 - 0.5 = 2.3
    (True, False, 0.5),    # delta = 1 - 0.5: a terminal next state is worth 0
    (False, True, 2.3),    # truncated: bootstrap from V(final obs) = 2, as if not done
    (True, True, 0.5),     # both flags: terminated wins, no bootstrap
])
def test_single_step_advantage_is_the_td_error(terminated, truncated, expected_adv):
    adv, ret = compute_gae([1.0], [0.5], [2.0], [terminated], [truncated], gamma=0.9, lam=0.8)
    np.testing.assert_allclose(adv, [expected_adv], rtol=1e-15)
    np.testing.assert_allclose(ret, [expected_adv + 0.5], rtol=1e-15)


def test_termination_mid_rollout_stops_bootstrap_and_recursion():
    # gamma = lam = 0.5, so gamma*lam = 0.25. Step 1 terminates; next_values[1] = 100 must be ignored.
    rewards = [1.0, 1.0, 1.0, 1.0]
    values = [2.0, 2.0, 2.0, 2.0]
    next_values = [2.0, 100.0, 2.0, 4.0]
    terminated = [False, True, False, False]
    truncated = [False, False, False, False]
    # delta = [1 + 1 - 2, 1 + 0 - 2, 1 + 1 - 2, 1 + 2 - 2] = [0, -1, 0, 1]
    # A3 = 1; A2 = 0 + 0.25*1 = 0.25; A1 = -1 (episode ends); A0 = 0 + 0.25*(-1) = -0.25
    adv, ret = compute_gae(rewards, values, next_values, terminated, truncated, gamma=0.5, lam=0.5)
    np.testing.assert_allclose(adv, [-0.25, -1.0, 0.25, 1.0], rtol=1e-15)
    np.testing.assert_allclose(ret, [1.75, 1.0, 2.25, 3.0], rtol=1e-15)


def test_truncated_episode_bootstraps_from_final_value():
    # As above, but step 1 is truncated: next_values[1] = 6 is V(final obs), while values[2] = 2
    # is V of the first state of the next episode and must not leak into step 1.
    rewards = [1.0, 1.0, 1.0, 1.0]
    values = [2.0, 2.0, 2.0, 2.0]
    next_values = [2.0, 6.0, 2.0, 4.0]
    terminated = [False, False, False, False]
    truncated = [False, True, False, False]
    # delta1 = 1 + 0.5*6 - 2 = 2, and A1 = delta1 (the recursion stops at the episode's end);
    # A0 = 0 + 0.25*2 = 0.5; A2, A3 as before.
    adv, ret = compute_gae(rewards, values, next_values, terminated, truncated, gamma=0.5, lam=0.5)
    np.testing.assert_allclose(adv, [0.5, 2.0, 0.25, 1.0], rtol=1e-15)
    np.testing.assert_allclose(ret, [2.5, 4.0, 2.25, 3.0], rtol=1e-15)
    # Had it been a termination, step 1 would lose gamma * 6 = 3.
    adv_term, _ = compute_gae(rewards, values, next_values, terminated=truncated,  # step 1 terminated
                              truncated=terminated, gamma=0.5, lam=0.5)
    assert adv[1] - adv_term[1] == 3.0


def test_last_row_bootstraps_when_not_terminated():
    # The rollout stops mid-episode: the last step bootstraps from next_values[-1] like a truncation.
    adv, _ = compute_gae([0.0, 0.0], [0.0, 0.0], [0.0, 8.0], [False, False], [False, False],
                         gamma=0.5, lam=1.0)
    # delta = [0, 0.5*8] = [0, 4]; A1 = 4; A0 = 0 + 0.5*4 = 2
    np.testing.assert_allclose(adv, [2.0, 4.0], rtol=1e-15)


def test_gamma_zero_gives_reward_minus_value():
    rng = np.random.default_rng(1)
    r, v, nv, term, trunc = random_rollout(rng)
    adv, ret = compute_gae(r, v, nv, term, trunc, gamma=0.0, lam=0.95)
    np.testing.assert_allclose(adv, r - v, rtol=1e-15)
    np.testing.assert_allclose(ret, r, rtol=1e-14, atol=1e-15)


def test_lam_zero_gives_td0_errors():
    rng = np.random.default_rng(2)
    r, v, nv, term, trunc = random_rollout(rng)
    gamma = 0.9
    adv, _ = compute_gae(r, v, nv, term, trunc, gamma=gamma, lam=0.0)
    td_errors = r + gamma * np.where(term, 0.0, nv) - v
    np.testing.assert_allclose(adv, td_errors, rtol=1e-14, atol=1e-15)


def test_lam_one_gives_discounted_returns_minus_values():
    rng = np.random.default_rng(3)
    r, v, _, term, trunc = random_rollout(rng, T=20, N=4)
    nv = consistent_next_values(rng, v, term, trunc)
    gamma = 0.9
    adv, ret = compute_gae(r, v, nv, term, trunc, gamma=gamma, lam=1.0)
    mc = discounted_returns(r, term, trunc, gamma=gamma, bootstrap_values=nv)
    np.testing.assert_allclose(ret, mc, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(adv, mc - v, rtol=1e-12, atol=1e-12)


def test_discounted_returns_discount_by_0_99_by_default():
    r = np.array([1.0, 2.0, 3.0])
    no = np.zeros(3, dtype=bool)
    expected = [1 + 0.99 * (2 + 0.99 * 3), 2 + 0.99 * 3, 3.0]
    np.testing.assert_allclose(discounted_returns(r, no, no), expected, rtol=1e-15)


def test_a_one_step_rollout_returns_the_reward_plus_the_discounted_bootstrap():
    r, boot = np.array([[1.0, 2.0]]), np.array([[10.0, 20.0]])
    no, ends = np.zeros((1, 2), dtype=bool), np.array([[True, False]])
    np.testing.assert_array_equal(discounted_returns(r, no, no, 0.5, boot), [[6.0, 12.0]])
    np.testing.assert_array_equal(discounted_returns(r, ends, no, 0.5, boot), [[1.0, 12.0]])
    np.testing.assert_array_equal(discounted_returns(r, no, no, 0.5), [[1.0, 2.0]])


@pytest.mark.parametrize("bootstrap", [False, True])
def test_float32_rollouts_give_float32_returns(bootstrap):
    rng = np.random.default_rng(5)
    r, _, nv, term, trunc = random_rollout(rng, T=6, N=2)
    r32, nv32 = r.astype(np.float32), nv.astype(np.float32)
    out = discounted_returns(r32, term, trunc, 0.9, nv32 if bootstrap else None)
    assert out.dtype == np.float32
    for n in range(2):
        expected = naive_returns_1d(r32[:, n].astype(np.float64), term[:, n], trunc[:, n], 0.9,
                                    nv32[:, n].astype(np.float64) if bootstrap else None)
        np.testing.assert_allclose(out[:, n], expected, rtol=1e-5)


# ----- against the naive loops ------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.9, 0.5), (1.0, 1.0), (0.5, 0.0)])
def test_compute_gae_matches_naive_forward_sums(seed, gamma, lam):
    rng = np.random.default_rng(seed)
    r, v, nv, term, trunc = random_rollout(rng, T=15, N=3)
    adv, ret = compute_gae(r, v, nv, term, trunc, gamma=gamma, lam=lam)
    for n in range(r.shape[1]):
        expected = naive_gae_1d(r[:, n], v[:, n], nv[:, n], term[:, n], trunc[:, n], gamma, lam)
        np.testing.assert_allclose(adv[:, n], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ret, adv + v, rtol=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_bootstrap", [False, True])
def test_discounted_returns_match_naive_forward_sums(seed, with_bootstrap):
    rng = np.random.default_rng(seed)
    r, _, nv, term, trunc = random_rollout(rng, T=15, N=3)
    boot = nv if with_bootstrap else None
    ret = discounted_returns(r, term, trunc, gamma=0.9, bootstrap_values=boot)
    for n in range(r.shape[1]):
        expected = naive_returns_1d(r[:, n], term[:, n], trunc[:, n], 0.9,
                                    None if boot is None else boot[:, n])
        np.testing.assert_allclose(ret[:, n], expected, rtol=1e-12, atol=1e-12)


def test_discounted_returns_by_hand():
    # gamma = 0.5; episode ends by termination at t=1, then is truncated at t=3 with V(final) = 8.
    rewards = [1.0, 2.0, 4.0, 8.0]
    terminated = [False, True, False, False]
    truncated = [False, False, False, True]
    # G1 = 2; G0 = 1 + 0.5*2 = 2; G3 = 8 (+ 0.5*8 = 12 with bootstrap); G2 = 4 + 0.5*G3
    np.testing.assert_allclose(discounted_returns(rewards, terminated, truncated, 0.5),
                               [2.0, 2.0, 8.0, 8.0], rtol=1e-15)
    np.testing.assert_allclose(
        discounted_returns(rewards, terminated, truncated, 0.5, bootstrap_values=[0, 0, 0, 8.0]),
        [2.0, 2.0, 10.0, 12.0], rtol=1e-15)


def test_one_env_and_many_envs_agree():
    rng = np.random.default_rng(4)
    r, v, nv, term, trunc = random_rollout(rng, T=10, N=5)
    adv, ret = compute_gae(r, v, nv, term, trunc, gamma=0.97, lam=0.9)
    mc = discounted_returns(r, term, trunc, gamma=0.97, bootstrap_values=nv)
    for n in range(5):
        adv_n, ret_n = compute_gae(r[:, n], v[:, n], nv[:, n], term[:, n], trunc[:, n], 0.97, 0.9)
        assert adv_n.shape == (10,)
        np.testing.assert_array_equal(adv_n, adv[:, n])
        np.testing.assert_array_equal(ret_n, ret[:, n])
        np.testing.assert_array_equal(
            discounted_returns(r[:, n], term[:, n], trunc[:, n], 0.97, nv[:, n]), mc[:, n])


def test_zero_one_flags_are_the_same_as_booleans():
    rng = np.random.default_rng(5)
    r, v, nv, term, trunc = random_rollout(rng)
    expected = compute_gae(r, v, nv, term, trunc)
    for as_numbers in (term.astype(np.int64), term.astype(np.float32)):
        got = compute_gae(r, v, nv, as_numbers, trunc.astype(np.uint8))
        np.testing.assert_array_equal(got[0], expected[0])


def test_float32_in_float32_out_and_inputs_untouched():
    rng = np.random.default_rng(6)
    r, v, nv, term, trunc = (x.astype(np.float32) if x.dtype.kind == "f" else x
                             for x in random_rollout(rng))
    copies = [x.copy() for x in (r, v, nv, term, trunc)]
    adv, ret = compute_gae(r, v, nv, term, trunc)
    assert adv.dtype == np.float32 and ret.dtype == np.float32
    expected, _ = compute_gae(*(x.astype(np.float64) if x.dtype.kind == "f" else x
                                for x in (r, v, nv, term, trunc)))
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-5)
    for before, after in zip(copies, (r, v, nv, term, trunc)):
        np.testing.assert_array_equal(before, after)


# ----- Tensors in, Tensors out: differentiable through ppo_ref.autodiff -----------------------------

def test_tensor_inputs_give_tensors_with_the_same_numbers():
    rng = np.random.default_rng(7)
    r, v, nv, term, trunc = random_rollout(rng)
    adv, ret = compute_gae(r, v, nv, term, trunc, gamma=0.9, lam=0.8)
    adv_t, ret_t = compute_gae(Tensor(r), v, Tensor(nv), term, trunc, gamma=0.9, lam=0.8)
    assert isinstance(adv_t, Tensor) and isinstance(ret_t, Tensor)
    np.testing.assert_array_equal(adv_t.data, adv)
    np.testing.assert_array_equal(ret_t.data, ret)
    mc = discounted_returns(r, term, trunc, 0.9, bootstrap_values=nv)
    mc_t = discounted_returns(Tensor(r), term, trunc, 0.9, bootstrap_values=Tensor(nv))
    assert isinstance(mc_t, Tensor)
    np.testing.assert_array_equal(mc_t.data, mc)
    assert not isinstance(adv, Tensor) and not isinstance(mc, Tensor)   # arrays in, arrays out


@pytest.mark.parametrize("shape", [(9,), (8, 3)])
def test_gae_gradients_match_finite_differences(shape):
    rng = np.random.default_rng(8)
    r, v, nv = (rng.normal(size=shape) for _ in range(3))
    term, trunc = rng.random(shape) < 0.2, rng.random(shape) < 0.2
    for output in (0, 1):   # advantages, returns
        report = gradcheck(lambda r, v, nv: compute_gae(r, v, nv, term, trunc, 0.9, 0.7)[output],
                           [r, v, nv])
        assert report.passed, str(report)
    for fn in (lambda r, b: discounted_returns(r, term, trunc, 0.9, bootstrap_values=b),
               lambda r, b: discounted_returns(r, term, trunc, 0.9) + 0.0 * b):
        report = gradcheck(fn, [r, nv])
        assert report.passed, str(report)


def test_gae_gradient_by_hand_decays_by_gamma_lam_and_stops_at_episode_end():
    # One episode of 3 steps terminated at t = 2, then a new one. A_0 = delta_0 + gl delta_1 +
    # gl^2 delta_2 with gl = gamma lam = 0.25, so dA_0/dr_k = gl^k and dA_0/dvalues_k = -gl^k for
    # k <= 2, 0 beyond; dA_0/dnext_values_k = gamma gl^k, except 0 at the terminal step 2.
    gamma, lam = 0.5, 0.5
    r = Tensor(np.zeros(5), requires_grad=True)
    nv = Tensor(np.zeros(5), requires_grad=True)
    v = Tensor(np.zeros(5), requires_grad=True)
    term = np.array([False, False, True, False, False])
    adv, _ = compute_gae(r, v, nv, term, np.zeros(5, bool), gamma, lam)
    adv[0].backward()
    np.testing.assert_array_equal(r.grad, [1.0, 0.25, 0.0625, 0.0, 0.0])
    np.testing.assert_array_equal(v.grad, [-1.0, -0.25, -0.0625, 0.0, 0.0])
    np.testing.assert_array_equal(nv.grad, [0.5, 0.125, 0.0, 0.0, 0.0])


# ----- bad input --------------------------------------------------------------------------------

def good_args(T=4, N=2):
    z = np.zeros((T, N))
    f = np.zeros((T, N), dtype=bool)
    return dict(rewards=z, values=z, next_values=z, terminated=f, truncated=f)


@pytest.mark.parametrize("name", ["values", "next_values", "terminated", "truncated"])
def test_mismatched_shapes_name_both_shapes(name):
    args = good_args()
    args[name] = args[name][:, :1]
    with pytest.raises(ValueError, match=rf"{name}.*\(4, 1\)") as err:
        compute_gae(**args)
    assert "(4, 2)" in str(err.value)


def test_row_vector_is_not_broadcast_against_a_rollout():
    args = good_args()
    args["values"] = np.zeros(2)  # (N,) instead of (T, N)
    with pytest.raises(ValueError, match=r"\(4, 2\).*\(2,\)"):
        compute_gae(**args)


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2)), np.zeros(()), np.zeros((0, 3))])
def test_wrong_rank_or_empty_rollout_is_rejected(bad):
    with pytest.raises(ValueError, match="rewards"):
        compute_gae(bad, bad, bad, bad == 1, bad == 1)


@pytest.mark.parametrize("flag_value", [2, -1, 0.5, np.nan])
def test_done_flags_must_be_boolean_or_zero_one(flag_value):
    args = good_args()
    flags = np.zeros((4, 2))
    flags[2, 1] = flag_value
    args["truncated"] = flags
    with pytest.raises(ValueError, match=r"truncated.*index \(2, 1\)"):
        compute_gae(**args)


def test_string_flags_are_a_type_error():
    args = good_args()
    args["terminated"] = np.full((4, 2), "no")
    with pytest.raises(TypeError, match="terminated"):
        compute_gae(**args)


@pytest.mark.parametrize("gamma, lam", [(1.01, 0.9), (-0.1, 0.9), (0.9, 1.5), (0.9, -1e-9),
                                        (np.nan, 0.9), (0.9, np.inf)])
def test_gamma_and_lam_must_lie_in_unit_interval(gamma, lam):
    name = "gamma" if not 0 <= gamma <= 1 else "lam"
    with pytest.raises(ValueError, match=name):
        compute_gae(**good_args(), gamma=gamma, lam=lam)


@pytest.mark.parametrize("gamma", [np.array(0.5), np.float32(0.5), np.float64(0.5), 0.5])
def test_gamma_and_lam_may_be_numpy_scalars_or_zero_dimensional_arrays(gamma):
    # two steps, nothing ends, V = 0: A_1 = delta_1 = 1, A_0 = 1 + gamma lam A_1 = 1.25
    z = np.zeros(2)
    adv, _ = compute_gae(np.ones(2), z, z, z, z, gamma=gamma, lam=np.array(0.5))
    np.testing.assert_array_equal(adv, [1.25, 1.0])
    np.testing.assert_array_equal(discounted_returns(np.ones(2), z, z, gamma=gamma), [1.5, 1.0])


@pytest.mark.parametrize("bad", [True, np.bool_(True), np.array(True), "0.9", None,
                                 np.array([0.9]), np.array([0.9, 0.9]), [0.9]])
def test_gamma_or_lam_that_is_not_one_real_number_is_a_type_error_naming_it(bad):
    with pytest.raises(TypeError, match="gamma"):
        compute_gae(**good_args(), gamma=bad)
    with pytest.raises(TypeError, match="lam"):
        compute_gae(**good_args(), lam=bad)


@pytest.mark.parametrize("name", ["rewards", "values", "next_values"])
@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_names_argument_and_first_index(name, bad_value):
    args = {k: v.copy() for k, v in good_args().items()}
    args[name][3, 0] = bad_value
    args[name][3, 1] = bad_value  # the first offending index is reported
    with pytest.raises(ValueError, match=rf"{name}.*index \(3, 0\)"):
        compute_gae(**args)


def test_discounted_returns_validates_bootstrap_values():
    args = good_args()
    with pytest.raises(ValueError, match=r"bootstrap_values.*\(3, 2\)"):
        discounted_returns(args["rewards"], args["terminated"], args["truncated"], 0.9,
                           bootstrap_values=np.zeros((3, 2)))
    boot = np.zeros((4, 2))
    boot[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"bootstrap_values.*\(1, 1\)"):
        discounted_returns(args["rewards"], args["terminated"], args["truncated"], 0.9, boot)


def test_advantages_that_overflow_raise_naming_the_index():
    # r = 1e308 at both steps: A_0 = r_0 + gamma lam r_1 overflows float64.
    rewards, zeros, no = np.array([1e308, 1e308]), np.zeros(2), np.zeros(2, dtype=bool)
    with np.errstate(over="ignore"), pytest.raises(
            ValueError, match=r"^advantages overflows float64 at index \(0,\).*: rewards and values"):
        compute_gae(rewards, zeros, zeros, no, no, 0.99, 0.95)
    with np.errstate(over="ignore"), pytest.raises(
            ValueError, match=r"^returns overflows float64 at index \(0,\).*: rewards and bootstrap_values"):
        discounted_returns(rewards, no, no, 0.99)


def test_returns_that_overflow_where_advantages_do_not_raise_naming_returns():
    # gamma = lam = 1: delta = (0, 1e308), A = (1e308, 1e308), R_0 = A_0 + V_0 = 2e308 (inf)
    rewards, values = np.array([0.0, 1e308]), np.array([1e308, 0.0])
    no = np.zeros(2, dtype=bool)
    with np.errstate(over="ignore"), pytest.raises(
            ValueError, match=r"^returns overflows float64 at index \(0,\).*: rewards and values"):
        compute_gae(rewards, values, values, no, no, 1.0, 1.0)
