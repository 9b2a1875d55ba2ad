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

import numpy as np

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
