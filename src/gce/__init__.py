"""gce: generalized cross entropy for learning with noisy labels.

The library behind the executable book on Zhang & Sabuncu, *Generalized Cross
Entropy Loss for Training Deep Neural Networks with Noisy Labels* (NeurIPS
2018).  Modules, one job each:

- :mod:`gce.losses` -- CCE, MAE, L_q, truncated L_q, ACS pruning, forward
  correction (Eq. 1, 2, 4, 6, 9, 12-13); the losses that followed: SCE, the
  active-passive losses NCE+RCE and NCE+MAE, Taylor cross entropy.
- :mod:`gce.noise` -- uniform, class-dependent and open-set label noise
  (Sec. 3.1, 4.2).
- :mod:`gce.human_noise` -- real human label noise (CIFAR-10N/100N) measured
  with the paper's notions (Sec. 3.1, 4.2).
- :mod:`gce.data` -- the datasets as ``uint8`` tensors (and the pocket tasks
  built from the digits: ``digit_pairs``, ``digits_0to4``, ``digits_5to9``),
  the noisy splits of Sec. 4 (validation held out, train/validation noisy,
  test clean).
- :mod:`gce.models` -- the networks of Sec. 4 (CIFAR ResNet-34/18, the shallow
  CNN of Table 2) and BatchNorm-free small models for CPU runs.
- :mod:`gce.train` -- one training run as a dataclass config; many runs
  trained together (vmap), Algorithm 1's pruning, Patrini's T-hat.
- :mod:`gce.experiments` -- the paper's figures and tables as grids of runs
  at four scales; ``run``; the paper's numbers.
- :mod:`gce.schedule` -- the pocket schedules, derived from where CCE starts
  to memorise the noise (Fig. 1(c), Sec. 4.2).
- :mod:`gce.store` -- the result store: one SQLite file per scale, the single
  source of truth; run ids, provenance, CSV export and import.
- :mod:`gce.runners` -- where a grid runs: in process, or on Ray.
- :mod:`gce.analysis` -- the summaries the experiment chapters print.
- :mod:`gce.later` -- after the paper: published numbers of later work for
  GCE (CIFAR-N), each with its source and protocol; the later losses side by
  side.
- :mod:`gce.claims` -- the paper's experimental claims (Sec. 3.2, 4.1, 4.3),
  with verdicts computed from stored results.
- :mod:`gce.theory` -- the mathematics of Sec. 3 in sympy, with numeric twins.
- :mod:`gce.classes` -- class names of the datasets.
- :mod:`gce.plots` -- the book's figures.
- :mod:`gce.teaching` -- the course kit: student copies without solutions,
  checked exercises.
- :mod:`gce.colab` -- the Colab install cell, stamped into every chapter.
- :mod:`gce.notebooks` -- reading and writing the book's notebooks as JSON.
"""

from importlib.metadata import PackageNotFoundError, version

from . import (analysis, claims, classes, data, experiments, human_noise, later, losses, models, noise, runners,
               schedule, theory, train)
from .losses import (
    CCELoss,
    ForwardCorrectedLoss,
    LqLoss,
    MAELoss,
    NCEMAELoss,
    NCERCELoss,
    SCELoss,
    TaylorCELoss,
    TruncatedLqLoss,
    acs_lq,
    cce,
    forward_corrected,
    lq,
    mae,
    nce,
    nce_mae,
    nce_rce,
    prune_weights,
    rce,
    sce,
    taylor_ce,
    truncated_lq,
)

try:
    __version__ = version("gce")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "analysis", "claims", "classes", "data", "experiments", "human_noise", "later",
    "losses", "models", "noise", "runners", "schedule", "theory", "train",
    "cce", "mae", "lq", "truncated_lq", "acs_lq", "prune_weights", "forward_corrected",
    "CCELoss", "MAELoss", "LqLoss", "TruncatedLqLoss", "ForwardCorrectedLoss",
    "rce", "sce", "nce", "nce_rce", "nce_mae", "taylor_ce",
    "SCELoss", "NCERCELoss", "NCEMAELoss", "TaylorCELoss",
]
