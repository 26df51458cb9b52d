"""Input checks shared by the modules that validate what users pass in (at present gae.py,
losses.py, optim.py, trpo.py, rlhf/ and config.py).

They run on every minibatch, so the passing path is as cheap as it can be: one
vectorised test per argument. The slow work (finding the first bad index and
writing a message) happens only when a check fails.
"""
from __future__ import annotations

import numpy as np

from .autodiff import Tensor


def values_of(name: str, x) -> np.ndarray:
    """The numbers behind `x` (a Tensor's .data, or `x` as an array). Rejects non-numeric input."""
    arr = x.data if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def first_index(mask: np.ndarray) -> tuple:
    """Index of the first True in `mask` (C order), as a tuple of ints."""
    flat = int(np.argmax(mask.reshape(-1)))
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def check_finite(name: str, arr: np.ndarray) -> None:
    """ValueError naming `name` and the first index holding NaN or +-inf."""
    if np.isfinite(arr).all():
        return
    i = first_index(~np.isfinite(arr))
    raise ValueError(f"{name} contains a non-finite value {arr[i].item()!r} at index {i}")


def check_same_shape(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """ValueError naming both arguments and both shapes unless they are identical (no broadcasting)."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; "
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
            np.asarray(value).dtype.kind not in "iuf":
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
