"""THE threshold rule of the report, the same for every method.

A method's threshold is chosen on its **validation** items with a lesion and applied unchanged to its test
items. Candidates are :data:`DICE_GRID` evenly spaced values from the lowest to the highest value of the
maps that are thresholded (member maps when the method votes) inside the evaluation mask of those
validation items (:func:`ctad_core.evaluation.metrics.threshold_grid`). For each candidate the method's
declared segmentation step (:func:`ctad_core.evaluation.segmentation.segment`: closing, vote, mask,
small components) is run, and the candidate with the best Dice wins (the lowest on ties):

- ``reduce="mean"``: the mean of the per-item Dice — seed 000's rule (Walluscheck 2024, Fig. 6);
- ``reduce="pooled"``: one Dice over all voxels of the items — seed 004's [DICE] (Luo 2023, Sec. 2.6,
  after Baur et al.).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ctad_core.evaluation.metrics import DiceSweep, threshold_grid
from ctad_core.evaluation.segmentation import (
    _select,
    declared_segmentation,
    is_plain_threshold,
    maps_for,
    segment,
    spatial_dims,
    threshold_equivalent_maps,
)
from ctad_core.results import MethodResults

#: size of the threshold grid (the report's and the notebooks' previews: one value, so their numbers match).
DICE_GRID = 200


def grid_for(
    res: MethodResults, items: np.ndarray, n: int = DICE_GRID, haemorrhage: bool = False
) -> np.ndarray:
    """The candidate thresholds for ``items``: ``n`` evenly spaced values over the thresholded maps.

    Args:
        res: the method's results.
        items: (N,) bool selection or indices (the validation items with a lesion).
        n: grid size.
        haemorrhage: grid over the ρ = max(·, 0) maps (see :func:`~ctad_core.evaluation.segmentation.maps_for`).

    Returns:
        (n,) increasing thresholds (fewer when the values are constant).
    """
    idx = _select(len(res.scan_id), items)
    src = maps_for(res, haemorrhage)
    vals = src[:, idx] if src.ndim == res.maps.ndim + 1 else src[idx]
    if res.brain is not None:
        b = res.brain[idx] != 0
        vals = vals[:, b] if vals.ndim == b.ndim + 1 else vals[b]
    return threshold_grid(vals, n)


def dice_counts(
    res: MethodResults, items: np.ndarray, thresholds: np.ndarray, haemorrhage: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item and threshold: predicted voxels |P|, true positives |P ∩ T|, and reference voxels |T|.

    The prediction is the method's declared segmentation at each threshold. A plain threshold (no closing,
    vote or components) is counted for all thresholds at once by sorting; any other step through
    :func:`_stepped_counts`. Both give the numbers of :func:`~ctad_core.evaluation.segmentation.segment`
    at every threshold, faster.

    Returns:
        ``(n_pred, n_tp, n_true)``, each (n_items, K) int64.
    """
    idx = _select(len(res.scan_id), items)
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    if res.lesion is None:
        raise ValueError(f"{res.name}: results have no lesion reference")
    les = res.lesion[idx].reshape(len(idx), -1) != 0
    n_true = np.repeat(les.sum(1, keepdims=True), thr.size, axis=1).astype(np.int64)
    n_pred = np.zeros((len(idx), thr.size), np.int64)
    n_tp = np.zeros((len(idx), thr.size), np.int64)
    if is_plain_threshold(res):
        m = maps_for(res, haemorrhage)[idx].reshape(len(idx), -1).astype(np.float64)
        b = np.ones(m.shape, bool) if res.brain is None else res.brain[idx].reshape(len(idx), -1) != 0
        for i in range(len(idx)):
            inside = np.sort(m[i][b[i]])
            hit = np.sort(m[i][b[i] & les[i]])
            n_pred[i] = inside.size - np.searchsorted(inside, thr, side="left")
            n_tp[i] = hit.size - np.searchsorted(hit, thr, side="left")
        return n_pred, n_tp, n_true
    seg = declared_segmentation(res)
    return _stepped_counts(res, idx, thr, haemorrhage, int(seg["min_component_size"])) + (n_true,)


def _stepped_counts(
    res: MethodResults, idx: np.ndarray, thr: np.ndarray, haemorrhage: bool, min_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(n_pred, n_tp)`` of :func:`dice_counts` for a declared step with closing, vote or small components.

    Exactly :func:`~ctad_core.evaluation.segmentation.segment`'s segmentation at every threshold, from one
    :func:`~ctad_core.evaluation.segmentation.threshold_equivalent_maps` E per item (compared in its precision,
    as ``segment`` compares): without component removal the counts of {E ≥ t} inside the mask come from one
    sort per item; with it (seed 004) the components of {E ≥ t} are labelled per threshold inside the bounding
    box of the item's mask (nothing outside it is predicted, so no component is cut) and counted from their
    sizes (face connectivity, as :func:`ctad_core.anomaly.remove_small_components`). Thresholds above an item's
    largest in-mask value give 0. Through ``segment`` threshold by threshold, seed 004's test sweep over 128
    volumes of 64³ took ~100 s and seed 000's vote with closing ~15 s on the project's CPU.
    """
    if res.brain is not None and res.brain.shape != res.maps.shape:
        raise ValueError(f"{res.name}: brain has shape {res.brain.shape}, maps {res.maps.shape}")
    e_all = threshold_equivalent_maps(res, idx, haemorrhage)
    thr = thr.astype(e_all.dtype)  # segment() compares in the maps' precision
    st = ndimage.generate_binary_structure(spatial_dims(res), 1)
    n_pred = np.zeros((len(idx), thr.size), np.int64)
    n_tp = np.zeros((len(idx), thr.size), np.int64)
    for i, j in enumerate(idx):
        e = e_all[i]
        b = np.ones(e.shape, bool) if res.brain is None else np.asarray(res.brain[j]) != 0
        les = np.asarray(res.lesion[j]) != 0
        if min_size <= 1:
            inside, hit = np.sort(e[b]), np.sort(e[b & les])
            n_pred[i] = inside.size - np.searchsorted(inside, thr, side="left")
            n_tp[i] = hit.size - np.searchsorted(hit, thr, side="left")
            continue
        box = ndimage.find_objects(b.astype(np.int8))
        if not box or box[0] is None:
            continue
        e, b, les = e[box[0]], b[box[0]], les[box[0]]
        top = e[b].max()
        for k, t in enumerate(thr):
            if t > top:
                continue
            lab, n = ndimage.label((e >= t) & b, structure=st)
            if n == 0:
                continue
            sizes = np.bincount(lab.ravel(), minlength=n + 1)
            keep = sizes >= min_size
            keep[0] = False
            n_pred[i, k] = sizes[keep].sum()
            n_tp[i, k] = np.count_nonzero(keep[lab[les]])
    return n_pred, n_tp


def sweep(
    res: MethodResults,
    items: np.ndarray,
    thresholds: int | np.ndarray = DICE_GRID,
    reduce: str = "mean",
    haemorrhage: bool = False,
) -> DiceSweep:
    """Dice of the method's declared segmentation against the threshold, on ``items`` (seed 000 Fig. 6).

    Args:
        res: the method's results.
        items: (N,) bool selection or indices of the items (with a lesion) to score.
        thresholds: a grid size (see :func:`grid_for`) or explicit increasing thresholds.
        reduce: ``"mean"`` (mean per-item Dice) or ``"pooled"`` (one Dice over all voxels of the items).
        haemorrhage: use the ρ = max(·, 0) maps.

    Returns:
        A :class:`~ctad_core.evaluation.metrics.DiceSweep` (``per_item`` (n, K) for ``"mean"``); its
        ``best_threshold`` is the rule's choice (the lowest on ties).

    Raises:
        ValueError: no items, an unknown ``reduce``, decreasing thresholds.
    """
    if reduce not in ("mean", "pooled"):
        raise ValueError(f"reduce must be 'mean' or 'pooled', got {reduce!r}")
    idx = _select(len(res.scan_id), items)
    if idx.size == 0:
        raise ValueError(f"{res.name}: no items to choose a threshold on")
    if isinstance(thresholds, (int, np.integer)):
        thr = grid_for(res, idx, int(thresholds), haemorrhage)
    else:
        thr = np.asarray(thresholds, dtype=np.float64).ravel()
        if thr.size == 0 or np.any(np.diff(thr) < 0):
            raise ValueError("thresholds must be a non-empty increasing sequence")
    return sweeps_from_counts(thr, *dice_counts(res, idx, thr, haemorrhage), reduces=(reduce,))[reduce]


def sweeps_from_counts(
    thresholds: np.ndarray,
    n_pred: np.ndarray,
    n_tp: np.ndarray,
    n_true: np.ndarray,
    reduces: tuple[str, ...] = ("mean", "pooled"),
) -> dict[str, DiceSweep]:
    """Dice sweeps reduced both ways from one set of :func:`dice_counts` (the segmentation runs once).

    Returns:
        ``{reduce: DiceSweep}`` for each of ``reduces`` (``"mean"``, ``"pooled"``).
    """
    thr = np.asarray(thresholds, dtype=np.float64)
    out = {}
    for reduce in reduces:
        per_item = None
        with np.errstate(invalid="ignore", divide="ignore"):
            if reduce == "pooled":
                denom = (n_pred + n_true).sum(0).astype(np.float64)
                curve = np.where(denom > 0, 2.0 * n_tp.sum(0) / np.maximum(denom, 1), 1.0)
            else:
                denom = (n_pred + n_true).astype(np.float64)
                per_item = np.where(denom > 0, 2.0 * n_tp / np.maximum(denom, 1), 1.0)
                curve = per_item.mean(0)
        best = int(np.argmax(curve))
        out[reduce] = DiceSweep(thr, curve, float(thr[best]), float(curve[best]), reduce, per_item)
    return out


def sweep_both(
    res: MethodResults, items: np.ndarray, n: int = DICE_GRID, haemorrhage: bool = False
) -> dict[str, DiceSweep]:
    """:func:`sweep` with ``reduce="mean"`` and ``"pooled"`` on the same items and grid, segmenting once."""
    idx = _select(len(res.scan_id), items)
    if idx.size == 0:
        raise ValueError(f"{res.name}: no items to choose a threshold on")
    thr = grid_for(res, idx, int(n), haemorrhage)
    return sweeps_from_counts(thr, *dice_counts(res, idx, thr, haemorrhage))


def healthy_fpr_threshold(
    res: MethodResults, healthy_items: np.ndarray, fpr: float = 0.01, haemorrhage: bool = False
) -> tuple[float, float]:
    """The unsupervised rule: the threshold at which the method's segmentation flags ``fpr`` of healthy voxels.

    Only healthy validation items are used (no labelled lesion). For a plain threshold this is the exact
    upper quantile of their in-mask map values
    (:func:`~ctad_core.evaluation.unsupervised.quantile_threshold`); with a declared segmentation step
    (closing, vote, small components — each non-increasing in the threshold) it is the smallest candidate
    whose segmentation flags at most ``fpr`` of the in-mask voxels, found by bisection
    (:func:`~ctad_core.evaluation.unsupervised.threshold_at_healthy_fpr`) over quantiles of the healthy
    values, dense around the ``1 − fpr`` quantile.

    Args:
        res: the method's results.
        healthy_items: (N,) bool selection or indices of healthy validation items.
        fpr: target fraction of healthy in-mask voxels flagged, in [0, 1).
        haemorrhage: threshold the ρ = max(·, 0) maps (see
            :func:`~ctad_core.evaluation.segmentation.maps_for`).

    Returns:
        ``(threshold, achieved fraction of healthy in-mask voxels flagged)``.

    Raises:
        ValueError: no healthy items, an empty mask, ``fpr`` outside [0, 1).
    """
    from ctad_core.evaluation.unsupervised import quantile_threshold, threshold_at_healthy_fpr

    idx = _select(len(res.scan_id), healthy_items)
    if idx.size == 0:
        raise ValueError(f"{res.name}: no healthy validation items to set a threshold on")
    src = maps_for(res, haemorrhage)
    brain = None if res.brain is None else res.brain[idx] != 0
    n_mask = int(brain.sum()) if brain is not None else int(np.prod(res.maps[idx].shape))
    if is_plain_threshold(res):
        t = quantile_threshold(src[idx], brain, fpr)
        m = src[idx] if brain is None else src[idx][brain]
        return t, float((m >= t).sum() / max(n_mask, 1))
    if n_mask == 0:
        raise ValueError(f"{res.name}: no healthy voxel inside the evaluation mask")
    vals = src[:, idx] if src.ndim == res.maps.ndim + 1 else src[idx]
    if brain is not None:
        vals = vals[:, brain] if vals.ndim == brain.ndim + 1 else vals[brain]
    dt = src.dtype if np.issubdtype(src.dtype, np.floating) else np.dtype(np.float64)
    above_max = float(np.nextafter(dt.type(np.max(vals)), dt.type(np.inf)))  # in the maps' precision
    vals = np.asarray(vals, dtype=np.float64).ravel()
    if vals.size > 2_000_000:  # the grid only needs the distribution: a fixed stride keeps it deterministic
        vals = vals[:: int(np.ceil(vals.size / 2_000_000))]
    levels = np.clip(np.r_[np.linspace(0.0, 1.0, 201), 1.0 - fpr * np.linspace(0.0, 8.0, 321)], 0.0, 1.0)
    grid = np.r_[np.quantile(vals, np.unique(levels)), above_max]

    def flagged(t: float) -> float:
        return float(segment(res, t, idx, haemorrhage).sum() / n_mask)

    return threshold_at_healthy_fpr(flagged, grid, fpr)


def choose_threshold(
    res: MethodResults,
    val_items: np.ndarray,
    thresholds: int | np.ndarray = DICE_GRID,
    reduce: str = "mean",
    haemorrhage: bool = False,
) -> float:
    """THE rule: the threshold with the best Dice of the declared segmentation on the validation items.

    Args:
        res: the method's results.
        val_items: (N,) bool selection or indices of the validation items with a lesion.
        thresholds, reduce, haemorrhage: see :func:`sweep`.

    Returns:
        The chosen threshold; apply it unchanged to the test items with
        :func:`~ctad_core.evaluation.segmentation.segment`.
    """
    return sweep(res, val_items, thresholds, reduce, haemorrhage).best_threshold
