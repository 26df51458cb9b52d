"""Tests for ppo_ref/trpo.py: Fisher-vector products, conjugate gradient, TRPO and natural-gradient steps.

Every expected value is built here independently of trpo.py: the Fisher matrix from per-sample score
outer products (exact sums over actions) or from finite differences of the KL gradient, linear
solves from np.linalg.solve, and KLs from closed forms written in this file.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gymnasium import spaces

from ppo_ref.autodiff import Tensor, log_softmax, no_grad
from ppo_ref.nn import MLP
from ppo_ref.train.policy import ActorCritic
from ppo_ref.train.trainer import PPOConfig, train
from ppo_ref.trpo import (conjugate_gradient, fisher_vector_product, flat_params,
                          natural_gradient_step, policy_parts, set_flat_params, trpo_step)


def _flat_grad(params):
    return np.concatenate([p.grad.ravel() for p in params])


def _zero_grads(params):
    for p in params:
        p.grad = None


def _fisher_columns(policy, obs, damping=0.0):
    """The whole matrix F, one column per basis vector, through fisher_vector_product."""
    P = flat_params(policy_parts(policy)[2]).size
    return np.stack([fisher_vector_product(policy, obs, e, damping) for e in np.eye(P)], axis=1)


def _categorical_fisher_from_scores(mlp, obs):
    """F = (1/B) sum_b sum_a pi(a|s_b) grad log pi(a|s_b) grad log pi(a|s_b)^T, exactly (a naive
    double loop over states and actions, one backward pass each)."""
    params = mlp.parameters()
    B, P = obs.shape[0], flat_params(params).size
    F = np.zeros((P, P))
    for b in range(B):
        for a in range(mlp.layers[-1].weight.shape[1]):
            _zero_grads(params)
            logp = log_softmax(mlp(Tensor(obs[b:b + 1])), axis=-1)[0, a]
            logp.backward()
            score = _flat_grad(params)
            F += np.exp(logp.item()) * np.outer(score, score)
    _zero_grads(params)
    return F / B


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_fvp_equals_expected_score_outer_product_for_categorical(activation):
    rng = np.random.default_rng(0)
    mlp = MLP([3, 5, 4], activation=activation, output_gain=1.0, rng=rng)
    obs = rng.normal(size=(6, 3))
    F_explicit = _categorical_fisher_from_scores(mlp, obs)
    F_fvp = _fisher_columns(mlp, obs)
    np.testing.assert_allclose(F_fvp, F_explicit, rtol=1e-9, atol=1e-12)


def _gaussian_kl_gradient(policy, obs, mean_old, log_std_old):
    """grad_theta of mean_b KL(N(mean_old, e^log_std_old) || N(mean_theta, e^log_std_theta)),
    with the closed form log(s1/s0) + (s0^2 + (m0 - m1)^2) / (2 s1^2) - 1/2 summed over D."""
    mlp, log_std, params = policy_parts(policy)
    _zero_grads(params)
    mean = mlp(Tensor(obs))
    var_old = np.exp(2 * log_std_old)
    kl = (log_std - log_std_old) + (var_old + (mean_old - mean) ** 2) / (2 * (2 * log_std).exp()) - 0.5
    kl.sum(axis=1).mean().backward()
    g = _flat_grad(params)
    _zero_grads(params)
    return g


def test_fvp_equals_finite_difference_hessian_of_kl_for_diag_gaussian():
    rng = np.random.default_rng(1)
    policy = SimpleNamespace(pi=MLP([2, 4, 3], activation="tanh", output_gain=1.0, rng=rng),
                             log_std=Tensor(np.array([-0.5, 0.0, 0.3]), requires_grad=True))
    obs = rng.normal(size=(5, 2))
    params = policy_parts(policy)[2]
    theta = flat_params(params)
    with no_grad():
        mean_old = np.array(policy.pi(Tensor(obs)).data)
    log_std_old = np.array(policy.log_std.data)
    eps = 1e-5
    H = np.zeros((theta.size, theta.size))
    for j in range(theta.size):           # central differences of the KL gradient, column by column
        e = np.zeros_like(theta)
        e[j] = eps
        set_flat_params(params, theta + e)
        g_plus = _gaussian_kl_gradient(policy, obs, mean_old, log_std_old)
        set_flat_params(params, theta - e)
        g_minus = _gaussian_kl_gradient(policy, obs, mean_old, log_std_old)
        H[:, j] = (g_plus - g_minus) / (2 * eps)
    set_flat_params(params, theta)
    F_fvp = _fisher_columns(policy, obs)
    np.testing.assert_allclose(F_fvp, H, rtol=1e-6, atol=1e-8)


def test_fvp_damping_adds_damping_times_v_and_leaves_existing_grads_alone():
    rng = np.random.default_rng(2)
    mlp = MLP([3, 4, 2], rng=rng)
    obs = rng.normal(size=(7, 3))
    params = mlp.parameters()
    for p in params:
        p.grad = np.full(p.data.shape, 7.0)
    v = rng.normal(size=flat_params(params).size)
    plain = fisher_vector_product(mlp, obs, v)
    damped = fisher_vector_product(mlp, obs, v, damping=0.25)
    np.testing.assert_allclose(damped, plain + 0.25 * v, rtol=1e-12, atol=1e-14)
    assert all(np.all(p.grad == 7.0) for p in params)


def test_fvp_rejects_bad_shapes_naming_the_argument():
    rng = np.random.default_rng(3)
    mlp = MLP([3, 4, 2], rng=rng)
    P = flat_params(mlp.parameters()).size
    with pytest.raises(ValueError, match="obs"):
        fisher_vector_product(mlp, np.zeros((5, 4)), np.zeros(P))
    with pytest.raises(ValueError, match=f"\\({P},\\)"):
        fisher_vector_product(mlp, np.zeros((5, 3)), np.zeros(P + 1))


# ----- conjugate gradient ---------------------------------------------------------------------------

def test_conjugate_gradient_matches_linalg_solve_on_random_spd_system():
    rng = np.random.default_rng(4)
    M = rng.normal(size=(12, 12))
    A = M @ M.T + 0.5 * np.eye(12)
    b = rng.normal(size=12)
    x = conjugate_gradient(lambda v: A @ v, b, iters=100, tol=1e-30)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)


def test_conjugate_gradient_is_exact_in_n_steps_on_a_well_conditioned_system():
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    A = Q @ np.diag([1.0, 1.5, 2.0, 2.5, 3.0, 3.5]) @ Q.T
    b = rng.normal(size=6)
    x = conjugate_gradient(lambda v: A @ v, b, iters=6, tol=0.0)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-10, atol=1e-12)


def test_conjugate_gradient_of_zero_rhs_is_zero_without_products():
    def never(v):
        raise AssertionError("no product needed when b = 0")
    np.testing.assert_array_equal(conjugate_gradient(never, np.zeros(4)), np.zeros(4))


def test_conjugate_gradient_rejects_an_indefinite_matrix():
    A = np.diag([1.0, -1.0])
    with pytest.raises(ValueError, match=r"iteration 0"):
        conjugate_gradient(lambda v: A @ v, np.array([0.0, 1.0]))


# ----- TRPO and natural-gradient steps ------------------------------------------------------------------

def _categorical_batch(seed, B=64, obs_dim=4, hidden=8, A=3):
    rng = np.random.default_rng(seed)
    mlp = MLP([obs_dim, hidden, A], activation="tanh", output_gain=1.0, rng=rng)
    obs = rng.normal(size=(B, obs_dim))
    with no_grad():
        logits = mlp(Tensor(obs)).data
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    actions = np.array([rng.choice(A, p=p) for p in probs])
    advantages = rng.normal(size=B)
    return mlp, obs, actions, advantages


def _categorical_probs(mlp, obs):
    with no_grad():
        logits = np.array(mlp(Tensor(obs)).data)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _kl_and_improvement(p_old, p_new, actions, adv):
    """Exact mean KL(p_old || p_new) and the change of mean(ratio * A), by plain numpy."""
    kl = np.mean(np.sum(p_old * (np.log(p_old) - np.log(p_new)), axis=1))
    rows = np.arange(len(actions))
    ratio = p_new[rows, actions] / p_old[rows, actions]
    return kl, np.mean(ratio * adv) - np.mean(adv)


# Large deltas with little damping make the quadratic model overshoot, so the line search backtracks.
@pytest.mark.parametrize("seed,max_kl,damping", [(0, 0.01, 0.1), (1, 0.01, 0.1), (2, 0.05, 0.1),
                                                 (3, 0.001, 0.1), (4, 0.2, 0.1), (0, 1.0, 0.01),
                                                 (3, 2.0, 0.01)])
def test_every_accepted_trpo_step_respects_measured_kl_and_improves_surrogate(seed, max_kl, damping):
    mlp, obs, actions, adv = _categorical_batch(seed)
    for _ in range(3):                     # a few consecutive updates on the same batch
        p_old = _categorical_probs(mlp, obs)
        logp_old = np.log(p_old[np.arange(len(actions)), actions])
        info = trpo_step(mlp, obs, actions, adv, logp_old, max_kl=max_kl, damping=damping)
        kl, improvement = _kl_and_improvement(p_old, _categorical_probs(mlp, obs), actions, adv)
        if info["accepted"]:
            assert kl <= max_kl
            assert improvement > 0
            assert info["kl"] == pytest.approx(kl, rel=1e-9)
            assert info["improvement"] == pytest.approx(improvement, rel=1e-7)
        else:
            assert kl == 0.0               # rejected: the policy is unchanged


def test_line_search_backtracks_only_when_the_longer_step_fails():
    mlp, obs, actions, adv = _categorical_batch(0)
    params = mlp.parameters()
    theta_old, p_old = flat_params(params).copy(), _categorical_probs(mlp, obs)
    info = trpo_step(mlp, obs, actions, adv, max_kl=1.0, damping=0.01, backtrack_coef=0.5)
    assert info["accepted"] and info["backtracks"] >= 1
    assert info["step_fraction"] == 0.5 ** info["backtracks"]
    # Rebuild the previous, twice as long candidate and check it broke a condition.
    theta_new = flat_params(params).copy()
    set_flat_params(params, theta_old + 2.0 * (theta_new - theta_old))
    kl, improvement = _kl_and_improvement(p_old, _categorical_probs(mlp, obs), actions, adv)
    assert kl > 1.0 or improvement <= 0


def test_full_trpo_step_has_model_kl_delta_so_tiny_steps_measure_delta():
    # The step is scaled so 1/2 s^T F s = delta; the true KL differs only at third order, so
    # for a tiny delta the measured KL of the accepted step is delta * fraction^2 (the relative
    # error shrinks like sqrt(delta): about 2% at 1e-6, 0.02% at 1e-10).
    mlp, obs, actions, adv = _categorical_batch(7)
    delta = 1e-10
    info = trpo_step(mlp, obs, actions, adv, max_kl=delta, damping=0.0, cg_iters=20)
    assert info["accepted"]
    assert info["kl"] / info["step_fraction"] ** 2 == pytest.approx(delta, rel=1e-3)


def test_natural_gradient_kl_matches_quadratic_model_for_small_steps():
    # KL(theta + a x) = 1/2 a^2 x^T F x + O(a^3): the relative gap shrinks linearly in a.
    mlp, obs, actions, adv = _categorical_batch(8)
    info = natural_gradient_step(mlp, obs, actions, adv, step_size=1e-5, damping=0.0, cg_iters=20)
    assert info["kl"] == pytest.approx(info["predicted_kl"], rel=2e-3)
    assert info["improvement"] > 0


def test_trpo_step_with_zero_advantages_keeps_the_policy():
    mlp, obs, actions, _ = _categorical_batch(9)
    theta = flat_params(mlp.parameters()).copy()
    info = trpo_step(mlp, obs, actions, np.zeros(len(actions)))
    assert not info["accepted"]
    np.testing.assert_array_equal(flat_params(mlp.parameters()), theta)


def test_trpo_step_on_a_gaussian_policy_respects_kl():
    rng = np.random.default_rng(10)
    policy = SimpleNamespace(pi=MLP([3, 6, 2], activation="tanh", output_gain=0.5, rng=rng),
                             log_std=Tensor(np.array([-0.2, 0.1]), requires_grad=True))
    obs = rng.normal(size=(40, 3))
    with no_grad():
        mean0 = np.array(policy.pi(Tensor(obs)).data)
    ls0 = np.array(policy.log_std.data)
    actions = mean0 + np.exp(ls0) * rng.normal(size=mean0.shape)
    info = trpo_step(policy, obs, actions, rng.normal(size=40), max_kl=0.02)
    with no_grad():
        mean1 = np.array(policy.pi(Tensor(obs)).data)
    ls1 = np.array(policy.log_std.data)
    kl = np.mean(np.sum(ls1 - ls0 + (np.exp(2 * ls0) + (mean0 - mean1) ** 2)
                        / (2 * np.exp(2 * ls1)) - 0.5, axis=1))
    assert info["accepted"]
    assert kl <= 0.02
    assert info["kl"] == pytest.approx(kl, rel=1e-9)


@pytest.mark.parametrize("action_space", [spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,))])
def test_trpo_step_on_an_actor_critic_moves_only_its_policy_parameters(action_space):
    rng = np.random.default_rng(11)
    agent = ActorCritic(spaces.Box(-np.inf, np.inf, (4,)), action_space, rng, hidden=(8,))
    assert [id(p) for p in policy_parts(agent)[2]] == [id(p) for p in agent.policy_parameters()]
    obs = rng.normal(size=(32, 4))
    actions, logp, _ = agent.act(obs, rng)
    value_before = flat_params(agent.value_parameters()).copy()
    policy_before = flat_params(agent.policy_parameters()).copy()
    info = trpo_step(agent, obs, actions, rng.normal(size=32), logp, max_kl=0.01)
    assert info["accepted"] and info["kl"] <= 0.01
    np.testing.assert_array_equal(flat_params(agent.value_parameters()), value_before)
    assert not np.array_equal(flat_params(agent.policy_parameters()), policy_before)


def test_a_candidate_whose_logits_overflow_is_rejected_and_the_policy_restored():
    # delta = 1e308 makes the full step ~1e154 per weight; through relu the logits overflow to
    # inf - inf = nan. The line search must count such candidates as failures, and a step that
    # fails every fraction must leave theta exactly as it was.
    rng = np.random.default_rng(0)
    mlp = MLP([3, 4, 2], activation="relu", output_gain=1.0, rng=rng)
    obs, actions, adv = rng.normal(size=(5, 3)), np.array([0, 1, 0, 1, 1]), rng.normal(size=5)
    theta = flat_params(mlp.parameters()).copy()
    with np.errstate(over="ignore", invalid="ignore"):
        info = trpo_step(mlp, obs, actions, adv, max_kl=1e308, damping=1e-3, max_backtracks=3)
    assert not info["accepted"]
    np.testing.assert_array_equal(flat_params(mlp.parameters()), theta)


@pytest.mark.parametrize("kwargs,message", [
    ({"max_kl": float("nan")}, "max_kl"), ({"max_kl": 0.0}, "max_kl"),
    ({"backtrack_coef": 1.0}, "backtrack_coef"), ({"max_backtracks": 0}, "max_backtracks"),
    ({"cg_iters": 0}, "cg_iters"), ({"damping": -1.0}, "damping"),
    ({"damping": float("nan")}, "damping")])
def test_trpo_step_rejects_bad_hyperparameters_before_moving(kwargs, message):
    mlp, obs, actions, adv = _categorical_batch(12, B=8)
    theta = flat_params(mlp.parameters()).copy()
    with pytest.raises(ValueError, match=message):
        trpo_step(mlp, obs, actions, adv, **kwargs)
    np.testing.assert_array_equal(flat_params(mlp.parameters()), theta)


def test_bad_inputs_to_the_second_order_pieces_name_the_argument():
    mlp, obs, actions, adv = _categorical_batch(13, B=8)
    P = flat_params(mlp.parameters()).size
    theta = flat_params(mlp.parameters()).copy()
    for step_size in (float("nan"), -0.1):
        with pytest.raises(ValueError, match="step_size"):
            natural_gradient_step(mlp, obs, actions, adv, step_size=step_size)
    bad_obs = obs.copy()
    bad_obs[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"obs.*index \(2, 1\)"):
        trpo_step(mlp, bad_obs, actions, adv)
    np.testing.assert_array_equal(flat_params(mlp.parameters()), theta)
    with pytest.raises(ValueError, match=r"\bv\b.*index \(0,\)"):
        fisher_vector_product(mlp, obs, np.full(P, np.inf))
    with pytest.raises(ValueError, match="tol"):
        conjugate_gradient(lambda v: v, np.ones(3), tol=-1.0)
    with pytest.raises(ValueError, match="iters"):
        conjugate_gradient(lambda v: v, np.ones(3), iters=2.5)


# ----- the trainer objective and the demo --------------------------------------------------------------

def test_trainer_objective_trpo_keeps_every_update_within_delta():
    config = PPOConfig(objective="trpo", total_steps=512, num_envs=2, num_steps=64, hidden=(8,),
                       update_epochs=2, trpo_max_kl=0.005, eval_episodes=1)
    history = train(config).history
    assert len(history) == 4
    assert all(0.0 <= row["kl_exact"] <= 0.005 for row in history)
    assert any(row["kl_exact"] > 0.0 for row in history)   # the policy did move


def test_quick_demo_writes_figures_and_a_finite_summary(tmp_path):
    # Run as a reader runs it (a fresh process also gets the demos' one-BLAS-thread setting).
    demo = Path(__file__).resolve().parents[1] / "demos" / "trust_regions.py"
    proc = subprocess.run([sys.executable, str(demo), "--out", str(tmp_path), "--quick"],
                          cwd=tmp_path, env={**os.environ, "MPLBACKEND": "Agg"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("trust_regions_learning.png", "trust_regions_kl.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
        assert (tmp_path / name).stat().st_size > 10_000
    summary = json.loads((tmp_path / "trust_regions_summary.json").read_text())
    required = {"delta", "trpo_max_kl", "ppo_kl_p50", "ppo_kl_p95", "ppo_kl_max"}
    assert set(summary) == required | {"seconds_per_update"}      # exactly issue 9's keys
    assert set(summary["seconds_per_update"]) == {"pg", "ppo", "trpo"}
    details = json.loads((tmp_path / "trust_regions.json").read_text())
    assert details["summary"] == summary and max(details["kl_exact"]["trpo"]) <= summary["delta"]
    assert set(details["cpu_seconds_per_update_median"]) == {"pg", "ppo", "trpo"}
    numbers = [summary[k] for k in required] + list(summary["seconds_per_update"].values())
    assert all(isinstance(x, float) and math.isfinite(x) for x in numbers)
    assert summary["trpo_max_kl"] <= summary["delta"]
    assert summary["ppo_kl_p50"] <= summary["ppo_kl_p95"] <= summary["ppo_kl_max"]
