"""Speed of the pocket grid against the machine's fp32 matmul peak and against a typical training loop.

Usage: python benchmarks/pocket.py [--only table1 fig2] [--runs 48] [--epochs 20] [--threads 1] [--no-old]

In one run it measures:

1. the machine's fp32 peak: the best of several 2048 x 2048 x 2048 matrix products;
2. the pocket grid (every experiment of ``gce.book.experiments.EXPERIMENTS`` at scale ``pocket``, or the
   ``--only`` subset, the first ``--runs`` runs of each), trained by ``gce.train.train_many`` without storing
   anything, one call per experiment as ``python -m gce reproduce`` does, once with the general (vmap) path and once with the MLP engine, back to back; the FLOPs are
   computed from the configs (:func:`grid_flops`) and reported as GFLOP/s and as a fraction of the peak;
   ``forward_T_hat`` runs get a fixed uniform ``T`` (the cost of a run does not depend on it);
3. a typical peer loop (one run at a time, ``DataLoader(TensorDataset)``, ``nn.Module``, ``torch.optim``,
   the same MLP, data, losses and epochs, validation and test evaluated every epoch) on ``--peer-runs`` runs of
   each experiment (best of ``--peer-rounds`` rounds, which favours the peer loop), against ``train_many`` on
   the same runs; and its time for the whole grid, projected from its time per run-epoch in each experiment,
   against the engine's time for the grid;
4. an ablation: the engine with each trick of ``gce.train.Tricks`` switched off in turn, on a subset, in
   alternating rounds (the best time of each counts);
5. the fp32 peak again, since the machine may be shared: the fraction is also given of the higher peak.

The machine may be shared: it prints the load average at the start and the end; ratios measured back to back
are what count.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gce import data, losses, models, noise, train
from gce.book import experiments


def peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The best rate of ``repeats`` fp32 ``n x n x n`` matrix products, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def _sizes(cfg: train.RunConfig, cache: dict) -> tuple[int, int, int, int]:
    """(forward FLOPs per sample, training, validation and test samples) of a run."""
    key = (cfg.dataset, cfg.model, cfg.model_kwargs, cfg.val_fraction, cfg.ood if cfg.noise == "open_set" else None)
    if key not in cache:
        gd = train.build_group_data([cfg], None, cache.setdefault("data", {}))
        module = models.build(cfg.model, gd.num_classes, gd.bank.shape[1], image_size=tuple(gd.bank.shape[2:]),
                              **dict(cfg.model_kwargs))
        f = sum(2 * m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))
        cache[key] = (f, gd.train_idx.shape[1], gd.val_idx.shape[1], gd.test_x.shape[0])
    return cache[key]


def grid_flops(configs, max_group: int = 256) -> dict[str, float]:
    """FLOPs of training and evaluating ``configs`` (linear layers only; backward = 2 x forward).

    ``useful``: training (3 f per sample and epoch), validation, test and the training-set softmax (Fig. 1c) every
    epoch, and the pruning pass of each pruning run at its pruning epochs.  ``engine``: what the MLP engine
    executes (the same).  ``general``: what the general path executes: its pruning pass runs the forward for
    every run of a group whenever one of them prunes.
    """
    cache: dict = {}
    useful = general_extra = 0.0
    for g in train.split_groups(configs, max_group):
        cfgs = [configs[i] for i in g]
        any_prune = set()
        for c in cfgs:
            f, n, v, s = _sizes(c, cache)
            useful += c.epochs * (3 * n * f + v * f + s * f + (n * f if c.track_train_softmax else 0))
            useful += len(c.prune_epochs()) * n * f
            any_prune |= set(c.prune_epochs())
        f, n, _, _ = _sizes(cfgs[0], cache)
        general_extra += len(any_prune) * len(cfgs) * n * f - sum(len(c.prune_epochs()) * n * f for c in cfgs)
    return {"useful": useful, "engine": useful, "general": useful + general_extra}


def _transitions(configs) -> dict[int, torch.Tensor]:
    return {i: noise.uniform(data.load(c.dataset).num_classes, 0.2) for i, c in enumerate(configs)
            if c.method == "forward_T_hat"}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _peer_loss(cfg: train.RunConfig, T):
    if cfg.method == "cce":
        return lambda z, y: losses.cce(z, y)
    if cfg.method == "mae":
        return lambda z, y: losses.mae(z, y)
    if cfg.method == "lq":
        return lambda z, y: losses.lq(z, y, cfg.q)
    if cfg.method in ("forward_T", "forward_T_hat"):
        return lambda z, y: losses.forward_corrected(z, y, T)
    raise ValueError(f"the peer loop has no {cfg.method!r}")


def peer_run(cfg: train.RunConfig, cache: dict) -> tuple[int, float]:
    """A typical loop: one run, DataLoader(TensorDataset), nn.Module, torch.optim; (best epoch, its test acc)."""
    gd = train.build_group_data([cfg], None, cache)
    imgs = gd.bank.float() / 255 - gd.mean
    x_tr, y_tr = imgs[gd.train_idx[0]], gd.train_y[0]
    x_va, y_va = imgs[gd.val_idx[0]], gd.val_y[0]
    x_te, y_te = gd.test_x.float() / 255 - gd.mean, gd.test_y
    T = gd.T[0] if gd.T[0] is not None else torch.eye(gd.num_classes, dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = models.build(cfg.model, gd.num_classes, imgs.shape[1], image_size=tuple(imgs.shape[2:]),
                             **dict(cfg.model_kwargs))
        loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=cfg.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(cfg.seed))
        if cfg.optimizer == "sgd":
            opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                  weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.milestones), cfg.gamma)
        loss_fn = _peer_loss(cfg, T)
        best, best_epoch, best_test = -1.0, 0, 0.0
        for epoch in range(cfg.epochs):
            model.train()
            for xb, yb in loader:
                opt.zero_grad()
                loss_fn(model(xb), yb).backward()
                opt.step()
            sched.step()
            model.eval()
            with torch.no_grad():
                val_acc = (model(x_va).argmax(1) == y_va).float().mean().item()
                loss_fn(model(x_va), y_va).item()
                test_acc = (model(x_te).argmax(1) == y_te).float().mean().item()
            if val_acc > best:
                best, best_epoch, best_test = val_acc, epoch, test_acc
    return best_epoch, best_test


def _shorten(c: train.RunConfig, epochs: int | None) -> train.RunConfig:
    if not epochs or epochs >= c.epochs:
        return c
    scale = epochs / c.epochs
    return replace(c, epochs=epochs, milestones=tuple(int(m * scale) for m in c.milestones),
                   prune_start=int(c.prune_start * scale), prune_every=max(1, int(c.prune_every * scale)))


def _peer_sample(by_exp: dict[str, list], per_exp: int) -> dict[str, list]:
    """``per_exp`` runs of each experiment that the peer loop can train, evenly spaced through its list."""
    out = {}
    for name, cfgs in by_exp.items():
        ok = [c for c in cfgs if c.method in ("cce", "mae", "lq", "forward_T")]
        if ok:
            out[name] = ok[:: max(1, len(ok) // per_exp)][:per_exp]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=list(experiments.EXPERIMENTS), choices=experiments.EXPERIMENTS)
    p.add_argument("--runs", type=int, default=0, help="the first RUNS runs of each experiment (0: all)")
    p.add_argument("--epochs", type=int, default=0, help="shorten every run to EPOCHS epochs (0: as specified)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--no-old", action="store_true", help="skip the general (vmap) path on the grid")
    p.add_argument("--peer-runs", type=int, default=2, help="peer-loop runs per experiment")
    p.add_argument("--peer-rounds", type=int, default=2,
                   help="rounds of the peer loop; its best time per experiment counts (which favours the peer loop)")
    p.add_argument("--ablation-runs", type=int, default=64)
    p.add_argument("--ablation-epochs", type=int, default=20)
    p.add_argument("--ablation-rounds", type=int, default=3, help="rounds of the ablation; the best time counts")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average at start: {os.getloadavg()}; {torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} cores, torch {torch.__version__}")
    peak = peak_gflops()
    print(f"fp32 peak (best of 5 2048^3 matmuls): {peak:.1f} GFLOP/s")

    by_exp = {}
    for name in args.only:
        cfgs = list(experiments.spec(name, "pocket").configs)
        by_exp[name] = [_shorten(c, args.epochs) for c in (cfgs[: args.runs] if args.runs else cfgs)]
    grid = [c for cfgs in by_exp.values() for c in cfgs]
    fl = grid_flops(grid)
    run_epochs = sum(c.epochs for c in grid)
    print(f"grid: {len(grid)} runs of {', '.join(args.only)} (pocket), {run_epochs} run-epochs, "
          f"{fl['useful'] / 1e12:.3f} TFLOP useful, {fl['general'] / 1e12:.3f} TFLOP executed by the general path")
    train.train_many(grid[:2], transitions={i: t for i, t in _transitions(grid).items() if i < 2})  # warm up

    t_exp, new = {}, []
    for name, cfgs in by_exp.items():  # one train_many per experiment, as `python -m gce reproduce` does
        t_exp[name], out = _timed(lambda: train.train_many(cfgs, transitions=_transitions(cfgs)))
        new += out
    t_new = sum(t_exp.values())
    print(f"engine:       {t_new:8.1f} s  {fl['engine'] / t_new / 1e9:6.1f} GFLOP/s executed  "
          f"{fl['engine'] / t_new / 1e9 / peak:6.1%} of the peak measured at the start")
    for name, t in t_exp.items():
        f = grid_flops(by_exp[name])["engine"]
        print(f"  {name:10s} {len(by_exp[name]):4d} runs {t:7.1f} s  {f / t / 1e9:6.1f} GFLOP/s")
    if not args.no_old:
        trans = _transitions(grid)
        t_old, old = _timed(lambda: train.train_many(grid, transitions=trans, tricks=train.Tricks(mlp_engine=False)))
        print(f"general path: {t_old:8.1f} s  {fl['general'] / t_old / 1e9:6.1f} GFLOP/s executed  "
              f"{fl['general'] / t_old / 1e9 / peak:6.1%} of peak;  useful rate {fl['useful'] / t_old / 1e9:.1f} "
              f"GFLOP/s")
        print(f"engine vs general path: {t_old / t_new:.2f} x faster")
        same = sum(a.best_epoch == b.best_epoch for a, b in zip(old, new))
        acc = max(abs(a.test_acc_best_val - b.test_acc_best_val) for a, b in zip(old, new))
        worst = max(float(np.nanmax(np.abs(np.subtract(a.history["val_loss"], b.history["val_loss"]))))
                    for a, b in zip(old, new))
        print(f"same best-validation epoch: {same}/{len(grid)}; largest test-accuracy difference at it: {acc:.2e}; "
              f"largest validation-loss difference: {worst:.2e}")

    # The peer loop on a few runs of each experiment; its time for the whole grid is projected from its time
    # per run-epoch in each experiment (the runs of one experiment share their data, model and schedule).
    peers = _peer_sample(by_exp, args.peer_runs)
    cache: dict = {}
    peer_run(_shorten(next(iter(peers.values()))[0], 2), cache)  # warm up
    t_peer, out_peer = {}, {}
    for _ in range(max(1, args.peer_rounds)):  # a burst of load on a shared machine hits one round, not all
        for name, cfgs in peers.items():
            t, out_peer[name] = _timed(lambda: [peer_run(c, cache) for c in cfgs])
            t_peer[name] = min(t_peer.get(name, float("inf")), t)
    projected = sum(t_peer[name] / sum(c.epochs for c in cfgs) * sum(c.epochs for c in by_exp[name])
                    for name, cfgs in peers.items())
    flat = [c for cfgs in peers.values() for c in cfgs]
    t_same, same_runs = _timed(lambda: train.train_many(flat))
    print(f"peer loop (one run at a time, DataLoader, nn.Module, torch.optim) on {len(flat)} runs, "
          f"{args.peer_runs} per experiment, best of {max(1, args.peer_rounds)} rounds: {sum(t_peer.values()):.1f} s; "
          f"gce on the same runs {t_same:.1f} s -> {sum(t_peer.values()) / t_same:.2f} x")
    print(f"peer loop projected to the whole grid from its time per run-epoch in each experiment: "
          f"{projected:.0f} s; the engine took {t_new:.1f} s -> {projected / t_new:.2f} x")
    for name in peers:
        pe = t_peer[name] / sum(c.epochs for c in peers[name]) * sum(c.epochs for c in by_exp[name])
        print(f"  {name:10s} peer projected {pe:7.1f} s, engine {t_exp[name]:6.1f} s -> {pe / t_exp[name]:5.2f} x")
    print(f"peer vs gce best-validation epochs equal for "
          f"{sum(a[0] == b.best_epoch for a, b in zip(sum(out_peer.values(), []), same_runs))}/{len(flat)} "
          f"(different minibatch orders and float paths: not expected to match)")

    sub = [_shorten(c, args.ablation_epochs) for c in grid if c.optimizer == "sgd"][: args.ablation_runs]
    sub_tr = _transitions(sub)
    flops_sub = grid_flops(sub)["engine"]
    variants = {"all on": train.Tricks()}
    variants.update({f + " off": train.Tricks().off(f) for f in train.Tricks.__dataclass_fields__})
    best: dict[str, float] = {}
    for _ in range(args.ablation_rounds):  # rounds, so a burst of load on a shared machine hits one round
        for name, tr in variants.items():
            t, _ = _timed(lambda: train.train_many(sub, transitions=sub_tr, tricks=tr))
            best[name] = min(best.get(name, float("inf")), t)
    print(f"ablation on {len(sub)} SGD runs, {args.ablation_epochs} epochs, best of {args.ablation_rounds} rounds; "
          f"each trick off in turn:")
    base = best["all on"]
    print(f"  {'all on':22s} {base:7.2f} s  {flops_sub / base / 1e9:6.1f} GFLOP/s")
    for name, t in best.items():
        if name != "all on":
            print(f"  {name:22s} {t:7.2f} s  {t / base:5.2f} x the time with all on")
    end_peak = peak_gflops()
    print(f"fp32 peak again at the end: {end_peak:.1f} GFLOP/s; the engine's rate is "
          f"{fl['engine'] / t_new / 1e9 / max(peak, end_peak):.1%} of the higher of the two")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
