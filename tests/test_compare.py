"""ppo-ref compare: learning curves in, a score per run, IQM / mean / P(a better than b) out."""
import json

import numpy as np
import pytest

from ppo_ref import PPOConfig, train
from ppo_ref.cli import main as cli_main
from ppo_ref.compare import compare, load_runs, score

KEYS = {"metric", "a", "b", "probability_of_improvement", "verdict"}
GROUP_KEYS = {"n", "iqm", "iqm_ci", "mean", "mean_ci"}


def write_csv(path, runs):
    """runs: {name: [(global_step, episodic_return), ...]} as one CSV, one row per episode."""
    lines = ["run,global_step,episodic_return"]
    for name, episodes in runs.items():
        lines += [f"{name},{step},{ret!r}" for step, ret in episodes]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def synthetic_runs(rng, n_runs, learns: bool, episodes: int = 200, budget: int = 40_000):
    """CartPole-like curves: episodes ending every budget/episodes steps; a learning run's returns
    climb from ~20 to ~500 at a run-specific pace, an untrained one stays near 22."""
    runs = {}
    for k in range(n_runs):
        steps = np.linspace(budget / episodes, budget, episodes).astype(int)
        if learns:
            pace = rng.uniform(0.5, 1.5)
            mean = 20 + 480 * np.clip(pace * np.arange(episodes) / episodes, 0, 1)
        else:
            mean = np.full(episodes, 22.0)
        returns = np.clip(mean + rng.normal(0, 15, episodes), 8, 500)
        runs[f"r{k}"] = list(zip(steps.tolist(), returns.tolist()))
    return runs


def run_compare(capsys, *argv):
    code = cli_main(["compare", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# ----- the verdicts ------------------------------------------------------------------------------

def test_trained_runs_beat_untrained_ones(tmp_path, capsys):
    rng = np.random.default_rng(0)
    trained = write_csv(tmp_path / "trained.csv", synthetic_runs(rng, 10, learns=True))
    untrained = write_csv(tmp_path / "untrained.csv", synthetic_runs(rng, 10, learns=False))
    code, out, _ = run_compare(capsys, "--a", trained, "--b", untrained,
                               "--json", tmp_path / "r.json")
    assert code == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["probability_of_improvement"]["estimate"] >= 0.9
    assert result["probability_of_improvement"]["ci"][0] > 0.5
    assert result["verdict"] == "a better"
    assert "verdict: a better" in out
    # the same runs the other way round
    code, out, _ = run_compare(capsys, "--a", untrained, "--b", trained)
    assert code == 0 and "verdict: b better" in out


def test_two_seed_sets_of_one_config_show_no_difference(tmp_path, capsys):
    rng = np.random.default_rng(1)   # both sets drawn from the one distribution
    first = write_csv(tmp_path / "first.csv", synthetic_runs(rng, 20, learns=True))
    second = write_csv(tmp_path / "second.csv", synthetic_runs(rng, 20, learns=True))
    code, out, _ = run_compare(capsys, "--a", first, "--b", second, "--json", tmp_path / "r.json")
    assert code == 0
    result = json.loads((tmp_path / "r.json").read_text())
    low, high = result["probability_of_improvement"]["ci"]
    assert low <= 0.5 <= high
    assert result["verdict"] == "no difference detectable with 20 and 20 runs"


def test_json_has_exactly_the_documented_keys(tmp_path, capsys):
    rng = np.random.default_rng(2)
    a = write_csv(tmp_path / "a.csv", synthetic_runs(rng, 3, learns=True, episodes=30))
    b = write_csv(tmp_path / "b.csv", synthetic_runs(rng, 4, learns=True, episodes=30))
    assert run_compare(capsys, "--a", a, "--b", b, "--json", tmp_path / "r.json",
                       "--n-boot", 100)[0] == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert set(result) == KEYS
    assert set(result["a"]) == set(result["b"]) == GROUP_KEYS
    assert (result["a"]["n"], result["b"]["n"]) == (3, 4)
    assert set(result["probability_of_improvement"]) == {"estimate", "ci"}
    assert result["metric"] == "auc"
    for group in ("a", "b"):
        low, high = result[group]["iqm_ci"]
        assert low <= result[group]["iqm"] <= high


def test_the_same_seed_gives_the_same_intervals(tmp_path, capsys):
    rng = np.random.default_rng(3)
    a = write_csv(tmp_path / "a.csv", synthetic_runs(rng, 5, learns=True, episodes=30))
    b = write_csv(tmp_path / "b.csv", synthetic_runs(rng, 5, learns=True, episodes=30))
    outs = [run_compare(capsys, "--a", a, "--b", b, "--seed", 7, "--n-boot", 200)[1]
            for _ in range(2)]
    assert outs[0] == outs[1]


# ----- the metrics, by hand ----------------------------------------------------------------------

def test_auc_is_the_trapezoid_mean_of_the_20_episode_curve(tmp_path):
    rng = np.random.default_rng(4)
    steps = np.sort(rng.choice(np.arange(10, 5000), size=45, replace=False))
    rets = rng.uniform(0, 100, size=45)
    path = write_csv(tmp_path / "one.csv", {"x": list(zip(steps.tolist(), rets.tolist()))})
    (run,) = load_runs([path], "--a")
    curve = [np.mean(rets[max(0, i - 19):i + 1]) for i in range(45)]
    area = 0.0
    for i in range(44):
        area += (steps[i + 1] - steps[i]) * (curve[i] + curve[i + 1]) / 2
    assert score(run, "auc") == pytest.approx(area / (steps[-1] - steps[0]), rel=1e-12)


def test_steps_to_threshold_waits_for_20_episodes_and_counts_a_miss_as_the_budget(tmp_path):
    # run "fast": 19 episodes of 500 then one of 300: the 20-episode mean is 490 at episode 20
    # (step 2000), not before (fewer than 20 episodes), so with threshold 480 it reaches at 2000.
    fast = [(100 * (i + 1), 500.0) for i in range(19)] + [(2000, 300.0)]
    # run "slow": returns 10, 20, ..., 400 at steps 50, ..., 2000, then 10 at step 2500: its
    # 20-episode mean never reaches 480, so its score is its budget, its last step, 2500
    slow = [(50 * (i + 1), 10.0 * (i + 1)) for i in range(40)] + [(2500, 10.0)]
    # run "mid": 20 episodes of 100 then 20 of 500 at steps 10, 20, ...: the mean of the last 20
    # first reaches 480 when 19 of them are 500, i.e. at the 39th episode (step 390)
    mid = [(10 * (i + 1), 100.0 if i < 20 else 500.0) for i in range(40)]
    path = write_csv(tmp_path / "t.csv", {"fast": fast, "slow": slow, "mid": mid})
    runs = {r.name.split(":")[-1]: r for r in load_runs([path], "--a")}
    assert score(runs["fast"], "steps_to_threshold", 480) == 2000
    assert score(runs["slow"], "steps_to_threshold", 480) == 2500
    assert score(runs["mid"], "steps_to_threshold", 480) == 390   # (19*500 + 100)/20 = 480


def test_steps_to_threshold_fewer_steps_is_better():
    # a: 1000, 2000, 3000; b: 5000, 6000, 7000 steps: every a beats every b
    result = compare([1000, 2000, 3000], [5000, 6000, 7000], "steps_to_threshold", n_boot=200,
                     rng=np.random.default_rng(0))
    assert result["probability_of_improvement"]["estimate"] == 1.0
    assert result["a"]["mean"] == 2000.0


def test_run_folders_score_auc_and_final(tmp_path, capsys):
    folders = []
    for seed in range(2):
        config = PPOConfig(seed=seed, total_steps=256, num_envs=2, num_steps=64, update_epochs=1,
                           hidden=(8,), eval_episodes=2)
        train(config, out_dir=tmp_path / f"run{seed}")
        folders.append(tmp_path / f"run{seed}")
    runs = load_runs(folders, "--a")
    from ppo_ref.train.runs import read_eval, read_metrics
    for folder, run in zip(folders, runs):
        rows = [r for r in read_metrics(folder) if np.isfinite(r["episodic_return"])]
        s = [r["global_step"] for r in rows]
        v = [r["episodic_return"] for r in rows]
        area = sum((s[i + 1] - s[i]) * (v[i] + v[i + 1]) / 2 for i in range(len(s) - 1))
        expected = v[0] if len(s) == 1 else area / (s[-1] - s[0])
        assert score(run, "auc") == pytest.approx(expected, rel=1e-12)
        assert score(run, "final") == read_eval(folder)["mean_return"]
        assert run.budget == 256
    code, out, _ = run_compare(capsys, "--a", *folders, "--b", *folders, "--metric", "final",
                               "--n-boot", 100)
    assert code == 0 and "no difference detectable with 2 and 2 runs" in out


def test_plot_writes_the_figure(tmp_path, capsys):
    rng = np.random.default_rng(5)
    a = write_csv(tmp_path / "a.csv", synthetic_runs(rng, 4, learns=True, episodes=30))
    b = write_csv(tmp_path / "b.csv", synthetic_runs(rng, 4, learns=False, episodes=30))
    code, out, _ = run_compare(capsys, "--a", a, "--b", b, "--plot", tmp_path / "c.png",
                               "--n-boot", 100)
    assert code == 0 and (tmp_path / "c.png").stat().st_size > 0


# ----- bad input: one line, exit 2 ---------------------------------------------------------------

def test_bad_input_exits_2_with_one_line_naming_it(tmp_path, capsys):
    rng = np.random.default_rng(6)
    good = write_csv(tmp_path / "good.csv", synthetic_runs(rng, 3, learns=True, episodes=30))
    (tmp_path / "cols.csv").write_text("seed,step,return\n0,10,20.0\n")
    (tmp_path / "empty.csv").write_text("run,global_step,episodic_return\n")
    (tmp_path / "text.csv").write_text("run,global_step,episodic_return\nx,10,lots\n")
    one = write_csv(tmp_path / "one.csv", {"only": [(10, 20.0)]})
    cases = [
        (["--a", tmp_path / "missing.csv", "--b", good], "missing.csv"),
        (["--a", good, "--b", tmp_path / "cols.csv"], "global_step"),
        (["--a", good, "--b", tmp_path / "empty.csv"], "no runs"),
        (["--a", tmp_path / "text.csv", "--b", good], "line 2"),
        (["--a", good, "--b", one], "group b"),
        (["--a", "--b", good], "--a"),
        (["--a", good, "--b", good, "--metric", "steps_to_threshold"], "--threshold"),
        (["--a", good, "--b", good, "--metric", "final"], "final"),
        (["--a", good, "--b", good, "--n-boot", 0], "--n-boot"),
    ]
    for argv, named in cases:
        code, out, err = run_compare(capsys, *argv)
        assert code == 2, argv
        assert named in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
