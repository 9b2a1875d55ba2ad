"""Evaluation metrics: one function per metric, NumPy in, plain numbers out.

Every function is spatial-dims-agnostic: a pixel map is ``(H, W)``, a voxel map ``(D, H, W)``, a batch
puts items first (``(N, *spatial)``). Conventions shared by all functions:

- **positive = anomalous**: labels and targets are binarised with ``!= 0``; a score is a float where
  higher means more anomalous, and a threshold ``t`` predicts positive where ``score >= t`` (the same
  convention as scikit-learn's ``roc_curve`` thresholds).
- **masks**: optional ``mask`` arguments select the pixels that count (e.g. the brain mask).
- **degenerate inputs** (only one class present, nothing to compare) give ``nan`` and a
  :class:`MetricWarning`, never an exception; *malformed* inputs (shapes that differ, lengths that differ)
  raise ``ValueError`` naming both shapes.

FID lives here too (:func:`fid`, :func:`fid_infinity`); the networks that turn images into features are in
:mod:`ctad_core.nn.features`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "MetricWarning",
    "dice",
    "dice_per_item",
    "roc_curve",
    "roc_auc",
    "pr_curve",
    "average_precision",
    "DiceSweep",
    "dice_vs_threshold",
    "threshold_for_best_dice",
    "best_achievable_dice",
    "OperatingPoint",
    "youden_threshold",
    "operating_point",
    "lesion_detection_rate",
    "wilcoxon_dice",
    "per_kind_auroc",
    "recon_error_stats",
    "frechet_distance",
    "fid",
    "fid_infinity",
]


class MetricWarning(UserWarning):
    """A metric was undefined for its input (e.g. only one class) and ``nan`` was returned."""


def _warn(msg: str) -> None:
    warnings.warn(msg, MetricWarning, stacklevel=3)


def _same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; they must match")


def _flat_scores(
    scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten (scores, labels) to 1-D float64 / bool, keeping only ``mask`` pixels; check shapes and NaNs."""
    s = np.asarray(scores)
    y = np.asarray(labels)
    _same_shape(s, y, "scores", "labels")
    if mask is not None:
        m = np.asarray(mask)
        _same_shape(s, m, "scores", "mask")
        sel = m != 0
        s, y = s[sel], y[sel]
    s = s.astype(np.float64, copy=False).ravel()
    y = (y != 0).ravel()
    if np.isnan(s).any():
        raise ValueError(f"scores contain {int(np.isnan(s).sum())} NaN values")
    return s, y


# --------------------------------------------------------------------------------------------- Dice


def dice(pred: np.ndarray, target: np.ndarray, empty: float = 1.0) -> float:
    """Dice overlap ``2|P ∩ T| / (|P| + |T|)`` of two binary masks (any shape, nonzero = foreground).

    Args:
        pred: predicted mask, any shape.
        target: reference mask, same shape.
        empty: the value returned when both masks are empty (0/0). 1.0 says "agreeing that nothing is
            there is perfect"; pass ``np.nan`` to leave such items out of later means.

    Returns:
        Dice in [0, 1] (or ``empty``).

    Raises:
        ValueError: if the shapes differ.

    >>> dice(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
    0.6666666666666666
    >>> dice(np.zeros((2, 2)), np.zeros((2, 2)))
    1.0
    >>> dice(np.zeros(3), np.ones(3))
    0.0
    """
    p = np.asarray(pred) != 0
    t = np.asarray(target) != 0
    _same_shape(p, t, "pred", "target")
    denom = int(p.sum()) + int(t.sum())
    if denom == 0:
        return float(empty)
    return 2.0 * int(np.logical_and(p, t).sum()) / denom


def dice_per_item(pred: np.ndarray, target: np.ndarray, empty: float = 1.0) -> np.ndarray:
    """Dice of each item of a batch (items along the first axis).

    Args:
        pred: (N, *spatial) predicted masks.
        target: (N, *spatial) reference masks.
        empty: value for items where both masks are empty (see :func:`dice`).

    Returns:
        (N,) float64 Dice per item.

    >>> dice_per_item(np.array([[1, 0], [0, 0], [1, 1]]), np.array([[1, 0], [0, 0], [0, 0]]))
    array([1., 1., 0.])
    """
    p = np.asarray(pred) != 0
    t = np.asarray(target) != 0
    _same_shape(p, t, "pred", "target")
    if p.ndim == 0:
        raise ValueError("dice_per_item needs items along a first axis; got a scalar")
    p = p.reshape(p.shape[0], -1)
    t = t.reshape(t.shape[0], -1)
    inter = np.logical_and(p, t).sum(1).astype(np.float64)
    denom = (p.sum(1) + t.sum(1)).astype(np.float64)
    out = np.full(p.shape[0], float(empty))
    nz = denom > 0
    out[nz] = 2.0 * inter[nz] / denom[nz]
    return out


# ------------------------------------------------------------------------------------ ROC and PR


def _binary_clf_curve(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (fps, tps, thresholds) at each distinct score, highest first (as scikit-learn)."""
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y = s[order], y[order]
    distinct = np.where(np.diff(s))[0]
    idx = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y, dtype=np.int64)[idx]
    fps = 1 + idx - tps
    return fps, tps, s[idx]


def roc_curve(
    scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic at every distinct score (pixel- or scan-level).

    Pass anomaly maps and lesion masks for a pixel-level curve (with ``mask`` = brain), or per-scan scores
    and labels for a scan-level one.

    Args:
        scores: anomaly scores, any shape (higher = more anomalous).
        labels: same shape, nonzero = anomalous.
        mask: optional same-shape mask of the elements that count.

    Returns:
        ``(fpr, tpr, thresholds)``, each (K+1,), starting at (0, 0) with threshold ``+inf``; point k is
        "predict anomalous where score >= thresholds[k]". With one class only, the undefined rate is
        ``nan`` (and a :class:`MetricWarning` is issued).

    >>> fpr, tpr, thr = roc_curve(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    s, y = _flat_scores(scores, labels, mask)
    if s.size == 0:
        _warn("roc_curve: no elements (empty input or mask)")
        return np.array([np.nan]), np.array([np.nan]), np.array([np.inf])
    fps, tps, thr = _binary_clf_curve(s, y)
    fps = np.r_[0, fps].astype(np.float64)
    tps = np.r_[0, tps].astype(np.float64)
    thr = np.r_[np.inf, thr]
    n_pos, n_neg = tps[-1], fps[-1]
    if n_pos == 0:
        _warn("roc_curve: no positive labels, true positive rate is undefined")
    if n_neg == 0:
        _warn("roc_curve: no negative labels, false positive rate is undefined")
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = fps / n_neg if n_neg > 0 else np.full_like(fps, np.nan)
        tpr = tps / n_pos if n_pos > 0 else np.full_like(tps, np.nan)
    return fpr, tpr, thr


def roc_auc(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Area under the ROC curve (trapezoidal; ties count one half, as the Mann–Whitney U statistic).

    Args:
        scores: anomaly scores, any shape.
        labels: same shape, nonzero = anomalous.
        mask: optional same-shape mask of the elements that count.

    Returns:
        AUROC in [0, 1], or ``nan`` with a :class:`MetricWarning` if only one class is present.

    >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    >>> roc_auc(np.array([0.5, 0.5]), np.array([0, 1]))
    0.5
    """
    s, y = _flat_scores(scores, labels, mask)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        _warn(f"roc_auc: only one class present ({n_pos} positives of {y.size}); AUROC is undefined")
        return float("nan")
    fps, tps, _ = _binary_clf_curve(s, y)
    fpr = np.r_[0, fps] / fps[-1]
    tpr = np.r_[0, tps] / tps[-1]
    return float(np.trapezoid(tpr, fpr))


def pr_curve(
    scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision–recall curve (as scikit-learn's ``precision_recall_curve``).

    Args:
        scores: anomaly scores, any shape.
        labels: same shape, nonzero = anomalous.
        mask: optional same-shape mask of the elements that count.

    Returns:
        ``(precision, recall, thresholds)``: thresholds (K,) increasing; precision and recall (K+1,) with
        the last point (1, 0) added. Without positives recall is ``nan`` (with a :class:`MetricWarning`).

    >>> p, r, t = pr_curve(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    >>> np.round(p, 3).tolist(), r.tolist(), t.tolist()
    ([0.5, 0.667, 0.5, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5, 0.0], [0.1, 0.35, 0.4, 0.8])
    """
    s, y = _flat_scores(scores, labels, mask)
    if s.size == 0:
        _warn("pr_curve: no elements (empty input or mask)")
        return np.array([1.0]), np.array([np.nan]), np.array([])
    fps, tps, thr = _binary_clf_curve(s, y)
    precision = tps / (tps + fps)
    if tps[-1] == 0:
        _warn("pr_curve: no positive labels, recall is undefined")
        recall = np.full(tps.shape, np.nan)
    else:
        recall = tps / tps[-1]
    # reverse so recall decreases, then append the (recall 0, precision 1) end point
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thr[::-1]


def average_precision(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Average precision (AUPRC) ``Σ (R_k − R_{k−1}) P_k`` — the step-wise area scikit-learn reports.

    Args:
        scores: anomaly scores, any shape.
        labels: same shape, nonzero = anomalous.
        mask: optional same-shape mask of the elements that count.

    Returns:
        AP in [0, 1]; ``nan`` with a :class:`MetricWarning` when there is no positive (all positives give
        AP = 1, which is defined).

    >>> round(average_precision(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])), 4)
    0.8333
    """
    s, y = _flat_scores(scores, labels, mask)
    if not y.any():
        _warn("average_precision: no positive labels; AUPRC is undefined")
        return float("nan")
    fps, tps, _ = _binary_clf_curve(s, y)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# ------------------------------------------------------------------------------- Dice vs threshold


@dataclass
class DiceSweep:
    """Dice as a function of the threshold.

    Attributes:
        thresholds: (K,) increasing thresholds tried (prediction = ``map >= t``).
        dice: (K,) the reduced Dice at each threshold.
        best_threshold: the threshold with the highest Dice (the lowest one on ties).
        best_dice: that Dice.
        reduce: how per-item Dice values were combined (``pooled``, ``mean`` or ``median``).
        per_item: (N, K) Dice per item and threshold, or None for ``pooled``.
    """

    thresholds: np.ndarray
    dice: np.ndarray
    best_threshold: float
    best_dice: float
    reduce: str
    per_item: np.ndarray | None = None


def _default_thresholds(s: np.ndarray, n: int) -> np.ndarray:
    if s.size == 0:
        return np.zeros(1)
    lo, hi = float(s.min()), float(s.max())
    if hi == lo:
        return np.array([lo])
    return np.linspace(lo, hi, n)


def _counts_ge(sorted_vals: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many of ``sorted_vals`` are >= each threshold (vectorised by binary search)."""
    return sorted_vals.size - np.searchsorted(sorted_vals, thresholds, side="left")


def dice_vs_threshold(
    maps: np.ndarray,
    targets: np.ndarray,
    masks: np.ndarray | None = None,
    thresholds: int | Sequence[float] | np.ndarray = 200,
    reduce: str = "mean",
    empty: float = 1.0,
) -> DiceSweep:
    """Dice of ``maps >= t`` against ``targets`` for many thresholds at once (seed 000 Fig. 6).

    Vectorised: the scores are sorted once and the counts for every threshold come from a binary search,
    so K thresholds cost O(n log n + K log n) on n pixels instead of K passes over the data.

    Args:
        maps: (N, *spatial) anomaly maps (items first), or a single (*spatial) map.
        targets: same shape, nonzero = lesion.
        masks: optional same-shape evaluation masks; pixels outside never count as predicted.
        thresholds: an int K (K evenly spaced values from the lowest to the highest masked score) or an
            explicit increasing sequence.
        reduce: ``"pooled"`` — one Dice over all pixels of all items (the [DICE] of Baur et al., used by
            seed 004); ``"mean"`` / ``"median"`` — Dice per item, then mean/median over items (seed 000's
            per-image Dice).
        empty: Dice of an item whose prediction and target are both empty (see :func:`dice`).

    Returns:
        A :class:`DiceSweep`.

    >>> m = np.array([[0.1, 0.9, 0.8, 0.2]])
    >>> t = np.array([[0, 1, 1, 0]])
    >>> sw = dice_vs_threshold(m, t, thresholds=[0.0, 0.5, 0.85])
    >>> sw.dice.tolist(), sw.best_threshold
    ([0.6666666666666666, 1.0, 0.6666666666666666], 0.5)
    """
    m = np.asarray(maps)
    y = np.asarray(targets)
    _same_shape(m, y, "maps", "targets")
    if masks is not None:
        _same_shape(m, np.asarray(masks), "maps", "masks")
    if reduce not in ("pooled", "mean", "median"):
        raise ValueError(f"reduce must be 'pooled', 'mean' or 'median', got {reduce!r}")
    if m.ndim == 0:
        raise ValueError("maps must be an array, got a scalar")
    if reduce != "pooled" and m.ndim == 1:
        m, y = m[None], y[None]
        masks = None if masks is None else np.asarray(masks)[None]
    if np.isnan(m).any():
        raise ValueError(f"maps contain {int(np.isnan(m).sum())} NaN values")
    sel = None if masks is None else np.asarray(masks) != 0
    if isinstance(thresholds, (int, np.integer)):
        thr = _default_thresholds(m[sel] if sel is not None else m.ravel(), int(thresholds))
    else:
        thr = np.asarray(thresholds, dtype=np.float64).ravel()
        if thr.size == 0:
            raise ValueError("thresholds is empty")
        if np.any(np.diff(thr) < 0):
            raise ValueError("thresholds must be increasing")

    def counts(s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        s_all = np.sort(s.astype(np.float64, copy=False))
        s_pos = np.sort(s[t].astype(np.float64, copy=False))
        # |P|, |P ∩ T| per threshold, and |T| (target pixels outside the mask still count as missed)
        return _counts_ge(s_all, thr), _counts_ge(s_pos, thr), int(s_pos.size)

    per_item = None
    if reduce == "pooled":
        mm = m if sel is None else np.where(sel, m, -np.inf)
        yy = y != 0
        n_pred, n_tp, n_true = counts(mm.ravel(), yy.ravel())
        denom = (n_pred + n_true).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            curve = np.where(denom > 0, 2.0 * n_tp / np.maximum(denom, 1), float(empty))
    else:
        n = m.shape[0]
        per_item = np.empty((n, thr.size))
        for i in range(n):
            mi = m[i] if sel is None else np.where(sel[i], m[i], -np.inf)
            n_pred, n_tp, n_true = counts(mi.ravel(), (y[i] != 0).ravel())
            denom = (n_pred + n_true).astype(np.float64)
            per_item[i] = np.where(denom > 0, 2.0 * n_tp / np.maximum(denom, 1), float(empty))
        if n == 0:
            _warn("dice_vs_threshold: no items")
            curve = np.full(thr.size, np.nan)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns when empty=nan
                curve = np.nanmean(per_item, 0) if reduce == "mean" else np.nanmedian(per_item, 0)
    if np.all(np.isnan(curve)):
        best = 0
    else:
        best = int(np.nanargmax(curve))
    return DiceSweep(thr, curve, float(thr[best]), float(curve[best]), reduce, per_item)


def threshold_for_best_dice(
    maps: np.ndarray,
    targets: np.ndarray,
    masks: np.ndarray | None = None,
    thresholds: int | Sequence[float] | np.ndarray = 200,
    reduce: str = "mean",
) -> float:
    """The threshold maximising Dice on a (validation) set — then apply it unchanged to the test set.

    Args:
        maps: (N, *spatial) anomaly maps of the validation items.
        targets: same shape, nonzero = lesion.
        masks: optional evaluation masks.
        thresholds: int K or explicit increasing thresholds (see :func:`dice_vs_threshold`).
        reduce: ``"mean"`` (default; mean per-item Dice, as seed 000 reports), ``"median"`` or ``"pooled"``.

    Returns:
        The best threshold (the lowest on ties).

    >>> threshold_for_best_dice(np.array([[0.1, 0.9, 0.8, 0.2]]), np.array([[0, 1, 1, 0]]), thresholds=[0.0, 0.5, 0.85])
    0.5
    """
    return dice_vs_threshold(maps, targets, masks, thresholds, reduce).best_threshold


def best_achievable_dice(
    maps: np.ndarray,
    targets: np.ndarray,
    masks: np.ndarray | None = None,
    thresholds: int | Sequence[float] | np.ndarray = 200,
    reduce: str = "pooled",
) -> tuple[float, float]:
    """[DICE] of seed 004 (after Baur et al.): the best Dice over thresholds on a given set.

    It is an upper bound on what a threshold can achieve on *that* set; seed 004 searches the threshold on
    held-out validation data, which is what :func:`threshold_for_best_dice` + :func:`dice` on the test set
    give. Call this on the test set to report the (optimistic) bound itself.

    Args:
        maps: (N, *spatial) anomaly maps.
        targets: same shape, nonzero = lesion.
        masks: optional evaluation masks.
        thresholds: int K or explicit increasing thresholds.
        reduce: ``"pooled"`` (default; one Dice over all voxels of the set) or ``"mean"`` / ``"median"``.

    Returns:
        ``(best_dice, threshold)``.

    >>> best_achievable_dice(np.array([[0.1, 0.9, 0.8, 0.2]]), np.array([[0, 1, 1, 0]]), thresholds=[0.0, 0.5])
    (1.0, 0.5)
    """
    sw = dice_vs_threshold(maps, targets, masks, thresholds, reduce)
    return sw.best_dice, sw.best_threshold


# --------------------------------------------------------------------------------- operating points


@dataclass
class OperatingPoint:
    """Sensitivity / specificity / accuracy of ``score >= threshold``.

    Attributes:
        threshold: the decision threshold.
        sensitivity: TP / P (``nan`` without positives).
        specificity: TN / N (``nan`` without negatives).
        accuracy: (TP + TN) / (P + N).
        precision: TP / (TP + FP) (``nan`` if nothing is predicted positive).
        youden_j: sensitivity + specificity − 1.
    """

    threshold: float
    sensitivity: float
    specificity: float
    accuracy: float
    precision: float
    youden_j: float

    def as_dict(self) -> dict[str, float]:
        """The fields as a JSON-able dict."""
        return dict(self.__dict__)


def operating_point(scores: np.ndarray, labels: np.ndarray, threshold: float) -> OperatingPoint:
    """Evaluate a fixed threshold (e.g. one chosen on validation) on a set of scores.

    Args:
        scores: (N,) scores, higher = more anomalous.
        labels: (N,) nonzero = anomalous.
        threshold: predict anomalous where ``score >= threshold``.

    Returns:
        An :class:`OperatingPoint`.

    >>> op = operating_point(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]), 0.35)
    >>> op.sensitivity, op.specificity, op.accuracy
    (1.0, 0.5, 0.75)
    """
    s, y = _flat_scores(scores, labels)
    pred = s >= threshold
    tp = int(np.sum(pred & y))
    tn = int(np.sum(~pred & ~y))
    fp = int(np.sum(pred & ~y))
    p, n = int(y.sum()), int((~y).sum())
    sens = tp / p if p else float("nan")
    spec = tn / n if n else float("nan")
    acc = (tp + tn) / y.size if y.size else float("nan")
    prec = tp / (tp + fp) if (tp + fp) else float("nan")
    return OperatingPoint(float(threshold), sens, spec, acc, prec, sens + spec - 1.0)


def youden_threshold(scores: np.ndarray, labels: np.ndarray) -> OperatingPoint:
    """The ROC point maximising Youden's J = sensitivity + specificity − 1 (seed 001's operating point).

    Args:
        scores: (N,) scores, higher = more anomalous.
        labels: (N,) nonzero = anomalous.

    Returns:
        The :class:`OperatingPoint` at the best threshold (an observed score; the highest one on ties).
        With one class only, every field but the threshold is ``nan`` (and a warning is issued).

    >>> op = youden_threshold(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    >>> op.threshold, op.sensitivity, op.specificity, op.accuracy
    (0.8, 0.5, 1.0, 0.75)
    """
    s, y = _flat_scores(scores, labels)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        _warn(f"youden_threshold: only one class present ({n_pos} positives of {y.size})")
        nan = float("nan")
        return OperatingPoint(nan, nan, nan, nan, nan, nan)
    fps, tps, thr = _binary_clf_curve(s, y)
    j = tps / n_pos - fps / (y.size - n_pos)
    best = int(np.argmax(j))
    return operating_point(s, y, float(thr[best]))


# ------------------------------------------------------------------------------- lesion detection


def lesion_detection_rate(
    pred: np.ndarray,
    target: np.ndarray,
    min_dice: float = 0.1,
    criterion: str = "dice",
    items: bool = True,
    connectivity: int | None = None,
) -> dict[str, float]:
    """Fraction of reference lesions (connected components of ``target``) that the prediction finds.

    Seed 000 counts a lesion as detected "when the Dice is > 0.1". The Dice of one lesion is computed
    against the predicted components that touch it (so a false positive elsewhere in the image does not
    hide a correctly found lesion).

    Args:
        pred: (N, *spatial) binary prediction (or one (*spatial) map with ``items=False``).
        target: same shape, nonzero = lesion.
        min_dice: a lesion is detected when its Dice is strictly greater than this (``criterion="dice"``).
        criterion: ``"dice"`` or ``"overlap"`` (any predicted pixel inside the lesion).
        items: the first axis holds separate items (components never join across items).
        connectivity: neighbourhood for components, 1 = faces only … ndim = full (default full).

    Returns:
        ``{"detected": int, "total": int, "rate": float}``; ``rate`` is ``nan`` (with a warning) when there
        are no lesions.

    >>> t = np.array([[1, 1, 0, 0, 1]])
    >>> p = np.array([[1, 0, 0, 0, 0]])
    >>> lesion_detection_rate(p, t)
    {'detected': 1, 'total': 2, 'rate': 0.5}
    """
    p = np.asarray(pred) != 0
    t = np.asarray(target) != 0
    _same_shape(p, t, "pred", "target")
    if criterion not in ("dice", "overlap"):
        raise ValueError(f"criterion must be 'dice' or 'overlap', got {criterion!r}")
    if not items:
        p, t = p[None], t[None]
    nd = p.ndim - 1
    if nd < 1:
        raise ValueError(f"need at least one spatial axis after the item axis, got shape {np.shape(pred)}")
    structure = ndimage.generate_binary_structure(nd, nd if connectivity is None else connectivity)
    detected = total = 0
    for pi, ti in zip(p, t, strict=True):
        lab_t, n_t = ndimage.label(ti, structure)
        if n_t == 0:
            continue
        lab_p, _ = ndimage.label(pi, structure)
        for k in range(1, n_t + 1):
            comp = lab_t == k
            total += 1
            touching = np.unique(lab_p[comp])
            touching = touching[touching > 0]
            if touching.size == 0:
                continue
            if criterion == "overlap":
                detected += 1
                continue
            local = np.isin(lab_p, touching)
            if dice(local, comp) > min_dice:
                detected += 1
    if total == 0:
        _warn("lesion_detection_rate: no reference lesions")
        return {"detected": 0, "total": 0, "rate": float("nan")}
    return {"detected": detected, "total": total, "rate": detected / total}


# ---------------------------------------------------------------------------------------- tests


def wilcoxon_dice(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Paired two-sided Wilcoxon signed-rank test of two methods' per-item Dice (seed 000).

    Args:
        a: (N,) Dice per item of method A.
        b: (N,) Dice per item of method B, same items in the same order.

    Returns:
        ``(statistic, p_value)``; ``(nan, nan)`` with a warning when fewer than two pairs remain or all
        differences are zero. Pairs with a NaN on either side are dropped.

    Raises:
        ValueError: if the lengths differ.

    >>> stat, p = wilcoxon_dice([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.2, 0.35, 0.33, 0.5, 0.8, 0.9])
    >>> round(p, 4)
    0.0312
    """
    from scipy.stats import wilcoxon

    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    _same_shape(x, y, "a", "b")
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if x.size < 2 or np.all(x == y):
        _warn(f"wilcoxon_dice: {x.size} pairs, all differences zero or too few pairs; test undefined")
        return float("nan"), float("nan")
    res = wilcoxon(x, y)
    return float(res.statistic), float(res.pvalue)


def per_kind_auroc(
    scores: np.ndarray, kinds: Sequence[str] | np.ndarray, healthy: str = "healthy"
) -> dict[str, float]:
    """AUROC of each lesion kind against the healthy items (seed 002 Table 1, seed 004 Table 2).

    A scan whose kind joins several kinds with ``+`` (``"sdh+fracture"``) counts for each of them.

    Args:
        scores: (N,) scan (or slice) anomaly scores.
        kinds: (N,) kind per item; ``healthy`` marks the normal ones.
        healthy: the name of the normal kind.

    Returns:
        ``{kind: AUROC}`` sorted by kind (``nan`` with a warning where there are no healthy items).

    >>> per_kind_auroc(np.array([0.1, 0.2, 0.9, 0.15, 0.5]), ["healthy", "healthy", "iph", "sdh", "iph+sdh"])
    {'iph': 1.0, 'sdh': 0.75}
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    k = np.asarray(kinds).astype(str).ravel()
    _same_shape(s, k, "scores", "kinds")
    is_h = k == healthy
    parts = [set(x.split("+")) if x != healthy else set() for x in k]
    names = sorted(set().union(*parts)) if parts else []
    out: dict[str, float] = {}
    for name in names:
        has = np.array([name in p for p in parts])
        sel = is_h | has
        out[name] = roc_auc(s[sel], has[sel].astype(np.int8))
    return out


# ------------------------------------------------------------------------------ reconstruction


def recon_error_stats(
    x: np.ndarray,
    x_hat: np.ndarray,
    value_range: tuple[float, float] = (0.0, 1.0),
    mask: np.ndarray | None = None,
) -> dict[str, float]:
    """Reconstruction error statistics on intensities normalised to [0, 1] (seed 000, Sec. 3).

    Args:
        x: (N, *spatial) or (*spatial) inputs.
        x_hat: same shape, reconstructions.
        value_range: the (low, high) intensity range of ``x`` mapped to [0, 1], e.g. ``(-1, 1)`` for model
            range; values are *not* clipped.
        mask: optional same-shape mask of the pixels that count.

    Returns:
        Pooled over all (masked) pixels: ``rmse``, ``mean_abs``, ``sd_abs`` (population SD), ``p90_abs``
        (90th percentile of |x − x̂|), plus ``rmse_item_mean`` (mean over items of each item's RMSE; equals
        ``rmse`` for a single item) and ``n_pixels``.

    >>> s = recon_error_stats(np.array([[0.0, 1.0]]), np.array([[0.0, 0.5]]))
    >>> s["rmse"], s["mean_abs"], s["sd_abs"]
    (0.3535533905932738, 0.25, 0.25)
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(x_hat, dtype=np.float64)
    _same_shape(a, b, "x", "x_hat")
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise ValueError(f"value_range must be increasing, got {value_range}")
    d = np.abs(a - b) / (hi - lo)
    if mask is not None:
        m = np.asarray(mask) != 0
        _same_shape(a, m, "x", "mask")
    else:
        m = np.ones(d.shape, bool)
    sel = d[m]
    if sel.size == 0:
        _warn("recon_error_stats: no pixels")
        nan = float("nan")
        return {"rmse": nan, "mean_abs": nan, "sd_abs": nan, "p90_abs": nan, "rmse_item_mean": nan, "n_pixels": 0}
    if d.ndim >= 2:
        dd = d.reshape(d.shape[0], -1)
        mm = m.reshape(m.shape[0], -1)
        cnt = mm.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.sqrt((dd**2 * mm).sum(1) / cnt)
        rmse_items = float(np.nanmean(per[cnt > 0]))
    else:
        rmse_items = float(np.sqrt(np.mean(sel**2)))
    return {
        "rmse": float(np.sqrt(np.mean(sel**2))),
        "mean_abs": float(sel.mean()),
        "sd_abs": float(sel.std()),
        "p90_abs": float(np.percentile(sel, 90)),
        "rmse_item_mean": rmse_items,
        "n_pixels": int(sel.size),
    }


# ------------------------------------------------------------------------------------------- FID


def _mean_cov(feats: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{name} must be (N, D) features, got shape {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples for a covariance, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError(f"{name} contains non-finite values")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _sqrtm_psd(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance of two Gaussians ``|μ1−μ2|² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})``.

    The trace of the matrix square root is computed as ``Σ sqrt(eig(Σ1^{1/2} Σ2 Σ1^{1/2}))`` — the same
    value as ``scipy.linalg.sqrtm(Σ1 Σ2)`` but from symmetric eigen-decompositions, so it stays real and
    stable for the rank-deficient covariances that small sample sizes give.

    >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2))
    2.0
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    _same_shape(mu1, mu2, "mu1", "mu2")
    _same_shape(s1, s2, "sigma1", "sigma2")
    r1 = _sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    tr_covmean = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet (Inception) distance between two sets of features.

    Which network produced the features decides what the number means: report it with the extractor's
    ``name`` (see :mod:`ctad_core.nn.features`).

    Args:
        feats_a: (N_a, D) features of set A (e.g. generated images).
        feats_b: (N_b, D) features of set B (e.g. real healthy images).

    Returns:
        FID (≥ 0 up to rounding).

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(500, 3))
    >>> round(fid(a, a), 6)
    0.0
    """
    fa = np.asarray(feats_a)
    fb = np.asarray(feats_b)
    if fa.ndim != 2 or fb.ndim != 2 or fa.shape[1] != fb.shape[1]:
        raise ValueError(f"feats_a has shape {fa.shape} but feats_b has shape {fb.shape}; need (N, D) with the same D")
    mu_a, s_a = _mean_cov(fa, "feats_a")
    mu_b, s_b = _mean_cov(fb, "feats_b")
    return frechet_distance(mu_a, s_a, mu_b, s_b)


def fid_infinity(
    feats_gen: np.ndarray,
    feats_real: np.ndarray,
    ns: Sequence[int] | None = None,
    num_points: int = 15,
    seed: int = 0,
) -> dict[str, object]:
    """Effectively unbiased FID∞ (Chong & Forsyth, CVPR 2020; the "unbiased FID" of seed 000).

    FID is biased upwards by an amount linear in 1/N for N generated samples. FID∞ computes FID on random
    subsets of N generated samples for several N (real statistics fixed, from all real samples), fits
    ``FID_N = FID∞ + slope / N`` by least squares and extrapolates to 1/N = 0 — as the authors' code does
    (their N runs from 5,000 to 50,000; here from ``max(2, N_gen // 5)`` to ``N_gen`` by default).

    Args:
        feats_gen: (N_gen, D) features of generated images.
        feats_real: (N_real, D) features of real images.
        ns: the subset sizes; default ``num_points`` evenly spaced sizes.
        num_points: how many sizes when ``ns`` is None.
        seed: seeds the random subsets.

    Returns:
        ``{"fid_inf": float, "slope": float, "ns": list[int], "fids": list[float]}``.

    >>> rng = np.random.default_rng(0)
    >>> out = fid_infinity(rng.normal(size=(400, 2)), rng.normal(size=(4000, 2)))
    >>> abs(out["fid_inf"]) < 0.05
    True
    """
    fg = np.asarray(feats_gen, dtype=np.float64)
    fr = np.asarray(feats_real, dtype=np.float64)
    if fg.ndim != 2 or fr.ndim != 2 or fg.shape[1] != fr.shape[1]:
        raise ValueError(f"feats_gen has shape {fg.shape} but feats_real has shape {fr.shape}; need (N, D) with the same D")
    n_gen = fg.shape[0]
    if ns is None:
        lo = max(2, n_gen // 5)
        ns = np.unique(np.linspace(lo, n_gen, num_points).astype(int))
    ns_arr = np.asarray(ns, dtype=int)
    if ns_arr.size < 2 or ns_arr.min() < 2 or ns_arr.max() > n_gen:
        raise ValueError(f"need >= 2 distinct subset sizes in [2, {n_gen}], got {ns_arr.tolist()}")
    mu_r, s_r = _mean_cov(fr, "feats_real")
    rng = np.random.default_rng(seed)
    fids = []
    for n in ns_arr:
        sub = fg[rng.permutation(n_gen)[:n]]
        mu_g, s_g = _mean_cov(sub, "feats_gen subset")
        fids.append(frechet_distance(mu_g, s_g, mu_r, s_r))
    x = 1.0 / ns_arr.astype(np.float64)
    slope, intercept = np.polyfit(x, np.asarray(fids), 1)
    return {"fid_inf": float(intercept), "slope": float(slope), "ns": ns_arr.tolist(), "fids": [float(f) for f in fids]}
