"""Tests of gce.losses against the paper's definitions (Eq. 1, 2, 4, 6, 7, 9, 12, 13)."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import gce
from gce import losses as L

C = 10


def random_logits(gen, n=64, c=C, scale=3.0, dtype=torch.float64):
    return (scale * torch.randn(n, c, generator=gen)).to(dtype)


def random_labels(gen, n=64, c=C):
    return torch.randint(0, c, (n,), generator=gen)


def softmax_at_label(logits, y):
    return F.softmax(logits, dim=1).gather(1, y.unsqueeze(1)).squeeze(1)


# --------------------------------------------------------------------------
# the L_q family (Eq. 6): limits and gradient


@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0, 20.0])
def test_lq_tends_to_cce_as_q_goes_to_zero(gen, scale):
    x, y = random_logits(gen, scale=scale), random_labels(gen)
    ce = L.cce(x, y, reduction="none")
    errors = [(L.lq(x, y, q, reduction="none") - ce).abs().max().item() for q in (1e-2, 1e-4, 1e-6)]
    # (1 - f^q)/q = -log f - q (log f)^2 / 2 + O(q^2): the error shrinks linearly in q
    assert errors[0] > errors[1] > errors[2]
    bound = ce.pow(2).max().item()  # q (log f)^2 / 2 with margin
    for q, err in zip((1e-2, 1e-4, 1e-6), errors):
        assert err <= q * bound + 1e-10


def test_lq_at_q_one_is_unhinged_and_half_mae(gen):
    x, y = random_logits(gen), random_labels(gen)
    f_y = softmax_at_label(x, y)
    torch.testing.assert_close(L.lq(x, y, 1.0, reduction="none"), 1 - f_y)
    torch.testing.assert_close(L.mae(x, y, reduction="none"), 2 - 2 * f_y)
    torch.testing.assert_close(L.mae(x, y), 2 * L.lq(x, y, 1.0))


def test_mae_is_l1_distance_to_one_hot(gen):
    x, y = random_logits(gen), random_labels(gen)
    l1 = (F.one_hot(y, C).double() - F.softmax(x, dim=1)).abs().sum(dim=1)
    torch.testing.assert_close(L.mae(x, y, reduction="none"), l1)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.7, 1.0])
def test_lq_gradient_is_weighted_gradient_of_f_y(gen, q):
    """d L_q / d logits = -f_y^(q-1) * d f_y / d logits (Sec. 3.2)."""
    x, y = random_logits(gen, n=16), random_labels(gen, n=16)
    x1 = x.clone().requires_grad_(True)
    (grad_lq,) = torch.autograd.grad(L.lq(x1, y, q, reduction="sum"), x1)
    x2 = x.clone().requires_grad_(True)
    f_y = softmax_at_label(x2, y)
    (grad_f,) = torch.autograd.grad(f_y.sum(), x2)
    expected = -(f_y.detach() ** (q - 1)).unsqueeze(1) * grad_f
    torch.testing.assert_close(grad_lq, expected)


def test_cce_gradient_weight_is_inverse_f_y(gen):
    """Eq. 5: d CCE / d logits = -(1/f_y) d f_y / d logits; MAE's is -2 d f_y (Eq. 4's factor 2)."""
    x, y = random_logits(gen, n=16), random_labels(gen, n=16)
    x_ce = x.clone().requires_grad_(True)
    (g_ce,) = torch.autograd.grad(L.cce(x_ce, y, reduction="sum"), x_ce)
    x_mae = x.clone().requires_grad_(True)
    (g_mae,) = torch.autograd.grad(L.mae(x_mae, y, reduction="sum"), x_mae)
    x_f = x.clone().requires_grad_(True)
    f_y = softmax_at_label(x_f, y)
    (g_f,) = torch.autograd.grad(f_y.sum(), x_f)
    torch.testing.assert_close(g_ce, -(1 / f_y.detach()).unsqueeze(1) * g_f)
    torch.testing.assert_close(g_mae, -2 * g_f)


def test_cce_matches_torch_cross_entropy(gen):
    x, y = random_logits(gen), random_labels(gen)
    torch.testing.assert_close(L.cce(x, y), F.cross_entropy(x, y))


# --------------------------------------------------------------------------
# Eq. 7: the class-sum of L_q is bounded


def eq7_bounds(c, q):
    return (c - c ** (1 - q)) / q, (c - 1) / q


@pytest.mark.parametrize("c,q", [(2, 0.3), (10, 0.7), (10, 0.05), (100, 0.7), (100, 1.0)])
def test_lq_class_sum_lies_within_eq7(gen, c, q):
    lo, hi = eq7_bounds(c, q)
    for scale in (0.01, 1.0, 10.0, 100.0):
        x = random_logits(gen, n=200, c=c, scale=scale)
        s = L.loss_matrix(L.lq, x, q=q).sum(dim=1)
        assert (s >= lo - 1e-9).all() and (s <= hi + 1e-9).all()


@pytest.mark.parametrize("c,q", [(2, 0.3), (10, 0.7), (100, 0.5)])
def test_eq7_lower_bound_attained_at_uniform_softmax(c, q):
    lo, _ = eq7_bounds(c, q)
    x = torch.zeros(3, c, dtype=torch.float64)  # equal logits -> f = 1/c
    s = L.loss_matrix(L.lq, x, q=q).sum(dim=1)
    torch.testing.assert_close(s, torch.full_like(s, lo))


@pytest.mark.parametrize("c,q", [(2, 0.3), (10, 0.7), (100, 0.5)])
def test_eq7_upper_bound_approached_at_one_hot_but_not_attained(c, q):
    """The upper bound needs f = e_j, which a softmax only approaches as one logit grows."""
    _, hi = eq7_bounds(c, q)
    gaps = []
    for t in (2.0, 10.0, 25.0):  # f_j^q = exp(-t) for the c - 1 small classes
        x = torch.zeros(1, c, dtype=torch.float64)
        x[0, 0] = t / q
        s = L.loss_matrix(L.lq, x, q=q).sum().item()
        assert s < hi
        gaps.append(hi - s)
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-6


def test_mae_is_symmetric_cce_is_not(gen):
    """Eq. 3: the class-sum of MAE is the constant 2c - 2; CCE's is unbounded."""
    x = random_logits(gen, n=100)
    s_mae = L.loss_matrix(L.mae, x).sum(dim=1)
    torch.testing.assert_close(s_mae, torch.full_like(s_mae, 2 * C - 2))
    s_cce = L.loss_matrix(L.cce, x).sum(dim=1)
    assert s_cce.max() - s_cce.min() > 1.0


# --------------------------------------------------------------------------
# truncated L_q (Eq. 9) and its ACS form (Eq. 12-13)


def test_truncated_lq_is_constant_with_zero_gradient_below_k(gen):
    q, k = 0.7, 0.5
    x = random_logits(gen, n=256).requires_grad_(True)
    y = random_labels(gen, n=256)
    f_y = softmax_at_label(x.detach(), y)
    below, above = f_y <= k, f_y > k
    assert below.sum() > 10 and above.sum() > 10
    t = L.truncated_lq(x, y, q, k, reduction="none")
    torch.testing.assert_close(t[below], torch.full_like(t[below], (1 - k ** q) / q))
    torch.testing.assert_close(t[above], L.lq(x.detach(), y, q, reduction="none")[above])
    (g,) = torch.autograd.grad(t.sum(), x)
    assert (g[below] == 0).all()
    assert (g[above].abs().sum(dim=1) > 0).all()


def test_truncated_lq_tends_to_lq_as_k_goes_to_zero(gen):
    x, y = random_logits(gen, scale=1.0), random_labels(gen)
    torch.testing.assert_close(L.truncated_lq(x, y, 0.7, 1e-12), L.lq(x, y, 0.7))


def test_prune_weights_keep_exactly_samples_with_f_y_at_least_k(gen):
    x, y = random_logits(gen, n=500), random_labels(gen, n=500)
    k = 0.3
    w = L.prune_weights(x, y, k)
    f_y = softmax_at_label(x, y)
    assert torch.equal(w.bool(), f_y >= k)
    assert not w.requires_grad
    # the same rule in terms of the loss: L_q(f) <= L_q(k), for every q
    for q in (0.1, 0.7, 1.0):
        lq_vals = L.lq(x, y, q, reduction="none")
        assert torch.equal(w.bool(), lq_vals <= L.lq_of_probability(k, q) + 1e-12)


def test_eq12_truncated_sum_equals_weighted_form(gen):
    """Eq. 12: sum L_trunc = sum v L_q + (1 - v) L_q(k), with v from the pruning rule."""
    q, k = 0.7, 0.4
    x, y = random_logits(gen, n=300), random_labels(gen, n=300)
    v = L.prune_weights(x, y, k)
    lq_vals = L.lq(x, y, q, reduction="none")
    rhs = (v * lq_vals + (1 - v) * L.lq_of_probability(k, q)).sum()
    torch.testing.assert_close(L.truncated_lq(x, y, q, k, reduction="sum"), rhs)
    # Eq. 13's objective differs from Eq. 12's by the constant n L_q(k)
    acs = L.acs_lq(x, y, q, k, v, reduction="sum")
    torch.testing.assert_close(acs, rhs - len(y) * L.lq_of_probability(k, q))


def test_pruning_weights_minimise_eq13_over_the_box(gen):
    """For fixed parameters the pruning rule's w is optimal among all w in [0, 1]^n (Eq. 13)."""
    q, k, n = 0.7, 0.5, 8
    x, y = random_logits(gen, n=n, scale=2.0), random_labels(gen, n=n)
    w_star = L.prune_weights(x, y, k)
    best = L.acs_lq(x, y, q, k, w_star, reduction="sum")
    for bits in itertools.product((0.0, 1.0), repeat=n):
        w = torch.tensor(bits, dtype=torch.float64)
        assert L.acs_lq(x, y, q, k, w, reduction="sum") >= best - 1e-12
    for _ in range(200):
        w = torch.rand(n, generator=gen, dtype=torch.float64)
        assert L.acs_lq(x, y, q, k, w, reduction="sum") >= best - 1e-12


def test_acs_mean_divides_by_number_kept(gen):
    q, k = 0.7, 0.5
    x, y = random_logits(gen), random_labels(gen)
    w = L.prune_weights(x, y, k)
    per = L.lq(x, y, q, reduction="none") - L.lq_of_probability(k, q)
    torch.testing.assert_close(L.acs_lq(x, y, q, k, w), (w * per).sum() / w.sum())
    zero = torch.zeros_like(w)
    assert L.acs_lq(x, y, q, k, zero).item() == 0.0


def test_truncated_module_prunes_by_sample_id_and_trains_only_kept(gen):
    n, d = 40, 5
    xs = torch.randn(n, d, generator=gen)
    ys = torch.randint(0, 3, (n,), generator=gen)
    model = torch.nn.Linear(d, 3)
    crit = gce.TruncatedLqLoss(n, q=0.7, k=0.4)
    assert crit.kept_fraction == 1.0
    idx = torch.arange(n)
    with torch.no_grad():
        w = crit.prune(model(xs), ys, idx)
    assert torch.equal(crit.weights, w)
    assert 0 < crit.kept_fraction < 1
    # a pruned sample contributes no gradient; a kept one does
    pruned = int((w == 0).nonzero()[0])
    kept = int((w == 1).nonzero()[0])
    for i, expect_zero in ((pruned, True), (kept, False)):
        model.zero_grad()
        crit(model(xs[i:i + 1]), ys[i:i + 1], idx[i:i + 1]).backward()
        assert (model.weight.grad.abs().sum() == 0) == expect_zero
    # the optimiser keeps acting on the model that is being trained
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = model.weight.detach().clone()
    opt.zero_grad()
    crit(model(xs), ys, idx).backward()
    opt.step()
    assert not torch.equal(before, model.weight.detach())
    crit.reset()
    assert crit.kept_fraction == 1.0
    assert "weights" in crit.state_dict()


# --------------------------------------------------------------------------
# forward correction (Eq. 1)


def test_forward_with_identity_equals_cce(gen):
    x, y = random_logits(gen), random_labels(gen)
    torch.testing.assert_close(L.forward_corrected(x, y, torch.eye(C, dtype=torch.float64)), L.cce(x, y))


def test_forward_matches_eq1(gen):
    x, y = random_logits(gen), random_labels(gen)
    T = gce.noise.uniform(C, 0.4)
    p = F.softmax(x, dim=1)
    expected = -torch.log((p @ T).gather(1, y.unsqueeze(1)).squeeze(1))  # (T^T p)_y
    torch.testing.assert_close(L.forward_corrected(x, y, T, reduction="none"), expected)
    T_cd = gce.noise.class_dependent("cifar10", 0.3)
    expected = -torch.log((p @ T_cd).gather(1, y.unsqueeze(1)).squeeze(1))
    torch.testing.assert_close(L.forward_corrected(x, y, T_cd, reduction="none"), expected)


# --------------------------------------------------------------------------
# numerics: nothing becomes NaN or inf


ALL_LOSSES = {
    "cce": lambda x, y: L.cce(x, y, reduction="none"),
    "mae": lambda x, y: L.mae(x, y, reduction="none"),
    "lq": lambda x, y: L.lq(x, y, 0.7, reduction="none"),
    "lq_small_q": lambda x, y: L.lq(x, y, 1e-4, reduction="none"),
    "truncated_lq": lambda x, y: L.truncated_lq(x, y, 0.7, 0.5, reduction="none"),
    "acs_lq": lambda x, y: L.acs_lq(x, y, 0.7, 0.5, torch.ones(len(y)), reduction="none"),
    "forward": lambda x, y: L.forward_corrected(x, y, gce.noise.uniform(x.shape[1], 0.4), reduction="none"),
    "forward_cd": lambda x, y: L.forward_corrected(x, y, gce.noise.class_dependent("cifar10", 0.4),
                                                  reduction="none"),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_no_nan_or_inf_for_extreme_logits(name, dtype):
    x = torch.zeros(4, C)
    x[0, 0], x[0, 1] = 1e4, -1e4          # label 1 has f_y = 0 in any float
    x[1, 3] = 1e4                        # label 3 has f_y = 1
    x[2] = -1e4                          # all equal
    x[3, ::2] = 1e4                      # half the classes at +1e4
    y = torch.tensor([1, 3, 0, 1])
    x = x.to(dtype).requires_grad_(True)
    out = ALL_LOSSES[name](x, y)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all(), out
    (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(g.float()).all(), g


def test_cce_at_underflowed_probability_is_large_but_finite():
    x = torch.tensor([[1e4, -1e4]])
    assert L.cce(x, torch.tensor([1])).item() == pytest.approx(2e4)


@pytest.mark.parametrize("name", ["cce", "mae", "lq", "truncated_lq", "forward"])
def test_bfloat16_logits_agree_with_float32(gen, name):
    x = random_logits(gen, dtype=torch.float32, scale=2.0)
    y = random_labels(gen)
    xb = x.to(torch.bfloat16)
    torch.testing.assert_close(ALL_LOSSES[name](xb, y), ALL_LOSSES[name](xb.float(), y))
    torch.testing.assert_close(ALL_LOSSES[name](xb, y), ALL_LOSSES[name](x, y), atol=0.05, rtol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_cuda_matches_cpu(gen, name):
    x, y = random_logits(gen, dtype=torch.float32), random_labels(gen)
    torch.testing.assert_close(ALL_LOSSES[name](x.cuda(), y.cuda()).cpu(), ALL_LOSSES[name](x, y))


# --------------------------------------------------------------------------
# reductions, weights and modules


@pytest.mark.parametrize("name,fn", [
    ("cce", L.cce), ("mae", L.mae),
    ("lq", lambda *a, **kw: L.lq(*a, q=0.7, **kw)),
    ("truncated_lq", lambda *a, **kw: L.truncated_lq(*a, q=0.7, k=0.3, **kw)),
    ("forward", lambda *a, **kw: L.forward_corrected(*a, T=gce.noise.uniform(C, 0.2), **kw)),
])
def test_reductions_and_weights(gen, name, fn):
    x, y = random_logits(gen), random_labels(gen)
    none = fn(x, y, reduction="none")
    assert none.shape == (len(y),)
    torch.testing.assert_close(fn(x, y, reduction="sum"), none.sum())
    torch.testing.assert_close(fn(x, y, reduction="mean"), none.mean())
    w = torch.rand(len(y), generator=gen, dtype=torch.float64)
    torch.testing.assert_close(fn(x, y, weight=w, reduction="none"), w * none)
    torch.testing.assert_close(fn(x, y, weight=w, reduction="sum"), (w * none).sum())
    torch.testing.assert_close(fn(x, y, weight=w), (w * none).sum() / w.sum())


def test_modules_equal_functions(gen):
    x, y = random_logits(gen), random_labels(gen)
    T = gce.noise.class_dependent("cifar10", 0.2)
    torch.testing.assert_close(gce.CCELoss()(x, y), L.cce(x, y))
    torch.testing.assert_close(gce.MAELoss()(x, y), L.mae(x, y))
    torch.testing.assert_close(gce.LqLoss(0.7)(x, y), L.lq(x, y, 0.7))
    torch.testing.assert_close(gce.LqLoss(0.7, reduction="sum")(x, y), L.lq(x, y, 0.7, reduction="sum"))
    torch.testing.assert_close(gce.TruncatedLqLoss(len(y), 0.7, 0.5)(x, y), L.truncated_lq(x, y, 0.7, 0.5))
    fwd = gce.ForwardCorrectedLoss(T)
    torch.testing.assert_close(fwd(x.float(), y), L.forward_corrected(x.float(), y, T))
    assert "T" in fwd.state_dict()
    assert "q=0.7" in repr(gce.LqLoss(0.7))


# --------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("q", [0, -0.1, 1.5, math.nan, math.inf])
def test_bad_q_raises(gen, q):
    x, y = random_logits(gen), random_labels(gen)
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\]|q must be finite"):
        L.lq(x, y, q)
    with pytest.raises(ValueError, match="q"):
        gce.LqLoss(q)


@pytest.mark.parametrize("k", [0, 1, -0.5, 1.2])
def test_bad_k_raises(gen, k):
    x, y = random_logits(gen), random_labels(gen)
    with pytest.raises(ValueError, match=r"k must be in \(0, 1\)"):
        L.truncated_lq(x, y, 0.7, k)
    with pytest.raises(ValueError, match="k must be"):
        L.prune_weights(x, y, k)


def test_non_number_q_raises_type_error():
    with pytest.raises(TypeError, match="q must be a real number"):
        L.check_q("0.7")
    with pytest.raises(TypeError):
        L.check_q(True)


@pytest.mark.parametrize("T,match", [
    (torch.ones(3, 4) / 4, "square"),
    (torch.eye(9), r"10 x 10"),
    (torch.full((10, 10), 0.2), "row-stochastic"),
    (torch.eye(10) * 2 - torch.full((10, 10), 0.1), "non-negative"),
    (torch.full((10, 10), float("nan")), "finite"),
])
def test_bad_transition_matrix_raises(gen, T, match):
    x, y = random_logits(gen), random_labels(gen)
    with pytest.raises(ValueError, match=match):
        L.forward_corrected(x, y, T)


def test_bad_labels_and_shapes_raise(gen):
    x, y = random_logits(gen), random_labels(gen)
    with pytest.raises(ValueError, match=r"labels y must be in \[0, 9\]"):
        L.cce(x, torch.full_like(y, 10))
    with pytest.raises(ValueError, match=r"labels y must be in \[0, 9\]"):
        L.lq(x, torch.full_like(y, -1), 0.5)
    with pytest.raises(ValueError, match="y must have shape"):
        L.mae(x, y[:-1])
    with pytest.raises(ValueError, match="logits must have shape"):
        L.cce(x[0], y[:1])
    with pytest.raises(ValueError, match="integer class labels"):
        L.cce(x, y.double())
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.cce(x, y, reduction="avg")
    with pytest.raises(ValueError, match="weight must be a tensor of shape"):
        L.cce(x, y, weight=torch.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        L.cce(x, y, weight=-torch.ones(len(y)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        L.acs_lq(x, y, 0.7, 0.5, 2 * torch.ones(len(y)))
    with pytest.raises(ValueError, match="num_samples"):
        gce.TruncatedLqLoss(0)


# ---- issue 11: what a practitioner hits


def test_paper_constants_are_the_defaults():
    assert (L.PAPER_Q, L.PAPER_K) == (0.7, 0.5)
    assert L.LqLoss().q == L.PAPER_Q
    t = L.TruncatedLqLoss(4)
    assert (t.q, t.k) == (L.PAPER_Q, L.PAPER_K)


def test_q_below_the_stated_threshold_is_refused_naming_it():
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    for q in (1e-7, 1e-39, 5e-324):
        with pytest.raises(ValueError, match=r"below Q_MIN=1e-06.*use the cce loss"):
            L.lq(x, y, q)
    assert torch.isfinite(L.lq(x, y, L.Q_MIN, reduction="none")).all()


def test_truncated_lq_warns_when_a_pruning_step_keeps_few_samples():
    torch.manual_seed(0)
    crit = L.TruncatedLqLoss(100, k=0.5)
    logits, y = torch.zeros(100, 10), torch.randint(0, 10, (100,))  # f_y = 1/c < k: at initialisation
    with pytest.warns(UserWarning, match=r"keeps 0.0% of its 100 samples.*warm-up"):
        crit.prune(logits, y, torch.arange(100))
    confident = torch.nn.functional.one_hot(y, 10).float() * 10
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crit.prune(confident, y, torch.arange(100))
    assert crit.kept_fraction == 1.0


def test_truncated_lq_prunes_float64_logits_and_checks_ids():
    crit = L.TruncatedLqLoss(5)
    logits = torch.randn(3, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2])
    with pytest.warns(UserWarning) if float(L.prune_weights(logits, y, 0.5).mean()) < 0.1 else _nullcontext():
        w = crit.prune(logits, y, torch.tensor([0, 2, 4]))
    assert w.dtype == torch.float64 and crit.weights.dtype == torch.float32
    assert crit(logits, y, torch.tensor([0, 2, 4])).dtype == torch.float64
    with pytest.raises(ValueError, match=r"sample ids must lie in \[0, 4\].*\[5, -1\]"):
        crit(logits, y, torch.tensor([5, -1, 0]))
    with pytest.raises(ValueError, match="integer sample ids"):
        crit.prune(logits, y, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        crit(logits, y, torch.tensor([0, 1]))


def _nullcontext():
    import contextlib
    return contextlib.nullcontext()


def test_forward_corrected_loss_names_out_of_range_labels():
    crit = L.ForwardCorrectedLoss(torch.eye(3))
    with pytest.raises(ValueError, match=r"labels y must be in \[0, 2\].*found 3"):
        crit(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="found -1"):
        crit(torch.randn(2, 3), torch.tensor([-1, 0]))


def test_with_index_gives_truncated_lq_its_ids_from_a_data_loader():
    from torch.utils.data import DataLoader, TensorDataset

    from gce.data import WithIndex

    x, y = torch.randn(10, 3), torch.arange(10) % 3
    seen = []
    for xb, yb, idx in DataLoader(WithIndex(TensorDataset(x, y)), batch_size=4, shuffle=True):
        torch.testing.assert_close(xb, x[idx])
        seen += idx.tolist()
        L.TruncatedLqLoss(10)(xb, yb, idx)
    assert sorted(seen) == list(range(10))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", ["cce", "mae", "lq", "truncated_lq", "prune_weights"])
def test_non_finite_logits_are_refused_not_turned_into_a_nan_loss(name, bad):
    from gce import losses
    logits, y = torch.zeros(4, 3), torch.tensor([0, 1, 2, 0])
    logits[2, 1] = bad
    call = {"cce": lambda: losses.cce(logits, y), "mae": lambda: losses.mae(logits, y),
            "lq": lambda: losses.lq(logits, y, 0.7), "truncated_lq": lambda: losses.truncated_lq(logits, y, 0.7, 0.5),
            "prune_weights": lambda: losses.prune_weights(logits, y, 0.5)}[name]  # pruning would drop sample 2
    with pytest.raises(ValueError, match=r"logits hold 1 NaN or infinite value\(s\) of 12"):
        call()


def test_a_mean_over_an_empty_batch_is_refused_and_a_sum_is_zero():
    from gce import losses
    logits, y = torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)
    with pytest.raises(ValueError, match=r"reduction='mean' over an empty batch"):
        losses.cce(logits, y)
    assert float(losses.lq(logits, y, 0.7, reduction="sum")) == 0.0
    assert float(losses.truncated_lq(logits, y, 0.7, 0.5, weight=torch.zeros(0))) == 0.0  # weighted: 0, as documented
