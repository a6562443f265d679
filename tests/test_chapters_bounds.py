"""gce.book.chapters.bounds and gce.book.theory.theorem1_worst_gap: how close any problem comes to Theorem 1's A (Eq. 8)."""

import numpy as np
import pytest

from gce.book import theory as th
from gce.book.chapters import bounds as chapter


def test_worst_gap_is_the_minimum_over_the_rows():
    grid = th.simplex_grid(3, 10)
    qs = [0.3, 0.7]
    worst = th.theorem1_worst_gap(grid, 0.4, qs)
    assert worst.shape == (2,)
    for w, q_ in zip(worst, qs):
        assert w == th.theorem1_pointwise_gap(grid, 0.4, q_).min()
    # no single input has a positive gap (f* minimises the clean risk), and some noise costs something
    assert np.all(worst < 0)


def test_gap_over_A_lies_between_0_and_1():
    grid = th.simplex_grid(3, 30)
    qs = np.linspace(0.1, 0.9, 5)
    ratios = chapter.gap_over_A(grid, 0.4, qs)
    assert ratios.shape == (5,)
    assert np.all(ratios > 0) and np.all(ratios <= 1)   # Theorem 1: A <= gap <= 0
    np.testing.assert_allclose(ratios, th.theorem1_worst_gap(grid, 0.4, qs) / th.theorem1_A(0.4, qs, 3))


def test_gap_over_A_refuses_q_one():
    with pytest.raises(ValueError, match="below 1"):
        chapter.gap_over_A(th.simplex_grid(3, 5), 0.4, [0.5, 1.0])


def test_closest_to_bound_takes_the_largest_ratio_per_eta():
    grid, qs, etas = th.simplex_grid(3, 20), np.linspace(0.1, 0.9, 5), [0.2, 0.5, 0.6]
    closest = chapter.closest_to_bound(grid, etas, qs)
    assert closest.shape == (3,)
    for value, eta_ in zip(closest, etas):
        assert value == chapter.gap_over_A(grid, eta_, qs).max()
    # nearer the edge (c - 1)/c the worst problem comes closer to the bound (the chapter's finding)
    assert closest[2] > closest[0]
