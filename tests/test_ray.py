"""The Ray engine on a real local Ray: same results as the local engine, resumable after an interruption."""

import numpy as np
import pytest

from gce.book import experiments
from gce.book.store import run_id
from gce.data import DatasetCorrupt, DatasetUnavailable
from gce.book.experiments import Experiment
from gce.book.store import ResultStore
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
    on_disk = ResultStore(tmp_path, "pocket", "table1")
    assert sorted(on_disk.done()) == sorted(seen)  # what finished is on disk, consistently
    assert len(on_disk.history) == 3 * len(seen)
    _, store = experiments.run("table1", "pocket", results=tmp_path, progress=False, engine="ray")
    assert len(store.trained) == len(GRID) - 2 and not set(store.trained) & set(seen)
    assert sorted(store.runs["run_id"]) == sorted(run_id(c) for c in GRID)
    _, again = experiments.run("table1", "pocket", results=tmp_path, progress=False, engine="ray")
    assert again.trained == []


def test_a_failing_run_is_reported_and_the_others_are_stored(local_ray, monkeypatch, tmp_path):
    bad = RunConfig(**{**FAST, "model_kwargs": (("hidden", (16,)), ("bogus", 1))}, noise="uniform", eta=0.4,
                    method="cce", seed=0)
    good = RunConfig(**FAST, noise="uniform", eta=0.4, method="lq", seed=0)
    exp = Experiment("table1", "pocket", "tiny", (bad, good), ("digits",), "test")
    monkeypatch.setattr(experiments, "spec", lambda name, scale="pocket": exp)
    with pytest.raises(RuntimeError, match=r"1 of 2 runs failed \(1 trained now and stored in") as err:
        experiments.run("table1", "pocket", results=tmp_path, progress=False, engine="ray")
    assert "bogus" in str(err.value)
    stored = ResultStore(tmp_path, "pocket", "table1").runs
    assert list(stored["method"]) == ["lq"]


def test_missing_data_fails_once_before_any_ray_task(local_ray, monkeypatch, tmp_path):
    bad = RunConfig(**{**FAST, "dataset": "cifar10"}, noise="uniform", eta=0.4, method="cce", seed=0)
    exp = Experiment("table1", "pocket", "tiny", (bad,), ("cifar10",), "test")
    monkeypatch.setattr(experiments, "spec", lambda name, scale="pocket": exp)
    with pytest.raises(DatasetUnavailable, match="CIFAR-10 not found"):
        experiments.run("table1", "pocket", results=tmp_path, progress=False, engine="ray",
                        root=str(tmp_path / "no-data"))
    assert not (tmp_path / "no-data").exists()
    assert ResultStore(tmp_path, "pocket", "table1").done() == set()


def test_gpus_per_run_on_a_cluster_without_gpus_fails_at_once(local_ray, tiny, tmp_path, capsys):
    if ray.cluster_resources().get("GPU", 0):
        pytest.skip("this Ray cluster has GPUs")
    with pytest.raises(ValueError, match=r"gpus_per_run=1.0 but the Ray cluster has 0 GPU"):
        experiments.run("table1", "pocket", results=tmp_path, progress=False, engine="ray", gpus_per_run=1.0)
    from gce.book import cli
    assert cli.main(["reproduce", "table1", "--results", str(tmp_path), "--engine", "ray",
                     "--gpus-per-run", "1"]) == 1
    assert "GPU" in capsys.readouterr().err


def test_dataset_errors_come_back_from_a_worker_as_themselves(local_ray, tmp_path):
    @ray.remote
    def fail():
        raise DatasetCorrupt("cifar10: corrupt file x", tmp_path / "x")
    with pytest.raises(DatasetCorrupt, match="cifar10: corrupt file x") as err:
        ray.get(fail.remote())
    assert err.value.path == tmp_path / "x"
