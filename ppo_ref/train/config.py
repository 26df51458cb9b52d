"""PPOConfig: every hyperparameter of the trainer in one dataclass, with a help string each (the
CLI's flags are built from them), checked when it is made; and PRESETS, tuned configs for
CartPole-v1, Acrobot-v1 and Pendulum-v1 (what each reaches: README, Training), and for the tabular
teaching envs FrozenLake-v1, CliffWalking-v1 (as CliffWalkingCapped-v1, with a time limit), Taxi-v4
and Blackjack-v1 (docs/spaces.md), and for LunarLander-v3.

The trainer that reads them is trainer.py; `from ppo_ref.train.trainer import PPOConfig, PRESETS`
works too.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from .._checks import check_count
from ..losses import OBJECTIVES as POLICY_OBJECTIVES

__all__ = ["PPOConfig", "PRESETS", "OBJECTIVES"]

# ppo_loss's policy objectives (losses.py), and TRPO, whose update is a constrained step instead
OBJECTIVES = (*POLICY_OBJECTIVES, "trpo")


def _field(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class PPOConfig:
    """Every hyperparameter of a run. The defaults train CartPole-v1 (rl-zoo3's tuned values,
    see the README's Training section for what they reach)."""

    env_id: str = _field("CartPole-v1", "gymnasium environment id")
    seed: int = _field(0, "seed of every random number in the run")
    total_steps: int = _field(100_000, "environment steps to train for (all envs together), "
                                       "rounded down to whole batches of N*T")
    num_envs: int = _field(8, "N, parallel environments")
    num_steps: int = _field(32, "T, steps per environment per rollout; batch = N*T")
    num_minibatches: int = _field(1, "minibatches per epoch: the batch (N*T less its reset "
                                     "steps) cut into this many nearly equal pieces")
    update_epochs: int = _field(20, "K, epochs over each batch")
    lr: float = _field(1e-3, "Adam learning rate")
    adam_eps: float = _field(1e-5, "Adam epsilon (as CleanRL and SB3; torch's default is 1e-8)")
    anneal_lr: bool = _field(True, "decay the learning rate linearly to 0 over training")
    gamma: float = _field(0.98, "discount factor")
    lam: float = _field(0.8, "GAE lambda")
    clip_eps: float = _field(0.2, "epsilon of the clipped ratio (and of value clipping)")
    anneal_clip: bool = _field(True, "decay clip_eps linearly to 0 over training (rl-zoo3)")
    objective: str = _field("clip", "policy objective: " + " | ".join(OBJECTIVES))
    norm_adv: bool = _field(True, "normalise advantages per minibatch")
    clip_vloss: bool = _field(False, "clip the value update to clip_eps around the old values")
    ent_coef: float = _field(0.0, "entropy bonus coefficient (c_2 of the PPO paper's eq. 9)")
    vf_coef: float = _field(0.5, "value loss coefficient (c_1 of eq. 9; our value loss carries "
                                 "a factor 0.5, losses.py)")
    max_grad_norm: float = _field(0.5, "clip the global gradient norm to this (inf: off)")
    target_kl: float | None = _field(None, "end an update early, before the first minibatch "
                                           "step whose approx_kl exceeds this")
    kl_beta: float = _field(1.0, "initial KL penalty coefficient beta (kl_* objectives)")
    kl_target: float = _field(0.01, "d_targ of the adaptive KL penalty")
    hidden: tuple = _field((64, 64), "hidden layer sizes of the policy and value MLPs")
    activation: str = _field("tanh", "hidden activation: tanh | relu")
    normalize_obs: bool = _field(False, "normalise observations with running statistics")
    scale_rewards: bool = _field(False, "divide rewards by the std of a running discounted return")
    dtype: str = _field("float64", "training dtype: float64 | float32")
    eval_episodes: int = _field(20, "deterministic evaluation episodes at the end")
    checkpoint_every: int = _field(50, "save a checkpoint every this many updates (0: end only)")
    keep_checkpoints: int = _field(3, "keep the newest this many checkpoints (the final one "
                                      "among them), remove older ones (0: keep all)")
    trpo_max_kl: float = _field(0.01, "trpo: the trust region delta on the mean KL")
    trpo_cg_iters: int = _field(10, "trpo: conjugate gradient iterations")
    trpo_damping: float = _field(0.1, "trpo: damping added to the Fisher matrix")

    def __post_init__(self):
        hidden = self.hidden
        object.__setattr__(self, "hidden", tuple(hidden) if isinstance(hidden, (list, tuple))
                           else (hidden,))
        if not isinstance(self.env_id, str):
            raise ValueError(f"env_id must be a gymnasium env id string, got {self.env_id!r}")
        ints = {"seed": 0, "total_steps": 1, "num_envs": 1, "num_steps": 2, "num_minibatches": 1,
                "update_epochs": 1, "eval_episodes": 1, "checkpoint_every": 0,
                "keep_checkpoints": 0, "trpo_cg_iters": 1}
        for name, low in ints.items():
            why = (": with next-step autoreset a one-step rollout may hold no transition to "
                   "learn from, only reset steps" if name == "num_steps" else "")
            # numpy ints -> int (config.json)
            object.__setattr__(self, name, check_count(name, getattr(self, name), low, why))
        if self.total_steps < self.batch_size:
            raise ValueError(f"total_steps={self.total_steps} is less than one batch "
                             f"(num_envs*num_steps = {self.batch_size})")

        def real(name):  # a float field's value; bools and strings are not numbers here
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ValueError(f"{name} must be a number, got {v!r}")
            object.__setattr__(self, name, float(v))  # numpy floats -> float (config.json)
            return float(v)
        for name in ("lr", "adam_eps", "clip_eps", "kl_beta", "kl_target", "trpo_max_kl"):
            if not (0 < real(name) < math.inf):
                raise ValueError(f"{name} must be > 0 and finite, got {getattr(self, name)!r}")
        for name in ("gamma", "lam"):
            if not 0.0 <= real(name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)!r}")
        for name in ("ent_coef", "vf_coef", "trpo_damping"):
            if not 0 <= real(name) < math.inf:
                raise ValueError(f"{name} must be >= 0 and finite, got {getattr(self, name)!r}")
        if not real("max_grad_norm") > 0:      # inf allowed: no clipping
            raise ValueError(f"max_grad_norm must be > 0 (inf: off), got {self.max_grad_norm!r}")
        if self.target_kl is not None and not real("target_kl") > 0:
            raise ValueError(f"target_kl must be > 0 or None, got {self.target_kl!r}")
        for f in dataclasses.fields(self):
            if f.type == "bool":    # a string: `from __future__ import annotations` above
                if not isinstance(getattr(self, f.name), (bool, np.bool_)):
                    raise ValueError(f"{f.name} must be True or False, got "
                                     f"{getattr(self, f.name)!r}")
                object.__setattr__(self, f.name, bool(getattr(self, f.name)))
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {self.activation!r}")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, (int, np.integer))
                                  or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must list integer layer sizes >= 1, got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        """U, the updates of a run: total_steps // (N*T); the remainder is not trained on."""
        return self.total_steps // self.batch_size

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "PPOConfig":
        """The config of a to_dict() (config.json); a field it lacks (a run folder written
        before the field existed) takes its default."""
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a dict of fields, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        return cls(**d)


PRESETS = {
    # rl-zoo3's tuned CartPole-v1 hyperparameters (the PPOConfig defaults).
    "CartPole-v1": PPOConfig(),
    # Acrobot-v1 in 100k steps: smaller rollouts than rl-zoo3's (16 x 256) for more updates.
    "Acrobot-v1": PPOConfig(env_id="Acrobot-v1", total_steps=100_000, num_envs=8, num_steps=128,
                            num_minibatches=4, update_epochs=10, lr=1e-3, gamma=0.99, lam=0.94,
                            anneal_clip=False),
    # Pendulum-v1: Gaussian policy, observation normalisation and reward scaling; minibatches of
    # 64 as rl-zoo3 (which also uses gSDE exploration, which ppo_ref does not have).
    "Pendulum-v1": PPOConfig(env_id="Pendulum-v1", total_steps=200_000, num_envs=8,
                             num_steps=256, num_minibatches=32, update_epochs=10, lr=1e-3,
                             gamma=0.95, lam=0.95, anneal_clip=False, normalize_obs=True,
                             scale_rewards=True),
}


# CliffWalking-v1 is registered without a time limit, and stepping into the cliff sends the agent
# back to the start without ending the episode: a policy that never reaches the goal walks forever
# (the first rollouts never see an episode end; a deterministic evaluation never returns). Its
# preset, named for the env it trains (as every preset is), is the same env and table with
# gymnasium's TimeLimit of 100 steps, as FrozenLake's 4x4 has; the optimal return, -13, is unchanged.
CLIFF_WALKING_CAPPED = "CliffWalkingCapped-v1"
if CLIFF_WALKING_CAPPED not in gym.registry:
    gym.register(CLIFF_WALKING_CAPPED, entry_point="gymnasium.envs.toy_text.cliffwalking:CliffWalkingEnv",
                 max_episode_steps=100)

# The tabular teaching envs: Discrete (Blackjack: Tuple of Discrete) observations, seen one-hot
# (spaces.py). Small rollouts of 8 envs, 4 minibatches, 4 epochs, and an entropy bonus, which
# keeps the sparse-reward envs exploring until the goal has been found (Taxi needs a larger one).
_TEACHING = dict(num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4, lr=1e-3,
                 gamma=0.99, lam=0.95, ent_coef=0.01, anneal_clip=False, eval_episodes=100)
PRESETS.update({
    # slippery 4x4 (gymnasium's default): the intended move happens with probability 1/3
    "FrozenLake-v1": PPOConfig(env_id="FrozenLake-v1", total_steps=200_000, **_TEACHING),
    # Returns of order -100 (the cliff's -100, -1 a step over 100 steps): rewards scaled to a
    # return of std ~1, which the value MLP fits within the budget; 300k steps, since the path
    # along the edge pays only once the policy is nearly deterministic (docs/spaces.md, Results).
    CLIFF_WALKING_CAPPED: PPOConfig(env_id=CLIFF_WALKING_CAPPED, total_steps=300_000,
                                    **{**_TEACHING, "scale_rewards": True}),
    # Rewards scaled as CliffWalking's, and an entropy bonus of 0.3. The fixed point of
    # entropy-regularised policy gradient is pi(a|s) ~ exp(A(s,a) / ent_coef) (O'Donoghue et al.
    # 2017, "Combining policy gradient and Q-learning"); with advantages normalised to std 1, a
    # bonus of 0.01 leaves pickup and drop-off (-10 wherever illegal) no probability long before
    # a delivery (+20) has been seen, and 0.3 keeps them tried.
    "Taxi-v4": PPOConfig(env_id="Taxi-v4", total_steps=300_000,
                         **{**_TEACHING, "scale_rewards": True, "ent_coef": 0.3}),
    # one hand is a few steps: no discounting within it
    "Blackjack-v1": PPOConfig(env_id="Blackjack-v1", total_steps=100_000,
                              **{**_TEACHING, "gamma": 1.0}),
})

# LunarLander-v3 (needs the box2d extra): rl-zoo3's PPO hyperparameters for LunarLander
# (rl-baselines3-zoo, hyperparams/ppo.yml, entry LunarLander-v2, the same task): 16 envs x 1024
# steps, minibatches of 64 (256 per epoch), 4 epochs, gamma 0.999, GAE lambda 0.98, entropy bonus
# 0.01, 1M steps, and SB3's defaults for the rest: lr 3e-4 and clip 0.2 both constant, grad-norm
# clip 0.5, SB3's vf_coef 0.5, which is ppo_ref's 1.0 (our value loss carries a factor 0.5).
PRESETS["LunarLander-v3"] = PPOConfig(
    env_id="LunarLander-v3", total_steps=1_000_000, num_envs=16, num_steps=1024,
    num_minibatches=256, update_epochs=4, lr=3e-4, anneal_lr=False, gamma=0.999, lam=0.98,
    clip_eps=0.2, anneal_clip=False, ent_coef=0.01, vf_coef=1.0, max_grad_norm=0.5)
