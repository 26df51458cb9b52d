"""The kit names two (and three) mistakes made at once, for every quantity.

Every wrong implementation here is written in this file, in numpy, as real code writes it: one
function per quantity with a switch per mistake, so a pair is two switches turned. Each single
mistake, each supported pair and a triple per quantity are planted; the report must name
exactly those parts. The pairs left out are listed with the reason the two cannot be told apart
from something simpler (the kit then names the simpler thing, which reproduces the outputs too).
"""
import itertools
import json
import math

import numpy as np
import pytest

from ppo_ref.gae import compute_gae
from ppo_ref.spec import variants, verify
from ppo_ref.spec.quantities import QUANTITIES


# ----- wrong implementations, one switch per known mistake ------------------------------------

def gae(r, v, nv, term, trunc, gamma, lam, terminal_truncation=False, cut_at_truncation=True,
        bootstrap="final", bootstrap_end=True):
    """The CleanRL / public-tracker loop over t = T-1 .. 0, with its four usual choices."""
    T = len(r)
    adv, last = np.zeros_like(r), np.zeros_like(r[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nxt = nv[t] if bootstrap_end else np.zeros_like(nv[t])
            if bootstrap == "none" and bootstrap_end:
                nxt = np.where(trunc[t], 0.0, nxt)
        else:
            at_trunc = {"final": nv[t], "next_row": v[t + 1], "none": 0.0 * nv[t]}[bootstrap]
            nxt = np.where(trunc[t], at_trunc, v[t + 1])
        no_bootstrap = term[t] | trunc[t] if terminal_truncation else term[t]
        cut = term[t] | trunc[t] if (cut_at_truncation or terminal_truncation) else term[t]
        delta = r[t] + gamma * (1.0 - no_bootstrap) * nxt - v[t]
        last = delta + gamma * lam * (1.0 - cut) * last
        adv[t] = last
    return adv, adv + v


def normalize(a, eps, ddof=1, eps_in_sqrt=False, centered=True):
    top = a - a.mean() if centered else a
    return top / (np.sqrt(a.var(ddof=ddof) + eps) if eps_in_sqrt else a.std(ddof=ddof) + eps)


def surrogate(new, old, adv, eps, combine="min", negated=True, inverted=False):
    r = np.exp(old - new) if inverted else np.exp(new - old)
    clipped = np.clip(r, 1 - eps, 1 + eps) * adv
    objective = {"min": np.minimum(r * adv, clipped), "max": np.maximum(r * adv, clipped),
                 "clip_only": clipped}[combine]
    return -objective.mean() if negated else objective.mean()


def value(v, ret, half=True, total=False):
    sq = (0.5 if half else 1.0) * (v - ret) ** 2
    return sq.sum() if total else sq.mean()


def value_clipped(v, ret, old, eps, half=True, combine="max"):
    a = (v - ret) ** 2
    b = (old + np.clip(v - old, -eps, eps) - ret) ** 2
    terms = {"max": np.maximum(a, b), "min": np.minimum(a, b), "clipped": b}[combine]
    return (0.5 if half else 1.0) * terms.mean()


def kl(new, old, estimator="k3", reverse=False, absolute=False, no_half=False, ratio=False,
       no_minus_one=False):
    lr = old - new if reverse else new - old
    if estimator == "k1":
        return np.mean(np.abs(lr)) if absolute else np.mean(-lr)
    if estimator == "k2":
        x = np.exp(lr) - 1 if ratio else lr
        return np.mean((1.0 if no_half else 0.5) * x ** 2)
    return np.mean((np.exp(lr) if no_minus_one else np.exp(lr) - 1) - lr)


def clip_frac(new, old, eps, log_band=False, upper_only=False):
    x = new - old if log_band else np.exp(new - old) - 1
    return np.mean(x > eps) if upper_only else np.mean(np.abs(x) > eps)


def explained(v, ret, mse=False, one_minus=True):
    share = (np.mean((ret - v) ** 2) if mse else np.var(ret - v)) / np.var(ret)
    return 1 - share if one_minus else share


def adam(param, grads, lr, b1, b2, eps, correct=True, where="outside"):
    theta, m, v, out = param.copy(), 0.0, 0.0, []
    for t, g in enumerate(grads, 1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        c1, c2 = (1 - b1 ** t, 1 - b2 ** t) if correct else (1.0, 1.0)
        denom = {"outside": np.sqrt(v / c2) + eps, "inside": np.sqrt(v / c2 + eps),
                 "before": (np.sqrt(v) + eps) / np.sqrt(c2)}[where]
        theta = theta - lr * (m / c1) / denom
        out.append(theta)
    return np.array(out)


def clip_norm(grads, max_norm, per_tensor=False, after=False, margin=1e-6):
    def coef(n):   # optax leaves a gradient under max_norm as it is (and a zero one)
        return 1.0 if n + margin <= max_norm else max_norm / (n + margin)
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    if per_tensor:
        out = [g * coef(np.linalg.norm(g)) for g in grads]
    else:
        out = [g * coef(norm) for g in grads]
    return (math.sqrt(sum(float(np.sum(g * g)) for g in out)) if after else norm), out


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def categorical(logits, actions, other, kl_reversed=False, raw_logit=False, entropy_logits=False):
    lp, lq = log_softmax(logits), log_softmax(other)
    p, q = np.exp(lp), np.exp(lq)
    logp = np.take_along_axis(logits if raw_logit else lp, actions[:, None], 1)[:, 0]
    entropy = -(p * (logits if entropy_logits else lp)).sum(-1)
    div = (q * (lq - lp)).sum(-1) if kl_reversed else (p * (lp - lq)).sum(-1)
    return logp, entropy, div


def multi_categorical(logits, nvec, actions, other, mean=False, one_softmax=False,
                      kl_reversed=False):
    """K categoricals side by side: component k owns logits[:, start_k : start_k + nvec[k]]."""
    starts = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    if one_softmax:   # wrongly, one softmax over every logit, component k's action at its offset
        lp, lq = log_softmax(logits), log_softmax(other)
        logp = np.take_along_axis(lp, actions + starts, 1).sum(-1)
        div = (np.exp(lq) * (lq - lp)).sum(-1) if kl_reversed else (np.exp(lp) * (lp - lq)).sum(-1)
        return logp, -(np.exp(lp) * lp).sum(-1), div
    parts = [categorical(logits[:, s:s + n], actions[:, k], other[:, s:s + n], kl_reversed)
             for k, (s, n) in enumerate(zip(starts, nvec))]
    reduce = np.mean if mean else np.sum
    return tuple(reduce(np.stack([p[i] for p in parts]), axis=0) for i in range(3))


def bernoulli(logits, actions, other, mean=False, one_term_entropy=False, kl_reversed=False):
    """Per entry log p = l - softplus(l), log(1 - p) = -softplus(l); summed over the D entries."""
    lp1, lp0 = logits - np.logaddexp(0, logits), -np.logaddexp(0, logits)
    lq1, lq0 = other - np.logaddexp(0, other), -np.logaddexp(0, other)
    p, q = np.exp(lp1), np.exp(lq1)
    logp = np.where(actions == 1, lp1, lp0)
    entropy = -p * lp1 - (0.0 if one_term_entropy else (1 - p) * lp0)
    div = q * (lq1 - lp1) + (1 - q) * (lq0 - lp0) if kl_reversed else \
        p * (lp1 - lq1) + (1 - p) * (lp0 - lq0)
    reduce = np.mean if mean else np.sum
    return reduce(logp, -1), reduce(entropy, -1), reduce(div, -1)


def gaussian(m, ls, a, om, ols, kl_reversed=False, log_var=False, mean_d=False, no_2pi=False):
    if log_var:
        ls, ols = ls / 2, ols / 2
    c = 0.0 if no_2pi else 0.5 * math.log(2 * math.pi)
    logp = (-0.5 * ((a - m) / np.exp(ls)) ** 2 - ls - c)
    entropy = 0.5 + c + ls

    def kl_(m1, l1, m2, l2):
        return (l2 - l1 + (np.exp(2 * l1) + (m1 - m2) ** 2) / (2 * np.exp(2 * l2)) - 0.5).sum(-1)
    div = kl_(om, ols, m, ls) if kl_reversed else kl_(m, ls, om, ols)
    reduce = (lambda x: x.mean(-1)) if mean_d else (lambda x: x.sum(-1))
    return reduce(logp), reduce(entropy), div


def rlhf_rewards(logp, logp_ref, mask, scores, beta, sign=-1.0, pad=False, at_row_end=False,
                 assign=False):
    rewards = np.zeros_like(logp)
    for b in range(len(mask)):
        n = int(mask[b].sum())
        upto = mask.shape[1] if pad else n
        rewards[b, :upto] = sign * beta * (logp[b, :upto] - logp_ref[b, :upto])
        last = mask.shape[1] - 1 if at_row_end else n - 1
        rewards[b, last] = scores[b] + (0.0 if assign else rewards[b, last])
    return rewards


def rlhf_whiten(adv, mask, scope="tokens", ddof=1):
    def whiten(x):
        return (x - x.mean()) / (x.std(ddof=ddof) + 1e-8)
    if scope == "all":
        return whiten(adv)[mask]
    if scope == "sequence":
        return np.concatenate([whiten(row[m]) for row, m in zip(adv, mask)])
    return whiten(adv[mask])


def rlhf_gae(rewards, values, mask, lam, end="terminal", reward_to_go=False):
    """Per row, t = L-1 .. 0 (TRL's loop), gamma = 1."""
    adv, ret = np.zeros_like(rewards), np.zeros_like(rewards)
    L = mask.shape[1]
    for b in range(len(mask)):
        n = int(mask[b].sum())
        last, to_go = 0.0, 0.0
        for t in reversed(range(L if end == "none" else n)):
            if end == "terminal":
                next_value = values[b, t + 1] if t + 1 < n else 0.0
            else:   # the value after the last token is read from the padded position
                next_value = values[b, t + 1] if t + 1 < L else 0.0
            last = rewards[b, t] + next_value - values[b, t] + lam * last
            to_go += rewards[b, t]
            adv[b, t], ret[b, t] = last, (to_go if reward_to_go else last + values[b, t])
    return adv[mask], ret[mask]


# quantity -> (implementation, {mistake: its switches}, {pair: why it is not supported})
PLANTED = {
    "gae": (gae, {"truncation_as_termination": dict(terminal_truncation=True),
                  "truncation_ignored": dict(cut_at_truncation=False),
                  "no_bootstrap_at_rollout_end": dict(bootstrap_end=False),
                  "bootstrap_from_next_row": dict(bootstrap="next_row"),
                  "truncated_not_bootstrapped": dict(cut_at_truncation=False, bootstrap="none")},
            {("truncation_as_termination", "truncation_ignored"): "a terminating truncation cuts",
             ("truncation_as_termination", "bootstrap_from_next_row"): "nor bootstraps",
             ("truncation_as_termination", "truncated_not_bootstrapped"): "both say: no bootstrap",
             ("truncation_ignored", "truncated_not_bootstrapped"): "one switch (the cut)",
             ("bootstrap_from_next_row", "truncated_not_bootstrapped"): "one switch (bootstrap)"}),
    "normalize_advantages": (normalize, {"ddof0": dict(ddof=0), "eps_inside_sqrt": dict(eps_in_sqrt=True),
                                         "not_centered": dict(centered=False)}, {}),
    "clipped_surrogate": (surrogate, {
        "clip_without_min": dict(combine="clip_only"), "max_instead_of_min": dict(combine="max"),
        "objective_not_negated": dict(negated=False), "ratio_inverted": dict(inverted=True)},
        {("clip_without_min", "max_instead_of_min"): "one switch (how the terms combine)"}),
    "value_loss": (value, {"missing_half": dict(half=False), "sum_instead_of_mean": dict(total=True)}, {}),
    "value_loss_clipped": (value_clipped, {
        "missing_half": dict(half=False), "min_instead_of_max": dict(combine="min"),
        "clipped_term_only": dict(combine="clipped")},
        {("min_instead_of_max", "clipped_term_only"): "one switch",
         ("missing_half", "clipped_term_only"): "is SB3's clipped value loss: a convention "
                                                "(tests/test_kit_conventions.py)"}),
    "approx_kl": (kl, {"wrong_direction": dict(reverse=True),
                       "missing_minus_one": dict(no_minus_one=True)}, {}),
    "approx_kl_k1": (lambda n, o, **k: kl(n, o, "k1", **k), {
        "wrong_direction": dict(reverse=True), "abs_log_ratio": dict(absolute=True)},
        {("wrong_direction", "abs_log_ratio"): "|log r| has no direction"}),
    "approx_kl_k2": (lambda n, o, **k: kl(n, o, "k2", **k), {
        "missing_half": dict(no_half=True), "ratio_not_log_ratio": dict(ratio=True)}, {}),
    "approx_kl_k3": (kl, {"wrong_direction": dict(reverse=True),
                          "missing_minus_one": dict(no_minus_one=True)}, {}),
    "clip_fraction": (clip_frac, {"log_ratio_band": dict(log_band=True),
                                  "upper_side_only": dict(upper_only=True)}, {}),
    "explained_variance": (explained, {"r_squared": dict(mse=True),
                                       "missing_one_minus": dict(one_minus=False)}, {}),
    "categorical": (categorical, {"kl_wrong_direction": dict(kl_reversed=True),
                                  "unnormalized_log_prob": dict(raw_logit=True),
                                  "entropy_from_logits": dict(entropy_logits=True)}, {}),
    "multi_categorical": (multi_categorical, {
        "mean_over_components": dict(mean=True), "one_softmax_over_all_logits": dict(one_softmax=True),
        "kl_wrong_direction": dict(kl_reversed=True)},
        {("mean_over_components", "one_softmax_over_all_logits"): "one softmax has no components",
         ("mean_over_components", "kl_wrong_direction"): "both change kl (no family: output by output)",
         ("one_softmax_over_all_logits", "kl_wrong_direction"): "both change kl (output by output)"}),
    "bernoulli": (bernoulli, {
        "mean_over_entries": dict(mean=True), "entropy_of_one_outcome": dict(one_term_entropy=True),
        "kl_wrong_direction": dict(kl_reversed=True)},
        {("mean_over_entries", "entropy_of_one_outcome"): "both change the entropy (output by output)",
         ("mean_over_entries", "kl_wrong_direction"): "both change kl (output by output)"}),
    "gaussian": (gaussian, {"kl_wrong_direction": dict(kl_reversed=True),
                            "log_std_as_log_variance": dict(log_var=True),
                            "mean_over_dimensions": dict(mean_d=True),
                            "missing_log_2pi": dict(no_2pi=True)}, {}),
    "adam": (adam, {"eps_inside_sqrt": dict(where="inside"), "no_bias_correction": dict(correct=False),
                    "eps_before_bias_correction": dict(where="before")},
             {("eps_inside_sqrt", "eps_before_bias_correction"): "one switch (where eps goes)",
              ("no_bias_correction", "eps_before_bias_correction"): "no correction: before = after"}),
    "clip_grad_norm": (clip_norm, {"per_tensor": dict(per_tensor=True),
                                   "norm_after_clipping": dict(after=True),
                                   "no_margin": dict(margin=0.0)}, {}),
    "rlhf_token_rewards": (rlhf_rewards, {
        "kl_penalty_sign": dict(sign=1.0), "padding_penalised": dict(pad=True),
        "score_at_padded_end": dict(at_row_end=True), "score_overwrites_kl": dict(assign=True)}, {}),
    "rlhf_whitening": (rlhf_whiten, {"padding_in_statistics": dict(scope="all"),
                                     "per_sequence": dict(scope="sequence"), "ddof0": dict(ddof=0)},
                       {("padding_in_statistics", "per_sequence"): "one switch (the scope)"}),
    "rlhf_sequence_gae": (rlhf_gae, {
        "bootstraps_from_padding": dict(end="truncation"), "runs_over_padding": dict(end="none"),
        "returns_as_reward_to_go": dict(reward_to_go=True)},
        {("bootstraps_from_padding", "runs_over_padding"): "one switch (the sequence's end)"}),
}


# mistakes that are also a library's deliberate choice: inside a combination the kit names them
# by the convention (and says so on the report's first line)
ALSO_A_CONVENTION = {("normalize_advantages", "ddof0"): "ddof0",
                     ("value_loss", "missing_half"): "sb3_mse",
                     ("value_loss_clipped", "missing_half"): "sb3_mse",
                     ("adam", "eps_before_bias_correction"): "tf_adam_eps",
                     ("clip_grad_norm", "no_margin"): "optax_clip_by_global_norm",
                     ("rlhf_whitening", "ddof0"): "ddof0",
                     ("normalize_advantages", "eps_inside_sqrt"): "trl_masked_whiten"}


def named(name, parts):
    return {ALSO_A_CONVENTION.get((name, p), p) for p in parts}


def planted(name, mistakes):
    fn, switches, _ = PLANTED[name]
    kwargs = {}
    for m in mistakes:
        kwargs.update(switches[m])
    return lambda *args: fn(*args, **kwargs)


def supported_pairs(name):
    _, switches, unsupported = PLANTED[name]
    return [p for p in itertools.combinations(switches, 2) if p not in unsupported]


PAIRS = [(name, pair) for name in PLANTED for pair in supported_pairs(name)]
SINGLES = [(name, m) for name in PLANTED for m in PLANTED[name][1]]


def test_every_quantity_with_mistakes_is_planted_here():
    assert set(PLANTED) == set(QUANTITIES)


def test_the_planted_implementations_are_right_with_every_switch_off():
    for name in PLANTED:
        assert verify.check(planted(name, []), name).passed, name


@pytest.mark.parametrize("name, mistake", SINGLES)
def test_each_single_mistake_is_named_alone(name, mistake):
    report = verify.check(planted(name, [mistake]), name)
    assert report.status == "fail" and report.mistake == mistake, report
    assert [p["name"] for p in report.diagnosis_parts] in ([mistake], [report.convention and
                                                                       report.convention["name"]])


@pytest.mark.parametrize("name, pair", PAIRS)
def test_each_supported_pair_is_named_part_by_part(name, pair):
    report = verify.check(planted(name, pair), name)
    assert report.status == "fail" and report.exit_code == 1, report
    names = [p["name"] for p in report.diagnosis_parts]
    assert set(report.mistake.split("+")) == named(name, pair), report
    assert set(names) == named(name, pair)
    assert str(report).count("diagnosis: two ") == 1
    for part in pair:
        if (name, part) in ALSO_A_CONVENTION:   # the first line names a convention of the pair
            convention = report.convention["name"]
            assert convention in named(name, pair)
            assert str(report).startswith(f"CONVENTION {convention}: ")
        else:
            assert QUANTITIES[name].mistakes[part].diagnosis in report.diagnosis


def test_the_kit_tries_exactly_the_supported_pairs():
    for name in PLANTED:
        allowed = named(name, PLANTED[name][1])
        tried = {frozenset(p.name for p in parts)
                 for parts, _ in variants.candidates(name, sizes=(2,))
                 if all(p.name in allowed for p in parts)}
        supported = {frozenset(named(name, p)) for p in supported_pairs(name)}
        unsupported = {frozenset(named(name, p)) for p in PLANTED[name][2]}
        assert supported <= tried and tried - supported <= unsupported, name


@pytest.mark.parametrize("name, triple", [
    ("gae", ("truncation_ignored", "no_bootstrap_at_rollout_end", "bootstrap_from_next_row")),
    ("normalize_advantages", ("ddof0", "eps_inside_sqrt", "not_centered")),
    ("clipped_surrogate", ("max_instead_of_min", "objective_not_negated", "ratio_inverted")),
    ("gaussian", ("kl_wrong_direction", "mean_over_dimensions", "missing_log_2pi")),
    ("clip_grad_norm", ("per_tensor", "norm_after_clipping", "no_margin")),
    ("rlhf_token_rewards", ("kl_penalty_sign", "padding_penalised", "score_overwrites_kl")),
])
def test_three_mistakes_at_once_are_named(name, triple):
    report = verify.check(planted(name, triple), name)
    assert set(report.mistake.split("+")) == named(name, triple), report
    assert report.diagnosis.startswith("three ")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_issues_gae_ignoring_truncation_and_reading_values_of_the_next_row(dtype):
    def tracker_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
        # the most common public pattern: dones = terminated only, next value = values[t+1]
        r, v, nv = (x.astype(dtype) for x in (rewards, values, next_values))
        adv, last = np.zeros_like(r), 0.0
        for t in reversed(range(len(r))):
            next_value = nv[t] if t == len(r) - 1 else v[t + 1]
            nonterminal = 1.0 - terminated[t]
            delta = r[t] + dtype(gamma) * next_value * nonterminal - v[t]
            last = delta + dtype(gamma * lam) * nonterminal * last
            adv[t] = last
        return adv, adv + v
    report = verify.check(tracker_gae, "gae")
    assert report.dtype == np.dtype(dtype).name
    assert report.mistake == "truncation_ignored+bootstrap_from_next_row", report
    text = str(report)
    assert "truncation is ignored" in text and "bootstraps from values[t+1]" in text


def test_a_combination_is_reported_in_the_json_and_from_the_command_line(tmp_path, monkeypatch,
                                                                         capsys):
    (tmp_path / "tracker.py").write_text(
        "import numpy as np\n"
        "def gae(r, v, nv, term, trunc, gamma, lam):\n"
        "    adv, last = np.zeros_like(r), 0.0\n"
        "    for t in reversed(range(len(r))):\n"
        "        nxt = nv[t] if t == len(r) - 1 else v[t + 1]\n"
        "        delta = r[t] + gamma * nxt * (1.0 - term[t]) - v[t]\n"
        "        last = adv[t] = delta + gamma * lam * (1.0 - term[t]) * last\n"
        "    return adv, adv + v\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "report.json"
    assert verify.main(["tracker:gae", "--quantity", "gae", "--json", str(out)]) == 1
    assert "two known mistakes together" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert [p["name"] for p in data["diagnosis"]["parts"]] == ["truncation_ignored",
                                                                "bootstrap_from_next_row"]
    assert data["diagnosis"]["text"].startswith("two known mistakes") and data["convention"] is None


def test_a_correct_function_gets_no_parts_and_an_unknown_one_none_either():
    report = verify.check(compute_gae, "gae")
    assert report.passed and report.diagnosis_parts == [] and report.to_dict()["diagnosis"] == {
        "text": None, "parts": []}
    off = verify.check(lambda *a: tuple(1.01 * x for x in compute_gae(*a)), "gae")
    assert off.status == "fail" and off.diagnosis is None and off.diagnosis_parts == []
