"""The declared segmentation step against SciPy and hand computations on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ctad_core.evaluation.segmentation import declared_segmentation, segment
from ctad_core.results import MethodResults


def _res(maps, lesion=None, brain=None, members=None, seg=None, level="2d", **extra):
    n = maps.shape[0]
    return MethodResults(
        "m",
        level,
        np.array([f"s{i}" for i in range(n)]),
        np.array(["test"] * n),
        np.array(["iph"] * n),
        np.zeros(n),
        maps=maps,
        lesion=lesion if lesion is not None else np.zeros(maps.shape, np.uint8),
        brain=brain,
        member_maps=members,
        info={"segmentation": seg} if seg is not None else {},
        **extra,
    )


def test_three_member_vote_two_of_three_agree():
    a = np.array([[[1.0, 1.0, 0.0, 0.0]]])
    b = np.array([[[1.0, 0.0, 1.0, 0.0]]])
    c = np.array([[[0.0, 1.0, 1.0, 1.0]]])
    members = np.stack([a, b, c])  # (3, 1, 1, 4)
    r = _res(members.mean(0), members=members, seg={"vote": "majority"})
    # pixel votes: 2, 2, 2, 1 → kept where at least 2 of 3 agree
    assert segment(r, 0.5).tolist() == [[[1, 1, 1, 0]]]
    # the mean map (2/3, 2/3, 2/3, 1/3) at t = 0.7 keeps nothing: the vote is not the mean
    assert segment(_res(members.mean(0)), 0.7).sum() == 0


def test_two_members_need_both():
    a = np.array([[[1.0, 1.0, 0.0]]])
    b = np.array([[[1.0, 0.0, 0.0]]])
    members = np.stack([a, b])
    r = _res(members.mean(0), members=members, seg={"vote": "majority"})
    assert segment(r, 0.5).tolist() == [[[1, 0, 0]]]  # strict majority: > M / 2


def test_closing_matches_scipy_and_happens_before_the_vote_and_the_mask():
    rng = np.random.default_rng(0)
    members = (rng.random((3, 2, 15, 15)) > 0.55).astype(np.float32)
    brain = np.ones((2, 15, 15), np.uint8)
    brain[:, :, :3] = 0
    r = _res(members.mean(0), members=members, brain=brain, seg={"vote": "majority", "closing_radius": 1})
    disk = ndimage.generate_binary_structure(2, 1)  # radius 1: the 4-neighbour cross
    closed = np.stack(
        [
            np.stack([ndimage.binary_closing(np.pad(m, 1), structure=disk)[1:-1, 1:-1] for m in mem])
            for mem in members >= 0.5
        ]
    )
    want = (2 * closed.sum(0) > 3) & (brain != 0)
    np.testing.assert_array_equal(segment(r, 0.5), want.astype(np.uint8))


def test_min_component_removal_matches_scipy_labels():
    m = np.zeros((1, 6, 6, 6), np.float32)
    m[0, 0, 0, 0] = 1  # one voxel
    m[0, 2:4, 2:4, 2:4] = 1  # 8 voxels
    m[0, 5, 5, 4:6] = 1  # 2 voxels
    r = _res(m, seg={"min_component_size": 3}, level="3d")
    got = segment(r, 0.5)
    lab, n = ndimage.label(m[0] >= 0.5)
    sizes = ndimage.sum(np.ones_like(m[0]), lab, range(1, n + 1))
    want = np.isin(lab, 1 + np.flatnonzero(sizes >= 3))
    np.testing.assert_array_equal(got[0], want.astype(np.uint8))
    assert got.sum() == 8


def test_item_selection_and_mask():
    maps = np.array([[[0.2, 0.9]], [[0.8, 0.1]]], np.float32)
    brain = np.array([[[1, 0]], [[1, 1]]], np.uint8)
    r = _res(maps, brain=brain)
    assert segment(r, 0.5).tolist() == [[[0, 0]], [[1, 0]]]
    assert segment(r, 0.5, np.array([False, True])).tolist() == [[[1, 0]]]
    assert segment(r, 0.5, np.array([1])).tolist() == [[[1, 0]]]
    with pytest.raises(ValueError, match="selection has shape"):
        segment(r, 0.5, np.array([True]))


def test_inputs_that_must_fail():
    maps = np.zeros((2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="needs member_maps"):
        _res(maps, seg={"vote": "majority"})  # a vote without member maps
    with pytest.raises(ValueError, match="unknown segmentation keys"):
        _res(maps, seg={"closing": 1})
    with pytest.raises(ValueError, match="vote must be"):
        _res(maps, seg={"vote": "mean"})
    with pytest.raises(ValueError, match="has shape"):
        _res(maps, brain=np.ones((3, 4, 4), np.uint8))  # mismatched shapes
    members = np.zeros((3, 2, 4, 5), np.float32)
    r = _res(maps, members=members, seg={"vote": "majority"})
    with pytest.raises(ValueError, match="member_maps have shape"):
        segment(r, 0.5)
    r = _res(
        maps, members=np.zeros((3, 2, 4, 4), np.float32), seg={"vote": "majority"}, maps_haemorrhage=maps
    )
    with pytest.raises(ValueError, match="no member_maps_haemorrhage"):
        segment(r, 0.5, haemorrhage=True)
    ok = _res(maps)
    ok.info["segmentation"] = {"min_component_size": -1}
    with pytest.raises(ValueError, match=">= 0"):
        declared_segmentation(ok)
