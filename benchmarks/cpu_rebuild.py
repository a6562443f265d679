"""Time a rebuild of a scale: wall time and CPU time of ``python -m gce reproduce ... --scale <scale>``.

    python benchmarks/cpu_rebuild.py --results /tmp/fresh            # the paper's experiments, then the later losses
    python benchmarks/cpu_rebuild.py --results /tmp/fresh --out benchmarks/cpu_rebuild.json
    python benchmarks/cpu_rebuild.py --scale pocket --results /tmp/fresh2 --out benchmarks/pocket_rebuild.json

At the pocket scale the whole grid is one step (``reproduce all``: the paper's experiments and the later losses
shared out over the processes together), since its budget is for the whole grid.

Each step is one command (``--jobs`` processes side by side, :mod:`gce.book.parallel`), run in a fresh results folder
so that everything is trained.  For each step the script records the wall time, the CPU time of the processes it
started (user + system, from ``resource.getrusage(RUSAGE_CHILDREN)``), and the load average before and after; the
CPU time divided by the number of cores is what the step needs on an idle machine.  The book's appendix on the cpu
scale reads the JSON this writes (``benchmarks/cpu_rebuild.json``).

It needs the CIFAR-10 images (``$GCE_DATA``, or ``GCE_CPU_SOURCE=cifar10`` to download torchvision's), and it
trains every run of the scale: on two cores, more than an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

PAPER = ("onset", "fig1", "fig2", "table1", "table2", "human")
LATER = ("later",)


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def step(names, results: str, jobs: int, scale: str = "cpu") -> dict:
    """Run ``python -m gce reproduce <names> --scale <scale> --jobs <jobs> --results <results>``; its measurements."""
    cmd = [sys.executable, "-m", "gce", "reproduce", *names, "--scale", scale, "--jobs", str(jobs),
           "--results", results, "--no-progress"]
    load, cpu, start = os.getloadavg(), _cpu_children(), time.perf_counter()
    code = subprocess.run(cmd).returncode
    wall, cpu = time.perf_counter() - start, _cpu_children() - cpu
    if code:
        raise SystemExit(f"{' '.join(cmd[1:])} exited with code {code}")
    return {"command": "python -m gce reproduce " + " ".join(names) + f" --scale {scale} --jobs {jobs}",
            "experiments": list(names), "wall_s": wall, "cpu_s": cpu, "load_start": list(load),
            "load_end": list(os.getloadavg())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="an empty results folder (everything is trained)")
    parser.add_argument("--jobs", type=int, default=2, help="processes side by side (default 2)")
    parser.add_argument("--out", default=None, help="write the JSON here (default: print only)")
    parser.add_argument("--scale", default="cpu", choices=("cpu", "pocket"))
    parser.add_argument("--note", default="", help="added to the record's note (e.g. what else ran on the machine)")
    args = parser.parse_args(argv)
    if any(Path(args.results).glob(f"{args.scale}/*.sqlite")):
        raise SystemExit(f"{args.results} already holds {args.scale} results: give an empty folder, so that all "
                         f"is trained")
    if args.scale == "cpu":
        steps = [step(PAPER, args.results, args.jobs), step(LATER, args.results, args.jobs)]
    else:
        steps = [step(("all",), args.results, args.jobs, "pocket")]
    from gce.book.store import cpu_model

    out = {"cores": os.cpu_count(), "jobs": args.jobs, "date": time.strftime("%Y-%m-%d"),
           "machine": cpu_model() or platform.processor() or platform.machine(), "scale": args.scale,
           "steps": steps,
           "note": " ".join(filter(None, ["Every run trained from an empty results folder.", args.note]))}
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
