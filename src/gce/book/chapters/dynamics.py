"""Summaries of the chapter "Training dynamics" (``book/dynamics.ipynb``: Sec. 4.1, Fig. 1(c) and Fig. 2).

The chapter describes each run by the model the book reports: the epoch of best *noisy-validation*
accuracy (stored as ``best_epoch``, ties broken by the lower validation loss when the run was trained), so
that its tables use the same "drop" as the claims of Sec. 4.1 (:mod:`gce.book.claims`): the test accuracy at
that epoch minus the last epoch's.  Verdicts themselves come from :func:`gce.book.claims.check`, never from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import analysis, claims

__all__ = ["SELECTION_COLUMNS", "selection_table", "format_selection", "trend", "status_summary"]

#: Short column names of :func:`format_selection` (they fit the book's column).
SELECTION_COLUMNS = {"best_epoch": "best-val epoch", "selected": "selected %", "peak": "peak %",
                     "last": "last %", "drop": "drop", "drop_min": "drop min", "drop_max": "drop max"}


def selection_table(runs: pd.DataFrame, history: pd.DataFrame, *, by: Sequence[str] = ("eta",),
                    per_run: bool = False) -> pd.DataFrame:
    """What each run of Fig. 1(c) or Fig. 2 loses after the epoch the book reports (Sec. 4.1).

    Per run: ``best_epoch`` (1-based epoch of best noisy-validation accuracy, from the stored runs),
    ``selected`` (test accuracy there, ``test_acc_best_val``), ``peak`` (the highest test accuracy of any
    epoch, shown for description only: choosing it reads the test set), ``last`` (the last epoch's),
    ``drop = selected - last`` and ``val_loss_min_epoch`` (1-based epoch of the lowest noisy validation
    loss).  Unless ``per_run``: one row per group of ``by`` and Fig. 2's ``q`` (0 for CCE,
    :func:`gce.book.analysis.fig2_q`) with ``seeds``, the means over seeds, and ``drop_min``/``drop_max``.
    Accuracies stay fractions.  Runs without a history raise ValueError naming the first such run.
    """
    by = list(by)
    need = {"run_id", "best_epoch", "test_acc_best_val", "test_acc_last", "method", "q", *by}
    if need - set(runs.columns):
        raise ValueError(f"runs has no column(s) {sorted(need - set(runs.columns))}: pass stored runs")
    if not len(runs):
        raise ValueError("no runs to summarise")
    h = history[history["run_id"].isin(runs["run_id"])].sort_values(["run_id", "epoch"])
    curves = {rid: g for rid, g in h.groupby("run_id", sort=False)}
    missing = [r for r in runs["run_id"] if r not in curves]
    if missing:
        raise ValueError(f"run {missing[0]!r} has no stored history")
    per = runs[["run_id", *by]].assign(q=analysis.fig2_q(runs).to_numpy())
    per["best_epoch"] = runs["best_epoch"].astype(int).to_numpy() + 1
    per["selected"] = runs["test_acc_best_val"].astype(float).to_numpy()
    per["peak"] = [float(curves[r]["test_acc"].max()) for r in runs["run_id"]]
    per["last"] = runs["test_acc_last"].astype(float).to_numpy()
    per["drop"] = per["selected"] - per["last"]
    per["val_loss_min_epoch"] = [int(curves[r]["epoch"].to_numpy()[np.nanargmin(curves[r]["val_loss"])])
                                 for r in runs["run_id"]]
    if per_run:
        return per.reset_index(drop=True)
    g = per.groupby([*by, "q"], sort=True)
    out = g[["best_epoch", "selected", "peak", "last", "drop", "val_loss_min_epoch"]].mean()
    out.insert(0, "seeds", g.size())
    out["drop_min"], out["drop_max"] = g["drop"].min(), g["drop"].max()
    return out.reset_index()


def format_selection(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """:func:`selection_table` for reading: indexed by ``(eta, q)``, accuracies in % and drops in points
    (:func:`gce.book.analysis.round_pct`), epochs to one decimal, under :data:`SELECTION_COLUMNS`' names plus
    ``val-loss min epoch``; ``seeds`` is left out (the caption says it)."""
    missing = [c for c in ("eta", "q", *SELECTION_COLUMNS) if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column(s) {missing}: pass the output of selection_table")
    cols = [*SELECTION_COLUMNS, "val_loss_min_epoch"]
    out = table.set_index(["eta", "q"])[[c for c in cols if c in table.columns]].copy()
    for col in out.columns:
        if col.endswith("epoch"):
            out[col] = out[col].astype(float).round(1)
        else:
            out[col] = [analysis.round_pct(100 * float(v), digits) for v in out[col]]
    return out.rename(columns={**SELECTION_COLUMNS, "val_loss_min_epoch": "val-loss min epoch"})


def trend(values: Sequence[float], what: str = "*q*") -> str:
    """Words for how a sequence of means moves as ``what`` grows (the chapter's prose); fewer than two
    values raise ValueError."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        raise ValueError(f"a trend needs at least two values, got {len(v)}")
    d = np.diff(v)
    if np.all(d > 0):
        return f"rises with every step of {what}"
    if np.all(d < 0):
        return f"falls with every step of {what}"
    if np.all(d <= 0):
        return f"never rises with {what}, though some neighbouring values tie"
    if np.all(d >= 0):
        return f"never falls with {what}, though some neighbouring values tie"
    return f"is not monotone in {what}"


def status_summary(verdicts: pd.DataFrame) -> str:
    """The outcomes of a verdict table (:func:`gce.book.claims.evaluate_results`) in words, in the order of
    :data:`gce.book.claims.STATUSES`, each with the ids that have it, e.g. ``"2 hold (`a`, `b`); 1 is
    contradicted (`c`)"``.  An unknown status raises ValueError."""
    if "status" not in verdicts or "id" not in verdicts:
        raise ValueError("verdicts needs the columns id and status (the table of claims.evaluate_results)")
    unknown = sorted(set(verdicts["status"]) - set(claims.STATUSES))
    if unknown:
        raise ValueError(f"unknown status {unknown[0]!r}; known: {', '.join(claims.STATUSES)}")
    verbs = {claims.HOLDS: ("holds", "hold"), claims.CONTRADICTED: ("is contradicted", "are contradicted"),
             claims.INCONCLUSIVE: ("is inconclusive", "are inconclusive"),
             claims.NOT_TESTABLE: ("is not testable", "are not testable")}
    parts = []
    for status in claims.STATUSES:
        ids = list(verdicts.loc[verdicts["status"] == status, "id"])
        if ids:
            verb = verbs[status][len(ids) > 1]
            parts.append(f"{len(ids)} {verb} (" + ", ".join(f"`{i}`" for i in ids) + ")")
    return "; ".join(parts)


#: The chapter's reading of a verdict, per claim id and outcome (:func:`reading`).
_READINGS = {
    "larger_q_higher_accuracy": {
        claims.HOLDS: "so under Adam, q = 0.8 beats CCE at every noisy rate of the grid",
        claims.CONTRADICTED: "so under Adam, CCE beats q = 0.8 at some noisy rate of the grid",
        claims.INCONCLUSIVE: "not every noisy rate is decided in q = 0.8's favour after the Holm "
                             "correction, and none against it, so this page cannot say that L_q beats CCE "
                             "under Adam",
    },
    "threshold_exists": {
        claims.HOLDS: "the tests place every q from a threshold on below the tolerance at each noise rate",
        claims.CONTRADICTED: "even the largest q of the grid overfits by the test at some noise rate, so no "
                             "threshold exists in the grid",
        claims.INCONCLUSIVE: "the seeds cannot place the largest q of every noise rate below the tolerance, "
                             "so the registry names no threshold; more seeds could decide it either way",
    },
    "q07_no_overfitting": {
        claims.HOLDS: "the drop after the selected epoch is shown to stay within the tolerance",
        claims.CONTRADICTED: "the test accuracy falls by more than the tolerance after the selected epoch",
        claims.INCONCLUSIVE: "the seeds cannot tell whether the drop after the selected epoch is within "
                             "the tolerance",
    },
}


def reading(claim_id: str, status: str) -> str:
    """The chapter's sentence for claim ``claim_id`` with outcome ``status`` (``larger_q_higher_accuracy``,
    ``threshold_exists`` or ``q07_no_overfitting``); *not testable* reads "the runs cannot test it here".
    An unknown claim or status raises ValueError."""
    if claim_id not in _READINGS:
        raise ValueError(f"no reading for claim_id={claim_id!r}; known: {', '.join(_READINGS)}")
    if status not in claims.STATUSES:
        raise ValueError(f"unknown status={status!r}; known: {', '.join(claims.STATUSES)}")
    return _READINGS[claim_id].get(status, "the runs cannot test it here")


__all__ += ["reading"]
