"""CT preprocessing as the seeds did it, each step a parameter of :class:`PreprocessParams`.

The road from a :class:`~ctad_core.data.io.Scan` to the arrays notebook 01 writes:

1. **Working grid** — Gaussian smoothing, then linear resampling to ``target_spacing`` (isotropic 1 mm by
   default, as CTFSH did before registration). Smoothing before any down-sampling uses σ = (s_out − s_in)/2
   mm per axis (the anti-aliasing rule of scikit-image's ``rescale``).
2. **Masks** (:func:`skull_strip`) on a coarse ``mask_spacing`` grid: head = largest component above
   ``head_hu`` with holes filled; brain = soft tissue (``brain_hu``) inside the head, away from bone
   (> ``bone_hu``), eroded by ``erode_mm`` to cut the thin links to scalp and orbits, largest component,
   dilated back, holes filled (ventricles, calcifications).
3. **Alignment** (optional) to a template in HU (any volume + spacing, e.g. a phantom): SimpleITK
   Mattes mutual information, rigid (Euler) then affine, multi-resolution, started from the head centroids.
   Viana et al. registered affinely to MNI; CTFSH non-linearly (not offered here).
4. **Field of view and model shape** — aligned: the template's field of view; otherwise the bounding box of
   the head (or brain) plus ``margin_mm``, padded with air to the model's aspect ratio (``fit="pad"``) or
   stretched (``fit="stretch"``; Viana's "black boundaries removed" then resize). One smoothed linear
   resampling from the working grid onto the ``model_shape`` grid.
5. **Skull stripping** (optional; CTFSH compared both): voxels outside the brain mask become air (−1000 HU).
6. **Window** (optional): clip HU to a window of :mod:`ctad_core.data.windows` (the models map HU to [−1, 1]
   with :func:`ctad_core.data.windows.to_model` themselves, so volumes stay in HU).
7. **2D slices** — mid-axial selection (Walluscheck et al. used mid-axial brain slices): ``n_slices`` planes
   of the volume's z grid around the brain's centroid (or its largest cross-section, or a given world z),
   resampled in-plane to ``slice_shape``; slices with less than ``min_brain_fraction`` brain are dropped.

:func:`preprocess_path` wraps :func:`~ctad_core.data.io.load_scan` + :func:`preprocess_scan` with a cache keyed
on the input files' paths, sizes and modification times and on all parameters, so a second run reads ``.npz``
files instead of redoing the work.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ctad_core.data.io import AIR_HU, Scan, load_scan
from ctad_core.data.masks import exclude_bone_partial_volume
from ctad_core.data.nifti import centred_affine
from ctad_core.data.windows import window_bounds
from ctad_core.utils import save_npz

_LPS_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Part of every cache key: bump when loading or preprocessing gives other results for the same inputs
#: (pp3: the loader rules of issue 12 — slab-aware z grid, outliers, duplicates, rescale, bit masking).
_CACHE_VERSION = "pp3"


@dataclass(frozen=True)
class PreprocessParams:
    """Preprocessing settings (literals only, so they can live in a notebook's parameters cell).

    Attributes:
        target_spacing: working grid spacing in mm (float: isotropic; (z, y, x); None: keep the scan's).
        smooth: Gaussian smoothing before every down-sampling.
        mask_spacing: isotropic grid (mm) on which masks and registration are computed.
        head_hu: head = above this HU (largest component, holes filled).
        bone_hu: bone = above this HU.
        brain_hu: (low, high) HU of intracranial soft tissue.
        erode_mm: erosion radius that separates brain from scalp, orbits and neck.
        skull_strip: True: voxels outside the brain become air; False: full head.
        align: ``"none"``, ``"rigid"`` or ``"affine"`` registration to the atlas given to :func:`preprocess_scan`.
        align_iterations: optimiser iterations per resolution level.
        crop: without alignment, the field of view: ``"head"`` or ``"brain"`` bounding box, or ``"none"``.
        margin_mm: margin around that box.
        fit: ``"pad"`` (keep proportions, pad with air) or ``"stretch"`` (fill the model shape).
        model_shape: (D, H, W) of the 3D volume.
        window: clip HU to this window (preset name or (lower, upper)); None: no clipping.
        slice_shape: (h, w) of the 2D slices; None: the volume's (H, W).
        n_slices: number of mid-axial slices to take.
        slice_stride: take every ``slice_stride``-th plane of the volume's z grid.
        mid_axial: ``"centroid"`` (brain centroid), ``"max_area"`` (largest brain cross-section) or a world
            z in mm (RAS S coordinate of the output grid, e.g. a template's ventricle level).
        min_brain_fraction: drop 2D slices whose brain mask covers less than this fraction of the plane.
        seed: seed of the registration's random sampling.
    """

    target_spacing: float | tuple[float, float, float] | None = 1.0
    smooth: bool = True
    mask_spacing: float = 2.0
    head_hu: float = -300.0
    bone_hu: float = 300.0
    brain_hu: tuple[float, float] = (-15.0, 100.0)
    erode_mm: float = 4.0
    skull_strip: bool = False
    align: Literal["none", "rigid", "affine"] = "none"
    align_iterations: int = 60
    crop: Literal["head", "brain", "none"] = "head"
    margin_mm: float = 5.0
    fit: Literal["pad", "stretch"] = "pad"
    model_shape: tuple[int, int, int] = (64, 64, 64)
    window: str | tuple[float, float] | None = None
    slice_shape: tuple[int, int] | None = (128, 128)
    n_slices: int = 5
    slice_stride: int = 1
    mid_axial: str | float = "centroid"
    min_brain_fraction: float = 0.05
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> PreprocessParams:
        """Build from a (YAML/JSON) dict; lists become tuples; unknown keys raise ``ValueError``."""
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown preprocessing parameters {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class Preprocessed:
    """What :func:`preprocess_scan` returns.

    Attributes:
        volume: (D, H, W) float32 HU at the model shape.
        brain: (D, H, W) uint8 brain mask.
        head: (D, H, W) uint8 head mask.
        affine: 4×4, (z, y, x) indices of ``volume`` → RAS+ mm (the scan's world, or the atlas's when aligned).
        slices: (K, h, w) float32 HU, mid-axial planes of the volume's z grid.
        slice_brain: (K, h, w) uint8.
        slice_index: (K,) offset of each slice from the mid-axial plane in steps of ``slice_stride`` (0 = the
            mid-axial plane), as the phantom set numbers its slices.
        slice_z: (K,) z index of each slice in ``volume``.
        slice_source: (K, 2) int, the range (first, last) of source slices (``Scan.source_index`` values) that
            each 2D slice's brain region crosses; (-1, -1) when it has no brain.
        lesion: (D, H, W) uint8 label map when one was given, else None.
        slice_lesion: (K, h, w) uint8 or None.
        transform: 4×4 RAS matrix mapping output world points to scan world points (identity unless aligned).
        meta: the scan's technical meta; ``info``: timings, brain volume, registration metric.
        sources: the scan's source files (``Scan.sources``).
    """

    volume: np.ndarray
    brain: np.ndarray
    head: np.ndarray
    affine: np.ndarray
    slices: np.ndarray
    slice_brain: np.ndarray
    slice_index: np.ndarray
    slice_z: np.ndarray
    slice_source: np.ndarray
    lesion: np.ndarray | None = None
    slice_lesion: np.ndarray | None = None
    transform: np.ndarray = field(default_factory=lambda: np.eye(4))
    meta: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()


# ----------------------------------------------------------------------------------------------- SimpleITK glue


def to_sitk(vol: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A (z, y, x) array with its RAS (z, y, x)-index affine as a SimpleITK image (LPS physical space)."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(vol))
    a = _LPS_RAS @ np.asarray(affine, dtype=np.float64)
    sp = np.linalg.norm(a[:3, :3], axis=0)
    d = np.stack([a[:3, 2] / sp[2], a[:3, 1] / sp[1], a[:3, 0] / sp[0]], axis=1)
    img.SetSpacing((float(sp[2]), float(sp[1]), float(sp[0])))
    img.SetDirection(tuple(d.ravel()))
    img.SetOrigin(tuple(a[:3, 3]))
    return img


def _grid(shape: Sequence[int], affine: np.ndarray) -> sitk.Image:
    ref = sitk.Image([int(shape[2]), int(shape[1]), int(shape[0])], sitk.sitkUInt8)
    tmp = to_sitk(np.zeros((1, 1, 1), np.uint8), affine)
    ref.SetSpacing(tmp.GetSpacing())
    ref.SetDirection(tmp.GetDirection())
    ref.SetOrigin(tmp.GetOrigin())
    return ref


def _smooth_for(img: sitk.Image, out_spacing_xyz: Sequence[float]) -> sitk.Image:
    """Anti-alias ``img`` for resampling to ``out_spacing``.

    Integer down-sampling factors are first taken by block averaging (``BinShrink``, a box filter: fast on
    512² × 200 slices), then a Gaussian of σ = (s_out − s)/2 mm per axis covers what remains.
    """
    out = img
    pid = img.GetPixelID()
    shrink = [max(1, int(np.floor(so / si + 1e-6))) if n >= 8 * max(1, int(so / si)) else 1
              for si, so, n in zip(img.GetSpacing(), out_spacing_xyz, img.GetSize())]
    if max(shrink) > 1:
        out = sitk.BinShrink(out, shrink)
    for axis, (s_in, s_out) in enumerate(zip(out.GetSpacing(), out_spacing_xyz)):
        sigma = (s_out - s_in) / 2.0
        if sigma > 0.25 * s_in and out.GetSize()[axis] > 3:
            f = sitk.RecursiveGaussianImageFilter()
            f.SetDirection(axis)
            f.SetSigma(float(sigma))
            out = f.Execute(out)
    return sitk.Cast(out, pid) if out.GetPixelID() != pid else out


def _resample(img: sitk.Image, shape: Sequence[int], affine: np.ndarray, transform: sitk.Transform | None = None,
              interp: int = sitk.sitkLinear, fill: float = AIR_HU, smooth: bool = True) -> np.ndarray:
    ref = _grid(shape, affine)
    if smooth:
        # The output may be rotated with respect to the input: smooth for its coarsest spacing.
        img = _smooth_for(img, [max(ref.GetSpacing())] * 3)
    out = sitk.Resample(img, ref, transform if transform is not None else sitk.Transform(), interp, float(fill),
                        img.GetPixelID())
    return sitk.GetArrayFromImage(out)


def resize_grid(shape: Sequence[int], affine: np.ndarray, new_shape: Sequence[int]) -> np.ndarray:
    """Affine of a grid of ``new_shape`` covering the same field of view (voxel edges) as ``shape``/``affine``."""
    a = np.array(affine, dtype=np.float64)
    scale = np.asarray(shape, dtype=np.float64) / np.asarray(new_shape, dtype=np.float64)
    out = a.copy()
    out[:3, :3] = a[:3, :3] * scale[None, :]
    out[:3, 3] = a[:3, :3] @ ((scale - 1.0) / 2.0) + a[:3, 3]
    return out


def resample_to_spacing(
    hu: np.ndarray, affine: np.ndarray, spacing: float | Sequence[float], smooth: bool = True,
    order: Literal[0, 1] = 1, fill: float = AIR_HU,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample a (z, y, x) volume to a target spacing, same orientation and field of view.

    Args:
        hu: (z, y, x) array.
        affine: its (z, y, x)-index → RAS affine.
        spacing: target (z, y, x) mm, or one number for isotropic.
        smooth: Gaussian anti-aliasing before down-sampling (σ = (s_out − s_in)/2 mm per axis).
        order: 1 linear, 0 nearest (masks).
        fill: value outside the input.

    Returns:
        (volume, affine) on the new grid; shape = round(extent / spacing).
    """
    sp_in = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    sp = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
    shape = np.maximum(1, np.round(np.asarray(hu.shape) * sp_in / sp)).astype(int)
    new_aff = resize_grid(hu.shape, affine, shape)
    img = to_sitk(hu.astype(np.float32) if order == 1 else hu, affine)
    interp = sitk.sitkLinear if order == 1 else sitk.sitkNearestNeighbor
    out = _resample(img, shape, new_aff, None, interp, fill, smooth=smooth and order == 1)
    return out, new_aff


# ----------------------------------------------------------------------------------------------- masks


def _erode(mask: np.ndarray, radius_mm: float, spacing: Sequence[float]) -> np.ndarray:
    """Erosion by a ball of ``radius_mm`` (exact, via the Euclidean distance transform; outside counts as empty)."""
    padded = np.pad(mask, 1)
    d = ndimage.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]
    return d > radius_mm


def _dilate(mask: np.ndarray, radius_mm: float, spacing: Sequence[float]) -> np.ndarray:
    """Dilation by a ball of ``radius_mm`` (via the distance transform of the background)."""
    if not mask.any():
        return mask.copy()
    return ndimage.distance_transform_edt(~mask, sampling=spacing) <= radius_mm


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask.astype(bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _holes(mask: np.ndarray, structure: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Background components of ``mask`` that touch no border along ``axes``."""
    lab, n = ndimage.label(~mask, structure=structure)
    if n == 0:
        return np.zeros(mask.shape, bool)
    border = np.zeros(n + 1, bool)
    for a in axes:
        for i in (0, -1):
            border[np.unique(np.take(lab, i, axis=a))] = True
    border[0] = True
    return ~border[lab]


def _fill(mask: np.ndarray) -> np.ndarray:
    """Fill holes in 3D, then in every axial plane (closes ventricles open at the volume's top or bottom)."""
    mask = mask.astype(bool)
    out = mask | _holes(mask, ndimage.generate_binary_structure(3, 1), (0, 1, 2))
    plane = np.zeros((3, 3, 3), bool)
    plane[1] = ndimage.generate_binary_structure(2, 1)
    return out | _holes(out, plane, (1, 2))


def skull_strip(
    hu: np.ndarray, spacing: Sequence[float], bone_hu: float = 300.0, brain_hu: tuple[float, float] = (-15.0, 100.0),
    head_hu: float = -300.0, erode_mm: float = 4.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Brain and head masks of a head CT by thresholds and morphology.

    Args:
        hu: (z, y, x) HU (best on a smoothed 1–2 mm grid).
        spacing: (z, y, x) mm.
        bone_hu: bone threshold.
        brain_hu: intracranial soft-tissue range.
        head_hu: head/air threshold.
        erode_mm: radius of the erosion that disconnects brain from extracranial soft tissue.

    Returns:
        (brain, head): (z, y, x) bool masks. The brain mask is empty (with a warning) when nothing fits.
    """
    head = _fill(_largest(hu > head_hu))
    bone = hu > bone_hu
    near_bone = _dilate(bone, min(spacing) * 1.01, spacing)
    soft = (hu >= brain_hu[0]) & (hu <= brain_hu[1]) & head & ~near_bone
    core = _erode(soft, erode_mm, spacing)
    if not core.any():
        warnings.warn("skull_strip: no brain-like tissue left after erosion; brain mask is empty", stacklevel=2)
        return np.zeros(hu.shape, bool), head
    core = _largest(core)
    brain = _dilate(core, erode_mm + min(spacing), spacing) & soft
    brain = _fill(_largest(brain)) & ~bone & head
    return brain, head


# ----------------------------------------------------------------------------------------------- registration


def _centroid_lps(mask_img: sitk.Image) -> np.ndarray:
    arr = sitk.GetArrayViewFromImage(mask_img)
    idx = np.argwhere(arr > 0)
    if not len(idx):
        return np.array(mask_img.TransformContinuousIndexToPhysicalPoint([s / 2 for s in mask_img.GetSize()]))
    c = idx.mean(0)[::-1]
    return np.array(mask_img.TransformContinuousIndexToPhysicalPoint([float(v) for v in c]))


def register_to_atlas(
    moving: sitk.Image, fixed: sitk.Image, moving_head: sitk.Image, fixed_head: sitk.Image,
    kind: Literal["rigid", "affine"] = "affine", iterations: int = 60, seed: int = 0,
) -> tuple[sitk.Transform, float]:
    """Register a scan (moving) to an atlas (fixed), both SimpleITK images in HU.

    Returns:
        (transform mapping fixed physical points to moving ones, final Mattes MI metric value).
    """
    fixed_c, moving_c = _centroid_lps(fixed_head), _centroid_lps(moving_head)
    rigid = sitk.Euler3DTransform()
    rigid.SetCenter(tuple(fixed_c))
    rigid.SetTranslation(tuple(moving_c - fixed_c))
    # Clip to the range that carries the head's shape (scalp, brain, bone); air is one value.
    fx = sitk.Clamp(sitk.Cast(fixed, sitk.sitkFloat32), sitk.sitkFloat32, -200.0, 1500.0)
    mv = sitk.Clamp(sitk.Cast(moving, sitk.sitkFloat32), sitk.sitkFloat32, -200.0, 1500.0)

    def run(tx: sitk.Transform) -> tuple[sitk.Transform, float]:
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        # About 20k samples per evaluation whatever the grid: enough for 12 affine parameters, and fast.
        reg.SetMetricSamplingPercentage(float(min(1.0, 2e4 / np.prod(fixed.GetSize()))), seed)
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-3, numberOfIterations=iterations,
                                                     gradientMagnitudeTolerance=1e-6)
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetShrinkFactorsPerLevel([2, 1])
        reg.SetSmoothingSigmasPerLevel([1.0, 0.0])
        reg.SetInitialTransform(tx, inPlace=False)
        out = reg.Execute(fx, mv)
        return out, float(reg.GetMetricValue())

    tx, metric = run(rigid)
    tx = _flatten(tx)
    if kind == "affine":
        aff = sitk.AffineTransform(3)
        aff.SetCenter(tuple(fixed_c))
        m = _matrix_lps(tx)
        aff.SetMatrix(tuple(m[:3, :3].ravel()))
        # Translation is relative to the centre: y = A (x − c) + c + t  →  t = A c + b − c.
        aff.SetTranslation(tuple(m[:3, :3] @ fixed_c + m[:3, 3] - fixed_c))
        tx, metric = run(aff)
        tx = _flatten(tx)
    return tx, metric


def _matrix_lps(tx: sitk.Transform) -> np.ndarray:
    """4×4 matrix of an affine-like transform (p_moving = M p_fixed), by probing points."""
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64) * 100.0
    img = np.array([tx.TransformPoint(tuple(p)) for p in pts])
    m = np.eye(4)
    m[:3, 3] = img[0]
    m[:3, :3] = ((img[1:] - img[0]) / 100.0).T
    return m


def _flatten(tx: sitk.Transform) -> sitk.AffineTransform:
    m = _matrix_lps(tx)
    out = sitk.AffineTransform(3)
    out.SetMatrix(tuple(m[:3, :3].ravel()))
    out.SetTranslation(tuple(m[:3, 3]))
    return out


@functools.lru_cache(maxsize=1)
def _phantom_atlas() -> tuple[np.ndarray, np.ndarray]:
    from ctad_core.data.phantom import atlas_phantom

    a = atlas_phantom()
    return a.hu, a.affine


def _atlas_image(atlas: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(atlas, str):
        if atlas != "phantom":
            raise ValueError(f"atlas {atlas!r}: the only named atlas is 'phantom' (the phantom template in HU)")
        return _phantom_atlas()
    if isinstance(atlas, Scan):
        return atlas.hu, atlas.affine
    if isinstance(atlas, tuple) and len(atlas) == 2:
        vol, geo = np.asarray(atlas[0], np.float32), np.asarray(atlas[1], np.float64)
        if vol.ndim != 3:
            raise ValueError(f"atlas volume must be (z, y, x), got shape {vol.shape}")
        if geo.shape == (4, 4):
            return vol, geo
        if geo.shape == (3,):
            return vol, centred_affine(vol.shape, tuple(geo))
    raise ValueError("atlas must be a Scan, (volume, (sz, sy, sx) spacing) or (volume, 4×4 affine)")


# ----------------------------------------------------------------------------------------------- main


def preprocess_scan(
    scan: Scan, params: PreprocessParams | dict[str, Any] | None = None, atlas: Any = None,
    lesion: np.ndarray | None = None,
) -> Preprocessed:
    """Preprocess one scan for the models (see the module docstring for the steps).

    Args:
        scan: the loaded scan (HU).
        params: :class:`PreprocessParams` (or a dict of its fields; None: defaults).
        atlas: used when ``params.align != "none"`` (default ``"phantom"``: the phantom template in HU,
            canonical pose): a :class:`Scan`, ``(volume, spacing)`` (centred
            at the origin, as phantoms are) or ``(volume, affine)``; volume (z, y, x) in HU.
        lesion: optional (z, y, x) uint8 label map on the scan's grid (e.g. PhysioNet masks), resampled by
            nearest neighbour alongside.

    Returns:
        :class:`Preprocessed` (volume (D, H, W) HU, masks, affine, 2D slices …).
    """
    p = params if isinstance(params, PreprocessParams) else PreprocessParams.from_dict(params)
    t0 = time.perf_counter()
    info: dict[str, Any] = {}
    if lesion is not None and lesion.shape != scan.hu.shape:
        raise ValueError(f"{scan.path}: lesion map shape {lesion.shape} != scan shape {scan.hu.shape}")
    if p.align != "none" and atlas is None:
        atlas = "phantom"  # the default CT atlas: the phantom template in HU, canonical pose
    img = to_sitk(scan.hu.astype(np.float32, copy=False), scan.affine)
    # 1. working grid
    work_aff = scan.affine
    if p.target_spacing is not None:
        sp = np.broadcast_to(np.asarray(p.target_spacing, dtype=np.float64), (3,))
        sp_in = np.linalg.norm(scan.affine[:3, :3], axis=0)
        shape = np.maximum(1, np.round(np.asarray(scan.hu.shape) * sp_in / sp)).astype(int)
        work_aff = resize_grid(scan.hu.shape, scan.affine, shape)
        work = _resample(img, shape, work_aff, smooth=False) if not p.smooth else _resample(img, shape, work_aff)
        img = to_sitk(work, work_aff)
        del work
    info["t_work"] = time.perf_counter() - t0
    # 2. masks on the coarse grid
    t = time.perf_counter()
    cshape = np.maximum(1, np.round(np.asarray(scan.hu.shape) * np.linalg.norm(scan.affine[:3, :3], axis=0)
                                    / p.mask_spacing)).astype(int)
    caff = resize_grid(scan.hu.shape, scan.affine, cshape)
    coarse = _resample(img, cshape, caff, smooth=p.smooth)
    brain_c, head_c = skull_strip(coarse, tuple(np.linalg.norm(caff[:3, :3], axis=0)), p.bone_hu, p.brain_hu,
                                  p.head_hu, p.erode_mm)
    info["brain_ml"] = float(brain_c.sum() * np.prod(np.linalg.norm(caff[:3, :3], axis=0)) / 1000.0)
    if not 300.0 <= info["brain_ml"] <= 2500.0:
        info.setdefault("warnings", []).append(f"brain mask of {info['brain_ml']:.0f} mL is implausible")
    info["t_masks"] = time.perf_counter() - t
    # 3. alignment
    t = time.perf_counter()
    transform: sitk.Transform | None = None
    if p.align != "none":
        avol, aaff = _atlas_image(atlas)
        a_sp = np.linalg.norm(aaff[:3, :3], axis=0)
        ashape = np.maximum(1, np.round(np.asarray(avol.shape) * a_sp / max(p.mask_spacing, a_sp.min()))).astype(int)
        acaff = resize_grid(avol.shape, aaff, ashape)
        acoarse = _resample(to_sitk(avol.astype(np.float32), aaff), ashape, acaff, smooth=p.smooth)
        ahead = _fill(_largest(acoarse > p.head_hu))
        transform, metric = register_to_atlas(
            to_sitk(coarse, caff), to_sitk(acoarse, acaff), to_sitk(head_c.astype(np.uint8), caff),
            to_sitk(ahead.astype(np.uint8), acaff), p.align, p.align_iterations, p.seed)
        info["registration_metric"] = metric
        out_aff = resize_grid(avol.shape, aaff, p.model_shape)
    else:
        out_aff = _fov_affine(brain_c if p.crop == "brain" else head_c, caff, p, scan)
    info["t_align"] = time.perf_counter() - t
    # 4. model grid
    t = time.perf_counter()
    shape = tuple(int(s) for s in p.model_shape)
    volume = _resample(img, shape, out_aff, transform, smooth=p.smooth).astype(np.float32)
    brain_img = to_sitk(brain_c.astype(np.float32), caff)
    head_img = to_sitk(head_c.astype(np.float32), caff)
    brain = (_resample(brain_img, shape, out_aff, transform, fill=0, smooth=False) > 0.5).astype(np.uint8)
    # the evaluation mask holds no bone partial volume: bone's share of each model voxel, smoothed as the image is
    bone_img = sitk.Cast(sitk.BinaryThreshold(img, float(p.bone_hu), 1e9, 1, 0), sitk.sitkFloat32)
    brain = exclude_bone_partial_volume(brain, _resample(bone_img, shape, out_aff, transform, fill=0, smooth=p.smooth))
    head = (_resample(head_img, shape, out_aff, transform, fill=0, smooth=False) > 0.5).astype(np.uint8)
    les = None
    les_img = None
    if lesion is not None:
        les_img = to_sitk(lesion.astype(np.uint8), scan.affine)
        les = _resample(les_img, shape, out_aff, transform, sitk.sitkNearestNeighbor, 0, smooth=False).astype(np.uint8)
    # 5.–6. strip, window
    if p.skull_strip:
        volume[brain == 0] = AIR_HU
    if p.window is not None:
        lo, hi = window_bounds(p.window)
        np.clip(volume, lo, hi, out=volume)
    info["t_volume"] = time.perf_counter() - t
    # 7. 2D slices
    t = time.perf_counter()
    zs = select_slices(brain, out_aff, p.n_slices, p.slice_stride, p.mid_axial, p.min_brain_fraction)
    mid = np.floor(mid_axial_plane(brain, out_aff, p.mid_axial) + 0.5)  # the plane select_slices centres on
    offsets = [int(np.floor((z - mid) / max(p.slice_stride, 1) + 0.5)) for z in zs]
    hw = tuple(p.slice_shape) if p.slice_shape is not None else shape[1:]
    sl, sb, sls, src = [], [], [], []
    sm, bone_sm = img, bone_img
    if zs and hw != shape[1:] and p.smooth:
        # Anti-alias for the slices' in-plane spacing and the volume's z spacing (a slab, like thick slices).
        g0 = resize_grid((1,) + shape[1:], out_aff, (1,) + hw)
        slab = [float(np.linalg.norm(g0[:3, 1:3], axis=0).max())] * 2 + [float(np.linalg.norm(out_aff[:3, 0]))]
        sm, bone_sm = _smooth_for(img, slab), _smooth_for(bone_img, slab)
    for z in zs:
        g_aff = resize_grid((1,) + shape[1:], _plane_affine(out_aff, z), (1,) + hw)
        if hw == shape[1:]:
            s_hu, s_br = volume[z].copy(), brain[z].copy()
            s_les = les[z].copy() if les is not None else None
        else:
            s_hu = _resample(sm, (1,) + hw, g_aff, transform, smooth=False)[0]
            s_br = (_resample(brain_img, (1,) + hw, g_aff, transform, fill=0, smooth=False)[0] > 0.5).astype(np.uint8)
            s_br = exclude_bone_partial_volume(s_br, _resample(bone_sm, (1,) + hw, g_aff, transform, fill=0, smooth=False)[0])
            s_les = (_resample(les_img, (1,) + hw, g_aff, transform, sitk.sitkNearestNeighbor, 0, smooth=False)[0]
                     .astype(np.uint8) if les_img is not None else None)
            if p.skull_strip:
                s_hu[s_br == 0] = AIR_HU
            if p.window is not None:
                np.clip(s_hu, *window_bounds(p.window), out=s_hu)
        sl.append(s_hu.astype(np.float32))
        sb.append(s_br)
        sls.append(s_les)
        src.append(_source_range(brain[z], out_aff, z, transform, scan))
    h, w = hw
    slices = np.stack(sl) if sl else np.zeros((0, h, w), np.float32)
    slice_brain = np.stack(sb) if sb else np.zeros((0, h, w), np.uint8)
    slice_lesion = (np.stack(sls) if sls else np.zeros((0, h, w), np.uint8)) if les is not None else None
    info["t_slices"] = time.perf_counter() - t
    info["t_total"] = time.perf_counter() - t0
    return Preprocessed(
        volume=volume, brain=brain, head=head, affine=out_aff, slices=slices, slice_brain=slice_brain,
        slice_index=np.asarray(offsets, dtype=np.int64), slice_z=np.asarray(zs, dtype=np.int64),
        slice_source=np.asarray(src, dtype=np.int64).reshape(-1, 2), lesion=les, slice_lesion=slice_lesion,
        transform=_ras_transform(transform), meta=dict(scan.meta), info=info, sources=tuple(scan.sources),
    )


def _fov_affine(mask: np.ndarray, caff: np.ndarray, p: PreprocessParams, scan: Scan) -> np.ndarray:
    """Output grid affine without alignment: bounding box (+ margin) of ``mask`` on the coarse grid."""
    shape = np.asarray(p.model_shape, dtype=np.float64)
    sp_c = np.linalg.norm(caff[:3, :3], axis=0)
    dirs = caff[:3, :3] / sp_c
    if p.crop == "none" or not mask.any():
        lo_w = np.zeros(3) - 0.5
        hi_w = np.asarray(mask.shape, dtype=np.float64) - 0.5
    else:
        idx = np.argwhere(mask)
        lo_w, hi_w = idx.min(0) - 0.5, idx.max(0) + 0.5
    extent = (hi_w - lo_w) * sp_c + 2 * p.margin_mm
    centre = caff[:3, :3] @ ((lo_w + hi_w) / 2.0) + caff[:3, 3]
    spacing = extent / shape if p.fit == "stretch" else np.full(3, (extent / shape).max())
    a = np.eye(4)
    a[:3, :3] = dirs * spacing[None, :]
    a[:3, 3] = centre - a[:3, :3] @ ((shape - 1) / 2.0)
    return a


def _plane_affine(aff: np.ndarray, z: int) -> np.ndarray:
    a = np.array(aff, dtype=np.float64)
    a[:3, 3] = a[:3, 3] + a[:3, 0] * z
    return a


def _ras_transform(tx: sitk.Transform | None) -> np.ndarray:
    if tx is None:
        return np.eye(4)
    return _LPS_RAS @ _matrix_lps(tx) @ _LPS_RAS


def _source_range(plane_brain: np.ndarray, aff: np.ndarray, z: int, tx: sitk.Transform | None,
                  scan: Scan) -> tuple[int, int]:
    """Range of source slices (``scan.source_index``) the plane's brain region crosses."""
    if len(scan.source_index) == 0:
        return (-1, -1)
    yx = np.argwhere(plane_brain > 0)
    if not len(yx):
        yx = np.argwhere(np.ones(plane_brain.shape, bool))
    if len(yx) > 400:
        yx = yx[np.linspace(0, len(yx) - 1, 400).astype(int)]
    idx = np.c_[np.full(len(yx), z), yx, np.ones(len(yx))]
    world = (aff @ idx.T).T[:, :3]
    m = _ras_transform(tx)
    world = (m[:3, :3] @ world.T).T + m[:3, 3]
    sidx = (np.linalg.inv(scan.affine) @ np.c_[world, np.ones(len(world))].T).T[:, scan.slice_axis]
    n = len(scan.source_index)
    inside = (sidx > -0.5) & (sidx < n - 0.5)
    if not inside.any():
        return (-1, -1)
    src = scan.source_index[np.clip(np.round(sidx[inside]).astype(int), 0, n - 1)]
    return (int(src.min()), int(src.max()))


def mid_axial_plane(brain: np.ndarray, affine: np.ndarray, mid_axial: str | float = "centroid") -> float:
    """The (fractional) z index of the mid-axial plane of a (D, H, W) brain mask (see :func:`select_slices`)."""
    d = brain.shape[0]
    area = brain.reshape(d, -1).mean(1)
    if isinstance(mid_axial, (int, float)) and not isinstance(mid_axial, bool):
        centre = affine @ np.r_[(np.asarray(brain.shape) - 1) / 2.0, 1.0]
        centre[2] = float(mid_axial)
        return float((np.linalg.inv(affine) @ centre)[0])
    if not area.any():
        return (d - 1) / 2.0
    if mid_axial == "max_area":
        return float(np.argmax(area))
    if mid_axial == "centroid":
        return float((np.arange(d) * area).sum() / area.sum())
    raise ValueError(f"mid_axial must be 'centroid', 'max_area' or a world z in mm, got {mid_axial!r}")


def select_slices(
    brain: np.ndarray, affine: np.ndarray, n_slices: int = 5, stride: int = 1, mid_axial: str | float = "centroid",
    min_brain_fraction: float = 0.05,
) -> list[int]:
    """Mid-axial slice selection with a brain-content filter.

    Args:
        brain: (D, H, W) brain mask of the volume.
        affine: its (z, y, x)-index → RAS affine (for a world ``mid_axial``).
        n_slices: how many planes to take around the middle.
        stride: step between taken planes (in z indices).
        mid_axial: ``"centroid"``, ``"max_area"`` or a world z (mm, RAS S) of the middle plane.
        min_brain_fraction: drop planes whose brain covers less than this fraction.

    Returns:
        Sorted z indices (possibly fewer than ``n_slices``; empty when no plane has enough brain).
    """
    d = brain.shape[0]
    area = brain.reshape(d, -1).mean(1)
    if n_slices <= 0 or not area.any():
        return []
    mid = mid_axial_plane(brain, affine, mid_axial)
    offs = (np.arange(n_slices) - (n_slices - 1) / 2.0) * stride
    zs = sorted({int(np.clip(np.floor(mid + o + 0.5), 0, d - 1)) for o in offs})
    return [z for z in zs if area[z] >= min_brain_fraction]


# ----------------------------------------------------------------------------------------------- cache


def _input_files(path: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if not isinstance(path, (str, os.PathLike)):
        return sorted(Path(f) for f in path)
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    return [p]


def cache_key(inputs: Sequence[Path], params: PreprocessParams, extra: dict[str, Any] | None = None) -> str:
    """SHA-256 over the inputs' (absolute path, size, mtime) and all parameters."""
    h = hashlib.sha256(_CACHE_VERSION.encode())
    for f in inputs:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(asdict(params), sort_keys=True, default=str).encode())
    h.update(json.dumps(extra or {}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def atlas_digest(atlas: Any) -> str:
    """Short digest of an atlas (volume bytes and geometry) for cache keys; ``""`` for None."""
    if atlas is None:
        return ""
    vol, aff = _atlas_image(atlas)
    h = hashlib.sha256(np.ascontiguousarray(vol, dtype=np.float32).tobytes())
    h.update(np.asarray(aff, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


_ARRAYS = ("volume", "brain", "head", "affine", "slices", "slice_brain", "slice_index", "slice_z", "slice_source",
           "transform")


def _save_cached(path: Path, r: Preprocessed) -> None:
    arrays = {k: getattr(r, k) for k in _ARRAYS}
    if r.lesion is not None:
        arrays["lesion"] = r.lesion
        arrays["slice_lesion"] = r.slice_lesion
    doc = json.dumps({"meta": r.meta, "info": r.info, "sources": list(r.sources)}, default=str)
    save_npz(path, _json=np.frombuffer(doc.encode(), dtype=np.uint8), **arrays)


def _load_cached(path: Path) -> Preprocessed:
    with np.load(path, allow_pickle=False) as z:
        doc = json.loads(bytes(z["_json"]).decode())
        kw = {k: z[k] for k in _ARRAYS}
        les = z["lesion"] if "lesion" in z else None
        sles = z["slice_lesion"] if "slice_lesion" in z else None
    return Preprocessed(**kw, lesion=les, slice_lesion=sles, meta=doc["meta"], info=doc["info"],
                        sources=tuple(doc["sources"]))


def preprocess_path(
    path: str | os.PathLike | Sequence[str | os.PathLike], params: PreprocessParams | dict[str, Any] | None = None,
    *, atlas: Any = None, cache_dir: str | os.PathLike | None = None, lesion_path: str | os.PathLike | None = None,
    load_kwargs: dict[str, Any] | None = None,
) -> Preprocessed:
    """Load (:func:`~ctad_core.data.io.load_scan`) and preprocess one scan, with an on-disk cache.

    Args:
        path: what :func:`~ctad_core.data.io.load_scan` accepts.
        params: preprocessing parameters.
        atlas: see :func:`preprocess_scan`.
        cache_dir: where cached results live (``<cache_dir>/<key[:2]>/<key>.npz``); None: no cache.
        lesion_path: optional NIfTI label map aligned with the scan (e.g. PhysioNet ``masks/NNN.nii``);
            values > 0 keep their value (255 becomes 1).
        load_kwargs: passed to :func:`~ctad_core.data.io.load_scan` (``series``, ``tilt`` …).

    Returns:
        :class:`Preprocessed`; ``info["cache"]`` is ``"hit"``, ``"miss"`` or ``"off"``.
    """
    p = params if isinstance(params, PreprocessParams) else PreprocessParams.from_dict(params)
    load_kwargs = dict(load_kwargs or {})
    target: Path | None = None
    if cache_dir is not None:
        inputs = _input_files(path) + ([Path(lesion_path)] if lesion_path else [])
        key = cache_key(inputs, p, {"atlas": atlas_digest(atlas), "load": load_kwargs})
        target = Path(cache_dir) / key[:2] / f"{key}.npz"
        if target.is_file():
            try:
                r = _load_cached(target)
                r.info["cache"] = "hit"
                return r
            except Exception as e:  # a broken cache entry is recomputed, never trusted
                warnings.warn(f"{target}: unreadable cache entry ({e}); recomputing", stacklevel=2)
    scan = load_scan(path, **load_kwargs)
    lesion = None
    if lesion_path is not None:
        lesion = load_lesion_for(scan, lesion_path)
    r = preprocess_scan(scan, p, atlas=atlas, lesion=lesion)
    r.info["cache"] = "off"
    if target is not None:
        _save_cached(target, r)
        r.info["cache"] = "miss"
    return r


def load_lesion_for(scan: Scan, lesion_path: str | os.PathLike) -> np.ndarray:
    """Read a NIfTI label map that belongs to ``scan`` (same grid); 0/255 masks become 0/1.

    Raises:
        ValueError: naming the file when its grid matches neither the scan nor its in-plane transpose.
    """
    from ctad_core.data.nifti import load_nifti

    lab, aff = load_nifti(lesion_path, np.float32)
    if lab.shape != scan.hu.shape:
        if lab.transpose(0, 2, 1).shape == scan.hu.shape:
            warnings.warn(f"{lesion_path}: in-plane axes transposed with respect to the scan; transposing",
                          stacklevel=2)
            lab = lab.transpose(0, 2, 1)
        else:
            raise ValueError(f"{lesion_path}: mask shape {lab.shape} does not match the scan's {scan.hu.shape}")
    elif not np.allclose(aff, scan.affine, atol=1e-2):
        warnings.warn(f"{lesion_path}: affine differs from the scan's; using the scan's grid", stacklevel=2)
    lab = np.rint(lab)
    if lab.max() > 250:
        lab = (lab > 0).astype(np.float32)
    return lab.astype(np.uint8)
