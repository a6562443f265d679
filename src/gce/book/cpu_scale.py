"""The ``cpu`` scale: the paper's CIFAR-10 experiments on real images, sized for two CPU cores.

The network is a head trained on frozen features: an MLP with one hidden
layer of 128 ReLUs on the 256 unsupervised features of :mod:`gce.features`
(Coates & Ng, 2011; learned without labels on the training images), trained
by the batched MLP engine of :mod:`gce.train`.  ``benchmarks/cpu_candidates.py``
measures why this model was chosen (clean accuracy, memorisation of random
labels, time) against pixels and against other sizes of the head and features.

The schedule is the declared, loss-agnostic one (Sec. 4.2's for CIFAR-10):
SGD with momentum 0.9, weight decay 1e-4, batches of 128, 120 epochs, the
learning rate divided by 10 after epochs 40 and 80, truncated L_q pruning
from epoch 40 every 10 epochs (q = 0.7, k = 0.5), 10% of the training set
held out as noisy validation.  Only the learning rate is the scale's own
(:data:`CPU_LR`, chosen by a rule that names no loss).  Fig. 1 and Fig. 2
use Adam (lr 1e-3, Sec. 3.2 and 4.1); Table 2 100 epochs without drops,
pruning from epoch 10 every 10, on the in-set classes 0-4 with outside
images from classes 5-9 of the same data.

The images come from :data:`SOURCE` (``$GCE_CPU_SOURCE``, default the JPEG
copy of CIFAR-10, labelled "CIFAR-10 (JPEG copy)"; ``"cifar10"`` reads
torchvision's CIFAR-10 through the same code path).
"""

from __future__ import annotations

from .. import schedule as _schedule
from ..train import RunConfig

__all__ = ["CPU_LR", "CPU_THREADS", "CPU_SEEDS", "CPU_MODEL", "source", "dataset_name", "cpu_configs", "describe", "data_label", "EXPERIMENTS", "CANDIDATES"]

#: SGD learning rate of the cpu scale's Table 1, Table 2 and human runs: the paper's 0.01 (Sec. 4.2), kept by a rule
#: that names no loss: the smallest of {0.01, 0.03, 0.1} at which clean-label training with every method (CCE, MAE,
#: L_q) plateaus before epoch 40 (clean validation accuracy gains less than one point from epochs 26-30 to 36-40),
#: measured by ``benchmarks/cpu_candidates.py``.
CPU_LR = 0.01
#: Torch threads for the cpu scale's feature encoding and head training: one.  Measured on two shared cores
#: (``benchmarks/cpu_candidates.py``): a second thread made both slower whenever another process used the CPU.
CPU_THREADS = 1
#: Seeds of every cpu grid (each seed draws its own noisy labels, the same for every method).
CPU_SEEDS = range(3)
#: The head: one hidden layer of 128 ReLUs on the features, batches of 128, no augmentation.  Chosen by the rule of
#: ``benchmarks/cpu_candidates.py`` (clean accuracy, memorisation of random labels, the time budget); 256 hidden
#: units, the first choice, projected 74 minutes on two idle cores, over the budget of 60.
CPU_MODEL = dict(model="mlp", model_kwargs=(("hidden", (128,)),), batch_size=128, augment=False)
EXPERIMENTS = ("onset", "fig1", "fig2", "table1", "table2", "human")
#: The models measured for the scale (``benchmarks/cpu_candidates.py``, the appendix on the cpu scale):
#: name -> (dataset of :data:`gce.data.CANDIDATE_DATASETS`, hidden units of the head, what the head is fed).
CANDIDATES = {"features": ("cifar10_jpeg_features_pca256", 256, "256 features"),
              "pixels16": ("cifar10_jpeg_pixels16", 256, "16x16x3 pixels"),
              "features_h128": ("cifar10_jpeg_features_pca256", 128, "256 features"),
              "features_pca128": ("cifar10_jpeg_features_pca128", 256, "128 features"),
              "features_pca128_h128": ("cifar10_jpeg_features_pca128", 128, "128 features")}
_TABLE1_METHODS = ("cce", "mae", "forward_T", "forward_T_hat", "lq", "trunc_lq")
_TABLE1_NOISE = tuple([("uniform", e) for e in (0.2, 0.4, 0.6, 0.8)] +
                      [("class_dependent", e) for e in (0.1, 0.2, 0.3, 0.4)])
_TABLE2_METHODS = ("cce", "forward_T_hat", "mae", "lq", "trunc_lq")
_HUMAN_SETS = ("aggre", "random1", "worse")
_HUMAN_METHODS = ("cce", "lq", "trunc_lq")


def source() -> str:
    """Where the images come from: ``$GCE_CPU_SOURCE`` (``"cifar10_jpeg"`` or ``"cifar10"``), else the JPEG copy
    (:func:`gce.features.default_source`)."""
    from ..features import default_source

    return default_source()


def dataset_name(part: str = "", src: str | None = None) -> str:
    """The feature dataset of :data:`gce.data.FEATURE_DATASETS` for ``part`` ("", "_0to4" or "_5to9")."""
    return f"{src or source()}_features{part}"


def data_label(dataset: str) -> str:
    """What to call a cpu-scale dataset in tables and captions, e.g. "CIFAR-10 (JPEG copy), classes 0-4"."""
    from ..data import FEATURE_DATASETS
    from ..features import SOURCES

    if dataset not in FEATURE_DATASETS:
        raise ValueError(f"dataset={dataset!r} is no cpu-scale feature dataset; known: {', '.join(FEATURE_DATASETS)}")
    src, classes = FEATURE_DATASETS[dataset]
    return SOURCES[src] + ("" if classes is None else f", classes {classes[0]}-{classes[-1]}")


def _sgd(dataset: str, lr: float = CPU_LR) -> dict:
    return dict(dataset=dataset, **CPU_MODEL, optimizer="sgd", lr=lr, momentum=0.9, weight_decay=1e-4,
                **_schedule.PAPER_SCHEDULES["cifar10"])


def _adam(dataset: str) -> dict:
    """Sec. 3.2 and 4.1: Adam's defaults (lr 1e-3), no schedule, no weight decay, 120 epochs."""
    return dict(_sgd(dataset), optimizer="adam", lr=1e-3, weight_decay=0.0, milestones=())


def _table2(src: str) -> dict:
    """Table 2: in-set classes 0-4, outside images from classes 5-9; 100 epochs, no drop, pruning every 10 epochs
    from the truncated run's own validation-loss plateau (the declared Table 2 rule, gce.schedule.plateau_epoch)."""
    return dict(_sgd(dataset_name("_0to4", src)), ood=dataset_name("_5to9", src),
                **dict(_schedule.PAPER_SCHEDULES["table2"], milestones=(), prune_rule="plateau"))


def cpu_configs(name: str, src: str | None = None, lr: float = CPU_LR) -> list[RunConfig]:
    """The runs of experiment ``name`` (:data:`EXPERIMENTS`) at the ``cpu`` scale (see the module docstring).

    ``src`` picks the images (default :func:`source`); ``lr`` the SGD learning rate (default :data:`CPU_LR`).
    """
    src = src or source()
    d = dataset_name("", src)
    if name == "onset":  # CCE without drops, the softmax on right and wrong labels tracked (Fig. 1(c))
        return [RunConfig(**dict(_sgd(d, lr), milestones=()), noise="uniform", eta=0.4, method="cce", seed=0,
                          track_train_softmax=True),
                RunConfig(**_table2(src) | {"lr": lr}, noise="open_set", eta=0.4, method="cce", seed=0,
                          track_train_softmax=True)]
    if name == "table1":
        return [RunConfig(**_sgd(d, lr), noise=kind, eta=eta, method=m, q=0.7, k=0.5, seed=s,
                          track_train_softmax=False)
                for kind, eta in _TABLE1_NOISE for m in _TABLE1_METHODS for s in CPU_SEEDS]
    if name == "fig1":  # (a) clean CCE and MAE, (c) CCE and L_q under uniform 0.4, softmax tracked; Adam
        return ([RunConfig(**_adam(d), noise="none", eta=0.0, method=m, seed=s, track_train_softmax=False)
                 for m in ("cce", "mae") for s in CPU_SEEDS] +
                [RunConfig(**_adam(d), noise="uniform", eta=0.4, method=m, q=0.7, seed=s, track_train_softmax=True)
                 for m in ("cce", "lq") for s in CPU_SEEDS])
    if name == "fig2":
        return [RunConfig(**_adam(d), noise="none" if eta == 0 else "uniform", eta=eta,
                          method="cce" if q == 0 else "lq", q=q if q > 0 else 0.7, seed=s, track_train_softmax=False)
                for eta in (0.0, 0.2, 0.6) for q in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) for s in CPU_SEEDS]
    if name == "table2":  # the clean CCE run shows what the outside images cost CCE
        base = _table2(src) | {"lr": lr}
        return ([RunConfig(**base, noise="none", eta=0.0, method="cce", seed=s, track_train_softmax=False)
                 for s in CPU_SEEDS] +
                [RunConfig(**base, noise=kind, eta=0.4, method=m, q=0.7, k=0.5, seed=s, track_train_softmax=False)
                 for kind in ("open_set", "uniform") for m in _TABLE2_METHODS for s in CPU_SEEDS])
    if name == "human":  # CIFAR-10N's transition matrices (their class confusions, not their per-image difficulty)
        return [RunConfig(**_sgd(d, lr), noise="human_twin", eta=0.0, human_labels=labels, method=m, q=0.7, k=0.5,
                          seed=s, track_train_softmax=False)
                for labels in _HUMAN_SETS for m in _HUMAN_METHODS for s in CPU_SEEDS]
    raise ValueError(f"unknown experiment name={name!r}; known experiments: {', '.join(EXPERIMENTS)}")


_DESCRIPTIONS = {
    "onset": ("Where CCE starts to memorise the noise (a diagnostic)",
                 "CCE without learning-rate drops, softmax on right and wrong training labels tracked; uniform "
                 "eta = 0.4 (Table 1's optimiser) and open-set eta = 0.4 (Table 2's)"),
    "fig1": ("Figure 1: CCE vs MAE on clean data; softmax on right and wrong labels",
             "(a) clean labels; (c) uniform noise eta = 0.4; Adam (Sec. 3.2, 4.1); 3 seeds"),
    "fig2": ("Figure 2: test accuracy and validation loss for several q",
             "Adam (Sec. 4.1), uniform noise eta in {0, 0.2, 0.6}, q = 0 is CCE; 3 seeds"),
    "table1": ("Table 1: closed-set noise", "test accuracy at the epoch of best noisy-validation accuracy; "
               "q = 0.7, k = 0.5; declared schedule; 3 seeds"),
    "table2": ("Table 2: open-set noise", "eta = 0.4, last-epoch test accuracy after 100 epochs; in-set classes "
               "0-4, outside images from classes 5-9; clean CCE for reference; 3 seeds"),
    "human": ("Human label noise: CIFAR-10N's transition matrices (synthetic twin)",
              "labels drawn from CIFAR-10N's aggre, random1 and worse transition matrices: their class confusions, "
              "not their per-image difficulty; Table 1's protocol; q = 0.7, k = 0.5; 3 seeds"),
}


def describe(name: str) -> tuple[str, str]:
    """Title and note of experiment ``name`` at the cpu scale."""
    if name not in _DESCRIPTIONS:
        raise ValueError(f"unknown experiment name={name!r}; known experiments: {', '.join(EXPERIMENTS)}")
    return _DESCRIPTIONS[name]
