"""The one way to read stored results: the runs of an experiment's current grid, straight from the store.

The chapters, the claims (:mod:`gce.book.claims`) and the command line all read
through :func:`read`.  It opens the SQLite store of a scale
(:class:`gce.book.store.ResultStore`) and keeps the runs that belong to the
experiment's grid as :func:`gce.book.experiments.spec` declares it now; it never
trains (:func:`gce.book.experiments.run` is what trains the missing runs).

A store is read once per state of its file: the tables are kept, keyed by the
file, its write-ahead log and their sizes and modification times, so a chapter
that reads Table 1 three times opens the file once, and a run stored meanwhile
is seen at the next read.  Every call returns fresh copies of the tables, so a
caller may change them freely.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from . import experiments
from . import store as _store

__all__ = ["read", "scales", "clear_cache"]

_CACHE: dict[tuple, tuple[pd.DataFrame, pd.DataFrame] | None] = {}


def _stamp(path: Path) -> tuple:
    """The state of a database file and its write-ahead log: (size, mtime) of each, or None if absent."""
    out = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = p.stat()
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def _stored(results: Path, scale: str, name: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Every stored run of ``name`` at ``scale`` (runs, history), or None; cached per state of the file."""
    path = results / scale / _store.DB_NAME
    key = (str(path.resolve()), name, _stamp(path))
    if key not in _CACHE:
        for old in [k for k in _CACHE if k[:2] == key[:2]]:  # an older state of the same file
            del _CACHE[old]
        st = _store.ResultStore(results, scale, name)
        _CACHE[key] = (st.runs, st.history) if len(st.runs) else None
    return _CACHE[key]


def read(name: str, scale: str | None = None, results: str | os.PathLike | None = None
         ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The stored ``(runs, history)`` of experiment ``name``'s current grid at ``scale``, or None.

    Args:
        name: an experiment of :data:`gce.book.experiments.EXPERIMENTS` (``"table1"``, ``"fig1"``, ...).
        scale: one of :data:`gce.book.experiments.SCALES`; default :func:`gce.book.experiments.default_scale`
            (``$GCE_SCALE``).
        results: the results folder; default :func:`gce.book.experiments.default_results_dir`.

    Returns:
        ``runs`` (one row per run: config, summary numbers, provenance) and ``history`` (one row per run and
        epoch), holding only the runs of ``gce.book.experiments.spec(name, scale)`` (a run of an older grid that is
        still stored is left out), in the order they were stored; None when none of them is stored.  A grid
        stored in part gives the part.  Never trains.

    Raises:
        ValueError: an unknown experiment or scale; :class:`gce.book.store.StoreError` (a ``ValueError``) for a
        damaged results file.
    """
    scale = experiments.default_scale() if scale is None else scale
    if scale not in experiments.SCALES:
        raise ValueError(f"unknown scale={scale!r}; known scales: {', '.join(experiments.SCALES)}")
    results = Path(experiments.default_results_dir() if results is None else results)
    ids = {_store.run_id(c) for c in experiments.spec(name, scale).configs}
    stored = _stored(results, scale, name) if ids else None
    if stored is None:
        return None
    runs, history = stored
    runs = runs[runs["run_id"].isin(ids)].reset_index(drop=True)
    if not len(runs):
        return None
    return runs, history[history["run_id"].isin(runs["run_id"])].reset_index(drop=True)


def scales(results: str | os.PathLike | None = None) -> list[str]:
    """The scales of :data:`gce.book.experiments.SCALES` at which some experiment has stored runs of its grid
    (``results``: the results folder, default :func:`gce.book.experiments.default_results_dir`); the claims page
    lists their verdicts."""
    results = Path(experiments.default_results_dir() if results is None else results)
    out = []
    for s in experiments.SCALES:
        path = results / s / _store.DB_NAME
        if not path.is_file():
            continue
        stored = set(_store.experiments_in(path))
        if any(read(e, s, results) is not None for e in experiments.EXPERIMENTS if e in stored):
            out.append(s)
    return out


def clear_cache() -> None:
    """Forget every table read so far (the next :func:`read` opens the files again)."""
    _CACHE.clear()
