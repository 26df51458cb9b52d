"""The language model: a tiny autoregressive token policy, pretrained by maximum likelihood.

    pi_theta(x_t | x_<t) = softmax(MLP(phi(x_<t, t)))

The context features phi are one-hot codes of the previous `window` tokens (a BOS symbol stands in
before the start) followed by a one-hot code of the position t. A fixed window instead of attention
keeps the model a plain MLP; the position lets it learn length-dependent habits such as "never stop
before three letters". The probability of a whole sequence x of length n is the product of its
per-token probabilities, so

    log pi_theta(x) = sum_{t < n} log pi_theta(x_t | x_<t).

Pretraining minimises the negative log-likelihood of a corpus, averaged over its tokens (END tokens
included: the model must learn when to stop):

    L_MLE(theta) = -(1 / N_tokens) sum_x sum_{t < n(x)} log pi_theta(x_t | x_<t).

In RLHF terms this is the supervised "pretrained" model; a frozen copy of it (`policy.copy()`) is
the reference pi_ref that fine-tuning is kept close to.
"""
from __future__ import annotations

import numpy as np

from ..autodiff import Tensor, no_grad
from ..distributions import Categorical
from ..nn import MLP
from ..optim import Adam
from .sequences import END, sequence_mask, validate_tokens

__all__ = ["TokenPolicy", "pretrain"]


class TokenPolicy:
    """An autoregressive policy over `vocab_size` tokens (token 0 = END) writing at most `max_len`.

    rng: numpy Generator for the initial weights. window: how many previous tokens the MLP sees.
    """

    def __init__(self, vocab_size: int, max_len: int, rng: np.random.Generator, window: int = 3,
                 hidden=(64, 64), activation: str = "tanh", dtype=np.float64):
        if vocab_size < 2 or max_len < 1 or window < 1:
            raise ValueError(f"need vocab_size >= 2, max_len >= 1 and window >= 1, got "
                             f"vocab_size={vocab_size}, max_len={max_len}, window={window}")
        self.vocab_size, self.max_len, self.window = int(vocab_size), int(max_len), int(window)
        self.hidden, self.activation, self.dtype = tuple(hidden), activation, dtype
        # A small output gain starts the model near the uniform distribution over tokens.
        self.net = MLP([self.feature_dim, *self.hidden, self.vocab_size], activation=activation,
                       output_gain=0.01, rng=rng, dtype=dtype)

    @property
    def feature_dim(self) -> int:
        """window one-hot blocks of size vocab_size + 1 (the extra symbol is BOS), then max_len."""
        return self.window * (self.vocab_size + 1) + self.max_len

    # ----- features ---------------------------------------------------------------------------
    def context_features(self, tokens: np.ndarray, t: int) -> np.ndarray:
        """(B, feature_dim) phi(x_<t, t), the context before position t (reads tokens[:, :t])."""
        v1 = self.vocab_size + 1
        bos = self.vocab_size
        feats = np.zeros((len(tokens), self.feature_dim), dtype=self.dtype)
        rows = np.arange(len(tokens))
        for k in range(1, self.window + 1):  # block k-1 holds the token k steps back
            prev = tokens[:, t - k] if t - k >= 0 else np.full(len(tokens), bos)
            feats[rows, (k - 1) * v1 + prev] = 1.0
        feats[:, self.window * v1 + t] = 1.0
        return feats

    def features(self, tokens: np.ndarray) -> np.ndarray:
        """(B, L, feature_dim): the context features of every position of every sequence."""
        return np.stack([self.context_features(tokens, t) for t in range(tokens.shape[1])], axis=1)

    # ----- the distribution -------------------------------------------------------------------
    def distribution(self, features) -> Categorical:
        """pi(. | context) for a (N, feature_dim) batch of contexts."""
        return Categorical(self.net(features))

    def log_probs(self, tokens) -> Tensor:
        """(B, L) Tensor: log pi(x_t | x_<t) at every position (padding too: mask it)."""
        tokens = validate_tokens(tokens, self.vocab_size, self.max_len)
        b, length = tokens.shape
        feats = self.features(tokens).reshape(b * length, self.feature_dim)
        return self.distribution(feats).log_prob(tokens.reshape(-1)).reshape(b, length)

    def sequence_log_prob(self, tokens) -> np.ndarray:
        """(B,) log pi(x): the per-token log-probabilities summed over each sequence."""
        tokens = validate_tokens(tokens, self.vocab_size, self.max_len)
        with no_grad():
            logp = self.log_probs(tokens).data
        return (logp * sequence_mask(tokens)).sum(axis=1)

    def sample(self, n: int, rng: np.random.Generator):
        """Write n sequences token by token. Returns tokens (n, max_len) int64 padded with END, and
        logp (n, max_len) = log pi(x_t | x_<t) of the sampled tokens (0 at padding)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        tokens = np.full((n, self.max_len), END, dtype=np.int64)
        logp = np.zeros((n, self.max_len), dtype=self.dtype)
        alive = np.ones(n, dtype=bool)  # still writing: no END so far
        with no_grad():
            for t in range(self.max_len):
                dist = self.distribution(self.context_features(tokens[alive], t))
                new = dist.sample(rng)
                tokens[alive, t] = new
                logp[alive, t] = dist.log_prob(new).data
                alive[alive] = new != END
                if not alive.any():
                    break
        return tokens, logp

    # ----- parameters -------------------------------------------------------------------------
    def parameters(self) -> list:
        return self.net.parameters()

    def state_dict(self) -> dict:
        return self.net.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state)

    def copy(self) -> "TokenPolicy":
        """An independent copy with the same weights (the frozen reference pi_ref is one)."""
        # The throwaway generator only fills weights that load_state_dict overwrites at once.
        twin = TokenPolicy(self.vocab_size, self.max_len, np.random.default_rng(0), self.window,
                           self.hidden, self.activation, self.dtype)
        twin.load_state_dict({k: np.array(v, copy=True) for k, v in self.state_dict().items()})
        return twin


def pretrain(policy: TokenPolicy, corpus, rng: np.random.Generator, epochs: int = 10,
             batch_size: int = 256, lr: float = 3e-3) -> list:
    """Fit `policy` to `corpus` (B, L) by maximum likelihood with Adam (module docstring).

    Every (context, next token) pair of the corpus is one example; each epoch visits them all in a
    fresh random order. Returns the mean negative log-likelihood per token (nats) of each epoch.
    """
    corpus = validate_tokens(corpus, policy.vocab_size, policy.max_len, name="corpus")
    if len(corpus) == 0:
        raise ValueError("corpus is empty: there are no sequences to pretrain on")
    mask = sequence_mask(corpus)
    contexts = policy.features(corpus)[mask]  # (N, feature_dim), one row per token to predict
    targets = corpus[mask]                    # (N,)
    optimizer = Adam(policy.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(targets))
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            nll = -policy.distribution(contexts[idx]).log_prob(targets[idx]).mean()
            optimizer.zero_grad()
            nll.backward()
            optimizer.step()
            total += nll.item() * len(idx)
        history.append(total / len(targets))
    return history
