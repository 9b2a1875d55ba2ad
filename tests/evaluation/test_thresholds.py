"""THE threshold rule on tiny grids, by hand and by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from ctad_core.evaluation.metrics import dice_per_item
from ctad_core.evaluation.segmentation import segment
from ctad_core.evaluation.thresholds import choose_threshold, grid_for, sweep
from ctad_core.results import MethodResults


def _res(maps, lesion, members=None, seg=None, brain=None):
    n = maps.shape[0]
    return MethodResults(
        "m",
        "2d",
        np.array([f"s{i}" for i in range(n)]),
        np.array(["val"] * n),
        np.array(["iph"] * n),
        np.zeros(n),
        maps=maps,
        lesion=lesion,
        brain=brain,
        member_maps=members,
        info={"segmentation": seg} if seg else {},
    )


def test_rule_on_a_tiny_grid_by_hand():
    maps = np.array([[[0.1, 0.9, 0.8, 0.2]], [[0.7, 0.3, 0.6, 0.0]]], np.float32)
    lesion = np.array([[[0, 1, 1, 0]], [[1, 0, 0, 0]]], np.uint8)
    r = _res(maps, lesion)
    sw = sweep(r, np.ones(2, bool), np.array([0.0, 0.5, 0.65, 0.85]))
    # t=0.0: item Dice 2·2/(4+2)=2/3 and 2·1/(4+1)=0.4 → mean 0.5333
    # t=0.5: {1,2} → 1.0; {0,2} → 2/3 → mean 0.8333
    # t=0.65: {1,2} → 1.0; {0} → 1.0 → mean 1.0
    # t=0.85: {1} → 2/3; {} → 0 → mean 1/3
    np.testing.assert_allclose(sw.dice, [8 / 15, 5 / 6, 1.0, 1 / 3])
    assert (
        sw.best_threshold == 0.65
        and choose_threshold(r, np.ones(2, bool), np.array([0.0, 0.5, 0.65, 0.85])) == 0.65
    )
    pooled = sweep(r, np.ones(2, bool), np.array([0.0, 0.5]), reduce="pooled")
    # pooled: t=0.0 predicts all 8 pixels, 3 hits → 6/11; t=0.5 predicts 4 (0.9, 0.8, 0.7, 0.6), 3 hits → 6/7
    np.testing.assert_allclose(pooled.dice, [2 * 3 / (8 + 3), 2 * 3 / (4 + 3)])


def test_ties_pick_the_lowest_threshold():
    r = _res(np.array([[[0.2, 0.9]]], np.float32), np.array([[[0, 1]]], np.uint8))
    assert choose_threshold(r, np.ones(1, bool), np.array([0.3, 0.5, 0.8])) == 0.3


def test_grid_spans_the_thresholded_maps_inside_the_mask():
    maps = np.array([[[0.1, 0.5, 3.0]]], np.float32)
    brain = np.array([[[1, 1, 0]]], np.uint8)
    r = _res(maps, np.array([[[0, 1, 0]]], np.uint8), brain=brain)
    np.testing.assert_allclose(grid_for(r, np.ones(1, bool), 5), np.linspace(0.1, 0.5, 5))
    members = np.stack([maps, maps * 2])
    rv = _res(maps, np.array([[[0, 1, 0]]], np.uint8), members=members, seg={"vote": "majority"}, brain=brain)
    np.testing.assert_allclose(grid_for(rv, np.ones(1, bool), 3), np.linspace(0.1, 1.0, 3))  # member values


def test_segmented_sweep_equals_brute_force_and_plain_path_equals_segment():
    rng = np.random.default_rng(1)
    lesion = np.zeros((4, 12, 12), np.uint8)
    lesion[:, 3:8, 3:8] = 1
    members = (rng.random((3, 4, 12, 12)) * 0.6 + lesion * 0.5).astype(np.float32)
    thr = np.linspace(0.2, 1.0, 9)
    for seg in ({"vote": "majority", "closing_radius": 1, "min_component_size": 3}, None):
        r = _res(members.mean(0), lesion, members=members if seg else None, seg=seg)
        sw = sweep(r, np.ones(4, bool), thr)
        brute = [dice_per_item(segment(r, t), lesion).mean() for t in thr]
        np.testing.assert_allclose(sw.dice, brute)


def test_rule_refuses_bad_input():
    r = _res(np.zeros((1, 2, 2), np.float32), np.ones((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="no items"):
        sweep(r, np.zeros(1, bool))
    with pytest.raises(ValueError, match="reduce"):
        sweep(r, np.ones(1, bool), reduce="median")
    with pytest.raises(ValueError, match="increasing"):
        sweep(r, np.ones(1, bool), np.array([0.5, 0.1]))


def _healthy_results(min_component_size: int) -> MethodResults:
    """Two healthy val items: one 10×10 map with a 2×2 block at 5 and one isolated pixel at 9; one flat item."""
    maps = np.zeros((3, 10, 10), np.float32)
    maps[0, 2:4, 2:4] = 5.0
    maps[0, 8, 8] = 9.0
    maps[2, 4:6, 4:6] = 7.0  # a lesioned test item: must not move the threshold
    lesion = np.zeros(maps.shape, np.uint8)
    lesion[2, 4:6, 4:6] = 1
    brain = np.ones(maps.shape, np.uint8)
    brain[1] = 0
    brain[1, :5, :10] = 1  # the second healthy item: 50 mask pixels, all 0
    return MethodResults(
        "hand",
        "2d",
        np.array(["a", "b", "c"]),
        np.array(["val", "val", "test"]),
        np.array(["healthy", "healthy", "iph"]),
        maps.reshape(3, -1).max(1),
        maps,
        lesion,
        brain,
        info={"segmentation": {"min_component_size": min_component_size}},
    )


def test_healthy_fpr_threshold_by_hand() -> None:
    from ctad_core.evaluation.thresholds import healthy_fpr_threshold

    healthy = np.array([True, True, False])
    # plain threshold: 150 mask pixels, 5 above zero (4 at 5, 1 at 9); 5 % allows 7.5 → 5 → t = 5
    t, f = healthy_fpr_threshold(_healthy_results(0), healthy, fpr=0.05)
    assert t == 5.0 and f == pytest.approx(5 / 150)
    t, f = healthy_fpr_threshold(_healthy_results(0), healthy, fpr=0.005)  # 0.75 pixels allowed → none
    assert t > 9.0 and f == 0.0
    # with components of < 2 pixels removed the isolated 9 never counts: 4 / 150 flagged for any t in (0, 5]
    t, f = healthy_fpr_threshold(_healthy_results(2), healthy, fpr=0.03)
    assert 0.0 < t <= 5.0 and f == pytest.approx(4 / 150)
    t, f = healthy_fpr_threshold(_healthy_results(2), healthy, fpr=0.02)  # 3 allowed: the block must go too
    assert t > 5.0 and f == 0.0
    with pytest.raises(ValueError, match="no healthy"):
        healthy_fpr_threshold(_healthy_results(0), np.zeros(3, bool), fpr=0.05)


@pytest.mark.parametrize("level,shape", [("2d", (5, 14, 14)), ("3d", (4, 9, 10, 11))])
def test_component_counts_equal_segment_threshold_by_threshold(level, shape):
    """Seed 004's step (threshold in the mask, then small components removed) counted inside each item's mask
    box must equal segment() at every threshold: thresholds equal to map values, above an item's maximum,
    an item with an empty mask, haemorrhage maps, and a mask that does not reach the border."""
    from ctad_core.evaluation.thresholds import dice_counts

    rng = np.random.default_rng(7)
    maps = rng.random(shape).astype(np.float32)
    lesion = (rng.random(shape) > 0.7).astype(np.uint8)
    brain = np.zeros(shape, np.uint8)
    brain[(slice(None), *[slice(1, s - 2) for s in shape[1:]])] = 1
    brain[1] = 0  # an item without a mask: nothing predicted
    maps[2] *= 0.5  # an item whose maximum lies below the upper thresholds
    n = shape[0]
    res = MethodResults(
        "luo", level, np.array([f"s{i}" for i in range(n)]), np.array(["test"] * n), np.array(["iph"] * n),
        np.zeros(n), maps=maps, lesion=lesion, brain=brain, maps_haemorrhage=np.maximum(maps - 0.3, 0),
        info={"segmentation": {"min_component_size": 4}},
    )
    thr = np.r_[np.sort(rng.choice(maps[brain != 0], 6)), 0.0, 0.55, 0.95, 2.0]
    idx = np.array([3, 0, 1, 2])  # not in storage order
    for h in (False, True):
        n_pred, n_tp, n_true = dice_counts(res, idx, thr, haemorrhage=h)
        for k, t in enumerate(thr):
            pred = segment(res, float(t), idx, haemorrhage=h).reshape(len(idx), -1) != 0
            np.testing.assert_array_equal(n_pred[:, k], pred.sum(1))
            np.testing.assert_array_equal(n_tp[:, k], (pred & (lesion[idx].reshape(len(idx), -1) != 0)).sum(1))
        assert (n_pred[idx == 1] == 0).all() and n_pred[:, -1].sum() == 0
        assert (n_pred[:, 6] > 0).any()  # not a trivially empty comparison
        np.testing.assert_array_equal(n_true[:, 0], (lesion[idx] != 0).reshape(len(idx), -1).sum(1))


@pytest.mark.parametrize(
    "seg,members,level",
    [
        ({"vote": "majority"}, 3, "2d"),
        ({"vote": "majority", "closing_radius": 1}, 3, "2d"),  # seed 000
        ({"vote": "majority", "closing_radius": 2}, 2, "2d"),  # two members: both must agree
        ({"vote": "majority", "closing_radius": 1}, 4, "2d"),
        ({"closing_radius": 1}, 0, "2d"),
        ({"closing_radius": 1, "min_component_size": 3}, 0, "3d"),
        ({"vote": "majority", "closing_radius": 1, "min_component_size": 5}, 3, "3d"),
    ],
)
def test_every_declared_step_is_counted_as_segment_counts_it(seg, members, level):
    """Closing (grey-level, padded), the vote (an order statistic) and component removal, counted for all
    thresholds at once, against segment() threshold by threshold — lesions and maps touching the border."""
    from ctad_core.evaluation.segmentation import threshold_equivalent_maps
    from ctad_core.evaluation.thresholds import dice_counts

    rng = np.random.default_rng(11)
    shape = (4, 13, 15) if level == "2d" else (3, 7, 9, 8)
    lesion = np.zeros(shape, np.uint8)
    lesion[(slice(None), *[slice(0, 4)] * (len(shape) - 1))] = 1  # at the border
    base = (rng.random(shape) * 0.7 - 0.3 + lesion * 0.4).astype(np.float32)  # signed, like max(x - x_hat)'s input
    mm = (
        np.stack([(base + rng.normal(0, 0.15, shape)).astype(np.float32) for _ in range(members)])
        if members
        else None
    )
    brain = np.ones(shape, np.uint8)
    brain[(0, *[slice(-2, None)] * (len(shape) - 1))] = 0
    n = shape[0]
    res = MethodResults(
        "m", level, np.array([f"s{i}" for i in range(n)]), np.array(["val"] * n), np.array(["iph"] * n),
        np.zeros(n), maps=mm.mean(0) if members else base, lesion=lesion, brain=brain, member_maps=mm,
        info={"segmentation": seg},
    )
    vals = (mm if members else base).ravel()
    thr = np.r_[np.sort(rng.choice(vals, 8)), -0.1, 0.0, 0.05, 0.5, 0.9, 3.0]  # <= 0: the padding must not count
    idx = np.array([2, 0, n - 1])
    n_pred, n_tp, _ = dice_counts(res, idx, np.sort(thr))
    for k, t in enumerate(np.sort(thr)):
        pred = segment(res, float(t), idx) != 0
        np.testing.assert_array_equal(n_pred[:, k], pred.reshape(len(idx), -1).sum(1))
        np.testing.assert_array_equal(n_tp[:, k], (pred & (lesion[idx] != 0)).reshape(len(idx), -1).sum(1))
        if not seg.get("min_component_size"):
            e = threshold_equivalent_maps(res, idx)
            np.testing.assert_array_equal(pred, (e >= np.float32(t)) & (brain[idx] != 0))
    assert n_pred.max() > 0 and n_pred[:, -1].sum() == 0
