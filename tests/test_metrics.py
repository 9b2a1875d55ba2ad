"""Metrics against independent references: scikit-learn, SciPy, and hand computations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import linalg
from scipy.stats import wilcoxon
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from ctad_core import metrics
from ctad_core.metrics import MetricWarning
from ctad_core.nn import features


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


def test_wilcoxon_matches_scipy_and_handles_degenerate():
    rng = _rng(7)
    a = rng.random(15)
    b = a + rng.normal(0.05, 0.1, 15)
    ref = wilcoxon(a, b)
    assert metrics.wilcoxon_dice(a, b) == pytest.approx((ref.statistic, ref.pvalue))
    with pytest.warns(MetricWarning):
        assert np.isnan(metrics.wilcoxon_dice(a, a)[1])
    with pytest.raises(ValueError, match=r"\(15,\).*\(14,\)"):
        metrics.wilcoxon_dice(a, b[:-1])
    b2 = b.copy()
    b2[0] = np.nan
    ref2 = wilcoxon(a[1:], b[1:])
    assert metrics.wilcoxon_dice(a, b2)[1] == pytest.approx(ref2.pvalue)


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


def test_recon_error_stats_model_range_and_mask():
    rng = _rng(9)
    x = rng.uniform(-1, 1, (3, 8, 8))
    xh = np.clip(x + rng.normal(0, 0.1, x.shape), -1, 1)
    st = metrics.recon_error_stats(x, xh, value_range=(-1, 1))
    d = np.abs(x - xh) / 2
    assert st["rmse"] == pytest.approx(np.sqrt(np.mean(d**2)))
    assert st["mean_abs"] == pytest.approx(d.mean())
    assert st["sd_abs"] == pytest.approx(d.std())
    assert st["p90_abs"] == pytest.approx(np.percentile(d, 90))
    assert st["rmse_item_mean"] == pytest.approx(np.mean([np.sqrt(np.mean(di**2)) for di in d]))
    m = np.zeros(x.shape, bool)
    m[:, :4] = True
    sm = metrics.recon_error_stats(x, xh, (-1, 1), mask=m)
    assert sm["mean_abs"] == pytest.approx(d[m].mean()) and sm["n_pixels"] == m.sum()
    with pytest.raises(ValueError, match=r"\(3, 8, 8\).*\(3, 8, 7\)"):
        metrics.recon_error_stats(x, xh[..., :7])


# ------------------------------------------------------------------------------------------- FID


def _fid_scipy(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_fid_matches_scipy_sqrtm_reference():
    rng = _rng(10)
    a = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(0.3, 1.2, size=(250, 8)) @ rng.normal(size=(8, 8))
    assert metrics.fid(a, b) == pytest.approx(_fid_scipy(a, b), rel=1e-6)
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match=r"\(300, 8\).*\(250, 7\)"):
        metrics.fid(a, b[:, :7])


def test_fid_infinity_removes_small_sample_bias():
    rng = _rng(11)
    d = 16
    real = rng.normal(size=(20000, d))
    gen = rng.normal(size=(600, d))  # same distribution: true FID is 0
    biased = metrics.fid(gen, real)
    out = metrics.fid_infinity(gen, real, num_points=10, seed=0)
    assert biased > 0.1  # the finite-N bias grows like d²/N
    assert abs(out["fid_inf"]) < 0.5 * biased
    assert out["slope"] > 0
    assert len(out["ns"]) == len(out["fids"]) == 10
    # reproducible with a seed
    assert metrics.fid_infinity(gen, real, num_points=10, seed=0)["fid_inf"] == out["fid_inf"]
    with pytest.raises(ValueError):
        metrics.fid_infinity(gen, real, ns=[10])


# ------------------------------------------------------------------------------ feature extractors


def test_torch_feature_extractor_pools_and_names():
    net = torch.nn.Conv2d(1, 5, 3)
    ex = features.TorchFeatureExtractor(net, "toy", batch_size=3)
    assert isinstance(ex, features.FeatureExtractor)
    f = features.extract_features(ex, np.random.default_rng(0).random((7, 16, 16)))
    assert f.shape == (7, 5)


def test_random_cnn_extractor_is_seeded():
    imgs = np.random.default_rng(0).random((4, 32, 32))
    a = features.random_cnn_extractor(seed=3)(imgs)
    b = features.random_cnn_extractor(seed=3)(imgs)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 256)


def _torchvision_like_state_dict(net: features.InceptionPool3) -> dict:
    sd = dict(net.state_dict())
    # a torchvision file also carries the classifier and the auxiliary head
    sd["fc.weight"] = torch.zeros(1000, 2048)
    sd["fc.bias"] = torch.zeros(1000)
    sd["AuxLogits.conv0.conv.weight"] = torch.zeros(128, 768, 1, 1)
    return sd


def test_inception_pool3_loads_local_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    src = features.InceptionPool3()
    # randomise BN statistics so a wrong key mapping would change the output
    for m in src.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "inception_v3_random.pth"
    torch.save(_torchvision_like_state_dict(src), path)
    names = set(src.state_dict())
    assert {"Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch_pool.bn.running_var", "Mixed_7c.branch3x3dbl_3b.conv.weight",
            "Mixed_6e.branch7x7dbl_5.bn.num_batches_tracked"} <= names
    ex = features.inception_extractor(path, batch_size=2, size=(80, 80))  # 80 px keeps CI fast; 299 is the default
    imgs = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    f = ex(imgs)
    assert f.shape == (3, 2048)
    assert "inception-v3 pool3 (inception_v3_random.pth)" == ex.name
    with torch.no_grad():
        x = torch.nn.functional.interpolate(torch.as_tensor(imgs)[:, None].repeat(1, 3, 1, 1), size=(80, 80),
                                            mode="bilinear", align_corners=False)
        ref = src.eval()(x * 2 - 1).double().numpy()
    np.testing.assert_allclose(f, ref, rtol=1e-4, atol=1e-5)


def test_inception_rejects_wrong_files(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="missing"):
        features.inception_extractor(bad)
    with pytest.raises(FileNotFoundError):
        features.inception_extractor(tmp_path / "nope.pth")


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


@pytest.mark.parametrize("module", ["ctad_core.metrics", "ctad_core.turing"])
def test_doctests(module):
    import doctest
    import importlib

    res = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0
