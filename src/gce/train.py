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
:func:`train_many` in ``transitions``).

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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from . import data as _data
from . import losses as _losses
from . import models as _models
from . import noise as _noise

__all__ = [
    "METHODS",
    "NOISE_KINDS",
    "RunConfig",
    "RunResult",
    "train",
    "train_many",
    "group_key",
    "estimate_transition",
    "run_losses",
]

METHODS = ("cce", "mae", "lq", "trunc_lq", "forward_T", "forward_T_hat")
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
    epochs of ``"trunc_lq"``.  ``model_kwargs`` is a tuple of ``(name, value)``
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
            from .human_noise import LABEL_SETS
            # the twin needs only the labels' T, so it also applies to the JPEG copy of CIFAR-10 (images in another
            # order, which the human labels themselves do not fit)
            target = "cifar10" if self.noise == "human_twin" and self.dataset == "cifar10_jpeg" else self.dataset
            if LABEL_SETS.get(self.human_labels, ("",))[0] != target:
                known = [s for s, (d, _) in LABEL_SETS.items() if d == target]
                raise ValueError(f"human_labels={self.human_labels!r} is no CIFAR-N label set of {self.dataset}; "
                                 f"known: {', '.join(known) or 'none (CIFAR-N labels cifar10 and cifar100)'}")
        if self.method in ("lq", "trunc_lq"):
            _losses.check_q(self.q)
        if self.method == "trunc_lq":
            _losses.check_k(self.k)
        for name in ("epochs", "batch_size", "prune_every"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not (self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")

    @property
    def uses_pruning(self) -> bool:
        return self.method == "trunc_lq"

    def prune_epochs(self) -> list[int]:
        """The epochs (0-based, before which the weights are recomputed) of Algorithm 1's pruning steps."""
        if not self.uses_pruning:
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
        if cfg.noise == "open_set":
            splits = _data.open_set_splits(ds, ood, cfg.eta, cfg.val_fraction, cfg.seed)
            T = None
        elif cfg.noise in ("human", "human_twin"):  # CIFAR-N labels or their synthetic twin (gce.human_noise)
            splits = _data.human_noisy_splits(ds, cfg.human_labels, cfg.noise == "human_twin", cfg.val_fraction,
                                              cfg.seed, root)
            T = splits.T
        else:
            kind = ("uniform", 0.0) if cfg.noise == "none" else (cfg.noise, cfg.eta)
            splits = _data.noisy_splits(ds, kind, cfg.val_fraction, cfg.seed)
            T = splits.T
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
    mean = ds.train.images.float().mean(dim=0) / 255.0
    return _GroupData(bank, torch.stack(parts["train_idx"]), torch.stack(parts["train_y"]),
                      torch.stack(parts["train_clean"]), torch.stack(parts["val_idx"]), torch.stack(parts["val_y"]),
                      ds.test.images, ds.test.labels, parts["T"], parts["ft"], parts["fv"], ds.num_classes, mean)


def _preprocess(images: Tensor, mean: Tensor, augment: bool, generator: torch.Generator | None) -> Tensor:
    """uint8 ``(..., C, H, W)`` -> float, per-pixel mean subtracted (Sec. 4.2); optional crop + flip."""
    x = images.float() / 255.0 - mean
    if augment:
        x = _augment(x, generator)
    return x


def _augment(x: Tensor, generator: torch.Generator | None) -> Tensor:
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

    def module(self, r: int) -> nn.Module:
        """Run ``r``'s parameters in a fresh module (for saving or T-hat estimation)."""
        m = copy.deepcopy(self.base).to_empty(device=next(iter(self.params.values())).device)
        m.load_state_dict({**{k: v[r].detach() for k, v in self.params.items()},
                           **{k: v[r] for k, v in self.buffers.items()}})
        return m


class _Single:
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

    def module(self, r: int) -> nn.Module:
        return self.m


# --------------------------------------------------------------------------- losses of a group


def _vectorised_losses(configs: Sequence[RunConfig]) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
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
            else:  # forward_T / forward_T_hat: -log sum_i f_i T[i, y], with log T[i, y_b] gathered per run
                cols = T_log.gather(2, y[:, None, :].expand(-1, T_log.shape[1], -1)).transpose(1, 2)
                val = -torch.logsumexp(logp + cols, dim=-1)
            out = torch.where(mask.to(dev)[:, None], val, out)
        return out

    return f


def run_losses(logits: Tensor, y: Tensor, configs: Sequence[RunConfig], T_log: Tensor | None) -> Tensor:
    """Per-sample losses ``(R, B)`` of R runs with their own methods (see :func:`_vectorised_losses`)."""
    return _vectorised_losses(configs)(logits, y, T_log)


# --------------------------------------------------------------------------- T-hat (Patrini et al. 2017)


def estimate_transition(probs: Tensor, quantile: float = 0.97) -> Tensor:
    """Patrini et al.'s (2017) estimate of ``T`` from softmax outputs ``probs`` ``(N, c)`` of a trained model.

    For each class ``i`` the anchor is the sample whose ``p_i(x)`` is at the
    ``quantile`` (0.97, i.e. the 97th percentile, *not* 97) of ``p_i`` over the
    samples (the top 3% are treated as outliers); row ``i`` of ``T-hat`` is that
    sample's softmax output, so ``T-hat`` is row-stochastic with
    ``T-hat[i, j] ~ p(noisy j | true i)`` (rows: true classes, the convention
    of :mod:`gce.noise`; cleanlab's noise matrix is the transpose).
    """
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1] (0.97 for the 97th percentile), got {quantile!r}")
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.dim() != 2:
        raise ValueError(f"probs must have shape (N, c), got {tuple(probs.shape)}")
    c = probs.shape[1]
    T = torch.empty(c, c, dtype=torch.float64)
    for i in range(c):
        col = probs[:, i]
        thresh = torch.quantile(col, quantile, interpolation="higher")
        anchor = int(torch.nonzero(col == thresh)[0])
        T[i] = probs[anchor]
    return T / T.sum(dim=1, keepdim=True)


# --------------------------------------------------------------------------- training loop


def _check_group(configs: Sequence[RunConfig]) -> None:
    keys = {group_key(c) for c in configs}
    if len(keys) != 1:
        raise ValueError("train_many groups runs by dataset/model/schedule; this group mixes "
                         f"{len(keys)} different settings")


def split_groups(configs: Sequence[RunConfig], max_group: int) -> list[list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(group_key(c), []).append(i)
    out = []
    for idx in groups.values():
        for s in range(0, len(idx), max_group):
            out.append(idx[s:s + max_group])
    return out


def train(config: RunConfig, *, T: Tensor | None = None, device=None, root=None, progress: bool = False) -> RunResult:
    """Train one run; see :func:`train_many`."""
    return train_many([config], transitions={0: T} if T is not None else None, device=device, root=root,
                      progress=progress)[0]


def train_many(configs: Sequence[RunConfig], *, transitions: dict[int, Tensor] | None = None, device=None,
               root=None, max_group: int = 256, progress: bool = False, keep_models: bool = False,
               on_group_done: Callable[[list[int], list[RunResult]], None] | None = None) -> list[RunResult]:
    """Train every run of ``configs``, batching those that can share a vmapped group.

    ``transitions[i]`` is the ``T-hat`` of run ``i`` when its method is
    ``"forward_T_hat"`` (required for those).  ``keep_models`` stores each
    run's best-validation model in ``result.extra["model"]`` (for estimating
    ``T-hat`` from a CCE run).  ``on_group_done(indices, results)`` is called
    after each group, so callers can save results as they finish.
    """
    configs = list(configs)
    transitions = transitions or {}
    for i, c in enumerate(configs):
        if c.method == "forward_T_hat" and i not in transitions:
            raise ValueError(f"run {i} uses forward_T_hat but no estimated T was given in transitions[{i}]")
    device = torch.device(device) if device is not None else torch.device("cpu")
    results: list[RunResult | None] = [None] * len(configs)
    cache: dict = {}
    groups = split_groups(configs, max_group)
    bar = _progress(sum(configs[g[0]].epochs for g in groups), progress)
    for g in groups:
        group_cfgs = [configs[i] for i in g]
        group_T = {j: transitions[i] for j, i in enumerate(g) if i in transitions}
        out = _train_group(group_cfgs, group_T, device, root, cache, bar, keep_models)
        for i, r in zip(g, out):
            results[i] = r
        if on_group_done is not None:
            on_group_done(g, out)
    if bar is not None:
        bar.close()
    return results  # type: ignore[return-value]


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc="epochs", unit="epoch", leave=False)


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
        x = _preprocess(bank[x_uint8_idx[:, s:s + chunk]], mean, False, None)
        outs.append(model(x) if snap is None else model.evaluate_with(snap, x))
    return torch.cat(outs, dim=1)


def _train_group(configs: list[RunConfig], group_T: dict, device, root, cache, bar, keep_models) -> list[RunResult]:
    _check_group(configs)
    cfg0 = configs[0]
    gd = build_group_data(configs, root, cache)
    R, N = gd.train_idx.shape
    c = gd.num_classes
    image_shape = tuple(gd.bank.shape[1:])
    modules = [_init_model(cfg, c, image_shape) for cfg in configs]
    batched = not _has_batchnorm(modules[0])
    if not batched and R > 1:  # BatchNorm: one run at a time
        out = []
        for j, cfg in enumerate(configs):
            out += _train_group([cfg], {0: group_T[j]} if j in group_T else {}, device, root, cache, bar, keep_models)
        return out
    model = _Stacked(modules, device) if batched else _Single(modules[0], device, cfg0.channels_last, cfg0.compile)
    autocast = _autocast(cfg0.precision, device)
    bank, mean = gd.bank.to(device), gd.mean.to(device)
    train_idx, train_y = gd.train_idx.to(device), gd.train_y.to(device)
    train_clean = gd.train_clean.to(device)
    val_idx, val_y = gd.val_idx.to(device), gd.val_y.to(device)
    test_x, test_y = gd.test_x.to(device), gd.test_y.to(device)
    T_log, T_used = _transition_logs(configs, gd, group_T, device)
    loss_fn = _vectorised_losses(configs)
    opt, sched = _make_optimizer(cfg0, model.parameters())

    gens = [torch.Generator().manual_seed(10_000 + cfg.seed) for cfg in configs]
    aug_gen = torch.Generator().manual_seed(20_000 + cfg0.seed)
    weights = torch.ones(R, N, device=device)
    pruned = torch.tensor([cfg.uses_pruning for cfg in configs], device=device)
    lq_k = torch.tensor([_losses.lq_of_probability(cfg.k, cfg.q) if cfg.uses_pruning else 0.0 for cfg in configs],
                        device=device)
    ks = torch.tensor([cfg.k if cfg.uses_pruning else 0.0 for cfg in configs], device=device)
    prune_at = [set(cfg.prune_epochs()) for cfg in configs]
    best_val = torch.full((R,), -1.0, device=device)
    best_epoch = torch.zeros(R, dtype=torch.long)
    best_snap = model.snapshot()
    hist = {k: [[] for _ in range(R)] for k in HISTORY_KEYS}
    B = cfg0.batch_size
    chunk = 1024
    rows = torch.arange(R, device=device)[:, None]

    for epoch in range(cfg0.epochs):
        # Algorithm 1's pruning step, from the best-validation parameters, eval mode, no augmentation
        prune_now = [epoch in p for p in prune_at]
        if any(prune_now):
            model.eval()
            with autocast():
                logits = _forward_chunks(model, train_idx, bank, mean, chunk, snap=best_snap)
            fy = F.softmax(logits.float(), -1).gather(-1, train_y.unsqueeze(-1)).squeeze(-1)
            new_w = (fy >= ks[:, None]).float()
            now = torch.tensor(prune_now, device=device)[:, None]
            weights = torch.where(now, new_w, weights)
        # one epoch of minibatch training; every run shuffles with its own generator
        model.train()
        perms = torch.stack([torch.randperm(N, generator=g) for g in gens]).to(device)
        sum_loss = torch.zeros(R, device=device)
        n_batches = 0
        for s in range(0, N, B):
            pos = perms[:, s:s + B]                              # (R, b)
            x = _preprocess(bank[train_idx[rows, pos]], mean, cfg0.augment, aug_gen)
            y = train_y[rows, pos]
            with autocast():
                logits_b = model(x)
            per = loss_fn(logits_b, y, T_log)                   # (R, b), float32
            w = torch.where(pruned[:, None], weights[rows, pos], torch.ones_like(per))
            offset = torch.where(pruned, lq_k, torch.zeros_like(lq_k))[:, None]
            run_loss = ((per - offset) * w).sum(1) / w.sum(1).clamp_min(1.0)  # Eq. 13, weighted mean
            opt.zero_grad(set_to_none=True)
            run_loss.sum().backward()
            opt.step()
            sum_loss += run_loss.detach()
            n_batches += 1
        sched.step()
        # evaluation, eval mode, no augmentation
        model.eval()
        with torch.no_grad(), autocast():
            v_logits = _forward_chunks(model, val_idx, bank, mean, chunk)
            val_acc = (v_logits.argmax(-1) == val_y).float().mean(1)
            val_loss = loss_fn(v_logits, val_y, T_log).mean(1)
            t_logits = torch.cat([model(_preprocess(test_x[s:s + chunk], mean, False, None).unsqueeze(0).expand(R, -1, -1, -1, -1))
                                  for s in range(0, test_x.shape[0], chunk)], dim=1)
            test_acc = (t_logits.argmax(-1) == test_y).float().mean(1)
            if cfg0.track_train_softmax:
                tr_logits = _forward_chunks(model, train_idx, bank, mean, chunk)
                fy = F.softmax(tr_logits.float(), -1).gather(-1, train_y.unsqueeze(-1)).squeeze(-1)
                cl = train_clean.float()
                soft_clean = (fy * cl).sum(1) / cl.sum(1).clamp_min(1)
                soft_noisy = (fy * (1 - cl)).sum(1) / (1 - cl).sum(1).clamp_min(1)
            else:
                soft_clean = soft_noisy = torch.full((R,), float("nan"), device=device)
            improved = val_acc > best_val
            model.update_snapshot(best_snap, improved)
            best_val = torch.where(improved, val_acc, best_val)
            best_epoch = torch.where(improved.cpu(), torch.full_like(best_epoch, epoch), best_epoch)
        values = {"train_loss": sum_loss / max(n_batches, 1), "val_acc": val_acc, "val_loss": val_loss,
                  "test_acc": test_acc, "softmax_clean": soft_clean, "softmax_noisy": soft_noisy,
                  "kept": weights.mean(1)}
        for key, v in values.items():
            v = v.detach().cpu().tolist()
            for r in range(R):
                hist[key][r].append(float(v[r]))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(runs=R, test_acc=f"{float(test_acc.mean()):.3f}")

    results = []
    for r, cfg in enumerate(configs):
        h = {k: hist[k][r] for k in HISTORY_KEYS}
        be = int(best_epoch[r])
        res = RunResult(cfg, h, be, h["test_acc"][be], h["test_acc"][-1], gd.flip_train[r], gd.flip_val[r],
                        T_used[r])
        if keep_models:
            final = model.module(r) if batched else copy.deepcopy(model.m)
            best = copy.deepcopy(final)
            if batched:
                best.load_state_dict({**{k: v[r] for k, v in best_snap.items()},
                                      **{k: v[r] for k, v in model.buffers.items()}})
            else:
                best.load_state_dict(best_snap)
            res.extra["model"] = best.eval().cpu()
            res.extra["preprocess_mean"] = gd.mean
            res.extra["train_images"] = gd.bank[gd.train_idx[r]]
        results.append(res)
    return results


def _autocast(precision: str, device: torch.device):
    """bf16 autocast for the forward passes (losses are computed in float32), or nothing."""
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


@torch.no_grad()
def predict_proba(model: nn.Module, images: Tensor, mean: Tensor, batch: int = 1024) -> Tensor:
    """Softmax outputs of a trained model on ``uint8`` images, eval mode, no augmentation."""
    model.eval()
    dev = next(model.parameters()).device
    out = [F.softmax(model(_preprocess(images[s:s + batch].to(dev), mean.to(dev), False, None)).float(), -1).cpu()
           for s in range(0, images.shape[0], batch)]
    return torch.cat(out)


__all__ += ["predict_proba", "split_groups", "build_group_data"]
