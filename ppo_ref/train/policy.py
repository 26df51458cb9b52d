"""The actor-critic: a policy pi_theta(a|s) and a value function V_phi(s) (Schulman et al. 2017).

Two separate MLPs, as in the PPO paper's MuJoCo setup and most reference code:

    pi:  s -> logits (A,)        Discrete(A):              pi(a|s) = softmax(logits)_a
         s -> mean (D,)          Box (D,):                 pi(a|s) = N(a; mean, diag(exp(log_std))^2)
         s -> logits (sum nvec)  MultiDiscrete(nvec):      pi(a|s) = prod_k softmax(logits^(k))_{a_k}
         s -> logits (D,)        MultiBinary(D):           pi(a|s) = prod_d Bernoulli(a_d; sigmoid(l_d))
    V:   s -> scalar

The observation is one flat vector: make_vec_env encodes Discrete, MultiDiscrete, MultiBinary,
Tuple and Dict observations into one (spaces.py) before the agent sees them, so the agent is
built on that flat Box space.

Default 64x64 tanh hidden layers; orthogonal initialisation (nn.py) with gain sqrt(2)
for hidden layers, 0.01 for the policy head (so the initial policy is nearly uniform,
or a Gaussian with mean near 0) and 1.0 for the value head. For Box actions log_std
is one parameter per action dimension, shared by all states, initialised to 0 (std 1).

Conventions:
* Continuous actions: log pi is computed on the sampled, unclipped action a; only the
  action sent to the environment is clipped to the Box bounds (env_action). Clipping
  before computing log pi would give a log-density of a different, mixed distribution
  (the bounds carry probability mass); keeping a unclipped keeps the ratio
  pi_new(a|s) / pi_old(a|s) exact. (Clipping is what most PPO code does, e.g. CleanRL
  clips in a wrapper; squashing with tanh, as SAC does, is another choice.)
* Observations are cast to the agent's dtype (float64 by default; float32 allowed).
* sample(), evaluate() and act() run under autodiff.no_grad: rollouts build no graph.
  Gradients are taken in the update, by calling distribution() and value() again on the
  stored observations.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

from ..autodiff import Tensor, no_grad
from ..distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical
from ..nn import MLP

__all__ = ["ActorCritic"]


def _obs_dim(space) -> int:
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return int(space.shape[0])
    raise TypeError(f"ActorCritic: unsupported observation space {space}; the agent takes flat "
                    f"1-D Box observations (make_vec_env encodes the others, see spaces.py)")


def _action_head(space) -> tuple:
    """(distribution name, width of the policy's output layer) for an action space."""
    if isinstance(space, spaces.Discrete):
        return "categorical", int(space.n)
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return "gaussian", int(space.shape[0])
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1:
        return "multi_categorical", int(space.nvec.sum())
    if isinstance(space, spaces.MultiBinary) and len(space.shape) == 1:
        return "bernoulli", int(space.shape[0])
    raise TypeError(f"ActorCritic: unsupported action space {space}; supported are Discrete, "
                    f"1-D Box, 1-D MultiDiscrete and 1-D MultiBinary")


class ActorCritic:
    """Policy and value networks for one flat Box observation space and a Discrete, 1-D Box,
    MultiDiscrete or MultiBinary action space. See the module docstring for the model and
    conventions.

    Attributes: pi (MLP), vf (MLP), log_std (Tensor (D,) or None), head ("categorical",
    "gaussian", "multi_categorical" or "bernoulli"), discrete (True for Discrete actions),
    dtype, obs_dim, action_dim (the policy output's width: A for Discrete, D for Box and
    MultiBinary, sum(nvec) for MultiDiscrete).
    """

    def __init__(self, observation_space, action_space, rng: np.random.Generator,
                 hidden=(64, 64), activation: str = "tanh", dtype=np.float64):
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"ActorCritic: rng must be a numpy.random.Generator, got "
                            f"{type(rng).__name__}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"ActorCritic: dtype must be float32 or float64, got {self.dtype}")
        self.observation_space, self.action_space = observation_space, action_space
        self.obs_dim = _obs_dim(observation_space)
        self.head, self.action_dim = _action_head(action_space)
        self.discrete = self.head == "categorical"
        hidden = tuple(int(h) for h in hidden)
        self.pi = MLP((self.obs_dim, *hidden, self.action_dim), activation, output_gain=0.01,
                      rng=rng, dtype=self.dtype)
        self.vf = MLP((self.obs_dim, *hidden, 1), activation, output_gain=1.0, rng=rng,
                      dtype=self.dtype)
        self.log_std = None if self.head != "gaussian" else \
            Tensor(np.zeros(self.action_dim, dtype=self.dtype), requires_grad=True)   # (D,)

    # ----- parameters ------------------------------------------------------------------

    def policy_parameters(self) -> list:
        return self.pi.parameters() + ([] if self.log_std is None else [self.log_std])

    def value_parameters(self) -> list:
        return self.vf.parameters()

    def parameters(self) -> list:
        """Policy parameters, then log_std (if any), then value parameters."""
        return self.policy_parameters() + self.value_parameters()

    # ----- forward -----------------------------------------------------------------------

    def _input(self, obs):
        """obs (B, obs_dim) as a Tensor in the agent's dtype."""
        x = obs.data if isinstance(obs, Tensor) else np.asarray(obs)
        if x.ndim != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(f"ActorCritic: obs has shape {x.shape}, expected (B, {self.obs_dim})")
        if isinstance(obs, Tensor) and x.dtype == self.dtype:
            return obs
        return Tensor(x.astype(self.dtype, copy=False))

    def distribution(self, obs):
        """pi(.|s) for a batch of observations (B, obs_dim): Categorical over (B, A) logits,
        DiagGaussian with mean (B, D) and the shared log_std (D,), MultiCategorical over
        (B, sum(nvec)) logits, or Bernoulli over (B, D) logits."""
        out = self.pi(self._input(obs))
        if self.head == "categorical":
            return Categorical(out)
        if self.head == "gaussian":
            return DiagGaussian(out, self.log_std)
        if self.head == "multi_categorical":
            return MultiCategorical(out, self.action_space.nvec)
        return Bernoulli(out)

    def value(self, obs) -> Tensor:
        """V(s) for a batch of observations (B, obs_dim) -> Tensor (B,)."""
        x = self._input(obs)
        return self.vf(x).reshape(x.shape[0])

    def sample(self, obs, rng: np.random.Generator, deterministic: bool = False) -> np.ndarray:
        """a ~ pi(.|s) for a batch of observations (B, obs_dim), or the mode if deterministic,
        without building a graph: actions (B,) int64 or (B, D) unclipped. Only the policy
        network runs: this is all a rollout step needs to choose its actions."""
        with no_grad():
            dist = self.distribution(obs)
            return dist.mode() if deterministic else dist.sample(rng)

    def evaluate(self, obs, actions):
        """log pi(a|s) (B,) and V(s) (B,) as plain arrays, without building a graph, for obs
        (B, obs_dim) and the actions taken there, (B,) int or (B, D) unclipped.

        A rollout stores the actions it sampled and evaluates them here once, over all T*N
        rows in one batched forward, instead of row by row: the policy does not change during
        the rollout, so the numbers are the same up to rounding (a larger matrix product may
        sum in another order) and the cost is one large call per layer."""
        with no_grad():
            x = self._input(obs)
            logp = self.distribution(x).log_prob(actions).data
            values = self.value(x).data
        return logp, values

    def act(self, obs, rng: np.random.Generator, deterministic: bool = False):
        """sample() and evaluate() in one: actions (B,) int64 or (B, D) unclipped,
        log pi(a|s) (B,), V(s) (B,), as numpy arrays (the same draws as sample()). The
        trainer's rollout does not use it (it samples per step and evaluates once, rollout.py)."""
        with no_grad():
            x = self._input(obs)
            dist = self.distribution(x)
            actions = dist.mode() if deterministic else dist.sample(rng)
            return actions, dist.log_prob(actions).data, self.value(x).data

    def env_action(self, actions) -> np.ndarray:
        """The action to send to the env: Discrete -> shifted by the space's start (usually 0);
        Box -> clipped to [low, high] and cast to the space's dtype; MultiDiscrete -> each
        component shifted by its start, in the space's dtype; MultiBinary -> the 0/1 array in
        the space's dtype (int8)."""
        space = self.action_space
        if self.discrete:
            return np.asarray(actions, dtype=np.int64) + np.int64(space.start)
        if self.head == "multi_categorical":
            return (np.asarray(actions, dtype=np.int64) + space.start).astype(space.dtype)
        if self.head == "bernoulli":
            return np.asarray(actions).astype(space.dtype)
        return np.clip(actions, space.low, space.high).astype(space.dtype, copy=False)

    # ----- saving ------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """{"pi.layers.0.weight": ..., "log_std": (D,) (Box only), "vf.layers.0.weight": ...}: copies."""
        state = {f"pi.{k}": v for k, v in self.pi.state_dict().items()}
        if self.log_std is not None:
            state["log_std"] = self.log_std.data.copy()
        state.update({f"vf.{k}": v for k, v in self.vf.state_dict().items()})
        return state

    def load_state_dict(self, state) -> None:
        """Copy a state_dict into the parameters in place; keys and shapes must match."""
        pi = {k[3:]: v for k, v in state.items() if k.startswith("pi.")}
        vf = {k[3:]: v for k, v in state.items() if k.startswith("vf.")}
        extra = sorted(k for k in state if not k.startswith(("pi.", "vf.")) and k != "log_std")
        if extra or (("log_std" in state) != (self.log_std is not None)):
            raise ValueError(f"ActorCritic.load_state_dict: unexpected keys {extra}, or log_std "
                             f"{'present' if 'log_std' in state else 'missing'} for a "
                             f"{self.head} policy")
        if self.log_std is not None:
            log_std = np.asarray(state["log_std"])
            if log_std.shape != self.log_std.shape:
                raise ValueError(f"ActorCritic.load_state_dict: log_std has shape {log_std.shape}, "
                                 f"the parameter has shape {self.log_std.shape}")
        # MLP.load_state_dict checks everything before copying; check both before loading either.
        for name, net, part in (("pi", self.pi, pi), ("vf", self.vf, vf)):
            own = net.state_dict()
            if set(own) != set(part) or any(np.shape(part[k]) != own[k].shape for k in own):
                raise ValueError(f"ActorCritic.load_state_dict: the {name} weights do not match "
                                 f"this network {net} (keys or shapes differ)")
        self.pi.load_state_dict(pi)
        self.vf.load_state_dict(vf)
        if self.log_std is not None:
            self.log_std.data[...] = state["log_std"]

    def __repr__(self):
        head = {"categorical": "Categorical", "gaussian": "DiagGaussian",
                "multi_categorical": "MultiCategorical", "bernoulli": "Bernoulli"}[self.head]
        return f"ActorCritic(pi={self.pi}, vf={self.vf}, {head}, dtype={self.dtype})"
