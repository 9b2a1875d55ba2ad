"""Uncertainty of headline figures: bootstrap intervals resampled by patient, and paired comparisons.

Items (scans, slices, volumes) of one patient are not independent, so every interval here resamples
**patients** (clusters) with replacement and keeps all of a drawn patient's items (the cluster bootstrap,
Field & Welsh 2007; as recommended for medical-imaging metrics by e.g. Maier-Hein et al. 2024, "Metrics
reloaded"). Intervals are percentile intervals of ``n_boot`` resamples. A comparison of two methods on the
same items is **paired**: each resample draws the same patients for both, and the interval is that of the
difference.

Pixel metrics over millions of voxels are bootstrapped through per-item histograms of positive and negative
scores on shared bin edges (:func:`pixel_histograms`): a resample sums its items' histograms, and AUROC /
average precision come from the binned curves. The point estimate is always computed exactly elsewhere; the
bins only move the interval's ends by at most a bin's worth of ties.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> groups = np.repeat(np.arange(30), 2)
>>> x = rng.normal(size=60)
>>> ci = bootstrap_ci(lambda idx: float(x[idx].mean()), groups, n_boot=500, seed=1)
>>> bool(ci.low < x.mean() < ci.high)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A figure with its bootstrap interval.

    Attributes:
        estimate: the statistic on all items.
        low, high: the percentile interval's ends (NaN when no resample gave a finite value).
        level: the interval's coverage, e.g. 0.95.
        n_boot: resamples drawn; n_valid: those with a finite statistic (a resample may hold one class only).
        n_groups: patients resampled.
    """

    estimate: float
    low: float
    high: float
    level: float
    n_boot: int
    n_valid: int
    n_groups: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


@dataclass(frozen=True)
class PairedComparison:
    """A − B on the same items, with its paired bootstrap interval and a two-sided bootstrap p-value.

    ``p_value`` = 2·min(P*(Δ ≤ 0), P*(Δ ≥ 0)) over the resamples (capped at 1): small when the interval of
    the difference lies clear of zero.
    """

    difference: Interval
    p_value: float

    def as_dict(self) -> dict[str, float]:
        return {**self.difference.as_dict(), "p_value": self.p_value}


def _group_index(groups: Sequence | np.ndarray) -> list[np.ndarray]:
    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(
            f"groups must be a non-empty 1-D array (one patient id per item), got shape {g.shape}"
        )
    _, inv = np.unique(g.astype(str), return_inverse=True)
    order = np.argsort(inv, kind="stable")
    bounds = np.flatnonzero(np.diff(inv[order])) + 1
    return np.split(order, bounds)


def _resamples(members: list[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    k = len(members)
    draws = rng.integers(0, k, size=(n_boot, k))
    return [np.concatenate([members[j] for j in row]) for row in draws]


def _interval(estimate: float, boots: np.ndarray, level: float, n_boot: int, n_groups: int) -> Interval:
    ok = boots[np.isfinite(boots)]
    a = (1.0 - level) / 2.0
    low, high = (float(np.quantile(ok, a)), float(np.quantile(ok, 1.0 - a))) if ok.size else (np.nan, np.nan)
    return Interval(float(estimate), low, high, level, n_boot, int(ok.size), n_groups)


def _check(n_boot: int, level: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    groups: Sequence | np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` resampling patients.

    Args:
        statistic: maps an (n,) int array of item indices (with repeats) to a float; e.g.
            ``lambda i: roc_auc(score[i], label[i])``. NaN results (a resample with one class) are dropped.
        groups: (N,) patient of each item.
        n_boot: resamples. level: coverage.
        seed: the resampling seed (the same seed draws the same patients for every statistic).

    Returns:
        :class:`Interval` (estimate = ``statistic(arange(N))``).

    Raises:
        ValueError: empty or non-1-D ``groups``, ``n_boot < 1`` or ``level`` outside (0, 1).
    """
    _check(n_boot, level)
    members = _group_index(groups)
    n = len(np.asarray(groups))
    est = statistic(np.arange(n))
    boots = np.array([statistic(idx) for idx in _resamples(members, n_boot, seed)], dtype=np.float64)
    return _interval(est, boots, level, n_boot, len(members))


def paired_bootstrap(
    statistic_a: Callable[[np.ndarray], float],
    statistic_b: Callable[[np.ndarray], float],
    groups: Sequence | np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Paired bootstrap of A − B on the same items (same patients drawn for both).

    Args: as :func:`bootstrap_ci`, with one statistic per method over the same item indices.

    Returns:
        :class:`PairedComparison`.
    """
    _check(n_boot, level)
    members = _group_index(groups)
    n = len(np.asarray(groups))
    est = statistic_a(np.arange(n)) - statistic_b(np.arange(n))
    boots = np.array([statistic_a(i) - statistic_b(i) for i in _resamples(members, n_boot, seed)], np.float64)
    return _paired(est, boots, level, n_boot, len(members))


# ------------------------------------------------------------------------------- vectorised resamples


def resample_weights(groups: Sequence | np.ndarray, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """How often each item appears in each resample: the same patients :func:`bootstrap_ci` draws.

    A statistic that takes item weights (a weighted AUROC, a sum of histograms) then computes all resamples
    at once; with the same ``seed`` its interval equals :func:`bootstrap_ci`'s on the same statistic.

    Args:
        groups: (N,) patient of each item.
        n_boot: resamples. seed: the resampling seed.

    Returns:
        (n_boot, N) int64 multiplicities (an item's weight is its patient's number of draws).

    Raises:
        ValueError: empty or non-1-D ``groups`` or ``n_boot < 1``.
    """
    _check(n_boot, 0.5)
    members = _group_index(groups)
    k = len(members)
    draws = np.random.default_rng(seed).integers(0, k, size=(n_boot, k))
    counts = np.zeros((n_boot, k), np.int64)
    np.add.at(counts, (np.repeat(np.arange(n_boot), k), draws.ravel()), 1)
    group_of = np.empty(sum(len(m) for m in members), np.int64)
    for j, m in enumerate(members):
        group_of[m] = j
    return counts[:, group_of]


def weighted_auroc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of every row of item weights at once (Mann–Whitney with ties counted one half).

    With integer weights (multiplicities) this equals scikit-learn's ``roc_auc_score`` on the items
    repeated that often.

    Args:
        scores: (N,) scores (higher = abnormal). labels: (N,) 0/1. weights: (B, N) or (N,) non-negative.

    Returns:
        (B,) AUROCs (a 0-d array for 1-D weights); NaN where a row gives no weight to one class.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel() != 0
    w = np.asarray(weights, dtype=np.float64)
    if s.shape != y.shape or w.shape[-1] != s.size:
        raise ValueError(f"scores {s.shape}, labels {y.shape} and weights {w.shape} do not match")
    sp, sn = s[y], s[~y]
    c = (sp[:, None] > sn[None, :]) + 0.5 * (sp[:, None] == sn[None, :])  # (P, Q)
    wp, wn = w[..., y], w[..., ~y]
    num = np.einsum("...p,pq,...q->...", wp, c, wn)
    den = wp.sum(-1) * wn.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def auroc_interval(
    scores: np.ndarray,
    labels: np.ndarray,
    groups: Sequence | np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Patient-resampled interval of the AUROC (vectorised; equal to :func:`bootstrap_ci` of the AUROC)."""
    _check(n_boot, level)
    w = resample_weights(groups, n_boot, seed)
    est = float(weighted_auroc(scores, labels, np.ones(w.shape[1])))
    return _interval(
        est, weighted_auroc(scores, labels, w), level, n_boot, len(np.unique(np.asarray(groups).astype(str)))
    )


def paired_auroc(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    labels: np.ndarray,
    groups: Sequence | np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Paired bootstrap of AUROC(A) − AUROC(B) on the same items (vectorised :func:`paired_bootstrap`).

    Args:
        scores_a, scores_b: (N,) the two methods' scores of the same items. labels: (N,) 0/1.
        groups: (N,) patient of each item. n_boot, level, seed: as :func:`bootstrap_ci`.

    Returns:
        :class:`PairedComparison` (p-value as :func:`paired_bootstrap`'s).
    """
    _check(n_boot, level)
    w = resample_weights(groups, n_boot, seed)
    one = np.ones(w.shape[1])
    est = float(weighted_auroc(scores_a, labels, one) - weighted_auroc(scores_b, labels, one))
    boots = weighted_auroc(scores_a, labels, w) - weighted_auroc(scores_b, labels, w)
    return _paired(est, boots, level, n_boot, len(np.unique(np.asarray(groups).astype(str))))


def _paired(est: float, boots: np.ndarray, level: float, n_boot: int, n_groups: int) -> PairedComparison:
    diff = _interval(est, boots, level, n_boot, n_groups)
    ok = boots[np.isfinite(boots)]
    p = float(min(1.0, 2.0 * min((ok <= 0).mean(), (ok >= 0).mean()))) if ok.size else float("nan")
    return PairedComparison(diff, p)


# ----------------------------------------------------------------------------------- sizing a test set


def hanley_mcneil_se(auroc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an empirical AUROC from ``n_pos`` positives and ``n_neg`` negatives.

    Hanley & McNeil 1982 ("The meaning and use of the area under a ROC curve", Radiology 143:29, eq. 1 with
    their exponential approximations Q1 = A / (2 − A), Q2 = 2A² / (1 + A))::

        SE² = [A(1 − A) + (n_pos − 1)(Q1 − A²) + (n_neg − 1)(Q2 − A²)] / (n_pos · n_neg)

    Used to size a test set before any model exists (:func:`auroc_half_width`); the report's intervals are
    bootstrap intervals (:func:`auroc_interval`), not this formula.

    Args:
        auroc: the design AUROC A, in (0, 1).
        n_pos, n_neg: positives (lesioned items of one kind) and negatives (healthy items), each ≥ 1.

    Returns:
        The standard error (AUROC units).

    Raises:
        ValueError: if ``auroc`` is not in (0, 1) or a count is below 1.
    """
    a = float(auroc)
    if not 0.0 < a < 1.0:
        raise ValueError(f"auroc must lie in (0, 1), got {auroc}")
    if int(n_pos) < 1 or int(n_neg) < 1:
        raise ValueError(f"n_pos and n_neg must be >= 1, got {n_pos} and {n_neg}")
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return float(np.sqrt(var))


def auroc_half_width(auroc: float, n_pos: int, n_neg: int, level: float = 0.95) -> float:
    """Expected half-width of a normal-approximation ``level`` interval of the AUROC (:func:`hanley_mcneil_se`
    times the normal quantile, 1.96 at 95 %): what a test set of that size lets one resolve per lesion kind.

    >>> round(auroc_half_width(0.8, 16, 40), 3)   # the quick profile's design: 16 per kind, 40 healthy
    0.141
    """
    from scipy.stats import norm

    _check(1, level)
    return float(norm.ppf(0.5 + level / 2.0) * hanley_mcneil_se(auroc, n_pos, n_neg))


# ------------------------------------------------------------------------------------------ pixel metrics


def pixel_histograms(
    maps: np.ndarray, lesion: np.ndarray, mask: np.ndarray | None, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-item histograms of lesion and normal pixel scores inside ``mask``.

    Args:
        maps: (N, ...) scores. lesion: (N, ...) truth (non-zero = lesion). mask: (N, ...) evaluation mask or
            None (all pixels). edges: (B + 1,) increasing bin edges (e.g. quantiles of the pooled scores).

    Returns:
        (pos, neg): (N, B) int64 counts.

    Raises:
        ValueError: shapes differ or edges are not increasing.
    """
    maps, lesion = np.asarray(maps), np.asarray(lesion)
    if maps.shape != lesion.shape or (mask is not None and np.shape(mask) != maps.shape):
        raise ValueError(f"maps {maps.shape}, lesion {lesion.shape} and mask {np.shape(mask)} must match")
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be a 1-D increasing array of at least 2 values")
    nb = edges.size - 1
    pos = np.zeros((len(maps), nb), np.int64)
    neg = np.zeros((len(maps), nb), np.int64)
    for i in range(len(maps)):
        m = np.ones(maps[i].shape, bool) if mask is None else np.asarray(mask[i]) != 0
        s = maps[i][m].astype(np.float64)
        y = lesion[i][m] != 0
        b = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, nb - 1)
        pos[i] = np.bincount(b[y], minlength=nb)
        neg[i] = np.bincount(b[~y], minlength=nb)
    return pos, neg


def _binned_auroc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    p, n = pos.sum(-1), neg.sum(-1)
    neg_below = np.cumsum(neg, -1) - neg  # negatives in lower bins
    num = (pos * (neg_below + 0.5 * neg)).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((p > 0) & (n > 0), num / np.maximum(p * n, 1.0), np.nan)


def _binned_ap_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    p = pos.sum(-1, keepdims=True)
    tp = np.cumsum(pos[..., ::-1], -1)
    fp = np.cumsum(neg[..., ::-1], -1)
    precision = tp / np.maximum(tp + fp, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / np.maximum(p, 1.0)
    d_recall = np.diff(recall, axis=-1, prepend=0.0)
    return np.where(p[..., 0] > 0, (d_recall * precision).sum(-1), np.nan)


def binned_auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUROC from (B,) positive/negative counts per score bin (ties within a bin count one half)."""
    return float(_binned_auroc_rows(pos, neg))


def binned_average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision (step-wise, as scikit-learn's) from counts per score bin, thresholds at bin edges."""
    return float(_binned_ap_rows(pos, neg))


def score_edges(values: np.ndarray, bins: int = 1024, max_values: int = 2_000_000) -> np.ndarray:
    """Bin edges for :func:`pixel_histograms`: quantiles of the values and of their distinct values.

    Half the edges follow the values' distribution; the other half follow the distinct values, so a map that
    is mostly one value (a post-processed map that is 0 almost everywhere) keeps its tail resolved instead of
    putting every score into one bin. Above ``max_values`` a fixed stride of the values is used.

    Returns:
        (≤ bins + 1,) increasing edges.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size > max_values:
        v = v[:: int(np.ceil(v.size / max_values))]
    if v.size == 0:
        return np.array([0.0, 1.0])
    lv = np.linspace(0, 1, bins // 2 + 1)
    return np.unique(np.r_[np.quantile(v, lv), np.quantile(np.unique(v), lv)])


def pixel_bootstrap(
    maps: np.ndarray,
    lesion: np.ndarray,
    mask: np.ndarray | None,
    groups: Sequence | np.ndarray,
    bins: int = 1024,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Patient-resampled intervals of pixel AUROC and average precision inside ``mask``.

    Bin edges are quantiles of the pooled in-mask scores and of their distinct values (:func:`score_edges`);
    the estimates are the binned ones (within a bin's ties of the exact values, which the report computes
    beside them).

    Returns:
        ``{"pixel_auroc": Interval, "pixel_auprc": Interval}``.
    """
    edges = score_edges(
        np.asarray(maps)[np.ones(np.shape(maps), bool) if mask is None else np.asarray(mask) != 0], bins
    )
    if edges.size < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5]) if edges.size else np.array([0.0, 1.0])
    pos, neg = pixel_histograms(maps, lesion, mask, edges)
    _check(n_boot, level)
    w = resample_weights(groups, n_boot, seed).astype(np.float64)  # the patients bootstrap_ci would draw
    pos_b, neg_b = w @ pos, w @ neg  # (n_boot, bins): each resample's summed histograms
    k = len(np.unique(np.asarray(groups).astype(str)))
    out = {}
    for name, fn in (("pixel_auroc", _binned_auroc_rows), ("pixel_auprc", _binned_ap_rows)):
        out[name] = _interval(float(fn(pos.sum(0), neg.sum(0))), fn(pos_b, neg_b), level, n_boot, k)
    return out
