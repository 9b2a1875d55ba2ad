"""Seed-to-seed spread of a profile's headline figures (issue 11 item 7; ``benchmarks/bench_seeds.py``).

A chain run with another ``seed`` draws other phantoms, other initial weights and other mini-batches; the
spread of a method's figure over seeds is the part of its uncertainty that the per-run bootstrap intervals
(resampling test patients of one run) do not see. This module only reads finished runs' ``report/metrics.json``
(written by :func:`ctad_core.evaluation.report.build_report`); it computes nothing the report has not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# (key in metrics.json's per-method record, column title): the headline figures of notebook 07's summary
HEADLINE: tuple[tuple[str, str], ...] = (
    ("scan_auroc", "scan AUROC"),
    ("scan_auroc_haemorrhage", "scan AUROC (haem.)"),
    ("pixel_auroc", "pixel AUROC"),
    ("pixel_auprc", "pixel AUPRC"),
    ("dice_default_median", "Dice median (healthy FPR rule)"),
    ("dice_median", "Dice median (val. lesion rule)"),
)


def _number(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan


def seed_table(reports: Sequence[Mapping[str, Any]], by_kind: bool = False) -> pd.DataFrame:
    """Mean, sample SD (ddof = 1) and count over runs of each method's headline figures.

    Args:
        reports: the ``metrics.json`` mappings of runs that differ only in ``seed`` (at least one).
        by_kind: the scan AUROC per lesion kind (``scan_auroc_by_kind``) instead of :data:`HEADLINE`.

    Returns:
        A frame indexed by (method, figure) with columns ``mean``, ``sd``, ``n`` (runs with a finite value) and
        ``baseline`` (the method is a registered baseline); methods in the first report's order, then any
        others. A figure a run lacks or holds as ``None`` counts as missing, not as zero; ``sd`` is NaN below
        two finite values.

    Raises:
        ValueError: if ``reports`` is empty, or the runs differ in profile (their figures are not comparable).
    """
    if not reports:
        raise ValueError("no reports to summarise")
    profiles = {r.get("profile") for r in reports}
    if len(profiles) > 1:
        raise ValueError(
            f"the runs come from different profiles {sorted(map(str, profiles))}: not comparable"
        )
    methods: list[str] = []
    for r in reports:
        methods += [m for m in r.get("methods", {}) if m not in methods]
    rows = []
    for m in methods:
        recs = [r.get("methods", {}).get(m) or {} for r in reports]
        if by_kind:
            kinds = sorted({k for rec in recs for k in (rec.get("scan_auroc_by_kind") or {})})
            figures = [
                (k, [_number((rec.get("scan_auroc_by_kind") or {}).get(k)) for rec in recs]) for k in kinds
            ]
        else:
            figures = [(title, [_number(rec.get(key)) for rec in recs]) for key, title in HEADLINE]
        baseline = any(bool(rec.get("baseline")) for rec in recs)
        for title, vals in figures:
            v = np.asarray(vals, dtype=float)
            v = v[np.isfinite(v)]
            rows.append(
                {
                    "method": m,
                    "figure": title,
                    "mean": float(v.mean()) if v.size else math.nan,
                    "sd": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                    "n": int(v.size),
                    "baseline": baseline,
                }
            )
    return pd.DataFrame(rows).set_index(["method", "figure"])


def seed_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """``table`` (:func:`seed_table`) as a Markdown grid: one row per method (baselines marked †), one column
    per figure, cells ``mean ± SD`` (``mean`` alone with one run, ``–`` with none)."""

    def cell(r: pd.Series) -> str:
        if r["n"] == 0:
            return "–"
        if r["n"] == 1 or not np.isfinite(r["sd"]):
            return f"{r['mean']:.{digits}f}"
        return f"{r['mean']:.{digits}f} ± {r['sd']:.{digits}f}"

    figures = list(dict.fromkeys(table.index.get_level_values("figure")))
    methods = list(dict.fromkeys(table.index.get_level_values("method")))
    lines = ["| method | " + " | ".join(figures) + " |", "|---" * (len(figures) + 1) + "|"]
    for m in methods:
        sub = table.loc[m]
        name = f"{m} †" if bool(sub["baseline"].any()) else m
        lines.append(
            f"| {name} | " + " | ".join(cell(sub.loc[f]) if f in sub.index else "–" for f in figures) + " |"
        )
    return "\n".join(lines)
