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


def _grid_runs():
    rows = []
    for d, seeds, commit in (("digits", 2, "abc"), ("digit_pairs", 1, "def")):
        for m in ("cce", "lq"):
            for eta in (0.2, 0.4):
                for s in range(seeds):
                    rows.append({"dataset": d, "method": m, "noise": "uniform", "eta": eta, "seed": s,
                                 "device": "cpu", "commit": commit, "torch_version": "2.0",
                                 "date": f"2026-01-0{s + 1}", **{k: 1 for k in closed_set.SETTINGS}})
    return pd.DataFrame(rows)


def test_run_counts_and_provenance_describe_each_block():
    runs = _grid_runs()
    counts = closed_set.run_counts(runs)
    assert list(counts.index) == ["digits", "digit_pairs"]
    assert counts.loc["digits"].to_dict() == {"runs": 8, "methods": 2, "noise settings": 2, "seeds": 2}
    assert counts.loc["digit_pairs", "runs"] == 4
    prov = closed_set.provenance(runs)
    assert prov.loc[("digits", "cpu", "abc", "2.0")].to_dict() == {"runs": 8, "first": "2026-01-01",
                                                                  "last": "2026-01-02"}
    assert list(closed_set.settings_table(runs).index) == list(closed_set.SETTINGS)
    with pytest.raises(ValueError, match=r"needs the column\(s\) \['seed'\]"):
        closed_set.run_counts(runs.drop(columns="seed"))


def _wide():
    sources = ["ours (digits)", "paper (fashionmnist)", "paper (cifar10)"]
    methods = ["CCE", "Lq", "MAE"]
    index = pd.MultiIndex.from_product([sources, methods], names=["source", "method"])
    columns = pd.MultiIndex.from_product([["uniform 0.2", "class-dep. 0.2"], ["mean", "std"]],
                                         names=["setting", "stat"])
    values = [[90, 1, 80, 1], [92, 1, 70, 1], [91, 1, 85, 1],     # ours: best two differ per column
              [50, 0, 60, 0], [40, 0, 60, 0], [30, 0, 10, 0],     # a tie at the second place
              [70, 0, 70, 0], [80, 0, 60, 0], [60, 0, 50, 0]]
    return pd.DataFrame(values, index=index, columns=columns, dtype=float)


def test_table1_halves_and_the_best_two_per_block():
    wide = _wide()
    assert closed_set.noise_halves(wide) == {"uniform": ["uniform 0.2"], "class-dependent": ["class-dep. 0.2"]}
    styler = closed_set.table1_half(wide, "uniform", "pocket", {"digits": 5, "digit_pairs": 3})
    assert list(styler.data.columns) == ["uniform 0.2"]
    assert "ours at pocket scale (digits: MLP, 5 seeds; digit_pairs: MLP, 3 seeds)" in styler.caption
    with pytest.raises(ValueError, match="'both'"):
        closed_set.table1_half(wide, "both", "pocket", {})
    sources = list(dict.fromkeys(wide.index.get_level_values("source")))
    block = closed_set.block_sources("digits", sources)
    assert block == ["ours (digits)", "paper (fashionmnist)", "paper (cifar10)"]
    assert closed_set.block_sources("digit_pairs", sources) == []
    best = closed_set.best_two(wide, block)
    assert best.loc["uniform 0.2", "ours (digits)"] == "Lq, MAE"
    assert best.loc["class-dep. 0.2", "ours (digits)"] == "CCE, MAE"
    assert best.loc["class-dep. 0.2", "paper (fashionmnist)"] == "CCE, Lq"  # tied at the top
    with pytest.raises(ValueError, match="no source 'ours"):
        closed_set.best_two(wide, ["ours (digit_pairs)"])


def test_spread_and_by_eta_word_the_numbers_as_the_tables_round_them():
    row = pd.Series({"uniform 0.2": -0.004, "uniform 0.4": -1.255, "class-dep. 0.2": 2.0})
    assert closed_set.spread(row) == ("from -1.26 (uniform 0.4) to 2.00 (class-dep. 0.2); "
                                      "below 0 in 2 of 3 settings")
    with pytest.raises(ValueError, match="at least one"):
        closed_set.spread(pd.Series(dtype=float))
    assert closed_set.by_eta(pd.Series({0.2: 1.46, 0.4: -0.04, 0.8: 12.0})) == "1.5 at 0.2, 0 at 0.4, 12 at 0.8"


def test_truncation_counts_and_settings_of_one_block():
    effect = pd.DataFrame({"setting": ["uniform 0.2", "uniform 0.4", "class-dep. 0.2"], "runs": [5, 5, 5],
                           "engaged": [2, 0, 0], "kept_none": [0, 1, 0], "best_epoch": [50.0, 12.34, 45.0],
                           "prune_start": 40, "trunc_minus_lq": [1.0, -0.5, 0.1],
                           "trunc_minus_lq_se": [0.4, 0.2, 0.3]})
    assert closed_set.truncation_counts(effect) == {"engaged": 2, "trunc_runs": 15, "kept_none": 1,
                                                    "prune_start": 40}
    assert closed_set.truncation_settings(effect) == {
        "engaged_settings": "uniform 0.2", "idle_settings": "uniform 0.4, class-dep. 0.2",
        "trunc_wins": "uniform 0.2", "trunc_loses": "uniform 0.4", "idle_early": "uniform 0.4 (12.3)"}
    quiet = closed_set.truncation_settings(effect.assign(engaged=1, trunc_minus_lq=0.0))
    assert quiet["idle_settings"] == quiet["trunc_wins"] == quiet["idle_early"] == "none"
    with pytest.raises(ValueError, match="setting"):
        closed_set.truncation_counts(effect.drop(columns="setting"))
    with pytest.raises(ValueError, match="one block"):
        closed_set.truncation_counts(effect.iloc[:0])
