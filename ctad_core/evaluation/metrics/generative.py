"""Generative metrics: Fréchet distance, FID and the unbiased FID∞ (seed 000).

The networks that turn images into features are in :mod:`ctad_core.nn.features`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ctad_core.evaluation.metrics._common import _same_shape


def _mean_cov(feats: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{name} must be (N, D) features, got shape {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples for a covariance, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError(f"{name} contains non-finite values")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _sqrtm_psd(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance of two Gaussians ``|μ1−μ2|² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})``.

    The trace of the matrix square root is computed as ``Σ sqrt(eig(Σ1^{1/2} Σ2 Σ1^{1/2}))`` — the same
    value as ``scipy.linalg.sqrtm(Σ1 Σ2)`` but from symmetric eigen-decompositions, so it stays real and
    stable for the rank-deficient covariances that small sample sizes give.

    >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2))
    2.0
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    _same_shape(mu1, mu2, "mu1", "mu2")
    _same_shape(s1, s2, "sigma1", "sigma2")
    r1 = _sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    tr_covmean = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet (Inception) distance between two sets of features.

    Which network produced the features decides what the number means: report it with the extractor's
    ``name`` (see :mod:`ctad_core.nn.features`).

    Args:
        feats_a: (N_a, D) features of set A (e.g. generated images).
        feats_b: (N_b, D) features of set B (e.g. real healthy images).

    Returns:
        FID (≥ 0 up to rounding).

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(500, 3))
    >>> round(fid(a, a), 6)
    0.0
    """
    fa = np.asarray(feats_a)
    fb = np.asarray(feats_b)
    if fa.ndim != 2 or fb.ndim != 2 or fa.shape[1] != fb.shape[1]:
        raise ValueError(
            f"feats_a has shape {fa.shape} but feats_b has shape {fb.shape}; need (N, D) with the same D"
        )
    mu_a, s_a = _mean_cov(fa, "feats_a")
    mu_b, s_b = _mean_cov(fb, "feats_b")
    return frechet_distance(mu_a, s_a, mu_b, s_b)


def fid_infinity(
    feats_gen: np.ndarray,
    feats_real: np.ndarray,
    ns: Sequence[int] | None = None,
    num_points: int = 15,
    seed: int = 0,
) -> dict[str, object]:
    """Effectively unbiased FID∞ (Chong & Forsyth, CVPR 2020; the "unbiased FID" of seed 000).

    FID is biased upwards by an amount linear in 1/N for N generated samples. FID∞ computes FID on random
    subsets of N generated samples for several N (real statistics fixed, from all real samples), fits
    ``FID_N = FID∞ + slope / N`` by least squares and extrapolates to 1/N = 0 — as the authors' code does
    (their N runs from 5,000 to 50,000; here from ``max(2, N_gen // 5)`` to ``N_gen`` by default).

    Args:
        feats_gen: (N_gen, D) features of generated images.
        feats_real: (N_real, D) features of real images.
        ns: the subset sizes; default ``num_points`` evenly spaced sizes.
        num_points: how many sizes when ``ns`` is None.
        seed: seeds the random subsets.

    Returns:
        ``{"fid_inf": float, "slope": float, "ns": list[int], "fids": list[float]}``.

    >>> rng = np.random.default_rng(0)
    >>> out = fid_infinity(rng.normal(size=(400, 2)), rng.normal(size=(4000, 2)))
    >>> abs(out["fid_inf"]) < 0.05
    True
    """
    fg = np.asarray(feats_gen, dtype=np.float64)
    fr = np.asarray(feats_real, dtype=np.float64)
    if fg.ndim != 2 or fr.ndim != 2 or fg.shape[1] != fr.shape[1]:
        raise ValueError(
            f"feats_gen has shape {fg.shape} but feats_real has shape {fr.shape}; need (N, D) with the same D"
        )
    n_gen = fg.shape[0]
    if ns is None:
        lo = max(2, n_gen // 5)
        ns = np.unique(np.linspace(lo, n_gen, num_points).astype(int))
    ns_arr = np.asarray(ns, dtype=int)
    if ns_arr.size < 2 or ns_arr.min() < 2 or ns_arr.max() > n_gen:
        raise ValueError(f"need >= 2 distinct subset sizes in [2, {n_gen}], got {ns_arr.tolist()}")
    mu_r, s_r = _mean_cov(fr, "feats_real")
    rng = np.random.default_rng(seed)
    fids = []
    for n in ns_arr:
        sub = fg[rng.permutation(n_gen)[:n]]
        mu_g, s_g = _mean_cov(sub, "feats_gen subset")
        fids.append(frechet_distance(mu_g, s_g, mu_r, s_r))
    x = 1.0 / ns_arr.astype(np.float64)
    slope, intercept = np.polyfit(x, np.asarray(fids), 1)
    return {
        "fid_inf": float(intercept),
        "slope": float(slope),
        "ns": ns_arr.tolist(),
        "fids": [float(f) for f in fids],
    }
