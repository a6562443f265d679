"""The paper's figures and tables as grids of runs, at four scales, with resumable stored results.

==========  =================================================================
scale       what it runs
==========  =================================================================
``pocket``  offline, CPU, minutes: scikit-learn's digits and tasks built
            from them (:data:`PAPER_ANALOGUE`), BatchNorm-free small
            networks (batched), the paper's literal epoch counts for every
            method (:func:`pocket_schedule`), 5 seeds (3 for the 100-class
            block).  What CI and the rendered book run.
``cpu``     CIFAR-10's real images (the JPEG copy, or torchvision's) as
            frozen unsupervised features, MLP heads, the declared schedule,
            one thread a process, 3 seeds (:mod:`gce.book.cpu_scale`; the
            book's appendix on the cpu scale states its measured time).
``lite``    the real datasets (FASHION-MNIST, CIFAR-10/100), ResNet-18 for
            every dataset, schedules cut to an eighth, one seed, one GPU
            (sized for a free Colab GPU; its run time is not measured yet:
            ``benchmarks/gpu_run.py`` measures it).
``paper``   the paper's protocol exactly (Sec. 3.2, 4, 4.1, 4.2), 5 seeds.
==========  =================================================================

Each experiment (:data:`EXPERIMENTS`: ``onset``, a diagnostic probe that locates
where CCE starts to memorise the noise (:func:`gce.schedule.memorisation_onset`),
``fig1``, ``fig2``, ``table1``, ``table2``, ``sensitivity`` (Table 1's uniform digits
settings under earlier and later first learning-rate drops), and ``human``: CIFAR-10N's human labels against their synthetic
twin, lite and paper scales only) is a grid of :class:`gce.train.RunConfig` built by :func:`spec`.
:func:`run` trains what is not yet in the result store (:mod:`gce.book.store`: one
SQLite file per scale, the single source of truth; every finished run is stored
in one transaction the moment it finishes, so a killed sweep loses nothing and
the next call trains only what is missing) and returns the stored results.  The paper's own
numbers for Table 1 and Table 2 are kept as data (:func:`paper_table1`,
:func:`paper_table2`) so that every table shows ours beside theirs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import pandas as pd
import torch

from . import budget as _budget
from . import paths as _paths
from . import runners
from .. import schedule as _schedule
from . import store as _store
from .. import train as _train
from ..train import RunConfig

__all__ = [
    "SCALES",
    "EXPERIMENTS",
    "METHOD_LABELS",
    "Experiment",
    "spec",
    "run",
    "shard_configs",
    "paper_table1",
    "paper_table2",
    "default_scale",
    "default_results_dir",
    "installed_results_dir",
]

SCALES = ("pocket", "cpu", "lite", "paper")
EXPERIMENTS = ("onset", "fig1", "fig2", "table1", "table2", "sensitivity", "human", "later")
METHOD_LABELS = {"cce": "CCE", "mae": "MAE", "forward_T": "Forward T", "forward_T_hat": "Forward T_hat",
                 "lq": "Lq", "trunc_lq": "Trunc Lq", "sce": "SCE", "nce_rce": "NCE+RCE", "nce_mae": "NCE+MAE",
                 "taylor_ce": "Taylor CE"}
TABLE1_METHODS = ("cce", "mae", "forward_T", "forward_T_hat", "lq", "trunc_lq")
#: The losses that followed the paper (:data:`gce.train.LATER_METHODS`), run as extra rows of Table 1's grid by the
#: ``"later"`` experiment: the same datasets, noise, seeds and declared schedule, each loss at its published
#: CIFAR-10 weights (:mod:`gce.losses`), nothing tuned here.  At the cpu scale only the four uniform-noise
#: settings, a time budget the same for every later loss (48 runs instead of 96, about half an hour on two cores).
LATER_METHODS = _train.LATER_METHODS
TABLE1_NOISE = tuple([("uniform", e) for e in (0.2, 0.4, 0.6, 0.8)] +
                     [("class_dependent", e) for e in (0.1, 0.2, 0.3, 0.4)])
TABLE2_METHODS = ("cce", "forward_T_hat", "mae", "lq", "trunc_lq")
FIG2_QS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FIG2_ETAS = (0.0, 0.2, 0.6)
HUMAN_LABEL_SETS = ("worse", "aggre")  # CIFAR-10N (Wei et al., 2022), gce.human_noise
HUMAN_METHODS = ("cce", "lq", "trunc_lq")

#: The paper's dataset(s) each pocket or cpu dataset stands for.  ``digits`` stands for both 10-class datasets
#: of Table 1 (FASHION-MNIST and CIFAR-10: no second 10-class task is bundled offline, so the pocket
#: Table 1 has one 10-class block shown beside both); ``digit_pairs`` (100 classes, "next class
#: circularly" flips) for CIFAR-100; ``digits_0to4`` with outside images ``digits_5to9`` for Table 2's
#: CIFAR-10 with CIFAR-100 images.
PAPER_ANALOGUE: dict[str, tuple[str, ...]] = {
    "digits": ("fashionmnist", "cifar10"),
    "digit_pairs": ("cifar100",),
    "digits_0to4": ("cifar10",),
    "digits_5to9": ("cifar100",),
}
# the cpu scale's CIFAR-10 features (gce.book.cpu_scale) stand for CIFAR-10; Table 2's outside images (classes 5-9)
# for the paper's CIFAR-100 outside images
for _source in ("cifar10_jpeg", "cifar10"):
    PAPER_ANALOGUE.update({f"{_source}_features": ("cifar10",), f"{_source}_features_0to4": ("cifar10",),
                           f"{_source}_features_5to9": ("cifar100",)})

#: The memorisation-onset diagnostic (:func:`gce.schedule.memorisation_onset`, ``rise`` = :data:`ONSET_RISE`),
#: read by :func:`measured_onsets` from the ``"onset"`` experiment (CCE without learning-rate drops):
#: the setting whose onset the book shows, per pocket dataset.  No schedule is derived from it.
ONSET_RISE = 0.02
ONSET_NOISE: dict[str, tuple[str, float]] = {"digits": ("uniform", 0.4), "digit_pairs": ("uniform", 0.4),
                                             "digits_0to4": ("open_set", 0.4)}
#: Length in epochs of the pocket onset probes, long enough to see the noisy-label softmax rise.
PROBE_EPOCHS = {"table1": 60, "table2": 40}
#: Seeds of each pocket Table 1 block, 5 as in the paper for digits and 3 for the 100-class block, whose runs cost
#: about 3x a digits run per epoch over 150 epochs (the whole pocket grid must rebuild within 8 minutes on
#: 2 cores; a budget rule, the same for every method).
POCKET_TABLE1_SEEDS = {"digits": 5, "digit_pairs": 3}
#: The pocket scale's SGD learning rate and its validation share (see :func:`pocket_schedule`).
POCKET_LR = 0.1
POCKET_VAL_FRACTION = 0.2
#: The schedule-sensitivity grid of :func:`spec` (``"sensitivity"``), Table 1's uniform digits settings with the
#: first learning-rate drop (and the pruning start) moved to these multiples of the declared one.
SENSITIVITY_FACTORS = (1 / 3, 2 / 3, 1.0, 1.5)
SENSITIVITY_ETAS = (0.4, 0.6)
SENSITIVITY_METHODS = ("cce", "mae", "forward_T", "lq")


@dataclass(frozen=True)
class Experiment:
    """A figure or table of the paper as a grid of runs at one scale."""

    name: str
    scale: str
    title: str
    configs: tuple[RunConfig, ...]
    datasets: tuple[str, ...]
    note: str


def _check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"unknown scale={scale!r}; known scales: {', '.join(SCALES)}")
    return scale


# --------------------------------------------------------------------------- schedules


def _paper_schedule(dataset: str) -> dict:
    """Sec. 4.2: the paper's epochs, learning-rate drops and pruning epochs of ``dataset``'s analogue."""
    paper = PAPER_ANALOGUE.get(dataset, (dataset,))[-1]
    return dict(_schedule.PAPER_SCHEDULES["cifar100" if paper == "cifar100" else "cifar10"])


def pocket_schedule(dataset: str) -> dict:
    """The declared pocket schedule of ``dataset``: the paper's literal epoch counts for the dataset it stands
    for (:data:`PAPER_ANALOGUE`, :data:`gce.schedule.PAPER_SCHEDULES`), the same for every method.

    ``"digits"``: 120 epochs, drops after 40 and 80, pruning every 10 epochs from 40; ``"digit_pairs"``: 150
    epochs, drops after 80 and 120, pruning from 80; ``"digits_0to4"`` (Table 2): 100 epochs, no drop, pruning
    every 10 epochs from the truncated run's own validation-loss plateau (``prune_rule="plateau"``).
    """
    if dataset == "digits_0to4":
        return dict(_schedule.PAPER_SCHEDULES["table2"], prune_rule="plateau")
    if dataset not in ("digits", "digit_pairs"):
        raise ValueError(f"no pocket schedule for dataset={dataset!r}; known: digits, digit_pairs, digits_0to4")
    return _paper_schedule(dataset)


def _pocket_model(dataset: str) -> dict:
    """The pocket network: an MLP with one hidden layer of 256 ReLUs, batches of 128, no augmentation, and
    :data:`POCKET_VAL_FRACTION` of the training set as (noisy) validation."""
    return dict(dataset=dataset, model="mlp", model_kwargs=(("hidden", (256,)),), batch_size=128, augment=False,
                val_fraction=POCKET_VAL_FRACTION)


def table1_base(dataset: str, scale: str) -> dict:
    """Dataset, model, optimiser and schedule of Table 1's runs at ``scale``."""
    if scale == "pocket":
        return dict(**_pocket_model(dataset), optimizer="sgd", lr=POCKET_LR, momentum=0.9, weight_decay=1e-4,
                    **pocket_schedule(dataset))
    model = {"cifar10": "resnet34", "cifar100": "resnet34", "fashionmnist": "resnet18"}[dataset]
    sched = _paper_schedule(dataset)
    if scale == "lite":  # sized for a free Colab GPU: ResNet-18 (half ResNet-34's FLOPs), an eighth of the schedule
        model = "resnet18"
        sched = dict(epochs=sched["epochs"] // 8, milestones=tuple(m // 8 for m in sched["milestones"]),
                     prune_start=sched["prune_start"] // 8, prune_every=2)
    return dict(dataset=dataset, model=model, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4,
                batch_size=128, augment=True, **sched)


def sensitivity_schedule(factor: float, dataset: str = "digits") -> dict:
    """The declared schedule of ``dataset`` with its first drop and pruning start moved to
    ``round(factor * 40)`` epochs (the schedule-sensitivity grid); the second drop comes at twice the first
    when that is inside the 120 epochs, and none otherwise."""
    sched = pocket_schedule(dataset)
    first = round(factor * sched["milestones"][0])
    if not 1 <= first < sched["epochs"]:
        raise ValueError(f"factor={factor} puts the first drop at epoch {first}, outside 1..{sched['epochs'] - 1}")
    second = 2 * first
    return dict(sched, milestones=(first, second) if second < sched["epochs"] else (first,), prune_start=first)


def _fig_base(dataset: str, scale: str) -> dict:
    """Fig. 1 and Fig. 2's runs before :func:`_adam`: at the pocket scale the pocket network for the
    paper's own epoch count of the analogue dataset (120, or 150 for the 100-class task), not Table 1's
    pocket schedule; at the other scales Table 1's base."""
    if scale == "pocket":
        return dict(**_pocket_model(dataset), optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4,
                    **_paper_schedule(dataset))
    return table1_base(dataset, scale)


def _table2_base(scale: str) -> tuple[dict, dict]:
    """Table 2's data and schedule at ``scale`` (SGD, momentum 0.9, weight decay 1e-4, no learning-rate drop)."""
    if scale == "pocket":  # the pocket MLP stands in for Wang et al.'s shallow CNN
        base = dict(dataset="digits_0to4", model="mlp", model_kwargs=(("hidden", (256,)),), ood="digits_5to9",
                    val_fraction=POCKET_VAL_FRACTION)
        sched = dict(pocket_schedule("digits_0to4"), lr=POCKET_LR)
    else:
        base = dict(dataset="cifar10", model="wang_cnn", ood="cifar100")
        sched = dict(_schedule.PAPER_SCHEDULES["table2"], lr=0.01, prune_rule="plateau")
        if scale == "lite":
            sched.update(epochs=25, prune_every=3)
    sched.update(optimizer="sgd", momentum=0.9, weight_decay=1e-4, milestones=(), batch_size=128, augment=False)
    return base, sched


def _datasets(scale: str, paper: Sequence[str]) -> tuple[str, ...]:
    """The datasets of an experiment at ``scale``: the paper's, or at the pocket scale their pocket analogues."""
    if scale != "pocket":
        return tuple(paper)
    return tuple(pocket for pocket in ("digits", "digit_pairs") if any(p in paper for p in PAPER_ANALOGUE[pocket]))


def _seeds(scale: str, dataset: str | None = None) -> range:
    if scale == "lite":
        return range(1)
    if scale == "pocket" and dataset in POCKET_TABLE1_SEEDS:
        return range(POCKET_TABLE1_SEEDS[dataset])
    return range(5)


def _adam(base: dict) -> dict:
    """Sec. 3.2 and 4.1 train with Adam's defaults (lr 1e-3), no schedule, no weight decay."""
    return dict(base, optimizer="adam", lr=1e-3, weight_decay=0.0, milestones=())


def _probe(scale: str) -> list[RunConfig]:
    """The runs that locate the memorisation onset: CCE, no learning-rate drop, softmax tracked (Fig. 1(c))."""
    seeds = range(2) if scale == "pocket" else range(1)
    etas = [e for kind, e in TABLE1_NOISE if kind == "uniform"] if scale == "pocket" else [0.4]
    cfgs = []
    for d in _datasets(scale, ("fashionmnist", "cifar10", "cifar100")):
        base = dict(table1_base(d, scale), milestones=())
        if scale == "pocket":
            base["epochs"] = PROBE_EPOCHS["table1"]
        cfgs += [RunConfig(**base, noise="uniform", eta=e, method="cce", seed=s, track_train_softmax=True)
                 for e in etas for s in seeds]
    data, sched = _table2_base(scale)
    if scale == "pocket":
        sched["epochs"] = PROBE_EPOCHS["table2"]
    cfgs += [RunConfig(**data, **sched, noise="open_set", eta=0.4, method="cce", seed=s, track_train_softmax=True)
             for s in seeds]
    return cfgs


def spec(name: str, scale: str = "pocket") -> Experiment:
    """The grid of runs of figure or table ``name`` at ``scale`` (see the module docstring)."""
    _check_scale(scale)
    if scale == "cpu" and name == "sensitivity":
        return Experiment(name, scale, "Schedule sensitivity of Table 1's uniform-noise verdicts", (), (),
                          "pocket scale only")
    if name == "later":  # beyond the paper: Table 1's grid for the losses that followed it
        table1 = spec("table1", scale)
        noise = ("uniform",) if scale == "cpu" else ("uniform", "class_dependent")  # cpu: a time budget
        cells = dict.fromkeys(replace(c, method="cce") for c in table1.configs if c.noise in noise)
        cfgs = [replace(c, method=m) for c in cells for m in LATER_METHODS]
        return Experiment(name, scale, "After the paper: Table 1's grid for the losses that followed it",
                          tuple(cfgs), table1.datasets, "Table 1's datasets, seeds and schedule; "
                          + ("its uniform noise" if scale == "cpu" else "its noise settings") +
                          "; SCE, NCE+RCE, NCE+MAE and Taylor CE at their published CIFAR-10 weights")
    if scale == "cpu":  # real CIFAR-10 images as frozen features, heads on two CPU cores (gce.book.cpu_scale)
        from . import cpu_scale
        cfgs = tuple(cpu_scale.cpu_configs(name))
        title, note = cpu_scale.describe(name)
        return Experiment(name, scale, title, cfgs, tuple(dict.fromkeys(c.dataset for c in cfgs)), note)
    seeds = _seeds(scale)
    if name == "onset":
        cfgs = _probe(scale)
        return Experiment(name, scale, "Where CCE starts to memorise the noise (a diagnostic)", tuple(cfgs),
                          tuple(dict.fromkeys(c.dataset for c in cfgs)),
                          "CCE without learning-rate drops, softmax on right and wrong training labels tracked; "
                          "Table 1 optimiser under uniform noise, Table 2 optimiser under open-set noise")
    if name == "sensitivity":
        if scale != "pocket":
            return Experiment(name, scale, "Schedule sensitivity of Table 1's uniform-noise verdicts", (), (),
                              "pocket scale only")
        # the declared drop (factor 1) is Table 1's own runs: schedule_sensitivity reads them from there
        cfgs = [RunConfig(**dict(table1_base("digits", scale), **sensitivity_schedule(f)), noise="uniform", eta=eta,
                          method=m, q=0.7, k=0.5, seed=s, track_train_softmax=False)
                for f in SENSITIVITY_FACTORS if f != 1.0 for eta in SENSITIVITY_ETAS
                for m in SENSITIVITY_METHODS for s in _seeds(scale, "digits")]
        return Experiment(name, scale, "Schedule sensitivity of Table 1's uniform-noise verdicts", tuple(cfgs),
                          ("digits",), "Table 1's digits block, uniform noise, the first learning-rate drop at "
                          + ", ".join(f"{f:.2g}" for f in SENSITIVITY_FACTORS if f != 1.0)
                          + " x the declared 40 epochs (1 x: Table 1's runs)")
    if name == "table1":
        datasets = _datasets(scale, ("fashionmnist", "cifar10", "cifar100"))
        cfgs = [RunConfig(**table1_base(d, scale), noise=kind, eta=eta, method=m, q=0.7, k=0.5, seed=s,
                          track_train_softmax=False)
                for d in datasets for kind, eta in TABLE1_NOISE for m in TABLE1_METHODS for s in _seeds(scale, d)]
        return Experiment(name, scale, "Table 1: closed-set noise", tuple(cfgs), datasets,
                          "test accuracy at the epoch of best noisy-validation accuracy; q = 0.7, k = 0.5")
    if name == "fig1":
        datasets = _datasets(scale, ("cifar10", "cifar100"))
        fig_seeds = seeds if scale == "pocket" else range(1)
        # Sec. 3.2 trains Fig. 1(a, b) with Adam's defaults, as Sec. 4.1 does Fig. 1(c) and Fig. 2
        cfgs = [RunConfig(**_adam(_fig_base(d, scale)), noise="none", eta=0.0, method=m, seed=s,
                          track_train_softmax=False)
                for d in datasets for m in ("cce", "mae") for s in fig_seeds]
        d10 = datasets[0]
        cfgs += [RunConfig(**_adam(_fig_base(d10, scale)), noise="uniform", eta=0.4, method=m, q=0.7, seed=s)
                 for m in ("cce", "lq") for s in fig_seeds]
        return Experiment(name, scale, "Figure 1: CCE vs MAE on clean data; softmax on right and wrong labels",
                          tuple(cfgs), datasets,
                          "(a, b) clean labels; (c) uniform noise eta = 0.4; Adam (Sec. 3.2, 4.1)")
    if name == "fig2":
        d10 = _datasets(scale, ("cifar10",))[0]
        fig_seeds = seeds if scale == "pocket" else range(1)
        cfgs = []
        for eta in FIG2_ETAS:
            for qv in FIG2_QS:
                method = "cce" if qv == 0 else "lq"
                cfgs += [RunConfig(**_adam(_fig_base(d10, scale)), noise="none" if eta == 0 else "uniform",
                                   eta=eta, method=method, q=qv if qv > 0 else 0.7, seed=s,
                                   track_train_softmax=False) for s in fig_seeds]
        return Experiment(name, scale, "Figure 2: test accuracy and validation loss for several q", tuple(cfgs),
                          (d10,), "Adam (Sec. 4.1), uniform noise eta in {0, 0.2, 0.6}, q = 0 is CCE")
    if name == "table2":
        base, sched = _table2_base(scale)
        cfgs = [RunConfig(**base, **sched, noise=kind, eta=0.4, method=m, q=0.7, k=0.5, seed=s,
                          track_train_softmax=False)
                for kind in ("open_set", "uniform") for m in TABLE2_METHODS for s in seeds]
        return Experiment(name, scale, "Table 2: open-set noise", tuple(cfgs), (base["dataset"],),
                          f"eta = 0.4, last-epoch test accuracy after {sched['epochs']} epochs, no augmentation; "
                          f"outside images: {base['ood']}")
    if name == "human":  # beyond the paper: real human label noise (CIFAR-10N) against its synthetic twin
        title = "Human label noise: CIFAR-10N against its synthetic twin"
        if scale == "pocket":  # the human labels belong to CIFAR-10's images: nothing to run offline
            return Experiment(name, scale, title, (), (), "no runs at the pocket scale: CIFAR-10N labels "
                              "need torchvision's CIFAR-10 (lite and paper scales)")
        cfgs = [RunConfig(**table1_base("cifar10", scale), noise=kind, eta=0.0, human_labels=labels, method=m, q=0.7,
                          k=0.5, seed=s, track_train_softmax=False)
                for labels in HUMAN_LABEL_SETS for kind in ("human", "human_twin") for m in HUMAN_METHODS
                for s in seeds]
        return Experiment(name, scale, title, tuple(cfgs), ("cifar10",),
                          "Table 1's protocol; human: CIFAR-10N labels (worse, aggre); human_twin: labels drawn "
                          "from the same human transition matrix; q = 0.7, k = 0.5")
    raise ValueError(f"unknown experiment name={name!r}; known experiments: {', '.join(EXPERIMENTS)}")


def measured_onsets(runs: pd.DataFrame, history: pd.DataFrame, rise: float = ONSET_RISE) -> pd.DataFrame:
    """The memorisation onset (:func:`gce.schedule.memorisation_onset`) of each dataset and noise of the
    ``"onset"`` experiment's stored runs: one row per ``(dataset, noise, eta)`` with ``onset`` (epochs,
    read from the seed-averaged ``softmax_noisy``), ``seeds`` and ``rule`` (True for the setting
    :data:`ONSET_NOISE` names, the one the book shows)."""
    need = {"run_id", "dataset", "noise", "eta"}
    if not need <= set(runs.columns) or not {"run_id", "epoch", "softmax_noisy"} <= set(history.columns):
        raise ValueError(f"runs need columns {sorted(need)} and history run_id, epoch, softmax_noisy")
    h = history.merge(runs[list(need)], on="run_id")
    rows = []
    for (d, kind, eta), g in h.groupby(["dataset", "noise", "eta"], sort=True):
        curve = g.groupby("epoch")["softmax_noisy"].mean().sort_index()
        rows.append({"dataset": d, "noise": kind, "eta": float(eta), "seeds": g["run_id"].nunique(),
                     "onset": _schedule.memorisation_onset(curve.to_numpy(), rise),
                     "rule": ONSET_NOISE.get(d) == (kind, float(eta))})
    return pd.DataFrame(rows)


def kept_by_class(pruning: pd.DataFrame) -> pd.DataFrame:
    """Per run and class, what a pruning step of truncated L_q kept (Algorithm 1, Sec. 4.3; Table 2's check
    that pruning does not drop whole classes).

    ``pruning`` is the per-sample frame of :func:`gce.book.analysis.first_pruning_step`
    (columns ``run``, ``noise``, ``eta``, ``seed``, ``noisy_label``, ``clean``,
    ``kept``).  One row per ``(run, noisy_label)``: ``n`` samples carrying that
    label, ``kept`` the fraction of them kept, ``clean_kept`` the fraction of
    its *clean* samples kept (right label, in-set image; NaN if none).  A class
    whose ``clean_kept`` is 0 has been dropped whole.
    """
    need = {"run", "noise", "eta", "seed", "noisy_label", "clean", "kept"}
    if not need <= set(pruning.columns):
        raise ValueError(f"pruning frame lacks columns {sorted(need - set(pruning.columns))}: "
                         f"pass the frame of gce.book.analysis.first_pruning_step")
    df = pruning.assign(clean_and_kept=pruning["clean"] & pruning["kept"])
    g = df.groupby(["run", "noise", "eta", "seed", "noisy_label"], sort=True)
    out = g.agg(n=("kept", "size"), kept=("kept", "mean"), n_clean=("clean", "sum"),
                clean_and_kept=("clean_and_kept", "sum")).reset_index()
    out["clean_kept"] = (out["clean_and_kept"] / out["n_clean"].where(out["n_clean"] > 0)).astype(float)
    return out.drop(columns=["clean_and_kept"])


def _mlp_layer_sizes(cfg: RunConfig, in_features: int, num_classes: int) -> list[tuple[int, int]]:
    if cfg.model != "mlp":
        raise ValueError(f"grid_flops counts MLP runs only, got model={cfg.model!r}")
    hidden = tuple(dict(cfg.model_kwargs).get("hidden", (128,)))
    widths = (in_features, *hidden, num_classes)
    return list(zip(widths[:-1], widths[1:]))


def grid_flops(configs: Sequence[RunConfig]) -> float:
    """Floating-point operations of training ``configs`` (pocket MLP runs), counted from the configs.

    A forward pass costs ``2 * in * out`` per layer and sample; a training
    step three forward passes (forward and backward).  Per epoch: training on
    the ``(1 - val_fraction)`` training split, one forward pass over the
    validation and the test split, one over the training split when the
    softmax is tracked, and one per pruning step of truncated ``L_q``.
    """
    from .. import data as _data

    total, cache = 0.0, {}
    for cfg in configs:
        if cfg.dataset not in cache:
            ds = _data.load(cfg.dataset)
            cache[cfg.dataset] = (len(ds.train), len(ds.test), int(torch.tensor(ds.train.images.shape[1:]).prod()),
                                  ds.num_classes)
        n_train_all, n_test, in_features, c = cache[cfg.dataset]
        n_val = round(cfg.val_fraction * n_train_all)
        n_train = n_train_all - n_val
        fwd = sum(2 * i * o for i, o in _mlp_layer_sizes(cfg, in_features, c))
        per_epoch = 3 * n_train + n_val + n_test + (n_train if cfg.track_train_softmax else 0)
        total += fwd * (cfg.epochs * per_epoch + len(cfg.prune_epochs()) * n_train)
    return total


# --------------------------------------------------------------------------- running


def default_scale() -> str:
    """The scale the book's notebooks run at: ``$GCE_SCALE``, else ``"pocket"``."""
    return _check_scale(os.environ.get("GCE_SCALE", "pocket"))


def installed_results_dir() -> Path:
    """The results installed with the package (``gce/results``: the stored pocket runs), read-only in general."""
    return _paths.installed_results_dir()


def default_results_dir() -> Path:
    """Where results live: ``$GCE_RESULTS``, else the ``results/`` folder of the book's checkout that holds
    the working directory, else that of the checkout the package is imported from (an editable install),
    else the results installed with the package (:func:`installed_results_dir`); see :mod:`gce.book.paths`."""
    return _paths.results_dir()


def _check_data(configs: Sequence[RunConfig], root) -> None:
    """Load each dataset the configs need once, before any training: a missing or damaged dataset
    raises its :class:`gce.data.DatasetUnavailable` / :class:`gce.data.DatasetCorrupt` (naming the dataset,
    the path and how to get it) here, once, instead of once per group after other groups trained.
    A data folder that did not exist before and is left empty by a failed download is removed again."""
    from .. import data

    needed = []
    for c in configs:
        for name in (c.dataset, c.ood):
            if name in data.DATASETS and name not in needed and name != "digits":
                needed.append(name)
    folder = data.data_root(root)
    existed = folder.exists()
    try:
        for name in needed:
            data.load(name, root)
    except data.DatasetUnavailable as err:
        if not existed:
            _remove_empty_tree(folder)
        text, _, cause = str(err).partition("\nThe download failed with ")
        if cause:  # keep the message short: what is missing, where, how to get it, and why the download failed
            text += f"\n(the download failed: {cause.splitlines()[0]})"
        raise data.DatasetUnavailable(text, err.path) from None


def _remove_empty_tree(folder: Path) -> None:
    """Remove ``folder`` and its subfolders if they hold no file (what a failed download leaves)."""
    if not folder.is_dir():
        return
    subdirs = sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
    for d in [*subdirs, folder]:
        try:
            d.rmdir()
        except OSError:  # not empty: keep it and everything above
            return


def _writable_results(store: _store.ResultStore) -> None:
    try:
        _store.check_writable(store.dir)
    except _store.StoreError as err:
        installed = installed_results_dir().resolve()
        if store.dir.resolve().is_relative_to(installed):
            raise _store.StoreError(f"the installed results ({store.dir}) hold no run for some configs and are "
                                    f"read-only; set $GCE_RESULTS (or pass results=) to a writable folder to train "
                                    f"them") from None
        raise err from None


def shard_configs(configs: Sequence[RunConfig], index: int, count: int) -> list[RunConfig]:
    """Part ``index`` (0-based) of ``count`` near-equal parts of ``configs``, for ``count`` processes.

    Runs that share data, noise and seed (one cell: the same :func:`gce.book.store.cce_twin`) stay in one part, so a
    ``forward_T_hat`` run is always trained after its CCE twin by the same process.  The cells, in the order
    they first appear, are dealt out in turn, so the parts differ by at most one cell.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive number of parts, got count={count!r}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ValueError(f"index must be a part number in 0..{count - 1}, got index={index!r}")
    cells = {key: i for i, key in enumerate(dict.fromkeys(_store.run_id(_store.cce_twin(c)) for c in configs))}
    return [c for c in configs if cells[_store.run_id(_store.cce_twin(c))] % count == index]


def run(name: str, scale: str | None = None, *, results: str | os.PathLike | None = None, device=None, root=None,
        progress: bool = True, max_group: int = 256, engine: str = "local", address: str | None = None,
        gpus_per_run: float = 0.0, on_stored: Callable[[str], None] | None = None,
        allow_training: bool | None = None, threads: int | None = None,
        shard: tuple[int, int] | None = None) -> tuple[Experiment, _store.ResultStore]:
    """Train every run of ``spec(name, scale)`` that ``results`` does not hold yet, then return the store.

    ``scale`` defaults to :func:`default_scale` (``$GCE_SCALE``) and
    ``results`` to :func:`default_results_dir`.  ``engine`` is ``"local"``
    (this process, batched groups, ``threads`` torch threads: one on the CPU
    unless ``threads`` or ``$GCE_THREADS`` say otherwise, :mod:`gce.threads`)
    or ``"ray"`` (one Ray task per run, on the cluster at ``address``,
    ``gpus_per_run`` GPUs each); see :mod:`gce.book.runners`.
    Each run is stored (:class:`gce.book.store.ResultStore`, one SQLite transaction)
    the moment it finishes, so an interrupted or killed sweep keeps every
    finished run and the next call trains only the missing ones.  Before any
    training, the results folder is checked to be writable and every dataset
    needed is loaded once (a missing one raises
    :class:`gce.data.DatasetUnavailable` naming it).  Runs that fail are
    reported together at the end (a :class:`gce.book.runners.RunsFailed`, a
    ``RuntimeError`` with one line per failed run) after all the others have been trained.
    ``store.trained`` lists the run ids trained by this call.  ``shard=(i, n)``
    trains only the runs of part ``i`` of ``n`` (:func:`shard_configs`), so that
    ``n`` processes can share one experiment (``python -m gce reproduce --jobs``).

    It never retrains a grid by surprise: more than
    :data:`gce.book.budget.MAX_UNASKED_RUNS` runs to train raise
    :class:`gce.book.budget.TrainingNotAllowed` (how many, roughly how long, how to
    allow it) unless ``allow_training`` is true or ``$GCE_ALLOW_TRAINING=1``
    (``allow_training=False`` refuses even a few runs).

    Runs that need ``T-hat`` (forward correction with an estimated matrix)
    are trained after the CCE run with the same data, noise and seed, whose
    best-validation model gives the estimate (:func:`gce.train.estimate_transition`,
    on the un-augmented noisy training images).  The estimate is stored with
    the CCE run.
    """
    scale = default_scale() if scale is None else _check_scale(scale)
    results = default_results_dir() if results is None else results
    exp = spec(name, scale)
    store = _store.ResultStore(results, scale, name)
    done = store.done()
    mine = exp.configs if shard is None else shard_configs(exp.configs, *shard)
    todo = [c for c in mine if _store.run_id(c) not in done]
    need_hat = {_store.run_id(_store.cce_twin(c)) for c in mine if c.method == "forward_T_hat"}
    # a CCE twin that is stored without its estimate must be retrained (its model gives T-hat)
    first = [c for c in todo if c.method != "forward_T_hat"]
    for c in mine:
        twin = _store.cce_twin(c)
        if (c.method == "forward_T_hat" and _store.run_id(twin) in done and store.t_hat(c) is None
                and twin not in first):
            first.append(twin)
    second = [c for c in todo if c.method == "forward_T_hat"]
    if not first and not second:
        return exp, store
    _writable_results(store)  # before any work: a read-only folder is found now, not after training
    _budget.check(first + second, allow_training, f"{name} ({scale})", store.dir, flops=grid_flops,
                  command=f"python -m gce reproduce {name} --scale {scale}")
    runner = runners.make_engine(engine, device=device, root=root, progress=progress, max_group=max_group,
                                 address=address, gpus_per_run=gpus_per_run, threads=threads)
    if engine == "local" or address is None:  # a remote Ray cluster's workers hold the data, not this machine
        _check_data(first + second, root)
    prov = _store.provenance(getattr(runner, "device", "cpu"))

    def train_and_store(configs: list[RunConfig], transitions: dict) -> list[runners.Failure]:
        """Train ``configs`` and store each run the moment it finishes; returns the failures."""
        want_hat = {i for i, c in enumerate(configs) if _store.run_id(c) in need_hat}
        failed = []
        for out in runner.execute(configs, transitions, want_hat, prov):
            if isinstance(out, runners.Failure):
                failed.append(out)
                continue
            rid = _store.run_id(out.result.config)
            t_hat = {rid: out.t_hat} if out.t_hat is not None else None
            store.add([out.result], out.provenance, scale, t_hat)  # durable on return
            store.trained.append(rid)
            if on_stored is not None:
                on_stored(rid)
        return failed

    failures = train_and_store(first, {}) if first else []
    if second:
        transitions, ready = {}, []
        for c in second:
            T_hat = store.t_hat(c)
            if T_hat is None:
                failures.append(runners.Failure(c, "its CCE twin did not finish, so there is no T-hat to use"))
                continue
            transitions[len(ready)] = torch.tensor(T_hat, dtype=torch.float64)
            ready.append(c)
        failures += train_and_store(ready, transitions)
    if failures:  # one line each; the full errors are in err.failures
        raise runners.RunsFailed(failures, len(first) + len(second), len(store.trained), store.path)
    return exp, store


# --------------------------------------------------------------------------- the paper's numbers


def _paper_csv(name: str) -> pd.DataFrame:
    with resources.files("gce.book").joinpath("paper", name).open() as f:
        return pd.read_csv(f, comment="#")


def paper_table1() -> pd.DataFrame:
    """Table 1 of Zhang & Sabuncu (2018): mean and std (%) over 5 runs, best-validation epoch."""
    return _paper_csv("table1.csv")


def paper_table2() -> pd.DataFrame:
    """Table 2 of Zhang & Sabuncu (2018): last-epoch test accuracy (%), CIFAR-10, eta = 0.4."""
    return _paper_csv("table2.csv")


def paper_fig1b() -> pd.DataFrame:
    """The two numbers Sec. 3.2 gives for Fig. 1(b) (CIFAR-100, clean labels, ResNet, Adam):
    the best test accuracy (%) and the epoch by which it was reached."""
    return pd.DataFrame({"method": ["cce", "mae"], "dataset": ["cifar100", "cifar100"],
                         "best_test_acc": [39.92, 38.29], "epochs": [7, 2000],
                         "note": ["after 7 epochs", "best within 2000 epochs"]})


__all__ += ["HUMAN_LABEL_SETS", "HUMAN_METHODS"]
__all__ += ["paper_fig1b", "TABLE1_METHODS", "TABLE1_NOISE", "FIG2_QS", "FIG2_ETAS", "TABLE2_METHODS",
            "PAPER_ANALOGUE", "ONSET_RISE", "ONSET_NOISE", "PROBE_EPOCHS", "POCKET_LR", "POCKET_VAL_FRACTION",
            "SENSITIVITY_FACTORS", "SENSITIVITY_ETAS", "SENSITIVITY_METHODS", "sensitivity_schedule",
            "POCKET_TABLE1_SEEDS", "pocket_schedule", "measured_onsets", "kept_by_class", "grid_flops"]
