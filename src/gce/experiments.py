"""The paper's figures and tables as grids of runs, at three scales, with resumable stored results.

==========  =================================================================
scale       what it runs
==========  =================================================================
``pocket``  offline, CPU, minutes: scikit-learn's digits, BatchNorm-free small
            networks (batched with vmap), the paper's epoch counts and
            schedules, 5 seeds.  What CI and the rendered book run.
``lite``    the real datasets (FASHION-MNIST, CIFAR-10/100), the paper's
            networks, schedules shortened to a quarter, one seed, one GPU
            (what a Colab student runs; its run time is not measured yet).
``paper``   the paper's protocol exactly (Sec. 3.2, 4, 4.1, 4.2), 5 seeds.
==========  =================================================================

Each experiment (:data:`EXPERIMENTS`: ``fig1``, ``fig2``, ``table1``,
``table2``) is a grid of :class:`gce.train.RunConfig` built by :func:`spec`.
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
EXPERIMENTS = ("fig1", "fig2", "table1", "table2")
METHOD_LABELS = {"cce": "CCE", "mae": "MAE", "forward_T": "Forward T", "forward_T_hat": "Forward T_hat",
                 "lq": "Lq", "trunc_lq": "Trunc Lq"}
TABLE1_METHODS = ("cce", "mae", "forward_T", "forward_T_hat", "lq", "trunc_lq")
TABLE1_NOISE = tuple([("uniform", e) for e in (0.2, 0.4, 0.6, 0.8)] +
                     [("class_dependent", e) for e in (0.1, 0.2, 0.3, 0.4)])
TABLE2_METHODS = ("cce", "forward_T_hat", "mae", "lq", "trunc_lq")
FIG2_QS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FIG2_ETAS = (0.0, 0.2, 0.6)


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
    if scale == "lite":
        sched = dict(epochs=sched["epochs"] // 4, milestones=tuple(m // 4 for m in sched["milestones"]),
                     prune_start=sched["prune_start"] // 4, prune_every=3)
    return dict(dataset=dataset, model=model, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4,
                batch_size=128, augment=True, **sched)


def _datasets(scale: str, paper: Sequence[str]) -> tuple[str, ...]:
    return ("digits",) if scale == "pocket" else tuple(paper)


def _seeds(scale: str) -> range:
    return range(1) if scale == "lite" else range(5)


def _adam(base: dict, scale: str) -> dict:
    """Sec. 4.1 trains with Adam's defaults (lr 1e-3), no schedule, no weight decay."""
    out = dict(base, optimizer="adam", lr=1e-3, weight_decay=0.0, milestones=())
    return out


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
        cfgs = [RunConfig(**_adam(_base(d, scale), scale), noise="none", eta=0.0, method=m, seed=s,
                          track_train_softmax=False)
                for d in datasets for m in ("cce", "mae") for s in fig_seeds]
        d10 = datasets[0]
        cfgs += [RunConfig(**_adam(_base(d10, scale), scale), noise="uniform", eta=0.4, method=m, q=0.7, seed=s)
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
                cfgs += [RunConfig(**_adam(_base(d10, scale), scale), noise="none" if eta == 0 else "uniform",
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
    raise ValueError(f"unknown experiment name={name!r}; known experiments: {', '.join(EXPERIMENTS)}")


# --------------------------------------------------------------------------- results with provenance


_LATER_FIELDS = {"precision": "fp32", "channels_last": False, "compile": False}


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


# --------------------------------------------------------------------------- summaries


def _pm(values: pd.Series) -> str:
    return f"{100 * values.mean():.2f} ± {100 * values.std(ddof=1):.2f}" if len(values) > 1 else f"{100 * values.mean():.2f}"


def summarize_table1(runs: pd.DataFrame) -> pd.DataFrame:
    """Our Table 1: mean and std (%) of the best-validation-epoch test accuracy over seeds.

    One row per (dataset, noise, eta, method) with ``mean``, ``std``, the number
    of ``seeds`` and the mean realised training flip rate.
    """
    g = runs.groupby(["dataset", "noise", "eta", "method"], sort=False)
    out = g.agg(mean=("test_acc_best_val", lambda s: 100 * s.mean()),
                std=("test_acc_best_val", lambda s: 100 * s.std(ddof=1) if len(s) > 1 else float("nan")),
                seeds=("seed", "nunique"), realised_rate=("flip_rate_train", "mean")).reset_index()
    return out


def table1_wide(runs: pd.DataFrame, with_paper: bool = True) -> pd.DataFrame:
    """Table 1 laid out as in the paper: methods as rows, noise settings as columns, ``mean ± std``.

    With ``with_paper`` each dataset's block is followed by the paper's rows for
    the corresponding real dataset (pocket digits have no counterpart: the
    paper's CIFAR-10 rows are shown for reference).
    """
    ours = summarize_table1(runs)
    ours["cell"] = [f"{m:.2f} ± {s:.2f}" if s == s else f"{m:.2f}" for m, s in zip(ours["mean"], ours["std"])]
    ours["source"] = "ours (" + ours["dataset"] + ")"
    frames = [ours]
    if with_paper:
        paper = paper_table1()
        keep = ["cifar10"] if set(ours["dataset"]) == {"digits"} else sorted(set(ours["dataset"]))
        paper = paper[paper["dataset"].isin(keep)].copy()
        paper["cell"] = [f"{m:.2f} ± {s:.2f}" for m, s in zip(paper["mean"], paper["std"])]
        paper["source"] = "paper (" + paper["dataset"] + ")"
        frames.append(paper)
    both = pd.concat(frames, ignore_index=True)
    both["method"] = both["method"].map(METHOD_LABELS)
    both["setting"] = both["noise"].map({"uniform": "uniform", "class_dependent": "class-dep."}) + \
        " " + both["eta"].map(lambda e: f"{e:g}")
    wide = both.pivot_table(index=["source", "method"], columns="setting", values="cell", aggfunc="first", sort=False)
    cols = [f"uniform {e:g}" for e in (0.2, 0.4, 0.6, 0.8)] + [f"class-dep. {e:g}" for e in (0.1, 0.2, 0.3, 0.4)]
    return wide[[c for c in cols if c in wide.columns]]


def table2_wide(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 2 as in the paper, ours (mean ± std over seeds, last epoch) beside the paper's numbers."""
    g = runs.groupby(["noise", "method"], sort=False)["test_acc_last"]
    ours = g.agg(lambda s: _pm(s)).rename("ours").reset_index()
    paper = paper_table2().rename(columns={"accuracy": "paper"})
    both = ours.merge(paper, on=["noise", "method"], how="outer")
    both["method"] = both["method"].map({**METHOD_LABELS, "wang2018": "Wang et al."})
    both["noise"] = both["noise"].map({"open_set": "open-set", "uniform": "closed-set (uniform)"})
    return both.set_index(["noise", "method"])


__all__ += ["summarize_table1", "table1_wide", "table2_wide", "TABLE1_METHODS", "TABLE1_NOISE", "FIG2_QS",
            "FIG2_ETAS", "TABLE2_METHODS"]


# ---- cce_vs_mae ----
# Summaries of the chapter "CCE vs MAE in practice" (Fig. 1a, b and Eq. 5 of Sec. 3.2).

import numpy as _np  # noqa: E402


def _pct(threshold: float) -> str:
    return f"{100 * threshold:g}%"


def _select(runs: pd.DataFrame, select: dict | None) -> pd.DataFrame:
    if not select:
        return runs
    mask = _np.ones(len(runs), dtype=bool)
    for key, value in select.items():
        mask &= (runs[key] == value).to_numpy()
    return runs[mask]


def convergence_table(runs: pd.DataFrame, history: pd.DataFrame, *, by: Sequence[str] = ("dataset", "method"),
                      thresholds: Sequence[float] = (0.9, 0.95), metric: str = "test_acc",
                      per_run: bool = False) -> pd.DataFrame:
    """How fast and how far each group of runs learns: the numbers behind Fig. 1(a, b) (Sec. 3.2).

    For every run: the first epoch (1-based) at which ``metric`` reaches each
    threshold (NaN if it never does), the best value of ``metric`` and the
    first epoch at which it is attained, and the value at the last epoch.
    With ``per_run`` those rows are returned; otherwise one row per group of
    ``by`` holds their means over the group's runs (the seeds), with
    ``seeds`` (the number of runs), ``epoch_to_<t>_min``/``_max`` (the
    spread over seeds) and ``reached_<t>`` (how many runs reach ``t``; the
    mean ``epoch_to_<t>`` is over those runs only).  Accuracies stay fractions.
    """
    by = list(by)
    if not len(runs):
        raise ValueError("no runs to summarise")
    missing = [k for k in by if k not in runs.columns]
    if missing:
        raise ValueError(f"runs has no column(s) {missing}")
    h = history[history["run_id"].isin(runs["run_id"])].sort_values(["run_id", "epoch"])
    rows = []
    for rid, g in h.groupby("run_id", sort=False):
        values, epochs = g[metric].to_numpy(dtype=float), g["epoch"].to_numpy()
        row = {"run_id": rid}
        for t in thresholds:
            hit = values >= t
            row[f"epoch_to_{_pct(t)}"] = float(epochs[hit.argmax()]) if hit.any() else _np.nan
        best = int(_np.nanargmax(values))
        row.update(best=float(values[best]), best_epoch=int(epochs[best]), last=float(values[-1]))
        rows.append(row)
    per = runs[["run_id", *by]].merge(pd.DataFrame(rows), on="run_id")
    if per_run:
        return per.reset_index(drop=True)
    g = per.groupby(by, sort=False)
    out = g.agg(seeds=("run_id", "size")).reset_index()
    for t in thresholds:
        col = f"epoch_to_{_pct(t)}"
        stats = g[col].agg(["mean", "min", "max", "count"]).reset_index(drop=True)
        out[col] = stats["mean"].to_numpy()
        out[f"{col}_min"] = stats["min"].to_numpy()
        out[f"{col}_max"] = stats["max"].to_numpy()
        out[f"reached_{_pct(t)}"] = stats["count"].to_numpy().astype(int)
    means = g[["best", "best_epoch", "last"]].mean().reset_index(drop=True)
    for col in ("best", "best_epoch", "last"):
        out[col] = means[col].to_numpy()
    return out


def paper_fig1b() -> pd.DataFrame:
    """The two numbers Sec. 3.2 gives for Fig. 1(b) (CIFAR-100, clean labels, ResNet, Adam):
    the best test accuracy (%) and the epoch by which it was reached."""
    return pd.DataFrame({"method": ["cce", "mae"], "dataset": ["cifar100", "cifar100"],
                         "best_test_acc": [39.92, 38.29], "epochs": [7, 2000],
                         "note": ["after 7 epochs", "best within 2000 epochs"]})


def short_trajectory(loss: str, optimizer: str, lr: float, *, steps: int = 5, seed: int = 0, n: int = 64,
                     dim: int = 8, num_classes: int = 4, momentum: float = 0.9,
                     weight_decay: float = 0.0) -> _np.ndarray:
    """Parameters of a linear softmax classifier after each of ``steps`` full-batch steps (float64).

    ``loss`` is ``"cce"`` (Eq. 2), ``"mae"`` (Eq. 4, ``2 - 2 f_y``) or
    ``"unhinged"`` (``1 - f_y``, i.e. ``L_q`` at ``q = 1``, Eq. 6);
    ``optimizer`` is ``"sgd"`` (with ``momentum``) or ``"adam"`` (PyTorch's
    defaults otherwise).  Data and initial weights come from ``seed`` only, so
    two calls differ only in the loss and the optimiser.  Used to show that
    MAE at learning rate ``a`` follows the unhinged loss at ``2a`` under SGD,
    and at the same ``a`` under Adam (which divides out a constant factor).
    Returns an array of shape ``(steps, (dim + 1) * num_classes)``.
    """
    from . import losses as _losses

    if loss not in ("cce", "mae", "unhinged"):
        raise ValueError(f"loss must be 'cce', 'mae' or 'unhinged', got {loss!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    y = torch.randint(0, num_classes, (n,), generator=gen)
    w = (0.1 * torch.randn(dim, num_classes, generator=gen, dtype=torch.float64)).requires_grad_()
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    if optimizer == "sgd":
        opt = torch.optim.SGD([w, b], lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam([w, b], lr=lr, weight_decay=weight_decay)
    fn = {"cce": _losses.cce, "mae": _losses.mae, "unhinged": lambda z, t: _losses.lq(z, t, 1.0)}[loss]
    out = []
    for _ in range(steps):
        opt.zero_grad()
        fn(x @ w + b, y).backward()
        opt.step()
        out.append(torch.cat([w.detach().flatten(), b.detach()]).numpy().copy())
    return _np.stack(out)


def format_convergence(table: pd.DataFrame, *, index: str = "method") -> pd.DataFrame:
    """:func:`convergence_table` for reading: accuracies in %, ``"mean (min-max)"`` epochs per threshold
    (``"never"`` where no run reaches it, ``"k of n runs: ..."`` where only some do), indexed by ``index``."""
    out = pd.DataFrame(index=table[index].map(lambda m: METHOD_LABELS.get(m, m)).rename(index))
    out["seeds"] = table["seeds"].to_numpy()
    for col in [c for c in table.columns if c.startswith("epoch_to_") and c.endswith("%")]:
        cells = []
        for _, row in table.iterrows():
            reached, n = int(row[col.replace("epoch_to_", "reached_")]), int(row["seeds"])
            if reached == 0:
                cells.append("never")
                continue
            cell = f"{row[col]:.1f} ({row[col + '_min']:.0f}-{row[col + '_max']:.0f})"
            cells.append(cell if reached == n else f"{reached} of {n} runs: {cell}")
        out[col.replace("epoch_to_", "epochs to ")] = cells
    out["best (%)"] = [f"{100 * v:.2f}" for v in table["best"]]
    out["epoch of best"] = [f"{v:.1f}" for v in table["best_epoch"]]
    out["last epoch (%)"] = [f"{100 * v:.2f}" for v in table["last"]]
    return out


__all__ += ["convergence_table", "paper_fig1b", "short_trajectory", "format_convergence"]


# ---- dynamics ----
# Summaries of the chapter "Training dynamics" (Fig. 1c and Fig. 2, Sec. 4.1).


def fig2_q(runs: pd.DataFrame) -> pd.Series:
    """The ``q`` of each run as Fig. 2 labels it: 0 for CCE (whose stored ``q`` is unused), else ``q``."""
    return pd.Series(_np.where(runs["method"] == "cce", 0.0, runs["q"].astype(float)), index=runs.index, name="q")


def overfitting_table(runs: pd.DataFrame, history: pd.DataFrame, *, by: Sequence[str] = ("eta",),
                      metric: str = "test_acc", per_run: bool = False) -> pd.DataFrame:
    """How much each run loses after its peak: the check of Sec. 4.1's "no overfitting above a threshold q".

    For every run: ``peak`` (the highest ``metric`` over the epochs),
    ``peak_epoch`` (its first epoch), ``last`` (the last epoch's value),
    ``drop = peak - last`` and ``val_loss_min_epoch`` (the epoch of the
    lowest validation loss, the run's own loss on the noisy validation set).
    One row per group of ``by`` plus ``q`` (Fig. 2's ``q``, 0 for CCE; see
    :func:`fig2_q`) with the means over seeds and the spread of ``drop``
    (``drop_min``, ``drop_max``), unless ``per_run``.  Accuracies stay fractions.
    """
    by = list(by)
    runs = runs.assign(q=fig2_q(runs))
    h = history[history["run_id"].isin(runs["run_id"])].sort_values(["run_id", "epoch"])
    rows = []
    for rid, g in h.groupby("run_id", sort=False):
        values, epochs = g[metric].to_numpy(dtype=float), g["epoch"].to_numpy()
        peak = int(_np.nanargmax(values))
        row = {"run_id": rid, "peak": float(values[peak]), "peak_epoch": int(epochs[peak]),
               "last": float(values[-1]), "drop": float(values[peak] - values[-1])}
        if "val_loss" in g:
            row["val_loss_min_epoch"] = int(epochs[int(_np.nanargmin(g["val_loss"].to_numpy(dtype=float)))])
        rows.append(row)
    keys = [*by, "q"]
    per = runs[["run_id", *keys]].merge(pd.DataFrame(rows), on="run_id")
    if per_run:
        return per.reset_index(drop=True)
    g = per.groupby(keys, sort=True)
    cols = [c for c in ("peak", "peak_epoch", "last", "drop", "val_loss_min_epoch") if c in per]
    out = g[cols].mean()
    out.insert(0, "seeds", g.size())
    out["drop_min"], out["drop_max"] = g["drop"].min(), g["drop"].max()
    return out.reset_index()


def overfitting_threshold(table: pd.DataFrame, tol: float = 0.01, *, by: str = "eta") -> pd.Series:
    """For each value of ``by``: the smallest ``q`` from which on every larger ``q`` too has a mean ``drop``
    of at most ``tol`` (Sec. 4.1's threshold of ``q``); NaN where even the largest ``q`` drops more.

    ``table`` is the output of :func:`overfitting_table` (one row per ``by`` and ``q``).
    """
    out = {}
    for key, g in table.groupby(by, sort=True):
        g = g.sort_values("q")
        ok = (g["drop"] <= tol).to_numpy()
        # how many of the largest q's are all overfitting-free
        trailing = len(ok) if ok.all() else int(_np.argmin(ok[::-1]))
        out[key] = float(g["q"].iloc[len(ok) - trailing]) if trailing else _np.nan
    return pd.Series(out, name=f"smallest q with drop <= {tol:g}").rename_axis(by)


def label_softmax_table(runs: pd.DataFrame, history: pd.DataFrame, epochs: Sequence[int], *,
                        by: Sequence[str] = ("method",)) -> pd.DataFrame:
    """Mean softmax at the given label on training samples whose label is right (``softmax_clean``) or
    wrong (``softmax_noisy``) at the chosen epochs, averaged over seeds, and their ``gap`` (Fig. 1c)."""
    by = list(by)
    h = history[history["run_id"].isin(runs["run_id"]) & history["epoch"].isin(list(epochs))]
    m = h.merge(runs[["run_id", *by]], on="run_id")
    out = m.groupby([*by, "epoch"], sort=False)[["softmax_clean", "softmax_noisy"]].mean()
    out["gap"] = out["softmax_clean"] - out["softmax_noisy"]
    return out.reset_index()


__all__ += ["fig2_q", "overfitting_table", "overfitting_threshold", "label_softmax_table"]


# ---- closed_set ----
# Helpers of the chapters "Closed-set noise" (Table 1) and "Open-set noise" (Table 2).


def cell_means(table: pd.DataFrame) -> pd.DataFrame:
    """The means of a table of ``"mean ± std"`` strings (or plain numbers) as floats; NaN where empty."""
    def parse(v) -> float:
        if isinstance(v, str):
            head = v.split("±")[0].strip()
            try:
                return float(head)
            except ValueError:
                return float("nan")
        try:
            return float(v)
        except (TypeError, ValueError):
            return float("nan")
    return table.apply(lambda col: col.map(parse))


def best_mask(table: pd.DataFrame, n: int = 2, by: str | None = "source") -> pd.DataFrame:
    """True at the ``n`` best means of each column, within each group of rows (Table 1 bolds the best 2).

    ``table`` holds ``"mean ± std"`` strings or numbers (:func:`table1_wide`,
    :func:`table2_wide`); ``by`` is the index level whose groups are ranked
    separately (``"source"``: ours and the paper's blocks; ``None``: all rows
    together).  Means are compared as printed, so ties at the ``n``-th value
    are all marked, as the paper does (CIFAR-100, class-dependent 0.2).
    """
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be a positive integer, got {n!r}")
    means = cell_means(table)
    if by is None:
        groups = [means.index]
    else:
        level = means.index.get_level_values(by)
        groups = [means.index[level == g] for g in pd.unique(level)]
    mask = pd.DataFrame(False, index=table.index, columns=table.columns)
    for rows in groups:
        block = means.loc[rows]
        for col in block.columns:
            vals = block[col].dropna()
            if not len(vals):
                continue
            cutoff = vals.sort_values(ascending=False).iloc[min(n, len(vals)) - 1]
            mask.loc[vals.index[vals >= cutoff], col] = True
    return mask


def style_best(table: pd.DataFrame, n: int = 2, by: str | None = "source", caption: str | None = None):
    """A :class:`pandas.io.formats.style.Styler` of ``table`` with the cells of :func:`best_mask` in bold."""
    mask = best_mask(table, n, by)
    styler = table.style.apply(lambda _: mask.map(lambda b: "font-weight: bold" if b else ""), axis=None)
    styler = styler.set_table_styles([{"selector": "td", "props": "text-align: right; white-space: nowrap"}])
    if caption:
        styler = styler.set_caption(caption)
    return styler


def flip_rate_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Realised noise rates against the nominal ``eta`` (Sec. 4.2), one row per (dataset, noise, eta).

    ``expected`` is :func:`gce.noise.expected_flip_rate` of the noise's ``T``
    with a uniform class prior: ``eta`` for uniform noise, ``eta`` times the
    share of source classes for class-dependent noise (5 of 10 classes, so
    ``eta / 2``).  ``train``/``val`` are the mean realised flip rates over the
    stored runs, ``val_min``/``val_max`` their range on the (small) validation split.
    """
    from . import noise as _noise

    rows = runs[runs["noise"].isin(["uniform", "class_dependent"])]
    g = rows.groupby(["dataset", "noise", "eta"], sort=False)
    out = g.agg(train=("flip_rate_train", "mean"), val=("flip_rate_val", "mean"),
                val_min=("flip_rate_val", "min"), val_max=("flip_rate_val", "max")).reset_index()
    out.insert(3, "expected", [_noise.expected_flip_rate(_noise.transition_matrix(k, d, e))
                               for d, k, e in zip(out["dataset"], out["noise"], out["eta"])])
    return out


def transition_estimate_errors(runs: pd.DataFrame) -> pd.DataFrame:
    """How far Patrini et al.'s ``T-hat`` (stored with the CCE runs) lies from the true ``T`` of Eq. 1.

    One row per run with a ``T_hat_estimate``: ``mean_abs_error`` over all
    ``c * c`` entries, ``diag_abs_error`` over the diagonal (the probabilities
    of keeping a label), and ``max_abs_error``.  The true ``T`` is
    :func:`gce.noise.transition_matrix` of the run's noise, dataset and ``eta``.
    """
    import numpy as np

    from . import noise as _noise

    if "T_hat_estimate" not in runs:
        return pd.DataFrame(columns=["dataset", "noise", "eta", "seed", "mean_abs_error", "diag_abs_error",
                                     "max_abs_error"])
    has = runs["T_hat_estimate"].map(lambda s: isinstance(s, str) and s.startswith("["))
    out = []
    for _, row in runs[has].iterrows():
        T_hat = np.asarray(json.loads(row["T_hat_estimate"]), dtype=float)
        T = _noise.transition_matrix(row["noise"], row["dataset"], float(row["eta"])).numpy()
        err = np.abs(T_hat - T)
        out.append({"dataset": row["dataset"], "noise": row["noise"], "eta": row["eta"], "seed": row["seed"],
                    "mean_abs_error": err.mean(), "diag_abs_error": np.diag(err).mean(),
                    "max_abs_error": err.max()})
    return pd.DataFrame(out)


def pruning_summary(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """What Algorithm 1's pruning did in the stored truncated-``L_q`` runs, one row per run.

    From the stored tables: ``kept_first`` (the fraction kept after the first
    pruning step, epoch ``prune_start``), ``kept_best`` (during the epoch whose
    model is reported by Table 1: ``best_epoch``), ``kept_last``, the share of
    samples with a wrong label ``noisy`` (``flip_rate_train``; for open-set
    noise, the outside images), and bounds on the *precision* of the kept set
    (the share of kept samples whose label is right) that follow from these
    numbers alone: at least ``(kept - noisy) / kept``, at most
    ``(1 - noisy) / kept``.  Which samples were kept is not stored, so the
    precision itself is not (see :func:`first_pruning_step`).
    ``pruned_before_best`` is True when the reported epoch came after the first
    pruning step (``best_epoch >= prune_start``, epochs counted from 0);
    otherwise the reported model is the plain ``L_q`` model.  ``lq_acc`` is the
    test accuracy at the best-validation epoch of the matching ``L_q`` run (same
    noise and seed), ``acc`` that of the truncated run, and ``*_last`` the same
    at the last epoch.
    """
    import numpy as np

    keys = ["dataset", "noise", "eta", "seed"]
    trunc = runs[runs["method"] == "trunc_lq"]
    lq = runs[runs["method"] == "lq"][keys + ["test_acc_best_val", "test_acc_last", "best_epoch"]]
    lq = lq.rename(columns={"test_acc_best_val": "lq_acc", "test_acc_last": "lq_acc_last",
                            "best_epoch": "lq_best_epoch"})
    out = []
    hist = history.set_index(["run_id", "epoch"])["kept"]
    for _, row in trunc.iterrows():
        h = hist.loc[row["run_id"]]
        start, best = int(row["prune_start"]), int(row["best_epoch"])
        kept_first = float(h.get(start + 1, np.nan))  # history epochs count from 1
        kept_best, kept_last = float(h.get(best + 1, np.nan)), float(h.iloc[-1])
        noisy = float(row["flip_rate_train"])
        out.append({**{k: row[k] for k in keys}, "prune_start": start, "best_epoch": best,
                    "pruned_before_best": best >= start, "kept_first": kept_first, "kept_best": kept_best,
                    "kept_last": kept_last, "noisy": noisy,
                    "precision_low": max(0.0, (kept_first - noisy) / kept_first) if kept_first > 0 else np.nan,
                    "precision_high": min(1.0, (1 - noisy) / kept_first) if kept_first > 0 else np.nan,
                    "acc": row["test_acc_best_val"], "acc_last": row["test_acc_last"]})
    out = pd.DataFrame(out)
    if not len(out):
        return out
    return out.merge(lq, on=keys, how="left")


def first_pruning_step(configs: Sequence[RunConfig], *, device=None, root=None) -> pd.DataFrame:
    """Redo the first pruning step of Algorithm 1 for truncated-``L_q`` runs and say which samples it keeps.

    Each run is retrained up to ``prune_start`` only (before it, truncated
    ``L_q`` is plain ``L_q``, so this is the same training as the stored run's
    first epochs, up to floating-point rounding); the parameters of its best
    noisy-validation epoch then give ``f_{y~}(x)`` on every training sample,
    and the sample is kept when ``f_{y~}(x) >= k`` (Eq. 13).  Returns one row
    per run and training sample: ``run`` (index into ``configs``), ``noise``,
    ``eta``, ``seed``, ``label`` (the true class of the image, or of the image
    an outside image replaced), ``noisy_label``, ``clean`` (the label is right
    and, for open-set noise, the image is in-set), ``f_y`` and ``kept``.
    Precision of the kept set = ``clean`` mean over kept rows; recall = ``kept``
    mean over clean rows.
    """
    from . import data as _data

    configs = list(configs)
    for c in configs:
        if c.method != "trunc_lq":
            raise ValueError(f"first_pruning_step needs truncated L_q runs (method='trunc_lq'), got {c.method!r}")
    short = [replace(c, epochs=c.prune_start) for c in configs]
    results = _train.train_many(short, keep_models=True, device=device, root=root)
    out = []
    cache: dict = {}
    for i, (cfg, res) in enumerate(zip(short, results)):
        gd = _train._build_group_data([cfg], root, cache)
        y = gd.train_y[0]
        probs = _train.predict_proba(res.extra["model"], res.extra["train_images"], res.extra["preprocess_mean"])
        f_y = probs.gather(1, y[:, None]).squeeze(1).numpy()
        ds = cache[cfg.dataset]
        if cfg.noise == "open_set":
            ood = cache[("ood", cfg.ood, tuple(ds.train.images.shape[1:]))]
            splits = _data.open_set_splits(ds, ood, cfg.eta, cfg.val_fraction, cfg.seed)
        else:
            kind = ("uniform", 0.0) if cfg.noise == "none" else (cfg.noise, cfg.eta)
            splits = _data.noisy_splits(ds, kind, cfg.val_fraction, cfg.seed)
        if not torch.equal(splits.train.noisy_labels, y):
            raise RuntimeError("the recomputed noisy labels differ from the training run's; cannot match samples")
        true = splits.train.labels.numpy()
        out.append(pd.DataFrame({"run": i, "noise": cfg.noise, "eta": cfg.eta, "seed": cfg.seed,
                                 "label": true, "noisy_label": y.numpy(), "clean": gd.train_clean[0].numpy(),
                                 "f_y": f_y, "kept": f_y >= cfg.k}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


__all__ += ["cell_means", "best_mask", "style_best", "flip_rate_table", "transition_estimate_errors",
            "pruning_summary", "first_pruning_step"]


# ---- open_set ----


def ood_separability(images: torch.Tensor, ood_images: torch.Tensor, *, folds: int = 5, seed: int = 0) -> float:
    """How easily outside images are told from in-set images: the cross-validated accuracy of a
    logistic regression on raw pixels (open-set noise, Table 2).

    Equal numbers of each (the larger set is subsampled with ``seed``), so 0.5
    means the two sets look alike to a linear model and 1.0 means they are
    linearly separable.  ``images`` and ``ood_images`` are ``uint8`` ``(N, C, H, W)``.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    a = torch.as_tensor(images).reshape(len(images), -1).float().numpy() / 255.0
    b = torch.as_tensor(ood_images).reshape(len(ood_images), -1).float().numpy() / 255.0
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"images have {a.shape[1]} pixels, ood_images {b.shape[1]}: the shapes must agree")
    n = min(len(a), len(b))
    if n < folds:
        raise ValueError(f"need at least {folds} images of each kind, got {n}")
    rng = np.random.default_rng(seed)
    a, b = a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]
    X, y = np.concatenate([a, b]), np.repeat([0, 1], n)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(LogisticRegression(max_iter=2000), X, y, cv=cv).mean())


__all__ += ["ood_separability"]
