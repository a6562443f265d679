"""The one results reader: the current grid's stored runs, read from the store once per state of the file,
never trained."""

import shutil
import sqlite3

import pytest

from gce import train
from gce.book import experiments, paths, reader, store
from gce.book.experiments import Experiment

POCKET = paths.package_checkout() / "results"


@pytest.fixture
def copy(tmp_path):
    """A writable copy of the committed pocket results."""
    (tmp_path / "pocket").mkdir()
    shutil.copyfile(POCKET / "pocket" / store.DB_NAME, tmp_path / "pocket" / store.DB_NAME)
    reader.clear_cache()
    return tmp_path


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("reading trained or went through experiments.run")
    monkeypatch.setattr(train, "train_many", refuse)
    monkeypatch.setattr(experiments, "run", refuse)


def test_read_gives_the_current_grid_as_stored(no_training):
    runs, history = reader.read("table2", "pocket", POCKET)
    ids = {store.run_id(c) for c in experiments.spec("table2", "pocket").configs}
    stored = store.ResultStore(POCKET, "pocket", "table2")
    assert set(runs["run_id"]) == ids & set(stored.runs["run_id"]) and len(runs) == len(ids)
    assert runs.dtypes.equals(stored.runs.dtypes)
    assert len(history) == len(stored.history[stored.history["run_id"].isin(ids)])


def test_runs_of_an_older_grid_are_left_out_and_an_unstored_grid_is_none(copy, monkeypatch, no_training):
    full = experiments.spec("table2", "pocket")
    kept = full.configs[:7]
    monkeypatch.setattr(experiments, "spec",
                        lambda name, scale="pocket": Experiment(name, scale, "t", kept, full.datasets, ""))
    runs, history = reader.read("table2", "pocket", copy)
    assert list(runs["run_id"]) == [store.run_id(c) for c in kept]
    assert set(history["run_id"]) == set(runs["run_id"])
    assert reader.read("table2", "pocket", copy / "elsewhere") is None


def test_a_store_is_opened_once_per_state_and_every_call_gets_its_own_copy(copy, monkeypatch, no_training):
    opened = []
    real = store.ResultStore

    def counting(*a, **k):
        opened.append(a)
        return real(*a, **k)
    monkeypatch.setattr(store, "ResultStore", counting)
    first, _ = reader.read("table1", "pocket", copy)
    first.loc[:, "method"] = "changed"
    again, _ = reader.read("table1", "pocket", copy)
    reader.read("table1", "pocket", copy)
    assert len(opened) == 1 and "changed" not in set(again["method"])
    with sqlite3.connect(copy / "pocket" / store.DB_NAME) as con:  # a run removed: the file's state changes
        con.execute("DELETE FROM runs WHERE run_id = ?", (again["run_id"].iloc[0],))
    con.close()
    after, _ = reader.read("table1", "pocket", copy)
    assert len(opened) == 2 and len(after) == len(again) - 1


def test_scales_and_bad_arguments(copy):
    assert reader.scales(copy) == ["pocket"]
    assert reader.scales(copy / "elsewhere") == []
    with pytest.raises(ValueError, match="unknown scale='huge'"):
        reader.read("table1", "huge", copy)
    with pytest.raises(ValueError, match="tabel1"):
        reader.read("tabel1", "pocket", copy)
