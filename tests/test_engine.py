"""The MLP engine of gce.train: same results as the general path, hand gradients and foreach optimisers exact."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from gce import noise
from gce.train import (RunConfig, Tricks, ForeachAdam, ForeachSGD, LossHead, lr_schedule, mlp_backward,
                       mlp_forward, mlp_test_logits, predicted, vectorised_losses, train, train_many)

SMALL = dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (32,)),), epochs=4, lr=0.05, batch_size=128)


pytestmark = pytest.mark.usefixtures("one_thread")


def _grid(optimizer: str) -> list[RunConfig]:
    extra = dict(optimizer="adam", lr=1e-3, weight_decay=0.0) if optimizer == "adam" else dict(milestones=(3,))
    cfgs = []
    for kind, eta, ood in (("uniform", 0.4, None), ("class_dependent", 0.3, None), ("open_set", 0.4, "photo_patches")):
        for s, m in enumerate(("cce", "mae", "lq", "trunc_lq", "forward_T")):
            if kind == "open_set" and m == "forward_T":
                continue
            cfgs.append(RunConfig(**{**SMALL, **extra}, noise=kind, eta=eta, ood=ood, method=m, seed=s,
                                  prune_start=2, prune_every=2, k=0.3, track_train_softmax=(s == 0)))
    return cfgs


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_engine_equals_the_general_path(optimizer):
    cfgs = _grid(optimizer)
    ref = train_many(cfgs, tricks=Tricks(mlp_engine=False))
    fast = train_many(cfgs, tricks=Tricks(run_chunk=4))  # several chunks, the last one partial
    for a, b in zip(ref, fast):
        assert a.best_epoch == b.best_epoch
        assert a.test_acc_best_val == pytest.approx(b.test_acc_best_val, abs=1.5 / 599)
        assert a.history["kept"] == b.history["kept"]
        for key in ("train_loss", "val_loss", "softmax_clean"):
            np.testing.assert_allclose(a.history[key], b.history[key], rtol=1e-4, atol=1e-5)


def test_every_trick_switched_off_gives_the_same_runs():
    cfgs = [replace(c, epochs=3) for c in _grid("sgd")[2:6]]
    base = train_many(cfgs)
    for name in Tricks.__dataclass_fields__:
        other = train_many(cfgs, tricks=Tricks().off(name))
        for a, b in zip(base, other):
            assert a.best_epoch == b.best_epoch, name
            np.testing.assert_allclose(a.history["val_loss"], b.history["val_loss"], rtol=1e-4, atol=1e-5,
                                       err_msg=name)
    with pytest.raises(ValueError, match="unknown trick"):
        Tricks().off("turbo")


def _params(R=3, sizes=(12, 9, 7, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        out += [torch.randn(R, b, a, generator=g, dtype=torch.float64),
                torch.randn(R, b, generator=g, dtype=torch.float64)]
    return out


@pytest.mark.parametrize("class_major", [False, True])
@pytest.mark.parametrize("fused", [True, False])
def test_hand_written_gradients_match_autograd(fused, class_major):
    params = _params()
    x = torch.randn(3, 11, 12, dtype=torch.float64)
    g = torch.randn(3, 11, 4, dtype=torch.float64)
    if class_major:
        g = g.transpose(1, 2).contiguous()  # (R, c, n)
    logits, inputs = mlp_forward(params, x, fused, keep=True, class_major=class_major)
    hand = mlp_backward(params, inputs, g, class_major=class_major)
    leaves = [p.clone().requires_grad_(True) for p in params]
    out, _ = mlp_forward(leaves, x, fused)
    if class_major:
        out = out.transpose(1, 2)
    auto = torch.autograd.grad((out * g).sum(), leaves)
    torch.testing.assert_close(out.detach(), logits)
    for h, a in zip(hand, auto):
        torch.testing.assert_close(h, a)
    # each run's gradient only sees its own data
    hand0 = mlp_backward([p[:1] for p in params], [i[:1] for i in inputs], g[:1], class_major=class_major)
    for h, h0 in zip(hand, hand0):
        torch.testing.assert_close(h[:1], h0)


_HEAD_RUNS = [RunConfig(method="cce"), RunConfig(method="mae"), RunConfig(method="lq", q=0.7),
              RunConfig(method="lq", q=0.1), RunConfig(method="trunc_lq", q=0.7, k=0.5),
              RunConfig(method="forward_T", noise="uniform", eta=0.4), RunConfig(method="forward_T_hat")]


@pytest.mark.parametrize("dim", [1, -1])
@pytest.mark.parametrize("methods", ["all", "no_forward"])
def test_loss_head_gradient_matches_autograd(dim, methods):
    cfgs = _HEAD_RUNS if methods == "all" else _HEAD_RUNS[:5]
    R, n, c = len(cfgs), 9, 5
    g = torch.Generator().manual_seed(3)
    z = torch.randn(R, n, c, generator=g) * 3
    y = torch.randint(0, c, (R, n), generator=g)
    T = torch.rand(R, c, c, generator=g) + 0.1
    T_log = (T / T.sum(2, keepdim=True)).log()
    factor = torch.rand(R, n, generator=g)
    zd = z.transpose(1, 2).contiguous() if dim == 1 else z
    head = LossHead(cfgs, "cpu")
    per, grad = head.losses_and_grad(zd, y, T_log, dim, factor)
    leaf = z.clone().requires_grad_(True)
    ref = vectorised_losses(cfgs)(leaf, y, T_log)
    (auto,) = torch.autograd.grad((ref * factor).sum(), leaf)
    torch.testing.assert_close(per, ref.detach())
    torch.testing.assert_close(head.losses(zd, y, T_log, dim), ref.detach())
    torch.testing.assert_close(grad.transpose(1, 2) if dim == 1 else grad, auto)
    # the gradient of a run that is not forward-corrected vanishes where the factor does
    factor[0] = 0
    assert head.losses_and_grad(zd, y, T_log, dim, factor)[1][0].abs().max() == 0


def test_predicted_is_argmax_with_the_first_of_ties():
    z = torch.randn(4, 7, 30)
    z[0, 2, 5] = z[0, 4, 5] = z[0, :, 5].max() + 1  # a tie: argmax takes the first
    z[1, :, 3] = 0.5  # all equal
    torch.testing.assert_close(predicted(z, 1), z.argmax(1))
    torch.testing.assert_close(predicted(z.transpose(1, 2), -1), z.argmax(1))
    assert predicted(z, 1)[0, 5] == 2 and predicted(z, 1)[1, 3] == 0


@pytest.mark.parametrize("class_major", [False, True])
@pytest.mark.parametrize("hidden", [(), (16,)])
def test_shared_test_product_in_blocks_equals_the_plain_one(class_major, hidden):
    from types import SimpleNamespace
    sizes = (12, *hidden, 5)
    params = [p.float() for p in _params(R=3, sizes=sizes, seed=4)]
    test = torch.randn(300, 12)  # 300 test images: two full blocks of 128 and a partial one
    t = SimpleNamespace()
    fast = mlp_test_logits(params, t, test, Tricks(class_major=class_major))
    plain = mlp_test_logits(params, t, test, Tricks(class_major=class_major, shared_test_matmul=False))
    assert fast.shape == ((3, 5, 300) if class_major else (3, 300, 5))
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["sgd", "sgd_plain", "adam", "adam_wd"])
def test_foreach_optimisers_match_torch_optim(kind):
    ours = [p.float() for p in _params(seed=1)]
    theirs = [p.clone().requires_grad_(True) for p in ours]
    cfg = {"sgd": RunConfig(momentum=0.9, weight_decay=1e-4, lr=0.1, milestones=(2,), epochs=4),
           "sgd_plain": RunConfig(momentum=0.0, weight_decay=0.0, lr=0.1, epochs=4),
           "adam": RunConfig(optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=4),
           "adam_wd": RunConfig(optimizer="adam", lr=1e-3, weight_decay=1e-2, epochs=4)}[kind]
    if cfg.optimizer == "sgd":
        opt = ForeachSGD(ours, cfg.momentum, cfg.weight_decay)
        ref = torch.optim.SGD(theirs, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = ForeachAdam(ours, cfg.weight_decay)
        ref = torch.optim.Adam(theirs, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(ref, list(cfg.milestones), cfg.gamma)
    g = torch.Generator().manual_seed(2)
    for lr in lr_schedule(cfg):
        for _ in range(3):
            grads = [torch.randn(p.shape, generator=g) for p in ours]
            for p, gr in zip(theirs, grads):
                p.grad = gr.clone()
            ref.step()
            opt.step(grads, lr)
        sched.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)


def test_lr_schedule_is_multisteplr():
    cfg = RunConfig(lr=0.1, milestones=(2, 4), gamma=0.1, epochs=6)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.milestones), cfg.gamma)
    want = []
    for _ in range(cfg.epochs):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lr_schedule(cfg) == want


def test_training_leaves_the_global_rng_untouched():
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    train(RunConfig(**{**SMALL, "epochs": 1}, noise="uniform", eta=0.2))
    train(RunConfig(**{**SMALL, "epochs": 1, "model": "small_cnn", "model_kwargs": ()}, noise="uniform", eta=0.2))
    assert torch.equal(torch.get_rng_state(), state)


def test_each_run_has_its_own_augmentation_generator():
    cfgs = [RunConfig(**{**SMALL, "epochs": 2}, augment=True, noise="uniform", eta=0.2, seed=s) for s in (0, 1)]
    for tricks in (Tricks(), Tricks(mlp_engine=False)):
        together = train_many(cfgs, tricks=tricks)
        alone = train(cfgs[1], tricks=tricks)
        np.testing.assert_allclose(together[1].history["val_loss"], alone.history["val_loss"], rtol=1e-5)


@pytest.mark.parametrize("field, value", [("momentum", 1.0), ("momentum", -0.1), ("gamma", -0.5),
                                          ("weight_decay", -1e-4), ("seed", 2 ** 70), ("seed", -1), ("seed", 1.5)])
def test_run_config_rejects_bad_optimiser_settings(field, value):
    with pytest.raises(ValueError, match=field):
        RunConfig(**{field: value})


def test_forward_T_hat_runs_use_their_transition_in_the_engine():
    cfg = RunConfig(**SMALL, noise="uniform", eta=0.4, method="forward_T_hat")
    T = noise.uniform(10, 0.4)
    a = train(cfg, T=T)
    b = train(cfg, T=T, tricks=Tricks(mlp_engine=False))
    assert a.T_used == b.T_used and a.best_epoch == b.best_epoch
