"""Command line: ``python -m gce reproduce {fig1,fig2,table1,table2,human,all} --scale {pocket,lite,paper}``.

Trains what the results folder does not hold yet (an interrupted run resumes
where it stopped), then draws the figure or writes the table next to the
results: ``<results>/<scale>/<name>.png`` and ``<name>.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import analysis, experiments


def _draw(name: str, scale: str, exp, store, out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from . import plots

    plots.use_book_style()
    runs, history = store.runs, store.history
    where = f"{scale} scale, {', '.join(exp.datasets)}"
    if name == "fig1":
        fig = plots.plot_fig1(runs, history, datasets=exp.datasets, caption=f"Figure 1 rebuilt ({where})")
    elif name == "fig2":
        fig = plots.plot_fig2(runs, history, qs=experiments.FIG2_QS, etas=experiments.FIG2_ETAS,
                              caption=f"Figure 2 rebuilt ({where})")
    else:
        if name == "human":
            from .human_noise import results_table
            table = results_table(runs)
        else:
            table = analysis.table1_wide(runs) if name == "table1" else analysis.table2_wide(runs)
        path = out / f"{name}.md"
        path.write_text(f"# {exp.title} ({where})\n\n{exp.note}\n\n" + analysis.markdown_table(table) + "\n")
        return str(path)
    path = out / f"{name}.png"
    fig.savefig(path, bbox_inches="tight")
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gce", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="run and draw a figure or table of the paper")
    rep.add_argument("what", choices=[*experiments.EXPERIMENTS, "all"])
    rep.add_argument("--scale", choices=experiments.SCALES, default="pocket")
    rep.add_argument("--results", default="results", help="folder of the result tables (default: results)")
    rep.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    rep.add_argument("--data-root", default=None, help="dataset folder (default: $GCE_DATA or ~/.cache/gce/data)")
    rep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rep.add_argument("--engine", choices=("local", "ray"), default="local",
                     help="local: this process (default); ray: one Ray task per run")
    rep.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    rep.add_argument("--gpus-per-run", type=float, default=0.0,
                     help="GPUs per Ray task, fractional to share a GPU (default 0: CPU)")
    args = parser.parse_args(argv)

    names = experiments.EXPERIMENTS if args.what == "all" else (args.what,)
    total = time.time()
    for name in names:
        start = time.time()
        exp, store = experiments.run(name, args.scale, results=args.results, device=args.device,
                                     root=args.data_root, progress=not args.no_progress, engine=args.engine,
                                     address=args.address, gpus_per_run=args.gpus_per_run)
        if not exp.configs:  # e.g. "human" at the pocket scale
            print(f"{name}: no runs ({exp.note})", flush=True)
            continue
        out = Path(args.results) / args.scale
        path = _draw(name, args.scale, exp, store, out)
        print(f"{name}: {len(exp.configs)} runs ({len(store.trained)} trained now, the rest stored), "
              f"{time.time() - start:.0f} s -> {path}", flush=True)
    print(f"total: {time.time() - total:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
