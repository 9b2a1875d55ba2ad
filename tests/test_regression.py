"""Regression surface: ``report/metrics.json`` of a whole chain run.

- CPU (``-m slow``): the smoke chain's report has the right structure and sane values (fixture
  ``smoke_run_dir`` from ``tests/conftest.py`` runs notebooks 01–07 once per session).
- GPU (``-m gpu``): the ``gpu`` profile's metrics match ``tests/baselines/gpu.json`` within tolerances.
  Set ``CTAD_GPU_RUN_DIR`` to check an existing run instead of running the chain.

After an intended change of results, record a new baseline and commit it with the change::

    python -m ctad_core.evaluation record-baseline --run-dir runs/gpu --profile gpu --out tests/baselines/gpu.json
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctad_core.evaluation.baseline import check_report, compare_to_baseline
from ctad_core.utils import read_json

BASELINES = Path(__file__).parent / "baselines"


@pytest.mark.slow
def test_smoke_report_structure_and_sanity(smoke_run_dir):
    run = Path(smoke_run_dir)
    path = run / "report" / "metrics.json"
    assert path.is_file(), f"{path} missing: did notebook 07 run in the smoke chain?"
    rep = read_json(path)
    assert check_report(rep) == []
    assert rep["profile"] == "smoke"
    for name, m in rep["methods"].items():
        for k in ("pixel_auroc", "scan_auroc", "dice_mean"):
            v = m.get(k)
            assert v is None or (0.0 <= v <= 1.0 and math.isfinite(v)), f"{name}.{k} = {v}"
        assert isinstance(m["scan_auroc_by_kind"], dict)
    if rep["fid"]:
        assert rep["fid"]["extractor"], "the FID feature extractor must be named"
    for stem in ("summary", "table3_seed000_dice", "table1_seed002_auroc_by_kind", "table3_seed004"):
        assert (run / "report" / f"{stem}.md").is_file()
    if (run / "turing" / "key" / "answer_key.csv").is_file():
        assert not any((run / "turing" / "gallery").glob("*.csv")), (
            "the answer key must stay out of the gallery"
        )


def _gpu_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("CTAD_GPU_RUN_DIR")
    if given:
        return Path(given)
    run = tmp_path_factory.mktemp("gpu_run")
    cmd = [
        sys.executable,
        "-c",
        "import sys; from ctad_core.workbook import main; sys.exit(main())",
        "run",
        "--profile",
        "gpu",
        "--run-dir",
        str(run),
    ]
    subprocess.run(cmd, check=True)
    return run


@pytest.mark.gpu
def test_gpu_profile_matches_baseline(tmp_path_factory):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    base_path = BASELINES / "gpu.json"
    if not base_path.is_file():
        pytest.skip(
            f"{base_path} not recorded yet: python -m ctad_core.evaluation record-baseline --run-dir D --profile gpu --out {base_path}"
        )
    run = _gpu_run_dir(tmp_path_factory)
    rep = read_json(run / "report" / "metrics.json")
    assert check_report(rep) == []
    diffs = compare_to_baseline(rep, read_json(base_path))
    assert not diffs, "metrics moved beyond tolerance:\n" + "\n".join(diffs)
