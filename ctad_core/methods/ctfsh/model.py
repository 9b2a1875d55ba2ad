"""CTFSH (Guerra, Parida et al. 2022, seed 002): 3D AE / VAE for full-head CT, with L1, L1 + MS-SSIM and ACAI.

Architecture (Appendix D, 128³)::

    encoder: 5 × [conv k4 s2 dilation 2 → InstanceNorm → LeakyReLU], 32, 64, 128, 256, 512 channels
             → 512×4³ → flatten → Linear → z (512)          (VAE: two Linear heads, μ and log σ²)
    decoder: Linear → 512×4³ → 5 × [nearest ×2 upsample → conv k3 → InstanceNorm → LeakyReLU]
             (256, 128, 64, 32, 32 channels) → conv k3 → 1 channel

Smaller profiles pass fewer / narrower ``channels`` (the depth is ``len(channels)``; the bottom is the image
shape / 2^depth). ``spatial_dims`` follows from ``image_shape``.

Losses and scores:

- ℓ_r = ρ·L1 + (1 − ρ)·(1 − MS-SSIM), ρ = 0.15 (Eq. 1); the same per-item value is the **I** score.
- ACAI (Berthelot et al. 2019): z_α = α z₁ + (1 − α) z₂, α ~ U[0, 0.5]; a critic regresses α from the
  decoded interpolation (Eq. 2) and is also asked for 0 on γ-mixes of inputs and reconstructions (γ = 0.2);
  the AE is pushed (weight λ = 1) to make the critic answer 0 on interpolations.
- **F** score (Eq. 3): 1 − exp(−‖f(x) − μ‖² / σ²), μ and σ² fitted on the training (healthy) codes.

MS-SSIM (Wang, Simoncelli & Bovik 2003) is computed here, in 2D or 3D by the input's rank: :func:`ssim_components`
gives SSIM and its contrast-structure term per channel (Wang et al. 2004, Eqs. 9–13, Gaussian window σ = 1.5,
K = (0.01, 0.03), no padding), and :func:`ms_ssim` combines the scales. With five scales it equals
pytorch-msssim's ``ms_ssim`` (the tests compare them). Five scales need a smallest side of at least
``win_size · 2⁴`` voxels (pytorch-msssim asserts more than ``(win_size − 1) · 16``), which a 32³ or 64³ volume
does not have. :func:`ms_ssim` then uses as many scales as fit, renormalises the first weights of Wang et al.
to sum to one, and warns; the scales used are reported by :func:`msssim_scales` (the notebook writes them
into the results' ``info``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctad_core.nn import nd

#: Wang et al. 2003 scale weights (the default of pytorch-msssim).
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@dataclass
class CTFSHConfig(nd.PyramidConfig):
    """Shapes and widths of the CTFSH AE/VAE.

    Attributes:
        image_shape: spatial shape (paper: 128³).
        channels: encoder widths (paper: 32, 64, 128, 256, 512); the decoder mirrors them.
        latent_dim: size of z (paper: 512).
        variational: VAE instead of AE.
        kernel, dilation: encoder convolutions (paper: 4 and 2; padding keeps exact halvings).
    """

    image_shape: tuple[int, ...] = (128, 128, 128)
    channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    latent_dim: int = 512
    variational: bool = False
    kernel: int = 4
    dilation: int = 2

    def __post_init__(self) -> None:
        self._normalise_pyramid("encoder stages")


def _n(xs: tuple[int, ...]) -> int:
    return int(np.prod(xs))


class _Encoder(nn.Module):
    """(B, 1, *shape) → (B, C_last·prod(bottom)) flattened features."""

    def __init__(self, cfg: CTFSHConfig) -> None:
        super().__init__()
        sd, k, d = cfg.spatial_dims, cfg.kernel, cfg.dilation
        pad = (
            d * (k - 1)
        ) // 2  # effective kernel d(k-1)+1 = 7, pad 3, stride 2: halves an even side exactly
        layers: list[nn.Module] = []
        cin = 1
        for cout in cfg.channels:
            layers += [
                nd.conv(sd, cin, cout, k, stride=2, padding=pad, dilation=d),
                nd.norm("instance", sd, cout),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            cin = cout
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten(1)


class CTFSH(nn.Module):
    """The CTFSH autoencoder (``cfg.variational=False``) or VAE.

    Example:
        >>> m = CTFSH(CTFSHConfig(image_shape=(16, 16, 16), channels=(2, 4), latent_dim=8))
        >>> x_hat, z, mu, logvar = m(torch.zeros(2, 1, 16, 16, 16))
        >>> x_hat.shape, z.shape, logvar is None
        (torch.Size([2, 1, 16, 16, 16]), torch.Size([2, 8]), True)
    """

    def __init__(self, cfg: CTFSHConfig) -> None:
        super().__init__()
        self.cfg = cfg
        sd, ch = cfg.spatial_dims, cfg.channels
        flat = ch[-1] * _n(cfg.bottom_shape)
        self.encoder = _Encoder(cfg)
        self.fc_mu = nn.Linear(flat, cfg.latent_dim)
        self.fc_logvar = nn.Linear(flat, cfg.latent_dim) if cfg.variational else None
        self.fc_dec = nn.Linear(cfg.latent_dim, flat)
        outs = list(ch[-2::-1]) + [ch[0]]  # mirror: 256, 128, 64, 32, 32 for the paper's widths
        layers: list[nn.Module] = [nd.norm("instance", sd, ch[-1]), nn.LeakyReLU(0.2, inplace=True)]
        cin = ch[-1]
        for cout in outs:
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nd.conv(sd, cin, cout, 3, padding=1),
                nd.norm("instance", sd, cout),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            cin = cout
        layers.append(nd.conv(sd, cin, 1, 3, padding=1))  # linear output: the target range is [-1, 1]
        self.decoder_net = nn.Sequential(*layers)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """x (B, 1, *shape) → μ (B, d) and log σ² (B, d) (None for the AE). For the AE, μ is z."""
        h = self.encoder(x)
        return self.fc_mu(h), (self.fc_logvar(h) if self.fc_logvar is not None else None)

    def decode(self, z: Tensor) -> Tensor:
        """z (B, d) → x̂ (B, 1, *shape)."""
        h = self.fc_dec(z).view(z.shape[0], self.cfg.channels[-1], *self.cfg.bottom_shape)
        return self.decoder_net(h)

    def forward(self, x: Tensor, sample: bool | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """x (B, 1, *shape) → (x̂, z, μ, log σ²); z is sampled (VAE, training) or μ."""
        mu, logvar = self.encode(x)
        sample = self.training if sample is None else sample
        z = mu
        if logvar is not None and sample:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), z, mu, logvar


class ACAICritic(nn.Module):
    """c_ψ: image (B, 1, *shape) → α̂ (B,), the encoder's conv stack followed by a Linear head."""

    def __init__(self, cfg: CTFSHConfig) -> None:
        super().__init__()
        self.encoder = _Encoder(cfg)
        self.head = nn.Linear(cfg.channels[-1] * _n(cfg.bottom_shape), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x)).squeeze(1)


# ----------------------------------------------------------------------------------------------- losses


def msssim_scales(
    shape: tuple[int, ...], win_size: int = 11, max_scales: int = 5
) -> tuple[int, tuple[float, ...]]:
    """How many MS-SSIM scales fit ``shape`` with a ``win_size`` Gaussian window, and their weights.

    A scale fits when the smallest side at that scale is at least ``win_size`` (so the window is applied
    along every axis). Weights are the first ones of Wang et al., renormalised to sum to one.
    """
    side = min(shape)
    n = 0
    while n < max_scales and side // 2**n >= win_size:
        n += 1
    if n == 0:
        raise ValueError(f"MS-SSIM: volume {tuple(shape)} is smaller than the {win_size}-voxel window")
    w = np.asarray(MSSSIM_WEIGHTS[:n], dtype=np.float64)
    return n, tuple(float(v) for v in w / w.sum())


def gaussian_window(win_size: int = 11, sigma: float = 1.5) -> Tensor:
    """The 1D Gaussian window of SSIM, normalised to sum to one (Wang et al. 2004: 11 taps, σ = 1.5).

    Returns:
        (win_size,) float32 weights, centred on tap ``win_size // 2``.

    Raises:
        ValueError: ``win_size`` is not a positive odd number.
    """
    if win_size < 1 or win_size % 2 != 1:
        raise ValueError(f"SSIM window size must be a positive odd number, got {win_size}")
    t = torch.arange(win_size, dtype=torch.float32) - win_size // 2
    g = torch.exp(-(t**2) / (2.0 * sigma**2))
    return g / g.sum()


def _gaussian_blur(x: Tensor, win: Tensor) -> Tensor:
    """Separable Gaussian filter of every channel of (B, C, *spatial) along each spatial axis, valid part only."""
    c, sd = x.shape[1], x.dim() - 2
    conv = F.conv2d if sd == 2 else F.conv3d
    for axis in range(sd):
        shape = [1, 1] + [1] * sd
        shape[2 + axis] = win.numel()
        x = conv(x, win.to(x).reshape(shape).repeat(c, *([1] * (sd + 1))), groups=c)
    return x


def ssim_components(
    x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 11, sigma: float = 1.5
) -> tuple[Tensor, Tensor]:
    """SSIM and its contrast-structure term, per item and channel, of 2D or 3D images.

    With local statistics μ, σ², σ_xy from a Gaussian window (valid positions only, no padding),
    C1 = (0.01·L)², C2 = (0.03·L)², L = ``data_range`` (Wang et al. 2004, Eqs. 9–13)::

        cs   = mean[(2 σ_xy + C2) / (σ_x² + σ_y² + C2)]
        ssim = mean[(2 μ_x μ_y + C1) / (μ_x² + μ_y² + C1) · (2 σ_xy + C2) / (σ_x² + σ_y² + C2)]

    Args:
        x, y: (B, C, H, W) or (B, C, D, H, W) of equal shape, in [0, data_range].
        data_range: value range L.
        win_size: Gaussian window (odd); every spatial side must be at least this.
        sigma: the window's standard deviation in voxels.

    Returns:
        ``(ssim, cs)``, each (B, C).

    Raises:
        ValueError: unequal shapes, a rank other than 4 or 5, or a side shorter than the window.
    """
    if x.shape != y.shape or x.dim() not in (4, 5):
        raise ValueError(
            f"SSIM expects two (B,C,H,W) or (B,C,D,H,W) tensors of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if min(x.shape[2:]) < win_size:
        raise ValueError(
            f"SSIM: spatial shape {tuple(x.shape[2:])} is smaller than the {win_size}-voxel window"
        )
    win = gaussian_window(win_size, sigma)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _gaussian_blur(x, win), _gaussian_blur(y, win)
    var_x = _gaussian_blur(x * x, win) - mu_x**2
    var_y = _gaussian_blur(y * y, win) - mu_y**2
    cov = _gaussian_blur(x * y, win) - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)


_warned: set[tuple] = set()


def ms_ssim(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 11, max_scales: int = 5) -> Tensor:
    """Per-item MS-SSIM of 2D or 3D images, with fewer scales when they do not fit.

    MS-SSIM = ∏_{j<n} relu(cs_j)^{w_j} · relu(ssim_n)^{w_n}, averaged over channels, with the images
    average-pooled by 2 between scales (odd sides padded) — Wang et al. 2003, Eq. 7, as pytorch-msssim
    computes it; ``n`` and the weights ``w`` come from :func:`msssim_scales`.

    Args:
        x, y: (B, C, H, W) or (B, C, D, H, W), non-negative, in [0, data_range].
        data_range: value range of the images.
        win_size: Gaussian window (odd).
        max_scales: 5 in Wang et al.

    Returns:
        (B,) MS-SSIM values in [0, 1].

    Raises:
        ValueError: unequal shapes, a rank other than 4 or 5, or images smaller than the window.
    """
    if x.shape != y.shape or x.dim() not in (4, 5):
        raise ValueError(
            f"ms_ssim expects two (B,C,H,W) or (B,C,D,H,W) tensors of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    n, weights = msssim_scales(tuple(x.shape[2:]), win_size, max_scales)
    key = (tuple(x.shape[2:]), win_size, n)
    if n < max_scales and key not in _warned:
        _warned.add(key)
        warnings.warn(
            f"MS-SSIM on {tuple(x.shape[2:])} images with a {win_size}-voxel window: only {n} of {max_scales} "
            f"scales fit; using weights {tuple(round(w, 4) for w in weights)} (renormalised)",
            stacklevel=2,
        )
    pool = F.avg_pool2d if x.dim() == 4 else F.avg_pool3d
    vals = []
    for i in range(n):
        ssim_pc, cs = ssim_components(x, y, data_range=data_range, win_size=win_size)
        if i < n - 1:
            vals.append(torch.relu(cs))
            pad = [s % 2 for s in x.shape[2:]]
            x, y = pool(x, kernel_size=2, padding=pad), pool(y, kernel_size=2, padding=pad)
    vals.append(torch.relu(ssim_pc))
    stack = torch.stack(vals, 0)  # (n, B, C)
    w = stack.new_tensor(weights).view(-1, 1, 1)
    return torch.prod(stack**w, dim=0).mean(1)


def reconstruction_loss(
    x: Tensor, x_hat: Tensor, loss: str = "l1+msssim", rho: float = 0.15, win_size: int = 11
) -> Tensor:
    """ℓ_r per item (Eq. 1) — also the **I** score.

    Args:
        x, x_hat: (B, 1, *shape) in the model range [-1, 1].
        loss: ``"l1"`` (ℓ_MAE only) or ``"l1+msssim"`` (ρ·L1 + (1−ρ)·(1 − MS-SSIM)).
        rho: the paper's ρ = 0.15.
        win_size: MS-SSIM window.

    Returns:
        (B,) per-item loss. MS-SSIM is computed on [0, 1] intensities (the paper's normalisation).
    """
    x, x_hat = x.float(), x_hat.float()
    l1 = (x - x_hat).abs().flatten(1).mean(1) / 2.0  # /2: L1 on the paper's [0, 1] scale
    if loss == "l1":
        return l1
    if loss != "l1+msssim":
        raise ValueError(f"unknown reconstruction loss {loss!r}; use 'l1' or 'l1+msssim'")
    # SSIM subtracts squared means from means of squares: keep it in float32 even under bf16 autocast
    with torch.autocast(device_type=x.device.type, enabled=False):
        s = ms_ssim(
            ((x + 1) / 2).clamp(0, 1), ((x_hat + 1) / 2).clamp(0, 1), data_range=1.0, win_size=win_size
        )
    return rho * l1 + (1 - rho) * (1 - s)


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per item: (B, d) → (B,)."""
    return 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1 - logvar.float()).sum(1)


def interpolate_latents(z1: Tensor, z2: Tensor, alpha: Tensor) -> Tensor:
    """z_α = α·z₁ + (1 − α)·z₂ with α (B,)."""
    a = alpha.view(-1, *([1] * (z1.dim() - 1))).to(z1)
    return a * z1 + (1 - a) * z2


def acai_losses(
    critic: nn.Module, x: Tensor, x_hat: Tensor, x_alpha: Tensor, alpha: Tensor, gamma: float = 0.2
) -> tuple[Tensor, Tensor]:
    """ACAI terms (Berthelot et al. 2019; CTFSH Eq. 2).

    Args:
        critic: c_ψ, (B, 1, *shape) → (B,).
        x: (B, 1, *shape) inputs; x_hat: their reconstructions; x_alpha: decoded interpolations g(z_α).
        alpha: (B,) the α used, α ~ U[0, 0.5].
        gamma: mixing weight of the critic's regulariser (paper: 0.2).

    Returns:
        ``ae_term`` = mean ‖c(x̂_α)‖² (the AE minimises it, weight λ, gradients reach the AE), and
        ``critic_term`` = mean ‖c(x̂_α) − α‖² + mean ‖c(γ·x + (1−γ)·x̂)‖² (the AE's outputs detached).
    """
    ae_term = critic(x_alpha).float().pow(2).mean()
    pred_alpha = critic(x_alpha.detach()).float()
    mix = gamma * x + (1 - gamma) * x_hat.detach()
    critic_term = (pred_alpha - alpha.float()).pow(2).mean() + critic(mix).float().pow(2).mean()
    return ae_term, critic_term


# ------------------------------------------------------------------------------------------------ F score


def fit_latent_gaussian(codes: Tensor | np.ndarray) -> tuple[np.ndarray, float]:
    """μ (d,) and the isotropic σ² = mean ‖f(x) − μ‖² of healthy training codes (N, d) (Eq. 3)."""
    c = np.asarray(codes.detach().cpu() if isinstance(codes, Tensor) else codes, dtype=np.float64)
    if c.ndim != 2 or len(c) < 2:
        raise ValueError(f"need (N >= 2, d) codes to fit the latent Gaussian, got shape {c.shape}")
    mu = c.mean(0)
    return mu, float(((c - mu) ** 2).sum(1).mean())


def f_score(codes: Tensor | np.ndarray, mu: np.ndarray, sigma2: float) -> np.ndarray:
    """F = 1 − exp(−‖f(x) − μ‖² / σ²) per item (Eq. 3): (N, d) → (N,) in [0, 1)."""
    c = np.asarray(codes.detach().cpu() if isinstance(codes, Tensor) else codes, dtype=np.float64)
    return 1.0 - np.exp(-((c - mu) ** 2).sum(1) / sigma2)
