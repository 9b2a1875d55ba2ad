"""Bright normal anatomy, the skull base and beam-hardening artefacts of the head-CT phantom.

On a real unenhanced head CT much that is bright inside the skull is normal: the dural venous sinuses,
the falx and tentorium, physiological calcification, bone partial volume at the skull base and the
artefacts it throws. An intensity rule flags all of it; a model of healthy anatomy should not. This
module draws these per patient (:func:`sample_anatomy`, with the frequencies of the sources below) and
paints them into the phantom (:func:`paint_dense_anatomy`, :func:`paint_petrous`,
:func:`beam_hardening`, :func:`cupping`); :func:`ctad_core.data.phantom.make_phantom` calls them.
Geometry lives in template space (:data:`ctad_core.data.template.LANDMARKS`), so the patient's warp,
pose and (for the falx and basal ganglia) mass effect move it like the brain.

What is drawn, with its source:

- **venous sinuses** (superior sagittal, transverse, sigmoid, straight): unenhanced blood, drawn per patient
  from N(52, 5) HU clipped to 40–62. Normal sinuses measured 52.8 ± 6.7 HU in controls [S1], 52 HU
  (95 % CI 51–54) [S2], 31–68 HU in 244 negative examinations [S3]. Sizes: SSS triangular, growing from
  front to back; transverse sinuses 2–5 mm half-height, often asymmetric (our choice).
- **falx and tentorium**: thin dense dura. The unenhanced falx is seen in ~90 % of normal scans as a
  hyperdense pencil-thin line, most often posteriorly [D1]; superior sagittal sinus, straight sinus and
  falx are normally visible on unenhanced CT [D2]. No measured HU was found: we draw 40–60 HU
  ("slightly dense") for the sheet itself (1.0–2.0 mm thick), so partial volume makes it a faint line at
  coarse grids.
- **physiological calcification** (the pineal and choroid-plexus calcifications are in
  :mod:`ctad_core.data.phantom`; their frequencies now follow [C1], [C2]: pineal ~70 %, choroid ~65 %):
  basal ganglia (globus pallidus, bilateral and symmetric [C3]): *patchy* (coarse) in ~1 % of head CTs,
  0.6 % below and 2.4 % above 60 years [C4], ~1 % (0.3–1.5 %) [C3], 0.8 % [C1]; *punctate* (faint dots)
  in 17–21 % of a modern hospital population, rising with age [C5]. Falx calcification (≥ 100 HU) in
  34 % of adults, 95 % in the anterior and middle falx, strongly age-related [C6], 26.8 % [C2];
  tentorial calcification 6.8 % [C2]. Prevalence rises linearly with the patient's age (18–90 years,
  uniform) so that the mean matches these figures.
- **skull base**: the template has none (REFERENCE.md). Under the brain's floors (the template's
  ``base`` channel) the bone is thick (8–14 mm) and dense (700–1300 HU), with soft tissue of face and neck
  (30–50 HU) below instead of scalp and air; the petrous pyramids are dense (1700–2100 HU) bars between
  temporal lobe and cerebellum. Low slices of a volume thus have bone partial volume next to brain;
  mid-axial slices see little of it.
- **beam hardening**: dark bands between two dense objects, typically across the posterior fossa between
  the petrous bones (the interpetrous or Hounsfield-bar artefact), and cupping, a falsely bright rim at
  the periphery of an object [B1]; the interpetrous artefact varies little between scanners and with
  slice thickness [B2], [B3]. The band depth (8–30 HU) and the rim (3–10 HU over 2–4 mm under the inner
  table) are our choice (no measured values found); their strength is part of the acquisition
  (:mod:`ctad_core.data.phantom_acquisition`).

Sources (public pages found through the project's search; numbers as stated there):

- [S1] Unenhanced CT in acute cerebral venous sinus thrombosis, attenuation and H:H ratio (control group
  52.8 ± 6.7 HU), https://pmc.ncbi.nlm.nih.gov/articles/PMC8051442
- [S2] Quantitative non-contrast measurements improve diagnosing dural venous sinus thrombosis.
  Neuroradiology 2016;58(7):657–63 (non-thrombosed 52 HU), https://pubmed.ncbi.nlm.nih.gov/27040817/
- [S3] Diagnostic sensitivity of unenhanced CT for cerebral venous thrombosis (negatives 31–68 HU),
  https://thieme-connect.de/products/ejournals/html/10.1055/s-0043-1761184
- [D1] Zimmerman RD et al. Falx and interhemispheric fissure on axial CT: I. Normal anatomy. AJR 1982,
  https://www.scholars.northwestern.edu/en/publications/falx-and-interhemispheric-fissure-on-axial-ct-i-normal-anatomy-2
- [D2] Osborn AG et al. The false falx sign. Radiology 1980;134(2):421–5,
  https://pubmed.ncbi.nlm.nih.gov/7352222/
- [C1] Intracranial physiological calcifications in adults on CT in Tabriz, Iran (1569 adults; pineal 71 %,
  choroid 66.2 %, basal ganglia 0.8 %), PMID 17594669
- [C2] Ghorbanlou M et al. Frequency, shape and estimated volume of intracranial physiologic
  calcification. Anat Cell Biol 2022;55(1):63–71 (pineal 75 %, choroid ~65 %, falx 26.8 %, tentorium
  6.8 %, basal ganglia 0.9 %), https://acbjournal.org/journal/view.html?volume=55&number=1&spage=63
- [C3] Normal intracranial calcifications, Radiopaedia,
  https://radiopaedia.org/articles/normal-intracranial-calcifications
- [C4] Radaideh AM et al. Prevalence of incidental basal ganglia calcification on routine brain CT.
  RMJ 2012;37(1):6–8 (1.25 %; 0.6 % young, 2.4 % above 60), https://www.bibliomed.org/?mno=11738
- [C5] Yamada M et al. High frequency of calcification in basal ganglia on brain CT images in Japanese
  older adults. Geriatr Gerontol Int 2013;13(3):706–10 (punctate 17.2 % and 20.6 %; patchy 1.3 % and 1.9 %)
- [C6] Schedler A, Deutschmann H. Falx cerebri calcifications and ossifications in CT scans. Eur J
  Osteopath Res 2019;1(1):1–7 (34 %; ≥ 100 HU; 95 % anterior/medial), https://doi.org/10.35740/EJOR.2019.1.1.1
- [B1] Beam hardening, https://pacs.de/term/beam-hardening: streaks as dark bands between two dense
  objects, e.g. in the posterior fossa; cupping as a falsely bright periphery
- [B2] Artifacts in computed tomography of the posterior fossa: a comparative phantom study. J Comput
  Assist Tomogr 1986;10(4):560–6
- [B3] Cranial CT artifacts and gantry angulation. J Comput Assist Tomogr 1991;15(3):381–6
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi

from ctad_core.data.template import LANDMARKS, Template, load_template

#: HU ranges of the structures this module draws (tests check the rendered values against them).
ANATOMY_HU = {
    "sinus": (40.0, 62.0),
    "dura": (40.0, 60.0),
    "calc_bg": (120.0, 500.0),
    "calc_dura": (150.0, 800.0),
    "petrous": (1700.0, 2100.0),
    "base_bone": (700.0, 1300.0),
    "soft_tissue": (30.0, 50.0),
}
#: Template z (mm) below which the outside of the skull is neck soft tissue rather than scalp and air.
NECK_Z = -55.0
_BOX = (math.pi / 6.0) ** (1.0 / 3.0)  # half-size of the box with an ellipsoid's volume, per unit radius


def prevalence(age: float) -> dict[str, float]:
    """Probability of each physiological calcification at ``age`` (years), per the module sources.

    Linear in age so that the mean over ages 18–90 matches the published overall frequency.
    """
    t = float(np.clip((age - 18.0) / 72.0, 0.0, 1.0))
    return {
        "bg_patchy": 0.006 if age < 40 else (0.012 if age < 60 else 0.024),  # [C4]
        "bg_punctate": 0.02 + 0.30 * t,  # mean 0.17 [C5]
        "falx": 0.05 + 0.55 * t,  # mean 0.325 [C6]
        "tentorium": 0.02 + 0.10 * t,  # mean 0.07 [C2]
    }


def _lm(name: str, side: float = 1.0) -> np.ndarray:
    p = np.asarray(LANDMARKS[name], dtype=np.float64).copy()
    p[2] *= side
    return p


def _inner_table_along(tpl: Template, origin: np.ndarray, direction: np.ndarray) -> float:
    """Distance (mm) from ``origin`` to the closed brain outline along ``direction`` (template 1 mm map)."""
    steps = np.arange(0.0, 120.0, 1.0)
    pts = origin[None] + steps[:, None] * direction[None]
    idx = ((pts - tpl.origin) / tpl.voxel_mm).T
    sd = ndi.map_coordinates(tpl.channel("sd_head"), idx, order=1, mode="nearest")
    out = np.flatnonzero(sd > 0.0)
    return float(steps[out[0]]) if len(out) else float(steps[-1])


def sample_anatomy(rng: np.random.Generator, age: float, tpl: Template) -> dict[str, Any]:
    """Draw one patient's dense normal anatomy and skull base (see the module docstring).

    Args:
        rng: the patient's anatomy stream.
        age: years; sets the calcification probabilities (:func:`prevalence`).
        tpl: the 1 mm template (falx plaques are placed on its inner table).

    Returns:
        Plain values: sinus, dura and skull-base HU and sizes, and ``calcs``, a list of
        ``{site, centre, radii, hu}`` ellipsoids (template mm) with ``site`` in ``basal_ganglia``,
        ``falx``, ``tentorium``; ``bg_calc`` is ``"none"``, ``"punctate"`` or ``"patchy"``.
    """
    pr = prevalence(age)
    a: dict[str, Any] = {
        "sinus_hu": float(np.clip(rng.normal(52.0, 5.0), *ANATOMY_HU["sinus"])),
        "sss_halfwidth_mm": (float(rng.uniform(1.0, 2.0)), float(rng.uniform(3.5, 5.0))),  # front, back
        "sss_depth_mm": (float(rng.uniform(2.5, 4.0)), float(rng.uniform(6.0, 9.0))),
        "ts_mm": {"right": float(rng.uniform(2.5, 5.0)), "left": float(rng.uniform(2.0, 4.5))},
        "straight_mm": float(rng.uniform(2.0, 3.0)),
        "dura_hu": float(rng.uniform(*ANATOMY_HU["dura"])),
        "falx_mm": float(rng.uniform(1.0, 2.0)),
        "tentorium_mm": float(rng.uniform(1.0, 2.0)),
        "base_mm": float(rng.uniform(8.0, 14.0)),
        "base_hu": float(rng.uniform(*ANATOMY_HU["base_bone"])),
        "petrous_hu": float(rng.uniform(*ANATOMY_HU["petrous"])),
        "petrous_mm": float(rng.uniform(9.0, 11.0)),
        "soft_hu": float(rng.uniform(*ANATOMY_HU["soft_tissue"])),
        "soft_mm": float(rng.uniform(20.0, 30.0)),
    }
    calcs: list[dict[str, Any]] = []
    u_patchy, u_punct, u_falx, u_tent = rng.uniform(size=4)
    gp = _lm("globus_pallidus")
    if u_patchy < pr["bg_patchy"]:
        a["bg_calc"] = "patchy"  # coarse, conglomerate, symmetric
        r = rng.uniform(3.0, 5.5, size=3)
        hu = float(rng.uniform(200.0, 500.0))
        off = rng.uniform(-2.0, 2.0, size=3)
        for side in (1.0, -1.0):
            c = gp + off * np.array([1.0, 1.0, side])
            c[2] = side * abs(c[2])
            calcs.append({"site": "basal_ganglia", "centre": c, "radii": r, "hu": hu})
    elif u_punct < pr["bg_punctate"]:
        a["bg_calc"] = "punctate"  # faint dots
        for side in (1.0, -1.0):
            for _ in range(int(rng.integers(1, 3))):
                c = gp + rng.uniform(-3.0, 3.0, size=3)
                c[2] = side * abs(c[2])
                calcs.append(
                    {
                        "site": "basal_ganglia",
                        "centre": c,
                        "radii": rng.uniform(1.0, 1.8, size=3),
                        "hu": float(rng.uniform(120.0, 300.0)),
                    }
                )
    else:
        a["bg_calc"] = "none"
    a["falx_calc"] = bool(u_falx < pr["falx"])
    if a["falx_calc"]:  # 1-3 plaques in the anterior and middle falx, near the inner table
        centre = np.asarray(tpl.centre, dtype=np.float64)
        for _ in range(int(rng.integers(1, 4))):
            phi = math.radians(rng.uniform(0.0, 60.0))  # from vertical toward the front
            d = np.array([math.cos(phi), math.sin(phi), 0.0])
            reach = _inner_table_along(tpl, centre, d) - rng.uniform(3.0, 20.0)
            calcs.append(
                {
                    "site": "falx",
                    "centre": centre + reach * d,
                    "radii": np.array([rng.uniform(2.0, 7.0), rng.uniform(2.0, 7.0), rng.uniform(0.6, 1.2)]),
                    "hu": float(rng.uniform(*ANATOMY_HU["calc_dura"])),
                }
            )
    a["tentorium_calc"] = bool(u_tent < pr["tentorium"])
    if a["tentorium_calc"]:
        side = float(rng.choice([-1.0, 1.0]))
        y, x = rng.uniform(-85.0, -60.0), side * rng.uniform(15.0, 40.0)
        z = float(tentorium_z(torch.tensor([y]), torch.tensor([x]))[0])
        calcs.append(
            {
                "site": "tentorium",
                "centre": np.array([z, y, x]),
                "radii": np.array([rng.uniform(0.6, 1.2), rng.uniform(2.0, 5.0), rng.uniform(2.0, 5.0)]),
                "hu": float(rng.uniform(*ANATOMY_HU["calc_dura"])),
            }
        )
    a["calcs"] = calcs
    return a


# ------------------------------------------------------------------------------------------ geometry
def partial_inside(d: torch.Tensor, b: float | torch.Tensor, w: float) -> torch.Tensor:
    """Partial-volume fraction of the region ``d < b`` for a voxel of width ``w`` (linear ramp)."""
    return (0.5 + (b - d) / w).clamp(0.0, 1.0)


_inside = partial_inside


def _slab(d: torch.Tensor, thickness: float, w: float) -> torch.Tensor:
    """Fraction of a voxel of width ``w`` centred at distance ``|d|`` from the mid-plane of a slab."""
    d = d.abs()
    return (
        torch.minimum(d + w / 2, torch.tensor(thickness / 2))
        - torch.maximum(d - w / 2, torch.tensor(-thickness / 2))
    ).clamp_min(0.0) / w


def _segment_distance(q: torch.Tensor, a: np.ndarray, b: np.ndarray) -> torch.Tensor:
    """Distance (mm) from points (..., 3) to the segment a–b."""
    a_t = torch.from_numpy(a.astype(np.float32))
    ab = torch.from_numpy((b - a).astype(np.float32))
    t = (((q - a_t) @ ab) / float(ab @ ab)).clamp(0.0, 1.0)
    return (q - a_t - t[..., None] * ab).norm(dim=-1)


def ellipsoid_occupancy(q: torch.Tensor, centre: np.ndarray, radii: np.ndarray, fine_mm) -> torch.Tensor:
    """Occupancy of a small axis-aligned ellipsoid, as the box of equal volume (exact mass for sub-voxel sizes)."""
    occ = torch.ones(q.shape[:-1])
    for i in range(3):
        occ = occ * _slab(q[..., i] - float(centre[i]), 2.0 * _BOX * float(radii[i]), float(fine_mm[i]))
    return occ


def tentorium_z(qy: torch.Tensor, qx: torch.Tensor) -> torch.Tensor:
    """Template z (mm) of the tentorium at (y, x): a tent from the straight sinus down to its attachments.

    Its ridge is the straight sinus (``galen`` → ``torcula``); laterally it falls to the transverse sinus
    on the occipital bone behind and to the petrous crest in front.
    """
    g, t = _lm("galen"), _lm("torcula")
    crest = _lm("petrous_lateral")[0] + 6.0
    slope = (g[0] - t[0]) / (g[1] - t[1])
    apex = g[0] + (qy.clamp(float(t[1]), float(g[1])) - g[1]) * slope
    lat_slope = (crest - (t[0] - 2.0)) / (-30.0 - t[1])
    lateral = (t[0] - 2.0) + (qy.clamp(float(t[1]), -30.0) - t[1]) * lat_slope
    return lateral + (apex - lateral) * (1.0 - torch.tanh(qx.abs() / 20.0))


@functools.lru_cache(maxsize=1)
def transverse_sinus_path() -> np.ndarray:
    """(2, 13, 3) template (z, y, x) mm of the right and left transverse sinuses, torcula to sigmoid.

    Each runs around the occipital bone at the tentorium's height: for 13 directions from straight back
    (the torcula) to the side (``sigmoid_top``), the point 2 mm inside the *outermost* crossing of the
    closed brain outline along a horizontal ray from the posterior fossa's axis (the outermost, so that
    the notch between occipital lobe and cerebellum does not pull it inward).
    """
    tpl = load_template()
    sd = tpl.channel("sd_head")
    axis_y = _lm("petrous_lateral")[1] - 10.0
    top = _lm("sigmoid_top")
    end = math.atan2(top[2], -(top[1] - axis_y))
    steps = np.arange(0.0, 110.0, 0.5)
    out = []
    for side in (1.0, -1.0):
        pts = []
        for th in np.linspace(0.0, end, 13):
            d = np.array([-math.cos(th), side * math.sin(th)])
            z = _lm("torcula")[0]
            for _ in range(2):  # the tentorium's height where the ray meets the bone
                yx = np.array([axis_y, 0.0])[None] + steps[:, None] * d[None]
                idx = (np.c_[np.full(len(steps), z), yx] - tpl.origin) / tpl.voxel_mm
                inside = np.flatnonzero(ndi.map_coordinates(sd, idx.T, order=1, mode="nearest") < 0.0)
                reach = steps[inside[-1]] if len(inside) else 60.0
                y, x = axis_y + (reach - 2.0) * d[0], (reach - 2.0) * d[1]
                z = float(tentorium_z(torch.tensor([y]), torch.tensor([x]))[0])
            pts.append((z, y, x))
        out.append(pts)
    return np.asarray(out, dtype=np.float64)


def _polyline_distance(q: torch.Tensor, pts: np.ndarray) -> torch.Tensor:
    """Distance (mm) from points (..., 3) to a polyline (K, 3), all segments at once."""
    a = torch.from_numpy(pts[:-1].astype(np.float32))  # (S, 3)
    ab = torch.from_numpy((pts[1:] - pts[:-1]).astype(np.float32))
    flat = q.reshape(-1, 1, 3)
    t = (((flat - a) * ab).sum(-1) / (ab * ab).sum(-1)).clamp(0.0, 1.0)  # (N, S)
    d = (flat - a - t[..., None] * ab).norm(dim=-1).amin(dim=1)
    return d.reshape(q.shape[:-1])


def _tentorium_footprint(qy: torch.Tensor, qx: torch.Tensor, w: float) -> torch.Tensor:
    """Where the tentorium exists: behind the incisura (around the midbrain) and the petrous ridges."""
    ax = qx.abs()
    g, lat, apex = _lm("galen"), _lm("petrous_lateral"), _lm("petrous_apex")
    y_edge = g[1] + (apex[1] - g[1]) * (ax / apex[2]).clamp(0.0, 1.0) ** 2
    s = (lat[1] - apex[1]) / (lat[2] - apex[2])
    y_ridge = apex[1] + (ax.clamp(float(apex[2]), float(lat[2])) - apex[2]) * s
    return _inside(qy, torch.minimum(y_edge, y_ridge), w)


def falx_free_edge_z(qy: torch.Tensor) -> torch.Tensor:
    """Template z (mm) of the falx's lower free edge (above the corpus callosum; the straight sinus behind)."""
    g, t = _lm("galen"), _lm("torcula")
    ys = np.array([t[1], g[1], -40.0, 0.0, 30.0, 50.0, 70.0])
    zs = np.array([t[0], g[0], 25.0, 35.0, 28.0, 0.0, -20.0])
    return torch.from_numpy(np.interp(qy.numpy(), ys, zs).astype(np.float32))


# ----------------------------------------------------------------------------------------- painting
def box_where(q: torch.Tensor, lo, hi, step: int = 2) -> tuple[slice, ...] | None:
    """Index box (z, y, x slices) holding every grid point whose template coordinates lie in ``[lo, hi]``.

    Tested on every ``step``-th point along each axis against the bounds widened by half a lattice
    cell's diagonal (so that a lattice point lies inside whenever any grid point does), then grown by
    ``step`` points on every side; None when no point is inside. The box may hold more than the region.

    Args:
        q: (Z, Y, X, 3) template mm (a smooth function of the grid index).
        lo, hi: (3,) bounds per axis (±inf for none).
        step: lattice step (grid points).
    """
    rows = (q[:, 0, 0], q[0, :, 0], q[0, 0, :])  # the largest gap between neighbours along each axis
    pitch = max(float((r[1:] - r[:-1]).norm(dim=-1).max()) if len(r) > 1 else 0.0 for r in rows)
    margin = 0.5 * math.sqrt(3.0) * step * pitch
    lo = np.asarray(lo, dtype=np.float64) - margin
    hi = np.asarray(hi, dtype=np.float64) + margin
    qs = q[::step, ::step, ::step]
    mask = torch.ones(qs.shape[:-1], dtype=torch.bool)
    for i in range(3):
        if np.isfinite(lo[i]):
            mask &= qs[..., i] > float(lo[i])
        if np.isfinite(hi[i]):
            mask &= qs[..., i] < float(hi[i])
    if not bool(mask.any()):
        return None
    out = []
    for i in range(3):
        hit = torch.nonzero(mask.any(dim=[j for j in range(3) if j != i])).flatten()
        out.append(slice(max(0, (int(hit[0]) - 1) * step), min(q.shape[i], (int(hit[-1]) + 2) * step)))
    return tuple(out)


_INF = float("inf")


class _Painter:
    """Blends occupancies into ``hu`` in place, box by box, and keeps each label's occupancy."""

    def __init__(self, hu: torch.Tensor) -> None:
        self.hu = hu
        self.occ: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, box: tuple[slice, ...], o: torch.Tensor, value: float) -> None:
        o = o.clamp(0.0, 1.0)
        h = self.hu[box]
        self.hu[box] = h + o * (value - h)
        full = self.occ.setdefault(name, torch.zeros_like(self.hu))
        full[box] = torch.maximum(full[box], o)


def paint_dense_anatomy(
    hu: torch.Tensor,
    q: torch.Tensor,
    q_tissue: torch.Tensor,
    sd_head: torch.Tensor,
    rim: float,
    intracranial: torch.Tensor,
    white: torch.Tensor,
    anatomy: dict[str, Any],
    fine_mm,
    w: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Blend dura (falx, tentorium), venous sinuses and calcifications into ``hu`` (in place).

    Each structure is computed only inside the index box where it can lie (a cheap test on the template
    coordinates), which keeps the phantom build fast.

    Args:
        hu: (Z, Y, X) HU on the fine grid (tissue layers already in); changed in place and returned.
        q: (Z, Y, X, 3) template mm of each point (skull-bound structures follow it).
        q_tissue: the same after mass effect (falx and basal-ganglia calcification follow it).
        sd_head: (Z, Y, X) distance to the closed brain outline (mm, negative inside).
        rim: subarachnoid CSF rim (mm); the inner table is at ``sd_head == rim``.
        intracranial: (Z, Y, X) fraction inside the inner table.
        white: (Z, Y, X) white-matter fraction (the falx stops at the corpus callosum).
        anatomy: from :func:`sample_anatomy`.
        fine_mm: (z, y, x) fine-grid spacing (mm); ``w`` the mean (partial-volume ramp width).

    Returns:
        ``hu`` and occupancies ``{"dura", "sinus", "calcification"}`` (those present) for the tissue labels.
    """
    A = anatomy
    paint = _Painter(hu)
    sinus = A["sinus_hu"]
    # Midline: falx (a sheet above its free edge, not through the corpus callosum) and the superior
    # sagittal sinus (a triangle under the vault, larger behind).
    box = box_where(q_tissue, (-_INF, -_INF, -8.0), (_INF, _INF, 8.0))
    if box is not None:
        qb, qt, ic = q[box], q_tissue[box], intracranial[box]
        falx = _slab(qt[..., 2], A["falx_mm"], w) * _inside(falx_free_edge_z(qt[..., 1]) - qt[..., 0], 0.0, w)
        paint("dura", box, falx * ic * (1.0 - white[box]), A["dura_hu"])
        qz, qy, qx = qb.unbind(-1)
        depth = rim - sd_head[box]
        t = ((70.0 - qy) / 160.0).clamp(0.0, 1.0)
        half = A["sss_halfwidth_mm"][0] + (A["sss_halfwidth_mm"][1] - A["sss_halfwidth_mm"][0]) * t
        h = A["sss_depth_mm"][0] + (A["sss_depth_mm"][1] - A["sss_depth_mm"][0]) * t
        sss = _inside(qx.abs(), half * (1.0 - depth / h).clamp_min(0.0), w) * _inside(depth, h, w)
        paint("sinus", box, sss * _inside(_lm("torcula")[0] + 1.0 - qz, 0.0, w) * ic, sinus)
    # Posterior fossa: tentorium, transverse and sigmoid sinuses (along its attachment on the occipital
    # bone, then down to the jugular foramen), straight sinus (along its ridge).
    box = box_where(q, (_lm("petrous_apex")[0] - 12.0, -_INF, -_INF), (_lm("galen")[0] + 4.0, -5.0, _INF))
    if box is not None:
        qb, ic = q[box], intracranial[box]
        qz, qy, qx = qb.unbind(-1)
        tz = tentorium_z(qy, qx)
        tent = _slab(qz - tz, A["tentorium_mm"], w) * _tentorium_footprint(qy, qx, w)
        paint("dura", box, tent * ic, A["dura_hu"])
        for k, (name, side) in enumerate((("right", 1.0), ("left", -1.0))):
            r = A["ts_mm"][name]
            path = np.vstack([transverse_sinus_path()[k], _lm("jugular", side)])  # transverse, then sigmoid
            sub = box_where(qb, path.min(0) - r - 2.0 * w, path.max(0) + r + 2.0 * w)
            if sub is not None:  # the path runs 2 mm inside the outline: measure only near the outline
                inner = tuple(slice(b.start + s.start, b.start + s.stop) for b, s in zip(box, sub))
                near = (sd_head[inner] > -(r + 2.0 + 2.0 * w)) & (intracranial[inner] > 0)
                ts = torch.zeros(near.shape)
                ts[near] = _inside(_polyline_distance(q[inner][near], path), r, w)
                paint("sinus", inner, ts * intracranial[inner], sinus)
        ss = _inside(_segment_distance(qb, _lm("galen"), _lm("torcula")), A["straight_mm"], w)
        paint("sinus", box, ss * ic, sinus)
    # Calcifications (basal ganglia and falx move with the brain; the tentorium with the skull).
    for c in A["calcs"]:
        pts = q if c["site"] == "tentorium" else q_tissue
        reach = np.asarray(c["radii"]) + 2.0 * np.asarray(fine_mm) + 1.0
        box = box_where(pts, np.asarray(c["centre"]) - reach, np.asarray(c["centre"]) + reach)
        if box is not None:
            o = ellipsoid_occupancy(pts[box], c["centre"], c["radii"], fine_mm) * intracranial[box]
            paint("calcification", box, o, c["hu"])
    return paint.hu, paint.occ


def carve_petrous(
    sd_head: torch.Tensor, q: torch.Tensor, anatomy: dict[str, Any]
) -> tuple[tuple[slice, ...] | None, torch.Tensor]:
    """Take the petrous pyramids out of the cranial cavity (in place), so the layers wrap around them.

    The template's temporal lobes and cerebellum nearly touch where the petrous ridge should part them;
    the pyramid (a capsule of radius ``petrous_mm`` along the ridge) is subtracted from the closed brain
    outline: ``sd_head = max(sd_head, petrous_mm - distance)``. The CSF rim, inner table and base bone
    then follow its surface, and :func:`paint_petrous` fills its core with dense bone.

    Returns:
        The index box of the pyramids (None if the grid misses them) and the distance (mm) of each of its
        points to the nearer ridge.
    """
    lat, apex, r = _lm("petrous_lateral"), _lm("petrous_apex"), anatomy["petrous_mm"]
    box = box_where(
        q, (apex[0] - r - 6.0, lat[1] - r - 6.0, -_INF), (apex[0] + r + 6.0, apex[1] + r + 6.0, _INF)
    )
    if box is None:
        return None, torch.zeros(0)
    qb = q[box]
    d = torch.minimum(
        *(_segment_distance(qb, _lm("petrous_lateral", s), _lm("petrous_apex", s)) for s in (1.0, -1.0))
    )
    sd_head[box] = torch.maximum(sd_head[box], r - d)
    return box, d


def paint_petrous(
    hu: torch.Tensor,
    box: tuple[slice, ...] | None,
    d: torch.Tensor,
    rim: float,
    anatomy: dict[str, Any],
    w: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the pyramids' cores (inside the CSF rim that :func:`carve_petrous` left) with dense bone, in place.

    Returns:
        ``hu`` and the petrous bone occupancy (Z, Y, X).
    """
    paint = _Painter(hu)
    if box is not None:
        paint("petrous", box, _inside(d, anatomy["petrous_mm"] - rim, w), anatomy["petrous_hu"])
    return paint.hu, paint.occ.get("petrous", torch.zeros_like(hu))


def petrous_centres(
    rotation: np.ndarray, scale: np.ndarray, shift: np.ndarray, centre: np.ndarray
) -> np.ndarray:
    """(2, 3) patient (z, y, x) mm of the right and left petrous pyramids' mid-points (affine only)."""
    m = rotation @ np.diag(scale)
    pts = [(_lm("petrous_lateral", s) + _lm("petrous_apex", s)) / 2.0 for s in (1.0, -1.0)]
    return np.stack([m @ (p - centre) + shift for p in pts])


def beam_hardening(axes: list[np.ndarray], petrous: np.ndarray, depth_hu: float, seed: int) -> torch.Tensor:
    """Dark interpetrous band and streaks on the fine grid (HU offsets, negative).

    Streaks lie in the scanner's axial planes: the band joins the two petrous pyramids in each plane that
    cuts both (a Gaussian of each pyramid's height, SD 6 mm), 3–6 mm wide; two to four thinner streaks
    fan out from each pyramid, at half the depth or less.

    Args:
        axes: the fine grid's patient z, y, x positions (mm), 1D each.
        petrous: (2, 3) from :func:`petrous_centres`.
        depth_hu: the band's depth (HU, > 0 darkens).
        seed: the streaks' directions and widths.

    Returns:
        (Z, Y, X) float32 HU offsets.
    """
    rng = np.random.default_rng(seed)
    z = torch.from_numpy(np.asarray(axes[0], dtype=np.float32))
    zw = [torch.exp(-0.5 * ((z - float(p[0])) / 6.0) ** 2) for p in petrous]
    out = torch.zeros((len(axes[0]), len(axes[1]), len(axes[2])))
    planes = torch.nonzero(torch.maximum(zw[0], zw[1]) > 1e-3).flatten()
    if not len(planes):
        return out
    zs = slice(int(planes[0]), int(planes[-1]) + 1)
    yy, xx = torch.meshgrid(
        torch.from_numpy(np.asarray(axes[1], np.float32)),
        torch.from_numpy(np.asarray(axes[2], np.float32)),
        indexing="ij",
    )
    p2 = [torch.tensor(p[1:], dtype=torch.float32) for p in petrous]

    def dist(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ab = b - a
        t = (((yy - a[0]) * ab[0] + (xx - a[1]) * ab[1]) / float(ab @ ab + 1e-6)).clamp(0.0, 1.0)
        return torch.sqrt((yy - a[0] - t * ab[0]) ** 2 + (xx - a[1] - t * ab[1]) ** 2), t

    d, _ = dist(p2[0], p2[1])
    width = float(rng.uniform(3.0, 6.0))
    band = -depth_hu * torch.exp(-((d / width) ** 2))
    rays = [torch.zeros_like(band), torch.zeros_like(band)]
    for i in range(2):
        for _ in range(int(rng.integers(2, 5))):
            ang = rng.uniform(0.0, 2.0 * math.pi)
            length = rng.uniform(40.0, 80.0)
            end = p2[i] + length * torch.tensor([math.sin(ang), math.cos(ang)], dtype=torch.float32)
            dr, tr = dist(p2[i], end)
            amp = depth_hu * rng.uniform(0.15, 0.5)
            rays[i] = rays[i] - amp * torch.exp(-((dr / rng.uniform(0.8, 1.5)) ** 2)) * (1.0 - tr)
    out[zs] = (
        (zw[0] * zw[1])[zs, None, None] * band[None]
        + zw[0][zs, None, None] * rays[0][None]
        + zw[1][zs, None, None] * rays[1][None]
    )
    return out


def cupping(
    sd_head: torch.Tensor, rim: float, intracranial: torch.Tensor, rim_hu: float, decay_mm: float
) -> torch.Tensor:
    """Bright rim under the inner table: ``rim_hu · exp(−depth / decay_mm)`` inside the cranial cavity."""
    depth = (rim - sd_head).clamp_min(0.0)
    return rim_hu * torch.exp(-depth / decay_mm) * intracranial
