"""The synthetic world of the RLHF demo: a "language" that pretraining imitates and a hidden judge.

* `MarkovSource` writes the pretraining corpus: a first-order Markov chain over the letters that
  must write `min_len` letters, then stops (emits END) with probability `end_prob` before each
  further letter, and is cut off at `max_len` letters. Its letter-to-letter table is drawn once from
  a Dirichlet distribution, with the chance of repeating the previous letter kept small
  (`repeat_prob`): in this language a letter rarely follows itself.
* `gold_reward` is the "human" whose taste we want: it likes letters early in the alphabet and
  dislikes immediate repetitions,

      R_gold(x) = sum_t v[x_t]  -  repeat_penalty * #{t : x_t = x_(t-1)},
      v[letter k] = 1 - 2 (k - 1) / (K - 1)   (k = 1..K: a is worth +1, the last letter -1).

  The reward model never sees R_gold, only noisy preferences between samples of the pretrained
  model, and only through letter counts (see reward_model.py). On the pretrained model's samples
  repetitions are rare, so counts explain R_gold well; a policy that is pushed far from the
  pretrained model can repeat its favourite letter, which counts cannot see. That blind spot is
  what makes reward-model over-optimisation visible (Gao et al. 2023, "Scaling laws for reward
  model overoptimization").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sequences import END, sequence_mask, validate_tokens

__all__ = ["ALPHABET", "MarkovSource", "letter_values", "gold_reward"]

ALPHABET = ".abcdefghijklmno"  # token 0 is END, written "."; tokens 1.. are the letters a, b, ...


def _sample_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of `probs` (B, K), by inverse CDF: the first k with u < cdf[k]."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), probs.shape[1] - 1)


@dataclass(frozen=True)
class MarkovSource:
    """Corpus generator. start: (K,) first-letter probabilities; transition: (K, K) row-stochastic
    letter -> next letter probabilities (letters indexed 0..K-1 here, token = index + 1)."""
    start: np.ndarray
    transition: np.ndarray
    min_len: int = 3
    end_prob: float = 0.2
    max_len: int = 12

    @property
    def vocab_size(self) -> int:
        return self.transition.shape[0] + 1

    @classmethod
    def random(cls, rng: np.random.Generator, vocab_size: int = 8, max_len: int = 12,
               min_len: int = 3, end_prob: float = 0.2, repeat_prob: float = 0.02,
               concentration: float = 0.5) -> "MarkovSource":
        """A source whose next-letter rows are Dirichlet(concentration) draws, rescaled so each
        letter repeats itself with probability `repeat_prob`."""
        if not 3 <= vocab_size <= len(ALPHABET):
            raise ValueError(f"vocab_size must lie in [3, {len(ALPHABET)}], got {vocab_size}")
        if not 1 <= min_len <= max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len}, "
                             f"max_len={max_len}")
        if not 0.0 <= repeat_prob < 1.0 or not 0.0 < end_prob < 1.0:
            raise ValueError(f"need repeat_prob in [0, 1) and end_prob in (0, 1), got "
                             f"repeat_prob={repeat_prob}, end_prob={end_prob}")
        k = vocab_size - 1
        start = rng.dirichlet(np.full(k, 1.0))
        off = rng.dirichlet(np.full(k - 1, concentration), size=k)  # (K, K-1) off-diagonal mass
        transition = np.zeros((k, k))
        for i in range(k):  # row i: repeat with repeat_prob, else move to another letter
            others = [j for j in range(k) if j != i]
            transition[i, others] = (1.0 - repeat_prob) * off[i]
            transition[i, i] = repeat_prob
        return cls(start=start, transition=transition, min_len=min_len, end_prob=end_prob,
                   max_len=max_len)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n sequences, (n, max_len) int64, padded with END."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        tokens = np.full((n, self.max_len), END, dtype=np.int64)
        alive = np.ones(n, dtype=bool)  # has not emitted END yet
        prev = np.zeros(n, dtype=np.int64)
        for t in range(self.max_len):
            if t >= self.min_len:
                alive &= rng.random(n) >= self.end_prob
            probs = self.start[None, :].repeat(n, 0) if t == 0 else self.transition[prev]
            letter = _sample_rows(probs, rng)
            tokens[alive, t] = letter[alive] + 1
            prev = letter
        return tokens


def letter_values(vocab_size: int) -> np.ndarray:
    """(vocab_size,) the gold value of each token: 0 for END, then 1 down to -1 for the letters."""
    if vocab_size < 3:   # END and at least two letters, so that a and the last letter differ
        raise ValueError(f"vocab_size must be >= 3, got {vocab_size}")
    k = vocab_size - 1
    return np.concatenate([[0.0], 1.0 - 2.0 * np.arange(k) / (k - 1)])


def gold_reward(tokens, vocab_size: int, repeat_penalty: float = 1.5) -> np.ndarray:
    """(B,) R_gold of each sequence (module docstring). END and padding are worth nothing."""
    tokens = validate_tokens(tokens, vocab_size)
    mask = sequence_mask(tokens) & (tokens != END)  # the letters of each sequence
    value = (letter_values(vocab_size)[tokens] * mask).sum(axis=1)
    repeats = (mask[:, 1:] & mask[:, :-1] & (tokens[:, 1:] == tokens[:, :-1])).sum(axis=1)
    return value - repeat_penalty * repeats
