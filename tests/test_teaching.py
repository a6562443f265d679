"""The course kit: student copies without solutions, and exercise checkers that tell right from wrong."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gce.book import colab, teaching
from gce.book.notebooks import book_notebooks, cell_source, read_notebook

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = """**Exercise 1.** Do this.

```{admonition} Solution
:class: dropdown
The first answer.
```

**Exercise 2.** Do that.

````{admonition} Solution to Exercise 7
:class: dropdown
Some words.
```python
print("code in the solution")
```
````

:::{dropdown} Solution
A colon-fenced answer.
:::

```{admonition} Note
Not a solution: stays.
```"""


def test_strip_solutions_removes_every_fence_kind_and_keeps_the_rest():
    text, removed = teaching.strip_solutions(SAMPLE)
    assert [n for n, _ in removed] == [None, 7, None]
    assert "The first answer" in removed[0][1] and "code in the solution" in removed[1][1]
    assert "colon-fenced" in removed[2][1]
    for word in ("Solution", "first answer", "code in the solution", "colon-fenced"):
        assert word not in text
    assert "**Exercise 1.** Do this." in text and "**Exercise 2.** Do that." in text
    assert "Not a solution: stays." in text
    assert "\n\n\n" not in text


def test_strip_solutions_leaves_text_without_solutions_alone_and_rejects_an_unclosed_block():
    assert teaching.strip_solutions("no\n\n\nsolutions here") == ("no\n\n\nsolutions here", [])
    with pytest.raises(ValueError, match="never closed"):
        teaching.strip_solutions("```{admonition} Solution\nopen forever")


def _code(nb):
    return [cell_source(c) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", book_notebooks(ROOT), ids=lambda p: p.stem)
def test_student_copy_has_no_solution_text_and_nothing_else_changed(path):
    nb = read_notebook(path)
    student, removed = teaching.student_notebook(nb, path.stem)
    flat = "\n".join(cell_source(c) for c in student["cells"])
    assert not re.search(r"\{(admonition|dropdown)\}\s*Solution", flat)
    assert not any(teaching.SOLUTION_TAG in c.get("metadata", {}).get("tags", []) for c in student["cells"])
    for body in removed:  # no line of any solution survives
        for line in body.splitlines()[2:]:
            if len(line.strip()) > 25:
                assert line not in flat, f"{path.name}: solution text left: {line!r}"
    # every original cell that held no solution is still there, unchanged and in order
    kept = [c for c in nb["cells"] if teaching.SOLUTION_TAG not in c.get("metadata", {}).get("tags", [])
            and not teaching.strip_solutions(cell_source(c))[1]]
    student_plain = [c for c in student["cells"] if "exercise-check" not in c.get("metadata", {}).get("tags", [])]
    student_ids = [c.get("id") for c in student_plain]
    for c in kept:
        assert c in student_plain, f"{path.name}: cell {c.get('id')} changed"
    assert [i for i in student_ids if i in {c.get("id") for c in kept}] == [c.get("id") for c in kept]
    checks = [c for c in student["cells"] if "exercise-check" in c.get("metadata", {}).get("tags", [])]
    assert len(checks) == sum(1 for (ch, _) in teaching.CHECKERS if ch == path.stem)


def test_every_chapter_has_its_solutions_marked():
    for path in book_notebooks(ROOT):
        nb = read_notebook(path)
        exercises = any("## Exercises" in cell_source(c) for c in nb["cells"])
        _, removed = teaching.student_notebook(nb, path.stem)
        assert not exercises or removed, f"{path.name} has exercises but no marked solution"


@pytest.mark.parametrize("key", sorted(teaching.CHECKERS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_each_checker_accepts_the_right_answer_and_rejects_a_wrong_one(key, capsys):
    checker = teaching.CHECKERS[key]
    right = checker.answer()
    assert teaching.check(*key, right) is True
    assert teaching.check(*key, right + max(1.0, 10 * checker.tol)) is False
    assert teaching.check(*key, right + 0.5 * checker.tol) is True
    assert teaching.check(*key, None) is None
    out = capsys.readouterr().out
    assert "is right" in out and "not right yet" in out and "not answered yet" in out
    with pytest.raises(ValueError, match="give a number"):
        teaching.check(*key, "0.2")


def test_check_names_the_unknown_exercise():
    with pytest.raises(ValueError, match="no checker for exercise 99 of 'noise'"):
        teaching.check("noise", 99, 1.0)


def test_the_command_writes_copies_and_the_student_copy_of_a_chapter_still_runs(tmp_path, monkeypatch):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = tmp_path / "student"
    run = subprocess.run([sys.executable, "-m", "gce.book.teaching", "student", str(out), "--root", str(ROOT)],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    written = sorted(p.relative_to(out) for p in out.rglob("*.ipynb"))
    assert written == sorted(p.relative_to(ROOT / "book") for p in book_notebooks(ROOT))
    # the smallest chapter with a checked exercise runs top to bottom, checker cell included
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(out / "noise.ipynb", as_version=4)
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))  # the kernel inherits it
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    check_cell = [c for c in nb.cells if "exercise-check" in c.metadata.get("tags", [])][0]
    text = "".join(o.get("text", "") for o in check_cell.outputs)
    assert "Exercise 2: not answered yet" in text
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_outside_the_checkout_the_command_finds_the_package_checkout_or_says_what_to_do(tmp_path, monkeypatch,
                                                                                        capsys):
    monkeypatch.chdir(tmp_path)  # gce is imported from the checkout (editable install or PYTHONPATH=src)
    assert teaching.main(["student", "copies", "noise.ipynb"]) == 1  # a chapter not found here: one line
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "noise.ipynb" in err
    assert teaching.main(["student", "copies", str(ROOT / "book" / "noise.ipynb")]) == 0
    assert (tmp_path / "copies" / "noise.ipynb").is_file()
    monkeypatch.setattr(teaching.paths, "package_checkout", lambda: None)  # an installed package
    assert teaching.main(["student", "copies"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not inside the book's checkout" in err and "--root" in err
    assert teaching.main(["student", "copies", "--root", str(tmp_path)]) == 1
    assert "no book/ folder under" in capsys.readouterr().err
    assert teaching.main(["student", str(ROOT / "book"), "--root", str(ROOT)]) == 1
    assert "must not be the book's own folder" in capsys.readouterr().err


def test_the_install_cell_comes_from_the_repository_section_of_the_config(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/someone/fork.git/\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "gce"\nversion = "2.3.4"\n[tool.x]\nversion = "9"\n')
    assert colab.install_requirement(tmp_path) == "gce @ git+https://github.com/someone/fork@main"
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/someone/fork\n  branch: v2.3.4\n")
    assert colab.install_requirement(tmp_path) == "gce @ git+https://github.com/someone/fork@v2.3.4"
    assert colab.install_requirement(tmp_path, ref="0123abc") == "gce @ git+https://github.com/someone/fork@0123abc"
    with pytest.raises(ValueError, match="ref must be"):
        colab.install_requirement(tmp_path, ref="v1; rm -rf /")
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/a/b\n  branch: 'v1; rm'\n")
    with pytest.raises(ValueError, match="repository.branch must be a git branch or tag, got 'v1; rm'"):
        colab.install_requirement(tmp_path)
    (tmp_path / "_config.yml").write_text("repository:\n  url: ''\n")
    with pytest.raises(ValueError, match="repository.url"):
        colab.repository_url(tmp_path)


def test_a_release_tag_in_the_config_names_the_packages_version():
    ref = colab.repository_ref(ROOT)
    if re.fullmatch(r"v\d.*", ref):
        assert ref == f"v{colab.package_version(ROOT)}", "_config.yml's tag and pyproject.toml's version differ"
    else:
        assert ref == "main", f"repository.branch is {ref!r}: main between releases, v<version> at one"


def _run_install_cell(tmp_path, requirement, colab_present):
    """The install cell in a fresh interpreter where gce is not importable (and, if asked, under Colab)."""
    source = colab.install_cell_source(ROOT).replace(colab.install_requirement(ROOT), requirement)
    fake_colab = tmp_path / "google" / "colab"
    fake_colab.mkdir(parents=True, exist_ok=True)
    (tmp_path / "google" / "__init__.py").write_text("")
    (fake_colab / "__init__.py").write_text("")
    script = "import sys\nsys.modules['gce'] = None  # not installed\n"
    script += ("import google.colab\n" if colab_present else "") + source
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(tmp_path), "PIP_NO_INDEX": "1"}, timeout=300)


def test_the_install_cell_stops_with_pips_error_when_the_install_fails(tmp_path):
    run = _run_install_cell(tmp_path, "gce @ file:///no/such/place", colab_present=True)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()
    assert any(line.startswith("RuntimeError: pip could not install gce @ file:///no/such/place (exit code")
               for line in last), run.stderr
    assert "check that this repository and tag exist" in run.stderr and "ModuleNotFoundError" not in run.stderr


def test_the_install_cell_names_the_missing_package_outside_colab(tmp_path):
    run = _run_install_cell(tmp_path, "gce @ git+https://example.org/x@main", colab_present=False)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: this chapter needs the gce package: pip install 'gce @ git+https://example.org/x@main'")
