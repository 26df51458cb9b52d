"""The RLHF recipe up to fine-tuning, in order: pretrain pi_ref, collect preferences, fit r_phi.

    source --corpus--> pretrain (MLE) --> pi_ref --pairs--> gold judge + noise --> preferences
    preferences --Bradley-Terry--> r_phi  (normalised on pi_ref's samples)

`prepare_world(WorldConfig(), rng)` runs it and returns a `World`; fine-tuning (finetune.py) then
starts a copy of `world.reference` and trains it against `world.reward_model`. The gold reward is
kept alongside only so that we can watch what fine-tuning does to it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lm import TokenPolicy, pretrain
from .reward_model import (Preferences, RewardModel, label_preferences, preference_accuracy,
                           train_reward_model)
from .task import MarkovSource, gold_reward

__all__ = ["WorldConfig", "World", "collect_preferences", "prepare_world"]


@dataclass
class WorldConfig:
    """Sizes of the synthetic world and of its pretraining and reward-model training."""
    vocab_size: int = 8            # END + 7 letters
    max_len: int = 12              # tokens per sequence at most
    window: int = 3                # previous tokens the policy sees
    corpus_size: int = 4000        # pretraining sequences
    pretrain_epochs: int = 8
    train_pairs: int = 3000        # preference pairs sampled for training (ties are dropped)
    test_pairs: int = 2000         # held-out pairs, labelled without noise
    label_noise: float = 0.1       # probability that the labeller flips a preference
    repeat_penalty: float = 1.5    # the gold reward's price of an immediate repetition
    rm_epochs: int = 20


@dataclass
class World:
    source: MarkovSource
    reference: TokenPolicy        # pi_ref, the pretrained model (copy it before fine-tuning)
    reward_model: RewardModel     # r_phi, normalised to mean 0, std 1 on pi_ref's samples
    config: WorldConfig
    pretrain_nll: list            # mean NLL per token (nats) after each pretraining epoch
    rm_loss: list                 # mean Bradley-Terry loss after each epoch
    rm_accuracy: float            # held-out agreement with the noise-free gold preference
    rm_accuracy_noisy: float      # agreement with the training labels (noise included)

    def gold(self, tokens) -> np.ndarray:
        """(B,) the hidden gold reward of each sequence."""
        return gold_reward(tokens, self.config.vocab_size, self.config.repeat_penalty)


def collect_preferences(policy: TokenPolicy, n_pairs: int, rng: np.random.Generator,
                        gold_fn, label_noise: float) -> Preferences:
    """Sample n_pairs pairs from `policy` and have the (noisy) gold judge label them."""
    seq_a, _ = policy.sample(n_pairs, rng)
    seq_b, _ = policy.sample(n_pairs, rng)
    return label_preferences(seq_a, seq_b, gold_fn(seq_a), gold_fn(seq_b), rng, label_noise)


def prepare_world(config: WorldConfig, rng: np.random.Generator) -> World:
    """Corpus -> pi_ref -> preferences -> reward model (module docstring)."""
    source = MarkovSource.random(rng, config.vocab_size, config.max_len)
    reference = TokenPolicy(config.vocab_size, config.max_len, rng, window=config.window)
    nll = pretrain(reference, source.sample(config.corpus_size, rng), rng,
                   epochs=config.pretrain_epochs)

    def gold(tokens):
        return gold_reward(tokens, config.vocab_size, config.repeat_penalty)

    train = collect_preferences(reference, config.train_pairs, rng, gold, config.label_noise)
    test = collect_preferences(reference, config.test_pairs, rng, gold, 0.0)
    reward_model = RewardModel(config.vocab_size, config.max_len, rng)
    rm_loss = train_reward_model(reward_model, train, rng, epochs=config.rm_epochs)
    reward_model.normalize(reference.sample(config.test_pairs, rng)[0])
    return World(source=source, reference=reference, reward_model=reward_model, config=config,
                 pretrain_nll=nll, rm_loss=rm_loss,
                 rm_accuracy=preference_accuracy(reward_model, test),
                 rm_accuracy_noisy=preference_accuracy(reward_model, train))
