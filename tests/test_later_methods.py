"""The later losses (SCE, NCE+RCE, NCE+MAE, Taylor CE) as training methods of gce.train."""

import numpy as np
import pytest
import torch

from gce import losses
from gce.book.store import run_id
from gce.train import LATER_METHODS, METHODS, RunConfig, Tricks, LossHead, vectorised_losses, run_losses, train_many

SMALL = dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (32,)),), epochs=3, lr=0.05, batch_size=128,
             noise="uniform", eta=0.4)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_later_methods_are_run_config_methods():
    assert set(LATER_METHODS) == {"sce", "nce_rce", "nce_mae", "taylor_ce"} and set(LATER_METHODS) <= set(METHODS)
    ids = {run_id(RunConfig(**SMALL, method=m)) for m in ("cce", *LATER_METHODS)}
    assert len(ids) == 5
    with pytest.raises(ValueError, match="unknown method='gce'"):
        RunConfig(method="gce")


def test_run_losses_of_later_methods_match_the_loss_functions():
    g = torch.Generator().manual_seed(3)
    logits = 4 * torch.randn(5, 9, 6, generator=g)
    logits[:, 0] *= 50  # extreme rows
    y = torch.randint(0, 6, (5, 9), generator=g)
    cfgs = [RunConfig(method=m) for m in ("cce", *LATER_METHODS)]
    got = run_losses(logits, y, cfgs, None)
    want = [losses.cce, *(losses.LATER_LOSSES[m] for m in LATER_METHODS)]
    for r, f in enumerate(want):
        torch.testing.assert_close(got[r], f(logits[r], y[r], reduction="none"))
    assert torch.isfinite(got).all()
    # autograd through the vectorised losses gives each run the gradient of its own loss
    z = logits.clone().requires_grad_(True)
    (g_all,) = torch.autograd.grad(vectorised_losses(cfgs)(z, y, None).sum(), z)
    for r, f in enumerate(want):
        zr = logits[r].clone().requires_grad_(True)
        (g_r,) = torch.autograd.grad(f(zr, y[r], reduction="sum"), zr)
        torch.testing.assert_close(g_all[r], g_r)


def test_the_loss_head_does_not_claim_later_methods():
    for m in LATER_METHODS:
        cfgs = [RunConfig(method="cce"), RunConfig(method=m)]
        assert not LossHead.handles(cfgs)
        with pytest.raises(ValueError, match=f"no gradient formula for method\\(s\\) {m}"):
            LossHead(cfgs, "cpu")
    assert LossHead.handles([RunConfig(method=m) for m in LossHead.HANDLED])


def test_tiny_runs_of_later_methods_equal_the_general_path():
    """One chunk mixes CCE with the four later methods: the engine falls back to autograd for the loss head
    and trains every run as the general path does (vmap, autograd, torch.optim)."""
    cfgs = [RunConfig(**SMALL, method=m, seed=s) for s, m in enumerate(("cce", *LATER_METHODS))]
    ref = train_many(cfgs, tricks=Tricks(mlp_engine=False))
    fast = train_many(cfgs)
    no_head = train_many(cfgs, tricks=Tricks(hand_loss_grad=False))
    for a, b, c in zip(ref, fast, no_head):
        assert a.best_epoch == b.best_epoch
        assert a.test_acc_best_val == pytest.approx(b.test_acc_best_val, abs=1.5 / 599)
        for key in ("train_loss", "val_loss", "test_acc"):
            np.testing.assert_allclose(a.history[key], b.history[key], rtol=1e-4, atol=1e-5)
            assert b.history[key] == c.history[key]  # the engine without the head is this very path
        assert np.isfinite(b.history["train_loss"]).all()
        assert b.history["train_loss"][-1] < b.history["train_loss"][0]  # it learns
    # the CCE run of the mixed chunk equals a CCE-only chunk (which uses the hand-written head)
    alone = train_many(cfgs[:1])[0]
    np.testing.assert_allclose(alone.history["train_loss"], fast[0].history["train_loss"], rtol=1e-5, atol=1e-6)
