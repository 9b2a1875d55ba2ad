"""Healthy-FPR thresholds against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ctad_core.evaluation.unsupervised import quantile_threshold, threshold_at_healthy_fpr


def test_quantile_threshold_by_hand() -> None:
    v = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]])
    assert quantile_threshold(v, None, 0.2) == 9.0  # flags 9 and 10: 20 %
    assert quantile_threshold(v, None, 0.25) == 9.0  # 2.5 voxels allowed → 2
    assert quantile_threshold(v, None, 0.0) > 10.0  # nothing flagged
    mask = np.array([[1, 1, 1, 1, 1, 0, 0, 0, 0, 0]])
    assert quantile_threshold(v, mask, 0.2) == 5.0  # only 1..5 count


def test_quantile_threshold_with_ties_never_exceeds_the_target() -> None:
    v = np.array([[0.0] * 90 + [1.0] * 10 + [2.0] * 0])
    t = quantile_threshold(v, None, 0.05)
    assert (v >= t).mean() <= 0.05  # the ten 1.0s cannot be split: nothing flagged
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.integers(0, 5, (3, 7, 7)).astype(float)
        f = rng.uniform(0, 0.5)
        t = quantile_threshold(m, None, f)
        assert (m >= t).mean() <= f + 1e-12
        # and it is the smallest such value among the data's values
        smaller = np.unique(m)[np.unique(m) < t]
        if smaller.size:
            assert (m >= smaller[-1]).mean() > f


def test_bisection_with_a_segmentation_step_matches_a_full_scan() -> None:
    rng = np.random.default_rng(1)
    healthy = ndimage.gaussian_filter(rng.normal(size=(4, 32, 32)), (0, 1.5, 1.5))

    def flagged(t: float) -> float:  # threshold, then an opening (removes specks): non-increasing in t
        seg = ndimage.binary_opening(healthy >= t, structure=np.ones((1, 2, 2)))
        return float(seg.mean())

    grid = np.linspace(healthy.min(), healthy.max(), 200)
    t, f = threshold_at_healthy_fpr(flagged, grid, 0.01)
    full = [g for g in grid if flagged(g) <= 0.01]
    assert t == pytest.approx(min(full)) and f <= 0.01


def test_refusals() -> None:
    with pytest.raises(ValueError):
        quantile_threshold(np.zeros((1, 3)), None, 1.0)
    with pytest.raises(ValueError):
        quantile_threshold(np.zeros((1, 3)), np.zeros((1, 3)), 0.1)  # empty mask
    with pytest.raises(ValueError):
        threshold_at_healthy_fpr(lambda t: 0.0, np.array([]), 0.1)
