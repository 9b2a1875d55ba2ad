"""Notebooks 04/05's preview: every Dice column names the rule that chose its threshold (issue 11 item 3)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from ctad_core.evaluation.report import metric_rule, preview_table


def _metrics(dice_median, baseline=False, rule="val_lesion_mean"):
    return {
        "baseline": baseline,
        "rule_of": {"dice_median": rule, "dice_default_median": "healthy_fpr"},
        "dice_median": dice_median,
        "dice_default_median": dice_median / 2,
        "dice_all": {"rule": rule, "val_mean_dice": 0.3},
        "dice_by_rule": {"healthy_fpr": {"fpr": 0.01}},
        "slice_sensitivity": 0.8,
        "slice_sensitivity_rule": "val_youden",
        "pixel_auroc": 0.9,
    }


def test_the_rule_of_a_figure_comes_from_rule_of_its_own_field_or_its_record():
    m = _metrics(0.4)
    assert metric_rule(m, "dice_median") == "val_lesion_mean"
    assert metric_rule(m, "dice_default_median") == "healthy_fpr"
    assert metric_rule(m, "dice_all.val_mean_dice") == "val_lesion_mean"
    assert metric_rule(m, "slice_sensitivity") == "val_youden"
    assert metric_rule(m, "pixel_auroc") is None


def test_each_dice_column_is_titled_with_its_rule_and_baselines_are_marked():
    ev = {
        "resae": SimpleNamespace(metrics=_metrics(0.4)),
        "intensity": SimpleNamespace(metrics=_metrics(0.2, True)),
    }
    t = preview_table(
        ev, [("Dice median", "dice_default_median"), ("Dice median", "dice_median"), ("AUROC", "pixel_auroc")]
    )
    assert list(t.columns) == [
        "Dice median [healthy val. FPR 1 %]",
        "Dice median [val. lesions, mean Dice (seed 000)]",
        "AUROC",
    ]
    assert list(t.index) == ["resae", "intensity †"]
    assert t.loc["resae", "Dice median [val. lesions, mean Dice (seed 000)]"] == 0.4
    assert t.loc["intensity †", "Dice median [healthy val. FPR 1 %]"] == pytest.approx(0.1)
    assert math.isnan(preview_table(ev, [("missing", "dice_sd")]).loc["resae", "missing"])


def test_a_column_that_would_mix_rules_or_repeat_a_title_is_refused():
    ev = {
        "a": SimpleNamespace(metrics=_metrics(0.4)),
        "b": SimpleNamespace(metrics=_metrics(0.4, rule="test_oracle")),
    }
    with pytest.raises(ValueError, match="different rules"):
        preview_table(ev, [("Dice", "dice_median")])
    with pytest.raises(ValueError, match="two columns are titled"):
        preview_table({"a": ev["a"]}, [("AUROC", "pixel_auroc"), ("AUROC", "pixel_auroc")])
