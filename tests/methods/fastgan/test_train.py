"""Seed 000 training: slice preparation, FastGAN training resumed exactly, encoder training on a frozen G."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctad_core.methods.fastgan.model import EncoderConfig
from ctad_core.methods.fastgan.train import (
    generate,
    load_encoder,
    load_generator,
    nearest_training_images,
    prepare_slices,
    train_encoder,
    train_fastgan,
)
from ctad_core.train import load_checkpoint

from ._nets import NZ, tiny


def test_prepare_slices_resizes_and_checks():
    x = np.random.default_rng(0).uniform(-1, 1, (3, 128, 128)).astype(np.float32)
    assert prepare_slices(x, 64).shape == (3, 1, 64, 64)
    x[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        prepare_slices(x, 64)


def _fake_slices(n: int = 12, size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    r = np.random.default_rng(0).uniform(0.3, 0.4, n)
    return np.stack([np.where(xx**2 + yy**2 < ri**2, 0.2, -1.0) for ri in r]).astype(np.float32)


def test_train_fastgan_resume_matches_uninterrupted(tmp_path):
    data = _fake_slices()
    cfg = dict(tiny(64).to_dict(), steps=4, batch_size=2, sample_every=2, ckpt_every=2, log_every=1)
    full = train_fastgan(data, cfg, tmp_path / "a", device="cpu", seed=3, progress=False)
    half = train_fastgan(data, dict(cfg, steps=2), tmp_path / "b", device="cpu", seed=3, progress=False)
    assert half.steps_run == 2
    rest = train_fastgan(data, cfg, tmp_path / "b", device="cpu", seed=3, progress=False)
    assert rest.steps_run == 2
    assert full.history["loss_d"] == pytest.approx(rest.history["loss_d"], rel=1e-5, abs=1e-6)
    ga, gb = load_checkpoint(tmp_path / "a/checkpoint.pt"), load_checkpoint(tmp_path / "b/checkpoint.pt")
    for k in ga["G_ema"]:
        torch.testing.assert_close(ga["G_ema"][k], gb["G_ema"][k])
    with np.load(tmp_path / "a/samples.npz") as s:
        assert s["images"].shape == (2, 8, 64, 64) and s["steps"].tolist() == [2, 4]
    G = load_generator(tmp_path / "a", "cpu")
    assert not G.training and generate(G, 3, seed=0).shape == (3, 64, 64)
    idx, dist = nearest_training_images(data[:2], data)
    assert idx.tolist() == [0, 1] and np.allclose(dist, 0)
    enc_cfg = EncoderConfig(image_size=64, nz=NZ, width=2, max_ch=4, steps=2, batch_size=2, log_every=1)
    res = train_encoder(data, tmp_path / "a", enc_cfg, tmp_path / "e", device="cpu", seed=0, progress=False)
    assert len(res.history["loss"]) == 2
    E = load_encoder(tmp_path / "e", "cpu")
    assert E(torch.zeros(1, 1, 64, 64)).shape == (1, NZ)
    with pytest.raises(ValueError, match="does not match"):
        train_encoder(
            data, tmp_path / "a", dict(enc_cfg.to_dict(), nz=8), tmp_path / "f", "cpu", progress=False
        )
