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
``PRAGMA integrity_check`` (which, unlike ``quick_check``, compares every
index with its table: reads go through the index, so a damaged index would
otherwise hide runs or invent experiments; cost: one pass over the file, about
1 ms per MB), has this module's schema and version, and that every run's row
and history decode and agree (one history entry per epoch, the row's run id
and experiment those it is stored under).  Any failure raises
:class:`StoreError` (a ``ValueError``), one message naming the file and what
is wrong; nothing is silently dropped or repaired.  :meth:`ResultStore.put`
checks each record the same way before writing it.

Hostile conditions
------------------
- A new file is built under a private name and linked into place whole, so
  processes that start on one empty folder at once never see a file without
  its schema.  An SQLite file without any table (what a creation that failed
  before its schema leaves) holds no run; the next writer creates the schema.
- A folder this process cannot write to (an installed package, a read-only
  mount) is read without side files; if a non-empty ``-wal`` lies beside the
  file (a writer was killed while a reader held it), the file and its log are
  read through a private temporary copy, so every committed run is seen.
- A full disk is named as such ("the disk is full"); the runs stored before
  stay, and an export removes its half-written temporary file.
- :func:`compact` raises :class:`StoreError` when another process holds the
  file and the log cannot be folded, rather than leaving runs in the ignored
  ``-wal``.

``store.runs`` and ``store.history`` are the same pandas tables as the CSV
export read back with ``pandas.read_csv`` (same columns, same dtypes:
``milestones`` a space-separated string, ``model_kwargs``, ``T_used`` and
``T_hat_estimate`` JSON text).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import lzma
import math
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from ..losses import PAPER_K, PAPER_Q
from ..train import RunConfig, RunResult

__all__ = ["SCHEMA_VERSION", "DB_NAME", "StoreError", "ResultStore", "run_id", "cce_twin", "provenance",
           "flat_config", "export_csv", "import_csv", "experiments_in", "check_writable", "compact", "encode", "decode",
           "cpu_model"]

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
        root = Path(__file__).resolve().parents[3]
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


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else the platform's processor or machine name."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: torch.device | str = "cpu") -> dict:
    """Columns stored with every run: commit, versions, device, date.

    A CPU device names the CPU model, its core count, the SIMD level torch dispatches to and MKL's
    ``MKL_CBWR`` setting: float results can differ between CPUs because MKL picks its matrix-product kernels by
    CPU unless ``MKL_CBWR`` pins them, so two runs of one config are comparable bit for bit only where these
    agree.
    """
    from .. import __version__
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        simd = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "?"
        name = (f"cpu ({cpu_model()}, {platform.machine()}, {os.cpu_count()} cores, {simd}, "
                f"MKL_CBWR={os.environ.get('MKL_CBWR', 'auto')})")
    return {"commit": _git_commit(), "gce_version": __version__, "torch_version": torch.__version__,
            "python_version": platform.python_version(), "device": name,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


# --------------------------------------------------------------------------- the database file


#: The tag byte in front of a stored row or history, which is JSON compressed by raw LZMA2 (preset 9e), about
#: 15 % smaller than zlib on the book's runs.  Rows written earlier, zlib-compressed (first byte 0x78) or as
#: plain JSON text, read as they are; :func:`compact` repacks them.
_LZMA_TAG = b"L"
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
_DAMAGE = (TypeError, ValueError, zlib.error, lzma.LZMAError)


def encode(obj) -> bytes:
    """A row or history (a JSON-able dict) as the store keeps it: JSON, compressed (a 100-class run's matrices
    are ~200 kB as text)."""
    text = json.dumps(obj, allow_nan=False).encode()
    return _LZMA_TAG + lzma.compress(text, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)


def decode(value):
    """Inverse of :func:`encode`; rows written zlib-compressed or as plain JSON text read as they are."""
    if isinstance(value, bytes):
        if value[:1] == _LZMA_TAG:
            value = lzma.decompress(value[1:], format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
        else:
            value = zlib.decompress(value)
        value = value.decode()
    return json.loads(value)


def _history_to_store(hist: dict, epochs: int) -> dict:
    """A run's history as stored: without its ``epoch`` column when that is just 1, ..., ``epochs``."""
    if hist.get("epoch") == list(range(1, epochs + 1)):
        return {k: v for k, v in hist.items() if k != "epoch"}
    return hist


def _history_from_store(hist, epochs: int):
    """Inverse of :func:`_history_to_store`: the ``epoch`` column put back first where it was left out."""
    if isinstance(hist, dict) and "epoch" not in hist:
        return {"epoch": list(range(1, epochs + 1)), **hist}
    return hist


def _unstorable(obj) -> str:
    """The first infinite number in a row or history, as ``column = value`` (epoch given), or ''."""
    for key, value in obj.items():
        values = value if isinstance(value, list) else [value]
        for i, v in enumerate(values):
            if isinstance(v, float) and math.isinf(v):
                where = f" at epoch {i + 1}" if isinstance(value, list) else ""
                return f"{key} = {v}{where}; the store keeps finite numbers (NaN becomes empty)"
    return ""


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


def _connect(path: Path, write: bool, wait_s: float = _BUSY_MS / 1000) -> sqlite3.Connection:
    """A connection to ``path``; reading from a read-only folder opens the file as it is (``immutable``)."""
    if not write and not os.access(path.parent, os.W_OK):
        # a read-only folder (an installed package, a read-only mount): read the file as it is, without
        # creating side files.  A non-empty -wal beside it is read through a private copy (_reading).
        uri = f"file:{path.resolve()}?mode=ro&immutable=1"
        con = sqlite3.connect(uri, uri=True, timeout=wait_s, isolation_level=None)
    else:
        con = sqlite3.connect(path, timeout=wait_s, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
        except BaseException:
            con.close()
            raise
    return con


def _has_log(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.is_file() and wal.stat().st_size > 0


@contextlib.contextmanager
def _reading(path: Path):
    """A read connection to an existing database file (raises StoreError if it cannot be opened).

    In a folder this process cannot write to, a non-empty ``-wal`` beside the file holds committed runs that
    the file alone lacks (a writer was killed while a reader held the file): the file and its log are then
    copied to a private temporary folder and read there, so that every committed run is seen.
    """
    _check_is_file(path)
    if not path.exists():  # (connecting would create an empty file)
        raise StoreError(f"no result database at {path}")
    tmp = None
    try:
        if not os.access(path.parent, os.W_OK) and _has_log(path):
            tmp = tempfile.TemporaryDirectory(prefix="gce-read-")
            copy = Path(tmp.name) / path.name
            shutil.copyfile(path, copy)
            shutil.copyfile(path.with_name(path.name + "-wal"), copy.with_name(copy.name + "-wal"))
            con = sqlite3.connect(copy, timeout=_BUSY_MS / 1000, isolation_level=None)
        else:
            con = _connect(path, write=False)
    except (sqlite3.Error, OSError) as err:
        if tmp is not None:
            tmp.cleanup()
        raise _fail(path, f"cannot be opened ({_why(err, path.parent)})") from None
    try:
        yield con
    finally:
        con.close()
        if tmp is not None:
            tmp.cleanup()


def _why(err: BaseException, folder: Path | None = None) -> str:
    """An SQLite or OS error in words, naming a full disk as such.

    SQLite reports a full disk as "database or disk is full" when a write fails, but as a plain "disk I/O
    error" when the write-ahead log or its index cannot grow; so an I/O error is also named a full disk when
    the file system of ``folder`` has less than 1 MB free.
    """
    text = " ".join(str(err).split())
    full = "disk is full" in text or getattr(err, "errno", None) == errno.ENOSPC
    if not full and folder is not None and "I/O error" in text:
        try:
            full = shutil.disk_usage(folder).free < 2 ** 20
        except OSError:
            pass
    if full:
        return f"the disk is full: {text}; free some space and run again"
    return text


def _check_is_file(path: Path) -> None:
    if path.exists() and not path.is_file():
        raise StoreError(f"result database {path} is a {'folder' if path.is_dir() else 'special file'}, "
                         f"not a database file; move it away and run again")


def _fail(path: Path, what: str) -> StoreError:
    return StoreError(f"result database {path}: {what}; move it away (or restore it from git) and run again")


def _check_file(con: sqlite3.Connection, path: Path) -> bool:
    """Schema, version and integrity of an existing database file (raises StoreError).

    Returns False for an SQLite file that holds no table at all (what a creation that failed before its
    schema leaves, e.g. on a full disk): it holds no run, and a writer creates the schema in it.

    Integrity is ``PRAGMA integrity_check``, which also compares every index with its table (``quick_check``
    does not, and reads go through the index on ``(experiment, run_id)``: a damaged index would hide runs or
    show runs under a wrong experiment).  Its cost is one pass over the file: about 1 ms per MB here, 4 ms
    for the pocket results (5 MB).
    """
    if path.stat().st_size == 0:
        raise _fail(path, "is empty (0 bytes), not a result database")
    try:
        ok = con.execute("PRAGMA integrity_check(5)").fetchall()
        if [r[0] for r in ok] != ["ok"]:
            first = " ".join(" ".join(str(r[0]) for r in ok).split())[:200]
            raise _fail(path, f"is corrupt (SQLite integrity_check: {first})")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return False
        if "meta" not in tables:
            raise _fail(path, "is an SQLite file but not a gce result database (no meta table)")
        meta = dict(con.execute("SELECT key, value FROM meta"))
    except sqlite3.DatabaseError as err:
        why = _why(err, path.parent)
        if why.startswith("the disk is full"):  # the file is fine: reading a WAL file needs a little space
            raise StoreError(f"result database {path} cannot be read ({why})") from None
        raise _fail(path, f"is not a readable SQLite database ({' '.join(str(err).split())})") from None
    if meta.get("app") != _APP:
        raise _fail(path, f"is not a gce result database (meta app = {meta.get('app')!r})")
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        raise _fail(path, f"has schema version {meta.get('schema_version')!r}, this gce reads version "
                          f"{SCHEMA_VERSION}")
    missing = {"runs"} - tables
    if missing:
        raise _fail(path, f"lacks the table(s) {', '.join(sorted(missing))}")
    return True


def _rollback(con: sqlite3.Connection) -> None:
    """Roll back if a transaction is open (SQLite has already rolled back after e.g. a full disk)."""
    if con.in_transaction:
        try:
            con.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _create_schema(con: sqlite3.Connection) -> None:
    """The tables and meta rows, inside the caller's transaction."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            con.execute(statement)
    con.execute("INSERT OR IGNORE INTO meta VALUES ('app', ?)", (_APP,))
    con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def _write_schema(path: Path) -> None:
    """Open (or create) ``path`` in WAL mode and write the schema in one ``BEGIN IMMEDIATE`` transaction."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("BEGIN IMMEDIATE")
        try:
            _create_schema(con)
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
    finally:
        con.close()


def _create(path: Path) -> None:
    """Create the database at ``path`` whole, or not at all.

    The file is built under a private name and then linked to ``path`` (``os.link`` fails if ``path`` exists),
    so other processes never see a file without its schema: two processes starting on one empty folder both
    succeed (the second uses the first one's file).  Where hard links are not supported, the file is created
    in place and its schema written under ``BEGIN IMMEDIATE``; a reader that opens it in that instant finds an
    empty file and says so.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.new")
    try:
        _write_schema(tmp)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        except OSError:  # no hard links on this file system
            _write_schema(path)
    finally:
        for side in ("", "-wal", "-shm", "-journal"):
            try:
                os.unlink(f"{tmp}{side}")
            except FileNotFoundError:
                pass


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
    _check_is_file(path)
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise StoreError(f"results folder {folder} is read-only, so new runs cannot be stored there; "
                         f"choose a writable folder with --results or $GCE_RESULTS")
    try:
        if not path.exists():
            _create(path)
        con = _connect(path, write=True)
        try:
            con.execute("BEGIN IMMEDIATE")  # the write lock: also serialises the schema of a file without one
            try:
                if not _check_file(con, path):
                    _create_schema(con)
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise
            if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # a file whose creation failed
                try:
                    con.execute("PRAGMA journal_mode = WAL")
                except sqlite3.OperationalError:
                    pass  # another process holds it now; the next writer sets it (rollback mode works meanwhile)
        finally:
            con.close()
    except sqlite3.OperationalError as err:
        raise StoreError(f"results folder {folder} cannot be written ({_why(err, folder)}); choose a writable folder "
                         f"with --results or $GCE_RESULTS") from None
    except sqlite3.DatabaseError as err:
        raise _fail(path, f"is not a readable SQLite database ({err})") from None
    except OSError as err:
        raise StoreError(f"results folder {folder} cannot be written ({_why(err)})") from None
    return path


def experiments_in(path: str | os.PathLike) -> list[str]:
    """The experiments stored in a database file, in the order first stored."""
    path = Path(path)
    with _reading(path) as con:
        if not _check_file(con, path):
            return []
        rows = con.execute("SELECT experiment, MIN(seq) AS s FROM runs GROUP BY experiment ORDER BY s").fetchall()
    return [r[0] for r in rows]


_WHOLE = re.compile(r"[+-]?\d+")


def _value(cell):
    """A stored cell as a Python value: rows imported from CSV tables hold text, so numeric text is a number
    and ``"True"``/``"False"`` a boolean; anything else is returned as it is."""
    if not isinstance(cell, str):
        return cell
    if _WHOLE.fullmatch(cell):
        return int(cell)
    if cell in ("True", "False"):
        return cell == "True"
    try:
        return float(cell)
    except ValueError:
        return cell


def _column(values: list) -> pd.Series:
    """One table column from its stored cells, typed by what they hold.

    Missing cells (None, ``""`` or NaN) are NaN.  Whole numbers give ``int64`` (``float64`` when some are
    missing), other numbers ``float64``, booleans ``bool`` (``object`` when some are missing); a column
    holding any text that is not a number is text (the string dtype), every cell as written; a column
    without any value is ``float64`` NaN.  These are the dtypes of the CSV export read back with
    ``pandas.read_csv``.
    """
    def absent(v) -> bool:
        return v is None or v == "" or (isinstance(v, float) and math.isnan(v))

    present = [_value(v) for v in values if not absent(v)]
    missing = len(present) < len(values)
    if not present:
        return pd.Series([math.nan] * len(values), dtype="float64")
    if all(isinstance(v, bool) for v in present):
        cells = [math.nan if absent(v) else _value(v) for v in values]
        return pd.Series(cells, dtype=object if missing else bool)
    if not any(isinstance(v, (bool, str)) for v in present):
        cells = [math.nan if absent(v) else _value(v) for v in values]
        whole = all(isinstance(v, int) for v in present)
        return pd.Series(cells, dtype="int64" if whole and not missing else "float64")
    return pd.Series([math.nan if absent(v) else v if isinstance(v, str) else str(v) for v in values], dtype="str")


def _typed(records: list[dict]) -> pd.DataFrame:
    """The rows as a table with one typed column per key (:func:`_column`), in the order the keys first appear."""
    if not records:
        return pd.DataFrame()
    names = list(dict.fromkeys(k for r in records for k in r))
    return pd.DataFrame({k: _column([r.get(k) for r in records]) for k in names})


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
        self._raw = []
        if not self.path.exists():
            return
        with _reading(self.path) as con:
            if not _check_file(con, self.path):
                return
            try:
                cur = con.execute("SELECT run_id, epochs, row, history FROM runs WHERE experiment = ? ORDER BY seq",
                                  (self.experiment,))
                fetched = cur.fetchall()
            except sqlite3.DatabaseError as err:
                raise _fail(self.path, f"cannot be read ({err})") from None
        for rid, epochs, row_text, hist_text in fetched:
            try:
                row, hist = decode(row_text), _history_from_store(decode(hist_text), epochs)
            except _DAMAGE as err:
                raise _fail(self.path, f"run {rid} of {self.experiment} has a damaged row ({err})") from None
            if not isinstance(row, dict) or row.get("run_id") != rid:
                raise _fail(self.path, f"run {rid} of {self.experiment} has a row that does not match its id")
            if row.get("experiment", self.experiment) != self.experiment:
                raise _fail(self.path, f"run {rid} is stored under {self.experiment} but its row says "
                                       f"experiment = {row.get('experiment')!r}")
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
            t_hat: dict[str, list] | None = None) -> None:
        """Store finished runs (replacing stored runs with the same id), each in one transaction.

        When ``add`` returns, the runs are on disk.
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
        """Store ``(run_id, epochs, row, history)`` records, one transaction each (what :meth:`add` calls).

        Each record is checked first as reading checks it (the row names the run and this experiment and has
        every summary column, the history has one entry per epoch, every number is finite or NaN), so that a
        record that reading would refuse never reaches the file.
        """
        if not records:
            return
        packed = [(rid, epochs, row, hist, *self._packed(rid, epochs, row, hist)) for rid, epochs, row, hist in records]
        path = check_writable(self.dir) if not self.path.exists() else self.path
        _check_is_file(path)
        con = None
        try:
            con = _connect(path, write=True)
            if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone() is None:
                con.close()  # a file without schema (a creation that failed): create it, under the write lock
                con = None
                check_writable(self.dir)
                con = _connect(path, write=True)
        except sqlite3.Error as err:
            if con is not None:
                con.close()  # (an unclosed connection would keep the -wal and -shm files until collected)
            raise StoreError(f"result database {path} cannot be opened ({_why(err, path.parent)})") from None
        try:
            con.execute("PRAGMA synchronous = FULL")
            for rid, epochs, row, hist, row_text, hist_text in packed:
                con.execute("BEGIN IMMEDIATE")
                try:
                    con.execute("DELETE FROM runs WHERE experiment = ? AND run_id = ?", (self.experiment, rid))
                    con.execute("INSERT INTO runs (experiment, run_id, epochs, row, history) VALUES (?, ?, ?, ?, ?)",
                                (self.experiment, rid, epochs, row_text, hist_text))
                    con.execute("COMMIT")
                except BaseException:
                    _rollback(con)  # after a full disk SQLite has rolled back already: keep its error
                    raise
                self._ids.add(rid)
                self._rows[rid] = row
                raw = [x for x in getattr(self, "_raw", []) if x[0] != rid]
                self._raw = raw + [(rid, row, hist)]
                self._frames = None
        except sqlite3.OperationalError as err:
            raise StoreError(f"result database {path} cannot be written ({_why(err, path.parent)}); the runs "
                             f"stored before are kept") from None
        finally:
            con.close()

    def _packed(self, rid: str, epochs: int, row: dict, hist: dict) -> tuple[bytes, bytes]:
        """A record checked as :meth:`_load` will check it, then packed (raises StoreError naming the run)."""
        what = f"run {rid} of {self.experiment} cannot be stored:"
        if not isinstance(rid, str) or not re.fullmatch(r"[0-9a-f]{16}", rid):
            raise StoreError(f"{what} {rid!r} is not a gce run id")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise StoreError(f"{what} epochs = {epochs!r} is not a positive integer")
        if not isinstance(row, dict) or row.get("run_id") != rid:
            raise StoreError(f"{what} its row names run_id = {(row or {}).get('run_id')!r}")
        if row.get("experiment", self.experiment) != self.experiment:
            raise StoreError(f"{what} its row says experiment = {row.get('experiment')!r}")
        missing = [c for c in _RUN_COLUMNS if c not in row]
        if missing:
            raise StoreError(f"{what} its row lacks {', '.join(missing)}")
        lengths = {k: len(v) for k, v in hist.items()} if isinstance(hist, dict) else {}
        if "epoch" not in lengths or set(lengths.values()) != {epochs}:
            raise StoreError(f"{what} its history has {lengths} entries for {epochs} epochs")
        for name, obj in (("row", row), ("history", _history_to_store(hist, epochs))):
            try:
                packed = encode(obj)
            except (TypeError, ValueError) as err:
                raise StoreError(f"{what} its {name} holds {_unstorable(obj) or err}") from None
            if name == "row":
                row_text = packed
        return row_text, packed


# --------------------------------------------------------------------------- CSV export and import


def export_csv(root: str | os.PathLike, scale: str, out: str | os.PathLike | None = None) -> list[Path]:
    """Write ``<experiment>_runs.csv`` and ``<experiment>_history.csv`` of every stored experiment to ``out``.

    ``out`` defaults to ``root/<scale>``.  The files are an export for readers;
    the database stays the source of truth.
    """
    path = Path(root) / scale / DB_NAME
    _check_is_file(path)
    if not path.exists():
        raise StoreError(f"no result database at {path}: nothing to export")
    out = Path(out) if out is not None else Path(root) / scale
    names = experiments_in(path)
    stores = [ResultStore(root, scale, name) for name in names]  # all read (and checked) before any file is written
    written = []
    for name, store in zip(names, stores):
        for df, kind in ((store.runs, "runs"), (store.history, "history")):
            target = out / f"{name}_{kind}.csv"
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            try:
                out.mkdir(parents=True, exist_ok=True)
                df.to_csv(tmp, index=False, float_format="%.6g")
                os.replace(tmp, target)
            except OSError as err:
                tmp.unlink(missing_ok=True)
                raise StoreError(f"export file {target} cannot be written ({_why(err)}); the files written "
                                 f"before it are complete") from None
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


def _ends_whole(path: Path) -> None:
    """A table written by the export ends with a line end; one that does not was cut inside its last line."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            raise StoreError(f"export file {path} is damaged: its last line is truncated (the file ends inside it)")


def _number(path: Path, line: int, col: str, text: str, low: float = -math.inf, high: float = math.inf,
            empty: bool = False) -> float | None:
    """A cell as a finite number in ``[low, high]`` ('' allowed if ``empty``), or StoreError naming it."""
    if text == "" and empty:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise StoreError(f"export file {path} is damaged: line {line} has {col} = {text!r}"
                         + (f" (a finite number in [{low:g}, {high:g}] expected)" if math.isfinite(value) else ""))
    return value


def _integer(path: Path, line: int, col: str, text: str, low: int = 0) -> int:
    if not re.fullmatch(r"[+-]?\d+", text.strip()) or int(text) < low:
        raise StoreError(f"export file {path} is damaged: line {line} has {col} = {text!r} "
                         f"(an integer >= {low} expected)")
    return int(text)


_CONFIG_FIELDS = RunConfig.__dataclass_fields__


def _config_of(path: Path, line: int, r: pd.Series) -> RunConfig:
    """The RunConfig a runs row describes (its validation applies), or StoreError naming file, line and value."""
    defaults = RunConfig()
    kw = {}
    for name in _CONFIG_FIELDS:
        if name not in r.index:
            continue  # a field added after the export was written: its default
        text, default = r[name], getattr(defaults, name)
        if name == "milestones":
            kw[name] = tuple(_integer(path, line, name, m, 1) for m in text.split())
        elif name == "model_kwargs":
            try:
                kw[name] = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in json.loads(text))
            except (TypeError, ValueError):
                raise StoreError(f"export file {path} is damaged: line {line} has model_kwargs = {text!r}") from None
        elif isinstance(default, bool):
            if text not in ("True", "False"):
                raise StoreError(f"export file {path} is damaged: line {line} has {name} = {text!r}")
            kw[name] = text == "True"
        elif isinstance(default, int):
            kw[name] = _integer(path, line, name, text)
        elif isinstance(default, float):
            kw[name] = _number(path, line, name, text)
        else:  # text, or None ('' in the table) for ood and human_labels
            kw[name] = None if text == "" and default is None else text
    try:
        return RunConfig(**kw)
    except (TypeError, ValueError) as err:
        raise StoreError(f"export file {path} is damaged: line {line} has a config that gce refuses ({err})") \
            from None


def _check_runs(path: Path, runs: pd.DataFrame, name: str, scale: str) -> None:
    """Every runs row: its experiment and scale those of the import, its config valid and the one its run id
    hashes, its summary numbers in range (raises StoreError naming file, line and value)."""
    for i, r in runs.iterrows():
        line = int(i) + 2
        for col, want in (("experiment", name), ("scale", scale)):
            if r[col] != want:
                raise StoreError(f"export file {path} is damaged: line {line} has {col} = {r[col]!r}, but the "
                                 f"file holds {col} {want!r}")
        cfg = _config_of(path, line, r)
        if run_id(cfg) != r["run_id"]:
            raise StoreError(f"export file {path} is damaged: line {line}: run {r['run_id']} does not match its "
                             f"config (edited after export?); its config's run id is {run_id(cfg)}")
        for col in ("test_acc_best_val", "test_acc_last"):
            _number(path, line, col, r[col], 0.0, 1.0)
        for col in ("flip_rate_train", "flip_rate_val"):
            if col in r.index:
                _number(path, line, col, r[col], 0.0, 1.0, empty=True)
        _integer(path, line, "best_epoch", r["best_epoch"], 0)
        if int(r["best_epoch"]) > cfg.epochs:
            raise StoreError(f"export file {path} is damaged: line {line} has best_epoch = {r['best_epoch']!r} "
                             f"after the last epoch ({cfg.epochs})")


def _check_history(path: Path, hist: pd.DataFrame) -> None:
    """Every history cell a finite number or empty (NaN), epochs whole numbers (raises StoreError)."""
    for col in hist.columns:
        if col == "run_id":
            continue
        values = pd.to_numeric(hist[col].where(hist[col] != ""), errors="coerce")
        bad = (values.isna() & (hist[col] != "")) | values.isin([math.inf, -math.inf])
        if col == "epoch":
            bad |= ~hist[col].str.fullmatch(r"\d+")
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise StoreError(f"export file {path} is damaged: line {i + 2} has {col} = {hist[col].iloc[i]!r}")


def import_csv(folder: str | os.PathLike, root: str | os.PathLike, scale: str,
               names: Sequence[str] | None = None) -> dict[str, int]:
    """Store the runs of CSV tables (``<name>_runs.csv`` + ``<name>_history.csv`` in ``folder``) in the database.

    Every row is checked first: all columns present, files that end with a
    whole line, run ids well formed and equal to the id of the row's config
    (which must pass :class:`gce.train.RunConfig`'s checks, so an edited
    config is refused), ``experiment`` and ``scale`` cells equal to the
    file's name and ``scale``, accuracies and flip rates finite and in
    [0, 1], ``best_epoch`` within the run, every history cell a finite number
    or empty, one history row per epoch for every run.  A damaged file
    raises :class:`StoreError` naming it, the line and the value, and
    nothing is stored.  Cells are
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
        _ends_whole(runs_path)
        _ends_whole(hist_path)
        _check_runs(runs_path, runs, name, scale)
        _check_history(hist_path, hist)
        if runs["run_id"].duplicated().any():
            raise StoreError(f"export file {runs_path} lists run {runs['run_id'][runs['run_id'].duplicated()].iloc[0]}"
                             f" twice")
        groups = {rid: g for rid, g in hist.groupby("run_id", sort=False)}
        records = []
        for _, r in runs.iterrows():
            rid, epochs = r["run_id"], int(r["epochs"])  # checked by _check_runs
            g = groups.get(rid)
            if g is None or len(g) != epochs or list(g["epoch"]) != [str(e) for e in range(1, epochs + 1)]:
                n = 0 if g is None else len(g)
                raise StoreError(f"export file {hist_path} is damaged: run {rid} has {n} history rows for "
                                 f"{epochs} epochs")
            hist_cols = [c for c in hist.columns if c != "run_id"]
            records.append((rid, epochs, {c: r[c] for c in runs.columns}, {c: list(g[c]) for c in hist_cols}))
        extra = set(groups) - set(runs["run_id"])
        if extra:
            raise StoreError(f"export file {hist_path} has history for {len(extra)} run(s) not in {runs_path}")
        plans[name] = records
    counts = {}
    for name, records in plans.items():
        ResultStore(root, scale, name).put(records)
        counts[name] = len(records)
    return counts


def compact(root: str | os.PathLike, scale: str, wait_s: float = _BUSY_MS / 1000) -> Path:
    """Fold the write-ahead log into ``root/<scale>/results.sqlite`` and shrink it (before committing it to git).

    ``PRAGMA wal_checkpoint(TRUNCATE)``, every row and history written in an older packing repacked in the
    current one (:func:`encode`; the values are unchanged), ``VACUUM``, then the checkpoint again.  A checkpoint waits up to
    ``wait_s`` seconds for other processes that read or write the file; if one still holds it, the log cannot
    be folded and :class:`StoreError` says so (the file alone would lack the runs still in the log), and
    nothing is vacuumed.  Needs a writable folder.
    """
    path = Path(root) / scale / DB_NAME
    _check_is_file(path)
    if not path.exists():
        raise StoreError(f"no result database at {path}")
    if not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK):
        raise StoreError(f"result database {path} is in a read-only folder: compact rewrites the file, so it needs "
                         f"write access (reading needs none)")
    try:
        con = _connect(path, write=True, wait_s=wait_s)
    except sqlite3.Error as err:
        raise _fail(path, f"cannot be opened ({_why(err)})") from None
    try:
        _check_file(con, path)
        _checkpoint(con, path, wait_s)
        _repack(con, path)
        con.execute("VACUUM")
        _checkpoint(con, path, wait_s)
    except sqlite3.OperationalError as err:
        raise StoreError(f"result database {path} cannot be compacted ({_why(err)})") from None
    finally:
        con.close()
    return path


def _repack(con: sqlite3.Connection, path: Path) -> None:
    """Rewrite every row and history that is not in the current packing (one transaction)."""
    with con:
        for seq, rid, epochs, row, hist in con.execute("SELECT seq, run_id, epochs, row, history FROM runs").fetchall():
            try:
                full = _history_from_store(decode(hist), epochs)
                new = (encode(decode(row)), encode(_history_to_store(full, epochs)))
            except _DAMAGE as err:
                raise _fail(path, f"run {rid} has a damaged row ({err}); nothing was repacked") from None
            if new != (row, hist):
                con.execute("UPDATE runs SET row = ?, history = ? WHERE seq = ?", (*new, seq))


def _checkpoint(con: sqlite3.Connection, path: Path, wait_s: float) -> None:
    busy, log, folded = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy or log != folded:
        raise StoreError(f"result database {path}: the write-ahead log could not be folded into the file "
                         f"({max(folded, 0)} of {max(log, 0)} pages; another process held the file for {wait_s:g} s);"
                         f" the file alone lacks the newest runs: stop the other process and run compact again")
