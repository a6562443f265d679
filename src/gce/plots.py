"""Figures for the book: one style, one helper per kind of figure.

Every figure in the book is drawn by a function here, so a caption's
"made by ``gce.plots.X``" leads straight to its code.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

__all__ = ["use_book_style", "transition_heatmap", "compare_transitions", "PALETTE"]

#: One colour per method, used by every figure of the book.
PALETTE = {
    "CCE": "#E69F00",
    "MAE": "#0072B2",
    "Forward T": "#009E73",
    "Forward T_hat": "#56B4E9",
    "Lq": "#D55E00",
    "Trunc Lq": "#CC79A7",
}


def use_book_style() -> None:
    """The book's matplotlib style: seaborn's white grid, readable fonts, SVG-sharp lines."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)
    plt.rcParams.update({
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "axes.titleweight": "bold",
        "axes.titlesize": "medium",
        "figure.constrained_layout.use": True,
    })


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
        _, ax = plt.subplots(figsize=(4.6, 4.0) if c <= 12 else (6, 5.2))
    if annotate is None:
        annotate = c <= 12
    labels = list(class_names) if class_names is not None and c <= 12 else False
    sns.heatmap(T, ax=ax, vmin=0, vmax=1, cmap="rocket_r", square=True, cbar=cbar,
                annot=annotate, fmt=".2f", annot_kws={"fontsize": 7},
                xticklabels=labels, yticklabels=labels,
                cbar_kws={"shrink": 0.75, "label": "probability"} if cbar else None)
    if c > 12:
        ticks = np.arange(0, c, max(1, c // 10)) + 0.5
        ax.set_xticks(ticks, [str(int(t)) for t in ticks - 0.5])
        ax.set_yticks(ticks, [str(int(t)) for t in ticks - 0.5])
    ax.tick_params(axis="x", labelrotation=90, labelsize=8)
    ax.tick_params(axis="y", labelrotation=0, labelsize=8)
    ax.set_xlabel("noisy label $\\tilde y$")
    ax.set_ylabel("true label $y$")
    if title:
        ax.set_title(title)
    return ax


def compare_transitions(T, T_empirical, class_names: Sequence[str] | None = None, *,
                        titles: tuple[str, str] = ("target $T$", "realised"),
                        suptitle: str | None = None):
    """Two heatmaps side by side: the target ``T`` and the one a corruption realised."""
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.2))
    transition_heatmap(T, class_names, ax=axes[0], title=titles[0], cbar=False)
    transition_heatmap(T_empirical, class_names, ax=axes[1], title=titles[1])
    axes[1].set_ylabel("")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


# ---- noise chapter ----


def transition_panels(matrices: dict, class_names_by_title: dict | None = None, *, ncols: int = 3):
    """A grid of transition heatmaps, one per entry ``title -> T`` of ``matrices`` (shared colour scale).

    ``class_names_by_title`` gives the tick labels of each panel (optional).
    """
    if not matrices:
        raise ValueError("matrices is empty: give at least one title -> T")
    names = class_names_by_title or {}
    n = len(matrices)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 4.1 * nrows), squeeze=False)
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.05 * ncols, 1.25 * nrows), squeeze=False,
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
            ax.set_title(str(labels[i]), fontsize=8, pad=2)
        for spine in ax.spines.values():
            spine.set_visible(bool(marked[i]))
            spine.set_color(mark_color)
            spine.set_linewidth(2.5)
    if title:
        fig.suptitle(title)
    return fig


__all__ += ["transition_panels", "image_grid"]
