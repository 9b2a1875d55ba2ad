"""Bootstrap intervals by patient and paired comparisons, against hand computations and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ctad_core.evaluation.intervals import (
    binned_auroc,
    binned_average_precision,
    bootstrap_ci,
    paired_bootstrap,
    pixel_bootstrap,
    pixel_histograms,
)


def test_resampling_keeps_a_patients_items_together() -> None:
    groups = np.array(["p0", "p0", "p1", "p1", "p1", "p2"])
    seen = []

    def stat(idx: np.ndarray) -> float:
        c = np.bincount(idx, minlength=6)
        seen.append(c)
        return float(len(idx))

    ci = bootstrap_ci(stat, groups, n_boot=200, seed=3)
    for c in seen:
        assert c[0] == c[1] and c[2] == c[3] == c[4]  # all of a patient's items, as often as the patient
    assert ci.n_groups == 3 and ci.estimate == 6.0 and ci.n_valid == 200


def test_interval_of_a_mean_matches_the_normal_approximation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 1.0, 400)
    ci = bootstrap_ci(lambda i: float(x[i].mean()), np.arange(400), n_boot=2000, seed=1)
    se = x.std(ddof=1) / np.sqrt(400)
    assert ci.half_width == pytest.approx(1.96 * se, rel=0.12)
    assert ci.low < x.mean() < ci.high
    # the same seed draws the same patients
    assert bootstrap_ci(lambda i: float(x[i].mean()), np.arange(400), n_boot=2000, seed=1) == ci


def test_one_class_resamples_are_dropped_not_counted() -> None:
    labels = np.array([0, 0, 0, 1])
    score = np.array([0.1, 0.2, 0.3, 0.9])
    ci = bootstrap_ci(
        lambda i: roc_auc_score(labels[i], score[i]) if len(set(labels[i])) == 2 else np.nan,
        np.arange(4),
        n_boot=300,
        seed=0,
    )
    assert 0 < ci.n_valid < 300  # P(no positive drawn) = (3/4)^4 ≈ 0.32
    assert ci.low == ci.high == 1.0


def test_paired_comparison() -> None:
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(60), np.ones(60)].astype(int)
    good = y + rng.normal(0, 0.5, 120)
    poor = y + rng.normal(0, 3.0, 120)
    groups = np.arange(120)
    auc = lambda s: lambda i: roc_auc_score(y[i], s[i])  # noqa: E731
    same = paired_bootstrap(auc(good), auc(good), groups, n_boot=300)
    assert same.difference.estimate == 0.0 and same.p_value == 1.0
    diff = paired_bootstrap(auc(good), auc(poor), groups, n_boot=500)
    assert diff.difference.low > 0 and diff.p_value < 0.01
    assert diff.difference.estimate == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, poor))


def test_binned_curves_equal_sklearn_when_each_value_has_its_bin() -> None:
    rng = np.random.default_rng(5)
    s = rng.integers(0, 10, 500).astype(float)
    y = (rng.random(500) < 0.1 + 0.08 * s).astype(int)  # ties galore
    edges = np.arange(11) - 0.5
    pos = np.bincount(s[y == 1].astype(int), minlength=10)
    neg = np.bincount(s[y == 0].astype(int), minlength=10)
    assert binned_auroc(pos, neg) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert binned_average_precision(pos, neg) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    # through pixel_histograms on (items, H, W) maps with a mask
    maps, les = s.reshape(5, 10, 10), y.reshape(5, 10, 10)
    mask = np.ones_like(les)
    mask[:, 0] = 0
    p, n = pixel_histograms(maps, les, mask, edges)
    keep = mask.ravel() != 0
    assert binned_auroc(p.sum(0), n.sum(0)) == pytest.approx(roc_auc_score(y[keep], s[keep]), abs=1e-12)


def test_pixel_bootstrap_brackets_the_exact_values() -> None:
    rng = np.random.default_rng(7)
    les = np.zeros((12, 16, 16), np.uint8)
    les[:6, 4:8, 4:8] = 1
    maps = rng.normal(0, 1, les.shape) + 1.5 * les
    iv = pixel_bootstrap(maps, les, None, np.repeat(np.arange(6), 2), bins=2048, n_boot=200)
    exact = roc_auc_score(les.ravel(), maps.ravel())
    assert iv["pixel_auroc"].estimate == pytest.approx(exact, abs=2e-3)
    assert iv["pixel_auroc"].low <= exact <= iv["pixel_auroc"].high
    assert iv["pixel_auprc"].estimate == pytest.approx(
        average_precision_score(les.ravel(), maps.ravel()), abs=5e-3
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: bootstrap_ci(lambda i: 0.0, np.array([]), n_boot=10),
        lambda: bootstrap_ci(lambda i: 0.0, np.zeros((2, 2)), n_boot=10),
        lambda: bootstrap_ci(lambda i: 0.0, np.arange(3), n_boot=0),
        lambda: bootstrap_ci(lambda i: 0.0, np.arange(3), level=1.0),
        lambda: pixel_histograms(np.zeros((2, 3)), np.zeros((2, 4)), None, np.array([0.0, 1.0])),
        lambda: pixel_histograms(np.zeros((2, 3)), np.zeros((2, 3)), None, np.array([1.0, 0.0])),
    ],
)
def test_bad_inputs_are_refused(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_weighted_auroc_equals_sklearn_on_repeated_items() -> None:
    from ctad_core.evaluation.intervals import weighted_auroc

    rng = np.random.default_rng(11)
    s = rng.integers(0, 6, 40).astype(float)  # ties
    y = (rng.random(40) < 0.4).astype(int)
    w = rng.integers(0, 4, (5, 40))
    got = weighted_auroc(s, y, w)
    for row, g in zip(w, got):
        rep = np.repeat(np.arange(40), row)
        assert g == pytest.approx(roc_auc_score(y[rep], s[rep]), abs=1e-12)
    assert np.isnan(weighted_auroc(s, y, (y == 1).astype(int)))  # no negative weight: undefined
    with pytest.raises(ValueError):
        weighted_auroc(s, y[:-1], w)


def test_vectorised_intervals_equal_the_loop_and_cover_sklearn() -> None:
    from ctad_core.evaluation.intervals import auroc_interval, paired_auroc, resample_weights

    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(25), 2)  # two scans per patient
    y = np.tile([0, 1], 25)
    a = y + rng.normal(0, 0.8, 50)
    b = y + rng.normal(0, 1.5, 50)
    w = resample_weights(groups, n_boot=50, seed=9)
    seen = []
    bootstrap_ci(lambda i: seen.append(np.bincount(i, minlength=50)) or 0.0, groups, n_boot=50, seed=9)
    assert np.array_equal(w, np.array(seen[1:]))  # the very patients bootstrap_ci draws (after its estimate)
    fast = auroc_interval(a, y, groups, n_boot=400, seed=2)
    slow = bootstrap_ci(lambda i: roc_auc_score(y[i], a[i]), groups, n_boot=400, seed=2)
    assert fast.estimate == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high), abs=1e-12)
    assert fast.low <= roc_auc_score(y, a) <= fast.high
    pf = paired_auroc(a, b, y, groups, n_boot=400, seed=2)
    ps = paired_bootstrap(
        lambda i: roc_auc_score(y[i], a[i]), lambda i: roc_auc_score(y[i], b[i]), groups, n_boot=400, seed=2
    )
    assert pf.p_value == pytest.approx(ps.p_value)
    assert (pf.difference.low, pf.difference.high) == pytest.approx((ps.difference.low, ps.difference.high))


def test_pixel_bootstrap_resolves_a_map_that_is_mostly_zero() -> None:
    rng = np.random.default_rng(8)
    les = np.zeros((10, 32, 32), np.uint8)
    les[:5, 10:14, 10:14] = 1
    maps = np.zeros(les.shape)
    hot = rng.random(les.shape) < 0.004  # a post-processed map: zero nearly everywhere
    maps[hot] = rng.random(hot.sum())
    maps[les == 1] = np.where(rng.random((les == 1).sum()) < 0.3, 1 + rng.random((les == 1).sum()), 0.0)
    exact = roc_auc_score(les.ravel(), maps.ravel())
    iv = pixel_bootstrap(maps, les, None, np.arange(10), bins=256, n_boot=200)
    assert iv["pixel_auroc"].estimate == pytest.approx(exact, abs=1e-9)  # ties stay in one bin
    assert iv["pixel_auroc"].low <= exact <= iv["pixel_auroc"].high
    assert iv["pixel_auprc"].estimate == pytest.approx(
        average_precision_score(les.ravel(), maps.ravel()), abs=5e-3
    )


# --------------------------------------------------------------------------- sizing a test set (issue 11)


def test_hanley_mcneil_se_matches_a_hand_computation():
    from ctad_core.evaluation.intervals import hanley_mcneil_se

    # A = 0.75, 2 positives, 3 negatives: Q1 = 0.75/1.25 = 0.6, Q2 = 2*0.5625/1.75 = 0.642857...
    # SE² = [0.1875 + 1*(0.6 - 0.5625) + 2*(0.642857 - 0.5625)] / 6 = 0.0517857
    assert hanley_mcneil_se(0.75, 2, 3) == pytest.approx(
        np.sqrt((0.1875 + 0.0375 + 2 * (9 / 14 - 0.5625)) / 6)
    )
    assert hanley_mcneil_se(0.5, 1, 1) == pytest.approx(0.5)


def test_hanley_mcneil_se_is_the_spread_of_the_auroc_under_its_exponential_model():
    """Hanley & McNeil's Q1, Q2 are exact for exponential scores: simulate that model with scikit-learn's AUROC."""
    from sklearn.metrics import roc_auc_score

    from ctad_core.evaluation.intervals import hanley_mcneil_se

    rng = np.random.default_rng(0)
    a, n_pos, n_neg = 0.8, 16, 40
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)]
    # X ~ Exp(mean 1) for positives, Y ~ Exp(mean (1 - a)/a) for negatives: P(X > Y) = a
    aucs = [
        roc_auc_score(y, np.r_[rng.exponential(1.0, n_pos), rng.exponential((1 - a) / a, n_neg)])
        for _ in range(1500)
    ]
    assert np.mean(aucs) == pytest.approx(a, abs=0.01)
    assert np.std(aucs) == pytest.approx(hanley_mcneil_se(a, n_pos, n_neg), rel=0.07)


def test_auroc_half_width_shrinks_with_cases_and_rejects_bad_input():
    from ctad_core.evaluation.intervals import auroc_half_width

    assert auroc_half_width(0.8, 4, 16) > 0.25  # the old quick test set: 4 per kind, 16 healthy
    assert auroc_half_width(0.8, 16, 40) < auroc_half_width(0.8, 8, 40) < auroc_half_width(0.8, 4, 40)
    assert auroc_half_width(0.8, 16, 40, level=0.9) < auroc_half_width(0.8, 16, 40, level=0.95)
    for bad in ((1.0, 4, 4), (0.0, 4, 4), (0.8, 0, 4), (0.8, 4, 0)):
        with pytest.raises(ValueError):
            auroc_half_width(*bad)


@pytest.mark.parametrize("profile", ["quick", "gpu", "paper"])
def test_every_benchmark_profile_sizes_its_test_set_for_per_kind_intervals(profile):
    """Issue 11 item 5: per-kind AUROC half-width <= 0.15 at a design AUROC of 0.8, on volumes and on the 2D
    slices the quick profile subsamples; gpu and paper larger than quick."""
    from pathlib import Path

    from ctad_core.evaluation.intervals import auroc_half_width
    from ctad_core.kinds import LESION_KINDS
    from ctad_core.workbook import load_profile

    p = load_profile(profile, Path("01_data_prep.ipynb"))
    quick = load_profile("quick", Path("01_data_prep.ipynb"))
    assert auroc_half_width(0.8, p["n_test_per_kind"], p["n_test_healthy"]) <= 0.15
    assert p["n_test_per_kind"] >= quick["n_test_per_kind"] and p["n_test_healthy"] >= quick["n_test_healthy"]
    cap = int(load_profile(profile, Path("04_latent_restoration.ipynb")).get("max_slices_per_split", 0))
    if cap:  # half the capped test slices are lesioned, spread evenly over the kinds (select_slices)
        assert auroc_half_width(0.8, cap // 2 // len(LESION_KINDS), cap - cap // 2) <= 0.15
