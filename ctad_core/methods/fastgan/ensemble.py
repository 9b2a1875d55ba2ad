"""Seed 000's segmentation of 2D residuals by a GAN ensemble, and its evaluation on val / test slices.

Each ensemble member m gives a residual map ``D_m = rho(x - G_m(z_m))``. A threshold t, the same for
every member, makes binary maps; each is restricted to the brain and closed morphologically; a strict
majority vote of the members gives the segmentation (Walluscheck 2024, Sec. 2.2.4). The threshold is
chosen on the validation slices (best mean Dice over lesioned slices, the seed's Fig. 6) and applied
unchanged to the test slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ctad_core import anomaly, metrics


def resize_masks(mask: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of label maps (N, H, W) to (N, size, size), dtype kept."""
    if mask.shape[-2:] == (size, size):
        return mask
    t = torch.as_tensor(mask.astype(np.float32))[:, None]
    return F.interpolate(t, size=(size, size), mode="nearest")[:, 0].numpy().astype(mask.dtype)


def residual_maps(x: np.ndarray, recons: np.ndarray, mode: str = "abs") -> np.ndarray:
    """Residuals of every member: x (N, H, W), recons (M, N, H, W) → (M, N, H, W) float32."""
    return np.stack([anomaly.residual(x, r, mode) for r in recons]).astype(np.float32)


def ensemble_segmentation(
    member_maps: np.ndarray,
    thr: float,
    brain: np.ndarray | None = None,
    closing_radius: int = 1,
    min_size: int = 0,
) -> np.ndarray:
    """Threshold → brain mask → closing → majority vote (→ optional small-component removal).

    Args:
        member_maps: (M, N, H, W) residual maps of M members.
        thr: threshold shared by the members.
        brain: (N, H, W) evaluation mask or None.
        closing_radius: closing radius in pixels (0: none).
        min_size: smallest component kept after the vote (0: all; per slice).

    Returns:
        (N, H, W) uint8 segmentation.
    """
    masks = [
        anomaly.postprocess(m, thr, brain=brain, closing_radius=closing_radius, spatial_dims=2)
        for m in member_maps
    ]
    seg = anomaly.majority_vote(masks)
    if min_size > 1:
        seg = anomaly.remove_small_components(seg, min_size, spatial_dims=2)
    return seg


def _mean_dice(seg: np.ndarray, lesion: np.ndarray) -> float:
    d = metrics.dice_per_item(seg, lesion > 0, empty=np.nan)
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


def choose_threshold(
    member_maps: np.ndarray,
    lesion: np.ndarray,
    brain: np.ndarray | None = None,
    closing_radius: int = 1,
    min_size: int = 0,
    n_thresholds: int = 40,
) -> tuple[float, np.ndarray, np.ndarray]:
    """The threshold with the best mean Dice over the lesioned slices of a (validation) set.

    The whole pipeline (closing and vote included) is run for every candidate, so the operating point
    is chosen for what is applied later. Candidates: quantiles of the residuals inside the brain
    between the 80th and the 99.9th percentile.

    Args:
        member_maps: (M, N, H, W) residual maps of the validation slices.
        lesion: (N, H, W) reference, nonzero = lesion.
        brain: (N, H, W) mask or None.
        closing_radius, min_size: as :func:`ensemble_segmentation`.
        n_thresholds: number of candidates.

    Returns:
        ``(best_threshold, thresholds, mean_dice_per_threshold)``.
    """
    has = (lesion > 0).reshape(lesion.shape[0], -1).any(1)
    if not has.any():
        raise ValueError("choose_threshold: no lesioned slice in this set")
    mm, les = member_maps[:, has], lesion[has]
    br = brain[has] if brain is not None else None
    vals = mm.mean(0)[br > 0] if br is not None else mm.mean(0).ravel()
    ts = np.unique(np.quantile(vals, np.linspace(0.80, 0.999, n_thresholds)))
    curve = np.array(
        [_mean_dice(ensemble_segmentation(mm, t, br, closing_radius, min_size), les) for t in ts]
    )
    best = int(np.nanargmax(curve))
    return float(ts[best]), ts, curve


def evaluate(
    member_maps: np.ndarray,
    lesion: np.ndarray,
    brain: np.ndarray | None,
    split: np.ndarray,
    closing_radius: int = 1,
    min_size: int = 0,
    n_thresholds: int = 40,
) -> dict[str, Any]:
    """Choose the threshold on ``val``, apply it to ``test``; pixel and lesion metrics of the method.

    Args:
        member_maps: (M, N, H, W) residual maps of val + test slices.
        lesion: (N, H, W) reference.
        brain: (N, H, W) evaluation mask or None.
        split: (N,) ``"val"`` / ``"test"``.
        closing_radius, min_size, n_thresholds: see :func:`choose_threshold`.

    Returns:
        A dict: ``threshold``, the validation sweep (``val_thresholds``, ``val_dice``), test ``dice``
        per lesioned slice with its ``median``/``mean``/``std``, ``detection_rate`` (lesions found with
        Dice > 0.1), pixel ``auroc`` / ``auprc`` of the mean map inside the brain on val and test, and
        the test ``segmentation`` (N_test, H, W).
    """
    val, test = split == "val", split == "test"
    b = brain if brain is not None else np.ones(lesion.shape, np.uint8)
    thr, ts, curve = choose_threshold(
        member_maps[:, val], lesion[val], b[val], closing_radius, min_size, n_thresholds
    )
    seg = ensemble_segmentation(member_maps[:, test], thr, b[test], closing_radius, min_size)
    les_t = lesion[test] > 0
    has = les_t.reshape(les_t.shape[0], -1).any(1)
    d = metrics.dice_per_item(seg[has], les_t[has], empty=np.nan) if has.any() else np.zeros(0)
    det = metrics.lesion_detection_rate(seg[has], les_t[has], min_dice=0.1) if has.any() else {}
    mean_map = member_maps.mean(0)
    out: dict[str, Any] = {
        "threshold": thr,
        "val_thresholds": ts,
        "val_dice": curve,
        "dice": d,
        "dice_median": float(np.median(d)) if d.size else float("nan"),
        "dice_mean": float(np.mean(d)) if d.size else float("nan"),
        "dice_std": float(np.std(d)) if d.size else float("nan"),
        "detection": det,
        "segmentation": seg,
    }
    for name, sel in (("val", val), ("test", test)):
        y = lesion[sel] > 0
        if y.any() and (~y[b[sel] > 0]).any():
            out[f"auroc_{name}"] = metrics.roc_auc(mean_map[sel], y, b[sel] > 0)
            out[f"auprc_{name}"] = metrics.average_precision(mean_map[sel], y, b[sel] > 0)
        else:
            out[f"auroc_{name}"] = out[f"auprc_{name}"] = float("nan")
    return out


def summary(res: dict[str, Any]) -> dict[str, float]:
    """The scalar part of :func:`evaluate`'s result (for tables and JSON)."""
    keys = (
        "threshold",
        "dice_median",
        "dice_mean",
        "dice_std",
        "auroc_val",
        "auprc_val",
        "auroc_test",
        "auprc_test",
    )
    out = {k: float(res[k]) for k in keys}
    det = res.get("detection") or {}
    for k, v in det.items():
        if isinstance(v, (int, float, np.floating, np.integer)):
            out[f"detection_{k}"] = float(v)
    return out


def stack_members(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """(M, N, H, W) from M arrays (N, H, W)."""
    return np.stack([np.asarray(a, np.float32) for a in arrays])


def select_slices(
    split: np.ndarray, has_lesion: np.ndarray, max_per_split: int = 0, seed: int = 0
) -> np.ndarray:
    """Indices of at most ``max_per_split`` slices of each of ``val`` and ``test`` (0: all), sorted.

    Latent restoration costs seconds per slice on a CPU; the quick profile evaluates a subset. Up to
    half of each split's pick are lesioned slices, the rest healthy, drawn with ``seed``.

    Args:
        split: (N,) split names.
        has_lesion: (N,) bool.
        max_per_split: cap per split.
        seed: random seed of the draw.

    Returns:
        Sorted int indices into the N slices (only val and test).
    """
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for s in ("val", "test"):
        idx = np.flatnonzero(split == s)
        if max_per_split <= 0 or len(idx) <= max_per_split:
            keep.append(idx)
            continue
        les, hea = idx[has_lesion[idx]], idx[~has_lesion[idx]]
        n_les = min(len(les), max(max_per_split // 2, max_per_split - len(hea)))
        n_hea = min(len(hea), max_per_split - n_les)
        keep += [rng.choice(les, n_les, replace=False), rng.choice(hea, n_hea, replace=False)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, int)



