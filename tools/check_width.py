"""Fail when content of the rendered book is wider than its column at a desktop window (1280 px).

Usage: ``python tools/check_width.py [_build/html] [--width 1280] [--pages PAGE ...] [--require]``
(CI runs it after ``jupyter-book build``).

Each page is loaded in headless Chromium at ``--width`` CSS pixels.  MathJax is
served locally so that formulas are typeset as a reader sees them: the page's
MathJax 3 (from a CDN) is replaced, in a temporary copy of the book, by the
MathJax 2 of Debian's ``libjs-mathjax`` (``/usr/share/javascript/mathjax``, or
``$MATHJAX`` naming its ``MathJax.js``).  After typesetting, a script lists
every visible element of the article that

- **scrolls**: a box with a horizontal scroll bar (its content is wider than
  the box: code, outputs, display math, tables), or
- **is clipped**: its content is cut by ``overflow: hidden``, or
- **sticks out**: it reaches past the right edge of the article column,

reporting the outermost such element only, with its kind (code, output, math,
table, other), how many pixels are hidden, and the start of its text.  Pages of
highlighted source (``_modules/``), the index and the search page are not
checked.  Without Chromium (``chromium``, ``chromium-browser``,
``google-chrome``, or ``$CHROME``) the check is skipped with one line (exit 0;
``--require`` makes that a failure).  Where Chromium is found the check must
run in full: without local MathJax (math could not be measured), or when the
browser returns no report for a page, it fails with one line.  Exit status 1
when any element overflows or the check could not run.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MATHJAX2 = Path("/usr/share/javascript/mathjax/MathJax.js")
SKIP = ("genindex.html", "search.html", "py-modindex.html")
#: The classes whose text MathJax typesets on a Sphinx page (Sphinx's MathJax 3 ``processHtmlClass``).
PROCESS_CLASS = "tex2jax_process|mathjax_process|math|output_area"
_MATHJAX_TAG = re.compile(r"<script[^>]*src=\"[^\"]*mathjax[^\"]*\"[^>]*>\s*</script>", re.I)
_REPORT = re.compile(r'<pre id="gce-width-report"[^>]*>(.*?)</pre>', re.S)

#: The measuring script, run after MathJax has typeset the page (or at load without MathJax).
MEASURE_JS = r"""
function gceKind(el) {
  if (el.closest('.cell_output, .output')) return 'output';
  if (el.closest('.math, .MathJax_Display, .MJXc-display, mjx-container')) return 'math';
  if (el.closest('table') || el.querySelector(':scope > table')) return 'table';
  if (el.closest('pre, .highlight, code')) return 'code';
  return 'other';
}
function gceWhat(el) {
  var d = el.tagName.toLowerCase();
  var cls = typeof el.className === 'string' ? el.className.trim().split(/\s+/).filter(Boolean) : [];
  return d + (cls.length ? '.' + cls.slice(0, 2).join('.') : '');
}
function gceMeasure() {
  var main = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  var right = main.getBoundingClientRect().right;
  var found = [];
  var all = main.querySelectorAll('*');
  for (var i = 0; i < all.length; i++) {
    var el = all[i];
    if (found.some(function (f) { return f.el.contains(el); })) continue;
    if (el.closest('details:not([open]) > :not(summary)')) continue;  // folded: hidden inputs, solutions
    if (el.closest('.MJX_Assistive_MathML')) continue;  // MathJax's copy for screen readers, clipped on purpose
    if (el.checkVisibility && !el.checkVisibility({visibilityProperty: true})) continue;
    var r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;  // not shown
    var cs = getComputedStyle(el);
    if (cs.visibility === 'hidden') continue;
    var hidden = el.scrollWidth - el.clientWidth;
    var how = null, px = 0;
    if ((cs.overflowX === 'auto' || cs.overflowX === 'scroll') && hidden > 1) { how = 'scrolls'; px = hidden; }
    else if ((cs.overflowX === 'hidden' || cs.overflowX === 'clip') && hidden > 2) { how = 'is clipped'; px = hidden; }
    else if (r.right > right + 1) { how = 'sticks out'; px = Math.round(r.right - right); }
    if (how) found.push({el: el, how: how, px: px});
  }
  var out = found.map(function (f) {
    return {kind: gceKind(f.el), how: f.how, px: f.px, what: gceWhat(f.el),
            text: (f.el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60)};
  });
  var pre = document.createElement('pre');
  pre.id = 'gce-width-report';
  pre.textContent = JSON.stringify({column: Math.round(main.getBoundingClientRect().width), found: out});
  document.body.appendChild(pre);
}
function gceStart() {
  if (window.MathJax && MathJax.Hub && MathJax.Hub.Queue) { MathJax.Hub.Queue(gceMeasure); }
  else { gceMeasure(); }
}
window.addEventListener('load', function () { setTimeout(gceStart, 200); });
"""


def find_browser() -> str | None:
    """The headless browser to use: ``$CHROME``, else the first of :data:`BROWSERS` on the PATH."""
    if os.environ.get("CHROME"):
        return os.environ["CHROME"]
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def find_mathjax() -> Path | None:
    """Local MathJax 2 (``$MATHJAX`` or Debian's libjs-mathjax), or None."""
    path = Path(os.environ.get("MATHJAX") or MATHJAX2)
    return path if path.is_file() else None


def instrument(page_html: str, mathjax: Path | None) -> str:
    """The page with local MathJax 2 in place of its MathJax script (none if ``mathjax`` is None) and the
    measuring script appended."""
    local = ""
    if mathjax is not None:
        local = ('<script type="text/x-mathjax-config">MathJax.Hub.Config({messageStyle: "none", '
                 'tex2jax: {inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]], '
                 f'processClass: "{PROCESS_CLASS}", ignoreClass: "tex2jax_ignore|mathjax_ignore"}}}});</script>'
                 f'<script src="{mathjax.as_uri()}?config=TeX-AMS_CHTML"></script>')
    page_html = _MATHJAX_TAG.sub(lambda m: local, page_html)
    return page_html.replace("</body>", f"<script>{MEASURE_JS}</script></body>", 1)


def measure(browser: str, page: Path, width: int, timeout: float = 120) -> dict:
    """The report of the measuring script for one (instrumented) page."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--window-size={width},1000", "--virtual-time-budget=20000", "--allow-file-access-from-files",
           "--dump-dom", page.as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    match = _REPORT.search(out.stdout)
    if not match:
        raise RuntimeError(f"{page.name}: the browser returned no width report (exit {out.returncode}): "
                           f"{out.stderr.strip()[-300:]}")
    return json.loads(html.unescape(match.group(1)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="_build/html")
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS pixels")
    parser.add_argument("--pages", nargs="*", help="pages to check, relative to root (default: every page)")
    parser.add_argument("--require", action="store_true", help="fail (exit 1) when no browser is found")
    args = parser.parse_args(argv)
    root = Path(args.root)
    browser = find_browser()
    if browser is None:
        print("width check skipped: no headless Chromium found (apt-get install chromium, or set $CHROME)")
        return 1 if args.require else 0
    pages = args.pages or sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html")
                                 if not {"_static", "_sources", "_modules"} & set(p.parts) and p.name not in SKIP)
    if not pages:
        print(f"no HTML pages under {root}: build the book first")
        return 1
    mathjax = find_mathjax()
    if mathjax is None:
        print(f"width check failed: {browser} is here but there is no local MathJax 2 ({MATHJAX2}) to typeset "
              "the math (apt-get install libjs-mathjax, or set $MATHJAX to its MathJax.js)")
        return 1
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "html"
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns("_sources", "*.ipynb", "*.md"))
        for name in pages:
            page = copy / name
            page.write_text(instrument(page.read_text(encoding="utf-8"), mathjax), encoding="utf-8")
            try:
                report = measure(browser, page, args.width)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                print(f"width check failed: {e}")
                return 1
            found = report["found"]
            total += len(found)
            if found:
                print(f"{name}: {len(found)} elements wider than the {report['column']} px column")
            for f in found:
                print(f"  {f['kind']:6s} {f['how']} by {f['px']} px: {f['what']} {f['text']!r}")
    print(f"{len(pages)} pages checked at {args.width} px, {total} elements overflow")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
