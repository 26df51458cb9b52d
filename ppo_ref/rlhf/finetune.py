"""PPO fine-tuning of the token policy against a reward model, with a KL penalty to pi_ref.

Each sequence is one episode; writing token x_t in context x_<t is action a_t in state s_t. The
reward of each token is the KL penalty, and the reward model's score arrives with the last token
(Ziegler et al. 2019, eq. 2; Stiennon et al. 2020; Ouyang et al. 2022):

    r_t = -beta * (log pi_theta(x_t | x_<t) - log pi_ref(x_t | x_<t))  +  [t = n - 1] * r_phi(x),

so an episode's return is r_phi(x) - beta * (log pi_theta(x) - log pi_ref(x)), whose expectation
over x ~ pi_theta is the RLHF objective  E[r_phi(x)] - beta * KL(pi_theta || pi_ref).
Conventions: log pi_theta in the penalty is that of the policy that sampled the batch, a constant
during the update (the penalty is a reward, not a loss term); gamma = 1 (the objective is the
undiscounted sequence return); the episode ends at END or at max_len, both true terminals.

One iteration, as in PPO's Algorithm 1 (Schulman et al. 2017):
  1. sample `batch_size` sequences from pi_theta; score them with r_phi; compute r_t;
  2. advantages by GAE over the tokens of each sequence (ppo_ref.gae.compute_gae), normalised
     once over all tokens of the batch (ddof=1), so every minibatch sees one scale (the CartPole
     trainer normalises per minibatch instead);
  3. `update_epochs` passes of minibatch Adam on the clipped surrogate plus the value loss
     (ppo_ref.losses.ppo_loss), over all tokens of the batch;
  4. with a KL target, move beta by the proportional controller (ProportionalKLController).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import check_count, check_finite, check_scalar
from ..autodiff import no_grad
from ..gae import compute_gae
from ..losses import ProportionalKLController, normalize_advantages, ppo_loss
from ..nn import MLP
from ..optim import Adam, clip_grad_norm
from .kl import sequence_log_ratio, stepwise_kl
from .sequences import sequence_lengths, sequence_mask

__all__ = ["RLHFConfig", "token_rewards", "sequence_gae", "rlhf_finetune", "evaluate_policy"]


@dataclass
class RLHFConfig:
    """Hyperparameters of RLHF fine-tuning (sequence counts, not tokens, unless stated)."""
    iterations: int = 200          # PPO iterations (sample, then update)
    batch_size: int = 128          # sequences sampled per iteration
    update_epochs: int = 4         # passes over the batch's tokens per iteration
    num_minibatches: int = 4       # minibatches per pass
    lr: float = 2e-4               # Adam step size, policy and value network together
    clip_eps: float = 0.2          # PPO clip range
    lam: float = 0.95              # GAE lambda over tokens (gamma is 1)
    vf_coef: float = 0.5           # weight of the value loss
    max_grad_norm: float = 1.0     # global gradient-norm clip
    beta: float = 0.05             # KL coefficient; the starting value when target_kl is set
    target_kl: float | None = None  # nats per sequence; set -> beta follows the controller
    kl_horizon: float = 1000.0     # controller horizon in sequences (gain = batch_size / horizon)
    value_hidden: tuple = (64, 64)  # the value network's hidden layers
    eval_every: int = 5            # iterations between evaluations on fresh samples
    eval_samples: int = 500        # sequences per evaluation

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """ValueError naming the first hyperparameter out of range (rlhf_finetune calls it too,
        since a dataclass field can be changed after construction)."""
        for name, low in (("iterations", 0), ("batch_size", 1), ("update_epochs", 1),
                          ("num_minibatches", 1), ("eval_every", 1), ("eval_samples", 1)):
            check_count(name, getattr(self, name), low)
        # check_scalar returns a plain float (a numpy scalar or 0-d array becomes one), stored
        # back so the config stays JSON-writable
        self.beta = check_scalar("beta", self.beta, 0.0)
        self.lam = check_scalar("lam", self.lam, 0.0, 1.0)
        self.vf_coef = check_scalar("vf_coef", self.vf_coef, 0.0)
        for name in ("lr", "clip_eps", "max_grad_norm", "kl_horizon"):
            setattr(self, name, check_scalar(name, getattr(self, name), 0.0, low_inclusive=False))
        if self.target_kl is not None:
            self.target_kl = check_scalar("target_kl", self.target_kl, 0.0, low_inclusive=False)
            if self.beta == 0:
                raise ValueError("beta must be > 0 when target_kl is set: the controller "
                                 "multiplies beta, so it could never leave 0")


def token_rewards(logp, logp_ref, mask, scores, beta: float) -> np.ndarray:
    """(B, L) per-token rewards r_t (module docstring) from the sampled tokens' log-probabilities
    under the policy and the reference (B, L), the (B, L) mask of each sequence's positions, and
    each sequence's reward-model score (B,). Padding positions get 0."""
    beta = check_scalar("beta", beta, 0.0)
    logp, logp_ref = np.asarray(logp, dtype=float), np.asarray(logp_ref, dtype=float)
    mask, scores = np.asarray(mask, dtype=bool), np.asarray(scores, dtype=float)
    if not logp.shape == logp_ref.shape == mask.shape or logp.ndim != 2:
        raise ValueError(f"logp {logp.shape}, logp_ref {logp_ref.shape} and mask {mask.shape} "
                         f"must share one (B, L) shape")
    if scores.shape != logp.shape[:1]:
        raise ValueError(f"scores has shape {scores.shape}, expected ({logp.shape[0]},)")
    if not mask.any(axis=1).all():
        raise ValueError(f"mask row {int(np.argmin(mask.any(axis=1)))} is empty: every sequence "
                         f"has at least one token")
    check_finite("scores", scores)
    check_finite("logp", np.where(mask, logp, 0.0))        # padding positions are never read
    check_finite("logp_ref", np.where(mask, logp_ref, 0.0))
    rewards = np.where(mask, -beta * (logp - logp_ref), 0.0)
    last = mask.sum(axis=1) - 1                  # index of each sequence's final token
    rewards[np.arange(len(rewards)), last] += scores
    return rewards


def sequence_gae(rewards, values, mask, lam: float):
    """GAE(gamma = 1, lam) over the tokens of each sequence: (advantages, returns), both (B, L),
    0 at padding. rewards, values: (B, L); mask: (B, L) positions of each sequence.

    Each row is one episode. The state after the last token is terminal (V = 0, no bootstrap);
    ppo_ref.gae.compute_gae does the recursion on the time-major transpose (L, B).
    """
    rewards, values = np.asarray(rewards, dtype=float), np.asarray(values, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    if not rewards.shape == values.shape == mask.shape or rewards.ndim != 2:
        raise ValueError(f"rewards {rewards.shape}, values {values.shape} and mask {mask.shape} "
                         f"must share one (B, L) shape")
    b = len(mask)
    values = values * mask
    next_values = np.concatenate([values[:, 1:], np.zeros((b, 1))], axis=1)  # V(s_(t+1))
    # s_(t+1) is terminal when position t + 1 is not part of the sequence.
    terminated = ~np.concatenate([mask[:, 1:], np.zeros((b, 1), dtype=bool)], axis=1)
    adv, returns = compute_gae(rewards.T, values.T, next_values.T, terminated.T,
                               np.zeros_like(terminated.T), gamma=1.0, lam=lam)
    return adv.T * mask, returns.T * mask


def evaluate_policy(policy, reference, reward_fn, n: int, rng: np.random.Generator,
                    gold_fn=None) -> dict:
    """Mean proxy reward, gold reward (if gold_fn), KL(policy || reference) (the stepwise
    estimator, nats per sequence) and length over n fresh samples of `policy`."""
    tokens, _ = policy.sample(n, rng)
    out = {"proxy": float(np.mean(reward_fn(tokens))),
           "kl": float(np.mean(stepwise_kl(policy, reference, tokens))),
           "length": float(np.mean(sequence_lengths(tokens)))}
    if gold_fn is not None:
        out["gold"] = float(np.mean(gold_fn(tokens)))
    return out


def rlhf_finetune(policy, reference, reward_fn, config: RLHFConfig, rng: np.random.Generator,
                  gold_fn=None, log=None):
    """Fine-tune `policy` in place to maximise reward_fn - beta KL(policy || reference).

    reward_fn / gold_fn: tokens (B, L) -> (B,) scores. gold_fn is only evaluated, never trained on.
    log: optional callable receiving each evaluation dict. Returns (evals, history): evaluations
    every `eval_every` iterations (and at the end), and one dict of training statistics per
    iteration (beta, kl of the batch, proxy, approx_kl, clip_fraction, ...).
    """
    config.validate()
    controller = None
    if config.target_kl is not None:
        controller = ProportionalKLController(config.beta, config.target_kl, config.kl_horizon)
    beta = config.beta
    value_net = MLP([policy.feature_dim, *config.value_hidden, 1], rng=rng, dtype=policy.dtype)
    params = policy.parameters() + value_net.parameters()
    optimizer = Adam(params, lr=config.lr)
    # Evaluations draw from their own stream, so how often we evaluate does not change training.
    eval_rng = np.random.default_rng(rng.integers(2**63))
    evals, history = [], []

    def record(iteration):
        ev = evaluate_policy(policy, reference, reward_fn, config.eval_samples, eval_rng, gold_fn)
        ev.update(iteration=iteration, beta=beta)
        evals.append(ev)
        if log is not None:
            log(ev)

    for iteration in range(config.iterations):
        if iteration % config.eval_every == 0:
            record(iteration)
        # 1. Sample a batch and compute the per-token rewards.
        tokens, logp = policy.sample(config.batch_size, rng)     # (B, L) each
        mask = sequence_mask(tokens)                             # (B, L)
        feats = policy.features(tokens)                          # (B, L, D)
        b, length = tokens.shape
        with no_grad():
            logp_ref = reference.log_probs(tokens).data * mask
            values = value_net(feats.reshape(b * length, -1)).data.reshape(b, length) * mask
        scores = reward_fn(tokens)                               # (B,)
        rewards = token_rewards(logp, logp_ref, mask, scores, beta)

        # 2. GAE over the tokens of each sequence; keep the N valid tokens.
        adv, returns = sequence_gae(rewards, values, mask, config.lam)
        adv, returns = normalize_advantages(adv[mask]), returns[mask]   # (N,) each
        flat_feats, actions, old_logp = feats[mask], tokens[mask], logp[mask]  # (N, D), (N,), (N,)

        # 3. PPO epochs over minibatches of tokens.
        infos = []
        for _ in range(config.update_epochs):
            order = rng.permutation(len(actions))
            for idx in np.array_split(order, config.num_minibatches):
                dist = policy.distribution(flat_feats[idx])
                new_values = value_net(flat_feats[idx]).reshape(-1)
                loss, info = ppo_loss(dist.log_prob(actions[idx]), old_logp[idx], adv[idx],
                                      new_values, returns[idx], dist.entropy(),
                                      clip_eps=config.clip_eps, vf_coef=config.vf_coef)
                optimizer.zero_grad()
                loss.backward()
                clip_grad_norm(params, config.max_grad_norm)
                optimizer.step()
                infos.append(info)

        # 4. Log, and let the controller move beta toward the KL target.
        batch_kl = float(np.mean(sequence_log_ratio(logp, logp_ref, mask)))
        history.append({"iteration": iteration, "beta": beta, "kl": batch_kl,
                        "proxy": float(np.mean(scores)),
                        **{k: float(np.mean([i[k] for i in infos]))
                           for k in ("approx_kl", "clip_fraction", "value_loss", "entropy")}})
        if controller is not None:
            beta = controller.update(batch_kl, n_steps=config.batch_size)
    record(config.iterations)
    return evals, history

