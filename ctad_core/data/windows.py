"""CT windows and the one place where HU become model intensities.

Every model in the workbook sees ``to_model(hu, window)`` in [-1, 1]; every figure that shows a
reconstruction converts back with ``from_model``.
"""

from __future__ import annotations

import numpy as np
import torch

#: Named windows as (lower, upper) HU. Level/width presets from REFERENCE.md.
WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (0.0, 80.0),  # L40 / W80
    "subdural": (-32.5, 182.5),  # L75 / W215
    "bone": (-800.0, 2000.0),  # L600 / W2800
    "stroke": (12.0, 52.0),  # L32 / W40 (W8-40 in use; the wide end)
    "ctfsh": (0.0, 100.0),  # CTFSH (seed 002): L50 / W100
    "viana": (-20.0, 100.0),  # Viana et al. (seed 001): [-20, 100] then min-max to [-1, 1]
    "physionet": (-20.0, 100.0),  # PhysioNet annotations were drawn at L40 / W120
    "walluscheck": (0.0, 80.0),  # seed 000 works on brain-window slices
}


def window_bounds(window: str | tuple[float, float] | list[float]) -> tuple[float, float]:
    """Return ``(lower, upper)`` HU for a preset name or an explicit pair.

    Raises:
        ValueError: for an unknown name or an empty interval.
    """
    if isinstance(window, str):
        key = window.lower()
        if key not in WINDOWS:
            raise ValueError(f"unknown window {window!r}; presets: {sorted(WINDOWS)} or a (lower, upper) pair")
        lo, hi = WINDOWS[key]
    else:
        if len(window) != 2:
            raise ValueError(f"a window is (lower, upper) HU, got {window!r}")
        lo, hi = float(window[0]), float(window[1])
    if not hi > lo:
        raise ValueError(f"window upper bound must exceed lower bound, got ({lo}, {hi})")
    return float(lo), float(hi)


def to_model(hu, window: str | tuple[float, float] = "brain"):
    """Clip HU to the window and scale linearly to [-1, 1].

    Args:
        hu: NumPy array or torch tensor of HU, any shape.
        window: preset name or (lower, upper).

    Returns:
        Same type and shape, float32, in [-1, 1].
    """
    lo, hi = window_bounds(window)
    if isinstance(hu, torch.Tensor):
        return ((hu.float().clamp(lo, hi) - lo) / (hi - lo)) * 2.0 - 1.0
    return (((np.clip(np.asarray(hu, dtype=np.float32), lo, hi) - lo) / (hi - lo)) * 2.0 - 1.0).astype(np.float32)


def from_model(x, window: str | tuple[float, float] = "brain"):
    """Inverse of :func:`to_model` (inside the window): [-1, 1] back to HU."""
    lo, hi = window_bounds(window)
    if isinstance(x, torch.Tensor):
        return (x.float() + 1.0) / 2.0 * (hi - lo) + lo
    return ((np.asarray(x, dtype=np.float32) + 1.0) / 2.0 * (hi - lo) + lo).astype(np.float32)


def to_display(hu, window: str | tuple[float, float] = "brain") -> np.ndarray:
    """HU to [0, 1] for display (``imshow(..., vmin=0, vmax=1)``)."""
    lo, hi = window_bounds(window)
    return ((np.clip(np.asarray(hu, dtype=np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)
