"""The PPO trainer: Algorithm 1 of Schulman et al. (2017), "Proximal Policy Optimization".

    for iteration = 1, 2, ... do
        for actor = 1, ..., N: run pi_old in the environment for T timesteps
        compute advantage estimates A_1 ... A_T                      (GAE, Schulman et al. 2016)
        optimise the surrogate L wrt theta, K epochs, minibatch size M <= N T
        theta_old <- theta

(Here N = num_envs, T = num_steps, K = update_epochs and M = N T / num_minibatches, a little
less once the reset steps are left out, see below.)

`train` below is that loop; each step is one call into a module that explains it (rollout.py,
gae.py, losses.py, optim.py). The surrogate of the third step (eq. 7, negated to be minimised,
plus the value loss and entropy bonus of eq. 9) is, with r_t = pi(a_t|s_t) / pi_old(a_t|s_t):

    clip         L = -mean min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)             (eq. 7)
    kl_adaptive  L = -mean r_t A_t + beta * mean KL[pi_old(.|s_t), pi(.|s_t)],        (eq. 8)
                 beta halved after each update when the exact mean KL it produced (kl_exact,
                 the paper's d) is below kl_target / 1.5, doubled when above kl_target * 1.5
    kl_fixed     the same with beta fixed
    unclipped    L = -mean r_t A_t, the unclipped surrogate L^CPI (eq. 6; to see why PPO clips)
    trpo         no surrogate step: the policy moves by trpo.trpo_step (the constrained problem
                 PPO approximates), the value function by Adam; see `_trpo_update`.

Conventions where implementations disagree:
* Autoreset: gymnasium's next-step autoreset; the reset step after an episode end is collected
  but left out of the update (rollout.py explains why), so a batch holds slightly fewer than N*T.
* Minibatches: each epoch is a fresh permutation of the batch cut into `num_minibatches` nearly
  equal pieces (np.array_split), drawn from the trainer's own Generator, all epochs drawn up front.
* Advantage normalisation per minibatch (as CleanRL and Stable-Baselines3), ddof=1 (losses.py).
* One Adam over policy and value parameters together and one global gradient norm clip, as
  CleanRL and SB3 do (the paper's eq. 9 shares one loss between them).
* Annealing (anneal_lr, anneal_clip): update k = 0 .. U-1 uses start * (1 - k / U), so the
  first update has the full value and the last start / U, never 0 (CleanRL's schedule). The
  value clip (clip_vloss) uses the same, annealed, clip_eps.
* Value targets R_t = A_t + V_old(s_t), the GAE(lam) returns (not Monte-Carlo returns); the
  value loss carries a factor 0.5 (losses.py says who else does).
* Early stop (`target_kl`): before each minibatch step the approx_kl of the current policy against
  pi_old on that minibatch is measured; above target_kl the remaining steps are skipped (SB3 checks
  the same point with 1.5 * target_kl; CleanRL checks once per epoch).
* Logged metrics are means over the minibatches of the update (SB3; CleanRL logs the last),
  the one whose approx_kl stopped it included (it was measured, not stepped); grad_norm is the
  mean over the steps taken.
"""
from __future__ import annotations

import math
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..autodiff import no_grad
from .config import OBJECTIVES, PRESETS, PPOConfig
from ..distributions import Categorical, DiagGaussian
from ..losses import KL_OBJECTIVES, AdaptiveKLPenalty, explained_variance, normalize_advantages, ppo_loss
from .normalize import ObservationNormalizer, RewardScaler
from ..optim import Adam, clip_grad_norm, linear_schedule
from .policy import ActorCritic
from .rollout import RolloutCollector, dumps_env, loads_env, make_vec_env
from .runs import describe_env, read_env

__all__ = ["PPOConfig", "PRESETS", "OBJECTIVES", "TrainResult", "train", "ppo_update",
           "evaluate", "shuffled_minibatches", "build_agent", "load_agent"]

RETURN_WINDOW = 20        # episodic_return in the log = mean of the last 20 finished episodes
EVAL_SEED_OFFSET = 10**6  # evaluation envs are seeded away from the training envs


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
          resume: bool = False, callback=None) -> TrainResult:
    """Train PPO (module docstring) and return a TrainResult.

    env: None (make config.env_id), a callable returning a gymnasium Env, or a gymnasium VectorEnv
        with config.num_envs environments. Evaluation makes fresh envs from env_id or the callable
        (with a VectorEnv passed in, from config.env_id, so with a run folder it must be one
        config.env_id rebuilds). A run folder records an env passed in (env.json, runs.py).
    out_dir: if given, the run folder (runs.py): config.json, metrics.csv, checkpoints, eval.json.
    resume: continue the run in out_dir from its last checkpoint; the remaining updates give
        exactly the rows an uninterrupted run would have (timing columns aside). A run trained on
        an env passed in is resumed by passing the same env again (without one, only if
        config.env_id rebuilds it: else ValueError rather than silently another env).
    progress: a progress line on stderr, rewritten in place ('\\r') on a terminal; when stderr
        is not one (a log file), a plain line each time another 5% of the updates is done.
    callback: called with each history row after it is logged (raise inside it to stop).
    """
    spec = getattr(env, "spec", None) if hasattr(env, "num_envs") else None
    if spec is not None and spec.id != config.env_id:  # evaluation and checkpoints use env_id
        raise ValueError(f"the VectorEnv passed in is {spec.id!r} but config.env_id is "
                         f"{config.env_id!r}; set env_id to match")
    if resume and env is None and out_dir is not None:
        _check_env_id_rebuilds(out_dir, config.env_id)
    run = _RunState.start(config, env)
    env_record = None if env is None else describe_env(env, run.envs, config.env_id)
    if out_dir is not None and hasattr(env, "num_envs") and not env_record["env_id_rebuilds_it"]:
        raise ValueError(f"config.env_id {config.env_id!r} does not rebuild the VectorEnv passed "
                         f"in ({env_record['repr']}), and the run folder's final evaluation makes "
                         f"fresh envs from it; pass a callable returning one Env instead")
    folder = None
    if out_dir is not None:
        from .runs import RunFolder
        folder = RunFolder(out_dir)
        if resume:
            run.restore(folder)
        else:
            from .checkpoint import list_checkpoints
            if folder.metrics_path.exists() or list_checkpoints(folder.checkpoints):
                raise ValueError(f"{out_dir} already holds a run (metrics.csv or checkpoints); "
                                 f"resume it or choose another out_dir")
            folder.write_json("config.json", config.to_dict())
            if env_record is not None:
                folder.write_json("env.json", env_record)
    elif resume:
        raise ValueError("resume=True needs out_dir, the run folder to continue")

    c, agent = config, run.agent
    clock, start_step, time_before = time.perf_counter(), run.global_step, run.time_s
    while run.update < c.num_updates:
        frac = run.update / c.num_updates                      # fraction of training done
        run.optimizer.lr = linear_schedule(c.lr, 0.0, frac) if c.anneal_lr else c.lr
        clip_eps = linear_schedule(c.clip_eps, 0.0, frac) if c.anneal_clip else c.clip_eps

        # 1. Run pi_old for T steps in each of the N environments. (theta_old <- theta needs no
        #    copy: pi_old is the current agent, and the rollout stores its log pi_old and V_old.)
        buffer = run.collector.collect()
        # 2. Advantages by GAE(gamma, lam), value targets R_t = A_t + V_old(s_t); keep valid steps.
        advantages, returns = buffer.compute_advantages(c.gamma, c.lam)
        batch = buffer.flatten(advantages, returns)
        # 3. Optimise the surrogate for K epochs of shuffled minibatches.
        minibatches = shuffled_minibatches(len(batch["advantages"]), c.update_epochs,
                                           c.num_minibatches, run.rng)
        pi_old = _frozen_distribution(agent, batch["obs"])   # for kl_exact, logged below
        update_fn = _trpo_update if c.objective == "trpo" else ppo_update   # the dispatch point
        infos = update_fn(agent, run.optimizer, batch, c, minibatches, beta=run.beta,
                          clip_eps=clip_eps)
        # 4. Adapt the KL coefficient (adaptive KL objective) to the KL this update produced:
        #    d = the exact mean KL(pi_old || pi_new) over the batch states after the update, as
        #    the paper's section 4 computes it (the approx_kl logged per minibatch starts at 0,
        #    at pi = pi_old, so its mean understates d).
        kl_exact = _mean_kl(pi_old, agent, batch["obs"])
        if c.objective == "kl_adaptive":
            run.beta = run.kl_penalty.update(kl_exact)

        # 5. Log one row per update; checkpoint now and then.
        run.update += 1
        run.global_step = run.collector.global_step
        run.record_episodes(buffer.episode_returns, buffer.episode_lengths)
        seconds = time.perf_counter() - clock
        run.time_s = time_before + seconds                    # wall time, across resumes
        row = run.log_row(infos, batch, clip_eps, kl_exact, run.time_s,
                          (run.global_step - start_step) / max(seconds, 1e-9))
        run.history.append(row)
        if folder is not None:
            folder.append_metrics(row)
            if c.checkpoint_every and run.update % c.checkpoint_every == 0:
                run.save(folder)
        if progress:
            _print_progress(row, c)
        if callback is not None:
            callback(row)
    if progress and sys.stderr.isatty():
        print(file=sys.stderr)                                 # end the line rewritten in place

    result = TrainResult(agent, run.history, config, run.episodes,
                         obs_normalizer=run.obs_normalizer, out_dir=folder and folder.path)
    if folder is not None:
        if not (c.checkpoint_every and run.update % c.checkpoint_every == 0):
            run.save(folder)                                   # the end, unless just saved
        result.eval = evaluate(agent, _eval_env(env, c, env_record), c.eval_episodes,
                               seed=c.seed + EVAL_SEED_OFFSET, obs_normalizer=run.obs_normalizer)
        folder.write_json("eval.json", result.eval)
    return result


def _print_progress(row: dict, config: PPOConfig) -> None:
    """On a terminal, rewrite one line in place each update. Elsewhere ('\\r' would make a log
    file one endless line) print a plain line at the updates k where floor(20 k / U) grows, i.e.
    each time another 5% of the U updates is done: at most 20 lines a run, the last one included."""
    line = (f"step {row['global_step']:>9,}/{config.total_steps:,} | "
            f"{row['steps_per_s']:7,.0f} steps/s | return {row['episodic_return']:8.2f} | "
            f"approx_kl {row['approx_kl']:.4f} | clip_frac {row['clip_fraction']:.3f}")
    k, U = row["update"], config.num_updates
    if sys.stderr.isatty():
        print("\r" + line + " ", end="", file=sys.stderr, flush=True)
    elif 20 * k // U > 20 * (k - 1) // U:
        print(line, file=sys.stderr, flush=True)


def shuffled_minibatches(num_samples: int, epochs: int, num_minibatches: int,
                         rng: np.random.Generator) -> list:
    """epochs * num_minibatches index arrays: per epoch, rng.permutation(num_samples) cut into
    num_minibatches nearly equal consecutive pieces (np.array_split). Empty pieces are left out:
    with minibatches of one or two samples, the reset steps left out of a batch can leave fewer
    samples than minibatches."""
    return [idx for _ in range(epochs)
            for idx in np.array_split(rng.permutation(num_samples), num_minibatches) if len(idx)]


# ----- the run's state: built, saved, restored ---------------------------------------------------

class _RunState:
    """Everything that changes during a run, so that a checkpoint can hold all of it: the agent,
    Adam's moments, the envs and the collector (observations, episode counters, action Generator,
    normalisers), the minibatch Generator, beta, counters and the log so far."""

    @classmethod
    def start(cls, config: PPOConfig, env=None) -> "_RunState":
        run = cls()
        run.config = c = config
        # One seed fixes the run: independent streams for the initial weights, the action
        # samples and the minibatch shuffles; the envs are reset with reset(seed=config.seed).
        init_seq, act_seq, shuffle_seq = np.random.SeedSequence(c.seed).spawn(3)
        run.envs = make_vec_env(c.env_id if env is None else env, c.num_envs, seed=c.seed)
        # make_vec_env seeds the batched spaces; gymnasium seeds the single-env spaces' own
        # Generators from OS entropy. Nothing samples from them, but a checkpoint pickles them
        # with the env: seeded, a resumed run's env state equals an uninterrupted run's. (The
        # checkpoint bytes still differ: it holds the wall time, and pickle shares strings and
        # dtypes by identity, which an unpickled env does not keep.)
        run.envs.single_action_space.seed(c.seed)
        run.envs.single_observation_space.seed(c.seed)
        run.agent = build_agent(c, run.envs.single_observation_space,
                                run.envs.single_action_space, np.random.default_rng(init_seq))
        params = run.agent.value_parameters() if c.objective == "trpo" else run.agent.parameters()
        run.optimizer = Adam(params, lr=c.lr, eps=c.adam_eps)
        run.obs_normalizer = ObservationNormalizer(run.envs.single_observation_space.shape) \
            if c.normalize_obs else None
        reward_scaler = RewardScaler(c.num_envs, gamma=c.gamma) if c.scale_rewards else None
        run.collector = RolloutCollector(run.envs, run.agent, c.num_steps,
                                         np.random.default_rng(act_seq), run.obs_normalizer,
                                         reward_scaler, seed=c.seed)
        run.rng = np.random.default_rng(shuffle_seq)
        run.kl_penalty = AdaptiveKLPenalty(c.kl_beta, c.kl_target)
        run.beta = c.kl_beta
        run.update, run.global_step, run.time_s = 0, 0, 0.0
        run.history, run.episodes = [], []
        return run

    def record_episodes(self, returns, lengths) -> None:
        self.episodes.extend((self.global_step, float(r), int(n)) for r, n in zip(returns, lengths))

    def log_row(self, infos: list, batch: dict, clip_eps: float, kl_exact: float, time_s: float,
                steps_per_s: float) -> dict:
        """One row of metrics.csv (runs.METRIC_COLUMNS): the losses and diagnostics are means over
        the update's minibatches (module docstring); kl_exact is the exact mean
        KL(pi_old || pi_new) after it."""
        recent = [r for _, r, _ in self.episodes[-RETURN_WINDOW:]]
        mean = lambda k: float(np.mean([i[k] for i in infos]))  # noqa: E731
        stepped = [i["grad_norm"] for i in infos if not i.get("stopped", False)]
        kl_objective = self.config.objective in ("kl_adaptive", "kl_fixed")
        return {"update": self.update, "global_step": self.global_step,
                "episodic_return": float(np.mean(recent)) if recent else math.nan,
                "episodes": len(self.episodes), "policy_loss": mean("policy_loss"),
                "value_loss": mean("value_loss"), "entropy": mean("entropy"),
                "approx_kl": mean("approx_kl"), "kl_exact": kl_exact,
                "clip_fraction": mean("clip_fraction"),
                "explained_variance": float(explained_variance(batch["values"], batch["returns"])),
                "lr": self.optimizer.lr, "clip_eps": float(clip_eps),
                "beta": float(self.beta) if kl_objective else math.nan,
                "grad_norm": float(np.mean(stepped)) if stepped else 0.0,
                "minibatches": sum(not i.get("stopped", False) for i in infos),
                "time_s": float(time_s), "steps_per_s": float(steps_per_s)}

    # -- checkpoints --
    def _header(self) -> dict:
        """Entries a checkpoint must share with the run that loads it."""
        space = self.envs.single_action_space
        return {"env_id": self.config.env_id,
                "obs_shape": list(self.envs.single_observation_space.shape),
                "action_space": repr(space), "hidden": list(self.config.hidden),
                "objective": self.config.objective, "dtype": self.config.dtype}

    def save(self, folder) -> None:
        try:
            env_bytes, env_error = dumps_env(self.envs), None
        except TypeError as e:  # resume will refuse, with this reason; training goes on
            env_bytes, env_error = None, str(e)
        ep = np.array(self.episodes, dtype=np.float64).reshape(-1, 3)
        state = {**self._header(), "config": self.config.to_dict(), "update": self.update,
                 "global_step": self.global_step, "agent": self.agent.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "rng": self.rng.bit_generator.state,
                 "collector": self.collector.state_dict(), "beta": float(self.beta),
                 "kl_penalty_beta": float(self.kl_penalty.beta), "time_s": self.time_s,
                 "env": env_bytes, "env_error": env_error, "episodes": ep}
        from .checkpoint import save_checkpoint
        folder.sync_metrics()   # the rows this checkpoint counts are on disk before it is
        save_checkpoint(folder.checkpoints / f"update_{self.update:06d}", state)

    def restore(self, folder) -> None:
        """Continue from the last checkpoint in the run folder (ValueError if there is none, if it
        belongs to another env or network, or if its env could not be saved)."""
        from .checkpoint import latest_checkpoint, load_checkpoint
        from .runs import read_metrics
        path = latest_checkpoint(folder.checkpoints)
        if path is None:
            raise ValueError(f"{folder.path}: no checkpoint to resume from")
        state = load_checkpoint(path, expect=self._header())
        try:
            if state["config"] != self.config.to_dict():
                diff = sorted(k for k, v in self.config.to_dict().items()
                              if state["config"].get(k) != v)
                raise ValueError(f"checkpoint {path} was written with another config (fields "
                                 f"{diff} differ); resume with the run's own config.json")
            if state["env"] is None:
                raise ValueError(f"cannot resume {folder.path} exactly: its environment could "
                                 f"not be saved ({state['env_error']})")
            self.agent.load_state_dict(state["agent"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.envs.close()
            self.envs = self.collector.envs = loads_env(state["env"])
            self.collector.load_state_dict(state["collector"])
            self.rng.bit_generator.state = state["rng"]
            self.beta, self.kl_penalty.beta = state["beta"], state["kl_penalty_beta"]
            self.update, self.global_step = int(state["update"]), int(state["global_step"])
            self.time_s = float(state["time_s"])
            self.episodes = [(int(s), float(r), int(n)) for s, r, n in state["episodes"]]
        # a hand-edited .json (the .npz is hashed), or a pickled env another gymnasium cannot read
        except (KeyError, TypeError, AttributeError, ImportError, EOFError,
                pickle.UnpicklingError) as e:
            raise ValueError(f"checkpoint {path} is incomplete or malformed: {e!r}") from None
        folder.truncate_metrics(self.update)     # drop rows logged after this checkpoint
        self.history = read_metrics(folder.path)
        if len(self.history) != self.update:
            raise ValueError(f"{folder.path}/metrics.csv has {len(self.history)} rows, the "
                             f"checkpoint is at update {self.update}")


def build_agent(config: PPOConfig, observation_space, action_space, rng) -> ActorCritic:
    """The ActorCritic a run with this config trains."""
    return ActorCritic(observation_space, action_space, rng, hidden=config.hidden,
                       activation=config.activation, dtype=np.dtype(config.dtype))


def _check_env_id_rebuilds(run_dir, env_id: str) -> None:
    """ValueError if the run in run_dir was trained on an env passed to train() that env_id does
    not rebuild (its env.json): going by the id would silently use another environment."""
    record = read_env(run_dir)
    if record is not None and not record.get("env_id_rebuilds_it"):
        raise ValueError(f"{run_dir} was trained on an env passed to train() ({record.get('repr')}"
                         f"), which env id {env_id!r} does not rebuild; pass that env again from "
                         f"Python: train(config, env=..., out_dir=RUN, resume=True), "
                         f"load_agent(RUN, env=...)")


def load_agent(run_dir, env=None):
    """(agent, obs_normalizer or None, config) from the last checkpoint of a run folder.

    env: what to build the network's spaces from: None (the run's env_id; refused for a run
    trained on an env passed to train() that env_id does not rebuild), an env id, or a callable
    returning an Env (that run's env)."""
    from .checkpoint import latest_checkpoint, load_checkpoint
    from .runs import read_config
    config = PPOConfig.from_dict(read_config(run_dir))
    path = latest_checkpoint(Path(run_dir) / "checkpoints")
    if path is None:
        raise ValueError(f"{run_dir}: no checkpoint")
    if env is None:
        _check_env_id_rebuilds(run_dir, config.env_id)
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


# ----- the update --------------------------------------------------------------------------------

def ppo_update(agent, optimizer, batch: dict, config: PPOConfig, minibatches, *,
               beta: float | None = None, clip_eps: float | None = None) -> list:
    """Step 3 of Algorithm 1: one gradient step of the PPO loss per minibatch, in the given order.

    batch: flat arrays over B samples: obs (B, ...), actions (B,) or (B, D), logp (B,) =
        log pi_old(a|s), values (B,) = V_old(s), advantages (B,), returns (B,).
    minibatches: index arrays into the batch, one gradient step each (`shuffled_minibatches`).
    beta: the KL coefficient for the kl_* objectives (default config.kl_beta); clip_eps: the
        (possibly annealed) clip range (default config.clip_eps).

    Per minibatch: A normalised if config.norm_adv; loss = ppo_loss(...) (losses.py, eq. 9);
    gradients clipped to a global norm of config.max_grad_norm; one Adam step. With
    config.target_kl, the update stops before the first step whose minibatch already has
    approx_kl > target_kl (that info dict is returned with "stopped": True).
    Returns one info dict per minibatch seen: policy_loss, value_loss, entropy, approx_kl,
    clip_fraction, loss, grad_norm (kl for the kl objectives).
    """
    beta = config.kl_beta if beta is None else beta
    clip_eps = config.clip_eps if clip_eps is None else clip_eps
    old_dist = None
    if config.objective in KL_OBJECTIVES:  # pi_old's distribution on every batch state, for the exact KL;
        old_dist = _frozen_distribution(agent, batch["obs"])  # copied: Adam moves log_std in place
    params = optimizer.params
    infos = []
    for idx in minibatches:
        obs = batch["obs"][idx]
        dist, values = agent.distribution(obs), agent.value(obs)
        advantages = batch["advantages"][idx]
        if config.norm_adv:
            advantages = normalize_advantages(advantages)
        kl = _select(old_dist, idx).kl(dist) if old_dist is not None else None
        if config.ent_coef > 0:
            entropy = dist.entropy()
        else:  # only logged: computed outside the graph, so backward() does not walk through it
            with no_grad():
                entropy = dist.entropy()
        loss, info = ppo_loss(
            dist.log_prob(batch["actions"][idx]), batch["logp"][idx], advantages, values,
            batch["returns"][idx], entropy, objective=config.objective, clip_eps=clip_eps,
            vf_coef=config.vf_coef, ent_coef=config.ent_coef,
            old_values=batch["values"][idx] if config.clip_vloss else None,
            vf_clip_eps=clip_eps if config.clip_vloss else None, kl=kl, beta=beta)
        if config.target_kl is not None and info["approx_kl"] > config.target_kl:
            info.update(stopped=True, grad_norm=0.0)
            infos.append(info)
            break
        optimizer.zero_grad()
        loss.backward()
        info["grad_norm"] = clip_grad_norm(params, config.max_grad_norm)
        optimizer.step()
        infos.append(info)
    return infos


def _frozen_distribution(agent, obs):
    """pi(.|s) on the states obs as constants: copies of the outputs and of log_std, so the
    in-place parameter updates of Adam (or trpo_step) cannot move it; it is pi_old for kl_exact."""
    with no_grad():
        dist = agent.distribution(obs)
    if isinstance(dist, Categorical):
        return Categorical(np.array(dist.logits.data))
    return DiagGaussian(np.array(dist.mean.data), np.array(dist.log_std.data))


def _mean_kl(pi_old, agent, obs) -> float:
    """kl_exact: mean over the batch states of the exact KL(pi_old || pi_new) of one update (the
    quantity TRPO bounds by delta; approx_kl estimates it from the sampled actions only)."""
    with no_grad():
        return float(np.mean(pi_old.kl(agent.distribution(obs)).data))


def _select(dist, idx):
    """The distribution restricted to the rows idx (parameters detached: pi_old is a constant)."""
    if isinstance(dist, Categorical):
        return Categorical(dist.logits.data[idx])
    log_std = dist.log_std.data
    return DiagGaussian(dist.mean.data[idx], log_std if log_std.ndim == 1 else log_std[idx])


def _trpo_update(agent, optimizer, batch: dict, config: PPOConfig, minibatches, *,
                 beta=None, clip_eps=None) -> list:
    """objective "trpo": one trpo.trpo_step of the policy on the whole batch (Schulman et al. 2015),
    then the value function by Adam on 0.5*(V - R)^2 over the minibatches (optimizer holds only
    the value parameters). Returns info dicts shaped like ppo_update's."""
    from ..losses import approx_kl, clip_fraction, value_loss
    from ..trpo import trpo_step

    clip_eps = config.clip_eps if clip_eps is None else clip_eps
    adv = normalize_advantages(batch["advantages"]) if config.norm_adv else batch["advantages"]
    step = trpo_step(agent, batch["obs"], batch["actions"], adv, batch["logp"],
                     max_kl=config.trpo_max_kl, cg_iters=config.trpo_cg_iters,
                     damping=config.trpo_damping)
    with no_grad():
        dist = agent.distribution(batch["obs"])
        logp_new = dist.log_prob(batch["actions"]).data
        entropy = float(dist.entropy().data.mean())
    policy = {"policy_loss": -float(step["surrogate_before"] + step["improvement"]),
              "entropy": entropy, "approx_kl": approx_kl(logp_new, batch["logp"]),
              "clip_fraction": clip_fraction(logp_new, batch["logp"], clip_eps),
              "kl": float(step["kl"])}
    infos = []
    for idx in minibatches:
        loss = value_loss(agent.value(batch["obs"][idx]), batch["returns"][idx])
        optimizer.zero_grad()
        loss.backward()
        grad_norm = clip_grad_norm(optimizer.params, config.max_grad_norm)
        optimizer.step()
        infos.append({**policy, "value_loss": float(loss.data), "grad_norm": grad_norm})
    return infos


# ----- evaluation --------------------------------------------------------------------------------

def evaluate(agent, env_id, episodes: int = 20, seed: int = 0, obs_normalizer=None) -> dict:
    """Mean and std (ddof=0) of the undiscounted return of `episodes` episodes of the
    deterministic policy (the mode: argmax action, or the Gaussian mean clipped to the bounds).

    env_id: an env id or a callable returning an Env. The episodes run side by side in one vector
    env of `episodes` copies, reset once with reset(seed=seed), so the result is reproducible
    (a SyncVectorEnv seeds copy i with seed + i; CartPole's numpy vector env draws every
    copy's start state from one generator seeded with seed, so the first k of n episodes
    are not the k episodes of an evaluation with `episodes=k`).
    obs_normalizer: the training run's normaliser; used frozen (its statistics do not change).
    Returns {"mean_return", "std_return", "episodes", "returns"}.
    """
    if int(episodes) != episodes or episodes < 1:
        raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
    envs = make_vec_env(env_id, int(episodes))
    obs, _ = envs.reset(seed=int(seed))
    returns = np.zeros(episodes)
    running = np.ones(episodes, dtype=bool)       # still in its first episode
    dtype = agent.dtype
    while running.any():
        x = obs if obs_normalizer is None else obs_normalizer.normalize(obs)
        with no_grad():
            action = agent.distribution(np.asarray(x, dtype=dtype)).mode()
        obs, reward, terminated, truncated, _ = envs.step(agent.env_action(action))
        if not np.all(np.isfinite(reward)):
            raise ValueError(f"evaluate: environment {int(np.argmax(~np.isfinite(reward)))} "
                             f"emitted a non-finite reward")
        returns[running] += np.asarray(reward, dtype=np.float64)[running]
        running &= ~(np.asarray(terminated) | np.asarray(truncated))
    envs.close()
    return {"mean_return": float(returns.mean()), "std_return": float(returns.std()),
            "episodes": int(episodes), "returns": returns.tolist()}


def _eval_env(env, config, env_record):
    """What evaluation builds its envs from: the env id when it rebuilds the env (so `ppo-ref eval`
    repeats the same episodes), else the callable given (a VectorEnv passed in is always one the
    env id rebuilds here: train refuses the others with a run folder)."""
    if env is None or env_record["env_id_rebuilds_it"] or hasattr(env, "num_envs"):
        return config.env_id
    return env
