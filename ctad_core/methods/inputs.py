"""Model inputs of the 3D-data methods (seeds 001, 002, 004): windowing, skull stripping, mid-axial slices,
and the run's volumes loaded once per process (:class:`VolumeCache`).

Volumes arrive as HU (``load_volumes``); the model range [-1, 1] comes only from
:func:`ctad_core.data.windows.to_model`. Skull stripping (CTFSH's "StripAE", Viana's and Luo's inputs) keeps
the voxels of the brain mask that ships with the data and sets everything else to the window's lower bound
(-1 in the model range).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ctad_core.data.manifest import VolumeSet
from ctad_core.data.masks import HEAD_HU, head_mask
from ctad_core.data.windows import to_model

if TYPE_CHECKING:
    from ctad_core.methods.spec import MethodSpec
    from ctad_core.run import Run


def model_volumes(vs: VolumeSet, window: str | tuple[float, float], skull_strip: bool) -> np.ndarray:
    """Window HU volumes to [-1, 1], optionally skull-stripped.

    Args:
        vs: volumes (N, D, H, W) in HU with brain masks.
        window: window preset or (lower, upper) HU.
        skull_strip: keep only the brain mask; the rest becomes the window's lower bound (-1).

    Returns:
        (N, D, H, W) float32 in [-1, 1].

    Raises:
        ValueError: if a volume holds NaNs (names the scan).
    """
    bad = [str(s) for s, v in zip(vs.scan_id, vs.image) if not np.isfinite(v).all()]
    if bad:
        raise ValueError(f"volumes with NaN/inf voxels: {bad[:5]}")
    x = to_model(vs.image, window)
    if skull_strip:
        x = np.where(vs.brain > 0, x, np.float32(-1.0)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool (N, D, H, W) volumes by an integer factor (Viana's 64³ from 128³ data).

    Raises:
        ValueError: if a side is not divisible by ``factor``.
    """
    if factor == 1:
        return x
    if any(s % factor for s in x.shape[1:]):
        raise ValueError(f"volume shape {x.shape[1:]} is not divisible by the downsampling factor {factor}")
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
    return F.avg_pool3d(t, factor).squeeze(1).numpy()


def upsample(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Trilinear resampling of (N, d, h, w) volumes back to (N, *shape) (a no-op at the same shape)."""
    if tuple(x.shape[1:]) == tuple(shape):
        return x
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
    return F.interpolate(t, size=tuple(shape), mode="trilinear", align_corners=False).squeeze(1).numpy()


def mid_axial_range(depth: int, fraction: float) -> tuple[int, int]:
    """The central ``fraction`` of ``depth`` axial slices as ``(start, stop)`` (at least one slice)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"mid-axial fraction must be in (0, 1], got {fraction}")
    k = max(1, int(round(depth * fraction)))
    start = (depth - k) // 2
    return start, start + k


def axial_slices(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    """(N, D, H, W) → (N·(stop−start), H, W): slices ``start:stop`` of every volume, volume-major."""
    return np.ascontiguousarray(x[:, start:stop].reshape(-1, *x.shape[2:]))


@dataclass
class EvalItems:
    """What evaluation needs of the val/test volumes (a view on a :class:`VolumeSet`)."""

    x: np.ndarray  # (N, D, H, W) model range
    lesion: np.ndarray  # (N, D, H, W) uint8
    brain: np.ndarray  # (N, D, H, W) uint8
    scan_id: np.ndarray
    split: np.ndarray
    kind: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    head: np.ndarray | None = None  # (N, D, H, W) uint8 head mask (data.masks.head_mask), full-head only

    @classmethod
    def from_volumes(
        cls, vs: VolumeSet, window: str | tuple[float, float], skull_strip: bool, head: np.ndarray | None = None
    ) -> EvalItems:
        """The items of ``vs`` prepared for a method (``head``: ``vs``'s head mask if already computed)."""
        if not skull_strip and head is None:
            head = head_mask(vs.image, HEAD_HU)
        return cls(
            x=model_volumes(vs, window, skull_strip),
            lesion=vs.lesion,
            brain=vs.brain,
            scan_id=vs.scan_id,
            split=vs.split,
            kind=vs.kind,
            label=vs.label,
            affine=vs.affine,
            head=None if skull_strip else head,
        )

    def eval_mask(self, skull_strip: bool) -> np.ndarray:
        """Where a method's maps are evaluated: the brain for skull-stripped inputs, else the whole head."""
        if skull_strip or self.head is None:
            return self.brain
        return np.maximum(self.head, self.brain)

    def __len__(self) -> int:
        return int(self.x.shape[0])


class VolumeCache:
    """A run's train and val/test volumes, loaded once (HU), with model inputs cached per preparation.

    A preparation is a (window, skull strip) pair; methods of one folder share one. Only the ``max_prepared``
    most recent preparations are kept: at the ``gpu`` profile (200 training volumes of 128³) each costs
    ~1.7 GB of training inputs plus the val/test items, and notebook 05's 16 methods use four. The head mask of
    the val/test volumes (one byte per voxel, a quarter of one preparation's val/test inputs) is kept for the
    cache's life, evictions included: every full-head preparation shares it and it is computed once.

    Args:
        run: the run whose ``data`` stage holds the volumes.
        max_prepared: preparations kept in memory (the oldest is dropped first).

    Raises:
        ValueError: naming the data folder when it holds no training volumes.
    """

    def __init__(self, run: Run, max_prepared: int = 2) -> None:
        self.run = run
        self.max_prepared = max(1, int(max_prepared))
        self.train: VolumeSet = run.volumes("train")
        self.eval: VolumeSet = run.volumes(("val", "test"))
        if len(self.train) == 0:
            raise ValueError(f"{run.data} has no training volumes")
        self._x: dict[tuple, np.ndarray] = {}
        self._items: dict[tuple, EvalItems] = {}
        self._head: np.ndarray | None = None

    @classmethod
    def of(cls, run: Run) -> VolumeCache:
        """The run's cache, created on first use and kept in ``run.cache`` for the process."""
        if "volumes" not in run.cache:
            run.cache["volumes"] = cls(run)
        return run.cache["volumes"]

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
            self._evict(self._x)
            self._x[k] = model_volumes(self.train, spec.window, spec.skull_strip)
        return downsample(self._x[k], spec.downsample)

    def items(self, spec: MethodSpec) -> EvalItems:
        """Val + test volumes prepared for ``spec``."""
        k = self._key(spec)
        if k not in self._items:
            self._evict(self._items)
            if not spec.skull_strip and self._head is None:  # the same for every full-head preparation
                self._head = head_mask(self.eval.image, HEAD_HU)
            self._items[k] = EvalItems.from_volumes(self.eval, spec.window, spec.skull_strip, self._head)
        return self._items[k]

    def _evict(self, cache: dict) -> None:
        while len(cache) >= self.max_prepared:
            cache.pop(next(iter(cache)))
