"""Frozen unsupervised image features for the ``cpu`` scale (Coates & Ng, 2011), learned without labels.

Two CPU cores cannot train the paper's ResNet-34 on CIFAR-10, but they can
train many small heads on fixed features.  This module builds those
features the way Coates, Lee & Ng ("An analysis of single-layer networks in
unsupervised feature learning", AISTATS 2011) do, from the training images
only (never the test images), and without looking at any label:

1. :func:`learn_dictionary`: random ``patch x patch`` RGB patches of the
   training images, each normalised for brightness and contrast, ZCA-whitened,
   and clustered by k-means into ``centroids`` centroids;
2. :func:`encode`: every patch of an image (stride ``stride``) gets the
   "triangle" code ``max(0, mean_k(d) - d_k)`` (``d_k`` its distance to
   centroid ``k``), and the codes are summed over the image's four quadrants
   (``4 * centroids`` numbers per image);
3. the codes are standardised per dimension and projected on their first
   ``pca_dim`` principal components, fitted on the training images, then scaled
   so the average dimension has unit variance.

:func:`features` runs the whole pipeline for CIFAR-10 (the JPEG copy or
torchvision's files, one code path) and caches the result outside the
repository, under :func:`cache_dir`, in a file named by the settings and
the sha256 of the images and labels: a second call with the same data and
settings reads the file instead of computing again.  Every random choice
comes from ``settings.seed``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from . import data as _data

__all__ = ["FeatureSettings", "cache_dir", "data_sha256", "learn_dictionary", "encode", "features",
           "feature_dataset", "pixel_dataset", "SOURCES", "DEFAULT_SETTINGS"]

#: Where the images come from: the JPEG copy (labelled "CIFAR-10 (JPEG copy)") or torchvision's CIFAR-10.
SOURCES = {"cifar10_jpeg": _data.CIFAR10_JPEG_LABEL, "cifar10": "CIFAR-10"}


@dataclass(frozen=True)
class FeatureSettings:
    """The settings of the feature pipeline (Coates & Ng, 2011); every one of them keys the cache.

    ``patch``: side of the square patches; ``n_patches``: patches sampled to
    learn the dictionary; ``centroids``: k-means centroids; ``kmeans_iters``:
    Lloyd iterations; ``norm_eps``: added to each patch's variance (pixel
    units 0-255) before contrast normalisation; ``zca_eps``: added to the
    whitening eigenvalues; ``stride``: step between encoded patches;
    ``pca_dim``: dimensions kept; ``seed``: every random choice.
    """

    patch: int = 6
    n_patches: int = 100_000
    centroids: int = 400
    kmeans_iters: int = 10
    norm_eps: float = 10.0
    zca_eps: float = 0.1
    stride: int = 2
    pca_dim: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("patch", "n_patches", "centroids", "kmeans_iters", "stride", "pca_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {name}={v!r}")
        for name in ("norm_eps", "zca_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {name}={getattr(self, name)!r}")
        if self.pca_dim > 4 * self.centroids:
            raise ValueError(f"pca_dim={self.pca_dim} exceeds the {4 * self.centroids} pooled codes")

    def key(self) -> str:
        """A short stable hash of the settings."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


#: The settings :func:`features` uses when none are given.
DEFAULT_SETTINGS = FeatureSettings()


def cache_dir() -> Path:
    """Where features are cached: ``$GCE_CACHE/features``, else ``~/.cache/gce/features`` (never the repository)."""
    root = os.environ.get("GCE_CACHE") or Path("~/.cache/gce")
    return Path(root).expanduser() / "features"


def data_sha256(dataset: _data.Dataset) -> str:
    """sha256 of a dataset's images and labels (train then test), in their stored order."""
    h = hashlib.sha256()
    for split in (dataset.train, dataset.test):
        h.update(str(tuple(split.images.shape)).encode())
        h.update(split.images.contiguous().numpy().tobytes())
        h.update(split.labels.contiguous().numpy().tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- the dictionary


def _normalise(p: Tensor, eps: float) -> Tensor:
    """Each row (a flattened patch) minus its mean, divided by ``sqrt(var + eps)`` (brightness and contrast)."""
    p = p - p.mean(dim=1, keepdim=True)
    return p / torch.sqrt(p.pow(2).mean(dim=1, keepdim=True) + eps)


def _sample_patches(images: Tensor, s: FeatureSettings, g: torch.Generator) -> Tensor:
    n, c, h, w = images.shape
    i = torch.randint(0, n, (s.n_patches,), generator=g)
    y = torch.randint(0, h - s.patch + 1, (s.n_patches,), generator=g)
    x = torch.randint(0, w - s.patch + 1, (s.n_patches,), generator=g)
    r = torch.arange(s.patch)
    rows = (y[:, None] + r)[:, None, :, None]
    cols = (x[:, None] + r)[:, None, None, :]
    chans = torch.arange(c)[None, :, None, None]
    return images[i[:, None, None, None], chans, rows, cols].reshape(s.n_patches, -1).float()


def learn_dictionary(images: Tensor, settings: FeatureSettings) -> dict[str, Tensor]:
    """Whitening and k-means centroids from random patches of ``images`` (uint8 ``(N, C, H, W)``, training only).

    Returns ``mean`` and ``W`` (ZCA: ``z = (p - mean) @ W`` for a normalised
    patch ``p``) and ``centroids`` ``(K, C * patch * patch)``, the k-means
    centres of the whitened patches (Lloyd's algorithm from ``K`` distinct
    random patches; an empty cluster restarts at a random patch).
    """
    s = settings
    g = torch.Generator().manual_seed(s.seed)
    p = _normalise(_sample_patches(images, s, g), s.norm_eps).double()
    mean = p.mean(dim=0)
    cov = torch.cov((p - mean).T)
    evals, evecs = torch.linalg.eigh(cov)
    W = evecs @ torch.diag(1.0 / torch.sqrt(evals.clamp_min(0) + s.zca_eps)) @ evecs.T
    z = ((p - mean) @ W).float()
    C = z[torch.randperm(len(z), generator=g)[:s.centroids]].clone()
    z2 = z.pow(2).sum(1, keepdim=True)
    for _ in range(s.kmeans_iters):
        d2 = z2 - 2 * z @ C.T + C.pow(2).sum(1)
        assign = d2.argmin(dim=1)
        counts = torch.bincount(assign, minlength=s.centroids)
        sums = torch.zeros_like(C).index_add_(0, assign, z)
        empty = counts == 0
        C = sums / counts.clamp_min(1)[:, None].float()
        if empty.any():
            C[empty] = z[torch.randint(0, len(z), (int(empty.sum()),), generator=g)]
    return {"mean": mean.float(), "W": W.float(), "centroids": C}


# --------------------------------------------------------------------------- encoding


def encode(images: Tensor, dictionary: dict[str, Tensor], settings: FeatureSettings, batch: int = 100,
           progress: bool = False, desc: str = "encoding") -> Tensor:
    """Pooled triangle codes ``(N, 4 * K)`` of uint8 images ``(N, C, H, W)`` (Coates & Ng, 2011, Sec. 3-4).

    Every ``patch x patch`` patch (stride ``settings.stride``) is normalised,
    whitened and coded as ``max(0, mean_k(d) - d_k)``; codes are summed over
    the four quadrants of the image.
    """
    from tqdm import tqdm

    s = settings
    mean, W, C = dictionary["mean"], dictionary["W"], dictionary["centroids"]
    c2 = C.pow(2).sum(1)
    out = torch.empty(len(images), 4 * len(C))
    with tqdm(total=len(images), desc=desc, unit="img", disable=not progress) as bar:
        for start in range(0, len(images), batch):
            x = images[start:start + batch].float()
            b = len(x)
            cols = F.unfold(x, s.patch, stride=s.stride)          # (b, C*p*p, L)
            side = int(round(cols.shape[-1] ** 0.5))
            p = _normalise(cols.transpose(1, 2).reshape(-1, cols.shape[1]), s.norm_eps)
            z = (p - mean) @ W
            d = torch.sqrt((z.pow(2).sum(1, keepdim=True) - 2 * z @ C.T + c2).clamp_min(0))
            f = (d.mean(dim=1, keepdim=True) - d).clamp_min(0).view(b, side, side, -1)
            half = side // 2
            out[start:start + b] = torch.cat([f[:, :half, :half].sum((1, 2)), f[:, :half, half:].sum((1, 2)),
                                              f[:, half:, :half].sum((1, 2)), f[:, half:, half:].sum((1, 2))], 1)
            bar.update(b)
    return out


def _project(train: Tensor, test: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Standardise on ``train``, project both on ``train``'s first ``dim`` principal components, unit mean variance."""
    mu, sd = train.mean(0), train.std(0).clamp_min(1e-6)
    a, b = (train - mu) / sd, (test - mu) / sd
    evals, evecs = torch.linalg.eigh(torch.cov(a.double().T))
    top = evecs[:, -dim:].flip(1).float()
    scale = float(evals[-dim:].mean().clamp_min(1e-12)) ** 0.5
    return (a @ top) / scale, (b @ top) / scale


# --------------------------------------------------------------------------- the cached pipeline


def features(source: str = "cifar10_jpeg", settings: FeatureSettings | None = None, root=None,
             download: bool = True, progress: bool = True, threads: int | None = 1,
             cache: Path | None = None) -> dict:
    """The ``cpu`` scale's features of CIFAR-10 from ``source`` (:data:`SOURCES`), cached.

    Returns a dict with ``train`` ``(50000, pca_dim)`` and ``test``
    ``(10000, pca_dim)`` float32 tensors, their ``train_labels`` and
    ``test_labels``, ``label`` (what to call the data in tables), ``sha256``
    (of the images and labels) and ``path`` (the cache file).  The first call
    learns the dictionary on the training images, encodes all images (a tqdm
    bar) and writes ``cache`` (default :func:`cache_dir`) /
    ``<source>-<settings key>-<sha256[:16]>.npz``; later calls read it.
    ``threads``: torch threads while computing (``None`` leaves torch's setting).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown feature source={source!r}; known: {', '.join(SOURCES)}")
    s = settings or DEFAULT_SETTINGS
    ds = _data.load(source, root, download)
    digest = data_sha256(ds)
    folder = Path(cache) if cache is not None else cache_dir()
    path = folder / f"{source}-{s.key()}-{digest[:16]}.npz"
    if not path.is_file():
        old = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            dictionary = learn_dictionary(ds.train.images, s)
            tr = encode(ds.train.images, dictionary, s, progress=progress, desc="features (train)")
            te = encode(ds.test.images, dictionary, s, progress=progress, desc="features (test)")
            tr, te = _project(tr, te, s.pca_dim)
        finally:
            torch.set_num_threads(old)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".tmp{os.getpid()}.npz")
        np.savez(tmp, train=tr.numpy(), test=te.numpy(), train_labels=ds.train.labels.numpy(),
                 test_labels=ds.test.labels.numpy(), settings=json.dumps(asdict(s)), sha256=digest)
        os.replace(tmp, path)
    with np.load(path, allow_pickle=False) as z:
        if str(z["sha256"]) != digest or json.loads(str(z["settings"])) != asdict(s):
            raise _data.DatasetCorrupt(f"feature cache {path} does not match its data or settings; delete it", path)
        out = {k: torch.from_numpy(z[k]) for k in ("train", "test", "train_labels", "test_labels")}
    return dict(out, label=SOURCES[source], sha256=digest, path=path, classes=ds.classes)


def feature_dataset(source: str = "cifar10_jpeg", classes: tuple[int, ...] | None = None, root=None,
                    download: bool = True, settings: FeatureSettings | None = None) -> _data.Dataset:
    """The features of :func:`features` as a :class:`gce.data.Dataset` of float32 ``(N, pca_dim, 1, 1)`` "images".

    ``classes`` keeps only those CIFAR-10 classes, relabelled ``0..len-1`` in
    the given order (Table 2's in-set task and its outside images).  The whole
    set is named ``"cifar10"`` (CIFAR-10's classes, so the class-dependent flips
    of Sec. 4.2 and CIFAR-10N's transition matrices apply).
    """
    f = features(source, settings, root, download)
    parts = []
    for x, y in ((f["train"], f["train_labels"]), (f["test"], f["test_labels"])):
        x, y = x.float(), y.long()
        if classes is not None:
            keep = torch.isin(y, torch.tensor(classes))
            remap = torch.full((10,), -1, dtype=torch.int64)
            remap[torch.tensor(classes)] = torch.arange(len(classes))
            x, y = x[keep], remap[y[keep]]
        parts.append(_data.Split(x[:, :, None, None].contiguous(), y))
    if classes is None:
        return _data.Dataset("cifar10", parts[0], parts[1], tuple(f["classes"]))
    names = tuple(f["classes"][c] for c in classes)
    return _data.Dataset(f"cifar10_classes_{''.join(map(str, classes))}", parts[0], parts[1], names)


def pixel_dataset(source: str = "cifar10_jpeg", factor: int = 2, root=None, download: bool = True) -> _data.Dataset:
    """CIFAR-10 from ``source`` downsampled by averaging ``factor x factor`` blocks (uint8; 16x16 for 2).

    The "downsampled pixels" candidate of the cpu scale's model choice (``benchmarks/cpu_candidates.py``).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown image source={source!r}; known: {', '.join(SOURCES)}")
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1 or 32 % factor:
        raise ValueError(f"factor must be a positive divisor of 32, got factor={factor!r}")
    ds = _data.load(source, root, download)
    parts = [_data.Split(F.avg_pool2d(s.images.float(), factor).round().to(torch.uint8), s.labels)
             for s in (ds.train, ds.test)]
    return _data.Dataset(ds.name, parts[0], parts[1], ds.classes)


# --------------------------------------------------------------------------- the feature datasets of gce.data
# Registered here, where they are built, so that gce.data needs nothing from this module.


def _feature_loader(name: str):
    def loader(root: Path | None, download: bool) -> _data.Dataset:
        """Frozen unsupervised CIFAR-10 features (:func:`feature_dataset`), float32 (N, D, 1, 1)."""
        source, classes = _data.FEATURE_DATASETS[name]
        return feature_dataset(source, classes, root, download)
    return loader


for _name in _data.FEATURE_DATASETS:
    _data.register(_name)(_feature_loader(_name))


def _candidate_loader(dim: int):
    def loader(root: Path | None, download: bool) -> _data.Dataset:
        """The JPEG copy's features with ``pca_dim`` fixed (a cpu-scale model candidate), float32 (N, D, 1, 1)."""
        return feature_dataset("cifar10_jpeg", None, root, download, replace(DEFAULT_SETTINGS, pca_dim=dim))
    return loader


for _dim in _data.CANDIDATE_PCA_DIMS:
    _data.register(f"cifar10_jpeg_features_pca{_dim}")(_candidate_loader(_dim))


@_data.register("cifar10_jpeg_pixels16")
def _load_cifar10_jpeg_pixels16(root: Path | None, download: bool) -> _data.Dataset:
    """The JPEG copy downsampled to 16x16 (:func:`pixel_dataset`): the cpu scale's pixel candidate."""
    return pixel_dataset("cifar10_jpeg", 2, root, download)


# --------------------------------------------------------------------------- for readers: are the images here?


def default_source() -> str:
    """Where the cpu scale's images come from: ``$GCE_CPU_SOURCE`` (a key of :data:`SOURCES`: ``"cifar10_jpeg"``
    or ``"cifar10"``), else the JPEG copy; an unknown name raises ``ValueError`` naming it."""
    name = os.environ.get("GCE_CPU_SOURCE", "cifar10_jpeg")
    if name not in SOURCES:
        raise ValueError(f"GCE_CPU_SOURCE={name!r} is no image source; known: {', '.join(SOURCES)}")
    return name


def images_available(source: str | None = None, root=None) -> bool:
    """Whether the cpu scale's images can be read without an unasked-for download.

    Used by the chapter "Noisy labels and noise models" to draw the images only where they are.

    ``source`` (:data:`SOURCES`; default :func:`default_source`, i.e. ``$GCE_CPU_SOURCE``):
    ``"cifar10_jpeg"`` is available when ``cifar10_jpeg75.npz`` is in :func:`gce.data.data_root` (``root``,
    else ``$GCE_DATA``); ``"cifar10"`` always is, since choosing it asks for torchvision's download
    (about 170 MB on first use).
    """
    src = default_source() if source is None else source
    if src not in SOURCES:
        raise ValueError(f"unknown image source={src!r}; known: {', '.join(SOURCES)}")
    if src == "cifar10":
        return True
    return (_data.data_root(root) / _data.CIFAR10_JPEG_FILE).is_file()


def missing_images_message(source: str | None = None) -> str:
    """One line telling a reader how to get the cpu scale's images when :func:`images_available` is false."""
    src = default_source() if source is None else source
    return (f"{SOURCES.get(src, src)} is not here: set GCE_DATA to the folder holding {_data.CIFAR10_JPEG_FILE}, "
            "or set GCE_CPU_SOURCE=cifar10 to download torchvision's CIFAR-10 (about 170 MB)")


__all__ += ["default_source", "images_available", "missing_images_message"]
