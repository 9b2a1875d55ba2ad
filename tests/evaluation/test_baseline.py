"""Regression baselines: record where told, compare within tolerance, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctad_core.evaluation import baseline as B
from ctad_core.evaluation.report import build_report
from ctad_core.results import save_method_results

from ._synthetic import synthetic


def test_record_compare_and_cli_write_only_where_told(tmp_path):
    run = tmp_path / "run"
    save_method_results(run / "restoration", synthetic("fastgan_restoration", seed=1))
    save_method_results(run / "volumetric", synthetic("ae3d", "3d", seed=2))
    build_report(run, profile="smoke")
    on_disk = json.loads((run / "report" / "metrics.json").read_text())
    base = B.record_baseline(run, "smoke", out=tmp_path / "smoke.json")
    b = json.loads(base.read_text())
    assert B.compare_to_baseline(on_disk, b) == []
    on_disk["methods"]["ae3d"]["pixel_auroc"] -= 0.5
    assert any("ae3d.pixel_auroc" in d for d in B.compare_to_baseline(on_disk, b))
    assert B.main(["check", "--run-dir", str(run), "--baseline", str(base)]) == 0
    repo_baselines = Path(B.__file__).resolve().parents[2] / "tests" / "baselines"
    listing = {p.name: p.stat().st_mtime_ns for p in repo_baselines.iterdir()}
    out = tmp_path / "elsewhere" / "cli.json"
    assert B.main(["record-baseline", "--run-dir", str(run), "--profile", "smoke", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["methods"] == b["methods"]
    with pytest.raises(SystemExit):  # --out is required
        B.main(["record-baseline", "--run-dir", str(run), "--profile", "smoke"])
    with pytest.raises(TypeError):  # so is out
        B.record_baseline(run, "smoke")
    assert {p.name: p.stat().st_mtime_ns for p in repo_baselines.iterdir()} == listing


def test_check_report_finds_problems():
    assert "no methods evaluated" in B.check_report({"methods": {}})
    bad = {
        "profile": "x",
        "device": "c",
        "seed": 0,
        "turing": {},
        "fid": {},
        "methods": {"m": {"level": "2d", "scan_auroc": 1.5, "scan_auroc_by_kind": {}, "seconds_per_scan": 1}},
    }
    problems = B.check_report(bad)
    assert any("outside [0, 1]" in p for p in problems) and any("pixel_auroc" in p for p in problems)
