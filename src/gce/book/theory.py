"""The mathematics of Sec. 3 as sympy expressions, with vectorised numeric twins.

Symbols (all positive reals): ``f`` a softmax probability, ``q`` the L_q
parameter, ``c`` the number of classes, ``eta`` the noise rate, ``k`` the
truncation threshold.  Each ``*_expr`` function returns a sympy expression;
each numeric function of the same name without ``_expr`` evaluates it on
numpy arrays (broadcasting), via :func:`sympy.lambdify`.

Contents, by equation of Zhang & Sabuncu (2018):

- Eq. 6: :func:`lq_expr`; its limit ``q -> 0`` by L'Hopital (:func:`lhopital_q_to_zero`)
  and its value at ``q = 1``.
- Eq. 5 and Sec. 3.2: :func:`gradient_weight` -- the factor ``w(f)`` in
  ``dL/dtheta = -w(f) grad f``: ``1/f`` (CCE), ``2`` (MAE of Eq. 4), ``1``
  (unhinged), ``f**(q-1)`` (L_q).
- Eq. 7: :func:`eq7_bounds_expr`, :func:`lq_class_sum`.
- Eq. 8 (Theorem 1): :func:`theorem1_A_expr`, :func:`theorem1_A`.
- Eq. 9-10: :func:`truncated_lq_expr`, :func:`d_expr`, :func:`eq10_bounds_expr`,
  :func:`truncated_class_sum`.
- Eq. 11: :func:`eq11_sides_expr`, :func:`eq11_holds`.
- Eq. 13: :func:`acs_objective`, :func:`acs_optimal_weights`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from .. import losses as _losses
from .. import noise as _noise

__all__ = [
    "f", "q", "c", "eta", "k",
    "lq_expr", "cce_expr", "mae_expr", "unhinged_expr",
    "lhopital_q_to_zero", "gradient_weight",
    "eq7_bounds_expr", "eq7_bounds", "lq_class_sum",
    "theorem1_A_expr", "theorem1_A",
    "truncated_lq_expr", "d_expr", "eq10_bounds_expr", "eq10_bounds", "truncated_class_sum",
    "eq11_sides_expr", "eq11_gap", "eq11_holds",
    "acs_objective", "acs_optimal_weights",
]

f, q, c, eta, k = sp.symbols("f q c eta k", positive=True)


# --------------------------------------------------------------------------
# Eq. 2, 4, 6: the losses as functions of the softmax probability f = f_y


def lq_expr(p=f, q_=q) -> sp.Expr:
    """``L_q(p) = (1 - p**q) / q`` (Eq. 6)."""
    return (1 - p ** q_) / q_


def cce_expr(p=f) -> sp.Expr:
    """``-log p`` (Eq. 2 for one sample)."""
    return -sp.log(p)


def mae_expr(p=f) -> sp.Expr:
    """``2 - 2 p`` (Eq. 4): the L1 distance from the one-hot label to the softmax output."""
    return 2 - 2 * p


def unhinged_expr(p=f) -> sp.Expr:
    """``1 - p``: the unhinged loss of van Rooyen et al. (2015), half of Eq. 4."""
    return 1 - p


def lhopital_q_to_zero() -> dict[str, sp.Expr]:
    """The steps of L'Hopital's rule for ``lim_{q->0} (1 - f**q) / q``.

    Returns the numerator and denominator, their values at ``q = 0`` (both 0:
    the form 0/0), their derivatives in ``q``, the ratio of the derivatives,
    its value at ``q = 0`` and, as an independent check, sympy's own limit.
    """
    num, den = 1 - f ** q, q
    d_num, d_den = sp.diff(num, q), sp.diff(den, q)
    ratio = sp.simplify(d_num / d_den)
    return {
        "numerator": num, "denominator": den,
        "numerator_at_0": num.subs(q, 0), "denominator_at_0": den.subs(q, 0),
        "d_numerator": d_num, "d_denominator": d_den,
        "ratio": ratio, "ratio_at_0": sp.simplify(ratio.subs(q, 0)),
        "limit": sp.limit(lq_expr(), q, 0),
    }


def gradient_weight(loss: sp.Expr, p=f) -> sp.Expr:
    """``w(p) = -dL/dp``: the chain rule gives ``dL/dtheta = -w(p) grad_theta p`` (Eq. 5)."""
    return sp.simplify(-sp.diff(loss, p))


# --------------------------------------------------------------------------
# Eq. 7: bounds on the class-sum of L_q


def eq7_bounds_expr(c_=c, q_=q) -> tuple[sp.Expr, sp.Expr]:
    """``((c - c**(1-q)) / q, (c - 1) / q)``: the bounds of Eq. 7.

    The lower bound is attained at the uniform softmax ``f = 1/c`` (``sum f_j**q``
    is Schur-concave, largest at the centre of the simplex); the upper bound
    needs a vertex ``f = e_j``, which a softmax output only approaches.
    """
    return (c_ - c_ ** (1 - q_)) / q_, (c_ - 1) / q_


def lq_class_sum(probs: np.ndarray, q_: float) -> np.ndarray:
    """``sum_j L_q(f_j)`` along the last axis of ``probs`` (the middle of Eq. 7)."""
    probs = np.asarray(probs, dtype=float)
    with np.errstate(divide="ignore"):
        return _losses.lq_from_log(np.log(probs), q_).sum(axis=-1)


# --------------------------------------------------------------------------
# Eq. 8: Theorem 1's constant


def theorem1_A_expr(eta_=eta, q_=q, c_=c) -> sp.Expr:
    """``A = eta (1 - c**(1-q)) / (q (c - 1 - eta c))`` (Eq. 8)."""
    return eta_ * (1 - c_ ** (1 - q_)) / (q_ * (c_ - 1 - eta_ * c_))


# --------------------------------------------------------------------------
# Eq. 9-10: truncated L_q


def truncated_lq_expr(p=f, q_=q, k_=k) -> sp.Expr:
    """Eq. 9 as a function of ``p = f_y``: ``L_q(k)`` for ``p <= k``, else ``L_q(p)``."""
    return sp.Piecewise((lq_expr(k_, q_), p <= k_), (lq_expr(p, q_), True))


def d_expr(q_=q, k_=k) -> sp.Expr:
    """``d = max(1, (1 - q)**(1/q) / k)`` (Eq. 10)."""
    return sp.Max(1, (1 - q_) ** (1 / q_) / k_)


def eq10_bounds_expr(c_=c, q_=q, k_=k) -> tuple[sp.Expr, sp.Expr]:
    """``(d L_q(1/d) + (c - d) L_q(k), c L_q(k))``: the bounds of Eq. 10 (for ``k >= 1/c``)."""
    d_ = d_expr(q_, k_)
    return d_ * lq_expr(1 / d_, q_) + (c_ - d_) * lq_expr(k_, q_), c_ * lq_expr(k_, q_)


def truncated_class_sum(probs: np.ndarray, q_: float, k_: float) -> np.ndarray:
    """``sum_j L_trunc(f, e_j)`` along the last axis of ``probs`` (the middle of Eq. 10)."""
    probs = np.asarray(probs, dtype=float)
    with np.errstate(divide="ignore"):
        lq_k = _losses.lq_from_log(np.log(k_), q_)
        vals = np.where(probs <= k_, lq_k, _losses.lq_from_log(np.log(probs), q_))
    return vals.sum(axis=-1)


# --------------------------------------------------------------------------
# Eq. 11


def eq11_sides_expr(c_=c, q_=q, k_=k) -> tuple[sp.Expr, sp.Expr]:
    """``(d [L_q(k) - L_q(1/d)], (c**(1-q) - 1) / q)``: Eq. 11 asks left < right.

    The left side is the width of Eq. 10's interval, the right side that of Eq. 7's.
    """
    d_ = d_expr(q_, k_)
    return d_ * (lq_expr(k_, q_) - lq_expr(1 / d_, q_)), (c_ ** (1 - q_) - 1) / q_


# --------------------------------------------------------------------------
# Eq. 13


def acs_objective(lq_values: np.ndarray, w: np.ndarray, lq_k: float) -> float:
    """``sum_i w_i L_q(f_i) - L_q(k) sum_i w_i``: the objective of Eq. 13 for fixed parameters."""
    lq_values, w = np.asarray(lq_values, dtype=float), np.asarray(w, dtype=float)
    return float((w * lq_values).sum() - lq_k * w.sum())


def acs_optimal_weights(lq_values: np.ndarray, lq_k: float) -> np.ndarray:
    """The minimiser of Eq. 13 over ``w in [0, 1]^n``: ``w_i = 1`` iff ``L_q(f_i) <= L_q(k)``.

    The objective is linear in ``w`` with coefficient ``L_q(f_i) - L_q(k)``, so
    each ``w_i`` sits at the end of ``[0, 1]`` that makes its term smallest.
    """
    return (np.asarray(lq_values, dtype=float) <= lq_k).astype(float)


# --------------------------------------------------------------------------
# numeric twins


@lru_cache(maxsize=None)
def _numeric(name: str):
    exprs = {
        "A": (theorem1_A_expr(), (eta, q, c)),
        "eq7": (sp.Matrix(eq7_bounds_expr()), (c, q)),
        "eq10": (sp.Matrix(eq10_bounds_expr()), (c, q, k)),
        "eq11": (sp.Matrix(eq11_sides_expr()), (c, q, k)),
    }
    expr, args = exprs[name]
    return sp.lambdify(args, expr, modules="numpy")


def _check_ranges(q_=None, k_=None, c_=None, eta_=None) -> None:
    if q_ is not None and not np.all((np.asarray(q_) > 0) & (np.asarray(q_) <= 1)):
        raise ValueError("q must be in (0, 1] (Eq. 6)")
    if k_ is not None and not np.all((np.asarray(k_) > 0) & (np.asarray(k_) < 1)):
        raise ValueError("k must be in (0, 1) (Eq. 9)")
    if c_ is not None and not np.all(np.asarray(c_) >= 2):
        raise ValueError("c (the number of classes) must be >= 2")
    if eta_ is not None and not np.all((np.asarray(eta_) >= 0) & (np.asarray(eta_) < 1)):
        raise ValueError("eta must be in [0, 1)")


def theorem1_A(eta_, q_, c_) -> np.ndarray:
    """Theorem 1's constant ``A`` on arrays (broadcast); NaN where ``eta = (c-1)/c``."""
    _check_ranges(q_=q_, c_=c_, eta_=eta_)
    eta_, q_, c_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (eta_, q_, c_)))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(_numeric("A")(eta_, q_, c_), dtype=float)
    return np.where(np.isclose(c_ - 1 - eta_ * c_, 0), np.nan, out)


def eq7_bounds(c_, q_) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 7's (lower, upper) bounds on arrays."""
    _check_ranges(q_=q_, c_=c_)
    c_, q_ = np.broadcast_arrays(np.asarray(c_, dtype=float), np.asarray(q_, dtype=float))
    lo, hi = _numeric("eq7")(c_, q_)
    return np.asarray(lo, dtype=float).reshape(c_.shape), np.asarray(hi, dtype=float).reshape(c_.shape)


def eq10_bounds(c_, q_, k_) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 10's (lower, upper) bounds on arrays."""
    _check_ranges(q_=q_, k_=k_, c_=c_)
    c_, q_, k_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (c_, q_, k_)))
    lo, hi = (np.asarray(v, dtype=float).reshape(c_.shape) for v in _numeric("eq10")(c_, q_, k_))
    return lo, hi


def eq11_gap(c_, q_, k_) -> np.ndarray:
    """Right side minus left side of Eq. 11 on arrays: Eq. 11 holds where this is positive."""
    _check_ranges(q_=q_, k_=k_, c_=c_)
    c_, q_, k_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (c_, q_, k_)))
    lhs, rhs = (np.asarray(v, dtype=float).reshape(c_.shape) for v in _numeric("eq11")(c_, q_, k_))
    return rhs - lhs


def eq11_holds(c_, q_, k_) -> np.ndarray:
    """Whether Eq. 11 holds (strictly) at each point."""
    return eq11_gap(c_, q_, k_) > 0


# ---- lq_family ----
# Chapter "CCE, MAE and the L_q family" (Sec. 3.2, Eq. 4-6 and the gradient
# formula after Eq. 8): the q -> 0 series, the gradient with respect to the
# logits, and numeric twins of the loss and its weights for the figures.


def lq_series_expr(order: int = 3) -> sp.Expr:
    """Eq. 6 expanded in ``q`` around 0, up to (not including) ``q**order``.

    ``f**q = exp(q log f)``, so ``L_q = -log f - q (log f)**2 / 2 - q**2 (log f)**3 / 6 - ...``:
    the constant term is CCE (Eq. 2) and the first correction, ``-q (log f)**2 / 2``,
    sets how fast ``L_q`` approaches it.
    """
    return sp.expand(sp.series(lq_expr(), q, 0, order).removeO())


def lq_logit_gradient(n_classes: int = 3, label: int = 0, q_=q) -> dict[str, object]:
    """The gradient of ``L_q`` (Eq. 6) with respect to the logits ``z`` of a softmax.

    With ``f = softmax(z)`` and label ``y``, the chain rule through the softmax
    Jacobian ``d f_y / d z_j = f_y (1[j=y] - f_j)`` turns the paper's
    ``-f_y**(q-1) grad f_y`` into ``d L_q / d z_j = f_y**q (f_j - 1[j=y])``.
    Returns the logit symbols, the softmax vector, the loss, sympy's gradient of
    the loss in ``z``, that closed form, and their difference after
    simplification (a vector of zeros when the closed form is right).
    """
    if n_classes < 2 or not 0 <= label < n_classes:
        raise ValueError("need n_classes >= 2 and 0 <= label < n_classes")
    z = sp.symbols(f"z0:{n_classes}", real=True)
    total = sum(sp.exp(zj) for zj in z)
    soft = sp.Matrix([sp.exp(zj) / total for zj in z])
    fy = soft[label]
    loss = (1 - fy ** q_) / q_
    grad = sp.Matrix([sp.diff(loss, zj) for zj in z])
    closed = sp.Matrix([fy ** q_ * (soft[j] - (1 if j == label else 0)) for j in range(n_classes)])
    diff = sp.Matrix([sp.simplify(sp.powsimp(sp.expand_power_base(g - cf, force=True), force=True))
                      for g, cf in zip(grad, closed)])
    return {"logits": z, "softmax": soft, "loss": loss, "gradient": grad,
            "closed_form": closed, "difference": diff}


def _check_q_closed(q_) -> None:
    if not np.all((np.asarray(q_) >= 0) & (np.asarray(q_) <= 1)):
        raise ValueError("q must be in [0, 1] (q = 0 stands for the CCE limit of Eq. 6)")


def lq_curve(p, q_) -> np.ndarray:
    """``L_q(p) = (1 - p**q) / q`` (Eq. 6) on arrays; ``q = 0`` gives its limit ``-log p`` (Eq. 2).

    Computed as ``-expm1(q log p) / q``, which keeps full precision for small ``q``.
    """
    _check_q_closed(q_)
    p, q_ = np.broadcast_arrays(np.asarray(p, dtype=float), np.asarray(q_, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.log(p)
        out = _losses.lq_from_log(log_p, q_)
    return np.where(q_ == 0, -log_p, out)


def lq_gradient_weight(p, q_) -> np.ndarray:
    """``w(p) = p**(q-1)``: ``dL_q/dtheta = -w(p) grad_theta p`` (the display after Eq. 8).

    ``q = 0`` gives CCE's ``1/p`` and ``q = 1`` the unhinged loss's ``1`` (Eq. 5).
    """
    _check_q_closed(q_)
    return np.asarray(p, dtype=float) ** (np.asarray(q_, dtype=float) - 1.0)


def lq_relative_weight(p, q_) -> np.ndarray:
    """``p**q``: the weight of a sample's gradient under ``L_q`` relative to CCE (Sec. 3.2)."""
    _check_q_closed(q_)
    return np.asarray(p, dtype=float) ** np.asarray(q_, dtype=float)


def lq_logit_gradient_closed_form(probs, labels, q_) -> np.ndarray:
    """``f_y**q (f - e_y)`` row by row: the gradient of ``L_q`` in the logits (see :func:`lq_logit_gradient`).

    ``probs`` has shape ``(N, c)`` (softmax outputs), ``labels`` shape ``(N,)``.
    """
    _check_q_closed(q_)
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=int)
    onehot = np.eye(probs.shape[-1])[labels]
    fy = np.take_along_axis(probs, labels[:, None], axis=-1)
    return fy ** q_ * (probs - onehot)


__all__ += ["lq_series_expr", "lq_logit_gradient", "lq_curve", "lq_gradient_weight",
            "lq_relative_weight", "lq_logit_gradient_closed_form"]


# ---- appendix/proofs ----
# Appendix "Proofs" (the book's reconstruction of the proofs behind Eq. 7, 8, 10
# and Theorem 2): pointwise risks and their exact minimisers over the closed
# probability simplex, Theorem 2's constant B, and the exact minimum of Eq. 10's
# middle term.


def lq_pointwise_risk(probs, label_dist, q_: float) -> np.ndarray:
    """``sum_j t_j L_q(f_j)`` along the last axis: the expected L_q loss (Eq. 6) at one input.

    ``probs`` holds predictions ``f`` in the closed simplex and ``label_dist`` the
    label distribution ``t`` at that input (they broadcast against each other).
    With ``t`` the clean ``P(y | x)`` this is the clean conditional risk; with
    ``t = T[y_x]`` (a row of the transition matrix, Sec. 3.1) it is the noisy one.
    Zero probabilities are allowed: ``0**q = 0`` for ``q > 0``.
    """
    _check_ranges(q_=q_)
    probs, t = np.asarray(probs, dtype=float), np.asarray(label_dist, dtype=float)
    return (t * lq_curve(probs, q_)).sum(axis=-1)


def lq_pointwise_minimizer(label_dist, q_: float) -> np.ndarray:
    """The minimiser over the closed simplex of :func:`lq_pointwise_risk`, row by row.

    For ``q < 1`` it is ``f_j = t_j**r / sum_i t_i**r`` with ``r = 1 / (1 - q)``
    (Hoelder's inequality; see the appendix "Proofs"), unique. For ``q = 1``
    (MAE/unhinged, Eq. 4) the risk is linear in ``f`` and every point of the
    face spanned by the most likely labels is a minimiser; the centre of that
    face is returned. Computed as ``(t / max t)**r`` so large ``r`` cannot overflow.
    """
    _check_ranges(q_=q_)
    t = np.asarray(label_dist, dtype=float)
    if np.any(t < 0) or np.any(t.sum(axis=-1) <= 0):
        raise ValueError("label_dist must be non-negative with a positive sum along the last axis")
    t_max = t.max(axis=-1, keepdims=True)
    if q_ == 1:
        w = np.isclose(t, t_max, rtol=0, atol=1e-12).astype(float)
    else:
        w = (t / t_max) ** (1.0 / (1.0 - q_))
    return w / w.sum(axis=-1, keepdims=True)


def simplex_grid(c_: int, n: int) -> np.ndarray:
    """All points of the closed simplex in ``R^c`` whose coordinates are multiples of ``1/n``.

    Shape ``(binomial(n + c - 1, c - 1), c)``; vertices and faces included. Used to
    minimise risks by brute force, independently of :func:`lq_pointwise_minimizer`.
    """
    if c_ < 2 or n < 1:
        raise ValueError("need c >= 2 and n >= 1")
    from itertools import combinations

    # stars and bars: c - 1 bars among n + c - 1 slots; the gaps between bars are the counts
    bars = np.array(list(combinations(range(n + c_ - 1), c_ - 1)), dtype=int).reshape(-1, c_ - 1)
    edges = np.concatenate([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), n + c_ - 1)], axis=1)
    return (np.diff(edges, axis=1) - 1) / n


def pointwise_risk_gaps(clean_dist, T, q_: float, weights=None) -> dict[str, object]:
    """Clean and noisy risk gaps between ``f*`` and ``f_hat`` over all functions into the closed simplex.

    A finite problem: inputs ``x_1 .. x_n`` with probabilities ``weights`` (uniform
    by default) and clean label distributions ``clean_dist`` (shape ``(n, c)``;
    one-hot rows are deterministic labels). Labels are flipped by ``T``
    (``T[i, j] = P(noisy = j | clean = i)``, Sec. 3.1), so the noisy label
    distribution at ``x`` is ``clean_dist[x] @ T``. Because the class of all
    functions is unconstrained, ``f*`` (the minimiser of the clean risk ``R``) and
    ``f_hat`` (the minimiser of the noisy risk ``R^eta``) are found input by input
    with :func:`lq_pointwise_minimizer`.

    Returns ``f_star``, ``f_hat``, ``clean_gap = R(f*) - R(f_hat)`` (Theorem 1,
    Eq. 8, bounds it) and ``noisy_gap = R^eta(f*) - R^eta(f_hat)`` (Theorem 2 bounds it).
    """
    P = np.atleast_2d(np.asarray(clean_dist, dtype=float))
    T = np.asarray(T, dtype=float)
    if T.shape != (P.shape[1], P.shape[1]):
        raise ValueError("T must be c x c with c = clean_dist.shape[1]")
    w = np.full(len(P), 1.0 / len(P)) if weights is None else np.asarray(weights, dtype=float)
    noisy = P @ T
    f_star, f_hat = lq_pointwise_minimizer(P, q_), lq_pointwise_minimizer(noisy, q_)

    def risk(fx, t):
        return float(w @ lq_pointwise_risk(fx, t, q_))

    return {"f_star": f_star, "f_hat": f_hat,
            "clean_gap": risk(f_star, P) - risk(f_hat, P),
            "noisy_gap": risk(f_star, noisy) - risk(f_hat, noisy)}


def random_transition_matrix(c_: int, seed: int, diagonal_dominant: bool = True) -> np.ndarray:
    """A random ``c x c`` transition matrix ``T[i, j] = P(noisy = j | clean = i)`` (Sec. 3.1).

    Rows are Dirichlet(1) draws pushed towards the diagonal by a random amount.
    With ``diagonal_dominant`` the draw is repeated until ``T[i, j] < T[i, i]``
    for all ``j != i``: the condition of Theorem 2 (the paper's ``q_ij < q_ii``).
    """
    if c_ < 2:
        raise ValueError("c (the number of classes) must be >= 2")
    rng = np.random.default_rng(seed)
    while True:
        T = rng.dirichlet(np.ones(c_), size=c_) + np.diag(rng.uniform(0, 1.5, size=c_))
        T /= T.sum(axis=1, keepdims=True)
        off = T - np.diag(np.diag(T))
        if not diagonal_dominant or (off.max(axis=1) < np.diag(T)).all():
            return T


def theorem2_B_expr(c_=c, q_=q, keep=sp.Symbol("kappa", positive=True)) -> sp.Expr:
    """``B = (c**(1-q) - 1) / q * kappa``, the book's constant for Theorem 2.

    ``kappa = E_D[1 - eta_{y_x}]`` is the mean probability that a label survives
    the noise (``1 - eta_i = T[i, i]``): the width of Eq. 7's interval times ``kappa``.
    """
    return (c_ ** (1 - q_) - 1) / q_ * keep


def theorem2_B(T, clean_dist, q_: float, weights=None) -> float:
    """Theorem 2's ``B = (c**(1-q) - 1) / q * E_D[T[y_x, y_x]]`` on a finite problem.

    ``clean_dist`` and ``weights`` as in :func:`pointwise_risk_gaps`.
    """
    _check_ranges(q_=q_)
    P = np.atleast_2d(np.asarray(clean_dist, dtype=float))
    T = np.asarray(T, dtype=float)
    w = np.full(len(P), 1.0 / len(P)) if weights is None else np.asarray(weights, dtype=float)
    c_ = P.shape[1]
    keep = float(w @ (P @ np.diag(T)))
    return (c_ ** (1 - q_) - 1) / q_ * keep


__all__ += ["lq_pointwise_risk", "lq_pointwise_minimizer", "simplex_grid", "pointwise_risk_gaps",
            "random_transition_matrix", "theorem2_B_expr", "theorem2_B"]


# ---- bounds chapter ----
# Sec. 3.1-3.2: the noisy risk under uniform noise (Eq. 3), the slack in
# Eq. 7 computed without cancellation, and an exact brute-force check of
# Theorem 1 (Eq. 8) on a finite input space.

R_sym, S_sym = sp.symbols("R S", real=True)


def noisy_risk_uniform_expr(R_=R_sym, S_=S_sym, eta_=eta, c_=c) -> tuple[sp.Expr, sp.Expr]:
    """The noisy risk under uniform noise, before and after rearranging (Sec. 3.1, Eq. 3).

    ``R_`` stands for the clean risk ``R_L(f)`` and ``S_`` for the expected
    class sum ``E_x[sum_j L(f(x), e_j)]``.  A clean label ``y`` stays with
    probability ``1 - eta`` and moves to each of the other ``c - 1`` classes
    with probability ``eta / (c - 1)``, so the expected loss at the noisy label
    is ``(1 - eta) L_y + eta / (c - 1) (S - L_y)``; this is linear in ``L_y``
    and ``S``, so taking ``E_{x,y}`` replaces them by ``R_`` and ``S_``.
    Returns ``(direct, affine)``: that expression, and
    ``(1 - eta c / (c - 1)) R + eta S / (c - 1)``; they are equal.
    """
    direct = (1 - eta_) * R_ + eta_ / (c_ - 1) * (S_ - R_)
    affine = (1 - eta_ * c_ / (c_ - 1)) * R_ + eta_ * S_ / (c_ - 1)
    return direct, affine


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=float)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def eq7_slack_from_logits(logits: np.ndarray, q_: float) -> tuple[np.ndarray, np.ndarray]:
    """How far ``sum_j L_q(f, e_j)`` lies from each bound of Eq. 7, for ``f = softmax(logits)``.

    Returns ``(sum - lower, upper - sum)`` along the last axis.  The upper slack
    is ``(sum_j f_j**q - 1) / q = sum_j f_j (f_j**(q-1) - 1) / q``, a sum of
    non-negative terms ``f_j**q (1 - f_j**(1-q))``, each computed from
    ``log f_j`` with ``expm1``: it stays accurate (and positive) when ``f`` is
    so close to a vertex that :func:`lq_class_sum` rounds it to 0.
    """
    _check_ranges(q_=q_)
    log_f = _log_softmax(logits)
    c_ = log_f.shape[-1]
    fq = np.exp(q_ * log_f)
    lower = (c_ ** (1 - q_) - fq.sum(axis=-1)) / q_
    upper = (fq * -np.expm1((1 - q_) * log_f)).sum(axis=-1) / q_
    return lower, upper


def lq_grid_minimizer(label_dist, q_: float, n: int = 200) -> np.ndarray:
    """Brute-force twin of :func:`lq_pointwise_minimizer`: the best point of :func:`simplex_grid` ``(c, n)`` per row.

    No calculus involved: :func:`lq_pointwise_risk` is evaluated at every grid
    point of the closed simplex and the smallest is kept.
    """
    p = np.asarray(label_dist, dtype=float)
    rows = p.reshape(-1, p.shape[-1])
    grid = simplex_grid(rows.shape[-1], n)
    best = np.argmin(lq_pointwise_risk(grid[None, :, :], rows[:, None, :], q_), axis=1)
    return grid[best].reshape(p.shape)


def _check_theorem1_eta(eta_: float, c_: int) -> None:
    _check_ranges(eta_=eta_, c_=c_)
    if not eta_ < (c_ - 1) / c_:
        raise ValueError(f"Theorem 1 needs eta < (c-1)/c = {(c_ - 1) / c_:.4g}; A is undefined at equality")


def theorem1_check(px, clean_dist, eta_: float, q_: float) -> dict[str, float | bool]:
    """Theorem 1 (Eq. 8) computed exactly on a finite input space under uniform noise ``eta``.

    ``px[i]`` is the probability of input ``x_i`` and ``clean_dist[i]`` its clean
    label distribution.  The hypothesis class is every map from the inputs to
    the *closed* simplex, so ``f*`` and ``f_hat`` are found input by input
    (:func:`pointwise_risk_gaps`).  Returns the clean risks ``R_f_star`` and
    ``R_f_hat``, ``gap = R(f*) - R(f_hat)``, ``A`` (:func:`theorem1_A`) and
    ``holds``: ``A <= gap <= 0`` up to ``1e-12``.  Needs ``eta < (c - 1) / c``.
    """
    P = np.atleast_2d(np.asarray(clean_dist, dtype=float))
    c_ = P.shape[1]
    _check_theorem1_eta(eta_, c_)
    px = np.asarray(px, dtype=float)
    if px.shape != (len(P),) or np.any(px < 0) or not np.isclose(px.sum(), 1):
        raise ValueError("px must be a probability vector with one entry per row of clean_dist")
    res = pointwise_risk_gaps(P, _noise.uniform(int(c_), float(eta_)).numpy(), q_, weights=px)
    r_star = float(px @ lq_pointwise_risk(res["f_star"], P, q_))
    r_hat = float(px @ lq_pointwise_risk(res["f_hat"], P, q_))
    A = float(theorem1_A(eta_, q_, c_)) + 0.0  # + 0.0 turns -0.0 into 0.0
    gap = res["clean_gap"]
    return {"R_f_star": r_star, "R_f_hat": r_hat, "gap": gap, "A": A,
            "holds": bool(A - 1e-12 <= gap <= 1e-12)}


def theorem1_pointwise_gap(clean_dist, eta_: float, q_: float) -> np.ndarray:
    """``R(f*) - R(f_hat)`` for a single input, row by row over clean label distributions.

    Over a finite input space the gap of Theorem 1 is the ``p(x)``-weighted mean
    of these values, so their minimum over the simplex is the smallest gap any
    such problem can have: the tightest possible ``A`` (Eq. 8) for the class of
    all maps to the closed simplex.
    """
    P = np.asarray(clean_dist, dtype=float)
    c_ = P.shape[-1]
    _check_theorem1_eta(eta_, c_)
    f_star = lq_pointwise_minimizer(P, q_)
    f_hat = lq_pointwise_minimizer(P @ _noise.uniform(int(c_), float(eta_)).numpy(), q_)
    return lq_pointwise_risk(f_star, P, q_) - lq_pointwise_risk(f_hat, P, q_)


def theorem1_worst_gap(clean_dist, eta_: float, q_grid) -> np.ndarray:
    """The smallest single-input gap ``R(f*) - R(f_hat)`` over the rows of ``clean_dist``, for each ``q`` of ``q_grid``.

    ``clean_dist`` is a set of clean label distributions, typically all of the
    simplex up to a grid (:func:`simplex_grid`); the minimum of
    :func:`theorem1_pointwise_gap` over them is the worst gap any problem can
    have, to compare with ``A`` of Theorem 1 (Eq. 8).  Returns an array with one
    entry per ``q``.  Used by the chapter on bounds (its tightness figure,
    :func:`gce.book.plots.theorem1_tightness`, and its closest approach to ``A``).
    """
    q_grid = np.atleast_1d(np.asarray(q_grid, dtype=float))
    return np.array([theorem1_pointwise_gap(clean_dist, eta_, q_).min() for q_ in q_grid])


__all__ += ["R_sym", "S_sym", "noisy_risk_uniform_expr", "eq7_slack_from_logits", "lq_grid_minimizer",
            "theorem1_check", "theorem1_pointwise_gap", "theorem1_worst_gap"]


# ---- truncated ----
# Sec. 3.3: the exact range of the truncated class sum (Eq. 10), a search on
# the simplex that checks it, the boundary of Eq. 11, and a toy run of
# alternating convex search on the objective of Eq. 13 (Algorithm 1).


def _eq10_gain(m, q_, k_):
    """``m**(1-q) - m k**q``: how far ``m`` coordinates at ``1/m`` push the class sum below ``c L_q(k)``."""
    return np.where(m > 0, np.power(np.maximum(m, 1e-300), 1 - q_) - m * k_ ** q_, 0.0)


def truncated_class_sum_extremes(c_, q_, k_) -> tuple[np.ndarray, np.ndarray]:
    """The exact minimum and maximum of ``sum_j L_trunc(f, e_j)`` over the closed simplex (Eq. 10).

    Minimum: ``c L_q(k) - max_m (m**(1-q) - m k**q) / q`` over the integers
    ``1 <= m <= c``, reached with ``m`` coordinates at ``1/m`` and the rest at 0.
    The gain is concave in ``m`` with its real maximiser at ``d`` of Eq. 10, so
    the best integer is ``floor(d)`` or ``ceil(d)`` (clipped to ``[1, c]``).
    Eq. 10's lower bound uses the real ``d`` itself, so it is attained exactly
    when ``d`` is an integer ``<= c`` (in particular when ``d = 1``).

    Maximum: ``c L_q(k)`` (every ``f_j <= k``, e.g. the uniform point) when
    ``c k >= 1``; otherwise ``(c - 1) L_q(k) + L_q(1 - (c - 1) k)``, with
    ``c - 1`` coordinates at ``k`` and the rest of the mass on one coordinate.
    Softmax outputs have no zero coordinates, so they approach (not reach) an
    extreme that has zeros.  Arrays broadcast; ``c`` must be an integer >= 2.
    """
    _check_ranges(q_=q_, k_=k_, c_=c_)
    if not np.all(np.mod(np.asarray(c_, dtype=float), 1) == 0):
        raise ValueError("c (the number of classes) must be an integer")
    c_, q_, k_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (c_, q_, k_)))
    d_ = np.maximum(1.0, np.power(1 - q_, 1 / q_) / k_)
    m_lo = np.clip(np.floor(d_), 1, c_)
    m_hi = np.clip(np.ceil(d_), 1, c_)
    gain = np.maximum(_eq10_gain(m_lo, q_, k_), _eq10_gain(m_hi, q_, k_))
    lq_k = lq_curve(k_, q_)
    lo = c_ * lq_k - gain / q_
    top = np.clip(1 - (c_ - 1) * k_, 1e-300, 1)
    hi = np.where(c_ * k_ >= 1, c_ * lq_k, (c_ - 1) * lq_k + lq_curve(top, q_))
    return lo, hi


def eq10_search(c_: int, q_: float, k_: float, *, n_starts: int = 8, n_grid: int = 401,
                seed: int = 0, local: bool = True) -> dict[str, object]:
    """Search the simplex for the extremes of ``sum_j L_trunc(f, e_j)`` (Eq. 10), without using the theory.

    Two independent searches:

    - *structured*: every point with two distinct coordinate values, ``m``
      coordinates at ``a`` and ``c - m`` at ``b`` (``m = 1..c``, ``b`` on a
      grid of ``n_grid`` values in ``[0, 1/(c - m)]``, ``a`` fixed by the sum);
      this family holds the vertices, the uniform point, the "``m`` equal
      coordinates" points and the "``c - 1`` coordinates at ``k``" points.
    - *local*: Nelder-Mead from ``n_starts`` random starts on
      ``f = z**2 / sum(z**2)`` (which reaches the faces of the simplex), once
      minimising and once maximising, each run restarted once from its end
      point (skipped when ``local=False``).

    Returns the best ``min``/``max`` over both with their ``argmin``/``argmax``,
    and each search's own values (``structured_min``, ``local_min``, ...; NaN
    when skipped).
    """
    from scipy.optimize import minimize

    _check_ranges(q_=q_, k_=k_, c_=c_)
    c_ = int(c_)
    rng = np.random.default_rng(seed)
    m = np.arange(1, c_ + 1, dtype=float)[:, None]
    b_max = np.where(m < c_, 1.0 / np.maximum(c_ - m, 1), 0.0)
    b = b_max * np.linspace(0, 1, n_grid)[None, :]
    a = (1 - (c_ - m) * b) / m
    vals = m * truncated_class_sum(a[..., None], q_, k_) + (c_ - m) * truncated_class_sum(b[..., None], q_, k_)

    def point(i, j):
        mi = int(m[i, 0])
        return np.concatenate([np.full(mi, a[i, j]), np.full(c_ - mi, b[i, j])])

    i_lo = np.unravel_index(np.argmin(vals), vals.shape)
    i_hi = np.unravel_index(np.argmax(vals), vals.shape)
    out: dict[str, object] = {
        "structured_min": float(vals[i_lo]), "structured_max": float(vals[i_hi]),
        "local_min": np.nan, "local_max": np.nan,
        "min": float(vals[i_lo]), "max": float(vals[i_hi]),
        "argmin": point(*i_lo), "argmax": point(*i_hi),
    }
    if not local:
        return out

    def to_simplex(z):
        z2 = z * z
        return z2 / z2.sum()

    for sign, key in ((1.0, "min"), (-1.0, "max")):
        best, best_f = np.inf, None
        for i in range(n_starts):
            # concentrations from near-vertex to near-uniform starts: the sum is flat wherever every
            # f_j <= k, so a start there cannot move
            z = np.sqrt(rng.dirichlet(np.full(c_, (0.05, 0.3, 1.0, 5.0)[i % 4])))
            for _ in range(2):  # a restart from the end point refreshes a collapsed simplex
                res = minimize(lambda z: sign * float(truncated_class_sum(to_simplex(z), q_, k_)), z,
                               method="Nelder-Mead",
                               options={"maxiter": 400 * c_, "maxfev": 400 * c_, "xatol": 1e-10,
                                        "fatol": 1e-13})
                z = res.x
            if res.fun < best:
                best, best_f = res.fun, to_simplex(res.x)
        out[f"local_{key}"] = sign * best
        if sign * best < sign * out[key]:
            out[key], out[f"arg{key}"] = sign * best, best_f
    return out


def eq11_c_min(q_, k_) -> np.ndarray:
    """The number of classes above which Eq. 11 holds: Eq. 11 is ``c > c_min(q, k)``.

    Eq. 11 reads ``H < c**(1-q) - 1`` once multiplied by ``q``, where
    ``H = d**(1-q) - d k**q`` is the left side times ``q``; so it holds exactly
    for ``c > (1 + H)**(1/(1-q))``.  At ``q = 1`` the right side is 0 for every
    ``c`` and the left side ``1 - k`` is positive: ``c_min = inf``.
    """
    _check_ranges(q_=q_, k_=k_)
    q_, k_ = np.broadcast_arrays(np.asarray(q_, dtype=float), np.asarray(k_, dtype=float))
    d_ = np.maximum(1.0, np.power(1 - q_, 1 / q_) / k_)
    H = _eq10_gain(d_, q_, k_)
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(q_ < 1, np.exp(np.log1p(H) / np.where(q_ < 1, 1 - q_, 1.0)), np.inf)


def eq11_exact_gap(c_, q_, k_) -> np.ndarray:
    """Width of Eq. 7's interval minus the *exact* width of the truncated class sum's range.

    Eq. 11 compares the widths of the two bounds; Eq. 7's bounds are the exact
    infimum and supremum of the L_q class sum, Eq. 10's lower bound is not
    always attained.  Positive where truncation really narrows the range.
    """
    lo, hi = truncated_class_sum_extremes(c_, q_, k_)
    c_, q_ = np.asarray(c_, dtype=float), np.asarray(q_, dtype=float)
    return (np.power(c_, 1 - q_) - 1) / q_ - (hi - lo)


def eq11_q_max(k_: float, c_: float, *, exact: bool = False, n_grid: int = 4001,
               q_min: float = 1e-4) -> float:
    """The largest ``q`` below which Eq. 11 holds: the root of ``eq11_gap(c, ., k)`` in ``(0, 1)``.

    The gap is positive as ``q -> 0`` (Eq. 7's width grows like ``(c-1)/q``)
    and negative at ``q = 1`` (Eq. 7's width is 0 there, Eq. 10's is ``1 - k``).
    Scans ``n_grid`` values of ``q`` in ``[q_min, 1]``, checks that the sign
    changes exactly once (raises ``RuntimeError`` otherwise), and refines the
    change with Brent's method.  ``exact=True`` uses :func:`eq11_exact_gap`.
    """
    from scipy.optimize import brentq

    gap = (lambda qq: eq11_exact_gap(c_, qq, k_)) if exact else (lambda qq: eq11_gap(c_, qq, k_))
    qs = np.linspace(q_min, 1.0, n_grid)
    g = np.asarray(gap(qs), dtype=float)
    changes = np.flatnonzero(np.diff(np.sign(g)) != 0)
    if len(changes) != 1 or g[0] <= 0:
        raise RuntimeError(f"Eq. 11 changes sign {len(changes)} times in q for k={k_}, c={c_}")
    i = int(changes[0])
    return float(brentq(lambda qq: float(gap(qq)), qs[i], qs[i + 1], xtol=1e-14, rtol=1e-14))


def acs_toy(centres, threshold: float, w0=None, max_iter: int = 100) -> list[dict[str, object]]:
    """Alternating convex search (Algorithm 1) on a biconvex toy version of Eq. 13.

    Sample ``i`` has the convex loss ``l_i(theta) = (theta - centres[i])**2``
    and the objective is ``sum_i w_i l_i(theta) - threshold * sum_i w_i``
    (Eq. 13 with ``L_q`` replaced by ``l_i`` and ``L_q(k)`` by ``threshold``).
    Both steps are exact: the ``theta`` step is the mean of the kept centres
    (``theta`` is left unchanged if none is kept), the ``w`` step is
    :func:`acs_optimal_weights`.  Starts from ``w0`` (all ones, as in
    Algorithm 1) and stops at a fixed point.  Returns one record per half-step
    with ``step`` (``"theta"`` or ``"w"``), ``theta``, ``w`` and ``objective``.
    """
    a = np.asarray(centres, dtype=float)
    w = np.ones_like(a) if w0 is None else np.asarray(w0, dtype=float).copy()
    theta = float(a.mean())
    history: list[dict[str, object]] = []

    def record(step):
        history.append({"step": step, "theta": theta, "w": w.copy(),
                        "objective": acs_objective((theta - a) ** 2, w, threshold)})

    for _ in range(max_iter):
        if w.sum() > 0:
            theta = float((w * a).sum() / w.sum())
        record("theta")
        w_new = acs_optimal_weights((theta - a) ** 2, threshold)
        changed = not np.array_equal(w_new, w)
        w = w_new
        record("w")
        if not changed:
            break
    return history


def acs_toy_global(centres, threshold: float) -> dict[str, object]:
    """The global minimum of :func:`acs_toy`'s objective, by enumerating every ``w`` in ``{0, 1}^n``.

    For fixed ``w`` the best ``theta`` is the mean of the kept centres; the
    objective is linear in ``w``, so a minimiser over ``[0, 1]^n`` lies at a
    vertex.  Exponential in ``n``: for small toys only (``n <= 16``).
    """
    a = np.asarray(centres, dtype=float)
    if a.size > 16:
        raise ValueError("acs_toy_global enumerates 2**n weight vectors: use n <= 16")
    best: dict[str, object] = {"objective": np.inf}
    for bits in range(2 ** a.size):
        w = np.array([(bits >> i) & 1 for i in range(a.size)], dtype=float)
        theta = float((w * a).sum() / w.sum()) if w.sum() > 0 else float(a.mean())
        val = acs_objective((theta - a) ** 2, w, threshold)
        if val < best["objective"] - 1e-12:
            best = {"theta": theta, "w": w, "objective": val}
    return best


__all__ += ["truncated_class_sum_extremes", "eq10_search", "eq11_c_min", "eq11_exact_gap", "eq11_q_max",
            "acs_toy", "acs_toy_global"]
