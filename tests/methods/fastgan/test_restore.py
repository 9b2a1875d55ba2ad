"""Latent restoration: clipping, batched == single, loss trajectory, early stop; encoder inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctad_core.methods.fastgan.losses import ReconstructionLoss, make_feature_extractor
from ctad_core.methods.fastgan.model import (
    Discriminator,
    Encoder,
    EncoderConfig,
    FastGANConfig,
    Generator,
    NoiseInjection,
)
from ctad_core.methods.fastgan.restore import encode_reconstruct, restore, restore_many

NZ = 16


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    cfg = FastGANConfig(image_size=64, nz=NZ, ngf=4, ndf=4, min_ch=2)
    G, D = Generator(cfg), Discriminator(cfg)
    for m in G.modules():  # non-zero noise weights: the restoration must switch the noise off
        if isinstance(m, NoiseInjection):
            m.weight.data.fill_(0.3)
    with torch.no_grad():  # a few train-mode passes so that BN running stats are not trivial
        for _ in range(3):
            G(torch.rand(8, NZ) * 2 - 1)
            D(torch.rand(8, 1, 64, 64) * 2 - 1)
    G.eval()
    D.eval()
    x = G(torch.rand(3, NZ) * 2 - 1).detach()
    return G, D, x


def test_batched_equals_single(nets):
    G, D, x = nets
    loss = ReconstructionLoss(make_feature_extractor("discriminator", D), 1.0, 10.0)
    both = restore(G, x, loss, steps=15, lr=0.05)
    for i in range(x.shape[0]):
        one = restore(G, x[i : i + 1], loss, steps=15, lr=0.05)
        torch.testing.assert_close(one.z[0], both.z[i], atol=2e-5, rtol=1e-4)
        np.testing.assert_allclose(one.losses[:, 0], both.losses[:, i], rtol=1e-4, atol=1e-6)
    assert both.losses.shape == (16, 3) and both.steps == 15
    assert both.losses[-1].mean() < both.losses[0].mean()


def test_the_bound_loss_gives_the_same_numbers_as_recomputing_the_target_features(nets):
    """restore() binds the loss to x (x's discriminator features once): the loss, its gradient and the whole
    restoration are bit-for-bit those of calling loss(x, x_hat) at every step."""
    G, D, x = nets
    loss = ReconstructionLoss(make_feature_extractor("discriminator", D), 1.0, 10.0)
    calls = []

    def plain(a, b):  # no ``bind``: restore() calls it with x at every step, as before binding
        calls.append(1)
        return loss(a, b)

    z = (torch.rand(3, NZ) * 2 - 1).requires_grad_(True)
    y = G(z)
    bound = loss.bind(x)(y)
    (g_bound,) = torch.autograd.grad(bound.sum(), z, retain_graph=True)
    (g_plain,) = torch.autograd.grad(loss(x, y).sum(), z)
    assert torch.equal(bound, loss(x, y)) and torch.equal(g_bound, g_plain)
    a = restore(G, x, loss, steps=12, lr=0.05)
    b = restore(G, x, plain, steps=12, lr=0.05)
    assert len(calls) == 13  # 12 steps and the final loss
    assert torch.equal(a.z, b.z) and torch.equal(a.recon, b.recon) and np.array_equal(a.losses, b.losses)
    mse = ReconstructionLoss(None)  # no features: bind is the plain call
    assert torch.equal(mse.bind(x)(y), mse(x, y))


def test_clipping_and_start_at_zero(nets):
    G, _, x = nets
    big = torch.ones_like(x)  # a white image pushes z hard
    res = restore(G, big, ReconstructionLoss(None), steps=30, lr=0.5)
    assert res.z.abs().max() <= 1.0 and (res.z.abs() == 1.0).any()
    zero = restore(G, x, ReconstructionLoss(None), steps=0)
    assert torch.equal(zero.z, torch.zeros(3, NZ)) and zero.losses.shape == (1, 3)


def test_state_restored_and_early_stop(nets):
    G, _, x = nets
    G.train()
    G.set_noise("random")
    res = restore(
        G, x, ReconstructionLoss(None), steps=500, lr=1e-9, early_stop_patience=5, early_stop_tol=1e-3
    )
    assert res.steps < 20
    assert G.training and all(m.mode == "random" for m in G.modules() if isinstance(m, NoiseInjection))
    assert all(p.requires_grad for p in G.parameters())
    G.eval()


def test_restore_many_and_amp(nets):
    G, _, x = nets
    loss = ReconstructionLoss(None)
    many = restore_many(G, x, loss, batch_size=2, steps=5, lr=0.05, progress=False)
    whole = restore(G, x, loss, steps=5, lr=0.05)
    torch.testing.assert_close(many.z, whole.z, atol=2e-5, rtol=1e-4)
    assert many.losses.shape == (6, 3)
    # a start z0 (e.g. the encoder's) is split with the images: same z as restoring the whole set from it
    z0 = torch.rand(3, NZ) * 2 - 1
    many0 = restore_many(G, x, loss, batch_size=2, steps=5, lr=0.05, progress=False, z0=z0)
    whole0 = restore(G, x, loss, steps=5, lr=0.05, z0=z0)
    torch.testing.assert_close(many0.z, whole0.z, atol=2e-5, rtol=1e-4)
    assert not torch.allclose(many0.z, many.z)
    start = restore_many(G, x, loss, batch_size=2, steps=0, progress=False, z0=z0)
    torch.testing.assert_close(start.z, z0)
    for bad in (z0[:2], z0[0]):
        with pytest.raises(ValueError, match="rows"):
            restore_many(G, x, loss, z0=bad, progress=False)
    amp = restore(G, x, loss, steps=3, lr=0.05, amp=True, channels_last=True)
    assert amp.recon.shape == x.shape and torch.isfinite(amp.recon).all()
    G.to(memory_format=torch.contiguous_format)


def test_encode_reconstruct(nets):
    G, _, x = nets
    E = Encoder(EncoderConfig(image_size=64, nz=NZ, width=2, max_ch=4))
    z, rec, sec = encode_reconstruct(E, G, x, batch_size=2)
    assert z.shape == (3, NZ) and rec.shape == x.shape and sec >= 0
    assert E.training  # restored afterwards
