"""gce.book.later: the published numbers of later work (every row sourced) and the losses side by side."""

import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from gce.book import later
from gce.human_noise import LABEL_SETS

matplotlib.use("Agg")
BIB = Path(__file__).resolve().parents[1] / "book" / "references.bib"


def test_later_results_parse_and_every_row_has_a_source():
    df = later.later_results()
    assert len(df) >= 40
    assert df["source"].str.strip().str.len().gt(0).all()
    assert (df["cite"].notna() | df["url"].notna()).all()
    assert set(df["checkpoint"]) <= set(later.CHECKPOINTS)
    assert df["accuracy"].between(0, 100).all() and df["std"].dropna().between(0, 10).all()
    assert set(df["dataset"]) == {"cifar10n", "cifar100n"}
    assert set(df["noise"]) <= set(LABEL_SETS) | {"random"}  # the quoting table's one column for random1-3
    keys = set(re.findall(r"^@\w+\{([^,]+),", BIB.read_text(), flags=re.M))
    assert set(df["cite"].dropna()) <= keys
    assert df["url"].dropna().str.startswith("https://github.com/").all()
    # each method is reported under more than one protocol: the point of the chapter
    ce = df[(df["method"] == "CE") & (df["dataset"] == "cifar10n")]
    assert set(ce["checkpoint"]) == set(later.CHECKPOINTS)
    assert "GCE" in set(df["method"])


@pytest.mark.parametrize("column,value,message", [
    ("source", " ", "needs a source"),
    ("checkpoint", "best", "checkpoint='best'"),
    ("accuracy", 187.85, "not a percentage"),
])
def test_malformed_rows_are_named(column, value, message):
    df = later.later_results()
    df.loc[3, column] = value
    with pytest.raises(ValueError, match=f"row 3: .*{re.escape(message)}|row 3: {re.escape(message)}"):
        later.check_later_results(df)


def test_a_row_needs_a_citation_or_a_url():
    df = later.later_results()
    df.loc[0, "cite"] = np.nan
    df.loc[0, "url"] = np.nan
    with pytest.raises(ValueError, match="row 0: give a citation key or a URL"):
        later.check_later_results(df)
    with pytest.raises(ValueError, match="columns"):
        later.check_later_results(df.drop(columns="note"))


def test_later_table_cells_and_protocols():
    table, protocols = later.later_table(), later.later_protocols()
    assert list(table.columns) == ["aggre", "random", "random1", "worse"]
    assert table.index.names == ["method", "protocol"]
    assert table.index.get_level_values("method")[0] == "GCE"
    assert set(table.index.get_level_values("protocol")) <= set(protocols.index)
    assert list(protocols.columns) == ["source", "architecture", "epochs", "checkpoint"]
    assert not protocols.duplicated().any()  # one key per protocol
    df = later.later_results()
    row = df[(df["method"] == "CE") & (df["source"].str.endswith("benchmark.tex")) & (df["noise"] == "worse")].iloc[0]
    key = protocols.index[(protocols["source"] == "benchmark.tex") & (protocols["epochs"] == "100")][0]
    assert table.loc[("CE", key), "worse"] == f"{row['accuracy']:.2f} ± {row['std']:.2f}"
    assert protocols.loc[key, "checkpoint"] == "best_noisy_val"
    assert list(later.later_table(dataset="cifar100n").columns) == ["noisy"]
    with pytest.raises(ValueError, match="dataset='mnist'"):
        later.later_table(dataset="mnist")
    # the page shows them as text no wider than the rendered box
    for frame in (table, protocols):
        assert max(len(line) for line in frame.to_string().splitlines()) <= 95


def test_published_finds_exactly_one_number():
    assert later.published("GCE", "random1", "GCE_original.txt") == 79.14
    assert later.published("CE", "worse", "thread 5", checkpoint="last") == 67.89
    with pytest.raises(ValueError, match="2 published numbers match"):
        later.published("CE", "worse", "thread 5")
    with pytest.raises(ValueError, match="0 published numbers"):
        later.published("GCE", "aggre", "nowhere")


def test_prose_numbers_look_up_every_quoted_number_once():
    df = later.later_results()
    got = later.prose_numbers(df)
    assert list(got) == list(later.PROSE_NUMBERS)
    assert got["ce_worse_last"] == later.published("CE", "worse", "thread 5", checkpoint="last", df=df)
    assert got["ce_random1_val"] == later.published("CE", "random1", "benchmark.tex", df=df)
    assert all(0 <= v <= 100 for v in got.values())
    assert later.prose_numbers(df, {"x": ("GCE", "random1", "GCE_original.txt", None)}) == {
        "x": later.published("GCE", "random1", "GCE_original.txt", df=df)}
    with pytest.raises(ValueError, match="2 published numbers match"):
        later.prose_numbers(df, {"ambiguous": ("CE", "worse", "thread 5", None)})


def test_losses_at_probability_match_their_formulas():
    p = np.array([1e-3, 0.1, 0.5, 0.9, 0.999])
    curves = later.losses_at_probability(p)
    np.testing.assert_allclose(curves["f_y"], p)
    np.testing.assert_allclose(curves["CCE"], -np.log(p))
    np.testing.assert_allclose(curves["MAE / 2"], 1 - p)
    np.testing.assert_allclose(curves["Lq (q = 0.7)"], (1 - p ** 0.7) / 0.7)
    np.testing.assert_allclose(curves["Taylor CE (t = 2)"], (1 - p) + (1 - p) ** 2 / 2)
    nce = np.log(p) / (np.log(p) + 9 * np.log((1 - p) / 9))
    np.testing.assert_allclose(curves["NCE+MAE (1, 1)"], nce + (1 - p))
    np.testing.assert_allclose(curves["SCE (0.1, 1)"], -0.1 * np.log(p) + 4 * (1 - p))
    for bad in ([0.0, 0.5], [1.0], []):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            later.losses_at_probability(bad)
    with pytest.raises(ValueError, match="c=1"):
        later.losses_at_probability([0.5], c=1)


def test_plot_losses_at_probability():
    fig = later.plot_losses_at_probability(n=50)
    ax = fig.axes[0]
    assert len(ax.lines) == len(later.LOSS_CURVES)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(later.LOSS_CURVES)
    matplotlib.pyplot.close(fig)


def _later_like(runs):
    """Stored pocket Table 1 runs with CCE relabelled as a later loss: the functions only read the columns."""
    import pandas as pd

    extra = runs[runs["method"] == "cce"].assign(method="sce")
    return pd.concat([runs, extra], ignore_index=True)


def test_grid_table_orders_the_papers_losses_then_the_later_ones():
    from gce.book import claims, later

    runs, _ = claims.stored_results("table1", "pocket")
    both = _later_like(runs)
    table = later.grid_table(both, methods=("cce", "lq", "sce"))
    assert list(dict.fromkeys(table.index.get_level_values("method"))) == ["CCE", "Lq", "SCE"]
    assert list(dict.fromkeys(table.index.get_level_values("source"))) == ["ours (digits)", "ours (digit_pairs)"]
    assert (table.loc[("ours (digits)", "SCE")] == table.loc[("ours (digits)", "CCE")]).all()
    with pytest.raises(ValueError, match="no stored runs of the methods"):
        later.grid_table(runs, methods=("cce", "nce_rce"))


def test_differences_are_paired_by_seed():
    from gce.book import claims, later

    runs, _ = claims.stored_results("table1", "pocket")
    d = later.differences(_later_like(runs), reference="lq", methods=("sce",))
    row = d[(d["dataset"] == "digits") & (d["noise"] == "uniform") & (d["eta"] == 0.4)].iloc[0]
    sel = runs[(runs["dataset"] == "digits") & (runs["noise"] == "uniform") & (runs["eta"] == 0.4)]
    acc = sel.pivot_table(index="seed", columns="method", values="test_acc_best_val") * 100
    assert row["mean"] == pytest.approx((acc["cce"] - acc["lq"]).mean())
    assert row["se"] == pytest.approx((acc["cce"] - acc["lq"]).std(ddof=1) / len(acc) ** 0.5)
    assert row["seeds"] == len(acc) and len(d) == 16


def test_a_later_grid_of_the_uniform_settings_only_keeps_those_settings():
    """The cpu scale's later grid covers Table 1's uniform settings only: the table, the differences and the fit
    gate keep the settings where every method has runs instead of failing on the class-dependent ones."""
    from gce.book import claims, later

    runs, _ = claims.stored_results("table1", "pocket")
    both = _later_like(runs)
    uniform_only = both[(both["method"] != "sce") | (both["noise"] == "uniform")]
    kept = later.common_cells(uniform_only, ("cce", "lq", "sce"))
    assert set(kept["noise"]) == {"uniform"} and set(kept["method"]) == {"cce", "lq", "sce"}
    assert len(kept) == len(both[(both["noise"] == "uniform") & both["method"].isin(("cce", "lq", "sce"))])
    d = later.differences(uniform_only, reference="lq", methods=("sce",))
    assert set(d["noise"]) == {"uniform"} and len(d) == 8 and (d["seeds"] > 0).all()
    table = later.grid_table(uniform_only, methods=("cce", "lq", "sce"))
    assert len({s for s, _ in table.columns}) == 4 and not table.isna().any().any()


def test_plot_differences_draws_one_panel_per_block():
    import matplotlib

    matplotlib.use("Agg")
    from gce.book import claims, later

    runs, _ = claims.stored_results("table1", "pocket")
    d = later.differences(_later_like(runs), reference="lq", methods=("sce",))
    fig = later.plot_differences(d, titles={"digits": "digits (pocket)"}, caption="c")
    assert [ax.get_title() for ax in fig.axes] == ["digits (pocket)", "digit_pairs"]
    from gce.book.plots import FIG_WIDTH

    long = later.plot_differences(d, caption="a long caption, " * 20)  # wrapped: no wider than the figure
    box = long.get_tightbbox(long.canvas.get_renderer())
    assert box.width <= FIG_WIDTH + 0.1
    with pytest.raises(ValueError, match="no differences"):
        later.plot_differences(d.iloc[:0])


def test_difference_summary_counts_settings_beyond_two_standard_errors():
    import pandas as pd

    from gce.book import later

    diffs = pd.DataFrame({"dataset": ["digits"] * 3 + ["cifar10_jpeg_features"], "noise": "uniform",
                          "eta": [0.2, 0.4, 0.6, 0.2], "method": "sce", "mean": [3.0, -3.0, 0.5, 1.0],
                          "se": [1.0, 1.0, 1.0, 0.1], "seeds": 3})
    s = later.difference_summary(diffs)
    assert s.loc[("digits", "sce")].tolist() == [pytest.approx(1 / 6), 1, 1, 3]
    words = later.difference_words(s)
    assert words["later_words_pocket"].startswith("On digits (pocket): SCE +0.17 points on average (above L_q at 1")
    assert words["later_words_cpu"].startswith("On CIFAR-10 (JPEG copy), cpu: SCE +1.00")
    with pytest.raises(ValueError, match="z must be"):
        later.difference_summary(diffs, z=0)


def test_stored_grids_needs_both_experiments(tmp_path):
    from gce.book import later

    assert later.stored_grids(("pocket",), tmp_path) == {}


def test_missing_note_names_the_command_of_each_missing_scale():
    from gce.book import later

    note = later.missing_note({"pocket": None})
    assert "`cpu` scale the 48 runs" in note and "reproduce later --scale cpu --jobs 2" in note
    assert later.missing_note({"pocket": None, "cpu": None}) == ""


def test_fit_table_reads_both_experiments_and_keeps_the_methods_order(tmp_path):
    from gce.book import later

    assert later.fit_table("pocket", tmp_path) is None
    table = later.fit_table("pocket", methods=("lq", "cce"))
    assert list(table.columns) == ["Lq", "CCE"] and table.dtypes.eq(bool).all()


def test_unfitted_words_name_the_settings_where_lq_had_not_levelled_off():
    import pandas as pd

    from gce.book import later

    idx = pd.MultiIndex.from_tuples([("digits", "uniform", 0.4), ("digits", "uniform", 0.8),
                                     ("digit_pairs", "class_dependent", 0.2), ("digit_pairs", "uniform", 0.4)],
                                    names=["dataset", "noise", "eta"])
    table = pd.DataFrame({"Lq": [True, False, False, False], "CCE": [True] * 4}, index=idx)
    words = later.unfitted_words({"pocket": table, "cpu": None})
    assert words == "on digits (pocket) at uniform 0.8; on digit_pairs (pocket) at every setting"
    assert later.unfitted_words({"pocket": table.assign(Lq=True)}) == "at no setting"
    assert later.unfitted_words({"pocket": table}, reference="CCE") == "at no setting"
    with pytest.raises(ValueError, match="no column 'SCE'"):
        later.unfitted_words({"pocket": table}, reference="SCE")
