"""Reverse-mode automatic differentiation over numpy arrays.

A `Tensor` wraps a numpy array. Every primitive below computes its output and
defines, right beside it, its vector-Jacobian product (VJP): given the upstream
gradient g = dL/d(out), it returns dL/d(input) for each input. `Tensor.backward`
sorts the graph topologically and walks it once in reverse, summing the VJPs
(the chain rule). The design follows Karpathy's micrograd, with arrays instead
of scalars.

Conventions (where implementations disagree, we follow PyTorch, so results can
be compared with it line by line):

* dtype: Python numbers, ints and bools become float64; floating arrays keep
  their dtype (so float32 training is possible). Python scalars in arithmetic do
  not change a tensor's dtype (NumPy 2 / NEP 50 rules).
* Floating arrays are wrapped without copying (like ``torch.from_numpy``).
* Broadcasting follows NumPy; a gradient is summed back to its operand's shape.
* Gradients accumulate into ``.grad`` of leaf tensors across ``backward`` calls
  until cleared (``t.grad = None`` or ``Adam.zero_grad()``). Non-leaf tensors
  do not keep a ``.grad``.
* Subgradients at kinks and ties:
    relu(x) at x = 0          -> 0            (as torch)
    maximum/minimum at a == b -> g/2 to each   (as torch)
    clip(x, lo, hi) at x == lo or x == hi -> g (the bounds count as inside, as
                                                torch.clamp)
"""
from __future__ import annotations

import contextvars
import math

import numpy as np

__all__ = [
    "Tensor", "no_grad", "is_grad_enabled", "as_tensor",
    "maximum", "minimum", "clip", "where", "logsumexp", "log_softmax",
    "take_along_axis", "pick", "concatenate", "stack", "linear",
]

# The one piece of global state an autodiff needs: whether to record the graph.
# A ContextVar keeps it correct across threads.
_GRAD_ENABLED = contextvars.ContextVar("ppo_ref_grad_enabled", default=True)


class no_grad:
    """Context manager: operations inside record no graph (cheaper, like torch.no_grad).
    A class rather than a generator-based context manager: entering and leaving costs a
    third as much, and every rollout step enters it."""

    __slots__ = ("_token",)

    def __enter__(self):
        self._token = _GRAD_ENABLED.set(False)

    def __exit__(self, *exc):
        _GRAD_ENABLED.reset(self._token)


def is_grad_enabled() -> bool:
    return _GRAD_ENABLED.get()


def first_index(mask: np.ndarray) -> tuple:
    """Index of the first True in `mask` (C order), as a tuple of ints: where an error message
    points. (Here, in the lowest module, because autodiff's own messages need it; _checks
    re-exports it for everyone else.)"""
    flat = int(np.argmax(mask))  # without an axis, argmax reads mask flattened in C order
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def _to_array(data) -> np.ndarray:
    if isinstance(data, Tensor):
        return data.data
    arr = np.asarray(data)
    if arr.dtype.kind != "f":
        if arr.dtype.kind not in ("b", "i", "u"):  # bool, signed or unsigned integer
            raise TypeError(f"Tensor data must be numeric, got dtype {arr.dtype}")
        arr = np.asarray(arr, dtype=np.float64)
    return arr


def _data(x):
    """The raw value of an operand: a Tensor's array, or the constant itself."""
    return x.data if isinstance(x, Tensor) else x


def _wants_grad(x) -> bool:
    """Whether a VJP must compute a gradient for operand x: only a Tensor that requires one
    (the gradient of a constant, such as a Python scalar, would be thrown away)."""
    return isinstance(x, Tensor) and x.requires_grad


def _unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` back down to `shape`: the VJP of NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)  # the leading axes broadcasting added
    if lead:
        grad = grad.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def _normalize_axes(axis, ndim: int, op: str) -> tuple:
    """axis (int or tuple) -> tuple of non-negative axes; out-of-range axes raise."""
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if not all(isinstance(a, (int, np.integer)) for a in axes):  # 0.5 would truncate to 0
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(a % ndim for a in axes)


def _check_reduced_axis_nonempty(v: np.ndarray, axis, op: str) -> None:
    """ValueError naming `op` and the shape when an axis to reduce over has length 0."""
    axes = range(v.ndim) if axis is None else _normalize_axes(axis, v.ndim, op)
    if any(v.shape[a] == 0 for a in axes):
        raise ValueError(f"{op}: axis {axis} of a tensor of shape {v.shape} is empty (there is "
                         f"nothing to sum over)")


def _join(join, tensors, axis, op: str) -> np.ndarray:
    """np.concatenate or np.stack, with an error that names `op` and every shape."""
    datas = [_data(t) for t in tensors]
    try:
        return join(datas, axis=axis)
    except ValueError as e:  # numpy's message names neither the function nor the shapes
        raise ValueError(f"{op}: cannot join shapes {[np.shape(d) for d in datas]} along axis "
                         f"{axis} ({e})") from None


def _shape(x) -> tuple:
    """np.shape(x), with a Python number's () known at once: np.shape would first convert it
    to an array, which costs more than the arithmetic of a small tensor."""
    return () if isinstance(x, (int, float)) else np.shape(x)  # pragma: no mutate (np.shape agrees)


def _check_broadcast(a, b, op: str) -> None:
    sa, sb = _shape(a), _shape(b)
    if sa == sb or not sa or not sb:  # equal shapes, or a scalar: nothing to check
        return
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        raise ValueError(f"{op}: operands of shapes {sa} and {sb} do not broadcast") from None


class Tensor:
    """An array that remembers how it was computed, so gradients can flow back.

    Tensor(data, requires_grad=False). Attributes: ``data`` (numpy array),
    ``grad`` (numpy array of the same shape, or None), ``requires_grad``.
    """

    __array_ufunc__ = None  # make `ndarray * Tensor` call Tensor.__rmul__, not numpy
    __slots__ = ("data", "grad", "requires_grad", "_parents", "_vjp", "_op")

    def __init__(self, data, requires_grad: bool = False):
        self.data = _to_array(data)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = ()   # the operands this tensor was computed from
        self._vjp = None     # g -> tuple of gradients, one per parent
        self._op = ""

    # ----- bookkeeping -------------------------------------------------------
    @staticmethod
    def _make(data, parents, vjp, op):
        """Wrap an op's output; record the graph only if some input needs a gradient."""
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        needs = False
        if _GRAD_ENABLED.get():
            for p in parents:
                if isinstance(p, Tensor) and p.requires_grad:
                    needs = True
                    break
        out.requires_grad = needs
        out._parents = parents if needs else ()
        out._vjp = vjp if needs else None
        out._op = op
        return out

    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        # the operation that made a node of the graph (as torch's grad_fn): how it was computed
        op = f", op={self._op!r}" if self._parents else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}{grad}{op})"

    def item(self) -> float:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def detach(self) -> "Tensor":
        """The same values, cut from the graph."""
        return Tensor(self.data)

    # Comparisons are not differentiable: they return plain boolean arrays.
    def __lt__(self, other): return self.data < _data(other)
    def __le__(self, other): return self.data <= _data(other)
    def __gt__(self, other): return self.data > _data(other)
    def __ge__(self, other): return self.data >= _data(other)

    # ----- the graph walk ----------------------------------------------------
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        Without `grad`, self must hold a single element (a loss); otherwise
        `grad` is the upstream gradient, of self's shape.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not depend on any tensor "
                               "with requires_grad=True (or was computed under no_grad)")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() without an upstream gradient needs a scalar, "
                                 f"got shape {self.shape}; pass grad= of that shape")
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad, dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad): grad has shape {grad.shape}, "
                                 f"the tensor has shape {self.shape}")

        # Topological order by iterative depth-first search (no recursion limit).
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for p in node._parents:
                if isinstance(p, Tensor) and p.requires_grad:  # one already seen is skipped above
                    stack.append((p, False))

        grads = {id(self): grad}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._vjp is None:  # a leaf: accumulate, as torch does
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            for p, pg in zip(node._parents, node._vjp(g)):
                if pg is None or not isinstance(p, Tensor) or not p.requires_grad:
                    continue
                key = id(p)
                grads[key] = pg if key not in grads else grads[key] + pg

    # ----- arithmetic ----------------------------------------------------------
    def __add__(self, other):
        a, b = self.data, _data(other)
        _check_broadcast(a, b, "add")
        out = a + b

        def vjp(g):  # d(a+b) = da + db
            return (_unbroadcast(g, np.shape(a)) if self.requires_grad else None,
                    _unbroadcast(g, np.shape(b)) if _wants_grad(other) else None)
        return Tensor._make(out, (self, other), vjp, "add")

    __radd__ = __add__

    def __sub__(self, other):
        a, b = self.data, _data(other)
        _check_broadcast(a, b, "sub")
        out = a - b

        def vjp(g):  # d(a-b) = da - db
            return (_unbroadcast(g, np.shape(a)) if self.requires_grad else None,
                    _unbroadcast(-g, np.shape(b)) if _wants_grad(other) else None)
        return Tensor._make(out, (self, other), vjp, "sub")

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        a, b = self.data, _data(other)
        _check_broadcast(a, b, "mul")
        out = a * b

        def vjp(g):  # d(a*b) = b da + a db
            return (_unbroadcast(g * b, np.shape(a)) if self.requires_grad else None,
                    _unbroadcast(g * a, np.shape(b)) if _wants_grad(other) else None)
        return Tensor._make(out, (self, other), vjp, "mul")

    __rmul__ = __mul__

    def __truediv__(self, other):
        a, b = self.data, _data(other)
        _check_broadcast(a, b, "div")
        out = a / b

        def vjp(g):  # d(a/b) = da/b - a/b^2 db
            return (_unbroadcast(g / b, np.shape(a)) if self.requires_grad else None,
                    _unbroadcast(-g * out / b, np.shape(b)) if _wants_grad(other) else None)
        return Tensor._make(out, (self, other), vjp, "div")

    def __rtruediv__(self, other):
        return Tensor(np.asarray(other, dtype=self.dtype)) / self

    def __neg__(self):
        def vjp(g):
            return (-g,)
        return Tensor._make(-self.data, (self,), vjp, "neg")

    def __pow__(self, exponent):
        a, p = self.data, _data(exponent)
        _check_broadcast(a, p, "pow")
        fractional = np.asarray(p) % 1 != 0
        if fractional.any() and (a < 0).any():  # pragma: no mutate (a shortcut: `bad` decides)
            bad = (a < 0) & fractional  # (-8) ** 0.5 would be a silent nan
            if bad.any():
                i = first_index(bad)
                raise ValueError(f"pow: negative base {np.broadcast_to(a, bad.shape)[i].item()!r} "
                                 f"with a non-integer exponent at index {i}")
        out = a ** p

        def vjp(g):
            # d(a^p)/da = p a^(p-1);  d(a^p)/dp = a^p log a  (taken as 0 where a <= 0)
            ga = _unbroadcast(g * p * a ** (p - 1), np.shape(a)) if self.requires_grad else None
            gp = None  # pragma: no mutate (backward never reads it: the exponent needs no gradient)
            if isinstance(exponent, Tensor) and exponent.requires_grad:
                safe_log = np.log(np.where(a > 0, a, 1.0))
                gp = _unbroadcast(g * out * safe_log, np.shape(p))
            return ga, gp
        return Tensor._make(out, (self, exponent), vjp, "pow")

    def __rpow__(self, base):  # base ** self, for a constant base
        return Tensor(np.asarray(base, dtype=self.dtype)) ** self

    def __matmul__(self, other):
        a, b = self.data, _data(other)
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            raise ValueError(f"matmul: operands must have at least one dimension, "
                             f"got shapes {np.shape(a)} and {np.shape(b)}")
        if np.shape(a)[-1] != np.shape(b)[0 if np.ndim(b) == 1 else -2]:
            raise ValueError(f"matmul: shapes {np.shape(a)} and {np.shape(b)} are not aligned "
                             f"(inner dimensions differ)")
        try:
            out = a @ b
        except ValueError:  # batch dimensions that do not broadcast
            raise ValueError(f"matmul: batch dimensions of shapes {np.shape(a)} and {np.shape(b)} "
                             f"do not broadcast") from None

        def vjp(g):
            # out = A B  =>  dA = g B^T,  dB = A^T g. 1-D operands are promoted
            # to matrices first (as np.matmul does) and demoted afterwards.
            A = a[None, :] if a.ndim == 1 else a
            B = b[:, None] if b.ndim == 1 else b
            G = g
            if b.ndim == 1:  # restore b's column axis first, so 1-D @ 1-D (g of shape ()) works
                G = np.expand_dims(G, -1)
            if a.ndim == 1:
                G = np.expand_dims(G, -2)
            gA = _unbroadcast(G @ np.swapaxes(B, -1, -2), A.shape)
            gB = _unbroadcast(np.swapaxes(A, -1, -2) @ G, B.shape)
            return gA.reshape(a.shape), gB.reshape(b.shape)
        return Tensor._make(out, (self, other), vjp, "matmul")

    def __rmatmul__(self, other):
        return Tensor(other) @ self

    # ----- elementwise functions ----------------------------------------------
    def exp(self):
        out = np.exp(self.data)

        def vjp(g):  # d exp(x) = exp(x) dx
            return (g * out,)
        return Tensor._make(out, (self,), vjp, "exp")

    def log(self):
        x = self.data
        if (x < 0).any():
            i = first_index(x < 0)
            raise ValueError(f"log: input has a negative entry {x[i].item()!r} at index {i}")
        with np.errstate(divide="ignore"):
            out = np.log(x)

        def vjp(g):  # d log(x) = dx / x
            return (g / x,)
        return Tensor._make(out, (self,), vjp, "log")

    def sqrt(self):
        x = self.data
        if (x < 0).any():
            i = first_index(x < 0)
            raise ValueError(f"sqrt: input has a negative entry {x[i].item()!r} at index {i}")
        out = np.sqrt(x)

        def vjp(g):  # d sqrt(x) = dx / (2 sqrt(x))
            return (g * 0.5 / out,)
        return Tensor._make(out, (self,), vjp, "sqrt")

    def tanh(self):
        out = np.tanh(self.data)

        def vjp(g):  # d tanh(x) = (1 - tanh(x)^2) dx
            return (g * (1.0 - out * out),)
        return Tensor._make(out, (self,), vjp, "tanh")

    def relu(self):
        mask = self.data > 0  # subgradient 0 at x == 0 (and at nan), as torch
        out = np.where(self.data <= 0, 0, self.data)   # written so that relu(nan) = nan, as torch

        def vjp(g):
            return (g * mask,)
        return Tensor._make(out, (self,), vjp, "relu")

    # ----- reductions and shape ------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False):
        shape = self.shape
        if axis is not None:  # normalise to a tuple of non-negative axes
            axis = _normalize_axes(axis, self.ndim, "sum")
        out = self.data.sum(axis=axis, keepdims=keepdims)

        def vjp(g):  # every summed element receives the upstream gradient
            if axis is not None and not keepdims:  # put the summed axes back (a scalar g broadcasts)
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, shape),)
        return Tensor._make(out, (self,), vjp, "sum")

    def mean(self, axis=None, keepdims: bool = False):
        count = self.data.size if axis is None else int(np.prod(
            [self.shape[i] for i in _normalize_axes(axis, self.ndim, "mean")]))
        if count == 0:
            raise ValueError(f"mean: nothing to average over (shape {self.shape}, axis {axis})")
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        old = self.shape
        out = self.data.reshape(shape)

        def vjp(g):
            return (g.reshape(old),)
        return Tensor._make(out, (self,), vjp, "reshape")

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):  # t.transpose((1, 0)) too
            axes = tuple(axes[0])
        axes = axes if axes else None
        out = np.transpose(self.data, axes)

        def vjp(g):  # undo the permutation (axes taken mod ndim: -1 is the last)
            return (np.transpose(g, None if axes is None
                                 else np.argsort([a % self.ndim for a in axes])),)
        return Tensor._make(out, (self,), vjp, "transpose")

    @property
    def T(self):
        return self.transpose()

    def __getitem__(self, index):
        x = self.data
        out = x[index]

        def vjp(g):
            full = np.zeros_like(x)
            # np.add.at accumulates repeated indices (x[[0, 0]]); plain assignment would not.
            np.add.at(full, index, g)
            return (full,)
        return Tensor._make(out, (self,), vjp, "getitem")

    # method forms of the module functions, for convenience
    def clip(self, lo, hi):
        return clip(self, lo, hi)

    def log_softmax(self, axis=-1):
        return log_softmax(self, axis)

    def logsumexp(self, axis=-1, keepdims=False):
        return logsumexp(self, axis, keepdims)


def as_tensor(x) -> Tensor:
    """x if it is already a Tensor, else a constant Tensor (requires_grad=False)."""
    return x if isinstance(x, Tensor) else Tensor(x)


# ----- module functions ---------------------------------------------------------

def maximum(a, b) -> Tensor:
    """Elementwise max. At ties the gradient is split equally (torch convention)."""
    x, y = _data(a), _data(b)
    _check_broadcast(x, y, "maximum")
    out = np.maximum(x, y)

    def vjp(g):
        ga = g * (x > y) + 0.5 * g * (x == y)  # written so float32 gradients stay float32
        return _unbroadcast(ga, np.shape(x)), _unbroadcast(g - ga, np.shape(y))
    return Tensor._make(out, (a, b), vjp, "maximum")


def minimum(a, b) -> Tensor:
    """Elementwise min. At ties the gradient is split equally (torch convention)."""
    x, y = _data(a), _data(b)
    _check_broadcast(x, y, "minimum")
    out = np.minimum(x, y)

    def vjp(g):
        ga = g * (x < y) + 0.5 * g * (x == y)
        return _unbroadcast(ga, np.shape(x)), _unbroadcast(g - ga, np.shape(y))
    return Tensor._make(out, (a, b), vjp, "minimum")


def clip(x, lo, hi) -> Tensor:
    """clip(x, lo, hi) with constant bounds. d/dx = 1 on lo <= x <= hi (bounds included,
    as torch.clamp), 0 outside."""
    x = as_tensor(x)
    if np.any(np.asarray(lo) > np.asarray(hi)):
        raise ValueError(f"clip: lower bound {lo} exceeds upper bound {hi}")
    v = x.data
    out = np.clip(v, lo, hi)

    def vjp(g):  # array bounds may broadcast x up: sum back to x's shape
        return (_unbroadcast(g * ((v >= lo) & (v <= hi)), v.shape),)
    return Tensor._make(out, (x,), vjp, "clip")


def where(condition, a, b) -> Tensor:
    """a where condition else b; the gradient flows only to the branch that was chosen."""
    cond = np.asarray(_data(condition))  # bools, or numbers: nonzero counts as True (as np.where)
    x, y = _data(a), _data(b)
    try:
        np.broadcast_shapes(cond.shape, np.shape(x), np.shape(y))
    except ValueError:
        raise ValueError(f"where: condition {cond.shape}, a {np.shape(x)} and b {np.shape(y)} "
                         f"do not broadcast") from None
    out = np.where(cond, x, y)

    def vjp(g):
        return None, _unbroadcast(np.where(cond, g, 0.0), np.shape(x)), \
            _unbroadcast(np.where(cond, 0.0, g), np.shape(y))
    return Tensor._make(out, (condition, a, b), vjp, "where")


def _log_sum(s: np.ndarray) -> np.ndarray:
    """np.log of a sum of exp(x - max x): at least 1, or 0 for a row of -inf only, whose log is
    the -inf wanted (without numpy's divide-by-zero warning). np.errstate costs more than the
    log of a small array, so it is entered only when some sum is 0."""
    if s.all():
        return np.log(s)
    with np.errstate(divide="ignore"):
        return np.log(s)


def logsumexp(x, axis=-1, keepdims: bool = False) -> Tensor:
    """log sum_i exp(x_i), computed stably as m + log sum exp(x - m) with m = max x.
    d/dx_i = softmax(x)_i."""
    x = as_tensor(x)
    v = x.data
    if v.size == 0:  # only then can the reduced axis be empty
        _check_reduced_axis_nonempty(v, axis, "logsumexp")
    m = v.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # all -inf rows: avoid inf - inf
    e = np.exp(v - m)
    s = e.sum(axis=axis, keepdims=True)
    out_k = m + _log_sum(s)
    out = out_k if keepdims else np.squeeze(out_k, axis=axis)

    def vjp(g):
        gk = np.reshape(g, out_k.shape)  # restore the reduced axes (works for axis=None too)
        return (gk * (e / s),)
    return Tensor._make(out, (x,), vjp, "logsumexp")


def log_softmax(x, axis=-1) -> Tensor:
    """log softmax(x) = x - logsumexp(x). VJP: g - softmax(x) * sum(g)."""
    x = as_tensor(x)
    v = x.data
    if v.size == 0:
        _check_reduced_axis_nonempty(v, axis, "log_softmax")
    m = v.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    shifted = v - m
    out = shifted - _log_sum(np.exp(shifted).sum(axis=axis, keepdims=True))

    def vjp(g):
        return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)
    return Tensor._make(out, (x,), vjp, "log_softmax")


def take_along_axis(x, indices, axis: int) -> Tensor:
    """np.take_along_axis, differentiable in x (e.g. pick log pi(a|s) from (B, A) log-probs)."""
    x = as_tensor(x)
    idx = np.asarray(_data(indices))
    if idx.dtype.kind not in ("i", "u"):  # signed or unsigned integer
        raise TypeError(f"take_along_axis: indices must be integers, got dtype {idx.dtype}")
    if idx.ndim != x.ndim:
        raise ValueError(f"take_along_axis: indices shape {idx.shape} and x shape {x.shape} "
                         f"must have the same number of dimensions")
    v = x.data
    n = v.shape[axis]
    if idx.size and (idx.min() < 0 or idx.max() >= n):  # no negative wrap-around (as torch.gather)
        i = first_index((idx < 0) | (idx >= n))
        raise ValueError(f"take_along_axis: index {idx[i].item()} at position {i} is outside "
                         f"[0, {n}) for x of shape {x.shape} along axis {axis}")
    out = np.take_along_axis(v, idx, axis=axis)

    def vjp(g):
        full = np.zeros_like(v)
        idx_b = np.broadcast_to(idx, out.shape)  # indices may broadcast against x
        # a row of x picked from more than once (x's size-1 axes broadcast against the indices)
        x_broadcast = any(n == 1 and m != 1 for n, m in zip(v.shape, out.shape))
        if idx.shape[axis] == 1 and not x_broadcast:  # one pick per row: assignment suffices
            np.put_along_axis(full, idx_b, g, axis=axis)
        else:  # repeated picks (or rows of x reused by broadcasting) must accumulate
            grid = list(np.ix_(*[np.arange(m) for m in out.shape]))  # sparse grids, one per axis
            grid = [np.zeros_like(i) if n == 1 else i for i, n in zip(grid, v.shape)]  # row 0
            grid[axis] = idx_b
            np.add.at(full, tuple(grid), g)
        return (full,)
    return Tensor._make(out, (x,), vjp, "take_along_axis")


def pick(x, index) -> Tensor:
    """One entry of each row: x (..., A) and integer index (...,) in [0, A) -> out (...,) with
    out_b = x[b, index_b] (e.g. log pi(a_b|s_b) from the (B, A) log-probs of a batch). The caller
    has checked the indices (Categorical.log_prob does). The same numbers as
    take_along_axis(x, index[..., None], -1).reshape(index.shape), in one node:

        d out_b / d x[b, j] = [j = index_b]      so   dx = g placed at (b, index_b), 0 elsewhere
    """
    x = as_tensor(x)
    idx = np.asarray(_data(index))
    v = x.data
    rows = np.arange(idx.size)
    flat_idx = idx.ravel()
    out = v.reshape(idx.size, v.shape[-1])[rows, flat_idx].reshape(idx.shape)

    def vjp(g):
        full = np.zeros((idx.size, v.shape[-1]), dtype=v.dtype)
        full[rows, flat_idx] = g.ravel()
        return (full.reshape(v.shape),)
    return Tensor._make(out, (x,), vjp, "pick")


def concatenate(tensors, axis: int = 0) -> Tensor:
    """np.concatenate of tensors (or arrays); the gradient is split back into pieces."""
    tensors = tuple(tensors)  # a generator would be used up before it became the parents
    out = _join(np.concatenate, tensors, axis, "concatenate")
    cuts = np.cumsum([np.shape(_data(t))[axis] for t in tensors])[:-1]

    def vjp(g):
        return tuple(np.split(g, cuts, axis=axis))
    return Tensor._make(out, tensors, vjp, "concatenate")


def stack(tensors, axis: int = 0) -> Tensor:
    """np.stack of tensors (or arrays)."""
    tensors = tuple(tensors)  # a generator would be used up before it became the parents
    out = _join(np.stack, tensors, axis, "stack")

    def vjp(g):
        return tuple(np.take(g, i, axis=axis) for i in range(len(tensors)))
    return Tensor._make(out, tensors, vjp, "stack")


def linear(x, weight, bias) -> Tensor:
    """An affine layer x @ weight + bias as one primitive: x (..., in), weight (in, out),
    bias (out,) -> (..., out). The same numbers as `x @ weight + bias`, with one graph node
    instead of two, and no gradient computed for an operand that does not need one (such
    as the observations). With g (..., out), and x and g flattened to (B, in) and (B, out):

        dx = g W^T,   dW = x^T g,   db = sum_b g
    """
    x, weight, bias = as_tensor(x), as_tensor(weight), as_tensor(bias)
    X, W, b = x.data, weight.data, bias.data
    if W.ndim != 2 or b.shape != W.shape[1:] or X.ndim == 0 or X.shape[-1] != W.shape[0]:
        raise ValueError(f"linear: expected x (..., in), weight (in, out) and bias (out,), got "
                         f"x {X.shape}, weight {W.shape}, bias {b.shape}")
    out = X @ W
    if np.can_cast(b.dtype, out.dtype):
        out += b  # in place on the fresh product: what `out = out + b` gives, one array fewer
    else:
        out = out + b

    def vjp(g):
        B = math.prod(X.shape[:-1])                                # x's leading axes, flattened
        g2 = g.reshape(B, g.shape[-1])                             # (B, out)
        gx = g @ W.T if x.requires_grad else None                  # (..., in)
        gw = X.reshape(B, X.shape[-1]).T @ g2 if weight.requires_grad else None
        gb = g2.sum(axis=0) if bias.requires_grad else None
        return gx, gw, gb
    return Tensor._make(out, (x, weight, bias), vjp, "linear")
