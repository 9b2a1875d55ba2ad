"""Seed 001 through the registry: scored results, the 2D comparison on the mid-axial band, maps on the data grid."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))
from _volumetric_fake import make_fake_run  # noqa: E402

TINY = {
    "fanogan_latent_dim": 8,
    "fanogan_base_channels": 2,
    "fanogan_max_channels": 8,
    "fanogan_gan_steps": 2,
    "fanogan_n_critic": 2,
    "fanogan_encoder_steps": 2,
    "fanogan_finetune_steps": 2,
    "ckpt_every": 1,
    "fanogan2d_mid_fraction": 0.5,
    "fanogan_downsample": 1,
}


def test_2d_comparison_on_mid_axial_band(fake_run):
    from ctad_core.evaluation import compare_on_common_scans
    from ctad_core.methods import run_method

    r = run_method("fanogan2d", fake_run, TINY, progress=False)
    r3 = run_method("fanogan3d", fake_run, TINY, progress=False)
    assert r.level == "3d" and r.model_dims == "2d"  # items are volumes; the model is 2D
    assert r3.model_dims == "3d"
    lo, hi = r.info["band"]
    assert (lo, hi) == (4, 12)
    assert not r.maps[:, :lo].any() and not r.brain[:, hi:].any()
    kept = set(r.scan_id)
    assert set(r.info["excluded_scans"]).isdisjoint(kept)
    cmp = compare_on_common_scans(r3, r)
    assert cmp["n_scans"] == int((r.split == "test").sum())


def test_downsampled_model_maps_on_the_data_grid(tmp_path):
    # Viana's 64³ from 128³ data: the model runs on pooled volumes, maps come back on the data grid
    from ctad_core.methods import run_method

    run_dir = make_fake_run(tmp_path, size=16, n_train=4, n_val=3, n_test=3)
    r = run_method("fanogan3d", run_dir, {**TINY, "fanogan_downsample": 2}, progress=False)
    assert r.info["spec"]["model"]["image_shape"] == [8, 8, 8] and r.info["spec"]["downsample"] == 2
    assert r.maps.shape[1:] == (16, 16, 16) and r.recon.shape[1:] == (16, 16, 16)
