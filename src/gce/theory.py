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
    return ((1 - probs ** q_) / q_).sum(axis=-1)


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
    lq_k = (1 - k_ ** q_) / q_
    vals = np.where(probs <= k_, lq_k, (1 - probs ** q_) / q_)
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
    log_p = np.log(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -np.expm1(q_ * log_p) / q_
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
