"""Model inputs for the volumetric methods: windowing, skull stripping, mid-axial slices.

Volumes arrive as HU (``load_volumes``); the model range [-1, 1] comes only from
:func:`ctad_core.data.windows.to_model`. Skull stripping (CTFSH's "StripAE", Viana's and Luo's inputs) keeps
the voxels of the brain mask that ships with the data and sets everything else to the window's lower bound
(-1 in the model range).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctad_core.data.manifest import VolumeSet
from ctad_core.data.windows import to_model


def model_volumes(vs: VolumeSet, window: str | tuple[float, float], skull_strip: bool) -> np.ndarray:
    """Window HU volumes to [-1, 1], optionally skull-stripped.

    Args:
        vs: volumes (N, D, H, W) in HU with brain masks.
        window: window preset or (lower, upper) HU.
        skull_strip: keep only the brain mask; the rest becomes the window's lower bound (-1).

    Returns:
        (N, D, H, W) float32 in [-1, 1].

    Raises:
        ValueError: if a volume holds NaNs (names the scan).
    """
    bad = [str(s) for s, v in zip(vs.scan_id, vs.image) if not np.isfinite(v).all()]
    if bad:
        raise ValueError(f"volumes with NaN/inf voxels: {bad[:5]}")
    x = to_model(vs.image, window)
    if skull_strip:
        x = np.where(vs.brain > 0, x, np.float32(-1.0)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def mid_axial_range(depth: int, fraction: float) -> tuple[int, int]:
    """The central ``fraction`` of ``depth`` axial slices as ``(start, stop)`` (at least one slice)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"mid-axial fraction must be in (0, 1], got {fraction}")
    k = max(1, int(round(depth * fraction)))
    start = (depth - k) // 2
    return start, start + k


def axial_slices(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    """(N, D, H, W) → (N·(stop−start), H, W): slices ``start:stop`` of every volume, volume-major."""
    return np.ascontiguousarray(x[:, start:stop].reshape(-1, *x.shape[2:]))


@dataclass
class EvalItems:
    """What evaluation needs of the val/test volumes (a view on a :class:`VolumeSet`)."""

    x: np.ndarray  # (N, D, H, W) model range
    lesion: np.ndarray  # (N, D, H, W) uint8
    brain: np.ndarray  # (N, D, H, W) uint8
    scan_id: np.ndarray
    split: np.ndarray
    kind: np.ndarray
    label: np.ndarray
    affine: np.ndarray

    @classmethod
    def from_volumes(cls, vs: VolumeSet, window: str | tuple[float, float], skull_strip: bool) -> EvalItems:
        return cls(
            x=model_volumes(vs, window, skull_strip),
            lesion=vs.lesion,
            brain=vs.brain,
            scan_id=vs.scan_id,
            split=vs.split,
            kind=vs.kind,
            label=vs.label,
            affine=vs.affine,
        )

    def __len__(self) -> int:
        return int(self.x.shape[0])
