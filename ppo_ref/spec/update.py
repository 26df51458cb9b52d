"""Whole-update conformance: replay one full PPO update in your framework, compare the weights.

    python -m ppo_ref.spec.verify scenario --out DIR [--continuous]     (or: ppo-ref verify scenario ...)
    ... load DIR in your code, run the update it describes, save your weights as THEIRS.npz ...
    python -m ppo_ref verify-update DIR THEIRS.npz [--torch-layout] [--losses LOSSES.json]

A scenario fixes everything an update depends on except the code: the initial weights, one
batch, the minibatch order and the hyperparameters. ppo_ref.train.trainer.ppo_update ran it and
stored the weights it ended with and the losses of every minibatch. If your update agrees,
every weight agrees; if not, verify-update names the first parameter and entry that
differ (and, with --losses, the first minibatch whose loss differs: minibatch 0 differing
means the loss; a later one, the gradient or the optimizer step), then replays the
scenario under each implementation detail that code gets different (update_variants.py:
advantage normalisation, value clipping, the 0.5, gradient clipping, Adam's eps and bias
correction, the entropy term, the minibatch order, an early stop), alone and in pairs, and
names those whose weights match yours. `--convention NAME` compares with ppo_ref adjusted
to a library's convention (SB3's value loss without the 0.5, ...) instead.

Files in DIR (scenario.json repeats this, field by field):

    scenario.json         hyperparameters, network, the procedure, expected per-minibatch losses
    initial_weights.npz   the parameters before the update
    batch.npz             obs, actions, logp, values, advantages, returns, minibatches
    expected_weights.npz  the parameters after the update

Weights are keyed as ppo_ref's ActorCritic.state_dict: "pi.layers.{i}.weight" of shape
(in, out) so that y = x @ W + b, "pi.layers.{i}.bias" (out,), "log_std" (D,) for a
continuous policy, "vf.layers.{i}.weight", "vf.layers.{i}.bias". torch.nn.Linear stores
weight as (out, in): transpose when loading, or save yours untransposed and pass
--torch-layout.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from gymnasium import spaces

from .._checks import first_index
from ..optim import Adam
from ..train.trainer import PPOConfig, build_agent, ppo_update, shuffled_minibatches
from . import update_variants
from .cases import grid
from .variants import CONVENTIONS, parse_convention
from .verify import Outcome, tolerance_problem

__all__ = ["make_scenario", "write_scenario", "load_scenario", "replay", "compare_weights",
           "UpdateReport", "scenario_main", "main"]

FORMAT = "ppo_ref.update_scenario/1"
DEFAULT_RTOL = {"float64": 1e-9, "float32": 1e-4}   # measured float32 replay: ~1e-5 relative
BATCH_KEYS = ("obs", "actions", "logp", "values", "advantages", "returns")

FIELDS = {
    "initial_weights.npz": "parameters before the update, keyed as ActorCritic.state_dict "
                           "(weights (in, out): y = x @ W + b)",
    "expected_weights.npz": "parameters after ppo_update, same keys and shapes",
    "batch.npz/obs": "(B, obs_dim) float64 observations",
    "batch.npz/actions": "(B,) int64 action indices (discrete) or (B, D) float64 unclipped actions",
    "batch.npz/logp": "(B,) log pi_old(a|s) under the initial weights",
    "batch.npz/values": "(B,) V_old(s) under the initial weights (the value-clipping centre)",
    "batch.npz/advantages": "(B,) advantages, before per-minibatch normalisation",
    "batch.npz/returns": "(B,) value targets R",
    "batch.npz/minibatches": "(update_epochs * num_minibatches, minibatch_size) int64 row "
                             "indices into the batch, in the order the gradient steps are taken",
    "hyperparameters/lr": "Adam's learning rate, constant through the update",
    "hyperparameters/adam_betas": "Adam's (beta1, beta2)",
    "hyperparameters/adam_eps": "Adam's eps, added to sqrt(v_hat) (torch semantics)",
    "hyperparameters/clip_eps": "the ratio's clip range eps, and the value-clipping range",
    "hyperparameters/vf_coef": "weight of the value loss in the total loss",
    "hyperparameters/ent_coef": "weight of the entropy bonus (subtracted) in the total loss",
    "hyperparameters/max_grad_norm": "global L2 norm the gradients are clipped to before each "
                                     "step (some minibatches exceed it, some do not)",
    "hyperparameters/norm_adv": "normalise the advantages within each minibatch (ddof = 1)",
    "hyperparameters/clip_vloss": "use the clipped value loss, centred on batch.npz/values",
    "hyperparameters/update_epochs": "passes over the batch (each a fresh permutation)",
    "hyperparameters/num_minibatches": "gradient steps per pass",
    "hyperparameters/batch_size": "B; minibatches has update_epochs * num_minibatches rows of "
                                  "B / num_minibatches indices",
    "hyperparameters/target_kl": "(only when given) the early stop: see the procedure's last step",
    "network": "obs_dim, action space, hidden sizes, activation, and every parameter's key, "
               "shape and role",
    "expected_losses": "one dict per minibatch step: loss, policy_loss, value_loss, entropy, "
                       "approx_kl (k3), clip_fraction (before the step) and grad_norm (before "
                       "clipping)",
}

PROCEDURE = [
    "Load initial_weights.npz into your networks (pi: obs -> logits or mean, tanh hidden layers, "
    "linear output; vf: obs -> one value; weights (in, out)). One Adam over all parameters, "
    "torch semantics: lr, betas, eps from hyperparameters, m = v = 0, step count from 1.",
    "For each row idx of minibatches, in order:",
    "  A = advantages[idx]; if norm_adv: A = (A - mean(A)) / (std(A, ddof=1) + 1e-8)",
    "  logp_new = log pi(actions[idx] | obs[idx]) (log_softmax of the logits; for a Gaussian the "
    "sum over D of the log-density with std = exp(log_std)), entropy likewise, V = vf(obs[idx])",
    "  r = exp(logp_new - logp[idx]); policy_loss = -mean(min(r A, clip(r, 1 - clip_eps, "
    "1 + clip_eps) A))",
    "  value_loss = 0.5 mean(max((V - R)^2, (V_old + clip(V - V_old, -clip_eps, clip_eps) - R)^2)) "
    "with R = returns[idx], V_old = values[idx] if clip_vloss, else 0.5 mean((V - R)^2)",
    "  loss = policy_loss + vf_coef * value_loss - ent_coef * mean(entropy)",
    "  gradients of loss; scale all of them by max_grad_norm / (norm + 1e-6) if that is < 1, "
    "norm = the global L2 norm (torch.nn.utils.clip_grad_norm_); one Adam step",
    "Save every parameter under the keys of initial_weights.npz and compare with verify-update.",
]


def _config(hidden, target_kl=None) -> PPOConfig:
    return PPOConfig(num_envs=4, num_steps=16, num_minibatches=4, update_epochs=3, lr=1e-2,
                     total_steps=64, clip_eps=0.2, norm_adv=True, clip_vloss=True, ent_coef=0.01,
                     vf_coef=0.5, max_grad_norm=0.4, hidden=tuple(hidden), activation="tanh",
                     target_kl=target_kl)


def make_scenario(continuous: bool = False, seed: int = 0, hidden=(8, 8), target_kl=None) -> dict:
    """Everything of a scenario in memory: config, spaces, initial/expected weights, batch,
    minibatches (list of index arrays), expected losses (list of dicts). target_kl: an early
    stop, checked before each step (ppo_update's rule)."""
    config = _config(hidden, target_kl)
    rng = np.random.default_rng(seed)
    obs_space = spaces.Box(-np.inf, np.inf, (3 if continuous else 4,), np.float64)
    act_space = spaces.Box(-1.0, 1.0, (2,), np.float64) if continuous else spaces.Discrete(2)
    agent = build_agent(config, obs_space, act_space, rng)
    initial = agent.state_dict()
    B = config.batch_size
    obs = grid(rng.normal(size=(B, obs_space.shape[0])))
    actions, logp, values = agent.act(obs, rng)
    batch = dict(obs=obs, actions=actions, logp=logp, values=values,
                 advantages=grid(rng.normal(size=B)), returns=grid(values + rng.normal(0, 0.5, B)))
    minibatches = shuffled_minibatches(B, config.update_epochs, config.num_minibatches, rng)
    optimizer = Adam(agent.parameters(), lr=config.lr)
    infos = ppo_update(agent, optimizer, batch, config, minibatches)
    return dict(config=config, obs_space=obs_space, action_space=act_space, agent=agent,
                initial_weights=initial, expected_weights=agent.state_dict(), batch=batch,
                minibatches=minibatches, expected_losses=infos, optimizer=optimizer, seed=seed)


KL_STOP = ("Early stop (target_kl given): before each step, after computing its minibatch's "
           "losses, stop the update if approx_kl (k3, the policy before the step against logp) "
           "> target_kl; that minibatch's losses are the last entry of expected_losses, "
           "grad_norm 0, and no step is taken.")


def _describe_network(s: dict) -> dict:
    agent = s["agent"]
    params = []
    for key, value in s["initial_weights"].items():
        role = "log std of the Gaussian policy (state-independent)" if key == "log_std" else \
            f"{'policy' if key.startswith('pi.') else 'value'} network, " \
            f"{'weight (in, out)' if key.endswith('weight') else 'bias (out,)'}"
        params.append({"key": key, "shape": list(value.shape), "role": role})
    space = s["action_space"]
    action = {"type": "Box", "dim": int(space.shape[0])} if agent.log_std is not None else \
        {"type": "Discrete", "n": int(space.n)}
    return {"obs_dim": agent.obs_dim, "action_space": action, "hidden": list(s["config"].hidden),
            "activation": s["config"].activation, "parameters": params}


def write_scenario(out_dir, continuous: bool = False, seed: int = 0, hidden=(8, 8),
                   target_kl=None) -> Path:
    """Write the scenario files into out_dir; returns its path."""
    s = make_scenario(continuous, seed, hidden, target_kl)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c, opt = s["config"], s["optimizer"]
    np.savez(out / "initial_weights.npz", **s["initial_weights"])
    np.savez(out / "expected_weights.npz", **s["expected_weights"])
    np.savez(out / "batch.npz", **s["batch"], minibatches=np.array(s["minibatches"], dtype=np.int64))
    doc = {
        "format": FORMAT,
        "description": "One PPO update (clipped objective, value clipping, entropy bonus, global "
                       "grad-norm clipping, Adam) by ppo_ref.train.trainer.ppo_update; replay it and compare "
                       "the weights with `ppo-ref verify-update DIR THEIRS.npz`.",
        "seed": seed,
        "files": FIELDS,
        "weight_layout": "every .weight is (in, out) and a layer computes y = x @ W + b; "
                         "torch.nn.Linear.weight is (out, in), the transpose: load W.T into it "
                         "and save weight.T back (or pass --torch-layout to verify-update)",
        "procedure": PROCEDURE + ([] if c.target_kl is None else [KL_STOP]),
        "hyperparameters": {"lr": c.lr, "adam_betas": list(opt.betas), "adam_eps": opt.eps,
                            "clip_eps": c.clip_eps, "vf_coef": c.vf_coef, "ent_coef": c.ent_coef,
                            "max_grad_norm": c.max_grad_norm, "norm_adv": c.norm_adv,
                            "clip_vloss": c.clip_vloss, "update_epochs": c.update_epochs,
                            "num_minibatches": c.num_minibatches, "batch_size": c.batch_size,
                            **({"target_kl": c.target_kl} if c.target_kl is not None else {})},
        "network": _describe_network(s),
        "expected_losses": s["expected_losses"],
        "tolerance": {"rule": "|theirs - expected| <= atol + rtol * |expected| per entry",
                      "default_rtol": DEFAULT_RTOL, "default_atol": "10 * rtol * lr"},
    }
    (out / "scenario.json").write_text(json.dumps(doc, indent=1) + "\n")
    return out


def load_scenario(directory) -> dict:
    """(scenario.json as a dict, with "initial_weights", "expected_weights" and "batch" arrays)."""
    d = Path(directory)
    doc = json.loads((d / "scenario.json").read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{d}/scenario.json: format {doc.get('format')!r}, expected {FORMAT!r}")
    for name in ("initial_weights", "expected_weights", "batch"):
        with np.load(d / f"{name}.npz") as f:
            doc[name] = {k: f[k] for k in f.files}
    return doc


def replay(directory, dtype: str = "float64") -> tuple:
    """Replay a scenario from its files with ppo_ref itself (the reference replay, and an example
    of one): (weights after the update, per-minibatch info dicts)."""
    agent, config, batch, minibatches, hp = setup(load_scenario(directory), dtype)
    optimizer = Adam(agent.parameters(), lr=hp["lr"], betas=tuple(hp["adam_betas"]),
                     eps=hp["adam_eps"])
    infos = ppo_update(agent, optimizer, batch, config, minibatches)
    return agent.state_dict(), infos


def setup(doc: dict, dtype: str = "float64") -> tuple:
    """What a replay starts from, out of a loaded scenario: (agent with the initial weights,
    PPOConfig, batch dict, minibatches list, hyperparameters dict)."""
    net, hp = doc["network"], doc["hyperparameters"]
    obs_space = spaces.Box(-np.inf, np.inf, (net["obs_dim"],), np.float64)
    a = net["action_space"]
    act_space = spaces.Discrete(a["n"]) if a["type"] == "Discrete" else \
        spaces.Box(-1.0, 1.0, (a["dim"],), np.float64)
    config = PPOConfig(num_envs=1, num_steps=hp["batch_size"], total_steps=hp["batch_size"],
                       num_minibatches=hp["num_minibatches"], update_epochs=hp["update_epochs"],
                       lr=hp["lr"], clip_eps=hp["clip_eps"], vf_coef=hp["vf_coef"],
                       ent_coef=hp["ent_coef"], max_grad_norm=hp["max_grad_norm"],
                       norm_adv=hp["norm_adv"], clip_vloss=hp["clip_vloss"],
                       target_kl=hp.get("target_kl"),
                       hidden=tuple(net["hidden"]), activation=net["activation"], dtype=dtype)
    agent = build_agent(config, obs_space, act_space, np.random.default_rng(0))
    agent.load_state_dict(doc["initial_weights"])
    batch = {k: doc["batch"][k] for k in BATCH_KEYS}
    if dtype == "float32":
        batch = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in batch.items()}
    return agent, config, batch, list(doc["batch"]["minibatches"]), hp


# ----- comparing ------------------------------------------------------------------------------

@dataclass
class UpdateReport(Outcome):
    """status "pass" / "fail" / "error" (exit 0 / 1 / 2); first_difference names the first
    parameter (in state_dict order) and entry beyond tolerance; differing lists all of them."""
    status: str
    n_parameters: int = 0
    n_entries: int = 0
    dtype: str | None = None
    rtol: float | None = None
    atol: float | None = None
    worst_abs_error: float = 0.0
    first_difference: dict | None = None
    differing: list = field(default_factory=list)
    first_loss_difference: dict | None = None
    error: str | None = None
    notes: list = field(default_factory=list)
    diagnosis: str | None = None
    diagnosis_parts: list = field(default_factory=list)
    convention: dict | None = None
    loss_diagnosis: str | None = None

    def to_dict(self) -> dict:
        """The dataclass's fields, with the diagnosis as {"text", "parts"} (as verify's)."""
        d = asdict(self)
        d["diagnosis"] = {"text": d["diagnosis"], "parts": d.pop("diagnosis_parts")}
        return d

    def __str__(self) -> str:
        if self.status == "error":
            return f"ERROR ppo_ref verify-update: {self.error}"
        c = self.convention
        lines = []
        if c and not c.get("checked"):   # the first thing a user reads: not a bug
            lines.append(f"CONVENTION {c['name']}: {c['what']}, as {c['whose']} (a convention, not "
                         f"a bug); translation: {c['translation']}; check it with --convention "
                         f"{c['name']}")
        against = f" (against ppo_ref adjusted to convention {c['name']})" \
            if c and c.get("checked") else ""
        lines += [f"ppo_ref verify-update{against}: {self.status.upper()}  {self.n_parameters} parameters, "
                 f"{self.n_entries} entries, {self.dtype}; |theirs - expected| <= {self.atol:g} + "
                 f"{self.rtol:g} * |expected|; worst abs error {self.worst_abs_error:.3g}"]
        if self.first_difference:
            f = self.first_difference
            lines.append(f"first difference: {f['key']}{f['index']}: expected {f['expected']!r}, "
                         f"got {f['got']!r}")
            lines.append(f"parameters that differ: {', '.join(self.differing)}")
        if self.first_loss_difference:
            f = self.first_loss_difference
            lines.append(f"first loss that differs: minibatch {f['minibatch']} {f['key']}: expected "
                         f"{f['expected']!r}, got {f['got']!r}")
        if self.loss_diagnosis:
            lines.append(f"losses: {self.loss_diagnosis}")
        if self.status == "fail":
            lines.append(f"diagnosis: {self.diagnosis}" if self.diagnosis else
                         "diagnosis: no known implementation detail (alone or in pairs) gives your "
                         "weights; replay the procedure in scenario.json step by step")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def compare_weights(expected: dict, theirs: dict, rtol=None, atol=None,
                    torch_layout: bool = False, lr: float = 1e-2) -> UpdateReport:
    """Compare their weights with the expected ones, key by key in expected's order.
    Default tolerance by their dtype: rtol from DEFAULT_RTOL, atol = 10 * rtol * lr (one
    Adam step moves a weight by about lr, so that is the scale errors are measured on)."""
    problem = tolerance_problem(rtol, atol)
    if problem:
        return UpdateReport("error", error=problem)
    missing = [k for k in expected if k not in theirs]
    extra = sorted(k for k in theirs if k not in expected)
    if missing:
        return UpdateReport("error", error=f"missing parameters {missing} (expected keys: "
                                           f"{list(expected)}; unexpected: {extra})")
    arrays, dtypes = {}, set()
    for key, exp in expected.items():
        got = np.asarray(theirs[key])
        if got.dtype.kind != "f":
            return UpdateReport("error", error=f"{key} has dtype {got.dtype}, not floating point")
        if torch_layout and key.endswith(".weight"):
            got = got.T
        if got.shape != exp.shape:
            hint = " (looks like torch's (out, in) layout: pass --torch-layout)" \
                if got.T.shape == exp.shape and not torch_layout else ""
            return UpdateReport("error", error=f"{key} has shape {got.shape}, expected "
                                               f"{exp.shape}{hint}")
        if not np.all(np.isfinite(got)):
            return UpdateReport("error", error=f"{key} contains nan or inf")
        dtypes.add(got.dtype.name)
        arrays[key] = got.astype(np.float64)
    dtype = "float32" if dtypes - {"float64"} else "float64"
    rtol = DEFAULT_RTOL[dtype] if rtol is None else float(rtol)
    atol = 10.0 * rtol * lr if atol is None else float(atol)
    report = UpdateReport("pass", n_parameters=len(expected), dtype=dtype, rtol=rtol, atol=atol,
                          n_entries=int(sum(v.size for v in expected.values())))
    if extra:
        report.notes.append(f"ignored keys not in the scenario: {extra}")
    for key, exp in expected.items():
        err = np.abs(arrays[key] - exp)
        report.worst_abs_error = max(report.worst_abs_error, float(err.max()))
        bad = err > atol + rtol * np.abs(exp)
        if bad.any():
            report.differing.append(key)
            if report.first_difference is None:
                i = first_index(bad)
                report.first_difference = dict(key=key, index=list(i), expected=float(exp[i]),
                                               got=float(arrays[key][i]))
    if report.differing:
        report.status = "fail"
    return report


LOSS_KEYS = ("loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction",
             "grad_norm")


def check_losses(expected: list, theirs) -> str | None:
    """Why `theirs` cannot be compared with the expected losses (None if it can): it must be a
    list with one entry per minibatch, each a number or a dict of numbers."""
    if not isinstance(theirs, list):
        return f"the losses must be a JSON list (one entry per minibatch), got a {type(theirs).__name__}"
    if len(theirs) != len(expected):
        return f"the losses list has {len(theirs)} entries, the scenario has {len(expected)} minibatches"
    for k, got in enumerate(theirs):
        values = got.values() if isinstance(got, dict) else [got]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return f"losses[{k}] is {got!r}: expected a number or a dict of numbers"
    return None


def compare_losses(expected: list, theirs, rtol: float) -> dict | None:
    """The first (minibatch, key) whose loss differs: theirs is a list of numbers (total loss)
    or of dicts with any of expected's keys (see check_losses)."""
    for k, (exp, got) in enumerate(zip(expected, theirs)):
        got = {"loss": got} if not isinstance(got, dict) else got
        for key in LOSS_KEYS:
            if key in got and key in exp and \
                    abs(float(got[key]) - exp[key]) > rtol * (1e-3 + abs(exp[key])):
                return dict(minibatch=k, key=key, expected=exp[key], got=float(got[key]))
    return None


# ----- diagnosis: which implementation detail differs ------------------------------------------

def diagnose_update(doc: dict, theirs: dict, report: UpdateReport, torch_layout: bool = False,
                    base: dict | None = None) -> None:
    """Fill a failed report's diagnosis: the implementation details (update_variants) whose
    replay of the scenario gives their weights, within the report's tolerance; else, when their
    weights are as far off as a fresh minibatch shuffle lands, that. base: the knobs of a
    convention checked against (--convention), kept in every replay."""
    lr = doc["hyperparameters"]["lr"]

    def agrees(weights):
        r = compare_weights(weights, theirs, report.rtol, report.atol, torch_layout, lr)
        return r.worst_abs_error if r.status == "pass" else None

    matches = update_variants.diagnose(doc, agrees, setup, base=base)
    if matches:
        first = matches[0]
        report.diagnosis = first.text() + "".join(
            f"; as well: {m.text().partition('match ')[2].partition('; worst')[0]}"
            for m in matches[1:])
        report.diagnosis_parts = [v.to_dict() for v in first.variants]
        if first.steps < first.total_steps:
            report.diagnosis_parts.append(dict(
                kind="mistake", name="stopped_early", convention=None,
                diagnosis=f"stopped after {first.steps} of {first.total_steps} minibatch steps"))
        names = [v.convention for v in first.variants if v.convention]
        if names and report.convention is None:
            report.convention = {**CONVENTIONS[names[0]].to_dict(), "checked": False}
        return
    expected = doc["expected_weights"] if base is None else None
    if expected is None:
        return

    def distance(weights):
        return max(float(np.max(np.abs(weights[k] - expected[k]))) for k in expected)
    low, high = update_variants.fresh_shuffle_spread(doc, distance, setup)
    if low / 2 <= report.worst_abs_error <= 2 * high:
        report.diagnosis = (
            f"likely the minibatch order ignored (a fresh shuffle): no implementation detail "
            f"gives your weights, and they are as far from ppo_ref's ({report.worst_abs_error:.3g}) "
            f"as ppo_ref's own update with a fresh minibatch order lands ({low:.3g} to "
            f"{high:.3g}); take the minibatches from batch.npz/minibatches, row by row")
        report.diagnosis_parts = [dict(kind="mistake", name="minibatch_order_fresh_shuffle",
                                       convention=None, diagnosis=report.diagnosis)]


def loss_diagnosis(first: dict | None) -> str:
    """What the first minibatch whose losses differ says: at minibatch 0 (the initial weights,
    before any step) the loss itself differs; later, a step before it (the optimiser)."""
    if first is None:
        return ("every minibatch's losses agree with ppo_ref's, so the loss is computed alike: "
                "the difference is in the gradient step (gradient clipping or Adam)")
    if first["minibatch"] == 0:
        return (f"minibatch 0 is computed at the initial weights, before any step, and its "
                f"{first['key']} differs: a loss mistake (advantage normalisation, value loss, "
                f"entropy term, coefficients), not the optimiser")
    k = first["minibatch"]
    return (f"the losses agree up to minibatch {k - 1} and differ at minibatch {k}: the loss is "
            f"computed as ppo_ref's; a step before it differs (an optimiser mistake: gradient "
            f"clipping, Adam), or the minibatch order")


def convention_weights(doc: dict, name: str) -> tuple:
    """(Convention, knobs, weights) of the scenario replayed by ppo_ref adjusted to a library's
    convention (its update knobs); ValueError when it has none."""
    c, _ = parse_convention(name)
    if not c.update:
        raise ValueError(f"convention {c.name} does not apply to a whole update (verify-update "
                         f"takes: {', '.join(n for n, x in CONVENTIONS.items() if x.update)})")
    agent, config, batch, minibatches, hp = setup(doc)
    weights, _ = update_variants.variant_update(agent, batch, config, minibatches, hp, **c.update)
    return c, dict(c.update), weights[-1]


# ----- command line ---------------------------------------------------------------------------

def scenario_main(argv=None) -> int:
    from ..cli import OneLineParser   # one-line errors; -1e-3 is a number
    p = OneLineParser(prog="ppo-ref verify scenario",
                                description="Write a whole-update conformance scenario.")
    p.add_argument("--out", required=True, help="directory to write the scenario into")
    p.add_argument("--continuous", action="store_true", help="a Gaussian policy (Box actions, "
                   "D = 2) instead of a categorical one (2 actions)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", default=[8, 8], metavar="H")
    p.add_argument("--target-kl", type=float, metavar="KL", help="an early stop: the update "
                   "ends before the first step whose minibatch has approx_kl > KL")
    args = p.parse_args(argv)
    try:
        out = write_scenario(args.out, args.continuous, args.seed, args.hidden, args.target_kl)
    except OSError as e:
        print(f"ERROR ppo_ref verify scenario: cannot write {args.out}: {type(e).__name__}: {e}")
        return 2
    print(f"wrote {out}/scenario.json, initial_weights.npz, batch.npz, expected_weights.npz")
    return 0


def main(argv=None) -> int:
    from ..cli import OneLineParser   # one-line errors; -1e-3 is a number
    p = OneLineParser(prog="ppo-ref verify-update",
                                description="Compare weights after replaying a scenario with the "
                                            "expected ones (exit 0 agree, 1 differ, 2 bad input).")
    p.add_argument("scenario", help="directory written by `ppo-ref verify scenario --out DIR`")
    p.add_argument("weights", help="your weights after the update (.npz, the scenario's keys)")
    p.add_argument("--torch-layout", action="store_true", help="your .weight arrays are (out, in)")
    p.add_argument("--losses", help="JSON list of your per-minibatch losses (numbers or dicts)")
    p.add_argument("--rtol", type=float)
    p.add_argument("--atol", type=float)
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--convention", metavar="NAME", help="compare with ppo_ref adjusted to a "
                   "library's convention (those marked * in `ppo-ref verify --list`)")
    p.add_argument("--no-diagnosis", action="store_true", help="on a difference, do not replay "
                   "the implementation-detail variants")
    args = p.parse_args(argv)
    conv = base = None
    try:
        doc = load_scenario(args.scenario)
        with np.load(args.weights) as f:
            theirs = {k: f[k] for k in f.files}
    except (OSError, ValueError, KeyError) as e:
        report = UpdateReport("error", error=f"cannot read input: {type(e).__name__}: {e}")
    else:
        if args.convention:
            try:   # the scenario replayed by ppo_ref adjusted to the convention is the reference
                conv, base, doc["expected_weights"] = convention_weights(doc, args.convention)
            except ValueError as e:   # unknown, or not one of a whole update
                return UpdateReport("error", error=str(e)).finish(args.json, "verify-update")
        report = compare_weights(doc["expected_weights"], theirs, args.rtol, args.atol,
                                 args.torch_layout, doc["hyperparameters"]["lr"])
        if conv is not None and report.status != "error":
            report.convention = {**conv.to_dict(), "checked": True, "knobs": base}
        if report.status == "fail" and not args.no_diagnosis:
            diagnose_update(doc, theirs, report, args.torch_layout, base)
        if args.losses and report.status != "error":
            try:
                losses = json.loads(Path(args.losses).read_text())
            except (OSError, ValueError) as e:
                problem = f"cannot read {args.losses}: {type(e).__name__}: {e}"
            else:
                problem = check_losses(doc["expected_losses"], losses)
                problem = problem and f"{args.losses}: {problem}"
            if problem:
                report = UpdateReport("error", error=problem)
            else:
                report.first_loss_difference = compare_losses(doc["expected_losses"], losses,
                                                              report.rtol)
                if report.first_loss_difference or report.status == "fail":
                    report.loss_diagnosis = loss_diagnosis(report.first_loss_difference)
                if report.first_loss_difference and report.status == "pass":
                    report.status = "fail"
    return report.finish(args.json, "verify-update")


if __name__ == "__main__":
    sys.exit(main())
