"""Statistics against SciPy and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wilcoxon

from ctad_core.evaluation import metrics
from ctad_core.evaluation.metrics import MetricWarning


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------- Dice


def test_wilcoxon_matches_scipy_and_handles_degenerate():
    rng = _rng(7)
    a = rng.random(15)
    b = a + rng.normal(0.05, 0.1, 15)
    ref = wilcoxon(a, b)
    assert metrics.wilcoxon_dice(a, b) == pytest.approx((ref.statistic, ref.pvalue))
    with pytest.warns(MetricWarning):
        assert np.isnan(metrics.wilcoxon_dice(a, a)[1])
    with pytest.raises(ValueError, match=r"\(15,\).*\(14,\)"):
        metrics.wilcoxon_dice(a, b[:-1])
    b2 = b.copy()
    b2[0] = np.nan
    ref2 = wilcoxon(a[1:], b[1:])
    assert metrics.wilcoxon_dice(a, b2)[1] == pytest.approx(ref2.pvalue)


def test_recon_error_stats_model_range_and_mask():
    rng = _rng(9)
    x = rng.uniform(-1, 1, (3, 8, 8))
    xh = np.clip(x + rng.normal(0, 0.1, x.shape), -1, 1)
    st = metrics.recon_error_stats(x, xh, value_range=(-1, 1))
    d = np.abs(x - xh) / 2
    assert st["rmse"] == pytest.approx(np.sqrt(np.mean(d**2)))
    assert st["mean_abs"] == pytest.approx(d.mean())
    assert st["sd_abs"] == pytest.approx(d.std())
    assert st["p90_abs"] == pytest.approx(np.percentile(d, 90))
    assert st["rmse_item_mean"] == pytest.approx(np.mean([np.sqrt(np.mean(di**2)) for di in d]))
    m = np.zeros(x.shape, bool)
    m[:, :4] = True
    sm = metrics.recon_error_stats(x, xh, (-1, 1), mask=m)
    assert sm["mean_abs"] == pytest.approx(d[m].mean()) and sm["n_pixels"] == m.sum()
    with pytest.raises(ValueError, match=r"\(3, 8, 8\).*\(3, 8, 7\)"):
        metrics.recon_error_stats(x, xh[..., :7])


# ------------------------------------------------------------------------------------------- FID


def test_summary_uses_the_sample_sd_and_drops_nan():
    s = metrics.summary([0.2, np.nan, 0.4, 0.9])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.5) and s["median"] == pytest.approx(0.4)
    assert s["sd"] == pytest.approx(np.std([0.2, 0.4, 0.9], ddof=1))  # ddof = 1, not the population SD
    assert metrics.summary([0.7])["sd"] == 0.0
    assert metrics.summary([])["n"] == 0 and np.isnan(metrics.summary([])["mean"])
