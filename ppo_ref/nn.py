"""Layers: an affine map and a multilayer perceptron, with orthogonal initialisation.

Linear:  y = x W + b,   x (B, in), W (in, out), b (out,), y (B, out).

Convention: W is stored (in, out) so the forward is the plain matrix product
``x @ W``; torch's nn.Linear stores the transpose, (out, in), and computes
``x @ W.T``. Transpose when moving weights between the two.

Initialisation (the choice of PPO implementations since OpenAI baselines, see
Andrychowicz et al. 2021, "What matters in on-policy RL"): orthogonal weights
scaled by a gain, zero biases. Hidden layers use gain sqrt(2); the output layer
takes its own gain (0.01 for a policy head, so the initial policy is close to
uniform; 1.0 for a value head).
"""
from __future__ import annotations

import math

import numpy as np

from .autodiff import Tensor, as_tensor, is_grad_enabled, linear

__all__ = ["orthogonal_init", "Linear", "MLP"]


def orthogonal_init(shape, gain: float, rng: np.random.Generator) -> np.ndarray:
    """A (rows, cols) matrix with orthonormal columns (rows >= cols) or rows (rows < cols), times gain.

    So W^T W = gain^2 I for a square or tall W, and W W^T = gain^2 I for a wide one.
    Recipe (Saxe et al. 2014; the sign fix is Mezzadri 2007): draw a Gaussian
    matrix G of shape (max, min), take its reduced QR factorisation G = Q R and
    multiply each column of Q by sign(R_jj). Without that sign fix Q depends on
    the QR routine's sign convention and is not uniformly (Haar) distributed.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"orthogonal_init: shape must be (rows, cols) with both >= 1, got {shape}")
    if not np.isfinite(gain):  # a nan gain would make every weight nan
        raise ValueError(f"orthogonal_init: gain must be finite, got {gain}")
    rows, cols = shape
    gaussian = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(gaussian)                    # q (max, min), orthonormal columns
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)      # sign fix, column by column
    if rows < cols:
        q = q.T
    return gain * q


class Linear:
    """y = x @ weight + bias, with weight (in_features, out_features) and bias (out_features,).

    weight: orthogonal_init((in, out), gain, rng); bias: zeros. Both are Tensors
    with requires_grad=True, in `dtype` (float64 by default; float32 works).
    """

    def __init__(self, in_features: int, out_features: int, rng: np.random.Generator,
                 gain: float = math.sqrt(2), dtype=np.float64):
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"Linear: rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        w = orthogonal_init((self.in_features, self.out_features), gain, rng)
        self.weight = Tensor(w.astype(dtype), requires_grad=True)                       # (in, out)
        self.bias = Tensor(np.zeros(self.out_features, dtype=dtype), requires_grad=True)  # (out,)

    def __call__(self, x) -> Tensor:
        # x (B, in) -> (B, out): x @ weight + bias, as one autodiff node (autodiff.linear)
        return linear(x, self.weight, self.bias)

    def parameters(self) -> list:
        return [self.weight, self.bias]

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, dtype={self.weight.dtype})"


class MLP:
    """A multilayer perceptron: sizes = (in, h1, ..., out).

        h_0 = x,   h_{i+1} = act(h_i W_i + b_i)  for hidden layers,   y = h_L W_L + b_L

    act is tanh (PPO's default) or relu; the output layer is linear. Hidden layers are
    initialised with gain sqrt(2), the output layer with `output_gain`. `rng=None`
    means default_rng(0): still reproducible, never numpy's global random state.
    """

    _ACTIVATIONS = ("tanh", "relu")

    def __init__(self, sizes, activation: str = "tanh", output_gain: float = 1.0,
                 rng: np.random.Generator | None = None, dtype=np.float64):
        if any(int(n) != n for n in sizes):  # 3.5 would silently become 3
            raise ValueError(f"MLP: sizes must be whole numbers, got {list(sizes)}")
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP: sizes must list at least an input and an output size, all >= 1, "
                             f"got {sizes}")
        if activation not in self._ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {self._ACTIVATIONS}, got {activation!r}")
        rng = np.random.default_rng(0) if rng is None else rng
        self.sizes, self.activation = sizes, activation
        n = len(sizes) - 1
        self.layers = [Linear(sizes[i], sizes[i + 1], rng,
                              gain=output_gain if i == n - 1 else math.sqrt(2), dtype=dtype)
                       for i in range(n)]

    def __call__(self, x) -> Tensor:
        """y = h_L W_L + b_L with h_0 = x, h_{i+1} = act(h_i W_i + b_i): (B, in) -> (B, out).

        With gradients enabled each step is an autodiff node. Under no_grad (rollouts,
        evaluation) the same loop runs on plain arrays: the same numbers, without building a
        Tensor per operation that nothing would ever differentiate."""
        if is_grad_enabled():
            h, affine = as_tensor(x), linear
            act = Tensor.tanh if self.activation == "tanh" else Tensor.relu
        else:
            h, affine = (x.data if isinstance(x, Tensor) else np.asarray(x)), _affine_arrays
            act = np.tanh if self.activation == "tanh" else _relu_arrays
        for layer in self.layers[:-1]:
            h = act(affine(h, layer.weight, layer.bias))
        y = affine(h, self.layers[-1].weight, self.layers[-1].bias)
        return y if isinstance(y, Tensor) else Tensor(y)

    def parameters(self) -> list:
        """[W0, b0, W1, b1, ...]: the Tensors an optimiser updates."""
        return [p for layer in self.layers for p in layer.parameters()]

    def state_dict(self) -> dict:
        """{"layers.0.weight": (in, out) array, "layers.0.bias": (out,) array, ...}: copies,
        so a saved state does not change as training goes on. np.savez(path, **state) saves it."""
        state = {}
        for i, layer in enumerate(self.layers):
            state[f"layers.{i}.weight"] = layer.weight.data.copy()
            state[f"layers.{i}.bias"] = layer.bias.data.copy()
        return state

    def load_state_dict(self, state) -> None:
        """Copy arrays into the existing parameters (in place, so an optimiser holding them
        keeps working). Keys must match exactly and every shape must agree."""
        own = {f"layers.{i}.{name}": p for i, layer in enumerate(self.layers)
               for name, p in (("weight", layer.weight), ("bias", layer.bias))}
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"MLP.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for key, p in own.items():
            value = np.asarray(state[key])
            if value.shape != p.shape:
                raise ValueError(f"MLP.load_state_dict: {key} has shape {value.shape}, "
                                 f"the parameter has shape {p.shape}")
            if value.dtype.kind not in ("b", "i", "u", "f") or not np.all(np.isfinite(value)):
                raise ValueError(f"MLP.load_state_dict: {key} is not an array of finite numbers "
                                 f"(dtype {value.dtype})")
        for key, p in own.items():  # only after every check passed: no half-loaded model
            p.data[...] = state[key]

    def __repr__(self):
        return f"MLP({self.sizes}, activation={self.activation!r})"


def _affine_arrays(x: np.ndarray, weight: Tensor, bias: Tensor) -> np.ndarray:
    """autodiff.linear on plain arrays: x @ W + b, with the shape check linear() makes."""
    W, b = weight.data, bias.data
    if x.ndim == 0 or x.shape[-1] != W.shape[0]:
        raise ValueError(f"linear: expected x (..., in), weight (in, out) and bias (out,), got "
                         f"x {x.shape}, weight {W.shape}, bias {b.shape}")
    return x @ W + b


def _relu_arrays(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0, 0, x)         # exactly Tensor.relu: 0 at x == 0, relu(nan) = nan
