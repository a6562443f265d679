"""Summaries of the chapter "CCE vs MAE in practice" (``book/cce_vs_mae.ipynb``: Sec. 3.2, Fig. 1(a, b)).

The chapter's descriptive numbers (test curves, epochs to a test accuracy) come from :mod:`gce.book.analysis`;
every sentence that reads like a verdict is chosen here from the outcome of a claim of :mod:`gce.book.claims`
(:func:`reading`), so that the chapter never decides a claim by a rule of its own.  :func:`same_trajectory`
compares the parameter trajectories of the factor-2 check, and :func:`format_beside` prints Fig. 1(b)'s numbers
beside the paper's.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ... import data
from .. import analysis, claims

__all__ = ["split_counts", "reading"]


def split_counts(dataset: str, val_fraction: float, batch_size: int = 128) -> dict:
    """How a run of Fig. 1 splits ``dataset`` (Sec. 4: validation held out of the training set): ``classes``,
    ``train``, ``val`` and ``test`` sizes as :func:`gce.data.noisy_splits` makes them for ``val_fraction``,
    and ``steps`` (optimiser steps per epoch at ``batch_size``).  A batch size below 1 raises ValueError."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    ds = data.load(dataset)
    splits = data.noisy_splits(ds, ("uniform", 0.0), val_fraction=val_fraction)
    return {"classes": ds.num_classes, "train": len(splits.train), "val": len(splits.val),
            "test": len(splits.test), "steps": math.ceil(len(splits.train) / batch_size)}


_READINGS = {
    "mae_slower_clean": {
        claims.HOLDS: "By the registry's rule, which counts epochs on the validation curves, MAE is "
                      "*slower* (`mae_slower_clean` **holds**).",
        claims.CONTRADICTED: "By the registry's rule, which counts epochs on the validation curves, MAE is "
                             "*faster* here (`mae_slower_clean` is **contradicted**).",
        claims.INCONCLUSIVE: "By the registry's rule, which counts epochs on the validation curves, the "
                             "seeds cannot tell whether MAE is slower (`mae_slower_clean` is "
                             "**inconclusive**).",
    },
    "mae_lower_clean": {
        claims.HOLDS: "MAE also ends lower: at the epoch of best validation accuracy CCE beats it by at least "
                      "the minimum effect (`mae_lower_clean` **holds**).",
        claims.CONTRADICTED: "MAE ends *higher*: at the epoch of best validation accuracy it beats CCE by at "
                             "least the minimum effect (`mae_lower_clean` is **contradicted**).",
        claims.INCONCLUSIVE: "Whether MAE also ends lower, the seeds cannot tell: at the epoch of best "
                             "validation accuracy the two are closer than the minimum effect can confirm "
                             "(`mae_lower_clean` is **inconclusive**).",
    },
    "mae_fails_many_classes": {
        claims.HOLDS: "So with 100 classes MAE falls further behind CCE than with 10, as Sec. 3.2 says "
                      "(`mae_fails_many_classes` **holds**).",
        claims.CONTRADICTED: "So at this scale, with 100 classes MAE does *not* fall further behind CCE than "
                             "with 10 (`mae_fails_many_classes` is **contradicted**).",
        claims.INCONCLUSIVE: "So at this scale the seeds do not show MAE falling further behind CCE with 100 "
                             "classes than with 10 (`mae_fails_many_classes` is **inconclusive**): the "
                             "many-class start is harder for MAE, as the gradient table predicts, but "
                             "within the budget the run recovers from it.",
    },
}


def reading(claim_id: str, status: str) -> str:
    """The chapter's sentence for claim ``claim_id`` (``mae_slower_clean``, ``mae_lower_clean`` or
    ``mae_fails_many_classes``) with outcome ``status``; *not testable* reads "the stored runs cannot test
    it".  An unknown claim or status raises ValueError."""
    if claim_id not in _READINGS:
        raise ValueError(f"no reading for claim_id={claim_id!r}; known: {', '.join(_READINGS)}")
    if status not in claims.STATUSES:
        raise ValueError(f"unknown status={status!r}; known: {', '.join(claims.STATUSES)}")
    return _READINGS[claim_id].get(status, f"The stored runs cannot test `{claim_id}`.")


def verdict_effects(verdict: claims.Verdict) -> pd.Series:
    """A verdict's effects by comparison label (:attr:`gce.book.claims.Verdict.numbers`), for gluing into prose;
    a verdict without numbers (not testable) gives an empty Series."""
    if not isinstance(verdict, claims.Verdict):
        raise ValueError(f"verdict must be a claims.Verdict, got {type(verdict).__name__}")
    if not len(verdict.numbers):
        return pd.Series(dtype=float)
    return verdict.numbers.set_index("comparison")["effect"].astype(float)


def accuracy_note(statuses: "list[str]") -> str:
    """How the chapter closes its accuracy verdicts (``mae_lower_clean``, ``mae_fails_many_classes``):
    ``statuses`` are their outcomes.  All inconclusive: gaps this small cannot decide them; otherwise the
    verdicts' reasons say which comparison decided.  An unknown status raises ValueError."""
    bad = [s for s in statuses if s not in claims.STATUSES]
    if bad:
        raise ValueError(f"unknown status={bad[0]!r}; known: {', '.join(claims.STATUSES)}")
    if statuses and all(s == claims.INCONCLUSIVE for s in statuses):
        return "so gaps this small cannot decide the two accuracy claims either way"
    return "and the reasons above say which comparison decided each accuracy claim"


__all__ += ["verdict_effects", "accuracy_note"]


def same_trajectory(a, b, tol: float) -> bool:
    """Whether two parameter trajectories of :func:`gce.book.analysis.short_trajectory` are the same up to
    ``tol``: their largest absolute difference is below it.  The chapter's factor-2 check (Eq. 4: MAE is
    twice the unhinged loss) compares MAE and the unhinged loss this way, under SGD and under Adam.

    Arrays of different shapes, or a negative ``tol``, raise ``ValueError``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"trajectories of different shapes: {a.shape} and {b.shape}")
    if not tol >= 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    return bool(np.abs(a - b).max() < tol)


def _number(value: float, digits: int) -> str:
    if value != value:
        return "-"
    return f"{value:.0f}" if value == int(value) else f"{value:.{digits}f}"


def format_beside(beside: pd.DataFrame) -> pd.DataFrame:
    """:func:`gce.book.analysis.fig1b_beside_paper` as text for display: ``best_test_acc`` rounded to two decimals
    (:func:`gce.book.analysis.round_pct`), ``epochs`` to one, whole numbers without decimals and a missing number
    as ``-``; the other columns as they are (the chapter's "Ours beside the paper's", Fig. 1(b))."""
    missing = {"best_test_acc", "epochs"} - set(beside.columns)
    if missing:
        raise ValueError(f"format_beside needs the columns {sorted(missing)} of fig1b_beside_paper")
    return beside.assign(best_test_acc=[_number(analysis.round_pct(v), 2) for v in beside["best_test_acc"]],
                         epochs=[_number(float(v), 1) for v in beside["epochs"]])


__all__ += ["same_trajectory", "format_beside"]
