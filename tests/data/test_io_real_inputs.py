"""load_scan on the failure kinds of issue 12 (real scans as users have them), each from its smallest input.

Expected HU, geometry and slice order come from the standards, computed here from what was written:
HU = RescaleSlope · stored value + RescaleIntercept (PS3.3 C.11.1.1.2, C.7.6.16.2.9 for Enhanced CT); pixel
centres in patient space from ImagePositionPatient, ImageOrientationPatient and PixelSpacing (PS3.3
C.7.6.2.1.1, :func:`conftest.pixel_world_ras`), which the returned affine must reproduce; stored values are the
low Bits Stored bits, two's complement when Pixel Representation is 1 (PS3.5 8.1.1, PS3.3 C.7.6.3.1); NIfTI
voxel (i, j, k) lies at sform · (i, j, k, 1). Inputs are hashed before and after every load.
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import assert_matches_standard, file_hashes, pixel_world_ras, series_images
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import generate_uid

from ctad_core.data.io import ScanError, load_scan, stored_values

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def local_testdata(name: str) -> str:
    """A pydicom test file that is on this machine (pydicom or pydicom-data); never downloaded."""
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} is not installed (pip install pydicom-data)"
    return path


def images_of(files: list[Path]) -> list[tuple[np.ndarray, list, list, list]]:
    """(HU by the standard's rescale, IPP, IOP, PixelSpacing) of single-frame uncompressed files."""
    out = []
    for f in files:
        ds = pydicom.dcmread(f, force=True)  # also files without preamble and file meta
        stored = np.frombuffer(ds.PixelData, "<i2" if ds.PixelRepresentation else "<u2").reshape(
            ds.Rows, ds.Columns
        )
        hu = stored * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
        out.append(
            (hu, list(ds.ImagePositionPatient), list(ds.ImageOrientationPatient), list(ds.PixelSpacing))
        )
    return out


def load_quietly(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_scan(path, **kw)


# ------------------------------------------------------------------------- 1. Enhanced CT, one frame per file


def test_enhanced_ct_one_frame_per_file(tmp_path, dicom, head) -> None:
    vol = np.rint(head(shape=(4, 20, 20), spacing=(6.0, 5.0, 5.0)))
    uid, study = generate_uid(), generate_uid()
    files = []
    for k in range(4):  # names run against the positions: E3.dcm holds the lowest slice
        files.append(
            dicom.multiframe(
                tmp_path / f"E{3 - k}.dcm",
                vol[k : k + 1],
                origin=(-50.0, -50.0, 6.0 * k),
                series_uid=uid,
                study_uid=study,
            )
        )
    assert all(int(pydicom.dcmread(f).NumberOfFrames) == 1 for f in files)
    before = file_hashes(files)
    scan = load_scan(tmp_path)
    assert scan.hu.shape == (4, 20, 20)
    assert_matches_standard(
        scan, [(vol[k], (-50.0, -50.0, 6.0 * k), AXIAL, (5.0, 5.0)) for k in range(4)], atol=0
    )
    # the slices stack inferior → superior: E3 (z = 0) first
    assert [Path(scan.sources[i]).name for i in scan.source_index] == ["E3.dcm", "E2.dcm", "E1.dcm", "E0.dcm"]
    assert file_hashes(files) == before


# ------------------------------------------------------------------------- 2. no preamble, no file-meta group


def strip_file_meta(path: Path, implicit: bool = True) -> None:
    """Rewrite a file as older exports do: no 128-byte preamble, no "DICM", no group 0002 (PS3.10 7.1)."""
    ds = pydicom.dcmread(path)
    ds.file_meta = FileMetaDataset()
    ds.preamble = None
    pydicom.dcmwrite(path, ds, implicit_vr=implicit, little_endian=True, enforce_file_format=False)
    raw = path.read_bytes()
    assert raw[128:132] != b"DICM" and raw[:2] == b"\x08\x00", "not the failure kind"


def test_dicom_without_preamble_or_file_meta(tmp_path, dicom, head) -> None:
    vol = head(shape=(4, 20, 20))
    files = dicom.series(tmp_path / "s", vol)
    strip_file_meta(files[1], implicit=True)
    strip_file_meta(files[2], implicit=False)
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(files[1])  # plain pydicom refuses it
    before = file_hashes(files)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no file skipped, no gap: nothing to warn about
        scan = load_scan(tmp_path / "s")
    assert scan.hu.shape == (4, 20, 20) and scan.meta["n_skipped"] == 0
    assert "read_without_file_meta" in scan.meta["fixes"] and "z_resampled" not in scan.meta["fixes"]
    assert_matches_standard(scan, images_of(files))
    one = load_scan(files[1])
    assert_matches_standard(one, images_of([files[1]]))
    assert file_hashes(files) == before


def test_unreadable_file_is_named_and_never_interpolated_over(tmp_path, dicom, head) -> None:
    vol = head(shape=(5, 20, 20))
    files = dicom.series(tmp_path / "s", vol)
    (tmp_path / "s" / "notes.txt").write_text("scanned on the old console")
    files[2].write_bytes(b"\x00\x01garbage" * 20)  # a broken slice where IM0002.dcm was
    before = file_hashes(files)
    with pytest.raises(
        ScanError,
        match=r"gap of 12.00 mm .* between IM0001.dcm and IM0003.dcm.*IM0002.dcm could "
        r"not be read as DICOM or placed",
    ):
        load_quietly(tmp_path / "s")
    with pytest.warns(
        UserWarning, match=r"skipped 2 file\(s\): IM0002.dcm \(not DICOM\), notes.txt \(not DICOM\)"
    ):
        with pytest.raises(ScanError):
            load_scan(tmp_path / "s")
    files[2].unlink()  # really missing: interpolated, and the document is named but not blamed
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\): notes.txt \(not DICOM\)"):
        scan = load_scan(tmp_path / "s")
    assert scan.hu.shape == (5, 20, 20) and scan.meta["z_resampling"]["gaps"][0]["missing"] == 1
    assert file_hashes(files[:2] + files[3:]) == before[:2] + before[3:]


# ------------------------------------------------------------------------- 3. extra images in a series


def test_scout_without_localizer_type_is_left_out(tmp_path, dicom, head) -> None:
    vol = head(shape=(4, 20, 20))
    files = dicom.series(tmp_path / "s", vol)
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    scout = dicom.slice(
        tmp_path / "s" / "0000.dcm",
        head(shape=(1, 32, 20))[0],
        ipp=(-100, 0, 50),
        iop=CORONAL,
        series_uid=uid,
        extra={"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"]},
    )
    before = file_hashes(files + [scout])
    with pytest.warns(
        UserWarning,
        match=r"left out 1 image\(s\) of the series: 0000.dcm: image shape 32×20 and "
        r"orientation .* differ from the 4 images of 20×20",
    ):
        scan = load_scan(tmp_path / "s")
    assert scan.meta["n_images"] == 4 and str(scout) not in scan.sources
    assert_matches_standard(scan, images_of(files))
    assert file_hashes(files + [scout]) == before


def test_identical_duplicates_are_dropped(tmp_path, dicom, head) -> None:
    vol = head(shape=(4, 20, 20))
    files = dicom.series(tmp_path / "s", vol)
    (tmp_path / "s" / "again").mkdir()
    shutil.copy(files[1], tmp_path / "s" / "again" / "IM0001.dcm")  # the same file sent twice
    ds = pydicom.dcmread(files[2])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()  # re-sent with a new UID
    ds.save_as(tmp_path / "s" / "resent.dcm")
    inputs = [*files, tmp_path / "s" / "again" / "IM0001.dcm", tmp_path / "s" / "resent.dcm"]
    before = file_hashes(inputs)
    with pytest.warns(
        UserWarning,
        match=r"left out 2 image\(s\).*again/IM0001.dcm: duplicate of IM0001.dcm.*"
        r"resent.dcm: duplicate of IM0002.dcm",
    ):
        scan = load_scan(tmp_path / "s")
    assert scan.hu.shape == (4, 20, 20) and scan.meta["n_left_out"] == 2
    assert_matches_standard(scan, images_of(files))
    assert file_hashes(inputs) == before


def test_image_without_geometry_is_left_out_but_never_interpolated_over(tmp_path, dicom, head) -> None:
    vol = head(shape=(5, 20, 20))
    files = dicom.series(tmp_path / "s", vol)
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    screen = dicom.slice(tmp_path / "s" / "dose.dcm", vol[0], ipp=(0, 0, 0), series_uid=uid)
    ds = pydicom.dcmread(screen)
    del ds.ImagePositionPatient  # a screen capture filed under the series
    ds.save_as(screen)
    with pytest.warns(
        UserWarning,
        match=r"left out 1 image\(s\) of the series: dose.dcm: ImagePositionPatient is "
        r"missing",
    ):
        scan = load_scan(tmp_path / "s")
    assert_matches_standard(scan, images_of(files))
    files[2].unlink()  # now a slice is missing: dose.dcm could be it
    with pytest.raises(
        ScanError, match=r"gap of 12.00 mm .*, and dose.dcm could not be read as DICOM or placed"
    ):
        load_quietly(tmp_path / "s")
    screen.unlink()
    with pytest.warns(UserWarning, match="resampled to a uniform 6.00 mm grid"):
        load_scan(tmp_path / "s")


@pytest.mark.parametrize("series_iop, stray_iop", [(CORONAL, AXIAL), (AXIAL, CORONAL)])
def test_stray_orientation_sorting_first_is_named(tmp_path, dicom, head, series_iop, stray_iop) -> None:
    vol = head(shape=(4, 20, 20))
    uid = generate_uid()
    normal = np.cross(series_iop[:3], series_iop[3:])
    files = [
        dicom.slice(
            tmp_path / f"IM{k}.dcm",
            vol[k],
            ipp=tuple(np.array([-50.0, -50.0, -50.0]) + 6.0 * k * normal),
            iop=series_iop,
            series_uid=uid,
        )
        for k in range(4)
    ]
    dicom.slice(tmp_path / "000.dcm", vol[0], ipp=(-50, -50, 0), iop=stray_iop, series_uid=uid)
    with pytest.warns(UserWarning, match=r"left out 1 image\(s\) of the series: 000.dcm: orientation") as rec:
        scan = load_scan(tmp_path)
    left_out = next(str(w.message) for w in rec if "left out" in str(w.message))
    assert not re.search(r"IM\d\.dcm", left_out)  # no good slice is blamed
    assert_matches_standard(scan, images_of(files))


@pytest.mark.parametrize("name", ["000.dcm", "zzz.dcm"])
def test_two_images_at_one_position_name_both_files(tmp_path, dicom, head, name) -> None:
    vol = head(shape=(4, 20, 20))
    files = dicom.series(tmp_path / "s", vol)
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    dicom.slice(tmp_path / "s" / name, vol[1] + 50, ipp=(-100, -100, -64), series_uid=uid)
    with pytest.raises(ScanError) as err:
        load_quietly(tmp_path / "s")
    assert name in str(err.value) and "IM0001.dcm" in str(err.value) and "different pixels" in str(err.value)


def test_no_majority_geometry_is_refused(tmp_path, dicom, head) -> None:
    vol = head(shape=(4, 20, 20))
    uid = generate_uid()
    for k in range(4):
        dicom.slice(
            tmp_path / f"IM{k}.dcm",
            vol[k],
            ipp=(-50, -50 + 6 * (k % 2), 6.0 * k),
            iop=(AXIAL, CORONAL)[k % 2],
            series_uid=uid,
        )
    with pytest.raises(
        ScanError,
        match=r"no geometry is shared by most images.*2 image\(s\).*IM0.dcm, IM2.dcm.*"
        r"2 image\(s\).*IM1.dcm, IM3.dcm",
    ):
        load_quietly(tmp_path)


# ------------------------------------------------------------------------- 4. slice thickness changes


def linear_in_z(z: np.ndarray, n: int = 20) -> np.ndarray:
    """(len(z), n, n) HU = 8 · z + an in-plane pattern: integers at the positions used here, and linear
    interpolation along z reproduces it exactly."""
    yy, xx = np.mgrid[:n, :n]
    return (8.0 * np.asarray(z)[:, None, None] + 20.0 * yy - 15.0 * xx).astype(np.float64)


def write_positions(folder: Path, dicom, z: list[float], thickness: list[float | None]) -> list[Path]:
    folder.mkdir()
    uid = generate_uid()
    vol = linear_in_z(np.array(z))
    return [
        dicom.slice(
            folder / f"IM{k}.dcm",
            vol[k],
            ipp=(-50.0, -50.0, z[k]),
            series_uid=uid,
            thickness=thickness[k],
            pixel_spacing=(5.0, 5.0),
        )
        for k in range(len(z))
    ]


def assert_on_grid(scan, z0: float, step: float, n: int) -> None:
    """Slice k lies at z0 + k·step (RAS z through the affine) and holds the true HU there."""
    assert scan.hu.shape == (n, 20, 20) and scan.spacing[0] == pytest.approx(step)
    inv = np.linalg.inv(scan.affine)
    z = z0 + step * np.arange(n)
    for k in range(n):
        world = pixel_world_ras((-50.0, -50.0, z[k]), AXIAL, (5.0, 5.0), (20, 20))
        idx = np.rint(world @ inv[:3, :3].T + inv[:3, 3]).astype(int)
        assert (idx[..., 0] == k).all()
        assert (
            np.abs(scan.hu[idx[..., 0], idx[..., 1], idx[..., 2]] - linear_in_z(z[k : k + 1])[0]).max() < 0.01
        )


THIN_THICK = [0.0, 2.5, 5.0, 7.5, 11.25, 16.25, 21.25, 26.25]  # 4 × 2.5 mm then 4 × 5 mm, contiguous
THIN_THICK_T = [2.5] * 4 + [5.0] * 4


def test_thin_then_thick_slabs_are_contiguous(tmp_path, dicom) -> None:
    files = write_positions(tmp_path / "s", dicom, THIN_THICK, THIN_THICK_T)
    before = file_hashes(files)
    with pytest.raises(
        ScanError,
        match=r"slice spacing changes within the series \(contiguous slabs: 4 slices 2.5 "
        r"mm apart, 2.5 mm thick, 4 slices 5 mm apart, 5 mm thick\)",
    ) as err:
        load_scan(tmp_path / "s", irregular="error")
    assert "missing" not in str(err.value)
    with pytest.warns(UserWarning, match="resampled to a uniform 2.50 mm grid") as rec:
        scan = load_scan(tmp_path / "s")
    assert not any("missing" in str(w.message) for w in rec)
    assert_on_grid(scan, 0.0, 2.5, 11)  # 0 … 25 mm; 26.25 is not on the grid
    rs = scan.meta["z_resampling"]
    assert rs["reasons"] == ["slabs"] and rs["step_mm"] == 2.5 and rs["gaps"] == []
    assert [(s["step_mm"], s["slices"], s["thickness_mm"]) for s in rs["slabs"]] == [
        (2.5, 4, 2.5),
        (5.0, 4, 5.0),
    ]
    assert_on_grid(load_quietly(tmp_path / "s", z_step_mm=1.25), 0.0, 1.25, 22)  # a step the user asks for
    assert file_hashes(files) == before


@pytest.mark.parametrize("thickness", [True, False])
def test_5_10_protocol_is_not_put_on_a_7_5_grid(tmp_path, dicom, thickness) -> None:
    z = [0.0, 5.0, 10.0, 15.0, 22.5, 32.5, 42.5, 52.5]
    t = [5.0] * 4 + [10.0] * 4 if thickness else [None] * 8
    write_positions(tmp_path / "s", dicom, z, t)
    scan = load_quietly(tmp_path / "s")
    assert_on_grid(scan, 0.0, 5.0, 11)
    assert scan.meta["z_resampling"]["reasons"] == ["slabs"]


@pytest.mark.parametrize(
    "z, t, gap",
    [
        (
            THIN_THICK[:2] + THIN_THICK[3:],
            THIN_THICK_T[:2] + THIN_THICK_T[3:],
            r"gap of 5.00 mm \(≈1 missing slice\(s\)\) "
            r"between IM1.dcm and IM2.dcm",
        ),  # a thin slice missing, thickness known
        (
            [0.0, 5.0, 10.0, 15.0, 22.5, 32.5, 52.5, 62.5],
            [None] * 8,
            r"gap of 20.00 mm \(≈1 missing slice\(s\)\) "
            r"between IM5.dcm and IM6.dcm",
        ),  # a thick slice missing, no thickness given
    ],
)
def test_missing_slice_within_slabs_is_still_a_gap(tmp_path, dicom, z, t, gap) -> None:
    write_positions(tmp_path / "s", dicom, z, t)
    with pytest.raises(ScanError, match=gap):
        load_scan(tmp_path / "s", irregular="error")
    with pytest.warns(UserWarning, match=gap):
        scan = load_scan(tmp_path / "s")
    assert "missing_slices" in scan.meta["z_resampling"]["reasons"]
    assert [g["missing"] for g in scan.meta["z_resampling"]["gaps"]] == [1]


# ------------------------------------------------------------------------- 5. compressed transfer syntaxes


def as_ct(src: str, dst: Path, intercept: float) -> Path:
    """A copy of a pydicom test file made a one-slice CT (header only; the compressed pixel data are untouched)."""
    ds = pydicom.dcmread(src)
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [-40.0, -30.0, 12.0]
    ds.ImageOrientationPatient = list(AXIAL)
    ds.PixelSpacing = [0.5, 0.75]
    ds.RescaleSlope, ds.RescaleIntercept = 1, intercept
    if "NumberOfFrames" in ds:
        del ds.NumberOfFrames
    ds.save_as(dst)
    return dst


def decoded_by_gdcm(path: str | Path) -> np.ndarray:
    """Pixels decoded by another decoder: GDCM inside SimpleITK (a dependency already), rescale applied."""
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path), sitk.sitkFloat64))[0]


@pytest.mark.parametrize(
    "name, syntax, twin, intercept, atol",
    [
        ("JPEG-LL.dcm", "1.2.840.10008.1.2.4.70", None, 0.0, 0),  # JPEG Lossless P14 SV1
        (
            "JPGExtended.dcm",
            "1.2.840.10008.1.2.4.51",
            None,
            -1024.0,
            1,
        ),  # JPEG Extended 12-bit (lossy: rounding)
        (
            "MR_small_jpeg_ls_lossless.dcm",
            "1.2.840.10008.1.2.4.80",
            "MR_small.dcm",
            -1024.0,
            0,
        ),  # JPEG-LS Lossless
    ],
)
def test_compressed_transfer_syntaxes(tmp_path, name, syntax, twin, intercept, atol) -> None:
    src = local_testdata(name)
    before = file_hashes([Path(src)])
    f = as_ct(src, tmp_path / "ct.dcm", intercept)
    assert pydicom.dcmread(f).file_meta.TransferSyntaxUID == syntax
    scan = load_scan(f)
    if twin is not None:  # the same image stored uncompressed: decoded by plain NumPy, no plugin
        ref = pydicom.dcmread(local_testdata(twin))
        expect = np.frombuffer(ref.PixelData, "<i2" if ref.PixelRepresentation else "<u2").reshape(
            ref.Rows, ref.Columns
        )
        expect = expect + intercept
    else:
        expect = decoded_by_gdcm(f)
    assert_matches_standard(scan, [(expect, (-40.0, -30.0, 12.0), AXIAL, (0.5, 0.75))], atol=atol)
    assert file_hashes([Path(src)]) == before


def test_pydicom_reference_values_of_jpeg_files(tmp_path) -> None:
    """The values pydicom's own tests check for these files (tests/pixels/pixels_reference.py)."""
    ll = load_scan(as_ct(local_testdata("JPEG-LL.dcm"), tmp_path / "ll.dcm", 0.0))
    ext = load_scan(as_ct(local_testdata("JPGExtended.dcm"), tmp_path / "ext.dcm", -1024.0))
    # (rows, columns) = hu[0, ::-1, ::-1]: RAS reorientation flips both in-plane axes of an LPS axial image
    ll_rc = ll.hu[0, ::-1, ::-1]
    assert tuple(ll_rc[400, 124:132]) == (60, 58, 61, 68, 59, 65, 64, 67)
    assert tuple(ll_rc[600, 124:132]) == (3, 1, 2, 0, 2, 1, 2, 0)
    ext_rc = ext.hu[0, ::-1, ::-1] + 1024.0
    assert ext_rc[420, 140] == 244 and ext_rc[230, 120] == 95


def test_real_ct_jpeg_lossless(tmp_path) -> None:
    """A CT stored as JPEG Lossless SV1 in pydicom-data, as it is: HU against GDCM's decoding."""
    src = local_testdata("bad_sequence.dcm")
    before = file_hashes([Path(src)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its UIDs are not valid UI values
        scan = load_scan(src)
        ds = pydicom.dcmread(src, stop_before_pixels=True)
    assert str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.70" and ds.Modality == "CT"
    assert_matches_standard(
        scan,
        [(decoded_by_gdcm(src), ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing)],
        atol=0,
    )
    assert file_hashes([Path(src)]) == before


# ------------------------------------------------------------------------- 6. CT without Rescale Slope/Intercept


WIDE = (6.0, 10.0, 10.0)  # 200 mm field of view: air around the toy head, as around every real head


def test_unsigned_ct_without_rescale_is_refused(tmp_path, dicom, head) -> None:
    vol = np.rint(head(shape=(4, 20, 20), spacing=WIDE))
    assert (vol < -500).mean() > 0.1  # air, stored as ≈ 24 below
    files = dicom.series(tmp_path, vol, spacing=WIDE, signed=False, stored=vol + 1024, rescale=False)
    before = file_hashes(files)
    with pytest.raises(
        ScanError,
        match=r"IM0000.dcm: no Rescale Slope/Intercept in 4 image\(s\), and the stored values \(\d+ … \d+\) are not HU",
    ):
        load_scan(tmp_path)
    scan = load_scan(tmp_path, default_rescale=(1, -1024))
    assert_matches_standard(scan, series_images(vol, WIDE), atol=0)
    assert "rescale_default_given" in scan.meta["fixes"]
    assert file_hashes(files) == before


def test_signed_ct_without_rescale_is_read_as_hu(tmp_path, dicom, head) -> None:
    vol = np.rint(head(shape=(4, 20, 20), spacing=WIDE))
    dicom.series(tmp_path, vol, spacing=WIDE, stored=vol, rescale=False)
    with pytest.warns(UserWarning, match="no Rescale Slope/Intercept in 4 image"):
        scan = load_scan(tmp_path)
    # no Modality LUT: the output of the modality transformation is the stored value (PS3.3 C.11.1)
    assert_matches_standard(scan, series_images(vol, WIDE), atol=0)
    assert "rescale_missing_identity" in scan.meta["fixes"]


# ------------------------------------------------------------------------- 7. NIfTI with trailing length-1 axes


def test_nifti_with_trailing_unit_axes(tmp_path) -> None:
    data = np.random.default_rng(0).integers(-1000, 2000, size=(20, 20, 4, 1, 1)).astype(np.int16)
    sform = np.array([[-0.8, 0.0, 0.0, 30.0], [0.0, 0.0, 3.0, -20.0], [0.0, 0.9, 0.0, 5.0], [0, 0, 0, 1.0]])
    img = nib.Nifti1Image(data, sform)
    img.set_sform(sform, code=1)
    nib.save(img, str(tmp_path / "x.nii.gz"))
    before = file_hashes([tmp_path / "x.nii.gz"])
    scan = load_scan(tmp_path / "x.nii.gz")
    assert scan.hu.shape == (20, 4, 20)  # storage axes (x, y, z) = (R, S, A) reordered to (S, A, R)
    i, j, k = np.indices(data.shape[:3])
    world = np.stack([i, j, k], -1) @ sform[:3, :3].T + sform[:3, 3]  # NIfTI-1: sform maps (i, j, k) → RAS+
    idx = np.rint(world @ np.linalg.inv(scan.affine)[:3, :3].T + np.linalg.inv(scan.affine)[:3, 3]).astype(
        int
    )
    assert np.array_equal(scan.hu[idx[..., 0], idx[..., 1], idx[..., 2]], data[..., 0, 0])
    assert file_hashes([tmp_path / "x.nii.gz"]) == before
    nib.save(nib.Nifti1Image(np.zeros((20, 20, 4, 2), np.int16), sform), str(tmp_path / "t.nii.gz"))
    with pytest.raises(ScanError, match=r"t.nii.gz: expected a 3D volume, got shape \(20, 20, 4, 2\)"):
        load_scan(tmp_path / "t.nii.gz")


def test_itk_image_with_trailing_unit_axis(tmp_path) -> None:
    import SimpleITK as sitk

    data = np.random.default_rng(1).integers(-1000, 2000, size=(1, 4, 6, 8)).astype(np.int16)  # (t, z, y, x)
    img = sitk.GetImageFromArray(data, isVector=False)
    img.SetSpacing((0.5, 0.7, 3.0, 1.0))
    sitk.WriteImage(img, str(tmp_path / "x.mha"))
    scan = load_scan(tmp_path / "x.mha")
    assert scan.spacing == pytest.approx((3.0, 0.7, 0.5))
    # ITK's identity direction is LPS: RAS reorientation flips y and x
    assert np.array_equal(scan.hu, data[0, :, ::-1, ::-1])
    sitk.WriteImage(sitk.GetImageFromArray(data[0], isVector=True), str(tmp_path / "v.mha"))  # 8 components
    with pytest.raises(ScanError, match="v.mha: 8 components per pixel"):
        load_scan(tmp_path / "v.mha")


# ------------------------------------------------------------------------- 8. bits above Bits Stored, sign


def test_stored_values_mask_and_sign_extend() -> None:
    """By hand from PS3.5 8.1.1: only the low Bits Stored bits count; Pixel Representation 1: two's complement."""
    raw = np.array([0x0FFF, 0xF000, 0x7123, 0x0800, 0xF7FF], np.uint16)
    assert stored_values(raw, 12, signed=False).tolist() == [4095, 0, 0x123, 2048, 2047]
    assert stored_values(raw, 12, signed=True).tolist() == [-1, 0, 0x123, -2048, 2047]
    assert stored_values(raw.view(np.int16), 16, signed=True).tolist() == raw.view(np.int16).tolist()
    assert stored_values(np.array([0x1FF], np.uint16), 8, signed=True).tolist() == [-1]


def test_garbage_above_bits_stored_is_ignored(tmp_path, dicom, head) -> None:
    vol = np.clip(np.rint(head(shape=(4, 20, 20))), -1024, 3071)
    garbage = np.random.default_rng(2).integers(1, 16, size=vol.shape) << 12  # bits 12–15, never all clear
    stored = (vol + 1024).astype(np.int64) | garbage
    files = dicom.series(tmp_path, vol, bits_stored=12, signed=False, stored=stored)
    assert max(int(np.frombuffer(pydicom.dcmread(f).PixelData, "<u2").max()) for f in files) > 4095
    before = file_hashes(files)
    assert_matches_standard(load_scan(tmp_path), series_images(vol), atol=0)
    assert file_hashes(files) == before


@pytest.mark.parametrize("high_bits", [0x0, 0xA])
def test_negative_stored_values_are_sign_extended(tmp_path, dicom, head, high_bits) -> None:
    vol = np.clip(np.rint(head(shape=(4, 20, 20))), -2048, 2047)
    assert (vol < 0).any()
    stored = (vol.astype(np.int64) & 0x0FFF) | (
        high_bits << 12
    )  # 12-bit two's complement, bits 12–15 = high_bits
    dicom.series(
        tmp_path,
        vol,
        bits_stored=12,
        signed=False,
        stored=stored,
        intercept=0.0,
        extra={"PixelRepresentation": 1},
    )
    assert_matches_standard(load_scan(tmp_path), series_images(vol), atol=0)


def test_pydicom_floor_handles_bits_stored(tmp_path, dicom, head) -> None:
    """The declared floor is a pydicom whose own decoder masks and sign-extends (pydicom ≥ 3.0)."""
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    floor = re.search(r'"pydicom>=(\d+)\.(\d+)', text)
    assert floor and (int(floor[1]), int(floor[2])) >= (3, 0)
    f = dicom.slice(
        tmp_path / "IM.dcm",
        np.zeros((4, 4)),
        ipp=(0, 0, 0),
        series_uid=generate_uid(),
        bits_stored=12,
        signed=False,
        stored=np.array([[0xF800, 0x0FFF, 0x1001, 0x0000]] * 4),
        intercept=0.0,
        extra={"PixelRepresentation": 1},
    )
    arr = pydicom.pixels.pixel_array(str(f))
    assert arr[0].tolist() == [-2048, -1, 1, 0]


# ------------------------------------------------------------------------- 9. messages


def test_nifti_errors_name_the_path_once(tmp_path) -> None:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)), str(tmp_path / "four_d.nii.gz"))
    (tmp_path / "broken.nii").write_bytes(b"garbage")
    for name in ("four_d.nii.gz", "broken.nii"):
        with pytest.raises(ScanError) as err:
            load_scan(tmp_path / name)
        assert str(err.value).count(str(tmp_path / name)) == 1 and str(err.value).startswith(
            str(tmp_path / name)
        )
