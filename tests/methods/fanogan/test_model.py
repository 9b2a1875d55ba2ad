"""Seed 001: 3D/2D f-AnoGAN networks, WGAN-GP penalty, encoder loss, training phases and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ctad_core.methods.fanogan.model import (
    FAnoGAN,
    FAnoGANConfig,
    critic_loss,
    encoder_loss_terms,
    generator_loss,
    gradient_penalty,
)


@pytest.mark.parametrize(
    "shape,depth",
    [((32, 32, 32), 3), ((64, 64, 64), 4), ((64, 64), 4), ((32, 64, 64), 3)],
)
def test_shapes(shape, depth):
    cfg = FAnoGANConfig(image_shape=shape, latent_dim=16, base_channels=2, max_channels=8)
    assert cfg.depth == depth
    m = FAnoGAN(cfg)
    x = torch.randn(2, 1, *shape)
    assert m.generator(torch.randn(2, 16)).shape == x.shape
    assert m.critic(x).shape == (2,)
    assert m.critic.features(x).shape == (2, cfg.widths()[-1] * int(np.prod(cfg.bottom_shape)))
    z = m.encoder(x)
    assert z.shape == (2, 16) and z.abs().max() < 1  # tanh output


def test_paper_configuration_shapes_on_meta():
    # Viana: 64³, latent 2500, Kwon's widths 64…512; the "*" layer is 512×4³.
    cfg = FAnoGANConfig()
    assert cfg.widths() == [64, 128, 256, 512] and cfg.bottom_shape == (4, 4, 4)
    with torch.device("meta"):
        m = FAnoGAN(cfg)
        x = torch.empty(2, 1, 64, 64, 64)
        assert m.generator(torch.empty(2, 2500)).shape == x.shape
        assert m.encoder(x).shape == (2, 2500)
        assert m.critic.features(x).shape == (2, 512 * 64)


def test_critic_rejects_batchnorm():
    with pytest.raises(ValueError, match="gradient penalty"):
        FAnoGANConfig(image_shape=(16, 16, 16), critic_norm="batch")


class _Linear(nn.Module):
    """D(x) = <w, x> + b: its input gradient is w for every x, so the penalty is (‖w‖ − 1)²."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1) + 3.0


@pytest.mark.parametrize("scale", [0.1, 1.0, 4.0])
def test_gradient_penalty_matches_hand_computation(scale):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 4, 4, 4, generator=g) * scale
    critic = _Linear(w.clone())
    real, fake = torch.randn(5, 1, 4, 4, 4, generator=g), torch.randn(5, 1, 4, 4, 4, generator=g)
    gp = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(1))
    expected = (w.flatten().norm() - 1) ** 2
    assert torch.allclose(gp, expected, rtol=1e-5)
    gp.backward()  # differentiable w.r.t. the critic (create_graph): d/dw (‖w‖−1)² = 2(‖w‖−1) w/‖w‖
    n = w.flatten().norm()
    assert torch.allclose(critic.w.grad, 2 * (n - 1) * w / n, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_uses_per_sample_norm():
    # D(x) = Σ x² / 2 → ∇ = x̂ per sample; real = fake → x̂ = real, so the norms are those of each sample.
    class Sq(nn.Module):
        def forward(self, x):
            return 0.5 * x.pow(2).flatten(1).sum(1)

    x = torch.stack([torch.full((1, 2, 2, 2), 1.0), torch.full((1, 2, 2, 2), 0.25)])
    gp = gradient_penalty(Sq(), x, x.clone())
    norms = torch.tensor([np.sqrt(8) * 1.0, np.sqrt(8) * 0.25])
    assert torch.allclose(gp, ((norms - 1) ** 2).mean().float(), rtol=1e-5)


def test_wgan_losses():
    d_real, d_fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert critic_loss(d_real, d_fake, torch.tensor(0.5), lam=10.0).item() == pytest.approx(-0.5 - 2.0 + 5.0)
    assert generator_loss(d_fake).item() == pytest.approx(0.5)


def test_encoder_loss_terms_match_definition():
    torch.manual_seed(0)
    m = FAnoGAN(FAnoGANConfig(image_shape=(16, 16, 16), latent_dim=8, base_channels=2))
    x, x_rec = torch.randn(3, 1, 16, 16, 16), torch.randn(3, 1, 16, 16, 16)
    l_img, l_feat, l_e = encoder_loss_terms(x, x_rec, m.critic, kappa=0.5)
    f_x, f_r = m.critic.features(x), m.critic.features(x_rec)
    assert torch.allclose(l_img, ((x - x_rec) ** 2).flatten(1).sum(1) / x[0].numel())
    assert torch.allclose(l_feat, ((f_x - f_r) ** 2).sum(1) / f_x.shape[1], rtol=1e-5)
    assert torch.allclose(l_e, l_img + 0.5 * l_feat)


def test_doctests():
    import doctest

    from ctad_core.methods.fanogan import model

    res = doctest.testmod(model, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0
