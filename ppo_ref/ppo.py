"""PPO in one file: Proximal Policy Optimization (Schulman et al. 2017) for discrete actions,
top to bottom. Read this file first.

    python -m ppo_ref.ppo [--seed S] [--total-steps N] [--csv FILE]      (CartPole-v1)

It is the full trainer's algorithm (ppo_ref/train/), bit for bit: with the CartPole-v1 defaults
in float64 its log rows equal those columns of `ppo-ref train`'s metrics.csv, string for string
(tests/test_ppo.py holds this). The full trainer adds continuous actions, the other objectives,
observation and reward normalisation, run folders, checkpoints and exact resume.

Algorithm 1 of the paper, with N = num_envs actors, T = num_steps and K = update_epochs:

    for iteration = 1, 2, ... do
        for actor = 1, ..., N: run pi_old in the environment for T timesteps
        compute advantage estimates A_1 ... A_T                      (GAE, Schulman et al. 2016)
        optimise the surrogate L wrt theta, with K epochs and minibatch size M <= N T
        theta_old <- theta

Conventions, where implementations disagree:
* Autoreset is gymnasium's next-step: the step after an episode ends only resets that env. Its
  row (final observation -> first observation) is no transition, so it is left out of the batch.
* Termination (a terminal state, worth 0) stops bootstrapping; truncation (a time limit)
  bootstraps from V of the final observation (gae.py).
* Advantages are normalised per minibatch, with the sample std (ddof=1, as torch's .std()).
* The value loss carries a factor 0.5: 0.5 (V - R)^2, whose gradient is V - R (losses.py).
* One Adam (eps 1e-5) over the policy and value parameters together, after clipping the global
  norm of all their gradients to max_grad_norm (optim.py).
* lr and clip_eps are annealed linearly: update k = 0 .. U-1 uses start * (1 - k / U).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from . import autodiff, gae, losses, nn, optim
from .distributions import Categorical

COLUMNS = ("update", "global_step", "episodic_return", "policy_loss", "value_loss",
           "approx_kl", "clip_fraction")
RETURN_WINDOW = 20     # episodic_return = the mean return of the last 20 episodes that ended


def _arg(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Hyperparameters:
    """Every hyperparameter, with the full trainer's defaults (PPOConfig's: rl-zoo3's tuned values
    for CartPole-v1)."""
    env_id: str = _arg("CartPole-v1", "gymnasium environment id (discrete actions)")
    seed: int = _arg(0, "seed of every random number in the run")
    total_steps: int = _arg(100_000, "environment steps in all, rounded down to whole batches")
    num_envs: int = _arg(8, "N, environments stepped together")
    num_steps: int = _arg(32, "T, steps per environment per rollout; a batch is N*T steps")
    update_epochs: int = _arg(20, "K, epochs over each batch")
    num_minibatches: int = _arg(1, "minibatches per epoch")
    lr: float = _arg(1e-3, "Adam's learning rate")
    adam_eps: float = _arg(1e-5, "Adam's epsilon (as CleanRL and SB3; torch's default is 1e-8)")
    anneal_lr: bool = _arg(True, "decay the learning rate linearly towards 0")
    gamma: float = _arg(0.98, "discount factor")
    lam: float = _arg(0.8, "GAE's lambda")
    clip_eps: float = _arg(0.2, "epsilon of the clipped ratio (eq. 7)")
    anneal_clip: bool = _arg(True, "decay clip_eps linearly towards 0")
    norm_adv: bool = _arg(True, "normalise the advantages of each minibatch")
    vf_coef: float = _arg(0.5, "c_1 of eq. 9, the weight of the value loss")
    ent_coef: float = _arg(0.0, "c_2 of eq. 9, the weight of the entropy bonus")
    max_grad_norm: float = _arg(0.5, "clip the global norm of the gradient to this")
    hidden: tuple = _arg((64, 64), "hidden layer sizes of the policy and value MLPs")


# ----- the vector env -----------------------------------------------------------------------------

def make_envs(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """N copies of the env, stepped together (CartPole's numpy-vectorised version where the id has
    one). gymnasium's default autoreset is next-step: on the step after an episode ended, step()
    resets that copy, ignores its action and returns reward 0 and the new first observation."""
    return gym.make_vec(env_id, num_envs=num_envs)


# ----- the actor-critic ---------------------------------------------------------------------------

class ActorCritic:
    """The policy pi(a|s) = softmax(logits(s))_a and the value V(s): two separate tanh MLPs.

    Orthogonal initialisation (nn.py) with gain sqrt(2) on the hidden layers, 0.01 on the policy
    head (so the first policy is nearly uniform) and 1 on the value head; the policy is drawn
    first, both from one Generator."""

    def __init__(self, obs_dim: int, num_actions: int, hidden, rng: np.random.Generator):
        self.pi = nn.MLP((obs_dim, *hidden, num_actions), "tanh", output_gain=0.01, rng=rng)
        self.vf = nn.MLP((obs_dim, *hidden, 1), "tanh", output_gain=1.0, rng=rng)

    def parameters(self) -> list:
        return self.pi.parameters() + self.vf.parameters()

    def policy(self, obs) -> Categorical:       # obs (B, obs_dim) -> pi(.|s) over (B, A) logits
        return Categorical(self.pi(obs))

    def value(self, obs) -> autodiff.Tensor:    # obs (B, obs_dim) -> V(s) (B,)
        return self.vf(obs).reshape(len(obs))


# ----- the loop -----------------------------------------------------------------------------------

def train(hp: Hyperparameters = Hyperparameters()) -> Iterator[dict]:
    """Train PPO; yields one log row per update, a dict with the keys COLUMNS:

    update, global_step (env steps so far, reset steps included), episodic_return (mean return
    of the last RETURN_WINDOW episodes that ended; nan before the first), and the means over the
    update's minibatches of policy_loss (-L^CLIP), value_loss (L^VF), approx_kl (the k3 estimate
    of KL[pi_old, pi]) and clip_fraction (share of samples with r outside [1 - eps, 1 + eps]).
    """
    # One seed fixes the run: independent random streams for the initial weights, the sampled
    # actions and the minibatch shuffles; the envs are reset once, with reset(seed=hp.seed).
    init_seq, action_seq, shuffle_seq = np.random.SeedSequence(hp.seed).spawn(3)
    action_rng, shuffle_rng = np.random.default_rng(action_seq), np.random.default_rng(shuffle_seq)
    envs = make_envs(hp.env_id, hp.num_envs)
    obs_dim, num_actions = envs.single_observation_space.shape[0], envs.single_action_space.n
    agent = ActorCritic(obs_dim, num_actions, hp.hidden, np.random.default_rng(init_seq))
    optimizer = optim.Adam(agent.parameters(), lr=hp.lr, eps=hp.adam_eps)

    T, N = hp.num_steps, hp.num_envs
    U = hp.total_steps // (N * T)                               # the number of updates
    # The rollout, time-major: row t holds the step obs_t --action_t--> reward_t, obs_{t+1}.
    obs, actions = np.zeros((T, N, obs_dim)), np.zeros((T, N), dtype=np.int64)
    rewards = np.zeros((T, N))
    terminated, truncated = np.zeros((T, N), dtype=bool), np.zeros((T, N), dtype=bool)
    valid = np.zeros((T, N), dtype=bool)             # False: a reset row, left out of the batch
    next_obs, _ = envs.reset(seed=hp.seed)
    resetting = np.zeros(N, dtype=bool)                         # the env's next step resets it
    episode_return, finished = np.zeros(N), []                  # running, and of ended episodes

    for update in range(U):
        frac = update / U                                       # the fraction of training done
        optimizer.lr = optim.linear_schedule(hp.lr, 0.0, frac) if hp.anneal_lr else hp.lr
        clip_eps = optim.linear_schedule(hp.clip_eps, 0.0, frac) if hp.anneal_clip else hp.clip_eps

        # 1. Run pi_old for T steps in each of the N envs. pi_old is the agent as it stands: its
        #    parameters do not move until step 3, so theta_old <- theta needs no copy.
        for t in range(T):
            x = np.asarray(next_obs, dtype=np.float64)          # CartPole's float32 -> float64
            obs[t], valid[t] = x, ~resetting
            with autodiff.no_grad():                            # acting builds no graph
                actions[t] = agent.policy(x).sample(action_rng)
            next_obs, rewards[t], terminated[t], cut, _ = envs.step(actions[t])  # cut: truncated
            truncated[t] = cut | resetting                      # GAE stops at a reset row too
            episode_return += np.where(valid[t], rewards[t], 0.0)
            ended = (terminated[t] | cut) & valid[t]
            finished += episode_return[ended].tolist()
            episode_return[ended] = 0.0
            resetting = terminated[t] | cut
        # log pi_old(a_t|s_t) and V_old(s_t) of all T*N rows in one batched forward after the
        # loop (the parameters did not change meanwhile), and V of the observation after it.
        with autodiff.no_grad():
            flat_obs, flat_actions = obs.reshape(T * N, obs_dim), actions.reshape(T * N)
            logp_old = agent.policy(flat_obs).log_prob(flat_actions).data.reshape(T, N)
            values = agent.value(flat_obs).data.reshape(T, N)
            last_value = agent.value(np.asarray(next_obs, dtype=np.float64)).data

        # 2. Advantages by GAE(gamma, lam) and value targets R_t = A_t + V_old(s_t) (gae.py):
        #        delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)
        #        A_t     = delta_t + gamma lam (1 - terminated_t or truncated_t) A_{t+1}
        #    V(s_{t+1}) is the next row's value: with next-step autoreset the row after an episode
        #    end holds its final observation, so a truncated episode bootstraps from it.
        next_values = np.concatenate([values[1:], last_value[None]])
        advantages, returns = gae.compute_gae(rewards, values, next_values, terminated,
                                              truncated, hp.gamma, hp.lam)
        # The batch: the valid rows, flattened in time-major order (B <= N*T samples).
        b_obs, b_actions, b_logp_old = obs[valid], actions[valid], logp_old[valid]
        b_advantages, b_returns = advantages[valid], returns[valid]

        # 3. Optimise the surrogate: K epochs, each a fresh permutation of the batch cut into
        #    num_minibatches nearly equal pieces, one gradient step per piece.
        stats = []
        for epoch in range(hp.update_epochs):
            for idx in np.array_split(shuffle_rng.permutation(len(b_obs)), hp.num_minibatches):
                dist, V = agent.policy(b_obs[idx]), agent.value(b_obs[idx])
                A = b_advantages[idx]
                if hp.norm_adv:
                    A = losses.normalize_advantages(A)          # (A - mean) / (std + 1e-8)
                # eq. 7 of the paper, negated to be minimised, r_t = pi(a_t|s_t) / pi_old(a_t|s_t):
                #     L^CLIP = -mean_t min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)
                # (the min keeps the pessimistic term: moving r_t past 1 +- eps gains nothing)
                log_ratio = dist.log_prob(b_actions[idx]) - b_logp_old[idx]
                ratio = log_ratio.exp()
                clipped = autodiff.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
                policy_loss = -autodiff.minimum(ratio * A, clipped * A).mean()
                # The value loss, L^VF = 0.5 mean_t (V(s_t) - R_t)^2 (the paper's has no 0.5)
                error = V - b_returns[idx]
                value_loss = 0.5 * (error * error).mean()
                # eq. 9, negated: L = -L^CLIP + c_1 L^VF - c_2 S, S = mean_t entropy of pi(.|s_t)
                loss = policy_loss + hp.vf_coef * value_loss - hp.ent_coef * dist.entropy().mean()

                optimizer.zero_grad()
                loss.backward()
                optim.clip_grad_norm(agent.parameters(), hp.max_grad_norm)  # one norm for all
                optimizer.step()                                            # Adam

                # Diagnostics: approx_kl estimates KL[pi_old, pi] by mean (r - 1) - log r (the k3
                # estimator); clip_fraction is the share of samples with r outside 1 +- eps.
                log_r, r = log_ratio.data, ratio.data
                stats.append({"policy_loss": float(policy_loss.data),
                              "value_loss": float(value_loss.data),
                              "approx_kl": float(np.mean(np.expm1(log_r) - log_r)),
                              "clip_fraction": float(np.mean((r < 1.0 - clip_eps) |
                                                             (r > 1.0 + clip_eps)))})

        # 4. One log row per update.
        recent = finished[-RETURN_WINDOW:]
        yield {"update": update + 1, "global_step": (update + 1) * T * N,
               "episodic_return": float(np.mean(recent)) if recent else math.nan,
               **{k: float(np.mean([s[k] for s in stats])) for k in COLUMNS[3:]}}
    envs.close()


# ----- the command line ---------------------------------------------------------------------------

def _csv_field(x) -> str:
    return repr(x) if isinstance(x, float) else str(x)     # repr reads back to the same float


def main(argv=None) -> None:
    """python -m ppo_ref.ppo [--seed S] [--total-steps N] [--csv FILE]: train with the defaults,
    a progress line per update on stdout; FILE gets the rows as metrics.csv writes them."""
    hp = Hyperparameters()
    help_of = {f.name: f.metadata["help"] for f in dataclasses.fields(hp)}
    parser = argparse.ArgumentParser(prog="python -m ppo_ref.ppo", usage=argparse.SUPPRESS,
                                     description="python -m ppo_ref.ppo [--seed S] [--total-steps "
                                     f"N] [--csv FILE]: train PPO on {hp.env_id} (ppo_ref/ppo.py)")
    parser.add_argument("--seed", type=int, default=hp.seed,
                        help=help_of["seed"] + f" (default {hp.seed})")
    parser.add_argument("--total-steps", type=int, default=hp.total_steps,
                        help=help_of["total_steps"] + f" (default {hp.total_steps})")
    parser.add_argument("--csv", metavar="FILE", help="write one row per update to FILE")
    args = parser.parse_args(argv)       # without usage, an error is one line on stderr, exit 2
    batch = hp.num_envs * hp.num_steps
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.total_steps < batch:
        parser.error(f"--total-steps must be at least one batch, num_envs * num_steps = "
                     f"{batch}, got {args.total_steps}")
    hp = dataclasses.replace(hp, seed=args.seed, total_steps=args.total_steps)
    try:
        out = open(args.csv, "w") if args.csv else None
    except OSError as e:
        parser.error(f"--csv {args.csv}: {e.strerror}")
    if out:
        out.write(",".join(COLUMNS) + "\n")
    for row in train(hp):
        if out:
            out.write(",".join(_csv_field(row[c]) for c in COLUMNS) + "\n")
        print(f"update {row['update']:4} | step {row['global_step']:7,} | return "
              f"{row['episodic_return']:6.1f} | approx_kl {row['approx_kl']:.4f} | "
              f"clip_frac {row['clip_fraction']:.3f}", flush=True)
    if out:
        out.close()


if __name__ == "__main__":
    main()
