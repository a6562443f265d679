"""The result store: every finished run, durable the moment it finishes, in one SQLite file per scale.

Source of truth
---------------
``<results>/<scale>/results.sqlite`` is the single source of truth for stored
runs (the book's pocket runs are committed as ``results/pocket/results.sqlite``).
The tidy CSV tables (``<experiment>_runs.csv``, ``<experiment>_history.csv``)
are an *export* for readers and pandas users, written by
``python -m gce results export`` and never read back by the library (except
by the one-off ``python -m gce results import-csv``, which checks every row).

How a run is stored
-------------------
One table row per run holds its config and summary (the row of the runs
table) *and* its whole per-epoch history, written in one transaction
(:meth:`ResultStore.add`).  So a run without its history cannot exist, and a
run is on disk, fsynced, the moment ``add`` returns.  The file is in WAL mode
with a busy timeout, so several processes (two command lines, a Ray driver and
a local run) can write one folder at once.  Each connection is closed after
use, and SQLite folds the write-ahead log back into the file when the last one
closes: a folder nobody is writing to holds just ``results.sqlite``
(``*-wal``/``*-shm`` files are ignored by git).

Checked on open: that the file is an SQLite database, passes
``PRAGMA quick_check``, has this module's schema and version, and that every
run's row and history decode and agree (one history entry per epoch).  Any
failure raises :class:`StoreError` (a ``ValueError``), one message naming the
file and what is wrong; nothing is silently dropped or repaired.

``store.runs`` and ``store.history`` are the same pandas tables as the CSV
export read back with ``pandas.read_csv`` (same columns, same dtypes:
``milestones`` a space-separated string, ``model_kwargs``, ``T_used`` and
``T_hat_estimate`` JSON text).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import os
import platform
import re
import sqlite3
import subprocess
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from .losses import PAPER_K, PAPER_Q
from .train import RunConfig, RunResult

__all__ = ["SCHEMA_VERSION", "DB_NAME", "StoreError", "ResultStore", "run_id", "cce_twin", "provenance",
           "flat_config", "export_csv", "import_csv", "experiments_in", "check_writable", "compact"]

SCHEMA_VERSION = 1
DB_NAME = "results.sqlite"
_APP = "gce result store"
_BUSY_MS = 60_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment TEXT NOT NULL,
    run_id TEXT NOT NULL,
    epochs INTEGER NOT NULL,
    row TEXT NOT NULL,
    history TEXT NOT NULL,
    UNIQUE (experiment, run_id)
);
"""


class StoreError(ValueError):
    """A result file that cannot be used: the message names the file and what is wrong."""


# --------------------------------------------------------------------------- run ids and provenance


_LATER_FIELDS = {"precision": "fp32", "channels_last": False, "compile": False, "human_labels": None,
                 "prune_rule": "fixed"}


def run_id(config: RunConfig) -> str:
    """A short stable hash of the config: the key under which a run is stored."""
    d = config.to_dict()
    for key, default in _LATER_FIELDS.items():  # fields added after results were first stored:
        if d.get(key) == default:                # at their defaults they leave the key unchanged
            d.pop(key)
    blob = json.dumps(d, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def cce_twin(cfg: RunConfig) -> RunConfig:
    """The CCE run whose trained model gives the T-hat of a forward_T_hat run (same data, noise and seed)."""
    return replace(cfg, method="cce", q=PAPER_Q, k=PAPER_K)


def flat_config(cfg: RunConfig) -> dict:
    """The config as the columns of a runs table (``milestones`` space-separated, ``model_kwargs`` JSON)."""
    d = cfg.to_dict()
    d["milestones"] = " ".join(str(m) for m in cfg.milestones)
    d["model_kwargs"] = json.dumps(d["model_kwargs"])
    return d


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5)
        commit = out.stdout.strip()
        if not commit:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("+dirty" if dirty else "")  # +dirty: src/ differed from the commit
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(device: torch.device | str = "cpu") -> dict:
    """Columns stored with every run: commit, versions, device, date."""
    from . import __version__
    device = torch.device(device)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)")
    return {"commit": _git_commit(), "gce_version": __version__, "torch_version": torch.__version__,
            "python_version": platform.python_version(), "device": name,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


# --------------------------------------------------------------------------- the database file


def _pack(obj) -> bytes:
    """A row or history as stored: JSON, zlib-compressed (a 100-class run's matrices are ~200 kB as text)."""
    return zlib.compress(json.dumps(obj, allow_nan=False).encode(), 6)


def _unpack(value):
    """Inverse of :func:`_pack`; rows written as plain JSON text (before compression) read as they are."""
    if isinstance(value, bytes):
        value = zlib.decompress(value).decode()
    return json.loads(value)


def _matrix_text(T) -> str:
    """A transition matrix as JSON, each entry to 6 significant digits, as the CSV tables kept every number
    before the database: a record of the ``T`` a run used (training used the full-precision matrix), small
    enough that the 100-class T-hat estimates do not dominate the file."""
    return json.dumps([[float(f"{x:.6g}") for x in row] for row in T])


def _plain(v):
    """A JSON-safe cell: NaN becomes null (an empty CSV cell), numpy scalars become Python ones."""
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _connect(path: Path, write: bool) -> sqlite3.Connection:
    if not write and not os.access(path.parent, os.W_OK):
        # a read-only folder (an installed package): read the file as it is, without WAL side files
        uri = f"file:{path.resolve()}?mode=ro&immutable=1"
        con = sqlite3.connect(uri, uri=True, timeout=_BUSY_MS / 1000, isolation_level=None)
    else:
        con = sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    return con


def _fail(path: Path, what: str) -> StoreError:
    return StoreError(f"result database {path}: {what}; move it away (or restore it from git) and run again")


def _check_file(con: sqlite3.Connection, path: Path) -> None:
    """Schema, version and integrity of an existing database file (raises StoreError)."""
    try:
        ok = con.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            first = " ".join(str(ok).split())[:200]
            raise _fail(path, f"is corrupt (SQLite quick_check: {first})")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise _fail(path, "is an SQLite file but not a gce result database (no meta table)")
        meta = dict(con.execute("SELECT key, value FROM meta"))
    except sqlite3.DatabaseError as err:
        raise _fail(path, f"is not a readable SQLite database ({' '.join(str(err).split())})") from None
    if meta.get("app") != _APP:
        raise _fail(path, f"is not a gce result database (meta app = {meta.get('app')!r})")
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        raise _fail(path, f"has schema version {meta.get('schema_version')!r}, this gce reads version "
                          f"{SCHEMA_VERSION}")
    missing = {"runs"} - tables
    if missing:
        raise _fail(path, f"lacks the table(s) {', '.join(sorted(missing))}")


def _init_file(con: sqlite3.Connection) -> None:
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                con.execute(statement)
        con.execute("INSERT OR IGNORE INTO meta VALUES ('app', ?)", (_APP,))
        con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` and its database if needed and take the write lock once; raise StoreError if not possible.

    Called before any training, so that a read-only or invalid results folder
    is found in a second, not after a group of runs has trained.
    """
    folder = Path(folder)
    path = folder / DB_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"results folder {folder} cannot be created ({err.strerror or err}); "
                         f"choose another with --results or $GCE_RESULTS") from None
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise StoreError(f"results folder {folder} is read-only, so new runs cannot be stored there; "
                         f"choose a writable folder with --results or $GCE_RESULTS")
    existed = path.exists()
    try:
        con = _connect(path, write=True)
        try:
            if existed:
                _check_file(con, path)
            _init_file(con)
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
        finally:
            con.close()
    except sqlite3.OperationalError as err:
        raise StoreError(f"results folder {folder} cannot be written ({err}); choose a writable folder with "
                         f"--results or $GCE_RESULTS") from None
    except sqlite3.DatabaseError as err:
        raise _fail(path, f"is not a readable SQLite database ({err})") from None
    return path


def experiments_in(path: str | os.PathLike) -> list[str]:
    """The experiments stored in a database file, in the order first stored."""
    path = Path(path)
    con = _connect(path, write=False)
    try:
        _check_file(con, path)
        rows = con.execute("SELECT experiment, MIN(seq) AS s FROM runs GROUP BY experiment ORDER BY s").fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def _typed(records: list[dict]) -> pd.DataFrame:
    """The rows as pandas reads them from a CSV file (the export), so dtypes match the tables of old."""
    if not records:
        return pd.DataFrame()
    text = pd.DataFrame.from_records(records).to_csv(index=False)
    return pd.read_csv(io.StringIO(text))


class ResultStore:
    """The stored runs of one experiment at one scale, in ``root/<scale>/results.sqlite``.

    ``runs`` has one row per run (its config, summary numbers, the ``T`` it
    used, the T-hat estimated from it, provenance), ``history`` one row per run
    and epoch.  :meth:`add` stores runs, each in one transaction.  Opening
    checks the file (see the module docstring); it does not create it.
    """

    def __init__(self, root: str | os.PathLike, scale: str, experiment: str):
        if not re.fullmatch(r"[A-Za-z0-9_-]+", str(scale)):  # the scale names a folder
            raise ValueError(f"invalid scale={scale!r}: a scale is a plain folder name such as 'pocket'")
        self.dir = Path(root) / scale
        self.scale, self.experiment = scale, experiment
        self.path = self.dir / DB_NAME
        self.trained: list[str] = []
        self._frames: tuple[pd.DataFrame, pd.DataFrame] | None = None
        self._ids: set[str] = set()
        self._rows: dict[str, dict] = {}
        self._load()

    # ---- reading

    def _load(self) -> None:
        self._frames = None
        self._ids, self._rows = set(), {}
        if not self.path.exists():
            return
        try:
            con = _connect(self.path, write=False)
        except sqlite3.Error as err:
            raise _fail(self.path, f"cannot be opened ({err})") from None
        try:
            _check_file(con, self.path)
            try:
                cur = con.execute("SELECT run_id, epochs, row, history FROM runs WHERE experiment = ? ORDER BY seq",
                                  (self.experiment,))
                fetched = cur.fetchall()
            except sqlite3.DatabaseError as err:
                raise _fail(self.path, f"cannot be read ({err})") from None
        finally:
            con.close()
        self._raw = []
        for rid, epochs, row_text, hist_text in fetched:
            try:
                row, hist = _unpack(row_text), _unpack(hist_text)
            except (TypeError, ValueError, zlib.error) as err:
                raise _fail(self.path, f"run {rid} of {self.experiment} has a damaged row ({err})") from None
            if not isinstance(row, dict) or row.get("run_id") != rid:
                raise _fail(self.path, f"run {rid} of {self.experiment} has a row that does not match its id")
            missing = [c for c in _RUN_COLUMNS if c not in row]
            if missing:
                raise _fail(self.path, f"run {rid} of {self.experiment} lacks {', '.join(missing)}")
            lengths = {k: len(v) for k, v in hist.items()} if isinstance(hist, dict) else {}
            if "epoch" not in lengths or set(lengths.values()) != {epochs}:
                raise _fail(self.path, f"run {rid} of {self.experiment} has a history of {lengths} entries "
                                       f"for {epochs} epochs")
            self._ids.add(rid)
            self._rows[rid] = row
            self._raw.append((rid, row, hist))

    @property
    def runs(self) -> pd.DataFrame:
        return self._tables()[0]

    @property
    def history(self) -> pd.DataFrame:
        return self._tables()[1]

    def _tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._frames is None:
            raw = getattr(self, "_raw", [])
            hist_rows = []
            for rid, _, hist in raw:
                cols = list(hist)
                for i in range(len(hist["epoch"])):
                    hist_rows.append({"run_id": rid, **{c: hist[c][i] for c in cols}})
            self._frames = (_typed([row for _, row, _ in raw]), _typed(hist_rows))
        return self._frames

    def done(self) -> set[str]:
        """The ids of the stored runs."""
        return set(self._ids)

    def t_hat(self, config: RunConfig) -> list | None:
        """The T-hat estimated from the stored CCE run matching ``config`` (None if not stored)."""
        row = self._rows.get(run_id(cce_twin(config)))
        text = (row or {}).get("T_hat_estimate")
        return json.loads(text) if isinstance(text, str) and text else None

    # ---- writing

    def add(self, results: Sequence[RunResult], prov: dict, scale: str | None = None,
            t_hat: dict[str, list] | None = None, flush: bool = True) -> None:
        """Store finished runs (replacing stored runs with the same id), each in one transaction.

        When ``add`` returns, the runs are on disk.  ``flush`` is accepted for
        compatibility and ignored (there is nothing to flush).
        """
        scale = self.scale if scale is None else scale
        records = []
        for r in results:
            rid = run_id(r.config)
            est = (t_hat or {}).get(rid)
            row = {"run_id": rid, "experiment": self.experiment, "scale": scale, **flat_config(r.config),
                   "best_epoch": r.best_epoch, "test_acc_best_val": r.test_acc_best_val,
                   "test_acc_last": r.test_acc_last, "flip_rate_train": r.flip_rate_train,
                   "flip_rate_val": r.flip_rate_val, "T_used": _matrix_text(r.T_used) if r.T_used is not None else "",
                   "T_hat_estimate": _matrix_text(est) if est else "", **prov}
            hist = {"epoch": list(range(1, r.epochs + 1)),
                    **{k: [_plain(x) for x in v[:r.epochs]] for k, v in r.history.items()}}
            records.append((rid, r.epochs, {k: _plain(v) for k, v in row.items()}, hist))
        self.put(records)

    def put(self, records: Sequence[tuple[str, int, dict, dict]]) -> None:
        """Store ``(run_id, epochs, row, history)`` records, one transaction each (what :meth:`add` calls)."""
        if not records:
            return
        path = check_writable(self.dir) if not self.path.exists() else self.path
        con = _connect(path, write=True)
        try:
            con.execute("PRAGMA synchronous = FULL")
            for rid, epochs, row, hist in records:
                row_text, hist_text = _pack(row), _pack(hist)
                con.execute("BEGIN IMMEDIATE")
                try:
                    con.execute("DELETE FROM runs WHERE experiment = ? AND run_id = ?", (self.experiment, rid))
                    con.execute("INSERT INTO runs (experiment, run_id, epochs, row, history) VALUES (?, ?, ?, ?, ?)",
                                (self.experiment, rid, epochs, row_text, hist_text))
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                self._ids.add(rid)
                self._rows[rid] = row
                raw = [x for x in getattr(self, "_raw", []) if x[0] != rid]
                self._raw = raw + [(rid, row, hist)]
                self._frames = None
        except sqlite3.OperationalError as err:
            raise StoreError(f"result database {path} cannot be written ({err})") from None
        finally:
            con.close()

    def flush(self) -> None:
        """Nothing to do: every run is written when it is added (kept for compatibility)."""


# --------------------------------------------------------------------------- CSV export and import


def export_csv(root: str | os.PathLike, scale: str, out: str | os.PathLike | None = None) -> list[Path]:
    """Write ``<experiment>_runs.csv`` and ``<experiment>_history.csv`` of every stored experiment to ``out``.

    ``out`` defaults to ``root/<scale>``.  The files are an export for readers;
    the database stays the source of truth.
    """
    path = Path(root) / scale / DB_NAME
    if not path.exists():
        raise StoreError(f"no result database at {path}: nothing to export")
    out = Path(out) if out is not None else Path(root) / scale
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in experiments_in(path):
        store = ResultStore(root, scale, name)
        for df, kind in ((store.runs, "runs"), (store.history, "history")):
            target = out / f"{name}_{kind}.csv"
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            df.to_csv(tmp, index=False, float_format="%.6g")
            os.replace(tmp, target)
            written.append(target)
    return written


_RUN_COLUMNS = ("run_id", "experiment", "scale", "dataset", "noise", "eta", "method", "epochs", "seed",
                "best_epoch", "test_acc_best_val", "test_acc_last")
_HIST_COLUMNS = ("run_id", "epoch", "test_acc")


def _read_export(path: Path, need: Sequence[str]) -> pd.DataFrame:
    """A CSV table read as text, every cell checked to be present (raises StoreError naming file and line)."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise StoreError(f"export file {path} is damaged ({str(err).strip()})") from None
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise StoreError(f"export file {path} lacks the column(s) {', '.join(missing)}: "
                         f"it is damaged or not a gce result table")
    short = df.isna().any(axis=1)
    if short.any():
        line = int(short.to_numpy().nonzero()[0][0]) + 2
        raise StoreError(f"export file {path} is damaged: line {line} has fewer fields than the header "
                         f"(truncated?)")
    bad = ~df["run_id"].str.fullmatch(r"[0-9a-f]{16}")
    if bad.any():
        line = int(bad.to_numpy().nonzero()[0][0]) + 2
        raise StoreError(f"export file {path} is damaged: line {line} has run_id "
                         f"{df['run_id'].iloc[line - 2]!r}, not a gce run id")
    return df


def _cell(text: str):
    """A CSV cell as JSON value: '' stays '' (pandas reads it as missing either way)."""
    return text


def import_csv(folder: str | os.PathLike, root: str | os.PathLike, scale: str,
               names: Sequence[str] | None = None) -> dict[str, int]:
    """Store the runs of CSV tables (``<name>_runs.csv`` + ``<name>_history.csv`` in ``folder``) in the database.

    Every row is checked first (all columns present, run ids well formed, one
    history row per epoch for every run, numbers that parse); a damaged file
    raises :class:`StoreError` naming it, and nothing is stored.  Cells are
    kept as the text they were, so the tables read back equal the CSV ones.
    Returns the number of runs stored per experiment.
    """
    folder = Path(folder)
    if names is None:
        names = sorted(p.name[:-len("_runs.csv")] for p in folder.glob("*_runs.csv"))
    plans = {}
    for name in names:
        runs_path, hist_path = folder / f"{name}_runs.csv", folder / f"{name}_history.csv"
        if not hist_path.exists():
            raise StoreError(f"export file {hist_path} is missing (the runs of {runs_path} need their history)")
        runs = _read_export(runs_path, _RUN_COLUMNS)
        hist = _read_export(hist_path, _HIST_COLUMNS)
        for col in ("eta", "test_acc_best_val", "test_acc_last", "epochs", "best_epoch"):
            if pd.to_numeric(runs[col], errors="coerce").isna().any():
                line = int(pd.to_numeric(runs[col], errors="coerce").isna().to_numpy().nonzero()[0][0]) + 2
                raise StoreError(f"export file {runs_path} is damaged: line {line} has {col} = "
                                 f"{runs[col].iloc[line - 2]!r}")
        if runs["run_id"].duplicated().any():
            raise StoreError(f"export file {runs_path} lists run {runs['run_id'][runs['run_id'].duplicated()].iloc[0]}"
                             f" twice")
        groups = {rid: g for rid, g in hist.groupby("run_id", sort=False)}
        records = []
        for _, r in runs.iterrows():
            rid, epochs = r["run_id"], int(float(r["epochs"]))
            g = groups.get(rid)
            if g is None or len(g) != epochs or list(g["epoch"]) != [str(e) for e in range(1, epochs + 1)]:
                n = 0 if g is None else len(g)
                raise StoreError(f"export file {hist_path} is damaged: run {rid} has {n} history rows for "
                                 f"{epochs} epochs")
            hist_cols = [c for c in hist.columns if c != "run_id"]
            records.append((rid, epochs, {c: _cell(r[c]) for c in runs.columns},
                            {c: [_cell(x) for x in g[c]] for c in hist_cols}))
        extra = set(groups) - set(runs["run_id"])
        if extra:
            raise StoreError(f"export file {hist_path} has history for {len(extra)} run(s) not in {runs_path}")
        plans[name] = records
    counts = {}
    for name, records in plans.items():
        ResultStore(root, scale, name).put(records)
        counts[name] = len(records)
    return counts


def compact(root: str | os.PathLike, scale: str) -> Path:
    """Fold the write-ahead log into ``root/<scale>/results.sqlite`` and shrink it (before committing it to git).

    ``PRAGMA wal_checkpoint(TRUNCATE)`` then ``VACUUM``; waits for other writers (busy timeout).
    """
    path = Path(root) / scale / DB_NAME
    if not path.exists():
        raise StoreError(f"no result database at {path}")
    con = _connect(path, write=True)
    try:
        _check_file(con, path)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return path
