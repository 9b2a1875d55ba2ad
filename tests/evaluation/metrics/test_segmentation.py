"""Segmentation metrics against hand computations and brute force."""

from __future__ import annotations

import numpy as np
import pytest

from ctad_core.evaluation import metrics
from ctad_core.evaluation.metrics import MetricWarning


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------- Dice


def test_dice_hand_values_2d_and_3d():
    p = np.zeros((4, 4), np.uint8)
    t = np.zeros((4, 4), np.uint8)
    p[:2, :2] = 1  # 4 px
    t[:2, :3] = 1  # 6 px, overlap 4
    assert metrics.dice(p, t) == pytest.approx(8 / 10)
    assert metrics.dice(p[None], t[None]) == pytest.approx(0.8)  # 3D: same value
    assert metrics.dice(np.zeros((2, 3, 4)), np.zeros((2, 3, 4))) == 1.0
    assert np.isnan(metrics.dice(np.zeros(3), np.zeros(3), empty=np.nan))
    assert metrics.dice(np.ones(3), np.zeros(3)) == 0.0


def test_dice_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        metrics.dice(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\(2, 4, 4\).*\(3, 4, 4\)"):
        metrics.dice_per_item(np.zeros((2, 4, 4)), np.zeros((3, 4, 4)))


def test_dice_per_item_matches_loop():
    rng = _rng(1)
    p = rng.random((5, 6, 7, 3)) > 0.6
    t = rng.random((5, 6, 7, 3)) > 0.7
    t[2] = False
    p[2] = False
    got = metrics.dice_per_item(p, t)
    want = [metrics.dice(a, b) for a, b in zip(p, t)]
    np.testing.assert_allclose(got, want)
    assert got[2] == 1.0


# ------------------------------------------------------------------------------------ ROC and PR


def _brute_dice_curve(maps, targets, masks, thr, reduce):
    out = []
    for t in thr:
        pred = (maps >= t) & (masks != 0)
        if reduce == "pooled":
            out.append(metrics.dice(pred, targets))
        else:
            d = metrics.dice_per_item(pred, targets)
            out.append(d.mean() if reduce == "mean" else np.median(d))
    return np.array(out)


@pytest.mark.parametrize("reduce", ["pooled", "mean", "median"])
def test_dice_vs_threshold_matches_brute_force(reduce):
    rng = _rng(4)
    targets = np.zeros((6, 16, 16), np.uint8)
    for i in range(5):  # the last item is healthy
        r, c = rng.integers(2, 10, 2)
        targets[i, r : r + 5, c : c + 4] = 1
    maps = rng.random(targets.shape) * 0.6 + targets * rng.random(targets.shape) * 0.8
    masks = np.ones_like(targets)
    masks[:, :, :2] = 0
    thr = np.linspace(0, 1.4, 57)
    sw = metrics.dice_vs_threshold(maps, targets, masks, thr, reduce=reduce)
    np.testing.assert_allclose(sw.dice, _brute_dice_curve(maps, targets, masks, thr, reduce))
    assert sw.best_dice == pytest.approx(sw.dice.max())
    assert metrics.threshold_for_best_dice(maps, targets, masks, thr, reduce=reduce) == sw.best_threshold
    best, t = metrics.best_achievable_dice(maps, targets, masks, thr, reduce=reduce)
    assert best == pytest.approx(sw.dice.max()) and t == sw.best_threshold


def test_dice_vs_threshold_3d_default_grid_is_fast_on_a_million_voxels():
    rng = _rng(5)
    maps = rng.random((4, 64, 64, 64)).astype(np.float32)
    targets = maps > 0.97
    sw = metrics.dice_vs_threshold(maps, targets, thresholds=500, reduce="pooled")
    assert sw.thresholds.size == 500
    assert sw.best_dice == pytest.approx(1.0, abs=2e-3)
    assert sw.best_threshold == pytest.approx(0.97, abs=5e-3)


def test_dice_vs_threshold_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(2, 5\)"):
        metrics.dice_vs_threshold(np.zeros((2, 4)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="increasing"):
        metrics.dice_vs_threshold(np.zeros((2, 4)), np.zeros((2, 4)), thresholds=[0.5, 0.1])
    with pytest.raises(ValueError, match="reduce"):
        metrics.dice_vs_threshold(np.zeros((2, 4)), np.zeros((2, 4)), reduce="max")


# --------------------------------------------------------------------------------- operating points


def test_lesion_detection_rate_hand_example_and_fp_elsewhere():
    t = np.zeros((2, 10, 10), np.uint8)
    t[0, 1:4, 1:4] = 1  # lesion A, 9 px
    t[0, 6:9, 6:9] = 1  # lesion B, 9 px
    t[1, 0:2, 0:2] = 1  # lesion C, 4 px
    p = np.zeros_like(t)
    p[0, 1:4, 1:3] = 1  # finds A (Dice 12/15)
    p[0, 8, 8] = 1  # touches B: Dice 2/10 = 0.2 > 0.1
    p[1, 5:10, 5:10] = 1  # large false positive elsewhere; C missed
    out = metrics.lesion_detection_rate(p, t, min_dice=0.1)
    assert out == {"detected": 2, "total": 3, "rate": pytest.approx(2 / 3)}
    assert metrics.lesion_detection_rate(p, t, min_dice=0.25)["detected"] == 1
    assert metrics.lesion_detection_rate(p, t, criterion="overlap")["detected"] == 2
    # items=True keeps the two items apart even though they are adjacent along axis 0
    vol = metrics.lesion_detection_rate(p[0], t[0], items=False)
    assert vol["total"] == 2
    with pytest.warns(MetricWarning):
        assert np.isnan(metrics.lesion_detection_rate(p, np.zeros_like(t))["rate"])


# ---------------------------------------------------------------------------------------- tests


def test_threshold_grid_is_public_and_spans_the_values():
    g = metrics.threshold_grid(np.array([[0.5, 0.1], [0.9, 0.3]]), 5)
    assert g.tolist() == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])
    assert metrics.threshold_grid(np.full(4, 2.0), 10).tolist() == [2.0]
    with pytest.raises(ValueError, match="n must be"):
        metrics.threshold_grid(np.ones(3), 0)
