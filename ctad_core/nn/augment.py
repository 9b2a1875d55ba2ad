"""Differentiable augmentation for GAN training and random erasing for encoder training (2D or 3D).

Tensors are (B, C, *spatial). Randomness comes from a CPU ``torch.Generator`` so that a seed (and a
checkpointed generator state) reproduces a run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

POLICIES = ("flip", "contrast", "translation")


def _rand(n: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=generator)


def diff_augment(
    xs: Sequence[torch.Tensor],
    policy: str = "flip,contrast,translation",
    translation: float = 0.125,
    background: float = -1.0,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Augment a batch the same way at several resolutions (seed 000: mirroring, contrast, translation).

    Every operation is differentiable with respect to the images, so it can be applied to generated
    images inside the generator's graph (Zhao et al.'s DiffAugment, used by FastGAN).

    Args:
        xs: tensors (B, C, *spatial) showing the same B images (e.g. the image and its small copy).
        policy: comma-separated subset of ``flip`` (mirror the last axis: left-right), ``contrast``
            (scale deviations from the item mean by U[0.5, 1.5]) and ``translation`` (shift by up to
            ``translation`` of each side, filled with ``background``).
        translation: largest shift as a fraction of the side.
        background: fill value for pixels shifted in (air: -1 in model range).
        generator: CPU generator for the random parameters.

    Returns:
        The augmented tensors, same shapes.
    """
    ops = [p.strip() for p in policy.split(",") if p.strip()]
    bad = sorted(set(ops) - set(POLICIES))
    if bad:
        raise ValueError(f"unknown augmentation {bad}; choose from {POLICIES}")
    xs = list(xs)
    if not xs or not ops:
        return xs
    b = xs[0].shape[0]
    sd = xs[0].ndim - 2
    if "flip" in ops:
        flip = (_rand(b, generator) < 0.5).to(xs[0].device)
        xs = [torch.where(flip.view(-1, *([1] * (x.ndim - 1))), x.flip(-1), x) for x in xs]
    if "contrast" in ops:
        f = (_rand(b, generator) + 0.5).to(xs[0].device)
        out = []
        for x in xs:
            m = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
            out.append((x - m) * f.view(-1, *([1] * (x.ndim - 1))).to(x.dtype) + m)
        xs = out
    if "translation" in ops and translation > 0:
        frac = (torch.rand(b, sd, generator=generator) * 2 - 1) * translation
        xs = [_translate(x, frac, background) for x in xs]
    return xs


def _translate(x: torch.Tensor, frac: torch.Tensor, fill: float) -> torch.Tensor:
    """Shift item i of (B, C, *spatial) by ``round(frac[i] * side)`` pixels per axis, filling with ``fill``."""
    sizes = x.shape[2:]
    shifts = torch.round(frac * torch.tensor(sizes, dtype=frac.dtype)).long()
    pad = [int(math.ceil(s * frac.abs().max().item())) + 1 for s in sizes]
    flat_pad: list[int] = []
    for p in reversed(pad):
        flat_pad += [p, p]
    xp = F.pad(x, flat_pad, value=fill)
    out = []
    for i in range(x.shape[0]):
        idx = tuple(
            slice(pad[a] - int(shifts[i, a]), pad[a] - int(shifts[i, a]) + sizes[a])
            for a in range(len(sizes))
        )
        out.append(xp[(i, slice(None), *idx)])
    return torch.stack(out)


def random_erase(
    x: torch.Tensor,
    p: float = 0.25,
    area: tuple[float, float] = (0.02, 0.25),
    fill: float = -1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random erasing (seed 000, Sec. 2.2.2): with probability ``p`` per item, a random axis-aligned
    box is set to the background value, so that the encoder cannot learn the identity.

    The box covers a fraction U[area] of the image with a log-uniform aspect ratio in [0.3, 3.3] (per
    pair of axes in 3D) and lies fully inside the image.

    Args:
        x: (B, C, *spatial) images.
        p: probability that an item is erased.
        area: (min, max) fraction of the image covered by the box.
        fill: value written into the box (background: -1 in model range).
        generator: CPU generator.

    Returns:
        ``(erased, erased_items)``: a new tensor like ``x`` and a bool (B,) telling which items were erased.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"erase probability must be in [0, 1], got {p}")
    b = x.shape[0]
    sizes = list(x.shape[2:])
    do = _rand(b, generator) < p
    out = x.clone()
    for i in range(b):
        if not bool(do[i]):
            continue
        a = area[0] + (area[1] - area[0]) * float(_rand(1, generator))
        target = a * math.prod(sizes)
        logr = torch.empty(len(sizes)).uniform_(math.log(0.3), math.log(3.3), generator=generator)
        logr = logr - logr.mean()  # side ratios with product 1
        side = [
            min(s, max(1, int(round((target ** (1 / len(sizes))) * math.exp(float(r))))))
            for s, r in zip(sizes, logr)
        ]
        start = [int(torch.randint(0, s - k + 1, (1,), generator=generator)) for s, k in zip(sizes, side)]
        out[(i, slice(None), *(slice(st, st + k) for st, k in zip(start, side)))] = fill
    return out, do
