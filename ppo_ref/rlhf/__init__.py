"""RLHF in miniature: PPO with a KL penalty to a frozen reference policy, a reward model learned
from preferences, and reward-model over-optimisation made visible.

The pieces, in the order the recipe uses them (each module states its equations):

    sequences.py     how a batch of variable-length token sequences is stored and enumerated
    task.py          the synthetic world: a corpus generator and the hidden gold reward
    lm.py            the autoregressive token policy and its pretraining by maximum likelihood
    reward_model.py  preference labels, the Bradley-Terry loss, the reward model
    pipeline.py      pretrain pi_ref -> collect preferences -> fit the reward model
    kl.py            KL(pi_theta || pi_ref) over sequences: exact, and estimated from samples
    finetune.py      PPO on per-token rewards -beta log(pi_theta / pi_ref) + r_phi at the end

    >>> import numpy as np
    >>> from ppo_ref.rlhf import WorldConfig, prepare_world, RLHFConfig, rlhf_finetune
    >>> rng = np.random.default_rng(0)
    >>> world = prepare_world(WorldConfig(), rng)
    >>> policy = world.reference.copy()
    >>> evals, history = rlhf_finetune(policy, world.reference, world.reward_model,
    ...                                RLHFConfig(beta=0.1), rng, gold_fn=world.gold)
"""
from .finetune import RLHFConfig, evaluate_policy, rlhf_finetune, sequence_gae, token_rewards
from .kl import exact_sequence_kl, sequence_log_ratio, stepwise_kl
from .lm import TokenPolicy, pretrain
from .pipeline import World, WorldConfig, collect_preferences, prepare_world
from .reward_model import (Preferences, RewardModel, bradley_terry_loss, label_preferences,
                           preference_accuracy, train_reward_model)
from .sequences import (END, decode, enumerate_sequences, sequence_lengths, sequence_mask,
                        validate_tokens)
from .task import ALPHABET, MarkovSource, gold_reward, letter_values

__all__ = [
    "RLHFConfig", "evaluate_policy", "rlhf_finetune", "sequence_gae", "token_rewards",
    "exact_sequence_kl", "sequence_log_ratio", "stepwise_kl",
    "TokenPolicy", "pretrain",
    "World", "WorldConfig", "collect_preferences", "prepare_world",
    "Preferences", "RewardModel", "bradley_terry_loss", "label_preferences",
    "preference_accuracy", "train_reward_model",
    "END", "decode", "enumerate_sequences", "sequence_lengths", "sequence_mask", "validate_tokens",
    "ALPHABET", "MarkovSource", "gold_reward", "letter_values",
]
