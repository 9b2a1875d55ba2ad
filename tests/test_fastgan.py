"""FastGAN / encoder shapes for every size, noise modes, augmentation, erasing, training + resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctad_core.augment import diff_augment, random_erase
from ctad_core.gan2d import (
    generate,
    load_encoder,
    load_generator,
    nearest_training_images,
    prepare_slices,
    train_encoder,
    train_fastgan,
)
from ctad_core.models.fastgan import (
    SIZES,
    Discriminator,
    Encoder,
    EncoderConfig,
    FastGANConfig,
    Generator,
    NoiseInjection,
    quadrant,
    reconstruction_targets,
    small_size,
)
from ctad_core.train import load_checkpoint

NZ = 16


def tiny(size: int, **kw) -> FastGANConfig:
    return FastGANConfig(image_size=size, nz=NZ, ngf=2, ndf=2, min_ch=2, **kw)


@pytest.mark.parametrize("size", [64, 128, 256])
def test_forward_shapes(size):
    cfg = tiny(size)
    G, D = Generator(cfg), Discriminator(cfg)
    E = Encoder(EncoderConfig(image_size=size, nz=NZ, width=2, max_ch=8))
    z = torch.rand(2, NZ) * 2 - 1
    img, sm = G(z, with_small=True)
    s = small_size(size)
    assert img.shape == (2, 1, size, size) and sm.shape == (2, 1, s, s)
    assert img.abs().max() <= 1
    logits = D(img)
    assert logits.shape == (2, 50)
    logits, recs = D(img, sm, part=3)
    assert [tuple(r.shape) for r in recs] == [(2, 1, s, s)] * 3
    feats = D.features(img)
    assert feats[0].shape[-1] == min(size, 256) and feats[-1].shape[-1] == 8
    zz = E(img)
    assert zz.shape == (2, NZ) and zz.abs().max() <= 1
    assert E.n_blocks == int(np.log2(size)) - 1


@pytest.mark.parametrize("size", [512, 1024])
def test_construct_large(size):
    cfg = tiny(size)
    G = Generator(cfg)
    D = Discriminator(cfg)
    assert str(size) in G.ups and str(2 * size) not in G.ups  # 512: one up-block fewer than 1024
    assert len(G.ups) == int(np.log2(size)) - 2
    assert D.small == 128
    assert (
        Encoder(EncoderConfig(image_size=size, nz=NZ, width=2, max_ch=4)).n_blocks == int(np.log2(size)) - 1
    )
    if size == 512:  # one forward at 512 (tiny width) to check the stem
        with torch.no_grad():
            assert D(G(torch.zeros(1, NZ)).expand(2, -1, -1, -1)).shape == (2, 50)


def test_sizes_and_config_validation():
    assert SIZES == (64, 128, 256, 512, 1024)
    with pytest.raises(ValueError):
        FastGANConfig(image_size=96)
    with pytest.raises(ValueError):
        Generator(tiny(64))(torch.zeros(2, NZ + 1))
    with pytest.raises(ValueError, match="expects"):
        Discriminator(tiny(64))(torch.zeros(2, 1, 32, 32))
    assert FastGANConfig.from_dict(tiny(64).to_dict()) == tiny(64)


def test_skip_layer_excitation_present():
    G = Generator(tiny(256))
    assert sorted(int(k) for k in G.sle) == [64, 128, 256]
    G = Generator(tiny(1024))
    assert sorted(int(k) for k in G.sle) == [64, 128, 256, 512]
    D = Discriminator(tiny(64))
    assert all(hasattr(m, "parametrizations") for m in D.modules() if isinstance(m, torch.nn.Conv2d))


def test_noise_modes():
    G = Generator(tiny(64)).eval()
    for m in G.modules():
        if isinstance(m, NoiseInjection):
            m.weight.data.fill_(0.5)
    z = torch.rand(3, NZ)
    G.set_noise("random")
    assert not torch.allclose(G(z), G(z))
    G.set_noise("zero")
    assert torch.equal(G(z), G(z))
    G.set_noise("fixed", seed=1)
    a = G(z)
    assert torch.equal(a, G(z))
    assert torch.allclose(G(z[:1]), a[:1], atol=1e-6)  # the fixed map is shared by all items
    with pytest.raises(ValueError):
        G.set_noise("loud")


def test_quadrant_and_targets():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert quadrant(x, 0).flatten().tolist() == [0, 1, 4, 5]
    assert quadrant(x, 3).flatten().tolist() == [10, 11, 14, 15]
    real = torch.rand(2, 1, 64, 64)
    t = reconstruction_targets(real, torch.rand(2, 1, 32, 32), 1, 32)
    assert [tuple(a.shape) for a in t] == [(2, 1, 32, 32)] * 3
    torch.testing.assert_close(t[2], real[..., :32, 32:])


def test_diff_augment_flip_contrast_translation():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 8, 8, requires_grad=True)
    (flipped,) = diff_augment([x], "flip", generator=g)
    same = [(torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))) for i in range(64)]
    assert all(same)
    n_flipped = sum(not torch.equal(flipped[i], x[i]) for i in range(64))
    assert 15 < n_flipped < 49
    (c,) = diff_augment([x], "contrast", generator=g)
    torch.testing.assert_close(c.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))
    img = -torch.ones(1, 1, 16, 16)
    img[0, 0, 8, 8] = 1.0
    (t,) = diff_augment([img], "translation", translation=0.25, generator=g)
    assert (t == 1).sum() <= 1 and ((t == -1).sum() >= 255)
    out = diff_augment([x, torch.rand(64, 1, 4, 4)], generator=g)
    out[0].sum().backward()
    assert x.grad is not None
    with pytest.raises(ValueError):
        diff_augment([x], "cutmix")


def test_random_erase_probability_and_fill():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2000, 1, 16, 16)
    out, erased = random_erase(x, p=0.25, fill=-1.0, generator=g)
    assert 0.21 < erased.float().mean() < 0.29
    changed = (out != x).flatten(1).any(1)
    assert torch.equal(changed, erased)
    assert set(out.unique().tolist()) <= {0.0, -1.0}
    frac = (out[erased] == -1).flatten(1).float().mean(1)
    assert frac.min() >= 0.01 and frac.max() <= 0.35
    assert torch.equal(x, torch.zeros_like(x))  # input untouched
    out0, e0 = random_erase(x[:10], p=0.0, generator=g)
    assert not e0.any() and torch.equal(out0, x[:10])
    out1, e1 = random_erase(x[:10], p=1.0, generator=g)
    assert e1.all()
    v, _ = random_erase(torch.zeros(3, 1, 8, 8, 8), p=1.0, fill=-1.0, generator=g)
    assert (v == -1).flatten(1).any(1).all()


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
