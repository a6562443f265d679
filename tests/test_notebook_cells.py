"""The book's rule for code cells: they narrate and call the library.

Every code cell of every notebook under ``book/`` holds at most :data:`MAX_LOGIC_LINES` logic lines, and no cell
defines a function or a class unless it belongs to an exercise (see :func:`is_exercise_cell`).

A **logic line** is a line of code that starts a statement: a line that is not blank, not a comment, not an
``import`` or ``from ... import`` line, not a line holding only closing brackets, and not a continuation of a
bracketed call, literal or string started on an earlier line (or of a line ended by a backslash).  One statement
spread over several lines for width therefore counts once; a compound statement counts its header (``for``,
``if``, ``with``, ``else``, ...) and each statement of its body.  In Python's terms: the number of logical lines
(:mod:`tokenize`'s ``NEWLINE`` tokens), less the import statements.  A cell that is not Python (an IPython magic or
shell line) counts each such line once.

**Defining a function or class** means a ``def``, ``async def`` or ``class`` statement anywhere in the cell, or a
``lambda`` bound to a name (``gap = lambda a, b: ...``); a ``lambda`` passed as an argument defines nothing.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

from gce.book.notebooks import book_notebooks, cell_source, read_notebook
from gce.book.teaching import SOLUTION_TAG

ROOT = Path(__file__).resolve().parents[1]

#: Most logic lines one code cell may hold (the style guide's "about 15 lines").
MAX_LOGIC_LINES = 15


def _python_lines(source: str) -> tuple[str, int]:
    """``source`` with IPython magic and shell lines blanked, and how many there were."""
    kept, magics = [], 0
    for line in source.splitlines():
        if line.lstrip().startswith(("%", "!")):
            kept.append("")
            magics += 1
        else:
            kept.append(line)
    return "\n".join(kept) + "\n", magics


def logic_lines(source: str) -> int:
    """How many logic lines (see the module docstring) the code ``source`` holds."""
    text, count = _python_lines(source)
    statement: list[tokenize.TokenInfo] = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in _NOT_CODE:
            continue
        if tok.type == tokenize.NEWLINE or (tok.type == tokenize.OP and tok.string == ";"):
            if statement and statement[0].string not in {"import", "from"}:
                count += 1
            statement = []
        elif tok.type == tokenize.OP and tok.string == ":" and _ends_header(statement):
            count += 1  # a compound statement's header; its body (even on the same line) counts on its own
            statement = []
        else:
            statement.append(tok)
    return count


#: Tokens that are not code (a comment, a line break inside brackets, indentation).
_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
#: Keywords that open a compound statement, whose header ends at a colon outside brackets.
_COMPOUND = {"if", "elif", "else", "for", "while", "with", "try", "except", "finally", "def", "class", "async"}


def _ends_header(statement: list[tokenize.TokenInfo]) -> bool:
    """Whether a colon after the tokens ``statement`` ends a compound statement's header (it stands outside every
    bracket and every lambda); a dict's, a slice's, a lambda's or an annotation's colon does not."""
    if not statement or statement[0].string not in _COMPOUND:
        return False
    depth, lambdas = 0, 0
    for t in statement:
        if t.type == tokenize.OP and t.string in "([{":
            depth += 1
        elif t.type == tokenize.OP and t.string in ")]}":
            depth -= 1
        elif depth == 0 and t.string == "lambda":
            lambdas += 1
        elif depth == 0 and t.string == ":":
            lambdas -= 1
    return depth == 0 and lambdas == 0


def definitions(source: str) -> list[str]:
    """The functions and classes the code ``source`` defines (see the module docstring), by name."""
    tree = ast.parse(_python_lines(source)[0])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Lambda):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.extend(ast.unparse(t) for t in targets)
    return names


def is_exercise_cell(cell: dict) -> bool:
    """Whether a code cell belongs to an exercise: tagged ``solution`` (what :mod:`gce.book.teaching` strips from the
    student copy) or any tag naming an exercise, or headed by a comment that names an exercise or solution."""
    tags = cell.get("metadata", {}).get("tags", [])
    if SOLUTION_TAG in tags or any(t.startswith("exercise") for t in tags):
        return True
    for line in cell_source(cell).splitlines():
        text = line.strip()
        if not text or text == "# NBVAL_CHECK_OUTPUT":
            continue
        return text.startswith("#") and text.lstrip("# ").lower().startswith(("exercise", "solution"))
    return False


def offences(nb: dict) -> list[str]:
    """What breaks the rule in notebook ``nb``: one line per offending code cell, naming its index."""
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = cell_source(cell)
        n = logic_lines(source)
        if n > MAX_LOGIC_LINES:
            out.append(f"cell {i}: {n} logic lines (at most {MAX_LOGIC_LINES})")
        defined = definitions(source)
        if defined and not is_exercise_cell(cell):
            out.append(f"cell {i}: defines {', '.join(defined)} outside an exercise")
    return out


def test_every_code_cell_is_short_and_defines_nothing():
    report = []
    for path in book_notebooks(ROOT):
        found = offences(read_notebook(path))
        report.extend(f"{path.relative_to(ROOT)} {line}" for line in found)
    assert not report, (f"{len(report)} code cells break the book's rule (at most {MAX_LOGIC_LINES} logic lines, "
                        "functions only in exercises); move their logic into gce:\n" + "\n".join(report))


@pytest.mark.parametrize("source, expected", [
    ("", 0),
    ("# a comment\n\n   \n", 0),
    ("import numpy as np\nfrom gce import plots\n", 0),
    ("x = 1\ny = 2\n", 2),
    ("print(\n    'a',\n    x,\n)\n", 1),                     # one call spread over lines counts once
    ("rows = [\n    1,\n    2,\n]\nprint(rows)\n", 2),
    ("s = '''one\ntwo\nthree'''\n", 1),                       # a string over several lines
    ("x = 1 + \\\n    2\n", 1),                               # a backslash continuation
    ("for i in range(3):\n    print(i)\n", 2),
    ("for i in range(3): print(i)\n", 2),                    # header and body on one line
    ("if x:\n    y = 1\nelse:\n    y = 2\n", 4),
    ("a = 1; b = 2\n", 2),
    ("f = sorted(xs, key=lambda v: -v)\n", 1),               # a lambda's colon is no header
    ("d = {'a': 1,\n     'b': 2}\n", 1),                      # nor a dict's
    ("try:\n    x = f()\nexcept ValueError as e:\n    x = None\n", 4),
    ("def g(x: int) -> int: return x\n", 2),                 # a colon in brackets, then the header's
    ("x: int = 3\n", 1),                                     # an annotation's colon is no header
    ("with open(p) as fh: text = fh.read()\n", 2),
    ("%matplotlib inline\nx = 1\n", 2),
])
def test_logic_lines(source, expected):
    assert logic_lines(source) == expected


def test_logic_lines_counts_a_long_cell():
    assert logic_lines("\n".join(f"x{i} = {i}" for i in range(16))) == 16


@pytest.mark.parametrize("source, expected", [
    ("x = 1\n", []),
    ("def f(x):\n    return x\n", ["f"]),
    ("class A:\n    pass\n", ["A"]),
    ("for i in range(2):\n    def g():\n        pass\n", ["g"]),
    ("gap = lambda a, b: a - b\n", ["gap"]),
    ("ys = sorted(xs, key=lambda v: -v)\n", []),
])
def test_definitions(source, expected):
    assert definitions(source) == expected


@pytest.mark.parametrize("cell, expected", [
    ({"metadata": {"tags": ["solution"]}, "source": "def f(): pass"}, True),
    ({"metadata": {"tags": ["exercise-check"]}, "source": "check('x', 1, None)"}, True),
    ({"metadata": {}, "source": "# NBVAL_CHECK_OUTPUT\n# Solution to Exercise 2: the numbers\nx = 1"}, True),
    ({"metadata": {}, "source": "# Exercise 3: try another q\nq = 0.5"}, True),
    ({"metadata": {"tags": ["hide-cell"]}, "source": "x = 1  # see the solution below"}, False),
    ({"metadata": {}, "source": "# the solution of Eq. 8\nx = 1"}, False),
])
def test_is_exercise_cell(cell, expected):
    assert is_exercise_cell(cell) is expected


def test_offences_name_the_cell():
    long_cell = "\n".join(f"x{i} = {i}" for i in range(MAX_LOGIC_LINES + 1))
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Title"},
                    {"cell_type": "code", "metadata": {}, "source": long_cell},
                    {"cell_type": "code", "metadata": {}, "source": "def helper():\n    return 1\n"},
                    {"cell_type": "code", "metadata": {"tags": ["solution"]}, "source": "def answer():\n    pass\n"}]}
    assert offences(nb) == [f"cell 1: {MAX_LOGIC_LINES + 1} logic lines (at most {MAX_LOGIC_LINES})",
                            "cell 2: defines helper outside an exercise"]
