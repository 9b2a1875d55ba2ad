"""A method's declared segmentation step, applied exactly as declared, before any Dice.

A method declares its step in ``MethodResults.info["segmentation"]`` (read through ``res.segmentation``;
see :data:`ctad_core.results.NO_SEGMENTATION`). At a threshold ``t`` the evaluator

1. thresholds each member map ``>= t`` when ``vote == "majority"`` (seed 000's ensemble, Walluscheck 2024,
   Sec. 2.2.4), else the method's ``maps``;
2. closes each binary map with a disk / ball of ``closing_radius`` (0: none; seed 000: 1);
3. keeps, when voting, the pixels where a strict majority of the M members agree (``2·votes > M``);
4. restricts the result to the evaluation mask (``res.brain``);
5. removes connected components smaller than ``min_component_size`` (0: none; seed 004, Luo 2023), each
   item on its own (a slice in 2D, a volume in 3D; face connectivity).

The evaluator never looks at a method's name or family: two methods that declare the same step are
scored the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ctad_core import anomaly
from ctad_core.results import NO_SEGMENTATION, MethodResults


def spatial_dims(res: MethodResults) -> int:
    """2 for items that are slices ``(N, H, W)``, 3 for volumes ``(N, D, H, W)``, from the maps' rank."""
    if res.maps is None:
        raise ValueError(f"{res.name}: results have no maps to segment")
    sd = res.maps.ndim - 1
    if sd not in (2, 3):
        raise ValueError(f"{res.name}: maps of shape {res.maps.shape} are neither (N, H, W) nor (N, D, H, W)")
    return sd


def declared_segmentation(res: MethodResults) -> dict[str, Any]:
    """The method's segmentation step, checked: known keys, a vote only with member maps of the maps' shape.

    Raises:
        ValueError: unknown keys, a vote other than None / ``"majority"``, a vote without ``member_maps``,
            member maps whose item shape differs from ``maps``, or a negative radius / size.
    """
    declared = res.info.get("segmentation") or {}
    unknown = set(declared) - set(NO_SEGMENTATION)
    if unknown:
        raise ValueError(
            f"{res.name}: unknown segmentation keys {sorted(unknown)} (known: {sorted(NO_SEGMENTATION)})"
        )
    seg = res.segmentation
    if seg["vote"] not in (None, "majority"):
        raise ValueError(f"{res.name}: segmentation vote must be None or 'majority', got {seg['vote']!r}")
    if int(seg["closing_radius"]) < 0 or int(seg["min_component_size"]) < 0:
        raise ValueError(f"{res.name}: closing_radius and min_component_size must be >= 0, got {seg}")
    if seg["vote"]:
        if res.member_maps is None:
            raise ValueError(f"{res.name}: declares a majority vote but carries no member_maps")
        if res.maps is not None and res.member_maps.shape[1:] != res.maps.shape:
            raise ValueError(
                f"{res.name}: member_maps have shape {res.member_maps.shape}, maps {res.maps.shape}; "
                "expected (members, *maps.shape)"
            )
    return seg


def maps_for(res: MethodResults, haemorrhage: bool = False) -> np.ndarray:
    """The maps that are thresholded: (M, N, *spatial) member maps when the method votes, else (N, *spatial).

    With ``haemorrhage`` the method's ρ = max(·, 0) maps (``member_maps_haemorrhage`` / ``maps_haemorrhage``)
    where it wrote them, as seed 000 does for its haemorrhage test set; otherwise its ordinary maps.

    Raises:
        ValueError: a voting method that wrote ``maps_haemorrhage`` but no ``member_maps_haemorrhage``
            (the haemorrhage vote would silently use other maps).
    """
    seg = declared_segmentation(res)
    if seg["vote"]:
        if haemorrhage and res.member_maps_haemorrhage is not None:
            return res.member_maps_haemorrhage
        if haemorrhage and res.maps_haemorrhage is not None:
            raise ValueError(
                f"{res.name}: has maps_haemorrhage but no member_maps_haemorrhage for its majority vote"
            )
        return res.member_maps
    if haemorrhage and res.maps_haemorrhage is not None:
        return res.maps_haemorrhage
    if res.maps is None:
        raise ValueError(f"{res.name}: results have no maps to segment")
    return res.maps


def _select(n: int, items: np.ndarray | None) -> np.ndarray:
    if items is None:
        return np.arange(n)
    idx = np.asarray(items)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"item selection has shape {idx.shape}, expected ({n},)")
        return np.flatnonzero(idx)
    return idx.astype(np.int64)


def segment(
    res: MethodResults,
    threshold: float,
    items: np.ndarray | None = None,
    haemorrhage: bool = False,
) -> np.ndarray:
    """Binary segmentation of some items at ``threshold`` by the method's declared step (module docstring).

    Args:
        res: the method's results.
        threshold: the anomaly threshold (``map >= threshold`` is anomalous).
        items: (N,) bool selection or integer indices of the items to segment; None for all.
        haemorrhage: segment the method's ρ = max(·, 0) maps (see :func:`maps_for`).

    Returns:
        (n_items, *spatial) uint8 masks.

    Raises:
        ValueError: see :func:`declared_segmentation` and :func:`maps_for`; a mask of another shape.
    """
    seg = declared_segmentation(res)
    sd = spatial_dims(res)
    idx = _select(len(res.scan_id), items)
    src = maps_for(res, haemorrhage)
    r = int(seg["closing_radius"])
    if seg["vote"]:
        binary = np.asarray(src[:, idx]) >= threshold  # (M, n, *spatial)
        if r > 0:
            binary = anomaly.closing(binary, r, spatial_dims=sd).astype(bool)
        pred = 2 * binary.sum(0, dtype=np.int64) > binary.shape[0]
    else:
        pred = np.asarray(src[idx]) >= threshold
        if r > 0:
            pred = anomaly.closing(pred, r, spatial_dims=sd).astype(bool)
    if res.brain is not None:
        if res.brain.shape != res.maps.shape:
            raise ValueError(f"{res.name}: brain has shape {res.brain.shape}, maps {res.maps.shape}")
        pred &= res.brain[idx] != 0
    size = int(seg["min_component_size"])
    if size > 1:
        pred = anomaly.remove_small_components(pred, size, spatial_dims=sd).astype(bool)
    return pred.astype(np.uint8)


def threshold_equivalent_maps(
    res: MethodResults, items: np.ndarray | None = None, haemorrhage: bool = False
) -> np.ndarray:
    """Maps E with ``segment(res, t, items, haemorrhage)`` = ``(E >= t)`` inside the mask, before small
    components are removed, for every threshold t: one array answers every threshold of a sweep.

    Flat morphology and order statistics commute with thresholding (threshold decomposition; Maragos & Schafer
    1987, "Morphological filters — Part II"): the closing of {m ≥ t} by a disk / ball is {C(m) ≥ t} with C the
    grey-level closing by the same flat element (padded as :func:`ctad_core.anomaly.closing` pads), and a
    strict majority of M members' {c_k ≥ t} is {c_(j) ≥ t} with c_(j) the (⌊M/2⌋ + 1)-th largest member value.

    Args:
        res, items, haemorrhage: as :func:`segment`.

    Returns:
        (n_items, *spatial) maps in the maps' floating dtype.
    """
    seg = declared_segmentation(res)
    sd = spatial_dims(res)
    idx = _select(len(res.scan_id), items)
    src = maps_for(res, haemorrhage)
    x = np.asarray(src[:, idx] if seg["vote"] else src[idx])
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    r = int(seg["closing_radius"])
    if r > 0:
        lead = x.ndim - sd
        se = anomaly.ball(r, sd).reshape((1,) * lead + (2 * r + 1,) * sd)
        pad = np.pad(x, [(0, 0)] * lead + [(r, r)] * sd, mode="constant", constant_values=-np.inf)
        pad = ndimage.grey_dilation(pad, footprint=se, mode="constant", cval=-np.inf)
        pad = ndimage.grey_erosion(pad, footprint=se, mode="constant", cval=np.inf)
        x = pad[(slice(None),) * lead + tuple(slice(r, -r) for _ in range(sd))]
    if seg["vote"]:
        n_members = x.shape[0]
        x = np.sort(x, axis=0)[n_members - (n_members // 2 + 1)]
    return x


def is_plain_threshold(res: MethodResults) -> bool:
    """True when the declared step is a plain threshold inside the mask (no closing, vote or components)."""
    seg = declared_segmentation(res)
    return not seg["vote"] and int(seg["closing_radius"]) == 0 and int(seg["min_component_size"]) <= 1
