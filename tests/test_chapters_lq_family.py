"""gce.book.chapters.lq_family: the SGD step of Eq. 5 in sympy and the distance between two optimiser paths."""

import sympy as sp

from gce.book import theory as th
from gce.book.chapters import lq_family as chapter


def test_sgd_step_moves_against_the_gradient_weight():
    theta, lr, g = chapter.THETA, sp.Symbol("lr"), chapter.GRAD_F
    # CCE's weight is 1/f: the step is theta + lr * g / f
    assert sp.simplify(chapter.sgd_step(th.cce_expr(), lr) - (theta + lr * g / th.f)) == 0
    mae, unhinged = chapter.sgd_step(th.mae_expr(), lr), chapter.sgd_step(th.unhinged_expr(), lr)
    assert sp.simplify(mae - unhinged) != 0                       # the factor 2 of Eq. 4
    assert sp.simplify(mae - chapter.sgd_step(th.unhinged_expr(), 2 * lr)) == 0


def test_trajectory_gap_is_zero_only_for_the_same_path():
    assert chapter.trajectory_gap("sgd", ("mae", 0.01, 0.0), ("mae", 0.01, 0.0)) == 0.0
    assert chapter.trajectory_gap("sgd", ("mae", 0.01, 1e-4), ("unhinged", 0.02, 5e-5)) < 1e-12
    assert chapter.trajectory_gap("sgd", ("mae", 0.01, 1e-4), ("unhinged", 0.01, 1e-4)) > 1e-3
    assert chapter.trajectory_gap("sgd", ("cce", 0.01, 0.0), ("unhinged", 0.01, 0.0)) > 1e-3
