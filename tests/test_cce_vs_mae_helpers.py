"""The chapter "CCE vs MAE in practice": Fig. 1(b)'s two numbers (Sec. 3.2) from stored runs."""

import numpy as np
import pandas as pd
import pytest

from gce.book import analysis, experiments


def _frames(curves: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs/history tables from {run_id: (dataset, method, seed, test_acc list)}."""
    runs = pd.DataFrame([{"run_id": rid, "dataset": d, "method": m, "seed": s}
                         for rid, (d, m, s, _) in curves.items()])
    hist = pd.DataFrame([{"run_id": rid, "epoch": e + 1, "test_acc": a}
                         for rid, (_, _, _, acc) in curves.items() for e, a in enumerate(acc)])
    return runs, hist


CURVES = {
    "c0": ("pairs", "cce", 0, [0.10, 0.30, 0.50, 0.60, 0.62]),
    "m0": ("pairs", "mae", 0, [0.02, 0.05, 0.20, 0.40, 0.35]),   # best 0.40 at epoch 4: CCE gets there at 3
    "c1": ("pairs", "cce", 1, [0.10, 0.20, 0.30, 0.45, 0.50]),
    "m1": ("pairs", "mae", 1, [0.02, 0.10, 0.30, 0.52, 0.55]),   # best 0.55: CCE never gets there
    "c2": ("digits", "cce", 0, [0.80, 0.95, 0.97]),
    "m2": ("digits", "mae", 0, [0.50, 0.90, 0.96]),
}


def test_mae_catch_up_pairs_seeds_and_finds_the_first_epoch_at_maes_best():
    runs, hist = _frames(CURVES)
    per = analysis.mae_catch_up(runs, hist).set_index(["dataset", "seed"])
    assert len(per) == 3
    row = per.loc[("pairs", 0)]
    assert row["mae_best"] == 0.40 and row["mae_best_epoch"] == 4 and row["mae_epochs"] == 5
    assert row["cce_epoch"] == 3 and row["cce_at"] == 0.50 and row["cce_best"] == 0.62
    never = per.loc[("pairs", 1)]
    assert np.isnan(never["cce_epoch"]) and np.isnan(never["cce_at"])
    assert per.loc[("digits", 0), "cce_epoch"] == 3     # 0.97 >= 0.96 only at the last epoch


def test_mae_catch_up_rejects_what_it_cannot_pair():
    runs, hist = _frames(CURVES)
    with pytest.raises(ValueError, match="no column"):
        analysis.mae_catch_up(runs.drop(columns="seed"), hist)
    with pytest.raises(ValueError, match="several runs"):
        analysis.mae_catch_up(pd.concat([runs, runs.assign(run_id="x")]), hist)
    with pytest.raises(ValueError, match="no CCE or MAE"):
        analysis.mae_catch_up(runs.assign(method="lq"), hist)
    with pytest.raises(ValueError, match="both a CCE and an MAE"):
        analysis.mae_catch_up(runs[runs["method"] == "cce"], hist)


def test_fig1b_beside_paper_puts_ours_under_the_papers_numbers():
    runs, hist = _frames(CURVES)
    t = analysis.fig1b_beside_paper(runs, hist, "pairs")
    assert list(t["source"]) == ["paper", "paper", "ours", "ours"]
    paper = experiments.paper_fig1b()
    np.testing.assert_allclose(t["best_test_acc"][:2], paper["best_test_acc"])
    np.testing.assert_allclose(t["epochs"][:2], paper["epochs"])
    ours = t[t["source"] == "ours"].set_index("method")
    # MAE: mean best over both seeds; CCE: only seed 0 reaches its seed's MAE best (at epoch 3, 50 %)
    assert ours.loc["mae", "best_test_acc"] == pytest.approx(47.5) and ours.loc["mae", "epochs"] == 5
    assert ours.loc["cce", "best_test_acc"] == pytest.approx(50.0) and ours.loc["cce", "epochs"] == 3
    assert ours.loc["cce", "seeds"] == 1 and ours.loc["mae", "seeds"] == 2
    assert "1 of 2 seeds" in ours.loc["cce", "note"]
    assert t["best_test_acc"].dtype == float and t["epochs"].dtype == float


def test_largest_gap_finds_the_epoch_where_the_mean_curves_are_furthest_apart():
    runs, hist = _frames(CURVES)
    pairs = runs[runs["dataset"] == "pairs"]
    g = analysis.largest_gap(pairs, hist)
    # means per epoch: CCE 0.10 0.25 0.40 0.525 0.56; MAE 0.02 0.075 0.25 0.46 0.45
    assert g["epoch"] == 2 and g["cce"] == pytest.approx(0.25) and g["mae"] == pytest.approx(0.075)
    assert g["gap"] == pytest.approx(0.175)
    with pytest.raises(ValueError, match="method='mae'"):
        analysis.largest_gap(pairs[pairs["method"] == "cce"], hist)


def test_same_trajectory_is_the_largest_difference_below_the_tolerance():
    from gce.book.chapters import cce_vs_mae as ch

    a = np.zeros((5, 4))
    b = a.copy()
    b[3, 2] = 1e-6
    assert ch.same_trajectory(a, b, 1e-5) and not ch.same_trajectory(a, b, 1e-6)
    sgd = analysis.short_trajectory("mae", "sgd", 0.05)  # MAE at lr a is the unhinged loss at 2a (Eq. 4)
    assert ch.same_trajectory(sgd, analysis.short_trajectory("unhinged", "sgd", 0.1), 1e-12)
    assert not ch.same_trajectory(sgd, analysis.short_trajectory("unhinged", "sgd", 0.05), 1e-3)
    with pytest.raises(ValueError, match=r"\(5, 4\) and \(5, 3\)"):
        ch.same_trajectory(a, a[:, :3], 1.0)
    with pytest.raises(ValueError, match="tol"):
        ch.same_trajectory(a, a, -1.0)


def test_format_beside_shows_whole_numbers_bare_and_missing_ones_as_a_dash():
    from gce.book.chapters import cce_vs_mae as ch

    beside = pd.DataFrame({"source": ["paper", "ours", "ours"], "method": ["cce", "cce", "mae"],
                           "best_test_acc": [39.92, np.nan, 89.475], "epochs": [7, np.nan, 12.25]})
    text = ch.format_beside(beside)
    assert text["best_test_acc"].tolist() == ["39.92", "-", "89.48"]   # round half up, as the tables
    assert text["epochs"].tolist() == ["7", "-", "12.2"]
    assert beside["epochs"].iloc[0] == 7  # the numbers stay numbers in the table passed in
    with pytest.raises(ValueError, match="epochs"):
        ch.format_beside(beside.drop(columns="epochs"))
