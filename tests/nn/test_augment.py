"""Differentiable augmentation (flip, contrast, translation) and random erasing, 2D and 3D."""

from __future__ import annotations

import pytest
import torch

from ctad_core.nn.augment import diff_augment, random_erase


def test_diff_augment_flip_contrast_translation():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 8, 8, requires_grad=True)
    (flipped,) = diff_augment([x], "flip", generator=g)
    same = [(torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))) for i in range(64)]
    assert all(same)
    n_flipped = sum(not torch.equal(flipped[i], x[i]) for i in range(64))
    assert 15 < n_flipped < 49
    (c,) = diff_augment([x], "contrast", generator=g)
    torch.testing.assert_close(c.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))
    img = -torch.ones(1, 1, 16, 16)
    img[0, 0, 8, 8] = 1.0
    (t,) = diff_augment([img], "translation", translation=0.25, generator=g)
    assert (t == 1).sum() <= 1 and ((t == -1).sum() >= 255)
    out = diff_augment([x, torch.rand(64, 1, 4, 4)], generator=g)
    out[0].sum().backward()
    assert x.grad is not None
    with pytest.raises(ValueError):
        diff_augment([x], "cutmix")


def test_random_erase_probability_and_fill():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2000, 1, 16, 16)
    out, erased = random_erase(x, p=0.25, fill=-1.0, generator=g)
    assert 0.21 < erased.float().mean() < 0.29
    changed = (out != x).flatten(1).any(1)
    assert torch.equal(changed, erased)
    assert set(out.unique().tolist()) <= {0.0, -1.0}
    frac = (out[erased] == -1).flatten(1).float().mean(1)
    assert frac.min() >= 0.01 and frac.max() <= 0.35
    assert torch.equal(x, torch.zeros_like(x))  # input untouched
    out0, e0 = random_erase(x[:10], p=0.0, generator=g)
    assert not e0.any() and torch.equal(out0, x[:10])
    out1, e1 = random_erase(x[:10], p=1.0, generator=g)
    assert e1.all()
    v, _ = random_erase(torch.zeros(3, 1, 8, 8, 8), p=1.0, fill=-1.0, generator=g)
    assert (v == -1).flatten(1).any(1).all()
