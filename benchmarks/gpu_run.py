"""The prepared GPU run: measure gce's fast path, time a paper epoch, and run as much of the lite grid as fits.

One script, one wall budget (``--budget-s``), so that a few minutes on a GPU give everything back in one call, and
anyone with a GPU can rerun it:

1. prints the GPU, the torch version and the bf16 matmul rate *measured* on square matrices;
2. runs ``benchmarks/throughput.py``'s comparison at batch 128 with ResNet-34 on the CIFAR-10 JPEG copy's
   training images: the torchvision-DataLoader loop against gce's device-resident path, same model, same run;
   images/s of both, their ratio, and the fraction of the measured bf16 rate and of the data-sheet peak;
3. times one ``paper``-scale CIFAR-10 epoch (ResNet-34, Table 1's schedule, through :func:`gce.train.train_many`,
   evaluation included) and from it the GPU-hours of the whole paper grid (every config of
   ``gce.book.experiments.spec(name, "paper")``: epochs x training images / images per s, each model's rate scaled from
   the measured ResNet-34 rate by its FLOPs -- an estimate, labelled so);
4. calibrates images/s (about 20 s) for 1, 2, 4, ... lite runs trained at once in worker processes, then runs as
   much of the ``lite`` CIFAR-10 (JPEG copy) grid as fits in the rest of the budget with the best packing, in
   this order: Fig. 1(c) (CCE vs L_q, uniform eta = 0.4), Table 1's uniform 0.4 column (CCE, MAE, L_q,
   truncated L_q, Forward T, Forward T-hat), Table 1's other noise settings, then Fig. 1(a) and Fig. 2 on
   CIFAR-10.  Runs that need data not carried (FASHION-MNIST, CIFAR-100) are listed as skipped.

Everything goes to ``--out`` (at most 5 files):

- ``results.jsonl``  one line per finished run, appended, flushed and fsynced as each run finishes (a kill loses no
  finished run): run id (:func:`gce.book.store.run_id`), the figure/table it belongs to, the config, the summary
  numbers, the per-epoch history, the T used and T-hat estimate, wall seconds, provenance
  (:func:`gce.book.store.provenance`, plus ``GCE_COMMIT`` from the environment where the tree has no .git) and the
  data label "CIFAR-10 (JPEG copy)".  A second invocation with the same ``--out`` skips the runs stored there.
- ``summary.json`` / ``summary.md``  what was measured, what ran, what was skipped and why (rewritten after each run).
- ``log.txt``  everything printed.

The lite runs on a GPU use bf16 autocast and channels-last (``precision``/``channels_last`` in their config, hence
in their run id).  T4 minutes per chapter are *estimates*: H200 minutes x (H200 dense bf16 peak / T4 dense fp16
peak), i.e. assuming the T4 reaches the same fraction of its peak (:func:`t4_minutes_estimate`).

CPU test mode (``--tiny``, used by ``tests/test_gpu_run.py``): a tiny CNN replaces the ResNets where they would take
minutes on a CPU (the throughput comparison, the paper epoch, the lite runs), one epoch per run, a few steps.

Usage, on a machine with a CUDA GPU and the JPEG copy of CIFAR-10 in the folder ``DATA``::

    python benchmarks/gpu_run.py --device cuda --data-root DATA --out OUT --budget-s 450

(``PYTHONPATH=src`` from a source tree without an install; ``GCE_COMMIT=<commit>`` names the commit in the
provenance where the tree has no ``.git``).  Rerun with the same ``--out`` to resume without redoing finished runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gce import data, models
from gce.book import experiments  # noqa: E402
from gce.book.store import provenance, run_id  # noqa: E402
from gce import train as gtrain  # noqa: E402
from gce.train import RunConfig  # noqa: E402

import throughput  # noqa: E402  (benchmarks/throughput.py)

#: Dense fp16 tensor-core peak of a T4 (NVIDIA data sheet); the T4 has no fast bf16, Colab readers use fp16/fp32.
T4_FP16_PEAK = 65e12
H200_BF16_PEAK = throughput.BF16_PEAK["H200"]
DATA = "cifar10_jpeg"
MAX_FILES = 8


# --------------------------------------------------------------------------- output


class Out:
    """The --out folder: a log, results appended per run (fsynced), a summary rewritten atomically."""

    def __init__(self, folder: Path):
        self.dir = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.results = folder / "results.jsonl"
        self.log_file = open(folder / "log.txt", "a", buffering=1)

    def log(self, *parts) -> None:
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.log_file.write(line + "\n")

    def stored(self) -> dict[str, dict]:
        rows = {}
        if self.results.exists():
            for line in self.results.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill mid-write: that run is redone
                    continue
                rows[row["run_id"]] = row
        return rows

    def append(self, row: dict) -> None:
        cut = self.results.exists() and self.results.stat().st_size and not self.results.read_bytes().endswith(b"\n")
        with open(self.results, "a") as f:
            f.write(("\n" if cut else "") + json.dumps(row) + "\n")  # after a line cut by a kill: a new line
            f.flush()
            os.fsync(f.fileno())

    def write_summary(self, summary: dict) -> None:
        for name, text in (("summary.json", json.dumps(summary, indent=1, default=str)),
                           ("summary.md", summary_markdown(summary))):
            tmp = self.dir / (name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.dir / name)


def summary_markdown(s: dict) -> str:
    lines = [f"# GPU run: {s.get('device', '?')}", "",
             f"Data: {data.CIFAR10_JPEG_LABEL}. Budget {s['budget_s']} s; "
             f"finished after {s.get('elapsed_s', 0):.0f} s.",
             "All numbers below are measured in this run unless marked ESTIMATE.", ""]
    env = s.get("environment", {})
    if env:
        lines += [f"- torch {env.get('torch')}, bf16 matmul measured: {env.get('bf16_matmul_tflop_per_s', 0):.1f} "
                  f"TFLOP/s (n = {env.get('matmul_n')})"]
    tp = s.get("throughput")
    if tp:
        lines += ["", "## Throughput", "```", throughput.report(tp), "```"]
        if tp.get("fraction_of_measured_bf16") is not None:
            lines += [f"Fraction of the measured bf16 matmul rate: {100 * tp['fraction_of_measured_bf16']:.1f}%"]
    pe = s.get("paper_epoch")
    if pe:
        lines += ["", "## Paper-scale epoch",
                  f"One {pe['model']} CIFAR-10 epoch ({pe['train_images']} training images, evaluation included): "
                  f"{pe['seconds']:.1f} s = {pe['images_per_s']:.0f} images/s.",
                  f"ESTIMATE, full paper grid ({pe['grid_runs']} runs): {pe['grid_gpu_hours_estimate']:.1f} GPU-hours "
                  "(each model's rate scaled from this epoch by FLOPs)."]
    cal = s.get("calibration")
    if cal:
        lines += ["", "## Calibration (lite runs at once -> images/s, all runs together)"]
        lines += [f"- {p}: {r:.0f} images/s" for p, r in cal["images_per_s"].items()]
        lines += [f"Chosen: {cal['chosen']} at once."]
    if s.get("t4_minutes_estimate"):
        lines += ["", "## ESTIMATE: lite minutes per chapter on a T4 (H200 time x H200 bf16 peak / T4 fp16 peak)"]
        lines += [f"- {k}: {v:.1f} min" for k, v in s["t4_minutes_estimate"].items()]
    lines += ["", f"## Ran ({len(s.get('ran', []))})"]
    lines += [f"- {r['run_id']} {r['tag']} {r['method']} {r['noise']} {r['eta']}: test acc (best val) "
              f"{r['test_acc_best_val']:.4f}, {r['wall_s']:.1f} s" for r in s.get("ran", [])]
    lines += ["", f"## Already stored before this call ({len(s.get('already_stored', []))})"]
    lines += [f"- {r}" for r in s.get("already_stored", [])]
    lines += ["", f"## Skipped ({len(s.get('skipped', []))})"]
    lines += [f"- {r['run_id']} {r['tag']} {r['method']} {r['noise']} {r['eta']}: {r['reason']}"
              for r in s.get("skipped", [])]
    if s.get("errors"):
        lines += ["", "## Errors"] + [f"- {k}: {v}" for k, v in s["errors"].items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- steps 1-3


def bf16_matmul_rate(device: torch.device, n: int, seconds: float) -> float:
    """Measured bf16 matmul FLOP/s on ``n x n`` matrices (2 n^3 per product), timed for about ``seconds``."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    throughput._sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            a @ b
        reps += 10
        throughput._sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def tiny_model(num_classes: int = 10) -> torch.nn.Module:
    return models.small_cnn(num_classes, 3, 4)


def flops_per_image(model: str, model_kwargs: tuple, shape: tuple) -> float:
    with torch.device("meta"):  # shapes only: FLOPs are counted without computing anything
        m = models.build(model, 10, shape[0], image_size=tuple(shape[1:]), **dict(model_kwargs)).eval()
        x = torch.zeros(1, *shape)
    with throughput.FlopCounterMode(display=False) as counter:
        m(x)
    return float(counter.get_total_flops())


TRAIN_SHAPE = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "cifar10_jpeg": (3, 32, 32),
               "fashionmnist": (1, 28, 28)}
TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "cifar10_jpeg": 50_000, "fashionmnist": 60_000}


def paper_grid_hours(images_per_s: float, ref_flops: float) -> tuple[float, int]:
    """ESTIMATE of the GPU-hours of every ``paper`` config: epochs x training images / rate, where a model's rate is
    the measured reference rate x (reference FLOPs / its FLOPs)."""
    seconds, n, cache = 0.0, 0, {}
    for name in experiments.EXPERIMENTS:
        for c in experiments.spec(name, "paper").configs:
            key = (c.model, c.model_kwargs, c.dataset)
            if key not in cache:
                cache[key] = flops_per_image(c.model, c.model_kwargs, TRAIN_SHAPE[c.dataset])
            n_train = round(TRAIN_IMAGES[c.dataset] * (1 - c.val_fraction))
            seconds += c.epochs * n_train / (images_per_s * ref_flops / cache[key])
            n += 1
    return seconds / 3600, n


def t4_minutes_estimate(h200_seconds: float) -> float:
    """ESTIMATE: minutes on a T4 of work measured to take ``h200_seconds`` on an H200, assuming both reach the same
    fraction of their dense peak (H200 bf16 989 TFLOP/s, T4 fp16 65 TFLOP/s, data sheets)."""
    return h200_seconds * H200_BF16_PEAK / T4_FP16_PEAK / 60


# --------------------------------------------------------------------------- step 4: the lite grid


def lite_plan(tiny: bool, cuda: bool) -> tuple[list[tuple[str, RunConfig]], list[tuple[str, RunConfig, str]]]:
    """The lite CIFAR-10 runs in the module docstring's order (tag, config on the JPEG copy), and those left out."""
    fig1 = experiments.spec("fig1", "lite").configs
    t1 = experiments.spec("table1", "lite").configs
    fig2 = experiments.spec("fig2", "lite").configs
    ordered = [("fig1c", c) for c in fig1 if c.noise == "uniform"]
    col = [c for c in t1 if c.dataset == "cifar10" and (c.noise, c.eta) == ("uniform", 0.4)]
    order = {m: i for i, m in enumerate(("cce", "mae", "lq", "trunc_lq", "forward_T", "forward_T_hat"))}
    ordered += [("table1", c) for c in sorted(col, key=lambda c: order[c.method])]
    ordered += [("table1", c) for c in t1 if c.dataset == "cifar10" and (c.noise, c.eta) != ("uniform", 0.4)]
    ordered += [("fig1ab", c) for c in fig1 if c.noise == "none" and c.dataset == "cifar10"]
    ordered += [("fig2", c) for c in fig2]
    left_out = [("table1", c, f"needs {c.dataset}, not carried") for c in t1 if c.dataset != "cifar10"]
    left_out += [("fig1ab", c, f"needs {c.dataset}, not carried") for c in fig1 if c.dataset != "cifar10"]
    left_out += [("table2", c, "needs CIFAR-100 (the outside images), not carried")
                 for c in experiments.spec("table2", "lite").configs]
    out = []
    for tag, c in ordered:
        c = replace(c, dataset=DATA, precision="bf16" if cuda else "fp32", channels_last=cuda)
        if tiny:
            c = replace(c, model="small_cnn", model_kwargs=(("width", 4),), epochs=1, milestones=(), prune_start=0,
                        prune_every=1, batch_size=8)
        out.append((tag, c))
    seen, unique = set(), []
    for tag, c in out:  # Fig. 2's q = 0.7, eta = 0.6 run may coincide with another figure's
        if run_id(c) not in seen:
            seen.add(run_id(c))
            unique.append((tag, c))
    return unique, left_out


def _worker_init(device: str, root: str, threads: int) -> None:
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    data.load(DATA, root)  # decode once per worker


def _ready(seconds: float) -> int:
    time.sleep(seconds)  # holds this worker so that the next task goes to another one
    return os.getpid()


def _train_one(cfg_dict: dict, t_hat: list | None, want_hat: bool, device: str, root: str) -> dict:
    """One run in a worker: plain data back (summary, history, T used, T-hat estimate when asked)."""
    d = dict(cfg_dict)
    d["milestones"] = tuple(d["milestones"])
    d["model_kwargs"] = tuple(tuple(kv) for kv in d["model_kwargs"])
    cfg = RunConfig(**d)
    start = time.perf_counter()
    trans = {0: torch.tensor(t_hat, dtype=torch.float64)} if t_hat is not None else None
    res = gtrain.train_many([cfg], transitions=trans, device=device, root=root, keep_models=want_hat)[0]
    estimate = None
    if want_hat:
        probs = gtrain.predict_proba(res.extra["model"], res.extra["train_images"], res.extra["preprocess_mean"])
        estimate = gtrain.estimate_transition(probs).tolist()
    return {"best_epoch": res.best_epoch, "test_acc_best_val": res.test_acc_best_val,
            "test_acc_last": res.test_acc_last, "flip_rate_train": res.flip_rate_train,
            "flip_rate_val": res.flip_rate_val, "T_used": res.T_used, "T_hat_estimate": estimate,
            "history": {k: [float(v) for v in vals] for k, vals in res.history.items()},
            "wall_s": time.perf_counter() - start, "pid": os.getpid()}


def _describe(tag: str, c: RunConfig, **extra) -> dict:
    return {"run_id": run_id(c), "tag": tag, "method": c.method, "noise": c.noise, "eta": c.eta, **extra}


def _provenance(device) -> dict:
    prov = provenance(device)
    if os.environ.get("GCE_COMMIT") and prov.get("commit", "unknown").startswith("unknown"):
        prov["commit"] = os.environ["GCE_COMMIT"]
    return prov


def calibrate(pool, cfg: RunConfig, packs: list[int], device: str, root: str, seconds: float, log) -> dict[int, float]:
    """images/s of all runs together with ``p`` one-epoch runs of ``cfg`` at once, for each ``p`` while time lasts."""
    one = replace(cfg, epochs=1, milestones=(), prune_start=0)
    n_train = None
    warm = [pool.apply_async(_train_one, (one.to_dict(), None, False, device, root)) for _ in range(max(packs))]
    for j in warm:  # untimed: the first run of a process pays one-off set-up (kernels, cudnn autotuning)
        j.get()
    rates, start = {}, time.perf_counter()
    for p in packs:
        if rates and time.perf_counter() - start > seconds:
            break
        t = time.perf_counter()
        jobs = [pool.apply_async(_train_one, (one.to_dict(), None, False, device, root)) for _ in range(p)]
        for j in jobs:
            j.get()
        if n_train is None:
            n_train = len(data.load(DATA, root).train) * (1 - cfg.val_fraction)
        rates[p] = p * n_train / (time.perf_counter() - t)
        log(f"calibration: {p} run(s) at once: {rates[p]:.0f} images/s")
    return rates


def run_grid(args, out: Out, summary: dict, deadline: float, device: torch.device) -> None:
    cuda = device.type == "cuda"
    plan, left_out = lite_plan(args.tiny, cuda)
    stored = out.stored()
    summary["already_stored"] = [rid for rid in (run_id(c) for _, c in plan) if rid in stored]
    summary["skipped"] = [_describe(t, c, reason=why) for t, c, why in left_out]
    summary["ran"] = []
    todo = [(t, c) for t, c in plan if run_id(c) not in stored]
    t_hats = {rid: row["T_hat_estimate"] for rid, row in stored.items() if row.get("T_hat_estimate")}
    need_hat = {run_id(replace(c, method="cce", q=0.7, k=0.5)) for _, c in plan
                if c.method == "forward_T_hat"}
    if time.perf_counter() + args.calibrate_s > deadline:
        summary["skipped"] += [_describe(t, c, reason="budget reached before it started") for t, c in todo]
        out.log(f"lite grid: no time left to calibrate ({args.calibrate_s:.0f} s); {len(todo)} runs skipped")
        return
    if args.max_runs is not None:
        summary["skipped"] += [_describe(t, c, reason=f"--max-runs {args.max_runs}") for t, c in todo[args.max_runs:]]
        todo = todo[:args.max_runs]
    packs = [p for p in (1, 2, 4, 6) if p <= args.max_pack] if cuda else [1]
    threads = 1 if not cuda else max(1, (os.cpu_count() or 2) // max(packs))
    ctx = mp.get_context("spawn" if cuda else "fork")  # CUDA needs spawn; on a CPU fork saves re-importing torch
    pool = ctx.Pool(max(packs), initializer=_worker_init, initargs=(str(device), str(args.data_root), threads))
    try:
        for j in [pool.apply_async(_ready, (0.5,)) for _ in range(max(packs))]:
            j.get()  # every worker started and its data decoded
        if not todo:
            out.log("lite grid: every planned run is already stored")
            return
        rates = calibrate(pool, todo[0][1], packs, str(device), str(args.data_root), args.calibrate_s, out.log)
        best = max(rates, key=rates.get)
        per_run = rates[best] / best
        summary["calibration"] = {"images_per_s": {f"{p} at once": r for p, r in rates.items()}, "chosen": best}
        n_train = len(data.load(DATA, args.data_root).train) * (1 - todo[0][1].val_fraction)
        if cuda:  # ESTIMATE per chapter from the measured H200 rate (lite, CIFAR-10 part of each grid)
            summary["t4_minutes_estimate"] = {
                f"{name} (lite, CIFAR-10 runs, from the packed H200 rate)": t4_minutes_estimate(sum(
                    c.epochs * n_train for c in experiments.spec(name, "lite").configs if c.dataset == "cifar10")
                    / rates[best]) for name in ("fig1", "fig2", "table1")}
        out.log(f"lite grid: {len(todo)} runs to do, {best} at once, {per_run:.0f} images/s per run")
        queue, running = list(todo), {}
        while queue or running:
            now = time.perf_counter()
            while queue and len(running) < best:
                tag, c = None, None
                for i, (t, cc) in enumerate(queue):  # a forward_T_hat run waits for its CCE twin's T-hat
                    twin = run_id(replace(cc, method="cce", q=0.7, k=0.5))
                    if cc.method != "forward_T_hat" or twin in t_hats:
                        tag, c = queue.pop(i)
                        break
                    if not any(run_id(x) == twin for _, x in queue) and twin not in {
                            run_id(x) for _, x, _ in running.values()}:
                        queue.pop(i)
                        summary["skipped"].append(_describe(t, cc, reason="its CCE twin did not finish: no T-hat"))
                        break
                if c is None:
                    break
                predicted = c.epochs * n_train / per_run * 1.1
                if now + predicted > deadline:
                    summary["skipped"].append(_describe(tag, c, reason=f"predicted {predicted:.0f} s, more than the "
                                                                         f"{max(0, deadline - now):.0f} s left"))
                    continue
                rid = run_id(c)
                job = pool.apply_async(_train_one, (c.to_dict(), t_hats.get(run_id(
                    replace(c, method="cce", q=0.7, k=0.5))) if c.method == "forward_T_hat" else None,
                    rid in need_hat, str(device), str(args.data_root)))
                running[rid] = (job, c, tag)
                out.log(f"started {rid} {tag} {c.method} {c.noise} {c.eta}")
            for rid, (job, c, tag) in list(running.items()):
                if job.ready():
                    del running[rid]
                    try:
                        r = job.get()
                    except Exception as err:  # noqa: BLE001 - record and go on with the other runs
                        summary["skipped"].append(_describe(tag, c, reason=f"failed: {type(err).__name__}: {err}"))
                        out.log(f"FAILED {rid}: {err}")
                        continue
                    if r["T_hat_estimate"] is not None:
                        t_hats[rid] = r["T_hat_estimate"]
                    row = {"run_id": rid, "experiment": tag, "scale": "lite", "data_label": data.CIFAR10_JPEG_LABEL,
                           "tiny_test_mode": args.tiny, "config": c.to_dict(), **r, **_provenance(device)}
                    out.append(row)
                    summary["ran"].append(_describe(tag, c, test_acc_best_val=r["test_acc_best_val"],
                                                    wall_s=r["wall_s"]))
                    out.log(f"stored {rid} {tag} {c.method} {c.noise} {c.eta}: test acc {r['test_acc_best_val']:.4f}"
                            f" ({r['wall_s']:.0f} s)")
                    summary["elapsed_s"] = time.perf_counter() - summary["_t0"]
                    out.write_summary({k: v for k, v in summary.items() if not k.startswith("_")})
            if running and time.perf_counter() > deadline:
                for rid, (job, c, tag) in running.items():
                    summary["skipped"].append(_describe(tag, c, reason="stopped unfinished at the budget"))
                out.log(f"budget reached: {len(running)} unfinished run(s) stopped")
                running.clear()
                break
            time.sleep(0.05)
        for t, c in queue:
            summary["skipped"].append(_describe(t, c, reason="budget reached before it started"))
    finally:
        pool.terminate()
        pool.join()


# --------------------------------------------------------------------------- main


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget-s", type=float, default=450.0, help="wall budget of the whole script, seconds")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data-root", type=Path, default=data.data_root(),
                   help=f"folder holding {data.CIFAR10_JPEG_FILE} (default: $GCE_DATA, else ~/.cache/gce/data)")
    p.add_argument("--out", type=Path, required=True, help="results folder (at most 5 files are written)")
    p.add_argument("--tiny", action="store_true", help="CPU test mode: tiny CNN, a few steps, one epoch per run")
    p.add_argument("--calibrate-s", type=float, default=20.0)
    p.add_argument("--max-pack", type=int, default=6, help="most lite runs trained at once")
    p.add_argument("--max-runs", type=int, default=None, help="most lite runs to train in this call (tests)")
    p.add_argument("--skip", default="", help="comma-separated steps to skip: matmul,throughput,paper_epoch,grid")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    deadline = t0 + args.budget_s - 3.0  # leave time to write the summary
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as in the workers: fixed shapes, autotuned convolutions
    out = Out(args.out)
    skip = set(filter(None, args.skip.split(",")))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    summary = {"_t0": t0, "device": name, "budget_s": args.budget_s, "data_label": data.CIFAR10_JPEG_LABEL,
               "tiny_test_mode": args.tiny, "provenance": _provenance(device), "errors": {}}
    out.log(f"== gpu_run: {name}, torch {torch.__version__}, budget {args.budget_s:.0f} s, load {os.getloadavg()}")

    def step(key, fn):
        if key in skip:
            return
        try:
            fn()
        except Exception:  # noqa: BLE001 - one failed step must not lose the others
            summary["errors"][key] = traceback.format_exc(limit=4)
            out.log(f"step {key} FAILED:\n{summary['errors'][key]}")
        summary["elapsed_s"] = time.perf_counter() - t0
        out.write_summary({k: v for k, v in summary.items() if not k.startswith("_")})

    def env():
        n = 256 if args.tiny else 8192
        rate = bf16_matmul_rate(device, n, 0.2 if args.tiny else 2.0)
        summary["environment"] = {"torch": torch.__version__, "matmul_n": n, "bf16_matmul_tflop_per_s": rate / 1e12,
                                  "cuda": torch.version.cuda, "cpu_count": os.cpu_count()}
        out.log(f"bf16 matmul ({n}x{n}), measured: {rate / 1e12:.1f} TFLOP/s")

    def bench():
        ds = data.load(DATA, args.data_root)
        images, labels = ds.train.images.numpy(), ds.train.labels.numpy()
        if args.tiny:
            r = throughput.compare(images, labels, device, steps=2, warmup=1, batch=4, workers=0,
                                   model_fn=lambda c: models.small_cnn(c, 3, 4))
        else:
            r = throughput.compare(images, labels, device, steps=100, warmup=15, batch=128,
                                   workers=min(8, os.cpu_count() or 1))
        measured = summary.get("environment", {}).get("bf16_matmul_tflop_per_s")
        r["fraction_of_measured_bf16"] = r["gce_tflop_per_s"] / measured if measured else None
        summary["throughput"] = r
        out.log(throughput.report(r))

    def paper_epoch():
        c = next(c for c in experiments.spec("table1", "paper").configs if c.dataset == "cifar10")
        c = replace(c, dataset=DATA, epochs=1, milestones=(), precision="bf16" if device.type == "cuda" else "fp32",
                    channels_last=device.type == "cuda")
        if args.tiny:
            c = replace(c, model="small_cnn", model_kwargs=(("width", 4),), batch_size=8)
        data.load(DATA, args.data_root)  # decoding is not part of the epoch
        start = time.perf_counter()
        gtrain.train_many([c], device=device, root=args.data_root)
        seconds = time.perf_counter() - start
        n_train = round(len(data.load(DATA, args.data_root).train) * (1 - c.val_fraction))
        rate = n_train / seconds
        ref = flops_per_image(c.model, c.model_kwargs, (3, 32, 32))
        hours, runs = paper_grid_hours(rate, ref)
        summary["paper_epoch"] = {"model": c.model, "train_images": n_train, "seconds": seconds,
                                  "images_per_s": rate, "grid_runs": runs, "grid_gpu_hours_estimate": hours}
        out.log(f"paper epoch ({c.model}, {n_train} images, evaluation included): {seconds:.1f} s = {rate:.0f} "
                f"images/s; ESTIMATE full paper grid ({runs} runs): {hours:.1f} GPU-hours")

    step("matmul", env)
    step("throughput", bench)
    step("paper_epoch", paper_epoch)
    step("grid", lambda: run_grid(args, out, summary, deadline, device))
    summary["elapsed_s"] = time.perf_counter() - t0
    out.write_summary({k: v for k, v in summary.items() if not k.startswith("_")})
    files = [f for f in args.out.iterdir() if f.is_file()]
    assert len(files) <= MAX_FILES, f"{len(files)} files under {args.out}; at most {MAX_FILES} are kept"
    out.log(f"== done in {summary['elapsed_s']:.0f} s: {len(summary.get('ran', []))} runs stored, "
            f"{len(summary.get('skipped', []))} skipped; see {args.out / 'summary.md'}")


if __name__ == "__main__":
    main()
