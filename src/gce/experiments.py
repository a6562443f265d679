"""The paper's figures and tables as grids of runs, at three scales, with resumable stored results.

==========  =================================================================
scale       what it runs
==========  =================================================================
``pocket``  offline, CPU, minutes: scikit-learn's digits, BatchNorm-free small
            networks (batched with vmap), the paper's epoch counts and
            schedules, 5 seeds.  What CI and the rendered book run.
``lite``    the real datasets (FASHION-MNIST, CIFAR-10/100), ResNet-18 for
            every dataset, schedules cut to an eighth, one seed, one GPU
            (sized for a free Colab GPU; its run time is not measured yet:
            ``benchmarks/gpu_run.py`` measures it).
``paper``   the paper's protocol exactly (Sec. 3.2, 4, 4.1, 4.2), 5 seeds.
==========  =================================================================

Each experiment (:data:`EXPERIMENTS`: ``fig1``, ``fig2``, ``table1``,
``table2``, and ``human``: CIFAR-10N's human labels against their synthetic
twin, lite and paper scales only) is a grid of :class:`gce.train.RunConfig` built by :func:`spec`.
:func:`run` trains what is not yet in the result store (:mod:`gce.store`: one
SQLite file per scale, the single source of truth; every finished run is stored
in one transaction the moment it finishes, so a killed sweep loses nothing and
the next call trains only what is missing) and returns the stored results.  The paper's own
numbers for Table 1 and Table 2 are kept as data (:func:`paper_table1`,
:func:`paper_table2`) so that every table shows ours beside theirs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
import torch

from . import runners
from . import store as _store
from .store import ResultStore, StoreError, cce_twin, provenance, run_id
from .train import RunConfig

__all__ = [
    "SCALES",
    "EXPERIMENTS",
    "METHOD_LABELS",
    "Experiment",
    "spec",
    "run_id",
    "ResultStore",
    "run",
    "paper_table1",
    "paper_table2",
    "provenance",
    "default_scale",
    "default_results_dir",
    "StoreError",
    "installed_results_dir",
]

SCALES = ("pocket", "lite", "paper")
EXPERIMENTS = ("fig1", "fig2", "table1", "table2", "human")
METHOD_LABELS = {"cce": "CCE", "mae": "MAE", "forward_T": "Forward T", "forward_T_hat": "Forward T_hat",
                 "lq": "Lq", "trunc_lq": "Trunc Lq"}
TABLE1_METHODS = ("cce", "mae", "forward_T", "forward_T_hat", "lq", "trunc_lq")
TABLE1_NOISE = tuple([("uniform", e) for e in (0.2, 0.4, 0.6, 0.8)] +
                     [("class_dependent", e) for e in (0.1, 0.2, 0.3, 0.4)])
TABLE2_METHODS = ("cce", "forward_T_hat", "mae", "lq", "trunc_lq")
FIG2_QS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FIG2_ETAS = (0.0, 0.2, 0.6)
HUMAN_LABEL_SETS = ("worse", "aggre")  # CIFAR-10N (Wei et al., 2022), gce.human_noise
HUMAN_METHODS = ("cce", "lq", "trunc_lq")


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
    """Sec. 4.2: SGD, momentum 0.9, weight decay 1e-4, lr 0.01 divided by 10 twice; pruning from the first drop."""
    if dataset == "cifar100":
        return dict(epochs=150, milestones=(80, 120), prune_start=80, prune_every=10)
    return dict(epochs=120, milestones=(40, 80), prune_start=40, prune_every=10)


def _base(dataset: str, scale: str) -> dict:
    """Dataset, model, optimiser and schedule of Table 1's runs at ``scale``."""
    if scale == "pocket":
        return dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (256,)),), optimizer="sgd", lr=0.1,
                    momentum=0.9, weight_decay=1e-4, batch_size=128, augment=False, **_paper_schedule("digits"))
    model = {"cifar10": "resnet34", "cifar100": "resnet34", "fashionmnist": "resnet18"}[dataset]
    sched = _paper_schedule(dataset)
    if scale == "lite":  # sized for a free Colab GPU: ResNet-18 (half ResNet-34's FLOPs), an eighth of the schedule
        model = "resnet18"
        sched = dict(epochs=sched["epochs"] // 8, milestones=tuple(m // 8 for m in sched["milestones"]),
                     prune_start=sched["prune_start"] // 8, prune_every=2)
    return dict(dataset=dataset, model=model, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4,
                batch_size=128, augment=True, **sched)


def _datasets(scale: str, paper: Sequence[str]) -> tuple[str, ...]:
    return ("digits",) if scale == "pocket" else tuple(paper)


def _seeds(scale: str) -> range:
    return range(1) if scale == "lite" else range(5)


def _adam(base: dict) -> dict:
    """Sec. 3.2 and 4.1 train with Adam's defaults (lr 1e-3), no schedule, no weight decay."""
    return dict(base, optimizer="adam", lr=1e-3, weight_decay=0.0, milestones=())


def spec(name: str, scale: str = "pocket") -> Experiment:
    """The grid of runs of figure or table ``name`` at ``scale`` (see the module docstring)."""
    _check_scale(scale)
    seeds = _seeds(scale)
    if name == "table1":
        datasets = _datasets(scale, ("fashionmnist", "cifar10", "cifar100"))
        cfgs = [RunConfig(**_base(d, scale), noise=kind, eta=eta, method=m, q=0.7, k=0.5, seed=s,
                          track_train_softmax=False)
                for d in datasets for kind, eta in TABLE1_NOISE for m in TABLE1_METHODS for s in seeds]
        return Experiment(name, scale, "Table 1: closed-set noise", tuple(cfgs), datasets,
                          "test accuracy at the epoch of best noisy-validation accuracy; q = 0.7, k = 0.5")
    if name == "fig1":
        datasets = _datasets(scale, ("cifar10", "cifar100"))
        fig_seeds = seeds if scale == "pocket" else range(1)
        # Sec. 3.2 trains Fig. 1(a, b) with Adam's defaults, as Sec. 4.1 does Fig. 1(c) and Fig. 2
        cfgs = [RunConfig(**_adam(_base(d, scale)), noise="none", eta=0.0, method=m, seed=s,
                          track_train_softmax=False)
                for d in datasets for m in ("cce", "mae") for s in fig_seeds]
        d10 = datasets[0]
        cfgs += [RunConfig(**_adam(_base(d10, scale)), noise="uniform", eta=0.4, method=m, q=0.7, seed=s)
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
                cfgs += [RunConfig(**_adam(_base(d10, scale)), noise="none" if eta == 0 else "uniform",
                                   eta=eta, method=method, q=qv if qv > 0 else 0.7, seed=s,
                                   track_train_softmax=False) for s in fig_seeds]
        return Experiment(name, scale, "Figure 2: test accuracy and validation loss for several q", tuple(cfgs),
                          (d10,), "Adam (Sec. 4.1), uniform noise eta in {0, 0.2, 0.6}, q = 0 is CCE")
    if name == "table2":
        if scale == "pocket":  # the pocket MLP stands in for Wang et al.'s shallow CNN
            base = dict(dataset="digits", model="mlp", model_kwargs=(("hidden", (256,)),), ood="photo_patches")
        else:
            base = dict(dataset="cifar10", model="wang_cnn", ood="cifar100")
        epochs = 100 if scale != "lite" else 25
        sched = dict(epochs=epochs, optimizer="sgd", lr=0.01 if scale != "pocket" else 0.1, momentum=0.9,
                     weight_decay=1e-4, milestones=(), batch_size=128, augment=False,
                     prune_start=10 if scale != "lite" else 3, prune_every=10 if scale != "lite" else 3,
                     track_train_softmax=False)
        cfgs = [RunConfig(**base, **sched, noise=kind, eta=0.4, method=m, q=0.7, k=0.5, seed=s)
                for kind in ("open_set", "uniform") for m in TABLE2_METHODS for s in seeds]
        return Experiment(name, scale, "Table 2: open-set noise", tuple(cfgs), (base["dataset"],),
                          f"eta = 0.4, last-epoch test accuracy after {epochs} epochs, no augmentation; "
                          f"outside images: {base['ood']}")
    if name == "human":  # beyond the paper: real human label noise (CIFAR-10N) against its synthetic twin
        title = "Human label noise: CIFAR-10N against its synthetic twin"
        if scale == "pocket":  # the human labels belong to CIFAR-10's images: nothing to run offline
            return Experiment(name, scale, title, (), (), "no runs at the pocket scale: CIFAR-10N labels "
                              "need torchvision's CIFAR-10 (lite and paper scales)")
        cfgs = [RunConfig(**_base("cifar10", scale), noise=kind, eta=0.0, human_labels=labels, method=m, q=0.7,
                          k=0.5, seed=s, track_train_softmax=False)
                for labels in HUMAN_LABEL_SETS for kind in ("human", "human_twin") for m in HUMAN_METHODS
                for s in seeds]
        return Experiment(name, scale, title, tuple(cfgs), ("cifar10",),
                          "Table 1's protocol; human: CIFAR-10N labels (worse, aggre); human_twin: labels drawn "
                          "from the same human transition matrix; q = 0.7, k = 0.5")
    raise ValueError(f"unknown experiment name={name!r}; known experiments: {', '.join(EXPERIMENTS)}")


# --------------------------------------------------------------------------- results (gce.store)
# run ids, provenance and the store live in gce.store; they are re-exported here for compatibility.


# --------------------------------------------------------------------------- running


def default_scale() -> str:
    """The scale the book's notebooks run at: ``$GCE_SCALE``, else ``"pocket"``."""
    return _check_scale(os.environ.get("GCE_SCALE", "pocket"))


def installed_results_dir() -> Path:
    """The results installed with the package (``gce/results``: the stored pocket runs), read-only in general."""
    return Path(str(resources.files("gce").joinpath("results")))


def default_results_dir() -> Path:
    """Where results live: ``$GCE_RESULTS``, else the ``results/`` folder of the book's checkout
    (found by walking up from the working directory to ``_toc.yml``), else the results installed with the
    package (:func:`installed_results_dir`, so that a ``pip install`` in Colab reads the stored pocket runs)."""
    if os.environ.get("GCE_RESULTS"):
        return Path(os.environ["GCE_RESULTS"])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists():
            return folder / "results"
    return installed_results_dir()


def _check_data(configs: Sequence[RunConfig], root) -> None:
    """Load each dataset the configs need once, before any training: a missing or damaged dataset
    raises its :class:`gce.data.DatasetUnavailable` / :class:`gce.data.DatasetCorrupt` (naming the dataset,
    the path and how to get it) here, once, instead of once per group after other groups trained.
    A data folder that did not exist before and is left empty by a failed download is removed again."""
    from . import data

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


def _writable_results(store: ResultStore) -> None:
    try:
        _store.check_writable(store.dir)
    except StoreError as err:
        installed = installed_results_dir().resolve()
        if store.dir.resolve().is_relative_to(installed):
            raise StoreError(f"the installed results ({store.dir}) hold no run for some configs and are read-only; "
                             f"set $GCE_RESULTS (or pass results=) to a writable folder to train them") from None
        raise err from None


def run(name: str, scale: str | None = None, *, results: str | os.PathLike | None = None, device=None, root=None,
        progress: bool = True, max_group: int = 256, engine: str = "local", address: str | None = None,
        gpus_per_run: float = 0.0, on_stored: Callable[[str], None] | None = None
        ) -> tuple[Experiment, ResultStore]:
    """Train every run of ``spec(name, scale)`` that ``results`` does not hold yet, then return the store.

    ``scale`` defaults to :func:`default_scale` (``$GCE_SCALE``) and
    ``results`` to :func:`default_results_dir`.  ``engine`` is ``"local"``
    (this process, batched groups) or ``"ray"`` (one Ray task per run, on the
    cluster at ``address``, ``gpus_per_run`` GPUs each); see :mod:`gce.runners`.
    Each run is stored (:class:`gce.store.ResultStore`, one SQLite transaction)
    the moment it finishes, so an interrupted or killed sweep keeps every
    finished run and the next call trains only the missing ones.  Before any
    training, the results folder is checked to be writable and every dataset
    needed is loaded once (a missing one raises
    :class:`gce.data.DatasetUnavailable` naming it).  Runs that fail are
    reported together at the end (a :class:`RuntimeError` naming each config
    and its error) after all the others have been trained.
    ``store.trained`` lists the run ids trained by this call.

    Runs that need ``T-hat`` (forward correction with an estimated matrix)
    are trained after the CCE run with the same data, noise and seed, whose
    best-validation model gives the estimate (:func:`gce.train.estimate_transition`,
    on the un-augmented noisy training images).  The estimate is stored with
    the CCE run.
    """
    scale = default_scale() if scale is None else _check_scale(scale)
    results = default_results_dir() if results is None else results
    exp = spec(name, scale)
    store = ResultStore(results, scale, name)
    done = store.done()
    todo = [c for c in exp.configs if run_id(c) not in done]
    need_hat = {run_id(cce_twin(c)) for c in exp.configs if c.method == "forward_T_hat"}
    # a CCE twin that is stored without its estimate must be retrained (its model gives T-hat)
    first = [c for c in todo if c.method != "forward_T_hat"]
    for c in exp.configs:
        twin = cce_twin(c)
        if c.method == "forward_T_hat" and run_id(twin) in done and store.t_hat(c) is None and twin not in first:
            first.append(twin)
    second = [c for c in todo if c.method == "forward_T_hat"]
    if not first and not second:
        return exp, store
    _writable_results(store)  # before any work: a read-only folder is found now, not after training
    runner = runners.make_engine(engine, device=device, root=root, progress=progress, max_group=max_group,
                                 address=address, gpus_per_run=gpus_per_run)
    if engine == "local" or address is None:  # a remote Ray cluster's workers hold the data, not this machine
        _check_data(first + second, root)
    prov = provenance(getattr(runner, "device", "cpu"))

    def stored(res, t_hat, run_prov):
        rid = run_id(res.config)
        store.add([res], run_prov, scale, {rid: t_hat} if t_hat is not None else None)  # durable on return
        store.trained.append(rid)
        if on_stored is not None:
            on_stored(rid)

    failures = runner.execute(first, {}, need_hat, run_id, stored, prov) if first else []
    if second:
        transitions, ready = {}, []
        for c in second:
            T_hat = store.t_hat(c)
            if T_hat is None:
                failures.append(runners.Failure(c, "its CCE twin did not finish, so there is no T-hat to use"))
                continue
            transitions[len(ready)] = torch.tensor(T_hat, dtype=torch.float64)
            ready.append(c)
        failures += runner.execute(ready, transitions, set(), run_id, stored, prov)
    if failures:
        lines = "\n".join(f"- {run_id(f.config)} {f.config}: {f.error}" for f in failures)
        n_ok = len(store.trained)
        raise RuntimeError(f"{len(failures)} of {len(first) + len(second)} runs failed ({n_ok} trained now and "
                           f"stored in {store.path}):\n{lines}")
    return exp, store


# --------------------------------------------------------------------------- the paper's numbers


def _paper_csv(name: str) -> pd.DataFrame:
    with resources.files("gce").joinpath("paper", name).open() as f:
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
__all__ += ["paper_fig1b", "TABLE1_METHODS", "TABLE1_NOISE", "FIG2_QS", "FIG2_ETAS", "TABLE2_METHODS"]
