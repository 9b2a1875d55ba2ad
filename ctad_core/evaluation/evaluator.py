"""The evaluator: one method's results → every figure of the report, by one set of rules.

Notebooks 04 and 05 preview a method with :func:`evaluate` and notebook 07 builds the report with the very
same call, so a method's numbers are the same wherever they are shown. Rules (the notebook explains them):

- **thresholds come from validation, never from test, and every Dice names its rule**
  (:data:`THRESHOLD_RULES`, the ``rule`` field; flat legacy keys are named in ``rule_of``). The default,
  ``healthy_fpr``, uses healthy validation scans only: the threshold at which the method's segmentation
  step flags ``fpr`` (1 %) of their evaluation-mask voxels (:func:`.thresholds.healthy_fpr_threshold`).
  Beside it, the seeds' rules, which use labelled validation lesions: ``val_lesion_mean`` (best mean
  per-item Dice, chosen separately for the haemorrhage subset and for all lesions, seed 000 — the flat
  ``dice_mean``/``dice_median``/``dice_all``/``dice_haemorrhage`` keys) and ``val_lesion_pooled`` ([DICE],
  seed 004, pooled test Dice — ``dice_seed004``); ``test_oracle`` (the best threshold *on test*,
  ``dice_oracle_test``) is only an upper bound. All of them: ``dice_by_rule[rule][subset]``.
- **scan operating points** (:data:`SCAN_RULES`): by default the threshold that flags at most ``scan_fpr``
  of the healthy validation scans; Youden's J on the labelled validation scans (``scan_operating_point``,
  the seeds') beside it, and Youden on test as an upper bound.
- **uncertainty** (:mod:`.intervals`): 95 % percentile intervals of ``n_boot`` resamples of patients
  (``ci``): scan AUROC overall and per kind (own and map score), pixel AUROC and AUPRC (binned, inside the
  evaluation mask), median Dice (``median_ci`` of each rule's entry); the test set's ``prevalence`` and
  results by lesion-size tercile (``by_lesion_size``).
- **the method's declared segmentation step** (:mod:`.segmentation`: closing, majority vote of the
  members, evaluation mask, small components) is applied at every threshold before any Dice, in the
  threshold search as on test: the report scores what each paper does.
- **items vs scans**: a 2D method's items are slices; its scan score is the **max** over the scan's slice
  scores. A 3D method's items are scans.
- **two scan scores**: each method's own (``scan_auroc``) and, for every method with maps, the same map
  score (``scan_auroc_map``: mean of the top 1 % of the map inside the mask; max over slices in 2D), and
  for methods with a positive residual the same score of max(x − x̂, 0), haemorrhage test scans against
  healthy ones (``scan_auroc_map_haemorrhage``; ``docs/diagnosis.md`` shows why the papers' whole-volume
  scores rank heads rather than bleeds).
- **slice level** (seed 004 Table 2): 2D items are slices and use their own score; a 3D method's slices are
  scored by Luo's normality score, 1 − s(u) (:mod:`.slices`). Slice sensitivity at the default operating
  point (``slice_sensitivity``, rule ``healthy_val_quantile``): the threshold flagging at most ``scan_fpr``
  of the slices of healthy validation scans; seed 004's Youden point on labelled validation slices beside
  it (``slice_sensitivity_val_youden``); both in ``slice_operating_points``.
- **pixel metrics** (AUROC, AUPRC) pool all test items' pixels inside the evaluation mask, healthy items
  included, on the continuous ``maps``.
- **per-item figures**: mean, sample SD (``ddof=1``) and median over the test items with a lesion
  (:func:`ctad_core.evaluation.metrics.summary`).
- **head mask**: a full-head method (results with ``head``) is also scored on the kinds outside the brain
  (:data:`ctad_core.kinds.OUTSIDE_BRAIN_KINDS`: fracture) inside its head mask — extra, labelled figures in
  ``metrics["head_mask"]`` beside the brain-mask ones, which stay as they are.
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
from ctad_core.evaluation import intervals as CI
from ctad_core.evaluation import metrics as M
from ctad_core.evaluation.segmentation import declared_segmentation, segment
from ctad_core.evaluation.slices import slice_table
from ctad_core.evaluation.thresholds import DICE_GRID, healthy_fpr_threshold, sweep, sweep_both
from ctad_core.evaluation.unsupervised import quantile_threshold
from ctad_core.kinds import (
    HAEMORRHAGE_KINDS,
    HEALTHY,
    LESION_CODES,
    OUTSIDE_BRAIN_KINDS,
    is_haemorrhage,
    kind_parts,
)
from ctad_core.results import MethodResults

#: how a 2D method's slice scores become a scan score.
SCAN_AGGREGATE = "max"

#: the rule that chose a Dice threshold: its id (the ``rule`` field of every Dice) and what it means.
THRESHOLD_RULES: dict[str, str] = {
    "healthy_fpr": "healthy validation scans only: the threshold at which the method's segmentation step "
    "flags a fixed fraction (fpr) of their evaluation-mask voxels — the default, no lesion label used",
    "val_lesion_mean": "best mean per-item Dice on the validation items with a lesion, one threshold per test "
    "set (seed 000: haemorrhage and all lesions)",
    "val_lesion_pooled": "best pooled Dice on the validation items with a lesion ([DICE], seed 004)",
    "test_oracle": "best Dice on the test items themselves: an UPPER BOUND, not a result",
}
#: the rule of the headline Dice.
DEFAULT_RULE = "healthy_fpr"
#: the scan operating points (sensitivity / specificity): id → meaning.
SCAN_RULES: dict[str, str] = {
    "healthy_val_quantile": "the threshold flagging at most scan_fpr of the healthy validation scans "
    "(their scores only) — the default",
    "val_youden": "Youden's J on the labelled validation scans (uses lesion labels)",
    "test_youden": "Youden's J on the test scans themselves: an UPPER BOUND, not a result",
}


def scan_table(
    res: MethodResults,
    split: str,
    score: np.ndarray | None = None,
    patients: Mapping[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """Per-scan scores of one split: 2D slice scores aggregated by ``max``, 3D items as they are.

    Args:
        res: the method's results.
        split: ``"val"`` or ``"test"``.
        score: (N,) per-item scores to aggregate instead of ``res.scan_score``.
        patients: scan id → patient id (default: every scan its own patient).

    Returns:
        ``{"scan_id", "score", "label", "kind", "patient"}`` arrays, one row per scan (sorted by scan id).
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
    pat = np.array([str((patients or {}).get(i, i)) for i in ids], dtype=object).astype(str)
    return {
        "scan_id": ids,
        "score": out_s,
        "label": (out_k != HEALTHY).astype(int),
        "kind": out_k,
        "patient": pat,
    }


def item_patients(res: MethodResults, patients: Mapping[str, str] | None = None) -> np.ndarray:
    """(N,) patient of each item (``patients`` maps scan id → patient; default: the scan is the patient)."""
    sid = np.asarray(res.scan_id).astype(str)
    if not patients:
        return sid
    return np.array([str(patients.get(i, i)) for i in sid])


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
        scans: the test scan table (with each scan's patient); scans_map: the same with the map score.
        dice_rules: per-item test Dice by threshold rule and subset, with the items' indices
            (``dice_rules[rule][subset] = (dice, indices)``; ``dice_test`` is ``dice_rules["val_lesion_mean"]``).
    """

    name: str
    metrics: dict[str, Any]
    sweeps: dict[str, M.DiceSweep] = field(default_factory=dict)
    dice_test: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    segmentation_test: dict[str, np.ndarray] = field(default_factory=dict)
    roc_scan: tuple[np.ndarray, np.ndarray] | None = None
    roc_pixel: tuple[np.ndarray, np.ndarray] | None = None
    scans: dict[str, np.ndarray] | None = None
    scans_map: dict[str, np.ndarray] | None = None
    dice_rules: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)


def _thin(fpr: np.ndarray, tpr: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if fpr.size <= k:
        return fpr, tpr
    idx = np.unique(np.r_[np.linspace(0, fpr.size - 1, k).astype(int), fpr.size - 1])
    return fpr[idx], tpr[idx]


def healthy_scan_threshold(val_scans: Mapping[str, np.ndarray], scan_fpr: float) -> tuple[float, float]:
    """The default scan operating point (``healthy_val_quantile``): the smallest threshold that flags
    (``score >= t``) at most ``scan_fpr`` of the healthy validation scans, from their scores only.

    Args:
        val_scans: the validation scan table (:func:`scan_table` of ``"val"``).
        scan_fpr: target fraction of healthy validation scans flagged, in [0, 1).

    Returns:
        ``(threshold, fraction of healthy validation scans it flags)``.

    Raises:
        ValueError: no healthy validation scan, or ``scan_fpr`` outside [0, 1).
    """
    hv = np.asarray(val_scans["score"])[np.asarray(val_scans["label"]) == 0]
    if hv.size == 0:
        raise ValueError("no healthy validation scan to set the scan operating point on")
    t = quantile_threshold(hv, None, scan_fpr)
    return t, float((hv >= t).mean())


def _sensitivity_at_val_youden(v_s, v_y, t_s, t_y) -> tuple[float, float]:
    yv = M.youden_threshold(v_s, v_y)
    if not math.isfinite(yv.threshold):
        return float("nan"), float("nan")
    return M.operating_point(t_s, t_y, yv.threshold).sensitivity, yv.threshold


def _kind_masks(kinds: np.ndarray) -> dict[str, np.ndarray]:
    """Per lesion kind: the scans of that kind (a compound kind counts for each part) plus the healthy ones."""
    kinds = np.asarray(kinds).astype(str)
    parts = [kind_parts(k) for k in kinds]
    names = sorted({p for ps in parts for p in ps} - {HEALTHY})
    healthy = kinds == HEALTHY
    return {k: healthy | np.array([k in ps for ps in parts]) for k in names}


def _auroc_ci(score, label, groups, sel, n_boot, seed) -> dict[str, Any]:
    if not (np.any(label[sel] == 1) and np.any(label[sel] == 0)):
        return {"estimate": float("nan"), "low": float("nan"), "high": float("nan"), "n_boot": n_boot}
    iv = CI.auroc_interval(score[sel], label[sel], groups[sel], n_boot=n_boot, seed=seed)
    return iv.as_dict()


def _scan_cis(t: Mapping[str, np.ndarray], n_boot: int, seed: int) -> dict[str, Any]:
    """Patient-resampled 95 % intervals of a scan table's AUROC, overall and per kind."""
    allsel = np.ones(t["score"].size, bool)
    out = {"total": _auroc_ci(t["score"], t["label"], t["patient"], allsel, n_boot, seed)}
    out["by_kind"] = {
        k: _auroc_ci(t["score"], t["label"], t["patient"], sel, n_boot, seed)
        for k, sel in _kind_masks(t["kind"]).items()
    }
    return out


def _scan_level(res: MethodResults, ev: MethodEvaluation, opts: Mapping[str, Any]) -> None:
    m = ev.metrics
    pats = opts["patients"]
    sv, st = scan_table(res, "val", patients=pats), scan_table(res, "test", patients=pats)
    ev.scans = st
    m["n_test_scans"] = int(st["scan_id"].size)
    m["scan_aggregate"] = SCAN_AGGREGATE if res.level == "2d" else "item"
    m["scan_auroc"] = M.roc_auc(st["score"], st["label"])
    m["scan_auprc"] = M.average_precision(st["score"], st["label"])
    m["scan_auroc_by_kind"] = M.per_kind_auroc(st["score"], st["kind"])
    hs = is_haemorrhage(st["kind"]) | (st["kind"] == HEALTHY)
    m["scan_auroc_haemorrhage"] = M.roc_auc(st["score"][hs], st["label"][hs]) if hs.any() else float("nan")
    ci = m.setdefault("ci", {})
    if st["score"].size:
        c = _scan_cis(st, opts["n_boot"], opts["seed"])
        ci["scan_auroc"], ci["scan_auroc_by_kind"] = c["total"], c["by_kind"]
    if res.maps is not None:
        ms = anomaly.scan_score(res.maps, res.brain, top_fraction=0.01, spatial_dims=res.maps.ndim - 1)
        sm = scan_table(res, "test", score=ms, patients=pats)
        ev.scans_map = sm
        m["scan_auroc_map"] = M.roc_auc(sm["score"], sm["label"])
        m["scan_auroc_map_by_kind"] = M.per_kind_auroc(sm["score"], sm["kind"])
        if sm["score"].size:
            c = _scan_cis(sm, opts["n_boot"], opts["seed"])
            ci["scan_auroc_map"], ci["scan_auroc_map_by_kind"] = c["total"], c["by_kind"]
    if res.maps_haemorrhage is not None:
        # haemorrhage is brighter than healthy tissue: the same map score on the positive residual
        # max(x − x̂, 0) (seed 000's haemorrhage map), haemorrhage test scans against healthy ones
        mh = anomaly.scan_score(
            res.maps_haemorrhage, res.brain, top_fraction=0.01, spatial_dims=res.maps_haemorrhage.ndim - 1
        )
        sh = scan_table(res, "test", score=mh, patients=pats)
        keep = is_haemorrhage(sh["kind"]) | (sh["kind"] == HEALTHY)
        sh = {k: np.asarray(v)[keep] for k, v in sh.items()}
        if sh["score"].size:
            m["scan_auroc_map_haemorrhage"] = M.roc_auc(sh["score"], sh["label"])
            # per haemorrhage kind (a compound such as iph+fracture counts for iph only here)
            by_kind = M.per_kind_auroc(sh["score"], sh["kind"])
            m["scan_auroc_map_haemorrhage_by_kind"] = {
                k: v for k, v in by_kind.items() if k in HAEMORRHAGE_KINDS
            }
            c = _scan_cis(sh, opts["n_boot"], opts["seed"])
            ci["scan_auroc_map_haemorrhage"] = c["total"]
            ci["scan_auroc_map_haemorrhage_by_kind"] = {
                k: v for k, v in c["by_kind"].items() if k in HAEMORRHAGE_KINDS
            }
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
    m["scan_operating_point"] = {**op.as_dict(), "chosen_on": "val (Youden)", "rule": "val_youden"}
    m["scan_youden_test"] = {
        **M.youden_threshold(st["score"], st["label"]).as_dict(),
        "chosen_on": "test (oracle)",
        "rule": "test_youden",
    }
    ops: dict[str, Any] = {"default": "healthy_val_quantile", "scan_fpr": opts["scan_fpr"]}
    hv = sv["score"][sv["label"] == 0]
    if hv.size and st["score"].size:
        t, val_fpr = healthy_scan_threshold(sv, opts["scan_fpr"])
        ops["healthy_val_quantile"] = {
            **M.operating_point(st["score"], st["label"], t).as_dict(),
            "val_fpr": val_fpr,
            "n_val_healthy": int(hv.size),
            "rule": "healthy_val_quantile",
        }
    ops["val_youden"] = m["scan_operating_point"]
    ops["test_youden"] = m["scan_youden_test"]
    m["scan_operating_points"] = ops
    if st["score"].size:
        fpr, tpr, _ = M.roc_curve(st["score"], st["label"])
        ev.roc_scan = (fpr, tpr)


def _slice_level(
    res: MethodResults, ev: MethodEvaluation, val: np.ndarray, test: np.ndarray, opts: Mapping[str, Any]
) -> None:
    m = ev.metrics
    kinds = np.asarray(res.kind).astype(str)
    if res.level == "2d":
        lab = item_labels(res)
        score = np.asarray(res.scan_score, dtype=np.float64)
        v_s, v_y, t_s, t_y = score[val], lab[val], score[test], lab[test]
        v_healthy = kinds[val] == HEALTHY
        m["slice_score"] = "the method's item score"
    elif res.maps is not None and res.maps.ndim == 4:
        v_s, v_y, v_item = slice_table(res, "val", with_item=True)
        t_s, t_y = slice_table(res, "test")
        v_healthy = kinds[v_item] == HEALTHY
        m["slice_score"] = "1 - s(u), Luo's normality score of the summed map (seed 004 App. E1)"
    else:
        return
    m["n_test_slices"] = int(t_y.size)
    m["slice_auroc"] = M.roc_auc(t_s, t_y)
    m["slice_auprc"] = M.average_precision(t_s, t_y)
    # seed 004 Table 3's operating point: Youden's J on labelled validation slices (kept, labelled)
    m["slice_sensitivity_val_youden"], m["slice_threshold_val"] = _sensitivity_at_val_youden(
        v_s, v_y, t_s, t_y
    )
    m["slice_sensitivity_val_youden_rule"] = "val_youden"
    ops: dict[str, Any] = {"default": "healthy_val_quantile", "scan_fpr": opts["scan_fpr"]}
    ops["val_youden"] = {
        "sensitivity": m["slice_sensitivity_val_youden"],
        "threshold": m["slice_threshold_val"],
        "rule": "val_youden",
    }
    # the default needs no label: flag at most scan_fpr of the slices of healthy validation scans
    m["slice_sensitivity"], m["slice_sensitivity_rule"] = float("nan"), "healthy_val_quantile"
    if np.any(v_healthy) and t_s.size:
        hv = v_s[v_healthy]
        t = quantile_threshold(hv, None, opts["scan_fpr"])
        op = M.operating_point(t_s, t_y, t)
        ops["healthy_val_quantile"] = {
            **op.as_dict(),
            "val_fpr": float((hv >= t).mean()),
            "n_val_healthy_slices": int(hv.size),
            "rule": "healthy_val_quantile",
        }
        m["slice_sensitivity"] = op.sensitivity
    m["slice_operating_points"] = ops


def _dice_entry(
    d: np.ndarray,
    rule: str,
    threshold: float | None,
    groups: np.ndarray,
    opts: Mapping[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """Summary of per-item Dice under one rule, with the patient-resampled interval of the median."""
    out: dict[str, Any] = {**M.summary(d), "rule": rule, "threshold": threshold, **extra}
    if d.size:
        iv = CI.bootstrap_ci(
            lambda i: float(np.median(d[i])), groups, n_boot=opts["n_boot"], seed=opts["seed"]
        )
        out["median_ci"] = [iv.low, iv.high]
    return out


def _empty_dice(n: int, rule: str) -> dict[str, Any]:
    return {"n": n, "threshold": None, "mean": None, "median": None, "sd": None, "rule": rule}


def _dice(
    res: MethodResults,
    ev: MethodEvaluation,
    val,
    test,
    dice_thresholds: int,
    min_lesion_dice: float,
    keep_segmentations: bool,
    opts: Mapping[str, Any],
) -> None:
    """Test Dice under every threshold rule (:data:`THRESHOLD_RULES`), each labelled with its rule."""
    m = ev.metrics
    kind = np.asarray(res.kind).astype(str)
    les = res.lesion != 0
    has_les = item_labels(res) == 1
    haem = is_haemorrhage(kind)
    groups = item_patients(res, opts["patients"])
    healthy_val = val & (kind == HEALTHY)
    m["segmentation"] = dict(declared_segmentation(res))
    by_rule: dict[str, dict[str, Any]] = {r: {"rule": r} for r in THRESHOLD_RULES}
    by_rule["healthy_fpr"]["fpr"] = opts["fpr"]
    rule_of: dict[str, str] = {}

    def score(rule: str, subset: str, t: float, tsel: np.ndarray, h: bool, **extra: Any) -> np.ndarray:
        pred = segment(res, t, tsel, haemorrhage=h)
        d = M.dice_per_item(pred, les[tsel])
        ev.dice_rules.setdefault(rule, {})[subset] = (d, np.flatnonzero(tsel))
        pooled = M.dice(pred, les[tsel])
        by_rule[rule][subset] = _dice_entry(d, rule, t, groups[tsel], opts, pooled=pooled, **extra)
        return pred

    for subset, sub in (("all", np.ones_like(has_les)), ("haemorrhage", haem)):
        vsel, tsel = val & has_les & sub, test & has_les & sub
        h = subset == "haemorrhage"
        uses_pos = h and (res.maps_haemorrhage is not None or res.member_maps_haemorrhage is not None)
        residual = "max(x - x_hat, 0)" if uses_pos else "the method's map"
        if not tsel.any():
            for r in THRESHOLD_RULES:
                by_rule[r][subset] = _empty_dice(0, r)
            m[f"dice_{subset}"] = _empty_dice(0, "val_lesion_mean")
            continue
        # default: healthy validation voxels only
        if healthy_val.any():
            t, achieved = healthy_fpr_threshold(res, healthy_val, opts["fpr"], haemorrhage=h)
            score("healthy_fpr", subset, t, tsel, h, healthy_val_fpr=achieved, residual=residual)
        else:
            by_rule["healthy_fpr"][subset] = _empty_dice(int(tsel.sum()), "healthy_fpr")
        # the test-set oracle (upper bound): mean and pooled from one sweep on the test items
        ot = sweep_both(res, tsel, dice_thresholds, haemorrhage=h)
        by_rule["test_oracle"][subset] = {
            "rule": "test_oracle",
            "n": int(tsel.sum()),
            "mean": ot["mean"].best_dice,
            "threshold": ot["mean"].best_threshold,
            "pooled": ot["pooled"].best_dice,
            "pooled_threshold": ot["pooled"].best_threshold,
            "upper_bound": True,
        }
        if not vsel.any():
            m[f"dice_{subset}"] = _empty_dice(int(tsel.sum()), "val_lesion_mean")
            by_rule["val_lesion_mean"][subset] = m[f"dice_{subset}"]
            continue
        # seed 000: best mean Dice on validation lesions, one threshold per test set
        if subset == "all":
            sws = sweep_both(res, vsel, dice_thresholds)  # [DICE]'s pooled sweep on the same items and grid
            sw = sws["mean"]
            ev.sweeps["pooled"] = sws["pooled"]
        else:
            sw = sweep(res, vsel, dice_thresholds, "mean", haemorrhage=h)
        ev.sweeps[subset] = sw
        pred = score(
            "val_lesion_mean",
            subset,
            sw.best_threshold,
            tsel,
            h,
            val_mean_dice=sw.best_dice,
            residual=residual,
        )
        d = ev.dice_rules["val_lesion_mean"][subset][0]
        ev.dice_test[subset] = ev.dice_rules["val_lesion_mean"][subset]
        if keep_segmentations:
            ev.segmentation_test[subset] = pred
        m[f"dice_{subset}"] = by_rule["val_lesion_mean"][subset]
        if subset == "all":
            s = M.summary(d)
            m["dice_threshold"] = sw.best_threshold
            m["dice_mean"], m["dice_median"], m["dice_sd"] = s["mean"], s["median"], s["sd"]
            for k in ("dice_threshold", "dice_mean", "dice_median", "dice_sd"):
                rule_of[k] = "val_lesion_mean"
            m["dice_by_kind"] = {
                k: {**M.summary(d[[k in kind_parts(x) for x in kind[tsel]]]), "rule": "val_lesion_mean"}
                for k in sorted(set().union(*[kind_parts(x) for x in kind[tsel]]))
            }
            det = M.lesion_detection_rate(pred, les[tsel], min_dice=min_lesion_dice)
            m["lesion_detection"] = {**det, "min_dice": min_lesion_dice, "rule": "val_lesion_mean"}
            # seed 004 [DICE]: the pooled-Dice threshold of validation, pooled Dice of the declared step on test
            score(
                "val_lesion_pooled",
                "all",
                sws["pooled"].best_threshold,
                tsel,
                False,
                val_pooled_dice=sws["pooled"].best_dice,
            )
            m["dice_seed004"] = by_rule["val_lesion_pooled"]["all"]["pooled"]
            m["dice_seed004_threshold"] = sws["pooled"].best_threshold
            m["dice_seed004_val"] = sws["pooled"].best_dice
            m["dice_oracle_test"] = by_rule["test_oracle"]["all"]["pooled"]
            for k in ("dice_seed004", "dice_seed004_threshold", "dice_seed004_val"):
                rule_of[k] = "val_lesion_pooled"
            rule_of["dice_oracle_test"] = "test_oracle"
    m["dice_by_rule"] = by_rule
    m["dice_default_rule"] = DEFAULT_RULE
    dflt = by_rule[DEFAULT_RULE].get("all") or {}
    m["dice_default_mean"], m["dice_default_median"] = dflt.get("mean"), dflt.get("median")
    rule_of["dice_default_mean"] = rule_of["dice_default_median"] = DEFAULT_RULE
    m["rule_of"] = rule_of
    _by_size(res, ev, test & has_les, groups, opts)


def _by_size(res: MethodResults, ev: MethodEvaluation, tl: np.ndarray, groups: np.ndarray, opts) -> None:
    """Per lesion-size tercile (voxels of the item's lesion, terciles over the test items with a lesion):
    default-rule Dice, and scan AUROC of the tercile's lesioned scans against all healthy test scans."""
    m = ev.metrics
    if not tl.any():
        return
    size = (res.lesion[tl].reshape(int(tl.sum()), -1) != 0).sum(1)
    grp, edges = M.size_terciles(size)
    out: dict[str, Any] = {
        "size": "lesion voxels per item (2D: per slice; 3D: per volume)",
        "edges_voxels": edges.tolist(),
        "rule": DEFAULT_RULE,
        "groups": {},
    }
    d_def = ev.dice_rules.get(DEFAULT_RULE, {}).get("all")
    st = ev.scans
    sid = np.asarray(res.scan_id).astype(str)[tl]
    for g, name in enumerate(M.TERCILES):
        sel = grp == g
        e: dict[str, Any] = {
            "n_items": int(sel.sum()),
            "size_range": [int(size[sel].min()), int(size[sel].max())] if sel.any() else None,
        }
        if d_def is not None and sel.any():
            e["dice"] = _dice_entry(d_def[0][sel], DEFAULT_RULE, None, groups[tl][sel], opts)
        if st is not None and st["score"].size:
            scans = np.unique(sid[sel])
            keep = (st["label"] == 0) | np.isin(st["scan_id"], scans)
            e["n_scans"] = int(np.isin(st["scan_id"], scans).sum())
            e["scan_auroc"] = _auroc_ci(
                st["score"], st["label"], st["patient"], keep, opts["n_boot"], opts["seed"]
            )
        out["groups"][name] = e
    m["by_lesion_size"] = out


def _prevalence(
    res: MethodResults, m: dict[str, Any], test: np.ndarray, scans: Mapping[str, np.ndarray] | None
) -> None:
    """Prevalence of the test set: lesioned scans / scans, lesion voxels / evaluation-mask voxels."""
    p: dict[str, Any] = {}
    if scans is not None:
        p["scans"] = int(scans["label"].size)
        p["scans_lesioned"] = int(scans["label"].sum())
        p["scan_prevalence"] = p["scans_lesioned"] / p["scans"] if p["scans"] else float("nan")
    if res.lesion is not None and test.any():
        les = res.lesion[test] != 0
        mask = np.ones(les.shape, bool) if res.brain is None else res.brain[test] != 0
        p["items"] = int(test.sum())
        p["items_lesioned"] = int(les.reshape(len(les), -1).any(1).sum())
        p["lesion_voxels_in_mask"] = int((les & mask).sum())
        p["mask_voxels"] = int(mask.sum())
        p["voxel_prevalence"] = (
            p["lesion_voxels_in_mask"] / p["mask_voxels"] if p["mask_voxels"] else float("nan")
        )
    m["prevalence"] = p


def _validation(res: MethodResults, m: dict[str, Any], val: np.ndarray) -> None:
    """Figures on the validation split that need no threshold (``metrics["val"]``), for notebooks 04/05 to
    show each method beside the baselines before any test figure: scan AUROC (the method's own score) and
    pixel AUROC / AUPRC inside the evaluation mask. Computed exactly as their test counterparts."""
    sv = scan_table(res, "val")
    out: dict[str, Any] = {"split": "val", "n_scans": int(sv["scan_id"].size)}
    out["scan_auroc"] = M.roc_auc(sv["score"], sv["label"]) if sv["score"].size else float("nan")
    if res.maps is not None and res.lesion is not None and val.any():
        brain = res.brain if res.brain is not None else np.ones(res.maps.shape, np.uint8)
        les = res.lesion != 0
        d = M.auroc_auprc(res.maps[val], les[val], brain[val])
        out["pixel_auroc"], out["pixel_auprc"] = d["auroc"], d["auprc"]
    m["val"] = out


def _pixel(m, suffix, maps, les, brain, groups, sel, opts, bins, curve: bool = False):
    """Pixel AUROC and AUPRC of the selected items inside the mask, exact, with their binned bootstrap intervals.

    Returns the pixel ROC curve ``(fpr, tpr)`` with ``curve`` (from the same sort), else None.
    """
    d = M.auroc_auprc(maps[sel], les[sel], brain[sel], curve=curve)
    m[f"pixel_auroc{suffix}"], m[f"pixel_auprc{suffix}"] = d["auroc"], d["auprc"]
    if sel.any():
        pb = CI.pixel_bootstrap(
            maps[sel], les[sel], brain[sel], groups[sel], bins=bins, n_boot=opts["n_boot"], seed=opts["seed"]
        )
        ci = m.setdefault("ci", {})
        ci[f"pixel_auroc{suffix}"], ci[f"pixel_auprc{suffix}"] = (
            pb["pixel_auroc"].as_dict(),
            pb["pixel_auprc"].as_dict(),
        )
    return (d["fpr"], d["tpr"]) if curve else None


#: how ``metrics["head_mask"]`` figures are labelled wherever they are shown.
HEAD_MASK_LABEL = "full-head methods: inside the head mask"


def _head_mask(res: MethodResults, m: dict[str, Any], test: np.ndarray, opts, bins: int) -> None:
    """Extra figures of a full-head method (``res.head`` set) for the kinds outside the brain mask.

    For each kind of :data:`ctad_core.kinds.OUTSIDE_BRAIN_KINDS` among the test scans: scan AUROC of the map
    score (mean of the top 1 % of the map) inside the head mask, its kind's scans against the healthy ones,
    with its patient-resampled interval; pixel AUROC and AUPRC inside the head mask on those scans' and the
    healthy scans' test items, positives the kind's own lesion code (other lesion codes of a compound scan
    left out); and the share of the kind's lesion voxels that the brain mask holds (why the head mask).
    The brain-mask figures are unchanged; these sit beside them in ``metrics["head_mask"]``.
    """
    if res.head is None or res.maps is None or res.lesion is None:
        return
    if res.head.shape != res.maps.shape:
        raise ValueError(f"{res.name}: head mask has shape {res.head.shape}, maps {res.maps.shape}")
    kind = np.asarray(res.kind).astype(str)
    present = [k for k in OUTSIDE_BRAIN_KINDS if any(k in kind_parts(x) for x in kind[test])]
    if not present:
        return
    out: dict[str, Any] = {
        "label": HEAD_MASK_LABEL,
        "mask": "head mask: HU > -500 on the input, largest component, holes filled "
        "(ctad_core.data.masks.head_mask)",
        "scan_score": "mean of the top 1 % of the map inside the head mask",
        "kinds": {},
    }
    ms = anomaly.scan_score(res.maps, res.head, top_fraction=0.01, spatial_dims=res.maps.ndim - 1)
    st = scan_table(res, "test", score=ms, patients=opts["patients"])
    groups = item_patients(res, opts["patients"])
    brain = res.brain if res.brain is not None else np.ones(res.maps.shape, np.uint8)
    for k in present:
        e: dict[str, Any] = {}
        code = LESION_CODES.get(k)
        of_kind = np.array([k in kind_parts(x) for x in kind])
        lk = res.lesion == code if code is not None else res.lesion != 0
        n_les = int(lk[test & of_kind].sum())
        e["lesion_voxels"] = n_les
        e["lesion_in_brain_mask"] = (
            float((lk[test & of_kind] & (brain[test & of_kind] != 0)).sum() / n_les)
            if n_les
            else float("nan")
        )
        sel = _kind_masks(st["kind"]).get(k)
        if sel is not None:
            e["n_scans"] = int((sel & (st["label"] == 1)).sum())
            e["scan_auroc_map"] = _auroc_ci(
                st["score"], st["label"], st["patient"], sel, opts["n_boot"], opts["seed"]
            )
        items = test & (of_kind | (kind == HEALTHY))
        # another kind's lesion in a compound scan: neither positive nor negative
        other = (res.lesion != 0) & ~lk
        mask = (res.head != 0) & ~other
        if items.any() and lk[items].any():
            _pixel(e, "", res.maps, lk, mask, groups, items, opts, bins)
        out["kinds"][k] = e
    m["head_mask"] = out


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
    fpr: float = 0.01,
    scan_fpr: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    patients: Mapping[str, str] | None = None,
    pixel_bins: int = 1024,
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
        fpr: the default Dice rule's target fraction of healthy validation voxels flagged (1 %).
        scan_fpr: the default scan operating point's target fraction of healthy validation scans flagged.
        n_boot: bootstrap resamples of every interval (seeded by ``seed``; resampled by patient).
        seed: the resampling seed.
        patients: scan id → patient id for the cluster bootstrap (default: each scan its own patient).
        pixel_bins: score bins of the pixel-metric bootstrap (:func:`.intervals.pixel_bootstrap`).

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
    opts = {"fpr": fpr, "scan_fpr": scan_fpr, "n_boot": n_boot, "seed": seed, "patients": patients or {}}
    m["bootstrap"] = {
        "n_boot": n_boot,
        "seed": seed,
        "level": 0.95,
        "resampled": "patients",
        "pixel_bins": pixel_bins,
    }
    ev = MethodEvaluation(res.name, m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.MetricWarning)
        _scan_level(res, ev, opts)
        _slice_level(res, ev, val, test, opts)
        _prevalence(res, m, test, ev.scans)
        _validation(res, m, val)
        if res.maps is not None and res.lesion is not None:
            les = res.lesion != 0
            brain = res.brain if res.brain is not None else np.ones(res.maps.shape, np.uint8)
            groups = item_patients(res, patients)
            r_fpr, r_tpr = _pixel(m, "", res.maps, les, brain, groups, test, opts, pixel_bins, curve=True)
            ev.roc_pixel = _thin(r_fpr, r_tpr, max_roc_points)
            kind = np.asarray(res.kind).astype(str)
            haem = is_haemorrhage(kind)
            maps_h = res.maps_haemorrhage if res.maps_haemorrhage is not None else res.maps
            h_items = test & ((kind == HEALTHY) | haem)
            if (h_items & haem & (item_labels(res) == 1)).any():
                _pixel(m, "_haemorrhage", maps_h, les, brain, groups, h_items, opts, pixel_bins)
            _dice(res, ev, val, test, dice_thresholds, min_lesion_dice, keep_segmentations, opts)
            _head_mask(res, m, test, opts, pixel_bins)
    _recon_error(res, m, test)
    _timing(res, m)
    m["baseline"] = bool(
        res.info.get("baseline", False)
    )  # a simple baseline (the floor), as its family declares
    m["eval_seconds"] = time.perf_counter() - t0
    return ev


def compare_dice(
    evals: Mapping[str, MethodEvaluation], subset: str = "all", rule: str = "val_lesion_mean"
) -> dict[str, dict[str, Any]]:
    """Paired Wilcoxon tests of per-item test Dice between every two methods that share the same items.

    Args:
        evals: evaluations by method name. subset: ``"all"`` or ``"haemorrhage"``.
        rule: the threshold rule whose Dice are compared (:data:`THRESHOLD_RULES`).

    Returns:
        ``{"A vs B": {"statistic", "p_value", "n", "rule"}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    names = [n for n in evals if subset in evals[n].dice_rules.get(rule, {})]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            da, ia = evals[a].dice_rules[rule][subset]
            db, ib = evals[b].dice_rules[rule][subset]
            if (
                evals[a].metrics["level"] != evals[b].metrics["level"]
                or ia.shape != ib.shape
                or (ia != ib).any()
            ):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", M.MetricWarning)
                stat, p = M.wilcoxon_dice(da, db)
            out[f"{a} vs {b}"] = {"statistic": stat, "p_value": p, "n": int(da.size), "rule": rule}
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
    "DEFAULT_RULE",
    "HEAD_MASK_LABEL",
    "SCAN_AGGREGATE",
    "SCAN_RULES",
    "THRESHOLD_RULES",
    "MethodEvaluation",
    "auroc_table",
    "compare_dice",
    "compare_on_common_scans",
    "evaluate",
    "evaluate_all",
    "healthy_scan_threshold",
    "item_labels",
    "item_patients",
    "roc_curves",
    "scan_table",
]
