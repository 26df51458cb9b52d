"""The tabular teaching envs (FrozenLake, CliffWalking, Taxi, Blackjack), each from its preset, over
several seeds, scored against the optimal policy.

Their observations are Discrete (Blackjack's a Tuple of Discretes): the policy sees them one-hot
(ppo_ref/train/spaces.py). Scores of the trained deterministic policy (the argmax action):

* FrozenLake-v1 (slippery 4x4), CliffWalking-v1 and Taxi-v4 are exact: the expected return of the
  policy, and of the optimal policy by value iteration, both over the episode's time limit H and
  computed from the env's own transition table `env.unwrapped.P` and start distribution,

      V_0 = 0,   V_h(s) = max_a (or a = pi(s)) sum_{(p, s', r, done) in P[s][a]} p (r + (1 - done) V_{h-1}(s')),
      score = sum_s start(s) V_H(s)           (undiscounted; for FrozenLake the success rate).

* Blackjack-v1 has no table: the mean return of --blackjack-episodes evaluation episodes, with its
  standard error.

    python demos/teaching_envs.py --out out/teaching --seeds 5        # every env, 5 seeds each
    python demos/teaching_envs.py --out out/teaching --envs FrozenLake-v1
"""
from __future__ import annotations

import _common

import dataclasses

import gymnasium as gym
import numpy as np

from ppo_ref.train.config import PRESETS
from ppo_ref.train.trainer import evaluate, load_agent
from ppo_ref.autodiff import no_grad

ENVS = ("FrozenLake-v1", "CliffWalkingCapped-v1", "Taxi-v4", "Blackjack-v1")


def _options(parser):
    _common.seeds_option("seeds per env")(parser)
    parser.add_argument("--envs", nargs="+", choices=ENVS, default=list(ENVS),
                        help="which envs (default all four)")
    parser.add_argument("--blackjack-episodes", type=_common.positive_int, default=20000,
                        help="evaluation episodes for Blackjack (default 20000; 200 with --quick)")


def tabular_value(env_id: str, policy=None) -> float:
    """Expected undiscounted return over the time limit H of `policy` (an action per state), or of
    the optimal policy if None, from P and the start distribution of env_id (module docstring)."""
    env = gym.make(env_id)
    horizon, table = env.spec.max_episode_steps, env.unwrapped
    n_states, n_actions = table.observation_space.n, table.action_space.n
    v = np.zeros(n_states)
    for _ in range(horizon):
        q = np.zeros((n_states, n_actions))
        for s in range(n_states):
            for a in range(n_actions):
                q[s, a] = sum(p * (r + (0.0 if done else v[s2])) for p, s2, r, done in table.P[s][a])
        v = q.max(axis=1) if policy is None else q[np.arange(n_states), policy]
    env.close()
    return float(np.dot(table.initial_state_distrib, v))


def greedy_table(agent, n_states: int) -> np.ndarray:
    """The deterministic policy's action in each state: the mode at each state's one-hot."""
    with no_grad():
        return agent.distribution(np.eye(n_states, dtype=agent.dtype)).mode()


def score_run(run_dir, env_id: str, blackjack_episodes: int) -> dict:
    agent, _, config = load_agent(run_dir)
    if env_id == "Blackjack-v1":
        ev = evaluate(agent, config.env_id, blackjack_episodes, seed=10**6)
        return {"score": ev["mean_return"],
                "stderr": ev["std_return"] / np.sqrt(ev["episodes"])}
    n_states = gym.make(config.env_id).observation_space.n
    return {"score": tabular_value(config.env_id, greedy_table(agent, n_states))}


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv, extra=_options)
    import matplotlib.pyplot as plt

    n_seeds = _common.n_seeds(args)
    episodes = 200 if args.quick else args.blackjack_episodes
    results = {}
    for env_id in args.envs:
        config = PRESETS[env_id]
        if args.quick:
            config = dataclasses.replace(config, total_steps=2 * 256, num_envs=4, num_steps=64,
                                         eval_episodes=2)
        root = args.out / "teaching_runs" / env_id
        _common.train_seeds(env_id, config, n_seeds, root)
        per_seed = [score_run(root / f"seed{s}", env_id, episodes) for s in range(n_seeds)]
        scores = np.array([r["score"] for r in per_seed])
        optimum = None if env_id == "Blackjack-v1" else tabular_value(config.env_id)
        results[env_id] = {
            "env_id": config.env_id, "total_steps": config.total_steps,
            "per_seed": per_seed, "mean": float(scores.mean()),
            "std": float(scores.std(ddof=1)) if n_seeds > 1 else 0.0,
            "optimal": optimum,
            "seeds_at_optimum": None if optimum is None else
            int(np.sum(np.abs(scores - optimum) <= 0.01 * max(1.0, abs(optimum)))),
            "config": config.to_dict()}
        r = results[env_id]
        print(f"{env_id}: {r['mean']:.3f} ± {r['std']:.3f} over {n_seeds} seeds "
              f"(optimal {optimum if optimum is None else round(optimum, 3)})", flush=True)

    fig, axes = plt.subplots(1, len(results), figsize=(3.2 * len(results), 3.6), squeeze=False)
    for ax, (env_id, r) in zip(axes[0], results.items()):
        scores = [p["score"] for p in r["per_seed"]]
        ax.plot(range(n_seeds), scores, "o", label="each seed")
        if r["optimal"] is not None:
            ax.axhline(r["optimal"], color="C3", ls="--", lw=0.9, label="optimal (value iteration)")
        ax.set_title(f"{env_id}\n{r['total_steps'] // 1000}k steps", fontsize=9)
        ax.set_xlabel("seed")
        ax.set_xticks(range(n_seeds))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("expected return of the greedy policy")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle("PPO from each teaching-env preset: the greedy policy's expected return "
                 "against the optimum", fontsize=10)
    fig.tight_layout()
    _common.save_figure(fig, args.out / "teaching_envs.png")
    _common.save_json(results, args.out / "teaching_envs.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
