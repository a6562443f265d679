"""The appendix page "The cpu scale" (gce.book.chapters.cpu_scale): tables, figure and texts from the benchmarks' JSON."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gce.book import plots
from gce.book.chapters import cpu_scale


def _candidate(clean: float, curve_top: float, cpu_s: float, with_lr: bool = True) -> dict:
    curve = list(np.linspace(0.1, curve_top, 120))
    out = {"clean": {"test_acc_best_val": clean, "test_acc_last": clean - 0.01},
           "memorise": {"train_acc": curve, "final_train_acc": curve[-1]},
           "timing": {"s_per_run_epoch_1": [2.0, 1.5], "s_per_run_epoch_2": [4.0],
                      "cpu_s_per_run_epoch_1": [cpu_s + 0.1, cpu_s], "load": [3.0, 2.0, 1.0]}}
    if with_lr:
        out["lr"] = {f"{lr}/{m}": {"val_acc": [0.5 + 0.001 * e for e in range(40)], "gain_30_to_40": gain,
                                   "plateau": gain < 0.01}
                     for lr, gain in ((0.01, 0.02), (0.1, 0.002)) for m in ("cce", "mae", "lq")}
    return out


def _measurement() -> dict:
    return {"features": _candidate(0.70, 0.6, 0.2), "pixels16": _candidate(0.50, 0.3, 0.6, with_lr=False),
            "grid_run_epochs": {"table1": 1000.0, "fig2": 200.0},
            "encode": {"images": 100, "seconds_1_thread": [3.0, 2.0], "seconds_2_threads": [5.0],
                       "cpu_seconds_1_thread": [0.2, 0.1], "load": [4.0, 1.0, 1.0]}}


def test_candidates_table_keeps_numbers_and_applies_the_criteria():
    t = cpu_scale.candidates_table(_measurement())
    assert list(t.index) == ["features", "pixels16"]
    assert t.loc["features", "clean_best_val"] == pytest.approx(0.70)
    assert t.loc["features", "random_40"] == pytest.approx(np.linspace(0.1, 0.6, 120)[39])
    assert t.loc["features", "cpu_s_per_run_epoch"] == pytest.approx(0.2)  # the best reading
    assert t.loc["features", "grid_minutes"] == pytest.approx(1200 * 0.2 / cpu_scale.CORES / 60)
    assert bool(t.loc["features", "passes_accuracy"]) and not bool(t.loc["pixels16", "passes_accuracy"])
    assert bool(t.loc["features", "passes_budget"])
    shown = cpu_scale.format_candidates(t)
    assert shown.loc["features", "clean"] == 70.0 and shown.loc["pixels16", "(a)"] == "no"


def test_choose_takes_the_candidate_that_memorises_most_among_those_within_both_limits():
    res = _measurement()
    res["features_h128"] = _candidate(0.66, 0.4, 0.1)
    res["features_pca128_h128"] = _candidate(0.64, 0.5, 0.05)  # memorises more, fails (a)
    t = cpu_scale.candidates_table(res, run_epochs=1200)
    assert cpu_scale.choose(t) == "features"  # 0.6 of random labels, within (a) and (c)
    slow = cpu_scale.candidates_table(res, run_epochs=50_000)  # features 83 minutes, features_h128 42
    assert not slow.loc["features", "passes_budget"] and slow.loc["features_h128", "passes_budget"]
    assert cpu_scale.choose(slow) == "features_h128"
    res["features_h128"]["memorise"] = res["features"]["memorise"]  # a tie: the higher clean accuracy
    assert cpu_scale.choose(cpu_scale.candidates_table(res, run_epochs=1200)) == "features"
    assert cpu_scale.choose(cpu_scale.candidates_table(res, run_epochs=1e9)) is None


def test_grid_run_epochs_count_the_current_grid_and_replace_the_measured_count():
    from gce.book import cpu_scale as scale

    counts = cpu_scale.grid_run_epochs()
    assert set(counts) == set(scale.EXPERIMENTS)
    assert counts["table1"] == sum(c.epochs for c in scale.cpu_configs("table1"))
    assert counts["table2"] == sum(c.epochs for c in scale.cpu_configs("table2")) / 2
    t = cpu_scale.candidates_table(_measurement(), run_epochs=600)
    assert t.loc["features", "grid_minutes"] == pytest.approx(600 * 0.2 / cpu_scale.CORES / 60)
    assert cpu_scale.measured_run_epochs(_measurement()) == 1200


def test_candidates_table_leaves_unmeasured_phases_empty_and_names_a_wrong_file():
    res = _measurement()
    del res["pixels16"]["memorise"]
    t = cpu_scale.candidates_table(res)
    assert np.isnan(t.loc["pixels16", "random_120"])
    with pytest.raises(ValueError, match="cpu_candidates.json"):
        cpu_scale.candidates_table({"grid_run_epochs": {"x": 1}})
    with pytest.raises(ValueError, match="grid_run_epochs"):
        cpu_scale.candidates_table({"features": {}})
    with pytest.raises(ValueError, match="candidates_table"):
        cpu_scale.format_candidates(t.drop(columns="grid_minutes"))


def test_lr_table_reads_every_rate_and_the_plateau_rule():
    t = cpu_scale.lr_table(_measurement())
    assert list(t.index) == [("features", 0.01), ("features", 0.1)]
    assert not t.loc[("features", 0.01), "plateau"] and t.loc[("features", 0.1), "plateau"]
    assert t.loc[("features", 0.1), "val40_mae"] == pytest.approx(0.539)
    shown = cpu_scale.format_lr(t)
    assert shown.loc[("features", 0.01), "CCE +"] == 2.0
    assert list(shown["plateau"]) == ["no", "yes"]
    res = _measurement()
    del res["features"]["lr"]["0.1/mae"]
    with pytest.raises(ValueError, match="lr=0.1"):
        cpu_scale.lr_table(res)


def test_memorisation_figure_draws_each_candidate_in_percent_legibly():
    plots.use_book_style()
    try:
        fig = cpu_scale.plot_memorisation(_measurement())
        lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith(("features", "pixels16"))]
        assert len(lines) == 2
        np.testing.assert_allclose(lines[0].get_ydata(), 100 * np.linspace(0.1, 0.6, 120))
        px, text = plots.smallest_text_px(fig)
        assert px >= plots.MIN_TEXT_PX, text
        assert fig.get_size_inches()[0] <= plots.FIG_WIDTH
    finally:
        plt.close("all")


def test_threads_summary_takes_the_fastest_readings():
    s = cpu_scale.threads_summary(_measurement())
    assert (s["encode_s_1"], s["encode_s_2"], s["head_s_1"], s["head_cpu_s_1"]) == (2.0, 5.0, 1.5, 0.2)
    assert (s["encode_load"], s["head_load"], s["head_two_processes_s"]) == (4.0, 3.0, 1.5 / cpu_scale.CORES)
    with pytest.raises(ValueError, match="threads"):
        cpu_scale.threads_summary({"features": {}})


def _grid(mode: str = "full") -> dict:
    return {"mode": mode, "peak_gflops": 100.0, "fraction_of_peak": 0.5, "loop_speedup": 4.0,
            "loop_sliced_speedup": 2.0, "engine": {"runs": 16, "gflops": 50.0, "s_per_run_epoch": 0.25},
            "loop": {"s_per_run_epoch": 1.0}, "projected_minutes_two_cores": {"paper_grid": 52.0},
            "load_at_start": [1.0, 1, 1], "load_at_end": [1.5, 1, 1], "cpu_model": "a CPU", "torch_version": "2",
            "date": "2026-12-06T07:00:00Z", "data": "random features"}


def test_speed_text_says_not_measured_until_a_full_run_exists():
    for grid in (None, _grid("quick")):
        assert cpu_scale.speed_summary(grid) is None
        assert cpu_scale.speed_text(grid).startswith("Not measured yet")
    text = cpu_scale.speed_text(_grid())
    assert "50 % of the peak" in text and "4.0 times faster" in text and "52 minutes" in text


def test_benchmark_files_are_found_in_a_checkout_and_absent_elsewhere(tmp_path):
    assert cpu_scale.load_benchmark(cpu_scale.CANDIDATES_FILE, tmp_path) is None
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / cpu_scale.GRID_FILE).write_text(json.dumps(_grid()))
    assert cpu_scale.load_benchmark(cpu_scale.GRID_FILE, tmp_path)["engine"]["runs"] == 16
    committed = cpu_scale.load_benchmark(cpu_scale.CANDIDATES_FILE)  # this checkout's measurement
    assert committed is not None and "features" in cpu_scale.candidates_table(committed).index


def test_rebuild_summary_splits_the_papers_part_from_the_later_losses():
    from gce.book.chapters import cpu_scale as page

    assert page.rebuild_summary(None) is None
    rec = {"cores": 2, "date": "2026-12-06", "steps": [
        {"experiments": ["table1"], "wall_s": 600, "cpu_s": 1200, "load_start": [2, 0, 0], "load_end": [3, 0, 0]},
        {"experiments": ["fig1", "fig2"], "wall_s": 300, "cpu_s": 600, "load_start": [4, 0, 0], "load_end": [2, 0, 0]},
        {"experiments": ["later"], "wall_s": 120, "cpu_s": 240, "load_start": [1, 0, 0], "load_end": [1, 0, 0]}]}
    s = page.rebuild_summary(rec)
    assert s["paper"]["wall_minutes"] == 15 and s["paper"]["cpu_minutes"] == 30 and s["paper"]["idle_minutes"] == 15
    assert (s["paper"]["load_min"], s["paper"]["load_max"]) == (2, 4) and s["paper"]["within_budget"]
    assert s["later"]["idle_minutes"] == 2


def test_format_step_is_two_short_lines():
    from gce.book.chapters import cpu_scale as page

    step = {"command": "python -m gce reproduce later --scale cpu --jobs 2", "wall_s": 90, "cpu_s": 180,
            "load_start": [2.0, 0, 0], "load_end": [2.5, 0, 0]}
    assert page.format_step(step) == ("python -m gce reproduce later --scale cpu --jobs 2\n"
                                      "    1.5 min wall, 3.0 CPU-min, load average 2.0 -> 2.5")


def test_overlapping_steps_take_the_records_wall_time_and_later_text_says_what_is_missing():
    from gce.book.chapters import cpu_scale as page

    rec = {"cores": 2, "date": "2026-12-06", "paper_wall_s": 1200, "steps": [
        {"experiments": ["table1"], "wall_s": 900, "cpu_s": 1800, "load_start": [2, 0, 0], "load_end": [3, 0, 0]},
        {"experiments": ["fig2"], "wall_s": 600, "cpu_s": 600, "load_start": [4, 0, 0], "load_end": [2, 0, 0]}]}
    s = page.rebuild_summary(rec)
    assert s["paper"]["wall_minutes"] == 20 and s["paper"]["idle_minutes"] == 20
    assert "not trained yet" in page.later_text(s)
