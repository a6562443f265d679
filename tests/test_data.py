"""Tests of gce.data: dataset loading (Sec. 4.2) and the noisy splits of Sec. 4.

Offline and fast.  FASHION-MNIST, CIFAR-10 and CIFAR-100 are tested on tiny
files that the tests write in each dataset's official on-disk format and load
through torchvision's own readers (``download=False``).  torchvision checks
the CIFAR files against the md5s of the official ones, listed as class
attributes (``CIFAR10.train_list``, ``.test_list``, ``.meta``): the tests
monkeypatch those lists with the md5s of the tiny files, so the checksum code
still runs.  Downloads are simulated to fail by monkeypatching
``torchvision.datasets.utils.download_url``, and every socket connection is
blocked, so no test can reach the network.
"""

import gzip
import pickle
import pickletools
import socket
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import binom
from sklearn.datasets import load_digits
from torchvision import datasets as tv
from torchvision.datasets import utils as tv_utils

from gce import data, noise
from gce.classes import class_names

from conftest import patch_cifar_md5s, random_images, write_cifar10, write_cifar100

# --------------------------------------------------------------------------
# no network, ever


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Block every socket connection and DNS lookup: a test that tries the network fails loudly."""
    def refuse(*args, **kwargs):
        raise OSError("test_data: network access is blocked in tests")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def failing_download(monkeypatch):
    """torchvision's download function raises ``URLError``, as it does without a network."""
    def fail(url, *args, **kwargs):
        raise urllib.error.URLError(f"simulated: no network for {url}")
    monkeypatch.setattr(tv_utils, "download_url", fail)


def idx_bytes(array: np.ndarray) -> bytes:
    """An idx file: magic ``0x0000 08 ndim`` (uint8), big-endian dimensions, then the data."""
    header = struct.pack(">I", 0x0800 + array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashionmnist(root: Path, rng, n_train=6, n_test=4, packed=False):
    """``FashionMNIST/raw/`` with the four idx files (``.gz`` if ``packed``)."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        arrays[f"{prefix}-images-idx3-ubyte"] = random_images(rng, n, (28, 28))
        arrays[f"{prefix}-labels-idx1-ubyte"] = rng.integers(0, 10, n).astype(np.uint8)
    for name, array in arrays.items():
        if packed:
            (raw / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(array)))
        else:
            (raw / name).write_bytes(idx_bytes(array))
    return raw, arrays


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --------------------------------------------------------------------------
# registry and root


def test_registry_names():
    assert set(data.DATASETS) == {"digits", "digit_pairs", "digits_0to4", "digits_5to9", "fashionmnist", "cifar10",
                                  "cifar100", "imagefolder", "cifar10_jpeg", "cifar10_jpeg_pixels16",
                                  "cifar10_jpeg_features_pca128", "cifar10_jpeg_features_pca256",
                                  *(f"{src}_features{part}" for src in ("cifar10_jpeg", "cifar10")
                                    for part in ("", "_0to4", "_5to9"))}
    assert set(data.LOADERS) == set(data.DATASETS)


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'") as err:
        data.load("mnist")
    assert all(name in str(err.value) for name in data.DATASETS)


def test_data_root_argument_then_env_then_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GCE_DATA", str(tmp_path / "env"))
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_root() == tmp_path / "env"
    monkeypatch.delenv("GCE_DATA")
    assert data.data_root() == Path.home() / ".cache" / "gce" / "data"


# --------------------------------------------------------------------------
# digits (real data, bundled with scikit-learn)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def test_digits_shapes_dtypes_classes(digits):
    assert digits.name == "digits" and digits.classes == tuple("0123456789") and digits.num_classes == 10
    assert digits.train.images.shape == (1198, 1, 8, 8) and digits.test.images.shape == (599, 1, 8, 8)
    for split in (digits.train, digits.test):
        assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
    both = torch.cat([digits.train.images, digits.test.images])
    assert int(both.min()) == 0 and int(both.max()) == 255


def test_digits_pixels_are_sklearn_scaled_exactly(digits):
    bunch = load_digits()
    scaled = np.floor(bunch.images * 255 / 16 + 0.5).astype(np.uint8)  # round(v * 255 / 16), halves up
    train, test = data.stratified_split(torch.as_tensor(bunch.target), data.DIGITS_TEST_FRACTION,
                                        data.DIGITS_SPLIT_SEED)
    assert np.array_equal(digits.train.images[:, 0].numpy(), scaled[train.numpy()])
    assert np.array_equal(digits.test.images[:, 0].numpy(), scaled[test.numpy()])
    assert np.array_equal(digits.test.labels.numpy(), bunch.target[test.numpy()])
    assert set(np.unique(scaled)) <= {(v * 255 + 8) // 16 for v in range(17)}


def test_digits_split_is_stratified_and_complete(digits):
    counts = np.bincount(load_digits().target)
    test_counts = digits.test.labels.bincount(minlength=10).numpy()
    assert np.all(np.abs(test_counts - counts / 3) < 1)
    assert test_counts.sum() == 599
    assert np.array_equal(digits.train.labels.bincount(minlength=10).numpy() + test_counts, counts)


def test_digits_is_deterministic(digits):
    again = data.load("digits")
    assert torch.equal(again.train.images, digits.train.images)
    assert torch.equal(again.test.labels, digits.test.labels)


# --------------------------------------------------------------------------
# CIFAR-10 and CIFAR-100 in their official format


def test_tiny_cifar_files_look_like_the_official_ones(tmp_path, rng):
    folder, *_ = write_cifar10(tmp_path, rng)
    opcodes = {op.name for op, _, _ in pickletools.genops((folder / "data_batch_1").read_bytes())}
    assert {"PROTO", "SHORT_BINSTRING", "BINSTRING"} <= opcodes  # Python 2 strings, protocol 2
    assert not opcodes & {"BINUNICODE", "SHORT_BINUNICODE", "SHORT_BINBYTES", "BINBYTES"}
    with open(folder / "data_batch_1", "rb") as f:
        entry = pickle.load(f, encoding="bytes")
    assert set(entry) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert entry[b"data"].dtype == np.uint8 and entry[b"data"].shape == (4, 3072)


def test_cifar10_round_trips_pixels_and_labels(tmp_path, rng, monkeypatch):
    folder, train_x, train_y, test_x, test_y = write_cifar10(tmp_path, rng)
    patch_cifar_md5s(monkeypatch, tv.CIFAR10, folder)
    ds = data.load("cifar10", root=tmp_path, download=False)
    assert ds.classes == class_names("cifar10")
    assert ds.train.images.shape == (20, 3, 32, 32) and ds.train.images.dtype == torch.uint8
    assert np.array_equal(ds.train.images.numpy(), train_x)  # image i of the files is image i, NCHW
    assert np.array_equal(ds.test.images.numpy(), test_x)
    assert ds.train.labels.tolist() == train_y and ds.test.labels.tolist() == test_y
    assert ds.train.labels.dtype == torch.int64


def test_cifar100_round_trips_fine_labels(tmp_path, rng, monkeypatch):
    folder, train_x, train_y, test_x, test_y = write_cifar100(tmp_path, rng)
    patch_cifar_md5s(monkeypatch, tv.CIFAR100, folder)
    ds = data.load("cifar100", root=tmp_path, download=False)
    assert ds.num_classes == 100 and ds.classes == class_names("cifar100")
    assert np.array_equal(ds.train.images.numpy(), train_x) and np.array_equal(ds.test.images.numpy(), test_x)
    assert ds.train.labels.tolist() == train_y and ds.test.labels.tolist() == test_y


def test_cifar_root_from_environment(tmp_path, rng, monkeypatch):
    folder, train_x, *_ = write_cifar10(tmp_path, rng)
    patch_cifar_md5s(monkeypatch, tv.CIFAR10, folder)
    monkeypatch.setenv("GCE_DATA", str(tmp_path))
    assert np.array_equal(data.load("cifar10", download=False).train.images.numpy(), train_x)


@pytest.mark.parametrize("name,folder,url", [
    ("cifar10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    ("cifar100", "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
])
def test_missing_cifar_without_download(tmp_path, name, folder, url):
    with pytest.raises(data.DatasetUnavailable) as err:
        data.load(name, root=tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path / folder) in message and url in message and "download=True" in message
    assert err.value.path == tmp_path / folder
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, RuntimeError)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_missing_cifar_with_failing_download(tmp_path, name, failing_download):
    with pytest.raises(data.DatasetUnavailable) as err:
        data.load(name, root=tmp_path, download=True)
    message = str(err.value)
    assert str(tmp_path) in message and "kriz" in message
    assert "URLError" in message and "simulated: no network" in message
    assert isinstance(err.value.__cause__, urllib.error.URLError)


def test_cifar_file_failing_md5_is_named(tmp_path, rng, monkeypatch, failing_download):
    folder, *_ = write_cifar10(tmp_path, rng)
    patch_cifar_md5s(monkeypatch, tv.CIFAR10, folder)
    bad = folder / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:-100])
    for download in (False, True):  # with download=True torchvision tries to re-fetch, and fails offline
        with pytest.raises(data.DatasetCorrupt, match="corrupt file .*data_batch_3.*md5") as err:
            data.load("cifar10", root=tmp_path, download=download)
        assert err.value.path == bad


def test_corrupt_cifar_archive_is_named(tmp_path, failing_download):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(data.DatasetCorrupt, match="corrupt archive .*cifar-10-python.tar.gz: its md5") as err:
        data.load("cifar10", root=tmp_path, download=True)
    assert err.value.path == archive


def test_truncated_cifar_pickle_is_named(tmp_path, rng, monkeypatch):
    folder, *_ = write_cifar100(tmp_path, rng)
    bad = folder / "test"
    bad.write_bytes(bad.read_bytes()[:500])
    patch_cifar_md5s(monkeypatch, tv.CIFAR100, folder)  # md5s of the truncated file: only unpickling fails
    with pytest.raises(data.DatasetCorrupt, match=r"corrupt file .*cifar-100-python/test: cannot be unpickled"):
        data.load("cifar100", root=tmp_path, download=False)


# --------------------------------------------------------------------------
# FASHION-MNIST in its official format


@pytest.mark.parametrize("packed", [False, True])
def test_fashionmnist_round_trips_pixels_and_labels(tmp_path, rng, packed):
    raw, arrays = write_fashionmnist(tmp_path, rng, packed=packed)
    ds = data.load("fashionmnist", root=tmp_path, download=False)
    assert ds.classes == class_names("fashionmnist")
    assert ds.train.images.shape == (6, 1, 28, 28) and ds.test.images.shape == (4, 1, 28, 28)
    assert ds.train.images.dtype == torch.uint8 and ds.train.labels.dtype == torch.int64
    assert np.array_equal(ds.train.images[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(ds.test.images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(ds.train.labels.numpy(), arrays["train-labels-idx1-ubyte"])
    assert np.array_equal(ds.test.labels.numpy(), arrays["t10k-labels-idx1-ubyte"])
    if packed:  # unpacked next to the archives, as torchvision's own download does
        assert (raw / "train-images-idx3-ubyte").is_file()


def test_missing_fashionmnist_without_download(tmp_path):
    with pytest.raises(data.DatasetUnavailable) as err:
        data.load("fashionmnist", root=tmp_path, download=False)
    message = str(err.value)
    raw = tmp_path / "FashionMNIST" / "raw"
    assert str(raw) in message and "train-images-idx3-ubyte" in message and "fashion-mnist" in message
    assert err.value.path == raw


def test_missing_fashionmnist_with_failing_download(tmp_path, failing_download):
    with pytest.raises(data.DatasetUnavailable, match="(?s)FashionMNIST/raw.*simulated: no network"):
        data.load("fashionmnist", root=tmp_path, download=True)


@pytest.mark.parametrize("file,cut", [("train-images-idx3-ubyte", -30), ("t10k-labels-idx1-ubyte", -1),
                                      ("t10k-images-idx3-ubyte", 10)])
def test_truncated_idx_file_is_named(tmp_path, rng, file, cut):
    raw, _ = write_fashionmnist(tmp_path, rng)
    (raw / file).write_bytes((raw / file).read_bytes()[:cut])
    for download in (False, True):
        with pytest.raises(data.DatasetCorrupt, match=f"corrupt file .*{file}") as err:
            data.load("fashionmnist", root=tmp_path, download=download)
        assert err.value.path == raw / file


def test_idx_file_with_wrong_magic_is_named(tmp_path, rng):
    raw, _ = write_fashionmnist(tmp_path, rng)
    path = raw / "train-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + path.read_bytes()[4:])
    with pytest.raises(data.DatasetCorrupt, match="train-labels-idx1-ubyte: idx magic number"):
        data.load("fashionmnist", root=tmp_path, download=False)


def test_corrupt_gz_is_named(tmp_path, rng):
    raw, _ = write_fashionmnist(tmp_path, rng, packed=True)
    path = raw / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(data.DatasetCorrupt, match="corrupt archive .*t10k-images-idx3-ubyte.gz"):
        data.load("fashionmnist", root=tmp_path, download=False)
    assert not (raw / "t10k-images-idx3-ubyte").exists()


# --------------------------------------------------------------------------
# your own images (ImageFolder)


def write_image_folder(root: Path, rng, mode="RGB", size=(5, 4)):
    """``root/{train,test}/{cat,dog}/k.png``; returns the pixels written, by path."""
    written = {}
    for part, n in (("train", 3), ("test", 2)):
        for cls in ("dog", "cat"):
            (root / part / cls).mkdir(parents=True)
            for k in range(n):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                path = root / part / cls / f"{k}.png"
                Image.fromarray(pixels, mode=mode).save(path)
                written[path] = pixels
    return written


def test_imagefolder_rgb_round_trip(tmp_path, rng):
    written = write_image_folder(tmp_path, rng)
    ds = data.load("imagefolder", root=tmp_path)
    assert ds.classes == ("cat", "dog")  # sorted folder names, as torchvision's ImageFolder
    assert ds.train.images.shape == (6, 3, 4, 5) and ds.test.images.shape == (4, 3, 4, 5)
    assert ds.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    expected = np.stack([written[tmp_path / "train" / c / f"{k}.png"] for c in ("cat", "dog") for k in range(3)])
    assert np.array_equal(ds.train.images.numpy(), expected.transpose(0, 3, 1, 2))


def test_imagefolder_greyscale_has_one_channel(tmp_path, rng):
    written = write_image_folder(tmp_path, rng, mode="L")
    ds = data.load("imagefolder", root=tmp_path)
    assert ds.test.images.shape == (4, 1, 4, 5)
    assert np.array_equal(ds.test.images[0, 0].numpy(), written[tmp_path / "test" / "cat" / "0.png"])


def test_imagefolder_errors(tmp_path, rng):
    with pytest.raises(ValueError, match="root="):
        data.load("imagefolder")
    with pytest.raises(data.DatasetUnavailable, match="train/<class>/<image>"):
        data.load("imagefolder", root=tmp_path)
    write_image_folder(tmp_path, rng)
    bad = tmp_path / "test" / "dog" / "1.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(data.DatasetCorrupt, match="cannot read image .*dog/1.png") as err:
        data.load("imagefolder", root=tmp_path)
    assert err.value.path == bad
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(bad)
    with pytest.raises(ValueError, match="dog/1.png is 9x9.*resize"):
        data.load("imagefolder", root=tmp_path)


# --------------------------------------------------------------------------
# noisy splits (Sec. 4)


def test_noisy_splits_hold_out_ten_percent_stratified(digits):
    s = data.noisy_splits(digits, ("uniform", 0.4), seed=0)
    n = len(digits.train)
    assert len(s.val) == round(0.1 * n) == 120 and len(s.train) == n - 120
    all_ids = torch.cat([s.train.ids, s.val.ids]).sort().values
    assert torch.equal(all_ids, torch.arange(n))  # a partition of the training set
    class_counts = digits.train.labels.bincount(minlength=10).double()
    assert torch.all((s.val.labels.bincount(minlength=10) - 0.1 * class_counts).abs() < 1)
    for part in (s.train, s.val):
        assert torch.equal(part.images, digits.train.images[part.ids])
        assert torch.equal(part.labels, digits.train.labels[part.ids])


def test_noisy_splits_are_reproducible(digits):
    a, b = (data.noisy_splits(digits, ("uniform", 0.4), seed=3) for _ in range(2))
    c = data.noisy_splits(digits, ("uniform", 0.4), seed=4)
    for name in ("ids", "noisy_labels", "flipped"):
        assert torch.equal(getattr(a.train, name), getattr(b.train, name))
        assert torch.equal(getattr(a.val, name), getattr(b.val, name))
    assert not torch.equal(a.val.ids, c.val.ids) and not torch.equal(a.train.noisy_labels, c.train.noisy_labels)


def test_noisy_splits_keep_the_test_set_clean(digits):
    s = data.noisy_splits(digits, ("uniform", 0.8), seed=0)
    assert s.test is digits.test
    assert torch.equal(s.test.labels, data.load("digits").test.labels)


def test_flipped_masks_match_the_labels(digits):
    s = data.noisy_splits(digits, ("class_dependent", 0.6), seed=0)
    flips = noise.flip_map("digits")
    for part in (s.train, s.val):
        assert torch.equal(part.flipped, part.noisy_labels != part.labels)
        assert part.flip_rate == pytest.approx(part.flipped.float().mean().item())
        for clean, noisy in zip(part.labels[part.flipped].tolist(), part.noisy_labels[part.flipped].tolist()):
            assert flips[clean] == noisy  # class-dependent noise: only source -> target flips
    assert torch.equal(s.T, noise.transition_matrix("class_dependent", "digits", 0.6))


@pytest.mark.parametrize("eta", [0.2, 0.4, 0.6, 0.8])
@pytest.mark.parametrize("seed", [0, 1])
def test_uniform_noise_realised_rate_within_binomial_tolerance(digits, eta, seed):
    """Each label flips independently with probability eta, so the number flipped is Binomial(n, eta):
    it must lie in the central 1 - 1e-6 interval."""
    s = data.noisy_splits(digits, ("uniform", eta), seed=seed)
    for part in (s.train, s.val):
        low, high = binom.interval(1 - 1e-6, len(part), eta)
        assert low <= int(part.flipped.sum()) <= high
    assert s.flip_rates == {"train": s.train.flip_rate, "val": s.val.flip_rate}


def test_noisy_splits_accept_a_matrix_and_check_its_shape(digits):
    T = noise.uniform(10, 0.0)
    s = data.noisy_splits(digits, T, seed=0)
    assert not s.train.flipped.any() and torch.equal(s.train.noisy_labels, s.train.labels)
    with pytest.raises(ValueError, match="T must be 10 x 10"):
        data.noisy_splits(digits, noise.uniform(3, 0.2))
    with pytest.raises(ValueError, match="unknown noise kind"):
        data.noisy_splits(digits, ("pairwise", 0.2))


def test_stratified_split_edge_cases():
    labels = torch.tensor([0] * 7 + [1] * 3)
    kept, held = data.stratified_split(labels, 0.0, seed=0)
    assert torch.equal(kept, torch.arange(10)) and held.numel() == 0
    kept, held = data.stratified_split(labels, 0.5, seed=0)
    assert len(held) == 5 and labels[held].bincount().tolist() in ([4, 1], [3, 2])
    with pytest.raises(ValueError, match="fraction"):
        data.stratified_split(labels, 1.0)


# --------------------------------------------------------------------------
# open-set noise (Table 2)


def test_open_set_splits(digits, rng):
    ood = torch.from_numpy(random_images(rng, 500, (1, 8, 8)))
    s = data.open_set_splits(digits, ood, 0.4, seed=0)
    assert s.T is None and s.open_set_rate == 0.4 and s.test is digits.test
    for part in (s.train, s.val):
        replaced = part.ood_index >= 0
        assert torch.equal(replaced, part.flipped) and int(replaced.sum()) == round(0.4 * len(part))
        assert torch.equal(part.images[replaced], ood[part.ood_index[replaced]])
        assert torch.equal(part.images[~replaced], digits.train.images[part.ids[~replaced]])
        assert torch.equal(part.noisy_labels[~replaced], part.labels[~replaced])
    train_ood, val_ood = set(s.train.ood_index.tolist()) - {-1}, set(s.val.ood_index.tolist()) - {-1}
    assert not train_ood & val_ood  # no outside image in both splits
    again = data.open_set_splits(digits, ood, 0.4, seed=0)
    assert torch.equal(again.train.images, s.train.images)


def test_open_set_splits_check_shapes(digits):
    with pytest.raises(ValueError, match=r"\(3, 8, 8\).*\(1, 8, 8\).*resize"):
        data.open_set_splits(digits, torch.zeros(10, 3, 8, 8, dtype=torch.uint8), 0.2)
    with pytest.raises(ValueError, match="uint8"):
        data.open_set_splits(digits, torch.zeros(10, 1, 8, 8), 0.2)


# --------------------------------------------------------------------------
# per-pixel mean (Sec. 4.2)


def test_pixel_mean(digits):
    mean = data.pixel_mean(digits.train.images)
    assert mean.shape == (1, 8, 8) and mean.dtype == torch.float32
    expected = digits.train.images.numpy().astype(np.float64).mean(axis=0)
    assert np.allclose(mean.numpy(), expected, rtol=0, atol=1e-5)
    assert torch.equal(data.pixel_mean(digits.train.images.flip(0)), mean)
    with pytest.raises(ValueError, match="uint8"):
        data.pixel_mean(digits.train.images.float())


def test_photo_patches_are_reproducible_uint8_digit_sized():
    a = data.photo_patches(20, seed=3)
    assert a.shape == (20, 1, 8, 8) and a.dtype == torch.uint8
    assert torch.equal(a, data.photo_patches(20, seed=3))
    assert not torch.equal(a, data.photo_patches(20, seed=4))
    # 17 grey levels, like the digits, and stretched to the full range
    assert {int(v) for v in a.unique()} <= {(i * 255 + 8) // 16 for i in range(17)}
    assert int(a.amax()) == 255 and int(a.amin()) == 0


def test_photo_patches_colour_and_errors():
    rgb = data.photo_patches(3, shape=(3, 32, 32), seed=0, levels=None)
    assert rgb.shape == (3, 3, 32, 32)
    assert not torch.equal(rgb[:, 0], rgb[:, 1])  # real colour, not copied grey
    with pytest.raises(ValueError, match="shape"):
        data.photo_patches(2, shape=(2, 8, 8))
    with pytest.raises(ValueError, match="levels"):
        data.photo_patches(2, levels=1)
    with pytest.raises(ValueError, match="n must"):
        data.photo_patches(-1)


def test_dataset_errors_pickle_as_themselves(tmp_path):
    import pickle

    from gce.data import DatasetCorrupt, DatasetUnavailable

    for cls in (DatasetUnavailable, DatasetCorrupt):
        err = cls(f"{cls.__name__}: something at {tmp_path}", tmp_path)
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is cls and str(back) == str(err) and back.path == tmp_path


def test_sixteen_bit_greyscale_pngs_keep_their_values(tmp_path):
    from PIL import Image

    from gce import data

    values = np.array([[0, 256 * 40], [256 * 128, 65535]], dtype=np.uint16)
    for part in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / part / cls).mkdir(parents=True)
            Image.fromarray(values).save(tmp_path / part / cls / "x.png")
    ds = data.load("imagefolder", tmp_path)
    assert ds.train.images.shape == (2, 1, 2, 2)
    assert ds.train.images[0, 0].tolist() == [[0, 40], [128, 255]]


def test_out_of_range_labels_name_the_file(tmp_path):
    from gce import data

    files = [tmp_path / "data_batch_1", tmp_path / "data_batch_2"]
    data.check_label_range("cifar10", torch.tensor([0, 9, 3, 1]), 10, files)
    with pytest.raises(data.DatasetCorrupt, match=r"label 12 of sample 3 in .*data_batch_2 lies outside \[0, 9\]"):
        data.check_label_range("cifar10", torch.tensor([0, 9, 3, 12]), 10, files)


def test_every_named_dataset_has_its_class_names():
    from gce import classes

    assert [d for d in data.DATASETS if d not in classes.CLASSES] == ["imagefolder"]
    assert classes.class_names("cifar10_jpeg_features") == classes.CIFAR10
    assert classes.class_names("cifar10_features_5to9") == classes.CIFAR10[5:]
