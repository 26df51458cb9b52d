"""ppo_ref.cli's dispatcher: every error a user can cause is one line on stderr and exit 2, a bug
is one line too (PPO_REF_DEBUG=1 shows its traceback), Ctrl-C advice fits the command, and a
negative number after a flag is a value."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ppo_ref import cli
from ppo_ref.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


def _fails_with(exception):
    def command(argv):
        raise exception
    return command


def _status(argv) -> int:
    """main(argv)'s exit status; plot, verify and verify-update, whose main() also runs on its
    own, exit through SystemExit on a bad flag."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.fixture(autouse=True)
def no_debug(monkeypatch):
    monkeypatch.delenv("PPO_REF_DEBUG", raising=False)


# ----- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("exception, words", [
    (ValueError("lr must be > 0"), "ppo-ref boom: error: lr must be > 0"),
    (KeyError("global_step"), "ppo-ref boom: error: KeyError: 'global_step'"),
    (FileNotFoundError(2, "No such file or directory", "runs/x"), "runs/x"),
    (TypeError("seed must be an int"), "seed must be an int"),
    (EOFError(), "ppo-ref boom: error: EOFError"),
    (ValueError("first line\nsecond line"), "error: first line second line"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "not UTF-8 text"),
])
def test_a_user_error_is_one_line_and_exit_2(monkeypatch, capsys, exception, words):
    monkeypatch.setitem(COMMANDS, "boom", _fails_with(exception))
    assert main(["boom"]) == 2
    line = _one_line_error(capsys)
    assert words in line and "Traceback" not in line


def test_a_gymnasium_error_is_one_line(monkeypatch, capsys):
    import gymnasium
    monkeypatch.setitem(COMMANDS, "boom", _fails_with(
        gymnasium.error.Error("Seed must be greater or equal to zero, actual value: -1")))
    assert main(["boom"]) == 2
    assert _one_line_error(capsys) == ("ppo-ref boom: error: Seed must be greater or equal to "
                                       "zero, actual value: -1")


def test_out_of_memory_says_which_flags_to_lower(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "train", _fails_with(MemoryError()))
    assert main(["train"]) == 2
    line = _one_line_error(capsys)
    assert "out of memory" in line and "--num-envs" in line and "--num-steps" in line
    monkeypatch.setitem(COMMANDS, "eval", _fails_with(MemoryError("Unable to allocate 80 GiB")))
    assert main(["eval"]) == 2
    line = _one_line_error(capsys)
    assert "Unable to allocate 80 GiB" in line and "--episodes" in line


def test_a_bug_is_one_line_saying_how_to_see_its_traceback(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "boom", _fails_with(ZeroDivisionError("division by zero")))
    assert main(["boom"]) == 2
    line = _one_line_error(capsys)
    assert "internal error: ZeroDivisionError: division by zero" in line
    assert "PPO_REF_DEBUG=1" in line


@pytest.mark.parametrize("exception", [ZeroDivisionError("x"), ValueError("y")])
def test_ppo_ref_debug_shows_the_traceback(monkeypatch, exception):
    monkeypatch.setitem(COMMANDS, "boom", _fails_with(exception))
    monkeypatch.setenv("PPO_REF_DEBUG", "1")
    with pytest.raises(type(exception)):
        main(["boom"])


def test_in_a_subprocess_a_bug_shows_no_traceback_unless_debugging(tmp_path):
    code = ("import sys; from ppo_ref import cli\n"
            "def boom(argv): return 1 / 0\n"
            "cli.COMMANDS['boom'] = boom\n"
            "sys.exit(cli.main(['boom']))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PPO_REF_DEBUG", None)
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           timeout=120)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert len(quiet.stderr.strip().splitlines()) == 1
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "PPO_REF_DEBUG": "1"}, timeout=120)
    assert "Traceback" in loud.stderr and "ZeroDivisionError" in loud.stderr


def test_a_sweep_csv_whose_global_step_is_not_a_number_names_file_line_and_column(tmp_path,
                                                                                    capsys):
    bad = tmp_path / "sweep.csv"
    bad.write_text("run,seed,env_id,objective,global_step,episodic_return\n"
                   "clip,0,CartPole-v1,clip,64,10.0\n"
                   "clip,0,CartPole-v1,clip,lots,12.0\n")
    assert _status(["plot", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    line = _one_line_error(capsys)
    assert str(bad) in line and "line 3" in line and "column global_step" in line
    assert "'lots'" in line and not (tmp_path / "x.png").exists()


def test_eval_with_a_negative_seed_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--total-steps", "64", "--num-envs", "1", "--num-steps", "64",
                 "--update-epochs", "1", "--hidden", "8", "--eval-episodes", "1",
                 "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--seed", "-1"]) == 2
    assert "seed" in _one_line_error(capsys).lower()


def test_a_subcommands_bad_flag_is_one_line(tmp_path, capsys):
    for argv in (["verify", "--no-such-flag"], ["verify-update"], ["plot", str(tmp_path)]):
        assert _status(argv) == 2
        line = _one_line_error(capsys)
        assert line.startswith(f"ppo-ref {argv[0]}: error:"), line


# ----- Ctrl-C --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["verify", "verify-update", "plot", "eval"])
def test_ctrl_c_outside_train_gives_no_resume_advice(monkeypatch, capsys, name):
    monkeypatch.setitem(COMMANDS, name, _fails_with(KeyboardInterrupt()))
    assert main([name]) == 130
    err = capsys.readouterr().err
    assert f"ppo-ref {name}: interrupted" in err and "--resume" not in err


def test_ctrl_c_in_verify_while_the_function_runs_stops_it(monkeypatch, capsys):
    from ppo_ref.spec import verify

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(verify, "check", interrupted)
    assert main(["verify", "m:f", "--quantity", "gae"]) == 130
    assert "--resume" not in capsys.readouterr().err


def test_ctrl_c_in_train_names_resume(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "train", _fails_with(KeyboardInterrupt()))
    assert main(["train"]) == 130
    assert "ppo-ref train --resume RUN" in capsys.readouterr().err


# ----- negative numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize("lr", [["--lr", "-1e-3"], ["--lr=-1e-3"], ["--lr", "-.5"],
                                ["--lr", "-2"], ["--lr", "-inf"]])
def test_a_negative_lr_reaches_the_lr_check(tmp_path, capsys, lr):
    assert main(["train", *lr, "--total-steps", "256", "--out", str(tmp_path / "r")]) == 2
    line = _one_line_error(capsys)
    assert "lr must be > 0" in line and "expected one argument" not in line
    assert not (tmp_path / "r").exists()


def test_the_parser_reads_negative_numbers_as_values_and_flags_as_flags():
    p = cli._Parser(prog="t")
    p.add_argument("--x", type=float)
    p.add_argument("--n", type=int, nargs="+")
    assert p.parse_args(["--x", "-1e-3"]).x == -1e-3
    assert p.parse_args(["--x", "-2.5E+2"]).x == -250.0
    assert p.parse_args(["--n", "-1", "-2"]).n == [-1, -2]
    with pytest.raises(cli.CLIError, match="expected one argument"):
        p.parse_args(["--x", "--n", "1"])
    with pytest.raises(cli.CLIError, match="unrecognized arguments: -e"):
        p.parse_args(["-e"])
