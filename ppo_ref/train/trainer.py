"""The PPO trainer: Algorithm 1 of Schulman et al. (2017), "Proximal Policy Optimization".

    for iteration = 1, 2, ... do
        for actor = 1, ..., N: run pi_old in the environment for T timesteps
        compute advantage estimates A_1 ... A_T                      (GAE, Schulman et al. 2016)
        optimise the surrogate L wrt theta, K epochs, minibatch size M <= N T
        theta_old <- theta

(Here N = num_envs, T = num_steps, K = update_epochs and M = N T / num_minibatches, a little
less once the reset steps are left out, see below.)

`train` below is that loop; each step is one call into a module that explains it (rollout.py,
gae.py, update.py with losses.py and optim.py, log.py). The surrogate of the third step (eq. 7,
negated to be minimised, plus the value loss and entropy bonus of eq. 9) is, with
r_t = pi(a_t|s_t) / pi_old(a_t|s_t):

    clip         L = -mean min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)             (eq. 7)
    kl_adaptive  L = -mean r_t A_t + beta * mean KL[pi_old(.|s_t), pi(.|s_t)],        (eq. 8)
                 beta halved after each update when the exact mean KL it produced (kl_exact,
                 the paper's d) is below kl_target / 1.5, doubled when above kl_target * 1.5
    kl_fixed     the same with beta fixed
    unclipped    L = -mean r_t A_t, the unclipped surrogate L^CPI (eq. 6; to see why PPO clips)
    trpo         no surrogate step: the policy moves by trpo.trpo_step (the constrained problem
                 PPO approximates), the value function by Adam (update.trpo_update).

What a run needs besides the algorithm stands around the loop, one call each: the state the loop
changes is built by state.py (and saved in checkpoints), the run folder is opened, checkpointed
and closed by runs.Run, and each update's row is logged by log.Log.

Conventions where implementations disagree (update.py states those of the update step):
* Autoreset: gymnasium's next-step autoreset; the reset step after an episode end is collected
  but left out of the update (rollout.py explains why), so a batch holds slightly fewer than N*T.
* Annealing (anneal_lr, anneal_clip): update k = 0 .. U-1 uses start * (1 - k / U), so the
  first update has the full value and the last start / U, never 0 (CleanRL's schedule). The
  value clip (clip_vloss) uses the same, annealed, clip_eps.
* Value targets R_t = A_t + V_old(s_t), the GAE(lam) returns (not Monte-Carlo returns); the
  value loss carries a factor 0.5 (losses.py says who else does).
* Logged metrics are means over the minibatches of the update (log.py).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from .._checks import check_count, first_index
from ..autodiff import no_grad
from ..optim import linear_schedule
from .checkpoint import latest_checkpoint, load_checkpoint
from .config import OBJECTIVES, PRESETS, PPOConfig
from .log import Log
from .normalize import ObservationNormalizer
from .policy import ActorCritic
from .memory import check_fits, evaluation_bytes
from .rollout import make_vec_env, reset_envs, step_envs
from .runs import Run, check_env_id_rebuilds, read_config
from .state import TrainState, build_agent
from .update import UPDATE_RULES, frozen_policy, mean_kl, ppo_update, shuffled_minibatches

__all__ = ["PPOConfig", "PRESETS", "OBJECTIVES", "TrainResult", "train", "ppo_update",
           "evaluate", "shuffled_minibatches", "build_agent", "load_agent"]

EVAL_SEED_OFFSET = 10**6  # evaluation envs are seeded away from the training envs
EVAL_MAX_STEPS = 10_000   # evaluate's step cap for an env that registers no max_episode_steps


@dataclass
class TrainResult:
    """What `train` returns: the trained agent, one history dict per update (the rows of
    metrics.csv), every finished training episode as (global_step, return, length), the final
    evaluation (made when there is a run folder, else None), the observation normaliser (None if
    unused) and the run folder."""
    agent: ActorCritic
    history: list
    config: PPOConfig
    episodes: list
    eval: dict | None = None
    obs_normalizer: ObservationNormalizer | None = None
    out_dir: Path | None = None


# ----- the main loop -----------------------------------------------------------------------------

def train(config: PPOConfig = PPOConfig(), env=None, out_dir=None, progress: bool = False,
          resume: bool = False, callback=None, from_checkpoint: int | None = None) -> TrainResult:
    """Train PPO (module docstring) and return a TrainResult.

    env: None (make config.env_id), a callable returning a gymnasium Env, or a gymnasium VectorEnv
        with config.num_envs environments. Evaluation makes fresh envs from env_id or the callable
        (with a VectorEnv passed in, from config.env_id, so with a run folder it must be one
        config.env_id rebuilds). A run folder records an env passed in (env.json, runs.py).
    out_dir: if given, the run folder (runs.py): config.json, metrics.csv, checkpoints, eval.json.
        One run writes it at a time (another is refused); a new run needs a new or empty folder.
    resume: continue the run in out_dir from its last checkpoint (from update 0 if it stopped
        before its first); the remaining updates give exactly the rows an uninterrupted run would
        have (timing columns aside). A run trained on an env passed in is resumed by passing the
        same env again (without one, only if config.env_id rebuilds it: else ValueError rather
        than silently another env). from_checkpoint: resume from the checkpoint of this update
        instead (when the last one is damaged).
    progress: a progress line on stderr, rewritten in place ('\\r') on a terminal; when stderr
        is not one (a log file), a plain line each time another 5% of the updates is done.
    callback: called with each history row after it is logged (raise inside it to stop).

    Ctrl-C with a run folder: the update in progress finishes, a checkpoint is saved, then
    KeyboardInterrupt (a second Ctrl-C stops at once; guards.py).
    """
    c = config
    state = TrainState.build(c, env)             # envs, agent, Adam, collector, from one seed
    with Run.open(out_dir, state, env, resume, from_checkpoint) as run:   # the folder, locked
        log = Log(state, run, progress)          # one row per update: metrics.csv, stderr
        update_rule = UPDATE_RULES[c.objective]  # ppo_update; trpo_update for "trpo"
        while state.update < c.num_updates:
            frac = state.update / c.num_updates                   # fraction of training done
            state.optimizer.lr = linear_schedule(c.lr, 0.0, frac) if c.anneal_lr else c.lr
            clip_eps = linear_schedule(c.clip_eps, 0.0, frac) if c.anneal_clip else c.clip_eps

            # 1. Run pi_old for T steps in each of the N environments. (theta_old <- theta needs
            #    no copy: pi_old is the current agent, and the rollout stores log pi_old, V_old.)
            buffer = state.collector.collect()
            # 2. Advantages by GAE(gamma, lam), value targets R_t = A_t + V_old(s_t); keep the
            #    valid steps.
            advantages, returns = buffer.compute_advantages(c.gamma, c.lam)
            batch = buffer.flatten(advantages, returns)
            # 3. Optimise the surrogate for K epochs of shuffled minibatches, against pi_old
            #    frozen on the batch states (the optimiser moves the parameters in place).
            pi_old = frozen_policy(state.agent, batch["obs"])
            minibatches = shuffled_minibatches(len(batch["advantages"]), c.update_epochs,
                                               c.num_minibatches, state.rng)
            infos = update_rule(state.agent, state.optimizer, batch, c, minibatches,
                                beta=state.beta, clip_eps=clip_eps, pi_old=pi_old)
            # 4. Adapt the KL coefficient (adaptive KL objective) to the KL this update produced:
            #    d = the exact mean KL(pi_old || pi_new) over the batch states after the update,
            #    as the paper's section 4 computes it (the approx_kl logged per minibatch starts
            #    at 0, at pi = pi_old, so its mean understates d).
            kl_exact = mean_kl(pi_old, state.agent, batch["obs"])
            if c.objective == "kl_adaptive":
                state.beta = state.kl_penalty.update(kl_exact)

            # 5. Log one row per update; checkpoint every checkpoint_every updates (or Ctrl-C).
            state.end_update(buffer, log.wall_time())
            row = log.write(state, infos, batch, clip_eps, kl_exact)
            run.checkpoint_if_due(state)
            if callback is not None:
                callback(row)
        log.close()
        run.close(state)                         # the last checkpoint
        evaluation = _final_evaluation(state, run, env)
    return TrainResult(state.agent, log.history, c, state.episodes, eval=evaluation,
                       obs_normalizer=state.obs_normalizer, out_dir=run.path)


def _final_evaluation(state: TrainState, run: Run, env) -> dict | None:
    """With a run folder: `evaluate` the trained policy (config.eval_episodes, deterministic) and
    write eval.json. Without one: None."""
    if run.folder is None:
        return None
    c = state.config
    result = evaluate(state.agent, _eval_env(env, c, run.env_record), c.eval_episodes,
                      seed=c.seed + EVAL_SEED_OFFSET, obs_normalizer=state.obs_normalizer)
    run.folder.write_json("eval.json", result)
    return result


def load_agent(run_dir, env=None):
    """(agent, obs_normalizer or None, config) from the last checkpoint of a run folder.

    env: what to build the network's spaces from: None (the run's env_id; refused for a run
    trained on an env passed to train() that env_id does not rebuild), an env id, or a callable
    returning an Env (that run's env)."""
    config = PPOConfig.from_dict(read_config(run_dir))
    path = latest_checkpoint(Path(run_dir) / "checkpoints")
    if path is None:
        raise ValueError(f"{run_dir}: no checkpoint")
    if env is None:
        check_env_id_rebuilds(run_dir, config.env_id)
    envs = make_vec_env(config.env_id if env is None else env, 1)
    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    envs.close()
    state = load_checkpoint(path, expect={"env_id": config.env_id, "dtype": config.dtype,
                                          "hidden": list(config.hidden),
                                          "obs_shape": list(obs_space.shape)})
    agent = build_agent(config, obs_space, action_space, np.random.default_rng(0))
    try:
        agent.load_state_dict(state["agent"])
        normalizer = None
        if "obs_normalizer" in state["collector"]:
            normalizer = ObservationNormalizer(tuple(state["obs_shape"]))
            normalizer.load_state_dict(state["collector"]["obs_normalizer"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"checkpoint {path} does not fit {config.env_id}'s network or is "
                         f"incomplete: {e!r}") from None
    return agent, normalizer, config


# ----- evaluation --------------------------------------------------------------------------------

def evaluate(agent, env_id, episodes: int = 20, seed: int = 0, obs_normalizer=None,
             max_steps: int | None = None) -> dict:
    """Mean and std (ddof=0) of the undiscounted return of `episodes` episodes of the
    deterministic policy (the mode: argmax action, or the Gaussian mean clipped to the bounds).

    env_id: an env id or a callable returning an Env. The episodes run side by side in one vector
    env of `episodes` copies, reset once with reset(seed=seed), so the result is reproducible
    (a SyncVectorEnv seeds copy i with seed + i; CartPole's numpy vector env draws every
    copy's start state from one generator seeded with seed, so the first k of n episodes
    are not the k episodes of an evaluation with `episodes=k`).
    obs_normalizer: the training run's normaliser; used frozen (its statistics do not change).
    max_steps: the longest an episode may run: by default the env's registered
        max_episode_steps, else EVAL_MAX_STEPS. An env that never ends an episode (no TimeLimit)
        would otherwise loop forever; episodes still running at the cap are counted with the
        return they have, with a warning.
    Returns {"mean_return", "std_return", "episodes", "returns"}.
    """
    episodes = check_count("episodes", episodes, 1)
    seed = check_count("seed", seed, 0)
    check_fits(f"evaluating {episodes:,} episodes side by side",
               evaluation_bytes(episodes, agent.obs_dim, agent.action_dim), "lower episodes")
    envs = make_vec_env(env_id, episodes)
    max_steps = check_count("max_steps", max_steps, 1) if max_steps is not None else \
        _max_episode_steps(env_id, envs)
    obs, _ = reset_envs(envs, seed)
    returns = np.zeros(episodes)
    running = np.ones(episodes, dtype=bool)       # still in its first episode
    dtype = agent.dtype
    for _ in range(max_steps):
        x = obs if obs_normalizer is None else obs_normalizer.normalize(obs)
        with no_grad():
            action = agent.distribution(np.asarray(x, dtype=dtype)).mode()
        obs, reward, terminated, truncated, _ = step_envs(envs, agent.env_action(action))
        if not np.all(np.isfinite(reward)):
            raise ValueError(f"evaluate: environment {first_index(~np.isfinite(reward))[0]} "
                             f"emitted a non-finite reward")
        returns[running] += np.asarray(reward, dtype=np.float64)[running]
        running &= ~(np.asarray(terminated) | np.asarray(truncated))
        if not running.any():
            break
    envs.close()
    if running.any():
        warnings.warn(f"evaluate: {int(running.sum())} of {episodes} episodes had not ended "
                      f"after max_steps={max_steps} steps (does the env have a time limit?); "
                      f"their returns are those of the first {max_steps} steps", RuntimeWarning,
                      stacklevel=2)
    return {"mean_return": float(returns.mean()), "std_return": float(returns.std()),
            "episodes": int(episodes), "returns": returns.tolist()}


def _max_episode_steps(env_id, envs) -> int:
    """The registered max_episode_steps of the env evaluated (its id's spec, or the spec of the
    vector env, or of the env a callable makes), else EVAL_MAX_STEPS."""
    if isinstance(env_id, str):
        spec = gym.spec(env_id)
    else:
        spec = getattr(envs, "spec", None) or getattr(next(iter(getattr(envs, "envs", [])), None),
                                                      "spec", None)
    steps = getattr(spec, "max_episode_steps", None)
    return int(steps) if steps else EVAL_MAX_STEPS


def _eval_env(env, config, env_record):
    """What evaluation builds its envs from: the env id when it rebuilds the env (so `ppo-ref eval`
    repeats the same episodes), else the callable given (a VectorEnv passed in is always one the
    env id rebuilds here: train refuses the others with a run folder)."""
    if env is None or env_record["env_id_rebuilds_it"] or hasattr(env, "num_envs"):
        return config.env_id
    return env
