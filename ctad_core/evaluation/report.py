"""The report of notebook 07: every method evaluated by :func:`~ctad_core.evaluation.evaluator.evaluate`,
``report/metrics.json`` (the regression surface), Markdown tables and FID.

``run_dir/report/`` holds ``metrics.json``, one ``<table>.md`` per table (``floor.md``: the plain statements of
:func:`floor_statements`, each method against the best baseline) and the figures that notebook 07
saves with :mod:`ctad_core.evaluation.figures`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ctad_core.evaluation import metrics as M
from ctad_core.evaluation.comparisons import compare_to_reference
from ctad_core.evaluation.evaluator import (
    DEFAULT_RULE,
    HEAD_MASK_LABEL,
    SCAN_AGGREGATE,
    SCAN_RULES,
    THRESHOLD_RULES,
    MethodEvaluation,
    compare_dice,
    evaluate,
)
from ctad_core.evaluation.thresholds import DICE_GRID
from ctad_core.kinds import HAEMORRHAGE_KINDS, OUTSIDE_BRAIN_KINDS
from ctad_core.results import find_method_results, load_method_results
from ctad_core.utils import read_json, write_json


def _nan_to_none(x: Any) -> Any:
    """JSON cannot hold NaN portably: NaN/inf become None, recursively."""
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _fmt(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{nd}f}"


def _md(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


#: short labels of the threshold rules in tables.
RULE_LABELS = {
    "healthy_fpr": "healthy val. FPR",
    "val_lesion_mean": "val. lesions, mean Dice (seed 000)",
    "val_lesion_pooled": "val. lesions, pooled Dice (seed 004 [DICE])",
    "test_oracle": "test oracle (UPPER BOUND)",
    "healthy_val_quantile": "healthy val. scans quantile",
    "val_youden": "val. Youden (labelled)",
    "test_youden": "test Youden (UPPER BOUND)",
}


def _ci(x: Any, ci: Mapping[str, Any] | None, nd: int = 3) -> str:
    """``0.812 [0.70, 0.91]``: a figure with its interval (or just the figure)."""
    if x is None:
        return "–"
    if not ci or ci.get("low") is None or ci.get("high") is None:
        return _fmt(x, nd)
    return f"{_fmt(x, nd)} [{_fmt(ci['low'], 2)}, {_fmt(ci['high'], 2)}]"


def _rule_label(rule: str, m: Mapping[str, Any] | None = None) -> str:
    lab = RULE_LABELS.get(rule, rule)
    if rule == "healthy_fpr" and m is not None:
        f = (m.get("dice_by_rule") or {}).get("healthy_fpr", {}).get("fpr")
        lab += f" {100 * f:g} %" if f is not None else ""
    return lab


def metric_rule(metrics: Mapping[str, Any], key: str) -> str | None:
    """The threshold rule behind ``key`` of a method's ``metrics.json`` record (``None`` for a figure that needs
    no threshold, e.g. AUROC): ``rule_of[key]`` or ``<key>_rule`` (e.g. ``slice_sensitivity_rule``) for flat
    keys, else the ``rule`` field of the deepest record on a dotted path (``"dice_all.val_mean_dice"`` →
    ``dice_all["rule"]``)."""
    parts = key.split(".")
    rule = (metrics.get("rule_of") or {}).get(parts[0]) or metrics.get(f"{parts[0]}_rule")
    node: Any = metrics
    for part in parts:
        if not isinstance(node, Mapping):
            break
        rule = node.get("rule", rule) if node is not metrics else rule
        node = node.get(part)
    if isinstance(node, Mapping):
        rule = node.get("rule", rule)
    return rule


def preview_table(evaluations: Mapping[str, Any], columns: Sequence[tuple[str, str]]) -> Any:
    """Notebooks 04/05's validation/test preview: one row per method (baselines marked †), one column per
    figure, every Dice or threshold column titled with the rule that chose its threshold.

    Args:
        evaluations: method name → :class:`~ctad_core.evaluation.evaluator.MethodEvaluation` (its ``metrics``).
        columns: (column title, key of the ``metrics`` record) pairs; keys dotted for nested records, e.g.
            ``"lesion_detection.rate"``. A title gets `` [rule]`` (:data:`RULE_LABELS`) when its figure
            depends on a threshold rule (:func:`metric_rule`), so one title may appear under two rules.

    Returns:
        A ``pandas.DataFrame`` (missing figures are NaN).

    Raises:
        ValueError: if two methods report the same key under different rules (the column would mix them), or
            two columns end up with the same title.
    """
    import pandas as pd

    titled: dict[str, str] = {}
    for title, key in columns:
        rules = {metric_rule(e.metrics, key) for e in evaluations.values()} - {None}
        if len(rules) > 1:
            raise ValueError(
                f"{key!r} was chosen by different rules {sorted(rules)}: one column cannot hold them"
            )
        first = next(iter(evaluations.values())).metrics if evaluations else None
        full = f"{title} [{_rule_label(rules.pop(), first)}]" if rules else title
        if full in titled:
            raise ValueError(f"two columns are titled {full!r}")
        titled[full] = key

    def get(m: Mapping[str, Any], key: str) -> Any:
        for part in key.split("."):
            m = m.get(part) if isinstance(m, Mapping) else None
        return m if isinstance(m, (int, float)) and not isinstance(m, bool) else float("nan")

    rows = {
        (f"{n} †" if e.metrics.get("baseline") else n): {t: get(e.metrics, k) for t, k in titled.items()}
        for n, e in evaluations.items()
    }
    return pd.DataFrame(rows).T


def _dice_cell(d: Mapping[str, Any] | None, pooled: bool = False) -> str:
    if not d or d.get("mean") is None:
        return "–"
    if pooled:
        return f"pooled {_fmt(d.get('pooled'), 2)}"
    med = d.get("median")
    ci = d.get("median_ci")
    med_s = (
        _fmt(med, 2) if not ci or ci[0] is None else f"{_fmt(med, 2)} [{_fmt(ci[0], 2)}, {_fmt(ci[1], 2)}]"
    )
    return f"{_fmt(d.get('mean'), 2)} ± {_fmt(d.get('sd'), 2)} (median {med_s}, n={d.get('n', 0)})"


def _uncertainty_tables(report: Mapping[str, Any], names: Sequence[str]) -> dict[str, str]:
    """Prevalence, lesion-size terciles, scan operating points and paired comparisons."""
    meths = report["methods"]
    t: dict[str, str] = {}
    rows = []
    for n in names:
        p = meths[n].get("prevalence") or {}
        if p:
            rows.append(
                [
                    n,
                    f"{p.get('scans_lesioned', '–')} / {p.get('scans', '–')}",
                    _fmt(p.get("scan_prevalence")),
                    f"{p.get('lesion_voxels_in_mask', '–')} / {p.get('mask_voxels', '–')}",
                    _fmt(p.get("voxel_prevalence"), 5),
                ]
            )
    if rows:
        t["prevalence"] = _md(
            [
                "Method",
                "lesioned scans / scans",
                "scan prevalence",
                "lesion voxels / mask voxels",
                "voxel prevalence",
            ],
            rows,
        )
    rows = []
    for n in names:
        bs = meths[n].get("by_lesion_size") or {}
        for g, e in (bs.get("groups") or {}).items():
            sa = e.get("scan_auroc") or {}
            rng = e.get("size_range")
            rows.append(
                [
                    n,
                    g,
                    f"{rng[0]}–{rng[1]}" if rng else "–",
                    str(e.get("n_items", 0)),
                    _dice_cell(e.get("dice")),
                    _rule_label(bs.get("rule", DEFAULT_RULE), meths[n]),
                    str(e.get("n_scans", "–")),
                    _ci(sa.get("estimate"), sa),
                ]
            )
    if rows:
        t["by_lesion_size"] = (
            _md(
                [
                    "Method",
                    "size tercile",
                    "lesion voxels",
                    "items",
                    "Dice mean ± SD (median [95 % CI])",
                    "Dice rule",
                    "lesioned scans",
                    "scan AUROC vs healthy [95 % CI]",
                ],
                rows,
            )
            + "\n\nTerciles of the lesion's voxel count over the test items with a lesion (2D: per slice)."
        )
    rows = []
    for n in names:
        ops = meths[n].get("scan_operating_points") or {}
        for r in ("healthy_val_quantile", "val_youden", "test_youden"):
            op = ops.get(r)
            if op:
                rows.append(
                    [
                        n,
                        _rule_label(r),
                        _fmt(op.get("threshold")),
                        _fmt(op.get("sensitivity")),
                        _fmt(op.get("specificity")),
                    ]
                )
    if rows:
        f = next(
            (
                meths[n]["scan_operating_points"].get("scan_fpr")
                for n in names
                if meths[n].get("scan_operating_points")
            ),
            None,
        )
        t["scan_operating_points"] = (
            _md(["Method", "rule", "threshold", "sensitivity (test)", "specificity (test)"], rows)
            + f"\n\nDefault: the threshold that flags at most {f} of the healthy validation scans."
        )
    comp = report.get("comparisons") or {}
    rows = []
    for fig, e in (comp.get("scan_auroc") or {}).items():
        for n, c in e["vs"].items():
            rows.append(
                [
                    fig,
                    n,
                    f"{e['reference']} ({e['reference_is']})",
                    _ci(c.get("estimate"), c),
                    _fmt(c.get("p_value"), 4),
                    str(c.get("n_scans")),
                ]
            )
    if rows:
        t["comparisons_scan_auroc"] = (
            _md(
                [
                    "Scans",
                    "Method",
                    "Reference",
                    "Δ AUROC (method − ref.) [95 % CI]",
                    "p (paired bootstrap)",
                    "n scans",
                ],
                rows,
            )
            + "\n\nPaired bootstrap resampling patients; each method's own scan score."
        )
    rows = []
    for key, e in (comp.get("dice") or {}).items():
        for n, c in e["vs"].items():
            rows.append(
                [
                    key,
                    n,
                    f"{e['reference']} ({e['reference_is']})",
                    _rule_label(e["rule"]),
                    _fmt(c.get("median_difference")),
                    _fmt(c.get("p_value"), 4),
                    str(c.get("n")),
                ]
            )
    if rows:
        t["comparisons_dice"] = _md(
            ["Items", "Method", "Reference", "Dice rule", "median Δ Dice", "p (Wilcoxon, paired)", "n"], rows
        )
    return t


#: marks a simple baseline's row in the summary table (with a legend line under it).
BASELINE_MARK = "†"
#: significance level of the plain statements (:func:`floor_statements`).
FLOOR_ALPHA = 0.05
#: the three outcomes of a paired comparison, as :func:`floor_statements` words them.
FLOOR_OUTCOMES = {
    "beats": "beats",
    "below": "does not beat",
    "tied": "cannot be told apart from",
}


def _signed(x: Any, nd: int = 2) -> str:
    """``+0.12`` / ``−0.23`` (a true minus sign), ``–`` when missing."""
    if x is None or not math.isfinite(float(x)):
        return "–"
    v = float(x)
    return f"{'−' if v < 0 else '+'}{abs(v):.{nd}f}"


def _p(p: Any) -> str:
    if p is None or not math.isfinite(float(p)):
        return "p = –"
    return "p < 0.001" if float(p) < 0.001 else f"p = {float(p):.3f}"


def _degenerate(c: Mapping[str, Any]) -> bool:
    """A paired interval of zero width: the resamples never varied (a kind with one or two scans), no test."""
    lo, hi = c.get("low"), c.get("high")
    return lo is not None and hi is not None and float(lo) == float(hi)


def _auroc_outcome(c: Mapping[str, Any], alpha: float) -> str:
    """Significant only when the paired interval lies clear of 0 and the bootstrap p is below ``alpha``."""
    lo, hi, p = c.get("low"), c.get("high"), c.get("p_value")
    if lo is None or hi is None or p is None or not float(p) < alpha or _degenerate(c):
        return "tied"
    if float(lo) > 0:
        return "beats"
    if float(hi) < 0:
        return "below"
    return "tied"


def _dice_outcome(c: Mapping[str, Any], alpha: float) -> str:
    """Significant when the Wilcoxon p is below ``alpha``; the sign of the median (else mean) difference."""
    p = c.get("p_value")
    if p is None or not float(p) < alpha:
        return "tied"
    d = c.get("median_difference") or 0.0
    d = d if d != 0 else (c.get("mean_difference") or 0.0)
    return "beats" if d > 0 else "below" if d < 0 else "tied"


def _auroc_fig(methods: Mapping[str, Any], n: str, kind: str | None) -> str:
    m = methods.get(n) or {}
    ci = m.get("ci") or {}
    if kind is None:
        return _ci(m.get("scan_auroc"), ci.get("scan_auroc"), 2)
    return _ci(
        (m.get("scan_auroc_by_kind") or {}).get(kind), (ci.get("scan_auroc_by_kind") or {}).get(kind), 2
    )


def _dice_fig(methods: Mapping[str, Any], n: str, rule: str, subset: str) -> str:
    d = (((methods.get(n) or {}).get("dice_by_rule") or {}).get(rule) or {}).get(subset) or {}
    if d.get("median") is None:
        return "–"
    ci = d.get("median_ci")
    return _ci(d["median"], {"low": ci[0], "high": ci[1]} if ci else None, 2)


def _ref_words(e: Mapping[str, Any]) -> str:
    return f"the {e['reference_is']} ({e['reference']})"


def floor_statements(
    comparisons: Mapping[str, Any],
    methods: Mapping[str, Any] | None = None,
    alpha: float = FLOOR_ALPHA,
) -> list[dict[str, Any]]:
    """One plain sentence per method and figure family: does it beat the floor, fall below it, or tie?

    Issue 11: "a method that does not beat the baselines is reported as such, plainly". Each non-baseline
    method gets a sentence for each figure family of ``comparisons`` (:func:`~ctad_core.evaluation.comparisons.
    compare_to_reference`): scan AUROC on all test scans, scan AUROC per lesion kind (one sentence listing
    the kinds by outcome), and per-item Dice of each item level and subset. The outcome is decided by the
    paired test and stated with it:

    - scan AUROC (paired bootstrap over patients): **beats** when the 95 % interval of the difference lies
      above 0 and p < ``alpha``, **does not beat** when it lies below 0 and p < ``alpha``, otherwise
      **cannot be told apart**;
    - Dice (paired Wilcoxon signed-rank, seed 000): p < ``alpha`` and the sign of the median paired
      difference (of the mean where the median is 0); otherwise cannot be told apart.

    Args:
        comparisons: ``report["comparisons"]`` — ``{"baselines", "scan_auroc", "dice"}``.
        methods: ``report["methods"]`` (each method's metrics) to quote both figures with their intervals;
            None quotes the paired difference only.
        alpha: significance level.

    Returns:
        One dict per sentence: ``{"method", "family", "outcome"}`` (outcome ``"beats"``, ``"below"``,
        ``"tied"``, ``"reference"`` for the method that is itself the reference, ``"none"`` when it could not
        be paired), ``"sentence"``, and per-kind ``"kinds": {kind: outcome}``. Ordered by method, then family.
    """
    methods = methods or {}
    baselines = set(comparisons.get("baselines") or [])
    sa = comparisons.get("scan_auroc") or {}
    dice = comparisons.get("dice") or {}
    paired: set[str] = set()
    for e in (*sa.values(), *dice.values()):
        paired |= {e["reference"], *e.get("vs", {}), *e.get("unpaired", [])}
    out: list[dict[str, Any]] = []
    for n in sorted((paired | set(methods)) - baselines):
        if n not in paired:  # evaluated, but on nothing another method scored too
            out.append(
                {
                    "method": n,
                    "family": "all figures",
                    "outcome": "none",
                    "sentence": f"{n} has no paired comparison: no other method scored its test scans or items.",
                }
            )
            continue
        # scan AUROC, all test scans
        e = sa.get("TOTAL")
        fam = "scan AUROC, all test scans"
        if e is not None:
            out.append(_auroc_sentence(n, e, fam, methods, None, alpha))
        # scan AUROC per kind: one sentence, the kinds grouped by outcome
        kinds = {k: v for k, v in sa.items() if k != "TOTAL"}
        if kinds:
            out.append(_kinds_sentence(n, kinds, methods, alpha))
        for key, e in dice.items():
            if n in e.get("vs", {}) or n == e["reference"] or n in e.get("unpaired", []):
                out.append(_dice_sentence(n, key, e, methods, alpha))
    return out


def _unpaired_sentence(
    rec: Mapping[str, str], e: Mapping[str, Any], own: str, missing: str
) -> dict[str, Any] | None:
    """The sentence of a method that is itself the reference (``own``: its figure) or has no pair, else None."""
    n = rec["method"]
    if n == e["reference"]:
        return {
            **rec,
            "outcome": "reference",
            "sentence": f"{n} is the {e['reference_is']} on {rec['family']}: {own}; the others are compared with it.",
        }
    if n not in e["vs"]:
        return {**rec, "outcome": "none", "sentence": missing}
    return None


def _auroc_sentence(n, e, fam, methods, kind, alpha) -> dict[str, Any]:
    ref = e["reference"]
    rec = {"method": n, "family": fam}
    early = _unpaired_sentence(
        rec,
        e,
        _auroc_fig(methods, n, kind),
        f"{n} has no paired comparison with {_ref_words(e)} on {fam} "
        "(no common test scans with both healthy and lesioned ones).",
    )
    if early:
        return early
    c = e["vs"][n]
    o = _auroc_outcome(c, alpha)
    figs = f"{_auroc_fig(methods, n, kind)} vs {_auroc_fig(methods, ref, kind)}, " if methods else ""
    why = "; the resamples do not vary: too few scans to test" if _degenerate(c) else ""
    return {
        **rec,
        "outcome": o,
        "sentence": f"{n} {FLOOR_OUTCOMES[o]} {_ref_words(e)} on {fam}: {figs}paired difference "
        f"{_signed(c.get('estimate'))} [{_signed(c.get('low'))}, {_signed(c.get('high'))}], {_p(c.get('p_value'))} "
        f"(paired bootstrap over patients, {c.get('n_scans')} scans{why}).",
    }


def _kinds_sentence(n, kinds, methods, alpha) -> dict[str, Any]:
    fam = "scan AUROC per lesion kind"
    by: dict[str, list[str]] = {"beats": [], "below": [], "tied": [], "reference": [], "none": []}
    outcomes: dict[str, str] = {}
    for k, e in kinds.items():
        ref = e["reference"]
        if n == ref:
            o, txt = "reference", f"{k} ({_auroc_fig(methods, n, k)})"
        elif n not in e["vs"]:
            o, txt = "none", k
        else:
            c = e["vs"][n]
            o = _auroc_outcome(c, alpha)
            figs = f"{_auroc_fig(methods, n, k)} vs {_auroc_fig(methods, ref, k)}, " if methods else ""
            txt = (
                f"{k} ({ref}: {figs}Δ {_signed(c.get('estimate'))} [{_signed(c.get('low'))}, "
                f"{_signed(c.get('high'))}], {_p(c.get('p_value'))})"
                if o != "tied"
                else f"{k} (resamples do not vary: too few scans)"
                if _degenerate(c)
                else f"{k} ({_p(c.get('p_value'))})"
            )
        by[o].append(txt)
        outcomes[k] = o
    what = next(iter(kinds.values()))["reference_is"]
    parts = [
        f"beats the {what} on {'; '.join(by['beats']) if by['beats'] else 'no kind'}",
        f"does not beat it (significantly below) on {'; '.join(by['below']) if by['below'] else 'no kind'}",
        f"cannot be told apart from it on {', '.join(by['tied']) if by['tied'] else 'no kind'}",
    ]
    if by["reference"]:
        parts.append(f"is itself the {what} on {', '.join(by['reference'])}")
    if by["none"]:
        parts.append(f"has no paired comparison on {', '.join(by['none'])}")
    overall = "beats" if by["beats"] and not by["below"] else "below" if by["below"] else "tied"
    return {
        "method": n,
        "family": fam,
        "outcome": overall if by["beats"] or by["below"] or by["tied"] else "none",
        "kinds": outcomes,
        "sentence": f"{n}, {fam} (each kind against its own {what}; paired bootstrap over patients): "
        + "; ".join(parts)
        + ".",
    }


def _dice_sentence(n, key, e, methods, alpha) -> dict[str, Any]:
    level, subset = key.split(" ", 1)
    rule = e.get("rule", DEFAULT_RULE)
    fam = f"median Dice, {level.upper()} {'haemorrhage' if subset == 'haemorrhage' else 'all lesions'} ({_rule_label(rule, methods.get(n))})"
    rec = {"method": n, "family": fam}
    early = _unpaired_sentence(
        rec,
        e,
        _dice_fig(methods, n, rule, subset),
        f"{n} cannot be compared with {_ref_words(e)} on {fam}: scored on other test items.",
    )
    if early:
        return early
    c = e["vs"][n]
    o = _dice_outcome(c, alpha)
    ref = e["reference"]
    figs = (
        f"{_dice_fig(methods, n, rule, subset)} vs {_dice_fig(methods, ref, rule, subset)}, "
        if methods
        else ""
    )
    return {
        **rec,
        "outcome": o,
        "sentence": f"{n} {FLOOR_OUTCOMES[o]} {_ref_words(e)} on {fam}: {figs}median paired difference "
        f"{_signed(c.get('median_difference'))}"
        + (f" (mean {_signed(c.get('mean_difference'))})" if not c.get("median_difference") else "")
        + f", {_p(c.get('p_value'))} (paired Wilcoxon, n = {c.get('n')}).",
    }


def floor_markdown(statements: Sequence[Mapping[str, Any]], alpha: float = FLOOR_ALPHA) -> str:
    """The statements of :func:`floor_statements` as a Markdown list, one block per method, with the rule."""
    if not statements:
        return "No paired comparison: the run holds fewer than two methods with test scores."
    lines = [
        f"Each method against the floor (the best baseline, else the best method), decided by the paired "
        f"test at α = {alpha:g}: scan AUROC by the 95 % paired-bootstrap interval of the difference (clear of "
        "0) and its p-value, Dice by the paired Wilcoxon p-value and the sign of the median difference. "
        "“Cannot be told apart” means this test set cannot show a difference, not that there is none.",
        "",
    ]
    cur = None
    for s in statements:
        if s["method"] != cur:
            cur = s["method"]
            lines += ["", f"**{cur}**", ""]
        lines.append(f"- {s['sentence']}")
    return "\n".join(lines).replace("\n\n\n", "\n\n")


def _head_rows(meths: Mapping[str, Any], names: Sequence[str]) -> list[list[str]]:
    """Extra rows of the map-score table: the kinds outside the brain, full-head methods in their head mask."""
    kinds = sorted({k for n in names for k in ((meths[n].get("head_mask") or {}).get("kinds") or {})})
    rows = []
    for k in kinds:
        r = [f"{k} ({HEAD_MASK_LABEL})"]
        for n in names:
            e = (((meths[n].get("head_mask") or {}).get("kinds") or {}).get(k) or {}).get("scan_auroc_map")
            r.append(_ci(e.get("estimate"), e) if e else "–")
        rows.append(r)
    return rows


def _head_mask_table(meths: Mapping[str, Any], names: Sequence[str]) -> str:
    """The head-mask figures of full-head methods (``metrics["head_mask"]``), or ``""`` when none."""
    rows = []
    for n in names:
        hm = meths[n].get("head_mask") or {}
        for k, e in (hm.get("kinds") or {}).items():
            ci = e.get("ci") or {}
            sa = e.get("scan_auroc_map") or {}
            rows.append(
                [
                    n,
                    k,
                    _fmt(e.get("lesion_in_brain_mask"), 2),
                    f"{e.get('n_scans', '–')}",
                    _ci(sa.get("estimate"), sa),
                    _ci(e.get("pixel_auroc"), ci.get("pixel_auroc")),
                    _ci(e.get("pixel_auprc"), ci.get("pixel_auprc")),
                ]
            )
    if not rows:
        return ""
    return (
        _md(
            [
                "Method",
                "kind",
                "share of its lesion voxels in the brain mask",
                "lesioned scans",
                "scan AUROC, map score (head mask) [95 % CI]",
                "pixel AUROC (head mask)",
                "pixel AUPRC (head mask)",
            ],
            rows,
        )
        + f"\n\n{', '.join(OUTSIDE_BRAIN_KINDS)}, {HEAD_MASK_LABEL} (HU > −500 on the input, largest component, "
        "holes filled): a full-head model also models what lies outside the brain, which no brain mask can "
        "score. Every other figure of the report is inside the brain (evaluation) mask."
    )


def markdown_tables(report: Mapping[str, Any]) -> dict[str, str]:
    """The report's tables as Markdown, keyed by file stem (``table3_seed000`` …)."""
    meths = report["methods"]
    # the simple baselines (the floor) first, then the methods, each group in the report's order
    names = [n for n in meths if meths[n].get("baseline")] + [
        n for n in meths if not meths[n].get("baseline")
    ]
    t: dict[str, str] = {}
    # seed 000 Table 3: mean ± SD Dice per test set (rows) and method (columns), one row per threshold rule
    rows = []
    for label, subset in (("Haemorrhage", "haemorrhage"), ("All lesions (haemorrhage, tumour, …)", "all")):
        for rule in ("healthy_fpr", "val_lesion_mean", "test_oracle"):
            r = [label, _rule_label(rule, meths[names[0]] if names else None)]
            for n in names:
                d = ((meths[n].get("dice_by_rule") or {}).get(rule) or {}).get(subset)
                if rule == "val_lesion_mean" and d is None:
                    d = meths[n].get(f"dice_{subset}")
                r.append(
                    _dice_cell(d)
                    if rule != "test_oracle" or not d
                    else f"mean {_fmt(d.get('mean'), 2)} (pooled {_fmt(d.get('pooled'), 2)})"
                )
            rows.append(r)
    t["table3_seed000_dice"] = (
        _md(["Test set", "Dice rule", *names], rows)
        + "\n\nMedian with its 95 % interval (patients resampled). The test oracle is an upper bound, not a result."
    )
    # seed 002 Table 1: scan AUROC per pathology
    kinds = sorted({k for n in names for k in (meths[n].get("scan_auroc_by_kind") or {})})

    def kind_rows(key: str, total: str) -> list[list[str]]:
        out = [
            [
                k,
                *[
                    _ci((meths[n].get(key) or {}).get(k), ((meths[n].get("ci") or {}).get(key) or {}).get(k))
                    for n in names
                ],
            ]
            for k in kinds
        ]
        out.append(
            ["TOTAL", *[_ci(meths[n].get(total), (meths[n].get("ci") or {}).get(total)) for n in names]]
        )
        return out

    t["table1_seed002_auroc_by_kind"] = _md(
        ["Pathology (scan AUROC [95 % CI])", *names], kind_rows("scan_auroc_by_kind", "scan_auroc")
    )
    # the same with every method scored by its map (top 1 % inside the mask)
    if any(meths[n].get("scan_auroc_map_by_kind") for n in names):
        t["table1_auroc_by_kind_map_score"] = _md(
            ["Pathology (scan AUROC, map score [95 % CI])", *names],
            kind_rows("scan_auroc_map_by_kind", "scan_auroc_map") + _head_rows(meths, names),
        )
    head = _head_mask_table(meths, names)
    if head:
        t["head_mask"] = head
    # seed 004 Tables 2-3
    rows = [
        [
            n,
            _fmt(meths[n].get("slice_auroc")),
            _fmt(meths[n].get("slice_auprc")),
            _fmt(meths[n].get("slice_sensitivity")),
            _fmt(meths[n].get("slice_sensitivity_val_youden")),
            _fmt(meths[n].get("dice_seed004")),
        ]
        for n in names
    ]
    t["table3_seed004"] = (
        _md(
            [
                "Method",
                "AUC (slice)",
                "AUPRC (slice)",
                "Sensitivity (healthy val. slices)",
                "Sensitivity (val Youden, labelled)",
                "[DICE]",
                "Dice rule",
            ],
            [[*r, _rule_label("val_lesion_pooled")] for r in rows],
        )
        + "\n\nSlice score: 2D methods, the item's own score; 3D methods, 1 − s(u) (Luo's normality score)."
    )
    # overview
    items = {"2d": "slices", "3d": "volumes"}
    rows = []
    for n in names:
        m = meths[n]
        ci = m.get("ci") or {}
        dr = (m.get("dice_by_rule") or {}).get(DEFAULT_RULE) or {}
        da, dh = dr.get("all") or {}, dr.get("haemorrhage") or {}
        rows.append(
            [
                f"{n} {BASELINE_MARK}" if m.get("baseline") else n,
                items.get(m["level"], m["level"]),
                str(m.get("model_dims", "")).upper(),
                _ci(m.get("pixel_auroc"), ci.get("pixel_auroc")),
                _ci(m.get("pixel_auprc"), ci.get("pixel_auprc")),
                _fmt(da.get("mean")),
                _ci(
                    da.get("median"),
                    dict(zip(("low", "high"), da["median_ci"])) if da.get("median_ci") else None,
                ),
                _ci(m.get("pixel_auroc_haemorrhage"), ci.get("pixel_auroc_haemorrhage")),
                _ci(
                    dh.get("median"),
                    dict(zip(("low", "high"), dh["median_ci"])) if dh.get("median_ci") else None,
                ),
                _rule_label(DEFAULT_RULE, m),
                _ci(m.get("scan_auroc"), ci.get("scan_auroc")),
                _ci(m.get("scan_auroc_map"), ci.get("scan_auroc_map")),
                _ci(m.get("scan_auroc_map_haemorrhage"), ci.get("scan_auroc_map_haemorrhage")),
                _fmt(m.get("seconds_per_scan"), 2),
            ]
        )
    t["summary"] = (
        _md(
            [
                "Method",
                "items",
                "model",
                "pixel AUROC",
                "pixel AUPRC",
                "Dice mean",
                "Dice median",
                "pixel AUROC (haem.)",
                "Dice median (haem.)",
                "Dice rule",
                "scan AUROC",
                "scan AUROC (map score)",
                "scan AUROC haem. (positive map score)",
                "s / scan",
            ],
            rows,
        )
        + "\n\n[95 % CI]: percentile bootstrap resampling patients; pixel metrics inside the evaluation mask."
        + " Map score: mean of the top 1 % of the map inside the mask; positive map score: the same of"
        + " max(x − x̂, 0), haemorrhage test scans against healthy ones (– : the method has no positive residual)."
        + (
            f"\n\n{BASELINE_MARK} simple baseline (the floor; listed first): the intensity rule, the voxel-wise "
            "normative model, the coarse-noise denoising autoencoder."
            if any(meths[n].get("baseline") for n in names)
            else ""
        )
    )
    rows = []
    for n in names:
        for label, st in (meths[n].get("recon_error") or {}).items():
            if label == "unavailable":  # say so: a table row never disappears silently
                rows.append([n, f"– ({st})", "–", "–", "–"])
                continue
            rows.append(
                [
                    n,
                    label,
                    _fmt(st.get("rmse")),
                    f"{_fmt(st.get('mean_abs'))} ± {_fmt(st.get('sd_abs'))}",
                    _fmt(st.get("p90_abs")),
                ]
            )
    if rows:
        t["recon_error_seed000"] = _md(
            ["Method", "test items", "RMSE", "mean ± SD abs. difference", "90th pct abs. difference"], rows
        )
    if report.get("wilcoxon"):
        rows = [
            [k, _rule_label(v.get("rule", "val_lesion_mean")), _fmt(v.get("p_value"), 4), str(v.get("n"))]
            for k, v in report["wilcoxon"].items()
        ]
        t["wilcoxon_dice"] = _md(["Pair", "Dice rule", "p (Wilcoxon, paired)", "n"], rows)
    t.update(_uncertainty_tables(report, names))
    if report.get("comparisons"):
        t["floor"] = floor_markdown(floor_statements(report["comparisons"], meths))
    fid = report.get("fid") or {}
    if fid.get("healthy"):
        rows = [
            [w, str(fid[w].get("n_real")), _fmt(fid[w].get("fid"), 2), _fmt(fid[w].get("fid_inf"), 2)]
            for w in ("healthy", "lesioned")
            if fid.get(w)
        ]
        t["fid"] = (
            _md(["Generated vs real", "n real", "FID", "FID∞ (unbiased)"], rows)
            + f"\n\nFeature extractor: {fid.get('extractor')}; {fid.get('n_generated')} generated images."
        )
    return t


def build_report(
    run_dir: str | os.PathLike,
    profile: str = "quick",
    seed: int = 0,
    device: str = "cpu",
    methods: Sequence[str] | None = None,
    fid: Mapping[str, Any] | None = None,
    turing: Mapping[str, Any] | None = None,
    min_lesion_dice: float = 0.1,
    fpr: float = 0.01,
    scan_fpr: float = 0.05,
    n_boot: int = 1000,
    workers: int | None = None,
    reuse: bool = True,
) -> tuple[dict[str, Any], dict[str, MethodEvaluation]]:
    """Evaluate every method found under ``run_dir`` and write ``report/metrics.json`` and the tables.

    Each method is scored by :func:`~ctad_core.evaluation.evaluator.evaluate` with its defaults (the
    threshold grid :data:`~ctad_core.evaluation.thresholds.DICE_GRID`), the very call notebooks 04 and 05
    make for their previews.

    Args:
        run_dir: the run.
        profile: the profile name recorded in the report.
        seed: recorded in the report.
        device: recorded in the report (a description of where the chain ran).
        methods: restrict to these method names (default all found).
        fid: the output of :func:`compute_fid`, or None.
        turing: the Turing-test scores (``turing/scores.json``), or None to read them if present.
        min_lesion_dice: lesion detection criterion.
        fpr: the default Dice rule's fraction of healthy validation voxels flagged (see ``evaluate``).
        scan_fpr: the default scan operating point's fraction of healthy validation scans flagged.
        n_boot: bootstrap resamples of every interval and paired comparison (seeded by ``seed``; patients
            from ``data/manifest.csv``'s ``patient_id`` where present, else each scan its own patient).
        workers: processes the methods are evaluated in (:func:`evaluate_files`; None: as many as the cores,
            the methods and the available memory allow). Every figure is the same for any number.
        reuse: read the evaluations notebooks 04 and 05 saved when the results, the arguments
            (:func:`evaluation_kwargs`) and the code are unchanged, and save new ones (:mod:`.store`);
            False evaluates every method again and saves nothing.

    Returns:
        ``(report, evaluations)``: the JSON dict written and the per-method :class:`MethodEvaluation`.

    Raises:
        FileNotFoundError: if no method results exist under ``run_dir`` or a requested method is missing.
    """
    run_dir = Path(run_dir)
    found = find_method_results(run_dir)
    if methods:
        missing = sorted(set(methods) - set(found))
        if missing:
            raise FileNotFoundError(
                f"methods {missing} not found under {run_dir}/*/methods/ (found {sorted(found)})"
            )
        found = {k: v for k, v in found.items() if k in methods}
    if not found:
        raise FileNotFoundError(f"no method results under {run_dir}/*/methods/: run notebooks 04/05 first")
    kw = evaluation_kwargs(run_dir, seed, fpr, scan_fpr, n_boot, min_lesion_dice)
    patients = kw["patients"]
    evals = evaluate_files(found, kw, workers, store=reuse)
    if turing is None and (run_dir / "turing" / "scores.json").is_file():
        turing = read_json(run_dir / "turing" / "scores.json")
    report = {
        "profile": profile,
        "device": device,
        "seed": int(seed),
        "rules": {
            "thresholds": "chosen on validation, the method's declared segmentation applied; the rule of each "
            f"Dice is its 'rule' field (flat keys: 'rule_of'); lesion-label rules search {DICE_GRID} evenly "
            "spaced values",
            "threshold_rules": dict(THRESHOLD_RULES),
            "default_threshold_rule": DEFAULT_RULE,
            "healthy_fpr": fpr,
            "scan_rules": dict(SCAN_RULES),
            "scan_fpr": scan_fpr,
            "intervals": f"95 % percentile bootstrap, {n_boot} resamples of patients (seed {seed}); pixel "
            "metrics binned, inside the evaluation mask",
            "patients": "data/manifest.csv patient_id" if patients else "each scan its own patient",
            "comparisons": "each method against the best simple baseline (else the best method): paired "
            "bootstrap of scan AUROC differences, Wilcoxon signed-rank of per-item Dice (default rule)",
            "scan_aggregate_2d": SCAN_AGGREGATE,
            "dice_items": "test items with a lesion",
            "dice_sd": "sample SD (ddof=1)",
            "slice_score_3d": "1 - s(u), Luo's normality score",
            "pixel_mask": "evaluation mask of each item (the brain mask); full-head methods also score the "
            f"kinds outside the brain ({', '.join(OUTSIDE_BRAIN_KINDS)}) inside their head mask: "
            "methods.<name>.head_mask",
            "haemorrhage_kinds": list(HAEMORRHAGE_KINDS),
        },
        "methods": {n: e.metrics for n, e in evals.items()},
        "wilcoxon": {
            **compare_dice(evals, "all"),
            **{f"{k} (haemorrhage)": v for k, v in compare_dice(evals, "haemorrhage").items()},
        },
        "comparisons": compare_to_reference(evals, n_boot=n_boot, seed=seed),
        "turing": dict(turing) if turing else {},
        "fid": dict(fid) if fid else {},
    }
    report = _nan_to_none(report)
    out = run_dir / "report"
    write_json(out / "metrics.json", report)
    for stem, text in markdown_tables(report).items():
        (out / f"{stem}.md").write_text(text + "\n")
    return report, evals


#: bytes of memory one evaluation process needs per element of its method's arrays (measured on ``quick``'s
#: ``resae``, 0.33 G elements of float32 maps and uint8 masks: 3.0 GB peak resident, 9 bytes per element)
EVAL_BYTES_PER_ELEMENT = 10.0


def evaluation_workers(paths: Sequence[str | os.PathLike], workers: int | None = None) -> int:
    """How many processes :func:`evaluate_files` uses for these results files.

    Args:
        paths: the methods' ``.npz`` results files.
        workers: the number asked for (at most one per file), or None: as many as the cores
            (:func:`ctad_core.parallel.available_cores`: affinity and a container's quota), the files and
            the available memory (:data:`EVAL_BYTES_PER_ELEMENT` per element of the largest file) allow,
            at most 8.

    Raises:
        ValueError: ``workers`` below 1.
    """
    if workers is not None:
        if int(workers) < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        return max(1, min(int(workers), len(paths)))
    import psutil

    from ctad_core.parallel import MAX_WORKERS, available_cores
    from ctad_core.results import result_shapes

    if len(paths) <= 1:
        return 1
    elements = max(sum(math.prod(s) for s in result_shapes(p).values()) for p in paths)
    fit = int(psutil.virtual_memory().available // max(1.0, elements * EVAL_BYTES_PER_ELEMENT))
    return max(1, min(available_cores(), len(paths), MAX_WORKERS, fit))


def _evaluate_one(path: str, kw: Mapping[str, Any], store: bool) -> MethodEvaluation:
    import warnings

    from ctad_core.evaluation import store as S

    keep = bool(kw.get("keep_segmentations", True))
    key = S.evaluation_key(path, kw) if store else None  # of the file as it is read below
    ev = evaluate(load_method_results(path), **{**kw, "keep_segmentations": keep or store})
    if store:  # saved whole (segmentations included): the report's figures need them
        try:
            S.save_evaluation(ev, path, kw, key)
        except (OSError, TypeError, ValueError) as e:  # e.g. a read-only run: the figures stand, reuse is lost
            warnings.warn(f"{path}: evaluation not saved for reuse ({type(e).__name__}: {e})", stacklevel=2)
    if not keep:
        ev.segmentation_test = {}
    return ev


def evaluate_files(
    paths: Mapping[str, str | os.PathLike],
    kwargs: Mapping[str, Any] | None = None,
    workers: int | None = None,
    store: bool = True,
) -> dict[str, MethodEvaluation]:
    """:func:`~ctad_core.evaluation.evaluator.evaluate` each method's results file, in ``workers`` processes,
    reusing saved evaluations that are still valid.

    Each evaluation is independent and deterministic (its bootstrap seeded), so the figures do not depend on
    ``workers``. With ``store``, each evaluation is saved beside its results (:mod:`.store`) and read back
    instead of computed while the results file, ``kwargs`` and the package's code are unchanged: notebook 07
    then reports what notebooks 04 and 05 evaluated with the same arguments (:func:`evaluation_kwargs`).

    Args:
        paths: method name → its ``.npz`` results file.
        kwargs: keyword arguments of ``evaluate``.
        workers: see :func:`evaluation_workers`; 1 evaluates in this process.
        store: read valid saved evaluations and save new ones (False: evaluate everything, save nothing).

    Returns:
        method name → :class:`MethodEvaluation`, in the order of ``paths``.

    A worker that dies (e.g. killed for memory) costs time, not the figures: with a warning, every method not
    yet saved is evaluated again, one at a time in one worker process (so that this process survives a
    second death: then BrokenProcessPool is raised).

    Raises:
        concurrent.futures.process.BrokenProcessPool: the single worker died too.
    """
    from concurrent.futures.process import BrokenProcessPool

    from ctad_core.parallel import run_jobs

    kw = dict(kwargs or {})
    done: dict[str, MethodEvaluation] = {}
    if store:
        for name, p in paths.items():
            ev = _saved_evaluation(str(p), kw)
            if ev is not None:
                done[name] = ev
    todo = {name: str(p) for name, p in paths.items() if name not in done}
    n = evaluation_workers(list(todo.values()), workers) if todo else 1
    jobs = [(p, kw, store) for p in todo.values()]
    try:
        evs = run_jobs(_evaluate_one, jobs, n, 1, "evaluations", None, progress=False)
    except BrokenProcessPool as e:  # a worker died (killed for memory?): again, one method at a time
        import warnings

        warnings.warn(f"an evaluation worker died ({e}); evaluating again one method at a time, in one worker "
                      "process", RuntimeWarning, stacklevel=2)
        evs = run_jobs(_reload_or_evaluate, jobs, 1, 1, "evaluations", None, progress=False, isolate=True)
    done.update(zip(todo, evs, strict=True))
    return {name: done[name] for name in paths}


def _saved_evaluation(path: str, kw: Mapping[str, Any]) -> MethodEvaluation | None:
    """The valid saved evaluation of ``path`` with ``kw`` (without test segmentations unless kept), or None."""
    from ctad_core.evaluation import store as S

    ev = S.load_evaluation(path, kw)
    if ev is not None and not kw.get("keep_segmentations", True):
        ev.segmentation_test = {}
    return ev


def _reload_or_evaluate(path: str, kw: Mapping[str, Any], store: bool) -> MethodEvaluation:
    """What a worker saved before the pool broke, else evaluated now."""
    ev = _saved_evaluation(path, kw) if store else None
    return ev if ev is not None else _evaluate_one(path, kw, store)


def evaluation_kwargs(
    run_dir: str | os.PathLike,
    seed: int = 0,
    fpr: float = 0.01,
    scan_fpr: float = 0.05,
    n_boot: int = 1000,
    min_lesion_dice: float = 0.1,
) -> dict[str, Any]:
    """The arguments of :func:`~ctad_core.evaluation.evaluator.evaluate` the report uses for a run (the
    run's patient map, the thresholds' targets, the seeded bootstrap), which notebooks 04 and 05 pass too so
    that notebook 07 reuses their evaluations (:func:`evaluate_files`)."""
    return {"fpr": fpr, "scan_fpr": scan_fpr, "n_boot": n_boot, "seed": int(seed),
            "patients": read_patients(run_dir), "min_lesion_dice": min_lesion_dice}


def read_patients(run_dir: str | os.PathLike) -> dict[str, str]:
    """scan id → patient id from ``run_dir/data/manifest.csv`` (empty when the file or column is absent)."""
    import csv

    path = Path(run_dir) / "data" / "manifest.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "patient_id" not in rows[0] or "scan_id" not in rows[0]:
        return {}
    return {r["scan_id"]: r["patient_id"] or r["scan_id"] for r in rows}


def compute_fid(
    run_dir: str | os.PathLike,
    n_generated: int = 200,
    seed: int = 0,
    extractor: Any | None = None,
    inception_weights: str = "",
    split: str = "test",
    num_points: int = 10,
    device: str = "cpu",
) -> dict[str, Any]:
    """FID and unbiased FID∞ of generated images against real healthy and real lesioned slices (seed 000).

    Args:
        run_dir: the run (needs ``gan/member_0`` and ``data/slices.npz``).
        n_generated: generator samples.
        seed: sampling seed (z and FID∞ subsets).
        extractor: a :class:`ctad_core.nn.features.FeatureExtractor`, or None for :func:`default_extractor`.
        inception_weights: local Inception-v3 weights (used when ``extractor`` is None).
        split: which real slices (seed 000 compares with its real test images).
        num_points: FID∞ subset sizes.
        device: where networks run.

    Returns:
        ``{"extractor", "n_generated", "healthy": {"n_real", "fid", "fid_inf"}, "lesioned": {…}}``.
    """
    from ctad_core.methods.fastgan.sampling import default_extractor, generated_images, real_images

    gen = generated_images(run_dir, n_generated, seed=seed, device=device)
    ex = extractor if extractor is not None else default_extractor(run_dir, inception_weights, seed, device)
    from ctad_core.nn.features import extract_features

    f_gen = extract_features(ex, gen)
    out: dict[str, Any] = {"extractor": ex.name, "n_generated": int(len(gen)), "split": split}
    for which in ("healthy", "lesioned"):
        real = real_images(run_dir, split, which, size=gen.shape[-1])
        if len(real) < 2:
            out[which] = {"n_real": int(len(real)), "fid": None, "fid_inf": None}
            continue
        f_real = extract_features(ex, real)
        fi = M.fid_infinity(f_gen, f_real, num_points=num_points, seed=seed)
        out[which] = {
            "n_real": int(len(real)),
            "fid": M.fid(f_gen, f_real),
            "fid_inf": fi["fid_inf"],
            "fid_inf_fit": {"ns": fi["ns"], "fids": fi["fids"], "slope": fi["slope"]},
        }
    return out
