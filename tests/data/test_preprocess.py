"""Preprocessing: resampling, skull stripping, alignment, model grid, 2D slice selection, cache."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ctad_core.data.io import Scan, load_scan
from ctad_core.data.nifti import centred_affine
from ctad_core.data.preprocess import (
    PreprocessParams,
    preprocess_path,
    preprocess_scan,
    resample_to_spacing,
    select_slices,
    skull_strip,
)

SP = (6.0, 5.0, 5.0)
FAST = dict(target_spacing=None, mask_spacing=4.0, model_shape=(24, 32, 32), slice_shape=(40, 40), n_slices=3)


def make_scan(hu: np.ndarray, spacing=SP) -> Scan:
    return Scan(hu, spacing, centred_affine(hu.shape, spacing), {"modality": "CT"}, "toy", 0, np.arange(hu.shape[0]))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def test_resample_smooths_before_downsampling() -> None:
    rng = np.random.default_rng(0)
    vol = rng.normal(0, 100, (16, 32, 32)).astype(np.float32)
    aff = centred_affine(vol.shape, (1.0, 1.0, 1.0))
    out, new_aff = resample_to_spacing(vol, aff, 4.0)
    raw, _ = resample_to_spacing(vol, aff, 4.0, smooth=False)
    assert out.shape == (4, 8, 8)
    assert out.std() < 0.6 * raw.std()  # anti-aliasing averages the noise away
    centre = lambda a, s: a @ np.r_[(np.asarray(s) - 1) / 2, 1]  # noqa: E731
    assert np.allclose(centre(new_aff, out.shape), centre(aff, vol.shape))  # same field of view


def test_skull_strip_toy_head(head) -> None:
    hu = head(shape=(32, 48, 48), spacing=(4.0, 4.0, 4.0))
    brain, head_mask = skull_strip(hu, (4.0, 4.0, 4.0))
    assert head_mask.sum() > brain.sum() > 0
    assert not (brain & (hu > 300)).any()  # no bone
    skull_free = brain & (hu < 25) & (hu > 0)
    assert skull_free.sum() > 0  # the ventricle is inside (holes filled)
    scalp = (hu > 30) & (hu < 60)
    z, y, x = np.indices(hu.shape)
    outer = np.sqrt(((x - 23.5) * 4 / 70) ** 2 + ((y - 23.5) * 4 / 88) ** 2 + ((z - 15.5) * 4 / 62) ** 2) > 0.95
    assert not (brain & scalp & outer).any()  # scalp outside the skull stays out


def test_preprocess_shapes_and_options(head) -> None:
    hu = head()
    r = preprocess_scan(make_scan(hu), PreprocessParams(**FAST))
    assert r.volume.shape == (24, 32, 32) and r.volume.dtype == np.float32
    assert r.brain.shape == r.head.shape == r.volume.shape and r.brain.dtype == np.uint8
    assert r.slices.shape == (3, 40, 40) and r.slice_brain.shape == (3, 40, 40)
    assert r.slice_index.tolist() == [-1, 0, 1]  # offsets from the mid-axial plane, as the phantom set
    assert np.diff(r.slice_z).tolist() == [1, 1]
    assert (r.slice_source >= 0).all()
    assert r.volume.min() >= -1024 and r.volume.max() > 1000  # full head keeps the skull
    assert 20 < np.median(r.volume[r.brain > 0]) < 45
    stripped = preprocess_scan(make_scan(hu), PreprocessParams(**FAST, skull_strip=True, window="brain"))
    assert stripped.volume.max() <= 80 and stripped.volume.min() >= 0
    assert (stripped.volume[stripped.brain == 0] == 0).all()  # air (−1000) clipped to the window's floor
    assert stripped.slices.max() <= 80
    with pytest.raises(ValueError, match="only named atlas is 'phantom'"):
        preprocess_scan(make_scan(hu), PreprocessParams(**FAST, align="rigid"), atlas="mni152")
    with pytest.raises(ValueError, match="unknown preprocessing parameters"):
        PreprocessParams.from_dict({"modelshape": [1, 2, 3]})
    assert PreprocessParams.from_dict({"model_shape": [8, 8, 8]}).model_shape == (8, 8, 8)


def test_crop_pad_keeps_proportions(head) -> None:
    hu = head()
    r = preprocess_scan(make_scan(hu), PreprocessParams(**FAST, crop="head", fit="pad"))
    sp = np.linalg.norm(r.affine[:3, :3], axis=0)
    assert np.allclose(sp, sp[0])  # isotropic output voxels
    s = preprocess_scan(make_scan(hu), PreprocessParams(**FAST, crop="head", fit="stretch"))
    assert not np.allclose(np.linalg.norm(s.affine[:3, :3], axis=0), sp[0])


def test_alignment_to_atlas(head) -> None:
    atlas = head(seed=1)
    moved = head(seed=2, shift=(6.0, -10.0, 8.0))
    p = PreprocessParams(**FAST, align="rigid", align_iterations=40)
    ref = preprocess_scan(make_scan(atlas), p, atlas=(atlas, SP))
    r = preprocess_scan(make_scan(moved), p, atlas=(atlas, SP))
    # output world → scan world: the head moved by (z, y, x) = (6, −10, 8) mm, i.e. RAS (8, −10, 6)
    assert r.transform[:3, 3] == pytest.approx([8.0, -10.0, 6.0], abs=2.0)
    assert dice(ref.brain > 0, r.brain > 0) > 0.9
    unaligned = preprocess_scan(make_scan(moved), PreprocessParams(**FAST, crop="none"))
    ref_un = preprocess_scan(make_scan(atlas), PreprocessParams(**FAST, crop="none"))
    assert dice(ref_un.brain > 0, unaligned.brain > 0) < dice(ref.brain > 0, r.brain > 0)
    assert np.allclose(r.affine, ref.affine)  # both on the atlas grid


def test_lesion_follows(head) -> None:
    hu = head()
    lesion = np.zeros(hu.shape, np.uint8)
    lesion[10:14, 15:25, 15:25] = 1
    r = preprocess_scan(make_scan(hu), PreprocessParams(**{**FAST, "n_slices": 24, "min_brain_fraction": 0.0}), lesion=lesion)
    assert r.lesion is not None and r.lesion.max() == 1 and r.slice_lesion.shape == r.slices.shape
    assert r.slice_lesion.any()
    zs_with = {int(z) for z, s in zip(r.slice_z, r.slice_lesion) if s.any()}
    assert zs_with == {int(z) for z in np.nonzero(r.lesion.reshape(len(r.lesion), -1).any(1))[0]} & set(
        r.slice_z.tolist())


def test_select_slices() -> None:
    brain = np.zeros((20, 10, 10), np.uint8)
    brain[4:16, 2:8, 2:8] = 1
    brain[12, :, :] = 1  # largest cross-section
    aff = centred_affine(brain.shape, (2.0, 1.0, 1.0))
    assert select_slices(brain, aff, 3, 1, "centroid") == [9, 10, 11]
    assert select_slices(brain, aff, 1, 1, "max_area") == [12]
    assert select_slices(brain, aff, 1, 1, 0.0 + aff[2, 3] + 2.0 * 5) == [5]  # world z of plane 5
    assert select_slices(brain, aff, 5, 4, "centroid", min_brain_fraction=0.3) == [6, 10, 14]
    assert select_slices(np.zeros_like(brain), aff) == []


def test_cache(tmp_path, dicom, head) -> None:
    files = dicom.series(tmp_path / "s", head())
    p = PreprocessParams(**FAST)
    a = preprocess_path(tmp_path / "s", p, cache_dir=tmp_path / "cache")
    b = preprocess_path(tmp_path / "s", p, cache_dir=tmp_path / "cache")
    assert (a.info["cache"], b.info["cache"]) == ("miss", "hit")
    for k in ("volume", "brain", "slices", "affine", "slice_source"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
    assert b.meta == a.meta and b.sources == a.sources
    c = preprocess_path(tmp_path / "s", PreprocessParams(**{**FAST, "n_slices": 1}), cache_dir=tmp_path / "cache")
    assert c.info["cache"] == "miss"
    st = files[0].stat()
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert preprocess_path(tmp_path / "s", p, cache_dir=tmp_path / "cache").info["cache"] == "miss"
    scan = load_scan(tmp_path / "s")
    assert np.array_equal(preprocess_scan(scan, p).volume, a.volume)


def test_default_atlas_is_the_phantom_template_in_hu() -> None:
    """A phantom patient (posed off-centre) aligned to the default atlas lands where the atlas brain is."""
    from ctad_core.data.io import Scan
    from ctad_core.data.phantom import atlas_phantom, make_phantom

    atlas = atlas_phantom()
    assert atlas.hu.min() == -1000.0 and atlas.hu.max() > 1000.0  # an atlas in HU, skull included
    ph = make_phantom(7, "healthy", shape=(40, 96, 96), spacing=(3.0, 2.4, 2.4), noise=False)
    scan = Scan(hu=ph.hu, spacing=ph.spacing, affine=ph.affine)
    p = PreprocessParams(**{**FAST, "model_shape": (48, 48, 48)}, align="rigid", align_iterations=40)
    r = preprocess_scan(scan, p)  # no atlas given: the phantom atlas is used
    ref = preprocess_scan(Scan(hu=atlas.hu, spacing=atlas.spacing, affine=atlas.affine), PreprocessParams(**{**FAST, "model_shape": (48, 48, 48)}, align="rigid", align_iterations=5))
    assert dice(ref.brain > 0, r.brain > 0) > 0.8
