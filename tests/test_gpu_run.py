"""The CIFAR-10 JPEG-copy loader and the prepared GPU run (benchmarks/gpu_run.py), end to end on CPU with --tiny."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gce import data
from gce.book import experiments
from gce.book.store import run_id
from gce.classes import class_names

from conftest import write_jpeg_npz

ROOT = Path(__file__).resolve().parents[1]


def test_jpeg_loader_decodes_images_labels_and_split(tmp_path):
    images, labels, split = write_jpeg_npz(tmp_path)
    ds = data.load("cifar10_jpeg", tmp_path)
    assert ds.classes == class_names("cifar10") and ds.name == "cifar10"
    assert tuple(ds.train.images.shape) == (30, 3, 32, 32) and tuple(ds.test.images.shape) == (10, 3, 32, 32)
    assert torch.equal(ds.train.labels, torch.from_numpy(labels[split == 0].astype(np.int64)))
    assert torch.equal(ds.test.labels, torch.from_numpy(labels[split == 1].astype(np.int64)))
    # JPEG is lossy: decoded pixels are near, not equal to, the random originals (mean error well below noise's)
    err = (ds.train.images.float() - torch.from_numpy(images[split == 0].transpose(0, 3, 1, 2)).float()).abs()
    assert 0 < err.mean() < 60


def test_jpeg_loader_missing_file_names_it(tmp_path):
    with pytest.raises(data.DatasetUnavailable, match="cifar10_jpeg75.npz not found"):
        data.load("cifar10_jpeg", tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "offsets", "labels", "bytes"])
def test_jpeg_loader_corrupt_file_names_the_problem(tmp_path, damage):
    write_jpeg_npz(tmp_path)
    path = tmp_path / data.CIFAR10_JPEG_FILE
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
        match = "numpy cannot read it"
    else:
        z = dict(np.load(path))
        if damage == "offsets":
            z["offsets"] = z["offsets"][:-1]
            match = "offsets"
        elif damage == "labels":
            z["labels"][3] = 10
            match = "labels must lie in 0..9"
        else:
            z["jpeg"][z["offsets"][5]:z["offsets"][6]] = 0  # image 5's bytes wiped
            match = "image 5 does not decode"
        np.savez(path, **z)
    with pytest.raises(data.DatasetCorrupt, match=match) as err:
        data.load("cifar10_jpeg", tmp_path)
    assert str(path) in str(err.value)


def _gpu_run(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_run.py"), "--tiny", "--device", "cpu",
                           "--calibrate-s", "1", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_gpu_run_tiny_end_to_end_records_ran_skipped_and_resumes(tmp_path):
    write_jpeg_npz(tmp_path / "data", n_train=40, n_test=10)
    out = tmp_path / "out"
    # first call: only the lite grid, at most 3 runs (a CPU test cannot rely on wall time for how many fit)
    first = _gpu_run("--data-root", str(tmp_path / "data"), "--out", str(out), "--budget-s", "200",
                     "--skip", "throughput,paper_epoch", "--max-runs", "3")
    assert first.returncode == 0, first.stdout + first.stderr
    s1 = json.loads((out / "summary.json").read_text())
    ran1 = [r["run_id"] for r in s1["ran"]]
    assert [(r["tag"], r["method"]) for r in s1["ran"]] == [("fig1c", "cce"), ("fig1c", "lq"), ("table1", "cce")]
    reasons = [r["reason"] for r in s1["skipped"]]
    assert any("--max-runs" in why for why in reasons)
    assert any("not carried" in why for why in reasons)  # other datasets are listed, not silently dropped
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["run_id"] for r in rows] == ran1
    for r in rows:
        assert r["data_label"] == "CIFAR-10 (JPEG copy)" and r["scale"] == "lite"
        assert r["config"]["dataset"] == "cifar10_jpeg"
        assert r["commit"] and r["torch_version"] == torch.__version__ and r["device"].startswith("cpu")
        assert len(r["history"]["test_acc"]) == r["config"]["epochs"] == 1
    assert rows[2]["T_hat_estimate"] is not None  # Table 1's CCE run gives Forward T-hat its matrix
    # a run cut off mid-write (a kill) leaves a partial line: it is ignored, the finished runs are kept
    with open(out / "results.jsonl", "a") as f:
        f.write('{"run_id": "cut-off')
    # second call: every step, resuming the grid without redoing finished runs
    second = _gpu_run("--data-root", str(tmp_path / "data"), "--out", str(out), "--budget-s", "200",
                      "--max-runs", "1")
    assert second.returncode == 0, second.stdout + second.stderr
    s2 = json.loads((out / "summary.json").read_text())
    assert set(s2["already_stored"]) == set(ran1)
    assert [(r["tag"], r["method"]) for r in s2["ran"]] == [("table1", "mae")]
    assert s2["throughput"]["gce_images_per_s"] > 0 and s2["throughput"]["dataloader_images_per_s"] > 0
    assert s2["paper_epoch"]["grid_runs"] == sum(len(experiments.spec(n, "paper").configs)
                                                 for n in experiments.EXPERIMENTS)
    assert s2["environment"]["bf16_matmul_tflop_per_s"] > 0 and not s2["errors"]
    ids = [json.loads(line)["run_id"] for line in (out / "results.jsonl").read_text().splitlines()
           if not line.startswith('{"run_id": "cut-off')]
    assert len(ids) == len(set(ids))  # no run stored twice
    assert len(list(out.iterdir())) <= 8  # what the device tool can return
    assert "CIFAR-10 (JPEG copy)" in (out / "summary.md").read_text()
    # third call: no time left -> nothing trained, every remaining run listed as skipped for the budget
    third = _gpu_run("--data-root", str(tmp_path / "data"), "--out", str(out), "--budget-s", "2",
                     "--skip", "matmul,throughput,paper_epoch")
    assert third.returncode == 0, third.stdout + third.stderr
    s3 = json.loads((out / "summary.json").read_text())
    assert not s3["ran"] and len(s3["already_stored"]) == 4
    assert sum("budget" in r["reason"] for r in s3["skipped"]) == len(lite_plan_ids(tmp_path)) - 4


def lite_plan_ids(tmp_path) -> list[str]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_run
    finally:
        sys.path.pop(0)
    return [run_id(c) for _, c in gpu_run.lite_plan(tiny=True, cuda=False)[0]]
