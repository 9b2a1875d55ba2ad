"""The report of notebook 07: every method evaluated by :func:`~ctad_core.evaluation.evaluator.evaluate`,
``report/metrics.json`` (the regression surface), Markdown tables and FID.

``run_dir/report/`` holds ``metrics.json``, one ``<table>.md`` per table and the figures that notebook 07
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
from ctad_core.evaluation.evaluator import SCAN_AGGREGATE, MethodEvaluation, compare_dice, evaluate
from ctad_core.evaluation.thresholds import DICE_GRID
from ctad_core.kinds import HAEMORRHAGE_KINDS
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


def markdown_tables(report: Mapping[str, Any]) -> dict[str, str]:
    """The report's tables as Markdown, keyed by file stem (``table3_seed000`` …)."""
    meths = report["methods"]
    names = list(meths)
    t: dict[str, str] = {}
    # seed 000 Table 3: mean ± SD Dice per test set (rows) and method (columns)
    rows = []
    for label, key in (
        ("Haemorrhage", "dice_haemorrhage"),
        ("All lesions (haemorrhage, tumour, …)", "dice_all"),
    ):
        r = [label]
        for n in names:
            d = meths[n].get(key) or {}
            r.append(
                f"{_fmt(d.get('mean'), 2)} ± {_fmt(d.get('sd'), 2)} (median {_fmt(d.get('median'), 2)}, n={d.get('n', 0)})"
                if d.get("mean") is not None
                else "–"
            )
        rows.append(r)
    t["table3_seed000_dice"] = _md(["Test set", *names], rows)
    # seed 002 Table 1: scan AUROC per pathology
    kinds = sorted({k for n in names for k in (meths[n].get("scan_auroc_by_kind") or {})})
    rows = [[k, *[_fmt((meths[n].get("scan_auroc_by_kind") or {}).get(k)) for n in names]] for k in kinds]
    rows.append(["TOTAL", *[_fmt(meths[n].get("scan_auroc")) for n in names]])
    t["table1_seed002_auroc_by_kind"] = _md(["Pathology (scan AUROC)", *names], rows)
    # the same with every method scored by its map (top 1 % inside the mask)
    if any(meths[n].get("scan_auroc_map_by_kind") for n in names):
        rows = [
            [k, *[_fmt((meths[n].get("scan_auroc_map_by_kind") or {}).get(k)) for n in names]] for k in kinds
        ]
        rows.append(["TOTAL", *[_fmt(meths[n].get("scan_auroc_map")) for n in names]])
        t["table1_auroc_by_kind_map_score"] = _md(["Pathology (scan AUROC, map score)", *names], rows)
    # seed 004 Tables 2-3
    rows = [
        [
            n,
            _fmt(meths[n].get("slice_auroc")),
            _fmt(meths[n].get("slice_auprc")),
            _fmt(meths[n].get("slice_sensitivity")),
            _fmt(meths[n].get("dice_seed004")),
        ]
        for n in names
    ]
    t["table3_seed004"] = (
        _md(["Method", "AUC (slice)", "AUPRC (slice)", "Sensitivity (val Youden)", "[DICE]"], rows)
        + "\n\nSlice score: 2D methods, the item's own score; 3D methods, 1 − s(u) (Luo's normality score)."
    )
    # overview
    items = {"2d": "slices", "3d": "volumes"}
    rows = [
        [
            n,
            items.get(meths[n]["level"], meths[n]["level"]),
            str(meths[n].get("model_dims", "")).upper(),
            _fmt(meths[n].get("pixel_auroc")),
            _fmt(meths[n].get("pixel_auprc")),
            _fmt(meths[n].get("dice_mean")),
            _fmt(meths[n].get("dice_median")),
            _fmt(meths[n].get("pixel_auroc_haemorrhage")),
            _fmt((meths[n].get("dice_haemorrhage") or {}).get("median")),
            _fmt(meths[n].get("scan_auroc")),
            _fmt(meths[n].get("scan_auroc_map")),
            _fmt(meths[n].get("seconds_per_scan"), 2),
        ]
        for n in names
    ]
    t["summary"] = _md(
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
            "scan AUROC",
            "scan AUROC (map score)",
            "s / scan",
        ],
        rows,
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
        rows = [[k, _fmt(v.get("p_value"), 4), str(v.get("n"))] for k, v in report["wilcoxon"].items()]
        t["wilcoxon_dice"] = _md(["Pair", "p (Wilcoxon, paired)", "n"], rows)
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
    evals = {
        name: evaluate(load_method_results(p), min_lesion_dice=min_lesion_dice) for name, p in found.items()
    }
    if turing is None and (run_dir / "turing" / "scores.json").is_file():
        turing = read_json(run_dir / "turing" / "scores.json")
    report = {
        "profile": profile,
        "device": device,
        "seed": int(seed),
        "rules": {
            "thresholds": "chosen on validation (best mean Dice; [DICE]: best pooled Dice) over "
            f"{DICE_GRID} evenly spaced values, the method's declared segmentation applied",
            "scan_aggregate_2d": SCAN_AGGREGATE,
            "dice_items": "test items with a lesion",
            "dice_sd": "sample SD (ddof=1)",
            "slice_score_3d": "1 - s(u), Luo's normality score",
            "pixel_mask": "evaluation mask of each item",
            "haemorrhage_kinds": list(HAEMORRHAGE_KINDS),
        },
        "methods": {n: e.metrics for n, e in evals.items()},
        "wilcoxon": {
            **compare_dice(evals, "all"),
            **{f"{k} (haemorrhage)": v for k, v in compare_dice(evals, "haemorrhage").items()},
        },
        "turing": dict(turing) if turing else {},
        "fid": dict(fid) if fid else {},
    }
    report = _nan_to_none(report)
    out = run_dir / "report"
    write_json(out / "metrics.json", report)
    for stem, text in markdown_tables(report).items():
        (out / f"{stem}.md").write_text(text + "\n")
    return report, evals


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
