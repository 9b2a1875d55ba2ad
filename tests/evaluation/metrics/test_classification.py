"""Classification metrics against scikit-learn and hand computations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from ctad_core.evaluation import metrics
from ctad_core.evaluation.metrics import MetricWarning


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------- Dice


@pytest.mark.parametrize("ties", [False, True])
def test_roc_auc_ap_match_sklearn(ties):
    rng = _rng(2)
    y = rng.random(3000) < 0.2
    s = rng.normal(size=3000) + y * 1.0
    if ties:
        s = np.round(s, 1)
    assert metrics.roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert metrics.average_precision(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    fpr, tpr, thr = metrics.roc_curve(s, y)
    sf, st, sth = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sf)
    np.testing.assert_allclose(tpr, st)
    np.testing.assert_allclose(thr[1:], sth[1:])
    p, r, t = metrics.pr_curve(s, y)
    sp, sr, stt = precision_recall_curve(y, s)
    # scikit-learn drops the points after full recall is reached; compare on its points
    k = len(stt)
    np.testing.assert_allclose(t[-k:], stt)
    np.testing.assert_allclose(p[-k - 1 :], sp)
    np.testing.assert_allclose(r[-k - 1 :], sr)


def test_pixel_level_with_mask_equals_selected_pixels():
    rng = _rng(3)
    maps = rng.random((3, 8, 8, 8))
    lesion = (rng.random((3, 8, 8, 8)) < 0.1).astype(np.uint8)
    maps = maps + lesion
    brain = rng.random((3, 8, 8, 8)) < 0.5
    sel = brain
    assert metrics.roc_auc(maps, lesion, brain) == pytest.approx(roc_auc_score(lesion[sel], maps[sel]))
    assert metrics.average_precision(maps, lesion, brain) == pytest.approx(
        average_precision_score(lesion[sel], maps[sel])
    )


def test_degenerate_inputs_give_nan_with_warning():
    s = np.array([0.1, 0.2, 0.3])
    with pytest.warns(MetricWarning):
        assert np.isnan(metrics.roc_auc(s, np.zeros(3)))
    with pytest.warns(MetricWarning):
        assert np.isnan(metrics.roc_auc(s, np.ones(3)))
    with pytest.warns(MetricWarning):
        assert np.isnan(metrics.average_precision(s, np.zeros(3)))
    assert metrics.average_precision(s, np.ones(3)) == 1.0
    with pytest.warns(MetricWarning):
        fpr, tpr, _ = metrics.roc_curve(s, np.zeros(3))
    assert np.isnan(tpr).all()
    with pytest.warns(MetricWarning):
        op = metrics.youden_threshold(s, np.ones(3))
    assert np.isnan(op.sensitivity)
    # all-equal scores: AUROC 0.5, AP = prevalence
    eq = np.full(10, 0.3)
    y = np.r_[np.ones(3), np.zeros(7)]
    assert metrics.roc_auc(eq, y) == pytest.approx(roc_auc_score(y, eq))
    assert metrics.average_precision(eq, y) == pytest.approx(average_precision_score(y, eq))


def test_scores_labels_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        metrics.roc_auc(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="mask"):
        metrics.roc_auc(np.zeros((2, 2)), np.zeros((2, 2)), mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc_auc(np.array([np.nan, 1.0]), np.array([0, 1]))


# ------------------------------------------------------------------------------- Dice vs threshold


def test_youden_matches_sklearn_roc_argmax():
    rng = _rng(6)
    y = rng.random(400) < 0.4
    s = rng.normal(size=400) + y
    op = metrics.youden_threshold(s, y)
    fpr, tpr, thr = sk_roc_curve(y, s, drop_intermediate=False)
    k = np.argmax(tpr - fpr)
    assert op.threshold == pytest.approx(thr[k])
    assert op.sensitivity == pytest.approx(tpr[k])
    assert op.specificity == pytest.approx(1 - fpr[k])
    pred = s >= op.threshold
    assert op.accuracy == pytest.approx(np.mean(pred == y))
    assert op.youden_j == pytest.approx(tpr[k] - fpr[k])


# ------------------------------------------------------------------------------- lesion detection


def test_per_kind_auroc_each_kind_vs_healthy():
    rng = _rng(8)
    kinds = np.array(["healthy"] * 20 + ["iph"] * 10 + ["sdh"] * 7 + ["iph+fracture"] * 3)
    s = rng.normal(size=kinds.size) + (kinds != "healthy")
    out = metrics.per_kind_auroc(s, kinds)
    assert sorted(out) == ["fracture", "iph", "sdh"]
    h = kinds == "healthy"
    for k, sel in [("sdh", kinds == "sdh"), ("iph", np.char.find(kinds, "iph") >= 0)]:
        m = h | sel
        assert out[k] == pytest.approx(roc_auc_score(sel[m], s[m]))
    with pytest.warns(MetricWarning):
        assert np.isnan(metrics.per_kind_auroc(s[20:], kinds[20:])["sdh"])


# ------------------------------------------------------------------------------ reconstruction


def test_no_warnings_on_regular_input():
    rng = _rng(12)
    y = rng.random(100) < 0.3
    s = rng.random(100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics.roc_auc(s, y)
        metrics.average_precision(s, y)
        metrics.youden_threshold(s, y)
        metrics.dice_vs_threshold(s[None], y[None], thresholds=10)


@pytest.mark.parametrize("ties", [False, True])
def test_auroc_auprc_in_one_sort_equal_scikit_learn_and_the_single_metrics(ties):
    rng = np.random.default_rng(5)
    maps = rng.random((6, 10, 12)).astype(np.float32)
    if ties:
        maps = np.round(maps * 8) / 8  # many equal scores across both classes
    les = rng.random(maps.shape) > 0.85
    maps = maps + les * 0.2
    mask = rng.random(maps.shape) > 0.3
    d = metrics.auroc_auprc(maps, les, mask, curve=True)
    s, y = maps[mask].astype(np.float64), les[mask]
    assert d["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert d["auprc"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert d["auroc"] == metrics.roc_auc(maps, les, mask)
    assert d["auprc"] == metrics.average_precision(maps, les, mask)
    fpr, tpr, _ = metrics.roc_curve(maps, les, mask)
    np.testing.assert_array_equal(d["fpr"], fpr)
    np.testing.assert_array_equal(d["tpr"], tpr)
    sk_fpr, sk_tpr, _ = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(d["fpr"], sk_fpr)
    np.testing.assert_allclose(d["tpr"], sk_tpr)


def test_auroc_auprc_undefined_cases_warn_like_the_single_metrics():
    with pytest.warns(MetricWarning):
        d = metrics.auroc_auprc(np.array([0.1, 0.5]), np.array([0, 0]), curve=True)
    assert np.isnan(d["auroc"]) and np.isnan(d["auprc"]) and np.isnan(d["tpr"]).all()
    with pytest.warns(MetricWarning):
        d = metrics.auroc_auprc(np.array([0.1, 0.5]), np.array([1, 1]))
    assert np.isnan(d["auroc"]) and d["auprc"] == 1.0  # all positives: AP is defined
    with pytest.warns(MetricWarning):
        d = metrics.auroc_auprc(np.ones((2, 2)), np.ones((2, 2)), np.zeros((2, 2)))
    assert np.isnan(d["auroc"]) and np.isnan(d["auprc"])
    with pytest.raises(ValueError, match="NaN"):
        metrics.auroc_auprc(np.array([np.nan, 1.0]), np.array([0, 1]))
