"""Fixtures for the real-scan tests: tiny DICOM series written with pydicom, a toy head in HU."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, EnhancedCTImageStorage, ExplicitVRLittleEndian, generate_uid


def toy_head(
    shape: Sequence[int] = (24, 40, 40),
    spacing: Sequence[float] = (6.0, 5.0, 5.0),
    seed: int = 0,
    shift: Sequence[float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """(z, y, x) HU: air, scalp 40, skull 1500, brain 32, a ventricle 8, with noise; head centred + shift (mm)."""
    rng = np.random.default_rng(seed)
    z, y, x = (
        np.indices(shape).astype(float) - (np.asarray(shape)[:, None, None, None] - 1) / 2
    ) * np.asarray(spacing)[:, None, None, None]
    z, y, x = z - shift[0], y - shift[1], x - shift[2]
    r = np.sqrt((x / 70) ** 2 + (y / 88) ** 2 + (z / 62) ** 2)
    hu = np.full(shape, -1000.0)
    hu[r < 1.0] = 40.0
    hu[r < 0.92] = 1500.0
    hu[r < 0.84] = 32.0
    hu[np.sqrt((x / 10) ** 2 + ((y + 5) / 28) ** 2 + ((z - 4) / 12) ** 2) < 1] = 8.0
    return (hu + rng.normal(0, 3, shape)).astype(np.float32)


def write_slice(
    path: Path,
    hu: np.ndarray,
    *,
    ipp: Sequence[float],
    iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
    pixel_spacing: Sequence[float] = (5.0, 5.0),
    series_uid: str,
    study_uid: str = "1.2.3.4",
    patient_id: str = "PAT-001",
    modality: str = "CT",
    instance: int = 1,
    thickness: float | None = 6.0,
    kernel: str = "STANDARD",
    description: str = "HEAD PLAIN",
    series_number: int = 2,
    intercept: float = -1024.0,
    stored: np.ndarray | None = None,
    bits_stored: int = 16,
    signed: bool = True,
    rescale: bool = True,
    extra: dict | None = None,
) -> Path:
    """Write one single-frame CT slice (stored = HU − intercept unless ``stored`` is given).

    ``rescale=False`` leaves out Rescale Intercept/Slope (``stored`` then holds what is written).
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Doe^Jane"
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20200101"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance
    ds.Modality = modality
    ds.Manufacturer = "ToyCT"
    ds.ConvolutionKernel = kernel
    ds.SeriesDescription = description
    if thickness is not None:
        ds.SliceThickness = thickness
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [float(v) for v in ipp]
    ds.ImageOrientationPatient = [float(v) for v in iop]
    ds.PixelSpacing = [float(v) for v in pixel_spacing]
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if rescale:
        ds.RescaleIntercept = intercept
        ds.RescaleSlope = 1
    if stored is None:
        stored = np.rint(hu - intercept)
    ds.PixelData = stored.astype(np.int16 if signed else np.uint16).tobytes()
    for k, v in (extra or {}).items():
        setattr(ds, k, v)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(
    folder: Path,
    vol: np.ndarray,
    *,
    spacing: Sequence[float] = (6.0, 5.0, 5.0),
    origin: Sequence[float] = (-100.0, -100.0, -70.0),
    series_uid: str | None = None,
    shear_per_slice: Sequence[float] = (0.0, 0.0, 0.0),
    positions: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
    stored: np.ndarray | None = None,
    **kw,
) -> list[Path]:
    """Write (z, y, x) HU as an axial series (LPS: x → patient left, y → posterior, z → superior).

    ``stored``: (z, y, x) values to write instead of HU − intercept; ``kw`` go to :func:`write_slice`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    uid = series_uid or generate_uid()
    zs = positions if positions is not None else [origin[2] + k * spacing[0] for k in range(vol.shape[0])]
    out = []
    for k, zpos in enumerate(zs):
        ipp = (origin[0] + shear_per_slice[0] * k, origin[1] + shear_per_slice[1] * k, zpos)
        name = names[k] if names is not None else f"IM{k:04d}.dcm"
        out.append(
            write_slice(
                folder / name,
                vol[k],
                ipp=ipp,
                pixel_spacing=(spacing[1], spacing[2]),
                series_uid=uid,
                instance=k + 1,
                thickness=spacing[0],
                stored=None if stored is None else stored[k],
                **kw,
            )
        )
    return out


def series_images(
    hu: np.ndarray,
    spacing: Sequence[float] = (6.0, 5.0, 5.0),
    origin: Sequence[float] = (-100.0, -100.0, -70.0),
) -> list[tuple[np.ndarray, tuple, tuple, tuple]]:
    """What :func:`write_series` wrote, for :func:`assert_matches_standard`: per slice (HU, IPP, IOP, PixelSpacing)."""
    return [
        (
            hu[k],
            (origin[0], origin[1], origin[2] + k * spacing[0]),
            (1, 0, 0, 0, 1, 0),
            (spacing[1], spacing[2]),
        )
        for k in range(len(hu))
    ]


def write_multiframe(
    path: Path,
    vol: np.ndarray,
    *,
    spacing: Sequence[float] = (6.0, 5.0, 5.0),
    order: Sequence[int] | None = None,
    origin: Sequence[float] = (-100.0, -100.0, -70.0),
    series_uid: str | None = None,
    study_uid: str | None = None,
    intercept: float = -1024.0,
) -> Path:
    """Enhanced CT (one file, frames in ``order``) with positions in per-frame functional groups.

    Frame ``k`` of ``vol`` lies at ``origin + k · spacing[0]`` along z; orientation, pixel measures and rescale
    are in the shared functional groups (PS3.3 C.7.6.16).
    """
    order = list(order if order is not None else range(vol.shape[0]))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = "PAT-MF"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.NumberOfFrames = len(order)
    ds.Rows, ds.Columns = vol.shape[1:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [spacing[1], spacing[2]]
    pm.SliceThickness = spacing[0]
    po = Dataset()
    po.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    pv = Dataset()
    pv.RescaleIntercept = intercept
    pv.RescaleSlope = 1
    pv.RescaleType = "HU"
    shared.PixelMeasuresSequence = [pm]
    shared.PlaneOrientationSequence = [po]
    shared.PixelValueTransformationSequence = [pv]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k in order:
        fg = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [origin[0], origin[1], origin[2] + k * spacing[0]]
        fg.PlanePositionSequence = [pp]
        frames.append(fg)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = np.rint(vol[order] - intercept).astype(np.int16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def pixel_world_ras(
    ipp: Sequence[float], iop: Sequence[float], pixel_spacing: Sequence[float], shape: Sequence[int]
) -> np.ndarray:
    """(rows, columns, 3) RAS+ mm of each pixel centre of one DICOM image.

    PS3.3 C.7.6.2.1.1: P = S + c·Δc·X + r·Δr·Y, with S = ImagePositionPatient, X and Y the row and column
    direction cosines of ImageOrientationPatient, Δr, Δc = PixelSpacing (between rows, between columns), r, c
    the row and column index. DICOM patient coordinates are LPS; RAS = (−x, −y, z) (NIfTI-1 qform convention).
    """
    x, y = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    r, c = np.mgrid[: shape[0], : shape[1]]
    p = np.asarray(ipp, float) + c[..., None] * pixel_spacing[1] * x + r[..., None] * pixel_spacing[0] * y
    return p * np.array([-1.0, -1.0, 1.0])


def assert_matches_standard(
    scan,
    images: Sequence[tuple[np.ndarray, Sequence[float], Sequence[float], Sequence[float]]],
    atol: float = 0.5,
) -> None:
    """Every pixel of every source image lies on a voxel of ``scan`` (through its affine) holding its HU.

    Args:
        scan: what load_scan returned.
        images: per source image (hu (rows, columns) from the stored values and the rescale, ImagePositionPatient,
            ImageOrientationPatient, PixelSpacing).
        atol: HU tolerance.
    """
    inv = np.linalg.inv(scan.affine)
    seen = set()
    for hu, ipp, iop, ps in images:
        world = pixel_world_ras(ipp, iop, ps, hu.shape)
        ijk = world @ inv[:3, :3].T + inv[:3, 3]
        assert np.abs(ijk - np.rint(ijk)).max() < 1e-3, "pixel centres fall between voxels"
        idx = np.rint(ijk).astype(int)
        assert (idx >= 0).all() and (idx < np.array(scan.hu.shape)).all(), "pixel outside the volume"
        got = scan.hu[idx[..., 0], idx[..., 1], idx[..., 2]]
        assert np.abs(got - hu).max() <= atol
        seen.add(tuple(idx.reshape(-1, 3)[0]))
    assert len(seen) == len(images), "two source images landed on the same voxels"


def file_hashes(paths: Sequence[Path]) -> list[str]:
    """SHA-256 of each file (to check that loading left the inputs unchanged)."""
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


@pytest.fixture
def head() -> Callable[..., np.ndarray]:
    return toy_head


@pytest.fixture
def dicom() -> object:
    """The writers, as a namespace: ``dicom.series(...)``, ``dicom.slice(...)``, ``dicom.multiframe(...)``."""

    class _W:
        series = staticmethod(write_series)
        slice = staticmethod(write_slice)
        multiframe = staticmethod(write_multiframe)

    return _W()
