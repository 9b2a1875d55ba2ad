"""Classification metrics: ROC and PR curves, AUROC, AUPRC, operating points, per-kind AUROC.

Conventions: see :mod:`ctad_core.evaluation.metrics` (positive = anomalous, ``score >= t`` predicts
positive, ``nan`` and a :class:`MetricWarning` on one class only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctad_core.evaluation.metrics._common import _flat_scores, _same_shape, _warn


def _binary_clf_curve(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (fps, tps, thresholds) at each distinct score, highest first (as scikit-learn).

    Ties are collapsed to their last element, so the order within a tie does not matter: the unstable (and
    on millions of pixels twice as fast) quicksort gives the same curve as a stable sort.
    """
    order = np.argsort(s)[::-1]
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


def auroc_auprc(
    scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None, curve: bool = False
) -> dict[str, Any]:
    """:func:`roc_auc` and :func:`average_precision` (and, with ``curve``, :func:`roc_curve`'s fpr and tpr) from
    one sort of the scores: the same numbers, a third of the time on a test set's millions of pixels.

    Returns:
        ``{"auroc", "auprc"}`` (+ ``"fpr"``, ``"tpr"``), each ``nan`` (with a :class:`MetricWarning`) where
        the single function would give ``nan``.

    >>> d = auroc_auprc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    >>> d["auroc"], round(d["auprc"], 4)
    (0.75, 0.8333)
    """
    s, y = _flat_scores(scores, labels, mask)
    n_pos = int(y.sum())
    out: dict[str, Any] = {"auroc": float("nan"), "auprc": float("nan")}
    if s.size == 0:
        _warn("auroc_auprc: no elements (empty input or mask)")
        if curve:
            out.update(fpr=np.array([np.nan]), tpr=np.array([np.nan]))
        return out
    fps, tps, _ = _binary_clf_curve(s, y)
    if n_pos == 0 or n_pos == y.size:
        _warn(f"auroc_auprc: only one class present ({n_pos} positives of {y.size}); AUROC is undefined")
    else:
        out["auroc"] = float(np.trapezoid(np.r_[0, tps] / tps[-1], np.r_[0, fps] / fps[-1]))
    if n_pos == 0:
        _warn("auroc_auprc: no positive labels; AUPRC is undefined")
    else:
        out["auprc"] = float(np.sum(np.diff(np.r_[0.0, tps / tps[-1]]) * (tps / (tps + fps))))
    if curve:
        f, t = np.r_[0, fps].astype(np.float64), np.r_[0, tps].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["fpr"] = f / f[-1] if f[-1] > 0 else np.full_like(f, np.nan)
            out["tpr"] = t / t[-1] if t[-1] > 0 else np.full_like(t, np.nan)
    return out


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
