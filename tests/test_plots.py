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
