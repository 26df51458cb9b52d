"""ppo_ref.train.runs and guards: a run folder has one writer, a new run never overwrites a user's
files or another run, every stopped run resumes to exactly the uninterrupted run (killed before its
first checkpoint, interrupted by Ctrl-C, or with its last checkpoint damaged), files get the
user's umask, old checkpoints are removed, and a lost config.json comes back from a checkpoint."""
import dataclasses
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ppo_ref.train.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, \
    save_checkpoint
from ppo_ref.train.guards import FolderLock
from ppo_ref.train.runs import TIMING_COLUMNS, read_config, read_metrics, restore_config
from ppo_ref.train.trainer import PPOConfig, load_agent, train

ROOT = Path(__file__).resolve().parents[1]
# 6 updates of 64 steps, checkpoints after updates 2, 4 and 6
TINY = PPOConfig(total_steps=6 * 64, num_envs=4, num_steps=16, num_minibatches=2,
                 update_epochs=2, hidden=(16,), eval_episodes=2, checkpoint_every=2)
# the same run with no periodic checkpoint: only the final one, after update 6
LATE = dataclasses.replace(TINY, checkpoint_every=50)


def _rows(run):
    """metrics.csv's rows without the timing columns; nan (beta without a KL objective) as None,
    so that == compares the rows exactly."""
    return [{k: None if v != v else v for k, v in r.items() if k not in TIMING_COLUMNS}
            for r in read_metrics(run)]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The uninterrupted run every resumed run must equal: (folder, TrainResult)."""
    out = tmp_path_factory.mktemp("runs") / "full"
    return out, train(TINY, out_dir=out)


def _assert_same_run(run, result, full):
    """run's metrics (timing aside), final weights and evaluation equal the uninterrupted run's."""
    full_dir, full_result = full
    assert _rows(run) == _rows(full_dir)
    for (k, x), y in zip(full_result.agent.state_dict().items(),
                         result.agent.state_dict().values()):
        np.testing.assert_array_equal(x, y, err_msg=k)
    assert result.eval == full_result.eval


class _Stop(Exception):
    pass


def _stop_at(update):
    def callback(row):
        if row["update"] == update:
            raise _Stop
    return callback


# ----- 1. one writer -----------------------------------------------------------------------------

def test_a_second_writer_is_refused_while_the_lock_is_held_and_admitted_once_released(tmp_path):
    with pytest.raises(_Stop):
        train(TINY, out_dir=tmp_path / "run", callback=_stop_at(3))
    lock = FolderLock(tmp_path / "run")           # another writer (this process, another open)
    with pytest.raises(ValueError, match=rf"run is in use by another run \(process {os.getpid()}"):
        train(TINY, out_dir=tmp_path / "run", resume=True)
    assert len(read_metrics(tmp_path / "run")) == 3            # nothing was cut or written
    lock.release()
    train(TINY, out_dir=tmp_path / "run", resume=True)


_WRITER = """
import json, sys, time
from pathlib import Path
from ppo_ref.train.trainer import PPOConfig, train
def wait_after_update_2(row):
    if row["update"] == 2:
        Path(sys.argv[2] + ".ready").write_text("")
        time.sleep(600)
train(PPOConfig(**json.loads(sys.argv[1])), out_dir=sys.argv[2], callback=wait_after_update_2)
"""


def test_sigkill_before_the_first_checkpoint_leaves_no_lock_and_resumes_exactly(tmp_path, full):
    """A writer in another process is refused at once; SIGKILLed after update 2 of a run whose
    first checkpoint would come after update 6, it leaves no stale lock, and the run resumes
    (from update 0) to exactly the uninterrupted run."""
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, json.dumps(LATE.to_dict()), str(run)],
                            env=env, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not Path(str(run) + ".ready").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        start = time.monotonic()
        with pytest.raises(ValueError, match=rf"in use by another run \(process {proc.pid}"):
            train(LATE, out_dir=run, resume=True)
        assert time.monotonic() - start < 5                     # refused at once, not waiting
        with pytest.raises(ValueError, match="already holds a run"):
            train(LATE, out_dir=run)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(read_metrics(run)) == 2 and latest_checkpoint(run / "checkpoints") is None
    resumed = train(LATE, out_dir=run, resume=True)
    full_dir, full_result = full
    assert _rows(run) == _rows(full_dir)
    for (k, x), y in zip(full_result.agent.state_dict().items(),
                         resumed.agent.state_dict().values()):
        np.testing.assert_array_equal(x, y, err_msg=k)
    assert resumed.eval == full_result.eval


def test_resume_checks_the_update_column_not_only_the_row_count(tmp_path):
    train(TINY, out_dir=tmp_path / "run")
    metrics = tmp_path / "run" / "metrics.csv"
    header, *rows = metrics.read_text().splitlines(keepends=True)
    # what two writers interleaving their rows leave: updates 1, 1, 2, 2, 3, 3
    metrics.write_text(header + "".join(r for r in rows[:3] for _ in range(2)))
    before = metrics.read_bytes()
    with pytest.raises(ValueError, match=r"metrics.csv does not hold the rows of updates 1..6.*"
                                         r"row 2 is update 1"):
        train(TINY, out_dir=tmp_path / "run", resume=True)
    assert metrics.read_bytes() == before


# ----- 2. a new run never overwrites files -------------------------------------------------------

@pytest.mark.parametrize("name, text", [("config.json", '{"mine": 1}\n'), ("notes.txt", "mine"),
                                        ("eval.json", "[]")])
def test_a_new_run_refuses_a_folder_holding_files_and_touches_nothing(tmp_path, name, text):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / name).write_text(text)
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        train(TINY, out_dir=folder)
    assert [p.name for p in folder.iterdir()] == [name]         # no lock file, no checkpoints/
    assert (folder / name).read_text() == text


def test_a_stray_file_in_checkpoints_is_a_foreign_file_for_a_new_run(tmp_path):
    (tmp_path / "p" / "checkpoints").mkdir(parents=True)
    (tmp_path / "p" / "checkpoints" / "notes.json").write_text("{}")
    with pytest.raises(ValueError, match="checkpoints/notes.json"):
        train(TINY, out_dir=tmp_path / "p")


def test_an_empty_folder_takes_a_new_run(tmp_path):
    (tmp_path / "p").mkdir()
    train(TINY, out_dir=tmp_path / "p")
    assert len(read_metrics(tmp_path / "p")) == 6


# ----- 3. every stopped run resumes exactly ------------------------------------------------------

def test_a_crash_before_the_first_checkpoint_resumes_from_update_0_exactly(tmp_path, full):
    with pytest.raises(_Stop):
        train(LATE, out_dir=tmp_path / "run", callback=_stop_at(3))
    assert latest_checkpoint(tmp_path / "run" / "checkpoints") is None
    resumed = train(LATE, out_dir=tmp_path / "run", resume=True)
    _assert_same_run(tmp_path / "run", resumed, full)


def test_a_half_written_row_after_the_checkpoint_is_dropped_on_resume(tmp_path, full):
    with pytest.raises(_Stop):            # killed while appending row 6; checkpoint at 4
        train(TINY, out_dir=tmp_path / "run", callback=_stop_at(5))
    with open(tmp_path / "run" / "metrics.csv", "a") as f:
        f.write("6,384,2")
    resumed = train(TINY, out_dir=tmp_path / "run", resume=True)
    _assert_same_run(tmp_path / "run", resumed, full)


def _ctrl_c_after(update, times=1):
    def callback(row):
        if row["update"] == update:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
    return callback


def test_ctrl_c_finishes_the_update_saves_a_checkpoint_and_resumes_exactly(tmp_path, full):
    # Ctrl-C during update 2's callback: update 3 is the one in progress when it is seen
    with pytest.raises(KeyboardInterrupt, match="stopped after update 3"):
        train(LATE, out_dir=tmp_path / "run", callback=_ctrl_c_after(2))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert latest_checkpoint(tmp_path / "run" / "checkpoints").name == "update_000003"
    assert len(read_metrics(tmp_path / "run")) == 3
    resumed = train(LATE, out_dir=tmp_path / "run", resume=True)
    _assert_same_run(tmp_path / "run", resumed, full)


def test_a_second_ctrl_c_stops_at_once_and_the_run_still_resumes_exactly(tmp_path, full):
    with pytest.raises(KeyboardInterrupt):
        train(LATE, out_dir=tmp_path / "run", callback=_ctrl_c_after(2, times=2))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert latest_checkpoint(tmp_path / "run" / "checkpoints") is None
    resumed = train(LATE, out_dir=tmp_path / "run", resume=True)
    _assert_same_run(tmp_path / "run", resumed, full)


def test_resume_of_a_folder_without_checkpoint_or_config_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(ValueError, match="no checkpoint and no config.json"):
        train(TINY, out_dir=tmp_path / "run", resume=True)
    with pytest.raises(_Stop):
        train(LATE, out_dir=tmp_path / "other", callback=_stop_at(1))
    with pytest.raises(ValueError, match=r"config.json holds another config \(fields \['lr'\]"):
        train(dataclasses.replace(LATE, lr=0.1), out_dir=tmp_path / "other", resume=True)


# ----- 4. integrity of the whole checkpoint ------------------------------------------------------

def _edit(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_an_edited_update_is_refused_naming_the_file_and_the_previous_checkpoint_resumes(
        tmp_path, full):
    train(TINY, out_dir=tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "update_000006.json"
    _edit(last, '"update": 6,', '"update": 4,')
    metrics = (tmp_path / "run" / "metrics.csv").read_bytes()
    with pytest.raises(ValueError, match=r"update_000006.json is corrupt or was edited.*"
                                         r"--from-checkpoint 4"):
        train(TINY, out_dir=tmp_path / "run", resume=True)
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == metrics   # nothing cut
    resumed = train(TINY, out_dir=tmp_path / "run", resume=True, from_checkpoint=4)
    _assert_same_run(tmp_path / "run", resumed, full)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "update_000006")["update"] == 6


def test_one_edited_digit_of_the_stored_generator_state_is_refused(tmp_path):
    train(TINY, out_dir=tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "update_000006.json"
    meta = json.loads(last.read_text())
    state = str(meta["state"]["rng"]["state"]["state"])
    digit = state[5]
    _edit(last, state, state[:5] + str((int(digit) + 1) % 10) + state[6:])
    with pytest.raises(ValueError, match="update_000006.json is corrupt or was edited"):
        train(TINY, out_dir=tmp_path / "run", resume=True)


def test_a_stray_json_in_checkpoints_does_not_block_resume(tmp_path):
    train(TINY, out_dir=tmp_path / "run")
    (tmp_path / "run" / "checkpoints" / "notes.json").write_text('{"mine": 1}')
    train(TINY, out_dir=tmp_path / "run", resume=True)
    assert latest_checkpoint(tmp_path / "run" / "checkpoints").name == "update_000006"
    assert (tmp_path / "run" / "checkpoints" / "notes.json").read_text() == '{"mine": 1}'


def test_an_unknown_from_checkpoint_lists_the_ones_there_are(tmp_path):
    train(TINY, out_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="from_checkpoint .* needs resume=True"):
        train(TINY, out_dir=tmp_path / "other", from_checkpoint=2)
    with pytest.raises(ValueError, match=r"no checkpoint of update 5; .* updates \[2, 4, 6\]"):
        train(TINY, out_dir=tmp_path / "run", resume=True, from_checkpoint=5)


def test_a_malformed_field_in_a_well_hashed_checkpoint_names_the_file(tmp_path):
    train(TINY, out_dir=tmp_path / "run")
    last = latest_checkpoint(tmp_path / "run" / "checkpoints")
    state = load_checkpoint(last)
    save_checkpoint(last, {**state, "update": "six"})
    with pytest.raises(ValueError, match="update_000006 is incomplete or malformed"):
        train(TINY, out_dir=tmp_path / "run", resume=True)


# ----- 5. file modes -----------------------------------------------------------------------------

@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(folder):
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode)
            for p in folder.rglob("*") if p.is_file()}


def test_every_file_gets_the_mode_of_a_plain_open_under_the_umask(tmp_path, umask_022):
    with pytest.raises(_Stop):
        train(TINY, out_dir=tmp_path / "run", callback=_stop_at(5))
    train(TINY, out_dir=tmp_path / "run", resume=True)      # rewrites metrics.csv (cut to 4)
    modes = _modes(tmp_path / "run")
    assert {"config.json", "metrics.csv", "eval.json", ".lock",
            "checkpoints/update_000006.npz", "checkpoints/update_000006.json"} <= set(modes)
    assert set(modes.values()) == {0o644}, modes


# ----- 6. retention and leftovers ----------------------------------------------------------------

@pytest.mark.parametrize("keep, kept", [(2, [5, 6]), (0, [1, 2, 3, 4, 5, 6])])
def test_only_the_newest_keep_checkpoints_remain(tmp_path, keep, kept):
    config = dataclasses.replace(TINY, checkpoint_every=1, keep_checkpoints=keep)
    train(config, out_dir=tmp_path / "run")
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == sorted(f"update_{k:06d}.{ext}" for k in kept for ext in ("json", "npz"))


def test_the_default_keeps_three_checkpoints_the_final_one_included(tmp_path):
    config = dataclasses.replace(TINY, total_steps=5 * 64)       # checkpoints 2, 4 and final 5
    assert config.keep_checkpoints == 3
    train(dataclasses.replace(config, checkpoint_every=1), out_dir=tmp_path / "run")
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == \
        ["update_000003", "update_000004", "update_000005"]


def test_resume_removes_what_killed_writes_left_and_nothing_else(tmp_path):
    with pytest.raises(_Stop):
        train(TINY, out_dir=tmp_path / "run", callback=_stop_at(5))
    run = tmp_path / "run"
    leftovers = [run / ".metrics.csv.1a2b3c4d.tmp",
                 run / "checkpoints" / ".update_000006.npz.5e6f7a8b.tmp",
                 run / "checkpoints" / "update_000006.npz"]          # its .json never written
    for p in leftovers:
        p.write_bytes(b"half")
    (run / "checkpoints" / "notes.json").write_text("{}")
    train(TINY, out_dir=run, resume=True)
    assert not any(p.exists() and p.read_bytes() == b"half" for p in leftovers)
    assert not list(run.rglob("*.tmp")) and (run / "checkpoints" / "notes.json").exists()


def test_a_run_folder_written_before_keep_checkpoints_existed_resumes_and_loads(tmp_path):
    with pytest.raises(_Stop):
        train(TINY, out_dir=tmp_path / "run", callback=_stop_at(5))
    config_json = tmp_path / "run" / "config.json"
    old = {k: v for k, v in json.loads(config_json.read_text()).items() if k != "keep_checkpoints"}
    config_json.write_text(json.dumps(old))
    last = latest_checkpoint(tmp_path / "run" / "checkpoints")
    state = load_checkpoint(last)
    save_checkpoint(last, {**state, "config": old})
    assert PPOConfig.from_dict(read_config(tmp_path / "run")) == TINY
    train(TINY, out_dir=tmp_path / "run", resume=True)
    assert load_agent(tmp_path / "run")[2] == TINY


# ----- 7. a lost config.json ---------------------------------------------------------------------

def test_a_deleted_config_is_named_and_restored_from_a_checkpoint(tmp_path):
    train(TINY, out_dir=tmp_path / "run")
    original = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").unlink()
    with pytest.raises(ValueError, match="no config.json; its checkpoints hold the run's config.*"
                                         "--restore-config"):
        read_config(tmp_path / "run")
    restore_config(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == original
    with pytest.raises(ValueError, match="exists and is readable"):
        restore_config(tmp_path / "run")


def test_a_file_system_without_locks_warns_and_the_run_goes_on(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(f, op):
        raise OSError(errno.ENOLCK, "No locks available (simulated)")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(RuntimeWarning, match=r"cannot lock .*\.lock"):
        train(TINY, out_dir=tmp_path / "run")
    assert len(read_metrics(tmp_path / "run")) == 6
