"""Collecting rollouts from a gymnasium vector environment (the "run policy" line of PPO's
Algorithm 1, Schulman et al. 2017).

A rollout is T steps of N environments stepped together, stored time-major: row t of
every (T, N) array holds the transition obs_t --action_t--> (reward_t, obs_{t+1}).
Each step runs only the policy network, to sample the actions (ActorCritic.sample);
log pi_old(a_t|s_t) and V_old(s_t) of all T*N rows are evaluated once, after the loop,
in one batched forward (ActorCritic.evaluate): the parameters do not change meanwhile.
Likewise what follows from the stored (T, N) arrays (which rows are valid, the scaled
rewards, the episode statistics) is computed once, after the loop.

Autoreset convention: we use gymnasium 1.x's default NEXT_STEP autoreset, and
no other mode is accepted. With it, the observation returned on the step where an
episode terminates or is truncated IS the final observation. So:

* V(final obs) comes for free: the next row (the reset step below) stores the final
  obs as its observation, so its values[t+1] is V(final obs), and next_values[t] =
  values[t+1] is right on every row, including episode ends.
  Truncated episodes bootstrap from it; terminated ones multiply it by 0 (gae.py).
* The following step is a reset step: the env ignores its action, returns reward 0
  and the first observation of the new episode. Its "transition" (final obs ->
  reset obs) never happened, so the row is marked valid=False, its advantage must
  not enter the loss, and it is also flagged truncated (not terminated), so that
  GAE stops there and nothing chains across it.

We chose this over same-step autoreset because then the final observation would
only be available in `info["final_obs"]`, one more place to get wrong, and because
it is what gymnasium does unless told otherwise, so any VectorEnv a user passes in
already behaves this way.

    next_values[t] = values[t+1]               for t < T-1
    next_values[T-1] = V(obs after the last step)

How to get advantages for the update (what trainer.py does):

    buffer = collector.collect()
    advantages, returns = buffer.compute_advantages(gamma, lam)   # (T, N); 0 where invalid
    batch = buffer.flatten(advantages, returns)                   # valid rows only

Exact resume. The env's internal state (physics, its own random generator, step
counters) is part of what a resumed run needs. The simplest exact recipe, at an
update boundary (right after an update, before the next collect()):

    save:    env_bytes = dumps_env(collector.envs)      # pickle; TypeError if impossible
             state = collector.state_dict()             # obs, flags, episode stats, rng, normalisers
    resume:  envs = loads_env(env_bytes)
             collector = RolloutCollector(envs, agent, num_steps, rng, ...same options...)
             collector.load_state_dict(state)           # no reset happens after this
             (or swap the env into an existing, not yet started collector: collector.envs = envs)

CartPole's numpy vector env is plain numpy and pickles; a SyncVectorEnv pickles
when its sub-envs do (the env-making callables, often closures, are not saved:
they are only used at construction). AsyncVectorEnv (subprocesses) cannot.
"""
from __future__ import annotations

import io
import pickle

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from .._checks import trusted
from ..autodiff import no_grad
from ..gae import compute_gae
from .spaces import encode_observations

__all__ = ["make_vec_env", "reset_envs", "step_envs", "RolloutBuffer", "RolloutCollector",
           "dumps_env", "loads_env"]


# ----- building the vector env ------------------------------------------------------------

def make_vec_env(env_id, num_envs: int | None = None, seed: int | None = None) -> VectorEnv:
    """A gymnasium VectorEnv of `num_envs` copies of an environment, with NEXT_STEP autoreset.

    env_id: a registered id such as "CartPole-v1" (numpy-vectorised
        `vector_entry_point` implementation where the id registers one, as CartPole
        does, else a SyncVectorEnv); or a callable returning a gymnasium Env (called
        num_envs times, SyncVectorEnv); or an existing VectorEnv (returned as is).
    seed: seeds the vector action and observation spaces (for anything that samples
        from them). The dynamics are seeded by RolloutCollector's first reset.
    Observations that are not a 1-D Box come out flattened to one float vector (spaces.py:
    one-hot Discrete parts, ...); image observations are refused there.
    """
    if isinstance(env_id, VectorEnv):
        if num_envs is not None and num_envs != env_id.num_envs:
            raise ValueError(f"make_vec_env: num_envs={num_envs} but the VectorEnv passed in "
                             f"has {env_id.num_envs} environments")
        envs = env_id
    else:
        if num_envs is None or int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"make_vec_env: num_envs must be an integer >= 1, got {num_envs!r}")
        if isinstance(env_id, str):
            try:
                spec = gym.spec(env_id)
            except gym.error.Error as e:
                raise ValueError(f"make_vec_env: unknown env id {env_id!r} ({e})") from None
            mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
            try:
                envs = gym.make_vec(env_id, num_envs=int(num_envs), vectorization_mode=mode)
            except (gym.error.DependencyNotInstalled, ImportError) as e:
                raise ValueError(f"make_vec_env: cannot make {env_id!r}, a dependency is "
                                 f"missing ({type(e).__name__}: {e})") from None
        elif callable(env_id):
            envs = SyncVectorEnv([env_id] * int(num_envs))
        else:
            raise TypeError(f"make_vec_env: env_id must be an env id string, a callable returning "
                            f"a gymnasium Env, or a VectorEnv; got {type(env_id).__name__}")
    _check_autoreset(envs)
    envs = encode_observations(envs)
    if seed is not None:
        envs.action_space.seed(seed)
        envs.observation_space.seed(seed)
    return envs


def _check_autoreset(envs: VectorEnv) -> None:
    # A VectorEnv that does not declare a mode follows gymnasium 1.x's default, NEXT_STEP.
    mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:
        raise ValueError(f"the vector env uses autoreset mode {mode}; ppo_ref's rollouts need "
                         f"gymnasium's default AutoresetMode.NEXT_STEP (see rollout.py)")


# ----- stepping, with errors that name the env ------------------------------------------

def reset_envs(envs: VectorEnv, seed: int | None = None):
    """envs.reset(seed=seed): (observations, infos). A sub-environment that breaks gymnasium's
    API (reset returning a bare observation, an observation of another shape than its space) is
    a ValueError naming its index, instead of the error the vector env's bookkeeping hits."""
    try:
        return envs.reset(seed=seed)
    except (ValueError, TypeError) as e:
        raise _diagnosed(envs, "reset", e) from e


def step_envs(envs: VectorEnv, actions):
    """envs.step(actions), with the errors of reset_envs."""
    try:
        return envs.step(actions)
    except (ValueError, TypeError) as e:
        raise _diagnosed(envs, "step", e) from e


def _diagnosed(envs, call: str, error: Exception) -> Exception:
    """The error to raise for `error` from envs.<call>: a ValueError naming the first
    sub-environment (of a SyncVectorEnv) that broke the API, else `error` itself."""
    subs = getattr(envs, "envs", None)
    if not subs:
        return error
    shape = envs.single_observation_space.shape
    if call == "reset":     # the reset failed anyway: reset each env again to see which one
        outputs = []
        for env in subs:
            try:
                outputs.append(env.reset())
            except Exception:
                return error
        for i, out in enumerate(outputs):
            if not (isinstance(out, tuple) and len(out) == 2):
                return ValueError(f"environment {i}'s reset() returned {_describe(out)}, not the "
                                  f"(observation, info) pair of gymnasium's Env.reset")
        observations = [obs for obs, _ in outputs]
    else:                   # SyncVectorEnv keeps each env's last observation in _env_obs
        observations = getattr(envs, "_env_obs", None) or []
        if "unpack" in str(error):
            return ValueError(f"an environment's step() does not return gymnasium's (observation, "
                              f"reward, terminated, truncated, info) ({error})")
    for i, obs in enumerate(observations):
        if np.shape(obs) != shape:
            return ValueError(f"environment {i}'s {call}() returned an observation of shape "
                              f"{np.shape(obs)}, but its observation space has shape {shape}")
    return error


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape}"
    if isinstance(x, tuple):
        return f"a tuple of {len(x)}"
    return f"a {type(x).__name__}"


# ----- exact-resume helpers ---------------------------------------------------------------

def _env_fn_not_saved():
    raise RuntimeError("this vector env was restored with loads_env: the callables that built "
                       "its sub-environments were not saved")


class _EnvPickler(pickle.Pickler):
    """Pickles a vector env, leaving out SyncVectorEnv.env_fns (the constructors, often
    closures or lambdas that pickle cannot save; the env never calls them again)."""

    def __init__(self, file, envs):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._skip = {}
        e = envs
        while e is not None:  # walk down through vector wrappers
            if isinstance(e, SyncVectorEnv):
                self._skip[id(e.env_fns)] = len(e.env_fns)
            e = getattr(e, "env", None)

    def persistent_id(self, obj):
        n = self._skip.get(id(obj))
        return None if n is None else ("ppo_ref.env_fns", n)


class _EnvUnpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        return [_env_fn_not_saved] * pid[1]


def dumps_env(envs: VectorEnv) -> bytes:
    """The vector env, internal state included, as bytes (pickle). TypeError if it cannot be."""
    buffer = io.BytesIO()
    try:
        _EnvPickler(buffer, envs).dump(envs)
    except Exception as e:  # pickle raises several types; report one
        raise TypeError(f"dumps_env: cannot pickle the vector env {type(envs).__name__} "
                        f"({type(e).__name__}: {e}); exact resume needs a picklable env") from e
    return buffer.getvalue()


def loads_env(data: bytes) -> VectorEnv:
    """Inverse of dumps_env."""
    return _EnvUnpickler(io.BytesIO(data)).load()


# ----- the buffer ------------------------------------------------------------------------

class RolloutBuffer:
    """Preallocated time-major arrays for one rollout of T steps of N envs.

    obs (T, N, *obs_shape)  the observation the policy saw (normalised if a normaliser is used)
    actions (T, N) int64 or (T, N, D)   the sampled, unclipped actions
    logp, values (T, N)     log pi_old(a_t|s_t) and V_old(s_t), of the parameters that
                            collected the rollout (evaluated after its last step)
    rewards (T, N)          rewards as the learner sees them (scaled if a scaler is used)
    terminated, truncated (T, N) bool   episode ended after this step (see the module
                            docstring: invalid rows are flagged truncated)
    next_values (T, N)      V(s_{t+1}): values[t+1], and V(obs after the last step) on row T-1
    valid (T, N) bool       False on the reset step after an episode end: exclude from the loss
    episode_returns, episode_lengths  the unscaled returns and lengths of the episodes that
                            ended during this rollout, in the order they ended
    """

    def __init__(self, num_steps: int, num_envs: int, obs_shape, action_shape=(),
                 action_dtype=np.int64, dtype=np.float64):
        T, N = int(num_steps), int(num_envs)
        self.num_steps, self.num_envs, self.dtype = T, N, np.dtype(dtype)
        self.obs = np.zeros((T, N, *obs_shape), dtype=dtype)
        self.actions = np.zeros((T, N, *action_shape), dtype=action_dtype)
        self.logp = np.zeros((T, N), dtype=dtype)
        self.values = np.zeros((T, N), dtype=dtype)
        self.rewards = np.zeros((T, N), dtype=dtype)
        self.terminated = np.zeros((T, N), dtype=bool)
        self.truncated = np.zeros((T, N), dtype=bool)
        self.next_values = np.zeros((T, N), dtype=dtype)
        self.valid = np.ones((T, N), dtype=bool)
        self.episode_returns = np.zeros(0)
        self.episode_lengths = np.zeros(0, dtype=np.int64)

    @trusted()   # collect() checked rewards and values, PPOConfig gamma and lam
    def compute_advantages(self, gamma: float = 0.99, lam: float = 0.95):
        """GAE advantages and returns (T, N) (gae.compute_gae), set to 0 on invalid rows."""
        advantages, returns = compute_gae(self.rewards, self.values, self.next_values,
                                          self.terminated, self.truncated, gamma, lam)
        advantages[~self.valid] = 0.0
        returns[~self.valid] = 0.0
        return advantages, returns

    def flatten(self, advantages, returns) -> dict:
        """The valid rows as flat arrays (B = number of valid rows, time-major order t*N + n):
        obs (B, *obs_shape), actions (B,) or (B, D), logp, values, advantages, returns (B,)."""
        mask = self.valid
        for name, a in (("advantages", advantages), ("returns", returns)):
            if np.shape(a) != mask.shape:
                raise ValueError(f"flatten: {name} has shape {np.shape(a)}, expected {mask.shape}")
        return {"obs": self.obs[mask], "actions": self.actions[mask], "logp": self.logp[mask],
                "values": self.values[mask], "advantages": np.asarray(advantages)[mask],
                "returns": np.asarray(returns)[mask]}


# ----- the collector ---------------------------------------------------------------------

def _sums_restarting_at(ends, start, x):
    """Running sums over the steps of each env that restart from 0 after every `ends` step:
    ends (T, N) bool, start (N,) the sums before step 0, x (T, N) what each step adds. Returns
    (the sums at the end steps, in (t, n) order; the sums after step T-1), bit for bit those
    of the step-by-step loop

        acc, at_ends = start.copy(), []
        for t in range(T):
            acc += x[t]
            at_ends.extend(acc[ends[t]]); acc[ends[t]] = 0

    Float addition does not associate, so each stretch between restarts is added up in the
    loop's order: np.cumsum adds left to right, along [the sum carried in, the stretch's x].
    """
    after = np.array(start)
    found = []                                   # (t, n, the sum at end step t of env n)
    for n in range(x.shape[1]):
        carried, t0 = start[n], 0
        for t in np.flatnonzero(ends[:, n]):
            found.append((t, n, np.cumsum(np.concatenate(([carried], x[t0:t + 1, n])))[-1]))
            carried, t0 = 0, t + 1
        after[n] = np.cumsum(np.concatenate(([carried], x[t0:, n])))[-1]
    found.sort()
    return np.array([total for _, _, total in found], dtype=after.dtype), after


class RolloutCollector:
    """Steps a vector env with an agent and fills a RolloutBuffer.

    envs: a gymnasium VectorEnv with NEXT_STEP autoreset (see make_vec_env).
    agent: anything with sample(obs, rng) -> actions (called once per step),
        evaluate(obs, actions) -> (logp, values) arrays (called once per rollout, on all
        T*N rows), value(obs) (Tensor or array (N,)), env_action(actions) and a dtype
        (ActorCritic has them).
    num_steps: T, the rollout length per env. rng: numpy Generator for action sampling.
    obs_normalizer: an ObservationNormalizer; observations are updated into it and
        normalised before the policy sees them (and stored normalised).
    reward_scaler: a RewardScaler; the buffer's rewards are scaled, episode returns are not.
    seed: the envs are reset once, at the first collect(), with reset(seed=seed); if
        None, the seed is drawn from rng, so one Generator fixes the whole rollout stream.

    collect() refills and returns the same preallocated buffer each time; copy what you
    need to keep before calling it again.
    """

    def __init__(self, envs: VectorEnv, agent, num_steps: int, rng: np.random.Generator,
                 obs_normalizer=None, reward_scaler=None, seed: int | None = None):
        if not isinstance(envs, VectorEnv):
            raise TypeError(f"RolloutCollector: envs must be a gymnasium VectorEnv, got "
                            f"{type(envs).__name__} (build one with make_vec_env)")
        _check_autoreset(envs)
        if int(num_steps) != num_steps or num_steps < 1:
            raise ValueError(f"RolloutCollector: num_steps must be an integer >= 1, got {num_steps!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"RolloutCollector: rng must be a numpy.random.Generator, got "
                            f"{type(rng).__name__}")
        self.envs, self.agent, self.rng = envs, agent, rng
        self.num_steps, self.num_envs = int(num_steps), envs.num_envs
        self.obs_normalizer, self.reward_scaler, self.seed = obs_normalizer, reward_scaler, seed
        self.dtype = np.dtype(getattr(agent, "dtype", np.float64))

        obs_space, act_space = envs.single_observation_space, envs.single_action_space
        if isinstance(act_space, gym.spaces.Discrete):
            action_shape, action_dtype = (), np.int64
        elif isinstance(act_space, (gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
            action_shape, action_dtype = act_space.shape, np.int64
        else:
            action_shape, action_dtype = act_space.shape, self.dtype
        self.buffer = RolloutBuffer(self.num_steps, self.num_envs, obs_space.shape,
                                    action_shape, action_dtype, self.dtype)

        # Everything a resumed run needs besides the env itself (see state_dict).
        self.obs = None                                            # raw obs (N, ...) to act on next
        self.autoreset = np.zeros(self.num_envs, dtype=bool)       # next step is a reset step
        self.episode_return = np.zeros(self.num_envs)              # unscaled, running
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.vector_step = 0                                       # envs.step calls so far
        self._env_rewards = np.zeros((self.num_steps, self.num_envs))  # (T, N) unscaled, float64

    @property
    def global_step(self) -> int:
        """Environment steps taken so far (N per vector step, reset steps included)."""
        return self.vector_step * self.num_envs

    def reset(self) -> None:
        seed = int(self.rng.integers(2**31)) if self.seed is None else self.seed
        obs, _ = reset_envs(self.envs, seed)
        self._check_finite(obs, None, "at reset")
        self.obs = obs
        self.autoreset[:] = False
        self.episode_return[:] = 0.0
        self.episode_length[:] = 0

    def collect(self) -> RolloutBuffer:
        """Run T steps of every env; returns the filled buffer (see RolloutBuffer)."""
        if self.obs is None:
            self.reset()
        buf, agent, rewards = self.buffer, self.agent, self._env_rewards
        first_step = self.vector_step
        # Act, step, store. Only what the next action depends on happens here; what can be
        # derived from the stored (T, N) arrays is computed once, below the loop.
        for t in range(self.num_steps):
            obs = self._policy_obs(self.obs, update=True)
            actions = agent.sample(obs, self.rng)        # the policy network only
            buf.obs[t], buf.actions[t] = obs, actions

            next_obs, rewards[t], buf.terminated[t], buf.truncated[t], _ = \
                step_envs(self.envs, agent.env_action(actions))
            if not np.isfinite(next_obs).all():          # before the policy acts on it
                self._raise_non_finite(next_obs, t, first_step)
            self.vector_step += 1
            self.obs = next_obs

        T, N = self.num_steps, self.num_envs
        self._check_finite_rewards(rewards, first_step)  # before anything reads them
        # done: an episode ended at this step (the env sets both flags False on reset steps)
        done = buf.terminated | buf.truncated
        # valid: False on the reset step after an episode end (the env ignored the action)
        buf.valid[0] = ~self.autoreset
        buf.valid[1:] = ~done[:-1]
        self.autoreset = done[-1].copy()                 # envs whose next step is a reset step
        buf.truncated |= ~buf.valid                      # invalid rows: stop GAE there too
        # rewards as the learner sees them; the scaler's running return goes step by step
        if self.reward_scaler is None:
            buf.rewards[...] = rewards
        else:
            for t in range(T):
                buf.rewards[t] = self.reward_scaler(rewards[t], done[t], buf.valid[t])
        # Episode statistics, from the unscaled rewards of valid steps.
        finished = done & buf.valid
        buf.episode_returns, self.episode_return[...] = _sums_restarting_at(
            finished, self.episode_return, np.where(buf.valid, rewards, 0.0))
        buf.episode_lengths, self.episode_length[...] = _sums_restarting_at(
            finished, self.episode_length, buf.valid)

        # log pi_old(a_t|s_t) and V_old(s_t) for all T*N rows in one batched forward: the policy
        # did not change during the rollout, so this equals evaluating row by row (up to rounding:
        # a larger matrix product may sum in another order), for a fraction of the calls (the
        # loop it replaces: for t: logp[t], values[t] = evaluate(obs[t], actions[t])).
        logp, values = agent.evaluate(buf.obs.reshape(T * N, *buf.obs.shape[2:]),
                                      buf.actions.reshape(T * N, *buf.actions.shape[2:]))
        buf.logp[...] = np.reshape(logp, (T, N))
        buf.values[...] = np.reshape(values, (T, N))
        # next_values[t] = V(s_{t+1}): the next row's value, and V(obs after the last step)
        # for the last row (statistics of the normaliser not updated with it: it is acted on,
        # and counted, at the start of the next collect()).
        buf.next_values[:-1] = buf.values[1:]
        with no_grad():
            last = agent.value(self._policy_obs(self.obs, update=False))
        buf.next_values[-1] = np.asarray(getattr(last, "data", last))
        # The agent's outputs are checked once per rollout (a diverged value net does not
        # harm the env; non-finite logits or means are caught by the distributions).
        for name in ("logp", "values", "next_values"):
            bad = ~np.isfinite(getattr(buf, name))
            if bad.any():
                t, n = (int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"the agent produced a non-finite {name} at rollout step {t}, "
                                 f"env {n}; have its parameters diverged?")
        return buf

    def _policy_obs(self, raw_obs, update: bool) -> np.ndarray:
        """The observation as the policy sees it: normalised (if asked), in the agent's dtype."""
        obs = raw_obs
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer(obs) if update else self.obs_normalizer.normalize(obs)
        return np.asarray(obs, dtype=self.dtype)

    def _raise_non_finite(self, next_obs, t: int, first_step: int) -> None:
        """The error for a non-finite observation from rollout step t. A non-finite reward of an
        earlier step is reported instead: it came first (rewards are checked after the loop)."""
        self._check_finite_rewards(self._env_rewards[:t], first_step)
        self._check_finite(next_obs, self._env_rewards[t],
                           f"at vector step {first_step + t} (rollout step {t})")

    def _check_finite_rewards(self, rewards, first_step: int) -> None:
        """ValueError naming the first step, then env, of rewards (T, N) that is nan/inf."""
        bad_steps = ~np.isfinite(rewards).all(axis=1)
        if bad_steps.any():
            t = int(np.flatnonzero(bad_steps)[0])
            self._check_finite(None, rewards[t],
                               f"at vector step {first_step + t} (rollout step {t})")

    def _check_finite(self, obs, rewards, when: str) -> None:
        """ValueError naming the first env (index) that emitted a NaN/inf observation or reward."""
        bad_obs = np.zeros(self.num_envs, bool) if obs is None else \
            ~np.isfinite(np.asarray(obs, dtype=np.float64).reshape(self.num_envs, -1)).all(axis=1)
        bad_rew = np.zeros(self.num_envs, bool) if rewards is None else \
            ~np.isfinite(np.asarray(rewards, dtype=np.float64))
        if bad_obs.any() or bad_rew.any():
            n = int(np.flatnonzero(bad_obs | bad_rew)[0])
            what = f"observation {np.asarray(obs)[n]!r}" if bad_obs[n] else \
                f"reward {np.asarray(rewards)[n]!r}"
            raise ValueError(f"environment {n} emitted a non-finite {what} {when}")

    # ----- exact resume -----------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything but the env needed to continue exactly (see the module docstring):
        arrays, ints, the Generator's bit_generator.state (a dict), normaliser states."""
        state = {
            "obs": None if self.obs is None else np.array(self.obs),
            "autoreset": self.autoreset.copy(),
            "episode_return": self.episode_return.copy(),
            "episode_length": self.episode_length.copy(),
            "vector_step": int(self.vector_step),
            "rng": self.rng.bit_generator.state,
        }
        if self.obs_normalizer is not None:
            state["obs_normalizer"] = self.obs_normalizer.state_dict()
        if self.reward_scaler is not None:
            state["reward_scaler"] = self.reward_scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        n = self.num_envs
        for key in ("autoreset", "episode_return", "episode_length"):
            if np.shape(state[key]) != (n,):
                raise ValueError(f"RolloutCollector.load_state_dict: {key} has shape "
                                 f"{np.shape(state[key])}, expected ({n},)")
        for key, part in (("obs_normalizer", self.obs_normalizer),
                          ("reward_scaler", self.reward_scaler)):
            if (key in state) != (part is not None):
                raise ValueError(f"RolloutCollector.load_state_dict: the saved state "
                                 f"{'has' if key in state else 'lacks'} {key!r} but this "
                                 f"collector {'does not use' if part is None else 'uses'} one")
            if part is not None:
                part.load_state_dict(state[key])
        self.obs = None if state["obs"] is None else np.array(state["obs"])
        self.autoreset = np.array(state["autoreset"], dtype=bool)
        self.episode_return = np.array(state["episode_return"], dtype=np.float64)
        self.episode_length = np.array(state["episode_length"], dtype=np.int64)
        self.vector_step = int(state["vector_step"])
        self.rng.bit_generator.state = state["rng"]
