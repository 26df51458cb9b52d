"""The teaching-env presets (FrozenLake-v1, CliffWalking-v1, Taxi-v4, Blackjack-v1) train from
`ppo-ref train --preset NAME`; CliffWalking's preset env has a time limit; and the demo's exact
scoring (finite-horizon value iteration on the env's own transition table) agrees with
Monte-Carlo episodes and with the known optimum of CliffWalking."""
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from ppo_ref.train.config import PRESETS
from ppo_ref.train.trainer import train

REPO = Path(__file__).resolve().parents[1]
TEACHING = ["FrozenLake-v1", "CliffWalkingCapped-v1", "Taxi-v4", "Blackjack-v1"]


def _demo():
    """demos/teaching_envs.py as a module (its folder on sys.path for _common)."""
    sys.path.insert(0, str(REPO / "demos"))
    try:
        spec = importlib.util.spec_from_file_location("teaching_envs", REPO / "demos" / "teaching_envs.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "demos"))
    return module


@pytest.mark.parametrize("name", TEACHING)
def test_each_teaching_preset_trains_a_few_updates(name):
    config = dataclasses.replace(PRESETS[name], total_steps=3 * 256, num_envs=4, num_steps=64)
    result = train(config)
    assert len(result.history) == 3
    assert all(np.isfinite(row["policy_loss"]) and np.isfinite(row["value_loss"])
               for row in result.history)


def test_ppo_ref_train_preset_runs_from_the_command_line(tmp_path):
    out = tmp_path / "lake"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "ppo_ref", "train", "--preset", "FrozenLake-v1",
                           "--total-steps", "512", "--num-envs", "4", "--num-steps", "64",
                           "--eval-episodes", "5", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "eval.json").read_text())["episodes"] == 5
    assert json.loads((out / "config.json").read_text())["env_id"] == "FrozenLake-v1"


def test_the_cliff_walking_preset_has_a_time_limit_and_the_same_table():
    env = gym.make(PRESETS["CliffWalkingCapped-v1"].env_id)
    assert env.spec.max_episode_steps == 100
    assert env.unwrapped.P == gym.make("CliffWalking-v1").unwrapped.P


def test_value_iteration_finds_cliff_walkings_optimum_of_minus_13():
    """The shortest path along the cliff edge: 13 steps of reward -1."""
    assert _demo().tabular_value(PRESETS["CliffWalkingCapped-v1"].env_id) == -13.0


def test_the_exact_value_of_a_policy_matches_its_monte_carlo_return():
    """A fixed FrozenLake policy: its success probability from the table, against 4000 episodes
    (within 4 standard errors); the optimum is at least as good."""
    demo = _demo()
    policy = np.array([0, 3, 3, 3, 0, 0, 0, 0, 3, 1, 0, 0, 0, 2, 1, 0])  # the usual optimal-ish map
    exact = demo.tabular_value("FrozenLake-v1", policy)
    env = gym.make("FrozenLake-v1")
    wins = 0
    for episode in range(4000):
        s, _ = env.reset(seed=episode)
        done = False
        while not done:
            s, r, term, trunc, _ = env.step(int(policy[s]))
            done = term or trunc
        wins += r
    p = wins / 4000
    assert abs(p - exact) < 4 * np.sqrt(exact * (1 - exact) / 4000)
    assert demo.tabular_value("FrozenLake-v1") >= exact > 0.5


def test_teaching_demo_runs_in_quick_mode(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(REPO / "demos" / "teaching_envs.py"), "--quick",
                           "--out", str(tmp_path), "--envs", "FrozenLake-v1", "Blackjack-v1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "teaching_envs.json").read_text())
    lake = data["FrozenLake-v1"]
    assert 0.7 < lake["optimal"] < 0.8
    assert all(0.0 <= s["score"] <= lake["optimal"] + 1e-12 for s in lake["per_seed"])
    assert (tmp_path / "teaching_envs.png").read_bytes()[:4] == b"\x89PNG"


def test_lunarlander_preset_is_rl_zoo3s_and_its_demo_runs_in_quick_mode(tmp_path):
    c = PRESETS["LunarLander-v3"]
    assert (c.num_envs, c.num_steps, c.update_epochs, c.gamma, c.lam, c.ent_coef) == \
        (16, 1024, 4, 0.999, 0.98, 0.01)
    assert c.num_envs * c.num_steps // c.num_minibatches == 64      # rl-zoo3's batch_size
    pytest.importorskip("Box2D", reason="the box2d extra is not installed")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(REPO / "demos" / "lunarlander.py"), "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "lunarlander.json").read_text())
    assert len(data["per_seed"]) == 2 and data["env_id"] == "LunarLander-v3"


def test_the_lunarlander_figure_is_drawn_from_finished_runs_without_box2d(tmp_path):
    """--from-runs reads OUT/lunarlander_runs/seed<k> (any run folders: CartPole's here, so the
    test needs no Box2D) and writes the figure and one JSON entry per finished seed."""
    for seed in (0, 3):
        train(dataclasses.replace(PRESETS["CartPole-v1"], seed=seed, total_steps=512,
                                  eval_episodes=2),
              out_dir=tmp_path / "lunarlander_runs" / f"seed{seed}", progress=False)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(REPO / "demos" / "lunarlander.py"), "--from-runs",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "lunarlander.json").read_text())
    assert sorted(data["per_seed"]) == ["0", "3"]
    assert len(data["curve"]["mean"]) > 0
    assert (tmp_path / "lunarlander.png").read_bytes()[:4] == b"\x89PNG"
