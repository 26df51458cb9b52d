"""How much of the numerical core and the equations the unit tests pin down, measured by mutation
testing: `python -m benchmarks.mutation` (from the repository root, with the `dev` extra).

mutmut (the `[mutmut]` section of setup.cfg) copies ppo_ref to `mutants/`, makes one small change
at a time to autodiff, nn, distributions, optim, gradcheck, gae, losses and their checkers
(`_checks.py`) -- a `+` for a `-`, `<` for `<=`, a constant plus one, a dropped argument -- and runs
the unit tests of those modules against each change. A mutant some test fails on is killed; one
that every test passes survived, and is a change the tests cannot see.

Each survivor is sorted into one of two kinds, from the statement the change lands in:

    check     inside a checker (a function named check_* or _check_*), a `raise`, a call to a checker, a
              warning, a `__repr__`/`__str__`, or the condition of an `if` whose body only raises
              or warns: a wrong message, or a check that fires too late or not at all
    value     anywhere else: a change to a number the module computes

The target is at most 1 % value survivors. A mutant that cannot change any output (an equivalent
mutant) is marked on its line with `# pragma: no mutate` and a reason; mutmut then does not make
it, and the report counts those lines.

mutmut does not mutate decorated functions (it cannot put its switch in front of an arbitrary
decorator). The equations carry one decorator, `arrays_or_tensors`, which only converts their
outputs to numpy when called with arrays; this runner lets mutmut treat them as undecorated, so
compute_gae, clipped_surrogate and the rest are mutated like every other function. Plain
`mutmut run` works too, and skips them.

    python -m benchmarks.mutation                 # run (about 10 minutes on 2 cores), then the report
    python -m benchmarks.mutation 'ppo_ref.gae.*'  # one module's mutants again, then the report
    python -m benchmarks.mutation --report        # the report of the last run only
    python -m benchmarks.mutation --show value    # the diff of every value survivor
    mutmut show NAME                              # one mutant's diff
"""
from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GROUPS = {
    "core": ("autodiff", "nn", "distributions", "optim", "gradcheck", "_checks"),
    "equations": ("gae", "losses"),
}
PASSTHROUGH_DECORATORS = ("arrays_or_tensors",)
# exit codes: a test failed (1), pytest's internal error (3, mutmut's own rule), or the tests ran
# past mutmut's time limit (36: the mutant made a loop endless)
KILLED = {1, 3, 36}
MESSAGE_FUNCTIONS = ("__repr__", "__str__")


def _let_mutmut_mutate_equations():
    """mutmut skips every function with a decorator other than staticmethod/classmethod; accept
    `@arrays_or_tensors` as well. The trampoline mutmut writes keeps the decorator outermost."""
    import libcst as cst
    from libcst.metadata import PositionProvider
    from mutmut.mutation import file_mutation

    skip = file_mutation.MutationVisitor._skip_node_and_children

    def skip_unless_passthrough(self, node):
        decorators = getattr(node, "decorators", ())
        if (isinstance(node, cst.FunctionDef) and len(decorators) == 1
                and isinstance(decorators[0].decorator, cst.Name)
                and decorators[0].decorator.value in PASSTHROUGH_DECORATORS):
            position = self.get_metadata(PositionProvider, node, None)
            return bool(position and position.start.line in self._ignored_node_lines)
        return skip(self, node)

    file_mutation.MutationVisitor._skip_node_and_children = skip_unless_passthrough


def run(max_children: int, names=()) -> None:
    _let_mutmut_mutate_equations()
    from mutmut.__main__ import cli
    try:
        cli(["run", "--max-children", str(max_children), *names], standalone_mode=False)
    except SystemExit as stop:
        if stop.code:
            raise


# ----- sorting survivors ---------------------------------------------------------------------

def _is_checker(name: str) -> bool:
    return name.startswith(("check_", "_check_"))


def _is_check(node: ast.AST) -> bool:
    """A raise, a check_*(...) or warnings.warn(...) call, or an if whose body only raises/warns."""
    if isinstance(node, (ast.Raise, ast.Assert)):
        return True
    if isinstance(node, ast.Call):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        return _is_checker(name) or name == "warn"
    if isinstance(node, ast.If):
        return all(_is_check(s) or (isinstance(s, ast.Expr) and _is_check(s.value)) for s in node.body)
    return False


def _kind(original: str, mutant: str) -> str:
    """'check' if every changed line of `original` lies in a check (module docstring), else 'value'."""
    tree = ast.parse(original)
    old, new = original.splitlines(), mutant.splitlines()
    changed = set()
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            changed.update(range(i1 + 1, max(i2, i1 + 1) + 1))
    for line in changed:
        # the changed line lies in a check if some check statement (or the test of a check-if)
        # spans it
        spans = [n for n in ast.walk(tree) if _is_check(n)
                 and n.lineno <= line <= (n.test.end_lineno if isinstance(n, ast.If) else n.end_lineno)]
        if not spans:
            return "value"
    return "check"


def survivors():
    """(module, mutant name, kind, diff) for every mutant no test killed, and the counts."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import (read_functions_from_index, read_mutants_module,
                                            read_original_function, read_mutant_function)
    from mutmut.utils.file_utils import walk_mutatable_files
    import libcst as cst

    totals, found = Counter(), []
    for path in walk_mutatable_files():
        module = Path(path).stem
        data = SourceFileMutationData(path=path)
        data.load()
        mutants_module = None
        for name, code in data.exit_code_by_key.items():
            totals[module, "mutants"] += 1
            if code in KILLED:
                totals[module, "killed"] += 1
                continue
            functions = read_functions_from_index(name, path)
            if functions is None:
                mutants_module = mutants_module or read_mutants_module(path)
                functions = (read_original_function(mutants_module, name),
                             read_mutant_function(mutants_module, name))
            original, mutant = (cst.Module([f]).code.strip() for f in functions)
            function = functions[0].name.value
            in_checker = _is_checker(function) or function in MESSAGE_FUNCTIONS
            kind = "check" if in_checker else _kind(original, mutant)
            totals[module, kind] += 1
            diff = "\n".join(difflib.unified_diff(original.splitlines(), mutant.splitlines(),
                                                  name, name, lineterm="", n=1))
            found.append((module, name, kind, diff))
    return totals, found


def _pragmas(module: str) -> int:
    path = ROOT / "ppo_ref" / f"{module}.py"
    return sum("pragma: no mutate" in line for line in path.read_text().splitlines())


def report(totals: Counter) -> dict:
    rows = {}
    for group, modules in GROUPS.items():
        row = {key: sum(totals[m, key] for m in modules)
               for key in ("mutants", "killed", "check", "value")}
        row["equivalent_marked"] = sum(_pragmas(m) for m in modules)
        row["value_survivor_percent"] = round(100 * row["value"] / max(row["mutants"], 1), 2)
        rows[group] = row
    print(f"{'modules':<10} {'mutants':>8} {'killed':>8} {'equivalent':>11} "
          f"{'check survivors':>16} {'value survivors':>16}")
    for group, row in rows.items():
        print(f"{group:<10} {row['mutants']:>8} {row['killed']:>8} {row['equivalent_marked']:>11} "
              f"{row['check']:>16} {row['value']:>9} ({row['value_survivor_percent']:.2f} %)")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="only these mutants (mutmut's names; globs such as "
                        "'ppo_ref.gae.*' work)")
    parser.add_argument("--report", action="store_true", help="report the last run, do not run")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1,
                        help="mutants tested at once (default: the CPU count)")
    parser.add_argument("--show", choices=("value", "check", "all"),
                        help="print the diff of each survivor of this kind")
    parser.add_argument("--json", type=Path, help="also write the counts to this file")
    args = parser.parse_args(argv)
    os.chdir(ROOT)                 # mutmut reads setup.cfg and writes mutants/ in the working directory
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if not args.report:
        run(args.max_children, args.names)
    totals, found = survivors()
    for module, name, kind, diff in found:
        if args.show in (kind, "all"):
            print(f"\n# {kind}: {name}\n{diff}")
    rows = report(totals)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
