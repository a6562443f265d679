"""Summaries of the closed-set chapter (``book/closed_set.ipynb``): the declared schedule, the fit gate and
the cost of choosing the epoch on noisy validation labels, for Table 1's stored runs."""

from __future__ import annotations

import pandas as pd

from ... import schedule
from .. import experiments
from ...classes import class_names

__all__ = ["schedule_table", "fit_table", "selection_cost"]


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


