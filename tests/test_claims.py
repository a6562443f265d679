"""The claims registry: completeness, each check on synthetic results with a known verdict, the stored results."""

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gce import claims, experiments

ROOT = Path(__file__).resolve().parents[1]
HOLDS, FAILS, NT = claims.HOLDS, claims.FAILS, claims.NOT_TESTABLE
SEEDS = range(4)


def _frames(runs: list[dict], curves: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs: one dict per run (with run_id); curves: run_id -> dict of per-epoch lists (test_acc, ...)."""
    hist = []
    for rid, cols in curves.items():
        n = len(cols["test_acc"])
        hist += [{"run_id": rid, "epoch": e + 1, **{k: v[e] for k, v in cols.items()}} for e in range(n)]
    return pd.DataFrame(runs), pd.DataFrame(hist)


def _rise(start, top, end, n=20, at=5):
    up = np.linspace(start, top, at)
    return list(np.concatenate([up, np.linspace(top, end, n - at)]))


def _fig1(mae_lag=6, mae_best=0.95, cce_drop=0.1, lq_drop=0.0, many=None, noisy_soft_rise=True, jitter=0.002):
    """Clean CCE/MAE on digits (and digit_pairs with ``many=(cce_best, mae_best)``), noisy CCE and L_q."""
    runs, curves = [], {}
    blocks = [("digits", 0.98, mae_best)] + ([("digit_pairs", *many)] if many else [])
    for d, cce_best, mbest in blocks:
        for s in SEEDS:
            j = jitter * s
            runs.append(dict(run_id=f"{d}c{s}", dataset=d, noise="none", eta=0.0, method="cce", q=0.7, seed=s))
            curves[f"{d}c{s}"] = {"test_acc": _rise(0.1, cce_best - j, cce_best - j, at=4)}
            runs.append(dict(run_id=f"{d}m{s}", dataset=d, noise="none", eta=0.0, method="mae", q=0.7, seed=s))
            curves[f"{d}m{s}"] = {"test_acc": _rise(0.1, mbest - j, mbest - j, at=4 + mae_lag)}
    for s in SEEDS:
        j = jitter * s
        soft = _rise(0.3, 0.05, 0.3 if noisy_soft_rise else 0.06)
        runs.append(dict(run_id=f"nc{s}", dataset="digits", noise="uniform", eta=0.4, method="cce", q=0.7, seed=s))
        curves[f"nc{s}"] = {"test_acc": _rise(0.1, 0.9 - j, 0.9 - j - cce_drop), "softmax_noisy": soft}
        runs.append(dict(run_id=f"nl{s}", dataset="digits", noise="uniform", eta=0.4, method="lq", q=0.7, seed=s))
        curves[f"nl{s}"] = {"test_acc": _rise(0.1, 0.92 - j, 0.92 - j - lq_drop),
                            "softmax_noisy": _rise(0.3, 0.02 + j, 0.03 + j)}
    return _frames(runs, curves)


def _fig2(drops: dict, peaks: dict | None = None, slow=3):
    """drops[(eta, q)] = drop in test accuracy after the peak; q = 0 is CCE; clean runs slow down with q."""
    runs, curves = [], {}
    for (eta, q), drop in drops.items():
        for s in SEEDS:
            rid = f"{eta}-{q}-{s}"
            at = (peaks or {}).get((eta, q), 5) if eta > 0 else 3 + int(slow * q * 2)
            runs.append(dict(run_id=rid, dataset="digits", noise="uniform" if eta else "none", eta=eta,
                             method="cce" if q == 0 else "lq", q=q if q else 0.7, seed=s))
            curves[rid] = {"test_acc": _rise(0.1, 0.9 - 0.002 * s, 0.9 - 0.002 * s - drop, n=30, at=at),
                           "val_loss": list(np.linspace(1, 0.5, 30))}
    return _frames(runs, curves)


def _table1(means: dict, se=0.3, dataset="digits", best_epoch=50, prune_start=40):
    """means[(noise, eta, method)] = mean accuracy in %; 4 seeds spread symmetrically (std ~ 2 se)."""
    runs = []
    offsets = np.array([-1.5, -0.5, 0.5, 1.5]) * se * 2 / np.std([-1.5, -0.5, 0.5, 1.5], ddof=1)
    for (noise, eta, m), mu in means.items():
        for s, off in zip(SEEDS, offsets):
            runs.append(dict(run_id=f"{dataset}{noise}{eta}{m}{s}", dataset=dataset, noise=noise, eta=eta, method=m,
                             seed=s, test_acc_best_val=(mu + off) / 100, flip_rate_train=eta, best_epoch=best_epoch,
                             prune_start=prune_start))
    return pd.DataFrame(runs), pd.DataFrame({"run_id": [], "epoch": []})


def _t1_means(order: dict[str, float], noises=experiments.TABLE1_NOISE):
    return {(n, e, m): v for n, e in noises for m, v in order.items()}


def _table2(means: dict, se=0.3):
    runs = [dict(run_id=f"{n}{m}{s}", noise=n, method=m, seed=s, test_acc_last=(mu + off) / 100)
            for (n, m), mu in means.items() for s, off in zip(SEEDS, np.array([-1.5, -0.5, 0.5, 1.5]) * se)]
    return pd.DataFrame(runs), pd.DataFrame({"run_id": [], "epoch": []})


# --------------------------------------------------------------------------- the registry


def test_registry_is_complete_with_unique_ids_and_stated_rules():
    ids = [c.id for c in claims.CLAIMS]
    assert len(ids) == len(set(ids)) and len(ids) >= 15
    for c in claims.CLAIMS:
        assert c.id and c.section in ("3.2", "4.1", "4.3") and len(c.text) > 20
        assert c.experiments and set(c.experiments) <= set(experiments.EXPERIMENTS)
        assert callable(c.check) and list(inspect.signature(c.check).parameters) == ["results"]
        assert c.rule.startswith("Holds if"), c.id  # the decision rule is written down
    assert {c.section for c in claims.CLAIMS} == {"3.2", "4.1", "4.3"}
    assert claims.get("mae_poor").section == "4.3"
    with pytest.raises(ValueError, match="unknown claim id 'nope'"):
        claims.get("nope")
    with pytest.raises(ValueError, match="status"):
        claims.Verdict("maybe", "x")


def test_every_claim_is_untestable_without_its_experiments():
    for c in claims.CLAIMS:
        v = claims.check(c, {})
        assert v.status == NT and "no stored runs of" in v.reason


# --------------------------------------------------------------------------- Sec. 3.2


def test_mae_slower_and_lower_on_clean_labels():
    f = {"fig1": _fig1(mae_lag=6, mae_best=0.95)}
    assert claims.check("mae_slower_clean", f).status == HOLDS
    v = claims.check("mae_lower_clean", f)
    assert v.status == HOLDS and "CCE 97.70" in v.reason
    assert v.numbers["best_mean"].tolist() == pytest.approx([97.7, 94.7])
    same = {"fig1": _fig1(mae_lag=0, mae_best=0.98)}
    assert claims.check("mae_slower_clean", same).status == FAILS
    assert claims.check("mae_lower_clean", same).status == FAILS


def test_mae_fails_many_classes_needs_a_100_class_block(monkeypatch):
    monkeypatch.setattr(experiments, "PAPER_ANALOGUE", {"digits": "cifar10", "digit_pairs": "cifar100"},
                        raising=False)
    v = claims.check("mae_fails_many_classes", {"fig1": _fig1()})
    assert v.status == NT and "100-class" in v.reason
    assert claims.check("mae_fails_many_classes", {"fig1": _fig1(mae_best=0.97, many=(0.6, 0.2))}).status == HOLDS
    assert claims.check("mae_fails_many_classes", {"fig1": _fig1(mae_best=0.97, many=(0.6, 0.595))}).status == FAILS


# --------------------------------------------------------------------------- Sec. 4.1


def test_fig1c_claims():
    f = {"fig1": _fig1(cce_drop=0.1, lq_drop=0.005)}
    assert claims.check("cce_memorises", f).status == HOLDS
    assert claims.check("cce_noisy_softmax_rises", f).status == HOLDS
    assert claims.check("lq_separates_noisy_labels", f).status == HOLDS
    v = claims.check("q07_no_overfitting", f)
    assert v.status == HOLDS and v.numbers["drop_mean"].iloc[0] == pytest.approx(0.5)
    g = {"fig1": _fig1(cce_drop=0.0, lq_drop=0.05, noisy_soft_rise=False)}
    assert claims.check("cce_memorises", g).status == FAILS
    assert claims.check("cce_noisy_softmax_rises", g).status == FAILS
    assert claims.check("q07_no_overfitting", g).status == FAILS
    runs, hist = _fig1()
    clean_only = {"fig1": (runs[runs["noise"] == "none"], hist)}
    assert claims.check("cce_memorises", clean_only).status == NT


def test_fig2_claims_hold_when_larger_q_delays_and_stops_overfitting():
    drops = {(0.0, 0.0): 0, (0.0, 0.5): 0, (0.0, 1.0): 0,
             (0.2, 0.0): 0.05, (0.2, 0.5): 0.005, (0.2, 1.0): 0.0,
             (0.6, 0.0): 0.2, (0.6, 0.5): 0.05, (0.6, 1.0): 0.005}
    peaks = {(e, q): 5 + int(10 * q) for e in (0.2, 0.6) for q in (0.0, 0.5, 1.0)}
    f = {"fig2": _fig2(drops, peaks)}
    for cid in ("larger_q_slower_clean", "larger_q_delays_overfitting", "threshold_exists", "threshold_grows"):
        assert claims.check(cid, f).status == HOLDS, cid
    v = claims.check("threshold_grows", f)
    assert v.numbers.set_index("eta")["threshold_q"].to_dict() == {0.0: 0.0, 0.2: 0.5, 0.6: 1.0}
    assert claims.check("q08_no_overfitting_eta02", f).status == NT  # no q = 0.8 in this grid
    g = {"fig2": _fig2({**drops, (0.2, 0.8): 0.005})}
    assert claims.check("q08_no_overfitting_eta02", g).status == HOLDS
    shrinks = {**drops, (0.6, 0.5): 0.0, (0.2, 0.5): 0.05}  # threshold 1.0 at eta 0.2, 0.5 at eta 0.6
    assert claims.check("threshold_grows", {"fig2": _fig2(shrinks, peaks)}).status == FAILS


def test_fig2_claims_fail_when_q_changes_nothing():
    drops = {(e, q): 0.1 for e in (0.0, 0.2, 0.6) for q in (0.0, 0.5, 1.0)}
    f = {"fig2": _fig2(drops, slow=0)}
    for cid in ("larger_q_slower_clean", "larger_q_delays_overfitting", "threshold_exists", "threshold_grows"):
        assert claims.check(cid, f).status == FAILS, cid
    assert claims.check("q08_no_overfitting_eta02", {"fig2": _fig2({**drops, (0.2, 0.8): 0.05})}).status == FAILS
    one_eta = {"fig2": _fig2({(0.2, 0.0): 0.1, (0.2, 1.0): 0.0})}
    assert claims.check("threshold_grows", one_eta).status == NT


# --------------------------------------------------------------------------- Sec. 4.3


GOOD = {"cce": 80, "mae": 70, "forward_T": 85, "forward_T_hat": 81, "lq": 84, "trunc_lq": 84.2}


def test_table1_claims_hold_on_a_table_shaped_like_the_papers():
    means = _t1_means(GOOD)
    for n, e in experiments.TABLE1_NOISE:  # Forward T best only under class-dependent noise
        if n == "uniform":
            means[(n, e, "forward_T")] = 83
    f = {"table1": _table1(means)}
    for cid in ("lq_beats_baselines_uniform", "trunc_beats_baselines_uniform", "forward_T_best_class_dependent",
                "mae_poor"):
        assert claims.check(cid, f).status == HOLDS, cid
    v = claims.check("truncation_improves", f)
    assert v.status == FAILS  # 0.2 points apart with a standard error of 0.3: not separated
    far = {k: (v + 1.5 if k[2] == "trunc_lq" else v) for k, v in means.items()}
    assert claims.check("truncation_improves", {"table1": _table1(far)}).status == HOLDS


def test_table1_claims_fail_or_are_untestable_when_they_should():
    bad = dict(GOOD, mae=90, lq=80.2, trunc_lq=80.2, forward_T=70)
    f = {"table1": _table1(_t1_means(bad))}
    for cid in ("lq_beats_baselines_uniform", "trunc_beats_baselines_uniform", "forward_T_best_class_dependent",
                "mae_poor"):
        assert claims.check(cid, f).status == FAILS, cid
    early = {"table1": _table1(_t1_means(GOOD), best_epoch=20, prune_start=40)}
    v = claims.check("truncation_improves", early)
    assert v.status == NT and "0% of the truncated runs on digits" in v.reason
    # every block must hold: a second block where L_q loses makes the claim fail
    two = pd.concat([_table1(_t1_means(GOOD))[0], _table1(_t1_means(bad), dataset="digit_pairs")[0]])
    assert claims.check("lq_beats_baselines_uniform", {"table1": (two, early["table1"][1])}).status == FAILS


def test_table2_claims():
    paper_like = {("open_set", "cce"): 63, ("open_set", "forward_T_hat"): 64, ("open_set", "mae"): 75,
                  ("open_set", "lq"): 71, ("open_set", "trunc_lq"): 79.5, ("uniform", "cce"): 62}
    f = {"table2": _table2(paper_like)}
    assert claims.check("trunc_best_open_set", f).status == HOLDS
    assert claims.check("gce_beats_cce_open_set", f).status == HOLDS
    worse = {**paper_like, ("open_set", "trunc_lq"): 74.9}
    g = {"table2": _table2(worse)}
    assert claims.check("trunc_best_open_set", g).status == FAILS
    assert claims.check("gce_beats_cce_open_set", g).status == HOLDS
    no_trunc = {k: v for k, v in paper_like.items() if k[1] != "trunc_lq"}
    assert claims.check("trunc_best_open_set", {"table2": _table2(no_trunc)}).status == NT


# --------------------------------------------------------------------------- the stored results


def test_evaluate_on_the_stored_pocket_results_gives_one_row_per_claim():
    t = claims.evaluate(ROOT / "results", "pocket")
    assert t["id"].tolist() == [c.id for c in claims.CLAIMS]
    assert set(t["status"]) <= set(claims.STATUSES) and (t["scale"] == "pocket").all()
    assert t["reason"].str.len().min() > 10
    assert claims.evaluate(ROOT / "results", "paper", ids=["mae_poor"])["status"].tolist() == [NT]
    with pytest.raises(ValueError, match="unknown scale"):
        claims.evaluate(ROOT / "results", "huge")


def test_evaluate_takes_a_loader_and_never_trains(tmp_path, monkeypatch):
    calls = []

    def loader(name, scale):
        calls.append((name, scale))
        return {"fig1": _fig1()}.get(name)

    monkeypatch.setattr(experiments, "run", lambda *a, **k: pytest.fail("evaluate must not train"))
    t = claims.evaluate(scale="pocket", loader=loader, ids=["mae_lower_clean", "mae_poor"])
    assert t.set_index("id")["status"].to_dict() == {"mae_lower_clean": HOLDS, "mae_poor": NT}
    assert sorted(calls) == [("fig1", "pocket"), ("table1", "pocket")]
    assert claims.stored_results("table1", "pocket", tmp_path) is None  # empty folder: nothing, no training


def test_plot_verdicts_draws_one_cell_per_claim_and_scale():
    import matplotlib

    matplotlib.use("Agg")
    from gce import plots

    t = pd.DataFrame({"id": ["a", "b", "a", "b"], "section": ["3.2", "4.3"] * 2, "scale": ["pocket"] * 2 + ["lite"] * 2,
                      "status": [HOLDS, FAILS, NT, HOLDS]})
    fig = plots.plot_verdicts(t, caption="demo")
    ax = fig.axes[0]
    assert len(ax.patches) == 4 and [x.get_text() for x in ax.get_xticklabels()] == ["pocket", "lite"]
    assert ax.get_yticklabels()[1].get_text() == "b (Sec. 4.3)"
