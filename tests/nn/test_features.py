"""Feature extractors for FID: pooling, seeding, local Inception weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctad_core.nn import features


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------- Dice


def test_torch_feature_extractor_pools_and_names():
    net = torch.nn.Conv2d(1, 5, 3)
    ex = features.TorchFeatureExtractor(net, "toy", batch_size=3)
    assert isinstance(ex, features.FeatureExtractor)
    f = features.extract_features(ex, np.random.default_rng(0).random((7, 16, 16)))
    assert f.shape == (7, 5)


def test_random_cnn_extractor_is_seeded():
    imgs = np.random.default_rng(0).random((4, 32, 32))
    a = features.random_cnn_extractor(seed=3)(imgs)
    b = features.random_cnn_extractor(seed=3)(imgs)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 256)


def _torchvision_like_state_dict(net: features.InceptionPool3) -> dict:
    sd = dict(net.state_dict())
    # a torchvision file also carries the classifier and the auxiliary head
    sd["fc.weight"] = torch.zeros(1000, 2048)
    sd["fc.bias"] = torch.zeros(1000)
    sd["AuxLogits.conv0.conv.weight"] = torch.zeros(128, 768, 1, 1)
    return sd


def test_inception_pool3_loads_local_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    src = features.InceptionPool3()
    # randomise BN statistics so a wrong key mapping would change the output
    for m in src.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "inception_v3_random.pth"
    torch.save(_torchvision_like_state_dict(src), path)
    names = set(src.state_dict())
    assert {
        "Conv2d_1a_3x3.conv.weight",
        "Mixed_5b.branch_pool.bn.running_var",
        "Mixed_7c.branch3x3dbl_3b.conv.weight",
        "Mixed_6e.branch7x7dbl_5.bn.num_batches_tracked",
    } <= names
    ex = features.inception_extractor(
        path, batch_size=2, size=(80, 80)
    )  # 80 px keeps CI fast; 299 is the default
    imgs = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    f = ex(imgs)
    assert f.shape == (3, 2048)
    assert "inception-v3 pool3 (inception_v3_random.pth)" == ex.name
    with torch.no_grad():
        x = torch.nn.functional.interpolate(
            torch.as_tensor(imgs)[:, None].repeat(1, 3, 1, 1),
            size=(80, 80),
            mode="bilinear",
            align_corners=False,
        )
        ref = src.eval()(x * 2 - 1).double().numpy()
    np.testing.assert_allclose(f, ref, rtol=1e-4, atol=1e-5)


def test_inception_rejects_wrong_files(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="missing"):
        features.inception_extractor(bad)
    with pytest.raises(FileNotFoundError):
        features.inception_extractor(tmp_path / "nope.pth")
