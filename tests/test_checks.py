"""_checks.py: one check per argument at the boundary, trusted() for callers that made it already,
and arrays in -> arrays out / Tensors in -> Tensors out for the equations."""
import re
import threading
import warnings

import numpy as np
import pytest

from ppo_ref import _checks
from ppo_ref._checks import (
    SCALARS, arrays_or_tensors, as_real, check_adam, check_adam_state, check_batch,
    check_binary_actions, check_clip_grad_norm, check_conjugate_gradient, check_continuous_actions,
    check_count, check_discrete_actions, check_finite_grads, check_flags, check_gaussian,
    check_grad_norm, check_grads, check_linear_schedule, check_logits, check_lr,
    check_multi_categorical, check_multi_discrete_actions, check_nonempty, check_obs,
    check_overflow, check_params, check_ratio, check_rng, check_rollout, check_same_family,
    check_same_shape, check_scalar, check_scalars, check_value_loss, first_index, is_trusted,
    plain, trusted, values_of)
from ppo_ref.autodiff import Tensor, as_tensor
from ppo_ref.distributions import Categorical, DiagGaussian
from ppo_ref.nn import MLP
from ppo_ref.gae import compute_gae
from ppo_ref.losses import clipped_surrogate, normalize_advantages, ppo_loss, value_loss
from ppo_ref.optim import Adam, clip_grad_norm


def minibatch(seed=0, B=6):
    rng = np.random.default_rng(seed)
    return dict(logp_new=rng.normal(size=B) * 0.1, logp_old=rng.normal(size=B) * 0.1,
                advantages=rng.normal(size=B), values=rng.normal(size=B), returns=rng.normal(size=B),
                entropy=rng.uniform(0.5, 1.0, size=B))


def loss_and_grads(x, **kwargs):
    leaves = {k: Tensor(x[k].copy(), requires_grad=True) for k in ("logp_new", "values", "entropy")}
    loss, info = ppo_loss(**{**x, **leaves}, **kwargs)
    loss.backward()
    return loss.item(), info, {k: t.grad for k, t in leaves.items()}


@pytest.mark.parametrize("kwargs", [dict(), dict(objective="unclipped", ent_coef=0.01),
                                    dict(vf_clip_eps=0.2, old_values=np.zeros(6))])
def test_trusted_gives_the_same_loss_info_and_gradients_bit_for_bit(kwargs):
    x = minibatch()
    checked = loss_and_grads(x, **kwargs)
    with trusted():
        unchecked = loss_and_grads(x, **kwargs)
    assert checked[0] == unchecked[0] and checked[1] == unchecked[1]
    for k in checked[2]:
        np.testing.assert_array_equal(checked[2][k], unchecked[2][k])


def test_trusted_gives_the_same_advantages_bit_for_bit():
    rng = np.random.default_rng(1)
    r, v, nv = (rng.normal(size=(5, 3)) for _ in range(3))
    term, trunc = rng.random((5, 3)) < 0.2, rng.random((5, 3)) < 0.2
    adv, ret = compute_gae(r, v, nv, term, trunc, 0.97, 0.9)
    with trusted():
        adv_t, ret_t = compute_gae(r, v, nv, term, trunc, 0.97, 0.9)
    assert isinstance(adv_t, np.ndarray) and isinstance(ret_t, np.ndarray)
    np.testing.assert_array_equal(adv, adv_t)
    np.testing.assert_array_equal(ret, ret_t)


def test_under_trust_input_checks_do_not_run():
    # The caller vouches for its inputs: a nan goes through (outside trust it is named)
    bad = np.array([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match=r"advantages.*index \(1,\)"):
        normalize_advantages(bad)
    with trusted():
        assert np.isnan(normalize_advantages(bad)).all()


def test_guards_on_computed_values_stay_on_under_trust():
    with trusted():
        # a ratio that overflows exp: the loss would be inf and its gradient nan
        with pytest.raises(ValueError, match=r"logp_new - logp_old.*index \(1,\)"):
            clipped_surrogate(np.array([0.0, 800.0]), np.zeros(2), np.ones(2))
        # a nan gradient, in clip_grad_norm and in Adam
        p = Tensor(np.zeros(3), requires_grad=True)
        p.grad = np.array([0.0, 0.0, np.nan])
        with pytest.raises(ValueError, match=r"params\[0\]"):
            clip_grad_norm([p], 1.0)
        with pytest.raises(ValueError, match=r"params\[0\].*index \(2,\)"):
            Adam([p]).step()


def test_trusted_is_undone_on_exit_on_an_exception_and_nests():
    assert not is_trusted()
    with trusted():
        assert is_trusted()
        with trusted():
            assert is_trusted()
        assert is_trusted()
    assert not is_trusted()
    with pytest.raises(RuntimeError):
        with trusted():
            raise RuntimeError
    assert not is_trusted()


def test_trusted_as_a_decorator_covers_exactly_the_call():
    @trusted()
    def inside():
        return is_trusted()
    assert inside() and inside() and not is_trusted()


def test_trust_holds_for_the_current_thread_only():
    seen = []
    with trusted():
        t = threading.Thread(target=lambda: seen.append(is_trusted()))
        t.start()
        t.join()
    assert seen == [False]


def test_arrays_in_give_numpy_values_out_and_a_tensor_in_gives_a_tensor():
    x = minibatch()
    out = value_loss(x["values"], x["returns"])
    assert isinstance(out, np.floating)
    assert isinstance(value_loss(Tensor(x["values"]), x["returns"]), Tensor)
    adv, ret = compute_gae(np.ones(3), np.zeros(3), np.zeros(3), np.zeros(3, bool), np.zeros(3, bool))
    assert type(adv) is np.ndarray and type(ret) is np.ndarray
    adv, ret = compute_gae(Tensor(np.ones(3)), np.zeros(3), np.zeros(3), np.zeros(3, bool),
                           np.zeros(3, bool))
    assert isinstance(adv, Tensor) and isinstance(ret, Tensor)


@pytest.mark.parametrize("shape,index", [((5,), (3,)), ((2, 3), (1, 0)), ((2, 2, 2), (1, 0, 1))])
def test_first_index_is_the_first_true_in_c_order(shape, index):
    mask = np.zeros(shape, bool)
    mask[index] = True
    mask.flat[-1] = True   # a later True does not matter
    assert first_index(mask) == index


# ----- arrays_or_tensors and plain --------------------------------------------------------------

@arrays_or_tensors
def _halve_and_sum(x, y=0.0):
    """A small equation written with Tensors: (x / 2, sum(x) + y)."""
    x = as_tensor(x)
    return x * 0.5, x.sum() + y


def test_an_equation_called_with_arrays_returns_numpy_values_element_by_element():
    half, total = _halve_and_sum(np.array([2.0, 4.0]), y=1.0)
    assert type(half) is np.ndarray and half.tolist() == [1.0, 2.0]
    assert type(total) is np.float64 and total == 7.0        # a 0-d Tensor becomes a numpy scalar


@pytest.mark.parametrize("call", [lambda x: _halve_and_sum(Tensor(x)),
                                  lambda x: _halve_and_sum(x, Tensor(1.0)),
                                  lambda x: _halve_and_sum(x, y=Tensor(1.0))])
def test_a_tensor_among_positional_or_keyword_arguments_gives_tensors_back(call):
    half, total = call(np.array([2.0, 4.0]))
    assert isinstance(half, Tensor) and isinstance(total, Tensor)


def test_arrays_or_tensors_keeps_the_equations_name_and_docstring():
    assert _halve_and_sum.__name__ == "_halve_and_sum"
    assert _halve_and_sum.__doc__.startswith("A small equation")


def test_plain_gives_a_tensors_array_and_leaves_anything_else_alone():
    data = np.arange(3.0)
    assert plain(Tensor(data)).tolist() == [0.0, 1.0, 2.0]
    assert type(plain(Tensor(3.0))) is np.float64 and plain(Tensor(3.0)) == 3.0
    assert plain(data) is data and plain("x") == "x"


# ----- scalars and counts: each name's domain, exactly at and just past its ends -----------------

# The domain of every named scalar, written out from the papers (the interval as messages print it)
DOMAINS = {"clip_eps": "(0, inf)", "vf_clip_eps": "(0, inf)", "beta": "[0, inf)",
           "vf_coef": "[0, inf)", "ent_coef": "[0, inf)", "eps": "(0, inf)", "gamma": "[0, 1]",
           "lam": "[0, 1]", "max_kl": "(0, inf)", "damping": "[0, inf)", "backtrack_coef": "(0, 1)",
           "step_size": "(0, inf)", "tol": "[0, inf)"}


def test_every_named_scalar_has_a_domain_here():
    assert set(DOMAINS) == set(SCALARS)


def _ends(interval):
    """[(value, accepted)] at each finite end of an interval string and just past it."""
    low, high = (float(s) for s in interval[1:-1].split(", "))
    cases = [(low, interval[0] == "["), (np.nextafter(low, -np.inf), False), (np.inf, False),
             (np.nan, False), (-np.inf, False)]
    if np.isfinite(high):
        cases += [(high, interval[-1] == "]"), (np.nextafter(high, np.inf), False)]
    return cases


@pytest.mark.parametrize("name,interval", sorted(DOMAINS.items()))
@pytest.mark.parametrize("checker", ["check_scalars", "check_batch"])
def test_each_scalar_is_accepted_exactly_on_its_domain_and_named_with_it_outside(name, interval,
                                                                                checker):
    check = getattr(_checks, checker)
    for value, accepted in _ends(interval):
        if accepted:
            out, = check(**{name: value})
            assert type(out) is float and out == value
        else:
            with pytest.raises(ValueError, match=re.escape(f"{name} must lie in {interval}, "
                                                           f"got {value!r}")):
                check(**{name: value})


@pytest.mark.parametrize("name", ["iters", "cg_iters", "max_backtracks"])
def test_each_count_is_a_whole_number_of_at_least_one(name):
    out = check_scalars(**{name: 1}) + check_scalars(**{name: np.int64(7)})
    assert out == [1, 7] and all(type(n) is int for n in out)
    for bad in (0, -1, 1.0, True, "2", None):
        with pytest.raises(ValueError, match=re.escape(f"{name} must be an integer >= 1, got {bad!r}")):
            check_scalars(**{name: bad})


def test_scalars_come_back_in_the_order_given():
    assert check_scalars(tol=0.5, iters=3, gamma=np.float32(0.25)) == [0.5, 3, 0.25]


def test_under_trust_scalars_and_counts_are_converted_but_not_checked():
    with trusted():
        out = check_scalars(gamma=2, iters=np.float64(0.0)) + check_batch(clip_eps=-1)
    assert out == [2.0, 0, -1.0]
    assert [type(x) for x in out] == [float, int, float]


# ----- check_batch --------------------------------------------------------------------------------

def test_check_batch_gives_tensors_keeping_the_callers_own():
    own = Tensor(np.ones(3), requires_grad=True)
    a, b, c, eps = check_batch(a=[1, 2, 3], b=own, c=np.zeros(3, np.float32), clip_eps=np.float32(0.5))
    assert isinstance(a, Tensor) and a.data.tolist() == [1.0, 2.0, 3.0]
    assert b is own and c.dtype == np.float32 and eps == 0.5 and type(eps) is float


@pytest.mark.parametrize("named,error,message", [
    (dict(logp_new=np.zeros(0)), ValueError, r"^logp_new is empty \(shape \(0,\)\)"),
    (dict(logp_new=np.zeros((2, 0))), ValueError, r"^logp_new is empty \(shape \(2, 0\)\)"),
    (dict(logp_new=np.zeros(3), entropy=np.zeros(2)), ValueError,
     r"^logp_new has shape \(3,\) but entropy has shape \(2,\)"),
    (dict(logp_new=np.zeros(3), entropy=np.zeros((3, 1))), ValueError,
     r"^logp_new has shape \(3,\) but entropy has shape \(3, 1\)"),
    (dict(logp_new=np.zeros(3), entropy=np.array([0.0, 0.0, -np.inf])), ValueError,
     r"^entropy contains a non-finite value -inf at index \(2,\)"),
    (dict(logp_new=np.array([[0.0, np.nan]])), ValueError,
     r"^logp_new contains a non-finite value nan at index \(0, 1\)"),
    (dict(logp_new=np.zeros(2), advantages=np.array(["a", "b"])), TypeError,
     r"^advantages must hold real numbers, got dtype <U1"),
    (dict(logp_new=np.zeros(2), advantages=np.zeros(2, complex)), TypeError,
     r"^advantages must hold real numbers, got dtype complex128"),
])
def test_check_batch_names_the_argument_its_shape_or_its_first_bad_index(named, error, message):
    with pytest.raises(error, match=message):
        check_batch(**named)


def test_check_batch_accepts_one_sample_and_bool_or_integer_arrays():
    a, b = check_batch(a=np.array([True]), b=np.array([3]))
    assert a.data.tolist() == [1.0] and b.data.tolist() == [3.0]


def test_under_trust_check_batch_converts_but_does_not_check():
    own = Tensor(np.array([np.nan]))
    with trusted():
        a, b, c = check_batch(a=np.array([np.inf, 1.0]), b=own, c=np.zeros(5))
        with pytest.raises(TypeError) as error:        # Tensor() refuses it; no check names it
            check_batch(a=np.array(["x"]))
    assert a.data[0] == np.inf and b is own and c.shape == (5,)
    assert "a must hold" not in str(error.value)


# ----- check_rollout --------------------------------------------------------------------------------

def rollout(T=3, **changes):
    x = dict(rewards=np.arange(T, dtype=np.float64), values=np.zeros(T), terminated=np.zeros(T, bool),
             truncated=np.array([0] * (T - 1) + [1]), gamma=0.5)
    return {**x, **changes}


def test_check_rollout_gives_floats_of_one_dtype_and_bool_flags():
    x = rollout(rewards=np.array([1, 2, 3]), values=np.zeros(3, np.float32))
    rewards, values, terminated, truncated, gamma = check_rollout(**x)
    assert rewards.dtype == values.dtype == np.float64            # float32 and int64 -> float64
    assert rewards.tolist() == [1.0, 2.0, 3.0] and gamma == 0.5 and type(gamma) is float
    assert terminated is x["terminated"]                           # a bool array is kept as is
    assert truncated.dtype == bool and truncated.tolist() == [False, False, True]


def test_check_rollout_of_integers_only_gives_float64():
    rewards, values = check_rollout(rewards=np.array([1, 2]), values=np.array([[0], [1]])[:, 0])
    assert rewards.dtype == values.dtype == np.float64


def test_check_rollout_keeps_float32_and_does_not_copy_arrays_already_in_the_common_dtype():
    r32, v32 = np.ones(3, np.float32), np.zeros(3, np.float32)
    rewards, values = check_rollout(rewards=r32, values=v32)
    assert rewards is r32 and values is v32
    r64 = np.ones(3)
    rewards, values = check_rollout(rewards=r64, values=v32)
    assert rewards is r64 and values.dtype == np.float64


def test_check_rollout_keeps_the_callers_tensor():
    own = Tensor(np.ones(2, np.float32), requires_grad=True)
    rewards, values = check_rollout(rewards=own, values=np.zeros(2))
    assert rewards is own and values.dtype == np.float64


def test_check_rollout_passes_a_left_out_bootstrap_values_as_none_and_reads_on():
    out = check_rollout(rewards=np.ones(2), bootstrap_values=None, values=np.zeros(2), gamma=1)
    assert out[1] is None and out[2].tolist() == [0.0, 0.0] and out[3] == 1.0 and len(out) == 4


@pytest.mark.parametrize("shape,ok", [((1,), True), ((1, 1), True), ((4, 2), True), ((0,), False),
                                      ((0, 2), False), ((), False), ((2, 2, 1), False)])
def test_check_rollout_takes_shape_t_or_t_n_with_t_at_least_one(shape, ok):
    if ok:
        assert check_rollout(rewards=np.zeros(shape))[0].shape == shape
    else:
        with pytest.raises(ValueError, match=re.escape(
                f"rewards must have shape (T,) or (T, N) with T >= 1, got {shape}")):
            check_rollout(rewards=np.zeros(shape))


@pytest.mark.parametrize("named,error,message", [
    (dict(rewards=np.zeros(3), values=np.zeros(2)), ValueError,
     r"^rewards has shape \(3,\) but values has shape \(2,\)"),
    (dict(rewards=np.zeros(3), terminated=np.zeros((3, 1), bool)), ValueError,
     r"^rewards has shape \(3,\) but terminated has shape \(3, 1\)"),
    (dict(rewards=np.zeros(3), values=np.array([0.0, np.nan, 0.0])), ValueError,
     r"^values contains a non-finite value nan at index \(1,\)"),
    (dict(rewards=np.array([np.inf])), ValueError, r"^rewards contains a non-finite value inf at"),
    (dict(rewards=np.zeros(3), truncated=np.array([0, 1, 2])), ValueError,
     r"^truncated must be boolean or 0/1, got 2 at index \(2,\)"),
    (dict(rewards=np.zeros(2), terminated=np.array([np.nan, 0.0])), ValueError,
     r"^terminated must be boolean or 0/1, got nan at index \(0,\)"),
    (dict(rewards=np.zeros(2), values=np.array(["a", "b"])), TypeError,
     r"^values must hold real numbers, got dtype <U1"),
    (dict(rewards=np.zeros(2), gamma=1.5), ValueError, r"^gamma must lie in \[0, 1\], got 1.5"),
])
def test_check_rollout_names_the_argument_its_shape_or_its_first_bad_index(named, error, message):
    with pytest.raises(error, match=message):
        check_rollout(**named)


def test_under_trust_check_rollout_converts_but_does_not_check():
    with trusted():
        rewards, terminated, gamma = check_rollout(rewards=np.array([np.nan, 1.0], dtype=object),
                                                   terminated=Tensor([1.0, 0.0]), gamma=2.0)
    assert rewards.dtype == np.float64 and np.isnan(rewards[0]) and rewards[1] == 1.0
    assert terminated.tolist() == [True, False] and gamma == 2.0


# ----- the value loss and ppo_loss ------------------------------------------------------------------

def test_check_value_loss_reads_old_values_only_for_the_clipped_loss():
    values, returns, old, eps = check_value_loss(np.zeros(2), np.ones(2), "ignored", None)
    assert values.data.tolist() == [0.0, 0.0] and returns.data.tolist() == [1.0, 1.0]
    assert old is None and eps is None
    values, returns, old, eps = check_value_loss(np.zeros(2), np.ones(2), np.ones(2), 0.1)
    assert old.data.tolist() == [1.0, 1.0] and eps == 0.1
    with pytest.raises(ValueError, match=r"^clip_eps was given but old_values is None"):
        value_loss(np.zeros(2), np.ones(2), clip_eps=0.1)


@pytest.mark.parametrize("kwargs,message", [
    (dict(objective="clipped"), r"^objective must be one of \(.*'clip'.*\), got 'clipped'"),
    (dict(objective="kl_fixed"), r'^objective "kl_fixed" needs kl'),
    (dict(objective="unclipped", clip_eps=0.0), r"^clip_eps must lie in \(0, inf\), got 0.0"),
    (dict(vf_coef=-0.5), r"^vf_coef must lie in \[0, inf\), got -0.5"),
    (dict(ent_coef=-0.01), r"^ent_coef must lie in \[0, inf\), got -0.01"),
    (dict(vf_clip_eps=0.0, old_values=np.zeros(6)), r"^vf_clip_eps must lie in \(0, inf\), got 0.0"),
    (dict(vf_clip_eps=0.2), r"^vf_clip_eps was given but old_values is None"),
    (dict(entropy=np.ones(5)), r"^logp_new has shape \(6,\) but entropy has shape \(5,\)"),
])
def test_ppo_loss_names_what_none_of_its_terms_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ppo_loss(**{**minibatch(), **kwargs})


# ----- the checkers of optim.py ----------------------------------------------------------------------

def test_check_params_gives_a_list_of_distinct_tensors_and_names_the_owner():
    p, q = Tensor(np.zeros(2)), Tensor(np.zeros(3))
    assert check_params((x for x in (p, q)), "Adam") == [p, q]
    with pytest.raises(ValueError, match=r"^Adam: params is empty$"):
        check_params([], "Adam")
    with pytest.raises(TypeError, match=r"^SGD: params\[1\] must be a Tensor, got ndarray$"):
        check_params([p, np.zeros(2)], "SGD")
    with pytest.raises(ValueError, match=r"^Adam: params contains the same Tensor more than once$"):
        check_params([p, q, p], "Adam")


def test_check_lr_takes_a_finite_rate_of_zero_or_more():
    assert check_lr(0.0) == 0.0 and check_lr(np.float32(0.5)) == 0.5 and type(check_lr(1)) is float
    for bad in (-5e-324, np.inf, np.nan):
        with pytest.raises(ValueError, match=r"^Adam: lr must be finite and >= 0"):
            check_lr(bad)
    with pytest.raises(TypeError, match=r"^Adam: lr must be a real number, got '0.1'"):
        check_lr("0.1")


def test_check_adam_returns_floats_and_a_pair_of_betas():
    p = Tensor(np.zeros(2))
    below_one = np.nextafter(1.0, 0.0)
    params, lr, betas, eps = check_adam([p], 1, np.array([0.0, below_one]), np.float32(1.0))
    assert params == [p] and (lr, eps) == (1.0, 1.0) and type(lr) is float and type(eps) is float
    assert betas == (0.0, below_one) and type(betas) is tuple
    assert check_adam(None, 5e-324, [0.9, 0.999], 5e-324)[0] is None


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(params=[]), ValueError, r"^Adam: params is empty"),
    (dict(lr="1"), TypeError, r"^Adam: lr must be a real number, got '1'"),
    (dict(eps=None), TypeError, r"^Adam: eps must be a real number, got None"),
    (dict(lr=0.0), ValueError, r"^Adam: lr must be finite and > 0, got 0.0"),
    (dict(lr=np.inf), ValueError, r"^Adam: lr must be finite and > 0, got inf"),
    (dict(betas=0.9), TypeError, r"^Adam: betas must be a pair \(beta1, beta2\), got 0.9"),
    (dict(betas=np.zeros((1, 2))), TypeError, r"^Adam: betas must be a pair"),
    (dict(betas=(0.9, "0.999")), TypeError, r"^Adam: betas\[1\] must be a real number"),
    (dict(betas=(0.9,)), ValueError, r"^Adam: betas must be two numbers in \[0, 1\), got \(0.9,\)"),
    (dict(betas=(0.9, 0.9, 0.9)), ValueError, r"^Adam: betas must be two numbers in \[0, 1\)"),
    (dict(betas=(0.9, 1.0)), ValueError, r"^Adam: betas must be two numbers in \[0, 1\)"),
    (dict(betas=(-5e-324, 0.9)), ValueError, r"^Adam: betas must be two numbers in \[0, 1\)"),
    (dict(eps=0.0), ValueError, r"^Adam: eps must be finite and > 0, got 0.0"),
    (dict(eps=np.inf), ValueError, r"^Adam: eps must be finite and > 0, got inf"),
])
def test_check_adam_names_the_bad_hyperparameter_with_its_exact_bound(kwargs, error, message):
    args = {**dict(params=[Tensor(np.zeros(2))], lr=1e-3, betas=(0.9, 0.999), eps=1e-8), **kwargs}
    with pytest.raises(error, match=message):
        check_adam(**args)


def test_check_grads_reads_each_gradient_and_names_a_misshapen_one():
    p, q, r = Tensor(np.zeros(2)), Tensor(np.zeros(3)), Tensor(np.zeros(1))
    p.grad, r.grad = np.ones(2), np.ones(3)
    assert check_grads([p, q])[0] is p.grad and check_grads([p, q])[1] is None
    with pytest.raises(ValueError, match=r"^Adam.step: params\[2\] has shape \(1,\) but its grad has "
                                         r"shape \(3,\)"):
        check_grads([p, q, r])


def test_check_finite_grads_names_the_first_nan_after_a_missing_gradient():
    with pytest.raises(ValueError, match=r"^Adam.step: the gradient of params\[1\] is nan at index "
                                         r"\(1, 0\); a nan/inf"):
        check_finite_grads([None, np.array([[0.0], [np.nan]]), np.array([np.inf])])
    with pytest.raises(ValueError, match=r"^SGD: the gradient of params\[0\] is -inf at index \(0,\)"):
        check_finite_grads([np.array([-np.inf])], "SGD")


def test_check_finite_grads_names_a_gradient_whose_square_overflows_at_the_exact_bound():
    bound = np.float32(2.0 ** 64)             # float32's max is 2^128 - 2^104: (2^64)^2 overflows it
    below = np.nextafter(bound, np.float32(0))           # (2^64 - 2^40)^2 < 2^128 - 2^104: finite
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # the overflow is reported, not warned
        check_finite_grads([np.array([below, -below], np.float32)])
        with pytest.raises(ValueError, match=r"^Adam.step: the gradient of params\[0\] is "
                                             r"-1.8446744073709552e\+19 at index \(1,\); its square "
                                             r"overflows float32"):
            check_finite_grads([np.array([0.0, -bound], np.float32)])


def test_check_adam_state_reads_back_a_state_dict():
    params = [Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros((1, 2)), requires_grad=True)]
    state = Adam(params, lr=0.01, betas=(0.5, 0.75), eps=0.25).state_dict()
    state["steps"] = np.array([3, 0], np.uint32)
    state["m.0"] = np.array([-1, 2])                        # m may be negative, and integer
    state["v.1"] = np.array([[0, 7]], np.uint8)
    lr, betas, eps, steps = check_adam_state(state, params)
    assert (lr, betas, eps, steps) == (0.01, (0.5, 0.75), 0.25, [3, 0])
    assert all(type(t) is int for t in steps)


@pytest.mark.parametrize("change,message", [
    (dict(extra=1), r"missing keys \[\], unexpected keys \['extra'\]"),
    (dict(drop="v.1"), r"missing keys \['v.1'\], unexpected keys \[\]"),
    (dict(steps=np.array([1])), r"steps has shape \(1,\), expected \(2,\)"),
    (dict(steps=np.array([1, -1])), r"steps must be counts >= 0, got \[ 1 -1\]"),
    (dict(steps=np.array([1.0, 2.0])), r"steps must be counts >= 0"),
    (dict(**{"m.1": np.zeros(2)}), r"m.1 has shape \(2,\), params\[1\] has shape \(1, 2\)"),
    (dict(**{"v.0": np.array([0.0, -1e-300])}), r"v.0 must hold finite numbers, all >= 0$"),
    (dict(**{"v.1": np.array([[0.0, np.nan]])}), r"v.1 must hold finite numbers, all >= 0$"),
    (dict(**{"m.0": np.array([np.inf, 0.0])}), r"m.0 must hold finite numbers$"),
    (dict(**{"m.0": np.array(["a", "b"])}), r"m.0 must hold finite numbers$"),
    (dict(lr=-1.0), r"^Adam: lr must be finite and > 0"),
])
def test_check_adam_state_names_what_is_wrong_in_a_state_dict(change, message):
    params = [Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros((1, 2)), requires_grad=True)]
    state = Adam(params).state_dict()
    state.pop(change.get("drop"), None)
    state.update({k: v for k, v in change.items() if k != "drop"})
    with pytest.raises(ValueError, match=message if message.startswith("^") else
                       r"^Adam.load_state_dict: " + message):
        check_adam_state(state, params)


def test_check_clip_grad_norm_takes_a_max_norm_above_zero_and_names_its_owner():
    p = Tensor(np.zeros(2))
    assert check_clip_grad_norm((p,), 5e-324) == ([p], 5e-324)
    assert check_clip_grad_norm([p], np.inf)[1] == np.inf
    assert type(check_clip_grad_norm([p], 1)[1]) is float
    with pytest.raises(ValueError, match=r"^clip_grad_norm: max_norm must be > 0, got 0.0"):
        check_clip_grad_norm([p], 0.0)
    with pytest.raises(TypeError, match=r"^clip_grad_norm: max_norm must be a real number"):
        check_clip_grad_norm([p], "1")
    with pytest.raises(ValueError, match=r"^clip_grad_norm: params is empty"):
        check_clip_grad_norm([], 1.0)
    with pytest.raises(TypeError, match=r"^clip_grad_norm: params\[0\] must be a Tensor"):
        check_clip_grad_norm([1.0], 1.0)
    with trusted():
        assert check_clip_grad_norm((p,), -1) == ([p], -1.0)


def test_check_grad_norm_names_the_nan_gradient_or_the_one_with_the_largest_entry():
    p, q, r, s = (Tensor(np.zeros(n)) for n in (2, 2, 2, 0))
    check_grad_norm(1.0, [p, q])                    # a finite sum: nothing to say (no grads read)
    p.grad, q.grad, s.grad = np.array([1e200, 1e200]), np.array([0.0, np.nan]), np.zeros(0)
    with pytest.raises(ValueError, match=r"^clip_grad_norm: the gradient of params\[1\] contains nan"):
        check_grad_norm(np.nan, [r, q, p])
    q.grad = np.array([-3e200, 1.0])
    for order in ([s, p, q, r], [r, q, s, p]):
        with pytest.raises(ValueError, match=rf"overflows float64 \(params\[{order.index(q)}\] has a "
                                             r"gradient of 3e\+200\)"):
            check_grad_norm(np.inf, order)
    p.grad, q.grad = np.array([0.25]), np.array([-0.5])      # the rule holds for entries below 1 too
    with pytest.raises(ValueError, match=r"\(params\[1\] has a gradient of 0.5\)"):
        check_grad_norm(np.inf, [p, q])


def test_check_linear_schedule_takes_progress_in_zero_one_and_names_each_argument():
    assert check_linear_schedule(1, np.float32(0.5), 0) == (1.0, 0.5, 0.0)
    assert check_linear_schedule(1, 0, 1)[2] == 1.0
    for bad in (np.nextafter(0.0, -1.0), np.nextafter(1.0, 2.0), np.nan):
        with pytest.raises(ValueError, match=r"^linear_schedule: progress must lie in \[0, 1\]"):
            check_linear_schedule(1.0, 0.0, bad)
    for i, name in enumerate(("start", "end", "progress")):
        args = [1.0, 0.0, 0.5]
        args[i] = "x"
        with pytest.raises(TypeError, match=rf"^linear_schedule: {name} must be a real number"):
            check_linear_schedule(*args)


# ----- the checkers of trpo.py -----------------------------------------------------------------------

def test_check_obs_takes_a_batch_of_the_networks_input_size_in_its_dtype():
    mlp = MLP((3, 5, 2), dtype=np.float32)
    obs = check_obs(mlp, np.ones((1, 3)))
    assert obs.dtype == np.float32 and obs.shape == (1, 3)
    as_listed = check_obs(mlp, [[1, 2, 3], [4, 5, 6]])
    assert as_listed.dtype == np.float32 and as_listed.tolist() == [[1, 2, 3], [4, 5, 6]]
    same = np.zeros((2, 3), np.float32)
    assert check_obs(mlp, same) is same                     # already in the network's dtype: no copy
    assert check_obs(mlp, Tensor(same)).shape == (2, 3)
    assert check_obs(MLP((3, 2)), same).dtype == np.float64        # one layer: the output layer
    for shape in ((3,), (2, 5), (2, 2), (0, 3), (2, 3, 1)):
        with pytest.raises(ValueError, match=re.escape(f"obs: expected shape (B, 3) with B >= 1, got "
                                                       f"{shape}")):
            check_obs(mlp, np.zeros(shape))
    with pytest.raises(ValueError, match=r"^obs contains a non-finite value nan at index \(1, 2\)"):
        check_obs(mlp, np.array([[0, 0, 0], [0, 0, np.nan]]))


def test_check_conjugate_gradient_takes_a_finite_vector_as_float64():
    b, iters, tol = check_conjugate_gradient([1, 2], np.int64(3), 0)
    assert b.dtype == np.float64 and b.tolist() == [1.0, 2.0]
    assert (iters, tol) == (3, 0.0) and type(iters) is int and type(tol) is float
    with pytest.raises(ValueError, match=r"^b must be a vector \(P,\), got shape \(1, 2\)"):
        check_conjugate_gradient([[1, 2]], 3, 0.0)
    with pytest.raises(ValueError, match=r"^b must be a vector \(P,\), got shape \(\)"):
        check_conjugate_gradient(1.0, 3, 0.0)
    with pytest.raises(ValueError, match=r"^b has a non-finite entry at index \(2,\)"):
        check_conjugate_gradient([0.0, 1.0, np.inf, np.nan], 3, 0.0)
    with pytest.raises(ValueError, match=r"^iters must be an integer >= 1, got 0"):
        check_conjugate_gradient([1.0], 0, 0.0)
    with pytest.raises(ValueError, match=r"^tol must lie in \[0, inf\), got -1.0"):
        check_conjugate_gradient([1.0], 1, -1.0)


# ----- the checkers of distributions.py -----------------------------------------------------------

def test_check_rng_takes_only_a_generator_and_names_what_it_got():
    check_rng(np.random.default_rng(0), "Categorical.sample")
    with pytest.raises(TypeError, match=r"^Categorical.sample: rng must be a numpy.random.Generator, "
                                        r"got module$"):
        check_rng(np.random, "Categorical.sample")
    with pytest.raises(TypeError, match=r"^Bernoulli.sample: rng must .*, got int$"):
        check_rng(0, "Bernoulli.sample")


def test_check_logits_takes_any_batch_shape_with_at_least_one_action():
    for shape in ((1,), (3,), (2, 1), (2, 2, 4)):
        assert check_logits(np.zeros(shape)).shape == shape
    own = Tensor(np.zeros((2, 3)))
    assert check_logits(own) is own
    for shape in ((), (0,), (2, 0)):
        with pytest.raises(ValueError, match=re.escape(
                f"Categorical: logits must have shape (B, A) with A >= 1, got {shape}")):
            check_logits(np.zeros(shape))
    with pytest.raises(ValueError, match=re.escape(
            "Bernoulli: logits must have shape (B, D) with D >= 1, got (3, 0)")):
        check_logits(np.zeros((3, 0)), "Bernoulli", "D")
    with pytest.raises(ValueError, match=r"^Categorical: logits has a non-finite entry nan at index "
                                         r"\(1, 0\)"):
        check_logits(np.array([[0.0, 0.0], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"^Bernoulli: logits has a non-finite entry -inf at index "):
        check_logits(np.array([-np.inf]), "Bernoulli", "D")


def test_check_gaussian_takes_a_log_std_that_broadcasts_to_the_mean_without_changing_it():
    for mean_shape, std_shape in [((2,), (2,)), ((2,), ()), ((3, 2), (2,)), ((3, 2), (3, 2)),
                                  ((3, 2), (1, 2))]:
        mean, log_std = check_gaussian(np.zeros(mean_shape), np.zeros(std_shape))
        assert mean.shape == mean_shape and log_std.shape == std_shape
    for mean_shape, std_shape in [((3, 2), (3,)), ((1, 2), (3, 2)), ((2,), (1, 2))]:
        with pytest.raises(ValueError, match=re.escape(
                f"DiagGaussian: log_std of shape {std_shape} does not match mean of shape "
                f"{mean_shape}")):
            check_gaussian(np.zeros(mean_shape), np.zeros(std_shape))
    with pytest.raises(ValueError, match=r"^DiagGaussian: mean must have shape \(B, D\), got \(\)"):
        check_gaussian(np.zeros(()), np.zeros(()))
    with pytest.raises(ValueError, match=r"^DiagGaussian: mean has a non-finite entry inf at index "
                                         r"\(1,\)"):
        check_gaussian(np.array([0.0, np.inf]), np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match=r"^DiagGaussian: log_std has a non-finite entry nan at index "
                                         r"\(0,\)"):
        check_gaussian(np.zeros(2), np.array([np.nan, 0.0]))


def test_check_discrete_actions_takes_integers_of_the_batch_shape_below_num_actions():
    a = np.array([0, 2])
    assert check_discrete_actions(a, (2,), 3) is a
    assert check_discrete_actions([[1]], (1, 1), 2).tolist() == [[1]]
    assert check_discrete_actions(np.array([2], np.uint8), (1,), 3).tolist() == [2]
    for bad, message in [(Tensor([0.0, 1.0]), r"actions must be integers, got dtype float64"),
                         (np.array([True, False]), r"actions must be integers, got dtype bool")]:
        with pytest.raises(TypeError, match=r"^Categorical.log_prob: " + message):
            check_discrete_actions(bad, (2,), 3)
    with pytest.raises(ValueError, match=re.escape("Categorical.log_prob: actions have shape (3,), "
                                                   "logits (2, 3) need actions of shape (2,)")):
        check_discrete_actions(np.zeros(3, int), (2,), 3)
    for actions, message in [([[0, 3]], r"action 3 at index \(0, 1\) is outside \[0, 3\)"),
                             ([[-1, 0]], r"action -1 at index \(0, 0\) is outside \[0, 3\)")]:
        with pytest.raises(ValueError, match=r"^Categorical.log_prob: " + message):
            check_discrete_actions(actions, (1, 2), 3)


def test_check_continuous_actions_casts_an_array_to_the_means_dtype_and_keeps_a_tensor():
    mean = Tensor(np.zeros((2, 1), np.float32))
    assert check_continuous_actions(np.ones((2, 1)), mean).dtype == np.float32
    same = np.ones((2, 1), np.float32)
    assert check_continuous_actions(same, mean) is same
    own = Tensor(np.ones((2, 1)))
    assert check_continuous_actions(own, mean) is own
    with pytest.raises(TypeError, match=r"^DiagGaussian.log_prob: actions must be floating point, got "
                                        r"dtype int64"):
        check_continuous_actions(np.ones((2, 1), np.int64), mean)
    with pytest.raises(ValueError, match=r"^DiagGaussian.log_prob: actions have shape \(2,\), the mean "
                                         r"has shape \(2, 1\)"):
        check_continuous_actions(np.ones(2), mean)
    with pytest.raises(ValueError, match=r"^DiagGaussian.log_prob: actions has a non-finite entry nan "
                                         r"at index \(1, 0\)"):
        check_continuous_actions(np.array([[0.0], [np.nan]]), mean)


def test_kl_needs_the_other_of_the_same_family_and_shape():
    p, q = Categorical(np.zeros((2, 3))), Categorical(np.zeros((1, 3)))
    check_same_family(p, Categorical(np.ones((2, 3))), "Categorical.kl", "logits")
    with pytest.raises(TypeError, match=r"^Categorical.kl: other must be a Categorical, got "
                                        r"DiagGaussian$"):
        check_same_family(p, DiagGaussian(np.zeros((2, 3)), np.zeros(3)), "Categorical.kl", "logits")
    with pytest.raises(ValueError, match=r"^Categorical.kl: logits shapes \(2, 3\) and \(1, 3\)"):
        check_same_family(p, q, "Categorical.kl", "logits")


# ----- building blocks --------------------------------------------------------------------------------

def test_values_of_takes_bool_integer_and_float_arrays_and_names_anything_else():
    for arr in (np.array([True]), np.array([1], np.uint8), np.array([1]), np.array([1.0], np.float32)):
        assert values_of("x", arr) is arr
    t = Tensor([1.0])
    assert values_of("x", t) is t.data
    for bad, dtype in [(np.array([1j]), "complex128"), (np.array(["a"]), "<U1"),
                       (np.array([None]), "object")]:
        with pytest.raises(TypeError, match=rf"^rewards must hold real numbers, got dtype {dtype}$"):
            values_of("rewards", bad)


def test_check_flags_names_the_first_entry_that_is_neither_zero_nor_one():
    check_flags("done", np.array([0, 1, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"^done must be boolean or 0/1, got 0.5 at index \(1, 0\)$"):
        check_flags("done", np.array([[1.0], [0.5], [2.0]]))


def test_guards_on_computed_values_name_the_result_its_index_and_its_dtype():
    check_ratio(np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match=r"^logp_new - logp_old is 100.0 at index \(1,\): the ratio "
                                         r"exp\(\) of it overflows float32"):
        check_ratio(np.array([0.0, 100.0, 200.0]), np.array([1.0, np.inf, np.inf], np.float32))
    check_overflow("returns", np.ones(2), "rewards")
    with pytest.raises(ValueError, match=r"^returns overflows float64 at index \(0, 1\) \(-inf\): "
                                         r"rewards are too large"):
        check_overflow("returns", np.array([[0.0, -np.inf]]), "rewards")


def test_check_same_shape_takes_arrays_or_shapes_and_names_both():
    check_same_shape("a", np.zeros((2, 1)), "b", (2, 1))
    with pytest.raises(ValueError, match=r"^a has shape \(2, 1\) but b has shape \(2,\);"):
        check_same_shape("a", (2, 1), "b", np.zeros(2))


def test_check_nonempty_names_the_empty_argument():
    check_nonempty("x", np.zeros(1))
    with pytest.raises(ValueError, match=r"^x is empty \(shape \(3, 0\)\)"):
        check_nonempty("x", np.zeros((3, 0)))


def test_check_count_takes_whole_numbers_from_low_on_and_appends_why():
    assert check_count("n", 5, 5) == 5 and check_count("n", np.uint8(6), 5) == 6
    assert type(check_count("n", np.int64(5), 5)) is int
    for bad in (4, True, np.bool_(True), 5.0, np.float64(6.0), "6"):
        with pytest.raises(ValueError, match=re.escape(f"n must be an integer >= 5, got {bad!r}")
                           + "$"):
            check_count("n", bad, 5)
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got 0 \(one per env\)$"):
        check_count("n", 0, 1, " (one per env)")


def test_as_real_takes_real_numbers_and_0d_arrays_and_names_anything_else():
    for value in (1, 1.5, np.float32(1.5), np.int8(-2), np.uint8(3), np.array(0.99), np.array(3)):
        out = as_real("x", value)
        assert type(out) is float and out == float(value)
    for bad, got in [(True, "True"), (np.bool_(False), "np.False_"), ("1", "'1'"), (None, "None"),
                     (1j, "1j"), ([1.0], r"\[1.0\]"),
                     (np.array(True), r"an array of shape \(\), dtype bool"),
                     (np.zeros(2), r"an array of shape \(2,\), dtype float64"),
                     (np.array("a"), r"an array of shape \(\), dtype <U1")]:
        with pytest.raises(TypeError, match=rf"^gamma must be a real number, got {got}$"):
            as_real("gamma", bad)


def test_check_scalar_ends_are_closed_unless_asked_and_infinities_are_never_in():
    assert check_scalar("x", 0.0, 0.0) == 0.0 and check_scalar("x", 1.0, 0.0, 1.0) == 1.0
    assert check_scalar("x", 1e308, 0.0) == 1e308
    for args, message in [((-1.0, 0.0, 1.0), "[0, 1]"), ((1.0, 0.0, 1.0, True, False), "[0, 1)"),
                          ((0.0, 0.0, 1.0, False), "(0, 1]"), ((np.inf, -np.inf), "(-inf, inf)"),
                          ((np.inf, 0.0, np.inf, False, True), "(0, inf)")]:
        with pytest.raises(ValueError, match=re.escape(f"x must lie in {message}, got {args[0]!r}")):
            check_scalar("x", *args)
    with pytest.raises(ValueError, match=re.escape("x must lie in [0, 1], got np.float32(2.0)")):
        check_scalar("x", np.float32(2.0), 0.0, 1.0)


# ----- the checkers of MultiCategorical and Bernoulli ---------------------------------------------

def test_check_multi_categorical_takes_component_sizes_of_one_or_more_and_logits_of_their_sum():
    logits, nvec = check_multi_categorical(np.zeros(3), np.array([1, 2], np.uint8))
    assert logits.shape == (3,) and nvec == (1, 2) and all(type(n) is int for n in nvec)
    assert check_multi_categorical(np.zeros((2, 2, 1)), [1])[1] == (1,)
    for bad in ([], [[2, 2]], [2.0, 2.0], [2, 0], [2, -1], [True]):
        with pytest.raises(ValueError, match=re.escape(
                f"MultiCategorical: nvec must be a non-empty 1-D list of integers >= 1, got {bad!r}")):
            check_multi_categorical(np.zeros(4), bad)
    for shape in ((), (2, 4), (2, 6)):
        with pytest.raises(ValueError, match=re.escape(
                f"MultiCategorical: logits must have shape (B, sum(nvec)) = (B, 5) for nvec (2, 3), "
                f"got {shape}")):
            check_multi_categorical(np.zeros(shape), [2, 3])
    with pytest.raises(ValueError, match=r"^MultiCategorical: logits has a non-finite entry inf at "
                                         r"index \(0, 1\)"):
        check_multi_categorical(np.array([[0.0, np.inf]]), [2])


def test_check_multi_discrete_actions_names_the_bound_of_the_bad_actions_own_component():
    a = np.array([[[0, 4]]])
    assert check_multi_discrete_actions(a, (1, 1), (2, 5)) is a
    assert check_multi_discrete_actions(np.array([1, 4], np.uint16), (), (2, 5)).tolist() == [1, 4]
    with pytest.raises(ValueError, match=r"^MultiCategorical.log_prob: action 5 at index \(0, 0, 1\) "
                                         r"is outside \[0, 5\)$"):
        check_multi_discrete_actions(np.array([[[0, 5]]]), (1, 1), (2, 5))
    with pytest.raises(ValueError, match=r"^MultiCategorical.log_prob: action -1 at index \(1, 0\) is "
                                         r"outside \[0, 2\)$"):
        check_multi_discrete_actions(np.array([[1, 4], [-1, 0]]), (2,), (2, 5))
    for bad in (Tensor([[0.0, 1.0]]), np.array([[0.0, 1.0]])):
        with pytest.raises(TypeError, match=r"^MultiCategorical.log_prob: actions must be integers, "
                                            r"got dtype float64$"):
            check_multi_discrete_actions(bad, (1,), (2, 5))
    with pytest.raises(ValueError, match=re.escape(
            "MultiCategorical.log_prob: actions have shape (1, 3), expected (1, 2) (one action per "
            "component of nvec (2, 5))")):
        check_multi_discrete_actions(np.zeros((1, 3), int), (1,), (2, 5))


def test_check_binary_actions_takes_zeros_and_ones_of_the_logits_shape_as_int64():
    same = np.array([[0, 1]])
    assert check_binary_actions(same, (1, 2)) is same            # already int64: no copy
    out = check_binary_actions(np.array([[True, False]]), (1, 2))
    assert out.dtype == np.int64 and out.tolist() == [[1, 0]]
    assert check_binary_actions([1, 0], (2,)).tolist() == [1, 0]
    assert check_binary_actions(np.array([1, 0], np.uint8), (2,)).dtype == np.int64
    for bad in (Tensor([[0.0, 1.0]]), np.array([[0.0, 1.0]])):
        with pytest.raises(TypeError, match=r"^Bernoulli.log_prob: actions must be integers 0/1 or "
                                            r"bools, got dtype float64$"):
            check_binary_actions(bad, (1, 2))
    with pytest.raises(ValueError, match=r"^Bernoulli.log_prob: actions have shape \(2,\), the logits "
                                         r"have shape \(1, 2\)$"):
        check_binary_actions(np.array([0, 1]), (1, 2))
    with pytest.raises(ValueError, match=r"^Bernoulli.log_prob: actions must be boolean or 0/1, got 2 "
                                         r"at index \(0, 1\)$"):
        check_binary_actions(np.array([[1, 2]]), (1, 2))
