"""Command line: python -m gce reproduce {schedule,fig1,fig2,table1,table2,human,all} --scale {pocket,lite,paper}.

claims prints the verdict of every claim of the paper at a scale, grouped by
outcome, each with its evidence in one line (read from the stored results;
nothing is trained).

reproduce trains what the result store does not hold yet (an interrupted or
killed run resumes where it stopped), then draws the figure or writes the
table next to the results: <results>/<scale>/<name>.png and <name>.md.
The store, <results>/<scale>/results.sqlite, is the single source of truth.
results export writes the stored runs as CSV tables; results import-csv
stores CSV tables (checked row by row) in the database; results compact folds
the write-ahead log into the database file before it is committed.

Exit codes: 0 done, 1 an error (one line saying what; failed runs: one more line
each), 2 bad arguments,
130 interrupted (every finished run is saved; run the same command to resume).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import pandas as pd

from . import analysis, experiments, parallel, reader, runners, store as result_store
from ..data import DatasetCorrupt, DatasetUnavailable


def _draw(name: str, scale: str, exp, results, out: Path) -> str:
    """Draw the figure or write the table of experiment ``name`` from its stored runs (:func:`gce.book.reader.read`)
    into ``out``; returns the file written."""
    import matplotlib

    matplotlib.use("Agg")
    from . import plots

    plots.use_book_style()
    runs, history = reader.read(name, scale, results) or (pd.DataFrame(), pd.DataFrame())
    where = f"{scale} scale, {', '.join(exp.datasets)}"
    if name == "fig1":
        fig = plots.plot_fig1(runs, history, datasets=exp.datasets, caption=f"Figure 1 rebuilt ({where})")
    elif name == "fig2":
        fig = plots.plot_fig2(runs, history, qs=experiments.FIG2_QS, etas=experiments.FIG2_ETAS,
                              caption=f"Figure 2 rebuilt ({where})")
    else:
        if name == "human":
            from ..human_noise import results_table
            table = results_table(runs)
        else:
            table = analysis.table1_wide(runs) if name in ("table1", "later") else analysis.table2_wide(runs)
        path = out / f"{name}.md"
        path.write_text(f"# {exp.title} ({where})\n\n{exp.note}\n\n" + analysis.markdown_table(table) + "\n")
        return str(path)
    path = out / f"{name}.png"
    fig.savefig(path, bbox_inches="tight")
    return str(path)


def _gpus(text: str) -> float:
    """``--gpus-per-run``: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (0: CPU), got {text!r}")
    return value


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"must be I/N with 0 <= I < N, e.g. 0/2, got {text!r}")
    return i, n


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    scale_default = os.environ.get("GCE_SCALE", "pocket")
    results_default = str(experiments.default_results_dir())
    parser = argparse.ArgumentParser(prog="python -m gce", description=__doc__.splitlines()[0], formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="run and draw a figure or table of the paper", formatter_class=fmt)
    rep.add_argument("what", nargs="+", choices=[*experiments.EXPERIMENTS, "all"],
                     help="one or more experiments, or all")
    rep.add_argument("--scale", choices=experiments.SCALES, default=scale_default, help="scale ($GCE_SCALE)")
    rep.add_argument("--results", default=results_default,
                     help="results folder ($GCE_RESULTS, else the checkout's results/, else the installed ones)")
    rep.add_argument("--device", default=None, help="torch device; none: cuda if available, else cpu")
    rep.add_argument("--data-root", default=None, help="dataset folder; none: $GCE_DATA or ~/.cache/gce/data")
    rep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rep.add_argument("--jobs", type=int, default=1,
                     help="processes side by side, each training some of the experiments (gce.book.parallel)")
    rep.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                     help="train only part I of N of each experiment (0-based; --jobs uses it); no figure is drawn")
    rep.add_argument("--threads", type=int, default=None,
                     help="torch threads of the local engine; none: $GCE_THREADS, else 1 on the CPU")
    rep.add_argument("--engine", choices=runners.ENGINES, default="local",
                     help="local: this process; ray: one Ray task per run")
    rep.add_argument("--address", default=None, help="Ray cluster address; none: start a local Ray")
    rep.add_argument("--gpus-per-run", type=_gpus, default=0.0,
                     help="GPUs per Ray task, fractional to share a GPU; 0: CPU")

    cl = sub.add_parser("claims", help="print every claim's verdict with its evidence, grouped by outcome (reads the "
                                       "stored results; trains nothing)", formatter_class=fmt)
    cl.add_argument("--scale", choices=experiments.SCALES, default=scale_default, help="scale ($GCE_SCALE)")
    cl.add_argument("--results", default=results_default, help="results folder")

    res = sub.add_parser("results", help="export or import the stored runs", formatter_class=fmt)
    rsub = res.add_subparsers(dest="action", required=True)
    exp = rsub.add_parser("export", help="write <name>_runs.csv and <name>_history.csv of every stored experiment",
                          formatter_class=fmt)
    imp = rsub.add_parser("import-csv", help="store the runs of CSV tables (checked) in the database",
                          formatter_class=fmt)
    imp.add_argument("folder", help="folder holding <name>_runs.csv and <name>_history.csv")
    comp = rsub.add_parser("compact", help="fold the write-ahead log into the database file (before a commit)",
                           formatter_class=fmt)
    for p in (exp, imp, comp):
        p.add_argument("--scale", choices=experiments.SCALES, default=scale_default, help="scale ($GCE_SCALE)")
        p.add_argument("--results", default=results_default, help="results folder")
    exp.add_argument("--out", default=None, help="output folder; none: <results>/<scale>")
    comp.add_argument("--wait", type=float, default=60.0,
                      help="seconds to wait for other processes that hold the file before giving up")
    return parser


def _saved_since(before: dict[str, set[str]], results, scale) -> int:
    """Runs stored since the command started (read from the store: exact even mid-run)."""
    n = 0
    for name, ids in before.items():
        try:
            n += len(result_store.ResultStore(results, scale, name).done() - ids)
        except ValueError:
            pass
    return n


def _reproduce(args, before: dict[str, set[str]]) -> None:
    if args.engine == "local":
        runners.check_device(args.device)  # before any work
    if args.jobs < 1:
        raise ValueError(f"--jobs must be a positive number of processes, got {args.jobs}")
    names = experiments.EXPERIMENTS if "all" in args.what else tuple(dict.fromkeys(args.what))
    total = time.time()
    if args.jobs != 1 and args.shard is None:
        groups = parallel.partition(names, args.scale, args.jobs)
        options = ["--scale", args.scale, "--results", str(args.results), "--engine", args.engine,
                   *(["--device", args.device] if args.device else []),
                   *(["--data-root", args.data_root] if args.data_root else []),
                   *(["--threads", str(args.threads)] if args.threads else []), "--no-progress"]
        print(f"{len(groups)} processes: " + "; ".join(", ".join(" ".join(parallel.unit_args(u)) for u in g)
                                                      for g in groups), flush=True)
        code = parallel.run_jobs(groups, options)
        if code:
            raise ValueError(f"a process of --jobs {args.jobs} exited with code {code}; its lines above say why "
                             f"(every finished run is saved: run the same command to resume)")
        for name in dict.fromkeys(u[0] for g in groups for u in g if u[1] is not None):  # split: draw it here
            exp, out = experiments.spec(name, args.scale), Path(args.results) / args.scale
            print(f"{name}: {len(exp.configs)} runs -> {_draw(name, args.scale, exp, args.results, out)}", flush=True)
        print(f"total: {time.time() - total:.0f} s", flush=True)
        return
    for name in names:
        start = time.time()
        before[name] = result_store.ResultStore(args.results, args.scale, name).done()
        exp, store = experiments.run(name, args.scale, results=args.results, device=args.device,
                                     root=args.data_root, progress=not args.no_progress, engine=args.engine,
                                     address=args.address, gpus_per_run=args.gpus_per_run,
                                     threads=args.threads, allow_training=True,  # a request to train
                                     shard=args.shard)
        if not exp.configs:  # e.g. "human" at the pocket scale
            print(f"{name}: no runs ({exp.note})", flush=True)
            continue
        if args.shard is not None:
            print(f"{name}: part {args.shard[0]}/{args.shard[1]}, {len(store.trained)} runs trained now, "
                  f"{time.time() - start:.0f} s", flush=True)
            continue
        path = _draw(name, args.scale, exp, args.results, store.dir)
        print(f"{name}: {len(exp.configs)} runs ({len(store.trained)} trained now, "
              f"{len(exp.configs) - len(store.trained)} stored before), {time.time() - start:.0f} s -> {path}",
              flush=True)
    print(f"total: {time.time() - total:.0f} s", flush=True)


def _results(args) -> None:
    if args.action == "export":
        for path in result_store.export_csv(args.results, args.scale, args.out):
            print(path)
    elif args.action == "import-csv":
        counts = result_store.import_csv(args.folder, args.results, args.scale)
        print(", ".join(f"{n}: {c} runs" for n, c in counts.items()) or "no <name>_runs.csv found",
              f"-> {Path(args.results) / args.scale / result_store.DB_NAME}")
    else:
        print(result_store.compact(args.results, args.scale, wait_s=args.wait))


def _claims(args) -> None:
    """Every claim's verdict at ``args.scale`` (:func:`gce.book.claims.evaluate`), grouped by outcome, each with its
    claim and its evidence in one line, as the claims page prints them (:func:`gce.book.claims.format_verdicts`)."""
    from . import claims

    where = Path(args.results)
    have = reader.scales(where)
    if args.scale not in have:
        raise ValueError(f"no stored results of any experiment at scale {args.scale!r} in {where}; scales with "
                         f"stored results there: {', '.join(have) or 'none'}")
    verdicts = claims.evaluate(where, args.scale)
    print(f"{len(verdicts)} claims of the paper, verdicts at the {args.scale} scale from {where}")
    for status in claims.STATUSES:
        rows = verdicts[verdicts["status"] == status]
        print(f"\n== {status}: {len(rows)}")
        if len(rows):
            print(claims.format_verdicts(rows))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    before: dict[str, set[str]] = {}
    try:
        if args.command == "reproduce":
            _reproduce(args, before)
        elif args.command == "claims":
            _claims(args)
        else:
            _results(args)
    except KeyboardInterrupt:
        saved = _saved_since(before, args.results, args.scale) if before else 0
        print(f"interrupted; {saved} runs saved; run the same command to resume", file=sys.stderr, flush=True)
        return 130
    except (ValueError, DatasetUnavailable, DatasetCorrupt, OSError, ImportError, runners.RunsFailed) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)  # RunsFailed: one more line per failed run
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
