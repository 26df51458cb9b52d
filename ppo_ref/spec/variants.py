"""Each checkable quantity as a family of implementations, and the libraries' conventions.

Code that computes a quantity makes a few choices where it could go one way or another: the
0.5 in the value loss, the ddof of a std, where Adam's eps goes, whether a truncation cuts the
GAE sum. Call each choice a KNOB. ppo_ref is one setting of the knobs; each known mistake of
quantities.py is another (one knob turned); real code often turns two or three at once; and
some settings are a library's deliberate CONVENTION, not a bug (Stable-Baselines3's value loss
is F.mse_loss, without the 0.5: ppo_ref with vf_coef x 2).

    FAMILIES     quantity name -> Family(build, mistakes): build(**knobs) is an adapter with the
                 quantity's signature (build() is ppo_ref's), mistakes maps each known mistake
                 of quantities.py to the knobs it turns
    CONVENTIONS  name -> Convention: whose it is, what it computes, how to translate it to
                 ppo_ref, and the knobs it turns per quantity (and in a whole update)
    candidates   the combinations the kit tries when no single mistake explains a function

Two knob settings combine when they turn different knobs (two values of one knob cannot both
hold). A quantity without a family (the distributions) combines mistakes output by output:
each output is taken from the mistake that changed it, when no two change the same one.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import autodiff as ad
from ..autodiff import Tensor
from ..gae import compute_gae
from .rlhf_quantities import RLHF_FAMILIES
from .quantities import (QUANTITIES, _adam_variant, _clip_norm_variant, _value_and_grad,
                         gaussian_adapter)

__all__ = ["Family", "Convention", "FAMILIES", "CONVENTIONS", "Part", "candidates",
           "conventions_for", "convention_reference"]


@dataclass(frozen=True)
class Family:
    build: Callable          # build(**knobs) -> adapter; build() computes what ppo_ref does
    mistakes: dict           # mistake name (quantities.py) -> {knob: value}
    # knob (any value turned) or (knob, value) -> the knobs it makes irrelevant: a part turning
    # one of those is not combined with it (the pair would compute the simpler thing)
    moot: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Convention:
    name: str
    whose: str               # the libraries that do this on purpose
    what: str                # what they compute, one line
    translation: str         # how the same thing is said in ppo_ref
    knobs: dict              # quantity name -> {knob: value}
    update: dict = field(default_factory=dict)   # update_variants knobs (whole update)

    def line(self) -> str:
        return (f"{self.what}, as {self.whose} (a convention, not a bug); translation: "
                f"{self.translation}; check it with --convention {self.name}")

    def to_dict(self) -> dict:
        return dict(name=self.name, whose=self.whose, what=self.what,
                    translation=self.translation)


@dataclass(frozen=True)
class Part:
    """One ingredient of a diagnosis: a known mistake or a library's convention."""
    kind: str                # "mistake" or "convention"
    name: str
    text: str
    knobs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(kind=self.kind, name=self.name, diagnosis=self.text)


# ----- the families, quantity by quantity ---------------------------------------------------

def gae_family(terminal_truncation=False, cut_at_truncation=True, truncation_bootstrap="final",
               bootstrap_rollout_end=True):
    """GAE with its four choices about episode ends: is a truncation a termination, does it cut
    the sum, what does a truncated step bootstrap from ("final": V(final obs) = next_values;
    "next_row": values[t+1], the next episode's first state; "none"), and is the rollout's last
    step bootstrapped."""
    def fn(r, v, nv, term, trunc, gamma, lam):
        if truncation_bootstrap == "next_row":
            nv = np.concatenate([v[1:], nv[-1:]])
        elif truncation_bootstrap == "none":
            nv = np.where(trunc, 0.0, nv)
        if not bootstrap_rollout_end:
            nv = nv.copy()
            nv[-1] = 0.0
        return compute_gae(r, v, nv, term | trunc if terminal_truncation else term,
                           trunc if cut_at_truncation else np.zeros_like(trunc), gamma, lam)
    return fn


def normalize_family(ddof=1, eps_in_sqrt=False, centered=True, normalized=True):
    """(A - mean) / (std + eps), or the choices around it."""
    def fn(a, eps):
        if not normalized:
            return a
        top = a - a.mean() if centered else a
        return top / (np.sqrt(a.var(ddof=ddof) + eps) if eps_in_sqrt else a.std(ddof=ddof) + eps)
    return fn


def surrogate_family(combine="min", negated=True, ratio="new/old"):
    """(value, gradient) of -mean(min(r A, clip(r) A)), or max / the clipped term alone, the
    sign, and r's direction."""
    def fn(new, old, adv, eps):
        def loss(t):
            r = (t - old).exp() if ratio == "new/old" else (old - t).exp()
            a = Tensor(adv)
            clipped = ad.clip(r, 1 - eps, 1 + eps) * a
            objective = {"min": lambda: ad.minimum(r * a, clipped),
                         "max": lambda: ad.maximum(r * a, clipped),
                         "clip_only": lambda: clipped}[combine]()
            return -objective.mean() if negated else objective.mean()
        return _value_and_grad(loss, new)
    return fn


def _smooth_l1(e):
    """Huber with delta 1 (torch's smooth_l1_loss): 0.5 e^2 where |e| < 1, |e| - 0.5 beyond;
    written as 0.5 q^2 + q (e - q), q = clip(e, -1, 1), which is both at once."""
    q = ad.clip(e, -1.0, 1.0)
    return 0.5 * q * q + q * (e - q)


def value_family(half=True, reduce="mean", penalty="squared", combine="max", vf_range=None):
    """(value, gradient) of the value loss: 0.5 mean of the squared error, or without the 0.5,
    summed, a Huber penalty; with old_values and clip_eps given, the clipped form: combine
    "max" (ppo_ref), "min", "clipped" (the clipped error alone), "unclipped" (no clipping),
    clipped to vf_range instead of clip_eps when given."""
    def per_sample(e):
        if penalty == "huber":   # smooth_l1 carries its own 0.5
            return _smooth_l1(e)
        return (0.5 if half else 1.0) * e * e

    def fn(v, ret, old=None, eps=None):
        def loss(t):
            err = t - ret
            if old is None or combine == "unclipped":
                terms = per_sample(err)
            else:
                r = eps if vf_range is None else vf_range
                clipped = per_sample(ad.clip(t - old, -r, r) + old - ret)
                terms = {"max": lambda: ad.maximum(per_sample(err), clipped),
                         "min": lambda: ad.minimum(per_sample(err), clipped),
                         "clipped": lambda: clipped}[combine]()
            return terms.sum() if reduce == "sum" else terms.mean()
        return _value_and_grad(loss, v)
    return fn


def kl_family(estimator="k3", reversed_=False, absolute=False, no_half=False,
              ratio_squared=False, no_minus_one=False):
    """k1, k2 or k3 of KL(pi_old || pi_new), and the ways each goes wrong."""
    def fn(new, old):
        d = old - new if reversed_ else new - old          # log r
        if estimator == "k1":
            return float(np.mean(np.abs(d) if absolute else -d))
        if estimator == "k2":
            x = np.expm1(d) if ratio_squared else d
            return float(np.mean((1.0 if no_half else 0.5) * x * x))
        return float(np.mean((np.exp(d) if no_minus_one else np.expm1(d)) - d))
    return fn


def clip_fraction_family(band="ratio", sides="both"):
    def fn(new, old, eps):
        x = new - old
        if band == "log":
            out = x > eps if sides == "upper" else np.abs(x) > eps
        else:
            r = np.exp(x)
            out = r > 1 + eps if sides == "upper" else (r < 1 - eps) | (r > 1 + eps)
        return float(np.mean(out))
    return fn


def explained_variance_family(numerator="var", one_minus=True):
    def fn(v, ret):
        share = (np.var(ret - v) if numerator == "var" else np.mean((ret - v) ** 2)) / np.var(ret)
        return 1.0 - share if one_minus else share
    return fn


def gaussian_family(kl_reversed=False, log_variance=False, mean_over_d=False, no_log_2pi=False):
    """(log_prob, entropy, KL(p || q)) of diagonal Gaussians, and the ways each goes wrong."""
    def fn(m, ls, a, om, ols):
        if log_variance:
            ls, ols = ls / 2, ols / 2
        lp, h, kl = gaussian_adapter(m, ls, a, om, ols)
        if kl_reversed:
            kl = gaussian_adapter(om, ols, a, m, ls)[2]
        d = m.shape[-1]
        if no_log_2pi:
            lp, h = lp + 0.5 * math.log(2 * math.pi) * d, h - 0.5 * math.log(2 * math.pi) * d
        if mean_over_d:
            lp, h = lp / d, h / d
        return lp, h, kl
    return fn


def adam_family(bias_correction=True, eps_where="outside"):
    return _adam_variant(bias_correction=bias_correction, eps_where=eps_where)


def clip_grad_norm_family(per_tensor=False, margin=1e-6, report_after=False):
    return _clip_norm_variant(per_tensor=per_tensor, margin=margin, report_after=report_after)


def _kl(estimator):
    return lambda **k: kl_family(**{"estimator": estimator, **k})


# another estimator has none of this one's mistakes
_KL_MOOT = {"estimator": ("absolute", "no_half", "ratio_squared", "no_minus_one")}
_VALUE_MISTAKES = {"missing_half": {"half": False}, "sum_instead_of_mean": {"reduce": "sum"}}

FAMILIES = {
    "gaussian": Family(gaussian_family, {
        "kl_wrong_direction": {"kl_reversed": True}, "log_std_as_log_variance": {"log_variance": True},
        "mean_over_dimensions": {"mean_over_d": True}, "missing_log_2pi": {"no_log_2pi": True}}),
    "gae": Family(gae_family, {
        "truncation_as_termination": {"terminal_truncation": True},
        "truncation_ignored": {"cut_at_truncation": False},
        "no_bootstrap_at_rollout_end": {"bootstrap_rollout_end": False},
        "bootstrap_from_next_row": {"truncation_bootstrap": "next_row"},
        "truncated_not_bootstrapped": {"cut_at_truncation": False, "truncation_bootstrap": "none"}},
        # a truncation that terminates is neither cut nor bootstrapped in any other way
        moot={"terminal_truncation": ("cut_at_truncation", "truncation_bootstrap")}),
    "normalize_advantages": Family(normalize_family, {
        "ddof0": {"ddof": 0}, "eps_inside_sqrt": {"eps_in_sqrt": True},
        "not_centered": {"centered": False}},
        moot={"normalized": ("ddof", "eps_in_sqrt", "centered")}),
    "clipped_surrogate": Family(surrogate_family, {
        "clip_without_min": {"combine": "clip_only"}, "max_instead_of_min": {"combine": "max"},
        "objective_not_negated": {"negated": False}, "ratio_inverted": {"ratio": "old/new"}}),
    "value_loss": Family(value_family, _VALUE_MISTAKES, moot={"penalty": ("half",)}),
    "value_loss_clipped": Family(value_family, {
        "missing_half": {"half": False}, "min_instead_of_max": {"combine": "min"},
        "clipped_term_only": {"combine": "clipped"}}, moot={"penalty": ("half",)}),
    "approx_kl": Family(_kl("k3"), {"wrong_direction": {"reversed_": True},
                                    "missing_minus_one": {"no_minus_one": True}}, moot=_KL_MOOT),
    "approx_kl_k1": Family(_kl("k1"), {"wrong_direction": {"reversed_": True},
                                       "abs_log_ratio": {"absolute": True}},
                           moot={"absolute": ("reversed_",), **_KL_MOOT}),   # |log r| has no direction
    "approx_kl_k2": Family(_kl("k2"), {"missing_half": {"no_half": True},
                                       "ratio_not_log_ratio": {"ratio_squared": True}}, moot=_KL_MOOT),
    "approx_kl_k3": Family(_kl("k3"), {"wrong_direction": {"reversed_": True},
                                       "missing_minus_one": {"no_minus_one": True}}, moot=_KL_MOOT),
    "clip_fraction": Family(clip_fraction_family, {"log_ratio_band": {"band": "log"},
                                                   "upper_side_only": {"sides": "upper"}}),
    "explained_variance": Family(explained_variance_family, {
        "r_squared": {"numerator": "mse"}, "missing_one_minus": {"one_minus": False}}),
    "adam": Family(adam_family, {
        "eps_inside_sqrt": {"eps_where": "inside"}, "no_bias_correction": {"bias_correction": False},
        "eps_before_bias_correction": {"eps_where": "before_correction"}},
        # without a bias correction, eps before it is eps after it
        moot={("eps_where", "before_correction"): ("bias_correction",)}),
    "clip_grad_norm": Family(clip_grad_norm_family, {
        "per_tensor": {"per_tensor": True}, "norm_after_clipping": {"report_after": True},
        "no_margin": {"margin": 0.0}}),
    **{name: Family(build, mistakes, moot) for name, (build, mistakes, moot) in RLHF_FAMILIES.items()},
}


# ----- conventions ----------------------------------------------------------------------------

VALUE_CLIP_RANGES = (0.1, 0.2, 0.3, 0.5, 1.0)   # ranges tried when none is given

_CONVENTIONS = [
    Convention(
        "sb3_mse", "Stable-Baselines3 (torch's F.mse_loss)",
        "the value loss is mean((V - R)^2), without the 0.5",
        "it is ppo_ref's value loss times 2: SB3 with vf_coef c is ppo_ref with vf_coef 2c",
        {"value_loss": {"half": False}, "value_loss_clipped": {"half": False}},
        {"value_half": False}),
    Convention(
        "torchrl_smooth_l1", "torchrl (ClipPPOLoss's default loss_critic_type='smooth_l1')",
        "the value loss is the Huber (smooth L1, delta 1) loss of V - R",
        "it is ppo_ref's 0.5 (V - R)^2 where |V - R| < 1 and |V - R| - 0.5 beyond (a "
        "gradient clipped to +-1 per sample); ppo_ref has no such option: torchrl's "
        "loss_critic_type='l2' with critic_coef c is ppo_ref with vf_coef 2c",
        {"value_loss": {"penalty": "huber"}, "value_loss_clipped": {"penalty": "huber"}}),
    Convention(
        "sb3_clip_range_vf", "Stable-Baselines3 (clip_range_vf)",
        "the clipped value loss is mean((V_old + clip(V - V_old, -eps, eps) - R)^2): the clipped "
        "error alone, no max with the unclipped one, no 0.5",
        "ppo_ref (as baselines and CleanRL) takes 0.5 mean(max(unclipped^2, clipped^2)); SB3's is "
        "neither pessimistic nor halved, so there is no exact translation",
        {"value_loss_clipped": {"combine": "clipped", "half": False}}),
    Convention(
        "no_value_clipping", "Stable-Baselines3 (clip_range_vf=None, its default) and torchrl "
        "(clip_value=None)",
        "the value loss is not clipped", "it is ppo_ref with clip_vloss=False",
        {"value_loss_clipped": {"combine": "unclipped"}}, {"value_clip": False}),
    Convention(
        "value_clip_range", "Stable-Baselines3 (clip_range_vf) and torchrl (clip_value)",
        "the value is clipped to its own range, not the policy's clip_eps",
        "ppo_ref (as CleanRL) clips the value with the policy's eps; pass that range as "
        "clip_eps to compare the value loss alone",
        {"value_loss_clipped": {"vf_range": VALUE_CLIP_RANGES}}),
    Convention(
        "ddof0", "numpy's std (OpenAI baselines ppo2, Spinning Up)",
        "the advantages are normalised with the population std, ddof = 0",
        "ppo_ref's (torch's .std()) uses ddof = 1: ddof = 0 gives advantages sqrt(B / (B - 1)) "
        "times larger (1.008 for B = 64), a policy-gradient scale, not a bug",
        {"normalize_advantages": {"ddof": 0}, "rlhf_whitening": {"ddof": 0}}, {"adv_ddof": 0}),
    Convention(
        "trl_masked_whiten", "TRL (masked_whiten: (A - mean) * rsqrt(var + 1e-8))",
        "the advantages are whitened with eps inside the square root: (A - mean) / sqrt(var + eps)",
        "ppo_ref (as torch-based PPOs) divides by std + eps; the two differ by about eps / (2 var) "
        "relative, in float32 nothing unless var is tiny",
        {"rlhf_whitening": {"eps_in_sqrt": True}, "normalize_advantages": {"eps_in_sqrt": True}}),
    Convention(
        "no_advantage_normalisation", "torchrl (ClipPPOLoss's normalize_advantage=False, its "
        "default)", "the advantages are not normalised",
        "it is ppo_ref with norm_adv=False",
        {"normalize_advantages": {"normalized": False}}, {"adv_norm": "none"}),
    Convention(
        "batch_advantage_normalisation", "OpenAI baselines ppo1 and Spinning Up",
        "the advantages are normalised once over the whole batch, before the minibatches",
        "ppo_ref, CleanRL and SB3 normalise each minibatch; ppo_ref has no per-batch option",
        {}, {"adv_norm": "batch"}),
    Convention(
        "k1", "Spinning Up (approx_kl) and CleanRL (old_approx_kl)",
        "approx_kl is k1 = mean(logp_old - logp_new)",
        "the same KL(pi_old || pi_new), by the unbiased but noisy estimator; it is ppo_ref's "
        "approx_kl(..., 'k1') (quantity approx_kl_k1); a target_kl tuned on one is not the other's",
        {"approx_kl": {"estimator": "k1"}, "approx_kl_k2": {"estimator": "k1"},
         "approx_kl_k3": {"estimator": "k1"}}),
    Convention(
        "k2", "OpenAI baselines ppo2 (approxkl)",
        "approx_kl is k2 = mean((logp_new - logp_old)^2 / 2)",
        "the same KL(pi_old || pi_new), biased low variance estimator; it is ppo_ref's "
        "approx_kl(..., 'k2') (quantity approx_kl_k2)",
        {"approx_kl": {"estimator": "k2"}, "approx_kl_k1": {"estimator": "k2"},
         "approx_kl_k3": {"estimator": "k2"}}),
    Convention(
        "k3", "CleanRL (approx_kl) and Stable-Baselines3 (approx_kl_div)",
        "approx_kl is k3 = mean((r - 1) - log r)",
        "it is ppo_ref's default approx_kl (quantity approx_kl)",
        {"approx_kl_k1": {"estimator": "k3"}, "approx_kl_k2": {"estimator": "k3"}}),
    Convention(
        "tf_adam_eps", "TensorFlow / Keras (tf.keras.optimizers.Adam; Kingma & Ba's eps-hat)",
        "Adam adds eps to sqrt(v) before the bias correction: theta -= lr_t m / (sqrt(v) + "
        "eps_hat), lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)",
        "it is torch's Adam (ppo_ref's) with eps_t = eps_hat / sqrt(1 - beta2^t) at step t: "
        "the two agree once eps << sqrt(v_hat), and differ in the first steps of tiny gradients",
        {"adam": {"eps_where": "before_correction"}}, {"adam_eps": "tf"}),
    Convention(
        "optax_clip_by_global_norm", "optax (clip_by_global_norm)",
        "the clip coefficient is max_norm / norm, without torch's + 1e-6",
        "it is ppo_ref's (torch's clip_grad_norm_) up to 1e-6 / norm relative",
        {"clip_grad_norm": {"margin": 0.0}}),
]
CONVENTIONS = {c.name: c for c in _CONVENTIONS}


def conventions_for(quantity: str) -> list:
    return [c for c in _CONVENTIONS if quantity in c.knobs]


def _settings(c: Convention, quantity: str, value=None) -> list:
    """The knob settings a convention stands for in a quantity: one, or one per candidate of a
    knob given as a tuple (value_clip_range's ranges), or the one value asked for."""
    knobs = c.knobs[quantity]
    spread = [k for k, v in knobs.items() if isinstance(v, tuple)]
    if not spread:
        return [dict(knobs)]
    key = spread[0]
    values = (value,) if value is not None else knobs[key]
    return [{**knobs, key: v} for v in values]


def parse_convention(text: str) -> tuple:
    """'NAME' or 'NAME=VALUE' (value_clip_range=10) -> (Convention, value or None)."""
    name, _, value = text.partition("=")
    if name not in CONVENTIONS:
        raise ValueError(f"unknown convention {name!r}; choose one of {', '.join(CONVENTIONS)}")
    if value:
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"convention {name}: {value!r} is not a number") from None
    return CONVENTIONS[name], (value if value != "" else None)


def convention_reference(quantity: str, text: str) -> tuple:
    """(Convention, knobs, adapter) of ppo_ref adjusted to a convention, for `check`."""
    c, value = parse_convention(text)
    if quantity not in c.knobs or quantity not in FAMILIES:
        where = ", ".join(c.knobs) or "verify-update only"
        raise ValueError(f"convention {c.name} does not apply to quantity {quantity!r} "
                         f"(it applies to: {where})")
    knobs = _settings(c, quantity, value)[0]
    if any(isinstance(v, tuple) for v in c.knobs[quantity].values()) and value is None:
        knobs = {**knobs, "vf_range": None}   # no range given: the policy's eps, as ppo_ref
    return c, knobs, FAMILIES[quantity].build(**knobs)


# ----- the combinations to try ----------------------------------------------------------------

def _parts(quantity: str, base: dict) -> list:
    """Every single Part of a quantity with a family, except those that contradict base."""
    family = FAMILIES[quantity]
    q = QUANTITIES[quantity]
    parts = [Part("mistake", name, q.mistakes[name].diagnosis, knobs)
             for name, knobs in family.mistakes.items() if name in q.mistakes]
    for c in conventions_for(quantity):
        for knobs in _settings(c, quantity):
            label = c.name + (f"={knobs['vf_range']:g}" if "vf_range" in knobs else "")
            parts.append(Part("convention", label, c.line(), knobs))
    # a mistake that is also a library's convention (SB3's value loss without the 0.5) is
    # named as the convention when it is one part of several
    conventional = [p.knobs for p in parts if p.kind == "convention"]
    parts = [p for p in parts if p.kind == "convention" or p.knobs not in conventional]
    return [p for p in parts
            if all(base.get(k, v) == v for k, v in p.knobs.items()) and not p.knobs.items() <= base.items()]


def _compatible(group, moot=None) -> bool:
    """Parts turn different knobs, and none turns a knob another makes irrelevant."""
    moot = moot or {}
    keys = [k for p in group for k in p.knobs]
    mooted = {m for p in group for k, v in p.knobs.items()
              for m in (*moot.get(k, ()), *moot.get((k, v), ()))}
    return len(keys) == len(set(keys)) and not mooted & set(keys)


def candidates(quantity: str, base: dict | None = None, sizes=(2, 3)):
    """(parts, adapter) for every combination of compatible parts, pairs before triples.
    base: knobs already set (a convention being checked against)."""
    base = dict(base or {})
    if quantity in FAMILIES:
        parts = _parts(quantity, base)
        build = FAMILIES[quantity].build
        for size in sizes:
            for group in itertools.combinations(parts, size):
                if _compatible(group, FAMILIES[quantity].moot):
                    knobs = dict(base)
                    for p in group:
                        knobs.update(p.knobs)
                    yield list(group), build(**knobs)
        return
    q = QUANTITIES[quantity]
    if len(q.outputs) < 2 or base:
        return
    parts = [Part("mistake", name, m.diagnosis) for name, m in q.mistakes.items()]
    for size in sizes:
        for group in itertools.combinations(parts, size):
            yield list(group), _output_by_output(q, [q.mistakes[p.name].fn for p in group])


class Incompatible(Exception):
    """Two mistakes change the same output: they cannot be combined output by output."""


def _output_by_output(q, fns):
    """An adapter whose every output comes from the one mistake that changed it (the reference
    where none did); Incompatible when two mistakes change the same output."""
    def fn(*args):
        ref = q.reference(*args)
        outs = list(ref)
        owner = [None] * len(outs)
        for i, f in enumerate(fns):
            for k, (got, r) in enumerate(zip(f(*args), ref)):
                if not _same(got, r):
                    if owner[k] is not None:
                        raise Incompatible(q.outputs[k])
                    owner[k], outs[k] = i, got
        return tuple(outs)
    return fn


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def describe(parts) -> str:
    """One line naming every part of a combination."""
    kinds = {p.kind for p in parts}
    what = "known mistakes" if kinds == {"mistake"} else \
        "conventions" if kinds == {"convention"} else "a convention and known mistakes"
    words = {2: "two", 3: "three"}.get(len(parts), str(len(parts)))
    return f"{words} {what} together: " + "; AND ".join(
        f"({i}) {p.name}: {p.text}" for i, p in enumerate(parts, 1))


def single_conventions(quantity: str, base: dict | None = None):
    """(Part, adapter) of each convention alone (each candidate range of value_clip_range)."""
    if quantity not in FAMILIES:
        return
    build = FAMILIES[quantity].build
    for p in _parts(quantity, dict(base or {})):
        if p.kind == "convention":
            yield p, build(**{**(base or {}), **p.knobs})
