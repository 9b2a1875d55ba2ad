"""Phantom realism: HU, noise, geometry and lesions checked on the label maps against REFERENCE.md."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from ctad_core.data import phantom as ph
from ctad_core.data.phantom_set import PhantomSetSpec, phantom_splits, plan_phantom_set

FINE = dict(shape=(1, 200, 200), spacing=(5.0, 1.0, 1.0))


def _median_in(p: ph.Phantom, mask: np.ndarray, erode: int = 1) -> float:
    m = ndi.binary_erosion(mask, structure=np.ones((1, 3, 3)), iterations=erode) if erode else mask
    if m.sum() < 5:
        m = mask
    assert m.sum() > 0
    return float(np.median(p.hu[m]))


@pytest.fixture(scope="module")
def clean():
    return [ph.make_phantom(s, "healthy", noise=False, blur=False, **FINE) for s in (1, 2, 3)]


def test_same_seed_same_phantom_and_different_seeds_differ():
    a = ph.make_phantom(5, "iph", shape=(3, 48, 48), spacing=(5, 4.8, 4.8))
    b = ph.make_phantom(5, "iph", shape=(3, 48, 48), spacing=(5, 4.8, 4.8))
    c = ph.make_phantom(6, "iph", shape=(3, 48, 48), spacing=(5, 4.8, 4.8))
    np.testing.assert_array_equal(a.hu, b.hu)
    np.testing.assert_array_equal(a.lesion, b.lesion)
    assert np.abs(a.hu - c.hu).mean() > 5.0


@pytest.fixture(scope="module")
def scalp():
    """0.25 mm pixels over the lateral edge of the head, where the thin scalp layers are resolved."""
    return [
        ph.make_phantom(s, "healthy", shape=(1, 100, 160), spacing=(0.5, 0.25, 0.25), offset_mm=(0, 0, 78),
                        noise=False, blur=False)
        for s in (1, 2, 3)
    ]


@pytest.mark.parametrize("tissue", ["gm", "wm", "csf", "fat", "skin", "diploe", "air"])
def test_tissue_hu_in_reference_range(clean, scalp, tissue):
    lo, hi = ph.HU_RANGES[tissue]
    for p in scalp if tissue in ("skin", "fat") else clean:
        mask = p.tissue == ph.TISSUE_CODES[tissue]
        med = _median_in(p, mask, 1)
        assert lo - 1.0 <= med <= hi + 1.0, f"{tissue}: median {med:.1f} HU outside [{lo}, {hi}]"


def test_grey_white_contrast_and_bone(clean):
    for p in clean:
        gm = _median_in(p, p.tissue == ph.TISSUE_CODES["gm"])
        wm = _median_in(p, p.tissue == ph.TISSUE_CODES["wm"])
        assert 5.0 <= gm - wm <= 11.0, f"GM-WM gap {gm - wm:.1f} HU outside 6-10"
        assert p.params["hu"]["gm"] - p.params["hu"]["wm"] >= 6.0
        bone = p.hu[p.tissue == ph.TISSUE_CODES["bone"]]
        assert bone.max() >= 1500.0, "cortical bone should reach ~1800 HU"


def test_skull_thickness_along_a_lateral_ray(clean):
    for p in clean:
        row = p.tissue[0, p.tissue.shape[1] // 2]  # y = centre row, x runs left to right (1 mm pixels)
        bone = np.isin(row, [ph.TISSUE_CODES["bone"], ph.TISSUE_CODES["diploe"]])
        lab, n = ndi.label(bone)
        sizes = ndi.sum(bone, lab, range(1, n + 1))
        assert n >= 2
        # lateral (temporal) skull: thinner than the 5-8 mm vault but present
        assert all(2.0 <= s <= 9.5 for s in sorted(sizes)[-2:]), sizes


def test_noise_sd_and_correlation_follow_slice_thickness():
    kw = dict(kind="healthy", blur=True)
    for thick, (lo, hi) in [(5.0, (3.0, 5.0)), (0.625, (3.0 * np.sqrt(8), 5.0 * np.sqrt(8)))]:
        grid = dict(shape=(1, 96, 96), spacing=(thick, 1.0, 1.0))
        noisy = ph.make_phantom(11, noise=True, **grid, **kw)
        flat = ph.make_phantom(11, noise=False, **grid, **kw)
        n = noisy.hu - flat.hu
        assert lo - 0.3 <= n.std() <= hi + 0.3, f"noise SD {n.std():.2f} at {thick} mm"
        r = np.corrcoef(n[0, :, :-1].ravel(), n[0, :, 1:].ravel())[0, 1]
        assert r > 0.2, f"noise should be spatially correlated (lag-1 r={r:.2f})"
    assert 9.0 <= 4.0 * np.sqrt(8) <= 14.0  # REFERENCE: 9-14 HU at 0.625 mm


LESION_HU = {
    "iph": ("iph", "iph"),
    "sdh": ("sdh", "sdh"),
    "edh": ("edh", "edh"),
    "sah": ("sah", "sah"),
    "ivh": ("ivh", "ivh"),
    "tumour": ("tumour", None),
    "fracture": ("fracture", "fracture"),
}


@pytest.mark.parametrize("kind", ph.LESION_KINDS)
def test_each_lesion_has_a_mask_and_reference_hu(kind):
    found = False
    for seed in range(20, 26):
        p = ph.make_phantom(seed, kind, shape=(9, 112, 112), spacing=(5.0, 2.0, 2.0), noise=False, blur=False)
        code = ph.LESION_CODES[kind]
        mask = p.lesion == code
        if mask.sum() < 10:
            continue
        found = True
        med = float(np.median(p.hu[mask]))
        if kind == "infarct":
            L = p.params["lesion"]
            if L["acute"]:
                assert 15.0 - 1 <= med <= 25.0 + 1, med
            else:
                tissue = 0.5 * (p.params["hu"]["gm"] + p.params["hu"]["wm"])
                assert -8.5 <= med - tissue <= -1.5, med - tissue
        elif kind == "tumour":
            assert 10.0 - 1 <= med <= 60.0 + 1, med
            oed = p.lesion == ph.LESION_CODES["oedema"]
            assert oed.sum() > 0 and 9.0 <= np.median(p.hu[oed]) <= 26.0
        elif kind == "atrophy":
            assert med <= 16.0, "atrophy replaces tissue by CSF"
        elif kind == "fracture":
            assert 0.0 - 1 <= med <= 90.0, med  # gap 0-60 HU and scalp haematoma 50-70
        else:
            lo, hi = ph.HU_RANGES.get(f"{kind}_{p.variant}", ph.HU_RANGES[kind])
            assert lo - 1 <= med <= hi + 1, f"{kind} ({p.variant}): median {med:.1f} outside [{lo}, {hi}]"
        break
    assert found, f"no {kind} lesion visible in six phantoms"


def test_mass_effect_is_recorded_apart_from_the_lesion():
    p = ph.make_phantom(31, "tumour", shape=(9, 96, 96), spacing=(5.0, 2.4, 2.4))
    assert p.mass_effect.max() > 1.0
    assert not np.any((p.mass_effect > 0) & (p.lesion > 0))
    h = ph.make_phantom(31, "healthy", shape=(9, 96, 96), spacing=(5.0, 2.4, 2.4))
    assert h.mass_effect.max() == 0 and h.lesion.max() == 0


def test_subdural_stays_on_one_side_of_the_falx():
    for seed in (40, 41, 42):
        p = ph.make_phantom(seed, "sdh", shape=(11, 96, 96), spacing=(5.0, 2.4, 2.4), noise=False)
        idx = np.argwhere(p.lesion == ph.LESION_CODES["sdh"])
        assert len(idx)
        x_world = (p.affine @ np.c_[idx, np.ones(len(idx))].T)[0]
        assert (x_world > -1.0).all() or (x_world < 1.0).all()


def test_atrophy_enlarges_the_ventricles():
    kw = dict(shape=(7, 96, 96), spacing=(5.0, 2.4, 2.4), noise=False)
    a = ph.make_phantom(50, "atrophy", **kw)
    h = ph.make_phantom(50, "healthy", **kw)
    vent = ph.TISSUE_CODES["ventricle"]
    assert (a.tissue == vent).sum() > 1.5 * (h.tissue == vent).sum()
    assert (a.lesion == ph.LESION_CODES["atrophy"]).sum() > 0


def test_same_patient_on_two_grids():
    """The 2D slab and the 3D volume of one seed show the lesion at the same world position."""
    seed = 60
    vol = ph.make_phantom(seed, "iph", shape=(48, 48, 48), spacing=(4.8, 4.8, 4.8), noise=False)
    sl = ph.make_phantom(seed, "iph", shape=(5, 96, 96), spacing=(5.0, 2.4, 2.4), noise=False)

    def centroid(p):
        idx = np.argwhere(p.lesion > 0).mean(0)
        return (p.affine @ np.r_[idx, 1.0])[:3]

    assert (vol.lesion > 0).any() and (sl.lesion > 0).any()
    xy_vol, xy_sl = centroid(vol)[:2], centroid(sl)[:2]
    assert np.linalg.norm(xy_vol - xy_sl) < 8.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unknown lesion kind"):
        ph.make_phantom(0, "glioma")
    with pytest.raises(ValueError, match="shape"):
        ph.make_phantom(0, shape=(0, 10, 10))
    with pytest.raises(ValueError, match="spacing"):
        ph.make_phantom(0, shape=(1, 10, 10), spacing=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="unknown lesion kinds"):
        PhantomSetSpec(kinds=("iph", "bleed"))


def test_phantom_set_plan_is_split_by_patient_with_healthy_training():
    spec = PhantomSetSpec(n_train=5, n_val_healthy=2, n_test_healthy=3, n_val_per_kind=1, n_test_per_kind=2)
    plan = plan_phantom_set(spec)
    assert len(plan) == 5 + 2 + 3 + 9 * 3
    assert all(it["kind"] == "healthy" for it in plan if it["split"] == "train")
    splits = phantom_splits(spec)
    assert len(splits) == len(plan) == len({it["scan_id"] for it in plan})
    test_kinds = [it["kind"] for it in plan if it["split"] == "test"]
    assert all(test_kinds.count(k) == 2 for k in ph.LESION_KINDS)


def test_aligned_patients_keep_anatomy_but_lose_pose():
    free = ph.sample_patient(77, "iph")
    al = ph.sample_patient(77, "iph", aligned=True)
    np.testing.assert_array_equal(al["rotation"], np.eye(3))
    np.testing.assert_array_equal(al["scale"], np.ones(3))
    assert not np.allclose(free["rotation"], np.eye(3))
    assert al["warp_sd"] == free["warp_sd"] and al["hu"] == free["hu"] and al["skull_mm"] == free["skull_mm"]
    # aligned heads of different patients sit where the template is: brain centroids within a few mm
    cents = []
    for seed in (1, 2, 3):
        p = ph.make_phantom(seed, shape=(24, 48, 48), spacing=(4.8, 4.8, 4.8), noise=False,
                            params=ph.sample_patient(seed, aligned=True))
        cents.append(np.argwhere(p.brain > 0).mean(0) * 4.8)
    assert np.ptp(np.array(cents), axis=0).max() < 4.0
