"""gce.book.chapters.human_noise: what Theorems 1 and 2 promise on the shipped human label sets, and the super-class
numbers of CIFAR-100N's wrong labels."""

import numpy as np
import pandas as pd
import pytest

from gce import human_noise
from gce.book.chapters import human_noise as chapter


@pytest.fixture(scope="module")
def promises():
    return chapter.theorem_promises(("aggre", "worse", "noisy"), 0.7)


def test_theorem_promises_obeys_the_theorems(promises):
    assert list(promises.index) == ["aggre", "worse", "noisy"]
    assert (promises["clean gap R(f*) - R(f_hat)"] <= 1e-12).all()   # f* minimises the clean risk
    assert (promises["noisy gap"] >= -1e-12).all()                   # f_hat minimises the noisy risk
    applies = promises["Thm 2 applies"]
    assert (promises.loc[applies, "noisy gap"] <= promises.loc[applies, "Thm 2's B"]).all()
    assert promises.loc[~applies, "Thm 2's B"].isna().all()
    # where every class keeps its label most often, the noisy minimiser predicts every class right
    assert (promises.loc[applies, "classes f_hat gets wrong"] == 0).all()
    for s in promises.index:
        assert promises.loc[s, "noise rate"] == human_noise.noise_rate(human_noise.shipped_counts(s))
        T = human_noise.human_transition(s).numpy()
        assert promises.loc[s, "Thm 2 applies"] == bool((human_noise.theorem2_margins(T) > 0).all())


def test_theorem_promises_rejects_an_unknown_label_set():
    with pytest.raises(ValueError, match="unknown label set 'clean'"):
        chapter.theorem_promises(("clean",))


def test_promise_glue_names_and_types():
    table = pd.DataFrame.from_dict({
        "a": {"noise rate": 0.1, "Thm 1's A if uniform": -0.5, "clean gap R(f*) - R(f_hat)": -0.01,
              "Thm 2 applies": True, "Thm 2's B": 1.2, "noisy gap": 0.02, "classes f_hat gets wrong": 0},
        "b": {"noise rate": 0.4, "Thm 1's A if uniform": -0.2, "clean gap R(f*) - R(f_hat)": -0.3,
              "Thm 2 applies": False, "Thm 2's B": np.nan, "noisy gap": 0.04, "classes f_hat gets wrong": 3}},
        orient="index")
    out = chapter.promise_glue(table)
    assert list(out) == ["gap_a", "A_a", "B_a", "noisygap_a", "wrong_a", "gap_b", "A_b", "noisygap_b", "wrong_b"]
    assert out["B_a"] == 1.2 and out["gap_b"] == -0.3 and out["wrong_b"] == 3
    assert type(out["wrong_b"]) is int and type(out["A_a"]) is float


def test_superclass_numbers_on_a_known_matrix():
    coarse = np.arange(100) // 5
    counts = 10 * np.eye(100, dtype=np.int64)
    for i in range(100):  # one wrong label per class: inside super-class 3, to another super-class elsewhere
        j = 15 + (i + 1 - 15) % 5 if coarse[i] == 3 else (i + 5) % 100
        counts[i, j] += 1
    out = chapter.superclass_numbers(counts, coarse)
    assert out["super_share"] == pytest.approx(100 * 5 / 100)
    assert out["next_share"] == pytest.approx(100 * 4 / 100)      # only classes 15-18 of super-class 3 go next
    assert out["super_uniform"] == pytest.approx(100 * 4 / 99) and out["next_uniform"] == pytest.approx(100 / 99)
    assert out["super_ratio"] == pytest.approx(0.05 / (4 / 99))
    assert out["super_most_index"] == 3 and out["super_most_share"] == pytest.approx(100.0)
    assert out["super_most_name"] == human_noise.CIFAR100_COARSE_NAMES[3].replace("_", " ")
    assert out["super_least_share"] == 0.0 and out["super_least_index"] != 3


def _twin_like():
    """Stored pocket Table 1 runs dressed as human_twin runs on two label sets (the functions read columns only)."""
    from gce.book import claims

    runs, _ = claims.stored_results("table1", "pocket")
    runs = runs[(runs["dataset"] == "digits") & (runs["noise"] == "uniform") & runs["method"].isin(["cce", "lq"])]
    parts = [runs[runs["eta"] == eta].assign(noise="human_twin", human_labels=s)
             for eta, s in ((0.2, "aggre"), (0.6, "worse"))]
    return pd.concat(parts, ignore_index=True)


def test_twin_table_and_differences():
    from gce.book.chapters import human_noise as ch

    runs = _twin_like()
    t = ch.twin_table(runs)
    assert list(t.columns.get_level_values(0).unique()) == ["aggre", "worse"]
    assert list(t.index) == ["CCE", "Lq"]
    sel = runs[(runs["human_labels"] == "worse") & (runs["method"] == "lq")]
    assert t.loc["Lq", ("worse", "mean")] == pytest.approx(100 * sel["test_acc_best_val"].mean())
    assert t.loc["Lq", ("worse", "rate")] == pytest.approx(100 * sel["flip_rate_train"].mean())
    d = ch.twin_differences(runs)
    acc = runs[runs["human_labels"] == "aggre"].pivot_table(index="seed", columns="method",
                                                             values="test_acc_best_val") * 100
    assert d.loc[("aggre", "Lq"), "mean"] == pytest.approx((acc["lq"] - acc["cce"]).mean())
    with pytest.raises(ValueError, match="no human_twin runs"):
        ch.twin_table(runs.assign(noise="uniform"))


def test_twin_words_sorts_each_twin_by_two_standard_errors():
    from gce.book.chapters import human_noise as ch

    diffs = pd.DataFrame({"label set": ["aggre", "random1", "worse"], "method": "Lq", "mean": [3.0, -3.0, 0.1],
                          "se": [1.0, 1.0, 1.0], "seeds": 3}).set_index(["label set", "method"])
    assert ch.twin_words(diffs) == ("Lq is above CCE on aggre (+3.00 points), below on random1 (-3.00 points), "
                                    "within 2 standard errors on worse")


def test_confusion_table_names_the_pairs_and_marks_the_papers_flips():
    counts = np.array([[90, 8, 2], [1, 95, 4], [6, 0, 94]])
    top = human_noise.top_confusions(counts, 3)
    table = chapter.confusion_table(top, ["a", "b", "c"], {0: 1, 1: 2})
    assert table["true"].tolist() == ["a", "c", "b"] and table["human label"].tolist() == ["b", "a", "c"]
    assert table["images"].tolist() == [8, 6, 4]
    assert table["% of the class"].tolist() == [8.0, 6.0, 4.0]
    assert table["% of all wrong labels"].tolist() == pytest.approx([38.1, 28.6, 19.0])
    assert table["in the paper's map"].tolist() == [True, False, True]
    with pytest.raises(ValueError, match="share"):
        chapter.confusion_table(top.drop(columns="share"), ["a", "b", "c"], {})


def test_distance_table_is_zero_for_uniform_noise_and_large_for_one_target():
    uniform = np.full((4, 4), 0.1) + 0.6 * np.eye(4)                # every class keeps 0.7, 0.1 to each other
    one_target = 0.7 * np.eye(4) + 0.3 * np.roll(np.eye(4), 1, axis=1)
    table = chapter.distance_table({"uniform": uniform, "flip": one_target})
    assert table.loc["uniform", "mean TV from uniform"] == 0.0
    assert table.loc["uniform", "effective targets"] == 3.0 and table.loc["uniform", "rate spread (%)"] == 0.0
    assert table.loc["flip", "mean TV from uniform"] == table.loc["flip", "max TV possible"] == round(2 / 3, 3)
    assert table.loc["flip", "effective targets"] == 1.0
    assert table["classes"].tolist() == [4, 4] and table["of (c - 1)"].tolist() == [3, 3]
    with pytest.raises(ValueError, match="1 classes"):
        chapter.distance_table({"one class": np.eye(1)})
