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
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ctad_core.evaluation import metrics as M
from ctad_core.evaluation.evaluator import MethodEvaluation
from ctad_core.evaluation.segmentation import segment
from ctad_core.results import LazyResults, MethodResults, ResultsHeader, header_of
from ctad_core.viz import axial

#: Widest figure meant for a notebook screen, inches: about 1300 px at :func:`save`'s 120 dpi, 1100 px in
#: JupyterLab's inline view (100 dpi).
SCREEN_WIDTH_IN = 11.0
#: Most panels side by side in a grid of per-method panels (:func:`panel_grid`).
MAX_COLUMNS = 4
#: Most image panels side by side in one qualitative figure (:func:`qualitative_figures`).
MAX_IMAGE_COLUMNS = 9
#: Font size of panel titles, points.
TITLE_PT = 10
#: Colour of a predicted segmentation drawn over a scan; its name is the one legends and titles print.
PREDICTION_COLOR = "orange"
#: Colour of the reference lesion outline.
REFERENCE_COLOR = "lime"
#: Opacity of the prediction over the scan.
PREDICTION_ALPHA = 0.65


def panel_grid(n: int, panel_in: tuple[float, float] = (2.75, 2.2), max_cols: int = MAX_COLUMNS):
    """A figure of ``n`` panels wrapped into rows of at most ``max_cols`` (constrained layout).

    Args:
        n: number of panels (0 gives one empty panel).
        panel_in: (width, height) of one panel, inches.
        max_cols: most panels per row.

    Returns:
        ``(fig, axes)``: the figure and its first ``n`` axes, row by row; the grid's spare axes are hidden.
    """
    cols = max(1, min(max_cols, n))
    rows = max(1, -(-n // cols))
    fig, grid = plt.subplots(
        rows,
        cols,
        figsize=(panel_in[0] * cols, panel_in[1] * rows + 0.6),
        squeeze=False,
        layout="constrained",
    )
    flat = list(grid.ravel())
    for ax in flat[max(n, 1) :]:
        ax.set_visible(False)
    return fig, flat[:n] if n else flat[:1]


def save(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a figure as PNG (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def method_style(j: int) -> dict[str, Any]:
    """Line style of the ``j``-th method: the 10 ``tab10`` colours, then the same with dashes, dots, …, so
    that no two of up to 40 methods look alike."""
    return {"color": plt.get_cmap("tab10")(j % 10), "linestyle": ("-", "--", ":", "-.")[(j // 10) % 4]}


def roc_figure(evals: Mapping[str, MethodEvaluation]) -> Figure:
    """Pixel-level (seed 000 Fig. 7) and scan-level ROC curves of every method on the test set.

    Each method keeps one :func:`method_style` in both panels; each panel's legend (with the AUROC) sits
    below it, so that it hides no curve.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2 + 0.12 * len(evals)), layout="constrained")
    for j, (name, ev) in enumerate(evals.items()):
        style = method_style(j)
        if ev.roc_pixel is not None:
            auc = ev.metrics.get("pixel_auroc")
            axes[0].plot(
                *ev.roc_pixel, label=f"{name} (AUROC {auc:.3f})" if auc is not None else name, **style
            )
        if (
            ev.roc_scan is not None
            and np.isfinite(ev.roc_scan[1]).all()
            and np.isfinite(ev.roc_scan[0]).all()
        ):
            auc = ev.metrics.get("scan_auroc")
            axes[1].step(
                *ev.roc_scan,
                where="post",
                label=f"{name} (AUROC {auc:.3f})" if auc is not None else name,
                **style,
            )
    for ax, title in zip(
        axes, ("pixel level (test, inside brain mask)", "scan level (test; 2D: max over slices)")
    ):
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(
            xlabel="false positive rate",
            ylabel="true positive rate",
            xlim=(0, 1),
            ylim=(0, 1.01),
        )
        ax.set_title(title, fontsize=TITLE_PT)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2, frameon=False)
    return fig


def dice_boxplot(evals: Mapping[str, MethodEvaluation]) -> Figure:
    """Per-item test Dice at the validation threshold: haemorrhage subset and all lesions (seed 000)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
    for ax, subset in zip(axes, ("haemorrhage", "all")):
        names = [n for n, e in evals.items() if subset in e.dice_test]
        data = [evals[n].dice_test[subset][0] for n in names]
        if data:
            ax.boxplot(data, showmeans=True)
            ax.set_xticks(
                range(1, len(names) + 1), names, rotation=45, ha="right", rotation_mode="anchor", fontsize=8
            )
        ax.set(title=f"test Dice — {subset}", ylim=(0, 1))
    axes[0].set_ylabel("Dice per item")
    fig.tight_layout()
    return fig


def dice_threshold_figure(evals: Mapping[str, MethodEvaluation], subset: str = "haemorrhage") -> Figure:
    """Dice vs threshold on the validation set (seed 000 Fig. 6): median and IQR over items, chosen t.

    One panel per method in a grid of at most :data:`MAX_COLUMNS` columns (:func:`panel_grid`), one
    legend for all panels below them.
    """
    names = [n for n, e in evals.items() if subset in e.sweeps] or [
        n for n, e in evals.items() if "all" in e.sweeps
    ]
    if not any(subset in evals[n].sweeps for n in names):
        subset = "all"
    fig, axes = panel_grid(len(names), panel_in=(2.75, 2.5))
    for ax, n in zip(axes, names):
        sw = evals[n].sweeps[subset]
        if sw.per_item is not None and sw.per_item.size:
            q1, med, q3 = np.nanpercentile(sw.per_item, [25, 50, 75], axis=0)
            ax.fill_between(sw.thresholds, q1, q3, alpha=0.3, label="IQR over items")
            ax.plot(sw.thresholds, med, label="median")
        ax.plot(sw.thresholds, sw.dice, "--", label=sw.reduce)
        ax.axvline(sw.best_threshold, color="k", lw=0.8, label="chosen t")
        ax.set_title(f"{n}\nt = {sw.best_threshold:.3g}", fontsize=TITLE_PT)
        ax.set(xlabel="anomaly threshold t", ylabel="Dice", ylim=(0, 1))
    if names:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=9)
    fig.suptitle(f"Dice vs threshold on the validation set ({subset})", fontsize=TITLE_PT + 1)
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
    """A 2D view of one item in display orientation (:func:`ctad_core.viz.axial`): the item itself (2D) or
    its axial slice ``k`` (3D; the middle one when None)."""
    if a.ndim == 3:
        a = a[a.shape[0] // 2 if k is None else k]
    return axial(a)


def _lesion_slice(lesion: np.ndarray) -> int | None:
    """The axial slice of a 3D item with the most lesion voxels (the middle one without lesion; None in 2D)."""
    if lesion.ndim == 2:
        return None
    per_slice = (lesion != 0).reshape(lesion.shape[0], -1).sum(1)
    return int(np.argmax(per_slice)) if per_slice.any() else lesion.shape[0] // 2


def map_limits(
    values: np.ndarray, mask: np.ndarray | None, q: tuple[float, float] = (1.0, 99.5)
) -> tuple[float, float]:
    """Colour-scale limits of an anomaly map: robust percentiles of its values inside the evaluation mask.

    The background outside the mask (often zero, or large where the model never learnt anything) does not
    count, so it cannot set the scale.

    Args:
        values: one item's map, any shape.
        mask: the item's evaluation mask (nonzero = inside), same shape, or None (every value counts).
        q: lower and upper percentile.

    Returns:
        ``(lo, hi)`` with ``hi > lo``.
    """
    v = np.asarray(values, np.float64)
    inside = v[np.asarray(mask) != 0] if mask is not None else v.ravel()
    inside = inside[np.isfinite(inside)]
    if not inside.size:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(inside, q))
    return lo, hi if hi > lo else lo + max(abs(lo), 1.0) * 1e-6


def _scan_image(r: MethodResults, i: int) -> tuple[np.ndarray, str]:
    """What a scan panel shows: the item's input as the model saw it (its window, [-1, 1]), else its
    reconstruction, else its map; with the panel's name."""
    if r.inputs is not None:
        return r.inputs[i], "input scan (model window)"
    if r.recon is not None:
        return r.recon[i], "reconstruction (no input stored)"
    return r.maps[i], "anomaly map (no input stored)"


def _draw_scan(ax, r: MethodResults, i: int, k: int | None, pred: np.ndarray | None) -> str:
    """The scan of item ``i`` (slice ``k``) with the reference outline and the prediction ``pred`` (whole item)
    over it; returns the panel's name."""
    img, label = _scan_image(r, i)
    v = _view(img, k)
    lim = (-1.0, 1.0) if label != "anomaly map (no input stored)" else map_limits(img, _mask(r, i))
    ax.imshow(v, cmap="gray", vmin=lim[0], vmax=lim[1], interpolation="nearest")
    if pred is not None:
        p = _view(pred, k) != 0
        ax.imshow(
            np.ma.masked_where(~p, np.ones(p.shape)),
            cmap=ListedColormap([PREDICTION_COLOR]),
            vmin=0,
            vmax=1,
            alpha=PREDICTION_ALPHA,
            interpolation="nearest",
        )
    if r.lesion is not None:
        les = _view(r.lesion[i], k) != 0
        if les.any():
            ax.contour(les.astype(float), levels=[0.5], colors=REFERENCE_COLOR, linewidths=1.0)
    return label


def _mask(r: MethodResults, i: int) -> np.ndarray | None:
    return r.brain[i] if r.brain is not None else None


def _draw_map(
    ax, r: MethodResults, i: int, k: int | None, threshold: float | None = None, colorbar: bool = True
):
    """Item ``i``'s anomaly map (slice ``k``) inside its evaluation mask (outside: blank), scaled by
    :func:`map_limits` of the whole item inside the mask; a colour bar (threshold marked) when ``colorbar``."""
    mask = _mask(r, i)
    lo, hi = map_limits(r.maps[i], mask)
    shown = _view(r.maps[i], k)
    if mask is not None:  # outside the evaluation mask: not drawn (no metric looks there)
        shown = np.ma.masked_where(_view(mask, k) == 0, shown)
    im = ax.imshow(shown, cmap="inferno", vmin=lo, vmax=hi, interpolation="nearest")
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        cb.ax.tick_params(labelsize=8)
        if threshold is not None and lo <= threshold <= hi:
            cb.ax.axhline(threshold, color=PREDICTION_COLOR, lw=2)
    return im


def _legend_handles(threshold: float | None = None) -> list:
    """Legend entries of the scan panel: the prediction's colour and the reference outline's, by name."""
    t = "" if threshold is None else f" at t = {threshold:.4g}"
    return [
        Patch(
            facecolor=PREDICTION_COLOR, alpha=PREDICTION_ALPHA, label=f"prediction{t} ({PREDICTION_COLOR})"
        ),
        Line2D([], [], color=REFERENCE_COLOR, lw=1.5, label=f"reference lesion ({REFERENCE_COLOR} outline)"),
    ]


def _header(results: Mapping[str, MethodResults], name: str) -> ResultsHeader:
    """What ``results[name]`` holds; read from the file's headers for a :class:`~ctad_core.results.LazyResults`."""
    return results.header(name) if isinstance(results, LazyResults) else header_of(results[name])


def _qualitative_groups(
    results: Mapping[str, MethodResults], evals: Mapping[str, MethodEvaluation], n_items: int, seed: int
) -> list[tuple[str, list[str], np.ndarray]]:
    """Per item level: its methods (same items) and ``n_items`` lesioned test items drawn for all of them.

    Reads no arrays of a :class:`~ctad_core.results.LazyResults` (its headers say what each method holds).
    """
    heads = {n: _header(results, n) for n in results}
    names = [
        n
        for n, h in heads.items()
        if "maps" in h.shapes and "lesion" in h.shapes and "all" in evals[n].dice_test
    ]
    rng = np.random.default_rng(seed)
    groups = []
    for level in ("2d", "3d"):
        ns = [n for n in names if heads[n].level == level]
        ns = [n for n in ns if heads[n].n_items == heads[ns[0]].n_items] if ns else ns
        if ns:
            idx_all = evals[ns[0]].dice_test["all"][1]
            groups.append(
                (level, ns, np.sort(rng.choice(idx_all, min(n_items, idx_all.size), replace=False)))
            )
    return groups


def qualitative_figures(
    results: Mapping[str, MethodResults],
    evals: Mapping[str, MethodEvaluation],
    n_items: int = 3,
    seed: int = 0,
    max_rows: int = 6,
    panel_in: float = 1.25,
) -> dict[str, Figure]:
    """Lesioned test items of every method: scan with prediction and reference, anomaly map, reconstruction.

    2D and 3D methods score different items (slices, volumes), so each level gets its own figures, with the
    same ``n_items`` lesioned test items for every method of that level; a 3D item is shown at its axial
    slice with the most lesion. One row per method (its name and validation threshold above the row), per
    item the panels *scan* (the input in the model's window, the prediction at the method's validation
    threshold in :data:`PREDICTION_COLOR` after its segmentation step, the reference outline in
    :data:`REFERENCE_COLOR`; title: the item's Dice), *anomaly map* (scaled by :func:`map_limits`) and,
    where a method of the figure keeps one, *reconstruction*. A figure holds at most ``max_rows`` methods
    and :data:`MAX_IMAGE_COLUMNS` panels per row; more methods or items continue in further figures.

    Returns:
        Figures by name (``"2d"``, ``"3d"``, ``"3d-2"``, …), in order; one figure saying so when no method
        has anomaly maps and lesions.
    """
    groups = _qualitative_groups(results, evals, n_items, seed)
    if not groups:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.text(0.5, 0.5, "no method with anomaly maps", ha="center")
        ax.axis("off")
        return {"none": fig}
    figs: dict[str, Figure] = {}
    for level, ns, idx in groups:
        per_item = 3 if any("recon" in _header(results, n).shapes for n in ns) else 2
        step = max(1, MAX_IMAGE_COLUMNS // per_item)
        chunks = [
            (idx[j : j + step], ns[m : m + max_rows])
            for j in range(0, idx.size, step)
            for m in range(0, len(ns), max_rows)
        ]
        for c, (items, chunk) in enumerate(chunks):
            figs[level if c == 0 else f"{level}-{c + 1}"] = _qualitative_figure(
                results, evals, chunk, items, per_item, panel_in
            )
    return figs


def _qualitative_figure(results, evals, names, items, per_item: int, panel_in: float) -> Figure:
    cols = per_item * len(items)
    fig = plt.figure(figsize=(panel_in * cols, (panel_in + 0.45) * len(names) + 0.5), layout="constrained")
    rows = np.atleast_1d(fig.subfigures(len(names), 1))
    ref = results[names[0]]
    for row, n in zip(rows, names):
        res, t = results[n], evals[n].metrics.get("dice_threshold", float("nan"))
        row.suptitle(f"{n} — validation threshold t = {t:.3g}", fontsize=TITLE_PT, x=0.01, ha="left")
        axes = row.subplots(1, cols, squeeze=False)[0]
        for j, i in enumerate(items):
            k = _lesion_slice(ref.lesion[i])
            pred = segment(res, t, np.array([i]))[0]  # the method's declared step
            a_scan, a_map = axes[per_item * j], axes[per_item * j + 1]
            _draw_scan(a_scan, res, i, k, pred)
            where = f"{res.kind[i]}" + ("" if k is None else f", z {k}")
            a_scan.set_title(f"{where}\nDice {M.dice(pred, res.lesion[i]):.2f}", fontsize=9)
            _draw_map(a_map, res, i, k, colorbar=False)
            a_map.set_title("anomaly map", fontsize=9)
            if per_item == 3:
                a_rec = axes[per_item * j + 2]
                if res.recon is not None:
                    a_rec.imshow(
                        _view(res.recon[i], k), cmap="gray", vmin=-1, vmax=1, interpolation="nearest"
                    )
                    a_rec.set_title("reconstruction", fontsize=9)
        for ax in axes:
            ax.axis("off")
    fig.legend(handles=_legend_handles(), loc="outside lower center", ncols=2, fontsize=9, frameon=False)
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


def _split_size(results: Mapping[str, MethodResults], name: str, split: str) -> int:
    """How many items of ``split`` a method has (only its ``split`` array read from a LazyResults' file)."""
    sp = results.array(name, "split") if isinstance(results, LazyResults) else results[name].split
    return int((np.asarray(sp).astype(str) == split).sum())


def _split_items(r: MethodResults, split: str) -> np.ndarray:
    return np.flatnonzero(np.asarray(r.split).astype(str) == split)


def _threshold_range(r: MethodResults, idx: np.ndarray) -> tuple[float, float]:
    """Smallest and largest map value inside the evaluation mask over the items ``idx`` (the slider's range)."""
    lo, hi = np.inf, -np.inf
    for i in idx:
        m = np.asarray(r.maps[i])
        where = np.asarray(r.brain[i]) != 0 if r.brain is not None else np.ones(m.shape, bool)
        if where.any():
            lo = min(lo, float(np.min(m, where=where, initial=np.inf)))
            hi = max(hi, float(np.max(m, where=where, initial=-np.inf)))
    if not np.isfinite(lo):
        lo, hi = 0.0, 1.0
    return lo, max(hi, lo + 1e-6)


def viewer_start(
    r: MethodResults, ev: MethodEvaluation, split: str = "test"
) -> tuple[int, int | None, float]:
    """Where the report viewer starts for one method: ``(item, slice, threshold)``.

    The item is the ``split`` item with the most lesion voxels (the first item when none has a lesion), the
    slice (3D; None in 2D) the item's axial slice with the most lesion voxels, the threshold the method's
    validation Dice threshold (``metrics["dice_threshold"]``) clipped to the slider's range
    (:func:`_threshold_range`; its middle when the method has none).

    Raises:
        ValueError: the method has no maps or no item in ``split``.
    """
    idx = _split_items(r, split)
    if r.maps is None or not idx.size:
        raise ValueError(f"{r.name}: no anomaly maps or no {split!r} items to view")
    sizes = [int((r.lesion[j] != 0).sum()) for j in idx] if r.lesion is not None else [0]
    i = int(idx[int(np.argmax(sizes))])
    z = (
        _lesion_slice(r.lesion[i])
        if r.lesion is not None
        else (None if r.level == "2d" else r.maps[i].shape[0] // 2)
    )
    lo, hi = _threshold_range(r, idx)
    t = ev.metrics.get("dice_threshold")
    t = (lo + hi) / 2 if t is None or not np.isfinite(t) else float(np.clip(t, lo, hi))
    return i, z, t


def viewer_figure(
    r: MethodResults, i: int, z: int | None, threshold: float, overlay: bool = True
) -> tuple[Figure, float]:
    """The report viewer's picture of item ``i`` (axial slice ``z`` of a 3D item) at ``threshold``.

    Panels: the input scan in the model's window with the reference lesion outlined and the prediction at
    ``threshold`` (the method's declared segmentation step, :func:`~ctad_core.evaluation.segmentation.segment`)
    over it, with a legend naming both colours; the anomaly map with a colour bar scaled by
    :func:`map_limits` inside the evaluation mask (the threshold marked on it); the reconstruction, only for
    a method that keeps one. The suptitle gives the item's Dice over the whole item (slice or volume).

    Returns:
        ``(fig, dice)``: a closed figure (display it once) and the item's Dice at ``threshold``.
    """
    pred = segment(r, threshold, np.array([i]))[0]
    les = r.lesion[i] if r.lesion is not None else np.zeros(pred.shape, np.uint8)
    d = float(M.dice(pred, les))
    n = 3 if r.recon is not None else 2
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 0.4, 4.3), layout="constrained")
    plt.close(fig)  # shown once by whoever displays it
    scan = _draw_scan(axes[0], r, i, z, pred if overlay else None)
    where = "" if z is None else f", slice {z} of {r.maps[i].shape[0]}"
    axes[0].set_title(scan, fontsize=TITLE_PT)
    handles = _legend_handles(threshold)[0 if overlay else 1 :]
    axes[0].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=9, frameon=False)
    _draw_map(axes[1], r, i, z, threshold)
    axes[1].set_title("anomaly map (inside the evaluation mask)", fontsize=TITLE_PT)
    if r.recon is not None:
        axes[2].imshow(_view(r.recon[i], z), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        axes[2].set_title("reconstruction", fontsize=TITLE_PT)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(
        f"{r.name} · {r.scan_id[i]} ({r.kind[i]}{where}) · t = {threshold:.4g} · Dice {d:.3f}",
        fontsize=TITLE_PT + 1,
    )
    return fig, d


def viewer(
    results: Mapping[str, MethodResults], evals: Mapping[str, MethodEvaluation], split: str = "test"
) -> Any:
    """Interactive viewer: method, item (and slice for 3D), overlay, and a threshold slider with live Dice.

    Each method starts where :func:`viewer_start` says (its most lesioned ``split`` item, at the slice with
    the most lesion, at its validation threshold); a new item starts at its most lesioned slice. Every
    redraw happens inside the viewer's ``Output`` (``clear_output(wait=True)``), errors included, so
    nothing lands in JupyterLab's log console. Headless (:func:`ctad_core.frontend.headless`, e.g. under
    ``ctad run``) it returns the static :func:`viewer_figure` of the first method's starting state instead,
    so a batch run creates no widget.

    Returns:
        An ipywidgets widget (display it), or a closed ``Figure`` when headless.
    """
    from ctad_core.frontend import headless

    names = [n for n in results if "maps" in _header(results, n).shapes and _split_size(results, n, split)]
    if headless():
        if not names:
            fig, ax = plt.subplots(figsize=(4, 1))
            plt.close(fig)
            ax.text(0.5, 0.5, "no method with anomaly maps", ha="center")
            ax.axis("off")
            return fig
        r = results[names[0]]
        return viewer_figure(r, *viewer_start(r, evals[names[0]], split))[0]

    import ipywidgets as W
    from IPython.display import display

    if not names:
        return W.HTML("no method with anomaly maps")
    method = W.Dropdown(options=names, description="method")
    item = W.IntSlider(0, 0, 1, description="item")
    depth = W.IntSlider(0, 0, 1, description="slice (3D)")
    thr = W.FloatSlider(
        0.0,
        min=0.0,
        max=1.0,
        description="threshold",
        readout_format=".4g",
        continuous_update=False,
        layout=W.Layout(width="500px"),
    )
    overlay = W.Checkbox(True, description="overlay prediction")
    out = W.Output()
    info = W.HTML()
    busy = [False]  # True while one callback sets several controls: they redraw once, at its end

    def current() -> tuple[MethodResults, int]:
        return results[method.value], int(_split_items(results[method.value], split)[item.value])

    def draw() -> None:
        r, i = current()
        fig, d = viewer_figure(r, i, depth.value if r.level == "3d" else None, thr.value, overlay.value)
        t_val = evals[method.value].metrics.get("dice_threshold", float("nan"))
        info.value = (
            f"<b>{r.scan_id[i]}</b> · kind <b>{r.kind[i]}</b> · lesion voxels {int((r.lesion[i] != 0).sum()) if r.lesion is not None else 0}"
            f" · item Dice at t = {thr.value:.4g}: <b>{d:.3f}</b> (validation threshold {t_val:.4g})"
        )
        out.clear_output(wait=True)
        display(fig)

    def guarded(step):
        def callback(*_: Any) -> None:
            if busy[0]:
                return
            with out:  # output and errors of every redraw land in the viewer
                busy[0] = True
                try:
                    step()
                finally:
                    busy[0] = False
                draw()

        return callback

    def set_item_slice() -> None:
        r, i = current()
        depth.layout.display = "" if r.level == "3d" else "none"
        if r.level == "3d":
            depth.max = r.maps[i].shape[0] - 1
            depth.value = _lesion_slice(r.lesion[i]) if r.lesion is not None else r.maps[i].shape[0] // 2

    def set_method() -> None:
        r, ev = results[method.value], evals[method.value]
        idx = _split_items(r, split)
        i, _, t = viewer_start(r, ev, split)
        item.max = max(0, idx.size - 1)
        item.value = int(np.flatnonzero(idx == i)[0])
        lo, hi = _threshold_range(r, idx)
        if lo > thr.max:  # keep min <= max at every step
            thr.max, thr.min = hi, lo
        else:
            thr.min, thr.max = lo, hi
        thr.step = (hi - lo) / 500
        thr.value = t
        set_item_slice()

    method.observe(guarded(set_method), "value")
    item.observe(guarded(set_item_slice), "value")
    for w in (depth, thr, overlay):
        w.observe(guarded(lambda: None), "value")
    guarded(set_method)()
    return W.VBox([W.HBox([method, overlay]), W.HBox([item, depth]), thr, info, out])


def _table_rows(md: str) -> list[list[str]]:
    """The cells of a Markdown pipe table, row by row, without its ``|---|`` rule."""
    rows = []
    for line in md.strip().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if all(set(c) <= set(":-") and c for c in cells):
            continue
        rows.append(cells)
    return rows


def _table_md(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def table_width_px(md: str, char_px: float = 7.5, cell_pad_px: float = 16.0) -> float:
    """Estimated rendered width of a Markdown pipe table, pixels.

    A browser wraps a cell's text at spaces but never inside a word, so each column is as wide as its longest
    word (``fastgan_restoration`` stays whole): ``char_px`` per character (JupyterLab's 13–14 px font) plus
    ``cell_pad_px`` of padding and border.
    """
    rows = _table_rows(md)
    if not rows:
        return 0.0
    cols = max(len(r) for r in rows)
    widths = [max((len(w) for r in rows if j < len(r) for w in r[j].split()), default=0) for j in range(cols)]
    return float(sum(w * char_px + cell_pad_px for w in widths))


def fit_table(md: str, max_width_px: float = 1000.0, corner: str | None = None) -> str:
    """A Markdown pipe table laid out to fit a notebook of ``max_width_px`` (see :func:`table_width_px`).

    Unchanged when it fits; else transposed (columns become rows; ``corner`` names the new first header
    cell, by default the old one) when that fits; else split into several tables of consecutive columns,
    each repeating the first column, of whichever orientation needs fewer of them.

    Args:
        md: one Markdown pipe table (header, ``|---|`` rule, rows).
        max_width_px: width it must fit, pixels.
        corner: header of the first column of the transposed table.

    Returns:
        Markdown: one table, or several separated by blank lines.
    """
    lines = md.strip("\n").splitlines()
    first = next((i for i, line in enumerate(lines) if line.lstrip().startswith("|")), None)
    if first is None:
        return md
    last = first
    while last + 1 < len(lines) and lines[last + 1].lstrip().startswith("|"):
        last += 1
    if first > 0 or last + 1 < len(lines):  # text around the table (a title, a footnote) stays as it is
        table = "\n".join(lines[first : last + 1])
        parts = [
            "\n".join(lines[:first]),
            fit_table(table, max_width_px, corner),
            "\n".join(lines[last + 1 :]),
        ]
        return "\n".join(p for p in parts if p)
    rows = _table_rows(md)
    if not rows or table_width_px(md) <= max_width_px:
        return md
    n = max(len(r) for r in rows)
    rows = [r + [""] * (n - len(r)) for r in rows]
    transposed = [list(c) for c in zip(*rows)]
    if corner is not None:
        transposed[0][0] = corner
    if table_width_px(_table_md(transposed)) <= max_width_px:
        return _table_md(transposed)

    def split(rs: list[list[str]]) -> list[str]:
        parts, cols = [], []
        for j in range(1, len(rs[0])):
            trial = [[r[0]] + [r[c] for c in cols + [j]] for r in rs]
            if cols and table_width_px(_table_md(trial)) > max_width_px:
                parts.append(_table_md([[r[0]] + [r[c] for c in cols] for r in rs]))
                cols = []
            cols.append(j)
        parts.append(_table_md([[r[0]] + [r[c] for c in cols] for r in rs]))
        return parts

    best = min((split(rows), split(transposed)), key=len)
    return "\n\n".join(best)


def shift_figure(table: Any, targets: tuple[float, float] | None = None) -> Figure:
    """The acquisition-shift test (:func:`ctad_core.evaluation.shift.shift_test`): per method, the fraction of
    healthy test scans flagged (left) and the healthy voxel false-positive rate (right), unshifted (grey) and
    shifted (red), with 95 % patient-bootstrap intervals; dotted lines at the thresholds' targets
    (``(scan_fpr, fpr)``) when given."""
    names = list(dict.fromkeys(table["method"]))
    fig, axes = plt.subplots(
        1, 2, figsize=(SCREEN_WIDTH_IN, 0.9 + 0.28 * max(4, len(names))), sharey=True, layout="constrained"
    )
    y = np.arange(len(names))
    cols = (
        ("scans_flagged", "healthy test scans flagged"),
        ("voxel_fpr", "healthy voxels flagged (evaluation mask)"),
    )
    for j, (ax, (col, title)) in enumerate(zip(axes, cols)):
        for dy, cond, color in ((-0.15, "unshifted", "0.45"), (0.15, "shifted", "tab:red")):
            t = table[table["condition"] == cond].set_index("method").reindex(names)
            est = t[col].to_numpy(float)
            err = np.abs(
                np.vstack([est - t[f"{col}_low"].to_numpy(float), t[f"{col}_high"].to_numpy(float) - est])
            )
            ax.errorbar(
                est, y + dy, xerr=np.nan_to_num(err), fmt="o", ms=4, color=color, label=cond, capsize=2
            )
        if targets is not None:
            ax.axvline(targets[j], ls=":", color="k", lw=1, label="target")
        ax.set_title(title, fontsize=TITLE_PT)
        ax.set_xlabel("fraction")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names, fontsize=8)
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower right", fontsize=8)
    return fig
