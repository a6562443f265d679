"""Datasets of Zhang & Sabuncu (2018) as ``uint8`` tensors, and their noisy splits (Sec. 4 and 4.2).

Every dataset loads as a :class:`Dataset`: a training and a test
:class:`Split` of ``uint8`` images in ``(N, C, H, W)`` layout with ``int64``
labels, and the class names in label order.

==================  ======================  =========================================================
name                images                  source
==================  ======================  =========================================================
``"digits"``        ``(N, 1, 8, 8)``        scikit-learn's bundled 1,797 handwritten digits (offline)
``"digit_pairs"``   ``(N, 1, 8, 16)``       100 classes: ordered pairs of real digits side by side (offline)
``"digits_0to4"``   ``(N, 1, 8, 8)``        the digits 0-4 of ``"digits"`` (offline; Table 2's in-set task)
``"digits_5to9"``   ``(N, 1, 8, 8)``        the digits 5-9 of ``"digits"`` (offline; its outside images)
``"fashionmnist"``  ``(N, 1, 28, 28)``      ``torchvision.datasets.FashionMNIST``
``"cifar10"``       ``(N, 3, 32, 32)``      ``torchvision.datasets.CIFAR10``
``"cifar100"``      ``(N, 3, 32, 32)``      ``torchvision.datasets.CIFAR100`` (fine labels)
``"imagefolder"``   ``(N, 1 or 3, H, W)``   your own images, ``torchvision.datasets.ImageFolder``
==================  ======================  =========================================================

The torchvision datasets live under ``root`` (the ``root`` argument, else the
environment variable ``GCE_DATA``, else ``~/.cache/gce/data``) in
torchvision's own layout, and are downloaded there on first use.  Offline,
copy the official files there (see :func:`load`).  A dataset that is missing
raises :class:`DatasetUnavailable`, a file that is damaged raises
:class:`DatasetCorrupt`; both name the path.

The experimental protocol of Sec. 4: 10% of the training set is held out for
validation, the training *and* validation labels are corrupted, and the test
labels stay clean (:func:`noisy_splits`; :func:`open_set_splits` for the
open-set noise of Table 2).  :func:`pixel_mean` is the per-pixel mean that
Sec. 4.2 subtracts.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import noise as _noise
from .classes import class_names

__all__ = [
    "register",
    "LOADERS",
    "DATASETS",
    "DIGITS_TEST_FRACTION",
    "DIGITS_SPLIT_SEED",
    "DIGIT_PAIRS_SEED",
    "DIGIT_PAIRS_TRAIN_PER_CLASS",
    "DIGIT_PAIRS_TEST_PER_CLASS",
    "DatasetUnavailable",
    "DatasetCorrupt",
    "Split",
    "Dataset",
    "NoisySplit",
    "NoisySplits",
    "data_root",
    "load",
    "stratified_split",
    "noisy_splits",
    "open_set_splits",
    "pixel_mean",
    "photo_patches",
    "WithIndex",
    "check_label_range",
]

#: Fraction and seed of the fixed stratified test split of ``"digits"`` (scikit-learn ships no test split).
DIGITS_TEST_FRACTION = 1 / 3
DIGITS_SPLIT_SEED = 0

_IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}  # uint8 data, 3 or 1 dimensions


# --------------------------------------------------------------------------- errors


class DatasetUnavailable(FileNotFoundError, RuntimeError):
    """The dataset's files are not on disk and could not be downloaded.

    A ``FileNotFoundError`` and a ``RuntimeError`` (what torchvision raises), so
    either ``except`` catches it.  ``path`` is the folder that was searched.
    """

    def __init__(self, message: str, path: Path | str):
        super().__init__(message)
        self.path = Path(path)

    def __reduce__(self):  # picklable (Ray sends it back from a worker as itself)
        return type(self), (str(self), str(self.path))


class DatasetCorrupt(RuntimeError):
    """A dataset file is on disk but cannot be read or fails its checksum; ``path`` names it."""

    def __init__(self, message: str, path: Path | str):
        super().__init__(message)
        self.path = Path(path)

    def __reduce__(self):  # picklable (Ray sends it back from a worker as itself)
        return type(self), (str(self), str(self.path))


# --------------------------------------------------------------------------- containers


@dataclass(frozen=True, eq=False)
class Split:
    """Images ``(N, C, H, W)`` ``uint8`` and their labels ``(N,)`` ``int64``."""

    images: Tensor
    labels: Tensor

    def __post_init__(self) -> None:
        _check_images(self.images, "images", (torch.uint8, torch.float32))
        if self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise ValueError(f"labels must be 1-d int64, got {self.labels.dtype} {tuple(self.labels.shape)}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __repr__(self) -> str:
        return f"Split(n={len(self)}, image_shape={tuple(self.images.shape[1:])})"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset's clean training and test splits and its class names in label order.

    ``val_ids``, when given, fixes the validation split: the indices of the
    training samples that every run holds out (``"digit_pairs"``, whose
    validation pairs are built from digit images that no training pair uses).
    Without it each run holds out a seeded stratified share (:func:`noisy_splits`).
    """

    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    val_ids: Tensor | None = None

    def __post_init__(self) -> None:
        c = len(self.classes)
        for part, split in (("train", self.train), ("test", self.test)):
            if len(split) and (int(split.labels.min()) < 0 or int(split.labels.max()) >= c):
                raise ValueError(f"{self.name} {part} labels must lie in [0, {c - 1}]")
        if self.train.images.shape[1:] != self.test.images.shape[1:]:
            raise ValueError(f"{self.name}: train and test images differ in shape: "
                             f"{tuple(self.train.images.shape[1:])} vs {tuple(self.test.images.shape[1:])}")
        if self.val_ids is not None and (self.val_ids.dim() != 1 or len(self.val_ids) >= len(self.train)
                                         or len(self.val_ids) and not 0 <= int(self.val_ids.min())
                                         <= int(self.val_ids.max()) < len(self.train)):
            raise ValueError(f"{self.name}: val_ids must be 1-d indices into the {len(self.train)} training samples, "
                             f"fewer than all of them")

    @property
    def num_classes(self) -> int:
        """The number of classes ``c``."""
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.train!r}, test={self.test!r}, "
                f"classes={self.num_classes})")


@dataclass(frozen=True, eq=False)
class NoisySplit:
    """One split of a noisy dataset (Sec. 4).

    ``labels`` are the clean labels, ``noisy_labels`` those a learner sees,
    ``flipped`` marks the samples whose noisy label is wrong, and ``ids`` are
    indices into the original split (``dataset.train`` for train and
    validation).  For open-set noise ``ood_index`` is the index of the
    out-of-distribution image that replaced the sample (``-1`` where none did),
    and ``labels`` is the label of the image that was replaced; otherwise
    ``ood_index`` is ``None``.
    """

    images: Tensor
    labels: Tensor
    noisy_labels: Tensor
    flipped: Tensor
    ids: Tensor
    ood_index: Tensor | None = None

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        for name in ("labels", "noisy_labels", "flipped", "ids"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(getattr(self, name).shape)}")

    @property
    def flip_rate(self) -> float:
        """The realised noise rate: the fraction of samples whose noisy label is wrong."""
        return float(self.flipped.float().mean()) if len(self) else 0.0

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        return f"NoisySplit(n={len(self)}, flip_rate={self.flip_rate:.4f})"


@dataclass(frozen=True, eq=False)
class NoisySplits:
    """Training and validation splits with noisy labels, and the clean test split (Sec. 4).

    ``T`` is the transition matrix the noise was drawn from (``None`` for
    open-set noise, whose rate is ``open_set_rate``).
    """

    name: str
    classes: tuple[str, ...]
    train: NoisySplit
    val: NoisySplit
    test: Split
    T: Tensor | None
    seed: int
    open_set_rate: float | None = None

    @property
    def flip_rates(self) -> dict[str, float]:
        """The realised noise rates of the training and validation splits."""
        return {"train": self.train.flip_rate, "val": self.val.flip_rate}

    def __repr__(self) -> str:
        return (f"NoisySplits({self.name!r}, train={self.train!r}, val={self.val!r}, "
                f"test={self.test!r}, seed={self.seed})")


# --------------------------------------------------------------------------- registry

#: Each dataset's loader by name, filled by ``register`` and called by ``load``.
LOADERS: dict[str, Callable[[Path | None, bool], Dataset]] = {}


def register(name: str) -> Callable:
    """A decorator that makes ``loader(root, download) -> Dataset`` the loader of dataset ``name`` (:func:`load`)."""
    def add(loader: Callable[[Path | None, bool], Dataset]) -> Callable[[Path | None, bool], Dataset]:
        LOADERS[name] = loader
        return loader
    return add


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder datasets live in: ``root``, else ``$GCE_DATA``, else ``~/.cache/gce/data``."""
    if root is None:
        root = os.environ.get("GCE_DATA") or Path("~/.cache/gce/data")
    return Path(root).expanduser()


def load(name: str, root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load dataset ``name`` (see :data:`DATASETS`) as ``uint8`` tensors (Sec. 4.2).

    ``root`` defaults to :func:`data_root`.  With ``download=True`` torchvision
    fetches missing files of ``"fashionmnist"``, ``"cifar10"`` and
    ``"cifar100"``; ``"digits"`` is bundled with scikit-learn and
    ``"imagefolder"`` reads your own files (``root`` required), so both ignore
    ``download``.

    Offline, put the official files where torchvision looks for them:

    - ``<root>/cifar-10-batches-py/``: ``data_batch_1`` ... ``data_batch_5``,
      ``test_batch``, ``batches.meta`` (the extracted
      ``cifar-10-python.tar.gz``; or put that archive in ``<root>`` and load
      with ``download=True``, which extracts it without a network);
    - ``<root>/cifar-100-python/``: ``train``, ``test``, ``meta``
      (``cifar-100-python.tar.gz`` likewise);
    - ``<root>/FashionMNIST/raw/``: ``train-images-idx3-ubyte``,
      ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
      ``t10k-labels-idx1-ubyte``, or the same names with ``.gz`` (unpacked on
      first load);
    - ``"imagefolder"``: ``<root>/train/<class>/<image>`` and
      ``<root>/test/<class>/<image>``, the same class folders in both; labels
      follow the sorted folder names; all images one size; all greyscale
      (``C = 1``) or else converted to RGB (``C = 3``).

    Raises :class:`DatasetUnavailable` (files missing, download failed) or
    :class:`DatasetCorrupt` (a file damaged), each naming the path, and
    ``ValueError`` for an unknown ``name``.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return LOADERS[name](None if root is None else Path(root).expanduser(), download)


# --------------------------------------------------------------------------- stratified splitting


def _stratified_counts(counts: Tensor, fraction: float) -> Tensor:
    """Per-class held-out counts summing to ``round(fraction * N)``, each ``floor`` or ``ceil`` of
    ``fraction * n_class`` (largest remainders get the ceiling, ties to the lower label)."""
    exact = counts.to(torch.float64) * fraction
    held = exact.floor().long()
    extra = round(fraction * int(counts.sum())) - int(held.sum())
    if extra > 0:
        order = torch.sort(exact - held, descending=True, stable=True).indices
        held[order[:extra]] += 1
    return held


def stratified_split(labels: Tensor, fraction: float,
                     seed: int | torch.Generator = 0) -> tuple[Tensor, Tensor]:
    """Split indices ``0..N-1`` into ``(kept, held_out)``, holding out ``fraction`` of every class.

    ``round(fraction * N)`` samples are held out in all, each class
    contributing ``floor`` or ``ceil`` of its share, chosen by a seeded random
    permutation within the class.  Both index tensors are sorted.  Used for the
    10% validation split of Sec. 4 and the test split of ``"digits"``.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.dtype.is_floating_point:
        raise ValueError(f"labels must be a 1-d integer tensor, got {labels.dtype} {tuple(labels.shape)}")
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    g = _noise.generator(seed, allow_none=False)
    labels = labels.long()
    classes, counts = torch.unique(labels, return_counts=True)
    held = _stratified_counts(counts, fraction)
    held_out = []
    for k, n_held in zip(classes.tolist(), held.tolist()):
        members = torch.nonzero(labels == k).squeeze(1)
        held_out.append(members[torch.randperm(len(members), generator=g)[:n_held]])
    is_held = torch.zeros(len(labels), dtype=torch.bool)
    if held_out:
        is_held[torch.cat(held_out)] = True
    return torch.nonzero(~is_held).squeeze(1), torch.nonzero(is_held).squeeze(1)


# --------------------------------------------------------------------------- digits


def _digits_to_uint8(values: np.ndarray) -> Tensor:
    """Scale scikit-learn's digit intensities ``0..16`` to ``0..255`` as ``round(v * 255 / 16)`` (halves up)."""
    v = np.asarray(values)
    if v.min() < 0 or v.max() > 16 or not np.array_equal(v, np.round(v)):
        raise ValueError("digits intensities must be integers in 0..16")
    return torch.from_numpy((v.astype(np.int64) * 255 + 8) // 16).to(torch.uint8)


@register("digits")
def _load_digits(root: Path | None, download: bool) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (UCI optdigits test set), bundled and offline.

    scikit-learn ships no test split: a fixed stratified third
    (:data:`DIGITS_TEST_FRACTION`, seed :data:`DIGITS_SPLIT_SEED`) is the test
    set, 599 images; the other 1,198 are the training set.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = _digits_to_uint8(bunch.images).unsqueeze(1)  # (1797, 1, 8, 8)
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    train, test = stratified_split(labels, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED)
    return Dataset("digits", Split(images[train], labels[train]), Split(images[test], labels[test]),
                   class_names("digits"))


# --------------------------------------------------------------------------- pocket tasks built from the digits

#: Seed and per-class counts of ``"digit_pairs"`` (fixed, so that the dataset is the same on every machine).
DIGIT_PAIRS_SEED = 0
DIGIT_PAIRS_TRAIN_PER_CLASS = 20
DIGIT_PAIRS_VAL_PER_CLASS = 5
DIGIT_PAIRS_TEST_PER_CLASS = 10
#: The share of the digit training images kept apart for the validation pairs (:data:`DIGIT_PAIRS_VAL_PER_CLASS`).
DIGIT_PAIRS_VAL_IMAGES = 0.2


def _pairs(split: Split, per_class: int, g: torch.Generator) -> Split:
    """``per_class`` images ``[a | b]`` (two digit images side by side, ``(1, 8, 16)``) for each ordered pair
    ``(a, b)`` of digits, labelled ``10 * a + b``; each half drawn at random from ``split``'s images of that digit."""
    members = [torch.nonzero(split.labels == d).squeeze(1) for d in range(10)]
    images, labels = [], []
    for a in range(10):
        for b in range(10):
            left = members[a][torch.randint(len(members[a]), (per_class,), generator=g)]
            right = members[b][torch.randint(len(members[b]), (per_class,), generator=g)]
            images.append(torch.cat([split.images[left], split.images[right]], dim=3))
            labels.append(torch.full((per_class,), 10 * a + b, dtype=torch.int64))
    return Split(torch.cat(images), torch.cat(labels))


@register("digit_pairs")
def _load_digit_pairs(root: Path | None, download: bool) -> Dataset:
    """A 100-class pocket task made only of real digits: ordered pairs of ``"digits"`` images side by side.

    The pocket stand-in for CIFAR-100 (Fig. 1(b) and the CIFAR-100 block of
    Table 1, with its "next class circularly" flips, :func:`gce.noise.flip_map`).
    Class ``10 * a + b`` (named ``"ab"``, e.g. ``"07"``) is an ``(1, 8, 16)``
    image whose left half is a real image of digit ``a`` and whose right half a
    real image of digit ``b``.  The digit training images are split once
    (stratified, :data:`DIGIT_PAIRS_VAL_IMAGES` of them apart): training pairs
    (:data:`DIGIT_PAIRS_TRAIN_PER_CLASS` per class, 2,000) are drawn from the
    larger part, validation pairs (:data:`DIGIT_PAIRS_VAL_PER_CLASS` per
    class, 500, :attr:`Dataset.val_ids`) from the other, and test pairs
    (:data:`DIGIT_PAIRS_TEST_PER_CLASS`, 1,000) from the digit test images: no
    digit image is in two splits.  The halves are drawn at random (with
    replacement across pairs) with the fixed seed :data:`DIGIT_PAIRS_SEED`, so
    the dataset is the same on every load.
    """
    digits = _load_digits(root, download)
    g = torch.Generator().manual_seed(DIGIT_PAIRS_SEED)
    keep, apart = stratified_split(digits.train.labels, DIGIT_PAIRS_VAL_IMAGES, g)
    train = _pairs(Split(digits.train.images[keep], digits.train.labels[keep]), DIGIT_PAIRS_TRAIN_PER_CLASS, g)
    val = _pairs(Split(digits.train.images[apart], digits.train.labels[apart]), DIGIT_PAIRS_VAL_PER_CLASS, g)
    test = _pairs(digits.test, DIGIT_PAIRS_TEST_PER_CLASS, g)
    both = Split(torch.cat([train.images, val.images]), torch.cat([train.labels, val.labels]))
    val_ids = torch.arange(len(train), len(both))
    return Dataset("digit_pairs", both, test, class_names("digit_pairs"), val_ids)


def _digit_subset(name: str, low: int, high: int) -> Dataset:
    digits = _load_digits(None, False)
    parts = []
    for split in (digits.train, digits.test):
        keep = (split.labels >= low) & (split.labels <= high)
        parts.append(Split(split.images[keep], split.labels[keep] - low))
    return Dataset(name, parts[0], parts[1], class_names(name))


@register("digits_0to4")
def _load_digits_0to4(root: Path | None, download: bool) -> Dataset:
    """The images of digits 0-4 of ``"digits"`` (same train/test split), labels 0-4: Table 2's pocket in-set task.

    With ``"digits_5to9"`` as the outside images (``RunConfig(ood="digits_5to9")``),
    open-set noise replaces training images by images of digits that belong to
    no class of the label set but come from the same domain, as CIFAR-100 images
    do for CIFAR-10 in Table 2.
    """
    return _digit_subset("digits_0to4", 0, 4)


@register("digits_5to9")
def _load_digits_5to9(root: Path | None, download: bool) -> Dataset:
    """The images of digits 5-9 of ``"digits"`` (same train/test split), labels 0-4 standing for 5-9.

    Table 2's pocket outside images for ``"digits_0to4"``: only the training
    images are used as outside images (the test images stay unused), so they
    share no image with ``"digits_0to4"``'s test set.
    """
    return _digit_subset("digits_5to9", 5, 9)


# --------------------------------------------------------------------------- file checks


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _idx_problem(path: Path, kind: str) -> str | None:
    """Why the idx file ``path`` (``kind`` ``"images"`` or ``"labels"``) is unreadable, or ``None``."""
    ndim = 3 if kind == "images" else 1
    header = 4 * (ndim + 1)
    size = path.stat().st_size
    if size < header:
        return f"{size} bytes, shorter than the {header}-byte idx header"
    with open(path, "rb") as f:
        head = f.read(header)
    magic = int.from_bytes(head[:4], "big")
    if magic != _IDX_MAGIC[kind]:
        return f"idx magic number {magic:#010x}, expected {_IDX_MAGIC[kind]:#010x} for uint8 {kind}"
    dims = [int.from_bytes(head[4 * i:4 * i + 4], "big") for i in range(1, ndim + 1)]
    expected = header + int(np.prod(dims))
    if size != expected:
        return f"{size} bytes, but its header {dims} implies {expected} (truncated or padded)"
    return None


def _cifar_problem(path: Path, label_key: str | None, meta_key: str | None = None) -> str | None:
    """Why the CIFAR pickle ``path`` is unreadable, or ``None``.

    A batch needs ``'data'`` (uint8, N x 3072) and ``label_key`` (N labels); a
    meta file (``label_key=None``) needs ``meta_key``.
    """
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except Exception as e:  # truncated or not a pickle: EOFError, UnpicklingError, ...
        return f"cannot be unpickled ({type(e).__name__}: {e})"
    if not isinstance(entry, dict):
        return f"holds a {type(entry).__name__}, expected a dict"
    if label_key is None:
        return None if meta_key in entry else f"lacks the key {meta_key!r}"
    if "data" not in entry or label_key not in entry:
        return f"lacks the keys 'data' and {label_key!r}"
    data = np.asarray(entry["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        return f"'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)"
    if len(entry[label_key]) != data.shape[0]:
        return f"{data.shape[0]} images but {len(entry[label_key])} labels"
    return None


# --------------------------------------------------------------------------- torchvision datasets


def _missing_message(title: str, name: str, root: Path, folder: Path, missing: list[str], how: str,
                     cause: BaseException | None) -> str:
    message = (f"{title} not found: {folder} lacks {', '.join(missing)}.\n"
               f"To get it, run gce.data.load({name!r}, root={str(root)!r}, download=True) once on a machine "
               f"with internet, or {how}")
    if cause is not None:
        message += f"\nThe download failed with {type(cause).__name__}: {cause}"
    return message


def _cifar_class(name: str) -> type:
    from torchvision.datasets import CIFAR10, CIFAR100

    return CIFAR10 if name == "cifar10" else CIFAR100


def _cifar_corrupt(name: str, cls: type, folder: Path) -> DatasetCorrupt | None:
    """A :class:`DatasetCorrupt` for the first CIFAR file present but damaged (md5 or content), if any.

    The md5s are torchvision's own (``cls.train_list``, ``cls.test_list``, ``cls.meta``).
    """
    label_key = "labels" if name == "cifar10" else "fine_labels"
    files = [(f, md5, label_key) for f, md5 in cls.train_list + cls.test_list]
    files.append((cls.meta["filename"], cls.meta["md5"], None))
    for f, md5, key in files:
        path = folder / f
        if not path.is_file():
            continue
        if md5 and _md5(path) != md5:
            problem = f"its md5 is not torchvision's {md5}"
        else:
            problem = _cifar_problem(path, key, cls.meta["key"])
        if problem:
            return DatasetCorrupt(f"{name}: corrupt file {path}: {problem}. Delete it and load again with "
                                  f"download=True, or copy the official file from {cls.url}", path)
    return None


def _cifar_explain(name: str, root: Path, cause: BaseException, download: bool) -> Exception | None:
    """The :class:`DatasetCorrupt` or :class:`DatasetUnavailable` behind a failed CIFAR load, if any."""
    cls = _cifar_class(name)
    folder = root / cls.base_folder
    if corrupt := _cifar_corrupt(name, cls, folder):
        return corrupt
    wanted = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    missing = [f for f in wanted if not (folder / f).is_file()]
    if not missing:
        return None
    archive = root / cls.filename
    if archive.is_file() and _md5(archive) != cls.tgz_md5:
        return DatasetCorrupt(f"{name}: corrupt archive {archive}: its md5 is not the official {cls.tgz_md5}. "
                              f"Delete it and download {cls.url} again", archive)
    title = "CIFAR-10" if name == "cifar10" else "CIFAR-100"
    how = (f"download {cls.url} and extract it into {root} (giving {folder}/), or put the archive itself "
           f"at {archive} and load with download=True (extracted without a network).")
    message = _missing_message(title, name, root, folder, missing, how, cause if download else None)
    return DatasetUnavailable(message, folder)


def _cifar_split(dataset, name: str, files: list[Path]) -> Split:
    images = torch.from_numpy(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)))
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    check_label_range(name, labels, 10 if name == "cifar10" else 100, files)
    return Split(images, labels)


def _check_class_names(name: str, found: list[str], path: Path) -> tuple[str, ...]:
    expected = class_names(name)
    if tuple(found) != expected:
        raise DatasetCorrupt(f"{name}: the class names in {path} are not the official ones", path)
    return expected


def _load_cifar(name: str, root: Path | None, download: bool) -> Dataset:
    cls = _cifar_class(name)
    root = data_root(root)
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=False)
    except Exception as e:
        explained = _cifar_explain(name, root, e, download)
        if explained is None:
            raise
        raise explained from e
    classes = _check_class_names(name, list(train.classes), root / cls.base_folder / cls.meta["filename"])
    folder = root / cls.base_folder
    return Dataset(name, _cifar_split(train, name, [folder / f for f, _ in cls.train_list]),
                   _cifar_split(test, name, [folder / f for f, _ in cls.test_list]), classes)


@register("cifar10")
def _load_cifar10(root: Path | None, download: bool) -> Dataset:
    """CIFAR-10 (Sec. 4.2): 50,000 training and 10,000 test 32x32 RGB images, 10 classes."""
    return _load_cifar("cifar10", root, download)


@register("cifar100")
def _load_cifar100(root: Path | None, download: bool) -> Dataset:
    """CIFAR-100 (Sec. 4.2) with its 100 fine labels: 50,000 training and 10,000 test images."""
    return _load_cifar("cifar100", root, download)


_FASHION_FILES = {
    "train-images-idx3-ubyte": "images", "train-labels-idx1-ubyte": "labels",
    "t10k-images-idx3-ubyte": "images", "t10k-labels-idx1-ubyte": "labels",
}


def _gunzip_missing(raw: Path) -> None:
    """Unpack ``<file>.gz`` to ``<file>`` in ``raw`` where only the archive is there.

    torchvision reads the unpacked files, and unpacks only what it downloads itself.
    """
    for f in _FASHION_FILES:
        packed, unpacked = raw / f"{f}.gz", raw / f
        if packed.is_file() and not unpacked.exists():
            try:
                with gzip.open(packed, "rb") as src, open(unpacked.with_suffix(".part"), "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError) as e:
                unpacked.with_suffix(".part").unlink(missing_ok=True)
                raise DatasetCorrupt(f"fashionmnist: corrupt archive {packed}: {e}", packed) from e
            unpacked.with_suffix(".part").rename(unpacked)


def _check_fashion_files(raw: Path) -> list[str]:
    """Raise :class:`DatasetCorrupt` for a damaged idx file in ``raw``; return the names that are missing."""
    missing = []
    for f, kind in _FASHION_FILES.items():
        path = raw / f
        if not path.is_file():
            missing.append(f)
        elif problem := _idx_problem(path, kind):
            raise DatasetCorrupt(f"fashionmnist: corrupt file {path}: {problem}. Delete it and load again "
                                 f"with download=True, or copy the official file", path)
    return missing


def _fashion_split(dataset, raw: Path, prefix: str) -> Split:
    images, labels = dataset.data, dataset.targets
    path = raw / f"{prefix}-labels-idx1-ubyte"
    if images.shape[0] != labels.shape[0]:
        raise DatasetCorrupt(f"fashionmnist: {path} holds {labels.shape[0]} labels for "
                             f"{images.shape[0]} images in {raw / f'{prefix}-images-idx3-ubyte'}", path)
    check_label_range("fashionmnist", labels, 10, [path])
    return Split(images.unsqueeze(1).contiguous(), labels.to(torch.int64))


def check_label_range(name: str, labels, num_classes: int, files: list[Path]) -> None:
    """Raise :class:`DatasetCorrupt` naming the file when a label lies outside ``[0, num_classes - 1]``.

    ``labels`` are the concatenated labels of ``files`` (of equal size when several), in order.
    """
    labels = torch.as_tensor(labels)
    bad = ((labels < 0) | (labels >= num_classes)).nonzero().flatten()
    if not bad.numel():
        return
    i = int(bad[0])
    per_file = len(labels) // len(files) if len(labels) % len(files) == 0 else None
    where = files[i // per_file] if per_file else ", ".join(str(f) for f in files)
    raise DatasetCorrupt(f"{name}: label {int(labels[i])} of sample {i} in {where} lies outside "
                         f"[0, {num_classes - 1}] ({bad.numel()} such labels); the file is damaged or not the "
                         f"official one", Path(str(where).split(", ")[0]))


@register("fashionmnist")
def _load_fashionmnist(root: Path | None, download: bool) -> Dataset:
    """FASHION-MNIST (Sec. 4.2): 60,000 training and 10,000 test 28x28 greyscale images, 10 classes."""
    from torchvision.datasets import FashionMNIST

    root = data_root(root)
    raw = root / "FashionMNIST" / "raw"
    _gunzip_missing(raw)
    _check_fashion_files(raw)  # a damaged file is never re-downloaded by torchvision: fail here, naming it
    try:
        train = FashionMNIST(str(root), train=True, download=download)
        test = FashionMNIST(str(root), train=False, download=False)
    except Exception as e:
        missing = _check_fashion_files(raw)
        if not missing:
            raise
        urls = ", ".join(f"{FashionMNIST.mirrors[0]}{f}" for f, _ in FashionMNIST.resources)
        how = f"copy the official files ({urls}), packed or unpacked, to {raw}/."
        cause = e if download else None
        message = _missing_message("FASHION-MNIST", "fashionmnist", root, raw, missing, how, cause)
        raise DatasetUnavailable(message, raw) from e
    return Dataset("fashionmnist", _fashion_split(train, raw, "train"), _fashion_split(test, raw, "t10k"),
                   class_names("fashionmnist"))


# --------------------------------------------------------------------------- image folders

_GREYSCALE_MODES = ("1", "L", "I;16", "I;16B", "I;16L", "I")  # "I;16"/"I": 16-bit greyscale PNGs
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I")


def _folder_samples(folder: Path) -> tuple[list[tuple[str, int]], list[str]]:
    from torchvision.datasets import ImageFolder

    try:
        found = ImageFolder(str(folder))
    except FileNotFoundError as e:  # no class folders, or a class folder without images
        raise DatasetUnavailable(f"imagefolder: {e}", folder) from e
    return found.samples, found.classes


def _image_mode(paths: list[str]) -> str:
    """``"L"`` when every image is greyscale, else ``"RGB"`` (headers only, nothing decoded)."""
    from PIL import Image

    for path in paths:
        try:
            with Image.open(path) as img:
                if img.mode not in _GREYSCALE_MODES:
                    return "RGB"
        except OSError as e:
            raise DatasetCorrupt(f"imagefolder: cannot read image {path}: {e}", path) from e
    return "L"


def _read_image(path: str, mode: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode in _WIDE_GREY:  # 16-bit greyscale: keep the top 8 bits (convert() would clip to 255)
                grey = (np.asarray(img).astype(np.int64).clip(0, 65535) >> 8).astype(np.uint8)
                pixels = grey if mode == "L" else np.stack([grey] * 3, axis=-1)
            else:
                pixels = np.asarray(img.convert(mode), dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise DatasetCorrupt(f"imagefolder: cannot read image {path}: {e}", path) from e
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _folder_split(samples: list[tuple[str, int]], mode: str) -> Split:
    images = []
    for path, _ in samples:
        pixels = _read_image(path, mode)
        if images and pixels.shape != images[0].shape:
            raise ValueError(f"imagefolder: {path} is {pixels.shape[1]}x{pixels.shape[2]}, but {samples[0][0]} "
                             f"is {images[0].shape[1]}x{images[0].shape[2]}; resize all images to one size first")
        images.append(pixels)
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return Split(torch.from_numpy(np.stack(images)), labels)


@register("imagefolder")
def _load_imagefolder(root: Path | None, download: bool) -> Dataset:
    """Your own dataset: ``<root>/train/<class>/<image>`` and ``<root>/test/<class>/<image>``.

    Labels are the indices of the sorted class folder names (torchvision's
    ``ImageFolder`` rule); train and test must have the same class folders.
    """
    if root is None:
        raise ValueError("imagefolder needs root=, a folder with train/<class>/ and test/<class>/ subfolders")
    for part in ("train", "test"):
        if not (root / part).is_dir():
            raise DatasetUnavailable(f"imagefolder: {root / part} is not a folder; expected the layout "
                                     f"{root}/train/<class>/<image> and {root}/test/<class>/<image>", root / part)
    train_samples, classes = _folder_samples(root / "train")
    test_samples, test_classes = _folder_samples(root / "test")
    if test_classes != classes:
        raise ValueError(f"imagefolder: {root / 'train'} has classes {classes} "
                         f"but {root / 'test'} has {test_classes}")
    mode = _image_mode([p for p, _ in train_samples + test_samples])
    return Dataset("imagefolder", _folder_split(train_samples, mode), _folder_split(test_samples, mode),
                   tuple(classes))


#: The names :func:`load` knows.
DATASETS: tuple[str, ...] = ("digits", "digit_pairs", "digits_0to4", "digits_5to9", "fashionmnist", "cifar10",
                              "cifar100", "imagefolder")


# --------------------------------------------------------------------------- noisy splits


def _check_images(images: Tensor, what: str, dtypes: tuple = (torch.uint8,)) -> None:
    # uint8 images; a Split also takes float32 features laid out as (N, D, 1, 1) images (gce.features, cpu scale)
    if not isinstance(images, Tensor) or images.dtype not in dtypes or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        dtype = images.dtype if isinstance(images, Tensor) else ""
        wanted = " or ".join(str(d).replace("torch.", "") for d in dtypes)
        raise ValueError(f"{what} must be a {wanted} tensor (N, C, H, W), got {dtype} {shape}")


def _transition(dataset: Dataset, noise: Tensor | tuple[str, float]) -> Tensor:
    """``T`` itself, or the paper's ``(kind, eta)`` noise for ``dataset`` (Sec. 4.2)."""
    if isinstance(noise, Tensor):
        T = noise
    elif isinstance(noise, tuple) and len(noise) == 2 and isinstance(noise[0], str):
        kind, eta = noise
        if kind == "uniform":
            T = _noise.uniform(dataset.num_classes, eta)
        elif kind == "class_dependent":
            T = _noise.class_dependent(dataset.name, eta)
        else:
            raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(_noise.NOISE_KINDS)}")
    else:
        raise TypeError(f"noise must be a transition matrix T or a (kind, eta) tuple, got {noise!r}")
    if T.shape != (dataset.num_classes, dataset.num_classes):
        raise ValueError(f"T must be {dataset.num_classes} x {dataset.num_classes} for {dataset.name}, "
                         f"got {tuple(T.shape)}")
    return T


def _corrupted(images: Tensor, labels: Tensor, ids: Tensor, T: Tensor, g: torch.Generator) -> NoisySplit:
    corruption = _noise.corrupt(labels, T, g)
    return NoisySplit(images, labels, corruption.noisy, corruption.flipped, ids)


def validation_split(dataset: Dataset, val_fraction: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(train_ids, val_ids)`` of ``dataset``'s training set: its fixed split (:attr:`Dataset.val_ids`), whose
    share must be ``val_fraction`` within one point, or else a stratified ``val_fraction`` drawn with ``g``."""
    if dataset.val_ids is None:
        return stratified_split(dataset.train.labels, val_fraction, g)
    share = len(dataset.val_ids) / len(dataset.train)
    if abs(share - val_fraction) > 0.01:
        raise ValueError(f"{dataset.name} has a fixed validation split of {share:.3f} of its training set; "
                         f"val_fraction={val_fraction} asks for another")
    held = torch.zeros(len(dataset.train), dtype=torch.bool)
    held[dataset.val_ids] = True
    return torch.nonzero(~held).squeeze(1), torch.nonzero(held).squeeze(1)


def noisy_splits(dataset: Dataset, noise: Tensor | tuple[str, float], val_fraction: float = 0.1,
                 seed: int = 0) -> NoisySplits:
    """The noisy dataset of Sec. 4: hold out validation, corrupt train and validation labels, keep test clean.

    ``val_fraction`` of the training set (10% in the paper), stratified by
    clean label (:func:`stratified_split`), becomes the validation split.  The
    labels of both are then drawn from ``T`` by :func:`gce.noise.corrupt`.
    ``noise`` is ``T`` or ``(kind, eta)``: ``("uniform", eta)`` for any
    dataset, ``("class_dependent", eta)`` for those with a flip map
    (:data:`gce.noise.FLIP_MAPS`, CIFAR-100).  One ``seed`` fixes the split and
    the noise: the same seed gives the same result.
    """
    T = _transition(dataset, noise)
    g = _noise.generator(seed, allow_none=False)
    train_ids, val_ids = validation_split(dataset, val_fraction, g)
    images, labels = dataset.train.images, dataset.train.labels
    train = _corrupted(images[train_ids], labels[train_ids], train_ids, T, g)
    val = _corrupted(images[val_ids], labels[val_ids], val_ids, T, g)
    return NoisySplits(dataset.name, dataset.classes, train, val, dataset.test, T.clone(), seed)


def _with_open_set(images: Tensor, labels: Tensor, ids: Tensor, ood_images: Tensor, ood_ids: Tensor,
                   rate: float, c: int, g: torch.Generator) -> NoisySplit:
    result = _noise.open_set(images, labels, ood_images, rate, c, g)
    ood_index = torch.where(result.is_open_set, ood_ids[result.source_index.clamp_min(0)], -1)
    return NoisySplit(result.images, labels, result.labels, result.is_open_set, ids, ood_index)


def open_set_splits(dataset: Dataset, ood_images: Tensor, rate: float, val_fraction: float = 0.1,
                    seed: int = 0) -> NoisySplits:
    """Open-set noise (Table 2, after Wang et al. 2018) on the splits of Sec. 4.

    As :func:`noisy_splits`, but instead of flipping labels a fraction
    ``rate`` of the training and of the validation images is replaced by
    images of ``ood_images`` (e.g. CIFAR-100 for CIFAR-10), each with a random
    in-set label (:func:`gce.noise.open_set`); every replaced sample counts as
    ``flipped``.  The two splits draw from disjoint parts of ``ood_images``, so
    no outside image appears in both.  ``ood_images`` must already have the
    dataset's ``uint8`` ``(C, H, W)`` (resizing is the caller's job; float32 for a feature dataset).
    """
    _check_images(ood_images, "ood_images", (dataset.train.images.dtype,))
    shape = tuple(dataset.train.images.shape[1:])
    if tuple(ood_images.shape[1:]) != shape:
        raise ValueError(f"ood_images are {tuple(ood_images.shape[1:])} but {dataset.name} images are {shape}; "
                         f"resize them to (C, H, W) = {shape} first")
    g = _noise.generator(seed, allow_none=False)
    train_ids, val_ids = validation_split(dataset, val_fraction, g)
    pool = torch.randperm(ood_images.shape[0], generator=g)
    n_train_pool = round(ood_images.shape[0] * len(train_ids) / max(len(dataset.train), 1))
    images, labels, c = dataset.train.images, dataset.train.labels, dataset.num_classes
    parts = []
    for ids, ood_ids in ((train_ids, pool[:n_train_pool]), (val_ids, pool[n_train_pool:])):
        parts.append(_with_open_set(images[ids], labels[ids], ids, ood_images[ood_ids], ood_ids, rate, c, g))
    return NoisySplits(dataset.name, dataset.classes, parts[0], parts[1], dataset.test, None, seed,
                       open_set_rate=_noise.check_eta(rate))


# --------------------------------------------------------------------------- offline out-of-distribution images


def photo_patches(n: int, shape: tuple[int, int, int] = (1, 8, 8), seed: int = 0,
                  levels: int | None = 17) -> Tensor:
    """``n`` patches of scikit-learn's two bundled photographs, as ``uint8`` images of ``shape`` ``(C, H, W)``.

    The offline out-of-distribution source for open-set noise at the pocket
    scale: for the 8x8 ``digits`` the paper's pairing of CIFAR-10 with
    CIFAR-100 images (Table 2) becomes digits with pieces of natural photographs
    (``china.jpg`` and ``flower.jpg`` from :func:`sklearn.datasets.load_sample_images`),
    none of which shows a digit.  Each patch is a random square crop (side
    4 to 8 times the target size), averaged down to ``H x W`` (grey-level mean for
    one channel), contrast-stretched to ``0..255`` and, with ``levels=17``,
    quantised to the 17 grey levels of the digits so that intensity alone does not
    give the outside images away.  The same ``seed`` gives the same patches.
    """
    from sklearn.datasets import load_sample_images

    if not (isinstance(n, int) and n >= 0):
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape[1:]) < 1:
        raise ValueError(f"shape must be (C, H, W) with C in (1, 3), got {shape!r}")
    if levels is not None and not 2 <= levels <= 256:
        raise ValueError(f"levels must be in 2..256 or None, got {levels!r}")
    C, H, W = shape
    photos = [torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)
              for img in load_sample_images().images]
    g = _noise.generator(seed, allow_none=False)
    out = torch.empty((n, C, H, W), dtype=torch.uint8)
    for i in range(n):
        photo = photos[int(torch.randint(len(photos), (1,), generator=g))]
        scale = int(torch.randint(4, 9, (1,), generator=g))
        h, w = H * scale, W * scale
        top = int(torch.randint(photo.shape[1] - h + 1, (1,), generator=g))
        left = int(torch.randint(photo.shape[2] - w + 1, (1,), generator=g))
        crop = photo[:, top:top + h, left:left + w]
        if C == 1:
            crop = crop.mean(dim=0, keepdim=True)
        small = torch.nn.functional.avg_pool2d(crop.unsqueeze(0), scale).squeeze(0)
        lo, hi = small.amin(), small.amax()
        small = (small - lo) / (hi - lo) if hi > lo else torch.zeros_like(small)
        if levels is not None:
            small = torch.round(small * (levels - 1)) / (levels - 1)
        out[i] = torch.round(small * 255).to(torch.uint8)
    return out


# --------------------------------------------------------------------------- preprocessing


class WithIndex(torch.utils.data.Dataset):
    """A dataset whose items are ``(*item, index)``: the sample ids a :class:`gce.losses.TruncatedLqLoss`
    needs (Algorithm 1 keeps one weight per training sample), from an ordinary ``DataLoader``.

    >>> loader = DataLoader(WithIndex(TensorDataset(x, y)), batch_size=128, shuffle=True)
    >>> for xb, yb, idx in loader: loss = criterion(model(xb), yb, idx)
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        item = self.dataset[index]
        return (*item, index) if isinstance(item, tuple) else (item, index)


def pixel_mean(images: Tensor) -> Tensor:
    """The per-pixel mean image ``(C, H, W)``, ``float32``, in the images' own units (Sec. 4.2).

    Sec. 4.2 subtracts it from every image ("per-pixel mean subtraction"):
    compute it on the training split only, e.g. ``pixel_mean(splits.train.images)``.
    The sums are exact integers, so the mean does not depend on the order of the images.
    """
    _check_images(images, "images")
    if images.shape[0] == 0:
        raise ValueError("pixel_mean needs at least one image")
    return (images.sum(dim=0, dtype=torch.int64).to(torch.float64) / images.shape[0]).to(torch.float32)


# --------------------------------------------------------------------------- CIFAR-10 (JPEG copy)
# A public re-encoding of CIFAR-10 as one JPEG per image (quality 75, 4:2:0 chroma), kept as one .npz file.
# It stands in for the CIFAR-10 binaries where only it is at hand; its pixels differ slightly from CIFAR-10's,
# so results on it are labelled "CIFAR-10 (JPEG copy)", never "CIFAR-10".

CIFAR10_JPEG_FILE = "cifar10_jpeg75.npz"
#: sha256 of the full 60,000-image copy; a file with 60,000 images and another hash is refused as corrupt.
CIFAR10_JPEG_SHA256 = "8c29b0a0804563573dca66f90a46eafedc150b066a3dec69bcfa9209e02cf7b5"
CIFAR10_JPEG_LABEL = "CIFAR-10 (JPEG copy)"
_JPEG_KEYS = ("jpeg", "offsets", "labels", "split", "classes")
_jpeg_cache: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # decoded copies, by (path, size, mtime)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _jpeg_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of the .npz at ``path``, checked for layout; :class:`DatasetCorrupt` naming the problem."""
    def bad(problem: str) -> DatasetCorrupt:
        return DatasetCorrupt(f"cifar10_jpeg: corrupt file {path}: {problem}", path)

    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _JPEG_KEYS if k not in z.files]
            if missing:
                raise bad(f"it lacks the arrays {', '.join(missing)}")
            d = {k: z[k] for k in _JPEG_KEYS}
    except DatasetCorrupt:
        raise
    except Exception as err:  # noqa: BLE001 - zip, pickle and format errors all mean a damaged file
        raise bad(f"numpy cannot read it ({type(err).__name__}: {err})") from err
    jpeg, off, labels, split = d["jpeg"], d["offsets"], d["labels"], d["split"]
    n = len(labels)
    if jpeg.dtype != np.uint8 or jpeg.ndim != 1:
        raise bad(f"'jpeg' must be 1-d uint8, got {jpeg.dtype} {jpeg.shape}")
    if off.ndim != 1 or len(off) != n + 1 or len(split) != n or n == 0:
        raise bad(f"{n} labels need {n + 1} offsets and {n} split flags, got {len(off)} and {len(split)}")
    if off[0] != 0 or off[-1] != len(jpeg) or np.any(np.diff(off) <= 0):
        raise bad("'offsets' must rise strictly from 0 to the length of 'jpeg'")
    classes = tuple(str(c) for c in d["classes"])
    if classes != class_names("cifar10"):
        raise bad(f"its classes {classes} are not CIFAR-10's")
    if labels.min() < 0 or labels.max() >= len(classes):
        raise bad(f"labels must lie in 0..{len(classes) - 1}, got {int(labels.min())}..{int(labels.max())}")
    if not np.isin(split, (0, 1)).all():
        raise bad("'split' must hold only 0 (train) and 1 (test)")
    if n == 60_000 and _sha256(path) != CIFAR10_JPEG_SHA256:
        raise bad(f"its sha256 is not the official copy's {CIFAR10_JPEG_SHA256}")
    return d


def _decode_jpegs(path: Path, jpeg: np.ndarray, off: np.ndarray) -> np.ndarray:
    """All images as ``(N, 3, 32, 32)`` ``uint8`` (Pillow, RGB)."""
    import io

    from PIL import Image

    out = np.empty((len(off) - 1, 3, 32, 32), dtype=np.uint8)
    for i in range(len(off) - 1):
        try:
            img = np.asarray(Image.open(io.BytesIO(jpeg[off[i]:off[i + 1]].tobytes())).convert("RGB"))
        except Exception as err:  # noqa: BLE001 - Pillow raises several types for damaged data
            raise DatasetCorrupt(f"cifar10_jpeg: corrupt file {path}: image {i} does not decode "
                                 f"({type(err).__name__}: {err})", path) from err
        if img.shape != (32, 32, 3):
            raise DatasetCorrupt(f"cifar10_jpeg: corrupt file {path}: image {i} is {img.shape}, not 32x32 RGB",
                                 path)
        out[i] = img.transpose(2, 0, 1)
    return out


@register("cifar10_jpeg")
def _load_cifar10_jpeg(root: Path | None, download: bool) -> Dataset:
    """CIFAR-10 (JPEG copy): ``<root>/cifar10_jpeg75.npz``, 50,000 training and 10,000 test images (Sec. 4.2's data,
    re-encoded as JPEG at quality 75 by a public repository; see :data:`CIFAR10_JPEG_LABEL`).

    The file holds ``jpeg`` (all JPEG files concatenated, ``uint8``), ``offsets``
    (``int64``, image ``i`` is ``jpeg[offsets[i]:offsets[i+1]]``), ``labels``,
    ``split`` (0 train, 1 test) and ``classes``.  Its layout, labels and class
    names are checked, and the full 60,000-image copy against
    :data:`CIFAR10_JPEG_SHA256`; images are decoded with Pillow (about 5 s on
    one core; decoded once per process).  Nothing is downloaded: the copy is
    not distributed with gce.  The returned :class:`Dataset` is named
    ``"cifar10"`` (it has CIFAR-10's classes, so Sec. 4.2's class-dependent flips
    apply); runs on it say ``dataset="cifar10_jpeg"`` in their config.
    """
    path = data_root(root) / CIFAR10_JPEG_FILE
    if not path.is_file():
        raise DatasetUnavailable(f"cifar10_jpeg: {path} not found; put the CIFAR-10 JPEG copy "
                                 f"({CIFAR10_JPEG_FILE}) there or pass root= the folder holding it", path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _jpeg_cache:
        d = _jpeg_arrays(path)
        _jpeg_cache.clear()  # keep one decoded copy at most
        _jpeg_cache[key] = (_decode_jpegs(path, d["jpeg"], d["offsets"]), d["labels"].astype(np.int64),
                            d["split"].astype(bool))
    images, labels, is_test = _jpeg_cache[key]
    parts = [Split(torch.from_numpy(images[m]), torch.from_numpy(labels[m])) for m in (~is_test, is_test)]
    return Dataset("cifar10", parts[0], parts[1], class_names("cifar10"))


DATASETS += ("cifar10_jpeg",)  # registered after the table above, in this section of its own
__all__ += ["CIFAR10_JPEG_FILE", "CIFAR10_JPEG_SHA256", "CIFAR10_JPEG_LABEL"]


# --------------------------------------------------------------------------- frozen features (the cpu scale)
# CIFAR-10 as frozen unsupervised features: the names are listed here, their loaders are registered by gce.features
# (which builds on this module; the package imports it, so they are always registered).
# Each name is a source and a class subset: the whole set, and Table 2's in-set classes 0-4 and outside 5-9.

#: The feature datasets, as name -> (image source, CIFAR-10 classes kept or None for all ten).
FEATURE_DATASETS: dict[str, tuple[str, tuple[int, ...] | None]] = {}
for _source in ("cifar10_jpeg", "cifar10"):
    for _suffix, _classes in (("", None), ("_0to4", (0, 1, 2, 3, 4)), ("_5to9", (5, 6, 7, 8, 9))):
        FEATURE_DATASETS[f"{_source}_features{_suffix}"] = (_source, _classes)


#: The principal components of the cpu scale's feature candidates, measured by ``benchmarks/cpu_candidates.py``.
#: Their datasets are the JPEG copy's features with that many components whatever the default; the pixel
#: candidate is its images downsampled to 16x16.
CANDIDATE_PCA_DIMS = (128, 256)
#: The names of those candidate datasets.
CANDIDATE_DATASETS = (*(f"cifar10_jpeg_features_pca{d}" for d in CANDIDATE_PCA_DIMS), "cifar10_jpeg_pixels16")
DATASETS += (*FEATURE_DATASETS, *CANDIDATE_DATASETS)
#: Datasets holding CIFAR-10's images with CIFAR-10's classes in another order or form.  CIFAR-10N's
#: transition matrices (the human_twin noise) apply to them, its per-image labels do not.
CIFAR10_TWIN_DATASETS = ("cifar10_jpeg", *(n for n, (_, c) in FEATURE_DATASETS.items() if c is None))
__all__ += ["FEATURE_DATASETS", "CANDIDATE_PCA_DIMS", "CANDIDATE_DATASETS", "CIFAR10_TWIN_DATASETS"]
