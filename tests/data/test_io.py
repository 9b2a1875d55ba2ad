"""load_scan: real pydicom-data head CT, and tiny series written here with one quirk each."""

from __future__ import annotations

import hashlib
import json
import warnings

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import RLELossless, generate_uid

from ctad_core.data.io import (
    Scan,
    ScanError,
    choose_series,
    is_sharp_kernel,
    list_series,
    load_scan,
    save_scan_nifti,
)
from ctad_core.data.nifti import centred_affine, save_nifti


def written(vol: np.ndarray) -> np.ndarray:
    """What load_scan returns for an axial LPS series written from ``vol``: RAS-canonical flips y and x."""
    return vol[..., ::-1, ::-1]


# ------------------------------------------------------------------------------------------ real head CT slice


@pytest.fixture(scope="module")
def unci() -> Scan:
    return load_scan(get_testdata_file("693_UNCI.dcm", download=False))


def test_real_head_slice_hu(unci: Scan) -> None:
    hu = unci.hu[0]
    assert unci.hu.shape == (1, 512, 512) and unci.hu.dtype == np.float32
    assert np.isclose(unci.spacing[1], 0.478516) and unci.spacing[0] == 5.0
    # Outside the field of view (stored padding and noise around it, ≈ −3000 HU raw) is air now.
    assert abs(float(hu[:10, :10].mean()) + 1000) < 1
    assert hu.min() >= -1024
    centre = hu[230:280, 230:280]
    assert 15 < float(np.median(centre)) < 50  # brain parenchyma
    assert "padding_to_air" in unci.meta["fixes"]


def test_real_head_slice_padding_needed() -> None:
    """Without the padding rule the corner would be ≈ −3000 HU (the check above fails without it)."""
    raw = pydicom.dcmread(get_testdata_file("693_UNCI.dcm", download=False)).pixel_array[:10, :10]
    assert raw.mean() - 1024 < -2500


def test_jpeg2000_twin_matches(unci: Scan) -> None:
    j2k = load_scan(get_testdata_file("693_J2KI.dcm", download=False))
    assert j2k.meta["transfer_syntax"].startswith("JPEG 2000")
    assert np.abs(j2k.hu - unci.hu).max() <= 1.0
    assert np.allclose(j2k.affine, unci.affine)


def test_meta_has_no_identifiers(unci: Scan) -> None:
    ds = pydicom.dcmread(get_testdata_file("693_UNCI.dcm", download=False), stop_before_pixels=True)
    text = json.dumps(unci.meta)
    for tag in (
        "PatientName",
        "PatientID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "StudyDate",
    ):
        v = str(ds.get(tag, "")).strip()
        if len(v) > 3:
            assert v not in text, tag
    assert unci.meta["modality"] == "CT" and unci.meta["kernel"] == "STANDARD"
    assert len(unci.meta["patient_pseudonym"]) == 16


# ------------------------------------------------------------------------------------------ series written here


def test_shuffled_names_and_instance_numbers(tmp_path, dicom, head) -> None:
    vol = head()
    n = vol.shape[0]
    rng = np.random.default_rng(1)
    names = [f"{h}.dcm" for h in rng.permutation([f"f{i:03d}" for i in range(n)])]
    files = dicom.series(tmp_path / "s", vol, names=names)
    for k, f in enumerate(files):  # InstanceNumber runs backwards: it must not be trusted either
        ds = pydicom.dcmread(f)
        ds.InstanceNumber = n - k
        ds.save_as(f)
    scan = load_scan(tmp_path / "s")
    assert np.abs(scan.hu - written(vol)).max() <= 0.5
    assert scan.spacing == pytest.approx((6.0, 5.0, 5.0))
    # index (0, ny-1, nx-1) is the first written pixel: LPS (−100, −100, −70) → RAS (100, 100, −70)
    ny, nx = vol.shape[1:]
    assert scan.affine @ np.array([0, ny - 1, nx - 1, 1]) == pytest.approx([100, 100, -70, 1])
    assert [scan.sources[i] for i in scan.source_index] == [str(f) for f in files]


def test_inputs_not_modified(tmp_path, dicom, head) -> None:
    files = dicom.series(tmp_path / "s", head())
    before = [hashlib.sha1(f.read_bytes()).hexdigest() for f in files]
    scan = load_scan(tmp_path / "s")
    save_scan_nifti(scan, tmp_path / "out.nii.gz")
    assert [hashlib.sha1(f.read_bytes()).hexdigest() for f in files] == before


def test_two_series_pick_and_select(tmp_path, dicom, head) -> None:
    vol = head()
    soft_uid, bone_uid, thick_uid = generate_uid(), generate_uid(), generate_uid()
    dicom.series(tmp_path / "a", vol, series_uid=soft_uid, series_number=3, description="SOFT THIN")
    dicom.series(
        tmp_path / "b",
        vol + 100,
        series_uid=bone_uid,
        kernel="BONE",
        series_number=4,
        description="BONE THIN",
    )
    dicom.series(
        tmp_path / "c",
        vol[::2],
        spacing=(12.0, 5.0, 5.0),
        series_uid=thick_uid,
        series_number=5,
        description="SOFT THICK",
    )
    with pytest.warns(UserWarning, match="picked series #3 'SOFT THIN'"):
        scan = load_scan(tmp_path)
    assert np.abs(scan.hu - written(vol)).max() <= 0.5
    assert "soft-tissue kernel" in scan.meta["series_choice"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bone = load_scan(tmp_path, series=4)
        thick = load_scan(tmp_path, series="SOFT THICK")
    assert np.abs(bone.hu - written(vol + 100)).max() <= 0.5
    assert thick.hu.shape[0] == (vol.shape[0] + 1) // 2
    with pytest.warns(UserWarning, match="SOFT THICK"):
        assert load_scan(tmp_path, prefer_thickness_mm=10.0).spacing[0] == 12.0
    with pytest.raises(ScanError, match="series 9 not found"):
        load_scan(tmp_path, series=9)
    assert {s.series_number for s in list_series(tmp_path)} == {3, 4, 5}


def test_kernel_rule() -> None:
    assert not is_sharp_kernel("STANDARD") and not is_sharp_kernel("H30s") and not is_sharp_kernel("FC21")
    assert (
        is_sharp_kernel("BONEPLUS")
        and is_sharp_kernel("H70h")
        and is_sharp_kernel("Hr64")
        and is_sharp_kernel("FC35")
    )
    with pytest.raises(ValueError):
        choose_series([])


def test_missing_slice(tmp_path, dicom, head) -> None:
    vol = head()
    files = dicom.series(tmp_path / "s", vol)
    files[10].unlink()
    with pytest.raises(
        ScanError, match=r"gap of 12.00 mm \(≈1 missing slice\(s\)\) between IM0009.dcm and IM0011.dcm"
    ):
        load_scan(tmp_path / "s", irregular="error")
    with pytest.warns(UserWarning, match="resampled to a uniform 6.00 mm grid"):
        scan = load_scan(tmp_path / "s")
    assert scan.hu.shape == vol.shape  # without gap handling there would be one slice less
    expect = written((vol[9] + vol[11]) / 2)
    assert np.abs(scan.hu[10] - expect).max() <= 1.0
    assert np.abs(scan.hu[11] - written(vol[11])).max() <= 0.5
    for k in (11, 12, 13):
        files[k].unlink()
    with pytest.raises(ScanError, match="more than max_missing=2"):
        load_scan(tmp_path / "s")


def test_uneven_spacing(tmp_path, dicom, head) -> None:
    vol = head(shape=(8, 24, 24))
    pos = [0.0, 5.0, 10.0, 14.0, 19.0, 24.0, 30.0, 35.0]
    dicom.series(tmp_path / "s", vol, positions=pos)
    with pytest.raises(ScanError, match="uneven slice spacing"):
        load_scan(tmp_path / "s", irregular="error")
    with pytest.warns(UserWarning):
        scan = load_scan(tmp_path / "s")
    assert scan.spacing[0] == pytest.approx(5.0) and scan.hu.shape[0] == 8


def test_gantry_tilt(tmp_path, dicom, head) -> None:
    from scipy import ndimage

    vol = head()
    dy = 0.5  # pixels per slice: 2.5 mm shift per 6 mm slice ≈ 22.6°
    sheared = np.stack([ndimage.shift(vol[k], (-k * dy, 0), order=1, cval=-1000) for k in range(len(vol))])
    dicom.series(tmp_path / "s", sheared, shear_per_slice=(0.0, 2.5, 0.0))
    with pytest.raises(ScanError, match="gantry tilt of 22.6°"):
        load_scan(tmp_path / "s", tilt="error")
    with pytest.warns(UserWarning, match="tilt 22.6° corrected"):
        scan = load_scan(tmp_path / "s")
    truth = written(vol)
    err = np.abs(scan.hu - truth).mean()
    err_uncorrected = np.abs(written(sheared) - truth).mean()
    assert err < err_uncorrected / 3
    assert scan.meta["tilt_deg"] == pytest.approx(22.62, abs=0.05)


def test_rsna_signed_as_unsigned(tmp_path, dicom, head) -> None:
    vol = np.maximum(np.rint(head(shape=(4, 24, 24))), -1000)  # the fix maps [-1000, 3095] HU
    stored = (vol.astype(np.int32) & 0xFFF).astype(np.uint16)  # 12-bit two's complement stored unsigned
    folder = tmp_path / "r"
    folder.mkdir()
    uid = generate_uid()
    for k in range(len(vol)):
        dicom.slice(
            folder / f"ID_{k:09x}.dcm",
            vol[k],
            ipp=(-60, -60, 6.0 * k),
            series_uid=uid,
            stored=stored[k],
            bits_stored=12,
            signed=False,
            intercept=0.0,
        )
    scan = load_scan(folder)
    assert "rsna_signed_12bit" in scan.meta["fixes"]
    assert np.abs(scan.hu - written(vol)).max() <= 0.5
    raw = load_scan(folder, fix_rsna=False)  # without the fix air reads as ≈ +3096 HU
    assert raw.hu.max() > 3000


def test_multiframe_enhanced_ct(tmp_path, dicom, head) -> None:
    vol = head(shape=(10, 24, 24))
    order = list(np.random.default_rng(0).permutation(10))
    dicom.multiframe(tmp_path / "mf.dcm", vol, order=order)
    scan = load_scan(tmp_path / "mf.dcm")
    assert np.abs(scan.hu - written(vol)).max() <= 0.5
    assert scan.spacing == pytest.approx((6.0, 5.0, 5.0))


def test_rle_compressed_series(tmp_path, dicom, head) -> None:
    vol = head(shape=(4, 24, 24))
    files = dicom.series(tmp_path / "s", vol)
    ds = pydicom.dcmread(files[1])
    ds.compress(RLELossless)
    ds.save_as(files[1])
    scan = load_scan(tmp_path / "s")
    assert np.abs(scan.hu - written(vol)).max() <= 0.5


def test_localizer_and_junk_skipped(tmp_path, dicom, head) -> None:
    vol = head(shape=(4, 24, 24))
    files = dicom.series(tmp_path / "s", vol)
    (tmp_path / "s" / "README.txt").write_text("not dicom")
    dicom.slice(
        tmp_path / "s" / "scout.dcm",
        vol[0],
        ipp=(0, 0, 0),
        series_uid=pydicom.dcmread(files[0]).SeriesInstanceUID,
        extra={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]},
    )
    scan = load_scan(tmp_path / "s")
    assert scan.hu.shape == vol.shape and scan.meta["n_skipped"] == 2


# ------------------------------------------------------------------------------------------ bad inputs


def test_non_ct_modality(tmp_path, dicom, head) -> None:
    files = dicom.series(tmp_path / "mr", head(shape=(3, 16, 16)), modality="MR")
    with pytest.raises(ScanError, match=r"modality is 'MR', not CT"):
        load_scan(tmp_path / "mr")
    with pytest.raises(ScanError, match=f"{files[0].name}.*not CT"):
        load_scan(files[0])


def test_mixed_modalities_folder(tmp_path, dicom, head) -> None:
    dicom.series(tmp_path / "mr", head(shape=(3, 16, 16)), modality="MR")
    dicom.series(tmp_path / "mr2", head(shape=(3, 16, 16)), modality="PT")
    with pytest.raises(ScanError, match="no CT series; found modalities MR, PT"):
        load_scan(tmp_path)


def test_corrupt_pixel_data(tmp_path, dicom, head) -> None:
    files = dicom.series(tmp_path / "s", head(shape=(4, 16, 16)))
    ds = pydicom.dcmread(files[2])
    ds.PixelData = ds.PixelData[:100]
    ds.save_as(files[2])
    with pytest.raises(
        ScanError, match=rf"{files[2].name}: pixel data cannot be decoded.*less than expected"
    ):
        load_scan(tmp_path / "s")


def test_mixed_shapes(tmp_path, dicom, head) -> None:
    """An image of another shape in the series is left out and named (issue 12, kind 3); the rest loads."""
    vol = head(shape=(4, 16, 16))
    files = dicom.series(tmp_path / "s", vol)
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    dicom.slice(tmp_path / "s" / "odd.dcm", head(shape=(1, 20, 16))[0], ipp=(-100, -100, 100), series_uid=uid)
    with pytest.warns(UserWarning, match=r"odd.dcm: image shape 20×16 differs from the 4 images of 16×16"):
        scan = load_scan(tmp_path / "s")
    assert np.abs(scan.hu - written(vol)).max() <= 0.5 and "odd.dcm" not in " ".join(scan.sources)


def test_duplicate_position(tmp_path, dicom, head) -> None:
    """Two different images at one position are refused, naming both files."""
    vol = head(shape=(4, 16, 16))
    files = dicom.series(tmp_path / "s", vol)
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    dicom.slice(tmp_path / "s" / "dup.dcm", vol[2], ipp=(-100, -100, -64), series_uid=uid)
    with pytest.raises(ScanError, match=r"dup.dcm: same position .* as IM0001.dcm but different pixels"):
        load_scan(tmp_path / "s")


def test_not_dicom_and_missing(tmp_path) -> None:
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"hello")
    with pytest.raises(ScanError, match="x.dcm: not a DICOM file"):
        load_scan(bad)
    with pytest.raises(FileNotFoundError):
        load_scan(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScanError, match="no files"):
        load_scan(tmp_path / "empty")


def test_nifti_nan(tmp_path) -> None:
    vol = np.zeros((4, 8, 8), np.float32)
    vol[1, 2, 3] = np.nan
    save_nifti(tmp_path / "n.nii.gz", vol, centred_affine(vol.shape, (2.0, 1.0, 1.0)))
    with pytest.raises(ScanError, match=r"n.nii.gz: 1 voxels are NaN"):
        load_scan(tmp_path / "n.nii.gz")


# ------------------------------------------------------------------------------------------ NIfTI


def test_nifti_round_trip(tmp_path, dicom, head) -> None:
    vol = head()
    dicom.series(tmp_path / "s", vol)
    scan = load_scan(tmp_path / "s")
    out = save_scan_nifti(scan, tmp_path / "scan.nii.gz")
    side = json.loads((tmp_path / "scan.json").read_text())
    assert "Doe" not in json.dumps(side) and "PAT-001" not in json.dumps(side)
    back = load_scan(out)
    assert np.allclose(back.affine, scan.affine, atol=1e-4) and np.array_equal(back.hu, scan.hu)
    # viewers read the on-disk sform: voxel (i, j, k) = (x, y, z) of our (z, y, x) array
    img = nib.load(str(out))
    assert np.allclose(img.affine @ [3, 5, 7, 1], scan.affine @ [7, 5, 3, 1], atol=1e-4)
    with pytest.raises(ScanError, match="refusing to write over"):
        save_scan_nifti(back, out)


def test_nifti_flipped_storage_source_index(tmp_path) -> None:
    vol = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32)
    aff_xyz = np.diag([1.0, 1.0, -3.0, 1.0])  # storage z runs superior → inferior
    nib.save(nib.Nifti1Image(np.transpose(vol, (2, 1, 0)), aff_xyz), str(tmp_path / "f.nii"))
    with pytest.warns(UserWarning, match="is it in HU"):
        scan = load_scan(tmp_path / "f.nii")
    assert scan.slice_axis == 0 and scan.source_index.tolist() == [4, 3, 2, 1, 0]
    assert np.allclose(scan.hu, vol[::-1])
