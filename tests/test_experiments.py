"""Experiment grids, resumable result storage with provenance, the paper's numbers, the command line."""

import json
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest

from gce.book import cli
from gce import train
from gce.book import analysis, experiments
from gce.book.experiments import Experiment
from gce.book.store import ResultStore, run_id
from gce.train import RunConfig

FAST = dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (16,)),), epochs=3, lr=0.05,
            track_train_softmax=False)


def test_grids_cover_the_papers_axes():
    t1 = experiments.spec("table1", "pocket")
    assert len(t1.configs) == 8 * 6 * (5 + 3)  # noise settings x methods x seeds (digits 5, digit_pairs 3)
    assert {(c.noise, c.eta) for c in t1.configs} == set(experiments.TABLE1_NOISE)
    assert {c.method for c in t1.configs} == set(experiments.TABLE1_METHODS)
    assert all(c.q == 0.7 and c.k == 0.5 for c in t1.configs)
    paper = experiments.spec("table1", "paper")
    assert len(paper.configs) == 3 * 240 and paper.datasets == ("fashionmnist", "cifar10", "cifar100")
    c100 = [c for c in paper.configs if c.dataset == "cifar100"][0]
    assert (c100.epochs, c100.milestones, c100.prune_start, c100.model) == (150, (80, 120), 80, "resnet34")
    c10 = [c for c in paper.configs if c.dataset == "cifar10"][0]
    assert (c10.epochs, c10.milestones, c10.lr, c10.momentum, c10.weight_decay, c10.batch_size, c10.augment) == \
        (120, (40, 80), 0.01, 0.9, 1e-4, 128, True)
    fm = [c for c in paper.configs if c.dataset == "fashionmnist"][0]
    assert fm.model == "resnet18"
    t2 = experiments.spec("table2", "paper")
    assert {c.model for c in t2.configs} == {"wang_cnn"} and {c.epochs for c in t2.configs} == {100}
    assert {c.noise for c in t2.configs} == {"open_set", "uniform"} and {c.eta for c in t2.configs} == {0.4}
    f2 = experiments.spec("fig2", "paper")
    assert {c.optimizer for c in f2.configs} == {"adam"} and {c.eta for c in f2.configs} == {0.0, 0.2, 0.6}
    assert len(experiments.spec("fig2", "lite").configs) == 3 * 6


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown experiment"):
        experiments.spec("table3")
    with pytest.raises(ValueError, match="unknown scale"):
        experiments.spec("table1", "huge")


def test_paper_numbers_are_the_papers():
    t1 = experiments.paper_table1()
    assert len(t1) == 3 * 6 * 8
    row = t1[(t1.dataset == "cifar10") & (t1.noise == "uniform") & (t1.eta == 0.8) & (t1.method == "trunc_lq")]
    assert (row["mean"].item(), row["std"].item()) == (67.92, 0.60)
    row = t1[(t1.dataset == "cifar100") & (t1.noise == "class_dependent") & (t1.eta == 0.1) & (t1.method == "mae")]
    assert (row["mean"].item(), row["std"].item()) == (13.38, 1.84)
    t2 = experiments.paper_table2()
    assert t2.set_index(["noise", "method"]).loc[("open_set", "trunc_lq"), "accuracy"] == 79.55


def _tiny(monkeypatch, configs):
    exp = Experiment("table1", "pocket", "tiny", tuple(configs), ("digits",), "test")
    monkeypatch.setattr(experiments, "spec", lambda name, scale="pocket": exp)
    return exp


def test_run_stores_results_with_provenance_and_resumes(tmp_path, monkeypatch):
    cfgs = [RunConfig(**FAST, noise="class_dependent", eta=0.3, method=m, seed=0)
            for m in ("cce", "lq", "forward_T_hat")]
    _tiny(monkeypatch, cfgs)
    exp, store = experiments.run("table1", "pocket", results=tmp_path, progress=False)
    runs = ResultStore(tmp_path, "pocket", "table1").runs
    assert set(runs["run_id"]) == {run_id(c) for c in cfgs}
    for col in ("commit", "torch_version", "device", "date", "scale", "dataset", "flip_rate_train"):
        assert runs[col].notna().all()
    hist = ResultStore(tmp_path, "pocket", "table1").history
    assert len(hist) == 3 * 3 and set(hist["epoch"]) == {1, 2, 3}
    # T-hat: estimated from the CCE twin, stored with it, used by forward_T_hat
    cce = runs[runs.method == "cce"].iloc[0]
    t_hat = json.loads(cce["T_hat_estimate"])
    used = json.loads(runs[runs.method == "forward_T_hat"].iloc[0]["T_used"])
    np.testing.assert_allclose(used, t_hat, rtol=1e-9)
    # stored to 6 significant digits (gce.book.store): rows sum to 1 within that
    np.testing.assert_allclose(np.sum(t_hat, axis=1), 1, rtol=1e-5)

    # a second call trains nothing
    def refuse(*a, **k):
        raise AssertionError("finished runs were retrained")
    monkeypatch.setattr(train, "train_many", refuse)
    experiments.run("table1", "pocket", results=tmp_path, progress=False)

    # losing one finished run retrains exactly that run
    with sqlite3.connect(tmp_path / "pocket" / "results.sqlite") as con:
        con.execute("DELETE FROM runs WHERE run_id = ?", (run_id(cfgs[1]),))
    trained = []
    monkeypatch.setattr(train, "train_many",
                        lambda cfgs, **k: trained.extend(cfgs) or [None] * 0)
    experiments.run("table1", "pocket", results=tmp_path, progress=False)
    assert [c.method for c in trained] == ["lq"]


def test_corrupt_result_file_is_named(tmp_path):
    d = tmp_path / "pocket"
    d.mkdir()
    (d / "results.sqlite").write_bytes(b"\xff\xfe\x00garbage\x00\n\"unclosed")
    with pytest.raises(ValueError, match="results.sqlite.*not a readable SQLite database"):
        ResultStore(tmp_path, "pocket", "table1")
    (d / "results.sqlite").unlink()
    with sqlite3.connect(d / "results.sqlite") as con:
        con.execute("CREATE TABLE a (b)")
    with pytest.raises(ValueError, match="not a gce result database"):
        ResultStore(tmp_path, "pocket", "table1")


def test_tables_put_ours_beside_the_papers(tmp_path, monkeypatch):
    cfgs = [RunConfig(**FAST, noise="uniform", eta=0.4, method=m, seed=s) for m in ("cce", "lq") for s in (0, 1)]
    _tiny(monkeypatch, cfgs)
    _, store = experiments.run("table1", "pocket", results=tmp_path, progress=False)
    wide = analysis.table1_wide(store.runs)
    assert ("ours (digits)", "CCE") in wide.index and ("paper (cifar10)", "Trunc Lq") in wide.index
    assert tuple(wide.loc[("paper (cifar10)", "CCE"), "uniform 0.4"]) == (81.88, 0.29)
    acc = 100 * store.runs[store.runs.method == "lq"]["test_acc_best_val"]
    np.testing.assert_allclose(wide.loc[("ours (digits)", "Lq"), "uniform 0.4"], [acc.mean(), acc.std(ddof=1)])
    text = analysis.format_pm(wide)
    assert text.loc[("paper (cifar10)", "CCE"), "uniform 0.4"] == "81.88 ± 0.29"
    assert text.loc[("ours (digits)", "Lq"), "uniform 0.4"].startswith(f"{analysis.round_pct(acc.mean()):.2f} ± ")


def test_command_line_reproduces_and_draws(tmp_path, monkeypatch, capsys):
    cfgs = [RunConfig(**FAST, noise="uniform", eta=0.4, method=m, seed=0) for m in ("cce", "mae")]
    _tiny(monkeypatch, cfgs)
    assert cli.main(["reproduce", "table1", "--scale", "pocket", "--results", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "table1: 2 runs (2 trained now" in out
    text = (tmp_path / "pocket" / "table1.md").read_text()
    # digits stands for both 10-class datasets of the paper (experiments.PAPER_ANALOGUE): both paper blocks show
    assert re.search(r"\| ours \(digits\) +\| CCE", text) and "paper (cifar10)" in text and "('" not in text
    assert "paper (fashionmnist)" in text
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "table9"])


# ---- cce_vs_mae and dynamics ----


def _hist_frame(curves: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs/history tables from {run_id: (run columns, test_acc list, val_loss list)}."""
    runs, hist = [], []
    for rid, (cols, acc, vloss) in curves.items():
        runs.append({"run_id": rid, **cols})
        hist += [{"run_id": rid, "epoch": e + 1, "test_acc": a, "val_loss": v, "softmax_clean": 0.5 + 0.1 * e,
                  "softmax_noisy": 0.1 * e} for e, (a, v) in enumerate(zip(acc, vloss))]
    return pd.DataFrame(runs), pd.DataFrame(hist)


def test_convergence_table_counts_first_epochs_reaching_each_threshold():
    runs, hist = _hist_frame({
        "a0": (dict(dataset="d", method="cce", seed=0), [0.5, 0.91, 0.96, 0.95], [1, 1, 1, 1]),
        "a1": (dict(dataset="d", method="cce", seed=1), [0.5, 0.8, 0.92, 0.97], [1, 1, 1, 1]),
        "b0": (dict(dataset="d", method="mae", seed=0), [0.2, 0.3, 0.5, 0.91], [1, 1, 1, 1]),
    })
    t = analysis.convergence_table(runs, hist, thresholds=(0.9, 0.95)).set_index("method")
    assert t.loc["cce", "seeds"] == 2 and t.loc["mae", "seeds"] == 1
    assert t.loc["cce", "epoch_to_90%"] == 2.5 and t.loc["cce", "epoch_to_90%_min"] == 2
    assert t.loc["cce", "epoch_to_95%"] == 3.5 and t.loc["cce", "reached_95%"] == 2
    assert t.loc["mae", "epoch_to_90%"] == 4 and t.loc["mae", "reached_95%"] == 0
    assert np.isnan(t.loc["mae", "epoch_to_95%"])
    np.testing.assert_allclose(t.loc["cce", ["best", "best_epoch", "last"]].astype(float), [0.965, 3.5, 0.96])
    per = analysis.convergence_table(runs, hist, per_run=True).set_index("run_id")
    assert per.loc["a0", "best_epoch"] == 3 and per.loc["b0", "last"] == 0.91
    with pytest.raises(ValueError, match="no column"):
        analysis.convergence_table(runs, hist, by=("eta",))


def test_format_convergence_reads_the_table():
    runs, hist = _hist_frame({
        "a0": (dict(dataset="d", method="cce", seed=0), [0.5, 0.91, 0.96, 0.95], [1, 1, 1, 1]),
        "a1": (dict(dataset="d", method="cce", seed=1), [0.5, 0.8, 0.92, 0.97], [1, 1, 1, 1]),
        "b0": (dict(dataset="d", method="mae", seed=0), [0.2, 0.3, 0.5, 0.91], [1, 1, 1, 1]),
        "b1": (dict(dataset="d", method="mae", seed=1), [0.2, 0.3, 0.5, 0.6], [1, 1, 1, 1]),
    })
    t = analysis.format_convergence(analysis.convergence_table(runs, hist, thresholds=(0.9, 0.95)))
    assert t.loc["CCE", "epochs to 90%"] == "2.5 (2-3)" and t.loc["CCE", "best (%)"] == "96.50"
    assert t.loc["MAE", "epochs to 90%"] == "1 of 2 runs: 4.0 (4-4)" and t.loc["MAE", "epochs to 95%"] == "never"
    assert t.loc["MAE", "last epoch (%)"] == "75.50"


def test_paper_fig1b_numbers_are_the_papers():
    p = experiments.paper_fig1b().set_index("method")
    assert p.loc["cce", "best_test_acc"] == 39.92 and p.loc["cce", "epochs"] == 7
    assert p.loc["mae", "best_test_acc"] == 38.29 and p.loc["mae", "epochs"] == 2000


def test_mae_is_unhinged_at_twice_the_sgd_rate_and_the_same_adam_rate():
    mae_sgd = analysis.short_trajectory("mae", "sgd", 0.05)
    assert mae_sgd.shape == (5, 9 * 4)
    np.testing.assert_allclose(mae_sgd, analysis.short_trajectory("unhinged", "sgd", 0.1), atol=1e-12)
    assert np.abs(mae_sgd - analysis.short_trajectory("unhinged", "sgd", 0.05)).max() > 1e-3
    np.testing.assert_allclose(analysis.short_trajectory("mae", "adam", 0.01),
                               analysis.short_trajectory("unhinged", "adam", 0.01), atol=1e-5)
    # weight decay is not scaled with the loss: the SGD equivalence then needs half the decay
    np.testing.assert_allclose(analysis.short_trajectory("mae", "sgd", 0.05, weight_decay=1e-2),
                               analysis.short_trajectory("unhinged", "sgd", 0.1, weight_decay=5e-3), atol=1e-12)
    with pytest.raises(ValueError):
        analysis.short_trajectory("lq", "sgd", 0.1)


def test_fig2_q_is_zero_for_cce():
    runs = pd.DataFrame({"method": ["cce", "lq", "lq"], "q": [0.7, 0.2, 1.0]})
    assert analysis.fig2_q(runs).tolist() == [0.0, 0.2, 1.0]


def test_overfitting_table_and_threshold():
    runs, hist = _hist_frame({
        "c0": (dict(eta=0.2, method="cce", q=0.7, seed=0), [0.5, 0.9, 0.8, 0.7], [2, 1, 3, 4]),
        "c1": (dict(eta=0.2, method="cce", q=0.7, seed=1), [0.5, 0.9, 0.9, 0.8], [2, 1, 3, 4]),
        "l0": (dict(eta=0.2, method="lq", q=0.5, seed=0), [0.5, 0.7, 0.9, 0.895], [2, 1, 0.5, 0.6]),
        "m0": (dict(eta=0.2, method="lq", q=1.0, seed=0), [0.5, 0.7, 0.8, 0.8], [2, 1, 0.5, 0.4]),
        "n0": (dict(eta=0.6, method="cce", q=0.7, seed=0), [0.5, 0.6, 0.5, 0.5], [2, 1, 3, 4]),
        "n1": (dict(eta=0.6, method="lq", q=1.0, seed=0), [0.5, 0.6, 0.5, 0.5], [2, 1, 3, 4]),
    })
    t = analysis.overfitting_table(runs, hist)
    row = t[(t.eta == 0.2) & (t.q == 0.0)].iloc[0]
    assert row["seeds"] == 2 and row["peak_epoch"] == 2 and row["val_loss_min_epoch"] == 2
    np.testing.assert_allclose([row["peak"], row["last"], row["drop"], row["drop_min"], row["drop_max"]],
                               [0.9, 0.75, 0.15, 0.1, 0.2])
    lq_row = t[(t.eta == 0.2) & (t.q == 0.5)].iloc[0]
    np.testing.assert_allclose(lq_row["drop"], 0.005)
    per = analysis.overfitting_table(runs, hist, per_run=True)
    assert len(per) == 6 and set(per.columns) >= {"run_id", "eta", "q", "drop"}


def test_label_softmax_table_means_and_gap():
    runs, hist = _hist_frame({
        "c0": (dict(method="cce", seed=0), [0.5, 0.6, 0.7], [1, 1, 1]),
        "c1": (dict(method="cce", seed=1), [0.5, 0.6, 0.7], [1, 1, 1]),
    })
    hist.loc[hist.run_id == "c1", "softmax_noisy"] += 0.2
    t = analysis.label_softmax_table(runs, hist, epochs=[1, 3])
    assert t["epoch"].tolist() == [1, 3]
    np.testing.assert_allclose(t["softmax_noisy"], [0.1, 0.3])
    np.testing.assert_allclose(t["gap"], [0.4, 0.4])


# ---- closed_set ----


def test_best_mask_finds_the_papers_bold_cells_and_its_three_slips():
    t1 = experiments.paper_table1()
    t1["setting"] = t1["noise"] + " " + t1["eta"].astype(str)
    means = t1.pivot_table(index=["dataset", "method"], columns="setting", values="mean", sort=False)
    bold = t1.pivot_table(index=["dataset", "method"], columns="setting", values="bold", sort=False).astype(bool)
    mask = analysis.best_mask(means, 2, by="dataset")
    differ = sorted((d, m, s) for (d, m), row in (mask != bold).iterrows() for s, v in row.items() if v)
    # FASHION-MNIST: the paper bolds 91.16 (Forward T) over 91.30 (Lq) and 93.66 (T-hat) over 93.72 (CCE);
    # CIFAR-100: Lq and Trunc Lq tie at 66.59, the paper bolds one of them
    assert differ == [("cifar100", "lq", "class_dependent 0.2"), ("fashionmnist", "cce", "class_dependent 0.2"),
                      ("fashionmnist", "forward_T", "uniform 0.6"), ("fashionmnist", "forward_T_hat",
                                                                     "class_dependent 0.2"),
                      ("fashionmnist", "lq", "uniform 0.6")]


def test_best_mask_on_mean_std_tables_groups_ties_and_gaps():
    idx = pd.MultiIndex.from_tuples([("ours", "a"), ("ours", "b"), ("ours", "c"), ("paper", "a"), ("paper", "b")],
                                    names=["source", "method"])
    cols = pd.MultiIndex.from_product([["x", "y"], ["mean", "std"]], names=["setting", "stat"])
    t = pd.DataFrame([[90, 1, 1, np.nan], [95.5, 0.2, 3, np.nan], [95.504, 3, 2, np.nan], [10, 0.1, np.nan, np.nan],
                      [np.nan, np.nan, 5, 1]], index=idx, columns=cols, dtype=float)
    np.testing.assert_allclose(analysis.means(t)["x"], [90, 95.5, 95.504, 10, np.nan])
    m = analysis.best_mask(t, 1)  # 95.504 and 95.5 tie as displayed
    assert m["x"].tolist() == [False, True, True, True, False]  # a tie at the top: both marked
    assert m["y"].tolist() == [False, True, False, False, True]
    m_all = analysis.best_mask(t, 2, by=None)
    assert m_all["y"].tolist() == [False, True, False, False, True]
    assert analysis.best_mask(t, 3)["x"].tolist() == [True, True, True, True, False]
    with pytest.raises(ValueError):
        analysis.best_mask(t, 0)
    styler = analysis.style_best(t, 1, caption="demo")
    styler._compute()
    bold = {k for k, v in styler.ctx.items() if ("font-weight", "bold") in v}
    assert bold == {(1, 0), (2, 0), (3, 0), (1, 1), (4, 1)}
    assert "demo" in styler.to_html()


def _runs_frame(rows):
    base = dict(dataset="digits", q=0.7, k=0.5, prune_start=2, flip_rate_train=0.4, flip_rate_val=0.4,
                test_acc_best_val=0.9, test_acc_last=0.8, best_epoch=1, T_hat_estimate="")
    return pd.DataFrame([{**base, **r} for r in rows])


def test_flip_rate_table_expects_eta_over_two_for_class_dependent_digits():
    runs = _runs_frame([dict(run_id="a", noise="class_dependent", eta=0.4, method="cce", seed=0, flip_rate_train=0.19,
                             flip_rate_val=0.15),
                        dict(run_id="b", noise="class_dependent", eta=0.4, method="cce", seed=1, flip_rate_train=0.21,
                             flip_rate_val=0.25),
                        dict(run_id="c", noise="uniform", eta=0.6, method="cce", seed=0, flip_rate_train=0.6),
                        dict(run_id="d", noise="open_set", eta=0.4, method="cce", seed=0)])
    t = analysis.flip_rate_table(runs).set_index("noise")
    assert set(t.index) == {"class_dependent", "uniform"}
    cols = ["expected", "train", "val", "val_min", "val_max"]
    np.testing.assert_allclose(t.loc["class_dependent", cols].astype(float), [0.2, 0.2, 0.2, 0.15, 0.25])
    np.testing.assert_allclose(t.loc["uniform", "expected"], 0.6)


def test_transition_estimate_errors_against_the_true_T():
    from gce import noise
    T = noise.transition_matrix("class_dependent", "digits", 0.3).numpy()
    T_hat = T.copy()
    T_hat[0, 0], T_hat[0, 1] = 0.8, 0.2  # true row 0 is (1, 0, ...)
    runs = _runs_frame([dict(run_id="a", noise="class_dependent", eta=0.3, method="cce", seed=0,
                             T_hat_estimate=json.dumps(T_hat.tolist())),
                        dict(run_id="b", noise="class_dependent", eta=0.3, method="lq", seed=0)])
    e = analysis.transition_estimate_errors(runs)
    assert len(e) == 1
    np.testing.assert_allclose(e[["mean_abs_error", "diag_abs_error", "max_abs_error"]].iloc[0],
                               [0.4 / 100, 0.2 / 10, 0.2])


def test_pruning_summary_reads_the_first_pruning_epoch_and_bounds_precision():
    runs = _runs_frame([dict(run_id="t0", noise="uniform", eta=0.4, method="trunc_lq", seed=0, best_epoch=3,
                             test_acc_best_val=0.91),
                        dict(run_id="t1", noise="uniform", eta=0.4, method="trunc_lq", seed=1, best_epoch=1),
                        dict(run_id="l0", noise="uniform", eta=0.4, method="lq", seed=0, best_epoch=1,
                             test_acc_best_val=0.9),
                        dict(run_id="l1", noise="uniform", eta=0.4, method="lq", seed=1, best_epoch=1)])
    kept = {"t0": [1, 1, 0.5, 0.55], "t1": [1, 1, 0.8, 0.8], "l0": [1] * 4, "l1": [1] * 4}
    hist = pd.DataFrame([dict(run_id=r, epoch=e + 1, kept=k) for r, ks in kept.items() for e, k in enumerate(ks)])
    s = analysis.pruning_summary(runs, hist).set_index("seed")
    assert s.loc[0, "pruned_before_best"] and not s.loc[1, "pruned_before_best"]
    np.testing.assert_allclose(s.loc[0, ["kept_first", "kept_best", "kept_last"]].astype(float), [0.5, 0.55, 0.55])
    np.testing.assert_allclose(s.loc[1, ["kept_first", "kept_best"]].astype(float), [0.8, 1.0])
    # kept 0.5 with 40% wrong labels: at least 0.1/0.5 of the kept are right, at most all of them
    np.testing.assert_allclose(s.loc[0, ["precision_low", "precision_high"]].astype(float), [0.2, 1.0])
    np.testing.assert_allclose(s.loc[1, ["precision_low", "precision_high"]].astype(float), [0.5, 0.75])
    np.testing.assert_allclose(s.loc[0, ["acc", "lq_acc"]].astype(float), [0.91, 0.9])


def test_first_pruning_step_matches_the_engines_pruning():
    cfgs = [RunConfig(**{**FAST, "epochs": 5}, noise="uniform", eta=0.4, method="trunc_lq", k=0.3, prune_start=3,
                      seed=s) for s in (0, 1)]
    samples = analysis.first_pruning_step(cfgs)
    assert set(samples["run"]) == {0, 1} and (samples["kept"] == (samples["f_y"] >= 0.3)).all()
    assert (samples["clean"] == (samples["label"] == samples["noisy_label"])).all()
    # the engine kept the same fraction during epoch prune_start (history epoch prune_start + 1)
    full = train.train_many(cfgs)
    for i, res in enumerate(full):
        np.testing.assert_allclose(samples[samples.run == i]["kept"].mean(), res.history["kept"][3], atol=1e-6)
        assert res.history["kept"][2] == 1.0
    with pytest.raises(ValueError, match="trunc_lq"):
        analysis.first_pruning_step([RunConfig(**FAST, method="lq")])


def test_first_pruning_step_open_set_marks_outside_images_as_wrong():
    cfg = RunConfig(**{**FAST, "epochs": 2}, noise="open_set", ood="photo_patches", eta=0.4, method="trunc_lq",
                    prune_start=2, seed=0)
    s = analysis.first_pruning_step([cfg])
    from gce import data
    ds = data.load("digits")
    n_train = round(len(ds.train) * 0.9)
    assert abs(len(s) - n_train) <= 10
    np.testing.assert_allclose(1 - s["clean"].mean(), 0.4, atol=0.01)
    inset = s[s["clean"]]
    assert (inset["label"] == inset["noisy_label"]).all()


# ---- open_set ----


def test_ood_separability_is_half_for_alike_and_one_for_separable_images():
    import torch
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (200, 1, 4, 4), generator=g, dtype=torch.uint8)
    alike = torch.randint(0, 256, (300, 1, 4, 4), generator=g, dtype=torch.uint8)
    assert abs(analysis.ood_separability(a, alike) - 0.5) < 0.1
    bright = (torch.randint(0, 256, (150, 1, 4, 4), generator=g) // 4 + 190).to(torch.uint8)
    dark = (torch.randint(0, 256, (150, 1, 4, 4), generator=g) // 4).to(torch.uint8)
    assert analysis.ood_separability(dark, bright) > 0.99
    with pytest.raises(ValueError, match="pixels"):
        analysis.ood_separability(a, torch.zeros(10, 1, 2, 2, dtype=torch.uint8))
