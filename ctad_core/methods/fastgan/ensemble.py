"""Seed 000's GAN ensemble on 2D slices: residual maps of every member, slice selection, mask resizing.

Each ensemble member m gives a residual map ``D_m = rho(x - G_m(z_m))``. The segmentation (threshold,
closing, strict majority vote; Walluscheck 2024, Sec. 2.2.4) is declared in the method's results and
applied by :mod:`ctad_core.evaluation.segmentation`; the threshold is chosen on validation by
:mod:`ctad_core.evaluation.thresholds`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ctad_core import anomaly


def resize_masks(mask: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of label maps (N, H, W) to (N, size, size), dtype kept."""
    if mask.shape[-2:] == (size, size):
        return mask
    t = torch.as_tensor(mask.astype(np.float32))[:, None]
    return F.interpolate(t, size=(size, size), mode="nearest")[:, 0].numpy().astype(mask.dtype)


def residual_maps(x: np.ndarray, recons: np.ndarray, mode: str = "abs") -> np.ndarray:
    """Residuals of every member: x (N, H, W), recons (M, N, H, W) → (M, N, H, W) float32."""
    return np.stack([anomaly.residual(x, r, mode) for r in recons]).astype(np.float32)


def stack_members(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """(M, N, H, W) from M arrays (N, H, W)."""
    return np.stack([np.asarray(a, np.float32) for a in arrays])


def select_slices(
    split: np.ndarray, has_lesion: np.ndarray, max_per_split: int = 0, seed: int = 0
) -> np.ndarray:
    """Indices of at most ``max_per_split`` slices of each of ``val`` and ``test`` (0: all), sorted.

    Latent restoration costs seconds per slice on a CPU; the quick profile evaluates a subset. Up to
    half of each split's pick are lesioned slices, the rest healthy, drawn with ``seed``.

    Args:
        split: (N,) split names.
        has_lesion: (N,) bool.
        max_per_split: cap per split.
        seed: random seed of the draw.

    Returns:
        Sorted int indices into the N slices (only val and test).
    """
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for s in ("val", "test"):
        idx = np.flatnonzero(split == s)
        if max_per_split <= 0 or len(idx) <= max_per_split:
            keep.append(idx)
            continue
        les, hea = idx[has_lesion[idx]], idx[~has_lesion[idx]]
        n_les = min(len(les), max(max_per_split // 2, max_per_split - len(hea)))
        n_hea = min(len(hea), max_per_split - n_les)
        keep += [rng.choice(les, n_les, replace=False), rng.choice(hea, n_hea, replace=False)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, int)



