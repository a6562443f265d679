"""gce: generalized cross entropy for learning with noisy labels.

The library of the executable book on Zhang & Sabuncu, *Generalized Cross
Entropy Loss for Training Deep Neural Networks with Noisy Labels* (NeurIPS
2018).  What a practitioner imports, one job per module:

- :mod:`gce.losses` -- CCE, MAE, L_q, truncated L_q, ACS pruning, forward
  correction (Eq. 1, 2, 4, 6, 9, 12-13); the losses that followed: SCE, the
  active-passive losses NCE+RCE and NCE+MAE, Taylor cross entropy.
- :mod:`gce.noise` -- uniform, class-dependent and open-set label noise
  (Sec. 3.1, 4.2).
- :mod:`gce.data` -- the datasets as ``uint8`` tensors (and the pocket tasks
  built from the digits: ``digit_pairs``, ``digits_0to4``, ``digits_5to9``),
  the noisy splits of Sec. 4 (validation held out, train/validation noisy,
  test clean).
- :mod:`gce.human_noise` -- real human label noise (CIFAR-10N/100N) measured
  with the paper's notions (Sec. 3.1, 4.2).
- :mod:`gce.features` -- CIFAR-10 as frozen unsupervised features (the cpu
  scale's datasets).
- :mod:`gce.models` -- the networks of Sec. 4 (CIFAR ResNet-34/18, the shallow
  CNN of Table 2) and BatchNorm-free small models for CPU runs.
- :mod:`gce.train` -- one training run as a dataclass config; many runs
  trained together (vmap), Algorithm 1's pruning, Patrini's T-hat.
- :mod:`gce.schedule` -- the paper's training schedules and the rules read off
  a run's curves (the plateau that starts Table 2's pruning).
- :mod:`gce.classes` -- class names of the datasets; :mod:`gce.threads` --
  torch threads for training.

The book's machinery -- experiments, the result store and its reader, claims,
summaries and figures of the chapters, the command line -- is
:mod:`gce.book`.  It imports this library; the library never imports it, and
``import gce`` loads neither pandas, sympy nor matplotlib.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version

from . import classes, data, features, human_noise, losses, models, noise, schedule, threads, train
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
    "classes", "data", "features", "human_noise", "losses", "models", "noise", "schedule", "threads", "train",
    "cce", "mae", "lq", "truncated_lq", "acs_lq", "prune_weights", "forward_corrected",
    "CCELoss", "MAELoss", "LqLoss", "TruncatedLqLoss", "ForwardCorrectedLoss",
    "rce", "sce", "nce", "nce_rce", "nce_mae", "taylor_ce",
    "SCELoss", "NCERCELoss", "NCEMAELoss", "TaylorCELoss",
]

#: The modules that moved to the book layer (gce.book), each still importable under its old name for one release.
MOVED = ("analysis", "budget", "chapters", "claims", "colab", "cpu_scale", "experiments", "later", "notebooks",
         "parallel", "paths", "plots", "runners", "stats", "store", "teaching", "theory")


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The old import paths ``gce.<name>`` of the modules that moved (:data:`MOVED`), for one release.

    ``import gce.experiments``, ``from gce.experiments import run`` and ``from gce import experiments`` give the
    module :mod:`gce.book.experiments` itself (the same object, so a change to it is seen under both names) and
    emit one ``DeprecationWarning`` naming the new path; ``python -m gce.colab`` runs ``gce.book.colab``.  No
    module of the library imports an old path.
    """

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if len(parts) >= 2 and parts[0] == __name__ and parts[1] in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    @staticmethod
    def _new_name(fullname: str) -> str:
        name = f"{__name__}.book.{fullname.split('.', 1)[1]}"
        warnings.warn(f"{fullname} moved to {name}; import it from there (the old name goes in the next release)",
                      DeprecationWarning, stacklevel=3)
        return name

    def create_module(self, spec):
        module = importlib.import_module(self._new_name(spec.name))
        self._specs = getattr(self, "_specs", {})
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self._specs.pop(module.__spec__.name, module.__spec__)  # keep the module's own spec

    def get_code(self, fullname):
        """The code of the new module, for ``python -m gce.<old name>``."""
        new = self._new_name(fullname)
        return importlib.util.find_spec(new).loader.get_code(new)


sys.meta_path.insert(0, _MovedModules())  # first: no other finder may serve an old path


def __getattr__(name: str):
    """``gce.<name>`` of a module that moved to :mod:`gce.book`: that module (with a deprecation warning)."""
    if name in MOVED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
