"""Real human label noise: CIFAR-10N and CIFAR-100N (Wei et al., ICLR 2022) beside the paper's noise (Sec. 3.1, 4.2).

Zhang & Sabuncu (2018) study synthetic noise only: uniform flips (Sec. 3.1)
and class-dependent flips between hand-picked class pairs (Sec. 4.2).  Wei et
al. (2022), "Learning with Noisy Labels Revisited: A Study Using Real-World
Human Annotations" (ICLR 2022), re-labelled the CIFAR-10 and CIFAR-100 training
sets by hand (Amazon Mechanical Turk).  This module reads their labels and
measures them with the paper's own notions.

Label sets (:data:`LABEL_SETS`): CIFAR-10N's ``"aggre"`` (majority vote of
three annotators), ``"random1"``, ``"random2"``, ``"random3"`` (each
annotator's label) and ``"worse"`` (a wrong label whenever one of the three
gave one); CIFAR-100N's ``"noisy"`` (one annotator).

- :func:`load_cifar_n` reads an official label file *safely*
  (``torch.load(weights_only=True)`` with only the numpy globals the files need)
  and checks it; :data:`CIFAR_N_URLS` are the authors' files.
- :func:`count_matrix`, :func:`transition_from_counts`: the clean x noisy counts
  and the row-stochastic ``T[i, j] = p(noisy j | clean i)`` of Sec. 3.1.
- :func:`shipped_counts`, :func:`human_transition`: the count matrices of every
  label set, shipped with the package (``gce/human/*.csv``), so figures need no
  download; :func:`coarse_labels` is CIFAR-100's fine -> super-class map.
- Analysis: :func:`noise_rate`, :func:`class_noise_rates`,
  :func:`distance_from_uniform`, :func:`theorem2_margins` (Theorem 2's
  condition ``T[i, j] < T[i, i]``), :func:`top_confusions`,
  :func:`superclass_share`, :func:`next_class_share`.
- :func:`human_noisy_splits`: the noisy splits of Sec. 4 with human labels, or
  with their class-conditional *synthetic twin* (labels drawn from the human
  ``T``, as Wei et al. do), for the experiment engine.

The label files' image order is torchvision's, so they apply to
``gce.data.load("cifar10")`` / ``load("cifar100")`` training sets.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from . import data as _data
from .classes import class_names

if TYPE_CHECKING:  # pandas is imported where a table is built, so that importing gce does not load it
    import pandas as pd

__all__ = [
    "CITATION",
    "CIFAR_N_FILES",
    "CIFAR_N_URLS",
    "CIFAR_N_SHA256",
    "LABEL_SETS",
    "CIFAR100_COARSE_NAMES",
    "cifar_n_path",
    "load_cifar_n",
    "count_matrix",
    "count_matrices",
    "transition_from_counts",
    "shipped_counts",
    "human_transition",
    "coarse_labels",
    "write_shipped_data",
    "noise_rate",
    "class_noise_rates",
    "distance_from_uniform",
    "theorem2_margins",
    "top_confusions",
    "superclass_share",
    "superclass_shares",
    "next_class_share",
    "human_noisy_splits",
    "results_table",
]

CITATION = ("Jiaheng Wei, Zhaowei Zhu, Hao Cheng, Tongliang Liu, Gang Niu, Yang Liu. Learning with Noisy Labels "
            "Revisited: A Study Using Real-World Human Annotations. ICLR 2022. "
            "https://github.com/UCSC-REAL/cifar-10-100n")

#: The official label files (the ``data/`` folder of UCSC-REAL/cifar-10-100n) by dataset.
CIFAR_N_FILES = {"cifar10": "CIFAR-10_human.pt", "cifar100": "CIFAR-100_human.pt"}
#: Where :func:`load_cifar_n` downloads them from (the authors' public repository), each the file name of
#: :data:`CIFAR_N_FILES` after ``https://raw.githubusercontent.com/UCSC-REAL/cifar-10-100n/main/data/``.
#:
#: :meta hide-value:
CIFAR_N_URLS = {d: f"https://raw.githubusercontent.com/UCSC-REAL/cifar-10-100n/main/data/{f}"
                for d, f in CIFAR_N_FILES.items()}
#: sha256 of the official files, checked after a download.
CIFAR_N_SHA256 = {"cifar10": "873e69c39cb9b5e97fb6bae2d60bb59b38a5cbc31d2b868f7903dcb2b9dd2310",
                  "cifar100": "bd2d80409754d420292d622e15e25248ba21e37d27429efac49c8da723f44394"}

#: label set -> (dataset, key in the official file)
LABEL_SETS = {"aggre": ("cifar10", "aggre_label"), "random1": ("cifar10", "random_label1"),
              "random2": ("cifar10", "random_label2"), "random3": ("cifar10", "random_label3"),
              "worse": ("cifar10", "worse_label"), "noisy": ("cifar100", "noisy_label")}

_KEYS = {"cifar10": ("clean_label", "aggre_label", "worse_label", "random_label1", "random_label2",
                     "random_label3"),
         "cifar100": ("clean_label", "noisy_label")}
_COARSE_KEYS = ("clean_coarse_label", "noisy_coarse_label")  # CIFAR-100N also ships its super-class labels
_NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
CIFAR_TRAIN_SIZE = 50_000

#: CIFAR-100's 20 super-classes ("coarse labels") in label order.
CIFAR100_COARSE_NAMES = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2")


# --------------------------------------------------------------------------- safe loading


def _safe_numpy_globals() -> list:
    """Exactly the numpy names the official files pickle, allowed under ``weights_only=True``.

    The files name ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``
    and ``numpy.dtype``.  numpy 2 moved ``_reconstruct`` to ``numpy._core``: it
    is allowed under both names.  Under numpy >= 1.25 ``numpy.dtype(...)``
    returns an instance of a per-type class (``numpy.dtypes.Int64DType``) that
    the unpickler must be allowed to build: the integer ones are added.
    """
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    allowed = [(_reconstruct, "numpy.core.multiarray._reconstruct"),
               (_reconstruct, "numpy._core.multiarray._reconstruct"), np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in ("Int64DType", "Int32DType", "Int16DType", "Int8DType",
                                                 "UInt8DType", "LongDType") if hasattr(dtypes, n)]
    return allowed


def cifar_n_path(dataset: str, root: str | os.PathLike | None = None) -> Path:
    """Where the label file of ``dataset`` lives: ``<root>/cifar-n/<file>`` (``root`` as :func:`gce.data.data_root`)."""
    _check_dataset(dataset)
    return _data.data_root(root) / "cifar-n" / CIFAR_N_FILES[dataset]


def _check_dataset(dataset: str) -> str:
    if dataset not in CIFAR_N_FILES:
        raise ValueError(f"no CIFAR-N labels for dataset={dataset!r}; known: {', '.join(CIFAR_N_FILES)}")
    return dataset


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _download(dataset: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    torch.hub.download_url_to_file(CIFAR_N_URLS[dataset], str(part), progress=True)
    if _sha256(part) != CIFAR_N_SHA256[dataset]:
        part.unlink(missing_ok=True)
        raise _data.DatasetCorrupt(f"{dataset}: the download of {CIFAR_N_URLS[dataset]} does not have the "
                                   f"official sha256 {CIFAR_N_SHA256[dataset]}", path)
    part.rename(path)


def load_cifar_n(dataset: str = "cifar10", root: str | os.PathLike | None = None, download: bool = True, *,
                 path: str | os.PathLike | None = None, train_labels=None) -> dict[str, np.ndarray]:
    """The CIFAR-10N or CIFAR-100N labels of Wei et al. (2022) as ``int64`` arrays, loaded safely and checked.

    ``dataset`` is ``"cifar10"`` or ``"cifar100"``.  The file is ``path``, else
    :func:`cifar_n_path` (``<root>/cifar-n/CIFAR-10_human.pt``); with
    ``download=True`` a missing file is fetched from :data:`CIFAR_N_URLS` and
    its sha256 checked.  Loading never runs pickled code: ``torch.load`` with
    ``weights_only=True``, allowing only the numpy names the files need.

    Keys: ``clean_label`` and CIFAR-10N's ``aggre_label``, ``worse_label``,
    ``random_label1..3``, or CIFAR-100N's ``noisy_label`` (plus
    ``clean_coarse_label``, ``noisy_coarse_label``).  Checks: every key there,
    1-d integer arrays of one length, labels in ``0..c-1``; that length is
    ``len(train_labels)`` when the CIFAR training labels are given (and
    ``clean_label`` must then equal them), else 50,000.  Raises
    :class:`gce.data.DatasetUnavailable` (missing) or
    :class:`gce.data.DatasetCorrupt` (unreadable or failing a check), naming the file.
    """
    _check_dataset(dataset)
    file = Path(path) if path is not None else cifar_n_path(dataset, root)
    if not file.is_file():
        if download and path is None:
            try:
                _download(dataset, file)
            except _data.DatasetCorrupt:
                raise
            except Exception as e:
                raise _data.DatasetUnavailable(f"{dataset}: CIFAR-N labels not found at {file} and the download "
                                               f"of {CIFAR_N_URLS[dataset]} failed ({type(e).__name__}: {e})",
                                               file) from e
        else:
            raise _data.DatasetUnavailable(f"{dataset}: CIFAR-N labels not found at {file}; download "
                                           f"{CIFAR_N_URLS[dataset]} there, or load with download=True", file)
    try:
        with torch.serialization.safe_globals(_safe_numpy_globals()):
            raw = torch.load(file, weights_only=True, map_location="cpu")
    except Exception as e:
        raise _data.DatasetCorrupt(f"{dataset}: cannot read the CIFAR-N label file {file} safely "
                                   f"({_reason(e)})", file) from e
    return _checked(dataset, raw, file, train_labels)


def _reason(e: Exception) -> str:
    """The informative line of a ``torch.load`` error (torch's message wraps it in generic advice)."""
    text = str(e).replace("WeightsUnpickler error:", "\n")
    boiler = ("Weights only load failed", "Check the documentation", "Please file an issue", "(1)", "(2)",
              "In PyTorch 2.6")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(boiler)] or lines or [""]
    return f"{type(e).__name__}: {useful[0][:240]}"


def _checked(dataset: str, raw, file: Path, train_labels) -> dict[str, np.ndarray]:
    def corrupt(why: str) -> _data.DatasetCorrupt:
        return _data.DatasetCorrupt(f"{dataset}: corrupt CIFAR-N label file {file}: {why}", file)

    if not isinstance(raw, dict):
        raise corrupt(f"it holds a {type(raw).__name__}, expected a dict of label arrays")
    missing = [k for k in _KEYS[dataset] if k not in raw]
    if missing:
        raise corrupt(f"it lacks the keys {', '.join(missing)}")
    n = CIFAR_TRAIN_SIZE if train_labels is None else len(train_labels)
    out = {}
    for key in (*_KEYS[dataset], *[k for k in _COARSE_KEYS if k in raw]):
        a = np.asarray(raw[key])
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise corrupt(f"{key!r} is {a.dtype} {a.shape}, expected 1-d integer labels")
        if a.shape[0] != n:
            raise corrupt(f"{key!r} has {a.shape[0]} labels, expected {n} (one per CIFAR training image)")
        c = 20 if key in _COARSE_KEYS else _NUM_CLASSES[dataset]
        if len(a) and (a.min() < 0 or a.max() >= c):
            raise corrupt(f"{key!r} has labels in [{a.min()}, {a.max()}], expected 0..{c - 1}")
        out[key] = a.astype(np.int64)
    if train_labels is not None:
        wrong = int((out["clean_label"] != np.asarray(train_labels)).sum())
        if wrong:
            raise corrupt(f"its clean_label differs from the CIFAR training labels at {wrong} of {n} images "
                          f"(not torchvision's {dataset} training set, or another order)")
    return out


# --------------------------------------------------------------------------- counts and transitions


def count_matrix(clean, noisy, c: int) -> np.ndarray:
    """``C[i, j]`` = number of images of true class ``i`` labelled ``j`` (``int64``, ``c x c``)."""
    given = {"clean": np.asarray(clean), "noisy": np.asarray(noisy)}
    for name, a in given.items():  # a label 1.7 is no class: refuse it rather than count it as 1
        if a.dtype == bool or a.dtype.kind not in "iuf":
            raise ValueError(f"{name} labels must be integer class indices, got dtype {a.dtype}")
        fractional = a[a != np.round(a)] if a.dtype.kind == "f" else a[:0]  # NaN included
        if fractional.size:
            raise ValueError(f"{name} labels must be whole class indices, got {fractional[0]}")
    clean, noisy = given["clean"].astype(np.int64), given["noisy"].astype(np.int64)
    if clean.shape != noisy.shape or clean.ndim != 1:
        raise ValueError(f"clean and noisy must be 1-d of one length, got {clean.shape} and {noisy.shape}")
    for name, a in (("clean", clean), ("noisy", noisy)):
        if len(a) and (a.min() < 0 or a.max() >= c):
            raise ValueError(f"{name} labels must lie in 0..{c - 1}, got [{a.min()}, {a.max()}]")
    return np.bincount(clean * c + noisy, minlength=c * c).reshape(c, c)


def count_matrices(labels: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The count matrix of every label set, from ``{dataset: load_cifar_n(dataset)}``."""
    out = {}
    for name, (dataset, key) in LABEL_SETS.items():
        if dataset in labels:
            d = labels[dataset]
            out[name] = count_matrix(d["clean_label"], d[key], _NUM_CLASSES[dataset])
    return out


def transition_from_counts(counts) -> Tensor:
    """Row-normalised counts: ``T[i, j] = p(noisy j | true i)`` (Sec. 3.1), ``float64``.

    An empty row (a class with no images) keeps its label.
    """
    C = np.asarray(counts, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1] or (C < 0).any():
        raise ValueError(f"counts must be a square non-negative matrix, got shape {C.shape}")
    rows = C.sum(axis=1, keepdims=True)
    T = np.where(rows > 0, C / np.where(rows > 0, rows, 1), np.eye(len(C)))
    return torch.from_numpy(T)


def _data_file(name: str):
    return resources.files("gce").joinpath("human", name)


def shipped_counts(label_set: str) -> np.ndarray:
    """The clean x noisy count matrix of ``label_set`` on all 50,000 training images, shipped with gce.

    Computed from the official files by :func:`write_shipped_data` (see :data:`CITATION`).
    """
    import pandas as pd

    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label_set={label_set!r}; known: {', '.join(LABEL_SETS)}")
    dataset = LABEL_SETS[label_set][0]
    with _data_file(f"{dataset}n_{label_set}.csv").open() as f:
        df = pd.read_csv(f, comment="#", index_col=0)
    return df.to_numpy(dtype=np.int64)


def human_transition(label_set: str) -> Tensor:
    """The human noise's transition matrix ``T`` (Sec. 3.1 convention) from the shipped counts of ``label_set``."""
    return transition_from_counts(shipped_counts(label_set))


def coarse_labels() -> np.ndarray:
    """CIFAR-100's super-class of each fine label, ``(100,)`` ``int64`` (names: :data:`CIFAR100_COARSE_NAMES`)."""
    import pandas as pd

    with _data_file("cifar100_coarse.csv").open() as f:
        df = pd.read_csv(f, comment="#")
    return df["coarse_label"].to_numpy(dtype=np.int64)


def write_shipped_data(source: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Write the shipped CSVs (count matrices, CIFAR-100 super-class map) from the official files in ``source``."""
    import pandas as pd

    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    labels = {d: load_cifar_n(d, path=source / f, download=False) for d, f in CIFAR_N_FILES.items()}
    written = []
    for name, C in count_matrices(labels).items():
        dataset, key = LABEL_SETS[name]
        names = class_names(dataset)
        df = pd.DataFrame(C, index=pd.Index(names, name="clean"), columns=names)
        path = out / f"{dataset}n_{name}.csv"
        header = (f"# {_TITLES[dataset]}N label set {name!r} (key {key!r} of {CIFAR_N_FILES[dataset]}): rows = "
                  f"clean label, columns = human label, entries = number of training images\n# Source: {CITATION}\n")
        path.write_text(header + df.to_csv())
        written.append(path)
    d100 = labels["cifar100"]
    coarse = np.full(100, -1, dtype=np.int64)
    for fine, sup in zip(d100["clean_label"], d100["clean_coarse_label"]):
        if coarse[fine] not in (-1, sup):
            raise ValueError(f"fine label {fine} has two super-classes in {CIFAR_N_FILES['cifar100']}")
        coarse[fine] = sup
    df = pd.DataFrame({"fine_label": range(100), "fine_name": class_names("cifar100"), "coarse_label": coarse,
                       "coarse_name": [CIFAR100_COARSE_NAMES[k] for k in coarse]})
    path = out / "cifar100_coarse.csv"
    path.write_text("# CIFAR-100 fine label -> super-class (coarse label), as in the CIFAR-100 meta file; read from "
                    f"clean_coarse_label of {CIFAR_N_FILES['cifar100']}\n" + df.to_csv(index=False))
    written.append(path)
    return written


# --------------------------------------------------------------------------- analysis


def noise_rate(counts) -> float:
    """The fraction of images whose label is wrong: ``1 - trace(C) / sum(C)``."""
    C = np.asarray(counts)
    return float(1.0 - np.trace(C) / C.sum())


def class_noise_rates(counts) -> np.ndarray:
    """Per true class ``i``: ``eta_i = 1 - T[i, i]``, the fraction of class ``i`` labelled wrongly."""
    return 1.0 - np.diag(transition_from_counts(counts).numpy())


def distance_from_uniform(T) -> dict[str, np.ndarray | float]:
    """How far a noise model is from uniform noise (Sec. 3.1), per true class and overall.

    Uniform noise has one rate for all classes and spreads each class's wrong
    labels evenly over the ``c - 1`` others.  Returned: ``tv`` -- per class, the
    total variation distance between where its wrong labels go,
    ``T[i, j] / (1 - T[i, i])`` for ``j != i``, and the uniform ``1 / (c - 1)``
    (0: uniform; ``1 - 1/(c-1)``: all on one class); ``effective_targets`` --
    ``exp`` of that distribution's entropy (``c - 1`` for uniform, 1 for a
    single target); ``tv_mean``, ``rate_spread`` (max - min of ``1 - T[i, i]``).
    Classes with no noise get NaN.
    """
    T = np.asarray(T.numpy() if isinstance(T, Tensor) else T, dtype=np.float64)
    c = T.shape[0]
    off = T * (1 - np.eye(c))
    wrong = off.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.where(wrong > 0, off / wrong, np.nan)
        tv = 0.5 * np.nansum(np.abs(dist - 1.0 / (c - 1)) * (1 - np.eye(c)), axis=1)
        ent = -np.nansum(np.where(dist > 0, dist * np.log(dist), 0.0), axis=1)
    has = wrong[:, 0] > 0
    tv = np.where(has, tv, np.nan)
    eff = np.where(has, np.exp(ent), np.nan)
    rates = 1 - np.diag(T)
    return {"tv": tv, "effective_targets": eff, "tv_mean": float(np.nanmean(tv)),
            "rate_spread": float(rates.max() - rates.min())}


def theorem2_margins(T) -> np.ndarray:
    """Theorem 2's condition per true class: ``T[i, i] - max_{j != i} T[i, j]`` (> 0 where it holds).

    Theorem 2 (Sec. 3.1) assumes class-dependent noise with ``eta_ij < eta_ii``
    -- in this module's notation ``T[i, j] < T[i, i]`` for every ``j != i``:
    the true label stays the most likely label of every class.
    """
    T = np.asarray(T.numpy() if isinstance(T, Tensor) else T, dtype=np.float64)
    off = np.where(np.eye(len(T), dtype=bool), -np.inf, T)
    return np.diag(T) - off.max(axis=1)


def top_confusions(counts, n: int = 10) -> pd.DataFrame:
    """The ``n`` largest off-diagonal entries: columns ``clean``, ``noisy`` (labels), ``count``,
    ``rate`` (``T[clean, noisy]``) and ``share`` (of all wrong labels)."""
    import pandas as pd

    C = np.asarray(counts, dtype=np.int64)
    T = transition_from_counts(C).numpy()
    off = C * (1 - np.eye(len(C), dtype=np.int64))
    order = np.argsort(-off, axis=None, kind="stable")[:n]
    i, j = np.unravel_index(order, C.shape)
    return pd.DataFrame({"clean": i, "noisy": j, "count": off[i, j], "rate": T[i, j],
                         "share": off[i, j] / off.sum()})


def superclass_share(counts, coarse=None) -> float:
    """Of the wrong labels, the fraction that stays within the true class's super-class (CIFAR-100's 20)."""
    C = np.asarray(counts, dtype=np.int64)
    coarse = coarse_labels() if coarse is None else np.asarray(coarse)
    same = coarse[:, None] == coarse[None, :]
    off = C * (1 - np.eye(len(C), dtype=np.int64))
    return float(off[same].sum() / off.sum())


def superclass_shares(counts, coarse=None) -> np.ndarray:
    """Per super-class ``s``: of the wrong labels of its true classes, the fraction that stays within ``s``.

    ``counts`` may also be a transition matrix (rows weighted equally); a super-class without wrong labels gets NaN.
    """
    C = np.asarray(counts, dtype=np.float64)
    coarse = coarse_labels() if coarse is None else np.asarray(coarse)
    off = C * (1 - np.eye(len(C)))
    same = coarse[:, None] == coarse[None, :]
    k = int(coarse.max()) + 1
    within = np.array([(off * same)[coarse == s].sum() for s in range(k)])
    total = np.array([off[coarse == s].sum() for s in range(k)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, within / total, np.nan)


def next_class_share(counts) -> float:
    """Of the wrong labels, the fraction going to the next class ``(i + 1) mod c``.

    That is where the paper's CIFAR-100 noise sends all of them (Sec. 4.2).
    """
    C = np.asarray(counts, dtype=np.int64)
    c = len(C)
    off = C * (1 - np.eye(c, dtype=np.int64))
    return float(off[np.arange(c), (np.arange(c) + 1) % c].sum() / off.sum())


# --------------------------------------------------------------------------- noisy splits for the engine


def human_noisy_splits(dataset: _data.Dataset, label_set: str, twin: bool = False, val_fraction: float = 0.1,
                       seed: int = 0, root: str | os.PathLike | None = None,
                       download: bool = True) -> _data.NoisySplits:
    """The noisy dataset of Sec. 4 with human labels (``twin=False``) or their synthetic twin (``twin=True``).

    The validation split is held out exactly as in :func:`gce.data.noisy_splits`
    (same seed, same split).  Human: every training and validation image gets
    its CIFAR-N label ``label_set`` (:func:`load_cifar_n`, checked against
    ``dataset``'s training labels).  Twin: labels drawn from the human ``T``
    (:func:`human_transition`, the same per-class rates and confusions, but
    independent of the image), as Wei et al. (2022) do; it needs no label file.
    ``T`` of the result is the human ``T`` in both cases.
    """
    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label_set={label_set!r}; known: {', '.join(LABEL_SETS)}")
    wanted = LABEL_SETS[label_set][0]
    if dataset.name != wanted:
        raise ValueError(f"label_set={label_set!r} labels {wanted}, not {dataset.name}")
    T = human_transition(label_set)
    if twin:
        return _data.noisy_splits(dataset, T, val_fraction, seed)
    human = load_cifar_n(wanted, root, download, train_labels=dataset.train.labels.numpy())
    noisy_all = torch.from_numpy(human[LABEL_SETS[label_set][1]])
    g = torch.Generator().manual_seed(seed)
    train_ids, val_ids = _data.stratified_split(dataset.train.labels, val_fraction, g)
    images, labels = dataset.train.images, dataset.train.labels
    parts = []
    for ids in (train_ids, val_ids):
        noisy = noisy_all[ids]
        parts.append(_data.NoisySplit(images[ids], labels[ids], noisy, noisy != labels[ids], ids))
    return _data.NoisySplits(dataset.name, dataset.classes, parts[0], parts[1], dataset.test, T, seed)


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean test accuracy (%, best-validation epoch) by human label set and noise kind (rows) and method."""
    import pandas as pd

    if not len(runs):
        return pd.DataFrame()
    df = runs.assign(acc=100 * runs["test_acc_best_val"])
    return df.pivot_table(index=["human_labels", "noise"], columns="method", values="acc", aggfunc="mean")
