"""Luo's slice normality score s(u) by hand, and the 3D slice table of the evaluator."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ctad_core.evaluation import evaluate
from ctad_core.evaluation.slices import (
    normality_score,
    scan_normality,
    slice_errors,
    slice_labels,
    slice_table,
)
from ctad_core.results import MethodResults


def test_normality_score_by_hand_on_three_slices():
    e = slice_errors(np.array([[[1.0, 1.0]], [[3.0, 2.0]], [[0.5, 0.5]]]))
    assert e.tolist() == [2.0, 5.0, 1.0]
    # s = 1 - (e - 1) / (5 - 1) = [0.75, 0.0, 1.0]
    assert normality_score(e).tolist() == [0.75, 0.0, 1.0]
    assert normality_score(np.full(4, 3.0)).tolist() == [1.0] * 4


def test_slice_errors_mask_and_labels():
    r = np.zeros((4, 3, 3))
    r[1] = 1.0
    r[3, 0, 0] = -2.0
    mask = np.ones_like(r)
    mask[3] = 0
    assert slice_errors(r).tolist() == [0, 9, 0, 2]
    assert slice_errors(r, mask=mask).tolist() == [0, 9, 0, 0]
    les = np.zeros((4, 3, 3), np.uint8)
    les[2, 1, 1] = 1
    assert slice_labels(les).tolist() == [0, 0, 1, 0]
    with pytest.raises(ValueError, match="mask has shape"):
        slice_errors(r, mask=mask[:2])


def _volumes():
    """Two val and two test scans of 5 slices; the lesioned slices carry the error, but at the top of the
    head a small mask makes the *mean* error of a healthy slice large (the old mean score's trap)."""
    n, d = 4, 5
    maps = np.full((n, d, 8, 8), 0.1, np.float32)
    brain = np.ones((n, d, 8, 8), np.uint8)
    brain[:, 0] = 0
    brain[:, 0, 3:5, 3:5] = 1  # slice 0: 4 mask voxels
    maps[:, 0, 3:5, 3:5] = 0.5  # skull edge: high mean, small sum
    les = np.zeros_like(brain)
    les[:, 2, 2:6, 2:6] = 1
    maps[:, 2, 2:6, 2:6] = 0.4
    return MethodResults(
        "v",
        "3d",
        np.array(["a", "b", "c", "d"]),
        np.array(["val", "val", "test", "test"]),
        np.array(["iph"] * n),
        np.zeros(n),
        maps=maps,
        lesion=les,
        brain=brain,
    )


def test_slice_table_uses_the_summed_map_not_its_mean():
    res = _volumes()
    s, has = scan_normality(res, 2)
    e = (res.maps[2] * res.brain[2]).reshape(5, -1).sum(1)
    np.testing.assert_allclose(s, 1 - (e - e.min()) / (e.max() - e.min()))
    score, label = slice_table(res, "test")
    assert label.tolist() == [0, 0, 1, 0, 0] * 2
    assert roc_auc_score(label, score) == 1.0  # the lesioned slice has the lowest s(u)
    mean_score = np.concatenate(
        [(m * b).reshape(5, -1).sum(1) / b.reshape(5, -1).sum(1) for m, b in zip(res.maps[2:], res.brain[2:])]
    )
    assert roc_auc_score(label, mean_score) < 1.0  # the slice mean ranks the skull-edge slice first
    assert evaluate(res).metrics["slice_auroc"] == 1.0


def test_scan_normality_refuses_2d_items():
    res = _volumes()
    flat = MethodResults("f", "2d", res.scan_id, res.split, res.kind, res.scan_score, maps=res.maps[:, 0])
    with pytest.raises(ValueError, match="volumetric maps"):
        scan_normality(flat, 0)
