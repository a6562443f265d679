"""Where the stored results are found, from inside the book's checkout or from anywhere else.

One rule, used by :func:`gce.book.experiments.default_results_dir` (and so by the
chapters, the claims and the command line), first match wins:

1. ``$GCE_RESULTS``, when set;
2. the ``results/`` folder of the book's checkout that holds the working
   directory (found by walking up to the checkout's ``_toc.yml``);
3. the ``results/`` folder of the checkout that holds the imported package
   itself (an editable install, or ``PYTHONPATH=src``), so that a chapter or a
   student copy run from another folder still reads the book's stored runs;
4. the results installed with the package (:func:`installed_results_dir`:
   ``gce/results``, read-only in general), so that a plain ``pip install``
   (Colab) reads the stored pocket runs.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["RESULTS_ENV", "results_dir", "checkout_of", "package_checkout", "installed_results_dir"]

#: The environment variable that names a results folder (rule 1).
RESULTS_ENV = "GCE_RESULTS"
#: The file that marks the root of the book's checkout.
_MARKER = "_toc.yml"


def checkout_of(folder) -> Path | None:
    """The root of the book's checkout that holds ``folder`` (the nearest folder at or above it with
    ``_toc.yml``), or None."""
    here = Path(folder).resolve()
    for candidate in (here, *here.parents):
        if (candidate / _MARKER).is_file():
            return candidate
    return None


def package_checkout() -> Path | None:
    """The root of the checkout the imported ``gce`` package comes from (``<root>/src/gce``), or None
    when it is installed elsewhere (site-packages)."""
    package = Path(str(resources.files("gce")))
    root = package.parent.parent
    if package.parent.name == "src" and (root / _MARKER).is_file():
        return root
    return None


def installed_results_dir() -> Path:
    """The results installed with the package (``gce/results``: the stored pocket runs)."""
    return Path(str(resources.files("gce").joinpath("results")))


def results_dir(cwd=None) -> Path:
    """The results folder by the rule of this module (``cwd``: the working directory, by default the
    process's)."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    for root in (checkout_of(Path.cwd() if cwd is None else cwd), package_checkout()):
        if root is not None:
            return root / "results"
    return installed_results_dir()
