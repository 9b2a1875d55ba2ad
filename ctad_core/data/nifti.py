"""NIfTI read/write in the workbook's convention: arrays (z, y, x), affines mapping (z, y, x) indices to RAS+ mm.

On disk the data are written (x, y, z) with the matching affine, as viewers expect; either way a volume or
anomaly map saved here opens aligned with its source in 3D Slicer or ITK-SNAP, because alignment is carried
by the affine.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from ctad_core.utils import atomic_write

# Swapping the index order (z, y, x) <-> (x, y, z) permutes the affine's first three columns.
_SWAP = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


def zyx_affine(
    spacing: tuple[float, float, float], origin: tuple[float, float, float] | None = None
) -> np.ndarray:
    """Affine for an axial (z, y, x) volume in RAS+: x→R, y→A, z→S with the given spacing (mm).

    ``origin`` is the world position of voxel (0, 0, 0); by default the volume is centred on 0.
    """
    sz, sy, sx = (float(s) for s in spacing)
    a = np.array([[0, 0, sx, 0], [0, sy, 0, 0], [sz, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
    if origin is not None:
        a[:3, 3] = origin
    return a


def centred_affine(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """(z, y, x) affine with the volume's centre at world (0, 0, 0)."""
    a = zyx_affine(spacing)
    centre = a[:3, :3] @ ((np.asarray(shape, dtype=np.float64) - 1) / 2.0)
    a[:3, 3] = -centre
    return a


def save_nifti(
    path: str | os.PathLike, volume: np.ndarray, affine: np.ndarray, dtype: np.dtype | type | None = None
) -> Path:
    """Write a (z, y, x) volume to NIfTI atomically.

    Args:
        path: ``.nii`` or ``.nii.gz``.
        volume: (z, y, x) array.
        affine: 4×4 mapping (z, y, x) indices to RAS+ mm.
        dtype: on-disk dtype (default: the array's).
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"save_nifti expects a (z, y, x) volume, got shape {vol.shape}")
    if dtype is not None:
        vol = vol.astype(dtype)
    data = np.ascontiguousarray(np.transpose(vol, (2, 1, 0)))
    img = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64) @ _SWAP)
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    img.header.set_xyzt_units("mm")
    suffix = ".nii.gz" if str(path).endswith(".nii.gz") else ".nii"
    return atomic_write(path, lambda p: _save(img, p, suffix))


def _save(img: nib.Nifti1Image, tmp: Path, suffix: str) -> None:
    # nibabel chooses compression from the file name, so write under a name with the right suffix.
    target = tmp.with_name(tmp.name + suffix)
    nib.save(img, str(target))
    os.replace(target, tmp)


class NiftiError(ValueError):
    """A NIfTI file holds no usable 3D volume; the message names the file once.

    Attributes:
        path: the file.
        problem: what is wrong, without the path.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def load_nifti(path: str | os.PathLike, dtype: np.dtype | type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI as a (z, y, x) array and its (z, y, x)-index affine.

    The volume is reoriented to the closest canonical RAS+ orientation first, so axis 0 runs inferior →
    superior whatever the file's storage order. Length-1 axes after the third (``dim[4:]`` of the NIfTI-1
    header: time, vector components; shape (x, y, z, 1, 1) as some converters write) are dropped, as nibabel's
    ``squeeze_image`` does.

    Raises:
        NiftiError: more than three axes of length > 1 (a time series or vector image), or fewer than three.
    """
    raw = nib.load(str(path))
    img = nib.as_closest_canonical(raw)
    data = np.asarray(img.dataobj, dtype=dtype)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise NiftiError(path, f"expected a 3D volume, got shape {raw.shape}")
    return np.ascontiguousarray(np.transpose(data, (2, 1, 0))), img.affine @ _SWAP
