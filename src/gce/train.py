"""Training runs of Sec. 4: one dataclass config per run, many runs trained together.

A run is a :class:`RunConfig`: dataset, noise (kind and rate), method (loss,
``q``, ``k``), model, epochs, optimiser and learning-rate schedule, batch size
(128 in the paper), seed, and the pruning schedule of truncated ``L_q``.
:func:`train` trains one; :func:`train_many` trains a list of them and returns
one :class:`RunResult` each, with a per-epoch history:

==================  ==========================================================
``train_loss``      mean training objective over the epoch's minibatches
``val_acc``         accuracy on the *noisy* validation labels (Sec. 4)
``val_loss``        the run's own loss on the noisy validation set (Fig. 2d-f)
``test_acc``        accuracy on the clean test set
``softmax_clean``   mean ``f_{y~}(x)`` on training samples whose label is right (Fig. 1c)
``softmax_noisy``   the same on the samples whose label is wrong (Fig. 1c)
``kept``            fraction of training samples kept by pruning (1 without)
==================  ==========================================================

and the two test accuracies the paper reports: at the epoch of best noisy
validation accuracy (Table 1) and at the last epoch (Table 2).

Methods (the columns of Table 1): ``"cce"`` (Eq. 2), ``"mae"`` (Eq. 4,
``2 - 2 f_y``), ``"lq"`` (Eq. 6), ``"trunc_lq"`` (Eq. 13 with Algorithm 1's
pruning), ``"forward_T"`` (Eq. 1 with the true ``T``) and ``"forward_T_hat"``
(Eq. 1 with ``T`` estimated by :func:`estimate_transition`, passed to
:func:`train_many` in ``transitions``); and the losses that followed the paper,
:data:`LATER_METHODS`: ``"sce"``, ``"nce_rce"``, ``"nce_mae"`` and
``"taylor_ce"`` with the default constants of :mod:`gce.losses`.

Batching independent runs
-------------------------
Runs that share a dataset, a model and a schedule (they may differ in seed,
method, noise and rate) are trained *together*: their parameters are stacked
(:func:`torch.func.stack_module_state`) and one :func:`torch.func.vmap` of
:func:`torch.func.functional_call` evaluates all of them on their own
minibatches.  The optimisers of :mod:`torch.optim` (SGD with momentum and
weight decay, Adam) act element by element, so one optimiser over the stacked
tensors is exactly one optimiser per run, provided the loss is the *sum* of the
runs' losses (each run's gradient then only sees its own loss).  Every run
draws its initialisation, its noise and its minibatch order from its own seed,
so a run trained in a group equals the same run trained alone, up to
floating-point rounding (tested).  BatchNorm's running statistics cannot be
vmapped; models with BatchNorm (the paper's ResNets and the CNN of Table 2)
are trained one run at a time, with the module itself.

Groups of BatchNorm-free ``mlp`` runs in float32 (any input size, hidden sizes
and number of classes; the whole pocket scale) go through one faster engine
instead, with the same results up to float rounding (tested against the path
above, which ``Tricks(mlp_engine=False)`` selects): the runs' weights are
stacked as ``(R, out, in)`` tensors, the layers are batched matrix products
with the bias fused in (``baddbmm``), the last one producing class-major
logits ``(R, classes, n)``; the gradients are written out, the loss head's
included (:class:`LossHead`); SGD and Adam are ``torch._foreach_*`` steps
with ``torch.optim``'s formulas; the runs are trained in cache-sized chunks of
32 through all their epochs; each epoch's shuffled minibatches are gathered
once; the shared test set goes through the first layer of a chunk as one
matrix product per block of 128 test images; and the pruning pass runs only
for the runs that prune.  Each trick is a switch of :class:`Tricks`
(``benchmarks/pocket.py`` measures each).

Truncated ``L_q`` (Algorithm 1, Sec. 4.2)
-----------------------------------------
Until ``prune_start`` all weights are 1 (plain ``L_q``).  At ``prune_start``
and every ``prune_every`` epochs after, the weights ``w_i = 1[f_{y_i} >= k]``
are recomputed (:func:`gce.losses.prune_weights`) in eval mode on the
un-augmented training images, from the parameters of the epoch with the best
*noisy validation* accuracy so far (never the test set), and kept per sample
id.  Training continues with the *current* parameters, which the optimiser
holds throughout (a public implementation reloaded a checkpoint into a new
model object at this point, so its optimiser trained nothing afterwards).  The
loss is the weighted mean of Eq. 13, ``sum_i w_i (L_q(f_i) - L_q(k)) /
sum_i w_i`` over a minibatch: pruned samples leave the denominator too, so
pruning does not shrink the step size.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from . import data as _data
from . import human_noise as _human_noise
from . import losses as _losses
from . import models as _models
from . import noise as _noise
from . import schedule as _schedule

__all__ = [
    "METHODS",
    "LATER_METHODS",
    "NOISE_KINDS",
    "RunConfig",
    "RunResult",
    "train",
    "train_many",
    "group_key",
    "estimate_transition",
    "run_losses",
    "Tricks",
]

#: The losses that followed the paper (:data:`gce.losses.LATER_LOSSES`, each with its default constants).  The
#: loss head of the MLP engine does not cover them: their gradient comes from autograd.
LATER_METHODS = tuple(_losses.LATER_LOSSES)
METHODS = ("cce", "mae", "lq", "trunc_lq", "forward_T", "forward_T_hat") + LATER_METHODS
NOISE_KINDS = ("none", "uniform", "class_dependent", "open_set", "human", "human_twin")
HISTORY_KEYS = ("train_loss", "val_acc", "val_loss", "test_acc", "softmax_clean", "softmax_noisy", "kept")


@dataclass(frozen=True)
class RunConfig:
    """One training run (Sec. 4).  Defaults are the pocket scale's.

    ``noise`` is ``"none"``, ``"uniform"``, ``"class_dependent"`` (the flip map
    of the dataset, Sec. 4.2), ``"open_set"`` (a fraction ``eta`` of the
    images replaced by images of ``ood``, Table 2), or ``"human"`` /
    ``"human_twin"``: the CIFAR-N label set ``human_labels`` (e.g. ``"worse"``)
    or labels drawn from its transition matrix (:mod:`gce.human_noise`; ``eta``
    stays 0).  ``milestones`` are the
    epochs after which the learning rate is multiplied by ``gamma`` (the paper:
    40 and 80 for CIFAR-10).  ``prune_start``/``prune_every`` set the pruning
    epochs of ``"trunc_lq"``; with ``prune_rule="plateau"`` pruning starts instead
    after the epoch at which the run's own validation loss has plateaued
    (:func:`gce.schedule.plateau_epoch`, Table 2's rule, Sec. 4.3) and repeats
    every ``prune_every`` epochs.  ``model_kwargs`` is a tuple of ``(name, value)``
    pairs for :func:`gce.models.build`.
    """

    dataset: str = "digits"
    noise: str = "uniform"
    eta: float = 0.0
    method: str = "cce"
    q: float = 0.7
    k: float = 0.5
    model: str = "mlp"
    model_kwargs: tuple = ()
    epochs: int = 60
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    batch_size: int = 128
    augment: bool = False
    prune_start: int = 40
    prune_every: int = 10
    prune_rule: str = "fixed"
    ood: str | None = None
    val_fraction: float = 0.1
    track_train_softmax: bool = True
    seed: int = 0
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    human_labels: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method={self.method!r}; known methods: {', '.join(METHODS)}")
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"unknown noise={self.noise!r}; known noise kinds: {', '.join(NOISE_KINDS)}")
        if self.dataset not in _data.DATASETS:
            raise ValueError(f"unknown dataset={self.dataset!r}; known datasets: {', '.join(_data.DATASETS)}")
        if self.model not in _models.MODELS:
            raise ValueError(f"unknown model={self.model!r}; known models: {', '.join(_models.MODELS)}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        _noise.check_eta(self.eta)
        if self.noise == "none" and self.eta != 0:
            raise ValueError(f"noise='none' needs eta=0, got eta={self.eta}")
        if self.noise == "open_set" and self.ood is None:
            raise ValueError("noise='open_set' needs ood, the source of the outside images "
                             "(e.g. 'cifar100' or 'photo_patches')")
        if (self.noise in ("human", "human_twin")) != (self.human_labels is not None):
            raise ValueError(f"human_labels (a CIFAR-N label set, e.g. 'worse') goes with noise='human' or "
                             f"'human_twin' only, got noise={self.noise!r}, human_labels={self.human_labels!r}")
        if self.human_labels is not None and self.eta != 0:
            raise ValueError(f"noise={self.noise!r} takes its rates from human_labels; leave eta=0, got {self.eta}")
        if self.human_labels is not None:
            # the twin needs only the labels' T, so it also applies to the JPEG copy of CIFAR-10 (images in another
            # order, which the human labels themselves do not fit)
            target = ("cifar10" if self.noise == "human_twin" and self.dataset in _data.CIFAR10_TWIN_DATASETS
                      else self.dataset)
            if _human_noise.LABEL_SETS.get(self.human_labels, ("",))[0] != target:
                known = [s for s, (d, _) in _human_noise.LABEL_SETS.items() if d == target]
                raise ValueError(f"human_labels={self.human_labels!r} is no CIFAR-N label set of {self.dataset}; "
                                 f"known: {', '.join(known) or 'none (CIFAR-N labels cifar10 and cifar100)'}")
        if self.method in ("lq", "trunc_lq"):
            _losses.check_q(self.q)
        if self.method == "trunc_lq":
            _losses.check_k(self.k)
        for name in ("epochs", "batch_size", "prune_every"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("eta", "q", "k", "lr", "momentum", "weight_decay", "gamma", "val_fraction"):
            value = getattr(self, name)  # NaN and inf would otherwise pass the range checks (or go unchecked)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {name}={value!r}")
        if not (self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.prune_rule not in ("fixed", "plateau"):
            raise ValueError(f"prune_rule must be 'fixed' or 'plateau', got prune_rule={self.prune_rule!r}")
        if not (isinstance(self.prune_start, int) and not isinstance(self.prune_start, bool)
                and self.prune_start >= 0):
            raise ValueError(f"prune_start must be an integer >= 0 (an epoch), got prune_start={self.prune_start!r}")
        ms = self.milestones
        if not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in ms) \
                or any(a >= b for a, b in zip(ms, ms[1:])):
            raise ValueError(f"milestones must be increasing positive epochs, got milestones={ms!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got momentum={self.momentum!r}")
        if not self.gamma >= 0:
            raise ValueError(f"gamma must be non-negative, got gamma={self.gamma!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be non-negative, got weight_decay={self.weight_decay!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2 ** 63:
            raise ValueError(f"seed must be an integer in [0, 2**63), got seed={self.seed!r}")

    @property
    def uses_pruning(self) -> bool:
        return self.method == "trunc_lq"

    def prune_epochs(self) -> list[int]:
        """The epochs (0-based, before which the weights are recomputed) of Algorithm 1's pruning steps.

        Empty with ``prune_rule="plateau"``: those epochs are found while training (:class:`_Pruning`)."""
        if not self.uses_pruning or self.prune_rule == "plateau":
            return []
        return list(range(self.prune_start, self.epochs, self.prune_every))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        d["model_kwargs"] = [list(kv) for kv in self.model_kwargs]
        return d


@dataclass
class RunResult:
    """What a run produced: its config, per-epoch history and summary numbers."""

    config: RunConfig
    history: dict[str, list[float]]
    best_epoch: int
    test_acc_best_val: float
    test_acc_last: float
    flip_rate_train: float
    flip_rate_val: float
    T_used: list | None = None
    extra: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return len(self.history["test_acc"])


# --------------------------------------------------------------------------- grouping


_GROUP_FIELDS = ("precision", "channels_last", "compile",
                 "dataset", "model", "model_kwargs", "epochs", "optimizer", "lr", "momentum", "weight_decay",
                 "milestones", "gamma", "batch_size", "augment", "val_fraction", "track_train_softmax", "ood")


def group_key(config: RunConfig) -> tuple:
    """Runs with equal keys can be trained together in one vmapped group."""
    return tuple(getattr(config, f) for f in _GROUP_FIELDS)


# --------------------------------------------------------------------------- data of a group


@dataclass
class _GroupData:
    bank: Tensor            # (M, C, H, W) uint8: training images + outside images
    train_idx: Tensor       # (R, N) indices into bank
    train_y: Tensor         # (R, N) noisy labels
    train_clean: Tensor     # (R, N) 1 where the noisy label is right
    val_idx: Tensor         # (R, V)
    val_y: Tensor           # (R, V) noisy labels
    test_x: Tensor          # (S, C, H, W) uint8
    test_y: Tensor          # (S,)
    T: list                 # per run: the T the noise was drawn from (None for open-set/none)
    flip_train: list
    flip_val: list
    num_classes: int
    mean: Tensor            # (C, H, W) float: per-pixel mean (Sec. 4.2), in [0, 1] units


def _ood_images(name: str, shape: tuple, n: int, root) -> Tensor:
    if name == "photo_patches":
        return _data.photo_patches(n, shape=shape, seed=12345)
    other = _data.load(name, root)
    images = other.train.images
    if tuple(images.shape[1:]) != shape:
        raise ValueError(f"ood dataset {name!r} has images {tuple(images.shape[1:])}, need {shape}")
    return images


def noisy_splits_of(cfg: RunConfig, ds: _data.Dataset, ood: Tensor | None = None, root=None) -> _data.NoisySplits:
    """The noisy splits of Sec. 4 that the run ``cfg`` trains on, from its dataset ``ds``.

    Open-set noise (Sec. 4.3) replaces images by the outside images ``ood``; ``human``/``human_twin`` noise
    uses the CIFAR-N labels or their synthetic twin (:func:`gce.human_noise.human_noisy_splits`, files under
    ``root``); otherwise the labels are flipped by ``T`` (uniform or class-dependent, Sec. 3.1, 4.2), none for
    ``noise="none"``.  The same seed always gives the same splits, so an analysis can match a run's samples.
    """
    if cfg.noise == "open_set":
        return _data.open_set_splits(ds, ood, cfg.eta, cfg.val_fraction, cfg.seed)
    if cfg.noise in ("human", "human_twin"):
        return _human_noise.human_noisy_splits(ds, cfg.human_labels, cfg.noise == "human_twin", cfg.val_fraction,
                                               cfg.seed, root)
    kind = ("uniform", 0.0) if cfg.noise == "none" else (cfg.noise, cfg.eta)
    return _data.noisy_splits(ds, kind, cfg.val_fraction, cfg.seed)


def build_group_data(configs: Sequence[RunConfig], root=None, dataset_cache: dict | None = None) -> _GroupData:
    cfg0 = configs[0]
    cache = {} if dataset_cache is None else dataset_cache
    if cfg0.dataset not in cache:
        cache[cfg0.dataset] = _data.load(cfg0.dataset, root)
    ds = cache[cfg0.dataset]
    n_train = len(ds.train)
    bank = ds.train.images
    ood = None
    if any(c.noise == "open_set" for c in configs):
        shape = tuple(ds.train.images.shape[1:])
        key = ("ood", cfg0.ood, shape)
        if key not in cache:
            cache[key] = _ood_images(cfg0.ood, shape, n_train, root)
        ood = cache[key]
        bank = torch.cat([bank, ood])
    parts = {k: [] for k in ("train_idx", "train_y", "train_clean", "val_idx", "val_y", "T", "ft", "fv")}
    for cfg in configs:
        splits = noisy_splits_of(cfg, ds, ood, root)
        T = None if cfg.noise == "open_set" else splits.T
        for name, split in (("train", splits.train), ("val", splits.val)):
            idx = split.ids.clone()
            if split.ood_index is not None:
                idx = torch.where(split.ood_index >= 0, n_train + split.ood_index, idx)
            parts[f"{name}_idx"].append(idx)
            parts[f"{name}_y"].append(split.noisy_labels)
        parts["train_clean"].append(~splits.train.flipped)
        parts["T"].append(T)
        parts["ft"].append(splits.train.flip_rate)
        parts["fv"].append(splits.val.flip_rate)
    mean = ds.train.images.float().mean(dim=0) / (255.0 if ds.train.images.dtype == torch.uint8 else 1.0)
    return _GroupData(bank, torch.stack(parts["train_idx"]), torch.stack(parts["train_y"]),
                      torch.stack(parts["train_clean"]), torch.stack(parts["val_idx"]), torch.stack(parts["val_y"]),
                      ds.test.images, ds.test.labels, parts["T"], parts["ft"], parts["fv"], ds.num_classes, mean)


def preprocess(images: Tensor, mean: Tensor, augment: bool, generator: torch.Generator | None) -> Tensor:
    """uint8 ``(..., C, H, W)`` -> float, per-pixel mean subtracted (Sec. 4.2); optional crop + flip.
    float32 features (:mod:`gce.features`) are taken as they are, their mean subtracted."""
    x = (images.float() / 255.0 if images.dtype == torch.uint8 else images) - mean
    if augment:
        x = augment_batch(x, generator)
    return x


def augment_batch(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Random 4-pixel-padded crops and horizontal flips (Sec. 4.2), per image, on the images' device."""
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:])
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dev = x.device
    dy = torch.randint(0, 9, (n,), generator=generator).to(dev)
    dx = torch.randint(0, 9, (n,), generator=generator).to(dev)
    flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
    rows = (dy[:, None] + torch.arange(h, device=dev)[None, :])  # (n, h)
    cols = (dx[:, None] + torch.arange(w, device=dev)[None, :])  # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = padded[torch.arange(n, device=dev)[:, None, None, None], torch.arange(x.shape[1], device=dev)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]
    return out.reshape(*lead, *out.shape[1:])


# --------------------------------------------------------------------------- models of a group


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _init_model(cfg: RunConfig, num_classes: int, image_shape: tuple) -> nn.Module:
    torch.manual_seed(cfg.seed)  # the run's initialisation comes from its own seed
    return _models.build(cfg.model, num_classes, image_shape[0], image_size=tuple(image_shape[1:]),
                         **dict(cfg.model_kwargs))


class _Stacked:
    """R independent copies of one architecture, evaluated together with vmap."""

    def __init__(self, modules: list[nn.Module], device):
        self.base = copy.deepcopy(modules[0]).to("meta")
        params, buffers = stack_module_state([m.to(device) for m in modules])
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = buffers

        def one(p, b, x):
            return functional_call(self.base, (p, b), (x,))

        self._f = vmap(one, in_dims=(0, 0, 0))

    def parameters(self) -> list[Tensor]:
        return list(self.params.values())

    def __call__(self, x: Tensor) -> Tensor:  # x: (R, B, ...)
        return self._f(self.params, self.buffers, x)

    def train(self) -> None:
        pass

    def eval(self) -> None:
        pass

    def snapshot(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.params.items()}

    def evaluate_with(self, snap: dict[str, Tensor], x: Tensor) -> Tensor:
        return self._f(snap, self.buffers, x)

    def update_snapshot(self, snap: dict[str, Tensor], mask: Tensor) -> None:
        for k, v in self.params.items():
            m = mask.view(-1, *([1] * (v.dim() - 1)))
            snap[k].copy_(torch.where(m, v.detach(), snap[k]))


class SingleModel:
    """One run with its own module (BatchNorm models), behind the same interface as :class:`_Stacked`.

    ``channels_last`` stores weights and inputs in NHWC order (faster convolutions
    on GPUs); ``compile`` runs the forward pass through :func:`torch.compile`.
    """

    def __init__(self, module: nn.Module, device, channels_last: bool = False, compile: bool = False):
        self.m = module.to(device)
        self.channels_last = channels_last
        if channels_last:
            self.m = self.m.to(memory_format=torch.channels_last)
        self.fwd = torch.compile(self.m) if compile else self.m

    def _x(self, x: Tensor) -> Tensor:
        x = x[0]
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def parameters(self) -> list[Tensor]:
        return list(self.m.parameters())

    def __call__(self, x: Tensor) -> Tensor:
        return self.fwd(self._x(x)).unsqueeze(0)

    def train(self) -> None:
        self.m.train()

    def eval(self) -> None:
        self.m.eval()

    def snapshot(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.m.state_dict().items()}

    def evaluate_with(self, snap: dict[str, Tensor], x: Tensor) -> Tensor:
        current = self.snapshot()
        self.m.load_state_dict(snap)
        try:
            return self.fwd(self._x(x)).unsqueeze(0)
        finally:
            self.m.load_state_dict(current)

    def update_snapshot(self, snap: dict[str, Tensor], mask: Tensor) -> None:
        if bool(mask[0]):
            for k, v in self.m.state_dict().items():
                snap[k].copy_(v)


# --------------------------------------------------------------------------- losses of a group


def vectorised_losses(configs: Sequence[RunConfig]) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    """Per-sample losses ``(R, B)`` of R runs, each with its own method, without a loop over runs.

    Returns ``f(logits, y, T_log)`` for ``logits`` ``(R, B, c)``, ``y`` ``(R, B)``
    and ``T_log`` ``(R, c, c)`` = ``log T`` of the forward-corrected runs.
    CCE (Eq. 2), MAE (Eq. 4), ``L_q`` (Eq. 6, via :mod:`gce.losses`' log-space
    form) and forward correction (Eq. 1); truncated ``L_q`` gives plain ``L_q``
    here, its weights are applied by the caller (Eq. 13).  Each row equals the
    corresponding function of :mod:`gce.losses` (tested).
    """
    methods = [c.method for c in configs]
    q = torch.tensor([c.q if c.method in ("lq", "trunc_lq") else 1.0 for c in configs])
    masks = {m: torch.tensor([x == m for x in methods]) for m in set(methods)}

    def f(logits: Tensor, y: Tensor, T_log: Tensor | None) -> Tensor:
        dev = logits.device
        logp = F.log_softmax(logits.float(), dim=-1)
        log_fy = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        out = torch.zeros_like(log_fy)
        for m, mask in masks.items():
            if m == "cce":
                val = -log_fy
            elif m == "mae":
                val = 2 - 2 * log_fy.exp()
            elif m in ("lq", "trunc_lq"):
                val = _losses.lq_from_log(log_fy, q.to(dev)[:, None])
            elif m in LATER_METHODS:  # only the runs of this method: (r, B, c) as (r * B, c)
                rows = mask.to(dev).nonzero().squeeze(1)
                mine = _losses.LATER_LOSSES[m](logits[rows].float().flatten(0, 1), y[rows].flatten(),
                                               reduction="none", validate=False).view(len(rows), -1)
                out = out.index_copy(0, rows, mine.to(out.dtype))
                continue
            else:  # forward_T / forward_T_hat: -log sum_i f_i T[i, y], with log T[i, y_b] gathered per run
                cols = T_log.gather(2, y[:, None, :].expand(-1, T_log.shape[1], -1)).transpose(1, 2)
                val = -torch.logsumexp(logp + cols, dim=-1)
            out = torch.where(mask.to(dev)[:, None], val, out)
        return out

    return f


class LossHead:
    """The per-sample losses of a chunk's runs and their gradient with respect to the logits, by formula.

    Covers :data:`HANDLED` only (:meth:`handles`); the later losses (:data:`LATER_METHODS`) go through autograd.
    Every method but forward correction is a function of ``log f_y`` alone: CCE ``-log f_y`` (Eq. 2), MAE
    ``2 - 2 f_y`` (Eq. 4), ``L_q`` ``(1 - f_y^q) / q`` (Eq. 6).  Its gradient is ``s f_y^q (p - e_y)``, with
    ``(s, q) = (1, 0)``, ``(2, 1)`` and ``(1, q)``.  Forward correction (Eq. 1), ``-log sum_i p_i T[i, y]``,
    has gradient ``p - softmax(log p + log T[:, y])``.  The classes lie along ``dim`` of the logits; the
    losses come out ``(R, n)``.  Tricks.hand_loss_grad; equal to autograd through :func:`vectorised_losses`
    (tested).
    """

    HANDLED = ("cce", "mae", "lq", "trunc_lq", "forward_T", "forward_T_hat")

    @classmethod
    def handles(cls, configs: Sequence[RunConfig]) -> bool:
        """Whether every run's method has its gradient written out here."""
        return all(c.method in cls.HANDLED for c in configs)

    def __init__(self, configs: Sequence[RunConfig], device):
        methods = [c.method for c in configs]
        other = sorted({m for m in methods if m not in self.HANDLED})
        if other:
            raise ValueError(f"the loss head has no gradient formula for method(s) {', '.join(other)}: "
                             f"use autograd (Tricks.hand_loss_grad off)")
        q = [c.q if m in ("lq", "trunc_lq") else 1.0 if m == "mae" else 0.0 for c, m in zip(configs, methods)]
        self.q = torch.tensor(q, device=device)[:, None]
        self.q_safe = torch.where(self.q == 0, torch.ones_like(self.q), self.q)
        self.is_cce = self.q == 0
        self.scale = torch.tensor([2.0 if m == "mae" else 1.0 for m in methods], device=device)[:, None]
        forward = [m in ("forward_T", "forward_T_hat") for m in methods]
        self.forward = torch.tensor(forward, device=device)[:, None] if any(forward) else None

    def _parts(self, z: Tensor, y: Tensor, T_log: Tensor | None, dim: int):
        lp = torch.log_softmax(z, dim)
        yd = y.unsqueeze(dim)
        lf = lp.gather(dim, yd).squeeze(dim)
        val = torch.where(self.is_cce, -lf, _losses.lq_from_log(lf, self.q_safe)) * self.scale
        fwd = None
        if self.forward is not None:  # log T[i, y_b] of each run, laid out like the logits
            c = T_log.shape[1]
            cols = T_log.gather(2, y.unsqueeze(1).expand(-1, c, -1))
            a = lp + (cols if dim == 1 else cols.transpose(1, 2))
            top = a.amax(dim, keepdim=True)  # logsumexp by hand: torch.logsumexp is slow along dim 1 on the CPU
            e = (a - top).exp()
            total = e.sum(dim, keepdim=True)
            val = torch.where(self.forward, -(total.log() + top).squeeze(dim), val)
            fwd = e / total  # softmax(a)
        return lp, yd, lf, val, fwd

    def losses(self, z: Tensor, y: Tensor, T_log: Tensor | None, dim: int) -> Tensor:
        """Per-sample losses ``(R, n)`` of logits ``z`` (classes along ``dim``) and labels ``y`` ``(R, n)``."""
        return self._parts(z, y, T_log, dim)[3]

    def losses_and_grad(self, z: Tensor, y: Tensor, T_log: Tensor | None, dim: int,
                        factor: Tensor) -> tuple[Tensor, Tensor]:
        """Per-sample losses ``(R, n)`` and the gradient of ``sum factor * loss`` with respect to ``z``."""
        lp, yd, lf, val, fwd = self._parts(z, y, T_log, dim)
        p = lp.exp()
        coef = (self.scale * torch.exp(self.q * lf) * factor).unsqueeze(dim)
        g = (p * coef).scatter_add_(dim, yd, -coef)
        if fwd is not None:
            gf = (p - fwd) * factor.unsqueeze(dim)
            g = torch.where(self.forward.unsqueeze(-1), gf, g)
        return val, g


def run_losses(logits: Tensor, y: Tensor, configs: Sequence[RunConfig], T_log: Tensor | None) -> Tensor:
    """Per-sample losses ``(R, B)`` of R runs with their own methods (see :func:`vectorised_losses`)."""
    return vectorised_losses(configs)(logits, y, T_log)


# --------------------------------------------------------------------------- T-hat (Patrini et al. 2017)


def estimate_transition(probs: Tensor, quantile: float = 0.97) -> Tensor:
    """Patrini et al.'s (2017) estimate of ``T`` from softmax outputs ``probs`` ``(N, c)`` of a trained model.

    For each class ``i`` the anchor is chosen as in Patrini et al.'s reference
    code (``loss-correction``, ``filter_outlier=True``): the threshold is the
    ``quantile`` (0.97, i.e. the 97th percentile, *not* 97) of ``p_i`` over
    the samples, taken at the next sample value above it (numpy's
    ``interpolation='higher'``); every sample at or above the threshold counts
    as an outlier, and the anchor is the sample with the largest ``p_i``
    strictly below it (the first such sample on ties; sample 0 when none is
    below).  Row ``i`` of ``T-hat`` is the anchor's softmax output, normalised
    to sum to 1, so ``T-hat`` is row-stochastic with ``T-hat[i, j] ~ p(noisy j
    | true i)`` (rows: true classes, the convention of :mod:`gce.noise`;
    cleanlab's noise matrix is the transpose).  Unlike the reference code,
    the input is not modified (the reference zeroes the outliers of column
    ``i`` in place, which later rows of ``T-hat`` then read).
    """
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1] (0.97 for the 97th percentile), got {quantile!r}")
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.dim() != 2:
        raise ValueError(f"probs must have shape (N, c), got {tuple(probs.shape)}")
    if probs.numel() and not bool(((probs >= 0) & (probs <= 1)).all()):  # NaN fails too
        bad = probs[~((probs >= 0) & (probs <= 1))][0].item()
        raise ValueError(f"probs must be softmax outputs in [0, 1], found {bad}")
    c = probs.shape[1]
    T = torch.empty(c, c, dtype=torch.float64)
    for i in range(c):
        col = probs[:, i]
        thresh = torch.quantile(col, quantile, interpolation="higher")
        robust = torch.where(col >= thresh, torch.zeros_like(col), col)
        T[i] = probs[int(torch.argmax(robust))]
    return T / T.sum(dim=1, keepdim=True)


# --------------------------------------------------------------------------- the engine's switches


@dataclass(frozen=True)
class Tricks:
    """The speed tricks of the MLP engine, each switchable where it is applied (as airbench does).

    With every switch on (the default), a group of BatchNorm-free ``mlp`` runs
    is trained by :func:`_train_mlp_group`; ``mlp_engine=False`` trains it with
    the general path instead (vmap of the modules, autograd, ``torch.optim``),
    which is the reference the engine is tested against.  The others switch one
    trick of the engine off, so ``benchmarks/pocket.py`` can measure each:

    ``fused_bias``
        bias added inside the batched matrix product (``baddbmm``), not after it
    ``run_chunk``
        runs trained together through all epochs, sized for the cache (0: the whole group)
    ``foreach_optim``
        ``torch._foreach_*`` SGD / Adam steps with ``torch.optim``'s formulas
    ``hand_grad``
        the layers' gradients written out (checked against autograd); off: autograd
    ``shared_test_matmul``
        the shared test set through the first layer of all runs as one matrix product per block of 128 test
        images
    ``prune_only_pruning``
        the pruning forward pass only for the runs that prune at that epoch
    ``float_bank``
        images converted to float and centred once per group, not once per minibatch
    ``class_major``
        the last layer's logits laid out ``(R, classes, n)``, computed as ``W h^T``: a faster product for few
        classes, and softmax along a dimension the CPU vectorises
    ``hand_loss_grad``
        the loss head's gradient ``dLoss/dlogits`` by formula (``LossHead``), not autograd
    ``epoch_gather``
        each epoch's shuffled images, labels and weights gathered once, sliced per minibatch
    """

    mlp_engine: bool = True
    fused_bias: bool = True
    run_chunk: int = 32
    foreach_optim: bool = True
    hand_grad: bool = True
    shared_test_matmul: bool = True
    prune_only_pruning: bool = True
    float_bank: bool = True
    class_major: bool = True
    hand_loss_grad: bool = True
    epoch_gather: bool = True

    def off(self, name: str) -> "Tricks":
        """The same switches with ``name`` off (``run_chunk`` off means one chunk for the whole group)."""
        if name not in {f.name for f in fields(self)}:
            raise ValueError(f"unknown trick {name!r}; known: {', '.join(f.name for f in fields(self))}")
        return replace(self, **{name: 0 if name == "run_chunk" else False})


# --------------------------------------------------------------------------- training loop


def _check_group(configs: Sequence[RunConfig]) -> None:
    keys = {group_key(c) for c in configs}
    if len(keys) != 1:
        raise ValueError("train_many groups runs by dataset/model/schedule; this group mixes "
                         f"{len(keys)} different settings")


def split_groups(configs: Sequence[RunConfig], max_group: int) -> list[list[int]]:
    """Indices of ``configs`` in groups of at most ``max_group`` runs that share a :func:`group_key`."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(group_key(c), []).append(i)
    out = []
    for idx in groups.values():
        for s in range(0, len(idx), max_group):
            out.append(idx[s:s + max_group])
    return out


def train(config: RunConfig, *, T: Tensor | None = None, device=None, root=None, progress: bool = False,
          tricks: Tricks | None = None) -> RunResult:
    """Train one run; see :func:`train_many`."""
    return train_many([config], transitions={0: T} if T is not None else None, device=device, root=root,
                      progress=progress, tricks=tricks)[0]


def train_many(configs: Sequence[RunConfig], *, transitions: dict[int, Tensor] | None = None, device=None,
               root=None, max_group: int = 256, progress: bool = False, keep_models: bool = False,
               tricks: Tricks | None = None) -> list[RunResult]:
    """Train every run of ``configs`` (Sec. 4), batching those that can share a group.

    ``transitions[i]`` is the ``T-hat`` of run ``i`` when its method is
    ``"forward_T_hat"`` (required for those).  ``keep_models`` stores each
    run's best-validation model in ``result.extra["model"]`` (for estimating
    ``T-hat`` from a CCE run).  ``tricks``
    switches the engine's speed tricks (:class:`Tricks`; all on by default).
    The caller's global torch random state is left as it was: every random
    draw comes from the runs' own seeds.
    """
    configs = list(configs)
    transitions = transitions or {}
    tricks = tricks or Tricks()
    for i, c in enumerate(configs):
        if c.method == "forward_T_hat" and i not in transitions:
            raise ValueError(f"run {i} uses forward_T_hat but no estimated T was given in transitions[{i}]")
    device = torch.device(device) if device is not None else torch.device("cpu")
    results: list[RunResult | None] = [None] * len(configs)
    cache: dict = {}
    groups = split_groups(configs, max_group)
    bar = _progress(sum(len(g) * configs[g[0]].epochs for g in groups), progress)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for g in groups:
            group_cfgs = [configs[i] for i in g]
            group_T = {j: transitions[i] for j, i in enumerate(g) if i in transitions}
            out = _train_group(group_cfgs, group_T, device, root, cache, bar, keep_models, tricks)
            for i, r in zip(g, out):
                results[i] = r
    if bar is not None:
        bar.close()
    return results  # type: ignore[return-value]


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc="run-epochs", unit="run-epoch", leave=False)


def _tick(bar, runs: int, test_acc: Tensor) -> None:
    if bar is not None:
        bar.update(runs)
        bar.set_postfix(test_acc=f"{float(test_acc.mean()):.3f}")


def _make_optimizer(cfg: RunConfig, params: list[Tensor]):
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    return opt, sched


def _transition_logs(configs, gd: _GroupData, group_T: dict, device) -> tuple[Tensor | None, list]:
    c = gd.num_classes
    used = []
    needed = any(cfg.method.startswith("forward") for cfg in configs)
    logs = torch.zeros(len(configs), c, c, dtype=torch.float32)
    for r, cfg in enumerate(configs):
        T = None
        if cfg.method == "forward_T":
            T = gd.T[r] if gd.T[r] is not None else torch.eye(c, dtype=torch.float64)
        elif cfg.method == "forward_T_hat":
            T = _losses.check_transition_matrix(torch.as_tensor(group_T[r], dtype=torch.float64), c)
        if T is not None:
            logs[r] = torch.log(T.to(torch.float64).clamp_min(1e-30)).float()
            used.append(T.tolist())
        else:
            used.append(None)
    return (logs.to(device) if needed else None), used


@torch.no_grad()
def _forward_chunks(model, x_uint8_idx: Tensor, bank: Tensor, mean: Tensor, chunk: int, snap=None) -> Tensor:
    """Logits ``(R, N, c)`` of each run on its own index list ``(R, N)`` into ``bank`` (no augmentation)."""
    outs = []
    for s in range(0, x_uint8_idx.shape[1], chunk):
        x = preprocess(bank[x_uint8_idx[:, s:s + chunk]], mean, False, None)
        outs.append(model(x) if snap is None else model.evaluate_with(snap, x))
    return torch.cat(outs, dim=1)


def _augment_per_run(x: Tensor, gens: list[torch.Generator]) -> Tensor:
    """Sec. 4.2's crops and flips of ``x`` ``(R, b, C, H, W)``, run ``r`` drawing from its own generator."""
    return torch.stack([augment_batch(x[r], g) for r, g in enumerate(gens)])


def _train_group(configs: list[RunConfig], group_T: dict, device, root, cache, bar, keep_models,
                 tricks: Tricks) -> list[RunResult]:
    """One group of runs sharing a :func:`group_key`: the MLP engine, the vmap path or one run at a time."""
    _check_group(configs)
    gd = build_group_data(configs, root, cache)
    modules = [_init_model(cfg, gd.num_classes, tuple(gd.bank.shape[1:])) for cfg in configs]
    T_log, T_used = _transition_logs(configs, gd, group_T, device)
    if _mlp_engine_applies(configs[0], modules[0], tricks):
        hist, best_epoch, best = _train_mlp_group(configs, gd, modules, T_log, device, bar, tricks)
    elif _has_batchnorm(modules[0]) and len(configs) > 1:  # BatchNorm: one run at a time
        out = []
        for j, cfg in enumerate(configs):
            out += _train_group([cfg], {0: group_T[j]} if j in group_T else {}, device, root, cache, bar,
                                keep_models, tricks)
        return out
    else:
        hist, best_epoch, best = _train_general_group(configs, gd, modules, T_log, device, bar)
    return _results(configs, gd, hist, best_epoch, T_used, modules if keep_models else None, best)


def _results(configs, gd: _GroupData, hist: dict, best_epoch: list[int], T_used: list,
             modules: list[nn.Module] | None, best: list[dict[str, Tensor]]) -> list[RunResult]:
    """One :class:`RunResult` per run; with ``modules``, each run's best-validation model in ``extra``."""
    results = []
    for r, cfg in enumerate(configs):
        h = {k: hist[k][r] for k in HISTORY_KEYS}
        be = int(best_epoch[r])
        res = RunResult(cfg, h, be, h["test_acc"][be], h["test_acc"][-1], gd.flip_train[r], gd.flip_val[r],
                        T_used[r])
        if modules is not None:
            model = copy.deepcopy(modules[r])
            model.load_state_dict({**model.state_dict(), **best[r]})
            res.extra["model"] = model.eval().cpu()
            res.extra["preprocess_mean"] = gd.mean
            res.extra["train_images"] = gd.bank[gd.train_idx[r]]
        results.append(res)
    return results


# --------------------------------------------------------------------------- the general path (any model)


class _GroupTensors:
    """A group's data on the device."""

    def __init__(self, gd: _GroupData, device):
        self.bank, self.mean = gd.bank.to(device), gd.mean.to(device)
        self.train_idx, self.train_y = gd.train_idx.to(device), gd.train_y.to(device)
        self.train_clean = gd.train_clean.to(device)
        self.val_idx, self.val_y = gd.val_idx.to(device), gd.val_y.to(device)
        self.test_x, self.test_y = gd.test_x.to(device), gd.test_y.to(device)


class _Pruning:
    """Algorithm 1's per-sample weights of a group and the constants of Eq. 13."""

    def __init__(self, configs: Sequence[RunConfig], N: int, device):
        R = len(configs)
        self.weights = torch.ones(R, N, device=device)
        self.pruned = torch.tensor([cfg.uses_pruning for cfg in configs], device=device)
        self.lq_k = torch.tensor([_losses.lq_of_probability(cfg.k, cfg.q) if cfg.uses_pruning else 0.0
                                  for cfg in configs], device=device)
        self.ks = torch.tensor([cfg.k if cfg.uses_pruning else 0.0 for cfg in configs], device=device)
        self.prune_at = [set(cfg.prune_epochs()) for cfg in configs]
        # runs whose pruning starts at their own validation-loss plateau (Table 2), and their curves so far
        self.waiting = {r: [] for r, cfg in enumerate(configs) if cfg.uses_pruning and cfg.prune_rule == "plateau"}
        self.configs = list(configs)

    def runs_pruning_at(self, epoch: int) -> list[int]:
        return [r for r, p in enumerate(self.prune_at) if epoch in p]

    def observe(self, epoch: int, val_loss: Tensor) -> None:
        """After ``epoch`` (0-based): schedule the pruning of the runs whose validation loss has just plateaued
        (:func:`gce.schedule.plateau_epoch`): from the next epoch on, every ``prune_every`` epochs."""
        if not self.waiting:
            return
        values = val_loss.tolist()
        for r in list(self.waiting):
            self.waiting[r].append(values[r])
            if _schedule.plateau_epoch(self.waiting[r]) is not None:
                cfg = self.configs[r]
                self.prune_at[r] = set(range(epoch + 1, cfg.epochs, cfg.prune_every))
                del self.waiting[r]

    def update(self, runs: list[int], logits: Tensor, train_y: Tensor, dim: int = -1) -> None:
        """New weights ``1[f_y >= k]`` (Eq. 13) of ``runs`` from their logits (classes along ``dim``)."""
        idx = torch.tensor(runs, device=self.weights.device)
        fy = F.softmax(logits.float(), dim).gather(dim, train_y[idx].unsqueeze(dim)).squeeze(dim)
        self.weights[idx] = (fy >= self.ks[idx, None]).float()

    def sample_weights(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """``(w, sum w)`` of Eq. 13 from the minibatch's stored weights ``w`` ``(R, n)`` (1 for runs that don't prune)."""
        w = torch.where(self.pruned[:, None], w, torch.ones_like(w))
        return w, w.sum(1).clamp_min(1.0)

    def objective(self, per: Tensor, w: Tensor) -> Tensor:
        """Each run's loss on a minibatch: Eq. 13's weighted mean of ``L_q(f) - L_q(k)`` (plain mean without pruning).

        ``w``: the minibatch's stored weights ``(R, n)``, e.g. ``self.weights[rows, pos]``.
        """
        return self.weighted_mean(per, *self.sample_weights(w))

    def weighted_mean(self, per: Tensor, w: Tensor, total: Tensor) -> Tensor:
        """:meth:`objective` from ``(w, total)`` already computed by :meth:`sample_weights`."""
        offset = torch.where(self.pruned, self.lq_k, torch.zeros_like(self.lq_k))[:, None]
        return ((per - offset) * w).sum(1) / total


def _improved(val_acc: Tensor, val_loss: Tensor, best_val: Tensor, best_loss: Tensor) -> Tensor:
    """The selection rule (Sec. 4.2: the model of the epoch with the best noisy-validation accuracy): a higher
    validation accuracy, or the same accuracy with a lower validation loss (ties go to neither the earliest
    nor the latest epoch, which would favour fast or slow learners)."""
    return (val_acc > best_val) | ((val_acc == best_val) & (val_loss < best_loss))


def _softmax_on_train(logits: Tensor, train_y: Tensor, clean: Tensor, dim: int = -1) -> tuple[Tensor, Tensor]:
    """Mean ``f_{y~}`` on the training samples whose label is right and on those whose label is wrong (Fig. 1c)."""
    fy = F.softmax(logits.float(), dim).gather(dim, train_y.unsqueeze(dim)).squeeze(dim)
    cl = clean.float()
    return (fy * cl).sum(1) / cl.sum(1).clamp_min(1), (fy * (1 - cl)).sum(1) / (1 - cl).sum(1).clamp_min(1)


class _History:
    """Per-epoch values of every run, kept on the device and converted to lists once at the end."""

    def __init__(self):
        self.rows: dict[str, list[Tensor]] = {k: [] for k in HISTORY_KEYS}

    def add(self, **values: Tensor) -> None:
        for k, v in values.items():
            self.rows[k].append(v.detach().float())

    def lists(self) -> dict[str, list[list[float]]]:
        return {k: torch.stack(v, 1).cpu().tolist() for k, v in self.rows.items()}


def _train_general_group(configs, gd: _GroupData, modules, T_log, device, bar):
    """Any model: vmap over the stacked modules (BatchNorm-free) or one module (BatchNorm), autograd, torch.optim."""
    cfg0 = configs[0]
    R, N = gd.train_idx.shape
    model = SingleModel(modules[0], device, cfg0.channels_last, cfg0.compile) if _has_batchnorm(modules[0]) \
        else _Stacked(modules, device)
    autocast = autocast_context(cfg0.precision, device)
    t = _GroupTensors(gd, device)
    loss_fn = vectorised_losses(configs)
    opt, sched = _make_optimizer(cfg0, model.parameters())
    gens = [torch.Generator().manual_seed(10_000 + cfg.seed) for cfg in configs]
    aug_gens = [torch.Generator().manual_seed(20_000 + cfg.seed) for cfg in configs]
    prune = _Pruning(configs, N, device)
    best_val = torch.full((R,), -1.0, device=device)
    best_loss = torch.full((R,), float("inf"), device=device)
    best_epoch = torch.zeros(R, dtype=torch.long, device=device)
    best_snap = model.snapshot()
    hist = _History()
    chunk = 1024
    rows = torch.arange(R, device=device)[:, None]
    for epoch in range(cfg0.epochs):
        runs = prune.runs_pruning_at(epoch)
        if runs:  # Algorithm 1: from the best-validation parameters, eval mode, no augmentation
            model.eval()
            with autocast():
                logits = _forward_chunks(model, t.train_idx, t.bank, t.mean, chunk, snap=best_snap)
            prune.update(runs, logits[runs], t.train_y)
        model.train()
        perms = torch.stack([torch.randperm(N, generator=g) for g in gens]).to(device)
        sum_loss = torch.zeros(R, device=device)
        n_batches = 0
        for s in range(0, N, cfg0.batch_size):
            pos = perms[:, s:s + cfg0.batch_size]
            x = preprocess(t.bank[t.train_idx[rows, pos]], t.mean, False, None)
            if cfg0.augment:
                x = _augment_per_run(x, aug_gens)
            with autocast():
                logits_b = model(x)
            run_loss = prune.objective(loss_fn(logits_b, t.train_y[rows, pos], T_log), prune.weights[rows, pos])
            opt.zero_grad(set_to_none=True)
            run_loss.sum().backward()
            opt.step()
            sum_loss += run_loss.detach()
            n_batches += 1
        sched.step()
        model.eval()
        with torch.no_grad(), autocast():
            v_logits = _forward_chunks(model, t.val_idx, t.bank, t.mean, chunk)
            val_acc = (v_logits.argmax(-1) == t.val_y).float().mean(1)
            val_loss = loss_fn(v_logits, t.val_y, T_log).mean(1)
            t_logits = torch.cat([model(preprocess(t.test_x[s:s + chunk], t.mean, False, None)
                                        .unsqueeze(0).expand(R, -1, -1, -1, -1))
                                  for s in range(0, t.test_x.shape[0], chunk)], dim=1)
            test_acc = (t_logits.argmax(-1) == t.test_y).float().mean(1)
            if cfg0.track_train_softmax:
                soft_clean, soft_noisy = _softmax_on_train(_forward_chunks(model, t.train_idx, t.bank, t.mean, chunk),
                                                           t.train_y, t.train_clean)
            else:
                soft_clean = soft_noisy = torch.full((R,), float("nan"), device=device)
            improved = _improved(val_acc, val_loss, best_val, best_loss)
            model.update_snapshot(best_snap, improved)
            best_val = torch.where(improved, val_acc, best_val)
            best_loss = torch.where(improved, val_loss, best_loss)
            best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch), best_epoch)
        hist.add(train_loss=sum_loss / max(n_batches, 1), val_acc=val_acc, val_loss=val_loss, test_acc=test_acc,
                 softmax_clean=soft_clean, softmax_noisy=soft_noisy, kept=prune.weights.mean(1))
        prune.observe(epoch, val_loss)
        _tick(bar, R, test_acc)
    if isinstance(model, _Stacked):
        best = [{k: v[r].cpu() for k, v in best_snap.items()} for r in range(R)]
    else:
        best = [{k: v.cpu() for k, v in best_snap.items()}]
    return hist.lists(), best_epoch.cpu().tolist(), best


# --------------------------------------------------------------------------- the MLP engine


def _mlp_engine_applies(cfg: RunConfig, module: nn.Module, tricks: Tricks) -> bool:
    """The engine trains BatchNorm-free ``mlp`` groups in float32 (any input size, hidden sizes, classes)."""
    return (tricks.mlp_engine and cfg.model == "mlp" and cfg.precision == "fp32" and not cfg.compile
            and not _has_batchnorm(module))


def mlp_forward(params: list[Tensor], x: Tensor, fused_bias: bool, keep: bool = False,
                 class_major: bool = False):
    """Logits of R stacked MLPs ``[W_1, b_1, ..., W_L, b_L]`` (``W``: ``(R, out, in)``) on ``x`` ``(R, n, in)``.

    The logits are ``(R, n, c)``, or ``(R, c, n)`` with ``class_major`` (Tricks.class_major: the last layer as
    ``W_L h^T``).  With ``keep``, also each layer's input (the previous layer's ReLU output), which the
    backward pass needs.
    """
    inputs = []
    h = x
    L = len(params) // 2
    for layer in range(L):
        W, b = params[2 * layer], params[2 * layer + 1]
        if keep:
            inputs.append(h)
        if class_major and layer == L - 1:
            if fused_bias:
                return torch.baddbmm(b.unsqueeze(2), W, h.transpose(1, 2)), inputs
            return torch.bmm(W, h.transpose(1, 2)) + b.unsqueeze(2), inputs
        if fused_bias:  # Tricks.fused_bias
            z = torch.baddbmm(b.unsqueeze(1), h, W.transpose(1, 2))
        else:
            z = torch.bmm(h, W.transpose(1, 2)) + b.unsqueeze(1)
        h = z.relu_() if layer < L - 1 else z
    return h, inputs


def mlp_backward(params: list[Tensor], inputs: list[Tensor], g: Tensor, class_major: bool = False) -> list[Tensor]:
    """The gradients of ``params`` from ``g = dLoss/dlogits`` (Tricks.hand_grad; tested against autograd).

    ``g`` is ``(R, n, c)``, or ``(R, c, n)`` with ``class_major``.
    """
    grads: list[Tensor] = [None] * len(params)  # type: ignore[list-item]
    top = len(params) // 2 - 1
    for layer in reversed(range(top + 1)):
        h = inputs[layer]
        if class_major and layer == top:
            grads[2 * layer] = torch.bmm(g, h)
            grads[2 * layer + 1] = g.sum(2)
            g = g.transpose(1, 2)
        else:
            grads[2 * layer] = torch.bmm(g.transpose(1, 2), h)
            grads[2 * layer + 1] = g.sum(1)
        if layer > 0:  # through W, then through the ReLU that produced h
            g = torch.ops.aten.threshold_backward(torch.bmm(g, params[2 * layer]), h, 0)
    return grads


class ForeachSGD:
    """``torch.optim.SGD`` (momentum, weight decay, no dampening or Nesterov) as ``torch._foreach_*`` steps."""

    def __init__(self, params: list[Tensor], momentum: float, weight_decay: float):
        self.params, self.momentum, self.weight_decay = params, momentum, weight_decay
        self.bufs: list[Tensor] | None = None

    @torch.no_grad()
    def step(self, grads: list[Tensor], lr: float) -> None:
        if self.weight_decay != 0:  # in place: the gradients are the engine's own tensors
            torch._foreach_add_(grads, self.params, alpha=self.weight_decay)
        if self.momentum != 0:
            if self.bufs is None:
                self.bufs = [g.detach().clone() for g in grads]
            else:
                torch._foreach_mul_(self.bufs, self.momentum)
                torch._foreach_add_(self.bufs, grads, alpha=1)
            grads = self.bufs
        torch._foreach_add_(self.params, grads, alpha=-lr)


class ForeachAdam:
    """``torch.optim.Adam`` (default betas and eps, L2 weight decay, no amsgrad) as ``torch._foreach_*`` steps."""

    def __init__(self, params: list[Tensor], weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.weight_decay, self.betas, self.eps = params, weight_decay, betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads: list[Tensor], lr: float) -> None:
        beta1, beta2 = self.betas
        self.t += 1
        if self.weight_decay != 0:  # in place: the gradients are the engine's own tensors
            torch._foreach_add_(grads, self.params, alpha=self.weight_decay)
        torch._foreach_lerp_(self.exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, value=1 - beta2)
        step = float(self.t)
        step_size = lr / (1 - beta1 ** step)
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denom, (1 - beta2 ** step) ** 0.5)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.exp_avg, denom, value=-step_size)


class _TorchOptim:
    """``torch.optim`` over the stacked tensors (Tricks.foreach_optim off), behind the same ``step``."""

    def __init__(self, cfg: RunConfig, params: list[Tensor]):
        self.params = params
        self.opt, _ = _make_optimizer(replace(cfg, milestones=()), params)

    def step(self, grads: list[Tensor], lr: float) -> None:
        for p, g in zip(self.params, grads):
            p.grad = g
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()


def lr_schedule(cfg: RunConfig) -> list[float]:
    """The learning rate of each epoch, as ``torch.optim.lr_scheduler.MultiStepLR`` computes it."""
    lrs, lr = [], cfg.lr
    for epoch in range(cfg.epochs):
        lrs.append(lr)
        if epoch + 1 in cfg.milestones:
            lr = lr * cfg.gamma ** list(cfg.milestones).count(epoch + 1)
    return lrs


def _train_mlp_group(configs, gd: _GroupData, modules, T_log, device, bar, tricks: Tricks):
    """Train a group of MLP runs in chunks of ``tricks.run_chunk`` runs; same outputs as the general path."""
    R = len(configs)
    t = _GroupTensors(gd, device)
    if tricks.float_bank:  # Tricks.float_bank: preprocess once (Sec. 4.2's per-pixel mean), flattened
        bank = preprocess(t.bank, t.mean, False, None).flatten(1)
        test = preprocess(t.test_x, t.mean, False, None).flatten(1)
    else:
        bank = test = None
    names = [n for n, _ in modules[0].named_parameters()]
    step = tricks.run_chunk if tricks.run_chunk > 0 else R
    parts = []
    for a in range(0, R, step):
        sl = slice(a, min(a + step, R))
        params = [torch.stack([dict(m.named_parameters())[n].detach() for m in modules[sl]]).to(device).contiguous()
                  for n in names]
        parts.append(_train_mlp_chunk(configs[sl], params, t, sl, bank, test,
                                      None if T_log is None else T_log[sl], bar, tricks))
    hist = {k: sum((p[0][k] for p in parts), []) for k in HISTORY_KEYS}
    best_epoch = sum((p[1] for p in parts), [])
    best = [dict(zip(names, (w[r].cpu() for w in p[2]))) for p in parts for r in range(len(p[1]))]
    return hist, best_epoch, best


def _train_mlp_chunk(configs, params: list[Tensor], t: _GroupTensors, sl: slice, bank, test, T_log, bar,
                     tricks: Tricks):
    """All epochs of one chunk of MLP runs: minibatch steps, pruning, evaluation, best-validation snapshot."""
    cfg0 = configs[0]
    device = params[0].device
    R = len(configs)
    train_idx, train_y, val_idx, val_y = t.train_idx[sl], t.train_y[sl], t.val_idx[sl], t.val_y[sl]
    N = train_idx.shape[1]
    fused, cm = tricks.fused_bias, tricks.class_major
    dim = 1 if cm else -1  # where the classes lie in the logits

    def images(idx: Tensor) -> Tensor:  # (R, n) indices -> (R, n, features), centred floats
        if bank is not None:  # index_select: a few times faster than bank[idx] on the CPU, the same values
            return bank.index_select(0, idx.reshape(-1)).view(*idx.shape, -1)
        return preprocess(t.bank[idx], t.mean, False, None).flatten(2)

    def logits_of(p: list[Tensor], idx: Tensor) -> Tensor:
        return mlp_forward(p, images(idx), fused, class_major=cm)[0]

    loss_fn = vectorised_losses(configs)
    head = LossHead(configs, device) if tricks.hand_loss_grad and LossHead.handles(configs) else None

    if tricks.hand_grad:
        params = [p.detach() for p in params]
    else:
        params = [p.detach().requires_grad_(True) for p in params]
    if not tricks.foreach_optim:
        opt = _TorchOptim(cfg0, params)
    elif cfg0.optimizer == "sgd":
        opt = ForeachSGD(params, cfg0.momentum, cfg0.weight_decay)
    else:
        opt = ForeachAdam(params, cfg0.weight_decay)
    gens = [torch.Generator().manual_seed(10_000 + cfg.seed) for cfg in configs]
    aug_gens = [torch.Generator().manual_seed(20_000 + cfg.seed) for cfg in configs]
    prune = _Pruning(configs, N, device)
    best_val = torch.full((R,), -1.0, device=device)
    best_loss = torch.full((R,), float("inf"), device=device)
    best_epoch = torch.zeros(R, dtype=torch.long, device=device)
    best = [p.detach().clone() for p in params]
    hist = _History()
    rows = torch.arange(R, device=device)[:, None]
    nan = torch.full((R,), float("nan"), device=device)
    shape = tuple(t.bank.shape[1:])
    for epoch, lr in enumerate(lr_schedule(cfg0)):
        runs = prune.runs_pruning_at(epoch)
        if runs:  # Algorithm 1, from the best-validation parameters, no augmentation
            if not tricks.prune_only_pruning:
                runs_fwd = list(range(R))
            else:
                runs_fwd = runs
            idx = torch.tensor(runs_fwd, device=device)
            with torch.no_grad():
                logits = logits_of([w[idx] for w in best], train_idx[idx])
            keep = [runs_fwd.index(r) for r in runs]
            prune.update(runs, logits[keep], train_y, dim)
        perms = torch.stack([torch.randperm(N, generator=g) for g in gens]).to(device)
        if tricks.epoch_gather:  # Tricks.epoch_gather: the epoch's order gathered once, sliced per minibatch
            xs = images(train_idx.gather(1, perms))
            ys, ws = train_y.gather(1, perms), prune.weights.gather(1, perms)
        sum_loss = torch.zeros(R, device=device)
        n_batches = 0
        for s in range(0, N, cfg0.batch_size):
            if tricks.epoch_gather:
                e = s + cfg0.batch_size
                x, y, w = xs[:, s:e], ys[:, s:e], ws[:, s:e]
            else:
                pos = perms[:, s:s + cfg0.batch_size]
                x, y, w = images(train_idx[rows, pos]), train_y[rows, pos], prune.weights[rows, pos]
            if cfg0.augment:
                x = _augment_per_run(x.reshape(R, -1, *shape), aug_gens).flatten(2)
            run_loss, grads = _loss_and_grads(params, x, y, w, loss_fn, head, T_log, prune, tricks)
            opt.step(grads, lr)
            sum_loss += run_loss
            n_batches += 1
        with torch.no_grad():
            v_logits = logits_of(params, val_idx)
            val_acc = (predicted(v_logits, dim) == val_y).float().mean(1)
            val_loss = _per_sample_losses(v_logits, val_y, loss_fn, head, T_log, cm).mean(1)
            test_acc = (predicted(mlp_test_logits(params, t, test, tricks), dim) == t.test_y).float().mean(1)
            if cfg0.track_train_softmax:
                soft_clean, soft_noisy = _softmax_on_train(logits_of(params, train_idx), train_y, t.train_clean[sl],
                                                           dim)
            else:
                soft_clean = soft_noisy = nan
            improved = _improved(val_acc, val_loss, best_val, best_loss)
            if bool(improved.any()):
                idx = improved.nonzero().squeeze(1)
                for w, p in zip(best, params):
                    w[idx] = p[idx]
            best_val = torch.where(improved, val_acc, best_val)
            best_loss = torch.where(improved, val_loss, best_loss)
            best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch), best_epoch)
        hist.add(train_loss=sum_loss / max(n_batches, 1), val_acc=val_acc, val_loss=val_loss, test_acc=test_acc,
                 softmax_clean=soft_clean, softmax_noisy=soft_noisy, kept=prune.weights.mean(1))
        prune.observe(epoch, val_loss)
        _tick(bar, R, test_acc)
    return hist.lists(), best_epoch.cpu().tolist(), best


def _per_sample_losses(logits: Tensor, y: Tensor, loss_fn, head: LossHead | None, T_log, class_major: bool) -> Tensor:
    """Per-sample losses ``(R, n)``: by :class:`LossHead` (Tricks.hand_loss_grad), else by ``loss_fn``."""
    if head is not None:
        return head.losses(logits, y, T_log, 1 if class_major else -1)
    return loss_fn(logits.transpose(1, 2) if class_major else logits, y, T_log)


def _loss_and_grads(params, x, y, w, loss_fn, head: LossHead | None, T_log, prune: _Pruning, tricks: Tricks):
    """Each run's minibatch objective (Eq. 13 / the plain mean) and the gradients of ``params``.

    ``w``: the minibatch's stored pruning weights ``(R, n)``.
    """
    cm = tricks.class_major
    dim = 1 if cm else -1

    if not tricks.hand_grad:  # autograd through the whole network
        for p in params:
            p.grad = None
        with torch.enable_grad():
            logits, _ = mlp_forward(params, x, tricks.fused_bias, class_major=cm)
            run_loss = prune.objective(_per_sample_losses(logits, y, loss_fn, head, T_log, cm), w)
            grads = torch.autograd.grad(run_loss.sum(), params)
        return run_loss.detach(), [g.detach() for g in grads]
    with torch.no_grad():
        logits, inputs = mlp_forward(params, x, tricks.fused_bias, keep=True, class_major=cm)
        if head is not None:  # Tricks.hand_loss_grad: dObjective/dlogits by formula
            weights, total = prune.sample_weights(w)
            per, g = head.losses_and_grad(logits, y, T_log, dim, weights / total[:, None])
            run_loss = prune.weighted_mean(per, weights, total)
    if head is None:
        with torch.enable_grad():  # autograd only for the loss head, the layers by hand
            logits.requires_grad_(True)
            run_loss = prune.objective(_per_sample_losses(logits, y, loss_fn, head, T_log, cm), w)
            (g,) = torch.autograd.grad(run_loss.sum(), logits)
    with torch.no_grad():
        return run_loss.detach(), mlp_backward(params, inputs, g, class_major=cm)


_TEST_ROWS = 128  # test samples per block of the shared test product: its output stays in the cache


def mlp_test_logits(params: list[Tensor], t: _GroupTensors, test: Tensor | None, tricks: Tricks) -> Tensor:
    """Logits of every run on the shared test set: ``(R, S, c)``, or ``(R, c, S)`` with Tricks.class_major."""
    x = test if test is not None else preprocess(t.test_x, t.mean, False, None).flatten(1)
    R = params[0].shape[0]
    cm = tricks.class_major
    if not tricks.shared_test_matmul:
        return mlp_forward(params, x.unsqueeze(0).expand(R, -1, -1), tricks.fused_bias, class_major=cm)[0]
    # the first layer of all runs as one (R * out, in) x (in, n) product per block of test rows; its output,
    # viewed as (R, out, n), is what the next layer's class-major product W h^T takes without a copy
    W, b = params[0], params[1]
    out = W.shape[1]
    W, b = W.reshape(R * out, -1), b.reshape(R * out, 1)
    blocks = []
    for s in range(0, x.shape[0], _TEST_ROWS):
        zt = torch.addmm(b, W, x[s:s + _TEST_ROWS].t()).view(R, out, -1)  # (R, out, n)
        if len(params) == 2:
            blocks.append(zt if cm else zt.transpose(1, 2))
        else:
            blocks.append(mlp_forward(params[2:], zt.relu_().transpose(1, 2), tricks.fused_bias, class_major=cm)[0])
    return torch.cat(blocks, 2 if cm else 1)


def predicted(logits: Tensor, dim: int) -> Tensor:
    """``logits.argmax(dim)`` (the first of equal maxima), faster for class-major logits (``dim == 1``)."""
    if dim != 1:
        return logits.argmax(dim)
    c = logits.shape[1]  # argmax along a non-innermost dimension is slow on the CPU; amax and amin are not
    first = torch.arange(c, device=logits.device, dtype=logits.dtype).view(1, c, *([1] * (logits.dim() - 2)))
    top = logits.amax(1, keepdim=True)
    return torch.where(logits == top, first, float(c)).amin(1).long()


def autocast_context(precision: str, device: torch.device):
    """bf16 autocast for the forward passes (losses are computed in float32), or nothing."""
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


@torch.no_grad()
def predict_proba(model: nn.Module, images: Tensor, mean: Tensor, batch: int = 1024) -> Tensor:
    """Softmax outputs of a trained model on ``uint8`` images, eval mode, no augmentation."""
    model.eval()
    dev = next(model.parameters()).device
    out = [F.softmax(model(preprocess(images[s:s + batch].to(dev), mean.to(dev), False, None)).float(), -1).cpu()
           for s in range(0, images.shape[0], batch)]
    return torch.cat(out)


__all__ += ["predict_proba", "split_groups", "build_group_data", "noisy_splits_of"]
