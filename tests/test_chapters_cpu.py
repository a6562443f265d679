"""The cpu-scale sections of the experiment chapters (gce.book.chapters.cpu), on stored pocket runs relabelled as
cpu-scale CIFAR-10 features: the functions only read the runs' columns."""

import pandas as pd
import pytest

from gce.book import claims
from gce.book.chapters import cpu

CPU_DATA = "cifar10_jpeg_features"


@pytest.fixture(scope="module")
def table1_runs():
    runs, _ = claims.stored_results("table1", "pocket")
    return runs[runs["dataset"] == "digits"].assign(dataset=CPU_DATA)


@pytest.fixture(scope="module")
def table2_runs():
    runs, _ = claims.stored_results("table2", "pocket")
    return runs.assign(dataset=CPU_DATA + "_0to4")


def test_captions_name_scale_data_and_seeds(table1_runs):
    text = cpu.caption(table1_runs, "Table 1")
    assert text == "Table 1; cpu scale: CIFAR-10 (JPEG copy) features, MLP head, seeds 0-4"
    assert cpu.caption(table1_runs[table1_runs["seed"] == 2], "x").endswith("seed 2")
    with pytest.raises(ValueError, match="no runs"):
        cpu.data_name(table1_runs.iloc[:0])


def test_missing_results_are_one_line_naming_the_command(tmp_path):
    assert cpu.stored("table1", tmp_path) is None
    line = cpu.describe("table1", None)
    assert "\n" not in line and "python -m gce reproduce table1 --scale cpu" in line


def test_table1_half_is_ours_beside_the_papers_cifar10(table1_runs):
    styler = cpu.table1_half(table1_runs, "uniform")
    data = styler.data
    assert list(data.columns) == ["uniform 0.2", "uniform 0.4", "uniform 0.6", "uniform 0.8"]
    sources = list(dict.fromkeys(data.index.get_level_values("source")))
    assert sources == ["ours (cpu)", "paper (cifar10)"]
    assert "CIFAR-10 (JPEG copy)" in styler.caption
    ours = table1_runs[(table1_runs["noise"] == "uniform") & (table1_runs["eta"] == 0.4)
                       & (table1_runs["method"] == "lq")]
    assert data.loc[("ours (cpu)", "Lq"), "uniform 0.4"].startswith(f"{100 * ours['test_acc_best_val'].mean():.2f}")
    with pytest.raises(ValueError, match="noise must be"):
        cpu.table1_half(table1_runs, "open_set")


def test_open_set_harm_pairs_clean_and_open_set_cce_by_seed(table2_runs):
    runs = table2_runs
    clean = runs[(runs["method"] == "cce") & (runs["noise"] == "uniform")].assign(noise="none")
    both = pd.concat([runs, clean], ignore_index=True)
    row = cpu.open_set_harm(both).iloc[0]
    cce = both[both["method"] == "cce"].pivot_table(index="seed", columns="noise", values="test_acc_last") * 100
    assert row["cost"] == pytest.approx((cce["none"] - cce["open_set"]).mean())
    assert row["seeds"] == len(cce)
    opened = runs[(runs["method"] == "cce") & (runs["noise"] == "open_set")]
    assert row["drop"] == pytest.approx(100 * (opened["test_acc_best_val"] - opened["test_acc_last"]).mean())
    assert row["gate"] == (row["drop"] >= claims.HARM_MARGIN)
    with pytest.raises(ValueError, match="clean and open-set CCE"):
        cpu.open_set_harm(runs)


def test_claim_ids_and_status_words_read_the_registry(tmp_path):
    ids = cpu.claim_ids("table1")
    assert ids and all("table1" in claims.get(i).experiments for i in ids)
    assert set(cpu.claim_ids("fig2", "4.1")) <= set(cpu.claim_ids("fig2"))
    words = cpu.status_words(ids, tmp_path)  # nothing stored there: every claim is not testable
    assert words.startswith(f"{len(ids)} are not testable (") and all(f"`{i}`" in words for i in ids)


def test_table2_words_put_ours_beside_the_papers(table2_runs):
    words = cpu.table2_words(table2_runs)
    cce = table2_runs[(table2_runs["method"] == "cce") & (table2_runs["noise"] == "open_set")]
    assert words["open_set"].startswith(f"CCE {100 * cce['test_acc_last'].mean():.2f} % (paper 62.92)")
    assert "Trunc Lq" in words["uniform"]


def test_model_numbers_read_the_stored_head_and_refuse_mixed_heads():
    import pandas as pd

    from gce.book import cpu_scale
    from gce.features import DEFAULT_SETTINGS

    (hidden,) = dict(cpu_scale.CPU_MODEL["model_kwargs"])["hidden"]
    assert cpu.model_numbers() == {"cpu_features": DEFAULT_SETTINGS.pca_dim, "cpu_hidden": hidden}
    runs = pd.DataFrame({"model_kwargs": ['[["hidden", [64]]]', '[["hidden",[64]]]']})
    assert cpu.model_numbers(runs)["cpu_hidden"] == 64
    mixed = pd.DataFrame({"model_kwargs": ['[["hidden", [64]]]', '[["hidden", [32]]]']})
    with pytest.raises(ValueError, match="2 different heads"):
        cpu.model_numbers(mixed)
