"""benchmarks/cpu_grid.py: the cpu scale's speed benchmark, run end to end in its seconds-long --quick mode."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gce import data, features
from gce.book import cpu_scale, experiments

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("cpu_grid", ROOT / "benchmarks" / "cpu_grid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu_grid") / "cpu_grid.json"
    threads = torch.get_num_threads()
    load = data.load
    res = _script().main(["--quick", "--out", str(out)])
    assert torch.get_num_threads() == threads and data.load is load  # the process is left as it was
    return res, json.loads(out.read_text())


def test_quick_run_writes_every_measurement(quick):
    res, stored = quick
    assert stored["mode"] == "quick" and stored["torch_threads"] == 1
    for key in ("peak_gflops_start", "peak_gflops_end", "load_at_start", "load_at_end", "cpu_model", "torch_version"):
        assert stored[key], key
    assert stored["peak_gflops"] == max(stored["peak_gflops_start"], stored["peak_gflops_end"])
    for part in ("engine", "loop", "loop_sliced"):
        assert stored[part]["s_per_run_epoch"] > 0
    assert stored["loop"]["loader"] != stored["loop_sliced"]["loader"]
    assert stored["engine"]["runs"] == 4 and "forward_T_hat" not in stored["engine"]["methods"]
    assert stored["seconds"] < 60


def test_ratios_and_projection_follow_from_the_measurements(quick):
    _, r = quick
    e = r["engine"]
    assert r["fraction_of_peak"] == pytest.approx(e["gflops"] / r["peak_gflops"])
    assert e["gflops"] == pytest.approx(e["flop_per_run_epoch"] / e["s_per_run_epoch"] / 1e9)
    assert r["loop_speedup"] == pytest.approx(r["loop"]["s_per_run_epoch"] / e["s_per_run_epoch"])
    paper = sum(r["grid_run_epochs"][n] for n in cpu_scale.EXPERIMENTS)
    assert r["projected_minutes_two_cores"]["paper_grid"] == pytest.approx(paper * e["s_per_run_epoch"] / 120)
    assert r["extra_experiments"] == ["later"]


def test_flops_count_the_heads_multiply_adds(quick):
    _, r = quick
    n = r["sizes"]["n_train"]
    n_val = round(0.1 * n)
    (hidden,) = dict(cpu_scale.CPU_MODEL["model_kwargs"])["hidden"]
    per_sample = 2 * (256 * hidden + hidden * 10)  # one forward pass of the head on the 256 features
    expected = per_sample * (3 * (n - n_val) + n_val + r["sizes"]["n_test"])
    assert r["engine"]["flop_per_run_epoch"] == pytest.approx(expected)


def test_run_epochs_are_those_of_the_cpu_grid():
    counts = _script().grid_run_epochs()
    assert counts["table1"] == sum(c.epochs for c in cpu_scale.cpu_configs("table1"))
    half = sum(c.epochs for c in cpu_scale.cpu_configs("table2")) / 2  # Table 2 trains on half the classes
    assert counts["table2"] == half
    assert counts["sensitivity"] == len(experiments.spec("sensitivity", "cpu").configs) == 0


def test_quick_mode_writes_nothing_unless_asked(tmp_path, monkeypatch):
    module = _script()
    written = []
    monkeypatch.setattr(module, "measure", lambda quick: {"quick": quick})
    monkeypatch.setattr(module, "report", lambda r: "")
    monkeypatch.setattr(Path, "write_text", lambda self, text: written.append(self))
    module.main(["--quick"])
    assert written == []
    module.main([])
    assert written == [ROOT / "benchmarks" / "cpu_grid.json"]


def test_bench_data_uses_the_feature_cache_when_it_holds_the_features(tmp_path, monkeypatch):
    module = _script()
    monkeypatch.setenv("GCE_CACHE", str(tmp_path))
    ds, what = module.bench_dataset(40, 10, 8, use_cache=True)
    assert "random" in what and "no feature cache" in what and ds.train.images.shape == (40, 8, 1, 1)
    folder = features.cache_dir()
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(folder / f"cifar10_jpeg-{features.DEFAULT_SETTINGS.key()}-0123456789abcdef.npz",
             train=rng.normal(size=(30, 6)).astype(np.float32), test=rng.normal(size=(5, 6)).astype(np.float32),
             train_labels=np.arange(30) % 10, test_labels=np.arange(5))
    ds, what = module.bench_dataset(40, 10, 8, use_cache=True)
    assert "cached" in what and ds.train.images.shape == (30, 6, 1, 1) and len(ds.test) == 5
