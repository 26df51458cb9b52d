"""ppo_ref.sweep: a (config x seed) grid on any concurrent.futures.Executor, gathered into one CSV."""
import dataclasses
import math
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from ppo_ref import sweep


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    env_id: str = "Fake-v0"
    objective: str = "clip"
    scale: float = 1.0


def fake_job(config, seed):
    """Picklable stand-in for training: three updates whose numbers are easy to check by hand."""
    return [{"global_step": 10 * (k + 1), "episodic_return": config.scale * seed + k,
             "approx_kl": math.nan if k == 0 else 0.5 * k} for k in range(3)]


def test_grid_is_every_config_with_every_seed_configs_outermost():
    a, b = FakeConfig(objective="clip"), FakeConfig(objective="unclipped")
    grid = sweep.make_grid([a, b], seeds=[3, 4])
    assert [(j.run, j.seed) for j in grid] == [("Fake-v0/clip", 3), ("Fake-v0/clip", 4),
                                               ("Fake-v0/unclipped", 3), ("Fake-v0/unclipped", 4)]
    assert grid[2].config is b


def test_grid_rejects_empty_seeds_and_repeated_names():
    with pytest.raises(ValueError, match="seeds"):
        sweep.make_grid({"x": FakeConfig()}, seeds=[])
    with pytest.raises(ValueError, match=r"configs\[1\].*Fake-v0/clip"):
        sweep.make_grid([FakeConfig(), FakeConfig(scale=2.0)], seeds=[0])


def test_rows_follow_grid_order_not_completion_order():
    # seed 0's job waits until seed 1's job has finished, so completion order is 1, 0.
    done_1 = threading.Event()

    def job(config, seed):
        if seed == 0:
            assert done_1.wait(timeout=30)
        history = fake_job(config, seed)
        if seed == 1:
            done_1.set()
        return history

    with ThreadPoolExecutor(max_workers=2) as pool:
        rows = sweep.run_sweep({"x": FakeConfig()}, seeds=[0, 1], executor=pool, job=job)
    assert [(r["seed"], r["global_step"]) for r in rows] == [
        (0, 10), (0, 20), (0, 30), (1, 10), (1, 20), (1, 30)]
    assert rows[4] == {"run": "x", "seed": 1, "env_id": "Fake-v0", "objective": "clip",
                       "global_step": 20, "episodic_return": 2.0, "approx_kl": 0.5}


def test_csv_is_long_format_and_round_trips_floats_exactly(tmp_path):
    rows = sweep.run_sweep({"a": FakeConfig(scale=0.1), "b": FakeConfig(objective="unclipped")},
                           seeds=[7], executor=ThreadPoolExecutor(1), job=fake_job,
                           csv_path=tmp_path / "sweep.csv")
    header = (tmp_path / "sweep.csv").read_text().splitlines()[0]
    assert header == "run,seed,env_id,objective,global_step,approx_kl,episodic_return"
    back = sweep.read_csv(tmp_path / "sweep.csv")
    assert len(back) == len(rows) == 6
    assert back[1]["episodic_return"] == 0.1 * 7 + 1          # bit-identical after the round trip
    assert math.isnan(back[0]["approx_kl"]) and back[3]["objective"] == "unclipped"
    assert back[3]["seed"] == 7 and isinstance(back[3]["seed"], int)


def test_history_without_global_step_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"run 'x' seed 0: history\[0\] has no 'global_step'"):
        sweep.run_sweep({"x": FakeConfig()}, seeds=[0], executor=ThreadPoolExecutor(1),
                        job=lambda config, seed: [{"step": 1}])


def test_default_executor_is_a_process_pool():
    rows = sweep.run_sweep({"x": FakeConfig()}, seeds=[0, 1], job=fake_job)
    assert [r["episodic_return"] for r in rows] == [0.0, 1.0, 2.0, 1.0, 2.0, 3.0]


def tiny_config():
    from ppo_ref.train.trainer import PRESETS
    return dataclasses.replace(PRESETS["CartPole-v1"], total_steps=256, num_envs=2, num_steps=64,
                               num_minibatches=2, update_epochs=1)


def test_process_pool_of_two_reproduces_serial_training_bit_for_bit():
    from ppo_ref.train.trainer import train
    from ppo_ref.train.runs import TIMING_COLUMNS

    config = tiny_config()
    configs = {"clip": config, "unclipped": dataclasses.replace(config, objective="unclipped")}
    with ProcessPoolExecutor(max_workers=2) as pool:
        rows = sweep.run_sweep(configs, seeds=[0, 1], executor=pool)
    assert [r["objective"] for r in rows if r["seed"] == 1][-1] == "unclipped"
    for name, cfg in configs.items():
        for seed in (0, 1):
            serial = train(dataclasses.replace(cfg, seed=seed)).history
            swept = [r for r in rows if r["run"] == name and r["seed"] == seed]
            assert len(swept) == len(serial) == 2     # 256 steps / (2 envs x 64 steps)
            for got, want in zip(swept, serial):
                for key, value in want.items():
                    if key in TIMING_COLUMNS:
                        continue
                    assert got[key] == value or (math.isnan(got[key]) and math.isnan(value)), key


def test_grid_rejects_a_non_integer_or_repeated_seed_naming_its_index():
    # int(1.5) would silently have run seed 1; a repeated seed would merge two runs in the CSV
    with pytest.raises(TypeError, match=r"seeds\[1\] must be an integer, got 1.5"):
        sweep.make_grid({"x": FakeConfig()}, seeds=[0, 1.5])
    with pytest.raises(ValueError, match=r"seeds\[2\] repeats the seed 0"):
        sweep.make_grid({"x": FakeConfig()}, seeds=[0, 1, 0])


def test_default_pool_is_sized_to_the_cores_this_process_may_use():
    import os
    n = sweep.usable_cores()
    assert 1 <= n <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert n == len(os.sched_getaffinity(0))


HEADER = "run,seed,env_id,objective,global_step,episodic_return\n"


@pytest.mark.parametrize("row, words", [
    ("clip,0,Fake-v0,clip,many,1.0", "line 3, column global_step: 'many', not a number"),
    ("clip,zero,Fake-v0,clip,20,1.0", "line 3, column seed: 'zero', not an integer"),
    ("clip,0,Fake-v0,clip", "line 3, column global_step: missing"),
    ("clip,0,Fake-v0,clip,20,1.0,7", "line 3: 7 cells, the header has 6"),
])
def test_a_bad_cell_names_the_file_line_and_column(tmp_path, row, words):
    path = tmp_path / "sweep.csv"
    path.write_text(HEADER + "clip,0,Fake-v0,clip,10,0.5\n" + row + "\n")
    with pytest.raises(ValueError, match=f"sweep.csv, {words}"):
        sweep.read_csv(path)


def test_a_binary_file_is_named_not_a_decode_error(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_bytes(HEADER.encode() + b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match="sweep.csv: not UTF-8 text"):
        sweep.read_csv(path)


def test_a_metric_that_is_not_a_number_stays_text_and_an_empty_one_is_nan(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_text(HEADER.replace("\n", ",note\n") + "clip,0,Fake-v0,clip,10,,warm-up\n")
    [row] = sweep.read_csv(path)
    assert row["seed"] == 0 and row["global_step"] == 10.0 and row["note"] == "warm-up"
    assert math.isnan(row["episodic_return"])


# ----- a sweep kept in a folder survives interruption --------------------------------------------

def test_a_rerun_into_the_same_folder_runs_only_the_cells_not_finished(tmp_path):
    calls = []

    def counting_job(config, seed, run_dir):
        calls.append((seed, run_dir.name))
        return fake_job(config, seed)

    first = sweep.run_sweep({"x": FakeConfig()}, seeds=[0, 1], executor=ThreadPoolExecutor(1),
                            job=counting_job, out_dir=tmp_path)
    assert sorted(calls) == [(0, "seed_0"), (1, "seed_1")]
    (tmp_path / "x" / "seed_1.csv").unlink()          # as if the sweep had died during seed 1
    calls.clear()
    again = sweep.run_sweep({"x": FakeConfig()}, seeds=[0, 1], executor=ThreadPoolExecutor(1),
                            job=counting_job, out_dir=tmp_path)
    assert calls == [(1, "seed_1")]
    assert repr(again) == repr(first)                  # repr: nan == nan
    assert again[1] == {"run": "x", "seed": 0, "env_id": "Fake-v0", "objective": "clip",
                        "global_step": 20.0, "episodic_return": 1.0, "approx_kl": 0.5}


def test_a_failing_cell_does_not_stop_the_others_and_is_named(tmp_path):
    def job(config, seed, run_dir):
        if seed == 1:
            raise OSError("disk on fire")
        return fake_job(config, seed)

    with pytest.raises(RuntimeError, match=r"1 of 3 runs failed.*run 'x' seed 1.*disk on fire"):
        sweep.run_sweep({"x": FakeConfig()}, seeds=[0, 1, 2], executor=ThreadPoolExecutor(1),
                        job=job, out_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "x").glob("*.csv")) == ["seed_0.csv", "seed_2.csv"]


def test_a_rerun_with_another_config_under_the_same_name_is_refused(tmp_path):
    sweep.run_sweep({"x": FakeConfig()}, seeds=[0], executor=ThreadPoolExecutor(1), job=fake_job3,
                    out_dir=tmp_path)
    with pytest.raises(ValueError, match="run 'x'.*another config"):
        sweep.run_sweep({"x": FakeConfig(scale=2.0)}, seeds=[0], executor=ThreadPoolExecutor(1),
                        job=fake_job3, out_dir=tmp_path)


def test_run_names_become_one_folder_each_and_a_clash_is_refused(tmp_path):
    run_dir, rows = sweep.cell_paths(tmp_path, "CartPole-v1/clip", 3)
    assert run_dir == tmp_path / "CartPole-v1_clip" / "seed_3"
    assert rows == tmp_path / "CartPole-v1_clip" / "seed_3.csv"
    with pytest.raises(ValueError, match="'a/b' and 'a_b' share the folder"):
        sweep.run_sweep({"a/b": FakeConfig(), "a_b": FakeConfig()}, seeds=[0],
                        executor=ThreadPoolExecutor(1), job=fake_job3, out_dir=tmp_path)


def fake_job3(config, seed, run_dir):
    return fake_job(config, seed)


def test_eta_is_elapsed_over_finished_times_remaining():
    assert sweep.eta_seconds(elapsed=30.0, finished_now=3, remaining=5) == 50.0
    assert math.isnan(sweep.eta_seconds(elapsed=4.0, finished_now=0, remaining=2))
    assert sweep.eta_seconds(elapsed=4.0, finished_now=0, remaining=0) == 0.0
    assert [sweep.format_duration(s) for s in (6.2, 245, 3723, math.nan)] == [
        "6s", "4m05s", "1h02m03s", "?"]


def test_progress_line_counts_runs_done_of_the_total(tmp_path):
    import io
    out = io.StringIO()
    sweep.run_sweep({"x": FakeConfig()}, seeds=[0, 1], executor=ThreadPoolExecutor(1),
                    job=fake_job3, out_dir=tmp_path, progress=True, stream=out)
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["sweep: 1/2 runs done", "sweep: 2/2 runs done"]
    assert lines[-1].endswith("ETA 0s")
    (tmp_path / "x" / "seed_1.csv").unlink()
    out = io.StringIO()
    sweep.run_sweep({"x": FakeConfig()}, seeds=[0, 1], executor=ThreadPoolExecutor(1),
                    job=fake_job3, out_dir=tmp_path, progress=True, stream=out)
    assert out.getvalue().splitlines()[0].startswith("sweep: 1/2 runs done (1 done earlier)")


class Stop(Exception):
    pass


def interrupted_job(config, seed, run_dir):
    """Seed 1 is killed after its second update (its checkpoint of update 1 on disk, the row of
    update 2 logged after it); the other seeds train to the end."""
    from ppo_ref.train.trainer import train

    if seed != 1:
        return sweep.train_history(config, seed, run_dir)

    def stop(row):
        if row["update"] == 2:
            raise Stop
    train(dataclasses.replace(config, seed=seed), out_dir=run_dir, callback=stop)


def test_a_killed_sweep_resumed_gives_the_rows_of_an_uninterrupted_one(tmp_path):
    from ppo_ref.train.runs import TIMING_COLUMNS

    config = dataclasses.replace(tiny_config(), total_steps=384, checkpoint_every=1,
                                 eval_episodes=1)
    configs = {"clip": config}
    whole = sweep.run_sweep(configs, seeds=[0, 1], executor=ThreadPoolExecutor(1),
                            out_dir=tmp_path / "whole")
    with pytest.raises(RuntimeError, match="run 'clip' seed 1.*Stop"):
        sweep.run_sweep(configs, seeds=[0, 1], executor=ThreadPoolExecutor(1),
                        job=interrupted_job, out_dir=tmp_path / "killed")
    assert (tmp_path / "killed" / "clip" / "seed_1" / "checkpoints").is_dir()
    resumed = sweep.run_sweep(configs, seeds=[0, 1], executor=ThreadPoolExecutor(1),
                              out_dir=tmp_path / "killed")
    assert len(resumed) == len(whole) == 6               # 384 steps / 128 per update, 2 seeds
    for got, want in zip(resumed, whole):
        assert got.keys() == want.keys()
        for key in got.keys() - set(TIMING_COLUMNS):
            assert got[key] == want[key] or (math.isnan(got[key]) and math.isnan(want[key])), key


def test_a_sweep_runs_on_a_dask_cluster_through_its_executor_bit_for_bit(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    from ppo_ref.train.runs import TIMING_COLUMNS
    from ppo_ref.train.trainer import train

    config = tiny_config()
    # in-process workers keep the test fast; a real cluster is Client("tcp://scheduler:8786")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        rows = sweep.run_sweep({"clip": config}, seeds=[0, 1], executor=client.get_executor(),
                               out_dir=tmp_path)
    for seed in (0, 1):
        serial = train(dataclasses.replace(config, seed=seed)).history
        swept = [r for r in rows if r["seed"] == seed]
        assert len(swept) == len(serial) == 2
        for got, want in zip(swept, serial):
            for key in want.keys() - set(TIMING_COLUMNS):
                assert got[key] == want[key] or (math.isnan(got[key]) and math.isnan(want[key]))


def test_a_config_need_not_be_hashable():
    rows = sweep.run_sweep({"x": {"scale": 2.0}}, seeds=[3], executor=ThreadPoolExecutor(1),
                           job=lambda config, seed: [{"global_step": 1, "y": config["scale"] * seed}])
    assert rows == [{"run": "x", "seed": 3, "env_id": "", "objective": "", "global_step": 1,
                     "y": 6.0}]


def test_an_interrupted_sweep_does_not_start_its_queued_jobs(tmp_path):
    started = []

    def job(config, seed, run_dir):
        started.append(seed)
        if seed == 0:
            raise KeyboardInterrupt       # as Ctrl-C arriving while the first run trains
        return fake_job(config, seed)

    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep({"x": FakeConfig()}, seeds=range(5), executor=ThreadPoolExecutor(1),
                        job=job, out_dir=tmp_path)
    assert started == [0]
