"""What notebooks 02-04 wrote in a smoke run of the chain (fixture ``smoke_run_dir`` from conftest)."""

from __future__ import annotations

import json

import numpy as np
import torch

from ctad_core import gan2d
from ctad_core.data.manifest import load_slices
from ctad_core.results import find_method_results, load_method_results
from ctad_core.train import load_checkpoint


def test_gan_ensemble_written(smoke_run_dir):
    gan = smoke_run_dir / "gan"
    info = json.loads((gan / "training.json").read_text())
    n = info["n_members"]
    assert n >= 2
    for k, d in enumerate(gan2d.member_dirs(gan, n)):
        ck = load_checkpoint(d / "checkpoint.pt")
        assert ck["step"] == info["config"]["steps"] and ck["seed"] == info["seed"] + 1000 * k
        with np.load(d / "samples.npz") as s:
            assert s["images"].ndim == 4 and np.abs(s["images"]).max() <= 1
        G = gan2d.load_generator(d)
        assert G(torch.zeros(1, G.cfg.nz)).shape[-1] == info["config"]["image_size"]
    for png in ("loss_curves.png", "samples_during_training.png", "real_generated_nearest.png"):
        assert (gan / png).stat().st_size > 0
    # the members differ (different seeds)
    g0, g1 = (load_checkpoint(d / "checkpoint.pt")["G_ema"] for d in gan2d.member_dirs(gan, 2))
    assert any(not torch.equal(g0[k], g1[k]) for k in g0 if g0[k].is_floating_point())


def test_encoders_written(smoke_run_dir):
    enc = smoke_run_dir / "encoder"
    info = json.loads((enc / "training.json").read_text())
    assert info["feature_space"] in ("discriminator", "vgg16", "none")
    for d in gan2d.member_dirs(enc, info["n_members"]):
        E = gan2d.load_encoder(d)
        z = E(torch.zeros(2, 1, E.cfg.image_size, E.cfg.image_size))
        assert z.shape == (2, E.cfg.nz) and z.abs().max() <= 1
        assert len(json.loads((d / "history.json").read_text())["loss"]) >= 1


def test_restoration_results(smoke_run_dir):
    rdir = smoke_run_dir / "restoration"
    found = find_method_results(smoke_run_dir)
    assert {"fastgan_encoder", "fastgan_restoration"} <= set(found)
    sl = load_slices(smoke_run_dir)
    for name in ("fastgan_encoder", "fastgan_restoration"):
        r = load_method_results(found[name])
        assert r.level == "2d" and set(np.unique(r.split)) <= {"val", "test"}
        assert r.maps.shape == r.lesion.shape == r.brain.shape == r.recon.shape
        assert np.isfinite(r.maps).all() and (r.maps >= 0).all() and np.isfinite(r.scan_score).all()
        assert r.info["seconds_per_scan"] > 0 and r.info["feature_space"] and r.info["device"]
        assert set(r.scan_id) <= set(sl.scan_id)
        # seed 000's haemorrhage map: max(x - x_hat, 0) <= |x - x_hat| pixel by pixel (members' means of both)
        assert r.maps_haemorrhage.shape == r.maps.shape and (r.maps_haemorrhage >= 0).all()
        assert (r.maps_haemorrhage <= r.maps + 1e-6).all() and (r.maps_haemorrhage < r.maps - 1e-3).any()
    timings = json.loads((rdir / "timings.json").read_text())
    assert timings["restoration"]["seconds_per_slice"] > timings["encoder"]["seconds_per_slice"]
    metrics = json.loads((rdir / "metrics.json").read_text())
    for m in metrics.values():
        assert 0 <= m["dice_mean"] <= 1 and 0 <= m["auroc_test"] <= 1
    with np.load(rdir / "reconstructions.npz") as z:
        assert z["recon_restoration"].shape[1:] == z["x"].shape
        assert z["maps_encoder"].shape == z["recon_encoder"].shape
