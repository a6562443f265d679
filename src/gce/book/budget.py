"""How much a call may train without being asked: a few runs, never a grid.

:func:`gce.book.experiments.run` trains the runs that its results folder lacks.
Inside the book's checkout (or with the package's stored results) that is
none; a chapter run against an empty or wrong results folder would instead
retrain a whole grid, for minutes or hours, and show numbers that differ from
the book's.  So a call that would train more than :data:`MAX_UNASKED_RUNS`
runs stops first, with one line that says how many runs, roughly how long, and
how to allow it:

- ``allow_training=True`` in :func:`gce.book.experiments.run`;
- the environment variable ``GCE_ALLOW_TRAINING=1`` (for a whole notebook or
  session, e.g. ``GCE_SCALE=lite GCE_ALLOW_TRAINING=1 jupyter lab``);
- ``python -m gce reproduce``, which is a request to train and allows it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

__all__ = ["MAX_UNASKED_RUNS", "ALLOW_ENV", "CPU_GFLOPS", "TrainingNotAllowed", "training_allowed",
           "rough_duration", "check"]

#: The most runs a call trains without being asked.
MAX_UNASKED_RUNS = 8
#: The environment variable that allows any amount of training (``1``, ``true`` or ``yes``).
ALLOW_ENV = "GCE_ALLOW_TRAINING"
#: The training rate, in GFLOP/s, assumed for the rough estimate of pocket (MLP) runs on a CPU; about what the
#: pocket engine reaches on one busy core (``benchmarks/threads.py`` and ``benchmarks/pocket.py`` measure it).
CPU_GFLOPS = 40.0


class TrainingNotAllowed(RuntimeError):
    """A call would train more than :data:`MAX_UNASKED_RUNS` runs and was not allowed to."""


def training_allowed(allow: bool | None = None) -> bool:
    """``allow`` when it is given, else whether ``$GCE_ALLOW_TRAINING`` is ``1``, ``true`` or ``yes``."""
    if allow is not None:
        return bool(allow)
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")


def rough_duration(configs: Sequence, flops: Callable[[Sequence], float] | None = None) -> str:
    """Words for how long training ``configs`` takes: from their FLOPs at :data:`CPU_GFLOPS` for MLP runs
    (``flops``: :func:`gce.book.experiments.grid_flops`), else only their number of epochs."""
    epochs = sum(int(c.epochs) for c in configs)
    if flops is not None and all(c.model == "mlp" for c in configs):
        try:
            seconds = flops(configs) / (CPU_GFLOPS * 1e9)
        except Exception:  # noqa: BLE001 - an estimate only: fall back to the epochs
            seconds = None
        if seconds is not None:
            return f"roughly {_duration(seconds)} on one CPU core"
    models = ", ".join(sorted({c.model for c in configs}))
    return f"{epochs} epochs of {models} in all, hours without a GPU"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def check(configs: Sequence, allow: bool | None, what: str, folder, flops=None,
          command: str = "python -m gce reproduce") -> None:
    """Raise :class:`TrainingNotAllowed` (one line) when ``configs`` are more than :data:`MAX_UNASKED_RUNS`
    runs and training is not allowed (:func:`training_allowed`), or are any runs and ``allow`` is False;
    ``what`` names the grid, ``folder`` the results folder that lacks them, ``command`` the command line
    that trains them."""
    n = len(configs)
    if n == 0 or training_allowed(allow) or (allow is None and n <= MAX_UNASKED_RUNS):
        return
    if allow is False:
        raise TrainingNotAllowed(f"{n} runs of {what} are not in {folder} and allow_training=False")
    raise TrainingNotAllowed(
        f"{n} runs of {what} are not in {folder}; training them would take {rough_duration(configs, flops)}. "
        f"To train them pass allow_training=True, set {ALLOW_ENV}=1, or run {command}; "
        f"to read stored results instead, set $GCE_RESULTS to the folder that holds them")
