"""Which implementation detail a whole update got different: ppo_ref's update with its details
as knobs, replayed on a scenario to find the setting whose weights match the user's.

A PPO update is a dozen details that implementations settle differently, on purpose or not
(Huang et al., "The 37 Implementation Details of PPO", 2022). `variant_update` is ppo_ref's
update (train/update.py's ppo_update, the same loop and the same loss) with each detail a knob;
with every knob at its default it computes ppo_update's weights bit for bit.

    adv_norm     "minibatch" (ppo_ref, CleanRL, SB3), "batch" (once, before the minibatches), "none"
    adv_ddof     1 (torch's .std(), ppo_ref), 0 (numpy's)
    value_clip   True: the clipped value loss (the scenario's); False: unclipped
    vf_range     None: the value is clipped with the policy's eps; a number: its own range
    value_half   True: 0.5 mean((V - R)^2); False: mean((V - R)^2) (SB3's F.mse_loss)
    grad_clip    "global" (torch's clip_grad_norm_ over all parameters), "off", "per_parameter"
    adam_eps     "torch" (eps added to sqrt(v_hat)), "tf" (eps_hat added to sqrt(v), before the
                 bias correction)
    adam_bias_correction   True, False
    entropy      "bonus" (- ent_coef * H), "missing", "wrong_sign" (+ ent_coef * H)
    order        "given" (batch.npz/minibatches), "sequential" (each epoch the batch in its
                 own order), "first_epoch_repeated" (one permutation reused every epoch)
    kl_stop      with the scenario's target_kl: "before" the step whose minibatch has approx_kl >
                 target_kl (ppo_ref, SB3 with 1.5 target_kl), "after" it, "epoch" (at the end of
                 an epoch, on its last minibatch's approx_kl: CleanRL), "none" (ignored)

`diagnose` replays each UPDATE_VARIANT alone and in pairs, and every prefix of the steps (an
update stopped early, as a KL early stop does), and names those whose weights match.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .._checks import trusted
from ..losses import normalize_advantages, ppo_loss
from ..optim import Adam, clip_grad_norm

__all__ = ["DEFAULTS", "UpdateVariant", "UPDATE_VARIANTS", "KL_STOP_VARIANTS", "variant_update",
           "diagnose"]

DEFAULTS = dict(adv_norm="minibatch", adv_ddof=1, value_clip=True, vf_range=None, value_half=True,
                grad_clip="global", adam_eps="torch", adam_bias_correction=True, entropy="bonus",
                order="given", kl_stop="before")


@dataclass(frozen=True)
class UpdateVariant:
    name: str
    knobs: dict
    text: str                # "ppo_ref with <text>" reads as the diagnosis
    convention: str | None = None   # variants.CONVENTIONS name, when a library does it on purpose

    def to_dict(self) -> dict:
        return dict(kind="convention" if self.convention else "mistake", name=self.name,
                    diagnosis=f"ppo_ref with {self.text}", convention=self.convention)


_PER_MB = "(ppo_ref, CleanRL and SB3 normalise each minibatch)"

UPDATE_VARIANTS = [
    UpdateVariant("advantages_per_batch", {"adv_norm": "batch"},
                  f"advantages normalised once over the whole batch {_PER_MB}",
                  "batch_advantage_normalisation"),
    UpdateVariant("advantages_not_normalised", {"adv_norm": "none"},
                  f"advantages not normalised at all {_PER_MB}", "no_advantage_normalisation"),
    UpdateVariant("advantages_ddof0", {"adv_ddof": 0},
                  "the advantages' std taken with ddof = 0 (numpy's default; ppo_ref and torch's "
                  ".std() use ddof = 1)", "ddof0"),
    UpdateVariant("value_not_clipped", {"value_clip": False},
                  "the value loss not clipped (the scenario clips it: clip_vloss)",
                  "no_value_clipping"),
    *[UpdateVariant(f"value_clip_range={r:g}", {"vf_range": r},
                    f"the value clipped to its own range {r:g} (the scenario clips it with the "
                    f"policy's clip_eps)", "value_clip_range") for r in (0.1, 0.3, 0.5)],
    UpdateVariant("value_loss_without_half", {"value_half": False},
                  "the value loss without its 0.5, mean((V - R)^2) (SB3's F.mse_loss: ppo_ref "
                  "with vf_coef x 2)", "sb3_mse"),
    UpdateVariant("no_gradient_clipping", {"grad_clip": "off"},
                  "no gradient clipping (the scenario clips the global norm to max_grad_norm)"),
    UpdateVariant("gradient_clipped_per_parameter", {"grad_clip": "per_parameter"},
                  "each parameter's gradient clipped to max_grad_norm by its own norm (torch's "
                  "clip_grad_norm_ scales all of them by one global norm)"),
    UpdateVariant("adam_tf_eps", {"adam_eps": "tf"},
                  "Adam's eps added to sqrt(v) before the bias correction (TensorFlow's eps-hat; "
                  "torch adds it to sqrt(v_hat))", "tf_adam_eps"),
    UpdateVariant("adam_no_bias_correction", {"adam_bias_correction": False},
                  "Adam without bias correction (m and v are not divided by 1 - beta^t)"),
    UpdateVariant("entropy_missing", {"entropy": "missing"},
                  "no entropy term in the loss (the scenario subtracts ent_coef * mean entropy)"),
    UpdateVariant("entropy_wrong_sign", {"entropy": "wrong_sign"},
                  "the entropy term of the wrong sign: + ent_coef * H penalises entropy; the "
                  "loss to minimise subtracts it"),
    UpdateVariant("minibatch_order_sequential", {"order": "sequential"},
                  "the minibatch order ignored: each epoch takes the batch in its stored order "
                  "(use batch.npz/minibatches, row by row)"),
    UpdateVariant("minibatch_order_repeated", {"order": "first_epoch_repeated"},
                  "the minibatch order ignored: the first epoch's minibatches reused in every "
                  "epoch (use batch.npz/minibatches, row by row)"),
]
# only where the scenario has a target_kl
KL_STOP_VARIANTS = [
    UpdateVariant("kl_stop_after_the_step", {"kl_stop": "after"},
                  "the KL early stop checked after the step (ppo_ref checks approx_kl before "
                  "each step and skips the step that exceeds target_kl)"),
    UpdateVariant("kl_stop_per_epoch", {"kl_stop": "epoch"},
                  "the KL early stop checked once per epoch, on its last minibatch (CleanRL's "
                  "rule; ppo_ref checks before each step)"),
    UpdateVariant("kl_stop_ignored", {"kl_stop": "none"},
                  "no KL early stop (the scenario's target_kl ends the update early)"),
]


# ----- the update, detail by detail ----------------------------------------------------------

class _AdamVariant:
    """Adam with its eps placement and bias correction as knobs (ppo_ref's Adam is torch's)."""

    def __init__(self, params, lr, betas, eps, tf_eps: bool, bias_correction: bool):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.tf_eps, self.bias_correction, self.t = tf_eps, bias_correction, 0
        self.m = [np.zeros_like(p.data) for p in params]
        self.v = [np.zeros_like(p.data) for p in params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        (b1, b2), self.t = self.betas, self.t + 1
        c1, c2 = (1 - b1 ** self.t, 1 - b2 ** self.t) if self.bias_correction else (1.0, 1.0)
        for p, m, v in zip(self.params, self.m, self.v):
            m[...] = b1 * m + (1 - b1) * p.grad
            v[...] = b2 * v + (1 - b2) * p.grad * p.grad
            denom = (np.sqrt(v) + self.eps) / math.sqrt(c2) if self.tf_eps else \
                np.sqrt(v / c2) + self.eps
            p.data -= self.lr * (m / c1) / denom


def _normalised(a, ddof):
    if ddof == 1:
        return normalize_advantages(a)
    return (a - a.mean()) / (a.std() + 1e-8)


def _order(minibatches, order, epochs):
    if order == "given":
        return minibatches
    per_epoch = len(minibatches) // epochs
    if order == "first_epoch_repeated":
        return minibatches[:per_epoch] * epochs
    batch_size = sum(len(m) for m in minibatches[:per_epoch])
    return [idx for _ in range(epochs)
            for idx in np.array_split(np.arange(batch_size), per_epoch)]


@trusted()   # the scenario's hyperparameters were checked when it was written
def variant_update(agent, batch: dict, config, minibatches, hp: dict, **knobs) -> tuple:
    """ppo_update with the details in knobs (module docstring) changed: (state_dict after each
    step, info dicts). With no knobs it computes ppo_update's weights bit for bit."""
    k = {**DEFAULTS, **knobs}
    params = agent.parameters()
    if k["adam_eps"] == "torch" and k["adam_bias_correction"]:
        optimizer = Adam(params, lr=hp["lr"], betas=tuple(hp["adam_betas"]), eps=hp["adam_eps"])
    else:
        optimizer = _AdamVariant(params, hp["lr"], tuple(hp["adam_betas"]), hp["adam_eps"],
                                 k["adam_eps"] == "tf", k["adam_bias_correction"])
    advantages = batch["advantages"]
    if config.norm_adv and k["adv_norm"] == "batch":
        advantages = np.asarray(_normalised(advantages, k["adv_ddof"]).data
                                if k["adv_ddof"] == 1 else _normalised(advantages, 0))
    clip_eps = config.clip_eps
    vf_clip = (clip_eps if k["vf_range"] is None else k["vf_range"]) \
        if config.clip_vloss and k["value_clip"] else None
    ent_coef = config.ent_coef if k["entropy"] == "bonus" else 0.0
    weights, infos = [], []
    target = config.target_kl if k["kl_stop"] != "none" else None
    per_epoch = len(minibatches) // config.update_epochs
    for step, idx in enumerate(_order(list(minibatches), k["order"], config.update_epochs)):
        obs = batch["obs"][idx]
        dist, values = agent.distribution(obs), agent.value(obs)
        adv = advantages[idx]
        if config.norm_adv and k["adv_norm"] == "minibatch":
            adv = _normalised(adv, k["adv_ddof"])
        entropy = dist.entropy()
        loss, info = ppo_loss(
            dist.log_prob(batch["actions"][idx]), batch["logp"][idx], adv, values,
            batch["returns"][idx], entropy, clip_eps=clip_eps,
            vf_coef=config.vf_coef * (1.0 if k["value_half"] else 2.0), ent_coef=ent_coef,
            old_values=batch["values"][idx] if vf_clip is not None else None,
            vf_clip_eps=vf_clip)
        if k["entropy"] == "wrong_sign":
            loss = loss + config.ent_coef * entropy.mean()
        exceeded = target is not None and info["approx_kl"] > target
        if exceeded and k["kl_stop"] == "before":
            info.update(stopped=True, grad_norm=0.0)
            infos.append(info)
            break
        optimizer.zero_grad()
        loss.backward()
        if k["grad_clip"] == "global":
            info["grad_norm"] = clip_grad_norm(params, config.max_grad_norm)
        elif k["grad_clip"] == "per_parameter":
            info["grad_norm"] = math.sqrt(sum(clip_grad_norm([p], config.max_grad_norm) ** 2
                                              for p in params))
        optimizer.step()
        infos.append(info)
        weights.append(agent.state_dict())
        if exceeded and (k["kl_stop"] == "after" or
                         k["kl_stop"] == "epoch" and (step + 1) % per_epoch == 0):
            break
    return weights, infos


# ----- diagnosis -------------------------------------------------------------------------------

def fresh_shuffle_spread(doc: dict, error, setup, n: int = 6) -> tuple:
    """(smallest, largest) error(weights) of ppo_ref replayed with n fresh minibatch orders
    (seeds 1..n): how far from the expected weights an update lands that ignores the given
    order and shuffles on its own."""
    errors = []
    for seed in range(1, n + 1):
        agent, config, batch, minibatches, hp = setup(doc)
        rng = np.random.default_rng(seed)
        per_epoch = len(minibatches) // config.update_epochs
        fresh = [idx for _ in range(config.update_epochs)
                 for idx in np.array_split(rng.permutation(len(batch["advantages"])), per_epoch)]
        weights, _ = variant_update(agent, batch, config, fresh, hp)
        errors.append(error(weights[-1]))
    return min(errors), max(errors)


@dataclass
class Match:
    variants: list           # [UpdateVariant]; empty: ppo_ref itself (stopped early)
    steps: int               # minibatch steps taken (all of them, unless stopped early)
    total_steps: int
    worst_abs_error: float
    parts: list = field(default_factory=list)

    def text(self) -> str:
        what = "ppo_ref" + ("".join([" with ", " and ".join(v.text for v in self.variants)])
                            if self.variants else "")
        if self.steps < self.total_steps:
            what += (f"{',' if self.variants else ''} stopped after {self.steps} of "
                     f"{self.total_steps} minibatch steps (an early stop, as on approx_kl > "
                     f"target_kl, checked before or after a step; the scenario has no target_kl: "
                     f"take every step)")
        return f"your weights match {what}; worst error under that variant {self.worst_abs_error:.3g}"


def diagnose(doc: dict, agrees, setup, pairs: bool = True, base: dict | None = None) -> list:
    """Every variant (alone, then in pairs of different knobs; ppo_ref's own and each single
    variant also stopped after any number of steps) whose weights `agrees` with: agrees(weights)
    -> worst abs error or None. setup(doc) -> (agent, config, batch, minibatches, hp) afresh.
    base: knobs every replay keeps (a convention checked against); variants that turn one of
    them are left out. Returns [Match], the singles before the pairs; empty when none matches."""
    matches = []
    base = dict(base or {})
    pool = UPDATE_VARIANTS + (KL_STOP_VARIANTS if doc["hyperparameters"].get("target_kl") else [])
    candidates = [v for v in pool if not set(v.knobs) & set(base)]

    def run(variants):
        agent, config, batch, minibatches, hp = setup(doc)
        knobs = dict(base)
        for v in variants:
            knobs.update(v.knobs)
        weights, _ = variant_update(agent, batch, config, minibatches, hp, **knobs)
        return weights

    for variants in [[]] + [[v] for v in candidates]:
        weights = run(variants)
        for steps in range(len(weights), 0, -1):    # the whole update first, then prefixes
            if not variants and steps == len(weights):
                continue                             # ppo_ref itself: the replay already failed
            err = agrees(weights[steps - 1])
            if err is not None:
                matches.append(Match(variants, steps, len(weights), err))
                break
    if matches or not pairs:
        return matches
    for a, b in itertools.combinations(candidates, 2):
        if set(a.knobs) & set(b.knobs):
            continue
        weights = run([a, b])
        err = agrees(weights[-1])
        if err is not None:
            matches.append(Match([a, b], len(weights), len(weights), err))
    return matches
