"""Specification of ppo_ref.gradcheck: it passes correct gradients, and catches a wrong
vector-Jacobian product, reporting which input and which element."""
import warnings

import numpy as np
import pytest

from ppo_ref.autodiff import Tensor
from ppo_ref.gradcheck import GradcheckReport, gradcheck, numerical_gradient


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


# ----- the report's numbers, bounds and ties --------------------------------------------------

def scalar_with_gradient(value):
    """f(x) = x (a one-element input at 0, so the central difference is exactly 1.0), with a
    VJP that claims the gradient is `value`."""
    def fn(x):
        return Tensor._make(x.data.sum(), (x,), lambda g: (np.full(x.shape, value) * g,), "claimed")
    return fn


def test_non_scalar_output_is_projected_on_default_rng_seed_normal_draws():
    # L = sum(y * v), v = default_rng(seed).standard_normal(y.shape): for y = x^2 with the VJP
    # off by 1% at element (1, 2) (x = 6 there), the analytic and numeric gradients there are
    # 1.01 * 12 v[1, 2] and 12 v[1, 2].
    x = np.arange(1.0, 7.0).reshape(2, 3)
    for kwargs, seed in (({}, 0), ({"seed": 3}, 3)):
        v = np.random.default_rng(seed).standard_normal((2, 3))
        report = gradcheck(square_with_wrong_vjp_at((1, 2)), [x], **kwargs)
        np.testing.assert_allclose(report.analytic, 1.01 * 12.0 * v[1, 2], rtol=1e-12)
        np.testing.assert_allclose(report.numeric, 12.0 * v[1, 2], rtol=1e-8)
    (g,) = numerical_gradient(lambda t: t * t, [x], projection=v)
    np.testing.assert_allclose(g, 2.0 * x * v, rtol=1e-8)


def test_an_element_exactly_at_the_tolerance_passes_and_one_ulp_inside_fails():
    # analytic 2, numeric exactly 1: |a - n| = 1 and scale = max(|a|, |n|) = 2
    fn = scalar_with_gradient(2.0)
    for rtol, atol in ((0.0, 1.0), (0.5, 0.0)):       # atol + rtol * 2 = 1: at the bound
        report = gradcheck(fn, [np.zeros(1)], rtol=rtol, atol=atol)
        assert report.passed and report.max_abs_error == 1.0
    assert not gradcheck(fn, [np.zeros(1)], rtol=0.0, atol=np.nextafter(1.0, 0.0)).passed
    assert not gradcheck(fn, [np.zeros(1)], rtol=np.nextafter(0.5, 0.0), atol=0.0).passed


def test_relative_error_is_error_over_the_larger_gradient_and_skips_gradients_within_atol():
    # f = 0.2 x, numeric 0.2 (up to rounding), analytic 0.22: rel = |a - n| / max(|a|, |n|) = 0.02 / 0.22
    def fn(x):
        return Tensor._make(0.2 * x.data.sum(), (x,), lambda g: (np.full(x.shape, 0.22) * g,), "claimed")
    report = gradcheck(fn, [np.zeros(1)])
    np.testing.assert_allclose(report.max_rel_error, 0.02 / 0.22, rtol=1e-8)
    # analytic 2, numeric 1: scale 2 is not above atol = 2, so the element counts as zero-gradient
    report = gradcheck(scalar_with_gradient(2.0), [np.zeros(1)], atol=2.0)
    assert report.max_rel_error == 0.0 and report.max_abs_error == 1.0
    report = gradcheck(scalar_with_gradient(2.0), [np.zeros(1)], atol=np.nextafter(2.0, 0.0))
    assert report.max_rel_error == 0.5


def test_zero_gradients_pass_with_zero_errors_and_no_division_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = gradcheck(lambda t: (t * 0.0).sum(), [np.ones(3)])
    assert report.passed and report.max_abs_error == 0.0 and report.max_rel_error == 0.0


def test_a_passing_report_locates_the_element_closest_to_failing():
    x = np.array([1.0, 2.0, -3.0])
    report = gradcheck(lambda t: (t * t * t).sum(), [x])
    assert report.passed and report.worst_input == 0 and report.worst_index in {(0,), (1,), (2,)}
    np.testing.assert_allclose(report.analytic, 3.0 * x[report.worst_index] ** 2, rtol=1e-14)
    np.testing.assert_allclose(report.numeric, 3.0 * x[report.worst_index] ** 2, rtol=1e-8)


def test_at_ties_the_first_input_is_reported():
    # two identical inputs with the identical wrong VJP: every error ties, input 0 is named
    bad = square_with_wrong_vjp_at((1,))
    x = np.array([1.0, 3.0])
    report = gradcheck(lambda a, b: bad(a).sum() + bad(b).sum(), [x, x.copy()])
    assert not report.passed
    assert report.worst_input == 0 and report.max_abs_at == (0, (1,)) and report.max_rel_at == (0, (1,))


def test_empty_and_single_element_inputs_are_checked_like_any_other():
    bad = square_with_wrong_vjp_at((0,))
    # an empty input first does not end the check: the wrong single-element input after it fails
    report = gradcheck(lambda e, a: e.sum() + bad(a).sum(), [np.zeros(0), np.array([2.0])])
    assert not report.passed and report.worst_input == 1 and report.worst_index == (0,)
    # only empty inputs: nothing to compare, a pass at input 0 with zero errors
    report = gradcheck(lambda e: e.sum(), [np.zeros((0, 2))])
    assert report.passed and (report.worst_input, report.worst_index) == (0, ())
    assert (report.analytic, report.numeric, report.max_abs_error, report.max_rel_error) == (0, 0, 0, 0)
    assert report.max_abs_at == (0, ()) and report.max_rel_at == (0, ())


def test_infinite_analytic_and_numeric_gradients_fail_without_a_numpy_warning():
    # f jumps from 0 to inf at x = 1: the central difference is inf, and the VJP claims inf too;
    # inf - inf is nan, which is not agreement.
    def fn(x):
        return Tensor._make(np.where(x.data > 1.0, np.inf, 0.0).sum(), (x,),
                            lambda g: (np.full(x.shape, np.inf),), "step_to_inf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = gradcheck(fn, [np.ones(1)])
    assert not report.passed and report.numeric == np.inf and report.analytic == np.inf
    assert report.max_abs_error == np.inf and report.max_rel_error == np.inf


def test_gradients_near_the_float64_maximum_are_compared_without_overflow():
    assert gradcheck(lambda t: (t * 1e308).sum(), [np.array([1.0, -0.5])]).passed


def test_a_nan_gradient_has_infinite_relative_error_at_its_index():
    def fn(x):
        def vjp(g):
            grad = 2.0 * g
            grad[2] = np.nan
            return (grad,)
        return Tensor._make(2.0 * x.data, (x,), vjp, "nan_vjp")
    report = gradcheck(fn, [np.ones(3)])
    assert report.max_rel_error == np.inf and report.max_rel_at == (0, (2,))


def test_inputs_may_be_tensors_lists_or_python_numbers():
    for x in (Tensor(np.array([0.5, -2.0])), [0.5, -2.0], 0.5):
        report = gradcheck(lambda t: (t * t).sum(), [x])
        assert report.passed
        np.testing.assert_allclose(report.analytic, 2.0 * np.asarray(x.data if isinstance(x, Tensor)
                                                                     else x)[report.worst_index])


def test_report_text_names_the_verdict_and_each_location():
    report = GradcheckReport(passed=True, max_abs_error=0.25, max_rel_error=0.125, worst_input=2,
                             worst_index=(4,), analytic=1.5, numeric=1.25, rtol=1e-6, atol=1e-8,
                             max_abs_at=(1, (2, 3)), max_rel_at=(3, (5,)))
    text = str(report)
    assert text.startswith("gradcheck passed: ")
    assert "max abs error 2.500e-01 (input 1 index (2, 3))" in text
    assert "max rel error 1.250e-01 (input 3 index (5,))" in text
    assert "input 2 index (4,), analytic 1.5 vs numeric 1.25" in text
    report.passed = False
    assert str(report).startswith("gradcheck FAILED: ")


def test_tolerances_may_be_zero_but_not_negative_naming_them():
    gradcheck(lambda t: t.sum(), [np.ones(2)], rtol=0.0, atol=0.0)
    with pytest.raises(ValueError, match=r"rtol -5e-324"):
        gradcheck(lambda t: t.sum(), [np.ones(2)], rtol=-5e-324)
    with pytest.raises(ValueError, match=r"atol -5e-324"):
        gradcheck(lambda t: t.sum(), [np.ones(2)], atol=-5e-324)


def test_errors_about_fn_name_gradcheck_fn_and_what_it_returned():
    with pytest.raises(TypeError, match=r"^gradcheck: fn.*got float"):
        gradcheck(lambda t: 1.0, [np.ones(2)])
    with pytest.raises(ValueError, match=r"^gradcheck: fn.*Tensors"):
        gradcheck(lambda t: Tensor(np.ones(1)), [np.ones(2)])
