"""Slice-level scores of volumetric results: Luo's normality score s(u) (seed 004, Appendix E1).

Luo et al. (2023) score each axial slice u of a scan by its summed reconstruction error e(u) and normalise
within the scan, "as different scans may have different notions of abnormality":

    s(u) = 1 − (e(u) − min_u e(u)) / (max_u e(u) − min_u e(u))

s close to 0 flags an abnormal slice, so the slice's anomaly score is 1 − s(u). The reconstruction error
of a volumetric method is its anomaly map ("reconstruction errors, also called anomaly map", App. E1):
e(u) sums the method's map inside the evaluation mask over slice u. The slices of a scan that hold no
mask voxel are left out of the slice table (they carry no error and no lesion inside the mask).
"""

from __future__ import annotations

import numpy as np

from ctad_core.results import MethodResults


def slice_errors(residual: np.ndarray, axis: int = 0, mask: np.ndarray | None = None) -> np.ndarray:
    """e(u): the summed absolute reconstruction error of each slice along ``axis``.

    Args:
        residual: (D, H, W) voxel errors (absolute values are taken).
        axis: slice axis (0 = axial in the workbook's (z, y, x) convention).
        mask: optional (D, H, W) mask of voxels to count (e.g. the brain).

    Returns:
        (n_slices,) float64.

    Raises:
        ValueError: ``mask`` of another shape.

    >>> slice_errors(np.array([[[1.0, -2.0]], [[0.5, 0.0]]])).tolist()
    [3.0, 0.5]
    """
    r = np.abs(np.asarray(residual, dtype=np.float64))
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != r.shape:
            raise ValueError(f"slice_errors: mask has shape {m.shape}, residual {r.shape}")
        r = r * (m != 0)
    other = tuple(a for a in range(r.ndim) if a != axis)
    return r.sum(axis=other)


def normality_score(errors: np.ndarray) -> np.ndarray:
    """s(u) = 1 − (e(u) − min e) / (max e − min e) (Luo 2023, Appendix E1); 1 = most normal slice of the scan.

    Args:
        errors: (n_slices,) per-slice errors e(u) of one scan.

    Returns:
        (n_slices,) in [0, 1]; all ones when every slice has the same error.

    >>> normality_score(np.array([2.0, 4.0, 3.0])).tolist()
    [1.0, 0.0, 0.5]
    """
    e = np.asarray(errors, dtype=np.float64)
    span = e.max() - e.min() if e.size else 0.0
    if span <= 0:
        return np.ones_like(e)
    return 1.0 - (e - e.min()) / span


def slice_labels(lesion: np.ndarray, axis: int = 0) -> np.ndarray:
    """(n_slices,) int: 1 where a slice along ``axis`` holds any lesion voxel.

    >>> slice_labels(np.array([[[0, 0]], [[0, 1]]])).tolist()
    [0, 1]
    """
    les = np.asarray(lesion) != 0
    other = tuple(a for a in range(les.ndim) if a != axis)
    return les.any(axis=other).astype(np.int64)


def scan_normality(res: MethodResults, i: int) -> tuple[np.ndarray, np.ndarray]:
    """s(u) of every axial slice of volumetric item ``i`` and which slices hold mask voxels.

    Returns:
        ``(s, has_mask)``: (D,) normality scores (computed over the slices with mask voxels; 1 elsewhere)
        and (D,) bool.

    Raises:
        ValueError: results without maps, or items that are not volumes.
    """
    if res.maps is None or res.maps.ndim != 4:
        raise ValueError(
            f"{res.name}: slice scores need volumetric maps (N, D, H, W), got "
            f"{None if res.maps is None else res.maps.shape}"
        )
    m = res.maps[i]
    b = np.ones(m.shape, bool) if res.brain is None else res.brain[i] != 0
    has = b.reshape(b.shape[0], -1).any(1)
    s = np.ones(m.shape[0])
    if has.any():
        s[has] = normality_score(slice_errors(m, 0, b)[has])
    return s, has


def slice_table(res: MethodResults, split: str, with_item: bool = False) -> tuple[np.ndarray, ...]:
    """Seed 004's slice table of a split: anomaly score 1 − s(u) and label of every slice with mask voxels.

    Args:
        res: volumetric results (items are volumes).
        split: ``"val"`` or ``"test"``.
        with_item: also return the index (into ``res``' items) of each slice's volume.

    Returns:
        ``(score, label)``: (n_slices,) float64 and int64, scans in item order; ``(score, label, item)`` with
        ``with_item``.
    """
    sel = np.flatnonzero(np.asarray(res.split).astype(str) == split)
    scores, labels, items = [np.zeros(0)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    les_all = res.lesion if res.lesion is not None else None
    for i in sel:
        s, has = scan_normality(res, int(i))
        scores.append((1.0 - s)[has])
        lab = slice_labels(les_all[i]) if les_all is not None else np.zeros(s.size, np.int64)
        labels.append(lab[has])
        items.append(np.full(int(np.count_nonzero(has)), int(i), np.int64))
    out = (np.concatenate(scores), np.concatenate(labels))
    return (*out, np.concatenate(items)) if with_item else out
