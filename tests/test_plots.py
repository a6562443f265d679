"""The figure helpers draw what they are given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gce import noise, plots  # noqa: E402
from gce.classes import class_names  # noqa: E402


def test_transition_heatmap_shows_the_matrix_entries():
    T = noise.class_dependent("cifar10", 0.4)
    ax = plots.transition_heatmap(T, class_names("cifar10"), title="CIFAR-10")
    mesh = ax.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(10, 10), T.numpy())
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 100 and texts.count("0.40") == 5 and texts.count("0.60") == 5
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

from gce import theory  # noqa: E402


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
    from gce import theory
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
    from gce import theory
    ax = plots.plot_eq11_q_max(ks=(0.3,), cs=[2, 4, 10, 100], mark_q=None)
    x, y = ax.lines[0].get_data()
    assert list(x) == [4, 10, 100]  # c = 2 has k < 1/c
    np.testing.assert_allclose(y, [theory.eq11_q_max(0.3, float(c), n_grid=801) for c in x])
    plt.close("all")


def test_plot_acs_run_draws_each_method_and_the_pruning_epochs():
    curves = {"CCE": [0.5, 0.6, 0.7], "Trunc Lq": [0.5, 0.7, 0.8]}
    ax_acc, ax_obj = plots.plot_acs_run(curves, objective=[0.0, -0.1, -0.2], prune_epochs=[2])
    assert [ln.get_label() for ln in ax_acc.lines[:2]] == ["CCE", "Trunc Lq"]
    assert ax_acc.lines[0].get_color().lower() == plots.PALETTE["CCE"].lower()
    np.testing.assert_allclose(ax_obj.lines[0].get_ydata(), [0.0, -0.1, -0.2])
    assert ax_acc.lines[-1].get_xdata()[0] == 2  # the pruning marker
    plt.close("all")
