"""ppo_ref.cli: `ppo-ref train` writes a complete run folder, `ppo-ref eval` re-runs it, and bad
input is one line on stderr with exit status 2."""
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ppo_ref.cli import COMMANDS, main
from ppo_ref.train.checkpoint import load_checkpoint
from ppo_ref.train.runs import TIMING_COLUMNS, read_metrics

TINY = ["--total-steps", "128", "--num-envs", "2", "--num-steps", "32", "--update-epochs", "1",
        "--hidden", "8", "--eval-episodes", "2", "--checkpoint-every", "1"]
REQUIRED = ["global_step", "episodic_return", "policy_loss", "value_loss", "entropy", "approx_kl",
            "clip_fraction", "explained_variance", "lr", "beta", "time_s", "steps_per_s"]
ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ppo_ref", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TINY, "--out", str(out), "--no-progress"]) == 0
    return out


def test_train_writes_the_run_folder(run_dir):
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "checkpoints", "config.json",
                                                           "eval.json", "metrics.csv"]
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert set(REQUIRED) <= set(rows[0]) and len(rows) == 2          # 128 steps / 64 per update
    assert [int(r["global_step"]) for r in rows] == [64, 128]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env_id"] == "CartPole-v1" and config["hidden"] == [8]
    ev = json.loads((run_dir / "eval.json").read_text())
    assert {"mean_return", "std_return", "episodes"} <= set(ev) and ev["episodes"] == 2
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "update_000001.json", "update_000001.npz", "update_000002.json", "update_000002.npz"]


def test_eval_reruns_the_saved_policy(run_dir, capsys, tmp_path):
    out = tmp_path / "again.json"
    assert main(["eval", str(run_dir), "--json", str(out)]) == 0
    assert "mean return" in capsys.readouterr().out
    # the same episodes (seed, count) as the evaluation at the end of training
    assert json.loads(out.read_text()) == json.loads((run_dir / "eval.json").read_text())


def test_resume_of_a_finished_run_changes_no_metrics(run_dir):
    before = (run_dir / "metrics.csv").read_text()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert (run_dir / "metrics.csv").read_text() == before


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_line_is_rewritten_in_place_on_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert main(["train", *TINY, "--out", str(tmp_path / "r")]) == 0
    err = sys.stderr.getvalue()
    assert err.count("\r") == 2 and "steps/s" in err and "approx_kl" in err and "clip_frac" in err


def test_progress_in_a_log_file_is_a_plain_line_every_5_percent_of_the_updates(tmp_path, capsys):
    # U = 160 / (2 envs * 2 steps) = 40 updates: a line at every 2nd one (5% of 40), 20 lines
    args = ["--total-steps", "160", "--num-envs", "2", "--num-steps", "2", "--update-epochs", "1",
            "--hidden", "4", "--eval-episodes", "1", "--checkpoint-every", "0"]
    assert main(["train", *args, "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    steps = [int(line.split()[1].split("/")[0]) for line in err.splitlines()
             if line.startswith("step ")]
    assert steps == [2 * 2 * k for k in range(2, 41, 2)]    # global step after update k: 4 k


def test_python_dash_m_is_the_same_command(tmp_path):
    proc = _run("train", *TINY, "--out", str(tmp_path / "r"), "--no-progress", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "mean return" in proc.stdout
    assert json.loads((tmp_path / "r" / "config.json").read_text())["seed"] == 3


@pytest.mark.parametrize("args, message", [
    (["train", "--lr", "-1"], "lr must be > 0"),
    (["train", "--num-minibatches", "0"], "num_minibatches"),
    (["train", "--clip-eps", "inf"], "clip_eps must be > 0 and finite, got inf"),
    (["train", "--gamma", "1.01"], "gamma must lie in [0, 1], got 1.01"),
    (["train", "--seed", "-1"], "seed must be an integer >= 0, got -1"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--objective", "ppo2"], "invalid choice: 'ppo2'"),
    (["train", "--resume", "x", "--lr", "0.1"], "drop ['--lr']"),
    (["eval", "/no/such/run"], "not a run folder"),
    (["fly"], "unknown command 'fly'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_eval_of_a_corrupt_checkpoint_or_zero_episodes_is_exit_2(run_dir, tmp_path, capsys):
    assert main(["eval", str(run_dir), "--episodes", "0"]) == 2
    assert "episodes must be an integer >= 1" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    npz = broken / "checkpoints" / "update_000002.npz"
    npz.write_bytes(npz.read_bytes()[:-10])
    assert main(["eval", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert "update_000002.npz is corrupt" in err and "\n" not in err


def test_damaged_config_or_metrics_is_exit_2_naming_the_file(run_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "metrics.csv").write_text((run_dir / "metrics.csv").read_text()[:-40])
    assert main(["train", "--resume", str(broken), "--no-progress"]) == 2
    assert "metrics.csv is damaged" in capsys.readouterr().err.strip().splitlines()[-1]
    (broken / "config.json").write_text('{"env_id": "CartPole-v1",')
    assert main(["eval", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert "config.json is not valid JSON" in err and "\n" not in err


def test_an_unwritable_run_folder_is_exit_2(tmp_path, capsys, monkeypatch):
    from ppo_ref.train import runs

    def refuse(self, path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(runs.RunFolder, "__init__", refuse)
    assert main(["train", *TINY, "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "Permission denied" in capsys.readouterr().err.strip().splitlines()[-1]


def test_bad_flag_in_a_subprocess_has_no_traceback():
    proc = _run("train", "--env", "NoSuchEnv-v0", "--no-progress", "--out", os.devnull + "/x")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "unknown env id 'NoSuchEnv-v0'" in proc.stderr


def test_train_help_names_each_default_and_no_command_is_usage_on_stderr(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())     # argparse wraps the help lines
    assert exit_.value.code == 0
    assert "--lr LR Adam learning rate (default: 0.001)" in out
    assert "(default: 64 64)" in out and "(default: CartPole-v1)" in out
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: ppo-ref")


def test_registry_holds_train_and_eval():
    assert {"train", "eval"} <= set(COMMANDS)


def test_top_level_help_lists_every_command_with_what_it_does(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        line = next(l for l in out.splitlines() if l.strip().startswith(name + " "))
        assert len(line.split()) > 3, line              # the name and a description


def test_ctrl_c_during_training_names_the_folder_to_resume(tmp_path, capsys, monkeypatch):
    from ppo_ref.train import trainer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(trainer, "train", interrupted)   # cli imports it when train runs
    assert main(["train", "--total-steps", "512", "--out", str(tmp_path / "r")]) == 130
    assert f"ppo-ref train --resume {tmp_path / 'r'}" in capsys.readouterr().err


# ----- a run trained on an env passed to train() -------------------------------------------------

def _short_cartpole():
    """CartPole with episodes cut at 50 steps: CartPole-v1's spaces, another environment."""
    import gymnasium as gym
    return gym.make("CartPole-v1", max_episode_steps=50)


def _plain_cartpole():
    import gymnasium as gym
    return gym.make("CartPole-v1")


def test_eval_and_resume_refuse_a_run_whose_env_the_env_id_does_not_rebuild(tmp_path, capsys):
    from ppo_ref.train.trainer import PPOConfig, train
    config = PPOConfig(total_steps=128, num_envs=2, num_steps=32, update_epochs=1, hidden=(8,),
                       eval_episodes=2, checkpoint_every=1)
    train(config, env=_short_cartpole, out_dir=tmp_path / "short")
    record = json.loads((tmp_path / "short" / "env.json").read_text())
    assert record["passed_to_train"] == "callable" and record["spec_id"] == "CartPole-v1"
    assert record["env_id_rebuilds_it"] is False
    assert main(["eval", str(tmp_path / "short")]) == 2
    err = capsys.readouterr().err.strip()
    assert "was trained on an env passed to train()" in err and "\n" not in err
    assert main(["train", "--resume", str(tmp_path / "short"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "which env id 'CartPole-v1' does not rebuild" in err
    # a callable making exactly CartPole-v1 is rebuilt by its id: eval gives the same episodes
    train(config, env=_plain_cartpole, out_dir=tmp_path / "plain")
    assert json.loads((tmp_path / "plain" / "env.json").read_text())["env_id_rebuilds_it"]
    assert main(["eval", str(tmp_path / "plain"), "--json", str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text()) == \
        json.loads((tmp_path / "plain" / "eval.json").read_text())


class _ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_stdout_closed_early_ends_quietly_with_status_1(run_dir, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["eval", str(run_dir)]) == 1
    assert capsys.readouterr().err == ""


def test_piping_into_a_reader_that_has_gone_prints_nothing_on_stderr(run_dir):
    read_end, write_end = os.pipe()
    os.close(read_end)                       # the reader has gone before the command writes
    try:
        proc = subprocess.run([sys.executable, "-m", "ppo_ref", "eval", str(run_dir)],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 1 and proc.stderr == ""


# ----- run folders: one writer, nothing overwritten, recoverable ---------------------------------

def _last_error_line(capsys):
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_a_second_writer_is_exit_2_naming_the_holder(run_dir, tmp_path, capsys):
    from ppo_ref.train.guards import FolderLock
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    lock = FolderLock(run)                      # the first writer, still running
    try:
        assert main(["train", "--resume", str(run), "--no-progress"]) == 2
        assert f"in use by another run (process {os.getpid()}" in _last_error_line(capsys)
    finally:
        lock.release()


def test_out_into_a_folder_of_the_users_files_is_exit_2_and_touches_nothing(tmp_path, capsys):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "config.json").write_text('{"mine":1}\n')
    assert main(["train", *TINY, "--out", str(folder), "--no-progress"]) == 2
    assert "config.json" in _last_error_line(capsys)
    assert [p.name for p in folder.iterdir()] == ["config.json"]
    assert (folder / "config.json").read_text() == '{"mine":1}\n'


def test_a_deleted_config_is_offered_back_and_restored(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    original = (run / "config.json").read_text()
    (run / "config.json").unlink()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert f"--resume {run} --restore-config" in _last_error_line(capsys)
    assert main(["eval", str(run)]) == 2
    assert "--restore-config" in _last_error_line(capsys)
    assert main(["train", "--resume", str(run), "--restore-config", "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text()) == json.loads(original)
    assert (run / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()


def _untimed(rows):
    """Rows without the timing columns, nan as None (so that == compares them exactly)."""
    return [{k: None if v != v else v for k, v in r.items() if k not in TIMING_COLUMNS}
            for r in rows]


def test_a_damaged_last_checkpoint_names_the_command_for_the_previous_one(run_dir, tmp_path,
                                                                          capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    last = run / "checkpoints" / "update_000002.json"
    last.write_text(last.read_text().replace('"update": 2', '"update": 1'))
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    err = _last_error_line(capsys)
    assert "update_000002.json is corrupt or was edited" in err
    assert f"ppo-ref train --resume {run} --from-checkpoint 1" in err
    assert main(["train", "--resume", str(run), "--from-checkpoint", "1", "--no-progress"]) == 0
    assert _untimed(read_metrics(run)) == _untimed(read_metrics(run_dir))
    assert load_checkpoint(run / "checkpoints" / "update_000002")["update"] == 2
    assert main(["train", *TINY, "--from-checkpoint", "1", "--out", str(tmp_path / "x")]) == 2
    assert "go with --resume" in _last_error_line(capsys)


def test_a_binary_metrics_file_is_exit_2_naming_it(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "metrics.csv").write_bytes(b"\xff\xfe\x00binary\x80\x81\n" * 5)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert "metrics.csv is damaged: it is not a text (UTF-8) CSV file" in _last_error_line(capsys)


# ----- sizes and seeds refused up front ----------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "seed must be an integer >= 0, got -1"),
    (["--episodes", str(10**13)], "evaluating 10,000,000,000,000 episodes side by side needs at "
                                  "least"),
])
def test_eval_refuses_a_negative_seed_or_more_episodes_than_memory_holds(run_dir, capsys, args,
                                                                         message):
    assert main(["eval", str(run_dir), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_train_refuses_more_envs_than_memory_holds_at_once(tmp_path, capsys):
    import time
    start = time.monotonic()
    assert main(["train", "--num-envs", str(10**12), "--total-steps", str(10**14), "--out",
                 str(tmp_path / "r"), "--no-progress"]) == 2
    assert "lower num_envs, num_steps or total_steps" in _last_error_line(capsys)
    assert time.monotonic() - start < 10 and not (tmp_path / "r").exists()


def test_ctrl_c_of_a_real_run_saves_a_checkpoint_exits_130_and_resumes_exactly(tmp_path):
    """SIGINT to a `ppo-ref train` process after its first rows: it finishes the update in
    progress, checkpoints it (checkpoint_every is larger than the run), exits 130; the resumed
    run's metrics are the uninterrupted run's."""
    import signal
    import time
    args = ["--total-steps", str(200 * 16), "--num-envs", "2", "--num-steps", "8",
            "--update-epochs", "1", "--hidden", "4", "--eval-episodes", "1",
            "--checkpoint-every", "1000", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "ppo_ref", "train", *args, "--out", str(run)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while not ((run / "metrics.csv").exists() and
               len((run / "metrics.csv").read_text().splitlines()) > 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    rows = read_metrics(run)
    assert f"stopped after update {len(rows)}" in err and "Traceback" not in err
    assert len(rows) < 200 and (run / "checkpoints" / f"update_{len(rows):06d}.json").exists()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert main(["train", *args, "--out", str(tmp_path / "full")]) == 0
    assert _untimed(read_metrics(run)) == _untimed(read_metrics(tmp_path / "full"))
