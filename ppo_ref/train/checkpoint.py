"""Checkpoints: a training state saved as one .npz of arrays and one .json of everything else.

A state is a nested dict whose leaves are numpy arrays, bytes, or JSON values (numbers, strings,
bools, None, lists). `save_checkpoint(path, state)` splits it in two:

    NAME.npz   every array (and every bytes leaf, as a uint8 array), under its '/'-joined key path;
    NAME.json  the same tree with each array replaced by {"__array__": key} (or {"__bytes__": key}),
               plus the list of keys, the sha256 of the .npz, and the sha256 of the .json's
               own entries (written canonically), so that an edited or damaged value in
               either file is refused with the file's name rather than trusted.

Both files are written atomically: the bytes go to a temporary file in the same directory, are
flushed and fsync'ed, and `os.replace` renames it over the target (a rename within one file system
is atomic on POSIX and Windows), so a crash leaves either the old file or the new one, never half
of one. The .json is written second and carries the .npz's hash, so it acts as the commit record:
a checkpoint counts only when its .json exists, and `load_checkpoint` refuses an .npz whose bytes
do not match. Floats survive the JSON round trip exactly (Python writes the shortest repr that
reads back to the same double), and so do the arbitrary-size integers of a
`numpy.random.Generator`'s `bit_generator.state`. Tuples come back as lists.

A run folder's checkpoints are named update_NNNNNN after the update they were saved after
(`checkpoint_name`); other files in that directory are not checkpoints.

Bytes leaves hold pickled objects (an environment's state); unpickling runs code, so load only
checkpoints you wrote yourself.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
from pathlib import Path

import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "atomic_write_bytes", "is_temp_file",
           "remove_temp_files", "checkpoint_name", "checkpoint_update", "is_checkpoint_file", "list_checkpoints",
           "latest_checkpoint", "remove_checkpoint", "remove_orphans", "FORMAT_VERSION"]

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write `data` to `path` atomically: temp file in the same directory, fsync, os.replace.

    The file gets the mode a plain open(path, "wb") would give it: that of the file it replaces,
    or for a new file 0o666 less the umask (tempfile.mkstemp would make every file 0o600)."""
    path = Path(path)
    tmp, fd = _new_temp_file(path)
    try:
        if path.exists():
            os.chmod(fd, stat.S_IMODE(os.stat(path).st_mode))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        try:
            dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:   # a directory that cannot be opened for reading: the rename stands
            return
        try:
            os.fsync(dfd)
        except OSError:   # some file systems (network, FUSE) cannot fsync a directory: the
            pass          # file is complete and renamed; only the rename's durability is unproven
        finally:
            os.close(dfd)


def _new_temp_file(path: Path):
    """(name, fd) of a new file .NAME.RANDOM.tmp beside `path`, created by os.open with mode
    0o666, which the kernel reduces by the umask, as it does for open()."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:   # 1 in 2**32: draw another name
            continue


_TEMP = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")   # .NAME.RANDOM.tmp (and tempfile.mkstemp's)


def is_temp_file(path) -> bool:
    """Whether `path` is named as atomic_write_bytes names its temporary files."""
    return bool(_TEMP.fullmatch(Path(path).name))


def remove_temp_files(directory) -> list:
    """Remove the temporary files (.NAME.RANDOM.tmp) that writes killed before their rename left
    in `directory`; returns their paths. Only for a directory no other writer is using."""
    directory = Path(directory)
    found = [p for p in directory.iterdir() if is_temp_file(p) and p.is_file()] \
        if directory.is_dir() else []
    for p in found:
        p.unlink()
    return found


def _split_tree(node, prefix: str, arrays: dict):
    """The JSON skeleton of `node`; its arrays and bytes are moved into `arrays`."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if not isinstance(k, str) or "/" in k:
                raise ValueError(f"checkpoint keys must be strings without '/', got {k!r} "
                                 f"under {prefix or 'the root'!r}")
            out[k] = _split_tree(v, f"{prefix}/{k}" if prefix else k, arrays)
        return out
    if isinstance(node, (list, tuple)):
        return [_split_tree(v, f"{prefix}/{i}", arrays) for i, v in enumerate(node)]
    if isinstance(node, np.ndarray):
        arrays[prefix] = node
        return {"__array__": prefix}
    if isinstance(node, (bytes, bytearray)):
        arrays[prefix] = np.frombuffer(bytes(node), dtype=np.uint8)
        return {"__bytes__": prefix}
    if isinstance(node, np.generic):  # numpy scalars -> Python scalars
        return node.item()
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    raise TypeError(f"checkpoint: cannot store {type(node).__name__} at {prefix!r}")


def _join_tree(node, arrays, path: Path):
    if isinstance(node, dict):
        for marker in ("__array__", "__bytes__"):
            if marker in node:
                key = node[marker]
                if key not in arrays:
                    raise ValueError(f"checkpoint {path}: array {key!r} is missing from the .npz")
                return arrays[key] if marker == "__array__" else arrays[key].tobytes()
        return {k: _join_tree(v, arrays, path) for k, v in node.items()}
    if isinstance(node, list):
        return [_join_tree(v, arrays, path) for v in node]
    return node


def _paths(path):
    """(base.npz, base.json) for a checkpoint named by either file or by its base name."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    return base.with_name(base.name + ".npz"), base.with_name(base.name + ".json")


def save_checkpoint(path, state: dict) -> Path:
    """Save the nested dict `state` as PATH.npz + PATH.json (atomically). Returns the .json path."""
    npz_path, json_path = _paths(path)
    arrays: dict = {}
    tree = _split_tree(state, "", arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    blob = buf.getvalue()
    atomic_write_bytes(npz_path, blob)
    meta = {"format_version": FORMAT_VERSION, "npz": npz_path.name,
            "npz_sha256": hashlib.sha256(blob).hexdigest(), "keys": sorted(arrays), "state": tree}
    meta["sha256"] = _digest(meta)
    atomic_write_bytes(json_path, json.dumps(meta, indent=1).encode())
    return json_path


def _digest(meta: dict) -> str:
    """sha256 of the .json's entries other than "sha256" itself, written canonically (sorted keys,
    no spaces): what was parsed re-serialises to the same bytes, as floats print as their
    shortest repr, so any edited or damaged value changes it."""
    body = {k: v for k, v in meta.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()) \
        .hexdigest()


def load_checkpoint(path, expect: dict | None = None) -> dict:
    """The state saved by `save_checkpoint`. ValueError naming the file if a file is missing,
    corrupt or altered (either file's sha256 does not match), or if a top-level entry differs
    from `expect` (e.g. {"env_id": "CartPole-v1", "obs_shape": [4]}: a checkpoint of another
    environment or network)."""
    npz_path, json_path = _paths(path)
    if not json_path.exists():
        raise ValueError(f"checkpoint {json_path} does not exist (an interrupted save leaves no "
                         f".json: use an earlier checkpoint)")
    try:
        meta = json.loads(json_path.read_bytes())
        tree, want_hash, keys = meta["state"], meta["npz_sha256"], meta["keys"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ValueError(f"checkpoint {json_path} is corrupt: {e}") from None
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"checkpoint {json_path} has format_version {version!r}, this code "
                         f"reads {READABLE_VERSIONS}")
    # Format 1 hashed only the .npz; from format 2 on the .json carries its own hash too.
    if version >= 2 and meta.get("sha256") != _digest(meta):
        raise ValueError(f"checkpoint {json_path} is corrupt or was edited: its sha256 does not "
                         f"match its contents")
    if not npz_path.exists():
        raise ValueError(f"checkpoint {json_path}: its arrays file {npz_path.name} is missing")
    blob = npz_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != want_hash:
        raise ValueError(f"checkpoint {npz_path} is corrupt: its sha256 does not match the one "
                         f"recorded in {json_path.name}")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # a valid hash of an invalid file: written by something else
        raise ValueError(f"checkpoint {npz_path} is not a readable .npz: {e}") from None
    missing = sorted(set(keys) - set(arrays))
    if missing:
        raise ValueError(f"checkpoint {npz_path} lacks arrays {missing}")
    state = _join_tree(tree, arrays, json_path)
    for key, want in (expect or {}).items():
        if key not in state:
            raise ValueError(f"checkpoint {json_path} has no entry {key!r}")
        got = state[key]
        if _jsonable(got) != _jsonable(want):
            raise ValueError(f"checkpoint {json_path} does not match: {key} is {got!r}, "
                             f"expected {want!r}")
    return state


def _jsonable(x):
    """x as its JSON round trip would read it (tuples -> lists), for comparisons."""
    return json.loads(json.dumps(x))


# ----- a run's checkpoints: checkpoints/update_NNNNNN.{npz,json} ---------------------------------

_NAME = re.compile(r"update_(\d+)\.json")
_FILE = re.compile(r"update_(\d+)\.(json|npz)")


def checkpoint_name(update: int) -> str:
    """The base name of the checkpoint saved after `update` updates: update_000050."""
    return f"update_{update:06d}"


def checkpoint_update(path) -> int:
    """The update a checkpoint's base path (update_000050) was saved after."""
    return int(Path(path).name.rpartition("_")[2])


def is_checkpoint_file(path) -> bool:
    """Whether `path` is named as one of a run's checkpoint files (update_N.json or .npz)."""
    return bool(_FILE.fullmatch(Path(path).name))


def list_checkpoints(directory) -> list:
    """The base paths of every complete checkpoint (its .json exists) in `directory`, oldest
    first; files not named update_N.json (notes.json, ...) are not checkpoints."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p.with_suffix("") for p in directory.iterdir() if _NAME.fullmatch(p.name)]
    return sorted(found, key=checkpoint_update)


def latest_checkpoint(directory):
    """The base path of the last complete checkpoint in `directory`, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def remove_checkpoint(path) -> None:
    """Delete a checkpoint: its .json (the commit record) first, so that a crash in between
    leaves an .npz that counts for nothing (`remove_orphans`), never a .json without arrays."""
    npz_path, json_path = _paths(path)
    json_path.unlink(missing_ok=True)
    npz_path.unlink(missing_ok=True)


def remove_orphans(directory) -> None:
    """Remove what interrupted writes left in `directory`: temporary files, and update_N.npz
    files whose .json was never written. Only for a directory no other writer is using."""
    remove_temp_files(directory)
    directory = Path(directory)
    for npz in directory.glob("update_*.npz") if directory.is_dir() else ():
        if _NAME.fullmatch(npz.stem + ".json") and not npz.with_suffix(".json").exists():
            npz.unlink()
