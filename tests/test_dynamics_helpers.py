"""Display helpers of the chapter "Training dynamics" (gce.book.analysis, end section "dynamics: display")."""

import numpy as np
import pandas as pd
import pytest

from gce.book import analysis


def _runs_and_history():
    """Two q values at one noise rate, two seeds: q = 0 (CCE) peaks and falls, q = 0.7 does not."""
    runs, rows = [], []
    for method, q in (("cce", 0.7), ("lq", 0.7)):
        for seed in (0, 1):
            rid = f"{method}-{seed}"
            runs.append(dict(run_id=rid, method=method, q=q, eta=0.4, seed=seed))
            curve = [0.5, 0.9, 0.8 - 0.01 * seed] if method == "cce" else [0.4, 0.8, 0.85]
            for e, acc in enumerate(curve, 1):
                rows.append(dict(run_id=rid, epoch=e, test_acc=acc, val_loss=1.0 / e if method == "lq" else e))
    return pd.DataFrame(runs), pd.DataFrame(rows)


def test_format_overfitting_keeps_numbers_in_percent_and_fits_the_column():
    runs, history = _runs_and_history()
    table = analysis.overfitting_table(runs, history)
    shown = analysis.format_overfitting(table)
    assert list(shown.index.names) == ["eta", "q"]
    assert list(shown.index) == [(0.4, 0.0), (0.4, 0.7)]
    assert list(shown.columns) == [analysis.OVERFITTING_COLUMNS[c] for c in
                                   ("peak", "peak_epoch", "last", "drop", "drop_min", "drop_max",
                                    "val_loss_min_epoch")]
    cce = shown.loc[(0.4, 0.0)]
    assert cce["peak %"] == 90.0 and cce["last %"] == 79.5 and cce["drop"] == 10.5
    assert cce["drop min"] == 10.0 and cce["drop max"] == 11.0
    assert cce["peak epoch"] == 2.0 and cce["val-loss min epoch"] == 1.0
    lq = shown.loc[(0.4, 0.7)]
    assert lq["drop"] == 0.0 and lq["val-loss min epoch"] == 3.0
    assert all(np.issubdtype(t, np.number) for t in shown.dtypes)
    assert max(len(line) for line in shown.to_string().splitlines()) <= 95


def test_format_overfitting_rounds_like_the_tables_and_names_a_bad_input():
    table = pd.DataFrame([dict(eta=0.2, q=0.8, peak=0.830049999, peak_epoch=12.345, last=0.8, drop=0.030049999)])
    shown = analysis.format_overfitting(table)
    assert shown.loc[(0.2, 0.8), "peak %"] == 83.0 and shown.loc[(0.2, 0.8), "peak epoch"] == 12.3
    assert "drop min" not in shown.columns
    with pytest.raises(ValueError, match=r"\['drop'\]"):
        analysis.format_overfitting(table.drop(columns="drop"))
