"""The chapter modules of "Training dynamics" and "CCE vs MAE in practice" (gce.book.chapters)."""

import numpy as np
import pandas as pd
import pytest

from gce.book import claims
from gce.book.chapters import cce_vs_mae, dynamics


def _runs_and_history():
    """Two runs of Fig. 2 at eta = 0.2 (CCE and q = 0.8), one seed each, with hand-made curves."""
    runs = pd.DataFrame({"run_id": ["a", "b"], "eta": [0.2, 0.2], "method": ["cce", "lq"], "q": [0.7, 0.8],
                         "best_epoch": [1, 2], "test_acc_best_val": [0.90, 0.85],
                         "test_acc_last": [0.80, 0.86]})
    test = {"a": [0.70, 0.90, 0.95, 0.80], "b": [0.60, 0.70, 0.85, 0.86]}
    loss = {"a": [1.0, 0.5, 0.7, 0.9], "b": [1.0, 0.9, 0.8, 0.7]}
    history = pd.DataFrame([{"run_id": r, "epoch": e + 1, "test_acc": test[r][e], "val_loss": loss[r][e]}
                            for r in ("a", "b") for e in range(4)])
    return runs, history


def test_selection_table_measures_the_drop_from_the_selected_epoch_not_the_peak():
    runs, history = _runs_and_history()
    per = dynamics.selection_table(runs, history, per_run=True).set_index("run_id")
    assert per.loc["a", "best_epoch"] == 2  # stored 0-based index 1
    assert per.loc["a", "peak"] == pytest.approx(0.95)
    assert per.loc["a", "drop"] == pytest.approx(0.10)  # 0.90 - 0.80, not 0.95 - 0.80
    assert per.loc["b", "drop"] == pytest.approx(-0.01)  # the last epoch beat the selected one
    assert per.loc["a", "q"] == 0.0 and per.loc["b", "q"] == 0.8
    assert list(per["val_loss_min_epoch"]) == [2, 4]


def test_selection_table_averages_seeds_and_keeps_the_spread():
    runs, history = _runs_and_history()
    runs2 = runs.assign(run_id=["c", "d"], test_acc_best_val=[0.94, 0.85])
    table = dynamics.selection_table(pd.concat([runs, runs2]), pd.concat(
        [history, history.assign(run_id=history["run_id"].map({"a": "c", "b": "d"}))]))
    cce = table[table["q"] == 0.0].iloc[0]
    assert cce["seeds"] == 2
    assert cce["drop"] == pytest.approx(0.12)
    assert (cce["drop_min"], cce["drop_max"]) == (pytest.approx(0.10), pytest.approx(0.14))


def test_selection_table_names_a_run_without_history():
    runs, history = _runs_and_history()
    with pytest.raises(ValueError, match="'b'"):
        dynamics.selection_table(runs, history[history["run_id"] == "a"])
    with pytest.raises(ValueError, match="best_epoch"):
        dynamics.selection_table(runs.drop(columns="best_epoch"), history)


def test_format_selection_shows_points_and_needs_its_table():
    runs, history = _runs_and_history()
    shown = dynamics.format_selection(dynamics.selection_table(runs, history))
    assert shown.loc[(0.2, 0.0), "drop"] == pytest.approx(10.0)
    assert shown.loc[(0.2, 0.0), "best-val epoch"] == 2.0
    with pytest.raises(ValueError, match="selection_table"):
        dynamics.format_selection(pd.DataFrame({"eta": [0.2], "q": [0.0]}))


def test_trend_words():
    assert dynamics.trend([1, 2, 3]) == "rises with every step of *q*"
    assert dynamics.trend([3, 2, 1]) == "falls with every step of *q*"
    assert "tie" in dynamics.trend([1, 1, 2])
    assert dynamics.trend([1, 3, 2]) == "is not monotone in *q*"
    with pytest.raises(ValueError, match="two values"):
        dynamics.trend([1])


def test_status_summary_counts_every_outcome_in_order():
    v = pd.DataFrame({"id": ["a", "b", "c", "d"],
                      "status": [claims.INCONCLUSIVE, claims.HOLDS, claims.HOLDS, claims.CONTRADICTED]})
    assert dynamics.status_summary(v) == ("2 hold (`b`, `c`); 1 is contradicted (`d`); "
                                          "1 is inconclusive (`a`)")
    with pytest.raises(ValueError, match="'fails'"):
        dynamics.status_summary(v.assign(status="fails"))


@pytest.mark.parametrize("module, claim_id", [(dynamics, "threshold_exists"), (dynamics, "q07_no_overfitting"),
                                              (dynamics, "larger_q_higher_accuracy"),
                                              (cce_vs_mae, "mae_slower_clean"), (cce_vs_mae, "mae_lower_clean"),
                                              (cce_vs_mae, "mae_fails_many_classes")])
def test_readings_differ_by_outcome_and_refuse_unknown_input(module, claim_id):
    texts = {s: module.reading(claim_id, s) for s in claims.STATUSES}
    assert len(set(texts.values())) == len(claims.STATUSES)
    with pytest.raises(ValueError, match="'fails'"):
        module.reading(claim_id, "fails")
    with pytest.raises(ValueError, match="no reading"):
        module.reading("no_such_claim", claims.HOLDS)


def test_accuracy_note_and_verdict_effects():
    assert "cannot decide" in cce_vs_mae.accuracy_note([claims.INCONCLUSIVE, claims.INCONCLUSIVE])
    assert "cannot decide" not in cce_vs_mae.accuracy_note([claims.INCONCLUSIVE, claims.HOLDS])
    with pytest.raises(ValueError, match="'fails'"):
        cce_vs_mae.accuracy_note(["fails"])
    numbers = pd.DataFrame({"comparison": ["x", "y"], "effect": [0.5, -1.0]})
    effects = cce_vs_mae.verdict_effects(claims.Verdict(claims.HOLDS, "r", numbers))
    assert effects.to_dict() == {"x": 0.5, "y": -1.0}
    assert cce_vs_mae.verdict_effects(claims.Verdict(claims.NOT_TESTABLE, "r")).empty
    with pytest.raises(ValueError, match="Verdict"):
        cce_vs_mae.verdict_effects("holds")


def test_split_counts_hold_out_the_validation_share():
    n = cce_vs_mae.split_counts("digits", 0.2)
    assert n["val"] == pytest.approx(0.2 * (n["train"] + n["val"]), abs=5)
    assert n["steps"] == int(np.ceil(n["train"] / 128)) and n["classes"] == 10
    with pytest.raises(ValueError, match="batch_size"):
        cce_vs_mae.split_counts("digits", 0.2, batch_size=0)
