"""Why PPO clips: many large steps on one batch, with and without a trust region.

The paper's "minimal conceptual illustration": take a partially trained CartPole policy pi_old and
ONE fixed batch it collected, and keep optimising a surrogate on that batch with big Adam steps:

    (a) unclipped policy gradient   L^CPI   = mean r A     (eq. 6; no trust region)
    (b) PPO-clip                    L^CLIP  = mean min(r A, clip(r, 1-eps, 1+eps) A)
    (c) KL penalty (fixed beta)     L^KLPEN = mean r A - beta mean KL(pi_old || pi)

After every step we measure KL(pi_old || pi_new) exactly, averaged over the batch's states with
Categorical.kl (no sampling estimate), and the return of the deterministic new policy in fresh
episodes. L^CPI keeps rewarding the same moves past any point where its first-order estimate is
trustworthy; the policy drifts far from pi_old and its return collapses. L^CLIP stops pulling a
sample once its ratio leaves [1-eps, 1+eps] and L^KLPEN pulls back: both stay near pi_old.

Each step is one Adam step of ppo_ref.losses.ppo_loss on the whole batch, policy parameters only,
so the three runs differ in the objective and nothing else. (We do not call ppo.ppo_update once per
step: it anchors the KL penalty at the policy it is called with, which is pi_old only on its first
call.) The experiment is repeated for three seeds (three pi_old's and batches), in parallel, to
show which parts of the picture do not depend on the draw.

    python demos/collapse.py --out out/collapse
"""
from __future__ import annotations

import _common

import dataclasses
import functools
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ppo_ref.autodiff import no_grad
from ppo_ref.losses import normalize_advantages, ppo_loss
from ppo_ref.optim import Adam
from ppo_ref.train.trainer import PRESETS, build_agent, evaluate, train
from ppo_ref.train.rollout import RolloutCollector, make_vec_env
from ppo_ref.sweep import usable_cores

CLIP_EPS = 0.2
# ppo_loss's objective names -> legend labels
OBJECTIVES = {"unclipped": "unclipped PG (no trust region)", "clip": f"PPO-clip (ε = {CLIP_EPS})",
              "kl_fixed": "KL penalty (fixed β = {beta:g})"}
COLORS = {"unclipped": "C3", "clip": "C0", "kl_fixed": "C2"}


def exact_kl(old_dist, agent, obs) -> float:
    """mean over states s of KL(pi_old(.|s) || pi_new(.|s)), computed in closed form."""
    with no_grad():
        return float(np.mean(old_dist.kl(agent.distribution(obs)).data))


def run_updates(agent, batch, objective, steps, lr, beta, eval_episodes, eval_seed, env_id):
    """`steps` full-batch Adam steps on `objective` from agent's current weights (= pi_old).

    One step: loss = ppo_loss(...) on the whole batch with normalised advantages (value and
    entropy terms off), backward, Adam step on the policy's parameters. Afterwards the exact KL
    to pi_old on the batch states and the evaluation return are recorded.
    """
    optimizer = Adam(agent.policy_parameters(), lr=lr)
    obs, actions = batch["obs"], batch["actions"]
    advantages = normalize_advantages(batch["advantages"])
    with no_grad():
        old_dist = agent.distribution(obs)   # pi_old, fixed for all steps (the anchor of the KL)
    kls = [0.0]
    returns = [evaluate(agent, env_id, eval_episodes, eval_seed)["mean_return"]]
    clip_fractions = []
    for _ in range(steps):
        dist = agent.distribution(obs)
        loss, info = ppo_loss(dist.log_prob(actions), batch["logp"], advantages,
                              np.zeros(len(obs)), np.zeros(len(obs)), dist.entropy(),
                              objective=objective, clip_eps=CLIP_EPS, vf_coef=0.0,
                              kl=old_dist.kl(dist) if objective == "kl_fixed" else None, beta=beta)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        kls.append(exact_kl(old_dist, agent, obs))
        returns.append(evaluate(agent, env_id, eval_episodes, eval_seed)["mean_return"])
        clip_fractions.append(info["clip_fraction"])
    return {"kl": kls, "eval_return": returns, "clip_fraction": clip_fractions}


def experiment(seed: int, pretrain: int, batch_steps: int, steps: int, lr: float, beta: float,
               eval_episodes: int, quick: bool = False) -> dict:
    """The whole experiment for one seed: pretrain pi_old, collect one batch, run each objective."""
    config = dataclasses.replace(PRESETS["CartPole-v1"], seed=seed, total_steps=pretrain,
                                 **({"update_epochs": 2} if quick else {}))
    # 1. A partially trained policy pi_old (ordinary PPO, stopped early).
    agent_state = train(config).agent.state_dict()

    # 2. One fixed batch from pi_old: 8 envs x batch_steps steps, advantages by GAE.
    envs = make_vec_env(config.env_id, 8, seed=seed + 1)

    def pi_old():  # a fresh copy of pi_old (same architecture, pretrained weights)
        agent = build_agent(config, envs.single_observation_space, envs.single_action_space,
                            np.random.default_rng(0))
        agent.load_state_dict(agent_state)
        return agent

    buffer = RolloutCollector(envs, pi_old(), batch_steps, np.random.default_rng(seed + 1),
                              seed=seed + 1).collect()
    advantages, returns = buffer.compute_advantages(config.gamma, config.lam)
    batch = buffer.flatten(advantages, returns)

    # 3. The same many large steps under each objective, each from its own copy of pi_old.
    runs = {obj: run_updates(pi_old(), batch, obj, steps, lr, beta, eval_episodes,
                             eval_seed=10_000 + seed, env_id=config.env_id) for obj in OBJECTIVES}
    return {"seed": seed, "batch_size": len(batch["advantages"]),
            "initial_eval_return": runs["clip"]["eval_return"][0], "per_step": runs}


def main(argv=None) -> int:
    def extra(p):
        p.add_argument("--steps", type=_common.positive_int, default=None,
                       help="update steps (default 100; 4 quick)")
        p.add_argument("--lr", type=_common.positive_float, default=3e-2,
                       help="Adam step size of every update")
        p.add_argument("--beta", type=_common.nonnegative_float, default=3.0,
                       help="KL penalty coefficient")
        p.add_argument("--seeds", type=_common.nonnegative_int, nargs="+", default=None,
                       help="one experiment (pi_old and batch) per seed (default 0 1 2; 0 quick)")
    args = _common.parse_args(__doc__.splitlines()[0], argv, extra)
    import matplotlib.pyplot as plt

    steps = args.steps or (4 if args.quick else 100)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    pretrain = 512 if args.quick else 15_360
    eval_episodes = 2 if args.quick else 10
    job = functools.partial(experiment, pretrain=pretrain, batch_steps=64 if args.quick else 256,
                            steps=steps, lr=args.lr, beta=args.beta, eval_episodes=eval_episodes,
                            quick=args.quick)
    if len(seeds) == 1:
        results = [job(seeds[0])]
    else:          # the seeds are independent experiments: one process each
        with ProcessPoolExecutor(max_workers=min(usable_cores(), len(seeds))) as pool:
            results = list(pool.map(job, seeds))

    fig, axes = plt.subplots(2, len(seeds), figsize=(3.6 * len(seeds) + 1, 7.4), squeeze=False,
                             sharex=True)
    x = np.arange(steps + 1)
    for col, res in enumerate(results):
        ax_kl, ax_ret = axes[0, col], axes[1, col]
        for obj, label in OBJECTIVES.items():
            runs = res["per_step"][obj]
            label = label.format(beta=args.beta)
            ax_kl.plot(x, runs["kl"], color=COLORS[obj], lw=1.6, label=label)
            ax_ret.plot(x, runs["eval_return"], color=COLORS[obj], lw=1.6, label=label)
        ax_kl.set_yscale("symlog", linthresh=1e-2)
        ax_kl.set_title(f"seed {res['seed']}: π_old returns {res['initial_eval_return']:.0f}, "
                        f"batch of {res['batch_size']}", fontsize=10)
        ax_ret.set_ylim(0, 520)
        ax_ret.set_xlabel(f"update step on the same batch\n(Adam, lr = {args.lr:g})")
        for ax in (ax_kl, ax_ret):
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("KL(π_old ‖ π_new) on the batch states\n(exact, mean, nats; "
                          "linear below 0.01)")
    axes[1, 0].set_ylabel(f"evaluation return after the step\n({eval_episodes} episodes, "
                          f"deterministic)")
    axes[0, 0].legend(fontsize=9, loc="center right")
    fig.suptitle("Many large steps on one CartPole batch: the unclipped policy gradient walks far "
                 "from π_old\n(KL ≫ 1) and loses its return; PPO-clip and the KL penalty stay "
                 f"close to π_old (π_old: PPO for {pretrain // 1000}k steps)", fontsize=11)
    fig.tight_layout()
    _common.save_figure(fig, args.out / "collapse.png")

    table = []
    for res in results:
        final = {obj: {"kl": res["per_step"][obj]["kl"][-1],
                       "eval_return": res["per_step"][obj]["eval_return"][-1]} for obj in OBJECTIVES}
        res["final"] = final
        table.append({"seed": res["seed"], "initial_return": res["initial_eval_return"],
                      "unclipped_kl": final["unclipped"]["kl"], "clip_kl": final["clip"]["kl"],
                      "kl_penalty_kl": final["kl_fixed"]["kl"],
                      "unclipped_return": final["unclipped"]["eval_return"],
                      "clip_return": final["clip"]["eval_return"],
                      "kl_penalty_return": final["kl_fixed"]["eval_return"]})
    mean = {k: float(np.mean([row[k] for row in table])) for k in table[0] if k != "seed"}
    _common.save_json({
        "env_id": "CartPole-v1", "pretrain_steps": pretrain, "update_steps": steps, "lr": args.lr,
        "beta": args.beta, "clip_eps": CLIP_EPS, "eval_episodes": eval_episodes,
        "unclipped_vs_clip_at_final_step": {"step": steps, "per_seed": table,
                                            "mean_over_seeds": mean},
        "experiments": results,
    }, args.out / "collapse.json")
    for row in table:
        print(f"seed {row['seed']}: after {steps} steps  unclipped KL {row['unclipped_kl']:.3g} "
              f"return {row['unclipped_return']:.0f}  |  clip KL {row['clip_kl']:.3g} return "
              f"{row['clip_return']:.0f}  (pi_old {row['initial_return']:.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
