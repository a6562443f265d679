"""How many torch threads the pocket grid should train with: 1 or 2 threads, idle and beside a busy process.

Usage: python benchmarks/threads.py [--experiment fig1] [--runs 10] [--threads 1 2] [--limit 300]

Trains the first ``--runs`` runs of one pocket experiment (:func:`gce.book.experiments.spec`; runs that need
an estimated ``T`` are left out) with :func:`gce.train.train_many`, storing nothing, in a fresh process per
measurement (``torch.set_num_threads`` is set once, before any work), at each thread count of
``--threads``: first with the machine as it is, then beside one competing CPU-bound process (a pure
Python busy loop, as another notebook or test run would be).  The measurements run back to back in one
call; a measurement that passes ``--limit`` seconds is stopped and reported as over the limit.

It prints each time, the ratio of each thread count to the first one, the slowdown that the competing
process causes, and the load average before every measurement: the machine may be shared, and only the
ratios of measurements taken back to back count.  :mod:`gce.threads` sets the library's default from
what this measures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BUSY_LOOP = "while True:\n    pass\n"


def worker(experiment: str, runs: int, threads: int) -> None:
    """Train the runs in this process at ``threads`` threads and print the seconds it took."""
    import torch

    torch.set_num_threads(threads)
    from gce import train
    from gce.book import experiments

    cfgs = [c for c in experiments.spec(experiment, "pocket").configs if c.method != "forward_T_hat"]
    cfgs = cfgs[:runs] if runs else cfgs
    train.train_many(cfgs[:1])  # load the data and warm up outside the timing
    start = time.perf_counter()
    train.train_many(cfgs)
    print(f"{time.perf_counter() - start:.3f} {len(cfgs)}", flush=True)


def measure(args, threads: int) -> tuple[float | None, int]:
    """Seconds of one measurement in a fresh process (None past the limit) and the number of runs."""
    cmd = [sys.executable, __file__, "--worker", "--experiment", args.experiment, "--runs", str(args.runs),
           "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.limit, env=env, check=True)
    except subprocess.TimeoutExpired:
        return None, 0
    except subprocess.CalledProcessError as err:
        raise SystemExit(f"a measurement failed:\n{err.stderr[-2000:]}") from None
    seconds, n = out.stdout.split()[-2:]
    return float(seconds), int(n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", default="fig1")
    p.add_argument("--runs", type=int, default=10, help="the first RUNS runs of the experiment (0: all)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--limit", type=float, default=300, help="seconds after which a measurement is stopped")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.experiment, args.runs, args.threads[0])
        return
    import torch

    print(f"{os.cpu_count()} cores, torch {torch.__version__}, torch's default: {torch.get_num_threads()} threads; "
          f"pocket {args.experiment}, first {args.runs or 'all'} runs")
    times: dict[tuple[str, int], float | None] = {}
    for load in ("as is", "+1 busy process"):
        rival = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if load != "as is" else None
        try:
            for n in args.threads:
                before = os.getloadavg()[0]
                seconds, runs = measure(args, n)
                times[load, n] = seconds
                shown = f"{seconds:7.1f} s ({runs} runs)" if seconds is not None else f"> {args.limit:.0f} s"
                print(f"{load:>16}, {n} thread(s): {shown}   load average before: {before:.2f}", flush=True)
        finally:
            if rival is not None:
                rival.kill()
                rival.wait()
    first = args.threads[0]
    print(f"ratios (time / time at {first} thread(s), same load; '>' where a measurement hit the limit):")
    for load in ("as is", "+1 busy process"):
        base = times[load, first]
        for n in args.threads[1:]:
            t = times[load, n]
            text = (f"{t / base:.2f}x" if t is not None and base is not None else
                    f"> {args.limit / base:.2f}x" if base is not None else "n/a (over the limit)")
            print(f"  {load:>16}: {n} vs {first} thread(s): {text}")
    print("slowdown from one busy process (busy / as is):")
    for n in args.threads:
        a, b = times["as is", n], times["+1 busy process", n]
        text = f"{b / a:.2f}x" if a is not None and b is not None else f"> {args.limit / a:.1f}x" if a else "n/a"
        print(f"  {n} thread(s): {text}")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
