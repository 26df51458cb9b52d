"""Token sequences: how a batch of variable-length sequences is stored, checked and enumerated.

A batch of sequences is an int64 array `tokens` of shape (B, L), L = the maximum length. Token 0 is
END. A sequence is everything up to and including its first END; a sequence that never emits END
stops at L tokens. Positions after the first END are padding: they are ignored everywhere (we fill
them with END). `sequence_mask(tokens)` marks the positions that belong to the sequence.

Convention: reaching the maximum length ends a sequence for good (the environment is "write at most
L tokens"), it is not a time-limit truncation; the position is part of the policy's input, so the
state after L tokens is a true terminal state and nothing is bootstrapped past it.
"""
from __future__ import annotations

import itertools

import numpy as np

from .._checks import first_index

__all__ = ["END", "validate_tokens", "sequence_mask", "sequence_lengths", "pad_after_end",
           "enumerate_sequences", "decode"]

END = 0  # the end-of-sequence token
MAX_ENUMERATED = 1_000_000  # enumerate_sequences refuses more (memory grows like K^L rows)


def validate_tokens(tokens, vocab_size: int, max_len: int | None = None,
                    name: str = "tokens") -> np.ndarray:
    """`tokens` as an int64 array (B, L) after checking it; ValueError/TypeError naming `name`.

    Checks: integer dtype, two dimensions, at least one column, L <= max_len (when given), and every
    entry in [0, vocab_size) -- padding included, so a typo can never hide behind an END.
    """
    arr = np.asarray(tokens)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (B, L) with L >= 1, got shape {arr.shape}")
    if max_len is not None and arr.shape[1] > max_len:
        raise ValueError(f"{name} has {arr.shape[1]} positions, more than max_len={max_len}")
    bad = (arr < 0) | (arr >= vocab_size)
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"{name} has token {arr[i]} at index {i}, outside the vocabulary "
                         f"[0, {vocab_size})")
    return arr.astype(np.int64, copy=False)


def sequence_mask(tokens: np.ndarray) -> np.ndarray:
    """(B, L) bool: True at positions up to and including the first END.

    Position t belongs to the sequence iff no END occurs strictly before t:
        mask[b, t] = (t == 0) or all(tokens[b, :t] != END)
    """
    ended_before = np.cumsum(tokens == END, axis=1) - (tokens == END)  # ENDs strictly before t
    return ended_before == 0


def sequence_lengths(tokens: np.ndarray) -> np.ndarray:
    """(B,) number of tokens in each sequence, its END included."""
    return sequence_mask(tokens).sum(axis=1)


def pad_after_end(tokens: np.ndarray) -> np.ndarray:
    """A copy with every position after the first END set to END (the canonical padding)."""
    return np.where(sequence_mask(tokens), tokens, END)


def enumerate_sequences(vocab_size: int, max_len: int) -> np.ndarray:
    """Every distinct sequence, as a (S, max_len) array padded with END.

    With K = vocab_size - 1 letters there are sum_{k<max_len} K^k sequences that end with END after
    k letters plus K^max_len that reach the maximum length, so S = (K^(L+1) - 1)/(K - 1) for K > 1.
    Meant for tiny vocabularies (exact KL in the tests): the count grows like K^L.
    """
    if vocab_size < 2 or max_len < 1:
        raise ValueError(f"enumerate_sequences needs vocab_size >= 2 and max_len >= 1, got "
                         f"vocab_size={vocab_size}, max_len={max_len}")
    count = sum((vocab_size - 1) ** k for k in range(max_len + 1))
    if count > MAX_ENUMERATED:
        raise ValueError(f"vocab_size={vocab_size}, max_len={max_len} has {count:,} sequences, "
                         f"more than the {MAX_ENUMERATED:,} enumerate_sequences will list; "
                         f"estimate the KL from samples instead (kl.stepwise_kl)")
    letters = range(1, vocab_size)
    rows = []
    for k in range(max_len + 1):
        for prefix in itertools.product(letters, repeat=k):
            row = list(prefix) + [END] * (max_len - k)  # k < max_len: END follows the letters
            rows.append(row)
    return np.array(rows, dtype=np.int64)


def decode(tokens: np.ndarray, alphabet: str) -> list[str]:
    """Each sequence as a string, one character per token (alphabet[0] is END), padding dropped."""
    tokens = validate_tokens(tokens, len(alphabet))
    mask = sequence_mask(tokens)
    return ["".join(alphabet[t] for t in row[m]) for row, m in zip(tokens, mask)]
