"""Regression baselines of the report: record one from a run, compare a run with one.

CLI: ``python -m ctad_core.evaluation record-baseline --run-dir D --profile P --out FILE`` copies the run's
``report/metrics.json`` values with tolerances into FILE (``--out`` is required: the package never picks a
path; the repository keeps its baselines in ``tests/baselines/<profile>.json``), and
``python -m ctad_core.evaluation check --run-dir D --baseline FILE`` compares (exit 1 beyond tolerance).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ctad_core.utils import read_json, write_json

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
    # issue 11: the default threshold rule (healthy validation voxels only); absent from baselines recorded before
    "dice_default_mean": 0.07,
    "dice_default_median": 0.08,
}


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
            "dice_default_mean",
            "dice_default_median",
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
    """``python -m ctad_core.evaluation record-baseline --run-dir D --profile P --out FILE`` or ``check``."""
    ap = argparse.ArgumentParser(prog="python -m ctad_core.evaluation", description=__doc__.split("\n")[0])
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
