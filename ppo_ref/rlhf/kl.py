"""KL(pi_theta || pi_ref) between two sequence policies: exactly, and estimated from samples.

The KL between the distributions over whole sequences that two autoregressive policies define is

    KL(pi || pi_ref) = sum_x pi(x) [log pi(x) - log pi_ref(x)]
                     = E_{x ~ pi} [ sum_t log pi(x_t|x_<t) - log pi_ref(x_t|x_<t) ].      (1)

Three ways to compute it, all used or tested here:

* exact: enumerate every sequence (only possible for a tiny vocabulary and length) and sum (1);
* `sequence_log_ratio`: the Monte-Carlo estimate of (1) from sequences sampled from pi. Its
  per-token terms are exactly what the per-token KL penalty of RLHF charges (Ziegler et al. 2019,
  Stiennon et al. 2020), so the penalty's expected total is beta * KL. A single sample can be
  negative; only the mean is a KL.
* `stepwise_kl`: by the chain rule of KL, (1) also equals E_{x ~ pi}[sum_t KL(pi(.|x_<t) ||
  pi_ref(.|x_<t))]: the full next-token KL at each visited context. Each term is >= 0 and it has
  lower variance, at the cost of evaluating both whole next-token distributions.
"""
from __future__ import annotations

import numpy as np

from ..autodiff import no_grad
from .sequences import enumerate_sequences, sequence_mask, validate_tokens

__all__ = ["exact_sequence_kl", "sequence_log_ratio", "stepwise_kl"]


def _check_pair(policy, reference) -> None:
    if (policy.vocab_size, policy.max_len) != (reference.vocab_size, reference.max_len):
        raise ValueError(f"policy (vocab_size={policy.vocab_size}, max_len={policy.max_len}) and "
                         f"reference (vocab_size={reference.vocab_size}, "
                         f"max_len={reference.max_len}) must write the same kind of sequence")


def exact_sequence_kl(policy, reference) -> float:
    """KL(policy || reference) over whole sequences by enumerating them all (tiny models only)."""
    _check_pair(policy, reference)
    every = enumerate_sequences(policy.vocab_size, policy.max_len)
    logp = policy.sequence_log_prob(every)
    logq = reference.sequence_log_prob(every)
    return float(np.sum(np.exp(logp) * (logp - logq)))


def sequence_log_ratio(logp, logp_ref, mask) -> np.ndarray:
    """(B,) log pi(x) - log pi_ref(x) of each sampled sequence, from per-token log-probs (B, L)
    and the (B, L) mask of its positions. Their mean over x ~ pi estimates KL(pi || pi_ref)."""
    logp, logp_ref, mask = np.asarray(logp), np.asarray(logp_ref), np.asarray(mask, dtype=bool)
    if not logp.shape == logp_ref.shape == mask.shape or logp.ndim != 2:
        raise ValueError(f"logp {logp.shape}, logp_ref {logp_ref.shape} and mask {mask.shape} "
                         f"must share one (B, L) shape")
    return np.where(mask, logp - logp_ref, 0.0).sum(axis=1)


def stepwise_kl(policy, reference, tokens) -> np.ndarray:
    """(B,) sum over each sequence's positions of KL(pi(.|x_<t) || pi_ref(.|x_<t)); its mean over
    sequences sampled from `policy` estimates the sequence KL (module docstring)."""
    _check_pair(policy, reference)
    tokens = validate_tokens(tokens, policy.vocab_size, policy.max_len)
    b, length = tokens.shape
    feats = policy.features(tokens).reshape(b * length, policy.feature_dim)
    feats_ref = reference.features(tokens).reshape(b * length, reference.feature_dim)
    with no_grad():
        step = policy.distribution(feats).kl(reference.distribution(feats_ref)).data
    return (step.reshape(b, length) * sequence_mask(tokens)).sum(axis=1)
