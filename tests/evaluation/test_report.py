"""build_report and the Markdown tables on synthetic runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctad_core.evaluation import metrics as M
from ctad_core.evaluation import report as R
from ctad_core.evaluation.baseline import check_report
from ctad_core.evaluation.evaluator import evaluate
from ctad_core.results import save_method_results

from ._synthetic import synthetic


def test_build_report_writes_metrics_and_tables_with_the_evaluators_numbers(tmp_path):
    run = tmp_path / "run"
    res = synthetic("fastgan_restoration", seed=1)
    save_method_results(run / "restoration", res)
    save_method_results(run / "restoration", synthetic("fastgan_encoder", seed=1, noise=0.75))
    save_method_results(run / "volumetric", synthetic("ae3d", "3d", seed=2))
    rep, evals = R.build_report(
        run,
        profile="smoke",
        fid={"extractor": "x", "n_generated": 4, "healthy": {"n_real": 3, "fid": 1.0, "fid_inf": 0.5}},
    )
    on_disk = json.loads((run / "report" / "metrics.json").read_text())
    assert on_disk["profile"] == "smoke" and set(on_disk["methods"]) == {
        "fastgan_restoration",
        "fastgan_encoder",
        "ae3d",
    }
    assert check_report(on_disk) == []
    assert "fastgan_encoder vs fastgan_restoration" in on_disk["wilcoxon"]
    # the report holds exactly what a preview's evaluate(res) shows
    assert on_disk["methods"]["fastgan_restoration"]["dice_mean"] == evaluate(res).metrics["dice_mean"]
    for stem in ("table3_seed000_dice", "table1_seed002_auroc_by_kind", "table3_seed004", "summary", "fid"):
        assert (run / "report" / f"{stem}.md").is_file(), stem
    # no method carries inputs: the reconstruction-error table says so instead of disappearing
    text = (run / "report" / "recon_error_seed000.md").read_text()
    assert "carry no inputs" in text and "ae3d" in text
    with pytest.raises(FileNotFoundError, match="not found"):
        R.build_report(run, methods=["nope"])


def test_summary_table_names_items_and_model_dims():
    v = synthetic("fanogan2d", "3d", seed=3)
    v.info["model_dims"] = "2d"
    s = synthetic("fastgan_restoration")
    table = R.markdown_tables(
        {"methods": {"fanogan2d": evaluate(v).metrics, "fastgan_restoration": evaluate(s).metrics}}
    )["summary"]
    assert "| fanogan2d | volumes | 2D |" in table and "| fastgan_restoration | slices | 2D |" in table


def test_report_json_has_no_nan(tmp_path):
    run = tmp_path / "run"
    res = synthetic("only_healthy_val")
    res.kind[res.split == "val"] = "healthy"  # Youden on val undefined
    save_method_results(run / "restoration", res)
    R.build_report(run, profile="smoke")
    text = (run / "report" / "metrics.json").read_text()
    assert "NaN" not in text
    assert json.loads(text)["methods"]["only_healthy_val"]["scan_operating_point"]["sensitivity"] is None
    with pytest.raises(FileNotFoundError):
        R.build_report(tmp_path / "empty")
    assert R._nan_to_none({"a": [np.float32("nan"), np.int64(3)]}) == {"a": [None, 3]}
    assert isinstance(M.MetricWarning("x"), UserWarning)
