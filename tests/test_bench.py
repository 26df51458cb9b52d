"""The benchmark: its hand-written baseline computes the trainer's update, and --quick runs."""
import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from benchmarks.handwritten import HandwrittenPPO
from ppo_ref.losses import normalize_advantages, ppo_loss
from ppo_ref.optim import Adam
from ppo_ref.train.policy import ActorCritic
from ppo_ref.train.trainer import PPOConfig, ppo_update

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (4,), np.float64)
ACT_SPACE = gym.spaces.Discrete(3)


def _setup(dtype=np.float64, ent_coef=0.01, norm_adv=True):
    rng = np.random.default_rng(0)
    agent = ActorCritic(OBS_SPACE, ACT_SPACE, rng, hidden=(8, 6), dtype=dtype)
    # Perturb the weights so that no gradient is trivially tiny (policy head gain is 0.01).
    for p in agent.parameters():
        p.data += 0.3 * rng.standard_normal(p.shape).astype(dtype)
    B = 32
    batch = {"obs": rng.standard_normal((B, 4)).astype(dtype),
             "actions": rng.integers(0, 3, B),
             "advantages": rng.standard_normal(B).astype(dtype),
             "returns": rng.standard_normal(B).astype(dtype),
             "values": rng.standard_normal(B).astype(dtype)}
    with_logp = agent.distribution(batch["obs"]).log_prob(batch["actions"]).data
    # Old log-probs spread around the new ones, so some ratios fall outside [0.8, 1.2].
    batch["logp"] = (with_logp + 0.3 * rng.standard_normal(B)).astype(dtype)
    hand = HandwrittenPPO(4, 3, hidden=(8, 6), dtype=dtype, lr=1e-2, clip_eps=0.2, vf_coef=0.7,
                          ent_coef=ent_coef, max_grad_norm=0.5, norm_adv=norm_adv)
    hand.load_agent_state(agent.state_dict())
    return agent, batch, hand


def _flat_grads(agent):
    # HandwrittenPPO's layout: pi W0 b0 W1 b1 ..., then vf W0 b0 ... (each weight (in, out)).
    return np.concatenate([p.grad.ravel() for p in agent.pi.parameters() + agent.vf.parameters()])


@pytest.mark.parametrize("norm_adv", [True, False])
def test_handwritten_gradients_equal_autodiff_gradients(norm_adv):
    agent, b, hand = _setup(norm_adv=norm_adv)
    adv = normalize_advantages(b["advantages"]) if norm_adv else b["advantages"]
    dist, values = agent.distribution(b["obs"]), agent.value(b["obs"])
    loss, info = ppo_loss(dist.log_prob(b["actions"]), b["logp"], adv, values, b["returns"],
                          dist.entropy(), clip_eps=0.2, vf_coef=0.7, ent_coef=0.01)
    assert 0 < info["clip_fraction"] < 1           # both branches of the clip are exercised
    loss.backward()
    hand_loss = hand.loss_and_grad(b["obs"], b["actions"], b["logp"], b["advantages"],
                                   b["returns"])
    assert hand_loss == pytest.approx(float(loss.data), rel=1e-12)
    np.testing.assert_allclose(hand.grad, _flat_grads(agent), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_handwritten_step_matches_ppo_update_step(dtype):
    """Loss, gradient clip and Adam together: three minibatch steps give the same weights."""
    agent, b, hand = _setup(dtype=dtype)
    config = PPOConfig(clip_eps=0.2, vf_coef=0.7, ent_coef=0.01, max_grad_norm=0.5, lr=1e-2)
    optimizer = Adam(agent.parameters(), lr=1e-2)
    idx = [np.arange(32)] * 3
    ppo_update(agent, optimizer, b, config, idx, clip_eps=0.2)
    for i in idx:
        hand.step(b["obs"][i], b["actions"][i], b["logp"][i], b["advantages"][i],
                  b["returns"][i])
    weights = np.concatenate([p.data.ravel() for p in agent.pi.parameters() + agent.vf.parameters()])
    tol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(hand.flat, weights, rtol=tol, atol=tol)


def test_quick_benchmark_writes_exactly_the_issue_keys_with_finite_positive_figures(tmp_path):
    """`python -m benchmarks.bench --quick`: one short round of each phase and one seed trained
    until solved (seconds). Only the output's form is checked, never a speed."""
    from benchmarks.bench import KEYS

    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    assert "update_efficiency" in proc.stdout                 # the printed table
    result = json.loads(out.read_text())
    assert tuple(result) == KEYS
    assert set(KEYS) == {"raw_env_steps_per_s", "rollout_steps_per_s", "rollout_efficiency",
                         "update_samples_per_s", "handwritten_mlp_samples_per_s",
                         "update_efficiency", "update_samples_per_env_step",
                         "train_steps_per_s", "time_to_solve_s", "steps_to_solve",
                         "floor_us_per_step", "roofline_fraction", "floor_breakdown_us",
                         "trainer_breakdown_us", "seeds", "machine"}
    for key in KEYS[:-4]:
        value = result[key]
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (key, value)
    parts = result["floor_breakdown_us"]
    assert set(parts) == {"env", "rollout_matmul", "rollout_activation", "update_matmul",
                          "update_activation"} and all(v > 0 for v in parts.values())
    assert result["floor_us_per_step"] == pytest.approx(sum(parts.values()))
    # 20 epochs over the kept rows of each batch of 8 x 32 steps: at most 20 per env step; each
    # episode end drops the next step's row, and CartPole episodes last well over 3 steps
    assert 20 * 3 / 4 <= result["update_samples_per_env_step"] <= 20
    trainer = result["trainer_breakdown_us"]
    assert set(trainer) == {"rollout", "update", "rest"}
    assert trainer["rollout"] == pytest.approx(1e6 / result["rollout_steps_per_s"])
    assert trainer["update"] == pytest.approx(
        1e6 * result["update_samples_per_env_step"] / result["update_samples_per_s"])
    assert sum(trainer.values()) == pytest.approx(1e6 / result["train_steps_per_s"])
    assert "the hand-written update" in proc.stdout
    (seed,) = result["seeds"]
    assert seed["seed"] == 0 and seed["steps_to_solve"] == result["steps_to_solve"]
    machine = result["machine"]
    assert {"cpu", "cores", "numpy", "blas"} <= set(machine) and machine["cores"] >= 1


def test_float32_training_also_solves_cartpole():
    """The benchmark's float32 option is only a lever if float32 training learns too: the
    CartPole-v1 preset in float32, seed 0, reaches the solve mark (stopped there, a few seconds)."""
    from benchmarks.bench import train_until_solved
    from ppo_ref.train.trainer import PRESETS

    run = train_until_solved(dataclasses.replace(PRESETS["CartPole-v1"], dtype="float32"),
                             stop_when_solved=True)
    assert run["steps_to_solve"] is not None and run["steps_to_solve"] <= 100_000


def test_floor_counts_each_primitive_a_step_needs_times_the_work_per_env_step():
    """With a clock that advances one tick per reading, every primitive timed costs 1/100 tick per
    call, so the floor's parts count the primitives: per MLP of L layers, L matrix products and
    L-1 tanh forward (the rollout, at N rows, per env step 1/N of them); in the update, L forward,
    L dW and L-1 dx products, L-1 tanh and L-1 derivatives, times epochs x minibatches / batch."""
    from benchmarks.bench import measure_floor

    ticks = iter(range(10**6))
    config = PPOConfig(num_envs=4, num_steps=16, update_epochs=3, num_minibatches=2,
                       hidden=(8, 8))
    floor = measure_floor(config, raw_env_steps_per_s=1e5, obs_dim=3, n_actions=2,
                          clock=lambda: next(ticks))
    parts, call = floor["floor_breakdown_us"], 1e6 / 100        # µs per call of a primitive
    passes = 3 * 2 / 64                                           # per env step
    assert parts["env"] == pytest.approx(10.0)
    assert parts["rollout_matmul"] == pytest.approx(2 * 3 * call / 4)      # two nets, L = 3
    assert parts["rollout_activation"] == pytest.approx(2 * 2 * call / 4)
    assert parts["update_matmul"] == pytest.approx(2 * (3 + 3 + 2) * call * passes)
    assert parts["update_activation"] == pytest.approx(2 * (2 + 2) * call * passes)
    assert floor["floor_us_per_step"] == pytest.approx(sum(parts.values()))


def _head_inputs(B=24, A=3):
    """Logits, values and a minibatch whose ratios fall on both sides of the clip band."""
    rng = np.random.default_rng(3)
    logits, values = rng.standard_normal((B, A)), rng.standard_normal(B)
    actions = rng.integers(0, A, B)
    logp = logits[np.arange(B), actions] - np.log(np.exp(logits).sum(axis=1))
    logp_old = logp + 0.3 * rng.standard_normal(B)
    return logits, values, actions, logp_old, rng.standard_normal(B), rng.standard_normal(B)


def test_loss_head_node_equals_ppo_loss_and_its_gradients():
    """benchmarks.loss_head computes the loss head as one node: the same loss, diagnostics and
    gradients as ppo_loss over the trainer's primitives, to rounding."""
    from benchmarks.loss_head import loss_head_node
    from ppo_ref.autodiff import Tensor
    from ppo_ref.distributions import Categorical

    logits0, values0, actions, logp_old, adv, returns = _head_inputs()
    config = PPOConfig(vf_coef=0.7, ent_coef=0.01)
    got, want = {}, {}
    for out, build in ((got, "node"), (want, "ppo_loss")):
        logits, values = Tensor(logits0, requires_grad=True), Tensor(values0, requires_grad=True)
        if build == "node":
            loss, info = loss_head_node(logits, values, actions, logp_old, adv, returns, config, 0.2)
        else:
            dist = Categorical(logits)
            loss, info = ppo_loss(dist.log_prob(actions), logp_old, adv, values, returns,
                                  dist.entropy(), clip_eps=0.2, vf_coef=0.7, ent_coef=0.01)
        loss.backward()
        out.update(info, g_logits=logits.grad, g_values=values.grad)
    assert 0 < want["clip_fraction"] < 1           # both branches of the clip are exercised
    for key in ("loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"):
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-15), key
    np.testing.assert_allclose(got["g_logits"], want["g_logits"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got["g_values"], want["g_values"], rtol=1e-10, atol=1e-14)


def test_loss_head_node_gradients_match_finite_differences():
    from benchmarks.loss_head import loss_head_node
    from ppo_ref.gradcheck import gradcheck

    logits, values, actions, logp_old, adv, returns = _head_inputs()
    config = PPOConfig(vf_coef=0.7, ent_coef=0.01)
    report = gradcheck(lambda z, v: loss_head_node(z, v, actions, logp_old, adv, returns,
                                                   config, 0.2)[0], [logits, values])
    assert report.passed, report


def test_quick_loss_head_benchmark_prints_both_efficiencies():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.loss_head", "--quick"],
                          capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    figures = dict(line.rsplit(None, 1) for line in proc.stdout.splitlines()[1:])
    assert {"update_efficiency", "loss_head_update_efficiency"} <= set(figures)
    assert all(float(v.replace(",", "")) > 0 for v in figures.values())
