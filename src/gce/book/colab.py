"""The Colab install cell: one source of truth, stamped into every notebook.

The first code cell of every chapter installs the ``gce`` package when the
notebook runs in Google Colab.  Its pip requirement comes from one place, the
``repository`` section of ``_config.yml``, which also drives the book's Colab
(launch), repository and issue buttons:

- ``repository.url``: the repository's address;
- ``repository.branch``: the git branch or tag that the buttons open and the
  cell installs (``gce @ git+<url>@<branch>``).  Between releases it is
  ``main``; at a release it is the release's tag, ``v<version>`` with the
  version of ``pyproject.toml`` (tests/test_teaching.py checks that a tag
  names that version).

``python -m gce.book.colab`` stamps the cell into every notebook under ``book/``
(or the notebooks named); ``python -m gce.book.colab --check`` lists the notebooks
whose install cell differs and exits 1.  Only the cell's source changes, so a
stamped notebook need not be re-executed: where ``gce`` is importable the cell
does nothing.  Where it is not, the cell fails with the real problem: pip's
error (in Colab), or the missing package and the command that installs it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .notebooks import book_notebooks, cell_source, read_notebook, set_cell_source, write_notebook

__all__ = ["INSTALL_TAG", "repository_url", "repository_ref", "package_version", "install_requirement",
           "install_cell_source", "find_install_cell", "stamp", "main"]

#: Cell tag that marks the install cell (the first code cell of a chapter).
INSTALL_TAG = "colab-install"

_TEMPLATE = '''\
# Colab: install the gce package. `python -m gce.book.colab` stamps this cell from the
# repository url and branch (or release tag) of the book's _config.yml.
import importlib
import importlib.util
import subprocess
import sys

GCE_REQUIREMENT = "{requirement}"
if "google.colab" in sys.modules and importlib.util.find_spec("gce") is None:
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", GCE_REQUIREMENT],
        capture_output=True, text=True)
    if pip.returncode != 0:
        raise RuntimeError(
            f"pip could not install {{GCE_REQUIREMENT}} (exit code {{pip.returncode}}): "
            "check that this repository and tag exist, or install gce by hand.\\n"
            "pip said: " + pip.stderr.strip()[-1500:])
    importlib.invalidate_caches()
if importlib.util.find_spec("gce") is None:
    raise ModuleNotFoundError(
        f"this chapter needs the gce package: pip install '{{GCE_REQUIREMENT}}'")'''


def repository_url(root=".") -> str:
    """``repository.url`` of ``root/_config.yml``, without a trailing slash or ``.git``."""
    import yaml

    path = Path(root) / "_config.yml"
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    url = (config.get("repository") or {}).get("url")
    if not url or not str(url).startswith(("https://", "http://")):
        raise ValueError(f"{path}: repository.url must be an http(s) address, got {url!r}")
    return str(url).rstrip("/").removesuffix(".git")


def repository_ref(root=".") -> str:
    """``repository.branch`` of ``root/_config.yml``: the branch or tag the install cell pins (default ``main``)."""
    import yaml

    path = Path(root) / "_config.yml"
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    ref = str((config.get("repository") or {}).get("branch") or "main")
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", ref):
        raise ValueError(f"{path}: repository.branch must be a git branch or tag, got {ref!r}")
    return ref


def package_version(root=".") -> str:
    """``version`` of the ``[project]`` table of ``root/pyproject.toml``."""
    path = Path(root) / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, flags=re.M | re.S)
    match = re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), flags=re.M) if project else None
    version = match.group(1) if match else None
    if not version:
        raise ValueError(f"{path}: no [project] version")
    return str(version)


def install_requirement(root=".", ref: str | None = None) -> str:
    """The pip requirement of the install cell: ``gce @ git+<url>@<ref>``, ``ref`` defaulting to
    ``repository.branch`` of ``_config.yml`` (:func:`repository_ref`)."""
    ref = repository_ref(root) if ref is None else ref
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", ref):
        raise ValueError(f"ref must be a git tag, branch or commit, got {ref!r}")
    return f"gce @ git+{repository_url(root)}@{ref}"


def install_cell_source(root=".", ref: str | None = None) -> str:
    """The full source of the install cell for the repository at ``root``."""
    return _TEMPLATE.format(requirement=install_requirement(root, ref))


def find_install_cell(nb: dict) -> int:
    """Index of the install cell: the cell tagged :data:`INSTALL_TAG`, else the first code cell
    that mentions ``google.colab``; ValueError when there is none."""
    for i, cell in enumerate(nb["cells"]):
        if INSTALL_TAG in cell.get("metadata", {}).get("tags", []):
            return i
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            if "google.colab" in cell_source(cell):
                return i
            break
    raise ValueError("no install cell: tag a code cell 'colab-install' or start the notebook with one")


def stamp(paths, source: str, *, check: bool = False) -> list[Path]:
    """Write ``source`` into the install cell of each notebook (tagging it); returns those that differed.

    With ``check`` nothing is written.
    """
    changed = []
    for path in map(Path, paths):
        nb = read_notebook(path)
        cell = nb["cells"][find_install_cell(nb)]
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if cell_source(cell) == source and INSTALL_TAG in tags:
            continue
        changed.append(path)
        if not check:
            set_cell_source(cell, source)
            if INSTALL_TAG not in tags:
                tags.append(INSTALL_TAG)
            write_notebook(nb, path)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gce.book.colab", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to stamp (default: every notebook under book/)")
    parser.add_argument("--root", default=".", help="repository root (default: .)")
    parser.add_argument("--ref", help="git tag, branch or commit to pin (default: repository.branch of _config.yml)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a cell differs")
    args = parser.parse_args(argv)
    paths = args.notebooks or book_notebooks(args.root)
    changed = stamp(paths, install_cell_source(args.root, args.ref), check=args.check)
    for path in changed:
        print(("differs: " if args.check else "stamped: ") + str(path))
    if not changed:
        print(f"all {len(paths)} install cells match")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
