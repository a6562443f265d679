"""The statistics behind the claims' verdicts: paired differences, one-sided t tests, Holm's correction.

A seed fixes a run's split, noisy labels and initialisation, and every method
of a grid is run on the same seeds, so two methods are compared on the
per-seed differences of their numbers (:func:`paired`).  The paper reports
only means and standard deviations over 5 runs; the same rules then compare
summaries with Welch's statistic (:func:`from_summary`), which lets a rule be
checked on the paper's own tables (:mod:`gce.book.claims`' calibration).

Every comparison asks one directed question about an *effect* (a difference
of means, or a mean against a bound): is it above a threshold?  Its one-sided
p-value comes from Student's t with ``n - 1`` degrees of freedom (``n`` the
smaller group; conservative for Welch).  Within one claim, the p-values of all
its comparisons are adjusted together by Holm's step-down method
(:func:`holm`), so a claim that needs many comparisons is not more likely to
hold by chance.  A comparison is *decided* when its adjusted p-value is below
:data:`ALPHA`; it is *undecided* otherwise (too few seeds, or an effect too
close to the threshold to tell).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy

__all__ = ["ALPHA", "MIN_EFFECT", "Effect", "paired", "one_sample", "from_summary", "pooled", "p_above",
           "holm"]

#: Family-wise error rate of one claim's comparisons (Holm-adjusted, one-sided).
ALPHA = 0.05
#: The smallest difference in accuracy, in points, that a claim counts as a win or a loss.  Checked on the
#: paper's own tables (tests/test_claims.py): the paper's claims hold there at this threshold.
MIN_EFFECT = 0.5


@dataclass(frozen=True)
class Effect:
    """An estimated effect: its ``mean``, standard error ``se`` and degrees of freedom ``df`` (0: unknown)."""

    mean: float
    se: float
    df: int

    def __post_init__(self):
        if not (math.isfinite(self.mean) and math.isfinite(self.se) and self.se >= 0):
            raise ValueError(f"an effect needs a finite mean and a finite se >= 0, got mean={self.mean}, "
                             f"se={self.se}")


def _finite(values, what: str) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or not len(v) or not np.all(np.isfinite(v)):
        raise ValueError(f"{what} must be a non-empty 1-d sequence of finite numbers, got {values!r}")
    return v


def one_sample(values: Sequence[float]) -> Effect:
    """The mean of ``values`` (e.g. per-seed drops) with its standard error ``std(ddof=1) / sqrt(n)``."""
    v = _finite(values, "values")
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return Effect(float(v.mean()), se, len(v) - 1)


def paired(a: Sequence[float], b: Sequence[float]) -> Effect:
    """``mean(a - b)`` over seeds: ``a[i]`` and ``b[i]`` come from the same seed (the same noisy labels)."""
    a, b = _finite(a, "a"), _finite(b, "b")
    if len(a) != len(b):
        raise ValueError(f"paired values need one value per seed on both sides, got {len(a)} and {len(b)}")
    return one_sample(a - b)


def from_summary(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int) -> Effect:
    """``mean_a - mean_b`` from two reported summaries (mean, standard deviation, runs), unpaired (Welch)."""
    for name, n in (("n_a", n_a), ("n_b", n_b)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be a positive number of runs, got {n!r}")
    se = math.sqrt(std_a ** 2 / n_a + std_b ** 2 / n_b)
    return Effect(float(mean_a - mean_b), se, int(min(n_a, n_b)) - 1)


def pooled(effects: Sequence[Effect]) -> Effect:
    """The average of independent effects (e.g. one per noise rate of a block), with its standard error."""
    if not effects:
        raise ValueError("pooled needs at least one effect")
    k = len(effects)
    return Effect(sum(e.mean for e in effects) / k, math.sqrt(sum(e.se ** 2 for e in effects)) / k,
                  min(e.df for e in effects))


def p_above(effect: Effect, threshold: float = 0.0) -> float:
    """One-sided p-value of "the effect exceeds ``threshold``" (null: it does not).

    With no spread (``se == 0``) the answer is exact: 0 above the threshold,
    1 otherwise; with unknown spread (``df == 0``, one seed) it is NaN: no
    decision can be made.
    """
    if effect.df < 1:
        return float("nan")
    if effect.se == 0:
        return 0.0 if effect.mean > threshold else 1.0
    return float(_scipy.t.sf((effect.mean - threshold) / effect.se, effect.df))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted among the tests)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    running = 0.0
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()
