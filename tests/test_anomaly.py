"""Tests of ctad_core.anomaly against hand-made arrays."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from scipy import ndimage

from ctad_core import anomaly as an


def test_residual_abs_and_pos_numpy_and_torch():
    x = np.array([[0.5, -0.2], [0.0, 1.0]], np.float32)
    xh = np.array([[0.0, 0.3], [0.0, -1.0]], np.float32)
    np.testing.assert_allclose(an.residual(x, xh, "abs"), [[0.5, 0.5], [0.0, 2.0]])
    np.testing.assert_allclose(an.residual(x, xh, "pos"), [[0.5, 0.0], [0.0, 2.0]])
    t = an.residual(torch.from_numpy(x), torch.from_numpy(xh), "pos")
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), [[0.5, 0.0], [0.0, 2.0]])
    with pytest.raises(ValueError):
        an.residual(x, xh, "square")
    with pytest.raises(ValueError, match="shape"):
        an.residual(x, xh[:1], "abs")


def test_threshold_maps():
    m = an.threshold_maps(np.array([0.1, 0.5, 0.6]), 0.5)
    assert m.dtype == np.uint8 and m.tolist() == [0, 1, 1]  # at or above, as metrics.dice_vs_threshold
    assert an.threshold_maps(torch.tensor([0.1, 0.5, 0.7]), 0.5).tolist() == [False, True, True]


def test_closing_fills_gap_per_item_and_keeps_border_objects():
    m = np.zeros((2, 9, 9), np.uint8)
    m[0, 3:6, 1:4] = 1
    m[0, 3:6, 5:8] = 1  # two 3x3 blocks, a one-pixel gap at x=4
    m[1, 0:3, 0:3] = 1  # touches the border: closing must not erode it
    c = an.closing(m, 1, spatial_dims=2)
    assert c[0, 4, 4] == 1  # the disk (a cross at r=1) bridges the gap's middle row
    assert (c[0] >= m[0]).all() and c[0].sum() == 19
    np.testing.assert_array_equal(c[1], m[1])
    assert an.closing(m, 0, spatial_dims=2).sum() == m.sum()


def test_closing_3d_spans_slices():
    m = np.zeros((5, 7, 7), np.uint8)
    m[1, 2:5, 2:5] = 1
    m[3, 2:5, 2:5] = 1  # two plates with an empty slice between
    assert an.closing(m, 1, spatial_dims=3)[2, 3, 3] == 1
    assert an.closing(m, 1, spatial_dims=2)[2, 3, 3] == 0  # slice by slice: no bridge


def test_majority_vote_strict():
    a = np.array([1, 1, 0, 0], np.uint8)
    b = np.array([1, 0, 1, 0], np.uint8)
    c = np.array([1, 0, 0, 1], np.uint8)
    assert an.majority_vote([a, b, c]).tolist() == [1, 0, 0, 0]
    assert an.majority_vote([a, b]).tolist() == [1, 0, 0, 0]  # 1 of 2 is not a majority
    assert an.majority_vote([a]).tolist() == [1, 1, 0, 0]
    with pytest.raises(ValueError):
        an.majority_vote([a, a[:2]])


def test_connected_components_2d_vs_3d():
    m = np.zeros((3, 6, 6), np.uint8)
    m[0, 1:3, 1:3] = 1
    m[1, 2, 2] = 1  # touches the block on slice 0 through the slice axis
    m[2, 5, 5] = 1
    _, n2 = an.connected_components(m, spatial_dims=2)
    assert n2.tolist() == [1, 1, 1]
    lab3, n3 = an.connected_components(m, spatial_dims=3)
    assert int(n3) == 2 and lab3[0, 1, 1] == lab3[1, 2, 2]
    diag = np.zeros((4, 4), np.uint8)
    diag[0, 0] = diag[1, 1] = 1
    assert int(an.connected_components(diag, 1)[1]) == 2
    assert int(an.connected_components(diag, 2)[1]) == 1


def test_remove_small_components():
    m = np.zeros((2, 8, 8), np.uint8)
    m[0, 0:3, 0:3] = 1  # 9 px
    m[0, 6, 6] = 1  # 1 px
    m[1, 6, 6:8] = 1  # 2 px
    out = an.remove_small_components(m, 3, spatial_dims=2)
    assert out[0].sum() == 9 and out[1].sum() == 0
    # as a volume: a 1-pixel component on each of two consecutive slices joins into one of size 2
    v = np.zeros((2, 4, 4), np.uint8)
    v[0, 1, 1] = v[1, 1, 1] = 1
    assert an.remove_small_components(v, 2, spatial_dims=3).sum() == 2
    assert an.remove_small_components(v, 2, spatial_dims=2).sum() == 0


def test_median_filter_removes_salt():
    a = np.zeros((1, 7, 7), np.float32)
    a[0, 3, 3] = 10.0
    assert an.median_filter(a, 3, spatial_dims=2).max() == 0.0
    v = np.zeros((1, 7, 7, 7), np.float32)
    v[0, 1:6, 1:6, 1:6] = 1.0
    out = an.median_filter(v, 5)
    assert out.shape == v.shape and out[0, 3, 3, 3] == 1.0


def test_erode_mask_iterations_and_mm():
    m = np.zeros((1, 9, 9), np.uint8)
    m[0, 1:8, 1:8] = 1
    e1 = an.erode_mask(m, iterations=1, spatial_dims=2)
    assert e1.sum() == 25 and e1[0, 2:7, 2:7].all()
    e2 = an.erode_mask(m, mm=2.0, spacing=(1.0, 1.0), spatial_dims=2)
    assert e2.sum() == 9  # distance > 2 mm: the central 3x3
    full = np.ones((5, 5), np.uint8)
    assert an.erode_mask(full, iterations=1, spatial_dims=2).sum() == 9  # border counts as background
    with pytest.raises(ValueError):
        an.erode_mask(m)


def test_postprocess_pipeline():
    maps = np.zeros((2, 10, 10), np.float32)
    maps[0, 2:5, 2:5] = 1.0
    maps[0, 3, 3] = 0.0  # a hole that closing fills
    maps[0, 8, 8] = 1.0  # a speck that min_size removes
    brain = np.ones_like(maps, dtype=np.uint8)
    brain[:, :, 7:] = 0  # the speck's column is outside anyway
    out = an.postprocess(maps, 0.5, brain=brain, closing_radius=1, min_size=2, spatial_dims=2)
    assert out.dtype == np.uint8
    assert out[0, 2:5, 2:5].all() and out[0].sum() == 9 and out[1].sum() == 0
    out2 = an.postprocess(maps, 0.5, min_size=2, spatial_dims=2)
    assert out2[0, 8, 8] == 0 and out2[0, 3, 3] == 0


def test_scan_score_top_fraction():
    maps = np.zeros((2, 10, 10), np.float32)
    maps[0, 0, 0] = 5.0
    s = an.scan_score(maps, top_fraction=0.01, spatial_dims=2)
    np.testing.assert_allclose(s, [5.0, 0.0])
    brain = np.zeros_like(maps, dtype=np.uint8)
    brain[:, 5:, :] = 1
    np.testing.assert_allclose(an.scan_score(maps, brain, spatial_dims=2), [0.0, 0.0])
    s2 = an.scan_score(maps, top_fraction=0.02, spatial_dims=2)
    np.testing.assert_allclose(s2, [2.5, 0.0])


def test_infer_spatial_dims_errors():
    with pytest.raises(ValueError, match="cannot infer"):
        an.closing(np.zeros((2, 2, 2, 2, 2)), 1)
    with pytest.raises(ValueError, match="fewer axes"):
        an.closing(np.zeros((4, 4)), 1, spatial_dims=3)
    with pytest.raises(ValueError, match="must be 2 or 3"):
        an.closing(np.zeros((4, 4, 4)), 1, spatial_dims=1)


RANK3_CALLS = {
    "closing": lambda a, **kw: an.closing(a > 0.5, 1, **kw),
    "connected_components": lambda a, **kw: an.connected_components(a > 0.5, **kw),
    "remove_small_components": lambda a, **kw: an.remove_small_components(a > 0.5, 2, **kw),
    "median_filter": lambda a, **kw: an.median_filter(a, 3, **kw),
    "erode_mask": lambda a, **kw: an.erode_mask(a > 0.2, iterations=1, **kw),
    "postprocess": lambda a, **kw: an.postprocess(a, 0.5, median=3, **kw),
    "scan_score": lambda a, **kw: an.scan_score(a, **kw),
}


@pytest.mark.parametrize("name", sorted(RANK3_CALLS))
def test_rank3_without_spatial_dims_is_refused(name):
    # one (D, H, W) volume or a stack of (H, W) slices: the array alone cannot say which
    vol = np.random.default_rng(0).uniform(0, 1, (6, 7, 8)).astype(np.float32)
    digest = hashlib.sha256(vol.tobytes()).hexdigest()
    with pytest.raises(ValueError, match=r"shape \(6, 7, 8\).*pass spatial_dims=2.*or spatial_dims=3"):
        RANK3_CALLS[name](vol)
    for sd in (2, 3):  # with spatial_dims both readings work
        RANK3_CALLS[name](vol, spatial_dims=sd)
    assert an.median_filter(vol[None], 3).shape == (1, 6, 7, 8)  # rank 4: a batch of volumes, as before
    assert an.scan_score(vol[0]).shape == ()  # rank 2: one image, as before
    assert hashlib.sha256(vol.tobytes()).hexdigest() == digest  # input untouched


def test_rank3_spatial_dims_means_volume_or_slices():
    vol = np.random.default_rng(1).uniform(0, 1, (6, 7, 8)).astype(np.float32)
    np.testing.assert_array_equal(
        an.median_filter(vol, 3, spatial_dims=3), ndimage.median_filter(vol, size=3, mode="reflect")
    )
    per_slice = np.stack([ndimage.median_filter(s, size=3, mode="reflect") for s in vol])
    np.testing.assert_array_equal(an.median_filter(vol, 3, spatial_dims=2), per_slice)
