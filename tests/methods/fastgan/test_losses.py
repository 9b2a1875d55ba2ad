"""Hinge / reconstruction / perceptual losses against hand computations; VGG16 loading."""

from __future__ import annotations

import pytest
import torch

from ctad_core.methods.fastgan.losses import (
    ReconstructionLoss,
    VGG16Features,
    d_reconstruction_loss,
    hinge_d_loss,
    hinge_g_loss,
    make_feature_extractor,
    mse_per_item,
    perceptual_loss,
    sample_z,
)
from ctad_core.methods.fastgan.model import Discriminator, FastGANConfig


def test_hinge_losses_by_hand():
    real = torch.tensor([2.0, 0.5, -1.0])  # max(0, 1 - r) = 0, 0.5, 2.0 → mean 2.5/3
    fake = torch.tensor([-2.0, 0.0, 1.0])  # max(0, 1 + f) = 0, 1, 2 → mean 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(2.5 / 3 + 1.0)
    assert hinge_g_loss(fake).item() == pytest.approx(-(-2.0 + 0.0 + 1.0) / 3)


def test_d_reconstruction_loss_by_hand():
    r1, t1 = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, -1.0], [0.0, 2.0]]]])  # mean |.| = 1
    r2, t2 = torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)  # 0
    assert d_reconstruction_loss([r1, r2], [t1, t2]).item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        d_reconstruction_loss([r1], [t1, t2])


def test_sample_z_uniform_box():
    z = sample_z(4000, 512, torch.Generator().manual_seed(0))
    assert z.shape == (4000, 512) and z.min() >= -1 and z.max() <= 1
    assert abs(z.mean().item()) < 0.01 and z.var().item() == pytest.approx(1 / 3, rel=0.02)


def test_mse_and_reconstruction_loss_per_item():
    x = torch.zeros(2, 1, 2, 2)
    y = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 2.0)])
    assert mse_per_item(x, y).tolist() == [0.0, 4.0]
    loss = ReconstructionLoss(None, w_percept=1.0, w_mse=10.0)
    assert loss(x, y).tolist() == [0.0, 40.0]


def test_perceptual_loss_by_hand():
    def feats(x):
        return [torch.cat([x, torch.ones_like(x)], dim=1)]

    x = torch.zeros(1, 1, 1, 1)
    y = torch.ones(1, 1, 1, 1)
    # unit vectors (0, 1) and (1/√2, 1/√2): squared difference summed = 1/2 + (1 - 1/√2)²; mean over 2 channels
    expected = (0.5 + (1 - 2**-0.5) ** 2) / 2
    assert perceptual_loss(x, y, feats).item() == pytest.approx(expected, rel=1e-5)
    assert perceptual_loss(x, x, feats).item() == 0.0


def test_discriminator_feature_space_is_frozen_eval():
    D = Discriminator(FastGANConfig(image_size=64, nz=8, ngf=2, ndf=2, min_ch=2))
    f = make_feature_extractor("discriminator", D)
    f.train()
    assert not f.d.training and not any(p.requires_grad for p in f.parameters())
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    assert perceptual_loss(x, x.flip(-1), f).shape == (2,)
    assert make_feature_extractor("none") is None
    with pytest.raises(ValueError):
        make_feature_extractor("inception")
    with pytest.raises(ValueError, match="vgg_weights"):
        make_feature_extractor("vgg16")


def test_vgg16_loads_torchvision_state_dict(tmp_path):
    ref = VGG16Features()
    conv_idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert sorted({int(k.split(".")[1]) for k in ref.state_dict()}) == conv_idx
    state = {f"features.{k}": torch.randn_like(v) for k, v in ref.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision files carry the classifier too
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(state, path)
    vgg = make_feature_extractor("vgg16", vgg_weights=str(path))
    torch.testing.assert_close(vgg.features[28].weight, state["features.28.weight"])
    out = vgg(torch.zeros(1, 1, 32, 32))
    assert [o.shape[1] for o in out] == [64, 128, 256, 512, 512] and out[-1].shape[-1] == 2
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="VGG16"):
        VGG16Features(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError):
        VGG16Features(tmp_path / "missing.pth")
