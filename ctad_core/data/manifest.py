"""The manifest and the prepared data under ``run_dir/data/``: the contract between notebook 01 and the rest.

Layout written by notebook 01 (phantoms or real scans alike)::

    data/manifest.csv        one row per scan (columns: MANIFEST_COLUMNS, then any extra label columns)
    data/config.json         how the data were prepared (window, shapes, spacings, source, skull_stripped…)
    data/volumes/<id>.nii.gz         preprocessed volume at the 3D model shape, float32 HU, affine kept
    data/volumes/<id>_lesion.nii.gz  lesion label map (uint8, 0 = none; LESION_CODES), if known
    data/volumes/<id>_brain.nii.gz   brain mask (uint8)
    data/slices.npz          the 2D set: image (N,H,W) HU float32, lesion (N,H,W) uint8, brain (N,H,W) uint8,
                             scan_id (N,), slice_index (N,), split (N,), kind (N,), slice_label (N,) int8
                             (1 abnormal, 0 normal, -1 unknown)

Splits are by patient: ``train`` holds healthy scans only, ``val`` and ``test`` hold both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ctad_core.data.nifti import load_nifti
from ctad_core.utils import read_json

MANIFEST_COLUMNS = [
    "scan_id",  # unique, file-name safe, no patient identifiers
    "patient_id",  # pseudonymous; the split is by this column
    "split",  # train | val | test
    "label",  # 0 healthy, 1 any abnormality (scan level)
    "kind",  # "healthy" or lesion kinds joined by "+", e.g. "iph" or "sdh+frac"
    "source",  # phantom | rsna | cq500 | physionet | folder
    "image",  # path relative to data/: preprocessed volume NIfTI (HU)
    "lesion_mask",  # relative path or "" when no voxel mask exists
    "brain_mask",  # relative path or ""
]
SPLITS = ("train", "val", "test")


def write_manifest(df: pd.DataFrame, data_dir: str | os.PathLike) -> Path:
    """Validate and write ``manifest.csv`` atomically.

    Raises:
        ValueError: if required columns are missing, ids repeat, a split is unknown, a patient spans
            two splits, or the training split holds an abnormal scan.
    """
    validate_manifest(df)
    from ctad_core.utils import atomic_write

    path = Path(data_dir) / "manifest.csv"
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def validate_manifest(df: pd.DataFrame) -> None:
    """Check the manifest contract (see module docstring); raise ``ValueError`` naming the problem."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"manifest lacks columns {missing}")
    if df["scan_id"].duplicated().any():
        raise ValueError(f"manifest has duplicated scan ids: {df.loc[df.scan_id.duplicated(), 'scan_id'].tolist()[:5]}")
    bad = sorted(set(df["split"]) - set(SPLITS))
    if bad:
        raise ValueError(f"manifest has unknown splits {bad}; allowed {SPLITS}")
    per_patient = df.groupby("patient_id")["split"].nunique()
    if (per_patient > 1).any():
        raise ValueError(f"patients in more than one split: {per_patient[per_patient > 1].index.tolist()[:5]}")
    abnormal_train = df[(df.split == "train") & (df.label.astype(int) != 0)]
    if len(abnormal_train):
        raise ValueError(f"training split must be healthy only; abnormal: {abnormal_train.scan_id.tolist()[:5]}")


def read_manifest(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Read ``run_dir/data/manifest.csv`` (strings kept as strings, empty paths as "")."""
    path = Path(run_dir) / "data" / "manifest.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run notebook 01_data_prep first for this run_dir")
    df = pd.read_csv(path, dtype={"scan_id": str, "patient_id": str}, keep_default_na=False)
    df["label"] = df["label"].astype(int)
    return df


def read_config(run_dir: str | os.PathLike) -> dict:
    """Read ``run_dir/data/config.json``."""
    return read_json(Path(run_dir) / "data" / "config.json")


@dataclass
class SliceSet:
    """The 2D slice set. Arrays are (N, H, W); ``image`` in HU."""

    image: np.ndarray
    lesion: np.ndarray
    brain: np.ndarray
    scan_id: np.ndarray
    slice_index: np.ndarray
    split: np.ndarray
    kind: np.ndarray
    slice_label: np.ndarray

    def subset(self, mask: np.ndarray) -> SliceSet:
        """Rows where ``mask`` (bool (N,)) is true."""
        return SliceSet(**{k: getattr(self, k)[mask] for k in self.__dataclass_fields__})

    def where(self, split: str | None = None) -> SliceSet:
        """Rows of one split (all rows when ``split`` is None)."""
        return self if split is None else self.subset(self.split == split)

    def __len__(self) -> int:
        return int(self.image.shape[0])


def save_slices(path: str | os.PathLike, s: SliceSet) -> Path:
    """Atomically write a :class:`SliceSet` as ``.npz``."""
    from ctad_core.utils import save_npz

    return save_npz(path, **{k: getattr(s, k) for k in s.__dataclass_fields__})


def load_slices(run_dir: str | os.PathLike, split: str | None = None) -> SliceSet:
    """Load ``run_dir/data/slices.npz`` (optionally one split)."""
    path = Path(run_dir) / "data" / "slices.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run notebook 01_data_prep first for this run_dir")
    with np.load(path, allow_pickle=False) as z:
        s = SliceSet(**{k: z[k] for k in SliceSet.__dataclass_fields__})
    return s.where(split)


@dataclass
class VolumeSet:
    """Preprocessed 3D volumes of some scans. Arrays are (N, D, H, W); ``image`` in HU."""

    image: np.ndarray
    lesion: np.ndarray
    brain: np.ndarray
    scan_id: np.ndarray
    split: np.ndarray
    kind: np.ndarray
    label: np.ndarray
    affine: np.ndarray  # (N, 4, 4)

    def __len__(self) -> int:
        return int(self.image.shape[0])


def load_volumes(run_dir: str | os.PathLike, splits: str | tuple[str, ...] | None = None) -> VolumeSet:
    """Load the preprocessed volumes of the manifest's scans (optionally only some splits).

    Missing lesion or brain masks load as zeros / ones respectively.
    """
    run_dir = Path(run_dir)
    df = read_manifest(run_dir)
    if splits is not None:
        splits = (splits,) if isinstance(splits, str) else tuple(splits)
        df = df[df.split.isin(splits)]
    data = run_dir / "data"
    imgs, les, brs, affs = [], [], [], []
    for row in df.itertuples():
        arr, aff = load_nifti(data / row.image)
        imgs.append(arr)
        affs.append(aff)
        les.append(load_nifti(data / row.lesion_mask, np.uint8)[0] if row.lesion_mask else np.zeros(arr.shape, np.uint8))
        brs.append(load_nifti(data / row.brain_mask, np.uint8)[0] if row.brain_mask else np.ones(arr.shape, np.uint8))
    stack = (lambda xs, dt: np.stack(xs).astype(dt)) if len(df) else (lambda xs, dt: np.zeros((0, 0, 0, 0), dt))
    return VolumeSet(
        image=stack(imgs, np.float32),
        lesion=stack(les, np.uint8),
        brain=stack(brs, np.uint8),
        scan_id=df.scan_id.to_numpy(dtype=str),
        split=df.split.to_numpy(dtype=str),
        kind=df.kind.to_numpy(dtype=str),
        label=df.label.to_numpy(dtype=np.int64),
        affine=np.stack(affs) if affs else np.zeros((0, 4, 4)),
    )
