"""Thresholds an unsupervised user can choose: from healthy validation scans only.

The default operating point of the workbook flags at most a fixed fraction ``fpr`` (e.g. 1 %) of the healthy
validation scans' evaluation-mask voxels — no labelled lesion is used. Segmentation steps (closing, vote,
small-component removal) only ever remove voxels as the threshold rises, so the flagged fraction is
non-increasing in the threshold and a bisection over a sorted grid finds the smallest threshold that meets
the target.

>>> import numpy as np
>>> healthy = np.arange(100, dtype=float).reshape(1, 10, 10)
>>> t = quantile_threshold(healthy, None, fpr=0.05)
>>> t, float((healthy >= t).mean())
(95.0, 0.05)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def quantile_threshold(maps: np.ndarray, mask: np.ndarray | None, fpr: float) -> float:
    """The smallest threshold t with mean(maps >= t) <= ``fpr`` over the in-mask voxels of healthy items.

    Exact for plain thresholding (no segmentation step): the ⌈(1 − fpr)·n⌉-th smallest in-mask value
    when that leaves at most fpr·n voxels at or above it, else the next larger distinct value.

    Args:
        maps: (N, ...) anomaly maps of healthy items. mask: (N, ...) evaluation mask or None.
        fpr: target false-positive rate in [0, 1).

    Raises:
        ValueError: ``fpr`` outside [0, 1), mask shape differs, or no voxel in the mask.
    """
    if not 0.0 <= fpr < 1.0:
        raise ValueError(f"fpr must be in [0, 1), got {fpr}")
    maps = np.asarray(maps)
    if mask is not None and np.shape(mask) != maps.shape:
        raise ValueError(f"mask {np.shape(mask)} and maps {maps.shape} differ in shape")
    v = np.sort((maps if mask is None else maps[np.asarray(mask) != 0]).astype(np.float64).ravel())
    if v.size == 0:
        raise ValueError("no healthy voxel inside the evaluation mask")
    # "above the largest value" in the maps' own precision: float32 maps compare against a float threshold
    # in float32, where float64's next value would round back onto the largest value and flag it
    dt = maps.dtype if np.issubdtype(maps.dtype, np.floating) else np.dtype(np.float64)
    above_max = float(np.nextafter(dt.type(v[-1]), dt.type(np.inf)))
    allowed = int(np.floor(fpr * v.size + 1e-9))  # voxels that may be flagged
    if allowed == 0:
        return above_max
    t = v[v.size - allowed]
    if v.size - np.searchsorted(v, t, "left") > allowed:  # ties at t would flag too many: the next value up
        j = np.searchsorted(v, t, "right")
        t = v[j] if j < v.size else above_max
    return float(t)


def threshold_at_healthy_fpr(
    flagged_fraction: Callable[[float], float], grid: np.ndarray, fpr: float
) -> tuple[float, float]:
    """The smallest grid threshold whose healthy flagged fraction is at most ``fpr`` (bisection).

    Args:
        flagged_fraction: t ↦ fraction of healthy in-mask voxels the method's full segmentation step flags
            at threshold t; must be non-increasing in t.
        grid: (K,) candidate thresholds (sorted here).
        fpr: target in [0, 1).

    Returns:
        (threshold, achieved fraction); the grid's largest value and its fraction when none meets the target.

    Raises:
        ValueError: empty grid or ``fpr`` outside [0, 1).
    """
    if not 0.0 <= fpr < 1.0:
        raise ValueError(f"fpr must be in [0, 1), got {fpr}")
    g = np.unique(np.asarray(grid, dtype=np.float64))
    if g.size == 0:
        raise ValueError("empty threshold grid")
    lo, hi = 0, g.size - 1
    f_hi = flagged_fraction(float(g[hi]))
    if f_hi > fpr:
        return float(g[hi]), float(f_hi)
    best = (float(g[hi]), float(f_hi))
    while lo < hi:
        mid = (lo + hi) // 2
        f = flagged_fraction(float(g[mid]))
        if f <= fpr:
            hi, best = mid, (float(g[mid]), float(f))
        else:
            lo = mid + 1
    return best
