import hashlib
import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from gce import data
from gce.classes import class_names


@pytest.fixture
def gen():
    """A fixed-seed generator, so every test draws the same numbers."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _tests_may_train(monkeypatch):
    """Tests train their small grids on purpose (gce.book.budget refuses more than a few runs unless allowed);
    tests/test_budget.py removes this to test the refusal."""
    monkeypatch.setenv("GCE_ALLOW_TRAINING", "1")


@pytest.fixture
def one_thread():
    """One torch thread for the test (tiny tensors: faster, and far faster on a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------
# writers of the official formats


class _Py2Pickler(pickle._Pickler):
    """Writes ``str`` and ``bytes`` as Python 2 strings (``SHORT_BINSTRING``/``BINSTRING``).

    The official CIFAR files are Python 2 pickles (protocol 2): loaded with
    ``encoding="latin1"`` (torchvision) their keys are ``str``, loaded with
    ``encoding="bytes"`` they are ``b'data'``, ``b'labels'``, ...
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_string(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _save_py2_string
    dispatch[bytes] = _save_py2_string


def write_py2_pickle(path: Path, obj) -> None:
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def random_images(rng, n, shape):
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def patch_cifar_md5s(monkeypatch, cls, folder: Path) -> None:
    """Point torchvision's md5 lists for ``cls`` at the tiny files in ``folder``."""
    monkeypatch.setattr(cls, "train_list", [[f, md5(folder / f)] for f, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[f, md5(folder / f)] for f, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})


def write_cifar10(root: Path, rng, n_per_batch=4, n_test=3):
    """``cifar-10-batches-py/``: five training batches, a test batch and ``batches.meta``."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        x = random_images(rng, n_per_batch, (3, 32, 32))
        y = rng.integers(0, 10, n_per_batch).tolist()
        write_py2_pickle(folder / f"data_batch_{i}", {
            "batch_label": f"training batch {i} of 5", "labels": y, "data": x.reshape(n_per_batch, 3072),
            "filenames": [f"img_{i}_{k}.png" for k in range(n_per_batch)]})
        train_x.append(x)
        train_y += y
    test_x, test_y = random_images(rng, n_test, (3, 32, 32)), rng.integers(0, 10, n_test).tolist()
    write_py2_pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": test_y,
                                             "data": test_x.reshape(n_test, 3072),
                                             "filenames": [f"test_{k}.png" for k in range(n_test)]})
    write_py2_pickle(folder / "batches.meta", {"num_cases_per_batch": n_per_batch, "num_vis": 3072,
                                               "label_names": list(class_names("cifar10"))})
    return folder, np.concatenate(train_x), train_y, test_x, test_y


def write_cifar100(root: Path, rng, n_train=7, n_test=5):
    """``cifar-100-python/``: ``train``, ``test`` and ``meta`` with fine and coarse labels."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = []
    for name, n in (("train", n_train), ("test", n_test)):
        x, fine = random_images(rng, n, (3, 32, 32)), rng.integers(0, 100, n).tolist()
        write_py2_pickle(folder / name, {"filenames": [f"{name}_{k}.png" for k in range(n)], "batch_label": name,
                                         "fine_labels": fine, "coarse_labels": [f // 5 for f in fine],
                                         "data": x.reshape(n, 3072)})
        out += [x, fine]
    write_py2_pickle(folder / "meta", {"fine_label_names": list(class_names("cifar100")),
                                       "coarse_label_names": [f"superclass_{k}" for k in range(20)]})
    return (folder, *out)


# --------------------------------------------------------------------------
# the JPEG copy of CIFAR-10


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
