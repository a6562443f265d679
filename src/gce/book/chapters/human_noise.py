"""Helpers of the chapter "Real human label noise" (book/human_noise.ipynb): the theorems on real label sets.

The chapter measures the CIFAR-10N and CIFAR-100N label sets shipped with the
package (:mod:`gce.human_noise`).  :func:`theorem_promises` says what Theorem 1
and Theorem 2 (Sec. 3.1, Eq. 8) promise for each label set against what the
exact minimisers do; :func:`superclass_numbers` gives the numbers the chapter
quotes about where CIFAR-100N's wrong labels go.  The label sets' own
measurements stay in :mod:`gce.human_noise`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ... import human_noise
from .. import stats, theory
from ..experiments import METHOD_LABELS

__all__ = ["confusion_table", "distance_table", "theorem_promises", "promise_glue", "superclass_numbers",
           "twin_table", "twin_differences", "twin_words"]


def confusion_table(top: pd.DataFrame, names, paper_pairs) -> pd.DataFrame:
    """The commonest human confusions as the chapter "Real human label noise" shows them.

    Parameters
    ----------
    top : pandas.DataFrame
        Rows of :func:`gce.human_noise.top_confusions` (columns ``clean``, ``noisy``, ``count``, ``rate``,
        ``share``).
    names : sequence of str
        The class names, indexed by label.
    paper_pairs : dict[int, int]
        The paper's class-dependent flips, source to target (Sec. 4.2, :func:`gce.noise.flip_map`).

    Returns
    -------
    pandas.DataFrame
        One row per row of ``top``: ``true`` and ``human label`` (class names), ``images``, ``% of the class``
        and ``% of all wrong labels`` (rounded to 0.1), and ``in the paper's map`` (whether the paper flips
        that true class to that label).
    """
    missing = {"clean", "noisy", "count", "rate", "share"} - set(top.columns)
    if missing:
        raise ValueError(f"top lacks the columns {sorted(missing)}")
    return pd.DataFrame({
        "true": [names[i] for i in top["clean"]],
        "human label": [names[j] for j in top["noisy"]],
        "images": top["count"], "% of the class": np.round(100 * top["rate"], 1),
        "% of all wrong labels": np.round(100 * top["share"], 1),
        "in the paper's map": [paper_pairs.get(int(i)) == int(j) for i, j in zip(top["clean"], top["noisy"])]})


def distance_table(models: dict) -> pd.DataFrame:
    """How far each noise model is from uniform noise (Sec. 3.1), as the chapter "Real human label noise"
    tabulates it with :func:`gce.human_noise.distance_from_uniform`.

    Parameters
    ----------
    models : dict[str, array-like]
        Transition matrices ``c x c`` (rows: true class), by the name the table shows.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``classes``, ``mean TV from uniform`` and ``max TV possible`` (``1 - 1/(c - 1)``,
        rounded to 0.001), ``effective targets`` (mean over classes, rounded to 0.01), ``of (c - 1)`` and
        ``rate spread (%)`` (rounded to 0.1).
    """
    rows = {}
    for name, T in models.items():
        if len(T) < 2:
            raise ValueError(f"{name!r} has {len(T)} classes; the distance from uniform needs at least 2")
        d = human_noise.distance_from_uniform(T)
        rows[name] = {"classes": len(T), "mean TV from uniform": round(d["tv_mean"], 3),
                      "max TV possible": round(1 - 1 / (len(T) - 1), 3),
                      "effective targets": round(float(np.nanmean(d["effective_targets"])), 2),
                      "of (c - 1)": len(T) - 1,
                      "rate spread (%)": round(100 * d["rate_spread"], 1)}
    return pd.DataFrame.from_dict(rows, orient="index")


def theorem_promises(label_sets=("aggre", "random1", "worse", "noisy"), q: float = 0.7) -> pd.DataFrame:
    """Theorem 1's and Theorem 2's bounds (Eq. 8) for real label sets, beside the exact gaps, one row per set.

    For each label set of :data:`gce.human_noise.LABEL_SETS` the hypothesis
    class is every map from the ``c`` true classes (inputs, weighted by the
    label set's class prior) to the closed simplex, and every label is
    deterministic given its class, so the minimisers ``f*`` (clean) and
    ``f_hat`` (noisy labels, with the label set's transition matrix) are exact
    (:func:`gce.book.theory.pointwise_risk_gaps`).  Columns: ``noise rate``;
    ``Thm 1's A if uniform`` (:func:`gce.book.theory.theorem1_A` at that rate, as if
    the noise were uniform); ``clean gap R(f*) - R(f_hat)``; ``Thm 2 applies``
    (every class keeps its label most often, :func:`gce.human_noise.theorem2_margins`);
    ``Thm 2's B`` (:func:`gce.book.theory.theorem2_B`, NaN where it does not apply);
    ``noisy gap`` (``R^eta(f*) - R^eta(f_hat)``, what ``B`` bounds) and
    ``classes f_hat gets wrong``.  Unrounded.
    """
    rows = {}
    for s in label_sets:
        if s not in human_noise.LABEL_SETS:
            raise ValueError(f"unknown label set {s!r}; known: {', '.join(human_noise.LABEL_SETS)}")
        T, C = human_noise.human_transition(s).numpy(), human_noise.shipped_counts(s)
        c = len(T)
        prior = C.sum(axis=1) / C.sum()
        gaps = theory.pointwise_risk_gaps(np.eye(c), T, q, weights=prior)
        rate = human_noise.noise_rate(C)
        holds = bool((human_noise.theorem2_margins(T) > 0).all())
        rows[s] = {"noise rate": rate, "Thm 1's A if uniform": float(theory.theorem1_A(rate, q, c)),
                   "clean gap R(f*) - R(f_hat)": gaps["clean_gap"], "Thm 2 applies": holds,
                   "Thm 2's B": theory.theorem2_B(T, np.eye(c), q, weights=prior) if holds else np.nan,
                   "noisy gap": gaps["noisy_gap"],
                   "classes f_hat gets wrong": int((gaps["f_hat"].argmax(axis=1) != np.arange(c)).sum())}
    return pd.DataFrame.from_dict(rows, orient="index")


def promise_glue(promises: pd.DataFrame) -> dict[str, float | int]:
    """The numbers of :func:`theorem_promises`'s table that the chapter's prose quotes, by glue name.

    Per label set ``s``, in this order: ``gap_s`` (clean gap), ``A_s``, ``B_s``
    (only where Theorem 2 applies), ``noisygap_s`` and ``wrong_s``; floats and
    ints, not numpy scalars.
    """
    out: dict[str, float | int] = {}
    for s, row in promises.iterrows():
        out[f"gap_{s}"] = float(row["clean gap R(f*) - R(f_hat)"])
        out[f"A_{s}"] = float(row["Thm 1's A if uniform"])
        if row["Thm 2 applies"]:
            out[f"B_{s}"] = float(row["Thm 2's B"])
        out[f"noisygap_{s}"] = float(row["noisy gap"])
        out[f"wrong_{s}"] = int(row["classes f_hat gets wrong"])
    return out


def superclass_numbers(counts, coarse=None) -> dict[str, float | int | str]:
    """Where CIFAR-100N's wrong labels go, as the numbers the chapter quotes, by glue name.

    ``counts`` is a 100-class count matrix (rows: true class, columns: human
    label), ``coarse`` the super-class of each class (default
    :func:`gce.human_noise.coarse_labels`).  Returns, in percent of the wrong
    labels: ``super_share`` (within the true class's super-class,
    :func:`gce.human_noise.superclass_share`), ``super_uniform`` (what uniform
    noise gives, 4 of 99), ``next_share`` (to the next class, the paper's
    CIFAR-100 flips) and ``next_uniform`` (1 of 99); ``super_ratio``
    (``super_share / super_uniform``); and for the super-classes that keep the
    most and the least of their wrong labels inside
    (:func:`gce.human_noise.superclass_shares`), ``super_most_name``,
    ``super_most_index``, ``super_most_share`` and the same for ``least``.
    """
    coarse = human_noise.coarse_labels() if coarse is None else np.asarray(coarse)
    super_share = human_noise.superclass_share(counts, coarse)
    out: dict[str, float | int | str] = {
        "super_share": 100 * super_share, "super_uniform": 100 * 4 / 99,
        "next_share": 100 * human_noise.next_class_share(counts), "next_uniform": 100 / 99,
        "super_ratio": super_share / (4 / 99)}
    per_super = human_noise.superclass_shares(counts, coarse)
    for tag, s in (("most", int(np.argmax(per_super))), ("least", int(np.argmin(per_super)))):
        out[f"super_{tag}_name"] = human_noise.CIFAR100_COARSE_NAMES[s].replace("_", " ")
        out[f"super_{tag}_index"] = s
        out[f"super_{tag}_share"] = float(100 * per_super[s])
    return out


def _twin_runs(runs: pd.DataFrame) -> pd.DataFrame:
    twin = runs[runs["noise"] == "human_twin"]
    if not len(twin):
        raise ValueError("no human_twin runs (the human experiment's runs at the cpu scale)")
    return twin


def twin_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Training on the synthetic twin of each CIFAR-10N label set (labels drawn from its transition matrix), as
    numbers: rows the methods (by their labels), columns ``(label set, stat)`` with ``stat`` in ``mean``, ``std``
    (test accuracy %, at the epoch of best noisy-validation accuracy, over seeds) and ``rate`` (the mean realised
    share of wrong training labels, %).  The chapter's section on the ``cpu`` scale shows it."""
    twin = _twin_runs(runs)
    g = twin.groupby(["method", "human_labels"], sort=False)
    out = pd.DataFrame({"mean": 100 * g["test_acc_best_val"].mean(), "std": 100 * g["test_acc_best_val"].std(ddof=1),
                        "rate": 100 * g["flip_rate_train"].mean()})
    wide = out.unstack("human_labels").swaplevel(axis=1)
    sets = [s for s in human_noise.LABEL_SETS if s in wide.columns.get_level_values(0)]
    wide = wide.reindex(columns=pd.MultiIndex.from_product([sets, ["mean", "std", "rate"]],
                                                           names=["label set", "stat"]))
    return wide.rename(index=lambda m: METHOD_LABELS.get(m, m))


def twin_differences(runs: pd.DataFrame, reference: str = "cce") -> pd.DataFrame:
    """Each method minus ``reference`` on each twin label set, paired by seed (the same drawn labels): rows
    ``(label set, method)``, columns ``mean`` and ``se`` (points of test accuracy at the best-validation epoch)
    and ``seeds``."""
    twin = _twin_runs(runs)
    acc = twin.pivot_table(index=["human_labels", "seed"], columns="method", values="test_acc_best_val") * 100
    if reference not in acc.columns:
        raise ValueError(f"no {reference!r} runs to compare with")
    rows = []
    for label_set, g in acc.groupby(level="human_labels", sort=False):
        for m in [c for c in acc.columns if c != reference]:
            both = g[[m, reference]].dropna()
            e = stats.paired(both[m].to_numpy(), both[reference].to_numpy())
            rows.append({"label set": label_set, "method": METHOD_LABELS.get(m, m), "mean": e.mean, "se": e.se,
                         "seeds": len(both)})
    order = {s: i for i, s in enumerate(human_noise.LABEL_SETS)}
    out = pd.DataFrame(rows).sort_values("label set", key=lambda s: s.map(order), kind="stable")
    return out.set_index(["label set", "method"])


def twin_words(diffs: pd.DataFrame, z: float = 2.0) -> str:
    """:func:`twin_differences` in a sentence: per method, on which twins it is more than ``z`` standard errors
    above or below CCE, with the mean differences, e.g. ``"Lq is above CCE on aggre (+1.20 points) ..."``."""
    parts = []
    for m in dict.fromkeys(diffs.index.get_level_values("method")):
        d = diffs.xs(m, level="method")
        above, below = d[d["mean"] > z * d["se"]], d[d["mean"] < -z * d["se"]]
        within = d.index.difference(above.index.union(below.index), sort=False)
        parts.append(f"{m} is above CCE on {_listed(above)}, below on {_listed(below)}"
                     + (f", within {z:g} standard errors on {', '.join(within)}" if len(within) else ""))
    return "; ".join(parts)


def _listed(d: pd.DataFrame) -> str:
    return ", ".join(f"{s} ({v:+.2f} points)" for s, v in d["mean"].items()) or "no twin"
