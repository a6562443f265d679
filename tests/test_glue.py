"""The chapters' glue: myst-nb's when it is installed, a plain record (and display) without it (Colab)."""

import sys
import types
from pathlib import Path

import pytest

from gce.book import notebooks
from gce.book.notebooks import book_notebooks, cell_source, read_notebook

ROOT = Path(__file__).resolve().parents[1]


def test_without_myst_nb_glue_records_and_displays_only_when_asked(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb raises ImportError, as in Colab
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    notebooks.glue("quiet", 0.25, display=False)
    notebooks.glue("loud", 0.5)
    assert notebooks.GLUED["quiet"] == 0.25 and notebooks.GLUED["loud"] == 0.5
    assert shown == [0.5]


def test_with_myst_nb_glue_is_myst_nbs(monkeypatch):
    calls = []
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, variable, display=True: calls.append((name, variable, display))
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    notebooks.glue("n_runs", 30, display=False)
    assert calls == [("n_runs", 30, False)]


@pytest.mark.parametrize("path", book_notebooks(ROOT), ids=lambda p: p.name)
def test_chapters_glue_through_the_package_not_myst_nb(path):
    sources = [cell_source(c) for c in read_notebook(path)["cells"] if c["cell_type"] == "code"]
    assert not any("myst_nb" in s for s in sources), f"{path.name} imports myst_nb: Colab has no myst-nb"
    if any("glue(" in s for s in sources):
        assert any("from gce.book.notebooks import glue" in s for s in sources), f"{path.name}: glue not imported"
