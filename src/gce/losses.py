"""Loss functions of Zhang & Sabuncu (2018), Sec. 2-3, computed from logits.

Every function takes raw network outputs (``logits``, shape ``(N, c)``) and
integer labels (``y``, shape ``(N,)``) and works with ``log f_y`` from
``log_softmax``: powers ``f_y**q`` are ``exp(q * log f_y)``.  Nothing is
computed from probabilities, so neither the value nor the gradient becomes
NaN or infinite when a softmax probability underflows to zero.

Half-precision logits (``float16``/``bfloat16``) are promoted to ``float32``
before the softmax, as ``torch.autocast`` does for its own losses; the
returned loss is ``float32`` for them and has the logits' dtype otherwise.

Reductions
----------
``reduction="none"`` returns one value per sample, ``"sum"`` their sum and
``"mean"`` their mean.  With per-sample ``weight`` the mean is the *weighted*
mean ``sum(w * l) / sum(w)``: a sample of weight 0 leaves the denominator as
well as the numerator, which is what pruning (Algorithm 1) needs.  A weighted
mean over all-zero weights is 0, not NaN.  An unweighted mean over an empty
batch raises ``ValueError``, as do NaN or infinite logits (checked with the
labels, ``validate=True``), which would make the loss or a pruning decision NaN.

Functions
---------
- :func:`cce` -- categorical cross entropy, Eq. 2.
- :func:`mae` -- mean absolute error on the simplex, ``2 - 2 f_y`` (Eq. 4).
- :func:`lq` -- the negative Box-Cox loss ``(1 - f_y**q) / q`` (Eq. 6).
- :func:`truncated_lq` -- Eq. 9.
- :func:`acs_lq` and :func:`prune_weights` -- Eq. 13 and the pruning step of
  Algorithm 1.
- :func:`forward_corrected` -- forward correction with a transition matrix,
  Eq. 1.
- :func:`loss_matrix` -- ``L(f(x), e_j)`` for every class ``j`` (used for
  Eq. 3 and Eq. 7).

The losses that followed the paper, in the same log-space form (see
:func:`sce` for the constants the published code uses):

- :func:`rce` and :func:`sce` -- reverse and symmetric cross entropy (Wang et
  al., ICCV 2019).
- :func:`nce`, :func:`nce_rce` and :func:`nce_mae` -- normalized cross entropy
  and the active-passive losses (Ma et al., ICML 2020).
- :func:`taylor_ce` -- Taylor cross entropy of order ``t`` (Feng et al.,
  IJCAI 2020).
"""

from __future__ import annotations

import math
import warnings
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PAPER_Q",
    "PAPER_K",
    "Q_MIN",
    "PRUNE_WARN_FRACTION",
    "cce",
    "mae",
    "lq",
    "lq_of_probability",
    "lq_from_log",
    "truncated_lq",
    "acs_lq",
    "prune_weights",
    "forward_corrected",
    "loss_matrix",
    "check_q",
    "check_k",
    "check_transition_matrix",
    "CCELoss",
    "MAELoss",
    "LqLoss",
    "TruncatedLqLoss",
    "ForwardCorrectedLoss",
    "RCE_A",
    "SCE_ALPHA",
    "SCE_BETA",
    "APL_ALPHA",
    "APL_BETA",
    "TAYLOR_T",
    "rce",
    "sce",
    "nce",
    "nce_rce",
    "nce_mae",
    "taylor_ce",
    "LATER_LOSSES",
    "SCELoss",
    "NCERCELoss",
    "NCEMAELoss",
    "TaylorCELoss",
]

_REDUCTIONS = ("mean", "sum", "none")

#: The paper's ``q`` and ``k``, the defaults everywhere in gce (Sec. 4 sets "q = 0.7, k = 0.5" for every dataset).
PAPER_Q = 0.7
PAPER_K = 0.5
#: The smallest ``q`` accepted.  Below it ``L_q`` is CCE to within ``q (log f)^2 / 2`` (Eq. 6's limit
#: ``q -> 0``): use ``cce`` there.  (Far below it, ``q log f`` underflows and ``L_q`` would be 0/0.)
Q_MIN = 1e-6
#: ``log 0`` in the reverse cross entropy, clipped to ``A = -4`` as Wang et al. (2019) and Ma et al. (2020) state.
#: Their published code clamps the one-hot label at 1e-4 instead, i.e. ``A = log(1e-4) = -9.21`` (see :func:`rce`).
RCE_A = -4.0
#: SCE's weights ``alpha * CE + beta * RCE`` for CIFAR-10 in the active-passive losses' published configurations.
SCE_ALPHA, SCE_BETA = 0.1, 1.0
#: The active-passive losses' weights ``alpha * NCE + beta * (RCE or MAE)`` for CIFAR-10 in their published
#: configurations.
APL_ALPHA, APL_BETA = 1.0, 1.0
#: The default order of Taylor cross entropy in gce, the lowest order above MAE (``t = 1`` is half of Eq. 4's
#: MAE).
TAYLOR_T = 2
#: :meth:`TruncatedLqLoss.prune` warns when a pruning step keeps fewer than this fraction of its samples.
PRUNE_WARN_FRACTION = 0.1


# --------------------------------------------------------------------------
# argument checks


def _check_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_q(q) -> float:
    """Return ``q`` as a float, or raise ``ValueError`` unless ``Q_MIN <= q <= 1`` (Eq. 6).

    ``q = 0`` is CCE (the limit of Eq. 6); below :data:`Q_MIN` = 1e-6 use :func:`cce` itself.
    """
    q = _check_real("q", q)
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q must be in (0, 1] (Eq. 6), got q={q}")
    if q < Q_MIN:
        raise ValueError(f"q={q} is below Q_MIN={Q_MIN}: there L_q equals CCE (Eq. 6's limit q -> 0) to "
                         f"within q (log f)^2 / 2, so use the cce loss")
    return q


def check_k(k) -> float:
    """Return ``k`` as a float, or raise ``ValueError`` unless ``0 < k < 1`` (Eq. 9)."""
    k = _check_real("k", k)
    if not 0.0 < k < 1.0:
        raise ValueError(f"k must be in (0, 1) (Eq. 9), got k={k}")
    return k


def check_transition_matrix(T, num_classes: int | None = None, atol: float = 1e-5) -> Tensor:
    """Validate a row-stochastic ``c x c`` noise transition matrix and return it as a tensor.

    ``T[i, j]`` is ``p(noisy label = j | true label = i)`` (Sec. 3.1), so each
    row must be non-negative and sum to one.  Raises ``ValueError`` naming the
    first problem found.
    """
    T = torch.as_tensor(T)
    if not (T.is_floating_point()):
        T = T.to(torch.get_default_dtype())
    if T.dim() != 2 or T.shape[0] != T.shape[1]:
        raise ValueError(f"T must be a square c x c matrix, got shape {tuple(T.shape)}")
    if num_classes is not None and T.shape[0] != num_classes:
        raise ValueError(
            f"T must be {num_classes} x {num_classes} to match the logits, got {tuple(T.shape)}"
        )
    if not torch.isfinite(T).all():
        raise ValueError("T must have finite entries")
    if (T < 0).any():
        raise ValueError("T must have non-negative entries (they are probabilities)")
    row_sums = T.sum(dim=1, dtype=torch.float64)
    bad = (row_sums - 1.0).abs() > atol
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"T must be row-stochastic (each row sums to 1); row {i} sums to {row_sums[i].item():.6g}"
        )
    return T


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_inputs(logits: Tensor, y: Tensor, validate: bool) -> None:
    if not isinstance(logits, Tensor) or not isinstance(y, Tensor):
        raise TypeError("logits and y must be torch tensors")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (N, c), got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be floating point, got {logits.dtype}")
    if y.dim() != 1 or y.shape[0] != logits.shape[0]:
        raise ValueError(
            f"y must have shape (N,) with N={logits.shape[0]} to match logits "
            f"{tuple(logits.shape)}, got {tuple(y.shape)}"
        )
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    if validate and y.numel() > 0:
        c = logits.shape[1]
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= c:
            raise ValueError(f"labels y must be in [0, {c - 1}] for c={c} classes, found {lo if lo < 0 else hi}")
    if validate and logits.numel() > 0:
        bad = int((~torch.isfinite(logits)).sum())
        if bad:  # the loss (and a pruning decision) would be NaN: a diverged network, or bad inputs
            raise ValueError(f"logits hold {bad} NaN or infinite value(s) of {logits.numel()}; the network has "
                             f"diverged (lower lr) or its inputs are not finite")


def _check_weight(weight: Tensor | None, n: int, unit_interval: bool, validate: bool) -> None:
    if weight is None:
        return
    if not isinstance(weight, Tensor) or weight.dim() != 1 or weight.shape[0] != n:
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a tensor of shape ({n},), got {shape}")
    if validate and weight.numel() > 0:
        lo = float(weight.min())
        if lo < 0:
            raise ValueError(f"weight must be non-negative, found {lo}")
        if unit_interval and float(weight.max()) > 1:
            raise ValueError(f"weight must lie in [0, 1] (Eq. 13), found {float(weight.max())}")


# --------------------------------------------------------------------------
# core


def _log_fy(logits: Tensor, y: Tensor) -> Tensor:
    """``log f_y`` for each row, in float32 for half-precision logits."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.log_softmax(logits, dim=1).gather(1, y.long().unsqueeze(1)).squeeze(1)


def _reduce(per_sample: Tensor, weight: Tensor | None, reduction: str) -> Tensor:
    if weight is not None:
        weight = weight.to(per_sample.dtype)
        weighted = per_sample * weight
        if reduction == "none":
            return weighted
        if reduction == "sum":
            return weighted.sum()
        return weighted.sum() / weight.sum().clamp_min(torch.finfo(per_sample.dtype).tiny)
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    if per_sample.numel() == 0:
        raise ValueError("reduction='mean' over an empty batch (N=0) has no value; use reduction='sum' (0) or "
                         "skip the batch")
    return per_sample.mean()


def lq_from_log(log_f, q):
    """``L_q`` of Eq. 6 from ``log f``: ``(1 - f^q) / q = -expm1(q log f) / q``, exact for small ``q`` and
    finite as ``f -> 0`` (no argument checks; ``q`` may be a tensor or array that broadcasts against
    ``log_f``).  The package's one formula for ``L_q``: tensors, numpy arrays and floats."""
    if isinstance(log_f, Tensor) or isinstance(q, Tensor):
        return -torch.expm1(q * log_f) / q
    if isinstance(log_f, np.ndarray) or isinstance(q, np.ndarray):
        return -np.expm1(q * log_f) / q
    return -math.expm1(q * log_f) / q


def lq_of_probability(f, q) -> float | Tensor | np.ndarray:
    """``L_q`` evaluated at a probability ``f`` (Eq. 6); e.g. ``L_q(k)`` of Eq. 9.  ``f = 0`` gives ``1/q``."""
    q = check_q(q)
    if isinstance(f, Tensor):
        return lq_from_log(torch.log(f), q)
    if isinstance(f, np.ndarray):
        with np.errstate(divide="ignore"):
            return lq_from_log(np.log(f.astype(float)), q)
    return lq_from_log(math.log(f), q) if f > 0 else 1.0 / q


def cce(logits: Tensor, y: Tensor, *, weight: Tensor | None = None,
        reduction: str = "mean", validate: bool = True) -> Tensor:
    """Categorical cross entropy ``-log f_y`` (Eq. 2)."""
    _check_reduction(reduction)
    _check_inputs(logits, y, validate)
    _check_weight(weight, logits.shape[0], False, validate)
    return _reduce(-_log_fy(logits, y), weight, reduction)


def mae(logits: Tensor, y: Tensor, *, weight: Tensor | None = None,
        reduction: str = "mean", validate: bool = True) -> Tensor:
    """Mean absolute error ``||e_y - f||_1 = 2 - 2 f_y`` (Eq. 4).

    This is twice the unhinged loss ``1 - f_y`` (and twice ``lq`` at ``q=1``):
    with the same learning rate its gradients are twice as large.
    """
    _check_reduction(reduction)
    _check_inputs(logits, y, validate)
    _check_weight(weight, logits.shape[0], False, validate)
    return _reduce(2.0 - 2.0 * torch.exp(_log_fy(logits, y)), weight, reduction)


def lq(logits: Tensor, y: Tensor, q: float, *, weight: Tensor | None = None,
       reduction: str = "mean", validate: bool = True) -> Tensor:
    """Generalized cross entropy ``L_q = (1 - f_y**q) / q`` for ``q`` in (0, 1] (Eq. 6).

    Tends to :func:`cce` as ``q -> 0``; equals the unhinged loss ``1 - f_y``
    (half of :func:`mae`) at ``q = 1``.  Its gradient is
    ``-f_y**(q-1) * grad f_y`` (Sec. 3.2).
    """
    q = check_q(q)
    _check_reduction(reduction)
    _check_inputs(logits, y, validate)
    _check_weight(weight, logits.shape[0], False, validate)
    return _reduce(lq_from_log(_log_fy(logits, y), q), weight, reduction)


def truncated_lq(logits: Tensor, y: Tensor, q: float, k: float, *,
                 weight: Tensor | None = None, reduction: str = "mean",
                 validate: bool = True) -> Tensor:
    """Truncated ``L_q`` (Eq. 9): ``L_q(k)`` where ``f_y <= k``, ``L_q(f, e_y)`` elsewhere.

    ``0 < k < 1``.  Samples below the threshold contribute a constant and no
    gradient.  Training with Eq. 9 directly prunes most samples early in
    training; Algorithm 1 (:func:`acs_lq`, :func:`prune_weights`) avoids that.
    """
    q, k = check_q(q), check_k(k)
    _check_reduction(reduction)
    _check_inputs(logits, y, validate)
    _check_weight(weight, logits.shape[0], False, validate)
    log_f = _log_fy(logits, y)
    above = log_f > math.log(k)
    per_sample = torch.where(above, lq_from_log(log_f, q),
                             torch.full_like(log_f, lq_of_probability(k, q)))
    return _reduce(per_sample, weight, reduction)


def prune_weights(logits: Tensor, y: Tensor, k: float, *, validate: bool = True) -> Tensor:
    """The pruning step of Algorithm 1: the optimal ``w`` of Eq. 13 for fixed parameters.

    ``w_i = 1`` where ``f_{y_i} >= k`` (equivalently ``L_q(f_i) <= L_q(k)``,
    for every ``q``, since ``L_q`` decreases in ``f``), else 0.  At ``f_y = k``
    both choices are optimal; this keeps the sample, as Algorithm 1's text does.
    Computed without gradient; returns 0s and 1s in the loss's dtype.
    """
    k = check_k(k)
    _check_inputs(logits, y, validate)
    with torch.no_grad():
        log_f = _log_fy(logits, y)
        return (log_f >= math.log(k)).to(log_f.dtype)


def acs_lq(logits: Tensor, y: Tensor, q: float, k: float, weight: Tensor, *,
           reduction: str = "mean", validate: bool = True) -> Tensor:
    """The objective of Eq. 13 for fixed weights: ``w_i * (L_q(f_i) - L_q(k))``.

    ``weight`` is the per-sample ``w`` in ``[0, 1]`` (from :func:`prune_weights`).
    With ``reduction="mean"`` the sum is divided by ``sum(w)``, the number of
    kept samples, so pruning does not shrink the effective learning rate.
    The ``-L_q(k) * sum(w)`` term carries no gradient in the parameters; it is
    kept so that the value is the objective that Algorithm 1 decreases.
    """
    q, k = check_q(q), check_k(k)
    _check_reduction(reduction)
    _check_inputs(logits, y, validate)
    if weight is None:
        raise ValueError("acs_lq needs the per-sample weight vector w of Eq. 13")
    _check_weight(weight, logits.shape[0], True, validate)
    per_sample = lq_from_log(_log_fy(logits, y), q) - lq_of_probability(k, q)
    return _reduce(per_sample, weight, reduction)


def forward_corrected(logits: Tensor, y: Tensor, T, *, weight: Tensor | None = None,
                      reduction: str = "mean", validate: bool = True) -> Tensor:
    """Forward-corrected cross entropy (Eq. 1): ``-log (T^T f)_y`` for noisy label ``y``.

    ``T`` is row-stochastic, ``T[i, j] = p(noisy = j | true = i)``.  Computed
    as ``-logsumexp_i(log f_i + log T[i, y])``.  With ``T = I`` it is :func:`cce`.
    """
    _check_reduction(reduction)
    _check_inputs(logits, y, validate)
    _check_weight(weight, logits.shape[0], False, validate)
    c = logits.shape[1]
    if validate or not isinstance(T, Tensor):
        T = check_transition_matrix(T, num_classes=c)
    elif T.shape != (c, c):
        raise ValueError(f"T must be {c} x {c} to match the logits, got {tuple(T.shape)}")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    log_f = F.log_softmax(logits, dim=1)
    log_T = torch.log(T.to(device=log_f.device, dtype=log_f.dtype))
    # column y of T for each sample: log T[:, y_n]  -> (N, c)
    log_T_cols = log_T.t().index_select(0, y.long())
    per_sample = -torch.logsumexp(log_f + log_T_cols, dim=1)
    return _reduce(per_sample, weight, reduction)


def loss_matrix(loss, logits: Tensor, **kwargs) -> Tensor:
    """``L(f(x_n), e_j)`` for every sample ``n`` and class ``j``: shape ``(N, c)``.

    ``loss`` is one of this module's functions; ``kwargs`` are its parameters
    (``q``, ``k``, ``T``).  Summing over ``j`` gives the left side of Eq. 3.
    """
    n, c = logits.shape
    rows = logits.repeat_interleave(c, dim=0)
    labels = torch.arange(c, device=logits.device).repeat(n)
    return loss(rows, labels, reduction="none", **kwargs).reshape(n, c)


# --------------------------------------------------------------------------
# the losses that followed: SCE, the active-passive losses, Taylor CE


def _check_weight_pair(alpha, beta) -> tuple[float, float]:
    alpha, beta = _check_real("alpha", alpha), _check_real("beta", beta)
    if alpha < 0 or beta < 0:
        raise ValueError(f"alpha and beta must be non-negative, got alpha={alpha}, beta={beta}")
    if alpha == 0 and beta == 0:
        raise ValueError("alpha and beta cannot both be 0 (the loss would be 0)")
    return alpha, beta


def _check_A(A) -> float:
    A = _check_real("A", A)
    if not A < 0:
        raise ValueError(f"A (the clipped log 0 of the reverse cross entropy) must be negative, got A={A}")
    return A


def _check_t(t) -> int:
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"t (the order of Taylor cross entropy) must be a positive integer, got t={t!r}")
    return t


def _log_probs(logits: Tensor) -> Tensor:
    """``log f`` for every class, in float32 for half-precision logits."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.log_softmax(logits, dim=1)


def _one_minus_fy(log_fy: Tensor) -> Tensor:
    """``1 - f_y = -expm1(log f_y)``: exact where ``f_y`` is close to 1."""
    return -torch.expm1(log_fy)


def _nce_from_log(log_p: Tensor, y: Tensor) -> Tensor:
    """``log f_y / sum_k log f_k`` (both negative) from the log-softmax ``log_p`` (N, c)."""
    if log_p.shape[1] < 2:
        raise ValueError(f"nce needs at least 2 classes (its denominator is 0 for one), got c={log_p.shape[1]}")
    log_fy = log_p.gather(1, y.long().unsqueeze(1)).squeeze(1)
    return log_fy / log_p.sum(dim=1)


def _check_all(logits, y, weight, reduction, validate) -> None:
    _check_reduction(reduction)
    _check_inputs(logits, y, validate)
    _check_weight(weight, logits.shape[0], False, validate)


def rce(logits: Tensor, y: Tensor, *, A: float = RCE_A, weight: Tensor | None = None,
        reduction: str = "mean", validate: bool = True) -> Tensor:
    """Reverse cross entropy ``-sum_k f_k log e_y[k]`` with ``log 0 = A`` (Wang et al., ICCV 2019, Sec. 3).

    With the label's one-hot ``e_y`` in the place of the prediction, every class but ``y`` contributes
    ``f_k * A``, so ``RCE = -A (1 - f_y)``: a multiple of MAE (Eq. 4 of Zhang & Sabuncu, ``2 - 2 f_y``) and
    bounded by ``-A``.  The papers state ``A = -4`` (:data:`RCE_A`).  Their published code (the active-passive
    losses' ``ReverseCrossEntropy``, the SCE authors' Keras ``symmetric_cross_entropy``) clamps the one-hot at
    ``1e-4`` instead, which is ``A = log(1e-4) = -9.21``: pass ``A=math.log(1e-4)`` to reproduce it.
    """
    A = _check_A(A)
    _check_all(logits, y, weight, reduction, validate)
    return _reduce(-A * _one_minus_fy(_log_fy(logits, y)), weight, reduction)


def sce(logits: Tensor, y: Tensor, alpha: float = SCE_ALPHA, beta: float = SCE_BETA, *, A: float = RCE_A,
        weight: Tensor | None = None, reduction: str = "mean", validate: bool = True) -> Tensor:
    """Symmetric cross entropy ``alpha * CE + beta * RCE`` (Wang et al., ICCV 2019, Sec. 3: ``l_sl``).

    ``CE = -log f_y`` (Eq. 2 of Zhang & Sabuncu) and ``RCE = -A (1 - f_y)`` (:func:`rce`).  The defaults are
    the CIFAR-10 weights of the published configurations (``alpha = 0.1``, ``beta = 1``) with the papers'
    ``A = -4``; the published code's ``A`` is ``log(1e-4)`` (see :func:`rce`), so its ``beta`` weighs RCE
    2.3 times more than the same ``beta`` here.
    """
    alpha, beta = _check_weight_pair(alpha, beta)
    A = _check_A(A)
    _check_all(logits, y, weight, reduction, validate)
    log_fy = _log_fy(logits, y)
    return _reduce(-alpha * log_fy - beta * A * _one_minus_fy(log_fy), weight, reduction)


def nce(logits: Tensor, y: Tensor, *, weight: Tensor | None = None, reduction: str = "mean",
        validate: bool = True) -> Tensor:
    """Normalized cross entropy ``log f_y / sum_k log f_k`` (Ma et al., ICML 2020, Sec. 3: NCE).

    CE at the label divided by the sum of CE over all labels, in ``[0, 1]``; it sums to 1 over the
    labels, which makes it noise tolerant (the condition of Eq. 3 of Zhang & Sabuncu).  Needs ``c >= 2``.
    """
    _check_all(logits, y, weight, reduction, validate)
    return _reduce(_nce_from_log(_log_probs(logits), y), weight, reduction)


def nce_rce(logits: Tensor, y: Tensor, alpha: float = APL_ALPHA, beta: float = APL_BETA, *, A: float = RCE_A,
            weight: Tensor | None = None, reduction: str = "mean", validate: bool = True) -> Tensor:
    """The active-passive loss NCE+RCE, ``alpha * NCE + beta * RCE`` (Ma et al., ICML 2020, Sec. 4: APL).

    :func:`nce` is the active term, :func:`rce` (with ``log 0 = A``) the passive one.  Defaults: the
    CIFAR-10 weights of the published configurations (``alpha = beta = 1``) and the papers' ``A = -4``.
    """
    alpha, beta = _check_weight_pair(alpha, beta)
    A = _check_A(A)
    _check_all(logits, y, weight, reduction, validate)
    log_p = _log_probs(logits)
    log_fy = log_p.gather(1, y.long().unsqueeze(1)).squeeze(1)
    return _reduce(alpha * _nce_from_log(log_p, y) - beta * A * _one_minus_fy(log_fy), weight, reduction)


def nce_mae(logits: Tensor, y: Tensor, alpha: float = APL_ALPHA, beta: float = APL_BETA, *,
            weight: Tensor | None = None, reduction: str = "mean", validate: bool = True) -> Tensor:
    """The active-passive loss NCE+MAE, ``alpha * NCE + beta * (1 - f_y)`` (Ma et al., ICML 2020, Sec. 4: APL).

    The MAE term is ``1 - f_y`` as in the authors' published code, half of Eq. 4's ``2 - 2 f_y``
    (:func:`mae`).  Defaults: the CIFAR-10 weights of the published configurations (``alpha = beta = 1``).
    """
    alpha, beta = _check_weight_pair(alpha, beta)
    _check_all(logits, y, weight, reduction, validate)
    log_p = _log_probs(logits)
    log_fy = log_p.gather(1, y.long().unsqueeze(1)).squeeze(1)
    return _reduce(alpha * _nce_from_log(log_p, y) + beta * _one_minus_fy(log_fy), weight, reduction)


def taylor_ce(logits: Tensor, y: Tensor, t: int = TAYLOR_T, *, weight: Tensor | None = None,
              reduction: str = "mean", validate: bool = True) -> Tensor:
    """Taylor cross entropy ``sum_{i=1}^t (1 - f_y)^i / i`` (Feng et al., IJCAI 2020: the loss ``L_t-CE``).

    The Taylor series of CE ``-log f_y`` around ``f_y = 1``, cut after order ``t``: ``t = 1`` is the
    unhinged loss ``1 - f_y`` (half of Eq. 4's MAE), ``t -> infinity`` gives CE; bounded by the harmonic
    number ``H_t``.  Evaluated by Horner's rule on ``1 - f_y = -expm1(log f_y)``.  The paper tunes ``t``
    per dataset; the default :data:`TAYLOR_T` = 2 is the lowest order above MAE.
    """
    t = _check_t(t)
    _check_all(logits, y, weight, reduction, validate)
    u = _one_minus_fy(_log_fy(logits, y))
    total = torch.full_like(u, 1.0 / t)
    for i in range(t - 1, 0, -1):
        total = 1.0 / i + u * total
    return _reduce(u * total, weight, reduction)


#: The later losses as training methods of :class:`gce.train.RunConfig`, each with its default constants:
#: ``name -> f(logits, y, *, reduction, validate)``.
LATER_LOSSES = {"sce": sce, "nce_rce": nce_rce, "nce_mae": nce_mae, "taylor_ce": taylor_ce}


# --------------------------------------------------------------------------
# nn.Module wrappers


class _Loss(nn.Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CCELoss(_Loss):
    """Module form of :func:`cce` (Eq. 2).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
        How the per-sample losses are combined: their mean (the default), their sum, or none (a tensor
        of shape (N,)).
    """

    def forward(self, logits: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """The loss of ``logits`` (N, c) at integer labels ``y`` (N,), optionally weighted."""
        return cce(logits, y, weight=weight, reduction=self.reduction)


class MAELoss(_Loss):
    """Module form of :func:`mae` (Eq. 4, ``2 - 2 f_y``).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
        How the per-sample losses are combined: their mean (the default), their sum, or none (a tensor
        of shape (N,)).
    """

    def forward(self, logits: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """The loss of ``logits`` (N, c) at integer labels ``y`` (N,), optionally weighted."""
        return mae(logits, y, weight=weight, reduction=self.reduction)


class LqLoss(_Loss):
    """Module form of :func:`lq` (Eq. 6); the paper uses ``q = 0.7``.

    Parameters
    ----------
    q : float
        The exponent of Eq. 6, in (0, 1]: small ``q`` behaves like CCE, ``q = 1`` is the unhinged loss
        (half of MAE).  The paper's experiments use 0.7.
    reduction : {"mean", "sum", "none"}
        How the per-sample losses are combined: their mean (the default), their sum, or none (a tensor
        of shape (N,)).
    """

    def __init__(self, q: float = PAPER_Q, reduction: str = "mean"):
        super().__init__(reduction)
        self.q = check_q(q)

    def forward(self, logits: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """The loss of ``logits`` (N, c) at integer labels ``y`` (N,), optionally weighted."""
        return lq(logits, y, self.q, weight=weight, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"q={self.q}, " + super().extra_repr()


class TruncatedLqLoss(_Loss):
    """Truncated ``L_q`` trained by alternating convex search (Eq. 12-13, Algorithm 1).

    Holds the pruning weights ``w`` as a buffer indexed by sample id, all ones
    at the start (train on the full data).  Call :meth:`prune` with the
    current model's logits for (a chunk of) the training set to run the
    pruning step; call the module with the batch's sample ids to train on the
    objective of Eq. 13.  Called without ids it evaluates Eq. 9 directly.
    Sample ids from an ordinary ``DataLoader``: wrap the dataset in
    :class:`gce.data.WithIndex`, whose items are ``(x, y, index)``.

    **Warm-up.**  Train on all samples first and prune only once the model
    fits most of them: the paper starts pruning at the first learning-rate
    drop (epoch 40 of 120, Sec. 4.2) and prunes every 10 epochs after.  Right
    after initialisation ``f_y`` is about ``1/c < k`` for every sample, so a
    pruning step would drop them all (loss 0, gradient 0).  :meth:`prune`
    warns when a step keeps fewer than :data:`PRUNE_WARN_FRACTION` (10%) of
    its samples.

    Parameters
    ----------
    num_samples : int
        Size of the training set: one pruning weight per sample id.
    q : float
        The exponent of ``L_q`` (Eq. 6), in (0, 1]; the paper uses 0.7.
    k : float
        The truncation threshold of Eq. 9, in (0, 1): a sample whose softmax probability of its label is
        at most ``k`` gets the constant loss ``L_q(k)`` (and weight 0 after pruning).  The paper uses 0.5.
    reduction : {"mean", "sum", "none"}
        How the per-sample losses are combined: their mean (the default), their sum, or none (a tensor
        of shape (N,)).
    """

    weights: Tensor

    def __init__(self, num_samples: int, q: float = PAPER_Q, k: float = PAPER_K, reduction: str = "mean"):
        super().__init__(reduction)
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        self.q, self.k = check_q(q), check_k(k)
        self.register_buffer("weights", torch.ones(num_samples))

    def forward(self, logits: Tensor, y: Tensor, index: Tensor | None = None) -> Tensor:
        """Eq. 13 with the stored weights of samples ``index``; Eq. 9 when ``index`` is None."""
        if index is None:
            return truncated_lq(logits, y, self.q, self.k, reduction=self.reduction)
        index = self._check_index(index, logits.shape[0])
        w = self.weights.index_select(0, index)
        return acs_lq(logits, y, self.q, self.k, w.to(device=logits.device, dtype=logits.dtype),
                      reduction=self.reduction)

    def _check_index(self, index, n: int) -> Tensor:
        """Sample ids as a long tensor on the weights' device; ValueError naming bad ones."""
        index = torch.as_tensor(index)
        if index.dtype.is_floating_point or index.dtype == torch.bool or index.is_complex():
            raise ValueError(f"index must hold integer sample ids, got dtype {index.dtype}")
        if index.dim() != 1 or index.shape[0] != n:
            raise ValueError(f"index must have shape ({n},) to match the logits, got {tuple(index.shape)}")
        m = self.weights.numel()
        bad = index[(index < 0) | (index >= m)]
        if bad.numel():
            raise ValueError(f"sample ids must lie in [0, {m - 1}] (num_samples={m}), found "
                             f"{bad[:5].tolist()}{' ...' if bad.numel() > 5 else ''}")
        return index.to(self.weights.device).long()

    @torch.no_grad()
    def prune(self, logits: Tensor, y: Tensor, index: Tensor) -> Tensor:
        """Pruning step: set ``w`` for the samples ``index`` from their logits; return those ``w``.

        Warns (``UserWarning``) when fewer than :data:`PRUNE_WARN_FRACTION` of the samples are kept:
        see the warm-up in the class docstring.
        """
        index = self._check_index(index, logits.shape[0])
        w = prune_weights(logits, y, self.k)
        self.weights.index_copy_(0, index, w.to(device=self.weights.device, dtype=self.weights.dtype))
        kept = float(w.float().mean()) if w.numel() else 1.0
        if kept < PRUNE_WARN_FRACTION:
            warnings.warn(f"this pruning step keeps {kept:.1%} of its {w.numel()} samples (f_y >= k={self.k} "
                          f"for few): prune after a warm-up on all samples (Algorithm 1 starts at the first "
                          f"learning-rate drop), see TruncatedLqLoss", UserWarning, stacklevel=2)
        return w

    def reset(self) -> None:
        """Keep every sample again (``w = 1``), as at the start of Algorithm 1."""
        self.weights.fill_(1.0)

    @property
    def kept_fraction(self) -> float:
        return float(self.weights.mean())

    def extra_repr(self) -> str:
        return f"num_samples={self.weights.numel()}, q={self.q}, k={self.k}, " + super().extra_repr()


class ForwardCorrectedLoss(_Loss):
    """Module form of :func:`forward_corrected` (Eq. 1); ``T`` is kept as a buffer.

    Parameters
    ----------
    T : Tensor or array, shape (c, c)
        The transition matrix ``T[i, j] = p(noisy label j | true label i)``; rows sum to 1.
    reduction : {"mean", "sum", "none"}
        How the per-sample losses are combined: their mean (the default), their sum, or none (a tensor
        of shape (N,)).
    """

    T: Tensor

    def __init__(self, T, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("T", check_transition_matrix(T).to(torch.get_default_dtype()))

    def forward(self, logits: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """The loss of ``logits`` (N, c) at integer labels ``y`` (N,), optionally weighted.

        Labels outside ``[0, c - 1]`` raise ``ValueError`` naming them (``T`` was checked once, at init)."""
        _check_inputs(logits, y, True)
        return forward_corrected(logits, y, self.T, weight=weight, reduction=self.reduction,
                                 validate=False)


class SCELoss(_Loss):
    """Module form of :func:`sce`: symmetric cross entropy ``alpha * CE + beta * RCE`` (Wang et al., 2019).

    Parameters
    ----------
    alpha, beta : float
        The weights of CE and RCE, non-negative, not both 0.  Defaults: 0.1 and 1 (the published CIFAR-10
        configuration).
    A : float
        The clipped ``log 0`` of RCE, negative; the papers' -4 by default (their code: ``log(1e-4)``).
    reduction : {"mean", "sum", "none"}
        How the per-sample losses are combined.
    """

    def __init__(self, alpha: float = SCE_ALPHA, beta: float = SCE_BETA, A: float = RCE_A,
                 reduction: str = "mean"):
        super().__init__(reduction)
        self.alpha, self.beta = _check_weight_pair(alpha, beta)
        self.A = _check_A(A)

    def forward(self, logits: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """The loss of ``logits`` (N, c) at integer labels ``y`` (N,), optionally weighted."""
        return sce(logits, y, self.alpha, self.beta, A=self.A, weight=weight, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, A={self.A}, " + super().extra_repr()


class NCERCELoss(_Loss):
    """Module form of :func:`nce_rce`: the active-passive loss ``alpha * NCE + beta * RCE`` (Ma et al., 2020).

    Parameters
    ----------
    alpha, beta : float
        The weights of NCE and RCE, non-negative, not both 0; 1 and 1 by default (the published CIFAR-10
        configuration).
    A : float
        The clipped ``log 0`` of RCE, negative; the papers' -4 by default (their code: ``log(1e-4)``).
    reduction : {"mean", "sum", "none"}
        How the per-sample losses are combined.
    """

    def __init__(self, alpha: float = APL_ALPHA, beta: float = APL_BETA, A: float = RCE_A,
                 reduction: str = "mean"):
        super().__init__(reduction)
        self.alpha, self.beta = _check_weight_pair(alpha, beta)
        self.A = _check_A(A)

    def forward(self, logits: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """The loss of ``logits`` (N, c) at integer labels ``y`` (N,), optionally weighted."""
        return nce_rce(logits, y, self.alpha, self.beta, A=self.A, weight=weight, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, A={self.A}, " + super().extra_repr()


class NCEMAELoss(_Loss):
    """Module form of :func:`nce_mae`: the active-passive loss ``alpha * NCE + beta * (1 - f_y)`` (Ma et al., 2020).

    Parameters
    ----------
    alpha, beta : float
        The weights of NCE and MAE, non-negative, not both 0; 1 and 1 by default (the published CIFAR-10
        configuration).
    reduction : {"mean", "sum", "none"}
        How the per-sample losses are combined.
    """

    def __init__(self, alpha: float = APL_ALPHA, beta: float = APL_BETA, reduction: str = "mean"):
        super().__init__(reduction)
        self.alpha, self.beta = _check_weight_pair(alpha, beta)

    def forward(self, logits: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """The loss of ``logits`` (N, c) at integer labels ``y`` (N,), optionally weighted."""
        return nce_mae(logits, y, self.alpha, self.beta, weight=weight, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, " + super().extra_repr()


class TaylorCELoss(_Loss):
    """Module form of :func:`taylor_ce`: Taylor cross entropy of order ``t`` (Feng et al., 2020).

    Parameters
    ----------
    t : int
        The order, a positive integer: 1 is half of MAE, large ``t`` approaches CE; 2 by default.
    reduction : {"mean", "sum", "none"}
        How the per-sample losses are combined.
    """

    def __init__(self, t: int = TAYLOR_T, reduction: str = "mean"):
        super().__init__(reduction)
        self.t = _check_t(t)

    def forward(self, logits: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """The loss of ``logits`` (N, c) at integer labels ``y`` (N,), optionally weighted."""
        return taylor_ce(logits, y, self.t, weight=weight, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"t={self.t}, " + super().extra_repr()
