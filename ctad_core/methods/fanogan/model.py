"""3D (and 2D) f-AnoGAN of Viana et al. 2021 (seed 001): WGAN-GP generator and critic after Kwon et al.
2019, an encoder with a tanh output, and the anomaly score of Eq. 6.

Architecture (Kwon et al.'s 3D brain GAN, as Viana's Fig. 3 shows it, at 64³)::

    G: z (latent_dim) → Linear → 512×4³ → BN, ReLU
       → [×2 nearest upsample → conv3 → BN → ReLU] … 256×8³, 128×16³, 64×32³
       → ×2 upsample → conv3 → 1×64³ → tanh
    D: 1×64³ → [conv4 s2 → norm → LeakyReLU(0.2)] … 64×32³, 128×16³, 256×8³, 512×4³ (= f(x), the "*" layer)
       → conv4³ (valid) → scalar (no sigmoid: a Wasserstein critic)
    E: the critic's conv stack (BatchNorm) → conv4³ → latent_dim → tanh

Widths, depth and latent size are parameters: depth follows the image size (smallest side / 2^depth = 4),
so a 32³ smoke volume gets three stages and a 2D 64² slice the same blocks with ``spatial_dims=2``.

The papers were silent on the critic's normalisation; BatchNorm is incompatible with a per-sample gradient
penalty, so the critic uses layer normalisation (``GroupNorm(1, C)``) as Gulrajani et al. recommend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from ctad_core.nn import nd


@dataclass
class FAnoGANConfig:
    """Shapes and widths of the f-AnoGAN networks.

    Attributes:
        image_shape: spatial shape, e.g. ``(64, 64, 64)`` (Viana) or ``(64, 64)`` for the 2D comparison.
        latent_dim: size of z (Viana: 2500; Kwon: 1000).
        base_channels: width of the critic's first / generator's last block (Kwon: 64).
        max_channels: cap on the widths (Kwon: 512).
        critic_norm: normalisation in the critic (``layer``, ``instance`` or ``none``; never ``batch``).
        bottom: side of the smallest feature map (4 in Kwon et al.).
    """

    image_shape: tuple[int, ...] = (64, 64, 64)
    latent_dim: int = 2500
    base_channels: int = 64
    max_channels: int = 512
    critic_norm: str = "layer"
    bottom: int = 4
    spatial_dims: int = field(init=False)

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(s) for s in self.image_shape)
        self.spatial_dims = len(self.image_shape)
        nd.as_shape(self.image_shape, self.spatial_dims)
        if self.critic_norm == "batch":
            raise ValueError("critic_norm='batch' breaks the per-sample gradient penalty; use layer/instance/none")

    @property
    def depth(self) -> int:
        return nd.halvings(self.image_shape, self.bottom)

    @property
    def bottom_shape(self) -> tuple[int, ...]:
        return tuple(s // 2**self.depth for s in self.image_shape)

    def widths(self) -> list[int]:
        """Critic/encoder widths from the input side, e.g. ``[64, 128, 256, 512]``."""
        return [min(self.max_channels, self.base_channels * 2**i) for i in range(self.depth)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("spatial_dims")
        d["image_shape"] = list(self.image_shape)
        return d


def _prod(xs: Sequence[int]) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


class Generator(nn.Module):
    """G: z (B, latent_dim) → image (B, 1, *image_shape) in [-1, 1]."""

    def __init__(self, cfg: FAnoGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        sd, w = cfg.spatial_dims, cfg.widths()[::-1]  # e.g. [512, 256, 128, 64]
        self.fc = nn.Linear(cfg.latent_dim, w[0] * _prod(cfg.bottom_shape))
        self.fc_norm = nd.norm("batch", sd, w[0])
        blocks: list[nn.Module] = []
        for cin, cout in zip(w[:-1], w[1:]):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nd.conv(sd, cin, cout, 3, padding=1, bias=False),
                nd.norm("batch", sd, cout),
                nn.ReLU(inplace=True),
            ]
        blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nd.conv(sd, w[-1], 1, 3, padding=1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: Tensor) -> Tensor:
        """z (B, latent_dim) → (B, 1, *image_shape)."""
        h = self.fc(z).view(z.shape[0], -1, *self.cfg.bottom_shape)
        return self.blocks(torch.relu(self.fc_norm(h)))


class _DownStack(nn.Module):
    """Strided conv stack shared by the critic and the encoder: (B, 1, *shape) → (B, C_max, *bottom)."""

    def __init__(self, cfg: FAnoGANConfig, norm_kind: str) -> None:
        super().__init__()
        sd, w = cfg.spatial_dims, cfg.widths()
        layers: list[nn.Module] = []
        cin = 1
        for i, cout in enumerate(w):
            layers.append(nd.conv(sd, cin, cout, 4, stride=2, padding=1, bias=(i == 0 or norm_kind == "none")))
            if i > 0:  # no normalisation on the first block (DCGAN habit, kept by Kwon et al.)
                layers.append(nd.norm(norm_kind, sd, cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        self.net = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Critic(nn.Module):
    """D: image (B, 1, *shape) → score (B,); ``features`` gives f(x) (B, m), the layer marked * in Fig. 3."""

    def __init__(self, cfg: FAnoGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.stack = _DownStack(cfg, cfg.critic_norm)
        self.head = nd.conv(cfg.spatial_dims, self.stack.out_channels, 1, cfg.bottom_shape)

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """x (B, 1, *shape) → (B,) critic values, and f(x) (B, m) if ``return_features``."""
        h = self.stack(x)
        out = self.head(h).flatten(1).mean(1)
        return (out, h.flatten(1)) if return_features else out

    def features(self, x: Tensor) -> Tensor:
        """f(x): (B, m) activations of the last hidden block."""
        return self.stack(x).flatten(1)


class Encoder(nn.Module):
    """E: image (B, 1, *shape) → z (B, latent_dim) in (-1, 1) (Viana added the tanh)."""

    def __init__(self, cfg: FAnoGANConfig) -> None:
        super().__init__()
        self.stack = _DownStack(cfg, "batch")
        self.head = nd.conv(cfg.spatial_dims, self.stack.out_channels, cfg.latent_dim, cfg.bottom_shape)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.head(self.stack(x)).flatten(1))


class FAnoGAN(nn.Module):
    """The three networks together, with the anomaly score.

    Example:
        >>> m = FAnoGAN(FAnoGANConfig(image_shape=(16, 16, 16), latent_dim=8, base_channels=2))
        >>> m.generator(torch.randn(2, 8)).shape
        torch.Size([2, 1, 16, 16, 16])
    """

    def __init__(self, cfg: FAnoGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.generator = Generator(cfg)
        self.critic = Critic(cfg)
        self.encoder = Encoder(cfg)

    def reconstruct(self, x: Tensor) -> Tensor:
        """x̃ = G(E(x)): (B, 1, *shape) → (B, 1, *shape)."""
        return self.generator(self.encoder(x))


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP penalty E[(‖∇_x̂ D(x̂)‖₂ − 1)²] (Viana Eq. 2, without λ), x̂ on lines between real and fake.

    The gradient of each sample is flattened over channels and space before its norm is taken.

    Args:
        critic: D, maps (B, ...) to (B,).
        real: (B, C, *shape) real images.
        fake: (B, C, *shape) generated images (detached).
        generator: RNG for the interpolation weights ε ~ U[0, 1] (one per sample).

    Returns:
        Scalar penalty (mean over the batch).
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator).to(real)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norms = grad.float().flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def critic_loss(d_real: Tensor, d_fake: Tensor, gp: Tensor, lam: float) -> Tensor:
    """L_D = E[D(x̃)] − E[D(x)] + λ·GP (Viana Eq. 2). Inputs (B,), (B,), scalar."""
    return d_fake.float().mean() - d_real.float().mean() + lam * gp


def generator_loss(d_fake: Tensor) -> Tensor:
    """L_G = −E[D(G(z))] (Viana Eq. 3)."""
    return -d_fake.float().mean()


def encoder_loss_terms(x: Tensor, x_rec: Tensor, critic: Critic, kappa: float) -> tuple[Tensor, Tensor, Tensor]:
    """Per-item L_img, L_feat and L_E = L_img + κ·L_feat (Viana Eqs. 4–6).

    L_img = ‖x − x̃‖²/n (n voxels), L_feat = ‖f(x) − f(x̃)‖²/m (m features of the critic's "*" layer).

    Args:
        x: (B, 1, *shape) input; x_rec: (B, 1, *shape) its reconstruction G(E(x)).
        critic: the (frozen) critic providing f.
        kappa: weight of the feature term.

    Returns:
        Three (B,) tensors: L_img, L_feat, L_E.
    """
    l_img = (x.float() - x_rec.float()).pow(2).flatten(1).mean(1)
    f_x, f_rec = critic.features(torch.cat([x, x_rec])).float().chunk(2)
    l_feat = (f_x - f_rec).pow(2).mean(1)
    return l_img, l_feat, l_img + kappa * l_feat
