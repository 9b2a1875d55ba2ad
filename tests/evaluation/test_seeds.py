"""Seed-to-seed summary (ctad_core.evaluation.seeds) against numpy on hand-made reports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctad_core.evaluation.seeds import seed_markdown, seed_table


def _report(seed, auroc, kind_auc, dice=None, profile="quick"):
    return {
        "profile": profile,
        "seed": seed,
        "methods": {
            "resae": {
                "scan_auroc": auroc,
                "dice_default_median": dice,
                "scan_auroc_by_kind": {"sdh": kind_auc},
            },
            "intensity": {"scan_auroc": 0.9, "baseline": True, "scan_auroc_by_kind": {"sdh": 1.0}},
        },
    }


def test_mean_and_sample_sd_over_seeds_match_numpy():
    reps = [_report(0, 0.61, 0.5, 0.2), _report(1, 0.70, 0.7, None), _report(2, 0.64, 0.9, 0.4)]
    t = seed_table(reps)
    r = t.loc[("resae", "scan AUROC")]
    assert r["mean"] == pytest.approx(np.mean([0.61, 0.70, 0.64]))
    assert r["sd"] == pytest.approx(np.std([0.61, 0.70, 0.64], ddof=1))
    assert r["n"] == 3
    d = t.loc[("resae", "Dice median (healthy FPR rule)")]  # None in one run: missing, not zero
    assert d["n"] == 2 and d["mean"] == pytest.approx(0.3)
    assert t.loc[("intensity", "scan AUROC")]["sd"] == 0.0 and bool(
        t.loc[("intensity", "scan AUROC")]["baseline"]
    )
    assert math.isnan(t.loc[("intensity", "pixel AUROC")]["mean"])
    k = seed_table(reps, by_kind=True).loc[("resae", "sdh")]
    assert k["mean"] == pytest.approx(0.7) and k["sd"] == pytest.approx(0.2)


def test_markdown_marks_baselines_and_writes_mean_plus_minus_sd():
    md = seed_markdown(seed_table([_report(0, 0.6, 0.5), _report(1, 0.8, 0.5)]))
    assert "| intensity † |" in md
    assert "0.700 ± 0.141" in md  # mean 0.7, SD of (0.6, 0.8) = 0.1414
    assert md.splitlines()[0].startswith("| method | scan AUROC |")


def test_runs_of_different_profiles_or_none_are_refused():
    with pytest.raises(ValueError, match="different profiles"):
        seed_table([_report(0, 0.6, 0.5), _report(1, 0.6, 0.5, profile="gpu")])
    with pytest.raises(ValueError, match="no reports"):
        seed_table([])
