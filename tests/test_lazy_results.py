"""ctad_core.results.LazyResults: notebook 07's methods read from disk on demand, at most `keep` in memory."""

from __future__ import annotations

import numpy as np
import pytest

from ctad_core import results as R
from tests.evaluation._synthetic import synthetic


@pytest.fixture()
def saved(tmp_path):
    paths = {}
    for name in ("a", "b", "c"):
        res = synthetic(name, "2d", seed=len(paths))
        paths[name] = R.save_method_results(tmp_path / "x", res)
    return paths


def test_results_round_trip_and_at_most_keep_methods_stay_in_memory(saved, monkeypatch):
    reads = []
    real = R.load_method_results
    monkeypatch.setattr(R, "load_method_results", lambda p: reads.append(p.stem) or real(p))
    lazy = R.LazyResults(saved, keep=1)
    assert len(lazy) == 3 and list(lazy) == ["a", "b", "c"] and "b" in lazy and reads == []
    a = lazy["a"]
    assert np.array_equal(a.maps, synthetic("a", "2d", seed=0).maps)
    assert lazy["a"] is a and reads == ["a"]  # kept while it is the most recent
    lazy["b"]
    lazy["a"]
    assert reads == ["a", "b", "a"] and len(lazy._cache) == 1  # keep=1: b pushed a out
    two = R.LazyResults(saved, keep=2)
    two["a"], two["b"], two["a"], two["c"]
    assert set(two._cache) == {"a", "c"}  # the least recently used (b) went


def test_unknown_methods_and_bad_keep_are_refused(saved):
    with pytest.raises(KeyError, match="no results for method 'z'"):
        R.LazyResults(saved)["z"]
    with pytest.raises(ValueError, match="keep must be"):
        R.LazyResults(saved, keep=0)


def _counting(monkeypatch):
    reads = []
    real = R.load_method_results
    monkeypatch.setattr(R, "load_method_results", lambda p: reads.append(p.stem) or real(p))
    return reads


def test_headers_and_single_arrays_are_read_without_loading_the_method(saved, monkeypatch):
    reads = _counting(monkeypatch)
    lazy = R.LazyResults(saved)
    h = lazy.header("b")
    with np.load(saved["b"]) as z:  # the reference: numpy's own reading of every array
        assert h.shapes == {k: z[k].shape for k in z.files}
        np.testing.assert_array_equal(lazy.array("b", "split"), z["split"])
    assert h.name == "b" and h.level == "2d" and h.n_items == len(synthetic("b", "2d", seed=1).scan_id)
    assert lazy.array("b", "member_maps") is None and "member_maps" not in h.shapes
    assert reads == []
    loaded = lazy["b"]  # a method in memory answers from the object, the same header
    assert lazy.header("b") == R.header_of(loaded) and lazy.array("b", "maps") is loaded.maps
    with pytest.raises(KeyError):
        lazy.header("z")
    with pytest.raises(KeyError):
        lazy.array("z", "split")


def test_a_file_with_a_foreign_member_is_refused(tmp_path):
    import zipfile

    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match="notes.txt"):
        R.result_shapes(bad)


def test_qualitative_figures_and_viewer_read_each_method_once(saved, monkeypatch):
    """Notebook 07's figures over a LazyResults: choosing methods and items reads headers, not arrays
    (with keep=1, every `results[n]` of the choice re-read a whole method: 18 methods took minutes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ctad_core.evaluation import evaluate
    from ctad_core.evaluation.figures import qualitative_figures, viewer

    evals = {n: evaluate(R.load_method_results(p), n_boot=20) for n, p in saved.items()}
    reads = _counting(monkeypatch)
    figs = qualitative_figures(R.LazyResults(saved, keep=1), evals, n_items=2)
    assert figs and sorted(reads) == ["a", "b", "c"]  # each row once (the first row is also the reference)
    plt.close("all")
    reads.clear()
    monkeypatch.setenv("CTAD_HEADLESS", "1")
    viewer(R.LazyResults(saved, keep=1), evals)
    assert reads == ["a"]
    plt.close("all")


def test_excluded_arrays_are_not_read_and_required_ones_cannot_be_excluded(tmp_path):
    import dataclasses

    res = synthetic("a", "2d", seed=0)
    res = dataclasses.replace(res, recon=res.maps * 0.5, inputs=res.maps * 0.25)
    path = R.save_method_results(tmp_path, res)
    full = R.load_method_results(path)
    part = R.load_method_results(path, exclude=("recon", "inputs"))
    assert full.recon is not None and full.inputs is not None and part.recon is None and part.inputs is None
    np.testing.assert_array_equal(part.maps, full.maps)
    np.testing.assert_array_equal(part.scan_score, full.scan_score)
    with pytest.raises(ValueError, match="cannot exclude the required arrays \\['scan_score'\\]"):
        R.load_method_results(path, exclude=("scan_score",))
    with pytest.raises(TypeError, match="got the string 'recon'"):
        R.load_method_results(path, exclude="recon")
