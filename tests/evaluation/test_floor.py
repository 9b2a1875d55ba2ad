"""Issue 11: the plain statements of notebook 07 and ``report/floor.md`` (each method against the floor)."""

from __future__ import annotations

import pytest

from ctad_core.evaluation import report as R

from ._synthetic import synthetic


def _c(est, lo, hi, p, n=20):
    return {"estimate": est, "low": lo, "high": hi, "p_value": p, "n_boot": 100, "n_scans": n}


def _comparisons():
    """Hand-made: intensity is the best baseline; three methods, one per outcome, on each figure."""
    return {
        "baselines": ["intensity", "normative"],
        "scan_auroc": {
            "TOTAL": {
                "reference": "intensity",
                "reference_is": "best baseline",
                "vs": {
                    "good": _c(0.12, 0.02, 0.25, 0.01),
                    "bad": _c(-0.23, -0.45, -0.02, 0.03),
                    "same": _c(-0.05, -0.30, 0.20, 0.60),
                    "normative": _c(-0.10, -0.30, 0.10, 0.40),
                },
            },
            "sdh": {
                "reference": "normative",
                "reference_is": "best baseline",
                "vs": {
                    "good": _c(0.0, -0.2, 0.2, 1.0, 8),
                    "bad": _c(-0.5, -1.0, -0.1, 0.02, 8),
                    "same": _c(0.3, 0.1, 0.5, 0.2, 8),  # interval clear of 0 but p too large: not decided
                    "lone": _c(-1.0, -1.0, -1.0, 0.0, 3),  # one lesioned scan: the resamples never vary
                },
            },
        },
        "dice": {
            "2d all": {
                "reference": "intensity",
                "reference_is": "best baseline",
                "rule": "healthy_fpr",
                "vs": {
                    "good": {"statistic": 1.0, "p_value": 0.004, "n": 12, "median_difference": 0.1},
                    "bad": {
                        "statistic": 2.0,
                        "p_value": 0.01,
                        "n": 12,
                        "median_difference": 0.0,
                        "mean_difference": -0.05,  # the median is 0: the mean says which way
                    },
                    "same": {"statistic": 30.0, "p_value": 0.5, "n": 12, "median_difference": 0.2},
                },
                "unpaired": [],
            }
        },
    }


def _metrics():
    m = {}
    for n, a, lo, hi in (
        ("intensity", 0.85, 0.7, 0.95),
        ("normative", 0.75, 0.6, 0.9),
        ("good", 0.97, 0.9, 1.0),
        ("bad", 0.62, 0.41, 0.80),
        ("same", 0.80, 0.6, 0.95),
    ):
        m[n] = {
            "baseline": n in ("intensity", "normative"),
            "scan_auroc": a,
            "ci": {"scan_auroc": {"low": lo, "high": hi}},
            "scan_auroc_by_kind": {"sdh": a},
            "dice_by_rule": {"healthy_fpr": {"all": {"median": a / 2, "median_ci": [lo / 2, hi / 2]}}},
        }
    return m


def _by(st, method, family_start):
    (s,) = [s for s in st if s["method"] == method and s["family"].startswith(family_start)]
    return s


def test_three_outcomes_decided_by_the_paired_test_and_stated():
    st = R.floor_statements(_comparisons(), _metrics())
    total = {n: _by(st, n, "scan AUROC, all") for n in ("good", "bad", "same")}
    assert [total[n]["outcome"] for n in ("good", "bad", "same")] == ["beats", "below", "tied"]
    s = total["bad"]["sentence"]
    assert s.startswith("bad does not beat the best baseline (intensity) on scan AUROC")
    # both figures with their intervals, the paired difference with its interval and p
    assert "0.62 [0.41, 0.80] vs 0.85 [0.70, 0.95]" in s and "−0.23 [−0.45, −0.02]" in s and "p = 0.030" in s
    assert total["good"]["sentence"].startswith("good beats the best baseline (intensity)")
    assert "cannot be told apart from the best baseline (intensity)" in total["same"]["sentence"]
    # per kind: p >= alpha is never a difference even when the interval is clear of 0
    kinds = {n: _by(st, n, "scan AUROC per lesion kind") for n in ("good", "bad", "same")}
    assert kinds["good"]["kinds"] == {"sdh": "tied"} and kinds["same"]["kinds"] == {"sdh": "tied"}
    assert kinds["bad"]["kinds"] == {"sdh": "below"} and "normative" in kinds["bad"]["sentence"]
    lone = _by(st, "lone", "scan AUROC per lesion kind")
    assert lone["kinds"] == {"sdh": "tied"} and "too few scans" in lone["sentence"]
    # Dice: Wilcoxon p, direction by the median difference, by the mean where the median is 0
    dice = {n: _by(st, n, "median Dice")["outcome"] for n in ("good", "bad", "same")}
    assert dice == {"good": "beats", "bad": "below", "same": "tied"}
    assert "healthy val. FPR" in _by(st, "good", "median Dice")["family"]
    # a stricter level turns the weaker differences into ties
    strict = R.floor_statements(_comparisons(), _metrics(), alpha=0.005)
    assert _by(strict, "bad", "scan AUROC, all")["outcome"] == "tied"
    assert _by(strict, "good", "median Dice")["outcome"] == "beats"


def test_every_non_baseline_method_gets_a_sentence_and_baselines_none():
    comp = _comparisons()
    meths = {**_metrics(), "lonely": {"baseline": False}}  # evaluated but never paired
    st = R.floor_statements(comp, meths)
    said = {s["method"] for s in st}
    assert said == {"good", "bad", "same", "lone", "lonely"}
    (lonely,) = [s for s in st if s["method"] == "lonely"]
    assert lonely["outcome"] == "none" and "no paired comparison" in lonely["sentence"]
    for n in ("good", "bad", "same"):
        fams = {s["family"].split(",")[0].split(" (")[0] for s in st if s["method"] == n}
        assert fams == {"scan AUROC", "scan AUROC per lesion kind", "median Dice"}, (n, fams)
    md = R.floor_markdown(st)
    for n in said:
        assert f"**{n}**" in md
    assert "**intensity**" not in md and "**normative**" not in md


def test_without_baselines_the_best_method_is_the_reference_and_says_so():
    comp = _comparisons()
    comp["baselines"] = []
    for e in (*comp["scan_auroc"].values(), *comp["dice"].values()):
        e["reference_is"] = "best method"
    st = R.floor_statements(comp, _metrics())
    ref = _by(st, "intensity", "scan AUROC, all")
    assert ref["outcome"] == "reference" and "is the best method" in ref["sentence"]
    assert (
        "cannot be told apart from the best method (intensity)"
        in _by(st, "same", "scan AUROC, all")["sentence"]
    )


def test_report_tables_mark_baselines_first_and_write_floor_md(tmp_path):
    from ctad_core.results import save_method_results

    run = tmp_path / "run"
    base = synthetic("intensity2d", seed=1, noise=0.6)
    base.info["baseline"] = True
    save_method_results(run / "restoration", synthetic("fastgan_restoration", seed=1))
    save_method_results(run / "restoration", base)
    rep, _ = R.build_report(run, profile="smoke", n_boot=50)
    summary = (run / "report" / "summary.md").read_text()
    rows = [ln for ln in summary.splitlines() if ln.startswith("| ") and "Method" not in ln]
    assert rows[0].startswith(f"| intensity2d {R.BASELINE_MARK} |") and rows[1].startswith(
        "| fastgan_restoration |"
    )
    assert f"{R.BASELINE_MARK} simple baseline" in summary
    floor = (run / "report" / "floor.md").read_text()
    assert "**fastgan_restoration**" in floor and "**intensity2d**" not in floor
    assert "the best baseline (intensity2d)" in floor
    with pytest.raises(KeyError):
        R.floor_statements({"scan_auroc": {"TOTAL": {"vs": {}}}})  # a comparison without its reference
