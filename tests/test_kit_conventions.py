"""A library's deliberate convention is named as one, not as a bug, and can be checked against.

Each convention is planted as its library writes it: PyTorch where the library is built on
torch (Stable-Baselines3, torchrl, CleanRL, Spinning Up; skipped when torch is absent), numpy
where the library's arithmetic is numpy's or TensorFlow's / JAX's (OpenAI baselines, Keras's
Adam, optax), written out from their update rules. Without --convention the check fails (exit
1) and the report's FIRST line names the convention, whose it is and the translation; with
--convention NAME it passes (exit 0).
"""
import json
import math

import numpy as np
import pytest

from ppo_ref.losses import value_loss
from ppo_ref.spec import variants, verify


def torch_fn(make):
    """The function `make(torch)` builds, torch imported (the test is skipped without it)."""
    torch = pytest.importorskip("torch")
    return make(torch)


# ----- torch libraries -------------------------------------------------------------------------

def sb3_value_loss(torch):          # stable_baselines3/ppo/ppo.py: F.mse_loss(returns, values_pred)
    def fn(values, returns):
        v = torch.tensor(values, dtype=torch.float32, requires_grad=True)
        loss = torch.nn.functional.mse_loss(torch.tensor(returns, dtype=torch.float32), v)
        loss.backward()
        return loss.item(), v.grad
    return fn


def sb3_clipped_value_loss(torch):  # SB3 with clip_range_vf: the clipped prediction, mse
    def fn(values, returns, old_values, clip_eps):
        v = torch.tensor(values, dtype=torch.float32, requires_grad=True)
        old = torch.tensor(old_values, dtype=torch.float32)
        pred = old + torch.clamp(v - old, -clip_eps, clip_eps)
        loss = torch.nn.functional.mse_loss(torch.tensor(returns, dtype=torch.float32), pred)
        loss.backward()
        return loss.item(), v.grad
    return fn


def torchrl_value_loss(torch):      # torchrl ClipPPOLoss: distance_loss(..., "smooth_l1")
    def fn(values, returns, *clipping_ignored):
        v = torch.tensor(values, dtype=torch.float32, requires_grad=True)
        loss = torch.nn.functional.smooth_l1_loss(v, torch.tensor(returns, dtype=torch.float32))
        loss.backward()
        return loss.item(), v.grad
    return fn


def unclipped_value_loss(torch):    # SB3's default clip_range_vf=None: the value is not clipped
    def fn(values, returns, old_values, clip_eps):
        v = torch.tensor(values, dtype=torch.float64, requires_grad=True)
        loss = 0.5 * ((v - torch.tensor(returns)) ** 2).mean()
        loss.backward()
        return loss.item(), v.grad
    return fn


def value_clip_range_half(torch):   # CleanRL's clipped loss, the value clipped to its own 0.5
    def fn(values, returns, old_values, clip_eps):
        v = torch.tensor(values, dtype=torch.float64, requires_grad=True)
        ret, old = torch.tensor(returns), torch.tensor(old_values)
        unclipped = (v - ret) ** 2
        clipped = (old + torch.clamp(v - old, -0.5, 0.5) - ret) ** 2
        loss = 0.5 * torch.max(unclipped, clipped).mean()
        loss.backward()
        return loss.item(), v.grad
    return fn


def torchrl_advantages(torch):      # ClipPPOLoss(normalize_advantage=False): used as they are
    return lambda advantages, eps: torch.tensor(advantages)


def trl_masked_whiten(torch):       # trl.core.masked_whiten over the valid tokens
    def fn(advantages, mask):
        values, m = torch.tensor(advantages), torch.tensor(mask, dtype=torch.float64)
        mean = (values * m).sum() / m.sum()
        var = (((values - mean) ** 2) * m).sum() / m.sum()
        var = var * m.sum() / (m.sum() - 1)          # masked_var(unbiased=True)
        return ((values - mean) * torch.rsqrt(var + 1e-8))[torch.tensor(mask)]
    return fn


def spinning_up_kl(torch):          # spinup/algos/pytorch/ppo: (logp_old - logp).mean().item()
    return lambda logp_new, logp_old: (torch.tensor(logp_old) - torch.tensor(logp_new)).mean().item()


def cleanrl_kl(torch):              # cleanrl/ppo.py: ((ratio - 1) - logratio).mean()
    def fn(logp_new, logp_old):
        logratio = torch.tensor(logp_new) - torch.tensor(logp_old)
        return ((logratio.exp() - 1) - logratio).mean().item()
    return fn


# ----- numpy / TensorFlow / JAX libraries, their arithmetic in numpy ---------------------------

def baselines_advantages(advantages, eps):   # baselines/ppo2/model.py (numpy's std)
    return (advantages - advantages.mean()) / (advantages.std() + eps)


def baselines_kl(logp_new, logp_old):        # ppo2: .5 * mean(square(neglogpac - OLDNEGLOGPAC))
    return 0.5 * np.mean(np.square(-logp_new + logp_old))


def keras_adam(param, grads, lr, beta1, beta2, eps):   # tf.keras Adam / TF1 AdamOptimizer
    theta, m, v, out = param.copy(), np.zeros_like(param), np.zeros_like(param), []
    for t, g in enumerate(grads, 1):
        lr_t = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        theta = theta - lr_t * m / (np.sqrt(v) + eps)
        out.append(theta)
    return np.array(out)


def optax_clip(grads, max_norm):             # optax.clip_by_global_norm
    g_norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    if g_norm < max_norm:
        return g_norm, grads
    return g_norm, [g * (max_norm / g_norm) for g in grads]


# (convention, quantity, function, --convention argument)
PLANTED = [
    ("sb3_mse", "value_loss", lambda: torch_fn(sb3_value_loss), "sb3_mse"),
    ("sb3_clip_range_vf", "value_loss_clipped", lambda: torch_fn(sb3_clipped_value_loss),
     "sb3_clip_range_vf"),
    ("torchrl_smooth_l1", "value_loss", lambda: torch_fn(torchrl_value_loss), "torchrl_smooth_l1"),
    ("no_value_clipping", "value_loss_clipped", lambda: torch_fn(unclipped_value_loss),
     "no_value_clipping"),
    ("value_clip_range", "value_loss_clipped", lambda: torch_fn(value_clip_range_half),
     "value_clip_range=0.5"),
    ("ddof0", "normalize_advantages", lambda: baselines_advantages, "ddof0"),
    ("no_advantage_normalisation", "normalize_advantages", lambda: torch_fn(torchrl_advantages),
     "no_advantage_normalisation"),
    ("trl_masked_whiten", "rlhf_whitening", lambda: torch_fn(trl_masked_whiten),
     "trl_masked_whiten"),
    ("k1", "approx_kl", lambda: torch_fn(spinning_up_kl), "k1"),
    ("k2", "approx_kl", lambda: baselines_kl, "k2"),
    ("k3", "approx_kl_k1", lambda: torch_fn(cleanrl_kl), "k3"),
    ("tf_adam_eps", "adam", lambda: keras_adam, "tf_adam_eps"),
    ("optax_clip_by_global_norm", "clip_grad_norm", lambda: optax_clip,
     "optax_clip_by_global_norm"),
]


def test_every_convention_of_a_quantity_is_planted_here():
    planted = {c for c, *_ in PLANTED}
    assert planted == {c.name for c in variants.CONVENTIONS.values() if c.knobs}


@pytest.mark.parametrize("name, quantity, make, flag", PLANTED, ids=[p[0] for p in PLANTED])
def test_a_convention_fails_plainly_but_its_first_line_names_it(name, quantity, make, flag):
    fn = make()
    report = verify.check(fn, quantity)
    assert report.status == "fail" and report.exit_code == 1, report
    first = str(report).splitlines()[0]
    c = variants.CONVENTIONS[name]
    assert first.startswith(f"CONVENTION {name}: ") and c.whose in first and c.translation in first
    assert report.convention["name"] == name and not report.convention["checked"]
    assert name in [p["name"].partition("=")[0] for p in report.diagnosis_parts]


@pytest.mark.parametrize("name, quantity, make, flag", PLANTED, ids=[p[0] for p in PLANTED])
def test_checked_against_its_convention_it_passes(name, quantity, make, flag):
    report = verify.check(make(), quantity, convention=flag)
    assert report.passed and report.exit_code == 0, report
    assert report.convention["name"] == name and report.convention["checked"]
    assert f"adjusted to convention {name}" in str(report).splitlines()[0]


def test_sb3s_value_loss_is_a_convention_and_still_the_missing_half_mistake():
    report = verify.check(torch_fn(sb3_value_loss), "value_loss")
    assert report.mistake == "missing_half" and report.convention["name"] == "sb3_mse"
    assert "vf_coef 2c" in str(report).splitlines()[0]


def test_a_convention_with_a_mistake_on_top_names_both():
    def sb3_summed(values, returns):   # SB3's F.mse_loss, then reduction="sum" by mistake
        return float(np.sum((values - returns) ** 2))
    report = verify.check(sb3_summed, "value_loss")
    assert {p["name"] for p in report.diagnosis_parts} == {"sb3_mse", "sum_instead_of_mean"}
    assert sorted(p["kind"] for p in report.diagnosis_parts) == ["convention", "mistake"]
    assert str(report).startswith("CONVENTION sb3_mse: ")
    with_flag = verify.check(sb3_summed, "value_loss", convention="sb3_mse")
    assert with_flag.status == "fail" and with_flag.mistake == "sum_instead_of_mean", with_flag


def test_ppo_refs_own_function_against_a_convention_is_not_that_convention():
    report = verify.check(value_loss, "value_loss", convention="sb3_mse")
    assert report.status == "fail" and report.convention["checked"]


@pytest.mark.parametrize("flag, words", [
    ("sb3", "unknown convention 'sb3'"),
    ("k1", "does not apply to quantity 'gae'"),
    ("value_clip_range=wide", "'wide' is not a number"),
])
def test_a_convention_that_does_not_exist_or_apply_is_an_error(flag, words):
    with pytest.raises(ValueError, match=words):
        verify.check(lambda *a: a, "gae", convention=flag)


def test_the_command_line_lists_checks_and_reports_conventions(tmp_path, monkeypatch, capsys):
    assert verify.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for name in variants.CONVENTIONS:
        assert name in listed
    (tmp_path / "baselines_like.py").write_text(
        "def normalize(advantages, eps):\n"
        "    return (advantages - advantages.mean()) / (advantages.std() + eps)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "r.json"
    args = ["baselines_like:normalize", "--quantity", "normalize_advantages", "--json", str(out)]
    assert verify.main(args) == 1
    assert capsys.readouterr().out.startswith("CONVENTION ddof0: ")
    data = json.loads(out.read_text())
    assert data["convention"]["name"] == "ddof0" and data["diagnosis"]["parts"][0]["kind"] == \
        "convention"
    assert verify.main(args + ["--convention", "ddof0"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert json.loads(out.read_text())["convention"]["checked"] is True
    assert verify.main(args + ["--convention", "k1"]) == 2
    assert "does not apply to quantity 'normalize_advantages'" in capsys.readouterr().out
