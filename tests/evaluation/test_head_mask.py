"""Full-head methods: the kinds outside the brain scored inside the head mask, beside the brain-mask figures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ctad_core.evaluation import report as R
from ctad_core.evaluation.evaluator import HEAD_MASK_LABEL, evaluate
from ctad_core.kinds import LESION_CODES
from ctad_core.results import load_method_results, save_method_results

from ._synthetic import synthetic

FRAC = LESION_CODES["fracture"]


def _full_head(name="ctfsh_ae_l1", seed=2):
    """3D results whose ``iph+fracture`` scans carry a fracture (code 9) in the skull, outside the brain."""
    res = synthetic(name, "3d", seed=seed)
    rng = np.random.default_rng(seed)
    n = len(res.scan_id)
    res.brain[:] = 0
    res.brain[:, 1:5, 2:10, 2:10] = 1  # the brain: the inside
    head = np.zeros_like(res.brain)
    head[:, :, 1:11, 1:11] = 1  # the head: the brain and a skull shell around it
    for i in range(n):
        if "fracture" in res.kind[i]:
            res.lesion[i, 2:4, 1, 4:8] = FRAC  # in the skull row y = 1: outside the brain, inside the head
            res.maps[i, 2:4, 1, 4:8] += 0.5 + 0.3 * rng.random()
    return res, head


def test_head_mask_figures_against_sklearn_and_brain_figures_unchanged():
    res, head = _full_head()
    plain = evaluate(res, n_boot=50)
    assert "head_mask" not in plain.metrics  # no head mask: nothing extra
    res.head = head
    ev = evaluate(res, n_boot=50)
    hm = ev.metrics["head_mask"]
    assert hm["label"] == HEAD_MASK_LABEL and list(hm["kinds"]) == ["fracture"]
    e = hm["kinds"]["fracture"]
    # every brain-mask figure stays as it was
    for k in ("pixel_auroc", "pixel_auprc", "scan_auroc", "scan_auroc_map", "dice_default_mean"):
        assert ev.metrics[k] == plain.metrics[k], k
    # hand computation: test items of fracture scans and healthy ones, inside the head, the iph voxels of the
    # compound scans left out, positives the fracture code
    kind = res.kind.astype(str)
    items = (res.split == "test") & np.array([("fracture" in k) or k == "healthy" for k in kind])
    assert items.any()
    sel = (head[items] != 0) & ~((res.lesion[items] != 0) & (res.lesion[items] != FRAC))
    y = (res.lesion[items] == FRAC)[sel]
    s = res.maps[items][sel]
    assert np.isclose(e["pixel_auroc"], roc_auc_score(y, s))
    assert np.isclose(e["pixel_auprc"], average_precision_score(y, s), atol=1e-6)
    assert e["ci"]["pixel_auroc"]["low"] <= e["pixel_auroc"] <= e["ci"]["pixel_auroc"]["high"] + 1e-9
    # the fracture lies outside the brain mask: none of its voxels there
    assert e["lesion_in_brain_mask"] == 0.0 and e["lesion_voxels"] == int(
        (res.lesion[res.split == "test"] == FRAC).sum()
    )
    # scan AUROC of the head-mask map score: fracture scans vs healthy test scans, by hand
    test = res.split == "test"
    top = []
    for i in np.flatnonzero(test):
        v = np.sort(res.maps[i][head[i] != 0])[::-1]
        top.append(v[: max(1, int(np.ceil(0.01 * v.size)))].mean())
    top = np.array(top)
    keep = np.array([("fracture" in k) or k == "healthy" for k in kind[test]])
    want = roc_auc_score([k != "healthy" for k in kind[test][keep]], top[keep])
    assert np.isclose(e["scan_auroc_map"]["estimate"], want)
    assert e["n_scans"] == int(sum("fracture" in k for k in kind[test]))


def test_head_mask_round_trips_and_reaches_the_report(tmp_path):
    run = tmp_path / "run"
    res, head = _full_head()
    res.head = head
    p = save_method_results(run / "volumetric", res)
    back = load_method_results(p)
    np.testing.assert_array_equal(back.head, head)
    other, _ = _full_head("fanogan3d", seed=3)  # skull-stripped: no head mask
    save_method_results(run / "volumetric", other)
    rep, _ = R.build_report(run, profile="smoke", n_boot=50)
    assert "head_mask" in rep["methods"]["ctfsh_ae_l1"] and "head_mask" not in rep["methods"]["fanogan3d"]
    table = (run / "report" / "head_mask.md").read_text()
    assert "| ctfsh_ae_l1 | fracture |" in table and "fanogan3d" not in table and HEAD_MASK_LABEL in table
    t1 = (run / "report" / "table1_auroc_by_kind_map_score.md").read_text()
    assert f"| fracture ({HEAD_MASK_LABEL}) |" in t1


def test_head_mask_of_another_shape_is_refused():
    res, head = _full_head()
    with pytest.raises(ValueError, match="head"):
        res.head = head[:-1]
        res.__post_init__()
    res.head = head[:, :-1]
    with pytest.raises(ValueError, match="head mask"):
        evaluate(res, n_boot=20)
