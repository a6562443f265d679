"""Training threads: one on the CPU by default (benchmarks/threads.py), overridable, restored afterwards."""

import pytest
import torch

from gce import threads, train
from gce.book import experiments, runners
from gce.book.experiments import Experiment
from gce.train import RunConfig


@pytest.fixture
def torch_two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_the_rule(monkeypatch):
    monkeypatch.delenv("GCE_THREADS", raising=False)
    assert threads.training_threads("cpu") == 1
    assert threads.training_threads("cuda") is None  # torch's own setting
    assert threads.training_threads("cpu", 3) == 3
    monkeypatch.setenv("GCE_THREADS", "2")
    assert threads.training_threads("cpu") == 2 and threads.training_threads("cuda") == 2
    assert threads.training_threads("cpu", 1) == 1  # the argument wins


@pytest.mark.parametrize("bad", ["two", "0", "1.5", "-1"])
def test_a_bad_thread_count_is_named(monkeypatch, bad):
    monkeypatch.setenv("GCE_THREADS", bad)
    with pytest.raises(ValueError, match=rf"\$GCE_THREADS must be a whole number of threads >= 1, got '{bad}'"):
        threads.training_threads("cpu")


def test_the_local_engine_trains_at_one_thread_and_restores_torchs_setting(tmp_path, monkeypatch,
                                                                           torch_two_threads):
    monkeypatch.delenv("GCE_THREADS", raising=False)
    seen = []
    monkeypatch.setattr(train, "train_many", lambda cfgs, **k: seen.append(torch.get_num_threads()) or [])
    cfg = RunConfig(dataset="digits", model="mlp", epochs=1, noise="uniform", eta=0.2, method="cce", seed=0)
    exp = Experiment("fig1", "pocket", "one", (cfg,), ("digits",), "test")
    monkeypatch.setattr(experiments, "spec", lambda name, scale="pocket": exp)
    experiments.run("fig1", "pocket", results=tmp_path, progress=False, device="cpu")
    experiments.run("fig1", "pocket", results=tmp_path / "again", progress=False, device="cpu", threads=2)
    assert seen == [1, 2]
    assert torch.get_num_threads() == 2
    assert runners.make_engine("local", device="cpu", threads=3).threads == 3
