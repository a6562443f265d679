"""The course kit: student copies of the chapters without solutions, and checked exercises.

**How solutions are marked** (the format every chapter follows):

- In a markdown cell, a solution is a MyST admonition or dropdown whose title
  starts with "Solution", fenced with three or more backticks or colons::

      ```{admonition} Solution
      :class: dropdown
      ...
      ```

  It may share its cell with the exercise.  Use a longer fence (four backticks) when
  the solution itself contains a fenced code block.
- A code cell that belongs to a solution (it prints or checks the answer)
  carries the cell tag ``solution``.
- The n-th solution of a notebook answers its Exercise n, unless the title
  names the exercise ("Solution to Exercise 3").

:func:`student_notebook` removes exactly these parts and nothing else (cells
left empty are dropped), and puts a checker cell where a solution was if
:data:`CHECKERS` has one for that exercise.  ``python -m gce.book.teaching student
OUTDIR`` writes a student copy of every chapter into ``OUTDIR``.

A checker cell calls :func:`check` with the student's answer, which says
whether it is right.  Every checker's answer is computed by the library
(:mod:`gce.book.theory`, :mod:`gce.noise`), never typed in.
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import paths
from .notebooks import book_notebooks, cell_source, read_notebook, set_cell_source, write_notebook

__all__ = ["SOLUTION_TAG", "Checker", "CHECKERS", "check", "strip_solutions", "student_notebook",
           "write_student_copies", "main"]

#: Tag of a code cell that belongs to an exercise's solution.
SOLUTION_TAG = "solution"

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,})\{(?:admonition|dropdown)\}[ \t]*"
                   r"(?P<title>Solution\b.*)$")


def strip_solutions(text: str) -> tuple[str, list[tuple[int | None, str]]]:
    """Remove every solution block (see the module docstring) from markdown ``text``.

    Returns the text without them and, per removed block, ``(exercise, body)``:
    the exercise number its title names (None when it names none) and the
    block's text.  A block that is never closed raises ValueError.
    """
    lines = text.split("\n")
    kept, removed = [], []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            kept.append(lines[i])
            i += 1
            continue
        fence = m.group("fence")
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        if j == len(lines):
            raise ValueError(f"solution block opened with {fence!r} is never closed: {lines[i]!r}")
        named = re.search(r"Exercise\s+(\d+)", m.group("title"))
        removed.append((int(named.group(1)) if named else None, "\n".join(lines[i:j + 1])))
        i = j + 1
        # drop the blank line the block leaves behind when one is already kept before it
        if i < len(lines) and not lines[i].strip() and (not kept or not kept[-1].strip()):
            i += 1
    return "\n".join(kept).strip("\n") if removed else text, removed


@dataclass(frozen=True)
class Checker:
    """A computable answer to one exercise: what to give, the right value (computed), the tolerance."""

    asks: str
    answer: Callable[[], float]
    tol: float = 0.0

    def is_right(self, value) -> bool:
        """Whether ``value`` is within ``tol`` of the right answer (exactly equal when ``tol`` is 0)."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ValueError(f"give a number as the answer, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"give a finite number as the answer, got {value!r}")
        return abs(float(value) - float(self.answer())) <= self.tol


def _fmnist_wrong_fraction() -> float:
    from .. import noise
    return float(noise.expected_flip_rate(noise.class_dependent("fashionmnist", 0.4)))


def _argmax_push(q_: float) -> float:
    f = np.linspace(1e-6, 1, 2_000_001)
    return float(f[np.argmax(f ** q_ * (1 - f))])


def _deterministic_gap() -> float:
    from . import theory
    return theory.theorem1_check(np.ones(1), np.eye(3)[:1], 0.4, 0.5)["gap"]


def _ce_gap() -> float:
    from . import theory
    p = np.array([0.6, 0.3, 0.1])
    T = np.full((3, 3), 0.4 / 2) + np.eye(3) * (0.6 - 0.2)
    p_noisy = T.T @ p
    assert np.isclose(float(theory.theorem1_pointwise_gap(p, 0.4, 1e-6)), -np.sum(p * np.log(p / p_noisy)), atol=1e-4)
    return float(-np.sum(p * np.log(p / p_noisy)))


def _confidence_gap(c_: int = 10, q_: float = 0.7, tol: float = 1e-3) -> float:
    return math.log((c_ - 1) / (q_ * tol)) / q_


def _smallest_c_eq11(q_: float = 0.7, k_: float = 0.5) -> float:
    from . import theory
    return float(next(c_ for c_ in range(2, 10_000) if bool(theory.eq11_holds(c_, q_, k_))))


def _smallest_c_scale_free(q_: float = 0.7) -> float:
    """Smallest c with c^(1-q) - 1 > 1: Eq. 11 for d = 1 with each width divided by its loss's range."""
    return float(next(c_ for c_ in range(2, 10_000) if c_ ** (1 - q_) - 1 > 1))


def _claim_effect(claim_id: str, comparison: str, scale: str = "pocket") -> float:
    """The effect of one comparison of a claim's verdict on the stored results (the experiment labs)."""
    from . import claims
    claim = claims.get(claim_id)
    verdict = claims.check(claim, claims.load_results(scale, names=claim.experiments))
    rows = verdict.numbers[verdict.numbers["comparison"].str.startswith(comparison)] if len(verdict.numbers) else []
    if not len(rows):
        raise ValueError(f"no comparison {comparison!r} in the verdict of {claim_id} at the {scale} scale")
    return float(rows["effect"].iloc[0])


def _open_set_cce_drop(scale: str = "pocket") -> float:
    """CCE's mean drop (points) under Table 2's open-set noise: the open-set claims' harm gate."""
    from . import reader
    runs, _ = reader.read("table2", scale)
    cce = runs[(runs["noise"] == "open_set") & (runs["method"] == "cce")]
    return float(100 * (cce["test_acc_best_val"] - cce["test_acc_last"]).mean())


#: ``(chapter, exercise) -> Checker`` for every exercise with a computable answer.
CHECKERS: dict[tuple[str, int], Checker] = {
    ("noise", 2): Checker("the expected fraction of wrong labels for FASHION-MNIST's class-dependent noise at "
                          "eta = 0.4 (equal class sizes)", _fmnist_wrong_fraction, 1e-3),
    ("lq_family", 4): Checker("the f_y at which |dL_q/dz_y| = f_y^q (1 - f_y) is largest for c = 2 and q = 0.7",
                              lambda: _argmax_push(0.7), 2e-3),
    ("bounds", 2): Checker("the gap R(f*) - R(f_hat) for c = 3, eta = 0.4, q = 0.5 (a negative number)",
                           _deterministic_gap, 2e-3),
    ("bounds", 3): Checker("the q -> 0 limit of the gap, -KL(p || p_noisy), for p = (0.6, 0.3, 0.1) and eta = 0.4",
                           _ce_gap, 5e-4),
    ("bounds", 5): Checker("the logit gap t from the leading-order distance (c - 1) e^(-qt) / q = 1e-3 "
                           "for c = 10, q = 0.7", _confidence_gap, 0.1),
    ("truncated", 1): Checker("the smallest number of classes c for which q = 0.7, k = 0.5 satisfy Eq. 11",
                              _smallest_c_eq11),
    ("truncated", 2): Checker("the smallest number of classes c for which the scale-free Eq. 11 (d = 1) holds at "
                              "q = 0.7", _smallest_c_scale_free),
    # the experiment labs: read a stored grid and decide a claim (answers from the stored pocket runs)
    ("cce_vs_mae", 5): Checker("the mean over seeds of MAE's minus CCE's epochs to 90 % of CCE's mean best "
                               "validation accuracy, clean digits (Fig. 1a runs)",
                               lambda: _claim_effect("mae_slower_clean", "MAE - CCE"), 0.05),
    ("dynamics", 5): Checker("CCE's mean drop in points at eta = 0.4 (Fig. 1c runs): test accuracy at the "
                             "best-validation epoch minus the last epoch's",
                             lambda: _claim_effect("cce_memorises", "CCE drop"), 0.05),
    ("closed_set", 4): Checker("truncated L_q minus L_q on digits under uniform noise, in points, paired by seed "
                               "and averaged over the noise rates every method fitted",
                               lambda: _claim_effect("truncation_improves", "digits: Trunc Lq - Lq"), 0.05),
    ("open_set", 5): Checker("CCE's mean drop in points under Table 2's open-set noise: test accuracy at the "
                             "best-validation epoch minus the last epoch's", _open_set_cce_drop, 0.05),
}


def check(chapter: str, exercise: int, answer) -> bool | None:
    """Say whether ``answer`` to Exercise ``exercise`` of ``chapter`` is right; returns True/False,
    or None (and says so) while the answer is still ``None``."""
    key = (chapter, int(exercise))
    if key not in CHECKERS:
        known = ", ".join(f"{c} {n}" for c, n in sorted(CHECKERS))
        raise ValueError(f"no checker for exercise {exercise} of {chapter!r}; checked exercises: {known}")
    checker = CHECKERS[key]
    if answer is None:
        print(f"Exercise {exercise}: not answered yet. Give {checker.asks}.")
        return None
    right = checker.is_right(answer)
    if right:
        print(f"Exercise {exercise}: {answer!r} is right.")
    else:
        print(f"Exercise {exercise}: {answer!r} is not right yet. Asked for: {checker.asks}.")
    return right


def _checker_cell(chapter: str, exercise: int) -> dict:
    checker = CHECKERS[(chapter, exercise)]
    text = (f"# Exercise {exercise}: check your answer. Put {checker.asks}\n"
            f"# in place of None and run this cell.\n"
            f"from gce.book.teaching import check\n\n"
            f"check({chapter!r}, {exercise}, None)")
    cell = {"cell_type": "code", "execution_count": None, "id": f"check-{chapter}-{exercise}".replace("_", "-"),
            "metadata": {"tags": ["exercise-check"]}, "outputs": []}
    set_cell_source(cell, text)
    return cell


def student_notebook(nb: dict, chapter: str) -> tuple[dict, list[str]]:
    """A copy of notebook ``nb`` (of chapter ``chapter``, its file stem) without its solutions.

    Returns the copy and the removed solution texts.  Markdown solution blocks
    and code cells tagged :data:`SOLUTION_TAG` are removed, cells left empty
    are dropped, and a checker cell (:func:`check`) is put where the solution
    of an exercise in :data:`CHECKERS` was.  Every other cell is unchanged.
    """
    out = copy.deepcopy(nb)
    cells, removed, n_solutions = [], [], 0
    for cell in out["cells"]:
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            removed.append(cell_source(cell))
            continue
        if cell["cell_type"] != "markdown":
            cells.append(cell)
            continue
        text, blocks = strip_solutions(cell_source(cell))
        if not blocks:
            cells.append(cell)
            continue
        if text.strip():
            set_cell_source(cell, text)
            cells.append(cell)
        for named, body in blocks:
            n_solutions += 1
            exercise = n_solutions if named is None else named
            removed.append(body)
            if (chapter, exercise) in CHECKERS:
                cells.append(_checker_cell(chapter, exercise))
    out["cells"] = cells
    return out, removed


def write_student_copies(out_dir, notebooks=None, root=".") -> list[Path]:
    """Write the student copy of each notebook (default: every chapter under ``root/book``) into ``out_dir``,
    keeping paths relative to ``book/``; returns the written paths."""
    book = (Path(root) / "book").resolve()
    notebooks = book_notebooks(root) if notebooks is None else [Path(p) for p in notebooks]
    written = []
    for path in notebooks:
        path = Path(path).resolve()
        rel = path.relative_to(book) if path.is_relative_to(book) else Path(path.name)
        student, _ = student_notebook(read_notebook(path), path.stem)
        target = Path(out_dir) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        write_notebook(student, target)
        written.append(target)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gce.book.teaching", description="The book's course kit.")
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("student", help="write student copies of the chapters, solutions removed")
    st.add_argument("out_dir", help="folder for the copies (created)")
    st.add_argument("notebooks", nargs="*", help="chapters to copy (default: every notebook under book/)")
    st.add_argument("--root", default=None,
                    help="the book's checkout (default: the one holding the working directory, else the one "
                         "the gce package is imported from)")
    args = parser.parse_args(argv)
    root = args.root or paths.checkout_of(Path.cwd()) or paths.package_checkout()
    try:
        if root is None:
            raise ValueError(f"{Path.cwd()} is not inside the book's checkout and the gce package is not "
                             f"imported from one: pass --root with the checkout's folder")
        if Path(args.out_dir).resolve() == (Path(root) / "book").resolve():
            raise ValueError("out_dir must not be the book's own folder: the copies would replace the chapters")
        written = write_student_copies(args.out_dir, args.notebooks or None, root)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in written:
        print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
