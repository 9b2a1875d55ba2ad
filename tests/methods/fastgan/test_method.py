"""What notebooks 02-04 wrote in a smoke run of the chain (fixture ``smoke_run_dir`` from conftest)."""

from __future__ import annotations

import json

import numpy as np
import torch

from ctad_core.evaluation import evaluate
from ctad_core.methods.fastgan import train as gan2d
from ctad_core.run import Run
from ctad_core.train import load_checkpoint


def test_gan_ensemble_written(smoke_run_dir):
    gan = smoke_run_dir / "gan"
    ens = Run(smoke_run_dir).ensemble("gan")
    assert ens.n_members >= 2 and ens.members[0] == gan / "member_0"
    info = {**json.loads((gan / "ensemble.json").read_text())}
    assert info["config"] == ens.config and set(info["timing"]) == {d.name for d in ens.members}
    for k, d in enumerate(ens.members):
        ck = load_checkpoint(d / "checkpoint.pt")
        assert ck["step"] == info["config"]["steps"] and ck["seed"] == info["seed"] + 1000 * k
        with np.load(d / "samples.npz") as s:
            assert s["images"].ndim == 4 and np.abs(s["images"]).max() <= 1
        G = gan2d.load_generator(d)
        assert G(torch.zeros(1, G.cfg.nz)).shape[-1] == info["config"]["image_size"]
    for png in ("loss_curves.png", "samples_during_training.png", "real_generated_nearest.png"):
        assert (gan / png).stat().st_size > 0
    # the members differ (different seeds)
    g0, g1 = (load_checkpoint(d / "checkpoint.pt")["G_ema"] for d in ens.members[:2])
    assert any(not torch.equal(g0[k], g1[k]) for k in g0 if g0[k].is_floating_point())


def test_encoders_written(smoke_run_dir):
    ens = Run(smoke_run_dir).ensemble("encoder")
    assert ens.info["feature_space"] in ("discriminator", "vgg16", "none")
    assert ens.n_members == Run(smoke_run_dir).ensemble("gan").n_members
    for d in ens.members:
        E = gan2d.load_encoder(d)
        z = E(torch.zeros(2, 1, E.cfg.image_size, E.cfg.image_size))
        assert z.shape == (2, E.cfg.nz) and z.abs().max() <= 1
        assert len(json.loads((d / "history.json").read_text())["loss"]) >= 1


def test_restoration_results(smoke_run_dir):
    run = Run(smoke_run_dir)
    found = run.find_method_results()
    assert {"fastgan_encoder", "fastgan_restoration"} <= set(found)
    sl = run.slices()
    seconds = {}
    for name in ("fastgan_encoder", "fastgan_restoration"):
        r = run.load_method_results(name)
        assert found[name].parent.parent == run.restoration
        assert r.level == "2d" and set(np.unique(r.split)) <= {"val", "test"}
        assert r.maps.shape == r.lesion.shape == r.brain.shape == r.recon.shape == r.inputs.shape
        assert np.isfinite(r.maps).all() and (r.maps >= 0).all() and np.isfinite(r.scan_score).all()
        assert r.info["seconds_per_item"] > 0 and r.info["items_per_scan"] >= 1
        assert r.info["feature_space"] and r.info["device"]
        # what the evaluator needs: each member's maps, the inputs, the seed's segmentation step
        assert (
            r.member_maps.shape[1:] == r.maps.shape and r.member_maps_haemorrhage.shape == r.member_maps.shape
        )
        np.testing.assert_allclose(r.member_maps.mean(0), r.maps, atol=1e-5)
        assert r.inputs.shape == r.maps.shape and r.segmentation["vote"] == "majority"
        assert set(r.scan_id) <= set(sl.scan_id)
        # the contract: each member's map, their mean, and the vote the evaluator applies
        m = r.info["n_members"]
        assert r.member_maps.shape == (m, *r.maps.shape) and r.member_maps_haemorrhage.shape == r.member_maps.shape
        np.testing.assert_allclose(r.maps, r.member_maps.mean(0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(r.maps_haemorrhage, r.member_maps_haemorrhage.mean(0), rtol=1e-6, atol=1e-7)
        assert r.segmentation["vote"] == "majority" and r.segmentation["closing_radius"] >= 0
        # the members' maps are residuals of the inputs: |x - x_hat_m| averaged gives maps (abs mode)
        if r.info["residual_mode"] == "abs":
            assert (r.member_maps.mean(0) >= np.abs(r.inputs - r.recon) - 1e-5).all()  # triangle inequality
        # seed 000's haemorrhage map: max(x - x_hat, 0) <= |x - x_hat| pixel by pixel (members' means of both)
        assert (r.maps_haemorrhage >= 0).all()
        assert (r.maps_haemorrhage <= r.maps + 1e-6).all() and (r.maps_haemorrhage < r.maps - 1e-3).any()
        seconds[name] = r.info["seconds_per_item"]
    assert seconds["fastgan_restoration"] > seconds["fastgan_encoder"]
    assert not (run.restoration / "metrics.json").exists()  # the report is the one record of the metrics
    report = json.loads((run.report / "metrics.json").read_text())["methods"]
    for name in ("fastgan_encoder", "fastgan_restoration"):  # notebook 04's preview is the report's call
        m = evaluate(run.load_method_results(name)).metrics
        assert report[name]["dice_mean"] == m["dice_mean"] and report[name]["dice_threshold"] == m["dice_threshold"]


def test_restoration_side_by_side_equals_one_after_another(smoke_run_dir):
    """Members restored in worker processes (ctad_core.parallel) give, bit for bit, what they give here one after
    another with the workers' thread count: reconstructions and loss curves."""
    from ctad_core import parallel
    from ctad_core.methods import method_params
    from ctad_core.methods.fastgan.method import eval_slices, reconstruct_members

    run = Run(smoke_run_dir)
    p = {**method_params("fastgan_restoration"), "steps": 3, "batch_size": 4, "restoration_init": "encoder"}
    x = eval_slices(run, int(run.ensemble("gan").config["image_size"]), 8, 0).x[:6]
    n = run.ensemble("gan").n_members
    workers, threads = parallel.plan_workers(n, "cpu", workers=n)
    assert workers == n > 1
    par = reconstruct_members(run, x, p, True, "cpu", progress=False, workers=n)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seq = reconstruct_members(run, x, p, True, "cpu", progress=False, workers=1)
    finally:
        torch.set_num_threads(before)
    assert par.recon.shape == seq.recon.shape == (n, 6, *x.shape[-2:])
    np.testing.assert_array_equal(par.recon, seq.recon)
    assert len(par.losses) == n and all(np.array_equal(a, b) for a, b in zip(par.losses, seq.losses))
    assert not np.array_equal(par.recon[0], par.recon[1])  # each member its own generator
    assert par.seconds > 0 and seq.seconds > 0
