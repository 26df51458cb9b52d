"""Input checks: made once, where data enters, and skipped by callers that have made them already.

Every public equation of gae.py and losses.py opens with one call to a checker from this module,
which checks its arguments and returns them ready to compute with, in the order given:

    logp_new, logp_old, advantages, clip_eps = check_batch(
        logp_new=logp_new, logp_old=logp_old, advantages=advantages, clip_eps=clip_eps)

What is required of an argument follows from its name, which means one thing throughout the
package: a scalar (a name in SCALARS, or a count in COUNTS) must be a real number in its domain;
the arrays of one call must hold real numbers, be finite, not be empty and all have one shape
(nothing is broadcast). A failure is a ValueError or TypeError that names the argument, both
shapes, or the first bad index (`first_index`). The passing path costs one vectorised test per
argument; finding the index and writing the message happen only on failure. optim.py, trpo.py
and distributions.py find their checkers here too, each named for what it checks.

Trusted callers. A check made at a boundary need not run again in the hot path. PPOConfig has
checked clip_eps, vf_coef, ent_coef, gamma, lam and max_grad_norm, and the rollout collector has
checked that the rewards and the agent's values are finite, before the trainer calls compute_gae
once per rollout and ppo_loss and clip_grad_norm once per minibatch. Such a caller runs them
under `trusted()`:

    with trusted():                       # or @trusted() above the calling function
        loss, info = ppo_loss(...)

Under trusted() a checker converts its arguments (wraps an array as a Tensor, casts to a float
dtype) and checks nothing: the caller vouches that they would pass, and the numbers computed are
the same bit for bit. Like autodiff.no_grad, the switch is a ContextVar: it holds for the
current thread and is undone on leaving the block, also by an exception. Guards on what a
computation produces, rather than on what was passed in, stay on under trust: a probability
ratio that overflows exp (`check_ratio`), a nan/inf gradient in Adam or clip_grad_norm, non-finite
logits in a distribution.

Equations written with Tensors also accept plain arrays: `arrays_or_tensors` hands numpy values
back when no argument was a Tensor.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math

import numpy as np

from .autodiff import Tensor, as_tensor, first_index  # first_index: re-exported, see autodiff

_TRUSTED = contextvars.ContextVar("ppo_ref_trusted", default=False)


@contextlib.contextmanager
def trusted():
    """Context manager (or, called, a decorator): checkers inside convert but do not check."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def is_trusted() -> bool:
    return _TRUSTED.get()


def arrays_or_tensors(equation):
    """Decorator for an equation written with Tensors: called with no Tensor among its arguments,
    it returns numpy values instead (a Tensor's array, a numpy scalar for a 0-d one; a tuple
    element by element). So the golden vectors and the conformance kit call it with arrays and
    get numbers back, and the trainer calls it with Tensors and gets a loss to differentiate."""
    @functools.wraps(equation)
    def call(*args, **kwargs):
        out = equation(*args, **kwargs)
        if any(isinstance(x, Tensor) for x in (*args, *kwargs.values())):
            return out
        return tuple(plain(y) for y in out) if isinstance(out, tuple) else plain(out)
    return call


def plain(x):
    """A Tensor's value as numpy (a 0-d one as a numpy scalar); anything else unchanged."""
    return x.data[()] if isinstance(x, Tensor) else x


# ----- the checkers the equations call --------------------------------------------------------

# Domain of each scalar argument, by name: (low, high, low_inclusive, high_inclusive).
SCALARS = {
    "clip_eps": (0.0, np.inf, False, True),      # PPO's epsilon: the band of r (or of V - V_old)
    "vf_clip_eps": (0.0, np.inf, False, True),   # the band of V - V_old in ppo_loss
    "beta": (0.0, np.inf, True, True),           # KL penalty coefficient (0: no penalty)
    "vf_coef": (0.0, np.inf, True, True),        # c_1 of eq. 9
    "ent_coef": (0.0, np.inf, True, True),       # c_2 of eq. 9
    "eps": (0.0, np.inf, False, True),           # added to a std before dividing by it
    "gamma": (0.0, 1.0, True, True),             # discount
    "lam": (0.0, 1.0, True, True),               # GAE's lambda
    "max_kl": (0.0, np.inf, False, True),        # TRPO's delta
    "damping": (0.0, np.inf, True, True),        # added to the Fisher matrix's diagonal
    "backtrack_coef": (0.0, 1.0, False, False),  # a line search's shrink factor
    "step_size": (0.0, np.inf, False, True),     # the natural gradient's step
    "tol": (0.0, np.inf, True, True),            # conjugate gradient's r.r at which to stop
}
# Counts, by name: the least value each may take.
COUNTS = {"iters": 1, "cg_iters": 1, "max_backtracks": 1}
FLAGS = ("terminated", "truncated")              # per-step booleans of a rollout


def check_scalars(**named) -> list:
    """Each scalar as a float (checked against SCALARS) or a count as an int (against COUNTS)."""
    return [_scalar(name, x, _TRUSTED.get()) for name, x in named.items()]


def _scalar(name: str, x, trusted_: bool):
    if name in COUNTS:
        return int(x) if trusted_ else check_count(name, x, COUNTS[name])
    return float(x) if trusted_ else check_scalar(name, x, *SCALARS[name])


def check_batch(**named) -> list:
    """The arguments of a loss over one batch of samples.

    A scalar comes back a float (checked against SCALARS). Every other argument is an array of
    the batch (numpy array, list or Tensor): real, finite, not empty, all of the first one's
    shape. It comes back a Tensor: the caller's own (so gradients reach it) or a constant
    around the array.
    """
    trusted_ = _TRUSTED.get()
    out, first = [], None
    for name, x in named.items():
        if name in SCALARS or name in COUNTS:
            out.append(_scalar(name, x, trusted_))
            continue
        if isinstance(x, Tensor):
            out.append(x)
        else:
            out.append(Tensor(x if trusted_ else values_of(name, x)))
        if not trusted_:
            arr = out[-1].data
            check_finite(name, arr)
            if first is None:
                check_nonempty(name, arr)
                first = (name, arr)
            else:
                check_same_shape(first[0], first[1], name, arr)
    return out


def check_rollout(**named) -> list:
    """The arguments of an estimator over a time-major rollout (gae.py).

    Arrays have shape (T,) for one environment or (T, N) for N environments, with T >= 1, all of
    the first one's shape. terminated and truncated (FLAGS) hold booleans or 0/1 and come back
    bool arrays. The other arrays must be real and finite; each comes back as the caller's own
    Tensor, or as an array in the arrays' common float dtype (float64 for integers).
    bootstrap_values may be None (left out) and comes back None. Scalars as in check_batch.
    """
    trusted_ = _TRUSTED.get()
    out, first, floats = [], None, []
    for name, x in named.items():
        if name in SCALARS or name in COUNTS:
            out.append(_scalar(name, x, trusted_))
            continue
        if x is None and name == "bootstrap_values":
            out.append(None)
            continue
        arr = (x.data if isinstance(x, Tensor) else np.asarray(x)) if trusted_ else values_of(name, x)
        if not trusted_:
            _check_rollout_array(name, arr, first)
        first = first or (name, arr)
        if name in FLAGS:
            out.append(arr if arr.dtype == bool else arr == 1)
            continue
        floats.append(len(out))
        out.append(x if isinstance(x, Tensor) else arr if arr.dtype.kind == "f" else
                   np.asarray(arr, dtype=np.float64))
    dtype = np.result_type(*(plain(out[i]) for i in floats))          # one float dtype for all
    for i in floats:
        if not isinstance(out[i], Tensor):
            out[i] = np.asarray(out[i], dtype=dtype)
    return out


def _check_rollout_array(name: str, arr: np.ndarray, first) -> None:
    if first is None:
        if arr.ndim not in (1, 2) or arr.shape[0] == 0:
            raise ValueError(f"{name} must have shape (T,) or (T, N) with T >= 1, got {arr.shape}")
    else:
        check_same_shape(first[0], first[1], name, arr)
    if name in FLAGS:
        if arr.dtype != bool:
            check_flags(name, arr)
    else:
        check_finite(name, arr)


def check_value_loss(values, returns, old_values, clip_eps) -> list:
    """values and returns (and old_values, read only when clip_eps is given) as in check_batch;
    clip_eps a float, or None for the unclipped loss."""
    if clip_eps is None:
        return [*check_batch(values=values, returns=returns), None, None]
    check_clip_pair("clip_eps", old_values)
    return check_batch(values=values, returns=returns, old_values=old_values, clip_eps=clip_eps)


def check_clip_pair(clip_name: str, old_values) -> None:
    """The clipped value loss needs the values predicted at collection time: clip_eps (named
    clip_name by the caller) without old_values is a ValueError."""
    if old_values is None and not _TRUSTED.get():
        raise ValueError(f"{clip_name} was given but old_values is None; the clipped value loss "
                         f"needs the values predicted at collection time")


def check_ppo_loss(logp_new, entropy, *, objective: str, objectives: tuple, needs_kl: bool, kl,
                   clip_eps, vf_coef, ent_coef, vf_clip_eps, old_values) -> None:
    """What ppo_loss takes that none of its terms checks, or that a term would name otherwise:
    the objective, kl present for the KL objectives, clip_eps (clip_fraction reads it under every
    objective), the two coefficients, vf_clip_eps with old_values, and one entropy per sample
    (entropy has logp_new's shape). The terms check their own arguments."""
    if _TRUSTED.get():
        return
    if objective not in objectives:
        raise ValueError(f"objective must be one of {objectives}, got {objective!r}")
    if needs_kl and kl is None:
        raise ValueError(f'objective "{objective}" needs kl (per-sample KL[pi_old, pi_new])')
    check_batch(clip_eps=clip_eps, vf_coef=vf_coef, ent_coef=ent_coef)
    if vf_clip_eps is not None:
        check_batch(vf_clip_eps=vf_clip_eps)
        check_clip_pair("vf_clip_eps", old_values)
    check_same_shape("logp_new", np.shape(logp_new), "entropy", np.shape(entropy))


# ----- the checkers of optim.py ----------------------------------------------------------------

def check_params(params, owner: str) -> list:
    """params as a list: not empty, every entry a Tensor, none twice."""
    params = list(params)
    if not params:
        raise ValueError(f"{owner}: params is empty")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: params[{i}] must be a Tensor, got {type(p).__name__}")
    if len({id(p) for p in params}) != len(params):
        raise ValueError(f"{owner}: params contains the same Tensor more than once")
    return params


def check_lr(lr) -> float:
    """A learning rate: finite and >= 0 (0 is where a schedule annealed to its end stops)."""
    lr = as_real("Adam: lr", lr)
    if not (lr >= 0 and math.isfinite(lr)):
        raise ValueError(f"Adam: lr must be finite and >= 0, got {lr}")
    return lr


def check_adam(params, lr, betas, eps, owner: str = "Adam") -> tuple:
    """(params, lr, betas, eps) for Adam: lr finite and > 0, betas two numbers in [0, 1), eps
    finite and > 0 (eps = 0 gives 0/0 = nan where a gradient is 0)."""
    params = None if params is None else check_params(params, owner)
    lr, eps = as_real("Adam: lr", lr), as_real("Adam: eps", eps)   # TypeErrors naming them
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"Adam: lr must be finite and > 0, got {lr}")
    if not (isinstance(betas, (tuple, list)) or (isinstance(betas, np.ndarray) and betas.ndim == 1)):
        raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
    betas = tuple(as_real(f"Adam: betas[{i}]", b) for i, b in enumerate(betas))
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas}")
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"Adam: eps must be finite and > 0, got {eps}")
    return params, lr, betas, eps


def check_grads(params) -> list:
    """The parameters' gradients (None where a parameter has none), each of its parameter's shape."""
    grads = [p.grad for p in params]
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is not None and g.shape != p.shape:
            raise ValueError(f"Adam.step: params[{i}] has shape {p.shape} but its grad has "
                             f"shape {g.shape}")
    return grads


def check_finite_grads(grads, owner: str = "Adam.step") -> None:
    """ValueError naming the first gradient element that is nan/inf, or whose square overflows
    (Adam's v would be inf and the step m / sqrt(v) = 0 would freeze the element silently)."""
    for i, g in enumerate(grads):
        if g is None:
            continue
        with np.errstate(over="ignore"):  # an overflow is reported below, as an error
            bad = ~np.isfinite(g * g)     # nan/inf where g is, and where g^2 overflows
        if bad.any():
            j = first_index(bad)
            if np.isfinite(g[j]):
                raise ValueError(f"{owner}: the gradient of params[{i}] is {g[j]} at index {j}; its "
                                 f"square overflows {g.dtype}, so Adam's second moment v would be inf "
                                 f"and the step m / sqrt(v) = 0 would freeze it silently")
            raise ValueError(f"{owner}: the gradient of params[{i}] is {g[j]} at index {j}; a nan/inf "
                             f"step would spread into every later update")


def check_adam_state(state, params) -> tuple:
    """(lr, betas, eps, steps) of an Adam.state_dict() for these params: exactly its keys, step
    counts >= 0, moments of the parameters' shapes holding finite numbers (v >= 0: a negative v
    or a nan moment would put nan into every later step)."""
    n = len(params)
    expected = {"lr", "betas", "eps", "steps"} | {f"{k}.{i}" for k in "mv" for i in range(n)}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(f"Adam.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
    steps = np.asarray(state["steps"])
    if steps.shape != (n,):
        raise ValueError(f"Adam.load_state_dict: steps has shape {steps.shape}, expected ({n},)")
    if steps.dtype.kind not in ("i", "u") or (steps < 0).any():
        raise ValueError(f"Adam.load_state_dict: steps must be counts >= 0, got {steps}")
    for i, p in enumerate(params):
        for k in "mv":
            value = np.asarray(state[f"{k}.{i}"])
            if value.shape != p.shape:
                raise ValueError(f"Adam.load_state_dict: {k}.{i} has shape {value.shape}, "
                                 f"params[{i}] has shape {p.shape}")
            if value.dtype.kind not in ("i", "u", "f") or not np.isfinite(value).all() or \
                    (k == "v" and (value < 0).any()):
                raise ValueError(f"Adam.load_state_dict: {k}.{i} must hold finite numbers"
                                 f"{', all >= 0' if k == 'v' else ''}")
    _, lr, betas, eps = check_adam(None, float(state["lr"]), np.asarray(state["betas"]).tolist(),
                                   float(state["eps"]))
    return lr, betas, eps, [int(t) for t in steps]


def check_clip_grad_norm(params, max_norm) -> tuple:
    """(params as a list, max_norm > 0 as a float; inf means no clipping)."""
    if _TRUSTED.get():
        return list(params), float(max_norm)
    params = check_params(params, "clip_grad_norm")
    max_norm = as_real("clip_grad_norm: max_norm", max_norm)
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be > 0, got {max_norm}")
    return params, max_norm


def check_grad_norm(squares: float, params) -> None:
    """ValueError unless the sum of squared gradients is finite: naming the parameter whose
    gradient holds nan/inf, or else the one with the largest entry (the sum overflowed float64,
    and max_norm / inf would zero every gradient). A guard on a computed value."""
    if math.isfinite(squares):
        return
    grads = [(i, p.grad) for i, p in enumerate(params) if p.grad is not None]
    for i, g in grads:
        if not np.all(np.isfinite(g)):
            raise ValueError(f"clip_grad_norm: the gradient of params[{i}] contains nan or inf")
    i, g = max(grads, key=lambda ig: np.abs(ig[1]).max(initial=0.0))
    raise ValueError(f"clip_grad_norm: the global gradient norm overflows float64 (params[{i}] "
                     f"has a gradient of {np.abs(g).max():g}); max_norm / inf would zero every "
                     f"gradient")


def check_linear_schedule(start, end, progress) -> tuple:
    """(start, end, progress) as floats, progress in [0, 1]."""
    start, end = as_real("linear_schedule: start", start), as_real("linear_schedule: end", end)
    progress = as_real("linear_schedule: progress", progress)
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"linear_schedule: progress must lie in [0, 1], got {progress}")
    return start, end, progress


# ----- the checkers of trpo.py and distributions.py --------------------------------------------

def check_obs(mlp, obs) -> np.ndarray:
    """A batch of states for `mlp`: shape (B, in_features) with B >= 1, finite; returned in the
    network's dtype."""
    obs = np.asarray(obs.data if isinstance(obs, Tensor) else obs)
    in_features = mlp.layers[0].weight.shape[0]
    if obs.ndim != 2 or obs.shape[1] != in_features or obs.shape[0] == 0:
        raise ValueError(f"obs: expected shape (B, {in_features}) with B >= 1, got {obs.shape}")
    check_finite("obs", obs)
    return np.asarray(obs, dtype=mlp.layers[0].weight.dtype)


def check_conjugate_gradient(b, iters, tol) -> tuple:
    """(b as a finite float64 vector (P,), iters a count >= 1, tol >= 0)."""
    b = np.asarray(b, dtype=np.float64)
    if b.ndim != 1:
        raise ValueError(f"b must be a vector (P,), got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"b has a non-finite entry at index {first_index(~np.isfinite(b))}")
    return (b, *check_scalars(iters=iters, tol=tol))


def check_rng(rng, owner: str) -> None:
    """Only an explicit numpy Generator: the np.random module would sample from global state."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{owner}: rng must be a numpy.random.Generator, got {type(rng).__name__}")


def check_finite_tensor(x: Tensor, name: str, owner: str) -> None:
    bad = ~np.isfinite(x.data)
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"{owner}: {name} has a non-finite entry {x.data[i].item()!r} at index {i}")


def check_logits(logits, owner: str = "Categorical", last: str = "A") -> Tensor:
    """Logits (B, A) with A >= 1 (any leading batch shape), finite: a Categorical's over its A
    actions, or a Bernoulli's (owner "Bernoulli", last "D"), one per entry."""
    logits = as_tensor(logits)
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"{owner}: logits must have shape (B, {last}) with {last} >= 1, got "
                         f"{logits.shape}")
    check_finite_tensor(logits, "logits", owner)
    return logits


def check_gaussian(mean, log_std) -> tuple:
    """DiagGaussian's mean (B, D) and log_std, (D,) or (B, D) (it must broadcast to the mean's
    shape without changing it), both finite."""
    mean, log_std = as_tensor(mean), as_tensor(log_std)
    if mean.ndim < 1:
        raise ValueError(f"DiagGaussian: mean must have shape (B, D), got {mean.shape}")
    try:
        np.broadcast_to(log_std.data, mean.shape)   # ValueError unless it broadcasts to exactly that
    except ValueError:
        raise ValueError(f"DiagGaussian: log_std of shape {log_std.shape} does not match "
                         f"mean of shape {mean.shape}; use (D,) or the mean's shape") from None
    check_finite_tensor(mean, "mean", "DiagGaussian")
    check_finite_tensor(log_std, "log_std", "DiagGaussian")
    return mean, log_std


def check_discrete_actions(actions, batch_shape: tuple, num_actions: int) -> np.ndarray:
    """Integer actions of the batch's shape, each in [0, num_actions)."""
    return _check_integer_actions(
        actions, batch_shape, num_actions, "Categorical",
        f"logits {batch_shape + (num_actions,)} need actions of shape {batch_shape}")


def _check_integer_actions(actions, shape: tuple, upper, owner: str, expected: str) -> np.ndarray:
    """Integer actions of `shape`, each a in [0, upper): `upper` a number, or one bound per
    entry of the last axis. `expected` says which shape and why, in the shape error."""
    a = np.asarray(actions.data if isinstance(actions, Tensor) else actions)
    if _TRUSTED.get():
        return a
    if a.dtype.kind not in ("i", "u"):
        raise TypeError(f"{owner}.log_prob: actions must be integers, got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{owner}.log_prob: actions have shape {a.shape}, {expected}")
    upper = np.broadcast_to(upper, shape)
    bad = (a < 0) | (a >= upper)
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"{owner}.log_prob: action {a[i]} at index {i} is outside [0, {upper[i]})")
    return a


def check_continuous_actions(actions, mean: Tensor):
    """Floating-point actions of the mean's shape (B, D), finite; an array is cast to the mean's
    dtype, a Tensor is kept (so gradients reach it)."""
    if isinstance(actions, Tensor):
        a = actions
    else:
        a = np.asarray(actions)
        if a.dtype.kind == "f":
            a = np.asarray(a, dtype=mean.dtype)
    if a.dtype.kind != "f":
        raise TypeError(f"DiagGaussian.log_prob: actions must be floating point, got dtype {a.dtype}")
    if a.shape != mean.shape:
        raise ValueError(f"DiagGaussian.log_prob: actions have shape {a.shape}, "
                         f"the mean has shape {mean.shape}")
    check_finite_tensor(as_tensor(a), "actions", "DiagGaussian.log_prob")
    return a


def check_same_family(p, q, owner: str, attr: str) -> None:
    """KL(p || q) needs q of p's class and with p's shape (of the tensor named attr)."""
    if not isinstance(q, type(p)):
        raise TypeError(f"{owner}: other must be a {type(p).__name__}, got {type(q).__name__}")
    if getattr(q, attr).shape != getattr(p, attr).shape:
        raise ValueError(f"{owner}: {attr} shapes {getattr(p, attr).shape} and "
                         f"{getattr(q, attr).shape} differ")


# ----- building blocks ------------------------------------------------------------------------

def values_of(name: str, x) -> np.ndarray:
    """The numbers behind `x` (a Tensor's .data, or `x` as an array). Rejects non-numeric input."""
    arr = x.data if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype.kind not in ("b", "i", "u", "f"):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def check_finite(name: str, arr: np.ndarray) -> None:
    """ValueError naming `name` and the first index holding NaN or +-inf."""
    if np.isfinite(arr).all():
        return
    i = first_index(~np.isfinite(arr))
    raise ValueError(f"{name} contains a non-finite value {arr[i].item()!r} at index {i}")


def check_flags(name: str, arr: np.ndarray) -> None:
    """ValueError naming `name` and the first index of an entry that is neither 0 nor 1."""
    bad = (arr != 0) & (arr != 1)     # also catches NaN
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"{name} must be boolean or 0/1, got {arr[i].item()!r} at index {i}")


def check_ratio(log_ratio: np.ndarray, ratio: np.ndarray) -> None:
    """ValueError if r = exp(log r) overflowed (log r > ~709 in float64, ~88 in float32): the loss
    would be inf and its gradient nan (0 * inf), so say where instead. A guard on a computed
    value: it stays on under trusted()."""
    if np.isfinite(ratio).all():
        return
    i = first_index(~np.isfinite(ratio))
    raise ValueError(f"logp_new - logp_old is {log_ratio[i].item()!r} at index {i}: the ratio exp() "
                     f"of it overflows {ratio.dtype}, so the loss and its gradient would be inf/nan; "
                     f"logp_old must come from the policy that sampled the actions")


def check_overflow(name: str, computed: np.ndarray, inputs: str) -> None:
    """ValueError if a result computed from finite inputs overflowed to +-inf (or became nan),
    naming the result, its first bad index and the inputs too large for its dtype. A guard on a
    computed value: it stays on under trusted()."""
    if np.isfinite(computed).all():
        return
    i = first_index(~np.isfinite(computed))
    raise ValueError(f"{name} overflows {computed.dtype} at index {i} ({computed[i].item()!r}): "
                     f"{inputs} are too large to be summed in {computed.dtype}")


def check_same_shape(name_a: str, a, name_b: str, b) -> None:
    """ValueError naming both arguments and both shapes unless they are identical (no broadcasting).
    a and b are arrays or shapes."""
    shape_a, shape_b = (x if isinstance(x, tuple) else np.shape(x) for x in (a, b))
    if shape_a != shape_b:
        raise ValueError(f"{name_a} has shape {shape_a} but {name_b} has shape {shape_b}; "
                         f"they must match exactly (nothing is broadcast)")


def check_nonempty(name: str, arr: np.ndarray) -> None:
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); there is nothing to average")


def check_count(name: str, value, low: int, why: str = "") -> int:
    """`value` as an int: a whole number (int or numpy integer, not a bool) >= low, else a
    ValueError naming `name` (iteration counts, sizes); `why` is appended to the message."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}{why}")
    return int(value)


def as_real(name: str, value) -> float:
    """`value` as a float: a Python or numpy real number, or a 0-d array of one (np.array(0.99)).
    TypeError naming `name` for a bool, a string, None, or an array of any other shape."""
    zero_d = isinstance(value, np.ndarray) and value.ndim == 0
    if isinstance(value, (bool, np.bool_)) or not (np.isscalar(value) or zero_d) or \
            np.asarray(value).dtype.kind not in ("i", "u", "f"):
        got = f"an array of shape {value.shape}, dtype {value.dtype}" if isinstance(value, np.ndarray) \
            else repr(value)
        raise TypeError(f"{name} must be a real number, got {got}")
    return float(value)


def check_scalar(name: str, value, low: float, high: float = np.inf,
                 low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """`value` as a float (see as_real), which must be finite and lie in [low, high] (ends open or
    closed as asked)."""
    v = as_real(name, value)
    above = v >= low if low_inclusive else v > low
    below = v <= high if high_inclusive else v < high
    if not (np.isfinite(v) and above and below):
        lo_b = "[" if low_inclusive and np.isfinite(low) else "("
        hi_b = "]" if high_inclusive and np.isfinite(high) else ")"   # infinities are never in
        raise ValueError(f"{name} must lie in {lo_b}{low:g}, {high:g}{hi_b}, got {value!r}")
    return v


# ----- the checkers of MultiCategorical and Bernoulli (distributions.py) -----------------------

def check_multi_categorical(logits, nvec) -> tuple:
    """MultiCategorical's logits (B, sum(nvec)) (any leading batch shape), finite, and nvec, the
    component sizes: a non-empty list of integers >= 1. Returns (logits Tensor, nvec tuple)."""
    sizes = np.asarray(nvec)
    if sizes.ndim != 1 or sizes.size == 0 or sizes.dtype.kind not in ("i", "u") or (sizes < 1).any():
        raise ValueError(f"MultiCategorical: nvec must be a non-empty 1-D list of integers >= 1, "
                         f"got {nvec!r}")
    nvec = tuple(int(n) for n in sizes)
    logits = as_tensor(logits)
    if logits.ndim < 1 or logits.shape[-1] != sum(nvec):
        raise ValueError(f"MultiCategorical: logits must have shape (B, sum(nvec)) = "
                         f"(B, {sum(nvec)}) for nvec {nvec}, got {logits.shape}")
    check_finite_tensor(logits, "logits", "MultiCategorical")
    return logits, nvec


def check_multi_discrete_actions(actions, batch_shape: tuple, nvec: tuple) -> np.ndarray:
    """Integer actions (B, K), one per component, with a_k in [0, nvec[k])."""
    shape = batch_shape + (len(nvec),)
    return _check_integer_actions(
        actions, shape, nvec, "MultiCategorical",
        f"expected {shape} (one action per component of nvec {nvec})")


def check_binary_actions(actions, shape: tuple) -> np.ndarray:
    """Actions of the logits' shape (B, D), each 0 or 1 (integers or bools), as int64."""
    a = np.asarray(actions.data if isinstance(actions, Tensor) else actions)
    if a.dtype.kind not in ("b", "i", "u"):
        raise TypeError(f"Bernoulli.log_prob: actions must be integers 0/1 or bools, got dtype "
                        f"{a.dtype}")
    if a.shape != shape:
        raise ValueError(f"Bernoulli.log_prob: actions have shape {a.shape}, the logits have "
                         f"shape {shape}")
    check_flags("Bernoulli.log_prob: actions", a)
    return np.asarray(a, dtype=np.int64)
