"""verify-update names the implementation detail a whole update got different.

The update with its details as switches is written here in PyTorch, the way CleanRL and
Stable-Baselines3 write theirs (skipped when torch is absent): each detail of the issue's list
is planted alone, some in pairs, an early stop, and a fresh shuffle of the minibatches, and
`ppo-ref verify-update` must name it. Without torch, the same diagnosis runs on weights from
update_variants itself (the search and the report), and update_variants' update with every
switch at its default must be ppo_update bit for bit.
"""
import json
import math

import numpy as np
import pytest

from ppo_ref.spec import update as verify_update
from ppo_ref.spec import update_variants
from ppo_ref.spec.update_variants import UPDATE_VARIANTS


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return verify_update.write_scenario(tmp_path_factory.mktemp("scenario"))


def run(scenario, tmp_path, weights, capsys, *flags, losses=None):
    np.savez(tmp_path / "theirs.npz", **weights)
    args = [str(scenario), str(tmp_path / "theirs.npz"), "--json", str(tmp_path / "r.json"), *flags]
    if losses is not None:
        (tmp_path / "losses.json").write_text(json.dumps(losses))
        args += ["--losses", str(tmp_path / "losses.json")]
    code = verify_update.main(args)
    return code, capsys.readouterr().out, json.loads((tmp_path / "r.json").read_text())


def variant_weights(scenario, steps=None, minibatches=None, **knobs):
    agent, config, batch, mbs, hp = verify_update.setup(verify_update.load_scenario(scenario))
    weights, infos = update_variants.variant_update(agent, batch, config, minibatches or mbs, hp,
                                                    **knobs)
    return weights[(steps or len(weights)) - 1], infos


# ----- without torch: the variant update itself, and the search -------------------------------

@pytest.mark.parametrize("continuous", [False, True])
def test_the_variant_update_at_its_defaults_is_ppo_update_bit_for_bit(tmp_path, continuous):
    out = verify_update.write_scenario(tmp_path, continuous=continuous)
    weights, _ = variant_weights(out)
    expected = verify_update.load_scenario(out)["expected_weights"]
    for key in expected:
        np.testing.assert_array_equal(weights[key], expected[key])


def test_every_update_variant_moves_the_weights(scenario):
    expected = verify_update.load_scenario(scenario)["expected_weights"]
    for v in UPDATE_VARIANTS:
        weights, _ = variant_weights(scenario, **v.knobs)
        assert max(np.abs(weights[k] - expected[k]).max() for k in expected) > 1e-4, v.name


def test_a_matching_update_gets_no_diagnosis(scenario, tmp_path, capsys):
    weights, _ = verify_update.replay(scenario)
    code, out, data = run(scenario, tmp_path, weights, capsys)
    assert code == 0 and "diagnosis" not in out
    assert data["diagnosis"] == {"text": None, "parts": []} and data["convention"] is None


@pytest.mark.parametrize("variant", ["advantages_per_batch", "entropy_wrong_sign",
                                     "minibatch_order_repeated"])
def test_the_diagnosis_names_the_variant_whose_weights_are_given(scenario, tmp_path, capsys,
                                                                 variant):
    v = next(v for v in UPDATE_VARIANTS if v.name == variant)
    code, out, data = run(scenario, tmp_path, variant_weights(scenario, **v.knobs)[0], capsys)
    assert code == 1
    assert f"diagnosis: your weights match ppo_ref with {v.text}; worst error under that " \
           f"variant 0" in out
    assert [p["name"] for p in data["diagnosis"]["parts"]] == [variant]


def test_kl_stop_variants_are_tried_only_where_the_scenario_has_a_target_kl(tmp_path, capsys):
    out = verify_update.write_scenario(tmp_path / "kl", target_kl=0.002)
    weights, _ = variant_weights(out, kl_stop="after")
    code, text, data = run(out, tmp_path, weights, capsys)
    assert [p["name"] for p in data["diagnosis"]["parts"]] == ["kl_stop_after_the_step"]
    assert "checked after the step" in text
    assert not any("kl_stop" in v.knobs for v in UPDATE_VARIANTS)


def test_a_pair_and_an_early_stop_are_named(scenario, tmp_path, capsys):
    weights, _ = variant_weights(scenario, entropy="missing", grad_clip="off")
    code, out, data = run(scenario, tmp_path, weights, capsys)
    assert {p["name"] for p in data["diagnosis"]["parts"]} == {"entropy_missing",
                                                                "no_gradient_clipping"}
    weights, _ = variant_weights(scenario, steps=5)
    code, out, data = run(scenario, tmp_path, weights, capsys)
    assert "your weights match ppo_ref stopped after 5 of 12 minibatch steps" in out
    assert [p["name"] for p in data["diagnosis"]["parts"]] == ["stopped_early"]


def test_the_issues_report_shape_and_the_convention_on_the_first_line(scenario, tmp_path, capsys):
    weights, _ = variant_weights(scenario, adv_norm="batch")
    code, out, data = run(scenario, tmp_path, weights, capsys)
    lines = out.splitlines()
    assert lines[0].startswith("CONVENTION batch_advantage_normalisation: ")
    assert lines[1].startswith("ppo_ref verify-update: FAIL")
    assert ("diagnosis: your weights match ppo_ref with advantages normalised once over the "
            "whole batch (ppo_ref, CleanRL and SB3 normalise each minibatch); worst error under "
            "that variant 0") in lines
    assert data["convention"]["name"] == "batch_advantage_normalisation"
    code, out, data = run(scenario, tmp_path, weights, capsys, "--convention",
                          "batch_advantage_normalisation")
    assert code == 0 and "adjusted to convention batch_advantage_normalisation" in out


@pytest.mark.parametrize("flag, words", [("k1", "does not apply to a whole update"),
                                         ("nope", "unknown convention 'nope'")])
def test_a_convention_verify_update_cannot_use_is_an_error(scenario, tmp_path, capsys, flag, words):
    weights, _ = verify_update.replay(scenario)
    code, out, _ = run(scenario, tmp_path, weights, capsys, "--convention", flag)
    assert code == 2 and out.startswith("ERROR") and words in out


def test_the_losses_separate_a_loss_mistake_from_an_optimiser_mistake(scenario, tmp_path, capsys):
    weights, infos = variant_weights(scenario, value_half=False)     # the loss: minibatch 0
    losses = [{"loss": i["loss"]} for i in infos]
    code, out, data = run(scenario, tmp_path, weights, capsys, losses=losses)
    assert "minibatch 0 is computed at the initial weights, before any step, and its loss " \
           "differs: a loss mistake" in out
    weights, infos = variant_weights(scenario, adam_bias_correction=False)   # the step
    losses = [{"loss": i["loss"], "value_loss": i["value_loss"]} for i in infos]
    code, out, data = run(scenario, tmp_path, weights, capsys, losses=losses)
    assert "the losses agree up to minibatch 0 and differ at minibatch 1" in out
    assert "an optimiser mistake" in data["loss_diagnosis"]
    assert "Adam without bias correction" in data["diagnosis"]["text"]


def test_an_unrecognised_update_says_so(scenario, tmp_path, capsys):
    weights, _ = verify_update.replay(scenario)
    weights = {k: w + 1e-3 * np.sign(w) for k, w in weights.items()}
    code, out, data = run(scenario, tmp_path, weights, capsys)
    assert code == 1 and "diagnosis: no known implementation detail" in out


# ----- the update in PyTorch, detail by detail ---------------------------------------------------

def torch_update(scenario, *, adv="minibatch", ddof=1, value_clip=True, vf_range=None,
                 value_half=True, grad_clip="global", adam="torch", entropy="bonus",
                 order="given", stop_after=None, fresh_seed=None, dtype="float64", kl_stop=None):
    """One PPO update in torch from the scenario's files, CleanRL's loop with a switch per
    detail (SB3 writes the same steps; its defaults are noted where they differ). kl_stop, with
    the scenario's target_kl: "before" a step (SB3, ppo_ref), "after" it, "epoch" (CleanRL)."""
    torch = pytest.importorskip("torch")
    dt = getattr(torch, dtype)
    doc = json.loads((scenario / "scenario.json").read_text())
    hp = doc["hyperparameters"]
    eps = hp["clip_eps"]
    params = {k: torch.tensor(v, dtype=dt, requires_grad=True)
              for k, v in np.load(scenario / "initial_weights.npz").items()}
    batch = {k: v for k, v in np.load(scenario / "batch.npz").items()}
    t = {k: torch.tensor(batch[k], dtype=dt) for k in ("obs", "logp", "values", "returns")}
    advantages = torch.tensor(batch["advantages"], dtype=dt)
    actions = torch.tensor(batch["actions"])

    def mlp(prefix, x):
        n = sum(k.startswith(prefix) and k.endswith(".weight") for k in params)
        for i in range(n):
            x = x @ params[f"{prefix}.layers.{i}.weight"] + params[f"{prefix}.layers.{i}.bias"]
            x = torch.tanh(x) if i < n - 1 else x
        return x

    def normalise(a):   # torch's .std() is ddof = 1; numpy's (baselines) ddof = 0
        return (a - a.mean()) / (a.std(correction=ddof) + 1e-8)

    epochs, rows = hp["update_epochs"], batch["minibatches"]
    per_epoch, size = hp["num_minibatches"], len(rows[0])
    if order == "given":
        minibatches = [torch.as_tensor(r) for r in rows]
    elif order == "sequential":            # no shuffle at all
        minibatches = list(torch.arange(hp["batch_size"]).split(size)) * epochs
    elif order == "repeated":              # one permutation drawn once, reused each epoch
        minibatches = [torch.as_tensor(r) for r in rows[:per_epoch]] * epochs
    else:                                  # CleanRL's own np.random.shuffle / SB3's permutation
        g = torch.Generator().manual_seed(fresh_seed)
        minibatches = [i for _ in range(epochs)
                       for i in torch.randperm(hp["batch_size"], generator=g).split(size)]
    if adv == "batch":
        advantages = normalise(advantages)

    lr, (b1, b2), adam_eps = hp["lr"], hp["adam_betas"], hp["adam_eps"]
    if adam == "torch":
        optimizer = torch.optim.Adam(params.values(), lr=lr, betas=(b1, b2), eps=adam_eps)
    moments = {k: (torch.zeros_like(p), torch.zeros_like(p)) for k, p in params.items()}
    for step, idx in enumerate(minibatches):
        if stop_after is not None and step == stop_after:
            break
        obs = t["obs"][idx]
        a = advantages[idx]
        if adv == "minibatch":
            a = normalise(a)
        dist = torch.distributions.Categorical(logits=mlp("pi", obs))
        logratio = dist.log_prob(actions[idx]) - t["logp"][idx]
        ratio = logratio.exp()
        pg_loss = torch.max(-a * ratio, -a * torch.clamp(ratio, 1 - eps, 1 + eps)).mean()
        v, ret, old = mlp("vf", obs)[:, 0], t["returns"][idx], t["values"][idx]
        if value_clip:
            r = eps if vf_range is None else vf_range
            v_clipped = old + torch.clamp(v - old, -r, r)
            sq = torch.max((v - ret) ** 2, (v_clipped - ret) ** 2)
        else:
            sq = (v - ret) ** 2
        v_loss = (0.5 if value_half else 1.0) * sq.mean()
        ent = dist.entropy().mean()
        loss = pg_loss + hp["vf_coef"] * v_loss
        if entropy == "bonus":
            loss = loss - hp["ent_coef"] * ent
        elif entropy == "wrong_sign":
            loss = loss + hp["ent_coef"] * ent
        with torch.no_grad():
            approx_kl = ((ratio - 1) - logratio).mean().item()
        exceeded = kl_stop is not None and approx_kl > hp["target_kl"]
        if exceeded and kl_stop == "before":
            break
        for p in params.values():
            p.grad = None
        loss.backward()
        if grad_clip == "global":
            torch.nn.utils.clip_grad_norm_(params.values(), hp["max_grad_norm"])
        elif grad_clip == "per_parameter":
            for p in params.values():
                torch.nn.utils.clip_grad_norm_([p], hp["max_grad_norm"])
        if adam == "torch":
            optimizer.step()
            if exceeded and (kl_stop == "after" or kl_stop == "epoch" and (step + 1) % per_epoch == 0):
                break
            continue
        with torch.no_grad():   # Keras's Adam (eps-hat), or Adam without bias correction
            n = step + 1
            for k, p in params.items():
                m, s = moments[k]
                m.mul_(b1).add_((1 - b1) * p.grad)
                s.mul_(b2).add_((1 - b2) * p.grad * p.grad)
                if adam == "keras":
                    lr_t = lr * math.sqrt(1 - b2 ** n) / (1 - b1 ** n)
                    p -= lr_t * m / (s.sqrt() + adam_eps)
                else:
                    p -= lr * m / (s.sqrt() + adam_eps)
    return {k: p.detach().numpy() for k, p in params.items()}


# variant name -> the torch update's switches
TORCH = {
    "advantages_per_batch": dict(adv="batch"),
    "advantages_not_normalised": dict(adv="none"),
    "advantages_ddof0": dict(ddof=0),
    "value_not_clipped": dict(value_clip=False),
    "value_clip_range=0.1": dict(vf_range=0.1),
    "value_clip_range=0.3": dict(vf_range=0.3),
    "value_clip_range=0.5": dict(vf_range=0.5),
    "value_loss_without_half": dict(value_half=False),
    "no_gradient_clipping": dict(grad_clip="off"),
    "gradient_clipped_per_parameter": dict(grad_clip="per_parameter"),
    "adam_tf_eps": dict(adam="keras"),
    "adam_no_bias_correction": dict(adam="no_bias_correction"),
    "entropy_missing": dict(entropy="missing"),
    "entropy_wrong_sign": dict(entropy="wrong_sign"),
    "minibatch_order_sequential": dict(order="sequential"),
    "minibatch_order_repeated": dict(order="repeated"),
}


def test_every_update_variant_is_planted_in_torch():
    assert set(TORCH) == {v.name for v in UPDATE_VARIANTS}


def test_the_torch_update_with_every_switch_at_ppo_refs_setting_passes(scenario, tmp_path, capsys):
    code, out, _ = run(scenario, tmp_path, torch_update(scenario), capsys)
    assert code == 0, out
    code, out, _ = run(scenario, tmp_path, torch_update(scenario, dtype="float32"), capsys)
    assert code == 0 and "float32" in out, out


@pytest.mark.parametrize("variant", sorted(TORCH))
def test_each_update_variant_written_in_torch_is_named(scenario, tmp_path, capsys, variant):
    code, out, data = run(scenario, tmp_path, torch_update(scenario, **TORCH[variant]), capsys)
    assert code == 1, out
    names = [p["name"] for p in data["diagnosis"]["parts"]]
    # a value range wider than any step moves the value is no clipping at all, and the reverse
    same = {"value_not_clipped", "value_clip_range=0.5"}
    assert names == [variant] or (variant in same and names[0] in same), out
    text = next(v.text for v in UPDATE_VARIANTS if v.name == names[0])
    assert f"diagnosis: your weights match ppo_ref with {text}" in out


@pytest.mark.parametrize("pair", [("advantages_per_batch", "value_loss_without_half"),
                                  ("no_gradient_clipping", "entropy_missing"),
                                  ("adam_tf_eps", "advantages_ddof0"),
                                  ("gradient_clipped_per_parameter", "minibatch_order_sequential")])
def test_pairs_of_update_variants_written_in_torch_are_named(scenario, tmp_path, capsys, pair):
    switches = {**TORCH[pair[0]], **TORCH[pair[1]]}
    code, out, data = run(scenario, tmp_path, torch_update(scenario, **switches), capsys)
    assert {p["name"] for p in data["diagnosis"]["parts"]} == set(pair), out


@pytest.mark.parametrize("stop_after", [3, 11])
def test_an_early_stop_written_in_torch_is_named(scenario, tmp_path, capsys, stop_after):
    code, out, data = run(scenario, tmp_path, torch_update(scenario, stop_after=stop_after), capsys)
    assert f"stopped after {stop_after} of 12 minibatch steps" in out


def test_a_fresh_torch_shuffle_is_named_as_likely(scenario, tmp_path, capsys):
    weights = torch_update(scenario, order="fresh", fresh_seed=1234)
    code, out, data = run(scenario, tmp_path, weights, capsys)
    assert code == 1 and "likely the minibatch order ignored (a fresh shuffle)" in out
    assert data["diagnosis"]["parts"][0]["name"] == "minibatch_order_fresh_shuffle"


@pytest.fixture(scope="module")
def kl_scenario(tmp_path_factory):   # ppo_ref stops before step 5 of 12 (approx_kl 0.0021)
    return verify_update.write_scenario(tmp_path_factory.mktemp("kl"), target_kl=0.002)


def test_a_scenario_with_a_target_kl_stops_early_and_says_how(kl_scenario):
    doc = verify_update.load_scenario(kl_scenario)
    assert doc["hyperparameters"]["target_kl"] == 0.002 and "Early stop" in doc["procedure"][-1]
    assert len(doc["expected_losses"]) == 5 and doc["expected_losses"][-1]["stopped"]


@pytest.mark.parametrize("rule, named", [("after", "kl_stop_after_the_step"),
                                         ("epoch", "kl_stop_per_epoch"),
                                         (None, "kl_stop_ignored")])
def test_where_a_torch_update_checks_its_kl_stop_is_named(kl_scenario, tmp_path, capsys, rule,
                                                          named):
    code, out, _ = run(kl_scenario, tmp_path, torch_update(kl_scenario, kl_stop="before"), capsys)
    assert code == 0, out
    code, out, data = run(kl_scenario, tmp_path, torch_update(kl_scenario, kl_stop=rule), capsys)
    assert [p["name"] for p in data["diagnosis"]["parts"]] == [named], out


def test_a_float32_torch_update_with_a_variant_is_named(scenario, tmp_path, capsys):
    weights = torch_update(scenario, adv="none", dtype="float32")
    code, out, data = run(scenario, tmp_path, weights, capsys)
    assert [p["name"] for p in data["diagnosis"]["parts"]] == ["advantages_not_normalised"], out
