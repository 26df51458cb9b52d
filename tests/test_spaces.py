"""ppo_ref.train.spaces: observations of every space an MLP can take reach the policy as
gymnasium's `flatten` of them; images and spaces with no flat form are refused; the one-hot
columns are the ones hand-counted; runs on such envs resume bit for bit; and small bandits with
MultiDiscrete and MultiBinary actions are learned to their known optimum."""
import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.spaces.utils import flatten

from ppo_ref.train.config import PPOConfig
from ppo_ref.train.rollout import make_vec_env
from ppo_ref.train.runs import TIMING_COLUMNS, read_metrics
from ppo_ref.train.spaces import check_observation_space, one_hot_columns
from ppo_ref.train.trainer import train

# Dict keys given out of order on purpose: gymnasium sorts a plain dict's keys.
MIXED = spaces.Dict({
    "pos": spaces.Box(-1.0, 1.0, (2,), np.float32),
    "cell": spaces.Discrete(3, start=1),
    "flags": spaces.MultiBinary(2),
    "dice": spaces.MultiDiscrete([2, 3]),
})
TUPLE = spaces.Tuple((spaces.Discrete(4), spaces.Box(0.0, 5.0, (1,), np.float32)))


class ScriptedEnv(gym.Env):
    """Observations drawn from the space's own Generator (seeded at reset), 5-step episodes; the
    raw observations are kept in `seen`, so the test can flatten them itself."""

    def __init__(self, observation_space):
        self.observation_space = observation_space
        self.action_space = spaces.Discrete(2)
        self.seen = []
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.observation_space.seed(seed)
        self.t = 0
        self.seen.append(self.observation_space.sample())
        return self.seen[-1], {}

    def step(self, action):
        self.t += 1
        self.seen.append(self.observation_space.sample())
        return self.seen[-1], 0.0, self.t == 5, False, {}


@pytest.mark.parametrize("space", [MIXED, TUPLE, spaces.Discrete(5), spaces.MultiBinary(3),
                                   spaces.MultiDiscrete([3, 2, 2]),
                                   spaces.Box(0.0, 1.0, (2, 3), np.float32)],
                         ids=["dict", "tuple", "discrete", "multibinary", "multidiscrete", "box2d"])
def test_the_vector_env_hands_out_gymnasiums_flatten_of_each_observation(space):
    envs = make_vec_env(lambda: ScriptedEnv(space), 2)
    subs = envs.unwrapped.envs if hasattr(envs.unwrapped, "envs") else envs.env.envs
    obs, _ = envs.reset(seed=7)
    got = [obs]
    for _ in range(7):   # across an episode end (next-step autoreset)
        obs, *_ = envs.step(np.zeros(2, dtype=np.int64))
        got.append(obs)
    for n, sub in enumerate(subs):
        want = np.stack([flatten(space, o) for o in sub.seen])
        assert want.shape == (8, gym.spaces.flatdim(space))
        np.testing.assert_array_equal(np.stack([g[n] for g in got]), want)


def test_discrete_observations_become_one_hot_of_the_state_minus_start():
    envs = make_vec_env(lambda: ScriptedEnv(spaces.Discrete(3, start=1)), 1)
    obs, _ = envs.reset(seed=0)
    state = envs.env.envs[0].seen[-1]
    np.testing.assert_array_equal(obs[0], np.eye(3)[state - 1])


def test_a_flat_box_env_is_not_wrapped():
    envs = make_vec_env("CartPole-v1", 2)
    assert type(envs).__name__ == "CartPoleVectorEnv"
    assert not one_hot_columns(envs).any() and one_hot_columns(envs).shape == (4,)


def test_one_hot_columns_are_the_hand_counted_ones():
    # MIXED in gymnasium's order: cell (3 one-hot), dice (2 + 3 one-hot), flags (2), pos (2 floats)
    envs = make_vec_env(lambda: ScriptedEnv(MIXED), 1)
    np.testing.assert_array_equal(one_hot_columns(envs), [True] * 10 + [False] * 2)
    envs = make_vec_env(lambda: ScriptedEnv(TUPLE), 1)
    np.testing.assert_array_equal(one_hot_columns(envs), [True] * 4 + [False])


@pytest.mark.parametrize("space, where", [
    (spaces.Box(0, 255, (8, 8, 3), np.uint8), "observation space is an image"),
    (spaces.Dict({"frame": spaces.Box(0, 1, (4, 4, 1)), "x": spaces.Discrete(2)}), r"\['frame'\]"),
    (spaces.Tuple((spaces.Discrete(2), spaces.Box(0, 1, (2, 2, 2)))), r"\[1\]"),
])
def test_image_observations_are_refused_because_an_mlp_does_not_do_convolutions(space, where):
    with pytest.raises(TypeError, match="convolutions") as e:
        check_observation_space(space)
    assert e.match(where)
    with pytest.raises(TypeError, match="convolutions"):
        make_vec_env(lambda: ScriptedEnv(space), 1)


@pytest.mark.parametrize("space, named", [
    (spaces.Text(5), "Text"),
    (spaces.Sequence(spaces.Discrete(2)), "Sequence"),
    (spaces.Dict({"a": spaces.Discrete(2), "b": spaces.Text(3)}), r"\['b'\]"),
])
def test_spaces_without_a_fixed_length_vector_are_refused_naming_the_part(space, named):
    with pytest.raises(TypeError, match=named):
        check_observation_space(space)


# ----- training on encoded observations --------------------------------------------------------

TINY_LAKE = PPOConfig(env_id="FrozenLake-v1", total_steps=6 * 64, num_envs=4, num_steps=16,
                      num_minibatches=2, update_epochs=2, hidden=(16,), eval_episodes=2,
                      checkpoint_every=2, normalize_obs=True, ent_coef=0.01)


class _Interrupt(Exception):
    pass


def _rows(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


def _same(xs, ys):
    nan = lambda a, b: isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return len(xs) == len(ys) and all(
        x.keys() == y.keys() and all(x[k] == y[k] or nan(x[k], y[k]) for k in x) for x, y in zip(xs, ys))


@pytest.mark.parametrize("config", [TINY_LAKE,
                                    dataclasses.replace(TINY_LAKE, env_id="Blackjack-v1")],
                         ids=["frozenlake", "blackjack"])
def test_a_run_on_a_teaching_env_resumes_bit_for_bit(tmp_path, config):
    full = train(config, out_dir=tmp_path / "full")

    def crash(row):
        if row["update"] == 5:
            raise _Interrupt
    with pytest.raises(_Interrupt):
        train(config, out_dir=tmp_path / "cut", callback=crash)
    resumed = train(config, out_dir=tmp_path / "cut", resume=True)
    assert _same(_rows(read_metrics(tmp_path / "cut")), _rows(read_metrics(tmp_path / "full")))
    for (k, x), y in zip(full.agent.state_dict().items(), resumed.agent.state_dict().values()):
        np.testing.assert_array_equal(x, y, err_msg=k)
    assert resumed.eval == full.eval
    # the normaliser left the one-hot columns alone and says so in its saved state
    np.testing.assert_array_equal(resumed.obs_normalizer.skip, full.obs_normalizer.skip)
    assert resumed.obs_normalizer.skip.all()


# ----- learning where the optimum is known -----------------------------------------------------

class ContextBandit(gym.Env):
    """One-step episodes in one of two states (Discrete(2) observation, uniform). The reward
    counts the action's entries that match the state's target, so the optimal policy plays the
    target exactly and earns len(target) per episode."""

    TARGETS = {"multibinary": ([1, 0, 1], [0, 1, 1]), "multidiscrete": ([2, 0], [0, 1])}
    SPACES = {"multibinary": spaces.MultiBinary(3), "multidiscrete": spaces.MultiDiscrete([3, 2])}

    def __init__(self, kind):
        self.targets = [np.array(t) for t in self.TARGETS[kind]]
        self.observation_space = spaces.Discrete(2)
        self.action_space = self.SPACES[kind]
        self.state = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = int(self.np_random.integers(2))
        return self.state, {}

    def step(self, action):
        reward = float(np.sum(np.asarray(action) == self.targets[self.state]))
        return self.state, reward, True, False, {}


@pytest.mark.parametrize("kind", ["multibinary", "multidiscrete"])
def test_a_two_state_bandit_with_multi_actions_is_learned_to_its_optimum(kind):
    config = PPOConfig(total_steps=40 * 128, num_envs=8, num_steps=16, num_minibatches=2,
                       update_epochs=4, lr=3e-3, gamma=0.0, lam=0.0, anneal_clip=False,
                       hidden=(16,), seed=0)
    result = train(config, env=lambda: ContextBandit(kind))
    agent = result.agent
    modes = agent.distribution(np.eye(2)).mode()            # the one-hot of state 0 and state 1
    np.testing.assert_array_equal(modes, np.stack(ContextBandit.TARGETS[kind]))
    last = np.array([r for _, r, _ in result.episodes[-100:]])
    assert last.mean() > len(ContextBandit.TARGETS[kind][0]) - 0.3


@pytest.mark.parametrize("kind", ["multibinary", "multidiscrete"])
def test_the_kl_objectives_take_multi_actions_and_trpo_refuses_them(kind):
    """kl_adaptive freezes pi_old and restricts it to minibatch rows (update.frozen_policy and
    _rows): its exact mean KL after an update is positive and finite. TRPO's Fisher product is
    written for Categorical and DiagGaussian only, so it refuses these spaces up front."""
    config = PPOConfig(total_steps=3 * 64, num_envs=4, num_steps=16, num_minibatches=2,
                       update_epochs=2, hidden=(8,), objective="kl_adaptive")
    history = train(config, env=lambda: ContextBandit(kind)).history
    assert all(0 < row["kl_exact"] < math.inf for row in history)
    with pytest.raises(ValueError, match="trpo"):
        train(dataclasses.replace(config, objective="trpo"), env=lambda: ContextBandit(kind))
