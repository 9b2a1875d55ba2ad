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
    here = E.evaluate_files(files, kw, workers=1, store=False)
    there = E.evaluate_files(files, kw, workers=2, store=False)
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
    from ctad_core import parallel

    monkeypatch.setattr(parallel, "available_cores", lambda: 16)
    assert E.evaluation_workers(paths) == 2
    Mem.available = 10
    assert E.evaluation_workers(paths) == 1  # never fewer than one


def _same(a, b):
    """Two evaluations hold the same values, of the same types, in the same structure."""
    import dataclasses

    if dataclasses.is_dataclass(a):
        assert type(a) is type(b)
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, tuple | list):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and a != a:
        assert isinstance(b, float) and b != b
    else:
        assert type(a) is type(b) and a == b, (a, b)


def test_a_saved_evaluation_reads_back_whole_and_is_reused_until_anything_changes(files, monkeypatch):
    import os

    from ctad_core.evaluation import evaluator
    from ctad_core.evaluation import store as S

    kw = {"n_boot": 40, "seed": 1, "patients": {}}
    first = E.evaluate_files(files, kw, workers=1)
    assert S.evaluation_path(files["b"]).is_file()
    calls = []
    real = E.evaluate
    monkeypatch.setattr(E, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = E.evaluate_files(files, kw, workers=1)
    assert calls == []  # every one read back
    for name in files:
        _same(first[name], again[name])
    assert isinstance(again["b"].sweeps["all"], evaluator.M.DiceSweep) and isinstance(again["b"].roc_scan, tuple)
    lean = E.evaluate_files(files, {**kw, "keep_segmentations": False}, workers=1)
    assert calls == [] and lean["b"].segmentation_test == {} and first["b"].segmentation_test
    kw = {**kw, "n_boot": 41}
    E.evaluate_files(files, kw, workers=1)  # other arguments: evaluated again (and saved in place)
    assert len(calls) == 3 and S.load_evaluation(files["c"], {**kw, "n_boot": 40}) is None
    st = os.stat(files["a"])
    os.utime(files["a"], ns=(st.st_atime_ns, st.st_mtime_ns + 1000))  # results rewritten
    assert S.load_evaluation(files["a"], kw) is None and S.load_evaluation(files["c"], kw) is not None
    monkeypatch.setattr(S, "code_digest", lambda: "another version")
    assert S.load_evaluation(files["c"], kw) is None
    monkeypatch.undo()


def test_damaged_or_foreign_saved_evaluations_are_ignored_and_pickle_is_never_needed(files):
    from ctad_core.evaluation import store as S

    kw = {"n_boot": 20}
    E.evaluate_files({"c": files["c"]}, kw, workers=1)
    js = S.evaluation_path(files["c"])
    npz = js.with_suffix(".npz")
    assert S.load_evaluation(files["c"], kw) is not None
    npz.write_bytes(npz.read_bytes()[:100])  # truncated after the key was written
    assert S.load_evaluation(files["c"], kw) is None
    js.write_text("{not json")
    assert S.load_evaluation(files["c"], kw) is None
    ev = E.evaluate_files({"c": files["c"]}, kw, workers=1)["c"]  # evaluated and saved again
    assert S.load_evaluation(files["c"], kw) is not None
    ev.metrics["bad"] = np.array([{"x": 1}], dtype=object)
    with pytest.raises(TypeError, match="metrics.bad: object array cannot be stored without pickle"):
        S.save_evaluation(ev, files["c"], kw)


def test_a_save_keyed_before_a_rewrite_is_not_served_and_saves_never_mix(files):
    """The key is taken before the results are read: results rewritten during the evaluation make the saved
    evaluation stale at once. One save's JSON with another save's arrays is refused (shared token)."""
    import os
    import shutil

    from ctad_core.evaluation import store as S

    kw = {"n_boot": 20}
    ev = E.evaluate_files({"b": files["b"]}, kw, workers=1)["b"]
    old_key = S.evaluation_key(files["b"], kw)
    st = os.stat(files["b"])
    os.utime(files["b"], ns=(st.st_atime_ns, st.st_mtime_ns + 5000))  # rewritten while being evaluated
    S.save_evaluation(ev, files["b"], kw, old_key)
    assert S.load_evaluation(files["b"], kw) is None
    S.save_evaluation(ev, files["b"], kw)  # keyed now
    js = S.evaluation_path(files["b"])
    keep = js.with_suffix(".npz").read_bytes()
    shutil.copy(js, js.with_name("first.json"))
    S.save_evaluation(ev, files["b"], kw)  # a second save: new token
    assert S.load_evaluation(files["b"], kw) is not None
    js.with_suffix(".npz").write_bytes(keep)  # the first save's arrays under the second save's JSON
    assert S.load_evaluation(files["b"], kw) is None
    js.write_text("[]")  # valid JSON, not ours
    assert S.load_evaluation(files["b"], kw) is None


def test_a_rewrite_within_the_mtime_resolution_defaults_and_library_versions(files, monkeypatch):
    """Results saved again with the same size and modification time (a coarse file system) are a new file;
    an argument left at its default and the same argument passed explicitly are one key; another numpy,
    scipy, scikit-learn or torch is another; an argument evaluate does not take is named."""
    import inspect
    import os

    from ctad_core.evaluation import store as S

    E.evaluate_files({"c": files["c"]}, {"n_boot": 20}, workers=1)
    default_fpr = inspect.signature(E.evaluate).parameters["fpr"].default
    assert S.load_evaluation(files["c"], {"n_boot": 20, "fpr": default_fpr}) is not None
    assert S.load_evaluation(files["c"], {"n_boot": 20, "fpr": default_fpr / 2}) is None
    real = S.library_versions()
    monkeypatch.setattr(S, "library_versions", lambda: {**real, "numpy": "0.0"})
    assert S.load_evaluation(files["c"], {"n_boot": 20}) is None
    monkeypatch.undo()
    with pytest.raises(TypeError, match="not_an_argument"):
        S.evaluation_key(files["c"], {"not_an_argument": 1})
    st = os.stat(files["c"])
    res = R.load_method_results(files["c"])
    R.save_method_results(files["c"].parent.parent, res)  # the same results written again: same size
    os.utime(files["c"], ns=(st.st_atime_ns, st.st_mtime_ns))  # and, on a coarse file system, the same mtime
    assert os.stat(files["c"]).st_size == st.st_size
    assert S.load_evaluation(files["c"], {"n_boot": 20}) is None


def test_a_dead_worker_costs_time_not_figures(files, monkeypatch):
    from concurrent.futures.process import BrokenProcessPool

    from ctad_core import parallel

    kw = {"n_boot": 20, "seed": 2, "patients": {}}
    want = E.evaluate_files(files, kw, workers=1, store=False)

    real, calls = parallel.run_jobs, []

    def broken_once(*a, **k):
        calls.append(k.get("isolate", False))
        if len(calls) == 1:
            raise BrokenProcessPool("a worker was killed")
        return real(*a, **k)

    monkeypatch.setattr(parallel, "run_jobs", broken_once)
    with pytest.warns(RuntimeWarning, match="evaluation worker died"):
        got = E.evaluate_files(files, kw, workers=2, store=False)
    assert calls == [False, True]  # then one method at a time, in one worker process
    for name in files:
        assert _plain(got[name]) == _plain(want[name])
