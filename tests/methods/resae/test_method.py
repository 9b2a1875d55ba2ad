"""Seed 004 through the registry: post-processed maps, s(u), the declared segmentation step."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[2]))
from _volumetric_fake import fake_run_fixture  # noqa: E402

fake_run = fake_run_fixture()


def test_pipeline_post_processing_and_segmentation(fake_run):
    from ctad_core.evaluation import evaluate
    from ctad_core.evaluation.slices import scan_normality
    from ctad_core.methods import run_method

    p = {
        "resae_channels": [2, 2, 4, 4],
        "resae_latent_dim": 8,
        "resae_steps": 3,
        "resae_spatial_channels": 2,
        "resae_downsample": 1,
        "resae_min_size": 7,
    }
    for name in ("resae", "resae_spatial"):
        r = run_method(name, fake_run, p, progress=False)
        m = evaluate(r).metrics  # the evaluator scores slices by s(u) and applies the declared segmentation
        for k in ("slice_auroc", "slice_auprc", "slice_sensitivity", "dice_seed004_threshold", "dice_seed004"):
            assert k in m and np.isfinite(m[k]), k
        s, has = scan_normality(r, 0)
        assert s.shape == (16,) and s[has].min() == 0.0 and s[has].max() == 1.0
        # maps live inside the eroded brain mask
        assert not r.maps[r.brain == 0].any()
        assert r.segmentation == {"closing_radius": 0, "vote": None, "min_component_size": 7}
        assert r.inputs.shape == r.maps.shape and r.info["spec"]["post"]["min_size"] == 7
    assert r.info["spec"]["model"]["latent"] == "spatial"
    maps = list((fake_run / "volumetric" / "maps" / "resae").glob("*.nii.gz"))
    assert len(maps) == int((r.split == "test").sum())
