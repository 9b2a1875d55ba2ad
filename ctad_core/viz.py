"""Figures and viewers shared by the notebooks.

Display convention (radiological): axial images are shown with anterior at the top and the patient's
right on the viewer's left. Arrays are (z, y, x) in RAS+ (y → anterior, x → right), so an axial slice is
shown as ``slice[::-1, ::-1]``; :func:`axial` does that, and every figure here goes through it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ctad_core.data.windows import to_display


def axial(img: np.ndarray) -> np.ndarray:
    """(y, x) RAS slice → display orientation (anterior up, patient right on the left)."""
    return np.asarray(img)[..., ::-1, ::-1]


def coronal(vol: np.ndarray, y: int | None = None) -> np.ndarray:
    """Coronal slice of a (z, y, x) volume for display (superior up, patient right on the left)."""
    y = vol.shape[1] // 2 if y is None else y
    return vol[::-1, y, ::-1]


def sagittal(vol: np.ndarray, x: int | None = None) -> np.ndarray:
    """Sagittal slice of a (z, y, x) volume for display (superior up, anterior on the left)."""
    x = vol.shape[2] // 2 if x is None else x
    return vol[::-1, ::-1, x]


def show_ct(ax, hu: np.ndarray, window="brain", title: str | None = None, mask: np.ndarray | None = None,
            mask_color: str = "red", oriented: bool = False) -> None:
    """Show one 2D CT image in a window, optionally with a mask contour.

    Args:
        ax: matplotlib axes.
        hu: (y, x) HU (or an already-oriented view when ``oriented``).
        window: preset name or (lower, upper) HU.
        title: axes title.
        mask: (y, x) mask to outline.
        oriented: the inputs are already in display orientation.
    """
    view = (lambda a: a) if oriented else axial
    ax.imshow(view(to_display(hu, window)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if mask is not None and np.any(mask):
        ax.contour(view(np.asarray(mask) > 0).astype(float), levels=[0.5], colors=mask_color, linewidths=0.8)
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")


def show_map(ax, values: np.ndarray, title: str | None = None, cmap: str = "magma", vmin=None, vmax=None,
             oriented: bool = False) -> None:
    """Show a 2D map (anomaly score, residual) with its own colour scale."""
    view = (lambda a: a) if oriented else axial
    im = ax.imshow(view(values), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")
    return im


def label_colours(codes: dict[str, int]) -> dict[str, tuple[float, float, float, float]]:
    """A fixed RGBA colour per label code (matplotlib's ``tab20``, code ``k`` → colour ``k mod 20``)."""
    cmap = plt.get_cmap("tab20")
    return {name: cmap(int(code) % 20) for name, code in codes.items()}


def show_labels(ax, labels: np.ndarray, codes: dict[str, int], title: str | None = None, oriented: bool = False,
                legend: bool = True):
    """Show a label map in fixed colours with a legend naming the labels present.

    Args:
        ax: matplotlib axes.
        labels: (y, x) integer labels (RAS axial slice, or an already-oriented view when ``oriented``).
        codes: label name → code (e.g. :data:`ctad_core.data.phantom.TISSUE_CODES`).
        title: axes title.
        oriented: the input is already in display orientation (a coronal or sagittal view).
        legend: draw the legend (outside the image, on the right).

    Returns:
        The legend (None when ``legend`` is false or no listed label is present).
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    view = (lambda a: a) if oriented else axial
    colours = label_colours(codes)
    cmap = ListedColormap([plt.get_cmap("tab20")(k) for k in range(20)])
    ax.imshow(view(np.asarray(labels) % 20), cmap=cmap, vmin=-0.5, vmax=19.5, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")
    present = set(np.unique(labels).tolist())
    handles = [Patch(facecolor=colours[n], edgecolor="0.3", label=n) for n, c in codes.items() if c in present]
    if not (legend and handles):
        return None
    return ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False,
                     borderaxespad=0.0)


def gallery(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, window="brain",
            masks: Sequence[np.ndarray | None] | None = None, ncols: int = 6, size: float = 2.2):
    """A grid of axial CT images with optional mask outlines; returns the figure."""
    n = len(images)
    ncols = min(ncols, max(n, 1))
    nrows = int(np.ceil(n / ncols)) if n else 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            show_ct(ax, images[i], window, titles[i] if titles else None, masks[i] if masks else None)
        else:
            ax.axis("off")
    fig.tight_layout()
    return fig


def three_plane(vols: Sequence[np.ndarray], titles: Sequence[str], windows: Sequence | None = None,
                cmaps: Sequence[str] | None = None, point: tuple[int, int, int] | None = None,
                mask: np.ndarray | None = None, size: float = 2.4, name: str | None = None):
    """Axial, coronal and sagittal views of several (z, y, x) volumes (one column each, one row per plane).

    Each row is labelled with its plane and the crossing point's index on that plane's axis (``axial z=…``),
    and the figure is titled with ``name`` (the item shown) when given.

    Args:
        vols: volumes of one shape (CT in HU, or maps).
        titles: a title per volume.
        windows: per volume, a CT window (HU image) or None (a map, shown with its cmap).
        cmaps: per volume colour map for maps.
        point: (z, y, x) crossing point; default the centre, or the mask's centre of mass.
        mask: optional lesion mask outlined on CT panels.
        size: inches per panel.
        name: the item shown (e.g. its scan id and kind), the figure's title.
    """
    vols = [np.asarray(v) for v in vols]
    shape = vols[0].shape
    if point is None:
        if mask is not None and np.any(mask):
            point = tuple(int(round(c)) for c in np.argwhere(mask > 0).mean(0))
        else:
            point = tuple(s // 2 for s in shape)
    z, y, x = point
    row_labels = [f"axial (z={z})", f"coronal (y={y})", f"sagittal (x={x})"]
    windows = windows or ["brain"] * len(vols)
    cmaps = cmaps or ["magma"] * len(vols)
    fig, axes = plt.subplots(3, len(vols), figsize=(size * len(vols), size * 3), squeeze=False)
    for j, v in enumerate(vols):
        planes = [axial(v[z]), coronal(v, y), sagittal(v, x)]
        mplanes = [axial(mask[z]), coronal(mask, y), sagittal(mask, x)] if mask is not None else [None] * 3
        for i, (pl, mp) in enumerate(zip(planes, mplanes)):
            ax = axes[i, j]
            if windows[j] is not None:
                ax.imshow(to_display(pl, windows[j]), cmap="gray", vmin=0, vmax=1, aspect="auto")
                if mp is not None and np.any(mp):
                    ax.contour((mp > 0).astype(float), levels=[0.5], colors="red", linewidths=0.7)
            else:
                ax.imshow(pl, cmap=cmaps[j], aspect="auto")
            # ticks and frame off, but not the axis: its y label names the row
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j == 0:
                ax.set_ylabel(row_labels[i], fontsize=9)
            if i == 0:
                ax.set_title(titles[j], fontsize=9)
    if name:
        fig.suptitle(name, fontsize=10)
    fig.tight_layout()
    return fig


def loss_curves(history: dict[str, Sequence[float]], title: str = "losses", smooth: int = 1, ax=None):
    """Plot named loss histories (optionally a running mean over ``smooth`` steps)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    for name, vals in history.items():
        v = np.asarray(vals, dtype=float)
        if smooth > 1 and len(v) >= smooth:
            v = np.convolve(v, np.ones(smooth) / smooth, mode="valid")
        ax.plot(v, label=name, lw=1)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    return ax


def slice_strip(volume: np.ndarray, window="brain", mask: np.ndarray | None = None,
                anomaly: np.ndarray | None = None, n: int = 5, threshold: float | None = None):
    """A static row of ``n`` axial slices through a volume (what :func:`slice_viewer` shows headless).

    Slices are evenly spaced through the lesion's extent when ``mask`` has one, else through the middle
    80 % of the volume.

    Args:
        volume: (z, y, x) HU.
        window: window preset or (lower, upper) HU.
        mask: optional (z, y, x) lesion mask to outline.
        anomaly: optional (z, y, x) anomaly map shown over the CT above ``threshold``.
        n: number of slices.
        threshold: anomaly threshold (default: midway between the map's minimum and maximum).

    Returns:
        A closed ``matplotlib.figure.Figure``: a notebook shows it once, as the cell's value.
    """
    depth = volume.shape[0]
    zs = np.flatnonzero(np.asarray(mask).reshape(depth, -1).any(1)) if mask is not None else np.zeros(0, int)
    lo, hi = (zs.min(), zs.max()) if zs.size else (int(0.1 * depth), int(0.9 * depth) - 1)
    picks = np.unique(np.linspace(lo, max(lo, hi), n).round().astype(int))
    if anomaly is not None and threshold is None:
        threshold = float(np.nanmin(anomaly) + np.nanmax(anomaly)) / 2
    # through pyplot, so that the kernel's inline backend (and its figure formatter) is loaded; closed, so
    # that it is shown once, as the cell's value, not again when the cell ends
    fig, axes = plt.subplots(1, len(picks), figsize=(2.2 * len(picks), 2.4), squeeze=False)
    axes = axes[0]
    plt.close(fig)
    for ax, z in zip(axes, picks):
        show_ct(ax, volume[z], window, title=f"slice {z}", mask=None if mask is None else mask[z])
        if anomaly is not None:
            ax.imshow(axial(np.where(anomaly[z] >= threshold, 1.0, np.nan)), cmap="autumn", alpha=0.5, vmin=0, vmax=1)
    fig.tight_layout()
    return fig


def slice_viewer(volume: np.ndarray, window="brain", mask: np.ndarray | None = None,
                 anomaly: np.ndarray | None = None):
    """An ipywidgets viewer: slice slider, window choice, overlay and threshold (JupyterLab).

    Headless (:func:`ctad_core.frontend.headless`, e.g. under ``ctad run``) it returns the static
    :func:`slice_strip` instead, so a batch run creates no widget.

    Args:
        volume: (z, y, x) HU.
        window: initial window preset.
        mask: optional (z, y, x) lesion mask to outline.
        anomaly: optional (z, y, x) anomaly map; a threshold slider shows it over the CT.

    Returns:
        The widget (display it, or let the notebook show it as the cell's value), or a static figure.
    """
    from ctad_core.frontend import headless

    if headless():
        return slice_strip(volume, window if isinstance(window, str) else "brain", mask, anomaly)
    import ipywidgets as w

    from ctad_core.data.windows import WINDOWS

    out = w.Output()
    z = w.IntSlider(value=volume.shape[0] // 2, min=0, max=volume.shape[0] - 1, description="slice")
    win = w.Dropdown(options=sorted(WINDOWS), value=window if isinstance(window, str) else "brain", description="window")
    lo, hi = (float(np.nanmin(anomaly)), float(np.nanmax(anomaly))) if anomaly is not None else (0.0, 1.0)
    thr = w.FloatSlider(value=(lo + hi) / 2, min=lo, max=hi if hi > lo else lo + 1, step=(hi - lo) / 100 or 0.01,
                        description="threshold", disabled=anomaly is None)

    def draw(*_):
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(4.5, 4.5))
            show_ct(ax, volume[z.value], win.value, mask=None if mask is None else mask[z.value])
            if anomaly is not None:
                v = np.where(anomaly[z.value] >= thr.value, 1.0, np.nan)
                ax.imshow(axial(v), cmap="autumn", alpha=0.5, vmin=0, vmax=1)
            plt.show()

    for c in (z, win, thr):
        c.observe(draw, names="value")
    draw()
    return w.VBox([w.HBox([z, win]), thr, out])
