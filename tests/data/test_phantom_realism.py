"""What makes the phantoms hard (issue 14): bright normal anatomy, skull base, beam hardening, acquisition
variety and lesion variants, each checked on the label maps against its source (module docstrings of
ctad_core.data.phantom_anatomy / phantom_acquisition) and its frequency over many seeds."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from ctad_core.data import phantom as ph
from ctad_core.data import phantom_acquisition as pa
from ctad_core.data import phantom_anatomy as anat
from ctad_core.data.manifest import read_config, read_manifest
from ctad_core.data.phantom_set import (
    PhantomSetSpec,
    plan_phantom_set,
    prepare_phantoms,
    render_phantom_scan,
)
from ctad_core.data.prepare import CONFIG_KEYS, write_prepared
from ctad_core.data.template import LANDMARKS, load_template

T = ph.TISSUE_CODES
TPL = load_template()


def template_coords(p: ph.Phantom) -> np.ndarray:
    """(Z, Y, X, 3) template (z, y, x) mm of each voxel of an *aligned* phantom (up to its elastic warp)."""
    idx = np.indices(p.hu.shape).reshape(3, -1).T
    ras = (p.affine @ np.c_[idx, np.ones(len(idx))].T)[:3].T
    return (ras[:, ::-1] + TPL.centre).reshape(*p.hu.shape, 3)


def render_head(seed: int, kind: str = "healthy", **kw) -> tuple[ph.Phantom, np.ndarray]:
    """A clean (no blur, no noise) 2.4 mm volume of the whole head of an aligned patient, artefacts on."""
    params = ph.sample_patient(seed, kind, aligned=True, variant=kw.pop("variant", None))
    params.update(kw.pop("update", {}))
    p = ph.make_phantom(
        seed,
        shape=(96, 96, 96),
        spacing=(2.4, 2.4, 2.4),
        noise=False,
        blur=False,
        artefacts=True,
        params=params,
        offset_mm=(TPL.centre[0] - TPL.midaxial_z, 0.0, 0.0),
        **kw,
    )
    return p, template_coords(p)


@pytest.fixture(scope="module")
def heads():
    return [render_head(s) for s in (1, 2, 3)]


# ------------------------------------------------------------------------- bright normal anatomy
def test_venous_sinuses_are_unenhanced_blood_on_the_midline_vault_and_the_occipital_bone(heads):
    lo, hi = anat.ANATOMY_HU["sinus"]
    for p, q in heads:
        assert lo <= p.params["anatomy"]["sinus_hu"] <= hi
        sinus = p.tissue == T["sinus"]
        assert sinus.sum() > 300
        assert lo - 10 <= np.median(p.hu[sinus]) <= hi + 2  # partial volume with CSF pulls a few voxels down
        # superior sagittal sinus: above the ventricles, on the midline
        sss = sinus & (q[..., 0] > TPL.midaxial_z + 20)
        assert sss.sum() > 50 and (np.abs(q[..., 2][sss]) < 8).mean() > 0.8
        # transverse sinuses: both sides, behind the petrous ridges, below the mid-axial level
        ts = sinus & (q[..., 0] < 0) & (np.abs(q[..., 2]) > 20)
        for side in (1, -1):
            assert (ts & (np.sign(q[..., 2]) == side)).sum() > 50
        assert q[..., 1][ts].max() < LANDMARKS["petrous_apex"][1]


def test_falx_and_tentorium_are_thin_dense_sheets_where_they_belong(heads):
    for p, q in heads:
        dura = p.tissue == T["dura"]
        falx = dura & (q[..., 0] > TPL.midaxial_z + 10)
        assert falx.sum() > 200 and (np.abs(q[..., 2][falx]) < 5).mean() > 0.95
        tent = dura & (np.abs(q[..., 2]) > 15)
        assert tent.sum() > 200
        assert (q[..., 1][tent] < -5).all() and -45 < q[..., 0][tent].min() and q[..., 0][tent].max() < 15
    # at 0.5 mm across the falx the sheet shows its own density, denser than the CSF and cortex beside it
    p = ph.make_phantom(
        4,
        shape=(40, 1, 120),
        spacing=(1.0, 2.0, 0.5),
        offset_mm=(25.0, 20.0, 0.0),
        noise=False,
        blur=False,
        params=ph.sample_patient(4, aligned=True),
    )
    dura = p.tissue == T["dura"]
    assert dura.sum() > 10
    lo, hi = anat.ANATOMY_HU["dura"]
    sheet = np.percentile(
        p.hu[dura], 90
    )  # voxels wholly inside the sheet (the rest share it with CSF or cortex)
    assert lo <= p.params["anatomy"]["dura_hu"] <= hi and abs(sheet - p.params["anatomy"]["dura_hu"]) < 1.0
    beside = np.isin(p.tissue, [T["csf"], T["gm"]]) & ndi.binary_dilation(dura, iterations=4) & ~dura
    assert sheet > np.median(p.hu[beside]) + 5


@pytest.mark.parametrize("site", ["patchy", "falx"])
def test_basal_ganglia_and_falx_calcifications_are_dense_and_in_place(site):
    if site == "patchy":
        seed, _ = ph.find_patient(lambda P: P["anatomy"]["bg_calc"] == "patchy", aligned=True)
    else:
        seed, _ = ph.find_patient(
            lambda P: (
                P["anatomy"]["falx_calc"]
                and P["anatomy"]["bg_calc"] == "none"
                and not P["pineal"]
                and not P["choroid"]
                and not P["anatomy"]["tentorium_calc"]
            ),
            aligned=True,
        )
    p, q = render_head(seed)
    calc = p.tissue == T["calcification"]
    assert calc.sum() > 0 and np.median(p.hu[calc]) > 100.0
    if site == "patchy":  # symmetric, both globi pallidi
        gp = np.asarray(LANDMARKS["globus_pallidus"])
        for side in (1, -1):
            near = calc & (np.abs(q[..., 2] - side * gp[2]) < 10) & (np.abs(q[..., 1] - gp[1]) < 10)
            assert (near & (np.abs(q[..., 0] - gp[0]) < 10)).sum() > 0
    else:  # midline (up to the elastic warp), anterior and middle falx, above the ventricles
        assert (np.abs(q[..., 2][calc]) < 8).all()
        assert (q[..., 1][calc] > -30).all() and (q[..., 0][calc] > TPL.midaxial_z).all()


def test_calcification_frequencies_follow_the_cited_prevalence():
    n = 600
    pats = [ph.sample_patient(s) for s in range(n)]
    rate = {
        "pineal": np.mean([P["pineal"] for P in pats]),
        "choroid": np.mean([P["choroid"] for P in pats]),
        "bg_punctate": np.mean([P["anatomy"]["bg_calc"] == "punctate" for P in pats]),
        "bg_patchy": np.mean([P["anatomy"]["bg_calc"] == "patchy" for P in pats]),
        "falx": np.mean([P["anatomy"]["falx_calc"] for P in pats]),
        "tentorium": np.mean([P["anatomy"]["tentorium_calc"] for P in pats]),
    }
    # published overall frequencies (module docstring of phantom_anatomy): pineal ~70 %, choroid ~65 %,
    # punctate basal ganglia 17-21 %, patchy ~1-2 %, falx 27-34 %, tentorium ~7 %
    expect = {
        "pineal": 0.70,
        "choroid": 0.65,
        "bg_punctate": 0.17,
        "bg_patchy": 0.015,
        "falx": 0.31,
        "tentorium": 0.07,
    }
    for k, p0 in expect.items():
        sd = np.sqrt(p0 * (1 - p0) / n)
        assert abs(rate[k] - p0) < 4 * sd + 0.03, (k, rate[k], p0)
    # prevalence rises with age (the cited studies' main covariate)
    young, old = anat.prevalence(25.0), anat.prevalence(80.0)
    assert all(old[k] > young[k] for k in young)
    assert young["bg_patchy"] == 0.006 and old["bg_patchy"] == 0.024  # 0.6 % young, 2.4 % above 60 (Radaideh)


# ------------------------------------------------------------------------------ skull base
def test_skull_base_closes_the_vault_with_dense_petrous_bone_and_soft_tissue_below(heads):
    lo_soft, hi_soft = anat.ANATOMY_HU["soft_tissue"]
    for p, q in heads:
        # dense petrous bars between temporal lobe and cerebellum, both sides, outside the brain mask
        pet = (
            (p.hu >= 1500)
            & (p.brain == 0)
            & (q[..., 1] > -45)
            & (q[..., 1] < -5)
            & (np.abs(q[..., 2]) > 15)
            & (np.abs(q[..., 2]) < 60)
            & (np.abs(q[..., 0] - LANDMARKS["petrous_apex"][0]) < 12)
        )
        for side in (1, -1):
            assert (pet & (np.sign(q[..., 2]) == side)).sum() > 100
        # under every column of brain: bone (or the brainstem's canal), then soft tissue, never scalp or air
        brain = p.brain > 0
        cols = brain.any(0)
        low = np.argmax(brain, axis=0)  # lowest brain voxel per (y, x) column
        ys, xs = np.nonzero(cols & (low > 6))
        below = np.stack([p.tissue[low[ys, xs] - k, ys, xs] for k in range(1, 6)])  # 2.4-12 mm below
        assert np.isin(below, [T["air"], T["fat"], T["skin"]]).mean() < 0.02
        assert np.isin(below, [T["bone"], T["diploe"]]).any(0).mean() > 0.9
        soft = ndi.binary_erosion(p.tissue == T["soft_tissue"])
        assert soft.sum() > 1000 and lo_soft - 1 <= np.median(p.hu[soft]) <= hi_soft + 1
        assert q[..., 0][soft].max() < TPL.midaxial_z - 20  # below the skull base only
        # low planes have bone partial volume beside brain; the mid-axial slab far less
        near_bone = ndi.binary_dilation(np.isin(p.tissue, [T["bone"], T["diploe"]])) & brain
        assert (near_bone & (q[..., 0] < -25)).sum() > 1.5 * (
            near_bone & (np.abs(q[..., 0] - TPL.midaxial_z) < 12)
        ).sum()


def test_mid_axial_slices_see_little_of_the_skull_base():
    p = ph.make_phantom(
        5, shape=(5, 64, 64), spacing=(5.0, 3.6, 3.6), noise=False, params=ph.sample_patient(5, aligned=True)
    )
    assert not (p.tissue == T["soft_tissue"]).any()
    assert not ((p.hu > 1500) & (p.brain > 0)).any()
    assert np.abs(p.artefact).max() < p.params["acq"]["cupping_hu"] + 1e-3  # cupping only, no streaks


# ------------------------------------------------------------------------------- artefacts
def test_beam_hardening_darkens_the_posterior_fossa_and_cupping_brightens_under_the_table(heads):
    for p, q in heads:
        a = p.artefact
        acq = p.params["acq"]
        pfossa = (
            (np.abs(q[..., 0] - LANDMARKS["petrous_apex"][0]) < 8)
            & (np.abs(q[..., 2]) < 10)
            & (q[..., 1] < -10)
            & (q[..., 1] > -45)
        )
        assert a[pfossa].min() < -0.6 * acq["beam_hardening_hu"]
        assert a.max() <= acq["cupping_hu"] + 1e-3  # streaks never brighten
        # cupping: bright just under the inner table above the ventricles, nothing in the lateral ventricles
        bone = np.isin(p.tissue, [T["bone"], T["diploe"]])
        under = (p.brain > 0) & ndi.binary_dilation(bone) & (q[..., 0] > TPL.midaxial_z)
        assert np.median(a[under]) > 0.2 * acq["cupping_hu"]
        lateral = (p.tissue == T["ventricle"]) & (q[..., 0] > TPL.midaxial_z - 10)
        assert np.abs(a[lateral]).max() < 0.05 * acq["cupping_hu"]
    # a clean phantom (no blur) has no artefacts unless asked; the atlas has none
    p = ph.make_phantom(1, shape=(8, 32, 32), spacing=(7.2, 7.2, 7.2), noise=False, blur=False)
    assert not p.artefact.any()
    assert not ph.atlas_phantom(shape=(24, 24, 24), spacing=(9.6, 9.6, 9.6)).artefact.any()


# ----------------------------------------------------------------------------- acquisition
def test_acquisition_frequencies_and_ranges():
    n = 800
    acqs = [ph.sample_patient(s)["acq"] for s in range(n)]
    d = pa.ACQUISITION_DEFAULTS
    for name, key in (("kernels", "kernel"), ("slice_mm", "slice_mm")):
        for value, p0 in d[name].items():
            rate = np.mean([a[key] == value for a in acqs])
            assert abs(rate - p0) < 4 * np.sqrt(p0 * (1 - p0) / n) + 0.01, (name, value, rate)
    for a in acqs:
        lo, hi = pa.KERNELS[a["kernel"]]["noise_sd_5mm"]
        assert lo <= a["noise_sd_5mm"] <= hi
        lo, hi = pa.KERNELS[a["kernel"]]["blur_mm"]
        assert lo <= a["blur_mm"] <= hi
    # overrides: one protocol
    one = ph.sample_patient(3, acquisition={"kernels": {"sharp": 1.0}, "slice_mm": {"0.625": 1.0}})["acq"]
    assert one["kernel"] == "sharp" and one["slice_mm"] == 0.625


def test_acquisition_does_not_change_the_patient():
    a = ph.sample_patient(21, "sdh")
    b = ph.sample_patient(21, "sdh", acquisition={"kernels": {"sharp": 1.0}, "noise_scale": 2.0})
    assert a["acq"] != b["acq"]
    for key in ("hu", "skull_mm", "age", "lesion"):
        assert repr(a[key]) == repr(b[key])
    assert repr(a["anatomy"]) == repr(b["anatomy"])


@pytest.mark.parametrize("kernel", sorted(pa.KERNELS))
def test_noise_level_and_grain_follow_the_kernel_and_thickness(kernel):
    grid = dict(shape=(1, 96, 96), spacing=(5.0, 1.0, 1.0))
    params = ph.sample_patient(11, acquisition={"kernels": {kernel: 1.0}})
    sd, lag1 = {}, {}
    for thick in (5.0, 0.625):
        noisy = ph.make_phantom(11, noise=True, params=params, slice_mm=thick, **grid)
        flat = ph.make_phantom(11, noise=False, params=params, slice_mm=thick, **grid)
        n = (noisy.hu - flat.hu)[0]
        expect = params["acq"]["noise_sd_5mm"] * np.sqrt(5.0 / thick)  # 1/sqrt(thickness) (REFERENCE.md)
        assert abs(n.std() - expect) < 0.05 * expect
        sd[thick] = n.std()
        lag1[thick] = np.corrcoef(n[:, :-1].ravel(), n[:, 1:].ravel())[0, 1]
    assert sd[0.625] > 2.5 * sd[5.0]
    assert lag1[5.0] > 0.1  # spatially correlated
    grain = {"smooth": 0.5, "standard": 0.3, "sharp": 0.1}[
        kernel
    ]  # finer grain, weaker neighbour correlation
    assert lag1[5.0] > grain


def test_sharp_kernel_is_sharper_and_noisier_than_smooth():
    params = ph.sample_patient(12)
    grid = dict(shape=(1, 128, 128), spacing=(5.0, 1.0, 1.0), noise=False, params=params, artefacts=False)
    edge = {}
    for k in ("smooth", "sharp"):
        img = ph.make_phantom(12, acquisition={"kernel": k}, **grid).hu[0]
        edge[k] = np.abs(np.diff(np.clip(img, -100, 200), axis=1)).max()  # steepest step at the inner table
    assert edge["sharp"] > 1.3 * edge["smooth"]
    sm = pa.resolve_acquisition(params["acq"], kernel="smooth")
    sh = pa.resolve_acquisition(params["acq"], kernel="sharp")
    assert sh["noise_sd_5mm"] > sm["noise_sd_5mm"] and sh["blur_mm"] < sm["blur_mm"]
    assert pa.resolve_acquisition(params["acq"], kernel="sharp", noise_sd_5mm=2.0)["noise_sd_5mm"] == 2.0


def test_thick_slice_profile_blurs_along_z():
    """A 6 mm profile on a 2.4 mm grid: the voxel's 2.4 mm box plus a Gaussian of the missing variance
    (a box of width T has variance T²/12), so the slices are smoother along z; masks stay the anatomy's."""
    params = ph.sample_patient(13, aligned=True)
    kw = dict(shape=(24, 32, 32), spacing=(2.4, 7.2, 7.2), noise=False, params=params, artefacts=False)
    thin = ph.make_phantom(13, slice_mm=2.4, **kw)
    thick = ph.make_phantom(13, slice_mm=6.0, **kw)
    sigma = np.sqrt((6.0**2 - 2.4**2) / 12.0) / 2.4  # voxels
    np.testing.assert_allclose(
        thick.hu, ndi.gaussian_filter1d(thin.hu, sigma, axis=0, mode="nearest"), atol=1e-2
    )
    assert np.abs(np.diff(thick.hu, axis=0)).mean() < np.abs(np.diff(thin.hu, axis=0)).mean()
    np.testing.assert_array_equal(thick.lesion, thin.lesion)
    np.testing.assert_array_equal(thick.tissue, thin.tissue)


def test_find_patient_is_deterministic_and_fails_loudly():
    seed, params = ph.find_patient(lambda P: P["anatomy"]["falx_calc"], start=10)
    assert seed >= 10 and params["anatomy"]["falx_calc"]
    assert all(not ph.sample_patient(s)["anatomy"]["falx_calc"] for s in range(10, seed))
    with pytest.raises(LookupError, match="no healthy patient"):
        ph.find_patient(lambda P: P["age"] > 200, limit=5)


def test_bad_acquisition_inputs_raise():
    with pytest.raises(ValueError, match="unknown acquisition setting"):
        pa.acquisition_ranges({"kernal": {"sharp": 1.0}})
    with pytest.raises(ValueError, match="unknown kernels"):
        pa.acquisition_ranges({"kernels": {"bone": 1.0}})
    with pytest.raises(ValueError, match="probabilities"):
        pa.acquisition_ranges({"kernels": {"sharp": -1.0, "smooth": 2.0}})
    with pytest.raises(ValueError, match="positive"):
        pa.acquisition_ranges({"slice_mm": {0.0: 1.0}})
    with pytest.raises(ValueError, match="range"):
        pa.acquisition_ranges({"cupping_hu": (5.0, 1.0)})
    with pytest.raises(ValueError, match="unknown kernel"):
        pa.resolve_acquisition(ph.sample_patient(1)["acq"], kernel="bone")
    with pytest.raises(ValueError, match="unknown acquisition settings"):
        pa.resolve_acquisition(ph.sample_patient(1)["acq"], dose=2)
    with pytest.raises(ValueError, match="unknown acquisition setting"):
        PhantomSetSpec(acquisition={"kvp": 120})
    with pytest.raises(ValueError, match="slice_mm"):
        ph.make_phantom(1, shape=(1, 16, 16), spacing=(5.0, 10.0, 10.0), slice_mm=0.0)
    with pytest.raises(ValueError, match="unknown variant"):
        ph.sample_patient(1, "sdh", variant="hyperacute")


# --------------------------------------------------------------------------- lesion variants
VARIANT_CASES = [(k, v) for k in ph.LESION_KINDS for v in ph.VARIANTS[k]]


@pytest.mark.parametrize("kind,variant", VARIANT_CASES)
def test_each_variant_has_a_mask_and_its_hu(kind, variant):
    seed = 300 + VARIANT_CASES.index((kind, variant))
    params = ph.sample_patient(seed, kind, aligned=True, variant=variant)
    assert params["lesion"]["variant"] == variant
    p = ph.make_phantom(
        seed, shape=(9, 96, 96), spacing=(5.0, 2.4, 2.4), noise=False, blur=False, params=params
    )
    assert p.variant == variant
    code = ph.LESION_CODES[kind]
    mask = p.lesion == code
    assert mask.sum() > 0, f"{kind}/{variant}: empty mask"
    med = float(np.median(p.hu[mask]))
    hu = params["hu"]
    L = params["lesion"]
    if kind == "sdh":
        lo, hi = ph.HU_RANGES["sdh" if variant == "acute" else f"sdh_{variant}"]
        assert lo - 1 <= med <= hi + 1
        if variant == "subacute":  # isodense to cortex: within a few HU of grey matter
            assert abs(med - hu["gm"]) <= 12
        if variant == "chronic":  # hypodense: below white matter
            assert med < hu["wm"]
    elif kind == "iph":
        assert 50 - 1 <= med <= 90 + 1
        vol_ml = mask.sum() * np.prod(p.spacing) / 1000.0
        if variant == "small":
            assert max(L["radii"]) <= 5.0 and vol_ml < 1.0 and L["mass_mm"] == 0.0
    elif kind == "infarct":
        if variant == "acute":
            assert 15 - 1 <= med <= 25 + 1
        else:  # hyperacute: a few HU below the mean of grey and white matter, their contrast lost
            assert -8.5 <= med - 0.5 * (hu["gm"] + hu["wm"]) <= -1.5
    elif kind == "tumour":
        core = L["hu"]
        if variant == "isodense":
            assert hu["wm"] <= core <= hu["gm"]
        elif variant == "hyperdense":
            assert 42 <= core <= 60
        else:
            assert core < hu["wm"]
        assert (p.lesion == ph.LESION_CODES["oedema"]).any()
        assert p.mass_effect.max() > 0  # mass effect, recorded apart from the lesion
    elif kind in ("edh", "sah", "ivh"):
        lo, hi = ph.HU_RANGES[kind]
        assert lo - 1 <= med <= hi + 1


@pytest.mark.parametrize(
    "kind,small,large",
    [
        ("iph", "small", "acute"),
        ("sah", "focal", "diffuse"),
        ("ivh", "small", "layering"),
        ("edh", "small", "acute"),
    ],
)
def test_small_variants_are_smaller(kind, small, large):
    """Same patient and site, the small variant's mask is a fraction of the large one's."""
    sizes = []
    for v in (small, large):
        params = ph.sample_patient(77, kind, aligned=True, variant=v)
        p = ph.make_phantom(
            77, shape=(24, 96, 96), spacing=(2.4, 2.4, 2.4), noise=False, blur=False, params=params
        )
        sizes.append(int((p.lesion == ph.LESION_CODES[kind]).sum()))
    assert 0 < sizes[0] < 0.6 * sizes[1], sizes


def test_variant_frequencies_follow_the_table():
    n = 300
    for kind, table in ph.VARIANTS.items():
        drawn = [ph.sample_patient(s, kind)["lesion"]["variant"] for s in range(n)]
        for v, p0 in table.items():
            assert abs(drawn.count(v) / n - p0) < 4 * np.sqrt(p0 * (1 - p0) / n) + 0.01, (kind, v)


# ------------------------------------------------------------------------- manifest, shift
def _digest(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()


def _tiny_spec(**kw) -> PhantomSetSpec:
    """A phantom set of a few small scans: one test scan per kind, aligned heads."""
    base = dict(
        n_train=2,
        n_val_healthy=1,
        n_test_healthy=1,
        n_val_per_kind=0,
        n_test_per_kind=1,
        shape_3d=(16, 16, 16),
        size_2d=16,
        slices_2d=2,
        aligned=True,
    )
    return PhantomSetSpec(**{**base, **kw})


def test_manifest_records_variant_and_acquisition_and_kinds_stay_nine(tmp_path):
    spec = _tiny_spec()
    df = prepare_phantoms(tmp_path / "data", spec, [0.0, 80.0], workers=1, progress=False)
    m = read_manifest(tmp_path)
    cfg = read_config(tmp_path)
    assert tuple(cfg) == CONFIG_KEYS and cfg["source"] == "phantom" and cfg["window"] == [0.0, 80.0]
    assert cfg["spacing_3d"] == list(spec.spacing_3d) and set(cfg["details"]) == {"variants", "acquisition"}
    with pytest.raises(ValueError, match=r"must hold \['source'"):
        write_prepared(tmp_path / "d2", [], {}, {"window": [0.0, 80.0]})
    assert len(df) == len(m) == len(plan_phantom_set(spec))
    for col in ("variant", "kernel", "slice_thickness_mm", "noise_sd_5mm", "age", "calcification"):
        assert col in m.columns
    assert set(m.kind) <= set(ph.LESION_KINDS) | {"healthy"}
    for row in m.itertuples():
        assert row.variant == "none" if row.kind == "healthy" else row.variant in ph.VARIANTS[row.kind]
        assert row.kernel in pa.KERNELS and row.slice_thickness_mm in pa.ACQUISITION_DEFAULTS["slice_mm"]
        assert 18 <= row.age <= 90 and row.calcification
    assert pd.api.types.is_float_dtype(m.noise_sd_5mm)


def test_a_scan_renders_under_a_chosen_acquisition_with_the_same_anatomy():
    spec = _tiny_spec(
        n_train=1,
        n_val_healthy=0,
        n_test_healthy=0,
        kinds=("sdh",),
        shape_3d=(24, 24, 24),
        size_2d=32,
        slices_2d=3,
    )
    item = plan_phantom_set(spec)[-1]
    base = render_phantom_scan(item, spec)
    shifted = render_phantom_scan(item, spec, acquisition={"kernel": "sharp", "slice_mm": 0.625})
    assert shifted.extra["kernel"] == "sharp" and shifted.extra["slice_thickness_mm"] == 0.625
    assert shifted.extra["variant"] == base.extra["variant"] and shifted.extra["age"] == base.extra["age"]
    assert _digest(shifted.lesion) == _digest(base.lesion) and _digest(shifted.brain) == _digest(base.brain)
    assert not np.array_equal(shifted.slices, base.slices)
    inside = base.slice_brain > 0  # thin sharp slices are noisier inside the brain
    assert np.std(shifted.slices[inside]) > np.std(base.slices[inside])


def test_new_elements_are_deterministic_per_seed():
    a = ph.make_phantom(9, "tumour", shape=(12, 32, 32), spacing=(7.2, 7.2, 7.2))
    b = ph.make_phantom(9, "tumour", shape=(12, 32, 32), spacing=(7.2, 7.2, 7.2))
    for name in ("hu", "tissue", "lesion", "artefact"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.params["acq"] == b.params["acq"] and a.variant == b.variant
