"""ppo_ref.train.checkpoint: exact round trip, atomic writes, clear errors on corrupt or foreign files."""
import hashlib
import json
import os
import stat

import numpy as np
import pytest

from ppo_ref.train import checkpoint
from ppo_ref.train.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint


def _state(seed=0):
    rng = np.random.default_rng(seed)
    rng.random(3)  # move the generator so its state is not the initial one
    return {"env_id": "CartPole-v1", "obs_shape": [4], "update": 7, "beta": 0.1 + 0.2,
            "target": None, "flag": True,
            "agent": {"pi.layers.0.weight": rng.standard_normal((4, 3)),
                      "log_std": np.array([-0.5], dtype=np.float32)},
            "steps": np.arange(5, dtype=np.int64), "rng": rng.bit_generator.state,
            "blob": b"\x00\x01pickled env\xff", "episodes": [[256, 17.0, 17]]}


def test_round_trip_is_exact(tmp_path):
    state = _state()
    save_checkpoint(tmp_path / "c", state)
    back = load_checkpoint(tmp_path / "c")
    assert back["beta"] == 0.1 + 0.2                       # float bits survive JSON
    assert back["rng"] == state["rng"]                      # 128-bit ints survive JSON
    assert back["blob"] == state["blob"] and back["target"] is None and back["flag"] is True
    np.testing.assert_array_equal(back["agent"]["pi.layers.0.weight"],
                                  state["agent"]["pi.layers.0.weight"])
    assert back["agent"]["log_std"].dtype == np.float32
    assert back["steps"].dtype == np.int64 and back["episodes"] == [[256, 17.0, 17]]
    # a Generator restored from the saved state continues the same stream
    g1, g2 = np.random.default_rng(), np.random.default_rng()
    g1.bit_generator.state, g2.bit_generator.state = state["rng"], back["rng"]
    assert g1.random() == g2.random()


def test_load_accepts_the_npz_or_json_name(tmp_path):
    save_checkpoint(tmp_path / "c", _state())
    assert load_checkpoint(tmp_path / "c.npz")["update"] == 7
    assert load_checkpoint(tmp_path / "c.json")["update"] == 7


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    checkpoint.atomic_write_bytes(target, b"old contents")

    def crash(fd):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="simulated"):
        checkpoint.atomic_write_bytes(target, b"new contents that never land")
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_a_file_system_that_cannot_fsync_a_directory_still_gets_the_file(tmp_path, monkeypatch):
    import stat
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        calls.append(is_dir)
        if is_dir:
            raise OSError(22, "Invalid argument (simulated: no directory fsync)")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    checkpoint.atomic_write_bytes(tmp_path / "f.bin", b"contents")
    assert (tmp_path / "f.bin").read_bytes() == b"contents" and calls == [False, True]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_crash_between_npz_and_json_keeps_the_previous_checkpoint_latest(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "update_000001", _state())
    real = checkpoint.atomic_write_bytes

    def crash_on_json(path, data):
        if str(path).endswith(".json"):
            raise KeyboardInterrupt("killed between the two files (simulated)")
        real(path, data)
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", crash_on_json)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "update_000002", _state(1))
    monkeypatch.undo()
    assert (tmp_path / "update_000002.npz").exists()      # the orphan arrays file ...
    assert latest_checkpoint(tmp_path) == tmp_path / "update_000001"   # ... does not count
    assert list_checkpoints(tmp_path) == [tmp_path / "update_000001"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["update"] == 7


def test_corrupt_npz_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "c", _state())
    npz = tmp_path / "c.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt.*sha256"):
        load_checkpoint(tmp_path / "c")


def test_truncated_json_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "c", _state())
    js = tmp_path / "c.json"
    js.write_text(js.read_text()[:40])
    with pytest.raises(ValueError, match="c.json is corrupt"):
        load_checkpoint(tmp_path / "c")


def test_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing")
    save_checkpoint(tmp_path / "c", _state())
    (tmp_path / "c.npz").unlink()
    with pytest.raises(ValueError, match="c.npz is missing"):
        load_checkpoint(tmp_path / "c")


def _rehash(meta):
    """meta with its "sha256" recomputed as the format defines it: the sha256 of the other
    entries written with sorted keys and no spaces (a writer that made a consistent file)."""
    body = {k: v for k, v in meta.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return {**body, "sha256": hashlib.sha256(text.encode()).hexdigest()}


def test_array_missing_from_the_npz_is_named(tmp_path):
    save_checkpoint(tmp_path / "c", _state())
    meta = json.loads((tmp_path / "c.json").read_text())
    meta["state"]["extra"] = {"__array__": "extra"}        # the JSON names an array ...
    (tmp_path / "c.json").write_text(json.dumps(_rehash(meta)))   # ... the npz does not hold
    with pytest.raises(ValueError, match="'extra' is missing"):
        load_checkpoint(tmp_path / "c")


def test_mismatch_with_expected_header_names_the_entry(tmp_path):
    save_checkpoint(tmp_path / "c", _state())
    assert load_checkpoint(tmp_path / "c", expect={"env_id": "CartPole-v1", "obs_shape": (4,)})
    with pytest.raises(ValueError, match="env_id is 'CartPole-v1', expected 'Acrobot-v1'"):
        load_checkpoint(tmp_path / "c", expect={"env_id": "Acrobot-v1"})
    with pytest.raises(ValueError, match="obs_shape"):
        load_checkpoint(tmp_path / "c", expect={"obs_shape": [6]})
    with pytest.raises(ValueError, match="no entry 'hidden'"):
        load_checkpoint(tmp_path / "c", expect={"hidden": [64, 64]})


def test_unstorable_leaf_is_a_type_error_naming_its_path(tmp_path):
    with pytest.raises(TypeError, match="agent/fn"):
        save_checkpoint(tmp_path / "c", {"agent": {"fn": object()}})


def test_an_edited_json_value_is_refused_naming_the_file(tmp_path):
    save_checkpoint(tmp_path / "c", _state())
    js = tmp_path / "c.json"
    js.write_text(js.read_text().replace('"update": 7', '"update": 8'))
    with pytest.raises(ValueError, match="c.json is corrupt or was edited"):
        load_checkpoint(tmp_path / "c")


def test_a_format_1_checkpoint_without_its_json_hash_still_loads(tmp_path):
    save_checkpoint(tmp_path / "c", _state())
    meta = json.loads((tmp_path / "c.json").read_text())
    del meta["sha256"]
    (tmp_path / "c.json").write_text(json.dumps({**meta, "format_version": 1}))
    assert load_checkpoint(tmp_path / "c")["update"] == 7


def test_only_update_n_files_are_checkpoints_and_they_sort_by_number(tmp_path):
    for k in (9, 10, 1000000):
        save_checkpoint(tmp_path / f"update_{k:06d}", _state())
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "update_x.json").write_text("{}")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["update_000009", "update_000010",
                                                            "update_1000000"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_open_gives_under_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        checkpoint.atomic_write_bytes(tmp_path / "f.bin", b"x")
        with open(tmp_path / "plain.bin", "wb") as f:          # what open() gives, for reference
            f.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "plain.bin").stat().st_mode) == mode


def test_a_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    checkpoint.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_remove_orphans_removes_temporaries_and_arrays_without_json_only(tmp_path):
    save_checkpoint(tmp_path / "update_000001", _state())
    for name in (".update_000002.npz.0a1b2c3d.tmp", "update_000002.npz"):
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / "notes.npz").write_bytes(b"mine")
    checkpoint.remove_orphans(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.npz", "update_000001.json",
                                                          "update_000001.npz"]
