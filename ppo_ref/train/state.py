"""TrainState: everything that changes during a run, built from one PPOConfig and its seed.

A checkpoint holds exactly this (`state_dict`), so a run continued from one (`load_state_dict`)
takes the same steps as a run never stopped: the agent, Adam's moments, the envs and the collector
(observations, episode counters, the action Generator, normalisers), the minibatch Generator, the
KL coefficient beta, the counters, the finished episodes and the wall time so far.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..losses import AdaptiveKLPenalty
from ..optim import Adam
from .config import PPOConfig
from .memory import check_run_fits
from .normalize import ObservationNormalizer, RewardScaler
from .policy import ActorCritic
from .rollout import RolloutCollector, dumps_env, loads_env, make_vec_env
from .spaces import one_hot_columns

__all__ = ["TrainState", "build_agent"]


def build_agent(config: PPOConfig, observation_space, action_space, rng) -> ActorCritic:
    """The ActorCritic a run with this config trains."""
    return ActorCritic(observation_space, action_space, rng, hidden=config.hidden,
                       activation=config.activation, dtype=np.dtype(config.dtype))


@dataclass
class TrainState:
    """The run's state (module docstring); `build` makes it from a config, `end_update` counts."""
    config: PPOConfig
    envs: object                          # the gymnasium VectorEnv of N copies
    agent: ActorCritic
    optimizer: Adam                       # all parameters; for "trpo" the value network's only
    collector: RolloutCollector
    rng: np.random.Generator              # the minibatch shuffles
    kl_penalty: AdaptiveKLPenalty         # beta's controller (kl_adaptive)
    beta: float                           # the KL coefficient of the kl_* objectives
    obs_normalizer: ObservationNormalizer | None = None
    update: int = 0                       # updates done
    global_step: int = 0                  # environment steps taken (all envs together)
    time_s: float = 0.0                   # wall time of the updates so far, across resumes
    episodes: list = field(default_factory=list)   # finished: (global_step, return, length)

    @classmethod
    def build(cls, config: PPOConfig, env=None) -> "TrainState":
        """The state before the first update. env: None (make config.env_id), a callable returning
        an Env, or a VectorEnv of config.num_envs environments (see train)."""
        c = config
        if not isinstance(c, PPOConfig):
            raise TypeError(f"config must be a PPOConfig, got {type(c).__name__}"
                            + ("; pass PPOConfig(**d)" if isinstance(c, dict) else ""))
        check_run_fits(c)                # refuse at once what memory cannot hold
        # One seed fixes the run: independent streams for the initial weights, the action
        # samples and the minibatch shuffles; the envs are reset with reset(seed=config.seed).
        init_seq, act_seq, shuffle_seq = np.random.SeedSequence(c.seed).spawn(3)
        envs = make_vec_env(c.env_id if env is None else env, c.num_envs, seed=c.seed)
        # make_vec_env seeds the batched spaces; gymnasium seeds the single-env spaces' own
        # Generators from OS entropy. Nothing samples from them, but a checkpoint pickles them
        # with the env: seeded, a resumed run's env state equals an uninterrupted run's. (The
        # checkpoint bytes still differ: it holds the wall time, and pickle shares strings and
        # dtypes by identity, which an unpickled env does not keep.)
        envs.single_action_space.seed(c.seed)
        envs.single_observation_space.seed(c.seed)
        agent = build_agent(c, envs.single_observation_space, envs.single_action_space,
                            np.random.default_rng(init_seq))
        if c.objective == "trpo" and agent.head not in ("categorical", "gaussian"):
            raise ValueError(f"objective 'trpo' supports Discrete and Box actions; "
                             f"{envs.single_action_space} needs a PPO objective")
        # trpo_step moves the policy itself; Adam then fits the value network alone
        params = agent.value_parameters() if c.objective == "trpo" else agent.parameters()
        obs_normalizer = ObservationNormalizer(envs.single_observation_space.shape,
                                               skip=one_hot_columns(envs)) \
            if c.normalize_obs else None
        reward_scaler = RewardScaler(c.num_envs, gamma=c.gamma) if c.scale_rewards else None
        collector = RolloutCollector(envs, agent, c.num_steps, np.random.default_rng(act_seq),
                                     obs_normalizer, reward_scaler, seed=c.seed)
        return cls(config=c, envs=envs, agent=agent, collector=collector,
                   optimizer=Adam(params, lr=c.lr, eps=c.adam_eps),
                   rng=np.random.default_rng(shuffle_seq),
                   kl_penalty=AdaptiveKLPenalty(c.kl_beta, c.kl_target), beta=c.kl_beta,
                   obs_normalizer=obs_normalizer)

    def end_update(self, buffer, time_s: float) -> None:
        """Count the update just made, its rollout's environment steps and finished episodes."""
        self.update += 1
        self.global_step = self.collector.global_step
        self.episodes.extend((self.global_step, float(r), int(n))
                             for r, n in zip(buffer.episode_returns, buffer.episode_lengths))
        self.time_s = time_s

    # ----- checkpoints ---------------------------------------------------------------------------

    def header(self) -> dict:
        """Entries a checkpoint must share with the run that loads it (its env and network)."""
        return {"env_id": self.config.env_id,
                "obs_shape": list(self.envs.single_observation_space.shape),
                "action_space": repr(self.envs.single_action_space),
                "hidden": list(self.config.hidden), "objective": self.config.objective,
                "dtype": self.config.dtype}

    def state_dict(self) -> dict:
        """The whole state as a checkpoint tree (checkpoint.py). An env that cannot be pickled is
        saved as None with the reason (env_error): training goes on, resuming will refuse."""
        try:
            env_bytes, env_error = dumps_env(self.envs), None
        except TypeError as e:
            env_bytes, env_error = None, str(e)
        return {**self.header(), "config": self.config.to_dict(), "update": self.update,
                "global_step": self.global_step, "agent": self.agent.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rng": self.rng.bit_generator.state,
                "collector": self.collector.state_dict(), "beta": float(self.beta),
                "kl_penalty_beta": float(self.kl_penalty.beta), "time_s": self.time_s,
                "env": env_bytes, "env_error": env_error,
                "episodes": np.array(self.episodes, dtype=np.float64).reshape(-1, 3)}

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state_dict`'s tree, the env included (this state's envs are closed and
        replaced by the saved ones). The caller checks that it belongs to this run (runs.py)."""
        self.agent.load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.envs.close()
        self.envs = self.collector.envs = loads_env(state["env"])
        self.collector.load_state_dict(state["collector"])
        self.rng.bit_generator.state = state["rng"]
        self.beta, self.kl_penalty.beta = state["beta"], state["kl_penalty_beta"]
        self.update, self.global_step = int(state["update"]), int(state["global_step"])
        self.time_s = float(state["time_s"])
        self.episodes = [(int(s), float(r), int(n)) for s, r, n in state["episodes"]]
