"""Golden vectors: ppo_ref's mathematics as language-neutral JSON test cases.

    python -m ppo_ref.spec.golden --out DIR       # writes DIR/<function>.json, one file per function

A copy ships inside the package (ppo_ref/spec/golden/*.json; `load(name)` reads it).
Port PPO to any language, feed it each case's inputs and compare with the expected
outputs. Everything is generated deterministically from fixed seeds and evaluated
by ppo_ref's own functions in float64; gradients come from ppo_ref.autodiff. The
cases themselves are defined in cases.py; this module writes, reads and compares
them.

JSON schema (schema "ppo_ref.golden/1"), one document per file:

    {
      "schema":        "ppo_ref.golden/1",
      "function":      "clipped_surrogate",               the file's name without .json
      "reference":     "ppo_ref.losses.clipped_surrogate", what computed the expected values
      "signature":     "clipped_surrogate(logp_new, logp_old, advantages, clip_eps) -> loss",
      "equation":      "loss = -mean(min(r A, clip(r, 1-eps, 1+eps) A)), r = exp(logp_new - logp_old)",
      "outputs":       ["loss"],                          names of the expected outputs
      "differentiable": ["logp_new"],                     inputs that gradients are given for
      "array_lists":   [],                                fields holding a LIST of arrays
      "cases": [
        {
          "name":        "ratios_near_upper_clip",         unique within the file
          "description": "one sentence: what the case exercises",
          "inputs":      {"logp_new": [...], "clip_eps": 0.2, ...},
          "expected":    {"loss": 0.123...},
          "gradients":   {"loss": {"logp_new": [...]}},    d sum(output) / d input
          "rtol": 1e-09, "atol": 1e-12
        }, ...
      ]
    }

Values: an array is a nested JSON list in C (row-major) order, its shape given by the
nesting; a float array holds JSON numbers written with Python's repr (the shortest
decimal that reads back as the identical float64), an integer array (actions) JSON
integers, a boolean array (done flags) true/false. A scalar is a bare number, a
string (approx_kl's "estimator") or null (an omitted optional argument). A field
listed in "array_lists" (clip_grad_norm's grads) is a list of arrays of different
shapes. No NaN or infinity appears anywhere.

gradients[out][x] is the gradient of sum(out) with respect to input x, of x's shape
(for a scalar loss simply d loss / d x). PPO differentiates only some inputs (logp_new,
not logp_old or the advantages), and only those are listed in "differentiable". Every
output has gradients, except in ppo_loss: only its loss does (its other outputs are the
diagnostics it logs as plain floats).

Agreement: an output y matches its expected value e when, element by element,
|y - e| <= atol + rtol * |e| (numpy.isclose), with the case's own rtol and atol. They
are set for float64 implementations; a float32 one needs tolerances scaled to its
precision (ppo_ref.spec.verify does that, and knows each quantity's scale).

Most float inputs lie on a grid of multiples of 2^-10 (or 2^-20 where a case needs
finer spacing), so they are exact in float32 as well: casting them loses nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .. import __version__
from .cases import FUNCTIONS, adam_steps, clip_grad_norm_arrays  # noqa: F401 (re-exported)

__all__ = ["SCHEMA", "FUNCTIONS", "generate", "write", "load", "decode_case", "compare", "main",
           "json_ready", "adam_steps", "clip_grad_norm_arrays"]

SCHEMA = "ppo_ref.golden/1"
GOLDEN_DIR = Path(__file__).with_name("golden")


# ----- JSON encoding ----------------------------------------------------------------------

def json_ready(x):
    """x with every numpy value made a Python one, so the json module can write it: an array
    becomes nested lists, a numpy scalar a Python scalar, a tuple a list, a dict key a string;
    anything else is returned as it is. (The golden files, the kit's reports and the demos'
    JSON are all written through this.)"""
    if isinstance(x, dict):
        return {str(k): json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_ready(v) for v in x]
    if isinstance(x, (np.ndarray, np.generic)):
        return x.tolist()
    return x


def _document(name: str) -> dict:
    reference, signature, equation, outputs, diff, lists, make_cases, seed = FUNCTIONS[name]
    cases = make_cases(np.random.default_rng(seed))
    return {"schema": SCHEMA, "function": name, "reference": reference, "signature": signature,
            "equation": equation, "outputs": outputs, "differentiable": diff, "array_lists": lists,
            "generator": f"ppo_ref {__version__} (python -m ppo_ref.spec.golden)",
            "cases": [json_ready(c) for c in cases]}


def generate(names=None) -> dict:
    """{function name: JSON-ready document}, computed afresh (nothing is read from disk)."""
    return {n: _document(n) for n in (names or FUNCTIONS)}


def dumps(document: dict) -> str:
    """JSON text: indented structure, each array on one line, floats in full (repr) precision."""
    arrays = []

    def stash(x):  # replace every innermost-to-outer numeric list by a placeholder
        if isinstance(x, dict):
            return {k: stash(v) for k, v in x.items()}
        if isinstance(x, list) and x and not any(isinstance(v, (dict, str)) for v in x):
            arrays.append(json.dumps(x, allow_nan=False))
            return f"@@{len(arrays) - 1}@@"
        if isinstance(x, list):
            return [stash(v) for v in x]
        return x
    text = json.dumps(stash(document), indent=1, allow_nan=False)
    for i, a in enumerate(arrays):
        text = text.replace(f'"@@{i}@@"', a, 1)
    return text + "\n"


def write(out_dir, names=None) -> list:
    """Write <out_dir>/<function>.json for every function; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, doc in generate(names).items():
        path = out / f"{name}.json"
        path.write_text(dumps(doc))
        paths.append(path)
    return paths


def decode_case(case: dict, array_lists=()) -> dict:
    """A case with every list turned back into a numpy array (bool, int64 or float64 by
    its JSON values); fields named in array_lists become lists of arrays."""
    def value(key, x):
        if key in array_lists:
            return [np.asarray(v) for v in x]
        return np.asarray(x) if isinstance(x, list) else x

    def section(d):
        return {k: value(k, v) for k, v in d.items()}
    out = dict(case)
    out["inputs"] = section(case["inputs"])
    out["expected"] = section(case["expected"])
    out["gradients"] = {o: section(g) for o, g in case.get("gradients", {}).items()}
    return out


def _close(a, b, rtol, atol) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(_close(x, y, rtol, atol) for x, y in zip(a, b)))
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.all(np.abs(b - a) <= atol + rtol * np.abs(a)))


def _same(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.asarray(a).dtype == np.asarray(b).dtype and np.array_equal(a, b)
    return a == b


def compare(reference: dict, candidate: dict) -> list:
    """Where two decoded golden documents of one function disagree (e.g. the shipped copy
    and a fresh generation): metadata, case names, inputs (exactly) and expected values and
    gradients (within the reference case's rtol and atol). Returns messages; [] = agreement."""
    name = reference.get("function")
    problems = [f"{name}: {key} differs: {reference.get(key)!r} vs {candidate.get(key)!r}"
                for key in ("schema", "function", "reference", "signature", "equation", "outputs",
                            "differentiable", "array_lists") if reference.get(key) != candidate.get(key)]
    ref_names = [c["name"] for c in reference["cases"]]
    cand_names = [c["name"] for c in candidate["cases"]]
    if ref_names != cand_names:
        return problems + [f"{name}: case names differ: {ref_names} vs {cand_names}"]
    for ref, cand in zip(reference["cases"], candidate["cases"]):
        where = f"{name}/{ref['name']}"
        if ref["description"] != cand["description"]:
            problems.append(f"{where}: description differs")
        for key in sorted(set(ref["inputs"]) | set(cand["inputs"])):
            if not _same(ref["inputs"].get(key), cand["inputs"].get(key)):
                problems.append(f"{where}: input {key} differs")
        rtol, atol = ref["rtol"], ref["atol"]
        for key in sorted(set(ref["expected"]) | set(cand["expected"])):
            a, b = ref["expected"].get(key), cand["expected"].get(key)
            if a is None or b is None or not _close(a, b, rtol, atol):
                problems.append(f"{where}: expected {key} differs beyond rtol {rtol:g}, atol {atol:g}")
        for out in sorted(set(ref["gradients"]) | set(cand["gradients"])):
            ga, gb = ref["gradients"].get(out, {}), cand["gradients"].get(out, {})
            for key in sorted(set(ga) | set(gb)):
                if key not in ga or key not in gb or not _close(ga[key], gb[key], rtol, atol):
                    problems.append(f"{where}: gradient of {out} wrt {key} differs beyond "
                                    f"rtol {rtol:g}, atol {atol:g}")
    return problems


def load(name: str, directory=None, decode: bool = True) -> dict:
    """The golden document for `name` (from the shipped copy unless `directory` is given);
    with decode=True its cases hold numpy arrays (see decode_case)."""
    path = Path(directory or GOLDEN_DIR) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no golden file {path}; known functions: {sorted(FUNCTIONS)}")
    doc = json.loads(path.read_text())
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {doc.get('schema')!r}, expected {SCHEMA!r}")
    if decode:
        doc["cases"] = [decode_case(c, doc.get("array_lists", ())) for c in doc["cases"]]
    return doc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ppo_ref.spec.golden",
                                     description="Write ppo_ref's golden vectors as JSON, "
                                                 "one file per function.")
    parser.add_argument("--out", required=True, help="directory to write <function>.json into")
    parser.add_argument("--only", nargs="*", choices=sorted(FUNCTIONS), help="just these functions")
    args = parser.parse_args(argv)
    for path in write(args.out, args.only):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
