"""Fault injection on the result store (issue 11): hard kills, kills inside a write, concurrent writers,
damaged database and export files, unwritable folders; index-only damage, processes creating one empty
folder at once, read-only mounts and copies with a write-ahead log, compact while a reader holds the file,
full disks (a 1 MB tmpfs), bad values on import, failed runs on the command line.  A tiny pocket-style sweep
(digits, 16 hidden units, 3 epochs, one run per group) runs in subprocesses that are SIGKILLed, and resumes
bit for bit.  Mount tests need root and skip, saying why, where mounting is not permitted.  Under two
minutes on 2 cores (78 s with a load average of 7).
"""

import json
import os
import queue
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from gce import train
from gce.book import experiments, store
from gce.book.experiments import Experiment
from gce.train import RunConfig, RunResult

FAST = dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (16,)),), epochs=3, lr=0.05,
            track_train_softmax=False)
GRID = tuple(RunConfig(**FAST, noise="uniform", eta=0.4, method=m, seed=s)
             for m in ("cce", "lq", "forward_T_hat") for s in (0, 1, 2))
IDS = {store.run_id(c) for c in GRID}
SUMMARY = ["test_acc_best_val", "test_acc_last", "best_epoch", "flip_rate_train", "T_used", "T_hat_estimate"]

SWEEP = textwrap.dedent('''
    import os, signal, sqlite3, sys
    import torch
    torch.set_num_threads(1)
    from gce.book import experiments
    from gce.book.experiments import Experiment
    from gce.train import RunConfig
    FAST = dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (16,)),), epochs=3, lr=0.05,
                track_train_softmax=False)
    GRID = tuple(RunConfig(**FAST, noise="uniform", eta=0.4, method=m, seed=s)
                 for m in ("cce", "lq", "forward_T_hat") for s in (0, 1, 2))
    exp = Experiment("table1", "pocket", "tiny", GRID, ("digits",), "fault test")
    experiments.spec = lambda name, scale="pocket": exp
    kill_at_commit = int(os.environ.get("KILL_AT_COMMIT", "0"))  # SIGKILL inside the n-th run's transaction
    if kill_at_commit:
        real, seen = sqlite3.connect, [0]
        def connect(*a, **k):
            con = real(*a, **k)
            def trace(statement):
                if statement.startswith("INSERT INTO runs"):
                    seen[0] += 1
                    if seen[0] == kill_at_commit:
                        os.kill(os.getpid(), signal.SIGKILL)
            con.set_trace_callback(trace)
            return con
        sqlite3.connect = connect
    print("start", flush=True)
    experiments.run("table1", "pocket", results=sys.argv[1], progress=False, max_group=1,
                    on_stored=lambda rid: print("stored", rid, flush=True))
    print("done", flush=True)
''')


@pytest.fixture
def sweep_script(tmp_path):
    path = tmp_path / "sweep.py"
    path.write_text(SWEEP)
    return path


@pytest.fixture
def tiny(monkeypatch):
    exp = Experiment("table1", "pocket", "tiny", GRID, ("digits",), "fault test")
    monkeypatch.setattr(experiments, "spec", lambda name, scale="pocket": exp)
    return exp


def _start(script, results, **env):
    return subprocess.Popen([sys.executable, str(script), str(results)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def _kill_after(proc, n_stored: int, delay: float) -> list[str]:
    """Read the sweep's output; SIGKILL it ``delay`` s after its ``n_stored``-th stored run (or its start)."""
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x.strip()) for x in proc.stdout], daemon=True)
    reader.start()
    stored, deadline = [], None
    while proc.poll() is None:
        try:
            line = lines.get(timeout=0.01)
        except queue.Empty:
            line = ""
        if line.startswith("stored "):
            stored.append(line.split()[1])
        if deadline is None and ((line == "start" and n_stored == 0) or (n_stored and len(stored) >= n_stored)):
            deadline = time.monotonic() + delay
        if deadline is not None and time.monotonic() >= deadline:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    reader.join(timeout=10)
    while not lines.empty():
        line = lines.get()
        if line.startswith("stored "):
            stored.append(line.split()[1])
    return stored


def _frame(st: store.ResultStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = st.runs.set_index("run_id").sort_index()[SUMMARY]
    hist = st.history.sort_values(["run_id", "epoch"]).reset_index(drop=True)
    return runs, hist


def test_random_sigkills_lose_no_finished_run_and_end_equal_to_an_uninterrupted_sweep(tmp_path, sweep_script,
                                                                                       tiny):
    rng = random.Random(11)
    killed = tmp_path / "killed"
    reported: set[str] = set()
    for attempt in range(5):
        proc = _start(sweep_script, killed)
        # kill after 0-2 more stored runs, 0-0.4 s later: inside training, inside a write, or between runs
        got = _kill_after(proc, rng.randint(0, 2), rng.uniform(0.0, 0.4))
        reported |= set(got)
        on_disk = store.ResultStore(killed, "pocket", "table1")  # opens cleanly: checked on open
        assert reported <= on_disk.done(), f"attempt {attempt}: a run reported finished was lost"
        assert len(on_disk.history) == 3 * len(on_disk.done())  # never a run without its history
    # the rerun trains only what is missing, and the result equals an uninterrupted sweep
    _, resumed = experiments.run("table1", "pocket", results=killed, progress=False, max_group=1)
    assert not set(resumed.trained) & reported
    assert resumed.done() == IDS
    _, clean = experiments.run("table1", "pocket", results=tmp_path / "clean", progress=False, max_group=1)
    a, ha = _frame(store.ResultStore(killed, "pocket", "table1"))
    b, hb = _frame(clean)
    # bitwise: a resumed sweep stores exactly the numbers of an uninterrupted one
    pd.testing.assert_frame_equal(a.drop(columns=["T_used", "T_hat_estimate"]),
                                  b.drop(columns=["T_used", "T_hat_estimate"]), check_exact=True)
    for col in ("T_used", "T_hat_estimate"):
        for x, y in zip(a[col], b[col]):
            if isinstance(x, str) or isinstance(y, str):
                assert json.loads(x) == json.loads(y)
            else:
                assert pd.isna(x) and pd.isna(y)
    pd.testing.assert_frame_equal(ha, hb, check_exact=True)
    raw_a = {rid: (row, hist) for rid, row, hist in _raw_rows(killed)}
    raw_b = {rid: (row, hist) for rid, row, hist in _raw_rows(tmp_path / "clean")}
    assert raw_a.keys() == raw_b.keys()
    for rid in raw_a:  # the stored JSON numbers themselves, beyond the CSV-like tables
        assert raw_a[rid][1] == raw_b[rid][1]
        keep = ("date", "commit")
        assert {k: v for k, v in raw_a[rid][0].items() if k not in keep} == \
            {k: v for k, v in raw_b[rid][0].items() if k not in keep}


def _raw_rows(root):
    con = sqlite3.connect(Path(root) / "pocket" / store.DB_NAME)
    try:
        rows = con.execute("SELECT run_id, row, history FROM runs").fetchall()
    finally:
        con.close()
    return [(rid, store.decode(r), store.decode(h)) for rid, r, h in rows]


def test_a_kill_inside_a_write_leaves_the_runs_before_it_and_nothing_half_written(tmp_path, sweep_script, tiny):
    proc = _start(sweep_script, tmp_path, KILL_AT_COMMIT="3")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    reported = [line.split()[1] for line in out.splitlines() if line.startswith("stored ")]
    assert len(reported) == 2
    st = store.ResultStore(tmp_path, "pocket", "table1")
    assert st.done() == set(reported) and len(st.history) == 2 * 3
    _, again = experiments.run("table1", "pocket", results=tmp_path, progress=False)  # batched: faster
    assert again.done() == IDS and len(again.trained) == len(GRID) - 2


WRITER = textwrap.dedent('''
    import sys
    from gce.book import store
    from gce.train import RunConfig, RunResult
    st = store.ResultStore(sys.argv[1], "pocket", "table1")
    for s in range(int(sys.argv[3])):
        cfg = RunConfig(dataset="digits", epochs=4, seed=int(sys.argv[2]) * 10000 + s)
        res = RunResult(cfg, {"test_acc": [0.1, 0.2, 0.3, 0.4], "val_loss": [1.0, 0.9, 0.8, 0.7]}, 4, 0.4, 0.4, 0.0, 0.0)
        st.add([res], {"commit": "x"}, "pocket")
    print("ok", flush=True)
''')


def test_two_concurrent_writers_on_one_folder_lose_nothing(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    n = 60
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path), str(w), str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for w in (1, 2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    st = store.ResultStore(tmp_path, "pocket", "table1")
    assert len(st.done()) == 2 * n and len(st.history) == 2 * n * 4
    assert set(st.runs["seed"]) == {w * 10000 + s for w in (1, 2) for s in range(n)}


# ---- damaged files


def _stored_folder(tmp_path, n=3):
    st = store.ResultStore(tmp_path, "pocket", "table1")
    for s in range(n):
        cfg = RunConfig(dataset="digits", epochs=2, seed=s)
        st.add([RunResult(cfg, {"test_acc": [0.5, 0.6], "val_loss": [1.0, 0.9]}, 2, 0.6, 0.6, 0.0, 0.0)], {}, "pocket")
    return tmp_path / "pocket" / store.DB_NAME


@pytest.mark.parametrize("damage", ["truncate", "garbage_header", "garbage_page", "empty"])
def test_a_damaged_database_file_gives_one_clear_error(tmp_path, damage):
    path = _stored_folder(tmp_path, n=40)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2 + 100]
    elif damage == "garbage_header":
        data[:100] = os.urandom(100)
    elif damage == "garbage_page":
        page = 4096
        data[2 * page: 3 * page] = os.urandom(page)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(store.StoreError, match=str(path).replace("\\", "\\\\")) as err:
        store.ResultStore(tmp_path, "pocket", "table1").runs
    assert "\n" not in str(err.value)


def test_partial_or_foreign_data_in_the_database_is_named(tmp_path):
    path = _stored_folder(tmp_path)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE runs SET history = '{\"epoch\": [1]}' WHERE seq = 2")
    with pytest.raises(store.StoreError, match=r"history of .* for 2 epochs"):
        store.ResultStore(tmp_path, "pocket", "table1")
    with sqlite3.connect(path) as con:
        con.execute("UPDATE runs SET history = '{\"epoch\": [1, 2]}', row = 'not json' WHERE seq = 2")
    with pytest.raises(store.StoreError, match="damaged row"):
        store.ResultStore(tmp_path, "pocket", "table1")
    with sqlite3.connect(path) as con:
        rid = con.execute("SELECT run_id FROM runs WHERE seq = 2").fetchone()[0]
        con.execute("UPDATE runs SET row = ? WHERE seq = 2", (json.dumps({"run_id": rid, "epochs": 2}),))
    with pytest.raises(store.StoreError, match=f"run {rid} of table1 lacks experiment, scale, dataset"):
        store.ResultStore(tmp_path, "pocket", "table1")
    with sqlite3.connect(path) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(store.StoreError, match="schema version '99'"):
        store.ResultStore(tmp_path, "pocket", "table1")


def _export(tmp_path):
    _stored_folder(tmp_path / "db")
    out = tmp_path / "csv"
    store.export_csv(tmp_path / "db", "pocket", out)
    return out


@pytest.mark.parametrize("damage", ["truncated_row", "garbage_line", "deleted_column", "missing_history",
                                    "history_row_lost", "binary"])
def test_a_damaged_export_file_is_refused_by_import_naming_it(tmp_path, damage):
    out = _export(tmp_path)
    runs, hist = out / "table1_runs.csv", out / "table1_history.csv"
    if damage == "truncated_row":
        runs.write_text(runs.read_text()[:-40])
        bad = runs
    elif damage == "garbage_line":
        runs.write_text(runs.read_text() + "zz\n")
        bad = runs
    elif damage == "deleted_column":
        pd.read_csv(runs).drop(columns=["method"]).to_csv(runs, index=False)
        bad = runs
    elif damage == "missing_history":
        hist.unlink()
        bad = hist
    elif damage == "history_row_lost":
        hist.write_text("".join(hist.read_text().splitlines(keepends=True)[:-1]))
        bad = hist
    else:
        runs.write_bytes(b"\xff\xfe\x00garbage\x00\n\"unclosed")
        bad = runs
    with pytest.raises(store.StoreError, match=bad.name):
        store.import_csv(out, tmp_path / "new", "pocket")
    assert not (tmp_path / "new" / "pocket" / store.DB_NAME).exists()  # nothing stored from a damaged file


# ---- unwritable results folders: found before any training


def _no_training(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("trained before checking the results folder")
    monkeypatch.setattr(train, "train_many", refuse)


def test_an_invalid_results_folder_fails_before_training(tmp_path, tiny, monkeypatch):
    _no_training(monkeypatch)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(store.StoreError, match="cannot be created"):
        experiments.run("table1", "pocket", results=blocker, progress=False)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_results_folder_fails_before_training(tmp_path, tiny, monkeypatch):
    _no_training(monkeypatch)
    (tmp_path / "pocket").mkdir()
    os.chmod(tmp_path / "pocket", 0o555)
    try:
        with pytest.raises(store.StoreError, match="read-only"):
            experiments.run("table1", "pocket", results=tmp_path, progress=False)
    finally:
        os.chmod(tmp_path / "pocket", 0o755)


def test_a_folder_reported_read_only_fails_before_training(tmp_path, tiny, monkeypatch):
    """The same check as above where the tests run as root (who may write anywhere): os.access says no."""
    _no_training(monkeypatch)
    target = tmp_path / "pocket"
    target.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p) == str(target) and mode == os.W_OK
                        else real(p, mode, **k))
    with pytest.raises(store.StoreError, match="read-only"):
        experiments.run("table1", "pocket", results=tmp_path, progress=False)


# ---- hostile conditions: index-only corruption, simultaneous creation, read-only mounts, full disks


def _runs(n: int, epochs: int = 2, first_seed: int = 0, hist_len: int = 0) -> list[RunResult]:
    out = []
    for s in range(first_seed, first_seed + n):
        cfg = RunConfig(dataset="digits", epochs=epochs, seed=s)
        hist = {"test_acc": [0.5] * epochs, "val_loss": [1.0] * epochs}
        if hist_len:  # a long history column, to fill a small disk quickly
            hist["noise_" + "x" * 8] = [random.Random(s).random() for _ in range(epochs)]
        out.append(RunResult(cfg, hist, epochs, 0.6, 0.6, 0.0, 0.0))
    return out


def _index_page(path) -> tuple[int, int]:
    """The file offset and size of the (one-page) index on ``runs (experiment, run_id)``."""
    con = sqlite3.connect(path)
    try:
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs'"
                           ).fetchone()[0]
        size = con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()
    return (root - 1) * size, size


def test_index_only_corruption_is_found_on_open_not_read_as_fewer_runs(tmp_path, capsys):
    from gce.book import cli

    st = store.ResultStore(tmp_path, "pocket", "table1")
    st.add(_runs(30), {}, "pocket")
    store.ResultStore(tmp_path, "pocket", "fig1").add(_runs(5), {}, "pocket")
    path = tmp_path / "pocket" / store.DB_NAME
    offset, size = _index_page(path)
    data = bytearray(path.read_bytes())
    page = bytes(data[offset: offset + size])
    at = offset + page.rindex(b"table1")  # the last table1 entry: renaming it keeps the index sorted
    data[at + 1] ^= 0x10                  # 'table1' -> 'tqble1', one bit, in the index only
    path.write_bytes(bytes(data))
    with pytest.raises(store.StoreError, match="corrupt") as err:
        store.ResultStore(tmp_path, "pocket", "table1")
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    with pytest.raises(store.StoreError, match="corrupt"):
        store.experiments_in(path)
    assert cli.main(["results", "export", "--results", str(tmp_path), "--out", str(tmp_path / "csv")]) == 1
    assert "corrupt" in capsys.readouterr().err
    assert not (tmp_path / "csv" / "table1_runs.csv").exists()


CREATOR = textwrap.dedent('''
    import sqlite3, sys, time
    from gce.book import store
    real = sqlite3.connect
    def slow(*a, **k):  # a slow disk: each schema statement takes 20 ms, which widens any window a creation
        con = real(*a, **k)  # leaves open between the file's appearance and its schema
        con.set_trace_callback(lambda sql: time.sleep(0.02)
                               if sql.lstrip().upper().startswith(("CREATE", "PRAGMA JOURNAL")) else None)
        return con
    sqlite3.connect = slow
    from gce.train import RunConfig, RunResult
    root, worker, trials = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    def create(folder):
        st = store.ResultStore(folder, "pocket", "table1")  # what reproduce does first
        store.check_writable(st.dir)
        cfg = RunConfig(dataset="digits", epochs=2, seed=worker)
        st.add([RunResult(cfg, {"test_acc": [0.1, 0.2]}, 2, 0.2, 0.2, 0.0, 0.0)], {}, "pocket")
    create(f"{root}/warm{worker}")  # imports and first calls done before the clock starts
    print("ready", flush=True)
    t0 = float(sys.stdin.readline())
    for t in range(trials):
        start = t0 + 0.3 * t + 0.01 * worker  # staggered by 10 ms: each starts inside the other's creation
        time.sleep(max(0.0, start - time.time() - 0.02))
        while time.time() < start:
            pass
        try:
            create(f"{root}/t{t}")
            print("ok", t, flush=True)
        except Exception as err:
            print("fail", t, type(err).__name__, err, flush=True)
''')


def test_processes_creating_one_fresh_folder_at_once_all_succeed(tmp_path):
    script = tmp_path / "creator.py"
    script.write_text(CREATOR)
    workers, trials = 3, 8
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "r"), str(w), str(trials)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(workers)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    t0 = time.time() + 0.5
    for p in procs:
        p.stdin.write(f"{t0}\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=120) for p in procs]
    failed = [line for out, _ in outs for line in out.splitlines() if line.startswith("fail")]
    assert not failed, failed
    for t in range(trials):
        assert sorted(store.ResultStore(tmp_path / "r" / f"t{t}", "pocket", "table1").runs["seed"]) == [0, 1, 2]
        assert not [p.name for p in (tmp_path / "r" / f"t{t}" / "pocket").iterdir() if p.name.startswith(".")]


def test_a_folder_that_holds_an_empty_database_left_by_a_failed_creation_is_usable(tmp_path):
    folder = tmp_path / "pocket"
    folder.mkdir()
    con = sqlite3.connect(folder / store.DB_NAME)  # what a creation that died before its schema leaves: 4 KB
    con.execute("PRAGMA journal_mode = WAL")
    con.close()
    assert (folder / store.DB_NAME).stat().st_size > 0
    assert store.ResultStore(tmp_path, "pocket", "table1").done() == set()
    assert store.experiments_in(folder / store.DB_NAME) == []
    store.ResultStore(tmp_path, "pocket", "table1").add(_runs(2), {}, "pocket")  # add alone creates the schema
    store.check_writable(folder)
    assert len(store.ResultStore(tmp_path, "pocket", "table1").done()) == 2


def _can_mount() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "mounting needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount/umount program"
    return None


def _mount(*args: str) -> None:
    out = subprocess.run(["mount", *args], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"mounting is not permitted here ({' '.join(out.stderr.split())[:120]})")


def _umount(target) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def read_only_view(tmp_path):
    """``make(folder)``: a read-only bind mount of ``folder`` (a real read-only file system, which root cannot
    write either), unmounted after the test."""
    why = _can_mount()
    if why:
        pytest.skip(why)
    mounted = []

    def make(folder):
        target = tmp_path / f"ro{len(mounted)}"
        target.mkdir()
        _mount("--bind", str(folder), str(target))
        mounted.append(target)
        _mount("-o", "remount,bind,ro", str(target))
        assert not os.access(target, os.W_OK)
        return target
    yield make
    for target in reversed(mounted):
        _umount(target)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs, unmounted after the test."""
    why = _can_mount()
    if why:
        pytest.skip(why)
    target = tmp_path / "disk"
    target.mkdir()
    _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target))
    yield target
    _umount(target)


def _fill(folder, leave: int = 0) -> Path:
    """Fill the file system of ``folder`` until fewer than ``leave`` bytes (or nothing) can be written; the filler
    file is returned."""
    filler = Path(folder) / "filler"
    with open(filler, "wb", buffering=0) as f:
        chunk = 65536
        while chunk >= 1:
            free = shutil.disk_usage(folder).free
            if leave and free <= leave:
                break
            try:
                f.write(b"\0" * (min(chunk, free - leave) if leave else chunk))
            except OSError:  # no room for this chunk: try smaller ones until not one byte fits
                chunk //= 2
    return filler


def test_a_read_only_mount_is_read_and_refuses_training_in_one_line(tmp_path, read_only_view, tiny, monkeypatch):
    _stored_folder(tmp_path / "src", n=3)
    view = read_only_view(tmp_path / "src")
    st = store.ResultStore(view, "pocket", "table1")
    assert len(st.done()) == 3
    assert sorted(p.name for p in (view / "pocket").iterdir()) == [store.DB_NAME]
    _no_training(monkeypatch)
    with pytest.raises(store.StoreError, match="read-only") as err:
        experiments.run("table1", "pocket", results=view, progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(store.StoreError, match="read-only"):
        store.compact(view, "pocket")


def _with_committed_wal(root, n_file: int, n_wal: int):
    """A folder whose file holds ``n_file`` runs and whose ``-wal`` holds ``n_wal`` more committed runs, as a
    writer killed while a reader held the file leaves it."""
    st = store.ResultStore(root, "pocket", "table1")
    st.add(_runs(n_file), {}, "pocket")
    path = Path(root) / "pocket" / store.DB_NAME
    holder = sqlite3.connect(path)  # an open connection: the writer's close does not fold the log back
    holder.execute("SELECT COUNT(*) FROM runs").fetchone()
    st.add(_runs(n_wal, first_seed=100), {}, "pocket")
    copy = Path(root) / "copy" / "pocket"
    copy.mkdir(parents=True)
    shutil.copy(path, copy / store.DB_NAME)
    shutil.copy(Path(str(path) + "-wal"), copy / (store.DB_NAME + "-wal"))  # no -shm: it is rebuilt
    holder.close()
    assert (copy / (store.DB_NAME + "-wal")).stat().st_size > 0
    return copy.parent


def test_a_read_only_copy_with_a_write_ahead_log_shows_every_committed_run(tmp_path, monkeypatch):
    copy = _with_committed_wal(tmp_path, 2, 5)
    folder = copy / "pocket"
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p) == str(folder) and mode == os.W_OK
                        else real(p, mode, **k))
    assert len(store.ResultStore(copy, "pocket", "table1").done()) == 7
    assert store.experiments_in(folder / store.DB_NAME) == ["table1"]
    out = store.export_csv(copy, "pocket", tmp_path / "csv")
    assert len(pd.read_csv(out[0])) == 7
    assert sorted(p.name for p in folder.iterdir()) == [store.DB_NAME, store.DB_NAME + "-wal"]  # left as found


def test_a_read_only_mount_with_a_write_ahead_log_shows_every_committed_run(tmp_path, read_only_view):
    copy = _with_committed_wal(tmp_path, 2, 5)
    view = read_only_view(copy)
    assert len(store.ResultStore(view, "pocket", "table1").done()) == 7


def test_compact_that_cannot_fold_the_log_says_so_and_exits_non_zero(tmp_path, capsys):
    from gce.book import cli

    st = store.ResultStore(tmp_path, "pocket", "table1")
    st.add(_runs(2), {}, "pocket")
    path = tmp_path / "pocket" / store.DB_NAME
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM runs").fetchone()  # a reader holding a snapshot of the file
    try:
        st.add(_runs(3, first_seed=10), {}, "pocket")
        start = time.monotonic()
        with pytest.raises(store.StoreError, match="write-ahead log") as err:
            store.compact(tmp_path, "pocket", wait_s=0.5)
        assert time.monotonic() - start < 10
        assert "\n" not in str(err.value)
        assert cli.main(["results", "compact", "--results", str(tmp_path), "--wait", "0.5"]) == 1
        line = capsys.readouterr().err.strip()
        assert "\n" not in line and "another process" in line
    finally:
        reader.close()
    assert cli.main(["results", "compact", "--results", str(tmp_path)]) == 0  # free again: folded
    assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
    plain = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # the file alone, as git would commit it
    assert plain.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 5
    plain.close()


def test_a_full_disk_names_the_cause_and_a_failed_creation_blocks_nothing(small_disk):
    filler = _fill(small_disk, leave=1024)
    with pytest.raises(store.StoreError, match="disk is full") as err:
        store.check_writable(small_disk / "pocket")
    assert "rollback" not in str(err.value) and "\n" not in str(err.value)
    filler.unlink()
    store.check_writable(small_disk / "pocket")  # space freed: works, nothing to move away
    st = store.ResultStore(small_disk, "pocket", "table1")
    st.add(_runs(2), {}, "pocket")
    filler = _fill(small_disk, leave=0)
    with pytest.raises(store.StoreError, match="disk is full") as err:
        st.add(_runs(3, epochs=400, first_seed=10, hist_len=1), {}, "pocket")
    assert "rollback" not in str(err.value)
    try:  # reading a WAL file needs a little space; if it fails, it says why, and blames no file
        kept = store.ResultStore(small_disk, "pocket", "table1").done()
    except store.StoreError as err:
        assert "disk is full" in str(err) and "move it away" not in str(err)
    filler.unlink()
    kept = store.ResultStore(small_disk, "pocket", "table1").done()
    assert {store.run_id(r.config) for r in _runs(2)} <= kept
    (small_disk / "csv").mkdir()
    assert sorted(p.name for p in (small_disk / "pocket").iterdir()) == [store.DB_NAME]  # no connection left open
    filler = _fill(small_disk, leave=0)
    db = small_disk.parent / "db"  # the database on another disk, the export onto the full one
    store.ResultStore(db, "pocket", "table1").add(_runs(20, epochs=50), {}, "pocket")
    with pytest.raises(store.StoreError, match="disk is full") as err:
        store.export_csv(db, "pocket", small_disk / "csv")
    assert "\n" not in str(err.value)
    assert "export file" in str(err.value)  # read fine; the write failed
    assert not [p.name for p in (small_disk / "csv").iterdir() if p.name.endswith(".tmp")]
    filler.unlink()
    st.add(_runs(1, first_seed=50), {}, "pocket")
    assert len(store.ResultStore(small_disk, "pocket", "table1").done()) == len(kept) + 1


# ---- values on import


def _edit(path, column: str, value: str, line: int = 3) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[line - 2, column] = value
    df.to_csv(path, index=False)


@pytest.mark.parametrize("damage, file, words", [
    ("history_text", "history", "test_acc = 'abc'"),
    ("history_truncated", "history", "truncated"),
    ("acc_inf", "runs", "test_acc_last = 'inf'"),
    ("acc_negative", "runs", "test_acc_best_val = '-3'"),
    ("eta_5", "runs", "eta"),
    ("config_edited", "runs", "does not match its config"),
    ("experiment_other", "runs", "experiment = 'table2'"),
    ("experiment_one_byte", "runs", "experiment = 'tqble1'"),
    ("scale_other", "runs", "scale = 'lite'"),
    ("epochs_inf", "runs", "epochs = 'inf'"),
])
def test_import_refuses_bad_values_naming_file_line_and_value(tmp_path, damage, file, words):
    out = _export(tmp_path)
    runs, hist = out / "table1_runs.csv", out / "table1_history.csv"
    if damage == "history_text":
        _edit(hist, "test_acc", "abc")
    elif damage == "history_truncated":
        hist.write_text(hist.read_text()[:-3])
    elif damage == "acc_inf":
        _edit(runs, "test_acc_last", "inf")
    elif damage == "acc_negative":
        _edit(runs, "test_acc_best_val", "-3")
    elif damage == "eta_5":
        _edit(runs, "eta", "5.0")
    elif damage == "config_edited":
        _edit(runs, "lr", "0.5")  # the run id stays that of the old config
    elif damage == "experiment_other":
        _edit(runs, "experiment", "table2")
    elif damage == "experiment_one_byte":
        _edit(runs, "experiment", "tqble1")
    elif damage == "scale_other":
        _edit(runs, "scale", "lite")
    else:
        _edit(runs, "epochs", "inf")
    bad = runs if file == "runs" else hist
    with pytest.raises(store.StoreError, match=bad.name) as err:
        store.import_csv(out, tmp_path / "new", "pocket")
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "new" / "pocket" / store.DB_NAME).exists()


# ---- the command line when runs fail


def test_failed_runs_give_one_line_each_on_the_command_line(tmp_path, tiny, monkeypatch, capsys):
    from gce.book import cli

    def broken(configs, **kw):
        raise FloatingPointError(f"loss is nan at epoch 2 (group of {len(configs)})")
    monkeypatch.setattr(train, "train_many", broken)
    assert cli.main(["reproduce", "table1", "--results", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and 'File "' not in err
    assert lines[0].startswith("error: ") and "runs failed" in lines[0]
    failures = lines[1:]
    assert len(failures) == len(GRID)  # one line per failed run, and nothing else
    assert all("FloatingPointError: loss is nan at epoch 2" in line for line in failures[:6])
    assert all(len(line) < 400 for line in failures)
