"""The Ray engine on a real local Ray: same results as the local engine, resumable after an interruption."""

import numpy as np
import pandas as pd
import pytest

from gce import experiments
from gce.experiments import Experiment
from gce.train import RunConfig

ray = pytest.importorskip("ray")

FAST = dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (16,)),), epochs=3, lr=0.05,
            track_train_softmax=False)
GRID = tuple(RunConfig(**FAST, noise="uniform", eta=0.4, method=m, seed=s)
             for m in ("cce", "lq", "forward_T_hat") for s in (0, 1))


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def tiny(monkeypatch):
    exp = Experiment("table1", "pocket", "tiny", GRID, ("digits",), "test")
    monkeypatch.setattr(experiments, "spec", lambda name, scale="pocket": exp)
    return exp


def _by_id(store):
    return store.runs.set_index("run_id").sort_index()


def test_ray_engine_equals_local_engine(local_ray, tiny, tmp_path):
    _, local = experiments.run("table1", "pocket", results=tmp_path / "local", progress=False)
    _, remote = experiments.run("table1", "pocket", results=tmp_path / "ray", progress=False, engine="ray")
    a, b = _by_id(local), _by_id(remote)
    assert list(a.index) == list(b.index) and len(a) == len(GRID)
    np.testing.assert_allclose(a["test_acc_best_val"], b["test_acc_best_val"], atol=1e-6)
    np.testing.assert_allclose(a["test_acc_last"], b["test_acc_last"], atol=1e-6)
    ha = local.history.sort_values(["run_id", "epoch"])["val_loss"].to_numpy()
    hb = remote.history.sort_values(["run_id", "epoch"])["val_loss"].to_numpy()
    np.testing.assert_allclose(ha, hb, rtol=1e-4, atol=1e-6)
    # T-hat estimated in the Ray worker and used by the forward_T_hat runs
    cce = b[b["method"] == "cce"]
    assert cce["T_hat_estimate"].map(lambda s: isinstance(s, str) and s.startswith("[[")).all()


def test_interrupted_ray_sweep_resumes_with_only_the_missing_runs(local_ray, tiny, tmp_path):
    seen = []

    def interrupt_after_two(rid):
        seen.append(rid)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        experiments.run("table1", "pocket", results=tmp_path, progress=False, engine="ray",
                        on_stored=interrupt_after_two)
    on_disk = pd.read_csv(tmp_path / "pocket" / "table1_runs.csv")
    assert sorted(on_disk["run_id"]) == sorted(seen)  # what finished is on disk, consistently
    _, store = experiments.run("table1", "pocket", results=tmp_path, progress=False, engine="ray")
    assert len(store.trained) == len(GRID) - 2 and not set(store.trained) & set(seen)
    assert sorted(store.runs["run_id"]) == sorted(experiments.run_id(c) for c in GRID)
    _, again = experiments.run("table1", "pocket", results=tmp_path, progress=False, engine="ray")
    assert again.trained == []


def test_a_failing_run_is_reported_and_the_others_are_stored(local_ray, monkeypatch, tmp_path):
    bad = RunConfig(**{**FAST, "dataset": "cifar10"}, noise="uniform", eta=0.4, method="cce", seed=0)
    good = RunConfig(**FAST, noise="uniform", eta=0.4, method="lq", seed=0)
    exp = Experiment("table1", "pocket", "tiny", (bad, good), ("digits",), "test")
    monkeypatch.setattr(experiments, "spec", lambda name, scale="pocket": exp)
    monkeypatch.setenv("GCE_DATA", str(tmp_path / "no-data"))
    with pytest.raises(RuntimeError, match="1 of 2 runs failed") as err:
        experiments.run("table1", "pocket", results=tmp_path, progress=False, engine="ray",
                        root=str(tmp_path / "no-data"))
    assert "cifar10" in str(err.value)
    stored = pd.read_csv(tmp_path / "pocket" / "table1_runs.csv")
    assert list(stored["method"]) == ["lq"]
