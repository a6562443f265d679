"""Fail when the rendered book shows raw LaTeX to a reader, or links to a page or anchor that does not exist.

Usage: ``python tools/check_html.py [_build/html]`` (CI runs it after
``jupyter-book build``).

Raw LaTeX: a text node is raw LaTeX when it contains a TeX
command with an argument (``\\mathcal{``, ``\\frac{``), a math delimiter
(``\\(``, ``\\[``) or a ``$...$`` span with TeX in it, and sits outside the
elements that MathJax renders (class ``math``) and outside code (``pre``,
``code``, ``script``, ``style``).  On a page that loads no MathJax (the
references, search and index pages), text inside ``math`` elements is raw too.
The page ``<title>`` is checked as well: browsers show it as plain text.

Internal links: every ``<a href>`` of every page (the source pages under
``_modules/`` included) that points inside the book must name an existing
file and, when it has a ``#fragment``, an ``id`` (or ``name``) on that page.
Sphinx's own ``linkcheck`` builder does not check local anchors.

Exit status 1 and one line per finding when there is any.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

RAW_LATEX = re.compile(r"\\[A-Za-z]+\{|\\[()\[\]]|\$[^$\n]*[\\^_{][^$\n]*\$")
_CODE = {"pre", "code", "script", "style", "textarea", "kbd", "samp"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Scanner(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, is_math, is_code)
        self.mathjax = False
        self.texts: list[tuple[str, bool, str]] = []  # (text, inside math, enclosing tag)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and "mathjax" in (attrs.get("src") or "").lower():
            self.mathjax = True
        if tag in _VOID:
            return
        classes = (attrs.get("class") or "").split()
        self.stack.append((tag, "math" in classes, tag in _CODE))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        if not data.strip() or any(code for _, _, code in self.stack):
            return
        in_math = any(math for _, math, _ in self.stack)
        self.texts.append((data, in_math, self.stack[-1][0] if self.stack else ""))


def find_raw_latex(html: str) -> list[str]:
    """The raw-LaTeX text snippets a reader of this HTML page would see (see the module docstring)."""
    scanner = _Scanner()
    scanner.feed(html)
    found = []
    for text, in_math, _tag in scanner.texts:
        if in_math and scanner.mathjax:
            continue
        for m in RAW_LATEX.finditer(text):
            start = max(0, m.start() - 30)
            found.append(" ".join(text[start:m.end() + 30].split()))
    return found


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def find_broken_links(pages: dict[str, str]) -> list[tuple[str, str]]:
    """``(page, href)`` of each internal link of ``pages`` (path relative to the book's root, with ``/``,
    -> HTML text) whose file or ``#fragment`` does not exist.  External links (with a scheme or ``//``) are
    not checked; a link to a file that is not a page (an image, a download) is checked to be a page of
    ``pages`` only when it ends in ``.html``."""
    parsed = {}
    for name, html in pages.items():
        links = _Links()
        links.feed(html)
        parsed[name] = links
    broken = []
    for name, links in parsed.items():
        for href in links.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith("//"):
                continue
            target = name
            if parts.path:
                folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
                target = _normalise(folder + unquote(parts.path))
                if target is None or (target.endswith("/") and target + "index.html" not in parsed):
                    broken.append((name, href))
                    continue
                target = target + "index.html" if target.endswith("/") else target
                if not target.endswith(".html"):
                    continue
                if target not in parsed:
                    broken.append((name, href))
                    continue
            fragment = unquote(parts.fragment)
            if fragment and fragment not in parsed[target].ids:
                broken.append((name, href))
    return broken


def _normalise(path: str) -> str | None:
    """``a/b/../c.html`` -> ``a/c.html``; None when the path leaves the book's root."""
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                return None
            out.pop()
        else:
            out.append(part)
    return "/".join(out) + ("/" if path.endswith("/") else "")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else "_build/html")
    pages = sorted(p for p in root.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)
    if not pages:
        print(f"no HTML pages under {root}: build the book first")
        return 1
    bad = 0
    for page in pages:
        for snippet in dict.fromkeys(find_raw_latex(page.read_text(encoding="utf-8"))):
            print(f"{page.relative_to(root)}: raw LaTeX: {snippet}")
            bad += 1
    print(f"{len(pages)} pages checked, {bad} raw LaTeX snippets")
    broken = find_broken_links({p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in pages})
    for page, href in broken:
        print(f"{page}: broken internal link: {href}")
    print(f"{len(pages)} pages' internal links checked, {len(broken)} broken")
    return 1 if bad or broken else 0


if __name__ == "__main__":
    sys.exit(main())
