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
    split: np.ndarray,
    has_lesion: np.ndarray,
    max_per_split: int = 0,
    seed: int = 0,
    kind: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of at most ``max_per_split`` slices of each of ``val`` and ``test`` (0: all), sorted.

    Latent restoration costs seconds per slice on a CPU; the quick profile evaluates a subset. Up to
    half of each split's pick are lesioned slices, the rest healthy, drawn with ``seed``. With ``kind``, the
    lesioned pick is spread evenly over the lesion kinds (each kind gets ``n // K`` slices, the remainder and a
    kind's shortfall go to the others at random), so every kind's AUROC rests on about as many positives
    (issue 11: per-kind intervals).

    Args:
        split: (N,) split names.
        has_lesion: (N,) bool.
        max_per_split: cap per split.
        seed: random seed of the draw.
        kind: (N,) lesion kind of each slice's scan, or None for a draw that ignores kinds.

    Returns:
        Sorted int indices into the N slices (only val and test).

    Raises:
        ValueError: if ``kind`` is given with another length than ``split``.
    """
    if kind is not None and len(kind) != len(split):
        raise ValueError(f"kind has {len(kind)} entries for {len(split)} slices")
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
        pick = (
            _stratified(les, np.asarray(kind)[les], n_les, rng)
            if kind is not None
            else rng.choice(les, n_les, replace=False)
        )
        keep += [pick, rng.choice(hea, n_hea, replace=False)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, int)


def _stratified(idx: np.ndarray, kind: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``idx`` without replacement, as evenly over the values of ``kind`` as their counts allow."""
    groups = [rng.permutation(idx[kind.astype(str) == k]) for k in np.unique(kind.astype(str))]
    take = np.zeros(len(groups), int)
    left = n
    while left > 0:
        open_ = [i for i, g in enumerate(groups) if take[i] < len(g)]
        if not open_:
            break
        share = max(1, left // len(open_))
        for i in rng.permutation(open_):
            t = min(share, len(groups[i]) - take[i], left)
            take[i] += t
            left -= t
            if left == 0:
                break
    return np.concatenate([g[:t] for g, t in zip(groups, take)]) if groups else np.zeros(0, int)
