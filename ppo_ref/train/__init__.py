"""The full trainer: PPO as ppo.py writes it, plus what real runs need.

The modules, in the order one training run uses them:

    config.py      PPOConfig, every hyperparameter with a help string, and PRESETS per env
    rollout.py     vector envs, and the rollout with pi_old: next-step autoreset, truncation
    policy.py      the actor-critic: discrete or Gaussian policy head and the value network
    normalize.py   running observation normalisation and reward scaling
    trainer.py     train(): Algorithm 1 of the PPO paper, plus evaluate() and load_agent()
    checkpoint.py  atomic, hashed checkpoints
    runs.py        the run folder: config.json, metrics.csv, checkpoints/, eval.json

    >>> from ppo_ref.train.config import PRESETS
    >>> from ppo_ref.train.trainer import train
    >>> result = train(PRESETS["Acrobot-v1"], out_dir="runs/acrobot")
    >>> result.eval["mean_return"]
"""
from .config import PRESETS, PPOConfig
from .trainer import TrainResult, evaluate, load_agent, train

__all__ = ["PPOConfig", "PRESETS", "TrainResult", "train", "evaluate", "load_agent"]
