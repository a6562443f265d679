"""Tests of the losses that followed the paper: SCE, NCE+RCE, NCE+MAE, Taylor cross entropy (gce.losses).

Each loss is checked twice: against an independent float64 formula in probability space written here, and
against a "peer": the formula of a published implementation, read in its source and re-implemented below
with its constants (not copied).
"""

import math

import pytest
import torch
import torch.nn.functional as F

import gce
from gce import losses as L

C = 10
LATER = [L.sce, L.nce_rce, L.nce_mae, L.taylor_ce, L.rce, L.nce]


def logits_and_labels(gen, n=256, c=C, scale=3.0):
    """Random float64 logits with a block of extreme rows (a softmax that underflows to 0 and rounds to 1)."""
    x = scale * torch.randn(n, c, generator=gen, dtype=torch.float64)
    x[: n // 8] *= 60.0  # |logit| ~ 200: f_y is 1 or below 1e-80
    y = torch.randint(0, c, (n,), generator=gen)
    return x, y


# --------------------------------------------------------------------------
# independent formulas: probability space, float64


def probs_at_label(x, y):
    p = F.softmax(x.double(), dim=1)
    return p, p.gather(1, y.unsqueeze(1)).squeeze(1)


def formula_rce(x, y, A):
    p, _ = probs_at_label(x, y)
    one_hot = F.one_hot(y, x.shape[1]).double()
    log_label = torch.where(one_hot > 0, torch.zeros_like(one_hot), torch.full_like(one_hot, A))
    return -(p * log_label).sum(1)  # -sum_k f_k log e_y[k] with log 0 = A


def formula_nce(x, y):
    log_p = torch.log(F.softmax(x.double(), dim=1).clamp_min(1e-300))
    return log_p.gather(1, y.unsqueeze(1)).squeeze(1) / log_p.sum(1)


def formula_taylor(x, y, t):
    _, fy = probs_at_label(x, y)
    return sum((1 - fy) ** i / i for i in range(1, t + 1))


def moderate(x):
    """Rows whose softmax stays above 1e-300 (the float64 formula's own floor)."""
    return (x.max(1).values - x.min(1).values) < 600


def test_rce_is_minus_A_times_one_minus_f_y(gen):
    x, y = logits_and_labels(gen)
    for A in (-4.0, math.log(1e-4)):
        torch.testing.assert_close(L.rce(x, y, A=A, reduction="none"), formula_rce(x, y, A))


@pytest.mark.parametrize("alpha,beta", [(0.1, 1.0), (1.0, 0.5), (0.0, 1.0)])
def test_sce_formula(gen, alpha, beta):
    x, y = logits_and_labels(gen)
    ok = moderate(x)
    _, fy = probs_at_label(x, y)
    want = alpha * -torch.log(fy[ok]) + beta * formula_rce(x, y, -4.0)[ok]
    torch.testing.assert_close(L.sce(x, y, alpha, beta, reduction="none")[ok], want)


def test_nce_formula_and_range(gen):
    x, y = logits_and_labels(gen)
    got = L.nce(x, y, reduction="none")
    ok = moderate(x)
    torch.testing.assert_close(got[ok], formula_nce(x, y)[ok])
    assert ((got >= 0) & (got <= 1)).all()
    # NCE sums to 1 over the labels (Ma et al.: normalized losses satisfy the symmetric condition)
    totals = L.loss_matrix(L.nce, x[:32]).sum(1)
    torch.testing.assert_close(totals, torch.ones_like(totals))


def test_apl_formulas(gen):
    x, y = logits_and_labels(gen)
    ok = moderate(x)
    _, fy = probs_at_label(x, y)
    nce = formula_nce(x, y)[ok]
    torch.testing.assert_close(L.nce_rce(x, y, 2.0, 0.5, reduction="none")[ok],
                               2.0 * nce + 0.5 * formula_rce(x, y, -4.0)[ok])
    torch.testing.assert_close(L.nce_mae(x, y, 2.0, 0.5, reduction="none")[ok], 2.0 * nce + 0.5 * (1 - fy[ok]))


@pytest.mark.parametrize("t", [1, 2, 3, 6, 20])
def test_taylor_formula(gen, t):
    x, y = logits_and_labels(gen)
    torch.testing.assert_close(L.taylor_ce(x, y, t, reduction="none"), formula_taylor(x, y, t))


def test_taylor_limits(gen):
    """t = 1 is half of MAE (Eq. 4); large t approaches CE; H_t bounds it (Feng et al.)."""
    x = torch.randn(64, C, generator=gen, dtype=torch.float64)
    y = torch.randint(0, C, (64,), generator=gen)
    torch.testing.assert_close(L.taylor_ce(x, y, 1, reduction="none"), L.mae(x, y, reduction="none") / 2)
    torch.testing.assert_close(L.taylor_ce(x, y, 4000, reduction="none"), L.cce(x, y, reduction="none"),
                               rtol=0, atol=1e-6)
    far = torch.zeros(1, C, dtype=torch.float64)
    far[0, 1] = 500.0  # f_0 = 0
    assert L.taylor_ce(far, torch.tensor([0]), 5).item() == pytest.approx(sum(1 / i for i in range(1, 6)))


# --------------------------------------------------------------------------
# peers: the published implementations' formulas


def peer_apl_terms(x, y, c):
    """The formulas of HanxunH/Active-Passive-Losses, ``loss.py`` (read in its source), re-implemented.

    - ``ReverseCrossEntropy``: ``p = clamp(softmax(x), 1e-7, 1)``; the one-hot clamped to ``[1e-4, 1]``;
      ``-sum_k p_k log(onehot_k)``, then the batch mean times ``scale``.  The clamp of the one-hot makes
      ``log 0 = log(1e-4) = -9.21``, not the papers' ``A = -4``; the clamp of ``p`` adds up to
      ``(c - 1) 1e-7 (-log 1e-4)`` where a probability underflows.
    - ``NormalizedCrossEntropy``: ``-sum_k onehot_k log_softmax_k / -sum_k log_softmax_k``, batch mean.
    - ``MeanAbsoluteError``: ``1 - sum_k onehot_k softmax_k`` (its comment: "Reduced MAE", half of
      ``2 - 2 p_y``), batch mean times ``scale``.
    - ``SCELoss``: ``alpha * CrossEntropyLoss + beta * RCE`` (the same RCE); ``NCEandRCE`` and ``NCEandMAE``:
      ``NCE(scale=alpha) + RCE/MAE(scale=beta)``.
    The same RCE constants are in the SCE authors' Keras ``symmetric_cross_entropy`` (YisenWang/
    symmetric_cross_entropy_for_noisy_labels, ``loss.py``: ``y_true`` clipped at 1e-4).
    Returns the per-sample terms (the peers' batch means are their means).
    """
    one_hot = F.one_hot(y, c).double()
    p = F.softmax(x, dim=1).clamp(1e-7, 1.0)
    rce = -(p * torch.log(one_hot.clamp(1e-4, 1.0))).sum(1)
    log_p = F.log_softmax(x, dim=1)
    nce = -(one_hot * log_p).sum(1) / -log_p.sum(1)
    mae = 1.0 - (one_hot * F.softmax(x, dim=1)).sum(1)
    ce = F.cross_entropy(x, y, reduction="none")
    return ce, rce, nce, mae


def clamp_excess(x, y):
    """What the peer's clamp of p at 1e-7 adds to RCE: ``-log(1e-4) sum_{k != y} (max(p_k, 1e-7) - p_k)``."""
    p = F.softmax(x, dim=1)
    extra = (p.clamp_min(1e-7) - p).scatter(1, y.unsqueeze(1), 0.0).sum(1)
    return -math.log(1e-4) * extra


A_PEER = math.log(1e-4)


def test_rce_matches_peer(gen):
    x, y = logits_and_labels(gen)
    _, peer, _, _ = peer_apl_terms(x, y, C)
    ours = L.rce(x, y, A=A_PEER, reduction="none")
    torch.testing.assert_close(ours + clamp_excess(x, y), peer, rtol=0, atol=1e-6)
    # the whole difference is the peer's clamp of p: at most (c - 1) 1e-7 * 9.21, and none where p >= 1e-7
    assert (peer - ours).abs().max().item() <= (C - 1) * 1e-7 * -A_PEER + 1e-12
    plain = F.softmax(x, dim=1).min(1).values >= 1e-7
    assert plain.sum() > 100
    torch.testing.assert_close(ours[plain], peer[plain], rtol=0, atol=1e-6)
    assert (peer.mean() - L.rce(x, y, A=A_PEER)).abs().item() < 1e-6


@pytest.mark.parametrize("alpha,beta", [(0.1, 1.0), (1.0, 1.0), (6.0, 0.1)])
def test_sce_and_apl_match_peer(gen, alpha, beta):
    x, y = logits_and_labels(gen)
    ok = moderate(x)  # the peer's CrossEntropyLoss is exact everywhere; its RCE clamp is accounted for
    ce, rce, nce, mae = peer_apl_terms(x, y, C)
    fix = beta * clamp_excess(x, y)
    cases = [
        (L.sce(x, y, alpha, beta, A=A_PEER, reduction="none") + fix, alpha * ce + beta * rce),
        (L.nce_rce(x, y, alpha, beta, A=A_PEER, reduction="none") + fix, alpha * nce + beta * rce),
        (L.nce_mae(x, y, alpha, beta, reduction="none"), alpha * nce + beta * mae),
    ]
    for ours, peer in cases:
        torch.testing.assert_close(ours, peer, rtol=1e-9, atol=1e-6)
        assert torch.isfinite(ours).all()
    assert ok.sum() < len(ok)  # the extreme rows were part of the comparison


def peer_taylor(x, y, t):
    """Taylor CE as in the Belle II software (belle2/basf2, function ``tcc``, read in its source).

    The authors' own code could not be found.  ``tcc`` takes softmax probabilities, picks ``p_y`` and sums
    ``(1 - p_y)^i / i`` for ``i = 1..n`` (``n = 0`` falls back to CE), then divides the sum over the batch by
    its size.  Re-implemented here on ``softmax(x)``; per sample.
    """
    p_y = F.softmax(x, dim=1)[torch.arange(len(y)), y]
    return sum(torch.pow(1 - p_y, i) / i for i in range(1, t + 1))


@pytest.mark.parametrize("t", [1, 2, 4, 6])
def test_taylor_matches_peer(gen, t):
    x, y = logits_and_labels(gen)
    torch.testing.assert_close(L.taylor_ce(x, y, t, reduction="none"), peer_taylor(x, y, t), rtol=0, atol=1e-6)
    torch.testing.assert_close(L.taylor_ce(x, y, t), peer_taylor(x, y, t).mean(), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------
# the interface shared with the paper's losses


@pytest.mark.parametrize("loss", LATER)
def test_reductions_and_weights(gen, loss):
    x, y = logits_and_labels(gen, n=32)
    per = loss(x, y, reduction="none")
    assert per.shape == (32,)
    torch.testing.assert_close(loss(x, y, reduction="sum"), per.sum())
    torch.testing.assert_close(loss(x, y), per.mean())
    w = torch.rand(32, generator=gen, dtype=torch.float64)
    w[:5] = 0
    torch.testing.assert_close(loss(x, y, weight=w), (w * per).sum() / w.sum())
    torch.testing.assert_close(loss(x, y, weight=w, reduction="none"), w * per)
    assert loss(x, y, weight=torch.zeros(32, dtype=torch.float64)).item() == 0.0


@pytest.mark.parametrize("loss", LATER)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_never_nan_and_low_precision(gen, loss, dtype):
    x, y = logits_and_labels(gen, n=64)
    x = torch.cat([x, torch.tensor([[1e4] + [0.0] * (C - 1), [-1e4] + [0.0] * (C - 1)], dtype=x.dtype)])
    y = torch.cat([y, torch.tensor([1, 0])])
    xl = x.to(dtype).requires_grad_(True)
    value = loss(xl, y)
    value.backward()
    assert value.dtype == torch.float32
    assert torch.isfinite(value) and torch.isfinite(xl.grad).all()
    torch.testing.assert_close(value.double(), loss(x.to(dtype).double(), y), rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("loss", [L.sce, L.nce_rce, L.nce_mae])
def test_gradients_match_finite_differences(gen, loss):
    x, y = logits_and_labels(gen, n=8)
    x = x[4:].clone().requires_grad_(True)  # moderate rows
    assert torch.autograd.gradcheck(lambda z: loss(z, y[4:], 0.3, 0.7), (x,))
    assert torch.autograd.gradcheck(lambda z: L.taylor_ce(z, y[4:], 3), (x,))


def test_bad_arguments_are_named(gen):
    x, y = logits_and_labels(gen, n=4)
    with pytest.raises(ValueError, match="alpha and beta"):
        L.sce(x, y, -0.1, 1.0)
    with pytest.raises(ValueError, match="both be 0"):
        L.nce_mae(x, y, 0.0, 0.0)
    with pytest.raises(TypeError, match="alpha"):
        L.nce_rce(x, y, "1", 1.0)
    with pytest.raises(ValueError, match=r"A \(the clipped log 0"):
        L.rce(x, y, A=0.0)
    with pytest.raises(ValueError, match="beta must be finite"):
        L.sce(x, y, 0.1, math.inf)
    for t in (0, 2.0, True, -1):
        with pytest.raises(ValueError, match="t \\(the order"):
            L.taylor_ce(x, y, t)
    with pytest.raises(ValueError, match="reduction"):
        L.nce(x, y, reduction="avg")
    with pytest.raises(ValueError, match="at least 2 classes"):
        L.nce(x[:, :1], torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels y"):
        L.taylor_ce(x, y + C)
    with pytest.raises(ValueError, match="weight"):
        L.sce(x, y, weight=torch.ones(3))


def test_modules_and_exports(gen):
    x, y = logits_and_labels(gen, n=16)
    pairs = [(gce.SCELoss(0.2, 0.5), L.sce(x, y, 0.2, 0.5)), (gce.NCERCELoss(), L.nce_rce(x, y)),
             (gce.NCEMAELoss(2.0, 1.0), L.nce_mae(x, y, 2.0, 1.0)), (gce.TaylorCELoss(4), L.taylor_ce(x, y, 4))]
    for module, want in pairs:
        torch.testing.assert_close(module(x, y), want)
    assert "t=4" in repr(gce.TaylorCELoss(4)) and "A=-4.0" in repr(gce.SCELoss())
    assert "alpha=1.0, beta=1.0, A=-4.0" in repr(gce.NCERCELoss()) and not isinstance(gce.NCERCELoss(), gce.SCELoss)
    assert gce.SCELoss(reduction="none")(x, y).shape == (16,)
    with pytest.raises(ValueError, match="t \\(the order"):
        gce.TaylorCELoss(0)
    with pytest.raises(ValueError, match="reduction"):
        gce.NCEMAELoss(reduction="max")
    assert set(L.LATER_LOSSES) == {"sce", "nce_rce", "nce_mae", "taylor_ce"}
    for name in ("rce", "sce", "nce", "nce_rce", "nce_mae", "taylor_ce"):
        assert getattr(gce, name) is getattr(L, name)
