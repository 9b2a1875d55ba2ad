"""Paired comparisons of methods on the same items: each method against the best simple baseline.

A method is only worth its complexity when it beats what a one-line rule gets on the same test items.
When the results hold simple baselines (results whose ``info["baseline"]`` is set by their registered
family, ``metrics["baseline"]`` after :func:`evaluate`: the intensity rule, the voxel-wise normative model and the coarse-noise denoising autoencoder of issue 11),
every other method is compared with the **best baseline** for each figure; without baselines, with the
**best method** for that figure. "Best" is the highest point estimate on the test items (per lesion kind
for per-kind figures), so the reference is chosen on test — it only fixes which pair is tested.

- **scan AUROC** (overall and per kind, each method's own scan score): paired bootstrap of the AUROC
  difference on the scans both methods scored, resampling patients
  (:func:`ctad_core.evaluation.intervals.paired_auroc`); 95 % interval and two-sided bootstrap p-value.
- **per-item Dice** under the default threshold rule: paired Wilcoxon signed-rank test on the items both
  methods segmented (same level and same items), as seed 000 compared its methods
  (:func:`ctad_core.evaluation.metrics.wilcoxon_dice`); with the median of the paired differences.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ctad_core.evaluation import intervals as CI
from ctad_core.evaluation import metrics as M
from ctad_core.evaluation.evaluator import DEFAULT_RULE, MethodEvaluation, _kind_masks


def is_baseline(ev: MethodEvaluation) -> bool:
    """True for a simple baseline's evaluation (its family declares ``baseline``; see
    :func:`ctad_core.methods.baseline_names`)."""
    return bool(ev.metrics.get("baseline", False))


def _best(cands: Mapping[str, float]) -> str | None:
    ok = {n: v for n, v in cands.items() if v is not None and np.isfinite(v)}
    return max(ok, key=lambda n: (ok[n], n)) if ok else None


def _reference(values: Mapping[str, float], evals: Mapping[str, MethodEvaluation]) -> tuple[str | None, str]:
    base = {n: v for n, v in values.items() if is_baseline(evals[n])}
    if base:
        return _best(base), "best baseline"
    return _best(values), "best method"


def _common_scans(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]):
    common, ia, ib = np.intersect1d(a["scan_id"], b["scan_id"], return_indices=True)
    return common, ia, ib


def compare_scan_auroc(
    evals: Mapping[str, MethodEvaluation], n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Scan AUROC of every method against the reference, overall (``"TOTAL"``) and per lesion kind.

    Returns:
        ``{figure: {"reference", "reference_is", "vs": {method: {estimate (A − ref), low, high, p_value,
        n_scans, …}}}}`` with figure ``"TOTAL"`` or a lesion kind.
    """
    tabs = {n: e.scans for n, e in evals.items() if e.scans is not None and e.scans["score"].size}
    kinds = sorted({k for t in tabs.values() for k in _kind_masks(t["kind"])})
    out: dict[str, Any] = {}
    for fig in ("TOTAL", *kinds):
        vals = {
            n: (
                e.metrics.get("scan_auroc")
                if fig == "TOTAL"
                else (e.metrics.get("scan_auroc_by_kind") or {}).get(fig)
            )
            for n, e in evals.items()
            if n in tabs
        }
        ref, what = _reference(vals, evals)
        if ref is None:
            continue
        entry: dict[str, Any] = {"reference": ref, "reference_is": what, "vs": {}}
        r = tabs[ref]
        for n, t in tabs.items():
            if n == ref:
                continue
            common, ia, ib = _common_scans(t, r)
            if fig != "TOTAL":
                sel = _kind_masks(t["kind"][ia]).get(fig)
                if sel is None:
                    continue
                ia, ib = ia[sel], ib[sel]
            y = t["label"][ia]
            if common.size == 0 or y.min() == y.max():
                continue
            pc = CI.paired_auroc(
                t["score"][ia], r["score"][ib], y, t["patient"][ia], n_boot=n_boot, seed=seed
            )
            entry["vs"][n] = {**pc.as_dict(), "n_scans": int(ia.size)}
        out[fig] = entry
    return out


def compare_dice_to_reference(
    evals: Mapping[str, MethodEvaluation], rule: str = DEFAULT_RULE
) -> dict[str, Any]:
    """Paired Wilcoxon tests of per-item Dice (one threshold rule) against the reference of each level.

    Returns:
        ``{"<level> <subset>": {"reference", "reference_is", "rule", "vs": {method: {statistic, p_value, n,
        median_difference, mean_difference (A − ref)}}, "unpaired": [methods whose items differ from the reference's]}}``.
    """
    out: dict[str, Any] = {}
    for level in sorted({e.metrics["level"] for e in evals.values()}):
        for subset in ("all", "haemorrhage"):
            have = {
                n: e
                for n, e in evals.items()
                if e.metrics["level"] == level and subset in e.dice_rules.get(rule, {})
            }
            vals = {
                n: float(np.median(e.dice_rules[rule][subset][0]))
                for n, e in have.items()
                if e.dice_rules[rule][subset][0].size
            }
            ref, what = _reference(vals, evals)
            if ref is None:
                continue
            dr, ir = have[ref].dice_rules[rule][subset]
            entry: dict[str, Any] = {
                "reference": ref,
                "reference_is": what,
                "rule": rule,
                "vs": {},
                "unpaired": [],
            }
            for n, e in have.items():
                d, i = e.dice_rules[rule][subset]
                if n == ref:
                    continue
                if i.shape != ir.shape or (i != ir).any():  # other test items (e.g. another lesion mask)
                    entry["unpaired"].append(n)
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", M.MetricWarning)
                    stat, p = M.wilcoxon_dice(d, dr)
                entry["vs"][n] = {
                    "statistic": stat,
                    "p_value": p,
                    "n": int(d.size),
                    "median_difference": float(np.median(d - dr)),
                    "mean_difference": float(np.mean(d - dr)),
                    "rule": rule,
                }
            out[f"{level} {subset}"] = entry
    return out


def compare_to_reference(
    evals: Mapping[str, MethodEvaluation], n_boot: int = 1000, seed: int = 0, rule: str = DEFAULT_RULE
) -> dict[str, Any]:
    """Both comparisons: ``{"baselines": [...], "scan_auroc": …, "dice": …}`` (see the module docstring)."""
    return {
        "baselines": sorted(n for n, e in evals.items() if is_baseline(e)),
        "scan_auroc": compare_scan_auroc(evals, n_boot, seed),
        "dice": compare_dice_to_reference(evals, rule),
    }


__all__ = [
    "compare_dice_to_reference",
    "compare_scan_auroc",
    "compare_to_reference",
    "is_baseline",
]
