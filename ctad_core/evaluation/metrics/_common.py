"""Shared conventions of :mod:`ctad_core.evaluation.metrics` (see its docstring): warnings and input checks."""

from __future__ import annotations

import warnings

import numpy as np


class MetricWarning(UserWarning):
    """A metric was undefined for its input (e.g. only one class) and ``nan`` was returned."""


def _warn(msg: str) -> None:
    warnings.warn(msg, MetricWarning, stacklevel=3)


def _same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; they must match")


def _flat_scores(
    scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten (scores, labels) to 1-D float64 / bool, keeping only ``mask`` pixels; check shapes and NaNs."""
    s = np.asarray(scores)
    y = np.asarray(labels)
    _same_shape(s, y, "scores", "labels")
    if mask is not None:
        m = np.asarray(mask)
        _same_shape(s, m, "scores", "mask")
        sel = m != 0
        s, y = s[sel], y[sel]
    s = s.astype(np.float64, copy=False).ravel()
    y = (y != 0).ravel()
    if np.isnan(s).any():
        raise ValueError(f"scores contain {int(np.isnan(s).sum())} NaN values")
    return s, y
