"""Statistics: paired tests of per-item Dice, summaries of per-item values, reconstruction-error statistics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ctad_core.evaluation.metrics._common import _same_shape, _warn


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
        return {
            "rmse": nan,
            "mean_abs": nan,
            "sd_abs": nan,
            "p90_abs": nan,
            "rmse_item_mean": nan,
            "n_pixels": 0,
        }
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


def summary(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """``n``, mean, SD and median of per-item values (e.g. Dice per test item), NaNs left out.

    The one convention of the report for per-item figures: the SD is the *sample* standard deviation
    (``ddof=1``, as seed 000's "mean Dice 0.62 ± 0.24" over test images), 0.0 for a single value; no values
    give ``n = 0`` and ``nan`` elsewhere.

    Args:
        values: (N,) per-item values.

    Returns:
        ``{"n", "mean", "sd", "median"}``.

    >>> summary([0.2, 0.4, 0.9])
    {'n': 3, 'mean': 0.5, 'sd': 0.36055512754639896, 'median': 0.4}
    >>> summary([np.nan])["n"]
    0
    """
    d = np.asarray(values, dtype=np.float64).ravel()
    d = d[~np.isnan(d)]
    if d.size == 0:
        return {"n": 0, "mean": float("nan"), "sd": float("nan"), "median": float("nan")}
    return {
        "n": int(d.size),
        "mean": float(d.mean()),
        "sd": float(d.std(ddof=1)) if d.size > 1 else 0.0,
        "median": float(np.median(d)),
    }


#: names of the three lesion-size groups of :func:`size_terciles`, smallest first.
TERCILES = ("small", "medium", "large")


def size_terciles(sizes: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split lesions into three size groups at the 1/3 and 2/3 quantiles of their sizes (issue 11, item 5).

    An item goes to ``small`` when its size is at most the 1/3 quantile, ``large`` when above the 2/3
    quantile, else ``medium`` (NumPy's default linear quantiles; ties stay in the lower group).

    Args:
        sizes: (N,) lesion sizes, e.g. voxels per test item with a lesion.

    Returns:
        ``(group, edges)``: (N,) int in {0, 1, 2} (index into :data:`TERCILES`) and the (2,) edges.

    Raises:
        ValueError: no sizes, or a NaN among them.

    >>> g, e = size_terciles([10, 20, 30, 40, 50, 60])
    >>> g.tolist(), e.tolist()
    ([0, 0, 1, 1, 2, 2], [26.666666666666664, 43.33333333333333])
    """
    v = np.asarray(sizes, dtype=np.float64).ravel()
    if v.size == 0 or np.isnan(v).any():
        raise ValueError(f"size_terciles needs non-empty sizes without NaN, got {v.size} values")
    edges = np.quantile(v, [1.0 / 3.0, 2.0 / 3.0])
    return np.searchsorted(edges, v, side="left").astype(np.int64), edges
