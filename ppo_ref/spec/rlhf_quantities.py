"""The quantities RLHF code needs, checkable like the others: the per-token KL-shaped reward,
advantage whitening masked to the valid tokens, and GAE over padded sequences (ppo_ref's own
definitions are ppo_ref.rlhf.finetune's; the mistakes are those of "The N Implementation
Details of RLHF with PPO", Huang et al. 2024).

A batch is B sequences right-padded to L tokens; mask (B, L) marks each sequence's tokens.
Whatever a padded position holds (a log-probability or a value of the pad token, a reward of 0)
must not reach a valid token's result, so every case puts something nonzero there. The rewards
are returned (B, L), 0 at padding (a reward paid there would flow into GAE); advantages,
returns and whitened advantages for the valid tokens only, x[mask] in row-major order, so an
implementation that leaves anything at padding is not judged on it.
"""
from __future__ import annotations

import numpy as np

from ..gae import compute_gae
from ..losses import normalize_advantages
from ..rlhf.finetune import sequence_gae, token_rewards
from .cases import grid
from .quantities import QUANTITIES, Case, Mistake, Quantity, _max_abs

__all__ = ["RLHF_QUANTITIES", "RLHF_FAMILIES", "rlhf_rewards_family", "rlhf_whitening_family",
           "rlhf_gae_family"]


def _mask(lengths, L):
    return np.arange(L)[None, :] < np.asarray(lengths)[:, None]


def _padded(rng, lengths, L, loc=0.0, scale=1.0, pad=None):
    """(B, L) grid values; padding filled with pad (a constant) or with random values."""
    x = grid(rng.normal(loc, scale, (len(lengths), L)))
    if pad is not None:
        x = np.where(_mask(lengths, L), x, pad)
    return x


# ----- the per-token KL-shaped reward ---------------------------------------------------------

def rlhf_rewards_family(sign=-1.0, penalise_padding=False, score_at="last_token", score_op="add"):
    """r_t = sign * beta (logp_t - logp_ref_t) on the tokens (everywhere, if penalise_padding),
    the score added at (or written over) the last token, or at the last padded position."""
    def fn(logp, logp_ref, mask, scores, beta):
        kl = sign * beta * (logp - logp_ref)
        rewards = kl if penalise_padding else np.where(mask, kl, 0.0)
        rewards = np.array(rewards, dtype=float)
        rows = np.arange(len(rewards))
        last = mask.sum(axis=1) - 1 if score_at == "last_token" else np.full(len(rewards), -1)
        rewards[rows, last] = scores + (rewards[rows, last] if score_op == "add" else 0.0)
        return rewards
    return fn


def _rewards_cases(rng):
    mask = _mask([3, 4], 4)
    cases = [Case("fixed/two_sequences", "lengths 3 and 4, beta = 0.5: r = -0.5 (logp - logp_ref) "
                  "on each token, the score (1.0, -2.0) added at the last token (t = 2 and t = 3); "
                  "the padded position holds logp = -5, logp_ref = -1 and is not rewarded",
                  (np.array([[-1.0, -2.0, -0.5, -5.0], [-0.25, -1.0, -1.5, -2.0]]),
                   np.array([[-1.5, -1.0, -0.5, -1.0], [-0.5, -1.0, -1.0, -3.0]]),
                   mask, np.array([1.0, -2.0]), 0.5))]
    for B, L, beta in [(1, 1, 0.1), (3, 5, 0.05), (6, 8, 0.2), (16, 12, 0.1)]:
        lengths = rng.integers(1, L + 1, B)
        lengths[0] = max(1, L - 2)            # one sequence shorter than L (when L > 1)
        cases.append(Case(f"random/B{B}_L{L}_beta{beta}", f"{B} sequences of 1..{L} tokens, "
                          "log-probabilities of the pad token at padding",
                          (_padded(rng, lengths, L, -1.0, 0.5), _padded(rng, lengths, L, -1.0, 0.5),
                           _mask(lengths, L), grid(rng.normal(0, 2, B)), beta)))
    return cases


RLHF_TOKEN_REWARDS = Quantity(
    "rlhf_token_rewards",
    "fn(logp (B, L), logp_ref (B, L), mask (B, L) bool, scores (B,), beta) -> rewards (B, L)",
    "r_t = -beta (log pi(x_t) - log pi_ref(x_t)) on each token, + the score at the last token; "
    "0 at padding", ("rewards",), token_rewards, _rewards_cases,
    lambda a, e: (_max_abs(a[3], *e) + a[4] * _max_abs(a[0], a[1]) + 1.0,),
    {"kl_penalty_sign": Mistake(
        "the KL penalty has the wrong sign: r_t = -beta (log pi - log pi_ref) penalises moving "
        "away from pi_ref", rlhf_rewards_family(sign=1.0)),
     "padding_penalised": Mistake(
        "the KL penalty is paid at padding too (the pad token's log-probabilities): mask it, "
        "rewards are 0 there",
        rlhf_rewards_family(penalise_padding=True)),
     "score_at_padded_end": Mistake(
        "the score is added at the last position of the padded row, not at each sequence's last "
        "token (index mask.sum(1) - 1)", rlhf_rewards_family(score_at="last_position")),
     "score_overwrites_kl": Mistake(
        "the score replaces the last token's KL penalty (rewards[last] = score); it is added to "
        "it (rewards[last] += score)", rlhf_rewards_family(score_op="assign"))})


# ----- advantage whitening masked to the valid tokens ----------------------------------------

def rlhf_whitening_family(scope="tokens", ddof=1, eps_in_sqrt=False):
    """(A - mean) / (std + eps) with mean and std over the valid tokens ("tokens"), over every
    position, padding included ("all"), or per sequence ("sequence"); -> whitened[mask]."""
    def whiten(a, eps=1e-8):
        if a.size == 1:
            return a * 0.0
        top = a - a.mean()
        return top / (np.sqrt(a.var(ddof=ddof) + eps) if eps_in_sqrt else a.std(ddof=ddof) + eps)

    def fn(advantages, mask):
        if scope == "all":
            return whiten(advantages)[mask]
        if scope == "sequence":
            return np.concatenate([whiten(row[m]) for row, m in zip(advantages, mask)])
        return whiten(advantages[mask])
    return fn


def _whitening_reference(advantages, mask):
    return normalize_advantages(advantages[mask])


def _whitening_cases(rng):
    mask = _mask([2, 3], 3)
    cases = [Case("fixed/five_tokens", "advantages 1, 3 | 0, 2, 4 on five tokens (mean 2, sample "
                  "std sqrt(2.5)), 100 at the padded position; whitened: (A - 2) / sqrt(2.5)",
                  (np.array([[1.0, 3.0, 100.0], [0.0, 2.0, 4.0]]), mask))]
    for B, L, pad in [(2, 4, 0.0), (4, 6, None), (8, 10, 0.0), (16, 12, None)]:
        lengths = rng.integers(2, L + 1, B)
        lengths[0] = L - 1
        cases.append(Case(f"random/B{B}_L{L}", f"{B} sequences of 2..{L} tokens, padding holds "
                          + ("0" if pad is not None else "random values"),
                          (_padded(rng, lengths, L, 0.5, 1.5, pad), _mask(lengths, L))))
    return cases


def _whitening_scale(args, expected):
    adv = args[0][args[1]]
    return ((_max_abs(expected[0]) + 1.0) * (1.0 + _max_abs(adv) / (np.std(adv, ddof=1) + 1e-8)),)


RLHF_WHITENING = Quantity(
    "rlhf_whitening", "fn(advantages (B, L), mask (B, L) bool) -> whitened[mask] (N,)",
    "(A - mean) / (std + 1e-8) with mean and std (ddof = 1) over the valid tokens of the batch",
    ("whitened",), _whitening_reference, _whitening_cases, _whitening_scale,
    {"padding_in_statistics": Mistake(
        "the mean and std include the padded positions: take them over the valid tokens only "
        "(masked_mean, masked_var)", rlhf_whitening_family(scope="all")),
     "per_sequence": Mistake(
        "each sequence is whitened by its own mean and std; the statistics are over all valid "
        "tokens of the batch", rlhf_whitening_family(scope="sequence")),
     "ddof0": Mistake("the std uses ddof = 0 (numpy's default); ppo_ref and torch's .std() use "
                      "ddof = 1", rlhf_whitening_family(ddof=0))},
    note="sequences of at least 2 tokens; whitened values at padding are not compared")


# ----- GAE over padded sequences --------------------------------------------------------------

def rlhf_gae_family(sequence_end="terminal", returns="advantages_plus_values"):
    """GAE(gamma = 1, lam) per sequence. sequence_end: "terminal" (ppo_ref: V = 0 after the last
    token), "truncation" (bootstraps from the value at the padded position after it), "none"
    (the recursion runs on through the padding to the row's end). returns: A + V, or the
    reward-to-go sum of the rewards."""
    def fn(rewards, values, mask, lam):
        B, L = mask.shape
        if sequence_end == "terminal":
            adv, ret = sequence_gae(rewards, values, mask, lam)
        else:
            r = np.where(mask, rewards, 0.0)
            next_values = np.concatenate([values[:, 1:], np.zeros((B, 1))], axis=1)
            end = np.zeros_like(mask)
            end[:, -1] = True                   # the row's last position is terminal
            cut = np.zeros_like(mask)
            if sequence_end == "truncation":
                cut = mask & ~np.concatenate([mask[:, 1:], np.zeros((B, 1), bool)], axis=1)
            adv, ret = (x.T for x in compute_gae(r.T, values.T, next_values.T, end.T, cut.T,
                                                 1.0, lam))
        if returns == "reward_to_go":
            r = np.where(mask, rewards, 0.0)
            ret = np.cumsum(r[:, ::-1], axis=1)[:, ::-1]
        return adv[mask], ret[mask]
    return fn


def _gae_reference(rewards, values, mask, lam):
    adv, ret = sequence_gae(rewards, values, mask, lam)
    return adv[mask], ret[mask]


def _gae_cases(rng):
    mask = _mask([2], 3)
    cases = [Case("fixed/two_tokens_lam_half", "one sequence of 2 tokens, rewards (0, 1), values "
                  "(0.5, 0.25), 8 at the padded position, lam = 0.5: delta_1 = 1 - 0.25 = 0.75 (the "
                  "end is terminal), delta_0 = 0 + 0.25 - 0.5 = -0.25, A = (-0.25 + 0.5 * 0.75, "
                  "0.75) = (0.125, 0.75), returns = A + V = (0.625, 1.0)",
                  (np.array([[0.0, 1.0, 0.0]]), np.array([[0.5, 0.25, 8.0]]), mask, 0.5))]
    for B, L, lam in [(1, 1, 0.95), (3, 5, 0.95), (6, 8, 1.0), (8, 12, 0.0), (16, 12, 0.9)]:
        lengths = rng.integers(1, L + 1, B)
        lengths[0] = max(1, L - 2)
        rewards = np.where(_mask(lengths, L), _padded(rng, lengths, L, 0.0, 0.3), 0.0)
        cases.append(Case(f"random/B{B}_L{L}_lam{lam}", f"{B} sequences of 1..{L} tokens, rewards "
                          "0 and values of the pad token at padding",
                          (rewards, _padded(rng, lengths, L, 0.0, 1.0), _mask(lengths, L), lam)))
    return cases


RLHF_SEQUENCE_GAE = Quantity(
    "rlhf_sequence_gae",
    "fn(rewards (B, L), values (B, L), mask (B, L) bool, lam) -> (advantages[mask], returns[mask])",
    "GAE(gamma = 1, lam) along each sequence; the state after its last token is terminal (V = 0)",
    ("advantages", "returns"), _gae_reference, _gae_cases,
    lambda a, e: (_max_abs(a[0], np.where(a[2], a[1], 0.0), *e) * a[2].shape[1] ** 0.5,) * 2,
    {"bootstraps_from_padding": Mistake(
        "the last token bootstraps from the value at the padded position after it (the end is "
        "treated as a truncation); after the last token the episode is over: V = 0",
        rlhf_gae_family(sequence_end="truncation")),
     "runs_over_padding": Mistake(
        "the GAE recursion runs on through the padding (pad values leak into the last tokens' "
        "advantages); stop it at each sequence's last token",
        rlhf_gae_family(sequence_end="none")),
     "returns_as_reward_to_go": Mistake(
        "the returns are the reward-to-go sum of the rewards (the lam = 1 return); the value "
        "target is A + V, the lam-return", rlhf_gae_family(returns="reward_to_go"))},
    note="gamma = 1; advantages and returns at padding are not compared")


RLHF_QUANTITIES = {q.name: q for q in [RLHF_TOKEN_REWARDS, RLHF_WHITENING, RLHF_SEQUENCE_GAE]}
QUANTITIES.update(RLHF_QUANTITIES)   # the kit's one list of quantities (quantities.py imports this)

# (family, {mistake: knobs}, moot) for variants.FAMILIES
RLHF_FAMILIES = {
    "rlhf_token_rewards": (rlhf_rewards_family, {
        "kl_penalty_sign": {"sign": 1.0}, "padding_penalised": {"penalise_padding": True},
        "score_at_padded_end": {"score_at": "last_position"},
        "score_overwrites_kl": {"score_op": "assign"}}, {}),
    "rlhf_whitening": (rlhf_whitening_family, {
        "padding_in_statistics": {"scope": "all"}, "per_sequence": {"scope": "sequence"},
        "ddof0": {"ddof": 0}}, {}),
    "rlhf_sequence_gae": (rlhf_gae_family, {
        "bootstraps_from_padding": {"sequence_end": "truncation"},
        "runs_over_padding": {"sequence_end": "none"},
        "returns_as_reward_to_go": {"returns": "reward_to_go"}}, {}),
}
