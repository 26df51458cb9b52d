"""Specification tests for the conformance kit (ppo_ref.spec: verify, quantities, update).

For every quantity: ppo_ref's own function passes, in float64 and as a float32 port; wrong
variants written HERE (numpy, computing in whatever dtype they are given) fail, in float64
and in float32, with the diagnosis of the mistake they contain. Then the report, the
command line (exit status 0 / 1 / 2, stdout, JSON) and the whole-update scenario round trip.
"""
import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ppo_ref import autodiff as ad
from ppo_ref.spec import verify
from ppo_ref.autodiff import Tensor
from ppo_ref.gae import compute_gae
from ppo_ref.spec.golden import adam_steps, clip_grad_norm_arrays
from ppo_ref.losses import (approx_kl, clip_fraction, clipped_surrogate, explained_variance,
                            normalize_advantages, value_loss)
from ppo_ref.optim import Adam, clip_grad_norm
from ppo_ref.spec.quantities import (QUANTITIES, bernoulli_adapter, categorical_adapter,
                                     gaussian_adapter, multi_categorical_adapter)
from ppo_ref.spec import update as verify_update
from ppo_ref.rlhf.finetune import sequence_gae, token_rewards

REPO = Path(__file__).resolve().parents[1]


# ----- ppo_ref's own functions, and float32 ports of them -----------------------------------

def to32(x):
    if isinstance(x, list):
        return [to32(v) for v in x]
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return x.astype(np.float32)
    return x


def out32(x):
    if isinstance(x, tuple):
        return tuple(out32(v) for v in x)
    if isinstance(x, list):
        return [out32(v) for v in x]
    return np.asarray(x, dtype=np.float32)


def as_float32(fn):
    """fn run on float32 inputs (ppo_ref keeps float32 throughout), outputs as float32."""
    @functools.wraps(fn)
    def wrapped(*args):
        return out32(fn(*[to32(a) for a in args]))
    return wrapped


def with_gradient(loss, dtype=np.float64):
    """Adapter returning (loss, d loss / d first argument) through ppo_ref's autodiff."""
    def fn(x, *rest):
        t = Tensor(np.asarray(x, dtype=dtype), requires_grad=True)
        y = loss(t, *[to32(r) if dtype == np.float32 else r for r in rest])
        y.backward()
        return y.data, t.grad
    return fn


def adam32(param, grads, lr, beta1, beta2, eps):
    p = Tensor(param.astype(np.float32), requires_grad=True)
    opt = Adam([p], lr=lr, betas=(beta1, beta2), eps=eps)
    out = []
    for g in grads.astype(np.float32):
        p.grad = g.copy()
        opt.step()
        out.append(p.data.copy())
    return np.array(out)


def clip_grad_norm32(grads, max_norm):
    params = []
    for g in grads:
        p = Tensor(np.zeros(g.shape, np.float32), requires_grad=True)
        p.grad = g.astype(np.float32)
        params.append(p)
    return np.float32(clip_grad_norm(params, max_norm)), [p.grad for p in params]


OWN = {
    "gae": compute_gae,
    "normalize_advantages": normalize_advantages,
    "clipped_surrogate": clipped_surrogate,
    "value_loss": value_loss,
    "value_loss_clipped": value_loss,
    "approx_kl": approx_kl,
    "approx_kl_k1": functools.partial(approx_kl, estimator="k1"),
    "approx_kl_k2": functools.partial(approx_kl, estimator="k2"),
    "approx_kl_k3": functools.partial(approx_kl, estimator="k3"),
    "clip_fraction": clip_fraction,
    "explained_variance": explained_variance,
    "categorical": categorical_adapter,
    "gaussian": gaussian_adapter,
    "adam": adam_steps,
    "clip_grad_norm": clip_grad_norm_arrays,
    "rlhf_token_rewards": token_rewards,
    "rlhf_whitening": lambda advantages, mask: normalize_advantages(advantages[mask]),
    "rlhf_sequence_gae": lambda r, v, mask, lam: tuple(x[mask] for x in sequence_gae(r, v, mask, lam)),
    "multi_categorical": multi_categorical_adapter,
    "bernoulli": bernoulli_adapter,
}
FLOAT32 = {name: as_float32(fn) for name, fn in OWN.items()}
FLOAT32.update(adam=adam32, clip_grad_norm=clip_grad_norm32,
               clipped_surrogate=with_gradient(clipped_surrogate, np.float32),
               value_loss=with_gradient(value_loss, np.float32),
               value_loss_clipped=with_gradient(value_loss, np.float32))


def test_every_quantity_has_a_test_adapter_and_documents_itself():
    assert set(OWN) == set(QUANTITIES)
    for q in QUANTITIES.values():
        assert q.signature.startswith("fn(") and q.summary and len(q.mistakes) >= 2


@pytest.mark.parametrize("name", sorted(QUANTITIES))
def test_ppo_refs_own_function_passes_in_float64_and_float32(name):
    report = verify.check(OWN[name], name)
    assert report.passed and report.dtype == "float64", report
    assert report.rtol == 1e-10 and report.n_cases >= 5
    report32 = verify.check(FLOAT32[name], name)
    assert report32.passed and report32.dtype == "float32", report32
    assert report32.rtol == 1e-5 and "float32 default" in str(report32)


def test_gradients_are_checked_when_returned():
    own = verify.check(with_gradient(clipped_surrogate), "clipped_surrogate")
    assert own.passed and own.gradient_checked
    value_only = verify.check(clipped_surrogate, "clipped_surrogate")
    assert value_only.passed and value_only.gradient_checked is False
    assert "gradient not checked" in str(value_only)

    def detached_ratio(new, old, adv, eps):   # a gradient bug the value cannot show
        loss, grad = with_gradient(clipped_surrogate)(new, old, adv, eps)
        return loss, grad * 0.5
    assert not verify.check(detached_ratio, "clipped_surrogate").passed


# ----- wrong variants, written here -----------------------------------------------------------

def gae_loop(r, v, nv, term, trunc, gamma, lam, bootstrap, cut):
    adv, last = np.zeros_like(r), np.zeros_like(r[0])
    for t in reversed(range(len(r))):
        last = r[t] + gamma * bootstrap[t] * nv[t] - v[t] + gamma * lam * cut[t] * last
        adv[t] = last
    return adv, adv + v


def gae_truncation_as_termination(r, v, nv, term, trunc, gamma, lam):
    done = (1 - (term | trunc)).astype(r.dtype)
    return gae_loop(r, v, nv, term, trunc, gamma, lam, done, done)


def gae_truncation_ignored(r, v, nv, term, trunc, gamma, lam):
    live = (1 - term).astype(r.dtype)
    return gae_loop(r, v, nv, term, trunc, gamma, lam, live, live)


def log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def categorical_numpy(logits, actions, other, kl_reversed=False, raw_logit=False):
    lp, lq = log_softmax(logits), log_softmax(other)
    log_prob = np.take_along_axis(logits if raw_logit else lp, actions[:, None], 1)[:, 0]
    entropy = -(np.exp(lp) * lp).sum(-1)
    kl = (np.exp(lq) * (lq - lp)).sum(-1) if kl_reversed else (np.exp(lp) * (lp - lq)).sum(-1)
    return log_prob, entropy, kl


def gaussian_numpy(mean, log_std, a, om, ols, kl_reversed=False, log_var=False):
    if log_var:
        log_std, ols = log_std / 2, ols / 2
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    z = (a - mean) / np.exp(log_std)
    log_prob = (-0.5 * z * z - log_std - half_log_2pi).sum(-1)
    entropy = (log_std + 0.5 + half_log_2pi).sum(-1)
    p, q = ((om, ols), (mean, log_std)) if kl_reversed else ((mean, log_std), (om, ols))
    kl = (q[1] - p[1] + (np.exp(2 * p[1]) + (p[0] - q[0]) ** 2) / (2 * np.exp(2 * q[1])) - 0.5).sum(-1)
    return log_prob, entropy, kl


def adam_numpy(param, grads, lr, b1, b2, eps, inside=False, correct=True):
    theta, m, v, out = param.copy(), np.zeros_like(param), np.zeros_like(param), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        c1, c2 = (1 - b1 ** t, 1 - b2 ** t) if correct else (1.0, 1.0)
        denom = np.sqrt(v / c2 + eps) if inside else np.sqrt(v / c2) + eps
        theta = theta - lr * (m / c1) / denom
        out.append(theta)
    return np.array(out)


def clip_numpy(grads, max_norm, per_tensor=False, after=False):
    norm = np.sqrt(sum(np.sum(g * g) for g in grads))
    if per_tensor:
        out = [g * min(1.0, max_norm / (np.sqrt(np.sum(g * g)) + 1e-6)) for g in grads]
    else:
        coef = max_norm / (norm + 1e-6)
        out = [g * coef for g in grads] if coef < 1 else grads
    if after:
        norm = np.sqrt(sum(np.sum(g * g) for g in out))
    return norm, out


def ratio(new, old):
    return np.exp(new - old)


WRONG = {
    "gae": {"truncation_as_termination": gae_truncation_as_termination,
            "truncation_ignored": gae_truncation_ignored},
    "normalize_advantages": {
        "ddof0": lambda a, eps: (a - a.mean()) / (a.std() + eps),
        "not_centered": lambda a, eps: a / (a.std(ddof=1) + eps)},
    "clipped_surrogate": {
        "clip_without_min": lambda new, old, a, e: -np.mean(np.clip(ratio(new, old), 1 - e, 1 + e) * a),
        "max_instead_of_min": lambda new, old, a, e: -np.mean(np.maximum(
            ratio(new, old) * a, np.clip(ratio(new, old), 1 - e, 1 + e) * a))},
    "value_loss": {
        "missing_half": lambda v, r: np.mean((v - r) ** 2),
        "sum_instead_of_mean": lambda v, r: 0.5 * np.sum((v - r) ** 2)},
    "value_loss_clipped": {
        "missing_half": lambda v, r, o, e: np.mean(np.maximum(
            (v - r) ** 2, (o + np.clip(v - o, -e, e) - r) ** 2)),
        "min_instead_of_max": lambda v, r, o, e: 0.5 * np.mean(np.minimum(
            (v - r) ** 2, (o + np.clip(v - o, -e, e) - r) ** 2))},
    "approx_kl": {
        "wrong_direction": lambda new, old: np.mean(np.expm1(old - new) - (old - new)),
        "missing_minus_one": lambda new, old: np.mean(ratio(new, old) - (new - old))},
    "approx_kl_k1": {
        "wrong_direction": lambda new, old: np.mean(new - old),
        "abs_log_ratio": lambda new, old: np.mean(np.abs(old - new))},
    "approx_kl_k2": {
        "missing_half": lambda new, old: np.mean((new - old) ** 2),
        "ratio_not_log_ratio": lambda new, old: np.mean(0.5 * (ratio(new, old) - 1) ** 2)},
    "clip_fraction": {
        "log_ratio_band": lambda new, old, e: np.mean(np.abs(new - old) > e),
        "upper_side_only": lambda new, old, e: np.mean(ratio(new, old) > 1 + e)},
    "explained_variance": {
        "r_squared": lambda v, r: 1 - np.mean((r - v) ** 2) / np.var(r),
        "missing_one_minus": lambda v, r: np.var(r - v) / np.var(r)},
    "categorical": {
        "kl_wrong_direction": functools.partial(categorical_numpy, kl_reversed=True),
        "unnormalized_log_prob": functools.partial(categorical_numpy, raw_logit=True)},
    "gaussian": {
        "kl_wrong_direction": functools.partial(gaussian_numpy, kl_reversed=True),
        "log_std_as_log_variance": functools.partial(gaussian_numpy, log_var=True)},
    "adam": {"eps_inside_sqrt": functools.partial(adam_numpy, inside=True),
             "no_bias_correction": functools.partial(adam_numpy, correct=False)},
    "clip_grad_norm": {"per_tensor": functools.partial(clip_numpy, per_tensor=True),
                       "norm_after_clipping": functools.partial(clip_numpy, after=True)},
}
WRONG["approx_kl_k3"] = WRONG["approx_kl"]


def rlhf_rewards_numpy(logp, logp_ref, mask, scores, beta, sign=-1.0, assign=False):
    rewards = np.zeros_like(logp)
    for b in range(len(mask)):
        n = int(mask[b].sum())
        rewards[b, :n] = sign * beta * (logp[b, :n] - logp_ref[b, :n])
        rewards[b, n - 1] = scores[b] + (0.0 if assign else rewards[b, n - 1])
    return rewards


def whiten_numpy(x):
    return (x - x.mean()) / (x.std(ddof=1) + 1e-8)


def rlhf_gae_numpy(rewards, values, mask, lam, through_padding=False, reward_to_go=False):
    """Per row, t = L-1 .. 0; the sequence ends after its last token (or, through_padding, the
    recursion runs on to the row's end)."""
    adv, ret = np.zeros_like(rewards), np.zeros_like(rewards)
    for b in range(len(mask)):
        n = mask.shape[1] if through_padding else int(mask[b].sum())
        last, to_go = 0.0, 0.0
        for t in reversed(range(n)):
            next_value = values[b, t + 1] if t + 1 < n else 0.0
            last = rewards[b, t] + next_value - values[b, t] + lam * last
            to_go = rewards[b, t] + to_go
            adv[b, t], ret[b, t] = last, (to_go if reward_to_go else last + values[b, t])
    return adv[mask], ret[mask]


WRONG.update({
    "rlhf_token_rewards": {
        "kl_penalty_sign": functools.partial(rlhf_rewards_numpy, sign=1.0),
        "score_overwrites_kl": functools.partial(rlhf_rewards_numpy, assign=True)},
    "rlhf_whitening": {
        "padding_in_statistics": lambda a, mask: whiten_numpy(a)[mask],
        "per_sequence": lambda a, mask: np.concatenate([whiten_numpy(r[m]) for r, m in zip(a, mask)])},
    "rlhf_sequence_gae": {
        "runs_over_padding": functools.partial(rlhf_gae_numpy, through_padding=True),
        "returns_as_reward_to_go": functools.partial(rlhf_gae_numpy, reward_to_go=True)},
})


def multi_categorical_numpy(logits, nvec, actions, other, mean=False, one_softmax=False):
    """Each component's categorical_numpy, summed (or, wrongly, averaged); or, wrongly, one
    softmax over all the logits."""
    starts = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    if one_softmax:
        lp, lq = log_softmax(logits), log_softmax(other)
        return (np.take_along_axis(lp, actions + starts, 1).sum(-1), -(np.exp(lp) * lp).sum(-1),
                (np.exp(lp) * (lp - lq)).sum(-1))
    parts = [categorical_numpy(logits[:, s:s + n], actions[:, k], other[:, s:s + n])
             for k, (s, n) in enumerate(zip(starts, nvec))]
    reduce = np.mean if mean else np.sum
    return tuple(reduce(np.stack([p[i] for p in parts]), axis=0) for i in range(3))


def bernoulli_numpy(logits, actions, other, mean=False, one_term_entropy=False):
    """Per entry, log p = l - softplus(l), log(1 - p) = -softplus(l) (softplus = logaddexp(0, .),
    finite at l = +-1000): log p(a), the two-outcome entropy and KL, summed (or, wrongly, averaged)."""
    lp1, lp0 = logits - np.logaddexp(0, logits), -np.logaddexp(0, logits)
    lq1, lq0 = other - np.logaddexp(0, other), -np.logaddexp(0, other)
    p = np.exp(lp1)
    log_prob = np.where(actions == 1, lp1, lp0)
    entropy = -p * lp1 - (0 if one_term_entropy else (1 - p) * lp0)
    kl = p * (lp1 - lq1) + (1 - p) * (lp0 - lq0)
    reduce = np.mean if mean else np.sum
    return reduce(log_prob, -1), reduce(entropy, -1), reduce(kl, -1)


WRONG.update({
    "multi_categorical": {
        "mean_over_components": functools.partial(multi_categorical_numpy, mean=True),
        "one_softmax_over_all_logits": functools.partial(multi_categorical_numpy, one_softmax=True)},
    "bernoulli": {
        "mean_over_entries": functools.partial(bernoulli_numpy, mean=True),
        "entropy_of_one_outcome": functools.partial(bernoulli_numpy, one_term_entropy=True)},
})
CASES = [(name, mistake) for name in sorted(WRONG) for mistake in WRONG[name]]


def test_every_quantity_has_wrong_variants():
    assert set(WRONG) == set(QUANTITIES)


@pytest.mark.parametrize("name, mistake", CASES)
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_wrong_variant_fails_with_its_diagnosis(name, mistake, precision):
    fn = WRONG[name][mistake]
    if precision == "float32":
        fn = functools.wraps(fn)(lambda *args, _fn=fn: _fn(*[to32(a) for a in args]))
    report = verify.check(fn, name)
    assert report.status == "fail" and report.exit_code == 1, report
    assert report.dtype == precision or name == "clip_fraction"   # mean(bools) is float64
    assert report.mistake == mistake, report
    assert report.diagnosis == QUANTITIES[name].mistakes[mistake].diagnosis
    assert f"diagnosis: {report.diagnosis}" in str(report)
    assert report.failing_case["case"] and report.worst_abs_error > 0


def test_specific_diagnoses_read_as_the_issue_names_them():
    expect = {("gae", "truncation_as_termination"): "truncated episodes are not bootstrapped",
              ("normalize_advantages", "ddof0"): "ddof = 0",
              ("value_loss", "missing_half"): "missing the 0.5",
              ("adam", "eps_inside_sqrt"): "eps is inside the square root",
              ("adam", "no_bias_correction"): "no bias correction",
              ("approx_kl", "wrong_direction"): "wrong direction",
              ("clipped_surrogate", "clip_without_min"): "not through min(...)"}
    for (name, mistake), words in expect.items():
        assert words in QUANTITIES[name].mistakes[mistake].diagnosis


def test_float32_math_returned_as_float64_is_told_apart_from_a_mistake():
    def gae_upcast(*args):   # computes in float32, hands back float64 (like .item() or .double())
        adv, ret = FLOAT32["gae"](*args)
        return adv.astype(np.float64), ret.astype(np.float64)
    report = verify.check(gae_upcast, "gae")
    assert report.status == "fail" and report.mistake == "float32_precision"
    assert "--rtol 1e-5" in report.diagnosis
    relaxed = verify.check(gae_upcast, "gae", rtol=1e-5)
    assert relaxed.passed and relaxed.tolerance_source == "given" and relaxed.rtol == 1e-5


@pytest.mark.parametrize("dtype, off_by, agrees", [
    (np.float64, 2e-11, True), (np.float64, 5e-10, False),  # float64: 1e-10 of the scale
    (np.float32, 2e-6, True), (np.float32, 5e-5, False),    # float32: 1e-5 of the scale
])
def test_the_default_tolerance_follows_the_returned_precision(dtype, off_by, agrees):
    def slightly_off(*args):
        adv, ret = compute_gae(*args)
        return (adv * (1 + off_by)).astype(dtype), ret.astype(dtype)
    report = verify.check(slightly_off, "gae")
    assert report.passed == agrees, report
    assert report.dtype == np.dtype(dtype).name
    # the largest advantage is the scale in some case, so the error reaches off_by of it
    assert report.worst_rel_error == pytest.approx(off_by, rel=0.2)


def test_a_float32_loss_returned_as_a_python_float_beside_a_float32_gradient_passes():
    # torch's `return loss.item(), logp_new.grad`: the whole function is held to float32
    def item_and_grad(*args):
        loss, grad = FLOAT32["clipped_surrogate"](*args)
        return float(loss), grad
    report = verify.check(item_and_grad, "clipped_surrogate")
    assert report.passed and report.dtype == "float32" and report.gradient_checked, report


@pytest.mark.parametrize("precision", [np.float64, np.float32])
def test_wrong_variants_that_return_their_gradient_are_diagnosed_too(precision):
    def clip_without_min(new, old, a, e):
        return with_gradient(lambda t, old, a: -(ad.clip((t - old).exp(), 1 - e, 1 + e) * a).mean(),
                             precision)(new, old, a)

    def value_loss_without_half(v, r):
        return with_gradient(lambda t, r: ((t - r) * (t - r)).mean(), precision)(v, r)
    for fn, name, mistake in [(clip_without_min, "clipped_surrogate", "clip_without_min"),
                              (value_loss_without_half, "value_loss", "missing_half")]:
        report = verify.check(fn, name)
        assert report.gradient_checked and report.mistake == mistake, report
        assert report.dtype == np.dtype(precision).name


def test_a_wrong_entry_of_a_list_output_is_named_by_its_array_and_index():
    def one_entry_off(grads, max_norm):
        norm, clipped = clip_grad_norm_arrays(grads, max_norm)
        clipped[0].flat[1] += 1.0     # the second entry of the first array, whatever its shape
        return norm, clipped
    report = verify.check(one_entry_off, "clip_grad_norm")
    f = report.failing_case
    shape = np.shape(verify.cases("clip_grad_norm")[0].args[0][0])
    index = [int(j) for j in np.unravel_index(1, shape)]
    assert (f["case"], f["output"], f["index"]) == ("golden/below_max_norm", "clipped_grads[0]", index)
    assert f"clipped_grads[0][{', '.join(map(str, index))}]: expected" in str(report)


def test_the_report_says_which_tolerance_was_given():
    report = verify.check(compute_gae, "gae", atol=1e-12)
    assert report.rtol == 1e-10 and report.atol == 1e-12
    assert "(rtol float64 default, atol given)" in str(report)


def test_an_unknown_mistake_gets_no_diagnosis():
    report = verify.check(lambda a, eps: normalize_advantages(a, eps) * 1.01, "normalize_advantages")
    assert report.status == "fail" and report.diagnosis is None
    assert "none of the known mistakes matches" in str(report)


def gae_next_row(r, v, nv, term, trunc, gamma, lam, fix_truncation=True):
    """CleanRL's loop: the next value is values[t+1] inside the rollout, next_values only at its
    end; with fix_truncation, a truncated step bootstraps from next_values[t] (V(final obs))."""
    adv, last = np.zeros_like(r), np.zeros_like(r[0])
    for t in reversed(range(len(r))):
        nxt = nv[t] if t == len(r) - 1 else np.where(trunc[t], nv[t], v[t + 1])
        boot = 1.0 - (term[t] if fix_truncation else term[t] | trunc[t])
        last = r[t] + gamma * boot * nxt - v[t] + gamma * lam * (1.0 - (term[t] | trunc[t])) * last
        adv[t] = last
    return adv, adv + v


def test_a_gae_that_reads_values_of_the_next_row_passes_on_real_rollouts():
    for case in verify.cases("gae"):   # next_values[t] is values[t+1] unless an episode ends at t
        r, v, nv, term, trunc = case.args[:5]
        np.testing.assert_array_equal(np.where(term | trunc, nv, np.roll(v, -1, 0))[:-1], nv[:-1])
    for precision in ("float64", "float32"):
        cast = (lambda f: f) if precision == "float64" else as_float32
        assert verify.check(cast(gae_next_row), "gae").passed
        report = verify.check(cast(functools.partial(gae_next_row, fix_truncation=False)), "gae")
        assert report.mistake == "truncation_as_termination", report


def test_a_gae_that_neither_bootstraps_nor_cuts_at_truncation_is_named():
    def neither(r, v, nv, term, trunc, gamma, lam):
        return gae_loop(r, v, np.where(trunc, 0.0, nv), term, trunc, gamma, lam,
                        1.0 - term, 1.0 - term)
    report = verify.check(as_float32(neither), "gae")
    assert report.mistake == "truncated_not_bootstrapped", report
    assert "not cut there either" in report.diagnosis


@pytest.mark.parametrize("counted", [
    lambda r, eps: np.abs(r - 1) > eps,
    lambda r, eps: (r > 1 + eps) | (r < 1 - eps),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_fraction_at_both_clip_edges_accepts_either_count_within_rounding(counted, dtype):
    # one case holds ratios at 1 - eps AND 1 + eps: rounding may count both, one or neither
    names = [c.name for c in verify.cases("clip_fraction")]
    assert "random/ratios_at_and_near_1+-0.2" in names

    def fraction(new, old, eps):
        r = np.exp(new.astype(dtype) - old.astype(dtype))
        return np.mean(counted(r, dtype(eps)).astype(dtype))
    assert verify.check(fraction, "clip_fraction").passed


# ----- what a user function may return, and what it may not -----------------------------------

class FakeTorchTensor:
    """Duck-types a torch tensor that requires grad: np.asarray fails until .detach()."""
    def __init__(self, value, attached=True):
        self.value, self.attached = np.asarray(value), attached

    def detach(self):
        return FakeTorchTensor(self.value, attached=False)

    def numpy(self):
        if self.attached:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad")
        return self.value


def test_tensors_lists_and_python_floats_are_accepted():
    def as_tensors(*args):
        adv, ret = compute_gae(*args)
        return FakeTorchTensor(adv), ret.tolist()
    assert verify.check(as_tensors, "gae").passed
    assert verify.check(lambda v, r: [[value_loss(v, r)]], "value_loss").passed  # size-1 scalar


@pytest.mark.parametrize("fn, words", [
    (lambda *a: 1 / 0, "raised ZeroDivisionError: division by zero"),
    (lambda *a: a[0][:, 0], "expected a tuple (advantages, returns)"),
    (lambda *a: (a[0][:, 0], a[0][:, 0]), "advantages has shape"),
    (lambda *a: (a[0] * np.nan, a[0]), "advantages is nan at index [0, 0]"),
    (lambda *a: ("abc", a[0]), "advantages is not numeric: got 'abc'"),
    (lambda *a: (object(), a[0]), "advantages is not numeric"),
])
def test_a_bad_function_gives_a_one_line_error_naming_the_case(fn, words):
    report = verify.check(fn, "gae")
    assert report.status == "error" and report.exit_code == 2
    text = str(report)
    assert "\n" not in text and words in text and "case golden/single_step_terminated" in text


def test_a_multi_line_exception_stays_one_line_and_a_wrong_arity_shows_the_signature():
    def torch_like(v, r):
        raise RuntimeError("The size of tensor a (3) must match\nthe size of tensor b (4)")
    text = str(verify.check(torch_like, "value_loss"))
    assert "\n" not in text and "must match the size of tensor b (4)" in text
    text = str(verify.check(lambda v: v, "value_loss"))
    assert "raised TypeError" in text and "the adapter signature is fn(values (B,), returns (B,))" in text
    text = str(verify.check(lambda v, r: np.inf, "value_loss"))   # a scalar: no index
    assert "loss is inf where ppo_ref gives 0.722" in text and "index" not in text


def test_a_torch_style_categorical_kl_that_overflows_is_named_with_the_finite_answer():
    # torch.distributions' Categorical KL uses probs: where q's probability underflows to 0 it
    # returns inf; ppo_ref (log_softmax throughout) gives the finite KL
    def kl_from_probs(logits, actions, other):
        log_prob, entropy, _ = categorical_adapter(logits, actions, other)
        p, q = np.exp(log_softmax(logits)), np.exp(log_softmax(other))
        with np.errstate(divide="ignore", invalid="ignore"):   # torch: 0 where p = 0
            return log_prob, entropy, np.where(p == 0, 0.0, p * (np.log(p) - np.log(q))).sum(-1)
    report = verify.check(kl_from_probs, "categorical")
    assert report.exit_code == 2 and "\n" not in str(report)
    assert "case golden/extreme_logits: kl is inf at index [2] where ppo_ref gives 999.3" in str(report)
    assert "Logits of +-1000" in str(report)    # the case's description says what is extreme


def test_not_callable_and_unknown_quantity():
    assert verify.check(3, "gae").exit_code == 2
    with pytest.raises(ValueError, match="unknown quantity 'gea'"):
        verify.check(compute_gae, "gea")


def test_assert_conforms_raises_with_the_report():
    assert verify.assert_conforms(compute_gae, "gae").passed
    with pytest.raises(AssertionError, match="truncated episodes are not bootstrapped"):
        verify.assert_conforms(gae_truncation_as_termination, "gae")


def test_inputs_are_copies_and_float32_exact():
    def mutating(a, eps):
        out = normalize_advantages(a, eps)
        a[:] = 0.0
        return out
    assert verify.check(mutating, "normalize_advantages").passed
    for case in verify.cases("clipped_surrogate") + verify.cases("gaussian"):
        for x in case.args:
            if isinstance(x, np.ndarray) and x.dtype.kind == "f" and "boundar" not in case.name \
                    and "within" not in case.name:
                np.testing.assert_array_equal(x.astype(np.float32).astype(np.float64), x)


# ----- the command line ---------------------------------------------------------------------------

USER_MODULE = '''
import numpy as np
from ppo_ref.gae import compute_gae

def good(*args):
    return compute_gae(*args)

def buggy(r, v, nv, term, trunc, gamma, lam):
    return compute_gae(r, v, nv, term | trunc, trunc, gamma, lam)

def broken(*args):
    raise RuntimeError("not implemented")

answer = 42
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_ppo.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("target, code, words", [
    ("user_ppo:good", 0, "PASS  17 of 17 cases agree"),
    ("user_ppo:buggy", 1, "diagnosis: truncated episodes are not bootstrapped"),
    ("user_ppo:broken", 2, "raised RuntimeError: not implemented"),
    ("user_ppo:answer", 2, "user_ppo:answer is not callable"),
    ("user_ppo:missing", 2, "has no attribute 'missing'"),
    ("no_such_module:f", 2, "cannot import no_such_module: ModuleNotFoundError"),
])
def test_cli_exit_status_stdout_and_json(user_module, capsys, target, code, words):
    out_json = user_module / "report.json"
    assert verify.main([target, "--quantity", "gae", "--json", str(out_json)]) == code
    stdout = capsys.readouterr().out
    assert words in stdout
    if code == 2:
        assert stdout.count("\n") == 1 and stdout.startswith("ERROR")
    data = json.loads(out_json.read_text())
    assert data["status"] == {0: "pass", 1: "fail", 2: "error"}[code]
    if code == 1:
        assert data["mistake"] == "truncation_as_termination"
        assert data["failing_case"]["inputs"] and data["n_failed"] >= 1


def test_cli_file_path_target_tolerance_flags_and_list(user_module, capsys):
    path = user_module / "user_ppo.py"
    assert verify.main([f"{path}:good", "--quantity", "gae", "--rtol", "1e-6", "--atol", "0"]) == 0
    assert "|error| <= 0 + 1e-06 * scale (given)" in capsys.readouterr().out
    assert verify.main(["user_ppo:good", "--quantity", "nope"]) == 2
    assert "unknown quantity 'nope'" in capsys.readouterr().out
    assert verify.main(["--list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in QUANTITIES)


def test_cli_an_unwritable_json_file_is_one_line_and_exit_2(user_module, capsys):
    target = str(user_module / "no_such_dir" / "r.json")
    assert verify.main(["user_ppo:good", "--quantity", "gae", "--json", target]) == 2
    assert capsys.readouterr().out.splitlines()[-1].startswith("ERROR ppo_ref verify: cannot write")


@pytest.mark.parametrize("flag, value", [("--rtol", "-1"), ("--atol", "nan")])
def test_cli_rejects_a_negative_or_nan_tolerance_with_exit_2(user_module, capsys, flag, value):
    assert verify.main(["user_ppo:good", "--quantity", "gae", flag, value]) == 2
    assert f"{flag[2:]} must be a finite number >= 0" in capsys.readouterr().out


def test_python_m_ppo_ref_verify_runs_the_registered_subcommand(user_module):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(user_module)]))
    runs = [subprocess.run([sys.executable, "-m", "ppo_ref", "verify", target, "--quantity", "gae"],
                           capture_output=True, text=True, env=env, cwd=user_module)
            for target in ("user_ppo:good", "user_ppo:buggy")]
    assert [r.returncode for r in runs] == [0, 1]
    assert "PASS" in runs[0].stdout and "FAIL" in runs[1].stdout


# ----- the user's code runs in a child process, under a time limit ---------------------------------

HOSTILE_MODULE = '''
import os, signal, sys, time
import numpy as np
from ppo_ref.gae import compute_gae

def exits(*args):
    sys.exit(0)

def hard_exit(*args):
    os._exit(0)

def killed(*args):
    os.kill(os.getpid(), signal.SIGKILL)

def sleeps(*args):
    while True:
        time.sleep(1)

def talks(*args):
    print("a line printed by the user's module")
    return compute_gae(*args)

class Tensor:
    """Like a torch tensor: np.asarray cannot read it, .detach().numpy() can."""
    def __init__(self, value):
        self.value = value
    def __array__(self, *args, **kwargs):
        raise RuntimeError("call .numpy() first")
    def detach(self):
        return self
    def numpy(self):
        return self.value

class Thing:
    pass

def tensors(*args):
    adv, ret = compute_gae(*args)
    return Tensor(adv.astype(np.float32)), Tensor(ret.astype(np.float32))

def things(*args):
    return Thing(), Thing()

def zeros_and_a_patched_kit(*args):
    """Patches the comparison of the process it runs in to see no difference."""
    import ppo_ref.spec.verify as kit
    kit._distance = lambda got, lo, hi: np.zeros_like(got)
    return np.zeros_like(args[0]), np.zeros_like(args[0])
'''


@pytest.fixture
def hostile_module(user_module):
    (user_module / "hostile.py").write_text(HOSTILE_MODULE)
    (user_module / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    (user_module / "hard_exits_on_import.py").write_text("import os\nos._exit(0)\n")
    (user_module / "sleeps_on_import.py").write_text("import time\ntime.sleep(1000)\n")
    return user_module


@pytest.mark.parametrize("target, words", [
    ("hostile:exits", "case golden/single_step_terminated: the function's process exited with "
                      "status 0 before returning a result"),
    ("hostile:hard_exit", "case golden/single_step_terminated: the function's process exited "
                          "with status 0 before returning a result"),
    ("hostile:killed", "case golden/single_step_terminated: the function's process was killed "
                       "by signal 9 (SIGKILL)"),
    ("exits_on_import:f", "the function's process exited with status 0 while importing "
                          "exits_on_import"),
    ("hard_exits_on_import:f", "the function's process exited with status 0 while importing "
                               "hard_exits_on_import"),
])
def test_a_function_that_exits_or_is_killed_is_exit_2_saying_so(hostile_module, capsys, target,
                                                                  words):
    assert verify.main([target, "--quantity", "gae"]) == 2
    stdout = capsys.readouterr().out
    assert stdout.startswith("ERROR") and stdout.count("\n") == 1 and words in stdout


def test_sys_exit_0_in_the_module_is_exit_2_from_the_installed_command(hostile_module):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(hostile_module)]))
    for target in ("exits_on_import:f", "hostile:exits", "hostile:hard_exit"):
        run = subprocess.run([sys.executable, "-m", "ppo_ref", "verify", target, "--quantity",
                              "gae"], capture_output=True, text=True, env=env, cwd=hostile_module,
                             timeout=120)
        assert run.returncode == 2 and "exited with status 0" in run.stdout, (target, run)
        assert "Traceback" not in run.stderr


@pytest.mark.parametrize("target, where", [
    ("hostile:sleeps", "in case golden/single_step_terminated"),
    ("sleeps_on_import:f", "while importing sleeps_on_import"),
])
def test_a_function_that_never_returns_times_out_naming_the_case(hostile_module, capsys, target,
                                                                 where):
    import time
    start = time.monotonic()
    assert verify.main([target, "--quantity", "gae", "--timeout", "2"]) == 2
    elapsed = time.monotonic() - start
    assert elapsed < 20           # 2 s of waiting, plus starting one Python process
    assert f"timed out after 2 s {where}" in capsys.readouterr().out


def test_the_child_is_gone_after_a_time_out(hostile_module):
    from ppo_ref.spec.sandbox import FunctionProcess, TimedOut
    with FunctionProcess("hostile:sleeps", timeout=1) as fn:
        with pytest.raises(TimedOut, match="timed out after 1 s"):
            fn([1])
        assert fn._process.poll() is not None      # killed, not left running


def _verify_in_a_subprocess(module_dir, target):
    """`python -m ppo_ref verify TARGET` started with Ctrl-C delivered as in a terminal, and the
    pid of the child it runs TARGET in, once that child has started."""
    import signal
    import time
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(module_dir)]))
    parent = subprocess.Popen([sys.executable, "-m", "ppo_ref", "verify", target, "--quantity",
                               "gae"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=module_dir,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not children.exists():
            parent.kill()
            pytest.skip("needs Linux's /proc/PID/task/PID/children")
        pids = children.read_text().split()
        if pids:
            time.sleep(2.0)          # time to import the module and enter the function
            return parent, int(pids[0])
        time.sleep(0.1)
    parent.kill()
    raise AssertionError("the child process never started")


def _ends_within(pid: int, seconds: float) -> bool:
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status")
        if not status.exists() or "\tZ" in status.read_text().split("State:")[1][:4]:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_stops_the_function_and_says_interrupted_without_resume_advice(hostile_module):
    import signal
    parent, child = _verify_in_a_subprocess(hostile_module, "hostile:sleeps")
    parent.send_signal(signal.SIGINT)
    out, err = parent.communicate(timeout=60)
    assert parent.returncode == 130 and "ppo-ref verify: interrupted" in err
    assert "--resume" not in err and "Traceback" not in err
    assert _ends_within(child, 5)


def test_a_killed_kit_leaves_no_function_running(hostile_module):
    parent, child = _verify_in_a_subprocess(hostile_module, "hostile:sleeps")
    parent.kill()
    parent.communicate(timeout=60)
    assert _ends_within(child, 5)      # the child notices its parent has gone (once a second)


def test_a_timeout_must_be_a_positive_number(user_module, capsys):
    for value in ("0", "-1", "nan"):
        assert verify.main(["user_ppo:good", "--quantity", "gae", "--timeout", value]) == 2
        assert "timeout must be a finite number of seconds > 0" in capsys.readouterr().out


def test_a_function_run_in_this_process_times_out_too():
    import time

    def sleeps(*args):
        time.sleep(1000)

    def spins(*args):
        while True:
            pass
    for fn in (sleeps, spins):
        start = time.monotonic()
        report = verify.check(fn, "gae", timeout=0.5)
        assert time.monotonic() - start < 5
        assert report.exit_code == 2
        assert "timed out after 0.5 s in case golden/single_step_terminated" in str(report)
    with pytest.raises(AssertionError, match="timed out after 0.5 s"):
        verify.assert_conforms(sleeps, "gae", timeout=0.5)


def test_the_time_limit_is_one_budget_for_all_the_cases():
    import time
    n = len(verify.cases("gae"))

    def slow(*args):            # each call well within the limit, all of them together not
        time.sleep(0.6 / n * 2)
        return compute_gae(*args)
    assert "timed out after 0.6 s in case" in str(verify.check(slow, "gae", timeout=0.6))
    assert verify.check(slow, "gae", timeout=30).passed


def test_sys_exit_in_a_function_of_this_process_is_reported_not_obeyed():
    report = verify.check(lambda *a: sys.exit(0), "gae")
    assert report.exit_code == 2 and "raised SystemExit: 0" in str(report)


def test_the_kit_in_the_child_cannot_be_patched_into_a_pass(hostile_module, capsys):
    assert verify.main(["hostile:zeros_and_a_patched_kit", "--quantity", "gae"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_a_report_from_the_child_is_the_report_from_this_process(hostile_module):
    # the outputs cross the process boundary bit for bit: every number of the report agrees,
    # the float32 rounding errors of a pass and the failing case of a fail
    import importlib
    for target in ("user_ppo:good", "user_ppo:buggy", "hostile:tensors"):
        module, _, name = target.partition(":")
        fn = getattr(importlib.import_module(module), name)
        here = verify.check(fn, "gae", name=target).to_dict()
        there = verify.check(target, "gae").to_dict()
        assert there == here
        assert here["status"] == ("fail" if name == "buggy" else "pass")
        assert (here["worst_abs_error"] > 0) == (name != "good")


def test_what_the_child_returns_is_read_as_in_this_process(hostile_module, capsys):
    assert verify.main(["hostile:tensors", "--quantity", "gae"]) == 0
    assert "outputs float32" in capsys.readouterr().out
    assert verify.main(["hostile:things", "--quantity", "gae"]) == 2
    assert "advantages is not numeric: got <hostile.Thing object" in capsys.readouterr().out


def test_the_modules_prints_go_to_stderr_and_stdout_holds_the_report(hostile_module, capfd):
    assert verify.main(["hostile:talks", "--quantity", "gae"]) == 0
    out, err = capfd.readouterr()
    assert out.startswith("ppo_ref verify gae: hostile:talks\nPASS")
    assert "a line printed by the user's module" in err and "printed" not in out


# ----- whole-update scenario ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return verify_update.write_scenario(tmp_path_factory.mktemp("scenario"))


def test_scenario_files_document_every_field(scenario):
    doc = verify_update.load_scenario(scenario)
    assert set(doc["batch"]) == set(verify_update.BATCH_KEYS) | {"minibatches"}
    assert doc["batch"]["minibatches"].shape == (12, 16)
    assert len(doc["expected_losses"]) == 12
    assert any(info["clip_fraction"] > 0 for info in doc["expected_losses"])    # clipping happens
    keys = [p["key"] for p in doc["network"]["parameters"]]
    assert keys == list(doc["initial_weights"]) == list(doc["expected_weights"])
    assert doc["initial_weights"]["pi.layers.0.weight"].shape == (4, 8)        # (in, out)
    assert "torch" in (REPO / "ppo_ref" / "spec" / "update.py").read_text()
    assert all(k in doc["files"] for k in ("batch.npz/minibatches", "expected_weights.npz"))
    documented = " ".join(doc["files"])
    assert all(f"hyperparameters/{k}" in documented for k in doc["hyperparameters"])
    # the update exercises gradient-norm clipping: some minibatches above max_grad_norm, some below
    norms = [info["grad_norm"] for info in doc["expected_losses"]]
    max_norm = doc["hyperparameters"]["max_grad_norm"]
    assert min(norms) < max_norm < max(norms)


def test_replaying_the_scenario_with_ppo_ref_passes(scenario):
    doc = verify_update.load_scenario(scenario)
    weights, infos = verify_update.replay(scenario)
    report = verify_update.compare_weights(doc["expected_weights"], weights)
    assert report.status == "pass" and report.worst_abs_error == 0.0
    assert [i["loss"] for i in infos] == [i["loss"] for i in doc["expected_losses"]]
    weights32, _ = verify_update.replay(scenario, "float32")
    report32 = verify_update.compare_weights(doc["expected_weights"], weights32, lr=1e-2)
    assert report32.status == "pass" and report32.dtype == "float32", report32


def test_perturbed_weights_fail_naming_the_first_entry(scenario, tmp_path, capsys):
    doc = verify_update.load_scenario(scenario)
    theirs = {k: v.copy() for k, v in doc["expected_weights"].items()}
    theirs["vf.layers.1.weight"][2, 5] += 1e-6
    theirs["vf.layers.2.bias"][0] -= 1e-3
    np.savez(tmp_path / "theirs.npz", **theirs)
    assert verify_update.main([str(scenario), str(tmp_path / "theirs.npz"),
                               "--json", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert "first difference: vf.layers.1.weight[2, 5]" in out
    assert "parameters that differ: vf.layers.1.weight, vf.layers.2.bias" in out
    assert json.loads((tmp_path / "r.json").read_text())["first_difference"]["index"] == [2, 5]


@pytest.mark.parametrize("dtype, off_by, code", [
    (np.float64, 1e-12, 0), (np.float64, 1e-8, 1),    # float64: rtol 1e-9
    (np.float32, 1e-6, 0), (np.float32, 1e-3, 1),     # float32: rtol 1e-4
])
def test_update_tolerance_follows_the_precision_of_the_weights(scenario, tmp_path, capsys,
                                                               dtype, off_by, code):
    expected = verify_update.load_scenario(scenario)["expected_weights"]
    theirs = {k: (v * (1 + off_by)).astype(dtype) for k, v in expected.items()}
    np.savez(tmp_path / "w.npz", **theirs)
    assert verify_update.main([str(scenario), str(tmp_path / "w.npz")]) == code
    assert np.dtype(dtype).name in capsys.readouterr().out


@pytest.mark.parametrize("change, differs", [
    ({"vf_coef": 1.0}, "vf.layers.0.weight"),         # a value loss without its 0.5
    ({"max_grad_norm": 1e9}, "pi.layers.0.weight"),   # no gradient clipping
    ({"clip_vloss": False}, "vf.layers.0.weight"),    # no value clipping
])
def test_a_wrong_update_is_caught_even_in_float32(scenario, tmp_path, change, differs):
    doc = verify_update.load_scenario(scenario)
    scenario_json = json.loads((scenario / "scenario.json").read_text())
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for name in ("initial_weights.npz", "batch.npz", "expected_weights.npz"):
        (wrong / name).write_bytes((scenario / name).read_bytes())
    scenario_json["hyperparameters"].update(change)
    (wrong / "scenario.json").write_text(json.dumps(scenario_json))
    weights, _ = verify_update.replay(wrong)
    report = verify_update.compare_weights(doc["expected_weights"], weights)
    assert report.status == "fail" and differs in report.differing
    weights32 = {k: v.astype(np.float32) for k, v in weights.items()}
    assert verify_update.compare_weights(doc["expected_weights"], weights32).status == "fail"


def test_torch_layout_and_bad_weight_files(scenario, tmp_path, capsys):
    doc = verify_update.load_scenario(scenario)
    torch_style = {k: (v.T if k.endswith(".weight") else v) for k, v in doc["expected_weights"].items()}
    np.savez(tmp_path / "t.npz", **torch_style)
    assert verify_update.main([str(scenario), str(tmp_path / "t.npz")]) == 2
    assert "looks like torch's (out, in) layout: pass --torch-layout" in capsys.readouterr().out
    assert verify_update.main([str(scenario), str(tmp_path / "t.npz"), "--torch-layout"]) == 0
    partial = dict(doc["expected_weights"])
    del partial["pi.layers.2.bias"]
    np.savez(tmp_path / "p.npz", **partial)
    assert verify_update.main([str(scenario), str(tmp_path / "p.npz")]) == 2
    assert "missing parameters ['pi.layers.2.bias']" in capsys.readouterr().out
    assert verify_update.main([str(scenario), str(tmp_path / "nothing.npz")]) == 2


def test_losses_locate_the_first_minibatch_that_differs(scenario, tmp_path, capsys):
    doc = verify_update.load_scenario(scenario)
    losses = [dict(i) for i in doc["expected_losses"]]
    losses[3]["value_loss"] *= 2
    (tmp_path / "losses.json").write_text(json.dumps(losses))
    np.savez(tmp_path / "w.npz", **doc["expected_weights"])
    assert verify_update.main([str(scenario), str(tmp_path / "w.npz"), "--losses",
                               str(tmp_path / "losses.json")]) == 1
    assert "first loss that differs: minibatch 3 value_loss" in capsys.readouterr().out


@pytest.mark.parametrize("content, words", [
    ("{not json", "cannot read"), ('{"loss": 1.0}', "must be a JSON list"),
    ("[1.0, 2.0]", "has 2 entries, the scenario has 12 minibatches"),
    (json.dumps(["x"] * 12), "losses[0] is 'x'"), (None, "cannot read"),
])
def test_a_bad_losses_file_is_an_error_not_a_silent_partial_check(scenario, tmp_path, capsys,
                                                                  content, words):
    doc = verify_update.load_scenario(scenario)
    np.savez(tmp_path / "w.npz", **doc["expected_weights"])
    if content is not None:
        (tmp_path / "losses.json").write_text(content)
    assert verify_update.main([str(scenario), str(tmp_path / "w.npz"), "--losses",
                               str(tmp_path / "losses.json")]) == 2
    out = capsys.readouterr().out
    assert out.startswith("ERROR") and out.count("\n") == 1 and words in out


def test_continuous_scenario_round_trips_through_the_cli(tmp_path, capsys):
    assert verify.main(["scenario", "--out", str(tmp_path / "c"), "--continuous"]) == 0
    doc = verify_update.load_scenario(tmp_path / "c")
    assert doc["network"]["action_space"] == {"type": "Box", "dim": 2}
    weights, _ = verify_update.replay(tmp_path / "c")
    np.savez(tmp_path / "w.npz", **weights)
    capsys.readouterr()
    assert verify_update.main([str(tmp_path / "c"), str(tmp_path / "w.npz")]) == 0
    assert "PASS" in capsys.readouterr().out


def test_torch_demo_passes_the_good_pieces_names_the_bugs_and_replays_the_update(tmp_path):
    pytest.importorskip("torch", reason="the demo's PyTorch half needs torch (optional)")
    run = subprocess.run([sys.executable, "demos/verify_torch.py", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    data = json.loads((tmp_path / "verify_torch.json").read_text())
    assert [r["status"] for r in data["reports"]] == ["pass"] * 3 + ["fail"] * 3
    assert [r["mistake"] for r in data["reports"][3:]] == [
        "truncation_as_termination", "clip_without_min", "missing_half"]
    assert all(r["dtype"] == "float32" for r in data["reports"])
    for update in (data["update"], data["update_continuous"]):   # Categorical, Normal
        assert update["status"] == "pass" and update["dtype"] == "float32", update


def test_torch_demo_says_so_plainly_without_torch(tmp_path):
    code = ("import runpy, sys; sys.modules['torch'] = None; sys.path.insert(0, 'demos'); "
            f"sys.argv = ['verify_torch.py', '--out', {str(tmp_path)!r}]; "
            "runpy.run_path('demos/verify_torch.py', run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "PyTorch is not installed" in run.stdout
