"""Figures of notebook 05 (the 3D-data methods), from their results: three-plane cases, loss curves, slice
normality curves (ROC curves: :func:`ctad_core.evaluation.figures.roc_figure`)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ctad_core import viz
from ctad_core.data.windows import from_model
from ctad_core.evaluation.slices import scan_normality
from ctad_core.results import MethodResults


def pick_cases(r: MethodResults, split: str = "test") -> list[int]:
    """Indices of a healthy scan and of the lesioned scan with the largest lesion (in ``split``)."""
    idx = np.flatnonzero(r.split == split)
    healthy = [i for i in idx if r.kind[i] == "healthy"]
    sizes = [(int((r.lesion[i] > 0).sum()), i) for i in idx if r.kind[i] != "healthy"]
    out = healthy[:1]
    if sizes:
        out.append(max(sizes)[1])
    return [int(i) for i in out]


def case_views(r: MethodResults, i: int, window: str | tuple[float, float] | None = None):
    """Three-plane views of one scan: input, reconstruction (both in HU through the method's window) and
    the anomaly map, crossing at the lesion's centre (outlined in red) or the volume's centre."""
    window = window or r.info["spec"]["window"]
    window = tuple(window) if isinstance(window, list) else window
    fig = viz.three_plane(
        [from_model(r.inputs[i], window), from_model(r.recon[i], window), r.maps[i]],
        [
            f"{r.scan_id[i]} ({r.kind[i]}) input",
            "reconstruction",
            f"anomaly map (score {r.scan_score[i]:.4g})",
        ],
        windows=[window, window, None],
        mask=r.lesion[i],
    )
    fig.suptitle(r.name, fontsize=10)
    return fig


def loss_figure(history: dict[str, list[dict[str, float]]], name: str, smooth: int = 5):
    """Loss history of every training phase of a method (one panel per phase)."""
    phases = [p for p, h in history.items() if h]
    fig, axes = plt.subplots(1, max(1, len(phases)), figsize=(4.2 * max(1, len(phases)), 3), squeeze=False)
    for ax, ph in zip(axes[0], phases):
        keys = history[ph][0].keys()
        viz.loss_curves(
            {k: [h[k] for h in history[ph]] for k in keys},
            title=f"{name}: {ph}",
            smooth=smooth,
            ax=ax,
        )
    fig.tight_layout()
    return fig


def normality_figure(r: MethodResults, indices: Sequence[int]):
    """Luo's Fig. 2: slice normality score s(u) along z for some scans (as the evaluator computes it from the
    method's map), lesioned slices marked."""
    fig, axes = plt.subplots(1, len(indices), figsize=(4.2 * len(indices), 3), squeeze=False)
    for ax, i in zip(axes[0], indices):
        s, _ = scan_normality(r, i)  # Luo's s(u) of the method's map, as the report scores slices
        les = (r.lesion[i] > 0).reshape(r.lesion.shape[1], -1).any(1)
        u = np.arange(len(s))
        ax.plot(u, s, color="tab:green", lw=1.2, label="s(u)")
        if les.any():
            ax.scatter(u[les], s[les], color="tab:orange", s=14, zorder=3, label="lesion in slice")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("axial slice u (inferior → superior)")
        ax.set_title(f"{r.scan_id[i]} ({r.kind[i]})", fontsize=9)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("normality score")
    fig.tight_layout()
    return fig
