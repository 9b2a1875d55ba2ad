"""Figures of seed 000 (notebooks 02–04): sample grids, loss curves, reconstructions and residual maps."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ctad_core.results import MethodResults


def restoration_loss_figure(res: MethodResults, w_percept: float, w_mse: float):
    """The summed restoration loss of Eq. 4 per step (mean over slices), one line per member."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for m, lc in enumerate(res.info.get("restoration_loss", [])):
        ax.plot(lc, label=f"member {m}")
    ax.set_xlabel("Adam step")
    ax.set_ylabel(f"{w_percept}·percept + {w_mse}·MSE")
    ax.set_yscale("log")
    ax.legend()
    return fig


def show_examples(results: Sequence[MethodResults], idx: Sequence[int], title: str):
    """Per slice: input, each method's mean reconstruction and mean residual, and the reference lesion.

    Residuals are overlaid above the 95th percentile of the healthy slices' residuals inside the brain (noise
    stays grey). ``results`` are methods scored on the same slices (e.g. ``fastgan_encoder`` and
    ``fastgan_restoration``).
    """
    r0 = results[0]
    x, brain, lesion = r0.inputs, r0.brain, r0.lesion
    has_lesion = lesion.reshape(len(lesion), -1).any(1)
    names = [r.name.removeprefix("fastgan_") for r in results]
    cols = ["input", *(f"{n} recon" for n in names), *(f"{n} residual" for n in names), "reference"]
    fig, axes = plt.subplots(len(idx), len(cols), figsize=(2.1 * len(cols), 2.1 * len(idx)), squeeze=False)
    healthy_px = (brain > 0) & ~has_lesion[:, None, None]
    floor = [float(np.quantile(r.maps[healthy_px], 0.95)) if healthy_px.any() else 0.02 for r in results]
    vmax = [float(np.quantile(r.maps[brain > 0], 0.999)) if (brain > 0).any() else 1.0 for r in results]
    k = len(results)
    for row, i in enumerate(idx):
        axes[row, 0].imshow(x[i], cmap="gray", vmin=-1, vmax=1)
        for c, r in enumerate(results):
            axes[row, 1 + c].imshow(r.recon[i], cmap="gray", vmin=-1, vmax=1)
            ax = axes[row, 1 + k + c]
            ax.imshow(x[i], cmap="gray", vmin=-1, vmax=1)
            ax.imshow(
                np.ma.masked_less(r.maps[i] * brain[i], floor[c]),
                cmap="autumn_r",
                vmin=0,
                vmax=vmax[c],
                alpha=0.8,
            )
        axes[row, -1].imshow(x[i], cmap="gray", vmin=-1, vmax=1)
        axes[row, -1].imshow(np.ma.masked_equal(lesion[i], 0), cmap="cool", alpha=0.7)
        axes[row, 0].set_ylabel(f"{r0.kind[i]}", fontsize=8)
    for c, t in enumerate(cols):
        axes[0, c].set_title(t, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def example_indices(res: MethodResults, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` healthy and ``n`` lesioned slice indices, drawn with ``seed``."""
    has_lesion = res.lesion.reshape(len(res.lesion), -1).any(1)
    rng = np.random.default_rng(seed)
    healthy = rng.choice(np.flatnonzero(~has_lesion), min(n, int((~has_lesion).sum())), replace=False)
    lesioned = rng.choice(np.flatnonzero(has_lesion), min(n, int(has_lesion.sum())), replace=False)
    return healthy, lesioned
