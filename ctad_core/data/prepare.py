"""Write a prepared dataset under ``run_dir/data/`` (the contract of :mod:`ctad_core.data.manifest`).

Phantoms and real scans take the same road: each source builds :class:`PreparedScan` objects, the
patient-level split is assigned with :func:`assign_splits`, and :func:`write_prepared` writes the
manifest, the volumes (NIfTI) and the 2D slice set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctad_core.data.manifest import MANIFEST_COLUMNS, SliceSet, save_slices, write_manifest
from ctad_core.data.nifti import save_nifti
from ctad_core.utils import write_json

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class PreparedScan:
    """One preprocessed scan ready to be written.

    Attributes:
        scan_id: unique, file-name safe, free of patient identifiers.
        patient_id: pseudonymous patient key (the split is by patient).
        kind: ``"healthy"`` or lesion kinds joined by ``"+"``.
        label: 0 healthy, 1 abnormal (scan level).
        source: ``phantom``, ``rsna``, ``cq500``, ``physionet`` or ``folder``.
        volume: (D, H, W) float32 HU at the 3D model shape.
        affine: 4×4, (z, y, x) indices → RAS+ mm, of ``volume``.
        brain: (D, H, W) uint8 brain mask.
        lesion: (D, H, W) uint8 lesion label map, or None when no voxel mask exists.
        slices: (K, h, w) float32 HU, the 2D slices of this scan (mid-axial selection).
        slice_brain: (K, h, w) uint8.
        slice_lesion: (K, h, w) uint8, or None.
        slice_index: (K,) index of each slice in the source scan.
        slice_label: (K,) int8: 1 abnormal, 0 normal, -1 unknown.
        extra: further label columns for the manifest (e.g. per-finding labels of a dataset).
    """

    scan_id: str
    patient_id: str
    kind: str
    label: int
    source: str
    volume: np.ndarray
    affine: np.ndarray
    brain: np.ndarray
    lesion: np.ndarray | None
    slices: np.ndarray
    slice_brain: np.ndarray
    slice_lesion: np.ndarray | None
    slice_index: np.ndarray
    slice_label: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _SAFE_ID.match(self.scan_id):
            raise ValueError(f"scan_id {self.scan_id!r} must be file-name safe ([A-Za-z0-9_.-])")
        if self.volume.ndim != 3:
            raise ValueError(f"{self.scan_id}: volume must be (D, H, W), got {self.volume.shape}")
        for name in ("brain", "lesion"):
            a = getattr(self, name)
            if a is not None and a.shape != self.volume.shape:
                raise ValueError(f"{self.scan_id}: {name} shape {a.shape} != volume shape {self.volume.shape}")
        if self.slices.ndim != 3:
            raise ValueError(f"{self.scan_id}: slices must be (K, h, w), got {self.slices.shape}")
        for name in ("slice_brain", "slice_lesion"):
            a = getattr(self, name)
            if a is not None and a.shape != self.slices.shape:
                raise ValueError(f"{self.scan_id}: {name} shape {a.shape} != slices shape {self.slices.shape}")
        if not np.isfinite(self.volume).all() or not np.isfinite(self.slices).all():
            raise ValueError(f"{self.scan_id}: volume or slices contain NaN/inf")


def assign_splits(
    patients: Sequence[str],
    abnormal: Sequence[bool],
    fractions: tuple[float, float, float] = (0.6, 0.15, 0.25),
    seed: int = 0,
    stratify: Sequence[str] | None = None,
) -> dict[str, str]:
    """Split patients into train/val/test; abnormal patients never go to train.

    Healthy patients are divided by ``fractions`` (train, val, test); abnormal patients go to val and
    test in the ratio of the last two fractions, stratified by ``stratify`` (e.g. lesion kind) when given.

    Args:
        patients: patient id per scan (repeats allowed; a patient is abnormal if any scan is).
        abnormal: per scan, whether it is abnormal.
        fractions: (train, val, test) fractions for healthy patients; must sum to 1.
        seed: shuffling seed.
        stratify: per scan, a group key for abnormal patients (first scan's key is used).

    Returns:
        ``{patient_id: split}``.
    """
    if len(patients) != len(abnormal):
        raise ValueError(f"patients ({len(patients)}) and abnormal ({len(abnormal)}) differ in length")
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    is_abn: dict[str, bool] = {}
    group: dict[str, str] = {}
    for i, p in enumerate(patients):
        is_abn[p] = is_abn.get(p, False) or bool(abnormal[i])
        if stratify is not None and p not in group:
            group[p] = str(stratify[i])
    healthy = sorted(p for p, a in is_abn.items() if not a)
    sick = sorted(p for p, a in is_abn.items() if a)
    out: dict[str, str] = {}
    rng.shuffle(healthy)
    n = len(healthy)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    for i, p in enumerate(healthy):
        out[p] = "train" if i < n_train else ("val" if i < n_train + n_val else "test")
    val_share = fractions[1] / max(fractions[1] + fractions[2], 1e-12)
    by_group: dict[str, list[str]] = {}
    for p in sick:
        by_group.setdefault(group.get(p, ""), []).append(p)
    for _, members in sorted(by_group.items()):
        rng.shuffle(members)
        k = int(round(val_share * len(members)))
        for i, p in enumerate(members):
            out[p] = "val" if i < k else "test"
    return out


#: The keys every ``config.json`` holds, phantoms and real scans alike (source-specific extras go under
#: ``details``).
CONFIG_KEYS = (
    "source", "window", "window_name", "shape_3d", "spacing_3d", "size_2d", "spacing_2d", "slices_2d",
    "kinds", "lesion_codes", "skull_stripped", "aligned", "seed", "details",
)


def data_config(
    source: str,
    window: str | Sequence[float],
    shape_3d: Sequence[int],
    size_2d: int,
    slices_2d: int,
    *,
    skull_stripped: bool,
    aligned: bool,
    seed: int | None = None,
    spacing_3d: Sequence[float] | None = None,
    spacing_2d: Sequence[float] | None = None,
    kinds: Sequence[str] | None = None,
    **details: Any,
) -> dict[str, Any]:
    """The one schema of ``data/config.json`` (:data:`CONFIG_KEYS`), for phantoms and real scans.

    Args:
        source: ``phantom``, ``rsna``, ``cq500``, ``physionet`` or ``folder``.
        window: the models' window, a preset name or (lower, upper) HU; recorded as [lower, upper] HU with
            ``window_name``.
        shape_3d: (D, H, W) of the prepared volumes; size_2d, slices_2d: the 2D set's side and slices per scan.
        skull_stripped, aligned: how the volumes were prepared.
        seed: the preparation's seed (splits, phantoms), or None.
        spacing_3d, spacing_2d: voxel / pixel spacing in mm when one spacing holds for every scan (phantoms),
            else None.
        kinds: the lesion kinds the data may hold (default: every kind of :mod:`ctad_core.kinds`).
        details: source-specific, JSON-able extras (phantom variants, preprocessing parameters, skipped scans).

    Raises:
        ValueError: for a window whose upper bound does not exceed its lower bound.
    """
    from ctad_core.data.windows import window_bounds
    from ctad_core.kinds import LESION_CODES, LESION_KINDS

    lo, hi = window_bounds(window)
    return {
        "source": source,
        "window": [lo, hi],
        "window_name": window if isinstance(window, str) else None,
        "shape_3d": [int(v) for v in shape_3d],
        "spacing_3d": None if spacing_3d is None else [float(v) for v in spacing_3d],
        "size_2d": int(size_2d),
        "spacing_2d": None if spacing_2d is None else [float(v) for v in spacing_2d],
        "slices_2d": int(slices_2d),
        "kinds": list(kinds) if kinds is not None else list(LESION_KINDS),
        "lesion_codes": dict(LESION_CODES),
        "skull_stripped": bool(skull_stripped),
        "aligned": bool(aligned),
        "seed": seed,
        "details": dict(details),
    }


def write_prepared(
    data_dir: str | os.PathLike,
    scans: Iterable[PreparedScan],
    splits: dict[str, str],
    config: dict[str, Any],
) -> pd.DataFrame:
    """Write manifest, volumes and slice set for ``scans`` under ``data_dir``.

    Args:
        data_dir: ``run_dir/data``.
        scans: the prepared scans (consumed once; volumes are written as they come).
        splits: ``{patient_id: split}`` from :func:`assign_splits`.
        config: preparation settings recorded in ``config.json``, built by :func:`data_config`.

    Returns:
        The manifest as written.

    Raises:
        ValueError: if ``config`` misses keys of :data:`CONFIG_KEYS` (names them).
    """
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"config.json must hold {missing}: build it with data_config()")
    data_dir = Path(data_dir)
    vol_dir = data_dir / "volumes"
    vol_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    parts: dict[str, list[np.ndarray]] = {k: [] for k in SliceSet.__dataclass_fields__}
    for s in scans:
        if s.patient_id not in splits:
            raise KeyError(f"patient {s.patient_id!r} of scan {s.scan_id} has no split")
        split = splits[s.patient_id]
        save_nifti(vol_dir / f"{s.scan_id}.nii.gz", s.volume.astype(np.float32), s.affine)
        save_nifti(vol_dir / f"{s.scan_id}_brain.nii.gz", s.brain.astype(np.uint8), s.affine)
        lesion_rel = ""
        if s.lesion is not None:
            save_nifti(vol_dir / f"{s.scan_id}_lesion.nii.gz", s.lesion.astype(np.uint8), s.affine)
            lesion_rel = f"volumes/{s.scan_id}_lesion.nii.gz"
        rows.append(
            {
                "scan_id": s.scan_id,
                "patient_id": s.patient_id,
                "split": split,
                "label": int(s.label),
                "kind": s.kind,
                "source": s.source,
                "image": f"volumes/{s.scan_id}.nii.gz",
                "lesion_mask": lesion_rel,
                "brain_mask": f"volumes/{s.scan_id}_brain.nii.gz",
                **s.extra,
            }
        )
        k = s.slices.shape[0]
        parts["image"].append(s.slices.astype(np.float32))
        parts["brain"].append(s.slice_brain.astype(np.uint8))
        parts["lesion"].append(
            s.slice_lesion.astype(np.uint8) if s.slice_lesion is not None else np.zeros(s.slices.shape, np.uint8)
        )
        parts["scan_id"].append(np.full(k, s.scan_id))
        parts["slice_index"].append(np.asarray(s.slice_index, dtype=np.int32))
        parts["split"].append(np.full(k, split))
        parts["kind"].append(np.full(k, s.kind))
        parts["slice_label"].append(np.asarray(s.slice_label, dtype=np.int8))
    if not rows:
        raise ValueError("no scans to write")
    df = pd.DataFrame(rows)
    df = df[MANIFEST_COLUMNS + [c for c in df.columns if c not in MANIFEST_COLUMNS]]
    write_manifest(df, data_dir)
    shapes = {p.shape[1:] for p in parts["image"]}
    if len(shapes) != 1:
        raise ValueError(f"2D slices of different shapes {sorted(shapes)}: preprocess to one size first")
    slices = SliceSet(**{k: np.concatenate(v) for k, v in parts.items()})
    slices.scan_id = slices.scan_id.astype(str)
    slices.split = slices.split.astype(str)
    slices.kind = slices.kind.astype(str)
    save_slices(data_dir / "slices.npz", slices)
    write_json(data_dir / "config.json", config)
    return df
