"""Checkpoints: a training state saved as one .npz of arrays and one .json of everything else.

A state is a nested dict whose leaves are numpy arrays, bytes, or JSON values (numbers, strings,
bools, None, lists). `save_checkpoint(path, state)` splits it in two:

    NAME.npz   every array (and every bytes leaf, as a uint8 array), under its '/'-joined key path;
    NAME.json  the same tree with each array replaced by {"__array__": key} (or {"__bytes__": key}),
               plus the list of keys and the sha256 of the .npz.

Both files are written atomically: the bytes go to a temporary file in the same directory, are
flushed and fsync'ed, and `os.replace` renames it over the target (a rename within one file system
is atomic on POSIX and Windows), so a crash leaves either the old file or the new one, never half
of one. The .json is written second and carries the .npz's hash, so it acts as the commit record:
a checkpoint counts only when its .json exists, and `load_checkpoint` refuses an .npz whose bytes
do not match. Floats survive the JSON round trip exactly (Python writes the shortest repr that
reads back to the same double), and so do the arbitrary-size integers of a
`numpy.random.Generator`'s `bit_generator.state`. Tuples come back as lists.

Bytes leaves hold pickled objects (an environment's state); unpickling runs code, so load only
checkpoints you wrote yourself.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "list_checkpoints",
           "atomic_write_bytes", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def atomic_write_bytes(path, data: bytes) -> None:
    """Write `data` to `path` atomically: temp file in the same directory, fsync, os.replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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
    atomic_write_bytes(json_path, json.dumps(meta, indent=1).encode())
    return json_path


def load_checkpoint(path, expect: dict | None = None) -> dict:
    """The state saved by `save_checkpoint`. ValueError if a file is missing, corrupt or altered,
    or if a top-level entry differs from `expect` (e.g. {"env_id": "CartPole-v1", "obs_shape": [4]}:
    a checkpoint of another environment or network)."""
    npz_path, json_path = _paths(path)
    if not json_path.exists():
        raise ValueError(f"checkpoint {json_path} does not exist (an interrupted save leaves no "
                         f".json: use an earlier checkpoint)")
    try:
        meta = json.loads(json_path.read_text())
        tree, want_hash, keys = meta["state"], meta["npz_sha256"], meta["keys"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ValueError(f"checkpoint {json_path} is corrupt: {e}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint {json_path} has format_version "
                         f"{meta.get('format_version')!r}, this code reads {FORMAT_VERSION}")
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


def list_checkpoints(directory) -> list:
    """Every complete checkpoint (its .json exists) in `directory`, oldest name first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p.with_suffix("") for p in directory.glob("*.json") if not p.name.startswith("."))


def latest_checkpoint(directory):
    """The base path of the last complete checkpoint in `directory` (names sort by age), or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None
