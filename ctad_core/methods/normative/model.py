"""Voxel-wise normative model: per-voxel median and spread of healthy scans in atlas space.

The classical normative-modelling baseline (voxel-based z-scores; cf. Marquand et al. 2016, "Understanding
heterogeneity in clinical cohorts using normative models"): with the scans aligned (the phantoms are; real
scans through the preprocessing's atlas alignment), each voxel's healthy intensity has a centre and a spread.
A new scan's deviation is z = (x − median) / spread, with robust statistics: median and the normalised
median absolute deviation, σ̂ = 1.4826·MAD (equals σ for Gaussian data). The spread is floored (``floor``)
so that voxels that never vary in training (air) do not produce infinite z.

Maps: ``hyper`` = max(z, 0) (haemorrhage), ``hypo`` = max(−z, 0), ``abs`` = |z|.

>>> import numpy as np
>>> train = np.array([[0.0, 1.0], [0.2, 1.0], [0.4, 1.0]])  # 3 scans of 2 voxels
>>> nm = NormativeModel.fit(train, floor=0.01)
>>> [round(float(m), 4) for m in nm.median], [round(float(s), 4) for s in nm.spread]
([0.2, 1.0], [0.2965, 0.01])
>>> [round(float(v), 3) for v in nm.score(np.array([[0.8, 1.02]]), "hyper")[0]]
[2.023, 2.0]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctad_core.utils import save_npz

#: The normalised MAD: 1.4826·MAD estimates σ for Gaussian data (1 / Φ⁻¹(3/4)).
MAD_TO_SD = 1.482602218505602
MODES = ("hyper", "hypo", "abs")


@dataclass
class NormativeModel:
    """Per-voxel robust centre and spread.

    Attributes:
        median: (...) float32 voxel-wise median of the training scans.
        spread: (...) float32 voxel-wise 1.4826·MAD, at least ``floor``.
        floor: the spread's lower bound (model-range units).
        n_train: training scans.
    """

    median: np.ndarray
    spread: np.ndarray
    floor: float
    n_train: int

    @classmethod
    def fit(cls, train: np.ndarray, floor: float = 0.02, chunk: int = 1 << 22) -> NormativeModel:
        """Fit on (N, ...) aligned healthy scans (model range).

        Args:
            train: (N, ...) with N ≥ 2. floor: spread floor (default 0.02 of the [-1, 1] range ≈ 1 % of the
                window, about the phantoms' noise at the quick grid). chunk: voxels per pass (memory).

        Raises:
            ValueError: fewer than 2 scans, non-finite values, or floor ≤ 0.
        """
        train = np.asarray(train, dtype=np.float32)
        if train.ndim < 2 or len(train) < 2:
            raise ValueError(f"need at least 2 training scans of shape (N, ...), got {train.shape}")
        if not np.isfinite(train).all():
            raise ValueError("training scans contain NaN or infinite values")
        if floor <= 0:
            raise ValueError(f"floor must be > 0, got {floor}")
        flat = train.reshape(len(train), -1)
        med = np.empty(flat.shape[1], np.float32)
        mad = np.empty(flat.shape[1], np.float32)
        for s in range(0, flat.shape[1], chunk):
            block = flat[:, s : s + chunk]
            m = np.median(block, axis=0)
            med[s : s + chunk] = m
            mad[s : s + chunk] = np.median(np.abs(block - m), axis=0)
        spread = np.maximum(MAD_TO_SD * mad, floor).astype(np.float32)
        shape = train.shape[1:]
        return cls(med.reshape(shape), spread.reshape(shape), float(floor), int(len(train)))

    def deviation(self, x: np.ndarray) -> np.ndarray:
        """(N, ...) signed deviations z = (x − median) / spread of scans ``x`` (same grid as training).

        Raises:
            ValueError: grid mismatch.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.median.shape:
            raise ValueError(f"scans of shape {x.shape[1:]} do not match the model's grid {self.median.shape}")
        return (x - self.median) / self.spread

    def score(self, x: np.ndarray, mode: str = "hyper") -> np.ndarray:
        """(N, ...) deviation maps of scans ``x`` (same grid as training).

        Raises:
            ValueError: unknown mode or grid mismatch.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        z = self.deviation(x)
        if mode == "hyper":
            return np.maximum(z, 0.0)
        if mode == "hypo":
            return np.maximum(-z, 0.0)
        return np.abs(z)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model atomically as ``.npz``."""
        return save_npz(path, median=self.median, spread=self.spread, floor=np.float64(self.floor),
                        n_train=np.int64(self.n_train))

    @classmethod
    def load(cls, path: str | os.PathLike) -> NormativeModel:
        """Read a model written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            return cls(z["median"], z["spread"], float(z["floor"]), int(z["n_train"]))
