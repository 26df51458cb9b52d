"""Conformance kit: check your own PPO pieces (PyTorch, JAX, numpy, ...) against ppo_ref.

Shortest path, from a shell or from your own test suite:

    python -m ppo_ref verify mypkg.ppo:compute_gae --quantity gae [--json report.json]

    from ppo_ref.spec.verify import assert_conforms
    def test_my_gae():
        assert_conforms(my_gae, "gae")

Write an adapter with the quantity's signature (`python -m ppo_ref verify --list`, or
the README's table; ppo_ref.spec.quantities has the details). It receives numpy
arrays and returns anything np.asarray understands: numpy arrays, lists, Python
floats, torch CPU tensors (detached for you), JAX arrays. The kit never imports torch
or jax. It runs your function on the golden cases (ppo_ref/spec/golden/*.json) and on
randomized edge cases, and compares with ppo_ref evaluated in float64.

Tolerance. Your function's precision is read from what it returns, the lowest of all
its outputs (`return loss.item(), logp.grad` from float32 torch is float32): float64
must agree to rtol = 1e-10, float32 to 1e-5 (float16 to 1e-2), in units of the
quantity's scale (see quantities.py: the magnitude of the numbers the
computation combines, so honest rounding passes and cancellation does not trip it):

    |got - expected| <= atol + rtol * scale,        atol = 0 unless given

--rtol and --atol override both; the report says which tolerance it used. Near a
clip boundary either side is right (see Quantity.kink_arg in quantities.py).

Diagnosis. When a function fails, the kit runs each known mistake (the reference with
one classic error put in: truncation treated as termination, ddof = 0, a value loss
without its 0.5, eps inside Adam's sqrt, ...) on every case; if your outputs agree
with one of them everywhere, the report names it in one line. If none does, it tries
two, then three, compatible mistakes at once (variants.py: each mistake turns a knob of
the quantity; two that turn different knobs combine), and names every part: a GAE that
ignores truncation AND bootstraps from values[t+1] across the boundary is both.

Conventions. Some differences are a library's deliberate choice, not a bug: SB3's value
loss has no 0.5 (ppo_ref with vf_coef x 2), torchrl's is a Huber loss, numpy's std has
ddof = 0, Spinning Up's approx_kl is k1, Keras adds Adam's eps before the bias correction
(`--list` names them all). A function that follows one still fails (exit 1), but the
report's first line names the convention, whose it is and how to translate it;
`--convention NAME` checks against ppo_ref adjusted to it (exit 0 when it agrees). The
JSON report's "diagnosis" is {"text", "parts"} (each part a mistake or a convention, by
name) and "convention" is the one named, or null.

Isolation and time limit. `ppo-ref verify MODULE:FUNCTION` (and check() given the string
"MODULE:FUNCTION") imports your module and calls your function in a child process
(sandbox.py); this process computes ppo_ref's answers and compares. Your code cannot end the
check early (`sys.exit(0)` or `os._exit(0)`, on import or in the function, is reported as such),
nor change ppo_ref's answers, nor hang it: all the calls of one check share a time limit
(--timeout SECONDS, 60 by default; importing the module gets the same again), and the report
names the case that was running when it ran out. Your module's prints go to stderr.
check() given a function object runs it in this process: a lambda, a closure or a function of
__main__ cannot be re-imported by a child, and your own test suite already trusts its code. The
time limit there is a SIGALRM (the main thread of a Unix process; elsewhere there is none).

Exit status of the CLI: 0 conforms, 1 does not, 2 the function could not be checked
(does not import, is not callable, raises, exits, is killed, times out, returns the wrong
shape, NaN or something non-numeric; the one-line report names the case and what happened).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .._checks import first_index
from .golden import json_ready
from .quantities import QUANTITIES, Case, Quantity
from .sandbox import Died, FunctionProcess, InProcess, Opaque, Raised, TimedOut, Unloadable
from .sandbox import one_line as _one_line
from .variants import (CONVENTIONS, FAMILIES, Part, candidates, convention_reference, describe,
                       single_conventions)

__all__ = ["Report", "Outcome", "check", "assert_conforms", "cases", "load_function", "QUANTITIES",
           "main"]

DEFAULT_RTOL = {"float64": 1e-10, "float32": 1e-5, "float16": 1e-2}
DEFAULT_TIMEOUT = 60.0   # seconds for all the calls of one check
_UNIT_ROUNDOFF = {k: float(np.finfo(k).eps) for k in DEFAULT_RTOL}


class BadFunction(Exception):
    """The user's function could not be checked: raised, wrong shape, NaN, non-numeric."""


def tolerance_problem(rtol, atol) -> str | None:
    """Why a given rtol or atol (None: the default) cannot be used, or None if both can."""
    for key, tol in (("rtol", rtol), ("atol", atol)):
        if tol is not None and not (np.isfinite(tol) and tol >= 0):
            return f"{key} must be a finite number >= 0, got {tol}"
    return None


class Outcome:
    """What every conformance report (Report here, update.UpdateReport) shares: its status is
    "pass", "fail" or "error", which its command exits with as 0, 1 or 2; it prints as text
    and saves as JSON (a dataclass's fields)."""

    @property
    def exit_code(self) -> int:
        return {"pass": 0, "fail": 1, "error": 2}[self.status]

    def to_dict(self) -> dict:
        return asdict(self)

    def finish(self, json_path, command: str) -> int:
        """The end of a command: print the report, write it to json_path if given, and return
        the exit status (2, after a one-line error, if json_path cannot be written)."""
        print(self)
        if json_path:
            try:
                Path(json_path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")
            except OSError as e:
                print(f"ERROR ppo_ref {command}: cannot write --json {json_path}: {_one_line(e)}")
                return 2
        return self.exit_code


@dataclass
class Report(Outcome):
    """The outcome of one check. status: "pass", "fail" or "error" (exit codes 0, 1, 2).

    worst_abs_error: max |got - expected| over every element of every case (outside the
    accepted interval near a kink); worst_rel_error: the same divided by the output's
    scale. failing_case: the first case that fails: name, description, output, index,
    expected, got, and the inputs (lists) to reproduce it. diagnosis: a known mistake
    the outputs agree with, or None.
    """
    quantity: str
    function: str
    status: str
    n_cases: int = 0
    n_failed: int = 0
    worst_abs_error: float = 0.0
    worst_rel_error: float = 0.0
    worst_case: str | None = None
    failing_case: dict | None = None
    diagnosis: str | None = None
    mistake: str | None = None
    diagnosis_parts: list = field(default_factory=list)
    convention: dict | None = None
    dtype: str | None = None
    rtol: float | None = None
    atol: float | None = None
    tolerance_source: str = ""
    gradient_checked: bool | None = None
    error: str | None = None
    notes: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict:
        """The dataclass's fields, with the diagnosis as {"text", "parts"}: each part a known
        mistake or a library's convention (kind, name, diagnosis)."""
        d = asdict(self)
        d["diagnosis"] = {"text": d["diagnosis"], "parts": d.pop("diagnosis_parts")}
        return d

    def __str__(self) -> str:
        head = f"ppo_ref verify {self.quantity}: {self.function}"
        c = self.convention
        if c and c.get("checked"):
            head += f" (against ppo_ref adjusted to convention {c['name']}: {c['what']}, as {c['whose']})"
        if self.status == "error":   # one line: what could not be checked and why
            return f"ERROR {head}: {self.error}"
        tol = (f"|error| <= {self.atol:g} + {self.rtol:g} * scale ({self.tolerance_source})")
        lines = []
        if c and not c.get("checked"):   # the first thing a user reads: not a bug
            lines.append(f"CONVENTION {c['name']}: {c['what']}, as {c['whose']} (a convention, not "
                         f"a bug); translation: {c['translation']}; check it with --convention "
                         f"{c['name']}")
        lines += [head, f"{self.status.upper()}  {self.n_cases - self.n_failed} of {self.n_cases} "
                       f"cases agree; outputs {self.dtype}; tolerance {tol}",
                 f"worst abs error {self.worst_abs_error:.3g} (in {self.worst_case}), worst rel "
                 f"error (to scale) {self.worst_rel_error:.3g}"]
        if self.gradient_checked is False:
            lines.append("gradient not checked: return (value, gradient) to check it too")
        if self.failing_case:
            f = self.failing_case
            index = f"[{', '.join(map(str, f['index']))}]" if f["index"] else ""
            near = " (near a kink: anything in [{:.9g}, {:.9g}])".format(*f["accepted"]) \
                if f["accepted"][1] - f["accepted"][0] > f["tolerance"] else ""
            lines += [f"first failing case: {f['case']} ({f['description']})",
                      f"  {f['output']}{index}: expected {f['expected']!r}{near}, got {f['got']!r} "
                      f"(|error| {f['abs_error']:.3g} > tolerance {f['tolerance']:.3g})"]
            lines.append(f"diagnosis: {self.diagnosis}" if self.diagnosis else
                         "diagnosis: none of the known mistakes matches; inspect the failing case "
                         "(--json writes its inputs)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# ----- running a function on a case ----------------------------------------------------------

def _to_numpy(x) -> np.ndarray:
    """np.asarray, after .detach() and .numpy() where the object has them (torch tensors)."""
    for method in ("detach", "cpu"):
        if not isinstance(x, np.ndarray) and callable(getattr(x, method, None)):
            x = getattr(x, method)()
    if not isinstance(x, np.ndarray) and callable(getattr(x, "numpy", None)):
        x = x.numpy()
    return np.asarray(x)


def _one_output(x, name: str, expected, where: str, description: str = ""):
    """(float64 array, precision name) of one returned value, or BadFunction."""
    shape = np.shape(expected)
    if isinstance(x, Opaque):    # converted in the function's process: what it could not read
        if x.error:
            raise BadFunction(f"{where}: {name} could not be converted with np.asarray "
                              f"({x.error}); got {x.type_name}")
        raise BadFunction(f"{where}: {name} is not numeric: got {x.shown} (dtype {x.dtype})")
    try:
        arr = _to_numpy(x)
    except Exception as e:  # noqa: BLE001 - whatever the object, report it
        raise BadFunction(f"{where}: {name} could not be converted with np.asarray "
                          f"({_one_line(e)}); got {type(x).__name__}") from None
    if arr.dtype.kind not in "biuf":
        raise BadFunction(f"{where}: {name} is not numeric: got {_show(x)} (dtype {arr.dtype})")
    precision = arr.dtype.name if arr.dtype.kind == "f" else "float64"
    if precision not in DEFAULT_RTOL:
        precision = "float64" if arr.dtype.itemsize >= 8 else "float32"
    if shape == () and arr.size == 1:
        arr = arr.reshape(())
    if arr.shape != shape:
        raise BadFunction(f"{where}: {name} has shape {arr.shape}, expected {shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        i = first_index(~np.isfinite(arr))
        raise BadFunction(f"{where}: {name} is {arr[i]}" + (f" at index {list(i)}" if i else "")
                          + f" where ppo_ref gives {float(np.asarray(expected)[i]):.9g}"
                          + (f" ({description})" if description else ""))
    return arr, precision


def _show(x) -> str:
    text = " ".join(repr(x).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _split_outputs(q: Quantity, raw, where: str) -> list:
    """The returned value as a list of outputs (1 .. len(q.outputs))."""
    n = len(q.outputs)
    if n == 1:
        return [raw]
    if q.optional and not isinstance(raw, (tuple, list)):
        raw = (raw,)
    if not isinstance(raw, (tuple, list)) or not n - q.optional <= len(raw) <= n:
        want = f"a tuple ({', '.join(q.outputs)})"
        if q.optional:
            want += f" or just {q.outputs[0]}"
        raise BadFunction(f"{where}: expected {want}, got {_show(raw)}")
    return list(raw)


def _convert(q: Quantity, raw, expected: list, where: str, description: str = "") -> tuple:
    """([float64 arrays, list outputs flattened], [precisions]) of a function's return value;
    expected: ppo_ref's outputs (their shapes, and the values named when a result is nan/inf)."""
    arrays, precisions = [], []
    for name, value, exp in zip(q.outputs, _split_outputs(q, raw, where), expected):
        if name in q.list_outputs:
            if not isinstance(value, (list, tuple)) or len(value) != len(exp):
                raise BadFunction(f"{where}: {name} should be a list of {len(exp)} arrays, "
                                  f"got {_show(value)}")
            parts = [_one_output(v, f"{name}[{i}]", e, where, description)
                     for i, (v, e) in enumerate(zip(value, exp))]
            arrays.append(np.concatenate([p[0].ravel() for p in parts]))
            precisions.append(max((p[1] for p in parts), key=DEFAULT_RTOL.get))
        else:
            arr, precision = _one_output(value, name, exp, where, description)
            arrays.append(arr)
            precisions.append(precision)
    return arrays, precisions


def _copies(args) -> list:
    """Copies of the arguments (a function that writes into its inputs harms no one)."""
    return [[a.copy() for a in x] if isinstance(x, list) else
            (x.copy() if isinstance(x, np.ndarray) else x) for x in args]


def _call(fn, args):
    return fn(*_copies(args))


def _interval(q: Quantity, fn, args, delta: float, n_outputs: int):
    """(value, lo, hi) of fn's outputs: at args, and their range with the kink argument moved
    by -delta, 0, +delta (and by -+delta * kink_side)."""
    shifts = [0.0] if q.kink_arg is None or delta == 0 else [0.0, -delta, delta]
    if len(shifts) > 1 and q.kink_side is not None:   # every element outwards, or inwards
        side = q.kink_side(args)
        shifts += [-delta * side, delta * side]
    runs = []
    for s in shifts:
        a = list(args)
        if np.any(s):
            a[q.kink_arg] = a[q.kink_arg] + s
        raw = _call(fn, a)
        outs = _split_outputs(q, raw, "reference")[:n_outputs]
        runs.append([np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in o])
                     if name in q.list_outputs else np.asarray(o, dtype=np.float64)
                     for name, o in zip(q.outputs, outs)])
    lo = [np.min([r[k] for r in runs], axis=0) for k in range(n_outputs)]
    hi = [np.max([r[k] for r in runs], axis=0) for k in range(n_outputs)]
    if q.near_kink is not None and delta > 0:   # gradients (outputs 1, ...) may also be cut to 0
        mask = q.near_kink(args, delta)
        for k in range(1, n_outputs):
            lo[k], hi[k] = np.where(mask, np.minimum(lo[k], 0.0), lo[k]), \
                np.where(mask, np.maximum(hi[k], 0.0), hi[k])
    return runs[0], lo, hi


def _distance(got, lo, hi):
    return np.maximum(lo - got, 0.0) + np.maximum(got - hi, 0.0)


# ----- the check ---------------------------------------------------------------------------

def cases(quantity: str, seed: int = 0) -> list:
    """The cases `check` runs for `quantity`: Case(name, description, args)."""
    return _quantity(quantity).make_cases(np.random.default_rng(seed))


def _quantity(name: str) -> Quantity:
    if name not in QUANTITIES:
        raise ValueError(f"unknown quantity {name!r}; choose one of {', '.join(QUANTITIES)}")
    return QUANTITIES[name]


def timeout_problem(timeout) -> str | None:
    """Why a time limit cannot be used (None: no limit), or None if it can."""
    if timeout is not None and not (isinstance(timeout, (int, float)) and math.isfinite(timeout)
                                    and timeout > 0):
        return f"timeout must be a finite number of seconds > 0 (or None), got {timeout!r}"
    return None


def check(fn, quantity: str, *, rtol: float | None = None, atol: float | None = None,
          seed: int = 0, name: str | None = None,
          timeout: float | None = DEFAULT_TIMEOUT, convention: str | None = None) -> Report:
    """Run `fn` (with the quantity's adapter signature) on every case; return a Report.

    fn: a function object, run in this process; or "MODULE:FUNCTION" (or "path/file.py:FUNCTION"),
    imported and run in a child process (see sandbox.py), where it can neither end the check nor
    change ppo_ref's answers. A function object is not sent to a child because a lambda, a
    closure or a function of __main__ cannot be imported there.
    timeout: seconds for all the calls of fn together (None: no limit); past it the report is an
    error naming the case that was running. In this process the limit needs the main thread of
    a Unix process (a SIGALRM); in a child it always holds (the child is killed).
    convention: "NAME" (or "NAME=VALUE", value_clip_range=10) of variants.CONVENTIONS: compare
    with ppo_ref adjusted to that library's convention instead (ValueError if it does not
    apply to the quantity).
    """
    q = _quantity(quantity)
    problem = tolerance_problem(rtol, atol) or timeout_problem(timeout)
    if problem:
        raise ValueError(problem)
    base = {}
    if convention is not None:
        conv, base, adjusted = convention_reference(q.name, convention)
        q = replace(q, reference=adjusted)
    label = name or (fn if isinstance(fn, str) else None) or \
        getattr(fn, "__qualname__", None) or repr(fn)
    report = Report(quantity=q.name, function=label, status="pass")
    if convention is not None:
        report.convention = {**conv.to_dict(), "checked": True, "knobs": base}
    if q.note:
        report.notes.append(q.note)
    if isinstance(fn, str):
        runner = FunctionProcess(fn, timeout)
    elif callable(fn):
        runner = InProcess(fn, timeout)
    else:
        return _error(report, f"{label} is not callable (got {type(fn).__name__})")
    all_cases = cases(q.name, seed)
    report.n_cases = len(all_cases)
    try:
        runs = _run_cases(q, runner, label, all_cases)
    except BadFunction as e:
        return _error(report, str(e))
    if len(q.outputs) > 1 and q.optional:
        report.gradient_checked = all(len(r[1]) == len(q.outputs) for r in runs)
    worst = max((p for r in runs for p in r[2]), key=DEFAULT_RTOL.get)  # the lowest precision
    # One precision for the whole function: `return loss.item(), logp.grad` computes the loss in
    # float32 too, although the Python float it hands back is a float64.
    runs = [(c, g, [worst] * len(p), s) for c, g, p, s in runs]
    report.dtype = worst
    report.rtol = DEFAULT_RTOL[worst] if rtol is None else float(rtol)
    report.atol = 0.0 if atol is None else float(atol)
    report.tolerance_source = "given" if rtol is not None else \
        f"{worst} default" if atol is None else f"rtol {worst} default, atol given"

    failures = _compare_all(q, q.reference, runs, rtol, atol, report)
    report.n_failed = len(failures)
    if failures:
        report.status = "fail"
        report.failing_case = failures[0]
        found = _diagnose(q, runs, rtol, atol, base, failures[0]["case"])
        report.mistake, report.diagnosis = found["mistake"], found["text"]
        report.diagnosis_parts = [p.to_dict() for p in found["parts"]]
        if found["convention"] and report.convention is None:
            report.convention = {**found["convention"].to_dict(), "checked": False}
    return report


def _run_cases(q: Quantity, runner, label: str, all_cases: list) -> list:
    """fn's outputs on every case, as (case, got arrays, precisions, scales); BadFunction says
    why fn could not be checked: it could not be loaded, raised, exited, was killed, timed out,
    or returned something that is not the quantity's outputs."""
    module = label.partition(":")[0]
    try:
        with runner as call:
            runs = []
            for case in all_cases:
                where = f"case {case.name}"
                expected = list(_call(q.reference, case.args)) if len(q.outputs) > 1 \
                    else [_call(q.reference, case.args)]
                try:
                    raw = call(_copies(case.args))
                except Raised as e:
                    hint = f" (the adapter signature is {q.signature})" if e.is_type_error else ""
                    raise BadFunction(f"{where}: {label} raised {e}{hint}") from None
                except TimedOut as e:
                    raise BadFunction(f"{e} in {where}") from None
                except Died as e:
                    raise BadFunction(f"{where}: the function's process {e} before returning a "
                                      f"result") from None
                got, precisions = _convert(q, raw, expected, where, case.description)
                runs.append((case, got, precisions, q.scale(case.args, expected)))
    except Unloadable as e:
        raise BadFunction(str(e)) from None
    except TimedOut as e:
        raise BadFunction(f"{e} while importing {module}") from None
    except Died as e:
        raise BadFunction(f"the function's process {e} while importing {module}, before "
                          f"returning a result") from None
    return runs


def _tolerances(precisions, rtol, atol):
    return [(DEFAULT_RTOL[p] if rtol is None else rtol, 0.0 if atol is None else atol)
            for p in precisions]


def _delta(q: Quantity, args, precisions) -> float:
    """How far float rounding in the user's precision can move the kink argument."""
    if q.kink_arg is None:
        return 0.0
    eps = max(_UNIT_ROUNDOFF[p] for p in [*precisions, q.kink_precision or "float64"])
    return 8.0 * eps * max(1.0, float(np.max(np.abs(args[q.kink_arg]))))


def _compare_all(q, fn, runs, rtol, atol, report=None, own_scale=False, first_only=False) -> list:
    """Compare every run with fn's outputs; fill report's worst errors; return the failures.
    own_scale: also scale by fn's own outputs (a mistake's outputs can be far larger);
    first_only: stop at the first failing case (all a diagnosis needs to rule fn out)."""
    failures = []
    for case, got, precisions, scales in runs:
        if first_only and failures:
            break
        mid, lo, hi = _interval(q, fn, case.args, _delta(q, case.args, precisions), len(got))
        if own_scale:
            scales = np.maximum(scales[:len(got)], q.scale(case.args, lo)[:len(got)])
        failed = False
        for k, (g, m, l, h, s, (rt, at)) in enumerate(zip(got, mid, lo, hi, scales,
                                                          _tolerances(precisions, rtol, atol))):
            dist = _distance(g, l, h)
            worst = float(np.max(dist)) if dist.size else 0.0
            if report is not None:
                rel = worst / s if s > 0 else worst    # a zero scale: report the absolute error
                report.worst_rel_error = max(report.worst_rel_error, rel)
                if worst >= report.worst_abs_error:
                    report.worst_abs_error, report.worst_case = worst, case.name
            if worst > at + rt * s and not failed:
                failed = True
                i = np.unravel_index(int(np.argmax(dist)), dist.shape) if dist.ndim else ()
                output, index = _locate(q, k, case.args, i)
                failures.append(dict(case=case.name, description=case.description,
                                     output=output, index=index,
                                     expected=float(m[i]), accepted=[float(l[i]), float(h[i])],
                                     got=float(g[i]), abs_error=worst, tolerance=at + rt * s,
                                     scale=float(s), inputs=json_ready(case.args)))
    return failures


def _locate(q: Quantity, k: int, args, i: tuple):
    """(output name, index) of element i of output k; a list output (compared flattened and
    concatenated) is named by its part: clipped_grads[2] at [1, 0]."""
    name = q.outputs[k]
    if name not in q.list_outputs:
        return name, [int(j) for j in i]
    parts = _split_outputs(q, _call(q.reference, args), "reference")[k]
    ends = np.cumsum([np.size(part) for part in parts])
    n = int(np.searchsorted(ends, i[0], side="right"))
    local = int(i[0]) - (int(ends[n - 1]) if n else 0)
    return f"{name}[{n}]", [int(j) for j in np.unravel_index(local, np.shape(parts[n]))]


def _matches(q: Quantity, fn, runs, rtol, atol) -> bool:
    """fn's outputs agree with the runs' on every case (a fn that cannot run does not)."""
    try:
        with np.errstate(all="ignore"):
            return not _compare_all(q, fn, runs, rtol, atol, own_scale=True, first_only=True)
    except Exception:  # noqa: BLE001 - a variant that cannot run on a case does not match
        return False


def _diagnose(q: Quantity, runs, rtol, atol, base=None, first_case=None) -> dict:
    """What reproduces the outputs on every case: {"mistake": name, "text": one line, "parts":
    [variants.Part], "convention": variants.Convention or None}. Tried in order: each known
    mistake alone; each library's convention alone; two, then three, compatible mistakes and
    conventions together (variants.candidates); float32 arithmetic returned as float64.
    base: the knobs of the convention checked against (--convention), which every candidate
    keeps. first_case: the failing case's name, tried first (it rules most candidates out)."""
    runs = sorted(runs, key=lambda r: r[0].name != first_case)
    found = dict(mistake=None, text=None, parts=[], convention=None)
    convention = None
    if not base:
        for part, fn in single_conventions(q.name):
            if _matches(q, fn, runs, rtol, atol):
                convention = part
                break
    if base:
        family = FAMILIES.get(q.name)
        singles = [] if family is None else [
            (key, q.mistakes[key], family.build(**{**base, **knobs}))
            for key, knobs in family.mistakes.items()
            if key in q.mistakes and all(base.get(k, v) == v for k, v in knobs.items())]
    else:
        singles = [(key, m, m.fn) for key, m in q.mistakes.items()]
    for key, mistake, fn in singles:
        if _matches(q, fn, runs, rtol, atol):
            found.update(mistake=key, text=mistake.diagnosis,
                         parts=[convention or Part("mistake", key, mistake.diagnosis)])
            break
    else:
        if convention is not None:
            found.update(text=f"no known mistake: it follows the convention {convention.name} "
                              "(the first line says whose, and how to translate)",
                         parts=[convention])
        else:
            for parts, fn in candidates(q.name, base):
                if _matches(q, fn, runs, rtol, atol):
                    found.update(mistake="+".join(p.name for p in parts), text=describe(parts),
                                 parts=parts)
                    convention = next((p for p in parts if p.kind == "convention"), None)
                    break
    if convention is not None:
        found["convention"] = CONVENTIONS[convention.name.partition("=")[0]]
    if found["text"] is not None:
        return found
    precisions = {p for r in runs for p in r[2]}
    if rtol is None and atol is None and precisions == {"float64"}:
        loose = [(c, g, ["float32"] * len(p), s) for c, g, p, s in runs]
        if not _compare_all(q, q.reference, loose, None, None):
            text = ("agrees with ppo_ref only to float32 precision although it returned float64: it "
                    "probably computes in float32 (e.g. returns .item() of a float32 tensor); "
                    "return the float32 array, or pass --rtol 1e-5")
            found.update(mistake="float32_precision", text=text,
                         parts=[Part("mistake", "float32_precision", text)])
    return found


def _error(report: Report, message: str) -> Report:
    report.status, report.error = "error", message
    return report


def assert_conforms(fn, quantity: str, *, timeout: float | None = DEFAULT_TIMEOUT,
                    **kwargs) -> Report:
    """check(fn, quantity, timeout=timeout, **kwargs), raising AssertionError with the report
    unless it passes (a function that runs past the time limit fails with "timed out")."""
    report = check(fn, quantity, timeout=timeout, **kwargs)
    if not report.passed:
        raise AssertionError(str(report))
    return report


# ----- command line --------------------------------------------------------------------------

def load_function(target: str):
    """'package.module:function' or 'path/to/file.py:function' (attribute paths allowed)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise BadFunction(f"{target!r} is not of the form MODULE:FUNCTION")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            spec = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
            if spec is None:
                raise ImportError(f"no Python file at {module_name}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())   # as `python -m` does, also for the ppo-ref script
            module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any failure while importing is the user's to see
        raise BadFunction(f"cannot import {module_name}: {_one_line(e)}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise BadFunction(f"{module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise BadFunction(f"{target} is not callable (it is of type {type(obj).__name__})")
    return obj


def _list_quantities() -> str:
    rows = [f"{q.name:22s} {q.signature}\n{'':22s} {q.summary}" for q in QUANTITIES.values()]
    rows.append("\nconventions (--convention NAME; verify-update takes those marked *):")
    for c in CONVENTIONS.values():
        where = (", ".join(c.knobs) or "verify-update") + (" *" if c.update else "")
        rows.append(f"{c.name:28s} {c.whose}: {c.what}\n{'':28s} for: {where}")
    return "\n".join(rows)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["scenario"]:
        from .update import scenario_main
        return scenario_main(argv[1:])
    from ..cli import OneLineParser   # one-line errors; -1e-3 is a number
    parser = OneLineParser(
        prog="ppo-ref verify", description="Check a function of yours against ppo_ref "
        "(exit 0: conforms, 1: does not, 2: could not be checked). `ppo-ref verify scenario "
        "--out DIR` writes a whole-update scenario instead (see verify-update).")
    parser.add_argument("target", nargs="?", help="MODULE:FUNCTION or path/file.py:FUNCTION")
    parser.add_argument("--quantity", help="what the function computes (see --list)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--rtol", type=float, help="relative tolerance (to the quantity's scale)")
    parser.add_argument("--atol", type=float, help="absolute tolerance")
    parser.add_argument("--seed", type=int, default=0, help="seed of the randomized cases")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="time limit for all the calls of the function (default: "
                             f"{DEFAULT_TIMEOUT:g}); importing its module gets the same again")
    parser.add_argument("--convention", metavar="NAME", help="compare with ppo_ref adjusted to a "
                        "library's convention (see --list), e.g. sb3_mse; value_clip_range=10 "
                        "gives the range")
    parser.add_argument("--list", action="store_true",
                        help="list quantities, adapter signatures and conventions")
    args = parser.parse_args(argv)
    if args.list:
        print(_list_quantities())
        return 0
    if not args.target or not args.quantity:
        parser.error("give MODULE:FUNCTION and --quantity NAME (or --list)")
    report = Report(quantity=args.quantity, function=args.target, status="error")
    if args.quantity not in QUANTITIES:
        report.error = f"unknown quantity {args.quantity!r}; choose one of {', '.join(QUANTITIES)}"
    else:
        try:   # in a child process: the target's code cannot end or hang this one
            report = check(args.target, args.quantity, rtol=args.rtol, atol=args.atol,
                           seed=args.seed, name=args.target, timeout=args.timeout,
                           convention=args.convention)
        except ValueError as e:   # a bad --rtol, --atol, --timeout or --convention
            report.error = str(e)
    return report.finish(args.json, "verify")


if __name__ == "__main__":
    sys.exit(main())
