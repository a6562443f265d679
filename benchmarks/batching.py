"""Speed-up of training independent runs together (vmap) over training them one at a time.

Usage: python benchmarks/batching.py [--experiment table1] [--scale pocket] [--runs 48] [--epochs 30]

Takes the first ``--runs`` runs of an experiment's grid (default: pocket Table 1),
shortens them to ``--epochs`` epochs, trains them once one run at a time and once
as batched groups (gce.train.train_many), checks that both give the same
histories, and prints the wall times and their ratio.  Timings depend on the
machine and its load; the script prints the device and thread count with them.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
import torch

from gce import train
from gce.book import experiments


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", default="table1", choices=experiments.EXPERIMENTS)
    p.add_argument("--scale", default="pocket", choices=experiments.SCALES)
    p.add_argument("--runs", type=int, default=48)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    grid = [c for c in experiments.spec(args.experiment, args.scale).configs if c.method != "forward_T_hat"]
    cfgs = [replace(c, epochs=args.epochs, milestones=tuple(m for m in c.milestones if m < args.epochs))
            for c in grid[: args.runs]]
    print(f"{len(cfgs)} runs of {args.scale} {args.experiment}, {args.epochs} epochs each, device {args.device}, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} cores")
    train.train_many(cfgs[:2], device=args.device)  # warm up imports, dataset cache, kernels

    t0 = time.perf_counter()
    alone = [train.train(c, device=args.device) for c in cfgs]
    t_alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    together = train.train_many(cfgs, device=args.device)
    t_together = time.perf_counter() - t0

    worst = max(float(np.max(np.abs(np.subtract(a.history["val_loss"], b.history["val_loss"]))))
                for a, b in zip(alone, together))
    print(f"one at a time: {t_alone:8.2f} s  ({t_alone / len(cfgs):.3f} s per run)")
    print(f"batched:       {t_together:8.2f} s  ({t_together / len(cfgs):.3f} s per run)")
    print(f"speed-up:      {t_alone / t_together:8.2f} x")
    print(f"largest difference in validation loss between the two: {worst:.2e}")


if __name__ == "__main__":
    main()
