"""Summaries of the chapter "Open-set noise" (book/open_set.ipynb): Table 2 at the pocket scale.

Table 2's truncated-``L_q`` runs start pruning where their own validation loss
has plateaued (:func:`gce.schedule.plateau_epoch`; Sec. 4.3, Algorithm 1), so
the first pruning epoch differs from run to run and the stored config's
``prune_start`` is not it.  :func:`pruning_starts` reads each run's start from
its stored history; :func:`with_pruning_starts` and :func:`first_step_configs`
put it where the shared helpers of :mod:`gce.book.analysis` look for it.
:func:`row_story` turns a row of Table 2 into the words and numbers the
chapter's prose quotes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from ... import schedule
from ...train import RunConfig

__all__ = ["pruning_starts", "with_pruning_starts", "first_step_configs", "plot_pruning_starts", "ORDINALS",
           "row_story"]


def pruning_starts(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Where each truncated-``L_q`` run of Table 2 started pruning, read two ways from its stored history.

    One row per ``trunc_lq`` run of ``runs`` (in their order): ``run_id``,
    ``noise``, ``eta``, ``seed``; ``plateau``, the epochs after which the
    run's own validation loss had plateaued (:func:`gce.schedule.plateau_epoch`
    on the stored ``val_loss``; None if it never did); ``first_pruned``, the
    epochs completed before the first epoch whose ``kept`` is below 1 (the
    first pruning step that dropped a sample; None if none did);
    ``kept_first``, the fraction kept in that epoch; and ``agree``
    (``plateau == first_pruned``: the engine pruned where the rule says).
    """
    need_runs = {"run_id", "noise", "eta", "seed", "method"}
    need_hist = {"run_id", "epoch", "val_loss", "kept"}
    if not need_runs <= set(runs.columns) or not need_hist <= set(history.columns):
        raise ValueError(f"runs need columns {sorted(need_runs)} and history {sorted(need_hist)}: "
                         "pass the stored tables of table2")
    trunc = runs[runs["method"] == "trunc_lq"]
    if not len(trunc):
        raise ValueError("runs hold no truncated L_q runs (method='trunc_lq')")
    rows = []
    for _, r in trunc.iterrows():
        g = history[history["run_id"] == r["run_id"]].sort_values("epoch")
        kept = g["kept"].to_numpy(dtype=float)
        pruned = np.flatnonzero(kept < 1)
        first = int(pruned[0]) if len(pruned) else None  # history epochs count from 1: index = epochs before
        plateau = schedule.plateau_epoch(g["val_loss"].to_numpy(dtype=float))
        rows.append({"run_id": r["run_id"], "noise": r["noise"], "eta": float(r["eta"]), "seed": int(r["seed"]),
                     "plateau": plateau, "first_pruned": first,
                     "kept_first": float(kept[first]) if first is not None else np.nan,
                     "agree": plateau is not None and plateau == first})
    return pd.DataFrame(rows)


def with_pruning_starts(runs: pd.DataFrame, starts: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with each truncated run's ``prune_start`` set to its own first pruning epoch.

    ``starts`` is :func:`pruning_starts`'s frame.  The helpers of
    :mod:`gce.book.analysis` (``pruning_summary``, ``empty_pruning_runs``) read the
    first pruning epoch from ``prune_start``; for Table 2's plateau rule the
    stored value is only the schedule's nominal one.  A run that never pruned
    raises, since it has no first pruning epoch.
    """
    missing = starts[starts["first_pruned"].isna()]
    if len(missing):
        r = missing.iloc[0]
        raise ValueError(f"the truncated run of noise {r['noise']!r}, seed {r['seed']} never pruned a sample")
    start = starts.set_index("run_id")["first_pruned"].astype(int)
    out = runs.copy()
    trunc = out["method"] == "trunc_lq"
    out.loc[trunc, "prune_start"] = out.loc[trunc, "run_id"].map(start).to_numpy()
    return out


def first_step_configs(configs: Sequence[RunConfig], runs: pd.DataFrame) -> list[RunConfig]:
    """The truncated-``L_q`` configs of ``configs`` with their pruning fixed at the epoch their stored run
    first pruned, for :func:`gce.book.analysis.first_pruning_step` (which retrains each run up to
    ``prune_start``).

    ``runs`` is :func:`with_pruning_starts`'s frame; configs are matched to
    runs by ``(noise, eta, seed)``.  Before its first pruning step a truncated
    run is plain ``L_q`` whatever its pruning rule, so the retrained epochs are
    the stored run's.
    """
    trunc = runs[runs["method"] == "trunc_lq"]
    start = {(n, float(e), int(s)): int(p) for n, e, s, p in
             zip(trunc["noise"], trunc["eta"], trunc["seed"], trunc["prune_start"])}
    out = []
    for c in configs:
        if c.method != "trunc_lq":
            continue
        key = (c.noise, float(c.eta), int(c.seed))
        if key not in start:
            raise ValueError(f"no stored truncated run for noise {c.noise!r}, eta {c.eta}, seed {c.seed}")
        out.append(replace(c, prune_start=start[key], prune_rule="fixed"))
    return out


def plot_pruning_starts(history: pd.DataFrame, starts: pd.DataFrame, *, caption: str | None = None):
    """Each truncated run's validation loss against the epoch, with a dotted line where it started pruning.

    ``starts`` is :func:`pruning_starts`'s frame; one panel per noise kind, one
    line per seed, the start drawn at ``first_pruned`` epochs in the line's
    colour.  Call :func:`gce.book.plots.use_book_style` first for the book's look.
    """
    import matplotlib.pyplot as plt

    from ..plots import FIG_WIDTH

    kinds = list(dict.fromkeys(starts["noise"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(FIG_WIDTH, 3.3), squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], kinds):
        for i, (_, r) in enumerate(starts[starts["noise"] == kind].iterrows()):
            g = history[history["run_id"] == r["run_id"]].sort_values("epoch")
            line, = ax.plot(g["epoch"], g["val_loss"], lw=1.0, color=f"C{i}", label=f"seed {r['seed']}")
            if r["first_pruned"] == r["first_pruned"]:
                ax.axvline(r["first_pruned"], color=line.get_color(), ls=":", lw=1.0)
        ax.set_title(str(kind).replace("_", "-"))
        ax.set_xlabel("epoch")
    axes[0, 0].set_ylabel("validation loss")
    axes[0, -1].legend(loc="upper right")
    if caption:
        fig.suptitle(caption)
    return fig


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")


def row_story(means: pd.Series) -> dict:
    """Words and numbers for one row of Table 2, from ``means`` (method label -> mean accuracy, points).

    Returns ``spread`` (best minus worst mean), ``spread_others`` (the same without
    truncated ``L_q``), ``trunc_rank`` (its place, best first, as a word of
    :data:`ORDINALS`), ``n_methods`` and ``lq_vs_mae`` (``"above"``,
    ``"below"`` or ``"level with"`` MAE).  The method labels are those of
    :data:`gce.book.experiments.METHOD_LABELS`.
    """
    for m in ("Trunc Lq", "Lq", "MAE"):
        if m not in means.index:
            raise ValueError(f"the row has no {m!r} entry; it has {', '.join(map(str, means.index))}")
    order = means.sort_values(ascending=False)
    rest = order.drop("Trunc Lq")
    diff = means["Lq"] - means["MAE"]
    return {"spread": float(order.iloc[0] - order.iloc[-1]), "spread_others": float(rest.max() - rest.min()),
            "trunc_rank": ORDINALS[list(order.index).index("Trunc Lq")], "n_methods": len(order),
            "lq_vs_mae": "above" if diff > 0 else "below" if diff < 0 else "level with"}
