"""ppo_ref.plots: mean +- std bands (or IQM with bootstrap bands) across seeds, grouping run folders
by config, `ppo-ref plot`."""
import json
import math

import numpy as np
import pytest

from ppo_ref import plots
from ppo_ref.sweep import write_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
nan = math.nan


def write_run(folder, config, steps, returns, kls):
    """A minimal run folder, written by hand: config.json and metrics.csv."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    lines = ["update,global_step,episodic_return,approx_kl,entropy"]
    for i, (s, r, k) in enumerate(zip(steps, returns, kls)):
        lines.append(f"{i + 1},{s},{r!r},{k!r},0.69")
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_forward_fill_carries_last_value_and_keeps_leading_nans():
    y = np.array([nan, 1.0, nan, nan, 3.0, nan])
    out = plots.forward_fill(y)
    assert np.isnan(out[0])
    assert out[1:].tolist() == [1.0, 1.0, 1.0, 3.0, 3.0]


def test_mean_std_on_shared_steps_is_mean_and_sample_std():
    x = np.array([10.0, 20.0, 30.0])
    grid, mean, std, n = plots.mean_std([(x, np.array([1.0, 2.0, 3.0])),
                                         (x, np.array([3.0, 4.0, 7.0]))])
    assert grid.tolist() == [10.0, 20.0, 30.0]
    assert mean.tolist() == [2.0, 3.0, 5.0]
    # ddof=1 by hand: step 1 sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt(2); step 3 sqrt((4 + 4) / 1)
    np.testing.assert_allclose(std, [math.sqrt(2), math.sqrt(2), math.sqrt(8)], rtol=1e-15)
    assert n.tolist() == [2, 2, 2]


def test_mean_std_skips_nan_runs_and_gives_no_band_for_a_single_value():
    x = np.array([1.0, 2.0])
    _, mean, std, n = plots.mean_std([(x, np.array([nan, 2.0])), (x, np.array([5.0, 4.0]))])
    assert n.tolist() == [1, 2]
    assert mean.tolist() == [5.0, 3.0]
    assert std[0] == 0.0 and std[1] == pytest.approx(math.sqrt(2))


def test_mean_std_interpolates_runs_logged_at_different_steps():
    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))      # y = x
    b = (np.array([0.0, 5.0, 10.0, 15.0]), np.array([0.0, 0.0, 0.0, 0.0]))
    grid, mean, _, _ = plots.mean_std([a, b])
    # common range [0, 15]; the shorter run's steps inside it are 0, 10 (a has 3 points < b's 4)
    assert grid.tolist() == [0.0, 10.0]
    assert mean.tolist() == [0.0, 5.0]


def test_mean_std_rejects_mismatched_x_and_y():
    with pytest.raises(ValueError, match=r"curve 0 .*\(3,\).*\(2,\)"):
        plots.mean_std([(np.zeros(3), np.zeros(2))])


def test_runs_sharing_a_config_except_seed_form_one_group(tmp_path):
    base = {"env_id": "CartPole-v1", "objective": "clip", "lr": 3e-4}
    steps = [128, 256]
    write_run(tmp_path / "a", {**base, "seed": 0}, steps, [10.0, 20.0], [0.01, 0.02])
    write_run(tmp_path / "b", {**base, "seed": 1}, steps, [30.0, 40.0], [0.01, 0.02])
    write_run(tmp_path / "c", {**base, "objective": "unclipped", "seed": 0}, steps, [5.0, 6.0], [0.1, 0.2])
    groups = plots.group_runs(plots.load_runs([tmp_path / "a", tmp_path / "c", tmp_path / "b"]))
    assert sorted(len(runs) for runs in groups.values()) == [1, 2]
    clip_label = next(label for label, runs in groups.items() if len(runs) == 2)
    assert "clip" in clip_label and "seed" not in clip_label


def test_plot_command_writes_a_png_with_the_band_of_the_seeds(tmp_path):
    base = {"env_id": "CartPole-v1", "objective": "clip"}
    steps = [100, 200, 300]
    a = write_run(tmp_path / "s0", {**base, "seed": 0}, steps, [nan, 10.0, 30.0], [0.01, 0.02, 0.03])
    b = write_run(tmp_path / "s1", {**base, "seed": 1}, steps, [4.0, nan, 50.0], [0.03, 0.02, 0.01])
    out = tmp_path / "curves.png"
    drawn = plots.plot_runs([a, b], out)
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    band = next(iter(drawn["episodic_return"].values()))
    # forward-filled by hand: s0 = [nan, 10, 30], s1 = [4, 4, 50] -> means [4, 7, 40]
    assert band["mean"].tolist() == [4.0, 7.0, 40.0]
    assert band["std"][2] == pytest.approx(math.sqrt(200.0))
    assert plots.main([str(a), str(b), "--out", str(tmp_path / "cli.png"),
                       "--metrics", "approx_kl"]) == 0
    assert (tmp_path / "cli.png").read_bytes().startswith(PNG_MAGIC)


def test_plot_command_reads_a_sweep_csv(tmp_path):
    rows = [{"run": r, "seed": s, "env_id": "CartPole-v1", "objective": r, "global_step": g,
             "episodic_return": float(g * (s + 1)), "approx_kl": 0.01}
            for r in ("clip", "unclipped") for s in (0, 1) for g in (64, 128)]
    csv_path = write_csv(rows, tmp_path / "sweep.csv")
    drawn = plots.plot_runs([csv_path], tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").read_bytes().startswith(PNG_MAGIC)
    assert drawn["episodic_return"]["clip"]["mean"].tolist() == [96.0, 192.0]   # (64+128)/2, ...


def test_plot_command_names_the_missing_metric_and_available_columns(tmp_path, capsys):
    a = write_run(tmp_path / "s0", {"env_id": "CartPole-v1", "seed": 0}, [1], [1.0], [0.0])
    with pytest.raises(SystemExit) as exit_info:
        plots.main([str(a), "--out", str(tmp_path / "x.png"), "--metrics", "no_such_metric"])
    assert exit_info.value.code == 2
    assert "approx_kl" in capsys.readouterr().err


def test_moving_average_is_the_trailing_mean_skipping_nans():
    y = np.array([1.0, 3.0, nan, 8.0, 4.0])
    out = plots.moving_average(y, 2)
    # by hand: [1], [1, 3], [3, nan], [nan, 8], [8, 4]
    assert out.tolist() == [1.0, 2.0, 3.0, 8.0, 6.0]
    assert plots.moving_average(y, 1)[3] == 8.0
    assert np.isnan(plots.moving_average(np.array([nan, nan, 2.0]), 2)[1])
    with pytest.raises(ValueError, match="window"):
        plots.moving_average(y, 0)


def test_a_named_metric_that_no_run_has_is_an_error_even_beside_known_ones(tmp_path):
    a = write_run(tmp_path / "s0", {"env_id": "CartPole-v1", "seed": 0}, [1], [1.0], [0.0])
    # used to draw the entropy panel and drop the misspelt name without a word
    with pytest.raises(ValueError, match=r"no run has the metric\(s\) entropyy; they have .*entr"):
        plots.plot_runs([a], tmp_path / "x.png", metrics=["entropyy", "entropy"])
    assert not (tmp_path / "x.png").exists()


def test_no_runs_or_a_file_that_is_not_a_sweep_csv_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="no runs given"):
        plots.plot_runs([], tmp_path / "x.png")
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\nworld\n")
    with pytest.raises(ValueError, match=r"notes.txt: not a run folder or a sweep CSV \(no column "
                                         r"run, seed"):
        plots.plot_runs([junk], tmp_path / "x.png")
    header_only = tmp_path / "empty.csv"
    header_only.write_text("run,seed,env_id,objective,global_step\n")
    with pytest.raises(ValueError, match="empty.csv: a sweep CSV with no rows"):
        plots.plot_runs([header_only], tmp_path / "x.png")


def test_plot_command_missing_run_folder_exits_2_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        plots.main([str(tmp_path / "no_such_run"), "--out", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_run" in err[0]


def test_default_title_claims_mean_and_std_only_when_a_config_has_several_runs():
    one = {"a": [{}]}
    assert plots._default_title(one, 1) == "Learning curves, one run per config (1 run, 1 config)"
    two = {"a": [{}, {}], "b": [{}]}
    assert plots._default_title(two, 5) == ("Learning curves: mean ± std over the seeds of each "
                                            "config (3 runs, 2 configs, each run averaged over "
                                            "its last 5 updates)")


def test_a_save_that_fails_leaves_the_earlier_png_whole_and_no_partial_file(tmp_path, monkeypatch):
    import matplotlib.figure
    run = write_run(tmp_path / "s0", {"env_id": "CartPole-v1", "seed": 0}, [100, 200],
                    [1.0, 2.0], [0.01, 0.02])
    out = tmp_path / "figs" / "curves.png"
    plots.plot_runs([run], out)
    before = out.read_bytes()

    def disk_full(self, fname, **kwargs):     # writes a little, then the disk is full
        if hasattr(fname, "write"):
            fname.write(b"\x89PNG partial")
        else:
            with open(fname, "wb") as f:
                f.write(b"\x89PNG partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", disk_full)
    with pytest.raises(OSError, match="No space left"):
        plots.plot_runs([run], out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["curves.png"]
    with pytest.raises(OSError, match="No space left"):
        plots.plot_runs([run], tmp_path / "figs" / "new.png")
    assert sorted(p.name for p in out.parent.iterdir()) == ["curves.png"]


def test_plot_without_matplotlib_exits_2_naming_the_extra(tmp_path, capsys, monkeypatch):
    # `pip install .` brings no matplotlib: the plot command says what to install, in one line.
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(SystemExit) as exit_info:
        plots.main([str(tmp_path), "--out", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "ppo_ref[plot]" in err and len(err.strip().splitlines()) == 1


def test_runs_of_different_presets_get_short_unique_labels(tmp_path):
    # Configs that differ in many fields would make legend lines wider than the figure: a label
    # names three fields, counts the rest, and numbers the config so groups stay apart.
    a = {"env_id": "CartPole-v1", "objective": "clip", "lr": 1e-3, "gamma": 0.98, "lam": 0.8,
         "num_steps": 32, "seed": 0}
    b = {**a, "num_steps": 64}                                   # differs from a in one field only
    c = {**a, "env_id": "Pendulum-v1", "lr": 3e-4, "gamma": 0.95, "lam": 0.95, "num_steps": 256}
    d = {**c, "seed": 1}                                         # c's second seed
    for name, config in zip("abcd", (a, b, c, d)):
        write_run(tmp_path / name, config, [128, 256], [1.0, 2.0], [0.01, 0.02])
    runs = plots.load_runs([tmp_path / n for n in "abcd"])
    labels = [r["label"] for r in runs]
    assert len(set(labels)) == 3 and labels[2] == labels[3]     # c and d: one config, two seeds
    assert all(max(len(line) for line in label.splitlines()) <= 50 for label in labels)
    assert "more" in labels[0] and labels[0].startswith("[")


def test_a_sweep_csv_with_a_step_that_is_not_a_number_names_the_line_and_column(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_text("run,seed,env_id,objective,global_step,episodic_return\n"
                    "clip,0,CartPole-v1,clip,soon,1.0\n")
    with pytest.raises(ValueError, match="sweep.csv, line 2, column global_step: 'soon'"):
        plots.plot_runs([path], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_a_binary_metrics_csv_is_named(tmp_path):
    run = write_run(tmp_path / "s0", {"env_id": "CartPole-v1", "seed": 0}, [1], [1.0], [0.0])
    (run / "metrics.csv").write_bytes(b"update,global_step\n\xff\xfe\x00\x01")
    with pytest.raises(ValueError, match=r"s0/metrics\.csv.*UTF-8"):
        plots.plot_runs([run], tmp_path / "x.png")


def _trimmed_mean(values):
    """The 25 % trimmed mean written out: sort, drop floor(n/4) from each end, average."""
    v = sorted(values)
    k = len(v) // 4
    kept = v[k:len(v) - k]
    return sum(kept) / len(kept)


def test_iqm_band_is_the_trimmed_mean_of_the_runs_with_a_bootstrap_over_runs():
    x = np.array([10.0, 20.0])
    runs = [[1.0, 5.0], [2.0, 6.0], [3.0, 7.0], [100.0, 8.0]]
    grid, center, low, high, n = plots.iqm_band([(x, np.array(r)) for r in runs], n_boot=50,
                                                rng=np.random.default_rng(3))
    assert grid.tolist() == [10.0, 20.0] and n == 4
    assert center.tolist() == [2.5, 6.5]            # (2 + 3) / 2 and (6 + 7) / 2: 100 dropped
    # the bootstrap by hand: resample the 4 runs 50 times, the trimmed mean of each column,
    # then the 2.5 and 97.5 % quantiles (numpy's linear interpolation)
    rng = np.random.default_rng(3)
    replicates = []
    for _ in range(50):
        idx = rng.integers(0, 4, size=4)
        replicates.append([_trimmed_mean([runs[i][j] for i in idx]) for j in range(2)])
    want_low, want_high = np.quantile(np.array(replicates), [0.025, 0.975], axis=0)
    assert low.tolist() == pytest.approx(want_low.tolist())
    assert high.tolist() == pytest.approx(want_high.tolist())


def test_iqm_band_of_identical_runs_has_no_width_and_leaves_out_steps_a_run_lacks():
    x = np.array([1.0, 2.0, 3.0])
    grid, center, low, high, n = plots.iqm_band([(x, np.array([nan, 4.0, 4.0]))] * 3, n_boot=20)
    assert grid.tolist() == [2.0, 3.0] and center.tolist() == [4.0, 4.0]
    assert low.tolist() == high.tolist() == [4.0, 4.0]


def test_plot_command_with_ci_draws_iqm_bands_and_says_so(tmp_path):
    rows = [{"run": "clip", "seed": s, "env_id": "CartPole-v1", "objective": "clip",
             "global_step": g, "episodic_return": float(g + [0, 1, 2, 300][s])}
            for s in range(4) for g in (64, 128)]
    csv_path = write_csv(rows, tmp_path / "sweep.csv")
    drawn = plots.plot_runs([csv_path], tmp_path / "ci.png", ci=True, n_boot=30)
    band = drawn["episodic_return"]["clip"]
    assert band["iqm"].tolist() == [65.5, 129.5]     # seeds 1 and 2 kept: g + 1, g + 2
    assert np.all(band["low"] <= band["iqm"]) and np.all(band["iqm"] <= band["high"])
    assert plots.main([str(csv_path), "--out", str(tmp_path / "cli.png"), "--ci",
                       "--n-boot", "20"]) == 0
    assert (tmp_path / "cli.png").read_bytes().startswith(PNG_MAGIC)
    assert "IQM" in plots._default_title({"a": [{}, {}]}, 1, ci=True)
