"""Every demo runs end to end in its --quick mode: it writes non-empty PNGs and a JSON of finite numbers.

The demos are run as a reader would run them, `python demos/NAME.py --out DIR --quick`, in a
subprocess (so their command line and their imports are exercised too).
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# demo -> the files it must write
DEMOS = {
    "clip_objective": ["clip_objective.png", "clip_objective.json"],
    "cartpole": ["cartpole.png", "cartpole.json"],
    "collapse": ["collapse.png", "collapse.json"],
    "compare_objectives": ["compare_objectives.png", "compare_objectives.json",
                           "compare_objectives.csv"],
    "pendulum": ["pendulum.png", "pendulum.json"],
    "ablations": ["ablations.png", "ablations.json", "ablations.csv"],
    "sensitivity": ["sensitivity.png", "sensitivity.json", "sensitivity.csv"],
    "implementation_matters": ["implementation_matters.png", "implementation_matters.json",
                               "implementation_matters.csv"],
    "overoptimization": ["overoptimization.png", "overoptimization.json", "overoptimization.csv"],
}


def numbers(obj):
    """Every number inside nested JSON containers (bools are not numbers here)."""
    if isinstance(obj, dict):
        for value in obj.values():
            yield from numbers(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from numbers(value)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def reject_constant(name):
    raise ValueError(f"the JSON holds {name}, which is not a finite number")


@pytest.mark.parametrize("demo", sorted(DEMOS))
def test_demo_quick_run_writes_pngs_and_finite_json(demo, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(REPO / "demos" / f"{demo}.py"), "--out",
                           str(tmp_path), "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in DEMOS[demo]:
        path = tmp_path / name
        assert path.is_file() and path.stat().st_size > 0, f"{demo} did not write {name}"
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == PNG_MAGIC, f"{name} is not a PNG"
        if name.endswith(".json"):
            data = json.loads(path.read_text(), parse_constant=reject_constant)
            values = list(numbers(data))
            assert values, f"{name} holds no numbers"
            assert all(math.isfinite(v) for v in values)
    if demo == "collapse":
        check_collapse_numbers(json.loads((tmp_path / "collapse.json").read_text()))


def check_collapse_numbers(data):
    """The collapse JSON puts the unclipped run's final KL and return beside PPO-clip's."""
    table = data["unclipped_vs_clip_at_final_step"]
    steps = data["update_steps"]
    assert table["step"] == steps
    for row in table["per_seed"]:
        assert {"unclipped_kl", "clip_kl", "unclipped_return", "clip_return"} <= set(row)
    for experiment in data["experiments"]:
        for run in experiment["per_step"].values():
            # one value before the first step (KL(pi_old || pi_old) = 0) plus one per step
            assert len(run["kl"]) == len(run["eval_return"]) == steps + 1
            assert run["kl"][0] == 0.0


@pytest.mark.parametrize("demo, args, named", [
    ("cartpole", ["--seeds", "0"], "--seeds"),          # 0 used to fall back to the default
    ("collapse", ["--lr", "-1"], "--lr"),               # used to be a traceback from Adam
    ("collapse", ["--steps", "-3"], "--steps"),         # used to be a traceback from matplotlib
    ("compare_objectives", ["--seeds", "two"], "--seeds"),
])
def test_demo_bad_option_is_a_one_line_error_naming_it(demo, args, named, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "demos" / f"{demo}.py"), "--out",
                           str(tmp_path), "--quick", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "error" in last and named in last and "Traceback" not in proc.stderr


def test_demo_out_that_is_a_file_is_a_one_line_error(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    proc = subprocess.run([sys.executable, str(REPO / "demos" / "clip_objective.py"), "--out",
                           str(not_a_folder)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--out {not_a_folder}" in proc.stderr.strip().splitlines()[-1]


def test_demo_without_matplotlib_says_what_to_install_before_training(tmp_path):
    # `pip install .` brings no matplotlib; the demo stops at once with a one-line usage error.
    runner = ("import runpy, sys; sys.modules['matplotlib'] = None; "
              f"sys.path.insert(0, {str(REPO / 'demos')!r}); "   # as `python demos/NAME.py` does
              f"sys.argv = ['cartpole.py', '--out', {str(tmp_path)!r}, '--quick']; "
              f"runpy.run_path({str(REPO / 'demos' / 'cartpole.py')!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", runner], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "ppo_ref[plot]" in proc.stderr.strip().splitlines()[-1]
    assert not any(tmp_path.iterdir())       # nothing was trained or written
