"""Seed 004: Luo's residual AE, its post-processing, and its results as the evaluator reads them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctad_core import anomaly
from ctad_core.methods.resae.model import ResAE, ResAEConfig, weight_decay_groups


@pytest.mark.parametrize("shape", [(32, 32, 32), (64, 64, 64), (32, 32)])
@pytest.mark.parametrize("latent", ["dense", "spatial"])
def test_shapes(shape, latent):
    cfg = ResAEConfig(image_shape=shape, channels=(2, 2, 4, 4), latent=latent, latent_dim=16, spatial_channels=3)
    m = ResAE(cfg)
    x = torch.randn(2, 1, *shape)
    assert m(x).shape == x.shape
    z = m.encode(x)
    assert z.shape == ((2, 16) if latent == "dense" else (2, 3, *[s // 16 for s in shape]))


def test_paper_configuration_on_meta():
    # 160×192×96 crop, DRBs 32…256: dense latent 512, spatial latent 10×12×6 (the paper's ablation)
    with torch.device("meta"):
        dense = ResAE(ResAEConfig())
        spatial = ResAE(ResAEConfig(latent="spatial", spatial_channels=64))
        x = torch.empty(1, 1, 160, 192, 96)
        assert dense.encode(x).shape == (1, 512)
        assert spatial.encode(x).shape == (1, 64, 10, 12, 6)
        assert dense(x).shape == x.shape
    assert [b.main[0][0].out_channels for b in dense.down] == [32, 64, 128, 256]
    assert all(len(b.main) == 3 and b.main[0][0].stride == (2, 2, 2) for b in dense.down)


def test_weight_decay_only_on_kernels():
    m = ResAE(ResAEConfig(image_shape=(16, 16, 16), channels=(2, 2, 2, 2), latent_dim=4))
    decay, no_decay = weight_decay_groups(m, 1e-5)
    assert decay["weight_decay"] == 1e-5 and no_decay["weight_decay"] == 0.0
    ids = {id(p) for p in decay["params"]}
    assert id(m.head.weight) in ids and id(m.head.bias) not in ids
    assert id(m.stem[2].weight) not in ids  # BatchNorm scale is not a kernel
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(m.parameters()))


def test_median_filter_and_components_remove_speckle():
    """Luo's post-processing on a map with a true blob and salt noise: the blob survives, the noise not."""
    rng = np.random.default_rng(0)
    m = np.zeros((20, 20, 20), np.float32)
    m[6:13, 6:13, 6:13] = 1.0  # a 7³ "lesion"
    salt = rng.random(m.shape) < 0.01
    m[salt] = 1.0
    brain = np.ones_like(m, np.uint8)
    raw = anomaly.postprocess(m, 0.5, brain=brain, spatial_dims=3)
    assert raw.sum() > 343  # speckle survives a plain threshold
    out = anomaly.postprocess(m, 0.5, brain=brain, median=5, erode=1, min_size=10, spatial_dims=3)
    truth = np.zeros_like(out)
    truth[6:13, 6:13, 6:13] = 1
    assert out[~truth.astype(bool)].sum() == 0
    assert out[truth.astype(bool)].mean() > 0.5  # the median rounds the cube's corners only


def test_doctests():
    import doctest

    from ctad_core.methods.resae import model

    res = doctest.testmod(model, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0
