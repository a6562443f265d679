"""The helpers of the chapter "Open-set noise" (book/open_set.ipynb): where each truncated run started pruning."""

import pandas as pd
import pytest

from gce.book import experiments
from gce.book.chapters import open_set as chapter


def _tables(plateau_at: int = 8, prune_at: int = 8, epochs: int = 20):
    """One truncated and one CCE run: the truncated run's validation loss falls until ``plateau_at - 6``
    epochs and is flat after, and its kept fraction drops below 1 after ``prune_at`` epochs."""
    runs = pd.DataFrame({"run_id": ["t", "c"], "noise": ["open_set", "open_set"], "eta": [0.4, 0.4],
                         "seed": [3, 3], "method": ["trunc_lq", "cce"], "prune_start": [10, 10]})
    rows = []
    for rid in ("t", "c"):
        for e in range(epochs):
            loss = max(1.0 - 0.1 * e, 1.0 - 0.1 * (plateau_at - 6))
            kept = 1.0 if rid == "c" or e < prune_at else 0.6
            rows.append({"run_id": rid, "epoch": e + 1, "val_loss": loss, "kept": kept})
    return runs, pd.DataFrame(rows)


def test_pruning_starts_reads_the_plateau_and_the_first_pruned_epoch():
    runs, history = _tables()
    starts = chapter.pruning_starts(runs, history)
    assert list(starts["run_id"]) == ["t"]
    row = starts.iloc[0]
    assert row["plateau"] == 8 and row["first_pruned"] == 8 and row["agree"]
    assert row["kept_first"] == pytest.approx(0.6)


def test_pruning_starts_flags_a_run_that_pruned_elsewhere():
    runs, history = _tables(prune_at=12)
    row = chapter.pruning_starts(runs, history).iloc[0]
    assert row["plateau"] == 8 and row["first_pruned"] == 12 and not row["agree"]


def test_with_pruning_starts_sets_only_the_truncated_runs():
    runs, history = _tables(prune_at=12)
    out = chapter.with_pruning_starts(runs, chapter.pruning_starts(runs, history))
    assert out.set_index("run_id")["prune_start"].to_dict() == {"t": 12, "c": 10}
    assert runs["prune_start"].tolist() == [10, 10]  # the input is left alone


def test_with_pruning_starts_rejects_a_run_that_never_pruned():
    runs, history = _tables(prune_at=99)
    with pytest.raises(ValueError, match="seed 3 never pruned"):
        chapter.with_pruning_starts(runs, chapter.pruning_starts(runs, history))


def test_first_step_configs_fix_each_run_at_its_own_start():
    configs = [c for c in experiments.spec("table2", "pocket").configs if c.seed in (0, 1)]
    trunc = [c for c in configs if c.method == "trunc_lq"]
    runs = pd.DataFrame({"run_id": range(len(trunc)), "noise": [c.noise for c in trunc],
                         "eta": [c.eta for c in trunc], "seed": [c.seed for c in trunc],
                         "method": "trunc_lq", "prune_start": [20 + i for i in range(len(trunc))]})
    out = chapter.first_step_configs(configs, runs)
    assert [(c.noise, c.seed) for c in out] == [(c.noise, c.seed) for c in trunc]
    assert [c.prune_start for c in out] == [20 + i for i in range(len(trunc))]
    assert all(c.prune_rule == "fixed" and c.prune_epochs()[0] == c.prune_start for c in out)


def test_first_step_configs_need_a_stored_run():
    configs = [c for c in experiments.spec("table2", "pocket").configs if c.method == "trunc_lq"]
    runs = pd.DataFrame({"run_id": [0], "noise": ["uniform"], "eta": [0.4], "seed": [99],
                         "method": ["trunc_lq"], "prune_start": [20]})
    with pytest.raises(ValueError, match="no stored truncated run"):
        chapter.first_step_configs(configs, runs)


def test_row_story():
    row = pd.Series({"CCE": 90.0, "MAE": 95.0, "Lq": 93.0, "Trunc Lq": 96.0, "Forward T_hat": 80.0})
    story = chapter.row_story(row)
    assert story["trunc_rank"] == "first" and story["lq_vs_mae"] == "below"
    assert story["spread"] == pytest.approx(16.0) and story["spread_others"] == pytest.approx(15.0)
    worst = chapter.row_story(row.replace({96.0: 70.0}))
    assert worst["trunc_rank"] == "fifth" and worst["spread_others"] == pytest.approx(15.0)
    with pytest.raises(ValueError, match="no 'MAE' entry"):
        chapter.row_story(row.drop("MAE"))


def test_plot_pruning_starts_marks_each_start():
    import matplotlib

    matplotlib.use("Agg")
    runs, history = _tables(prune_at=12)
    fig = chapter.plot_pruning_starts(history, chapter.pruning_starts(runs, history), caption="x")
    ax = fig.axes[0]
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"] == [12]
    assert len([line for line in ax.lines if line.get_linestyle() == "-"]) == 1
