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


def test_rounded_is_the_tables_rounding_and_never_shows_minus_zero():
    assert notebooks.rounded(83.005) == 83.01  # half up from the shortest repr, as round_pct
    assert notebooks.rounded(0.12345, 3) == 0.123
    assert str(notebooks.rounded(-0.001)) == "0.0"  # -0.00 would read as a negative difference
    assert notebooks.rounded(float("nan")) != notebooks.rounded(float("nan"))
    with pytest.raises(ValueError, match="digits"):
        notebooks.rounded(1.0, -1)


def test_glue_num_and_glue_md_glue_quietly(monkeypatch):
    calls = []
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, variable, display=True: calls.append((name, variable, display))
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    notebooks.glue_num("gap", -0.004)
    notebooks.glue_num("precision", 0.98765, 3)
    notebooks.glue_md("scale", "`pocket`")
    assert calls[:2] == [("gap", 0.0, False), ("precision", 0.988, False)]
    name, variable, display = calls[2]
    assert (name, display) == ("scale", False) and variable.data == "`pocket`"  # an IPython Markdown object
    with pytest.raises(ValueError, match="markdown string for 'n'"):
        notebooks.glue_md("n", 3)


def test_glue_md_without_ipython_glues_the_plain_text(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    notebooks.glue_md("words", "**holds**")
    assert notebooks.GLUED["words"] == "**holds**"


def test_say_wraps_to_the_column(capsys):
    notebooks.say("word " * 40)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and max(map(len, lines)) <= notebooks.TEXT_WIDTH
    notebooks.say("a b c", width=3)
    assert capsys.readouterr().out == "a b\nc\n"
    with pytest.raises(ValueError, match="width"):
        notebooks.say("x", width=0)
