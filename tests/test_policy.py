"""Tests for ppo_ref/policy.py. Expected log-probabilities are written out in numpy here
(log-softmax, Gaussian density); gradients are checked by finite differences."""
import numpy as np
import pytest
from gymnasium import spaces

from ppo_ref import autodiff
from ppo_ref.distributions import Categorical, DiagGaussian
from ppo_ref.gradcheck import gradcheck
from ppo_ref.train.policy import ActorCritic

OBS4 = spaces.Box(-np.inf, np.inf, (4,), np.float32)
BOX2 = spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 0.5], np.float32))


def _forward(net, x):
    """The MLP written out in numpy: tanh hidden layers, linear output."""
    h = x
    for layer in net.layers[:-1]:
        h = np.tanh(h @ layer.weight.data + layer.bias.data)
    return h @ net.layers[-1].weight.data + net.layers[-1].bias.data


def test_discrete_head_shapes_and_log_probs_match_a_numpy_log_softmax():
    agent = ActorCritic(OBS4, spaces.Discrete(3), np.random.default_rng(0))
    obs = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    assert agent.discrete and agent.log_std is None
    assert isinstance(agent.distribution(obs), Categorical)
    actions, logp, values = agent.act(obs, np.random.default_rng(2))
    assert actions.shape == (5,) and actions.dtype == np.int64
    assert logp.shape == (5,) and values.shape == (5,)
    logits = _forward(agent.pi, obs.astype(np.float64))
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(logp, log_softmax[np.arange(5), actions], rtol=1e-12)
    np.testing.assert_allclose(values, _forward(agent.vf, obs.astype(np.float64))[:, 0], rtol=1e-12)


def test_box_head_log_prob_is_on_the_unclipped_action_and_env_action_clips():
    agent = ActorCritic(OBS4, BOX2, np.random.default_rng(0))
    assert not agent.discrete and agent.log_std.shape == (2,)
    np.testing.assert_array_equal(agent.log_std.data, 0.0)  # std 1 at init
    assert isinstance(agent.distribution(np.zeros((1, 4))), DiagGaussian)
    agent.log_std.data[:] = 1.0  # wide enough that many samples leave the bounds
    obs = np.random.default_rng(1).normal(size=(200, 4))
    actions, logp, _ = agent.act(obs, np.random.default_rng(2))
    assert actions.shape == (200, 2)
    assert (actions < BOX2.low).any() and (actions > BOX2.high).any()  # not clipped
    mean, std = _forward(agent.pi, obs), np.exp(1.0)
    density = -0.5 * ((actions - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(logp, density.sum(axis=1), rtol=1e-12)
    sent = agent.env_action(actions)
    assert sent.dtype == np.float32
    np.testing.assert_array_equal(sent, np.clip(actions, BOX2.low, BOX2.high).astype(np.float32))


def test_discrete_env_action_adds_the_space_start():
    agent = ActorCritic(OBS4, spaces.Discrete(3, start=-1), np.random.default_rng(0))
    np.testing.assert_array_equal(agent.env_action(np.array([0, 1, 2])), [-1, 0, 1])


def test_heads_are_orthogonal_with_gains_0_01_policy_and_1_value():
    agent = ActorCritic(OBS4, spaces.Discrete(2), np.random.default_rng(0))
    w_pi, w_v = agent.pi.layers[-1].weight.data, agent.vf.layers[-1].weight.data  # (64, 2), (64, 1)
    np.testing.assert_allclose(w_pi.T @ w_pi, 0.01 ** 2 * np.eye(2), atol=1e-15)
    np.testing.assert_allclose(w_v.T @ w_v, [[1.0]], rtol=1e-12)
    assert [l.weight.shape for l in agent.pi.layers] == [(4, 64), (64, 64), (64, 2)]
    probs = agent.distribution(np.ones((1, 4))).probs()
    np.testing.assert_allclose(probs, 0.5, atol=0.02)  # nearly uniform at init


@pytest.mark.parametrize("act_space", [spaces.Discrete(2), BOX2])
def test_hidden_layers_are_orthogonal_with_gain_sqrt2_biases_zero_log_std_zero(act_space):
    agent = ActorCritic(OBS4, act_space, np.random.default_rng(1))
    for net in (agent.pi, agent.vf):
        w_in, w_mid = net.layers[0].weight.data, net.layers[1].weight.data   # (4, 64), (64, 64)
        np.testing.assert_allclose(w_in @ w_in.T, 2.0 * np.eye(4), atol=1e-12)  # wide: rows
        np.testing.assert_allclose(w_mid.T @ w_mid, 2.0 * np.eye(64), atol=1e-12)
        for layer in net.layers:
            assert not layer.bias.data.any()
    if agent.log_std is not None:   # state-independent: one parameter per action dimension, std 1
        assert agent.log_std.data.shape == (2,) and not agent.log_std.data.any()
        dist = agent.distribution(np.random.default_rng(2).standard_normal((5, 4)))
        assert dist.log_std is agent.log_std    # the parameter itself, not a function of s


@pytest.mark.parametrize("obs_space, act_space, named", [
    (OBS4, spaces.MultiDiscrete([[2, 3], [2, 2]]), "MultiDiscrete"),
    (OBS4, spaces.MultiBinary((2, 2)), "MultiBinary"),
    (OBS4, spaces.Box(-1, 1, (2, 2)), "Box"),
    (spaces.Box(0, 255, (8, 8, 3), np.uint8), spaces.Discrete(2), "Box"),
    (spaces.Dict({"x": OBS4}), spaces.Discrete(2), "Dict"),
    (spaces.Discrete(5), spaces.Discrete(2), "Discrete"),
])
def test_unsupported_spaces_raise_type_error_naming_the_space(obs_space, act_space, named):
    with pytest.raises(TypeError, match=named):
        ActorCritic(obs_space, act_space, np.random.default_rng(0))


def test_wrong_observation_shape_is_rejected_with_both_shapes():
    agent = ActorCritic(OBS4, spaces.Discrete(2), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(3, 5\).*\(B, 4\)"):
        agent.value(np.zeros((3, 5)))


def test_same_seed_same_parameters_and_actions_different_seed_differs():
    def run(seed):
        agent = ActorCritic(OBS4, BOX2, np.random.default_rng(seed))
        return agent.state_dict(), agent.act(np.ones((3, 4)), np.random.default_rng(seed))
    (s0, a0), (s1, a1), (s2, _) = run(0), run(0), run(1)
    assert all(np.array_equal(s0[k], s1[k]) for k in s0)
    for x, y in zip(a0, a1):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(s0["pi.layers.0.weight"], s2["pi.layers.0.weight"])


def test_act_builds_no_graph_and_deterministic_act_takes_the_mode():
    agent = ActorCritic(OBS4, spaces.Discrete(3), np.random.default_rng(0))
    seen = []
    original = agent.distribution
    agent.distribution = lambda obs: (seen.append(autodiff.is_grad_enabled()), original(obs))[1]
    actions, _, _ = agent.act(np.ones((2, 4)), np.random.default_rng(0), deterministic=True)
    assert seen == [False]
    np.testing.assert_array_equal(actions, np.argmax(_forward(agent.pi, np.ones((2, 4))), axis=1))
    assert agent.value(np.ones((2, 4))).requires_grad  # outside act, a graph is built


def test_float32_agent_casts_observations_and_returns_float32():
    agent = ActorCritic(OBS4, BOX2, np.random.default_rng(0), dtype=np.float32)
    _, logp, values = agent.act(np.ones((2, 4), dtype=np.float64), np.random.default_rng(0))
    assert logp.dtype == np.float32 and values.dtype == np.float32
    assert all(p.dtype == np.float32 for p in agent.parameters())


def test_parameter_order_is_policy_then_log_std_then_value():
    agent = ActorCritic(OBS4, BOX2, np.random.default_rng(0))
    params = agent.parameters()
    assert params[:6] == agent.pi.parameters() and params[6] is agent.log_std
    assert params[7:] == agent.vf.parameters() == agent.value_parameters()
    assert agent.policy_parameters() == params[:7]


def test_state_dict_round_trip_and_mismatch_errors():
    a = ActorCritic(OBS4, BOX2, np.random.default_rng(0))
    a.log_std.data[:] = [0.3, -0.2]
    b = ActorCritic(OBS4, BOX2, np.random.default_rng(1))
    b.load_state_dict(a.state_dict())
    obs = np.ones((2, 4))
    np.testing.assert_array_equal(a.value(obs).data, b.value(obs).data)
    np.testing.assert_array_equal(b.log_std.data, [0.3, -0.2])
    discrete = ActorCritic(OBS4, spaces.Discrete(2), np.random.default_rng(0))
    with pytest.raises(ValueError, match="log_std"):
        discrete.load_state_dict(a.state_dict())
    small = ActorCritic(OBS4, BOX2, np.random.default_rng(0), hidden=(8,))
    with pytest.raises(ValueError, match="pi weights"):
        small.load_state_dict(a.state_dict())


def _bind(agent, tensors):
    """Make the agent's layers (and log_std) use the given Tensors, in parameters() order."""
    slots = [(l, name) for l in agent.pi.layers for name in ("weight", "bias")]
    if agent.log_std is not None:
        slots.append((agent, "log_std"))
    slots += [(l, name) for l in agent.vf.layers for name in ("weight", "bias")]
    for (owner, name), t in zip(slots, tensors, strict=True):
        setattr(owner, name, t)


@pytest.mark.parametrize("act_space", [spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
def test_log_prob_entropy_and_value_gradients_match_finite_differences(act_space):
    rng = np.random.default_rng(0)
    agent = ActorCritic(spaces.Box(-1, 1, (2,)), act_space, rng, hidden=(3,))
    obs = rng.normal(size=(4, 2))
    if agent.log_std is not None:
        agent.log_std.data[:] = [0.2, -0.4]
    actions, _, _ = agent.act(obs, rng)
    params = [p.data.copy() for p in agent.parameters()]

    def policy_terms(*tensors):
        _bind(agent, tensors)
        dist = agent.distribution(obs)
        return dist.log_prob(actions) + 0.5 * dist.entropy()

    def value(*tensors):
        _bind(agent, tensors)
        return agent.value(obs)

    for fn in (policy_terms, value):
        report = gradcheck(fn, params)
        assert report.passed, f"{fn.__name__}: {report}"


@pytest.mark.parametrize("act_space", [spaces.Discrete(3), BOX2])
def test_sample_draws_what_act_draws_and_evaluate_gives_its_logp_and_value(act_space):
    agent = ActorCritic(OBS4, act_space, np.random.default_rng(0))
    obs = np.random.default_rng(1).standard_normal((5, 4))
    actions, logp, values = agent.act(obs, np.random.default_rng(7))
    np.testing.assert_array_equal(agent.sample(obs, np.random.default_rng(7)), actions)
    logp2, values2 = agent.evaluate(obs, actions)
    np.testing.assert_array_equal(logp2, logp)
    np.testing.assert_array_equal(values2, values)
    np.testing.assert_allclose(values, _forward(agent.vf, obs)[:, 0], rtol=1e-12)


# ----- MultiDiscrete and MultiBinary action heads ---------------------------------------------

def test_multi_discrete_head_splits_the_logits_into_one_softmax_per_component():
    from ppo_ref.distributions import MultiCategorical
    agent = ActorCritic(OBS4, spaces.MultiDiscrete([2, 3]), np.random.default_rng(0))
    assert agent.head == "multi_categorical" and agent.action_dim == 5 and agent.log_std is None
    obs = np.random.default_rng(1).standard_normal((4, 4))
    dist = agent.distribution(obs)
    assert isinstance(dist, MultiCategorical)
    logits = _forward(agent.pi, obs)
    actions = np.array([[0, 2], [1, 0], [1, 1], [0, 0]])

    def log_softmax(z):
        return z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) - z.max(1, keepdims=True)
    first, second = log_softmax(logits[:, :2]), log_softmax(logits[:, 2:])
    want = first[np.arange(4), actions[:, 0]] + second[np.arange(4), actions[:, 1]]
    np.testing.assert_allclose(dist.log_prob(actions).data, want, rtol=1e-12)
    sampled = agent.sample(obs, np.random.default_rng(2))
    assert sampled.shape == (4, 2) and sampled.dtype == np.int64


def test_multi_discrete_env_action_adds_each_components_start():
    space = spaces.MultiDiscrete([2, 3], start=[1, -1])
    agent = ActorCritic(OBS4, space, np.random.default_rng(0))
    out = agent.env_action(np.array([[0, 0], [1, 2]]))
    np.testing.assert_array_equal(out, [[1, -1], [2, 1]])
    assert out.dtype == space.dtype and all(space.contains(a) for a in out)


def test_multi_binary_head_is_a_bernoulli_per_entry_and_sends_int8():
    from ppo_ref.distributions import Bernoulli
    space = spaces.MultiBinary(3)
    agent = ActorCritic(OBS4, space, np.random.default_rng(0))
    assert agent.head == "bernoulli" and agent.action_dim == 3
    obs = np.random.default_rng(1).standard_normal((5, 4))
    dist = agent.distribution(obs)
    assert isinstance(dist, Bernoulli)
    p = 1.0 / (1.0 + np.exp(-_forward(agent.pi, obs)))
    a = np.array([[1, 0, 1]] * 5)
    want = np.log(np.where(a == 1, p, 1 - p)).sum(axis=1)
    np.testing.assert_allclose(dist.log_prob(a).data, want, rtol=1e-12)
    out = agent.env_action(agent.sample(obs, np.random.default_rng(3)))
    assert out.dtype == np.int8 and all(space.contains(x) for x in out)


@pytest.mark.parametrize("act_space", [spaces.MultiDiscrete([2, 3]), spaces.MultiBinary(3)])
def test_multi_heads_state_dict_round_trip_and_gradients(act_space):
    a = ActorCritic(OBS4, act_space, np.random.default_rng(0))
    b = ActorCritic(OBS4, act_space, np.random.default_rng(1))
    b.load_state_dict(a.state_dict())
    obs = np.random.default_rng(2).standard_normal((3, 4))
    actions = a.sample(obs, np.random.default_rng(4))
    np.testing.assert_array_equal(a.evaluate(obs, actions)[0], b.evaluate(obs, actions)[0])
    w = a.pi.layers[-1].weight.data.copy()

    def logp(weight):
        a.pi.layers[-1].weight = weight
        return a.distribution(obs).log_prob(actions)
    report = gradcheck(logp, [w])
    assert report.passed, str(report)
