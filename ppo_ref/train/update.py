"""Step 3 of Algorithm 1 (Schulman et al. 2017): move the policy on one batch, against pi_old.

UPDATE_RULES maps each objective of PPOConfig to the function that does it, all with the
signature of `ppo_update`:

    clip, kl_adaptive, kl_fixed, unclipped   ppo_update: K epochs of minibatch steps of ppo_loss
    trpo                                     trpo_update: one constrained natural-gradient step
                                             of the policy (Schulman et al. 2015), then the value
                                             function by Adam, on the same rollout and GAE

The batch is the flat rollout of one update (RolloutBuffer.flatten): obs (B, ...), actions (B,)
or (B, D), logp (B,) = log pi_old(a|s), values (B,) = V_old(s), advantages (B,), returns (B,).
pi_old itself, as a distribution on every batch state, is frozen once per update
(`frozen_policy`): the KL objectives penalise KL(pi_old || pi) against it, and the trainer
measures the update's exact KL (`mean_kl`) against it.

Conventions where implementations disagree:
* Minibatches: each epoch is a fresh permutation of the batch cut into `num_minibatches` nearly
  equal pieces (np.array_split), drawn from the trainer's own Generator, all epochs drawn up front
  (an update stopped early by target_kl leaves the Generator where a full update would).
* Advantage normalisation per minibatch (as CleanRL and Stable-Baselines3), ddof=1 (losses.py).
* One Adam over policy and value parameters together and one global gradient norm clip, as
  CleanRL and SB3 do (the paper's eq. 9 shares one loss between them).
* Early stop (`target_kl`): before each minibatch step the approx_kl of the current policy against
  pi_old on that minibatch is measured; above target_kl the remaining steps are skipped (SB3 checks
  the same point with 1.5 * target_kl; CleanRL checks once per epoch).
"""
from __future__ import annotations

import ctypes
import functools
import os

import numpy as np

from .._checks import trusted
from ..autodiff import no_grad
from ..distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical
from ..losses import (KL_OBJECTIVES, OBJECTIVES, approx_kl, clip_fraction, normalize_advantages,
                      ppo_loss, value_loss)
from ..optim import clip_grad_norm
from ..trpo import trpo_step
from .config import PPOConfig

__all__ = ["UPDATE_RULES", "ppo_update", "trpo_update", "shuffled_minibatches", "frozen_policy",
           "mean_kl", "gradient_step", "keep_freed_memory"]

_M_TRIM_THRESHOLD = -1   # glibc's mallopt parameter number (malloc.h)


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed heap memory for reuse instead of handing it back to the OS.

    By default glibc returns memory once 128 KiB lie free at the top of its heap
    (M_TRIM_THRESHOLD) and page-faults to get it back. A minibatch of a few hundred rows
    allocates and frees arrays of about that size dozens of times per step, so the update paid
    those faults on every minibatch (a quarter of the float64 update time on the bench's
    machine). A threshold of 1 GiB keeps the memory; the process holds on to its peak heap.
    The numbers computed do not change. Each update calls it (mallopt is cheap, and the
    setting is the process's from the first call on); it does nothing when MALLOC_TRIM_THRESHOLD_ is set (the user chose) or the C library is not
    glibc. Returns whether the setting was made."""
    if "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):      # no C library to load, or one without mallopt
        return False


def shuffled_minibatches(num_samples: int, epochs: int, num_minibatches: int,
                         rng: np.random.Generator) -> list:
    """epochs * num_minibatches index arrays: per epoch, rng.permutation(num_samples) cut into
    num_minibatches nearly equal consecutive pieces (np.array_split). Empty pieces are left out:
    with minibatches of one or two samples, the reset steps left out of a batch can leave fewer
    samples than minibatches."""
    return [idx for _ in range(epochs)
            for idx in np.array_split(rng.permutation(num_samples), num_minibatches) if len(idx)]


def frozen_policy(agent, obs):
    """pi(.|s) on the states obs as constants: copies of the outputs and of log_std, so the
    in-place parameter updates of Adam (or trpo_step) cannot move it. Taken before an update,
    it is pi_old."""
    with no_grad():
        dist = agent.distribution(obs)
    if isinstance(dist, Categorical):
        return Categorical(np.array(dist.logits.data))
    if isinstance(dist, MultiCategorical):
        return MultiCategorical(np.array(dist.logits.data), dist.nvec)
    if isinstance(dist, Bernoulli):
        return Bernoulli(np.array(dist.logits.data))
    return DiagGaussian(np.array(dist.mean.data), np.array(dist.log_std.data))


def mean_kl(pi_old, agent, obs) -> float:
    """kl_exact: mean over the batch states of the exact KL(pi_old || pi_new) of one update (the
    paper's d in section 4, and the quantity TRPO bounds by delta; approx_kl estimates it from the
    sampled actions only)."""
    with no_grad():
        return float(np.mean(pi_old.kl(agent.distribution(obs)).data))


def gradient_step(loss, optimizer, max_grad_norm: float) -> float:
    """One optimiser step on `loss`: clear the gradients, backpropagate, clip them to a global
    norm of max_grad_norm (optim.clip_grad_norm), step. Returns the norm before clipping."""
    optimizer.zero_grad()
    loss.backward()
    norm = clip_grad_norm(optimizer.params, max_grad_norm)
    optimizer.step()
    return norm


def _rows(dist, idx):
    """The frozen distribution restricted to the rows idx."""
    if isinstance(dist, Categorical):
        return Categorical(dist.logits.data[idx])
    if isinstance(dist, MultiCategorical):
        return MultiCategorical(dist.logits.data[idx], dist.nvec)
    if isinstance(dist, Bernoulli):
        return Bernoulli(dist.logits.data[idx])
    log_std = dist.log_std.data
    return DiagGaussian(dist.mean.data[idx], log_std if log_std.ndim == 1 else log_std[idx])


@trusted()   # PPOConfig checked the hyperparameters, the collector the rollout
def ppo_update(agent, optimizer, batch: dict, config: PPOConfig, minibatches, *,
               beta: float | None = None, clip_eps: float | None = None, pi_old=None) -> list:
    """One gradient step of the PPO loss per minibatch, in the given order.

    batch: the flat rollout (module docstring). minibatches: index arrays into the batch, one
        gradient step each (`shuffled_minibatches`: K epochs of them).
    beta: the KL coefficient for the kl_* objectives (default config.kl_beta); clip_eps: the
        (possibly annealed) clip range (default config.clip_eps); pi_old: `frozen_policy` of the
        agent on batch["obs"] before the update (the kl_* objectives take it from here when not
        given).

    Per minibatch: A normalised if config.norm_adv; loss = ppo_loss(...) (losses.py, eq. 9);
    gradients clipped to a global norm of config.max_grad_norm; one Adam step. With
    config.target_kl, the update stops before the first step whose minibatch already has
    approx_kl > target_kl (that info dict is returned with "stopped": True).
    Returns one info dict per minibatch seen: policy_loss, value_loss, entropy, approx_kl,
    clip_fraction, loss, grad_norm (kl for the kl objectives).
    """
    keep_freed_memory()
    beta = config.kl_beta if beta is None else beta
    clip_eps = config.clip_eps if clip_eps is None else clip_eps
    penalised = config.objective in KL_OBJECTIVES
    if penalised and pi_old is None:
        pi_old = frozen_policy(agent, batch["obs"])
    infos = []
    for idx in minibatches:
        obs = batch["obs"][idx]
        dist, values = agent.distribution(obs), agent.value(obs)
        advantages = batch["advantages"][idx]
        if config.norm_adv:
            advantages = normalize_advantages(advantages)
        kl = _rows(pi_old, idx).kl(dist) if penalised else None
        if config.ent_coef > 0:
            entropy = dist.entropy()
        else:  # only logged: computed outside the graph, so backward() does not walk through it
            with no_grad():
                entropy = dist.entropy()
        loss, info = ppo_loss(
            dist.log_prob(batch["actions"][idx]), batch["logp"][idx], advantages, values,
            batch["returns"][idx], entropy, objective=config.objective, clip_eps=clip_eps,
            vf_coef=config.vf_coef, ent_coef=config.ent_coef,
            old_values=batch["values"][idx] if config.clip_vloss else None,
            vf_clip_eps=clip_eps if config.clip_vloss else None, kl=kl, beta=beta)
        if config.target_kl is not None and info["approx_kl"] > config.target_kl:
            info.update(stopped=True, grad_norm=0.0)
            infos.append(info)
            break
        info["grad_norm"] = gradient_step(loss, optimizer, config.max_grad_norm)
        infos.append(info)
    return infos


def trpo_update(agent, optimizer, batch: dict, config: PPOConfig, minibatches, *,
                beta=None, clip_eps=None, pi_old=None) -> list:
    """objective "trpo": one trpo.trpo_step of the policy on the whole batch (Schulman et al. 2015:
    maximise the surrogate subject to mean KL(pi_old || pi) <= trpo_max_kl), then the value
    function by Adam on 0.5*(V - R)^2 over the minibatches (optimizer holds only the value
    parameters). beta and pi_old are not used (trpo_step measures its KL itself); clip_eps only
    sets the logged clip_fraction. Returns info dicts shaped like ppo_update's."""
    keep_freed_memory()
    clip_eps = config.clip_eps if clip_eps is None else clip_eps
    adv = normalize_advantages(batch["advantages"]) if config.norm_adv else batch["advantages"]
    step = trpo_step(agent, batch["obs"], batch["actions"], adv, batch["logp"],
                     max_kl=config.trpo_max_kl, cg_iters=config.trpo_cg_iters,
                     damping=config.trpo_damping)
    with no_grad():
        dist = agent.distribution(batch["obs"])
        logp_new = dist.log_prob(batch["actions"]).data
        entropy = float(dist.entropy().data.mean())
    policy = {"policy_loss": -float(step["surrogate_before"] + step["improvement"]),
              "entropy": entropy, "approx_kl": approx_kl(logp_new, batch["logp"]),
              "clip_fraction": clip_fraction(logp_new, batch["logp"], clip_eps),
              "kl": float(step["kl"])}
    infos = []
    for idx in minibatches:
        loss = value_loss(agent.value(batch["obs"][idx]), batch["returns"][idx])
        grad_norm = gradient_step(loss, optimizer, config.max_grad_norm)
        infos.append({**policy, "value_loss": float(loss.data), "grad_norm": grad_norm})
    return infos


# objective -> update rule: ppo_loss's objectives (losses.OBJECTIVES), and TRPO's constrained step
UPDATE_RULES = {**dict.fromkeys(OBJECTIVES, ppo_update), "trpo": trpo_update}
