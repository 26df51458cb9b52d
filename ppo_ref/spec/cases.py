"""The golden cases, function by function: inputs and how ppo_ref evaluates them.

ppo_ref.spec.golden turns these into JSON (its docstring has the schema). Each case builder
takes a seeded Generator and returns cases made by `_case`, which evaluates ppo_ref's
function in float64 and, for the inputs listed as differentiable, the gradient of each
output's sum by ppo_ref.autodiff. Float inputs are rounded by `grid` to multiples of
2^-10 (or finer where a case needs it), so they are exact in float32 and short in JSON.
Edge cases are described in one sentence each, in the case itself.

`grid`, `random_rollout` and `logp_pair` make the inputs; the conformance kit's random cases
(quantities.py) and the update scenario (update.py) are built from the same three.
"""
from __future__ import annotations

import math

import numpy as np

from ..autodiff import Tensor
from ..distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical
from ..gae import compute_gae, discounted_returns
from ..losses import (AdaptiveKLPenalty, ProportionalKLController, approx_kl, clip_fraction,
                     clipped_surrogate, explained_variance, kl_penalty_surrogate,
                     normalize_advantages, ppo_loss, value_loss)
from ..optim import Adam, clip_grad_norm

__all__ = ["FUNCTIONS", "grid", "random_rollout", "logp_pair", "adam_steps",
           "clip_grad_norm_arrays", "adaptive_kl_betas", "proportional_kl_betas"]

RTOL, ATOL = 1e-9, 1e-12


# ----- inputs: shared by the golden cases here and the kit's random cases (quantities.py) ----

def grid(x, bits: int = 10) -> np.ndarray:
    """x (float64) rounded to the nearest multiple of 2^-bits. With bits = 10 a number of
    moderate size is exact in float32 (casting an input loses nothing) and short in JSON;
    bits = 20 or 40 where a case needs finer spacing (tiny spreads, tiny gradients)."""
    scale = 2.0 ** bits
    return np.round(np.asarray(x, dtype=np.float64) * scale) / scale


def random_rollout(rng, T: int, N: int | None = None, p_term: float = 0.0,
                   p_trunc: float = 0.0) -> dict:
    """A random rollout for GAE and discounted returns: rewards, values and next_values on the
    grid, bool terminated and truncated flags (each step independently, with probabilities
    p_term and p_trunc), all of shape (T,) when N is None, else (T, N).

    next_values[t] = values[t+1] wherever no episode ends at t (both are V of the same state),
    so an implementation that reads values[t+1] there is checked fairly; where an episode ends
    it is a fresh value, V(final observation), which a truncation bootstraps from. The last row
    is always fresh (the rollout's end). Draws from rng in a fixed order: rewards, values,
    terminated, truncated, next_values."""
    shape = (T,) if N is None else (T, N)
    rewards, values = grid(rng.normal(size=shape)), grid(rng.normal(size=shape))
    terminated, truncated = rng.random(shape) < p_term, rng.random(shape) < p_trunc
    next_values = grid(rng.normal(size=shape))
    ends = terminated[:-1] | truncated[:-1]
    next_values[:-1] = np.where(ends, next_values[:-1], values[1:])
    return dict(rewards=rewards, values=values, next_values=next_values,
                terminated=terminated, truncated=truncated)


def logp_pair(rng, n: int, log_ratio) -> tuple:
    """(logp_new, logp_old), each (n,): logp_old = log pi_old(a) drawn on the grid from
    -[0.25, 3) (probabilities from about 0.05 to 0.78), logp_new = logp_old + log_ratio, so the
    ratio r = exp(logp_new - logp_old) is the one the case asks for."""
    old = -grid(rng.uniform(0.25, 3.0, n))
    return old + log_ratio, old


# ----- evaluating a case: outputs by ppo_ref, gradients by its autodiff -------------------

def _data(x):
    if isinstance(x, list):  # a list of arrays (clip_grad_norm's gradients)
        return [_data(v) for v in x]
    return np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float64)


def _evaluate(fn, inputs: dict, wrt=(), grad_outputs=None) -> tuple:
    """(expected, gradients): fn(**inputs) -> {output name: value}, and for every output (or
    those in grad_outputs) the gradient of its sum with respect to each input named in wrt."""
    expected = {k: _data(v) for k, v in fn(**inputs).items()}
    gradients = {}
    for out in ((grad_outputs or expected) if wrt else ()):
        leaves = {k: Tensor(np.array(inputs[k], dtype=np.float64), requires_grad=True) for k in wrt}
        y = fn(**{**inputs, **leaves})[out]
        if isinstance(y, Tensor) and y.requires_grad:
            y.sum().backward()
        gradients[out] = {k: (t.grad if t.grad is not None else np.zeros_like(t.data))
                          for k, t in leaves.items()}
    return expected, gradients


def _case(name: str, description: str, fn, inputs: dict, wrt=(), rtol: float = RTOL,
          atol: float = ATOL, grad_outputs=None) -> dict:
    expected, gradients = _evaluate(fn, inputs, wrt, grad_outputs)
    return {"name": name, "description": description, "inputs": inputs, "expected": expected,
            "gradients": gradients, "rtol": rtol, "atol": atol}


# ----- the cases, function by function ----------------------------------------------------

def _gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    advantages, returns = compute_gae(rewards, values, next_values, terminated, truncated,
                                      gamma=gamma, lam=lam)
    return {"advantages": advantages, "returns": returns}


def _gae_cases(rng):
    one = dict(rewards=np.array([1.5]), values=np.array([0.5]), next_values=np.array([2.0]))
    f, t = np.array([False]), np.array([True])
    five = dict(rewards=np.array([1.0, 0.5, -1.0, 2.0, 0.25]),
                values=np.array([0.5, 1.0, 0.75, -0.5, 1.5]),
                next_values=np.array([1.0, 0.75, 3.0, 1.5, 2.0]))  # next_values[2] = V(final obs)
    # where no episode ends at t = 2, next_values[2] is V(s_3) = values[3], as in a real rollout
    cont = dict(five, next_values=np.array([1.0, 0.75, -0.5, 1.5, 2.0]))
    mid = np.array([False, False, True, False, False])
    both = np.array([False, True, False, False, False])
    cases = [
        ("single_step_terminated", "T = 1, terminated: nothing is bootstrapped, A = r - V.",
         dict(one, terminated=t, truncated=f)),
        ("single_step_truncated", "T = 1, truncated: A = r + gamma V(final obs) - V.",
         dict(one, terminated=f, truncated=t)),
        ("single_step_rollout_end", "T = 1, no flag: the rollout's end bootstraps like a truncation.",
         dict(one, terminated=f, truncated=f)),
        ("termination_mid_rollout", "Terminated at t = 2: no bootstrap there and the GAE sum stops "
         "at t = 2 for t <= 2; t = 3..4 is a new episode.", dict(five, terminated=mid, truncated=~t.repeat(5))),
        ("truncation_mid_rollout", "Truncated at t = 2: delta_2 bootstraps from next_values[2] = "
         "V(final obs) = 3.0 (not values[3]) and the GAE sum stops at t = 2.",
         dict(five, terminated=~t.repeat(5), truncated=mid)),
        ("terminated_and_truncated_same_step", "Both flags at t = 1: terminated wins, no bootstrap.",
         dict(cont, terminated=both, truncated=both)),
    ]
    out = [_case(n, d, _gae, dict(inp, gamma=0.99, lam=0.95)) for n, d, inp in cases]
    episode = dict(cont, terminated=~t.repeat(5), truncated=~t.repeat(5))
    for name, g, lam, what in [("gamma_zero", 0.0, 0.95, "A = r - V"),
                               ("lam_zero", 0.9, 0.0, "A_t = delta_t, the one-step TD error"),
                               ("lam_one", 0.9, 1.0, "A_t = discounted return (bootstrapped at "
                                                     "the end) minus V")]:
        out.append(_case(name, f"gamma = {g}, lam = {lam}: {what}.", _gae,
                         dict(episode, gamma=g, lam=lam)))
    out.append(_case("consecutive_one_step_episodes", "Every step ends an episode (alternately "
                     "terminated and truncated): each A_t is its own delta_t.", _gae,
                     dict(five, terminated=np.arange(5) % 2 == 0, truncated=np.arange(5) % 2 == 1,
                          gamma=0.99, lam=0.95)))
    out.append(_case("random_multi_env", "(T, N) = (16, 4), random terminations and truncations.",
                     _gae, dict(random_rollout(rng, 16, 4, 0.1, 0.08), gamma=0.99, lam=0.95)))
    out.append(_case("random_single_env", "(T,) = (32,), random terminations and truncations, "
                     "gamma = 0.97, lam = 0.9.", _gae,
                     dict(random_rollout(rng, 32, None, 0.08, 0.08), gamma=0.97, lam=0.9)))
    return out


def _returns(rewards, terminated, truncated, gamma, bootstrap_values):
    return {"returns": discounted_returns(rewards, terminated, truncated, gamma, bootstrap_values)}


def _returns_cases(rng):
    r = np.array([1.0, 0.5, -1.0, 2.0, 0.25])
    boot = np.array([0.0, 0.0, 4.0, 0.0, 8.0])
    mid = np.array([False, False, True, False, False])
    no = np.zeros(5, dtype=bool)
    roll = random_rollout(rng, 12, 3, 0.12, 0.1)
    return [
        _case("single_step", "T = 1, no flag, no bootstrap: G = r.", _returns,
              dict(rewards=np.array([2.5]), terminated=np.array([False]),
                   truncated=np.array([False]), gamma=0.99, bootstrap_values=None)),
        _case("termination_mid_rollout", "Terminated at t = 2: G_2 = r_2; the rollout's end "
              "bootstraps from bootstrap_values[4].", _returns,
              dict(rewards=r, terminated=mid, truncated=no, gamma=0.9, bootstrap_values=boot)),
        _case("truncation_mid_rollout", "Truncated at t = 2: G_2 = r_2 + gamma bootstrap_values[2].",
              _returns, dict(rewards=r, terminated=no, truncated=mid, gamma=0.9, bootstrap_values=boot)),
        _case("no_bootstrap_values", "bootstrap_values = null: the unseen tail counts as 0.",
              _returns, dict(rewards=r, terminated=no, truncated=mid, gamma=0.9, bootstrap_values=None)),
        _case("random_multi_env", "(T, N) = (12, 3), random flags, bootstrapped from next_values.",
              _returns, dict(rewards=roll["rewards"], terminated=roll["terminated"],
                             truncated=roll["truncated"], gamma=0.99,
                             bootstrap_values=roll["next_values"])),
    ]


def _normalize(advantages, eps):
    return {"normalized": normalize_advantages(advantages, eps)}


def _normalize_cases(rng):
    return [
        _case("random_64", "64 advantages ~ N(0.3, 2^2): (A - mean) / (std_ddof1 + eps).",
              _normalize, dict(advantages=grid(rng.normal(0.3, 2.0, 64)), eps=1e-8)),
        _case("two_elements", "The smallest batch with a spread: std (ddof = 1) = |a - b| / sqrt 2.",
              _normalize, dict(advantages=np.array([1.0, -2.0]), eps=1e-8)),
        _case("batch_of_one", "One advantage: no spread to normalise by, the result is 0 (not nan).",
              _normalize, dict(advantages=np.array([3.5]), eps=1e-8)),
        _case("constant", "All equal: std = 0, (A - mean) / eps = 0 exactly.",
              _normalize, dict(advantages=np.full(6, 0.75), eps=1e-8)),
        _case("large_eps", "eps = 0.5 is added to the std, outside the square root.",
              _normalize, dict(advantages=grid(rng.normal(0.0, 1.0, 10)), eps=0.5)),
        _case("large_offset", "Mean 1000, spread 0.01: centering must not lose the spread.",
              _normalize, dict(advantages=1000.0 + grid(rng.normal(0.0, 0.01, 16), 20), eps=1e-8)),
    ]


def _surrogate(logp_new, logp_old, advantages, clip_eps):
    return {"loss": clipped_surrogate(logp_new, logp_old, advantages, clip_eps)}


def _boundary_log_ratios(eps):
    """log r at, and a hair either side of, both clip boundaries (r = 1 - eps, 1 + eps)."""
    upper, lower = math.log1p(eps), math.log1p(-eps)
    return np.array([upper, upper - 1e-6, upper + 1e-6, lower, lower - 1e-6, lower + 1e-6])


def _surrogate_cases(rng):
    cases = []
    new, old = logp_pair(rng, 16, grid(rng.normal(0, 0.2, 16)))
    cases.append(_case("random_16", "16 samples, log r ~ N(0, 0.2^2), A ~ N(0, 1).", _surrogate,
                       dict(logp_new=new, logp_old=old, advantages=grid(rng.normal(size=16)),
                            clip_eps=0.2), wrt=("logp_new",)))
    new, old = logp_pair(rng, 8, 0.0)
    cases.append(_case("ratio_exactly_one", "logp_new = logp_old: r = 1, loss = -mean(A), "
                       "gradient -A / N (the first minibatch of every update).", _surrogate,
                       dict(logp_new=new, logp_old=old, advantages=grid(rng.normal(size=8)),
                            clip_eps=0.2), wrt=("logp_new",)))
    lr = _boundary_log_ratios(0.2)
    for sign, word in ((1.0, "positive"), (-1.0, "negative")):
        new, old = logp_pair(rng, 6, lr)
        cases.append(_case(f"ratios_at_clip_boundaries_{word}_advantages",
                           f"r = 1 +- eps exactly (as near as float64 gets) and 1e-6 either side, "
                           f"A {word}: the gradient switches off on the side A favours; at the "
                           f"boundary it is the unclipped one, -A r / N.", _surrogate,
                           dict(logp_new=new, logp_old=old,
                                advantages=sign * grid(rng.uniform(0.5, 2.0, 6)), clip_eps=0.2),
                           wrt=("logp_new",)))
    new, old = logp_pair(rng, 8, np.array([-3.0, -1.5, -0.5, -0.25, 0.25, 0.5, 1.5, 3.0]))
    cases.append(_case("extreme_ratios", "r from exp(-3) to exp(3), A of both signs.", _surrogate,
                       dict(logp_new=new, logp_old=old,
                            advantages=np.array([1.0, -1.0, 2.0, -0.5, 0.5, -2.0, 1.0, -1.0]),
                            clip_eps=0.2), wrt=("logp_new",)))
    new, old = logp_pair(rng, 5, grid(rng.normal(0, 0.3, 5)))
    cases.append(_case("zero_advantages", "A = 0: loss 0 and gradient 0 whatever r is.", _surrogate,
                       dict(logp_new=new, logp_old=old, advantages=np.zeros(5), clip_eps=0.2),
                       wrt=("logp_new",)))
    new, old = logp_pair(rng, 12, grid(rng.normal(0, 0.15, 12)))
    cases.append(_case("clip_eps_0.1", "A tighter band, eps = 0.1.", _surrogate,
                       dict(logp_new=new, logp_old=old, advantages=grid(rng.normal(size=12)),
                            clip_eps=0.1), wrt=("logp_new",)))
    cases.append(_case("single_sample", "N = 1, r = exp(0.5) > 1 + eps with A > 0: clipped, "
                       "gradient 0.", _surrogate,
                       dict(logp_new=np.array([-0.5]), logp_old=np.array([-1.0]),
                            advantages=np.array([1.5]), clip_eps=0.2), wrt=("logp_new",)))
    return cases


def _kl_pen(logp_new, logp_old, advantages, kl, beta):
    return {"loss": kl_penalty_surrogate(logp_new, logp_old, advantages, kl, beta)}


def _kl_penalty_cases(rng):
    cases = []
    for name, beta in (("random_beta_0.5", 0.5), ("beta_zero", 0.0), ("beta_3", 3.0)):
        new, old = logp_pair(rng, 10, grid(rng.normal(0, 0.3, 10)))
        cases.append(_case(name, f"10 samples, beta = {beta}: -mean(r A) + beta mean(kl).", _kl_pen,
                           dict(logp_new=new, logp_old=old, advantages=grid(rng.normal(size=10)),
                                kl=grid(rng.uniform(0, 0.1, 10)), beta=beta),
                           wrt=("logp_new", "kl")))
    new, old = logp_pair(rng, 6, 0.0)
    cases.append(_case("ratio_one_kl_zero", "r = 1 and kl = 0: loss = -mean(A), d loss / d kl = "
                       "beta / N.", _kl_pen, dict(logp_new=new, logp_old=old,
                                                 advantages=grid(rng.normal(size=6)),
                                                 kl=np.zeros(6), beta=0.5),
                       wrt=("logp_new", "kl")))
    return cases


def _value(values, returns, old_values, clip_eps):
    return {"loss": value_loss(values, returns, old_values, clip_eps)}


def _value_cases(rng):
    n = 12
    values, returns = grid(rng.normal(size=n)), grid(rng.normal(size=n))
    old = values + grid(rng.normal(0, 0.3, n))
    edge_old = grid(rng.normal(size=6))
    edge_values = edge_old + np.array([0.25, -0.25, 0.25, -0.25, 0.125, 0.5])
    c = [
        _case("unclipped_random", "0.5 mean (V - R)^2 over 12 samples (the 0.5 is part of it).",
              _value, dict(values=values, returns=returns, old_values=None, clip_eps=None),
              wrt=("values",)),
        _case("unclipped_single", "One sample: 0.5 (V - R)^2.", _value,
              dict(values=np.array([2.0]), returns=np.array([-1.0]), old_values=None, clip_eps=None),
              wrt=("values",)),
        _case("clipped_random", "Clipped form, eps = 0.2, |V - V_old| up to ~0.9: "
              "0.5 mean max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2).", _value,
              dict(values=values, returns=returns, old_values=old, clip_eps=0.2), wrt=("values",)),
        _case("clipped_values_equal_old", "V = V_old: the clipped form equals the unclipped one.",
              _value, dict(values=values, returns=returns, old_values=values.copy(), clip_eps=0.2),
              wrt=("values",)),
        _case("clipped_at_band_edge", "V - V_old = +-eps exactly (eps = 0.25) for four samples, "
              "inside and outside for the others: at the edge the gradient is (V - R) / N.",
              _value, dict(values=edge_values, returns=grid(rng.normal(size=6)),
                           old_values=edge_old, clip_eps=0.25), wrt=("values",)),
    ]
    return c


PPO_LOSS_OUTPUTS = ["loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"]


def _ppo(logp_new, logp_old, advantages, values, returns, entropy, objective, clip_eps, vf_coef,
         ent_coef, old_values, vf_clip_eps, kl, beta):
    loss, info = ppo_loss(logp_new, logp_old, advantages, values, returns, entropy,
                          objective=objective, clip_eps=clip_eps, vf_coef=vf_coef,
                          ent_coef=ent_coef, old_values=old_values, vf_clip_eps=vf_clip_eps,
                          kl=kl, beta=beta)
    return {"loss": loss, **{k: info[k] for k in PPO_LOSS_OUTPUTS[1:]}}


def _ppo_loss_cases(rng):
    def inputs(n, spread=0.3, objective="clip", clip_values=False, kl=False, same=False, **coefs):
        new, old = logp_pair(rng, n, 0.0 if same else grid(rng.normal(0, spread, n)))
        values = grid(rng.normal(size=n))
        return dict(logp_new=new, logp_old=old, advantages=grid(rng.normal(size=n)),
                    values=values, returns=grid(values + rng.normal(0, 0.5, n)),
                    entropy=grid(rng.uniform(0.2, 1.4, n)), objective=objective,
                    clip_eps=coefs.get("clip_eps", 0.2), vf_coef=coefs.get("vf_coef", 0.5),
                    ent_coef=coefs.get("ent_coef", 0.01),
                    old_values=grid(values + rng.normal(0, 0.3, n)) if clip_values else None,
                    vf_clip_eps=0.2 if clip_values else None,
                    kl=grid(rng.uniform(0, 0.05, n)) if kl else None,
                    beta=coefs.get("beta", 0.0))
    settings = [
        ("clip", "Objective clip, unclipped value loss: L^CLIP + 0.5 L^V - 0.01 mean(H).",
         inputs(12)),
        ("clip_value_clipping", "Objective clip with the clipped value loss (vf_clip_eps = 0.2 "
         "around old_values).", inputs(12, clip_values=True)),
        ("kl_penalty", "Objective kl: -mean(r A) + beta mean(kl) with beta = 0.5, plus the value "
         "and entropy terms.", inputs(10, objective="kl_fixed", kl=True, beta=0.5)),
        ("unclipped", "Objective unclipped: -mean(r A), no trust region.", inputs(10, objective="unclipped")),
        ("first_minibatch", "logp_new = logp_old: r = 1, approx_kl = 0, clip_fraction = 0.",
         inputs(8, same=True)),
        ("sb3_coefficients", "vf_coef = 1.0 (Stable-Baselines3's 0.5 without our 0.5 factor), "
         "ent_coef = 0, clip_eps = 0.1, wide ratios.", inputs(16, spread=0.5, vf_coef=1.0,
                                                             ent_coef=0.0, clip_eps=0.1)),
    ]
    return [_case(name, description, _ppo, x, wrt=("logp_new", "values", "entropy"),
                  grad_outputs=("loss",)) for name, description, x in settings]


def adaptive_kl_betas(beta, target_kl, kls, beta_min=None, beta_max=None) -> np.ndarray:
    """ppo_ref's AdaptiveKLPenalty fed the KL of each update in turn: beta after each (K,)."""
    controller = AdaptiveKLPenalty(beta, target_kl, beta_min, beta_max)
    return np.array([controller.update(float(kl)) for kl in kls])


def _adaptive(beta, target_kl, kls, beta_min, beta_max):
    return {"betas": adaptive_kl_betas(beta, target_kl, kls, beta_min, beta_max)}


def _adaptive_cases(rng):
    def case(name, description, beta, target, kls, beta_min=None, beta_max=None):
        return _case(name, description, _adaptive, dict(beta=beta, target_kl=target,
                                                       kls=np.array(kls, dtype=np.float64),
                                                       beta_min=beta_min, beta_max=beta_max))
    return [
        case("papers_rule", "d below d_targ / 1.5 halves beta, above 1.5 d_targ doubles it, "
             "between keeps it.", 1.0, 0.01, [0.001, 0.02, 0.01, 0.1, 0.016, 0.0066, 0.012]),
        case("at_the_thresholds", "d exactly d_targ / 1.5 = 0.5 and 1.5 d_targ = 1.125 "
             "(target 0.75): both inequalities are strict, beta stays; 2^-10 beyond them it "
             "halves, then doubles.", 2.0, 0.75,
             [0.5, 1.125, 0.4990234375, 1.1259765625]),
        case("negative_estimates", "A sampled KL (k1) can be negative: below target, halve.",
             1.0, 0.02, [-0.001, -0.0005, 0.05]),
        case("clamped", "beta_min 0.3 and beta_max 3 bound beta (an option; the paper has none).",
             1.0, 0.01, [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], beta_min=0.3, beta_max=3.0),
        case("random_sequence", "20 updates, KL log-normal around the target 0.01.", 0.5, 0.01,
             grid(0.01 * np.exp(rng.normal(0, 0.8, 20)), 20)),
    ]


def proportional_kl_betas(beta, target_kl, horizon, kls, n_steps) -> np.ndarray:
    """ppo_ref's ProportionalKLController fed (kls[k], n_steps[k]) in turn: beta after each (K,)."""
    controller = ProportionalKLController(beta, target_kl, horizon)
    return np.array([controller.update(float(kl), float(n)) for kl, n in zip(kls, n_steps)])


def _proportional(beta, target_kl, horizon, kls, n_steps):
    return {"betas": proportional_kl_betas(beta, target_kl, horizon, kls, n_steps)}


def _proportional_cases(rng):
    def case(name, description, beta, target, horizon, kls, n_steps):
        return _case(name, description, _proportional,
                     dict(beta=beta, target_kl=target, horizon=horizon,
                          kls=np.array(kls, dtype=np.float64), n_steps=np.array(n_steps, dtype=np.float64)))
    return [
        case("error_inside_the_clip", "KL within 20% of the target: e = KL / target - 1 unclipped.",
             0.1, 6.0, 10000.0, [6.6, 5.4, 6.0, 7.1875], [256.0] * 4),
        case("error_clipped", "KL far from the target: e clipped to +-0.2.", 0.1, 6.0, 10000.0,
             [30.0, 0.5, 12.0, 0.0], [256.0] * 4),
        case("varying_n_steps", "The gain n_steps / horizon changes with the batch size.",
             0.2, 0.5, 1000.0, [0.55, 0.45, 0.7, 0.3], [10.0, 50.0, 100.0, 400.0]),
        case("on_target", "KL = target: e = 0, beta unchanged.", 0.05, 2.0, 5000.0,
             [2.0, 2.0, 2.0], [128.0, 128.0, 128.0]),
        case("random_sequence", "20 updates, KL log-normal around the target 6.", 0.1, 6.0,
             10000.0, grid(6.0 * np.exp(rng.normal(0, 0.3, 20))), [512.0] * 20),
    ]


def _kl_estimates(logp_new, logp_old, estimator):
    return {"kl": approx_kl(logp_new, logp_old, estimator)}


def _approx_kl_cases(rng):
    cases = []
    settings = [("random", 0.3, 32), ("small_log_ratios", 1e-3, 16), ("large_log_ratios", 1.5, 16)]
    for name, spread, n in settings:
        new, old = logp_pair(rng, n, grid(rng.normal(0, spread, n), 20))
        for est in ("k1", "k2", "k3"):
            cases.append(_case(f"{name}_{est}", f"{est} estimate of KL(pi_old || pi_new) from "
                               f"{n} samples of pi_old, log r ~ N(0, {spread}^2).", _kl_estimates,
                               dict(logp_new=new, logp_old=old, estimator=est)))
    new, old = logp_pair(rng, 6, 0.0)
    for est in ("k1", "k2", "k3"):
        cases.append(_case(f"ratio_one_{est}", f"r = 1 everywhere: {est} = 0.", _kl_estimates,
                           dict(logp_new=new, logp_old=old, estimator=est)))
    return cases


def _clipfrac(logp_new, logp_old, clip_eps):
    return {"clip_fraction": clip_fraction(logp_new, logp_old, clip_eps)}


def _clip_fraction_cases(rng):
    lr = _boundary_log_ratios(0.2)
    cases = []
    new, old = logp_pair(rng, 40, grid(rng.normal(0, 0.25, 40)))
    cases.append(_case("random_40", "40 samples, log r ~ N(0, 0.25^2): fraction with |r - 1| > eps.",
                       _clipfrac, dict(logp_new=new, logp_old=old, clip_eps=0.2)))
    new, old = logp_pair(rng, 8, grid(rng.uniform(-0.1, 0.1, 8)))
    cases.append(_case("all_inside", "Every r within the band: 0.", _clipfrac,
                       dict(logp_new=new, logp_old=old, clip_eps=0.2)))
    for side, sl in (("upper", slice(0, 3)), ("lower", slice(3, 6))):
        new, old = logp_pair(rng, 3, lr[sl])
        cases.append(_case(f"{side}_boundary", f"r = 1 {'+' if side == 'upper' else '-'} eps "
                           f"exactly (inside: not counted) and 1e-6 either side in log r.",
                           _clipfrac, dict(logp_new=new, logp_old=old, clip_eps=0.2)))
    new, old = logp_pair(rng, 20, grid(rng.normal(0, 0.1, 20)))
    cases.append(_case("clip_eps_0.1", "eps = 0.1.", _clipfrac,
                       dict(logp_new=new, logp_old=old, clip_eps=0.1)))
    return cases


def _ev(values, returns):
    return {"explained_variance": explained_variance(values, returns)}


def _explained_variance_cases(rng):
    returns = grid(rng.normal(0, 2, 20))
    return [
        _case("random", "V = R + noise: 1 - Var[R - V] / Var[R].", _ev,
              dict(values=returns + grid(rng.normal(0, 1, 20)), returns=returns)),
        _case("perfect", "V = R: 1.", _ev, dict(values=returns.copy(), returns=returns)),
        _case("constant_prediction", "V = mean(R) everywhere: 0.", _ev,
              dict(values=np.full(20, returns.mean()), returns=returns)),
        _case("worse_than_constant", "V = -R: 1 - 4 Var[R] / Var[R] = -3.", _ev,
              dict(values=-returns, returns=returns)),
        _case("constant_returns", "Var[R] = 0: undefined; ppo_ref returns 0.0 (SB3 and CleanRL "
              "return nan).", _ev, dict(values=grid(rng.normal(size=5)), returns=np.full(5, 1.5))),
    ]


def _categorical(logits, actions, other_logits):
    p, q = Categorical(logits), Categorical(other_logits)
    return {"log_prob": p.log_prob(actions), "entropy": p.entropy(), "kl": p.kl(q)}


def _categorical_cases(rng):
    def case(name, description, logits, other, actions=None):
        if actions is None:
            actions = rng.integers(0, logits.shape[1], logits.shape[0])
        return _case(name, description, _categorical,
                     dict(logits=logits, actions=np.asarray(actions, dtype=np.int64),
                          other_logits=other), wrt=("logits", "other_logits"))
    logits = grid(rng.normal(size=(6, 4)))
    extreme = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 0.0, 1000.0], [500.0, 500.0, -1000.0]])
    return [
        case("random", "(B, A) = (6, 4): log pi(a), entropy, KL(p || q) with q from other_logits.",
             logits, grid(rng.normal(size=(6, 4)))),
        case("identical_distributions", "q = p: KL = 0 (and its gradient 0).", logits, logits.copy()),
        case("shifted_logits", "other_logits = logits + 3: the same distribution, KL = 0.",
             logits, logits + 3.0),
        case("extreme_logits", "Logits of +-1000: log-probabilities of about -2000 must stay "
             "finite (log_softmax, never log(softmax)).", extreme, extreme[::-1].copy(),
             actions=[1, 0, 2]),
        case("two_actions", "A = 2, one row per action.", grid(rng.normal(size=(2, 2))),
             grid(rng.normal(size=(2, 2))), actions=[0, 1]),
        case("near_deterministic", "A logit gap of 30: pi(a) ~ 1 - 1e-13, entropy ~ 1e-12.",
             np.array([[30.0, 0.0, 0.0], [0.0, 0.0, 30.0]]), np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]),
             actions=[1, 2]),
    ]


def _gaussian(mean, log_std, actions, other_mean, other_log_std):
    p, q = DiagGaussian(mean, log_std), DiagGaussian(other_mean, other_log_std)
    return {"log_prob": p.log_prob(actions), "entropy": p.entropy(), "kl": p.kl(q)}


def _gaussian_cases(rng):
    def case(name, description, mean, log_std, actions, other_mean, other_log_std):
        return _case(name, description, _gaussian,
                     dict(mean=mean, log_std=log_std, actions=actions, other_mean=other_mean,
                          other_log_std=other_log_std),
                     wrt=("mean", "log_std", "other_mean", "other_log_std"))
    B, D = 5, 3
    mean = grid(rng.normal(size=(B, D)))
    tiny_mean = grid(rng.normal(size=(4, 2)), 20)
    return [
        case("random_shared_log_std", "(B, D) = (5, 3), log_std of shape (D,) shared by the batch "
             "(its gradient sums over B).", mean, grid(rng.normal(-0.5, 0.3, D)),
             grid(mean + rng.normal(size=(B, D))), grid(rng.normal(size=(B, D))),
             grid(rng.normal(-0.5, 0.3, D))),
        case("random_per_sample_log_std", "log_std of shape (B, D).", mean,
             grid(rng.normal(-0.5, 0.3, (B, D))), grid(mean + rng.normal(size=(B, D))),
             grid(rng.normal(size=(B, D))), grid(rng.normal(-0.5, 0.3, (B, D)))),
        case("identical_distributions", "q = p: KL = 0.", mean, np.full(D, -0.25),
             grid(mean + 0.5), mean.copy(), np.full(D, -0.25)),
        case("tiny_std", "log_std = -9 (std ~ 1.2e-4), actions within a few std of the mean: "
             "log-densities of about +8 per dimension, z = (a - mean) / std of order 1.",
             tiny_mean, np.full(2, -9.0), tiny_mean + grid(rng.normal(0, 1.2e-4, (4, 2)), 20),
             tiny_mean + 2.0 ** -12, np.full(2, -8.0)),
        case("large_std", "log_std = 3 (std ~ 20).", mean, np.full(D, 3.0),
             grid(mean + 20.0 * rng.normal(size=(B, D))), mean + 1.0, np.full(D, 2.0)),
        case("one_dimension", "D = 1.", grid(rng.normal(size=(3, 1))), np.array([0.5]),
             grid(rng.normal(size=(3, 1))), grid(rng.normal(size=(3, 1))), np.array([-0.5])),
    ]


def adam_steps(param, grads, lr, beta1, beta2, eps) -> np.ndarray:
    """Run ppo_ref's Adam on one parameter vector param (P,) with the given gradient at
    each step, grads (K, P); returns the parameter after each step, (K, P)."""
    p = Tensor(np.array(param, dtype=np.float64), requires_grad=True)
    opt = Adam([p], lr=lr, betas=(beta1, beta2), eps=eps)
    after = []
    for g in np.asarray(grads, dtype=np.float64):
        p.grad = g.copy()
        opt.step()
        after.append(p.data.copy())
    return np.array(after)


def _adam(param, grads, lr, beta1, beta2, eps):
    return {"params": adam_steps(param, grads, lr, beta1, beta2, eps)}


def _adam_cases(rng):
    P = 4
    param = grid(rng.normal(size=P))
    unit = grid(rng.normal(size=(5, P)))
    return [
        _case("five_steps", "5 steps, torch defaults (betas 0.9, 0.999; eps 1e-8), lr = 0.01.",
              _adam, dict(param=param, grads=unit, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)),
        _case("single_step", "One step: m_hat = g, v_hat = g^2, so theta moves by lr g / (|g| + eps).",
              _adam, dict(param=param, grads=unit[:1], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)),
        _case("tiny_gradients", "|g| ~ 1e-6: eps = 1e-8 is no longer negligible, and where it sits "
              "(outside the sqrt, after bias correction) matters.", _adam,
              dict(param=param, grads=grid(rng.normal(0, 1e-6, (4, P)), 40), lr=0.01, beta1=0.9,
                   beta2=0.999, eps=1e-8)),
        _case("zero_gradient_steps", "Two steps with g, then two with g = 0: the moments decay, "
              "theta keeps moving.", _adam,
              dict(param=param, grads=np.concatenate([unit[:2], np.zeros((2, P))]), lr=0.01,
                   beta1=0.9, beta2=0.999, eps=1e-8)),
        _case("custom_hyperparameters", "betas (0.5, 0.9), eps 1e-3, lr 0.1, 6 steps.", _adam,
              dict(param=param, grads=grid(rng.normal(size=(6, P))), lr=0.1, beta1=0.5,
                   beta2=0.9, eps=1e-3)),
    ]


def clip_grad_norm_arrays(grads, max_norm) -> tuple:
    """ppo_ref's clip_grad_norm on a list of gradient arrays: (total_norm, clipped grads)."""
    params = []
    for g in grads:
        p = Tensor(np.zeros_like(np.asarray(g, dtype=np.float64)), requires_grad=True)
        p.grad = np.array(g, dtype=np.float64)
        params.append(p)
    norm = clip_grad_norm(params, max_norm)
    return norm, [p.grad for p in params]


def _clip_norm(grads, max_norm):
    norm, clipped = clip_grad_norm_arrays(grads, max_norm)
    return {"total_norm": norm, "clipped_grads": clipped}


def _clip_grad_norm_cases(rng):
    def grads(scale):
        return [grid(scale * rng.normal(size=(3, 2))), grid(scale * rng.normal(size=4)),
                grid(scale * rng.normal(size=(1,)))]
    small = grads(0.05)
    exact = [np.array([3.0, 0.0]), np.array([[0.0], [4.0]])]   # norm 5 exactly
    return [
        _case("below_max_norm", "Norm < max_norm: gradients unchanged, the norm returned.",
              _clip_norm, dict(grads=small, max_norm=10.0)),
        _case("above_max_norm", "Norm > max_norm: every gradient scaled by max_norm / (norm + 1e-6) "
              "(torch's 1e-6).", _clip_norm, dict(grads=grads(2.0), max_norm=0.5)),
        _case("exactly_at_max_norm", "Norm = max_norm = 5: max_norm / (norm + 1e-6) < 1, so even "
              "this is scaled, by a hair (torch semantics).", _clip_norm,
              dict(grads=exact, max_norm=5.0)),
        _case("zero_gradients", "All zero: norm 0, nothing to scale.", _clip_norm,
              dict(grads=[np.zeros(3), np.zeros((2, 2))], max_norm=1.0)),
    ]


# name -> (reference, signature, equation, outputs, differentiable, array_lists, cases(rng), seed)
FUNCTIONS = {
    "compute_gae": ("ppo_ref.gae.compute_gae",
                    "compute_gae(rewards, values, next_values, terminated, truncated, gamma, lam) "
                    "-> (advantages, returns)",
                    "delta_t = r_t + gamma (1 - terminated_t) next_values_t - values_t; A_t = delta_t + "
                    "gamma lam (1 - (terminated_t or truncated_t)) A_{t+1}, A_T = 0; returns = A + values",
                    ["advantages", "returns"], [], [], _gae_cases, 1),
    "discounted_returns": ("ppo_ref.gae.discounted_returns",
                           "discounted_returns(rewards, terminated, truncated, gamma, bootstrap_values) "
                           "-> returns",
                           "G_t = r_t + gamma G_{t+1}; G_t = r_t if terminated_t; G_t = r_t + gamma "
                           "bootstrap_values_t if truncated_t or t = T - 1 (0 when bootstrap_values is null)",
                           ["returns"], [], [], _returns_cases, 2),
    "normalize_advantages": ("ppo_ref.losses.normalize_advantages",
                             "normalize_advantages(advantages, eps) -> normalized",
                             "(A - mean(A)) / (std(A, ddof=1) + eps); a batch of one gives 0",
                             ["normalized"], [], [], _normalize_cases, 3),
    "clipped_surrogate": ("ppo_ref.losses.clipped_surrogate",
                          "clipped_surrogate(logp_new, logp_old, advantages, clip_eps) -> loss",
                          "loss = -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)), r = exp(logp_new - logp_old)",
                          ["loss"], ["logp_new"], [], _surrogate_cases, 4),
    "kl_penalty_surrogate": ("ppo_ref.losses.kl_penalty_surrogate",
                             "kl_penalty_surrogate(logp_new, logp_old, advantages, kl, beta) -> loss",
                             "loss = -mean(r A) + beta mean(kl), r = exp(logp_new - logp_old)",
                             ["loss"], ["logp_new", "kl"], [], _kl_penalty_cases, 5),
    "ppo_loss": ("ppo_ref.losses.ppo_loss",
                 "ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, objective, "
                 "clip_eps, vf_coef, ent_coef, old_values, vf_clip_eps, kl, beta) -> (loss, "
                 "policy_loss, value_loss, entropy, approx_kl, clip_fraction)",
                 "loss = policy_loss + vf_coef value_loss - ent_coef mean(entropy); policy_loss = "
                 "-mean(min(r A, clip(r, 1 - clip_eps, 1 + clip_eps) A)) (objective clip), -mean(r A) "
                 "+ beta mean(kl) (kl_adaptive, kl_fixed) or -mean(r A) (unclipped); value_loss as value_loss(values, returns, "
                 "old_values, vf_clip_eps); approx_kl = mean(r - 1 - log r); clip_fraction = "
                 "mean(|r - 1| > clip_eps); gradients for loss only (the rest are logged floats)",
                 PPO_LOSS_OUTPUTS, ["logp_new", "values", "entropy"], [], _ppo_loss_cases, 14),
    "adaptive_kl_penalty": ("ppo_ref.losses.AdaptiveKLPenalty",
                            "adaptive_kl_penalty(beta, target_kl, kls (K,), beta_min, beta_max) -> "
                            "betas (K,), beta after each update",
                            "for d in kls: beta /= 2 if d < target_kl / 1.5; beta *= 2 if d > 1.5 "
                            "target_kl; then clamp to [beta_min, beta_max] where given (null: none)",
                            ["betas"], [], [], _adaptive_cases, 15),
    "proportional_kl_controller": ("ppo_ref.losses.ProportionalKLController",
                                   "proportional_kl_controller(beta, target_kl, horizon, kls (K,), "
                                   "n_steps (K,)) -> betas (K,), beta after each update",
                                   "e = clip(kls[k] / target_kl - 1, -0.2, 0.2); beta *= 1 + e "
                                   "n_steps[k] / horizon",
                                   ["betas"], [], [], _proportional_cases, 16),
    "value_loss": ("ppo_ref.losses.value_loss",
                   "value_loss(values, returns, old_values, clip_eps) -> loss",
                   "0.5 mean((V - R)^2) when clip_eps is null; else 0.5 mean(max((V - R)^2, "
                   "(V_old + clip(V - V_old, -eps, eps) - R)^2))",
                   ["loss"], ["values"], [], _value_cases, 6),
    "approx_kl": ("ppo_ref.losses.approx_kl",
                  "approx_kl(logp_new, logp_old, estimator) -> kl",
                  "KL(pi_old || pi_new) from samples of pi_old, log r = logp_new - logp_old: "
                  "k1 = mean(-log r), k2 = mean((log r)^2 / 2), k3 = mean(r - 1 - log r)",
                  ["kl"], [], [], _approx_kl_cases, 7),
    "clip_fraction": ("ppo_ref.losses.clip_fraction",
                      "clip_fraction(logp_new, logp_old, clip_eps) -> clip_fraction",
                      "mean(r < 1 - eps or r > 1 + eps); the boundary counts as inside",
                      ["clip_fraction"], [], [], _clip_fraction_cases, 8),
    "explained_variance": ("ppo_ref.losses.explained_variance",
                           "explained_variance(values, returns) -> explained_variance",
                           "1 - Var[R - V] / Var[R]; 0 when Var[R] = 0",
                           ["explained_variance"], [], [], _explained_variance_cases, 9),
    "categorical": ("ppo_ref.distributions.Categorical",
                    "categorical(logits (B, A), actions (B,), other_logits (B, A)) -> "
                    "(log_prob (B,), entropy (B,), kl (B,))",
                    "log_prob = log_softmax(logits)[a]; entropy = -sum_a p log p; "
                    "kl = KL(p || q) = sum_a p (log p - log q), q = softmax(other_logits)",
                    ["log_prob", "entropy", "kl"], ["logits", "other_logits"], [],
                    _categorical_cases, 10),
    "diag_gaussian": ("ppo_ref.distributions.DiagGaussian",
                      "diag_gaussian(mean (B, D), log_std (D,) or (B, D), actions (B, D), other_mean, "
                      "other_log_std) -> (log_prob (B,), entropy (B,), kl (B,))",
                      "z = (a - mean) / std; log_prob = sum_d(-z^2 / 2 - log_std - log(2 pi) / 2); "
                      "entropy = sum_d(log_std + (1 + log(2 pi)) / 2); kl = KL(p || q) = sum_d("
                      "log_std_q - log_std_p + (std_p^2 + (mean_p - mean_q)^2) / (2 std_q^2) - 1/2)",
                      ["log_prob", "entropy", "kl"],
                      ["mean", "log_std", "other_mean", "other_log_std"], [], _gaussian_cases, 11),
    "adam": ("ppo_ref.optim.Adam",
             "adam(param (P,), grads (K, P), lr, beta1, beta2, eps) -> params (K, P), the "
             "parameter after each of the K steps",
             "m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; theta -= lr (m / (1 - b1^t)) / "
             "(sqrt(v / (1 - b2^t)) + eps)",
             ["params"], [], [], _adam_cases, 12),
    "clip_grad_norm": ("ppo_ref.optim.clip_grad_norm",
                       "clip_grad_norm(grads [arrays], max_norm) -> (total_norm, clipped_grads)",
                       "norm = sqrt(sum of all g^2); if max_norm / (norm + 1e-6) < 1 every g is "
                       "multiplied by it; total_norm is the norm before clipping",
                       ["total_norm", "clipped_grads"], [], ["grads", "clipped_grads"],
                       _clip_grad_norm_cases, 13),
}


# ----- MultiCategorical and Bernoulli (MultiDiscrete and MultiBinary action spaces) ---------

def _multi_categorical(logits, nvec, actions, other_logits):
    p, q = MultiCategorical(logits, nvec), MultiCategorical(other_logits, nvec)
    return {"log_prob": p.log_prob(actions), "entropy": p.entropy(), "kl": p.kl(q)}


def _multi_categorical_cases(rng):
    def case(name, description, nvec, logits, other, actions=None):
        nvec = np.asarray(nvec, dtype=np.int64)
        if actions is None:
            actions = np.stack([rng.integers(0, n, logits.shape[0]) for n in nvec], axis=-1)
        return _case(name, description, _multi_categorical,
                     dict(logits=logits, nvec=nvec, actions=np.asarray(actions, dtype=np.int64),
                          other_logits=other), wrt=("logits", "other_logits"))
    extreme = np.array([[1000.0, -1000.0, 0.0, -1000.0, 1000.0], [-1000.0, 1000.0, 1000.0, 0.0, -1000.0]])
    return [
        case("random", "(B, sum(nvec)) = (5, 2 + 3 + 4): each quantity the sum of the three "
             "components' categorical ones.", [2, 3, 4], grid(rng.normal(size=(5, 9))),
             grid(rng.normal(size=(5, 9)))),
        case("one_component", "nvec = [4]: a plain Categorical.", [4],
             grid(rng.normal(size=(3, 4))), grid(rng.normal(size=(3, 4)))),
        case("identical_distributions", "q = p: KL = 0.", [3, 3],
             (lg := grid(rng.normal(size=(4, 6)))), lg.copy()),
        case("extreme_logits", "Logits of +-1000 in each component: log-probabilities of about "
             "-2000 per component stay finite.", [2, 3], extreme, extreme[::-1].copy(),
             actions=[[1, 0], [1, 2]]),
        case("sum_not_mean", "Four components of two actions with equal logits: log_prob = "
             "4 log(1/2) and entropy = 4 log 2 (a mean over components gives a quarter).",
             [2, 2, 2, 2], np.zeros((2, 8)), grid(rng.normal(size=(2, 8)))),
    ]


def _bernoulli(logits, actions, other_logits):
    p, q = Bernoulli(logits), Bernoulli(other_logits)
    return {"log_prob": p.log_prob(actions), "entropy": p.entropy(), "kl": p.kl(q)}


def _bernoulli_cases(rng):
    def case(name, description, logits, other, actions=None):
        if actions is None:
            actions = rng.integers(0, 2, logits.shape)
        return _case(name, description, _bernoulli,
                     dict(logits=logits, actions=np.asarray(actions, dtype=np.int64),
                          other_logits=other), wrt=("logits", "other_logits"))
    extreme = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 30.0]])
    return [
        case("random", "(B, D) = (6, 3): log pi(a) = sum_d [a_d l_d - softplus(l_d)], entropy and "
             "KL(p || q) summed over the D entries.", grid(rng.normal(size=(6, 3))),
             grid(rng.normal(size=(6, 3)))),
        case("zero_logits", "l = 0: p = 1/2 each, log_prob = D log(1/2), entropy = D log 2.",
             np.zeros((2, 4)), grid(rng.normal(size=(2, 4)))),
        case("identical_distributions", "q = p: KL = 0.", (lg := grid(rng.normal(size=(3, 2)))),
             lg.copy()),
        case("extreme_logits", "Logits of +-1000: log p of about -1000 stays finite (never "
             "log(sigmoid(l)), which underflows).", extreme, extreme[::-1].copy(),
             actions=[[0, 1, 1], [0, 1, 0]]),
    ]


FUNCTIONS["multi_categorical"] = (
    "ppo_ref.distributions.MultiCategorical",
    "multi_categorical(logits (B, sum(nvec)), nvec (K,), actions (B, K), other_logits) -> "
    "(log_prob (B,), entropy (B,), kl (B,))",
    "component k owns the nvec[k] logits after those of components 0..k-1; log_prob = sum_k "
    "log_softmax(logits^(k))[a_k]; entropy = sum_k H(pi_k); kl = sum_k KL(p_k || q_k)",
    ["log_prob", "entropy", "kl"], ["logits", "other_logits"], [], _multi_categorical_cases, 17)
FUNCTIONS["bernoulli"] = (
    "ppo_ref.distributions.Bernoulli",
    "bernoulli(logits (B, D), actions (B, D) of 0/1, other_logits (B, D)) -> "
    "(log_prob (B,), entropy (B,), kl (B,))",
    "p = sigmoid(l); log_prob = sum_d [a_d l_d - softplus(l_d)]; entropy = sum_d [softplus(l_d) "
    "- p_d l_d]; kl = sum_d [p_d (l_d - m_d) + softplus(m_d) - softplus(l_d)], m = other_logits",
    ["log_prob", "entropy", "kl"], ["logits", "other_logits"], [], _bernoulli_cases, 18)
