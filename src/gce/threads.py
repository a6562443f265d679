"""How many threads torch trains with: chosen by measurement, not torch's default.

torch starts one intra-op thread per core.  The pocket engine's matrices are
small (one MLP per run, a few thousand samples), and on a small machine those
threads spin against any other busy process.  ``benchmarks/threads.py``
(the first 10 pocket Fig. 1 runs, back to back, on a shared 2-core machine
at load average 8-10) measured 10.3 s at one thread and more than 150 s at
two (stopped there), and beside one more busy process 15.5 s at one thread
and more than 150 s at two; an earlier run at load 0.5 gave 3.2 s at one
thread.  The rule:

1. ``threads`` when the caller gives it, else ``$GCE_THREADS`` when set;
2. one thread when training on the CPU;
3. torch's own setting otherwise (a GPU does the arithmetic; the CPU threads
   only feed it).

:func:`torch_threads` applies the choice for one block of work and restores
torch's setting afterwards; :class:`gce.book.runners.LocalEngine` (and so
:func:`gce.book.experiments.run` and ``python -m gce reproduce``) trains inside it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch

__all__ = ["THREADS_ENV", "training_threads", "torch_threads"]

#: The environment variable that sets the number of training threads.
THREADS_ENV = "GCE_THREADS"


def training_threads(device, threads: int | None = None) -> int | None:
    """The number of threads to train on ``device`` with by the rule above; None: leave torch's setting."""
    source = "threads"
    if threads is None and os.environ.get(THREADS_ENV, "").strip():
        threads, source = os.environ[THREADS_ENV].strip(), f"${THREADS_ENV}"
    if threads is not None:
        try:
            n = int(threads)
        except (TypeError, ValueError):
            n = 0
        if n < 1 or str(threads).strip() != str(n):
            raise ValueError(f"{source} must be a whole number of threads >= 1, got {threads!r}")
        return n
    return 1 if torch.device(device).type == "cpu" else None


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``torch.set_num_threads(n)`` (nothing changes when ``n`` is None), then restore."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
