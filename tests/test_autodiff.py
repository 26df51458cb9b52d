"""Specification of ppo_ref.autodiff: every primitive's gradient against central finite
differences (float64, relative error <= 1e-6), the documented subgradients at kinks and
ties checked by hand, accumulation, no_grad, and the errors on bad input."""
import re
import warnings

import numpy as np
import pytest

from ppo_ref import autodiff as ad
from ppo_ref.autodiff import Tensor
from ppo_ref.gradcheck import gradcheck


def rand(*shape, seed=0, low=None):
    """Random float64 inputs; low=c gives values in [c, c + 1) (away from kinks and poles)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) if low is None else low + rng.random(shape)


def assert_gradcheck(fn, inputs, **kw):
    report = gradcheck(fn, inputs, **kw)
    assert report.passed, str(report)


# ----- properties of the module-level primitives (mutation testing) -----

def leaf(data):
    return Tensor(np.asarray(data, dtype=np.float64), requires_grad=True)


MODULE_PRIMITIVES = {   # name -> a call of that module function on a (3,) tensor
    "maximum": lambda t: ad.maximum(t, 0.0),
    "minimum": lambda t: ad.minimum(t, 0.0),
    "clip": lambda t: ad.clip(t, -1.0, 1.0),
    "where": lambda t: ad.where(np.array([True, False, True]), t, 0.0),
    "logsumexp": lambda t: ad.logsumexp(t),
    "log_softmax": lambda t: ad.log_softmax(t),
    "take_along_axis": lambda t: ad.take_along_axis(t, np.array([1]), 0),
    "pick": lambda t: ad.pick(t, np.array(1)),
    "concatenate": lambda t: ad.concatenate([t, t]),
    "stack": lambda t: ad.stack([t, t]),
    "linear": lambda t: ad.linear(t, np.ones((3, 2)), np.zeros(2)),
}


@pytest.mark.parametrize("name", sorted(MODULE_PRIMITIVES))
def test_each_module_primitive_names_its_graph_node_after_itself(name):
    assert MODULE_PRIMITIVES[name](leaf([0.5, -2.0, 3.0]))._op == name


@pytest.mark.parametrize("shape,trues", [
    ((5,), [(3,)]), ((4,), [(0,), (3,)]), ((2, 3), [(1, 2), (1, 0)]),
    ((2, 3, 4), [(1, 2, 3), (0, 2, 1), (1, 0, 0)]), ((), [()]),
])
def test_first_index_is_the_first_true_in_c_order_as_a_tuple_of_ints(shape, trues):
    mask = np.zeros(shape, dtype=bool)
    for i in trues:
        mask[i] = True
    for m in (mask, np.asfortranarray(mask), mask.T):     # the memory layout does not matter
        expected = next(i for i in np.ndindex(*m.shape) if m[i])   # a naive C-order scan
        got = ad.first_index(m)
        assert got == expected and all(type(i) is int for i in got)


@pytest.mark.parametrize("data", [
    True, 3, [True, False], np.array([-1, 2], dtype=np.int8), np.array([1, 255], dtype=np.uint8),
    np.arange(6).reshape(2, 3).T,
], ids=["bool", "int", "bool_list", "int8", "uint8", "transposed_int64"])
def test_bool_and_integer_data_become_float64_holding_the_same_numbers(data):
    t = Tensor(data)
    assert t.dtype == np.float64 and t.shape == np.shape(data)
    for i in np.ndindex(*t.shape):
        assert t.data[i] == float(np.asarray(data)[i])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_floating_data_keeps_its_dtype_and_is_wrapped_without_a_copy(dtype):
    a = np.ones(3, dtype=dtype)
    t = Tensor(a)
    assert t.dtype == dtype and t.data is a and Tensor(t).data is a


@pytest.mark.parametrize("data,dtype", [(np.array(["a"]), "<U1"), (np.array([1j]), "complex128"),
                                        (np.array([None]), "object")])
def test_non_numeric_data_is_a_type_error_naming_the_dtype(data, dtype):
    with pytest.raises(TypeError, match=rf"numeric, got dtype {re.escape(dtype)}$"):
        Tensor(data)


@pytest.mark.parametrize("shape_a,shape_b", [
    ((2, 3), (3,)), ((2, 3), (2, 1)), ((2, 1, 3), (4, 1)), ((), (2, 2)), ((1, 2), (2, 2)),
    ((2, 1), (1,)), ((3, 2), (1, 1, 2)), ((2, 2), (2, 2)),
])
def test_a_broadcast_operand_receives_the_sum_of_the_gradients_of_all_its_copies(shape_a, shape_b):
    out_shape = np.broadcast_shapes(shape_a, shape_b)
    g = np.arange(1.0, 1.0 + np.prod(out_shape)).reshape(out_shape)   # integers: exact sums
    a, b = leaf(np.zeros(shape_a)), leaf(np.zeros(shape_b))
    (a + b).backward(g)
    for t, shape in ((a, shape_a), (b, shape_b)):
        expected, lead = np.zeros(shape), len(out_shape) - len(shape)
        for i in np.ndindex(*out_shape):   # the copy at i came from element src of the operand
            src = tuple(0 if n == 1 else k for k, n in zip(i[lead:], shape))
            expected[src] += g[i]
        assert t.grad.shape == shape
        np.testing.assert_array_equal(t.grad, expected)


@pytest.mark.parametrize("fn,a_wins", [(ad.maximum, np.greater), (ad.minimum, np.less)])
def test_maximum_and_minimum_at_a_tie_send_half_of_any_upstream_gradient_to_each_side(fn, a_wins):
    a, b = np.array([1.0, 2.0, 3.0, -1.0, 0.0]), np.array([1.0, 5.0, 0.0, -1.0, 0.0])
    g = np.array([0.3, -2.0, 7.0, -5.0, 1e-3])      # any upstream gradient, not only ones
    A, B = leaf(a), leaf(b)
    fn(A, B).backward(g)
    for i in range(5):
        share = 0.5 if a[i] == b[i] else float(a_wins(a[i], b[i]))
        assert A.grad[i] == share * g[i] and B.grad[i] == (1.0 - share) * g[i]


@pytest.mark.parametrize("fn", [ad.maximum, ad.minimum])
def test_maximum_and_minimum_of_shapes_that_do_not_broadcast_name_the_function(fn):
    name = fn.__name__
    with pytest.raises(ValueError, match=rf"^{name}: operands of shapes \(2,\) and \(3,\) do not"):
        fn(leaf(np.ones(2)), np.ones(3))


def test_clip_with_equal_bounds_is_allowed_and_a_bound_just_below_the_other_is_not():
    x = leaf([0.0, 0.5, 1.0])
    out = ad.clip(x, 0.5, 0.5)
    out.sum().backward()
    assert out.data.tolist() == [0.5, 0.5, 0.5] and x.grad.tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="clip: lower bound"):
        ad.clip(x, np.nextafter(0.5, 1.0), 0.5)


def test_where_reads_a_numeric_condition_as_nonzero_is_true():
    a, b = leaf([1.0, 2.0, 3.0, 4.0]), leaf([-1.0, -2.0, -3.0, -4.0])
    out = ad.where(np.array([0.0, 2.5, -1.0, np.nan]), a, b)
    out.backward(np.array([10.0, 20.0, 30.0, 40.0]))
    assert out.data.tolist() == [-1.0, 2.0, 3.0, 4.0]
    assert a.grad.tolist() == [0.0, 20.0, 30.0, 40.0] and b.grad.tolist() == [10.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("c,a,b", [((3,), (4,), ()), ((4,), (3,), (4,)), ((4,), (4,), (3,)),
                                   ((2, 1), (3,), (4,))])
def test_where_of_shapes_that_do_not_broadcast_names_all_three_shapes(c, a, b):
    with pytest.raises(ValueError, match=rf"^where: condition {re.escape(str(c))}, "
                                         rf"a {re.escape(str(a))} and b {re.escape(str(b))} do"):
        ad.where(np.ones(c, dtype=bool), leaf(np.ones(a)), leaf(np.ones(b)))


@pytest.mark.parametrize("fn", [ad.logsumexp, ad.log_softmax])
def test_a_row_of_only_minus_infinity_gives_no_divide_by_zero_warning(fn):
    # logsumexp of [-inf, -inf] is log 0 = -inf; its log_softmax is -inf - (-inf) = nan (as torch)
    x = np.array([[-np.inf, -np.inf], [0.0, np.log(3.0)], [-np.inf, 0.0]])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="invalid value")   # -inf - (-inf)
        warnings.filterwarnings("error", message="divide by zero")
        out = fn(x).data
    if fn is ad.logsumexp:
        np.testing.assert_allclose(out, [-np.inf, np.log(4.0), 0.0], rtol=1e-15)
    else:
        assert np.isnan(out[0]).all()
        np.testing.assert_allclose(out[1:], [[np.log(0.25), np.log(0.75)], [-np.inf, 0.0]],
                                   rtol=1e-15)


@pytest.mark.parametrize("shape,axis,out_shape", [((1, 3), -1, (1,)), ((3, 1), 0, (1,)),
                                                  ((1, 3, 1), 1, (1, 1)), ((1, 1), None, ())])
def test_logsumexp_removes_exactly_the_reduced_axes_and_keeps_other_size_one_axes(shape, axis,
                                                                                 out_shape):
    x = rand(*shape)
    out = ad.logsumexp(x, axis=axis)
    assert out.shape == out_shape
    np.testing.assert_allclose(out.data, np.log(np.exp(x).sum(axis=axis)), rtol=1e-14)


@pytest.mark.parametrize("fn", [ad.logsumexp, ad.log_softmax])
def test_logsumexp_and_log_softmax_errors_on_an_empty_tensor_start_with_the_function_name(fn):
    name = fn.__name__
    with pytest.raises(ValueError, match=rf"^{name}: axis -1 of a tensor of shape \(3, 0\) is "):
        fn(np.zeros((3, 0)), axis=-1)
    with pytest.raises(ValueError, match=rf"^{name}: axis 2 is out of range"):
        fn(np.zeros((0, 3)), axis=2)


@pytest.mark.parametrize("shape_x,indices,axis", [
    ((2, 3), [[1], [0]], 1), ((2, 3), [[1, 1], [0, 2]], 1), ((2, 3), [[1, 0, 1]], 0),
    ((1, 4), [[0], [2]], 1), ((1, 4), [[0], [0]], 1), ((2, 1, 3), [[[0], [2]]], -1),
    ((3, 1), [[0, 0]], 0), ((2, 3, 2), [[[1, 0]], [[2, 2]]], 1),
], ids=["one_pick_per_row", "two_picks_repeated", "axis0_repeated", "x_row_reused_twice",
        "x_row_reused_same_pick", "3d_negative_axis", "x_column_reused", "3d_repeated"])
def test_take_along_axis_adds_the_upstream_gradient_of_every_pick_by_a_loop(shape_x, indices, axis):
    idx = np.array(indices)
    x = leaf(np.zeros(shape_x))
    out = ad.take_along_axis(x, idx, axis)
    g = np.arange(1.0, 1.0 + out.size).reshape(out.shape)     # integers: exact sums
    out.backward(g)
    expected, ax = np.zeros(shape_x), axis % len(shape_x)
    idx_b = np.broadcast_to(idx, out.shape)
    for o in np.ndindex(*out.shape):     # out[o] = x[o with axis ax replaced by idx[o]]
        src = [0 if n == 1 else k for k, n in zip(o, shape_x)]
        src[ax] = idx_b[o]
        expected[tuple(src)] += g[o]
    np.testing.assert_array_equal(x.grad, expected)


def test_take_along_axis_accepts_unsigned_indices_and_rejects_others_naming_them():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(ad.take_along_axis(x, np.array([[2], [0]], np.uint8), 1).data,
                                  [[2.0], [3.0]])
    with pytest.raises(TypeError, match=r"take_along_axis: indices must be integers, got dtype "
                                        r"float64"):
        ad.take_along_axis(x, np.array([[2.0], [0.0]]), 1)
    with pytest.raises(ValueError, match=r"take_along_axis: indices shape \(2,\) and x shape "
                                         r"\(2, 3\)"):
        ad.take_along_axis(x, np.array([2, 0]), 1)


@pytest.mark.parametrize("fn,axis", [(ad.concatenate, 1), (ad.stack, -1)])
def test_concatenate_and_stack_of_three_pieces_give_each_piece_its_own_part_of_the_gradient(fn,
                                                                                          axis):
    widths = (1, 3, 2) if fn is ad.concatenate else (2, 2, 2)
    pieces = [leaf(np.zeros((2, n))) for n in widths]
    out = fn(pieces, axis=axis)
    g = np.arange(1.0, 1.0 + out.size).reshape(out.shape)
    out.backward(g)
    parts = ([g[:, :1], g[:, 1:4], g[:, 4:]] if fn is ad.concatenate
             else [g[..., 0], g[..., 1], g[..., 2]])
    for p, part in zip(pieces, parts):
        np.testing.assert_array_equal(p.grad, part)


@pytest.mark.parametrize("dx,dw,db", [
    (np.float64, np.float64, np.float64), (np.float32, np.float32, np.float32),
    (np.float32, np.float32, np.float64), (np.float64, np.float64, np.float32),
    (np.float16, np.float16, np.float32),
])
def test_linear_has_the_dtype_and_values_of_x_at_weight_plus_bias(dx, dw, db):
    x, w = rand(5, 4, seed=1).astype(dx), rand(4, 3, seed=2).astype(dw)
    b = rand(3, seed=3).astype(db)
    out = ad.linear(x, w, b)
    expected = x @ w + b
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out.data, expected)


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True),
                                   (False, True, True), (True, True, True)])
def test_linear_computes_a_gradient_only_for_the_operands_that_require_one(needs):
    X, W, b = rand(2, 3, 4, seed=1), rand(4, 5, seed=2), rand(5, seed=3)
    out = ad.linear(*(Tensor(d, requires_grad=r) for d, r in zip((X, W, b), needs)))
    g = rand(2, 3, 5, seed=4)
    expected = (np.einsum("abj,ij->abi", g, W),     # dx = g W^T
                np.einsum("abi,abj->ij", X, g),     # dW = sum over the batch of x g^T
                g.sum(axis=(0, 1)))                   # db = sum over the batch of g
    for got, want, need in zip(out._vjp(g), expected, needs):
        if need:
            np.testing.assert_allclose(got, want, rtol=1e-12)
        else:
            assert got is None


@pytest.mark.parametrize("x,w,b", [((5, 4), (4, 2, 1), (2, 1)), ((5, 4), (4, 2), (3,)),
                                   ((), (1, 2), (2,)), ((5, 3), (4, 2), (2,))],
                         ids=["weight_3d", "bias_length", "x_scalar", "inner_size"])
def test_linear_rejects_each_bad_shape_naming_all_three(x, w, b):
    with pytest.raises(ValueError, match=rf"^linear: .* got x {re.escape(str(x))}, weight "
                                         rf"{re.escape(str(w))}, bias {re.escape(str(b))}$"):
        ad.linear(np.ones(x), np.ones(w), np.ones(b))


@pytest.mark.parametrize("axis", [-2, -1, 0, 1])
def test_every_axis_from_minus_ndim_to_ndim_minus_one_is_in_range(axis):
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(Tensor(x).sum(axis=axis).data, x.sum(axis=axis))


@pytest.mark.parametrize("axis", [-3, 2])
def test_an_axis_just_past_either_end_is_out_of_range_naming_the_operation(axis):
    with pytest.raises(ValueError, match=rf"^sum: axis {axis} is out of range"):
        Tensor(np.ones((2, 3))).sum(axis=axis)


# ----- arithmetic, with broadcasting ----------------------------------------------

BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)),
                   ((3, 4), ()), ((), (2, 3))]


@pytest.mark.parametrize("shape_a,shape_b", BROADCAST_PAIRS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_binary_op_gradient_matches_finite_differences_under_broadcasting(op, shape_a, shape_b):
    fns = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a / b, "pow": lambda a, b: a ** b}
    a = rand(*shape_a, seed=1, low=0.5 if op == "pow" else None)
    b = rand(*shape_b, seed=2, low=0.5 if op in ("div", "pow") else None)
    assert_gradcheck(fns[op], [a, b])


@pytest.mark.parametrize("fn", [
    lambda x: 2.0 - x, lambda x: 3.0 / x, lambda x: 2.0 * x, lambda x: 1.5 + x, lambda x: -x,
    lambda x: x ** 3, lambda x: x ** 0.5, lambda x: np.full((2, 3), 2.0) * x,
    lambda x: np.ones((2, 3)) - x, lambda x: np.ones((4, 3)) @ x.T,
], ids=["rsub", "rdiv", "rmul", "radd", "neg", "pow_int", "pow_half", "array_mul",
        "array_sub", "array_matmul"])
def test_operations_with_constants_on_either_side(fn):
    assert_gradcheck(fn, [rand(2, 3, low=0.5)])


def test_exponent_tensor_gets_gradient_a_to_the_p_log_a():
    a, p = rand(3, low=0.5), rand(3, seed=3)
    A, P = Tensor(a), Tensor(p, requires_grad=True)
    (A ** P).sum().backward()
    np.testing.assert_allclose(P.grad, a ** p * np.log(a), rtol=1e-12)


# ----- elementwise functions --------------------------------------------------------

@pytest.mark.parametrize("name,low", [("exp", None), ("log", 0.5), ("tanh", None), ("sqrt", 0.5),
                                      ("relu", None)])
def test_unary_function_gradient_matches_finite_differences(name, low):
    x = rand(3, 4, low=low)
    if name == "relu":
        x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    assert_gradcheck(lambda t: getattr(t, name)(), [x])


def test_unary_functions_compute_numpy_values():
    x = rand(5, low=0.5)
    t = Tensor(x)
    np.testing.assert_array_equal(t.exp().data, np.exp(x))
    np.testing.assert_array_equal(t.log().data, np.log(x))
    np.testing.assert_array_equal(t.sqrt().data, np.sqrt(x))
    np.testing.assert_array_equal(t.tanh().data, np.tanh(x))
    np.testing.assert_array_equal(Tensor([-1.0, 0.0, 2.0]).relu().data, [0.0, 0.0, 2.0])


# ----- reductions and shapes --------------------------------------------------------

@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (-1, 0)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_sum_and_mean_gradients_with_axes_and_keepdims(reduce, axis, keepdims):
    x = rand(2, 3, 4)
    out = getattr(Tensor(x), reduce)(axis=axis, keepdims=keepdims)
    expected = getattr(np, reduce)(x, axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-14)
    assert_gradcheck(lambda t: getattr(t, reduce)(axis=axis, keepdims=keepdims), [x])


def test_mean_gradient_is_one_over_count():
    x = Tensor(np.zeros((2, 5)), requires_grad=True)
    x.mean(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 5), 0.2))


@pytest.mark.parametrize("fn", [
    lambda t: t.reshape(4, 6), lambda t: t.reshape((6, 4)), lambda t: t.reshape(-1),
    lambda t: t.transpose(), lambda t: t.transpose(1, 2, 0), lambda t: t.T,
    lambda t: t.transpose(-1, 0, 1), lambda t: t.transpose((2, 0, 1)),
], ids=["reshape_args", "reshape_tuple", "flatten", "transpose", "permute", "T",
        "permute_negative_axis", "permute_tuple"])
def test_shape_operations_route_gradients_back(fn):
    assert_gradcheck(fn, [rand(2, 3, 4)])


@pytest.mark.parametrize("index", [
    (slice(None), 1), (0,), (slice(1, None), slice(None, None, 2)), (np.array([0, 0, 2]),),
    (np.array([True, False, True]),), (np.array([1, 1]), np.array([2, 2])), (Ellipsis, -1),
], ids=["column", "row", "slices", "repeated_rows", "bool_mask", "repeated_pair", "ellipsis"])
def test_indexing_gradient_including_repeated_indices(index):
    assert_gradcheck(lambda t: t[index], [rand(3, 4)])


def test_repeated_index_accumulates_hand_computed():
    x = Tensor(np.zeros(3), requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


# ----- matmul -------------------------------------------------------------------------

@pytest.mark.parametrize("shape_a,shape_b", [
    ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
    ((2, 3, 4), (2, 4, 5)), ((3, 4), (2, 4, 5)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)),
    ((2, 1, 3, 4), (5, 4, 2)),
])
def test_matmul_gradient_for_1d_2d_and_batched_operands(shape_a, shape_b):
    a, b = rand(*shape_a, seed=1), rand(*shape_b, seed=2)
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b, rtol=1e-14)
    assert_gradcheck(lambda x, y: x @ y, [a, b])



@pytest.mark.parametrize("shape_x", [(5, 4), (4,), (2, 3, 4)])
def test_linear_equals_matmul_plus_bias_with_the_same_gradients(shape_x):
    x, w, b = rand(*shape_x, seed=1), rand(4, 3, seed=2), rand(3, seed=3)
    np.testing.assert_allclose(ad.linear(x, w, b).data, x @ w + b, rtol=1e-14)
    assert_gradcheck(lambda x, w, b: ad.linear(x, w, b), [x, w, b])


def test_linear_computes_no_gradient_for_a_constant_input():
    w = Tensor(rand(4, 3, seed=2), requires_grad=True)
    b = Tensor(rand(3, seed=3), requires_grad=True)
    g = rand(5, 3, seed=4)
    x = rand(5, 4, seed=1)
    ad.linear(x, w, b).backward(g)
    np.testing.assert_allclose(w.grad, x.T @ g, rtol=1e-14)
    np.testing.assert_allclose(b.grad, g.sum(axis=0), rtol=1e-14)


def test_linear_shape_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"x \(5, 4\), weight \(3, 2\), bias \(2,\)"):
        ad.linear(rand(5, 4), rand(3, 2), rand(2))

# ----- module functions ---------------------------------------------------------------

def test_maximum_minimum_gradients_with_broadcasting():
    a, b = rand(3, 4, seed=1), rand(4, seed=2)
    assert_gradcheck(ad.maximum, [a, b])
    assert_gradcheck(ad.minimum, [a, b])
    assert_gradcheck(lambda x: ad.maximum(x, 0.1), [a])


def test_clip_gradient_inside_and_outside_bounds():
    x = np.array([-2.0, -0.3, 0.2, 0.7, 3.0])
    assert_gradcheck(lambda t: ad.clip(t, -0.5, 0.5) * t, [x])


def test_clip_with_array_bounds_that_broadcast_x_up_sums_the_gradient_back():
    # x (3,) against bounds (2, 3): the output is (2, 3), x's gradient must be (3,)
    x = np.array([0.5, 2.0, -3.0])
    lo, hi = np.full((2, 3), -1.0), np.array([[1.0], [3.0]])
    assert_gradcheck(lambda t: ad.clip(t, lo, hi), [x])
    t = Tensor(x, requires_grad=True)
    ad.clip(t, lo, hi).sum().backward()
    np.testing.assert_array_equal(t.grad, [2.0, 1.0, 0.0])   # inside both rows, one row, none


def test_constant_base_to_a_tensor_power():
    # d(c^p)/dp = c^p log c, for a scalar or an array base
    assert_gradcheck(lambda p: 2.0 ** p, [rand(3, seed=4)])
    assert_gradcheck(lambda p: np.array([[0.5], [1.5]]) ** p, [rand(3, seed=5)])
    p = Tensor(np.array([0.5, 2.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # no divide-by-zero from a base that needs no gradient
        (Tensor(np.zeros(2)) ** p).sum().backward()
    np.testing.assert_array_equal(p.grad, [0.0, 0.0])   # 0^p is flat in p for p > 0


@pytest.mark.parametrize("name,low", [("exp", None), ("log", 0.5), ("tanh", None), ("sqrt", 0.5),
                                      ("relu", 0.5), ("neg", None)])
def test_unary_functions_on_zero_dimensional_tensors(name, low):
    x = rand(low=low)   # shape ()
    fn = (lambda t: -t) if name == "neg" else (lambda t: getattr(t, name)())
    assert fn(Tensor(x)).shape == ()
    assert_gradcheck(lambda t: fn(t).sum() * fn(t).mean(), [x])


def test_integer_and_boolean_data_become_float64_and_take_gradients():
    t = Tensor(np.array([1, 2, 3]), requires_grad=True)
    assert t.dtype == np.float64 and Tensor([True, False]).dtype == np.float64
    (t * t).sum().backward()
    np.testing.assert_array_equal(t.grad, [2.0, 4.0, 6.0])


def test_where_sends_gradient_to_the_chosen_branch():
    cond = np.array([[True, False, True], [False, False, True]])
    assert_gradcheck(lambda a, b: ad.where(cond, a, b), [rand(2, 3, seed=1), rand(3, seed=2)])
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    ad.where(np.array([True, False, True]), a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [1, 0, 1])
    np.testing.assert_array_equal(b.grad, [0, 1, 0])


@pytest.mark.parametrize("axis,keepdims", [(-1, False), (0, False), (1, True), (None, False),
                                           ((0, 1), True)])
def test_logsumexp_value_and_gradient(axis, keepdims):
    x = rand(3, 4)
    expected = np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    np.testing.assert_allclose(ad.logsumexp(x, axis, keepdims).data, expected, rtol=1e-13)
    assert_gradcheck(lambda t: ad.logsumexp(t, axis, keepdims), [x])


@pytest.mark.parametrize("axis", [-1, 0])
def test_log_softmax_value_and_gradient(axis):
    x = rand(3, 4)
    expected = x - np.log(np.sum(np.exp(x), axis=axis, keepdims=True))
    np.testing.assert_allclose(ad.log_softmax(x, axis).data, expected, rtol=1e-13)
    assert_gradcheck(lambda t: ad.log_softmax(t, axis), [x])


def test_log_softmax_and_logsumexp_are_finite_for_extreme_logits():
    x = np.array([[1e3, -1e3, 0.0]])
    assert np.all(np.isfinite(ad.log_softmax(x).data))
    np.testing.assert_allclose(ad.logsumexp(x).data, [1e3], rtol=1e-15)
    assert_gradcheck(lambda t: ad.log_softmax(t), [x])


@pytest.mark.parametrize("indices,axis", [
    (np.array([[1], [3], [0]]), 1), (np.array([[0, 0, 2], [1, 3, 3], [2, 2, 2]]), 1),
    (np.array([[2, 0, 1, 1]]), 0), (np.array([[1]]), 1), (np.array([[0, 3, 3]]), 1),
], ids=["one_per_row", "repeated", "axis0", "broadcast_one", "broadcast_repeated"])
def test_take_along_axis_gradient_including_repeats_and_broadcast_indices(indices, axis):
    x = rand(3, 4)
    np.testing.assert_array_equal(ad.take_along_axis(x, indices, axis).data,
                                  np.take_along_axis(x, indices, axis))
    assert_gradcheck(lambda t: ad.take_along_axis(t, indices, axis), [x])


@pytest.mark.parametrize("shape_x,indices,axis", [
    ((1, 4), np.array([[0], [0], [2]]), 1), ((1, 4), np.array([[0, 3], [0, 0], [2, 1]]), 1),
    ((3, 1), np.array([[0, 0, 0, 0]]), 0), ((2, 1, 3), np.array([[[0], [2]]]), -1),
], ids=["one_pick", "two_picks", "axis0", "3d_negative_axis"])
def test_take_along_axis_gradient_when_x_is_broadcast_against_the_indices(shape_x, indices, axis):
    # numpy broadcasts x's size-1 dimensions against the indices: one row of x is picked from
    # several times, and its gradient must add up every pick.
    assert_gradcheck(lambda t: ad.take_along_axis(t, indices, axis), [rand(*shape_x)])


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 4), (5,)])
def test_pick_values_by_a_loop_and_gradient_by_finite_differences(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    index = rng.integers(0, shape[-1], size=shape[:-1])
    got = ad.pick(Tensor(x), index).data
    assert got.shape == shape[:-1]
    for b in np.ndindex(*shape[:-1]):                   # out_b = x[b, index_b]
        assert got[b] == x[b + (index[b],)]
    assert_gradcheck(lambda t: ad.pick(t, index), [x])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pick_equals_take_along_axis_and_reshape_bit_for_bit(dtype):
    """Extreme logits and repeated actions: pick's value and gradient are those of
    take_along_axis(x, index[:, None], 1).reshape(B), exactly."""
    rng = np.random.default_rng(1)
    logits = (rng.normal(size=(40, 5)) * np.array([1, 1e3, -1e3, 1e-3, 30])).astype(dtype)
    index = np.array([0, 1, 1, 4, 2] * 8)
    g = rng.normal(size=40).astype(dtype)
    grads = []
    for f in (lambda t: ad.pick(t, index),
              lambda t: ad.take_along_axis(t, index[:, None], 1).reshape(40)):
        t = Tensor(logits, requires_grad=True)
        lp = ad.log_softmax(t, axis=-1)
        out = f(lp)
        out.backward(g)
        grads.append((out.data, t.grad))
    for a, b in zip(*grads):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)


def test_take_along_axis_broadcast_row_gradient_by_hand():
    x = Tensor(np.zeros((1, 4)), requires_grad=True)
    ad.take_along_axis(x, np.array([[0], [0], [2]]), axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[2.0, 0.0, 1.0, 0.0]])   # index 0 picked twice


def test_concatenate_and_stack_split_gradients_back():
    a, b = rand(2, 3, seed=1), rand(2, 2, seed=2)
    assert_gradcheck(lambda x, y: ad.concatenate([x, y], axis=1), [a, b])
    assert_gradcheck(lambda x, y: ad.stack([x, y], axis=-1), [a, rand(2, 3, seed=3)])


def test_concatenate_and_stack_of_a_generator_keep_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (ad.concatenate(t for t in [x, x * 3.0]).sum() + ad.stack(t for t in [x, x]).sum()).backward()
    np.testing.assert_array_equal(x.grad, [1.0 + 3.0 + 2.0] * 2)   # d/dx of sum(x) + sum(3x) + 2 sum(x)


def test_composite_mlp_log_softmax_weighted_sum():
    """A two-layer tanh network feeding log_softmax feeding an advantage-weighted sum of
    the chosen actions' log-probabilities: the shape of a policy-gradient loss."""
    x, w1, b1 = rand(5, 3, seed=1), rand(3, 8, seed=2), rand(8, seed=3)
    w2, b2 = rand(8, 4, seed=4), rand(4, seed=5)
    actions = np.array([[0], [3], [3], [1], [2]])
    weights = rand(5, seed=6)

    def loss(x, w1, b1, w2, b2):
        logits = (x @ w1 + b1).tanh() @ w2 + b2
        logp = ad.take_along_axis(ad.log_softmax(logits, axis=-1), actions, axis=1)
        return -(logp.reshape(5) * weights).mean()
    assert_gradcheck(loss, [x, w1, b1, w2, b2])


# ----- subgradients at kinks and ties (documented conventions, checked by hand) -----

def test_relu_subgradient_at_zero_is_zero():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("fn", [ad.maximum, ad.minimum])
def test_maximum_and_minimum_split_the_gradient_at_ties(fn):
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 5.0, 0.0]), requires_grad=True)
    fn(a, b).sum().backward()
    wins_a = [0.5, 0.0, 1.0] if fn is ad.maximum else [0.5, 1.0, 0.0]
    np.testing.assert_array_equal(a.grad, wins_a)
    np.testing.assert_array_equal(b.grad, 1.0 - np.array(wins_a))


def test_clip_passes_gradient_at_its_bounds_and_blocks_outside():
    x = Tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), requires_grad=True)
    ad.clip(x, -1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 1.0, 0.0])


# ----- graph semantics ---------------------------------------------------------------

def test_gradients_accumulate_across_backward_calls_until_cleared():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])  # 2 * (2x)
    x.grad = None
    (3.0 * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_a_tensor_used_twice_receives_both_contributions():
    x = Tensor(np.array([3.0]), requires_grad=True)
    y = x * 2.0
    (y * y + y).sum().backward()  # d/dx (4x^2 + 2x) = 8x + 2
    np.testing.assert_array_equal(x.grad, [26.0])


def test_backward_on_a_deep_chain_does_not_hit_the_recursion_limit():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.backward()
    assert x.grad == 1.0


def test_no_grad_records_nothing():
    x = Tensor(np.ones(3), requires_grad=True)
    with ad.no_grad():
        assert ad.is_grad_enabled() is False     # a bool, as torch.is_grad_enabled
        y = (x * 2.0).exp().sum()
    assert ad.is_grad_enabled() is True
    assert not y.requires_grad and y._parents == ()
    with pytest.raises(RuntimeError):
        y.backward()


def test_no_grad_nests_and_restores_recording_after_an_exception():
    x = Tensor(np.ones(2), requires_grad=True)
    with ad.no_grad():
        with ad.no_grad():
            pass
        assert not ad.is_grad_enabled()          # the inner exit does not switch recording back on
    with pytest.raises(KeyError):
        with ad.no_grad():
            raise KeyError("boom")
    assert ad.is_grad_enabled()
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_detach_cuts_the_graph():
    x = Tensor(np.ones(2), requires_grad=True)
    y = (x * 3.0).detach() * x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_backward_with_explicit_upstream_gradient():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 40.0])


def test_float32_stays_float32_through_ops_and_gradients():
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    y = ad.maximum(x * 2.0 + 1, 0.5).tanh().log_softmax().mean()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32


# ----- bad input -------------------------------------------------------------------------

def test_backward_on_non_scalar_raises_value_error():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match=r"\(2,\)"):
        (x * 2.0).backward(np.ones(2))


@pytest.mark.parametrize("fn,shapes", [
    (lambda a, b: a + b, ((3, 4), (5,))), (lambda a, b: a * b, ((2, 3), (3, 2))),
    (lambda a, b: a @ b, ((3, 4), (5, 2))), (lambda a, b: a @ b, ((2, 3, 4), (3, 4, 5))),
    (ad.maximum, ((2,), (3,))), (lambda a, b: ad.where(np.ones(4, bool), a, b), ((4,), (3,))),
], ids=["add", "mul", "matmul", "matmul_batch", "maximum", "where"])
def test_shape_mismatch_errors_name_both_shapes(fn, shapes):
    a, b = (Tensor(np.ones(s)) for s in shapes)
    with pytest.raises(ValueError) as info:
        fn(a, b)
    for s in shapes:
        assert str(s) in str(info.value)


@pytest.mark.parametrize("name", ["log", "sqrt"])
def test_log_and_sqrt_of_negative_raise_naming_the_index(name):
    with pytest.raises(ValueError, match=r"index \(1,\)"):
        getattr(Tensor(np.array([1.0, -2.0])), name)()


def test_negative_base_with_fractional_exponent_raises_instead_of_nan():
    with pytest.raises(ValueError, match=r"pow.*-2.0.*index \(1,\)"):
        Tensor(np.array([4.0, -2.0])) ** 0.5
    with pytest.raises(ValueError, match=r"index \(1, 1\)"):
        Tensor(np.array([[1.0], [-2.0]])) ** Tensor(np.array([2.0, 0.5]))
    # integer exponents of negative bases are fine: (-2)^2 = 4, (-2)^3 = -8
    np.testing.assert_array_equal((Tensor(np.array([-2.0])) ** 2).data, [4.0])
    np.testing.assert_array_equal((Tensor(np.array([-2.0])) ** Tensor(np.array([3.0]))).data, [-8.0])


@pytest.mark.parametrize("index", [-1, 4])
def test_take_along_axis_rejects_out_of_range_indices_instead_of_wrapping(index):
    with pytest.raises(ValueError, match=rf"{index}.*\(1, 0\).*\[0, 4\)"):
        ad.take_along_axis(np.ones((2, 4)), np.array([[0], [index]]), axis=1)


def test_non_integer_axis_is_a_type_error_not_truncated():
    with pytest.raises(TypeError, match="axis"):
        Tensor(np.ones((2, 3))).sum(axis=0.5)
    with pytest.raises(TypeError, match="axis"):
        Tensor(np.ones((2, 3))).mean(axis=(0, 1.0))


def test_out_of_range_axis_raises():
    with pytest.raises(ValueError, match="axis 2"):
        Tensor(np.ones((2, 3))).sum(axis=2)
    with pytest.raises(ValueError, match="axis -3"):
        Tensor(np.ones((2, 3))).mean(axis=-3)


def test_non_numeric_data_and_float_indices_are_type_errors():
    with pytest.raises(TypeError):
        Tensor(np.array(["a"]))
    with pytest.raises(TypeError):
        ad.take_along_axis(np.ones((2, 2)), np.array([[0.0], [1.0]]), 1)


@pytest.mark.parametrize("fn", [ad.logsumexp, ad.log_softmax])
@pytest.mark.parametrize("shape,axis", [((3, 0), -1), ((0, 2), 0), ((0,), None)])
def test_logsumexp_and_log_softmax_over_an_empty_axis_name_the_function_and_shape(fn, shape, axis):
    with pytest.raises(ValueError, match=rf"{fn.__name__}.*axis {axis}.*{re.escape(str(shape))}"):
        fn(np.zeros(shape), axis=axis)


def test_logsumexp_over_a_nonempty_axis_of_an_empty_batch_is_an_empty_result():
    assert ad.logsumexp(np.zeros((0, 3)), axis=-1).shape == (0,)   # no rows: nothing wrong


@pytest.mark.parametrize("fn", [ad.concatenate, ad.stack])
def test_concatenate_and_stack_of_mismatched_shapes_or_nothing_name_the_function_and_shapes(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: .*\[\(2, 3\), \(2, 2\)\]"):
        fn([Tensor(np.ones((2, 3))), np.ones((2, 2))], axis=0)
    with pytest.raises(ValueError, match=rf"{fn.__name__}: .*\[\]"):
        fn([])


def test_clip_with_inverted_bounds_raises():
    with pytest.raises(ValueError, match="bound"):
        ad.clip(np.ones(2), 1.0, -1.0)


def test_relu_of_nan_is_nan_with_zero_gradient_as_torch():
    x = ad.Tensor(np.array([np.nan, -1.0, 0.0, 2.0]), requires_grad=True)
    y = x.relu()
    assert np.isnan(y.data[0]) and y.data[1:].tolist() == [0.0, 0.0, 2.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 1.0]     # torch: threshold_backward, mask x > 0


# ----- properties of Tensor's methods (mutation testing) -----

OP_NAMES = [
    (lambda x: x + 1.0, "add"), (lambda x: 1.0 + x, "add"), (lambda x: x - 1.0, "sub"),
    (lambda x: 1.0 - x, "add"), (lambda x: x * 2.0, "mul"), (lambda x: 2.0 * x, "mul"),
    (lambda x: x / 2.0, "div"), (lambda x: 2.0 / x, "div"), (lambda x: -x, "neg"),
    (lambda x: x ** 2.0, "pow"), (lambda x: 2.0 ** x, "pow"), (lambda x: x @ np.ones(3), "matmul"),
    (lambda x: np.ones((2, 2)) @ x, "matmul"), (lambda x: x.exp(), "exp"),
    (lambda x: x.log(), "log"), (lambda x: x.sqrt(), "sqrt"), (lambda x: x.tanh(), "tanh"),
    (lambda x: x.relu(), "relu"), (lambda x: x.sum(), "sum"), (lambda x: x.sum(axis=0), "sum"),
    (lambda x: x.reshape(3, 2), "reshape"), (lambda x: x.transpose(), "transpose"),
    (lambda x: x.T, "transpose"), (lambda x: x[0], "getitem"), (lambda x: x.mean(), "mul"),
]


@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("fn,op", OP_NAMES, ids=[f"{i}_{op}" for i, (_, op) in enumerate(OP_NAMES)])
def test_each_primitive_names_its_node_after_its_operation(fn, op, requires_grad):
    # the name is recorded whether or not a graph is kept (a leaf has none)
    x = Tensor(rand(2, 3, low=0.5), requires_grad=requires_grad)
    assert x._op == ""
    assert fn(x)._op == op


def test_an_output_is_a_non_leaf_without_grad_and_requires_grad_is_a_bool():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([3.0, 4.0]))
    y = x * c
    constant = c * 2.0
    assert y.grad is None and y.requires_grad is True
    assert constant.grad is None and constant.requires_grad is False
    with ad.no_grad():
        assert (x * c).requires_grad is False
    y.sum().backward()
    assert y.grad is None                       # only leaves keep a .grad
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_an_output_that_needs_no_gradient_keeps_no_reference_to_its_operands():
    # no graph is kept for it: its operands (and their memory) are free once dropped
    import weakref
    data = np.ones(3)
    alive = weakref.ref(data)
    y = Tensor(data) * 2.0
    del data
    assert alive() is None
    np.testing.assert_array_equal(y.data, [2.0, 2.0, 2.0])


@pytest.mark.parametrize("other", [lambda v: Tensor(v), lambda v: v], ids=["tensor", "array"])
def test_comparisons_are_elementwise_boolean_arrays_strict_or_not(other):
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    y = other(np.array([2.0, 2.0, 2.0]))
    assert (x < y).tolist() == [True, False, False]
    assert (x <= y).tolist() == [True, True, False]
    assert (x > y).tolist() == [False, False, True]
    assert (x >= y).tolist() == [False, True, True]


def test_backward_casts_the_upstream_gradient_to_the_tensor_dtype():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    (x * x).backward(np.array([1.0, 10.0]))           # a float64 upstream gradient
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, np.array([2.0, 40.0], dtype=np.float32))


def test_each_node_applies_its_vjp_once_to_the_sum_of_its_consumers_gradients():
    # n = 3x feeds out = n + m directly and through m = 1e-16 n. The chain rule as written
    # sums n's incoming gradients first, 1 + 1e-16 = 1.0 in float64, then multiplies by 3
    # once: x.grad = 3.0 exactly. Applying n's VJP to each part separately would give
    # 3 + 3e-16 = 3.0000000000000004, so this pins down that every node is visited once.
    x = Tensor(np.array([1.0]), requires_grad=True)
    n = x * 3.0
    m = n * 1e-16
    (n + m).backward(np.array([1.0]))
    assert (1.0 + 1e-16) * 3.0 == 3.0 != 1.0 * 3.0 + 1e-16 * 3.0
    assert x.grad.tolist() == [3.0]


def test_a_tensor_that_receives_no_gradient_is_skipped_and_the_others_still_get_theirs():
    # where's condition is a parent of the node but receives no gradient (it only selects)
    cond = Tensor(np.array([1.0, 0.0, 1.0]), requires_grad=True)
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    ad.where(cond, a * 2.0, b * 3.0).sum().backward()
    assert cond.grad is None
    np.testing.assert_array_equal(a.grad, [2.0, 0.0, 2.0])
    np.testing.assert_array_equal(b.grad, [0.0, 3.0, 0.0])


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("constant_side", ["left", "right"])
def test_a_vjp_computes_no_gradient_for_an_operand_that_needs_none(op, constant_side):
    # The constant c of shape (1,) broadcasts against x of shape (2,); its gradient would be
    # the sum of an upstream gradient of two 1e308s, which overflows. Backward must not
    # compute it (and so raises no overflow), while x's own gradient is exact.
    fns = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
           "mul": lambda a, b: a * b, "div": lambda a, b: a / b}
    x = Tensor(np.ones(2), requires_grad=True)
    c = Tensor(np.ones(1))
    out = fns[op](c, x) if constant_side == "left" else fns[op](x, c)
    g = np.full(2, 1e308)
    with np.errstate(over="raise"):
        out.backward(g)
    # d/dx of c+x, c-x, c*x, c/x and x+c, x-c, x*c, x/c at x = c = 1
    sign = -1.0 if (op == "sub" and constant_side == "left") or (
        op == "div" and constant_side == "left") else 1.0
    np.testing.assert_array_equal(x.grad, sign * g)


@pytest.mark.parametrize("op,fn", [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b),
                                   ("mul", lambda a, b: a * b), ("div", lambda a, b: a / b),
                                   ("pow", lambda a, b: a ** b)])
def test_operands_that_do_not_broadcast_raise_naming_the_operation(op, fn):
    with pytest.raises(ValueError, match=rf"^{op}: .*\(2, 3\) and \(2,\)"):
        fn(Tensor(np.ones((2, 3))), Tensor(np.ones(2)))


def test_reflected_operators_compute_constant_op_tensor_and_keep_float32():
    x = Tensor(np.array([1.0, 2.0, 4.0], dtype=np.float32))
    cases = [(2.0 - x, [1.0, 0.0, -2.0]), (2.0 / x, [2.0, 1.0, 0.5]),
             (2.0 ** x, [2.0, 4.0, 16.0]), (2.0 * x, [2.0, 4.0, 8.0]), (2.0 + x, [3.0, 4.0, 6.0])]
    for out, expected in cases:
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.data, expected)


def test_pow_allows_zero_and_small_positive_bases_with_fractional_exponents():
    # only a negative base with a non-integer exponent is rejected; the -2 (with exponent 2)
    # makes the guard look, and 0 ** 0.5 = 0, 0.25 ** 0.5 = 0.5 must pass it
    a = Tensor(np.array([-2.0, 0.0, 0.25]))
    np.testing.assert_array_equal((a ** Tensor(np.array([2.0, 0.5, 0.5]))).data, [4.0, 0.0, 0.5])


def test_pow_exponent_gradient_is_zero_where_the_base_is_not_positive():
    # d(a^p)/dp = a^p log a, taken as 0 where a <= 0: (-2)^2, (-2)^3 and 0^0 = 1 all give 0
    p = Tensor(np.array([2.0, 3.0, 0.0]), requires_grad=True)
    (Tensor(np.array([-2.0, -2.0, 0.0])) ** p).sum().backward()
    assert p.grad.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("name,at_zero", [("log", -np.inf), ("sqrt", 0.0)])
def test_log_and_sqrt_accept_zero_silently_and_name_the_first_negative_entry(name, at_zero):
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # log(0) = -inf is the limit, not a divide-by-zero
        assert getattr(Tensor(np.array([0.0, 0.5])), name)().data[0] == at_zero
    with pytest.raises(ValueError, match=rf"^{name}: .*-2\.0 at index \(2,\)"):
        getattr(Tensor(np.array([0.0, 0.5, -2.0])), name)()


def test_relu_maps_every_non_positive_input_including_negative_zero_to_positive_zero():
    out = Tensor(np.array([-0.0, -1.0, 0.0])).relu().data
    assert out.tolist() == [0.0, 0.0, 0.0] and not np.signbit(out).any()


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_reduction_axis_errors_name_the_reduction(reduce):
    with pytest.raises(ValueError, match=rf"^{reduce}: axis 2"):
        getattr(Tensor(np.ones((2, 3))), reduce)(axis=2)
    with pytest.raises(TypeError, match=rf"^{reduce}: axis"):
        getattr(Tensor(np.ones((2, 3))), reduce)(axis=0.5)


def test_mean_over_an_empty_axis_names_mean_and_the_shape():
    with pytest.raises(ValueError, match=r"^mean: .*\(2, 0\)"):
        Tensor(np.ones((2, 0))).mean(axis=1)


def test_reshape_and_transpose_give_numpys_shapes_and_values():
    x = rand(2, 3, 4)
    t = Tensor(x)
    for out, expected in [(t.reshape((6, 4)), x.reshape(6, 4)), (t.reshape([4, 6]), x.reshape(4, 6)),
                          (t.reshape(3, 8), x.reshape(3, 8)),
                          (t.transpose((2, 0, 1)), x.transpose(2, 0, 1)),
                          (t.transpose([1, 2, 0]), x.transpose(1, 2, 0)),
                          (t.transpose(1, 0, 2), x.transpose(1, 0, 2)), (t.T, x.transpose(2, 1, 0))]:
        assert out.shape == expected.shape
        np.testing.assert_array_equal(out.data, expected)


def test_method_forms_equal_the_numpy_formulas_with_the_documented_defaults():
    x = rand(2, 3)
    t = Tensor(x)
    lse = lambda axis, keepdims: np.log(np.exp(x).sum(axis=axis, keepdims=keepdims))
    np.testing.assert_allclose(t.logsumexp().data, lse(-1, False), rtol=1e-14)
    np.testing.assert_allclose(t.logsumexp(0).data, lse(0, False), rtol=1e-14)
    np.testing.assert_allclose(t.logsumexp(0, keepdims=True).data, lse(0, True), rtol=1e-14)
    assert t.logsumexp(0, keepdims=True).shape == (1, 3)
    np.testing.assert_allclose(t.log_softmax().data, x - lse(-1, True), rtol=1e-14)
    np.testing.assert_allclose(t.log_softmax(0).data, x - lse(0, True), rtol=1e-14)
    np.testing.assert_array_equal(t.clip(-0.5, 0.25).data, np.clip(x, -0.5, 0.25))


def test_repr_shows_the_data_and_requires_grad_only_when_set():
    assert repr(Tensor(np.array([1.0, 2.0]))) == "Tensor(array([1., 2.]))"
    assert repr(Tensor(np.array([1.0]), requires_grad=True)) == \
        "Tensor(array([1.]), requires_grad=True)"


def test_repr_of_a_graph_node_names_the_operation_that_made_it():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert repr(x * 3.0) == "Tensor(array([3., 6.]), requires_grad=True, op='mul')"
    assert repr(x + 1.0) == "Tensor(array([2., 3.]), requires_grad=True, op='add')"
    with ad.no_grad():           # no graph, so no operation to name
        assert repr(x * 3.0) == "Tensor(array([3., 6.]))"


def test_backward_of_a_constant_says_nothing_requires_grad():
    with pytest.raises(RuntimeError, match=r"^backward\(\): .* with requires_grad=True .*no_grad\)$"):
        (Tensor(np.ones(1)) * 2.0).backward()


@pytest.mark.parametrize("shapes", [((), (2,)), ((2,), ())])
def test_matmul_of_a_zero_dimensional_operand_raises_naming_both_shapes(shapes):
    a, b = (Tensor(np.ones(s)) for s in shapes)
    with pytest.raises(ValueError, match=rf"^matmul: .*{re.escape(str(shapes[0]))} and "
                                         rf"{re.escape(str(shapes[1]))}"):
        a @ b


@pytest.mark.parametrize("shape,ok", [((), True), ((1, 1), True), ((2,), False), ((1, 2), False)])
def test_backward_without_a_gradient_needs_exactly_one_element(shape, ok):
    x = Tensor(np.full(shape, 3.0), requires_grad=True)
    if ok:
        (x * x).backward()
        np.testing.assert_array_equal(x.grad, np.full(shape, 6.0))
    else:
        with pytest.raises(ValueError, match=rf"^backward\(\) .*{re.escape(str(shape))}"):
            (x * x).backward()
