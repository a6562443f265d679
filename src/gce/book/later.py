"""After the paper: published numbers of later work for GCE, and the losses that followed it side by side.

The book's chapter *After the paper* (``book/after_the_paper.ipynb``) uses:

- :func:`later_results` -- the published numbers of ``gce/book/paper/later_results.csv``: clean test accuracy (%)
  of GCE, CE and the methods reported beside them on CIFAR-N, each row with its source (paper and table,
  repository and file, or discussion thread) and its protocol (architecture, epochs, checkpoint: best test epoch, last
  epoch or best noisy-validation epoch).
- :func:`prose_numbers` -- the published numbers the chapter's prose quotes (:data:`PROSE_NUMBERS`), by glue key.
- :func:`later_protocols` and :func:`later_table` -- the protocols (source, architecture, epochs,
  checkpoint) and the numbers as tables, a row per method and protocol.
- :func:`losses_at_probability` and :func:`plot_losses_at_probability` -- each loss of :mod:`gce.losses`
  as a function of the softmax probability at the label.
- :func:`grid_table` and :func:`differences` -- the later losses' rows of Table 1's grid (the ``later``
  experiment of :mod:`gce.book.experiments`) beside the paper's losses trained with them, and their paired differences
  from L_q.
"""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pandas as pd
import torch

from .. import losses as _losses

__all__ = ["CHECKPOINTS", "later_results", "check_later_results", "later_protocols", "later_table", "published",
           "LOSS_CURVES", "losses_at_probability", "plot_losses_at_probability", "GRID_METHODS", "common_cells", "grid_table", "unfitted_words",
           "differences", "plot_differences", "BLOCK_TITLES", "difference_summary", "difference_words",
           "PROSE_NUMBERS", "prose_numbers"]

#: The checkpoints a published number can be read at, namely the highest test accuracy over all epochs, the last
#: epoch, or the epoch of highest accuracy on a held-out split of the *noisy* training labels.
CHECKPOINTS = ("best_test", "last", "best_noisy_val")
_COLUMNS = ["cite", "source", "url", "dataset", "noise", "method", "accuracy", "std", "architecture", "epochs",
            "checkpoint", "note"]
_NOISE_ORDER = ["aggre", "random", "random1", "worse", "noisy"]


def later_results() -> pd.DataFrame:
    """The published numbers of later work (``gce/book/paper/later_results.csv``), one row per number.

    Returns
    -------
    pandas.DataFrame
        Columns ``cite`` (key in the book's ``references.bib``, empty for threads), ``source`` (paper and table,
        repository and file, or thread), ``url``, ``dataset`` (``cifar10n``, ``cifar100n``), ``noise`` (the
        CIFAR-N label set), ``method``, ``accuracy`` and ``std`` (clean test accuracy, %), ``architecture``,
        ``epochs`` (missing where the source gives each method its own schedule), ``checkpoint`` (one of
        :data:`CHECKPOINTS`) and ``note``.

    Raises ``ValueError`` naming the row of a malformed file (no source, unknown checkpoint, accuracy outside
    [0, 100]).
    """
    with resources.files("gce.book").joinpath("paper", "later_results.csv").open() as f:
        df = pd.read_csv(f, comment="#", dtype={"cite": str, "url": str, "note": str})
    check_later_results(df)
    return df


def check_later_results(df: pd.DataFrame) -> None:
    """Raise ``ValueError`` naming the first malformed row of a table of published numbers: wrong columns,
    no source, neither a citation key nor a URL, an unknown checkpoint, an accuracy outside [0, 100]."""
    if list(df.columns) != _COLUMNS:
        raise ValueError(f"later_results.csv must have the columns {_COLUMNS}, got {list(df.columns)}")
    for i, row in df.iterrows():
        if not isinstance(row["source"], str) or not row["source"].strip():
            raise ValueError(f"later_results.csv row {i}: every number needs a source")
        if pd.isna(row["cite"]) and pd.isna(row["url"]):
            raise ValueError(f"later_results.csv row {i}: give a citation key or a URL for {row['source']!r}")
        if row["checkpoint"] not in CHECKPOINTS:
            raise ValueError(f"later_results.csv row {i}: checkpoint={row['checkpoint']!r}, not one of {CHECKPOINTS}")
        if not 0 <= row["accuracy"] <= 100:
            raise ValueError(f"later_results.csv row {i}: accuracy={row['accuracy']} is not a percentage")


def _short_source(source: str) -> str:
    """A source as a table shows it: a paper as author and year, a file of the reproduction's repository
    (KlemenVovk/noisy-labels) by its name, a GitHub thread by its number."""
    source = re.sub(r"^(.*) \((?:[A-Za-z]+ )?(\d{4})\), ", r"\1 \2, ", source)
    source = re.sub(r"^KlemenVovk/noisy-labels, (?:\S*/)?", "", source)
    source = re.sub(r"^UCSC-REAL/cifar-10-100n, GitHub thread (\d+).*", r"cifar-10-100n thread \1", source)
    return re.sub(r", column (.*)$", lambda m: f" ({m.group(1).lower()})", source)


def _with_protocols(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["epochs"] = df["epochs"].map(lambda e: "own" if pd.isna(e) else str(int(e)))
    df["source"] = df["source"].map(_short_source)
    keys = df[["source", "architecture", "epochs", "checkpoint"]].apply(tuple, axis=1)
    codes = {k: f"P{i + 1}" for i, k in enumerate(dict.fromkeys(keys))}
    df["protocol"] = keys.map(codes)
    return df


def later_protocols(df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The protocols of :func:`later_results`, one row each (``P1``, ``P2``, ...): source, architecture,
    epochs (``own``: each method's original schedule) and checkpoint.  :func:`later_table` refers to them."""
    df = _with_protocols(later_results() if df is None else df)
    out = df.drop_duplicates("protocol").set_index("protocol")
    return out[["source", "architecture", "epochs", "checkpoint"]]


def later_table(df: pd.DataFrame | None = None, dataset: str = "cifar10n") -> pd.DataFrame:
    """The numbers of :func:`later_results` for one dataset: a row per method and protocol (the keys of
    :func:`later_protocols`), a column per label set, cells ``mean ± std`` (or the single number)."""
    df = _with_protocols(later_results() if df is None else df)
    df = df[df["dataset"] == dataset].copy()
    if df.empty:
        raise ValueError(f"no published numbers for dataset={dataset!r}")
    df["cell"] = [f"{a:.2f}" if pd.isna(s) else f"{a:.2f} ± {s:.2f}" for a, s in zip(df["accuracy"], df["std"])]
    table = df.pivot_table(index=["method", "protocol"], columns="noise", values="cell", aggfunc="first",
                           sort=False)
    table = table[[n for n in _NOISE_ORDER if n in table.columns]].fillna("")
    table.columns.name = None
    return table


def published(method: str, noise: str, source: str, *, checkpoint: str | None = None,
              df: pd.DataFrame | None = None) -> float:
    """The one number of :func:`later_results` for ``method`` on label set ``noise`` whose source contains
    ``source`` (and whose checkpoint is ``checkpoint``, if given); ``ValueError`` unless exactly one matches."""
    df = later_results() if df is None else df
    hit = df[(df["method"] == method) & (df["noise"] == noise) & df["source"].str.contains(source, regex=False)]
    if checkpoint is not None:
        hit = hit[hit["checkpoint"] == checkpoint]
    if len(hit) != 1:
        raise ValueError(f"{len(hit)} published numbers match method={method!r}, noise={noise!r}, "
                         f"source={source!r}, checkpoint={checkpoint!r}; expected one")
    return float(hit["accuracy"].iloc[0])


#: The published numbers quoted in the prose of *After the paper*, by the chapter's glue key, each given as the
#: arguments of :func:`published` (method, label set, a part of the source's name, and the checkpoint or None).
PROSE_NUMBERS = {
    "gce_aggre": ("GCE", "aggre", "Chhabra", None),
    "gce_worse": ("GCE", "worse", "Chhabra", None),
    "ce_aggre_reported": ("CE", "aggre", "Reported", None),
    "ce_worse_reported": ("CE", "worse", "thread 5", "best_test"),
    "ce_worse_last": ("CE", "worse", "thread 5", "last"),
    **{key: ("CE", noise, source, None)
       for noise in ("aggre", "random1", "worse")
       for key, source in ((f"ce_{noise}_rerun", "CIFAR-N.tex"), (f"ce_{noise}_val", "benchmark.tex"))},
    "ce_random1_thread8": ("CE", "random1", "thread 8", None),
    "gce_random1_code": ("GCE", "random1", "GCE_original.txt", None),
    "cot_described": ("Co-teaching", "aggre", "Described", None),
    "cot_own": ("Co-teaching", "aggre", "CIFAR-N.tex", None),
}


def prose_numbers(df: pd.DataFrame | None = None, numbers: dict | None = None) -> dict[str, float]:
    """The published numbers that the prose of *After the paper* quotes, looked up by :func:`published`.

    Parameters
    ----------
    df : pandas.DataFrame, optional
        The table of :func:`later_results` (read from the package when omitted).
    numbers : dict, optional
        Key -> ``(method, noise, source, checkpoint)``; default :data:`PROSE_NUMBERS`.

    Returns
    -------
    dict
        Key -> clean test accuracy (%), in the order of ``numbers``, for the chapter to glue.  A key whose
        arguments match no number, or several, raises the ``ValueError`` of :func:`published`.
    """
    df = later_results() if df is None else df
    numbers = PROSE_NUMBERS if numbers is None else numbers
    return {key: published(method, noise, source, checkpoint=checkpoint, df=df)
            for key, (method, noise, source, checkpoint) in numbers.items()}


#: The losses drawn by :func:`losses_at_probability`, as label -> (function of gce.losses, its parameters).
LOSS_CURVES = {
    "CCE": (_losses.cce, {}),
    "MAE / 2": (_losses.lq, {"q": 1.0}),
    "Lq (q = 0.7)": (_losses.lq, {"q": 0.7}),
    "SCE (0.1, 1)": (_losses.sce, {}),
    "NCE+RCE (1, 1)": (_losses.nce_rce, {}),
    "NCE+MAE (1, 1)": (_losses.nce_mae, {}),
    "Taylor CE (t = 2)": (_losses.taylor_ce, {"t": 2}),
    "Taylor CE (t = 6)": (_losses.taylor_ce, {"t": 6}),
}


def losses_at_probability(f_y, c: int = 10, curves: dict | None = None) -> pd.DataFrame:
    """Each loss of ``curves`` (default :data:`LOSS_CURVES`) at softmax probability ``f_y`` of the label.

    The logits put ``f_y`` on the label and share ``1 - f_y`` equally among the other ``c - 1`` classes
    (NCE depends on how the rest is shared; the other losses only on ``f_y``).  ``f_y`` must lie in (0, 1).
    Returns a DataFrame with the column ``f_y`` and one column per loss.
    """
    p = np.asarray(f_y, dtype=float).ravel()
    if p.size == 0 or not ((p > 0) & (p < 1)).all():
        raise ValueError("f_y must be probabilities strictly between 0 and 1")
    if isinstance(c, bool) or not isinstance(c, int) or c < 2:
        raise ValueError(f"c must be an integer >= 2, got c={c!r}")
    pt = torch.as_tensor(p, dtype=torch.float64)
    logits = torch.log((1 - pt) / (c - 1)).unsqueeze(1).repeat(1, c)
    logits[:, 0] = torch.log(pt)
    y = torch.zeros(len(p), dtype=torch.long)
    out = {"f_y": p}
    for name, (loss, kwargs) in (curves or LOSS_CURVES).items():
        out[name] = loss(logits, y, reduction="none", **kwargs).numpy()
    return pd.DataFrame(out)


def plot_losses_at_probability(c: int = 10, *, n: int = 400, ax=None, ylim: float = 6.0):
    """Each loss of :data:`LOSS_CURVES` against ``f_y`` (:func:`losses_at_probability`), in the book's style.

    Returns the figure.  The chapter *After the paper* draws it for ``c = 10`` classes.
    """
    import matplotlib.pyplot as plt

    from .plots import FIG_WIDTH, use_book_style

    use_book_style()
    curves = losses_at_probability(np.linspace(1e-3, 1 - 1e-3, n), c)
    if ax is None:
        _, ax = plt.subplots(figsize=(FIG_WIDTH * 0.8, 3.6))
    styles = ["-", "--", "-.", ":", (0, (5, 1.5)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (6, 2, 1, 2))]
    colors = plt.get_cmap("tab10").colors
    for i, name in enumerate(c_ for c_ in curves.columns if c_ != "f_y"):
        ax.plot(curves["f_y"], curves[name], ls=styles[i % len(styles)], color=colors[i % 10], label=name)
    ax.set(xlabel="softmax probability of the label, $f_y$", ylabel="loss", ylim=(0, ylim), xlim=(0, 1),
           title=f"The losses of gce.losses against $f_y$ ({c} classes, the rest shared equally)")
    ax.legend(ncol=2, loc="upper right")
    return ax.figure


#: The rows of :func:`grid_table`, namely the paper's losses of Table 1 that need no transition matrix, then the
#: later ones.
GRID_METHODS = ("cce", "mae", "lq", "trunc_lq", *_losses.LATER_LOSSES)


def stored_grids(scales=("pocket", "cpu"), results=None) -> dict[str, pd.DataFrame]:
    """The stored runs of the ``table1`` and ``later`` experiments together, per scale of ``scales`` where both are
    stored (:func:`gce.book.reader.read`: the current grids, read, never trained)."""
    from . import reader

    out = {}
    for scale in scales:
        got = [reader.read(name, scale, results) for name in ("table1", "later")]
        if all(g is not None for g in got):
            out[scale] = pd.concat([g[0] for g in got], ignore_index=True)
    return out


def common_cells(runs: pd.DataFrame, methods) -> pd.DataFrame:
    """The rows of ``runs`` (of ``methods``) in the noise settings ``(dataset, noise, eta)`` where every one of
    ``methods`` has runs: Table 1's settings that the ``later`` grid covers at the runs' scale (all of them at the
    pocket scale, the uniform ones at the cpu scale)."""
    runs = runs[runs["method"].isin(methods)]
    cell = ["dataset", "noise", "eta"]
    have = runs.groupby(cell, sort=False)["method"].agg(lambda m: set(methods) <= set(m))
    keep = have[have].index
    return runs[pd.MultiIndex.from_frame(runs[cell]).isin(keep)]


def grid_table(runs: pd.DataFrame, methods=GRID_METHODS) -> pd.DataFrame:
    """Table 1's grid for ``methods`` from the stored runs of the ``table1`` and ``later`` experiments together
    (same datasets, noise, seeds and schedule), as numbers: rows ``(source, method)`` (one source per dataset
    block), columns ``(setting, stat)``, test accuracy (%) at the epoch of best noisy-validation accuracy, mean and
    std over seeds (:func:`gce.book.analysis.table1_wide` without the paper's rows).  The book's chapter *After the
    paper* shows it with :func:`gce.book.analysis.style_best`."""
    from . import analysis
    from .experiments import METHOD_LABELS

    unknown = sorted(set(methods) - set(runs["method"]))
    if unknown:
        raise ValueError(f"no stored runs of the methods {unknown}; the table needs runs of table1 and later")
    wide = analysis.table1_wide(common_cells(runs, methods), with_paper=False)
    labels = [METHOD_LABELS.get(m, m) for m in methods]
    order = [(s, m) for s in dict.fromkeys(wide.index.get_level_values("source")) for m in labels
             if (s, m) in wide.index]
    return wide.loc[order]


#: Panel titles of :func:`plot_differences` for the book's dataset blocks.
BLOCK_TITLES = {"digits": "digits (pocket)", "digit_pairs": "digit_pairs (pocket)",
                "cifar10_jpeg_features": "CIFAR-10 (JPEG copy), cpu", "cifar10_features": "CIFAR-10, cpu"}


def differences(runs: pd.DataFrame, reference: str = "lq", methods=tuple(_losses.LATER_LOSSES)) -> pd.DataFrame:
    """Each of ``methods`` minus ``reference`` in test accuracy at the epoch of best noisy-validation accuracy
    (points), paired by seed (the same noisy labels), per dataset, noise setting and method, in the settings where
    all of them have runs (:func:`common_cells`): columns ``dataset``,
    ``noise``, ``eta``, ``method``, ``mean``, ``se`` (standard error over seeds, :func:`gce.book.stats.paired`) and
    ``seeds``.  A plain report: the later losses' papers make no claim that the book registers."""
    from . import stats

    missing = sorted({reference, *methods} - set(runs["method"]))
    if missing:
        raise ValueError(f"no stored runs of the methods {missing}")
    acc = common_cells(runs, (reference, *methods)).pivot_table(
        index=["dataset", "noise", "eta", "seed"], columns="method", values="test_acc_best_val", sort=False) * 100
    rows = []
    for (d, noise, eta), g in acc.groupby(level=["dataset", "noise", "eta"], sort=False):
        for m in methods:
            both = g[[m, reference]].dropna()
            e = stats.paired(both[m].to_numpy(), both[reference].to_numpy())
            rows.append({"dataset": d, "noise": noise, "eta": float(eta), "method": m, "mean": e.mean,
                         "se": e.se, "seeds": len(both)})
    return pd.DataFrame(rows)


def plot_differences(diffs: pd.DataFrame, *, titles: dict | None = None, caption: str | None = None):
    """:func:`differences` as a figure: one panel per dataset block, the noise settings along x, each later loss's
    mean difference from L_q (points) with +-1 standard error bars, a line at 0.  ``titles`` maps a dataset to its
    panel title (default: the dataset's name).  Returns the figure (the chapter *After the paper*)."""
    import matplotlib.pyplot as plt

    from .experiments import METHOD_LABELS
    from .plots import FIG_WIDTH, use_book_style

    use_book_style()
    blocks = list(dict.fromkeys(diffs["dataset"]))
    if not blocks:
        raise ValueError("no differences to draw")
    fig, axes = plt.subplots(len(blocks), 1, figsize=(FIG_WIDTH, 2.9 * len(blocks)), squeeze=False)
    methods = list(dict.fromkeys(diffs["method"]))
    for ax, d in zip(axes[:, 0], blocks):
        part = diffs[diffs["dataset"] == d]
        settings = list(dict.fromkeys(zip(part["noise"], part["eta"])))
        names = [("unif." if n == "uniform" else "class") + f" {e:g}" for n, e in settings]
        for i, m in enumerate(methods):
            g = part[part["method"] == m].set_index(["noise", "eta"]).reindex(settings)
            x = np.arange(len(settings)) + (i - (len(methods) - 1) / 2) * 0.15
            ax.errorbar(x, g["mean"], yerr=g["se"], fmt="o", ms=4, capsize=2, label=METHOD_LABELS.get(m, m))
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_xticks(np.arange(len(settings)), names)
        ax.set(ylabel="minus L_q (points)", title=(titles or {}).get(d, d))
    axes[0, 0].legend(ncol=len(methods), loc="lower center", bbox_to_anchor=(0.5, 1.12), frameon=False)
    if caption:
        import textwrap  # a caption on one line would widen the saved figure past the column

        fig.suptitle(textwrap.fill(caption, 100), y=-0.01, va="top", fontsize="small")
    return fig


def difference_summary(diffs: pd.DataFrame, z: float = 2.0) -> pd.DataFrame:
    """:func:`differences` per dataset block and later loss: ``mean`` (the mean over the noise settings of the
    difference from L_q, points), ``above`` and ``below`` (the settings where it is more than ``z`` standard errors
    above or below 0) and ``settings``.  Rows ``(dataset, method)`` in the order of ``diffs``."""
    if isinstance(z, bool) or not z > 0:
        raise ValueError(f"z must be a positive number of standard errors, got z={z!r}")
    d = diffs.assign(above=diffs["mean"] > z * diffs["se"], below=diffs["mean"] < -z * diffs["se"])
    g = d.groupby(["dataset", "method"], sort=False)
    return pd.DataFrame({"mean": g["mean"].mean(), "above": g["above"].sum(), "below": g["below"].sum(),
                         "settings": g.size()})


def difference_words(summary: pd.DataFrame) -> dict[str, str]:
    """:func:`difference_summary` in sentences, one per scale: ``{"later_words_cpu": ..., "later_words_pocket":
    ...}`` (a block whose dataset is a cpu feature set counts as cpu), each naming every block and loss with its
    mean difference from L_q and its settings above and below.  The chapter *After the paper* glues them."""
    from .experiments import METHOD_LABELS

    out = {"later_words_cpu": "", "later_words_pocket": ""}
    for d in dict.fromkeys(summary.index.get_level_values("dataset")):
        part = summary.xs(d, level="dataset")
        items = [f"{METHOD_LABELS.get(m, m)} {r['mean']:+.2f} points on average (above L_q at {int(r['above'])}, "
                 f"below at {int(r['below'])} of {int(r['settings'])} settings)" for m, r in part.iterrows()]
        key = "later_words_cpu" if "features" in d else "later_words_pocket"
        text = f"On {BLOCK_TITLES.get(d, d)}: " + "; ".join(items) + "."
        out[key] = (out[key] + " " + text).strip()
    return out


def unfitted_words(fits: dict, reference: str = "Lq") -> str:
    """Where ``reference`` (a column of :func:`fit_table`, default L_q) had not levelled off before the first
    learning-rate drop, in words, per dataset block of the tables ``fits`` (``{scale: fit_table(scale)}``), e.g.
    "on digits (pocket) at uniform 0.8; on digit_pairs (pocket) at every setting"; blocks where it had levelled
    off everywhere are left out, and "at no setting" is returned when it had everywhere."""
    parts = []
    for table in fits.values():
        if table is None:
            continue
        if reference not in table.columns:
            raise ValueError(f"no column {reference!r} in the fit table; columns: {list(table.columns)}")
        for d, block in table[reference].groupby(level="dataset", sort=False):
            bad = [f"{'uniform' if n == 'uniform' else 'class-dependent'} {e:g}"
                   for (_, n, e), ok in block.items() if not ok]
            if bad:
                where = "every setting" if len(bad) == len(block) else ", ".join(bad)
                parts.append(f"on {BLOCK_TITLES.get(d, d)} at {where}")
    return "; ".join(parts) if parts else "at no setting"


def missing_note(grids: dict, scales=("pocket", "cpu")) -> str:
    """A sentence for each scale of ``scales`` whose ``later`` rows are not stored (:func:`stored_grids`): how many
    runs its grid declares and the command that trains them; ``""`` when every scale is there."""
    from .experiments import spec

    notes = []
    for scale in scales:
        if scale not in grids:
            n = len(spec("later", scale).configs)
            notes.append(f"At the `{scale}` scale the {n} runs of the later losses are declared but not trained yet: "
                         f"`python -m gce reproduce later --scale {scale} --jobs 2` trains them, and this section "
                         f"then shows them.")
    return " ".join(notes)


def fit_table(scale: str, results=None, methods=GRID_METHODS):
    """The fit gate of :mod:`gce.book.claims` (:func:`gce.book.chapters.closed_set.fit_table`) for ``methods`` in
    Table 1's grid at ``scale``, from the stored ``table1`` and ``later`` runs: True where a method's seed-mean
    noisy-validation accuracy had levelled off before the first learning-rate drop.  Rows ``(dataset, noise, eta)``
    where every method has runs (:func:`common_cells`),
    a column per method; None where either experiment is not stored.  A difference from a method that had not
    fitted compares an unfinished run."""
    from .chapters.closed_set import fit_table as _fit
    from .claims import stored_results
    from .experiments import METHOD_LABELS

    got = [stored_results(name, scale, results) for name in ("table1", "later")]
    if any(g is None for g in got):
        return None
    runs = common_cells(pd.concat([g[0] for g in got], ignore_index=True), methods)
    history = pd.concat([g[1] for g in got], ignore_index=True)
    labels = [METHOD_LABELS.get(m, m) for m in methods]
    table = _fit(runs, history)
    return table[[c for c in labels if c in table.columns]]
