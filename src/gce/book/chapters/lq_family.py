"""Helpers of the chapter "CCE, MAE and the Lq family" (book/lq_family.ipynb): MAE against the unhinged loss.

Eq. 4's MAE is twice the unhinged loss ``1 - f_y``, which is ``L_q`` at ``q = 1``
(Eq. 6).  :func:`sgd_step` shows in sympy what one SGD step does with that factor
of 2 (through the gradient weight of Eq. 5); :func:`trajectory_gap` compares two
real optimiser runs along their whole path (:func:`gce.book.analysis.short_trajectory`).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .. import analysis
from .. import theory as th

__all__ = ["THETA", "ALPHA", "GRAD_F", "sgd_step", "TRAJECTORY", "trajectory_gap"]

#: A parameter, the learning rate and the gradient of f_y in theta, as sympy symbols (for :func:`sgd_step`).
THETA, ALPHA, GRAD_F = sp.symbols("theta alpha g")


def sgd_step(loss: sp.Expr, lr, theta=THETA, grad_f=GRAD_F) -> sp.Expr:
    """One plain SGD step on ``theta`` for a loss of ``f_y``: ``theta - lr * dL/dtheta``.

    By Eq. 5, ``dL/dtheta = -w(f) * grad_f`` with ``w`` the gradient weight of
    ``loss`` (:func:`gce.book.theory.gradient_weight`).  Returns the updated
    parameter as a sympy expression; the chapter compares MAE's step at ``lr``
    with the unhinged loss's step at ``2 lr``.
    """
    return theta - lr * (-th.gradient_weight(loss) * grad_f)


#: Settings of the chapter's optimiser runs (:func:`gce.book.analysis.short_trajectory`), a linear softmax classifier
#: on random data (5 features, 3 classes, 64 samples), 50 full-batch steps, momentum 0.9 for SGD, seed 0.
TRAJECTORY = {"steps": 50, "seed": 0, "n": 64, "dim": 5, "num_classes": 3, "momentum": 0.9}


def trajectory_gap(optimizer: str, run_a: tuple[str, float, float], run_b: tuple[str, float, float]) -> float:
    """The largest parameter difference between two optimiser runs over all their steps.

    ``run_a`` and ``run_b`` are ``(loss, lr, weight_decay)``; both runs use
    ``optimizer`` (``"sgd"`` or ``"adam"``) and the settings of
    :data:`TRAJECTORY` (:func:`gce.book.analysis.short_trajectory`), so they start
    from the same parameters on the same data.  Returns ``max |theta_a - theta_b|``
    over every parameter and step: 0 up to rounding when the two runs follow
    the same path.  The chapter shows that MAE at ``(lr, wd)`` with SGD follows
    the unhinged loss at ``(2 lr, wd / 2)``, and that Adam ignores the factor 2.
    """
    paths = [analysis.short_trajectory(loss, optimizer, lr, weight_decay=wd, **TRAJECTORY)
             for loss, lr, wd in (run_a, run_b)]
    return float(np.abs(paths[0] - paths[1]).max())
