"""gce.book.chapters.truncated: Eq. 10's table, and the summaries of the chapter's run of Algorithm 1 (stored runs)."""

import numpy as np
import pandas as pd
import pytest

from gce import losses
from gce.book import experiments
from gce.book.store import run_id
from gce.book.chapters import truncated as chapter


# ---- Eq. 10

def test_eq10_table_brackets_the_search_between_the_bounds():
    table = chapter.eq10_table([(4, 0.7, 0.5), (2, 0.7, 0.3)], n_starts=2)
    assert list(table[["c", "q", "k"]].itertuples(index=False, name=None)) == [(4, 0.7, 0.5), (2, 0.7, 0.3)]
    assert (table["eq10_lower"] <= table["exact_min"] + 1e-9).all()       # Eq. 10 is valid
    assert (table["exact_max"] <= table["eq10_upper"] + 1e-9).all()
    assert (table["exact_min"] <= table["found_min"] + 1e-9).all()        # no search beats the exact range
    assert (table["found_max"] <= table["exact_max"] + 1e-9).all()
    assert table["d"].tolist() == [max(1.0, 0.3 ** (1 / 0.7) / 0.5), max(1.0, 0.3 ** (1 / 0.7) / 0.3)]


def test_eq10_display_names_tight_and_loose_bounds():
    table = pd.DataFrame([{"c": 10, "q": 0.7, "k": 0.5, "d": 1.0, "eq10_lower": 1.0, "found_min": 1.0,
                           "exact_min": 1.0, "found_max": 2.5, "eq10_upper": 3.0, "exact_max": 2.5},
                          {"c": 2, "q": 0.5, "k": 0.3, "d": 1.23456, "eq10_lower": 0.5, "found_min": 0.75,
                           "exact_min": 0.7, "found_max": 1.0, "eq10_upper": 1.0, "exact_max": 1.0}])
    lower, upper = chapter.eq10_display(table)
    assert lower["lower"].tolist() == ["TIGHT", "loose by 0.2500"]
    assert upper["upper"].tolist() == ["loose by 0.5000", "TIGHT"]
    assert upper["search = exact"].tolist() == [True, False]
    assert lower["d"].tolist() == [1.0, 1.235]
    assert list(lower.columns[:3]) == ["c", "q", "k"] and list(upper.columns[:3]) == ["c", "q", "k"]


# ---- the run of Algorithm 1

@pytest.fixture(scope="module")
def configs():
    return chapter.demo_configs("pocket")


def test_demo_configs_are_table1s_runs_of_the_setting(configs):
    assert {(c.dataset, c.noise, c.eta) for c in configs} == {chapter.SETTING}
    assert {c.method for c in configs} == set(chapter.METHODS.values())
    table1 = {run_id(c) for c in experiments.spec("table1", "pocket").configs}
    assert {run_id(c) for c in configs} <= table1
    seeds = {c.seed for c in configs}
    assert len(configs) == len(chapter.METHODS) * len(seeds)


def test_eq9_config_prunes_from_the_start(configs):
    eq9 = chapter.eq9_config(configs)
    assert (eq9.method, eq9.seed, eq9.prune_start) == ("trunc_lq", 0, 0)
    assert eq9.prune_epochs()[0] == 0
    with pytest.raises(ValueError, match="no truncated"):
        chapter.eq9_config([c for c in configs if c.method != "trunc_lq"])


def test_stored_demo_runs_reads_the_store_in_the_configs_order(configs):
    runs, history = chapter.stored_demo_runs(configs)
    assert runs["run_id"].tolist() == [run_id(c) for c in configs]
    assert history["run_id"].drop_duplicates().tolist() == runs["run_id"].tolist()
    assert (history.groupby("run_id")["epoch"].apply(lambda e: e.is_monotonic_increasing)).all()


def test_stored_demo_runs_names_missing_runs(configs, tmp_path):
    with pytest.raises(ValueError, match=f"{len(configs)} of the chapter's {len(configs)} Table 1 runs are not stored"):
        chapter.stored_demo_runs(configs, results_dir=tmp_path)


def _history(configs, kept_of):
    """A stored-history frame for ``configs``: 120 epochs each, ``kept`` from ``kept_of(config, epoch)``."""
    rows = [{"run_id": run_id(c), "epoch": e, "test_acc": 0.5 + c.seed / 100 + e / 1000,
             "kept": kept_of(c, e)} for c in configs for e in range(1, c.epochs + 1)]
    return pd.DataFrame(rows)


def test_kept_at_pruning_reads_the_epoch_after_each_step(configs):
    history = _history(configs, lambda c, e: 1.0 if e <= c.prune_start else 0.5 + c.seed / 100 + e / 10_000)
    kept = chapter.kept_at_pruning(configs, history)
    trunc = [c for c in configs if c.method == "trunc_lq"]
    assert list(kept.index) == trunc[0].prune_epochs() and kept.index.name == "pruning epoch"
    assert list(kept.columns) == [f"seed {c.seed}" for c in trunc]
    first = trunc[0].prune_epochs()[0]
    assert kept.iloc[0]["seed 0"] == 0.5 + (first + 1) / 10_000   # epoch first + 1 of the stored (1-based) history


def _samples():
    """First-pruning-step rows of two seeds with known f_y, labels and kept flags (k = 0.5)."""
    f_y = [0.9, 0.8, 0.2, 0.6, 0.1, 0.7, 0.3, 0.95]
    return pd.DataFrame({"seed": [0, 0, 0, 0, 1, 1, 1, 1], "f_y": f_y,
                         "clean": [True, True, False, False, False, True, True, True],
                         "kept": [f >= 0.5 for f in f_y]})


def test_pruning_objective_is_eq13_before_and_after():
    out = chapter.pruning_objective(_samples(), 0.7, 0.5)
    a = (1 - np.array([0.9, 0.8, 0.2, 0.6]) ** 0.7) / 0.7 - (1 - 0.5 ** 0.7) / 0.7
    assert out.loc[0, "J/n before"] == pytest.approx(a.mean())
    assert out.loc[0, "J/n after"] == pytest.approx((a * [1, 1, 0, 1]).mean())
    assert (out["J/n after"] <= out["J/n before"]).all()       # the pruning step minimises J over w


def test_pruning_table_and_numbers():
    table = chapter.pruning_table(_samples(), 0.7, 0.5)
    assert table.loc[0, "precision"] == pytest.approx(2 / 3) and table.loc[0, "recall"] == 1.0
    assert table.loc[1, "precision"] == 1.0 and table.loc[1, "recall"] == pytest.approx(2 / 3)
    kept = pd.DataFrame({"seed 0": [0.75, 0.8], "seed 1": [0.5, 0.5]}, index=pd.Index([40, 50], name="pruning epoch"))
    numbers = chapter.pruning_numbers(kept, table)
    assert numbers["first_prune_epoch"] == 40 and numbers["first_kept_seed0"] == 75.0
    assert numbers["first_kept_min"] == 50.0 and numbers["first_kept_max"] == 75.0
    assert numbers["precision_mean"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert set(numbers) == {"first_prune_epoch", "first_kept_seed0"} | {
        f"{n}_{s}" for n in ("first_kept", "correct", "precision", "recall") for s in ("min", "max", "mean")}
    n, gap = chapter.retrained_kept_gap(kept, table)       # retrained kept: 0.75 and 0.5, as stored
    assert (n, gap) == (2, 0.0)
    n, gap = chapter.retrained_kept_gap(kept.assign(**{"seed 1": [0.45, 0.5]}), table)
    assert gap == pytest.approx(5.0)


def _runs(configs):
    acc = {"cce": 0.80, "lq": 0.90, "trunc_lq": 0.92}
    return pd.DataFrame([{"run_id": run_id(c), "method": c.method, "seed": c.seed,
                          "test_acc_last": acc[c.method] - 0.01 * c.seed,
                          "test_acc_best_val": acc[c.method] + 0.001 * c.seed * (c.method == "lq")}
                         for c in configs])


def test_seed_histories_and_accuracies(configs):
    runs = _runs(configs)
    curves = chapter.seed_histories(runs, _history(configs, lambda c, e: 1.0), seed=1)
    assert list(curves) == ["CCE", "Lq", "Trunc Lq"]
    assert curves["Lq"][:2].tolist() == [0.511, 0.512]
    with pytest.raises(ValueError, match="no run of seed 99"):
        chapter.seed_histories(runs, _history(configs, lambda c, e: 1.0), seed=99)
    table = chapter.accuracy_table(runs)
    assert set(table["method"]) == set(chapter.METHODS)
    summary = chapter.accuracy_summary(table)
    assert list(summary.index) == ["CCE", "Lq", "Trunc Lq"]
    assert summary.loc["CCE", ("best val epoch", "std")] == 0.0
    effects = chapter.paired_effects(table)
    seeds = np.array(sorted({c.seed for c in configs}))
    assert effects["Trunc_Lq_minus_CCE"] == pytest.approx(12.0)
    assert effects["Trunc_Lq_minus_CCE_se"] == pytest.approx(0.0, abs=1e-9)
    assert effects["Lq_minus_CCE"] == pytest.approx(10.0 + 0.1 * seeds.mean())
    assert effects["Trunc_Lq_minus_Lq_se"] > 0
