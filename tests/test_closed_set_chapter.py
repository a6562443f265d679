"""gce.book.chapters.closed_set and gce.book.chapters.claims on small synthetic tables: the schedule table, the fit
gate, the selection cost, and the claims page's summaries."""

import numpy as np
import pandas as pd
import pytest

from gce.book.chapters import closed_set


def _runs_history():
    runs = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "dataset": "digits", "noise": "uniform", "eta": 0.4,
                         "method": ["cce", "cce", "lq", "lq"], "seed": [0, 1, 0, 1], "epochs": 120,
                         "milestones": "40 80", "prune_start": 40, "prune_every": 10, "lr": 0.1,
                         "val_fraction": 0.2, "test_acc_best_val": [0.9, 0.8, 0.85, 0.85]})
    level = np.r_[np.linspace(0.1, 0.9, 20), np.full(100, 0.9)]
    climbing = np.linspace(0.1, 0.9, 120)  # still rising 3 points in 5 epochs at the drop
    rows = []
    for rid, val, test_peak in (("a", level, 0.95), ("b", level, 0.8), ("c", climbing, 0.85), ("d", climbing, 0.9)):
        test = np.full(120, 0.5)
        test[7] = test_peak
        rows += [{"run_id": rid, "epoch": e + 1, "val_acc": val[e], "test_acc": test[e]} for e in range(120)]
    return runs, pd.DataFrame(rows)


def test_schedule_table_compares_with_the_papers_epochs():
    runs, _ = _runs_history()
    t = closed_set.schedule_table(runs)
    assert t.loc["digits", "same_epochs"] and t.loc["digits", "drops after"] == "40 and 80"
    assert not closed_set.schedule_table(runs.assign(milestones="13 26")).loc["digits", "same_epochs"]
    with pytest.raises(ValueError, match="2 different schedules"):
        closed_set.schedule_table(runs.assign(epochs=[120, 39, 120, 120]))


def test_fit_table_marks_a_method_still_climbing_at_the_drop():
    runs, history = _runs_history()
    t = closed_set.fit_table(runs, history)
    assert t.loc[("digits", "uniform", 0.4)].to_dict() == {"CCE": True, "Lq": False}


def test_selection_cost_is_the_best_test_epoch_minus_the_chosen_one():
    runs, history = _runs_history()
    cost = closed_set.selection_cost(runs, history)
    assert cost.loc["CCE", ("digits", "mean")] == pytest.approx(2.5)   # (95 - 90 + 80 - 80) / 2
    assert cost.loc["Lq", ("digits", "max")] == pytest.approx(5.0)


def test_claims_page_summaries_count_list_and_word_the_sensitivity():
    from gce.book import claims
    from gce.book.chapters import claims as page

    verdicts = pd.DataFrame({"id": ["a", "b", "c"], "status": [claims.HOLDS, claims.INCONCLUSIVE, claims.HOLDS]})
    assert page.status_counts(verdicts) == {"holds": 2, "contradicted": 0, "inconclusive": 1, "untestable": 0}
    assert page.ids_with(verdicts, "holds") == "`a`, `c`" and page.ids_with(verdicts, "contradicted") == "none"
    sens = pd.DataFrame({"first_drop": [13, 27, 40, 60],
                         "status": [claims.NOT_TESTABLE, claims.INCONCLUSIVE, claims.HOLDS, claims.HOLDS]})
    words = page.sensitivity_words(sens)
    assert words["declared"] == "**holds**" and words["robust"] == "here it is not"
    assert words["others"].startswith("**not testable** after 13 epochs")
    same = sens.assign(status=[claims.NOT_TESTABLE, claims.HOLDS, claims.HOLDS, claims.HOLDS])
    assert page.sensitivity_words(same)["robust"] == "here it is"  # untestable drops do not count
