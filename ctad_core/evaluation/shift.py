"""False positives under acquisition shift: healthy test scans seen through another scanner protocol.

A method trained on one mix of protocols meets, in the clinic, scans with another noise level, kernel and
slice thickness. An unsupervised detector that flags such healthy scans as abnormal raises false alarms
however well it separates lesions on its own protocol. The test (issue 11, item 6):

1. the run's healthy test patients are rendered again with the same heads under another acquisition
   (:func:`ctad_core.data.phantom_set.render_shifted`, written and read back as data prep writes a set);
2. every trained method scores them by the path it scores the test set with
   (:func:`ctad_core.methods.score_scans`: model loaded, not retrained);
3. at each method's **default thresholds**, chosen on its healthy validation scans exactly as the evaluator
   chooses them — the scan operating point ``healthy_val_quantile`` (at most ``scan_fpr`` of healthy
   validation scans flagged, :func:`~ctad_core.evaluation.evaluator.healthy_scan_threshold`) and the pixel
   threshold ``healthy_fpr`` (``fpr`` of healthy validation voxels flagged by the method's declared
   segmentation step, :func:`~ctad_core.evaluation.thresholds.healthy_fpr_threshold`) — we count on the
   unshifted and on the shifted healthy test scans: the fraction of scans flagged (scan score ≥ threshold;
   a 2D method's scan score is the max over its slices) and the fraction of evaluation-mask voxels its
   segmentation flags (pooled over the scans), each with a 95 % percentile bootstrap interval resampling
   patients (:func:`ctad_core.evaluation.intervals.bootstrap_ci`).

Without shift both rates should sit near their targets (``scan_fpr``, ``fpr``); a large rise under shift
means the method's "abnormal" partly means "acquired differently".

>>> import numpy as np
>>> flagged_fraction(np.array([0.1, 0.5, 0.9]), 0.5)
0.6666666666666666
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctad_core.evaluation import intervals as CI
from ctad_core.evaluation import metrics as M
from ctad_core.evaluation.evaluator import healthy_scan_threshold, item_patients, scan_table
from ctad_core.evaluation.segmentation import segment
from ctad_core.evaluation.thresholds import healthy_fpr_threshold
from ctad_core.kinds import HEALTHY
from ctad_core.results import MethodResults
from ctad_core.utils import atomic_write, read_json, write_json

#: The default shift: the sharpest kernel, the thinnest slices and a noise level above every training scan's
#: (9 HU at 5 mm; the training ranges end at 7.5 HU for the sharp kernel,
#: :data:`ctad_core.data.phantom_acquisition.KERNELS`) — ≈ 25 HU at 0.625 mm.
DEFAULT_SHIFT: dict[str, Any] = {"kernel": "sharp", "slice_mm": 0.625, "noise_sd_5mm": 9.0}

#: The table's columns (one row per method and condition).
COLUMNS = (
    "method",
    "baseline",
    "level",
    "condition",
    "n_scans",
    "scan_threshold",
    "scans_flagged",
    "scans_flagged_low",
    "scans_flagged_high",
    "voxel_threshold",
    "voxel_fpr",
    "voxel_fpr_low",
    "voxel_fpr_high",
)


def flagged_fraction(scores: np.ndarray, threshold: float) -> float:
    """Fraction of ``scores`` at or above ``threshold`` (flagged as abnormal, the evaluator's ``>=``)."""
    s = np.asarray(scores, dtype=np.float64)
    return float((s >= threshold).mean()) if s.size else float("nan")


def default_thresholds(
    res: MethodResults, fpr: float = 0.01, scan_fpr: float = 0.05, patients: Mapping[str, str] | None = None
) -> dict[str, float]:
    """A method's default thresholds, from its healthy validation items only (as :func:`~.evaluator.evaluate`).

    Returns:
        ``{"scan": the healthy_val_quantile scan threshold, "voxel": the healthy_fpr pixel threshold}``.

    Raises:
        ValueError: naming the method when its results hold no healthy validation item.
    """
    kind = np.asarray(res.kind).astype(str)
    healthy_val = (np.asarray(res.split).astype(str) == "val") & (kind == HEALTHY)
    if not healthy_val.any():
        raise ValueError(f"{res.name}: no healthy validation item to set the default thresholds on")
    t_scan, _ = healthy_scan_threshold(scan_table(res, "val", patients=patients), scan_fpr)
    t_vox, _ = healthy_fpr_threshold(res, healthy_val, fpr)
    return {"scan": float(t_scan), "voxel": float(t_vox)}


def healthy_false_positives(
    res: MethodResults,
    thresholds: Mapping[str, float],
    split: str = "test",
    n_boot: int = 1000,
    seed: int = 0,
    patients: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Rates at which fixed thresholds flag the healthy ``split`` items of ``res``, with patient intervals.

    Args:
        res: a method's results (items of any split; only healthy ``split`` items count).
        thresholds: ``{"scan": t, "voxel": t}`` (:func:`default_thresholds`).
        split: the split whose healthy items are counted.
        n_boot, seed: the bootstrap (patients resampled).
        patients: scan id → patient id (default: each scan its own patient).

    Returns:
        ``{"n_scans", "scans_flagged", "scans_flagged_ci", "voxel_fpr", "voxel_fpr_ci"}``: the fraction of
        healthy scans whose scan score is ``>= thresholds["scan"]``, and the fraction of their
        evaluation-mask voxels the method's declared segmentation flags at ``thresholds["voxel"]`` (pooled).

    Raises:
        ValueError: naming the method when it holds no healthy ``split`` item.
    """
    st = scan_table(res, split, patients=patients)
    h = st["label"] == 0
    if not h.any():
        raise ValueError(f"{res.name}: no healthy {split} scan to count false positives on")
    s, pat = st["score"][h], st["patient"][h]
    iv_s = CI.bootstrap_ci(
        lambda i: flagged_fraction(s[i], thresholds["scan"]), pat, n_boot=n_boot, seed=seed
    )
    out: dict[str, Any] = {
        "n_scans": int(h.sum()),
        "scans_flagged": iv_s.estimate,
        "scans_flagged_ci": [iv_s.low, iv_s.high],
        "voxel_fpr": float("nan"),
        "voxel_fpr_ci": [float("nan"), float("nan")],
    }
    if res.maps is None:
        return out
    kind = np.asarray(res.kind).astype(str)
    items = np.flatnonzero((np.asarray(res.split).astype(str) == split) & (kind == HEALTHY))
    pred = segment(res, thresholds["voxel"], items).reshape(len(items), -1)
    mask = np.ones(pred.shape, bool) if res.brain is None else res.brain[items].reshape(len(items), -1) != 0
    flagged, inside = (pred.astype(bool) & mask).sum(1), mask.sum(1)
    groups = item_patients(res, patients)[items]

    def rate(i: np.ndarray) -> float:
        n = inside[i].sum()
        return float(flagged[i].sum() / n) if n else float("nan")

    iv_v = CI.bootstrap_ci(rate, groups, n_boot=n_boot, seed=seed)
    out.update(voxel_fpr=iv_v.estimate, voxel_fpr_ci=[iv_v.low, iv_v.high])
    return out


def shift_rows(
    base: MethodResults,
    shifted: MethodResults,
    fpr: float = 0.01,
    scan_fpr: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    patients: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One method's two rows of the shift table: ``unshifted`` (its healthy test items in ``base``) and
    ``shifted`` (the healthy test items of ``shifted``), at the thresholds ``base``'s healthy validation
    items give (:func:`default_thresholds`)."""
    t = default_thresholds(base, fpr, scan_fpr, patients)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.MetricWarning)
        for condition, res in (("unshifted", base), ("shifted", shifted)):
            r = healthy_false_positives(res, t, "test", n_boot, seed, patients)
            rows.append(
                {
                    "method": base.name,
                    "baseline": bool(base.info.get("baseline", False)),
                    "level": base.level,
                    "condition": condition,
                    "n_scans": r["n_scans"],
                    "scan_threshold": t["scan"],
                    "scans_flagged": r["scans_flagged"],
                    "scans_flagged_low": r["scans_flagged_ci"][0],
                    "scans_flagged_high": r["scans_flagged_ci"][1],
                    "voxel_threshold": t["voxel"],
                    "voxel_fpr": r["voxel_fpr"],
                    "voxel_fpr_low": r["voxel_fpr_ci"][0],
                    "voxel_fpr_high": r["voxel_fpr_ci"][1],
                }
            )
    return rows


def _same_slices(base: MethodResults, slices: Any) -> Any:
    """The slices of ``slices`` that ``base`` scored among its healthy test items (a 2D method may score a
    selection), so both conditions count the same slices of the same patients."""
    sel = (np.asarray(base.split).astype(str) == "test") & (np.asarray(base.kind).astype(str) == HEALTHY)
    idx = base.info.get("slice_index")
    if idx is None:
        return slices
    keys = set(zip(np.asarray(base.scan_id).astype(str)[sel], np.asarray(idx)[sel].astype(int)))
    keep = np.array([(str(s), int(i)) in keys for s, i in zip(slices.scan_id, slices.slice_index)], bool)
    return slices.subset(keep)


def shift_test(
    run_dir: str | os.PathLike,
    acquisition: Mapping[str, Any] | None = None,
    methods: Sequence[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    profile: str | None = None,
    device: str = "cpu",
    fpr: float = 0.01,
    scan_fpr: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """The acquisition-shift false-positive test of a phantom run (module docstring): render, score, count.

    Writes ``report/shift/`` in the run: ``data/`` (the re-rendered scans, as data prep writes a set),
    ``shift_false_positives.csv`` (the table) and ``shift.json`` (the table with the acquisition, thresholds
    rules and the methods skipped, and why).

    Args:
        run_dir: the run (phantoms, notebooks 01, 04 and/or 05 done).
        acquisition: the shift (default :data:`DEFAULT_SHIFT`), keys of
            :func:`ctad_core.data.phantom_acquisition.resolve_acquisition`.
        methods: method names (default: every method with results in the run).
        params: per notebook (``"04_latent_restoration"``, ``"05_volumetric_3d"``) the parameters the run
            was made with; default: ``profile``'s YAML files (``parameters/<profile>/``), else the notebooks'
            defaults.
        profile: the run's profile (used when ``params`` is None).
        device: torch device for scoring.
        fpr, scan_fpr: the default thresholds' targets (the report's ``healthy_fpr`` and ``scan_fpr``).
        n_boot, seed: the bootstrap.
        progress: progress bars while scoring.

    Returns:
        The table (:data:`COLUMNS`), one row per method and condition; ``DataFrame.attrs["skipped"]`` holds
        ``{method: reason}`` for methods that could not be scored (e.g. no trained model on disk).

    Raises:
        ctad_core.data.phantom_set.ShiftUnavailable: a run of real scans (nothing can be re-rendered).
        ValueError: an unknown acquisition setting or kernel; a run without healthy test scans.
    """
    from ctad_core import methods as registry
    from ctad_core.data.manifest import load_slices, load_volumes
    from ctad_core.data.phantom_set import render_shifted
    from ctad_core.evaluation.report import read_patients
    from ctad_core.run import Run
    from ctad_core.workbook import load_profile, repo_root

    run = Run(run_dir)
    acq = dict(DEFAULT_SHIFT if acquisition is None else acquisition)
    out = run.stage("report", create=True) / "shift"
    render_shifted(run.root, acq, out)
    volumes, slices = load_volumes(out), load_slices(out)
    patients = read_patients(run.root)
    found = run.find_method_results()
    names = [n for n in (methods or found) if n in found]
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {n: "no results in this run" for n in (methods or []) if n not in found}
    for name in names:
        if name not in registry.REGISTRY:
            skipped[name] = "not a registered method"
            continue
        d = registry.get(name)
        if params is not None:
            p = dict(params.get(d.notebook, {}))
        elif profile:
            p = load_profile(profile, repo_root() / "notebooks" / f"{d.notebook}.ipynb")
        else:
            p = {}
        base = run.load_method_results(name, exclude=("recon", "inputs"))  # only maps and scores count
        try:
            sl = _same_slices(base, slices) if d.level == "2d" else None
            res = registry.score_scans(name, run, volumes, sl, p, device, progress)
        except (FileNotFoundError, ValueError) as e:
            skipped[name] = str(e)
            continue
        rows += shift_rows(base, res, fpr, scan_fpr, n_boot, seed, patients)
        del base, res
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table.attrs["skipped"] = skipped
    atomic_write(out / "shift_false_positives.csv", lambda p: table.to_csv(p, index=False))
    write_json(
        out / "shift.json",
        {
            "acquisition": acq,
            "scans": sorted(set(volumes.scan_id.tolist())),
            "thresholds": {
                "scan": f"healthy_val_quantile: at most scan_fpr={scan_fpr} of healthy validation scans flagged",
                "voxel": f"healthy_fpr: fpr={fpr} of healthy validation evaluation-mask voxels flagged",
            },
            "bootstrap": {"n_boot": n_boot, "seed": seed, "level": 0.95, "resampled": "patients"},
            "rows": table.to_dict(orient="records"),
            "skipped": skipped,
        },
    )
    metrics = run.report / "metrics.json"
    if metrics.is_file():  # the report of notebook 07 carries the shift test beside its other figures
        m = read_json(metrics)
        m["shift_test"] = read_json(out / "shift.json")
        write_json(metrics, m)
    return table


def shift_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """The shift table as Markdown: per method, scans flagged and voxel FPR with their 95 % intervals,
    unshifted beside shifted."""

    def cell(r: pd.Series, col: str) -> str:
        if not np.isfinite(r[col]):
            return "–"
        return f"{r[col]:.{digits}f} [{r[f'{col}_low']:.{digits}f}, {r[f'{col}_high']:.{digits}f}]"

    head = (
        "| Method | scans | scans flagged, unshifted | scans flagged, shifted | voxel FPR, unshifted "
        "| voxel FPR, shifted |\n|---|---|---|---|---|---|"
    )
    lines = [head]
    for name in dict.fromkeys(table["method"]):
        t = table[table["method"] == name].set_index("condition")
        u, s = t.loc["unshifted"], t.loc["shifted"]
        label = f"{name} (baseline)" if bool(u["baseline"]) else name
        lines.append(
            f"| {label} | {int(u['n_scans'])} | {cell(u, 'scans_flagged')} | {cell(s, 'scans_flagged')} "
            f"| {cell(u, 'voxel_fpr')} | {cell(s, 'voxel_fpr')} |"
        )
    return "\n".join(lines)


def training_acquisitions(run_dir: str | os.PathLike) -> pd.DataFrame:
    """How the run's training scans were acquired: count per kernel and slice thickness, and the noise
    range (HU at 5 mm) — what the shift is measured against (from ``data/manifest.csv``)."""
    from ctad_core.data.manifest import read_manifest

    df = read_manifest(Path(run_dir))
    tr = df[df.split == "train"]
    return (
        tr.groupby(["kernel", "slice_thickness_mm"])
        .agg(scans=("scan_id", "size"), noise_min=("noise_sd_5mm", "min"), noise_max=("noise_sd_5mm", "max"))
        .reset_index()
    )


__all__ = [
    "COLUMNS",
    "DEFAULT_SHIFT",
    "default_thresholds",
    "flagged_fraction",
    "healthy_false_positives",
    "shift_markdown",
    "shift_rows",
    "shift_test",
    "training_acquisitions",
]
