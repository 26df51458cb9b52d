"""Check a compact PyTorch (float32) PPO against ppo_ref with the conformance kit.

    python demos/verify_torch.py [--out DIR]

Three correct pieces written the way a PyTorch PPO writes them (GAE, the clipped loss with
its gradient, torch.optim.Adam) pass in float32, and three classic bugs are caught and
named: a GAE that treats truncation as termination (CleanRL-style `dones`), a clipped
loss that clips the ratio but skips min(...), and a value loss written with
F.mse_loss (no 0.5). The reports also go to DIR/verify_torch.json.

torch is never a dependency of ppo_ref: without it this demo says so and exits 0.
"""
from __future__ import annotations

import sys

from _common import parse_args, save_json

from ppo_ref.verify import check

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
    save_json({"torch_version": torch.__version__, "reports": reports},
              args.out / "verify_torch.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
