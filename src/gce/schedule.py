"""Pocket training schedules derived from where the network starts to memorise the noise (Sec. 3.2, 4.2).

The paper drops the learning rate first, and starts Algorithm 1's pruning, at
epoch 40 of 120 for CIFAR-10 (80 of 150 for CIFAR-100): while the network is
still fitting the clean signal, before it memorises the wrong labels (Fig. 1(c)
shows that memorisation as the softmax on the *wrong* noisy labels rising).
The pocket scale mirrors that protocol by a stated rule instead of copying the
epoch numbers, which mean nothing for an MLP on 8x8 digits:

1. :func:`memorisation_onset` reads the point where memorisation starts from
   a run's history: the number of epochs completed before the mean softmax on
   the noisy (wrong) training labels, ``softmax_noisy``, first rises by
   ``rise`` above its running minimum.
2. :func:`schedule_from_onset` puts the paper's first learning-rate drop and
   pruning start at that epoch and scales the rest of the paper's schedule
   (the second drop, the length, the 10-epoch pruning interval) by the same
   factor.

The runs that measure the onset are the ``"schedule"`` experiment of
:mod:`gce.experiments` (CCE, the Table 1 or Table 2 optimiser without any
learning-rate drop, softmax tracked).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["PAPER_SCHEDULES", "memorisation_onset", "schedule_from_onset"]

#: The paper's SGD schedules (Sec. 4.2; Table 2 after Wang et al. and Sec. 4.3), each with its epochs,
#: learning-rate drops, first pruning epoch and pruning interval of truncated L_q.
PAPER_SCHEDULES: dict[str, dict] = {
    "cifar10": dict(epochs=120, milestones=(40, 80), prune_start=40, prune_every=10),
    "fashionmnist": dict(epochs=120, milestones=(40, 80), prune_start=40, prune_every=10),
    "cifar100": dict(epochs=150, milestones=(80, 120), prune_start=80, prune_every=10),
    "table2": dict(epochs=100, milestones=(), prune_start=10, prune_every=10),
}


def memorisation_onset(softmax_noisy: Sequence[float], rise: float = 0.02) -> int:
    """The number of epochs after which the network starts to memorise the noisy labels (Fig. 1(c), Sec. 3.2).

    ``softmax_noisy[e]`` is the mean softmax ``f_{y~}(x)`` on the training
    samples whose noisy label is wrong, after epoch ``e + 1`` (the history
    column of :func:`gce.train.train` with ``track_train_softmax=True``; average
    it over seeds first).  While the network fits the clean signal this value
    falls or stays flat (it predicts the true class, not the wrong label); once
    it memorises the wrong labels it rises.  The onset is the number of epochs
    completed before the first epoch whose value exceeds the lowest value seen
    so far by ``rise`` (a probability: 0.02 is two points of softmax mass on the
    wrong labels, above the epoch-to-epoch wiggle of a seed-averaged curve).
    The rise is measured from the running minimum, not from the value at
    initialisation, and is an absolute amount, so it works for 10 classes
    (where the curve first falls below ``1/c``) and for 100 (where it starts
    near ``1/c = 0.01`` and climbs from there).  A curve that never rises that
    much gives its full length: no memorisation was seen.
    """
    values = [float(v) for v in softmax_noisy]
    if not values:
        raise ValueError("softmax_noisy is empty: need one value per epoch")
    if any(math.isnan(v) for v in values):
        raise ValueError("softmax_noisy contains NaN: train with track_train_softmax=True")
    if not rise > 0:
        raise ValueError(f"rise must be positive, got rise={rise!r}")
    low = values[0]
    for e, v in enumerate(values):
        if v >= low + rise:
            return e
        low = min(low, v)
    return len(values)


def schedule_from_onset(onset: int, paper: str) -> dict:
    """The paper's ``paper`` schedule (:data:`PAPER_SCHEDULES`) with its first drop and pruning start at ``onset``.

    Scale factor ``s = onset / prune_start``: the first learning-rate drop and
    the first pruning step come after ``onset`` epochs (Sec. 4.2 drops the rate
    and starts pruning at the same epoch), the later drops after
    ``round(s * m)`` epochs, training lasts ``round(s * epochs)`` epochs and
    pruning repeats every ``max(1, round(s * prune_every))`` epochs.  For
    ``"table2"`` (no drops; 100 epochs, the last-epoch accuracy of Wang et al.'s
    protocol) only pruning starts at ``onset`` and repeats every ``onset``
    epochs, as Sec. 4.3's starts at 10 and repeats every 10; the length stays 100.
    """
    if paper not in PAPER_SCHEDULES:
        raise ValueError(f"unknown paper schedule {paper!r}; known: {', '.join(PAPER_SCHEDULES)}")
    if isinstance(onset, bool) or not isinstance(onset, int) or onset < 1:
        raise ValueError(f"onset must be a positive number of epochs, got onset={onset!r}")
    p = PAPER_SCHEDULES[paper]
    if paper == "table2":
        return dict(epochs=p["epochs"], milestones=(), prune_start=onset, prune_every=onset)
    s = onset / p["prune_start"]
    milestones = (onset, *(max(onset + 1, round(s * m)) for m in p["milestones"][1:]))
    return dict(epochs=max(milestones[-1] + 1, round(s * p["epochs"])), milestones=milestones,
                prune_start=onset, prune_every=max(1, round(s * p["prune_every"])))
