"""Intensity baseline: the windowed image itself as the anomaly map (Meissen et al. 2021).

Meissen, Kaissis & Rueckert, "Challenging current semi-supervised anomaly segmentation methods for brain
MRI" (BrainLes 2021) showed that thresholding the (FLAIR) intensity inside the brain beats most deep
reconstruction methods. For head CT the analogue is the windowed HU: acute blood, calcified or dense lesions
are hyperdense, infarcts and oedema hypodense. No training.

>>> import numpy as np
>>> x = np.array([[-1.0, 0.0, 0.5, 1.0]])
>>> intensity_map(x, np.array([[1, 1, 1, 0]]), "hyper").tolist()
[[0.0, 1.0, 1.5, 0.0]]
>>> intensity_map(x, None, "hypo").tolist()
[[2.0, 1.0, 0.5, 0.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ctad_core.methods.base import Family, NoTraining, top_fraction_postprocess
from ctad_core.methods.spec import MethodSpec, window_param

#: ``hyper``: brighter is more anomalous (haemorrhage); ``hypo``: darker is (infarct, oedema).
POLARITIES = ("hyper", "hypo")


def intensity_map(x: np.ndarray, mask: np.ndarray | None, polarity: str = "hyper") -> np.ndarray:
    """The image as its own anomaly map, zero outside ``mask``.

    Args:
        x: (N, ...) images in model range [-1, 1] (window lower bound → −1).
        mask: (N, ...) evaluation mask or None.
        polarity: ``"hyper"`` → x + 1; ``"hypo"`` → 1 − x (both ≥ 0 on the model range).

    Returns:
        (N, ...) float32 maps.

    Raises:
        ValueError: unknown polarity or mask shape differs.
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    x = np.asarray(x, dtype=np.float32)
    m = x + 1.0 if polarity == "hyper" else 1.0 - x
    if mask is not None:
        if np.shape(mask) != x.shape:
            raise ValueError(f"mask {np.shape(mask)} and images {x.shape} differ in shape")
        m = np.where(np.asarray(mask) != 0, m, 0.0).astype(np.float32)
    return m


# ------------------------------------------------------------------------------ the registered methods
#
# ``intensity`` / ``intensity2d`` (hyperdense: haemorrhage, calcification) and ``intensity_hypo`` /
# ``intensity_hypo2d`` (hypodense: infarct, oedema); parameter ``intensity_window`` (notebook 05 for the
# volumes, notebook 04 for the slices). Inputs are skull-stripped: the map lives inside the brain.


@dataclass
class IntensityConfig:
    """The intensity baseline's "model": the grid it runs on and its polarity.

    Attributes:
        image_shape: (D, H, W) or (H, W).
        polarity: ``"hyper"`` or ``"hypo"`` (:data:`POLARITIES`).
    """

    image_shape: tuple[int, ...]
    polarity: str = "hyper"

    def to_dict(self) -> dict[str, Any]:
        return {"image_shape": list(self.image_shape), "polarity": self.polarity}


def intensity_spec(name: str, shape: tuple[int, ...], p: dict[str, Any]) -> MethodSpec:
    """``intensity[_hypo][2d]`` from ``intensity_window`` (``shape``: the volumes' or slices' grid)."""
    polarity = "hypo" if "_hypo" in name else "hyper"
    cfg = IntensityConfig(tuple(int(s) for s in shape), polarity)
    return MethodSpec(name, "intensity", cfg, NoTraining(), window_param(p["intensity_window"]), True,
                      amp=False, ckpt_every=1)


def infer(tm: Any, xb: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """The "reconstruction" is the window's bound the map is measured from (−1 hyper, +1 hypo)."""
    bound = -1.0 if tm.spec.model.polarity == "hyper" else 1.0
    rec = torch.full_like(xb, bound)
    return rec, (xb - rec).abs().flatten(1).mean(1), {}


def residual(tm: Any, x: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """The signed map: :func:`intensity_map` of the inputs (x + 1 hyper, 1 − x hypo)."""
    return intensity_map(x, None, tm.spec.model.polarity)


FAMILY = Family(
    name="intensity",
    spec=intensity_spec,
    build=lambda spec: (nn.Identity(), None),
    train=lambda model, x, spec, runner, seed, critic: None,
    infer=infer,
    scan_score="top-1% mean of the map inside the brain",
    postprocess=top_fraction_postprocess,
    residual=residual,
    baseline=True,
    trains_network=False,
    map="windowed intensity inside the brain (Meissen 2021): x + 1 (hyperdense) or 1 - x (hypodense)",
)
