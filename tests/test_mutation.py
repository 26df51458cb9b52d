"""benchmarks/mutation.py sorts each surviving mutant into a check or a value by the statement
its change lands in; these cases are written by hand."""
import pytest

from benchmarks.mutation import _is_checker, _kind

ORIGINAL = '''def f(x, n):
    check_scalar("n", n, 0.0)
    if n > 10:
        raise ValueError(f"n is {n}")
    y = x * n
    return y
'''


@pytest.mark.parametrize("line, replacement, kind", [
    ('check_scalar("n", n, 0.0)', 'check_scalar("XXnXX", n, 0.0)', "check"),   # a checker's call
    ("if n > 10:", "if n >= 10:", "check"),                                      # an if that only raises
    ('raise ValueError(f"n is {n}")', "raise ValueError(None)", "check"),
    ("y = x * n", "y = x / n", "value"),
    ("return y", "return None", "value"),
])
def test_a_change_is_a_check_only_inside_a_check(line, replacement, kind):
    assert _kind(ORIGINAL, ORIGINAL.replace(line, replacement)) == kind


def test_an_if_that_also_computes_is_not_a_check():
    original = "def f(x):\n    if x > 0:\n        x = 2 * x\n        raise ValueError\n    return x\n"
    assert _kind(original, original.replace("x > 0", "x >= 0")) == "value"


@pytest.mark.parametrize("name, checker", [("check_batch", True), ("_check_broadcast", True),
                                           ("gradcheck", False), ("checkpoint", False)])
def test_checkers_are_named_check_or__check(name, checker):
    assert _is_checker(name) is checker
