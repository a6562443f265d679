"""The ``cpu`` scale's sections of the experiment chapters: real CIFAR-10 images beside the pocket tasks and the paper.

Every experiment chapter (``closed_set``, ``open_set``, ``dynamics``, ``cce_vs_mae``, ``human_noise``,
``after_the_paper``) and the claims page end their story at the pocket scale with a section *On real images*
that reads the stored ``cpu`` results (:mod:`gce.book.cpu_scale`: frozen unsupervised features of CIFAR-10, an MLP head,
the declared schedule, 3 seeds).  This module holds what those sections share: reading the stored runs (never
training), the one-line description of what the numbers are, and the verdicts of the chapter's claims at this
scale.  Where no ``cpu`` run is stored, each function says so in one line instead of failing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from .. import analysis, claims, cpu_scale, experiments, plots, stats

__all__ = ["SCALE", "stored", "data_name", "describe", "model_numbers", "missing", "claim_ids", "verdicts", "format_verdicts",
           "status_words", "caption",
           "table1_half", "plot_table1", "open_set_harm", "table2", "table2_words"]

#: The scale these sections read.
SCALE = "cpu"


def stored(name: str, results: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The stored ``(runs, history)`` of experiment ``name``'s current ``cpu`` grid, or None when none is stored
    (:func:`gce.book.claims.stored_results`; reads only, never trains).  The functions below that take
    ``runs`` raise a one-line ``ValueError`` naming the command that trains them when given None."""
    return claims.stored_results(name, SCALE, results)


def data_name(runs: pd.DataFrame) -> str:
    """What the images of ``runs`` are called in captions, e.g. ``"CIFAR-10 (JPEG copy)"``: the in-set data of the
    runs' first dataset (:func:`gce.book.cpu_scale.data_label`)."""
    if not len(runs):
        raise ValueError("no runs: there is no data to name")
    return cpu_scale.data_label(str(runs["dataset"].iloc[0]))


def describe(name: str, got: tuple[pd.DataFrame, pd.DataFrame] | None) -> str:
    """Two lines saying what the stored ``cpu`` runs of ``name`` are (data, model; how many runs of the grid, seeds),
    or, when none are stored, one line on how to make them (:func:`missing`)."""
    if got is None:
        return missing(name)
    runs = got[0]
    grid = len(experiments.spec(name, SCALE).configs)
    seeds = runs["seed"].nunique()
    return (f"{name} at the cpu scale: {data_name(runs)}, frozen features, an MLP head;\n"
            f"  {len(runs)} of {grid} runs stored, {seeds} seed{'s' * (seeds != 1)}")


def model_numbers(runs: pd.DataFrame | None = None) -> dict[str, int]:
    """The sizes the chapters' prose glues: ``cpu_features`` (the features per image, :mod:`gce.features`) and
    ``cpu_hidden`` (the head's hidden units: those of the stored ``runs`` where given, else the scale's
    :data:`gce.book.cpu_scale.CPU_MODEL`)."""
    import json

    from ...features import DEFAULT_SETTINGS

    kwargs = dict(cpu_scale.CPU_MODEL["model_kwargs"])
    if runs is not None and len(runs):
        found = {json.dumps(json.loads(k)) for k in runs["model_kwargs"]}
        if len(found) != 1:
            raise ValueError(f"the runs hold {len(found)} different heads: {sorted(found)}")
        kwargs = {k: v for k, v in json.loads(found.pop())}
    (hidden,) = kwargs["hidden"]
    return {"cpu_features": DEFAULT_SETTINGS.pca_dim, "cpu_hidden": int(hidden)}


def missing(name: str) -> str:
    """The line a section shows where no ``cpu`` run of ``name`` is stored: the command that trains them."""
    return (f"no cpu-scale runs of {name} are stored; to train them (they read the CIFAR-10 images): "
            f"python -m gce reproduce {name} --scale cpu --jobs 2")


def claim_ids(experiment: str, section: str | None = None) -> list[str]:
    """The ids of the registered claims (:data:`gce.book.claims.CLAIMS`) that read ``experiment``, optionally only those
    of the paper's ``section`` (e.g. ``"4.1"``)."""
    return [c.id for c in claims.CLAIMS if experiment in c.experiments and (section is None or c.section == section)]


def status_words(ids: Sequence[str], results: str | os.PathLike | None = None) -> str:
    """The outcomes of the claims ``ids`` at the ``cpu`` scale in words, each with its ids, e.g.
    ``"2 hold (`a`, `b`); 1 is inconclusive (`c`)"`` (:func:`gce.book.chapters.dynamics.status_summary`)."""
    from .dynamics import status_summary

    return status_summary(claims.evaluate(results, SCALE, ids=list(ids)))


def verdicts(ids: Sequence[str], results: str | os.PathLike | None = None) -> pd.DataFrame:
    """The verdicts of the claims ``ids`` at the ``cpu`` scale (:func:`gce.book.claims.evaluate`), as a table indexed
    by claim id with ``status`` and ``reason`` (the evidence in one line)."""
    table = claims.evaluate(results, SCALE, ids=list(ids))
    return table.set_index("id")[["status", "reason"]]


def format_verdicts(ids: Sequence[str], results: str | os.PathLike | None = None) -> str:
    """The verdicts of the claims ``ids`` at the ``cpu`` scale as text that fits the book's column
    (:func:`gce.book.claims.format_verdicts`: per claim its outcome, then the evidence)."""
    table = claims.evaluate(results, SCALE, ids=list(ids))
    return claims.format_verdicts(table, fields=("reason",))


def _need(runs: pd.DataFrame | None, name: str) -> pd.DataFrame:
    if runs is None:
        raise ValueError(missing(name))
    return runs


def caption(runs: pd.DataFrame, what: str) -> str:
    """A figure or table caption naming the scale, the data, the model and the seeds of ``runs``:
    ``"<what>; cpu scale: CIFAR-10 (JPEG copy) features, MLP head, seeds 0-2"``."""
    seeds = sorted(int(s) for s in runs["seed"].unique())
    span = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    return f"{what}; cpu scale: {data_name(runs)} features, MLP head, {span}"


def table1_half(runs: pd.DataFrame, noise: str):
    """Table 1's ``noise`` half (``"uniform"`` or ``"class_dependent"``) at the ``cpu`` scale beside the paper's
    CIFAR-10 block (:func:`gce.book.analysis.table1_wide`), best two per column in bold within each block, captioned."""
    runs = _need(runs, "table1")
    prefix = {"uniform": "uniform", "class_dependent": "class-dep."}
    if noise not in prefix:
        raise ValueError(f"noise must be 'uniform' or 'class_dependent', got noise={noise!r}")
    wide = analysis.table1_wide(runs)
    cols = [c for c in dict.fromkeys(wide.columns.get_level_values("setting")) if c.startswith(prefix[noise])]
    wide = wide.rename(index=lambda s: "ours (cpu)" if s.startswith("ours") else s, level="source")
    text = caption(runs, f"Table 1, {noise.replace('_', '-')} noise, beside the paper's CIFAR-10 (ResNet-34); "
                         "test accuracy (%) at the epoch of best noisy-validation accuracy, mean ± std; bold: best "
                         "two per column within each block")
    return analysis.style_best(wide.loc[:, cols], 2, caption=text)


def plot_table1(runs: pd.DataFrame):
    """Table 1 at the ``cpu`` scale as lines against ``eta`` beside the paper's CIFAR-10 means
    (:func:`gce.book.plots.plot_accuracy_vs_eta`); returns the figure."""
    runs = _need(runs, "table1")
    return plots.plot_accuracy_vs_eta(runs, experiments.paper_table1(), paper_dataset="cifar10",
                                      caption=caption(runs, "Table 1 beside the paper's CIFAR-10 (dashed)"))


def open_set_harm(runs: pd.DataFrame) -> pd.DataFrame:
    """What the outside images cost CCE at the ``cpu`` scale, one row: last-epoch test accuracy (%) of clean CCE
    and of CCE under open-set noise and their paired difference over seeds (``cost``, with its standard error);
    then the open-set claims' gate (:data:`gce.book.claims.HARM_MARGIN`): the open-set CCE runs' mean drop from the
    best-noisy-validation epoch to the last (``drop``, points) and whether it reaches the margin (``gate``)."""
    runs = _need(runs, "table2")
    cce = runs[runs["method"] == "cce"]
    acc = cce.pivot_table(index="seed", columns="noise", values="test_acc_last") * 100
    if not {"none", "open_set"} <= set(acc.columns):
        raise ValueError("needs clean and open-set CCE runs (Table 2's grid at the cpu scale)")
    both = acc[["none", "open_set"]].dropna()
    e = stats.paired(both["none"].to_numpy(), both["open_set"].to_numpy())
    opened = cce[cce["noise"] == "open_set"]
    drop = float(100 * (opened["test_acc_best_val"] - opened["test_acc_last"]).mean())
    return pd.DataFrame([{"clean CCE": both["none"].mean(), "open-set CCE": both["open_set"].mean(),
                          "cost": e.mean, "s.e.": e.se, "seeds": len(both), "drop": drop,
                          "gate": drop >= claims.HARM_MARGIN}])


def table2(runs: pd.DataFrame):
    """Table 2 at the ``cpu`` scale beside the paper's CIFAR-10 numbers (:func:`gce.book.analysis.table2_wide`), best
    two per column in bold within each noise kind, captioned."""
    text = caption(runs, "Table 2: classes 0-4 with outside images from classes 5-9, eta = 0.4, last-epoch test "
                         "accuracy (%), mean ± std, beside the paper's CIFAR-10 with CIFAR-100 images")
    return analysis.style_best(analysis.table2_wide(runs), 2, by="noise", caption=text)


def table2_words(runs: pd.DataFrame | None) -> dict[str, str]:
    """Table 2 at the ``cpu`` scale in words, ours beside the paper's, per noise kind: ``{"open_set": "CCE 62.05 %
    (paper 62.92), ...", "uniform": ...}`` (means over seeds, last epoch; :func:`gce.book.analysis.table2_wide`)."""
    runs = _need(runs, "table2")
    wide = analysis.means(analysis.table2_wide(runs))
    out = {}
    for kind, label in (("open_set", "open-set"), ("uniform", "closed-set (uniform)")):
        rows = wide.xs(label, level="noise").dropna(subset=["ours"])
        out[kind] = ", ".join(f"{m} {r['ours']:.2f} % (paper {r['paper']:.2f})" for m, r in rows.iterrows())
    return out
