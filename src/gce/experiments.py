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
:func:`run` trains what is not yet in the :class:`ResultStore` (so an
interrupted sweep loses nothing: finished runs are saved as they finish and
skipped on the next call) and returns the stored results.  The paper's own
numbers for Table 1 and Table 2 are kept as data (:func:`paper_table1`,
:func:`paper_table2`) so that every table shows ours beside theirs.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import pandas as pd
import torch

from . import train as _train
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


# --------------------------------------------------------------------------- results with provenance


_LATER_FIELDS = {"precision": "fp32", "channels_last": False, "compile": False, "human_labels": None}


def run_id(config: RunConfig) -> str:
    """A short stable hash of the config: the key under which a run is stored."""
    d = config.to_dict()
    for key, default in _LATER_FIELDS.items():  # fields added after results were first stored:
        if d.get(key) == default:                # at their defaults they leave the key unchanged
            d.pop(key)
    blob = json.dumps(d, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5)
        commit = out.stdout.strip()
        if not commit:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("+dirty" if dirty else "")  # +dirty: src/ differed from the commit
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(device: torch.device | str = "cpu") -> dict:
    """Columns stored with every run: commit, versions, device, date."""
    from . import __version__
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return {"commit": _git_commit(), "gce_version": __version__, "torch_version": torch.__version__,
            "python_version": platform.python_version(), "device": name,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


class ResultStore:
    """Tidy result tables of one experiment at one scale, under ``root/<scale>/``.

    ``<experiment>_runs.csv`` has one row per run (its config, its summary
    numbers, the ``T`` it used, provenance); ``<experiment>_history.csv`` one
    row per run and epoch.  Both are rewritten atomically after each group of
    runs, so an interrupted sweep keeps every finished run.
    """

    def __init__(self, root: str | os.PathLike, scale: str, experiment: str):
        self.dir = Path(root) / _check_scale(scale)
        self.experiment = experiment
        self.runs_path = self.dir / f"{experiment}_runs.csv"
        self.history_path = self.dir / f"{experiment}_history.csv"
        self.runs = self._read(self.runs_path)
        self.history = self._read(self.history_path)
        self._pending_runs: list[dict] = []
        self._pending_hist: list[dict] = []
        self._dirty = False
        self.trained: list[str] = []

    @staticmethod
    def _read(path: Path) -> pd.DataFrame:
        if not path.exists():
            return pd.DataFrame()
        try:
            df = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ValueError(f"result file {path} is corrupt ({err}); move it away to start this experiment afresh")
        if "run_id" not in df.columns:
            raise ValueError(f"result file {path} has no run_id column: it is not a gce result table")
        return df

    def done(self) -> set[str]:
        self._merge()
        return set(self.runs["run_id"]) if len(self.runs) else set()

    def add(self, results: Sequence[_train.RunResult], prov: dict, scale: str,
            t_hat: dict[str, list] | None = None, flush: bool = True) -> None:
        """Add finished runs (replacing stored runs with the same id); write the files unless ``flush=False``."""
        for r in results:
            rid = run_id(r.config)
            self._pending_runs.append({
                "run_id": rid, "experiment": self.experiment, "scale": scale, **_flat_config(r.config),
                "best_epoch": r.best_epoch, "test_acc_best_val": r.test_acc_best_val,
                "test_acc_last": r.test_acc_last, "flip_rate_train": r.flip_rate_train,
                "flip_rate_val": r.flip_rate_val, "T_used": json.dumps(r.T_used) if r.T_used is not None else "",
                "T_hat_estimate": json.dumps((t_hat or {}).get(rid)) if (t_hat or {}).get(rid) else "",
                **prov})
            for e in range(r.epochs):
                self._pending_hist.append({"run_id": rid, "epoch": e + 1,
                                           **{k: v[e] for k, v in r.history.items()}})
        if flush:
            self.flush()

    def _merge(self) -> None:
        if not self._pending_runs:
            return
        rows, hist = pd.DataFrame(self._pending_runs), pd.DataFrame(self._pending_hist)
        rows = rows.drop_duplicates("run_id", keep="last")
        new_ids = set(rows["run_id"])
        hist = hist[hist["run_id"].isin(new_ids)].drop_duplicates(["run_id", "epoch"], keep="last")
        keep_runs = self.runs[~self.runs["run_id"].isin(new_ids)] if len(self.runs) else self.runs
        keep_hist = self.history[~self.history["run_id"].isin(new_ids)] if len(self.history) else self.history
        self.runs = pd.concat([keep_runs, rows], ignore_index=True)
        self.history = pd.concat([keep_hist, hist], ignore_index=True)
        self._pending_runs, self._pending_hist = [], []
        self._dirty = True

    def flush(self) -> None:
        """Write the tables (atomically: a temporary file, then a rename) if anything was added."""
        self._merge()
        if self._dirty:
            self._write()
            self._dirty = False

    def _write(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for df, path in ((self.runs, self.runs_path), (self.history, self.history_path)):
            tmp = path.with_suffix(".csv.tmp")
            df.to_csv(tmp, index=False, float_format="%.6g")
            os.replace(tmp, path)

    def t_hat(self, config: RunConfig) -> list | None:
        """The T-hat estimated from the stored CCE run matching ``config`` (None if not stored)."""
        self._merge()
        if not len(self.runs) or "T_hat_estimate" not in self.runs:
            return None
        rid = run_id(_cce_twin(config))
        row = self.runs[self.runs["run_id"] == rid]
        if not len(row) or not isinstance(row["T_hat_estimate"].iloc[0], str) or not row["T_hat_estimate"].iloc[0]:
            return None
        return json.loads(row["T_hat_estimate"].iloc[0])


def _flat_config(cfg: RunConfig) -> dict:
    d = cfg.to_dict()
    d["milestones"] = " ".join(str(m) for m in cfg.milestones)
    d["model_kwargs"] = json.dumps(d["model_kwargs"])
    return d


def _cce_twin(cfg: RunConfig) -> RunConfig:
    """The CCE run whose trained model gives the T-hat of a forward_T_hat run (same data, noise and seed)."""
    return replace(cfg, method="cce", q=0.7, k=0.5)


# --------------------------------------------------------------------------- running


def default_scale() -> str:
    """The scale the book's notebooks run at: ``$GCE_SCALE``, else ``"pocket"``."""
    return _check_scale(os.environ.get("GCE_SCALE", "pocket"))


def default_results_dir() -> Path:
    """Where results live: ``$GCE_RESULTS``, else the ``results/`` folder of the book's checkout
    (found by walking up from the working directory to ``_toc.yml``), else ``./results``."""
    if os.environ.get("GCE_RESULTS"):
        return Path(os.environ["GCE_RESULTS"])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists():
            return folder / "results"
    return here / "results"


def run(name: str, scale: str | None = None, *, results: str | os.PathLike | None = None, device=None, root=None,
        progress: bool = True, max_group: int = 256, engine: str = "local", address: str | None = None,
        gpus_per_run: float = 0.0, on_stored: Callable[[str], None] | None = None
        ) -> tuple[Experiment, ResultStore]:
    """Train every run of ``spec(name, scale)`` that ``results`` does not hold yet, then return the store.

    ``scale`` defaults to :func:`default_scale` (``$GCE_SCALE``) and
    ``results`` to :func:`default_results_dir`.  ``engine`` is ``"local"``
    (this process, batched groups) or ``"ray"`` (one Ray task per run, on the
    cluster at ``address``, ``gpus_per_run`` GPUs each); see :mod:`gce.runners`.
    Each run is stored as soon as it finishes, so an interrupted sweep keeps
    every finished run and the next call trains only the missing ones.  Runs
    that fail are reported together at the end (a :class:`RuntimeError` naming
    each config and its error) after all the others have been trained.
    ``store.trained`` lists the run ids trained by this call.

    Runs that need ``T-hat`` (forward correction with an estimated matrix)
    are trained after the CCE run with the same data, noise and seed, whose
    best-validation model gives the estimate (:func:`gce.train.estimate_transition`,
    on the un-augmented noisy training images).  The estimate is stored with
    the CCE run.
    """
    from . import runners

    scale = default_scale() if scale is None else scale
    results = default_results_dir() if results is None else results
    exp = spec(name, scale)
    store = ResultStore(results, scale, name)
    runner = runners.make_engine(engine, device=device, root=root, progress=progress, max_group=max_group,
                                 address=address, gpus_per_run=gpus_per_run)
    prov = provenance(getattr(runner, "device", "cpu"))
    done = store.done()
    todo = [c for c in exp.configs if run_id(c) not in done]
    need_hat = {run_id(_cce_twin(c)) for c in exp.configs if c.method == "forward_T_hat"}
    # a CCE twin that is stored without its estimate must be retrained (its model gives T-hat)
    first = [c for c in todo if c.method != "forward_T_hat"]
    for c in exp.configs:
        twin = _cce_twin(c)
        if c.method == "forward_T_hat" and run_id(twin) in done and store.t_hat(c) is None and twin not in first:
            first.append(twin)
    second = [c for c in todo if c.method == "forward_T_hat"]

    last_write = [time.monotonic()]

    def stored(res, t_hat, run_prov):
        rid = run_id(res.config)
        store.add([res], run_prov, scale, {rid: t_hat} if t_hat is not None else None, flush=False)
        store.trained.append(rid)
        if time.monotonic() - last_write[0] > 2.0:  # write at most every 2 s; the rest at the end
            store.flush()
            last_write[0] = time.monotonic()
        if on_stored is not None:
            on_stored(rid)

    try:
        failures = runner.execute(first, {}, need_hat, run_id, stored, prov) if first else []
    finally:
        store.flush()  # also on Ctrl-C: every finished run is on disk
    if second:
        transitions, ready = {}, []
        for c in second:
            T_hat = store.t_hat(c)
            if T_hat is None:
                failures.append(runners.Failure(c, "its CCE twin did not finish, so there is no T-hat to use"))
                continue
            transitions[len(ready)] = torch.tensor(T_hat, dtype=torch.float64)
            ready.append(c)
        try:
            failures += runner.execute(ready, transitions, set(), run_id, stored, prov)
        finally:
            store.flush()
    if failures:
        lines = "\n".join(f"- {run_id(f.config)} {f.config}: {f.error}" for f in failures)
        raise RuntimeError(f"{len(failures)} of {len(first) + len(second)} runs failed (the others are stored "
                           f"in {store.dir}):\n{lines}")
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
