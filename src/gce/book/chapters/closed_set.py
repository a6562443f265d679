"""Summaries of the closed-set chapter (``book/closed_set.ipynb``): the declared schedule, the fit gate and
the cost of choosing the epoch on noisy validation labels, for Table 1's stored runs; the runs' provenance, the
two halves of Table 1 and their best two per column; and the sentences the chapter glues into its prose (the
range of a difference between methods, what truncation changed, a gap by noise rate)."""

from __future__ import annotations

import pandas as pd

from ... import schedule
from .. import analysis, experiments
from ...classes import class_names
from ..notebooks import rounded

__all__ = ["schedule_table", "fit_table", "selection_cost", "SETTINGS", "run_counts", "provenance",
           "settings_table", "noise_halves", "table1_half", "block_sources", "best_two", "spread",
           "truncation_counts", "truncation_settings", "by_eta"]

#: The training settings of the stored runs that the chapter shows, one table row each.
SETTINGS = ("model", "model_kwargs", "optimizer", "lr", "momentum", "weight_decay", "epochs", "milestones",
            "batch_size", "augment", "prune_start", "prune_every", "q", "k")


def _need(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs the column(s) {missing}; it has {list(frame.columns)}")


def _milestones(value) -> tuple[int, ...]:
    return tuple(int(m) for m in str(value).split())


def schedule_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per pocket block: the paper's schedule of the dataset it stands for beside the one its stored runs
    used (epochs, learning-rate drops, first pruning epoch, pruning interval, learning rate, validation
    share), and ``same_epochs``: whether the stored epochs, drops and pruning equal the paper's."""
    rows = []
    for d, g in runs.groupby("dataset", sort=False):
        paper_name = experiments.PAPER_ANALOGUE.get(d, (d,))[-1]
        paper = schedule.PAPER_SCHEDULES["cifar100" if paper_name == "cifar100" else "cifar10"]
        used = g[["epochs", "milestones", "prune_start", "prune_every", "lr", "val_fraction"]].drop_duplicates()
        if len(used) != 1:
            raise ValueError(f"the stored runs of {d} use {len(used)} different schedules")
        u = used.iloc[0]
        stored = dict(epochs=int(u["epochs"]), milestones=_milestones(u["milestones"]),
                      prune_start=int(u["prune_start"]), prune_every=int(u["prune_every"]))
        rows.append({"block": d, "stands for": ", ".join(experiments.PAPER_ANALOGUE.get(d, (d,))),
                     "epochs": stored["epochs"], "drops after": " and ".join(map(str, stored["milestones"])),
                     "pruning": f"from {stored['prune_start']} every {stored['prune_every']}",
                     "lr": float(u["lr"]), "validation": float(u["val_fraction"]),
                     "same_epochs": stored == {**paper, "milestones": tuple(paper["milestones"])}})
    return pd.DataFrame(rows).set_index("block")


def fit_table(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The fit gate of :mod:`gce.book.claims` for every setting and method: True where the seed-mean
    noisy-validation accuracy had levelled off before the first learning-rate drop
    (:func:`gce.schedule.has_fitted`).  Rows ``(dataset, noise, eta)``, one column per method."""
    h = history[history["run_id"].isin(runs["run_id"])].merge(
        runs[["run_id", "dataset", "noise", "eta", "method", "milestones"]], on="run_id")
    rows = []
    for (d, noise, eta, m), g in h.groupby(["dataset", "noise", "eta", "method"], sort=False):
        drop = _milestones(g["milestones"].iloc[0])[0]
        curve = g.groupby("epoch")["val_acc"].mean().sort_index().to_numpy()
        rows.append({"dataset": d, "noise": noise, "eta": float(eta),
                     "method": experiments.METHOD_LABELS.get(m, m),
                     "fitted": schedule.has_fitted(curve, drop, chance=1 / len(class_names(d)))})
    t = pd.DataFrame(rows)
    out = t.pivot_table(index=["dataset", "noise", "eta"], columns="method", values="fitted",
                        sort=False, aggfunc="first").astype(bool)
    blocks = list(dict.fromkeys(t["dataset"]))
    return out.sort_index(level=["noise", "eta"], sort_remaining=False).reindex(blocks, level="dataset")


def selection_cost(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """What choosing the epoch on noisy validation labels costs, per block and method: the mean over runs of
    the best test accuracy of any epoch minus the test accuracy at the best-validation epoch (points), and
    its largest value.  A report only: no verdict reads the best test epoch."""
    h = history[history["run_id"].isin(runs["run_id"])]
    peak = h.groupby("run_id")["test_acc"].max()
    r = runs.assign(cost=100 * (runs["run_id"].map(peak) - runs["test_acc_best_val"]),
                    method=runs["method"].map(lambda m: experiments.METHOD_LABELS.get(m, m)))
    g = r.groupby(["dataset", "method"], sort=False)["cost"]
    return pd.DataFrame({"mean": g.mean(), "max": g.max()}).unstack("dataset").swaplevel(axis=1).sort_index(
        axis=1, level=0, sort_remaining=False)


def run_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """How the stored Table 1 grid is made up, per block (the section "How this chapter's numbers were made").

    Parameters
    ----------
    runs : pandas.DataFrame
        Stored runs with columns ``dataset``, ``method``, ``noise``, ``eta`` and ``seed``.

    Returns
    -------
    pandas.DataFrame
        One row per dataset, in the order of ``runs``; integer columns ``runs``, ``methods``,
        ``noise settings`` (distinct ``(noise, eta)`` pairs) and ``seeds``.
    """
    _need(runs, ["dataset", "method", "noise", "eta", "seed"], "run_counts")
    rows = {d: {"runs": len(r), "methods": r["method"].nunique(), "noise settings": r.groupby(["noise", "eta"]).ngroups,
                "seeds": r["seed"].nunique()} for d, r in runs.groupby("dataset", sort=False)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("dataset")


def provenance(runs: pd.DataFrame) -> pd.DataFrame:
    """Where and when the stored runs were trained: one row per ``(dataset, device, commit, torch_version)``
    in the order of ``runs``, with ``runs`` (how many) and ``first`` and ``last`` (the earliest and latest
    ``date`` stamp).  Printed by the closed-set chapter beside :func:`run_counts`."""
    by = ["dataset", "device", "commit", "torch_version"]
    _need(runs, [*by, "date"], "provenance")
    g = runs.groupby(by, sort=False)["date"]
    return pd.DataFrame({"runs": g.size(), "first": g.min(), "last": g.max()})


def settings_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The training settings (:data:`SETTINGS`) of the stored runs, a row per setting and a column per
    distinct combination (labelled by its dataset), as stored: the closed-set chapter's provenance table."""
    _need(runs, ["dataset", *SETTINGS], "settings_table")
    return runs[["dataset", *SETTINGS]].drop_duplicates().set_index("dataset").T


def noise_halves(wide: pd.DataFrame) -> dict[str, list[str]]:
    """The settings (columns) of :func:`gce.book.analysis.table1_wide` split into Table 1's two halves:
    ``{"uniform": [...], "class-dependent": [...]}``, each in the table's order (the closed-set chapter shows,
    compares and words the halves apart)."""
    names = list(dict.fromkeys(wide.columns.get_level_values("setting")))
    return {"uniform": [s for s in names if s.startswith("uniform")],
            "class-dependent": [s for s in names if s.startswith("class-dep.")]}


def table1_half(wide: pd.DataFrame, half: str, scale: str, seeds, model: str = "MLP"):
    """One half of Table 1 (Sec. 4.3), ours beside the paper's blocks, bold at the best two per column within
    each block (:func:`gce.book.analysis.style_best`), captioned with scale, model and seeds.

    Parameters
    ----------
    wide : pandas.DataFrame
        :func:`gce.book.analysis.table1_wide` of the stored runs.
    half : str
        ``"uniform"`` or ``"class-dependent"`` (see :func:`noise_halves`); anything else raises ``ValueError``.
    scale : str
        The scale the runs were trained at, for the caption.
    seeds : mapping
        Dataset -> number of seeds, in the order the caption lists the blocks.
    model : str, default "MLP"
        The network of our blocks, for the caption.

    Returns
    -------
    pandas.io.formats.style.Styler
        The table as text (``mean ± std``), numbers kept in ``wide``.
    """
    halves = noise_halves(wide)
    if half not in halves:
        raise ValueError(f"half must be one of {list(halves)}, got {half!r}")
    note = "; ".join(f"{d}: {model}, {n} seeds" for d, n in dict(seeds).items())
    caption = (f"Table 1, {half} noise: ours at {scale} scale ({note}) and "
               "the paper's blocks; test accuracy (%) at the epoch of best "
               "noisy-validation accuracy, mean ± std; bold: best two per column "
               "within each block")
    return analysis.style_best(wide.loc[:, halves[half]], 2, caption=caption)


def block_sources(dataset: str, sources) -> list[str]:
    """The sources of Table 1 that make up the block of our ``dataset``: ``"ours (dataset)"`` followed by
    ``"paper (...)"`` for each dataset of the paper it stands for (``experiments.PAPER_ANALOGUE``), keeping
    those in ``sources`` (the ``source`` level of :func:`gce.book.analysis.table1_wide`)."""
    block = [f"ours ({dataset})"] + [f"paper ({p})" for p in analysis.paper_datasets(dataset)]
    return [s for s in block if s in list(sources)]


def best_two(wide: pd.DataFrame, sources, n: int = 2) -> pd.DataFrame:
    """The ``n`` best methods of every column of Table 1 within each of ``sources`` (ranked within each
    source by :func:`gce.book.analysis.best_mask`, ties all named): a row per setting, a column per source, each
    cell the methods' labels joined by commas.  The closed-set chapter prints it per block."""
    mask = analysis.best_mask(wide, n)
    known = set(mask.index.get_level_values("source"))
    out = {}
    for source in sources:
        if source not in known:
            raise ValueError(f"no source {source!r} in the table; it has {sorted(known)}")
        m = mask.xs(source, level="source")
        out[source] = {col: ", ".join(m.index[m[col]]) for col in m.columns}
    return pd.DataFrame(out)


def spread(differences: pd.Series) -> str:
    """One sentence on a row of the closed-set chapter's table of differences between two methods
    (points, indexed by setting): its smallest and largest value with their settings, rounded as the table
    is (:func:`gce.book.notebooks.rounded`), and in how many settings it is below 0.  An empty row raises
    ``ValueError``."""
    d = pd.Series(differences, dtype=float)
    if d.dropna().empty:
        raise ValueError("spread needs at least one difference, got none")
    lo, hi = d.idxmin(), d.idxmax()
    return (f"from {rounded(d[lo]):.2f} ({lo}) to {rounded(d[hi]):.2f} "
            f"({hi}); below 0 in {int((d < 0).sum())} of {len(d)} settings")


_EFFECT_COLUMNS = ["setting", "runs", "engaged", "kept_none", "best_epoch", "prune_start", "trunc_minus_lq",
                   "trunc_minus_lq_se"]


def truncation_counts(effect: pd.DataFrame) -> dict[str, int]:
    """Counts over one block's rows of :func:`gce.book.analysis.truncation_effect` (with a ``setting`` label per
    row), named as the closed-set chapter's glue keys: ``engaged`` (truncated runs whose reported model was
    trained on a pruned set), ``trunc_runs`` (truncated runs), ``kept_none`` (runs whose first pruning step
    kept no sample) and ``prune_start`` (the epoch of the first pruning step, from 0)."""
    _need(effect, _EFFECT_COLUMNS, "truncation_counts")
    if effect.empty:
        raise ValueError("truncation_counts needs the rows of one block, got none")
    return {"engaged": int(effect["engaged"].sum()), "trunc_runs": int(effect["runs"].sum()),
            "kept_none": int(effect["kept_none"].sum()), "prune_start": int(effect["prune_start"].iloc[0])}


def _listing(frame: pd.DataFrame) -> str:
    return ", ".join(frame["setting"]) if len(frame) else "none"


def truncation_settings(effect: pd.DataFrame) -> dict[str, str]:
    """Which settings of one block's rows of :func:`gce.book.analysis.truncation_effect` (with a ``setting``
    label per row) show what, as markdown lists named as the closed-set chapter's glue keys ("none" for an
    empty list): ``engaged_settings`` (some truncated run reports a model trained on a pruned set),
    ``idle_settings`` (none does), ``trunc_wins`` and ``trunc_loses`` (truncated L_q minus L_q beyond one
    standard error, either way), and ``idle_early`` (idle settings whose mean best epoch, given in
    brackets, comes before the first pruning step)."""
    _need(effect, _EFFECT_COLUMNS, "truncation_settings")
    e, se = effect, effect["trunc_minus_lq_se"]
    idle = e[(e["engaged"] == 0) & (e["best_epoch"] < e["prune_start"])]
    early = [f"{s} ({rounded(b, 1):g})" for s, b in idle[["setting", "best_epoch"]].values]
    return {"engaged_settings": _listing(e[e["engaged"] > 0]), "idle_settings": _listing(e[e["engaged"] == 0]),
            "trunc_wins": _listing(e[e["trunc_minus_lq"] > se]), "trunc_loses": _listing(e[e["trunc_minus_lq"] < -se]),
            "idle_early": ", ".join(early) or "none"}


def by_eta(values: pd.Series) -> str:
    """A series of values indexed by the noise rate eta as the closed-set chapter's prose gives it:
    ``"1.5 at 0.2, 3 at 0.4"`` (each rounded to one decimal by :func:`gce.book.notebooks.rounded`)."""
    return ", ".join(f"{rounded(v, 1):g} at {e:g}" for e, v in pd.Series(values, dtype=float).items())
