"""Preferences and a reward model learned from them with the Bradley-Terry loss.

A labeller compares two sequences (x_a, x_b) sampled from the pretrained model and says which is
better. Here the labeller is the hidden gold reward (task.py) with label noise: it prefers the
higher R_gold, then flips its answer with probability `label_noise`; pairs it scores equal are
dropped (they carry no preference). The Bradley-Terry model (Bradley & Terry 1952; used for RLHF by
Christiano et al. 2017, Ziegler et al. 2019, Ouyang et al. 2022) says the chosen sequence x_w
beats the rejected one x_l with probability sigmoid(r(x_w) - r(x_l)), so the reward model r_phi
is fit by minimising the negative log-likelihood

    L_BT(phi) = -mean log sigmoid(r_phi(x_w) - r_phi(x_l)) = mean softplus(r_phi(x_l) - r_phi(x_w)),

computed stably as softplus(z) = logsumexp(0, z) (never log(sigmoid) of a large negative number).

The reward model is an MLP on a bag of letters, phi(x) = (count of each letter in x) / max_len: it
cannot see order, so it cannot see the repetitions that R_gold punishes. Bradley-Terry fixes r only
up to an added constant, so after training we shift and scale it to mean 0 and standard deviation 1
on samples of the pretrained model (`RewardModel.normalize`); a fixed beta then means the same
thing whatever scale training happened to land on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import check_finite
from ..autodiff import Tensor, as_tensor, logsumexp, no_grad, stack
from ..nn import MLP
from ..optim import Adam
from .sequences import END, sequence_mask, validate_tokens

__all__ = ["Preferences", "label_preferences", "bradley_terry_loss", "RewardModel",
           "train_reward_model", "preference_accuracy"]


@dataclass
class Preferences:
    """n labelled pairs: chosen[i] was preferred to rejected[i]; both (n, L) token arrays."""
    chosen: np.ndarray
    rejected: np.ndarray

    def __len__(self):
        return len(self.chosen)


def label_preferences(seq_a, seq_b, gold_a, gold_b, rng: np.random.Generator,
                      label_noise: float = 0.0) -> Preferences:
    """Label pairs (seq_a[i], seq_b[i]) by their gold rewards (B,): prefer the higher, flip the
    label with probability label_noise, drop exact ties."""
    if not 0.0 <= label_noise <= 0.5:
        raise ValueError(f"label_noise must lie in [0, 0.5], got {label_noise}")
    seq_a, seq_b = np.asarray(seq_a), np.asarray(seq_b)
    gold_a, gold_b = np.asarray(gold_a, dtype=float), np.asarray(gold_b, dtype=float)
    if seq_a.ndim != 2 or seq_a.shape != seq_b.shape:
        raise ValueError(f"seq_a {seq_a.shape} and seq_b {seq_b.shape} must be (n, L) token "
                         f"arrays of one shape")
    if not (len(seq_a) == len(gold_a) == len(gold_b)) or gold_a.ndim != 1 or gold_b.ndim != 1:
        raise ValueError(f"seq_a ({len(seq_a)} pairs), gold_a {gold_a.shape} and gold_b "
                         f"{gold_b.shape} must have one entry per pair")
    check_finite("gold_a", gold_a)
    check_finite("gold_b", gold_b)
    a_wins = gold_a > gold_b
    a_wins ^= rng.random(len(a_wins)) < label_noise  # the noisy labeller
    keep = gold_a != gold_b
    chosen = np.where(a_wins[:, None], seq_a, seq_b)[keep]
    rejected = np.where(a_wins[:, None], seq_b, seq_a)[keep]
    return Preferences(chosen=chosen, rejected=rejected)


def bradley_terry_loss(r_chosen, r_rejected) -> Tensor:
    """mean softplus(r_rejected - r_chosen) = -mean log sigmoid(r_chosen - r_rejected), for (n,)
    rewards of the chosen and rejected sequences (Tensors or arrays; n >= 1)."""
    r_chosen, r_rejected = as_tensor(r_chosen), as_tensor(r_rejected)
    if r_chosen.shape != r_rejected.shape or r_chosen.ndim != 1:
        raise ValueError(f"r_chosen {r_chosen.shape} and r_rejected {r_rejected.shape} must be "
                         f"(n,) arrays of one shape")
    if r_chosen.size == 0:
        raise ValueError("r_chosen is empty: the Bradley-Terry loss needs at least one pair")
    check_finite("r_chosen", r_chosen.data)
    check_finite("r_rejected", r_rejected.data)
    z = r_rejected - r_chosen
    zeros = np.zeros(z.shape, dtype=z.dtype)
    return logsumexp(stack([zeros, z], axis=1), axis=1).mean()  # softplus(z) = log(e^0 + e^z)


class RewardModel:
    """r_phi(x) = (MLP(phi(x)) - offset) / scale, phi(x) = letter counts / max_len (docstring)."""

    def __init__(self, vocab_size: int, max_len: int, rng: np.random.Generator,
                 hidden=(32, 32), activation: str = "relu", dtype=np.float64):
        self.vocab_size, self.max_len, self.dtype = int(vocab_size), int(max_len), dtype
        self.net = MLP([self.vocab_size - 1, *hidden, 1], activation=activation, output_gain=1.0,
                       rng=rng, dtype=dtype)
        self.offset, self.scale = 0.0, 1.0

    def features(self, tokens) -> np.ndarray:
        """(B, vocab_size - 1): how often each letter occurs in each sequence, over max_len."""
        tokens = validate_tokens(tokens, self.vocab_size, self.max_len)
        letters = np.where(sequence_mask(tokens), tokens, END)
        counts = np.stack([(letters == k).sum(axis=1) for k in range(1, self.vocab_size)], axis=1)
        return counts.astype(self.dtype) / self.max_len

    def raw_score(self, tokens) -> Tensor:
        """(B,) Tensor: the MLP's output before normalisation (what training differentiates)."""
        return self.net(self.features(tokens)).reshape(-1)

    def __call__(self, tokens) -> np.ndarray:
        """(B,) normalised reward r_phi(x) of each sequence, as an array (no graph)."""
        with no_grad():
            raw = self.raw_score(tokens).data
        return (raw - self.offset) / self.scale

    def normalize(self, tokens) -> None:
        """Set offset and scale so r_phi has mean 0 and standard deviation 1 on `tokens`."""
        with no_grad():
            raw = self.raw_score(tokens).data
        self.offset, self.scale = float(raw.mean()), float(max(raw.std(), 1e-8))

    def parameters(self) -> list:
        return self.net.parameters()


def train_reward_model(model: RewardModel, prefs: Preferences, rng: np.random.Generator,
                       epochs: int = 20, batch_size: int = 128, lr: float = 3e-3) -> list:
    """Minimise L_BT over `prefs` with Adam; returns the mean loss of each epoch."""
    if len(prefs) == 0:
        raise ValueError("prefs is empty: there are no preference pairs to train on")
    chosen = validate_tokens(prefs.chosen, model.vocab_size, model.max_len, name="prefs.chosen")
    rejected = validate_tokens(prefs.rejected, model.vocab_size, model.max_len,
                               name="prefs.rejected")
    if len(chosen) != len(rejected):
        raise ValueError(f"prefs.chosen has {len(chosen)} sequences but prefs.rejected has "
                         f"{len(rejected)}; they must pair up")
    f_w, f_l = model.features(chosen), model.features(rejected)  # (n, K) each
    optimizer = Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(f_w))
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            r_w = model.net(f_w[idx]).reshape(-1)
            r_l = model.net(f_l[idx]).reshape(-1)
            loss = bradley_terry_loss(r_w, r_l)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(total / len(f_w))
    return history


def preference_accuracy(model: RewardModel, prefs: Preferences) -> float:
    """Fraction of pairs where the model scores the chosen sequence higher (ties count half)."""
    if len(prefs) == 0:
        raise ValueError("prefs is empty: accuracy over no pairs is undefined")
    r_w, r_l = model(prefs.chosen), model(prefs.rejected)
    return float(np.mean((r_w > r_l) + 0.5 * (r_w == r_l)))
