"""The bootstrap's resamples and intervals against answers known by hand or by simulation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from robustlens.analysis.bootstrap import (
    Interval,
    full_weights,
    interval,
    resample_weights,
    spearman_rows,
    weighted_mean,
)


def test_interval_is_the_central_95_percent_of_the_samples():
    # 1001 equally spaced samples 0 … 1000: the 2.5 % and 97.5 % quantiles are 25 and 975.
    iv = interval(500.0, np.arange(1001, dtype=np.float64))
    assert iv.estimate == 500.0
    assert iv.low == pytest.approx(25.0, abs=1e-9)
    assert iv.high == pytest.approx(975.0, abs=1e-9)


def test_interval_ignores_nan_samples_and_is_nan_without_samples():
    samples = np.concatenate([np.arange(1001, dtype=np.float64), [np.nan] * 50])
    iv = interval(1.0, samples)
    assert (iv.low, iv.high) == pytest.approx((25.0, 975.0), abs=1e-9)
    empty = interval(1.0, np.array([np.nan, np.nan]))
    assert np.isnan(empty.low) and np.isnan(empty.high)


def test_interval_of_the_mean_covers_the_true_mean_95_percent_of_the_time():
    """Percentile intervals of the mean of n = 60 normal values, over 800 simulated data sets:
    coverage ≈ 0.94 (a percentile interval undercovers slightly at small n). With 90 % intervals
    it would be ≈ 0.89; the bounds sit about 2.5 standard errors (√(0.05·0.95/800) ≈ 0.008)
    from either. Fixed seeds, so the outcome is deterministic."""
    true_mean, n, datasets = 0.3, 60, 800
    rng = np.random.default_rng(2024)
    weights = resample_weights(n, 1000, seed=7)
    covered = 0
    for _ in range(datasets):
        values = true_mean + rng.standard_normal(n)
        iv = interval(float(values.mean()), weighted_mean(values, weights))
        covered += iv.low <= true_mean <= iv.high
    coverage = covered / datasets
    assert 0.92 <= coverage <= 0.97, coverage


def test_every_image_is_drawn_equally_often():
    # W[:, i] ~ Binomial(n, 1/n): mean 1, variance (n − 1)/n; over 4000 resamples each
    # column's mean has standard error ≈ 0.015, so 0.08 is more than 5 of them.
    n = 7
    w = resample_weights(n, 4000, seed=3)
    assert np.all(w.sum(axis=1) == n)
    assert np.all(np.abs(w.mean(axis=0) - 1.0) < 0.08), w.mean(axis=0)
    assert w[:, -1].max() >= 1 and w[:, 0].max() >= 1
    # P(image i never drawn in a resample) = (1 − 1/n)^n for every i, the last one included.
    never = (w == 0).mean(axis=0)
    assert np.all(np.abs(never - (1 - 1 / n) ** n) < 0.04), never


def test_a_single_image_is_drawn_every_time():
    assert resample_weights(1, 5, seed=0).tolist() == [[1.0]] * 5


def test_resample_weights_are_reproducible_with_documented_defaults():
    first = resample_weights(6)
    assert first.shape == (1000, 6)
    assert np.array_equal(first, resample_weights(6, 1000, seed=0))
    assert np.array_equal(first, resample_weights(6))
    assert not np.array_equal(first, resample_weights(6, 1000, seed=1))


def test_full_weights_are_one_row_with_every_image_once():
    assert full_weights(4).tolist() == [[1.0, 1.0, 1.0, 1.0]]


def test_an_interval_without_finite_samples_keeps_its_estimate():
    iv = interval(0.7, np.array([np.nan]))
    assert iv.estimate == 0.7 and np.isnan(iv.low) and np.isnan(iv.high)


def test_weighted_mean_of_a_resample_without_values_is_nan_without_a_warning():
    values = np.array([np.nan, 1.0, 3.0])
    w = np.array([[3.0, 0.0, 0.0], [1.0, 1.0, 1.0]])  # first resample draws only the NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        means = weighted_mean(values, w)
    assert np.isnan(means[0]) and means[1] == 2.0


def test_spearman_of_constant_or_nan_rows_is_nan_without_a_warning():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    ys = np.array([[5.0, 5.0, 5.0, 5.0], [1.0, np.nan, 2.0, 3.0], [4.0, 3.0, 2.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rho = spearman_rows(x, ys)
    assert np.isnan(rho[0]) and np.isnan(rho[1]) and rho[2] == pytest.approx(-1.0)


def test_interval_text_shows_three_significant_digits():
    assert Interval(0.123456, 0.1, 0.2345678).text() == "0.123 [0.1, 0.235]"


@pytest.mark.parametrize(
    ("low", "high", "sign"),
    [(0.1, 0.2, 1), (0.0, 0.2, 0), (-0.2, -0.1, -1), (-0.2, 0.0, 0), (0.0, 0.0, 0), (-1, 1, 0)],
)
def test_an_interval_touching_zero_has_no_sign(low, high, sign):
    assert Interval(0.0, low, high).sign() == sign


def test_interval_text_with_other_digits():
    assert Interval(0.123456, -0.1, 2.345678).text(digits=5) == "0.12346 [-0.1, 2.3457]"
    assert Interval(1234.5, 1000.0, 1500.0).text(digits=2) == "1.2e+03 [1e+03, 1.5e+03]"


def test_always_true_count_by_hand():
    """Images × columns; a column counts in a resample when every drawn image has it."""
    from robustlens.analysis.bootstrap import always_true_count

    indicator = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]])  # ints, read as booleans
    w = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 3.0]])
    # resample 0 draws images 0, 2: columns 0, 1; resample 1 image 1: column 0;
    # resample 2 all: column 0; resample 3 image 2: all three
    np.testing.assert_array_equal(always_true_count(indicator, w), [2.0, 1.0, 1.0, 3.0])
    assert always_true_count(indicator, w).dtype == np.float64
    np.testing.assert_array_equal(weighted_mean(np.array([1, 2, 4]), w), [3.0, 2.0, 7 / 3, 4.0])


def test_an_interval_of_one_finite_sample_is_that_sample():
    iv = interval(0.3, np.array([np.nan, 0.5, np.nan]))
    assert (iv.estimate, iv.low, iv.high) == (0.3, 0.5, 0.5)
