"""Summaries of stored results: the numbers and tables the experiment chapters print.

Every function here reads the tables of a :class:`gce.book.store.ResultStore`
(``store.runs``: one row per run; ``store.history``: one row per run and
epoch) and returns a :class:`pandas.DataFrame` (or a Styler), so a number in
the book can be traced from its cell to one function:

- Table 1 and Table 2 beside the paper's, as numbers (:func:`table1_wide`,
  :func:`table2_wide`: ``mean`` and ``std`` columns), formatted only for
  display (:func:`format_pm`, :func:`markdown_table`, :func:`style_best` for
  the paper's bold "best two"; one rounding, :func:`round_pct`);
- Fig. 1(a, b): epochs to a given accuracy (:func:`convergence_table`), early
  setbacks (:func:`setbacks`), two sets of curves side by side
  (:func:`compare_curves`), and the learning-rate equivalence of MAE and the
  unhinged loss (:func:`short_trajectory`);
- Fig. 1(c) and Fig. 2: the drop from peak accuracy (:func:`overfitting_table`; the
  threshold of q is a claim's verdict, :mod:`gce.book.claims`) and the softmax at right and wrong labels
  (:func:`label_softmax_table`);
- Table 1's side results: realised noise rates (:func:`flip_rate_table`), the
  error of Patrini's T-hat (:func:`transition_estimate_errors`), what pruning
  kept (:func:`pruning_summary`, :func:`first_pruning_step`);
- Table 2: how separable the outside images are (:func:`ood_separability`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import numpy as _np
import pandas as pd
import torch

from .. import train as _train
from .experiments import METHOD_LABELS, paper_table1, paper_table2
from ..train import RunConfig

__all__ = ["STATS", "round_pct", "paper_datasets", "summarize_table1", "table1_wide", "table2_wide", "means",
           "format_pm", "markdown_table", "convergence_table", "short_trajectory", "format_convergence",
           "setbacks", "compare_curves", "fig2_q", "overfitting_table", "label_softmax_table", "best_mask",
           "style_best", "flip_rate_table", "transition_estimate_errors", "pruning_summary",
           "first_pruning_step", "ood_separability", "OVERFITTING_COLUMNS", "format_overfitting",
           "mae_catch_up", "fig1b_beside_paper", "largest_gap", "truncation_effect", "classes_dropped",
           "empty_pruning_runs", "pruning_quality"]


# --------------------------------------------------------------------------- summaries
# Tables stay numbers (percent, floats) until they are displayed: :func:`format_pm` turns a table of
# ``mean``/``std`` columns into ``"mean ± std"`` text, :func:`markdown_table` into markdown, and both
# round with :func:`round_pct`, so a stored ``table1.md`` and a notebook print the same digits.

STATS = ("mean", "std")


def round_pct(value: float, digits: int = 2) -> float:
    """``value`` rounded half-up at ``digits`` decimals from its shortest repr (so 83.005 gives 83.01 on
    every path); NaN stays NaN.  The one rounding of every number a table of results displays."""
    from decimal import ROUND_HALF_UP, Decimal

    if value is None or value != value:
        return float("nan")
    if not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}")
    return float(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _fmt(value: float, digits: int) -> str:
    return "" if value != value else f"{round_pct(value, digits):.{digits}f}"


def paper_datasets(dataset: str) -> tuple[str, ...]:
    """The paper's dataset(s) that ``dataset`` stands in for: ``experiments.PAPER_ANALOGUE[dataset]`` (a name
    or a sequence of names) where defined (``"digits"`` -> CIFAR-10 otherwise); a real dataset stands for
    itself."""
    from . import experiments as _experiments

    mapping = dict(getattr(_experiments, "PAPER_ANALOGUE", {"digits": "cifar10"}))
    got = mapping.get(dataset, dataset)
    return (got,) if isinstance(got, str) else tuple(got)


def _setting(noise: str, eta: float) -> str:
    return {"uniform": "uniform", "class_dependent": "class-dep."}.get(noise, noise) + f" {eta:g}"


def summarize_table1(runs: pd.DataFrame) -> pd.DataFrame:
    """Our Table 1 (Sec. 4.3): mean, std and standard error (%) of the best-validation-epoch test accuracy
    over seeds, as numbers.

    One row per (dataset, noise, eta, method) with ``mean``, ``std`` (NaN for a
    single seed), ``sem`` (``std / sqrt(seeds)``), the number of ``seeds`` and
    the mean realised training flip rate ``realised_rate``.
    """
    if not len(runs):
        raise ValueError("no runs to summarise")
    g = runs.groupby(["dataset", "noise", "eta", "method"], sort=False)
    out = g.agg(mean=("test_acc_best_val", lambda s: 100 * s.mean()),
                std=("test_acc_best_val", lambda s: 100 * s.std(ddof=1) if len(s) > 1 else float("nan")),
                seeds=("seed", "nunique"), realised_rate=("flip_rate_train", "mean")).reset_index()
    out.insert(out.columns.get_loc("std") + 1, "sem", out["std"] / _np.sqrt(out["seeds"]))
    return out


def table1_wide(runs: pd.DataFrame, with_paper: bool = True) -> pd.DataFrame:
    """Table 1 (Sec. 4.3) laid out as in the paper, as numbers: rows ``(source, method)``, columns
    ``(setting, stat)`` with ``stat`` in ``("mean", "std")`` (percent).

    Settings follow :data:`gce.book.experiments.TABLE1_NOISE`, methods
    :data:`gce.book.experiments.TABLE1_METHODS` (shown by their labels).  With
    ``with_paper`` each of our dataset blocks is followed by the paper's block
    for the dataset it stands in for (``experiments.PAPER_ANALOGUE``; a real
    dataset stands for itself).  Display with :func:`format_pm`,
    :func:`style_best` or :func:`markdown_table`.
    """
    from .experiments import TABLE1_METHODS, TABLE1_NOISE

    ours = summarize_table1(runs)
    ours["source"] = "ours (" + ours["dataset"] + ")"
    frames = []
    paper = paper_table1() if with_paper else None
    for d in pd.unique(ours["dataset"]):
        frames.append(ours[ours["dataset"] == d])
        for pd_name in (paper_datasets(d) if with_paper else ()):
            p = paper[paper["dataset"] == pd_name].copy()
            if len(p):
                p["source"] = "paper (" + p["dataset"] + ")"
                frames.append(p)
    both = pd.concat(frames, ignore_index=True)
    both["setting"] = [_setting(n, e) for n, e in zip(both["noise"], both["eta"])]
    long = both.melt(id_vars=["source", "method", "setting"], value_vars=list(STATS), var_name="stat")
    wide = long.pivot_table(index=["source", "method"], columns=["setting", "stat"], values="value",
                            aggfunc="first", sort=False, dropna=False)
    settings = [s for s in (_setting(n, e) for n, e in TABLE1_NOISE) if s in wide.columns.get_level_values(0)]
    settings += [s for s in pd.unique(wide.columns.get_level_values(0)) if s not in settings]
    sources = list(pd.unique(both["source"]))
    methods = [m for m in TABLE1_METHODS if m in set(both["method"])] + \
        [m for m in pd.unique(both["method"]) if m not in TABLE1_METHODS]
    present = set(zip(both["source"], both["method"]))
    rows = [(s, m) for s in sources for m in methods if (s, m) in present]
    wide = wide.reindex(index=pd.MultiIndex.from_tuples(rows, names=["source", "method"]),
                        columns=pd.MultiIndex.from_product([settings, list(STATS)], names=["setting", "stat"]))
    return wide.rename(index=lambda m: METHOD_LABELS.get(m, m), level="method").astype(float)


def table2_wide(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 2 (Sec. 4.3) as numbers: rows ``(noise, method)``, columns ``(source, stat)``: ours (mean and
    std over seeds of the last-epoch test accuracy, %) and the paper's (mean only; it gives no std).

    Noise kinds and methods in the order of :data:`gce.book.experiments.TABLE2_METHODS`, then Wang et al.'s
    row (the paper's only).  Display with :func:`format_pm` or :func:`style_best`.
    """
    from .experiments import TABLE2_METHODS

    g = runs.groupby(["noise", "method"], sort=False)["test_acc_last"]
    ours = pd.DataFrame({"mean": 100 * g.mean(), "std": 100 * g.std(ddof=1)})
    paper = paper_table2().set_index(["noise", "method"])["accuracy"].astype(float)
    noises = [n for n in ("open_set", "uniform") if n in set(ours.index.get_level_values(0)) | set(paper.index.get_level_values(0))]
    methods = [*TABLE2_METHODS, "wang2018"]
    idx = pd.MultiIndex.from_tuples([(n, m) for n in noises for m in methods], names=["noise", "method"])
    out = pd.DataFrame({("ours", "mean"): ours["mean"].reindex(idx), ("ours", "std"): ours["std"].reindex(idx),
                        ("paper", "mean"): paper.reindex(idx), ("paper", "std"): _np.nan}, index=idx)
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["source", "stat"])
    keep = [i for i in idx if out.loc[i].notna().any()]
    out = out.loc[keep]
    return out.rename(index={**METHOD_LABELS, "wang2018": "Wang et al."}, level="method").rename(
        index={"open_set": "open-set", "uniform": "closed-set (uniform)"}, level="noise")


def means(table: pd.DataFrame) -> pd.DataFrame:
    """The ``mean`` columns of a ``(column, stat)`` table (:func:`table1_wide`, :func:`table2_wide`) as a
    plain numeric table; a table without a ``stat`` level is returned as floats."""
    if isinstance(table.columns, pd.MultiIndex) and "stat" in table.columns.names:
        return table.xs("mean", axis=1, level="stat").astype(float)
    return table.astype(float)


def format_pm(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Text for display: each ``(column, stat)`` pair of ``table`` becomes one column of ``"mean ± std"``
    (``"mean"`` where std is NaN, ``""`` where mean is NaN), rounded by :func:`round_pct`.

    A table without a ``stat`` column level is formatted cell by cell.  Only
    for display: analysis reads the numbers (:func:`means`).
    """
    if not (isinstance(table.columns, pd.MultiIndex) and "stat" in table.columns.names):
        return table.apply(lambda col: col.map(lambda v: _fmt(float(v), digits)))
    m = means(table)
    s = table.xs("std", axis=1, level="stat") if "std" in table.columns.get_level_values("stat") else \
        pd.DataFrame(_np.nan, index=m.index, columns=m.columns)
    out = pd.DataFrame(index=m.index, columns=m.columns, dtype=object)
    for col in m.columns:
        out[col] = [_fmt(a, digits) + (f" ± {_fmt(b, digits)}" if a == a and b == b else "")
                    for a, b in zip(m[col], s[col])]
    out.columns.name = None
    return out


def markdown_table(table: pd.DataFrame, digits: int = 2) -> str:
    """``table`` as a markdown table, formatted by :func:`format_pm`, with its row labels as plain columns
    (no Python tuples): what ``python -m gce reproduce`` writes to ``<results>/<scale>/<name>.md``."""
    return format_pm(table, digits).reset_index().to_markdown(index=False, disable_numparse=True)


# ---- cce_vs_mae ----
# Summaries of the chapter "CCE vs MAE in practice" (Fig. 1a, b and Eq. 5 of Sec. 3.2).


def _pct(threshold: float) -> str:
    return f"{100 * threshold:g}%"


def convergence_table(runs: pd.DataFrame, history: pd.DataFrame, *, by: Sequence[str] = ("dataset", "method"),
                      thresholds: Sequence[float] = (0.9, 0.95), metric: str = "test_acc",
                      per_run: bool = False) -> pd.DataFrame:
    """How fast and how far each group of runs learns: the numbers behind Fig. 1(a, b) (Sec. 3.2).

    For every run: the first epoch (1-based) at which ``metric`` reaches each
    threshold (NaN if it never does), the best value of ``metric`` and the
    first epoch at which it is attained, and the value at the last epoch.
    With ``per_run`` those rows are returned; otherwise one row per group of
    ``by`` holds their means over the group's runs (the seeds), with
    ``seeds`` (the number of runs), ``epoch_to_<t>_min``/``_max`` (the
    spread over seeds), ``reached_<t>`` (how many runs reach ``t``; the
    mean ``epoch_to_<t>`` is over those runs only) and ``best_std``/``last_std``
    (standard deviation over seeds, NaN for one seed).  Accuracies stay fractions.
    """
    by = list(by)
    if not len(runs):
        raise ValueError("no runs to summarise")
    missing = [k for k in by if k not in runs.columns]
    if missing:
        raise ValueError(f"runs has no column(s) {missing}")
    h = history[history["run_id"].isin(runs["run_id"])].sort_values(["run_id", "epoch"])
    rows = []
    for rid, g in h.groupby("run_id", sort=False):
        values, epochs = g[metric].to_numpy(dtype=float), g["epoch"].to_numpy()
        row = {"run_id": rid}
        for t in thresholds:
            hit = values >= t
            row[f"epoch_to_{_pct(t)}"] = float(epochs[hit.argmax()]) if hit.any() else _np.nan
        best = int(_np.nanargmax(values))
        row.update(best=float(values[best]), best_epoch=int(epochs[best]), last=float(values[-1]))
        rows.append(row)
    per = runs[["run_id", *by]].merge(pd.DataFrame(rows), on="run_id")
    if per_run:
        return per.reset_index(drop=True)
    g = per.groupby(by, sort=False)
    out = g.agg(seeds=("run_id", "size")).reset_index()
    for t in thresholds:
        col = f"epoch_to_{_pct(t)}"
        stats = g[col].agg(["mean", "min", "max", "count"]).reset_index(drop=True)
        out[col] = stats["mean"].to_numpy()
        out[f"{col}_min"] = stats["min"].to_numpy()
        out[f"{col}_max"] = stats["max"].to_numpy()
        out[f"reached_{_pct(t)}"] = stats["count"].to_numpy().astype(int)
    means = g[["best", "best_epoch", "last"]].mean().reset_index(drop=True)
    stds = g[["best", "last"]].std(ddof=1).reset_index(drop=True)
    for col in ("best", "best_epoch", "last"):
        out[col] = means[col].to_numpy()
    for col in ("best", "last"):
        out[f"{col}_std"] = stds[col].to_numpy()
    return out


def short_trajectory(loss: str, optimizer: str, lr: float, *, steps: int = 5, seed: int = 0, n: int = 64,
                     dim: int = 8, num_classes: int = 4, momentum: float = 0.9,
                     weight_decay: float = 0.0) -> _np.ndarray:
    """Parameters of a linear softmax classifier after each of ``steps`` full-batch steps (float64).

    ``loss`` is ``"cce"`` (Eq. 2), ``"mae"`` (Eq. 4, ``2 - 2 f_y``) or
    ``"unhinged"`` (``1 - f_y``, i.e. ``L_q`` at ``q = 1``, Eq. 6);
    ``optimizer`` is ``"sgd"`` (with ``momentum``) or ``"adam"`` (PyTorch's
    defaults otherwise).  Data and initial weights come from ``seed`` only, so
    two calls differ only in the loss and the optimiser.  Used to show that
    MAE at learning rate ``a`` follows the unhinged loss at ``2a`` under SGD,
    and at the same ``a`` under Adam (which divides out a constant factor).
    Returns an array of shape ``(steps, (dim + 1) * num_classes)``.
    """
    from .. import losses as _losses

    if loss not in ("cce", "mae", "unhinged"):
        raise ValueError(f"loss must be 'cce', 'mae' or 'unhinged', got {loss!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    y = torch.randint(0, num_classes, (n,), generator=gen)
    w = (0.1 * torch.randn(dim, num_classes, generator=gen, dtype=torch.float64)).requires_grad_()
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    if optimizer == "sgd":
        opt = torch.optim.SGD([w, b], lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam([w, b], lr=lr, weight_decay=weight_decay)
    fn = {"cce": _losses.cce, "mae": _losses.mae, "unhinged": lambda z, t: _losses.lq(z, t, 1.0)}[loss]
    out = []
    for _ in range(steps):
        opt.zero_grad()
        fn(x @ w + b, y).backward()
        opt.step()
        out.append(torch.cat([w.detach().flatten(), b.detach()]).numpy().copy())
    return _np.stack(out)


def format_convergence(table: pd.DataFrame, *, index: str = "method") -> pd.DataFrame:
    """:func:`convergence_table` for reading: accuracies in %, ``"mean (min-max)"`` epochs per threshold
    (``"never"`` where no run reaches it, ``"k of n runs: ..."`` where only some do), indexed by ``index``."""
    out = pd.DataFrame(index=table[index].map(lambda m: METHOD_LABELS.get(m, m)).rename(index))
    out["seeds"] = table["seeds"].to_numpy()
    for col in [c for c in table.columns if c.startswith("epoch_to_") and c.endswith("%")]:
        cells = []
        for _, row in table.iterrows():
            reached, n = int(row[col.replace("epoch_to_", "reached_")]), int(row["seeds"])
            if reached == 0:
                cells.append("never")
                continue
            cell = f"{row[col]:.1f} ({row[col + '_min']:.0f}-{row[col + '_max']:.0f})"
            cells.append(cell if reached == n else f"{reached} of {n} runs: {cell}")
        out[col.replace("epoch_to_", "epochs to ")] = cells
    out["best (%)"] = [f"{100 * v:.2f}" for v in table["best"]]
    out["epoch of best"] = [f"{v:.1f}" for v in table["best_epoch"]]
    out["last epoch (%)"] = [f"{100 * v:.2f}" for v in table["last"]]
    return out


def setbacks(runs: pd.DataFrame, history: pd.DataFrame, *, by: Sequence[str] = ("method",),
             max_epoch: int = 30, threshold: float = 0.005, metric: str = "test_acc") -> pd.Series:
    """How often learning stalls early (Sec. 3.2, Fig. 1a): the number of epochs ``e <= max_epoch`` at which
    ``metric`` falls by more than ``threshold`` from epoch ``e - 1``, summed over the runs of each group of
    ``by`` (the seeds).  Returns an integer Series indexed by ``by``."""
    by = list(by)
    if max_epoch < 2:
        raise ValueError(f"max_epoch must be at least 2, got {max_epoch!r}")
    missing = [k for k in by if k not in runs.columns]
    if missing:
        raise ValueError(f"runs has no column(s) {missing}")
    h = history[history["run_id"].isin(runs["run_id"]) & (history["epoch"] <= max_epoch)]
    h = h.sort_values(["run_id", "epoch"]).merge(runs[["run_id", *by]], on="run_id")
    falls = h.groupby("run_id", sort=False)[metric].diff() < -threshold
    return falls.groupby([h[k] for k in by]).sum().astype(int).rename("setbacks")


def compare_curves(runs_a: pd.DataFrame, history_a: pd.DataFrame, runs_b: pd.DataFrame,
                   history_b: pd.DataFrame, *, on: str = "seed", metric: str = "test_acc",
                   n_test: int | None = None) -> pd.DataFrame:
    """Two sets of runs paired by ``on`` (e.g. MAE of Fig. 1 and ``L_q`` at ``q = 1`` of Fig. 2, which Adam
    makes the same method, Sec. 3.2), epoch by epoch: ``<metric>_a``, ``<metric>_b``, their absolute
    difference ``diff`` and, given the test set size ``n_test``, the number of test ``images`` it amounts to.

    One row per pair and epoch that both have; raises ValueError if a side has two runs with the same ``on``.
    """
    for name, r in (("runs_a", runs_a), ("runs_b", runs_b)):
        if r[on].duplicated().any():
            raise ValueError(f"{name} has several runs per {on}={r[on][r[on].duplicated()].iloc[0]!r}: "
                             "cannot pair them")
    keep = [on, "epoch", metric]
    a = history_a.merge(runs_a[["run_id", on]], on="run_id")[keep]
    b = history_b.merge(runs_b[["run_id", on]], on="run_id")[keep]
    both = a.merge(b, on=[on, "epoch"], suffixes=("_a", "_b")).sort_values([on, "epoch"]).reset_index(drop=True)
    both["diff"] = (both[f"{metric}_a"] - both[f"{metric}_b"]).abs()
    if n_test is not None:
        both["images"] = (n_test * both["diff"]).round().astype(int)
    return both


# ---- dynamics ----
# Summaries of the chapter "Training dynamics" (Fig. 1c and Fig. 2, Sec. 4.1).


def fig2_q(runs: pd.DataFrame) -> pd.Series:
    """The ``q`` of each run as Fig. 2 labels it: 0 for CCE (whose stored ``q`` is unused), else ``q``."""
    return pd.Series(_np.where(runs["method"] == "cce", 0.0, runs["q"].astype(float)), index=runs.index, name="q")


def overfitting_table(runs: pd.DataFrame, history: pd.DataFrame, *, by: Sequence[str] = ("eta",),
                      metric: str = "test_acc", per_run: bool = False) -> pd.DataFrame:
    """How much each run loses after its peak: the check of Sec. 4.1's "no overfitting above a threshold q".

    For every run: ``peak`` (the highest ``metric`` over the epochs),
    ``peak_epoch`` (its first epoch), ``last`` (the last epoch's value),
    ``drop = peak - last`` and ``val_loss_min_epoch`` (the epoch of the
    lowest validation loss, the run's own loss on the noisy validation set).
    One row per group of ``by`` plus ``q`` (Fig. 2's ``q``, 0 for CCE; see
    :func:`fig2_q`) with the means over seeds and the spread of ``drop``
    (``drop_min``, ``drop_max``), unless ``per_run``.  Accuracies stay fractions.
    """
    by = list(by)
    runs = runs.assign(q=fig2_q(runs))
    h = history[history["run_id"].isin(runs["run_id"])].sort_values(["run_id", "epoch"])
    rows = []
    for rid, g in h.groupby("run_id", sort=False):
        values, epochs = g[metric].to_numpy(dtype=float), g["epoch"].to_numpy()
        peak = int(_np.nanargmax(values))
        row = {"run_id": rid, "peak": float(values[peak]), "peak_epoch": int(epochs[peak]),
               "last": float(values[-1]), "drop": float(values[peak] - values[-1])}
        if "val_loss" in g:
            row["val_loss_min_epoch"] = int(epochs[int(_np.nanargmin(g["val_loss"].to_numpy(dtype=float)))])
        rows.append(row)
    keys = [*by, "q"]
    per = runs[["run_id", *keys]].merge(pd.DataFrame(rows), on="run_id")
    if per_run:
        return per.reset_index(drop=True)
    g = per.groupby(keys, sort=True)
    cols = [c for c in ("peak", "peak_epoch", "last", "drop", "val_loss_min_epoch") if c in per]
    out = g[cols].mean()
    out.insert(0, "seeds", g.size())
    out["drop_min"], out["drop_max"] = g["drop"].min(), g["drop"].max()
    return out.reset_index()


def label_softmax_table(runs: pd.DataFrame, history: pd.DataFrame, epochs: Sequence[int], *,
                        by: Sequence[str] = ("method",)) -> pd.DataFrame:
    """Mean softmax at the given label on training samples whose label is right (``softmax_clean``) or
    wrong (``softmax_noisy``) at the chosen epochs, averaged over seeds, and their ``gap`` (Fig. 1c)."""
    by = list(by)
    h = history[history["run_id"].isin(runs["run_id"]) & history["epoch"].isin(list(epochs))]
    m = h.merge(runs[["run_id", *by]], on="run_id")
    out = m.groupby([*by, "epoch"], sort=False)[["softmax_clean", "softmax_noisy"]].mean()
    out["gap"] = out["softmax_clean"] - out["softmax_noisy"]
    return out.reset_index()


# ---- closed_set ----
# Helpers of the chapters "Closed-set noise" (Table 1) and "Open-set noise" (Table 2).


def best_mask(table: pd.DataFrame, n: int = 2, by: str | None = "source") -> pd.DataFrame:
    """True at the ``n`` best means of each column, within each group of rows (Table 1 bolds the best 2).

    ``table`` is numeric: a ``(column, stat)`` table (:func:`table1_wide`,
    :func:`table2_wide`; its means are ranked) or a plain table of means.
    ``by`` is the index level whose groups are ranked separately
    (``"source"``: ours and the paper's blocks; ``None``: all rows together).
    Means are compared as displayed (rounded by :func:`round_pct`), so ties
    at the ``n``-th value are all marked, as the paper does (CIFAR-100,
    class-dependent 0.2).  The mask has the columns of :func:`means`.
    """
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be a positive integer, got {n!r}")
    m = means(table).apply(lambda col: col.map(round_pct))
    if by is None:
        groups = [m.index]
    else:
        level = m.index.get_level_values(by)
        groups = [m.index[level == g] for g in pd.unique(level)]
    mask = pd.DataFrame(False, index=m.index, columns=m.columns)
    for rows in groups:
        block = m.loc[rows]
        for col in block.columns:
            vals = block[col].dropna()
            if not len(vals):
                continue
            cutoff = vals.sort_values(ascending=False).iloc[min(n, len(vals)) - 1]
            mask.loc[vals.index[vals >= cutoff], col] = True
    return mask


def style_best(table: pd.DataFrame, n: int = 2, by: str | None = "source", caption: str | None = None):
    """A :class:`pandas.io.formats.style.Styler` of :func:`format_pm` ``(table)`` with the cells of
    :func:`best_mask` in bold."""
    mask = best_mask(table, n, by)
    text = format_pm(table)
    styler = text.style.apply(lambda _: mask.map(lambda b: "font-weight: bold" if b else ""), axis=None)
    styler = styler.set_table_styles([{"selector": "td", "props": "text-align: right; white-space: nowrap"}])
    if caption:
        styler = styler.set_caption(caption)
    return styler


def flip_rate_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Realised noise rates against the nominal ``eta`` (Sec. 4.2), one row per (dataset, noise, eta).

    ``expected`` is :func:`gce.noise.expected_flip_rate` of the noise's ``T``
    with a uniform class prior: ``eta`` for uniform noise, ``eta`` times the
    share of source classes for class-dependent noise (5 of 10 classes, so
    ``eta / 2``).  ``train``/``val`` are the mean realised flip rates over the
    stored runs, ``val_min``/``val_max`` their range on the (small) validation split.
    """
    from .. import noise as _noise

    rows = runs[runs["noise"].isin(["uniform", "class_dependent"])]
    g = rows.groupby(["dataset", "noise", "eta"], sort=False)
    out = g.agg(train=("flip_rate_train", "mean"), val=("flip_rate_val", "mean"),
                val_min=("flip_rate_val", "min"), val_max=("flip_rate_val", "max")).reset_index()
    out.insert(3, "expected", [_noise.expected_flip_rate(_noise.transition_matrix(k, d, e))
                               for d, k, e in zip(out["dataset"], out["noise"], out["eta"])])
    return out


def transition_estimate_errors(runs: pd.DataFrame) -> pd.DataFrame:
    """How far Patrini et al.'s ``T-hat`` (stored with the CCE runs) lies from the true ``T`` of Eq. 1.

    One row per run with a ``T_hat_estimate``: ``mean_abs_error`` over all
    ``c * c`` entries, ``diag_abs_error`` over the diagonal (the probabilities
    of keeping a label), and ``max_abs_error``.  The true ``T`` is
    :func:`gce.noise.transition_matrix` of the run's noise, dataset and ``eta``.
    """
    import numpy as np

    from .. import noise as _noise

    if "T_hat_estimate" not in runs:
        return pd.DataFrame(columns=["dataset", "noise", "eta", "seed", "mean_abs_error", "diag_abs_error",
                                     "max_abs_error"])
    has = runs["T_hat_estimate"].map(lambda s: isinstance(s, str) and s.startswith("["))
    out = []
    for _, row in runs[has].iterrows():
        T_hat = np.asarray(json.loads(row["T_hat_estimate"]), dtype=float)
        T = _noise.transition_matrix(row["noise"], row["dataset"], float(row["eta"])).numpy()
        err = np.abs(T_hat - T)
        out.append({"dataset": row["dataset"], "noise": row["noise"], "eta": row["eta"], "seed": row["seed"],
                    "mean_abs_error": err.mean(), "diag_abs_error": np.diag(err).mean(),
                    "max_abs_error": err.max()})
    return pd.DataFrame(out)


def pruning_summary(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """What Algorithm 1's pruning did in the stored truncated-``L_q`` runs, one row per run.

    From the stored tables: ``kept_first`` (the fraction kept after the first
    pruning step, epoch ``prune_start``), ``kept_best`` (during the epoch whose
    model is reported by Table 1: ``best_epoch``), ``kept_last``, the share of
    samples with a wrong label ``noisy`` (``flip_rate_train``; for open-set
    noise, the outside images), and bounds on the *precision* of the kept set
    (the share of kept samples whose label is right) that follow from these
    numbers alone: at least ``(kept - noisy) / kept``, at most
    ``(1 - noisy) / kept``.  Which samples were kept is not stored, so the
    precision itself is not (see :func:`first_pruning_step`).
    ``pruned_before_best`` is True when the reported epoch came after the first
    pruning step (``best_epoch >= prune_start``, epochs counted from 0);
    otherwise the reported model is the plain ``L_q`` model.  ``lq_acc`` is the
    test accuracy at the best-validation epoch of the matching ``L_q`` run (same
    noise and seed), ``acc`` that of the truncated run, and ``*_last`` the same
    at the last epoch.
    """
    import numpy as np

    keys = ["dataset", "noise", "eta", "seed"]
    trunc = runs[runs["method"] == "trunc_lq"]
    lq = runs[runs["method"] == "lq"][keys + ["test_acc_best_val", "test_acc_last", "best_epoch"]]
    lq = lq.rename(columns={"test_acc_best_val": "lq_acc", "test_acc_last": "lq_acc_last",
                            "best_epoch": "lq_best_epoch"})
    out = []
    hist = history.set_index(["run_id", "epoch"])["kept"]
    for _, row in trunc.iterrows():
        h = hist.loc[row["run_id"]]
        start, best = int(row["prune_start"]), int(row["best_epoch"])
        kept_first = float(h.get(start + 1, np.nan))  # history epochs count from 1
        kept_best, kept_last = float(h.get(best + 1, np.nan)), float(h.iloc[-1])
        noisy = float(row["flip_rate_train"])
        out.append({**{k: row[k] for k in keys}, "prune_start": start, "best_epoch": best,
                    "pruned_before_best": best >= start, "kept_first": kept_first, "kept_best": kept_best,
                    "kept_last": kept_last, "noisy": noisy,
                    "precision_low": max(0.0, (kept_first - noisy) / kept_first) if kept_first > 0 else np.nan,
                    "precision_high": min(1.0, (1 - noisy) / kept_first) if kept_first > 0 else np.nan,
                    "acc": row["test_acc_best_val"], "acc_last": row["test_acc_last"]})
    out = pd.DataFrame(out)
    if not len(out):
        return out
    return out.merge(lq, on=keys, how="left")


def first_pruning_step(configs: Sequence[RunConfig], *, device=None, root=None) -> pd.DataFrame:
    """Redo the first pruning step of Algorithm 1 for truncated-``L_q`` runs and say which samples it keeps.

    Each run is retrained up to ``prune_start`` only (before it, truncated
    ``L_q`` is plain ``L_q``, so this is the same training as the stored run's
    first epochs, up to floating-point rounding); the parameters of its best
    noisy-validation epoch then give ``f_{y~}(x)`` on every training sample,
    and the sample is kept when ``f_{y~}(x) >= k`` (Eq. 13).  Returns one row
    per run and training sample: ``run`` (index into ``configs``), ``noise``,
    ``eta``, ``seed``, ``label`` (the true class of the image, or of the image
    an outside image replaced), ``noisy_label``, ``clean`` (the label is right
    and, for open-set noise, the image is in-set), ``f_y`` and ``kept``.
    Precision of the kept set = ``clean`` mean over kept rows; recall = ``kept``
    mean over clean rows.
    """
    configs = list(configs)
    for c in configs:
        if c.method != "trunc_lq":
            raise ValueError(f"first_pruning_step needs truncated L_q runs (method='trunc_lq'), got {c.method!r}")
        if c.prune_rule != "fixed":
            raise ValueError("first_pruning_step needs each run's first pruning epoch in prune_start; a run pruned "
                             "from its validation plateau (prune_rule='plateau') has it only in its stored history: "
                             "pass gce.book.chapters.open_set.first_step_configs(configs, runs)")
    short = [replace(c, epochs=c.prune_start) for c in configs]
    results = _train.train_many(short, keep_models=True, device=device, root=root)
    out = []
    cache: dict = {}
    for i, (cfg, res) in enumerate(zip(short, results)):
        gd = _train.build_group_data([cfg], root, cache)
        y = gd.train_y[0]
        probs = _train.predict_proba(res.extra["model"], res.extra["train_images"], res.extra["preprocess_mean"])
        f_y = probs.gather(1, y[:, None]).squeeze(1).numpy()
        ds = cache[cfg.dataset]
        ood = cache.get(("ood", cfg.ood, tuple(ds.train.images.shape[1:])))
        splits = _train.noisy_splits_of(cfg, ds, ood, root)
        if not torch.equal(splits.train.noisy_labels, y):
            raise RuntimeError("the recomputed noisy labels differ from the training run's; cannot match samples")
        true = splits.train.labels.numpy()
        out.append(pd.DataFrame({"run": i, "noise": cfg.noise, "eta": cfg.eta, "seed": cfg.seed,
                                 "label": true, "noisy_label": y.numpy(), "clean": gd.train_clean[0].numpy(),
                                 "f_y": f_y, "kept": f_y >= cfg.k}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


# ---- open_set ----


def ood_separability(images: torch.Tensor, ood_images: torch.Tensor, *, folds: int = 5, seed: int = 0) -> float:
    """How easily outside images are told from in-set images: the cross-validated accuracy of a
    logistic regression on raw pixels (open-set noise, Table 2).

    Equal numbers of each (the larger set is subsampled with ``seed``), so 0.5
    means the two sets look alike to a linear model and 1.0 means they are
    linearly separable.  ``images`` and ``ood_images`` are ``uint8`` ``(N, C, H, W)``.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    a = torch.as_tensor(images).reshape(len(images), -1).float().numpy() / 255.0
    b = torch.as_tensor(ood_images).reshape(len(ood_images), -1).float().numpy() / 255.0
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"images have {a.shape[1]} pixels, ood_images {b.shape[1]}: the shapes must agree")
    n = min(len(a), len(b))
    if n < folds:
        raise ValueError(f"need at least {folds} images of each kind, got {n}")
    rng = np.random.default_rng(seed)
    a, b = a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]
    X, y = np.concatenate([a, b]), np.repeat([0, 1], n)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(LogisticRegression(max_iter=2000), X, y, cv=cv).mean())


# ---- dynamics: display ----
# Display helpers of the chapter "Training dynamics" (Fig. 1c and Fig. 2, Sec. 4.1).

#: Column names of :func:`format_overfitting`, keyed by the columns of :func:`overfitting_table`.
OVERFITTING_COLUMNS = {"peak": "peak %", "peak_epoch": "peak epoch", "last": "last %", "drop": "drop",
                       "drop_min": "drop min", "drop_max": "drop max",
                       "val_loss_min_epoch": "val-loss min epoch"}


def format_overfitting(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """:func:`overfitting_table` for reading (Sec. 4.1, Fig. 2): one row per ``(eta, q)``, accuracies in %
    and drops in percentage points rounded with :func:`round_pct`, epochs (means over seeds) to one decimal,
    under the short names of :data:`OVERFITTING_COLUMNS` so that the table fits the book's column.

    The values stay numbers; ``seeds`` is left out (say it in the caption).  A column of
    :data:`OVERFITTING_COLUMNS` that ``table`` lacks is skipped; missing ``eta`` or ``q`` raises ValueError.
    """
    missing = [c for c in ("eta", "q", "peak", "last", "drop") if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column(s) {missing}: pass the output of overfitting_table")
    out = table.set_index(["eta", "q"])[[c for c in OVERFITTING_COLUMNS if c in table.columns]].copy()
    for col in out.columns:
        if col.endswith("epoch"):
            out[col] = out[col].astype(float).round(1)
        else:
            out[col] = [round_pct(100 * float(v), digits) for v in out[col]]
    return out.rename(columns=OVERFITTING_COLUMNS)


# ---- cce_vs_mae: Fig. 1(b) beside the paper ----
# Sec. 3.2 reads Fig. 1(b) as two numbers: MAE's best test accuracy within its whole budget (38.29 % in
# 2000 epochs) and how soon CCE gets there (39.92 % after 7 epochs).  These functions compute the same
# two numbers from stored runs, so that the pocket analogue can sit in the paper's table.


def mae_catch_up(runs: pd.DataFrame, history: pd.DataFrame, *, metric: str = "test_acc") -> pd.DataFrame:
    """Sec. 3.2's reading of Fig. 1(b), per dataset and seed: MAE's best ``metric`` within its whole epoch
    budget, and the first epoch at which CCE's run with the same seed reaches it.

    ``runs`` holds clean-label CCE and MAE runs (``method`` ``"cce"``/``"mae"``, columns ``dataset`` and
    ``seed``).  One row per dataset and seed with a run of each method: ``mae_best``, ``mae_best_epoch``,
    ``mae_epochs`` (MAE's budget: its last epoch), ``cce_epoch`` (first epoch, 1-based, at which CCE's
    ``metric`` is at least ``mae_best``; NaN if it never is), ``cce_at`` (CCE's ``metric`` at that epoch,
    NaN if never) and ``cce_best``.  Accuracies stay fractions.
    """
    need = {"run_id", "dataset", "method", "seed"}
    if need - set(runs.columns):
        raise ValueError(f"runs has no column(s) {sorted(need - set(runs.columns))}")
    sel = runs[runs["method"].isin(["cce", "mae"])]
    if not len(sel):
        raise ValueError(f"no CCE or MAE runs among methods {sorted(runs['method'].unique())}")
    for key, group in sel.groupby(["dataset", "method", "seed"]):
        if len(group) > 1:
            raise ValueError(f"several runs for (dataset, method, seed) = {key}: cannot pair CCE with MAE")
    h = history[history["run_id"].isin(sel["run_id"])].sort_values(["run_id", "epoch"])
    curves = {rid: (g["epoch"].to_numpy(), g[metric].to_numpy(dtype=float)) for rid, g in h.groupby("run_id")}
    rows = []
    for (dataset, seed), pair in sel.groupby(["dataset", "seed"], sort=True):
        ids = dict(zip(pair["method"], pair["run_id"]))
        if set(ids) != {"cce", "mae"} or not all(i in curves for i in ids.values()):
            continue
        (me, mv), (ce, cv) = curves[ids["mae"]], curves[ids["cce"]]
        best = int(_np.nanargmax(mv))
        hit = cv >= mv[best]
        rows.append({"dataset": dataset, "seed": seed, "mae_best": float(mv[best]),
                     "mae_best_epoch": int(me[best]), "mae_epochs": int(me[-1]),
                     "cce_epoch": float(ce[hit.argmax()]) if hit.any() else _np.nan,
                     "cce_at": float(cv[hit.argmax()]) if hit.any() else _np.nan,
                     "cce_best": float(_np.nanmax(cv))})
    if not rows:
        raise ValueError("no dataset and seed has both a CCE and an MAE run with a history")
    return pd.DataFrame(rows)


def fig1b_beside_paper(runs: pd.DataFrame, history: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Our runs on ``dataset`` in the shape of :func:`gce.book.experiments.paper_fig1b` (Sec. 3.2, Fig. 1(b)),
    with the paper's rows above them: columns ``source`` (``"paper"``/``"ours"``), ``method``, ``dataset``,
    ``best_test_acc`` (%), ``epochs``, ``seeds`` and ``note``.

    Our MAE row: the mean over seeds of MAE's best test accuracy within its budget (``epochs`` = the
    budget).  Our CCE row: the mean over seeds of CCE's test accuracy at the first epoch it reaches
    that seed's MAE best, and the mean of those epochs (:func:`mae_catch_up`); the note says in how
    many seeds CCE gets there at all.  ``best_test_acc`` and ``epochs`` stay numbers (NaN where CCE never
    gets there in any seed)."""
    per = mae_catch_up(runs[runs["dataset"] == dataset], history)
    n = len(per)
    reached = per.dropna(subset=["cce_epoch"])
    budget = int(per["mae_epochs"].max())
    cce_note = (f"first epoch at MAE's best, {len(reached)} of {n} seeds" if len(reached)
                else f"never reaches MAE's best ({n} seeds)")
    ours = pd.DataFrame({
        "source": "ours", "method": ["cce", "mae"], "dataset": dataset,
        "best_test_acc": [100 * reached["cce_at"].mean() if len(reached) else _np.nan,
                          100 * per["mae_best"].mean()],
        "epochs": [reached["cce_epoch"].mean() if len(reached) else _np.nan, float(budget)],
        "seeds": [len(reached), n],
        "note": [cce_note, f"best within {budget} epochs"]})
    from .experiments import paper_fig1b

    paper = paper_fig1b().assign(source="paper", seeds=1)
    paper["epochs"] = paper["epochs"].astype(float)
    return pd.concat([paper, ours], ignore_index=True)[list(ours.columns)]


def largest_gap(runs: pd.DataFrame, history: pd.DataFrame, *, ahead: str = "cce", behind: str = "mae",
                metric: str = "test_acc") -> dict:
    """Where the seed-mean curves of two methods are furthest apart (Fig. 1(a, b), Sec. 3.2): the epoch at
    which ``mean(ahead) - mean(behind)`` of ``metric`` is largest, with both means and the gap there
    (fractions).  ``runs`` holds the runs of both methods on one dataset; epochs both have count."""
    for m in (ahead, behind):
        if not (runs["method"] == m).any():
            raise ValueError(f"no runs with method={m!r} among {sorted(runs['method'].unique())}")
    h = history.merge(runs[["run_id", "method"]], on="run_id")
    curves = h.groupby(["method", "epoch"])[metric].mean().unstack(0)[[ahead, behind]].dropna()
    gap = curves[ahead] - curves[behind]
    epoch = int(gap.idxmax())
    return {"epoch": epoch, ahead: float(curves.loc[epoch, ahead]), behind: float(curves.loc[epoch, behind]),
            "gap": float(gap.loc[epoch])}


# ---- closed_set: what truncation changed ----
# Table 1's truncated-L_q column against its L_q column, paired by seed (the chapter "Closed-set noise").


def truncation_effect(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """What Algorithm 1's pruning changed in the runs Table 1 selects (Sec. 4.3, Eq. 13), one row per
    ``(dataset, noise, eta)`` in the order of ``runs``.

    Built on :func:`pruning_summary` (which pairs every truncated-``L_q`` run
    with the ``L_q`` run of the same data, noise and seed).  Columns: ``runs``
    (truncated runs), ``engaged`` (how many of them report a model selected at
    or after the first pruning step, ``best_epoch >= prune_start``, that was
    trained on a pruned set, ``kept < 1`` in that epoch: only there can
    truncation change the reported number), ``prune_start`` (epochs, counted
    from 0 as ``best_epoch``), ``best_epoch`` (mean over the truncated runs),
    ``kept_first`` (mean kept fraction after the first pruning step),
    ``kept_none`` (runs whose first pruning step kept no sample at all: their
    loss is 0 from then on, and only the weight decay still moves them),
    ``kept_reported`` (mean kept fraction in the reported epoch; 1 where it
    precedes pruning), ``trunc_minus_lq`` (mean over seeds of truncated minus
    ``L_q`` test accuracy at each run's best-validation epoch, in points) and
    ``trunc_minus_lq_se`` (its standard error, ddof 1; 0 for one seed).
    """
    need = {"run_id", "dataset", "noise", "eta", "seed", "method", "prune_start", "best_epoch",
            "test_acc_best_val", "test_acc_last", "flip_rate_train"}
    if not need <= set(runs.columns):
        raise ValueError(f"runs lack columns {sorted(need - set(runs.columns))}: pass store.runs of table1")
    if not {"run_id", "epoch", "kept"} <= set(history.columns):
        raise ValueError("history needs columns run_id, epoch and kept: pass store.history of table1")
    if not (runs["method"] == "trunc_lq").any():
        raise ValueError("runs hold no truncated L_q runs (method='trunc_lq')")
    ps = pruning_summary(runs, history)
    if ps["lq_acc"].isna().any():
        bad = ps.loc[ps["lq_acc"].isna(), ["dataset", "noise", "eta", "seed"]].iloc[0].to_dict()
        raise ValueError(f"no L_q run pairs the truncated run {bad}: Table 1 needs both methods per seed")
    ps = ps.assign(engaged=ps["pruned_before_best"] & (ps["kept_best"] < 1.0),
                   diff=100 * (ps["acc"] - ps["lq_acc"]))
    rows = []
    for (d, kind, eta), g in ps.groupby(["dataset", "noise", "eta"], sort=False):
        n = len(g)
        se = float(g["diff"].std(ddof=1) / _np.sqrt(n)) if n > 1 else 0.0
        rows.append({"dataset": d, "noise": kind, "eta": float(eta), "runs": n, "engaged": int(g["engaged"].sum()),
                     "prune_start": int(g["prune_start"].iloc[0]), "best_epoch": float(g["best_epoch"].mean()),
                     "kept_first": float(g["kept_first"].mean()), "kept_none": int((g["kept_first"] == 0).sum()),
                     "kept_reported": float(g["kept_best"].mean()),
                     "trunc_minus_lq": float(g["diff"].mean()), "trunc_minus_lq_se": se})
    return pd.DataFrame(rows)


# ---- open_set: what pruning leaves (Table 2's pruning check) ----


def classes_dropped(per_class: pd.DataFrame) -> pd.DataFrame:
    """Per run, whether a pruning step of truncated ``L_q`` (Algorithm 1, Eq. 13; Sec. 4.3's Table 2) dropped
    whole classes or every sample.

    ``per_class`` is :func:`gce.book.experiments.kept_by_class`'s frame (one row per
    run and noisy label).  One row per run: ``run``, ``noise``, ``eta``,
    ``seed``, ``kept`` (the fraction of all training samples kept), ``labels``
    (labels that carry at least one clean sample), ``dropped`` (how many of
    them kept none of their clean samples: the class is gone from the training
    set), ``dropped_labels`` (those labels, a tuple) and ``kept_nothing`` (no
    sample kept at all: every weight ``w_i`` is 0, so the loss of Eq. 13 is 0
    and only weight decay still changes the parameters).
    """
    need = {"run", "noise", "eta", "seed", "noisy_label", "n", "kept", "n_clean", "clean_kept"}
    if not need <= set(per_class.columns):
        raise ValueError(f"per_class lacks columns {sorted(need - set(per_class.columns))}: "
                         "pass the frame of gce.book.experiments.kept_by_class")
    rows = []
    for (run, noise, eta, seed), g in per_class.groupby(["run", "noise", "eta", "seed"], sort=True):
        has_clean = g[g["n_clean"] > 0]
        gone = has_clean[has_clean["clean_kept"] == 0]
        kept = float((g["kept"] * g["n"]).sum() / g["n"].sum())
        rows.append({"run": run, "noise": noise, "eta": float(eta), "seed": seed, "kept": kept,
                     "labels": len(has_clean), "dropped": len(gone),
                     "dropped_labels": tuple(int(v) for v in gone["noisy_label"]), "kept_nothing": kept == 0})
    return pd.DataFrame(rows, columns=["run", "noise", "eta", "seed", "kept", "labels", "dropped",
                                       "dropped_labels", "kept_nothing"])


def empty_pruning_runs(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per truncated-``L_q`` run, from the stored history: what the pruning steps of Algorithm 1 kept over the
    epochs, and whether a step kept no sample at all (with every ``w_i = 0`` the loss of Eq. 13 is 0).

    One row per ``trunc_lq`` run of ``runs``: ``run_id``, ``noise``, ``eta``,
    ``seed``, ``best_epoch`` (the run's best noisy-validation epoch, counted
    from 0 as ``prune_start``: when it precedes ``prune_start`` every pruning
    step recomputed the weights from the same parameters), ``kept_first``
    (fraction kept in the epoch of the first pruning step), ``kept_min``,
    ``kept_last``, ``kept_values`` (how many different kept fractions the
    pruning steps produced), ``empty_epochs`` (epochs whose ``kept`` is 0),
    ``empty_from`` (the first of them, history epochs counted from 1; NaN if
    none) and ``acc_range_empty`` (largest minus smallest test accuracy over
    those epochs: how far the model moved with a loss of 0; NaN if none).
    Accuracies and fractions stay fractions.
    """
    need = {"run_id", "noise", "eta", "seed", "method", "prune_start", "best_epoch"}
    if not need <= set(runs.columns) or not {"run_id", "epoch", "kept", "test_acc"} <= set(history.columns):
        raise ValueError(f"runs need columns {sorted(need)} and history run_id, epoch, kept, test_acc")
    trunc = runs[runs["method"] == "trunc_lq"]
    h = history[history["run_id"].isin(trunc["run_id"])].sort_values(["run_id", "epoch"])
    rows = []
    for _, r in trunc.iterrows():
        g = h[h["run_id"] == r["run_id"]]
        pruned = g[g["epoch"] > int(r["prune_start"])]  # history epoch prune_start + 1 is the first pruned one
        empty = g[g["kept"] == 0]
        rows.append({"run_id": r["run_id"], "noise": r["noise"], "eta": float(r["eta"]), "seed": r["seed"],
                     "best_epoch": int(r["best_epoch"]),
                     "kept_first": float(pruned["kept"].iloc[0]) if len(pruned) else _np.nan,
                     "kept_min": float(g["kept"].min()), "kept_last": float(g["kept"].iloc[-1]),
                     "kept_values": int(pruned["kept"].nunique()), "empty_epochs": len(empty),
                     "empty_from": float(empty["epoch"].iloc[0]) if len(empty) else _np.nan,
                     "acc_range_empty": float(empty["test_acc"].max() - empty["test_acc"].min())
                     if len(empty) else _np.nan})
    return pd.DataFrame(rows, columns=["run_id", "noise", "eta", "seed", "best_epoch", "kept_first", "kept_min",
                                       "kept_last", "kept_values", "empty_epochs", "empty_from", "acc_range_empty"])


# ---- pruning quality (the truncated, closed_set and open_set chapters) ----


def pruning_quality(samples: pd.DataFrame, by: Sequence[str] = ("noise", "seed")) -> pd.DataFrame:
    """What a pruning step of Algorithm 1 kept, per group of :func:`first_pruning_step`'s rows.

    Columns: ``correct`` (fraction of samples whose label is right), ``kept``
    (fraction kept, ``f_y >= k``), ``precision`` (fraction of the kept samples
    whose label is right; NaN when nothing was kept) and ``recall`` (fraction of
    the right-labelled samples that were kept).
    """
    by = list(by)
    missing = [c for c in (*by, "clean", "kept") if c not in samples.columns]
    if missing:
        raise ValueError(f"samples lacks the column(s) {', '.join(missing)}; pass first_pruning_step's output")
    s = samples.assign(clean=samples["clean"].astype(bool), kept=samples["kept"].astype(bool))
    s = s.assign(kept_clean=s["clean"] & s["kept"])
    g = s.groupby(by, sort=True)
    n_kept, n_clean = g["kept"].sum(), g["clean"].sum()
    return pd.DataFrame({"correct": g["clean"].mean(), "kept": g["kept"].mean(),
                         "precision": (g["kept_clean"].sum() / n_kept.where(n_kept > 0)).astype(float),
                         "recall": (g["kept_clean"].sum() / n_clean.where(n_clean > 0)).astype(float)})


