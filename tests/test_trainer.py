"""ppo_ref.train.trainer: the config, the loop's logging, determinism and exact resume, every
objective, dtypes and spaces, evaluation, bad environments, envs passed in, and the
learning regression test (CartPole-v1 solved within 100k steps)."""
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from ppo_ref.train.checkpoint import latest_checkpoint, load_checkpoint
from ppo_ref.train.trainer import PRESETS, PPOConfig, evaluate, load_agent, train
from ppo_ref.train.rollout import loads_env
from ppo_ref.train.runs import TIMING_COLUMNS, read_metrics

# A few updates of a small batch: enough to exercise every code path in a fraction of a second.
TINY = PPOConfig(total_steps=6 * 64, num_envs=4, num_steps=16, num_minibatches=2,
                 update_epochs=2, hidden=(16,), eval_episodes=2, checkpoint_every=2)


def _without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


def _same(a, b):
    """Equal, where nan equals nan (a metric that does not apply is nan in both runs)."""
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return a == b or both_nan


def _rows_equal(xs, ys):
    return len(xs) == len(ys) and all(x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
                                      for x, y in zip(xs, ys))


# ----- configuration -----------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("num_minibatches", 0), ("lr", 0.0), ("lr", -1e-3), ("clip_eps", 0.0), ("gamma", 1.5),
    ("gamma", -0.1), ("lam", 2.0), ("objective", "ppo2"), ("num_envs", 0), ("total_steps", 10),
    ("dtype", "float16"), ("activation", "gelu"), ("target_kl", 0.0), ("max_grad_norm", -1.0),
    ("num_steps", 1), ("lr", math.inf), ("clip_eps", math.inf), ("vf_coef", math.inf),
    ("ent_coef", math.nan), ("kl_beta", math.inf), ("gamma", math.nan), ("seed", -1),
    ("seed", 1.5), ("checkpoint_every", -1), ("trpo_cg_iters", 0), ("norm_adv", "no"),
    ("lr", "1e-3"), ("hidden", (64, 0)),
])
def test_invalid_config_is_a_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(TINY, **{field: value})


def test_every_config_field_has_a_help_string():
    for f in dataclasses.fields(PPOConfig):
        assert f.metadata.get("help"), f.name


def test_presets_are_valid_configs_for_their_env():
    for env_id, config in PRESETS.items():
        assert config.env_id == env_id
    assert PRESETS["CartPole-v1"] == PPOConfig()
    assert PRESETS["Pendulum-v1"].normalize_obs and PRESETS["Pendulum-v1"].scale_rewards


def test_config_round_trips_through_a_dict():
    assert PPOConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="unknown config fields"):
        PPOConfig.from_dict({**TINY.to_dict(), "learning_rate": 1.0})


def test_numpy_scalars_in_a_config_become_python_numbers_that_json_can_write():
    config = PPOConfig(seed=np.int64(3), lr=np.float32(0.5), norm_adv=np.bool_(False),
                       hidden=[np.int64(8)])
    assert PPOConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert type(config.seed) is int and type(config.lr) is float and config.hidden == (8,)


# ----- minibatch counts and the logged grad norm -------------------------------------------------

def test_a_minibatch_count_that_does_not_divide_the_batch_trains():
    # N*T = 64 cut into 3: the reset steps are left out of each batch anyway, so minibatch sizes
    # differ by at most one whatever the count (np.array_split); every epoch takes all 3 steps.
    config = dataclasses.replace(TINY, num_minibatches=3)
    assert config.batch_size % 3 != 0
    rows = train(config).history
    assert len(rows) == TINY.num_updates
    assert all(r["minibatches"] == 3 * TINY.update_epochs for r in rows)
    assert all(math.isfinite(r["policy_loss"]) for r in rows)


def test_logged_grad_norm_averages_only_the_steps_taken():
    # target_kl = 1e-12 stops every update at its second minibatch (measured, not stepped), so
    # each update takes one step. The first update's step is the very step a run with a single
    # minibatch per update takes (the same first permutation of the same batch): its grad_norm
    # is the logged one, not halved by the stopped minibatch's missing step.
    base = dict(num_minibatches=1, total_steps=128)
    stopped = train(dataclasses.replace(TINY, update_epochs=2, target_kl=1e-12, **base)).history
    single = train(dataclasses.replace(TINY, update_epochs=1, **base)).history
    assert stopped[0]["minibatches"] == 1 and single[0]["minibatches"] == 1
    assert stopped[0]["grad_norm"] == single[0]["grad_norm"] > 0


# ----- determinism and exact resume --------------------------------------------------------------

def test_same_seed_gives_identical_metrics_and_weights():
    a, b = train(TINY), train(TINY)
    assert _rows_equal(_without_timing(a.history), _without_timing(b.history))
    for (k, x), y in zip(a.agent.state_dict().items(), b.agent.state_dict().values()):
        np.testing.assert_array_equal(x, y, err_msg=k)
    c = train(dataclasses.replace(TINY, seed=1))
    assert _without_timing(c.history) != _without_timing(a.history)


class _Interrupt(Exception):
    pass


def _crash_at(update):
    def callback(row):
        if row["update"] == update:
            raise _Interrupt
    return callback


@pytest.mark.parametrize("config", [
    TINY,
    dataclasses.replace(TINY, env_id="Pendulum-v1", normalize_obs=True, scale_rewards=True,
                        objective="kl_adaptive", target_kl=0.05),
], ids=["cartpole", "pendulum-normalised-kl"])
def test_resume_after_a_crash_equals_the_uninterrupted_run(tmp_path, config):
    full = train(config, out_dir=tmp_path / "full")
    with pytest.raises(_Interrupt):   # crash after update 5; the last checkpoint is update 4
        train(config, out_dir=tmp_path / "cut", callback=_crash_at(5))
    assert len(read_metrics(tmp_path / "cut")) == 5
    resumed = train(config, out_dir=tmp_path / "cut", resume=True)
    assert _rows_equal(_without_timing(read_metrics(tmp_path / "cut")),
                       _without_timing(read_metrics(tmp_path / "full")))
    assert _rows_equal(_without_timing(resumed.history),
                       _without_timing(read_metrics(tmp_path / "full")))
    times = [r["time_s"] for r in read_metrics(tmp_path / "cut")]
    assert times == sorted(times)             # the wall clock continues across the resume
    for (k, x), y in zip(full.agent.state_dict().items(), resumed.agent.state_dict().values()):
        np.testing.assert_array_equal(x, y, err_msg=k)
    assert resumed.eval == full.eval
    # the env saved at the end holds the same state, down to its spaces' unused Generators
    envs = [loads_env(load_checkpoint(latest_checkpoint(tmp_path / run / "checkpoints"))["env"])
            for run in ("full", "cut")]
    for space in ("action_space", "observation_space", "single_action_space",
                  "single_observation_space"):
        states = [getattr(e, space).np_random.bit_generator.state for e in envs]
        assert states[0] == states[1], space


def test_resume_refuses_a_checkpoint_of_another_env_or_config(tmp_path):
    train(TINY, out_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="env_id is 'CartPole-v1', expected 'Acrobot-v1'"):
        train(dataclasses.replace(TINY, env_id="Acrobot-v1"), out_dir=tmp_path / "run", resume=True)
    with pytest.raises(ValueError, match=r"another config \(fields \['lr'\]"):
        train(dataclasses.replace(TINY, lr=0.1), out_dir=tmp_path / "run", resume=True)
    with pytest.raises(ValueError, match="no checkpoint"):
        train(TINY, out_dir=tmp_path / "empty", resume=True)
    with pytest.raises(ValueError, match="already holds a run"):
        train(TINY, out_dir=tmp_path / "run")
    # a folder whose metrics.csv is gone but whose checkpoints remain is not silently reused
    (tmp_path / "run" / "metrics.csv").unlink()
    with pytest.raises(ValueError, match="already holds a run"):
        train(TINY, out_dir=tmp_path / "run")


def test_resume_needs_the_run_folder_and_all_the_rows_its_checkpoint_counts(tmp_path):
    with pytest.raises(ValueError, match="out_dir"):
        train(TINY, resume=True)
    train(TINY, out_dir=tmp_path / "run")                  # the last checkpoint is update 6
    metrics = tmp_path / "run" / "metrics.csv"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:1 + 3]))
    with pytest.raises(ValueError, match="metrics.csv"):
        train(TINY, out_dir=tmp_path / "run", resume=True)


@pytest.mark.parametrize("damage", ["no config", "unreadable env"])
def test_resume_from_a_well_formed_but_incomplete_checkpoint_is_a_value_error(tmp_path, damage):
    from ppo_ref.train.checkpoint import save_checkpoint
    train(TINY, out_dir=tmp_path / "run")
    last = latest_checkpoint(tmp_path / "run" / "checkpoints")
    state = load_checkpoint(last)
    if damage == "no config":
        del state["config"]
    else:
        state["env"] = b"not a pickle"
    save_checkpoint(last, state)          # a valid file (hash and all) holding a bad state
    with pytest.raises(ValueError, match="update_000006 is incomplete or malformed"):
        train(TINY, out_dir=tmp_path / "run", resume=True)
    if damage == "no config":   # eval's loader needs only the weights: it still works
        assert load_agent(tmp_path / "run")[2] == TINY
    del state["agent"]
    save_checkpoint(last, state)
    with pytest.raises(ValueError, match="update_000006 does not fit .* or is incomplete"):
        load_agent(tmp_path / "run")


def test_load_agent_refuses_a_checkpoint_of_another_network_naming_it(tmp_path):
    train(TINY, out_dir=tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**config, "hidden": [32]}))
    with pytest.raises(ValueError, match=r"update_000006.json does not match: hidden is \[16\]"):
        load_agent(tmp_path / "run")


# ----- objectives, dtypes, spaces ----------------------------------------------------------------

@pytest.mark.parametrize("objective", ["clip", "kl_adaptive", "kl_fixed", "unclipped", "trpo"])
def test_every_objective_trains_without_error(objective):
    result = train(dataclasses.replace(TINY, objective=objective))
    assert len(result.history) == TINY.num_updates
    for row in result.history:
        for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "lr"):
            assert math.isfinite(row[k]), (k, row)
        assert math.isfinite(row["beta"]) == objective.startswith("kl")
    if objective == "kl_adaptive":  # beta moves by the paper's factor of 2 (or stays)
        betas = [r["beta"] for r in result.history]
        assert all(b2 / b1 in (0.5, 1.0, 2.0) for b1, b2 in zip(betas, betas[1:]))


def test_adaptive_beta_follows_the_papers_rule_on_the_exact_kl_after_each_update():
    """PPO paper, section 4: after each update, d = mean KL[pi_old, pi_new]; beta is halved when
    d < d_targ / 1.5 and doubled when d > 1.5 d_targ. d is the KL the whole update produced
    (logged as kl_exact), not the KLs seen during it (the first of which is always 0)."""
    config = dataclasses.replace(TINY, objective="kl_adaptive", kl_beta=1.0, kl_target=0.003,
                                 update_epochs=4, total_steps=12 * 64, lr=1e-2, anneal_lr=False)
    beta, moves = 1.0, set()
    for row in train(config).history:
        d = row["kl_exact"]
        factor = 0.5 if d < 0.003 / 1.5 else 2.0 if d > 0.003 * 1.5 else 1.0
        beta *= factor
        moves.add(factor)
        assert row["beta"] == beta, (row["update"], d, row["beta"], beta)
    assert moves == {0.5, 1.0, 2.0}      # the run exercises every branch of the rule


def test_float32_training_keeps_float32_weights():
    result = train(dataclasses.replace(TINY, dtype="float32"))
    assert all(v.dtype == np.float32 for v in result.agent.state_dict().values())
    assert all(math.isfinite(r["value_loss"]) for r in result.history)


def test_continuous_actions_train_and_evaluate(tmp_path):
    config = dataclasses.replace(PRESETS["Pendulum-v1"], total_steps=256, num_envs=2,
                                 num_steps=64, num_minibatches=2, update_epochs=1, eval_episodes=2,
                                 checkpoint_every=1)
    result = train(config, out_dir=tmp_path / "p")
    assert -2000 < result.eval["mean_return"] < 0 and result.eval["episodes"] == 2
    agent, normalizer, loaded = load_agent(tmp_path / "p")
    assert loaded == config and normalizer is not None
    again = evaluate(agent, "Pendulum-v1", 2, seed=config.seed + 10**6, obs_normalizer=normalizer)
    assert again == result.eval


def test_learning_rate_and_clip_range_anneal_linearly_to_zero():
    # U = 6 updates; update k (1-based) runs with lr * (1 - (k - 1) / U), and so does clip_eps.
    rows = train(TINY).history
    assert [r["lr"] for r in rows] == pytest.approx([1e-3 * (6 - k) / 6 for k in range(6)])
    assert [r["clip_eps"] for r in rows] == pytest.approx([0.2 * (6 - k) / 6 for k in range(6)])
    flat = train(dataclasses.replace(TINY, anneal_lr=False, anneal_clip=False)).history
    assert {r["lr"] for r in flat} == {1e-3} and {r["clip_eps"] for r in flat} == {0.2}


def test_train_accepts_a_vector_env_and_refuses_one_of_another_size():
    from ppo_ref.train.rollout import make_vec_env
    given = train(TINY, env=make_vec_env("CartPole-v1", TINY.num_envs))
    assert _rows_equal(_without_timing(given.history), _without_timing(train(TINY).history))
    with pytest.raises(ValueError, match="num_envs=4 but the VectorEnv passed in has 3"):
        train(TINY, env=make_vec_env("CartPole-v1", 3))
    # a VectorEnv of another env than config.env_id: evaluation and checkpoints would use env_id
    with pytest.raises(ValueError, match="VectorEnv passed in is 'Acrobot-v1' but config.env_id "
                                         "is 'CartPole-v1'"):
        train(TINY, env=make_vec_env("Acrobot-v1", TINY.num_envs))


class CountingEnv(gym.Env):
    """An episode reset with seed s lasts L = 2 + s % 5 steps and pays 1, 2, ..., L, so its return
    is L (L + 1) / 2. Episodes reset without a seed (autoreset) pay 1000 a step: an evaluation
    that counted past the first episode would show it."""
    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.length, self.t = (2 + seed % 5, 0) if seed is not None else (50, 0)
        self.pay = 1000.0 if seed is None else None
        return np.zeros(1), {}

    def step(self, action):
        self.t += 1
        reward = self.pay if self.pay is not None else float(self.t)
        return np.zeros(1), reward, self.t >= self.length, False, {}


def test_evaluate_sums_each_copys_first_episode_only():
    from ppo_ref.train.policy import ActorCritic
    agent = ActorCritic(CountingEnv.observation_space, CountingEnv.action_space,
                        np.random.default_rng(0), hidden=(4,))
    result = evaluate(agent, CountingEnv, episodes=7, seed=10)
    lengths = [2 + (10 + i) % 5 for i in range(7)]          # copy i is reset with seed 10 + i
    expected = [n * (n + 1) / 2 for n in lengths]            # 1 + 2 + ... + L
    assert result["returns"] == expected
    assert result["mean_return"] == pytest.approx(np.mean(expected))
    assert result["std_return"] == pytest.approx(np.std(expected))   # ddof = 0, as documented
    assert result["episodes"] == 7


class NeverEnds(gym.Env):
    """An env with no time limit whose episodes never end; every step pays 1."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3), {}

    def step(self, action):
        return np.zeros(3), 1.0, False, False, {}


def _agent_for(env_class):
    from ppo_ref.train.policy import ActorCritic
    return ActorCritic(env_class.observation_space, env_class.action_space,
                       np.random.default_rng(0), hidden=(4,))


def test_evaluate_caps_an_endless_episode_and_warns():
    with pytest.warns(RuntimeWarning, match="2 of 2 episodes had not ended after max_steps=50"):
        result = evaluate(_agent_for(NeverEnds), NeverEnds, episodes=2, max_steps=50)
    assert result["returns"] == [50.0, 50.0]


def test_a_run_on_an_endless_env_finishes_its_final_evaluation_at_the_default_cap(tmp_path):
    """The env registers no max_episode_steps: evaluation stops after EVAL_MAX_STEPS = 10,000."""
    import time
    config = dataclasses.replace(TINY, total_steps=64, num_envs=2, num_steps=32)
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match="max_steps=10000"):
        result = train(config, env=NeverEnds, out_dir=tmp_path / "run")
    assert result.eval["returns"] == [10000.0, 10000.0]
    assert time.monotonic() - start < 30


def test_evaluate_caps_at_the_registered_max_episode_steps_without_warning(recwarn):
    """CartPole-v1 registers 500 steps: the cap equals the env's own time limit, so a policy
    that balances for ever ends at 500 steps by truncation and nothing is reported."""
    from ppo_ref.train.trainer import _max_episode_steps
    assert _max_episode_steps("CartPole-v1", None) == 500
    assert _max_episode_steps(NeverEnds, gym.vector.SyncVectorEnv([NeverEnds])) == 10_000
    evaluate(_agent_for(CountingEnv), CountingEnv, episodes=2)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("kwargs, name", [({"seed": -1}, "seed"), ({"episodes": 0}, "episodes"),
                                          ({"max_steps": 0}, "max_steps")])
def test_evaluate_refuses_bad_arguments_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=f"{name} must be an integer >= "):
        evaluate(_agent_for(CountingEnv), CountingEnv, **{"episodes": 2, **kwargs})


def test_more_episodes_than_memory_holds_are_refused_before_any_env_is_made(monkeypatch):
    from ppo_ref.train import memory
    monkeypatch.setattr(memory, "available_memory", lambda: 10**9)      # 1 GB free
    made = []
    with pytest.raises(ValueError, match=r"evaluating 100,000,000 episodes .* lower episodes"):
        evaluate(_agent_for(CountingEnv), lambda: made.append(1) or CountingEnv(), 10**8)
    assert made == []


def test_a_run_larger_than_memory_is_refused_before_any_env_is_made(monkeypatch):
    from ppo_ref.train import memory
    monkeypatch.setattr(memory, "available_memory", lambda: 10**9)
    made = []
    # 2 * (4 envs * 2**22 steps) * (1 + 1 + 4) * 8 + 3 bytes > 10**9 bytes
    config = dataclasses.replace(TINY, num_steps=2**22, total_steps=4 * 2**22)
    with pytest.raises(ValueError, match=r"num_envs \* num_steps = 16,777,216 .* lower num_envs"):
        train(config, env=lambda: made.append(1) or CountingEnv())
    # (3 * 1 + 1 + 1) * 8 + 1 = 41 bytes an episode at the least: 4.1 GB for 10**8 episodes
    with pytest.raises(ValueError, match=r"eval_episodes = 100,000,000 .* lower eval_episodes"):
        train(dataclasses.replace(TINY, eval_episodes=10**8),
              env=lambda: made.append(1) or CountingEnv())
    assert made == []


def test_a_dict_for_a_config_says_to_make_a_ppoconfig():
    with pytest.raises(TypeError, match=r"pass PPOConfig\(\*\*d\)"):
        train(TINY.to_dict())


# ----- bad environments --------------------------------------------------------------------------

class NaNAfter(gym.Env):
    """Observations are finite for the first `k` steps of this env copy (counted across episodes),
    then NaN. Episodes are truncated every 7 steps."""
    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, k=40):
        self.k, self.steps, self.t = k, 0, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3), {}

    def step(self, action):
        self.steps += 1
        self.t += 1
        obs = np.full(3, np.nan if self.steps > self.k else 0.1 * self.t)
        return obs, 1.0, False, self.t >= 7, {}


def test_nan_observation_is_a_clear_error_and_earlier_checkpoints_stay_loadable(tmp_path):
    config = dataclasses.replace(TINY, num_envs=2, num_steps=8, num_minibatches=1,
                                 total_steps=160, checkpoint_every=1)
    # Env steps 1..40 are finite. Each 7-step episode is followed by one reset step (next-step
    # autoreset), so env step 41 is vector step 5 * 8 + 5 = 45 (counting from 0): in the rollout
    # of update 6 (vector steps 40..47). Updates 1..5 finished and were checkpointed.
    with pytest.raises(ValueError, match=r"environment 0 emitted a non-finite observation.*"
                                         r"vector step 45"):
        train(config, env=lambda: NaNAfter(k=40), out_dir=tmp_path / "run")
    last = latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert last.name == "update_000005"
    state = load_checkpoint(last, expect={"env_id": config.env_id, "obs_shape": [3]})
    assert state["update"] == 5 and state["global_step"] == 80


class Unpicklable(gym.Wrapper):
    """CartPole holding a lambda: pickle cannot save it, so neither can a checkpoint."""

    def __init__(self):
        super().__init__(gym.make("CartPole-v1"))
        self.hook = lambda: None


def test_resume_with_an_env_that_cannot_be_saved_is_refused_with_the_reason(tmp_path):
    config = dataclasses.replace(TINY, total_steps=128, num_envs=2, num_steps=16,
                                 checkpoint_every=1)
    train(config, env=Unpicklable, out_dir=tmp_path / "run")    # training itself is unaffected
    with pytest.raises(ValueError, match="its environment could not be saved.*pickle"):
        train(config, env=Unpicklable, out_dir=tmp_path / "run", resume=True)


def test_unknown_env_id_is_a_value_error():
    with pytest.raises(ValueError, match="unknown env id 'NoSuchEnv-v0'"):
        train(dataclasses.replace(TINY, env_id="NoSuchEnv-v0"))


# ----- the learning regression test --------------------------------------------------------------

def test_default_command_reaches_475_on_cartpole_within_100k_steps(tmp_path):
    """`ppo-ref train --seed 0` (the default config, CartPole-v1): the deterministic evaluation
    over 20 episodes after at most 100,000 environment steps averages >= 475 (the README's
    Training section lists 5 seeds). Run as a subprocess because the CLI pins BLAS to one thread
    before numpy loads (several threads are far slower at these matrix sizes)."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "ppo_ref", "train", "--seed", "0", "--out",
                           str(tmp_path / "run"), "--no-progress"], capture_output=True, text=True,
                          cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = read_metrics(tmp_path / "run")
    assert rows[-1]["global_step"] <= 100_000
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert ev["episodes"] == 20 and ev["mean_return"] >= 475, ev


def _short_cartpole():
    """CartPole with episodes cut at 50 steps: CartPole-v1's spaces, another environment."""
    return gym.make("CartPole-v1", max_episode_steps=50)


def test_a_run_on_an_env_passed_in_resumes_and_loads_only_with_that_env(tmp_path):
    """config.env_id is CartPole-v1 and the spaces match, but the env is not CartPole-v1: going by
    the id would silently evaluate or continue on another env, so only the env itself will do."""
    full = train(TINY, env=_short_cartpole, out_dir=tmp_path / "full")
    with pytest.raises(_Interrupt):
        train(TINY, env=_short_cartpole, out_dir=tmp_path / "cut", callback=_crash_at(5))
    with pytest.raises(ValueError, match="trained on an env passed to train"):
        train(TINY, out_dir=tmp_path / "cut", resume=True)
    resumed = train(TINY, env=_short_cartpole, out_dir=tmp_path / "cut", resume=True)
    assert _rows_equal(_without_timing(resumed.history), _without_timing(full.history))
    assert resumed.eval == full.eval
    with pytest.raises(ValueError, match="which env id 'CartPole-v1' does not rebuild"):
        load_agent(tmp_path / "full")
    agent, normalizer, _ = load_agent(tmp_path / "full", env=_short_cartpole)
    assert evaluate(agent, _short_cartpole, TINY.eval_episodes, seed=TINY.seed + 10**6) == full.eval


def test_a_vector_env_the_env_id_does_not_rebuild_needs_no_run_folder(tmp_path):
    from gymnasium.vector import SyncVectorEnv
    from ppo_ref.train.rollout import make_vec_env
    envs = SyncVectorEnv([_short_cartpole] * TINY.num_envs)     # no spec: not CartPole-v1's
    with pytest.raises(ValueError, match="does not rebuild the VectorEnv passed in"):
        train(TINY, env=envs, out_dir=tmp_path / "run")
    train(TINY, env=make_vec_env("CartPole-v1", TINY.num_envs), out_dir=tmp_path / "ok")
    assert json.loads((tmp_path / "ok" / "env.json").read_text())["env_id_rebuilds_it"]
    load_agent(tmp_path / "ok")
