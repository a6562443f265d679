"""The helpers of the chapter "Closed-set noise" (book/closed_set.ipynb): what truncation changed."""

import numpy as np
import pandas as pd
import pytest

from gce.book import analysis


def _tables(trunc_runs):
    """Truncated-L_q and L_q runs of one setting; ``trunc_runs`` is ``[(seed, best_epoch, kept curve, acc, lq_acc)]``."""
    runs, hist = [], []
    for seed, best, kept, acc, lq_acc in trunc_runs:
        for method, a, b in (("trunc_lq", acc, best), ("lq", lq_acc, 1)):
            rid = f"{method}-{seed}"
            runs.append(dict(run_id=rid, dataset="digits", noise="uniform", eta=0.4, seed=seed, method=method,
                             prune_start=2, best_epoch=b, test_acc_best_val=a, test_acc_last=a,
                             flip_rate_train=0.4))
            curve = kept if method == "trunc_lq" else [1.0] * len(kept)
            hist += [dict(run_id=rid, epoch=e + 1, kept=k) for e, k in enumerate(curve)]
    return pd.DataFrame(runs), pd.DataFrame(hist)


def test_truncation_effect_counts_only_runs_reported_after_a_pruning_that_removed_samples():
    runs, hist = _tables([
        (0, 3, [1.0, 1.0, 0.6, 0.5], 0.80, 0.75),  # reported epoch 3 (0-based) is pruned: engaged
        (1, 1, [1.0, 1.0, 0.7, 0.7], 0.75, 0.75),  # reported before pruning: the L_q model
        (2, 2, [1.0, 1.0, 1.0, 1.0], 0.70, 0.72),  # after prune_start but nothing pruned: not engaged
    ])
    t = analysis.truncation_effect(runs, hist)
    assert len(t) == 1
    row = t.iloc[0]
    assert (row["runs"], row["engaged"], row["prune_start"], row["kept_none"]) == (3, 1, 2, 0)
    assert row["best_epoch"] == pytest.approx(2.0)
    assert row["kept_first"] == pytest.approx((0.6 + 0.7 + 1.0) / 3)
    assert row["kept_reported"] == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    diffs = np.array([5.0, 0.0, -2.0])
    assert row["trunc_minus_lq"] == pytest.approx(diffs.mean())
    assert row["trunc_minus_lq_se"] == pytest.approx(diffs.std(ddof=1) / np.sqrt(3))


def test_truncation_effect_names_what_is_missing():
    runs, hist = _tables([(0, 3, [1.0, 1.0, 0.6, 0.5], 0.8, 0.75)])
    with pytest.raises(ValueError, match="no L_q run pairs"):
        analysis.truncation_effect(runs[runs["method"] == "trunc_lq"], hist)
    with pytest.raises(ValueError, match="no truncated"):
        analysis.truncation_effect(runs[runs["method"] == "lq"], hist)
    with pytest.raises(ValueError, match="prune_start"):
        analysis.truncation_effect(runs.drop(columns="prune_start"), hist)
    with pytest.raises(ValueError, match="kept"):
        analysis.truncation_effect(runs, hist.drop(columns="kept"))


def test_truncation_effect_counts_runs_whose_first_pruning_step_kept_nothing():
    runs, hist = _tables([(0, 3, [1.0, 1.0, 0.0, 0.0], 0.1, 0.3), (1, 0, [1.0, 1.0, 0.5, 0.5], 0.3, 0.3)])
    row = analysis.truncation_effect(runs, hist).iloc[0]
    assert (row["kept_none"], row["engaged"]) == (1, 1)
    assert row["kept_first"] == pytest.approx(0.25)
