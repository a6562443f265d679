"""Tables as numbers (gce.book.analysis): rounding, display formatting, markdown, and the chapters' summaries."""

import numpy as np
import pandas as pd
import pytest

from gce.book import analysis, experiments


def _runs(rows):
    return pd.DataFrame(rows)


def test_round_pct_rounds_half_up_from_the_repr():
    assert analysis.round_pct(83.005) == 83.01  # float 83.005 is 83.00499999..., the repr decides
    assert analysis.round_pct(83.00499) == 83.0
    assert analysis.round_pct(-1.125) == -1.13
    assert np.isnan(analysis.round_pct(float("nan")))
    with pytest.raises(ValueError, match="digits"):
        analysis.round_pct(1.0, -1)


def test_table1_wide_is_numbers_in_the_order_of_the_grid():
    rows = [dict(dataset="digits", noise=n, eta=e, method=m, seed=s, test_acc_best_val=0.5 + 0.01 * s + 0.1 * i,
                 flip_rate_train=e)
            for i, m in enumerate(("lq", "cce")) for n, e in (("class_dependent", 0.2), ("uniform", 0.4))
            for s in range(3)]
    wide = analysis.table1_wide(_runs(rows))
    assert wide.columns.names == ["setting", "stat"] and set(wide.columns.get_level_values("stat")) == {"mean", "std"}
    settings = list(dict.fromkeys(wide.columns.get_level_values("setting")))
    assert settings[:2] == ["uniform 0.2", "uniform 0.4"]  # from experiments.TABLE1_NOISE, not from the data
    assert all(wide.dtypes == float)
    ours = wide.loc["ours (digits)"]
    assert list(ours.index) == ["CCE", "Lq"]  # the order of experiments.TABLE1_METHODS
    assert ours.loc["Lq", ("uniform 0.4", "mean")] == pytest.approx(51.0)
    assert ours.loc["Lq", ("uniform 0.4", "std")] == pytest.approx(1.0)
    assert np.isnan(ours.loc["Lq", ("uniform 0.2", "mean")])  # not run: NaN, not a string
    assert "paper (cifar10)" in wide.index.get_level_values("source")
    s = analysis.summarize_table1(_runs(rows))
    np.testing.assert_allclose(s["sem"], s["std"] / np.sqrt(3))


def test_format_pm_and_markdown_share_one_rounding():
    cols = pd.MultiIndex.from_product([["a"], ["mean", "std"]], names=["setting", "stat"])
    idx = pd.MultiIndex.from_tuples([("ours", "CCE"), ("paper", "MAE"), ("paper", "Lq")], names=["source", "method"])
    t = pd.DataFrame([[83.005, 8.7], [71.1, np.nan], [np.nan, np.nan]], index=idx, columns=cols)
    text = analysis.format_pm(t)
    assert text["a"].tolist() == ["83.01 ± 8.70", "71.10", ""]
    md = analysis.markdown_table(t)
    assert "83.01 ± 8.70" in md and "71.10" in md and "('" not in md and "| source" in md
    assert analysis.format_pm(pd.DataFrame({"x": [1.005, np.nan]}))["x"].tolist() == ["1.01", ""]


def test_table2_wide_is_numbers_with_the_papers_column():
    rows = [dict(noise=n, method=m, seed=s, test_acc_last=0.9 - 0.1 * i + 0.01 * s)
            for n in ("open_set", "uniform") for i, m in enumerate(experiments.TABLE2_METHODS) for s in range(2)]
    t = analysis.table2_wide(_runs(rows))
    assert t.columns.names == ["source", "stat"]
    assert t.loc[("open-set", "CCE"), ("ours", "mean")] == pytest.approx(90.5)
    assert t.loc[("open-set", "Trunc Lq"), ("paper", "mean")] == 79.55
    assert np.isnan(t.loc[("open-set", "Wang et al."), ("ours", "mean")])
    assert list(t.index.get_level_values("method")[:5]) == [experiments.METHOD_LABELS[m]
                                                            for m in experiments.TABLE2_METHODS]
    mask = analysis.best_mask(t, 1, by="noise")
    assert mask.loc[("open-set", "CCE"), "ours"] and mask.loc[("open-set", "Trunc Lq"), "paper"]


def _curves(spec):
    runs, hist = [], []
    for rid, (meta, acc) in spec.items():
        runs.append({"run_id": rid, **meta})
        hist += [{"run_id": rid, "epoch": e + 1, "test_acc": a} for e, a in enumerate(acc)]
    return pd.DataFrame(runs), pd.DataFrame(hist)


def test_setbacks_count_early_falls_per_group():
    runs, hist = _curves({
        "a": (dict(method="cce", seed=0), [0.5, 0.6, 0.7, 0.6]),
        "b": (dict(method="mae", seed=0), [0.5, 0.4, 0.6, 0.5]),
        "c": (dict(method="mae", seed=1), [0.5, 0.498, 0.6, 0.7]),
    })
    s = analysis.setbacks(runs, hist, max_epoch=3)
    assert s.to_dict() == {"cce": 0, "mae": 1}  # epoch 4 is past max_epoch; a fall of 0.002 is below threshold
    assert analysis.setbacks(runs, hist, max_epoch=4)["mae"] == 2
    with pytest.raises(ValueError, match="max_epoch"):
        analysis.setbacks(runs, hist, max_epoch=1)


def test_compare_curves_pairs_by_seed():
    ra, ha = _curves({"a0": (dict(seed=0), [0.5, 0.6]), "a1": (dict(seed=1), [0.5, 0.7])})
    rb, hb = _curves({"b0": (dict(seed=0), [0.5, 0.6]), "b1": (dict(seed=1), [0.52, 0.7])})
    both = analysis.compare_curves(ra, ha, rb, hb, n_test=100)
    assert len(both) == 4 and both["images"].tolist() == [0, 0, 2, 0]
    with pytest.raises(ValueError, match="several runs per seed"):
        analysis.compare_curves(pd.concat([ra, ra]), ha, rb, hb)


def test_convergence_table_reports_the_spread_of_best_and_last():
    runs, hist = _curves({
        "a": (dict(dataset="d", method="cce", seed=0), [0.5, 0.9]),
        "b": (dict(dataset="d", method="cce", seed=1), [0.5, 0.8]),
    })
    t = analysis.convergence_table(runs, hist, thresholds=(0.85,))
    assert t["last_std"].iloc[0] == pytest.approx(np.std([0.9, 0.8], ddof=1))


def test_each_pocket_block_sits_beside_the_papers_blocks_it_stands_for(monkeypatch):
    monkeypatch.setattr(experiments, "PAPER_ANALOGUE", {"digits": ("cifar10", "fashionmnist"),
                                                        "digit_pairs": "cifar100"}, raising=False)
    assert analysis.paper_datasets("digits") == ("cifar10", "fashionmnist")
    assert analysis.paper_datasets("cifar100") == ("cifar100",)
    rows = [dict(dataset=d, noise="uniform", eta=0.2, method="cce", seed=s, test_acc_best_val=0.5, flip_rate_train=0.2)
            for d in ("digits", "digit_pairs") for s in range(2)]
    sources = list(dict.fromkeys(analysis.table1_wide(_runs(rows)).index.get_level_values("source")))
    assert sources == ["ours (digits)", "paper (cifar10)", "paper (fashionmnist)", "ours (digit_pairs)",
                       "paper (cifar100)"]
