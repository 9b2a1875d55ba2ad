"""The evaluator on small synthetic results (2D slices and 3D volumes), against sklearn and hand computation."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ctad_core.evaluation import evaluator as E
from ctad_core.evaluation import metrics as M
from ctad_core.results import MethodResults, load_method_results, save_method_results

from ._synthetic import synthetic


def _digest(res: MethodResults) -> str:
    h = hashlib.sha256()
    for k in MethodResults._ARRAYS:
        a = getattr(res, k)
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_evaluate_2d_keys_values_and_inputs_untouched():
    res = synthetic("a")
    before = _digest(res)
    m = E.evaluate(res).metrics
    assert _digest(res) == before  # the evaluator never modifies its input
    for k in (
        "pixel_auroc",
        "pixel_auprc",
        "dice_mean",
        "dice_median",
        "dice_sd",
        "scan_auroc",
        "scan_auroc_by_kind",
        "seconds_per_scan",
        "slice_auroc",
        "slice_auprc",
        "dice_seed004",
        "lesion_detection",
        "dice_haemorrhage",
        "segmentation",
    ):
        assert k in m, k
    assert m["pixel_auroc"] > 0.9 and m["dice_mean"] > 0.5
    assert sorted(m["scan_auroc_by_kind"]) == ["fracture", "iph", "sdh", "tumour"]
    assert m["dice_haemorrhage"]["n"] < m["dice_all"]["n"]
    assert m["scan_aggregate"] == "max" and m["n_test_scans"] == 10
    t = res.split == "test"
    sel = t[:, None, None] & (res.brain != 0)
    assert m["pixel_auroc"] == pytest.approx(roc_auc_score(res.lesion[sel].ravel(), res.maps[sel].ravel()))
    assert m["pixel_auprc"] == pytest.approx(
        average_precision_score(res.lesion[sel].ravel(), res.maps[sel].ravel())
    )
    # one per-item convention: sample SD (ddof = 1) of the per-item test Dice
    d, _ = E.evaluate(res).dice_test["all"]
    assert m["dice_sd"] == pytest.approx(np.std(d, ddof=1)) and m["dice_all"]["sd"] == m["dice_sd"]


def test_dice_threshold_comes_from_validation_not_test():
    res = synthetic("a", shift_test=0.25)  # test maps are shifted: the test-optimal threshold differs
    ev = E.evaluate(res)
    val = (res.split == "val") & (res.lesion.reshape(len(res.lesion), -1).any(1))
    sw = ev.sweeps["all"]
    # no segmentation declared: the rule equals the plain masked sweep on the same grid
    assert ev.metrics["dice_threshold"] == pytest.approx(
        M.dice_vs_threshold(res.maps[val], res.lesion[val], res.brain[val], sw.thresholds).best_threshold
    )
    assert ev.metrics["dice_oracle_test"] > ev.metrics["dice_seed004"]


def test_scan_scores_aggregate_slices_by_max():
    res = synthetic("a")
    st = E.scan_table(res, "test")
    sel = res.scan_id == st["scan_id"][0]
    assert st["score"][0] == res.scan_score[sel].max()
    with pytest.raises(ValueError, match="scores have shape"):
        E.scan_table(res, "test", score=np.zeros(3))


def test_evaluate_3d_method_and_score_only_method():
    m = E.evaluate(synthetic("v", "3d")).metrics
    assert m["level"] == "3d" and "slice_auroc" in m and m["slice_score"].startswith("1 - s(u)")
    res = synthetic("s")
    res.maps = res.lesion = res.brain = None
    m2 = E.evaluate(res).metrics
    assert "pixel_auroc" not in m2 and 0 <= m2["scan_auroc"] <= 1


def test_item_level_and_model_dims_are_recorded_apart(tmp_path):
    v = synthetic("fanogan2d", "3d", seed=3)
    v.info["model_dims"] = "2d"
    back = load_method_results(save_method_results(tmp_path, v))
    assert back.level == "3d" and back.model_dims == "2d"
    m = E.evaluate(back).metrics
    assert m["level"] == "3d" and m["model_dims"] == "2d"


def test_vote_not_mean_is_scored():
    """Members 0 and 1 see the lesion's left half, member 2 its right half. The mean map exceeds the
    threshold over the whole lesion; a strict majority (2 of 3) keeps only the left half."""
    n, h = 4, 12
    les = np.zeros((n, h, h), np.uint8)
    les[:, 4:8, 2:10] = 1
    left = np.zeros_like(les)
    left[:, 4:8, 2:6] = 1
    right = les - left
    members = np.stack([left, left, right]).astype(np.float32) * 0.9  # (3, n, h, w)
    kind = np.array(["iph"] * n)
    split = np.array(["val", "val", "test", "test"])
    common = dict(
        scan_id=np.array(["a", "b", "c", "d"]),
        split=split,
        kind=kind,
        scan_score=np.ones(n),
        maps=members.mean(0),
        lesion=les,
        brain=np.ones_like(les),
    )
    voted = MethodResults(
        "vote", "2d", member_maps=members, info={"segmentation": {"vote": "majority"}}, **common
    )
    plain = MethodResults("mean", "2d", **common)
    d_vote = E.evaluate(voted, dice_thresholds=10).metrics["dice_mean"]
    d_mean = E.evaluate(plain, dice_thresholds=10).metrics["dice_mean"]
    # by hand: the vote predicts the left half (16 of 32 lesion pixels) → Dice 2·16/(16+32) = 2/3;
    # thresholding the mean map (0.6 on the left, 0.3 on the right) at its best finds the whole lesion → 1
    assert d_vote == pytest.approx(2 / 3)
    assert d_mean == pytest.approx(1.0)


def test_recon_error_from_inputs_and_recon_or_says_why_not():
    res = synthetic("r", seed=3)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, res.maps.shape).astype(np.float32)
    res.inputs, res.recon = x, np.clip(x + 0.1, -1, 1).astype(np.float32)
    m = E.evaluate(res).metrics
    t_norm = (res.split == "test") & (res.lesion.reshape(len(res.lesion), -1).sum(1) == 0)
    ref = np.abs(x - res.recon)[t_norm][res.brain[t_norm] != 0] / 2.0  # [-1, 1] → [0, 1] intensities
    assert m["recon_error"]["normal"]["mean_abs"] == pytest.approx(ref.mean())
    assert m["recon_error"]["normal"]["rmse"] == pytest.approx(np.sqrt(np.mean(ref**2)))
    no_inputs = synthetic("r", seed=3)
    no_inputs.recon = res.recon
    assert E.evaluate(no_inputs).metrics["recon_error"] == {"unavailable": "the results carry no inputs"}
    bad = synthetic("r", seed=3)
    bad.inputs, bad.recon = x, x[:, :8]
    with pytest.raises(ValueError, match="inputs have shape"):
        E.evaluate(bad)


def test_two_dimensional_timing_is_explicit():
    res = synthetic("t")
    res.info = {"seconds_per_item": 0.5, "items_per_scan": 40}
    m = E.evaluate(res).metrics
    assert m["seconds_per_item"] == 0.5 and m["seconds_per_scan"] == pytest.approx(20.0)
    res.info = {"seconds_per_item": 0.5}
    with pytest.raises(ValueError, match="items_per_scan"):
        E.evaluate(res)
    res.info = {"seconds_per_scan": 0.5, "seconds_unit": "slice"}
    with pytest.raises(ValueError, match="seconds_unit"):
        E.evaluate(res)


def test_map_score_auroc_by_hand():
    """scan_auroc_map: top-1 % mean of each item's map in its mask, max over a scan's slices, then sklearn AUROC."""
    res = synthetic("m", "2d", seed=3)
    m = E.evaluate(res).metrics
    t = res.split == "test"
    per_item = []
    for mp, b in zip(res.maps, res.brain):
        v = np.sort(mp[b > 0])[::-1]
        per_item.append(v[: int(np.ceil(0.01 * v.size))].mean())
    per_item = np.array(per_item)
    ids = np.unique(res.scan_id[t])
    s = np.array([per_item[t][res.scan_id[t] == i].max() for i in ids])
    y = np.array([res.kind[t][res.scan_id[t] == i][0] != "healthy" for i in ids]).astype(int)
    assert m["scan_auroc_map"] == pytest.approx(roc_auc_score(y, s))


def test_declared_extra_scores_get_their_auroc():
    res = synthetic("c", "3d", seed=2)
    rng = np.random.default_rng(0)
    f = rng.random(len(res.scan_id))
    res.info["scores"] = {"F": f.tolist()}
    m = E.evaluate(res).metrics
    t = res.split == "test"
    y = (res.kind[t] != "healthy").astype(int)
    assert m["scan_auroc_by_score"]["F"]["total"] == pytest.approx(roc_auc_score(y, f[t]))
    table = E.auroc_table({"c": E.evaluate(res)}, "F")
    assert table.loc["TOTAL", "c"] == pytest.approx(roc_auc_score(y, f[t]))


def test_haemorrhage_subset_uses_the_positive_residual():
    res = synthetic("h", "2d", seed=5, noise=0.9)
    clean = (res.lesion != 0) * 0.8 + np.random.default_rng(1).random(res.maps.shape).astype(np.float32) * 0.1
    res.maps_haemorrhage = clean.astype(np.float32)
    m = E.evaluate(res).metrics
    without = E.evaluate(synthetic("h", "2d", seed=5, noise=0.9)).metrics
    assert m["dice_haemorrhage"]["residual"] == "max(x - x_hat, 0)"
    assert without["dice_haemorrhage"]["residual"] == "the method's map"
    assert m["dice_haemorrhage"]["median"] > without["dice_haemorrhage"]["median"] + 0.2
    assert m["dice_all"] == without["dice_all"]


def test_compare_on_common_scans_and_wilcoxon():
    a, b = synthetic("a", "3d", seed=1), synthetic("b", "3d", seed=2)
    keep = np.arange(len(b.scan_id)) % 2 == 0
    b2 = MethodResults("b", "3d", b.scan_id[keep], b.split[keep], b.kind[keep], b.scan_score[keep])
    c = E.compare_on_common_scans(a, b2)
    t = (a.split == "test") & np.isin(a.scan_id, b2.scan_id)
    assert c["n_scans"] == int(t.sum())
    assert c["auroc_a"] == pytest.approx(roc_auc_score(a.kind[t] != "healthy", a.scan_score[t]))
    ev = {"x": E.evaluate(synthetic("x")), "y": E.evaluate(synthetic("y", seed=1, noise=0.7))}
    w = E.compare_dice(ev)
    from scipy.stats import wilcoxon

    ref = wilcoxon(ev["x"].dice_test["all"][0], ev["y"].dice_test["all"][0])
    assert w["x vs y"]["p_value"] == pytest.approx(ref.pvalue)
