"""Helpers of the chapter "Truncated Lq and ACS" (book/truncated.ipynb): Eq. 10's table and the run of Algorithm 1.

Two parts.  :func:`eq10_table` searches the simplex for the extremes of the
truncated class sum and sets them beside Eq. 10's bounds and the exact range
(Sec. 3.3); :func:`eq10_display` formats it.  The chapter's minimal run of
Algorithm 1 reads Table 1's stored pocket runs of one setting
(:func:`demo_configs`, :func:`stored_demo_runs`) and summarises them
(:func:`kept_at_pruning`, :func:`seed_histories`, :func:`accuracy_table`,
:func:`paired_effects`); the samples kept by the first pruning step, which the
store does not hold, are summarised by :func:`pruning_table` from
:func:`gce.book.analysis.first_pruning_step`'s rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from ... import losses
from .. import analysis, experiments, stats
from .. import theory as th
from ..store import run_id
from ...train import RunConfig

__all__ = ["eq10_table", "eq10_display", "METHODS", "SETTING", "demo_configs", "eq9_config", "stored_demo_runs",
           "kept_at_pruning", "pruning_objective", "pruning_table", "pruning_numbers", "retrained_kept_gap",
           "seed_histories", "accuracy_table", "accuracy_summary", "paired_effects"]


# ---- Eq. 10


def eq10_table(cases: Sequence[tuple[int, float, float]], *, n_starts: int = 8, seed: int = 0) -> pd.DataFrame:
    """Eq. 10's bounds beside a search of the simplex and the exact range of the truncated class sum.

    ``cases`` are ``(c, q, k)``.  For each, :func:`gce.book.theory.eq10_search`
    (``n_starts`` random starts from ``seed``; local refinement only for
    ``c <= 10``) finds the smallest and largest class sum it can;
    :func:`gce.book.theory.eq10_bounds` gives Eq. 10 and
    :func:`gce.book.theory.truncated_class_sum_extremes` the exact range (Theorem
    T.1 of the chapter).  Returns one row per case, unrounded: ``c``, ``q``,
    ``k``, ``d`` (Eq. 10's constant, ``max(1, (1 - q)^(1/q) / k)``),
    ``eq10_lower``, ``found_min``, ``exact_min``, ``found_max``,
    ``eq10_upper``, ``exact_max``.
    """
    rows = []
    for c_, q_, k_ in cases:
        r = th.eq10_search(c_, q_, k_, n_starts=n_starts, seed=seed, local=c_ <= 10)
        lo, hi = (float(v) for v in th.eq10_bounds(c_, q_, k_))
        ex_lo, ex_hi = (float(v) for v in th.truncated_class_sum_extremes(c_, q_, k_))
        rows.append({"c": c_, "q": q_, "k": k_, "d": max(1.0, (1 - q_) ** (1 / q_) / k_),
                     "eq10_lower": lo, "found_min": r["min"], "exact_min": ex_lo,
                     "found_max": r["max"], "eq10_upper": hi, "exact_max": ex_hi})
    return pd.DataFrame(rows)


def _verdict(gap: float) -> str:
    return "TIGHT" if abs(gap) < 1e-9 else f"loose by {gap:.4f}"


def eq10_display(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`eq10_table` as the chapter prints it: the lower side and the upper side, rounded, with verdicts.

    A bound is ``TIGHT`` where the search reaches it (within ``1e-9``), else
    ``loose by`` the gap; ``search = exact`` says the search found the exact
    extremes (within ``1e-6``).  Returns the two tables, for display only.
    """
    key = [{"c": r.c, "q": r.q, "k": r.k} for r in table.itertuples()]
    lower = pd.DataFrame([{**kk, "d": round(r.d, 3), "Eq.10 lower": round(r.eq10_lower, 4),
                           "found min": round(r.found_min, 4), "exact min": round(r.exact_min, 4),
                           "lower": _verdict(r.found_min - r.eq10_lower)}
                          for kk, r in zip(key, table.itertuples())])
    upper = pd.DataFrame([{**kk, "found max": round(r.found_max, 4), "Eq.10 upper": round(r.eq10_upper, 4),
                           "upper": _verdict(r.eq10_upper - r.found_max),
                           "search = exact": bool(abs(r.found_min - r.exact_min) < 1e-6
                                                  and abs(r.found_max - r.exact_max) < 1e-6)}
                          for kk, r in zip(key, table.itertuples())])
    return lower, upper


# ---- the minimal run of Algorithm 1

#: The chapter's name for each method -> the engine's name.
METHODS = {"CCE": "cce", "Lq": "lq", "Trunc Lq": "trunc_lq"}
#: The one setting of Table 1 (dataset, noise, eta) that the chapter's run of Algorithm 1 shows.
SETTING = ("digits", "uniform", 0.4)


def demo_configs(scale: str = "pocket") -> list[RunConfig]:
    """Table 1's runs of :data:`SETTING` for the methods of :data:`METHODS`, every seed, in the grid's order."""
    configs = [c for c in experiments.spec("table1", scale).configs
               if (c.dataset, c.noise, c.eta) == SETTING and c.method in METHODS.values()]
    if not configs:
        raise ValueError(f"Table 1 at scale {scale!r} has no runs of the setting {SETTING}")
    return configs


def eq9_config(configs: Sequence[RunConfig]) -> RunConfig:
    """The seed-0 truncated run of ``configs`` with ``prune_start=0``: pruning the untrained network, i.e. Eq. 9
    minimised from the first epoch, the run the chapter trains to show why Algorithm 1 warms up first."""
    trunc = [c for c in configs if c.method == "trunc_lq" and c.seed == 0]
    if not trunc:
        raise ValueError("configs hold no truncated L_q run (method='trunc_lq') of seed 0")
    return replace(trunc[0], prune_start=0)


def stored_demo_runs(configs: Sequence[RunConfig], scale: str = "pocket",
                     results_dir=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored ``(runs, history)`` of ``configs`` (Table 1's runs), runs in the order of ``configs``.

    Read with :func:`gce.book.claims.stored_results`; never trains.  Raises when a
    run is not stored, naming how many and the command that trains them.
    """
    from .. import claims

    ids = [run_id(c) for c in configs]
    stored = claims.stored_results("table1", scale, results_dir)
    have = set() if stored is None else set(stored[0]["run_id"])
    missing = [i for i in ids if i not in have]
    if missing:
        raise ValueError(f"{len(missing)} of the chapter's {len(ids)} Table 1 runs are not stored at scale {scale!r}: "
                         f"python -m gce reproduce table1 --scale {scale}")
    runs = stored[0].set_index("run_id").loc[ids].reset_index()
    order = {rid: i for i, rid in enumerate(ids)}
    history = stored[1][stored[1]["run_id"].isin(order)]
    history = history.sort_values(["run_id", "epoch"], key=lambda s: s.map(order) if s.name == "run_id" else s)
    return runs, history.reset_index(drop=True)


def kept_at_pruning(configs: Sequence[RunConfig], history: pd.DataFrame) -> pd.DataFrame:
    """The fraction of training samples each truncated run kept after each pruning step, from its stored history.

    One row per pruning epoch (``RunConfig.prune_epochs``, counted from 0: the
    step before that epoch), one column ``seed s`` per truncated run of
    ``configs``; the value is ``kept`` of the epoch that follows the step.
    """
    trunc = [c for c in configs if c.method == "trunc_lq"]
    if not trunc:
        raise ValueError("configs hold no truncated L_q run (method='trunc_lq')")
    kept = history.set_index(["run_id", "epoch"])["kept"]
    epochs = trunc[0].prune_epochs()
    return pd.DataFrame({f"seed {c.seed}": [float(kept[(run_id(c), e + 1)]) for e in epochs]
                         for c in trunc}, index=pd.Index(epochs, name="pruning epoch"))


def pruning_objective(samples: pd.DataFrame, q: float, k: float) -> pd.DataFrame:
    """Eq. 13's objective per sample, ``J/n``, just before a pruning step (``w = 1``) and just after, per seed.

    ``samples`` are :func:`gce.book.analysis.first_pruning_step`'s rows (``seed``,
    ``f_y``, ``kept``).  ``J`` is linear in the weights with coefficient
    ``L_q(f_i) - L_q(k)`` (:func:`gce.losses.lq_of_probability`); the step sets
    ``w_i = kept``.  Returns columns ``J/n before`` and ``J/n after``, indexed by seed.
    """
    lq_k = losses.lq_of_probability(k, q)

    def objective(g):
        a = losses.lq_of_probability(torch.tensor(g["f_y"].tolist(), dtype=torch.float64), q).numpy() - lq_k
        return pd.Series({"J/n before": a.mean(), "J/n after": (a * g["kept"]).mean()})

    return samples.groupby("seed").apply(objective, include_groups=False)


def pruning_table(samples: pd.DataFrame, q: float, k: float) -> pd.DataFrame:
    """What the first pruning step kept, per seed: :func:`gce.book.analysis.pruning_quality` (``correct``, ``kept``,
    ``precision``, ``recall``) joined with :func:`pruning_objective`."""
    return analysis.pruning_quality(samples, by=["seed"]).join(pruning_objective(samples, q, k))


def pruning_numbers(kept: pd.DataFrame, table: pd.DataFrame) -> dict[str, float | int]:
    """The numbers the chapter quotes about pruning, by glue name.

    ``kept`` is :func:`kept_at_pruning`'s frame, ``table`` :func:`pruning_table`'s.
    Returns ``first_prune_epoch``, ``first_kept_seed0`` (percent kept by seed
    0's first step) and, in percent, ``<name>_min``, ``_max`` and ``_mean`` over
    the seeds for ``first_kept`` (the first step's kept fraction) and the
    table's ``correct``, ``precision`` and ``recall``.
    """
    first_kept = kept.iloc[0]
    out: dict[str, float | int] = {"first_prune_epoch": int(kept.index[0]),
                                   "first_kept_seed0": 100 * float(first_kept["seed 0"])}
    columns = {col: table[col] for col in ("correct", "precision", "recall")}
    for name, values in {"first_kept": first_kept, **columns}.items():
        out[f"{name}_min"] = 100 * float(values.min())
        out[f"{name}_max"] = 100 * float(values.max())
        out[f"{name}_mean"] = 100 * float(values.mean())
    return out


def retrained_kept_gap(kept: pd.DataFrame, table: pd.DataFrame) -> tuple[int, float]:
    """How far the retrained first pruning step is from the stored one: ``(runs compared, largest gap in points)``.

    :func:`gce.book.analysis.first_pruning_step` retrains each truncated run up to its
    first pruning step; the fraction it keeps (``table["kept"]``, per seed)
    should equal the stored run's (``kept``'s first row) up to rounding.
    """
    stored = pd.Series({int(col.split()[1]): float(v) for col, v in kept.iloc[0].items()})
    gap = (table["kept"] - stored.reindex(table.index)).abs()
    if gap.isna().any():
        raise ValueError(f"seeds {sorted(set(table.index) ^ set(stored.index))} are in only one of kept and table")
    return len(gap), float(100 * gap.max())


def seed_histories(runs: pd.DataFrame, history: pd.DataFrame, seed: int = 0,
                   column: str = "test_acc") -> dict[str, np.ndarray]:
    """One stored curve per method for one seed: the chapter's method name -> ``column`` per epoch."""
    label = {v: k for k, v in METHODS.items()}
    out = {}
    for _, r in runs[runs["seed"] == seed].iterrows():
        h = history[history["run_id"] == r["run_id"]].sort_values("epoch")
        out[label[r["method"]]] = h[column].to_numpy(dtype=float)
    if not out:
        raise ValueError(f"runs hold no run of seed {seed}")
    return out


def accuracy_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per stored run: ``seed``, ``method`` (the chapter's name), ``last epoch`` and
    ``best val epoch`` (at the epoch of best noisy validation accuracy, the model the paper reports)."""
    label = {v: k for k, v in METHODS.items()}
    return pd.DataFrame({"seed": runs["seed"].astype(int).to_numpy(), "method": runs["method"].map(label).to_numpy(),
                         "last epoch": runs["test_acc_last"].to_numpy(dtype=float),
                         "best val epoch": runs["test_acc_best_val"].to_numpy(dtype=float)})


def accuracy_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of :func:`accuracy_table`'s two accuracies, per method."""
    return table.groupby("method", sort=False)[["last epoch", "best val epoch"]].agg(["mean", "std"])


def paired_effects(table: pd.DataFrame) -> dict[str, float]:
    """Paired differences in points at the best-validation epoch (:func:`gce.book.stats.paired`), by glue name.

    For ``Lq - CCE``, ``Trunc Lq - CCE`` and ``Trunc Lq - Lq``: the mean
    difference over seeds (``Lq_minus_CCE`` ...) and its standard error
    (``..._se``).
    """
    best = table.pivot(index="seed", columns="method", values="best val epoch")
    out = {}
    for a, b in (("Lq", "CCE"), ("Trunc Lq", "CCE"), ("Trunc Lq", "Lq")):
        e = stats.paired(100 * best[a].to_numpy(), 100 * best[b].to_numpy())
        name = f"{a}_minus_{b}".replace(" ", "_")
        out[name] = float(e.mean)
        out[f"{name}_se"] = float(e.se)
    return out
