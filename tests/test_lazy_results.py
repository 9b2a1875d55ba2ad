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
