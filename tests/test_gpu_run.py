"""The CIFAR-10 JPEG-copy loader and the prepared GPU run (benchmarks/gpu_run.py), end to end on CPU with --tiny."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gce import data
from gce.classes import class_names

ROOT = Path(__file__).resolve().parents[1]


def write_jpeg_npz(folder: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A small file in the official JPEG-copy format: random 32x32 RGB JPEGs (quality 75), offsets, labels, split."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    n = n_train + n_test
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    blobs = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=75)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    labels = (np.arange(n) % 10).astype(np.int16)
    split = np.array([0] * n_train + [1] * n_test, dtype=np.int8)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / data.CIFAR10_JPEG_FILE, jpeg=np.concatenate(blobs), offsets=offsets, labels=labels,
             split=split, classes=np.array(class_names("cifar10")))
    return images, labels, split


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
