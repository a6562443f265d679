"""The declared training schedules, and the rules read off a run's curves (Sec. 4.2, 4.3).

Every method of an experiment gets the same schedule; no schedule depends on
how any loss behaves.  At the pocket scale the schedule is the paper's own
epoch counts (:data:`PAPER_SCHEDULES`), copied literally, not re-derived:

- the 10-class blocks of Table 1 train 120 epochs, divide the learning rate by
  10 after epochs 40 and 80, and prune (truncated ``L_q``, Algorithm 1) every
  10 epochs from epoch 40;
- the 100-class block trains 150 epochs, drops after 80 and 120, prunes from 80;
- Table 2 trains 100 epochs with no drop.  Its pruning starts where the
  truncated run's *own* validation loss has plateaued (Sec. 4.3: "validation
  loss plateaued after about 10 epochs"), by the rule of
  :func:`plateau_epoch`, and repeats every 10 epochs.

Three rules read a run's per-epoch history:

- :func:`plateau_epoch`: when a validation-loss curve has stopped improving
  (Table 2's pruning start; the training engine applies it online);
- :func:`has_fitted`: whether a noisy-validation accuracy curve had levelled
  off before the first learning-rate drop (the fit gate of :mod:`gce.book.claims`:
  a comparison counts only where every method in it has fitted);
- :func:`memorisation_onset`: the epoch after which the softmax on the wrong
  labels starts to rise (Fig. 1(c)).  It is a diagnostic the book plots; it
  sets no schedule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["PAPER_SCHEDULES", "PLATEAU_PATIENCE", "PLATEAU_MIN_DELTA", "FIT_WINDOW", "FIT_TOLERANCE", "FIT_RELATIVE",
           "memorisation_onset", "plateau_epoch", "has_fitted"]

#: The paper's SGD schedules (Sec. 4.2; Table 2 after Wang et al. and Sec. 4.3), each with its epochs,
#: learning-rate drops, first pruning epoch and pruning interval of truncated L_q.  Table 2's ``prune_start`` is
#: the paper's observed plateau (epoch 10); the declared schedules replace it by :func:`plateau_epoch`.
PAPER_SCHEDULES: dict[str, dict] = {
    "cifar10": dict(epochs=120, milestones=(40, 80), prune_start=40, prune_every=10),
    "fashionmnist": dict(epochs=120, milestones=(40, 80), prune_start=40, prune_every=10),
    "cifar100": dict(epochs=150, milestones=(80, 120), prune_start=80, prune_every=10),
    "table2": dict(epochs=100, milestones=(), prune_start=10, prune_every=10),
}

#: The patience of :func:`plateau_epoch`, in epochs without a relative improvement of the validation loss of
#: at least :data:`PLATEAU_MIN_DELTA` (1 %), before the curve counts as plateaued.
PLATEAU_PATIENCE = 5
PLATEAU_MIN_DELTA = 0.01
#: The window of :func:`has_fitted`.  A noisy-validation accuracy curve has levelled off when the mean of its last
#: :data:`FIT_WINDOW` epochs before the drop exceeds the mean of the window before by less than
#: :data:`FIT_TOLERANCE` (1 point of accuracy) and by less than :data:`FIT_RELATIVE` (a tenth) of what the
#: curve has gained over chance.
FIT_WINDOW = 5
FIT_TOLERANCE = 0.01
FIT_RELATIVE = 0.1


def _values(curve: Sequence[float], what: str) -> list[float]:
    values = [float(v) for v in curve]
    if not values:
        raise ValueError(f"{what} is empty: need one value per epoch")
    if any(math.isnan(v) for v in values):
        raise ValueError(f"{what} contains NaN")
    return values


def memorisation_onset(softmax_noisy: Sequence[float], rise: float = 0.02) -> int:
    """The number of epochs after which the network starts to memorise the noisy labels (Fig. 1(c), Sec. 3.2).

    ``softmax_noisy[e]`` is the mean softmax ``f_{y~}(x)`` on the training
    samples whose noisy label is wrong, after epoch ``e + 1`` (the history
    column of :func:`gce.train.train` with ``track_train_softmax=True``; average
    it over seeds first).  While the network fits the clean signal this value
    falls or stays flat; once it memorises the wrong labels it rises.  The
    onset is the number of epochs completed before the first epoch whose value
    exceeds the lowest value seen so far by ``rise`` (an absolute amount of
    softmax mass).  A curve that never rises that much gives its full length.
    A diagnostic: the book plots it, no schedule is derived from it.
    """
    values = _values(softmax_noisy, "softmax_noisy")
    if not rise > 0:
        raise ValueError(f"rise must be positive, got rise={rise!r}")
    low = values[0]
    for e, v in enumerate(values):
        if v >= low + rise:
            return e
        low = min(low, v)
    return len(values)


def plateau_epoch(val_loss: Sequence[float], patience: int = PLATEAU_PATIENCE,
                  min_delta: float = PLATEAU_MIN_DELTA) -> int | None:
    """The number of epochs after which a validation-loss curve has plateaued, or None if it has not yet.

    ``val_loss[e]`` is the loss after epoch ``e + 1``.  The curve has
    plateaued after ``e`` epochs (``e > patience``) when none of its last
    ``patience`` values lies below ``(1 - min_delta)`` times the lowest value
    before them: for ``patience`` epochs the loss has not improved by a
    ``min_delta`` fraction.  The first such ``e`` is returned.  The rule names
    no loss: it reads the run's own curve, whatever its loss (Table 2 prunes
    from this epoch on, Sec. 4.3).
    """
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ValueError(f"patience must be a positive number of epochs, got patience={patience!r}")
    if not 0 <= min_delta < 1:
        raise ValueError(f"min_delta must be in [0, 1), got min_delta={min_delta!r}")
    values = _values(val_loss, "val_loss")
    for e in range(patience + 1, len(values) + 1):
        before = min(values[:e - patience])
        if min(values[e - patience:e]) > before - min_delta * abs(before):
            return e
    return None


def has_fitted(val_acc: Sequence[float], drop: int, window: int = FIT_WINDOW, tolerance: float = FIT_TOLERANCE,
               chance: float = 0.0, relative: float = FIT_RELATIVE) -> bool:
    """Whether a noisy-validation accuracy curve had levelled off before the first learning-rate drop.

    ``val_acc[e]`` is the accuracy after epoch ``e + 1`` (average it over
    seeds first); ``drop`` is the number of epochs before the first drop.  The
    curve has fitted when the mean of its last ``window`` values before the
    drop exceeds the mean of the ``window`` values before those by less than
    ``tolerance`` and by less than ``relative`` times the last mean's gain
    over chance (it is no longer climbing, at any height: a curve crawling
    up by 0.7 points in five epochs at 4 % accuracy on 100 classes is still
    learning), and that last mean lies above twice the accuracy of chance,
    ``chance`` (a curve flat at chance has not fitted anything).  A curve
    falling before the drop (memorisation) has fitted.  The rule is the same
    for every loss.
    """
    values = _values(val_acc, "val_acc")
    if isinstance(drop, bool) or not isinstance(drop, int) or not 2 * window <= drop <= len(values):
        raise ValueError(f"drop must be an epoch count between {2 * window} and {len(values)}, got drop={drop!r}")
    last = sum(values[drop - window:drop]) / window
    before = sum(values[drop - 2 * window:drop - window]) / window
    return last - before < min(tolerance, relative * (last - chance)) and last > 2 * chance
