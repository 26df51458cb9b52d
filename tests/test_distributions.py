"""Specification of ppo_ref.distributions: closed forms, Monte-Carlo estimates at a fixed seed
(within 4 standard errors), gradients by finite differences, numerical stability at extreme
parameters, and the errors on bad input."""
import math
import warnings

import numpy as np
import pytest

from ppo_ref.autodiff import Tensor
from ppo_ref.distributions import Categorical, DiagGaussian
from ppo_ref.gradcheck import gradcheck

LOG_2PI = math.log(2 * math.pi)


def hand_log_softmax(logits):
    """log softmax written out in the test, row by row."""
    out = np.empty_like(logits)
    for i, row in enumerate(logits):
        m = max(row)
        out[i] = row - m - math.log(sum(math.exp(v - m) for v in row))
    return out


def hand_normal_logpdf(x, mean, std):
    """log of the product over dimensions of 1-D normal densities."""
    pdf = np.exp(-((x - mean) ** 2) / (2 * std ** 2)) / (std * math.sqrt(2 * math.pi))
    return np.log(pdf).sum(axis=-1)


def assert_gradcheck(fn, inputs):
    report = gradcheck(fn, inputs)
    assert report.passed, str(report)


LOGITS = np.array([[1.0, 2.0, 3.0, -1.0], [0.5, 0.5, -2.0, 4.0], [0.0, -3.0, 1.5, 1.0]])
OTHER_LOGITS = np.array([[0.0, 1.0, -1.0, 2.0], [1.0, 0.0, 0.0, 1.0], [2.0, -1.0, 0.5, 0.0]])


# ----- Categorical: closed forms ----------------------------------------------------------

@pytest.mark.parametrize("k", [2, 5, 10])
@pytest.mark.parametrize("level", [0.0, 1e3])
def test_uniform_categorical_entropy_is_log_k(k, level):
    h = Categorical(np.full((3, k), level)).entropy()
    np.testing.assert_allclose(h.data, np.full(3, math.log(k)), rtol=1e-14)


def test_categorical_log_prob_probs_entropy_match_hand_formulas():
    d = Categorical(LOGITS)
    logp = hand_log_softmax(LOGITS)
    actions = np.array([2, 3, 0])
    np.testing.assert_allclose(d.log_prob(actions).data, [logp[0, 2], logp[1, 3], logp[2, 0]], rtol=1e-14)
    np.testing.assert_allclose(d.log_probs().data, logp, rtol=1e-14)
    np.testing.assert_allclose(d.probs(), np.exp(logp), rtol=1e-14)
    np.testing.assert_allclose(d.entropy().data, -(np.exp(logp) * logp).sum(axis=1), rtol=1e-14)
    np.testing.assert_array_equal(d.mode(), [2, 3, 2])


def test_categorical_kl_closed_form_zero_on_itself_and_nonnegative():
    p, q = Categorical(LOGITS), Categorical(OTHER_LOGITS)
    lp, lq = hand_log_softmax(LOGITS), hand_log_softmax(OTHER_LOGITS)
    np.testing.assert_allclose(p.kl(q).data, (np.exp(lp) * (lp - lq)).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(p.kl(Categorical(LOGITS)).data, 0.0, atol=1e-15)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((200, 6)) * 3, rng.standard_normal((200, 6)) * 3
    assert np.all(Categorical(a).kl(Categorical(b)).data >= 0)


# ----- Categorical: Monte Carlo at a fixed seed -------------------------------------------

def test_categorical_sample_frequencies_match_probabilities():
    p = np.exp(hand_log_softmax(LOGITS[:1]))[0]
    n = 40_000
    actions = Categorical(np.tile(LOGITS[:1], (n, 1))).sample(np.random.default_rng(0))
    assert actions.dtype == np.int64 and actions.shape == (n,)
    freq = np.bincount(actions, minlength=4) / n
    sigma = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) < 4 * sigma), (freq, p)


def test_categorical_never_samples_a_masked_action():
    logits = np.tile([0.0, -1e9, 0.0, -1e9], (10_000, 1))
    actions = Categorical(logits).sample(np.random.default_rng(1))
    assert set(np.unique(actions)) == {0, 2}


def test_categorical_sampling_is_deterministic_per_seed():
    d = Categorical(LOGITS)
    np.testing.assert_array_equal(d.sample(np.random.default_rng(5)), d.sample(np.random.default_rng(5)))


def test_categorical_log_prob_monte_carlo_mean_is_minus_entropy():
    row = LOGITS[1:2]
    n = 40_000
    d = Categorical(np.tile(row, (n, 1)))
    neg_logp = -d.log_prob(d.sample(np.random.default_rng(2))).data
    lp = hand_log_softmax(row)[0]
    entropy = -(np.exp(lp) * lp).sum()
    assert abs(neg_logp.mean() - entropy) < 4 * neg_logp.std() / math.sqrt(n)


def test_categorical_kl_matches_monte_carlo_estimate():
    lp, lq = hand_log_softmax(LOGITS[:1])[0], hand_log_softmax(OTHER_LOGITS[:1])[0]
    n = 40_000
    a = np.random.default_rng(3).choice(4, size=n, p=np.exp(lp) / np.exp(lp).sum())
    log_ratio = lp[a] - lq[a]
    kl = Categorical(LOGITS[:1]).kl(Categorical(OTHER_LOGITS[:1])).item()
    assert abs(log_ratio.mean() - kl) < 4 * log_ratio.std() / math.sqrt(n)


# ----- Categorical: gradients and stability -------------------------------------------------

def test_categorical_gradients_match_finite_differences():
    actions = np.array([2, 0, 3])
    assert_gradcheck(lambda z: Categorical(z).log_prob(actions), [LOGITS])
    assert_gradcheck(lambda z: Categorical(z).entropy(), [LOGITS])
    assert_gradcheck(lambda z, w: Categorical(z).kl(Categorical(w)), [LOGITS, OTHER_LOGITS])
    assert_gradcheck(lambda z: Categorical(z).log_probs(), [LOGITS])


def test_categorical_extreme_logits_give_finite_values_and_gradients():
    big = np.array([[1e3, -1e3, 0.0], [-1e3, -1e3, 1e3]])
    z = Tensor(big, requires_grad=True)
    d, q = Categorical(z), Categorical(big[::-1].copy())
    outs = [d.log_prob(np.array([1, 0])), d.entropy(), d.kl(q)]
    for out in outs:
        assert np.all(np.isfinite(out.data))
        out.sum().backward()
        assert np.all(np.isfinite(z.grad))
    np.testing.assert_allclose(d.log_prob(np.array([1, 0])).data, [-2000.0, -2000.0], rtol=1e-15)
    np.testing.assert_allclose(d.entropy().data, 0.0, atol=1e-300)
    actions = np.array([1, 2])
    assert_gradcheck(lambda t: Categorical(t).log_prob(actions), [big])
    assert_gradcheck(lambda t: Categorical(t).entropy(), [big])
    assert_gradcheck(lambda t, u: Categorical(t).kl(Categorical(u)), [big, big[::-1].copy()])


def test_categorical_accepts_leading_batch_dimensions():
    logits = np.random.default_rng(0).standard_normal((2, 3, 5))
    d = Categorical(logits)
    actions = np.array([[0, 4, 2], [1, 1, 3]])
    expected = np.take_along_axis(hand_log_softmax(logits.reshape(6, 5)),
                                  actions.reshape(6, 1), 1).reshape(2, 3)
    np.testing.assert_allclose(d.log_prob(actions).data, expected, rtol=1e-14)
    assert d.sample(np.random.default_rng(0)).shape == (2, 3)
    assert d.entropy().shape == (2, 3)


# ----- Categorical: bad input ------------------------------------------------------------

def test_categorical_float_actions_are_a_type_error():
    with pytest.raises(TypeError, match="float64"):
        Categorical(LOGITS).log_prob(np.array([0.0, 1.0, 2.0]))


def test_categorical_action_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(2,\).*\(3, 4\).*\(3,\)"):
        Categorical(LOGITS).log_prob(np.array([0, 1]))


@pytest.mark.parametrize("actions,where", [([0, 4, 1], r"4 at index \(1,\)"), ([0, 1, -1], r"-1 at index \(2,\)")])
def test_categorical_out_of_range_action_names_the_index(actions, where):
    with pytest.raises(ValueError, match=where):
        Categorical(LOGITS).log_prob(np.array(actions))


def test_categorical_rejects_bad_logits_and_bad_kl_partner():
    with pytest.raises(ValueError, match=r"nan at index \(1, 2\)"):
        Categorical(np.where(np.arange(12).reshape(3, 4) == 6, np.nan, 0.0))
    with pytest.raises(ValueError, match=r"\(\)"):
        Categorical(np.float64(1.0))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 4\)"):
        Categorical(LOGITS).kl(Categorical(LOGITS[:2]))
    with pytest.raises(TypeError, match="DiagGaussian"):
        Categorical(LOGITS).kl(DiagGaussian(np.zeros((3, 4)), np.zeros(4)))


# ----- DiagGaussian --------------------------------------------------------------------------

MEAN = np.array([[0.5, -1.0], [2.0, 0.0], [-0.3, 0.7]])
LOG_STD = np.array([-0.5, 0.3])
OTHER_MEAN = np.array([[0.0, -0.5], [1.0, 1.0], [0.2, 0.2]])
OTHER_LOG_STD = np.array([[0.1, -0.2], [0.0, 0.4], [-0.3, 0.0]])


@pytest.mark.parametrize("log_std", [LOG_STD, OTHER_LOG_STD])
def test_gaussian_entropy_closed_form(log_std):
    d = DiagGaussian(MEAN, log_std)
    expected = 0.5 * 2 * math.log(2 * math.pi * math.e) + np.broadcast_to(log_std, MEAN.shape).sum(axis=1)
    np.testing.assert_allclose(d.entropy().data, expected, rtol=1e-14)


@pytest.mark.parametrize("log_std", [LOG_STD, OTHER_LOG_STD])
def test_gaussian_log_prob_matches_product_of_normal_densities(log_std):
    actions = np.array([[0.0, 0.0], [1.5, -0.5], [0.3, 2.0]])
    expected = hand_normal_logpdf(actions, MEAN, np.exp(log_std))
    np.testing.assert_allclose(DiagGaussian(MEAN, log_std).log_prob(actions).data, expected, rtol=1e-13)


def test_gaussian_kl_closed_form_zero_on_itself_and_nonnegative():
    p, q = DiagGaussian(MEAN, LOG_STD), DiagGaussian(OTHER_MEAN, OTHER_LOG_STD)
    sp, sq = np.exp(LOG_STD), np.exp(OTHER_LOG_STD)
    expected = (np.log(sq / sp) + (sp ** 2 + (MEAN - OTHER_MEAN) ** 2) / (2 * sq ** 2) - 0.5).sum(axis=1)
    np.testing.assert_allclose(p.kl(q).data, expected, rtol=1e-13)
    np.testing.assert_allclose(p.kl(DiagGaussian(MEAN, LOG_STD)).data, 0.0, atol=1e-15)
    rng = np.random.default_rng(0)
    a = DiagGaussian(rng.standard_normal((100, 3)), rng.standard_normal((100, 3)))
    b = DiagGaussian(rng.standard_normal((100, 3)), rng.standard_normal((100, 3)))
    assert np.all(a.kl(b).data >= 0)


def test_gaussian_sample_moments_and_mode():
    n = 40_000
    mean, log_std = np.array([1.0, -2.0]), np.array([0.0, -1.0])
    d = DiagGaussian(np.tile(mean, (n, 1)), log_std)
    x = d.sample(np.random.default_rng(0))
    assert x.shape == (n, 2)
    std = np.exp(log_std)
    assert np.all(np.abs(x.mean(axis=0) - mean) < 4 * std / math.sqrt(n))
    # the sample std has standard error ~ std / sqrt(2 n)
    assert np.all(np.abs(x.std(axis=0) - std) < 4 * std / math.sqrt(2 * n))
    np.testing.assert_array_equal(d.mode()[0], mean)
    np.testing.assert_array_equal(x, d.sample(np.random.default_rng(0)))


def test_gaussian_log_prob_monte_carlo_mean_is_minus_entropy():
    n = 40_000
    d = DiagGaussian(np.tile(MEAN[:1], (n, 1)), LOG_STD)
    neg_logp = -d.log_prob(d.sample(np.random.default_rng(1))).data
    entropy = math.log(2 * math.pi * math.e) + LOG_STD.sum()
    assert abs(neg_logp.mean() - entropy) < 4 * neg_logp.std() / math.sqrt(n)


def test_gaussian_kl_matches_monte_carlo_estimate():
    n = 40_000
    mp, sp = MEAN[:1], np.exp(LOG_STD)
    mq, sq = OTHER_MEAN[:1], np.exp(OTHER_LOG_STD[:1])
    x = mp + sp * np.random.default_rng(2).standard_normal((n, 2))
    log_ratio = hand_normal_logpdf(x, mp, sp) - hand_normal_logpdf(x, mq, sq)
    kl = DiagGaussian(mp, LOG_STD).kl(DiagGaussian(mq, OTHER_LOG_STD[:1])).item()
    assert abs(log_ratio.mean() - kl) < 4 * log_ratio.std() / math.sqrt(n)


@pytest.mark.parametrize("log_std", [LOG_STD, OTHER_LOG_STD])
def test_gaussian_gradients_match_finite_differences(log_std):
    actions = np.array([[0.0, 0.0], [1.5, -0.5], [0.3, 2.0]])
    assert_gradcheck(lambda m, s: DiagGaussian(m, s).log_prob(actions), [MEAN, log_std])
    assert_gradcheck(lambda a: DiagGaussian(MEAN, log_std).log_prob(a), [actions])
    assert_gradcheck(lambda m, s: DiagGaussian(m, s).entropy(), [MEAN, log_std])
    assert_gradcheck(lambda m, s, m2, s2: DiagGaussian(m, s).kl(DiagGaussian(m2, s2)),
                     [MEAN, log_std, OTHER_MEAN, OTHER_LOG_STD])


def test_gaussian_tiny_std_gives_finite_values_and_hand_computed_gradients():
    # log_std = -20 (std ~ 2e-9): d log p / d mean = z / std, d log p / d log_std = z^2 - 1
    log_std = np.array([-20.0, -20.0])
    z = np.array([[0.5, -1.5], [2.0, 0.1]])
    mean = np.array([[1.0, -1.0], [0.0, 3.0]])
    actions = mean + np.exp(log_std) * z
    m, s = Tensor(mean, requires_grad=True), Tensor(log_std, requires_grad=True)
    d = DiagGaussian(m, s)
    logp = d.log_prob(actions)
    assert np.all(np.isfinite(logp.data))
    logp.sum().backward()
    z_seen = (actions - mean) / np.exp(log_std)  # z after rounding of actions
    np.testing.assert_allclose(m.grad, z_seen / np.exp(log_std), rtol=1e-12)
    np.testing.assert_allclose(s.grad, (z_seen ** 2 - 1).sum(axis=0), rtol=1e-12)
    assert_gradcheck(lambda t: DiagGaussian(mean, t).log_prob(actions), [log_std])
    for out, wrt in ((d.entropy(), [s]), (d.kl(DiagGaussian(mean + 1.0, np.zeros(2))), [m, s]),
                     (DiagGaussian(mean + 1.0, np.zeros(2)).kl(d), [m, s])):
        assert np.all(np.isfinite(out.data))
        m.grad = s.grad = None
        out.sum().backward()
        assert all(np.all(np.isfinite(t.grad)) for t in wrt)


@pytest.mark.parametrize("dtype,log_std", [(np.float64, -710.0), (np.float32, -89.0)])
def test_gaussian_log_std_so_small_that_one_over_std_overflows_raises_instead_of_nan(dtype,
                                                                                   log_std):
    # At a = mean, z = (a - mean) / std would be 0 * inf = nan: refuse, naming the entry.
    mean = np.zeros((2, 2), dtype=dtype)
    tiny = DiagGaussian(mean, np.array([0.0, log_std], dtype=dtype))
    pattern = rf"log_std {log_std}.*index \(0, 1\).*{np.dtype(dtype).name}"
    with pytest.raises(ValueError, match="DiagGaussian.log_prob: " + pattern):
        tiny.log_prob(mean)
    with pytest.raises(ValueError, match="DiagGaussian.kl: " + pattern):
        DiagGaussian(mean, np.zeros(2, dtype=dtype)).kl(tiny)
    assert np.isfinite(tiny.entropy().data).all()        # H is linear in log_std: still finite


def test_gaussian_float32_stays_float32():
    d = DiagGaussian(MEAN.astype(np.float32), LOG_STD.astype(np.float32))
    a = d.sample(np.random.default_rng(0))
    assert a.dtype == np.float32
    assert d.log_prob(a).dtype == np.float32 and d.entropy().dtype == np.float32


def test_gaussian_bad_input_errors_name_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 2\)"):
        DiagGaussian(MEAN, np.zeros(3))
    d = DiagGaussian(MEAN, LOG_STD)
    with pytest.raises(ValueError, match=r"\(3, 1\).*\(3, 2\)"):
        d.log_prob(np.zeros((3, 1)))
    with pytest.raises(TypeError, match="int64"):
        d.log_prob(np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"log_std.*inf at index \(1,\)"):
        DiagGaussian(MEAN, np.array([0.0, np.inf]))
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 2\)"):
        d.kl(DiagGaussian(MEAN[:2], LOG_STD))
    with pytest.raises(TypeError, match="Categorical"):
        d.kl(Categorical(LOGITS))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_gaussian_non_finite_actions_raise_naming_the_index_instead_of_nan(bad):
    actions = np.zeros((3, 2))
    actions[2, 1] = bad
    d = DiagGaussian(MEAN, LOG_STD)
    with pytest.raises(ValueError, match=r"actions.*index \(2, 1\)"):
        d.log_prob(actions)
    with pytest.raises(ValueError, match=r"index \(2, 1\)"):
        d.log_prob(Tensor(actions))


@pytest.mark.parametrize("dist", [Categorical(LOGITS), DiagGaussian(MEAN, LOG_STD)],
                         ids=["categorical", "gaussian"])
@pytest.mark.parametrize("rng", [None, np.random, np.random.RandomState(0), 0])
def test_sample_accepts_only_a_generator_never_global_state(dist, rng):
    with pytest.raises(TypeError, match="rng"):
        dist.sample(rng)


# ----- MultiCategorical: independent components, every quantity a sum -------------------------

from ppo_ref.distributions import Bernoulli, MultiCategorical  # noqa: E402

NVEC = (2, 3)
MC_LOGITS = np.array([[0.3, -1.0, 2.0, 0.0, -0.5], [1.5, 1.5, -3.0, 4.0, 1.0],
                      [0.0, 2.0, 0.1, 0.2, 0.3]])                     # (3, 2 + 3)
MC_OTHER = np.array([[1.0, 0.0, 0.0, 1.0, -1.0], [-1.0, 2.0, 1.0, 1.0, 1.0],
                     [0.5, 0.5, -2.0, 0.0, 3.0]])


def hand_joint_table(logits, nvec):
    """p(a_0, a_1) for two components, written as the outer product of two softmaxes."""
    p0 = np.exp(hand_log_softmax(logits[:, :nvec[0]]))
    p1 = np.exp(hand_log_softmax(logits[:, nvec[0]:]))
    return p0[:, :, None] * p1[:, None, :]                               # (B, n0, n1)


def test_multi_categorical_log_prob_entropy_kl_equal_those_of_the_joint_table():
    """The product distribution written out as a (n0 x n1) table per row: log p, H and KL of the
    table equal the sums over components."""
    p, q = hand_joint_table(MC_LOGITS, NVEC), hand_joint_table(MC_OTHER, NVEC)
    d, e = MultiCategorical(MC_LOGITS, NVEC), MultiCategorical(MC_OTHER, NVEC)
    actions = np.array([[1, 2], [0, 0], [1, 1]])
    want_logp = [math.log(p[b, a0, a1]) for b, (a0, a1) in enumerate(actions)]
    np.testing.assert_allclose(d.log_prob(actions).data, want_logp, rtol=1e-13)
    np.testing.assert_allclose(d.entropy().data, -(p * np.log(p)).sum(axis=(1, 2)), rtol=1e-13)
    np.testing.assert_allclose(d.kl(e).data, (p * np.log(p / q)).sum(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(d.kl(d).data, 0.0, atol=1e-15)
    np.testing.assert_array_equal(d.mode(), [[0, 0], [0, 1], [1, 2]])   # ties: the first


def test_multi_categorical_sample_frequencies_match_the_joint_table():
    d = MultiCategorical(MC_LOGITS[:1].repeat(20000, axis=0), NVEC)
    a = d.sample(np.random.default_rng(3))
    assert a.shape == (20000, 2) and a.dtype == np.int64
    freq = np.zeros((2, 3))
    np.add.at(freq, (a[:, 0], a[:, 1]), 1.0)
    p = hand_joint_table(MC_LOGITS[:1], NVEC)[0]
    se = np.sqrt(p * (1 - p) / 20000)
    assert np.all(np.abs(freq / 20000 - p) < 4 * se)


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_multi_categorical_gradients_match_finite_differences(scale):
    """log_prob, entropy and kl, at ordinary and at extreme (+-1e3) logits."""
    actions = np.array([[1, 2], [0, 0], [1, 1]])
    logits, other = MC_LOGITS * scale, MC_OTHER * scale
    assert_gradcheck(lambda l: MultiCategorical(l, NVEC).log_prob(actions), [logits])
    assert_gradcheck(lambda l: MultiCategorical(l, NVEC).entropy(), [logits])
    assert_gradcheck(lambda l, m: MultiCategorical(l, NVEC).kl(MultiCategorical(m, NVEC)),
                     [logits, other])
    d = MultiCategorical(logits, NVEC)
    for out in (d.log_prob(actions), d.entropy(), d.kl(MultiCategorical(other, NVEC))):
        assert np.isfinite(out.data).all()


def test_multi_categorical_bad_input_names_the_argument_or_index():
    with pytest.raises(ValueError, match="nvec"):
        MultiCategorical(MC_LOGITS, [2, 0])
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        MultiCategorical(MC_LOGITS[:, :4], NVEC)
    d = MultiCategorical(MC_LOGITS, NVEC)
    with pytest.raises(ValueError, match=r"index \(1, 1\)"):
        d.log_prob(np.array([[0, 0], [1, 3], [0, 0]]))     # component 1 has 3 actions
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        d.log_prob(np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="nvec"):
        d.kl(MultiCategorical(MC_OTHER, (3, 2)))


# ----- Bernoulli: from logits, every quantity a sum over entries ------------------------------

BERN_LOGITS = np.array([[0.0, 2.0, -1.5], [3.0, -0.5, 0.25]])
BERN_OTHER = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -2.0]])


def hand_sigmoid(x):
    return np.array([[1.0 / (1.0 + math.exp(-v)) for v in row] for row in x])


def test_bernoulli_log_prob_entropy_kl_match_the_two_outcome_formulas():
    p, q = hand_sigmoid(BERN_LOGITS), hand_sigmoid(BERN_OTHER)
    d, e = Bernoulli(BERN_LOGITS), Bernoulli(BERN_OTHER)
    actions = np.array([[1, 0, 1], [0, 0, 1]])
    want = np.where(actions == 1, np.log(p), np.log(1 - p)).sum(axis=1)
    np.testing.assert_allclose(d.log_prob(actions).data, want, rtol=1e-13)
    np.testing.assert_allclose(d.entropy().data,
                               -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum(axis=1), rtol=1e-13)
    kl = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
    np.testing.assert_allclose(d.kl(e).data, kl.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(d.probs(), p, rtol=1e-14)
    np.testing.assert_array_equal(d.mode(), [[0, 1, 0], [1, 0, 1]])   # 0 at logit 0


def test_bernoulli_sample_frequencies_match_sigmoid():
    d = Bernoulli(np.repeat(BERN_LOGITS[:1], 20000, axis=0))
    a = d.sample(np.random.default_rng(5))
    assert a.shape == (20000, 3) and set(np.unique(a)) <= {0, 1}
    p = hand_sigmoid(BERN_LOGITS[:1])[0]
    assert np.all(np.abs(a.mean(axis=0) - p) < 4 * np.sqrt(p * (1 - p) / 20000))


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_bernoulli_gradients_match_finite_differences(scale):
    actions = np.array([[1, 0, 1], [0, 0, 1]])
    logits, other = BERN_LOGITS * scale, BERN_OTHER * scale
    assert_gradcheck(lambda l: Bernoulli(l).log_prob(actions), [logits])
    assert_gradcheck(lambda l: Bernoulli(l).entropy(), [logits])
    assert_gradcheck(lambda l, m: Bernoulli(l).kl(Bernoulli(m)), [logits, other])


def test_bernoulli_extreme_logits_give_the_limits():
    """l = +-1e3: log p(1) = 0 and log p(0) = -1e3 (= l - softplus(l)), entropy 0, all finite."""
    d = Bernoulli(np.array([[1e3, -1e3]]))
    np.testing.assert_allclose(d.log_prob(np.array([[1, 0]])).data, [0.0], atol=1e-12)
    np.testing.assert_allclose(d.log_prob(np.array([[0, 1]])).data, [-2e3], rtol=1e-12)
    np.testing.assert_allclose(d.entropy().data, [0.0], atol=1e-12)


def test_bernoulli_bad_input_names_the_argument_or_index():
    d = Bernoulli(BERN_LOGITS)
    with pytest.raises(ValueError, match=r"index \(1, 2\)"):
        d.log_prob(np.array([[1, 0, 1], [0, 0, 2]]))
    with pytest.raises(TypeError, match="dtype"):
        d.log_prob(np.array([[1.0, 0, 1], [0, 0, 1]]))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        d.log_prob(np.array([1, 0, 1]))
    with pytest.raises(ValueError, match="logits"):
        Bernoulli(np.array([[np.nan, 0.0]]))


# ----- every family: leading batch dimensions, dtypes, and the errors' names ---------------------

BATCH = (2, 3)


def test_categorical_kl_entropy_and_mode_with_leading_batch_dimensions():
    rng = np.random.default_rng(0)
    logits, other = rng.standard_normal(BATCH + (5,)), rng.standard_normal(BATCH + (5,))
    lp, lq = (hand_log_softmax(z.reshape(6, 5)) for z in (logits, other))
    d = Categorical(logits)
    assert d.batch_shape == BATCH
    np.testing.assert_allclose(d.kl(Categorical(other)).data,
                               (np.exp(lp) * (lp - lq)).sum(axis=1).reshape(BATCH), rtol=1e-13)
    np.testing.assert_allclose(d.entropy().data, -(np.exp(lp) * lp).sum(axis=1).reshape(BATCH),
                               rtol=1e-13)
    mode = d.mode()
    assert mode.dtype == np.int64
    np.testing.assert_array_equal(mode, [[max(range(5), key=lambda k: row[k]) for row in rows]
                                         for rows in logits])


@pytest.mark.parametrize("log_std_shape", [(2,), BATCH + (2,)])
def test_gaussian_with_leading_batch_dimensions_matches_the_closed_forms(log_std_shape):
    rng = np.random.default_rng(1)
    mean, other_mean = rng.standard_normal(BATCH + (2,)), rng.standard_normal(BATCH + (2,))
    log_std, other_log_std = 0.3 * rng.standard_normal(log_std_shape), 0.3 * rng.standard_normal(BATCH + (2,))
    actions = rng.standard_normal(BATCH + (2,))
    d, e = DiagGaussian(mean, log_std), DiagGaussian(other_mean, other_log_std)
    assert d.batch_shape == BATCH
    sp, sq = np.exp(np.broadcast_to(log_std, mean.shape)), np.exp(other_log_std)
    np.testing.assert_allclose(d.log_prob(actions).data, hand_normal_logpdf(actions, mean, sp), rtol=1e-13)
    np.testing.assert_allclose(d.entropy().data, (np.log(sp) + 0.5 * math.log(2 * math.pi * math.e)).sum(-1),
                               rtol=1e-13)
    kl = (np.log(sq / sp) + (sp ** 2 + (mean - other_mean) ** 2) / (2 * sq ** 2) - 0.5).sum(-1)
    np.testing.assert_allclose(d.kl(e).data, kl, rtol=1e-12)
    assert d.sample(np.random.default_rng(0)).shape == BATCH + (2,)


def test_multi_categorical_with_leading_batch_dimensions_matches_the_joint_table():
    rng = np.random.default_rng(2)
    logits, other = rng.standard_normal(BATCH + (5,)), rng.standard_normal(BATCH + (5,))
    actions = np.stack([rng.integers(0, 2, BATCH), rng.integers(0, 3, BATCH)], axis=-1)  # (2, 3, 2)
    p, q = hand_joint_table(logits.reshape(6, 5), NVEC), hand_joint_table(other.reshape(6, 5), NVEC)
    d, e = MultiCategorical(logits, NVEC), MultiCategorical(other, NVEC)
    assert d.batch_shape == BATCH
    flat = actions.reshape(6, 2)
    want = [math.log(p[b, a0, a1]) for b, (a0, a1) in enumerate(flat)]
    np.testing.assert_allclose(d.log_prob(actions).data, np.reshape(want, BATCH), rtol=1e-13)
    np.testing.assert_allclose(d.entropy().data, -(p * np.log(p)).sum(axis=(1, 2)).reshape(BATCH),
                               rtol=1e-13)
    np.testing.assert_allclose(d.kl(e).data, (p * np.log(p / q)).sum(axis=(1, 2)).reshape(BATCH),
                               rtol=1e-12)
    mode = d.mode()
    assert mode.shape == BATCH + (2,) and mode.dtype == np.int64
    np.testing.assert_array_equal(mode[..., 0], logits[..., :2].argmax(-1))
    np.testing.assert_array_equal(mode[..., 1], logits[..., 2:].argmax(-1))
    a = d.sample(np.random.default_rng(0))
    assert a.shape == BATCH + (2,) and a.dtype == np.int64
    assert a[..., 0].max() <= 1 and a[..., 1].max() <= 2


def test_bernoulli_with_leading_batch_dimensions_matches_the_two_outcome_formulas():
    rng = np.random.default_rng(3)
    logits, other = rng.standard_normal(BATCH + (3,)), rng.standard_normal(BATCH + (3,))
    actions = rng.integers(0, 2, BATCH + (3,))
    p = hand_sigmoid(logits.reshape(6, 3)).reshape(logits.shape)
    q = hand_sigmoid(other.reshape(6, 3)).reshape(other.shape)
    d, e = Bernoulli(logits), Bernoulli(other)
    assert d.batch_shape == BATCH
    np.testing.assert_allclose(d.log_prob(actions).data,
                               np.where(actions == 1, np.log(p), np.log(1 - p)).sum(-1), rtol=1e-13)
    np.testing.assert_allclose(d.entropy().data, -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum(-1),
                               rtol=1e-13)
    kl = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
    np.testing.assert_allclose(d.kl(e).data, kl.sum(-1), rtol=1e-12)
    assert d.sample(np.random.default_rng(0)).shape == BATCH + (3,)
    np.testing.assert_array_equal(d.mode(), (logits > 0).astype(np.int64))


def test_bernoulli_float32_stays_float32():
    d = Bernoulli(BERN_LOGITS.astype(np.float32))
    e = Bernoulli(BERN_OTHER.astype(np.float32))
    actions = np.array([[1, 0, 1], [0, 0, 1]])
    assert d.probs().dtype == np.float32
    assert all(out.dtype == np.float32 for out in (d.log_prob(actions), d.entropy(), d.kl(e)))


def test_gaussian_sample_is_mean_plus_std_times_the_generators_standard_normals():
    d = DiagGaussian(MEAN, OTHER_LOG_STD)
    eps = np.random.default_rng(7).standard_normal(MEAN.shape)
    np.testing.assert_array_equal(d.sample(np.random.default_rng(7)), MEAN + np.exp(OTHER_LOG_STD) * eps)


class FixedUniform(np.random.Generator):
    """A Generator whose random() returns u everywhere: inverse-CDF sampling at a chosen u."""

    def __init__(self, u):
        super().__init__(np.random.PCG64(0))
        self.u = u

    def random(self, size=None):
        return np.full(size, self.u)


def test_categorical_sample_is_the_inverse_cdf_with_steps_closed_on_the_left():
    # a = #{k : cdf_k <= u}: u in [cdf_{k-1}, cdf_k) draws k, so u exactly at cdf_k draws k + 1
    d = Categorical(LOGITS)
    cdf = np.cumsum(d.probs(), axis=1)
    cdf /= cdf[:, -1:]
    for k in range(3):
        np.testing.assert_array_equal(d.sample(FixedUniform(cdf[0, k]))[0], k + 1)
        np.testing.assert_array_equal(d.sample(FixedUniform(np.nextafter(cdf[0, k], 0.0)))[0], k)
    for b in range(3):
        u = cdf[b, 1]
        want = [sum(c <= u for c in row) for row in cdf]
        np.testing.assert_array_equal(d.sample(FixedUniform(u)), want)


def test_categorical_sample_never_draws_a_zero_probability_action_even_at_u_0_or_u_just_below_1():
    # u = 0 with the first action masked: a = #{k : cdf_k <= 0} = 1, never action 0
    np.testing.assert_array_equal(
        Categorical(np.array([[-1e9, 0.0, 1.0], [-1e9, -1e9, 0.0]])).sample(FixedUniform(0.0)), [1, 2])
    # the largest u < 1, the last action masked, and probabilities whose float sum falls short of 1:
    # the CDF divided by its last entry still ends at exactly 1.0, so u < cdf_{A-1} = cdf_{A-2}
    logits = np.random.default_rng(0).standard_normal((200, 5))
    logits[:, -1] = -1e9
    d = Categorical(logits)
    assert (np.cumsum(d.probs(), axis=1)[:, -1] < 1.0).any()      # the case this test is about
    assert d.sample(FixedUniform(1.0 - 2.0 ** -53)).max() == 3


@pytest.mark.parametrize("dist", [Categorical(LOGITS), DiagGaussian(MEAN, LOG_STD),
                                  MultiCategorical(MC_LOGITS, NVEC), Bernoulli(BERN_LOGITS)],
                         ids=lambda d: type(d).__name__)
def test_sample_and_kl_errors_name_the_family_and_the_argument(dist):
    name = type(dist).__name__
    with pytest.raises(TypeError, match=rf"^{name}\.sample: rng .*got int"):
        dist.sample(0)
    with pytest.raises(TypeError, match=rf"^{name}\.kl: other .*got str"):
        dist.kl("not a distribution")


def test_bernoulli_logits_without_entries_name_bernoulli_and_d():
    with pytest.raises(ValueError, match=r"^Bernoulli: logits must have shape \(B, D\) with D >= 1"):
        Bernoulli(np.zeros((2, 0)))


@pytest.mark.parametrize("dtype,log_std", [(np.float64, -710.0), (np.float32, -89.0)])
def test_gaussian_log_std_too_small_raises_without_an_overflow_warning_first(dtype, log_std):
    tiny = DiagGaussian(np.zeros((1, 1), dtype=dtype), np.array([log_std], dtype=dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="log_std"):
            tiny.log_prob(np.zeros((1, 1), dtype=dtype))
