"""PPO's objectives and diagnostics (Schulman et al. 2017, "Proximal Policy Optimization
Algorithms"), written as losses to MINIMISE.

Every function takes numpy arrays or autodiff Tensors. When any input is a Tensor
the result is a Tensor you can call .backward() on; with plain arrays it is a numpy
scalar (or array). The diagnostics approx_kl, clip_fraction and explained_variance
always return a Python float. Throughout, for a batch of B samples (B, not the paper's N,
which is the number of actors),

    r_i = pi_new(a_i | s_i) / pi_old(a_i | s_i) = exp(logp_new_i - logp_old_i)

is the probability ratio and A_i the advantage estimate (see gae.py). logp_old,
advantages, returns and old_values are constants of the update: pass arrays (or
detached Tensors); a Tensor that requires grad would be differentiated like any other.

Conventions, where published implementations differ:

* Value loss has the factor 0.5: 0.5 * (V - R)^2, whose gradient is simply (V - R).
  OpenAI baselines' ppo2 and CleanRL use it; Stable-Baselines3 uses F.mse_loss without
  it, so its vf_coef = 0.5 is our vf_coef = 1.0. With one optimizer for policy and value
  the factor sets the value term's weight in the sum (and in the clipped gradient norm),
  so it is not cosmetic.
* normalize_advantages uses the sample std (ddof = 1), what torch's .std() returns and
  so what CleanRL and Stable-Baselines3 use; numpy's default would be ddof = 0.
* approx_kl estimates KL(pi_old || pi_new) = E_{a ~ pi_old}[log pi_old(a) - log pi_new(a)]:
  the actions were sampled by pi_old, and this is the direction the PPO paper's
  penalty d = KL[pi_old, pi_new] uses.
* At a clip boundary (r = 1 +- clip_eps exactly) the boundary counts as inside the trust
  region: torch.clamp passes the gradient at its bounds and torch's min/max split a
  tie's gradient 1/2 : 1/2; both halves carry A * r, so the loss's gradient there is
  the unclipped one, -A_i * r_i / B. ppo_ref.autodiff follows the same conventions.
* A ratio that overflows (log r above ~709 in float64) raises ValueError naming the sample,
  where torch would return an inf loss and a nan gradient (0 * inf) without a word.
"""
from __future__ import annotations

import numpy as np

from . import autodiff as ad
from ._checks import (check_finite, check_nonempty, check_same_shape, check_scalar, first_index,
                      values_of)
from .autodiff import Tensor

__all__ = [
    "normalize_advantages", "clipped_surrogate", "kl_penalty_surrogate",
    "policy_gradient_surrogate", "value_loss", "entropy_bonus", "approx_kl",
    "clip_fraction", "explained_variance", "AdaptiveKLPenalty",
    "ProportionalKLController", "ppo_loss",
]

KL_ESTIMATORS = ("k1", "k2", "k3")
# The policy objectives, by the names PPOConfig uses. kl_adaptive and kl_fixed share one loss,
# L^KLPEN; they differ only in how beta moves between updates (AdaptiveKLPenalty or not).
OBJECTIVES = ("clip", "kl_adaptive", "kl_fixed", "unclipped")
KL_OBJECTIVES = ("kl_adaptive", "kl_fixed")


# ----- advantage normalisation ------------------------------------------------------------

def normalize_advantages(advantages, eps: float = 1e-8):
    """(A - mean(A)) / (std(A) + eps) over all elements, std with ddof = 1 (as torch's .std()).

    A batch of one has no spread to normalise by and gives 0 (not 0/0 = nan). When every
    advantage is equal the std is 0 and the result is (A - mean) / eps, all zeros up to
    rounding; no gradient flows through that zero std (its derivative does not exist).
    """
    as_tensor = isinstance(advantages, Tensor)
    eps = check_scalar("eps", eps, 0.0, low_inclusive=False)
    (adv,) = _checked(advantages=advantages)
    n = adv.size
    if n == 1:
        return _result(adv * 0.0, as_tensor)
    centered = adv - adv.mean()
    variance = (centered * centered).sum() * (1.0 / (n - 1))           # ddof = 1
    std = variance.sqrt() if variance.data > 0 else Tensor(np.zeros_like(variance.data))
    return _result(centered / (std + eps), as_tensor)


# ----- policy objectives ------------------------------------------------------------------

def clipped_surrogate(logp_new, logp_old, advantages, clip_eps: float = 0.2):
    """PPO's clipped objective as a loss (the paper's eq. 7, negated):

        L^CLIP = -mean_i min(r_i A_i, clip(r_i, 1 - eps, 1 + eps) A_i)

    Gradient with respect to logp_new_i (dr_i/dlogp_new_i = r_i):
        -A_i r_i / B   where the unclipped term is the smaller (or they tie),
        0              where clipping is active: A_i > 0 and r_i > 1 + eps, or
                       A_i < 0 and r_i < 1 - eps.
    Exactly at r_i = 1 +- eps the two terms tie; see the module docstring: -A_i r_i / B.
    """
    as_tensor = _any_tensor(logp_new, logp_old, advantages)
    eps = check_scalar("clip_eps", clip_eps, 0.0, low_inclusive=False)
    logp_new, logp_old, adv = _checked(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    return _result(_clip_objective(_ratio(logp_new, logp_old), adv, eps), as_tensor)


def kl_penalty_surrogate(logp_new, logp_old, advantages, kl, beta: float):
    """The paper's KL-penalised objective L^KLPEN (eq. 8), as a loss:

        L^KLPEN = -mean_i(r_i A_i) + beta * mean_i(kl_i)

    kl_i = KL[pi_old(.|s_i), pi_new(.|s_i)], computed exactly from the two distributions
    (e.g. Categorical(old).kl(new)), of the shape of logp_new. beta >= 0 is the penalty
    coefficient, fixed or adapted between updates (AdaptiveKLPenalty).
    """
    as_tensor = _any_tensor(logp_new, logp_old, advantages, kl)
    beta = check_scalar("beta", beta, 0.0)
    logp_new, logp_old, adv, kl = _checked(logp_new=logp_new, logp_old=logp_old,
                                           advantages=advantages, kl=kl)
    loss = _pg_objective(_ratio(logp_new, logp_old), adv) + beta * kl.mean()
    return _result(loss, as_tensor)


def policy_gradient_surrogate(logp_new, logp_old, advantages):
    """The unclipped importance-sampled surrogate (L^CPI in the paper, eq. 6), as a loss:

        L^PG = -mean_i(r_i A_i)

    At logp_new = logp_old its gradient is -mean_i(A_i * grad logp_new_i), the vanilla
    policy gradient (A2C's); nothing stops a step from moving far. For teaching and ablation.
    (ppo_ref calls it L^PG; the paper's L^PG, eq. 2, is the objective mean(log pi A_i), whose
    gradient equals this one's only at r = 1.)
    """
    as_tensor = _any_tensor(logp_new, logp_old, advantages)
    logp_new, logp_old, adv = _checked(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    return _result(_pg_objective(_ratio(logp_new, logp_old), adv), as_tensor)


def _ratio(logp_new: Tensor, logp_old: Tensor) -> Tensor:
    log_ratio = logp_new - logp_old
    with np.errstate(over="ignore"):
        ratio = log_ratio.exp()                                     # r = pi_new / pi_old
    _check_ratio(log_ratio.data, ratio.data)
    return ratio


def _check_ratio(log_ratio: np.ndarray, ratio: np.ndarray) -> None:
    """ValueError if exp(log r) overflowed (log r > ~709 in float64, ~88 in float32): the loss
    would be inf and its gradient nan (0 * inf), so we say where instead."""
    if np.isfinite(ratio).all():
        return
    i = first_index(~np.isfinite(ratio))
    raise ValueError(f"logp_new - logp_old is {log_ratio[i].item()!r} at index {i}: the ratio exp() of it "
                     f"overflows {ratio.dtype}, so the loss and its gradient would be inf/nan; "
                     f"logp_old must come from the policy that sampled the actions")


def _clip_objective(ratio: Tensor, adv: Tensor, eps: float) -> Tensor:
    unclipped = ratio * adv
    clipped = ad.clip(ratio, 1.0 - eps, 1.0 + eps) * adv
    return -ad.minimum(unclipped, clipped).mean()


def _pg_objective(ratio: Tensor, adv: Tensor) -> Tensor:
    return -(ratio * adv).mean()


# ----- value and entropy terms ------------------------------------------------------------

def value_loss(values, returns, old_values=None, clip_eps=None):
    """Squared error of the value function against its targets R (returns from gae.py):

        L^V = 0.5 * mean_i (V_i - R_i)^2                                (clip_eps None)
        L^V = 0.5 * mean_i max((V_i - R_i)^2, (V_clip_i - R_i)^2),      (clip_eps given)
              V_clip_i = V_old_i + clip(V_i - V_old_i, -eps, eps)

    The 0.5 makes the gradient exactly V - R per sample (the derivative of 1/2 x^2 is x);
    see the module docstring for who else uses it. The clipped form is OpenAI baselines'
    (kept by CleanRL): it takes the worse of the two errors, so a value step is never
    rewarded for leaving the band V_old +- eps. old_values is read only when clip_eps
    is given. At the band's edge the clip passes its gradient and max splits the tie,
    so the gradient there is (V_i - R_i) / B, as inside.
    """
    as_tensor = _any_tensor(values, returns, old_values)
    if clip_eps is None:
        values, returns = _checked(values=values, returns=returns)
        return _result(_value_loss(values, returns, None, None), as_tensor)
    eps = check_scalar("clip_eps", clip_eps, 0.0, low_inclusive=False)
    if old_values is None:
        raise ValueError("value_loss: clip_eps was given but old_values is None; "
                         "the clipped loss needs the values predicted at collection time")
    values, returns, old_values = _checked(values=values, returns=returns, old_values=old_values)
    return _result(_value_loss(values, returns, old_values, eps), as_tensor)


def _value_loss(values: Tensor, returns: Tensor, old_values, eps) -> Tensor:
    error = values - returns
    if eps is None:
        return 0.5 * (error * error).mean()
    values_clipped = old_values + ad.clip(values - old_values, -eps, eps)
    error_clipped = values_clipped - returns
    return 0.5 * ad.maximum(error * error, error_clipped * error_clipped).mean()


def entropy_bonus(entropy):
    """mean_i H[pi_new(.|s_i)], the entropy term. PPO's loss SUBTRACTS ent_coef times it
    (the paper's eq. 9 adds c_2 S to the objective being maximised)."""
    as_tensor = isinstance(entropy, Tensor)
    (entropy,) = _checked(entropy=entropy)
    return _result(entropy.mean(), as_tensor)


# ----- diagnostics (plain floats, no gradient) -------------------------------------------

def approx_kl(logp_new, logp_old, estimator: str = "k3") -> float:
    """Monte-Carlo estimate of KL(pi_old || pi_new) from actions sampled by pi_old
    (John Schulman, "Approximating KL Divergence", 2020). With log r = logp_new - logp_old:

        k1 = mean(-log r)              unbiased; single samples can be negative
        k2 = mean(1/2 (log r)^2)       biased, low variance, >= 0
        k3 = mean((r - 1) - log r)     unbiased (E_old[r] = 1), >= 0 per sample, low variance

    k3 is what CleanRL logs as approx_kl (k1 as old_approx_kl). r - 1 is computed as
    expm1(log r), which keeps k3 accurate when r is close to 1.
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")
    new, old = _checked_arrays(logp_new=logp_new, logp_old=logp_old)
    return _approx_kl(new - old, estimator)


def _approx_kl(log_ratio: np.ndarray, estimator: str) -> float:
    if estimator == "k1":
        terms = -log_ratio
    elif estimator == "k2":
        terms = 0.5 * log_ratio * log_ratio
    else:
        with np.errstate(over="ignore"):
            ratio_minus_one = np.expm1(log_ratio)
        _check_ratio(log_ratio, ratio_minus_one)
        terms = ratio_minus_one - log_ratio
    return float(np.mean(terms))


def clip_fraction(logp_new, logp_old, clip_eps: float = 0.2) -> float:
    """Fraction of samples whose ratio lies outside [1 - eps, 1 + eps], i.e. |r - 1| > eps.

    Counted whatever the advantage's sign (as CleanRL's clipfrac), although clipping only
    zeroes the gradient on the side the advantage favours. The boundary counts as inside,
    as in the loss. The test is written as r < 1 - eps or r > 1 + eps so it agrees bit
    for bit with the comparisons clip() makes in the loss.
    """
    eps = check_scalar("clip_eps", clip_eps, 0.0, low_inclusive=False)
    new, old = _checked_arrays(logp_new=logp_new, logp_old=logp_old)
    with np.errstate(over="ignore"):   # an overflowing ratio is inf, still counted as outside
        ratio = np.exp(new - old)
    return _clip_fraction(ratio, eps)


def _clip_fraction(ratio: np.ndarray, eps: float) -> float:
    return float(np.mean((ratio < 1.0 - eps) | (ratio > 1.0 + eps)))


def explained_variance(values, returns) -> float:
    """1 - Var[R - V] / Var[R]: the share of the returns' variance the value function
    predicts. 1 is perfect, 0 is no better than a constant, negative is worse than one.

    When the returns are all equal, Var[R] = 0 and the ratio is undefined; we return 0.0
    (a finite number that can be logged and averaged), where Stable-Baselines3 and
    CleanRL return nan. The variances use ddof = 0; the ratio does not depend on ddof.
    """
    v, ret = _checked_arrays(values=values, returns=returns)
    var_returns = float(np.var(ret))
    if var_returns == 0.0:
        return 0.0
    return 1.0 - float(np.var(ret - v)) / var_returns


# ----- KL coefficient controllers ---------------------------------------------------------

class AdaptiveKLPenalty:
    """The PPO paper's adaptive KL coefficient (Schulman et al. 2017, section 4), applied
    after each policy update with d = the mean KL[pi_old, pi_new] it produced:

        d < d_targ / 1.5  ->  beta <- beta / 2
        d > d_targ * 1.5  ->  beta <- beta * 2
        otherwise            beta unchanged

    beta_min / beta_max optionally clamp beta (the paper does not; they stop beta from
    running away when the KL stays off target for many updates: without beta_min, about
    1075 halvings in a row underflow beta to 0.0, which doubling can never revive).
    """

    def __init__(self, beta: float, target_kl: float, beta_min=None, beta_max=None):
        self.beta = check_scalar("beta", beta, 0.0, low_inclusive=False)
        self.target_kl = check_scalar("target_kl", target_kl, 0.0, low_inclusive=False)
        self.beta_min = None if beta_min is None else check_scalar(
            "beta_min", beta_min, 0.0, low_inclusive=False)
        self.beta_max = None if beta_max is None else check_scalar(
            "beta_max", beta_max, self.beta_min or 0.0, low_inclusive=False)
        if (self.beta_min is not None and self.beta < self.beta_min) or \
                (self.beta_max is not None and self.beta > self.beta_max):
            raise ValueError(f"beta {beta!r} lies outside [beta_min, beta_max] = "
                             f"[{beta_min}, {beta_max}]")

    def update(self, kl: float) -> float:
        """Adapt beta to the KL `kl` measured after an update; returns the new beta."""
        kl = check_scalar("kl", kl, -np.inf)
        if kl < self.target_kl / 1.5:
            self.beta = self.beta / 2.0
        elif kl > self.target_kl * 1.5:
            self.beta = self.beta * 2.0
        if self.beta_min is not None:
            self.beta = max(self.beta, self.beta_min)
        if self.beta_max is not None:
            self.beta = min(self.beta, self.beta_max)
        return self.beta


class ProportionalKLController:
    """The KL controller of RLHF (Ziegler et al. 2019, "Fine-Tuning Language Models from
    Human Preferences", eq. 2): a proportional controller on log beta.

        e    = clip(KL / target_kl - 1, -0.2, 0.2)
        beta <- beta * (1 + e * n_steps / horizon)

    n_steps is the number of samples (e.g. episodes or tokens) behind this KL
    measurement, so the gain K_beta = n_steps / horizon does not depend on the batch size
    (the paper's K_beta = 0.1). Near the target the update is beta <- beta + K (beta* - beta)
    when KL falls as beta rises like KL = c / beta (beta* = c / target_kl).
    """

    def __init__(self, beta: float, target_kl: float, horizon: float):
        self.beta = check_scalar("beta", beta, 0.0, low_inclusive=False)
        self.target_kl = check_scalar("target_kl", target_kl, 0.0, low_inclusive=False)
        self.horizon = check_scalar("horizon", horizon, 0.0, low_inclusive=False)

    def update(self, kl: float, n_steps: float) -> float:
        """Move beta toward holding KL at target; returns the new beta."""
        kl = check_scalar("kl", kl, -np.inf)
        n_steps = check_scalar("n_steps", n_steps, 0.0, low_inclusive=False)
        error = float(np.clip(kl / self.target_kl - 1.0, -0.2, 0.2))
        factor = 1.0 + error * n_steps / self.horizon
        if factor <= 0.0:
            raise ValueError(f"n_steps / horizon = {n_steps / self.horizon:g} is so large that "
                             f"beta would be multiplied by {factor:g} <= 0; keep it below 5")
        self.beta = self.beta * factor
        return self.beta


# ----- the combined loss -------------------------------------------------------------------

def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, *, objective: str = "clip",
             clip_eps: float = 0.2, vf_coef: float = 0.5, ent_coef: float = 0.0,
             old_values=None, vf_clip_eps=None, kl=None, beta: float = 0.0):
    """PPO's total loss for one minibatch (the paper's eq. 9, negated to be minimised):

        loss = L^policy + vf_coef * L^V - ent_coef * mean(entropy)

    with L^policy = L^CLIP (objective "clip"), L^KLPEN with `kl` and `beta` ("kl_adaptive" or
    "kl_fixed", the same loss), or L^CPI, the unclipped surrogate ("unclipped"); L^V as in value_loss (clipped when vf_clip_eps is given).
    vf_coef and ent_coef are the paper's c_1 and c_2 (its L^VF has no factor 0.5: module
    docstring).
    logp_new, logp_old, advantages, entropy (and kl) share one shape; values, returns (and
    old_values) share one shape. clip_eps is also the band that clip_fraction counts under every
    objective. kl and beta are read only for the KL objectives.

    Returns (loss, info): loss a scalar Tensor; info a dict of Python floats:
    loss, policy_loss, value_loss, entropy, approx_kl (k3), clip_fraction, and
    kl (mean of `kl`) for the KL objectives.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    clip_eps = check_scalar("clip_eps", clip_eps, 0.0, low_inclusive=False)
    vf_coef = check_scalar("vf_coef", vf_coef, 0.0)
    ent_coef = check_scalar("ent_coef", ent_coef, 0.0)
    logp_new, logp_old, adv = _checked(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    (entropy,) = _checked(entropy=entropy)
    check_same_shape("logp_new", logp_new.data, "entropy", entropy.data)   # one H per sample
    if vf_clip_eps is None:
        values, returns = _checked(values=values, returns=returns)
    else:
        vf_clip_eps = check_scalar("vf_clip_eps", vf_clip_eps, 0.0, low_inclusive=False)
        if old_values is None:
            raise ValueError("ppo_loss: vf_clip_eps was given but old_values is None")
        values, returns, old_values = _checked(values=values, returns=returns,
                                               old_values=old_values)

    ratio = _ratio(logp_new, logp_old)
    info = {}
    if objective == "clip":
        policy_loss = _clip_objective(ratio, adv, clip_eps)
    elif objective == "unclipped":
        policy_loss = _pg_objective(ratio, adv)
    else:
        if kl is None:
            raise ValueError(f'ppo_loss: objective "{objective}" needs kl (per-sample KL[pi_old, pi_new])')
        beta = check_scalar("beta", beta, 0.0)
        (kl,) = _checked(kl=kl)
        check_same_shape("logp_new", logp_new.data, "kl", kl.data)
        policy_loss = _pg_objective(ratio, adv) + beta * kl.mean()
        info["kl"] = float(kl.data.mean())
    v_loss = _value_loss(values, returns, old_values, vf_clip_eps)
    entropy_mean = entropy.mean()
    loss = policy_loss + vf_coef * v_loss - ent_coef * entropy_mean

    log_ratio = logp_new.data - logp_old.data
    info.update(loss=float(loss.data), policy_loss=float(policy_loss.data),
                value_loss=float(v_loss.data), entropy=float(entropy_mean.data),
                approx_kl=_approx_kl(log_ratio, "k3"),
                clip_fraction=_clip_fraction(ratio.data, clip_eps))
    return loss, info


# ----- input handling ----------------------------------------------------------------------

def _any_tensor(*xs) -> bool:
    return any(isinstance(x, Tensor) for x in xs)


def _result(out: Tensor, as_tensor: bool):
    """The Tensor itself, or its value (a numpy scalar or array) when no input was a Tensor."""
    return out if as_tensor else out.data[()]


def _checked_arrays(**named) -> list:
    """Validate arguments that must share one non-empty shape and be finite; return arrays.
    One isfinite pass per argument; the slow diagnosis runs only on failure."""
    arrays, first = [], None
    for name, x in named.items():
        arr = values_of(name, x)
        check_finite(name, arr)
        if first is None:
            check_nonempty(name, arr)
            first = name
        else:
            check_same_shape(first, arrays[0], name, arr)
        arrays.append(arr)
    return arrays


def _checked(**named) -> list:
    """_checked_arrays, returning Tensors (the caller's own Tensor when it passed one)."""
    arrays = _checked_arrays(**named)
    return [x if isinstance(x, Tensor) else Tensor(a) for x, a in zip(named.values(), arrays)]
