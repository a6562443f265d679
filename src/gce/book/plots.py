"""Figures for the book: one style, one helper per kind of figure.

Every figure in the book is drawn by a function here, so a caption's
"made by ``gce.book.plots.X``" leads straight to its code.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

__all__ = ["use_book_style", "transition_heatmap", "compare_transitions", "PALETTE", "MARKERS", "COLUMN_PX",
           "FIG_WIDTH", "MIN_TEXT_PX", "smallest_text_px", "q_styles", "transition_panels", "image_grid",
           "LQ_FAMILY_QS", "plot_lq_family", "plot_relative_weight", "interactive_lq_family", "plot_fig1",
           "plot_fig2", "theorem1_A_curves", "theorem1_tightness", "plot_truncated_lq", "plot_eq11_region",
           "plot_eq11_q_max", "plot_acs_run", "FIG1_AB_CURVES", "plot_fig1_ab", "plot_fig1c",
           "plot_peak_drop", "plot_accuracy_vs_eta", "plot_accuracy_curves", "plot_kept_by_class",
           "plot_verdicts", "plot_transition_grid", "plot_class_noise_rates", "plot_superclass_confusions",
           "plot_memorisation_onset", "plot_schedule_sensitivity", "plot_class_examples", "plot_dictionary"]

#: One colour per method, used by every figure of the book, from the Okabe-Ito palette, which stays
#: distinct under the common colour-vision deficiencies; CCE is black so that it also stands out in greyscale.
PALETTE = {
    "CCE": "#000000",
    "MAE": "#0072B2",
    "Forward T": "#009E73",
    "Forward T_hat": "#56B4E9",
    "Lq": "#D55E00",
    "Trunc Lq": "#CC79A7",
}

#: One marker per method, so that lines are told apart without colour (greyscale print).
MARKERS = {"CCE": "o", "MAE": "s", "Forward T": "^", "Forward T_hat": "v", "Lq": "D", "Trunc Lq": "P"}

#: Width of the rendered book's text column in CSS pixels (sphinx-book-theme 1.x at a desktop window).
COLUMN_PX = 770
#: Width of a full-column figure in inches; every figure of the book is at most this wide.
FIG_WIDTH = 7.5
#: The smallest text, in CSS pixels at :data:`COLUMN_PX`, that a figure may contain.
MIN_TEXT_PX = 9.0

_LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1.5)), (0, (3, 1, 1, 1, 1, 1))]
_Q_MARKERS = ["o", "s", "^", "D", "v", "P"]


def use_book_style() -> None:
    """The book's matplotlib style: seaborn's white grid and fonts legible at the column width.

    Figures are at most :data:`FIG_WIDTH` inches wide and are scaled to the
    :data:`COLUMN_PX` column, so a point of font becomes about 1.4 CSS pixels;
    the smallest text (tick labels, legends) is 9 pt, about 13 px.
    """
    sns.set_theme(context="notebook", style="whitegrid")
    plt.rcParams.update({
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "font.size": 11,
        "axes.titlesize": 11.5,
        "axes.titleweight": "bold",
        "axes.labelsize": 10.5,
        "xtick.labelsize": 9.5,
        "ytick.labelsize": 9.5,
        "legend.fontsize": 9,
        "legend.title_fontsize": 9.5,
        "figure.titlesize": 11.5,
        "lines.linewidth": 1.8,
        "figure.constrained_layout.use": True,
    })


def smallest_text_px(fig, column_px: float = COLUMN_PX) -> tuple[float, str]:
    """The smallest visible text of ``fig`` in CSS pixels once the figure is shown in the book's column.

    The notebook stores the figure as a PNG of its tight bounding box at the
    figure's dpi; the page shows it at that size, scaled down to ``column_px``
    when it is wider.  Returns ``(pixels, text)`` of the smallest text
    (``(inf, "")`` for a figure without text).
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width_in = fig.get_tightbbox(renderer).width
    shown_px = min(width_in * fig.dpi, column_px)
    px_per_pt = shown_px / (width_in * 72)
    smallest = (float("inf"), "")
    for text in fig.findobj(lambda a: isinstance(a, plt.Text)):
        if not text.get_visible() or not text.get_text().strip():
            continue
        ax = text.axes
        if ax is not None and not ax.get_visible():
            continue
        if text.get_window_extent(renderer).width == 0:
            continue
        px = text.get_fontsize() * px_per_pt
        if px < smallest[0]:
            smallest = (px, text.get_text())
    return smallest


def q_styles(qs: Sequence[float]) -> list[dict]:
    """Line styles for a series of ``q`` values: ordered viridis colours, each with its own dash and marker.

    Neighbouring ``q`` differ in dash pattern and marker as well as shade, so
    the lines stay apart in greyscale and for colour-blind readers.
    """
    qs = list(qs)
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(2, len(qs))))
    return [dict(color=colours[i], ls=_LINESTYLES[i % len(_LINESTYLES)], marker=_Q_MARKERS[i % len(_Q_MARKERS)])
            for i in range(len(qs))]


def _subplots(n_panels: int, *, max_cols: int = 2, panel_height: float = 3.3, **kw):
    """A figure of ``n_panels`` panels, at most ``max_cols`` per row, :data:`FIG_WIDTH` wide; extra axes removed."""
    ncols = max(1, min(max_cols, n_panels))
    nrows = -(-n_panels // ncols)
    width = FIG_WIDTH if ncols > 1 else min(FIG_WIDTH, 5.6)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, panel_height * nrows), squeeze=False, **kw)
    for ax in list(axes.flat)[n_panels:]:
        fig.delaxes(ax)
    return fig, list(axes.flat)[:n_panels]


def _as_array(T) -> np.ndarray:
    return T.detach().cpu().numpy() if isinstance(T, torch.Tensor) else np.asarray(T)


def transition_heatmap(T, class_names: Sequence[str] | None = None, *, ax=None,
                       title: str | None = None, annotate: bool | None = None,
                       cbar: bool = True):
    """Draw a transition matrix ``T[i, j] = p(noisy j | true i)`` as a heatmap on ``ax``.

    Rows are true classes, columns noisy labels.  Entries are printed when the
    matrix is small enough to read (``annotate=None`` decides by size).
    """
    T = _as_array(T)
    c = T.shape[0]
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.4) if c <= 12 else (5.6, 4.9))
    if annotate is None:
        annotate = c <= 12
    if annotate:  # ".40" rather than "0.40", and zeros left blank, so the numbers fit their cells
        annotate = np.array([["" if v == 0 else f"{v:.2f}".removeprefix("0") for v in row] for row in T])
    labels = list(class_names) if class_names is not None and c <= 12 else False
    sns.heatmap(T, ax=ax, vmin=0, vmax=1, cmap="rocket_r", square=True, cbar=cbar,
                annot=annotate, fmt="", annot_kws={"fontsize": 9},
                xticklabels=labels, yticklabels=labels,
                cbar_kws={"shrink": 0.75, "label": "probability"} if cbar else None)
    if c > 12:
        ticks = np.arange(0, c, max(1, c // 10)) + 0.5
        ax.set_xticks(ticks, [str(int(t)) for t in ticks - 0.5])
        ax.set_yticks(ticks, [str(int(t)) for t in ticks - 0.5])
    ax.tick_params(axis="x", labelrotation=90)
    ax.tick_params(axis="y", labelrotation=0)
    ax.set_xlabel("noisy label $\\tilde y$")
    ax.set_ylabel("true label $y$")
    if title:
        ax.set_title(title)
    return ax


def compare_transitions(T, T_empirical, class_names: Sequence[str] | None = None, *,
                        titles: tuple[str, str] = ("target $T$", "realised"),
                        suptitle: str | None = None):
    """Two heatmaps side by side: the target ``T`` and the one a corruption realised."""
    fig, axes = plt.subplots(1, 2, figsize=(FIG_WIDTH, 3.9))
    transition_heatmap(T, class_names, ax=axes[0], title=titles[0], cbar=False)
    transition_heatmap(T_empirical, class_names, ax=axes[1], title=titles[1])
    axes[1].set_ylabel("")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


# ---- noise chapter ----


def transition_panels(matrices: dict, class_names_by_title: dict | None = None, *, ncols: int = 2):
    """A grid of transition heatmaps, one per entry ``title -> T`` of ``matrices`` (shared colour scale).

    ``class_names_by_title`` gives the tick labels of each panel (optional).
    """
    if not matrices:
        raise ValueError("matrices is empty: give at least one title -> T")
    names = class_names_by_title or {}
    n = len(matrices)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(FIG_WIDTH, 0.95 * FIG_WIDTH / ncols * nrows), squeeze=False)
    for ax, (title, T) in zip(axes.flat, matrices.items()):
        transition_heatmap(T, names.get(title), ax=ax, title=title, cbar=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig


def image_grid(images, labels: Sequence | None = None, *, marked=None, ncols: int = 10,
               mark_color: str = "#D55E00", title: str | None = None):
    """Draw ``uint8`` images ``(N, C, H, W)`` in a grid, each titled by its label; ``marked`` ones get a frame.

    Used for open-set noise: the frame shows which images came from outside the dataset.
    """
    images = torch.as_tensor(images)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C in (1, 3), got {tuple(images.shape)}")
    n = images.shape[0]
    marked = np.zeros(n, dtype=bool) if marked is None else np.asarray(torch.as_tensor(marked).cpu(), dtype=bool)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    width = min(FIG_WIDTH, 0.75 * ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 1.3 * width / ncols * nrows), squeeze=False,
                             layout="constrained")
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if i >= n:
            ax.set_visible(False)
            continue
        img = images[i].permute(1, 2, 0).cpu().numpy()
        ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray_r" if img.shape[2] == 1 else None,
                  vmin=0, vmax=255, interpolation="nearest")
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=9, pad=2)
        for spine in ax.spines.values():
            spine.set_visible(bool(marked[i]))
            spine.set_color(mark_color)
            spine.set_linewidth(2.5)
    if title:
        fig.suptitle(title)
    return fig


# ---- lq_family ----
# Figures of the chapter "CCE, MAE and the L_q family" (Eq. 2, 4, 6 and the
# gradient weights of Sec. 3.2).

#: The values of ``q`` the chapter draws (0 is the CCE limit, 1 the unhinged loss).
LQ_FAMILY_QS = (0.0, 0.25, 0.5, 0.7, 1.0)


def _lq_label(q_: float) -> str:
    if q_ == 0:
        return "$q \\to 0$ (CCE)"
    if q_ == 1:
        return "$q = 1$ (unhinged)"
    return f"$q = {q_:g}$"


def _lq_style(q_: float, qs: Sequence[float]) -> dict:
    """Colour and dash of ``q`` among ``qs``: CCE (q = 0) black and solid, the others from :func:`q_styles`."""
    if q_ == 0:
        return dict(color=PALETTE["CCE"], ls="-")
    others = [v for v in qs if v != 0]
    style = q_styles(others)[others.index(q_)]
    return dict(color=style["color"], ls=style["ls"])


def plot_lq_family(qs: Sequence[float] = LQ_FAMILY_QS, axes=None, *, show_mae: bool = True,
                   f_min: float = 1e-3, n_points: int = 400):
    """Two panels: ``L_q(f)`` (Eq. 6) and its gradient weight ``f**(q-1)`` against ``f = f_y``.

    ``qs`` in ``[0, 1]``; ``q = 0`` draws CCE (Eq. 2), ``q = 1`` the unhinged loss.
    With ``show_mae`` the MAE of Eq. 4, ``2 - 2 f`` (weight 2), is added with square markers.
    The weight panel has a log scale.  ``axes`` is a pair of axes (a new figure
    when None); returns that pair.
    """
    from .theory import lq_curve, lq_gradient_weight

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(FIG_WIDTH, 3.4))
    ax_loss, ax_w = axes
    p = np.geomspace(f_min, 1.0, n_points)
    for q_ in qs:
        kw = dict(**_lq_style(q_, qs), label=_lq_label(q_), lw=2.2 if q_ in (0, 1) else 1.8)
        ax_loss.plot(p, lq_curve(p, q_), **kw)
        ax_w.plot(p, lq_gradient_weight(p, q_), **kw)
    if show_mae:
        kw = dict(color=PALETTE["MAE"], ls="-", lw=1.8, marker=MARKERS["MAE"], ms=5, markevery=0.08, label="MAE (Eq. 4)")
        ax_loss.plot(p, 2 - 2 * p, **kw)
        ax_w.plot(p, np.full_like(p, 2.0), **kw)
    ax_loss.set_ylim(0, 4.2)
    ax_loss.set_xlim(0, 1)
    ax_loss.set_xlabel("$f_y$ (softmax probability of the label)")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("$\\mathcal{L}_q(f_y) = (1 - f_y^q)/q$")
    ax_w.set_xscale("log")
    ax_w.set_yscale("log")
    ax_w.set_xlim(f_min, 1)
    ax_w.set_xlabel("$f_y$ (log scale)")
    ax_w.set_ylabel("weight $w(f_y)$ (log scale)")
    ax_w.set_title("gradient weight $w = f_y^{q-1}$")
    ax_loss.legend(loc="upper right")
    return axes


def plot_relative_weight(qs: Sequence[float] = (0.25, 0.5, 0.7, 1.0), ax=None, *,
                         n_points: int = 400):
    """``f**q`` against ``f``: how much ``L_q`` scales a sample's gradient relative to CCE (Sec. 3.2).

    Samples with a small ``f_y`` (the network disagrees with the label, as it
    does for many mislabelled samples) get a weight near 0; ``q = 0`` would be
    the constant 1.  Returns the axes.
    """
    from .theory import lq_relative_weight

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.6))
    p = np.linspace(0, 1, n_points)
    ax.axhline(1.0, color=PALETTE["CCE"], lw=2.0, label=_lq_label(0.0))
    for q_ in qs:
        ax.plot(p, lq_relative_weight(p, q_), **_lq_style(q_, qs), lw=1.8, label=_lq_label(q_))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("$f_y$ (softmax probability of the label)")
    ax.set_ylabel("$f_y^q$")
    ax.set_title("weight of $\\mathcal{L}_q$ relative to CCE")
    ax.legend(loc="lower right")
    return ax


def interactive_lq_family(q_init: float = 0.7, step: float = 0.05):
    """A slider for ``q`` that redraws :func:`plot_lq_family` for ``(0, q, 1)``.

    Needs ``ipywidgets`` (present in Colab and Jupyter); returns None, drawing
    nothing, when it is not installed, so a notebook can call it unconditionally.
    """
    try:
        import ipywidgets
    except ImportError:
        return None

    def show(q):
        qs = sorted({0.0, round(float(q), 6), 1.0})
        _, axes = plt.subplots(1, 2, figsize=(FIG_WIDTH, 3.4))
        plot_lq_family(qs, axes=axes)
        plt.show()

    slider = ipywidgets.FloatSlider(value=q_init, min=0.0, max=1.0, step=step, description="q",
                                    continuous_update=False)
    return ipywidgets.interact(show, q=slider)


# ---- experiments ----


def _curves(runs, history, select: dict, metric: str):
    """Mean and std over seeds of ``metric`` per epoch, for the runs matching ``select``."""
    mask = np.ones(len(runs), dtype=bool)
    for k, v in select.items():
        mask &= (runs[k] == v).to_numpy()
    ids = runs.loc[mask, "run_id"]
    h = history[history["run_id"].isin(ids)]
    g = h.groupby("epoch")[metric]
    return g.mean(), g.std(ddof=0), int(ids.nunique())


def _line(ax, runs, history, select, metric, label, color, style="-", scale=1.0, marker=None):
    mean, std, n = _curves(runs, history, select, metric)
    if not len(mean):
        return 0
    ax.plot(mean.index, scale * mean.values, ls=style, color=color, label=label, lw=1.8, marker=marker, ms=5,
            markevery=max(1, len(mean) // 8))
    if n > 1:
        ax.fill_between(mean.index, scale * (mean - std).values, scale * (mean + std).values, color=color,
                        alpha=0.15, lw=0)
    return n


def plot_fig1(runs, history, *, datasets: Sequence[str], caption: str | None = None):
    """Figure 1 of the paper: (a, b) test accuracy of CCE and MAE on clean labels per dataset;
    (c) mean softmax at the given label for right (solid) and wrong (dashed) labels, CCE vs L_q (q = 0.7).

    ``runs``/``history`` are the tables of :class:`gce.book.store.ResultStore`;
    lines are means over seeds with a +-1 std band.
    """
    panels = list(datasets[:2]) + ["softmax"]
    fig, axes = _subplots(len(panels))
    letters = "abc" if len(panels) == 3 else "ac"
    for ax, panel, letter in zip(axes, panels, letters):
        if panel == "softmax":
            for method, label in (("cce", "CCE"), ("lq", "Lq (q=0.7)")):
                sel, color = {"method": method, "noise": "uniform"}, PALETTE["CCE" if method == "cce" else "Lq"]
                marker = MARKERS["CCE" if method == "cce" else "Lq"]
                _line(ax, runs, history, sel, "softmax_clean", f"{label}, right labels", color, marker=marker)
                _line(ax, runs, history, sel, "softmax_noisy", f"{label}, wrong labels", color, "--", marker=marker)
            ax.set_ylabel("mean softmax at the given label")
            ax.set_title(f"({letter}) {datasets[0]}, uniform noise 0.4")
        else:
            for method, label in (("cce", "CCE"), ("mae", "MAE")):
                _line(ax, runs, history, {"method": method, "noise": "none", "dataset": panel}, "test_acc", label,
                      PALETTE[label], scale=100, marker=MARKERS[label])
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"({letter}) {panel}, clean labels")
        ax.set_xlabel("epoch")
        ax.legend()
    if caption:
        fig.suptitle(caption)
    return fig


def plot_fig2(runs, history, *, qs: Sequence[float], etas: Sequence[float], caption: str | None = None):
    """Figure 2 of the paper: test accuracy (top) and noisy-validation loss (bottom) against epochs,
    one line per q (q = 0 is CCE), one column per noise rate eta."""
    fig, axes = plt.subplots(2, len(etas), figsize=(FIG_WIDTH, 6.6), squeeze=False, sharex=True)
    styles = q_styles(qs)
    for j, eta in enumerate(etas):
        for qv, st in zip(qs, styles):
            sel = {"eta": eta, "method": "cce"} if qv == 0 else {"eta": eta, "method": "lq", "q": qv}
            label = "CCE (q=0)" if qv == 0 else f"q={qv:g}"
            _line(axes[0, j], runs, history, sel, "test_acc", label, st["color"], st["ls"], 100, st["marker"])
            _line(axes[1, j], runs, history, sel, "val_loss", label, st["color"], st["ls"], 1.0, st["marker"])
        axes[0, j].set_title(f"({'abc'[j]}) eta = {eta:g}")
        axes[1, j].set_title(f"({'def'[j]}) eta = {eta:g}")
        axes[1, j].set_xlabel("epoch")
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[1, 0].set_ylabel("validation loss (own loss, noisy labels)")
    legend = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncols=min(len(legend), 6))
    if caption:
        fig.suptitle(caption)
    return fig


# ---- bounds chapter ----


def theorem1_A_curves(cs: Sequence[int] = (10, 100), etas: Sequence[float] = (0.2, 0.4, 0.6, 0.8), *,
                      q_grid=None, mark_q: float | None = 0.7):
    """``-A`` of Theorem 1 (Eq. 8) against ``q`` on a log scale: one panel per number of classes, one line per ``eta``.

    ``A`` is negative for ``q < 1`` and 0 at ``q = 1``, so the figure shows its
    size ``-A`` for ``q`` up to 0.995 (a log axis cannot show 0).  ``mark_q``
    draws a dashed line at the paper's ``q = 0.7``.
    """
    from . import theory

    q_grid = np.linspace(0.02, 0.995, 100) if q_grid is None else np.asarray(q_grid, dtype=float)
    if np.any(q_grid >= 1):
        raise ValueError("q_grid must stay below 1: -A = 0 at q = 1 has no place on a log axis")
    fig, axes = plt.subplots(1, len(cs), figsize=(FIG_WIDTH, 3.4), sharey=True, squeeze=False)
    styles = q_styles(etas)
    for ax, c_ in zip(axes[0], cs):
        for st, eta_ in zip(styles, etas):
            ax.plot(q_grid, -theory.theorem1_A(eta_, q_grid, c_), color=st["color"], ls=st["ls"],
                    label=f"$\\eta = {eta_:g}$")
        if mark_q is not None:
            ax.axvline(mark_q, color="0.4", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel("$q$")
        ax.set_title(f"$c = {c_}$")
    axes[0, 0].set_ylabel("$-A$ (Eq. 8), log scale")
    axes[0, -1].legend(loc="upper right")
    return fig


def theorem1_tightness(c_: int = 3, etas: Sequence[float] = (0.2, 0.4, 0.6), *, n: int = 120, q_grid=None):
    """How loose Theorem 1 is: ``-A`` (dashed) against the largest ``R(f_hat) - R(f*)`` any problem can have (solid).

    The solid line is minus :func:`gce.book.theory.theorem1_worst_gap`, the minimum of
    :func:`gce.book.theory.theorem1_pointwise_gap` over :func:`gce.book.theory.simplex_grid`
    ``(c, n)``: the exact worst case for the
    class of all maps to the closed simplex, up to the grid.  Log y-axis; ``q < 1``.
    """
    from . import theory

    q_grid = np.linspace(0.05, 0.99, 48) if q_grid is None else np.asarray(q_grid, dtype=float)
    if np.any(q_grid >= 1):
        raise ValueError("q_grid must stay below 1: both curves are 0 at q = 1")
    grid = theory.simplex_grid(c_, n)
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    colours = [st["color"] for st in q_styles(etas)]
    for colour, eta_ in zip(colours, etas):
        worst = -theory.theorem1_worst_gap(grid, eta_, q_grid)
        ax.plot(q_grid, worst, color=colour, label=f"worst case, $\\eta = {eta_:g}$")
        ax.plot(q_grid, -theory.theorem1_A(eta_, q_grid, c_), color=colour, ls="--",
                label=f"$-A$, $\\eta = {eta_:g}$")
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("$q$")
    ax.set_ylabel("$R(\\hat f) - R(f^*)$, log scale")
    ax.set_title(f"Theorem 1 over all maps to the simplex, $c = {c_}$")
    ax.legend(ncols=2, loc="lower left")
    return fig


# ---- truncated ----
# Figures of the chapter "Truncated L_q and ACS" (Sec. 3.3: Eq. 9, 11, Algorithm 1).


def plot_truncated_lq(q_: float = 0.7, ks: Sequence[float] = (0.2, 0.5, 0.8), axes=None, *,
                      n_points: int = 801):
    """Two panels against ``f = f_y``: ``L_q`` and truncated ``L_q`` (Eq. 9) for each ``k``, and ``|dL/df|``.

    Below ``f = k`` the truncated loss is the constant ``L_q(k)`` and its
    derivative is 0; above it both equal ``L_q`` (derivative ``f**(q-1)``).
    ``axes`` is a pair of axes (a new figure when None); returns that pair.
    """
    from .theory import lq_curve

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(FIG_WIDTH, 3.4))
    ax_loss, ax_grad = axes
    p = np.linspace(1e-3, 1, n_points)
    ax_loss.plot(p, lq_curve(p, q_), color=PALETTE["Lq"], lw=2.4, label=f"$\\mathcal{{L}}_q$, $q = {q_:g}$")
    ax_grad.plot(p, p ** (q_ - 1), color=PALETTE["Lq"], lw=2.4, label=f"$\\mathcal{{L}}_q$, $q = {q_:g}$")
    for i, (k_, st) in enumerate(zip(ks, q_styles(ks))):
        lq_k = float(lq_curve(k_, q_))
        ls = _LINESTYLES[1 + i % (len(_LINESTYLES) - 1)]
        ax_loss.plot(p, np.where(p <= k_, lq_k, lq_curve(p, q_)), color=st["color"], lw=1.8, ls=ls,
                     label=f"truncated, $k = {k_:g}$")
        ax_grad.plot(p, np.where(p <= k_, 0.0, p ** (q_ - 1)), color=st["color"], lw=1.8, ls=ls,
                     label=f"truncated, $k = {k_:g}$")
    ax_loss.set_xlim(0, 1)
    ax_loss.set_ylim(0, 1.05 / q_)
    ax_loss.set_xlabel("$f_y$ (softmax probability of the label)")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("$\\mathcal{L}_q$ and truncated $\\mathcal{L}_q$ (Eq. 9)")
    ax_grad.set_xlim(0, 1)
    ax_grad.set_ylim(0, 4)
    ax_grad.set_xlabel("$f_y$")
    ax_grad.set_ylabel("$|d\\mathcal{L}/df_y|$")
    ax_grad.set_title("derivative: 0 below the threshold")
    ax_loss.legend(loc="upper right")
    return axes


def plot_eq11_region(cs: Sequence[int] = (2, 10, 100), *, claimed_ks: Sequence[float] = (0.2, 0.3),
                     n: int = 301, axes=None):
    """Where Eq. 11 holds in the ``(q, k)`` plane: one panel per number of classes ``c``.

    Green where ``eq11_gap > 0`` (truncation narrows the bound), red where it
    does not, with the boundary ``eq11_gap = 0`` in black; grey hatching covers
    ``k < 1/c`` (outside Eq. 10's assumption) and dashed lines mark the ``k`` of
    the paper's two claims.  Returns the axes.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from .theory import eq11_gap

    if axes is None:
        _, axes = plt.subplots(1, len(cs), figsize=(FIG_WIDTH, 3.2), sharey=True, squeeze=False)
        axes = axes[0]
    qs = np.linspace(0.005, 1.0, n)
    ks = np.linspace(0.005, 0.995, n)
    Q, K = np.meshgrid(qs, ks)
    cmap = ListedColormap(["#f4c7b8", "#cfe8cf"])
    for ax, c_ in zip(axes, cs):
        gap = eq11_gap(c_, Q, K)
        ax.contourf(Q, K, (gap > 0).astype(float), levels=[-0.5, 0.5, 1.5], cmap=cmap)
        ax.contour(Q, K, gap, levels=[0.0], colors="black", linewidths=1.4)
        if 1 / c_ > ks[0]:
            ax.fill_between(qs, 0, 1 / c_, facecolor="none", edgecolor="0.45", hatch="///", lw=0)
            ax.axhline(1 / c_, color="0.35", lw=0.8)
        for k_ in claimed_ks:
            ax.axhline(k_, color="0.15", lw=1.0, ls="--")
            ax.text(0.02, k_ + 0.01, f"$k = {k_:g}$", fontsize=9, color="0.15")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"$c = {c_}$")
        ax.set_xlabel("$q$")
    axes[0].set_ylabel("$k$")
    handles = [Patch(facecolor="#cfe8cf", label="Eq. 11 holds"), Patch(facecolor="#f4c7b8", label="Eq. 11 fails"),
               Patch(facecolor="none", edgecolor="0.45", hatch="///", label="$k < 1/c$")]
    axes[-1].legend(handles=handles, loc="upper left", framealpha=0.9)
    return axes


def plot_eq11_q_max(ks: Sequence[float] = (0.2, 0.3, 0.5), cs=None, ax=None, *, mark_q: float | None = 0.7):
    """``q_max(k, c)``, the largest ``q`` for which Eq. 11 holds, against ``c`` (log scale), one line per ``k``.

    Dotted lines: the large-``c`` approximation ``1 - log(2 - k)/log(c)``.
    ``mark_q`` draws the paper's ``q = 0.7``.  Points with ``k < 1/c`` (outside
    Eq. 10's assumption) are left out.  Returns the axes.
    """
    from .theory import eq11_q_max

    if cs is None:
        cs = np.unique(np.round(np.geomspace(2, 1e6, 40)).astype(int))
    cs = np.asarray(cs)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 3.8))
    for k_, st in zip(ks, q_styles(ks)):
        colour = st["color"]
        ok = cs * k_ >= 1
        qm = [eq11_q_max(k_, float(c_), n_grid=801) for c_ in cs[ok]]
        ax.plot(cs[ok], qm, color=colour, lw=1.8, marker=st["marker"], ms=3.5, label=f"$k = {k_:g}$")
        ax.plot(cs[ok], 1 - np.log(2 - k_) / np.log(cs[ok]), color=colour, lw=1.0, ls=":")
    if mark_q is not None:
        ax.axhline(mark_q, color=PALETTE["Lq"], lw=1.0, ls="--", label=f"$q = {mark_q:g}$ (paper)")
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("number of classes $c$ (log scale)")
    ax.set_ylabel("$q_{\\max}(k, c)$")
    ax.set_title("Eq. 11 holds exactly for $q < q_{\\max}$")
    ax.legend(loc="lower right")
    return ax


def plot_acs_run(test_curves: dict, kept: Sequence[float] | None = None,
                 prune_epochs: Sequence[int] = (), axes=None):
    """Two panels for a run of Algorithm 1: clean test accuracy per epoch for each loss, and the kept fraction.

    ``test_curves`` maps a method name (a key of :data:`PALETTE` gets its
    colour) to its per-epoch test accuracy; ``kept`` is the truncated run's
    fraction of training samples kept by pruning per epoch (the ``kept``
    history of :func:`gce.train.train_many`; the right panel is left empty when
    None); dotted vertical lines mark the pruning epochs.  Returns the axes.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(FIG_WIDTH, 3.3))
    ax_acc, ax_kept = axes
    for name, curve in test_curves.items():
        curve = np.asarray(curve, dtype=float)
        ax_acc.plot(np.arange(1, len(curve) + 1), curve, color=PALETTE.get(name), lw=1.8, label=name,
                    marker=MARKERS.get(name), markevery=max(1, len(curve) // 8), ms=5)
    if kept is not None:
        kept = np.asarray(kept, dtype=float)
        ax_kept.plot(np.arange(1, len(kept) + 1), kept, color=PALETTE["Trunc Lq"], lw=1.6)
    for ax in axes:
        for e in prune_epochs:
            ax.axvline(e, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("epoch")
    ax_acc.set_ylabel("clean test accuracy")
    ax_acc.set_title("test accuracy (dotted: pruning steps)")
    ax_acc.legend(loc="lower right")
    ax_kept.set_ylabel("fraction of samples kept")
    ax_kept.set_title("truncated $\\mathcal{L}_q$: kept fraction")
    return axes


# ---- cce_vs_mae ----
# Figures of the chapter "CCE vs MAE in practice" (Fig. 1a, b; Sec. 3.2).

#: Fig. 1(a, b)'s two curves, as label -> (runs selected, colour).
FIG1_AB_CURVES = {"CCE": ({"method": "cce", "noise": "none"}, PALETTE["CCE"]),
                  "MAE": ({"method": "mae", "noise": "none"}, PALETTE["MAE"])}


def plot_fig1_ab(runs, history, *, datasets: Sequence[str], curves: dict | None = None,
                 thresholds: Sequence[float] = (), log_x: bool = False, axes=None, titles: Sequence[str] | None = None,
                 caption: str | None = None):
    """Fig. 1(a, b) of the paper alone: test accuracy (%) against epochs on clean labels, one panel per dataset.

    ``curves`` maps a legend label to ``(select, colour)``, where ``select`` is a
    dict of column values picking the runs of that curve (default
    :data:`FIG1_AB_CURVES`: CCE and MAE on clean labels); each line is the mean
    over the selected runs (seeds) with a +-1 std band.  ``thresholds``
    (fractions, e.g. ``(0.9, 0.95)``) are drawn as dotted horizontal lines;
    ``log_x`` puts the epochs on a log scale, which spreads out the first
    epochs where the two losses differ.  ``titles`` replaces the panel titles
    (default ``"(a) <dataset>, clean labels"``).  Returns the figure.
    """
    curves = FIG1_AB_CURVES if curves is None else curves
    if axes is None:
        fig, axes = _subplots(len(datasets))
    else:
        axes = np.atleast_1d(axes)
        fig = axes[0].figure
    titles = [f"({letter}) {d}, clean labels" for d, letter in zip(datasets, "ab")] if titles is None else titles
    for ax, dataset, title in zip(axes, datasets, titles):
        for label, (select, color) in curves.items():
            _line(ax, runs, history, {**select, "dataset": dataset}, "test_acc", label, color, scale=100,
                  marker=MARKERS.get(label))
        for t in thresholds:
            ax.axhline(100 * t, color="0.45", ls=":", lw=1.0)
            ax.annotate(f"{100 * t:g}%", xy=(1.0, 100 * t), xycoords=("axes fraction", "data"), xytext=(2, 0),
                        textcoords="offset points", va="center", fontsize=9, color="0.35")
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel("epoch" + (" (log scale)" if log_x else ""))
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(title)
        ax.legend(loc="lower right")
    if caption:
        fig.suptitle(caption)
    return fig


# ---- dynamics ----
# Figures of the chapter "Training dynamics" (Fig. 1c and Fig. 2, Sec. 4.1).


def plot_fig1c(runs, history, *, k: float | None = None, ax=None, title: str | None = None):
    """Fig. 1(c) of the paper alone: mean softmax at the given label on training samples whose label is
    right (solid) or wrong (dashed), against epochs, for CCE and ``L_q`` (the ``"lq"`` runs, q = 0.7 there).

    Lines are means over seeds with a +-1 std band.  ``k`` draws the pruning
    threshold of truncated ``L_q`` (Eq. 9) as a dotted line.  Returns the axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.4, 3.7))
    if "noise" in runs:
        runs = runs[runs["noise"] != "none"]  # clean runs track no softmax
    for method, label in (("cce", "CCE"), ("lq", "$\\mathcal{L}_q$")):
        sel, color = {"method": method}, PALETTE["CCE" if method == "cce" else "Lq"]
        qs = runs.loc[runs["method"] == method, "q"].unique() if method == "lq" else []
        if len(qs) == 1:
            label = f"$\\mathcal{{L}}_q$ (q = {qs[0]:g})"
        marker = MARKERS["CCE" if method == "cce" else "Lq"]
        _line(ax, runs, history, sel, "softmax_clean", f"{label}, right labels", color, marker=marker)
        _line(ax, runs, history, sel, "softmax_noisy", f"{label}, wrong labels", color, "--", marker=marker)
    if k is not None:
        ax.axhline(k, color="0.45", ls=":", lw=1.0, label=f"k = {k:g} (truncation)")
    ax.set_ylim(0, 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean softmax $f_{\\tilde y}(x)$ at the given label")
    ax.set_title(title or "(c) softmax at the given label, training set")
    ax.legend()
    return ax


def plot_peak_drop(table, *, tol: float | None = None, ax=None):
    """Test accuracy lost between the peak epoch and the last epoch (percentage points) against ``q``,
    one line per noise rate ``eta``; ``table`` is :func:`gce.book.analysis.overfitting_table`'s output
    (mean ``drop``, with ``drop_min``/``drop_max`` over seeds as error bars).  ``tol`` draws the tolerance
    used for "no overfitting" (Sec. 4.1).  Returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.6))
    etas = sorted(table["eta"].unique())
    styles = q_styles(etas)
    for eta, st in zip(etas, styles):
        color = st["color"]
        g = table[table["eta"] == eta].sort_values("q")
        mean = 100 * g["drop"].to_numpy()
        err = np.vstack([mean - 100 * g["drop_min"].to_numpy(), 100 * g["drop_max"].to_numpy() - mean])
        ax.errorbar(g["q"], mean, yerr=err, color=color, marker=st["marker"], ls=st["ls"], ms=5, lw=1.8, capsize=3,
                    label=f"eta = {eta:g}")
    if tol is not None:
        ax.axhline(100 * tol, color="0.45", ls=":", lw=1.0, label=f"tolerance {100 * tol:g} pp")
    ax.set_xlabel("q (0 = CCE)")
    ax.set_ylabel("peak - last test accuracy (pp)")
    ax.set_title("accuracy lost after the peak")
    ax.legend()
    return ax


# ---- closed_set ----
# Figures of the chapters "Closed-set noise" (Table 1) and "Open-set noise" (Table 2).

_NOISE_TITLES = {"uniform": "uniform noise", "class_dependent": "class-dependent noise",
                 "open_set": "open-set noise", "none": "clean labels"}


def plot_accuracy_vs_eta(runs, paper=None, *, methods: Sequence[str] | None = None,
                         noises: Sequence[str] = ("uniform", "class_dependent"), paper_dataset: str = "cifar10",
                         metric: str = "test_acc_best_val", caption: str | None = None):
    """Table 1 as a figure: test accuracy (%) against the noise rate ``eta``, one line per method.

    One panel per noise kind.  Ours: the mean over seeds of ``metric`` (the
    best-noisy-validation epoch's test accuracy) with +-1 std error bars.
    ``paper`` (e.g. :func:`gce.book.experiments.paper_table1`) adds the paper's
    means for ``paper_dataset`` as faint dashed lines in the same colours.
    """
    from .experiments import METHOD_LABELS, TABLE1_METHODS

    methods = list(TABLE1_METHODS if methods is None else methods)
    fig, axes = plt.subplots(1, len(noises), figsize=(FIG_WIDTH, 4.2), squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], noises):
        for m in methods:
            label = METHOD_LABELS.get(m, m)
            color = PALETTE.get(label, None)
            sel = runs[(runs["noise"] == kind) & (runs["method"] == m)]
            if len(sel):
                g = sel.groupby("eta")[metric]
                mean, std = 100 * g.mean(), 100 * g.std(ddof=1).fillna(0.0)
                ax.errorbar(mean.index, mean.values, yerr=std.values, color=color, marker=MARKERS.get(label, "o"),
                            ms=5, lw=1.8,
                            capsize=2.5, label=label)
            if paper is not None:
                ref = paper[(paper["dataset"] == paper_dataset) & (paper["noise"] == kind) & (paper["method"] == m)]
                ref = ref.sort_values("eta")
                if len(ref):
                    ax.plot(ref["eta"], ref["mean"], ls="--", color=color, alpha=0.4, lw=1.2)
        ax.set_title(_NOISE_TITLES.get(kind, kind))
        ax.set_xlabel("noise rate $\\eta$")
    axes[0, 0].set_ylabel("test accuracy (%)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if paper is not None:
        from matplotlib.lines import Line2D
        handles += [Line2D([], [], color="0.3", marker="o", ms=4), Line2D([], [], color="0.3", ls="--", alpha=0.5)]
        labels += ["ours (mean ± std)", f"paper ({paper_dataset})"]
    fig.legend(handles, labels, loc="outside lower center", ncols=4)
    if caption:
        fig.suptitle(caption)
    return fig


def plot_accuracy_curves(runs, history, *, methods: Sequence[str] | None = None,
                         noises: Sequence[str] = ("open_set", "uniform"), metric: str = "test_acc",
                         kept: bool = True, caption: str | None = None):
    """Test accuracy (%) against epochs, one panel per noise kind, one line per method (Table 2's runs).

    Lines are means over seeds with a +-1 std band.  With ``kept`` a last panel
    shows the fraction of training samples that truncated ``L_q``'s pruning
    keeps (Algorithm 1) per noise kind, with the share of samples whose label
    is right (``1 - flip_rate_train``; for open-set noise, the in-set images)
    as a dotted line.
    """
    from .experiments import METHOD_LABELS, TABLE2_METHODS

    methods = list(TABLE2_METHODS if methods is None else methods)
    n_panels = len(noises) + int(kept)
    fig, axes = _subplots(n_panels)
    for ax, kind in zip(axes, noises):
        for m in methods:
            label = METHOD_LABELS.get(m, m)
            _line(ax, runs, history, {"noise": kind, "method": m}, metric, label, PALETTE.get(label), scale=100,
                  marker=MARKERS.get(label))
        ax.set_title(_NOISE_TITLES.get(kind, kind))
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(loc="lower right")
    if kept:
        ax = axes[-1]
        styles = ["-", "--", "-.", ":"]
        for kind, style in zip(noises, styles):
            n = _line(ax, runs, history, {"noise": kind, "method": "trunc_lq"}, "kept",
                      f"kept, {_NOISE_TITLES.get(kind, kind)}", PALETTE["Trunc Lq"], style)
            if n:
                clean = 1 - runs.loc[(runs["noise"] == kind) & (runs["method"] == "trunc_lq"),
                                     "flip_rate_train"].mean()
                ax.axhline(clean, color="0.4", ls=style, lw=0.9, label=f"right labels, {kind.replace('_', '-')}")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("epoch")
        ax.set_ylabel("fraction of training samples")
        ax.set_title("Trunc Lq: samples kept by pruning")
        ax.legend(loc="lower right")
    if caption:
        fig.suptitle(caption)
    return fig


def plot_kept_by_class(samples, *, class_names: Sequence[str] | None = None, caption: str | None = None):
    """Per true class, the fraction of correctly labelled training samples kept by the first pruning step.

    ``samples`` is :func:`gce.book.analysis.first_pruning_step`'s table (Algorithm 1,
    ``w_i = 1[f_{y_i} >= k]``).  One panel per noise kind: bars are means over
    the runs, dots single runs; the dashed line is the fraction of *wrongly*
    labelled samples (for open-set noise: outside images) kept, over all classes.
    """
    kinds = list(dict.fromkeys(samples["noise"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(FIG_WIDTH if len(kinds) > 1 else 5.6, 3.4), squeeze=False,
                             sharey=True)
    for ax, kind in zip(axes[0], kinds):
        s = samples[samples["noise"] == kind]
        right = s[s["clean"].astype(bool)]
        classes = np.sort(right["label"].unique())
        x = np.arange(len(classes))
        per_run = right.groupby(["run", "label"])["kept"].mean().unstack().reindex(columns=classes)
        ax.bar(x, per_run.mean(axis=0).values, width=0.7, color="#009E73", alpha=0.8, label="right labels kept")
        for _, row in per_run.iterrows():
            ax.plot(x, row.values, "o", color="0.2", ms=2.2, alpha=0.6)
        wrong = s[~s["clean"].astype(bool)]
        if len(wrong):
            ax.axhline(float(wrong["kept"].mean()), color="#D55E00", ls="--", lw=1.4,
                       label="wrong labels kept (all classes)")
        names = [str(c) for c in classes] if class_names is None else [class_names[int(c)] for c in classes]
        ax.set_xticks(x, names)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("true class")
        ax.set_title(_NOISE_TITLES.get(kind, kind))
    axes[0, 0].set_ylabel("fraction kept (first pruning)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)
    if caption:
        fig.suptitle(caption)
    return fig


def plot_verdicts(table, *, caption: str | None = None):
    """The claims of :mod:`gce.book.claims` as a grid: one row per claim (``id``, with its section), one column per
    scale, each cell coloured by its verdict (holds / contradicted / inconclusive / not testable).

    ``table`` is :func:`gce.book.claims.evaluate`'s output (one scale) or several of them concatenated.
    """
    from matplotlib.patches import Patch

    from .claims import CONTRADICTED, HOLDS, INCONCLUSIVE, NOT_TESTABLE

    colours = {HOLDS: "#009E73", CONTRADICTED: "#D55E00", INCONCLUSIVE: "#E69F00", NOT_TESTABLE: "0.8"}
    ids = list(dict.fromkeys(table["id"]))
    scales = list(dict.fromkeys(table["scale"]))
    section = dict(zip(table["id"], table["section"]))
    status = {(r["id"], r["scale"]): r["status"] for _, r in table.iterrows()}
    fig, ax = plt.subplots(figsize=(4.6 + 0.9 * len(scales), 0.26 * len(ids) + 1.4))
    for i, cid in enumerate(ids):
        for j, sc in enumerate(scales):
            st = status.get((cid, sc), NOT_TESTABLE)
            ax.add_patch(plt.Rectangle((j, i), 0.95, 0.9, color=colours[st]))
    ax.set_xlim(0, len(scales))
    ax.set_ylim(len(ids), 0)
    ax.set_xticks(np.arange(len(scales)) + 0.475, scales)
    ax.set_yticks(np.arange(len(ids)) + 0.45, [f"{cid} (Sec. {section[cid]})" for cid in ids])
    ax.tick_params(length=0)
    ax.grid(False)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.legend(handles=[Patch(color=c, label=s) for s, c in colours.items()],
               loc="outside lower center", ncols=2, frameon=False)
    if caption:
        ax.set_title(caption)
    return fig


# ---- human noise chapter (CIFAR-10N / CIFAR-100N, gce.human_noise) ----
# Drawn for the book's 780 px column: figures 7.2 in wide, every text >= 10 pt.

_HUMAN_FONT = 10


def plot_transition_grid(matrices: dict, class_labels: Sequence[str], *, ncols: int = 2,
                         caption: str | None = None):
    """Small transition matrices ``T[i, j] = p(noisy j | true i)`` (Sec. 3.1) side by side, entries in percent.

    One panel per ``title -> T`` of ``matrices``, one colour scale (0 to 100 %);
    entries that round to 0 % are left blank so that the structure of the noise shows.
    ``class_labels`` are short tick labels (e.g. ``plane``, ``car``).
    """
    if not matrices:
        raise ValueError("matrices is empty: give at least one title -> T")
    n = len(matrices)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.2, 3.75 * nrows), squeeze=False)
    for ax, (title, T) in zip(axes.flat, matrices.items()):
        P = 100 * _as_array(T).astype(float)
        rounded = np.floor(P + 0.5).astype(int)  # half up, so that 0.5 % shows as 1
        annot = np.where(rounded >= 1, rounded.astype(str), "")
        sns.heatmap(P, ax=ax, vmin=0, vmax=100, cmap="rocket_r", square=True, cbar=False, annot=annot, fmt="",
                    annot_kws={"fontsize": _HUMAN_FONT},
                    xticklabels=list(class_labels), yticklabels=list(class_labels), linewidths=0.3,
                    linecolor="0.9")
        ax.set_title(title, fontsize=_HUMAN_FONT + 1)
        ax.tick_params(axis="x", labelrotation=90, labelsize=_HUMAN_FONT)
        ax.tick_params(axis="y", labelrotation=0, labelsize=_HUMAN_FONT)
        ax.set_xlabel("noisy label", fontsize=_HUMAN_FONT)
        ax.set_ylabel("true label", fontsize=_HUMAN_FONT)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if caption:
        fig.suptitle(caption, fontsize=_HUMAN_FONT)
    return fig


def plot_class_noise_rates(rates: dict, class_labels: Sequence[str], *, caption: str | None = None):
    """Per true class, the realised noise rate ``1 - T[i, i]`` of several noise models as grouped bars.

    ``rates`` maps a name to an array of ``c`` rates in [0, 1]; each model's
    overall rate is drawn as a dashed line of the same colour.
    """
    if not rates:
        raise ValueError("rates is empty: give at least one name -> per-class rates")
    c = len(class_labels)
    x = np.arange(c)
    width = 0.8 / len(rates)
    colours = sns.color_palette("colorblind", len(rates))
    fig, ax = plt.subplots(figsize=(7.2, 3.4))
    for k, ((name, r), colour) in enumerate(zip(rates.items(), colours)):
        r = 100 * np.asarray(r, dtype=float)
        ax.bar(x - 0.4 + (k + 0.5) * width, r, width, color=colour, label=name)
        ax.axhline(float(np.mean(r)), color=colour, ls="--", lw=1.2)
    ax.set_xticks(x, list(class_labels), rotation=45, ha="right", fontsize=_HUMAN_FONT)
    ax.tick_params(axis="y", labelsize=_HUMAN_FONT)
    ax.set_ylabel("labels wrong (%)", fontsize=_HUMAN_FONT)
    ax.set_xlabel("true class", fontsize=_HUMAN_FONT)
    ax.legend(fontsize=_HUMAN_FONT, ncols=min(len(rates), 4), loc="upper left", frameon=True)
    ax.set_ylim(0, max(100 * max(float(np.max(r)) for r in rates.values()) * 1.3, 10))
    if caption:
        ax.set_title(caption, fontsize=_HUMAN_FONT)
    return fig


def plot_superclass_confusions(T, coarse, *, caption: str | None = None):
    """CIFAR-100's wrong labels by super-class: the off-diagonal of ``T`` (Sec. 3.1) with classes ordered by
    super-class (left), and how the wrong labels of each super-class split (right).

    ``coarse`` maps each fine label to its super-class (:func:`gce.human_noise.coarse_labels`).
    The squares on the left are the 20 super-classes: noise inside them stays
    within a super-class.  The paper's CIFAR-100 flip map sends every class to
    the next label, one step right of the diagonal in label order.
    """
    T = _as_array(T).astype(float)
    coarse = np.asarray(coarse)
    c = len(T)
    order = np.argsort(coarse, kind="stable")
    off = T * (1 - np.eye(c))
    P = 100 * off[np.ix_(order, order)]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(7.2, 4.4), width_ratios=(1.15, 1))
    im = ax.imshow(P, cmap="rocket_r", vmin=0, vmax=max(float(P.max()), 1e-9), interpolation="nearest")
    edges = np.flatnonzero(np.diff(coarse[order])) + 0.5
    for e in edges:
        ax.axhline(e, color="0.75", lw=0.4)
        ax.axvline(e, color="0.75", lw=0.4)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("noisy label (by super-class)", fontsize=_HUMAN_FONT)
    ax.set_ylabel("true label (by super-class)", fontsize=_HUMAN_FONT)
    ax.grid(False)
    cb = fig.colorbar(im, ax=ax, shrink=0.8)
    cb.set_label("% of the class", fontsize=_HUMAN_FONT)
    cb.ax.tick_params(labelsize=_HUMAN_FONT)
    from ..human_noise import superclass_shares

    share = 100 * np.nan_to_num(superclass_shares(T, coarse))
    k = len(share)
    y = np.arange(k)
    bx.barh(y, share, color="#0072B2", label="within the super-class")
    bx.barh(y, 100 - share, left=share, color="0.8", label="to another super-class")
    bx.axvline(100 * 4 / (c - 1), color="#D55E00", ls="--", lw=1.2, label="uniform noise")
    bx.set_yticks(y, [str(s) for s in y], fontsize=_HUMAN_FONT)
    bx.invert_yaxis()
    bx.set_xlim(0, 100)
    bx.tick_params(axis="x", labelsize=_HUMAN_FONT)
    bx.set_xlabel("% of its wrong labels", fontsize=_HUMAN_FONT)
    bx.set_ylabel("super-class", fontsize=_HUMAN_FONT)
    handles, labels = bx.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=_HUMAN_FONT, loc="outside lower center", ncols=3)
    if caption:
        fig.suptitle(caption, fontsize=_HUMAN_FONT)
    return fig


def plot_memorisation_onset(runs, history, onsets, *, caption: str | None = None):
    """Where CCE starts to memorise the noise (Fig. 1(c), Sec. 4.2): a diagnostic beside the declared schedule.

    ``runs``/``history`` are the stored tables of the ``"onset"`` experiment
    and ``onsets`` the frame of :func:`gce.book.experiments.measured_onsets`.  One
    panel per dataset: the mean softmax at the given label on right (solid) and
    wrong (dashed) training labels for the noise setting the book shows
    (``rule`` rows), the wrong-label curves of the other settings thin, and a
    vertical line at the onset.
    """
    rows = onsets[onsets["rule"].astype(bool)]
    ncols = min(2, len(rows))  # the book's style: at most two dense panels a row
    nrows = -(-len(rows) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(FIG_WIDTH, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    for ax, (_, row) in zip(axes.flat, rows.iterrows()):
        sel = {"dataset": row["dataset"], "noise": row["noise"], "eta": row["eta"]}
        label = f"{row['noise'].replace('_', '-')} $\\eta$ = {row['eta']:g}"
        _line(ax, runs, history, sel, "softmax_clean", f"{label}, right labels", PALETTE["CCE"])
        _line(ax, runs, history, sel, "softmax_noisy", f"{label}, wrong labels", PALETTE["CCE"], "--")
        others = onsets[(onsets["dataset"] == row["dataset"]) & ~onsets["rule"].astype(bool)]
        for _, o in others.iterrows():
            mean, _, _ = _curves(runs, history, {"dataset": o["dataset"], "noise": o["noise"], "eta": o["eta"]},
                                 "softmax_noisy")
            ax.plot(mean.index, mean.values, "--", color="0.6", lw=0.8)
        ax.axvline(int(row["onset"]), color="0.2", ls=":", lw=1.2, label=f"onset: {int(row['onset'])} epochs")
        ax.set_ylim(0, 1)
        ax.set_xlabel("epoch")
        ax.set_title(str(row["dataset"]))
        ax.legend(loc="upper right")
    for ax in axes[:, 0]:
        ax.set_ylabel("mean softmax at the given label")
    if caption:
        fig.suptitle(caption)
    return fig


def plot_schedule_sensitivity(verdicts, comparisons, *, caption: str | None = None):
    """How Table 1's uniform-noise verdict moves with the first learning-rate drop (the sensitivity grid).

    ``verdicts`` and ``comparisons`` are :func:`gce.book.claims.schedule_sensitivity`'s.  One line per
    comparison (L_q minus a baseline, pooled over the grid's noise rates; error bars one standard error)
    against the epoch of the first drop; the band is the minimum effect that counts as a win or a loss,
    and the verdict at each first drop is written above the panel.
    """
    from .stats import MIN_EFFECT

    fig, ax = plt.subplots(figsize=(FIG_WIDTH * 0.8, 3.8))
    baselines = list(dict.fromkeys(c.split(" - ")[1].split(" (")[0] for c in comparisons["comparison"]))
    for i, base in enumerate(baselines):
        sel = comparisons[comparisons["comparison"].str.contains(f" - {base} (", regex=False)]
        sel = sel.sort_values("first_drop")
        ax.errorbar(sel["first_drop"] + (i - 1) * 0.6, sel["effect"], yerr=sel["se"], capsize=3,
                    color=PALETTE.get(base, "0.3"), marker=MARKERS.get(base, "o"), label=f"Lq - {base}")
    ax.axhspan(-MIN_EFFECT, MIN_EFFECT, color="0.85", zorder=0, label=f"within ±{MIN_EFFECT:g} points")
    ax.axhline(0, color="0.4", lw=0.8)
    ax.axvline(40, color="0.4", lw=0.8, ls=":")
    firsts = verdicts["first_drop"].tolist()
    ax.set_xticks(firsts, [f"{d}" + (" (declared)" if d == 40 else "") for d in firsts])
    ax.set_xlabel("epoch of the first learning-rate drop")
    ax.set_ylabel("pooled difference (points)")
    top = ax.get_ylim()[1]
    for d, st in zip(firsts, verdicts["status"]):
        ax.annotate(st, (d, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=9)
    ax.set_ylim(top=top)
    fig.legend(loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    if caption:
        ax.set_title(caption, pad=18)
    return fig


# ---- noise: the cpu scale's images and features ----


def plot_class_examples(images, labels, class_names: Sequence[str], *, per_class: int = 2):
    """The first ``per_class`` images of every class, one column per class, titled by class name.

    ``images``: uint8 ``(N, C, H, W)``; ``labels``: ``(N,)`` integers in ``0..len(class_names) - 1``.  Used by
    the chapter "Noisy labels and noise models" for the cpu scale's CIFAR-10 images; drawn by :func:`image_grid`.
    """
    labels = torch.as_tensor(labels)
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got per_class={per_class!r}")
    picked = []
    for c in range(len(class_names)):
        found = torch.nonzero(labels == c).flatten()[:per_class]
        if len(found) < per_class:
            raise ValueError(f"class {c} ({class_names[c]}) has {len(found)} images, fewer than per_class={per_class}")
        picked.append(found)
    order = torch.stack(picked, dim=1).flatten()  # row r holds the r-th image of every class
    names = [class_names[int(labels[i])] if r == 0 else "" for r in range(per_class)
             for i in order[r * len(class_names):(r + 1) * len(class_names)]]
    return image_grid(torch.as_tensor(images)[order], labels=names, ncols=len(class_names))


def plot_dictionary(centroids, patch: int, *, channels: int = 3, n: int = 100, ncols: int = 20):
    """The first ``n`` k-means centroids of :func:`gce.features.learn_dictionary` drawn as ``patch x patch``
    patches (Coates & Ng, 2011), each stretched to the full range of its own values, in one mosaic.

    ``centroids``: ``(K, channels * patch * patch)`` in the channel-major order of the patches.  Used by the
    chapter "Noisy labels and noise models".
    """
    C = torch.as_tensor(centroids, dtype=torch.float32)
    if C.dim() != 2 or C.shape[1] != channels * patch * patch:
        raise ValueError(f"centroids must be (K, {channels * patch * patch}) for {channels}x{patch}x{patch} "
                         f"patches, got {tuple(C.shape)}")
    C = C[:n]
    lo, hi = C.min(dim=1, keepdim=True).values, C.max(dim=1, keepdim=True).values
    C = ((C - lo) / (hi - lo).clamp_min(1e-12)).view(-1, channels, patch, patch).permute(0, 2, 3, 1)
    ncols = max(1, min(ncols, len(C)))
    nrows = -(-len(C) // ncols)
    step = patch + 1
    mosaic = np.ones((nrows * step + 1, ncols * step + 1, channels))
    for i, p in enumerate(C.numpy()):
        r, c = divmod(i, ncols)
        mosaic[1 + r * step:1 + r * step + patch, 1 + c * step:1 + c * step + patch] = p
    width = min(FIG_WIDTH, 0.3 * ncols)
    fig, ax = plt.subplots(figsize=(width, width * mosaic.shape[0] / mosaic.shape[1]), layout="constrained")
    ax.imshow(mosaic[..., 0] if channels == 1 else mosaic, cmap="gray" if channels == 1 else None,
              interpolation="nearest")
    ax.set_axis_off()
    return fig


