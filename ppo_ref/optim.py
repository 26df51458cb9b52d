"""Adam, global gradient-norm clipping and a linear schedule, with torch's exact semantics.

PPO implementations that are compared against each other must agree on these
details (Andrychowicz et al. 2021; Huang et al. 2022, "The 37 implementation
details of PPO"), so each follows torch.optim.Adam / torch.nn.utils.clip_grad_norm_
and says where implementations differ.
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import (check_adam, check_adam_state, check_finite_grads, check_grad_norm,
                      check_clip_grad_norm, check_grads, check_linear_schedule, check_lr)

__all__ = ["Adam", "clip_grad_norm", "linear_schedule"]


class Adam:
    """Adam (Kingma & Ba 2015), exactly as torch.optim.Adam (no weight decay, no amsgrad).

    For each parameter theta with gradient g, at its step t = 1, 2, ... (`adam_update`):
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
    * When all parameters share a dtype, Adam() makes each parameter's `.data` a view (holding
      the same numbers) into one flat buffer, which each step updates with one subtraction.
      Parameters keep being updated in place; an array taken from `.data` before Adam() was
      made is no longer theirs, so hold the Tensor, not its array.
    `lr` may be changed between steps (learning-rate annealing).
    """

    def __init__(self, params, lr: float = 3e-4, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = check_adam(params, lr, betas, eps)
        self.steps = [0] * len(self.params)                      # t, per parameter
        # First and second moments, one array per parameter. When all parameters share a dtype
        # these are views into two flat buffers, so that one adam_update covers them all.
        sizes = [p.data.size for p in self.params]
        self._splits = np.cumsum(sizes)[:-1]                     # where parameter i+1 starts
        ends = np.cumsum(sizes).tolist()
        self._slices = [slice(e - n, e) for n, e in zip(sizes, ends)]   # parameter i's piece
        self._flat = len({p.dtype for p in self.params}) == 1
        if self._flat:
            self._m_flat = np.zeros(sum(sizes), dtype=self.params[0].dtype)
            self._v_flat = np.zeros_like(self._m_flat)
            self.m = [m.reshape(p.shape) for m, p in zip(np.split(self._m_flat, self._splits),
                                                          self.params)]
            self.v = [v.reshape(p.shape) for v, p in zip(np.split(self._v_flat, self._splits),
                                                          self.params)]
            # The parameters' values become views into a third flat buffer (in place of their
            # own arrays, which hold the same numbers), so the step is one subtraction.
            self._theta_flat = np.concatenate([p.data.ravel() for p in self.params])
            for p, piece in zip(self.params, self._slices):
                p.data = self._theta_flat[piece].reshape(p.shape)
        else:
            self.m = [np.zeros_like(p.data) for p in self.params]
            self.v = [np.zeros_like(p.data) for p in self.params]

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = check_lr(value)      # 0 is allowed here (a schedule annealed to its end)

    def zero_grad(self) -> None:
        """Clear every parameter's gradient (sets .grad = None, as torch's default)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One Adam update (`adam_update`) of every parameter that has a gradient."""
        grads = check_grads(self.params)
        if self._flat and all(g is not None for g in grads) and len(set(self.steps)) == 1:
            # The usual case, every parameter at one step count t: one update over the flat
            # moment buffers, about 10 numpy calls in all instead of 8 per parameter.
            g = np.concatenate([g.ravel() for g in grads])
            g2 = g * g                     # nan/inf where g is, and where g^2 overflows
            if not np.isfinite(g2).all():  # one test over all; then name the culprit
                check_finite_grads(grads)
            self.steps = [self.steps[0] + 1] * len(self.params)
            update = adam_update(self._m_flat, self._v_flat, g, g2, self.steps[0], self.lr,
                                 self.betas, self.eps)
            if all(p.data.base is self._theta_flat for p in self.params):
                self._theta_flat -= update
            else:   # a parameter's array was replaced since (e.g. by another optimiser's views)
                for p, piece in zip(self.params, self._slices):
                    p.data -= update[piece].reshape(p.shape)
            return
        check_finite_grads(grads)
        for i, (p, g) in enumerate(zip(self.params, grads)):   # one parameter at a time
            if g is not None:
                self.steps[i] += 1
                p.data -= adam_update(self.m[i], self.v[i], g, g * g, self.steps[i], self.lr,
                                      self.betas, self.eps)

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
        self.lr, self.betas, self.eps, self.steps = check_adam_state(state, self.params)
        for i in range(len(self.params)):  # copy into the existing arrays (maybe views of the flat buffers)
            self.m[i][...] = state[f"m.{i}"]
            self.v[i][...] = state[f"v.{i}"]


def adam_update(m, v, g, g2, t: int, lr: float, betas, eps: float) -> np.ndarray:
    """Kingma & Ba 2015, Algorithm 1, at step t: updates the moments m, v in place and returns
    the step to subtract from theta (g2 = g * g, which the caller has already tested for overflow):

        m = beta1 m + (1 - beta1) g,        v = beta2 v + (1 - beta2) g^2
        step = lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    """
    beta1, beta2 = betas
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * g2
    m_hat = m / (1.0 - beta1 ** t)
    v_hat = v / (1.0 - beta2 ** t)
    return lr * m_hat / (np.sqrt(v_hat) + eps)


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most max_norm (torch semantics).

    Returns the norm before clipping (the number worth logging). Conventions: the 1e-6 in
    the denominator is torch's, so a norm exactly at max_norm is still scaled by a hair;
    the sum of squares is accumulated in float64; a nan/inf gradient, or a norm that overflows
    float64 (gradients around 1e154), raises ValueError (torch's error_if_nonfinite=True)
    instead of spreading nan into every parameter or scaling every gradient to 0.

        norm = sqrt(sum over params of sum(g^2))      (parameters with .grad None are skipped)
        if max_norm / (norm + 1e-6) < 1:  g <- g * max_norm / (norm + 1e-6)
    """
    params, max_norm = check_clip_grad_norm(params, max_norm)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    # sum of g^2 over all gradients at once (one concatenation instead of a loop over arrays)
    squares = float(np.sum(np.square(np.concatenate([g.ravel() for g in grads]), dtype=np.float64)))
    check_grad_norm(squares, params)       # nan/inf, or an overflow: name the parameter
    norm = math.sqrt(squares)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return norm


def linear_schedule(start: float, end: float, progress: float) -> float:
    """start + (end - start) * progress, for progress in [0, 1] (e.g. learning-rate annealing,
    progress = fraction of training done)."""
    start, end, progress = check_linear_schedule(start, end, progress)
    return start + (end - start) * progress
