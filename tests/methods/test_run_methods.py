"""run_methods: notebook 05's methods side by side in worker processes write what they write one after another
(with the workers' thread count), on copies of a smoke run's data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import yaml

from ctad_core import parallel
from ctad_core.methods import run_methods
from ctad_core.run import Run


def test_methods_side_by_side_equal_one_after_another(smoke_run_dir, tmp_path, repo_root):
    params = yaml.safe_load((repo_root / "parameters" / "smoke" / "05_volumetric_3d.yaml").read_text())
    params = {k: v for k, v in params.items() if k not in ("seed", "device", "methods")}
    for d in ("side", "after"):
        shutil.copytree(smoke_run_dir / "data", tmp_path / d / "data")
    names = ["resae", "normative"]  # one trained, one fitted to the healthy volumes
    side = run_methods(names, tmp_path / "side", params, "cpu", 0, progress=False, workers=2)
    threads = parallel.plan_workers(2, "cpu", 2, equal_jobs=False)[1]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        after = run_methods(names, tmp_path / "after", params, "cpu", 0, progress=False, workers=1)
    finally:
        torch.set_num_threads(before)
    assert list(side) == list(after) == names
    for name in names:
        a, b = Run(tmp_path / "side").load_method_results(name), Run(tmp_path / "after").load_method_results(name)
        np.testing.assert_array_equal(a.maps, b.maps)
        np.testing.assert_array_equal(a.scan_score, b.scan_score)
        assert list(a.scan_id) == list(b.scan_id)
        assert side[name]["model_dims"] == after[name]["model_dims"]


def test_unknown_method_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="no_such_method"):
        run_methods(["intensity", "no_such_method"], tmp_path, {}, "cpu", 0, progress=False, workers=2)
    assert not any(tmp_path.iterdir())


def test_methods_that_train_a_network_start_first_and_come_back_in_the_callers_order(monkeypatch, tmp_path):
    submitted = []

    def fake_run_jobs(fn, jobs, workers, threads, desc, total_steps, progress):
        submitted.extend(job[0] for job in jobs)
        return [f"info of {job[0]}" for job in jobs]

    monkeypatch.setattr(parallel, "run_jobs", fake_run_jobs)
    names = ["intensity", "resae", "normative", "ctfsh_ae_l1", "intensity_hypo", "dae"]
    infos = run_methods(names, tmp_path, {}, "cpu", 0, progress=False, workers=2)
    # networks first in the caller's order, then the statistics-only baselines in the caller's order
    assert submitted == ["resae", "ctfsh_ae_l1", "dae", "intensity", "normative", "intensity_hypo"]
    assert list(infos) == names
    assert all(infos[n] == f"info of {n}" for n in names)
