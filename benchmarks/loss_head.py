"""What the loss head as one graph node would give the update: `python -m benchmarks.loss_head`.

ppo_ref's update builds the loss head (log-softmax, the pick of log pi(a|s), the clipped
surrogate, the value loss, their sum) from autodiff primitives, each computing the same float
operations as their plain composition, so every documented figure stays bit for bit. A head
computed in plain numpy with the hand-written gradient of `benchmarks/handwritten.py`, as one
node between the two MLPs and the loss, would do less work, but sums the same terms in another
order: training would follow other trajectories (the same to rounding, step by step), and every
learning figure would have to be measured again. This measures what it would buy, in one run:

    update            samples x epochs per second of the trainer's ppo_update
    loss_head_update  the same minibatch steps with the head as one node (the MLPs, the
                      gradient clip and Adam as in ppo_update)
    handwritten       HandwrittenPPO: no graph at all
    and the efficiencies of the first two against the third (median of interleaved rounds).

It supports the clip objective with a Categorical policy, the CartPole-v1 preset's setting.
"""
from __future__ import annotations

import ppo_ref  # noqa: F401  (first: importing ppo_ref pins BLAS to one thread before numpy loads)

import argparse
import dataclasses
import sys
import time

import numpy as np

from benchmarks.bench import CLOCKS, _timed
from benchmarks.handwritten import HandwrittenPPO, loss_head, normalized
from ppo_ref._checks import trusted
from ppo_ref.autodiff import Tensor
from ppo_ref.losses import approx_kl, clip_fraction
from ppo_ref.optim import Adam
from ppo_ref.train.rollout import RolloutCollector, make_vec_env
from ppo_ref.train.trainer import PRESETS, build_agent, ppo_update, shuffled_minibatches
from ppo_ref.train.update import gradient_step

__all__ = ["loss_head_node", "loss_head_update", "measure", "main"]


def loss_head_node(logits, values, actions, logp_old, adv, returns, config, clip_eps):
    """The PPO loss of one minibatch as one node with parents (logits (B, A), values (B,)):
    forward and gradients from `handwritten.loss_head`. Returns (loss, info) like ppo_loss."""
    head = loss_head(logits.data, values.data, actions, logp_old, adv, returns, clip_eps,
                     config.vf_coef, config.ent_coef)

    def vjp(g):
        return head["g_logits"] * g, head["g_values"] * g
    loss = Tensor._make(np.asarray(head["loss"], dtype=logits.dtype), (logits, values), vjp,
                        "loss_head")
    info = {k: head[k] for k in ("loss", "policy_loss", "value_loss", "entropy")}
    info["approx_kl"] = approx_kl(head["logp"], logp_old)
    info["clip_fraction"] = clip_fraction(head["logp"], logp_old, clip_eps)
    return loss, info


@trusted()   # as ppo_update: the rollout was checked when it was collected
def loss_head_update(agent, optimizer, batch, config, minibatches) -> list:
    """ppo_update's minibatch steps (clip objective, Categorical policy) with loss_head_node."""
    infos = []
    for idx in minibatches:
        obs = batch["obs"][idx]
        logits, values = agent.pi(obs), agent.value(obs)
        adv = batch["advantages"][idx]
        if config.norm_adv:
            adv = normalized(adv)
        loss, info = loss_head_node(logits, values, batch["actions"][idx], batch["logp"][idx],
                                    adv, batch["returns"][idx], config, config.clip_eps)
        info["grad_norm"] = gradient_step(loss, optimizer, config.max_grad_norm)
        infos.append(info)
    return infos


def measure(config, rounds: int = 5, updates: int = 3, clock=time.process_time) -> dict:
    """Samples x epochs per second of the three updates on one real rollout of the preset
    (medians over interleaved rounds), and the two efficiencies."""
    envs = make_vec_env(config.env_id, config.num_envs, seed=config.seed)
    agents, optimizers = [], []
    for _ in range(2):                    # the same initial weights for the two graph updates
        agent = build_agent(config, envs.single_observation_space, envs.single_action_space,
                            np.random.default_rng(config.seed))
        agents.append(agent)
        optimizers.append(Adam(agent.parameters(), lr=config.lr, eps=config.adam_eps))
    collector = RolloutCollector(envs, agents[0], config.num_steps,
                                 np.random.default_rng(config.seed + 1), seed=config.seed)
    buffer = collector.collect()
    envs.close()
    batch = buffer.flatten(*buffer.compute_advantages(config.gamma, config.lam))
    minibatches = shuffled_minibatches(len(batch["advantages"]), config.update_epochs,
                                       config.num_minibatches, np.random.default_rng(0))
    samples = sum(len(idx) for idx in minibatches)
    hand = HandwrittenPPO(agents[0].obs_dim, agents[0].action_dim, config.hidden,
                          dtype=agents[0].dtype, lr=config.lr, clip_eps=config.clip_eps,
                          vf_coef=config.vf_coef, ent_coef=config.ent_coef,
                          max_grad_norm=config.max_grad_norm, norm_adv=config.norm_adv,
                          adam_eps=config.adam_eps)
    hand.load_agent_state(agents[0].state_dict())
    phases = {
        "update": lambda: ppo_update(agents[0], optimizers[0], batch, config, minibatches),
        "loss_head_update": lambda: loss_head_update(agents[1], optimizers[1], batch, config,
                                                     minibatches),
        "handwritten": lambda: [hand.step(batch["obs"][i], batch["actions"][i], batch["logp"][i],
                                          batch["advantages"][i], batch["returns"][i])
                                for i in minibatches]}
    figures = {name: [] for name in phases}
    for _ in range(rounds):
        for name, run in phases.items():
            figures[name].append(updates * samples / _timed(run, updates, clock))
    med = {f"{name}_samples_per_s": float(np.median(v)) for name, v in figures.items()}
    return {**med,
            "update_efficiency": med["update_samples_per_s"] / med["handwritten_samples_per_s"],
            "loss_head_update_efficiency": (med["loss_head_update_samples_per_s"]
                                            / med["handwritten_samples_per_s"])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loss_head",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--quick", action="store_true", help="one round of one update")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = parser.parse_args(argv)
    config = dataclasses.replace(PRESETS["CartPole-v1"], dtype=args.dtype)
    result = measure(config, rounds=1 if args.quick else 5, updates=1 if args.quick else 3,
                     clock=CLOCKS[args.clock])
    print(f"CartPole-v1 preset, {args.dtype}, {args.clock} time"
          f"{' (quick)' if args.quick else ''}")
    for key, value in result.items():
        print(f"{key:<36}{value:>14,.2f}" if "efficiency" in key else f"{key:<36}{value:>14,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
