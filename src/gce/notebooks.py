"""Reading and writing the book's notebooks as plain JSON (nbformat 4), for the tools that edit them.

Used by :mod:`gce.colab` (the install cell) and :mod:`gce.teaching` (student
copies).  Only the standard library: the tools run wherever the book's
sources are, without Jupyter installed.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["read_notebook", "write_notebook", "book_notebooks", "cell_source", "set_cell_source"]


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
