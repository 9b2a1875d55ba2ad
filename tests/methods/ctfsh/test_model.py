"""Seed 002: CTFSH AE/VAE shapes, MS-SSIM at small sizes, ACAI terms, I and F scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim as reference_ms_ssim
from pytorch_msssim import ssim as reference_ssim
from scipy.ndimage import correlate1d
from scipy.stats import multivariate_normal

from ctad_core.methods.ctfsh.model import (
    CTFSH,
    ACAICritic,
    CTFSHConfig,
    acai_losses,
    f_score,
    fit_latent_gaussian,
    interpolate_latents,
    kl_divergence,
    ms_ssim,
    msssim_scales,
    reconstruction_loss,
    ssim_components,
)


@pytest.mark.parametrize(
    "shape,channels",
    [((32, 32, 32), (2, 4, 8)), ((64, 64, 64), (2, 4, 4, 8)), ((32, 32), (2, 4))],
)
@pytest.mark.parametrize("variational", [False, True])
def test_shapes(shape, channels, variational):
    m = CTFSH(CTFSHConfig(image_shape=shape, channels=channels, latent_dim=6, variational=variational))
    x = torch.randn(2, 1, *shape)
    x_hat, z, mu, logvar = m(x)
    assert x_hat.shape == x.shape and z.shape == mu.shape == (2, 6)
    assert (logvar is not None) == variational
    assert ACAICritic(m.cfg)(x).shape == (2,)


def test_paper_encoder_reaches_512x4cubed_on_meta():
    cfg = CTFSHConfig()  # 128³, 32…512, latent 512
    assert cfg.bottom_shape == (4, 4, 4)
    with torch.device("meta"):
        m = CTFSH(cfg)
        h = m.encoder(torch.empty(1, 1, 128, 128, 128))
        assert h.shape == (1, 512 * 4**3)
        assert m.decode(torch.empty(1, 512)).shape == (1, 1, 128, 128, 128)
    conv = m.encoder.net[0]
    assert conv.kernel_size == (4, 4, 4) and conv.stride == (2, 2, 2) and conv.dilation == (2, 2, 2)


def test_msssim_scales_and_fallback_warning():
    assert msssim_scales((128, 128, 128), 7) == (
        5,
        pytest.approx((0.0448, 0.2856, 0.3001, 0.2363, 0.1333), abs=1e-3),
    )
    n, w = msssim_scales((32, 32, 32), 11)
    assert n == 2 and sum(w) == pytest.approx(1.0)
    assert w[1] / w[0] == pytest.approx(0.2856 / 0.0448)
    x = torch.rand(2, 1, 32, 32, 32)
    with pytest.warns(UserWarning, match="only 2 of 5 scales"):
        v = ms_ssim(x, x.clone(), win_size=11 + 2)  # 13: a new size/window pair, so a fresh warning
    assert torch.allclose(v, torch.ones(2), atol=1e-5)


def _ssim_reference(
    x: np.ndarray, y: np.ndarray, win: int, sigma: float = 1.5, L: float = 1.0
) -> tuple[float, float]:
    """(SSIM, cs) of one 2D/3D image pair in float64 with SciPy: Wang et al. 2004, Eqs. 9-13, valid positions."""
    t = np.arange(win) - win // 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    g /= g.sum()
    r = win // 2
    inner = tuple(slice(r, n - r) for n in x.shape)

    def blur(a):
        for ax in range(a.ndim):
            a = correlate1d(a, g, axis=ax, mode="constant")
        return a[inner]

    x, y = x.astype(np.float64), y.astype(np.float64)
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    cs = (2 * cxy + c2) / (vx + vy + c2)
    return float(np.mean((2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs)), float(np.mean(cs))


@pytest.mark.parametrize("shape,win", [((2, 2, 30, 27), 7), ((2, 1, 13, 12, 14), 5)])
def test_ssim_components_match_scipy_reference_and_pytorch_msssim(shape, win):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(*shape, generator=g)
    y = (0.7 * x + 0.3 * torch.rand(*shape, generator=g)).clamp(0, 1)
    x0, y0 = x.clone(), y.clone()
    s, cs = ssim_components(x, y, data_range=1.0, win_size=win)
    assert s.shape == cs.shape == shape[:2]
    for b in range(shape[0]):
        for c in range(shape[1]):
            ref_s, ref_cs = _ssim_reference(x[b, c].numpy(), y[b, c].numpy(), win)
            assert float(s[b, c]) == pytest.approx(ref_s, abs=1e-5)
            assert float(cs[b, c]) == pytest.approx(ref_cs, abs=1e-5)
    public = reference_ssim(x, y, data_range=1.0, size_average=False, win_size=win)  # (B,), channel mean
    torch.testing.assert_close(s.mean(1), public, atol=1e-6, rtol=0)
    assert torch.equal(x, x0) and torch.equal(y, y0)  # inputs untouched
    ones = ssim_components(x, x.clone(), win_size=win)
    torch.testing.assert_close(ones[0], torch.ones(shape[:2]), atol=1e-5, rtol=0)


def test_ssim_components_refuses_bad_input():
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="odd"):
        ssim_components(x, x, win_size=4)
    with pytest.raises(ValueError, match="smaller than the 17-voxel window"):
        ssim_components(x, x, win_size=17)
    with pytest.raises(ValueError, match="equal shape"):
        ssim_components(x, x[..., :15])
    with pytest.raises(ValueError, match="equal shape"):
        ssim_components(x[0], x[0])


@pytest.mark.parametrize("shape,win", [((2, 1, 176, 176), 11), ((1, 2, 48, 50, 52), 3)])
def test_msssim_equals_pytorch_msssim_when_five_scales_fit(shape, win):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(*shape, generator=g)
    y = (x + 0.1 * torch.rand(*shape, generator=g)).clamp(0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = ms_ssim(x, y, win_size=win)
    assert msssim_scales(shape[2:], win)[0] == 5
    torch.testing.assert_close(
        ours, reference_ms_ssim(x, y, data_range=1.0, size_average=False, win_size=win), atol=1e-6, rtol=0
    )


def test_msssim_fewer_scales_matches_manual_product():
    # three scales of a 2D image with win 7: Π cs_i^w_i · ssim_3^w_3 with renormalised weights
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 40, 40, generator=g)
    y = (x * 0.8 + 0.1).clamp(0, 1)
    n, w = msssim_scales((40, 40), 7)
    assert n == 3
    a, b, vals = x[0, 0].numpy(), y[0, 0].numpy(), []
    for i in range(n):
        s, cs = _ssim_reference(a, b, 7)
        vals.append(cs if i < n - 1 else s)
        a, b = (v.reshape(v.shape[0] // 2, 2, v.shape[1] // 2, 2).mean((1, 3)) for v in (a, b))  # even sides
    expected = np.prod([v**wi for v, wi in zip(vals, w)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ms_ssim(x, y, win_size=7).item() == pytest.approx(expected, rel=1e-5)


def test_reconstruction_loss_l1_and_mix():
    x = torch.full((2, 1, 16, 16, 16), -1.0)
    x_hat = x + 0.2
    assert torch.allclose(reconstruction_loss(x, x_hat, "l1"), torch.full((2,), 0.1))  # on the [0, 1] scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = reconstruction_loss(x, x.clone(), "l1+msssim", rho=0.15, win_size=3)
    assert torch.allclose(same, torch.zeros(2), atol=1e-5)
    with pytest.raises(ValueError, match="unknown reconstruction loss"):
        reconstruction_loss(x, x_hat, "l2")


def test_acai_critic_targets():
    class Const(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = torch.nn.Parameter(torch.tensor(c))

        def forward(self, x):
            return self.c + 0.0 * x.flatten(1).sum(1)

    critic = Const(0.3)
    x = torch.randn(4, 1, 8, 8, 8)
    x_hat = torch.randn(4, 1, 8, 8, 8, requires_grad=True)
    x_alpha = torch.randn(4, 1, 8, 8, 8, requires_grad=True)
    alpha = torch.tensor([0.0, 0.1, 0.25, 0.5])
    ae, crit = acai_losses(critic, x, x_hat, x_alpha, alpha, gamma=0.2)
    assert ae.item() == pytest.approx(0.09)  # the AE wants the critic to answer 0 on interpolations
    assert crit.item() == pytest.approx(((0.3 - alpha) ** 2).mean().item() + 0.09)  # regress α; 0 on γ-mixes
    (g_alpha,) = torch.autograd.grad(crit, [x_alpha], allow_unused=True)
    assert g_alpha is None  # the critic's loss does not train the AE


def test_acai_critic_sees_gamma_mix():
    seen = []

    class Rec(torch.nn.Module):
        def forward(self, x):
            seen.append(x.detach().clone())
            return x.flatten(1).mean(1)

    x, x_hat = torch.ones(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2)
    acai_losses(Rec(), x, x_hat, torch.zeros_like(x), torch.tensor([0.2]), gamma=0.2)
    assert torch.allclose(seen[-1], torch.full_like(x, 0.2))  # γ·x + (1−γ)·x̂


def test_interpolation_and_kl():
    z1, z2 = torch.ones(2, 3), torch.zeros(2, 3)
    assert torch.allclose(
        interpolate_latents(z1, z2, torch.tensor([0.25, 0.5])), torch.tensor([[0.25] * 3, [0.5] * 3])
    )
    assert torch.allclose(kl_divergence(torch.zeros(2, 4), torch.zeros(2, 4)), torch.zeros(2))
    mu, lv = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, np.log(2.0)]])
    assert kl_divergence(mu, lv).item() == pytest.approx(0.5 * (1 + (2 - 1 - np.log(2))))


def test_f_score_against_scipy_gaussian():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(50, 5)) * 0.7 + 2.0
    mu, sigma2 = fit_latent_gaussian(train)
    assert np.allclose(mu, train.mean(0))
    assert sigma2 == pytest.approx(np.mean(np.sum((train - train.mean(0)) ** 2, axis=1)))
    test = rng.normal(size=(7, 5)) + 2.0
    # exp(−‖z−μ‖²/σ²) is an isotropic Gaussian with covariance σ²/2 · I, normalised to 1 at its mean
    mvn = multivariate_normal(mean=mu, cov=np.eye(5) * sigma2 / 2)
    expected = 1 - mvn.pdf(test) / mvn.pdf(mu)
    assert np.allclose(f_score(test, mu, sigma2), expected)
    assert f_score(mu[None], mu, sigma2)[0] == 0.0


def test_doctests():
    import doctest

    from ctad_core.methods.ctfsh import model

    res = doctest.testmod(model, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0
