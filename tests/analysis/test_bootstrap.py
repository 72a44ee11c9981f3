"""The paired bootstrap's weighted statistics against explicit resamples."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.analysis.bootstrap import (
    always_true_count,
    bootstrap_indices,
    frequent_count,
    interval,
    resample_weights,
    spearman_rows,
    weighted_mean,
)


def test_resample_weights_are_multinomial_counts():
    w = resample_weights(50, 200, seed=1)
    assert w.shape == (200, 50)
    assert np.all(w.sum(axis=1) == 50)
    assert np.all(w == np.round(w)) and w.min() >= 0
    assert abs(w.mean() - 1.0) < 1e-12
    # every image, the last one included, is drawn once per resample on average: each column
    # is Binomial(50, 1/50) per row (variance 0.98), its mean over 200 rows within 5 SE of 1
    se = np.sqrt(50 * (1 / 50) * (1 - 1 / 50) / 200)
    assert np.all(np.abs(w.mean(axis=0) - 1.0) < 5 * se), w.mean(axis=0)


def test_weighted_statistics_match_explicit_resamples():
    rng = np.random.default_rng(0)
    values = rng.normal(size=30)
    values[3] = np.nan
    indicator = rng.random((30, 6)) > 0.1
    indicator[:, 0] = True  # always on
    rng_idx = np.random.default_rng(5)
    idx = rng_idx.integers(0, 30, size=(20, 30))
    w = np.zeros((20, 30))
    np.add.at(w, (np.arange(20)[:, None], idx), 1)
    for b in range(20):
        drawn = values[idx[b]]
        assert weighted_mean(values, w)[b] == pytest.approx(np.nanmean(drawn))
        assert always_true_count(indicator, w)[b] == indicator[idx[b]].all(axis=0).sum()
        share = indicator[idx[b]].mean(axis=0)
        for at_least in (0.5, 0.9, 1.0):
            assert frequent_count(indicator, w, at_least)[b] == (share >= at_least).sum()


def test_interval_is_the_central_95_percent_of_the_resamples():
    # 1001 evenly spaced samples: the 2.5 % and 97.5 % quantiles are samples 25 and 975
    samples = np.arange(1001) / 1000
    iv = interval(0.5, samples[::-1])
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((0.5, 0.025, 0.975), abs=1e-12)
    nan_ignored = interval(0.5, np.concatenate([samples, [np.nan] * 10]))
    assert (nan_ignored.low, nan_ignored.high) == pytest.approx((0.025, 0.975), abs=1e-12)


def test_interval_sign_and_spearman():
    assert interval(1.0, np.linspace(0.5, 1.5, 101)).sign() == 1
    assert interval(-1.0, np.linspace(-1.5, -0.5, 101)).sign() == -1
    assert interval(0.0, np.linspace(-1, 1, 101)).sign() == 0
    rho = spearman_rows(np.array([0.0, 1.0, 2.0]), np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
    assert rho.tolist() == pytest.approx([1.0, -1.0])


def test_bootstrap_indices_are_fixed_by_size_and_seed():
    a, b = bootstrap_indices(50, 4, 0), bootstrap_indices(50, 4, 0)
    assert a.shape == (4, 50) and (a == b).all() and not (a == bootstrap_indices(50, 4, 1)).all()
    assert a.min() >= 0 and a.max() < 50
    # every image, the last one included, is drawn: 200 × 50 draws give each image
    # Binomial(10 000, 1/50) draws, 200 ± 14, so all within 5 standard deviations of 200
    counts = np.bincount(bootstrap_indices(50, 200, 0).ravel(), minlength=50)
    assert np.all(np.abs(counts - 200) < 5 * np.sqrt(10_000 / 50 * (1 - 1 / 50))), counts
