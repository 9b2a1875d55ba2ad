"""Checks a learner reads in notebook 01: the phantom's tissue HU against the reference, and which 2D slices
show the lesions best.

The tissue check measures each labelled tissue where the measurement means something. A phantom's label map
names the tissue at each voxel's *centre*, while its HU is the average over the voxel (and, for thick
slices, over several millimetres along z). A layer thinner than the voxel — the 1 mm skin-galea, the CSF
rim, the skull's tables — is then read as a blend of its neighbours (partial volume), and its median lies
far outside the tissue's own range. So the check reads only a tissue's *core* (voxels whose whole in-plane
neighbourhood carries the same label, :func:`scipy.ndimage.binary_erosion`) and says, in a ``why`` column,
what a value outside the reference range means on the grid it was measured on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ctad_core.data import phantom as ph

#: Tolerance (HU) of the range comparison: float32 rounding of a noise-free phantom.
TOLERANCE_HU = 0.5


def reference_range(tissue: str) -> tuple[float, float]:
    """The reference HU range of a label-map tissue (REFERENCE.md via :data:`ph.HU_RANGES`).

    Raises:
        KeyError: for a tissue with no reference range.
    """
    if tissue not in ph.HU_RANGES:
        raise KeyError(f"no reference HU range for tissue {tissue!r} (known: {sorted(ph.HU_RANGES)})")
    return ph.HU_RANGES[tissue]


def _grid_text(p: ph.Phantom) -> str:
    sz, sy, sx = p.spacing
    thick = float(p.params.get("slice_mm", sz))
    sub = tuple(p.params.get("supersample", (1, 1, 1)))
    text = f"{sy:g} × {sx:g} mm pixels, {thick:g} mm slice"
    return text + (
        ", point-sampled" if sub == (1, 1, 1) else f", each voxel the mean of {int(np.prod(sub))} samples"
    )


def _coarse(p: ph.Phantom, fine_mm: float) -> bool:
    """True when a voxel averages more than ``fine_mm`` of anatomy in some direction (partial volume)."""
    sub = tuple(p.params.get("supersample", (1, 1, 1)))
    thick = float(p.params.get("slice_mm", p.spacing[0]))
    return sub != (1, 1, 1) and max(thick, *p.spacing[1:]) > fine_mm


def tissue_hu_table(
    p: ph.Phantom, erode: int = 1, min_voxels: int = 20, fine_mm: float = 1.0
) -> pd.DataFrame:
    """Median HU per labelled tissue of a phantom against the reference range, with a pass/flag verdict.

    Each tissue is measured on all its labelled voxels and on its *core*: the label mask eroded by ``erode``
    voxels in-plane (3 × 3 structuring element per step, each slice on its own), i.e. voxels at least
    ``erode`` voxels away from any other tissue. The verdict reads the core's median (all voxels when the
    tissue has no core on this grid) against :func:`reference_range` ± :data:`TOLERANCE_HU`.

    Args:
        p: a phantom (:func:`ctad_core.data.phantom.make_phantom`); noise-free and blur-free
            (``noise=False, blur=False``) for a check of the anatomy's own HU.
        erode: in-plane erosion steps that define the core.
        min_voxels: tissues with fewer labelled voxels are left out.
        fine_mm: a grid whose voxels average less than this (mm) in every direction counts as fine; on a
            coarser grid a median outside the range is explained as partial volume.

    Returns:
        A DataFrame indexed by ``tissue`` with columns ``voxels``, ``core voxels``, ``median HU (all)``,
        ``median HU (core)`` (NaN only when there is no core; then ``measured on`` says ``all voxels``),
        ``reference HU`` (text ``lo … hi``), ``ref lo``, ``ref hi``, ``measured on`` (``core`` or ``all
        voxels``), ``grid`` (text), ``check`` (``pass`` or ``flag``) and ``why`` (empty for a pass).

    Raises:
        ValueError: if ``erode`` is negative or the phantom has no labelled tissue with ``min_voxels`` voxels.
    """
    if erode < 0:
        raise ValueError(f"erode must be >= 0, got {erode}")
    tissue = np.asarray(p.tissue)
    hu = np.asarray(p.hu, dtype=np.float64)
    grid = _grid_text(p)
    coarse = _coarse(p, fine_mm)
    noisy = float(p.params.get("noise_sd", 0.0)) > 0
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = True  # in-plane 3 x 3: slices are eroded one by one
    rows: list[dict[str, Any]] = []
    for name, code in ph.TISSUE_CODES.items():
        mask = tissue == code
        n = int(mask.sum())
        if n < min_voxels:
            continue
        lo, hi = reference_range(name)
        core = ndi.binary_erosion(mask, structure, iterations=erode, border_value=0) if erode else mask
        n_core = int(core.sum())
        med_all = float(np.median(hu[mask]))
        med_core = float(np.median(hu[core])) if n_core else float("nan")
        value, on = (med_core, "core") if n_core else (med_all, "all voxels")
        ok = lo - TOLERANCE_HU <= value <= hi + TOLERANCE_HU
        why = ""
        if not ok:
            if not n_core:
                why = (
                    f"no voxel lies {erode} voxel(s) inside the {name} on this grid (a layer thinner than the "
                    "voxels): its median mixes the neighbouring tissues (partial volume)"
                )
            elif coarse:
                why = (
                    f"partial volume: each voxel ({grid}) averages the {name} with its neighbours, which the "
                    "centre-point label does not see; measure on a finer grid"
                )
            elif noisy:
                why = "image noise on a small core; measure on a noise-free phantom"
            else:
                why = (
                    "outside the reference on a fine, noise-free grid: the phantom departs from REFERENCE.md"
                )
        rows.append(
            {
                "tissue": name,
                "voxels": n,
                "core voxels": n_core,
                "median HU (all)": round(med_all, 1),
                "median HU (core)": round(med_core, 1),
                "reference HU": f"{lo:g} … {hi:g}",
                "ref lo": lo,
                "ref hi": hi,
                "measured on": on,
                "grid": grid,
                "check": "pass" if ok else "flag",
                "why": why,
            }
        )
    if not rows:
        raise ValueError(f"no tissue of the phantom has {min_voxels} labelled voxels (shape {tissue.shape})")
    return pd.DataFrame(rows).set_index("tissue")


def tissue_check_phantom(
    seed: int,
    pixel_mm: float = 0.5,
    fov_mm: float = 230.0,
    z_mm: float = 0.0,
    params: dict[str, Any] | None = None,
) -> ph.Phantom:
    """The phantom the tissue check reads: one axial slice at ``pixel_mm`` (isotropic, point-sampled, thin
    slice), noise-free, without blur or beam-hardening artefacts — the anatomy's own HU.

    Args:
        seed: patient seed (:func:`ctad_core.data.phantom.make_phantom`).
        pixel_mm: pixel size and slice thickness (mm); 0.5 mm resolves the 1 mm skin and the skull's tables.
        fov_mm: field of view (mm).
        z_mm: height of the slice above the mid-axial level (mm).
        params: the patient's parameters (default: drawn from ``seed``, healthy).

    Raises:
        ValueError: for a non-positive ``pixel_mm`` or a field of view under two pixels.
    """
    if pixel_mm <= 0:
        raise ValueError(f"pixel_mm must be positive, got {pixel_mm}")
    n = int(round(fov_mm / pixel_mm))
    if n < 2:
        raise ValueError(f"fov_mm {fov_mm} holds fewer than two {pixel_mm} mm pixels")
    return ph.make_phantom(
        seed,
        "healthy",
        shape=(1, n, n),
        spacing=(pixel_mm, pixel_mm, pixel_mm),
        offset_mm=(z_mm, 0.0, 0.0),
        noise=False,
        blur=False,
        artefacts=False,
        supersample=(1, 1, 1),
        params=params,
    )


def lesion_slice_picks(lesion: np.ndarray, scan_id: np.ndarray, kind: np.ndarray, n: int = 12) -> list[int]:
    """Rows of a 2D slice set that show lesions best: per lesioned scan, its slice with the most lesion pixels.

    Scans are taken one kind at a time (kinds in sorted order, within a kind the scan with the largest
    lesion first), so that ``n`` picks cover as many kinds as possible.

    Args:
        lesion: (N, H, W) lesion masks (0 = none).
        scan_id: (N,) scan of each row.
        kind: (N,) lesion kind of each row's scan.
        n: most picks returned.

    Returns:
        Row indices, at most ``n``, one per lesioned scan; empty when no row has a lesion.

    Raises:
        ValueError: if the arrays disagree in length.
    """
    lesion = np.asarray(lesion)
    scan_id, kind = np.asarray(scan_id).astype(str), np.asarray(kind).astype(str)
    if not (len(lesion) == len(scan_id) == len(kind)):
        raise ValueError(
            f"lesion, scan_id and kind differ in length: {len(lesion)}, {len(scan_id)}, {len(kind)}"
        )
    counts = (lesion.reshape(len(lesion), -1) > 0).sum(1)
    best: dict[str, int] = {}
    for i in np.flatnonzero(counts > 0):
        s = scan_id[i]
        if s not in best or counts[i] > counts[best[s]]:
            best[s] = int(i)
    by_kind: dict[str, list[int]] = {}
    for s in sorted(best):
        by_kind.setdefault(kind[best[s]], []).append(best[s])
    queues = [sorted(v, key=lambda i: -counts[i]) for _, v in sorted(by_kind.items())]
    picks: list[int] = []
    while len(picks) < n and any(queues):
        for q in queues:
            if q and len(picks) < n:
                picks.append(q.pop(0))
    return picks
