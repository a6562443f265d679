"""The cpu scale end to end on a tiny CIFAR-10 in the official python-pickle format: unsupervised features,
their cache, a few heads of the grid trained by the batched engine, the result store."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tv

from gce import data, features
from gce.book import cpu_scale, experiments
from gce.book.store import ResultStore, provenance, run_id
from gce.train import RunConfig, predict_proba, train_many
from conftest import patch_cifar_md5s, write_cifar10

TINY = features.FeatureSettings(n_patches=3000, centroids=16, kmeans_iters=3, pca_dim=8)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A 200 + 20 image CIFAR-10 in torchvision's layout, a private feature cache and small feature settings."""
    folder, *_ = write_cifar10(tmp_path / "data", np.random.default_rng(0), n_per_batch=40, n_test=20)
    patch_cifar_md5s(monkeypatch, tv.CIFAR10, folder)
    monkeypatch.setenv("GCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(features, "DEFAULT_SETTINGS", TINY)
    return tmp_path


def test_features_are_cached_by_settings_and_data(tiny, monkeypatch):
    f = features.features("cifar10", root=tiny / "data", download=False, progress=False)
    assert f["train"].shape == (200, 8) and f["test"].shape == (20, 8) and f["train"].dtype == torch.float32
    assert f["label"] == "CIFAR-10" and Path(f["path"]).parent == tiny / "cache" / "features"
    assert TINY.key() in Path(f["path"]).name and f["sha256"][:16] in Path(f["path"]).name
    # unit average variance on the training images, centred there
    assert f["train"].var(0).mean() == pytest.approx(1.0, rel=0.05)
    assert f["train"].mean(0).abs().max() < 1e-4

    def no_encoding(*args, **kwargs):
        raise AssertionError("the second call must read the cache")

    monkeypatch.setattr(features, "encode", no_encoding)
    again = features.features("cifar10", root=tiny / "data", download=False, progress=False)
    assert torch.equal(again["train"], f["train"]) and again["path"] == f["path"]
    with pytest.raises(AssertionError, match="read the cache"):  # other settings: another file, computed anew
        features.features("cifar10", dataclasses.replace(TINY, seed=1), root=tiny / "data", download=False)


def test_features_are_deterministic(tiny):
    a = features.features("cifar10", root=tiny / "data", download=False, progress=False, cache=tiny / "a")
    b = features.features("cifar10", root=tiny / "data", download=False, progress=False, cache=tiny / "b")
    assert torch.equal(a["train"], b["train"]) and torch.equal(a["test"], b["test"])
    c = features.features("cifar10", dataclasses.replace(TINY, seed=1), root=tiny / "data", download=False,
                          progress=False)
    assert not torch.allclose(a["train"], c["train"])


def test_feature_datasets_and_subsets(tiny):
    full = data.load("cifar10_features", tiny / "data", download=False)
    inset = data.load("cifar10_features_0to4", tiny / "data", download=False)
    out = data.load("cifar10_features_5to9", tiny / "data", download=False)
    assert full.name == "cifar10" and full.train.images.shape == (200, 8, 1, 1)
    assert len(inset.train) + len(out.train) == 200 and inset.classes == full.classes[:5]
    assert int(inset.train.labels.max()) <= 4 and int(out.train.labels.max()) <= 4
    ids = torch.nonzero(full.train.labels >= 5).squeeze(1)
    assert torch.equal(out.train.images, full.train.images[ids]) and torch.equal(out.train.labels,
                                                                                 full.train.labels[ids] - 5)


def _short(cfg: RunConfig) -> RunConfig:
    return dataclasses.replace(cfg, epochs=3, milestones=(1, 2), prune_start=1, prune_every=1)


def test_head_grid_to_store(tiny, monkeypatch):
    monkeypatch.setenv("GCE_CPU_SOURCE", "cifar10")
    t1 = cpu_scale.cpu_configs("table1")
    picked = [c for c in t1 if c.seed == 0 and (c.noise, c.eta) == ("uniform", 0.4) and c.method in ("cce", "trunc_lq")]
    t2 = [c for c in cpu_scale.cpu_configs("table2") if c.seed == 0 and c.noise == "open_set" and c.method == "lq"]
    hu = [c for c in cpu_scale.cpu_configs("human") if c.seed == 0 and c.human_labels == "worse" and c.method == "cce"]
    cfgs = [_short(c) for c in picked + t2 + hu]
    assert [c.dataset for c in cfgs] == ["cifar10_features"] * 2 + ["cifar10_features_0to4", "cifar10_features"]
    assert cfgs[2].ood == "cifar10_features_5to9"
    results = train_many(cfgs, root=tiny / "data")
    for r in results:
        assert r.epochs == 3 and 0 <= r.test_acc_last <= 1 and np.isfinite(r.history["train_loss"]).all()
    assert results[0].flip_rate_train > 0.2 and results[1].history["kept"][-1] < 1.0  # noise drawn, pruning ran
    store = ResultStore(tiny / "results", "cpu", "table1")
    store.add(results, provenance())
    reopened = ResultStore(tiny / "results", "cpu", "table1")
    assert reopened.done() == {run_id(c) for c in cfgs}
    runs = reopened.runs
    assert set(runs["dataset"]) == {"cifar10_features", "cifar10_features_0to4"}
    assert len(reopened.history) == 3 * len(cfgs)


def test_cpu_scale_grids():
    assert "cpu" in experiments.SCALES
    sizes = {name: len(experiments.spec(name, "cpu").configs) for name in cpu_scale.EXPERIMENTS}
    assert sizes == {"onset": 2, "fig1": 12, "fig2": 54, "table1": 144, "table2": 33, "human": 27}
    t1 = experiments.spec("table1", "cpu").configs
    assert {(c.epochs, c.milestones, c.prune_start, c.prune_every, c.batch_size, c.momentum, c.weight_decay)
            for c in t1} == {(120, (40, 80), 40, 10, 128, 0.9, 1e-4)}
    assert {c.dataset for c in t1} == {"cifar10_jpeg_features"} and {c.lr for c in t1} == {cpu_scale.CPU_LR}
    fig = experiments.spec("fig2", "cpu").configs
    assert {(c.optimizer, c.lr, c.milestones) for c in fig} == {("adam", 1e-3, ())}
    t2 = experiments.spec("table2", "cpu").configs
    assert {(c.epochs, c.milestones) for c in t2} == {(100, ())}
    hu = experiments.spec("human", "cpu").configs
    assert {c.human_labels for c in hu} == {"aggre", "random1", "worse"} and {c.noise for c in hu} == {"human_twin"}


def test_bad_inputs_name_the_value(monkeypatch):
    with pytest.raises(ValueError, match="pca_dim=300"):
        features.FeatureSettings(centroids=50, pca_dim=300)
    with pytest.raises(ValueError, match="source='mnist'"):
        features.features("mnist")
    monkeypatch.setenv("GCE_CPU_SOURCE", "svhn")
    with pytest.raises(ValueError, match="GCE_CPU_SOURCE='svhn'"):
        cpu_scale.cpu_configs("table1")
    with pytest.raises(ValueError, match="name='table3'"):
        cpu_scale.cpu_configs("table3", src="cifar10")



def test_engine_takes_features_as_they_are(tiny):
    """Float features are centred by their training mean, not rescaled as uint8 pixels are (/ 255)."""
    full = data.load("cifar10_features", tiny / "data", download=False)
    cfg = _short(cpu_scale.cpu_configs("table1", src="cifar10")[0])
    res = train_many([cfg], root=tiny / "data", keep_models=True)[0]
    model, mean = res.extra["model"], res.extra["preprocess_mean"]
    assert torch.allclose(mean, full.train.images.mean(0), atol=1e-6)
    x = full.test.images
    with torch.no_grad():
        expected = torch.softmax(model((x - mean).flatten(1)), 1)
    assert torch.allclose(predict_proba(model, x, mean), expected, atol=1e-5)


def test_data_labels():
    assert cpu_scale.data_label("cifar10_jpeg_features") == "CIFAR-10 (JPEG copy)"
    assert cpu_scale.data_label("cifar10_features_5to9") == "CIFAR-10, classes 5-9"
    with pytest.raises(ValueError, match="dataset='digits'"):
        cpu_scale.data_label("digits")
