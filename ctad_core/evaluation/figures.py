"""Figures and the interactive viewer of the evaluation report (notebook 07).

Every function takes what :func:`ctad_core.evaluation.report.build_report` returns and gives back a matplotlib
``Figure`` (the notebook shows it and saves it as PNG) or an ipywidgets viewer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ctad_core.evaluation import metrics as M
from ctad_core.evaluation.evaluator import MethodEvaluation
from ctad_core.evaluation.segmentation import segment
from ctad_core.results import MethodResults


def save(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a figure as PNG (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def roc_figure(evals: Mapping[str, MethodEvaluation]) -> Figure:
    """Pixel-level (seed 000 Fig. 7) and scan-level ROC curves of every method on the test set."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for name, ev in evals.items():
        if ev.roc_pixel is not None:
            auc = ev.metrics.get("pixel_auroc")
            axes[0].plot(*ev.roc_pixel, label=f"{name} (AUROC {auc:.3f})" if auc is not None else name)
        if (
            ev.roc_scan is not None
            and np.isfinite(ev.roc_scan[1]).all()
            and np.isfinite(ev.roc_scan[0]).all()
        ):
            auc = ev.metrics.get("scan_auroc")
            axes[1].step(
                *ev.roc_scan, where="post", label=f"{name} (AUROC {auc:.3f})" if auc is not None else name
            )
    for ax, title in zip(
        axes, ("pixel level (test, inside brain mask)", "scan level (test; 2D: max over slices)")
    ):
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(
            xlabel="false positive rate",
            ylabel="true positive rate",
            title=title,
            xlim=(0, 1),
            ylim=(0, 1.01),
        )
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def dice_boxplot(evals: Mapping[str, MethodEvaluation]) -> Figure:
    """Per-item test Dice at the validation threshold: haemorrhage subset and all lesions (seed 000)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, subset in zip(axes, ("haemorrhage", "all")):
        names = [n for n, e in evals.items() if subset in e.dice_test]
        data = [evals[n].dice_test[subset][0] for n in names]
        if data:
            ax.boxplot(data, showmeans=True)
            ax.set_xticks(range(1, len(names) + 1), names, rotation=20, ha="right", fontsize=8)
        ax.set(title=f"test Dice — {subset}", ylim=(0, 1))
    axes[0].set_ylabel("Dice per item")
    fig.tight_layout()
    return fig


def dice_threshold_figure(evals: Mapping[str, MethodEvaluation], subset: str = "haemorrhage") -> Figure:
    """Dice vs threshold on the validation set (seed 000 Fig. 6): median and IQR over items, chosen t."""
    names = [n for n, e in evals.items() if subset in e.sweeps] or [
        n for n, e in evals.items() if "all" in e.sweeps
    ]
    if not any(subset in evals[n].sweeps for n in names):
        subset = "all"
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.2 * max(1, len(names)), 3.6), squeeze=False)
    for ax, n in zip(axes[0], names):
        sw = evals[n].sweeps[subset]
        if sw.per_item is not None and sw.per_item.size:
            q1, med, q3 = np.nanpercentile(sw.per_item, [25, 50, 75], axis=0)
            ax.fill_between(sw.thresholds, q1, q3, alpha=0.3, label="IQR")
            ax.plot(sw.thresholds, med, label="median")
        ax.plot(sw.thresholds, sw.dice, "--", label=sw.reduce)
        ax.axvline(sw.best_threshold, color="k", lw=0.8, label=f"chosen t = {sw.best_threshold:.3g}")
        ax.set(title=f"{n} (validation, {subset})", xlabel="anomaly threshold t", ylabel="Dice", ylim=(0, 1))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def timing_figure(report: Mapping[str, Any]) -> Figure:
    """Seconds per scan of each method (encoder vs iterative restoration, 3D models), log scale."""
    names = [n for n, m in report["methods"].items() if m.get("seconds_per_scan")]
    vals = [report["methods"][n]["seconds_per_scan"] for n in names]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * max(1, len(names))))
    ax.barh(names, vals)
    if vals and max(vals) / max(min(vals), 1e-9) > 20:
        ax.set_xscale("log")
    ax.set(xlabel=f"seconds per scan ({report.get('device', '')})", title="inference time")
    fig.tight_layout()
    return fig


def _view(a: np.ndarray, k: int | None) -> np.ndarray:
    """A 2D view of one item: itself (2D) or its axial slice ``k`` (3D; the middle one when None)."""
    if a.ndim == 2:
        return a
    return a[a.shape[0] // 2 if k is None else k]


def _lesion_slice(lesion: np.ndarray) -> int | None:
    """The axial slice of a 3D item with the most lesion voxels (None for 2D items)."""
    if lesion.ndim == 2:
        return None
    return int(np.argmax(lesion.reshape(lesion.shape[0], -1).sum(1)))


def qualitative_panel(
    results: Mapping[str, MethodResults],
    evals: Mapping[str, MethodEvaluation],
    n_items: int = 3,
    seed: int = 0,
) -> Figure:
    """Test items with a lesion: reconstruction, anomaly map, thresholded mask and reference, per method.

    2D and 3D methods score different items (slices, volumes), so each level gets its own rows: the same
    ``n_items`` lesioned test items for every method of that level; a 3D item is shown at its axial slice
    with the most lesion. 3D methods keep no reconstruction in their results: their first panel stays empty.
    """
    names = [
        n
        for n, r in results.items()
        if r.maps is not None and r.lesion is not None and "all" in evals[n].dice_test
    ]
    if not names:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.text(0.5, 0.5, "no method with anomaly maps", ha="center")
        ax.axis("off")
        return fig
    rng = np.random.default_rng(seed)
    groups = []
    for level in ("2d", "3d"):
        ns = [n for n in names if results[n].level == level]
        ns = [n for n in ns if results[n].maps.shape[0] == results[ns[0]].maps.shape[0]] if ns else ns
        if ns:
            idx_all = evals[ns[0]].dice_test["all"][1]
            groups.append((ns, np.sort(rng.choice(idx_all, min(n_items, idx_all.size), replace=False))))
    cols = 1 + 3 * max(len(ns) for ns, _ in groups)
    rows = sum(len(idx) for _, idx in groups)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.0 * rows), squeeze=False)
    r = 0
    for ns, idx in groups:
        ref = results[ns[0]]
        for i in idx:
            k = _lesion_slice(ref.lesion[i])
            les = _view(ref.lesion[i], k)
            ax = axes[r, 0]
            ax.imshow(_view(ref.recon[i], k) if ref.recon is not None else _view(ref.maps[i], k), cmap="gray")
            ax.contour(les, levels=[0.5], colors="lime", linewidths=0.8)
            ax.set_title(f"{ref.kind[i]} · reference" + ("" if k is None else f" (slice {k})"), fontsize=7)
            for c, n in enumerate(ns):
                res = results[n]
                t = evals[n].metrics.get("dice_threshold", float("nan"))
                m = _view(res.maps[i], k)
                pred = _view(segment(res, t, np.array([i]))[0], k) != 0  # the method's declared step
                a1, a2, a3 = axes[r, 1 + 3 * c : 4 + 3 * c]
                if res.recon is not None:
                    a1.imshow(_view(res.recon[i], k), cmap="gray", vmin=-1, vmax=1)
                a1.set_title(f"{n}\nreconstruction", fontsize=7)
                a2.imshow(m, cmap="inferno")
                a2.set_title("anomaly map", fontsize=7)
                a3.imshow(pred, cmap="gray")
                a3.contour(_view(res.lesion[i], k), levels=[0.5], colors="lime", linewidths=0.8)
                a3.set_title(f"t={t:.3g}, Dice {M.dice(pred, les):.2f}", fontsize=7)
            r += 1
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig


def fid_figure(fid: Mapping[str, Any]) -> Figure:
    """FID_N against 1/N with the linear fit whose intercept is FID∞ (Chong & Forsyth 2020)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for which in ("healthy", "lesioned"):
        d = fid.get(which) or {}
        fit = d.get("fid_inf_fit")
        if not fit:
            continue
        x = 1.0 / np.asarray(fit["ns"], float)
        ax.plot(x, fit["fids"], "o", ms=3, label=f"vs real {which}")
        xx = np.r_[0.0, x]
        ax.plot(xx, d["fid_inf"] + fit["slope"] * xx, "-", lw=0.8)
    ax.set(xlabel="1 / N (generated images)", ylabel="FID_N", title=f"FID∞ — {fid.get('extractor', '')}")
    ax.title.set_fontsize(8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _viewer_panels(axes, r: MethodResults, i: int, z: int, threshold: float, show_prediction: bool) -> float:
    """Draw the report viewer's three panels for item ``i`` (slice ``z`` in 3D); return the item's Dice."""
    maps = r.maps[i]
    les = r.lesion[i] if r.lesion is not None else np.zeros(maps.shape, np.uint8)
    pred = segment(r, threshold, np.array([i]))[0] != 0  # the method's declared segmentation step
    if r.level == "3d":
        m2, l2, p2 = maps[z], les[z], pred[z]
        rec = r.recon[i][z] if r.recon is not None else None
    else:
        m2, l2, p2 = maps, les, pred
        rec = r.recon[i] if r.recon is not None else None
    axes[0].imshow(rec if rec is not None else m2, cmap="gray")
    axes[0].set_title("reconstruction" if rec is not None else "anomaly map")
    axes[1].imshow(m2, cmap="inferno")
    axes[1].set_title("anomaly map")
    axes[2].imshow(rec if rec is not None else m2, cmap="gray")
    if show_prediction:
        axes[2].imshow(np.ma.masked_where(~p2, p2), cmap="autumn", alpha=0.6)
    if l2.any():
        axes[2].contour(l2, levels=[0.5], colors="lime", linewidths=1)
    axes[2].set_title("prediction (orange) vs reference (green)")
    for ax in axes:
        ax.axis("off")
    return float(M.dice(pred, les))


def viewer(
    results: Mapping[str, MethodResults], evals: Mapping[str, MethodEvaluation], split: str = "test"
) -> Any:
    """Interactive viewer: method, item (and slice for 3D) sliders, overlay, threshold slider with live Dice.

    Headless (:func:`ctad_core.frontend.headless`, e.g. under ``ctad run``) it returns a static figure of
    each method's most lesioned test item at its validation threshold instead, so a batch run creates no
    widget.

    Returns:
        An ipywidgets widget (display it as a cell's last expression), or a closed ``Figure`` when headless.
    """
    from ctad_core.frontend import headless

    names = [n for n, r in results.items() if r.maps is not None]

    def sel(name: str) -> np.ndarray:
        return np.flatnonzero(np.asarray(results[name].split).astype(str) == split)

    def threshold_of(name: str, idx: np.ndarray) -> float:
        t = evals[name].metrics.get("dice_threshold")
        lo, hi = float(np.min(results[name].maps[idx])), float(np.max(results[name].maps[idx]))
        return float(np.clip(t if t is not None else (lo + hi) / 2, lo, max(hi, lo + 1e-6)))

    if headless():
        names = [n for n in names if sel(n).size]
        fig, axes = plt.subplots(max(1, len(names)), 3, figsize=(9, 3.0 * max(1, len(names))), squeeze=False)
        plt.close(fig)  # shown once, as the cell's value (see viz.slice_strip)
        for row, name in zip(axes, names):
            r, idx = results[name], sel(name)
            sizes = [(r.lesion[j] > 0).sum() if r.lesion is not None else 0 for j in idx]
            i = int(idx[int(np.argmax(sizes))])
            z = (
                int(np.argmax((r.lesion[i] > 0).reshape(r.lesion[i].shape[0], -1).sum(1)))
                if r.level == "3d" and r.lesion is not None
                else 0
            )
            t = threshold_of(name, idx)
            d = _viewer_panels(row, r, i, z, t, True)
            row[0].set_title(f"{name} · {r.scan_id[i]} ({r.kind[i]})\nDice {d:.3f} at t={t:.4g}", fontsize=8)
        if not names:
            axes[0, 0].text(0.5, 0.5, "no method with anomaly maps", ha="center")
            for ax in axes[0]:
                ax.axis("off")
        fig.tight_layout()
        return fig

    import ipywidgets as W

    if not names:
        return W.HTML("no method with anomaly maps")
    method = W.Dropdown(options=names, description="method")
    item = W.IntSlider(0, 0, 1, description="item")
    depth = W.IntSlider(0, 0, 1, description="slice (3D)")
    thr = W.FloatSlider(
        0.0,
        min=0.0,
        max=1.0,
        step=0.001,
        description="threshold",
        readout_format=".3f",
        continuous_update=False,
    )
    overlay = W.Checkbox(True, description="overlay prediction")
    out = W.Output()
    info = W.HTML()

    def on_method(*_: Any) -> None:
        r = results[method.value]
        idx = sel(method.value)
        item.max = max(0, idx.size - 1)
        item.value = min(item.value, item.max)
        depth.layout.display = "" if r.level == "3d" else "none"
        lo, hi = float(np.min(r.maps[idx])), float(np.max(r.maps[idx]))
        new_min, new_max = lo, max(hi, lo + 1e-6)
        if new_min > thr.max:  # keep min <= max at every step
            thr.max, thr.min = new_max, new_min
        else:
            thr.min, thr.max = new_min, new_max
        thr.step = (thr.max - thr.min) / 500
        thr.value = threshold_of(method.value, idx)
        draw()

    def draw(*_: Any) -> None:
        r = results[method.value]
        i = sel(method.value)[item.value]
        if r.level == "3d":
            depth.max = r.maps[i].shape[0] - 1
        with out:
            out.clear_output(wait=True)
            fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
            d = _viewer_panels(axes, r, i, depth.value, thr.value, overlay.value)
            info.value = (
                f"<b>{r.scan_id[i]}</b> · kind <b>{r.kind[i]}</b> · item Dice at t={thr.value:.4g}: "
                f"<b>{d:.3f}</b> (validation threshold "
                f"{evals[method.value].metrics.get('dice_threshold', float('nan')):.4g})"
            )
            plt.show()

    method.observe(on_method, "value")
    for w in (item, depth, thr, overlay):
        w.observe(draw, "value")
    on_method()
    return W.VBox([W.HBox([method, overlay]), W.HBox([item, depth]), thr, info, out])
