"""Synthetic head-CT phantoms with lesion masks: the workbook's default data, no download needed.

A phantom is sampled from the ICBM152 template (:mod:`ctad_core.data.template`) on any grid the caller
asks for. The *patient* (anatomy, pose, lesion, acquisition) depends on the seed only; the grid decides
where it is sampled, so the 2D slices and the 3D volume of one seed show the same head and the same lesion.

What is simulated (values from REFERENCE.md unless a module below cites its own source, all in HU):

- tissues: grey matter 35–40, white matter 25–30 (GM−WM gap 6–10), CSF 0–15; a CSF rim, the skull
  (outer and inner table ≈ 1800, diploe 300–1100, 5–8 mm, thinner at the temporal squama), scalp (galea
  and skin ≈ +40, a fat band −100…−80), air −1000;
- bright normal anatomy (:mod:`ctad_core.data.phantom_anatomy`, with its sources): dural venous sinuses
  (superior sagittal, transverse, sigmoid, straight; 40–62 HU), falx and tentorium (thin dense dura),
  physiological calcification > 100 HU of the pineal (~70 %) and choroid plexus (~65 %), the basal
  ganglia (punctate or patchy) and falx or tentorium, with frequencies rising with the patient's age;
- a skull base: thick dense bone under the brain's floors, dense petrous pyramids, soft tissue of face and
  neck below; beam hardening (a dark interpetrous band with streaks, a bright cupping rim under the inner
  table);
- imaging (:mod:`ctad_core.data.phantom_acquisition`): per patient a reconstruction kernel (blur, edge
  enhancement, noise grain), noise level and slice thickness within clinical ranges; partial volume
  (super-sampling), thick slices averaging several 1 mm planes, spatially correlated noise scaled as
  1/√thickness;
- patient variability: random affine (±10° roll/yaw, ±15° pitch, per-axis scale 0.9–1.1, ±10 mm shift),
  a smooth elastic warp (2–4 mm SD, 15 mm control grid), skull and scalp thickness fields, ventricle
  enlargement and sulcal widening (a normal-ageing spectrum), GM/WM contrast, age (18–90 years);
- lesions (:data:`LESION_KINDS`), each with its voxel mask (:data:`LESION_CODES`) and mass effect
  recorded separately (``mass_effect``), taking the noise texture of the tissue around them. Each kind
  comes in variants (:data:`VARIANTS`, recorded in the manifest's ``variant`` column), several of which
  an intensity rule misses: subacute SDH isodense to cortex (25–40 HU) and chronic SDH hypodense
  (8–22 HU) — acute SDH is hyperdense, subacute (1–3 weeks) isodense, chronic hypodense [L1], [L2]
  (though chronic collections vary and rebleed [L3]); a hyperacute infarct as a few HU of lost
  grey–white contrast beside the acute hypodense one (REFERENCE.md); small haemorrhages of a few mm
  (IPH, EDH, focal SAH, a thin IVH layer); tumours isodense to the brain with oedema and mass effect
  (meningiomas are iso- to hyperdense on unenhanced CT [L4]). The variant frequencies are our choice.

Sources of the lesion variants:

- [L1] Radiology Masterclass, SDH age on CT (hyper-, iso-, hypodense at injury, 1 and 2 months),
  http://radiologymasterclass.co.uk/gallery/ct_brain/ct_brain_images/subdural_acute_chronic_ct_brain.html
- [L2] Subacute subdural hematoma, Radiopaedia case discussion (acute hyperdense, subacute isodense,
  chronic hypodense relative to grey matter),
  https://radiopaedia.org/play/17700/entry/647577/case/54877/discussion
- [L3] Lee KS et al. The computed tomographic attenuation and the age of subdural hematomas. J Korean Med
  Sci 1997;12(4):353–9 (acute hyperdense in 98.6 %; subacute 45.7 % hypodense, 42.9 % isodense)
- [L4] CT evaluation of meningiomas, https://neupsykey.com/ct-evaluation-of-meningiomas

Known gaps: no orbits, paranasal sinuses, mastoid air cells, face or teeth (the soft tissue below the
skull base is one block); the brainstem continues straight down through a ring of bone; beam hardening
is painted in the image, not reconstructed from projections, so it has no metal or motion streaks;
fractures are not depressed; no contrast agent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from ctad_core.data import phantom_anatomy as anat
from ctad_core.data.masks import exclude_bone_partial_volume
from ctad_core.data.nifti import zyx_affine
from ctad_core.data.phantom_acquisition import resolve_acquisition, sample_acquisition
from ctad_core.data.phantom_anatomy import partial_inside as _inside
from ctad_core.data.template import CHANNELS, Template, load_template
from ctad_core.kinds import HAEMORRHAGE_KINDS, LESION_CODES, LESION_KINDS  # noqa: F401 (re-exported)

#: Codes of the tissue label map.
TISSUE_CODES = {
    "air": 0,
    "skin": 1,
    "fat": 2,
    "bone": 3,
    "diploe": 4,
    "csf": 5,
    "gm": 6,
    "wm": 7,
    "ventricle": 8,
    "calcification": 9,
    "sinus": 10,
    "dura": 11,
    "soft_tissue": 12,
}
#: Variants of each lesion kind and how often each is drawn (the manifest's ``variant`` column).
VARIANTS = {
    "iph": {"acute": 0.65, "small": 0.35},
    "sdh": {"acute": 0.5, "subacute": 0.25, "chronic": 0.25},
    "edh": {"acute": 0.75, "small": 0.25},
    "sah": {"diffuse": 0.6, "focal": 0.4},
    "ivh": {"layering": 0.5, "cast": 0.2, "small": 0.3},
    "infarct": {"acute": 0.6, "hyperacute": 0.4},
    "tumour": {"isodense": 0.5, "hyperdense": 0.3, "hypodense": 0.2},
    "fracture": {"linear": 1.0},
    "atrophy": {"global": 1.0},
}
#: Reference HU ranges (REFERENCE.md) the phantom keeps, used by the tests.
HU_RANGES = {
    "air": (-1000.0, -1000.0),
    "fat": (-100.0, -80.0),
    "skin": (40.0, 45.0),
    "bone": (1800.0, 1800.0),
    "diploe": (300.0, 1100.0),
    "gm": (35.0, 40.0),
    "wm": (25.0, 30.0),
    "csf": (0.0, 15.0),
    "ventricle": (0.0, 15.0),  # the ventricles hold CSF
    "calcification": (100.0, 800.0),
    "sinus": anat.ANATOMY_HU["sinus"],
    "dura": anat.ANATOMY_HU["dura"],
    "soft_tissue": anat.ANATOMY_HU["soft_tissue"],
    "petrous": anat.ANATOMY_HU["petrous"],
    "iph": (50.0, 90.0),
    "iph_oedema": (10.0, 25.0),
    "sdh": (50.0, 80.0),
    "sdh_subacute": (25.0, 40.0),
    "sdh_chronic": (8.0, 22.0),
    "edh": (50.0, 90.0),
    "sah": (40.0, 70.0),
    "ivh": (50.0, 80.0),
    "infarct_acute": (15.0, 25.0),
    "infarct_hyperacute_delta": (-8.0, -2.0),
    "tumour": (18.0, 60.0),
    "necrosis": (10.0, 20.0),
    "oedema": (10.0, 20.0),
    "fracture": (0.0, 60.0),
}


@dataclass
class Phantom:
    """One synthetic head CT.

    Attributes:
        hu: (z, y, x) float32 HU.
        spacing: (z, y, x) mm.
        affine: 4×4, (z, y, x) indices → RAS+ mm.
        tissue: (z, y, x) uint8, :data:`TISSUE_CODES` (before lesions).
        lesion: (z, y, x) uint8, :data:`LESION_CODES` (0 = none).
        mass_effect: (z, y, x) float32, displacement of normal anatomy in mm (0 where none).
        brain: (z, y, x) uint8 intracranial mask (brain, CSF, sinuses, dura and intracranial lesions) without
            bone partial volume: a voxel more than half intracranial whose bone share of the signal
            (:attr:`bone_fraction`) is at most :data:`ctad_core.data.masks.BONE_PV_MAX` — the evaluation mask a CT pipeline's brain
            mask would give (the outermost intracranial layer, half bone, reads 300+ HU and is not brain).
        kind: ``"healthy"`` or the lesion kind.
        params: the patient's sampled parameters (HU, thicknesses, anatomy, acquisition, lesion).
        artefact: (z, y, x) float32, the HU that beam hardening added (streaks < 0, cupping > 0), before
            blur and noise; zeros when rendered without artefacts.
        bone_fraction: (z, y, x) float32 in [0, 1], bone's share of each voxel's signal (skull and petrous
            occupancy through the scanner blur, the voxel and the slice profile); None for old pickles.
    """

    hu: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    tissue: np.ndarray
    lesion: np.ndarray
    mass_effect: np.ndarray
    brain: np.ndarray
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    artefact: np.ndarray | None = None
    bone_fraction: np.ndarray | None = None

    @property
    def variant(self) -> str:
        """The lesion's variant (:data:`VARIANTS`), ``"none"`` for a healthy phantom."""
        return (self.params.get("lesion") or {}).get("variant", "none")


# --------------------------------------------------------------------------------------------- patient
def _rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    """Rotation in (z, y, x) coordinates from angles (radians) about the x (pitch), y (roll), z (yaw) axes."""
    cx, sx = math.cos(rx), math.sin(rx)
    cy, sy = math.cos(ry), math.sin(ry)
    cz, sz = math.cos(rz), math.sin(rz)
    # matrices act on (z, y, x) vectors
    about_x = np.array([[cx, -sx, 0], [sx, cx, 0], [0, 0, 1]])  # mixes z and y: nodding
    about_y = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])  # mixes z and x: head tilt
    about_z = np.array([[1, 0, 0], [0, cz, -sz], [0, sz, cz]])  # mixes y and x: turning
    return about_z @ about_y @ about_x


def sample_patient(
    seed: int,
    kind: str = "healthy",
    lesion_near_midaxial: float | None = 12.0,
    aligned: bool = False,
    acquisition: dict[str, Any] | None = None,
    variant: str | None = None,
) -> dict[str, Any]:
    """Draw one patient's parameters (anatomy, pose, tissue HU, lesion, acquisition) from ``seed``.

    Four independent streams of the seed draw the core patient (pose, tissues, lesion site and size: the
    same values as before the dense anatomy, variants and acquisitions existed), the dense normal anatomy
    and age, the lesion variant (which then changes the lesion's HU or size), and the acquisition;
    changing the acquisition ranges or a variant's frequency leaves the rest of the patient unchanged.

    Args:
        seed: the patient seed; the same seed gives the same patient on any grid.
        kind: ``"healthy"`` or one of :data:`LESION_KINDS`.
        lesion_near_midaxial: keep focal lesions within this many mm (template z) of the mid-axial level,
            so 2D mid-axial slice sets see them; None places them anywhere plausible.
        aligned: the head in the template's pose (no rotation, scale or shift), as after an affine
            registration to the atlas; the elastic warp and all anatomical variability remain.
        acquisition: overrides of the acquisition sampling ranges
            (:data:`ctad_core.data.phantom_acquisition.ACQUISITION_DEFAULTS`).
        variant: force this variant of ``kind`` (:data:`VARIANTS`) instead of drawing it.

    Returns:
        A dict of plain values and small arrays (see :class:`Phantom` ``params``): ``age``, ``anatomy``
        (:func:`ctad_core.data.phantom_anatomy.sample_anatomy`), ``acq``
        (:func:`ctad_core.data.phantom_acquisition.sample_acquisition`) and ``lesion`` (with ``variant``).

    Raises:
        ValueError: an unknown kind or variant, or bad acquisition ranges.
    """
    if kind != "healthy" and kind not in LESION_KINDS:
        raise ValueError(f"unknown lesion kind {kind!r}; choose 'healthy' or one of {LESION_KINDS}")
    if variant is not None and variant not in VARIANTS.get(kind, {}):
        raise ValueError(f"unknown variant {variant!r} of {kind!r}; choose from {sorted(VARIANTS.get(kind, {}))}")
    tpl = load_template()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC7AD]))
    rng_anat, rng_var, rng_acq = (np.random.default_rng(np.random.SeedSequence([int(seed), 0xC7AD, k])) for k in (1, 2, 3))
    p: dict[str, Any] = {"seed": int(seed), "kind": kind}
    # Pose and shape.
    deg = math.pi / 180.0
    p["rotation"] = _rotation(rng.uniform(-15, 15) * deg, rng.uniform(-10, 10) * deg, rng.uniform(-10, 10) * deg)
    p["scale"] = rng.uniform(0.9, 1.1, size=3)
    p["shift"] = rng.uniform(-10, 10, size=3)
    if aligned:
        p.update(rotation=np.eye(3), scale=np.ones(3), shift=np.zeros(3))
    p["aligned"] = bool(aligned)
    p["warp_sd"] = rng.uniform(2.0, 4.0)
    p["warp_seed"] = int(rng.integers(2**31))
    p["field_seed"] = int(rng.integers(2**31))
    # Tissue HU (the global ±3 HU offset of REFERENCE.md is folded into these draws, which stay in range).
    wm = rng.uniform(25.0, 30.0)
    gm = rng.uniform(max(35.0, wm + 6.0), min(40.0, wm + 10.0))
    p["hu"] = {
        "wm": wm,
        "gm": gm,
        "csf": rng.uniform(3.0, 12.0),
        "diploe": rng.uniform(450.0, 1000.0),
        "bone": 1800.0,
        "fat": rng.uniform(-100.0, -80.0),
        "skin": rng.uniform(40.0, 45.0),
        "air": -1000.0,
    }
    p["skull_mm"] = rng.uniform(5.0, 8.0)
    p["scalp_mm"] = rng.uniform(4.0, 6.0)
    p["csf_rim_mm"] = rng.uniform(1.0, 2.5)
    # Normal ageing spectrum: small ventricle growth and sulcal widening.
    p["vent_grow_mm"] = rng.uniform(-0.5, 1.5)
    p["sulcal_mm"] = rng.uniform(0.0, 0.6)
    rng.uniform(size=2)  # blur and noise once drawn here; the acquisition draws them now (same stream after)
    p["pineal"] = bool(rng.random() < 0.7)  # [C1], [C2] of phantom_anatomy: ~70 %
    p["pineal_hu"] = rng.uniform(150.0, 300.0)
    p["choroid"] = bool(rng.random() < 0.65)  # ~65 %
    p["choroid_hu"] = rng.uniform(110.0, 200.0)
    p["lesion"] = _sample_lesion(kind, rng, tpl, lesion_near_midaxial) if kind != "healthy" else None
    if kind == "atrophy":
        p["vent_grow_mm"] = rng.uniform(3.0, 5.0)
        p["sulcal_mm"] = rng.uniform(1.0, 1.8)
        p["csf_rim_mm"] += rng.uniform(1.0, 2.0)
    p["age"] = float(rng_anat.uniform(18.0, 90.0))
    p["anatomy"] = anat.sample_anatomy(rng_anat, p["age"], tpl)
    if p["lesion"] is not None:
        _sample_variant(p["lesion"], rng_var, p["hu"], variant)
    p["acq"] = sample_acquisition(rng_acq, acquisition)
    return p


def find_patient(predicate, kind: str = "healthy", start: int = 0, limit: int = 5000, **sample_kw: Any):
    """The first seed from ``start`` whose patient (:func:`sample_patient`) satisfies ``predicate``.

    Args:
        predicate: ``params -> bool``, e.g. ``lambda P: P["anatomy"]["bg_calc"] == "patchy"``.
        kind: lesion kind of the patients tried.
        start: first seed tried; seeds are tried in order, so the answer is deterministic.
        limit: how many seeds to try.
        **sample_kw: passed to :func:`sample_patient` (``aligned``, ``acquisition``, ``variant``).

    Returns:
        ``(seed, params)``.

    Raises:
        LookupError: no patient among ``limit`` seeds satisfies ``predicate``.
    """
    for s in range(int(start), int(start) + int(limit)):
        params = sample_patient(s, kind, **sample_kw)
        if predicate(params):
            return s, params
    raise LookupError(f"no {kind} patient in seeds {start}..{start + limit - 1} satisfies the predicate")


def _sample_variant(L: dict[str, Any], rng: np.random.Generator, hu: dict[str, float], variant: str | None) -> None:
    """Draw the lesion's variant (:data:`VARIANTS`) and change its parameters to match, in place."""
    kind = L["kind"]
    names = list(VARIANTS[kind])
    probs = np.array([VARIANTS[kind][n] for n in names])
    v = variant or names[int(rng.choice(len(names), p=probs / probs.sum()))]
    L["variant"] = v
    if kind == "iph" and v == "small":  # a few mm: punctate haemorrhage or small contusion, no mass effect
        L.update(radii=rng.uniform(2.5, 5.0, size=3), oedema_mm=rng.uniform(0.5, 1.5), mass_mm=0.0)
    elif kind == "sdh" and v == "subacute":  # isodense to cortex
        L["hu"] = rng.uniform(*HU_RANGES["sdh_subacute"])
    elif kind == "sdh" and v == "chronic":  # hypodense, often thicker
        L.update(hu=rng.uniform(*HU_RANGES["sdh_chronic"]), thickness=rng.uniform(8.0, 16.0))
        L["mass_mm"] = 0.5 * L["thickness"]
    elif kind == "edh" and v == "small":
        L.update(thickness=rng.uniform(4.0, 8.0), half_angle=math.radians(rng.uniform(12.0, 20.0)))
        L["mass_mm"] = 0.5 * L["thickness"]
    elif kind == "sah" and v == "focal":  # a few sulci
        L["radius"] = rng.uniform(8.0, 15.0)
    elif kind == "ivh":
        L["cast"] = v == "cast"
        if v == "cast" and L["side"] == 0.0:
            L["side"] = float(rng.choice([-1.0, 1.0]))
        if v == "small":  # a thin dependent layer
            L["level_mm"] = rng.uniform(2.0, 5.0)
    elif kind == "infarct":
        L["acute"] = v == "acute"
    elif kind == "tumour":
        if v == "isodense":  # between the patient's white and grey matter
            L["hu"] = rng.uniform(hu["wm"], hu["gm"])
        elif v == "hyperdense":
            L["hu"] = rng.uniform(42.0, 60.0)
        else:
            L["hu"] = rng.uniform(18.0, hu["wm"] - 3.0)


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _pick_site(rng: np.random.Generator, pts: np.ndarray, tpl: Template, near: float | None) -> np.ndarray:
    if near is not None:
        close = pts[np.abs(pts[:, 0] - tpl.midaxial_z) < near]
        if len(close):
            pts = close
    return pts[rng.integers(len(pts))].astype(np.float64)


def _sample_lesion(kind: str, rng: np.random.Generator, tpl: Template, near: float | None) -> dict[str, Any]:
    L: dict[str, Any] = {"kind": kind, "shape_seed": int(rng.integers(2**31))}
    if kind == "iph":
        site = "deep_gm" if rng.random() < 0.6 else "lobar_wm"
        L.update(
            site=site,
            centre=_pick_site(rng, tpl.sites[site], tpl, near),
            radii=rng.uniform(6.0, 16.0, size=3),
            axes=_rotation(*rng.uniform(-math.pi, math.pi, size=3)),
            hu=rng.uniform(60.0, 80.0),
            oedema_mm=rng.uniform(2.0, 4.0),
            oedema_hu=rng.uniform(12.0, 22.0),
        )
        L["mass_mm"] = 0.35 * float(np.mean(L["radii"]))
    elif kind in ("sdh", "edh"):
        pts = tpl.sites["surface"]
        # convexity: lateral or fronto-parietal, above the skull base, away from the midline
        ok = pts[(np.abs(pts[:, 2]) > 25.0) & (pts[:, 0] > tpl.midaxial_z - 35.0)]
        c = _pick_site(rng, ok, tpl, near)
        L.update(
            centre=c,
            side=float(np.sign(c[2])),
            half_angle=math.radians(rng.uniform(40.0, 60.0) if kind == "sdh" else rng.uniform(18.0, 30.0)),
            thickness=rng.uniform(5.0, 10.0) if kind == "sdh" else rng.uniform(10.0, 18.0),
            hu=rng.uniform(55.0, 80.0) if kind == "sdh" else rng.uniform(55.0, 90.0),
        )
        L["mass_mm"] = 0.5 * L["thickness"]
        if kind == "edh" and rng.random() < 0.5:
            L["fracture"] = _sample_fracture(rng, c)
    elif kind == "sah":
        pts = tpl.sites["sulcal_csf"]
        L.update(centre=_pick_site(rng, pts, tpl, near), radius=rng.uniform(25.0, 40.0), hu=rng.uniform(45.0, 70.0))
    elif kind == "ivh":
        L.update(
            level_mm=rng.uniform(8.0, 16.0),  # depth of the layer above the most dependent (posterior) point
            side=float(rng.choice([-1.0, 1.0, 0.0])),  # 0: both occipital horns
            cast=bool(rng.random() < 0.3),  # blood casts the whole lateral ventricle of that side
            hu=rng.uniform(55.0, 80.0),
        )
        if L["cast"] and L["side"] == 0.0:
            L["side"] = float(rng.choice([-1.0, 1.0]))
    elif kind == "infarct":
        side = float(rng.choice([-1.0, 1.0]))
        apex = np.array([tpl.midaxial_z + rng.uniform(-12, 8), rng.uniform(-25.0, 10.0), side * rng.uniform(12.0, 20.0)])
        axis = np.array([rng.uniform(-0.25, 0.25), rng.uniform(-0.6, 0.6), side * 1.0])
        L.update(
            apex=apex,
            axis=axis / np.linalg.norm(axis),
            half_angle=math.radians(rng.uniform(16.0, 28.0)),
            acute=bool(rng.random() < 0.7),
            hu=rng.uniform(15.0, 25.0),
            delta=rng.uniform(-8.0, -2.0),
        )
    elif kind == "tumour":
        site = "lobar_wm" if rng.random() < 0.7 else "deep_wm"
        r = rng.uniform(9.0, 18.0)
        L.update(
            site=site,
            centre=_pick_site(rng, tpl.sites[site], tpl, near),
            radii=r * rng.uniform(0.8, 1.2, size=3),
            axes=_rotation(*rng.uniform(-math.pi, math.pi, size=3)),
            hu=rng.uniform(30.0, 55.0),
            necrosis=bool(r > 13.0 and rng.random() < 0.6),
            necrosis_hu=rng.uniform(10.0, 20.0),
            oedema_mm=rng.uniform(8.0, 18.0),
            oedema_hu=rng.uniform(12.0, 20.0),
        )
        L["mass_mm"] = 0.45 * r
    elif kind == "fracture":
        pts = tpl.sites["surface"]
        ok = pts[pts[:, 0] > tpl.midaxial_z - 30.0]
        L.update(_sample_fracture(rng, _pick_site(rng, ok, tpl, near)))
    elif kind == "atrophy":
        L.update(note="ventricle enlargement and sulcal widening beyond the normal spectrum")
    return L


def _sample_fracture(rng: np.random.Generator, centre: np.ndarray) -> dict[str, Any]:
    normal = _unit(rng)
    return {
        "centre": centre,
        "plane_normal": normal,
        "length_mm": rng.uniform(20.0, 45.0),
        "gap_mm": rng.uniform(1.0, 3.0),
        "gap_hu": rng.uniform(5.0, 55.0),
        "haematoma_mm": rng.uniform(6.0, 12.0),
        "haematoma_hu": rng.uniform(50.0, 70.0),
    }


# -------------------------------------------------------------------------------------------- sampling
def _smooth_field(seed: int, n: int = 3, grid: int = 10, extent: float = 140.0) -> tuple[np.ndarray, float]:
    """``n`` smooth random fields of unit SD on a coarse (grid³) lattice spanning ±extent mm."""
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.normal(size=(n, grid, grid, grid)), sigma=(0, 1.0, 1.0, 1.0), mode="wrap")
    f /= f.std(axis=(1, 2, 3), keepdims=True) + 1e-8
    return f.astype(np.float32), extent


def _sample_coarse(field: np.ndarray, extent: float, pts: torch.Tensor) -> torch.Tensor:
    """Trilinear look-up of coarse fields (C, g, g, g) at world points (Z, Y, X, 3) in (z, y, x) mm → (Z, Y, X, C)."""
    grid = (pts / extent).flip(-1)[None]  # (1, Z, Y, X, 3); grid_sample wants (x, y, z)
    out = F.grid_sample(torch.from_numpy(field)[None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0].permute(1, 2, 3, 0)


def _sample_template(tpl_maps: torch.Tensor, origin: np.ndarray, pts: torch.Tensor, voxel_mm: float = 1.0) -> torch.Tensor:
    """Sample template channels at world points (Z, Y, X, 3) (z, y, x) mm → (Z, Y, X, C)."""
    size = torch.tensor(tpl_maps.shape[1:], dtype=torch.float32)
    idx = (pts - torch.from_numpy(origin).float()) / voxel_mm
    norm = idx / (size - 1) * 2.0 - 1.0
    grid = norm.flip(-1)[None]  # (1, Z, Y, X, 3) in (x, y, z) order
    out = F.grid_sample(tpl_maps[None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0].permute(1, 2, 3, 0)


def _grid_axis(n: int, spacing: float, sub: int, offset: float, width: float | None = None) -> np.ndarray:
    """World positions (mm) of ``sub`` sub-samples per voxel along one axis, voxel centres at the middle.

    The sub-samples spread over ``width`` (default ``spacing``): a thin slice samples less than its spacing.
    """
    centres = (np.arange(n) - (n - 1) / 2.0) * spacing + offset
    subs = ((np.arange(sub) + 0.5) / sub - 0.5) * (spacing if width is None else width)
    return (centres[:, None] + subs[None, :]).reshape(-1).astype(np.float32)


def _block_mean(a: torch.Tensor, f: tuple[int, int, int]) -> torch.Tensor:
    """Average (Z·fz, Y·fy, X·fx) blocks down to (Z, Y, X)."""
    if f == (1, 1, 1):
        return a
    return F.avg_pool3d(a[None, None], kernel_size=f, stride=f)[0, 0]


def _supersampling(spacing: tuple[float, float, float], sub: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """Sub-samples per voxel: partial volume at layer edges is analytic (linear ramps), so super-sampling is
    needed only where a coarse voxel would alias fine texture; coarse grids read the 2 mm template."""
    if sub is not None:
        return tuple(int(max(1, s)) for s in sub)  # type: ignore[return-value]

    def inplane(s: float) -> int:
        return 1 if s <= 1.2 or s >= 2.0 else 2

    sz, sy, sx = spacing
    fy, fx = inplane(sy), inplane(sx)
    if sz >= 3.0 or sz > 1.5 * min(sy, sx):  # thick slices average planes about 1 mm (fine template) or 2 mm apart
        step = 2.0 if min(sy / fy, sx / fx) >= 2.0 else 1.0
        fz = int(min(5, max(1, math.ceil(sz / step - 1e-6))))
    else:
        fz = inplane(sz)
    return (fz, fy, fx)


def make_phantom(
    seed: int,
    kind: str = "healthy",
    shape: tuple[int, int, int] = (32, 256, 256),
    spacing: tuple[float, float, float] = (5.0, 0.9, 0.9),
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    noise: bool = True,
    blur: bool = True,
    supersample: tuple[int, int, int] | None = None,
    lesion_near_midaxial: float | None = 12.0,
    params: dict[str, Any] | None = None,
    slice_mm: float | None = None,
    artefacts: bool | None = None,
    acquisition: dict[str, Any] | None = None,
) -> Phantom:
    """Build one synthetic head CT on the requested grid.

    Args:
        seed: patient seed: same seed, same head and lesion on any grid (and, on the same grid, the same
            phantom to the bit).
        kind: ``"healthy"`` or one of :data:`LESION_KINDS`.
        shape: output (z, y, x) voxels.
        spacing: output (z, y, x) mm; z is the slice spacing and, unless ``slice_mm`` says otherwise, the
            slice thickness (thick slices average 1 mm planes).
        offset_mm: world position of the grid centre relative to the head centre; z = 0 is the
            mid-axial level (lateral ventricles), so ``(10, 0, 0)`` centres the grid 10 mm above it.
        noise: add spatially correlated noise (SD: the acquisition's ``noise_sd_5mm`` · √(5 / slice_mm),
            texture: its kernel's grain).
        blur: apply the scanner blur and the kernel's edge enhancement.
        supersample: sub-samples per voxel per axis (default: chosen from the spacing).
        lesion_near_midaxial: see :func:`sample_patient`.
        params: parameters from :func:`sample_patient` (default: drawn from ``seed`` and ``kind``).
        slice_mm: width of the slice sensitivity profile (mm), default ``spacing[0]``. Thinner than the
            spacing: thin slices with gaps; thicker: each slice also averages its neighbours' planes
            (a Gaussian along z adds the missing width).
        artefacts: paint beam hardening (interpetrous streaks, cupping); default: as ``blur`` (a clean
            phantom, ``blur=False``, shows the anatomy's own HU).
        acquisition: changes to the patient's acquisition (``kernel``, ``noise_sd_5mm``, ``blur_mm``, …;
            see :func:`ctad_core.data.phantom_acquisition.resolve_acquisition`), to render the same
            patient as another scanner would.

    Returns:
        A :class:`Phantom`.
    """
    # Element-wise work on mid-sized arrays: one thread is faster than several fighting for cores,
    # and sets are built in parallel processes instead.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _make_phantom(seed, kind, shape, spacing, offset_mm, noise, blur, supersample, lesion_near_midaxial,
                             params, slice_mm, blur if artefacts is None else artefacts, acquisition)
    finally:
        torch.set_num_threads(threads)


def _make_phantom(seed, kind, shape, spacing, offset_mm, noise, blur, supersample, lesion_near_midaxial, params,
                  slice_mm, artefacts, acquisition) -> Phantom:
    shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
    spacing = tuple(float(s) for s in spacing)  # type: ignore[assignment]
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive ints (z, y, x), got {shape}")
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be three positive mm values (z, y, x), got {spacing}")
    p = params if params is not None else sample_patient(seed, kind, lesion_near_midaxial)
    kind = p["kind"]
    acq = resolve_acquisition(p["acq"], **(acquisition or {}))
    thick = spacing[0] if slice_mm is None else float(slice_mm)
    if thick <= 0:
        raise ValueError(f"slice_mm must be positive, got {slice_mm}")
    sampled_z = min(thick, spacing[0])  # the sub-planes span the profile, up to the spacing (Gaussian beyond)
    f = _supersampling((sampled_z, spacing[1], spacing[2]), supersample)
    fine_mm = [sampled_z / f[0], spacing[1] / f[1], spacing[2] / f[2]]
    w = float(np.mean(fine_mm))  # partial-volume ramp width (mm)
    tpl = load_template(1 if min(fine_mm[1:]) >= 2.0 else 0)
    hu_t = p["hu"]

    # Fine grid in patient space (mm, z up), the mid-axial level at z = 0.
    z0 = tpl.midaxial_z - tpl.centre[0]
    axes = [
        _grid_axis(shape[i], spacing[i], f[i], offset_mm[i] + (z0 if i == 0 else 0.0), sampled_z if i == 0 else None)
        for i in range(3)
    ]
    gz, gy, gx = torch.meshgrid(*(torch.from_numpy(a) for a in axes), indexing="ij")
    x = torch.stack([gz, gy, gx], dim=-1)  # (Z, Y, X, 3) patient mm
    del gz, gy, gx
    # Patient -> template: inverse affine, then the elastic warp (defined in patient space).
    m = torch.from_numpy((p["rotation"] @ np.diag(p["scale"])).astype(np.float32))
    q = (x - torch.from_numpy(p["shift"].astype(np.float32))) @ torch.linalg.inv(m).T
    warp, ext = _smooth_field(p["warp_seed"], n=3, grid=18, extent=140.0)
    q = q + p["warp_sd"] * _sample_coarse(warp, ext, x)
    q = q + torch.from_numpy(tpl.centre.astype(np.float32))
    del x

    L = p["lesion"] or {}
    # Mass effect: tissue around a mass comes from closer to its centre (pushed outward).
    mass = torch.zeros(q.shape[:-1])
    q_tissue = q
    if L.get("mass_mm"):
        c = torch.from_numpy(np.asarray(L["centre"], dtype=np.float32))
        R = float(np.mean(L["radii"])) if "radii" in L else float(L["thickness"])
        d = q - c
        r = d.norm(dim=-1).clamp_min(1e-3)
        u = L["mass_mm"] * torch.minimum(r / R, (R / r) ** 2)
        q_tissue = c + d * (1.0 - u / r)[..., None]
        mass = u
    maps = torch.from_numpy(tpl.maps)
    skull_ch = [CHANNELS.index("sd_head"), CHANNELS.index("base")]
    tissue_ch = [CHANNELS.index(c) for c in ("gm", "wm", "sd_vent", "sd_csf")]
    if q_tissue is q:  # no mass effect: one look-up for all channels
        sd_head, base, gm, wm, sd_vent, sd_csf = _sample_template(
            maps[skull_ch + tissue_ch], tpl.origin, q, tpl.voxel_mm).unbind(-1)
    else:
        sd_head, base = _sample_template(maps[skull_ch], tpl.origin, q, tpl.voxel_mm).unbind(-1)
        gm, wm, sd_vent, sd_csf = _sample_template(maps[tissue_ch], tpl.origin, q_tissue, tpl.voxel_mm).unbind(-1)
    sd_head = sd_head.contiguous()
    A = p["anatomy"]
    pet_box, pet_d = anat.carve_petrous(sd_head, q, A)
    # The template is an average of 152 brains, so its tissue maps are blurrier than one head:
    # sharpen the parenchyma fraction and the grey/white share (an individual's crisp boundaries).
    paren = gm + wm
    share = gm / paren.clamp_min(1e-3)
    paren = torch.sigmoid((paren - 0.5) * 10.0)
    share = torch.sigmoid((share - 0.5) * 8.0)
    gm, wm = paren * share, paren * (1.0 - share)

    fields, fext = _smooth_field(p["field_seed"], n=3, grid=10, extent=140.0)
    fl = _sample_coarse(fields, fext, q - torch.from_numpy(tpl.centre.astype(np.float32)))
    # Skull thinner over the temporal squama (lateral, below the mid-axial level).
    qz_rel = q[..., 0] - tpl.midaxial_z
    temporal = torch.sigmoid((q[..., 2].abs() - 48.0) / 4.0) * torch.exp(-(((qz_rel + 18.0) / 16.0) ** 2))
    skull = p["skull_mm"] * (1.0 + 0.12 * fl[..., 0]) * (1.0 - 0.5 * temporal)
    scalp = p["scalp_mm"] * (1.0 + 0.15 * fl[..., 1])
    diploe_hu = (p["hu"]["diploe"] * (1.0 + 0.12 * fl[..., 2])).clamp(300.0, 1100.0)
    del fl
    # Skull base: under the brain's floors the bone is thick and dense, and the face and neck (soft tissue)
    # lie below it instead of scalp and air; below NECK_Z the outside of the bone is neck all round.
    neck = torch.sigmoid((anat.NECK_Z - q[..., 0]) / 4.0)
    outer = torch.maximum(base, neck)
    skull = skull + base * (A["base_mm"] - skull)
    diploe_hu = diploe_hu + base * (A["base_hu"] - diploe_hu)
    scalp = scalp + outer * (A["soft_mm"] - scalp)

    # Brain interior: ventricles and sulci grown by the patient's ageing parameters.
    depth = -sd_head
    v = _inside(sd_vent, p["vent_grow_mm"], w)
    near_surface = (1.0 - (depth - 15.0) / 10.0).clamp(0.0, 1.0)
    sulc = _inside(sd_csf, p["sulcal_mm"], w) * near_surface
    scale = (1.0 - v) * (1.0 - sulc)
    gm_f, wm_f = gm * scale, wm * scale
    csf_f = (1.0 - gm_f - wm_f).clamp(0.0, 1.0)
    hu_brain = gm_f * hu_t["gm"] + wm_f * hu_t["wm"] + csf_f * hu_t["csf"]
    atrophy_occ = None
    if kind == "atrophy":
        normal = (1.0 - _inside(sd_vent, 0.5, w)) * (1.0 - _inside(sd_csf, 0.3, w) * near_surface)
        atrophy_occ = ((gm + wm) * (normal - scale)).clamp(0.0, 1.0)

    # Layers outward from the closed brain outline.
    rim = p["csf_rim_mm"]
    tt = torch.clamp(skull / 3.0, max=1.8)
    fat = 0.55 * scalp
    b = [
        torch.zeros_like(sd_head),
        torch.full_like(sd_head, rim),
        rim + tt,
        rim + skull - tt,
        rim + skull,
        rim + skull + 1.0,
        rim + skull + 1.0 + fat,
        rim + skull + scalp,
    ]
    ins = [_inside(sd_head, bi, w) for bi in b]
    frac = [ins[0]] + [ins[i + 1] - ins[i] for i in range(len(b) - 1)] + [1.0 - ins[-1]]
    soft = A["soft_hu"]
    skin_hu, fat_hu = hu_t["skin"] + outer * (soft - hu_t["skin"]), hu_t["fat"] + outer * (soft - hu_t["fat"])
    layer_hu = [hu_brain, hu_t["csf"], hu_t["bone"], diploe_hu, hu_t["bone"], skin_hu, fat_hu, skin_hu, hu_t["air"]]
    hu = sum(fr * h for fr, h in zip(frac, layer_hu))
    frac_brain, frac_rim = frac[0], frac[1]
    bone_frac = frac[2] + frac[3] + frac[4]
    intracranial = frac_brain + frac_rim

    # Normal calcifications (pineal, choroid plexus).
    calc = torch.zeros_like(hu)
    spots = ([(tpl.pineal, 3.0, p["pineal_hu"])] if p["pineal"] else []) + (
        [(a, 3.5, p["choroid_hu"]) for a in tpl.atria] if p["choroid"] else [])
    for centre, radius, value in spots:
        box = anat.box_where(q_tissue, centre - radius - 2.0 * w, centre + radius + 2.0 * w)
        if box is not None:
            occ = _inside((q_tissue[box] - torch.from_numpy(centre.astype(np.float32))).norm(dim=-1), radius, w)
            hu[box] = hu[box] + occ * (value - hu[box])
            calc[box] = torch.maximum(calc[box], occ)
    # Dense normal anatomy (dura, sinuses, calcifications) and the petrous pyramids.
    hu, dense = anat.paint_dense_anatomy(hu, q, q_tissue, sd_head, rim, intracranial, wm_f, A, fine_mm, w)
    if "calcification" in dense:
        calc = torch.maximum(calc, dense["calcification"])
    hu, petrous = anat.paint_petrous(hu, pet_box, pet_d, rim, A, w)

    # Tissue labels (before lesions), on the fine grid.
    tissue = torch.zeros(hu.shape, dtype=torch.uint8)
    order = ["brain", "csf", "bone", "diploe", "bone", "skin", "fat", "skin", "air"]
    best = sum((sd_head >= bi).to(torch.uint8) for bi in b)  # the layer holding each sub-sample's centre
    for i, name in enumerate(order):
        if name == "brain":
            continue
        tissue[best == i] = TISSUE_CODES[name]
    in_brain = best == 0
    brain_lab = torch.where(
        v > 0.5,
        TISSUE_CODES["ventricle"],
        torch.where(csf_f > 0.5, TISSUE_CODES["csf"], torch.where(gm_f >= wm_f, TISSUE_CODES["gm"], TISSUE_CODES["wm"])),
    ).to(torch.uint8)
    tissue = torch.where(in_brain, brain_lab, tissue)
    tissue[(best >= 5) & (best <= 7) & (outer > 0.5)] = TISSUE_CODES["soft_tissue"]
    tissue[petrous > 0.5] = TISSUE_CODES["bone"]
    for name, least in (("dura", 0.3), ("sinus", 0.5)):  # a sheet thinner than a voxel still marks it
        if name in dense:
            tissue[dense[name] > least] = TISSUE_CODES[name]
    tissue[calc > 0.5] = TISSUE_CODES["calcification"]

    # Lesions: occupancy per label code, HU blended into the tissue (noise comes later, as for tissue).
    occs: dict[int, torch.Tensor] = {}

    def put(code: int, occ: torch.Tensor, value: torch.Tensor | float) -> None:
        nonlocal hu
        occ = occ.clamp(0.0, 1.0)
        hu = hu + occ * (value - hu)
        occs[code] = torch.maximum(occs[code], occ) if code in occs else occ

    parench = (gm_f + wm_f) * frac_brain
    if kind in ("iph", "tumour"):
        c = torch.from_numpy(np.asarray(L["centre"], dtype=np.float32))
        loc = (q - c) @ torch.from_numpy(L["axes"].astype(np.float32))
        radii = torch.from_numpy(np.asarray(L["radii"], dtype=np.float32))
        rho = (loc / radii).norm(dim=-1)
        dirs = loc / loc.norm(dim=-1, keepdim=True).clamp_min(1e-3)
        rs = np.random.default_rng(L["shape_seed"])
        wobble = sum(
            float(rs.uniform(0.04, 0.1)) * torch.sin(dirs @ torch.from_numpy(rs.normal(size=3).astype(np.float32)) * 3.0 + float(rs.uniform(0, 6.3)))
            for _ in range(3)
        )
        mean_r = float(radii.mean())
        sdf = (rho * (1.0 - wobble) - 1.0) * mean_r
        core = _inside(sdf, 0.0, w) * intracranial
        if kind == "iph":
            oed = (_inside(sdf, L["oedema_mm"], w) - _inside(sdf, 0.0, w)).clamp(0, 1) * parench
            put(LESION_CODES["oedema"], oed, L["oedema_hu"])
            put(LESION_CODES["iph"], core, L["hu"])
        else:
            wm_share = ((wm_f / (gm_f + wm_f + 1e-3)) - 0.3).div(0.4).clamp(0, 1)
            oed = (_inside(sdf, L["oedema_mm"], w) - _inside(sdf, 0.0, w)).clamp(0, 1) * parench * wm_share
            put(LESION_CODES["oedema"], oed, L["oedema_hu"])
            put(LESION_CODES["tumour"], core, L["hu"])
            if L["necrosis"]:
                nec = _inside(sdf + 0.5 * mean_r, 0.0, w) * core
                put(LESION_CODES["tumour"], nec, L["necrosis_hu"])
    elif kind in ("sdh", "edh"):
        tc = torch.from_numpy(tpl.centre.astype(np.float32))
        n = torch.from_numpy(np.asarray(L["centre"] - tpl.centre, dtype=np.float32))
        n = n / n.norm()
        d = q - tc
        cosang = (d @ n) / d.norm(dim=-1).clamp_min(1e-3)
        theta = torch.arccos(cosang.clamp(-1.0, 1.0)) / L["half_angle"]
        if kind == "sdh":  # crescent: long, thin, tapering ends
            prof = (1.0 - theta**4).clamp_min(0.0) ** 0.5
        else:  # biconvex lens
            prof = (1.0 - theta**2).clamp_min(0.0) ** 0.5
        inner = rim - L["thickness"] * prof
        band = (_inside(sd_head, rim, w) - _inside(sd_head, inner, w)).clamp(0, 1) * (prof > 0)
        # stays on its side of the falx, above the tentorium
        side = ((q[..., 2] * L["side"] - 1.5) / w).clamp(0, 1)
        above = ((q[..., 0] - (tpl.midaxial_z - 38.0)) / 3.0).clamp(0, 1)
        put(LESION_CODES[kind], band * side * above, L["hu"])
        if "fracture" in L:
            _fracture(L["fracture"], q, sd_head, b, bone_frac, w, put)
    elif kind == "sah":
        c = torch.from_numpy(np.asarray(L["centre"], dtype=np.float32))
        region = _inside((q - c).norm(dim=-1), L["radius"], 5.0)
        csf_space = (csf_f * (1.0 - v) * frac_brain + frac_rim) * region
        put(LESION_CODES["sah"], csf_space, L["hu"])
    elif kind == "ivh":
        vpts = tpl.sites["ventricle"]
        vpts = vpts[(np.abs(vpts[:, 2]) > 8.0) & (np.abs(vpts[:, 0] - tpl.midaxial_z) < 15.0)]
        occ = torch.zeros_like(hu)
        for sgn in ((-1.0, 1.0) if L["side"] == 0 else (L["side"],)):
            hemi = (q_tissue[..., 2] * sgn > 0).float()
            if L.get("cast"):
                layer = hemi
            else:  # supine: blood settles in the most posterior (dependent) part, a horizontal level
                y_dep = float(vpts[np.sign(vpts[:, 2]) == sgn][:, 1].min())
                layer = _inside(q_tissue[..., 1], y_dep + L["level_mm"], w) * hemi
            occ = torch.maximum(occ, layer * v * frac_brain)
        put(LESION_CODES["ivh"], occ, L["hu"])
    elif kind == "infarct":
        a = torch.from_numpy(np.asarray(L["apex"], dtype=np.float32))
        ax = torch.from_numpy(np.asarray(L["axis"], dtype=np.float32))
        d = q - a
        along = d @ ax
        perp = (d - along[..., None] * ax).norm(dim=-1)
        in_cone = _inside(perp - along * math.tan(L["half_angle"]), 0.0, w) * _inside(-along, -8.0, w)
        occ = in_cone * (gm_f + wm_f) * frac_brain
        if L["acute"]:
            value: torch.Tensor | float = L["hu"]
        else:  # hyperacute: a few HU darker, grey-white contrast lost
            mean_t = 0.5 * (hu_t["gm"] + hu_t["wm"])
            value = mean_t + L["delta"]
        put(LESION_CODES["infarct"], occ, value)
    elif kind == "fracture":
        _fracture(L, q, sd_head, b, bone_frac, w, put)
    elif kind == "atrophy":
        occs[LESION_CODES["atrophy"]] = atrophy_occ * frac_brain  # HU already follow the atrophic anatomy

    # Beam hardening: dark interpetrous band and streaks (in the scanner's axial planes), cupping rim.
    art = torch.zeros_like(hu)
    if artefacts:
        pet = anat.petrous_centres(p["rotation"], p["scale"], p["shift"], tpl.centre)
        art = anat.beam_hardening(axes, pet, acq["beam_hardening_hu"], acq["streak_seed"])
        art = art + anat.cupping(sd_head, rim, intracranial, acq["cupping_hu"], acq["cupping_mm"])
        hu = hu + art

    # Scanner: kernel blur and edge enhancement in-plane (fine grid), slice averaging / down-sampling,
    # the rest of a thick slice profile along z, correlated noise with the kernel's grain.
    if blur:
        px = (fine_mm[1], fine_mm[2])
        hu_np = ndi.gaussian_filter(hu.numpy(), sigma=[0.0, acq["blur_mm"] / px[0], acq["blur_mm"] / px[1]], mode="nearest")
        if acq["sharpen"] > 0:
            low = ndi.gaussian_filter(hu_np, sigma=[0.0, 1.0 / px[0], 1.0 / px[1]], mode="nearest")
            hu_np = hu_np + acq["sharpen"] * (hu_np - low)
        hu = torch.from_numpy(hu_np.astype(np.float32))
    out = _block_mean(hu, f)
    extra_z = math.sqrt(max(thick**2 - spacing[0] ** 2, 0.0) / 12.0) / spacing[0]  # voxels
    if extra_z > 0.05 and shape[0] > 1:
        out = torch.from_numpy(ndi.gaussian_filter1d(out.numpy(), extra_z, axis=0, mode="nearest"))
    # Bone's share of each voxel's signal, through the same blur, voxel averaging and slice profile as the HU.
    bone_sig = (bone_frac + petrous).clamp(0.0, 1.0).numpy()
    if blur:
        bone_sig = ndi.gaussian_filter(bone_sig, sigma=[0.0, acq["blur_mm"] / fine_mm[1], acq["blur_mm"] / fine_mm[2]],
                                       mode="nearest")
    bone_pv = _block_mean(torch.from_numpy(np.ascontiguousarray(bone_sig, dtype=np.float32)), f).numpy()
    if extra_z > 0.05 and shape[0] > 1:
        bone_pv = ndi.gaussian_filter1d(bone_pv, extra_z, axis=0, mode="nearest")
    noise_sd = acq["noise_sd_5mm"] * math.sqrt(5.0 / thick)
    if noise:
        rng = np.random.default_rng(np.random.SeedSequence([int(p["seed"]), 0x5EED, *shape]))
        white = rng.standard_normal(size=out.shape).astype(np.float32)
        cz = max(0.0 if shape[0] > 1 and spacing[0] >= 2.0 else 0.6, extra_z)
        g1 = [max(0.6, acq["grain_mm"] / spacing[1]), max(0.6, acq["grain_mm"] / spacing[2])]
        # band-pass texture of filtered back-projection: a difference of Gaussians (module phantom_acquisition)
        nz = ndi.gaussian_filter(white, sigma=[cz, *g1], mode="wrap")
        nz -= 0.5 * ndi.gaussian_filter(white, sigma=[cz, 2.0 * g1[0], 2.0 * g1[1]], mode="wrap")
        nz /= nz.std() + 1e-8
        out = out + torch.from_numpy(nz) * noise_sd

    lesion = torch.zeros(shape, dtype=torch.uint8)
    for code in sorted(occs, key=lambda k: (k != LESION_CODES["oedema"], k)):  # cores drawn over oedema
        lesion[_block_mean(occs[code], f) > 0.5] = code
    centre_idx = tuple(slice(k // 2, None, k) for k in f)
    brain_occ = _block_mean(intracranial, f)
    for code in (LESION_CODES["sdh"], LESION_CODES["edh"]):
        if code in occs:
            brain_occ = torch.maximum(brain_occ, _block_mean(occs[code], f))
    mass_out = _block_mean(mass, f)
    mass_out = torch.where((lesion > 0) | (brain_occ < 0.5) | (mass_out < 0.5), torch.zeros_like(mass_out), mass_out)
    affine = zyx_affine(spacing)
    centre_vox = (np.asarray(shape) - 1) / 2.0
    # World (patient) coordinates: head centre at 0, RAS+; the grid centre sits at the offset.
    affine[:3, 3] = -affine[:3, :3] @ centre_vox + np.array([offset_mm[2], offset_mm[1], offset_mm[0] + z0])
    p_out = dict(p)
    p_out.update(supersample=f, noise_sd=noise_sd if noise else 0.0, slice_mm=thick, acq=acq)
    return Phantom(
        hu=out.numpy().astype(np.float32),
        spacing=spacing,  # type: ignore[arg-type]
        affine=affine,
        tissue=tissue[centre_idx].numpy().astype(np.uint8),
        lesion=lesion.numpy(),
        mass_effect=mass_out.numpy().astype(np.float32),
        brain=exclude_bone_partial_volume(brain_occ.numpy() > 0.5, bone_pv),
        kind=kind,
        params=p_out,
        artefact=_block_mean(art, f).numpy().astype(np.float32),
        bone_fraction=bone_pv.astype(np.float32),
    )


def _fracture(L: dict[str, Any], q: torch.Tensor, sd_head: torch.Tensor, b: list, bone_frac: torch.Tensor, w: float, put) -> None:
    """A sharp lucency through the skull (gap) plus a scalp haematoma over it."""
    tpl = load_template()
    c = torch.from_numpy(np.asarray(L["centre"], dtype=np.float32))
    radial = np.asarray(L["centre"] - tpl.centre, dtype=np.float64)
    radial /= np.linalg.norm(radial)
    nrm = np.asarray(L["plane_normal"], dtype=np.float64)
    nrm = nrm - (nrm @ radial) * radial  # the fracture plane contains the radial direction
    nrm /= np.linalg.norm(nrm) + 1e-9
    d = q - c
    dist_plane = (d @ torch.from_numpy(nrm.astype(np.float32))).abs()
    along = d.norm(dim=-1)
    gap = _inside(dist_plane, L["gap_mm"] / 2.0, min(w, 0.5)) * _inside(along, L["length_mm"] / 2.0, 2.0)
    put(LESION_CODES["fracture"], gap * bone_frac, L["gap_hu"])
    # Scalp haematoma: a lens on the outer table, replacing scalp (and air where it bulges).
    r = L["length_mm"] / 2.0 + 5.0
    prof = (1.0 - (along / r) ** 2).clamp_min(0.0)
    outer = b[4]
    hm = (_inside(sd_head, outer + L["haematoma_mm"] * prof, w) - _inside(sd_head, outer, w)).clamp(0, 1) * (prof > 0)
    put(LESION_CODES["fracture"], hm, L["haematoma_hu"])


def atlas_phantom(
    shape: tuple[int, int, int] = (115, 115, 115), spacing: tuple[float, float, float] = (2.0, 2.0, 2.0)
) -> Phantom:
    """The CT atlas: a noise-free phantom in the template's own pose and mid-range tissue HU.

    Registration of real scans aligns them to this volume (HU), as the seeds aligned to a CT template.
    Its affine is centred on the head (world 0 = head centre, RAS+). It has the sinuses, dura and skull
    base at mid-range values, no calcification and no beam-hardening artefact.
    """
    p = sample_patient(0, "healthy")
    p.update(
        rotation=np.eye(3),
        scale=np.ones(3),
        shift=np.zeros(3),
        warp_sd=0.0,
        skull_mm=6.5,
        scalp_mm=5.0,
        csf_rim_mm=1.5,
        vent_grow_mm=0.5,
        sulcal_mm=0.3,
        pineal=False,
        choroid=False,
    )
    p["hu"] = dict(p["hu"], wm=27.5, gm=36.0, csf=7.0, diploe=700.0, fat=-90.0, skin=42.0)
    p["acq"] = resolve_acquisition(p["acq"], kernel="standard", blur_mm=1.0)
    p["anatomy"] = dict(
        p["anatomy"], sinus_hu=52.0, dura_hu=50.0, falx_mm=1.5, tentorium_mm=1.5, base_mm=11.0, base_hu=1000.0,
        petrous_hu=1900.0, petrous_mm=10.0, soft_hu=40.0, soft_mm=25.0, calcs=[],
        sss_halfwidth_mm=(1.5, 4.2), sss_depth_mm=(3.2, 7.5), ts_mm={"right": 3.7, "left": 3.2}, straight_mm=2.5,
    )
    # offset so that the grid centre is the head centre (make_phantom centres on the mid-axial level)
    tpl = load_template()
    return make_phantom(0, shape=shape, spacing=spacing, noise=False, params=p, artefacts=False,
                        offset_mm=(tpl.centre[0] - tpl.midaxial_z, 0.0, 0.0))
