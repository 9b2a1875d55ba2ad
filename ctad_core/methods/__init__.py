"""One call per method for the notebook and the CLI: load the run's volumes, train, score, write.

Writes under ``run_dir/volumetric/``::

    models/<name>.pt               trained networks + config + loss history (+ F-score Gaussian)
    models/<name>/<phase>.pt       phase checkpoints (resume)
    methods/<name>.npz / .json     MethodResults for notebook 07 (level "3d")
    maps/<name>/<scan_id>.nii.gz   voxel anomaly maps, aligned with data/volumes/<scan_id>.nii.gz
    scores.csv                     per-scan scores of every method (written by :func:`write_summary`)
    summary.json                   per-method test metrics
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctad_core import distributed as ddp
from ctad_core.data.manifest import VolumeSet, load_volumes
from ctad_core.utils import write_json
from ctad_core.volumetric.data import EvalItems, downsample, model_volumes
from ctad_core.volumetric.evaluation import (
    ScoredMethod,
    compare_2d_3d,
    score_method,
    write_method,
    write_scores_csv,
)
from ctad_core.volumetric.methods import MethodSpec, method_spec
from ctad_core.volumetric.training import TrainedMethod, train_method


class VolumeCache:
    """The run's train and val/test volumes, loaded once (HU), with model inputs cached per preparation."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.train: VolumeSet = load_volumes(self.run_dir, "train")
        self.eval: VolumeSet = load_volumes(self.run_dir, ("val", "test"))
        if len(self.train) == 0:
            raise ValueError(f"{self.run_dir}/data has no training volumes")
        self._x: dict[tuple, np.ndarray] = {}
        self._items: dict[tuple, EvalItems] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        """(D, H, W) of the prepared volumes (set by notebook 01's profile)."""
        return tuple(int(s) for s in self.train.image.shape[1:])  # type: ignore[return-value]

    def _key(self, spec: MethodSpec) -> tuple:
        return (str(spec.window), bool(spec.skull_strip))

    def train_x(self, spec: MethodSpec) -> np.ndarray:
        """(N, D, H, W) training inputs for ``spec`` in [-1, 1] (average-pooled if ``spec.downsample`` > 1)."""
        k = self._key(spec)
        if k not in self._x:
            self._x[k] = model_volumes(self.train, spec.window, spec.skull_strip)
        return downsample(self._x[k], spec.downsample)

    def items(self, spec: MethodSpec) -> EvalItems:
        """Val + test volumes prepared for ``spec``."""
        k = self._key(spec)
        if k not in self._items:
            self._items[k] = EvalItems.from_volumes(self.eval, spec.window, spec.skull_strip)
        return self._items[k]


def run_method(
    name: str,
    cache: VolumeCache,
    params: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    nifti_splits: tuple[str, ...] = ("test",),
) -> tuple[TrainedMethod, ScoredMethod]:
    """Train (or reload) one method, score val + test, and write its results under ``run_dir/volumetric``.

    Args:
        name: method name (:mod:`ctad_core.volumetric.methods`).
        cache: the run's volumes.
        params: flat notebook parameters.
        device: resolved torch device.
        seed: the run's seed.
        resume: reuse a finished model / resume phase checkpoints.
        progress: tqdm bars.
        nifti_splits: splits whose voxel maps are also written as NIfTI.

    Returns:
        (trained method, evaluation).
    """
    out = cache.run_dir / "volumetric"
    spec = method_spec(name, cache.shape, params)
    device = torch.device(device)
    tm = train_method(
        spec, cache.train_x(spec), out, device=device, seed=seed, resume=resume, progress=progress
    )
    batch = int((params or {}).get("eval_batch_size", 4))
    ev = score_method(tm, cache.items(spec), device=device, batch_size=batch, progress=progress)
    write_method(out, ev, cache.items(spec), nifti_splits)
    return tm, ev


def write_summary(run_dir: str | os.PathLike, evals: list[ScoredMethod]) -> dict[str, Any]:
    """Write ``scores.csv`` and ``summary.json`` (per-method test metrics, 2D-vs-3D comparison)."""
    out = Path(run_dir) / "volumetric"
    write_scores_csv(out, evals)
    by = {ev.name: ev for ev in evals}
    keys = (
        "auroc",
        "auprc",
        "auroc_per_kind",
        "auroc_F",
        "auroc_F_per_kind",
        "youden",
        "seconds_per_scan",
        "train_seconds",
        "slice_auc",
        "slice_auprc",
        "slice_sensitivity",
        "dice_test_pooled",
        "dice_test_mean",
        "n_test",
        "n_test_lesioned",
        "device",
    )
    summary: dict[str, Any] = {
        "methods": {n: {k: ev.results.info[k] for k in keys if k in ev.results.info} for n, ev in by.items()}
    }
    if "fanogan3d" in by and "fanogan2d" in by:
        summary["fanogan_2d_vs_3d"] = compare_2d_3d(by["fanogan3d"], by["fanogan2d"])
    if ddp.is_main():
        write_json(out / "summary.json", summary)
    return summary
