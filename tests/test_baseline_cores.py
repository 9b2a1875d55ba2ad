"""Baseline methods' cores (issue 11): intensity, voxel-wise normative model, coarse-noise DAE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctad_core.methods.dae.model import DenoisingStep, UNet, UNetConfig, coarse_noise
from ctad_core.methods.intensity.method import intensity_map
from ctad_core.methods.normative.model import MAD_TO_SD, NormativeModel


def test_intensity_map_polarity_and_mask() -> None:
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(1, 3, 4)
    mask = np.ones_like(x, dtype=np.uint8)
    mask[0, 0] = 0
    hyper, hypo = intensity_map(x, mask, "hyper"), intensity_map(x, mask, "hypo")
    assert np.all(hyper[0, 0] == 0) and np.all(hypo[0, 0] == 0)
    np.testing.assert_allclose(hyper[0, 1:] + hypo[0, 1:], 2.0)  # (x + 1) + (1 − x)
    assert np.argmax(hyper) == x.size - 1
    with pytest.raises(ValueError):
        intensity_map(x, mask, "bright")
    with pytest.raises(ValueError):
        intensity_map(x, mask[:, :2], "hyper")


def test_normative_model_against_numpy_and_scipy() -> None:
    from scipy.stats import median_abs_deviation

    rng = np.random.default_rng(0)
    train = rng.normal(0.0, 0.3, (25, 4, 5, 6)).astype(np.float32)
    train[:, 0] = 0.5  # a voxel row that never varies → floored spread
    nm = NormativeModel.fit(train, floor=0.02, chunk=17)  # chunking must not change the result
    np.testing.assert_allclose(nm.median, np.median(train, axis=0), atol=1e-6)
    ref = np.maximum(median_abs_deviation(train, axis=0, scale="normal"), 0.02)
    np.testing.assert_allclose(nm.spread, ref, rtol=1e-5)
    assert MAD_TO_SD == pytest.approx(1 / 0.6744897501960817)
    x = train[:2] + 0.0
    x[0, 2, 2, 2] += 3.0
    z = nm.score(x, "abs")
    assert np.unravel_index(np.argmax(z[0]), z[0].shape) == (2, 2, 2)
    np.testing.assert_allclose(nm.score(x, "hyper") - nm.score(x, "hypo"), (x - nm.median) / nm.spread, atol=1e-5)


def test_normative_model_save_load_and_refusals(tmp_path) -> None:
    nm = NormativeModel.fit(np.random.default_rng(1).normal(size=(3, 4, 4)))
    back = NormativeModel.load(nm.save(tmp_path / "normative.npz"))
    np.testing.assert_array_equal(back.median, nm.median)
    assert back.n_train == 3 and back.floor == nm.floor
    with pytest.raises(ValueError):
        NormativeModel.fit(np.zeros((1, 4, 4)))
    with pytest.raises(ValueError):
        NormativeModel.fit(np.full((3, 4), np.nan))
    with pytest.raises(ValueError):
        nm.score(np.zeros((1, 5, 5)))


@pytest.mark.parametrize("sd,shape", [(2, (32, 32)), (3, (16, 16, 16))])
def test_unet_shapes(sd: int, shape: tuple[int, ...]) -> None:
    net = UNet(UNetConfig(spatial_dims=sd, channels=(4, 8, 16)))
    assert net(torch.zeros(2, 1, *shape)).shape == (2, 1, *shape)
    with pytest.raises(ValueError):
        net(torch.zeros(1, 1, *[s + 2 for s in shape]))
    with pytest.raises(ValueError):
        UNetConfig(spatial_dims=sd, channels=(4,))


def test_coarse_noise_is_coarse_foreground_only_and_has_its_std() -> None:
    x = torch.zeros(4, 1, 64, 64)
    x[:, :, :, :8] = -1.0  # air on the left
    g = torch.Generator().manual_seed(0)
    n = coarse_noise(x, cell=8, std=0.2, generator=g)
    assert torch.all(n[..., :8] == 0)
    fg = n[..., 8:]
    assert float(fg.std()) == pytest.approx(0.2, rel=0.15)
    # neighbouring pixels are strongly correlated (coarse), unlike white noise
    a, b = fg[..., :-1].flatten(), fg[..., 1:].flatten()
    assert float(torch.corrcoef(torch.stack([a, b]))[0, 1]) > 0.9
    with pytest.raises(ValueError):
        coarse_noise(x, cell=0)


def test_denoising_step_learns() -> None:
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    img = (0.6 * torch.exp(-(xx**2 + yy**2) * 3) - 0.2).expand(8, 1, 32, 32).contiguous()
    step = DenoisingStep(UNet(UNetConfig(spatial_dims=2, channels=(8, 16))), cell=4, std=0.2)
    opt = torch.optim.Adam(step.parameters(), 1e-2)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(40):
        loss = step(img, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
