"""A chapter as a Colab user runs it: the package installed with pip into a bare folder, without myst-nb and
without the checkout, the notebook executed from another folder.  It must run, read the installed results and
train nothing."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "dynamics.ipynb"  # reads Fig. 1(c) and Fig. 2 from the stored results and glues their numbers


def _setuptools_can_build() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


@pytest.mark.skipif(shutil.which("jupyter") is None, reason="needs jupyter (nbclient) to execute a chapter")
def test_a_chapter_runs_from_a_plain_install_outside_the_checkout(tmp_path):
    site, work, block = tmp_path / "site", tmp_path / "work", tmp_path / "block"
    work.mkdir()
    block.mkdir()
    build = ["--no-build-isolation"] if _setuptools_can_build() else []
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *build, "--target", str(site),
                    str(ROOT)], check=True, cwd=tmp_path, capture_output=True)
    # Colab has no myst-nb: make importing it fail, as it would there
    (block / "myst_nb.py").write_text("raise ImportError('No module named myst_nb')\n")
    shutil.copy(ROOT / "book" / CHAPTER, work / CHAPTER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(block), str(site)])
    where = subprocess.run([sys.executable, "-c", "import gce, gce.book.experiments as e; "
                            "print(gce.__file__); print(e.default_results_dir())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where[0].startswith(str(site)), where  # the installed copy, not the checkout
    assert where[1].startswith(str(site)), where  # its results, installed with it
    done = subprocess.run(["jupyter", "execute", "--inplace", CHAPTER], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    nb = json.loads((work / CHAPTER).read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert sorted(p.name for p in work.iterdir()) == [CHAPTER]  # no results folder, nothing trained
    assert not (site / "gce" / "results" / "pocket" / "results.sqlite-wal").exists()
