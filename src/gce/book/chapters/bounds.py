"""Helpers of the chapter "Bounds and noise tolerance" (book/bounds.ipynb): how tight Theorem 1's ``A`` is.

Over a finite input space the gap ``R(f*) - R(f_hat)`` of Theorem 1 (Eq. 8) is a
weighted mean of single-input gaps, so its worst case over all problems is the
worst single-input gap (:func:`gce.book.theory.theorem1_worst_gap`).
:func:`gap_over_A` divides it by ``A``; :func:`closest_to_bound` scans the noise
rate for the problem that comes closest to the bound.
"""

from __future__ import annotations

import numpy as np

from .. import theory as th

__all__ = ["gap_over_A", "closest_to_bound"]


def gap_over_A(clean_dist, eta_: float, q_grid) -> np.ndarray:
    """The worst single-input gap divided by Theorem 1's ``A``, for each ``q`` of ``q_grid``.

    ``clean_dist`` holds the clean label distributions to search (rows; the
    number of classes ``c`` is its number of columns), typically
    :func:`gce.book.theory.simplex_grid`; ``eta_`` is the uniform noise rate, below
    ``(c - 1) / c``.  Returns ``min gap / A`` per ``q`` (both are negative):
    1 where some problem attains the bound, near 0 where the bound is loose.
    All ``q`` must be below 1, where ``A`` is 0.
    """
    clean_dist = np.asarray(clean_dist, dtype=float)
    q_grid = np.atleast_1d(np.asarray(q_grid, dtype=float))
    if np.any(q_grid >= 1):
        raise ValueError(f"q_grid must stay below 1 (A is 0 at q = 1), got a largest q of {q_grid.max()}")
    return th.theorem1_worst_gap(clean_dist, eta_, q_grid) / th.theorem1_A(eta_, q_grid, clean_dist.shape[1])


def closest_to_bound(clean_dist, eta_grid, q_grid) -> np.ndarray:
    """For each noise rate of ``eta_grid``, the largest :func:`gap_over_A` over ``q_grid``.

    Returns one number per ``eta``: how close the worst problem of
    ``clean_dist`` comes to Theorem 1's bound at that noise rate (1 would
    attain it).  The chapter reports its maximum over ``eta`` and where it is.
    """
    return np.array([gap_over_A(clean_dist, eta_, q_grid).max() for eta_ in np.atleast_1d(eta_grid)])
