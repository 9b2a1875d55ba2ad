"""Layer factories chosen by ``spatial_dims`` (2 or 3), so 2D and 3D models share one code path.

The 3D models of notebook 05 and their 2D comparisons (Viana et al. trained the same f-AnoGAN on mid-axial
slices) are built from these factories instead of from copies of the same class with ``Conv2d`` swapped for
``Conv3d``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn


def _check(spatial_dims: int) -> int:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return spatial_dims


def conv(spatial_dims: int, *args, **kwargs) -> nn.Module:
    """``nn.Conv2d`` or ``nn.Conv3d`` with the given arguments."""
    return (nn.Conv2d, nn.Conv3d)[_check(spatial_dims) - 2](*args, **kwargs)


def conv_transpose(spatial_dims: int, *args, **kwargs) -> nn.Module:
    """``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d``."""
    return (nn.ConvTranspose2d, nn.ConvTranspose3d)[_check(spatial_dims) - 2](*args, **kwargs)


def norm(kind: str, spatial_dims: int, channels: int) -> nn.Module:
    """A normalisation layer by name.

    Args:
        kind: ``"batch"``, ``"instance"`` (affine), ``"layer"`` (GroupNorm with one group: normalises each
            sample over channels and space, the critic-friendly choice of Gulrajani et al.) or ``"none"``.
        spatial_dims: 2 or 3.
        channels: number of channels.
    """
    _check(spatial_dims)
    if kind == "batch":
        return (nn.BatchNorm2d, nn.BatchNorm3d)[spatial_dims - 2](channels)
    if kind == "instance":
        return (nn.InstanceNorm2d, nn.InstanceNorm3d)[spatial_dims - 2](channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use batch, instance, layer or none")


def as_shape(size: int | Sequence[int], spatial_dims: int) -> tuple[int, ...]:
    """``64`` → ``(64, 64, 64)`` for 3D; a sequence is checked for length."""
    if isinstance(size, int):
        return (int(size),) * _check(spatial_dims)
    shape = tuple(int(s) for s in size)
    if len(shape) != _check(spatial_dims):
        raise ValueError(f"image shape {shape} does not have {spatial_dims} spatial dimensions")
    return shape


def halvings(shape: Sequence[int], bottom: int = 4) -> int:
    """How many stride-2 stages take the smallest side of ``shape`` down to ``bottom``.

    Raises:
        ValueError: if a side is not ``bottom`` times a power of two (the models need exact halvings).
    """
    n = int(round(math.log2(min(shape) / bottom)))
    if n < 1 or any(s % (2**n) for s in shape) or min(shape) // 2**n != bottom:
        raise ValueError(f"image shape {tuple(shape)} must be {bottom}·2^n along its smallest side and divisible by 2^n")
    return n


class PyramidConfig:
    """Mixin for encoder–decoder configs whose ``image_shape`` is halved once per entry of ``channels``.

    Subclasses are dataclasses with ``image_shape`` and ``channels`` fields; they call
    :meth:`_normalise_pyramid` from ``__post_init__``.
    """

    image_shape: tuple[int, ...]
    channels: tuple[int, ...]

    def _normalise_pyramid(self, stage: str) -> None:
        self.image_shape = tuple(int(s) for s in self.image_shape)
        self.channels = tuple(int(c) for c in self.channels)
        n = len(self.channels)
        if any(s % 2**n for s in self.image_shape):
            raise ValueError(f"image shape {self.image_shape} is not divisible by 2^{n} ({n} {stage})")

    @property
    def spatial_dims(self) -> int:
        return len(self.image_shape)

    @property
    def bottom_shape(self) -> tuple[int, ...]:
        return tuple(s // 2 ** len(self.channels) for s in self.image_shape)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)  # type: ignore[call-overload]
        d["image_shape"], d["channels"] = list(self.image_shape), list(self.channels)
        return d
