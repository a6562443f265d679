"""Several experiments of one scale at once, one process each: ``python -m gce reproduce all --jobs 2``.

On a CPU the pocket engine trains fastest with one thread per process
(:mod:`gce.threads`), so a machine with ``n`` cores rebuilds a grid fastest with
``n`` processes side by side, each training its own experiments.
:func:`partition` splits the experiments into ``jobs`` groups of about equal
cost (longest first, each to the currently cheapest group); the cost of an
experiment is its floating-point operations at the pocket scale
(:func:`gce.experiments.grid_flops`) and its run-epochs elsewhere.  Every run is
stored by the process that trains it, in the one result store of the scale.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from . import experiments

__all__ = ["experiment_cost", "partition", "run_jobs"]


def experiment_cost(name: str, scale: str) -> float:
    """The cost of training every run of ``spec(name, scale)``: FLOPs for the pocket MLP grids, else
    run-epochs."""
    configs = experiments.spec(name, scale).configs
    if not configs:
        return 0.0
    if all(c.model == "mlp" for c in configs):
        return experiments.grid_flops(configs)
    return float(sum(c.epochs for c in configs))


def partition(names: Sequence[str], scale: str, jobs: int) -> list[list[str]]:
    """``names`` in at most ``jobs`` non-empty groups of about equal :func:`experiment_cost`."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive number of processes, got jobs={jobs!r}")
    costs = {n: experiment_cost(n, scale) for n in names}
    groups: list[list[str]] = [[] for _ in range(min(jobs, len(names)))]
    load = [0.0] * len(groups)
    for n in sorted(names, key=lambda n: -costs[n]):
        i = load.index(min(load))
        groups[i].append(n)
        load[i] += costs[n]
    return [g for g in groups if g]


def run_jobs(groups: Sequence[Sequence[str]], options: Sequence[str]) -> int:
    """Run ``python -m gce reproduce <group> <options>`` for every group at once; wait for all of them.

    Returns the largest exit code (0 when every process succeeded).  Each child stores its runs the moment
    they finish, so an interrupted command loses nothing and the same command resumes it.
    """
    procs = [subprocess.Popen([sys.executable, "-m", "gce", "reproduce", *g, *options]) for g in groups]
    try:
        return max(p.wait() for p in procs)
    except KeyboardInterrupt:  # the children got the same Ctrl-C: let them save and stop
        for p in procs:
            p.wait()
        raise
