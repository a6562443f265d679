"""The helpers of the open-set chapter (Table 2's pruning check): classes dropped whole, runs that keep nothing."""

import numpy as np
import pandas as pd
import pytest

from gce.book import analysis, experiments


def _samples():
    # run 0: label 1 loses all its clean samples (only its outside image is kept); run 1 keeps nothing at all
    rows = []
    for run, kept in ((0, [True, True, False, False, False, True]), (1, [False] * 6)):
        for lab, clean, k in zip([0, 0, 0, 1, 1, 1], [True, True, False, True, True, False], kept):
            rows.append({"run": run, "noise": "open_set", "eta": 0.4, "seed": run, "label": lab,
                         "noisy_label": lab, "clean": clean, "kept": k})
    return pd.DataFrame(rows)


def test_classes_dropped_counts_whole_classes_and_empty_runs():
    out = analysis.classes_dropped(experiments.kept_by_class(_samples())).set_index("run")
    assert out.loc[0, "dropped"] == 1 and out.loc[0, "dropped_labels"] == (1,)
    assert out.loc[0, "kept"] == pytest.approx(0.5) and not out.loc[0, "kept_nothing"]
    assert out.loc[0, "labels"] == 2
    assert out.loc[1, "dropped"] == 2 and out.loc[1, "kept"] == 0 and out.loc[1, "kept_nothing"]


def test_classes_dropped_ignores_labels_without_clean_samples():
    s = _samples()
    s = s[s["run"] == 0].copy()
    s.loc[s["noisy_label"] == 1, "clean"] = False  # label 1 carries outside images only
    out = analysis.classes_dropped(experiments.kept_by_class(s))
    assert out.loc[0, "labels"] == 1 and out.loc[0, "dropped"] == 0


def test_classes_dropped_names_missing_columns():
    with pytest.raises(ValueError, match="clean_kept"):
        analysis.classes_dropped(pd.DataFrame({"run": [0]}))


def _stored(kept_by_run, acc_by_run, best=(1, 4)):
    runs = pd.DataFrame({"run_id": list(kept_by_run), "noise": "open_set", "eta": 0.4,
                         "seed": range(len(kept_by_run)), "method": "trunc_lq", "prune_start": 2,
                         "best_epoch": list(best)[:len(kept_by_run)]})
    runs = pd.concat([runs, pd.DataFrame([{"run_id": "lq", "noise": "open_set", "eta": 0.4, "seed": 0,
                                           "method": "lq", "prune_start": 2, "best_epoch": 0}])],
                     ignore_index=True)
    hist = [{"run_id": rid, "epoch": e + 1, "kept": k, "test_acc": a}
            for rid in kept_by_run for e, (k, a) in enumerate(zip(kept_by_run[rid], acc_by_run[rid]))]
    hist += [{"run_id": "lq", "epoch": 1, "kept": 1.0, "test_acc": 0.5}]
    return runs, pd.DataFrame(hist)


def test_empty_pruning_runs_finds_the_empty_epochs_and_what_moved_in_them():
    # pruning from epoch 2 (counted from 0): history epoch 3 is the first pruned one
    runs, hist = _stored({"a": [1, 1, 0, 0, 0.5], "b": [1, 1, 0.6, 0.6, 0.8]},
                         {"a": [0.3, 0.5, 0.52, 0.55, 0.40], "b": [0.3, 0.6, 0.7, 0.8, 0.9]})
    out = analysis.empty_pruning_runs(runs, hist).set_index("run_id")
    assert list(out.index) == ["a", "b"]  # only the truncated runs
    assert out.loc["a", "empty_from"] == 3 and out.loc["a", "empty_epochs"] == 2
    assert out.loc["a", "acc_range_empty"] == pytest.approx(0.03)  # epochs 3 and 4 only
    assert out.loc["a", "kept_first"] == 0 and out.loc["a", "kept_min"] == 0
    assert out.loc["a", "kept_last"] == 0.5 and out.loc["a", "kept_values"] == 2
    assert out.loc["a", "best_epoch"] == 1
    assert np.isnan(out.loc["b", "empty_from"]) and np.isnan(out.loc["b", "acc_range_empty"])
    assert out.loc["b", "empty_epochs"] == 0 and out.loc["b", "kept_first"] == pytest.approx(0.6)
    assert out.loc["b", "kept_min"] == pytest.approx(0.6) and out.loc["b", "kept_values"] == 2


def test_empty_pruning_runs_names_missing_columns():
    runs, hist = _stored({"a": [1, 0]}, {"a": [0.3, 0.3]})
    with pytest.raises(ValueError, match="kept"):
        analysis.empty_pruning_runs(runs, hist.drop(columns=["kept"]))
