"""Luo et al. 2023 (seed 004): 3D residual autoencoder with a dense (or spatial) latent, and the slice
normality score of its Appendix E1.

Architecture (Fig. 1 C–D; the authors built it with MONAI)::

    stem:    conv k3 s1 → LeakyReLU → BatchNorm
    encoder: 4 down-sampling residual blocks (DRB), 32, 64, 128, 256 channels; each DRB has three
             convolution groups (conv → LeakyReLU → BatchNorm), the first with stride 2, plus a strided
             conv on the residual path
    latent:  dense — flatten → Linear → 512 (default);  spatial — 1×1×1 conv to ``spatial_channels``
             channels at 1/16 resolution (the ablation: 10×12×6×{1…64} for their 160×192×96 crop)
    decoder: mirror of the encoder with transposed convs (up-sampling residual blocks) → conv k3 → 1 channel

Training (Sec. 2.4): L2 loss, Adam lr 1e-4, batch 8, 200 epochs, L2 regularisation 1e-5 on kernel weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor, nn

from ctad_core.nn import nd


@dataclass
class ResAEConfig(nd.PyramidConfig):
    """Shapes and widths of Luo's residual AE.

    Attributes:
        image_shape: spatial shape (paper: 160×192×96), divisible by 2^len(channels).
        channels: DRB widths (paper: 32, 64, 128, 256).
        latent: ``"dense"`` (paper default) or ``"spatial"`` (ablation).
        latent_dim: dense latent size (paper: 512).
        spatial_channels: channels of the spatial latent (paper: 1–64).
    """

    image_shape: tuple[int, ...] = (160, 192, 96)
    channels: tuple[int, ...] = (32, 64, 128, 256)
    latent: str = "dense"
    latent_dim: int = 512
    spatial_channels: int = 16

    def __post_init__(self) -> None:
        if self.latent not in ("dense", "spatial"):
            raise ValueError(f"latent must be 'dense' or 'spatial', got {self.latent!r}")
        self._normalise_pyramid("residual blocks")



def _group(sd: int, cin: int, cout: int, stride: int = 1, transpose: bool = False) -> nn.Sequential:
    """conv (or transposed conv) k3 → LeakyReLU → BatchNorm, the paper's "convolution group"."""
    if transpose:
        c = nd.conv_transpose(sd, cin, cout, 3, stride=stride, padding=1, output_padding=stride - 1)
    else:
        c = nd.conv(sd, cin, cout, 3, stride=stride, padding=1)
    return nn.Sequential(c, nn.LeakyReLU(0.2, inplace=True), nd.norm("batch", sd, cout))


class ResidualBlock(nn.Module):
    """Down- (DRB) or up-sampling (URB) residual block: (B, cin, *s) → (B, cout, *s/2) or (*2s).

    Three convolution groups on the main path (the first strided), a strided (transposed) conv on the
    residual path, summed.
    """

    def __init__(self, spatial_dims: int, cin: int, cout: int, up: bool = False, groups: int = 3) -> None:
        super().__init__()
        sd = spatial_dims
        main = [_group(sd, cin, cout, stride=2, transpose=up)]
        main += [_group(sd, cout, cout) for _ in range(groups - 1)]
        self.main = nn.Sequential(*main)
        if up:
            self.skip = nd.conv_transpose(sd, cin, cout, 3, stride=2, padding=1, output_padding=1)
        else:
            self.skip = nd.conv(sd, cin, cout, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.skip(x)


class ResAE(nn.Module):
    """Luo's 3D residual AE (works in 2D too via ``image_shape`` of length 2).

    Example:
        >>> import torch
        >>> m = ResAE(ResAEConfig(image_shape=(16, 16, 16), channels=(2, 2, 4, 4), latent_dim=8))
        >>> m(torch.zeros(2, 1, 16, 16, 16)).shape
        torch.Size([2, 1, 16, 16, 16])
    """

    def __init__(self, cfg: ResAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        sd, ch = cfg.spatial_dims, cfg.channels
        self.stem = _group(sd, 1, ch[0])
        self.down = nn.Sequential(*[ResidualBlock(sd, a, b) for a, b in zip((ch[0],) + ch[:-1], ch)])
        flat = ch[-1] * int(np.prod(cfg.bottom_shape))
        if cfg.latent == "dense":
            self.to_latent: nn.Module = nn.Sequential(nn.Flatten(1), nn.Linear(flat, cfg.latent_dim))
            self.from_latent: nn.Module = nn.Linear(cfg.latent_dim, flat)
        else:
            self.to_latent = nd.conv(sd, ch[-1], cfg.spatial_channels, 1)
            self.from_latent = nd.conv(sd, cfg.spatial_channels, ch[-1], 1)
        self.dec_act = nn.LeakyReLU(0.2)
        outs = list(ch[-2::-1]) + [ch[0]]
        self.up = nn.Sequential(*[ResidualBlock(sd, a, b, up=True) for a, b in zip((ch[-1],) + tuple(outs[:-1]), outs)])
        self.head = nd.conv(sd, ch[0], 1, 3, padding=1)  # linear output in the model range

    def encode(self, x: Tensor) -> Tensor:
        """x (B, 1, *shape) → z: (B, latent_dim) dense or (B, spatial_channels, *bottom) spatial."""
        return self.to_latent(self.down(self.stem(x)))

    def decode(self, z: Tensor) -> Tensor:
        """z → x̂ (B, 1, *shape)."""
        h = self.from_latent(z)
        if self.cfg.latent == "dense":
            h = h.view(z.shape[0], self.cfg.channels[-1], *self.cfg.bottom_shape)
        return self.head(self.up(self.dec_act(h)))

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimiser parameter groups with L2 ``weight_decay`` on conv/linear kernels only (Luo: 1e-5)."""
    decay, no_decay = [], []
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_kernel = name == "weight" and isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
            (decay if is_kernel else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
