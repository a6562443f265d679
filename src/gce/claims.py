"""The paper's experimental claims as data, each with a verdict computed from the stored results.

Every claim of Sec. 3.2, 4.1 and 4.3 that one of the book's experiments can
confirm or refute is a :class:`Claim`: a short ``id``, the paper's
``section``, the claim in the book's own words, the ``experiments`` it needs
(names in :data:`gce.experiments.EXPERIMENTS`) and a ``check``: a function of
the stored results that returns a :class:`Verdict` (``status`` in
:data:`STATUSES`, the ``numbers`` that decide it, a one-line ``reason``).

The decision rule of each claim is stated in its check's docstring (and in
:attr:`Claim.rule`); the rules were written before the verdicts were looked
at, and they compare means over seeds with their standard errors
(``std / sqrt(n)``, ddof 1), never single runs:

- "A beats B" means ``mean(A) - mean(B)`` exceeds the larger of the two
  standard errors.  With a single seed (the ``lite`` scale) the standard
  error is unknown and taken as 0, so the comparison is of the means alone;
  the numbers show ``n``.
- "no overfitting" means a mean drop from the peak test accuracy to the last
  epoch of at most :data:`TOL` (1 point), the tolerance of Sec. 4.1's
  chapter (:func:`gce.analysis.overfitting_threshold`).
- A claim is *not testable at this scale* when the runs it needs are not
  stored (for example Fig. 1(b)'s 100-class runs at the pocket scale before
  a 100-class task exists) or when the mechanism it is about is not engaged
  in the stored runs (truncation that never changed the reported model).

Results are passed as a mapping ``{experiment name: (runs, history)}`` (the
tables of :class:`gce.store.ResultStore`); :func:`evaluate` reads them
from the results folder without ever training (:func:`stored_results`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import analysis, experiments

__all__ = ["HOLDS", "FAILS", "NOT_TESTABLE", "STATUSES", "TOL", "Verdict", "Claim", "CLAIMS", "get",
           "check", "stored_results", "load_results", "scales_with_results", "evaluate", "evaluate_results", "mean_se"]

HOLDS, FAILS, NOT_TESTABLE = "holds", "fails", "not testable at this scale"
STATUSES = (HOLDS, FAILS, NOT_TESTABLE)
TOL = 0.01  # "no overfitting": a mean drop from peak to last epoch of at most 1 point of test accuracy

Results = Mapping[str, "tuple[pd.DataFrame, pd.DataFrame]"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim's check: ``status`` (one of :data:`STATUSES`), the ``numbers`` that decide
    it (a DataFrame of floats; empty when not testable) and a one-line ``reason``."""

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


def _untestable(reason: str) -> Verdict:
    return Verdict(NOT_TESTABLE, reason)


def _decide(ok: bool, reason: str, numbers: pd.DataFrame) -> Verdict:
    return Verdict(HOLDS if ok else FAILS, reason, numbers.reset_index(drop=True))


# --------------------------------------------------------------------------- statistics


def mean_se(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, standard error (``std(ddof=1) / sqrt(n)``; 0 for one value) and ``n`` of the finite values."""
    v = np.asarray([x for x in values if x == x], dtype=float)
    if not len(v):
        return float("nan"), float("nan"), 0
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se, len(v)


def _beats(a: tuple, b: tuple) -> bool:
    """Mean of ``a`` exceeds mean of ``b`` by more than the larger standard error."""
    return bool(a[0] - b[0] > max(a[1], b[1]))


def _stands_for(dataset: str, paper_dataset: str) -> bool:
    return paper_dataset in analysis.paper_datasets(dataset)


def _frames(results: Results, name: str):
    got = results.get(name)
    if got is None:
        return None
    runs, history = got
    return (runs, history) if len(runs) else None


def _per_run(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per run: best test accuracy, its epoch, last, drop, and the curve (for thresholds)."""
    return analysis.overfitting_table(runs, history, by=(), per_run=True) if len(runs) else pd.DataFrame()


def _epochs_to(runs: pd.DataFrame, history: pd.DataFrame, threshold: float) -> pd.Series:
    """Per run: first epoch with test accuracy >= threshold; runs that never reach it count as epochs + 1."""
    out = {}
    h = history[history["run_id"].isin(runs["run_id"])].sort_values(["run_id", "epoch"])
    for rid, g in h.groupby("run_id", sort=False):
        hit = g["test_acc"].to_numpy() >= threshold
        out[rid] = float(g["epoch"].to_numpy()[hit.argmax()]) if hit.any() else float(g["epoch"].max() + 1)
    return pd.Series(out)


def _clean_block(results: Results, experiment: str, paper_dataset: str):
    """Clean-label CCE and MAE runs of ``experiment`` on the dataset standing for ``paper_dataset``."""
    got = _frames(results, experiment)
    if got is None:
        return None
    runs, history = got
    sel = runs[(runs["noise"] == "none") & runs["dataset"].map(lambda d: _stands_for(d, paper_dataset))]
    if not {"cce", "mae"} <= set(sel["method"]):
        return None
    return sel, history


# --------------------------------------------------------------------------- Sec. 3.2 (Fig. 1a, b)


def _mae_vs_cce_clean(runs, history) -> pd.DataFrame:
    per = _per_run(runs, history).merge(runs[["run_id", "method"]], on="run_id")
    cce_best = per.loc[per["method"] == "cce", "peak"].mean()
    threshold = 0.9 * cce_best
    per["epochs_to_threshold"] = per["run_id"].map(_epochs_to(runs, history, threshold))
    rows = []
    for m in ("cce", "mae"):
        p = per[per["method"] == m]
        b, e = mean_se(100 * p["peak"]), mean_se(p["epochs_to_threshold"])
        rows.append({"method": m, "n": b[2], "best_mean": b[0], "best_se": b[1], "epochs_mean": e[0],
                     "epochs_se": e[1], "threshold": 100 * threshold})
    return pd.DataFrame(rows).set_index("method")


def check_mae_slower_clean(results: Results) -> Verdict:
    """Holds if, on clean labels on the 10-class block (CIFAR-10 or its pocket analogue), MAE's mean number
    of epochs to reach 90 % of CCE's mean best test accuracy exceeds CCE's by more than the larger standard
    error; fails otherwise.

    A run that never reaches the threshold counts as its last epoch + 1.
    """
    block = _clean_block(results, "fig1", "cifar10")
    if block is None:
        return _untestable("no clean-label CCE and MAE runs of fig1 on a 10-class dataset are stored")
    t = _mae_vs_cce_clean(*block)
    c, m = t.loc["cce"], t.loc["mae"]
    ok = _beats((m["epochs_mean"], m["epochs_se"]), (c["epochs_mean"], c["epochs_se"]))
    return _decide(ok, f"epochs to {c['threshold']:.1f}% test accuracy: MAE {m['epochs_mean']:.1f} ± "
                       f"{m['epochs_se']:.1f}, CCE {c['epochs_mean']:.1f} ± {c['epochs_se']:.1f} (mean ± s.e., "
                       f"{int(c['n'])} seeds)", t.reset_index())


def check_mae_lower_clean(results: Results) -> Verdict:
    """Holds if, on clean labels on the 10-class block, CCE's mean best test accuracy exceeds MAE's by more
    than the larger standard error; fails otherwise."""
    block = _clean_block(results, "fig1", "cifar10")
    if block is None:
        return _untestable("no clean-label CCE and MAE runs of fig1 on a 10-class dataset are stored")
    t = _mae_vs_cce_clean(*block)
    c, m = t.loc["cce"], t.loc["mae"]
    ok = _beats((c["best_mean"], c["best_se"]), (m["best_mean"], m["best_se"]))
    return _decide(ok, f"best test accuracy: CCE {c['best_mean']:.2f} ± {c['best_se']:.2f}%, MAE "
                       f"{m['best_mean']:.2f} ± {m['best_se']:.2f}% ({int(c['n'])} seeds)", t.reset_index())


def check_mae_fails_many_classes(results: Results) -> Verdict:
    """Holds if, on clean labels on the 100-class block (CIFAR-100 or its pocket analogue), CCE's mean best
    test accuracy exceeds MAE's by more than the larger standard error, and this gap exceeds the 10-class
    block's gap by more than the larger standard error there; fails otherwise.

    Not testable without clean CCE and MAE runs on both blocks.
    """
    many = _clean_block(results, "fig1", "cifar100")
    few = _clean_block(results, "fig1", "cifar10")
    if many is None:
        return _untestable("no clean-label CCE and MAE runs of fig1 on a 100-class dataset are stored")
    if few is None:
        return _untestable("no clean-label CCE and MAE runs of fig1 on a 10-class dataset to compare with")
    rows, gaps = [], {}
    for name, block in (("100 classes", many), ("10 classes", few)):
        t = _mae_vs_cce_clean(*block)
        c, m = t.loc["cce"], t.loc["mae"]
        gaps[name] = (c["best_mean"] - m["best_mean"], max(c["best_se"], m["best_se"]))
        rows.append({"block": name, "cce_best": c["best_mean"], "mae_best": m["best_mean"],
                     "gap": gaps[name][0], "larger_se": gaps[name][1], "n": c["n"]})
    g100, g10 = gaps["100 classes"], gaps["10 classes"]
    ok = g100[0] > g100[1] and g100[0] - g10[0] > g10[1]
    return _decide(ok, f"CCE - MAE in best test accuracy: {g100[0]:.2f} points with 100 classes, {g10[0]:.2f} "
                       f"with 10", pd.DataFrame(rows))


# --------------------------------------------------------------------------- Sec. 4.1 (Fig. 1c, Fig. 2)


def _fig1c(results: Results):
    got = _frames(results, "fig1")
    if got is None:
        return None
    runs, history = got
    noisy = runs[runs["noise"] == "uniform"]
    ten = noisy[noisy["dataset"].map(lambda d: _stands_for(d, "cifar10"))]  # Fig. 1(c) is CIFAR-10's
    noisy = ten if len(ten) else noisy
    return (noisy, history) if len(noisy) else None


def check_cce_memorises(results: Results) -> Verdict:
    """Holds if, under Fig. 1(c)'s uniform noise, CCE's mean drop from its peak test accuracy to the last
    epoch exceeds both :data:`TOL` (1 point) and its standard error; fails otherwise."""
    got = _fig1c(results)
    if got is None or "cce" not in set(got[0]["method"]):
        return _untestable("no CCE runs with uniform noise (Fig. 1c) of fig1 are stored")
    runs, history = got
    per = _per_run(runs[runs["method"] == "cce"], history)
    d = mean_se(per["drop"])
    p, e = mean_se(100 * per["peak"]), mean_se(per["peak_epoch"])
    eta = float(runs["eta"].iloc[0])
    numbers = pd.DataFrame([{"eta": eta, "n": d[2], "peak_mean": p[0], "peak_epoch_mean": e[0],
                             "drop_mean": 100 * d[0], "drop_se": 100 * d[1]}])
    return _decide(d[0] > max(TOL, d[1]), f"eta = {eta:g}: CCE peaks at {p[0]:.2f}% near epoch {e[0]:.1f}, then "
                                          f"drops {100 * d[0]:.2f} ± {100 * d[1]:.2f} points", numbers)


def check_cce_noisy_softmax_rises(results: Results) -> Verdict:
    """Holds if, under Fig. 1(c)'s uniform noise, CCE's mean softmax at the wrong (noisy) labels of the
    training samples ends (last epoch) at more than twice its minimum over epochs, and the mean rise from
    each run's minimum to its last epoch exceeds its standard error; fails otherwise."""
    got = _fig1c(results)
    if got is None or "cce" not in set(got[0]["method"]):
        return _untestable("no CCE runs with uniform noise (Fig. 1c) of fig1 are stored")
    runs, history = got
    h = history[history["run_id"].isin(runs.loc[runs["method"] == "cce", "run_id"])].dropna(
        subset=["softmax_noisy"])
    if not len(h):
        return _untestable("the CCE runs of Fig. 1(c) stored no training softmax")
    curve = h.groupby("epoch")["softmax_noisy"].mean()
    rise = mean_se(h.groupby("run_id").apply(lambda g: g.sort_values("epoch")["softmax_noisy"].iloc[-1]
                                             - g["softmax_noisy"].min(), include_groups=False))
    numbers = pd.DataFrame([{"min": curve.min(), "min_epoch": float(curve.idxmin()), "last": curve.iloc[-1],
                             "last_epoch": float(curve.index[-1]), "rise_mean": rise[0], "rise_se": rise[1],
                             "n": rise[2]}])
    ok = curve.iloc[-1] > 2 * curve.min() and rise[0] > rise[1]
    return _decide(ok, f"CCE's wrong-label softmax: minimum {curve.min():.3f} at epoch {curve.idxmin()}, "
                       f"{curve.iloc[-1]:.3f} at the last epoch ({curve.index[-1]})", numbers)


def check_lq_separates_noisy_labels(results: Results) -> Verdict:
    """Holds if, under Fig. 1(c)'s uniform noise, the mean softmax at wrong labels at the last epoch is
    lower for L_q than for CCE by more than the larger standard error; fails otherwise."""
    got = _fig1c(results)
    if got is None or not {"cce", "lq"} <= set(got[0]["method"]):
        return _untestable("no CCE and L_q runs with uniform noise (Fig. 1c) of fig1 are stored")
    runs, history = got
    last = history[history["run_id"].isin(runs["run_id"])].sort_values("epoch").groupby("run_id").tail(1)
    last = last.merge(runs[["run_id", "method"]], on="run_id").dropna(subset=["softmax_noisy"])
    if not len(last):
        return _untestable("the runs of Fig. 1(c) stored no training softmax")
    s = {m: mean_se(last.loc[last["method"] == m, "softmax_noisy"]) for m in ("cce", "lq")}
    numbers = pd.DataFrame([{"method": m, "mean": v[0], "se": v[1], "n": v[2]} for m, v in s.items()])
    return _decide(_beats(s["cce"], s["lq"]), f"wrong-label softmax at the last epoch: L_q {s['lq'][0]:.3f} ± "
                                              f"{s['lq'][1]:.3f}, CCE {s['cce'][0]:.3f} ± {s['cce'][1]:.3f}",
                   numbers)


def check_q07_no_overfitting(results: Results) -> Verdict:
    """Holds if L_q with q = 0.7 under Fig. 1(c)'s uniform noise (eta = 0.4 <= 0.5) has a mean drop from its
    peak test accuracy to the last epoch of at most :data:`TOL` (1 point); fails otherwise."""
    got = _fig1c(results)
    if got is None:
        return _untestable("no L_q runs with uniform noise (Fig. 1c) of fig1 are stored")
    runs, history = got
    lq = runs[(runs["method"] == "lq") & np.isclose(runs["q"].astype(float), 0.7)]
    if not len(lq):
        return _untestable("no L_q runs with q = 0.7 under uniform noise of fig1 are stored")
    per = _per_run(lq, history)
    d = mean_se(per["drop"])
    eta = float(lq["eta"].iloc[0])
    numbers = pd.DataFrame([{"eta": eta, "q": 0.7, "n": d[2], "drop_mean": 100 * d[0], "drop_se": 100 * d[1],
                             "peak_epoch_mean": per["peak_epoch"].mean()}])
    return _decide(d[0] <= TOL, f"eta = {eta:g}, q = 0.7: mean drop {100 * d[0]:.2f} ± {100 * d[1]:.2f} points "
                                f"(tolerance {100 * TOL:g})", numbers)


def check_q08_no_overfitting_eta02(results: Results) -> Verdict:
    """Holds if, in Fig. 2's grid at eta = 0.2, L_q with q = 0.8 has a mean drop from its peak test accuracy
    to the last epoch of at most :data:`TOL` (1 point); fails otherwise."""
    got = _fig2(results)
    if got is None:
        return _untestable("no fig2 runs are stored")
    per = got[2]
    sel = per[np.isclose(per["eta"], 0.2) & np.isclose(per["q"], 0.8)]
    if not len(sel):
        return _untestable("fig2 has no runs with q = 0.8 at eta = 0.2")
    d = mean_se(sel["drop"])
    numbers = pd.DataFrame([{"eta": 0.2, "q": 0.8, "n": d[2], "drop_mean": 100 * d[0], "drop_se": 100 * d[1]}])
    return _decide(d[0] <= TOL, f"eta = 0.2, q = 0.8: mean drop {100 * d[0]:.2f} ± {100 * d[1]:.2f} points "
                                f"(tolerance {100 * TOL:g})", numbers)


def _fig2(results: Results):
    got = _frames(results, "fig2")
    if got is None:
        return None
    runs, history = got
    per = _per_run(runs, history).merge(runs[["run_id", "eta"]], on="run_id")
    per["q"] = per["run_id"].map(dict(zip(runs["run_id"], analysis.fig2_q(runs))))
    return runs, history, per


def check_larger_q_slower_clean(results: Results) -> Verdict:
    """Holds if, on clean labels in Fig. 2's grid, the largest q's mean number of epochs to reach 90 % of
    CCE's (q = 0) mean best test accuracy exceeds CCE's by more than the larger standard error; fails
    otherwise (runs that never reach it count as their last epoch + 1)."""
    got = _fig2(results)
    if got is None:
        return _untestable("no fig2 runs are stored")
    runs, history, per = got
    clean = per[per["eta"] == 0.0]
    if clean["q"].nunique() < 2 or 0.0 not in set(clean["q"]):
        return _untestable("fig2 has no clean-label runs for CCE and a larger q")
    threshold = 0.9 * clean.loc[clean["q"] == 0.0, "peak"].mean()
    clean = clean.assign(epochs=clean["run_id"].map(_epochs_to(runs, history, threshold)))
    rows = [{"q": q, **dict(zip(("epochs_mean", "epochs_se", "n"), mean_se(g["epochs"])))}
            for q, g in clean.groupby("q")]
    t = pd.DataFrame(rows)
    lo, hi = t.iloc[0], t.iloc[-1]
    ok = _beats((hi["epochs_mean"], hi["epochs_se"]), (lo["epochs_mean"], lo["epochs_se"]))
    return _decide(ok, f"epochs to {100 * threshold:.1f}%: q = {hi['q']:g} {hi['epochs_mean']:.1f} ± "
                       f"{hi['epochs_se']:.1f}, CCE {lo['epochs_mean']:.1f} ± {lo['epochs_se']:.1f}",
                   t.assign(threshold=100 * threshold))


def check_larger_q_delays_overfitting(results: Results) -> Verdict:
    """Holds if, at every noise rate eta > 0 of Fig. 2's grid, the largest q peaks later than CCE (mean peak
    epoch larger by more than the larger standard error) and loses less after its peak (mean drop smaller
    by more than the larger standard error); fails otherwise."""
    got = _fig2(results)
    if got is None:
        return _untestable("no fig2 runs are stored")
    _, _, per = got
    noisy = per[per["eta"] > 0]
    if not len(noisy) or 0.0 not in set(noisy["q"]) or noisy["q"].nunique() < 2:
        return _untestable("fig2 has no noisy runs for CCE and a larger q")
    rows = []
    for eta, g in noisy.groupby("eta"):
        qmax = g["q"].max()
        a, b = g[g["q"] == 0.0], g[g["q"] == qmax]
        pe = (mean_se(b["peak_epoch"]), mean_se(a["peak_epoch"]))
        dr = (mean_se(100 * a["drop"]), mean_se(100 * b["drop"]))
        rows.append({"eta": eta, "q": qmax, "peak_epoch_q": pe[0][0], "peak_epoch_cce": pe[1][0],
                     "drop_q": dr[1][0], "drop_cce": dr[0][0], "later": float(_beats(*pe)),
                     "smaller_drop": float(_beats(*dr))})
    t = pd.DataFrame(rows)
    ok = bool((t["later"] == 1).all() and (t["smaller_drop"] == 1).all())
    return _decide(ok, "; ".join(f"eta = {r.eta:g}: peak epoch {r.peak_epoch_cce:.1f} -> {r.peak_epoch_q:.1f}, "
                                 f"drop {r.drop_cce:.2f} -> {r.drop_q:.2f} points (CCE -> q = {r.q:g})"
                                 for r in t.itertuples()), t)


def _thresholds(results: Results):
    got = _fig2(results)
    if got is None:
        return None
    runs, history, _ = got
    table = analysis.overfitting_table(runs, history)
    return analysis.overfitting_threshold(table, tol=TOL)


def check_threshold_exists(results: Results) -> Verdict:
    """Holds if, at every noise rate of Fig. 2's grid, some q of the grid has a mean drop of at most
    :data:`TOL` (1 point), as has every larger q of the grid
    (:func:`gce.analysis.overfitting_threshold`); fails if at some eta even the largest q drops more."""
    thr = _thresholds(results)
    if thr is None:
        return _untestable("no fig2 runs are stored")
    numbers = thr.rename("threshold_q").reset_index()
    missing = [f"{e:g}" for e, v in thr.items() if v != v]
    return _decide(not missing, "threshold q: " + ", ".join(
        f"eta = {e:g}: {'none in the grid' if v != v else f'{v:g}'}" for e, v in thr.items()), numbers)


def check_threshold_grows(results: Results) -> Verdict:
    """Holds if the threshold q of Fig. 2 (see ``threshold_exists``; "none in the grid" counts as above the
    largest q) never decreases with eta and is larger at the largest eta than at the smallest; fails
    otherwise.  Not testable with fewer than two noise rates."""
    thr = _thresholds(results)
    if thr is None:
        return _untestable("no fig2 runs are stored")
    if len(thr) < 2:
        return _untestable("fig2 has fewer than two noise rates")
    v = thr.fillna(np.inf).sort_index().to_numpy()
    ok = bool(np.all(v[1:] >= v[:-1]) and v[-1] > v[0])
    return _decide(ok, "threshold q by eta: " + ", ".join(
        f"{e:g}: {'above the grid' if q != q else f'{q:g}'}" for e, q in thr.items()),
        thr.rename("threshold_q").reset_index())


# --------------------------------------------------------------------------- Sec. 4.3 (Table 1, Table 2)


def _table1_stats(results: Results):
    got = _frames(results, "table1")
    if got is None:
        return None
    runs = got[0]
    rows = []
    for (d, noise, eta, m), g in runs.groupby(["dataset", "noise", "eta", "method"], sort=False):
        mu, se, n = mean_se(100 * g["test_acc_best_val"])
        rows.append({"dataset": d, "noise": noise, "eta": float(eta), "method": m, "mean": mu, "se": se, "n": n})
    return pd.DataFrame(rows)


def _wins(stats: pd.DataFrame, winner: str, losers: Sequence[str], noise: str | None) -> pd.DataFrame:
    """Per dataset and setting: does ``winner`` beat every method of ``losers``?"""
    s = stats if noise is None else stats[stats["noise"] == noise]
    rows = []
    for (d, nz, eta), g in s.groupby(["dataset", "noise", "eta"], sort=False):
        g = g.set_index("method")
        if winner not in g.index or not all(m in g.index for m in losers):
            continue
        w = (g.loc[winner, "mean"], g.loc[winner, "se"])
        row = {"dataset": d, "noise": nz, "eta": eta, f"{winner}_mean": w[0], f"{winner}_se": w[1]}
        for m in losers:
            row[f"{m}_mean"] = g.loc[m, "mean"]
        row["wins"] = float(all(_beats(w, (g.loc[m, "mean"], g.loc[m, "se"])) for m in losers))
        rows.append(row)
    return pd.DataFrame(rows)


def _per_block(t: pd.DataFrame, needed: int, what: str) -> tuple[bool, str]:
    parts, ok = [], True
    for d, g in t.groupby("dataset", sort=False):
        k = int(g["wins"].sum())
        ok &= k >= needed
        parts.append(f"{d}: {k} of {len(g)}")
    return ok, f"{what} in " + ", ".join(parts) + f" settings (needs {needed} per block)"


def _gce_beats_uniform(results: Results, method: str) -> Verdict:
    stats = _table1_stats(results)
    if stats is None:
        return _untestable("no table1 runs are stored")
    losers = ("cce", "mae", "forward_T", "forward_T_hat")
    t = _wins(stats, method, losers, "uniform")
    if not len(t):
        return _untestable(f"table1 has no uniform-noise block with {method}, CCE, MAE, Forward T and T_hat")
    ok, why = _per_block(t, 3, f"{analysis.METHOD_LABELS[method]} beats CCE, MAE, Forward T and T_hat")
    return _decide(ok, why, t)


def check_lq_beats_baselines_uniform(results: Results) -> Verdict:
    """Holds if, in every dataset block of Table 1, L_q's mean beats each of CCE, MAE, Forward T and
    Forward T_hat by more than the larger standard error in at least 3 of the 4 uniform-noise settings;
    fails otherwise."""
    return _gce_beats_uniform(results, "lq")


def check_trunc_beats_baselines_uniform(results: Results) -> Verdict:
    """Holds if, in every dataset block of Table 1, truncated L_q's mean beats each of CCE, MAE, Forward T
    and Forward T_hat by more than the larger standard error in at least 3 of the 4 uniform-noise
    settings; fails otherwise."""
    return _gce_beats_uniform(results, "trunc_lq")


def check_truncation_improves(results: Results) -> Verdict:
    """Holds if, in every dataset block of Table 1, truncated L_q beats L_q (by more than the larger
    standard error) in at least half of the noise settings and in more settings than L_q beats it; fails
    otherwise.

    Not testable in a block where fewer than half of the truncated runs report a model selected after the
    first pruning step (``best_epoch >= prune_start``): there the reported model is the plain L_q model,
    and truncation cannot have changed the result.
    """
    got = _frames(results, "table1")
    if got is None:
        return _untestable("no table1 runs are stored")
    runs = got[0]
    trunc = runs[runs["method"] == "trunc_lq"]
    if not len(trunc):
        return _untestable("table1 has no truncated L_q runs")
    engaged = (trunc["best_epoch"] >= trunc["prune_start"]).groupby(trunc["dataset"], sort=False).mean()
    stats = _table1_stats(results)
    t = _wins(stats, "trunc_lq", ("lq",), None)
    back = _wins(stats, "lq", ("trunc_lq",), None)
    t["lq_wins"] = back["wins"].to_numpy()
    t["engaged"] = t["dataset"].map(engaged)
    idle = [d for d, share in engaged.items() if share < 0.5]
    if idle:
        return Verdict(NOT_TESTABLE, "the reported epoch came after the first pruning step in only " + ", ".join(
            f"{100 * engaged[d]:.0f}% of the truncated runs on {d}" for d in idle) + " (needs half)", t)
    ok = all(g["wins"].sum() >= len(g) / 2 and g["wins"].sum() > g["lq_wins"].sum()
             for _, g in t.groupby("dataset"))
    return _decide(ok, "; ".join(f"{d}: truncated L_q better in {int(g['wins'].sum())}, L_q better in "
                                 f"{int(g['lq_wins'].sum())} of {len(g)} settings" for d, g in
                                 t.groupby("dataset", sort=False)), t)


def check_forward_T_best_class_dependent(results: Results) -> Verdict:
    """Holds if, in every dataset block of Table 1, Forward T (the true T) has the highest mean of all
    methods (a tie for the highest counts) in at least 3 of the 4 class-dependent settings; fails
    otherwise."""
    stats = _table1_stats(results)
    if stats is None:
        return _untestable("no table1 runs are stored")
    s = stats[stats["noise"] == "class_dependent"]
    rows = []
    for (d, eta), g in s.groupby(["dataset", "eta"], sort=False):
        g = g.set_index("method")
        if "forward_T" not in g.index or len(g) < 2:
            continue
        others = g.drop(index="forward_T")
        rows.append({"dataset": d, "eta": eta, "forward_T_mean": g.loc["forward_T", "mean"],
                     "best_other_mean": others["mean"].max(),
                     "wins": float(g.loc["forward_T", "mean"] >= others["mean"].max())})
    if not rows:
        return _untestable("table1 has no class-dependent block with Forward T and other methods")
    t = pd.DataFrame(rows)
    ok, why = _per_block(t, 3, "Forward T has the highest mean")
    return _decide(ok, why, t)


def check_mae_poor(results: Results) -> Verdict:
    """Holds if, in every dataset block of Table 1, MAE's mean is below CCE's by more than the larger
    standard error in at least 5 of the 8 noise settings; fails otherwise."""
    stats = _table1_stats(results)
    if stats is None:
        return _untestable("no table1 runs are stored")
    t = _wins(stats, "cce", ("mae",), None)
    if not len(t):
        return _untestable("table1 has no block with both CCE and MAE")
    ok, why = _per_block(t, 5, "MAE is below CCE")
    return _decide(ok, why, t)


def _table2_stats(results: Results, noise: str):
    got = _frames(results, "table2")
    if got is None:
        return None
    runs = got[0]
    r = runs[runs["noise"] == noise]
    return {m: mean_se(100 * g["test_acc_last"]) for m, g in r.groupby("method", sort=False)}


def check_trunc_best_open_set(results: Results) -> Verdict:
    """Holds if, under Table 2's open-set noise, truncated L_q's mean last-epoch test accuracy beats every
    other stored method's by more than the larger standard error; fails otherwise."""
    s = _table2_stats(results, "open_set")
    if not s or "trunc_lq" not in s or len(s) < 2:
        return _untestable("no open-set runs of truncated L_q and other methods (table2) are stored")
    numbers = pd.DataFrame([{"method": m, "mean": v[0], "se": v[1], "n": v[2]} for m, v in s.items()])
    best_other = max((m for m in s if m != "trunc_lq"), key=lambda m: s[m][0])
    ok = all(_beats(s["trunc_lq"], v) for m, v in s.items() if m != "trunc_lq")
    return _decide(ok, f"truncated L_q {s['trunc_lq'][0]:.2f} ± {s['trunc_lq'][1]:.2f}%, best other "
                       f"({analysis.METHOD_LABELS[best_other]}) {s[best_other][0]:.2f} ± {s[best_other][1]:.2f}%",
                   numbers)


def check_gce_beats_cce_open_set(results: Results) -> Verdict:
    """Holds if, under Table 2's open-set noise, both L_q and truncated L_q beat both CCE and Forward T_hat
    (mean last-epoch test accuracy larger by more than the larger standard error); fails otherwise."""
    s = _table2_stats(results, "open_set")
    need = ("lq", "trunc_lq", "cce", "forward_T_hat")
    if not s or not all(m in s for m in need):
        return _untestable("table2 has no open-set runs of L_q, truncated L_q, CCE and Forward T_hat")
    numbers = pd.DataFrame([{"method": m, "mean": s[m][0], "se": s[m][1], "n": s[m][2]} for m in need])
    pairs = [(a, b) for a in ("lq", "trunc_lq") for b in ("cce", "forward_T_hat")]
    won = [f"{analysis.METHOD_LABELS[a]} > {analysis.METHOD_LABELS[b]}" for a, b in pairs if _beats(s[a], s[b])]
    return _decide(len(won) == len(pairs), f"{len(won)} of {len(pairs)} comparisons won"
                   + (f" ({', '.join(won)})" if won else "") + "; " + ", ".join(
                       f"{analysis.METHOD_LABELS[m]} {s[m][0]:.2f}" for m in need), numbers)


# --------------------------------------------------------------------------- the registry


CLAIMS: tuple[Claim, ...] = (
    Claim("mae_slower_clean", "3.2", "On clean labels MAE learns more slowly than CCE: it needs more epochs to "
          "reach a given test accuracy (Fig. 1a).", ("fig1",), check_mae_slower_clean),
    Claim("mae_lower_clean", "3.2", "On clean labels MAE also ends lower than CCE: its best test accuracy is "
          "smaller (Fig. 1a).", ("fig1",), check_mae_lower_clean),
    Claim("mae_fails_many_classes", "3.2", "With 100 classes MAE falls much further behind CCE than with 10 "
          "(Fig. 1b).", ("fig1",), check_mae_fails_many_classes),
    Claim("cce_memorises", "4.1", "Under label noise CCE first learns the clean signal, then fits the wrong "
          "labels: its test accuracy peaks and falls (Fig. 1c).", ("fig1",), check_cce_memorises),
    Claim("cce_noisy_softmax_rises", "4.1", "CCE's softmax at the wrong labels first sinks, then climbs again as "
          "it memorises them (Fig. 1c).", ("fig1",), check_cce_noisy_softmax_rises),
    Claim("lq_separates_noisy_labels", "4.1", "L_q keeps the softmax at wrong labels lower than CCE does, so "
          "wrongly labelled samples stand apart (Fig. 1c).", ("fig1",), check_lq_separates_noisy_labels),
    Claim("q07_no_overfitting", "4.1", "With q = 0.7, L_q does not overfit at a noise rate of 0.4 (at most "
          "0.5).", ("fig1",), check_q07_no_overfitting),
    Claim("larger_q_slower_clean", "4.1", "On clean labels a larger q converges more slowly (Fig. 2).",
          ("fig2",), check_larger_q_slower_clean),
    Claim("larger_q_delays_overfitting", "4.1", "Under noise a larger q reaches its peak later and loses less "
          "after it (Fig. 2).", ("fig2",), check_larger_q_delays_overfitting),
    Claim("threshold_exists", "4.1", "For each noise rate there is a q above which no overfitting sets in "
          "(Fig. 2).", ("fig2",), check_threshold_exists),
    Claim("q08_no_overfitting_eta02", "4.1", "At a noise rate of 0.2, L_q with q = 0.8 trains without "
          "overfitting (Fig. 2).", ("fig2",), check_q08_no_overfitting_eta02),
    Claim("threshold_grows", "4.1", "That threshold q grows with the noise rate (Fig. 2).", ("fig2",),
          check_threshold_grows),
    Claim("lq_beats_baselines_uniform", "4.3", "Under uniform noise L_q beats every baseline: CCE, MAE and "
          "forward correction, even with the true T (Table 1).", ("table1",), check_lq_beats_baselines_uniform),
    Claim("trunc_beats_baselines_uniform", "4.3", "Under uniform noise truncated L_q beats every baseline: CCE, "
          "MAE and forward correction, even with the true T (Table 1).", ("table1",),
          check_trunc_beats_baselines_uniform),
    Claim("truncation_improves", "4.3", "Truncating L_q improves on L_q (Table 1).", ("table1",),
          check_truncation_improves),
    Claim("forward_T_best_class_dependent", "4.3", "Under class-dependent noise, forward correction with the "
          "true T is the best method (Table 1).", ("table1",), check_forward_T_best_class_dependent),
    Claim("mae_poor", "4.3", "MAE does poorly on every dataset: worse than plain CCE (Table 1).", ("table1",),
          check_mae_poor),
    Claim("trunc_best_open_set", "4.3", "Under open-set noise truncated L_q is the best method (Table 2).",
          ("table2",), check_trunc_best_open_set),
    Claim("gce_beats_cce_open_set", "4.3", "Under open-set noise L_q and truncated L_q beat CCE and Forward "
          "T_hat (Table 2).", ("table2",), check_gce_beats_cce_open_set),
)


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


# --------------------------------------------------------------------------- reading stored results


def stored_results(name: str, scale: str | None = None, results_dir: str | os.PathLike | None = None):
    """The stored ``(runs, history)`` of experiment ``name`` at ``scale`` that belong to its current grid
    (:func:`gce.experiments.spec`), or None if none is stored.  Never trains: when every run of the grid is
    stored they are read through :func:`gce.experiments.run` (which then has nothing to train); otherwise
    the runs that are stored are read from the :class:`gce.store.ResultStore`."""
    scale = experiments.default_scale() if scale is None else scale
    results_dir = experiments.default_results_dir() if results_dir is None else results_dir
    ids = {experiments.run_id(c) for c in experiments.spec(name, scale).configs}
    store = experiments.ResultStore(results_dir, scale, name)
    if ids and ids <= store.done():
        _, store = experiments.run(name, scale, results=results_dir, progress=False)
    if not len(store.runs):
        return None
    runs = store.runs[store.runs["run_id"].isin(ids)].reset_index(drop=True)
    if not len(runs):
        return None
    return runs, store.history[store.history["run_id"].isin(runs["run_id"])].reset_index(drop=True)


def scales_with_results(results_dir: str | os.PathLike | None = None) -> list[str]:
    """The scales of :data:`gce.experiments.SCALES` at which some experiment has stored runs of its grid."""
    return [s for s in experiments.SCALES
            if any(stored_results(e, s, results_dir) is not None for e in experiments.EXPERIMENTS)]


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
    :func:`gce.experiments.default_results_dir`).
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

import textwrap  # noqa: E402  (used by this display section only)

__all__ += ["TEXT_WIDTH", "numbers_text", "format_check", "format_verdicts"]

#: Width, in characters, that the display helpers fill by default; the book's code and text boxes
#: (tests/test_render.py) fit about 88 characters without a scroll bar.
TEXT_WIDTH = 88
_NBSP = "\u00a0"
#: Spaces the wrapping keeps ("eta = 0.6", "13.8 ± 0.4", "Fig. 2", "0 of 4", "5 seeds" stay on one line).
_UNBROKEN = re.compile(r" (?=[=±] )|(?<= [=±]) |(?<=\b(?:Fig|Sec)\.) |(?<=\bTable) "
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
