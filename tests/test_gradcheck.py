"""Specification of ppo_ref.gradcheck: it passes correct gradients, and catches a wrong
vector-Jacobian product, reporting which input and which element."""
import numpy as np
import pytest

from ppo_ref.autodiff import Tensor
from ppo_ref.gradcheck import gradcheck, numerical_gradient


def square_with_wrong_vjp_at(bad_index):
    """y = x^2 elementwise, but the VJP is off by 1% at one element of x."""
    def fn(x):
        def vjp(g):
            grad = 2.0 * x.data * g
            grad[bad_index] *= 1.01
            return (grad,)
        return Tensor._make(x.data ** 2, (x,), vjp, "bad_square")
    return fn


def test_correct_gradients_pass_with_tiny_errors():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    report = gradcheck(lambda x, w: (x @ w).tanh().sum(), [x, w])
    assert report.passed, str(report)
    assert report.max_abs_error < 1e-8 and report.max_rel_error < 1e-6


def test_wrong_vjp_is_caught_and_located():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    report = gradcheck(square_with_wrong_vjp_at((1, 2)), [x])
    assert not report.passed
    assert report.worst_input == 0 and report.worst_index == (1, 2)
    # element (1, 2) holds 6: the true gradient (projected) is 12 * v, the wrong one 1.01 times that
    np.testing.assert_allclose(report.analytic / report.numeric, 1.01, rtol=1e-6)
    np.testing.assert_allclose(report.max_rel_error, 0.01 / 1.01, rtol=1e-4)
    assert "FAILED" in str(report) and "(1, 2)" in str(report)


def test_wrong_gradient_in_second_input_is_attributed_to_it():
    bad = square_with_wrong_vjp_at((0,))
    report = gradcheck(lambda a, b: a.sum() + bad(b).sum(), [np.ones(2), np.array([3.0, 4.0])])
    assert not report.passed
    assert report.worst_input == 1 and report.worst_index == (0,)


def test_numerical_gradient_matches_closed_form():
    x = np.array([[0.5, -1.0], [2.0, 3.0]])
    (g,) = numerical_gradient(lambda t: (t * t * t).sum(), [x])
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-8)


def test_non_scalar_output_is_checked_through_a_projection():
    x = np.array([0.3, -0.7, 1.1])
    assert gradcheck(lambda t: t.exp(), [x]).passed
    assert not gradcheck(square_with_wrong_vjp_at((2,)), [x]).passed


def test_float32_inputs_are_checked_in_float64():
    x = np.array([0.3, -0.7], dtype=np.float32)
    assert gradcheck(lambda t: (t * t).sum(), [x]).passed


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"input 1.*index \(1,\)"):
        gradcheck(lambda s, t: (s * t).sum(), [np.ones(2), np.array([0.0, np.nan])])
    with pytest.raises(TypeError, match="Tensor"):
        gradcheck(lambda t: 1.0, [np.ones(2)])
    for eps in (0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="eps"):
            gradcheck(lambda t: t.sum(), [np.ones(2)], eps=eps)
    with pytest.raises(ValueError, match="rtol"):
        gradcheck(lambda t: t.sum(), [np.ones(2)], rtol=float("nan"))
    with pytest.raises(ValueError, match="fn"):
        gradcheck(lambda t: Tensor(np.ones(1)), [np.ones(2)])


def test_report_locates_the_worst_absolute_and_the_worst_relative_error_separately():
    # Input 0: y = x^2 with its VJP off by 1% at element 1 (|x| = 10: abs error 0.2 |v|).
    # Input 1: y = z^2 with its VJP off by 5% at element 0 (|z| = 0.5: abs error 0.05 |v|).
    # So the worst absolute error sits in input 0, the worst relative one in input 1.
    x, z = np.array([1.0, 10.0]), np.array([0.5, 1.0])
    report = gradcheck(lambda a, b: square_with_wrong_vjp_at((1,))(a).sum()
                       + square_with_factor_at((0,), 1.05)(b).sum(), [x, z])
    assert not report.passed
    assert report.max_abs_at == (0, (1,)) and report.max_rel_at == (1, (0,))
    np.testing.assert_allclose(report.max_abs_error, 0.01 * 20.0, rtol=1e-6)
    np.testing.assert_allclose(report.max_rel_error, 0.05 / 1.05, rtol=1e-6)
    assert "input 0 index (1,)" in str(report) and "input 1 index (0,)" in str(report)


def square_with_factor_at(bad_index, factor):
    def fn(x):
        def vjp(g):
            grad = 2.0 * x.data * g
            grad[bad_index] *= factor
            return (grad,)
        return Tensor._make(x.data ** 2, (x,), vjp, "bad_square")
    return fn


def test_a_nan_gradient_fails_instead_of_passing():
    # nan compares false with everything: a naive "error > tolerance" test would let it through.
    def fn(x):
        def vjp(g):
            grad = 2.0 * g
            grad[1] = np.nan
            return (grad,)
        return Tensor._make(2.0 * x.data, (x,), vjp, "nan_vjp")
    report = gradcheck(fn, [np.ones(3)])
    assert not report.passed
    assert report.worst_index == (1,) and np.isnan(report.analytic)
    assert report.max_abs_error == np.inf


def test_a_gradient_of_the_wrong_shape_is_an_error_not_a_broadcast_comparison():
    def fn(x):   # a VJP that forgets to sum a broadcast gradient back to x's shape (3,)
        return Tensor._make(x.data + np.zeros((2, 3)), (x,), lambda g: (g,), "bad_broadcast")
    with pytest.raises(ValueError, match=r"input 0.*\(2, 3\).*\(3,\)"):
        gradcheck(fn, [np.ones(3)])
