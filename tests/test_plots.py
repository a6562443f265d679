"""The figure helpers draw what they are given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gce import noise
from gce.book import plots  # noqa: E402
from gce.classes import class_names  # noqa: E402


def test_transition_heatmap_shows_the_matrix_entries():
    T = noise.class_dependent("cifar10", 0.4)
    ax = plots.transition_heatmap(T, class_names("cifar10"), title="CIFAR-10")
    mesh = ax.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(10, 10), T.numpy())
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 100 and texts.count(".40") == 5 and texts.count(".60") == 5
    assert texts.count("") == 100 - 10 - 5  # zeros are left blank
    assert [t.get_text() for t in ax.get_yticklabels()][9] == "truck"
    assert ax.get_title() == "CIFAR-10"
    plt.close("all")


def test_large_matrices_are_drawn_without_annotations():
    ax = plots.transition_heatmap(noise.class_dependent("cifar100", 0.4))
    assert len(ax.texts) == 0
    assert len(ax.get_xticklabels()) == 10
    plt.close("all")


def test_compare_transitions_draws_two_panels():
    T = noise.uniform(4, 0.3)
    fig = plots.compare_transitions(T, T, list("abcd"), suptitle="x")
    heatmaps = [ax for ax in fig.axes if ax.collections]
    assert len(heatmaps) >= 2
    plt.close("all")


# ---- noise chapter ----


def test_transition_panels_draw_each_matrix_in_order():
    mats = {"uniform": noise.uniform(10, 0.4), "digits": noise.class_dependent("digits", 0.4),
            "cifar100": noise.class_dependent("cifar100", 0.4)}
    fig = plots.transition_panels(mats, {"digits": class_names("digits")}, ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in visible] == list(mats)
    np.testing.assert_allclose(np.asarray(visible[1].collections[0].get_array()).reshape(10, 10),
                               mats["digits"].numpy())
    assert sum(not ax.get_visible() for ax in fig.axes) == 1  # 3 panels on a 2x2 grid
    plt.close("all")


def test_image_grid_marks_and_labels():
    import torch
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    fig = plots.image_grid(images, labels=list("abcde"), marked=[False, True, False, False, True], ncols=3)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == list("abcde")
    assert [ax.spines["top"].get_visible() for ax in axes] == [False, True, False, False, True]
    np.testing.assert_array_equal(axes[0].images[0].get_array(), images[0, 0].numpy())
    plt.close("all")


# ---- lq_family ----
import sys  # noqa: E402
import types  # noqa: E402

from gce.book import theory  # noqa: E402


def test_plot_lq_family_draws_each_q_and_mae():
    qs = (0.0, 0.5, 1.0)
    ax_loss, ax_w = plots.plot_lq_family(qs)
    assert len(ax_loss.lines) == len(ax_w.lines) == len(qs) + 1
    for line, q_ in zip(ax_loss.lines, qs):
        x, y = line.get_data()
        np.testing.assert_allclose(y, theory.lq_curve(x, q_))
    x, y = ax_w.lines[0].get_data()
    np.testing.assert_allclose(y, 1 / x)  # CCE's weight
    x, y = ax_w.lines[-1].get_data()
    np.testing.assert_allclose(y, 2.0)  # MAE's weight (Eq. 4)
    assert ax_w.get_yscale() == "log"
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert "CCE" in labels[0] and "unhinged" in labels[2] and labels[3] == "MAE (Eq. 4)"
    plt.close("all")


def test_plot_relative_weight_draws_f_to_the_q():
    ax = plots.plot_relative_weight((0.5,))
    x, y = ax.lines[-1].get_data()
    np.testing.assert_allclose(y, np.sqrt(x))
    plt.close("all")


def test_interactive_lq_family_skips_without_ipywidgets(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import now raises ImportError
    assert plots.interactive_lq_family() is None


def test_interactive_lq_family_redraws_for_the_slider_value(monkeypatch):
    calls = []

    def interact(fn, q):
        calls.append(q.value)
        fn(q.value)
        return fn

    fake = types.SimpleNamespace(interact=interact, FloatSlider=lambda **kw: types.SimpleNamespace(**kw))
    monkeypatch.setitem(sys.modules, "ipywidgets", fake)
    monkeypatch.setattr(plt, "show", lambda: None)
    assert plots.interactive_lq_family(0.3) is not None
    assert calls == [0.3]
    ax_loss = plt.gcf().axes[0]
    assert len(ax_loss.lines) == 4  # q = 0, 0.3, 1 and MAE
    plt.close("all")


# ---- experiments ----


def _fake_results():
    import pandas as pd
    runs, hist = [], []
    rid = 0
    for dataset, noise_kind, eta, method, q in [("digits", "none", 0.0, "cce", 0.7), ("digits", "none", 0.0, "mae", 0.7),
                                                ("digits", "uniform", 0.4, "cce", 0.7),
                                                ("digits", "uniform", 0.4, "lq", 0.7)]:
        for seed in range(2):
            runs.append(dict(run_id=f"r{rid}", dataset=dataset, noise=noise_kind, eta=eta, method=method, q=q,
                             seed=seed))
            for e in range(1, 4):
                hist.append(dict(run_id=f"r{rid}", epoch=e, test_acc=0.1 * e + 0.01 * seed, val_loss=1.0 / e,
                                 softmax_clean=0.2 * e, softmax_noisy=0.05 * e))
            rid += 1
    return pd.DataFrame(runs), pd.DataFrame(hist)


def test_plot_fig1_draws_seed_means():
    runs, hist = _fake_results()
    fig = plots.plot_fig1(runs, hist, datasets=("digits",))
    a, c = fig.axes[:2]
    cce = [ln for ln in a.get_lines() if ln.get_label() == "CCE"][0]
    np.testing.assert_allclose(cce.get_ydata(), [100 * (0.1 * e + 0.005) for e in (1, 2, 3)])
    labels = [ln.get_label() for ln in c.get_lines()]
    assert labels == ["CCE, right labels", "CCE, wrong labels", "Lq (q=0.7), right labels", "Lq (q=0.7), wrong labels"]
    np.testing.assert_allclose(c.get_lines()[1].get_ydata(), [0.05, 0.10, 0.15])
    plt.close("all")


def test_plot_fig2_one_line_per_q_and_eta():
    runs, hist = _fake_results()
    fig = plots.plot_fig2(runs, hist, qs=(0.0, 0.7), etas=(0.0, 0.4))
    top_right = fig.axes[1]
    assert [ln.get_label() for ln in top_right.get_lines()] == ["CCE (q=0)", "q=0.7"]
    bottom_left = fig.axes[2]
    np.testing.assert_allclose(bottom_left.get_lines()[0].get_ydata(), [1.0, 0.5, 1 / 3])
    plt.close("all")


# ---- bounds chapter ----


def test_theorem1_A_curves_draw_minus_A_for_each_eta_and_c():
    import pytest
    from gce.book import theory
    qs = np.linspace(0.1, 0.9, 9)
    fig = plots.theorem1_A_curves(cs=(10, 100), etas=(0.2, 0.8), q_grid=qs)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["$c = 10$", "$c = 100$"]
    for ax, c_ in zip(axes, (10, 100)):
        lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == len(qs)]
        assert len(lines) == 2 and ax.get_yscale() == "log"
        for ln, eta_ in zip(lines, (0.2, 0.8)):
            np.testing.assert_allclose(ln.get_ydata(), -theory.theorem1_A(eta_, qs, c_))
    with pytest.raises(ValueError):
        plots.theorem1_A_curves(q_grid=[0.5, 1.0])
    plt.close("all")


def test_theorem1_tightness_worst_case_lies_below_minus_A():
    qs = np.array([0.2, 0.6, 0.95])
    fig = plots.theorem1_tightness(3, etas=(0.4,), n=30, q_grid=qs)
    worst, minus_A = [np.asarray(ln.get_ydata()) for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) == 3]
    assert np.all(worst <= minus_A) and np.all(worst > 0)
    plt.close("all")


# ---- truncated ----


def test_plot_truncated_lq_is_constant_with_zero_derivative_below_k():
    ax_loss, ax_grad = plots.plot_truncated_lq(0.7, ks=(0.3, 0.6))
    assert len(ax_loss.lines) == len(ax_grad.lines) == 3
    for i, k_ in enumerate((0.3, 0.6), start=1):
        x, y = ax_loss.lines[i].get_data()
        np.testing.assert_allclose(y[x <= k_], (1 - k_ ** 0.7) / 0.7)
        np.testing.assert_allclose(y[x > k_], (1 - x[x > k_] ** 0.7) / 0.7)
        x, g = ax_grad.lines[i].get_data()
        assert np.all(g[x <= k_] == 0) and np.all(g[x > k_] > 0)
    plt.close("all")


def test_plot_eq11_region_has_one_panel_per_c_and_the_claimed_ks():
    axes = plots.plot_eq11_region(cs=(2, 10), n=41)
    assert [ax.get_title() for ax in axes] == ["$c = 2$", "$c = 10$"]
    dashed = [ln.get_ydata()[0] for ln in axes[1].lines if ln.get_linestyle() == "--"]
    assert sorted(dashed) == [0.2, 0.3]
    plt.close("all")


def test_plot_eq11_q_max_draws_the_roots_and_skips_k_below_one_over_c():
    from gce.book import theory
    ax = plots.plot_eq11_q_max(ks=(0.3,), cs=[2, 4, 10, 100], mark_q=None)
    x, y = ax.lines[0].get_data()
    assert list(x) == [4, 10, 100]  # c = 2 has k < 1/c
    np.testing.assert_allclose(y, [theory.eq11_q_max(0.3, float(c), n_grid=801) for c in x])
    plt.close("all")


def test_plot_acs_run_draws_each_method_and_the_pruning_epochs():
    curves = {"CCE": [0.5, 0.6, 0.7], "Trunc Lq": [0.5, 0.7, 0.8]}
    ax_acc, ax_kept = plots.plot_acs_run(curves, kept=[1.0, 0.6, 0.55], prune_epochs=[2])
    assert [ln.get_label() for ln in ax_acc.lines[:2]] == ["CCE", "Trunc Lq"]
    assert ax_acc.lines[0].get_color().lower() == plots.PALETTE["CCE"].lower()
    np.testing.assert_allclose(ax_kept.lines[0].get_ydata(), [1.0, 0.6, 0.55])
    assert ax_acc.lines[-1].get_xdata()[0] == 2  # the pruning marker
    plt.close("all")


# ---- cce_vs_mae and dynamics ----


def test_plot_fig1_ab_one_panel_per_dataset_with_threshold_lines():
    runs, hist = _fake_results()
    fig = plots.plot_fig1_ab(runs, hist, datasets=("digits",), thresholds=(0.9,), log_x=True)
    (ax,) = fig.axes
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["CCE"].get_ydata(), [100 * (0.1 * e + 0.005) for e in (1, 2, 3)])
    assert "MAE" in lines and ax.get_xscale() == "log"
    flat = [ln for ln in ax.get_lines() if not ln.get_label() in ("CCE", "MAE")]
    assert len(flat) == 1 and np.allclose(flat[0].get_ydata(), 90)
    custom = {"only lq": ({"method": "lq"}, "k")}
    fig = plots.plot_fig1_ab(runs, hist, datasets=("digits",), curves=custom, titles=["Adam"])
    assert [ln.get_label() for ln in fig.axes[0].get_lines()] == ["only lq"]
    assert fig.axes[0].get_title() == "Adam"
    plt.close("all")


def test_plot_fig1c_skips_clean_runs_and_draws_k():
    runs, hist = _fake_results()
    ax = plots.plot_fig1c(runs, hist, k=0.5)
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels[:4] == ["CCE, right labels", "CCE, wrong labels", "$\\mathcal{L}_q$ (q = 0.7), right labels",
                          "$\\mathcal{L}_q$ (q = 0.7), wrong labels"]
    assert labels[4] == "k = 0.5 (truncation)"
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [0.05, 0.10, 0.15])
    plt.close("all")


def test_plot_peak_drop_one_line_per_eta_in_points():
    import pandas as pd
    table = pd.DataFrame({"eta": [0.2, 0.2, 0.6, 0.6], "q": [0.0, 1.0, 0.0, 1.0], "drop": [0.04, 0.0, 0.2, 0.05],
                          "drop_min": [0.03, 0.0, 0.1, 0.04], "drop_max": [0.05, 0.01, 0.3, 0.06]})
    ax = plots.plot_peak_drop(table, tol=0.01)
    assert [c.get_label() for c in ax.containers] == ["eta = 0.2", "eta = 0.6"]
    np.testing.assert_allclose(ax.containers[1].lines[0].get_ydata(), [20.0, 5.0])
    assert any(np.allclose(ln.get_ydata(), 1.0) for ln in ax.get_lines())
    plt.close("all")


# ---- closed_set ----


def _table_runs():
    import pandas as pd
    rows = []
    for noise_kind, etas in (("uniform", (0.2, 0.4)), ("class_dependent", (0.1,))):
        for eta in etas:
            for method in ("cce", "lq"):
                for seed in range(3):
                    rows.append(dict(run_id=f"{noise_kind}{eta}{method}{seed}", dataset="digits", noise=noise_kind,
                                     eta=eta, method=method, seed=seed, flip_rate_train=eta,
                                     test_acc_best_val=0.9 - eta + 0.01 * seed + (0.05 if method == "lq" else 0)))
    return pd.DataFrame(rows)


def test_plot_accuracy_vs_eta_draws_seed_means_and_the_papers_lines():
    from gce.book import experiments
    runs = _table_runs()
    fig = plots.plot_accuracy_vs_eta(runs, experiments.paper_table1(), methods=("cce", "lq"))
    uni, cd = fig.axes[:2]
    assert [a.get_title() for a in (uni, cd)] == ["uniform noise", "class-dependent noise"]
    solid = [ln for ln in uni.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) == 2]
    np.testing.assert_allclose(solid[0].get_ydata(), [100 * (0.9 - e + 0.01) for e in (0.2, 0.4)])
    np.testing.assert_allclose(solid[1].get_ydata(), [100 * (0.95 - e + 0.01) for e in (0.2, 0.4)])
    dashed = [ln for ln in uni.get_lines() if ln.get_linestyle() == "--"]
    np.testing.assert_allclose(dashed[0].get_ydata(), [86.98, 81.88, 74.14, 53.82])  # the paper's CIFAR-10 CCE
    assert all(ln.get_alpha() < 1 for ln in dashed)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["CCE", "Lq", "ours (mean ± std)", "paper (cifar10)"]
    plt.close("all")


def test_plot_accuracy_curves_draws_methods_and_the_kept_fraction():
    import pandas as pd
    runs = pd.DataFrame([dict(run_id=f"{k}{m}{s}", noise=k, method=m, seed=s, flip_rate_train=0.4)
                         for k in ("open_set", "uniform") for m in ("cce", "trunc_lq") for s in (0, 1)])
    hist = pd.DataFrame([dict(run_id=r, epoch=e, test_acc=0.5 + 0.1 * e, kept=1.0 if e < 2 else 0.45)
                         for r in runs.run_id for e in (1, 2, 3)])
    fig = plots.plot_accuracy_curves(runs, hist)
    a_open, a_uni, a_kept = fig.axes[:3]
    assert [ln.get_label() for ln in a_open.get_lines()] == ["CCE", "Trunc Lq"]
    np.testing.assert_allclose(a_uni.get_lines()[0].get_ydata(), [60, 70, 80])
    kept_lines = [ln for ln in a_kept.get_lines() if len(ln.get_xdata()) == 3]
    np.testing.assert_allclose(kept_lines[0].get_ydata(), [1.0, 0.45, 0.45])
    horizontal = [ln for ln in a_kept.get_lines() if ln.get_label().startswith("right labels")]
    np.testing.assert_allclose(horizontal[0].get_ydata(), [0.6, 0.6])
    plt.close("all")


def test_plot_kept_by_class_bars_are_per_class_means_over_runs():
    import pandas as pd
    s = pd.DataFrame({"run": [0, 0, 0, 1, 1, 1], "noise": "uniform", "label": [0, 0, 1, 0, 1, 1],
                      "clean": [True, True, True, True, True, False], "kept": [1, 0, 1, 1, 0, 1]})
    fig = plots.plot_kept_by_class(s)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [(0.5 + 1.0) / 2, (1.0 + 0.0) / 2])
    wrong = [ln for ln in ax.get_lines() if ln.get_label().startswith("wrong")]
    np.testing.assert_allclose(wrong[0].get_ydata(), [1.0, 1.0])
    plt.close("all")


# ---- legibility: every figure of the book at the rendered column width ----


def _book_figures():
    """One small instance of every figure function, as the chapters call them (their default sizes)."""
    import pandas as pd

    from gce.book import experiments

    runs, hist = _fake_results()
    eta = 0.4
    table = {"uniform (c=10)": noise.uniform(10, eta), "CIFAR-10": noise.class_dependent("cifar10", eta),
             "FASHION-MNIST": noise.class_dependent("fashionmnist", eta),
             "digits": noise.class_dependent("digits", eta), "CIFAR-100": noise.class_dependent("cifar100", eta)}
    names = {"uniform (c=10)": class_names("cifar10"), "CIFAR-10": class_names("cifar10"),
             "FASHION-MNIST": class_names("fashionmnist"), "digits": class_names("digits")}
    peak = pd.DataFrame({"eta": [0.2, 0.2, 0.6, 0.6], "q": [0.0, 1.0, 0.0, 1.0], "drop": [0.04, 0.0, 0.2, 0.05],
                         "drop_min": [0.03, 0.0, 0.1, 0.04], "drop_max": [0.05, 0.01, 0.3, 0.06]})
    curve_runs = pd.DataFrame([dict(run_id=f"{k}{m}{s}", noise=k, method=m, seed=s, flip_rate_train=0.4)
                               for k in ("open_set", "uniform") for m in ("cce", "trunc_lq") for s in (0, 1)])
    curve_hist = pd.DataFrame([dict(run_id=r, epoch=e, test_acc=0.5 + 0.1 * e, kept=1.0 if e < 2 else 0.45)
                               for r in curve_runs.run_id for e in (1, 2, 3)])
    samples = pd.DataFrame({"run": [0, 0, 0, 1, 1, 1] * 2, "noise": ["uniform"] * 6 + ["class_dependent"] * 6,
                            "label": [0, 0, 1, 0, 1, 1] * 2, "clean": [True, True, True, True, True, False] * 2,
                            "kept": [1, 0, 1, 1, 0, 1] * 2})
    images = np.random.default_rng(0).integers(0, 256, size=(30, 1, 8, 8), dtype=np.uint8)

    def fig_of(ax):
        return (ax[0] if isinstance(ax, (list, tuple, np.ndarray)) else ax).figure

    return {
        "transition_heatmap": lambda: fig_of(plots.transition_heatmap(table["CIFAR-10"], names["CIFAR-10"])),
        "transition_heatmap_c100": lambda: fig_of(plots.transition_heatmap(table["CIFAR-100"])),
        "compare_transitions": lambda: plots.compare_transitions(table["digits"], table["digits"], names["digits"]),
        "transition_panels": lambda: plots.transition_panels(table, names),
        "image_grid": lambda: plots.image_grid(images, labels=list(range(30)), ncols=15),
        "plot_lq_family": lambda: fig_of(plots.plot_lq_family()),
        "plot_relative_weight": lambda: fig_of(plots.plot_relative_weight()),
        "plot_fig1": lambda: plots.plot_fig1(runs, hist, datasets=("digits", "digits"), caption="digits, pocket"),
        "plot_fig2": lambda: plots.plot_fig2(runs, hist, qs=(0.0, 0.1, 0.3, 0.5, 0.7, 0.9), etas=(0.2, 0.4, 0.6)),
        "theorem1_A_curves": lambda: plots.theorem1_A_curves(),
        "theorem1_tightness": lambda: plots.theorem1_tightness(n=12, q_grid=np.linspace(0.1, 0.9, 5)),
        "plot_truncated_lq": lambda: fig_of(plots.plot_truncated_lq()),
        "plot_eq11_region": lambda: fig_of(plots.plot_eq11_region(n=41)),
        "plot_eq11_q_max": lambda: fig_of(plots.plot_eq11_q_max(cs=[2, 10, 100])),
        "plot_acs_run": lambda: fig_of(plots.plot_acs_run({"CCE": [0.5, 0.6], "Trunc Lq": [0.5, 0.7]}, [1, 0.8],
                                                          prune_epochs=[1])),
        "plot_fig1_ab": lambda: plots.plot_fig1_ab(runs, hist, datasets=("digits", "digits"), thresholds=(0.9,)),
        "plot_fig1c": lambda: fig_of(plots.plot_fig1c(runs, hist, k=0.5)),
        "plot_peak_drop": lambda: fig_of(plots.plot_peak_drop(peak, tol=0.01)),
        "plot_accuracy_vs_eta": lambda: plots.plot_accuracy_vs_eta(_table_runs(), experiments.paper_table1(),
                                                                   caption="digits, pocket scale, 3 seeds"),
        "plot_accuracy_curves": lambda: plots.plot_accuracy_curves(curve_runs, curve_hist, caption="pocket"),
        "plot_kept_by_class": lambda: plots.plot_kept_by_class(samples, caption="pocket"),
        "plot_verdicts": lambda: plots.plot_verdicts(_verdict_table(), caption="pocket"),
        "plot_memorisation_onset": lambda: plots.plot_memorisation_onset(*_onset_results(),
                                                                        caption="pocket, 2 seeds"),
        "plot_schedule_sensitivity": lambda: plots.plot_schedule_sensitivity(*_sensitivity_tables(),
                                                                            caption="digits, pocket, 5 seeds"),
        "plot_transition_grid": lambda: plots.plot_transition_grid(
            {"uniform": noise.uniform(10, eta), "CIFAR-10": table["CIFAR-10"]}, class_names("cifar10")),
        "plot_class_noise_rates": lambda: plots.plot_class_noise_rates(
            {"uniform": np.full(10, eta), "flips": 1 - np.diag(table["CIFAR-10"].numpy())}, class_names("cifar10")),
        "plot_superclass_confusions": lambda: plots.plot_superclass_confusions(
            table["CIFAR-100"], np.arange(100) // 5),
        "plot_class_examples": lambda: plots.plot_class_examples(
            np.random.default_rng(0).integers(0, 256, (40, 3, 32, 32), dtype=np.uint8), np.arange(40) % 10,
            class_names("cifar10")),
        "plot_dictionary": lambda: plots.plot_dictionary(np.random.default_rng(0).normal(size=(400, 108)), 6),
    }


def _verdict_table():
    """A small claims table in :func:`gce.book.claims.evaluate`'s shape: three claims at two scales."""
    import pandas as pd

    from gce.book import claims

    statuses = (claims.HOLDS, claims.CONTRADICTED, claims.NOT_TESTABLE)
    return pd.DataFrame([dict(id=f"claim_{i}", section="4.1", scale=sc, status=st)
                         for i, st in enumerate(statuses) for sc in ("pocket", "lite")])


def _sensitivity_tables():
    """Tables shaped like gce.book.claims.schedule_sensitivity's: four first drops, three comparisons each."""
    import pandas as pd

    drops = [13, 27, 40, 60]
    verdicts = pd.DataFrame({"first_drop": drops, "factor": [d / 40 for d in drops],
                             "status": ["not testable", "inconclusive", "holds", "holds"], "reason": "r"})
    comps = pd.DataFrame([{"comparison": f"digits: Lq - {b} (2 rates)", "effect": e + d / 40, "se": 0.3,
                           "first_drop": d} for d in drops[1:] for b, e in (("CCE", 2.0), ("MAE", 4.0),
                                                                              ("Forward T", 0.5))])
    return verdicts, comps


def _onset_results():
    """Stored-results-shaped probe runs of three tasks (``rule`` rows) with curves that rise after epoch 3."""
    import pandas as pd

    runs, hist, onsets = [], [], []
    for d in ("digits", "digit_pairs", "digits_0to4"):
        for s in (0, 1):
            rid = f"{d}{s}"
            runs.append(dict(run_id=rid, dataset=d, noise="uniform", eta=0.4, seed=s))
            hist += [dict(run_id=rid, epoch=e, softmax_clean=0.2 + 0.1 * e, softmax_noisy=0.1 + 0.02 * max(0, e - 3))
                     for e in range(1, 8)]
        onsets.append(dict(dataset=d, noise="uniform", eta=0.4, seeds=2, onset=3, rule=True))
    return pd.DataFrame(runs), pd.DataFrame(hist), pd.DataFrame(onsets)


#: public functions of gce.book.plots that draw no book figure of their own
_NOT_FIGURES = {"q_styles", "smallest_text_px", "use_book_style", "interactive_lq_family"}


def test_every_figure_function_is_in_the_legibility_check():
    import inspect

    drawn = {n for n, f in inspect.getmembers(plots, inspect.isfunction)
             if f.__module__ == "gce.book.plots" and not n.startswith("_")} - _NOT_FIGURES
    missing = drawn - {name.split("_c100")[0] for name in _book_figures()}
    assert not missing, f"figure functions without a legibility check: {sorted(missing)}"


_FIGURES = list(_book_figures())


@pytest.mark.parametrize("name", _FIGURES)
def test_figure_text_is_legible_at_the_column_width(name):
    plots.use_book_style()
    try:
        fig = _book_figures()[name]()
        px, text = plots.smallest_text_px(fig)
        assert px >= plots.MIN_TEXT_PX, f"{name}: {text!r} renders at {px:.1f} px < {plots.MIN_TEXT_PX} px"
        assert fig.get_size_inches()[0] <= plots.FIG_WIDTH + 1e-9, f"{name} is wider than the column figure"
    finally:
        plt.close("all")


def test_smallest_text_px_scales_a_wide_figure_down_to_the_column():
    fig, ax = plt.subplots(figsize=(14, 3), dpi=110, layout=None)
    ax.set_axis_off()
    fig.text(0.0, 0.0, "small", fontsize=10)
    fig.text(0.9, 0.9, "large", fontsize=20)
    px, text = plots.smallest_text_px(fig, column_px=700)
    width_in = fig.get_tightbbox(fig.canvas.get_renderer()).width
    assert text == "small"
    assert px == pytest.approx(10 * 700 / (width_in * 72))
    assert px < 9  # a 14-inch figure with 10 pt text is not legible in a 700 px column
    plt.close("all")


def test_q_styles_differ_in_dash_and_marker_between_neighbours():
    styles = plots.q_styles([0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
    for a, b in zip(styles, styles[1:]):
        assert a["ls"] != b["ls"] and a["marker"] != b["marker"]
    assert len({st["marker"] for st in styles}) == 6


# ---- noise: the cpu scale's images and features ----


def test_plot_class_examples_puts_each_class_in_its_column():
    import torch

    labels = torch.tensor([2, 0, 1, 0, 2, 1, 1])
    images = torch.arange(7, dtype=torch.uint8).view(7, 1, 1, 1).expand(7, 3, 4, 4).contiguous()
    fig = plots.plot_class_examples(images, labels, ("a", "b", "c"), per_class=2)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["a", "b", "c", "", "", ""]
    shown = [int(ax.images[0].get_array()[0, 0, 0]) for ax in axes]
    assert shown == [1, 2, 0, 3, 5, 4]  # row r: the r-th image of classes a, b, c
    with pytest.raises(ValueError, match="class 0 .a. has 2 images"):
        plots.plot_class_examples(images, labels, ("a", "b", "c"), per_class=3)
    plt.close("all")


def test_plot_dictionary_stretches_each_patch_and_checks_its_shape():
    import torch

    patches = torch.zeros(3, 3, 2, 2)
    patches[0, 0] = torch.tensor([[0.0, 1.0], [2.0, 3.0]])  # red rises; green and blue stay 0
    patches[1] = 5.0  # a flat patch draws without dividing by zero
    patches[2, 2] = -1.0
    fig = plots.plot_dictionary(patches.flatten(1), 2, n=2, ncols=2)
    mosaic = fig.axes[0].images[0].get_array()
    assert mosaic.shape == (4, 7, 3)  # 1 row, 2 patches of 2 with a 1-pixel border
    np.testing.assert_allclose(mosaic[1:3, 1:3, 0], [[0, 1 / 3], [2 / 3, 1]])
    np.testing.assert_allclose(mosaic[1:3, 4:6], 0.0)
    with pytest.raises(ValueError, match=r"\(K, 12\)"):
        plots.plot_dictionary(patches.flatten(1)[:, :10], 2)
    plt.close("all")
