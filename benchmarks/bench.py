"""How fast ppo_ref trains, measured against its own limits: `python -m benchmarks.bench`.

For the CartPole-v1 preset, in one process (absolute speeds differ two- to threefold between
machines, so the figures that matter are ratios and counts from one run):

    raw_env_steps_per_s      the training vector env stepped with random actions: the rollout limit
    rollout_steps_per_s      the trainer's rollout phase (RolloutCollector.collect: policy forward,
                             sampling, storage); rollout_efficiency = rollout / raw
    update_samples_per_s     samples x epochs per second in ppo_update (update_samples_per_env_step
                             of them per env step: epochs x the share of a batch's rows kept);
    handwritten_mlp_samples_per_s   the same minibatch steps done by bench_baseline.HandwrittenPPO
                             (plain numpy forward and backward, no autodiff): the update limit;
                             update_efficiency = update / handwritten
    train_steps_per_s        environment steps per second of train(), end to end
    steps_to_solve, time_to_solve_s   the first update after which the mean return of the last
                             20 training episodes is >= 475, median over seeds (a seed that never
                             gets there counts as infinitely slow)
    floor_us_per_step        the least time a training step can take on this machine (`measure_floor`):
                             the raw env step, plus the matrix products and activations that a
                             rollout and an update must compute per env step, each timed alone
    floor_breakdown_us       those parts, in microseconds per env step
    roofline_fraction        floor_us_per_step / the trainer's measured microseconds per step
    trainer_breakdown_us     the trainer's microseconds per env step in its rollout and its update
                             (from the phase throughputs) and the rest of train() (GAE, minibatch
                             draws, pi_old's exact KL, logging: by difference, so noise can make
                             it slightly negative), to set beside floor_breakdown_us

Throughputs are medians over a few interleaved rounds. Times are this process's CPU time
(time.process_time) by default: with BLAS on one thread it equals wall time on an idle machine, and
it does not grow when other processes share the cores (`--clock wall` measures wall time instead).
numpy's BLAS runs on one thread (importing ppo_ref before numpy pins it, see
ppo_ref.single_threaded_blas; machine_info records the setting): at 64-wide layers a second BLAS
thread costs more than it gives, badly so on a busy machine, and compare_sb3.py pins torch to one
thread too.
"""
from __future__ import annotations

import ppo_ref  # noqa: F401  (first: importing ppo_ref pins BLAS to one thread before numpy loads)

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time

import gymnasium as gym
import numpy as np

from benchmarks.handwritten import HandwrittenPPO
from ppo_ref.optim import Adam
from ppo_ref.train.trainer import PRESETS, build_agent, ppo_update, shuffled_minibatches, train
from ppo_ref.train.rollout import RolloutCollector, make_vec_env

__all__ = ["KEYS", "SOLVED_RETURN", "SOLVE_WINDOW", "CLOCKS", "machine_info", "measure_phases",
           "measure_floor",
           "train_until_solved", "median_solve", "run", "format_table", "profile", "main"]

KEYS = ("raw_env_steps_per_s", "rollout_steps_per_s", "rollout_efficiency",
        "update_samples_per_s", "handwritten_mlp_samples_per_s", "update_efficiency",
        "update_samples_per_env_step", "train_steps_per_s", "time_to_solve_s", "steps_to_solve",
        "floor_us_per_step", "roofline_fraction", "floor_breakdown_us", "trainer_breakdown_us",
        "seeds", "machine")
SOLVED_RETURN = 475.0   # CartPole-v1's reward_threshold
SOLVE_WINDOW = 20       # episodes averaged


# ----- the machine -----------------------------------------------------------------------------

def machine_info() -> dict:
    """CPU model, core count, numpy and BLAS versions, BLAS threads: what the figures depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = "unknown"
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "numpy": np.__version__, "blas": blas,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
            "python": platform.python_version(), "gymnasium": gym.__version__}


# ----- the phases, one at a time ---------------------------------------------------------------

def _raw_env(config, vector_steps: int, clock) -> float:
    """Random actions through the training vector env: env steps per second."""
    envs = make_vec_env(config.env_id, config.num_envs, seed=config.seed)
    envs.reset(seed=config.seed)
    actions = np.random.default_rng(config.seed).integers(
        0, envs.single_action_space.n, size=(vector_steps, config.num_envs))
    start = clock()
    for a in actions:
        envs.step(a)
    elapsed = clock() - start
    envs.close()
    return vector_steps * config.num_envs / elapsed


def _timed(fn, repeats: int, clock) -> float:
    start = clock()
    for _ in range(repeats):
        fn()
    return clock() - start


def measure_phases(config, rounds: int = 5, rollouts: int = 20, updates: int = 3,
                   clock=time.process_time) -> dict:
    """Throughput of each phase (medians over `rounds` interleaved rounds) and the efficiencies."""
    envs = make_vec_env(config.env_id, config.num_envs, seed=config.seed)
    agent = build_agent(config, envs.single_observation_space, envs.single_action_space,
                        np.random.default_rng(config.seed))
    collector = RolloutCollector(envs, agent, config.num_steps,
                                 np.random.default_rng(config.seed + 1), seed=config.seed)
    buffer = collector.collect()                                 # warm-up, and a real batch
    batch = buffer.flatten(*buffer.compute_advantages(config.gamma, config.lam))
    minibatches = shuffled_minibatches(len(batch["advantages"]), config.update_epochs,
                                       config.num_minibatches, np.random.default_rng(0))
    samples = sum(len(idx) for idx in minibatches)               # samples x epochs per update
    optimizer = Adam(agent.parameters(), lr=config.lr, eps=config.adam_eps)
    hand = HandwrittenPPO(agent.obs_dim, agent.action_dim, config.hidden, dtype=agent.dtype,
                          lr=config.lr, clip_eps=config.clip_eps, vf_coef=config.vf_coef,
                          ent_coef=config.ent_coef, max_grad_norm=config.max_grad_norm,
                          norm_adv=config.norm_adv, adam_eps=config.adam_eps)
    hand.load_agent_state(agent.state_dict())

    def hand_update():
        for idx in minibatches:
            hand.step(batch["obs"][idx], batch["actions"][idx], batch["logp"][idx],
                      batch["advantages"][idx], batch["returns"][idx])

    def agent_update():
        ppo_update(agent, optimizer, batch, config, minibatches)

    figures = {k: [] for k in ("raw", "rollout", "update", "hand")}
    for _ in range(rounds):
        figures["raw"].append(_raw_env(config, rollouts * config.num_steps, clock))
        figures["rollout"].append(rollouts * config.batch_size /
                                  _timed(collector.collect, rollouts, clock))
        figures["update"].append(updates * samples / _timed(agent_update, updates, clock))
        figures["hand"].append(updates * samples / _timed(hand_update, updates, clock))
    envs.close()
    med = {k: float(np.median(v)) for k, v in figures.items()}
    return {"raw_env_steps_per_s": med["raw"], "rollout_steps_per_s": med["rollout"],
            "rollout_efficiency": med["rollout"] / med["raw"],
            "update_samples_per_s": med["update"], "handwritten_mlp_samples_per_s": med["hand"],
            "update_efficiency": med["update"] / med["hand"],
            "update_samples_per_env_step": samples / config.batch_size}


# ----- the floor -------------------------------------------------------------------------------

def _least_time(fn, clock, calls: int = 100, repeats: int = 5) -> float:
    """Seconds per call of fn: the least of `repeats` timings of `calls` calls (a floor: noise
    from a shared machine only ever adds time)."""
    best = math.inf
    for _ in range(repeats):
        start = clock()
        for _ in range(calls):
            fn()
        best = min(best, (clock() - start) / calls)
    return best


def _mlp_cost(sizes, rows: int, dtype, clock, backward: bool) -> tuple:
    """(matmul seconds, activation seconds) of one tanh MLP with layer `sizes` on `rows` inputs,
    each primitive timed alone at its shape. Forward: h_{i+1} = tanh(h_i W_i + b_i). Backward
    (if asked): dW_i = h_i^T g_i for every layer, g_i W_i^T for every layer but the first (the
    observations need no gradient), and g (1 - h^2) through each tanh."""
    rng = np.random.default_rng(0)
    matmul = activation = 0.0
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        h = rng.standard_normal((rows, n_in)).astype(dtype)
        W = rng.standard_normal((n_in, n_out)).astype(dtype)
        b = np.zeros(n_out, dtype=dtype)
        g = rng.standard_normal((rows, n_out)).astype(dtype)
        matmul += _least_time(lambda: h @ W + b, clock)
        if backward:
            matmul += _least_time(lambda: h.T @ g, clock)
            if i > 0:
                matmul += _least_time(lambda: g @ W.T, clock)
        if i < len(sizes) - 2:          # a hidden layer: its tanh, and the tanh's derivative
            z = g
            activation += _least_time(lambda: np.tanh(z), clock)
            if backward:
                t = np.tanh(z)
                activation += _least_time(lambda: g * (1.0 - t * t), clock)
    return matmul, activation


def measure_floor(config, raw_env_steps_per_s: float, obs_dim: int, n_actions: int,
                  clock=time.process_time) -> dict:
    """The least time one training step (one env step, all envs counted) can take on this machine,
    in microseconds, and its parts. A training step must

        step the env                     1 / raw_env_steps_per_s
        choose its action and value      forward of the policy and value MLPs at N rows, / N
        learn from it                    K epochs x M minibatches of a forward and backward of
                                         both MLPs at batch / M rows, / batch

    Only the matrix products and the tanh (and its derivative) are counted, each timed alone at
    its shape; the softmax, the losses, the optimiser and all bookkeeping count as free. So the
    floor is a bound no PPO on this machine and these shapes beats, and roofline_fraction says
    how close the trainer gets to it."""
    dtype = np.dtype(config.dtype)
    nets = [(obs_dim, *config.hidden, n_actions), (obs_dim, *config.hidden, 1)]
    rows = config.batch_size // config.num_minibatches
    passes = config.update_epochs * config.num_minibatches / config.batch_size  # per env step
    parts = {"env": 1e6 / raw_env_steps_per_s, "rollout_matmul": 0.0,
             "rollout_activation": 0.0, "update_matmul": 0.0, "update_activation": 0.0}
    for sizes in nets:
        m, a = _mlp_cost(sizes, config.num_envs, dtype, clock, backward=False)
        parts["rollout_matmul"] += 1e6 * m / config.num_envs
        parts["rollout_activation"] += 1e6 * a / config.num_envs
        m, a = _mlp_cost(sizes, rows, dtype, clock, backward=True)
        parts["update_matmul"] += 1e6 * m * passes
        parts["update_activation"] += 1e6 * a * passes
    return {"floor_us_per_step": sum(parts.values()), "floor_breakdown_us": parts}


# ----- training to the solve point -------------------------------------------------------------

class _Solved(Exception):
    """Raised from train()'s callback to stop a run once it is solved."""


def train_until_solved(config, stop_when_solved: bool = False, clock=time.process_time) -> dict:
    """Train with `config`; the first update after which the last SOLVE_WINDOW training episodes
    average >= SOLVED_RETURN gives steps_to_solve (env steps so far) and time_to_solve_s (wall
    `clock` time since train() was called, setup included). None for both if that never happens."""
    solved, last = {}, {}
    start = clock()

    def callback(row):
        last.update(row)
        if not solved and row["episodes"] >= SOLVE_WINDOW and \
                row["episodic_return"] >= SOLVED_RETURN:
            solved.update(steps=row["global_step"], time=clock() - start)
            if stop_when_solved:
                raise _Solved

    try:
        train(config, callback=callback)
    except _Solved:
        pass
    elapsed = clock() - start
    steps = last.get("global_step", 0)
    return {"seed": config.seed, "dtype": config.dtype,
            "steps_to_solve": solved.get("steps"), "time_to_solve_s": solved.get("time"),
            "train_steps": steps, "train_time_s": elapsed,
            "train_steps_per_s": steps / elapsed,
            "final_return": last.get("episodic_return")}


def median_solve(values) -> float | None:
    """Median with None (never solved) counted as +inf; None if the median itself is infinite."""
    m = float(np.median([math.inf if v is None else v for v in values]))
    return None if math.isinf(m) else m


# ----- the whole benchmark ---------------------------------------------------------------------

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def run(seeds: int = 5, quick: bool = False, dtype: str | None = None, clock: str = "cpu") -> dict:
    """All figures of the benchmark as a dict with exactly the keys KEYS."""
    timer = CLOCKS[clock]
    config = PRESETS["CartPole-v1"]
    if dtype is not None:
        config = dataclasses.replace(config, dtype=dtype)
    if quick:
        phases = measure_phases(config, rounds=1, rollouts=5, updates=1, clock=timer)
    else:
        phases = measure_phases(config, clock=timer)
    runs = [train_until_solved(dataclasses.replace(config, seed=s), stop_when_solved=quick,
                               clock=timer) for s in range(seeds)]
    result = dict(phases)
    result["train_steps_per_s"] = float(np.median([r["train_steps_per_s"] for r in runs]))
    result["time_to_solve_s"] = median_solve([r["time_to_solve_s"] for r in runs])
    result["steps_to_solve"] = median_solve([r["steps_to_solve"] for r in runs])
    envs = make_vec_env(config.env_id, 1)
    floor = measure_floor(config, phases["raw_env_steps_per_s"],
                          envs.single_observation_space.shape[0], envs.single_action_space.n,
                          clock=timer)
    envs.close()
    result["floor_us_per_step"] = floor["floor_us_per_step"]
    trainer_us = 1e6 / result["train_steps_per_s"]
    result["roofline_fraction"] = floor["floor_us_per_step"] / trainer_us
    result["floor_breakdown_us"] = floor["floor_breakdown_us"]
    rollout_us = 1e6 / phases["rollout_steps_per_s"]
    update_us = 1e6 * phases["update_samples_per_env_step"] / phases["update_samples_per_s"]
    result["trainer_breakdown_us"] = {"rollout": rollout_us, "update": update_us,
                                      "rest": trainer_us - rollout_us - update_us}
    result["seeds"] = runs
    result["machine"] = {**machine_info(), "preset": "CartPole-v1", "dtype": config.dtype,
                         "clock": clock, "quick": quick}
    assert tuple(result) == KEYS
    return result


def format_table(result: dict) -> str:
    """The figures as a plain-text table, targets beside them."""
    def num(v, fmt="{:,.0f}"):
        return "not reached" if v is None else fmt.format(v)

    m = result["machine"]
    n = len(result["seeds"])
    rows = [("raw_env_steps_per_s", num(result["raw_env_steps_per_s"]), ""),
            ("rollout_steps_per_s", num(result["rollout_steps_per_s"]), ""),
            ("rollout_efficiency", num(result["rollout_efficiency"], "{:.2f}"), ">= 0.5"),
            ("update_samples_per_s", num(result["update_samples_per_s"]), ""),
            ("handwritten_mlp_samples_per_s", num(result["handwritten_mlp_samples_per_s"]), ""),
            ("update_efficiency", num(result["update_efficiency"], "{:.2f}"), ">= 0.85"),
            ("train_steps_per_s", num(result["train_steps_per_s"]), ""),
            (f"steps_to_solve (median of {n})", num(result["steps_to_solve"]), "<= 40,000"),
            (f"time_to_solve_s (median of {n})", num(result["time_to_solve_s"], "{:.1f}"), ""),
            ("floor_us_per_step", num(result["floor_us_per_step"], "{:.1f}"), ""),
            ("trainer_us_per_step", num(1e6 / result["train_steps_per_s"], "{:.1f}"), ""),
            ("roofline_fraction", num(result["roofline_fraction"], "{:.2f}"), ">= 0.5")]
    lines = [f"ppo_ref benchmark, CartPole-v1 preset, {m['dtype']}, {m['clock']} time"
             f"{' (quick)' if m['quick'] else ''}",
             f"machine: {m['cpu']}, {m['cores']} cores, numpy {m['numpy']}, {m['blas']} "
             f"(BLAS threads: {m['blas_threads']})", ""]
    lines += [f"{name:<34}{value:>14}   {target}" for name, value, target in rows]
    lines += ["", "the floor, microseconds per env step:"]
    lines += [f"  {part:<32}{us:>14.2f}" for part, us in result["floor_breakdown_us"].items()]
    floor, trainer = result["floor_breakdown_us"], result["trainer_breakdown_us"]
    per_step = result["update_samples_per_env_step"]
    lines += ["", "where a training step goes, microseconds per env step:",
              f"  {'':<32}{'trainer':>14}{'floor':>10}",
              f"  {'rollout':<32}{trainer['rollout']:>14.2f}"
              f"{floor['env'] + floor['rollout_matmul'] + floor['rollout_activation']:>10.2f}"
              f"   the raw env alone: {1e6 / result['raw_env_steps_per_s']:.2f}",
              f"  {'update':<32}{trainer['update']:>14.2f}"
              f"{floor['update_matmul'] + floor['update_activation']:>10.2f}"
              f"   the hand-written update: "
              f"{1e6 * per_step / result['handwritten_mlp_samples_per_s']:.2f}",
              f"  {'rest':<32}{trainer['rest']:>14.2f}{0:>10.2f}",
              f"  {'total':<32}{sum(trainer.values()):>14.2f}{sum(floor.values()):>10.2f}", ""]
    for r in result["seeds"]:
        lines.append(f"  seed {r['seed']}: steps_to_solve {num(r['steps_to_solve'])}, "
                     f"time_to_solve {num(r['time_to_solve_s'], '{:.1f}')} s, "
                     f"{num(r['train_steps_per_s'])} steps/s over {r['train_steps']:,} steps")
    return "\n".join(lines)


def profile(updates: int, dtype: str | None = None, top: int = 15) -> str:
    """cProfile of train() on the preset for `updates` updates: the top entries by own time."""
    import cProfile
    import io
    import pstats

    config = PRESETS["CartPole-v1"]
    config = dataclasses.replace(config, dtype=dtype or config.dtype)
    steps = updates * config.batch_size

    def stop(row):  # keep the preset's schedules (they depend on total_steps), stop early
        if row["update"] >= updates:
            raise _Solved
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        train(config, callback=stop)
    except _Solved:
        pass
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    return f"train() on the CartPole-v1 preset, {updates} updates ({steps:,} steps)\n" + \
        out.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="one short round and one seed, stopped once solved (a smoke test)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="training seeds 0..N-1 (default 5; 1 with --quick)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default=None,
                        help="training dtype (default: the preset's)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (default); wall: elapsed time")
    parser.add_argument("--profile", type=int, metavar="UPDATES", default=None,
                        help="instead of the benchmark, profile train() for this many updates "
                             "with cProfile and print the top entries")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 5)
    if seeds < 1:
        parser.error("--seeds must be >= 1")
    if args.profile is not None:
        print(profile(args.profile, dtype=args.dtype))
        return 0
    result = run(seeds=seeds, quick=args.quick, dtype=args.dtype, clock=args.clock)
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
