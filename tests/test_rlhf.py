"""Specification tests for ppo_ref.rlhf: RLHF in miniature.

Expected values come from hand calculations (written out in comments), closed forms, naive loops
written here, enumeration of every sequence, or finite differences -- never from the code under
test.
"""
import dataclasses
import importlib.util
import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from ppo_ref.autodiff import Tensor
from ppo_ref.gradcheck import gradcheck
from ppo_ref.rlhf import (END, MarkovSource, Preferences, RLHFConfig, RewardModel, TokenPolicy,
                          WorldConfig, bradley_terry_loss, enumerate_sequences,
                          exact_sequence_kl, gold_reward, label_preferences, prepare_world,
                          pretrain, rlhf_finetune, sequence_gae, sequence_log_ratio,
                          sequence_mask, stepwise_kl, token_rewards, train_reward_model,
                          validate_tokens)

REPO = Path(__file__).resolve().parents[1]

# A small world shared by the tests that need a pretrained pi_ref and a reward model.
SMALL_WORLD = WorldConfig(corpus_size=400, pretrain_epochs=2, train_pairs=300, test_pairs=200,
                          rm_epochs=4)


@pytest.fixture(scope="module")
def small_world():
    return prepare_world(SMALL_WORLD, np.random.default_rng(0))


def random_policy(vocab_size, max_len, seed, scale=1.5):
    """A TokenPolicy with all weights redrawn N(0, scale^2 / fan_in): far from uniform, so two of
    them have a sizeable KL."""
    rng = np.random.default_rng(seed)
    policy = TokenPolicy(vocab_size, max_len, rng, window=2, hidden=(16,))
    for p in policy.parameters():
        fan_in = p.shape[0] if p.ndim == 2 else 1
        p.data[...] = rng.standard_normal(p.shape) * scale / math.sqrt(fan_in)
    return policy


# ----- sequences ------------------------------------------------------------------------------

def test_mask_covers_positions_up_to_and_including_the_first_end():
    tokens = np.array([[2, 1, 0, 0],    # "ba."  -> 3 positions
                       [0, 3, 3, 0],    # "."    -> 1 (what follows END is padding)
                       [1, 1, 2, 3]])   # reaches max_len without END -> 4
    expected = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(sequence_mask(tokens), expected)


def test_enumeration_lists_every_sequence_once():
    # K = 2 letters, max_len 3: 1 + 2 + 4 end with END, 8 reach the limit: (2^4 - 1) / (2 - 1) = 15.
    every = enumerate_sequences(3, 3)
    assert every.shape == (15, 3)
    canonical = {tuple(np.where(sequence_mask(every[i:i + 1])[0], every[i], END))
                 for i in range(len(every))}
    assert len(canonical) == 15


# ----- the per-token reward -------------------------------------------------------------------

def test_per_token_kl_penalty_and_final_score_match_hand_computation():
    logp = np.array([[-0.5, -1.0, -2.0], [-0.2, -0.3, -0.4]])
    logp_ref = np.array([[-0.7, -0.4, -1.0], [-0.1, -0.9, -0.4]])
    mask = np.array([[True, True, False], [True, True, True]])
    scores = np.array([2.0, -1.0])
    # r_t = -0.5 (logp - logp_ref), plus the score at the last position of each sequence:
    # row 0: -0.5 * 0.2 = -0.1;  -0.5 * (-0.6) + 2.0 = 2.3;  padding 0
    # row 1: -0.5 * (-0.1) = 0.05;  -0.5 * 0.6 = -0.3;  -0.5 * 0 - 1.0 = -1.0
    expected = np.array([[-0.1, 2.3, 0.0], [0.05, -0.3, -1.0]])
    np.testing.assert_allclose(token_rewards(logp, logp_ref, mask, scores, beta=0.5), expected,
                               atol=1e-12)


def test_kl_penalties_of_an_episode_sum_to_minus_beta_times_its_log_ratio():
    rng = np.random.default_rng(3)
    policy, reference = random_policy(4, 5, 1), random_policy(4, 5, 2)
    tokens, logp = policy.sample(50, rng)
    mask = sequence_mask(tokens)
    logp_ref = reference.log_probs(tokens).data * mask
    rewards = token_rewards(logp, logp_ref, mask, np.zeros(50), beta=0.3)
    log_ratio = policy.sequence_log_prob(tokens) - reference.sequence_log_prob(tokens)
    np.testing.assert_allclose(rewards.sum(axis=1), -0.3 * log_ratio, rtol=1e-10, atol=1e-12)


def test_token_gae_with_lambda_one_is_reward_to_go_within_each_sequence():
    rng = np.random.default_rng(0)
    rewards = rng.standard_normal((3, 5))
    values = rng.standard_normal((3, 5))
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    rewards = rewards * mask
    adv, returns = sequence_gae(rewards, values, mask, lam=1.0)
    for b in range(3):  # naive loop: G_t = sum of the rewards from t to the sequence's end
        n = mask[b].sum()
        for t in range(5):
            expected_return = rewards[b, t:n].sum() if t < n else 0.0
            assert returns[b, t] == pytest.approx(expected_return, abs=1e-12)
            expected_adv = expected_return - values[b, t] if t < n else 0.0
            assert adv[b, t] == pytest.approx(expected_adv, abs=1e-12)


# ----- the policy -----------------------------------------------------------------------------

def naive_log_prob(policy, sequence):
    """log pi(x) by feeding the model one context at a time, written out as a loop."""
    total, context = 0.0, []
    for token in sequence:
        padded = np.array([context + [END] * (policy.max_len - len(context))])
        probs = policy.distribution(policy.context_features(padded, len(context))).probs()[0]
        total += math.log(probs[token])
        if token == END:
            break
        context.append(int(token))
    return total


def test_sequence_probabilities_sum_to_one_and_match_a_step_by_step_loop():
    policy = random_policy(3, 4, 0)
    every = enumerate_sequences(3, 4)
    logp = policy.sequence_log_prob(every)
    assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-12)
    for i in (0, 5, 17, len(every) - 1):
        assert logp[i] == pytest.approx(naive_log_prob(policy, every[i]), abs=1e-12)


def test_sampled_log_probs_equal_the_log_probs_of_the_sampled_tokens():
    policy = random_policy(4, 6, 0)
    tokens, logp = policy.sample(20, np.random.default_rng(1))
    mask = sequence_mask(tokens)
    np.testing.assert_allclose(logp, policy.log_probs(tokens).data * mask, atol=1e-12)


def test_pretraining_approaches_the_corpus_entropy():
    rng = np.random.default_rng(0)
    source = MarkovSource.random(rng, vocab_size=5, max_len=6, min_len=2, end_prob=0.3)
    policy = TokenPolicy(5, 6, rng, window=1, hidden=(32,))
    pretrain(policy, source.sample(2000, rng), rng, epochs=6, batch_size=128, lr=1e-2)
    held_out = source.sample(1000, rng)

    def source_log_prob(x):  # the generator's own probability of x, by its definition
        total, prev = 0.0, None
        for t in range(source.max_len):
            if t >= source.min_len:
                if x[t] == END:
                    return total + math.log(source.end_prob)
                total += math.log(1 - source.end_prob)
            probs = source.start if t == 0 else source.transition[prev]
            total += math.log(probs[x[t] - 1])
            prev = x[t] - 1
        return total

    n_tokens = sequence_mask(held_out).sum()
    entropy = -sum(source_log_prob(x) for x in held_out) / n_tokens   # the best possible NLL
    nll = -policy.sequence_log_prob(held_out).sum() / n_tokens
    assert entropy < nll < entropy + 0.05, (nll, entropy)


# ----- sequence-level KL -----------------------------------------------------------------------

def test_sequence_log_ratio_sums_over_the_sequence_and_ignores_padding():
    logp = np.array([[-1.0, -2.0, 5.0], [-0.5, -0.5, -0.5]])
    logp_ref = np.array([[-1.5, -1.0, -9.0], [-1.0, -1.0, 0.0]])
    mask = np.array([[True, True, False], [True, True, True]])
    # row 0: (-1 + 1.5) + (-2 + 1) = -0.5 (the 5 - (-9) at the padding is ignored)
    # row 1: 0.5 + 0.5 - 0.5 = 0.5
    np.testing.assert_allclose(sequence_log_ratio(logp, logp_ref, mask), [-0.5, 0.5], atol=1e-12)


def test_monte_carlo_sequence_kl_matches_exact_enumeration():
    policy, reference = random_policy(3, 4, 10), random_policy(3, 4, 11)
    # Exact KL by a naive loop over every sequence (31 of them), probabilities step by step.
    exact = 0.0
    for k in range(5):
        for letters in itertools.product((1, 2), repeat=k):
            seq = list(letters) + ([END] if k < 4 else [])
            lp, lq = naive_log_prob(policy, seq), naive_log_prob(reference, seq)
            exact += math.exp(lp) * (lp - lq)
    assert exact > 0.1  # the two policies really differ
    assert exact_sequence_kl(policy, reference) == pytest.approx(exact, rel=1e-10)

    tokens, logp = policy.sample(20000, np.random.default_rng(0))
    mask = sequence_mask(tokens)
    ratio = sequence_log_ratio(logp, reference.log_probs(tokens).data * mask, mask)
    stepwise = stepwise_kl(policy, reference, tokens)
    for estimate in (ratio, stepwise):  # both unbiased: within 4 standard errors
        stderr = estimate.std(ddof=1) / math.sqrt(len(estimate))
        assert abs(estimate.mean() - exact) < 4 * stderr, (estimate.mean(), exact, stderr)
    assert stepwise.std() < ratio.std()  # the stepwise estimator has lower variance here


# ----- Bradley-Terry ---------------------------------------------------------------------------

def test_bradley_terry_loss_is_minus_log_sigmoid_of_the_margin_and_stable():
    r_w, r_l = np.array([1.0, -0.5, 2.0]), np.array([0.0, 0.5, 2.0])
    # -log sigmoid(d) = log(1 + e^-d) for d = 1, -1, 0
    expected = np.mean([math.log1p(math.exp(-1.0)), math.log1p(math.exp(1.0)), math.log(2.0)])
    assert float(bradley_terry_loss(r_w, r_l).data) == pytest.approx(expected, rel=1e-12)
    # Huge margins: log(1 + e^1000) = 1000 and log(1 + e^-1000) = 0, no overflow, no nan.
    assert float(bradley_terry_loss([-500.0], [500.0]).data) == pytest.approx(1000.0)
    assert float(bradley_terry_loss([500.0], [-500.0]).data) == 0.0


def test_bradley_terry_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    r_w, r_l = rng.standard_normal(6), rng.standard_normal(6)
    report = gradcheck(bradley_terry_loss, [r_w, r_l])
    assert report.passed, report
    # ... and through a linear reward model r = phi @ w, to its weights.
    f_w, f_l, w = rng.random((6, 4)), rng.random((6, 4)), rng.standard_normal(4)
    report = gradcheck(lambda w: bradley_terry_loss(Tensor(f_w) @ w, Tensor(f_l) @ w), [w])
    assert report.passed, report


def test_reward_model_learns_held_out_preferences(small_world):
    # 300 noisy pairs, 4 epochs: well above chance (0.5) against the noise-free gold preference.
    assert small_world.rm_accuracy > 0.7


def test_reward_model_features_are_letter_counts_over_max_len():
    rm = RewardModel(4, 5, np.random.default_rng(0))
    # "aac." (the 2 after END is padding) and "cbbbb" (no END: max_len reached)
    feats = rm.features(np.array([[1, 1, 3, 0, 2], [3, 2, 2, 2, 2]]))
    np.testing.assert_allclose(feats, np.array([[2, 0, 1], [0, 4, 1]]) / 5)


def test_label_preferences_prefers_higher_gold_and_drops_ties():
    a = np.array([[1, 0], [2, 0], [1, 0]])
    b = np.array([[2, 0], [1, 0], [1, 0]])
    prefs = label_preferences(a, b, np.array([1.0, 0.0, 3.0]), np.array([0.5, 2.0, 3.0]),
                              np.random.default_rng(0), label_noise=0.0)
    np.testing.assert_array_equal(prefs.chosen, [[1, 0], [1, 0]])
    np.testing.assert_array_equal(prefs.rejected, [[2, 0], [2, 0]])


def test_gold_reward_matches_hand_computation():
    # vocab 8: values a=1, b=2/3, c=1/3, d=0, ...; repeat penalty 1.5.
    tokens = np.array([[1, 2, 2, 0, 3], [1, 1, 1, 1, 1], [4, 0, 0, 0, 0]])
    expected = [1 + 2 / 3 + 2 / 3 - 1.5, 5 - 4 * 1.5, 0.0]  # padding after END does not count
    np.testing.assert_allclose(gold_reward(tokens, 8), expected, atol=1e-12)


# ----- PPO fine-tuning -------------------------------------------------------------------------

def test_controller_holds_measured_kl_near_target(small_world):
    # Start with beta 2.0, which keeps the KL near 0.3 nats, far below the 2-nat target; the
    # proportional controller must lower beta until the measured (batch) KL sits at the target.
    target = 2.0
    config = RLHFConfig(iterations=50, batch_size=64, lr=1e-3, beta=2.0, target_kl=target,
                        kl_horizon=128.0, eval_every=1000, eval_samples=64)
    _, history = rlhf_finetune(small_world.reference.copy(), small_world.reference,
                               small_world.reward_model, config, np.random.default_rng(1))
    kl = np.array([h["kl"] for h in history])
    assert kl[:5].mean() < 0.5 * target                 # out of the band at the start
    assert history[-1]["beta"] < 1.0                    # the controller lowered beta ...
    assert 0.7 * target < kl[-20:].mean() < 1.3 * target  # ... and holds the KL in the band
    assert kl[-20:].max() < 2.0 * target


def test_finetuning_is_deterministic_for_a_seed(small_world):
    config = RLHFConfig(iterations=3, batch_size=16, eval_every=2, eval_samples=16, beta=0.1)
    runs = []
    for _ in range(2):
        policy = small_world.reference.copy()
        evals, history = rlhf_finetune(policy, small_world.reference, small_world.reward_model,
                                       config, np.random.default_rng(5), gold_fn=small_world.gold)
        runs.append((evals, history, policy.state_dict()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    # The reference stayed frozen: fine-tuning moved only the copy (pi_ref is that same object).
    fresh = prepare_world(SMALL_WORLD, np.random.default_rng(0)).reference.state_dict()
    moved = False
    for key, value in small_world.reference.state_dict().items():
        np.testing.assert_array_equal(value, fresh[key])
        moved |= not np.array_equal(runs[0][2][key], value)
    assert moved
    for key, value in runs[0][2].items():
        np.testing.assert_array_equal(value, runs[1][2][key])


def test_quick_demo_runs_end_to_end(tmp_path, monkeypatch):
    # demos/_common.py sets MPLBACKEND if unset: restore it after (BLAS was pinned by conftest).
    monkeypatch.setenv("MPLBACKEND", os.environ.get("MPLBACKEND", "Agg"))
    monkeypatch.syspath_prepend(str(REPO / "demos"))
    spec = importlib.util.spec_from_file_location("rlhf_demo", REPO / "demos" / "rlhf.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert demo.main(["--out", str(tmp_path), "--quick"]) == 0
    assert (tmp_path / "rlhf.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "rlhf_summary.json").read_text())
    # Exactly the keys issue 7 specifies (the curves and samples go to rlhf.json).
    assert set(summary) == {"reward_model_accuracy", "runs"}
    for run in summary["runs"]:
        assert set(run) == {"beta", "final_kl", "final_proxy_reward", "final_gold_reward",
                            "max_gold_reward"}
    assert 0.5 < summary["reward_model_accuracy"] <= 1.0
    details = json.loads((tmp_path / "rlhf.json").read_text())
    assert [run["beta"] for run in details["runs"]] == [run["beta"] for run in summary["runs"]]
    betas = [run["beta"] for run in summary["runs"]]
    assert 0.0 in betas and "adaptive" in betas and any(b != "adaptive" and b > 0 for b in betas)
    for run in summary["runs"]:
        for key in ("final_kl", "final_proxy_reward", "final_gold_reward", "max_gold_reward"):
            assert math.isfinite(run[key]), (run["beta"], key)


# ----- bad input -------------------------------------------------------------------------------

def test_tokens_outside_the_vocabulary_are_rejected_with_their_index():
    with pytest.raises(ValueError, match=r"tokens has token 8 at index \(1, 2\)"):
        validate_tokens(np.array([[1, 2, 0], [3, 4, 8]]), vocab_size=8)
    with pytest.raises(ValueError, match=r"token -1 at index \(0, 0\)"):
        gold_reward(np.array([[-1, 0]]), vocab_size=8)
    policy = random_policy(4, 3, 0)
    with pytest.raises(ValueError, match="tokens has token 4"):
        policy.log_probs(np.array([[1, 4, 0]]))
    with pytest.raises(TypeError, match="tokens must hold integer token ids"):
        policy.log_probs(np.array([[1.0, 2.0, 0.0]]))


def test_empty_preference_sets_are_rejected():
    rm = RewardModel(4, 3, np.random.default_rng(0))
    empty = Preferences(chosen=np.zeros((0, 3), dtype=np.int64),
                        rejected=np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="prefs is empty"):
        train_reward_model(rm, empty, np.random.default_rng(0))
    with pytest.raises(ValueError, match="r_chosen is empty"):
        bradley_terry_loss(np.zeros(0), np.zeros(0))


def test_negative_beta_is_rejected():
    with pytest.raises(ValueError, match="beta"):
        token_rewards(np.zeros((1, 2)), np.zeros((1, 2)), np.ones((1, 2), bool), np.zeros(1),
                      beta=-0.1)
    policy = random_policy(4, 3, 0)
    with pytest.raises(ValueError, match="beta"):
        rlhf_finetune(policy, policy.copy(), lambda x: np.zeros(len(x)),
                      RLHFConfig(beta=-0.1), np.random.default_rng(0))


def test_malformed_inputs_raise_errors_naming_the_argument():
    with pytest.raises(ValueError, match="scores contains a non-finite value nan"):
        token_rewards(np.zeros((1, 2)), np.zeros((1, 2)), np.ones((1, 2), bool),
                      np.array([np.nan]), beta=0.1)
    with pytest.raises(ValueError, match="logp_ref contains a non-finite"):
        token_rewards(np.zeros((1, 2)), np.array([[0.0, np.inf]]), np.ones((1, 2), bool),
                      np.zeros(1), beta=0.1)
    with pytest.raises(ValueError, match="mask row 1 is empty"):
        token_rewards(np.zeros((2, 2)), np.zeros((2, 2)), np.array([[1, 0], [0, 0]], bool),
                      np.zeros(2), beta=0.1)
    with pytest.raises(ValueError, match="r_rejected contains a non-finite value nan"):
        bradley_terry_loss(np.zeros(2), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="gold_b contains a non-finite"):
        label_preferences(np.ones((2, 3), int), np.ones((2, 3), int), np.zeros(2),
                          np.array([np.nan, 0.0]), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"seq_a \(2, 3\) and seq_b \(2, 4\)"):
        label_preferences(np.ones((2, 3), int), np.ones((2, 4), int), np.zeros(2), np.ones(2),
                          np.random.default_rng(0))
    rm = RewardModel(4, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="prefs.chosen has 3 sequences but prefs.rejected has 2"):
        train_reward_model(rm, Preferences(np.ones((3, 3), int), np.ones((2, 3), int)),
                           np.random.default_rng(0))
    with pytest.raises(ValueError, match="corpus is empty"):
        pretrain(random_policy(4, 3, 0), np.zeros((0, 3), int), np.random.default_rng(0))
    # Exact enumeration of the demo's world (7^12 sequences) would exhaust memory: refused.
    with pytest.raises(ValueError, match="16,148,168,401 sequences"):
        enumerate_sequences(8, 12)


@pytest.mark.parametrize("field,value", [("eval_every", 0), ("num_minibatches", 0),
                                         ("batch_size", 0), ("lr", float("nan")),
                                         ("clip_eps", 0.0), ("lam", 1.5), ("target_kl", -1.0),
                                         ("kl_horizon", 0.0)])
def test_out_of_range_hyperparameters_are_rejected_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        RLHFConfig(**{field: value})
    config = RLHFConfig()
    setattr(config, field, value)            # changed after construction: rlhf_finetune checks
    policy = random_policy(4, 3, 0)
    with pytest.raises(ValueError, match=field):
        rlhf_finetune(policy, policy.copy(), lambda x: np.zeros(len(x)), config,
                      np.random.default_rng(0))


def test_a_kl_target_needs_a_positive_starting_beta():
    # The controller multiplies beta, so from 0 it could never move.
    with pytest.raises(ValueError, match="beta must be > 0 when target_kl is set"):
        RLHFConfig(beta=0.0, target_kl=1.0)


def test_numpy_scalar_hyperparameters_are_stored_as_plain_floats():
    config = RLHFConfig(beta=np.array(0.05), lr=np.float32(1e-3), target_kl=np.float64(2.0))
    assert type(config.beta) is float and type(config.lr) is float and type(config.target_kl) is float
    json.dumps(dataclasses.asdict(config))   # a 0-d array here would not serialise
