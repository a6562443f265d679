"""Speed of the cpu scale's grid on one core: the batched engine against the fp32 peak and a typical loop.

Usage: ``nice python benchmarks/cpu_grid.py [--out benchmarks/cpu_grid.json]`` (under 3 minutes on an idle core;
``--quick`` runs every step on tiny data in seconds, to test the script, and writes nothing unless ``--out``
is given).

In one process, on one torch thread, back to back, it measures:

(a) the achievable fp32 peak of one core: the best of several ``2048 x 2048 x 2048`` matrix products, in GFLOP/s,
    at the start and again at the end (the machine may be shared; the higher reading counts as the peak);
(b) the batched engine (:func:`gce.train.train_many`) on a group of 16 runs of the cpu scale's Table 1
    (:func:`gce.book.cpu_scale.cpu_configs`, the first 16 runs without Forward T_hat, whose estimated T needs a CCE run
    first; the same head, optimiser and batches), shortened to 2 epochs, on data of the cpu scale's shape: 50,000
    training samples of 256 features (45,000 trained on, 5,000 validation) and 10,000 test samples.  The cached
    features of :func:`gce.features.features` are used when the cache holds them, else random features of that
    shape (the time of a dense head does not depend on the values; the JSON says which).  Reported: seconds per
    run-epoch (wall and CPU, best of two rounds; the group's setup, its noisy labels and splits, included) and
    the achieved GFLOP/s, the head's multiply-adds counted from the configs (:func:`gce.book.experiments.grid_flops`:
    forward and backward passes of training, forward passes over the validation and test sets), and its fraction
    of (a);
(c) a typical one-run-at-a-time loop: a plain ``nn.Sequential`` MLP of the same size, ``torch.optim.SGD``
    (momentum 0.9, weight decay 1e-4), batches of 128 from a ``DataLoader`` over a ``TensorDataset``, one epoch
    plus the same evaluation of the validation and test sets, seconds per run-epoch (best of two epochs, which
    favours the loop); and the same loop with the batches sliced from the tensors directly (no DataLoader);
(d) the ratios (c) / (b) and the projected time of the cpu grid: the run-epochs of
    ``gce.book.experiments.spec(name, "cpu")`` for each experiment (a run on Table 2's half of the classes counts
    half: half the images) times (b)'s seconds per run-epoch, over 2 cores (two single-thread processes).

It records the load average at the start and the end, torch's version and threads, and the CPU model.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from gce import data, features, train
from gce.book import cpu_scale, experiments, store
from gce.classes import class_names

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pocket import peak_gflops  # noqa: E402  (the same peak measurement as the pocket benchmark)

#: The full measurement's sizes; ``--quick`` shrinks every one of them.
FULL = dict(n_train=50_000, n_test=10_000, dim=256, runs=16, epochs=2, rounds=2, loop_epochs=2, matmul=2048,
            matmul_repeats=5)
QUICK = dict(n_train=2_000, n_test=500, dim=256, runs=4, epochs=1, rounds=1, loop_epochs=1, matmul=256,
             matmul_repeats=2)
#: The cpu scale's experiments (the paper's grid) and the losses that followed it, projected separately.
PAPER_GRID = cpu_scale.EXPERIMENTS
EXTRA_GRID = tuple(n for n in experiments.EXPERIMENTS if n not in PAPER_GRID)


def cached_features(source: str = "cifar10_jpeg") -> Path | None:
    """The newest feature cache file of ``source`` under the default settings, or None."""
    pattern = f"{source}-{features.DEFAULT_SETTINGS.key()}-*.npz"
    found = sorted(features.cache_dir().glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def bench_dataset(n_train: int, n_test: int, dim: int, use_cache: bool) -> tuple[data.Dataset, str]:
    """Features of the cpu scale's shape as a :class:`gce.data.Dataset`, and what they are.

    The cached CIFAR-10 features when ``use_cache`` and the cache holds them (read as stored: only their
    shape matters here), else seeded random features and labels.
    """
    path = cached_features() if use_cache else None
    if path is not None:
        with np.load(path, allow_pickle=False) as z:
            x, y = torch.from_numpy(z["train"]), torch.from_numpy(z["train_labels"]).long()
            xt, yt = torch.from_numpy(z["test"]), torch.from_numpy(z["test_labels"]).long()
        what = f"cached CIFAR-10 features ({features.SOURCES['cifar10_jpeg']})"
    else:
        g = torch.Generator().manual_seed(0)
        x, xt = torch.randn(n_train, dim, generator=g), torch.randn(n_test, dim, generator=g)
        y, yt = torch.arange(n_train) % 10, torch.arange(n_test) % 10
        what = "random features of the cpu scale's shape (no feature cache found)" if use_cache else \
            "random features (quick mode)"
    parts = [data.Split(a.float()[:, :, None, None].contiguous(), b) for a, b in ((x, y), (xt, yt))]
    return data.Dataset("cifar10", parts[0], parts[1], class_names("cifar10")), what


def table1_group(runs: int, epochs: int) -> list[train.RunConfig]:
    """The first ``runs`` runs of the cpu Table 1 without Forward T_hat, shortened to ``epochs`` epochs."""
    cfgs = [c for c in cpu_scale.cpu_configs("table1", "cifar10_jpeg") if c.method != "forward_T_hat"][:runs]
    return [replace(c, epochs=epochs, milestones=tuple(m for m in c.milestones if m < epochs)) for c in cfgs]


def _serving(ds: data.Dataset, name: str):
    """``gce.data.load`` answering ``name`` with ``ds`` (no file read inside the timed calls)."""
    real = data.load
    return mock.patch.object(data, "load", lambda n, *a, **k: ds if n == name else real(n, *a, **k))


def engine(ds: data.Dataset, runs: int, epochs: int, rounds: int) -> dict:
    """(b): seconds per run-epoch of :func:`gce.train.train_many` on a Table 1 group, and its FLOPs."""
    cfgs = table1_group(runs, epochs)
    with _serving(ds, cfgs[0].dataset):
        train.train_many(cfgs[:1])  # warm-up: code paths, allocator
        wall, cpu = [], []
        for _ in range(rounds):
            t, c = time.perf_counter(), time.process_time()
            train.train_many(cfgs)
            wall.append((time.perf_counter() - t) / (len(cfgs) * epochs))
            cpu.append((time.process_time() - c) / (len(cfgs) * epochs))
        flops = experiments.grid_flops(cfgs) / (len(cfgs) * epochs)
    return {"runs": len(cfgs), "epochs": epochs, "methods": sorted({c.method for c in cfgs}),
            "s_per_run_epoch": min(wall), "cpu_s_per_run_epoch": min(cpu), "rounds_s_per_run_epoch": wall,
            "flop_per_run_epoch": flops, "gflops": flops / min(wall) / 1e9}


def typical_loop(ds: data.Dataset, epochs: int, val_fraction: float = 0.1, use_loader: bool = True) -> dict:
    """(c): one run at a time in plain PyTorch, the same head and optimiser; seconds per epoch with evaluation."""
    g = torch.Generator().manual_seed(0)
    x, y = ds.train.images.flatten(1), ds.train.labels
    perm = torch.randperm(len(x), generator=g)
    n_val = round(val_fraction * len(x))
    xv, yv, xtr, ytr = x[perm[:n_val]], y[perm[:n_val]], x[perm[n_val:]], y[perm[n_val:]]
    xt, yt = ds.test.images.flatten(1), ds.test.labels
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(x.shape[1], 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(net.parameters(), lr=cpu_scale.CPU_LR, momentum=0.9, weight_decay=1e-4)
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=128, shuffle=True, generator=g)
    wall, cpu = [], []
    for _ in range(epochs):
        t, c = time.perf_counter(), time.process_time()
        net.train()
        batches = loader if use_loader else ((xtr[i], ytr[i]) for i in torch.randperm(len(xtr), generator=g)
                                             .split(128))
        for xb, yb in batches:
            opt.zero_grad()
            F.cross_entropy(net(xb), yb).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            accs = [float((net(a).argmax(1) == b).float().mean()) for a, b in ((xv, yv), (xt, yt))]
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"loader": "DataLoader(TensorDataset)" if use_loader else "tensor slices", "epochs": epochs,
            "s_per_run_epoch": min(wall), "cpu_s_per_run_epoch": min(cpu), "epochs_s": wall,
            "val_acc_last": accs[0]}


def grid_run_epochs() -> dict[str, float]:
    """Run-epochs of each experiment at the cpu scale, a run on half the images (Table 2's classes) counting half."""
    out = {}
    for name in experiments.EXPERIMENTS:
        cfgs = experiments.spec(name, "cpu").configs
        out[name] = float(sum(c.epochs * (0.5 if c.dataset.endswith(("_0to4", "_5to9")) else 1.0) for c in cfgs))
    return out


def measure(quick: bool = False) -> dict:
    """Every measurement of the module docstring, back to back on one thread, as a JSON-ready dict."""
    size = QUICK if quick else FULL
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    res = {"mode": "quick" if quick else "full", "load_at_start": list(os.getloadavg()),
           "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(), "cpu_model": store.cpu_model(),
           "simd": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(), "sizes": size}
    try:
        res["peak_gflops_start"] = peak_gflops(size["matmul"], size["matmul_repeats"])
        ds, res["data"] = bench_dataset(size["n_train"], size["n_test"], size["dim"], use_cache=not quick)
        res["engine"] = engine(ds, size["runs"], size["epochs"], size["rounds"])
        res["loop"] = typical_loop(ds, size["loop_epochs"])
        res["loop_sliced"] = typical_loop(ds, size["loop_epochs"], use_loader=False)
        res["peak_gflops_end"] = peak_gflops(size["matmul"], size["matmul_repeats"])
    finally:
        torch.set_num_threads(threads)
    res["peak_gflops"] = max(res["peak_gflops_start"], res["peak_gflops_end"])
    eng = res["engine"]
    res["fraction_of_peak"] = eng["gflops"] / res["peak_gflops"]
    res["loop_speedup"] = res["loop"]["s_per_run_epoch"] / eng["s_per_run_epoch"]
    res["loop_sliced_speedup"] = res["loop_sliced"]["s_per_run_epoch"] / eng["s_per_run_epoch"]
    res["grid_run_epochs"] = grid_run_epochs()
    paper = sum(res["grid_run_epochs"][n] for n in PAPER_GRID)
    res["extra_experiments"] = [n for n in EXTRA_GRID if res["grid_run_epochs"][n] > 0]
    extra = sum(res["grid_run_epochs"][n] for n in res["extra_experiments"])
    res["projected_minutes_two_cores"] = {"paper_grid": paper * eng["s_per_run_epoch"] / 2 / 60,
                                          "with_later": (paper + extra) * eng["s_per_run_epoch"] / 2 / 60}
    res["load_at_end"] = list(os.getloadavg())
    res["seconds"] = time.perf_counter() - start
    return res


def report(r: dict) -> str:
    """The lines :func:`main` prints for a :func:`measure` result."""
    e, lo, ls = r["engine"], r["loop"], r["loop_sliced"]
    p = r["projected_minutes_two_cores"]
    return "\n".join([
        f"{r['mode']} run, {r['date']}, {r['cpu_model']} ({r['simd']}), torch {r['torch_version']}, "
        f"{r['torch_threads']} thread; load {r['load_at_start'][0]:.2f} at start, {r['load_at_end'][0]:.2f} at end",
        f"data: {r['data']}",
        f"(a) fp32 peak of one core: {r['peak_gflops_start']:.1f} GFLOP/s at start, {r['peak_gflops_end']:.1f} at end",
        f"(b) engine, {e['runs']} runs x {e['epochs']} epochs: {e['s_per_run_epoch']:.3f} s per run-epoch "
        f"(CPU {e['cpu_s_per_run_epoch']:.3f}), {e['gflops']:.1f} GFLOP/s = {r['fraction_of_peak']:.1%} of the peak",
        f"(c) typical loop ({lo['loader']}): {lo['s_per_run_epoch']:.3f} s per run-epoch; "
        f"({ls['loader']}): {ls['s_per_run_epoch']:.3f} s",
        f"(d) speed-up over the typical loop: {r['loop_speedup']:.1f}x ({r['loop_sliced_speedup']:.1f}x over the "
        f"sliced one); cpu grid projected on 2 cores: {p['paper_grid']:.0f} min "
        f"({p['with_later']:.0f} min with {', '.join(r['extra_experiments'])})",
        f"measured in {r['seconds']:.0f} s"])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="where to write the JSON (default: benchmarks/cpu_grid.json; "
                                               "with --quick nothing is written unless given)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds: checks the script, not the speed")
    args = p.parse_args(argv)
    res = measure(args.quick)
    print(report(res), flush=True)
    out = args.out or (None if args.quick else str(Path(__file__).with_name("cpu_grid.json")))
    if out:
        Path(out).write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
