"""Read real head CT — a DICOM file, a DICOM series (a folder, searched recursively, or a list of files), or a
NIfTI file — into one :class:`Scan`: float32 HU in (z, y, x), spacing in mm, and a 4×4 affine mapping (z, y, x)
indices to RAS+ mm (the convention of :mod:`ctad_core.data.nifti`).

What :func:`load_scan` does with DICOM, in order:

1. Groups the files by SeriesInstanceUID; localizer/scout images and files that are not DICOM images are left
   out. When several CT series remain and ``series`` is not given, one is chosen by the rule of
   :func:`choose_series` (non-contrast, soft-tissue kernel, then the thinnest slices, then the most slices) and
   a warning says which and why.
2. Refuses non-CT modalities, mixed orientations, mixed image shapes and two slices at one position.
3. Orders slices by ImagePositionPatient projected on the slice normal (row × column direction of
   ImageOrientationPatient) — never by file name or InstanceNumber. Enhanced (multi-frame) CT takes positions,
   orientation, spacing and rescale from the (per-frame or shared) functional groups.
4. Converts stored values to HU: the RSNA 2019 quirk first (BitsStored 12, PixelRepresentation 0,
   RescaleIntercept > −100: signed 12-bit data stored as unsigned → +1000, values ≥ 4096 wrap by −4096,
   intercept −1000), then RescaleSlope/Intercept; PixelPaddingValue (or range) and anything below
   ``pad_below_hu`` (outside the field of view) becomes air, −1000 HU; what remains is clipped at −1024 HU.
5. Gantry tilt: when the slices stack along a direction that is not the slice normal, the volume is sheared.
   ``tilt="correct"`` shifts every slice in-plane (linear interpolation) onto an orthogonal grid; ``"error"``
   refuses.
6. Uneven spacing or missing slices (steps that differ from the median step by more than 10 %):
   ``irregular="resample"`` interpolates linearly onto a uniform grid at the median step (refusing gaps of more
   than ``max_missing`` missing slices); ``"error"`` refuses, naming the gap and the files around it.
7. Reorients to the closest canonical orientation, so axis 0 runs inferior → superior, axis 1 posterior →
   anterior and axis 2 left → right, as :func:`ctad_core.data.nifti.load_nifti` does.

``Scan.meta`` keeps technical tags only (modality, kernel, thickness, manufacturer, tilt, …) and hashed
pseudonyms of the patient, study and series; no names, IDs, dates or UIDs. Inputs are only ever read.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from scipy import ndimage

from ctad_core.data.nifti import NiftiError, load_nifti, save_nifti
from ctad_core.utils import write_json

AIR_HU = -1000.0
#: LPS (DICOM, ITK) ↔ RAS (NIfTI) world coordinates.
_LPS_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
_PSEUDONYM_SALT = "ctad-pseudonym-v1"


class ScanError(ValueError):
    """A scan could not be read; the message names the file and what is wrong.

    Attributes:
        path: the offending file or folder.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {problem}")


@dataclass
class Scan:
    """One CT volume in HU.

    Attributes:
        hu: (z, y, x) float32 HU; axis 0 inferior → superior, 1 posterior → anterior, 2 left → right.
        spacing: (z, y, x) voxel size in mm.
        affine: 4×4 mapping (z, y, x) indices to RAS+ mm.
        meta: technical tags and hashed pseudonyms only (see :func:`load_scan`).
        path: what was read (file or folder).
        slice_axis: the array axis along which the source slices (DICOM images, NIfTI storage slices) stack.
        source_index: (hu.shape[slice_axis],) int, for each index along ``slice_axis`` the nearest source slice:
            an index into ``sources`` (DICOM, in position order) or the 0-based storage slice (NIfTI).
        sources: DICOM files in position order (one per source slice; repeated for multi-frame); empty for NIfTI.
    """

    hu: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    slice_axis: int = 0
    source_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sources: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) shape of ``hu``."""
        return tuple(int(s) for s in self.hu.shape)  # type: ignore[return-value]


def pseudonym(value: str | None) -> str:
    """A stable 16-hex pseudonym of an identifier (salted SHA-256); ``""`` for an empty value."""
    if not value:
        return ""
    return hashlib.sha256(f"{_PSEUDONYM_SALT}:{value}".encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- entry point


def load_scan(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    series: str | int | None = None,
    *,
    tilt: Literal["correct", "error"] = "correct",
    irregular: Literal["resample", "error"] = "resample",
    max_missing: int = 2,
    fix_rsna: bool = True,
    pad_below_hu: float = -1500.0,
    prefer_thickness_mm: float | None = None,
    quiet: bool = False,
) -> Scan:
    """Read a CT scan from a DICOM file, a DICOM series (folder or list of files) or a NIfTI file.

    Args:
        path: a ``.dcm`` (or extension-less DICOM) file, a folder holding DICOM files (searched recursively),
            a list of DICOM files, or a ``.nii``/``.nii.gz`` (also ``.mha``/``.nrrd``) file already in HU.
        series: which DICOM series when there are several: its SeriesInstanceUID, its pseudonym
            (``meta["series_pseudonym"]``), its SeriesNumber (int) or its exact SeriesDescription. ``None``:
            the rule of :func:`choose_series`, with a warning naming the choice.
        tilt: gantry tilt (slices stacked obliquely to their normal): ``"correct"`` resamples each slice
            onto an orthogonal grid; ``"error"`` refuses.
        irregular: uneven slice spacing or missing slices: ``"resample"`` to a uniform grid at the median
            step; ``"error"`` refuses.
        max_missing: even when resampling, refuse a gap of more than this many missing slices.
        fix_rsna: apply the RSNA signed-as-unsigned fix (see module docstring).
        pad_below_hu: HU below this are outside the field of view and become air (−1000).
        prefer_thickness_mm: passed to :func:`choose_series` (``None``: thinnest).
        quiet: do not warn about the series choice, tilt correction or resampling (they stay in ``meta``).

    Returns:
        The :class:`Scan`.

    Raises:
        ScanError: unreadable or corrupt file, no CT image, non-CT modality, mixed series/shapes/orientations,
            duplicated positions, refused tilt or gap, NaN/inf values. The message names the file.
        FileNotFoundError: ``path`` does not exist.
    """
    if not isinstance(path, (str, os.PathLike)):
        files = [Path(p) for p in path]
        if not files:
            raise ScanError("<empty list>", "no files given")
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"{f}: no such file")
        where: Path = files[0].parent
        return _load_dicom(files, where, series, tilt, irregular, max_missing, fix_rsna, pad_below_hu,
                           prefer_thickness_mm, quiet, explicit_list=True)
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    name = p.name.lower()
    if p.is_file() and name.endswith(_NIFTI_SUFFIXES):
        return _load_nifti_scan(p)
    if p.is_file() and name.endswith(_ITK_SUFFIXES):
        return _load_itk_scan(p)
    if p.is_file():
        return _load_dicom([p], p, series, tilt, irregular, max_missing, fix_rsna, pad_below_hu,
                           prefer_thickness_mm, quiet, explicit_list=True)
    files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    if not files:
        raise ScanError(p, "folder holds no files")
    return _load_dicom(files, p, series, tilt, irregular, max_missing, fix_rsna, pad_below_hu,
                       prefer_thickness_mm, quiet, explicit_list=False)


def save_scan_nifti(scan: Scan, path: str | os.PathLike, sidecar: bool = True) -> Path:
    """Write ``scan.hu`` as float32 NIfTI with its affine (opens aligned in 3D Slicer / ITK-SNAP).

    Args:
        scan: the scan.
        path: ``.nii`` or ``.nii.gz`` destination (must not be one of the scan's inputs).
        sidecar: also write ``meta`` to ``<path without .nii[.gz]>.json``.

    Returns:
        The NIfTI path.
    """
    path = Path(path)
    if scan.path and path.resolve() == Path(scan.path).resolve():
        raise ScanError(path, "refusing to write over the scan's own input")
    out = save_nifti(path, scan.hu.astype(np.float32), scan.affine)
    if sidecar:
        stem = str(path)[: -len(".nii.gz")] if str(path).endswith(".nii.gz") else str(path.with_suffix(""))
        write_json(Path(stem + ".json"), scan.meta)
    return out


# ----------------------------------------------------------------------------------------------- NIfTI / ITK


def _finite_or_raise(arr: np.ndarray, path: Path | str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ScanError(path, f"{int(bad.sum())} voxels are NaN or infinite")


def _load_nifti_scan(p: Path) -> Scan:
    try:
        hu, aff = load_nifti(p, np.float32)
        raw_aff = nib.load(str(p)).affine
    except NiftiError as e:
        raise ScanError(p, e.problem) from e
    except Exception as e:  # nibabel raises many types for broken files; their messages may hold the path
        detail = str(e).replace(f'"{p}"', "it").replace(str(p), "it")
        raise ScanError(p, f"unreadable NIfTI ({type(e).__name__}: {detail})") from e
    _finite_or_raise(hu, p)
    # Where the file's storage slices (its 3rd axis) went in the canonical (z, y, x) array.
    ornt = nib.orientations.io_orientation(raw_aff)
    axis = 2 - int(ornt[2, 0])
    n = hu.shape[axis]
    src = np.arange(n) if ornt[2, 1] > 0 else np.arange(n)[::-1]
    spacing = tuple(float(v) for v in np.linalg.norm(aff[:3, :3], axis=0))
    meta = {
        "format": "nifti",
        "modality": "CT",
        "series_pseudonym": pseudonym(p.name),
        "patient_pseudonym": "",
        "shape": list(hu.shape),
        "spacing": list(spacing),
        "fixes": [],
    }
    if float(np.percentile(hu, 1)) > -500:
        msg = f"{p}: no air below -500 HU in this volume; is it in HU?"
        warnings.warn(msg, stacklevel=3)
        meta["warnings"] = [msg]
    return Scan(hu, spacing, aff, meta, str(p), axis, src.astype(np.int64), ())


def _load_itk_scan(p: Path) -> Scan:
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(p))
    except Exception as e:
        raise ScanError(p, f"unreadable image ({e})") from e
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ScanError(p, f"{img.GetNumberOfComponentsPerPixel()} components per pixel: not a CT volume")
    size = list(img.GetSize())
    if len(size) > 3 and all(n == 1 for n in size[3:]):  # (x, y, z, 1, …): drop the length-1 axes
        img = sitk.Extract(img, size[:3] + [0] * (len(size) - 3), [0] * len(size))
    if img.GetDimension() != 3:
        raise ScanError(p, f"expected a 3D image, got size {tuple(size)}")
    img = sitk.Cast(img, sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    _finite_or_raise(arr, p)
    d = np.array(img.GetDirection()).reshape(3, 3)
    sp = np.array(img.GetSpacing())
    a = np.eye(4)
    # ITK index (i, j, k) = (x, y, z); our array is (k, j, i).
    a[:3, 0], a[:3, 1], a[:3, 2] = d[:, 2] * sp[2], d[:, 1] * sp[1], d[:, 0] * sp[0]
    a[:3, 3] = img.GetOrigin()
    a = _LPS_RAS @ a
    hu, aff, perm, flips = _to_canonical(arr, a)
    axis = perm.index(0)
    src = np.arange(arr.shape[0])[::-1] if flips[0] else np.arange(arr.shape[0])
    spacing = tuple(float(v) for v in np.linalg.norm(aff[:3, :3], axis=0))
    meta = {"format": p.suffix.lstrip("."), "modality": "CT", "series_pseudonym": pseudonym(p.name),
            "patient_pseudonym": "", "shape": list(hu.shape), "spacing": list(spacing), "fixes": []}
    return Scan(hu, spacing, aff, meta, str(p), axis, src.astype(np.int64), ())


def _to_canonical(vol: np.ndarray, aff: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int], list[bool]]:
    """Permute/flip a (z, y, x) volume so axis 0 → S, 1 → A, 2 → R (closest canonical orientation).

    Returns:
        (volume, affine, perm, flips): ``perm[new_axis] = old_axis``; ``flips[old_axis]`` whether it was reversed.
    """
    ornt = nib.orientations.io_orientation(aff)  # per array axis: (world axis, ±1)
    perm = [0, 0, 0]
    flips = [bool(ornt[a, 1] < 0) for a in range(3)]
    for a in range(3):
        perm[2 - int(ornt[a, 0])] = a
    t = np.zeros((4, 4))
    t[3, 3] = 1.0
    for p_new, a in enumerate(perm):
        if flips[a]:
            t[a, p_new] = -1.0
            t[a, 3] = vol.shape[a] - 1
        else:
            t[a, p_new] = 1.0
    out = vol
    for a in range(3):
        if flips[a]:
            out = np.flip(out, a)
    out = np.ascontiguousarray(np.transpose(out, perm))
    return out, aff @ t, perm, flips


# ----------------------------------------------------------------------------------------------- DICOM headers


@dataclass
class _Slice:
    """One 2D image of a series: a single-frame file or one frame of a multi-frame file."""

    file: Path
    frame: int | None
    ipp: np.ndarray
    iop: np.ndarray
    pixel_spacing: tuple[float, float]  # (between rows, between columns)
    shape: tuple[int, int]
    slope: float
    intercept: float
    thickness: float | None


def _get(ds: Any, keyword: str, default: Any = None) -> Any:
    v = ds.get(keyword, default)
    return default if v is None or v == "" else v


def _fg(ds: Any, frame: int, seq: str) -> Any:
    """Item 0 of a functional-group sequence for a frame: per-frame first, then shared."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    for item in (per_frame[frame] if per_frame and frame < len(per_frame) else None, shared[0] if shared else None):
        s = item.get(seq) if item is not None else None
        if s:
            return s[0]
    return None


def _floats(v: Any, n: int, what: str, f: Path) -> np.ndarray:
    try:
        arr = np.array([float(x) for x in v], dtype=np.float64)
    except Exception as e:
        raise ScanError(f, f"{what} is missing or not numeric ({v!r})") from e
    if arr.shape != (n,):
        raise ScanError(f, f"{what} must have {n} values, got {v!r}")
    return arr


def _slices_of(ds: Any, f: Path) -> list[_Slice]:
    """Geometry and rescale of each image in a (header-only) dataset."""
    rows, cols = int(_get(ds, "Rows", 0)), int(_get(ds, "Columns", 0))
    if rows <= 0 or cols <= 0:
        raise ScanError(f, "no Rows/Columns: not an image")
    nframes = int(_get(ds, "NumberOfFrames", 1) or 1)
    out = []
    if nframes > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        for i in range(nframes):
            pos = _fg(ds, i, "PlanePositionSequence")
            ori = _fg(ds, i, "PlaneOrientationSequence")
            pm = _fg(ds, i, "PixelMeasuresSequence")
            pv = _fg(ds, i, "PixelValueTransformationSequence")
            if pos is None or ori is None or pm is None:
                raise ScanError(f, f"multi-frame image lacks plane position/orientation/pixel measures for frame {i}")
            ipp = _floats(pos.get("ImagePositionPatient"), 3, f"ImagePositionPatient of frame {i}", f)
            iop = _floats(ori.get("ImageOrientationPatient"), 6, f"ImageOrientationPatient of frame {i}", f)
            ps = _floats(pm.get("PixelSpacing"), 2, f"PixelSpacing of frame {i}", f)
            src = pv if pv is not None else ds
            slope = float(_get(src, "RescaleSlope", _get(ds, "RescaleSlope", 1.0)))
            icpt = float(_get(src, "RescaleIntercept", _get(ds, "RescaleIntercept", 0.0)))
            th = _get(pm, "SliceThickness", _get(ds, "SliceThickness"))
            out.append(_Slice(f, i, ipp, iop, (float(ps[0]), float(ps[1])), (rows, cols), slope, icpt,
                              float(th) if th is not None else None))
        return out
    ipp = _floats(ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", f)
    iop = _floats(ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", f)
    ps = _floats(ds.get("PixelSpacing"), 2, "PixelSpacing", f)
    th = _get(ds, "SliceThickness")
    out.append(_Slice(f, None, ipp, iop, (float(ps[0]), float(ps[1])), (rows, cols),
                      float(_get(ds, "RescaleSlope", 1.0)), float(_get(ds, "RescaleIntercept", 0.0)),
                      float(th) if th is not None else None))
    return out


def _is_localizer(ds: Any) -> bool:
    it = ds.get("ImageType")
    vals = [str(v).upper() for v in (it if isinstance(it, (list, tuple, pydicom.multival.MultiValue)) else [it])]
    return "LOCALIZER" in vals or "SCOUT" in vals


@dataclass
class SeriesInfo:
    """Summary of one series found under a path (see :func:`list_series`)."""

    uid: str
    pseudonym: str
    modality: str
    n_images: int
    thickness: float | None
    kernel: str
    description: str
    series_number: int | None
    contrast: bool
    sharp_kernel: bool
    files: list[Path]
    headers: list[Any] = field(repr=False, default_factory=list)

    def summary(self) -> str:
        """One line for warnings and listings (no identifiers)."""
        th = f"{self.thickness:g} mm" if self.thickness else "? mm"
        return (f"series #{self.series_number} {self.description!r} [{self.pseudonym}] {self.modality}, "
                f"{self.n_images} images, {th}, kernel {self.kernel or '?'}"
                f"{', contrast' if self.contrast else ''}")


_SHARP_WORDS = ("BONE", "SHARP", "LUNG", "EDGE", "DETAIL", "HIGH", "ULTRA", "BONEPLUS", "YB", "YC")
_SIEMENS_KERNEL = re.compile(r"^[A-Z]{1,2}R?(\d{2})")
_CONTRAST_WORDS = re.compile(r"(\bC\+|CONTRAST|\bPOST\b|\bCE\b|ANGIO|\bCTA\b)", re.I)


def is_sharp_kernel(kernel: str, description: str = "") -> bool:
    """Whether a reconstruction kernel (or series description) is a bone/lung/sharp one.

    GE: BONE, BONEPLUS, LUNG, EDGE, DETAIL; Siemens ``H70h``/``B60f``/``Hr64``: number ≥ 50; Philips ``YB``/``YC``;
    Canon ``FC3x``+. Anything else (STANDARD, SOFT, H30s, FC21…) counts as soft tissue.
    """
    k = (kernel or "").upper().replace(" ", "")
    if any(w in k for w in _SHARP_WORDS) or "BONE" in (description or "").upper():
        return True
    m = _SIEMENS_KERNEL.match(k)
    if m and not k.startswith("FC"):
        return int(m.group(1)) >= 50
    if k.startswith("FC") and k[2:4].isdigit():
        return int(k[2:4]) >= 30
    return False


def _read_headers(files: Sequence[Path], explicit: bool) -> tuple[dict[str, list[tuple[Path, Any]]], list[str]]:
    groups: dict[str, list[tuple[Path, Any]]] = {}
    skipped: list[str] = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except InvalidDicomError as e:
            if explicit:
                raise ScanError(f, f"not a DICOM file ({e})") from e
            skipped.append(f"{f.name} (not DICOM)")
            continue
        except Exception as e:
            raise ScanError(f, f"unreadable DICOM header ({type(e).__name__}: {e})") from e
        if "Rows" not in ds:
            if explicit:
                raise ScanError(f, "DICOM file holds no image (no Rows/Columns)")
            skipped.append(f"{f.name} (no image)")
            continue
        if _is_localizer(ds):
            skipped.append(f"{f.name} (localizer)")
            if explicit and len(files) == 1:
                raise ScanError(f, "is a localizer/scout image, not a cross-section")
            continue
        groups.setdefault(str(_get(ds, "SeriesInstanceUID", "")), []).append((f, ds))
    return groups, skipped


def _info(uid: str, members: list[tuple[Path, Any]]) -> SeriesInfo:
    ds0 = members[0][1]
    kernel = _get(ds0, "ConvolutionKernel", "")
    if isinstance(kernel, (list, tuple, pydicom.multival.MultiValue)):
        kernel = "/".join(str(k) for k in kernel)
    desc = str(_get(ds0, "SeriesDescription", ""))
    n = sum(int(_get(ds, "NumberOfFrames", 1) or 1) for _, ds in members)
    th = _get(ds0, "SliceThickness")
    if th is None:
        pm = _fg(ds0, 0, "PixelMeasuresSequence")
        th = _get(pm, "SliceThickness") if pm is not None else None
    agent = str(_get(ds0, "ContrastBolusAgent", "")).strip()
    sn = _get(ds0, "SeriesNumber")
    return SeriesInfo(
        uid=uid, pseudonym=pseudonym(uid), modality=str(_get(ds0, "Modality", "?")), n_images=n,
        thickness=float(th) if th is not None else None, kernel=str(kernel), description=desc,
        series_number=int(sn) if sn is not None else None,
        contrast=bool(agent) or bool(_CONTRAST_WORDS.search(desc)),
        sharp_kernel=is_sharp_kernel(str(kernel), desc), files=[m[0] for m in members],
        headers=[m[1] for m in members],
    )


def list_series(path: str | os.PathLike) -> list[SeriesInfo]:
    """The image series under a DICOM file or folder (recursive), without reading pixel data.

    Args:
        path: file or folder.

    Returns:
        One :class:`SeriesInfo` per SeriesInstanceUID, largest first.
    """
    p = Path(path)
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    groups, _ = _read_headers(files, explicit=p.is_file())
    return sorted((_info(u, m) for u, m in groups.items()), key=lambda s: -s.n_images)


def choose_series(candidates: Sequence[SeriesInfo], prefer_thickness_mm: float | None = None) -> tuple[SeriesInfo, str]:
    """Pick one series by a stated rule.

    The rule, in priority order: CT modality; at least 3 images (a volume); non-contrast (no
    ContrastBolusAgent, no "contrast"/"C+"/"post" in the description); soft-tissue kernel (not bone/lung/sharp,
    :func:`is_sharp_kernel`); slice thickness closest to ``prefer_thickness_mm`` (``None``: the thinnest, which
    resamples best to the models' isotropic grids); then the most images.

    Returns:
        (chosen, reason) — ``reason`` is a sentence for the warning.
    """
    if not candidates:
        raise ValueError("no series to choose from")

    def key(s: SeriesInfo) -> tuple:
        th = s.thickness if s.thickness else 1e3
        tkey = abs(np.log(th / prefer_thickness_mm)) if prefer_thickness_mm else th
        return (s.modality != "CT", s.n_images < 3, s.contrast, s.sharp_kernel, tkey, -s.n_images)

    ranked = sorted(candidates, key=key)
    best = ranked[0]
    why = ["CT"] if best.modality == "CT" else []
    why.append("non-contrast" if not best.contrast else "contrast (no non-contrast series)")
    why.append("soft-tissue kernel" if not best.sharp_kernel else "sharp kernel (no soft-tissue series)")
    why.append("thinnest slices" if prefer_thickness_mm is None else f"thickness closest to {prefer_thickness_mm} mm")
    others = "; ".join(s.summary() for s in ranked[1:])
    return best, f"picked {best.summary()} ({', '.join(why)}) over: {others}"


def _select(groups: dict[str, list[tuple[Path, Any]]], series: str | int | None, where: Path,
            prefer: float | None, quiet: bool) -> tuple[SeriesInfo, str | None]:
    infos = [_info(u, m) for u, m in groups.items()]
    if series is not None:
        for s in infos:
            hit = (isinstance(series, int) and s.series_number == series) or (
                isinstance(series, str) and series in (s.uid, s.pseudonym, s.description))
            if hit:
                return s, None
        raise ScanError(where, f"series {series!r} not found; available: " + "; ".join(i.summary() for i in infos))
    if len(infos) == 1:
        return infos[0], None
    ct = [s for s in infos if s.modality == "CT"]
    if not ct:
        raise ScanError(where, "no CT series; found modalities " + ", ".join(sorted({s.modality for s in infos})))
    best, reason = choose_series(ct, prefer)
    msg = f"{where}: {len(infos)} series; {reason}. Pass series= to choose another."
    if not quiet:
        warnings.warn(msg, stacklevel=4)
    return best, msg


# ----------------------------------------------------------------------------------------------- DICOM pixels


def _read_pixels(f: Path, nframes_expected: int) -> tuple[np.ndarray, Any]:
    try:
        ds = pydicom.dcmread(f)
    except Exception as e:
        raise ScanError(f, f"unreadable DICOM ({type(e).__name__}: {e})") from e
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise ScanError(f, "no pixel data")
    try:
        arr = ds.pixel_array
    except Exception as e:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        ts_name = getattr(ts, "name", str(ts))
        raise ScanError(f, f"pixel data cannot be decoded (transfer syntax {ts_name}): {e}") from e
    rows, cols = int(ds.Rows), int(ds.Columns)
    if nframes_expected > 1 or arr.ndim == 3:
        if arr.ndim == 2:
            arr = arr[None]
        if arr.shape != (nframes_expected, rows, cols):
            raise ScanError(f, f"pixel data shape {arr.shape} != frames×rows×cols ({nframes_expected}, {rows}, {cols})")
    elif arr.shape != (rows, cols):
        raise ScanError(f, f"pixel data shape {arr.shape} != rows×columns ({rows}, {cols}) (colour or corrupt?)")
    return arr, ds


def _to_hu(raw: np.ndarray, ds: Any, slope: float, intercept: float, fix_rsna: bool, pad_below_hu: float,
           fixes: set[str]) -> np.ndarray:
    """Stored values → HU for one image (see module docstring, step 4)."""
    raw = raw.astype(np.int32) if raw.dtype.kind in "iu" else raw.astype(np.float64)
    pad = np.zeros(raw.shape, bool)
    ppv = ds.get("PixelPaddingValue")
    if ppv is not None and raw.dtype.kind == "i":
        lim = ds.get("PixelPaddingRangeLimit")
        if lim is not None:
            lo, hi = sorted((int(ppv), int(lim)))
            pad = (raw >= lo) & (raw <= hi)
        else:
            pad = raw == int(ppv)
    if (fix_rsna and int(_get(ds, "BitsStored", 16)) == 12 and int(_get(ds, "PixelRepresentation", 1)) == 0
            and intercept > -100 and raw.dtype.kind == "i"):
        # Signed 12-bit data stored as unsigned (RSNA 2019): undo the wrap, then the intercept is −1000.
        raw = raw + 1000
        raw[raw >= 4096] -= 4096
        intercept = -1000.0
        fixes.add("rsna_signed_12bit")
    hu = (raw * slope + intercept).astype(np.float32)
    outside = pad | (hu < pad_below_hu)
    if outside.any():
        hu[outside] = AIR_HU
        fixes.add("padding_to_air")
    np.maximum(hu, -1024.0, out=hu)
    return hu


_META_TAGS = {
    "Modality": "modality", "Manufacturer": "manufacturer", "ManufacturerModelName": "model",
    "ConvolutionKernel": "kernel", "SliceThickness": "slice_thickness", "KVP": "kvp",
    "XRayTubeCurrent": "tube_current_ma", "Exposure": "exposure_mas", "SeriesDescription": "series_description",
    "SeriesNumber": "series_number", "BodyPartExamined": "body_part", "GantryDetectorTilt": "gantry_tilt_tag_deg",
    "PhotometricInterpretation": "photometric", "BitsStored": "bits_stored",
    "PixelRepresentation": "pixel_representation", "PatientPosition": "patient_position",
    "ScanOptions": "scan_options", "ContrastBolusAgent": "contrast_agent", "ImageType": "image_type",
}


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
        return [_plain(x) for x in v]
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v).strip()
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def technical_meta(ds: Any) -> dict[str, Any]:
    """Technical tags of a dataset plus pseudonyms; no names, IDs, dates or UIDs."""
    meta: dict[str, Any] = {}
    for tag, key in _META_TAGS.items():
        v = ds.get(tag)
        if v is not None and v != "":
            meta[key] = _plain(v)
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is not None:
        meta["transfer_syntax"] = getattr(ts, "name", str(ts))
    meta["patient_pseudonym"] = pseudonym(str(_get(ds, "PatientID", "")))
    meta["study_pseudonym"] = pseudonym(str(_get(ds, "StudyInstanceUID", "")))
    meta["series_pseudonym"] = pseudonym(str(_get(ds, "SeriesInstanceUID", "")))
    return meta


def _load_dicom(files: Sequence[Path], where: Path, series: str | int | None, tilt: str, irregular: str,
                max_missing: int, fix_rsna: bool, pad_below_hu: float, prefer: float | None, quiet: bool,
                explicit_list: bool) -> Scan:
    groups, skipped = _read_headers(files, explicit=explicit_list and len(files) == 1)
    if not groups:
        raise ScanError(where, "no DICOM images found" + (f" (skipped: {', '.join(skipped[:5])})" if skipped else ""))
    info, choice_msg = _select(groups, series, where, prefer, quiet)
    bad = [(f, ds) for f, ds in zip(info.files, info.headers) if str(_get(ds, "Modality", "?")) != "CT"]
    if bad:
        f, ds = bad[0]
        raise ScanError(f, f"modality is {_get(ds, 'Modality', 'missing')!r}, not CT: only CT scans are supported")
    slices: list[_Slice] = []
    for f, ds in zip(info.files, info.headers):
        slices.extend(_slices_of(ds, f))
    _check_consistent(slices)
    # --- order by position along the slice normal ---------------------------------------------------------
    iop = slices[0].iop
    r, c = iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])
    n = np.cross(r, c)
    d = np.array([s.ipp @ n for s in slices])
    order = np.argsort(d, kind="stable")
    slices = [slices[i] for i in order]
    d = d[order]
    steps = np.diff(d)
    if len(steps) and (steps < 1e-3).any():
        i = int(np.argmax(steps < 1e-3))
        raise ScanError(slices[i + 1].file, f"same position ({d[i]:.2f} mm along the normal) as {slices[i].file.name}: "
                        "two images at one place (repeated acquisition or mixed series?)")
    meta = technical_meta(info.headers[0])
    meta.update(format="dicom", n_images=len(slices), fixes=[], warnings=[])
    if choice_msg:
        meta["series_choice"] = choice_msg
    # --- pixels → HU ---------------------------------------------------------------------------------------
    fixes: set[str] = set()
    rows, cols = slices[0].shape
    hu = np.empty((len(slices), rows, cols), np.float32)
    cache: dict[Path, tuple[np.ndarray, Any]] = {}
    frames_in = {f: int(_get(ds, "NumberOfFrames", 1) or 1) for f, ds in zip(info.files, info.headers)}
    for k, s in enumerate(slices):
        if s.file not in cache:
            if len(cache) and slices[k - 1].frame is None:
                cache.clear()  # single-frame files: keep memory flat
            cache[s.file] = _read_pixels(s.file, frames_in[s.file])
        arr, ds = cache[s.file]
        raw = arr[s.frame] if s.frame is not None else arr
        hu[k] = _to_hu(raw, ds, s.slope, s.intercept, fix_rsna, pad_below_hu, fixes)
    cache.clear()
    _finite_or_raise(hu, where)
    meta["fixes"] = sorted(fixes)
    # --- tilt (shear) ---------------------------------------------------------------------------------------
    sy, sx = slices[0].pixel_spacing
    ipp = np.array([s.ipp for s in slices])
    tilt_deg = 0.0
    if len(slices) > 1:
        v = ipp[-1] - ipp[0]
        tilt_deg = float(np.degrees(np.arccos(np.clip(abs(v @ n) / np.linalg.norm(v), 0, 1))))
    meta["tilt_deg"] = round(tilt_deg, 3)
    if tilt_deg > 0.5:
        if tilt == "error":
            raise ScanError(where, f"gantry tilt of {tilt_deg:.1f}° (slices stack obliquely to their normal); "
                            "pass tilt='correct' to resample onto an orthogonal grid")
        off = (ipp - ipp[0]) - np.outer(d - d[0], n)  # in-plane offset of each slice (mm)
        for k in range(len(slices)):
            dy, dx = off[k] @ c / sy, off[k] @ r / sx
            if abs(dy) > 1e-3 or abs(dx) > 1e-3:
                hu[k] = ndimage.shift(hu[k], (dy, dx), order=1, mode="constant", cval=AIR_HU)
        meta["fixes"].append("tilt_corrected")
        msg = f"{where}: gantry tilt {tilt_deg:.1f}° corrected by shifting slices in-plane"
        meta["warnings"].append(msg)
        if not quiet:
            warnings.warn(msg, stacklevel=3)
    # --- slice spacing --------------------------------------------------------------------------------------
    src_index = np.arange(len(slices))
    if len(slices) > 1:
        step = float(np.median(steps))
        dev = np.abs(steps - step)
        if (dev > max(0.05, 0.1 * step)).any():
            i = int(np.argmax(dev))
            missing = int(round(steps[i] / step)) - 1
            what = (f"gap of {steps[i]:.2f} mm (≈{missing} missing slice(s)) between {slices[i].file.name} "
                    f"and {slices[i + 1].file.name}" if steps[i] > 1.5 * step else
                    f"uneven slice spacing (steps {steps.min():.2f}–{steps.max():.2f} mm, median {step:.2f})")
            if irregular == "error":
                raise ScanError(where, f"{what}; pass irregular='resample' to interpolate onto a uniform "
                                f"{step:.2f} mm grid")
            if missing > max_missing:
                raise ScanError(where, f"{what}: more than max_missing={max_missing} missing slices, too "
                                "large to interpolate")
            hu, src_index = _resample_z(hu, d, step)
            meta["fixes"].append("z_resampled")
            msg = f"{where}: {what}; resampled to a uniform {step:.2f} mm grid"
            meta["warnings"].append(msg)
            if not quiet:
                warnings.warn(msg, stacklevel=3)
    else:
        step = float(slices[0].thickness or 1.0)
    # --- affine and canonical orientation -------------------------------------------------------------------
    a = np.eye(4)
    a[:3, 0], a[:3, 1], a[:3, 2], a[:3, 3] = n * step, c * sy, r * sx, ipp[0]
    a = _LPS_RAS @ a
    hu, aff, perm, flips = _to_canonical(hu, a)
    axis = perm.index(0)
    if flips[0]:
        src_index = src_index[::-1]
    spacing = tuple(float(v) for v in np.linalg.norm(aff[:3, :3], axis=0))
    meta.update(shape=list(hu.shape), spacing=list(spacing), n_skipped=len(skipped))
    return Scan(hu, spacing, aff, meta, str(where), axis, np.ascontiguousarray(src_index, dtype=np.int64),
                tuple(str(s.file) for s in slices))


def _check_consistent(slices: list[_Slice]) -> None:
    shapes: dict[tuple[int, int], list[_Slice]] = {}
    for s in slices:
        shapes.setdefault(s.shape, []).append(s)
    if len(shapes) > 1:
        major = max(shapes, key=lambda k: len(shapes[k]))
        odd = next(s for k, v in shapes.items() if k != major for s in v)
        raise ScanError(odd.file, f"image shape {odd.shape[0]}×{odd.shape[1]} differs from the series' "
                        f"{major[0]}×{major[1]} ({len(shapes[major])} images): mixed shapes in one series")
    ref = slices[0]
    for s in slices[1:]:
        if np.abs(s.iop - ref.iop).max() > 1e-3:
            raise ScanError(s.file, f"ImageOrientationPatient {np.round(s.iop, 4).tolist()} differs from "
                            f"{ref.file.name}'s {np.round(ref.iop, 4).tolist()}: mixed orientations in one series")
        if np.abs(np.subtract(s.pixel_spacing, ref.pixel_spacing)).max() > 1e-3:
            raise ScanError(s.file, f"PixelSpacing {s.pixel_spacing} differs from {ref.file.name}'s {ref.pixel_spacing}")


def _resample_z(hu: np.ndarray, d: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of slices at sorted positions ``d`` onto a uniform grid of ``step`` from ``d[0]``."""
    m = int(round((d[-1] - d[0]) / step)) + 1
    z = d[0] + step * np.arange(m)
    hi = np.clip(np.searchsorted(d, z, side="left"), 1, len(d) - 1)
    lo = hi - 1
    w = np.clip((z - d[lo]) / (d[hi] - d[lo]), 0.0, 1.0).astype(np.float32)
    out = np.empty((m,) + hu.shape[1:], np.float32)
    for k in range(m):
        out[k] = (1 - w[k]) * hu[lo[k]] + w[k] * hu[hi[k]]
    nearest = np.where(w < 0.5, lo, hi)
    return out, nearest
