"""What ppo_ref.spec.verify checks, quantity by quantity: adapter signature, reference, cases,
scale, and the known mistakes it can recognise.

For each quantity:

* an ADAPTER SIGNATURE: the function the user hands to the kit. Inputs are numpy
  arrays (float64, but the floats are exact in float32 (on a 2^-10 grid, or rounded to
  float32), except log-probabilities placed at a clip boundary, so casting loses nothing;
  done flags are bool arrays, actions int64) and Python numbers; outputs
  are anything np.asarray understands (numpy, lists, torch CPU tensors, JAX arrays).
  Wherever it can, the signature is that of ppo_ref's own function, so ppo_ref passes
  unchanged; `reference` is ppo_ref's answer in that form.
* CASES: the shipped golden vectors (ppo_ref/spec/golden/*.json) plus randomized edge cases
  drawn from a seeded Generator.
* a SCALE per output: the magnitude of the numbers the computation combines. Float32
  rounding errors are a few units of 2^-24 relative to it (not to the result, which
  cancellation can make tiny), so the tolerance is rtol * scale.
* KNOWN MISTAKES: the reference with one classic error put in, each with its one-line
  diagnosis. When a user's function fails, the kit runs every mistake on every case and
  names the one the user's outputs agree with.
* kink_arg: the input whose value decides a branch (clip boundaries). Within float
  rounding of the boundary either branch is right, so the kit accepts anything between
  the reference evaluated just below and just above it (and, with kink_side, with each
  element moved outwards or inwards: a mean over elements near both edges of a band,
  like clip_fraction's, takes its extremes there); for a gradient, anything
  between 0 and that (where two branches' values tie after rounding, torch and ppo_ref
  split the gradient 1/2 : 1/2 between a live and a clipped branch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import autodiff as ad
from ..autodiff import Tensor
from ..distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical
from ..gae import compute_gae
from ..losses import approx_kl, clip_fraction, clipped_surrogate, explained_variance, \
    normalize_advantages, value_loss
from . import golden
from .cases import adam_steps, clip_grad_norm_arrays, grid, logp_pair, random_rollout

__all__ = ["Case", "Mistake", "Quantity", "QUANTITIES"]


@dataclass(frozen=True)
class Case:
    name: str           # "golden/<case>" or "random/<what>"
    description: str
    args: tuple         # positional arguments of the adapter, in the documented order


@dataclass(frozen=True)
class Mistake:
    diagnosis: str      # one line, says what is wrong and what is right
    fn: Callable        # the reference with that mistake, adapter signature


@dataclass(frozen=True)
class Quantity:
    name: str
    signature: str      # the adapter: "fn(a, b) -> (x, y)"
    summary: str        # what is computed, one line
    outputs: tuple      # output names; an adapter returns a tuple when there are several
    reference: Callable
    make_cases: Callable        # rng -> [Case]
    scale: Callable             # (args, expected outputs) -> one float per output
    mistakes: dict = field(default_factory=dict)
    optional: int = 0           # how many trailing outputs (gradients) may be left out
    kink_arg: int | None = None
    near_kink: Callable | None = None   # (args, delta) -> bool per element: within delta of a kink
    kink_precision: str | None = None   # a band at least this wide, whatever dtype comes back
    kink_side: Callable | None = None   # args -> +-1 per element: the side of its band it is on
    list_outputs: tuple = ()    # outputs that are lists of arrays
    note: str = ""


# ----- helpers ------------------------------------------------------------------------------

def _f32(x):
    """x rounded to the nearest float32 (kept as float64): casting it to float32 is exact."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def _max_abs(*xs) -> float:
    return max([float(np.max(np.abs(np.asarray(x, dtype=np.float64)))) for x in xs
                if np.size(x)] + [0.0])


def _golden(function: str, to_args, skip=(), keep=None) -> list:
    """The shipped golden cases of `function` as Cases (to_args maps inputs to adapter args)."""
    cases = []
    for c in golden.load(function)["cases"]:
        if c["name"] in skip or (keep is not None and not keep(c["inputs"])):
            continue
        cases.append(Case(f"golden/{c['name']}", c["description"], to_args(c["inputs"])))
    return cases


def _value_and_grad(loss, x, *rest):
    """(loss value, d loss / d x) of a scalar loss built from ppo_ref Tensors."""
    t = Tensor(np.array(x, dtype=np.float64), requires_grad=True)
    y = loss(t, *rest)
    y.backward()
    return float(y.data), t.grad


# ----- gae ----------------------------------------------------------------------------------

def _columns(x):  # (T,) rollouts become (T, 1): the adapter always sees (T, N)
    return x.reshape(len(x), -1) if isinstance(x, np.ndarray) else x


def _gae_args(x):
    return tuple(_columns(x[k]) for k in ("rewards", "values", "next_values", "terminated",
                                          "truncated")) + (x["gamma"], x["lam"])


def _golden_gae_cases():
    # Every golden rollout has next_values[t] = values[t+1] wherever no episode ends at t (both
    # are V of the same observation), so a GAE that reads values[t+1] there (CleanRL, SB3)
    # is checked fairly; tests/test_golden.py holds the golden file to that.
    return _golden("compute_gae", _gae_args)


def _gae_cases(rng):
    cases = _golden_gae_cases()
    for T, N, p_term, p_trunc, g, lam in [(1, 6, 0.3, 0.3, 0.99, 0.95), (2, 3, 0.3, 0.3, 0.9, 0.8),
                                          (9, 2, 0.15, 0.15, 1.0, 1.0), (33, 3, 0.05, 0.05, 0.99, 0.95),
                                          (16, 4, 0.1, 0.1, 0.95, 0.0)]:
        cases.append(Case(f"random/T{T}_N{N}_gamma{g}_lam{lam}",
                          f"(T, N) = ({T}, {N}), random terminations and truncations",
                          _gae_args(dict(random_rollout(rng, T, N, p_term, p_trunc),
                                         gamma=g, lam=lam))))
    return cases


def _gae_variant(terminated=None, truncated=None, next_values=None):
    """compute_gae with some of its inputs replaced: the shape every GAE mistake takes."""
    def fn(r, v, nv, term, trunc, gamma, lam):
        return compute_gae(r, v, next_values(v, nv, trunc) if next_values else nv,
                           terminated(term, trunc) if terminated else term,
                           truncated(term, trunc) if truncated else trunc, gamma, lam)
    return fn


def _no_last_bootstrap(v, nv, trunc):
    nv = nv.copy()
    nv[-1] = 0.0
    return nv


GAE = Quantity(
    "gae", "fn(rewards, values, next_values, terminated, truncated, gamma, lam) -> (advantages, returns)",
    "GAE(gamma, lam); arrays (T, N), flags bool; next_values[t] = V(final obs) where an episode "
    "ends at t, = values[t+1] elsewhere (read either)",
    ("advantages", "returns"), compute_gae, _gae_cases,
    lambda a, e: (_max_abs(*a[:3], *e),) * 2,
    {"truncation_as_termination": Mistake(
        "truncated episodes are not bootstrapped: truncation is treated as termination (bootstrap "
        "with (1 - terminated) * next_values; cut the GAE sum where terminated or truncated)",
        _gae_variant(terminated=lambda te, tr: te | tr)),
     "truncation_ignored": Mistake(
        "truncation is ignored: the GAE sum runs on across the episode boundary into the next "
        "episode (cut it where terminated OR truncated)",
        _gae_variant(truncated=lambda te, tr: np.zeros_like(tr))),
     "no_bootstrap_at_rollout_end": Mistake(
        "the last step of the rollout is not bootstrapped: the rollout's end is a truncation too, "
        "use next_values[T-1] there", _gae_variant(next_values=_no_last_bootstrap)),
     "bootstrap_from_next_row": Mistake(
        "a truncated step bootstraps from values[t+1], the first state of the NEXT episode, "
        "instead of next_values[t] = V(final observation)",
        _gae_variant(next_values=lambda v, nv, trunc: np.concatenate([v[1:], nv[-1:]]))),
     "truncated_not_bootstrapped": Mistake(
        "truncated steps are not bootstrapped (gamma V(final obs) is dropped) and the GAE sum is "
        "not cut there either: at a truncation use next_values[t], then stop the sum",
        _gae_variant(truncated=lambda te, tr: np.zeros_like(tr),
                     next_values=lambda v, nv, trunc: np.where(trunc, 0.0, nv)))},
    note="(T,) golden cases are passed as (T, 1)")


# ----- normalize_advantages -----------------------------------------------------------------

def _normalize_cases(rng):
    cases = _golden("normalize_advantages", lambda x: (x["advantages"], x["eps"]),
                    skip=("batch_of_one",))
    for n, loc, sd in [(2, 0.0, 1.0), (3, 1.0, 0.5), (64, -0.5, 3.0), (257, 0.0, 1.0)]:
        cases.append(Case(f"random/B{n}", f"{n} advantages ~ N({loc}, {sd}^2)",
                          (grid(rng.normal(loc, sd, n)), 1e-8)))
    return cases


def _normalize_scale(args, expected):
    # centering and the std each lose about u |A| / std relative: (|out| + 1) |A| / std
    adv = args[0]
    return ((_max_abs(expected[0]) + 1.0) * (1.0 + _max_abs(adv) / (np.std(adv, ddof=1) + args[1])),)


NORMALIZE = Quantity(
    "normalize_advantages", "fn(advantages (B,), eps) -> normalized (B,)",
    "(A - mean) / (std + eps), std with ddof = 1", ("normalized",), normalize_advantages,
    _normalize_cases, _normalize_scale,
    {"ddof0": Mistake("the advantage std uses ddof = 0 (numpy's default); torch's .std(), CleanRL "
                      "and SB3 use the sample std, ddof = 1",
                      lambda a, eps: (a - a.mean()) / (a.std() + eps)),
     "eps_inside_sqrt": Mistake("eps is added to the variance inside the square root; ppo_ref and "
                                "torch-based PPOs add it to the std: (A - mean) / (std + eps)",
                                lambda a, eps: (a - a.mean()) / np.sqrt(a.var(ddof=1) + eps)),
     "not_centered": Mistake("the advantages are divided by their std but the mean is not "
                             "subtracted", lambda a, eps: a / (a.std(ddof=1) + eps))},
    note="a batch of one is not checked (ppo_ref gives 0; torch's std gives nan)")


# ----- clipped_surrogate --------------------------------------------------------------------

def _surrogate_args(x):
    return x["logp_new"], x["logp_old"], x["advantages"], x["clip_eps"]


def _surrogate_cases(rng):
    cases = _golden("clipped_surrogate", _surrogate_args)
    for n, spread, eps in [(1, 0.3, 0.2), (7, 0.1, 0.2), (64, 0.3, 0.2), (32, 0.2, 0.1)]:
        new, old = logp_pair(rng, n, grid(rng.normal(0, spread, n)))
        cases.append(Case(f"random/N{n}_eps{eps}", f"{n} samples, log r ~ N(0, {spread}^2)",
                          (new, old, grid(rng.normal(size=n)), eps)))
    for eps in (0.2, 0.3):
        edges = np.array([math.log1p(eps), math.log1p(-eps)])
        near = np.concatenate([edges + k * 1e-7 for k in (-3, -1, 0, 1, 3)])
        new, old = logp_pair(rng, near.size, near)
        cases.append(Case(f"random/ratios_within_1e-7_of_1+-{eps}", "ratios a hair from the clip "
                          "boundaries, advantages of both signs",
                          (new, old, grid(rng.normal(size=near.size)), eps)))
    return cases


def _surrogate_scale(args, expected):
    new, old, adv, eps = args
    term = np.abs(adv) * np.maximum(np.exp(new - old), 1 + eps)
    return _max_abs(term, *expected[:1]), _max_abs(term) / len(adv)


def _surrogate_from(objective):
    """Adapter (value, gradient) of -mean(objective(r, A, eps)), r = exp(logp_new - logp_old)."""
    def fn(logp_new, logp_old, adv, eps):
        return _value_and_grad(lambda new: -objective((new - logp_old).exp(), Tensor(adv), eps).mean(),
                               logp_new)
    return fn


def _clip(r, eps):
    return ad.clip(r, 1 - eps, 1 + eps)


SURROGATE = Quantity(
    "clipped_surrogate",
    "fn(logp_new (B,), logp_old (B,), advantages (B,), clip_eps) -> loss, or (loss, d loss/d logp_new)",
    "-mean(min(r A, clip(r, 1 - eps, 1 + eps) A)), r = exp(logp_new - logp_old)",
    ("loss", "grad_logp_new"),
    lambda new, old, adv, eps: _value_and_grad(
        lambda t: clipped_surrogate(t, old, adv, eps), new),
    _surrogate_cases, _surrogate_scale,
    {"clip_without_min": Mistake(
        "clipping is applied to the ratio but not through min(...): use "
        "-mean(min(r A, clip(r, 1 - eps, 1 + eps) A)), not -mean(clip(r, 1 - eps, 1 + eps) A)",
        _surrogate_from(lambda r, a, eps: _clip(r, eps) * a)),
     "max_instead_of_min": Mistake(
        "max(...) where the clipped objective takes min(...): the pessimistic bound is the minimum",
        _surrogate_from(lambda r, a, eps: ad.maximum(r * a, _clip(r, eps) * a))),
     "objective_not_negated": Mistake(
        "the sign is flipped: this returns the objective to maximise; the loss to minimise is its "
        "negative", lambda *a: tuple(-np.asarray(v) for v in _surrogate_from(
            lambda r, adv, eps: ad.minimum(r * adv, _clip(r, eps) * adv))(*a))),
     "ratio_inverted": Mistake(
        "the ratio is inverted: r = pi_new / pi_old = exp(logp_new - logp_old), not exp(logp_old - "
        "logp_new)", lambda new, old, adv, eps: _value_and_grad(
            lambda t: -ad.minimum((old - t).exp() * adv, _clip((old - t).exp(), eps) * adv).mean(),
            new))},
    optional=1, kink_arg=0,
    near_kink=lambda a, delta: np.min(np.abs(np.exp(a[0] - a[1])[:, None] - [1 - a[3], 1 + a[3]]),
                                      axis=1) <= 4 * delta)


# ----- value loss ---------------------------------------------------------------------------

def _value_cases(rng, clipped: bool):
    keep = (lambda x: x["clip_eps"] is not None) if clipped else (lambda x: x["clip_eps"] is None)
    to_args = (lambda x: (x["values"], x["returns"], x["old_values"], x["clip_eps"])) if clipped \
        else (lambda x: (x["values"], x["returns"]))
    cases = _golden("value_loss", to_args, keep=keep)
    for n, eps in [(1, 0.2), (9, 0.2), (64, 0.5)]:
        v, ret = grid(rng.normal(0, 2, n)), grid(rng.normal(0, 2, n))
        old = v + grid(rng.normal(0, 2 * eps, n))
        args = (v, ret, old, eps) if clipped else (v, ret)
        cases.append(Case(f"random/N{n}", f"{n} samples, values and returns ~ N(0, 4)", args))
    return cases


def _value_scale(args, expected):
    total = np.abs(args[0]) + np.abs(args[1])
    if len(args) > 2:
        total = total + np.abs(args[2]) + args[3]
    return 0.5 * _max_abs(total) ** 2, _max_abs(total) / len(args[0])


def _value_from(loss):
    return lambda v, *rest: _value_and_grad(lambda t: loss(t, *[Tensor(x) if isinstance(
        x, np.ndarray) else x for x in rest]), v)


def _clipped_error(v, ret, old, eps):
    err, clipped = v - ret, old + ad.clip(v - old, -eps, eps) - ret
    return err * err, clipped * clipped


VALUE = Quantity(
    "value_loss", "fn(values (B,), returns (B,)) -> loss, or (loss, d loss/d values)",
    "0.5 mean((V - R)^2)", ("loss", "grad_values"),
    _value_from(lambda v, ret: value_loss(v, ret)), lambda rng: _value_cases(rng, False),
    _value_scale,
    {"missing_half": Mistake("the value loss is missing the 0.5 factor (ppo_ref, CleanRL and "
                             "baselines use 0.5 mean((V - R)^2); SB3's F.mse_loss drops it)",
                             _value_from(lambda v, ret: ((v - ret) * (v - ret)).mean())),
     "sum_instead_of_mean": Mistake("the squared errors are summed over the batch instead of "
                                    "averaged", _value_from(lambda v, ret: 0.5 * ((v - ret) * (v - ret)).sum()))},
    optional=1)

VALUE_CLIPPED = Quantity(
    "value_loss_clipped",
    "fn(values (B,), returns (B,), old_values (B,), clip_eps) -> loss, or (loss, d loss/d values)",
    "0.5 mean(max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2))", ("loss", "grad_values"),
    _value_from(lambda v, ret, old, eps: value_loss(v, ret, old, eps)),
    lambda rng: _value_cases(rng, True), _value_scale,
    {"missing_half": Mistake("the value loss is missing the 0.5 factor: 0.5 mean(max(...)), as "
                             "baselines and CleanRL", _value_from(
                                 lambda *a: ad.maximum(*_clipped_error(*a)).mean())),
     "min_instead_of_max": Mistake("min(...) of the clipped and unclipped errors; the clipped value "
                                   "loss takes the max (the pessimistic one)", _value_from(
                                       lambda *a: 0.5 * ad.minimum(*_clipped_error(*a)).mean())),
     "clipped_term_only": Mistake("only the clipped error is used; the loss is the max of the "
                                  "clipped and the unclipped squared errors", _value_from(
                                      lambda *a: 0.5 * _clipped_error(*a)[1].mean()))},
    optional=1, kink_arg=0,
    near_kink=lambda a, delta: np.abs(np.abs(a[0] - a[2]) - a[3]) <= 4 * delta)


# ----- approx_kl ----------------------------------------------------------------------------

def _kl_cases(estimator):
    def make(rng):
        cases = _golden("approx_kl", lambda x: (x["logp_new"], x["logp_old"]),
                        keep=lambda x: x["estimator"] == estimator)
        for n, spread in [(1, 0.5), (50, 0.05), (50, 0.5), (20, 2.0)]:
            new, old = logp_pair(rng, n, grid(rng.normal(0, spread, n), 20))
            cases.append(Case(f"random/N{n}_spread{spread}", f"log r ~ N(0, {spread}^2)", (new, old)))
        return cases
    return make


def _kl_scale(args, expected):
    d = args[0] - args[1]
    return (_max_abs(d) + _max_abs(np.exp(d)) + 1.0 + _max_abs(*expected),)


_WRONG_WAY = ("the KL is estimated in the wrong direction, KL(pi_new || pi_old): the samples come "
              "from pi_old, so estimate KL(pi_old || pi_new) with log r = logp_new - logp_old")


def _kl_quantity(estimator, formula, mistakes):
    def ref(new, old):
        return approx_kl(new, old, estimator)
    return Quantity(f"approx_kl_{estimator}", "fn(logp_new (B,), logp_old (B,)) -> float",
                    f"{estimator} = {formula}, estimating KL(pi_old || pi_new)", ("kl",),
                    ref, _kl_cases(estimator), _kl_scale,
                    {k: Mistake(msg, f) for k, (msg, f) in mistakes.items()})


KL_K1 = _kl_quantity("k1", "mean(logp_old - logp_new)", {
    "wrong_direction": (_WRONG_WAY, lambda new, old: np.mean(new - old)),
    "abs_log_ratio": ("|log r| is averaged; k1 is the plain mean of log pi_old - log pi_new "
                      "(unbiased, single samples can be negative)",
                      lambda new, old: np.mean(np.abs(new - old)))})
KL_K2 = _kl_quantity("k2", "mean((log r)^2 / 2)", {
    "missing_half": ("k2 is missing its 1/2: mean((log r)^2 / 2)",
                     lambda new, old: np.mean((new - old) ** 2)),
    "ratio_not_log_ratio": ("(r - 1)^2 / 2 in place of (log r)^2 / 2",
                            lambda new, old: np.mean(0.5 * np.expm1(new - old) ** 2))})
KL_K3 = _kl_quantity("k3", "mean((r - 1) - log r)", {
    "wrong_direction": (_WRONG_WAY, lambda new, old: np.mean(np.expm1(old - new) - (old - new))),
    "missing_minus_one": ("k3 is missing its -1: mean((r - 1) - log r)",
                          lambda new, old: np.mean(np.exp(new - old) - (new - old)))})
KL_K3_DEFAULT = Quantity(**{**KL_K3.__dict__, "name": "approx_kl",
                            "note": "the same as approx_kl_k3, ppo_ref's default estimator"})


# ----- clip_fraction ------------------------------------------------------------------------

def _clip_fraction_cases(rng):
    cases = _golden("clip_fraction", lambda x: (x["logp_new"], x["logp_old"], x["clip_eps"]))
    for n, spread, eps in [(1, 0.3, 0.2), (33, 0.2, 0.2), (100, 0.3, 0.1)]:
        new, old = logp_pair(rng, n, grid(rng.normal(0, spread, n)))
        cases.append(Case(f"random/N{n}_eps{eps}", f"log r ~ N(0, {spread}^2)", (new, old, eps)))
    for eps in (0.2, 0.1):   # well outside float32 rounding of the edges, and at them
        edges = np.array([math.log1p(eps), math.log1p(-eps)])
        near = np.concatenate([edges + k for k in (-1e-3, -1e-5, 0.0, 1e-5, 1e-3)])
        new, old = logp_pair(rng, near.size, near)
        cases.append(Case(f"random/ratios_at_and_near_1+-{eps}", "ratios at both clip "
                          "boundaries and 1e-5, 1e-3 (in log r) either side", (new, old, eps)))
    return cases


CLIP_FRACTION = Quantity(
    "clip_fraction", "fn(logp_new (B,), logp_old (B,), clip_eps) -> float",
    "mean(|r - 1| > eps); the boundary counts as inside", ("clip_fraction",),
    clip_fraction, _clip_fraction_cases, lambda a, e: (1.0,),
    {"log_ratio_band": Mistake("|log r| > eps is counted; the band is on the ratio, |r - 1| > eps",
                               lambda new, old, eps: np.mean(np.abs(new - old) > eps)),
     "upper_side_only": Mistake("only r > 1 + eps is counted; r < 1 - eps is outside the band too",
                                lambda new, old, eps: np.mean(np.exp(new - old) > 1 + eps))},
    kink_arg=0, kink_precision="float32", kink_side=lambda a: np.sign(a[0] - a[1]),
    note="a fraction of booleans is float64 whatever precision the ratios had, so ratios "
         "within float32 rounding of 1 +- eps may count either way")


# ----- explained_variance -------------------------------------------------------------------

def _ev_cases(rng):
    cases = _golden("explained_variance", lambda x: (x["values"], x["returns"]),
                    skip=("constant_returns",))
    for n, noise in [(2, 1.0), (30, 0.3), (200, 3.0)]:
        ret = grid(rng.normal(1.0, 2.0, n))
        cases.append(Case(f"random/N{n}", f"V = R + 0.5 + N(0, {noise}^2) noise",
                          (grid(ret + 0.5 + rng.normal(0, noise, n)), ret)))
    return cases


def _ev_scale(args, expected):
    v, ret = args
    return ((1.0 + _max_abs(*expected)) * (1.0 + _max_abs(v, ret) ** 2 / np.var(ret)),)


EXPLAINED_VARIANCE = Quantity(
    "explained_variance", "fn(values (B,), returns (B,)) -> float", "1 - Var[R - V] / Var[R]",
    ("explained_variance",), explained_variance, _ev_cases, _ev_scale,
    {"r_squared": Mistake("computes R^2 = 1 - mean((R - V)^2) / Var[R]; explained variance uses "
                          "Var[R - V], which ignores a constant offset of V",
                          lambda v, ret: 1 - np.mean((ret - v) ** 2) / np.var(ret)),
     "missing_one_minus": Mistake("returns Var[R - V] / Var[R], the unexplained share; explained "
                                  "variance is 1 minus that",
                                  lambda v, ret: np.var(ret - v) / np.var(ret))},
    note="constant returns (Var[R] = 0) are not checked (ppo_ref gives 0.0, others nan)")


# ----- distributions ------------------------------------------------------------------------

def categorical_adapter(logits, actions, other_logits):
    """ppo_ref's Categorical in the kit's form: (log_prob, entropy, KL(p || q)), each (B,)."""
    p, q = Categorical(logits), Categorical(other_logits)
    return p.log_prob(actions).data, p.entropy().data, p.kl(q).data


def _categorical_cases(rng):
    cases = _golden("categorical", lambda x: (x["logits"], x["actions"], x["other_logits"]))
    for B, A, scale in [(1, 2, 1.0), (8, 5, 3.0), (4, 18, 1.0), (6, 3, 30.0)]:
        logits = grid(rng.normal(0, scale, (B, A)))
        cases.append(Case(f"random/B{B}_A{A}_scale{scale}", f"logits ~ N(0, {scale}^2)",
                          (logits, rng.integers(0, A, B), grid(rng.normal(0, scale, (B, A))))))
    return cases


def _categorical_scale(args, expected):
    s = _max_abs(args[0], args[2]) + math.log(args[0].shape[-1]) + 1.0
    return (s + _max_abs(expected[0]),) * 3


def _log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


CATEGORICAL = Quantity(
    "categorical", "fn(logits (B, A), actions (B,) int, other_logits (B, A)) -> "
    "(log_prob (B,), entropy (B,), kl (B,))",
    "log pi(a), H(pi) and KL(pi || pi_other) of softmax distributions",
    ("log_prob", "entropy", "kl"), categorical_adapter, _categorical_cases, _categorical_scale,
    {"kl_wrong_direction": Mistake(
        "the KL is in the wrong direction: kl must be KL(p || q) = sum p (log p - log q) with p from "
        "logits, q from other_logits", lambda lg, a, other: (
            *categorical_adapter(lg, a, other)[:2], Categorical(other).kl(Categorical(lg)).data)),
     "unnormalized_log_prob": Mistake(
        "log_prob returns the raw logit of the action; normalise first: logits - logsumexp(logits)",
        lambda lg, a, other: (np.take_along_axis(lg, a[:, None], 1)[:, 0],
                              *categorical_adapter(lg, a, other)[1:])),
     "entropy_from_logits": Mistake(
        "the entropy uses the logits where it needs log-probabilities: -sum p log p, "
        "log p = log_softmax(logits)", lambda lg, a, other: (
            categorical_adapter(lg, a, other)[0],
            -(np.exp(_log_softmax(lg)) * lg).sum(-1), categorical_adapter(lg, a, other)[2]))})


def gaussian_adapter(mean, log_std, actions, other_mean, other_log_std):
    """ppo_ref's DiagGaussian in the kit's form: (log_prob, entropy, KL(p || q)), each (B,)."""
    p, q = DiagGaussian(mean, log_std), DiagGaussian(other_mean, other_log_std)
    return p.log_prob(actions).data, p.entropy().data, p.kl(q).data


def _gaussian_args(x):
    shape = x["mean"].shape
    return (x["mean"], np.broadcast_to(x["log_std"], shape).copy(), x["actions"], x["other_mean"],
            np.broadcast_to(x["other_log_std"], shape).copy())


def _gaussian_cases(rng):
    cases = _golden("diag_gaussian", _gaussian_args)
    for B, D, ls in [(1, 1, 0.0), (6, 4, -0.5), (3, 2, -12.0), (4, 3, 2.0)]:
        # float32 values; where std is tiny, a - mean is then exact in float32 too (Sterbenz)
        mean = grid(rng.normal(0, 0.5, (B, D)))
        std = math.exp(ls)
        log_std = np.full((B, D), ls) + grid(rng.normal(0, 0.1, (B, D)))
        actions = _f32(mean + std * rng.normal(size=(B, D)))
        other_mean = _f32(mean + std * rng.normal(size=(B, D)))
        cases.append(Case(f"random/B{B}_D{D}_log_std{ls}", f"log_std ~ {ls}, actions ~ pi",
                          (mean, log_std, actions, other_mean,
                           log_std + grid(rng.normal(0, 0.3, (B, D))))))
    return cases


def _gaussian_scale(args, expected):
    mean, ls, a, om, ols = args
    z2 = ((a - mean) * np.exp(-ls)) ** 2
    dz2 = ((mean - om) * np.exp(-ols)) ** 2
    terms = z2 + dz2 + np.exp(2 * np.abs(ls - ols)) + np.abs(ls) + np.abs(ols) + 2.0
    return (float(np.max(terms.sum(-1))),) * 3


def _gaussian_mistake(log_prob=None, entropy=None, kl=None):
    def fn(*args):
        lp, h, k = gaussian_adapter(*args)
        return (log_prob(*args) if log_prob else lp, entropy(*args) if entropy else h,
                kl(*args) if kl else k)
    return fn


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

GAUSSIAN = Quantity(
    "gaussian", "fn(mean (B, D), log_std (B, D), actions (B, D), other_mean (B, D), "
    "other_log_std (B, D)) -> (log_prob (B,), entropy (B,), kl (B,))",
    "log pi(a) summed over D, H(pi) and KL(pi || pi_other) of diagonal Gaussians",
    ("log_prob", "entropy", "kl"), gaussian_adapter, _gaussian_cases, _gaussian_scale,
    {"kl_wrong_direction": Mistake(
        "the KL is in the wrong direction: kl must be KL(p || q) with p = N(mean, std), q = "
        "N(other_mean, other_std)", _gaussian_mistake(kl=lambda m, ls, a, om, ols: gaussian_adapter(
            om, ols, a, m, ls)[2])),
     "log_std_as_log_variance": Mistake(
        "log_std is used as the log of the variance: std = exp(log_std), variance = exp(2 log_std)",
        lambda m, ls, a, om, ols: gaussian_adapter(m, ls / 2, a, om, ols / 2)),
     "mean_over_dimensions": Mistake(
        "log_prob and entropy are averaged over the D action dimensions; a diagonal Gaussian's "
        "log-density is their SUM", _gaussian_mistake(
            log_prob=lambda *x: gaussian_adapter(*x)[0] / x[0].shape[-1],
            entropy=lambda *x: gaussian_adapter(*x)[1] / x[0].shape[-1])),
     "missing_log_2pi": Mistake(
        "log_prob and entropy drop the constant log(2 pi) / 2 per dimension",
        _gaussian_mistake(log_prob=lambda *x: gaussian_adapter(*x)[0] + _HALF_LOG_2PI * x[0].shape[-1],
                          entropy=lambda *x: gaussian_adapter(*x)[1] - _HALF_LOG_2PI * x[0].shape[-1]))},
    note="log_std arrives broadcast to (B, D)")


# ----- adam ---------------------------------------------------------------------------------

def _adam_cases(rng):
    cases = _golden("adam", lambda x: (x["param"], x["grads"], x["lr"], x["beta1"], x["beta2"],
                                       x["eps"]))
    for K, P, g, lr, betas, eps in [(1, 3, 1.0, 0.1, (0.9, 0.999), 1e-8),
                                    (10, 5, 1e-6, 0.01, (0.9, 0.999), 1e-8),
                                    (8, 4, 1.0, 0.05, (0.8, 0.99), 1e-6),
                                    (6, 2, 1e-3, 0.01, (0.9, 0.999), 1e-3)]:
        cases.append(Case(f"random/K{K}_P{P}_g{g}_lr{lr}", f"{K} steps, |g| ~ {g}",
                          (grid(rng.normal(size=P)), _f32(g * rng.normal(size=(K, P))), lr,
                           *betas, eps)))
    return cases


def _adam_variant(bias_correction=True, eps_where="outside"):
    """Adam (torch's) with one of the classic changes; param (P,), grads (K, P) -> (K, P)."""
    def fn(param, grads, lr, b1, b2, eps):
        theta, m, v, out = np.array(param, dtype=np.float64), 0.0, 0.0, []
        for t, g in enumerate(np.asarray(grads, dtype=np.float64), start=1):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            c1, c2 = (1 - b1 ** t, 1 - b2 ** t) if bias_correction else (1.0, 1.0)
            if eps_where == "inside":
                denom = np.sqrt(v / c2 + eps)
            elif eps_where == "before_correction":
                denom = (np.sqrt(v) + eps) / math.sqrt(c2)
            else:
                denom = np.sqrt(v / c2) + eps
            theta = theta - lr * (m / c1) / denom
            out.append(theta)
        return np.array(out)
    return fn


ADAM = Quantity(
    "adam", "fn(param (P,), grads (K, P), lr, beta1, beta2, eps) -> params (K, P) after each step",
    "torch.optim.Adam: theta -= lr m_hat / (sqrt(v_hat) + eps)", ("params",),
    adam_steps, _adam_cases, lambda a, e: (_max_abs(a[0], *e),),
    {"eps_inside_sqrt": Mistake("eps is inside the square root: use sqrt(v_hat) + eps, not "
                                "sqrt(v_hat + eps)", _adam_variant(eps_where="inside")),
     "no_bias_correction": Mistake("no bias correction: divide m by (1 - beta1^t) and v by "
                                   "(1 - beta2^t), t counting steps from 1",
                                   _adam_variant(bias_correction=False)),
     "eps_before_bias_correction": Mistake(
        "eps is added before the bias correction (Kingma & Ba's 'eps hat' form, as TF1/Keras); "
        "torch adds it to sqrt(v_hat)", _adam_variant(eps_where="before_correction"))})
# A torch adapter for adam: p = torch.tensor(param, requires_grad=True); opt = torch.optim.Adam(
# [p], lr, (beta1, beta2), eps); for each g: p.grad = g; opt.step(); record p (demos/verify_torch.py).


# ----- clip_grad_norm -----------------------------------------------------------------------

def _clip_norm_cases(rng):
    cases = _golden("clip_grad_norm", lambda x: (x["grads"], x["max_norm"]))
    for scale, max_norm in [(0.01, 0.5), (1.0, 0.5), (3.0, 10.0), (10.0, 1.0)]:
        grads = [_f32(scale * rng.normal(size=s)) for s in [(4, 3), (3,), (3, 2), (1,)]]
        cases.append(Case(f"random/scale{scale}_max{max_norm}", f"four tensors, |g| ~ {scale}",
                          (grads, max_norm)))
    return cases


def _clip_norm_variant(per_tensor=False, margin=1e-6, report_after=False):
    def fn(grads, max_norm):
        grads = [np.asarray(g, dtype=np.float64) for g in grads]
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
        if per_tensor:
            out = [g * min(1.0, max_norm / (np.sqrt(np.sum(g * g)) + margin)) for g in grads]
        else:
            coef = max_norm / (norm + margin) if norm + margin > 0 else 1.0
            out = [g * coef for g in grads] if coef < 1 else grads
        if report_after:
            norm = math.sqrt(sum(float(np.sum(g * g)) for g in out))
        return norm, out
    return fn


CLIP_GRAD_NORM = Quantity(
    "clip_grad_norm", "fn(grads [arrays], max_norm) -> (total_norm, clipped_grads [arrays])",
    "torch.nn.utils.clip_grad_norm_: one global norm, coefficient max_norm / (norm + 1e-6)",
    ("total_norm", "clipped_grads"), clip_grad_norm_arrays, _clip_norm_cases,
    lambda a, e: (_max_abs(e[0]) + a[1], _max_abs(*a[0])),
    {"per_tensor": Mistake("each gradient is clipped by its own norm; clip_grad_norm scales all of "
                           "them by one coefficient from the global norm",
                           _clip_norm_variant(per_tensor=True)),
     "norm_after_clipping": Mistake("the returned norm is measured after clipping; torch (and "
                                    "ppo_ref) return the norm before", _clip_norm_variant(report_after=True)),
     "no_margin": Mistake("no + 1e-6 in the clip coefficient (optax's convention); torch and "
                          "ppo_ref scale by max_norm / (norm + 1e-6)", _clip_norm_variant(margin=0.0))},
    list_outputs=("clipped_grads",))


QUANTITIES = {q.name: q for q in [GAE, NORMALIZE, SURROGATE, VALUE, VALUE_CLIPPED, KL_K3_DEFAULT,
                                  KL_K1, KL_K2, KL_K3, CLIP_FRACTION, EXPLAINED_VARIANCE,
                                  CATEGORICAL, GAUSSIAN, ADAM, CLIP_GRAD_NORM]}


# ----- MultiCategorical and Bernoulli -------------------------------------------------------

def multi_categorical_adapter(logits, nvec, actions, other_logits):
    """ppo_ref's MultiCategorical in the kit's form: (log_prob, entropy, KL(p || q)), each (B,)."""
    p, q = MultiCategorical(logits, nvec), MultiCategorical(other_logits, nvec)
    return p.log_prob(actions).data, p.entropy().data, p.kl(q).data


def _multi_categorical_cases(rng):
    cases = _golden("multi_categorical",
                    lambda x: (x["logits"], x["nvec"], x["actions"], x["other_logits"]))
    for B, nvec, scale in [(1, (2, 2), 1.0), (6, (3, 5, 2), 3.0), (4, (7, 4), 1.0), (3, (3, 3), 30.0)]:
        nvec = np.array(nvec, dtype=np.int64)
        logits = grid(rng.normal(0, scale, (B, int(nvec.sum()))))
        actions = np.stack([rng.integers(0, n, B) for n in nvec], axis=-1)
        cases.append(Case(f"random/B{B}_nvec{'x'.join(map(str, nvec))}_scale{scale}",
                          f"logits ~ N(0, {scale}^2)",
                          (logits, nvec, actions, grid(rng.normal(0, scale, logits.shape)))))
    return cases


def _multi_categorical_scale(args, expected):
    logits, nvec, _, other = args
    s = len(nvec) * (_max_abs(logits, other) + math.log(max(nvec)) + 1.0)
    return (s + _max_abs(expected[0]),) * 3


def _per_component(fn):
    """A multi_categorical adapter from a function of one component's (logits, actions, other)
    that returns (log_prob, entropy, kl) per component, stacked (B, K)."""
    def adapter(logits, nvec, actions, other_logits):
        ends = np.cumsum(nvec)
        parts = [fn(logits[:, e - n:e], actions[:, k], other_logits[:, e - n:e])
                 for k, (n, e) in enumerate(zip(nvec, ends))]
        return tuple(np.stack([p[i] for p in parts], axis=-1) for i in range(3))
    return adapter


def _mean_over_components(logits, nvec, actions, other_logits):
    lp, h, kl = _per_component(categorical_adapter)(logits, nvec, actions, other_logits)
    return lp.mean(-1), h.mean(-1), kl.mean(-1)


def _one_softmax(logits, nvec, actions, other_logits):
    """One softmax over all sum(nvec) logits, the action of component k at its offset."""
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    lp, lq = _log_softmax(logits), _log_softmax(other_logits)
    picked = np.take_along_axis(lp, actions + offsets, axis=1).sum(-1)
    return picked, -(np.exp(lp) * lp).sum(-1), (np.exp(lp) * (lp - lq)).sum(-1)


MULTI_CATEGORICAL = Quantity(
    "multi_categorical", "fn(logits (B, sum(nvec)), nvec (K,) int, actions (B, K) int, "
    "other_logits (B, sum(nvec))) -> (log_prob (B,), entropy (B,), kl (B,))",
    "K independent categoricals (a MultiDiscrete action): log pi(a), H(pi) and KL(pi || pi_other), "
    "each the SUM over components",
    ("log_prob", "entropy", "kl"), multi_categorical_adapter, _multi_categorical_cases,
    _multi_categorical_scale,
    {"mean_over_components": Mistake(
        "log_prob, entropy and kl are averaged over the components; the components are independent, "
        "so each is the sum over them (a mean divides the log-ratio and the entropy bonus by K)",
        _mean_over_components),
     "one_softmax_over_all_logits": Mistake(
        "one softmax over all sum(nvec) logits; each component needs its own softmax over its own "
        "nvec[k] logits", _one_softmax),
     "kl_wrong_direction": Mistake(
        "the KL is in the wrong direction: kl must be sum_k KL(p_k || q_k) with p from logits, q "
        "from other_logits", lambda lg, nvec, a, other: (
            *multi_categorical_adapter(lg, nvec, a, other)[:2],
            multi_categorical_adapter(other, nvec, a, lg)[2]))})


def bernoulli_adapter(logits, actions, other_logits):
    """ppo_ref's Bernoulli in the kit's form: (log_prob, entropy, KL(p || q)), each (B,)."""
    p, q = Bernoulli(logits), Bernoulli(other_logits)
    return p.log_prob(actions).data, p.entropy().data, p.kl(q).data


def _bernoulli_cases(rng):
    cases = _golden("bernoulli", lambda x: (x["logits"], x["actions"], x["other_logits"]))
    for B, D, scale in [(1, 1, 1.0), (8, 5, 3.0), (4, 12, 1.0), (5, 3, 30.0)]:
        cases.append(Case(f"random/B{B}_D{D}_scale{scale}", f"logits ~ N(0, {scale}^2)",
                          (grid(rng.normal(0, scale, (B, D))), rng.integers(0, 2, (B, D)),
                           grid(rng.normal(0, scale, (B, D))))))
    return cases


def _bernoulli_scale(args, expected):
    s = args[0].shape[-1] * (_max_abs(args[0], args[2]) + 1.0)
    return (s + _max_abs(expected[0]),) * 3


def _softplus(x):
    return np.logaddexp(0.0, x)


def _bernoulli_terms(logits, actions, other_logits):
    """Per entry (B, D): log p(a_d), H_d, KL_d, written with softplus."""
    p = 1.0 / (1.0 + np.exp(-logits))
    return (actions * logits - _softplus(logits), _softplus(logits) - p * logits,
            p * (logits - other_logits) + _softplus(other_logits) - _softplus(logits))


BERNOULLI = Quantity(
    "bernoulli", "fn(logits (B, D), actions (B, D) int 0/1, other_logits (B, D)) -> "
    "(log_prob (B,), entropy (B,), kl (B,))",
    "D independent Bernoullis from logits (a MultiBinary action): log pi(a), H(pi) and "
    "KL(pi || pi_other), each the SUM over entries",
    ("log_prob", "entropy", "kl"), bernoulli_adapter, _bernoulli_cases, _bernoulli_scale,
    {"mean_over_entries": Mistake(
        "log_prob, entropy and kl are averaged over the D entries; the entries are independent, so "
        "each is the sum over them", lambda lg, a, other: tuple(
            t.mean(-1) for t in _bernoulli_terms(lg, a, other))),
     "entropy_of_one_outcome": Mistake(
        "the entropy has only the -p log p term; a Bernoulli's is -p log p - (1 - p) log(1 - p) = "
        "softplus(l) - p l", lambda lg, a, other: (
            bernoulli_adapter(lg, a, other)[0],
            (-(1.0 / (1.0 + np.exp(-lg))) * (lg - _softplus(lg))).sum(-1),
            bernoulli_adapter(lg, a, other)[2])),
     "kl_wrong_direction": Mistake(
        "the KL is in the wrong direction: kl must be KL(p || q) with p from logits, q from "
        "other_logits", lambda lg, a, other: (*bernoulli_adapter(lg, a, other)[:2],
                                              bernoulli_adapter(other, a, lg)[2]))})

QUANTITIES.update({q.name: q for q in [MULTI_CATEGORICAL, BERNOULLI]})


# ----- RLHF: the per-token reward, masked whitening, GAE over padded sequences ----------------
# rlhf_quantities.py builds them from Case, Mistake and Quantity above and adds them to QUANTITIES

from . import rlhf_quantities  # noqa: E402,F401
