"""The SQLite result store: tables equal to the CSV tables of old, export/import, run ids, installed results."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from gce.book import experiments, paths, store
from gce.train import RunConfig, RunResult

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "results"


def _result(seed: int, method: str = "cce", T=None, epochs: int = 3) -> RunResult:
    cfg = RunConfig(dataset="digits", model_kwargs=(("hidden", (16,)),), epochs=epochs, milestones=(1, 2),
                    method=method, noise="class_dependent", eta=0.2, seed=seed, track_train_softmax=seed % 2 == 0)
    hist = {"train_loss": [1.0 / (e + 1) for e in range(epochs)], "val_acc": [0.5] * epochs,
            "val_loss": [0.9] * epochs, "test_acc": [0.1 * (e + 1) for e in range(epochs)],
            "softmax_clean": [float("nan")] * epochs, "softmax_noisy": [0.25] * epochs,
            "kept": [1] * epochs}
    return RunResult(cfg, hist, 2, 0.2, 0.3, 0.19, 0.21, T_used=T)


def _filled(tmp_path) -> store.ResultStore:
    st = store.ResultStore(tmp_path, "pocket", "table1")
    st.add([_result(0)], store.provenance(), "pocket", {store.run_id(_result(0).config): [[0.9, 0.1], [0.2, 0.8]]})
    st.add([_result(1, "forward_T", T=[[1.0, 0.0], [0.0, 1.0]]), _result(2, "lq")], store.provenance(), "pocket")
    return st


def test_tables_read_back_as_the_csv_export_reads(tmp_path):
    st = _filled(tmp_path)
    out = tmp_path / "csv"
    store.export_csv(tmp_path, "pocket", out)
    again = store.ResultStore(tmp_path, "pocket", "table1")
    for df, name in ((again.runs, "table1_runs.csv"), (again.history, "table1_history.csv")):
        from_csv = pd.read_csv(out / name)
        pd.testing.assert_frame_equal(df, from_csv, rtol=1e-5)
    runs = again.runs
    assert runs["milestones"].tolist() == ["1 2"] * 3
    assert json.loads(runs["model_kwargs"][0]) == [["hidden", [16]]]
    assert json.loads(runs.set_index("method").loc["forward_T", "T_used"]) == [[1.0, 0.0], [0.0, 1.0]]
    assert pd.isna(runs.set_index("method").loc["lq", "T_used"])
    assert again.t_hat(RunConfig(**{**_result(0).config.__dict__, "method": "forward_T_hat"})) == [[0.9, 0.1],
                                                                                                  [0.2, 0.8]]
    assert len(again.history) == 9 and again.history["softmax_clean"].isna().all()
    assert st.done() == again.done() == set(runs["run_id"])


def test_import_of_an_export_gives_equal_tables(tmp_path):
    _filled(tmp_path / "a")
    out = tmp_path / "csv"
    store.export_csv(tmp_path / "a", "pocket", out)
    assert store.import_csv(out, tmp_path / "b", "pocket") == {"table1": 3}
    b = store.ResultStore(tmp_path / "b", "pocket", "table1")
    pd.testing.assert_frame_equal(b.runs, pd.read_csv(out / "table1_runs.csv"))
    pd.testing.assert_frame_equal(b.history, pd.read_csv(out / "table1_history.csv"))


def test_adding_a_run_again_replaces_it(tmp_path):
    st = _filled(tmp_path)
    st.add([_result(0)], {"commit": "again"}, "pocket")
    again = store.ResultStore(tmp_path, "pocket", "table1")
    assert len(again.runs) == 3 and len(again.history) == 9
    assert again.runs["run_id"].iloc[-1] == store.run_id(_result(0).config)


def test_the_committed_pocket_results_open_and_their_ids_are_their_configs():
    path = COMMITTED / "pocket" / store.DB_NAME
    assert path.exists()
    names = store.experiments_in(path)
    assert set(names) >= {"fig1", "fig2", "table1", "table2"}
    st = store.ResultStore(COMMITTED, "pocket", "table1")
    fields = RunConfig.__dataclass_fields__
    for _, row in st.runs.head(20).iterrows():
        kw = {k: row[k] for k in fields if k in row and not pd.isna(row[k])}
        kw["milestones"] = tuple(int(m) for m in str(kw.get("milestones", "")).split())
        kw["model_kwargs"] = tuple((k, tuple(v) if isinstance(v, list) else v)
                                   for k, v in json.loads(kw["model_kwargs"]))
        for k in ("epochs", "batch_size", "prune_start", "prune_every", "seed"):
            kw[k] = int(kw[k])
        assert store.run_id(RunConfig(**kw)) == row["run_id"]  # stored results stay valid: same ids as before


def test_installed_results_are_the_fallback_without_a_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("GCE_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(paths, "package_checkout", lambda: None)  # as in a non-editable install
    assert experiments.default_results_dir() == experiments.installed_results_dir()
    monkeypatch.setenv("GCE_RESULTS", str(tmp_path / "mine"))
    assert experiments.default_results_dir() == tmp_path / "mine"


def test_a_read_only_folder_is_read_without_side_files(tmp_path, monkeypatch):
    _filled(tmp_path)
    folder = tmp_path / "pocket"
    store.compact(tmp_path, "pocket")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p) == str(folder) and mode == os.W_OK
                        else real(p, mode, **k))
    st = store.ResultStore(tmp_path, "pocket", "table1")
    assert len(st.runs) == 3
    assert sorted(p.name for p in folder.iterdir()) == [store.DB_NAME]
    with pytest.raises(store.StoreError, match="read-only"):
        store.check_writable(folder)


def test_installed_read_only_results_say_so_in_one_line_when_training_is_needed(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "installed_results_dir", lambda: tmp_path)
    (tmp_path / "pocket").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p).startswith(str(tmp_path))
                        and mode == os.W_OK else real(p, mode, **k))
    with pytest.raises(store.StoreError, match=r"installed results .* read-only; set \$GCE_RESULTS") as err:
        experiments.run("table1", "pocket", results=tmp_path, progress=False)
    assert "\n" not in str(err.value)


def test_the_wheel_carries_the_stored_results(tmp_path):
    src = tmp_path / "src"  # a copy, so that the build leaves nothing in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for scale in ("pocket", "cpu"):
        shutil.copytree(ROOT / "results" / scale, src / "results" / scale,
                        ignore=shutil.ignore_patterns("*.csv", "*.md", "*.png", "*-wal", "*-shm"))
    shutil.copytree(ROOT / "benchmarks", src / "benchmarks", ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp_path)], capture_output=True, text=True)
    if out.returncode != 0 and "No module named pip" in out.stderr:
        pytest.skip("pip is not installed")
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("gce-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gce/results/pocket/results.sqlite" in names and "gce/book/store.py" in names
    assert "gce/results/cpu/results.sqlite" in names and "gce/benchmarks/cpu_candidates.json" in names
    assert "gce/book/chapters/claims.py" in names and "gce/human/cifar10n_worse.csv" in names
    assert "gce/book/paper/table1.csv" in names


def test_a_schema_from_elsewhere_is_refused(tmp_path):
    (tmp_path / "pocket").mkdir()
    with sqlite3.connect(tmp_path / "pocket" / store.DB_NAME) as con:
        con.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        con.execute("INSERT INTO meta VALUES ('app', 'something else')")
    with pytest.raises(store.StoreError, match="not a gce result database"):
        store.ResultStore(tmp_path, "pocket", "table1")


def test_put_refuses_a_record_that_reading_would_refuse(tmp_path):
    st = _filled(tmp_path)
    rid, row = next(iter(st._rows.items()))
    hist = {"epoch": [1, 2, 3], "test_acc": [0.1, 0.2, 0.3]}
    bad = [((rid, 3, {**row, "run_id": "0" * 16}, hist), "names run_id"),
           ((rid, 3, {k: v for k, v in row.items() if k != "best_epoch"}, hist), "lacks best_epoch"),
           ((rid, 3, row, {"epoch": [1, 2], "test_acc": [0.1, 0.2, 0.3]}), "entries for 3 epochs"),
           ((rid, 3, {**row, "experiment": "table2"}, hist), "experiment = 'table2'"),
           (("xyz", 3, row, hist), "not a gce run id")]
    for record, words in bad:
        with pytest.raises(store.StoreError, match=words):
            st.put([record])
    assert len(store.ResultStore(tmp_path, "pocket", "table1").done()) == 3  # still readable, nothing replaced


def test_an_infinite_number_in_a_result_is_one_clear_error(tmp_path):
    st = store.ResultStore(tmp_path, "pocket", "table1")
    res = _result(5)
    res.history["train_loss"][1] = float("inf")
    with pytest.raises(store.StoreError, match=r"train_loss = inf at epoch 2; the store keeps finite numbers"):
        st.add([res], {}, "pocket")


def test_compact_of_a_read_only_folder_says_read_only_not_unreadable(tmp_path, monkeypatch):
    _filled(tmp_path)
    folder = tmp_path / "pocket"
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p) == str(folder) and mode == os.W_OK
                        else real(p, mode, **k))
    with pytest.raises(store.StoreError, match="read-only folder: compact rewrites the file"):
        store.compact(tmp_path, "pocket")


def test_a_file_system_without_hard_links_still_gets_a_whole_database(tmp_path, monkeypatch):
    def no_links(src, dst, **kw):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "link", no_links)
    st = store.ResultStore(tmp_path, "pocket", "table1")
    st.add([_result(0)], {}, "pocket")
    assert store.ResultStore(tmp_path, "pocket", "table1").done() == {store.run_id(_result(0).config)}
    assert sorted(p.name for p in (tmp_path / "pocket").iterdir()) == [store.DB_NAME]  # no private file left


def test_provenance_names_what_float_results_depend_on_for_a_cpu():
    device = store.provenance("cpu")["device"]
    assert device.startswith("cpu (") and "cores" in device and "MKL_CBWR=" in device
    assert str(__import__("torch").backends.cpu.get_cpu_capability()) in device


def test_compact_repacks_older_zlib_rows_and_the_runs_read_the_same(tmp_path):
    import zlib

    s = _filled(tmp_path)
    before_runs, before_history = s.runs, s.history
    path = tmp_path / "pocket" / store.DB_NAME
    with sqlite3.connect(path) as con:  # rewrite every blob as the older zlib packing
        for seq, row, hist in con.execute("SELECT seq, row, history FROM runs").fetchall():
            old = [zlib.compress(json.dumps(store.decode(b)).encode(), 9) for b in (row, hist)]
            con.execute("UPDATE runs SET row = ?, history = ? WHERE seq = ?", (*old, seq))
    with sqlite3.connect(path) as con:
        assert all(r[:1] == b"x" for (r,) in con.execute("SELECT row FROM runs"))
    store.compact(tmp_path, "pocket")
    with sqlite3.connect(path) as con:
        assert all(r[:1] == b"L" and h[:1] == b"L" for r, h in con.execute("SELECT row, history FROM runs"))
    again = store.ResultStore(tmp_path, "pocket", s.experiment)
    pd.testing.assert_frame_equal(again.runs, before_runs)
    pd.testing.assert_frame_equal(again.history, before_history)


def test_the_epoch_column_is_stored_only_when_it_is_not_one_to_n(tmp_path):
    s = _filled(tmp_path)
    with sqlite3.connect(tmp_path / "pocket" / store.DB_NAME) as con:
        stored = [store.decode(h) for (h,) in con.execute("SELECT history FROM runs")]
    assert stored and all("epoch" not in h for h in stored)
    again = store.ResultStore(tmp_path, "pocket", s.experiment)
    assert list(again.history.columns[:2]) == ["run_id", "epoch"]
    assert again.history.groupby("run_id")["epoch"].apply(list).map(lambda e: e == [1, 2, 3]).all()
