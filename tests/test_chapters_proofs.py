"""gce.book.chapters.proofs: the symbolic and random checks of the proofs appendix (book/appendix/proofs.ipynb)."""

import numpy as np
import pytest
import sympy as sp

from gce.book import theory as th
from gce.book.chapters import proofs


def test_same_is_a_zero_difference_after_simplify():
    x = sp.Symbol("x", positive=True)
    assert proofs.same(x**2 - 1, (x - 1) * (x + 1))
    assert proofs.same(sp.sqrt(x**2), x)          # needs x > 0, as the theory's symbols are
    assert not proofs.same(x, x + 1)
    assert proofs.same(sp.Rational(1, 2), 0.5)


def test_noisy_risk_uniform_is_lemma_a3():
    direct, affine = th.noisy_risk_uniform_expr()
    risk = proofs.noisy_risk_uniform(th.R_sym, th.S_sym)
    assert proofs.same(risk, affine) and proofs.same(risk, direct)
    edge = risk.subs(th.eta, (th.c - 1) / th.c)   # at eta = 1 - 1/c the noisy label says nothing
    assert proofs.same(edge, th.S_sym / th.c)
    assert proofs.noisy_risk_uniform(2, 6, eta_=sp.Rational(1, 2), c_=4) == 2 * sp.Rational(1, 3) + 1


def test_lemma_a4_holds_for_small_class_counts_and_refuses_one_class():
    assert proofs.lemma_a4_holds(2) and proofs.lemma_a4_holds(3)
    with pytest.raises(ValueError, match="got 1"):
        proofs.lemma_a4_holds(1)


def test_class_sum_is_eq7s_sum():
    vertex = [sp.Integer(1), sp.Integer(0), sp.Integer(0)]
    assert proofs.same(proofs.class_sum(vertex), th.eq7_bounds_expr()[1].subs(th.c, 3))  # (c - 1)/q
    assert proofs.class_sum([0.5, 0.5], q_=1) == pytest.approx(1.0)     # MAE / 2: c - 1 at q = 1
    with pytest.raises(ValueError, match="at least one"):
        proofs.class_sum([])


def test_eq10_check_reports_the_bounds_the_extremes_and_whether_they_meet():
    cases = [(10, 0.7, 0.5), (10, 0.5, 0.05), (10, 0.7, 0.1)]
    t = proofs.eq10_check(cases, np.random.default_rng(0), size=200)
    assert t["holds"].tolist() == [True, True, True]
    assert t["d"].tolist() == pytest.approx([1.0, 5.0, 0.3 ** (1 / 0.7) / 0.1])
    assert t["lower attained"].tolist() == [True, True, False]           # d an integer, or not
    assert t["upper attained"].tolist() == [True, False, True]           # k < 1/c misses the top
    assert (t["exact min"] >= t["Eq.10 lower"] - 1e-12).all() and (t["exact max"] <= t["Eq.10 upper"] + 1e-12).all()
    again = proofs.eq10_check(cases, np.random.default_rng(0), size=200)
    assert again.equals(t)
    with pytest.raises(ValueError, match="size"):
        proofs.eq10_check(cases, np.random.default_rng(0), size=0)


def test_theorem2_brute_force_orders_the_grid_gap_the_exact_gap_and_B():
    t = proofs.theorem2_brute_force([0.5, 1.0], n_grid=60)
    assert t["seed"].tolist() == [0, 1] and t["q"].tolist() == [0.5, 1.0]
    assert t["0 <= gap <= B"].all()
    assert (t["gap (grid)"] <= t["gap (exact)"] + 1e-12).all() and (t["gap (exact)"] <= t["B"] + 1e-12).all()
    assert (t["min eta_ii - max eta_ij"] > 0).all()                    # diagonally dominant rows
    T0 = th.random_transition_matrix(3, 0)
    P0 = np.eye(3)[np.random.default_rng(100).integers(0, 3, size=4)]
    assert t["B"][0] == pytest.approx(th.theorem2_B(T0, P0, 0.5))
    finer = proofs.theorem2_brute_force([0.5, 1.0], n_grid=120)
    assert (finer["gap (grid)"] >= t["gap (grid)"] - 1e-12).all()     # a finer grid only gets closer
    with pytest.raises(ValueError, match="n_inputs"):
        proofs.theorem2_brute_force([0.5], n_inputs=0)
