"""PPO's objectives and diagnostics (Schulman et al. 2017, "Proximal Policy Optimization
Algorithms"), written as losses to MINIMISE, in the paper's order:

    policy_gradient_surrogate    L^CPI                                     eq. 6
    clipped_surrogate            L^CLIP                                    eq. 7
    kl_penalty_surrogate         L^KLPEN                                   eq. 8
    value_loss, entropy_bonus    L^V and S
    ppo_loss                     L^policy + c_1 L^V - c_2 S                eq. 9
    AdaptiveKLPenalty            the adaptive beta of L^KLPEN              section 4
    normalize_advantages, approx_kl, clip_fraction, explained_variance: what implementations add
    ProportionalKLController     the KL controller of RLHF (Ziegler et al. 2019)

Each function opens with one call that checks its arguments (_checks.py; a caller that has
checked them at its own boundary skips it under _checks.trusted()), and the lines after it
compute the equation of its docstring. Every function takes numpy arrays or autodiff Tensors.
When any input is a Tensor the result is a Tensor you can call .backward() on; with plain
arrays it is a numpy scalar (or array). The diagnostics approx_kl, clip_fraction and
explained_variance always return a Python float. Throughout, for a batch of B samples (B, not the paper's N,
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

import math

import numpy as np

from . import autodiff as ad
from ._checks import (arrays_or_tensors, check_batch, check_ppo_loss, check_ratio, check_scalar,
                      check_value_loss, plain, trusted)
from .autodiff import as_tensor

__all__ = [
    "policy_gradient_surrogate", "clipped_surrogate", "kl_penalty_surrogate", "value_loss",
    "entropy_bonus", "ppo_loss", "normalize_advantages", "approx_kl", "clip_fraction",
    "explained_variance", "AdaptiveKLPenalty", "ProportionalKLController",
]

KL_ESTIMATORS = ("k1", "k2", "k3")
# The policy objectives, by the names PPOConfig uses. kl_adaptive and kl_fixed share one loss,
# L^KLPEN; they differ only in how beta moves between updates (AdaptiveKLPenalty or not).
OBJECTIVES = ("clip", "kl_adaptive", "kl_fixed", "unclipped")
KL_OBJECTIVES = ("kl_adaptive", "kl_fixed")


# ----- policy objectives (Schulman et al. 2017, eq. 6, 7, 8) ---------------------------------

def _ratio(logp_new, logp_old):
    """r_i = pi_new(a_i|s_i) / pi_old(a_i|s_i), computed as exp(logp_new_i - logp_old_i)."""
    log_ratio = logp_new - logp_old
    with np.errstate(over="ignore"):
        ratio = log_ratio.exp()
    check_ratio(log_ratio.data, ratio.data)       # an overflow to inf raises, naming the sample
    return ratio


@arrays_or_tensors
def policy_gradient_surrogate(logp_new, logp_old, advantages):
    """The unclipped importance-sampled surrogate, L^CPI (Schulman et al. 2017, eq. 6), as a
    loss. At logp_new = logp_old its gradient is -mean_i(A_i grad logp_new_i), the vanilla
    policy gradient (A2C's); nothing stops a step from moving far. For teaching and ablation.

        L^CPI = -mean_i(r_i A_i)
    """
    logp_new, logp_old, advantages = check_batch(logp_new=logp_new, logp_old=logp_old,
                                                 advantages=advantages)
    return -(_ratio(logp_new, logp_old) * advantages).mean()


@arrays_or_tensors
def clipped_surrogate(logp_new, logp_old, advantages, clip_eps: float = 0.2):
    """PPO's clipped objective (Schulman et al. 2017, eq. 7), as a loss. Its gradient with
    respect to logp_new_i (dr_i/dlogp_new_i = r_i) is -A_i r_i / B where the unclipped term is
    the smaller, and 0 where clipping is active (A_i > 0 and r_i > 1 + eps, or A_i < 0 and
    r_i < 1 - eps). Exactly at r_i = 1 +- eps the terms tie and it is -A_i r_i / B (the
    boundary counts as inside: module docstring).

        L^CLIP = -mean_i min(r_i A_i, clip(r_i, 1 - eps, 1 + eps) A_i)
    """
    logp_new, logp_old, advantages, clip_eps = check_batch(
        logp_new=logp_new, logp_old=logp_old, advantages=advantages, clip_eps=clip_eps)
    # One autodiff node, forward and backward side by side. It does exactly the float operations
    # of the composition -ad.minimum(r * A, ad.clip(r, 1 - eps, 1 + eps) * A).mean() with
    # r = (logp_new - logp_old).exp(), in the same order, so its loss and gradients equal that
    # composition's bit for bit; one node instead of nine. (tests/test_losses.py checks both.)
    lo, hi = 1.0 - clip_eps, 1.0 + clip_eps
    log_ratio = logp_new.data - logp_old.data
    with np.errstate(over="ignore"):
        ratio = np.exp(log_ratio)
    check_ratio(log_ratio, ratio)                 # an overflow to inf raises, naming the sample
    A = advantages.data
    clipped = np.clip(ratio, lo, hi)
    unclipped_term, clipped_term = ratio * A, clipped * A
    n = ratio.size
    loss = -(np.sum(np.minimum(unclipped_term, clipped_term)) * (1.0 / n))

    def vjp(g):
        # d/d(term_i) of -mean_i min(.): -g / B to the smaller term, split 1/2 : 1/2 at a tie
        g = -g * (1.0 / n)
        g_unclipped = g * (unclipped_term < clipped_term) + 0.5 * g * (unclipped_term == clipped_term)
        g_clipped = g - g_unclipped
        # term = r A and clip(r) A; clip passes its gradient on lo <= r <= hi (bounds inside)
        g_ratio = g_unclipped * A + (g_clipped * A) * ((ratio >= lo) & (ratio <= hi))
        g_log_ratio = g_ratio * ratio             # dr = r dlog r
        g_A = g_unclipped * ratio + g_clipped * clipped
        return g_log_ratio, -g_log_ratio, g_A
    return ad.Tensor._make(loss, (logp_new, logp_old, advantages), vjp, "clipped_surrogate")


@arrays_or_tensors
def kl_penalty_surrogate(logp_new, logp_old, advantages, kl, beta: float):
    """PPO's KL-penalised objective L^KLPEN (Schulman et al. 2017, eq. 8), as a loss.
    kl_i = KL[pi_old(.|s_i), pi_new(.|s_i)], computed exactly from the two distributions
    (e.g. Categorical(old).kl(new)), of the shape of logp_new. beta >= 0 is the penalty
    coefficient, fixed or adapted between updates (AdaptiveKLPenalty).

        L^KLPEN = -mean_i(r_i A_i) + beta * mean_i(kl_i)
    """
    logp_new, logp_old, advantages, kl, beta = check_batch(
        logp_new=logp_new, logp_old=logp_old, advantages=advantages, kl=kl, beta=beta)
    return -(_ratio(logp_new, logp_old) * advantages).mean() + beta * kl.mean()


# ----- value and entropy terms ------------------------------------------------------------

@arrays_or_tensors
def value_loss(values, returns, old_values=None, clip_eps=None):
    """Squared error of the value function against its targets R (returns from gae.py).

    The 0.5 makes the gradient exactly V - R per sample (the derivative of 1/2 x^2 is x);
    the paper's L^VF (eq. 9) has no 0.5: see the module docstring. The clipped form is OpenAI
    baselines' (kept by CleanRL): it takes the worse of the two errors, so a value step is
    never rewarded for leaving the band V_old +- eps. old_values is read only when clip_eps
    is given. At the band's edge the clip passes its gradient and max splits the tie,
    so the gradient there is (V_i - R_i) / B, as inside.

        L^V = 0.5 * mean_i (V_i - R_i)^2                                (clip_eps None)
        L^V = 0.5 * mean_i max((V_i - R_i)^2, (V_clip_i - R_i)^2),      (clip_eps given)
              V_clip_i = V_old_i + clip(V_i - V_old_i, -eps, eps)
    """
    values, returns, old_values, clip_eps = check_value_loss(values, returns, old_values, clip_eps)
    if clip_eps is None:
        return _squared_error(values, returns)
    error = values - returns
    error_clipped = old_values + ad.clip(values - old_values, -clip_eps, clip_eps) - returns
    return 0.5 * ad.maximum(error * error, error_clipped * error_clipped).mean()


def _squared_error(values, returns):
    """0.5 * mean_i (V_i - R_i)^2 as one autodiff node, forward and backward side by side. It does
    exactly the float operations of the composition 0.5 * ((V - R) * (V - R)).mean(), in the same
    order (the error's two gradients, one per factor, are added), so the loss and its gradients
    equal that composition's bit for bit; one node instead of five.
    d/dV_i = 0.5 * (2 (V_i - R_i)) / B = (V_i - R_i) / B, and the negative for R_i."""
    error = values.data - returns.data
    n = error.size
    loss = (np.sum(error * error) * (1.0 / n)) * 0.5

    def vjp(g):
        g = g * 0.5 * (1.0 / n)
        g_error = g * error + g * error           # error * error: one gradient per factor
        return g_error, -g_error
    return ad.Tensor._make(loss, (values, returns), vjp, "squared_error")


@arrays_or_tensors
def entropy_bonus(entropy):
    """mean_i H[pi_new(.|s_i)], the entropy term S of Schulman et al. 2017, eq. 9. PPO's loss
    SUBTRACTS ent_coef times it (eq. 9 adds c_2 S to the objective being maximised)."""
    (entropy,) = check_batch(entropy=entropy)
    return entropy.mean()


# ----- the combined loss -------------------------------------------------------------------

def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, *, objective: str = "clip",
             clip_eps: float = 0.2, vf_coef: float = 0.5, ent_coef: float = 0.0,
             old_values=None, vf_clip_eps=None, kl=None, beta: float = 0.0):
    """PPO's loss for one minibatch (Schulman et al. 2017, eq. 9, negated to be minimised).

    L^policy by objective: "clip" L^CLIP (eq. 7); "kl_adaptive" and "kl_fixed" L^KLPEN with
    `kl` and `beta` (eq. 8; one loss, they differ in how beta moves between updates);
    "unclipped" L^CPI (eq. 6). L^V is value_loss, clipped when vf_clip_eps is given. vf_coef
    and ent_coef are the paper's c_1 and c_2 (its L^VF has no factor 0.5: module docstring).
    Each term is the function above and checks its own arguments; check_ppo_loss the rest.
    logp_new, logp_old, advantages, entropy (and kl) share one shape; values, returns (and
    old_values) share one shape. clip_eps is also the band that clip_fraction counts under
    every objective. kl and beta are read only for the KL objectives.

    Returns (loss, info): loss a scalar Tensor; info a dict of Python floats:
    loss, policy_loss, value_loss, entropy, approx_kl (k3), clip_fraction, and
    kl (mean of `kl`) for the KL objectives.

        loss = L^policy + vf_coef * L^V - ent_coef * S,     S = mean_i H[pi_new(.|s_i)]
    """
    check_ppo_loss(logp_new, entropy, objective=objective, objectives=OBJECTIVES,
                   needs_kl=objective in KL_OBJECTIVES, kl=kl, clip_eps=clip_eps, vf_coef=vf_coef,
                   ent_coef=ent_coef, vf_clip_eps=vf_clip_eps, old_values=old_values)
    if objective == "clip":
        policy_loss = clipped_surrogate(logp_new, logp_old, advantages, clip_eps)
    elif objective == "unclipped":
        policy_loss = policy_gradient_surrogate(logp_new, logp_old, advantages)
    else:                                   # kl_adaptive, kl_fixed: one loss, L^KLPEN
        policy_loss = kl_penalty_surrogate(logp_new, logp_old, advantages, kl, beta)
    v_loss = value_loss(values, returns, old_values, vf_clip_eps)
    entropy_mean = entropy_bonus(entropy)
    loss = as_tensor(policy_loss + vf_coef * v_loss - ent_coef * entropy_mean)  # a Tensor always

    with trusted():   # diagnostics of arguments the terms above have checked
        info = {"loss": loss.item(), "policy_loss": policy_loss.item(), "value_loss": v_loss.item(),
                "entropy": entropy_mean.item(), "approx_kl": approx_kl(logp_new, logp_old),
                "clip_fraction": clip_fraction(logp_new, logp_old, clip_eps)}
        if objective in KL_OBJECTIVES:
            info["kl"] = float(np.mean(plain(kl)))
    return loss, info


# ----- advantage normalisation ------------------------------------------------------------

@arrays_or_tensors
def normalize_advantages(advantages, eps: float = 1e-8):
    """Advantages rescaled to mean 0 and std 1 over all elements (per minibatch in PPO
    implementations; not in the paper). A batch of one has no spread to normalise by and gives
    0 (not 0/0 = nan). When every advantage is equal the std is 0 and the result is
    (A - mean) / eps, all zeros up to rounding; no gradient flows through that zero std.

        A_norm = (A - mean(A)) / (std(A) + eps),    std with ddof = 1 (as torch's .std())
    """
    advantages, eps = check_batch(advantages=advantages, eps=eps)
    n = advantages.size
    if n == 1:
        return advantages * 0.0
    # The result does not depend on the scale of A (eps aside), so advantages so large that
    # their squared deviations would overflow are first divided by a power of two (exact),
    # and eps with them; for any other batch the scale is 1.
    scale = _overflow_safe_scale(advantages.data)
    advantages, eps = advantages * (1.0 / scale), eps / scale
    centered = advantages - advantages.mean()
    variance = (centered * centered).sum() * (1.0 / (n - 1))           # ddof = 1
    std = variance.sqrt() if variance.data > 0 else as_tensor(np.zeros_like(variance.data))
    return centered / (std + eps)


# ----- diagnostics (plain floats, no gradient) -------------------------------------------

def approx_kl(logp_new, logp_old, estimator: str = "k3") -> float:
    """Monte-Carlo estimate of KL(pi_old || pi_new) from actions sampled by pi_old
    (John Schulman, "Approximating KL Divergence", 2020). k3 is what CleanRL logs as approx_kl
    (k1 as old_approx_kl). r - 1 is computed as expm1(log r), which keeps k3 accurate when r
    is close to 1. With log r = logp_new - logp_old:

        k1 = mean(-log r)              unbiased; single samples can be negative
        k2 = mean(1/2 (log r)^2)       biased, low variance, >= 0
        k3 = mean((r - 1) - log r)     unbiased (E_old[r] = 1), >= 0 per sample, low variance
    """
    logp_new, logp_old = check_batch(logp_new=logp_new, logp_old=logp_old)
    log_ratio = logp_new.data - logp_old.data
    if estimator == "k1":
        return float(np.mean(-log_ratio))
    if estimator == "k2":
        return float(np.mean(0.5 * log_ratio * log_ratio))
    if estimator == "k3":
        with np.errstate(over="ignore"):
            ratio_minus_one = np.expm1(log_ratio)
        check_ratio(log_ratio, ratio_minus_one)
        return float(np.mean(ratio_minus_one - log_ratio))
    raise ValueError(f"estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")


def clip_fraction(logp_new, logp_old, clip_eps: float = 0.2) -> float:
    """Fraction of samples whose ratio lies outside [1 - eps, 1 + eps]. Counted whatever the
    advantage's sign (as CleanRL's clipfrac), although clipping only zeroes the gradient on the
    side the advantage favours. The boundary counts as inside, as in the loss; the test is
    written as r < 1 - eps or r > 1 + eps so it agrees bit for bit with clip()'s comparisons.

        clip_fraction = mean_i [r_i < 1 - eps  or  r_i > 1 + eps]
    """
    logp_new, logp_old, clip_eps = check_batch(logp_new=logp_new, logp_old=logp_old,
                                               clip_eps=clip_eps)
    with np.errstate(over="ignore"):   # an overflowing ratio is inf, still counted as outside
        ratio = np.exp(logp_new.data - logp_old.data)
    outside = (ratio < 1.0 - clip_eps) | (ratio > 1.0 + clip_eps)
    return int(np.count_nonzero(outside)) / outside.size


def explained_variance(values, returns) -> float:
    """The share of the returns' variance the value function predicts: 1 is perfect, 0 no
    better than a constant, negative worse than one. When the returns are all equal, Var[R] = 0
    and the ratio is undefined; we return 0.0 (a finite number that can be logged and averaged),
    where Stable-Baselines3 and CleanRL return nan. ddof = 0; the ratio does not depend on it.

        explained_variance = 1 - Var[R - V] / Var[R]
    """
    values, returns = check_batch(values=values, returns=returns)
    scale = _overflow_safe_scale(np.concatenate([values.data.ravel(), returns.data.ravel()]))
    values, returns = values.data / scale, returns.data / scale    # the ratio is scale-free
    var_returns = float(np.var(returns))
    if var_returns == 0.0:
        return 0.0
    return 1.0 - float(np.var(returns - values)) / var_returns


def _overflow_safe_scale(x: np.ndarray) -> float:
    """1.0, or for numbers so large that the sum of n squared differences of them could
    overflow (|x| above sqrt(max float / n) / 2), the power of two 2^k <= max |x| < 2^(k+1), so
    that x / scale is exact and lies within (-2, 2)."""
    largest = float(np.max(np.abs(x)))
    if largest <= np.sqrt(np.finfo(x.dtype).max / x.size) / 2:
        return 1.0
    return math.ldexp(1.0, math.frexp(largest)[1] - 1)


# ----- KL coefficient controllers ---------------------------------------------------------

class AdaptiveKLPenalty:
    """The PPO paper's adaptive KL coefficient (Schulman et al. 2017, section 4): after each
    policy update, `update` halves or doubles beta when the KL it produced is off target.

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
        """Adapt beta to d = `kl`, the mean KL[pi_old, pi_new] measured after an update (section
        4, with d_targ = target_kl); returns the new beta:

            d < d_targ / 1.5  ->  beta <- beta / 2
            d > d_targ * 1.5  ->  beta <- beta * 2
            otherwise            beta unchanged
        """
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
    Human Preferences", eq. 2): a proportional controller on log beta (`update`).

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
        """Move beta toward holding KL at target_kl (Ziegler et al. 2019, eq. 2); returns the
        new beta:

            e    = clip(KL / target_kl - 1, -0.2, 0.2)
            beta <- beta * (1 + e * n_steps / horizon)
        """
        kl = check_scalar("kl", kl, -np.inf)
        n_steps = check_scalar("n_steps", n_steps, 0.0, low_inclusive=False)
        error = float(np.clip(kl / self.target_kl - 1.0, -0.2, 0.2))
        factor = 1.0 + error * n_steps / self.horizon
        if factor <= 0.0:
            raise ValueError(f"n_steps / horizon = {n_steps / self.horizon:g} is so large that "
                             f"beta would be multiplied by {factor:g} <= 0; keep it below 5")
        self.beta = self.beta * factor
        return self.beta
