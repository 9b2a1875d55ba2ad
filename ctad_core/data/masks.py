"""The evaluation mask: brain without bone partial volume, for phantoms and real scans alike.

A brain mask made as "more than half intracranial" keeps the outermost intracranial voxel layer, which is
partly bone: at the workbook's grids 5 % of such a mask read above 150 HU, all on the brain–skull boundary,
so every pixel metric counted that boundary as brain. A CT pipeline's brain mask holds soft tissue only;
here a voxel stays in the mask when bone's share of its signal — the bone occupancy through the scanner's
blur, the voxel and the slice profile — is at most :data:`BONE_PV_MAX`.

>>> import numpy as np
>>> exclude_bone_partial_volume(np.array([1, 1, 1, 0], np.uint8), np.array([0.0, 0.01, 0.2, 0.0])).tolist()
[1, 1, 0, 0]
"""

from __future__ import annotations

import numpy as np

#: Most bone share of a voxel's signal the brain (evaluation) mask admits: 1 % of cortical bone (~1500 HU
#: above brain) shifts a voxel by ~15 HU, the contrast of a faint lesion.
BONE_PV_MAX = 0.01


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
