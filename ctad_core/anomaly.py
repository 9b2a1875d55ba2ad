"""From reconstructions to anomaly masks: residuals, thresholds, morphology, ensembles, scores.

One code path for 2D and 3D. Arrays are ``(*items, *spatial)``: a stack of slices ``(N, H, W)`` with
``spatial_dims=2``, a batch of volumes ``(N, D, H, W)`` with ``spatial_dims=3``, or one image / volume
with no item axis. When ``spatial_dims`` is None it is inferred from the rank where the rank says it:
2 → one 2D image, 4 → a batch of 3D volumes. A rank-3 array is either a stack of 2D slices or one
``(D, H, W)`` volume, so it needs ``spatial_dims`` (2: filter each slice alone; 3: the whole volume,
also to treat a stack of consecutive slices as a volume); without it a ``ValueError`` says so.

The seed-000 pipeline (Walluscheck 2024, Sec. 2.2.4): ``D = rho(x - x_hat)`` with ``rho = |.|`` or
``max(., 0)``; threshold; morphological closing; majority vote over the three-GAN ensemble; optionally
3D connected components across consecutive slices to drop small false positives (Sec. 3). The
seed-004 pipeline (Luo 2023): 5³ median filter on the residual, eroded brain mask, threshold, 3D
connected components. Both are :func:`postprocess` with different arguments.

Morphology runs in NumPy / SciPy (CPU); :func:`residual` and :func:`threshold_maps` also accept torch
tensors and return the same type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage

ArrayLike = Any  # np.ndarray | torch.Tensor


# ---------------------------------------------------------------------------------------------- helpers
def _infer_spatial_dims(shape: tuple[int, ...], spatial_dims: int | None) -> int:
    """``spatial_dims``, or the one the rank of ``shape`` implies: 2 → 2 (one image), 4 → 3 (volumes).

    Raises:
        ValueError: rank 3 without ``spatial_dims`` (slices or one volume?), another rank without it,
            ``spatial_dims`` not 2 or 3, or fewer axes than ``spatial_dims``.
    """
    ndim = len(shape)
    if spatial_dims is None:
        if ndim == 3:
            raise ValueError(
                f"an array of shape {tuple(shape)} is either a stack of 2D slices (N, H, W) or one volume "
                "(D, H, W): pass spatial_dims=2 (each slice alone) or spatial_dims=3 (one volume)"
            )
        table = {2: 2, 4: 3}
        if ndim not in table:
            raise ValueError(
                f"cannot infer spatial_dims for an array of shape {tuple(shape)}; pass spatial_dims=2 or 3"
            )
        return table[ndim]
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if ndim < spatial_dims:
        raise ValueError(f"array of shape {tuple(shape)} has fewer axes than spatial_dims={spatial_dims}")
    return spatial_dims


def _to_numpy(a: ArrayLike) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _per_item(a: np.ndarray, spatial_dims: int, fn) -> np.ndarray:
    """Apply ``fn`` to every ``spatial_dims``-dimensional item of ``a`` (leading axes are items)."""
    lead = a.shape[: a.ndim - spatial_dims]
    if not lead:
        return fn(a)
    flat = a.reshape((-1, *a.shape[a.ndim - spatial_dims :]))
    out = [fn(item) for item in flat]
    return np.stack(out).reshape((*lead, *out[0].shape)) if out else flat.copy()


def ball(radius: int, spatial_dims: int) -> np.ndarray:
    """A disk (2D) or ball (3D) structuring element of integer ``radius`` (bool, side ``2r+1``)."""
    r = int(radius)
    if r < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    grid = np.ogrid[tuple(slice(-r, r + 1) for _ in range(spatial_dims))]
    return sum(g.astype(np.int64) ** 2 for g in grid) <= r * r


# ------------------------------------------------------------------------------------------ residuals
def residual(x: ArrayLike, x_hat: ArrayLike, mode: str = "abs") -> ArrayLike:
    """Residual map ``D = rho(x - x_hat)``.

    Args:
        x: input images, any shape, NumPy or torch.
        x_hat: reconstructions, same shape.
        mode: ``"abs"`` (``rho = |.|``, any change) or ``"pos"`` (``rho = max(., 0)``: only tissue
            brighter than its healthy reconstruction, e.g. haemorrhage).

    Returns:
        The residual, same type and shape as ``x``.
    """
    if tuple(x.shape) != tuple(x_hat.shape):
        raise ValueError(f"residual: x has shape {tuple(x.shape)}, x_hat {tuple(x_hat.shape)}")
    d = x - x_hat
    if mode == "abs":
        return d.abs() if isinstance(d, torch.Tensor) else np.abs(d)
    if mode == "pos":
        return d.clamp_min(0) if isinstance(d, torch.Tensor) else np.maximum(d, 0)
    raise ValueError(f"residual mode must be 'abs' or 'pos', got {mode!r}")


def threshold_maps(maps: ArrayLike, thr: float) -> ArrayLike:
    """Binary mask ``maps >= thr`` (uint8 for NumPy, bool for torch).

    "At or above" is the rule :mod:`ctad_core.evaluation.metrics` uses for ROC curves and Dice sweeps, so a threshold
    chosen there gives the same mask here.
    """
    if isinstance(maps, torch.Tensor):
        return maps >= thr
    return (np.asarray(maps) >= thr).astype(np.uint8)


# ----------------------------------------------------------------------------------------- morphology
def closing(mask: ArrayLike, radius: int, spatial_dims: int | None = None) -> np.ndarray:
    """Morphological closing of every item with a disk / ball of ``radius``.

    The image is padded by ``radius`` first so that objects touching the border are not eroded away
    (SciPy's closing treats the outside as background during the erosion).

    Args:
        mask: (*items, *spatial) binary mask.
        radius: structuring-element radius in pixels (0 returns the mask unchanged).
        spatial_dims: 2 or 3; required for a rank-3 array (see module docstring).

    Returns:
        uint8 mask, same shape.
    """
    m = _to_numpy(mask).astype(bool)
    sd = _infer_spatial_dims(m.shape, spatial_dims)
    if radius <= 0:
        return m.astype(np.uint8)
    lead = m.ndim - sd
    # one SciPy call for all items: the element has extent 1 along the item axes, so items never touch
    se = ball(radius, sd).reshape((1,) * lead + (2 * radius + 1,) * sd)
    padded = np.pad(m, [(0, 0)] * lead + [(radius, radius)] * sd, mode="constant")
    closed = ndimage.binary_closing(padded, structure=se)
    return closed[(slice(None),) * lead + tuple(slice(radius, -radius) for _ in range(sd))].astype(np.uint8)


def majority_vote(masks_list: Sequence[ArrayLike]) -> np.ndarray:
    """Strict majority of an ensemble's binary masks: a pixel is kept when more than half vote for it.

    With three members (seed 000) that is two of three; with two members both must agree.

    Args:
        masks_list: M masks of identical shape.

    Returns:
        uint8 mask of that shape.
    """
    if len(masks_list) == 0:
        raise ValueError("majority_vote needs at least one mask")
    arrs = [_to_numpy(m).astype(bool) for m in masks_list]
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise ValueError(f"majority_vote: masks have different shapes {sorted(shapes)}")
    votes = np.sum(arrs, axis=0)
    return (2 * votes > len(arrs)).astype(np.uint8)


def _structure(spatial_dims: int, connectivity: int) -> np.ndarray:
    if not 1 <= connectivity <= spatial_dims:
        raise ValueError(f"connectivity must be in 1..{spatial_dims} for {spatial_dims}D, got {connectivity}")
    return ndimage.generate_binary_structure(spatial_dims, connectivity)


def connected_components(
    mask: ArrayLike, connectivity: int = 1, spatial_dims: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Label connected components of every item.

    For a stack of consecutive slices ``(S, H, W)`` pass ``spatial_dims=3`` so that components span
    slices (seed 000, Sec. 3: components over several slices); ``spatial_dims=2`` labels each slice alone.

    Args:
        mask: (*items, *spatial) binary mask.
        connectivity: 1 (faces: 4-/6-neighbourhood) up to ``spatial_dims`` (8-/26-neighbourhood).
        spatial_dims: 2 or 3; required for a rank-3 array (see module docstring).

    Returns:
        ``(labels, counts)``: int32 labels of the mask's shape (0 = background, numbered per item) and
        the number of components per item, shape ``items`` (a 0-d array for a single image).
    """
    m = _to_numpy(mask).astype(bool)
    sd = _infer_spatial_dims(m.shape, spatial_dims)
    st = _structure(sd, connectivity)
    counts: list[int] = []

    def one(item: np.ndarray) -> np.ndarray:
        lab, n = ndimage.label(item, structure=st)
        counts.append(int(n))
        return lab.astype(np.int32)

    labels = _per_item(m, sd, one)
    return labels, np.asarray(counts, dtype=np.int64).reshape(m.shape[: m.ndim - sd])


def remove_small_components(
    mask: ArrayLike, min_size: int, connectivity: int = 1, spatial_dims: int | None = None
) -> np.ndarray:
    """Drop connected components smaller than ``min_size`` pixels / voxels.

    Args:
        mask: (*items, *spatial) binary mask.
        min_size: smallest component kept (components with fewer elements are removed; <= 1 keeps all).
        connectivity: see :func:`connected_components`.
        spatial_dims: 2 or 3, required for a rank-3 array; a stack of consecutive slices with
            ``spatial_dims=3`` is one volume.

    Returns:
        uint8 mask, same shape.
    """
    m = _to_numpy(mask).astype(bool)
    sd = _infer_spatial_dims(m.shape, spatial_dims)
    if min_size <= 1:
        return m.astype(np.uint8)
    st = _structure(sd, connectivity)

    def one(item: np.ndarray) -> np.ndarray:
        lab, n = ndimage.label(item, structure=st)
        if n == 0:
            return item
        sizes = np.bincount(lab.ravel())
        keep = sizes >= min_size
        keep[0] = False
        return keep[lab]

    return _per_item(m, sd, one).astype(np.uint8)


def median_filter(maps: ArrayLike, size: int = 5, spatial_dims: int | None = None) -> np.ndarray:
    """Median filter every item with a ``size``^spatial_dims window (Luo 2023: 5³ on volumes).

    Args:
        maps: (*items, *spatial) float maps.
        size: window side (odd). 1 returns a copy.
        spatial_dims: 2 or 3; required for a rank-3 array (see module docstring).

    Returns:
        float32 maps, same shape (borders: reflect).
    """
    a = _to_numpy(maps).astype(np.float32)
    sd = _infer_spatial_dims(a.shape, spatial_dims)
    if size <= 1:
        return a.copy()
    return _per_item(a, sd, lambda item: ndimage.median_filter(item, size=size, mode="reflect")).astype(
        np.float32
    )


def erode_mask(
    mask: ArrayLike,
    iterations: int | None = None,
    mm: float | None = None,
    spacing: Sequence[float] | None = None,
    spatial_dims: int | None = None,
) -> np.ndarray:
    """Erode a (brain) mask, by a number of iterations or by a distance in millimetres.

    Eroding the brain mask keeps the bright skull edge, which every reconstruction misses by a pixel
    or two, out of the anomaly maps (Luo 2023).

    Args:
        mask: (*items, *spatial) binary mask.
        iterations: erosions with the face-connected element (one pixel each).
        mm: alternatively, remove everything within ``mm`` millimetres of the background (Euclidean
            distance transform with ``spacing``).
        spacing: pixel / voxel size in mm per spatial axis (default 1 mm).
        spatial_dims: 2 or 3; required for a rank-3 array (see module docstring).

    Returns:
        uint8 mask, same shape. Outside the image counts as background.
    """
    if (iterations is None) == (mm is None):
        raise ValueError("erode_mask: give exactly one of iterations or mm")
    m = _to_numpy(mask).astype(bool)
    sd = _infer_spatial_dims(m.shape, spatial_dims)
    if iterations is not None:
        if iterations <= 0:
            return m.astype(np.uint8)
        st = ndimage.generate_binary_structure(sd, 1)
        return _per_item(
            m,
            sd,
            lambda it: ndimage.binary_erosion(it, structure=st, iterations=int(iterations), border_value=0),
        ).astype(np.uint8)
    sp = tuple(float(s) for s in (spacing if spacing is not None else (1.0,) * sd))
    if len(sp) != sd:
        raise ValueError(f"spacing has {len(sp)} entries, spatial_dims is {sd}")

    def by_mm(item: np.ndarray) -> np.ndarray:
        padded = np.pad(item, 1, mode="constant")  # the image border is background
        dist = ndimage.distance_transform_edt(padded, sampling=sp)
        return (dist > mm)[tuple(slice(1, -1) for _ in range(sd))]

    return _per_item(m, sd, by_mm).astype(np.uint8)


# --------------------------------------------------------------------------------------- the pipeline
def postprocess(
    maps: ArrayLike,
    thr: float,
    brain: ArrayLike | None = None,
    closing_radius: int = 0,
    min_size: int = 0,
    median: int | None = None,
    erode: int | None = None,
    spatial_dims: int | None = None,
    components_spatial_dims: int | None = None,
    connectivity: int = 1,
) -> np.ndarray:
    """Anomaly maps to binary segmentations.

    Order: median filter (optional) → threshold → restrict to the (optionally eroded) brain mask →
    morphological closing → removal of components smaller than ``min_size``.

    Args:
        maps: (*items, *spatial) residual maps.
        thr: threshold (``maps >= thr`` is anomalous, as :func:`threshold_maps`).
        brain: binary mask of the same shape, or None for the whole image.
        closing_radius: closing radius in pixels (seed 000), 0 for none.
        min_size: smallest connected component kept, 0 for none.
        median: median window side (Luo: 5), or None.
        erode: erosion iterations of ``brain`` (Luo), or None.
        spatial_dims: 2 or 3 for filtering, erosion and closing; required for a rank-3 array.
        components_spatial_dims: spatial dims for the component analysis, default ``spatial_dims``;
            pass 3 with a stack of consecutive slices to let components span slices.
        connectivity: component connectivity.

    Returns:
        uint8 mask, same shape as ``maps``.
    """
    a = _to_numpy(maps).astype(np.float32)
    sd = _infer_spatial_dims(a.shape, spatial_dims)
    if median is not None and median > 1:
        a = median_filter(a, median, spatial_dims=sd)
    mask = threshold_maps(a, thr).astype(bool)
    if brain is not None:
        b = _to_numpy(brain).astype(bool)
        if b.shape != a.shape:
            raise ValueError(f"postprocess: brain has shape {b.shape}, maps {a.shape}")
        if erode:
            b = erode_mask(b, iterations=erode, spatial_dims=sd).astype(bool)
        mask &= b
    if closing_radius > 0:
        mask = closing(mask, closing_radius, spatial_dims=sd).astype(bool)
        if brain is not None:
            mask &= b  # closing must not grow the mask out of the brain
    if min_size > 1:
        csd = components_spatial_dims or sd
        mask = remove_small_components(mask, min_size, connectivity=connectivity, spatial_dims=csd).astype(
            bool
        )
    return mask.astype(np.uint8)


# ------------------------------------------------------------------------------------------- scoring
def scan_score(
    maps: ArrayLike,
    brain: ArrayLike | None = None,
    top_fraction: float = 0.01,
    spatial_dims: int | None = None,
) -> np.ndarray:
    """Per-item anomaly score: the mean of the top ``top_fraction`` of residuals inside the brain.

    Args:
        maps: (*items, *spatial) anomaly maps.
        brain: binary mask of the same shape, or None (whole image).
        top_fraction: share of the highest values averaged (0.01 = top 1 %); at least one value.
        spatial_dims: 2 or 3; required for a rank-3 array (see module docstring).

    Returns:
        float32 scores of shape ``items`` (0.0 for an item with an empty brain mask).
    """
    a = _to_numpy(maps).astype(np.float32)
    sd = _infer_spatial_dims(a.shape, spatial_dims)
    b = np.ones(a.shape, bool) if brain is None else _to_numpy(brain).astype(bool)
    if b.shape != a.shape:
        raise ValueError(f"scan_score: brain has shape {b.shape}, maps {a.shape}")
    lead = a.shape[: a.ndim - sd]
    fa = a.reshape((-1, *a.shape[a.ndim - sd :]))
    fb = b.reshape(fa.shape)
    out = np.zeros(fa.shape[0], np.float32)
    for i in range(fa.shape[0]):
        v = fa[i][fb[i]]
        if v.size == 0:
            continue
        k = max(1, int(np.ceil(top_fraction * v.size)))
        out[i] = float(np.mean(np.partition(v, v.size - k)[v.size - k :]))
    return out.reshape(lead)
