"""Small synthetic method results for the evaluation tests: 2D slices (3 per scan) or 3D volumes."""

from __future__ import annotations

import numpy as np

from ctad_core.results import MethodResults

KINDS = ["healthy", "iph", "sdh", "tumour", "iph+fracture"]


def synthetic(
    name: str,
    level: str = "2d",
    seed: int = 0,
    noise: float = 0.3,
    shift_test: float = 0.0,
    inputs: bool = False,
    recon: bool = False,
) -> MethodResults:
    """Results of 20 scans (10 val, 10 test; kinds cycle through ``KINDS``), lesions as cubes of edge 4.

    ``inputs`` / ``recon`` add model-range [-1, 1] inputs (lesions brighter) and reconstructions (without them).
    """
    rng = np.random.default_rng(seed)
    spatial = (16, 16) if level == "2d" else (6, 12, 12)
    per_scan = 3 if level == "2d" else 1
    sid, split, kind = [], [], []
    for s in range(20):
        sp = "val" if s < 10 else "test"
        k = KINDS[s % len(KINDS)]
        for _ in range(per_scan):
            sid.append(f"{sp}{s:02d}")
            split.append(sp)
            kind.append(k)
    n = len(sid)
    lesion = np.zeros((n, *spatial), np.uint8)
    for i in range(n):
        if kind[i] != "healthy" and (
            level == "3d" or i % 3 != 0
        ):  # some slices of a lesioned scan are normal
            c = rng.integers(3, 9, len(spatial))
            sl = tuple(slice(int(x), int(x) + 4) for x in c)
            lesion[(i, *sl)] = 1
    maps = rng.random(lesion.shape).astype(np.float32) * noise + lesion * 0.6
    maps[np.array(split) == "test"] += shift_test
    brain = np.ones_like(lesion)
    brain[(slice(None), *[slice(0, 1)] * len(spatial))] = 0
    score = maps.reshape(n, -1).max(1)
    x = (rng.random(lesion.shape).astype(np.float32) * 0.4 - 0.6) if inputs or recon else None
    return MethodResults(
        name,
        level,
        np.array(sid),
        np.array(split),
        np.array(kind),
        score,
        maps,
        lesion,
        brain,
        recon=x if recon else None,
        inputs=(x + 0.8 * lesion).astype(np.float32) if inputs else None,
        info={"seconds_per_scan": 0.5, "device": "cpu"},
    )
