"""``write_summary``: the per-method scan AUROCs of notebook 05's ``summary.json``, and reuse of evaluations."""

from __future__ import annotations

import pytest

import ctad_core.evaluation as E
from ctad_core.evaluation import evaluate
from ctad_core.methods import scoring
from ctad_core.utils import read_json
from tests.evaluation._synthetic import synthetic


def test_given_evaluations_are_used_and_give_the_same_summary(tmp_path, monkeypatch):
    res = [synthetic("a", "3d", seed=1), synthetic("b", "3d", seed=2, noise=0.8)]
    evals = {r.name: evaluate(r, keep_segmentations=False, n_boot=50) for r in res}
    fresh = scoring.write_summary(tmp_path / "fresh", res)

    def refuse(*a, **k):
        raise AssertionError("write_summary evaluated a method whose evaluation it was given")

    monkeypatch.setattr("ctad_core.evaluation.evaluate", refuse)
    reused = scoring.write_summary(tmp_path / "reused", iter(res), evals)
    assert reused == fresh
    assert read_json(tmp_path / "reused" / "summary.json") == read_json(tmp_path / "fresh" / "summary.json")
    assert (tmp_path / "reused" / "scores.csv").read_text() == (tmp_path / "fresh" / "scores.csv").read_text()
    # the figures are the evaluator's, not re-derived
    for r in res:
        assert reused["methods"][r.name]["scan_auroc"] == pytest.approx(evals[r.name].metrics["scan_auroc"])


def test_a_method_without_a_given_evaluation_is_evaluated(tmp_path, monkeypatch):
    res = [synthetic("a", "3d", seed=1), synthetic("b", "3d", seed=2)]
    calls = []
    orig = E.evaluate

    def counting(r, **k):
        calls.append(r.name)
        return orig(r, **k)

    monkeypatch.setattr(E, "evaluate", counting)
    out = scoring.write_summary(tmp_path, res, {"a": orig(res[0], keep_segmentations=False, n_boot=50)})
    assert calls == ["b"]
    assert set(out["methods"]) == {"a", "b"}
