"""ppo_ref.ppo, PPO in one file: the full trainer's algorithm bit for bit, in at most 300 lines
that import only the numerical core and the equations, runnable as `python -m ppo_ref.ppo`."""
import ast
import csv
import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import pytest

from ppo_ref import ppo
from ppo_ref.train.config import PPOConfig
from ppo_ref.train.trainer import train as full_train

SOURCE = Path(ppo.__file__)
STEPS = 2560          # 10 updates of the default batch of 8 envs * 32 steps


def _columns(csv_text: str) -> list:
    """The rows of a CSV as lists of the raw strings in ppo.COLUMNS (metrics.csv has more)."""
    return [[row[c] for c in ppo.COLUMNS] for row in csv.DictReader(io.StringIO(csv_text))]


def _full_trainer_csv(config: PPOConfig, tmp_path) -> str:
    """metrics.csv of the full trainer's run folder, as `ppo-ref train --out DIR` writes it."""
    full_train(config, out_dir=tmp_path / "run")
    return (tmp_path / "run" / "metrics.csv").read_text()


@pytest.fixture(scope="module")
def cli_csv(tmp_path_factory):
    """seed -> the CSV text `python -m ppo_ref.ppo --seed S --total-steps 2560 --csv FILE` wrote."""
    out = {}
    for seed in (0, 1):
        path = tmp_path_factory.mktemp("ppo") / "rows.csv"
        done = subprocess.run([sys.executable, "-m", "ppo_ref.ppo", "--seed", str(seed),
                               "--total-steps", str(STEPS), "--csv", str(path)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        out[seed] = (path.read_text(), done.stdout)
    return out


# ----- the central promise: the same algorithm as the full trainer -------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_cli_rows_equal_the_full_trainers_metrics_csv_string_for_string(seed, cli_csv, tmp_path):
    mine = _columns(cli_csv[seed][0])
    theirs = _columns(_full_trainer_csv(PPOConfig(seed=seed, total_steps=STEPS), tmp_path))
    assert len(mine) == len(theirs) == STEPS // 256
    for update, (a, b) in enumerate(zip(mine, theirs), start=1):
        assert a == b, f"update {update}"


def test_same_algorithm_beyond_the_defaults_truncation_minibatches_entropy(tmp_path):
    # Under a near-uniform policy Acrobot-v1's episodes run to the 500-step time limit: they are
    # truncated, so GAE bootstraps from V(final observation). Also 4 minibatches, an entropy
    # bonus in the gradient, clip_eps not annealed, advantages not normalised.
    hp = ppo.Hyperparameters(env_id="Acrobot-v1", seed=3, total_steps=2048, num_envs=4,
                             num_steps=64, num_minibatches=4, update_epochs=3, gamma=0.99,
                             lam=0.94, anneal_clip=False, norm_adv=False, ent_coef=0.01)
    rows = list(ppo.train(hp))
    assert any(r["episodic_return"] == -500.0 for r in rows)       # 500 steps of reward -1
    mine = [[repr(r[c]) if isinstance(r[c], float) else str(r[c]) for c in ppo.COLUMNS]
            for r in rows]
    assert mine == _columns(_full_trainer_csv(PPOConfig(**dataclasses.asdict(hp)), tmp_path))


def test_hyperparameters_are_the_full_trainers_fields_with_its_defaults():
    full = PPOConfig()
    for f in dataclasses.fields(ppo.Hyperparameters):
        assert getattr(ppo.Hyperparameters(), f.name) == getattr(full, f.name), f.name
        assert f.metadata.get("help"), f.name


# ----- the file a reader opens first -------------------------------------------------------------

def test_file_is_at_most_300_lines_docstrings_included():
    assert len(SOURCE.read_text().splitlines()) <= 300


def test_imports_from_ppo_ref_only_the_core_and_the_equations():
    allowed = {"autodiff", "nn", "distributions", "optim", "gae", "losses"}
    used, top_level = set(), set()
    for node in ast.walk(ast.parse(SOURCE.read_text())):
        if isinstance(node, ast.Import):
            top_level |= {a.name.split(".")[0] for a in node.names}
            assert not any(a.name.startswith("ppo_ref") for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and module.split(".")[0] != "ppo_ref":
                top_level.add(module.split(".")[0])
                continue
            inside = module if node.level else module.removeprefix("ppo_ref").lstrip(".")
            # `from . import gae` names modules; `from .distributions import X` names one
            used |= {inside.split(".")[0]} if inside else {a.name for a in node.names}
    assert used and used <= allowed, used - allowed
    assert "gymnasium" in top_level                      # envs come straight from gymnasium


def test_eq_7_and_eq_9_are_stated_directly_above_the_lines_that_compute_them():
    lines = SOURCE.read_text().splitlines()

    def line_of(text, after=0):
        return next(i for i, line in enumerate(lines) if i >= after and text in line)
    eq7 = line_of("# eq. 7")
    assert line_of("L^CLIP = -mean_t min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)", eq7) <= eq7 + 1
    assert line_of("autodiff.minimum(", eq7) - eq7 <= 6
    eq9 = line_of("# eq. 9", eq7)
    assert line_of("loss = policy_loss + hp.vf_coef * value_loss - hp.ent_coef", eq9) == eq9 + 1


# ----- the command line --------------------------------------------------------------------------

def test_cli_writes_the_header_then_one_row_per_update(cli_csv):
    text, stdout = cli_csv[0]
    lines = text.splitlines()
    assert lines[0] == "update,global_step,episodic_return,policy_loss,value_loss,approx_kl," \
                       "clip_fraction"
    rows = _columns(text)
    assert [r[0] for r in rows] == [str(k) for k in range(1, 11)]
    assert [r[1] for r in rows] == [str(256 * k) for k in range(1, 11)]
    assert len(lines) == 11 and len(stdout.splitlines()) == 10     # a progress line per update


@pytest.mark.parametrize("argv, named", [
    (["--total-steps", "-5"], "--total-steps"), (["--total-steps", "255"], "--total-steps"),
    (["--seed", "-1"], "--seed"), (["--seed", "x"], "--seed"), (["--bogus"], "--bogus"),
])
def test_a_bad_argument_is_one_line_on_stderr_and_exit_status_2(argv, named, capsys):
    with pytest.raises(SystemExit) as exit_:
        ppo.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert len(err.strip().splitlines()) == 1 and named in err and "Traceback" not in err


def test_a_bad_argument_from_the_shell_gives_no_traceback():
    done = subprocess.run([sys.executable, "-m", "ppo_ref.ppo", "--total-steps", "-5"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "--total-steps" in done.stderr
