"""The paper's experimental claims as data, each with a verdict computed from the stored results.

Every claim of Sec. 3.2, 4.1 and 4.3 that one of the book's experiments can
test is a :class:`Claim`: a short ``id``, the paper's ``section``, the claim in
the book's own words, the ``experiments`` it needs and a ``check``, a function
of the stored results that returns a :class:`Verdict`.  The rules were fixed
before the verdicts of the declared schedule were computed, and they are the
same for every method.

Four outcomes (:data:`STATUSES`):

- *holds*: every comparison the claim makes is decided in its favour;
- *contradicted*: some comparison is decided against it;
- *inconclusive*: neither (too few seeds, or effects too close to call);
- *not testable* (with its reason): a gate below failed, so the runs cannot
  speak to the claim at this scale.

How a comparison is decided (:mod:`gce.book.stats`):

- Two methods are compared on per-seed differences (a seed gives every method
  the same split and noisy labels): "A beats B" needs ``mean(A - B)`` to be
  positive by a one-sided t test *and* at least :data:`gce.book.stats.MIN_EFFECT`
  (0.5 points); "B beats A" the same the other way round, which contradicts
  the claim.  A non-inferiority comparison ("A is not worse than B") needs
  ``mean(A - B) > -MIN_EFFECT`` by the same test.
- A Table 1 comparison pools a block's noise rates: the average of the
  per-rate differences, with its standard error.
- All p-values of one claim are adjusted together by Holm's method
  (family-wise 5 %).
- No claim reads the test set to choose an epoch: a run's model is the one of
  its best *noisy-validation* accuracy (``test_acc_best_val``), or its last
  epoch; "drop" is that selected accuracy minus the last epoch's.

Gates (each makes a comparison *not testable*, never a failure):

- *fit*: in Table 1 a comparison counts only where every method in it had
  fitted before the first learning-rate drop (:func:`gce.schedule.has_fitted`
  on its seed-mean noisy-validation accuracy);
- *truncation engaged*: a truncated-``L_q`` claim counts only where, in at
  least half of the truncated runs, the reported model was trained after a
  pruning step that kept some but not all samples;
- *noise harms*: an open-set claim counts only where the outside images harm
  CCE: its mean drop from the selected to the last epoch is at least
  :data:`HARM_MARGIN` points.

:func:`evaluate_paper` feeds the rules of Table 1 and Table 2 with the paper's
own numbers (means, standard deviations, 5 runs, unpaired); a rule that
contradicted the paper's own table would be wrong, and ``tests/test_claims.py``
checks that none does.

Results are passed as a mapping ``{experiment name: (runs, history)}`` (the
tables of :class:`gce.book.store.ResultStore`); :func:`evaluate` reads them from
the results folder without ever training (:func:`stored_results`).
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import analysis, experiments, reader
from .. import schedule as _schedule
from . import stats
from ..classes import class_names
from .stats import ALPHA, MIN_EFFECT, Effect

__all__ = ["HOLDS", "CONTRADICTED", "INCONCLUSIVE", "NOT_TESTABLE", "STATUSES", "TOL", "HARM_MARGIN", "SOFTMAX_EFFECT",
           "EPOCH_EFFECT", "Verdict", "Claim", "CLAIMS", "get", "check", "stored_results", "load_results",
           "scales_with_results", "evaluate", "evaluate_results", "evaluate_paper", "Comparison",
           "TEXT_WIDTH", "numbers_text", "format_check", "format_verdicts", "schedule_sensitivity"]

HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE = "holds", "contradicted", "inconclusive", "not testable"
STATUSES = (HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE)
#: The tolerance of "no overfitting" in points.  A run does not overfit when its drop from the selected epoch's
#: test accuracy to the last epoch's lies below it.
TOL = 1.0
#: The harm an open-set claim needs before it can be tested, in points of CCE's mean drop from its
#: best-validation epoch to the last.
HARM_MARGIN = 2.0
#: The smallest difference in mean softmax (Fig. 1(c)) and in epochs that a claim counts.
SOFTMAX_EFFECT = 0.02
EPOCH_EFFECT = 1.0

Results = Mapping[str, "tuple[pd.DataFrame, pd.DataFrame]"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim's check: ``status`` (one of :data:`STATUSES`), the ``numbers`` that decide
    it (one row per comparison: its effect, standard error, threshold and Holm-adjusted p-values; empty when
    not testable) and a one-line ``reason``."""

    status: str
    reason: str
    numbers: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


@dataclass(frozen=True)
class Claim:
    """One experimental claim of the paper (see the module docstring)."""

    id: str
    section: str
    text: str
    experiments: tuple[str, ...]
    check: Callable[[Results], Verdict]

    @property
    def rule(self) -> str:
        """The decision rule: the first paragraph of the check's docstring, on one line."""
        doc = (self.check.__doc__ or "").strip().split("\n\n")[0]
        doc = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`]*)`", r"\1", doc).replace("``", "")
        return " ".join(doc.split())


@dataclass(frozen=True)
class Comparison:
    """One directed question of a claim: is ``effect`` above ``threshold``?  ``kind`` is ``"beats"`` (the
    claim needs the effect positive and at least ``threshold``; an effect negative and at most
    ``-threshold`` contradicts it), ``"not_worse"`` (the claim needs the effect above ``-threshold``; a
    "beats" the other way contradicts it), ``"above"`` (the claim needs the effect above ``threshold``; an
    effect below it contradicts it) or ``"below"`` (the reverse).  Each by a one-sided test."""

    label: str
    effect: Effect
    threshold: float
    kind: str = "beats"

    def p_values(self) -> tuple[float, float]:
        """``(p for the claim, p against it)``, one-sided, before Holm's adjustment."""
        e, t = self.effect, self.threshold
        neg = Effect(-e.mean, e.se, e.df)
        if self.kind == "beats":
            return _beats_p(e, t), _beats_p(neg, t)
        if self.kind == "not_worse":
            return stats.p_above(e, -t), _beats_p(neg, t)
        if self.kind == "below":
            return stats.p_above(neg, -t), stats.p_above(e, t)
        if self.kind == "above":
            return stats.p_above(e, t), stats.p_above(neg, -t)
        raise ValueError(f"unknown comparison kind {self.kind!r}")


def _beats_p(e: Effect, min_effect: float) -> float:
    """p of "the effect is positive", or 1 when its estimate is below the minimum effect."""
    p = stats.p_above(e, 0.0)
    return p if e.mean >= min_effect or p != p else 1.0


def _untestable(reason: str) -> Verdict:
    return Verdict(NOT_TESTABLE, f"not testable: {reason}")


def decide(comparisons: Sequence[Comparison], reason: str, notes: Sequence[str] = ()) -> Verdict:
    """The claim's outcome from its comparisons, Holm-adjusted together (see the module docstring)."""
    if not comparisons:
        raise ValueError("a verdict needs at least one comparison")
    p_for, p_against = zip(*(c.p_values() for c in comparisons))
    adj_for, adj_against = stats.holm(p_for), stats.holm(p_against)
    rows = [{"comparison": c.label, "effect": c.effect.mean, "se": c.effect.se, "n": c.effect.df + 1,
             "threshold": c.threshold, "p_for": pf, "p_against": pa}
            for c, pf, pa in zip(comparisons, adj_for, adj_against)]
    numbers = pd.DataFrame(rows)
    if any(p < ALPHA for p in adj_against if p == p):
        status = CONTRADICTED
    elif all(p == p and p < ALPHA for p in adj_for):
        status = HOLDS
    else:
        status = INCONCLUSIVE
    text = reason + ("" if not notes else "; " + "; ".join(notes))
    return Verdict(status, text, numbers)


def _fmt(e: Effect, digits: int = 2) -> str:
    return f"{e.mean:+.{digits}f} (s.e. {e.se:.{digits}f})"


def _stands_for(dataset: str, paper_dataset: str) -> bool:
    return dataset == paper_dataset or paper_dataset in analysis.paper_datasets(dataset)


def _frames(results: Results, name: str):
    got = results.get(name)
    if got is None:
        return None
    runs, history = got
    return (runs, history) if len(runs) else None


# --------------------------------------------------------------------------- per-run numbers


def _per_run(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the config columns, ``selected`` and ``last`` test accuracy (points), ``drop``
    (selected minus last), the selected epoch ``best_epoch``, and ``kept`` at the selected and last epochs."""
    h = history[history["run_id"].isin(runs["run_id"])].sort_values(["run_id", "epoch"])
    rows = []
    for rid, g in h.groupby("run_id", sort=False):
        rows.append({"run_id": rid, "kept_best": g["kept"].to_numpy(dtype=float),
                     "val_acc": g["val_acc"].to_numpy(dtype=float)})
    extra = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["run_id", "kept_best", "val_acc"])
    per = runs.merge(extra, on="run_id", how="left")
    per["selected"] = 100 * per["test_acc_best_val"].astype(float)
    per["last"] = 100 * per["test_acc_last"].astype(float)
    per["drop"] = per["selected"] - per["last"]
    per["q_fig2"] = analysis.fig2_q(per).to_numpy()
    be = per["best_epoch"].astype(int)
    per["kept_at_best"] = [k[b] if isinstance(k, np.ndarray) and len(k) > b else np.nan
                           for k, b in zip(per["kept_best"], be)]
    per["kept_at_last"] = [k[-1] if isinstance(k, np.ndarray) and len(k) else np.nan for k in per["kept_best"]]
    return per.drop(columns=["kept_best"])


def _by_seed(per: pd.DataFrame, column: str) -> pd.Series:
    return per.set_index("seed")[column].sort_index()


def _paired(a: pd.DataFrame, b: pd.DataFrame, column: str) -> Effect | None:
    """``mean(a - b)`` of ``column`` over the seeds both have (None if none)."""
    sa, sb = _by_seed(a, column), _by_seed(b, column)
    seeds = sa.index.intersection(sb.index)
    if not len(seeds):
        return None
    return stats.paired(sa.loc[seeds].to_numpy(), sb.loc[seeds].to_numpy())


def _epochs_to(per: pd.DataFrame, threshold: float) -> pd.Series:
    """Per run: the first epoch (1-based) at which the *validation* accuracy reaches ``threshold``; runs that
    never reach it count as their epochs + 1."""
    out = []
    for v in per["val_acc"]:
        hit = np.flatnonzero(v >= threshold)
        out.append(float(hit[0] + 1) if len(hit) else float(len(v) + 1))
    return pd.Series(out, index=per.index)


# --------------------------------------------------------------------------- Sec. 3.2 (Fig. 1a, b)


def _clean(results: Results, paper_dataset: str) -> pd.DataFrame | None:
    got = _frames(results, "fig1")
    if got is None:
        return None
    runs, history = got
    sel = runs[(runs["noise"] == "none") & runs["dataset"].map(lambda d: _stands_for(d, paper_dataset))]
    if not {"cce", "mae"} <= set(sel["method"]):
        return None
    return _per_run(sel, history)


def check_mae_slower_clean(results: Results) -> Verdict:
    """Holds if, on clean labels on the 10-class block, MAE needs more epochs than CCE (paired by seed, at
    least EPOCH_EFFECT more) to reach 90 % of CCE's mean best validation accuracy; contradicted if it needs
    fewer by as much.

    A run that never reaches the threshold counts as its epochs + 1.  Validation accuracy, not test
    accuracy, so that no number is chosen on the test set.
    """
    per = _clean(results, "cifar10")
    if per is None:
        return _untestable("no clean-label CCE and MAE runs of fig1 on a 10-class dataset are stored")
    threshold = 0.9 * np.mean([v.max() for v in per.loc[per["method"] == "cce", "val_acc"]])
    per = per.assign(epochs_to=_epochs_to(per, threshold))
    e = _paired(per[per["method"] == "mae"], per[per["method"] == "cce"], "epochs_to")
    c = Comparison("MAE - CCE, epochs to the threshold", e, EPOCH_EFFECT)
    m = per.groupby("method")["epochs_to"].mean()
    return decide([c], f"epochs to {100 * threshold:.1f}% validation accuracy: MAE {m['mae']:.1f}, CCE "
                        f"{m['cce']:.1f} (paired difference {_fmt(e, 1)}, {e.df + 1} seeds)")


def check_mae_lower_clean(results: Results) -> Verdict:
    """Holds if, on clean labels on the 10-class block, CCE beats MAE in test accuracy at the epoch of best
    validation accuracy (paired by seed, at least MIN_EFFECT points); contradicted if MAE beats CCE."""
    per = _clean(results, "cifar10")
    if per is None:
        return _untestable("no clean-label CCE and MAE runs of fig1 on a 10-class dataset are stored")
    e = _paired(per[per["method"] == "cce"], per[per["method"] == "mae"], "selected")
    m = per.groupby("method")["selected"].mean()
    return decide([Comparison("CCE - MAE, selected test accuracy", e, MIN_EFFECT)],
                   f"test accuracy at the best-validation epoch: CCE {m['cce']:.2f}%, MAE {m['mae']:.2f}% "
                   f"(paired difference {_fmt(e)} points, {e.df + 1} seeds)")


def check_mae_fails_many_classes(results: Results) -> Verdict:
    """Holds if, on clean labels, CCE beats MAE on the 100-class block and the gap (CCE - MAE, selected test
    accuracy, paired by seed) is larger there than on the 10-class block, each by at least MIN_EFFECT
    points; contradicted if either goes the other way."""
    many, few = _clean(results, "cifar100"), _clean(results, "cifar10")
    if many is None:
        return _untestable("no clean-label CCE and MAE runs of fig1 on a 100-class dataset are stored")
    if few is None:
        return _untestable("no clean-label CCE and MAE runs of fig1 on a 10-class dataset to compare with")
    g100 = _paired(many[many["method"] == "cce"], many[many["method"] == "mae"], "selected")
    g10 = _paired(few[few["method"] == "cce"], few[few["method"] == "mae"], "selected")
    diff = Effect(g100.mean - g10.mean, math.hypot(g100.se, g10.se), min(g100.df, g10.df))
    return decide([Comparison("CCE - MAE, 100 classes", g100, MIN_EFFECT),
                    Comparison("gap with 100 classes - gap with 10", diff, MIN_EFFECT)],
                   f"CCE - MAE in selected test accuracy: {_fmt(g100)} points with 100 classes, {_fmt(g10)} "
                   f"with 10")


# --------------------------------------------------------------------------- Sec. 4.1 (Fig. 1c, Fig. 2)


def _fig1c(results: Results) -> pd.DataFrame | None:
    got = _frames(results, "fig1")
    if got is None:
        return None
    runs, history = got
    noisy = runs[runs["noise"] == "uniform"]
    ten = noisy[noisy["dataset"].map(lambda d: _stands_for(d, "cifar10"))]  # Fig. 1(c) is CIFAR-10's
    noisy = ten if len(ten) else noisy
    if not len(noisy):
        return None
    per = _per_run(noisy, history)
    h = history[history["run_id"].isin(noisy["run_id"])].sort_values(["run_id", "epoch"])
    soft = {rid: g["softmax_noisy"].to_numpy(dtype=float) for rid, g in h.groupby("run_id")}
    per["soft_last"] = per["run_id"].map(lambda r: soft[r][-1])
    per["soft_rise"] = per["run_id"].map(lambda r: soft[r][-1] - np.nanmin(soft[r]))
    return per


def check_cce_memorises(results: Results) -> Verdict:
    """Holds if, under Fig. 1(c)'s uniform noise, CCE's test accuracy falls from the epoch of best
    validation accuracy to the last epoch by more than TOL (1 point), by a one-sided test over seeds;
    contradicted if the drop is below TOL by the same test."""
    per = _fig1c(results)
    if per is None or "cce" not in set(per["method"]):
        return _untestable("no CCE runs with uniform noise (Fig. 1c) of fig1 are stored")
    cce = per[per["method"] == "cce"]
    e = stats.one_sample(cce["drop"])
    eta = float(cce["eta"].iloc[0])
    return decide([Comparison("CCE drop", e, TOL, "above")],
                   f"eta = {eta:g}: CCE's selected test accuracy {cce['selected'].mean():.2f}% (epoch "
                   f"{cce['best_epoch'].mean() + 1:.0f} on average), then a drop of {e.mean:.2f} (s.e. {e.se:.2f}) "
                   f"points by the last epoch")


def check_cce_noisy_softmax_rises(results: Results) -> Verdict:
    """Holds if, under Fig. 1(c)'s uniform noise, CCE's mean softmax at the wrong labels of the training
    samples rises from its lowest value to the last epoch by at least SOFTMAX_EFFECT, by a one-sided test
    over seeds; contradicted if the rise is significantly below it."""
    per = _fig1c(results)
    if per is None or "cce" not in set(per["method"]):
        return _untestable("no CCE runs with uniform noise (Fig. 1c) of fig1 are stored")
    cce = per[per["method"] == "cce"].dropna(subset=["soft_rise"])
    if not len(cce):
        return _untestable("the CCE runs of Fig. 1(c) stored no training softmax")
    e = stats.one_sample(cce["soft_rise"])
    return decide([Comparison("CCE's rise", e, SOFTMAX_EFFECT, "above")],
                   f"CCE's wrong-label softmax rises {e.mean:.3f} (s.e. {e.se:.3f}) from its lowest value to the last "
                   f"epoch, where it is {cce['soft_last'].mean():.3f}")


def check_lq_separates_noisy_labels(results: Results) -> Verdict:
    """Holds if, under Fig. 1(c)'s uniform noise, the mean softmax at wrong labels at the last epoch is
    lower for L_q than for CCE by at least SOFTMAX_EFFECT (paired by seed); contradicted if it is higher by
    as much."""
    per = _fig1c(results)
    if per is None or not {"cce", "lq"} <= set(per["method"]):
        return _untestable("no CCE and L_q runs with uniform noise (Fig. 1c) of fig1 are stored")
    per = per.dropna(subset=["soft_last"])
    e = _paired(per[per["method"] == "cce"], per[per["method"] == "lq"], "soft_last")
    if e is None:
        return _untestable("the runs of Fig. 1(c) stored no training softmax")
    m = per.groupby("method")["soft_last"].mean()
    return decide([Comparison("CCE - L_q, wrong-label softmax", e, SOFTMAX_EFFECT)],
                   f"wrong-label softmax at the last epoch: L_q {m['lq']:.3f}, CCE {m['cce']:.3f} (paired "
                   f"difference {_fmt(e, 3)})")


def _no_overfitting(drops: pd.Series, label: str) -> Comparison:
    """"No overfitting": the drop lies below TOL (one-sided); a drop above TOL contradicts."""
    return Comparison(label, stats.one_sample(drops), TOL, "below")


def check_q07_no_overfitting(results: Results) -> Verdict:
    """Holds if L_q with q = 0.7 under Fig. 1(c)'s uniform noise (eta = 0.4 <= 0.5) drops less than TOL
    (1 point) from the epoch of best validation accuracy to the last epoch, by a one-sided test over seeds;
    contradicted if it drops more than TOL by the same test."""
    per = _fig1c(results)
    lq = None if per is None else per[(per["method"] == "lq") & np.isclose(per["q"].astype(float), 0.7)]
    if lq is None or not len(lq):
        return _untestable("no L_q runs with q = 0.7 under uniform noise (Fig. 1c) of fig1 are stored")
    c = _no_overfitting(lq["drop"], "L_q drop")
    return decide([c], f"eta = {float(lq['eta'].iloc[0]):g}, q = 0.7: drop {c.effect.mean:.2f} (s.e. "
                        f"{c.effect.se:.2f}) points (tolerance {TOL:g})")


def _fig2(results: Results) -> pd.DataFrame | None:
    got = _frames(results, "fig2")
    if got is None:
        return None
    return _per_run(*got)


def check_q08_no_overfitting_eta02(results: Results) -> Verdict:
    """Holds if, in Fig. 2's grid at eta = 0.2, L_q with q = 0.8 drops less than TOL (1 point) from the epoch
    of best validation accuracy to the last epoch, by a one-sided test over seeds; contradicted if it drops
    more than TOL by the same test."""
    per = _fig2(results)
    if per is None:
        return _untestable("no fig2 runs are stored")
    sel = per[np.isclose(per["eta"].astype(float), 0.2) & np.isclose(per["q_fig2"], 0.8)]
    if not len(sel):
        return _untestable("fig2 has no runs with q = 0.8 at eta = 0.2")
    c = _no_overfitting(sel["drop"], "q = 0.8 drop")
    return decide([c], f"eta = 0.2, q = 0.8: drop {c.effect.mean:.2f} (s.e. {c.effect.se:.2f}) points "
                        f"(tolerance {TOL:g})")


def check_larger_q_slower_clean(results: Results) -> Verdict:
    """Holds if, on clean labels in Fig. 2's grid, the largest q needs more epochs than CCE (q = 0; paired
    by seed, at least EPOCH_EFFECT more) to reach 90 % of CCE's mean best validation accuracy; contradicted
    if it needs fewer by as much (runs that never reach it count as their epochs + 1)."""
    per = _fig2(results)
    if per is None:
        return _untestable("no fig2 runs are stored")
    clean = per[per["eta"].astype(float) == 0.0]
    if clean["q_fig2"].nunique() < 2 or 0.0 not in set(clean["q_fig2"]):
        return _untestable("fig2 has no clean-label runs for CCE and a larger q")
    threshold = 0.9 * np.mean([v.max() for v in clean.loc[clean["q_fig2"] == 0.0, "val_acc"]])
    clean = clean.assign(epochs_to=_epochs_to(clean, threshold))
    qmax = clean["q_fig2"].max()
    e = _paired(clean[clean["q_fig2"] == qmax], clean[clean["q_fig2"] == 0.0], "epochs_to")
    m = clean.groupby("q_fig2")["epochs_to"].mean()
    return decide([Comparison(f"q = {qmax:g} - CCE, epochs to the threshold", e, EPOCH_EFFECT)],
                   f"epochs to {100 * threshold:.1f}% validation accuracy: q = {qmax:g} {m[qmax]:.1f}, CCE "
                   f"{m[0.0]:.1f} (paired difference {_fmt(e, 1)})")


def _noisy_pairs(per: pd.DataFrame, q: float | None = None):
    """Per noisy eta of Fig. 2: ``(eta, q, runs of q, runs of CCE)``; ``q`` None: the largest q."""
    out = []
    for eta, g in per[per["eta"].astype(float) > 0].groupby("eta"):
        qq = g["q_fig2"].max() if q is None else q
        a, b = g[np.isclose(g["q_fig2"], qq)], g[g["q_fig2"] == 0.0]
        if len(a) and len(b):
            out.append((float(eta), float(qq), a, b))
    return out


def check_larger_q_delays_overfitting(results: Results) -> Verdict:
    """Holds if, at every noise rate eta > 0 of Fig. 2's grid, the largest q reaches its best validation
    accuracy later than CCE (paired by seed, by at least EPOCH_EFFECT) and drops less from there to the last
    epoch (by at least MIN_EFFECT points); contradicted if either goes the other way."""
    per = _fig2(results)
    pairs = [] if per is None else _noisy_pairs(per)
    if not pairs:
        return _untestable("fig2 has no noisy runs for CCE and a larger q")
    comps, parts = [], []
    for eta, q, a, b in pairs:
        later = _paired(a, b, "best_epoch")
        less = _paired(b, a, "drop")
        comps += [Comparison(f"eta = {eta:g}: best epoch, q = {q:g} - CCE", later, EPOCH_EFFECT),
                  Comparison(f"eta = {eta:g}: drop, CCE - q = {q:g}", less, MIN_EFFECT)]
        parts.append(f"eta = {eta:g}: best epoch {b['best_epoch'].mean() + 1:.1f} -> "
                     f"{a['best_epoch'].mean() + 1:.1f}, drop {b['drop'].mean():.2f} -> {a['drop'].mean():.2f} "
                     f"points (CCE -> q = {q:g})")
    return decide(comps, "; ".join(parts))


def check_larger_q_higher_accuracy(results: Results) -> Verdict:
    """Holds if, at every noise rate eta > 0 of Fig. 2's grid, L_q with q = 0.8 beats CCE in test accuracy at
    the epoch of best validation accuracy (paired by seed, at least MIN_EFFECT points); contradicted if CCE
    beats it."""
    per = _fig2(results)
    pairs = [] if per is None else _noisy_pairs(per, 0.8)
    if not pairs:
        return _untestable("fig2 has no noisy runs for CCE and q = 0.8")
    comps = [Comparison(f"eta = {eta:g}: q = 0.8 - CCE", _paired(a, b, "selected"), MIN_EFFECT)
             for eta, _, a, b in pairs]
    return decide(comps, "; ".join(f"eta = {eta:g}: q = 0.8 {a['selected'].mean():.2f}%, CCE "
                                    f"{b['selected'].mean():.2f}%" for eta, _, a, b in pairs))


def _thresholds(per: pd.DataFrame) -> tuple[dict, list[Comparison]]:
    """Fig. 2's threshold q per noisy eta, from "no overfitting" tests Holm-adjusted together.

    Each ``(eta, q)`` is *no overfitting* (drop below TOL by the test), *overfits* (above TOL by the
    test) or undecided.  The threshold is the smallest q from which on every larger q is *no overfitting*;
    ``"none"`` when the largest q overfits (no threshold exists in (0, 1]), ``"censored"`` when the largest
    q is undecided."""
    comps, keys = [], []
    for (eta, q), g in per[per["eta"].astype(float) > 0].groupby(["eta", "q_fig2"]):
        comps.append(_no_overfitting(g["drop"], f"eta = {float(eta):g}, q = {q:g}: drop"))
        keys.append((float(eta), float(q)))
    if not comps:
        return {}, []
    p_for, p_against = zip(*(c.p_values() for c in comps))
    ok, bad = stats.holm(p_for), stats.holm(p_against)
    state = {k: ("no" if f < ALPHA else "yes" if a < ALPHA else "?") for k, f, a in zip(keys, ok, bad)}
    out = {}
    for eta in sorted({e for e, _ in keys}):
        qs = sorted(q for e, q in keys if e == eta)
        if state[(eta, qs[-1])] != "no":
            out[eta] = "none" if state[(eta, qs[-1])] == "yes" else "censored"
            continue
        thr = qs[-1]
        for q in reversed(qs):
            if state[(eta, q)] != "no":
                break
            thr = q
        out[eta] = thr
    return out, comps


def _threshold_text(thr: dict) -> str:
    return ", ".join(f"eta = {e:g}: " + (f"q = {v:g}" if isinstance(v, float) else
                                         "none in (0, 1]" if v == "none" else "undecided at the largest q")
                     for e, v in thr.items())


def _threshold_numbers(thr: dict) -> pd.DataFrame:
    return pd.DataFrame([{"eta": e, "threshold_q": v if isinstance(v, float) else np.nan, "state":
                          "found" if isinstance(v, float) else v} for e, v in thr.items()])


def check_threshold_exists(results: Results) -> Verdict:
    """Holds if, at every noise rate eta > 0 of Fig. 2's grid, some q of the grid and every larger q drop
    less than TOL (the "no overfitting" test, Holm-adjusted over the grid); contradicted if at some eta even
    the largest q overfits by the test (no threshold in (0, 1]); inconclusive if the largest q is
    undecided."""
    per = _fig2(results)
    if per is None:
        return _untestable("no fig2 runs are stored")
    thr, _ = _thresholds(per)
    if not thr:
        return _untestable("fig2 has no noisy runs")
    if any(v == "none" for v in thr.values()):
        status = CONTRADICTED
    elif all(isinstance(v, float) for v in thr.values()):
        status = HOLDS
    else:
        status = INCONCLUSIVE
    return Verdict(status, "threshold q: " + _threshold_text(thr), _threshold_numbers(thr))


def check_threshold_grows(results: Results) -> Verdict:
    """Holds if the threshold q of Fig. 2 (see threshold_exists) is found at every noisy eta and is larger at
    the largest eta than at the smallest, never smaller at a larger eta; contradicted if it is smaller at a
    larger eta; inconclusive if a threshold is missing (censored: "none in the grid" is not a number) or
    equal at the ends."""
    per = _fig2(results)
    if per is None:
        return _untestable("no fig2 runs are stored")
    thr, _ = _thresholds(per)
    if len(thr) < 2:
        return _untestable("fig2 has fewer than two noisy rates")
    found = [(e, v) for e, v in thr.items() if isinstance(v, float)]
    values = [v for _, v in found]
    if any(b < a for a, b in zip(values, values[1:])):
        status = CONTRADICTED
    elif len(found) == len(thr) and values[-1] > values[0]:
        status = HOLDS
    else:
        status = INCONCLUSIVE
    return Verdict(status, "threshold q by eta: " + _threshold_text(thr), _threshold_numbers(thr))


# --------------------------------------------------------------------------- Sec. 4.3 (Table 1, Table 2)


@dataclass
class _Cells:
    """Accuracies per ``(dataset, noise, eta, method)``: per seed (stored runs, ``per`` has ``seed`` and
    ``value``), or summaries (the paper: ``mean``, ``std``, ``n``).  Gates read ``per``'s other columns."""

    table: pd.DataFrame
    paired: bool

    def values(self, d, noise, eta, m) -> pd.DataFrame:
        t = self.table
        return t[(t["dataset"] == d) & (t["noise"] == noise) & np.isclose(t["eta"].astype(float), eta)
                 & (t["method"] == m)]

    def effect(self, d, noise, eta, a, b) -> Effect | None:
        va, vb = self.values(d, noise, eta, a), self.values(d, noise, eta, b)
        if not len(va) or not len(vb):
            return None
        if self.paired:
            return _paired(va, vb, "value")
        ra, rb = va.iloc[0], vb.iloc[0]
        return stats.from_summary(ra["mean"], ra["std"], int(ra["n"]), rb["mean"], rb["std"], int(rb["n"]))

    def settings(self, noise: str | None) -> list[tuple[str, str, float]]:
        t = self.table if noise is None else self.table[self.table["noise"] == noise]
        return sorted({(d, n, float(e)) for d, n, e in zip(t["dataset"], t["noise"], t["eta"])})


def _stored_cells(results: Results, name: str, column: str) -> _Cells | None:
    got = _frames(results, name)
    if got is None:
        return None
    per = _per_run(*got)
    return _Cells(per.assign(value=per[column]), True)


def paper_cells(table: pd.DataFrame, value: str = "mean") -> _Cells:
    """The paper's own numbers (Table 1 or 2: column ``value`` the mean, ``std`` if given, 5 unpaired runs) as
    the cells a rule compares (:func:`evaluate_paper`; the claims page's calibration)."""
    t = table.rename(columns={value: "mean"})
    if "std" not in t:
        t = t.assign(std=0.0)
    return _Cells(t.assign(n=5), False)


def _fitted(cells: _Cells, d: str, noise: str, eta: float, methods: Sequence[str]) -> list[str]:
    """The methods of ``methods`` that had not fitted before the first drop in this setting (fit gate)."""
    if not cells.paired:
        return []
    out = []
    for m in methods:
        v = cells.values(d, noise, eta, m)
        if not len(v) or "val_acc" not in v:
            continue
        ms = str(v["milestones"].iloc[0]).split()
        if not ms:
            continue
        curve = np.mean(np.stack(v["val_acc"].to_numpy()), axis=0)
        if not _schedule.has_fitted(curve, int(ms[0]), chance=_chance(d)):
            out.append(m)
    return out


def _chance(dataset: str) -> float:
    return 1.0 / len(class_names(dataset))


def _engaged(cells: _Cells, d: str, where: str) -> str | None:
    """None if truncation is engaged in block ``d`` (see the module docstring), else the reason it is not."""
    if not cells.paired:
        return None
    t = cells.table
    trunc = t[(t["dataset"] == d) & (t["method"] == "trunc_lq")]
    if not len(trunc):
        return None
    kept = trunc[f"kept_at_{where}"].astype(float)
    engaged = ((kept > 0) & (kept < 1)).mean()
    empty = (kept == 0).mean()
    if engaged >= 0.5:
        return None
    if empty >= 0.5:
        return f"on {d} pruning had dropped every sample in {100 * empty:.0f}% of the truncated runs"
    return (f"on {d} the reported model came after a pruning step that kept some but not all samples in only "
            f"{100 * engaged:.0f}% of the truncated runs")


def _block_comparisons(cells: _Cells, noise: str | None, winner: str, others: Sequence[tuple[str, str]],
                       truncation: bool, where: str = "best") -> tuple[list[Comparison], list[str]]:
    """Per dataset block: ``winner`` against each ``(method, kind)`` of ``others``, pooled over the block's
    noise rates of ``noise`` (None: all), with the fit and engagement gates; and the notes of what the gates
    removed."""
    comps, notes = [], []
    for d in sorted({s[0] for s in cells.settings(noise)}):
        if truncation:
            why = _engaged(cells, d, where)
            if why:
                notes.append(why)
                continue
        settings = [(nz, eta) for dd, nz, eta in cells.settings(noise) if dd == d]
        present = [m for m in (winner, *(o for o, _ in others)) if len(cells.values(d, *settings[0], m))]
        unfit = {s: _fitted(cells, d, *s, present) for s in settings}
        by_method: dict[str, list[str]] = {}
        for (nz, eta), ms in unfit.items():
            for m in ms:
                by_method.setdefault(m, []).append(f"{nz} {eta:g}")
        notes += [f"{d}: {_label(m)} underfits before the first drop at " + ", ".join(where_) + " (left out)"
                  for m, where_ in by_method.items()]
        for other, kind in others:
            effects = [e for s in settings if winner not in unfit[s] and other not in unfit[s]
                       for e in [cells.effect(d, *s, winner, other)] if e is not None]
            if effects:
                rates = f"{len(effects)} rate" + ("s" if len(effects) > 1 else "")
                comps.append(Comparison(f"{d}: {_label(winner)} - {_label(other)} ({rates})",
                                        stats.pooled(effects), MIN_EFFECT, kind))
    return comps, notes


def _label(method: str) -> str:
    return experiments.METHOD_LABELS.get(method, method)


def _table_verdict(comps: list[Comparison], notes: list[str], what: str) -> Verdict:
    if not comps:
        return _untestable("; ".join(notes) if notes else f"no {what} to compare")
    short = ", ".join(f"{c.label.split(' (')[0]} {_fmt(c.effect)}" for c in comps)
    return decide(comps, f"pooled differences (points): {short}", notes)


def _gce_uniform(cells: _Cells | None, method: str) -> Verdict:
    if cells is None:
        return _untestable("no table1 runs are stored")
    others = [("cce", "beats"), ("mae", "beats"), ("forward_T_hat", "beats"), ("forward_T", "not_worse")]
    comps, notes = _block_comparisons(cells, "uniform", method, others, truncation=method == "trunc_lq")
    return _table_verdict(comps, notes, "uniform-noise runs")


def check_lq_beats_baselines_uniform(results: Results) -> Verdict:
    """Holds if, in every dataset block of Table 1 under uniform noise (pooled over its noise rates, paired by
    seed), L_q beats CCE, MAE and Forward T_hat by at least MIN_EFFECT points and is not worse than Forward T
    (the true T) by as much; contradicted if a baseline beats L_q.

    The paper's sentence says L_q beats forward correction even with the true T; its own FASHION-MNIST
    numbers have Forward T ahead at two of four noise rates, so the rule asks what its table supports:
    not worse than Forward T.
    """
    return _gce_uniform(_stored_cells(results, "table1", "selected"), "lq")


def check_trunc_beats_baselines_uniform(results: Results) -> Verdict:
    """Holds if, in every dataset block of Table 1 under uniform noise (pooled over its noise rates, paired by
    seed), truncated L_q beats CCE, MAE and Forward T_hat by at least MIN_EFFECT points and is not worse than
    Forward T by as much; contradicted if a baseline beats it.  Gated by truncation being engaged."""
    return _gce_uniform(_stored_cells(results, "table1", "selected"), "trunc_lq")


def _truncation(cells: _Cells | None) -> Verdict:
    if cells is None:
        return _untestable("no table1 runs are stored")
    comps, notes = _block_comparisons(cells, "uniform", "trunc_lq", [("lq", "beats")], truncation=True)
    return _table_verdict(comps, notes, "truncated and plain L_q runs")


def check_truncation_improves(results: Results) -> Verdict:
    """Holds if, in every dataset block of Table 1 under uniform noise (pooled over its noise rates, paired by
    seed), truncated L_q beats L_q by at least MIN_EFFECT points; contradicted if L_q beats it.  Gated by
    truncation being engaged."""
    return _truncation(_stored_cells(results, "table1", "selected"))


def _forward_T(cells: _Cells | None) -> Verdict:
    if cells is None:
        return _untestable("no table1 runs are stored")
    others = [(m, "beats") for m in ("cce", "mae", "forward_T_hat", "lq", "trunc_lq")]
    comps, notes = _block_comparisons(cells, "class_dependent", "forward_T", others, truncation=False)
    return _table_verdict(comps, notes, "class-dependent runs")


def check_forward_T_best_class_dependent(results: Results) -> Verdict:
    """Holds if, in every dataset block of Table 1 under class-dependent noise (pooled over its noise rates,
    paired by seed), Forward T beats every other method by at least MIN_EFFECT points; contradicted if some
    method beats Forward T."""
    return _forward_T(_stored_cells(results, "table1", "selected"))


def _mae_poor(cells: _Cells | None) -> Verdict:
    if cells is None:
        return _untestable("no table1 runs are stored")
    comps, notes = _block_comparisons(cells, None, "cce", [("mae", "beats")], truncation=False)
    return _table_verdict(comps, notes, "CCE and MAE runs")


def check_mae_poor(results: Results) -> Verdict:
    """Holds if, in every dataset block of Table 1 (all eight noise settings pooled, paired by seed), CCE
    beats MAE by at least MIN_EFFECT points; contradicted if MAE beats CCE."""
    return _mae_poor(_stored_cells(results, "table1", "selected"))


def _harm(cells: _Cells) -> str | None:
    """None if the outside images harm CCE (mean drop >= HARM_MARGIN), else the reason they do not."""
    if not cells.paired:
        return None
    t = cells.table
    cce = t[(t["noise"] == "open_set") & (t["method"] == "cce")]
    if not len(cce):
        return "no open-set CCE runs"
    drop = float(cce["drop"].mean())
    if drop >= HARM_MARGIN:
        return None
    return (f"the outside images barely harm CCE: it loses {drop:.2f} points from its best-validation epoch to the "
            f"last (needs {HARM_MARGIN:g})")


def _open_set(cells: _Cells | None, winners: Sequence[str], others: Sequence[str]) -> Verdict:
    if cells is None:
        return _untestable("no table2 runs are stored")
    why = _harm(cells)
    if why:
        return _untestable(why)
    if "trunc_lq" in winners:
        why = _engaged(cells, cells.settings("open_set")[0][0], "last")
        if why:
            return _untestable(why)
    comps = []
    for w in winners:
        for o in others:
            if o == w:
                continue
            e = cells.effect(*cells.settings("open_set")[0], w, o)
            if e is not None:
                comps.append(Comparison(f"{_label(w)} - {_label(o)}", e, MIN_EFFECT))
    return _table_verdict(comps, [], "open-set runs")


def check_trunc_best_open_set(results: Results) -> Verdict:
    """Holds if, under Table 2's open-set noise, truncated L_q beats every other method in last-epoch test
    accuracy (paired by seed, at least MIN_EFFECT points); contradicted if some method beats it.  Gated by
    the outside images harming CCE and by truncation being engaged."""
    return _open_set(_stored_cells(results, "table2", "last"), ["trunc_lq"],
                     ["cce", "forward_T_hat", "mae", "lq"])


def check_gce_beats_cce_open_set(results: Results) -> Verdict:
    """Holds if, under Table 2's open-set noise, both L_q and truncated L_q beat both CCE and Forward T_hat in
    last-epoch test accuracy (paired by seed, at least MIN_EFFECT points); contradicted if one of those
    baselines beats one of them.  Gated as trunc_best_open_set."""
    return _open_set(_stored_cells(results, "table2", "last"), ["lq", "trunc_lq"], ["cce", "forward_T_hat"])


def _closed_set_row(cells: _Cells | None) -> Verdict:
    if cells is None:
        return _untestable("no table2 runs are stored")
    s = cells.settings("uniform")
    if not s:
        return _untestable("table2 has no closed-set (uniform) runs")
    e = cells.effect(*s[0], "lq", "cce")
    if e is None:
        return _untestable("table2 has no closed-set runs of L_q and CCE")
    comps = [Comparison("L_q - CCE, last epoch", e, MIN_EFFECT)]
    if cells.paired:
        t = cells.table
        a, b = (t[(t["noise"] == "uniform") & (t["method"] == m)] for m in ("cce", "lq"))
        comps.append(Comparison("drop, CCE - L_q", _paired(a, b, "drop"), MIN_EFFECT))
    return _table_verdict(comps, [], "closed-set runs")


def check_lq_prevents_overfitting_closed_set(results: Results) -> Verdict:
    """Holds if, under Table 2's closed-set (uniform) noise, L_q beats CCE in last-epoch test accuracy and
    loses less from its best-validation epoch to the last (each paired by seed, at least MIN_EFFECT points);
    contradicted if CCE beats L_q in either."""
    return _closed_set_row(_stored_cells(results, "table2", "last"))


# --------------------------------------------------------------------------- the registry


CLAIMS: tuple[Claim, ...] = (
    Claim("mae_slower_clean", "3.2", "On clean labels MAE learns more slowly than CCE: it needs more epochs to "
          "reach a given accuracy (Fig. 1a).", ("fig1",), check_mae_slower_clean),
    Claim("mae_lower_clean", "3.2", "On clean labels MAE also ends lower than CCE (Fig. 1a).", ("fig1",),
          check_mae_lower_clean),
    Claim("mae_fails_many_classes", "3.2", "With 100 classes MAE falls much further behind CCE than with 10 "
          "(Fig. 1b).", ("fig1",), check_mae_fails_many_classes),
    Claim("cce_memorises", "4.1", "Under label noise CCE first learns the clean signal, then fits the wrong "
          "labels: its test accuracy rises and falls (Fig. 1c).", ("fig1",), check_cce_memorises),
    Claim("cce_noisy_softmax_rises", "4.1", "CCE's softmax at the wrong labels first sinks, then climbs again as "
          "it memorises them (Fig. 1c).", ("fig1",), check_cce_noisy_softmax_rises),
    Claim("lq_separates_noisy_labels", "4.1", "L_q keeps the softmax at wrong labels lower than CCE does, so "
          "wrongly labelled samples stand apart (Fig. 1c).", ("fig1",), check_lq_separates_noisy_labels),
    Claim("q07_no_overfitting", "4.1", "With q = 0.7, L_q does not overfit at a noise rate of 0.4 (at most "
          "0.5).", ("fig1",), check_q07_no_overfitting),
    Claim("larger_q_slower_clean", "4.1", "On clean labels a larger q converges more slowly (Fig. 2).",
          ("fig2",), check_larger_q_slower_clean),
    Claim("larger_q_delays_overfitting", "4.1", "Under noise a larger q reaches its best later and loses less "
          "after it (Fig. 2).", ("fig2",), check_larger_q_delays_overfitting),
    Claim("larger_q_higher_accuracy", "4.1", "Under noise a larger q attains a higher accuracy than CCE "
          "(Fig. 2).", ("fig2",), check_larger_q_higher_accuracy),
    Claim("threshold_exists", "4.1", "For each noise rate there is a q above which no overfitting sets in "
          "(Fig. 2).", ("fig2",), check_threshold_exists),
    Claim("q08_no_overfitting_eta02", "4.1", "At a noise rate of 0.2, L_q with q = 0.8 trains without "
          "overfitting (Fig. 2).", ("fig2",), check_q08_no_overfitting_eta02),
    Claim("threshold_grows", "4.1", "That threshold q grows with the noise rate (Fig. 2).", ("fig2",),
          check_threshold_grows),
    Claim("lq_beats_baselines_uniform", "4.3", "Under uniform noise L_q beats CCE, MAE and forward correction "
          "with an estimated T, and matches it with the true T (Table 1).", ("table1",),
          check_lq_beats_baselines_uniform),
    Claim("trunc_beats_baselines_uniform", "4.3", "Under uniform noise truncated L_q beats CCE, MAE and "
          "forward correction with an estimated T, and matches it with the true T (Table 1).", ("table1",),
          check_trunc_beats_baselines_uniform),
    Claim("truncation_improves", "4.3", "Under uniform noise, truncating L_q improves on L_q (Table 1).",
          ("table1",), check_truncation_improves),
    Claim("forward_T_best_class_dependent", "4.3", "Under class-dependent noise, forward correction with the "
          "true T is the best method (Table 1).", ("table1",), check_forward_T_best_class_dependent),
    Claim("mae_poor", "4.3", "MAE does poorly on every dataset: worse than plain CCE (Table 1).", ("table1",),
          check_mae_poor),
    Claim("trunc_best_open_set", "4.3", "Under open-set noise truncated L_q is the best method (Table 2).",
          ("table2",), check_trunc_best_open_set),
    Claim("gce_beats_cce_open_set", "4.3", "Under open-set noise L_q and truncated L_q beat CCE and Forward "
          "T_hat (Table 2).", ("table2",), check_gce_beats_cce_open_set),
    Claim("lq_prevents_overfitting_closed_set", "4.3", "In Table 2's closed-set row, L_q noticeably prevents "
          "the overfitting of CCE (Table 2).", ("table2",), check_lq_prevents_overfitting_closed_set),
)

#: The claims whose rules take the paper's own Table 1 or Table 2 (:func:`evaluate_paper`), each with the
#: function of its cells (:class:`_Cells`) that its check calls.
_PAPER_RULES: dict[str, tuple[str, Callable[[_Cells], Verdict]]] = {
    "lq_beats_baselines_uniform": ("table1", lambda c: _gce_uniform(c, "lq")),
    "trunc_beats_baselines_uniform": ("table1", lambda c: _gce_uniform(c, "trunc_lq")),
    "truncation_improves": ("table1", _truncation),
    "forward_T_best_class_dependent": ("table1", _forward_T),
    "mae_poor": ("table1", _mae_poor),
    "trunc_best_open_set": ("table2", lambda c: _open_set(c, ["trunc_lq"], ["cce", "forward_T_hat", "mae", "lq"])),
    "gce_beats_cce_open_set": ("table2", lambda c: _open_set(c, ["lq", "trunc_lq"], ["cce", "forward_T_hat"])),
    "lq_prevents_overfitting_closed_set": ("table2", _closed_set_row),
}


def get(claim_id: str) -> Claim:
    """The claim with id ``claim_id``."""
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise ValueError(f"unknown claim id {claim_id!r}; known: {', '.join(c.id for c in CLAIMS)}")


def check(claim: Claim | str, results: Results) -> Verdict:
    """The verdict of ``claim`` (or its id) on ``results`` (``{experiment: (runs, history)}``); not testable
    when an experiment it needs is missing or empty."""
    claim = get(claim) if isinstance(claim, str) else claim
    missing = [e for e in claim.experiments if _frames(results, e) is None]
    if missing:
        return _untestable(f"no stored runs of {', '.join(missing)}")
    return claim.check(results)


def evaluate_paper(dataset: str | None = None) -> pd.DataFrame:
    """The Table 1 and Table 2 claims' rules fed the paper's own numbers (calibration): one row per claim
    and paper block with ``id``, ``dataset``, ``status`` and ``reason``.

    Table 1 gives means and standard deviations over 5 runs, compared unpaired (Welch); Table 2 gives means
    only, taken as exact (standard deviation 0), so only their order and the minimum effect are checked.
    No gate applies (the paper's runs are not stored).  ``dataset`` restricts Table 1 to one block.
    """
    t1, t2 = experiments.paper_table1(), experiments.paper_table2()
    blocks = sorted(t1["dataset"].unique()) if dataset is None else [dataset]
    rows = []
    for cid, (table, rule) in _PAPER_RULES.items():
        if table == "table1":
            for d in blocks:
                v = rule(paper_cells(t1[t1["dataset"] == d]))
                rows.append({"id": cid, "dataset": d, "status": v.status, "reason": v.reason})
        else:
            v = rule(paper_cells(t2.assign(dataset="cifar10", eta=0.4), value="accuracy"))
            rows.append({"id": cid, "dataset": "cifar10 (Table 2)", "status": v.status, "reason": v.reason})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- reading stored results


#: The reader of stored results under the name the chapters use (``gce.book.reader.read``), which never trains.
stored_results = reader.read


def scales_with_results(results_dir: str | os.PathLike | None = None) -> list[str]:
    """The scales of :data:`gce.book.experiments.SCALES` at which some experiment has stored runs of its grid
    (:func:`gce.book.reader.scales`)."""
    return reader.scales(results_dir)


def evaluate_results(results: Results, scale: str, ids: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per claim (or per id of ``ids``): ``id``, ``section``, ``claim``, ``experiments``, ``scale``,
    ``status`` and ``reason`` (the evidence in one line), for results already loaded."""
    chosen = CLAIMS if ids is None else [get(i) for i in ids]
    rows = []
    for c in chosen:
        v = check(c, results)
        rows.append({"id": c.id, "section": c.section, "claim": c.text, "experiments": ", ".join(c.experiments),
                     "scale": scale, "status": v.status, "reason": v.reason})
    return pd.DataFrame(rows)


def evaluate(results_dir: str | os.PathLike | None = None, scale: str | None = None, *,
             loader: Callable[[str, str], tuple | None] | None = None,
             ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Every claim's verdict at ``scale`` (default ``$GCE_SCALE``) from the stored results (see
    :func:`evaluate_results` for the columns).  Never trains.

    ``loader(name, scale)`` returns ``(runs, history)`` or None; by default
    :func:`stored_results` reading ``results_dir`` (default
    :func:`gce.book.experiments.default_results_dir`).
    """
    scale = experiments.default_scale() if scale is None else scale
    if scale not in experiments.SCALES:
        raise ValueError(f"unknown scale={scale!r}; known scales: {', '.join(experiments.SCALES)}")
    needed = sorted({e for c in (CLAIMS if ids is None else [get(i) for i in ids]) for e in c.experiments})
    return evaluate_results(load_results(scale, results_dir, loader=loader, names=needed), scale, ids)


def load_results(scale: str | None = None, results_dir: str | os.PathLike | None = None, *,
                 loader: Callable[[str, str], tuple | None] | None = None,
                 names: Sequence[str] = experiments.EXPERIMENTS) -> dict:
    """``{experiment: (runs, history)}`` of the experiments ``names`` that have stored runs at ``scale``
    (the mapping every check takes); ``loader`` as in :func:`evaluate`.  Never trains."""
    scale = experiments.default_scale() if scale is None else scale
    if loader is None:
        def loader(name, s):
            return stored_results(name, s, results_dir)
    out = {}
    for name in names:
        got = loader(name, scale)
        if got is not None:
            out[name] = got
    return out


# --------------------------------------------------------------------------- display (book/claims.ipynb)


#: Width, in characters, that the display helpers fill by default; the book's text column holds about
#: 77 monospace characters at a desktop window (tools/check_width.py), so a verdict never wraps there.
TEXT_WIDTH = 76
_NBSP = "\u00a0"
#: Spaces the wrapping keeps ("eta = 0.6", "13.8 ± 0.4", "(s.e. 0.4)", "Fig. 2", "0 of 4", "5 seeds" stay on
#: one line).
_UNBROKEN = re.compile(r" (?=[=±] )|(?<= [=±]) |(?<=\bs\.e\.) |(?<=\b(?:Fig|Sec)\.) |(?<=\bTable) "
                       r"|(?<=\d) (?=of \d)|(?<=\d of) (?=\d)|(?<=\d) (?=(?:seeds?|points?)\b)")
_KEY_COLUMNS = ("eta", "q")
_LABEL_WIDTH = 8  # "reason: " and the other labels, padded to one width


def _check_width(width: int, least: int = 40) -> None:
    if not isinstance(width, (int, np.integer)) or width < least:
        raise ValueError(f"width={width!r} is too narrow: give an integer of at least {least} characters")


def _wrapped(label: str, text: str, width: int) -> str:
    prefix = f"  {label + ':':<{_LABEL_WIDTH}}"
    body = textwrap.fill(_UNBROKEN.sub(_NBSP, str(text)), width, initial_indent=prefix,
                         subsequent_indent=" " * len(prefix), break_on_hyphens=False)
    return body.replace(_NBSP, " ")


def numbers_text(numbers: pd.DataFrame, width: int = TEXT_WIDTH, digits: int = 3) -> str:
    """A verdict's ``numbers`` (:attr:`Verdict.numbers`) as plain text no wider than ``width``.

    Values are rounded to ``digits`` decimals, float columns whose values are all whole numbers (seed
    counts, win indicators) are shown as integers, and a missing value (no threshold ``q`` in the grid,
    no standard error with one seed) is shown as ``-``.  A table wider than ``width`` is split into
    column groups, each repeating the key columns (the text columns and ``eta``, ``q``) so that every
    row can still be read on its own (a group holds at least one column, so a single column wider than
    what the key columns leave is shown whole).  Display only: the checks of Sec. 3.2, 4.1 and 4.3 compute the
    numbers.
    """
    _check_width(width, least=20)
    if not isinstance(numbers, pd.DataFrame):
        raise ValueError(f"numbers must be a DataFrame, got {type(numbers).__name__}")
    if not len(numbers) or not len(numbers.columns):
        return ""
    t = numbers.reset_index(drop=True).copy()
    for col in t.columns:
        if pd.api.types.is_float_dtype(t[col]):
            values = t[col]
            whole = values.notna().all() and bool((values == values.round()).all())
            t[col] = values.astype("int64") if whole else values.round(digits)
    keys = [c for c in t.columns if not pd.api.types.is_numeric_dtype(t[c]) or c in _KEY_COLUMNS]
    rest = [c for c in t.columns if c not in keys]

    def render(cols):
        return t[cols].to_string(index=False, na_rep="-")

    def fits(cols):
        return max(len(line) for line in render(cols).splitlines()) <= width

    groups, current = [], []
    for col in rest:
        if current and not fits(keys + current + [col]):
            groups.append(current)
            current = []
        current.append(col)
    if current or not groups:
        groups.append(current)
    return "\n\n".join(render(keys + g) for g in groups)


def format_check(claim: Claim | str, verdict: Verdict, width: int = TEXT_WIDTH) -> str:
    """One claim's verdict as plain text no wider than ``width``: a header ``id (Sec. s, experiments):
    status``, then the claim, its decision rule (:attr:`Claim.rule`) and the verdict's reason, each
    wrapped with a hanging indent, then its numbers (:func:`numbers_text`, indented)."""
    _check_width(width)
    claim = get(claim) if isinstance(claim, str) else claim
    if not isinstance(verdict, Verdict):
        raise ValueError(f"verdict must be a Verdict, got {type(verdict).__name__}")
    lines = [textwrap.fill(f"{claim.id} (Sec. {claim.section}, {', '.join(claim.experiments)}): "
                           f"{verdict.status}", width, subsequent_indent="    ")]
    lines += [_wrapped(label, text, width)
              for label, text in (("claim", claim.text), ("rule", claim.rule), ("reason", verdict.reason))]
    table = numbers_text(verdict.numbers, width - 2) if verdict.numbers is not None else ""
    if table:
        lines.append(textwrap.indent(table, "  "))
    return "\n".join(lines)


def format_verdicts(verdicts: pd.DataFrame, width: int = TEXT_WIDTH,
                    fields: Sequence[str] = ("claim", "reason")) -> str:
    """The rows of :func:`evaluate_results` as plain text no wider than ``width`` (a verdict table
    that fits the book's column): per claim a line ``id (Sec. s): status``, then each column of
    ``fields`` wrapped with a hanging indent."""
    _check_width(width)
    needed = ["id", "section", "status", *fields]
    missing = [c for c in needed if c not in verdicts.columns]
    if missing:
        raise ValueError(f"verdicts lacks the columns {missing}; expected the table of evaluate_results")
    blocks = []
    for row in verdicts.to_dict("records"):
        block = [textwrap.fill(f"{row['id']} (Sec. {row['section']}): {row['status']}", width,
                               subsequent_indent="    ")]
        block += [_wrapped(f, row[f], width) for f in fields]
        blocks.append("\n".join(block))
    return "\n".join(blocks)


# --------------------------------------------------------------------------- schedule sensitivity


def schedule_sensitivity(runs: pd.DataFrame, history: pd.DataFrame,
                         claim_id: str = "lq_beats_baselines_uniform",
                         table1: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1's uniform-noise verdict recomputed for each first learning-rate drop of the ``"sensitivity"``
    grid (:data:`gce.book.experiments.SENSITIVITY_FACTORS`), by the same rule and gates as the claim.

    The grid leaves out the declared drop, whose runs are Table 1's: pass Table 1's stored ``(runs, history)``
    as ``table1`` to add them (the same block, noise rates and methods as the grid's).

    Returns ``(verdicts, comparisons)``: one row per first drop (``first_drop`` in epochs, ``factor`` of the
    declared 40, ``status``, ``reason``), and one row per first drop and comparison (``comparison``,
    ``effect``, ``se``, ``p_for``, ``p_against``, Holm-adjusted within the first drop).  The methods are
    those of the grid (no Forward T_hat: it needs a CCE twin per run).
    """
    need = {"run_id", "milestones", "method", "eta", "dataset", "noise", "seed"}
    if not need <= set(runs.columns):
        raise ValueError(f"runs lack the columns {sorted(need - set(runs.columns))}: pass the stored tables of "
                         f"the sensitivity experiment")
    if table1 is not None:
        t_runs, t_hist = table1
        same = (t_runs["dataset"].isin(runs["dataset"].unique()) & (t_runs["noise"] == "uniform")
                & t_runs["eta"].astype(float).isin(runs["eta"].astype(float).unique())
                & t_runs["method"].isin(runs["method"].unique()))
        runs = pd.concat([runs, t_runs[same]], ignore_index=True)
        history = pd.concat([history, t_hist[t_hist["run_id"].isin(t_runs.loc[same, "run_id"])]],
                            ignore_index=True)
    first = runs["milestones"].astype(str).str.split().str[0].astype(int)
    rows, comps = [], []
    for d in sorted(first.unique()):
        sub = runs[first == d]
        v = check(claim_id, {"table1": (sub, history[history["run_id"].isin(sub["run_id"])])})
        rows.append({"first_drop": int(d), "factor": d / 40, "status": v.status, "reason": v.reason})
        if len(v.numbers):
            comps.append(v.numbers.assign(first_drop=int(d)))
    comparisons = pd.concat(comps, ignore_index=True) if comps else pd.DataFrame()
    return pd.DataFrame(rows), comparisons
