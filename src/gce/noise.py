"""Label-noise models of Zhang & Sabuncu (2018), Sec. 3.1 and 4.2.

A noise model is a row-stochastic transition matrix ``T`` with
``T[i, j] = p(noisy label = j | true label = i)``: noise depends on the true
class only, not on the image (the paper's assumption in Sec. 3.1).

- :func:`uniform` -- ``1 - eta`` on the diagonal, ``eta / (c - 1)`` elsewhere.
- :func:`class_dependent` -- each *source* class keeps its label with
  probability ``1 - eta`` and flips to one fixed target with probability
  ``eta`` (Sec. 4.2; the maps are in :data:`FLIP_MAPS`).
- :func:`corrupt` -- samples noisy labels from ``T`` reproducibly.
- :func:`open_set` -- replaces a fraction of the images by images from
  another dataset, each with a random in-set label (open-set noise, Table 2).

Matrices are ``float64`` so that their entries print exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .classes import class_index, class_names
from .losses import check_transition_matrix

__all__ = [
    "FLIP_MAPS",
    "CIRCULAR_FLIPS",
    "NOISE_KINDS",
    "check_eta",
    "uniform",
    "flip_map",
    "class_dependent",
    "transition_matrix",
    "Corruption",
    "corrupt",
    "empirical_transition",
    "flip_rate",
    "expected_flip_rate",
    "expected_noisy_risk",
    "OpenSetNoise",
    "open_set",
    "generator",
]

NOISE_KINDS = ("uniform", "class_dependent")

#: Class-dependent flips by class name, each ``source -> target`` with probability eta.
#: CIFAR-10 and the digits map follow Patrini et al. (2017) (the digits map is
#: their MNIST map); FASHION-MNIST's follows Sec. 4.2 of the paper.  CIFAR-100
#: flips every class to the next one, circularly, and is built in code; so does its pocket
#: stand-in ``digit_pairs`` (:data:`CIRCULAR_FLIPS`).
FLIP_MAPS: dict[str, dict[str, str]] = {
    "cifar10": {"truck": "automobile", "bird": "airplane", "deer": "horse",
                "cat": "dog", "dog": "cat"},
    "fashionmnist": {"Ankle boot": "Sneaker", "Sneaker": "Sandal", "Pullover": "Shirt",
                     "Coat": "Dress", "Dress": "Coat"},
    "digits": {"2": "7", "3": "8", "7": "1", "5": "6", "6": "5"},
}

#: Datasets whose class-dependent noise flips every class to the next one, circularly (CIFAR-100, Sec. 4.2).
CIRCULAR_FLIPS = ("cifar100", "digit_pairs")
#: Datasets whose "next class" is taken in a fixed random order of the classes (the seed of that order):
#: CIFAR-100's next class in alphabetical order is an unrelated class, but the next label of
#: ``digit_pairs`` (``"ab"`` -> ``"a(b+1)"``) would share a digit; in a random order it mostly does not.
PERMUTED_ORDER = {"digit_pairs": 0}


def check_eta(eta) -> float:
    """Return the noise rate as a float, or raise ``ValueError`` unless ``0 <= eta < 1``."""
    if isinstance(eta, bool) or not isinstance(eta, (int, float)):
        raise TypeError(f"eta must be a real number, got {eta!r}")
    eta = float(eta)
    if not 0.0 <= eta < 1.0:
        raise ValueError(f"eta (the noise rate) must be in [0, 1), got eta={eta}")
    return eta


def _check_num_classes(c) -> int:
    if isinstance(c, bool) or not isinstance(c, int) or c < 2:
        raise ValueError(f"the number of classes c must be an integer >= 2, got {c!r}")
    return c


def uniform(c: int, eta: float) -> Tensor:
    """Uniform noise (Sec. 3.1): ``T[j, j] = 1 - eta`` and ``T[j, k] = eta / (c - 1)`` for ``k != j``."""
    c, eta = _check_num_classes(c), check_eta(eta)
    T = torch.full((c, c), eta / (c - 1), dtype=torch.float64)
    T.fill_diagonal_(1.0 - eta)
    return T


def flip_map(dataset: str) -> dict[int, int]:
    """The class-dependent flips of ``dataset`` as ``{source label: target label}``."""
    if dataset in CIRCULAR_FLIPS:
        c = len(class_names(dataset))
        if dataset in PERMUTED_ORDER:
            order = torch.randperm(c, generator=torch.Generator().manual_seed(PERMUTED_ORDER[dataset])).tolist()
            return {order[i]: order[(i + 1) % c] for i in range(c)}
        return {i: (i + 1) % c for i in range(c)}
    if dataset not in FLIP_MAPS:
        known = sorted([*FLIP_MAPS, *CIRCULAR_FLIPS])
        raise ValueError(f"no class-dependent flip map for {dataset!r}; known: {', '.join(known)}")
    return {class_index(dataset, s): class_index(dataset, t) for s, t in FLIP_MAPS[dataset].items()}


def class_dependent(flips: str | dict[int, int], eta: float, c: int | None = None) -> Tensor:
    """Class-dependent noise (Sec. 4.2): source ``i`` flips to ``flips[i]`` with probability ``eta``.

    ``flips`` is a dataset name (see :func:`flip_map`) or a ``{source: target}``
    dict of labels, in which case ``c`` must be given.  Classes that are no
    source keep their label.
    """
    eta = check_eta(eta)
    if isinstance(flips, str):
        c_data = len(class_names(flips)) if flips in (*CIRCULAR_FLIPS, *FLIP_MAPS) else None
        flips = flip_map(flips)
        c = c_data if c is None else c
        if c != c_data:
            raise ValueError(f"c={c} does not match the dataset's {c_data} classes")
    elif not isinstance(flips, dict):
        raise ValueError(f"flips must be a dataset name or a {{source: target}} dict, got {flips!r}")
    if c is None:
        raise ValueError("c (the number of classes) is needed with a custom flip dict")
    c = _check_num_classes(c)
    T = torch.eye(c, dtype=torch.float64)
    for s, t in flips.items():
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (s, t)):
            raise ValueError(f"bad flip {s!r} -> {t!r}: labels must be integers in [0, {c - 1}]")
        if not (0 <= s < c and 0 <= t < c) or s == t:
            raise ValueError(f"bad flip {s} -> {t} for c={c}: labels must differ and lie in [0, {c - 1}]")
        T[s, s] = 1.0 - eta
        T[s, t] = eta
    return T


def transition_matrix(kind: str, dataset: str, eta: float) -> Tensor:
    """The paper's noise of ``kind`` (``"uniform"`` or ``"class_dependent"``) for ``dataset``."""
    c = len(class_names(dataset))
    if kind == "uniform":
        return uniform(c, eta)
    if kind == "class_dependent":
        return class_dependent(dataset, eta)
    raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(NOISE_KINDS)}")


_SEED_RANGE = (-(2 ** 63), 2 ** 64)  # what torch.Generator.manual_seed accepts


def generator(seed_or_generator=None, *, allow_none: bool = True) -> torch.Generator | None:
    """A ``torch.Generator`` from an int seed (a generator is returned as it is; ``None`` stays ``None``
    unless ``allow_none=False``).  The one seed-to-generator helper of the package (gce.noise, gce.data).

    A seed outside ``[-2**63, 2**64)`` (what torch accepts) raises ``ValueError`` naming it;
    anything but an int or a generator raises ``TypeError``.
    """
    if seed_or_generator is None and allow_none:
        return None
    if isinstance(seed_or_generator, torch.Generator):
        return seed_or_generator
    if isinstance(seed_or_generator, bool) or not isinstance(seed_or_generator, int):
        what = "an int seed or a torch.Generator" + (" or None" if allow_none else "")
        raise TypeError(f"the seed or generator must be {what}, got {seed_or_generator!r}")
    lo, hi = _SEED_RANGE
    if not lo <= seed_or_generator < hi:
        raise ValueError(f"seed must lie in [-2**63, 2**64), got {seed_or_generator}")
    return torch.Generator().manual_seed(seed_or_generator)


_to_generator = generator  # for the functions below, whose argument is called ``generator``


def _check_labels(labels, c: int) -> Tensor:
    if isinstance(labels, (list, tuple)) and len(labels) == 0:
        return torch.zeros(0, dtype=torch.long)  # an empty list: no labels (not a float tensor)
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-d integer tensor, got {labels.dtype} of shape {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= c):
        raise ValueError(f"labels must lie in [0, {c - 1}] for a {c} x {c} transition matrix")
    return labels.long()


class Corruption(NamedTuple):
    """Noisy labels and which of them differ from the clean ones."""

    noisy: Tensor
    flipped: Tensor

    @property
    def rate(self) -> float:
        """The realised flip rate, the fraction of labels changed."""
        return float(self.flipped.float().mean()) if self.flipped.numel() else 0.0


def corrupt(labels, T, generator: torch.Generator | int | None = None) -> Corruption:
    """Draw a noisy label for every clean label from its row of ``T`` (Sec. 3.1).

    Each noisy label is drawn independently, ``p(noisy = j) = T[label, j]``, by
    inverting the row's cumulative sum at one uniform number per sample.  The
    same ``generator`` state (or integer seed) gives the same labels.
    """
    T = check_transition_matrix(T).to(torch.float64)
    labels = _check_labels(labels, T.shape[0])
    g = _to_generator(generator)
    u = torch.rand(labels.shape[0], generator=g, dtype=torch.float64)
    cdf = T.cumsum(dim=1)[labels]
    noisy = torch.searchsorted(cdf, u.unsqueeze(1), right=True).squeeze(1)
    noisy = noisy.clamp_max(T.shape[0] - 1)  # u above a row sum of 1 - 1e-16
    return Corruption(noisy=noisy, flipped=noisy != labels)


def empirical_transition(clean, noisy, c: int) -> Tensor:
    """Row-normalised counts ``#(clean = i, noisy = j) / #(clean = i)``: the realised ``T``.

    Rows of classes with no sample are NaN; no sample at all raises ``ValueError``.
    """
    c = _check_num_classes(c)
    clean, noisy = _check_labels(clean, c), _check_labels(noisy, c)
    if clean.shape != noisy.shape:
        raise ValueError(f"clean and noisy labels differ in length: {clean.numel()} vs {noisy.numel()}")
    if clean.numel() == 0:
        raise ValueError("no labels: the realised transition matrix of an empty set is undefined")
    counts = torch.bincount(clean * c + noisy, minlength=c * c).reshape(c, c).to(torch.float64)
    return counts / counts.sum(dim=1, keepdim=True)


def flip_rate(clean, noisy) -> float:
    """The fraction of labels that differ (``clean`` and ``noisy`` of one length, else ``ValueError``)."""
    clean, noisy = torch.as_tensor(clean), torch.as_tensor(noisy)
    if clean.shape != noisy.shape:
        raise ValueError(f"clean and noisy labels differ in shape: {tuple(clean.shape)} vs {tuple(noisy.shape)}")
    return float((clean != noisy).float().mean()) if clean.numel() else 0.0


def expected_flip_rate(T, class_prior=None) -> float:
    """``sum_i prior_i (1 - T[i, i])``: the flip rate ``T`` produces (uniform prior by default).

    For the paper's class-dependent CIFAR-10 noise only 5 of 10 classes are
    sources, so the overall rate is about ``eta / 2``.
    """
    T = check_transition_matrix(T).to(torch.float64)
    c = T.shape[0]
    prior = torch.full((c,), 1.0 / c, dtype=torch.float64) if class_prior is None else \
        torch.as_tensor(class_prior, dtype=torch.float64)
    if prior.shape != (c,) or (prior < 0).any() or abs(float(prior.sum()) - 1) > 1e-6:
        raise ValueError(f"class_prior must be {c} non-negative numbers summing to 1")
    return float((prior * (1 - T.diagonal())).sum())


def expected_noisy_risk(losses: Tensor, labels, T) -> Tensor:
    """The noisy risk ``R^eta(f) = E[L(f(x), noisy y)]`` with the expectation over the noise taken exactly.

    ``losses[n, j] = L(f(x_n), e_j)`` (see :func:`gce.losses.loss_matrix`) and
    ``labels`` the clean labels: ``R^eta = mean_n sum_j T[y_n, j] losses[n, j]``.
    """
    T = check_transition_matrix(T).to(losses.dtype)
    if losses.dim() != 2 or losses.shape[1] != T.shape[0]:
        raise ValueError(f"losses must have shape (N, {T.shape[0]}), got {tuple(losses.shape)}")
    labels = _check_labels(labels, T.shape[0])
    return (T[labels] * losses).sum(dim=1).mean()


class OpenSetNoise(NamedTuple):
    """A training set with open-set noise."""

    images: Tensor
    labels: Tensor
    is_open_set: Tensor  # True where the image came from the other dataset
    source_index: Tensor  # index into the other dataset, -1 where not replaced


def open_set(images: Tensor, labels, ood_images: Tensor, rate: float, c: int,
             generator: torch.Generator | int | None = None) -> OpenSetNoise:
    """Open-set noise (Wang et al. 2018; Table 2 of the paper).

    A fraction ``rate`` of the samples, chosen at random, have their image
    replaced by a distinct random image of ``ood_images`` (a dataset whose
    classes are not among the ``c`` classes), and each replaced sample gets a
    label drawn uniformly from the ``c`` in-set classes.  The label is thus
    wrong by construction: no in-set class is right for the image.
    Works on any tensors whose per-sample shapes agree (e.g. CIFAR-10 with
    CIFAR-100 images).  Inputs are not modified.
    """
    eta = check_eta(rate)
    c = _check_num_classes(c)
    labels = _check_labels(labels, c)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"images ({images.shape[0]}) and labels ({labels.shape[0]}) differ in number")
    if ood_images.shape[1:] != images.shape[1:] or ood_images.dtype != images.dtype:
        raise ValueError(
            f"ood_images must have the same per-sample shape and dtype as images: "
            f"{tuple(ood_images.shape[1:])} {ood_images.dtype} vs {tuple(images.shape[1:])} {images.dtype}"
        )
    n = images.shape[0]
    n_open = round(eta * n)
    if n_open > ood_images.shape[0]:
        raise ValueError(f"rate={eta} needs {n_open} out-of-distribution images, only {ood_images.shape[0]} given")
    g = _to_generator(generator)
    where = torch.randperm(n, generator=g)[:n_open]
    source = torch.randperm(ood_images.shape[0], generator=g)[:n_open]
    new_labels = torch.randint(0, c, (n_open,), generator=g)
    out_images, out_labels = images.clone(), labels.clone()
    out_images[where] = ood_images[source]
    out_labels[where] = new_labels
    is_open = torch.zeros(n, dtype=torch.bool)
    is_open[where] = True
    source_index = torch.full((n,), -1, dtype=torch.long)
    source_index[where] = source
    return OpenSetNoise(out_images, out_labels, is_open, source_index)
