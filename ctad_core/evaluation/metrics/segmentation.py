"""Segmentation metrics: Dice, Dice against the threshold, the threshold grid, lesion detection.

Conventions: see :mod:`ctad_core.evaluation.metrics`. Per-item Dice is computed on the items that have a
lesion; a threshold ``t`` predicts ``map >= t``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ctad_core.evaluation.metrics._common import _same_shape, _warn


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


def threshold_grid(values: np.ndarray, n: int) -> np.ndarray:
    """``n`` evenly spaced thresholds from the lowest to the highest of ``values`` (the evaluator's grid).

    Args:
        values: the scores that will be thresholded (any shape; e.g. a map's values inside the mask).
        n: grid size (>= 1).

    Returns:
        (n,) increasing thresholds; one threshold when all values are equal, ``[0.0]`` for no values.

    >>> threshold_grid(np.array([0.5, 1.0, 0.0]), 3).tolist()
    [0.0, 0.5, 1.0]
    >>> threshold_grid(np.array([]), 5).tolist()
    [0.0]
    """
    s = np.asarray(values)
    if int(n) < 1:
        raise ValueError(f"threshold_grid: n must be >= 1, got {n}")
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
        thr = threshold_grid(m[sel] if sel is not None else m.ravel(), int(thresholds))
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
