"""Several experiments of one scale at once, in processes side by side: ``python -m gce reproduce all --jobs 2``.

On a CPU the pocket engine trains fastest with one thread per process
(:mod:`gce.threads`), so a machine with ``n`` cores rebuilds a grid fastest with
``n`` processes side by side, each training its own experiments.
:func:`partition` splits the experiments into ``jobs`` groups of about equal
cost (longest first, each to the currently cheapest group; an experiment larger
than half a ``jobs``-th of the whole is split into ``jobs`` parts that keep each
noisy-label cell together, so that the groups can be levelled with smaller pieces); the cost of an
experiment is its floating-point operations at the pocket scale (:func:`gce.book.experiments.grid_flops`,
times :data:`AUTOGRAD_COST` for the losses whose gradient the engine takes by autograd) and its run-epochs
elsewhere.  Every run is stored by the process that trains it, in the one result store of the scale.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence

from ..train import LATER_METHODS
from . import experiments

__all__ = ["Unit", "AUTOGRAD_COST", "experiment_cost", "partition", "unit_args", "run_jobs"]

#: Seconds per FLOP of a pocket run of a loss trained through autograd (:data:`gce.train.LATER_METHODS`), relative
#: to the paper's losses with their closed-form gradients.  Measured by ``benchmarks/cpu_rebuild.py --scale pocket``
#: on 2026-12-06 on two idle cores: the later losses' grid took 21.8 s per TFLOP of
#: :func:`gce.book.experiments.grid_flops`, Table 1's grid, the same configs with the paper's losses, 17.9 s.
AUTOGRAD_COST = 1.22

#: A unit of work: an experiment's name and ``None`` (all of it) or ``(i, n)`` (its part ``i`` of ``n``).
Unit = tuple[str, "tuple[int, int] | None"]


def experiment_cost(name: str, scale: str, shard: tuple[int, int] | None = None) -> float:
    """The cost of training every run of ``spec(name, scale)`` (or of its part ``shard``): FLOPs for the
    pocket MLP grids, else run-epochs."""
    configs = experiments.spec(name, scale).configs
    if shard is not None:
        configs = tuple(experiments.shard_configs(configs, *shard))
    if not configs:
        return 0.0
    if scale == "pocket" and all(c.model == "mlp" for c in configs):  # elsewhere FLOPs would load the data
        autograd = [c for c in configs if c.method in LATER_METHODS]
        plain = [c for c in configs if c.method not in LATER_METHODS]
        return experiments.grid_flops(plain) + AUTOGRAD_COST * experiments.grid_flops(autograd)
    return float(sum(c.epochs for c in configs))


def partition(names: Sequence[str], scale: str, jobs: int) -> list[list[Unit]]:
    """The experiments ``names`` as at most ``jobs`` non-empty groups of work of about equal cost.

    A unit of work is ``(name, shard)``: a whole experiment (``shard`` is ``None``) or, for an experiment that
    costs more than half a ``jobs``-th of the total, one of ``jobs`` parts of it
    (:func:`gce.book.experiments.shard_configs`).  Units go longest first, each to the currently cheapest group.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive number of processes, got jobs={jobs!r}")
    costs = {n: experiment_cost(n, scale) for n in names}
    share = sum(costs.values()) / jobs
    units: dict[Unit, float] = {}
    for n in names:
        if jobs > 1 and costs[n] > share / 2:
            units.update({(n, (i, jobs)): experiment_cost(n, scale, (i, jobs)) for i in range(jobs)})
        else:
            units[(n, None)] = costs[n]
    groups: list[list[Unit]] = [[] for _ in range(min(jobs, len(units)))]
    load = [0.0] * len(groups)
    for u in sorted(units, key=lambda u: -units[u]):
        i = load.index(min(load))
        groups[i].append(u)
        load[i] += units[u]
    return [g for g in groups if g]


def unit_args(unit: Unit) -> list[str]:
    """The ``python -m gce reproduce`` arguments that train one unit of work."""
    name, shard = unit
    return [name] if shard is None else [name, "--shard", f"{shard[0]}/{shard[1]}"]


def run_jobs(groups: Sequence[Sequence[Unit]], options: Sequence[str]) -> int:
    """Train every group at once, each in its own processes (one ``python -m gce reproduce`` per unit, one
    after another); wait for all of them.

    Returns the largest exit code (0 when every process succeeded).  Each child stores its runs the moment
    they finish, so an interrupted command loses nothing and the same command resumes it.
    """
    codes = [0] * len(groups)
    procs: list[subprocess.Popen | None] = [None] * len(groups)

    def work(i: int) -> None:
        for unit in groups[i]:
            procs[i] = subprocess.Popen([sys.executable, "-m", "gce", "reproduce", *unit_args(unit), *options])
            codes[i] = max(codes[i], procs[i].wait())
            if codes[i]:
                return

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(groups))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:  # the children got the same Ctrl-C: let them save and stop
        for p in procs:
            if p is not None:
                p.wait()
        raise
    return max(codes, default=0)
