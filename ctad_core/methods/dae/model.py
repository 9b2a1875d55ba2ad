"""Denoising autoencoder with coarse noise (Kascenas, Pugeault & O'Neil 2021; Kascenas et al. 2023).

Kascenas et al., "Denoising autoencoders for unsupervised anomaly detection in brain MRI" (MIDL 2022) and
"The role of noise in denoising models for anomaly detection in medical images" (Medical Image Analysis
2023): a U-Net is trained on healthy images to remove **coarse** Gaussian noise — noise drawn on a grid
``noise_cell`` times coarser than the image and interpolated up, added to the head (foreground) only — and
the anomaly map is the post-processed residual |x − f(x)| of the un-noised image. Coarse noise makes the
network repair blob-like deviations, which is what lesions look like, while fine detail passes the skip
connections. They report it as a fast, simple, state-of-the-art reconstruction baseline.

Choices here (the papers work on 2D MRI slices at 128²): the U-Net follows the common layout (two 3×3 conv
→ batch norm → LeakyReLU per level, max-pool down, transposed-conv up, skip concatenation); 2D or 3D by
``spatial_dims`` (:mod:`ctad_core.nn.nd`); noise cell 8 pixels (their 16² noise on 128² images) and
std 0.2 of the model range (they z-score images; 0.2 of our [−1, 1] brain window is ≈ 8 HU).

>>> import torch
>>> net = UNet(UNetConfig(spatial_dims=2, channels=(8, 16)))
>>> tuple(net(torch.zeros(2, 1, 32, 32)).shape)
(2, 1, 32, 32)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ctad_core.nn import nd


@dataclass
class UNetConfig:
    """U-Net widths.

    Attributes:
        spatial_dims: 2 or 3.
        channels: feature channels per level, top to bottom (len − 1 poolings).
        in_channels: image channels.
    """

    spatial_dims: int = 2
    channels: tuple[int, ...] = (32, 64, 128, 256)
    in_channels: int = 1

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) < 2:
            raise ValueError(f"a U-Net needs at least two levels, got channels={self.channels}")
        nd.as_shape(1, self.spatial_dims)  # checks spatial_dims

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


def _block(sd: int, cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nd.conv(sd, cin, cout, 3, padding=1, bias=False), nd.norm("batch", sd, cout), nn.LeakyReLU(0.2, True),
        nd.conv(sd, cout, cout, 3, padding=1, bias=False), nd.norm("batch", sd, cout), nn.LeakyReLU(0.2, True),
    )


class UNet(nn.Module):
    """U-Net mapping (B, C, *spatial) → (B, C, *spatial); each side divisible by 2^(levels − 1)."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        sd, ch = cfg.spatial_dims, cfg.channels
        self.down = nn.ModuleList([_block(sd, cfg.in_channels if i == 0 else ch[i - 1], c) for i, c in enumerate(ch)])
        self.pool = (nn.MaxPool2d, nn.MaxPool3d)[sd - 2](2)
        self.up = nn.ModuleList([nd.conv_transpose(sd, ch[i + 1], ch[i], 2, stride=2) for i in range(len(ch) - 1)])
        self.merge = nn.ModuleList([_block(sd, 2 * ch[i], ch[i]) for i in range(len(ch) - 1)])
        self.head = nd.conv(sd, ch[0], cfg.in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2 ** (len(self.cfg.channels) - 1)
        if any(s % f for s in x.shape[2:]):
            raise ValueError(f"input sides {tuple(x.shape[2:])} must be divisible by {f}")
        skips = []
        h = x
        for i, block in enumerate(self.down):
            h = block(h)
            if i < len(self.down) - 1:
                skips.append(h)
                h = self.pool(h)
        for i in reversed(range(len(self.up))):
            h = self.merge[i](torch.cat([self.up[i](h), skips[i]], dim=1))
        return self.head(h)


def coarse_noise(
    x: torch.Tensor, cell: int = 8, std: float = 0.2, foreground: float = -0.99, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Coarse Gaussian noise for images ``x`` (B, C, *spatial) in model range, zero outside the head.

    Noise ~ N(0, std²) is drawn on a grid ``cell`` times coarser along each axis and interpolated up
    (bilinear/trilinear, ``align_corners=False``), then multiplied by the foreground mask ``x > foreground``
    (air, at the window's lower bound −1, stays clean).

    Raises:
        ValueError: ``cell < 1`` or ``std < 0``.
    """
    if cell < 1 or std < 0:
        raise ValueError(f"cell must be >= 1 and std >= 0, got cell={cell}, std={std}")
    spatial = x.shape[2:]
    coarse = [max(1, -(-s // cell)) for s in spatial]
    z = torch.randn((x.shape[0], x.shape[1], *coarse), generator=generator, device="cpu").to(x.device, x.dtype)
    mode = "bilinear" if len(spatial) == 2 else "trilinear"
    up = F.interpolate(z, size=tuple(spatial), mode=mode, align_corners=False)
    # interpolation shrinks the variance; rescale so the added noise has the requested std
    up = up / up.flatten(1).std(dim=1).clamp_min(1e-8).view(-1, *([1] * (up.dim() - 1)))
    return std * up * (x > foreground).to(x.dtype)


class DenoisingStep(nn.Module):
    """One training step's loss: MSE between f(x + coarse noise) and x (the papers' L2 objective)."""

    def __init__(self, net: UNet, cell: int = 8, std: float = 0.2) -> None:
        super().__init__()
        self.net, self.cell, self.std = net, cell, std

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noisy = x + coarse_noise(x, self.cell, self.std, generator=generator)
        return F.mse_loss(self.net(noisy), x)
