"""Fault injection on the result store (issue 11): hard kills, kills inside a write, concurrent writers,
damaged database and export files, unwritable folders.  A tiny pocket-style sweep (digits, 16 hidden
units, 3 epochs, one run per group) runs in subprocesses that are SIGKILLed.  Under two minutes on 2 cores.
"""

import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest

from gce import experiments, store, train
from gce.experiments import Experiment
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
    from gce import experiments
    from gce.experiments import Experiment
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
    pd.testing.assert_frame_equal(a.drop(columns=["T_used", "T_hat_estimate"]),
                                  b.drop(columns=["T_used", "T_hat_estimate"]), rtol=1e-5)
    for col in ("T_used", "T_hat_estimate"):
        for x, y in zip(a[col], b[col]):
            if isinstance(x, str) or isinstance(y, str):
                np.testing.assert_allclose(json.loads(x), json.loads(y), rtol=1e-5, atol=1e-7)
            else:
                assert pd.isna(x) and pd.isna(y)
    pd.testing.assert_frame_equal(ha, hb, rtol=1e-5)


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
    from gce import store
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
