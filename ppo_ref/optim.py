"""Adam, global gradient-norm clipping and a linear schedule, with torch's exact semantics.

PPO implementations that are compared against each other must agree on these
details (Andrychowicz et al. 2021; Huang et al. 2022, "The 37 implementation
details of PPO"), so each follows torch.optim.Adam / torch.nn.utils.clip_grad_norm_
and says where implementations differ.
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import as_real, first_index
from .autodiff import Tensor

__all__ = ["Adam", "clip_grad_norm", "linear_schedule"]


def _check_params(params, owner: str) -> list:
    params = list(params)
    if not params:
        raise ValueError(f"{owner}: params is empty")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: params[{i}] must be a Tensor, got {type(p).__name__}")
    if len({id(p) for p in params}) != len(params):
        raise ValueError(f"{owner}: params contains the same Tensor more than once")
    return params


def _check_hyperparameters(lr, betas, eps) -> tuple:
    lr, eps = as_real("Adam: lr", lr), as_real("Adam: eps", eps)   # TypeErrors naming them
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"Adam: lr must be finite and > 0, got {lr}")
    if not (isinstance(betas, (tuple, list)) or (isinstance(betas, np.ndarray) and betas.ndim == 1)):
        raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
    betas = tuple(as_real(f"Adam: betas[{i}]", b) for i, b in enumerate(betas))
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas}")
    if not (eps > 0 and math.isfinite(eps)):  # eps = 0 gives 0/0 = nan where a gradient is 0
        raise ValueError(f"Adam: eps must be finite and > 0, got {eps}")
    return lr, betas, eps


class Adam:
    """Adam (Kingma & Ba 2015), exactly as torch.optim.Adam (no weight decay, no amsgrad).

    For each parameter theta with gradient g, at its step t = 1, 2, ...:
        m     = beta1 m + (1 - beta1) g          first moment,  m_0 = 0
        v     = beta2 v + (1 - beta2) g^2        second moment, v_0 = 0
        m_hat = m / (1 - beta1^t)                bias corrections
        v_hat = v / (1 - beta2^t)
        theta = theta - lr m_hat / (sqrt(v_hat) + eps)

    Conventions where implementations disagree:
    * eps is added to sqrt(v_hat), outside the root (as torch; TensorFlow's Keras adds
      an eps_hat to sqrt(v) without the bias correction, which changes early steps).
    * A parameter whose .grad is None is skipped: its moments and its own step count t
      stay as they were (as torch, which keeps one step count per parameter).
    * A nan/inf gradient raises ValueError before anything changes (torch would write nan
      into the parameter and its moments, for good). So does a finite gradient whose square
      overflows (|g| > ~1.3e154 in float64, ~1.8e19 in float32): v would become inf and
      the step m_hat / (sqrt(inf) + eps) = 0 would freeze that element for good, silently
      (as torch does). The check is the one over g^2 that the update computes anyway.
    * torch evaluates the same update in another order (lr / (1 - beta1^t) * m /
      (sqrt(v) / sqrt(1 - beta2^t) + eps)); the two differ only by float rounding.
    `lr` may be changed between steps (learning-rate annealing).
    """

    def __init__(self, params, lr: float = 3e-4, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = _check_params(params, "Adam")
        self.lr, self.betas, self.eps = _check_hyperparameters(lr, betas, eps)
        self.steps = [0] * len(self.params)                      # t, per parameter
        # First and second moments, one array per parameter. When all parameters share a dtype
        # these are views into two flat buffers, so that _step_all can update them in one go.
        sizes = [p.data.size for p in self.params]
        self._splits = np.cumsum(sizes)[:-1]                     # where parameter i+1 starts
        self._flat = len({p.dtype for p in self.params}) == 1
        if self._flat:
            self._m_flat = np.zeros(sum(sizes), dtype=self.params[0].dtype)
            self._v_flat = np.zeros_like(self._m_flat)
            self.m = [m.reshape(p.shape) for m, p in zip(np.split(self._m_flat, self._splits),
                                                          self.params)]
            self.v = [v.reshape(p.shape) for v, p in zip(np.split(self._v_flat, self._splits),
                                                          self.params)]
        else:
            self.m = [np.zeros_like(p.data) for p in self.params]
            self.v = [np.zeros_like(p.data) for p in self.params]

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # 0 is allowed here (a schedule annealed to its end); negative or nan is not.
        value = as_real("Adam: lr", value)
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"Adam: lr must be finite and >= 0, got {value}")
        self._lr = value

    def zero_grad(self) -> None:
        """Clear every parameter's gradient (sets .grad = None, as torch's default)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        grads = [p.grad for p in self.params]
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is not None and g.shape != p.shape:
                raise ValueError(f"Adam.step: params[{i}] has shape {p.shape} but its grad has "
                                 f"shape {g.shape}")
        if self._flat and all(g is not None for g in grads) and len(set(self.steps)) == 1:
            self._step_all(grads)
            return
        beta1, beta2 = self.betas
        _check_finite_grads(grads, range(len(grads)))
        for i, p in enumerate(self.params):
            g = grads[i]
            if g is None:
                continue
            self.steps[i] += 1
            t = self.steps[i]
            m, v = self.m[i], self.v[i]
            m *= beta1
            m += (1.0 - beta1) * g
            v *= beta2
            v += (1.0 - beta2) * (g * g)
            m_hat = m / (1.0 - beta1 ** t)
            v_hat = v / (1.0 - beta2 ** t)
            p.data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def _step_all(self, grads) -> None:
        # The loop in step() when every parameter has a gradient and all share one step count
        # t (the usual case), done once over the flat moment buffers: the same numbers with
        # about 10 numpy calls in all instead of 8 per parameter.
        beta1, beta2 = self.betas
        g = np.concatenate([g.ravel() for g in grads])
        g2 = g * g                     # nan/inf where g is, and where g^2 overflows
        if not np.isfinite(g2).all():  # one check over all; then name the culprit
            _check_finite_grads(grads, range(len(grads)))
        self.steps = [self.steps[0] + 1] * len(self.params)
        t = self.steps[0]
        m, v = self._m_flat, self._v_flat
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * g2
        m_hat = m / (1.0 - beta1 ** t)
        v_hat = v / (1.0 - beta2 ** t)
        update = self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        for p, u in zip(self.params, np.split(update, self._splits)):
            p.data -= u.reshape(p.shape)

    def state_dict(self) -> dict:
        """A flat dict of numpy arrays (savable with np.savez): hyperparameters, the per-parameter
        step counts "steps" (P,), and moments "m.i", "v.i" (copies) for parameter i."""
        state = {"lr": np.float64(self.lr), "betas": np.array(self.betas), "eps": np.float64(self.eps),
                 "steps": np.array(self.steps, dtype=np.int64)}
        for i in range(len(self.params)):
            state[f"m.{i}"] = self.m[i].copy()
            state[f"v.{i}"] = self.v[i].copy()
        return state

    def load_state_dict(self, state) -> None:
        """Restore a state_dict() for the same list of parameters, so training resumes exactly."""
        n = len(self.params)
        expected = {"lr", "betas", "eps", "steps"} | {f"{k}.{i}" for k in "mv" for i in range(n)}
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(f"Adam.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        steps = np.asarray(state["steps"])
        if steps.shape != (n,):
            raise ValueError(f"Adam.load_state_dict: steps has shape {steps.shape}, expected ({n},)")
        if steps.dtype.kind not in "iu" or (steps < 0).any():
            raise ValueError(f"Adam.load_state_dict: steps must be counts >= 0, got {steps}")
        for i, p in enumerate(self.params):
            for k in "mv":
                value = np.asarray(state[f"{k}.{i}"])
                if value.shape != p.shape:
                    raise ValueError(f"Adam.load_state_dict: {k}.{i} has shape {value.shape}, "
                                     f"params[{i}] has shape {p.shape}")
                # a nan moment, or a negative v (sqrt of it), would put nan into every later step
                if value.dtype.kind not in "iuf" or not np.isfinite(value).all() or \
                        (k == "v" and (value < 0).any()):
                    raise ValueError(f"Adam.load_state_dict: {k}.{i} must hold finite numbers"
                                     f"{', all >= 0' if k == 'v' else ''}")
        self.lr, self.betas, self.eps = _check_hyperparameters(
            float(state["lr"]), np.asarray(state["betas"]).tolist(), float(state["eps"]))
        self.steps = [int(t) for t in steps]
        for i in range(n):  # copy into the existing arrays (they may be views of flat buffers)
            self.m[i][...] = state[f"m.{i}"]
            self.v[i][...] = state[f"v.{i}"]


def _check_finite_grads(grads, indices, owner: str = "Adam.step") -> None:
    """ValueError naming the first gradient element that is nan/inf, or whose square overflows."""
    for i, g in zip(indices, grads):
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


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most max_norm (torch semantics).

        norm = sqrt(sum over params of sum(g^2))      (parameters with .grad None are skipped)
        if max_norm / (norm + 1e-6) < 1:  g <- g * max_norm / (norm + 1e-6)

    Returns the norm before clipping (the number worth logging). Conventions: the 1e-6 in
    the denominator is torch's, so a norm exactly at max_norm is still scaled by a hair;
    the sum of squares is accumulated in float64; a nan/inf gradient, or a norm that overflows
    float64 (gradients around 1e154), raises ValueError (torch's error_if_nonfinite=True)
    instead of spreading nan into every parameter or scaling every gradient to 0.
    """
    params = _check_params(params, "clip_grad_norm")
    max_norm = as_real("clip_grad_norm: max_norm", max_norm)
    if not max_norm > 0:                                        # inf allowed: no clipping
        raise ValueError(f"clip_grad_norm: max_norm must be > 0, got {max_norm}")
    grads = [(i, p.grad) for i, p in enumerate(params) if p.grad is not None]
    if not grads:
        return 0.0
    # sum of g^2 over all gradients at once (one concatenation instead of a loop over arrays)
    squares = float(np.sum(np.square(np.concatenate([g.ravel() for _, g in grads]),
                                     dtype=np.float64)))
    if not math.isfinite(squares):  # one check in all; then find the culprit to name it
        for i, g in grads:
            if not np.all(np.isfinite(g)):
                raise ValueError(f"clip_grad_norm: the gradient of params[{i}] contains nan or inf")
        i, g = max(grads, key=lambda ig: np.abs(ig[1]).max(initial=0.0))
        raise ValueError(f"clip_grad_norm: the global gradient norm overflows float64 (params[{i}] "
                         f"has a gradient of {np.abs(g).max():g}); max_norm / inf would zero every "
                         f"gradient")
    norm = math.sqrt(squares)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for _, g in grads:
            g *= coef
    return norm


def linear_schedule(start: float, end: float, progress: float) -> float:
    """start + (end - start) * progress, for progress in [0, 1] (e.g. learning-rate annealing,
    progress = fraction of training done)."""
    start, end = as_real("linear_schedule: start", start), as_real("linear_schedule: end", end)
    progress = as_real("linear_schedule: progress", progress)
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"linear_schedule: progress must lie in [0, 1], got {progress}")
    return start + (end - start) * progress
