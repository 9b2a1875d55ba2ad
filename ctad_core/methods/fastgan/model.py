"""FastGAN for one-channel CT slices, and the encoder of Walluscheck et al. (seed 000).

Written from the descriptions in Liu et al., "Towards faster and stabilized GAN training for
high-fidelity few-shot image synthesis" (ICLR 2021) and Walluscheck et al. 2024 (Sec. 2.2).

Generator: ``z`` (B, nz) → 4×4 (transposed conv, BN, GLU) → one up-block per doubling up to the image
size (nearest up-sampling, 3×3 conv, BN, GLU; every other block has two convs and noise injection) →
3×3 conv + tanh. Skip-layer excitation (SLE) gates the features at 64…512 with channel weights
computed from the features at 1/16 of that size (4→64, 8→128, 16→256, 32→512). One implementation
serves 64…1024 px; at 512 px the generator simply ends one block earlier than at 1024 px (the seed's
"one up-sampling block fewer"). A second head gives a small image (≤ 128 px) for the discriminator's
small branch.

Discriminator: spectral normalisation on every conv. A big branch reduces the image to 8×8 through
residual down-blocks, with SLE from 8× larger features; a small branch sees the image at ≤ 128 px.
Both end in 5×5 patch logits. On real images three small decoders reconstruct the (down-sampled)
image from the 8×8 big features, from a random quadrant of the 16×16 features (target: the same
quadrant of the image), and from the small branch — the self-supervised regulariser of FastGAN. Seed
000 feeds the decoders smaller feature maps, "four instead of eight": ``dec_in=4`` average-pools the
8×8 features to 4×4 and the decoders take one up-block more to reach the same 128² output
(``dec_in=8`` is FastGAN's original).

D's channel plan is FastGAN's (Liu et al. 2021, Fig. 3 and the released code): the big branch has
``ndf/4`` channels at 256² and doubles them at every halving, up to ``8·ndf`` at 8² (the 512² and
1024² stems narrow further, ``ndf/8`` at 512²); the logit head widens 8² features to ``16·ndf`` with a
1×1 conv; the small branch is half as wide as the big one at the same resolution (``4·ndf`` at 8²);
the decoders follow the generator's plan at half the width (``ndf/2`` at 128²). See :data:`D_MULT`,
:data:`D_SMALL_MULT` and :data:`DEC_MULT`. At 256², ``ndf=64`` and ``dec_in=8`` this is FastGAN's
11 523 120 parameters for one input channel.

Encoder (seed Fig. 2): ``log2(size) - 1`` down-blocks of stride-2 conv, BN and GLU (eight at 512 px)
down to 2×2, then a linear layer to ``nz`` and tanh, so that ``E(x)`` lies in the generator's
latent box [-1, 1]^nz.

Noise injection at inference: the generator's noise is random while training (``noise_mode="random"``)
and switched off (``"zero"``, its expectation) for the encoder and for latent restoration, so that
``G(z)`` is a deterministic function of ``z`` and one image's restoration does not depend on the
others in its batch; ``"fixed"`` uses one seeded noise map per layer, shared by every item.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

#: FastGAN's channel multipliers (times ``ngf``) of the generator's features at each resolution.
G_MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
#: Channel multipliers (times ``ndf``) of the discriminator's big branch at each feature resolution
#: (FastGAN: 16 channels at 256², doubling per halving to 512 at 8²). Key 4 is the hidden width of the
#: logit head that maps the 8×8 features to 5×5 logits.
D_MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 1, 128: 0.5, 256: 0.25, 512: 0.125}
#: Channel multipliers (times ``ndf``) of D's small branch at each resolution: half the big branch's.
D_SMALL_MULT = {8: 4, 16: 2, 32: 1, 64: 0.5}
#: Channel multipliers (times ``ndf``) of the output of each up-block of D's decoders, by the block's
#: output resolution: the generator's plan at half width (FastGAN: 128, 64, 64, 32 channels at 16…128²).
DEC_MULT = {8: 4, 16: 2, 32: 1, 64: 1, 128: 0.5}
SIZES = (64, 128, 256, 512, 1024)


@dataclass
class FastGANConfig:
    """Architecture and training settings of the 2D FastGAN (seed 000 defaults where it gives them).

    Attributes:
        image_size: 64…1024, a power of two (seed: 512).
        nz: latent size (seed: 512, z ~ U[-1, 1]^nz).
        ngf / ndf: generator / discriminator width (FastGAN: 64; tiny on CPU).
        min_ch: smallest channel count of any layer.
        g_spectral_norm: spectral normalisation in G too (as the FastGAN reference code does).
        dec_in: spatial size of the features fed to D's decoders (seed: 4, FastGAN: 8).
        steps, batch_size, lr, betas: optimisation (seed: 100 000, 8, 2e-4, Adam (0.5, 0.999)).
        ema_decay: decay of the EMA copy of G used after training.
        augment: differentiable augmentation policy (comma-separated: flip, contrast, translation).
        translation: largest shift as a fraction of the image side.
        rec_weight: weight of D's reconstruction loss.
        sample_every, ckpt_every, log_every: steps between saved samples / checkpoints / history rows.
        n_samples: number of fixed-z samples saved along training.
    """

    image_size: int = 512
    nz: int = 512
    ngf: int = 64
    ndf: int = 64
    min_ch: int = 4
    g_spectral_norm: bool = True
    dec_in: int = 4
    steps: int = 100_000
    batch_size: int = 8
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = 0.999
    augment: str = "flip,contrast,translation"
    translation: float = 0.125
    rec_weight: float = 1.0
    sample_every: int = 1000
    ckpt_every: int = 1000
    log_every: int = 10
    n_samples: int = 8

    def __post_init__(self) -> None:
        if self.image_size not in SIZES:
            raise ValueError(f"image_size must be one of {SIZES}, got {self.image_size}")
        if self.dec_in not in (4, 8):
            raise ValueError(f"dec_in must be 4 or 8, got {self.dec_in}")
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FastGANConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class EncoderConfig:
    """Encoder settings (seed 000, Sec. 2.2.2).

    Attributes:
        image_size: as the generator's.
        nz: as the generator's.
        width: channels after the first down-block (doubled per block up to ``max_ch``).
        max_ch: channel ceiling.
        steps, batch_size, lr, betas: optimisation (seed: 20 000 steps; batch and lr unstated: 8, 2e-4).
        w_percept, w_mse: loss weights (seed: 1, 10).
        erase_p: probability of random erasing per image (seed: 0.25).
        erase_area: (min, max) fraction of the image erased.
        feature_space: perceptual feature space: ``"discriminator"``, ``"vgg16"`` or ``"none"``.
        vgg_weights: path of a local torchvision ``vgg16-397923af.pth`` for ``feature_space="vgg16"``.
        log_every, ckpt_every: steps between history rows / checkpoints.
    """

    image_size: int = 512
    nz: int = 512
    width: int = 32
    max_ch: int = 512
    steps: int = 20_000
    batch_size: int = 8
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    w_percept: float = 1.0
    w_mse: float = 10.0
    erase_p: float = 0.25
    erase_area: tuple[float, float] = (0.02, 0.25)
    feature_space: str = "discriminator"
    vgg_weights: str = ""
    log_every: int = 10
    ckpt_every: int = 1000

    def __post_init__(self) -> None:
        if self.image_size not in SIZES:
            raise ValueError(f"image_size must be one of {SIZES}, got {self.image_size}")
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        self.erase_area = tuple(float(a) for a in self.erase_area)  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["erase_area"] = list(self.erase_area)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# ------------------------------------------------------------------------------------------ building blocks
def _conv(sn: bool, *args: Any, **kwargs: Any) -> nn.Module:
    c = nn.Conv2d(*args, **kwargs)
    return spectral_norm(c) if sn else c


def _channels(mult: dict[int, float], width: int, res: int, min_ch: int) -> int:
    return max(min_ch, int(round(mult[res] * width)))


class NoiseInjection(nn.Module):
    """``x + w · n`` with a learned scalar ``w`` (initialised at 0) and per-pixel noise ``n ~ N(0, 1)``.

    ``mode``: ``"random"`` (fresh noise per item, training), ``"zero"`` (no noise: the deterministic
    mean, used for encoding and restoration) or ``"fixed"`` (one seeded (1, 1, H, W) map, broadcast).
    """

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.mode = "random"
        self.fixed_seed = 0
        self._fixed: dict[tuple, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.mode == "zero":
            return x
        if self.mode == "fixed":
            key = (h, w, x.device, x.dtype, self.fixed_seed)
            if key not in self._fixed:
                g = torch.Generator().manual_seed(self.fixed_seed * 7919 + h)
                self._fixed[key] = torch.randn(1, 1, h, w, generator=g).to(x.device, x.dtype)
            return x + self.weight * self._fixed[key]
        return x + self.weight * torch.randn(b, 1, h, w, device=x.device, dtype=x.dtype)


class SLE(nn.Module):
    """Skip-layer excitation: channel gates for a large feature map from a small one.

    (B, C_lo, h, w) → adaptive avg-pool 4×4 → 4×4 conv (valid) → LeakyReLU(0.1) → 1×1 conv → sigmoid →
    (B, C_hi, 1, 1), multiplied onto the (B, C_hi, H, W) map.
    """

    def __init__(self, c_lo: int, c_hi: int, sn: bool) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),
            _conv(sn, c_lo, c_hi, 4, 1, 0, bias=False),
            nn.LeakyReLU(0.1),
            _conv(sn, c_hi, c_hi, 1, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        return hi * self.gate(lo)


class UpBlock(nn.Module):
    """Nearest ×2 → 3×3 conv → [noise] → BN → GLU, twice when ``comp`` (then with noise injection)."""

    def __init__(self, c_in: int, c_out: int, comp: bool, sn: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(sn, c_in, 2 * c_out, 3, 1, 1, bias=False),
        ]
        if comp:
            layers.append(NoiseInjection())
        layers += [nn.BatchNorm2d(2 * c_out), nn.GLU(dim=1)]
        if comp:
            layers += [
                _conv(sn, c_out, 2 * c_out, 3, 1, 1, bias=False),
                NoiseInjection(),
                nn.BatchNorm2d(2 * c_out),
                nn.GLU(dim=1),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def small_size(image_size: int) -> int:
    """Size of the discriminator's small branch and of its decoders' outputs: ``min(128, size / 2)``."""
    return min(128, image_size // 2)


# ------------------------------------------------------------------------------------------------ generator
class Generator(nn.Module):
    """FastGAN generator.

    Args:
        cfg: :class:`FastGANConfig` (``image_size``, ``nz``, ``ngf``, ``min_ch``, ``g_spectral_norm``).

    Shapes:
        ``forward(z)``: z (B, nz) → image (B, 1, S, S) in [-1, 1]; with ``with_small=True`` also the
        small image (B, 1, s, s), ``s = small_size(S)``.
    """

    def __init__(self, cfg: FastGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        sn, S = cfg.g_spectral_norm, cfg.image_size
        self.res = [2**k for k in range(3, int(math.log2(S)) + 1)]
        ch = {r: _channels(G_MULT, cfg.ngf, r, cfg.min_ch) for r in [4, *self.res]}
        init = nn.ConvTranspose2d(cfg.nz, 2 * ch[4], 4, 1, 0, bias=False)
        self.init = nn.Sequential(
            spectral_norm(init) if sn else init, nn.BatchNorm2d(2 * ch[4]), nn.GLU(dim=1)
        )
        # two-conv blocks with noise at 8, 32, 128, 512 (odd powers of two), single-conv blocks elsewhere
        self.ups = nn.ModuleDict(
            {str(r): UpBlock(ch[r // 2], ch[r], comp=int(math.log2(r)) % 2 == 1, sn=sn) for r in self.res}
        )
        self.sle = nn.ModuleDict({str(r): SLE(ch[r // 16], ch[r], sn) for r in self.res if 64 <= r <= 512})
        self.small = small_size(S)
        self.to_big = nn.Sequential(_conv(sn, ch[S], 1, 3, 1, 1, bias=False), nn.Tanh())
        self.to_small = nn.Sequential(_conv(sn, ch[self.small], 1, 1, 1, 0, bias=False), nn.Tanh())

    def set_noise(self, mode: str, seed: int = 0) -> Generator:
        """Set the noise-injection mode of every layer: ``"random"``, ``"zero"`` or ``"fixed"``."""
        if mode not in ("random", "zero", "fixed"):
            raise ValueError(f"noise mode must be random, zero or fixed, got {mode!r}")
        for m in self.modules():
            if isinstance(m, NoiseInjection):
                m.mode, m.fixed_seed = mode, seed
        return self

    def forward(
        self, z: torch.Tensor, with_small: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if z.ndim != 2 or z.shape[1] != self.cfg.nz:
            raise ValueError(f"Generator expects z of shape (B, {self.cfg.nz}), got {tuple(z.shape)}")
        feats = {4: self.init(z[:, :, None, None])}
        x = feats[4]
        for r in self.res:
            x = self.ups[str(r)](x)
            if str(r) in self.sle:
                x = self.sle[str(r)](feats[r // 16], x)
            feats[r] = x
        img = self.to_big(x)
        if with_small:
            return img, self.to_small(feats[self.small])
        return img


# -------------------------------------------------------------------------------------------- discriminator
class DownBlock(nn.Module):
    """4×4 stride-2 conv → BN → LeakyReLU(0.2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(True, c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DownBlockComp(nn.Module):
    """Residual down-block: (4×4 s2 conv, BN, LReLU, 3×3 conv, BN, LReLU) averaged with (avg-pool, 1×1 conv, BN, LReLU)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            _conv(True, c_in, c_out, 4, 2, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2),
            _conv(True, c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2),
        )
        self.direct = nn.Sequential(
            nn.AvgPool2d(2),
            _conv(True, c_in, c_out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


class Decoder(nn.Module):
    """D's self-supervised decoder: (B, C, d, d) → up-blocks (nearest ×2, 3×3 conv, BN, GLU) → (B, 1, s, s), tanh.

    The up-block reaching resolution ``r`` has ``DEC_MULT[r] · width`` channels (FastGAN's decoder:
    128, 64, 64, 32 channels at 16…128² for ``width=64``).
    """

    def __init__(self, c_in: int, d_in: int, out_size: int, width: int, min_ch: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, r = c_in, d_in
        while r < out_size:
            r *= 2
            c_out = _channels(DEC_MULT, width, r, min_ch)
            layers.append(UpBlock(c, c_out, comp=False, sn=True))
            c = c_out
        layers += [_conv(True, c, 1, 3, 1, 1, bias=False), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Discriminator(nn.Module):
    """FastGAN discriminator with spectral normalisation and self-supervised decoders.

    Args:
        cfg: :class:`FastGANConfig` (``image_size``, ``ndf``, ``min_ch``, ``dec_in``).

    Shapes:
        ``forward(img, small)``: img (B, 1, S, S), small (B, 1, s, s) or None (then down-sampled from
        img) → logits (B, 50) (two 5×5 patch maps, flattened). With ``part`` (0…3) also the three
        reconstructions (B, 1, s, s) from the big features, the small branch and quadrant ``part``.
        ``features(img)``: the big branch's feature maps, coarsest last (a perceptual feature space).

    Channels per resolution: :data:`D_MULT` (big branch), :data:`D_SMALL_MULT` (small branch) and
    :data:`DEC_MULT` (decoders), times ``ndf``, at least ``min_ch``.
    """

    def __init__(self, cfg: FastGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        S, w, mc = cfg.image_size, cfg.ndf, cfg.min_ch
        ch = {r: _channels(D_MULT, w, r, mc) for r in D_MULT}
        ch_small = {r: _channels(D_SMALL_MULT, w, r, mc) for r in D_SMALL_MULT}
        r0 = min(S, 256)
        if S > 256:  # stride-2 convs down to 256 px (as FastGAN does for 512 and 1024)
            stem: list[nn.Module] = []
            r, c = S, 1
            while r > 256:
                r //= 2
                stem.append(_conv(True, c, ch[r], 4, 2, 1, bias=False))
                if c != 1:
                    stem.append(nn.BatchNorm2d(ch[r]))
                stem.append(nn.LeakyReLU(0.2))
                c = ch[r]
        else:
            stem = [_conv(True, 1, ch[r0], 3, 1, 1, bias=False), nn.LeakyReLU(0.2)]
        self.stem = nn.Sequential(*stem)
        self.big_res = [2**k for k in range(int(math.log2(r0)) - 1, 2, -1)]  # r0/2 … 8
        self.down = nn.ModuleDict({str(r): DownBlockComp(ch[2 * r], ch[r]) for r in self.big_res})
        self.sle = nn.ModuleDict({str(r): SLE(ch[8 * r], ch[r], True) for r in self.big_res if 8 * r <= r0})
        self.rf_big = nn.Sequential(
            _conv(True, ch[8], ch[4], 1, 1, 0, bias=False),
            nn.BatchNorm2d(ch[4]),
            nn.LeakyReLU(0.2),
            _conv(True, ch[4], 1, 4, 1, 0, bias=False),
        )
        self.small = small_size(S)
        s_layers: list[nn.Module] = [
            _conv(True, 1, ch_small[self.small // 2], 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2),
        ]
        r = self.small // 2
        while r > 8:
            s_layers.append(DownBlock(ch_small[r], ch_small[r // 2]))
            r //= 2
        self.small_branch = nn.Sequential(*s_layers)
        self.rf_small = _conv(True, ch_small[8], 1, 4, 1, 0, bias=False)
        d = cfg.dec_in
        self.dec_big = Decoder(ch[8], d, self.small, w, mc)
        self.dec_small = Decoder(ch_small[8], d, self.small, w, mc)
        self.dec_part = Decoder(ch[16], d, self.small, w, mc)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """``nn.Module.load_state_dict``, refusing with a clear message a state of another architecture.

        Raises:
            RuntimeError: (``strict``) the saved tensors' names or shapes differ from this
                discriminator's — e.g. a checkpoint written before D followed FastGAN's channel plan
                (its D was two to four times as wide), or one saved with another ``image_size``,
                ``ndf``, ``min_ch`` or ``dec_in``.
        """
        if strict:
            own = self.state_dict()
            shape = {k: tuple(v.shape) for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
            other = [k for k in own if k in shape and shape[k] != tuple(own[k].shape)]
            missing = [k for k in own if k not in state_dict]
            unexpected = [k for k in state_dict if k not in own]
            if other or missing or unexpected:
                c = self.cfg
                first = (
                    f"; e.g. {other[0]}: saved {shape[other[0]]}, expected {tuple(own[other[0]].shape)}"
                    if other
                    else ""
                )
                raise RuntimeError(
                    f"this FastGAN discriminator state does not fit Discriminator(image_size={c.image_size}, "
                    f"ndf={c.ndf}, min_ch={c.min_ch}, dec_in={c.dec_in}): {len(other)} tensors of another "
                    f"shape{first}; {len(missing)} missing {missing[:3]}; {len(unexpected)} unexpected "
                    f"{unexpected[:3]}. Checkpoints written before ctad's D followed FastGAN's channel plan "
                    "(D two to four times as wide, 73.7 M parameters at 256², ndf 64) cannot be loaded: train the GAN again "
                    "(notebook 02); its generator still loads."
                )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _big(self, img: torch.Tensor) -> dict[int, torch.Tensor]:
        S = self.cfg.image_size
        if img.ndim != 4 or img.shape[1:] != (1, S, S):
            raise ValueError(f"Discriminator expects (B, 1, {S}, {S}), got {tuple(img.shape)}")
        x = self.stem(img)
        feats = {int(x.shape[-1]): x}
        for r in self.big_res:
            x = self.down[str(r)](x)
            if str(r) in self.sle:
                x = self.sle[str(r)](feats[8 * r], x)
            feats[r] = x
        return feats

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Big-branch feature maps of ``img`` (B, 1, S, S), finest first."""
        feats = self._big(img)
        return [feats[r] for r in sorted(feats, reverse=True)]

    def forward(
        self, img: torch.Tensor, small: torch.Tensor | None = None, part: int | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        if small is None:
            small = F.interpolate(img, size=self.small, mode="area")
        feats = self._big(img)
        f_small = self.small_branch(small)
        logits = torch.cat([self.rf_big(feats[8]).flatten(1), self.rf_small(f_small).flatten(1)], dim=1)
        if part is None:
            return logits
        d = self.cfg.dec_in
        pool = (lambda t: F.adaptive_avg_pool2d(t, d)) if d < 8 else (lambda t: t)
        rec_big = self.dec_big(pool(feats[8]))
        rec_small = self.dec_small(pool(f_small))
        rec_part = self.dec_part(pool(quadrant(feats[16], part)))
        return logits, [rec_big, rec_small, rec_part]


def quadrant(x: torch.Tensor, part: int) -> torch.Tensor:
    """Quadrant ``part`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of (B, C, H, W)."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    i, j = divmod(int(part), 2)
    return x[..., i * h : (i + 1) * h, j * w : (j + 1) * w]


def reconstruction_targets(
    real: torch.Tensor, small_real: torch.Tensor, part: int, size: int
) -> list[torch.Tensor]:
    """Targets of D's three decoders for real images (B, 1, S, S).

    Returns:
        [real at ``size``, small real at ``size``, quadrant ``part`` of real at ``2·size``], each (B, 1, size, size).
    """
    big = F.interpolate(real, size=size, mode="area")
    sm = small_real if small_real.shape[-1] == size else F.interpolate(small_real, size=size, mode="area")
    prt = quadrant(
        F.interpolate(real, size=2 * size, mode="area") if real.shape[-1] != 2 * size else real, part
    )
    return [big, sm, prt]


# -------------------------------------------------------------------------------------------------- encoder
class Encoder(nn.Module):
    """Seed-000 encoder: ``log2(S) - 1`` blocks of (4×4 stride-2 conv, BN, GLU) to 2×2, linear to nz, tanh.

    Args:
        cfg: :class:`EncoderConfig` (``image_size``, ``nz``, ``width``, ``max_ch``).

    Shapes:
        x (B, 1, S, S) in [-1, 1] → z (B, nz) in [-1, 1].
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_blocks = int(math.log2(cfg.image_size)) - 1
        layers: list[nn.Module] = []
        c = 1
        for k in range(n_blocks):
            c_out = min(cfg.max_ch, cfg.width * 2**k)
            layers += [nn.Conv2d(c, 2 * c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c_out), nn.GLU(dim=1)]
            c = c_out
        self.blocks = nn.Sequential(*layers)
        self.n_blocks = n_blocks
        self.head = nn.Linear(c * 4, cfg.nz)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S = self.cfg.image_size
        if x.ndim != 4 or x.shape[1:] != (1, S, S):
            raise ValueError(f"Encoder expects (B, 1, {S}, {S}), got {tuple(x.shape)}")
        return torch.tanh(self.head(self.blocks(x).flatten(1)))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
