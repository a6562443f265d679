"""A chapter never retrains a grid by surprise: more than a few runs to train need an explicit request."""

import pytest

from gce.book import cli
from gce import train
from gce.book import budget, experiments
from gce.book.experiments import Experiment
from gce.train import RunConfig

FAST = dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (16,)),), epochs=2, lr=0.05,
            track_train_softmax=False)


@pytest.fixture
def trained(monkeypatch):
    """Replace training by a record of what would be trained; no gce.book.budget override from conftest."""
    monkeypatch.delenv(budget.ALLOW_ENV, raising=False)
    seen = []
    monkeypatch.setattr(train, "train_many", lambda cfgs, **k: seen.extend(cfgs) or [])
    return seen


def _grid(monkeypatch, n):
    cfgs = tuple(RunConfig(**FAST, noise="uniform", eta=0.4, method="cce", seed=s) for s in range(n))
    exp = Experiment("fig1", "pocket", "grid", cfgs, ("digits",), "test")
    monkeypatch.setattr(experiments, "spec", lambda name, scale="pocket": exp)
    return cfgs


def test_more_runs_than_the_limit_are_refused_in_one_line(tmp_path, monkeypatch, trained):
    _grid(monkeypatch, budget.MAX_UNASKED_RUNS + 1)
    with pytest.raises(budget.TrainingNotAllowed) as err:
        experiments.run("fig1", "pocket", results=tmp_path, progress=False)
    text = str(err.value)
    assert "\n" not in text and trained == []
    assert text.startswith(f"{budget.MAX_UNASKED_RUNS + 1} runs of fig1 (pocket) are not in ")
    assert "roughly" in text and "allow_training=True" in text and "GCE_ALLOW_TRAINING=1" in text
    assert "python -m gce reproduce fig1 --scale pocket" in text


def test_a_few_runs_are_trained_without_asking(tmp_path, monkeypatch, trained):
    cfgs = _grid(monkeypatch, budget.MAX_UNASKED_RUNS)
    experiments.run("fig1", "pocket", results=tmp_path, progress=False)
    assert trained == list(cfgs)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_an_explicit_request_trains_any_number(tmp_path, monkeypatch, trained, how):
    cfgs = _grid(monkeypatch, budget.MAX_UNASKED_RUNS + 1)
    if how == "environment":
        monkeypatch.setenv(budget.ALLOW_ENV, "1")
    experiments.run("fig1", "pocket", results=tmp_path, progress=False,
                    allow_training=True if how == "argument" else None)
    assert trained == list(cfgs)


def test_allow_training_false_refuses_even_one_run(tmp_path, monkeypatch, trained):
    _grid(monkeypatch, 1)
    with pytest.raises(budget.TrainingNotAllowed, match="allow_training=False"):
        experiments.run("fig1", "pocket", results=tmp_path, progress=False, allow_training=False)
    assert trained == []


def test_the_command_line_reproduce_asks_to_train(tmp_path, monkeypatch, trained):
    seen = {}

    def fake_run(name, scale, **kw):
        seen.update(kw)
        raise ValueError("stop here")
    monkeypatch.setattr(experiments, "run", fake_run)
    assert cli.main(["reproduce", "fig1", "--results", str(tmp_path)]) == 1
    assert seen["allow_training"] is True


def test_the_estimate_counts_flops_for_pocket_runs_and_epochs_otherwise():
    mlp = [RunConfig(**FAST, noise="uniform", eta=0.4, method="cce", seed=0)] * 3
    assert budget.rough_duration(mlp, lambda cfgs: 120 * budget.CPU_GFLOPS * 1e9) == "roughly 2 min on one CPU core"
    resnet = [RunConfig(dataset="cifar10", model="resnet18", epochs=15, noise="uniform", eta=0.4, method="cce",
                        seed=0)] * 2
    assert budget.rough_duration(resnet, lambda cfgs: 1.0) == "30 epochs of resnet18 in all, hours without a GPU"
