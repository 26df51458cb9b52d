"""Stable-Baselines3's PPO and ppo_ref side by side on CartPole-v1, with the same hyperparameters.

The hyperparameters are rl-zoo3's tuned ones for PPO on CartPole-v1 (hyperparams/ppo.yml):
8 envs x 32 steps, batch 256 (one minibatch per epoch), 20 epochs, gamma 0.98, GAE lambda 0.8,
learning rate 1e-3 and clip range 0.2 both decayed linearly to 0, no entropy bonus, 1e5 steps;
SB3's other defaults (64x64 tanh policy and value MLPs, orthogonal init, advantage
normalisation, max_grad_norm 0.5, vf_coef 0.5). For each seed both libraries train, one after
the other in this process, until the mean return of the last 20 training episodes reaches 475;
the script prints steps_to_solve and time_to_solve_s (median over seeds) and their ratio.

Where the two differ by convention, ppo_ref is set to compute SB3's loss:
* SB3's value loss is vf_coef * mean (V - R)^2; ppo_ref's is vf_coef * 0.5 * mean (V - R)^2, so
  ppo_ref runs with vf_coef = 1.0 here (the same gradient).
Differences left as they are: SB3 resets an env on the step it ends (ppo_ref: on the next step,
so a few percent of its steps are reset steps, counted in its steps_to_solve); SB3 computes the
annealed lr and clip range after collecting a rollout (ppo_ref: before), a shift of one update
out of 390; SB3 trains in float32 (torch's default), ppo_ref in the dtype asked for.

Torch runs on the CPU with one thread, numpy's BLAS with one thread. Times are this process's
CPU time by default (see `python -m benchmarks.bench --help`; `--clock wall` for elapsed time).

torch and stable-baselines3 are not dependencies of ppo_ref. Install them in a separate virtual
environment, with ppo_ref on the path:

    python -m venv sb3venv
    sb3venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    sb3venv/bin/pip install stable-baselines3 -e .
    sb3venv/bin/python benchmarks/compare_sb3.py [--seeds 5] [--json FILE]

Without them the script says so and exits with status 0.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

# the repository root, for `benchmarks.bench` (and ppo_ref when it is not installed)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# importing ppo_ref pins BLAS (and OpenMP) to one thread; it must come before numpy or torch load
import ppo_ref  # noqa: E402,F401

import numpy as np  # noqa: E402

from benchmarks.bench import (CLOCKS, SOLVE_WINDOW, SOLVED_RETURN, machine_info,  # noqa: E402
                           median_solve, train_until_solved)
from ppo_ref.train.trainer import PRESETS  # noqa: E402

ZOO = dict(n_envs=8, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
           learning_rate=1e-3, clip_range=0.2, ent_coef=0.0, total_timesteps=100_000)


def ppo_ref_config(seed: int, dtype: str = "float64"):
    """The CartPole-v1 preset set to the zoo values, with SB3's value-loss weight."""
    c = PRESETS["CartPole-v1"]
    same = dict(num_envs=ZOO["n_envs"], num_steps=ZOO["n_steps"], num_minibatches=1,
                update_epochs=ZOO["n_epochs"], gamma=ZOO["gamma"], lam=ZOO["gae_lambda"],
                lr=ZOO["learning_rate"], clip_eps=ZOO["clip_range"], ent_coef=ZOO["ent_coef"],
                total_steps=ZOO["total_timesteps"], anneal_lr=True, anneal_clip=True,
                adam_eps=1e-5, norm_adv=True, max_grad_norm=0.5, hidden=(64, 64), activation="tanh",
                normalize_obs=False, scale_rewards=False, target_kl=None, objective="clip")
    return dataclasses.replace(c, seed=seed, dtype=dtype, vf_coef=1.0, **same)


def run_sb3(seed: int, clock, stop_when_solved: bool = True, episodes: list | None = None) -> dict:
    """Train SB3's PPO with the zoo hyperparameters; the same solve rule as bench. `episodes`, if
    an empty list, receives (global_step, return) for every finished training episode, the step
    being the one at the end of the rollout the episode ended in (as ppo_ref's
    TrainResult.episodes)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    returns, solved = [], {}
    start = clock()

    class SolveCallback(BaseCallback):
        # Checked when a rollout starts, i.e. after the previous update, as ppo_ref's callback.
        def _check(self):
            recent = returns[-SOLVE_WINDOW:]
            if not solved and len(recent) == SOLVE_WINDOW and np.mean(recent) >= SOLVED_RETURN:
                solved.update(steps=self.num_timesteps, time=clock() - start)

        def _on_rollout_start(self):
            self._check()

        def _on_training_end(self):
            self._check()

        def _on_rollout_end(self):
            if episodes is not None:
                episodes.extend((self.num_timesteps, r) for r in returns[len(episodes):])

        def _on_step(self):
            returns.extend(float(i["episode"]["r"]) for i in self.locals["infos"] if "episode" in i)
            return not (solved and stop_when_solved)

    env = make_vec_env("CartPole-v1", n_envs=ZOO["n_envs"], seed=seed)
    model = PPO("MlpPolicy", env, n_steps=ZOO["n_steps"], batch_size=ZOO["batch_size"],
                n_epochs=ZOO["n_epochs"], gamma=ZOO["gamma"], gae_lambda=ZOO["gae_lambda"],
                learning_rate=lambda progress: ZOO["learning_rate"] * progress,   # zoo "lin_0.001"
                clip_range=lambda progress: ZOO["clip_range"] * progress,         # zoo "lin_0.2"
                ent_coef=ZOO["ent_coef"], seed=seed, device="cpu", verbose=0)
    callback = SolveCallback()
    model.learn(ZOO["total_timesteps"], callback=callback)
    elapsed = clock() - start
    env.close()
    return {"seed": seed, "steps_to_solve": solved.get("steps"),
            "time_to_solve_s": solved.get("time"), "train_steps": model.num_timesteps,
            "train_time_s": elapsed, "train_steps_per_s": model.num_timesteps / elapsed,
            "final_return": float(np.mean(returns[-SOLVE_WINDOW:])) if returns else None}


def export_curves(seeds, dtypes: list, folder: Path) -> None:
    """Train SB3 and ppo_ref (each dtype) for all 1e5 steps, each seed in `seeds`, and write every
    finished training episode to folder/sb3.csv and folder/ppo_ref_DTYPE.csv, one row each:
    run, global_step, episodic_return (the input of `ppo-ref compare`). A row's global_step is
    the step at the end of the rollout the episode ended in, for both libraries. Rows are
    appended seed by seed, so an interrupted export keeps the seeds it finished."""
    from ppo_ref.train.trainer import train
    folder.mkdir(parents=True, exist_ok=True)
    files = {"sb3": folder / "sb3.csv", **{f"ppo_ref_{d}": folder / f"ppo_ref_{d}.csv"
                                          for d in dtypes}}
    for path in files.values():
        path.write_text("run,global_step,episodic_return\n")
    for seed in seeds:
        curves = {"sb3": []}
        run_sb3(seed, time.process_time, stop_when_solved=False, episodes=curves["sb3"])
        for d in dtypes:
            result = train(ppo_ref_config(seed, d))
            curves[f"ppo_ref_{d}"] = [(step, ret) for step, ret, _ in result.episodes]
        for name, curve in curves.items():
            with open(files[name], "a") as f:
                f.writelines(f"{name}_s{seed},{step},{ret!r}\n" for step, ret in curve)
        print(f"seed {seed}: " + ", ".join(f"{name} {len(c)} episodes, last 20 average "
                                           f"{np.mean([r for _, r in c[-20:]]):.1f}"
                                           for name, c in curves.items()), flush=True)


def _fmt(v, fmt):
    return "not reached" if v is None else fmt.format(v)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="with --curves: seeds FIRST..FIRST+N-1 instead (to add seeds to an "
                             "export, in another DIR; ppo-ref compare takes several CSVs)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (default); wall: elapsed time")
    parser.add_argument("--dtypes", default="float64,float32",
                        help="ppo_ref training dtypes to run, comma-separated (default: both; "
                             "torch trains SB3 in float32)")
    parser.add_argument("--full", action="store_true",
                        help="train every run for all 1e5 steps instead of stopping once solved")
    parser.add_argument("--curves", metavar="DIR",
                        help="instead of timing, train every seed for all 1e5 steps and write the "
                             "learning curves to DIR/sb3.csv and DIR/ppo_ref_DTYPE.csv (columns "
                             "run, global_step, episodic_return: one row per finished episode), "
                             "for `ppo-ref compare --a DIR/ppo_ref_float64.csv --b DIR/sb3.csv`")
    args = parser.parse_args(argv)
    missing = [m for m in ("torch", "stable_baselines3") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"compare_sb3.py: {' and '.join(missing)} not installed in this Python "
              f"({sys.executable}); nothing measured. Install torch and stable-baselines3 in a "
              f"separate virtual environment (see this script's docstring) and run it there.")
        return 0
    import stable_baselines3
    import torch

    clock = CLOCKS[args.clock]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if args.curves:
        export_curves(range(args.first_seed, args.first_seed + args.seeds), dtypes,
                      Path(args.curves))
        return 0
    rows = {"sb3": [], **{f"ppo_ref_{d}": [] for d in dtypes}}
    for seed in range(args.seeds):   # interleaved, so a change in the machine's load hits all
        rows["sb3"].append(run_sb3(seed, clock, stop_when_solved=not args.full))
        for d in dtypes:
            rows[f"ppo_ref_{d}"].append(train_until_solved(
                ppo_ref_config(seed, d), stop_when_solved=not args.full, clock=clock))
        for name in rows:
            r = rows[name][-1]
            print(f"seed {seed} {name:>15}: steps_to_solve {_fmt(r['steps_to_solve'], '{:,}')}, "
                  f"time_to_solve {_fmt(r['time_to_solve_s'], '{:.1f}')} s, "
                  f"{r['train_steps_per_s']:,.0f} steps/s", flush=True)
    summary = {}
    for name, runs in rows.items():
        summary[name] = {"steps_to_solve": median_solve([r["steps_to_solve"] for r in runs]),
                         "time_to_solve_s": median_solve([r["time_to_solve_s"] for r in runs]),
                         "train_steps_per_s": float(np.median([r["train_steps_per_s"]
                                                               for r in runs])),
                         "seeds": runs}
    sb3_time = summary["sb3"]["time_to_solve_s"]
    ratios = {name: None if sb3_time is None or r["time_to_solve_s"] is None else
              sb3_time / r["time_to_solve_s"] for name, r in summary.items() if name != "sb3"}
    m = machine_info()
    print(f"\nCartPole-v1, rl-zoo3 hyperparameters, {args.seeds} seeds, medians, {args.clock} time"
          f"\nmachine: {m['cpu']}, {m['cores']} cores, numpy {m['numpy']}, torch "
          f"{torch.__version__} (1 thread), stable-baselines3 {stable_baselines3.__version__}\n")
    print(f"{'':<16}{'steps_to_solve':>16}{'time_to_solve_s':>17}{'steps/s':>10}"
          f"{'SB3 time / this':>17}")
    for name, r in summary.items():
        ratio = "" if name == "sb3" else _fmt(ratios[name], "{:.2f}x")
        print(f"{name:<16}{_fmt(r['steps_to_solve'], '{:,.0f}'):>16}"
              f"{_fmt(r['time_to_solve_s'], '{:.1f}'):>17}{r['train_steps_per_s']:>10,.0f}"
              f"{ratio:>17}")
    print("\n(target: SB3's time_to_solve at least 3x ppo_ref's)")
    if args.json:
        out = {**summary, "time_to_solve_ratio": ratios, "clock": args.clock,
               "machine": {**m, "torch": torch.__version__,
                           "stable_baselines3": stable_baselines3.__version__},
               "hyperparameters": ZOO}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
