"""The book's notebooks: reading and writing them as plain JSON (nbformat 4), and the chapters' ``glue``
and display helpers.

The JSON helpers are used by :mod:`gce.book.colab` (the install cell) and
:mod:`gce.book.teaching` (student copies); they need only the standard library, so
the tools run wherever the book's sources are, without Jupyter installed.

:func:`glue` is what every chapter calls to hand a number to its prose: the
book's build pastes it into the text through myst-nb, and a chapter run where
myst-nb is not installed (Colab, a plain ``pip install gce``) still runs.
:func:`glue_num` and :func:`glue_md` glue a rounded number or a piece of
markdown, :func:`rounded` is the one rounding of a number shown in the text,
and :func:`say` prints a sentence at the width of the book's column; any
chapter may use them (the closed-set and CCE-vs-MAE chapters do).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["read_notebook", "write_notebook", "book_notebooks", "cell_source", "set_cell_source", "glue",
           "GLUED", "rounded", "glue_num", "glue_md", "say", "TEXT_WIDTH"]

#: Characters per printed line in the book's text column, used by :func:`say`.
TEXT_WIDTH = 76

#: What :func:`glue` recorded in this session, by key (the last value given for each key).
GLUED: dict = {}


def read_notebook(path) -> dict:
    """The notebook at ``path`` as a dict; a clear error when it is not a notebook."""
    path = Path(path)
    if path.suffix != ".ipynb":
        raise ValueError(f"not a notebook (.ipynb): {path}")
    nb = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(nb, dict) or "cells" not in nb:
        raise ValueError(f"not a notebook (no 'cells'): {path}")
    return nb


def write_notebook(nb: dict, path) -> None:
    """Write ``nb`` in Jupyter's own layout (one-space indent, non-ASCII kept, final newline)."""
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def book_notebooks(root=".") -> list[Path]:
    """Every notebook of the book under ``root/book``, sorted, skipping checkpoints and build output."""
    book = Path(root) / "book"
    if not book.is_dir():
        raise ValueError(f"no book/ folder under {Path(root).resolve()}")
    return sorted(p for p in book.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts)


def cell_source(cell: dict) -> str:
    """A cell's source as one string (notebooks store it as a list of lines or a string)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def set_cell_source(cell: dict, text: str) -> None:
    """Store ``text`` as a cell's source, in the list-of-lines form Jupyter writes."""
    cell["source"] = text.splitlines(keepends=True)


def glue(name: str, variable, display: bool = True) -> None:
    """Record ``variable`` under ``name`` for the book's ``{glue}`` roles, as ``myst_nb.glue`` does.

    When myst-nb is installed (the book's build) this is ``myst_nb.glue``, so
    the stored outputs are the ones the book pastes from.  Without it (Colab,
    a plain install) the value is kept in :data:`GLUED` and, when
    ``display`` is true, shown with IPython's ``display`` (printed outside
    IPython); a chapter then runs the same, only nothing is pasted.
    """
    GLUED[name] = variable
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            try:
                from IPython.display import display as show
            except ImportError:
                print(repr(variable))
            else:
                show(variable)
        return
    myst_glue(name, variable, display=display)


def rounded(value, digits: int = 2) -> float:
    """``value`` as the book's text shows it: rounded half-up at ``digits`` decimals by
    :func:`gce.book.analysis.round_pct` (the rounding of every results table), with ``-0.0`` read as ``0.0``.

    Parameters
    ----------
    value : float-like
        The number (a Python or numpy scalar); NaN stays NaN.
    digits : int, default 2
        Decimals kept; a negative or non-integer value raises ``ValueError``.

    Returns
    -------
    float
        The rounded number, so a chapter's prose and its tables print the same digits (used by
        :func:`glue_num` and throughout ``book/closed_set.ipynb``).
    """
    from .analysis import round_pct

    return round_pct(float(value), digits) + 0.0


def glue_num(name: str, value, digits: int = 2) -> None:
    """Glue ``value``, rounded by :func:`rounded` to ``digits`` decimals, under ``name`` without
    displaying it, for a ``{glue:text}`` role in the chapter's prose (``book/closed_set.ipynb``)."""
    glue(name, rounded(value, digits), display=False)


def glue_md(name: str, text: str) -> None:
    """Glue the markdown ``text`` under ``name`` without displaying it, for a ``{glue:md}`` role (the
    text is pasted with its formatting: code spans, bold).  Without IPython the plain string is glued.
    ``text`` must be a string; anything else raises ``ValueError`` (used by ``book/closed_set.ipynb``)."""
    if not isinstance(text, str):
        raise ValueError(f"glue_md needs a markdown string for {name!r}, got {type(text).__name__}")
    try:
        from IPython.display import Markdown
    except ImportError:
        glue(name, text, display=False)
        return
    glue(name, Markdown(text), display=False)


def say(text: str, width: int = TEXT_WIDTH) -> None:
    """Print the sentence ``text`` wrapped to ``width`` characters (default :data:`TEXT_WIDTH`, the book's
    column), so a printed caption reads as the page does (``book/cce_vs_mae.ipynb``'s figure captions).
    A width below 1 raises ``ValueError``."""
    import textwrap

    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    print(textwrap.fill(text, width=width))
