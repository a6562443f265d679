"""Tests of gce.theory's core expressions (Eq. 5-13) against independent computations."""

import numpy as np
import pytest
import sympy as sp
import torch

from gce import losses as L
from gce import theory as th

RNG = np.random.default_rng(2018)


def simplex_points(c, n, alpha=0.3):
    return RNG.dirichlet(np.full(c, alpha), size=n)


def test_lhopital_steps_give_cross_entropy():
    s = th.lhopital_q_to_zero()
    assert s["numerator_at_0"] == 0 and s["denominator_at_0"] == 0  # the 0/0 form
    assert s["d_denominator"] == 1
    assert sp.simplify(s["d_numerator"] + th.f ** th.q * sp.log(th.f)) == 0
    assert sp.simplify(s["ratio_at_0"] - th.cce_expr()) == 0
    assert sp.simplify(s["limit"] - th.cce_expr()) == 0


def test_lq_at_q_one_is_unhinged_and_half_mae():
    assert sp.simplify(th.lq_expr(q_=1) - th.unhinged_expr()) == 0
    assert sp.simplify(th.mae_expr() - 2 * th.lq_expr(q_=1)) == 0


def test_gradient_weights_of_eq5_and_sec32():
    assert sp.simplify(th.gradient_weight(th.cce_expr()) - 1 / th.f) == 0
    assert th.gradient_weight(th.mae_expr()) == 2
    assert th.gradient_weight(th.unhinged_expr()) == 1
    assert sp.simplify(th.gradient_weight(th.lq_expr()) - th.f ** (th.q - 1)) == 0


def test_symbolic_lq_matches_the_torch_loss():
    logits = torch.randn(50, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.randint(0, 7, (50,), generator=torch.Generator().manual_seed(1))
    fy = torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1).numpy()
    num = sp.lambdify((th.f, th.q), th.lq_expr(), "numpy")
    np.testing.assert_allclose(num(fy, 0.7), L.lq(logits, y, 0.7, reduction="none").numpy(), rtol=1e-12)


@pytest.mark.parametrize("c,q", [(2, 0.5), (10, 0.7), (10, 0.1), (100, 0.9)])
def test_eq7_bounds_hold_and_the_lower_is_attained(c, q):
    lo, hi = th.eq7_bounds(c, q)
    s = th.lq_class_sum(simplex_points(c, 20_000), q)
    assert s.min() >= lo - 1e-9 and s.max() <= hi + 1e-9
    assert th.lq_class_sum(np.full(c, 1 / c), q) == pytest.approx(float(lo), rel=1e-12)
    assert th.lq_class_sum(np.eye(c)[0], q) == pytest.approx(float(hi), rel=1e-12)


def test_eq7_numeric_matches_symbolic():
    lo, hi = th.eq7_bounds_expr()
    for c_, q_ in [(3, 0.25), (10, 0.7)]:
        nlo, nhi = th.eq7_bounds(c_, q_)
        assert float(nlo) == pytest.approx(float(lo.subs({th.c: c_, th.q: q_})), rel=1e-12)
        assert float(nhi) == pytest.approx(float(hi.subs({th.c: c_, th.q: q_})), rel=1e-12)


def test_theorem1_A_values_and_sign():
    A = th.theorem1_A_expr()
    # exact value at a rational point
    val = A.subs({th.eta: sp.Rational(2, 5), th.q: 1, th.c: 10})
    assert val == 0
    assert th.theorem1_A(0.0, 0.7, 10) == 0
    assert th.theorem1_A(0.4, 1.0, 10) == 0
    eta_, q_, c_ = 0.4, 0.7, 10
    expected = eta_ * (1 - c_ ** (1 - q_)) / (q_ * (c_ - 1 - eta_ * c_))
    assert float(th.theorem1_A(eta_, q_, c_)) == pytest.approx(expected, rel=1e-12)
    grid = th.theorem1_A(np.linspace(0.01, 0.89, 30)[:, None], np.linspace(0.05, 0.95, 30)[None, :], 10)
    assert (grid < 0).all()
    assert np.isnan(th.theorem1_A(0.9, 0.7, 10))  # eta = (c-1)/c: the denominator vanishes


def test_theory_rejects_out_of_range_arguments():
    with pytest.raises(ValueError, match="q must be in"):
        th.theorem1_A(0.2, 1.5, 10)
    with pytest.raises(ValueError, match="k must be in"):
        th.eq11_gap(10, 0.5, 1.0)
    with pytest.raises(ValueError, match="c .* must be >= 2"):
        th.eq7_bounds(1, 0.5)
    with pytest.raises(ValueError, match="eta must be in"):
        th.theorem1_A(1.0, 0.5, 10)


def test_truncated_expr_matches_the_torch_loss():
    logits = torch.randn(200, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    y = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(4))
    fy = torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1).numpy()
    expr = sp.lambdify((th.f, th.q, th.k), th.truncated_lq_expr(), "numpy")
    np.testing.assert_allclose(expr(fy, 0.7, 0.3), L.truncated_lq(logits, y, 0.7, 0.3, reduction="none").numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("c,q,k", [(2, 0.7, 0.5), (3, 0.5, 0.4), (10, 0.7, 0.5), (10, 0.2, 0.2), (10, 0.9, 0.8)])
def test_eq10_bounds_hold_on_random_simplex_points(c, q, k):
    lo, hi = th.eq10_bounds(c, q, k)
    s = th.truncated_class_sum(simplex_points(c, 50_000), q, k)
    assert s.min() >= float(lo) - 1e-9 and s.max() <= float(hi) + 1e-9
    assert th.truncated_class_sum(np.full(c, 1 / c), q, k) == pytest.approx(float(hi))  # all at or below k


def test_eq11_gap_is_the_difference_of_the_interval_widths():
    for c_, q_, k_ in [(10, 0.7, 0.3), (2, 0.2, 0.5), (100, 0.5, 0.2)]:
        lo7, hi7 = th.eq7_bounds(c_, q_)
        lo10, hi10 = th.eq10_bounds(c_, q_, k_)
        # Eq. 11 compares the widths: (hi7 - lo7) - (hi10 - lo10)
        assert float(th.eq11_gap(c_, q_, k_)) == pytest.approx(float((hi7 - lo7) - (hi10 - lo10)), abs=1e-12)


def test_eq11_fails_at_q_one_exactly():
    lhs, rhs = th.eq11_sides_expr()
    point = {th.q: 1, th.k: sp.Rational(3, 10), th.c: 10}
    assert rhs.subs(point) == 0
    assert lhs.subs(point) == sp.Rational(7, 10)
    assert not th.eq11_holds(10, 1.0, 0.3)


def test_acs_optimal_weights_minimise_eq13():
    lq_vals = RNG.uniform(0, 1.4, size=12)
    lq_k = 0.6
    w_star = th.acs_optimal_weights(lq_vals, lq_k)
    best = th.acs_objective(lq_vals, w_star, lq_k)
    for _ in range(2000):
        w = RNG.uniform(size=12)
        assert th.acs_objective(lq_vals, w, lq_k) >= best - 1e-12
    # the torch pruning rule picks the same samples
    logits = torch.randn(300, 10, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2
    y = torch.randint(0, 10, (300,), generator=torch.Generator().manual_seed(6))
    lq_t = L.lq(logits, y, 0.7, reduction="none").numpy()
    w_t = L.prune_weights(logits, y, 0.4).numpy()
    np.testing.assert_array_equal(w_t, th.acs_optimal_weights(lq_t, L.lq_of_probability(0.4, 0.7)))


# ---- lq_family ----


def test_lq_series_starts_with_cce_and_matches_the_loss_for_small_q():
    s = th.lq_series_expr(3)
    assert sp.simplify(s.subs(th.q, 0) - th.cce_expr()) == 0
    assert sp.simplify(sp.diff(s, th.q).subs(th.q, 0) + sp.log(th.f) ** 2 / 2) == 0
    p = np.array([0.01, 0.3, 0.9])
    series = sp.lambdify((th.f, th.q), s, "numpy")
    for q_ in (1e-2, 1e-3):
        err = np.abs(series(p, q_) - th.lq_curve(p, q_))
        assert err.max() < 10 * q_ ** 3 * np.abs(np.log(p)).max() ** 4


@pytest.mark.parametrize("n_classes,label", [(2, 0), (2, 1), (3, 0), (3, 2), (4, 1)])
def test_lq_logit_gradient_closed_form_is_exact(n_classes, label):
    d = th.lq_logit_gradient(n_classes, label)
    assert all(e == 0 for e in d["difference"])
    # a wrong closed form (the theta-weight f_y**(q-1) put in place of f_y**q) is caught
    fy = d["softmax"][label]
    wrong = fy ** (th.q - 1) * (d["softmax"][0] - int(label == 0))
    assert sp.simplify(sp.powsimp(sp.expand_power_base(d["gradient"][0] - wrong, force=True), force=True)) != 0


def test_lq_logit_gradient_numeric_twin_matches_autograd():
    gen = torch.Generator().manual_seed(11)
    logits = (torch.randn(64, 7, generator=gen, dtype=torch.float64) * 3).requires_grad_(True)
    y = torch.randint(0, 7, (64,), generator=gen)
    for q_ in (0.25, 0.7, 1.0):
        logits.grad = None
        L.lq(logits, y, q_, reduction="sum").backward()
        probs = torch.softmax(logits, 1).detach().numpy()
        np.testing.assert_allclose(logits.grad.numpy(), th.lq_logit_gradient_closed_form(probs, y.numpy(), q_),
                                   rtol=1e-10, atol=1e-14)
    # q = 0 is CCE's familiar softmax-minus-one-hot
    logits.grad = None
    L.cce(logits, y, reduction="sum").backward()
    np.testing.assert_allclose(logits.grad.numpy(), th.lq_logit_gradient_closed_form(probs, y.numpy(), 0.0),
                               rtol=1e-10, atol=1e-14)


def test_lq_curve_endpoints_and_agreement_with_the_torch_loss():
    p = np.array([1e-6, 0.1, 0.5, 1.0])
    np.testing.assert_allclose(th.lq_curve(p, 0.0), -np.log(p))
    np.testing.assert_allclose(th.lq_curve(p, 1.0), 1 - p)
    np.testing.assert_allclose(th.lq_curve(p, 1e-12), -np.log(p), rtol=1e-9)  # no cancellation
    logits = torch.randn(50, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2
    y = torch.randint(0, 5, (50,), generator=torch.Generator().manual_seed(3))
    fy = torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1).numpy()
    np.testing.assert_allclose(th.lq_curve(fy, 0.7), L.lq(logits, y, 0.7, reduction="none").numpy(), rtol=1e-12)
    np.testing.assert_allclose(th.lq_curve(fy, 0.0), L.cce(logits, y, reduction="none").numpy(), rtol=1e-12)


def test_weights_match_the_sympy_gradient_weight():
    p = np.linspace(0.05, 1, 7)
    for q_ in (0.25, 0.7, 1.0):
        w_sym = sp.lambdify(th.f, th.gradient_weight(th.lq_expr(q_=sp.Float(q_))), "numpy")
        np.testing.assert_allclose(th.lq_gradient_weight(p, q_), w_sym(p) * np.ones_like(p), rtol=1e-12)
        np.testing.assert_allclose(th.lq_relative_weight(p, q_) / p, th.lq_gradient_weight(p, q_), rtol=1e-12)
    np.testing.assert_allclose(th.lq_gradient_weight(p, 0.0), 1 / p)
    with pytest.raises(ValueError):
        th.lq_curve(p, 1.5)
    with pytest.raises(ValueError):
        th.lq_relative_weight(p, -0.1)
