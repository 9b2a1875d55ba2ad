"""The evaluation mask: brain without bone partial volume, for phantoms and real scans alike.

A brain mask made as "more than half intracranial" keeps the outermost intracranial voxel layer, which is
partly bone: at the workbook's grids 5 % of such a mask read above 150 HU, all on the brain–skull boundary,
so every pixel metric counted that boundary as brain. A CT pipeline's brain mask holds soft tissue only;
here a voxel stays in the mask when bone's share of its signal — the bone occupancy through the scanner's
blur, the voxel and the slice profile — is at most :data:`BONE_PV_MAX`.

Full-head models (CTFSH without skull stripping) also model what lies outside the brain — a skull
fracture, the scalp — which no brain mask can score; for those figures there is the **head mask** of
:func:`head_mask` (body minus air, as a CT pipeline makes it: threshold, largest component, holes filled).

>>> import numpy as np
>>> exclude_bone_partial_volume(np.array([1, 1, 1, 0], np.uint8), np.array([0.0, 0.01, 0.2, 0.0])).tolist()
[1, 1, 0, 0]
"""

from __future__ import annotations

import numpy as np

#: Most bone share of a voxel's signal the brain (evaluation) mask admits: 1 % of cortical bone (~1500 HU
#: above brain) shifts a voxel by ~15 HU, the contrast of a faint lesion.
BONE_PV_MAX = 0.01
#: HU above which a voxel belongs to the head (air is −1000 HU, fat about −100 HU): the head mask's threshold.
HEAD_HU = -500.0


def exclude_bone_partial_volume(brain: np.ndarray, bone_fraction: np.ndarray, max_bone: float = BONE_PV_MAX) -> np.ndarray:
    """``brain`` without the voxels whose bone share of the signal exceeds ``max_bone``.

    Args:
        brain: (...) bool or 0/1 brain mask.
        bone_fraction: (...) float in [0, 1], same shape: bone's share of each voxel's signal.
        max_bone: largest admitted share.

    Returns:
        (...) uint8 mask.

    Raises:
        ValueError: shapes differ, or ``max_bone`` outside [0, 1).
    """
    brain = np.asarray(brain)
    bone_fraction = np.asarray(bone_fraction)
    if brain.shape != bone_fraction.shape:
        raise ValueError(f"brain mask {brain.shape} and bone fraction {bone_fraction.shape} differ in shape")
    if not 0.0 <= max_bone < 1.0:
        raise ValueError(f"max_bone must be in [0, 1), got {max_bone}")
    return ((brain != 0) & (bone_fraction <= max_bone)).astype(np.uint8)


def head_mask(image_hu: np.ndarray, threshold: float = HEAD_HU) -> np.ndarray:
    """The head (body minus air) of CT volumes or slices, as a CT pipeline's head mask.

    Rule: voxels above ``threshold`` HU; per item, the largest connected component (face connectivity) —
    dropping the couch, noise specks and anything apart from the head; then holes filled, in 3D and in every
    axial slice (an air cavity open to the outside in 3D, e.g. a sinus cut by the field of view, is closed
    within its slice).

    Args:
        image_hu: (N, D, H, W) volumes or (N, H, W) slices in HU.
        threshold: HU above which a voxel is tissue (default :data:`HEAD_HU`).

    Returns:
        uint8 mask of ``image_hu``'s shape (an item without tissue is all zero).

    Raises:
        ValueError: ``image_hu`` is not 3-D or 4-D (items first), or holds NaN.
    """
    from scipy import ndimage

    x = np.asarray(image_hu)
    if x.ndim not in (3, 4):
        raise ValueError(f"head_mask expects (N, H, W) slices or (N, D, H, W) volumes, got shape {x.shape}")
    if np.isnan(x).any():
        raise ValueError("head_mask: the image holds NaN voxels")
    out = np.zeros(x.shape, np.uint8)
    for i, item in enumerate(x):
        body = item > threshold
        lab, n = ndimage.label(body)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())[1:]
        body = lab == (int(np.argmax(sizes)) + 1)
        body = ndimage.binary_fill_holes(body)
        if body.ndim == 3:
            for z in range(body.shape[0]):
                body[z] = ndimage.binary_fill_holes(body[z])
        out[i] = body
    return out
