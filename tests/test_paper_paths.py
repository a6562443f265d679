"""The lite/paper code paths (torchvision datasets, BatchNorm networks trained one at a time, augmentation,
open-set with CIFAR-100) run end to end on tiny files in the official CIFAR formats."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torchvision import datasets as tv

from gce import train
from gce.book import experiments
from conftest import patch_cifar_md5s, write_cifar10, write_cifar100


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    folder, *_ = write_cifar10(tmp_path, rng, n_per_batch=12, n_test=6)
    patch_cifar_md5s(monkeypatch, tv.CIFAR10, folder)
    folder100, *_ = write_cifar100(tmp_path, rng, n_train=80, n_test=4)
    patch_cifar_md5s(monkeypatch, tv.CIFAR100, folder100)
    return tmp_path


def _shrink(cfg, **kw):
    return replace(cfg, epochs=2, milestones=(1,), prune_start=1, prune_every=1, batch_size=16, **kw)


def test_table1_paper_configs_train_with_batchnorm_one_run_at_a_time(tiny_cifar):
    grid = [c for c in experiments.spec("table1", "paper").configs
            if c.dataset == "cifar10" and c.seed == 0 and c.noise == "class_dependent" and c.eta == 0.4
            and c.method in ("cce", "trunc_lq", "forward_T")]
    assert {c.model for c in grid} == {"resnet34"} and all(c.augment for c in grid)
    cfgs = [_shrink(c, model="resnet18", model_kwargs=()) for c in grid]  # resnet18: the same code, faster
    results = train.train_many(cfgs, root=tiny_cifar, keep_models=True)
    for res in results:
        assert res.epochs == 2 and all(np.isfinite(res.history["val_loss"]))
        assert 0 <= res.test_acc_last <= 1
    trunc = [r for r in results if r.config.method == "trunc_lq"][0]
    assert trunc.history["kept"][0] == 1.0  # pruning starts after the first epoch
    # T-hat from the CCE run's best-validation BatchNorm model, in eval mode
    cce = [r for r in results if r.config.method == "cce"][0]
    probs = train.predict_proba(cce.extra["model"], cce.extra["train_images"], cce.extra["preprocess_mean"])
    T_hat = train.estimate_transition(probs)
    torch.testing.assert_close(T_hat.sum(1), torch.ones(10, dtype=torch.float64))


def test_table2_paper_config_with_cifar100_open_set_images(tiny_cifar):
    cfg = [c for c in experiments.spec("table2", "paper").configs
           if c.noise == "open_set" and c.method == "lq" and c.seed == 0][0]
    assert (cfg.model, cfg.ood, cfg.augment) == ("wang_cnn", "cifar100", False)
    res = train.train(_shrink(cfg), root=tiny_cifar)
    assert res.epochs == 2 and res.T_used is None
    assert abs(res.flip_rate_train - 0.4) < 0.1  # 40% of the images replaced by CIFAR-100 images
