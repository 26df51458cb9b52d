"""Specification tests for ppo_ref.losses.

Expected values come from naive Python loops written here (scalar math, one sample
at a time), hand calculations, closed forms, or central finite differences in float64
(ppo_ref.gradcheck). Never from the code under test.
"""
import inspect
import math
import warnings

import numpy as np
import pytest

from ppo_ref.autodiff import Tensor
from ppo_ref.gradcheck import gradcheck
from ppo_ref.losses import (AdaptiveKLPenalty, ProportionalKLController, approx_kl,
                            clip_fraction, clipped_surrogate, entropy_bonus, explained_variance,
                            kl_penalty_surrogate, normalize_advantages,
                            policy_gradient_surrogate, ppo_loss, value_loss)
from ppo_ref.losses import _overflow_safe_scale


# ----- naive references -------------------------------------------------------------------------

def naive_clipped(logp_new, logp_old, adv, eps):
    total = 0.0
    for lp, lo, a in zip(logp_new, logp_old, adv):
        r = math.exp(lp - lo)
        r_clipped = min(max(r, 1 - eps), 1 + eps)
        total += min(r * a, r_clipped * a)
    return -total / len(adv)


def naive_clipped_grad(logp_new, logp_old, adv, eps):
    """d L^CLIP / d logp_new off the boundaries: -A r / N unless clipping is active."""
    n, grad = len(adv), []
    for lp, lo, a in zip(logp_new, logp_old, adv):
        r = math.exp(lp - lo)
        active = (a > 0 and r > 1 + eps) or (a < 0 and r < 1 - eps)
        grad.append(0.0 if active else -a * r / n)
    return np.array(grad)


def naive_pg(logp_new, logp_old, adv):
    return -sum(math.exp(lp - lo) * a for lp, lo, a in zip(logp_new, logp_old, adv)) / len(adv)


def naive_value_loss(values, returns, old_values=None, eps=None):
    total = 0.0
    for i, (v, ret) in enumerate(zip(values, returns)):
        err = (v - ret) ** 2
        if eps is not None:
            v_clipped = old_values[i] + min(max(v - old_values[i], -eps), eps)
            err = max(err, (v_clipped - ret) ** 2)
        total += err
    return 0.5 * total / len(values)


def naive_kl_terms(logp_new, logp_old, estimator):
    out = []
    for lp, lo in zip(logp_new, logp_old):
        log_r = lp - lo
        out.append({"k1": -log_r, "k2": 0.5 * log_r ** 2, "k3": math.exp(log_r) - 1 - log_r}[estimator])
    return out


def batch(rng, n=16, spread=0.3):
    logp_old = rng.normal(-1.0, 0.5, n)
    logp_new = logp_old + rng.normal(0.0, spread, n)
    return logp_new, logp_old, rng.normal(size=n)


def near_boundaries(eps, offset=1e-3):
    """A batch with ratios just inside and just outside both clip boundaries, each with A > 0
    and A < 0: r in {1 - eps, 1 + eps} +- offset."""
    ratios = np.array([1 + eps + offset, 1 + eps - offset, 1 - eps + offset, 1 - eps - offset] * 2)
    logp_old = np.linspace(-2.0, -0.5, 8)
    logp_new = logp_old + np.log(ratios)
    adv = np.array([1.5] * 4 + [-0.7] * 4)
    return logp_new, logp_old, adv


def assert_gradcheck(fn, inputs):
    report = gradcheck(fn, inputs)
    assert report.passed, str(report)


# ----- normalize_advantages ---------------------------------------------------------------------

def test_normalize_advantages_uses_sample_std_ddof1():
    adv = np.array([1.0, 2.0, 4.0, 7.0])
    mean = sum(adv) / 4                                           # 3.5
    std = math.sqrt(sum((a - mean) ** 2 for a in adv) / (4 - 1))  # sqrt(21/3) = sqrt(7)
    expected = [(a - mean) / (std + 1e-8) for a in adv]
    np.testing.assert_allclose(normalize_advantages(adv), expected, rtol=1e-14)
    assert std == pytest.approx(math.sqrt(7.0))


def test_normalize_advantages_batch_of_one_is_zero_not_nan():
    np.testing.assert_array_equal(normalize_advantages(np.array([5.0])), [0.0])
    adv = Tensor(np.array([5.0]), requires_grad=True)
    out = normalize_advantages(adv)
    assert isinstance(out, Tensor)
    out.sum().backward()
    np.testing.assert_array_equal(adv.grad, [0.0])


def test_normalize_advantages_constant_batch_is_finite():
    adv = Tensor(np.full(6, 0.3), requires_grad=True)
    out = normalize_advantages(adv)
    assert np.all(np.isfinite(out.data)) and np.all(np.abs(out.data) < 1e-6)
    (out * np.arange(6.0)).sum().backward()
    assert np.all(np.isfinite(adv.grad))


def test_normalize_advantages_gradient_matches_finite_differences():
    adv = np.random.default_rng(0).normal(size=7)
    assert_gradcheck(lambda a: normalize_advantages(a), [adv])


def test_normalize_advantages_keeps_float32():
    adv = np.random.default_rng(1).normal(size=9).astype(np.float32)
    assert normalize_advantages(adv).dtype == np.float32


# ----- the clipped surrogate -----------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("eps", [0.1, 0.2, 0.3])
def test_clipped_surrogate_matches_naive_loop(seed, eps):
    logp_new, logp_old, adv = batch(np.random.default_rng(seed))
    got = clipped_surrogate(logp_new, logp_old, adv, clip_eps=eps)
    assert got == pytest.approx(naive_clipped(logp_new, logp_old, adv, eps), rel=1e-13)


@pytest.mark.parametrize("seed", [0, 1])
def test_clipped_surrogate_gradient_matches_finite_differences(seed):
    logp_new, logp_old, adv = batch(np.random.default_rng(seed))
    assert_gradcheck(lambda lp: clipped_surrogate(lp, logp_old, adv, 0.2), [logp_new])


@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_clipped_surrogate_gradient_near_clip_boundaries(eps):
    logp_new, logp_old, adv = near_boundaries(eps)
    assert_gradcheck(lambda lp: clipped_surrogate(lp, logp_old, adv, eps), [logp_new])
    lp = Tensor(logp_new, requires_grad=True)
    clipped_surrogate(lp, logp_old, adv, eps).backward()
    expected = naive_clipped_grad(logp_new, logp_old, adv, eps)
    np.testing.assert_allclose(lp.grad, expected, rtol=1e-14)
    # Just outside on the side the advantage favours the gradient vanishes: A > 0 at
    # r = 1 + eps + 1e-3 (index 0), A < 0 at r = 1 - eps - 1e-3 (index 7). Nowhere else.
    assert [i for i, g in enumerate(lp.grad) if g == 0.0] == [0, 7]


def _composed_clipped_surrogate(logp_new, logp_old, adv, eps):
    """L^CLIP written with the autodiff's elementary nodes, nine of them."""
    from ppo_ref import autodiff as ad
    ratio = (logp_new - logp_old).exp()
    return -ad.minimum(ratio * adv, ad.clip(ratio, 1.0 - eps, 1.0 + eps) * adv).mean()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clipped_surrogate_node_equals_the_composition_bit_for_bit(dtype, seed):
    """The single node does the composition's float operations in its order: the loss and the
    gradients of all three inputs are identical, not just close, also on the clip boundaries and
    where a ratio is far outside the band."""
    rng = np.random.default_rng(seed)
    eps = 0.2
    logp_old = rng.normal(size=64) - 1.0
    logp_new = logp_old + rng.normal(scale=0.3, size=64)
    logp_new[:4] = logp_old[:4] + np.log([1.2, 0.8, 1.0, 1.2])      # ties and the boundaries
    logp_new[4:6] = logp_old[4:6] + np.array([30.0, -30.0])          # far outside
    adv = rng.normal(size=64)
    adv[0] = 0.0
    results = []
    for f in (clipped_surrogate, _composed_clipped_surrogate):
        ts = [Tensor(x.astype(dtype), requires_grad=True) for x in (logp_new, logp_old, adv)]
        loss = f(*ts, eps)
        loss.backward()
        results.append([np.asarray(loss.data)] + [t.grad for t in ts])
    for fused, composed in zip(*results):
        assert fused.dtype == composed.dtype == dtype
        np.testing.assert_array_equal(fused, composed)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1])
def test_value_loss_node_equals_the_composition_bit_for_bit(dtype, seed):
    """The unclipped value loss is one node doing the composition's float operations in order."""
    rng = np.random.default_rng(seed)
    v0, r0 = rng.normal(size=50) * 10, rng.normal(size=50) * 10
    r0[:3] = v0[:3]                                   # zero errors
    results = []
    for composed in (False, True):
        v, r = (Tensor(x.astype(dtype), requires_grad=True) for x in (v0, r0))
        error = v - r
        loss = 0.5 * (error * error).mean() if composed else value_loss(v, r)
        loss.backward()
        results.append((np.asarray(loss.data), v.grad, r.grad))
    for fused, composed in zip(*results):
        assert fused.dtype == composed.dtype == dtype
        np.testing.assert_array_equal(fused, composed)


def test_value_loss_gradients_of_values_and_returns_match_finite_differences():
    rng = np.random.default_rng(4)
    assert_gradcheck(lambda v, r: value_loss(v, r), [rng.normal(size=9), rng.normal(size=9)])


@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_clipped_surrogate_gradients_of_logp_old_and_advantages_match_finite_differences(eps):
    logp_new, logp_old, adv = near_boundaries(eps)
    assert_gradcheck(lambda lo: clipped_surrogate(logp_new, lo, adv, eps), [logp_old])
    lp, lo, a = batch(np.random.default_rng(3))
    assert_gradcheck(lambda lo_, a_: clipped_surrogate(lp, lo_, a_, eps), [lo, a])


@pytest.mark.parametrize("side", ["upper", "lower"])
def test_clipped_surrogate_subgradient_at_boundary_is_the_unclipped_gradient(side):
    # All ratios exactly on one boundary: logp_old = 0, logp_new = d, r = exp(d), and
    # clip_eps chosen as r - 1 (or 1 - r), which is exact in floating point for r in [0.5, 2].
    d = math.log(1.2) if side == "upper" else math.log(0.8)
    r = float(np.exp(np.float64(d)))
    eps = r - 1.0 if side == "upper" else 1.0 - r
    assert (1.0 + eps == r) if side == "upper" else (1.0 - eps == r)
    adv = np.array([2.0, -1.0, 0.5, -3.0])
    lp = Tensor(np.full(4, d), requires_grad=True)
    clipped_surrogate(lp, np.zeros(4), adv, eps).backward()
    # Hand derivation: the terms tie, min gives each 1/2; clamp passes its bounds (slope 1);
    # so dL/dlogp_i = -(1/N) * (1/2 A_i + 1/2 A_i) * r = -A_i r / N, for either sign of A.
    np.testing.assert_allclose(lp.grad, -adv * r / 4, rtol=1e-15)
    # It equals the one-sided derivative from inside the band (clipped samples keep their slope).
    h = 1e-7 * (-1 if side == "upper" else 1)     # step toward the band's inside
    for i in range(4):
        shifted = np.full(4, d)
        shifted[i] += h
        f_inside = naive_clipped(shifted, np.zeros(4), adv, eps)
        f_here = naive_clipped(np.full(4, d), np.zeros(4), adv, eps)
        assert (f_inside - f_here) / h == pytest.approx(lp.grad[i], rel=1e-5)


def test_clipped_surrogate_gradient_in_float32_close_to_float64():
    logp_new, logp_old, adv = batch(np.random.default_rng(3))
    lp32 = Tensor(logp_new.astype(np.float32), requires_grad=True)
    out = clipped_surrogate(lp32, logp_old.astype(np.float32), adv.astype(np.float32), 0.2)
    out.backward()
    assert out.dtype == np.float32 and lp32.grad.dtype == np.float32
    np.testing.assert_allclose(lp32.grad, naive_clipped_grad(logp_new, logp_old, adv, 0.2),
                               rtol=1e-5, atol=1e-7)


# ----- KL-penalised and unclipped surrogates -------------------------------------------------------

def test_kl_penalty_surrogate_matches_naive_loop_and_gradients():
    rng = np.random.default_rng(4)
    logp_new, logp_old, adv = batch(rng)
    kl = rng.random(16) * 0.05
    beta = 3.0
    expected = naive_pg(logp_new, logp_old, adv) + beta * sum(kl) / 16
    assert kl_penalty_surrogate(logp_new, logp_old, adv, kl, beta) == pytest.approx(expected, rel=1e-13)
    assert_gradcheck(lambda lp, k: kl_penalty_surrogate(lp, logp_old, adv, k, beta), [logp_new, kl])
    k = Tensor(kl, requires_grad=True)
    kl_penalty_surrogate(logp_new, logp_old, adv, k, beta).backward()
    np.testing.assert_allclose(k.grad, np.full(16, beta / 16), rtol=1e-15)   # d/dkl_i = beta / N


def test_kl_penalty_with_beta_zero_is_the_unclipped_surrogate():
    logp_new, logp_old, adv = batch(np.random.default_rng(5))
    kl = np.ones(16)
    assert kl_penalty_surrogate(logp_new, logp_old, adv, kl, 0.0) == \
        policy_gradient_surrogate(logp_new, logp_old, adv)


def test_policy_gradient_surrogate_matches_naive_loop_and_gradient():
    logp_new, logp_old, adv = batch(np.random.default_rng(6))
    got = policy_gradient_surrogate(logp_new, logp_old, adv)
    assert got == pytest.approx(naive_pg(logp_new, logp_old, adv), rel=1e-13)
    assert_gradcheck(lambda lp: policy_gradient_surrogate(lp, logp_old, adv), [logp_new])


def test_policy_gradient_at_old_policy_is_vanilla_policy_gradient():
    # At logp_new = logp_old, r = 1 and dL/dlogp_i = -A_i / N: the REINFORCE / A2C gradient.
    _, logp_old, adv = batch(np.random.default_rng(7))
    for loss_fn in (policy_gradient_surrogate, clipped_surrogate):
        lp = Tensor(logp_old.copy(), requires_grad=True)
        loss_fn(lp, logp_old, adv).backward()
        np.testing.assert_allclose(lp.grad, -adv / 16, rtol=1e-15)


# ----- value loss and entropy ----------------------------------------------------------------------

def test_value_loss_has_the_half_factor():
    # 0.5 * mean([(3 - 1)^2, (0 - 1)^2]) = 0.5 * (4 + 1) / 2 = 1.25
    assert value_loss(np.array([3.0, 0.0]), np.array([1.0, 1.0])) == 1.25
    v = Tensor(np.array([3.0, 0.0]), requires_grad=True)
    value_loss(v, np.array([1.0, 1.0])).backward()
    np.testing.assert_array_equal(v.grad, [1.0, -0.5])   # (V - R) / N


@pytest.mark.parametrize("seed", [0, 1])
def test_value_loss_matches_naive_loop_unclipped_and_clipped(seed):
    rng = np.random.default_rng(seed)
    values, returns, old = rng.normal(size=20), rng.normal(size=20), rng.normal(size=20)
    assert value_loss(values, returns) == pytest.approx(naive_value_loss(values, returns), rel=1e-13)
    assert value_loss(values, returns, old, 0.2) == \
        pytest.approx(naive_value_loss(values, returns, old, 0.2), rel=1e-13)


def test_value_loss_gradient_matches_finite_differences_including_clip_band_edges():
    rng = np.random.default_rng(8)
    old = rng.normal(size=8)
    eps = 0.2
    # V - V_old = +-(eps +- 1e-3): just inside and just outside both band edges.
    values = old + np.array([1, 1, -1, -1, 1, 1, -1, -1]) * (eps + np.array([1, -1] * 4) * 1e-3)
    returns = old + np.array([2.0, 2.0, 2.0, 2.0, -2.0, -2.0, -2.0, -2.0])
    assert_gradcheck(lambda v: value_loss(v, returns), [values])
    assert_gradcheck(lambda v: value_loss(v, returns, old, eps), [values])
    assert_gradcheck(lambda v: value_loss(v, returns, old, eps), [rng.normal(size=8)])


def test_clipped_value_loss_subgradients_by_hand():
    old, eps = np.array([0.5]), 0.25
    cases = [
        # (V, R, loss, dL/dV)
        (0.75, 0.0, 0.5 * 0.75 ** 2, 0.75),  # on the band edge: tie, the clip passes, (V - R) / N
        (1.0, 0.0, 0.5 * 1.0, 1.0),          # outside; |V - R| = 1 beats |V_clip - R| = 0.75
        (1.0, 2.0, 0.5 * 1.25 ** 2, 0.0),    # outside; the clipped error 1.25 wins: no gradient
    ]
    for v, ret, loss, grad in cases:
        vt = Tensor(np.array([v]), requires_grad=True)
        out = value_loss(vt, np.array([ret]), old, eps)
        out.backward()
        assert out.item() == loss and vt.grad[0] == grad, (v, ret)


def test_entropy_bonus_is_the_mean_with_gradient_one_over_n():
    ent = Tensor(np.array([0.1, 0.5, 0.9, 1.3]), requires_grad=True)
    out = entropy_bonus(ent)
    assert out.item() == pytest.approx(0.7, rel=1e-15)
    out.backward()
    np.testing.assert_array_equal(ent.grad, np.full(4, 0.25))


# ----- KL estimators -------------------------------------------------------------------------------

P_OLD = np.array([0.1, 0.2, 0.3, 0.4])
P_NEW = np.array([0.4, 0.3, 0.2, 0.1])
P_NEW_NEAR = np.array([0.15, 0.2, 0.25, 0.4])


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_approx_kl_matches_naive_loop(estimator):
    logp_new, logp_old, _ = batch(np.random.default_rng(9))
    expected = sum(naive_kl_terms(logp_new, logp_old, estimator)) / 16
    assert approx_kl(logp_new, logp_old, estimator) == pytest.approx(expected, rel=1e-12)


def test_approx_kl_default_is_k3_and_returns_a_float():
    logp_new, logp_old, _ = batch(np.random.default_rng(10))
    got = approx_kl(Tensor(logp_new), logp_old)
    assert type(got) is float and got == approx_kl(logp_new, logp_old, "k3")


def exact_expectation(estimator, p_old, p_new):
    """E_{a ~ p_old}[estimator]: each action as a batch of one, weighted by its probability."""
    return sum(p * approx_kl(np.array([math.log(q)]), np.array([math.log(p)]), estimator)
               for p, q in zip(p_old, p_new))


@pytest.mark.parametrize("p_new", [P_NEW, P_NEW_NEAR])
def test_k1_and_k3_are_unbiased_for_kl_old_new_and_k2_is_not(p_new):
    kl = sum(p * math.log(p / q) for p, q in zip(P_OLD, p_new))
    assert exact_expectation("k1", P_OLD, p_new) == pytest.approx(kl, rel=1e-12)
    assert exact_expectation("k3", P_OLD, p_new) == pytest.approx(kl, rel=1e-12)
    assert abs(exact_expectation("k2", P_OLD, p_new) - kl) > 1e-3 * kl


def test_kl_direction_is_old_to_new():
    # For this pair the two directions differ by more than 0.1 nats; the estimator targets KL(old||new).
    p_new = np.array([0.7, 0.1, 0.1, 0.1])
    kl_fwd = sum(p * math.log(p / q) for p, q in zip(P_OLD, p_new))
    kl_rev = sum(q * math.log(q / p) for p, q in zip(P_OLD, p_new))
    assert abs(kl_fwd - kl_rev) > 0.1
    assert exact_expectation("k3", P_OLD, p_new) == pytest.approx(kl_fwd, rel=1e-12)


def test_k3_is_nonnegative_per_sample():
    log_ratios = np.concatenate([np.linspace(-30, 30, 2001), [1e-300, -1e-300, 1e-12, -1e-12, 0.0]])
    for d in log_ratios:
        assert approx_kl(np.array([d]), np.array([0.0]), "k3") >= 0.0, d


@pytest.mark.parametrize("p_new", [P_NEW, P_NEW_NEAR])
def test_kl_estimators_agree_with_analytic_categorical_kl_within_sampling_error(p_new):
    rng = np.random.default_rng(11)
    m = 50_000
    actions = rng.choice(4, size=m, p=P_OLD)              # samples from pi_old
    logp_old, logp_new = np.log(P_OLD)[actions], np.log(p_new)[actions]
    kl = sum(p * math.log(p / q) for p, q in zip(P_OLD, p_new))
    for estimator in ("k1", "k3"):
        # standard error from the exact per-sample variance over the 4 actions
        terms = [naive_kl_terms([math.log(q)], [math.log(p)], estimator)[0]
                 for p, q in zip(P_OLD, p_new)]
        var = sum(p * (t - kl) ** 2 for p, t in zip(P_OLD, terms))
        se = math.sqrt(var / m)
        assert abs(approx_kl(logp_new, logp_old, estimator) - kl) < 4 * se, estimator


# ----- clip fraction and explained variance --------------------------------------------------------

def test_clip_fraction_matches_naive_loop_and_excludes_the_boundary():
    logp_new, logp_old, _ = batch(np.random.default_rng(12), n=200, spread=0.3)
    expected = sum(abs(math.exp(a - b) - 1) > 0.2 for a, b in zip(logp_new, logp_old)) / 200
    assert clip_fraction(logp_new, logp_old, 0.2) == expected
    assert 0.2 < expected < 0.8
    d = math.log(1.2)
    r = float(np.exp(np.float64(d)))
    assert clip_fraction(np.array([d, d + 1e-9]), np.zeros(2), r - 1.0) == 0.5   # boundary is inside


def test_explained_variance_by_hand_and_against_naive_loop():
    returns = np.array([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(returns, returns) == 1.0
    assert explained_variance(np.full(4, 2.5), returns) == 0.0    # the mean explains nothing
    assert explained_variance(returns + 10.0, returns) == 1.0     # blind to a constant offset
    # V = [4, 3, 2, 1]: R - V = [-3, -1, 1, 3], Var = 5; Var[R] = 1.25; 1 - 5/1.25 = -3 (worse than the mean)
    assert explained_variance(returns[::-1], returns) == -3.0
    rng = np.random.default_rng(13)
    v, ret = rng.normal(size=30), rng.normal(size=30)

    def var(xs):
        mu = sum(xs) / len(xs)
        return sum((x - mu) ** 2 for x in xs) / len(xs)
    expected = 1 - var([b - a for a, b in zip(v, ret)]) / var(list(ret))
    assert explained_variance(v, ret) == pytest.approx(expected, rel=1e-12)


def test_explained_variance_of_constant_returns_is_zero_not_nan():
    got = explained_variance(np.array([0.1, 0.2, 0.3]), np.full(3, 5.0))
    assert type(got) is float and got == 0.0


# ----- KL coefficient controllers ------------------------------------------------------------------

def test_adaptive_kl_penalty_follows_the_papers_rule_on_a_scripted_sequence():
    target = 0.01
    controller = AdaptiveKLPenalty(beta=1.0, target_kl=target)
    script = [
        (0.001, 0.5),              # 0.001 < 0.01/1.5: halve
        (0.02, 1.0),               # 0.02 > 0.015: double
        (0.01, 1.0),               # on target: keep
        (0.1, 2.0),
        (0.016, 4.0),
        (target * 1.5, 4.0),       # exactly at 1.5 d_targ: keep (strict inequality)
        (target / 1.5, 4.0),       # exactly at d_targ / 1.5: keep
        (0.0066, 2.0),             # just below 0.00667: halve
        (-0.001, 1.0),             # a negative (sampled) estimate is below target: halve
    ]
    for kl, expected_beta in script:
        assert controller.update(kl) == expected_beta, kl
        assert controller.beta == expected_beta


def test_adaptive_kl_penalty_optional_clamp():
    controller = AdaptiveKLPenalty(beta=1.0, target_kl=0.01, beta_min=0.3, beta_max=3.0)
    assert [controller.update(kl) for kl in (1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)] == \
        [2.0, 3.0, 3.0, 1.5, 0.75, 0.375, 0.3]


def test_proportional_controller_one_step_by_hand():
    c = ProportionalKLController(beta=1.0, target_kl=0.1, horizon=1000)
    assert c.update(0.15, n_steps=100) == pytest.approx(1.0 * (1 + 0.2 * 0.1))   # e = 0.5 -> 0.2
    c = ProportionalKLController(beta=1.0, target_kl=0.1, horizon=1000)
    assert c.update(0.09, n_steps=100) == pytest.approx(1.0 * (1 - 0.1 * 0.1))   # e = -0.1


def test_proportional_controller_converges_to_beta_holding_kl_at_target():
    # Toy model: KL = c / beta, so KL = target at beta* = c / target. Unclipped, the update is
    # beta <- beta + K (beta* - beta) with K = n_steps / horizon: a contraction by (1 - K).
    c_kl, target, K = 0.5, 0.1, 0.1
    beta_star = c_kl / target
    controller = ProportionalKLController(beta=0.5, target_kl=target, horizon=1000)
    errors = []
    for _ in range(400):
        beta = controller.update(c_kl / controller.beta, n_steps=K * 1000)
        errors.append(beta - beta_star)
    assert controller.beta == pytest.approx(beta_star, rel=1e-9)
    assert c_kl / controller.beta == pytest.approx(target, rel=1e-9)
    # Early on e is clipped at 0.2 (beta grows 2% a step); once |beta*/beta - 1| < 0.2
    # (after ~107 steps here) the error shrinks by exactly (1 - K) per step.
    assert errors[1] == pytest.approx(0.5 * 1.02 ** 2 - beta_star)
    for before, after in zip(errors[150:160], errors[151:161]):
        assert after == pytest.approx((1 - K) * before, rel=1e-6)


# ----- ppo_loss --------------------------------------------------------------------------------------

def loss_inputs(seed=14, n=16):
    rng = np.random.default_rng(seed)
    logp_new, logp_old, adv = batch(rng, n)
    values, returns, old_values = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    entropy, kl = rng.random(n), rng.random(n) * 0.1
    return logp_new, logp_old, adv, values, returns, old_values, entropy, kl


@pytest.mark.parametrize("objective", ["clip", "kl_fixed", "unclipped"])
@pytest.mark.parametrize("clip_vloss", [False, True])
def test_ppo_loss_combines_the_parts(objective, clip_vloss):
    lp, lo, adv, v, ret, old_v, ent, kl = loss_inputs()
    vf_coef, ent_coef, beta, eps = 0.5, 0.01, 2.0, 0.2
    loss, info = ppo_loss(lp, lo, adv, v, ret, ent, objective=objective, clip_eps=eps,
                          vf_coef=vf_coef, ent_coef=ent_coef,
                          old_values=old_v if clip_vloss else None,
                          vf_clip_eps=eps if clip_vloss else None, kl=kl, beta=beta)
    policy = {"clip": naive_clipped(lp, lo, adv, eps), "unclipped": naive_pg(lp, lo, adv),
              "kl_fixed": naive_pg(lp, lo, adv) + beta * sum(kl) / 16}[objective]
    vl = naive_value_loss(v, ret, old_v if clip_vloss else None, eps if clip_vloss else None)
    entropy = sum(ent) / 16
    assert isinstance(loss, Tensor)
    assert loss.item() == pytest.approx(policy + vf_coef * vl - ent_coef * entropy, rel=1e-12)
    assert info["policy_loss"] == pytest.approx(policy, rel=1e-12)
    assert info["value_loss"] == pytest.approx(vl, rel=1e-12)
    assert info["entropy"] == pytest.approx(entropy, rel=1e-12)
    assert info["approx_kl"] == pytest.approx(sum(naive_kl_terms(lp, lo, "k3")) / 16, rel=1e-12)
    assert info["clip_fraction"] == sum(abs(math.exp(a - b) - 1) > eps for a, b in zip(lp, lo)) / 16
    assert all(type(x) is float for x in info.values())
    assert ("kl" in info) == (objective == "kl_fixed")


@pytest.mark.parametrize("objective", ["clip", "kl_fixed", "unclipped"])
def test_ppo_loss_gradients_match_finite_differences(objective):
    lp, lo, adv, v, ret, old_v, ent, kl = loss_inputs(15, n=8)

    def fn(logp_new, values, entropy, *kl_t):   # kl_t: the kl Tensor, for objective "kl_fixed" only
        return ppo_loss(logp_new, lo, adv, values, ret, entropy, objective=objective,
                        ent_coef=0.01, old_values=old_v, vf_clip_eps=0.2,
                        kl=kl_t[0] if kl_t else None, beta=1.5)[0]
    assert_gradcheck(fn, [lp, v, ent, kl] if objective == "kl_fixed" else [lp, v, ent])


def test_ppo_loss_near_clip_boundaries_gradient():
    lp, lo, adv = near_boundaries(0.2)
    v = np.zeros(8)
    assert_gradcheck(lambda a, b: ppo_loss(a, lo, adv, b, np.ones(8), np.ones(8))[0], [lp, v])


def test_tensor_in_tensor_out_array_in_number_out():
    lp, lo, adv = batch(np.random.default_rng(16))
    assert isinstance(clipped_surrogate(Tensor(lp), lo, adv), Tensor)
    assert isinstance(clipped_surrogate(lp, lo, Tensor(adv)), Tensor)
    out = clipped_surrogate(lp, lo, adv)
    assert not isinstance(out, Tensor) and np.ndim(out) == 0
    assert isinstance(value_loss(Tensor(lp), lo), Tensor) and not isinstance(value_loss(lp, lo), Tensor)
    assert isinstance(ppo_loss(lp, lo, adv, lp, lo, adv)[0], Tensor)


# ----- bad input -------------------------------------------------------------------------------------

def test_mismatched_shapes_name_both_shapes():
    a, b = np.zeros(4), np.zeros(5)
    with pytest.raises(ValueError, match=r"logp_new.*\(4,\).*logp_old.*\(5,\)"):
        clipped_surrogate(a, b, a)
    with pytest.raises(ValueError, match=r"advantages.*\(5,\)"):
        policy_gradient_surrogate(a, a, b)
    with pytest.raises(ValueError, match=r"kl.*\(5,\)"):
        kl_penalty_surrogate(a, a, a, b, 1.0)
    with pytest.raises(ValueError, match=r"returns.*\(5,\)"):
        value_loss(a, b)
    with pytest.raises(ValueError, match=r"old_values.*\(5,\)"):
        value_loss(a, a, b, 0.2)
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 1\)"):
        explained_variance(a, a[:, None])     # not broadcast to (4, 4)
    with pytest.raises(ValueError, match=r"values.*\(4,\).*returns.*\(5,\)"):
        ppo_loss(a, a, a, a, b, a)
    with pytest.raises(ValueError, match=r"kl.*\(5,\)"):
        ppo_loss(a, a, a, a, a, a, objective="kl_fixed", kl=b, beta=1.0)


@pytest.mark.parametrize("bad_eps", [0.0, -0.1, np.nan, np.inf])
def test_clip_eps_must_be_positive(bad_eps):
    a = np.zeros(3)
    for call in (lambda: clipped_surrogate(a, a, a, bad_eps), lambda: clip_fraction(a, a, bad_eps),
                 lambda: value_loss(a, a, a, bad_eps), lambda: ppo_loss(a, a, a, a, a, a, clip_eps=bad_eps),
                 lambda: ppo_loss(a, a, a, a, a, a, old_values=a, vf_clip_eps=bad_eps)):
        with pytest.raises(ValueError, match="clip_eps"):
            call()


@pytest.mark.parametrize("clip_eps", [np.array(0.25), np.float32(0.25)])
def test_clip_eps_may_be_a_numpy_scalar_or_zero_dimensional_array(clip_eps):
    # r = e^1 is clipped to 1.25 for A = 1: loss -1.25; fraction clipped 1
    assert clipped_surrogate(np.ones(1), np.zeros(1), np.ones(1), clip_eps).item() == -1.25
    assert clip_fraction(np.ones(1), np.zeros(1), clip_eps) == 1.0


@pytest.mark.parametrize("bad", [True, "0.2", None, np.array([0.2]), np.array([0.2, 0.2])])
def test_clip_eps_that_is_not_one_real_number_is_a_type_error_naming_it(bad):
    a = np.zeros(3)
    with pytest.raises(TypeError, match="clip_eps"):
        clipped_surrogate(a, a, a, bad)


def test_range_messages_state_the_interval_that_is_accepted():
    a = np.zeros(3)
    with pytest.raises(ValueError, match=r"clip_eps.*\(0, inf\)"):
        clipped_surrogate(a, a, a, 0.0)
    with pytest.raises(ValueError, match=r"vf_coef.*\[0, inf\)"):
        ppo_loss(a, a, a, a, a, a, vf_coef=-1)


def test_beta_must_be_nonnegative():
    a = np.zeros(3)
    with pytest.raises(ValueError, match="beta"):
        kl_penalty_surrogate(a, a, a, a, -0.1)
    with pytest.raises(ValueError, match="beta"):
        ppo_loss(a, a, a, a, a, a, objective="kl_fixed", kl=a, beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        AdaptiveKLPenalty(beta=0.0, target_kl=0.01)
    with pytest.raises(ValueError, match="beta"):
        ProportionalKLController(beta=-1.0, target_kl=0.01, horizon=100)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_names_argument_and_first_index(bad):
    x = np.zeros((3, 2))
    y = x.copy()
    y[1, 1] = y[2, 0] = bad
    pattern = r"{}.*index \(1, 1\)"
    with pytest.raises(ValueError, match=pattern.format("advantages")):
        clipped_surrogate(x, x, y)
    with pytest.raises(ValueError, match=pattern.format("logp_old")):
        approx_kl(x, Tensor(y))
    with pytest.raises(ValueError, match=pattern.format("kl")):
        kl_penalty_surrogate(x, x, x, y, 1.0)
    with pytest.raises(ValueError, match=pattern.format("returns")):
        explained_variance(x, y)
    with pytest.raises(ValueError, match=pattern.format("entropy")):
        ppo_loss(x, x, x, x, x, y)
    with pytest.raises(ValueError, match=pattern.format("advantages")):
        normalize_advantages(y)


def test_entropy_shape_must_match_logp_new_in_ppo_loss():
    a = np.zeros(3)
    with pytest.raises(ValueError, match=r"logp_new.*\(3,\).*entropy.*\(4,\)"):
        ppo_loss(a, a, a, a, a, np.zeros(4))


@pytest.mark.parametrize("dtype,log_ratio", [(np.float64, 710.0), (np.float32, 89.0)])
def test_an_overflowing_ratio_raises_naming_the_index_instead_of_a_nan_gradient(dtype, log_ratio):
    # exp(710) is inf in float64 (exp(89) in float32): with A > 0 min() picks the clipped term,
    # and the gradient through r would be 0 * inf = nan. Raise instead, naming where.
    logp_old = np.zeros(3, dtype=dtype)
    logp_new = np.array([0.1, 0.0, log_ratio], dtype=dtype)
    adv = np.ones(3, dtype=dtype)
    pattern = rf"logp_new - logp_old.*{log_ratio}.*index \(2,\).*{np.dtype(dtype).name}"
    for call in (lambda: clipped_surrogate(Tensor(logp_new, requires_grad=True), logp_old, adv),
                 lambda: policy_gradient_surrogate(logp_new, logp_old, adv),
                 lambda: kl_penalty_surrogate(logp_new, logp_old, adv, np.zeros(3, dtype), 1.0),
                 lambda: ppo_loss(logp_new, logp_old, adv, adv, adv, adv),
                 lambda: approx_kl(logp_new, logp_old, "k3")):
        with pytest.raises(ValueError, match=pattern):
            call()
    # k1, k2 never exponentiate; the clip fraction counts an infinite ratio as outside the band
    assert approx_kl(logp_new, logp_old, "k1") == pytest.approx(-float(logp_new.sum()) / 3, rel=1e-6)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clip_fraction(logp_new, logp_old, 0.2) == pytest.approx(1 / 3)


def test_largest_finite_ratio_still_has_finite_gradients():
    # log r = 700: r ~ 1e304 is finite, so the loss and its gradient are finite.
    lp = Tensor(np.array([700.0, 0.0]), requires_grad=True)
    out = clipped_surrogate(lp, np.zeros(2), np.array([-1.0, 1.0]))
    out.backward()
    assert np.isfinite(out.item()) and np.all(np.isfinite(lp.grad))


def test_other_bad_arguments():
    a = np.zeros(3)
    with pytest.raises(ValueError, match="estimator"):
        approx_kl(a, a, "k4")
    with pytest.raises(ValueError, match="objective"):
        ppo_loss(a, a, a, a, a, a, objective="ppo")
    with pytest.raises(ValueError, match=r"\bkl\b"):
        ppo_loss(a, a, a, a, a, a, objective="kl_fixed")
    with pytest.raises(ValueError, match="old_values"):
        value_loss(a, a, clip_eps=0.2)
    with pytest.raises(ValueError, match="empty"):
        clipped_surrogate(np.zeros(0), np.zeros(0), np.zeros(0))
    with pytest.raises(TypeError, match="logp_new"):
        clipped_surrogate(np.array(["a", "b", "c"]), a, a)
    with pytest.raises(ValueError, match="target_kl"):
        AdaptiveKLPenalty(beta=1.0, target_kl=0.0)
    with pytest.raises(ValueError, match="horizon"):
        ProportionalKLController(beta=1.0, target_kl=0.1, horizon=0)
    with pytest.raises(ValueError, match="n_steps"):
        ProportionalKLController(beta=1.0, target_kl=0.1, horizon=10).update(0.0, n_steps=60)
    with pytest.raises(ValueError, match="kl"):
        AdaptiveKLPenalty(beta=1.0, target_kl=0.1).update(float("nan"))


def test_adaptive_kl_penalty_without_beta_min_underflows_after_1075_halvings_as_documented():
    # 2^-1074 is the smallest float64; one more halving gives 0.0, and 0 * 2 stays 0.
    c = AdaptiveKLPenalty(beta=1.0, target_kl=0.01)
    for _ in range(1074):
        c.update(0.0)
    assert c.beta == 2.0 ** -1074
    assert c.update(0.0) == 0.0 and c.update(1.0) == 0.0
    c = AdaptiveKLPenalty(beta=1.0, target_kl=0.01, beta_min=1e-6)
    for _ in range(1100):
        c.update(0.0)
    assert c.beta == 1e-6 and c.update(1.0) == 2e-6


# ----- huge inputs: the right number, not an overflow ------------------------------------------

def test_normalize_advantages_of_huge_values_is_the_scale_free_answer():
    # [a, -a] has mean 0 and sample std sqrt(2) a, so the answer is [1, -1] / sqrt(2) for any a;
    # at a = 1e308 the squared deviations overflow float64 unless the batch is rescaled first.
    out = normalize_advantages(np.array([1e308, -1e308]))
    np.testing.assert_allclose(out, [2 ** -0.5, -(2 ** -0.5)], rtol=1e-15)
    # [a, a, a/2]: mean 5a/6, deviations a/6, a/6, -a/3, sample std a/sqrt(12): 1/sqrt(3) each
    out = normalize_advantages(np.array([1e308, 1e308, 5e307]))
    np.testing.assert_allclose(out, [3 ** -0.5, 3 ** -0.5, -2 * 3 ** -0.5], rtol=1e-12)


def test_normalize_advantages_of_ordinary_values_is_computed_as_written():
    adv = np.array([0.3, -1.7, 2.2, 0.05])
    centered = adv - adv.mean()
    expected = centered / (np.sqrt((centered ** 2).sum() / 3) + 1e-8)
    np.testing.assert_array_equal(normalize_advantages(adv), expected)     # bit for bit


def test_explained_variance_of_huge_values_is_finite_and_scale_free():
    values, returns = np.array([1.0, -1.0, 0.3]), np.array([1.1, -0.9, 0.2])
    small = 1 - np.var(returns - values) / np.var(returns)
    huge = explained_variance(values * 1e300, returns * 1e300)
    assert np.isfinite(huge)
    np.testing.assert_allclose(huge, small, rtol=1e-12)


# ----- defaults, the info dict and exact bounds ------------------------------------------------

def test_the_defaults_are_the_papers():
    """clip eps 0.2 (Schulman et al. 2017, section 6.1), c_1 = 0.5 on a value loss that
    carries no 1/2 of its own in the paper (ours does: module docstring, so c_1 = 0.5 here
    means 0.25 * (V - R)^2), no entropy bonus and no KL penalty unless asked for."""
    defaults = {name: p.default for name, p in inspect.signature(ppo_loss).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {"objective": "clip", "clip_eps": 0.2, "vf_coef": 0.5, "ent_coef": 0.0,
                        "old_values": None, "vf_clip_eps": None, "kl": None, "beta": 0.0}
    for fn in (clipped_surrogate, clip_fraction):
        assert inspect.signature(fn).parameters["clip_eps"].default == 0.2


def test_called_with_defaults_the_loss_is_eq_9_by_hand():
    # r = (e^0.3, e^-0.1); A = (1, -2): min(r A, clip(r) A) = (1.2 * 1, e^-0.1 * -2)
    logp_old = np.array([0.0, 0.0])
    logp_new = np.array([0.3, -0.1])
    A = np.array([1.0, -2.0])
    V, R, H = np.array([1.0, 2.0]), np.array([3.0, 2.0]), np.array([0.5, 0.7])
    loss, info = ppo_loss(logp_new, logp_old, A, V, R, H)
    policy = -(1.2 * 1.0 + math.exp(-0.1) * -2.0) / 2
    value = 0.5 * ((1 - 3) ** 2 + 0) / 2
    assert loss.item() == pytest.approx(policy + 0.5 * value, rel=1e-14)
    r = np.exp(logp_new)
    assert set(info) == {"loss", "policy_loss", "value_loss", "entropy", "approx_kl",
                         "clip_fraction"}
    assert info["loss"] == pytest.approx(policy + 0.5 * value, rel=1e-14)
    assert info["policy_loss"] == pytest.approx(policy, rel=1e-14)
    assert info["value_loss"] == pytest.approx(value, rel=1e-14)
    assert info["entropy"] == pytest.approx(0.6, rel=1e-14)
    # k3 = mean((r - 1) - log r), not k1 = mean(-log r) = -0.1
    assert info["approx_kl"] == pytest.approx(np.mean((r - 1) - np.log(r)), rel=1e-12)
    assert info["clip_fraction"] == 0.5                  # e^0.3 = 1.35 is outside [0.8, 1.2]
    assert clip_fraction(logp_new, logp_old) == 0.5      # the same band by default
    assert clipped_surrogate(logp_new, logp_old, A) == pytest.approx(policy, rel=1e-14)


def test_the_kl_objectives_without_beta_have_no_penalty():
    """beta defaults to 0: L^KLPEN is then the unclipped surrogate -mean(r A)."""
    logp_new, logp_old, A = np.array([0.3, -0.1]), np.zeros(2), np.array([1.0, -2.0])
    V = R = H = np.zeros(2)
    kl = np.array([5.0, 7.0])
    for objective in ("kl_fixed", "kl_adaptive"):
        loss, info = ppo_loss(logp_new, logp_old, A, V, R, H, objective=objective, kl=kl)
        expected = -(math.exp(0.3) * 1.0 + math.exp(-0.1) * -2.0) / 2
        assert loss.item() == pytest.approx(expected, rel=1e-14)
        assert info["kl"] == 6.0


@pytest.mark.parametrize("fn", [
    lambda lp: clipped_surrogate(lp, np.zeros(2), np.ones(2), 0.2),
    lambda lp: policy_gradient_surrogate(lp, np.zeros(2), np.ones(2)),
    lambda lp: approx_kl(lp, np.zeros(2), "k3"),
])
def test_an_overflowing_ratio_raises_naming_the_sample_and_numpy_stays_silent(fn):
    """exp(800) overflows: our error names sample 1; numpy's overflow warning is suppressed
    (it would reach the user first, as a warning, or as an exception under -W error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"at index \(1,\)"):
            fn(np.array([0.0, 800.0]))


def test_huge_advantages_are_normalised_with_eps_scaled_alike():
    """A = (a, -a) with a = 1e308: mean 0, std (ddof 1) = a sqrt(2); with eps = a the result is
    a / (a sqrt(2) + a) = 1 / (sqrt(2) + 1) exactly as in exact arithmetic."""
    a = 1e308
    out = normalize_advantages(np.array([a, -a]), eps=a)
    np.testing.assert_allclose(out, [1 / (math.sqrt(2) + 1), -1 / (math.sqrt(2) + 1)], rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 1000])
def test_the_overflow_scale_is_one_up_to_its_bound_and_a_power_of_two_past_it(dtype, n):
    """The bound is sqrt(max / n) / 2 in x's own dtype: at it the scale is 1 (the squared
    deviations, at most (2 bound)^2 each, sum to at most max); past it the scale is the power
    of two that brings the largest magnitude into [1, 2)."""
    bound = np.sqrt(np.finfo(dtype).max / n) / 2
    at = np.full(n, bound, dtype=dtype)
    at = np.where(at.astype(np.float64) > bound, np.nextafter(at, dtype(0)), at)   # <= bound in dtype
    assert _overflow_safe_scale(at) == 1.0
    past = np.full(n, np.nextafter(at[0], dtype(np.inf)), dtype=dtype)
    scale = _overflow_safe_scale(past)
    assert scale > 1.0 and math.frexp(scale)[0] == 0.5               # a power of two
    assert 1.0 <= float(past[0]) / scale < 2.0


@pytest.mark.parametrize("make, name, good, bad", [
    (lambda v: AdaptiveKLPenalty(beta=v, target_kl=0.01), "beta", 1e-300, 0.0),
    (lambda v: AdaptiveKLPenalty(beta=1.0, target_kl=v), "target_kl", 1e-300, 0.0),
    (lambda v: AdaptiveKLPenalty(beta=1.0, target_kl=0.01, beta_min=v), "beta_min", 1e-300, 0.0),
    (lambda v: AdaptiveKLPenalty(beta=0.5, target_kl=0.01, beta_max=v), "beta_max", 0.5, 0.0),
    (lambda v: AdaptiveKLPenalty(beta=0.5, target_kl=0.01, beta_min=0.5, beta_max=v),
     "beta_max", 0.6, 0.5),                                       # beta_max > beta_min, strictly
    (lambda v: AdaptiveKLPenalty(beta=1.0, target_kl=0.01).update(v), "kl", -1.0, float("nan")),
    (lambda v: ProportionalKLController(beta=v, target_kl=0.01, horizon=10), "beta", 1e-300, 0.0),
    (lambda v: ProportionalKLController(beta=1.0, target_kl=v, horizon=10), "target_kl",
     1e-300, 0.0),
    (lambda v: ProportionalKLController(beta=1.0, target_kl=0.01, horizon=v), "horizon",
     1e-300, 0.0),
    (lambda v: ProportionalKLController(beta=1.0, target_kl=0.01, horizon=10).update(v, 1),
     "kl", -1.0, float("inf")),
    (lambda v: ProportionalKLController(beta=1.0, target_kl=0.01, horizon=10).update(0.01, v),
     "n_steps", 1e-300, 0.0),
])
def test_the_kl_controllers_check_each_argument_at_its_exact_bound(make, name, good, bad):
    make(good)
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        make(bad)


@pytest.mark.parametrize("beta", [0.099, 10.001])
def test_adaptive_kl_penalty_refuses_a_beta_outside_its_own_clamp(beta):
    AdaptiveKLPenalty(beta=0.1, target_kl=0.01, beta_min=0.1, beta_max=10.0)   # ends are inside
    AdaptiveKLPenalty(beta=10.0, target_kl=0.01, beta_min=0.1, beta_max=10.0)
    with pytest.raises(ValueError, match=r"beta_min, beta_max\] = \[0\.1, 10\.0\]"):
        AdaptiveKLPenalty(beta=beta, target_kl=0.01, beta_min=0.1, beta_max=10.0)


def test_proportional_controller_refuses_a_step_that_would_zero_beta_at_exactly_five():
    """e = -0.2 (KL far below target) and n_steps / horizon = 10 / 2 = 5 give a factor
    1 - 0.2 * 5 = 0 exactly: beta would become 0, which no later update can revive."""
    controller = ProportionalKLController(beta=1.0, target_kl=0.01, horizon=2.0)
    assert controller.update(0.0, 9.0) == pytest.approx(1 - 0.2 * 4.5, rel=1e-14)
    with pytest.raises(ValueError, match=r"n_steps / horizon = 5 "):
        controller.update(0.0, 10.0)


@pytest.mark.parametrize("vf_clip_eps, old_values", [(0.2, None), (-0.1, np.zeros(2)),
                                                     (0.0, np.zeros(2))])
def test_ppo_loss_names_vf_clip_eps_not_value_losss_clip_eps(vf_clip_eps, old_values):
    """value_loss calls its band clip_eps; through ppo_loss the argument is vf_clip_eps."""
    z = np.zeros(2)
    with pytest.raises(ValueError, match=r"\bvf_clip_eps\b"):
        ppo_loss(z, z, z, z, z, z, vf_clip_eps=vf_clip_eps, old_values=old_values)


def test_the_fused_loss_nodes_are_named_after_their_equations():
    lp = Tensor(np.array([0.1, -0.2]), requires_grad=True)
    assert clipped_surrogate(lp, np.zeros(2), np.ones(2), 0.2)._op == "clipped_surrogate"
    assert value_loss(lp, np.zeros(2))._op == "squared_error"
