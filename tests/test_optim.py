"""Specification of ppo_ref.optim: Adam against a trajectory computed element by element in
plain Python (not by the code under test), clip_grad_norm against hand-computed numbers,
state_dict resumption, and hyperparameter validation."""
import math

import numpy as np
import pytest

from ppo_ref.autodiff import Tensor
from ppo_ref.optim import Adam, clip_grad_norm, linear_schedule

# A quadratic loss L = sum(0.5 * a * theta^2 + c * theta) has gradient a * theta + c.
A = [0.5, 2.0, -1.0, 3.0, 0.1]
C = [1.0, -0.5, 0.3, 0.0, 2.0]
THETA0 = [0.3, -1.2, 2.0, 0.05, -0.7]


def quadratic_grad(theta):
    return [a * t + c for a, t, c in zip(A, theta, C)]


def naive_adam(theta, grad_fn, lrs, beta1, beta2, eps):
    """Adam written out as in Kingma & Ba (2015), Algorithm 1, one float at a time."""
    theta = list(theta)
    m, v = [0.0] * len(theta), [0.0] * len(theta)
    for t, lr in enumerate(lrs, start=1):
        g = grad_fn(theta)
        for i in range(len(theta)):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = v[i] / (1 - beta2 ** t)
            theta[i] = theta[i] - lr * m_hat / (math.sqrt(v_hat) + eps)
    return theta


def split_params():
    """THETA0 as two Tensors of shapes (2,) and (3,), as an optimiser sees a network."""
    return [Tensor(np.array(THETA0[:2]), requires_grad=True),
            Tensor(np.array(THETA0[2:]), requires_grad=True)]


def set_quadratic_grads(params):
    g = quadratic_grad(np.concatenate([p.data for p in params]).tolist())
    params[0].grad, params[1].grad = np.array(g[:2]), np.array(g[2:])


def run(opt, params, lrs):
    for lr in lrs:
        opt.lr = lr
        opt.zero_grad()
        set_quadratic_grads(params)
        opt.step()
    return np.concatenate([p.data for p in params])


# ----- Adam ---------------------------------------------------------------------------------

@pytest.mark.parametrize("betas,eps", [((0.9, 0.999), 1e-8), ((0.5, 0.9), 1e-3), ((0.0, 0.99), 0.1)])
def test_adam_matches_a_hand_written_multi_step_trajectory(betas, eps):
    lrs = [0.1] * 8
    params = split_params()
    got = run(Adam(params, lr=0.1, betas=betas, eps=eps), params, lrs)
    expected = naive_adam(THETA0, quadratic_grad, lrs, *betas, eps)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


def test_adam_with_learning_rate_changed_between_steps():
    lrs = [0.1, 0.05, 0.05, 0.01, 0.2]
    params = split_params()
    got = run(Adam(params, lr=1.0), params, lrs)
    np.testing.assert_allclose(got, naive_adam(THETA0, quadratic_grad, lrs, 0.9, 0.999, 1e-8),
                               rtol=1e-13, atol=1e-15)


def test_adam_first_step_is_lr_times_sign_whatever_the_gradient_scale():
    # Bias correction: m_hat = g, v_hat = g^2 at t = 1, so the step is lr * g / (|g| + eps).
    for g in (1e-6, 1.0, 1e6, -3.0):
        p = Tensor(np.array([1.0]), requires_grad=True)
        p.grad = np.array([g])
        Adam([p], lr=0.01, eps=1e-300).step()  # eps far below |g|
        np.testing.assert_allclose(p.data, [1.0 - 0.01 * math.copysign(1.0, g)], rtol=1e-15)


def test_adam_constant_gradient_gives_constant_steps():
    # With a constant gradient g, m_hat = g and v_hat = g^2 at every step.
    p = Tensor(np.array([0.0]), requires_grad=True)
    opt = Adam([p], lr=0.1, eps=0.5)
    for t in range(1, 6):
        p.grad = np.array([2.0])
        opt.step()
        np.testing.assert_allclose(p.data, [-t * 0.1 * 2.0 / (2.0 + 0.5)], rtol=1e-13)


def test_adam_eps_is_added_outside_the_square_root():
    p = Tensor(np.array([0.0]), requires_grad=True)
    p.grad = np.array([1e-3])
    Adam([p], lr=1.0, eps=1e-3).step()
    np.testing.assert_allclose(p.data, [-1e-3 / (1e-3 + 1e-3)], rtol=1e-14)  # -0.5
    # eps inside the root would have given -1e-3 / sqrt(1e-6 + 1e-3) ~ -0.0316


def test_adam_skips_parameters_without_gradient_and_keeps_their_own_step_count():
    a, b = Tensor(np.array([1.0]), requires_grad=True), Tensor(np.array([1.0]), requires_grad=True)
    opt = Adam([a, b], lr=0.1, betas=(0.5, 0.75), eps=1e-300)
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    a.grad, b.grad = np.array([3.0]), None
    opt.step()
    np.testing.assert_array_equal(b.data, [0.9])  # untouched by the second step
    assert opt.steps == [2, 1]
    a.grad, b.grad = None, np.array([3.0])
    opt.step()
    # b's second step is its t = 2: m = 0.5*0.5*1 + 0.5*3 = 1.75, v = 0.75*0.25*1 + 0.25*9 = 2.4375,
    # m_hat = 1.75 / 0.75, v_hat = 2.4375 / 0.4375
    expected = 0.9 - 0.1 * (1.75 / 0.75) / math.sqrt(2.4375 / 0.4375)
    np.testing.assert_allclose(b.data, [expected], rtol=1e-14)
    # a saw the same gradients (1 then 3) at its steps 1 and 2 and none at the third call
    np.testing.assert_allclose(a.data, [expected], rtol=1e-14)
    assert opt.steps == [2, 2]


def test_zero_grad_sets_grads_to_none():
    params = split_params()
    set_quadratic_grads(params)
    Adam(params).zero_grad()
    assert all(p.grad is None for p in params)


def test_adam_keeps_float32_parameters_float32():
    p = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    opt = Adam([p], lr=0.1)
    p.grad = np.ones(3, dtype=np.float32)
    opt.step()
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, 0.9, rtol=1e-6)


def test_state_dict_round_trip_resumes_identically(tmp_path):
    params = split_params()
    opt = Adam(params, lr=0.05, betas=(0.8, 0.95), eps=1e-6)
    run(opt, params, [0.05] * 3)
    np.savez(tmp_path / "adam.npz", **opt.state_dict())
    saved = [p.data.copy() for p in params]
    straight_on = run(opt, params, [0.05] * 4)

    resumed = [Tensor(a, requires_grad=True) for a in saved]
    opt2 = Adam(resumed, lr=1.0)
    with np.load(tmp_path / "adam.npz") as f:
        opt2.load_state_dict(dict(f))
    assert opt2.lr == 0.05 and opt2.betas == (0.8, 0.95) and opt2.eps == 1e-6
    np.testing.assert_array_equal(run(opt2, resumed, [0.05] * 4), straight_on)


def test_state_dict_is_a_snapshot():
    params = split_params()
    opt = Adam(params)
    run(opt, params, [0.1])
    state = opt.state_dict()
    m0 = state["m.0"].copy()
    run(opt, params, [0.1])
    np.testing.assert_array_equal(state["m.0"], m0)


def test_load_state_dict_rejects_wrong_keys_and_shapes():
    params = split_params()
    state = Adam(params).state_dict()
    bad = dict(state)
    del bad["v.1"]
    with pytest.raises(ValueError, match=r"missing keys \['v.1'\]"):
        Adam(params).load_state_dict(bad)
    bad = dict(state, **{"m.0": np.zeros(3)})
    with pytest.raises(ValueError, match=r"m.0.*\(3,\).*\(2,\)"):
        Adam(params).load_state_dict(bad)
    with pytest.raises(ValueError, match="betas"):
        Adam(params).load_state_dict(dict(state, betas=np.array([1.5, 0.9])))


@pytest.mark.parametrize("key,value,message", [
    ("m.1", np.array([0.0, np.nan, 0.0]), "m.1"),
    ("v.0", np.array([np.inf, 0.0]), "v.0"),
    ("v.1", np.array([0.0, -1e-3, 0.0]), r"v.1.*>= 0"),  # sqrt(v) = nan
    ("steps", np.array([2, -1]), "steps"),
    ("steps", np.array([2.0, 1.5]), "steps"),   # not silently truncated to 1
])
def test_load_state_dict_rejects_state_that_would_make_nan_steps_and_changes_nothing(key, value,
                                                                                      message):
    params = split_params()
    opt = Adam(params, lr=0.05)
    run(opt, params, [0.05] * 2)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(dict(before, **{key: value}))
    after = opt.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("kwargs,name", [
    ({"lr": 0.0}, "lr"), ({"lr": -1e-3}, "lr"), ({"lr": float("nan")}, "lr"),
    ({"betas": (1.0, 0.999)}, "betas"), ({"betas": (0.9, -0.1)}, "betas"), ({"betas": (0.9,)}, "betas"),
    ({"eps": -1e-8}, "eps"), ({"eps": 0.0}, "eps"), ({"eps": float("inf")}, "eps"),
])
def test_adam_rejects_bad_hyperparameters_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Adam(split_params(), **kwargs)


@pytest.mark.parametrize("kwargs,name", [
    ({"lr": "0.1"}, "lr"), ({"lr": None}, "lr"), ({"lr": np.array([0.1, 0.2])}, "lr"),
    ({"eps": "1e-8"}, "eps"), ({"eps": True}, "eps"),
    ({"betas": 0.9}, "betas"), ({"betas": None}, "betas"), ({"betas": ("0.9", 0.999)}, "betas"),
])
def test_adam_hyperparameters_of_the_wrong_type_are_type_errors_naming_them(kwargs, name):
    with pytest.raises(TypeError, match=f"Adam: {name}"):
        Adam(split_params(), **kwargs)
    if name == "lr":
        with pytest.raises(TypeError, match="Adam: lr"):
            Adam(split_params()).lr = kwargs["lr"]


def test_adam_accepts_numpy_scalars_and_zero_dimensional_arrays_as_plain_floats():
    opt = Adam(split_params(), lr=np.array(0.5), betas=np.array([0.5, 0.25]), eps=np.float32(0.125))
    assert (opt.lr, opt.betas, opt.eps) == (0.5, (0.5, 0.25), 0.125)
    assert all(type(x) is float for x in (opt.lr, *opt.betas, opt.eps))


def test_adam_lr_setter_allows_zero_but_not_negative():
    opt = Adam(split_params())
    opt.lr = 0.0  # the end of a linearly annealed schedule
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -0.1


def test_adam_rejects_bad_params_and_grad_shapes():
    with pytest.raises(ValueError, match="empty"):
        Adam([])
    with pytest.raises(TypeError, match=r"params\[1\]"):
        Adam([Tensor(np.ones(2)), np.ones(2)])
    p = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="params"):
        Adam([p, p])
    p.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        Adam([p]).step()


def adam_with_one_bad_gradient(shapes, dtype, index, value, one_missing):
    """Adam over parameters of `shapes` (ones), gradients 0.5 except params[1].grad[index] = value;
    params[2] without a gradient when one_missing (Adam's per-parameter loop instead of the flat path)."""
    params = [Tensor(np.ones(shape, dtype), requires_grad=True) for shape in shapes]
    opt = Adam(params, lr=0.1)
    for p in params:
        p.grad = np.full(p.shape, 0.5, dtype)
    params[1].grad[index] = value
    if one_missing:
        params[2].grad = None
    return params, opt


@pytest.mark.parametrize("one_missing", [False, True])   # the flat path and the per-parameter loop
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_adam_rejects_a_nonfinite_gradient_and_changes_nothing(bad, one_missing):
    params, opt = adam_with_one_bad_gradient([2, (2, 2), 3], np.float64, (1, 0), bad, one_missing)
    with pytest.raises(ValueError, match=r"params\[1\].*index \(1, 0\)"):
        opt.step()
    assert all(np.array_equal(p.data, np.ones(p.shape)) for p in params)
    assert opt.steps == [0, 0, 0] and all(not m.any() for m in opt.m)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("one_missing", [False, True])   # the flat path and the per-parameter loop
@pytest.mark.parametrize("dtype,big", [(np.float64, 1e200), (np.float32, 1e20)])
def test_adam_rejects_a_gradient_whose_square_overflows_and_changes_nothing(dtype, big, one_missing):
    # v = g^2 would be inf, and the step m / (sqrt(inf) + eps) = 0 would freeze the element
    params, opt = adam_with_one_bad_gradient([2, 3, 1], dtype, 2, big, one_missing)
    with pytest.raises(ValueError, match=r"params\[1\].*index \(2,\).*overflow"):
        opt.step()
    assert all(np.array_equal(p.data, np.ones(p.shape)) for p in params)
    assert opt.steps == [0, 0, 0] and all(not v.any() for v in opt.v)


def test_adam_still_steps_with_a_large_gradient_whose_square_is_finite():
    p = Tensor(np.zeros(1), requires_grad=True)
    p.grad = np.array([1e150])           # g^2 = 1e300 < 1.8e308; the first step is lr * sign(g)
    Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [-0.1], rtol=1e-12)


# ----- clip_grad_norm ------------------------------------------------------------------------

def three_four_twelve():
    """Two parameters whose gradients [3, 4] and [[12]] have global norm sqrt(9+16+144) = 13."""
    a, b = Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros((1, 1)), requires_grad=True)
    a.grad, b.grad = np.array([3.0, 4.0]), np.array([[12.0]])
    return a, b


def test_clip_grad_norm_below_threshold_leaves_gradients_alone():
    a, b = three_four_twelve()
    norm = clip_grad_norm([a, b], max_norm=26.0)
    assert isinstance(norm, float) and norm == 13.0
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])
    np.testing.assert_array_equal(b.grad, [[12.0]])


def test_clip_grad_norm_above_threshold_scales_by_max_norm_over_norm_plus_1e6():
    a, b = three_four_twelve()
    norm = clip_grad_norm([a, b], max_norm=6.5)
    assert norm == 13.0  # the norm before clipping
    coef = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3.0 * coef, 4.0 * coef], rtol=1e-15)
    np.testing.assert_allclose(b.grad, [[12.0 * coef]], rtol=1e-15)


def test_clip_grad_norm_exactly_at_threshold_still_scales_by_the_1e6_margin():
    a, b = three_four_twelve()
    clip_grad_norm([a, b], max_norm=13.0)
    np.testing.assert_allclose(a.grad, [3.0 * 13.0 / 13.000001, 4.0 * 13.0 / 13.000001], rtol=1e-15)
    assert a.grad[0] < 3.0


def test_clip_grad_norm_skips_missing_gradients():
    a, b = three_four_twelve()
    c = Tensor(np.ones(4), requires_grad=True)
    assert clip_grad_norm([a, c, b], max_norm=1.0) == 13.0
    assert c.grad is None
    c.grad = None
    assert clip_grad_norm([c], max_norm=1.0) == 0.0


def test_clip_grad_norm_rejects_nonfinite_gradients_and_bad_max_norm():
    a, b = three_four_twelve()
    b.grad = np.array([[np.inf]])
    with pytest.raises(ValueError, match=r"params\[1\]"):
        clip_grad_norm([a, b], 1.0)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([a], 0.0)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_clip_grad_norm_rejects_a_global_norm_that_overflows_instead_of_zeroing_the_gradients():
    a, b = three_four_twelve()
    b.grad = np.array([[-1e200]])        # finite, but sum(g^2) = inf: max_norm / inf = 0
    with pytest.raises(ValueError, match=r"params\[1\].*1e\+200"):
        clip_grad_norm([a, b], 1.0)
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])


@pytest.mark.parametrize("bad", ["1", None, True, np.array([1.0, 2.0])])
def test_clip_grad_norm_max_norm_of_the_wrong_type_is_a_type_error_naming_it(bad):
    with pytest.raises(TypeError, match="max_norm"):
        clip_grad_norm(three_four_twelve(), bad)


def test_clip_grad_norm_accepts_an_infinite_or_zero_dimensional_max_norm():
    assert clip_grad_norm(three_four_twelve(), np.inf) == 13.0           # inf: no clipping
    a, b = three_four_twelve()
    clip_grad_norm([a, b], np.array(6.5))
    np.testing.assert_allclose(b.grad, [[12.0 * 6.5 / (13.0 + 1e-6)]], rtol=1e-15)


# ----- linear_schedule ---------------------------------------------------------------------

def test_linear_schedule_interpolates_from_start_to_end():
    assert linear_schedule(3e-4, 0.0, 0.0) == 3e-4
    assert linear_schedule(3e-4, 0.0, 1.0) == 0.0
    assert linear_schedule(1.0, 0.5, 0.25) == 0.875
    with pytest.raises(ValueError, match="progress"):
        linear_schedule(1.0, 0.0, 1.5)


@pytest.mark.parametrize("args,name", [(("3e-4", 0.0, 0.5), "start"), ((3e-4, None, 0.5), "end"),
                                       ((3e-4, 0.0, "0.5"), "progress"), ((3e-4, 0.0, None), "progress")])
def test_linear_schedule_arguments_of_the_wrong_type_are_type_errors_naming_them(args, name):
    with pytest.raises(TypeError, match=f"linear_schedule: {name}"):
        linear_schedule(*args)


# ----- Adam: defaults, shapes, dtypes and the two update paths -------------------------------

def test_adam_defaults_are_torchs():
    opt = Adam(split_params())
    assert (opt.lr, opt.betas, opt.eps) == (3e-4, (0.9, 0.999), 1e-8)


def naive_adam_per_element(theta0, grads, lr, betas, eps):
    """naive_adam with a fixed list of gradient vectors, one per step (flat lists of floats)."""
    it = iter(grads)
    return naive_adam(theta0, lambda theta: next(it), [lr] * len(grads), *betas, eps)


def matrix_and_vector_parameters(seed: int, steps: int):
    """A (2, 3) and a (3,) parameter from default_rng(seed): their initial values, `steps`
    gradients of all 9 elements, and the two Tensors."""
    rng = np.random.default_rng(seed)
    w0, b0 = rng.standard_normal((2, 3)), rng.standard_normal(3)
    grads = [rng.standard_normal(9) for _ in range(steps)]
    return w0, b0, grads, Tensor(w0.copy(), requires_grad=True), Tensor(b0.copy(), requires_grad=True)


def test_adam_on_matrix_parameters_matches_the_naive_trajectory_element_by_element():
    # parameters of shapes (2, 3) and (3,): the moments have the parameter's shape, and the
    # update lands on the right elements, on the flat path and on the per-parameter path alike
    w0, b0, grads, w, b = matrix_and_vector_parameters(seed=0, steps=4)
    opt = Adam([w, b], lr=0.1, betas=(0.8, 0.9), eps=1e-3)
    for t, g in enumerate(grads):
        w.grad, b.grad = g[:6].reshape(2, 3), g[6:].copy()
        opt.step()
        assert opt.steps == [t + 1, t + 1]
    assert [m.shape for m in opt.m] == [(2, 3), (3,)] == [v.shape for v in opt.v]
    state = opt.state_dict()
    assert state["m.0"].shape == (2, 3) and state["v.1"].shape == (3,)
    assert state["steps"].dtype == np.int64
    want = naive_adam_per_element(np.concatenate([w0.ravel(), b0]).tolist(), [g.tolist() for g in grads],
                                  0.1, (0.8, 0.9), 1e-3)
    np.testing.assert_allclose(np.concatenate([w.data.ravel(), b.data]), want, rtol=1e-13, atol=1e-15)


def test_adam_steps_parameters_at_different_step_counts_each_at_its_own_t():
    # b skips step 2, so at step 3 a is at t = 3 and b at t = 2, each with its own bias correction
    rng = np.random.default_rng(1)
    a0, b0 = rng.standard_normal((2, 2)), rng.standard_normal(2)
    ga, gb = [rng.standard_normal(4) for _ in range(3)], [rng.standard_normal(2) for _ in range(2)]
    a, b = Tensor(a0.copy(), requires_grad=True), Tensor(b0.copy(), requires_grad=True)
    opt = Adam([a, b], lr=0.05, betas=(0.5, 0.75), eps=1e-2)
    for step, b_grad in ((0, gb[0]), (1, None), (2, gb[1])):
        a.grad, b.grad = ga[step].reshape(2, 2), b_grad
        opt.step()
    assert opt.steps == [3, 2]
    np.testing.assert_allclose(a.data.ravel(), naive_adam_per_element(a0.ravel().tolist(), ga, 0.05,
                                                                     (0.5, 0.75), 1e-2), rtol=1e-13)
    np.testing.assert_allclose(b.data, naive_adam_per_element(b0.tolist(), gb, 0.05, (0.5, 0.75), 1e-2),
                               rtol=1e-13)
    # and once more with both gradients present but the step counts still apart (3 and 2)
    a.grad, b.grad = np.ones((2, 2)), np.ones(2)
    opt.step()
    assert opt.steps == [4, 3]
    np.testing.assert_allclose(b.data, naive_adam_per_element(b0.tolist(), gb + [[1.0, 1.0]], 0.05,
                                                              (0.5, 0.75), 1e-2), rtol=1e-13)


def test_adam_step_without_any_gradient_changes_nothing():
    params = split_params()
    opt = Adam(params, lr=0.1)
    opt.step()
    np.testing.assert_array_equal(np.concatenate([p.data for p in params]), THETA0)
    assert opt.steps == [0, 0]


@pytest.mark.parametrize("dtypes", [(np.float32, np.float64), (np.float64, np.float32)])
def test_adam_over_mixed_dtypes_keeps_each_parameter_and_its_moments_in_its_own_dtype(dtypes):
    # float64 parameters must get float64 moments (not rounded to float32) and vice versa
    values = [[0.3, -1.2], [2.0, 0.05, -0.7]]
    params = [Tensor(np.array(v, dtype=d), requires_grad=True) for v, d in zip(values, dtypes)]
    opt = Adam(params, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    grads = [[1.0, -0.5, 0.3, 0.1, 2.0], [0.2, 0.4, -1.0, 0.5, 0.25]]
    for g in grads:
        params[0].grad = np.array(g[:2], dtype=dtypes[0])
        params[1].grad = np.array(g[2:], dtype=dtypes[1])
        opt.step()
    assert [p.dtype for p in params] == list(dtypes)
    assert [m.dtype for m in opt.m] == list(dtypes) == [v.dtype for v in opt.v]
    i64 = dtypes.index(np.float64)
    start = sum(len(v) for v in values[:i64])
    want = naive_adam_per_element(values[i64], [g[start:start + len(values[i64])] for g in grads],
                                  0.1, (0.9, 0.999), 1e-8)
    np.testing.assert_allclose(params[i64].data, want, rtol=1e-13)


def test_adam_keeps_float32_moments_float32():
    p = Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    opt = Adam([p], lr=0.1)
    p.grad = np.full((2, 2), 0.5, dtype=np.float32)
    opt.step()
    assert opt.m[0].dtype == np.float32 and opt.v[0].dtype == np.float32


# ----- clip_grad_norm: accumulated in float64 --------------------------------------------------

def test_clip_grad_norm_accumulates_float32_squares_in_float64():
    # 3e20^2 = 9e40 overflows float32 (max ~3.4e38) but not float64: the norm is 5e20, not an error
    a = Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    a.grad = np.array([3e20, 4e20], dtype=np.float32)
    g = a.grad.astype(np.float64)
    norm = clip_grad_norm([a], max_norm=1.0)
    assert norm == math.sqrt(g[0] ** 2 + g[1] ** 2)
    assert a.grad.dtype == np.float32
    np.testing.assert_allclose(a.grad, g / (norm + 1e-6), rtol=1e-6)


def test_adam_still_updates_parameters_whose_arrays_a_second_optimiser_took_over():
    # A second Adam over the same parameters points their values at its own flat buffer; the
    # first must still move the parameters themselves, as a per-parameter update would.
    w0, b0, grads, w, b = matrix_and_vector_parameters(seed=1, steps=3)
    first = Adam([w, b], lr=0.1, betas=(0.8, 0.9), eps=1e-3)
    Adam([w, b], lr=0.5)                          # takes the arrays over, never steps
    np.testing.assert_array_equal(w.data, w0)     # taking over keeps the values
    for g in grads:
        w.grad, b.grad = g[:6].reshape(2, 3), g[6:].copy()
        first.step()
    want = naive_adam_per_element(np.concatenate([w0.ravel(), b0]).tolist(),
                                  [g.tolist() for g in grads], 0.1, (0.8, 0.9), 1e-3)
    np.testing.assert_allclose(np.concatenate([w.data.ravel(), b.data]), want, rtol=1e-13, atol=1e-15)


def test_adam_leaves_parameters_written_in_place_elsewhere_in_its_update():
    # loading values into a parameter in place (a checkpoint, trpo's set_flat) is seen by the
    # next step: the step subtracts from the current values
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    opt = Adam([w], lr=0.1)
    w.data[...] = [10.0, 20.0]
    w.grad = np.array([1.0, -1.0])
    opt.step()
    # Adam's first step is lr * g / (|g| + eps): lr times the sign, up to eps = 1e-8
    np.testing.assert_allclose(w.data, [10.0 - 0.1, 20.0 + 0.1], rtol=1e-9)
