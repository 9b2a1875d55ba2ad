"""Read real head CT — a DICOM file, a DICOM series (a folder, searched recursively, or a list of files), or a
NIfTI file — into one :class:`Scan`: float32 HU in (z, y, x), spacing in mm, and a 4×4 affine mapping (z, y, x)
indices to RAS+ mm (the convention of :mod:`ctad_core.data.nifti`). ``docs/loading.md`` explains each rule with
its reason; in short, what :func:`load_scan` does with DICOM, in order:

1. Reads every file; also files without preamble or file-meta group (PS3.10 7.1) when the content parses as an
   image dataset. Localizers (ImageType LOCALIZER/SCOUT), DICOM files without an image and files that are not
   DICOM are skipped, each named in one warning.
2. Groups the images by SeriesInstanceUID. When several series remain and ``series`` is not given, one is chosen
   by :func:`choose_series` (CT, non-contrast, soft-tissue kernel, thinnest slices, most images) and a warning
   says which and why. Non-CT modalities are refused.
3. Keeps the geometry (image shape, ImageOrientationPatient, PixelSpacing) shared by more than half of the
   images; the others (a scout not typed LOCALIZER, a stray reformat) are left out and named, as are images
   without position or orientation when they are a minority. No such majority: refused.
4. Orders images by ImagePositionPatient projected on the slice normal (row × column direction of
   ImageOrientationPatient) — never by file name or InstanceNumber. Enhanced CT takes positions, orientation,
   spacing and rescale from the per-frame, else the shared functional groups (PS3.3 C.7.6.16), also with one
   frame per file; pixels are always (frames, rows, columns).
5. Converts stored values to HU: only the low BitsStored bits count, sign-extended when PixelRepresentation is
   1 (PS3.5 8.1.1); the RSNA 2019 quirk (BitsStored 12, PixelRepresentation 0, RescaleIntercept > −100: signed
   12-bit data stored as unsigned → +1000, values ≥ 4096 wrap by −4096, intercept −1000); then
   RescaleSlope/Intercept (PS3.3 C.11.1.1). Without them, ``default_rescale`` when given, else the identity only
   when ≥ 1 % of the pixels are at or below −500 HU (air), else refused. PixelPaddingValue (or range) and
   anything below ``pad_below_hu`` (outside the field of view) becomes air, −1000 HU; what remains is clipped
   at −1024 HU.
6. Two images at one position: identical pixels → the later (by path) is left out and named; different
   pixels → refused, naming both files.
7. Gantry tilt: when the slices stack along a direction that is not the slice normal, the volume is sheared.
   ``tilt="correct"`` shifts every slice in-plane (linear interpolation) onto an orthogonal grid; ``"error"``
   refuses.
8. Slice steps (see :func:`_plan_z`): all equal within 10 % → kept. Otherwise gaps (missing slices: a step
   more than 1.5× the step expected there, from SliceThickness in a contiguous series, else from the
   neighbouring steps), slabs of different spacing (thin slices through the skull base, thicker above) and
   uneven steps are told apart; ``irregular="resample"`` interpolates linearly onto a regular grid at
   ``z_step_mm`` or the finest slab step (refusing gaps of more than ``max_missing`` slices, and any gap when a
   file that could not be read may be the missing slice); ``"error"`` refuses. ``meta["z_resampling"]`` says
   what was done.
9. Reorients to the closest canonical orientation, so axis 0 runs inferior → superior, axis 1 posterior →
   anterior and axis 2 left → right, as :func:`ctad_core.data.nifti.load_nifti` does.

NIfTI, MHA and NRRD files are taken as HU; length-1 axes after the third are dropped; a NIfTI whose 1st
percentile is above −500 HU (no air) gets a warning. ``Scan.meta`` keeps technical tags only (modality, kernel, thickness,
manufacturer, tilt, fixes applied, warnings, …) and hashed pseudonyms of the patient, study and series; no
names, IDs, dates or UIDs. Inputs are only ever read.
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
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
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
        problem: what is wrong, without the path.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
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


@dataclass(frozen=True)
class _Options:
    """What :func:`load_scan` was asked to do with a DICOM series."""

    series: str | int | None = None
    tilt: str = "correct"
    irregular: str = "resample"
    max_missing: int = 2
    fix_rsna: bool = True
    pad_below_hu: float = -1500.0
    prefer_thickness_mm: float | None = None
    default_rescale: tuple[float, float] | None = None
    z_step_mm: float | None = None
    quiet: bool = False


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
    default_rescale: tuple[float, float] | None = None,
    z_step_mm: float | None = None,
    quiet: bool = False,
) -> Scan:
    """Read a CT scan from a DICOM file, a DICOM series (folder or list of files) or a NIfTI file.

    The rules are listed in the module docstring and in ``docs/loading.md``.

    Args:
        path: a ``.dcm`` (or extension-less DICOM) file, a folder holding DICOM files (searched recursively),
            a list of DICOM files, or a ``.nii``/``.nii.gz`` (also ``.mha``/``.nrrd``) file already in HU.
        series: which DICOM series when there are several: its SeriesInstanceUID, its pseudonym
            (``meta["series_pseudonym"]``), its SeriesNumber (int) or its exact SeriesDescription. ``None``:
            the rule of :func:`choose_series`, with a warning naming the choice.
        tilt: gantry tilt (slices stacked obliquely to their normal): ``"correct"`` resamples each slice
            onto an orthogonal grid; ``"error"`` refuses.
        irregular: slice steps that are not all equal (missing slices, slabs of different thickness, uneven
            spacing): ``"resample"`` to a regular grid (see ``z_step_mm``); ``"error"`` refuses.
        max_missing: even when resampling, refuse a gap of more than this many missing slices.
        fix_rsna: apply the RSNA signed-as-unsigned fix (see module docstring).
        pad_below_hu: HU below this are outside the field of view and become air (−1000).
        prefer_thickness_mm: passed to :func:`choose_series` (``None``: thinnest).
        default_rescale: (slope, intercept) for images without Rescale Slope/Intercept (PS3.3 C.11.1.1).
            ``None``: the identity (stored values are HU), accepted only when the values hold air (≥ 1 % of
            the pixels at or below −500 HU); otherwise the scan is refused.
        z_step_mm: the step of the regular grid when the slices must be resampled; ``None``: the finest step
            of the series' slabs.
        quiet: do not warn about the series choice, skipped or dropped files, tilt correction or resampling
            (they stay in ``meta``).

    Returns:
        The :class:`Scan`.

    Raises:
        ScanError: unreadable or corrupt file, no CT image, non-CT modality, no geometry shared by most
            images, two different images at one position, refused tilt or gap, stored values that are not
            HU and carry no rescale, NaN/inf values. The message names the file.
        FileNotFoundError: ``path`` does not exist.
    """
    opts = _Options(
        series,
        tilt,
        irregular,
        max_missing,
        fix_rsna,
        pad_below_hu,
        prefer_thickness_mm,
        None if default_rescale is None else (float(default_rescale[0]), float(default_rescale[1])),
        None if z_step_mm is None else float(z_step_mm),
        quiet,
    )
    if opts.z_step_mm is not None and not opts.z_step_mm > 0:
        raise ValueError(f"z_step_mm must be positive, got {z_step_mm}")
    if not isinstance(path, (str, os.PathLike)):
        files = [Path(p) for p in path]
        if not files:
            raise ScanError("<empty list>", "no files given")
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"{f}: no such file")
        return _load_dicom(files, files[0].parent, opts, explicit_list=True)
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    name = p.name.lower()
    if p.is_file() and name.endswith(_NIFTI_SUFFIXES):
        return _load_nifti_scan(p)
    if p.is_file() and name.endswith(_ITK_SUFFIXES):
        return _load_itk_scan(p)
    if p.is_file():
        return _load_dicom([p], p, opts, explicit_list=True)
    files = _files_under(p)
    if not files:
        raise ScanError(p, "folder holds no files")
    return _load_dicom(files, p, opts, explicit_list=False)


def _files_under(p: Path) -> list[Path]:
    """Every file under a folder (recursive, hidden files left out), sorted by path."""
    return sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))


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


def _volume_file_meta(
    fmt: str, p: Path, shape: tuple[int, ...], spacing: tuple[float, ...]
) -> dict[str, Any]:
    """``Scan.meta`` of a volume file (NIfTI, MHA, NRRD): no identifiers but a pseudonym of its name."""
    return {
        "format": fmt,
        "modality": "CT",
        "series_pseudonym": pseudonym(p.name),
        "patient_pseudonym": "",
        "shape": list(shape),
        "spacing": list(spacing),
        "fixes": [],
    }


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
    meta = _volume_file_meta("nifti", p, hu.shape, spacing)
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
    meta = _volume_file_meta(p.suffix.lstrip("."), p, hu.shape, spacing)
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
    label: str  # the file (relative to what was loaded) and, in a multi-frame file, the frame: for messages
    frame: int  # index into the file's (frames, rows, columns) pixel array; 0 for a single-frame file
    ipp: np.ndarray
    iop: np.ndarray
    pixel_spacing: tuple[float, float]  # (between rows, between columns)
    shape: tuple[int, int]
    slope: float
    intercept: float
    has_rescale: bool  # Rescale Intercept given (PS3.3 C.11.1.1, or C.7.6.16.2.9 in functional groups)
    thickness: float | None


def _get(ds: Any, keyword: str, default: Any = None) -> Any:
    v = ds.get(keyword, default)
    return default if v is None or v == "" else v


def _fg(ds: Any, frame: int, seq: str) -> Any:
    """Item 0 of a functional-group sequence for a frame: per-frame first, then shared."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    for item in (
        per_frame[frame] if per_frame and frame < len(per_frame) else None,
        shared[0] if shared else None,
    ):
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


def _rescale_of(*sources: Any) -> tuple[float, float, bool]:
    """(slope, intercept, given) from the first source holding Rescale Intercept; (1, 0, False) when none does."""
    for src in sources:
        if src is not None and _get(src, "RescaleIntercept") is not None:
            return float(_get(src, "RescaleSlope", 1.0)), float(src.RescaleIntercept), True
    return 1.0, 0.0, False


def _slices_of(ds: Any, f: Path, label: str) -> list[_Slice]:
    """Geometry and rescale of each image in a (header-only) dataset.

    Enhanced (multi-frame) images take them from the per-frame, else the shared functional groups (PS3.3
    C.7.6.16), also when the file holds a single frame.
    """
    rows, cols = int(_get(ds, "Rows", 0)), int(_get(ds, "Columns", 0))
    if rows <= 0 or cols <= 0:
        raise ScanError(f, "no Rows/Columns: not an image")
    nframes = int(_get(ds, "NumberOfFrames", 1) or 1)
    enhanced = (
        nframes > 1 or "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    )
    out = []
    for i in range(nframes if enhanced else 1):
        if enhanced:
            pos, ori, pm, pv = (
                _fg(ds, i, seq)
                for seq in (
                    "PlanePositionSequence",
                    "PlaneOrientationSequence",
                    "PixelMeasuresSequence",
                    "PixelValueTransformationSequence",
                )
            )
            if pos is None or ori is None or pm is None:
                raise ScanError(
                    f, f"multi-frame image lacks plane position/orientation/pixel measures for frame {i + 1}"
                )
            of = f" of frame {i + 1}"
            slope, icpt, given = _rescale_of(pv, ds)
            th = _get(pm, "SliceThickness", _get(ds, "SliceThickness"))
        else:
            pos = ori = pm = ds
            of = ""
            slope, icpt, given = _rescale_of(ds)
            th = _get(ds, "SliceThickness")
        ipp = _floats(pos.get("ImagePositionPatient"), 3, f"ImagePositionPatient{of}", f)
        iop = _floats(ori.get("ImageOrientationPatient"), 6, f"ImageOrientationPatient{of}", f)
        ps = _floats(pm.get("PixelSpacing"), 2, f"PixelSpacing{of}", f)
        out.append(
            _Slice(
                f,
                f"{label} frame {i + 1}" if nframes > 1 else label,
                i,
                ipp,
                iop,
                (float(ps[0]), float(ps[1])),
                (rows, cols),
                slope,
                icpt,
                given,
                float(th) if th is not None else None,
            )
        )
    return out


def _is_localizer(ds: Any) -> bool:
    it = ds.get("ImageType")
    vals = [
        str(v).upper() for v in (it if isinstance(it, (list, tuple, pydicom.multival.MultiValue)) else [it])
    ]
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
        return (
            f"series #{self.series_number} {self.description!r} [{self.pseudonym}] {self.modality}, "
            f"{self.n_images} images, {th}, kernel {self.kernel or '?'}"
            f"{', contrast' if self.contrast else ''}"
        )


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


#: Transfer syntax of a dataset read without file meta, from the encoding the reader found:
#: (implicit VR, little endian) → UID (PS3.5 Annex A).
_TS_OF_ENCODING = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}
#: Files with these suffixes that do not parse as DICOM are documents, not lost slices.
_DOCUMENT_SUFFIXES = {
    ".txt",
    ".csv",
    ".json",
    ".xml",
    ".html",
    ".htm",
    ".pdf",
    ".md",
    ".ini",
    ".log",
    ".cfg",
    ".yaml",
    ".yml",
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".zip",
    ".gz",
    ".nii",
    ".py",
    ".sh",
    ".bat",
    ".exe",
    ".xls",
    ".xlsx",
    ".doc",
    ".docx",
    ".db",
    ".inf",
}


def _dcmread(f: Path, header_only: bool) -> Any:
    """Read a DICOM file, also one without the 128-byte preamble, "DICM" or file-meta group (PS3.10 7.1).

    Such files (older exports, some PACS) are read with pydicom's ``force`` and kept only when the content
    parses as an image dataset (Rows, Columns and SOP Class UID, Modality or Image Position); their transfer
    syntax is the encoding the reader found (implicit/explicit VR, byte order), set on the in-memory dataset.

    Raises:
        InvalidDicomError: ``f`` is not DICOM.
    """
    try:
        ds = pydicom.dcmread(f, stop_before_pixels=header_only)
    except InvalidDicomError as e:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(f, stop_before_pixels=header_only, force=True)
                is_image = (
                    "Rows" in ds
                    and "Columns" in ds
                    and any(k in ds for k in ("SOPClassUID", "Modality", "ImagePositionPatient"))
                )
        except Exception:
            is_image = False
        if not is_image:
            raise e from None
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        encoding = getattr(ds, "original_encoding", (True, True))
        if meta is None:
            ds.file_meta = meta = pydicom.dataset.FileMetaDataset()
        meta.TransferSyntaxUID = _TS_OF_ENCODING.get(tuple(encoding), ImplicitVRLittleEndian)
        ds.ctad_no_file_meta = True
    return ds


@dataclass
class _Skip:
    """A file left out before series selection."""

    label: str
    reason: str
    maybe_slice: bool  # it could not be read and nothing says it is not an image of the series


def _rel(f: Path, where: Path) -> str:
    """``f`` relative to the loaded folder (its name when not under it)."""
    try:
        return str(f.relative_to(where)) if where.is_dir() else f.name
    except ValueError:
        return f.name


def _read_headers(
    files: Sequence[Path], explicit: bool, where: Path
) -> tuple[dict[str, list[tuple[Path, Any]]], list[_Skip]]:
    groups: dict[str, list[tuple[Path, Any]]] = {}
    skipped: list[_Skip] = []
    for f in files:
        try:
            ds = _dcmread(f, header_only=True)
        except InvalidDicomError as e:
            if explicit:
                raise ScanError(f, f"not a DICOM file ({e})") from e
            skipped.append(_Skip(_rel(f, where), "not DICOM", f.suffix.lower() not in _DOCUMENT_SUFFIXES))
            continue
        except Exception as e:
            raise ScanError(f, f"unreadable DICOM header ({type(e).__name__}: {e})") from e
        if "Rows" not in ds:
            if explicit:
                raise ScanError(f, "DICOM file holds no image (no Rows/Columns)")
            skipped.append(_Skip(_rel(f, where), "no image", False))
            continue
        if _is_localizer(ds):
            if explicit and len(files) == 1:
                raise ScanError(f, "is a localizer/scout image, not a cross-section")
            skipped.append(_Skip(_rel(f, where), "localizer", False))
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
        uid=uid,
        pseudonym=pseudonym(uid),
        modality=str(_get(ds0, "Modality", "?")),
        n_images=n,
        thickness=float(th) if th is not None else None,
        kernel=str(kernel),
        description=desc,
        series_number=int(sn) if sn is not None else None,
        contrast=bool(agent) or bool(_CONTRAST_WORDS.search(desc)),
        sharp_kernel=is_sharp_kernel(str(kernel), desc),
        files=[m[0] for m in members],
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
    files = [p] if p.is_file() else _files_under(p)
    groups, _ = _read_headers(files, p.is_file(), p)
    return sorted((_info(u, m) for u, m in groups.items()), key=lambda s: -s.n_images)


def choose_series(
    candidates: Sequence[SeriesInfo], prefer_thickness_mm: float | None = None
) -> tuple[SeriesInfo, str]:
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
    why.append(
        "thinnest slices" if prefer_thickness_mm is None else f"thickness closest to {prefer_thickness_mm} mm"
    )
    others = "; ".join(s.summary() for s in ranked[1:])
    return best, f"picked {best.summary()} ({', '.join(why)}) over: {others}"


def _select(
    groups: dict[str, list[tuple[Path, Any]]], where: Path, opts: _Options
) -> tuple[SeriesInfo, str | None]:
    infos = [_info(u, m) for u, m in groups.items()]
    series = opts.series
    if series is not None:
        for s in infos:
            hit = (isinstance(series, int) and s.series_number == series) or (
                isinstance(series, str) and series in (s.uid, s.pseudonym, s.description)
            )
            if hit:
                return s, None
        raise ScanError(
            where, f"series {series!r} not found; available: " + "; ".join(i.summary() for i in infos)
        )
    if len(infos) == 1:
        return infos[0], None
    ct = [s for s in infos if s.modality == "CT"]
    if not ct:
        raise ScanError(
            where, "no CT series; found modalities " + ", ".join(sorted({s.modality for s in infos}))
        )
    best, reason = choose_series(ct, opts.prefer_thickness_mm)
    msg = f"{where}: {len(infos)} series; {reason}. Pass series= to choose another."
    if not opts.quiet:
        warnings.warn(msg, stacklevel=4)
    return best, msg


# ----------------------------------------------------------------------------------------------- DICOM pixels


def stored_values(arr: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    """Stored pixel values as the standard defines them, whatever the decoder left in the unused bits.

    Bits above Bits Stored (0028,0101) are not part of the value and are ignored (PS3.5 8.1.1, PS3.3
    C.7.6.3.1); with Pixel Representation 1 the value is two's complement in Bits Stored bits and is
    sign-extended from bit ``bits_stored − 1``. (pydicom ≥ 3.0 does the same for native and JPEG data; this
    keeps the result right for any decoder.)

    Args:
        arr: integer pixel array (any shape) as decoded.
        bits_stored: Bits Stored, 1 … bits of ``arr``'s dtype (other values leave ``arr`` as it is).
        signed: Pixel Representation is 1.

    Returns:
        An array of the same shape, signed or unsigned integers of ``arr``'s item size.
    """
    nbits = arr.dtype.itemsize * 8
    if arr.dtype.kind not in "iu" or not 0 < bits_stored <= nbits:
        return arr
    work = np.int64 if nbits > 16 else np.int32
    v = arr.astype(work) & ((1 << bits_stored) - 1)
    if signed:
        sign = 1 << (bits_stored - 1)
        v = (v ^ sign) - sign
    return v.astype(np.dtype(f"{'i' if signed else 'u'}{arr.dtype.itemsize}"))


def _read_pixels(f: Path, nframes: int) -> tuple[np.ndarray, Any]:
    """Pixels of a file as (frames, rows, columns) stored values (masked and sign-extended), and its dataset."""
    try:
        ds = _dcmread(f, header_only=False)
    except Exception as e:
        raise ScanError(f, f"unreadable DICOM ({type(e).__name__}: {e})") from e
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise ScanError(f, "no pixel data")
    try:
        arr = ds.pixel_array
    except Exception as e:
        ts = ds.file_meta.TransferSyntaxUID
        raise ScanError(
            f, f"pixel data cannot be decoded (transfer syntax {getattr(ts, 'name', ts)}): {e}"
        ) from e
    rows, cols = int(ds.Rows), int(ds.Columns)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape != (nframes, rows, cols):
        raise ScanError(
            f,
            f"pixel data shape {arr.shape} is not frames × rows × columns ({nframes}, {rows}, {cols}) "
            "(colour or corrupt?)",
        )
    if "PixelData" in ds:
        arr = stored_values(
            arr,
            int(_get(ds, "BitsStored", arr.dtype.itemsize * 8)),
            int(_get(ds, "PixelRepresentation", 0)) == 1,
        )
    return arr, ds


@dataclass
class _Linear:
    """Pixels (outside padding) read with the linear rescale, counted for the plausibility check."""

    n: int = 0
    air: int = 0  # at or below −500 HU
    lo: float = np.inf
    hi: float = -np.inf

    def add(self, hu: np.ndarray) -> None:
        if hu.size:
            self.n += hu.size
            self.air += int((hu <= -500).sum())
            self.lo, self.hi = min(self.lo, float(hu.min())), max(self.hi, float(hu.max()))


def _to_hu(
    raw: np.ndarray, ds: Any, s: _Slice, opts: _Options, fixes: set[str], linear: _Linear
) -> np.ndarray:
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
    slope, intercept = s.slope, s.intercept
    if not s.has_rescale and opts.default_rescale is not None:
        slope, intercept = opts.default_rescale
    if (
        opts.fix_rsna
        and s.has_rescale
        and int(_get(ds, "BitsStored", 16)) == 12
        and int(_get(ds, "PixelRepresentation", 1)) == 0
        and intercept > -100
        and raw.dtype.kind == "i"
    ):
        # Signed 12-bit data stored as unsigned (RSNA 2019): undo the wrap, then the intercept is −1000.
        raw = raw + 1000
        raw[raw >= 4096] -= 4096
        intercept = -1000.0
        fixes.add("rsna_signed_12bit")
    hu = (raw * slope + intercept).astype(np.float32)
    if not s.has_rescale:
        linear.add(hu[~pad])
    outside = pad | (hu < opts.pad_below_hu)
    if outside.any():
        hu[outside] = AIR_HU
        fixes.add("padding_to_air")
    np.maximum(hu, -1024.0, out=hu)
    return hu


_META_TAGS = {
    "Modality": "modality",
    "Manufacturer": "manufacturer",
    "ManufacturerModelName": "model",
    "ConvolutionKernel": "kernel",
    "SliceThickness": "slice_thickness",
    "KVP": "kvp",
    "XRayTubeCurrent": "tube_current_ma",
    "Exposure": "exposure_mas",
    "SeriesDescription": "series_description",
    "SeriesNumber": "series_number",
    "BodyPartExamined": "body_part",
    "GantryDetectorTilt": "gantry_tilt_tag_deg",
    "PhotometricInterpretation": "photometric",
    "BitsStored": "bits_stored",
    "PixelRepresentation": "pixel_representation",
    "PatientPosition": "patient_position",
    "ScanOptions": "scan_options",
    "ContrastBolusAgent": "contrast_agent",
    "ImageType": "image_type",
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


class _Notes:
    """Warnings of one load: kept in ``meta["warnings"]``, raised unless quiet."""

    def __init__(self, meta: dict[str, Any], quiet: bool) -> None:
        self.meta, self.quiet = meta, quiet

    def warn(self, msg: str) -> None:
        self.meta["warnings"].append(msg)
        if not self.quiet:
            warnings.warn(msg, stacklevel=4)


def _load_dicom(files: Sequence[Path], where: Path, opts: _Options, explicit_list: bool) -> Scan:
    groups, skipped = _read_headers(files, explicit_list and len(files) == 1, where)
    if not groups:
        raise ScanError(
            where,
            "no DICOM images found"
            + (f" (skipped: {', '.join(f'{k.label} ({k.reason})' for k in skipped[:5])})" if skipped else ""),
        )
    info, choice_msg = _select(groups, where, opts)
    bad = [(f, ds) for f, ds in zip(info.files, info.headers) if str(_get(ds, "Modality", "?")) != "CT"]
    if bad:
        f, ds = bad[0]
        raise ScanError(
            f, f"modality is {_get(ds, 'Modality', 'missing')!r}, not CT: only CT scans are supported"
        )
    header = dict(zip(info.files, info.headers))
    slices, unplaced = _placed_slices(header, where)
    slices, left_out = _majority_geometry(slices, where)
    left_out = [f"{label}: {problem}" for label, problem in unplaced] + left_out
    meta = technical_meta(header[slices[0].file])
    meta.update(format="dicom", fixes=[], warnings=[])
    notes = _Notes(meta, opts.quiet)
    if choice_msg:
        meta["series_choice"] = choice_msg
    if skipped:
        notes.warn(
            f"{where}: skipped {len(skipped)} file(s): "
            + ", ".join(f"{k.label} ({k.reason})" for k in skipped)
        )
    # --- order by position along the slice normal (PS3.3 C.7.6.2.1.1) ---------------------------------------
    iop = slices[0].iop
    r, c = iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])
    n = np.cross(r, c)
    d = np.array([s.ipp @ n for s in slices])
    order = np.argsort(d, kind="stable")
    slices = [slices[i] for i in order]
    d = d[order]
    # --- pixels → HU ---------------------------------------------------------------------------------------
    fixes: set[str] = set()
    if any(getattr(header[s.file], "ctad_no_file_meta", False) for s in slices):
        fixes.add("read_without_file_meta")
    frames_in = {f: int(_get(ds, "NumberOfFrames", 1) or 1) for f, ds in header.items()}
    hu = np.empty((len(slices),) + slices[0].shape, np.float32)
    linear = _Linear()
    cache: dict[Path, tuple[np.ndarray, Any]] = {}  # multi-frame files only: single-frame ones are read once
    for k, s in enumerate(slices):
        got = cache.get(s.file) or _read_pixels(s.file, frames_in[s.file])
        if frames_in[s.file] > 1:
            cache[s.file] = got
        arr, ds = got
        if arr[s.frame].shape != s.shape:
            raise ScanError(s.file, f"{s.label}: pixels of shape {arr[s.frame].shape}, header says {s.shape}")
        hu[k] = _to_hu(arr[s.frame], ds, s, opts, fixes, linear)
    cache.clear()
    _finite_or_raise(hu, where)
    keep, duplicates = _drop_duplicates(slices, hu, d)
    if not keep.all():
        slices, hu, d = [s for s, k in zip(slices, keep) if k], hu[keep], d[keep]
    left_out += duplicates
    if left_out:
        notes.warn(f"{where}: left out {len(left_out)} image(s) of the series: " + "; ".join(left_out))
    _check_rescale(slices, linear, opts, fixes, notes)
    meta.update(n_images=len(slices), n_skipped=len(skipped), n_left_out=len(left_out))
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
        if opts.tilt == "error":
            raise ScanError(
                where,
                f"gantry tilt of {tilt_deg:.1f}° (slices stack obliquely to their normal); "
                "pass tilt='correct' to resample onto an orthogonal grid",
            )
        off = (ipp - ipp[0]) - np.outer(d - d[0], n)  # in-plane offset of each slice (mm)
        for k in range(len(slices)):
            dy, dx = off[k] @ c / sy, off[k] @ r / sx
            if abs(dy) > 1e-3 or abs(dx) > 1e-3:
                hu[k] = ndimage.shift(hu[k], (dy, dx), order=1, mode="constant", cval=AIR_HU)
        meta["fixes"].append("tilt_corrected")
        notes.warn(f"{where}: gantry tilt {tilt_deg:.1f}° corrected by shifting slices in-plane")
    # --- slice spacing --------------------------------------------------------------------------------------
    thick = np.array([s.thickness if s.thickness else np.nan for s in slices], dtype=np.float64)
    plan = _plan_z(d, thick, [s.label for s in slices], opts.z_step_mm)
    src_index = np.arange(len(slices))
    step = plan.step
    if not plan.regular:
        if opts.irregular == "error":
            raise ScanError(
                where,
                f"{plan.what}; pass irregular='resample' to interpolate onto a uniform {step:.2f} mm grid",
            )
        too_big = [k for _, k, _ in plan.gaps if k > opts.max_missing]
        if too_big:
            raise ScanError(
                where,
                f"{plan.what}: more than max_missing={opts.max_missing} missing slices, too "
                "large to interpolate",
            )
        unread = [k.label for k in skipped if k.maybe_slice] + [label for label, _ in unplaced]
        if plan.gaps and unread:
            raise ScanError(
                where,
                f"{plan.what}, and {', '.join(unread)} could not be read as DICOM or placed: it may "
                "be the missing slice, and a gap is never interpolated over a file that exists; repair "
                "or remove it",
            )
        hu, src_index = _resample_z(hu, d, step)
        meta["fixes"].append("z_resampled")
        meta["z_resampling"] = plan.record(d, len(hu))
        notes.warn(f"{where}: {plan.what}; resampled to a uniform {step:.2f} mm grid")
    # --- affine and canonical orientation -------------------------------------------------------------------
    a = np.eye(4)
    a[:3, 0], a[:3, 1], a[:3, 2], a[:3, 3] = n * step, c * sy, r * sx, ipp[0]
    a = _LPS_RAS @ a
    hu, aff, perm, flips = _to_canonical(hu, a)
    axis = perm.index(0)
    if flips[0]:
        src_index = src_index[::-1]
    spacing = tuple(float(v) for v in np.linalg.norm(aff[:3, :3], axis=0))
    meta.update(shape=list(hu.shape), spacing=list(spacing))
    return Scan(
        hu,
        spacing,
        aff,
        meta,
        str(where),
        axis,
        np.ascontiguousarray(src_index, dtype=np.int64),
        tuple(str(s.file) for s in slices),
    )


# ----------------------------------------------------------------------------------------------- series rules


def _placed_slices(header: dict[Path, Any], where: Path) -> tuple[list[_Slice], list[tuple[str, str]]]:
    """The images of a series with their geometry; files without usable geometry, when they are a minority.

    Returns:
        (slices, [(label, problem)] of the files left out because their position, orientation or pixel spacing
        is missing or malformed).

    Raises:
        ScanError: half of the files or more have no usable geometry (the first one's problem).
    """
    slices: list[_Slice] = []
    unplaced: list[tuple[str, str]] = []
    first: ScanError | None = None
    for f, ds in header.items():
        try:
            slices.extend(_slices_of(ds, f, _rel(f, where)))
        except ScanError as e:
            unplaced.append((_rel(f, where), e.problem))
            first = first or e
    if first is not None and 2 * len(unplaced) >= len(header):
        raise first
    return slices, unplaced


def _same_geometry(a: _Slice, b: _Slice) -> bool:
    return (
        a.shape == b.shape
        and float(np.abs(a.iop - b.iop).max()) <= 1e-3
        and float(np.abs(np.subtract(a.pixel_spacing, b.pixel_spacing)).max()) <= 1e-3
    )


def _geometry(s: _Slice) -> str:
    return (
        f"{s.shape[0]}×{s.shape[1]} pixels, orientation {np.round(s.iop, 4).tolist()}, "
        f"pixel spacing {s.pixel_spacing[0]:g}×{s.pixel_spacing[1]:g} mm"
    )


def _majority_geometry(slices: list[_Slice], where: Path) -> tuple[list[_Slice], list[str]]:
    """Keep the images sharing the geometry (shape, orientation, pixel spacing) of most of the series.

    Returns:
        (kept slices in their input order, one line per image left out naming it and how it differs).

    Raises:
        ScanError: no geometry is shared by more than half of the images.
    """
    groups: list[list[_Slice]] = []
    for s in slices:
        g = next((g for g in groups if _same_geometry(g[0], s)), None)
        if g is None:
            groups.append([s])
        else:
            g.append(s)
    if len(groups) == 1:
        return slices, []
    groups.sort(key=len, reverse=True)
    major = groups[0]
    if 2 * len(major) <= len(slices):
        raise ScanError(
            where,
            "no geometry is shared by most images of the series: "
            + "; ".join(
                f"{len(g)} image(s) of {_geometry(g[0])} ({', '.join(s.label for s in g[:3])}{', …' if len(g) > 3 else ''})"
                for g in groups
            ),
        )
    ref = major[0]
    out = []
    for g in groups[1:]:
        for s in g:
            what = []
            if s.shape != ref.shape:
                what.append(f"image shape {s.shape[0]}×{s.shape[1]}")
            if float(np.abs(s.iop - ref.iop).max()) > 1e-3:
                what.append(f"orientation {np.round(s.iop, 4).tolist()}")
            if float(np.abs(np.subtract(s.pixel_spacing, ref.pixel_spacing)).max()) > 1e-3:
                what.append(f"pixel spacing {s.pixel_spacing[0]:g}×{s.pixel_spacing[1]:g} mm")
            verb = "differ" if len(what) > 1 else "differs"
            out.append(
                f"{s.label}: {' and '.join(what)} {verb} from the {len(major)} images of {_geometry(ref)}"
            )
    keep = {id(s) for s in major}
    return [s for s in slices if id(s) in keep], out


#: Images closer than this along the slice normal are at one position (mm).
_SAME_POSITION_MM = 0.01


def _drop_duplicates(slices: list[_Slice], hu: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Identical images at one position: keep the first (by path); different ones: refuse, naming both.

    Returns:
        (mask of slices kept, one line per duplicate left out).
    """
    keep = np.ones(len(slices), bool)
    out = []
    first = 0
    for i in range(1, len(slices)):
        if d[i] - d[first] >= _SAME_POSITION_MM:
            first = i
        elif np.array_equal(hu[i], hu[first]):
            keep[i] = False
            out.append(f"{slices[i].label}: duplicate of {slices[first].label} (same position, same pixels)")
        else:
            raise ScanError(
                slices[i].file,
                f"same position ({d[i]:.2f} mm along the normal) as "
                f"{slices[first].label} but different pixels: two images at one place (repeated "
                "acquisition or mixed series?)",
            )
    return keep, out


def _check_rescale(
    slices: list[_Slice], linear: _Linear, opts: _Options, fixes: set[str], notes: _Notes
) -> None:
    """Images without Rescale Slope/Intercept: the identity (PS3.3 C.11.1.1) only when the values look like HU."""
    missing = [s for s in slices if not s.has_rescale]
    if not missing:
        return
    if opts.default_rescale is not None:
        fixes.add("rescale_default_given")
        return
    if linear.air < 0.01 * linear.n:
        raise ScanError(
            missing[0].file,
            f"no Rescale Slope/Intercept in {len(missing)} image(s), and the stored "
            f"values ({linear.lo:g} … {linear.hi:g}) are not HU: only {linear.air / linear.n:.1%} of the "
            "pixels are at or below −500 (air). Pass default_rescale=(slope, intercept) if you know "
            "them (unsigned storage often means (1, -1024))",
        )
    fixes.add("rescale_missing_identity")
    notes.warn(
        f"{missing[0].file}: no Rescale Slope/Intercept in {len(missing)} image(s); the stored values hold "
        "air below −500 and are read as HU (slope 1, intercept 0)"
    )


@dataclass
class _ZPlan:
    """How sorted slice positions become a regular grid (see :func:`_plan_z`)."""

    step: float
    regular: bool
    gaps: list[tuple[int, int, float]] = field(
        default_factory=list
    )  # (step i: d[i] → d[i + 1], missing, expected)
    slabs: list[tuple[float, int, float | None]] = field(
        default_factory=list
    )  # (step mm, slices, thickness mm)
    reasons: list[str] = field(default_factory=list)
    what: str = ""

    def record(self, d: np.ndarray, n_out: int) -> dict[str, Any]:
        """What was done, for ``Scan.meta``."""
        s = np.diff(d)
        return {
            "step_mm": round(self.step, 4),
            "reasons": self.reasons,
            "n_source_slices": len(d),
            "n_slices": n_out,
            "slabs": [{"step_mm": round(a, 4), "slices": b, "thickness_mm": t} for a, b, t in self.slabs],
            "gaps": [
                {"after_mm": round(float(d[i] - d[0]), 3), "step_mm": round(float(s[i]), 3), "missing": k}
                for i, k, _ in self.gaps
            ],
        }


def _tol(step: float) -> float:
    return max(0.05, 0.1 * step)


def _plan_z(d: np.ndarray, thick: np.ndarray, labels: Sequence[str], z_step: float | None) -> _ZPlan:
    """Classify the steps between sorted slice positions and choose the grid step.

    Regular: every step within 10 % (≥ 0.05 mm) of the median step; nothing to do. Otherwise each step is
    compared with the step expected there: when every slice gives SliceThickness and the series is contiguous
    (median step / mean thickness of the two slices within 10 % of 1), the mean thickness of the two slices
    (contiguous slices touch); else the larger neighbouring step (a missing slice stands out against both
    sides, a change of spacing between slabs does not). A step more than 1.5× the expected one is a gap of
    round(step / expected) − 1 missing slices. Slabs are runs of ≥ 2 equal steps; the grid step is ``z_step``,
    else the finest of the slab steps and the steps expected at gaps, else the median step.

    Args:
        d: (N,) sorted positions along the slice normal (mm).
        thick: (N,) SliceThickness (mm), NaN where unknown.
        labels: (N,) names of the slices, for messages.
        z_step: the grid step asked for, or None.
    """
    s = np.diff(d)
    if len(s) == 0:
        return _ZPlan(z_step or (float(thick[0]) if np.isfinite(thick[0]) and thick[0] > 0 else 1.0), True)
    med = float(np.median(s))
    if (np.abs(s - med) <= _tol(med)).all():
        return _ZPlan(med, True)
    mean_t = (thick[:-1] + thick[1:]) / 2
    contiguous = bool(
        np.isfinite(mean_t).all() and (mean_t > 0).all() and abs(np.median(s / mean_t) - 1) <= 0.1
    )
    gaps = []
    for i in range(len(s)):
        if contiguous:
            e = float(mean_t[i])
        else:
            nb = [s[j] for j in (i - 1, i + 1) if 0 <= j < len(s)]
            e = float(max(nb))
        if s[i] > 1.5 * e + 1e-3:
            gaps.append((i, max(1, int(round(s[i] / e)) - 1), e))
    in_gap = {i for i, _, _ in gaps}
    runs: list[list[int]] = []
    for i in range(len(s)):
        if (
            i not in in_gap
            and runs
            and runs[-1]
            and abs(s[i] - np.mean(s[runs[-1]])) <= _tol(np.mean(s[runs[-1]]))
        ):
            runs[-1].append(i)
        else:
            runs.append([] if i in in_gap else [i])
    slabs = []
    for run in (r for r in runs if len(r) >= 2):
        t = thick[run[0] : run[-1] + 2]
        slabs.append(
            (float(np.mean(s[run])), len(run) + 1, float(np.median(t)) if np.isfinite(t).all() else None)
        )
    ok = [i for i in range(len(s)) if i not in in_gap]
    candidates = [a for a, _, _ in slabs] + [e for _, _, e in gaps]  # a gap's expected step is a slab's step
    step = z_step or (min(candidates) if candidates else float(np.median(s[ok] if ok else s)))
    distinct: list[float] = []
    for a, _, _ in sorted(slabs):
        if not distinct or a - distinct[-1] > _tol(distinct[-1]):
            distinct.append(a)
    parts, reasons = [], []
    if gaps:
        reasons.append("missing_slices")
        parts += [
            f"gap of {s[i]:.2f} mm (≈{k} missing slice(s)) between {labels[i]} and {labels[i + 1]}"
            for i, k, _ in gaps
        ]
    if len(distinct) > 1:
        reasons.append("slabs")
        parts.append(
            "slice spacing changes within the series (contiguous slabs: "
            + ", ".join(
                f"{m} slices {a:g} mm apart" + (f", {t:g} mm thick" if t else "") for a, m, t in slabs
            )
            + ")"
        )
    if not parts:
        reasons.append("uneven")
        parts.append(f"uneven slice spacing (steps {s.min():.2f}–{s.max():.2f} mm, median {med:.2f})")
    return _ZPlan(float(step), False, gaps, slabs, reasons, "; ".join(parts))


def _resample_z(hu: np.ndarray, d: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of slices at sorted positions ``d`` onto a uniform grid of ``step`` from ``d[0]``.

    The grid ends at the last grid point not beyond ``d[-1]``.

    Returns:
        ((M, y, x) float32 volume, (M,) index of the nearest source slice of each grid slice).
    """
    m = int(np.floor((d[-1] - d[0]) / step + 1e-3)) + 1
    z = d[0] + step * np.arange(m)
    hi = np.clip(np.searchsorted(d, z, side="left"), 1, len(d) - 1)
    lo = hi - 1
    w = np.clip((z - d[lo]) / (d[hi] - d[lo]), 0.0, 1.0).astype(np.float32)
    out = np.empty((m,) + hu.shape[1:], np.float32)
    for k in range(m):
        out[k] = (1 - w[k]) * hu[lo[k]] + w[k] * hu[hi[k]]
    nearest = np.where(w < 0.5, lo, hi)
    return out, nearest
