"""Helpers of the proofs appendix (``book/appendix/proofs.ipynb``): the checks behind its proofs of Eq. 7,
Theorem 1 (Eq. 8), Theorem 2 and Eq. 10 of Sec. 3.

- :func:`same` -- whether sympy reduces the difference of two sides to zero (every "True" the appendix prints);
- :func:`noisy_risk_uniform` -- Lemma A.3's affine form of the noisy risk under uniform noise;
- :func:`lemma_a4_holds` -- Lemma A.4's identity, checked symbolically for one number of classes;
- :func:`class_sum` -- the class sum ``S_q`` of Eq. 7 at a point given coordinate by coordinate;
- :func:`theorem2_brute_force` -- Theorem 2's bound on small random problems, minimised on a grid and exactly;
- :func:`eq10_check` -- Eq. 10 at random points of the simplex beside the exact extremes of the truncated class sum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sympy as sp

from .. import theory as th

__all__ = ["same", "noisy_risk_uniform", "lemma_a4_holds", "class_sum", "theorem2_brute_force", "eq10_check"]


def same(lhs, rhs) -> bool:
    """Whether the sympy expressions ``lhs`` and ``rhs`` are equal: True when :func:`sympy.simplify` reduces
    ``lhs - rhs`` to 0.  A False is no proof of inequality (simplify may miss a zero); the appendix only ever
    reports the True cases as checks of its algebra."""
    return sp.simplify(sp.sympify(lhs) - sp.sympify(rhs)) == 0


def noisy_risk_uniform(R, S, eta_=th.eta, c_=th.c) -> sp.Expr:
    """Lemma A.3 of the proofs appendix (Sec. 3.1, Theorem 1): under uniform noise with rate ``eta_`` over
    ``c_`` classes the noisy risk is ``alpha R + eta / (c - 1) E[S]``, with ``alpha = 1 - eta c / (c - 1)``,
    ``R`` the clean risk and ``S`` the expected class sum (Eq. 7).  Returns that sympy expression; the
    defaults are the symbols of :mod:`gce.book.theory`, so the result can be substituted like theirs."""
    alpha = 1 - eta_ * c_ / (c_ - 1)
    return alpha * R + eta_ / (c_ - 1) * S


def lemma_a4_holds(c_: int) -> bool:
    """Whether Lemma A.4 of the proofs appendix (the noisy risk under class-dependent noise, Theorem 2),
    ``sum_j t_j L_j = t_y sum_j L_j - sum_{k != y} (t_y - t_k) L_k``, holds for symbolic ``t`` and ``L`` with
    ``c_`` classes and every index ``y`` (checked by :func:`same`).  ``c_`` below 2 raises ``ValueError``."""
    if not isinstance(c_, (int, np.integer)) or c_ < 2:
        raise ValueError(f"c_ must be an integer number of classes >= 2, got {c_!r}")
    ts = sp.symbols(f"t1:{c_ + 1}", real=True)
    Ls = sp.symbols(f"L1:{c_ + 1}", real=True)
    return all(same(sum(ts[j] * Ls[j] for j in range(c_)),
                    ts[y] * sum(Ls) - sum((ts[y] - ts[j]) * Ls[j] for j in range(c_) if j != y))
               for y in range(c_))


def class_sum(point, q_=th.q) -> sp.Expr:
    """The class sum ``S_q(f) = sum_j L_q(f_j)`` of Eq. 7 at the point ``point`` (a sequence of sympy
    expressions or numbers, one per class), with ``L_q`` from :func:`gce.book.theory.lq_expr`.  The proofs appendix
    uses it at ``f* = e_y`` and at a symbolic ``f_hat`` in Theorem 2's proof."""
    values = list(point)
    if not values:
        raise ValueError("class_sum needs at least one coordinate, got none")
    return sum(th.lq_expr(v, q_) for v in values)


def theorem2_brute_force(qs, n_inputs: int = 4, n_grid: int = 300) -> pd.DataFrame:
    """Theorem 2 (Sec. 3.1) checked by brute force on small problems (the proofs appendix, "Brute-force check").

    Problem ``i`` (``i = 0, 1, ...``, one per value of ``qs``) has c = 3 classes, ``n_inputs`` equally likely
    inputs whose deterministic clean labels are drawn with seed ``100 + i`` (so ``f*(x) = e_y``), and the
    transition matrix :func:`gce.theory.random_transition_matrix` ``(3, i)`` (``eta_ij < eta_ii``).  The noisy
    risk is minimised twice: over :func:`gce.theory.simplex_grid` ``(3, n_grid)`` by
    :func:`gce.theory.lq_grid_minimizer`, and exactly by :func:`gce.theory.pointwise_risk_gaps`.

    Parameters
    ----------
    qs : sequence of float
        One ``q`` in (0, 1] per problem.
    n_inputs : int, default 4
        Inputs per problem.
    n_grid : int, default 300
        Steps per edge of the grid (a step of ``1 / n_grid``).

    Returns
    -------
    pandas.DataFrame
        One row per problem: ``seed``, ``q``, ``min eta_ii - max eta_ij`` (the smallest margin of the
        diagonal), ``gap (grid)`` and ``gap (exact)`` (noisy risk of ``f*`` less the minimum), ``B``
        (:func:`gce.theory.theorem2_B`) and ``0 <= gap <= B`` (both gaps in order within ``[0, B]``, up to
        1e-12).  Numbers unrounded.
    """
    if not isinstance(n_inputs, int) or n_inputs < 1:
        raise ValueError(f"n_inputs must be a positive integer, got {n_inputs!r}")
    rows = []
    for seed, q_ in enumerate(qs):
        T = th.random_transition_matrix(3, seed)
        P = np.eye(3)[np.random.default_rng(100 + seed).integers(0, 3, size=n_inputs)]
        noisy = P @ T
        f_grid = th.lq_grid_minimizer(noisy, q_, n=n_grid)
        gap_grid = float(np.mean(th.lq_pointwise_risk(P, noisy, q_) - th.lq_pointwise_risk(f_grid, noisy, q_)))
        gap_exact = th.pointwise_risk_gaps(P, T, q_)["noisy_gap"]
        B = th.theorem2_B(T, P, q_)
        margin = (np.diag(T) - (T - np.diag(np.diag(T))).max(1)).min()
        rows.append({"seed": seed, "q": q_, "min eta_ii - max eta_ij": margin,
                     "gap (grid)": gap_grid, "gap (exact)": gap_exact, "B": B,
                     "0 <= gap <= B": bool(-1e-12 <= gap_grid <= gap_exact + 1e-12 and gap_exact <= B + 1e-12)})
    return pd.DataFrame(rows)


def eq10_check(cases, rng: np.random.Generator, size: int = 20_000,
               concentrations=(0.05, 0.3, 1.0)) -> pd.DataFrame:
    """Eq. 10 tested at random points of the simplex, and compared with the exact extremes of the truncated
    class sum (the proofs appendix, "The truncated class sum").

    Parameters
    ----------
    cases : sequence of (c, q, k)
        Number of classes, ``q`` in (0, 1] and ``k`` in (0, 1).
    rng : numpy.random.Generator
        Draws, per case and in this order, ``size`` points from a symmetric Dirichlet distribution for each
        of ``concentrations`` (small ones put many points near faces and vertices).
    size : int, default 20000
        Points per concentration.

    Returns
    -------
    pandas.DataFrame
        One row per case: ``c``, ``q``, ``k``, ``d`` (``max(1, (1 - q)^(1/q) / k)``), ``Eq.10 lower`` and
        ``Eq.10 upper`` (:func:`gce.book.theory.eq10_bounds`), ``exact min`` and ``exact max``
        (:func:`gce.book.theory.truncated_class_sum_extremes`), ``lower attained`` and ``upper attained`` (bound
        and extreme agree to ``numpy.isclose``) and ``holds`` (every random point lies within the bounds, up
        to 1e-9).  Numbers unrounded.
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    rows = []
    for c_, q_, k_ in cases:
        pts = np.concatenate([rng.dirichlet(np.full(c_, a), size=size) for a in concentrations])
        sums = th.truncated_class_sum(pts, q_, k_)
        lo, hi = (float(v) for v in th.eq10_bounds(c_, q_, k_))
        ex_lo, ex_hi = (float(v) for v in th.truncated_class_sum_extremes(c_, q_, k_))
        rows.append({"c": c_, "q": q_, "k": k_, "d": max(1.0, (1 - q_) ** (1 / q_) / k_),
                     "Eq.10 lower": lo, "exact min": ex_lo, "lower attained": bool(np.isclose(lo, ex_lo)),
                     "Eq.10 upper": hi, "exact max": ex_hi, "upper attained": bool(np.isclose(hi, ex_hi)),
                     "holds": bool(lo - 1e-9 <= sums.min() and sums.max() <= hi + 1e-9)})
    return pd.DataFrame(rows)
