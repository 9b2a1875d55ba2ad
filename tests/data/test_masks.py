"""The evaluation mask holds no bone partial volume (issue 11): phantoms and the real-scan pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from ctad_core.data import phantom as ph
from ctad_core.data.io import Scan
from ctad_core.data.masks import BONE_PV_MAX, HEAD_HU, exclude_bone_partial_volume, head_mask
from ctad_core.data.nifti import centred_affine
from ctad_core.data.preprocess import PreprocessParams, preprocess_scan


def test_exclude_bone_partial_volume_by_hand() -> None:
    brain = np.array([[1, 1, 1], [1, 0, 1]], np.uint8)
    bone = np.array([[0.0, BONE_PV_MAX, 0.5], [0.02, 0.9, 0.0]])
    assert exclude_bone_partial_volume(brain, bone).tolist() == [[1, 1, 0], [0, 0, 1]]
    assert exclude_bone_partial_volume(brain, bone, max_bone=0.6).tolist() == [[1, 1, 1], [1, 0, 1]]


@pytest.mark.parametrize("bad", [dict(bone_fraction=np.zeros(3)), dict(max_bone=1.0), dict(max_bone=-0.1)])
def test_exclude_bone_partial_volume_refuses(bad) -> None:
    args = dict(brain=np.ones(4, np.uint8), bone_fraction=np.zeros(4), max_bone=0.01) | bad
    with pytest.raises(ValueError):
        exclude_bone_partial_volume(**args)


def _dense_inside(p: ph.Phantom) -> np.ndarray:
    """Brain-mask voxels brighter than intracranial soft tissue can be, outside calcifications and lesions."""
    calc = np.zeros(p.hu.shape, bool)
    calc[p.tissue == ph.TISSUE_CODES["calcification"]] = True
    from scipy import ndimage

    calc = ndimage.binary_dilation(calc, iterations=2)  # a calcification's own blur
    return (p.brain != 0) & (p.hu > 100.0) & ~calc & (p.lesion == 0)


@pytest.mark.parametrize("kind", ["healthy", "edh", "fracture"])
@pytest.mark.parametrize("shape", [(40, 48, 48), (1, 96, 96)])
def test_phantom_brain_mask_has_no_bone_partial_volume(kind: str, shape: tuple[int, int, int]) -> None:
    # Without noise the HU are the label maps' blend; the old mask ("intracranial > 0.5") had ~5 % of its
    # voxels above 150 HU here, all in the brain–skull layer.
    p = ph.make_phantom(7, kind, shape=shape, noise=False)
    assert p.bone_fraction is not None and p.bone_fraction.shape == p.hu.shape
    assert p.bone_fraction[p.brain != 0].max() <= BONE_PV_MAX
    assert not _dense_inside(p).any()
    # still a brain: it holds nearly all white matter, and its HU are soft tissue
    wm = p.tissue == ph.TISSUE_CODES["wm"]
    assert (p.brain[wm] != 0).mean() > 0.97
    assert 15.0 < float(np.median(p.hu[p.brain != 0])) < 50.0


def test_preprocessed_real_scan_mask_has_no_bone_partial_volume() -> None:
    # A phantom written as a "real" scan at a fine grid, through the real-data pipeline to a coarse model
    # grid: the model voxels straddling the skull must leave the mask.
    sp = (2.0, 1.5, 1.5)
    p = ph.make_phantom(3, "healthy", shape=(80, 144, 144), spacing=sp, noise=False)
    scan = Scan(
        p.hu, sp, centred_affine(p.hu.shape, sp), {"modality": "CT"}, "toy", 0, np.arange(p.hu.shape[0])
    )
    r = preprocess_scan(
        scan,
        PreprocessParams(
            target_spacing=None,
            mask_spacing=3.0,
            model_shape=(32, 40, 40),
            slice_shape=(64, 64),
            n_slices=3,
            window=None,
            align="none",
        ),
    )
    assert r.brain.sum() > 0 and r.slice_brain.sum() > 0
    assert float(np.percentile(r.volume[r.brain != 0], 99.9)) <= 100.0
    assert float(np.percentile(r.slices[r.slice_brain != 0], 99.9)) <= 100.0


def test_head_mask_fills_cavities_drops_specks_by_hand():
    vol = np.full((1, 9, 12, 12), -1000.0)  # air
    vol[0, 1:8, 2:10, 2:10] = 40.0  # soft tissue
    vol[0, 3:6, 4:8, 4:8] = -800.0  # an air cavity inside (a sinus): filled
    vol[0, 4, 0, 5] = 1000.0  # a speck apart from the head (couch, noise): dropped
    vol[0, 7, 5:7, 5:12] = -900.0  # a cavity open to the side
    got = head_mask(vol)
    want = np.zeros(vol.shape, np.uint8)
    want[0, 1:8, 2:10, 2:10] = 1
    want[0, 7, 5:7, 5:10] = 0  # open to the outside within its own slice too: stays air
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.uint8 and HEAD_HU == -500.0
    # a cavity closed in its slice but open in 3D through the volume's top is filled slice by slice
    v2 = np.full((1, 4, 8, 8), -1000.0)
    v2[0, :, 1:7, 1:7] = 40.0
    v2[0, 2:, 3:5, 3:5] = -1000.0  # reaches the last slice (the field of view's edge)
    assert head_mask(v2)[0, 2:, 3:5, 3:5].all()
    # the input is not modified; 2D slices work; an empty item stays empty
    before = vol.copy()
    head_mask(vol)
    np.testing.assert_array_equal(vol, before)
    sl = head_mask(vol[:, 4])
    np.testing.assert_array_equal(sl, want[:, 4])
    assert head_mask(np.full((1, 4, 4), -1000.0)).sum() == 0


def test_head_mask_rejects_bad_inputs():
    with pytest.raises(ValueError, match="expects"):
        head_mask(np.zeros((4, 4)))
    bad = np.zeros((1, 4, 4))
    bad[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        head_mask(bad)
