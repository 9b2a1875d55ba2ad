"""Notebook 07's figures laid out for a screen, its tables fitted, and its map viewer (issue 15, items 3-4)."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402

from ctad_core.evaluation import figures as RF  # noqa: E402
from ctad_core.evaluation.evaluator import evaluate  # noqa: E402
from ctad_core.viz import axial  # noqa: E402

from ._synthetic import synthetic  # noqa: E402

DPI = 120  # what the notebook saves at (RF.save)
MAX_WIDTH_PX = 1400


def _many(n: int, n2d: int = 3):
    res = {
        f"method_{j:02d}_{'2d' if j < n2d else '3d'}": synthetic(
            f"method_{j:02d}_{'2d' if j < n2d else '3d'}",
            "2d" if j < n2d else "3d",
            seed=j,
            inputs=True,
            recon=j % 2 == 0,
        )
        for j in range(n)
    }
    return res, {k: evaluate(r) for k, r in res.items()}


@pytest.fixture(scope="module", params=[11, 16])
def many(request):
    return _many(request.param)


def _visible_axes(fig):
    fig.canvas.draw()
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _columns(axes) -> int:
    """Most axes side by side in one row (same vertical band)."""
    boxes = [ax.get_window_extent() for ax in axes]  # pixels: comparable across subfigures
    return max(sum(1 for o in boxes if abs(o.y0 - b.y0) < 1.0) for b in boxes)


def _titles(fig):
    return [t for ax in fig.axes for t in (ax.title, ax._left_title, ax._right_title) if t.get_text()]


def test_dice_threshold_figure_wraps_into_a_grid_that_fits_a_screen(many):
    res, evals = many
    fig = RF.dice_threshold_figure(evals, "all")
    w, h = fig.get_size_inches() * DPI
    axes = _visible_axes(fig)
    assert len(axes) == len(res)
    assert w <= MAX_WIDTH_PX and _columns(axes) <= 4
    for ax in axes:  # every panel large enough to read: >= 180 px tall and wide at the saved dpi
        bb = ax.get_window_extent()
        assert bb.height * DPI / fig.dpi >= 180 and bb.width * DPI / fig.dpi >= 180
    assert all(t.get_fontsize() >= 9 for t in _titles(fig))
    assert h / w < 2.5
    plt.close(fig)


def test_roc_curves_of_many_methods_look_different_and_their_legends_hide_no_curve(many):
    res, evals = many
    fig = RF.roc_figure(evals)
    fig.canvas.draw()
    w, _ = fig.get_size_inches() * DPI
    assert w <= MAX_WIDTH_PX
    for ax in fig.axes:
        lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
        assert len(lines) == len(res)
        styles = {(to_rgba(ln.get_color()), ln.get_linestyle()) for ln in lines}
        assert len(styles) == len(res)  # the default cycle repeats after 10 colours
        legend = ax.get_legend().get_window_extent()
        assert legend.y1 <= ax.get_window_extent().y0  # below the axes, not over the curves
    plt.close(fig)


def test_qualitative_figures_have_at_most_nine_columns_and_readable_titles(many):
    res, evals = many
    figs = RF.qualitative_figures(res, evals, n_items=3, seed=0)
    shown = set()
    for fig in figs.values():
        w, h = fig.get_size_inches() * DPI
        assert w <= MAX_WIDTH_PX and h <= 1600
        # columns from each row's grid (no draw needed: a layout of 50 axes takes seconds)
        cols = {ax.get_subplotspec().get_gridspec().ncols for ax in fig.axes}
        assert max(cols) <= RF.MAX_IMAGE_COLUMNS and w / max(cols) >= 1.2 * DPI  # panels >= 144 px wide
        titles = _titles(fig) + [sf._suptitle for sf in fig.subfigs if sf._suptitle is not None]
        assert titles and all(t.get_fontsize() >= 9 for t in titles)
        shown |= {sf._suptitle.get_text().split(" — ")[0] for sf in fig.subfigs}
        plt.close(fig)
    assert shown == set(res)  # every method is in one of the figures


def test_qualitative_scan_panel_shows_the_input_with_prediction_and_reference():
    res, evals = _many(1, n2d=0)
    figs = RF.qualitative_figures(res, evals, n_items=2, seed=0)
    fig = figs["3d"]
    scan_ax = fig.subfigs[0].axes[0]
    name = "method_00_3d"
    i = int(np.sort(np.random.default_rng(0).choice(evals[name].dice_test["all"][1], 2, replace=False))[0])
    z = int(np.argmax((res[name].lesion[i] != 0).reshape(res[name].lesion[i].shape[0], -1).sum(1)))
    np.testing.assert_array_equal(scan_ax.images[0].get_array(), axial(res[name].inputs[i][z]))
    for f in figs.values():
        plt.close(f)


# ---- the map viewer ----


def _dice_np(r, i, t):
    """Dice of item i at t by hand: map >= t inside the evaluation mask (no segmentation step declared)."""
    p = (r.maps[i] >= t) & (r.brain[i] != 0)
    g = r.lesion[i] != 0
    return 2.0 * np.logical_and(p, g).sum() / (p.sum() + g.sum())


@pytest.mark.parametrize("level", ["2d", "3d"])
def test_viewer_starts_on_the_most_lesioned_test_item_and_slice_at_the_validation_threshold(level):
    r = synthetic("m", level, seed=3, inputs=True)
    ev = evaluate(r)
    i, z, t = RF.viewer_start(r, ev)
    test = np.flatnonzero(r.split == "test")
    sizes = (r.lesion[test] != 0).reshape(test.size, -1).sum(1)
    assert r.split[i] == "test" and r.lesion[i].any() and sizes.max() == (r.lesion[i] != 0).sum()
    assert i == test[np.argmax(sizes)]
    if level == "3d":
        assert z == np.argmax((r.lesion[i] != 0).sum((1, 2)))
    else:
        assert z is None
    assert t == pytest.approx(ev.metrics["dice_threshold"])


def _scan_overlay_and_legend(fig):
    ax = fig.axes[0]
    legend = ax.get_legend() or next((c for c in fig.get_children() if isinstance(c, Legend)), None)
    assert legend is not None, "the scan panel has no legend"
    return ax, legend


@pytest.mark.parametrize("level", ["2d", "3d"])
def test_viewer_figure_overlay_colour_is_the_legends_and_the_named_one(level):
    r = synthetic("m", level, seed=3, inputs=True)
    fig = RF.viewer(r and {"m": r}, {"m": evaluate(r)})  # headless under pytest: the starting state
    ax, legend = _scan_overlay_and_legend(fig)
    assert len(ax.images) == 2, "scan and prediction overlay"
    overlay = ax.images[1]
    drawn = overlay.to_rgba(np.ma.masked_invalid(overlay.get_array()).compressed()[:1].reshape(1, 1))[0, 0]
    entries = dict(zip([t.get_text() for t in legend.get_texts()], legend.legend_handles))
    (label,) = [k for k in entries if k.startswith("prediction")]
    handle = entries[label]
    np.testing.assert_allclose(handle.get_facecolor()[:3], drawn[:3])
    assert handle.get_alpha() == overlay.get_alpha()
    colour_name = re.search(r"\((\w+)\)", label).group(1)  # the colour the legend names is the one drawn
    np.testing.assert_allclose(to_rgba(colour_name)[:3], drawn[:3])
    # the scan panel is the input scan (display orientation), not a map
    i, z, _ = RF.viewer_start(r, evaluate(r))
    np.testing.assert_array_equal(
        ax.images[0].get_array(), axial(r.inputs[i] if z is None else r.inputs[i][z])
    )


@pytest.mark.parametrize("level", ["2d", "3d"])
def test_viewer_colour_bar_is_scaled_inside_the_evaluation_mask(level):
    r = synthetic("m", level, seed=3, inputs=True)
    ev = evaluate(r)
    i, z, t = RF.viewer_start(r, ev)
    r.brain[i][..., :2, :] = 0  # a band outside the mask, on every slice ...
    r.maps[i][..., :2, :] = 1e6  # ... holding an extreme value
    inside = r.maps[i][r.brain[i] != 0]
    fig, _ = RF.viewer_figure(r, i, z, t)
    cbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(cbars) == 1
    lo, hi = fig.axes[1].images[0].get_clim()
    assert inside.min() <= lo < hi <= inside.max() < 1e6
    np.testing.assert_allclose(cbars[0].get_ylim(), (lo, hi))


@pytest.mark.parametrize("recon", [False, True])
def test_viewer_panels_are_distinct_and_reconstruction_only_when_kept(recon):
    r = synthetic("v3", "3d", seed=3, inputs=True, recon=recon)
    fig = RF.viewer({"v3": r}, {"v3": evaluate(r)})
    titles = [ax.get_title() for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(titles) == len(set(titles)) == (3 if recon else 2)
    assert sum("anomaly map" in t for t in titles) == 1
    assert any("reconstruction" in t for t in titles) == recon


def test_viewer_figure_dice_matches_a_numpy_computation():
    r = synthetic("m", "3d", seed=3, inputs=True)
    i, z, t = RF.viewer_start(r, evaluate(r))
    for thr in (t, t + 0.1, 0.5 * t):
        fig, d = RF.viewer_figure(r, i, z, thr)
        shown = float(re.search(r"Dice (\d\.\d+)", fig._suptitle.get_text()).group(1))
        assert d == pytest.approx(_dice_np(r, i, thr)) and shown == pytest.approx(
            _dice_np(r, i, thr), abs=5e-4
        )


def _walk(w):
    yield w
    for c in getattr(w, "children", ()):
        yield from _walk(c)


def test_viewer_widget_dice_follows_the_threshold_slider(monkeypatch):
    pytest.importorskip("ipywidgets")
    import ipywidgets as W

    monkeypatch.setenv("CTAD_HEADLESS", "0")
    res = {"a2": synthetic("a2", "2d", seed=1, inputs=True), "v3": synthetic("v3", "3d", seed=3, inputs=True)}
    evals = {n: evaluate(r) for n, r in res.items()}
    box = RF.viewer(res, evals)
    assert isinstance(box, W.VBox)
    ws = list(_walk(box))
    (thr,) = [w for w in ws if isinstance(w, W.FloatSlider)]
    (method,) = [w for w in ws if isinstance(w, W.Dropdown)]
    (info,) = [w for w in ws if isinstance(w, W.HTML)]
    for name in ("a2", "v3"):
        method.value = name
        r = res[name]
        i, _, t = RF.viewer_start(r, evals[name])
        assert thr.value == pytest.approx(evals[name].metrics["dice_threshold"])
        assert r.scan_id[i] in info.value
        for new in (thr.value + 0.05, thr.value - 0.1):
            thr.value = new
            shown = float(re.search(r"Dice at t = [^:]+: <b>([\d.]+)</b>", info.value).group(1))
            assert shown == pytest.approx(_dice_np(r, i, thr.value), abs=5e-4)
    plt.close("all")


# ---- tables ----


def _md(header, rows):
    return "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(r) + " |" for r in rows]
    )


def test_fit_table_transposes_a_wide_table_and_keeps_every_cell():
    methods = [f"ctfsh_method_number_{j:02d}" for j in range(16)]
    kinds = ["atrophy", "edh", "fracture", "infarct", "iph", "TOTAL"]
    values = {(m, k): f"0.{j}{q}0" for j, m in enumerate(methods) for q, k in enumerate(kinds)}
    wide = _md(["Pathology (scan AUROC)", *methods], [[k, *(values[m, k] for m in methods)] for k in kinds])
    assert RF.table_width_px(wide) > 1000  # the defect: one column per method
    out = RF.fit_table(wide, 1000, corner="Method")
    assert RF.table_width_px(out) <= 1000
    rows = RF._table_rows(out)
    assert rows[0] == ["Method", *kinds]
    assert {(r[0], k): v for r in rows[1:] for k, v in zip(kinds, r[1:])} == values
    narrow = _md(["a", "b"], [["1", "2"]])
    assert RF.fit_table(narrow, 1000) == narrow


def test_fit_table_splits_when_neither_orientation_fits():
    header = ["Test set", *(f"method_with_a_long_name_{j:02d}" for j in range(20))]
    rows = [[f"row_with_a_long_label_{r:02d}", *(f"v{r}_{j}" for j in range(20))] for r in range(20)]
    out = RF.fit_table(_md(header, rows), 1000)
    parts = out.split("\n\n")
    assert len(parts) > 1 and all(RF.table_width_px(p) <= 1000 for p in parts)
    cells = {c for p in parts for r in RF._table_rows(p) for c in r}
    assert cells >= {c for r in [header, *rows] for c in r}


def test_fit_table_keeps_a_title_and_footnote_out_of_the_table():
    methods = [f"ctfsh_method_number_{j:02d}" for j in range(16)]
    wide = _md(["Test set", *methods], [["Haemorrhage", *(f"0.{j:02d}" for j in range(16))]])
    note = "Median with its 95 % interval (patients resampled)."
    out = RF.fit_table(f"### Title\n\n{wide}\n\n{note}", 1000, corner="Method")
    assert out.startswith("### Title\n") and out.endswith(note)
    table = "\n".join(line for line in out.splitlines() if line.startswith("|"))
    assert RF.table_width_px(table) <= 1000
    assert all(note not in c for r in RF._table_rows(table) for c in r)
    assert RF._table_rows(table)[0] == ["Method", "Haemorrhage"]
