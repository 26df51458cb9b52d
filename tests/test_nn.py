"""Specification of ppo_ref.nn: orthogonal initialisation, Linear and MLP forward passes,
gradients by finite differences, determinism, and state_dict round trips."""
import math

import numpy as np
import pytest

from ppo_ref.autodiff import Tensor, no_grad
from ppo_ref.gradcheck import gradcheck
from ppo_ref.nn import MLP, Linear, orthogonal_init


@pytest.mark.parametrize("shape", [(5, 5), (8, 3), (64, 64)])
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2), 0.01])
def test_orthogonal_init_square_and_tall_have_wtw_equal_gain_squared_identity(shape, gain):
    w = orthogonal_init(shape, gain, np.random.default_rng(0))
    assert w.shape == shape
    np.testing.assert_allclose(w.T @ w, gain ** 2 * np.eye(shape[1]), atol=1e-12)


def test_orthogonal_init_wide_has_orthonormal_rows():
    w = orthogonal_init((3, 8), 2.0, np.random.default_rng(0))
    np.testing.assert_allclose(w @ w.T, 4.0 * np.eye(3), atol=1e-12)


def test_orthogonal_init_is_deterministic_per_seed():
    a = orthogonal_init((6, 4), 1.0, np.random.default_rng(7))
    b = orthogonal_init((6, 4), 1.0, np.random.default_rng(7))
    c = orthogonal_init((6, 4), 1.0, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_orthogonal_init_sign_fix_gives_zero_mean_entries():
    # Without the sign correction, QR routines return R with a positive (or fixed-sign)
    # diagonal and Q's entries are biased; with it, every entry has mean 0.
    ws = np.stack([orthogonal_init((3, 3), 1.0, np.random.default_rng(s)) for s in range(2000)])
    # each entry has variance 1/3, so the mean of 2000 has standard error sqrt(1/3/2000) ~ 0.013
    assert np.all(np.abs(ws.mean(axis=0)) < 5 * 0.013)


def test_orthogonal_init_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\(3,\)"):
        orthogonal_init((3,), 1.0, np.random.default_rng(0))


def test_linear_layout_init_and_forward():
    layer = Linear(4, 3, np.random.default_rng(0), gain=0.5)
    assert layer.weight.shape == (4, 3) and layer.bias.shape == (3,)
    assert layer.weight.requires_grad and layer.bias.requires_grad
    np.testing.assert_array_equal(layer.bias.data, np.zeros(3))
    np.testing.assert_allclose(layer.weight.data.T @ layer.weight.data, 0.25 * np.eye(3), atol=1e-12)
    layer.bias.data[:] = [1.0, 2.0, 3.0]
    x = np.random.default_rng(1).standard_normal((5, 4))
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data + layer.bias.data, rtol=1e-14)


def test_linear_dtype_option():
    layer = Linear(4, 3, np.random.default_rng(0), dtype=np.float32)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer(np.ones((2, 4), dtype=np.float32)).dtype == np.float32


def test_linear_requires_a_generator():
    with pytest.raises(TypeError, match="Generator"):
        Linear(2, 2, 0)


def test_mlp_hidden_gain_sqrt2_output_gain_configurable():
    mlp = MLP([4, 8, 8, 2], output_gain=0.01, rng=np.random.default_rng(0))
    w0, w1, w2 = (layer.weight.data for layer in mlp.layers)
    np.testing.assert_allclose(w0 @ w0.T, 2.0 * np.eye(4), atol=1e-12)      # (4, 8): wide
    np.testing.assert_allclose(w1.T @ w1, 2.0 * np.eye(8), atol=1e-12)      # (8, 8)
    np.testing.assert_allclose(w2.T @ w2, 1e-4 * np.eye(2), atol=1e-15)     # (8, 2): tall
    assert all(not layer.bias.data.any() for layer in mlp.layers)


@pytest.mark.parametrize("activation,act", [("tanh", np.tanh), ("relu", lambda h: np.maximum(h, 0))])
def test_mlp_forward_matches_a_numpy_loop(activation, act):
    mlp = MLP([3, 5, 4, 2], activation=activation, rng=np.random.default_rng(0))
    for layer in mlp.layers:  # non-zero biases so they are exercised
        layer.bias.data[:] = np.linspace(-0.5, 0.5, layer.out_features)
    x = np.random.default_rng(1).standard_normal((6, 3))
    h = x
    for i, layer in enumerate(mlp.layers):
        h = h @ layer.weight.data + layer.bias.data
        if i < len(mlp.layers) - 1:
            h = act(h)
    np.testing.assert_allclose(mlp(x).data, h, rtol=1e-13)


def test_mlp_parameters_in_layer_order():
    mlp = MLP([3, 5, 2], rng=np.random.default_rng(0))
    params = mlp.parameters()
    expected = [mlp.layers[0].weight, mlp.layers[0].bias, mlp.layers[1].weight, mlp.layers[1].bias]
    assert len(params) == 4 and all(p is q for p, q in zip(params, expected))
    assert [p.shape for p in params] == [(3, 5), (5,), (5, 2), (2,)]


def test_mlp_is_deterministic_given_the_generator():
    a = MLP([3, 16, 2], rng=np.random.default_rng(3)).state_dict()
    b = MLP([3, 16, 2], rng=np.random.default_rng(3)).state_dict()
    c = MLP([3, 16, 2], rng=np.random.default_rng(4)).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["layers.0.weight"], c["layers.0.weight"])
    d = MLP([3, 16, 2]).state_dict()  # rng=None is default_rng(0), not global state
    e = MLP([3, 16, 2], rng=np.random.default_rng(0)).state_dict()
    assert all(np.array_equal(d[k], e[k]) for k in d)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_gradients_match_finite_differences(activation):
    mlp = MLP([3, 6, 5, 2], activation=activation, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((4, 3))
    biases = [np.linspace(-0.3, 0.3, n) for n in (6, 5, 2)]
    inputs = [x] + [a for layer, b in zip(mlp.layers, biases) for a in (layer.weight.data, b)]

    def fn(x, *params):
        for i, layer in enumerate(mlp.layers):
            layer.weight, layer.bias = params[2 * i], params[2 * i + 1]
        return mlp(x)
    report = gradcheck(fn, inputs)
    assert report.passed, str(report)


def test_state_dict_round_trip_through_npz(tmp_path):
    src = MLP([3, 8, 2], rng=np.random.default_rng(0))
    state = src.state_dict()
    assert sorted(state) == ["layers.0.bias", "layers.0.weight", "layers.1.bias", "layers.1.weight"]
    np.savez(tmp_path / "mlp.npz", **state)
    dst = MLP([3, 8, 2], rng=np.random.default_rng(99))
    held = dst.parameters()
    with np.load(tmp_path / "mlp.npz") as f:
        dst.load_state_dict(dict(f))
    assert all(p is q for p, q in zip(dst.parameters(), held))  # loaded in place
    x = np.random.default_rng(1).standard_normal((5, 3))
    np.testing.assert_array_equal(dst(x).data, src(x).data)


def test_state_dict_is_a_snapshot():
    mlp = MLP([2, 3], rng=np.random.default_rng(0))
    state = mlp.state_dict()
    before = state["layers.0.weight"].copy()
    mlp.layers[0].weight.data += 1.0
    np.testing.assert_array_equal(state["layers.0.weight"], before)


def test_load_state_dict_rejects_wrong_keys():
    mlp = MLP([3, 4, 2], rng=np.random.default_rng(0))
    state = mlp.state_dict()
    del state["layers.1.bias"]
    state["layers.2.weight"] = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"missing keys \['layers.1.bias'\].*unexpected keys \['layers.2.weight'\]"):
        mlp.load_state_dict(state)


def test_load_state_dict_rejects_wrong_shapes_and_changes_nothing():
    mlp = MLP([3, 4, 2], rng=np.random.default_rng(0))
    before = mlp.state_dict()
    state = {k: v + 1.0 for k, v in before.items()}
    state["layers.1.weight"] = np.zeros((2, 4))  # torch's (out, in) layout by mistake
    with pytest.raises(ValueError, match=r"layers.1.weight.*\(2, 4\).*\(4, 2\)"):
        mlp.load_state_dict(state)
    after = mlp.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_load_state_dict_rejects_nonfinite_weights_and_changes_nothing(bad):
    mlp = MLP([3, 4, 2], rng=np.random.default_rng(0))
    before = mlp.state_dict()
    state = {k: v + 1.0 for k, v in before.items()}
    state["layers.1.bias"][1] = bad
    with pytest.raises(ValueError, match="layers.1.bias"):
        mlp.load_state_dict(state)
    assert all(np.array_equal(before[k], v) for k, v in mlp.state_dict().items())


@pytest.mark.parametrize("dtype", [bool, np.int32, np.uint8, np.float32])
def test_load_state_dict_takes_any_real_dtype_as_its_numbers(dtype):
    mlp = MLP([3, 4, 2], rng=np.random.default_rng(0))
    state = {k: np.ones(v.shape, dtype=dtype) for k, v in mlp.state_dict().items()}
    mlp.load_state_dict(state)
    assert all(np.array_equal(v, np.ones(v.shape)) and v.dtype == np.float64
               for v in mlp.state_dict().values())


@pytest.mark.parametrize("dtype", [np.complex128, object, str])
def test_load_state_dict_rejects_non_real_dtypes_naming_the_key(dtype):
    mlp = MLP([3, 4, 2], rng=np.random.default_rng(0))
    state = mlp.state_dict()
    state["layers.0.weight"] = np.ones(state["layers.0.weight"].shape).astype(dtype)
    with pytest.raises(ValueError, match=r"layers\.0\.weight is not an array of finite numbers"):
        mlp.load_state_dict(state)


def test_mlp_rejects_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        MLP([2, 2], activation="sigmoid")
    with pytest.raises(ValueError, match="sizes"):
        MLP([2])
    with pytest.raises(ValueError, match=r"sizes.*\[3.5, 2\]"):
        MLP([3.5, 2])
    with pytest.raises(ValueError, match="gain"):
        MLP([3, 2], output_gain=float("nan"))
    assert MLP([np.int64(3), 2.0]).sizes == [3, 2]   # whole numbers of any type are fine


def test_mlp_forward_reports_input_shape_mismatch():
    mlp = MLP([3, 4, 2], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(5, 2\).*\(3, 4\)"):
        mlp(Tensor(np.ones((5, 2))))
    with no_grad():   # the array fast path names the shapes too
        with pytest.raises(ValueError, match=r"x \(5, 2\), weight \(3, 4\)"):
            mlp(np.ones((5, 2)))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_under_no_grad_gives_the_same_numbers_and_records_nothing(activation, dtype):
    mlp = MLP([4, 8, 8, 2], activation=activation, rng=np.random.default_rng(0), dtype=dtype)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(dtype)
    with_graph = mlp(x)
    with no_grad():
        without = mlp(x)
    assert without.dtype == dtype and not without.requires_grad
    np.testing.assert_array_equal(without.data, with_graph.data)


# ----- orthogonal_init is the Q of the Gaussian draw's QR, sign-fixed -------------------------

@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (1, 3), (3, 1), (1, 1)])
def test_orthogonal_init_is_the_orthonormal_factor_of_the_draw_with_positive_diagonal_r(shape):
    # G = rng.standard_normal((max, min)) = Q R with R upper triangular; with the sign fix the
    # factorisation is the unique one with R_jj > 0, so R = W^T G (W G for a wide W) is upper
    # triangular with a positive diagonal.
    w = orthogonal_init(shape, 1.0, np.random.default_rng(5))
    rows, cols = shape
    g = np.random.default_rng(5).standard_normal((max(rows, cols), min(rows, cols)))
    r = w.T @ g if rows >= cols else w @ g
    np.testing.assert_allclose(np.tril(r, -1), 0.0, atol=1e-12)
    assert np.all(np.diag(r) > 0)
    np.testing.assert_allclose(orthogonal_init(shape, -3.0, np.random.default_rng(5)), -3.0 * w,
                               rtol=1e-15)


def test_orthogonal_init_accepts_one_row_or_column_and_rejects_an_empty_one():
    for shape in ((1, 4), (4, 1)):
        assert orthogonal_init(shape, 1.0, np.random.default_rng(0)).shape == shape
    for shape in ((0, 4), (4, 0)):
        with pytest.raises(ValueError, match=r"orthogonal_init: shape.*\(" + str(shape[0])):
            orthogonal_init(shape, 1.0, np.random.default_rng(0))


def test_linear_rng_error_names_the_type_it_got():
    with pytest.raises(TypeError, match=r"Linear: rng.*got int"):
        Linear(2, 2, 0)


def test_mlp_default_output_gain_is_one():
    w = MLP([4, 8, 3], rng=np.random.default_rng(0)).layers[-1].weight.data     # (8, 3): tall
    np.testing.assert_allclose(w.T @ w, np.eye(3), atol=1e-12)


def test_mlp_sizes_of_one_are_allowed_and_zero_is_not():
    assert MLP([1, 1, 1]).sizes == [1, 1, 1]
    with pytest.raises(ValueError, match=r"MLP: sizes.*\[3, 0, 2\]"):
        MLP([3, 0, 2])


@pytest.mark.parametrize("missing,unexpected", [(True, False), (False, True)])
def test_load_state_dict_rejects_a_missing_or_an_unexpected_key_alone(missing, unexpected):
    mlp = MLP([3, 4, 2], rng=np.random.default_rng(0))
    state = mlp.state_dict()
    if missing:
        del state["layers.0.bias"]
    if unexpected:
        state["layers.9.bias"] = np.zeros(2)
    with pytest.raises(ValueError, match="layers.0.bias" if missing else "layers.9.bias"):
        mlp.load_state_dict(state)


@pytest.mark.parametrize("x", [[[0.5, -1.0, 2.0]], [0.5, -1.0, 2.0],
                               np.arange(12.0).reshape(2, 2, 3) / 10],
                         ids=["list", "unbatched", "leading-dims"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_under_no_grad_takes_the_same_inputs_as_with_gradients(x, activation):
    # a nested list, a single unbatched input (in,), and leading batch dimensions (..., in)
    mlp = MLP([3, 4, 2], activation=activation, rng=np.random.default_rng(0))
    with_graph = mlp(x).data
    with no_grad():
        without = mlp(x).data
    np.testing.assert_array_equal(without, with_graph)
    assert without.shape == np.shape(x)[:-1] + (2,)


def test_mlp_under_no_grad_rejects_a_scalar_input_naming_the_shapes():
    mlp = MLP([1, 2], rng=np.random.default_rng(0))
    with no_grad():
        with pytest.raises(ValueError, match=r"linear: .*x \(\)"):
            mlp(np.float64(1.0))


def test_relu_mlp_under_no_grad_propagates_nan_as_with_gradients():
    # relu(nan) = nan on both paths: a nan input must not become a finite output under no_grad.
    # One hidden unit, weights 1 and biases 0, so the hidden pre-activations are the inputs.
    mlp = MLP([1, 1, 1], activation="relu", rng=np.random.default_rng(0))
    for layer in mlp.layers:
        layer.weight.data[...] = 1.0
    x = np.array([[np.nan], [0.0], [-1.0], [2.0]])
    with_graph = mlp(x).data
    with no_grad():
        without = mlp(x).data
    np.testing.assert_array_equal(with_graph, [[np.nan], [0.0], [0.0], [2.0]])
    np.testing.assert_array_equal(without, with_graph)
