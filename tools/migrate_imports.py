"""Rewrite the code cells of the book's notebooks to the import paths of the two layers (gce / gce.book).

The book's machinery moved from ``gce.<name>`` to ``gce.book.<name>`` (experiments, store, claims, analysis,
plots, theory, chapters, ...); the library (losses, noise, data, models, train, human_noise, ...) stayed in
``gce``.  This script rewrites, in the source of every code cell:

- ``from gce import a, b`` into ``from gce import <library names>`` and ``from gce.book import <book names>``;
- ``from gce.<moved>... import`` and ``import gce.<moved>...`` into ``gce.book.<moved>...``, and every other
  ``gce.<moved>`` reference (attributes, strings, comments: ``python -m gce.book.colab``) likewise;
- ``experiments.<store name>`` (``run_id``, ``ResultStore``, ``StoreError``, ``cce_twin``, ``provenance``: the
  store's names, which ``experiments`` no longer re-exports) into the bare name, with
  ``from gce.book.store import ...`` added at the top of that cell.

In markdown cells only the ``gce.<moved>`` references are renamed (cross-references then point at the API
page's new anchors); a markdown cell that uses ``experiments.<store name>`` (an exercise's solution) is listed,
to be edited by hand.  Only cell sources change: outputs and metadata stay as they are (re-execute the
notebooks afterwards).  The rewrite is deterministic and idempotent: a second run changes nothing.  It prints one line
per changed cell (notebook, cell index, lines before -> after) and, with ``--check``, changes nothing and exits
1 if some cell would change.

Usage: ``python tools/migrate_imports.py [--check] [FILE ...]`` (default: every notebook under ``book/``); a
``.py`` file given (a test, a script) is rewritten as one code cell.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The modules (and the chapters package) that moved from ``gce`` to ``gce.book``.
MOVED = ("analysis", "budget", "chapters", "claims", "cli", "colab", "cpu_scale", "experiments", "later",
         "notebooks", "parallel", "paths", "plots", "reader", "runners", "stats", "store", "teaching", "theory")
#: The store's names that ``gce.book.experiments`` no longer re-exports.
STORE_NAMES = ("run_id", "ResultStore", "StoreError", "cce_twin", "provenance")

_MOVED = "|".join(MOVED)
_FROM_GCE = re.compile(r"^([ \t]*)from gce import (\([^)]*\)|[^\n#]*?)([ \t]*#[^\n]*)?$", re.M)
_FROM_MOVED = re.compile(rf"^([ \t]*)from gce\.({_MOVED})\b", re.M)
_IMPORT_MOVED = re.compile(rf"^([ \t]*)import gce\.({_MOVED})\b", re.M)
_REFERENCE = re.compile(rf"(?<![\w.])gce\.({_MOVED})\b")
_STORE_USE = re.compile(rf"(?<![\w.])experiments\.({'|'.join(STORE_NAMES)})\b")
#: The longest code line of a chapter (tests/test_render.py): rewritten import lines are wrapped to fit.
MAX_LINE = 88
_IMPORT_LINE = re.compile(r"^([ \t]*)(from \S+ import )([^()#]+?)([ \t]*#.*)?$")


def _fit(line: str, limit: int = MAX_LINE) -> list[str]:
    """An import line over ``limit`` as lines that fit: its comment above it, its names in parentheses."""
    m = _IMPORT_LINE.match(line)
    if len(line) <= limit or not m:
        return [line]
    indent, head, names, comment = m.group(1), m.group(2), m.group(3).strip(), (m.group(4) or "").strip()
    out = [f"{indent}{comment}"] if comment else []
    if len(indent) + len(head) + len(names) <= limit:
        return out + [f"{indent}{head}{names}"]
    out.append(f"{indent}{head}(")
    row = ""
    for name in [x.strip() for x in names.split(",") if x.strip()]:
        piece = f"{name},"
        if row and len(indent) + 4 + len(row) + 1 + len(piece) > limit:
            out.append(f"{indent}    {row}")
            row = piece
        else:
            row = f"{row} {piece}" if row else piece
    out += [f"{indent}    {row}", f"{indent})"]
    return out


def _split_from_gce(m: re.Match) -> str:
    indent, names, comment = m.group(1), m.group(2), m.group(3) or ""
    items = [x.strip() for x in names.strip("()").replace("\n", " ").split(",") if x.strip()]
    lib = [x for x in items if x.split(" as ")[0].strip() not in MOVED]
    book = [x for x in items if x.split(" as ")[0].strip() in MOVED]
    if not book:
        return m.group(0)
    lines = []
    if lib:
        lines.append(f"{indent}from gce import {', '.join(lib)}")
    lines.append(f"{indent}from gce.book import {', '.join(book)}")
    lines[-1] += comment
    return "\n".join(lines)


def _first_code_line(lines: list[str]) -> int:
    """Where an import goes in a cell: after its leading comments, magics and blank lines."""
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith(("#", "%"))):
        i += 1
    return i


def migrate_prose(text: str) -> str:
    """Markdown ``text`` with every ``gce.<moved>`` reference (cross-references, code spans) renamed."""
    return _REFERENCE.sub(r"gce.book.\1", text)


def migrate(source: str, limit: int = MAX_LINE) -> str:
    """The Python source ``source`` with the imports and references of :data:`MOVED` rewritten (idempotent);
    a rewritten import line longer than ``limit`` is wrapped."""
    text = _FROM_GCE.sub(_split_from_gce, source)
    text = _FROM_MOVED.sub(r"\1from gce.book.\2", text)
    text = _IMPORT_MOVED.sub(r"\1import gce.book.\2", text)
    text = _REFERENCE.sub(r"gce.book.\1", text)
    used = sorted(set(_STORE_USE.findall(text)), key=STORE_NAMES.index)
    if used:
        text = _STORE_USE.sub(r"\1", text)
        lines = text.split("\n")
        at = _first_code_line(lines)
        indent = re.match(r"[ \t]*", lines[at]).group(0) if at < len(lines) else ""
        lines.insert(at, f"{indent}from gce.book.store import {', '.join(used)}")
        text = "\n".join(lines)
    before = set(source.split("\n"))
    return "\n".join(out for line in text.split("\n") for out in (_fit(line, limit) if line not in before else [line]))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _as_source_list(text: str) -> list[str]:
    """A cell source in the notebook format's list-of-lines form (every line but the last keeps its newline)."""
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def migrate_notebook(path: Path, write: bool = True) -> list[str]:
    """Rewrite the cells of the notebook at ``path`` (written back if ``write``); returns one line per cell changed
    or to be edited by hand."""
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    report, changed = [], False
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    for i, cell in enumerate(nb.get("cells", [])):
        old = _source(cell)
        code = cell.get("cell_type") == "code"
        new = migrate(old) if code else migrate_prose(old)
        if not code and _STORE_USE.search(new):  # an exercise's solution in prose: its imports are not known
            report.append(f"{where} cell {i} ({cell.get('cell_type')}): uses experiments.<a store name> "
                          f"({', '.join(sorted(set(_STORE_USE.findall(new))))}); edit it by hand (gce.book.store)")
        if new == old:
            continue
        cell["source"] = _as_source_list(new) if isinstance(cell.get("source"), list) else new
        before = [line for line in old.split("\n") if line not in new.split("\n")]
        after = [line for line in new.split("\n") if line not in old.split("\n")]
        report.append(f"{where} cell {i}: {' | '.join(before)[:300]} -> {' | '.join(after)[:300]}")
        changed = True
    if changed and write:
        indent = 1 if raw.startswith("{\n \"") else 2
        text = json.dumps(nb, indent=indent, ensure_ascii=False) + ("\n" if raw.endswith("\n") else "")
        path.write_text(text, encoding="utf-8")
    return report


def migrate_python(path: Path, write: bool = True) -> list[str]:
    """Rewrite the Python file at ``path`` as one code cell (written back if ``write``); one line if changed."""
    old = path.read_text(encoding="utf-8")
    new = migrate(old, limit=120)  # the source files' limit
    if new == old:
        return []
    if write:
        path.write_text(new, encoding="utf-8")
    changed = [line for line in new.splitlines() if line not in old.splitlines()]
    return [f"{path}: {' | '.join(changed)[:300]}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks or .py files (default: every notebook under book/)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a cell would change")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints"
                                     not in p.parts and "_build" not in p.parts)
    changed = 0
    for path in paths:
        rewrite = migrate_python if path.suffix == ".py" else migrate_notebook
        for line in rewrite(path, write=not args.check):
            print(line)
            changed += "edit it by hand" not in line
    print(f"{changed} cell(s) or file(s) {'to change' if args.check else 'changed'} in {len(paths)} file(s)")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
