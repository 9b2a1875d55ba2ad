"""Feature extractors for FID: the network that turns images into the vectors FID compares.

FID is only meaningful together with its feature space. Nothing is downloaded here, so:

- the default is a network the workbook trains itself (e.g. the FastGAN discriminator's features), wrapped
  with :class:`TorchFeatureExtractor`;
- :class:`InceptionPool3` is Inception-v3 up to its 2048-d pool3 layer, with torchvision's ``state_dict``
  keys, loaded from a **local** weights file the user passes (torchvision's ``inception_v3`` weights or the
  pytorch-fid "FID Inception" port, which shares the keys; see :func:`inception_extractor`);
- :func:`random_cnn_extractor` is a last resort when neither exists (a fixed, seeded, untrained CNN:
  numbers are comparable between runs with the same seed, not with the literature).

Every extractor has a ``name`` that reports carry next to the FID value.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FeatureExtractor",
    "TorchFeatureExtractor",
    "InceptionPool3",
    "inception_extractor",
    "random_cnn_extractor",
    "discriminator_extractor",
    "extract_features",
]


@runtime_checkable
class FeatureExtractor(Protocol):
    """Anything that maps display images to feature vectors.

    Attributes:
        name: says which network (and weights) produced the features; goes into reports.
    """

    name: str

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Map (N, H, W) or (N, C, H, W) images in [0, 1] to (N, D) float features."""
        ...


def _as_nchw(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
    return x


class TorchFeatureExtractor:
    """Wrap any ``nn.Module`` (or callable on tensors) as a :class:`FeatureExtractor`.

    The module gets ``(B, C, H, W)`` tensors in its own input range; a 4-D output (feature maps) is
    global-average-pooled, any other output is flattened per item; a list/tuple of outputs (e.g. a
    discriminator's multi-scale feature maps) is pooled item by item and concatenated.

    Args:
        module: the network, e.g. a trained discriminator's feature trunk.
        name: what the report calls it, e.g. ``"fastgan-discriminator (run_dir/gan/member0.pt)"``.
        input_range: the range [0, 1] images are mapped to before the module (``(-1, 1)`` = model range).
        size: resize to (H, W) first (bilinear), or None.
        channels: repeat a single channel to this many channels, or None.
        batch_size: images per forward pass.
        device: where to run.
    """

    def __init__(
        self,
        module: nn.Module | Callable[[torch.Tensor], torch.Tensor],
        name: str,
        input_range: tuple[float, float] = (-1.0, 1.0),
        size: tuple[int, int] | None = None,
        channels: int | None = None,
        batch_size: int = 32,
        device: str | torch.device = "cpu",
    ) -> None:
        self.module = module
        self.name = name
        self.input_range = input_range
        self.size = size
        self.channels = channels
        self.batch_size = batch_size
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features of (N, H, W) or (N, C, H, W) images in [0, 1]; returns (N, D) float64."""
        x = _as_nchw(images)
        if isinstance(self.module, nn.Module):
            self.module.eval()
        lo, hi = self.input_range
        out = []
        for i in range(0, x.shape[0], self.batch_size):
            b = x[i : i + self.batch_size].to(self.device)
            if self.channels is not None and b.shape[1] == 1 and self.channels != 1:
                b = b.repeat(1, self.channels, 1, 1)
            if self.size is not None and tuple(b.shape[-2:]) != tuple(self.size):
                b = F.interpolate(b, size=self.size, mode="bilinear", align_corners=False)
            f = self.module(b * (hi - lo) + lo)
            parts = list(f) if isinstance(f, (tuple, list)) else [f]
            pooled = [(p.mean(dim=tuple(range(2, p.ndim))) if p.ndim > 2 else p).reshape(p.shape[0], -1) for p in parts]
            out.append(torch.cat(pooled, 1).double().cpu())
        if not out:
            return np.zeros((0, 0))
        return torch.cat(out).numpy()


def discriminator_extractor(discriminator: nn.Module, name: str, batch_size: int = 32) -> TorchFeatureExtractor:
    """The workbook's default FID feature space: a trained FastGAN discriminator's big-branch features.

    Every feature map of ``discriminator.features(x)`` is global-average-pooled and the vectors are
    concatenated (multi-scale, like a perceptual loss). Images are resized to the discriminator's size.

    Args:
        discriminator: a :class:`ctad_core.methods.fastgan.model.Discriminator` (``cfg.image_size``, ``features``).
        name: what reports call it, e.g. ``"fastgan-D member_0 (run_dir/gan)"``.
        batch_size: images per forward pass.
    """
    s = int(discriminator.cfg.image_size)
    dev = next(discriminator.parameters()).device
    discriminator.eval()
    return TorchFeatureExtractor(discriminator.features, name, (-1.0, 1.0), (s, s), None, batch_size, dev)


def extract_features(extractor: FeatureExtractor, images: np.ndarray) -> np.ndarray:
    """Run an extractor and check what it returns: (N, D) finite features for N images."""
    f = np.asarray(extractor(images), dtype=np.float64)
    if f.ndim != 2 or f.shape[0] != len(images):
        raise ValueError(f"extractor {extractor.name!r} returned shape {f.shape} for {len(images)} images")
    if not np.isfinite(f).all():
        raise ValueError(f"extractor {extractor.name!r} returned non-finite features")
    return f


# ------------------------------------------------------------------------------- Inception-v3


class _BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg3(x: torch.Tensor, fid_variant: bool) -> torch.Tensor:
    # the TF FID graph averages without the zero padding; torchvision includes it
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=not fid_variant)


class _InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int, fid_variant: bool) -> None:
        super().__init__()
        self.fid_variant = fid_variant
        self.branch1x1 = _BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = _BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = _BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = _BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = _BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = _BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = _BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg3(x, self.fid_variant))
        return torch.cat([b1, b5, b3, bp], 1)


class _InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = _BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = _BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = _BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class _InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int, fid_variant: bool) -> None:
        super().__init__()
        self.fid_variant = fid_variant
        self.branch1x1 = _BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = _BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = _BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = _BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = _BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = _BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_avg3(x, self.fid_variant))
        return torch.cat([b1, b7, bd, bp], 1)


class _InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = _BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = _BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = _BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = _BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class _InceptionE(nn.Module):
    def __init__(self, cin: int, fid_variant: bool, max_pool_branch: bool = False) -> None:
        super().__init__()
        self.fid_variant = fid_variant
        self.max_pool_branch = max_pool_branch
        self.branch1x1 = _BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = _BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = _BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = _BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = _BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = _BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = _BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.fid_variant and self.max_pool_branch:
            # the TF FID graph's last block uses max pooling here (a known bug kept for comparability)
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            pooled = _avg3(x, self.fid_variant)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class InceptionPool3(nn.Module):
    """Inception-v3 up to the 2048-d global average pool ("pool3"), torchvision-compatible keys.

    The module names match ``torchvision.models.inception_v3`` (``Conv2d_1a_3x3.conv.weight``,
    ``Mixed_5b.branch1x1.bn.running_mean``, …), so a state_dict saved from torchvision — or the pytorch-fid
    FID-Inception port, which uses the same names — loads directly. The classifier (``fc``) and
    ``AuxLogits`` are not needed for pool3 and are ignored when present.

    Args:
        fid_variant: reproduce the TF FID graph's pooling quirks (use with pytorch-fid's
            ``pt_inception-2015-12-05`` weights); False for torchvision's ImageNet weights.

    Shapes:
        input (B, 3, 299, 299) in [-1, 1] (what both weight sets expect after their own input transforms);
        output (B, 2048).
    """

    def __init__(self, fid_variant: bool = False) -> None:
        super().__init__()
        self.fid_variant = fid_variant
        self.Conv2d_1a_3x3 = _BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = _BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = _BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = _BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = _BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = _InceptionA(192, 32, fid_variant)
        self.Mixed_5c = _InceptionA(256, 64, fid_variant)
        self.Mixed_5d = _InceptionA(288, 64, fid_variant)
        self.Mixed_6a = _InceptionB(288)
        self.Mixed_6b = _InceptionC(768, 128, fid_variant)
        self.Mixed_6c = _InceptionC(768, 160, fid_variant)
        self.Mixed_6d = _InceptionC(768, 160, fid_variant)
        self.Mixed_6e = _InceptionC(768, 192, fid_variant)
        self.Mixed_7a = _InceptionD(768)
        self.Mixed_7b = _InceptionE(1280, fid_variant)
        self.Mixed_7c = _InceptionE(2048, fid_variant, max_pool_branch=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → (B, 2048)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load a local torchvision-style Inception-v3 state_dict (``torch.load(weights_only=True)``).

        Raises:
            FileNotFoundError: if the file does not exist.
            ValueError: naming the missing or unexpected keys if the file is not an Inception-v3 state_dict.
        """
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Inception weights {path} not found (nothing is downloaded; pass a local file)")
        sd = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict):
            raise ValueError(f"{path} does not hold a state_dict (got {type(sd).__name__})")
        sd = {k: v for k, v in sd.items() if not (k.startswith("AuxLogits.") or k.startswith("fc."))}
        own = set(self.state_dict())
        missing, unexpected = sorted(own - set(sd)), sorted(set(sd) - own)
        if missing or unexpected:
            raise ValueError(
                f"{path} is not a torchvision Inception-v3 state_dict: missing {missing[:5]}"
                f"{' …' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{' …' if len(unexpected) > 5 else ''}"
            )
        self.load_state_dict(sd, strict=True)


def inception_extractor(
    weights_path: str | os.PathLike,
    fid_variant: bool = False,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    size: tuple[int, int] = (299, 299),
) -> TorchFeatureExtractor:
    """Inception-v3 pool3 features from a local weights file (the paper's FID feature space).

    Gray images are repeated to 3 channels and resized bilinearly to 299×299; [0, 1] maps to [-1, 1].

    Args:
        weights_path: a torchvision ``inception_v3`` state_dict (or pytorch-fid's FID-Inception port).
        fid_variant: True for pytorch-fid's FID-Inception weights (TF pooling quirks).
        batch_size: images per forward pass.
        device: where to run.
        size: network input size; 299×299 is what the weights were trained for.

    Returns:
        A :class:`TorchFeatureExtractor` named ``"inception-v3 pool3 (<file name>)"``.
    """
    net = InceptionPool3(fid_variant=fid_variant)
    net.load_weights(weights_path)
    net.to(device).eval()
    tag = "fid-inception" if fid_variant else "inception-v3"
    return TorchFeatureExtractor(net, f"{tag} pool3 ({os.path.basename(str(weights_path))})", (-1.0, 1.0), size,
                                 3, batch_size, device)


def random_cnn_extractor(seed: int = 0, width: int = 32, device: str | torch.device = "cpu") -> TorchFeatureExtractor:
    """A fixed, seeded, untrained CNN (4 strided conv layers, GAP, 8·width-d features): the last resort.

    Random conv features still separate image distributions, but the values are not comparable with
    Inception FIDs in the literature; the name says so.
    """
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    cin = 1
    for i in range(4):
        cout = width * 2**i
        conv = nn.Conv2d(cin, cout, 4, stride=2, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / (cin * 16)) ** 0.5)
            conv.bias.zero_()
        layers += [conv, nn.LeakyReLU(0.2)]
        cin = cout
    net = nn.Sequential(*layers).to(device).eval()
    return TorchFeatureExtractor(net, f"random-cnn (untrained, seed {seed})", (-1.0, 1.0), (128, 128), 1, 32, device)
