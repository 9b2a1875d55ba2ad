"""Evaluation of every method on the same test set, and the report that notebook 07 writes.

``run_dir/report/`` holds ``metrics.json`` (the regression surface), Markdown tables and PNG figures.

Rules the numbers follow (and the notebook explains):

- **thresholds come from validation, never from test**: the Dice threshold is the one with the best mean
  per-item Dice on the validation items that have a lesion (seed 000), chosen separately for the
  haemorrhage subset and for all lesions (seed 000 Table 3 tunes per test set); the scan operating point
  is Youden's on the validation scans; the [DICE] of seed 004 is the pooled-Dice-optimal validation
  threshold applied to the pooled test voxels. ``dice_oracle_test`` (best threshold *on test*) is
  reported only as an upper bound.
- **items vs scans**: a 2D method's items are slices; its scan score is the **max** over the scan's
  slice scores (one clearly abnormal slice makes an abnormal scan). A 3D method's items are scans.
- **two scan scores**: each method's own (``scan_auroc``: seed 001 Eq. 6, seed 002 I, …) and, for every
  method with maps, the same map score (``scan_auroc_map``: mean of the top 1 % of the map inside the mask,
  max over a scan's slices in 2D; an item with an empty mask scores 0), so that methods can be compared on
  what their maps see. For Luo's AE and the 2D FastGAN the two coincide (their own score is that one).
- **pixel metrics** (AUROC, AUPRC) pool all test items' pixels inside the evaluation (brain) mask,
  healthy items included. Dice is computed on test items with a lesion; predictions are ``map >= t``
  inside the mask.
- haemorrhage kinds are :data:`HAEMORRHAGE_KINDS`; a combined kind ``"sdh+fracture"`` counts as
  haemorrhage when any part is one. As seed 000 did, the haemorrhage Dice (and ``pixel_auroc_haemorrhage``,
  healthy + haemorrhage test items) uses the method's ``maps_haemorrhage`` (ρ = max(·, 0)) when it wrote them.

CLI: ``python -m ctad_core.evaluate record-baseline --run-dir D --profile P --out FILE`` copies the run's metrics
with tolerances into FILE (see :func:`record_baseline`; the repository keeps its baselines in
``tests/baselines/<profile>.json``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ctad_core import anomaly
from ctad_core import metrics as M
from ctad_core.kinds import HAEMORRHAGE_KINDS, HEALTHY, is_haemorrhage, kind_parts  # noqa: F401
from ctad_core.results import MethodResults, find_method_results, load_method_results
from ctad_core.utils import read_json, write_json

SCAN_AGGREGATE = "max"

#: metrics compared by the regression test, with (absolute tolerance) — see record_baseline.
DEFAULT_TOLERANCES: dict[str, float] = {
    "pixel_auroc": 0.05,
    "pixel_auroc_haemorrhage": 0.05,
    "pixel_auprc": 0.05,
    "dice_mean": 0.07,
    "dice_median": 0.08,
    "scan_auroc": 0.10,
    "scan_auroc_map": 0.10,
    "dice_seed004": 0.07,
}


# ------------------------------------------------------------------------------------------ helpers


def _nan_to_none(x: Any) -> Any:
    """JSON cannot hold NaN portably: NaN/inf become None, recursively."""
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _summary(d: np.ndarray) -> dict[str, float]:
    d = np.asarray(d, dtype=np.float64)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return {"n": 0, "mean": float("nan"), "sd": float("nan"), "median": float("nan")}
    return {
        "n": int(d.size),
        "mean": float(d.mean()),
        "sd": float(d.std(ddof=1)) if d.size > 1 else 0.0,
        "median": float(np.median(d)),
    }


def scan_table(res: MethodResults, split: str) -> dict[str, np.ndarray]:
    """Per-scan scores of one split: 2D slice scores aggregated by ``max``, 3D items as they are.

    Returns:
        ``{"scan_id", "score", "label", "kind"}`` arrays, one row per scan (sorted by scan id).
    """
    sel = np.asarray(res.split).astype(str) == split
    sid = np.asarray(res.scan_id).astype(str)[sel]
    score = np.asarray(res.scan_score, dtype=np.float64)[sel]
    kind = np.asarray(res.kind).astype(str)[sel]
    ids = np.unique(sid)
    out_s = np.array([score[sid == i].max() for i in ids]) if ids.size else np.zeros(0)
    out_k = np.array([kind[sid == i][0] for i in ids]) if ids.size else np.zeros(0, str)
    return {"scan_id": ids, "score": out_s, "label": (out_k != HEALTHY).astype(int), "kind": out_k}


def item_labels(res: MethodResults) -> np.ndarray:
    """(N,) 1 where an item is abnormal: its lesion mask is non-empty (or its kind is not healthy)."""
    if res.lesion is not None:
        return (res.lesion.reshape(len(res.lesion), -1) != 0).any(1).astype(int)
    return (np.asarray(res.kind).astype(str) != HEALTHY).astype(int)


# -------------------------------------------------------------------------------------- per method


@dataclass
class MethodEvaluation:
    """Everything :func:`evaluate_method_full` computed: JSON-able ``metrics`` plus arrays for figures.

    Attributes:
        name: method name.
        metrics: what goes into ``metrics.json``.
        sweeps: validation Dice-vs-threshold sweeps (``"all"``, ``"haemorrhage"``) — seed 000 Fig. 6.
        dice_test: per-item test Dice at the validation threshold, by subset, with the items' indices.
        roc_scan: test scan-level (fpr, tpr).
        roc_pixel: test pixel-level (fpr, tpr), thinned to at most ``max_roc_points`` points.
        scans: the test scan table.
    """

    name: str
    metrics: dict[str, Any]
    sweeps: dict[str, M.DiceSweep] = field(default_factory=dict)
    dice_test: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    roc_scan: tuple[np.ndarray, np.ndarray] | None = None
    roc_pixel: tuple[np.ndarray, np.ndarray] | None = None
    scans: dict[str, np.ndarray] | None = None


def _thin(fpr: np.ndarray, tpr: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if fpr.size <= k:
        return fpr, tpr
    idx = np.unique(np.r_[np.linspace(0, fpr.size - 1, k).astype(int), fpr.size - 1])
    return fpr[idx], tpr[idx]


def _slice_scores_3d(res: MethodResults, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slice-level scores of 3D maps (seed 004): e(u) = mean anomaly in the slice's mask, along axis 1."""
    maps = res.maps[sel].astype(np.float64)
    mask = np.ones(maps.shape, bool) if res.brain is None else res.brain[sel] != 0
    les = res.lesion[sel] != 0 if res.lesion is not None else np.zeros(maps.shape, bool)
    axes = tuple(range(2, maps.ndim))
    cnt = mask.sum(axes)
    e = np.where(cnt > 0, (maps * mask).sum(axes) / np.maximum(cnt, 1), 0.0)  # (N, D)
    lab = les.any(axes)
    keep = cnt > 0
    # seed 004's normality score s(u) = 1 - (e - min e) / (max e - min e) per scan; 1 - s is its anomaly score
    lo, hi = e.min(1, keepdims=True), e.max(1, keepdims=True)
    norm = np.where(hi > lo, (e - lo) / np.maximum(hi - lo, 1e-12), 0.0)
    return e[keep], norm[keep], lab[keep]


def evaluate_method_full(
    res: MethodResults,
    dice_thresholds: int = 200,
    min_lesion_dice: float = 0.1,
    max_roc_points: int = 2000,
    inputs: np.ndarray | None = None,
) -> MethodEvaluation:
    """Evaluate one method on its test items, with every threshold chosen on its validation items.

    Args:
        res: the method's results (val + test items).
        dice_thresholds: size of the threshold grid for the Dice sweeps.
        min_lesion_dice: a lesion counts as detected when its Dice exceeds this (seed 000: 0.1).
        max_roc_points: pixel ROC curves are thinned to this many points for plotting.
        inputs: (N, *spatial) the items' input images in model range [-1, 1], aligned with ``res``; with
            ``res.recon`` they give the reconstruction error statistics of seed 000 (RMSE, mean ± SD and
            90th percentile of |x − x̂| on [0, 1] intensities, inside the mask) for normal and abnormal
            test items.

    Returns:
        A :class:`MethodEvaluation`.
    """
    t0 = time.perf_counter()
    split = np.asarray(res.split).astype(str)
    kind = np.asarray(res.kind).astype(str)
    val, test = split == "val", split == "test"
    m: dict[str, Any] = {
        "level": res.level,
        "model_dims": res.model_dims,
        "n_val_items": int(val.sum()),
        "n_test_items": int(test.sum()),
    }
    ev = MethodEvaluation(res.name, m)

    # ---- scan level (seed 002 Table 1, seed 001 Youden point)
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
        # the same scan score for every method, from its map: mean of the top 1 % inside the mask (2D: max
        # over the scan's slices) — beside each method's own score, never instead
        ms = anomaly.scan_score(
            res.maps, res.brain, top_fraction=0.01, spatial_dims=2 if res.level == "2d" else 3
        )
        sm = scan_table(replace(res, scan_score=ms), "test")
        m["scan_auroc_map"] = M.roc_auc(sm["score"], sm["label"])
        m["scan_auroc_map_by_kind"] = M.per_kind_auroc(sm["score"], sm["kind"])
    yv = M.youden_threshold(sv["score"], sv["label"])
    op = M.operating_point(st["score"], st["label"], yv.threshold) if math.isfinite(yv.threshold) else yv
    m["scan_operating_point"] = {**op.as_dict(), "chosen_on": "val (Youden)"}
    if st["score"].size:
        fpr, tpr, _ = M.roc_curve(st["score"], st["label"])
        ev.roc_scan = (fpr, tpr)

    # ---- item (slice) level (seed 004 Table 2)
    lab = item_labels(res)
    score = np.asarray(res.scan_score, dtype=np.float64)
    if res.level == "2d":
        m["slice_auroc"] = M.roc_auc(score[test], lab[test])
        m["slice_auprc"] = M.average_precision(score[test], lab[test])
        yv_s = M.youden_threshold(score[val], lab[val])
        m["slice_sensitivity"] = (
            M.operating_point(score[test], lab[test], yv_s.threshold).sensitivity
            if math.isfinite(yv_s.threshold)
            else float("nan")
        )
    elif res.maps is not None:
        e_v, n_v, l_v = _slice_scores_3d(res, val)
        e_t, n_t, l_t = _slice_scores_3d(res, test)
        m["slice_auroc"] = M.roc_auc(e_t, l_t)
        m["slice_auprc"] = M.average_precision(e_t, l_t)
        m["slice_auroc_normality"] = M.roc_auc(n_t, l_t)
        yv_s = M.youden_threshold(e_v, l_v)
        m["slice_sensitivity"] = (
            M.operating_point(e_t, l_t, yv_s.threshold).sensitivity
            if math.isfinite(yv_s.threshold)
            else float("nan")
        )

    # ---- pixel level and Dice (seed 000 Table 3 / Fig. 6, seed 004 Table 3)
    if res.maps is not None and res.lesion is not None:
        maps = res.maps
        les = res.lesion != 0
        brain = res.brain if res.brain is not None else np.ones(maps.shape, np.uint8)
        m["pixel_auroc"] = M.roc_auc(maps[test], les[test], brain[test])
        m["pixel_auprc"] = M.average_precision(maps[test], les[test], brain[test])
        fpr, tpr, _ = M.roc_curve(maps[test], les[test], brain[test])
        ev.roc_pixel = _thin(fpr, tpr, max_roc_points)
        has_les = lab == 1
        haem = is_haemorrhage(kind)
        grid = M._default_thresholds(
            maps[val & has_les][brain[val & has_les] != 0] if (val & has_les).any() else maps[brain != 0],
            dice_thresholds,
        )
        # seed 000: "when testing on hemorrhage data, only positive values are considered" — the haemorrhage
        # subset uses the max(·, 0) maps where the method wrote them (its own threshold, from validation)
        maps_h = res.maps_haemorrhage if res.maps_haemorrhage is not None else maps
        h_items = test & ((kind == HEALTHY) | haem)
        if (h_items & haem & has_les).any():
            m["pixel_auroc_haemorrhage"] = M.roc_auc(maps_h[h_items], les[h_items], brain[h_items])
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
            mp = maps_h if subset == "haemorrhage" else maps
            g = grid if mp is maps else M._default_thresholds(mp[vsel][brain[vsel] != 0], dice_thresholds)
            sw = M.dice_vs_threshold(mp[vsel], les[vsel], brain[vsel], g, reduce="mean")
            ev.sweeps[subset] = sw
            pred = (mp[tsel] >= sw.best_threshold) & (brain[tsel] != 0)
            d = M.dice_per_item(pred, les[tsel])
            ev.dice_test[subset] = (d, np.flatnonzero(tsel))
            m[f"dice_{subset}"] = {
                **_summary(d),
                "threshold": sw.best_threshold,
                "val_mean_dice": sw.best_dice,
                "residual": "max(x - x_hat, 0)" if mp is not maps else "the method's map",
            }
            if subset == "all":
                m["dice_threshold"] = sw.best_threshold
                m["dice_mean"], m["dice_median"] = float(np.mean(d)), float(np.median(d))
                m["dice_sd"] = float(np.std(d, ddof=1)) if d.size > 1 else 0.0
                m["dice_by_kind"] = {
                    k: _summary(d[[k in kind_parts(x) for x in kind[tsel]]])
                    for k in sorted(set().union(*[kind_parts(x) for x in kind[tsel]]))
                }
                det = M.lesion_detection_rate(pred, les[tsel], min_dice=min_lesion_dice)
                m["lesion_detection"] = {**det, "min_dice": min_lesion_dice}
        # seed 004 [DICE]: pooled-Dice threshold on validation, pooled Dice on test
        vl, tl = val & has_les, test & has_les
        if vl.any() and tl.any():
            t_pool = M.threshold_for_best_dice(maps[vl], les[vl], brain[vl], grid, reduce="pooled")
            m["dice_seed004"] = M.dice((maps[tl] >= t_pool) & (brain[tl] != 0), les[tl])
            m["dice_seed004_threshold"] = t_pool
            m["dice_oracle_test"] = M.best_achievable_dice(
                maps[tl], les[tl], brain[tl], dice_thresholds, "pooled"
            )[0]
        pp = res.info.get("postprocess")
        if not pp and int(res.info.get("closing_radius", 0) or 0) > 0:
            pp = {
                "closing_radius": int(res.info["closing_radius"])
            }  # seed 000's closing, as notebook 04 ran it
        if pp and "dice_threshold" in m:
            from ctad_core.anomaly import postprocess

            tsel = test & has_les
            sd = 2 if res.level == "2d" else 3
            pred_pp = postprocess(maps[tsel], m["dice_threshold"], brain=brain[tsel], spatial_dims=sd, **pp)
            d_pp = M.dice_per_item(pred_pp, les[tsel])
            m["dice_postprocessed"] = {**_summary(d_pp), "postprocess": dict(pp)}

    if inputs is not None and res.recon is not None:
        x = np.asarray(inputs, dtype=np.float32)
        if x.shape != res.recon.shape:
            raise ValueError(f"{res.name}: inputs have shape {x.shape} but recon has shape {res.recon.shape}")
        mask = res.brain if res.brain is not None else None
        m["recon_error"] = {}
        for label, sel in (("normal", test & (lab == 0)), ("abnormal", test & (lab == 1))):
            if sel.any():
                m["recon_error"][label] = M.recon_error_stats(
                    x[sel], res.recon[sel], value_range=(-1.0, 1.0), mask=None if mask is None else mask[sel]
                )

    # timing: notebook 04 stores seconds per *slice* (info["seconds_unit"]); a 2D scan costs all its slices
    sec = res.info.get("seconds_per_scan")
    unit = str(res.info.get("seconds_unit", "scan"))
    if sec is not None and unit.startswith("slice") and res.level == "2d":
        per_scan = np.unique(np.asarray(res.scan_id).astype(str)[test], return_counts=True)[1]
        m["seconds_per_slice"] = float(sec)
        sec = float(sec) * float(per_scan.mean()) if per_scan.size else None
    m["seconds_per_scan"] = sec
    m["seconds_unit_reported"] = unit
    for k in ("device", "feature_space", "seconds_per_item"):
        if k in res.info:
            m[k] = res.info[k]
    m["eval_seconds"] = time.perf_counter() - t0
    return ev


def aligned_inputs(res: MethodResults, run_dir: str | os.PathLike) -> np.ndarray | None:
    """The input images (model range) of a 2D method's items, found in ``run_dir/data/slices.npz``.

    Items are matched to slices by scan id and slice index (``info["slice_index"]`` when the method
    stored it, else order within the scan); slices are resized to the maps' size as notebook 04 does
    (:func:`ctad_core.methods.fastgan.train.prepare_slices`). The match is accepted only if every item's lesion mask
    equals its (resized) slice's, so a wrong alignment cannot pass. Returns None when no safe alignment
    exists (3D methods, missing data, mismatch).
    """
    if res.level != "2d" or res.recon is None or res.lesion is None:
        return None
    try:
        from ctad_core.data.manifest import load_slices, read_config
        from ctad_core.data.windows import to_model

        s = load_slices(run_dir)
        window = read_config(run_dir).get("window", "brain")
    except (FileNotFoundError, KeyError, ValueError):
        return None
    window = tuple(window) if isinstance(window, list) else window
    sid = np.asarray(res.scan_id).astype(str)
    s_sid = s.scan_id.astype(str)
    given = res.info.get("slice_index")
    rows = np.empty(len(sid), dtype=np.int64)
    if given is not None and len(given) == len(sid):
        lookup = {(a, int(b)): i for i, (a, b) in enumerate(zip(s_sid, s.slice_index))}
        try:
            rows[:] = [lookup[(a, int(b))] for a, b in zip(sid, given)]
        except KeyError:
            return None
    else:
        for scan in np.unique(sid):
            mine = np.flatnonzero(sid == scan)
            theirs = np.flatnonzero(s_sid == scan)
            if theirs.size != mine.size:
                return None
            rows[mine] = theirs[np.argsort(s.slice_index[theirs], kind="stable")]
    x = to_model(s.image[rows], window)
    les = s.lesion[rows]
    size = res.recon.shape[-1]
    if x.shape[1:] != res.recon.shape[1:]:
        if res.recon.shape[-2] != size:
            return None
        import torch
        import torch.nn.functional as F

        from ctad_core.methods.fastgan.train import prepare_slices

        x = prepare_slices(x, size)[:, 0].numpy()
        les = F.interpolate(
            torch.as_tensor(les.astype(np.float32))[:, None], size=(size, size), mode="nearest"
        )[:, 0].numpy()
    if les.shape != res.lesion.shape or not np.array_equal(les != 0, res.lesion != 0):
        return None
    return x.astype(np.float32)


def evaluate_method(res: MethodResults, **kwargs: Any) -> dict[str, Any]:
    """The JSON-able metrics of one method (see :func:`evaluate_method_full` for the arguments)."""
    return evaluate_method_full(res, **kwargs).metrics


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
            stat, p = M.wilcoxon_dice(da, db)
            out[f"{a} vs {b}"] = {"statistic": stat, "p_value": p, "n": int(da.size)}
    return out


# ----------------------------------------------------------------------------------------------- FID


def gan_member_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """The FastGAN member folders notebook 02 wrote (``run_dir/gan/member_k`` with a checkpoint)."""
    return sorted(p for p in (Path(run_dir) / "gan").glob("member_*") if (p / "checkpoint.pt").is_file())


def generated_images(
    run_dir: str | os.PathLike, n: int, seed: int = 0, member: int = 0, device: str = "cpu"
) -> np.ndarray:
    """``n`` generator samples of a FastGAN member as display images (n, S, S) in [0, 1].

    Raises:
        FileNotFoundError: if notebook 02 has not written ``run_dir/gan/member_<member>/checkpoint.pt``.
    """
    from ctad_core.methods.fastgan.train import generate, load_generator

    path = Path(run_dir) / "gan" / f"member_{member}" / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run notebook 02_gan_training first for this run_dir")
    G = load_generator(path, device=device)
    return np.clip((generate(G, n, seed=seed) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)


def real_images(
    run_dir: str | os.PathLike, split: str = "test", which: str = "healthy", size: int | None = None
) -> np.ndarray:
    """Real slices of a split as display images (N, H, W) in [0, 1], windowed as the models see them.

    Args:
        run_dir: the run.
        split: ``train``, ``val`` or ``test``.
        which: ``"healthy"`` (slices of healthy scans), ``"lesioned"`` (slices whose lesion mask is
            non-empty) or ``"all"``.
        size: resize to (size, size) (area averaging) to match a generator, or None.
    """
    import torch
    import torch.nn.functional as F

    from ctad_core.data.manifest import load_slices, read_config
    from ctad_core.data.windows import to_display

    s = load_slices(run_dir, split)
    window = read_config(run_dir).get("window", "brain")
    window = tuple(window) if isinstance(window, list) else window
    if which == "healthy":
        sel = s.kind.astype(str) == HEALTHY
    elif which == "lesioned":
        sel = (s.lesion.reshape(len(s), -1) != 0).any(1)
    elif which == "all":
        sel = np.ones(len(s), bool)
    else:
        raise ValueError(f"which must be 'healthy', 'lesioned' or 'all', got {which!r}")
    img = to_display(s.image[sel], window)
    if size is not None and img.shape[0] and img.shape[-1] != size:
        t = torch.as_tensor(img)[:, None]
        mode = "area" if img.shape[-1] > size else "bilinear"
        img = F.interpolate(
            t, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False})
        )
        img = img[:, 0].numpy()
    return img.astype(np.float32)


def default_extractor(
    run_dir: str | os.PathLike, inception_weights: str = "", seed: int = 0, device: str = "cpu"
) -> Any:
    """The FID feature space: Inception-v3 if a local weights file is given, else the trained FastGAN
    discriminator of member 0, else (no GAN) a seeded random CNN. ``.name`` says which."""
    from ctad_core.nn import features

    if inception_weights:
        return features.inception_extractor(inception_weights, device=device)
    members = gan_member_dirs(run_dir)
    if members:
        from ctad_core.methods.fastgan.train import load_discriminator

        D = load_discriminator(members[0] / "checkpoint.pt", device=device)
        return features.discriminator_extractor(
            D, f"fastgan-discriminator ({members[0].name}, trained in this run)"
        )
    return features.random_cnn_extractor(seed=seed, device=device)


def compute_fid(
    run_dir: str | os.PathLike,
    n_generated: int = 200,
    seed: int = 0,
    extractor: Any | None = None,
    inception_weights: str = "",
    split: str = "test",
    num_points: int = 10,
    device: str = "cpu",
) -> dict[str, Any]:
    """FID and unbiased FID∞ of generated images against real healthy and real lesioned slices (seed 000).

    Args:
        run_dir: the run (needs ``gan/member_0`` and ``data/slices.npz``).
        n_generated: generator samples.
        seed: sampling seed (z and FID∞ subsets).
        extractor: a :class:`ctad_core.nn.features.FeatureExtractor`, or None for :func:`default_extractor`.
        inception_weights: local Inception-v3 weights (used when ``extractor`` is None).
        split: which real slices (seed 000 compares with its real test images).
        num_points: FID∞ subset sizes.
        device: where networks run.

    Returns:
        ``{"extractor", "n_generated", "healthy": {"n_real", "fid", "fid_inf"}, "lesioned": {…}}``.
    """
    gen = generated_images(run_dir, n_generated, seed=seed, device=device)
    ex = extractor if extractor is not None else default_extractor(run_dir, inception_weights, seed, device)
    from ctad_core.nn.features import extract_features

    f_gen = extract_features(ex, gen)
    out: dict[str, Any] = {"extractor": ex.name, "n_generated": int(len(gen)), "split": split}
    for which in ("healthy", "lesioned"):
        real = real_images(run_dir, split, which, size=gen.shape[-1])
        if len(real) < 2:
            out[which] = {"n_real": int(len(real)), "fid": None, "fid_inf": None}
            continue
        f_real = extract_features(ex, real)
        fi = M.fid_infinity(f_gen, f_real, num_points=num_points, seed=seed)
        out[which] = {
            "n_real": int(len(real)),
            "fid": M.fid(f_gen, f_real),
            "fid_inf": fi["fid_inf"],
            "fid_inf_fit": {"ns": fi["ns"], "fids": fi["fids"], "slope": fi["slope"]},
        }
    return out


# ---------------------------------------------------------------------------------------------- report


def _fmt(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{nd}f}"


def _md(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown_tables(report: Mapping[str, Any]) -> dict[str, str]:
    """The report's tables as Markdown, keyed by file stem (``table3_seed000`` …)."""
    meths = report["methods"]
    names = list(meths)
    t: dict[str, str] = {}
    # seed 000 Table 3: mean ± SD Dice per test set (rows) and method (columns)
    rows = []
    for label, key in (
        ("Haemorrhage", "dice_haemorrhage"),
        ("All lesions (haemorrhage, tumour, …)", "dice_all"),
    ):
        r = [label]
        for n in names:
            d = meths[n].get(key) or {}
            r.append(
                f"{_fmt(d.get('mean'), 2)} ± {_fmt(d.get('sd'), 2)} (median {_fmt(d.get('median'), 2)}, n={d.get('n', 0)})"
                if d.get("mean") is not None
                else "–"
            )
        rows.append(r)
    t["table3_seed000_dice"] = _md(["Test set", *names], rows)
    # seed 002 Table 1: scan AUROC per pathology
    kinds = sorted({k for n in names for k in (meths[n].get("scan_auroc_by_kind") or {})})
    rows = [[k, *[_fmt((meths[n].get("scan_auroc_by_kind") or {}).get(k)) for n in names]] for k in kinds]
    rows.append(["TOTAL", *[_fmt(meths[n].get("scan_auroc")) for n in names]])
    t["table1_seed002_auroc_by_kind"] = _md(["Pathology (scan AUROC)", *names], rows)
    # the same with every method scored by its map (top 1 % inside the mask)
    if any(meths[n].get("scan_auroc_map_by_kind") for n in names):
        rows = [
            [k, *[_fmt((meths[n].get("scan_auroc_map_by_kind") or {}).get(k)) for n in names]] for k in kinds
        ]
        rows.append(["TOTAL", *[_fmt(meths[n].get("scan_auroc_map")) for n in names]])
        t["table1_auroc_by_kind_map_score"] = _md(["Pathology (scan AUROC, map score)", *names], rows)
    # seed 004 Tables 2-3
    rows = [
        [
            n,
            _fmt(meths[n].get("slice_auroc")),
            _fmt(meths[n].get("slice_auprc")),
            _fmt(meths[n].get("slice_sensitivity")),
            _fmt(meths[n].get("dice_seed004")),
        ]
        for n in names
    ]
    t["table3_seed004"] = _md(
        ["Method", "AUC (slice)", "AUPRC (slice)", "Sensitivity (val Youden)", "[DICE]"], rows
    )
    # overview
    items = {"2d": "slices", "3d": "volumes"}
    rows = [
        [
            n,
            items.get(meths[n]["level"], meths[n]["level"]),
            str(meths[n].get("model_dims", "")).upper(),
            _fmt(meths[n].get("pixel_auroc")),
            _fmt(meths[n].get("pixel_auprc")),
            _fmt(meths[n].get("dice_mean")),
            _fmt(meths[n].get("dice_median")),
            _fmt(meths[n].get("pixel_auroc_haemorrhage")),
            _fmt((meths[n].get("dice_haemorrhage") or {}).get("median")),
            _fmt(meths[n].get("scan_auroc")),
            _fmt(meths[n].get("scan_auroc_map")),
            _fmt(meths[n].get("seconds_per_scan"), 2),
        ]
        for n in names
    ]
    t["summary"] = _md(
        [
            "Method",
            "items",
            "model",
            "pixel AUROC",
            "pixel AUPRC",
            "Dice mean",
            "Dice median",
            "pixel AUROC (haem.)",
            "Dice median (haem.)",
            "scan AUROC",
            "scan AUROC (map score)",
            "s / scan",
        ],
        rows,
    )
    rows = []
    for n in names:
        for label, st in (meths[n].get("recon_error") or {}).items():
            rows.append(
                [
                    n,
                    label,
                    _fmt(st.get("rmse")),
                    f"{_fmt(st.get('mean_abs'))} ± {_fmt(st.get('sd_abs'))}",
                    _fmt(st.get("p90_abs")),
                ]
            )
    if rows:
        t["recon_error_seed000"] = _md(
            ["Method", "test items", "RMSE", "mean ± SD abs. difference", "90th pct abs. difference"], rows
        )
    if report.get("wilcoxon"):
        rows = [[k, _fmt(v.get("p_value"), 4), str(v.get("n"))] for k, v in report["wilcoxon"].items()]
        t["wilcoxon_dice"] = _md(["Pair", "p (Wilcoxon, paired)", "n"], rows)
    fid = report.get("fid") or {}
    if fid.get("healthy"):
        rows = [
            [w, str(fid[w].get("n_real")), _fmt(fid[w].get("fid"), 2), _fmt(fid[w].get("fid_inf"), 2)]
            for w in ("healthy", "lesioned")
            if fid.get(w)
        ]
        t["fid"] = (
            _md(["Generated vs real", "n real", "FID", "FID∞ (unbiased)"], rows)
            + f"\n\nFeature extractor: {fid.get('extractor')}; {fid.get('n_generated')} generated images."
        )
    return t


def build_report(
    run_dir: str | os.PathLike,
    profile: str = "quick",
    seed: int = 0,
    device: str = "cpu",
    methods: Sequence[str] | None = None,
    fid: Mapping[str, Any] | None = None,
    turing: Mapping[str, Any] | None = None,
    dice_thresholds: int = 200,
    min_lesion_dice: float = 0.1,
) -> tuple[dict[str, Any], dict[str, MethodEvaluation]]:
    """Evaluate every method found under ``run_dir`` and write ``report/metrics.json`` and the tables.

    Args:
        run_dir: the run.
        profile: the profile name recorded in the report.
        seed: recorded in the report.
        device: recorded in the report (a description of where the chain ran).
        methods: restrict to these method names (default all found).
        fid: the output of :func:`compute_fid`, or None.
        turing: the Turing-test scores (``turing/scores.json``), or None to read them if present.
        dice_thresholds: Dice sweep grid size.
        min_lesion_dice: lesion detection criterion.

    Returns:
        ``(report, evaluations)``: the JSON dict written and the per-method :class:`MethodEvaluation`.

    Raises:
        FileNotFoundError: if no method results exist under ``run_dir``.
    """
    run_dir = Path(run_dir)
    found = find_method_results(run_dir)
    if methods:
        missing = sorted(set(methods) - set(found))
        if missing:
            raise FileNotFoundError(
                f"methods {missing} not found under {run_dir}/*/methods/ (found {sorted(found)})"
            )
        found = {k: v for k, v in found.items() if k in methods}
    if not found:
        raise FileNotFoundError(f"no method results under {run_dir}/*/methods/: run notebooks 04/05 first")
    evals = {}
    for name, p in found.items():
        res = load_method_results(p)
        evals[name] = evaluate_method_full(
            res, dice_thresholds, min_lesion_dice, inputs=aligned_inputs(res, run_dir)
        )
    if turing is None and (run_dir / "turing" / "scores.json").is_file():
        turing = read_json(run_dir / "turing" / "scores.json")
    report = {
        "profile": profile,
        "device": device,
        "seed": int(seed),
        "rules": {
            "thresholds": "chosen on validation",
            "scan_aggregate_2d": SCAN_AGGREGATE,
            "dice_items": "test items with a lesion",
            "pixel_mask": "brain mask of each item",
            "haemorrhage_kinds": list(HAEMORRHAGE_KINDS),
        },
        "methods": {n: e.metrics for n, e in evals.items()},
        "wilcoxon": {
            **compare_dice(evals, "all"),
            **{f"{k} (haemorrhage)": v for k, v in compare_dice(evals, "haemorrhage").items()},
        },
        "turing": dict(turing) if turing else {},
        "fid": dict(fid) if fid else {},
    }
    report = _nan_to_none(report)
    out = run_dir / "report"
    write_json(out / "metrics.json", report)
    for stem, text in markdown_tables(report).items():
        (out / f"{stem}.md").write_text(text + "\n")
    return report, evals


# -------------------------------------------------------------------------------------- baselines


REQUIRED_METHOD_KEYS = ("level", "scan_auroc", "scan_auroc_by_kind", "seconds_per_scan")


def check_report(report: Mapping[str, Any]) -> list[str]:
    """Structural and sanity problems of a ``metrics.json`` dict (empty list = fine)."""
    problems = []
    for k in ("profile", "device", "seed", "methods", "turing", "fid"):
        if k not in report:
            problems.append(f"missing top-level key {k!r}")
    for name, m in (report.get("methods") or {}).items():
        for k in REQUIRED_METHOD_KEYS:
            if k not in m:
                problems.append(f"{name}: missing {k!r}")
        for k in (
            "pixel_auroc",
            "pixel_auroc_haemorrhage",
            "pixel_auprc",
            "scan_auroc",
            "scan_auroc_map",
            "dice_mean",
            "dice_median",
            "slice_auroc",
        ):
            v = m.get(k)
            if v is not None and not (0.0 <= float(v) <= 1.0):
                problems.append(f"{name}: {k} = {v} outside [0, 1]")
        if m.get("level") == "2d" and "pixel_auroc" not in m:
            problems.append(f"{name}: a 2D method with maps must report pixel_auroc")
    if not report.get("methods"):
        problems.append("no methods evaluated")
    return problems


def record_baseline(
    run_dir: str | os.PathLike,
    profile: str,
    out: str | os.PathLike,
    tolerances: Mapping[str, float] | None = None,
) -> Path:
    """Write a regression baseline from a run's ``report/metrics.json`` to ``out`` (atomically).

    Run it after an *intended* change of results, review the diff, commit it (the repository's baselines
    are ``tests/baselines/<profile>.json``; the package never picks a path itself). The file holds, per
    method, the value and absolute tolerance of each metric in ``tolerances`` (default
    :data:`DEFAULT_TOLERANCES`) that the run reported.

    Args:
        run_dir: the run whose ``report/metrics.json`` is recorded.
        profile: the profile name stored in the baseline.
        out: the baseline file to write.
        tolerances: metric → absolute tolerance.

    Returns:
        The written path.

    Raises:
        ValueError: the run's ``metrics.json`` is not a valid report.
    """
    rep = read_json(Path(run_dir) / "report" / "metrics.json")
    problems = check_report(rep)
    if problems:
        raise ValueError(f"{run_dir}/report/metrics.json is not a valid report: {problems}")
    tol = dict(tolerances or DEFAULT_TOLERANCES)
    methods = {}
    for name, m in rep["methods"].items():
        methods[name] = {k: {"value": m[k], "abs_tol": t} for k, t in tol.items() if m.get(k) is not None}
    base = {
        "profile": profile,
        "seed": rep.get("seed"),
        "device": rep.get("device"),
        "recorded_from": str(run_dir),
        "recorded_at": time.strftime("%Y-%m-%d"),
        "methods": methods,
    }
    path = Path(out)
    write_json(path, base)
    return path


def compare_to_baseline(report: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    """Differences beyond tolerance between a report and a baseline (empty list = within tolerance)."""
    out = []
    for name, exp in baseline.get("methods", {}).items():
        got = report.get("methods", {}).get(name)
        if got is None:
            out.append(f"method {name} missing from the report")
            continue
        for k, spec in exp.items():
            v = got.get(k)
            if v is None:
                out.append(f"{name}.{k}: missing (expected {spec['value']:.4f})")
            elif abs(float(v) - float(spec["value"])) > float(spec["abs_tol"]):
                out.append(f"{name}.{k}: {float(v):.4f} vs baseline {spec['value']:.4f} ± {spec['abs_tol']}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ctad_core.evaluate record-baseline --run-dir D --profile P --out FILE`` or ``check``."""
    ap = argparse.ArgumentParser(prog="python -m ctad_core.evaluate", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rb = sub.add_parser("record-baseline", help="write a baseline file from a run's metrics.json")
    rb.add_argument("--run-dir", required=True)
    rb.add_argument("--profile", required=True)
    rb.add_argument("--out", required=True, help="the baseline file, e.g. tests/baselines/<profile>.json")
    cb = sub.add_parser("check", help="compare a run's metrics.json with a baseline file")
    cb.add_argument("--run-dir", required=True)
    cb.add_argument("--baseline", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "record-baseline":
        print(record_baseline(a.run_dir, a.profile, a.out))
        return 0
    diffs = compare_to_baseline(read_json(Path(a.run_dir) / "report" / "metrics.json"), read_json(a.baseline))
    print("\n".join(diffs) if diffs else "within tolerance")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
