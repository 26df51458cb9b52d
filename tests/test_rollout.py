"""Tests for ppo_ref/rollout.py. The acceptance test steps a scripted environment whose
rewards and observations are known, with a stub agent whose value is the observation
itself, and checks the GAE advantages against numbers worked out by hand below."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from ppo_ref.gae import compute_gae
from ppo_ref.train.normalize import ObservationNormalizer, RewardScaler
from ppo_ref.train.rollout import RolloutCollector, dumps_env, loads_env, make_vec_env


class ScriptedEnv(gym.Env):
    """Episode 0 lasts 3 steps and terminates; episode 1 lasts 2 steps and is truncated;
    later episodes never end. Observations and rewards come from the tables below
    (times `scale`), so V(obs) = obs is a value function the test controls."""
    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)
    action_space = gym.spaces.Discrete(2)
    OBS = {0: [0.5, 1.5, 2.5, 100.0], 1: [0.25, 0.75, 8.0], 2: [-1.0, 2.0, 3.0, 4.0, 5.0]}
    REWARDS = {0: [1.0, 2.0, 3.0], 1: [4.0, 5.0], 2: [6.0, 7.0, 8.0, 9.0]}

    def __init__(self, scale=1.0, nan_at=None, nan_in="obs"):
        self.scale, self.nan_at, self.nan_in = scale, nan_at, nan_in
        self.episode, self.j, self.calls = -1, 0, 0

    def _obs(self):
        return np.array([self.OBS[min(self.episode, 2)][self.j] * self.scale])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.j = self.episode + 1, 0
        return self._obs(), {}

    def step(self, action):
        reward = self.REWARDS[min(self.episode, 2)][self.j] * self.scale
        self.j += 1
        self.calls += 1
        obs = self._obs()
        if self.calls == self.nan_at:
            if self.nan_in == "obs":
                obs = np.array([np.nan])
            else:
                reward = np.inf
        return obs, reward, self.episode == 0 and self.j == 3, self.episode == 1 and self.j == 2, {}


class ValueIsObsAgent:
    """Stub agent: V(obs) = obs[0]; random actions from the rng; log-prob log(1/2)."""
    dtype = np.float64

    def sample(self, obs, rng):
        return rng.integers(2, size=obs.shape[0])

    def evaluate(self, obs, actions):
        return np.full(obs.shape[0], np.log(0.5)), obs[:, 0].copy()

    def value(self, obs):
        return obs[:, 0].copy()

    def env_action(self, actions):
        return actions


def collector_for(*env_kwargs, num_steps=8, **kwargs):
    envs = SyncVectorEnv([lambda kw=kw: ScriptedEnv(**kw) for kw in env_kwargs])
    return RolloutCollector(envs, ValueIsObsAgent(), num_steps, np.random.default_rng(0), **kwargs)


def test_gae_on_a_rollout_with_a_termination_and_a_truncation_matches_hand_computation():
    gamma, lam = 0.9, 0.8
    buf = collector_for({}).collect()
    # Rows (next-step autoreset): 0-2 episode 0 (terminates after row 2), row 3 the reset
    # step (acts on the final obs 100.0, ignored), rows 4-5 episode 1 (truncated after
    # row 5), row 6 the reset step, row 7 episode 2, bootstrapped from V(2.0).
    np.testing.assert_array_equal(buf.valid[:, 0], [1, 1, 1, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(buf.terminated[:, 0], [0, 0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(buf.truncated[:, 0] & buf.valid[:, 0], [0, 0, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(buf.values[:, 0], [0.5, 1.5, 2.5, 100.0, 0.25, 0.75, 8.0, -1.0])
    np.testing.assert_array_equal(buf.rewards[:, 0], [1, 2, 3, 0, 4, 5, 0, 6])

    advantages, returns = compute_gae(buf.rewards, buf.values, buf.next_values,
                                      buf.terminated, buf.truncated, gamma, lam)
    advantages = np.where(buf.valid, advantages, 0.0)   # invalid rows leave the loss
    gl = gamma * lam                                    # 0.72
    d0 = 1 + 0.9 * 1.5 - 0.5                            # 1.85
    d1 = 2 + 0.9 * 2.5 - 1.5                            # 2.75
    d2 = 3 - 2.5                                        # terminated: no bootstrap from 100.0
    d4 = 4 + 0.9 * 0.75 - 0.25                          # 4.425
    d5 = 5 + 0.9 * 8.0 - 0.75                           # truncated: bootstrap from V(final) = 8
    d7 = 6 + 0.9 * 2.0 - (-1.0)                         # end of rollout: bootstrap from V(2.0)
    expected = [d0 + gl * (d1 + gl * d2), d1 + gl * d2, d2, 0.0, d4 + gl * d5, d5, 0.0, d7]
    np.testing.assert_allclose(advantages[:, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(expected, [4.0892, 3.11, 0.5, 0, 12.669, 11.45, 0, 8.8], rtol=1e-12)
    valid = buf.valid[:, 0]
    np.testing.assert_allclose(returns[valid, 0], np.array(expected)[valid] + buf.values[valid, 0])

    # The buffer's own helper gives the same numbers, and flatten keeps only valid rows.
    adv2, ret2 = buf.compute_advantages(gamma, lam)
    np.testing.assert_allclose(adv2[:, 0], expected, rtol=1e-12)
    batch = buf.flatten(adv2, ret2)
    np.testing.assert_allclose(batch["advantages"], np.array(expected)[valid], rtol=1e-12)
    np.testing.assert_array_equal(batch["obs"][:, 0], [0.5, 1.5, 2.5, 0.25, 0.75, -1.0])


class PaysOnResetSteps(gym.vector.VectorWrapper):
    """Returns a reward of 1000 on every reset step (gymnasium's own vector envs return 0 there):
    if that reward reached an advantage, a return, the reward scaler or an episode's return,
    the numbers would show it."""

    def reset(self, **kwargs):
        self.resetting = np.zeros(self.num_envs, dtype=bool)
        return self.env.reset(**kwargs)

    def step(self, actions):
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        rewards = np.where(self.resetting, 1000.0, rewards)
        self.resetting = terminated | truncated
        return obs, rewards, terminated, truncated, info


def test_a_reset_steps_reward_enters_no_advantage_return_statistic_or_scaler():
    def collect(wrap):
        envs = SyncVectorEnv([ScriptedEnv])
        envs = PaysOnResetSteps(envs) if wrap else envs
        scaler = RewardScaler(1, gamma=0.9)
        buf = RolloutCollector(envs, ValueIsObsAgent(), 8, np.random.default_rng(0),
                               reward_scaler=scaler).collect()
        return buf, buf.compute_advantages(0.9, 0.8), scaler.state_dict()
    plain, (adv, ret), scaler = collect(wrap=False)      # advantages checked by hand above
    paid, (adv_paid, ret_paid), scaler_paid = collect(wrap=True)
    # the two reset steps' rewards are in the buffer (scaled, but the scaler does not learn from
    # them) and nowhere else
    assert (~paid.valid).sum() == 2 and (paid.rewards[~paid.valid] > 100).all()
    assert (plain.rewards[~plain.valid] == 0).all()
    np.testing.assert_array_equal(adv_paid, adv)
    np.testing.assert_array_equal(ret_paid, ret)
    np.testing.assert_array_equal(paid.episode_returns, [1 + 2 + 3, 4 + 5])
    for key in ("mean", "var", "count", "returns"):
        np.testing.assert_array_equal(scaler_paid[key], scaler[key], err_msg=key)


def test_episode_statistics_are_unscaled_returns_and_lengths_of_finished_episodes():
    buf = collector_for({}, reward_scaler=RewardScaler(1, gamma=0.9)).collect()
    np.testing.assert_array_equal(buf.episode_returns, [1 + 2 + 3, 4 + 5])
    np.testing.assert_array_equal(buf.episode_lengths, [3, 2])
    assert not np.allclose(buf.rewards[buf.valid], [1, 2, 3, 4, 5, 6])  # the learner's are scaled


def test_environments_are_independent_columns():
    # Env 1 is env 0 with rewards and observations (hence values) times 10: GAE is linear.
    buf = collector_for({}, {"scale": 10.0}).collect()
    adv, _ = buf.compute_advantages(0.9, 0.8)
    np.testing.assert_allclose(adv[:, 1], 10 * adv[:, 0], rtol=1e-12)


def test_next_values_are_next_rows_values_and_the_final_bootstrap():
    c = collector_for({}, num_steps=3)
    buf = c.collect()
    np.testing.assert_array_equal(buf.next_values[:, 0], [1.5, 2.5, 100.0])
    buf = c.collect()  # continues: the reset step, then episode 1
    np.testing.assert_array_equal(buf.values[:, 0], [100.0, 0.25, 0.75])
    np.testing.assert_array_equal(buf.valid[:, 0], [False, True, True])
    np.testing.assert_array_equal(buf.next_values[:, 0], [0.25, 0.75, 8.0])


def test_observation_normaliser_hook_stores_normalised_observations():
    c = collector_for({}, num_steps=3, obs_normalizer=ObservationNormalizer((1,)))
    buf = c.collect()
    seen = []
    for t, raw in enumerate([0.5, 1.5, 2.5]):  # updated with each obs, then normalised
        seen.append(raw)
        expected = (raw - np.mean(seen)) / np.sqrt(np.var(seen) + 1e-8)
        assert buf.obs[t, 0, 0] == pytest.approx(expected)


@pytest.mark.parametrize("nan_in, what", [("obs", "observation"), ("reward", "reward")])
def test_non_finite_env_output_names_the_env_index_and_step(nan_in, what):
    c = collector_for({}, {"nan_at": 3, "nan_in": nan_in})
    with pytest.raises(ValueError, match=rf"environment 1 emitted a non-finite {what}.*"
                                         r"vector step 2 \(rollout step 2\)"):
        c.collect()


def test_a_non_finite_reward_in_a_later_rollout_names_its_vector_step_and_rollout_step():
    # Env 1's 6th step call is vector step 7 (steps 3 and 6 are reset steps, which call reset):
    # the second rollout of 4 steps, its step 3.
    c = collector_for({}, {"nan_at": 6, "nan_in": "reward"}, num_steps=4)
    c.collect()
    with pytest.raises(ValueError, match=r"environment 1 emitted a non-finite reward.*"
                                         r"vector step 7 \(rollout step 3\)"):
        c.collect()


def test_a_non_finite_reward_is_reported_before_a_later_non_finite_observation():
    # env 0's reward at vector step 4 is inf; env 1's observation at vector step 7 is nan
    c = collector_for({"nan_at": 4, "nan_in": "reward"}, {"nan_at": 6, "nan_in": "obs"})
    with pytest.raises(ValueError, match=r"environment 0 emitted a non-finite reward.*"
                                         r"vector step 4 \(rollout step 4\)"):
        c.collect()


def test_a_non_finite_reward_never_reaches_the_reward_scaler():
    scaler = RewardScaler(2, gamma=0.9)
    c = collector_for({}, {"nan_at": 2, "nan_in": "reward"}, reward_scaler=scaler)
    with pytest.raises(ValueError, match=r"environment 1 emitted a non-finite reward"):
        c.collect()
    state = scaler.state_dict()
    for key in ("mean", "var", "count", "returns"):
        assert np.isfinite(state[key]).all(), key


class RandomEpisodes(gym.Env):
    """Episodes of random length that terminate or are truncated, with rewards of magnitudes
    from 1e-8 to 1e8 (and signed zeros): summed in another order, the returns' bits differ."""
    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, seed):
        self.r = np.random.default_rng(seed)

    def reset(self, *, seed=None, options=None):
        return np.zeros(1), {}

    def step(self, action):
        u = self.r.random()
        reward = self.r.choice([self.r.standard_normal() * 10.0 ** self.r.integers(-8, 9),
                                -0.0, 0.0])
        return np.zeros(1), reward, bool(u < 0.08), bool(0.08 <= u < 0.12), {}


def test_episode_statistics_equal_a_step_by_step_sum_bit_for_bit():
    envs = SyncVectorEnv([lambda i=i: RandomEpisodes(i) for i in range(5)])
    c = RolloutCollector(envs, ValueIsObsAgent(), 40, np.random.default_rng(0))
    running, length = np.zeros(5), np.zeros(5, dtype=np.int64)   # the loop a reader would write
    for _ in range(4):
        buf = c.collect()
        returns, lengths = [], []
        for t in range(40):
            valid = buf.valid[t]
            running += np.where(valid, buf.rewards[t], 0.0)
            length += valid
            ended = (buf.terminated[t] | buf.truncated[t]) & valid
            returns += running[ended].tolist()
            lengths += length[ended].tolist()
            running[ended], length[ended] = 0.0, 0
        assert len(returns) > 5
        assert buf.episode_returns.tobytes() == np.array(returns).tobytes()
        np.testing.assert_array_equal(buf.episode_lengths, lengths)
        assert c.episode_return.tobytes() == running.tobytes()
        np.testing.assert_array_equal(c.episode_length, length)


class BadShapeAfter(ScriptedEnv):
    """ScriptedEnv whose step number `k` returns an observation of shape (2,), not (1,)."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def step(self, action):
        obs, *rest = super().step(action)
        return (np.zeros(2) if self.calls == self.k else obs), *rest


def test_an_observation_of_the_wrong_shape_names_the_env_index():
    envs = SyncVectorEnv([ScriptedEnv, lambda: BadShapeAfter(k=2)])
    c = RolloutCollector(envs, ValueIsObsAgent(), 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"environment 1's step\(\) returned an observation of "
                                         r"shape \(2,\), but its observation space has shape "
                                         r"\(1,\)"):
        c.collect()


class BareReset(ScriptedEnv):
    """The pre-gymnasium-1.0 API: reset returns the observation alone."""

    def reset(self, *, seed=None, options=None):
        return super().reset(seed=seed)[0]


@pytest.mark.parametrize("bad", [0, 1])
def test_reset_returning_a_bare_observation_names_the_env_index(bad):
    envs = SyncVectorEnv([BareReset if i == bad else ScriptedEnv for i in range(2)])
    c = RolloutCollector(envs, ValueIsObsAgent(), 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match=rf"environment {bad}'s reset\(\) returned an array of "
                                         r"shape \(1,\), not the \(observation, info\) pair"):
        c.collect()


def test_unknown_env_id_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="NoSuchEnv-v0"):
        make_vec_env("NoSuchEnv-v0", 2)


def test_env_whose_dependency_is_missing_is_a_value_error_naming_it(monkeypatch):
    def missing(*args, **kwargs):
        raise gym.error.DependencyNotInstalled("Box2D is not installed")
    monkeypatch.setattr(gym, "make_vec", missing)
    with pytest.raises(ValueError, match="cannot make 'LunarLander-v3'.*Box2D is not installed"):
        make_vec_env("LunarLander-v3", 2)


def test_make_vec_env_uses_the_numpy_cartpole_and_sync_elsewhere():
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
    assert isinstance(make_vec_env("CartPole-v1", 3), CartPoleVectorEnv)
    assert isinstance(make_vec_env("Pendulum-v1", 2), SyncVectorEnv)
    envs = make_vec_env(lambda: gym.make("CartPole-v1"), 2)
    assert isinstance(envs, SyncVectorEnv) and envs.num_envs == 2


def test_same_step_autoreset_is_rejected():
    envs = SyncVectorEnv([ScriptedEnv], autoreset_mode=AutoresetMode.SAME_STEP)
    with pytest.raises(ValueError, match="NEXT_STEP"):
        RolloutCollector(envs, ValueIsObsAgent(), 4, np.random.default_rng(0))


def _buffers_equal(a, b):
    for name in ("obs", "actions", "logp", "values", "rewards", "terminated", "truncated",
                 "next_values", "valid", "episode_returns", "episode_lengths"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("make", [lambda: make_vec_env("CartPole-v1", 3),
                                  lambda: make_vec_env(lambda: gym.make("CartPole-v1"), 2)])
def test_resume_from_pickled_env_and_collector_state_continues_exactly(make):
    def new_collector(envs):
        return RolloutCollector(envs, ValueIsObsAgent(), 64, np.random.default_rng(7), seed=3,
                                obs_normalizer=ObservationNormalizer((4,)))
    straight = new_collector(make())
    straight.collect()
    env_bytes, state = dumps_env(straight.envs), straight.state_dict()
    expected = straight.collect()

    resumed = new_collector(loads_env(env_bytes))
    resumed.rng = np.random.default_rng(999)  # overwritten by load_state_dict
    resumed.load_state_dict(state)
    _buffers_equal(resumed.collect(), expected)
    assert resumed.global_step == straight.global_step


def test_same_seed_gives_identical_rollouts():
    a = RolloutCollector(make_vec_env("CartPole-v1", 2), ValueIsObsAgent(), 50,
                         np.random.default_rng(1)).collect()
    b = RolloutCollector(make_vec_env("CartPole-v1", 2), ValueIsObsAgent(), 50,
                         np.random.default_rng(1)).collect()
    _buffers_equal(a, b)


def test_real_agent_on_pendulum_truncation_makes_the_next_row_invalid_and_keeps_actions_unclipped():
    from ppo_ref.train.policy import ActorCritic
    envs = make_vec_env("Pendulum-v1", 2)
    agent = ActorCritic(envs.single_observation_space, envs.single_action_space,
                        np.random.default_rng(0), hidden=(8,))
    agent.log_std.data[:] = 1.5  # std 4.5 against bounds of +-2: many samples fall outside
    buf = RolloutCollector(envs, agent, 205, np.random.default_rng(0), seed=0).collect()
    # Pendulum's TimeLimit truncates after 200 steps: row 199 truncated, row 200 the reset step.
    assert buf.truncated[199].all() and not buf.terminated.any()
    assert (~buf.valid[200]).all() and buf.valid[:200].all() and buf.valid[201:].all()
    np.testing.assert_array_equal(buf.episode_lengths, [200, 200])
    assert buf.actions.shape == (205, 2, 1) and np.abs(buf.actions).max() > 2.0
    assert len(buf.flatten(*buf.compute_advantages())["obs"]) == 205 * 2 - 2


def test_real_agent_on_cartpole_counts_steps_and_episodes():
    from ppo_ref.train.policy import ActorCritic
    envs = make_vec_env("CartPole-v1", 4)
    agent = ActorCritic(envs.single_observation_space, envs.single_action_space,
                        np.random.default_rng(0))
    c = RolloutCollector(envs, agent, 128, np.random.default_rng(0), seed=0)
    buf = c.collect()
    assert c.global_step == 128 * 4
    # every finished episode is followed by exactly one invalid (reset) row, unless it
    # ended on the last row
    ended_before_last = (buf.terminated | buf.truncated)[:-1] & buf.valid[:-1]
    assert (~buf.valid).sum() == ended_before_last.sum()
    assert len(buf.episode_returns) == ((buf.terminated | buf.truncated) & buf.valid).sum()
    # CartPole pays 1 per step, so an episode's return equals its length
    np.testing.assert_array_equal(buf.episode_returns, buf.episode_lengths)


def test_batched_logp_and_values_equal_a_row_by_row_numpy_forward():
    # collect() evaluates log pi_old and V_old once over all T*N rows; written out here row by
    # row in plain numpy (tanh MLPs, log-softmax), they must agree.
    from ppo_ref.train.policy import ActorCritic

    def forward(net, x):
        for layer in net.layers[:-1]:
            x = np.tanh(x @ layer.weight.data + layer.bias.data)
        return x @ net.layers[-1].weight.data + net.layers[-1].bias.data

    envs = make_vec_env("CartPole-v1", 3)
    agent = ActorCritic(envs.single_observation_space, envs.single_action_space,
                        np.random.default_rng(0), hidden=(16, 16))
    buf = RolloutCollector(envs, agent, 40, np.random.default_rng(0), seed=0).collect()
    for t in range(40):
        logits = forward(agent.pi, buf.obs[t])
        log_softmax = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1))[:, None] \
            - logits.max(1)[:, None]
        np.testing.assert_allclose(buf.logp[t], log_softmax[np.arange(3), buf.actions[t]],
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(buf.values[t], forward(agent.vf, buf.obs[t])[:, 0],
                                   rtol=1e-12, atol=1e-12)
