"""Summaries of the claims page (``book/claims.ipynb``): the verdict tables of every scale with stored results,
their counts and lists by outcome, and the schedule-sensitivity verdicts in words."""

from __future__ import annotations

import pandas as pd

from .. import claims

__all__ = ["OUTCOMES", "verdict_tables", "status_counts", "ids_with", "sensitivity_words", "side_by_side",
           "changes"]

#: The four outcomes of :mod:`gce.book.claims` under the short names the page glues them by.
OUTCOMES = {"holds": claims.HOLDS, "contradicted": claims.CONTRADICTED, "inconclusive": claims.INCONCLUSIVE,
            "untestable": claims.NOT_TESTABLE}


def verdict_tables(scale: str) -> tuple[list[str], dict, dict]:
    """``(scales, results, tables)``: ``scale`` first, then every other scale with stored results; per scale the
    stored results (:func:`gce.book.claims.load_results`) and the verdict table
    (:func:`gce.book.claims.evaluate_results`).  Reads only; never trains."""
    scales = list(dict.fromkeys([scale, *claims.scales_with_results()]))
    results = {s: claims.load_results(s) for s in scales}
    return scales, results, {s: claims.evaluate_results(results[s], s) for s in scales}


def status_counts(verdicts: pd.DataFrame) -> dict[str, int]:
    """How many claims of ``verdicts`` have each outcome, keyed by the short names of :data:`OUTCOMES`."""
    counts = verdicts["status"].value_counts()
    return {key: int(counts.get(status, 0)) for key, status in OUTCOMES.items()}


def ids_with(verdicts: pd.DataFrame, key: str) -> str:
    """The ids of the claims whose outcome is ``OUTCOMES[key]``, as Markdown code, or ``"none"``."""
    chosen = [f"`{i}`" for i, s in zip(verdicts["id"], verdicts["status"]) if s == OUTCOMES[key]]
    return ", ".join(chosen) if chosen else "none"


def sensitivity_words(verdicts: pd.DataFrame, declared: int = 40) -> dict[str, str]:
    """The schedule-sensitivity verdicts (:func:`gce.book.claims.schedule_sensitivity`) in words: ``declared`` (the
    verdict at the declared first drop), ``others`` (at every other drop) and ``robust`` (whether every drop
    that can be tested gives the same verdict)."""
    by_drop = dict(zip(verdicts["first_drop"], verdicts["status"]))
    tested = {s for s in by_drop.values() if s != claims.NOT_TESTABLE}
    return {"declared": f"**{by_drop.get(declared, 'missing')}**",
            "others": ", ".join(f"**{s}** after {d} epochs" for d, s in by_drop.items() if d != declared),
            "robust": "here it is" if len(tested) == 1 else "here it is not"}


def side_by_side(tables: dict) -> pd.DataFrame:
    """The verdict tables of several scales (``{scale: evaluate_results table}``) as one table: a row per claim id
    (in the registry's order), a column per scale, the outcome in each cell."""
    if not tables:
        raise ValueError("no verdict tables to put side by side")
    out = pd.DataFrame({s: t.set_index("id")["status"] for s, t in tables.items()})
    out.index.name = "claim"
    return out.reindex([c.id for c in claims.CLAIMS if c.id in out.index])


def changes(table: pd.DataFrame, a: str, b: str) -> dict[str, str]:
    """How the outcomes of :func:`side_by_side` differ between scales ``a`` and ``b``, for the claims page's
    prose: ``same`` (how many claims have the same outcome at both) and ``moved`` (the others as Markdown,
    ``"`id`: a-outcome -> b-outcome"``, or ``"none"``)."""
    for s in (a, b):
        if s not in table.columns:
            raise ValueError(f"no verdicts at scale {s!r}; the table has {', '.join(table.columns)}")
    moved = table[table[a] != table[b]]
    text = "; ".join(f"`{i}`: {r[a]} → {r[b]}" for i, r in moved.iterrows()) or "none"
    return {"same": str(int((table[a] == table[b]).sum())), "moved": text}
