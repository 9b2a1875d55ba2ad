"""load_scan on the failure kinds of issue 12 (real scans as users have them), each from its smallest input.

Expected HU, geometry and slice order come from the standards, computed here from what was written:
HU = RescaleSlope · stored value + RescaleIntercept (PS3.3 C.11.1.1.2, C.7.6.16.2.9 for Enhanced CT); pixel
centres in patient space from ImagePositionPatient, ImageOrientationPatient and PixelSpacing (PS3.3
C.7.6.2.1.1, :func:`conftest.pixel_world_ras`), which the returned affine must reproduce; stored values are the
low Bits Stored bits, two's complement when Pixel Representation is 1 (PS3.5 8.1.1, PS3.3 C.7.6.3.1); NIfTI
voxel (i, j, k) lies at sform · (i, j, k, 1). Inputs are hashed before and after every load.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import file_hashes

from ctad_core.data.io import ScanError, load_scan

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
    idx = np.rint(world @ np.linalg.inv(scan.affine)[:3, :3].T + np.linalg.inv(scan.affine)[:3, 3]).astype(int)
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


# ------------------------------------------------------------------------- 9. messages


def test_nifti_errors_name_the_path_once(tmp_path) -> None:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)), str(tmp_path / "four_d.nii.gz"))
    (tmp_path / "broken.nii").write_bytes(b"garbage")
    for name in ("four_d.nii.gz", "broken.nii"):
        with pytest.raises(ScanError) as err:
            load_scan(tmp_path / name)
        assert str(err.value).count(str(tmp_path / name)) == 1 and str(err.value).startswith(str(tmp_path / name))
