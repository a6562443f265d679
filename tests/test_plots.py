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
