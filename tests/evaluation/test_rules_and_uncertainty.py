"""Issue 11 items 3-4 in the evaluator: threshold rules, intervals, prevalence, size terciles, comparisons.

References: NumPy sorting (healthy-FPR threshold), scikit-learn (AUROC, AP), scipy.stats.wilcoxon (paired
Dice test), hand-built lesion sizes (terciles).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import wilcoxon
from sklearn.metrics import average_precision_score, roc_auc_score

from ctad_core.evaluation import comparisons as C
from ctad_core.evaluation import evaluator as E
from ctad_core.evaluation import metrics as M
from ctad_core.evaluation import report as R
from ctad_core.results import MethodResults, save_method_results

from ._synthetic import synthetic


def test_default_dice_threshold_flags_one_percent_of_healthy_val_voxels():
    res = synthetic("a", "2d", seed=4)
    m = E.evaluate(res, n_boot=50).metrics
    d = m["dice_by_rule"]["healthy_fpr"]["all"]
    hv = (res.split == "val") & (res.kind == "healthy")
    v = np.sort(res.maps[hv][res.brain[hv] != 0].astype(np.float64))
    t = d["threshold"]
    assert (v >= t).mean() <= 0.01 < (v >= v[v < t].max()).mean()  # the smallest such threshold
    assert d["healthy_val_fpr"] == pytest.approx((v >= t).mean())
    assert d["rule"] == "healthy_fpr" and m["dice_default_rule"] == "healthy_fpr"
    # the Dice it reports is that threshold's, on the test items with a lesion
    tl = (res.split == "test") & res.lesion.reshape(len(res.lesion), -1).any(1)
    pred = (res.maps[tl] >= t) & (res.brain[tl] != 0)
    assert d["mean"] == pytest.approx(M.dice_per_item(pred, res.lesion[tl]).mean())
    # the seeds' rule keeps its keys' meaning; the oracle is labelled an upper bound and is >= every rule's
    assert m["dice_mean"] == m["dice_by_rule"]["val_lesion_mean"]["all"]["mean"]
    assert m["dice_by_rule"]["test_oracle"]["all"]["upper_bound"] is True
    assert m["dice_by_rule"]["test_oracle"]["all"]["pooled"] == m["dice_oracle_test"] >= m["dice_seed004"]
    lo, hi = d["median_ci"]
    assert lo <= d["median"] <= hi


def test_intervals_cover_the_sklearn_estimates_inside_the_mask():
    res = synthetic("a", "2d", seed=2, noise=0.9)
    m = E.evaluate(res, n_boot=300).metrics
    ci = m["ci"]
    st = E.scan_table(res, "test")
    sk = roc_auc_score(st["label"], st["score"])
    assert (
        ci["scan_auroc"]["estimate"] == pytest.approx(sk)
        and ci["scan_auroc"]["low"] <= sk <= ci["scan_auroc"]["high"]
    )
    for k, iv in ci["scan_auroc_by_kind"].items():
        assert iv["estimate"] == pytest.approx(m["scan_auroc_by_kind"][k])
    t = res.split == "test"
    inside = res.brain[t] != 0
    y, s = res.lesion[t][inside], res.maps[t][inside]
    for key, ref in (("pixel_auroc", roc_auc_score(y, s)), ("pixel_auprc", average_precision_score(y, s))):
        assert m[key] == pytest.approx(ref)
        assert ci[key]["low"] <= ref <= ci[key]["high"], key
        assert ci[key]["n_boot"] == 300 and ci[key]["n_groups"] == 10


def test_patients_group_the_resamples():
    res = synthetic("a", "3d", seed=1)
    one = {s: "p0" if s < "test15" else "p1" for s in np.unique(res.scan_id)}  # two test patients only
    m = E.evaluate(res, n_boot=100, patients=one).metrics
    assert m["ci"]["scan_auroc"]["n_groups"] == 2


def test_scan_operating_point_from_healthy_val_scans():
    res = synthetic("a", "3d", seed=3, noise=0.8)
    m = E.evaluate(res, n_boot=20, scan_fpr=0.0).metrics
    ops = m["scan_operating_points"]
    assert ops["default"] == "healthy_val_quantile"
    sv = E.scan_table(res, "val")
    op = ops["healthy_val_quantile"]
    assert op["threshold"] > sv["score"][sv["label"] == 0].max() and op["val_fpr"] == 0.0
    st = E.scan_table(res, "test")
    assert op["sensitivity"] == pytest.approx((st["score"][st["label"] == 1] >= op["threshold"]).mean())
    assert ops["val_youden"]["rule"] == "val_youden" and ops["test_youden"]["rule"] == "test_youden"


@pytest.mark.parametrize("level", ["2d", "3d"])
def test_slice_sensitivity_default_comes_from_slices_of_healthy_val_scans(level):
    """The default slice operating point uses no label: at most scan_fpr of the slices of healthy validation
    scans are flagged; seed 004's Youden point on labelled validation slices is kept beside it, labelled."""
    from ctad_core.evaluation.slices import slice_table

    res = synthetic("a", level, seed=5, noise=0.8)
    if level == "3d":  # Luo's slice score needs a maps volume per scan: 3D items are (D, H, W)
        v_s, v_y, v_item = slice_table(res, "val", with_item=True)
        healthy = res.kind[v_item] == "healthy"
        t_s, t_y = slice_table(res, "test")
    else:
        v = res.split == "val"
        v_s, healthy = res.scan_score[v].astype(np.float64), res.kind[v] == "healthy"
        t = res.split == "test"
        t_s, t_y = res.scan_score[t].astype(np.float64), E.item_labels(res)[t]
    m = E.evaluate(res, n_boot=20, scan_fpr=0.2).metrics
    op = m["slice_operating_points"]["healthy_val_quantile"]
    hv = np.sort(v_s[healthy])
    thr = op["threshold"]
    assert (hv >= thr).mean() <= 0.2 and op["val_fpr"] == pytest.approx((hv >= thr).mean())
    assert (hv >= hv[hv < thr].max()).mean() > 0.2  # the smallest threshold that keeps to the rate
    assert m["slice_sensitivity"] == pytest.approx((t_s[t_y == 1] >= thr).mean())
    assert m["slice_sensitivity_rule"] == "healthy_val_quantile"
    assert m["slice_operating_points"]["val_youden"]["sensitivity"] == m["slice_sensitivity_val_youden"]
    assert R.metric_rule(m, "slice_sensitivity") == "healthy_val_quantile"
    assert R.metric_rule(m, "slice_sensitivity_val_youden") == "val_youden"


def test_terciles_by_hand():
    g, e = M.size_terciles([5, 1, 9, 3, 7, 2, 8, 4, 6])
    assert e.tolist() == pytest.approx([11 / 3, 19 / 3])
    assert g.tolist() == [1, 0, 2, 0, 2, 0, 2, 1, 1]
    with pytest.raises(ValueError):
        M.size_terciles([])
    # in the evaluator: six lesioned test volumes of 1..6 voxels → two per tercile
    n, sh = 10, (4, 4, 4)
    lesion = np.zeros((n, *sh), np.uint8)
    for i, size in enumerate([0, 0, 1, 2, 3, 4, 5, 6, 2, 0]):
        lesion[i].reshape(-1)[:size] = 1
    split = np.array(["val"] * 2 + ["test"] * 6 + ["val"] * 2)
    kind = np.where(lesion.reshape(n, -1).any(1), "iph", "healthy")
    rng = np.random.default_rng(0)
    maps = rng.random(lesion.shape).astype(np.float32) + lesion
    res = MethodResults(
        "h",
        "3d",
        np.array([f"s{i}" for i in range(n)]),
        split,
        kind,
        maps.reshape(n, -1).max(1),
        maps,
        lesion,
        np.ones_like(lesion),
    )
    bs = E.evaluate(res, n_boot=20).metrics["by_lesion_size"]
    assert [bs["groups"][k]["size_range"] for k in M.TERCILES] == [[1, 2], [3, 4], [5, 6]]
    assert all(bs["groups"][k]["dice"]["rule"] == "healthy_fpr" for k in M.TERCILES)
    p = E.evaluate(res, n_boot=20).metrics["prevalence"]
    assert p["scans"] == 6 and p["scans_lesioned"] == 6
    assert p["lesion_voxels_in_mask"] == 21 and p["mask_voxels"] == 6 * 64


def test_comparison_against_the_best_baseline_matches_scipy():
    def baseline(name, **kw):  # a family that declares itself a baseline writes info["baseline"]
        res = synthetic(name, **kw)
        res.info["baseline"] = True
        return res

    ev = {
        "intensity_hyper": E.evaluate(baseline("intensity_hyper", seed=1, noise=0.5), n_boot=50),
        "intensity_hypo": E.evaluate(baseline("intensity_hypo", seed=2, noise=1.5), n_boot=50),
        "method": E.evaluate(synthetic("method", seed=3, noise=0.9), n_boot=50),
        # named like a baseline but not declared one: a name does not make a baseline
        "dae_like_name": E.evaluate(synthetic("dae_like_name", seed=4, noise=0.1), n_boot=50),
    }
    c = C.compare_to_reference(ev, n_boot=200)
    assert c["baselines"] == ["intensity_hyper", "intensity_hypo"]
    dice = c["dice"]["2d all"]
    ref = dice["reference"]
    assert (
        C.is_baseline(ev[ref]) and dice["reference_is"] == "best baseline" and dice["rule"] == "healthy_fpr"
    )
    da, dr = ev["method"].dice_rules["healthy_fpr"]["all"][0], ev[ref].dice_rules["healthy_fpr"]["all"][0]
    assert dice["vs"]["method"]["p_value"] == pytest.approx(wilcoxon(da, dr).pvalue)
    auc = c["scan_auroc"]["TOTAL"]
    assert C.is_baseline(ev[auc["reference"]]) and "method" in auc["vs"]
    st_m, st_r = ev["method"].scans, ev[auc["reference"]].scans
    diff = roc_auc_score(st_m["label"], st_m["score"]) - roc_auc_score(st_r["label"], st_r["score"])
    assert auc["vs"]["method"]["estimate"] == pytest.approx(diff)
    # without baselines: against the best method
    c2 = C.compare_to_reference(
        {k: v for k, v in ev.items() if k == "method" or k == "intensity_hypo"} | {}, 50
    )
    assert c2["dice"]["2d all"]["reference_is"] == "best baseline"
    ev2 = {"a": ev["method"], "b": E.evaluate(synthetic("b", seed=5, noise=0.4), n_boot=50)}
    c3 = C.compare_to_reference(ev2, n_boot=50)
    assert c3["baselines"] == [] and c3["dice"]["2d all"]["reference_is"] == "best method"


def _walk_dice(x, path=""):
    """Every dict holding a Dice figure (a mean/median/pooled entry) must name its rule."""
    if isinstance(x, dict):
        if ("mean" in x or "median" in x or "pooled" in x) and "dice" in path:
            yield path, x
        for k, v in x.items():
            yield from _walk_dice(v, f"{path}.{k}")


def test_every_dice_in_metrics_json_names_its_rule(tmp_path):
    run = tmp_path / "run"
    save_method_results(run / "restoration", synthetic("fastgan_restoration", seed=1))
    save_method_results(run / "volumetric", synthetic("ae3d", "3d", seed=2))
    R.build_report(run, profile="smoke", n_boot=50)
    rep = json.loads((run / "report" / "metrics.json").read_text())
    rules = set(rep["rules"]["threshold_rules"])
    for name, m in rep["methods"].items():
        found = list(_walk_dice(m, name))
        assert len(found) > 10
        for path, d in found:
            assert d.get("rule") in rules, path
        for k, v in m.items():  # flat Dice numbers are named in rule_of
            if "dice" in k and isinstance(v, float):
                assert m["rule_of"].get(k) in rules, f"{name}.{k}"
    for k, v in rep["wilcoxon"].items():
        assert v["rule"] in rules, k
    tables = {p.stem: p.read_text() for p in (run / "report").glob("*.md")}
    assert "Dice rule" in tables["table3_seed000_dice"] and "UPPER BOUND" in tables["table3_seed000_dice"]
    assert "Dice rule" in tables["summary"] and "Dice rule" in tables["table3_seed004"]
    for stem in ("prevalence", "by_lesion_size", "scan_operating_points", "comparisons_scan_auroc"):
        assert stem in tables, stem


def test_positive_map_score_ranks_haemorrhage_scans_against_healthy_ones():
    """scan_auroc_map_haemorrhage: mean of the top 1 % of max(x − x̂, 0) inside the brain, haemorrhage test
    scans against healthy test scans only (hand computation + scikit-learn)."""
    import dataclasses

    res = synthetic("a", "3d", seed=6, noise=0.9)
    rng = np.random.default_rng(1)
    pos = np.maximum(res.maps - 0.45, 0) + rng.random(res.maps.shape).astype(np.float32) * 0.01
    res_h = dataclasses.replace(res, maps_haemorrhage=pos)
    m = E.evaluate(res_h, n_boot=50).metrics
    test = np.flatnonzero(res.split == "test")
    keep = [i for i in test if res.kind[i] == "healthy" or res.kind[i] in ("iph", "sdh", "iph+fracture")]
    score = []
    for i in keep:
        v = np.sort(pos[i][res.brain[i] != 0].astype(np.float64))[::-1]
        score.append(v[: max(1, int(np.ceil(0.01 * v.size)))].mean())
    label = [int(res.kind[i] != "healthy") for i in keep]
    assert m["scan_auroc_map_haemorrhage"] == pytest.approx(roc_auc_score(label, score))
    assert set(m["scan_auroc_map_haemorrhage_by_kind"]) <= {"iph", "sdh"}
    assert "scan_auroc_map_haemorrhage" in m["ci"]
    assert "scan_auroc_map_haemorrhage" not in E.evaluate(res, n_boot=20).metrics  # no positive residual


def test_validation_figures_for_the_notebook_previews_match_sklearn():
    res = synthetic("a", "2d", seed=7, noise=0.9)
    m = E.evaluate(res, n_boot=20).metrics
    v = res.split == "val"
    sv = E.scan_table(res, "val")
    assert m["val"]["scan_auroc"] == pytest.approx(roc_auc_score(sv["label"], sv["score"]))
    inside = res.brain[v] != 0
    y, s = res.lesion[v][inside], res.maps[v][inside]
    assert m["val"]["pixel_auroc"] == pytest.approx(roc_auc_score(y, s))
    assert m["val"]["pixel_auprc"] == pytest.approx(average_precision_score(y, s))
    assert m["val"]["n_scans"] == 10 and R.metric_rule(m, "val.pixel_auroc") is None
