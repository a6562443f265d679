"""The shape of the code: two layers with one rule, no import circles, no private names used across modules.

The graph is built from the ``import`` statements of every module under ``src/gce`` (relative ones
resolved, those inside functions included), read with :mod:`ast`, so that it also sees imports that only run
when a function is called.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
#: The command-line entry of ``python -m gce``: the one library file allowed to import the book.
ENTRY = "gce.__main__"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted((SRC / "gce").rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of what a ``from ... import`` statement imports from."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(tree: ast.AST, module: str) -> list[tuple[str, str | None]]:
    """``(module imported, name taken from it or None)`` for every import statement, nested ones included."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            out += [(source, a.name) for a in node.names]
    return out


def _gce_edges(module: str, tree: ast.AST) -> set[str]:
    """The modules of gce that ``module`` imports (a name that is a submodule counts as that submodule)."""
    edges = set()
    for source, name in _imports(tree, module):
        if name is not None and f"{source}.{name}" in MODULES:
            edges.add(f"{source}.{name}")
        elif source in MODULES:
            edges.add(source)
    edges.discard(module)
    return edges


GRAPH = {m: _gce_edges(m, ast.parse(p.read_text())) for m, p in MODULES.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_relative_and_nested_imports():
    assert "gce.losses" in GRAPH["gce.train"] and "gce.human_noise" in GRAPH["gce.train"]
    assert "gce.book.store" in GRAPH["gce.book.experiments"]  # from . import store as _store
    assert "gce.train" in GRAPH["gce.book.store"]  # from ..train import RunConfig, RunResult
    assert "gce.book.cpu_scale" in GRAPH["gce.book.experiments"]  # inside spec()
    assert "gce.book.claims" in GRAPH["gce.book.chapters.claims"]  # from .. import claims


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_there_is_no_import_circle():
    assert _circles(GRAPH) == []


def test_the_library_never_imports_the_book():
    library = [m for m in GRAPH if not m.startswith("gce.book") and m != ENTRY]
    assert {"gce", "gce.losses", "gce.train", "gce.data", "gce.noise"} <= set(library)
    wrong = {m: sorted(e for e in GRAPH[m] if e.startswith("gce.book")) for m in library}
    assert not {m: e for m, e in wrong.items() if e}


def test_import_gce_loads_neither_the_book_nor_pandas_sympy_matplotlib():
    code = ("import sys, gce; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pandas', 'sympy', 'matplotlib') or m.startswith('gce.book')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_an_old_path_warns_once_and_gives_the_moved_module():
    code = ("import warnings, sys\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    import gce.experiments\n"
            "    from gce.experiments import run\n"
            "import gce.book.experiments as new\n"
            "assert sys.modules['gce.experiments'] is new and run is new.run\n"
            "assert new.__spec__.name == 'gce.book.experiments'\n"
            "print([str(w.message) for w in caught if w.category is DeprecationWarning])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.returncode == 0, out.stderr
    messages = eval(out.stdout)  # a printed list of strings
    assert len(messages) == 1 and "gce.experiments moved to gce.book.experiments" in messages[0]


def _private_uses(path: Path, own: str | None) -> list[str]:
    """``module._name`` uses of gce modules other than ``own`` in the file at ``path`` (imports of such names,
    and attribute access through a name bound to a gce module)."""
    tree = ast.parse(path.read_text())
    bound: dict[str, str] = {}  # local name -> gce module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "gce":
                    bound[a.asname or a.name.split(".")[0]] = a.name if a.asname else "gce"
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(own, node) if node.level else (node.module or "")
            if source.split(".")[0] != "gce":
                continue
            for a in node.names:
                if f"{source}.{a.name}" in MODULES:
                    bound[a.asname or a.name] = f"{source}.{a.name}"
                elif a.name.startswith("_") and not a.name.startswith("__") and source != own:
                    found.append(f"{path.name}: from {source} import {a.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            chain, value = [], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                target = ".".join([bound[value.id], *reversed(chain)])
                if target != own:
                    found.append(f"{path.name}:{node.lineno}: {target}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    assert _private_uses(Path(__file__), None) == []
    found = [u for m, p in MODULES.items() for u in _private_uses(p, m)]
    assert found == []


@pytest.mark.parametrize("folder", ["tests", "benchmarks", "tools"])
def test_tests_benchmarks_and_tools_use_only_public_names_of_gce(folder):
    found = [u for p in sorted((ROOT / folder).glob("*.py")) for u in _private_uses(p, None)]
    assert found == []


def test_the_private_name_check_finds_them(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from gce import train\nfrom gce.train import _Pruning\nx = train._History\n")
    assert len(_private_uses(bad, None)) == 2


def test_test_modules_do_not_import_one_another():
    names = {p.stem for p in (ROOT / "tests").glob("*.py")} - {"conftest"}
    found = []
    for p in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                found += [f"{p.name}: import {a.name}" for a in node.names if a.name.split(".")[0] in names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in names | {"tests"}:
                found.append(f"{p.name}: from {node.module} import ...")
    assert found == []  # shared helpers live in conftest.py
