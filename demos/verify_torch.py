"""Check a compact PyTorch (float32) PPO against ppo_ref with the conformance kit.

    python demos/verify_torch.py [--out DIR]

Three correct pieces written the way a PyTorch PPO writes them (GAE, the clipped loss with
its gradient, torch.optim.Adam) pass in float32, and three classic bugs are caught and
named: a GAE that treats truncation as termination (CleanRL-style `dones`), a clipped
loss that clips the ratio but skips min(...), and a value loss written with
F.mse_loss (no 0.5). Then whole PPO updates, discrete and continuous: the scenarios written
by `ppo-ref verify scenario [--continuous]` are replayed in torch from their files alone and
their weights checked with verify-update. The reports also go to DIR/verify_torch.json.

torch is never a dependency of ppo_ref: without it this demo says so and exits 0.
"""
from __future__ import annotations

import json
import sys

from _common import parse_args, save_json  # first: puts the repository on sys.path, pins BLAS

import numpy as np

from ppo_ref.spec.verify import check
from ppo_ref.spec.update import compare_weights, load_scenario, write_scenario

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None


def f32(x):
    return torch.as_tensor(x, dtype=torch.float32)


def torch_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """GAE on (T, N) tensors: bootstrap unless terminated, cut the sum at any episode end."""
    r, v, nv = f32(rewards), f32(values), f32(next_values)
    not_terminated = 1.0 - f32(terminated)
    not_done = 1.0 - f32(terminated | truncated)
    advantages, last = torch.zeros_like(r), torch.zeros_like(r[0])
    for t in reversed(range(r.shape[0])):
        delta = r[t] + gamma * not_terminated[t] * nv[t] - v[t]
        last = delta + gamma * lam * not_done[t] * last
        advantages[t] = last
    return advantages, advantages + v


def torch_gae_with_dones(rewards, values, next_values, terminated, truncated, gamma, lam):
    """BUG: one `dones` flag for both uses, so a truncated episode is not bootstrapped."""
    return torch_gae(rewards, values, next_values, terminated | truncated, truncated, gamma, lam)


def torch_clipped_loss(logp_new, logp_old, advantages, clip_eps):
    """(loss, d loss / d logp_new) of -mean(min(r A, clip(r, 1 - eps, 1 + eps) A))."""
    new = f32(logp_new).requires_grad_()
    ratio = (new - f32(logp_old)).exp()
    adv = f32(advantages)
    loss = -torch.min(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv).mean()
    loss.backward()
    return loss, new.grad                   # torch tensors: the kit converts them


def torch_clipped_loss_no_min(logp_new, logp_old, advantages, clip_eps):
    """BUG: the clipped ratio alone, without the pessimistic min(...)."""
    ratio = (f32(logp_new) - f32(logp_old)).exp()
    return -(ratio.clamp(1 - clip_eps, 1 + clip_eps) * f32(advantages)).mean()


def torch_value_loss_mse(values, returns):
    """F.mse_loss: mean((V - R)^2), without the 0.5 that ppo_ref and CleanRL use."""
    return F.mse_loss(f32(values), f32(returns))


def torch_adam(param, grads, lr, beta1, beta2, eps):
    """torch.optim.Adam stepped with the given gradients; the parameter after each step."""
    p = f32(param).requires_grad_()
    optimizer = torch.optim.Adam([p], lr=lr, betas=(beta1, beta2), eps=eps)
    after = []
    for g in f32(grads):
        p.grad = g.clone()
        optimizer.step()
        after.append(p.detach().clone())
    return torch.stack(after)


def torch_replay(directory) -> dict:
    """One PPO update in float32 torch, read from a scenario's files and its documented procedure."""
    doc = json.loads((directory / "scenario.json").read_text())
    hp, eps = doc["hyperparameters"], doc["hyperparameters"]["clip_eps"]
    params = {k: f32(v).requires_grad_() for k, v in np.load(directory / "initial_weights.npz").items()}
    batch = dict(np.load(directory / "batch.npz"))

    def mlp(prefix, x):   # weights are (in, out): x @ W + b; tanh between layers
        n = sum(k.startswith(prefix) and k.endswith(".weight") for k in params)
        for i in range(n):
            x = x @ params[f"{prefix}.layers.{i}.weight"] + params[f"{prefix}.layers.{i}.bias"]
            x = torch.tanh(x) if i < n - 1 else x
        return x
    optimizer = torch.optim.Adam(params.values(), lr=hp["lr"], betas=hp["adam_betas"],
                                 eps=hp["adam_eps"])
    for idx in batch["minibatches"]:
        obs, adv = f32(batch["obs"][idx]), f32(batch["advantages"][idx])
        if hp["norm_adv"]:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        if "log_std" in params:   # Box actions: N(mean, exp(log_std)), densities summed over D
            dist = torch.distributions.Normal(mlp("pi", obs), params["log_std"].exp())
            logp = dist.log_prob(f32(batch["actions"][idx])).sum(-1)
            entropy = dist.entropy().sum(-1)
        else:
            dist = torch.distributions.Categorical(logits=mlp("pi", obs))
            logp = dist.log_prob(torch.as_tensor(batch["actions"][idx]))
            entropy = dist.entropy()
        values, returns, old = mlp("vf", obs)[:, 0], f32(batch["returns"][idx]), f32(batch["values"][idx])
        ratio = (logp - f32(batch["logp"][idx])).exp()
        policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv).mean()
        value_loss = 0.5 * torch.max((values - returns) ** 2,
                                     (old + (values - old).clamp(-eps, eps) - returns) ** 2).mean()
        loss = policy_loss + hp["vf_coef"] * value_loss - hp["ent_coef"] * entropy.mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), hp["max_grad_norm"])
        optimizer.step()
    return {k: p.detach().numpy() for k, p in params.items()}


CHECKS = [  # (quantity, function, expected to conform)
    ("gae", torch_gae, True),
    ("clipped_surrogate", torch_clipped_loss, True),
    ("adam", torch_adam, True),
    ("gae", torch_gae_with_dones, False),
    ("clipped_surrogate", torch_clipped_loss_no_min, False),
    ("value_loss", torch_value_loss_mse, False),
]


def main(argv=None) -> int:
    args = parse_args("Check a PyTorch float32 PPO against ppo_ref's conformance kit.", argv)
    if torch is None:
        print("verify_torch: PyTorch is not installed, so there is nothing to check here; "
              "install torch to run this demo (ppo_ref itself never needs it).")
        return 0
    torch.manual_seed(0)
    reports = []
    for quantity, fn, should_pass in CHECKS:
        report = check(fn, quantity, name=f"demos/verify_torch.py:{fn.__name__}")
        print(report, end="\n\n")
        reports.append(report.to_dict())
        if report.passed != should_pass:
            print(f"unexpected: {fn.__name__} {'failed' if should_pass else 'passed'}")
            return 1
    updates = {}
    for name, continuous in (("update", False), ("update_continuous", True)):
        scenario = write_scenario(args.out / f"scenario_{'box' if continuous else 'discrete'}",
                                  continuous=continuous)
        expected = load_scenario(scenario)
        updates[name] = compare_weights(expected["expected_weights"], torch_replay(scenario),
                                        lr=expected["hyperparameters"]["lr"])
        print(f"whole update replayed in torch from {scenario}:\n{updates[name]}")
    save_json({"torch_version": torch.__version__, "reports": reports,
               **{k: u.to_dict() for k, u in updates.items()}}, args.out / "verify_torch.json")
    return max(u.exit_code for u in updates.values())


if __name__ == "__main__":
    sys.exit(main())
