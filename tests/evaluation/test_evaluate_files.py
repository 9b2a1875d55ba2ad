"""evaluate_files: methods evaluated in worker processes give the figures of evaluating them here."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ctad_core import results as R
from ctad_core.evaluation import report as E
from tests.evaluation._synthetic import synthetic


@pytest.fixture()
def files(tmp_path):
    return {
        name: R.save_method_results(tmp_path / "m", synthetic(name, level, seed=i, inputs=True, recon=True))
        for i, (name, level) in enumerate([("a", "2d"), ("b", "3d"), ("c", "3d")])
    }


def _plain(ev):  # metrics without the wall-clock figure, as JSON (NaN-safe)
    m = {k: v for k, v in ev.metrics.items() if k != "eval_seconds"}
    return json.dumps(m, sort_keys=True, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def test_two_workers_give_the_figures_and_arrays_of_one(files):
    kw = {"n_boot": 50, "seed": 3, "patients": {}, "fpr": 0.02}
    here = E.evaluate_files(files, kw, workers=1)
    there = E.evaluate_files(files, kw, workers=2)
    assert list(there) == list(files) == list(here)
    for name in files:
        assert _plain(there[name]) == _plain(here[name])
        np.testing.assert_array_equal(there[name].roc_scan[0], here[name].roc_scan[0])
        for subset, seg in here[name].segmentation_test.items():
            np.testing.assert_array_equal(there[name].segmentation_test[subset], seg)


def test_worker_count_is_bounded_by_files_and_memory_and_must_be_positive(files, monkeypatch):
    import psutil

    paths = list(files.values())
    assert E.evaluation_workers(paths, 5) == 3 and E.evaluation_workers(paths[:1]) == 1
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        E.evaluation_workers(paths, 0)
    elements = max(sum(math.prod(s) for s in R.result_shapes(p).values()) for p in paths)

    class Mem:
        available = int(2.5 * elements * E.EVAL_BYTES_PER_ELEMENT)  # room for two evaluations

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Mem)
    monkeypatch.setattr(E.os, "cpu_count", lambda: 16)
    assert E.evaluation_workers(paths) == 2
    Mem.available = 10
    assert E.evaluation_workers(paths) == 1  # never fewer than one
