"""Specification tests for ppo_ref.spec.golden: the shipped JSON vectors.

Two kinds of check. (1) Regenerating the vectors reproduces the shipped copy within
each case's tolerances, and any drift is reported. (2) The shipped expected values
agree with independent computations written here with plain Python loops and the
math module (and central finite differences for the gradients), so the goldens are
not merely the code's own output.
"""
import copy
import json
import math
import statistics

import numpy as np
import pytest

from ppo_ref.spec import golden


@pytest.fixture(scope="module")
def shipped():
    return {name: golden.load(name) for name in golden.FUNCTIONS}


def case(shipped, function, name):
    return next(c for c in shipped[function]["cases"] if c["name"] == name)


def close(actual, c, expected):
    """actual agrees with a shipped expected value within that case's tolerances."""
    np.testing.assert_allclose(actual, expected, rtol=c["rtol"], atol=c["atol"])


def central_difference(f, x, h=1e-6):
    """d f / d x by central differences, element by element (f returns a float)."""
    x = np.array(x, dtype=float)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += h
        minus[i] -= h
        grad[i] = (f(plus) - f(minus)) / (2 * h)
    return grad


# ----- regeneration and drift -------------------------------------------------------------

def test_shipped_copy_covers_every_function_with_named_described_cases(shipped):
    assert set(shipped) == set(golden.FUNCTIONS)
    for name, doc in shipped.items():
        assert doc["schema"] == golden.SCHEMA and doc["function"] == name
        names = [c["name"] for c in doc["cases"]]
        assert len(names) == len(set(names)) >= 4, name
        for c in doc["cases"]:
            assert c["description"] and c["rtol"] > 0 and c["atol"] > 0
            assert set(c["expected"]) == set(doc["outputs"])
            with_gradients = {"loss"} if name == "ppo_loss" else set(doc["outputs"])
            assert set(c["gradients"]) == (with_gradients if doc["differentiable"] else set())
            for out, grads in c["gradients"].items():
                assert set(grads) == set(doc["differentiable"])
                for x, g in grads.items():
                    assert g.shape == c["inputs"][x].shape, (name, c["name"], out, x)


def test_regenerated_vectors_match_the_shipped_copy(shipped):
    fresh = golden.generate()
    for name, doc in fresh.items():
        decoded = json.loads(golden.dumps(doc))
        decoded["cases"] = [golden.decode_case(c, decoded["array_lists"]) for c in decoded["cases"]]
        problems = golden.compare(shipped[name], decoded)
        assert not problems, "golden vectors drifted; if intended, regenerate with " \
                             "`python -m ppo_ref.spec.golden --out ppo_ref/spec/golden`:\n" + "\n".join(problems)


def test_compare_reports_a_drifted_value_input_and_gradient(shipped):
    doc = shipped["clipped_surrogate"]
    drifted = copy.deepcopy(doc)
    drifted["cases"][0]["expected"]["loss"] = doc["cases"][0]["expected"]["loss"] * (1 + 1e-7)
    drifted["cases"][1]["inputs"]["advantages"][0] += 2.0 ** -20
    drifted["cases"][2]["gradients"]["loss"]["logp_new"][3] += 1e-8
    problems = golden.compare(doc, drifted)
    assert len(problems) == 3
    assert "random_16: expected loss differs" in problems[0]
    assert "ratio_exactly_one: input advantages differs" in problems[1]
    assert "gradient of loss wrt logp_new" in problems[2]
    assert golden.compare(doc, copy.deepcopy(doc)) == []


def test_floats_round_trip_exactly_and_json_has_no_nan(shipped, tmp_path):
    paths = golden.write(tmp_path, ["categorical", "clip_grad_norm"])
    assert sorted(p.name for p in paths) == ["categorical.json", "clip_grad_norm.json"]
    text = paths[0].read_text()
    assert "NaN" not in text and "Infinity" not in text
    again = golden.load("categorical", tmp_path)
    for a, b in zip(again["cases"], shipped["categorical"]["cases"]):
        assert a["inputs"]["actions"].dtype == np.int64
        np.testing.assert_array_equal(a["expected"]["log_prob"], b["expected"]["log_prob"])
    grads = golden.load("clip_grad_norm", tmp_path)["cases"][1]["inputs"]["grads"]
    assert [g.shape for g in grads] == [(3, 2), (4,), (1,)]


def test_json_ready_turns_numpy_values_into_python_ones():
    x = {"a": np.arange(3), 1: (np.float64(0.5), np.bool_(True)), "none": None, "est": "k3",
         "nested": [np.int64(2), [np.array([[1.5]])]]}
    out = golden.json_ready(x)
    assert out == {"a": [0, 1, 2], "1": [0.5, True], "none": None, "est": "k3",
                   "nested": [2, [[[1.5]]]]}
    assert [type(v) for v in (out["a"][0], out["1"][0], out["1"][1], out["nested"][0])] == \
        [int, float, bool, int]
    assert json.loads(json.dumps(out)) == out


def test_cli_writes_one_file_per_function(tmp_path, capsys):
    assert golden.main(["--out", str(tmp_path), "--only", "adam", "value_loss"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adam.json", "value_loss.json"]
    assert "adam.json" in capsys.readouterr().out


def test_flags_are_booleans_and_inputs_lie_on_the_float32_grid(shipped):
    c = case(shipped, "compute_gae", "random_multi_env")
    assert c["inputs"]["terminated"].dtype == bool and c["inputs"]["terminated"].shape == (16, 4)
    rewards = c["inputs"]["rewards"]
    np.testing.assert_array_equal(rewards.astype(np.float32).astype(np.float64), rewards)


# ----- the expected values against independent computations --------------------------------

def naive_gae(r, v, nv, term, trunc, gamma, lam):
    """A_t = sum_l (gamma lam)^l delta_{t+l}, summed forward until the episode ends."""
    T = len(r)
    adv = []
    for t in range(T):
        total, weight = 0.0, 1.0
        for k in range(t, T):
            total += weight * (r[k] + (0.0 if term[k] else gamma * nv[k]) - v[k])
            if term[k] or trunc[k]:
                break
            weight *= gamma * lam
        adv.append(total)
    return np.array(adv)


@pytest.mark.parametrize("name", ["truncation_mid_rollout", "termination_mid_rollout",
                                  "terminated_and_truncated_same_step", "single_step_truncated",
                                  "random_multi_env"])
def test_gae_vectors_match_a_forward_sum(shipped, name):
    c = case(shipped, "compute_gae", name)
    x = c["inputs"]
    cols = lambda a: a.reshape(len(a), -1).T   # noqa: E731  (T,) or (T, N) -> one row per env
    adv = np.array([naive_gae(*env, x["gamma"], x["lam"]) for env in zip(
        cols(x["rewards"]), cols(x["values"]), cols(x["next_values"]), cols(x["terminated"]),
        cols(x["truncated"]))]).T.reshape(x["rewards"].shape)
    close(adv, c, c["expected"]["advantages"])
    close(adv + x["values"], c, c["expected"]["returns"])


def test_gae_rollouts_are_consistent_next_values_equal_values_of_the_next_row(shipped):
    # In a real rollout next_values[t] and values[t+1] are V of the same observation unless an
    # episode ends at t; a GAE written from values[t+1] alone (CleanRL, SB3) must pass them.
    for c in shipped["compute_gae"]["cases"]:
        x = c["inputs"]
        ends = (x["terminated"] | x["truncated"])[:-1]
        same = np.where(ends, x["values"][1:], x["next_values"][:-1])
        np.testing.assert_array_equal(same, x["values"][1:], err_msg=c["name"])


def test_gae_truncation_case_by_hand(shipped):
    c = case(shipped, "compute_gae", "truncation_mid_rollout")
    # t = 2 is truncated: delta_2 = -1 + 0.99 * 3.0 - 0.75 = 1.22, and A_2 = delta_2.
    assert c["expected"]["advantages"][2] == pytest.approx(1.22, abs=1e-12)


def test_discounted_returns_vectors_match_a_loop(shipped):
    c = case(shipped, "discounted_returns", "truncation_mid_rollout")
    x = c["inputs"]
    r, g, boot = x["rewards"], x["gamma"], x["bootstrap_values"]
    # truncated at t = 2 (bootstrap 4.0), rollout end at t = 4 (bootstrap 8.0)
    g2 = r[2] + g * 4.0
    g4 = r[4] + g * 8.0
    g3 = r[3] + g * g4
    expected = [r[0] + g * (r[1] + g * g2), r[1] + g * g2, g2, g3, g4]
    assert boot[2] == 4.0 and boot[4] == 8.0
    close(expected, c, c["expected"]["returns"])


def test_normalized_advantages_match_statistics_stdev(shipped):
    c = case(shipped, "normalize_advantages", "random_64")
    a = c["inputs"]["advantages"].tolist()
    mean, std = statistics.fmean(a), statistics.stdev(a)          # stdev: ddof = 1
    close([(x - mean) / (std + 1e-8) for x in a], c, c["expected"]["normalized"])
    two = case(shipped, "normalize_advantages", "two_elements")
    # A = (1, -2): mean -0.5, deviations +-1.5, std = 3 / sqrt(2)
    close([1.5 / (3 / math.sqrt(2) + 1e-8), -1.5 / (3 / math.sqrt(2) + 1e-8)], two,
          two["expected"]["normalized"])


def naive_clip_loss(logp_new, logp_old, adv, eps):
    total = 0.0
    for n, o, a in zip(logp_new, logp_old, adv):
        r = math.exp(n - o)
        total += min(r * a, min(max(r, 1 - eps), 1 + eps) * a)
    return -total / len(adv)


@pytest.mark.parametrize("name", ["random_16", "extreme_ratios", "clip_eps_0.1"])
def test_clipped_surrogate_vectors_match_a_loop_and_finite_differences(shipped, name):
    c = case(shipped, "clipped_surrogate", name)
    x = c["inputs"]
    f = lambda new: naive_clip_loss(new, x["logp_old"], x["advantages"], x["clip_eps"])  # noqa: E731
    close(f(x["logp_new"]), c, c["expected"]["loss"])
    np.testing.assert_allclose(central_difference(f, x["logp_new"]),
                               c["gradients"]["loss"]["logp_new"], rtol=1e-6, atol=1e-9)


def test_clipped_surrogate_gradient_at_the_boundary_is_the_unclipped_one(shipped):
    c = case(shipped, "clipped_surrogate", "ratios_at_clip_boundaries_positive_advantages")
    x = c["inputs"]
    r = np.exp(x["logp_new"] - x["logp_old"])
    unclipped = -x["advantages"] * r / len(r)
    g = c["gradients"]["loss"]["logp_new"]
    # at r = 1 +- eps (elements 0 and 3): the unclipped gradient, as torch gives
    np.testing.assert_allclose(g[[0, 3]], unclipped[[0, 3]], rtol=1e-12)
    assert g[2] == 0.0                           # r just above 1 + eps with A > 0: clipped
    np.testing.assert_allclose(g[[1, 4, 5]], unclipped[[1, 4, 5]], rtol=1e-12)


def test_value_loss_vectors_match_a_loop(shipped):
    for name in ("unclipped_random", "clipped_random", "clipped_at_band_edge"):
        c = case(shipped, "value_loss", name)
        x = c["inputs"]
        eps = x["clip_eps"]

        def loss(values):
            total = 0.0
            for i, (v, ret) in enumerate(zip(values, x["returns"])):
                err = (v - ret) ** 2
                if eps is not None:
                    old = x["old_values"][i]
                    clipped = old + min(max(v - old, -eps), eps)
                    err = max(err, (clipped - ret) ** 2)
                total += 0.5 * err
            return total / len(values)
        close(loss(x["values"]), c, c["expected"]["loss"])
        if name != "clipped_at_band_edge":   # finite differences straddle the kinks there
            np.testing.assert_allclose(central_difference(loss, x["values"]),
                                       c["gradients"]["loss"]["values"], rtol=1e-6, atol=1e-9)


def test_approx_kl_vectors_match_the_estimator_formulas(shipped):
    for c in shipped["approx_kl"]["cases"]:
        x = c["inputs"]
        d = [n - o for n, o in zip(x["logp_new"], x["logp_old"])]
        terms = {"k1": [-t for t in d], "k2": [0.5 * t * t for t in d],
                 "k3": [math.expm1(t) - t for t in d]}[x["estimator"]]
        close(math.fsum(terms) / len(terms), c, c["expected"]["kl"])


def test_clip_fraction_vectors_count_ratios_outside_the_band(shipped):
    for c in shipped["clip_fraction"]["cases"]:
        x = c["inputs"]
        eps = x["clip_eps"]
        r = [math.exp(n - o) for n, o in zip(x["logp_new"], x["logp_old"])]
        close(sum(q < 1 - eps or q > 1 + eps for q in r) / len(r), c, c["expected"]["clip_fraction"])
    assert case(shipped, "clip_fraction", "upper_boundary")["expected"]["clip_fraction"] == 1 / 3


def test_explained_variance_vectors_match_statistics(shipped):
    c = case(shipped, "explained_variance", "random")
    v, ret = c["inputs"]["values"].tolist(), c["inputs"]["returns"].tolist()
    expected = 1 - statistics.pvariance([a - b for a, b in zip(ret, v)]) / statistics.pvariance(ret)
    close(expected, c, c["expected"]["explained_variance"])
    assert case(shipped, "explained_variance", "worse_than_constant")["expected"][
        "explained_variance"] == pytest.approx(-3.0, abs=1e-12)


def naive_log_softmax(row):
    m = max(row)
    lse = m + math.log(math.fsum(math.exp(z - m) for z in row))
    return [z - lse for z in row]


@pytest.mark.parametrize("name", ["random", "extreme_logits", "near_deterministic"])
def test_categorical_vectors_match_scalar_formulas(shipped, name):
    c = case(shipped, "categorical", name)
    x = c["inputs"]
    logp_rows = [naive_log_softmax(row) for row in x["logits"].tolist()]
    logq_rows = [naive_log_softmax(row) for row in x["other_logits"].tolist()]
    log_prob = [lp[a] for lp, a in zip(logp_rows, x["actions"].tolist())]
    entropy = [-math.fsum(math.exp(l) * l for l in lp) for lp in logp_rows]
    kl = [math.fsum(math.exp(l) * (l - m) for l, m in zip(lp, lq))
          for lp, lq in zip(logp_rows, logq_rows)]
    close(log_prob, c, c["expected"]["log_prob"])
    close(entropy, c, c["expected"]["entropy"])
    close(kl, c, c["expected"]["kl"])
    # d log pi(a) / d logits = onehot(a) - softmax(logits)
    onehot = np.eye(x["logits"].shape[1])[x["actions"]]
    probs = np.exp(np.array(logp_rows))
    close(onehot - probs, c, c["gradients"]["log_prob"]["logits"])


def naive_gaussian(x) -> dict:
    """log N(a; mean, std^2), entropy and KL(p || q), summed over D, one scalar loop per row."""
    B, D = x["mean"].shape
    ls, ls_q = (np.broadcast_to(x[k], (B, D)) for k in ("log_std", "other_log_std"))
    out = {"log_prob": [], "entropy": [], "kl": []}
    for b in range(B):
        lp = h = k = 0.0
        for d in range(D):
            s, sq = math.exp(ls[b, d]), math.exp(ls_q[b, d])
            z = (x["actions"][b, d] - x["mean"][b, d]) / s
            lp += -0.5 * z * z - ls[b, d] - 0.5 * math.log(2 * math.pi)
            h += ls[b, d] + 0.5 * (1 + math.log(2 * math.pi))
            k += (ls_q[b, d] - ls[b, d] + (s * s + (x["mean"][b, d] - x["other_mean"][b, d]) ** 2)
                  / (2 * sq * sq) - 0.5)
        out["log_prob"].append(lp)
        out["entropy"].append(h)
        out["kl"].append(k)
    return out


@pytest.mark.parametrize("name", ["random_shared_log_std", "tiny_std", "large_std"])
def test_gaussian_vectors_match_scalar_formulas(shipped, name):
    c = case(shipped, "diag_gaussian", name)
    x = c["inputs"]
    naive = naive_gaussian(x)
    close(naive["log_prob"], c, c["expected"]["log_prob"])
    close(naive["entropy"], c, c["expected"]["entropy"])
    np.testing.assert_allclose(naive["kl"], c["expected"]["kl"], rtol=1e-9, atol=1e-9)
    # d sum(log_prob) / d mean = z / std
    std = np.exp(np.broadcast_to(x["log_std"], x["mean"].shape))
    np.testing.assert_allclose((x["actions"] - x["mean"]) / std ** 2,
                               c["gradients"]["log_prob"]["mean"], rtol=1e-9)


def test_adam_vectors_match_the_papers_algorithm(shipped):
    for c in shipped["adam"]["cases"]:
        x = c["inputs"]
        b1, b2, eps, lr = x["beta1"], x["beta2"], x["eps"], x["lr"]
        params = []
        for i, theta in enumerate(x["param"].tolist()):   # Adam is elementwise: one scalar at a time
            m = v = 0.0
            trajectory = []
            for t, g in enumerate(x["grads"][:, i].tolist(), start=1):
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                theta -= lr * (m / (1 - b1 ** t)) / (math.sqrt(v / (1 - b2 ** t)) + eps)
                trajectory.append(theta)
            params.append(trajectory)
        close(np.array(params).T, c, c["expected"]["params"])


def test_clip_grad_norm_vectors_match_torch_semantics(shipped):
    for c in shipped["clip_grad_norm"]["cases"]:
        grads, max_norm = c["inputs"]["grads"], c["inputs"]["max_norm"]
        norm = math.sqrt(math.fsum(float(v) ** 2 for g in grads for v in g.ravel()))
        coef = max_norm / (norm + 1e-6)
        close(norm, c, c["expected"]["total_norm"])
        for g, got in zip(grads, c["expected"]["clipped_grads"]):
            close(g * coef if coef < 1 else g, c, got)


def naive_ppo_loss(x, logp_new, values, entropy):
    """ppo_loss's six outputs, one sample at a time with the math module."""
    n, eps = len(logp_new), x["clip_eps"]
    policy = value = kl3 = clipped = 0.0
    for i in range(n):
        r = math.exp(logp_new[i] - x["logp_old"][i])
        a = x["advantages"][i]
        if x["objective"] == "clip":
            policy -= min(r * a, min(max(r, 1 - eps), 1 + eps) * a) / n
        else:
            policy -= r * a / n
        err = (values[i] - x["returns"][i]) ** 2
        if x["vf_clip_eps"] is not None:
            old, e = x["old_values"][i], x["vf_clip_eps"]
            err = max(err, (old + min(max(values[i] - old, -e), e) - x["returns"][i]) ** 2)
        value += 0.5 * err / n
        kl3 += (r - 1 - math.log(r)) / n
        clipped += (abs(r - 1) > eps) / n
    if x["objective"] in ("kl_adaptive", "kl_fixed"):
        policy += x["beta"] * math.fsum(x["kl"]) / n
    ent = math.fsum(entropy) / n
    return dict(loss=policy + x["vf_coef"] * value - x["ent_coef"] * ent, policy_loss=policy,
                value_loss=value, entropy=ent, approx_kl=kl3, clip_fraction=clipped)


def test_ppo_loss_vectors_match_a_loop_and_finite_differences(shipped):
    objectives = set()
    for c in shipped["ppo_loss"]["cases"]:
        x = c["inputs"]
        objectives.add(x["objective"])
        got = naive_ppo_loss(x, x["logp_new"], x["values"], x["entropy"])
        for key, value in got.items():
            close(value, c, c["expected"][key])
        for name in ("logp_new", "values", "entropy"):
            def loss_of(v, name=name):
                args = {k: x[k] for k in ("logp_new", "values", "entropy")}
                args[name] = v
                return naive_ppo_loss(x, **args)["loss"]
            np.testing.assert_allclose(central_difference(loss_of, x[name]),
                                       c["gradients"]["loss"][name], rtol=1e-6, atol=1e-9)
    assert objectives == {"clip", "kl_fixed", "unclipped"}


def test_kl_controller_vectors_follow_the_update_rules(shipped):
    for c in shipped["adaptive_kl_penalty"]["cases"]:
        x = c["inputs"]
        beta, betas = x["beta"], []
        for d in x["kls"]:
            beta = beta / 2 if d < x["target_kl"] / 1.5 else beta * 2 if d > x["target_kl"] * 1.5 \
                else beta
            beta = max(beta, x["beta_min"]) if x["beta_min"] is not None else beta
            beta = min(beta, x["beta_max"]) if x["beta_max"] is not None else beta
            betas.append(beta)
        close(betas, c, c["expected"]["betas"])
    thresholds = case(shipped, "adaptive_kl_penalty", "at_the_thresholds")
    assert thresholds["expected"]["betas"].tolist() == [2.0, 2.0, 1.0, 2.0]   # strict inequalities
    for c in shipped["proportional_kl_controller"]["cases"]:
        x = c["inputs"]
        beta, betas = x["beta"], []
        for kl, n in zip(x["kls"], x["n_steps"]):
            error = min(max(kl / x["target_kl"] - 1, -0.2), 0.2)
            beta *= 1 + error * n / x["horizon"]
            betas.append(beta)
        close(betas, c, c["expected"]["betas"])
    # by hand: KL 30 vs target 6 is clipped to e = 0.2, so beta = 0.1 (1 + 0.2 * 256 / 10000)
    first = case(shipped, "proportional_kl_controller", "error_clipped")["expected"]["betas"][0]
    assert first == pytest.approx(0.1 * 1.00512, rel=1e-15)


# ----- every shipped gradient against finite differences of loops written here --------------

def naive_outputs(function, x):
    """The differentiable functions' outputs, one sample at a time with the math module."""
    if function == "clipped_surrogate":
        return {"loss": naive_clip_loss(x["logp_new"], x["logp_old"], x["advantages"], x["clip_eps"])}
    if function == "kl_penalty_surrogate":
        n = len(x["advantages"])
        pg = -math.fsum(math.exp(a - b) * adv for a, b, adv in
                        zip(x["logp_new"], x["logp_old"], x["advantages"])) / n
        return {"loss": pg + x["beta"] * math.fsum(x["kl"]) / n}
    if function == "value_loss":
        total = 0.0
        for i, (v, ret) in enumerate(zip(x["values"], x["returns"])):
            err = (v - ret) ** 2
            if x["clip_eps"] is not None:
                old, e = x["old_values"][i], x["clip_eps"]
                err = max(err, (old + min(max(v - old, -e), e) - ret) ** 2)
            total += 0.5 * err
        return {"loss": total / len(x["values"])}
    if function == "ppo_loss":
        return {"loss": naive_ppo_loss(x, x["logp_new"], x["values"], x["entropy"])["loss"]}
    if function == "categorical":
        out = {"log_prob": [], "entropy": [], "kl": []}
        for row, other, a in zip(x["logits"].tolist(), x["other_logits"].tolist(),
                                 np.ravel(x["actions"]).tolist()):
            lp, lq = naive_log_softmax(row), naive_log_softmax(other)
            out["log_prob"].append(lp[a])
            out["entropy"].append(-math.fsum(math.exp(l) * l for l in lp))
            out["kl"].append(math.fsum(math.exp(l) * (l - m) for l, m in zip(lp, lq)))
        return out
    if function == "diag_gaussian":
        return naive_gaussian(x)
    raise KeyError(function)


# Cases whose inputs sit exactly on a kink (r = 1 +- eps, V - V_old = +-eps): a central
# difference straddles it and gives the average of the two one-sided slopes, not the documented
# subgradient; those are checked by hand above and in test_losses.py.
AT_A_KINK = {("clipped_surrogate", "ratios_at_clip_boundaries_positive_advantages"),
             ("clipped_surrogate", "ratios_at_clip_boundaries_negative_advantages"),
             ("value_loss", "clipped_at_band_edge")}


@pytest.mark.parametrize("function", ["clipped_surrogate", "kl_penalty_surrogate", "value_loss",
                                      "ppo_loss", "categorical", "diag_gaussian"])
def test_every_shipped_gradient_matches_finite_differences_of_a_loop(shipped, function):
    doc = shipped[function]
    assert doc["differentiable"]
    checked = 0
    for c in doc["cases"]:
        if (function, c["name"]) in AT_A_KINK:
            continue
        x = c["inputs"]
        for out, grads in c["gradients"].items():
            close(naive_outputs(function, x)[out], c, c["expected"][out])
            for name in doc["differentiable"]:
                def f(v, name=name, out=out):
                    return math.fsum(np.ravel(naive_outputs(function, {**x, name: v})[out]))
                np.testing.assert_allclose(central_difference(f, x[name]), grads[name], rtol=1e-6,
                                           atol=1e-8, err_msg=f"{function}/{c['name']}: d {out} / d {name}")
                checked += 1
    assert checked >= 4 * len(doc["differentiable"])
