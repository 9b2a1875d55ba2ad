"""Seed 001 through the registry: three phases trained, resumed, scored; the 2D comparison; maps on the data grid."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[2]))
from _volumetric_fake import fake_run_fixture, make_fake_run  # noqa: E402

fake_run = fake_run_fixture()


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


def test_three_phases_train_score_and_resume(fake_run):
    from ctad_core.methods import method_spec, run_method
    from ctad_core.methods.base import train_method
    from ctad_core.methods.inputs import VolumeCache
    from ctad_core.run import Run
    from ctad_core.train import load_checkpoint

    run = Run(fake_run)
    cache = VolumeCache.of(run)
    tm = run_method("fanogan3d", run, TINY, progress=False, evaluate=False)
    r = run_method("fanogan3d", run, TINY, progress=False)
    assert set(tm.history) == {"gan", "encoder", "finetune"}
    assert all(np.isfinite(list(h.values())).all() for ph in tm.history.values() for h in ph)
    # G frozen in the encoder phase, trained in the fine-tuning phase
    mdir = fake_run / "volumetric" / "models" / "fanogan3d"
    gan, enc, ft = (load_checkpoint(mdir / f"{p}.pt") for p in ("gan", "encoder", "finetune"))
    k = "blocks.1.weight"
    assert torch.equal(gan["modules"]["generator"][k], enc["modules"]["generator"][k])
    assert not torch.equal(enc["modules"]["generator"][k], ft["modules"]["generator"][k])
    assert r.level == "3d" and r.maps.shape == (len(r.scan_id), 16, 16, 16)
    assert r.inputs.shape == r.maps.shape and r.recon.shape == r.maps.shape
    assert r.segmentation == {"closing_radius": 0, "vote": None, "min_component_size": 0}
    assert run.find_method_results()["fanogan3d"] == fake_run / "volumetric" / "methods" / "fanogan3d.npz"
    assert {"threshold", "sensitivity", "specificity", "accuracy"} <= set(r.info["youden"])
    # a finished model is reloaded, not retrained
    spec = method_spec("fanogan3d", cache.shape, TINY)
    again = train_method(spec, cache.train_x(spec), fake_run / "volumetric", progress=False)
    assert again.train_seconds == pytest.approx(tm.train_seconds)
    for a, b in zip(tm.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())


def test_2d_comparison_on_mid_axial_band(fake_run):
    from ctad_core.methods import run_method
    from ctad_core.methods.scoring import compare_2d_3d

    r = run_method("fanogan2d", fake_run, TINY, progress=False)
    r3 = run_method("fanogan3d", fake_run, TINY, progress=False)
    assert r.level == "3d" and r.model_dims == "2d"  # items are volumes; the model is 2D
    assert r3.model_dims == "3d"
    lo, hi = r.info["band"]
    assert (lo, hi) == (4, 12)
    assert not r.maps[:, :lo].any() and not r.brain[:, hi:].any()
    kept = set(r.scan_id)
    assert set(r.info["excluded_scans"]).isdisjoint(kept)
    cmp = compare_2d_3d(r3, r)
    assert cmp["n_scans"] == int((r.split == "test").sum())


def test_downsampled_model_maps_on_the_data_grid(tmp_path):
    # Viana's 64³ from 128³ data: the model runs on pooled volumes, maps come back on the data grid
    from ctad_core.methods import run_method

    run_dir = make_fake_run(tmp_path, size=16, n_train=4, n_val=3, n_test=3)
    r = run_method("fanogan3d", run_dir, {**TINY, "fanogan_downsample": 2}, progress=False)
    assert r.info["spec"]["model"]["image_shape"] == [8, 8, 8] and r.info["spec"]["downsample"] == 2
    assert r.maps.shape[1:] == (16, 16, 16) and r.recon.shape[1:] == (16, 16, 16)
