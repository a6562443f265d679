"""Experiment grids, resumable result storage with provenance, the paper's numbers, the command line."""

import json

import numpy as np
import pandas as pd
import pytest

from gce import __main__ as cli
from gce import experiments, train
from gce.experiments import Experiment, ResultStore, run_id
from gce.train import RunConfig

FAST = dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (16,)),), epochs=3, lr=0.05,
            track_train_softmax=False)


def test_grids_cover_the_papers_axes():
    t1 = experiments.spec("table1", "pocket")
    assert len(t1.configs) == 8 * 6 * 5  # noise settings x methods x seeds
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
    runs = pd.read_csv(tmp_path / "pocket" / "table1_runs.csv")
    assert set(runs["run_id"]) == {run_id(c) for c in cfgs}
    for col in ("commit", "torch_version", "device", "date", "scale", "dataset", "flip_rate_train"):
        assert runs[col].notna().all()
    hist = pd.read_csv(tmp_path / "pocket" / "table1_history.csv")
    assert len(hist) == 3 * 3 and set(hist["epoch"]) == {1, 2, 3}
    # T-hat: estimated from the CCE twin, stored with it, used by forward_T_hat
    cce = runs[runs.method == "cce"].iloc[0]
    t_hat = json.loads(cce["T_hat_estimate"])
    used = json.loads(runs[runs.method == "forward_T_hat"].iloc[0]["T_used"])
    np.testing.assert_allclose(used, t_hat, rtol=1e-9)
    np.testing.assert_allclose(np.sum(t_hat, axis=1), 1, rtol=1e-9)

    # a second call trains nothing
    def refuse(*a, **k):
        raise AssertionError("finished runs were retrained")
    monkeypatch.setattr(train, "train_many", refuse)
    experiments.run("table1", "pocket", results=tmp_path, progress=False)

    # losing one finished run retrains exactly that run
    runs[runs.method != "lq"].to_csv(tmp_path / "pocket" / "table1_runs.csv", index=False)
    trained = []
    monkeypatch.setattr(train, "train_many",
                        lambda cfgs, **k: trained.extend(cfgs) or [None] * 0)
    experiments.run("table1", "pocket", results=tmp_path, progress=False)
    assert [c.method for c in trained] == ["lq"]


def test_corrupt_result_file_is_named(tmp_path):
    d = tmp_path / "pocket"
    d.mkdir()
    (d / "table1_runs.csv").write_bytes(b"\xff\xfe\x00garbage\x00\n\"unclosed")
    with pytest.raises(ValueError, match="table1_runs.csv"):
        ResultStore(tmp_path, "pocket", "table1")
    (d / "table1_runs.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a gce result table"):
        ResultStore(tmp_path, "pocket", "table1")


def test_tables_put_ours_beside_the_papers(tmp_path, monkeypatch):
    cfgs = [RunConfig(**FAST, noise="uniform", eta=0.4, method=m, seed=s) for m in ("cce", "lq") for s in (0, 1)]
    _tiny(monkeypatch, cfgs)
    _, store = experiments.run("table1", "pocket", results=tmp_path, progress=False)
    wide = experiments.table1_wide(store.runs)
    assert ("ours (digits)", "CCE") in wide.index and ("paper (cifar10)", "Trunc Lq") in wide.index
    assert wide.loc[("paper (cifar10)", "CCE"), "uniform 0.4"] == "81.88 ± 0.29"
    mean = 100 * store.runs[store.runs.method == "lq"]["test_acc_best_val"].mean()
    assert wide.loc[("ours (digits)", "Lq"), "uniform 0.4"].startswith(f"{mean:.2f} ± ")


def test_command_line_reproduces_and_draws(tmp_path, monkeypatch, capsys):
    cfgs = [RunConfig(**FAST, noise="uniform", eta=0.4, method=m, seed=0) for m in ("cce", "mae")]
    _tiny(monkeypatch, cfgs)
    assert cli.main(["reproduce", "table1", "--scale", "pocket", "--results", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "table1: 2 runs (2 trained now" in out
    text = (tmp_path / "pocket" / "table1.md").read_text()
    assert "ours (digits)" in text and "paper (cifar10)" in text
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "table9"])
