"""Finite-difference gradient checking: the proof behind every gradient in ppo_ref.

For a function f of tensors x_1..x_k returning a tensor y, we compare the
autodiff gradient of the scalar L = sum(y * v) (v a fixed random projection;
v = 1 when y is a scalar) with central differences, element by element:

    dL/dx_i  ~=  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)        error O(eps^2)

An element passes when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|);
a nan or inf on either side fails. Everything is evaluated in float64 whatever dtype the
inputs had.

Point it at your own code:

    >>> from ppo_ref.gradcheck import gradcheck
    >>> report = gradcheck(lambda x, w: (x @ w).tanh().sum(), [x, w])
    >>> assert report.passed, report
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_finite
from .autodiff import Tensor, no_grad

__all__ = ["gradcheck", "numerical_gradient", "GradcheckReport"]


@dataclass
class GradcheckReport:
    """Outcome of a gradient check.

    max_abs_error / max_rel_error: the worst |analytic - numeric| and the worst
    |analytic - numeric| / max(|analytic|, |numeric|) over all elements (the
    relative error skips elements whose gradient is itself within atol of zero).
    max_abs_at / max_rel_at: where each occurred, as (input number, index inside it).
    worst_input / worst_index: where the element closest to failing (or
    failing worst) sits, judged by |analytic - numeric| - (atol + rtol * scale);
    analytic / numeric are the two gradients there.
    """
    passed: bool
    max_abs_error: float
    max_rel_error: float
    worst_input: int
    worst_index: tuple
    analytic: float
    numeric: float
    rtol: float
    atol: float
    max_abs_at: tuple = (0, ())
    max_rel_at: tuple = (0, ())

    def __str__(self):
        verdict = "passed" if self.passed else "FAILED"
        return (f"gradcheck {verdict}: max abs error {self.max_abs_error:.3e} (input "
                f"{self.max_abs_at[0]} index {self.max_abs_at[1]}), max rel error "
                f"{self.max_rel_error:.3e} (input {self.max_rel_at[0]} index {self.max_rel_at[1]}); "
                f"rtol {self.rtol:g}, atol {self.atol:g}; closest to failing: input "
                f"{self.worst_input} index {self.worst_index}, analytic {self.analytic:.10g} vs "
                f"numeric {self.numeric:.10g}")


def _as_float64(inputs):
    arrays = []
    for i, x in enumerate(inputs):
        a = np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64)  # a copy
        check_finite(f"gradcheck: input {i}", a)       # names the first nan/inf's index
        arrays.append(a)
    return arrays


def _scalarize(y: Tensor, v):
    return y if v is None else (y * v).sum()


def numerical_gradient(fn, inputs, eps: float = 1e-6, projection=None):
    """Central-difference gradient of sum(fn(*inputs) * projection) for each input (float64)."""
    arrays = _as_float64(inputs)
    grads = []
    with no_grad():
        for k, a in enumerate(arrays):
            g = np.zeros_like(a)
            for idx in np.ndindex(a.shape):
                orig = a[idx]
                a[idx] = orig + eps
                f_plus = _scalarize(fn(*[Tensor(x) for x in arrays]), projection).item()
                a[idx] = orig - eps
                f_minus = _scalarize(fn(*[Tensor(x) for x in arrays]), projection).item()
                a[idx] = orig
                g[idx] = (f_plus - f_minus) / (2 * eps)
            grads.append(g)
    return grads


def gradcheck(fn, inputs, eps: float = 1e-6, rtol: float = 1e-6, atol: float = 1e-8,
              seed: int = 0) -> GradcheckReport:
    """Compare autodiff and central-difference gradients of `fn` at `inputs`.

    fn: callable taking one Tensor per input and returning a Tensor (any shape).
    inputs: arrays (or Tensors); each is differentiated. Non-scalar outputs are
    reduced with a fixed random projection drawn from default_rng(seed).
    """
    if not (eps > 0 and np.isfinite(eps)):
        raise ValueError(f"gradcheck: eps must be finite and > 0, got {eps}")
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"gradcheck: rtol and atol must be >= 0, got rtol {rtol}, atol {atol}")
    arrays = _as_float64(inputs)
    params = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    y = fn(*params)
    if not isinstance(y, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(y).__name__}")
    projection = None
    if y.size != 1:
        projection = np.random.default_rng(seed).standard_normal(y.shape)
    loss = _scalarize(y, projection)
    if not loss.requires_grad:
        raise ValueError("gradcheck: fn's output does not depend on its inputs through Tensors")
    loss.backward()
    analytic = [p.grad if p.grad is not None else np.zeros_like(p.data) for p in params]
    for k, (ga, p) in enumerate(zip(analytic, params)):
        if ga.shape != p.shape:  # a VJP that forgot to un-broadcast; comparing would broadcast too
            raise ValueError(f"gradcheck: the autodiff gradient of input {k} has shape {ga.shape}, "
                             f"the input has shape {p.shape}")
    numeric = numerical_gradient(fn, arrays, eps, projection)

    worst = (-np.inf, 0, (), 0.0, 0.0)  # (margin, input, index, analytic, numeric)
    max_abs = max_rel = -1.0            # below any error, so the first input sets them
    max_abs_at = max_rel_at = (0, ())
    for k, (ga, gn) in enumerate(zip(analytic, numeric)):
        if ga.size == 0:
            continue
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(ga - gn)       # a nan/inf on either side fails outright
            err = np.where(bad, np.inf, np.abs(ga - gn))
            scale = np.where(bad, 0.0, np.maximum(np.abs(ga), np.abs(gn)))
        margin = err - (atol + rtol * scale)  # > 0 means this element fails
        rel = np.where(bad, np.inf, np.where(scale > atol, err / np.where(scale > 0, scale, 1.0), 0.0))
        i_abs, i_rel, i = (np.unravel_index(np.argmax(a), a.shape) for a in (err, rel, margin))
        if err[i_abs] > max_abs:
            max_abs, max_abs_at = float(err[i_abs]), (k, tuple(int(j) for j in i_abs))
        if rel[i_rel] > max_rel:
            max_rel, max_rel_at = float(rel[i_rel]), (k, tuple(int(j) for j in i_rel))
        if margin[i] > worst[0]:
            worst = (float(margin[i]), k, tuple(int(j) for j in i), float(ga[i]), float(gn[i]))
    return GradcheckReport(passed=bool(worst[0] <= 0), max_abs_error=max(max_abs, 0.0),
                           max_rel_error=max(max_rel, 0.0),
                           worst_input=worst[1], worst_index=worst[2], analytic=worst[3],
                           numeric=worst[4], rtol=rtol, atol=atol, max_abs_at=max_abs_at,
                           max_rel_at=max_rel_at)
