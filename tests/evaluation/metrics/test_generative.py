"""FID and FID-infinity against a SciPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from ctad_core.evaluation import metrics


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------- Dice


def _fid_scipy(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_fid_matches_scipy_sqrtm_reference():
    rng = _rng(10)
    a = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(0.3, 1.2, size=(250, 8)) @ rng.normal(size=(8, 8))
    assert metrics.fid(a, b) == pytest.approx(_fid_scipy(a, b), rel=1e-6)
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match=r"\(300, 8\).*\(250, 7\)"):
        metrics.fid(a, b[:, :7])


def test_fid_infinity_removes_small_sample_bias():
    rng = _rng(11)
    d = 16
    real = rng.normal(size=(20000, d))
    gen = rng.normal(size=(600, d))  # same distribution: true FID is 0
    biased = metrics.fid(gen, real)
    out = metrics.fid_infinity(gen, real, num_points=10, seed=0)
    assert biased > 0.1  # the finite-N bias grows like d²/N
    assert abs(out["fid_inf"]) < 0.5 * biased
    assert out["slope"] > 0
    assert len(out["ns"]) == len(out["fids"]) == 10
    # reproducible with a seed
    assert metrics.fid_infinity(gen, real, num_points=10, seed=0)["fid_inf"] == out["fid_inf"]
    with pytest.raises(ValueError):
        metrics.fid_infinity(gen, real, ns=[10])


# ------------------------------------------------------------------------------ feature extractors
