"""Losses shared by the workbook's methods: GAN hinge losses, FastGAN's decoder loss, latent sampling,
per-item pixel and perceptual losses, and a VGG16 feature extractor that loads a local torchvision file.

Per-item losses return shape (B,) so that callers decide how to reduce: training averages over the
batch, latent restoration *sums* (so that each image's latent gets exactly the gradient it would get
alone).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

FeatureFn = Callable[[torch.Tensor], Sequence[torch.Tensor]]


# ----------------------------------------------------------------------------------------------- GAN losses
def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss ``E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]`` (seed 000, Eq. 2).

    Args:
        real_logits: D's outputs on real images, any shape (patch logits are averaged).
        fake_logits: D's outputs on generated images, any shape.

    Returns:
        Scalar loss.
    """
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss ``-E[D(G(z))]`` (seed 000, Eq. 1). Scalar."""
    return -fake_logits.mean()


def d_reconstruction_loss(
    recs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], perceptual: FeatureFn | None = None
) -> torch.Tensor:
    """FastGAN's self-supervised loss of D's decoders: the sum over decoders of mean L1 (+ perceptual).

    FastGAN uses LPIPS; nothing can be downloaded here, so the default is pixel L1 between each
    decoder output and its target (the down-sampled image, or a quadrant of it); with ``perceptual`` a
    feature distance (:func:`perceptual_loss`) is added.

    Args:
        recs: decoder outputs, each (B, 1, s, s).
        targets: the matching real-image targets, same shapes.
        perceptual: optional feature extractor (e.g. :class:`VGG16Features`).

    Returns:
        Scalar loss.
    """
    if len(recs) != len(targets):
        raise ValueError(f"{len(recs)} reconstructions but {len(targets)} targets")
    total = recs[0].new_zeros(())
    for r, t in zip(recs, targets):
        if r.shape != t.shape:
            raise ValueError(f"reconstruction {tuple(r.shape)} vs target {tuple(t.shape)}")
        total = total + (r - t).abs().mean()
        if perceptual is not None:
            total = total + perceptual_loss(r, t, perceptual).mean()
    return total


def sample_z(
    n: int, nz: int = 512, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Latent vectors ``z ~ U[-1, 1]^nz`` (seed 000), shape (n, nz), drawn on the CPU generator then moved."""
    return (torch.rand(n, nz, generator=generator) * 2.0 - 1.0).to(device)


# -------------------------------------------------------------------------------------- per-item image losses
def mse_per_item(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per item: (B, *) × (B, *) → (B,)."""
    if x.shape != y.shape:
        raise ValueError(f"mse_per_item: {tuple(x.shape)} vs {tuple(y.shape)}")
    return (x - y).pow(2).flatten(1).mean(1)


def _unit(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def perceptual_loss(x: torch.Tensor, y: torch.Tensor, features: FeatureFn) -> torch.Tensor:
    """LPIPS-style distance without learned weights (Johnson et al.'s feature loss, normalised).

    Feature maps of ``x`` and ``y`` are unit-normalised along channels at each position; the squared
    difference is averaged over channels and positions and summed over layers.

    Args:
        x, y: (B, 1, H, W) images in [-1, 1].
        features: callable returning a list of (B, C_l, H_l, W_l) feature maps.

    Returns:
        (B,) distances.
    """
    return _perceptual_to(features(x), unit_features(y, features), x.new_zeros(x.shape[0]))


def unit_features(y: torch.Tensor, features: FeatureFn) -> list[torch.Tensor]:
    """The channel-unit-normalised feature maps of ``y`` that :func:`perceptual_loss` compares with: computed
    once for a fixed target (latent restoration runs thousands of steps against the same image)."""
    return [_unit(b) for b in features(y)]


def _perceptual_to(fx: list[torch.Tensor], unit_fy: list[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
    for a, ub in zip(fx, unit_fy, strict=True):
        out = out + (_unit(a) - ub).pow(2).mean(dim=tuple(range(1, a.ndim)))
    return out


class ReconstructionLoss(nn.Module):
    """``w1 · perceptual(x, x_hat) + w2 · MSE(x, x_hat)`` per item (seed 000, Eqs. 3 and 4).

    Args:
        features: feature extractor for the perceptual term, or None for pure MSE.
        w_percept: w1 (seed: 1).
        w_mse: w2 (seed: 10).

    Shapes:
        x, x_hat (B, 1, H, W) → (B,).
    """

    def __init__(
        self, features: FeatureFn | None = None, w_percept: float = 1.0, w_mse: float = 10.0
    ) -> None:
        super().__init__()
        self.features = features
        self.w_percept = float(w_percept)
        self.w_mse = float(w_mse)

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        return self._loss(x, x_hat, None)

    def _loss(self, x: torch.Tensor, x_hat: torch.Tensor, unit_fx: list[torch.Tensor] | None) -> torch.Tensor:
        loss = self.w_mse * mse_per_item(x_hat.float(), x.float())
        if self.features is not None and self.w_percept != 0:
            f_hat = self.features(x_hat)  # first, as perceptual_loss(x_hat, x) does
            unit_fx = unit_features(x, self.features) if unit_fx is None else unit_fx
            perceptual = _perceptual_to(f_hat, unit_fx, x_hat.new_zeros(x_hat.shape[0]))
            loss = loss + self.w_percept * perceptual.float()
        return loss

    def bind(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """This loss against the fixed target ``x``: ``bind(x)(x_hat) == self(x, x_hat)``, the same numbers,
        with ``x``'s features computed once (no gradient flows to ``x``) instead of at every call."""
        unit_fx = None
        if self.features is not None and self.w_percept != 0:
            with torch.no_grad():
                unit_fx = unit_features(x, self.features)
        return lambda x_hat: self._loss(x, x_hat, unit_fx)


class DiscriminatorFeatures(nn.Module):
    """A trained FastGAN discriminator's big-branch features as a perceptual feature space (frozen, eval).

    Like f-AnoGAN's feature residual: the workbook trains this space itself, so nothing is downloaded.
    """

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.d = discriminator.eval()
        for p in self.d.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> DiscriminatorFeatures:  # stays in eval mode
        super().train(mode)
        self.d.eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.d.features(x)


# ------------------------------------------------------------------------------------------------------ VGG16
#: torchvision's VGG16 "D" configuration; "M" is a 2×2 max-pool.
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: indices in ``features`` after which LPIPS takes activations: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
VGG16_TAPS = (3, 8, 15, 22, 29)


class VGG16Features(nn.Module):
    """torchvision-compatible VGG16 ``features`` (state_dict keys ``features.{i}.weight/bias``).

    Loads a user's local ``vgg16-397923af.pth`` with ``weights_only=True`` (classifier keys are
    ignored). Grey images in [-1, 1] are mapped to [0, 1], repeated to RGB and ImageNet-normalised.

    Args:
        weights: path of the torchvision checkpoint, or None for random weights (tests only).
        taps: feature indices whose ReLU outputs are returned.

    Shapes:
        x (B, 1, H, W) → list of (B, C_l, H / 2^l, W / 2^l).
    """

    def __init__(self, weights: str | os.PathLike | None = None, taps: Sequence[int] = VGG16_TAPS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.taps = tuple(taps)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        if weights is not None:
            self.load(weights)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def load(self, path: str | os.PathLike) -> None:
        """Load the ``features.*`` tensors of a torchvision VGG16 checkpoint (strict on those keys)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"VGG16 weights not found: {path} (a torchvision vgg16-397923af.pth)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        missing = set(self.features.state_dict()) - set(feats)
        if missing:
            raise ValueError(
                f"{path}: not a torchvision VGG16 state_dict, missing features.{sorted(missing)[:3]}"
            )
        self.features.load_state_dict(feats, strict=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1.0) / 2.0).expand(-1, 3, -1, -1)
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
            if i >= max(self.taps):
                break
        return out


def make_feature_extractor(
    feature_space: str, discriminator: nn.Module | None = None, vgg_weights: str | os.PathLike | None = None
) -> nn.Module | None:
    """Build the perceptual feature space named by a notebook parameter.

    Args:
        feature_space: ``"discriminator"`` (default of the workbook), ``"vgg16"`` (needs ``vgg_weights``)
            or ``"none"`` (pure MSE).
        discriminator: the trained discriminator, for ``"discriminator"``.
        vgg_weights: local torchvision VGG16 file, for ``"vgg16"``.

    Returns:
        A frozen module mapping (B, 1, H, W) to a list of feature maps, or None.
    """
    if feature_space == "none":
        return None
    if feature_space == "discriminator":
        if discriminator is None:
            raise ValueError("feature_space='discriminator' needs the trained discriminator")
        return DiscriminatorFeatures(discriminator)
    if feature_space == "vgg16":
        if not vgg_weights:
            raise ValueError("feature_space='vgg16' needs vgg_weights: a local path to vgg16-397923af.pth")
        return VGG16Features(vgg_weights)
    raise ValueError(f"feature_space must be 'discriminator', 'vgg16' or 'none', got {feature_space!r}")
