"""Tests of gce.book.theory's core expressions (Eq. 5-13) against independent computations."""

import numpy as np
import pytest
import sympy as sp
import torch

from gce import losses as L
from gce.book import theory as th

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


# ---- appendix/proofs ----
from scipy.optimize import minimize  # noqa: E402


def _slsqp_min(fun, c, rng, starts=8):
    """Minimise ``fun`` over the closed simplex with SLSQP from several starts (independent check)."""
    best = None
    cons = ({"type": "eq", "fun": lambda x: x.sum() - 1},)
    for x0 in rng.dirichlet(np.ones(c), size=starts):
        res = minimize(fun, x0, method="SLSQP", bounds=[(0, 1)] * c, constraints=cons,
                       options={"ftol": 1e-13, "maxiter": 500})
        x = np.clip(res.x, 0, None) / np.clip(res.x, 0, None).sum()
        if best is None or fun(x) < fun(best):
            best = x
    return best


def test_simplex_grid_is_the_whole_lattice_of_the_closed_simplex():
    g = th.simplex_grid(3, 6)
    assert g.shape == (28, 3)  # binomial(8, 2)
    np.testing.assert_allclose(g.sum(axis=1), 1)
    assert (g >= 0).all() and len(np.unique(g, axis=0)) == len(g)
    assert any((row == [1, 0, 0]).all() for row in g)  # vertices are included
    assert th.simplex_grid(4, 10).shape == (286, 4)
    with pytest.raises(ValueError):
        th.simplex_grid(1, 3)


@pytest.mark.parametrize("q_", [0.1, 0.5, 0.7, 0.95])
def test_pointwise_minimizer_beats_grid_and_slsqp(q_):
    rng = np.random.default_rng(7)
    grid = th.simplex_grid(3, 200)
    for t in [*rng.dirichlet(np.ones(3), size=4), np.array([0.2, 0.8, 0.0]), np.array([1.0, 0, 0])]:
        f_hat = th.lq_pointwise_minimizer(t, q_)
        best = float(th.lq_pointwise_risk(f_hat, t, q_))
        assert best <= th.lq_pointwise_risk(grid, t, q_).min() + 1e-12
        x = _slsqp_min(lambda f: float(th.lq_pointwise_risk(np.clip(f, 0, 1), t, q_)), 3, rng)
        assert best <= float(th.lq_pointwise_risk(x, t, q_)) + 1e-12
        assert float(th.lq_pointwise_risk(x, t, q_)) == pytest.approx(best, abs=1e-5)
        # Hoelder: the minimum is (1 - ||t||_r) / q with r = 1 / (1 - q)
        r = 1 / (1 - q_)
        assert best == pytest.approx((1 - (t ** r).sum() ** (1 / r)) / q_, rel=1e-10)


def test_pointwise_minimizer_at_q_one_is_the_most_likely_vertex():
    np.testing.assert_allclose(th.lq_pointwise_minimizer([0.2, 0.5, 0.3], 1.0), [0, 1, 0])
    np.testing.assert_allclose(th.lq_pointwise_minimizer([0.4, 0.4, 0.2], 1.0), [0.5, 0.5, 0])
    with pytest.raises(ValueError):
        th.lq_pointwise_minimizer([0.0, 0.0], 0.5)


def test_theorem1_A_bounds_the_clean_gap_under_uniform_noise():
    rng = np.random.default_rng(8)
    for _ in range(200):
        c_ = int(rng.integers(2, 6))
        eta_ = rng.uniform(0, (c_ - 1) / c_ * 0.99)
        q_ = rng.uniform(0.05, 1.0)
        T = np.full((c_, c_), eta_ / (c_ - 1)) + np.eye(c_) * (1 - eta_ - eta_ / (c_ - 1))
        P = rng.dirichlet(np.full(c_, 0.5), size=5)
        gap = th.pointwise_risk_gaps(P, T, q_)["clean_gap"]
        assert float(th.theorem1_A(eta_, q_, c_)) - 1e-12 <= gap <= 1e-12


def test_theorem2_bound_holds_with_the_conditions_and_fails_without():
    rng = np.random.default_rng(9)
    for _ in range(300):
        c_ = int(rng.integers(2, 6))
        q_ = rng.uniform(0.05, 1.0)
        T = th.random_transition_matrix(c_, seed=int(rng.integers(1 << 30)))
        P = np.eye(c_)[rng.integers(0, c_, size=6)]  # deterministic clean labels: R(f*) = 0
        gaps = th.pointwise_risk_gaps(P, T, q_)
        assert np.allclose(gaps["f_star"], P)
        assert -1e-12 <= gaps["noisy_gap"] <= th.theorem2_B(T, P, q_) + 1e-12
    # T[0, 1] > T[0, 0] breaks the bound
    T = np.array([[0.2, 0.8, 0.0], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    P = np.eye(3)[[0]]
    assert th.pointwise_risk_gaps(P, T, 0.5)["noisy_gap"] > th.theorem2_B(T, P, 0.5) + 0.5
    # soft clean labels (R(f*) > 0) break it too, even with T[i, j] < T[i, i]
    T = np.array([[1.0, 0.0], [0.4, 0.6]])
    P = np.array([[0.5, 0.5]])
    assert th.pointwise_risk_gaps(P, T, 1.0)["noisy_gap"] == pytest.approx(0.2)
    assert th.theorem2_B(T, P, 1.0) == 0


def test_random_transition_matrix_is_stochastic_and_diagonally_dominant():
    for seed in range(50):
        T = th.random_transition_matrix(4, seed)
        np.testing.assert_allclose(T.sum(axis=1), 1)
        assert (T >= 0).all()
        assert ((T - np.diag(np.diag(T))).max(axis=1) < np.diag(T)).all()
    np.testing.assert_array_equal(th.random_transition_matrix(3, 5), th.random_transition_matrix(3, 5))
    loose = [th.random_transition_matrix(3, s, diagonal_dominant=False) for s in range(200)]
    assert any(((T - np.diag(np.diag(T))).max(axis=1) >= np.diag(T)).any() for T in loose)


def test_theorem2_B_expr_matches_numeric():
    B = th.theorem2_B_expr()
    kappa = sp.Symbol("kappa", positive=True)
    T = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.0, 0.2, 0.8]])
    P = np.eye(3)[[0, 1, 2, 2]]
    keep = (0.7 + 0.6 + 0.8 + 0.8) / 4
    assert th.theorem2_B(T, P, 0.5) == pytest.approx(float(B.subs({th.c: 3, th.q: 0.5, kappa: keep})))


@pytest.mark.parametrize("c_,q_,k_", [(2, 0.7, 0.5), (3, 0.5, 0.34), (10, 0.7, 0.1), (10, 0.2, 0.2), (5, 0.9, 0.8)])
def test_truncated_minimum_is_attained_and_respects_eq10(c_, q_, k_):
    exact = float(th.truncated_class_sum_extremes(c_, q_, k_)[0])
    lo, _ = th.eq10_bounds(c_, q_, k_)
    assert exact >= float(lo) - 1e-12
    # attained at m coordinates equal to 1/m
    vals = []
    for m in range(1, c_ + 1):
        if m * k_ <= 1:
            f_ = np.zeros(c_)
            f_[:m] = 1 / m
            vals.append(float(th.truncated_class_sum(f_, q_, k_)))
    assert min(vals) == pytest.approx(exact, rel=1e-12)
    # no random point (many near faces) goes below it
    pts = np.concatenate([simplex_points(c_, 50_000, alpha) for alpha in (0.05, 0.3, 1.0)])
    assert th.truncated_class_sum(pts, q_, k_).min() >= exact - 1e-12


def test_eq10_lower_bound_is_attained_iff_d_is_an_integer():
    # d = 1 (paper's k = 0.5, q = 0.7): attained at a vertex
    assert float(th.truncated_class_sum_extremes(10, 0.7, 0.5)[0]) == pytest.approx(float(th.eq10_bounds(10, 0.7, 0.5)[0]))
    # d = 1.79: strictly above the printed bound
    assert float(th.truncated_class_sum_extremes(10, 0.7, 0.1)[0]) > float(th.eq10_bounds(10, 0.7, 0.1)[0]) + 1e-3
    # d = 2 exactly: k = (1 - q)**(1/q) / 2
    k2 = 0.5 ** 2 / 2
    assert float(th.truncated_class_sum_extremes(10, 0.5, k2)[0]) == pytest.approx(float(th.eq10_bounds(10, 0.5, k2)[0]))
    # vectorised


# ---- bounds chapter ----


def test_noisy_risk_under_uniform_noise_is_affine_in_the_clean_risk():
    direct, affine = th.noisy_risk_uniform_expr()
    assert sp.simplify(direct - affine) == 0
    # independently, for c = 3 and 4: sum_j T[y, j] L_j with explicit losses equals the formula
    for c_ in (3, 4):
        Ls = sp.symbols(f"L0:{c_}", real=True)
        T = sp.Matrix(c_, c_, lambda i, j: 1 - th.eta if i == j else th.eta / (c_ - 1))
        for y in range(c_):
            noisy = sum(T[y, j] * Ls[j] for j in range(c_))
            d, _ = th.noisy_risk_uniform_expr(Ls[y], sum(Ls), th.eta, c_)
            assert sp.simplify(noisy - d) == 0


def test_noisy_risk_formula_matches_expected_noisy_risk_of_the_noise_module():
    from gce import noise
    logits = torch.randn(40, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 3
    y = torch.randint(0, 5, (40,), generator=torch.Generator().manual_seed(4))
    Lmat = L.loss_matrix(L.lq, logits, q=0.6)
    R = float(Lmat[torch.arange(40), y].mean())
    S = float(Lmat.sum(dim=1).mean())
    _, affine = th.noisy_risk_uniform_expr()
    expected = float(affine.subs({th.R_sym: R, th.S_sym: S, th.eta: 0.3, th.c: 5}))
    assert float(noise.expected_noisy_risk(Lmat, y, noise.uniform(5, 0.3))) == pytest.approx(expected, rel=1e-12)


def test_eq7_slack_matches_the_direct_class_sum_and_survives_huge_logits():
    logits = RNG.normal(scale=2.0, size=(500, 6))
    for q_ in (0.1, 0.5, 0.7, 1.0):
        lo, hi = th.eq7_bounds(6, q_)
        s = th.lq_class_sum(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), q_)
        s_lo, s_hi = th.eq7_slack_from_logits(logits, q_)
        np.testing.assert_allclose(s_lo, s - lo, atol=1e-10)
        np.testing.assert_allclose(s_hi, hi - s, atol=1e-10)
        assert s_lo.min() >= -1e-12 and s_hi.min() >= 0
    # equal logits: the uniform point, lower slack 0
    assert abs(float(th.eq7_slack_from_logits(np.zeros(4), 0.7)[0])) < 1e-14
    # a logit gap of 800: the naive sum is exactly the upper bound, the slack is still positive
    gaps = np.array([[t, 0.0, 0.0] for t in (30.0, 100.0, 800.0)])
    s_hi = th.eq7_slack_from_logits(gaps, 0.7)[1]
    assert np.all(s_hi > 0) and np.all(np.diff(s_hi) < 0)
    # leading order: 2 exp(-0.7 t) / 0.7
    np.testing.assert_allclose(s_hi, 2 * np.exp(-0.7 * gaps[:, 0]) / 0.7, rtol=1e-3)


def test_grid_minimiser_agrees_with_the_closed_form():
    P = np.vstack([[1, 0, 0], [0.5, 0.5, 0], RNG.dirichlet(np.ones(3), size=6)])
    for q_ in (0.2, 0.7, 1.0):
        exact = th.lq_pointwise_risk(th.lq_pointwise_minimizer(P, q_), P, q_)
        grid = th.lq_pointwise_risk(th.lq_grid_minimizer(P, q_, n=240), P, q_)
        assert np.all(grid >= exact - 1e-12) and np.all(grid - exact < 2e-3)


@pytest.mark.parametrize("c_", [2, 3, 5])
def test_theorem1_holds_on_random_finite_problems(c_):
    for _ in range(150):
        n = int(RNG.integers(1, 6))
        px = RNG.dirichlet(np.ones(n))
        P = RNG.dirichlet(np.full(c_, RNG.choice([0.2, 1.0, 5.0])), size=n)
        if RNG.random() < 0.4:
            P[0] = np.eye(c_)[int(RNG.integers(c_))]  # a deterministic label: f* on a vertex
        eta_ = float(RNG.uniform(0, (c_ - 1) / c_ * 0.99))
        q_ = float(RNG.choice([0.05, 0.3, 0.7, 0.95, 1.0]))
        r = th.theorem1_check(px, P, eta_, q_)
        assert r["holds"], (px, P, eta_, q_, r)


def test_theorem1_check_exact_cases():
    px, P = np.array([0.3, 0.7]), np.array([[1.0, 0.0], [0.2, 0.8]])
    assert th.theorem1_check(px, P, 0.0, 0.5)["gap"] == 0.0  # no noise
    r = th.theorem1_check(px, P, 0.3, 1.0)  # MAE: noise tolerant
    assert r["gap"] == 0.0 and r["A"] == 0.0
    # one input, label 0 for sure, c = 2, q = 1/2: f_hat_0 = (1-eta)^2 / ((1-eta)^2 + eta^2)
    eta_ = 0.3
    f0 = (1 - eta_) ** 2 / ((1 - eta_) ** 2 + eta_ ** 2)
    r = th.theorem1_check(np.ones(1), np.array([[1.0, 0.0]]), eta_, 0.5)
    assert r["R_f_star"] == 0.0
    assert r["R_f_hat"] == pytest.approx((1 - np.sqrt(f0)) / 0.5, rel=1e-12)
    with pytest.raises(ValueError, match="undefined"):
        th.theorem1_check(np.ones(1), np.array([[1.0, 0.0]]), 0.5, 0.5)


def test_worst_pointwise_gap_stays_above_A_and_A_grows_with_q():
    grid = th.simplex_grid(3, 60)
    for eta_ in (0.2, 0.5, 0.65):
        for q_ in (0.1, 0.5, 0.9):
            g = th.theorem1_pointwise_gap(grid, eta_, q_)
            assert g.max() <= 1e-12 and g.min() >= float(th.theorem1_A(eta_, q_, 3))
    qs = np.linspace(0.01, 1, 200)
    for c_ in (2, 10, 1000):
        for eta_ in np.linspace(0.01, (c_ - 1) / c_ * 0.999, 7):
            assert np.all(np.diff(th.theorem1_A(eta_, qs, c_)) > 0)


# ---- truncated ----


def _lq_np(p, q_):
    return (1 - np.asarray(p, dtype=float) ** q_) / q_


def test_truncated_extremes_contain_every_point_and_sit_inside_eq10():
    rng = np.random.default_rng(7)
    for c_, q_, k_ in [(10, 0.7, 0.5), (10, 0.3, 0.2), (4, 0.2, 0.3), (3, 0.9, 0.1), (2, 0.7, 0.3)]:
        lo, hi = th.truncated_class_sum_extremes(c_, q_, k_)
        pts = np.vstack([rng.dirichlet(np.full(c_, a), size=20000) for a in (0.1, 1.0, 10.0)]
                        + [np.eye(c_), np.full((1, c_), 1 / c_)])
        s = th.truncated_class_sum(pts, q_, k_)
        assert s.min() >= lo - 1e-12 and s.max() <= hi + 1e-12
        b_lo, b_hi = th.eq10_bounds(c_, q_, k_)
        assert b_lo <= lo + 1e-12 and hi <= b_hi + 1e-12
        # the upper bound c L_q(k) is reached exactly when the uniform point is at or below k
        assert np.isclose(hi, c_ * _lq_np(k_, q_)) == (c_ * k_ >= 1)


def test_truncated_extremes_are_reached_by_the_described_points():
    c_, q_, k_ = 10, 0.3, 0.2  # d = 1.52..: the best integer is 1 or 2
    lo, _ = th.truncated_class_sum_extremes(c_, q_, k_)
    cands = [th.truncated_class_sum(np.r_[np.full(m, 1 / m), np.zeros(c_ - m)], q_, k_) for m in range(1, c_ + 1)]
    assert np.isclose(lo, min(cands))
    c_, q_, k_ = 3, 0.7, 0.2  # k < 1/c: the maximum has c - 1 coordinates at k
    _, hi = th.truncated_class_sum_extremes(c_, q_, k_)
    assert np.isclose(hi, th.truncated_class_sum(np.array([k_, k_, 1 - 2 * k_]), q_, k_))
    assert hi < c_ * _lq_np(k_, q_) - 0.1


def test_eq10_lower_bound_is_attained_exactly_when_d_is_an_integer():
    q_ = 0.5
    k_int = (1 - q_) ** (1 / q_) / 2  # d = 2
    for k_, tight in [(0.5, True), (k_int, True), (0.1, False), (0.15, False)]:
        lo, _ = th.truncated_class_sum_extremes(10, q_, k_)
        b_lo, _ = th.eq10_bounds(10, q_, k_)
        assert np.isclose(lo, b_lo, rtol=0, atol=1e-12) == tight
    # q = 1: d = 1, the minimum (c - 1)(1 - k) is a vertex of the simplex
    lo, hi = th.truncated_class_sum_extremes(10, 1.0, 0.3)
    assert np.isclose(lo, 9 * 0.7) and np.isclose(hi, 10 * 0.7)


def test_eq10_search_finds_the_exact_extremes():
    for c_, q_, k_ in [(10, 0.7, 0.5), (10, 0.3, 0.2), (4, 0.2, 0.3), (3, 0.7, 0.2)]:
        lo, hi = th.truncated_class_sum_extremes(c_, q_, k_)
        r = th.eq10_search(c_, q_, k_, n_starts=8, seed=1)
        assert abs(r["structured_min"] - lo) < 1e-9 and abs(r["structured_max"] - hi) < 1e-9
        assert abs(r["local_min"] - lo) < 1e-6 and abs(r["local_max"] - hi) < 1e-6
        assert np.isclose(r["argmin"].sum(), 1) and np.isclose(r["argmax"].sum(), 1)
        assert np.isclose(th.truncated_class_sum(r["argmin"], q_, k_), r["min"])
    r = th.eq10_search(100, 0.5, 0.1, local=False)
    assert np.isnan(r["local_min"]) and np.isclose(r["min"], th.truncated_class_sum_extremes(100, 0.5, 0.1)[0])


def test_eq11_c_min_is_the_boundary_and_q_one_always_fails():
    for q_, k_ in [(0.3, 0.1), (0.5, 0.3), (0.7, 0.5), (0.9, 0.2)]:
        cm = float(th.eq11_c_min(q_, k_))
        assert th.eq11_gap(cm * (1 + 1e-6), q_, k_) > 0 > th.eq11_gap(cm * (1 - 1e-6), q_, k_)
    assert np.isinf(th.eq11_c_min(1.0, 0.5))
    ks = np.linspace(0.01, 0.99, 50)
    for c_ in (2, 10, 1e6):
        assert not th.eq11_holds(c_, 1.0, ks).any()  # right side 0, left side 1 - k


def test_eq11_q_max_is_the_root_and_grows_with_k_and_c():
    qm = th.eq11_q_max(0.3, 10)
    assert 0.79 < qm < 0.795
    assert th.eq11_gap(10, qm - 1e-6, 0.3) > 0 > th.eq11_gap(10, qm + 1e-6, 0.3)
    grid = [[th.eq11_q_max(k_, c_) for c_ in (4, 10, 100)] for k_ in (0.3, 0.5)]
    assert np.all(np.diff(grid, axis=1) > 0) and np.all(np.diff(grid, axis=0) > 0)
    # with exact widths the condition is weaker, so q_max is at least as large
    assert th.eq11_q_max(0.2, 4, exact=True) > th.eq11_q_max(0.2, 4)
    assert np.isclose(th.eq11_q_max(0.3, 10, exact=True), qm)


def test_eq11_exact_gap_is_at_least_the_bound_gap():
    Q, K = np.meshgrid(np.linspace(0.05, 1, 40), np.linspace(0.1, 0.95, 40))
    assert np.all(th.eq11_exact_gap(10, Q, K) >= th.eq11_gap(10, Q, K) - 1e-12)


def test_acs_toy_descends_but_stops_at_a_partial_optimum():
    hist = th.acs_toy([0.0, 2.0], 1.5)
    obj = [h["objective"] for h in hist]
    assert np.all(np.diff(obj) <= 1e-12)
    assert hist[-1]["theta"] == 1.0 and hist[-1]["w"].tolist() == [1.0, 1.0] and obj[-1] == -1.0
    best = th.acs_toy_global([0.0, 2.0], 1.5)
    assert best["objective"] == -1.5 and best["w"].tolist() == [1.0, 0.0]
    hist = th.acs_toy([0.0, 2.0], 1.5, w0=[1.0, 0.0])  # another start reaches the global minimum
    assert hist[-1]["objective"] == -1.5
    with pytest.raises(ValueError):
        th.acs_toy_global(np.zeros(17), 1.0)
