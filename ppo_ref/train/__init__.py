"""The full trainer: PPO as ppo.py writes it, plus what real runs need.

The modules, in the order one training run uses them:

    config.py      PPOConfig, every hyperparameter with a help string, and PRESETS per env
    trainer.py     train(): Algorithm 1 of the PPO paper, one screen; evaluate(), load_agent()
    state.py       TrainState: envs, agent, Adam, collector and Generators, built from one seed
    memory.py      refusing at once a run or evaluation too large for the memory available
    runs.py        the run folder: env provenance, new or resumed, checkpointed; its readers
    guards.py      one writer per run folder (a lock), Ctrl-C stopping at an update's end
    rollout.py     steps 1-2: vector envs, the rollout with pi_old (next-step autoreset), its GAE
    spaces.py      observations as one flat vector (gymnasium's flatten: one-hot Discrete, ...)
    policy.py      the actor-critic: Categorical, Gaussian, MultiCategorical or Bernoulli head
                   and the value network
    normalize.py   running observation normalisation and reward scaling
    update.py      step 3: the update rules: ppo_update (K epochs of minibatches), trpo_update
    log.py         step 5: one row per update (metrics.csv's columns) and the progress line
    checkpoint.py  atomic, hashed checkpoints

    >>> from ppo_ref.train.config import PRESETS
    >>> from ppo_ref.train.trainer import train
    >>> result = train(PRESETS["Acrobot-v1"], out_dir="runs/acrobot")
    >>> result.eval["mean_return"]
"""
from .config import PRESETS, PPOConfig
from .trainer import TrainResult, evaluate, load_agent, train

__all__ = ["PPOConfig", "PRESETS", "TrainResult", "train", "evaluate", "load_agent"]
