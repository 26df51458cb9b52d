"""_checks.py: one check per argument at the boundary, trusted() for callers that made it already,
and arrays in -> arrays out / Tensors in -> Tensors out for the equations."""
import threading

import numpy as np
import pytest

from ppo_ref._checks import first_index, is_trusted, trusted
from ppo_ref.autodiff import Tensor
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
