"""The ICBM152 2009c template that nilearn's wheel ships, turned into maps a CT phantom is sampled from.

Nothing is downloaded: the three files (T1, GM, WM; 197×233×189, 1 mm, RAS, uint8) are part of the
``nilearn`` package. From them we derive, once per machine (cached under ``~/.cache/ctad`` or
``$CTAD_CACHE``), signed-distance maps in mm on a padded 1 mm grid:

- ``sd_head``: distance to the *closed* brain mask (negative inside); skull, scalp and the subarachnoid
  CSF rim are layers of this distance, so they follow the brain's outline as in a real head;
- ``gm``, ``wm``: tissue probabilities in [0, 1]; what is neither (inside the closed mask) is CSF;
- ``sd_vent``: distance to the ventricles (deep CSF), grown or shrunk per patient (atrophy);
- ``sd_csf``: distance to all CSF, for sulcal widening;
- ``base``: skull-base weight in [0, 1]: 1 where the brain's outline faces down (the floors of the
  anterior, middle and posterior fossae lie below it), 0 on the vault; the phantom thickens the bone there
  and puts the soft tissue of face and neck below it instead of scalp and air.

Anatomical landmarks the template cannot give (venous sinuses, tentorium, petrous ridges, globus
pallidus) are fixed points in its space, :data:`LANDMARKS`, placed by inspecting the template's sagittal,
coronal and axial planes (MNI ICBM152 2009 coordinates); the tests check each against the template maps.

Arrays follow the workbook's (z, y, x) order; ``world = index + origin`` (1 mm, RAS+).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

_VERSION = "v5sb"
_PAD_SIDE = 14  # mm added left/right, front/back and top, for skull and scalp
_PAD_BOTTOM = 30  # mm added below the brainstem cut, filled by edge replication (no skull base)
CHANNELS = ("sd_head", "gm", "wm", "sd_vent", "sd_csf", "base")
#: World (z, y, x) mm of anatomical landmarks in template space (x > 0 is the right side; mirror x for the
#: left). The petrous ridge is the segment ``petrous_lateral`` → ``petrous_apex`` (the crest of the
#: pyramid lies along it, between temporal lobe and cerebellum); the straight sinus runs ``galen`` →
#: ``torcula``; the transverse sinus turns into the sigmoid sinus at ``sigmoid_top``, which descends to
#: ``jugular``.
LANDMARKS = {
    "globus_pallidus": (0.0, -4.0, 19.0),
    "petrous_lateral": (-36.0, -38.0, 50.0),
    "petrous_apex": (-36.0, -14.0, 17.0),
    "galen": (8.0, -50.0, 0.0),
    "torcula": (-15.0, -92.0, 0.0),
    "sigmoid_top": (-24.0, -46.0, 48.0),
    "jugular": (-46.0, -34.0, 38.0),
}
_LEVEL1: list[np.ndarray] = []  # the 2 mm maps, filled by load_template(0)


@dataclass(frozen=True)
class Template:
    """Template maps on a 1 mm grid.

    Attributes:
        maps: (C, Z, Y, X) float32, channels :data:`CHANNELS`.
        origin: world (z, y, x) mm of voxel (0, 0, 0).
        voxel_mm: grid spacing (1 mm at level 0, 2 mm at level 1).
        centre: world (z, y, x) of the brain's bounding-box centre (the phantom's head centre).
        midaxial_z: world z of the lateral ventricles' centroid (the seeds' mid-axial level).
        pineal: world (z, y, x) of the pineal region; atria: two world points in the ventricles' atria.
        sites: candidate world points per anatomical site for lesion placement.
    """

    maps: np.ndarray
    origin: np.ndarray
    voxel_mm: float
    centre: np.ndarray
    midaxial_z: float
    pineal: np.ndarray
    atria: np.ndarray
    sites: dict[str, np.ndarray]

    def channel(self, name: str) -> np.ndarray:
        return self.maps[CHANNELS.index(name)]


def _nilearn_file(kind: str) -> Path:
    import nilearn

    pattern = os.path.join(
        os.path.dirname(nilearn.__file__), "datasets", "data", f"mni_icbm152_{kind}_tal_nlin_sym_09a*.nii*"
    )
    hits = sorted(glob.glob(pattern))
    if not hits:
        raise FileNotFoundError(
            f"ICBM152 {kind} template not found in the nilearn package ({pattern}); "
            "reinstall nilearn (the wheel ships it, no download needed)"
        )
    return Path(hits[0])


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed Euclidean distance in voxels (= mm here): negative inside ``mask``, positive outside."""
    outside = ndi.distance_transform_edt(~mask)
    inside = ndi.distance_transform_edt(mask)
    return (outside - inside).astype(np.float32)


def _base_weight(sd_head: np.ndarray) -> np.ndarray:
    """Skull-base weight: how much the nearest brain outline lies *above* a point (its normal points down).

    The unit gradient of the (smoothed) distance map points away from the brain; where its z component is
    below −0.35 (the outline faces down by more than ~20°) the point lies under a fossa floor. A ramp to 1
    at −0.75, then a 3 mm Gaussian, keep the transition to the vault smooth.
    """
    g = np.gradient(ndi.gaussian_filter(sd_head.astype(np.float32), 2.0))
    norm = np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2) + 1e-6
    down = -g[0] / norm
    return ndi.gaussian_filter(np.clip((down - 0.35) / 0.4, 0.0, 1.0), 3.0).astype(np.float32)


def _build() -> dict[str, np.ndarray]:
    def load(kind: str) -> tuple[np.ndarray, np.ndarray]:
        img = nib.load(str(_nilearn_file(kind)))
        # (x, y, z) on disk -> (z, y, x)
        return np.transpose(np.asarray(img.dataobj, dtype=np.float32), (2, 1, 0)) / 255.0, img.affine

    t1, aff = load("t1")
    gm, _ = load("gm")
    wm, _ = load("wm")
    origin_xyz = aff[:3, 3]
    pads = ((_PAD_BOTTOM, _PAD_SIDE), (_PAD_SIDE, _PAD_SIDE), (_PAD_SIDE, _PAD_SIDE))
    brain = t1 > 0.02
    brain = ndi.binary_fill_holes(brain)
    # Pad: zeros on the sides and top, edge replication below (the brainstem continues into the "neck").
    def pad(a: np.ndarray) -> np.ndarray:
        a = np.pad(a, ((_PAD_BOTTOM, 0), (0, 0), (0, 0)), mode="edge")
        return np.pad(a, ((0, _PAD_SIDE), (_PAD_SIDE, _PAD_SIDE), (_PAD_SIDE, _PAD_SIDE)), mode="constant")

    brain, gm, wm, t1 = pad(brain), pad(gm), pad(wm), pad(t1)
    origin = np.array([origin_xyz[2] - pads[0][0], origin_xyz[1] - pads[1][0], origin_xyz[0] - pads[2][0]])
    # Closed brain mask: closing with a 6 mm ball (via distance maps), holes filled: the inner table's outline.
    d_out = ndi.distance_transform_edt(~brain)
    closed6 = ndi.binary_fill_holes((ndi.distance_transform_edt(d_out <= 6.0) > 6.0) | brain)
    # Behind and below the temporal lobes the notch between cerebrum and cerebellum is wider: there the
    # tentorium, the transverse sinuses and the petrous ridges lie, not bone; close it with a 12 mm ball.
    # (Ventricles, landmarks and lesion sites keep the 6 mm outline, so seeds place lesions as before.)
    zz, yy = np.meshgrid(np.arange(brain.shape[0]) + origin[0], np.arange(brain.shape[1]) + origin[1], indexing="ij")
    notch = ((yy < LANDMARKS["petrous_apex"][1]) & (zz > LANDMARKS["petrous_apex"][0] - 10.0)
             & (zz < LANDMARKS["galen"][0] + 2.0))[:, :, None]
    wide = ndi.distance_transform_edt(d_out <= 12.0) > 12.0
    closed = ndi.binary_fill_holes(closed6 | (wide & notch))
    sd_head = _signed_distance(closed)
    # Tissue probabilities; CSF is what is inside the closed mask and neither GM nor WM.
    tissue = np.clip(gm + wm, 0.0, 1.0)
    scale = np.where(gm + wm > 1.0, 1.0 / np.maximum(gm + wm, 1e-6), 1.0)
    gm, wm = (gm * scale).astype(np.float32), (wm * scale).astype(np.float32)
    csf = closed & ((1.0 - tissue) > 0.5)
    csf6 = closed6 & ((1.0 - tissue) > 0.5)
    sd6 = _signed_distance(closed6)
    # Ventricles: deep CSF (> 12 mm from the closed outline), largest components.
    depth = -sd6
    deep = csf6 & (depth > 12.0)
    lab, n = ndi.label(deep)
    sizes = ndi.sum(deep, lab, index=np.arange(1, n + 1)) if n else np.zeros(0)
    keep = np.flatnonzero(sizes >= max(300.0, 0.02 * sizes.max(initial=0))) + 1
    vent = np.isin(lab, keep)
    vent = ndi.binary_closing(vent, iterations=1)
    sd_vent = _signed_distance(vent)
    sd_csf = _signed_distance(csf)
    base = _base_weight(sd_head)
    maps = np.stack([sd_head, gm, wm, sd_vent, sd_csf, base]).astype(np.float32)

    zz, yy, xx = np.nonzero(closed6[_PAD_BOTTOM:])  # the real brain, not the replicated "neck"
    centre = np.array([zz.min() + zz.max() + 2 * _PAD_BOTTOM, yy.min() + yy.max(), xx.min() + xx.max()]) / 2.0 + origin
    vz, vy, vx = np.nonzero(vent)
    vw = np.stack([vz, vy, vx], 1) + origin
    lateral = vw[np.abs(vw[:, 2]) > 8.0]
    # Mid-axial level: the axial plane where the lateral ventricles are largest.
    zs, counts = np.unique(lateral[:, 0], return_counts=True)
    midaxial_z = float(zs[np.argmax(counts)]) if len(zs) else 15.0
    # Pineal: just behind the third ventricle (midline ventricle above the aqueduct), on the midline.
    third = vw[(np.abs(vw[:, 2]) < 3.0) & (vw[:, 0] > midaxial_z - 28.0) & (vw[:, 0] < midaxial_z - 8.0) & (vw[:, 1] > -45.0)]
    pineal = (
        np.array([np.median(third[:, 0]), third[:, 1].min() - 3.0, 0.0])
        if len(third)
        else np.array([midaxial_z - 12.0, -30.0, 0.0])
    )
    atria = []
    for side in (-1, 1):
        hemi = lateral[(np.sign(lateral[:, 2]) == side) & (lateral[:, 0] > midaxial_z - 12.0)]
        post = hemi[hemi[:, 1] < np.percentile(hemi[:, 1], 20)]
        atria.append(np.median(post, axis=0))
    # Candidate lesion sites (world points), subsampled.
    rng = np.random.default_rng(0)

    def pick(mask: np.ndarray, n: int = 4000) -> np.ndarray:
        pts = np.argwhere(mask)
        if len(pts) > n:
            pts = pts[rng.choice(len(pts), n, replace=False)]
        return (pts + origin).astype(np.float32)

    sites = {
        "deep_gm": pick((gm > 0.5) & (depth > 22.0) & ~vent),
        "lobar_wm": pick((wm > 0.6) & (depth > 8.0) & (depth < 25.0)),
        "deep_wm": pick((wm > 0.6) & (depth > 18.0)),
        "surface": pick(np.abs(sd6) <= 1.5),
        "sulcal_csf": pick(csf6 & ~vent & (depth < 20.0) & (depth > 2.0)),
        "ventricle": pick(vent),
    }
    return {
        "maps": maps,
        "origin": origin.astype(np.float64),
        "centre": centre.astype(np.float64),
        "midaxial_z": np.array(midaxial_z),
        "pineal": pineal.astype(np.float64),
        "atria": np.stack(atria).astype(np.float64),
        **{f"site_{k}": v for k, v in sites.items()},
    }


def _cache_path() -> Path:
    root = Path(os.environ.get("CTAD_CACHE", Path.home() / ".cache" / "ctad"))
    src = _nilearn_file("t1")
    key = hashlib.sha1(f"{_VERSION}|{src.stat().st_size}|{_PAD_SIDE}|{_PAD_BOTTOM}".encode()).hexdigest()[:10]
    return root / f"icbm152_ct_template_{_VERSION}_{key}.npz"


@functools.lru_cache(maxsize=2)
def load_template(level: int = 0) -> Template:
    """The template maps, built on first use (≈ 20 s) and cached on disk (loads in about a second).

    Args:
        level: 0 for the 1 mm grid; 1 for a 2 mm copy, smoothed before sub-sampling (anti-aliased), which
            coarse output grids sample from.
    """
    if level not in (0, 1):
        raise ValueError(f"template level must be 0 (1 mm) or 1 (2 mm), got {level}")
    if level == 1:
        fine = load_template(0)
        return Template(
            maps=_LEVEL1[0],
            origin=fine.origin,
            voxel_mm=2.0,
            centre=fine.centre,
            midaxial_z=fine.midaxial_z,
            pineal=fine.pineal,
            atria=fine.atria,
            sites=fine.sites,
        )
    path = _cache_path()
    data: dict[str, np.ndarray] | None = None
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            data["maps"] = data["maps"].astype(np.float32)
            data["maps_l1"] = data["maps_l1"].astype(np.float32)
        except (OSError, ValueError, KeyError):
            data = None  # a damaged cache is rebuilt
    if data is None:
        data = _build()
        coarse = ndi.gaussian_filter(data["maps"], sigma=(0, 0.85, 0.85, 0.85), mode="nearest")[:, ::2, ::2, ::2]
        data["maps_l1"] = np.ascontiguousarray(coarse, dtype=np.float32)
        from ctad_core.utils import save_npz

        try:
            save_npz(path, compress=False, **{k: (v.astype(np.float16) if k.startswith("maps") else v) for k, v in data.items()})
        except OSError:
            pass  # read-only home: keep it in memory only
    _LEVEL1[:] = [data["maps_l1"]]
    sites = {k[5:]: v for k, v in data.items() if k.startswith("site_")}
    return Template(
        maps=data["maps"],
        origin=data["origin"],
        voxel_mm=1.0,
        centre=data["centre"],
        midaxial_z=float(data["midaxial_z"]),
        pineal=data["pineal"],
        atria=data["atria"],
        sites=sites,
    )
