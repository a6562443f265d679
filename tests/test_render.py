"""What a reader sees: stored outputs without warnings, code that fits the column, the Colab install cell,
launch buttons that point at notebooks, titles without math, and the rendered-HTML check itself."""

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from gce.book import colab
from gce.book.notebooks import book_notebooks, cell_source, read_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = book_notebooks(ROOT)

#: Longest code line of a chapter. The book's stylesheet wraps longer lines instead of scrolling (the column
#: holds about 77 characters; tools/check_width.py checks that nothing scrolls), so this bounds how often a
#: line breaks: at 88 a code line wraps at most once, with a short tail.
MAX_CODE_LINE = 88
#: Longest line of a stored text output (wrapped by the stylesheet the same way; a line of 95 characters
#: wraps once).
MAX_OUTPUT_LINE = 95
_WARNING = re.compile(r"Traceback \(most recent call last\)|\b\w*Warning\b[:(]|^\s*warnings\.warn", re.M)


def _ids(p):
    return str(p.relative_to(ROOT / "book"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_no_stored_output_shows_a_warning_or_a_traceback(path):
    bad = []
    for i, cell in enumerate(read_notebook(path)["cells"]):
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                bad.append(f"cell {i}: error {out.get('ename')}")
            text = out.get("text") or "".join(out.get("data", {}).get("text/plain", ""))
            text = "".join(text) if isinstance(text, list) else text
            if out.get("name") == "stderr" and text.strip():
                bad.append(f"cell {i}: stderr {text.strip()[:80]!r}")
            elif _WARNING.search(text):
                bad.append(f"cell {i}: {_WARNING.search(text).group(0)!r}")
    assert not bad, f"{path.name}: " + "; ".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_code_lines_fit_the_rendered_code_box(path):
    long = [(i, line) for i, cell in enumerate(read_notebook(path)["cells"]) if cell["cell_type"] == "code"
            for line in cell_source(cell).splitlines() if len(line) > MAX_CODE_LINE]
    assert not long, f"{path.name}: {len(long)} code lines over {MAX_CODE_LINE} characters, e.g. cell {long[0]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_no_markdown_line_starts_with_a_percent_sign(path):
    # MyST reads a line that starts with "%" as a comment and drops it from the page: "66.1\n% on clean labels"
    # would lose "% on clean labels" and the rest of its line
    bad = [(i, line[:60]) for i, cell in enumerate(read_notebook(path)["cells"]) if cell["cell_type"] == "markdown"
           for line in cell_source(cell).splitlines() if line.lstrip().startswith("%")]
    assert not bad, f"{path.name}: markdown lines read as MyST comments: {bad}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_text_outputs_fit_their_box(path):
    long = []
    for i, cell in enumerate(read_notebook(path)["cells"]):
        if "remove-output" in cell.get("metadata", {}).get("tags", []):
            continue  # not shown on the page
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            long += [(i, line) for line in text.splitlines() if len(line) > MAX_OUTPUT_LINE]
    assert not long, f"{path.name}: {len(long)} output lines over {MAX_OUTPUT_LINE} characters, e.g. cell {long[0]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_the_install_cell_is_the_stamped_one(path):
    nb = read_notebook(path)
    index = colab.find_install_cell(nb)
    assert index == next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"), "not the first code cell"
    assert cell_source(nb["cells"][index]) == colab.install_cell_source(ROOT), (
        f"{path.name}: install cell differs from _config.yml/pyproject.toml: run `python -m gce.book.colab`")


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [ch["file"] for ch in part.get("chapters", [])]
    return files


def test_launch_buttons_point_at_notebooks_in_the_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["repository"]["path_to_book"] == ""
    assert colab.repository_url(ROOT).startswith("https://github.com/")
    # every chapter in the table of contents exists; Colab can open the .ipynb ones
    for file in _toc_files():
        matches = [p for p in (ROOT / f"{file}.ipynb", ROOT / f"{file}.md") if p.exists()]
        assert len(matches) == 1, f"{file}: {matches}"
    toc_notebooks = {ROOT / f"{f}.ipynb" for f in _toc_files() if (ROOT / f"{f}.ipynb").exists()}
    assert toc_notebooks == set(NOTEBOOKS), "a notebook under book/ is missing from _toc.yml or vice versa"


def test_page_titles_have_no_math():
    # the sidebar, the <title> and every {doc} link show a page's title as plain text
    for file in _toc_files():
        path = next(p for p in (ROOT / f"{file}.ipynb", ROOT / f"{file}.md") if p.exists())
        text = cell_source(read_notebook(path)["cells"][0]) if path.suffix == ".ipynb" else path.read_text()
        title = next(line for line in text.splitlines() if line.startswith("# "))
        assert "$" not in title and "\\" not in title, f"{path.name}: title {title!r} has math"


def _check_html():
    spec = importlib.util.spec_from_file_location("check_html", ROOT / "tools" / "check_html.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MATHJAX = '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'


def test_html_check_accepts_math_inside_math_elements_and_code():
    check = _check_html()
    page = (f"<html><head><title>CCE, MAE and the Lq family</title>{MATHJAX}</head><body>"
            '<p>Take <span class="math notranslate nohighlight">\\(\\mathcal{L}_q\\)</span> with q.</p>'
            '<div class="math notranslate nohighlight">\\[\\frac{1 - f^q}{q}\\]</div>'
            '<pre><span>label = "$\\mathcal{L}_q$"</span></pre><p>It costs $5 and $6.</p></body></html>')
    assert check.find_raw_latex(page) == []


@pytest.mark.parametrize("html", [
    '<a class="reference internal" href="truncated.html">Truncated \\mathcal{L}_q and ACS</a>',
    "<p>$R^\\eta(f) = \\mathbb{E}\\big[ x $</p>",
    "<title>Truncated \\(\\mathcal{L}_q\\) and ACS</title>",
    '<nav><span class="math notranslate nohighlight">\\(\\mathcal{L}_q\\)</span></nav>',  # no MathJax on the page
])
def test_html_check_finds_raw_latex(html):
    assert _check_html().find_raw_latex(f"<html><body>{html}</body></html>")


def test_html_check_treats_math_as_raw_only_where_mathjax_is_missing():
    check = _check_html()
    span = '<span class="math notranslate nohighlight">\\(\\mathcal{L}_q\\)</span>'
    assert check.find_raw_latex(f"<html><head>{MATHJAX}</head><body>{span}</body></html>") == []
    assert check.find_raw_latex(f"<html><body>{span}</body></html>") != []


def test_api_constants_render_their_whole_description():
    # napoleon reads "text: more" on the first line of a ``#:`` comment as "type: description", and the
    # API page then shows a garbled "Type:" field; the first line of such a comment must not do that
    napoleon = pytest.importorskip("sphinx.ext.napoleon")
    from sphinx.ext.napoleon.docstring import GoogleDocstring, NumpyDocstring
    from sphinx.pycode import ModuleAnalyzer

    modules = re.findall(r"automodule:: (\S+)", (ROOT / "book" / "appendix" / "api.md").read_text())
    assert "gce.losses" in modules
    config = napoleon.Config(napoleon_numpy_docstring=True, napoleon_google_docstring=True)
    garbled = []
    for module in modules:
        for (cls, name), lines in ModuleAnalyzer.for_module(module).find_attr_docs().items():
            for style in (GoogleDocstring, NumpyDocstring):
                if ":type:" in str(style(list(lines), config, what="attribute", name=name)):
                    garbled.append(f"{module}.{cls + '.' if cls else ''}{name}: {lines[0][:60]!r}")
                    break
    assert not garbled, "first line read as a type by napoleon: " + "; ".join(garbled)


def test_html_check_finds_links_to_missing_pages_and_anchors():
    check = _check_html()
    pages = {
        "index.html": '<h1 id="top">x</h1><a href="#top">ok</a><a href="api.html#gce.losses.lq">ok</a>'
                      '<a href="https://example.org/#nowhere">external</a><a href="_images/fig.png">file</a>',
        "api.html": '<dt id="gce.losses.lq">lq</dt><a href="#gce.book.experiments.run">gone</a>',
        "_modules/gce/store.html": '<a href="../../api.html#gce.losses.lq">ok</a>'
                                   '<a href="../../api.html#gce.book.experiments.ResultStore">gone</a>'
                                   '<a href="../../missing.html">no page</a><a href="../../../up.html">outside</a>',
    }
    assert check.find_broken_links(pages) == [
        ("api.html", "#gce.book.experiments.run"),
        ("_modules/gce/store.html", "../../api.html#gce.book.experiments.ResultStore"),
        ("_modules/gce/store.html", "../../missing.html"),
        ("_modules/gce/store.html", "../../../up.html"),
    ]


def _check_width():
    spec = importlib.util.spec_from_file_location("check_width", ROOT / "tools" / "check_width.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_width_check_swaps_the_cdn_mathjax_for_a_local_one_and_adds_the_measurement(tmp_path):
    check = _check_width()
    local = tmp_path / "MathJax.js"
    page = check.instrument(f"<html><head>{MATHJAX}</head><body><p>x</p></body></html>", local)
    assert "cdn.jsdelivr" not in page and f'src="{local.as_uri()}?config=TeX-AMS_CHTML"' in page
    assert page.index("gceMeasure") < page.index("</body>")
    bare = check.instrument(f"<html><head>{MATHJAX}</head><body></body></html>", None)
    assert "cdn.jsdelivr" not in bare and "MathJax.js" not in bare


def _one_page(tmp_path):
    (tmp_path / "page.html").write_text('<html><body><article class="bd-article"><p>x</p></article></body></html>')
    return str(tmp_path)


def test_width_check_is_skipped_with_one_line_only_without_a_browser(tmp_path, monkeypatch, capsys):
    check = _check_width()
    monkeypatch.delenv("CHROME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no browser on it
    assert check.main([_one_page(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("width check skipped: no headless Chromium")
    assert check.main([_one_page(tmp_path), "--require"]) == 1


def test_width_check_fails_where_a_browser_is_found_but_it_cannot_measure(tmp_path, monkeypatch, capsys):
    check = _check_width()
    browser = tmp_path / "silent-browser"  # exits 0 and prints no report
    browser.write_text("#!/bin/sh\nexit 0\n")
    browser.chmod(0o755)
    monkeypatch.setenv("CHROME", str(browser))
    monkeypatch.setenv("MATHJAX", str(tmp_path / "no" / "MathJax.js"))
    assert check.main([_one_page(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("width check failed:") and "libjs-mathjax" in out and len(out.splitlines()) == 1
    (tmp_path / "MathJax.js").write_text("")
    monkeypatch.setenv("MATHJAX", str(tmp_path / "MathJax.js"))
    assert check.main([_one_page(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("width check failed: page.html: the browser returned no width report")
    assert len(out.splitlines()) == 1


def test_width_check_reports_what_overflows_in_a_real_browser(tmp_path, capsys):
    check = _check_width()
    if check.find_browser() is None or check.find_mathjax() is None:
        pytest.skip("no headless Chromium and local MathJax here")
    (tmp_path / "page.html").write_text(
        '<html><head><style>article{width:700px} pre{overflow-x:auto}</style></head><body>'
        '<article class="bd-article"><pre>short</pre><pre>' + "wide " * 60 + "</pre>"
        '<table style="width:900px"><tr><td>a wide table</td></tr></table><p>fits</p></article></body></html>')
    assert check.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "page.html: 2 elements wider than the 700 px column" in out
    assert "code   scrolls by" in out and "table  sticks out by 200 px" in out
    (tmp_path / "page.html").write_text('<html><body><article class="bd-article"><pre>short</pre></article>'
                                        "</body></html>")
    assert check.main([str(tmp_path)]) == 0
