"""Tables, figure and numbers of the appendix page "The cpu scale: real images on two cores"
(``book/appendix/cpu_scale.ipynb``).

The page reads two committed measurements and computes nothing new from images:

- ``benchmarks/cpu_candidates.json`` (``benchmarks/cpu_candidates.py``): which model the cpu scale trains, chosen
  by criteria that name no loss (clean CCE accuracy, memorisation of fully random labels as Zhang et al. (2017)
  measure it, a time budget), the learning-rate rule, and the threads measurement;
- ``benchmarks/cpu_grid.json`` (``benchmarks/cpu_grid.py``): the batched engine's speed against one core's fp32
  peak and against a typical one-run-at-a-time loop.  Until it is measured the page says so
  (:func:`speed_text`).

Tables keep numbers (accuracies as fractions) until :func:`format_candidates` and :func:`format_lr` display them.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from .. import cpu_scale as _cpu
from .. import paths as _paths

__all__ = ["REBUILD_FILE", "rebuild_summary", "format_step", "later_text",
           "CANDIDATES_FILE", "GRID_FILE", "CLEAN_ACC_MIN", "BUDGET_MINUTES", "CORES", "CANDIDATE_INPUTS",
           "benchmark_path", "load_benchmark", "measured_run_epochs", "grid_run_epochs", "candidates_table", "choose",
           "format_candidates", "lr_table", "format_lr", "memorisation_curves", "plot_memorisation",
           "threads_summary", "speed_summary", "speed_text"]

#: The model choice's measurements, under the checkout's ``benchmarks/`` folder.
CANDIDATES_FILE = "cpu_candidates.json"
#: The speed measurement, under the checkout's ``benchmarks/`` folder (absent until it is run).
GRID_FILE = "cpu_grid.json"
#: Criterion (a) of the model choice, the least clean CCE test accuracy (best-validation epoch).
CLEAN_ACC_MIN = 0.65
#: Criterion (c), the time the whole cpu grid may take, in minutes on :data:`CORES` cores.
BUDGET_MINUTES = 60
#: The cores the cpu scale is sized for, one single-thread process on each.
CORES = 2
#: What each candidate feeds the head, and the head's hidden units (from :data:`gce.book.cpu_scale.CANDIDATES`).
CANDIDATE_INPUTS = {name: f"{inputs}, {hidden} hidden" for name, (_, hidden, inputs) in _cpu.CANDIDATES.items()}


def benchmark_path(name: str, root=None) -> Path | None:
    """``benchmarks/<name>`` of the book's checkout, or None where it is absent.

    ``root``: the checkout; by default the one holding the working directory, else the one the imported package
    comes from (:mod:`gce.book.paths`), else the copy installed with the package (``gce/benchmarks``, a plain
    ``pip install``); None where none of them holds it.
    """
    roots = [Path(root)] if root is not None else [r for r in (_paths.checkout_of(Path.cwd()),
                                                               _paths.package_checkout()) if r is not None]
    for r in roots:
        path = r / "benchmarks" / name
        if path.is_file():
            return path
    if root is None:  # a plain install (Colab): the measurements travel with the package as gce.benchmarks
        path = Path(str(resources.files("gce").joinpath("benchmarks", name)))
        if path.is_file():
            return path
    return None


def load_benchmark(name: str, root=None) -> dict | None:
    """The JSON measurement ``benchmarks/<name>`` (:func:`benchmark_path`) as a dict, or None where absent."""
    path = benchmark_path(name, root)
    return None if path is None else json.loads(path.read_text())


def _candidates(res: dict) -> list[str]:
    found = [c for c in CANDIDATE_INPUTS if c in res]
    if not found:
        raise ValueError(f"no candidate ({', '.join(CANDIDATE_INPUTS)}) in the measurement: pass {CANDIDATES_FILE}")
    return found


def measured_run_epochs(res: dict) -> float:
    """The cpu grid's run-epochs as the model choice counted them (``grid_run_epochs`` of the measurement)."""
    counts = res.get("grid_run_epochs")
    if not counts:
        raise ValueError(f"the measurement has no grid_run_epochs: pass {CANDIDATES_FILE}")
    return float(sum(counts.values()))


def grid_run_epochs() -> dict[str, float]:
    """Run-epochs of each experiment of the cpu grid as :func:`gce.book.experiments.spec` builds it now; a run on
    Table 2's half of the classes counts half (half the images), as in ``benchmarks/cpu_candidates.py``."""
    from .. import cpu_scale as _cpu
    from .. import experiments as _experiments

    return {name: float(sum(c.epochs * (0.5 if c.dataset.endswith(("_0to4", "_5to9")) else 1.0)
                            for c in _experiments.spec(name, "cpu").configs))
            for name in _cpu.EXPERIMENTS}


def candidates_table(res: dict, run_epochs: float | None = None) -> pd.DataFrame:
    """One row per candidate of ``cpu_candidates.json``: what criteria (a)-(c) measured, as numbers.

    Columns: ``inputs``; ``clean_best_val`` and ``clean_last`` (clean CCE test accuracy at the best-validation
    epoch and the last, fractions); ``random_40`` and ``random_120`` (training accuracy on fully random labels
    after epochs 40 and 120); ``cpu_s_per_run_epoch`` (the engine's CPU seconds per run-epoch at one thread,
    best reading); ``grid_minutes`` (those seconds times ``run_epochs``, over :data:`CORES` cores; by default the
    run-epochs the measurement counted, :func:`measured_run_epochs`; pass ``sum(grid_run_epochs().values())``
    for the grid as it is now); ``passes_accuracy`` and ``passes_budget`` (criteria (a) and (c)).  A phase not
    measured leaves NaN.
    """
    grid = measured_run_epochs(res) if run_epochs is None else float(run_epochs)
    rows = []
    for name in _candidates(res):
        r = res[name]
        clean, mem, timing = r.get("clean", {}), r.get("memorise", {}), r.get("timing", {})
        curve = mem.get("train_acc", [])
        cpu = min(timing["cpu_s_per_run_epoch_1"]) if timing else float("nan")
        rows.append({"candidate": name, "inputs": CANDIDATE_INPUTS[name],
                     "clean_best_val": clean.get("test_acc_best_val", float("nan")),
                     "clean_last": clean.get("test_acc_last", float("nan")),
                     "random_40": curve[39] if len(curve) >= 40 else float("nan"),
                     "random_120": curve[119] if len(curve) >= 120 else float("nan"),
                     "cpu_s_per_run_epoch": cpu, "grid_minutes": grid * cpu / CORES / 60})
    out = pd.DataFrame(rows).set_index("candidate")
    out["passes_accuracy"] = out["clean_best_val"] >= CLEAN_ACC_MIN
    out["passes_budget"] = out["grid_minutes"] <= BUDGET_MINUTES
    return out


def choose(table: pd.DataFrame) -> str | None:
    """The model-choice rule, declared before the smaller heads were measured: among the candidates of
    :func:`candidates_table` that pass criteria (a) and (c), the one with the highest training accuracy on random
    labels at epoch 120 (criterion (b)); a tie goes to the higher clean accuracy.  None where no candidate passes
    both."""
    ok = table[table["passes_accuracy"] & table["passes_budget"]]
    if ok.empty:
        return None
    return str(ok.sort_values(["random_120", "clean_best_val"], ascending=False).index[0])


def format_candidates(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`candidates_table` for reading: accuracies in % (one decimal), seconds to two decimals, minutes whole,
    the criteria as yes/no, under short column names: ``clean`` and ``last`` (clean CCE at the best-validation
    and the last epoch, %), ``rnd 40`` and ``rnd 120`` (random labels fitted after epochs 40 and 120, %), ``CPU s``
    (per run-epoch), ``min`` (the grid on two cores), ``(a)`` and ``(c)``."""
    need = ["clean_best_val", "clean_last", "random_40", "random_120", "cpu_s_per_run_epoch", "grid_minutes"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column(s) {missing}: pass the output of candidates_table")
    out = pd.DataFrame(index=table.index)
    out["clean"] = (100 * table["clean_best_val"]).round(1)
    out["last"] = (100 * table["clean_last"]).round(1)
    out["rnd 40"] = (100 * table["random_40"]).round(1)
    out["rnd 120"] = (100 * table["random_120"]).round(1)
    out["CPU s"] = table["cpu_s_per_run_epoch"].round(2)
    out["min"] = table["grid_minutes"].round(0).astype("Int64")
    for col, name in (("passes_accuracy", "(a)"), ("passes_budget", "(c)")):
        if col in table.columns:
            out[name] = table[col].map({True: "yes", False: "no"})
    return out


def lr_table(res: dict, methods: tuple[str, ...] = ("cce", "mae", "lq")) -> pd.DataFrame:
    """The learning-rate check of each candidate that has one: rows ``(candidate, lr)``, per method the clean
    validation-accuracy gain from epochs 26-30 to 36-40 (``gain_<method>``, a fraction) and the accuracy at
    epoch 40 (``val40_<method>``), and ``plateau``: whether every method gained less than the rule's point."""
    rows = []
    for name in _candidates(res):
        check = res[name].get("lr") or {}
        for lr in sorted({float(k.split("/")[0]) for k in check}):
            cells = [check.get(f"{lr:g}/{m}") for m in methods]
            if None in cells:
                raise ValueError(f"{name}: the learning-rate check lacks a method at lr={lr:g}")
            row = {"candidate": name, "lr": lr}
            for m, c in zip(methods, cells):
                row[f"gain_{m}"], row[f"val40_{m}"] = c["gain_30_to_40"], c["val_acc"][39]
            row["plateau"] = all(c["plateau"] for c in cells)
            rows.append(row)
    if not rows:
        raise ValueError("no candidate has a learning-rate check")
    return pd.DataFrame(rows).set_index(["candidate", "lr"])


def format_lr(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`lr_table` for reading: gains in points (``CCE +``) and epoch-40 accuracies in % (``CCE %``), one
    decimal, and whether all methods plateaued (``plateau``, yes/no)."""
    out = pd.DataFrame(index=table.index)
    for col in table.columns:
        if col.startswith("gain_"):
            out[f"{col[5:].upper().replace('LQ', 'Lq')} +"] = (100 * table[col]).round(1)
        elif col.startswith("val40_"):
            out[f"{col[6:].upper().replace('LQ', 'Lq')} %"] = (100 * table[col]).round(1)
    out["plateau"] = table["plateau"].map({True: "yes", False: "no"})
    return out


def memorisation_curves(res: dict) -> pd.DataFrame:
    """Training accuracy on fully random labels per epoch (Zhang et al., 2017): columns ``candidate``,
    ``epoch`` (1-based) and ``train_acc``; the learning-rate drops of the declared schedule follow epochs 40
    and 80."""
    rows = [{"candidate": name, "epoch": e + 1, "train_acc": a}
            for name in _candidates(res) for e, a in enumerate(res[name].get("memorise", {}).get("train_acc", []))]
    if not rows:
        raise ValueError("no candidate has a memorisation curve")
    return pd.DataFrame(rows)


def plot_memorisation(res: dict, *, chance: float = 0.1, drops: tuple[int, ...] = (40, 80)):
    """The figure of the page: each candidate's training accuracy on fully random labels per epoch, in %, with
    chance and the learning-rate drops marked.  Returns the figure."""
    from ..plots import FIG_WIDTH

    curves = memorisation_curves(res)
    groups = list(curves.groupby("candidate", sort=False))
    styles = [("-", "black"), ("--", "#0072B2"), ("-.", "#D55E00"), (":", "#009E73"), ("-", "#CC79A7")]
    if len(groups) > len(styles):
        raise ValueError(f"{len(groups)} candidates: the figure draws at most {len(styles)}")
    fig, ax = plt.subplots(figsize=(FIG_WIDTH * 0.75, 4.6), layout="constrained")
    for (name, g), (style, colour) in zip(groups, styles):
        ax.plot(g["epoch"], 100 * g["train_acc"], ls=style, color=colour,
                label=f"{name} ({CANDIDATE_INPUTS.get(name, name)})")
    ax.axhline(100 * chance, color="grey", lw=0.8, ls=":", label="chance")
    for d in drops:
        ax.axvline(d, color="grey", lw=0.6)
    ax.set_xlabel("epoch (learning rate / 10 after 40 and 80)")
    ax.set_ylabel("training accuracy on random labels (%)")
    fig.legend(loc="outside lower center", ncol=2, fontsize=9)  # below the axes: no curve hidden
    return fig


def threads_summary(res: dict, candidate: str = "features") -> dict:
    """The threads measurement: encoding 1,000 images, and training ``candidate``'s head, wall seconds at one and
    two threads (fastest reading each), CPU seconds at one thread, and the load average after each measurement
    (``encode_load``, ``head_load``).  ``head_two_processes_s``: the wall seconds per run-epoch of two one-thread
    processes side by side on two cores (half the one-thread time: each trains its own runs)."""
    enc, timing = res.get("encode"), res.get(candidate, {}).get("timing")
    if not enc or not timing:
        raise ValueError(f"the measurement lacks the threads phases (encode, {candidate} timing): "
                         f"pass {CANDIDATES_FILE}")
    head_1 = min(timing["s_per_run_epoch_1"])
    return {"encode_images": enc["images"], "encode_s_1": min(enc["seconds_1_thread"]),
            "encode_s_2": min(enc["seconds_2_threads"]), "encode_cpu_s_1": min(enc["cpu_seconds_1_thread"]),
            "head_s_1": head_1, "head_s_2": min(timing["s_per_run_epoch_2"]),
            "head_cpu_s_1": min(timing["cpu_s_per_run_epoch_1"]), "head_two_processes_s": head_1 / CORES,
            "encode_load": enc["load"][0], "head_load": timing["load"][0]}


def speed_summary(grid: dict | None) -> dict | None:
    """The numbers of the page's "Speed" section from ``cpu_grid.json``, or None when it holds no full run."""
    if not grid or grid.get("mode") != "full":
        return None
    e = grid["engine"]
    return {"runs": e["runs"], "peak_gflops": grid["peak_gflops"], "engine_gflops": e["gflops"],
            "fraction": grid["fraction_of_peak"], "s_per_run_epoch": e["s_per_run_epoch"],
            "loop_s": grid["loop"]["s_per_run_epoch"],
            "speedup": grid["loop_speedup"], "speedup_sliced": grid["loop_sliced_speedup"],
            "grid_minutes": grid["projected_minutes_two_cores"]["paper_grid"],
            "load_start": grid["load_at_start"][0], "load_end": grid["load_at_end"][0], "cpu": grid["cpu_model"],
            "torch": grid["torch_version"], "date": grid["date"][:10], "data": grid["data"]}


def speed_text(grid: dict | None) -> str:
    """The "Speed" section's paragraph: the measured numbers, or one line saying they are not measured yet."""
    s = speed_summary(grid)
    if s is None:
        return ("Not measured yet: `benchmarks/cpu_grid.py` writes `benchmarks/cpu_grid.json`, and this "
                "section shows its numbers once that file is in the repository.")
    return (f"Measured by `benchmarks/cpu_grid.py` on {s['date']} ({s['cpu']}, torch {s['torch']}, one thread; "
            f"load average {s['load_start']:.1f} at the start and {s['load_end']:.1f} at the end; "
            f"{s['data']}). One core's fp32 peak read {s['peak_gflops']:.0f} GFLOP/s; the batched engine ran "
            f"{s['runs']} Table 1 runs at {s['engine_gflops']:.0f} GFLOP/s, "
            f"**{100 * s['fraction']:.0f} % of the peak**, "
            f"{s['s_per_run_epoch']:.2f} s per run-epoch. A typical loop (one run at a time, `DataLoader`, "
            f"`torch.optim.SGD`) took {s['loop_s']:.2f} s per run-epoch: the engine is "
            f"**{s['speedup']:.1f} times faster** ({s['speedup_sliced']:.1f} times against the same loop with "
            f"its batches sliced from the tensors). At that speed the cpu grid takes about "
            f"{s['grid_minutes']:.0f} minutes on {CORES} cores (budget: {BUDGET_MINUTES}).")


#: The measured rebuild of the scale (``benchmarks/cpu_rebuild.py``), read by :func:`rebuild_summary`.
REBUILD_FILE = "cpu_rebuild.json"


def rebuild_summary(rec: dict | None) -> dict | None:
    """The measured rebuild of ``cpu_rebuild.json`` in numbers, or None where it is absent: per part (``paper``: the
    paper's experiments, ``later``: the later losses) the wall minutes as measured, the CPU minutes of its processes
    and ``idle_minutes`` (CPU minutes over the cores: the wall time on an otherwise idle machine), the load average
    range during the measurement, and whether the paper's part fits the budget on an idle machine.  Where steps ran
    side by side, the record's ``paper_wall_s`` (first start to last end) is the paper's wall time."""
    if not rec:
        return None
    parts: dict[str, dict] = {}
    for step in rec["steps"]:
        part = "later" if set(step["experiments"]) <= {"later"} else "paper"
        p = parts.setdefault(part, {"wall_minutes": 0.0, "cpu_minutes": 0.0, "loads": []})
        p["wall_minutes"] += step["wall_s"] / 60
        p["cpu_minutes"] += step["cpu_s"] / 60
        p["loads"] += [step["load_start"][0], step["load_end"][0]]
    cores = rec["cores"]
    out = {"cores": cores, "date": rec["date"], "note": rec.get("note", "")}
    for part, p in parts.items():
        out[part] = {"wall_minutes": p["wall_minutes"], "cpu_minutes": p["cpu_minutes"],
                     "idle_minutes": p["cpu_minutes"] / cores, "load_min": min(p["loads"]),
                     "load_max": max(p["loads"])}
    if "paper" in out:
        if "paper_wall_s" in rec:  # steps that ran side by side: their wall times overlap
            out["paper"]["wall_minutes"] = rec["paper_wall_s"] / 60
        out["paper"]["within_budget"] = out["paper"]["idle_minutes"] <= BUDGET_MINUTES
    return out


def later_text(summary: dict | None) -> str:
    """The sentence on the later losses' part of the measured rebuild (:func:`rebuild_summary`)."""
    if not summary or "later" not in summary:
        return ("The later losses' rows (the chapter *After the paper*) were not part of this measurement: their grid "
                "is declared but not trained yet.")
    return (f"The later losses' rows (the chapter *After the paper*) add {summary['later']['idle_minutes']:.0f} "
            f"minutes on two idle cores.")


def format_step(step: dict) -> str:
    """One step of ``cpu_rebuild.json`` as two lines: its command, then its wall and CPU minutes and the load
    average at its start and end."""
    return (f"{step['command']}\n    {step['wall_s'] / 60:.1f} min wall, {step['cpu_s'] / 60:.1f} CPU-min, "
            f"load average {step['load_start'][0]:.1f} -> {step['load_end'][0]:.1f}")
