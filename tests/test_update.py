"""ppo_ref.train.update: the minibatch order, ppo_update against a longhand update from the
paper's equations, early stopping, the KL penalty against a frozen pi_old, and the table of update
rules."""
import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest

from ppo_ref.train.config import OBJECTIVES, PPOConfig
from ppo_ref.train.trainer import ppo_update, shuffled_minibatches, train
from ppo_ref.train.update import UPDATE_RULES, frozen_policy, trpo_update

TINY = PPOConfig(total_steps=6 * 64, num_envs=4, num_steps=16, num_minibatches=2,
                 update_epochs=2, hidden=(16,), eval_episodes=2, checkpoint_every=2)


# ----- the minibatches ---------------------------------------------------------------------------

def test_minibatches_are_per_epoch_permutations():
    mbs = shuffled_minibatches(10, epochs=3, num_minibatches=3, rng=np.random.default_rng(0))
    assert [len(m) for m in mbs] == [4, 3, 3] * 3
    for e in range(3):  # each epoch visits every sample exactly once
        assert sorted(np.concatenate(mbs[3 * e:3 * e + 3])) == list(range(10))


def test_minibatches_of_one_sample_skip_the_empty_pieces():
    # 3 samples, 5 minibatches asked: each epoch is 3 minibatches of one sample, no empty ones.
    mbs = shuffled_minibatches(3, epochs=2, num_minibatches=5, rng=np.random.default_rng(0))
    assert [len(m) for m in mbs] == [1] * 6
    assert sorted(np.concatenate(mbs[:3])) == sorted(np.concatenate(mbs[3:])) == [0, 1, 2]
    # num_minibatches = N*T is a valid config; the reset steps leave fewer samples than that.
    config = dataclasses.replace(TINY, num_minibatches=64, update_epochs=1, total_steps=128)
    assert all(0 < r["minibatches"] <= 64 for r in train(config).history)


# ----- ppo_update ------------------------------------------------------------------------------

def _naive_ppo_update(agent, batch, minibatches, *, objective, clip_eps, norm_adv, clip_vloss,
                      vf_coef, ent_coef, max_grad_norm, lr, eps):
    """ppo_update written out longhand from the paper's eq. 7 and 9, torch's clip_grad_norm_ and
    Adam's update rule (Kingma & Ba 2015, Algorithm 1); gradients by the autodiff."""
    from ppo_ref.autodiff import clip, maximum, minimum
    params = agent.parameters()
    m = [np.zeros_like(p.data) for p in params]
    v = [np.zeros_like(p.data) for p in params]
    for step, idx in enumerate(minibatches, start=1):
        dist = agent.distribution(batch["obs"][idx])
        values = agent.value(batch["obs"][idx])
        adv, ret, v_old = batch["advantages"][idx], batch["returns"][idx], batch["values"][idx]
        if norm_adv:
            adv = (adv - adv.mean()) / (adv.std(ddof=1) + 1e-8)
        ratio = (dist.log_prob(batch["actions"][idx]) - batch["logp"][idx]).exp()
        if objective == "clip":
            clipped = clip(ratio, 1 - clip_eps, 1 + clip_eps)
            policy_loss = -minimum(ratio * adv, clipped * adv).mean()
        else:
            policy_loss = -(ratio * adv).mean()
        if clip_vloss:
            v_clipped = v_old + clip(values - v_old, -clip_eps, clip_eps)
            value_loss = 0.5 * maximum((values - ret) ** 2, (v_clipped - ret) ** 2).mean()
        else:
            value_loss = 0.5 * ((values - ret) ** 2).mean()
        loss = policy_loss + vf_coef * value_loss - ent_coef * dist.entropy().mean()
        for p in params:
            p.grad = None
        loss.backward()
        grads = [p.grad for p in params]
        norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
        scale = min(1.0, max_grad_norm / (norm + 1e-6))
        for i, (p, g) in enumerate(zip(params, grads)):
            g = g * scale
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            m_hat, v_hat = m[i] / (1 - 0.9 ** step), v[i] / (1 - 0.999 ** step)
            p.data -= lr * m_hat / (np.sqrt(v_hat) + eps)


@pytest.mark.parametrize("options", [
    dict(objective="clip", norm_adv=True, clip_vloss=False, vf_coef=0.5, ent_coef=0.0,
         max_grad_norm=0.5),
    dict(objective="clip", norm_adv=False, clip_vloss=True, vf_coef=1.0, ent_coef=0.05,
         max_grad_norm=math.inf),
    dict(objective="unclipped", norm_adv=True, clip_vloss=True, vf_coef=0.25, ent_coef=0.01,
         max_grad_norm=0.1),
], ids=["clip-normadv-gradclip", "clip-vclip-entropy", "none-vclip-entropy-gradclip"])
def test_ppo_update_equals_a_longhand_update_with_each_toggle(options):
    from ppo_ref.optim import Adam
    from ppo_ref.train.policy import ActorCritic
    rng = np.random.default_rng(4)
    agent = ActorCritic(gym.spaces.Box(-np.inf, np.inf, (4,)), gym.spaces.Discrete(3), rng,
                        hidden=(8,))
    twin = ActorCritic(gym.spaces.Box(-np.inf, np.inf, (4,)), gym.spaces.Discrete(3),
                       np.random.default_rng(99), hidden=(8,))
    twin.load_state_dict(agent.state_dict())
    obs = rng.standard_normal((24, 4))
    actions, logp, values = agent.act(obs, rng)
    # pi_old and V_old a little away from the current networks, so that the ratio and value clips
    # both bite from the first minibatch on.
    batch = {"obs": obs, "actions": actions, "logp": logp + rng.normal(0, 0.3, 24),
             "values": values + rng.normal(0, 0.5, 24), "advantages": rng.standard_normal(24),
             "returns": rng.standard_normal(24)}
    minibatches = [np.arange(0, 24, 2), np.arange(1, 24, 2), np.arange(24)[::-1]]
    lr, eps, clip_eps = 0.01, 1e-5, 0.2
    config = dataclasses.replace(TINY, lr=lr, adam_eps=eps, clip_eps=clip_eps, **options)
    ppo_update(agent, Adam(agent.parameters(), lr=lr, eps=eps), batch, config, minibatches)
    _naive_ppo_update(twin, batch, minibatches, clip_eps=clip_eps, lr=lr, eps=eps, **options)
    moved = False
    for (k, got), want, start in zip(agent.state_dict().items(), twin.state_dict().values(),
                                     ActorCritic(gym.spaces.Box(-np.inf, np.inf, (4,)),
                                                 gym.spaces.Discrete(3), np.random.default_rng(4),
                                                 hidden=(8,)).state_dict().values()):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=k)
        moved |= not np.allclose(got, start)
    assert moved


def test_target_kl_stops_the_update_before_the_offending_step():
    result = train(dataclasses.replace(TINY, total_steps=64))
    agent = result.agent
    rng = np.random.default_rng(1)
    obs = rng.standard_normal((32, 4))
    actions, logp, values = agent.act(obs, rng)
    batch = {"obs": obs, "actions": actions, "logp": logp, "values": values,
             "advantages": rng.standard_normal(32), "returns": rng.standard_normal(32)}
    from ppo_ref.optim import Adam
    config = dataclasses.replace(TINY, target_kl=1e-12)
    infos = ppo_update(agent, Adam(agent.parameters(), lr=1e-2), batch, config,
                       shuffled_minibatches(32, 4, 2, rng))
    # minibatch 0 is measured at pi = pi_old (approx_kl 0 <= target): a step is taken;
    # minibatch 1 then measures approx_kl > 1e-12 and the update stops without stepping.
    assert len(infos) == 2 and infos[0]["approx_kl"] == 0.0
    assert infos[1]["stopped"] and infos[1]["approx_kl"] > 1e-12


def test_kl_penalty_measures_kl_from_a_frozen_pi_old_even_when_log_std_moves():
    """kl_fixed on a Gaussian policy: the KL seen by the second minibatch is KL(pi_old || pi
    after the first step), with pi_old's log_std frozen, not the live parameter Adam moves."""
    from ppo_ref.optim import Adam
    from ppo_ref.train.policy import ActorCritic
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(0)
    agent = ActorCritic(env.observation_space, env.action_space, rng, hidden=(8,))
    obs = rng.standard_normal((16, 3))
    actions, logp, values = agent.act(obs, rng)
    batch = {"obs": obs, "actions": actions, "logp": logp, "values": values,
             "advantages": rng.standard_normal(16), "returns": rng.standard_normal(16)}
    mu_old = agent.distribution(obs).mean.data.copy()
    log_std_old = agent.log_std.data.copy()
    snapshots = []

    class RecordingAdam(Adam):
        def step(self):
            super().step()
            dist = agent.distribution(obs)
            snapshots.append((dist.mean.data.copy(), agent.log_std.data.copy()))

    config = dataclasses.replace(TINY, env_id="Pendulum-v1", objective="kl_fixed",
                                 norm_adv=False)
    everything = np.arange(16)
    infos = ppo_update(agent, RecordingAdam(agent.parameters(), lr=0.1), batch, config,
                       [everything, everything])
    mu1, log_std1 = snapshots[0]
    assert np.abs(log_std1 - log_std_old).max() > 1e-3      # the step did move log_std
    # KL(N(mu0, s0) || N(mu1, s1)) per dimension, summed over D, averaged over states
    s0, s1 = np.exp(log_std_old), np.exp(log_std1)
    kl = (np.log(s1 / s0) + (s0 ** 2 + (mu_old - mu1) ** 2) / (2 * s1 ** 2) - 0.5).sum(-1)
    assert infos[0]["kl"] == pytest.approx(0.0, abs=1e-12)
    assert infos[1]["kl"] == pytest.approx(kl.mean(), rel=1e-9)


# ----- the update rules and pi_old ---------------------------------------------------------------

def test_every_objective_has_one_update_rule():
    assert set(UPDATE_RULES) == set(OBJECTIVES)
    assert UPDATE_RULES["trpo"] is trpo_update
    assert all(UPDATE_RULES[o] is ppo_update for o in OBJECTIVES if o != "trpo")


@pytest.mark.parametrize("objective", ["clip", "kl_fixed", "trpo"])
def test_pi_old_is_frozen_once_per_update_on_the_whole_batch(objective, monkeypatch):
    from ppo_ref.train import trainer, update
    frozen_on = []

    def counting(agent, obs):
        frozen_on.append(len(obs))
        return frozen_policy(agent, obs)
    monkeypatch.setattr(trainer, "frozen_policy", counting)
    monkeypatch.setattr(update, "frozen_policy", counting)
    rows = train(dataclasses.replace(TINY, objective=objective)).history
    assert len(frozen_on) == len(rows) == TINY.num_updates
    # the batch is every step of the rollout but the reset steps: at most N*T, and at least
    # N*T less one reset step per episode that ended in the rollout
    assert all(TINY.batch_size // 2 < n <= TINY.batch_size for n in frozen_on)


def test_ppo_update_with_pi_old_given_equals_freezing_it_itself():
    from ppo_ref.optim import Adam
    from ppo_ref.train.policy import ActorCritic
    env = gym.make("Pendulum-v1")
    agents = [ActorCritic(env.observation_space, env.action_space, np.random.default_rng(0),
                          hidden=(8,)) for _ in range(2)]
    rng = np.random.default_rng(1)
    obs = rng.standard_normal((16, 3))
    actions, logp, values = agents[0].act(obs, rng)
    batch = {"obs": obs, "actions": actions, "logp": logp, "values": values,
             "advantages": rng.standard_normal(16), "returns": rng.standard_normal(16)}
    config = dataclasses.replace(TINY, env_id="Pendulum-v1", objective="kl_fixed")
    minibatches = [np.arange(0, 16, 2), np.arange(1, 16, 2), np.arange(16)]
    given = ppo_update(agents[0], Adam(agents[0].parameters(), lr=0.05), batch, config,
                       minibatches, pi_old=frozen_policy(agents[0], obs))
    itself = ppo_update(agents[1], Adam(agents[1].parameters(), lr=0.05), batch, config,
                        minibatches)
    assert given == itself and given[-1]["kl"] > 0
    for (k, a), b in zip(agents[0].state_dict().items(), agents[1].state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_keep_freed_memory_runs_once_and_leaves_a_users_setting_alone():
    """The allocator setting is made once per process, on glibc, unless MALLOC_TRIM_THRESHOLD_
    says the user chose (checked in child processes, each with its own first call)."""
    import os
    import subprocess
    import sys

    code = ("from ppo_ref.train.update import keep_freed_memory as k; "
            "print(k(), k(), k.cache_info().misses)")
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    mine = subprocess.run([sys.executable, "-c", code], env={**env, "MALLOC_TRIM_THRESHOLD_": "0"},
                          capture_output=True, text=True, check=True).stdout.split()
    assert mine == ["False", "False", "1"]
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
    assert default[2] == "1" and default[0] == default[1]
    if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
        assert default[0] == "True"
