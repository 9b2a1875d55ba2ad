"""The evaluator: one method's results → every figure of the report, by one set of rules.

Notebooks 04 and 05 preview a method with :func:`evaluate` and notebook 07 builds the report with the very
same call, so a method's numbers are the same wherever they are shown. Rules (the notebook explains them):

- **thresholds come from validation, never from test** (:mod:`.thresholds`): the Dice threshold is the one
  with the best mean per-item Dice on the validation items with a lesion (seed 000), chosen separately for
  the haemorrhage subset and for all lesions; [DICE] (seed 004) is the pooled-Dice-optimal validation
  threshold applied to the pooled test voxels; the scan operating point is Youden's on the validation scans.
  ``dice_oracle_test`` (the best threshold *on test*) is reported only as an upper bound.
- **the method's declared segmentation step** (:mod:`.segmentation`: closing, majority vote of the
  members, evaluation mask, small components) is applied at every threshold before any Dice, in the
  threshold search as on test: the report scores what each paper does.
- **items vs scans**: a 2D method's items are slices; its scan score is the **max** over the scan's slice
  scores. A 3D method's items are scans.
- **two scan scores**: each method's own (``scan_auroc``) and, for every method with maps, the same map
  score (``scan_auroc_map``: mean of the top 1 % of the map inside the mask; max over slices in 2D).
- **slice level** (seed 004 Table 2): 2D items are slices and use their own score; a 3D method's slices are
  scored by Luo's normality score, 1 − s(u) (:mod:`.slices`).
- **pixel metrics** (AUROC, AUPRC) pool all test items' pixels inside the evaluation mask, healthy items
  included, on the continuous ``maps``.
- **per-item figures**: mean, sample SD (``ddof=1``) and median over the test items with a lesion
  (:func:`ctad_core.evaluation.metrics.summary`).
- haemorrhage kinds are :data:`ctad_core.kinds.HAEMORRHAGE_KINDS`; as seed 000 did, the haemorrhage Dice
  uses the method's ρ = max(·, 0) maps where it wrote them.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctad_core import anomaly
from ctad_core.evaluation import metrics as M
from ctad_core.evaluation.segmentation import declared_segmentation, segment
from ctad_core.evaluation.slices import slice_table
from ctad_core.evaluation.thresholds import DICE_GRID, sweep
from ctad_core.kinds import HEALTHY, is_haemorrhage, kind_parts
from ctad_core.results import MethodResults

#: how a 2D method's slice scores become a scan score.
SCAN_AGGREGATE = "max"


def scan_table(res: MethodResults, split: str, score: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-scan scores of one split: 2D slice scores aggregated by ``max``, 3D items as they are.

    Args:
        res: the method's results.
        split: ``"val"`` or ``"test"``.
        score: (N,) per-item scores to aggregate instead of ``res.scan_score``.

    Returns:
        ``{"scan_id", "score", "label", "kind"}`` arrays, one row per scan (sorted by scan id).
    """
    sel = np.asarray(res.split).astype(str) == split
    sid = np.asarray(res.scan_id).astype(str)[sel]
    s_all = np.asarray(res.scan_score if score is None else score, dtype=np.float64)
    if s_all.shape != (len(res.scan_id),):
        raise ValueError(f"{res.name}: scores have shape {s_all.shape}, expected ({len(res.scan_id)},)")
    s = s_all[sel]
    kind = np.asarray(res.kind).astype(str)[sel]
    ids = np.unique(sid)
    out_s = np.array([s[sid == i].max() for i in ids]) if ids.size else np.zeros(0)
    out_k = np.array([kind[sid == i][0] for i in ids]) if ids.size else np.zeros(0, str)
    return {"scan_id": ids, "score": out_s, "label": (out_k != HEALTHY).astype(int), "kind": out_k}


def item_labels(res: MethodResults) -> np.ndarray:
    """(N,) 1 where an item is abnormal: its lesion mask is non-empty (or, without masks, its kind is not healthy)."""
    if res.lesion is not None:
        return (res.lesion.reshape(len(res.lesion), -1) != 0).any(1).astype(int)
    return (np.asarray(res.kind).astype(str) != HEALTHY).astype(int)


@dataclass
class MethodEvaluation:
    """Everything :func:`evaluate` computed for one method: JSON-able ``metrics`` plus arrays for figures.

    Attributes:
        name: method name.
        metrics: what goes into ``metrics.json``.
        sweeps: validation Dice-vs-threshold sweeps of the declared segmentation (``"all"``,
            ``"haemorrhage"``, and ``"pooled"`` for [DICE]) — seed 000 Fig. 6.
        dice_test: per-item test Dice at the validation threshold, by subset, with the items' indices.
        segmentation_test: the test segmentations at the validation threshold, by subset (``(n, *spatial)``
            uint8, rows in the order of ``dice_test``'s indices).
        roc_scan: test scan-level (fpr, tpr).
        roc_pixel: test pixel-level (fpr, tpr), thinned to at most ``max_roc_points`` points.
        scans: the test scan table.
    """

    name: str
    metrics: dict[str, Any]
    sweeps: dict[str, M.DiceSweep] = field(default_factory=dict)
    dice_test: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    segmentation_test: dict[str, np.ndarray] = field(default_factory=dict)
    roc_scan: tuple[np.ndarray, np.ndarray] | None = None
    roc_pixel: tuple[np.ndarray, np.ndarray] | None = None
    scans: dict[str, np.ndarray] | None = None


def _thin(fpr: np.ndarray, tpr: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if fpr.size <= k:
        return fpr, tpr
    idx = np.unique(np.r_[np.linspace(0, fpr.size - 1, k).astype(int), fpr.size - 1])
    return fpr[idx], tpr[idx]


def _sensitivity_at_val_youden(v_s, v_y, t_s, t_y) -> tuple[float, float]:
    yv = M.youden_threshold(v_s, v_y)
    if not math.isfinite(yv.threshold):
        return float("nan"), float("nan")
    return M.operating_point(t_s, t_y, yv.threshold).sensitivity, yv.threshold


def _scan_level(res: MethodResults, ev: MethodEvaluation) -> None:
    m = ev.metrics
    sv, st = scan_table(res, "val"), scan_table(res, "test")
    ev.scans = st
    m["n_test_scans"] = int(st["scan_id"].size)
    m["scan_aggregate"] = SCAN_AGGREGATE if res.level == "2d" else "item"
    m["scan_auroc"] = M.roc_auc(st["score"], st["label"])
    m["scan_auprc"] = M.average_precision(st["score"], st["label"])
    m["scan_auroc_by_kind"] = M.per_kind_auroc(st["score"], st["kind"])
    hs = is_haemorrhage(st["kind"]) | (st["kind"] == HEALTHY)
    m["scan_auroc_haemorrhage"] = M.roc_auc(st["score"][hs], st["label"][hs]) if hs.any() else float("nan")
    if res.maps is not None:
        ms = anomaly.scan_score(res.maps, res.brain, top_fraction=0.01, spatial_dims=res.maps.ndim - 1)
        sm = scan_table(res, "test", score=ms)
        m["scan_auroc_map"] = M.roc_auc(sm["score"], sm["label"])
        m["scan_auroc_map_by_kind"] = M.per_kind_auroc(sm["score"], sm["kind"])
    # further per-item scores a method declares in info["scores"] (e.g. CTFSH's I and F, seed 002 Eq. 3)
    extra = res.info.get("scores") or {}
    for k, v in extra.items():
        sk = scan_table(res, "test", score=np.asarray(v, dtype=np.float64))
        m.setdefault("scan_auroc_by_score", {})[k] = {
            "total": M.roc_auc(sk["score"], sk["label"]),
            "by_kind": M.per_kind_auroc(sk["score"], sk["kind"]),
        }
    yv = M.youden_threshold(sv["score"], sv["label"])
    op = M.operating_point(st["score"], st["label"], yv.threshold) if math.isfinite(yv.threshold) else yv
    m["scan_operating_point"] = {**op.as_dict(), "chosen_on": "val (Youden)"}
    m["scan_youden_test"] = {
        **M.youden_threshold(st["score"], st["label"]).as_dict(),
        "chosen_on": "test (oracle)",
    }
    if st["score"].size:
        fpr, tpr, _ = M.roc_curve(st["score"], st["label"])
        ev.roc_scan = (fpr, tpr)


def _slice_level(res: MethodResults, ev: MethodEvaluation, val: np.ndarray, test: np.ndarray) -> None:
    m = ev.metrics
    if res.level == "2d":
        lab = item_labels(res)
        score = np.asarray(res.scan_score, dtype=np.float64)
        v_s, v_y, t_s, t_y = score[val], lab[val], score[test], lab[test]
        m["slice_score"] = "the method's item score"
    elif res.maps is not None and res.maps.ndim == 4:
        v_s, v_y = slice_table(res, "val")
        t_s, t_y = slice_table(res, "test")
        m["slice_score"] = "1 - s(u), Luo's normality score of the summed map (seed 004 App. E1)"
    else:
        return
    m["n_test_slices"] = int(t_y.size)
    m["slice_auroc"] = M.roc_auc(t_s, t_y)
    m["slice_auprc"] = M.average_precision(t_s, t_y)
    m["slice_sensitivity"], m["slice_threshold_val"] = _sensitivity_at_val_youden(v_s, v_y, t_s, t_y)


def _dice(
    res: MethodResults,
    ev: MethodEvaluation,
    val,
    test,
    dice_thresholds: int,
    min_lesion_dice: float,
    keep_segmentations: bool = True,
) -> None:
    m = ev.metrics
    kind = np.asarray(res.kind).astype(str)
    les = res.lesion != 0
    has_les = item_labels(res) == 1
    haem = is_haemorrhage(kind)
    m["segmentation"] = dict(declared_segmentation(res))
    for subset, sub in (("all", np.ones_like(has_les)), ("haemorrhage", haem)):
        vsel, tsel = val & has_les & sub, test & has_les & sub
        if not vsel.any() or not tsel.any():
            m[f"dice_{subset}"] = {
                "n": int(tsel.sum()),
                "threshold": None,
                "mean": None,
                "median": None,
                "sd": None,
            }
            continue
        h = subset == "haemorrhage"
        sw = sweep(res, vsel, dice_thresholds, "mean", haemorrhage=h)
        ev.sweeps[subset] = sw
        pred = segment(res, sw.best_threshold, tsel, haemorrhage=h)
        d = M.dice_per_item(pred, les[tsel])
        ev.dice_test[subset] = (d, np.flatnonzero(tsel))
        if keep_segmentations:
            ev.segmentation_test[subset] = pred
        uses_pos = h and (res.maps_haemorrhage is not None or res.member_maps_haemorrhage is not None)
        m[f"dice_{subset}"] = {
            **M.summary(d),
            "threshold": sw.best_threshold,
            "val_mean_dice": sw.best_dice,
            "residual": "max(x - x_hat, 0)" if uses_pos else "the method's map",
        }
        if subset == "all":
            s = M.summary(d)
            m["dice_threshold"] = sw.best_threshold
            m["dice_mean"], m["dice_median"], m["dice_sd"] = s["mean"], s["median"], s["sd"]
            m["dice_by_kind"] = {
                k: M.summary(d[[k in kind_parts(x) for x in kind[tsel]]])
                for k in sorted(set().union(*[kind_parts(x) for x in kind[tsel]]))
            }
            det = M.lesion_detection_rate(pred, les[tsel], min_dice=min_lesion_dice)
            m["lesion_detection"] = {**det, "min_dice": min_lesion_dice}
    # seed 004 [DICE]: the pooled-Dice threshold of validation, pooled Dice of the declared segmentation on test
    vl, tl = val & has_les, test & has_les
    if vl.any() and tl.any():
        sw = sweep(res, vl, dice_thresholds, "pooled")
        ev.sweeps["pooled"] = sw
        pred = segment(res, sw.best_threshold, tl)
        m["dice_seed004"] = M.dice(pred, les[tl])
        m["dice_seed004_threshold"] = sw.best_threshold
        m["dice_seed004_val"] = sw.best_dice
        m["dice_oracle_test"] = sweep(res, tl, dice_thresholds, "pooled").best_dice


def _recon_error(res: MethodResults, m: dict[str, Any], test: np.ndarray) -> None:
    """Seed 000's reconstruction-error statistics from ``res.inputs`` and ``res.recon``, or why there are none."""
    missing = [k for k in ("inputs", "recon") if getattr(res, k) is None]
    if missing:
        m["recon_error"] = {"unavailable": f"the results carry no {' and no '.join(missing)}"}
        return
    if res.inputs.shape != res.recon.shape:
        raise ValueError(
            f"{res.name}: inputs have shape {res.inputs.shape} but recon has shape {res.recon.shape}"
        )
    lab = item_labels(res)
    m["recon_error"] = {}
    for label, sel in (("normal", test & (lab == 0)), ("abnormal", test & (lab == 1))):
        if sel.any():
            m["recon_error"][label] = M.recon_error_stats(
                res.inputs[sel],
                res.recon[sel],
                value_range=(-1.0, 1.0),
                mask=None if res.brain is None else res.brain[sel],
            )


def _timing(res: MethodResults, m: dict[str, Any]) -> None:
    """Seconds per scan: ``info["seconds_per_scan"]``, or ``seconds_per_item`` × ``items_per_scan`` (2D)."""
    info = res.info
    if "seconds_unit" in info:
        raise ValueError(
            f"{res.name}: info['seconds_unit'] is no longer read; write seconds_per_item and items_per_scan "
            "(2D: seconds per slice and slices per scan) or seconds_per_scan"
        )
    if info.get("seconds_per_item") is not None:
        if info.get("items_per_scan") is None:
            raise ValueError(f"{res.name}: info has seconds_per_item but no items_per_scan")
        m["seconds_per_item"] = float(info["seconds_per_item"])
        m["items_per_scan"] = float(info["items_per_scan"])
        m["seconds_per_scan"] = m["seconds_per_item"] * m["items_per_scan"]
    else:
        m["seconds_per_scan"] = info.get("seconds_per_scan")
    for k in ("device", "feature_space"):
        if k in info:
            m[k] = info[k]


def evaluate(
    res: MethodResults,
    dice_thresholds: int = DICE_GRID,
    min_lesion_dice: float = 0.1,
    max_roc_points: int = 2000,
    keep_segmentations: bool = True,
) -> MethodEvaluation:
    """Evaluate one method on its test items, with every threshold chosen on its validation items.

    Args:
        res: the method's results (val + test items).
        dice_thresholds: size of the threshold grid (:data:`~ctad_core.evaluation.thresholds.DICE_GRID`;
            keep the default so that previews and the report agree).
        min_lesion_dice: a lesion counts as detected when its Dice exceeds this (seed 000: 0.1).
        max_roc_points: pixel ROC curves are thinned to this many points for plotting.
        keep_segmentations: keep the test segmentations (for figures) in the result; False keeps memory
            flat when many volumetric methods are evaluated in one process (metrics are the same).

    Returns:
        A :class:`MethodEvaluation`.

    Raises:
        ValueError: a malformed segmentation declaration (see :mod:`.segmentation`), inputs and
            reconstructions of different shapes, or an outdated timing field.
    """
    t0 = time.perf_counter()
    split = np.asarray(res.split).astype(str)
    val, test = split == "val", split == "test"
    m: dict[str, Any] = {
        "level": res.level,
        "model_dims": res.model_dims,
        "n_val_items": int(val.sum()),
        "n_test_items": int(test.sum()),
    }
    ev = MethodEvaluation(res.name, m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.MetricWarning)
        _scan_level(res, ev)
        _slice_level(res, ev, val, test)
        if res.maps is not None and res.lesion is not None:
            les = res.lesion != 0
            brain = res.brain if res.brain is not None else np.ones(res.maps.shape, np.uint8)
            m["pixel_auroc"] = M.roc_auc(res.maps[test], les[test], brain[test])
            m["pixel_auprc"] = M.average_precision(res.maps[test], les[test], brain[test])
            fpr, tpr, _ = M.roc_curve(res.maps[test], les[test], brain[test])
            ev.roc_pixel = _thin(fpr, tpr, max_roc_points)
            kind = np.asarray(res.kind).astype(str)
            haem = is_haemorrhage(kind)
            maps_h = res.maps_haemorrhage if res.maps_haemorrhage is not None else res.maps
            h_items = test & ((kind == HEALTHY) | haem)
            if (h_items & haem & (item_labels(res) == 1)).any():
                m["pixel_auroc_haemorrhage"] = M.roc_auc(maps_h[h_items], les[h_items], brain[h_items])
            _dice(res, ev, val, test, dice_thresholds, min_lesion_dice, keep_segmentations)
    _recon_error(res, m, test)
    _timing(res, m)
    m["eval_seconds"] = time.perf_counter() - t0
    return ev


def compare_dice(evals: Mapping[str, MethodEvaluation], subset: str = "all") -> dict[str, dict[str, float]]:
    """Paired Wilcoxon tests of per-item test Dice between every two methods that share the same items."""
    out: dict[str, dict[str, float]] = {}
    names = [n for n in evals if subset in evals[n].dice_test]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            da, ia = evals[a].dice_test[subset]
            db, ib = evals[b].dice_test[subset]
            if (
                evals[a].metrics["level"] != evals[b].metrics["level"]
                or ia.shape != ib.shape
                or (ia != ib).any()
            ):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", M.MetricWarning)
                stat, p = M.wilcoxon_dice(da, db)
            out[f"{a} vs {b}"] = {"statistic": stat, "p_value": p, "n": int(da.size)}
    return out


def compare_on_common_scans(a: MethodResults, b: MethodResults, split: str = "test") -> dict[str, float]:
    """Scan AUROC of two methods on the scans both scored (Viana's 2D-vs-3D comparison, seed 001).

    Returns:
        ``{"n_scans", "auroc_<a.name>", "auroc_<b.name>"}`` on the common scans of ``split``.
    """
    ta, tb = scan_table(a, split), scan_table(b, split)
    common = np.intersect1d(ta["scan_id"], tb["scan_id"])
    out: dict[str, float] = {"n_scans": int(common.size)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.MetricWarning)
        for r, t in ((a, ta), (b, tb)):
            keep = np.isin(t["scan_id"], common)
            out[f"auroc_{r.name}"] = M.roc_auc(t["score"][keep], t["label"][keep])
    return out


def auroc_table(evals: Mapping[str, MethodEvaluation], score: str | None = None) -> Any:
    """Per-pathology test scan AUROC, kinds as rows and methods as columns (the shape of CTFSH Tables 1–3).

    Args:
        evals: evaluations by method name.
        score: None for each method's own scan score, or the name of a score the method declared in
            ``info["scores"]`` (e.g. ``"F"``); methods without it are left out.

    Returns:
        A pandas DataFrame with a final ``TOTAL`` row.
    """
    import pandas as pd

    cols = {}
    for name, ev in evals.items():
        m = ev.metrics
        if score is None:
            cols[name] = {**m["scan_auroc_by_kind"], "TOTAL": m["scan_auroc"]}
        elif score in (m.get("scan_auroc_by_score") or {}):
            s = m["scan_auroc_by_score"][score]
            cols[name] = {**s["by_kind"], "TOTAL": s["total"]}
    df = pd.DataFrame(cols)
    if "TOTAL" in df.index:
        df = df.loc[[i for i in df.index if i != "TOTAL"] + ["TOTAL"]]
    return df


def roc_curves(evals: Mapping[str, MethodEvaluation]) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Test scan-level ROC curve (fpr, tpr, AUROC) of each evaluated method."""
    return {
        n: (ev.roc_scan[0], ev.roc_scan[1], ev.metrics["scan_auroc"])
        for n, ev in evals.items()
        if ev.roc_scan is not None
    }


def evaluate_all(results: Sequence[MethodResults], **kwargs: Any) -> dict[str, MethodEvaluation]:
    """:func:`evaluate` for several methods, by name."""
    return {r.name: evaluate(r, **kwargs) for r in results}


__all__ = [
    "SCAN_AGGREGATE",
    "MethodEvaluation",
    "auroc_table",
    "compare_dice",
    "compare_on_common_scans",
    "evaluate",
    "evaluate_all",
    "item_labels",
    "roc_curves",
    "scan_table",
]
