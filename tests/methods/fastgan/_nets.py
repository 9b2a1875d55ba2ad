"""Tiny FastGAN configurations shared by the seed-000 tests."""

from __future__ import annotations

from ctad_core.methods.fastgan.model import FastGANConfig

NZ = 16


def tiny(size: int, **kw) -> FastGANConfig:
    """A FastGAN of ``size`` px with 2-channel layers and a 16-d latent (fast on a CPU)."""
    return FastGANConfig(image_size=size, nz=NZ, ngf=2, ndf=2, min_ch=2, **kw)
