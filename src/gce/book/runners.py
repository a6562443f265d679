"""Execution engines for experiment grids: in-process (default) or on a Ray cluster.

An engine trains a list of :class:`gce.train.RunConfig` and yields each run as
soon as it finishes: a :class:`Finished` (result, T-hat, provenance), which the
caller (:func:`gce.book.experiments.run`) stores at once, or a :class:`Failure`
(config and error), which does not stop the others.  An engine knows nothing
of the store.

- :class:`LocalEngine` trains in this process, batching runs that share a
  dataset, network and schedule (:func:`gce.train.train_many`), with the
  number of torch threads of :func:`gce.threads.training_threads` (one on
  the CPU unless ``threads`` or ``$GCE_THREADS`` say otherwise).
- :class:`RayEngine` sends every run to a Ray cluster as one task
  (``ray.init(address=...)``; a local one when no address is given), with a
  fractional GPU per run if asked, so that several small runs share a GPU.
  Ray is an optional dependency (``pip install gce[ray]``).

``Finished.t_hat`` is the transition matrix estimated from the run's
best-validation model (Patrini et al. 2017, :func:`gce.train.estimate_transition`),
computed for the runs whose index is in ``want_hat``; it is ``None`` otherwise.
"""

from __future__ import annotations

import math
import re
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from .. import train as _train
from .store import provenance, run_id
from ..threads import torch_threads, training_threads
from ..train import RunConfig, RunResult

__all__ = ["Finished", "Failure", "RunsFailed", "LocalEngine", "RayEngine", "ENGINES", "make_engine", "check_device"]


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Finished:
    """A run that finished: its ``result``, the ``t_hat`` estimated from its model (or None) and the
    ``provenance`` of where it ran (:func:`gce.book.store.provenance`)."""

    result: RunResult
    t_hat: list | None
    provenance: dict


@dataclass
class Failure:
    """A run that raised: its config and the error's text (a traceback or a Ray error, many lines)."""

    config: RunConfig
    error: str

    @property
    def summary(self) -> str:
        """The error in one line: the traceback's last line (``Type: message``), colour codes removed."""
        lines = [line.strip() for line in _ANSI.sub("", self.error).splitlines() if line.strip()]
        last = lines[-1] if lines else "unknown error"
        return last if len(last) <= 300 else last[:297] + "..."

    def line(self) -> str:
        """One line naming the run (id, dataset, noise, method, seed) and its error."""
        c = self.config
        return (f"{run_id(c)} {c.dataset} {c.noise} eta={c.eta:g} {c.method} seed={c.seed}: {self.summary}")

    def __str__(self) -> str:
        return f"run {self.config} failed: {self.error}"


class RunsFailed(RuntimeError):
    """Some runs of an experiment failed (the others were stored): one line of summary, one line per failure.

    ``failures`` keeps each run's config and full error text.
    """

    def __init__(self, failures: Sequence[Failure], total: int, trained: int, path):
        self.failures = list(failures)
        lines = "\n".join(f"- {f.line()}" for f in self.failures)
        super().__init__(f"{len(self.failures)} of {total} runs failed ({trained} trained now and stored in {path};"
                         f" run the same command to retry the failed ones):\n{lines}")


def _t_hat_of(res: RunResult, want: bool) -> list | None:
    """Estimate T-hat from the run's kept best-validation model (and drop the model either way)."""
    model = res.extra.pop("model", None)
    t_hat = None
    if want and model is not None:
        probs = _train.predict_proba(model, res.extra["train_images"], res.extra["preprocess_mean"])
        t_hat = _train.estimate_transition(probs).tolist()
    res.extra.clear()
    return t_hat


class LocalEngine:
    """Train in this process, one batched group after another (the default)."""

    name = "local"

    def __init__(self, device=None, root=None, max_group: int = 256, progress: bool = True,
                 threads: int | None = None):
        self.device = check_device(device)
        self.root, self.max_group, self.progress = root, max_group, progress
        self.threads = training_threads(self.device, threads)  # gce.threads: 1 on the CPU unless asked

    def execute(self, configs: Sequence[RunConfig], transitions: dict[int, torch.Tensor], want_hat: set[int],
                prov: dict) -> Iterator[Finished | Failure]:
        """Train ``configs`` (``transitions[i]``: the T-hat of run ``i`` when it uses ``forward_T_hat``) and yield
        each run as its group finishes, with T-hat estimated for the runs whose index is in ``want_hat`` and
        provenance ``prov``; the runs of a group that raises are yielded as failures."""
        with torch_threads(self.threads):
            for group in _train.split_groups(list(configs), self.max_group):
                cfgs = [configs[i] for i in group]
                trans = {j: transitions[i] for j, i in enumerate(group) if i in transitions}
                try:
                    results = _train.train_many(cfgs, transitions=trans, device=self.device, root=self.root,
                                                progress=self.progress, max_group=self.max_group,
                                                keep_models=any(i in want_hat for i in group))
                except Exception:  # noqa: BLE001 - report the group's runs and go on with the others
                    err = traceback.format_exc(limit=3)
                    yield from (Failure(c, err) for c in cfgs)
                    continue
                for i, res in zip(group, results):
                    yield Finished(res, _t_hat_of(res, i in want_hat), prov)


def _ray_task(config: RunConfig, T: list | None, want_hat: bool, root, use_gpu: bool):
    """One run inside a Ray worker: train, estimate T-hat if asked, return plain data."""
    torch.set_num_threads(1)
    device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
    transitions = {0: torch.tensor(T, dtype=torch.float64)} if T is not None else None
    res = _train.train_many([config], transitions=transitions, device=device, root=root, keep_models=want_hat)[0]
    return res, _t_hat_of(res, want_hat), provenance(device)


class RayEngine:
    """Send each run to a Ray cluster as one task; results are handed back as they finish."""

    name = "ray"

    def __init__(self, address: str | None = None, gpus_per_run: float = 0.0, root=None, progress: bool = True,
                 init_kwargs: dict | None = None):
        try:
            import ray
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("the Ray engine needs Ray: pip install 'gce[ray]' (or pip install ray)") from err
        if isinstance(gpus_per_run, bool) or not isinstance(gpus_per_run, (int, float)) \
                or not math.isfinite(gpus_per_run) or gpus_per_run < 0:
            raise ValueError(f"gpus_per_run must be a finite number >= 0, got gpus_per_run={gpus_per_run!r}")
        self.ray = ray
        self.gpus_per_run, self.root, self.progress = gpus_per_run, root, progress
        if not ray.is_initialized():
            ray.init(address=address, **(init_kwargs or {"log_to_driver": False}))
        if gpus_per_run > 0:
            have = ray.cluster_resources().get("GPU", 0)
            if have < gpus_per_run:  # Ray would queue the tasks forever
                raise ValueError(f"gpus_per_run={gpus_per_run} but the Ray cluster has {have:g} GPU(s); "
                                 f"use --gpus-per-run 0 (CPU) or a cluster with GPUs")

    def execute(self, configs: Sequence[RunConfig], transitions: dict[int, torch.Tensor], want_hat: set[int],
                prov: dict) -> Iterator[Finished | Failure]:
        """As :meth:`LocalEngine.execute`, one Ray task per run, yielded in the order they finish (each with the
        provenance of the worker that trained it)."""
        ray = self.ray
        task = ray.remote(_ray_task).options(num_cpus=1, num_gpus=self.gpus_per_run, max_retries=0)
        pending = {}
        for i, c in enumerate(configs):
            T = transitions[i].tolist() if i in transitions else None
            ref = task.remote(c, T, i in want_hat, self.root, self.gpus_per_run > 0)
            pending[ref] = c
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=len(pending), desc="runs (ray)", unit="run", leave=False)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                config = pending.pop(ref)
                try:
                    res, t_hat, run_prov = ray.get(ref)
                except Exception as err:  # noqa: BLE001 - a failed task is reported, the others go on
                    cause = getattr(err, "cause", None) or err  # a RayTaskError wraps the worker's exception
                    text = str(cause).strip().splitlines()
                    yield Failure(config, f"{type(cause).__name__}: {text[-1] if text else ''}")
                else:
                    yield Finished(res, t_hat, run_prov)
                if bar is not None:
                    bar.update(1)
        except BaseException:
            for ref in pending:  # Ctrl-C: stop what is still queued; what finished is already stored
                ray.cancel(ref, force=True)
            raise
        finally:
            if bar is not None:
                bar.close()


ENGINES = ("local", "ray")


def make_engine(engine: str = "local", *, device=None, root=None, progress: bool = True, max_group: int = 256,
                address: str | None = None, gpus_per_run: float = 0.0, threads: int | None = None):
    """The engine named ``engine`` (``"local"`` or ``"ray"``); ``threads``: the local engine's torch threads
    (:func:`gce.threads.training_threads`; Ray tasks train with one thread each)."""
    if engine == "local":
        return LocalEngine(device=device, root=root, max_group=max_group, progress=progress, threads=threads)
    if engine == "ray":
        return RayEngine(address=address, gpus_per_run=gpus_per_run, root=root, progress=progress)
    raise ValueError(f"unknown engine={engine!r}; known engines: {', '.join(ENGINES)}")


def check_device(device=None) -> torch.device:
    """``device`` as a torch device, checked to exist here (default: cuda if available, else cpu).

    An unknown name, or CUDA/MPS on a machine without it, raises one ``ValueError``
    saying what was asked and what is available.
    """
    available = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
        ["mps"] if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available() else [])
    if device is None:
        return torch.device("cuda") if "cuda" in available else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device={device!r}; available here: {', '.join(available)}") from None
    if dev.type not in available:
        raise ValueError(f"device={device!r} asked, but {dev.type} is not available here; available: "
                         f"{', '.join(available)}")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r} asked, but this machine has {torch.cuda.device_count()} CUDA "
                         f"device(s)")
    return dev
