"""Proxy A-distance (Ben-David et al. 2007; Ganin et al. 2016), as in Garaev et al. 2024 §3.3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustlens.analysis import ADistanceResult, proxy_a_distance
from robustlens.errors import ConfigError


def normal(n: int, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n) + shift


def test_identical_distributions_are_close():
    res = proxy_a_distance(normal(3000, seed=1), normal(3000, seed=2))
    assert isinstance(res, ADistanceResult)
    assert res.distance <= 0.2
    assert 0.0 <= res.distance <= 2.0
    assert abs(res.error - 0.5) < 0.05


def test_well_separated_distributions_are_far():
    res = proxy_a_distance(normal(1000, seed=1), normal(1000, 10.0, seed=2))
    assert res.distance >= 1.9
    assert res.error <= 0.025


def test_shift_gives_intermediate_and_increasing_values():
    """Bayes error for N(0,1) vs N(δ,1) is Φ(−δ/2); the proxy should track 2(1 − 2Φ(−δ/2))."""
    from scipy.stats import norm

    values = []
    for shift in (0.5, 1.0, 2.0):
        res = proxy_a_distance(normal(2000, seed=3), normal(2000, shift, seed=4))
        bayes = 2 * (1 - 2 * norm.cdf(-shift / 2))
        assert 0.2 < res.distance < 1.9
        assert res.distance == pytest.approx(bayes, abs=0.15)
        values.append(res.distance)
    assert values == sorted(values)


def test_heavy_tailed_losses_separate():
    """Loss-like samples: tiny clean losses against large adversarial ones."""
    rng = np.random.default_rng(5)
    res = proxy_a_distance(rng.exponential(0.01, 1000), rng.exponential(1.0, 1000))
    assert res.distance >= 1.7


def test_multivariate_features():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((1500, 2))
    b = rng.standard_normal((1500, 2)) + np.array([3.0, 0.0])
    res = proxy_a_distance(a, b)
    assert res.distance == pytest.approx(2 * (1 - 2 * 0.0668), abs=0.1)  # Φ(−1.5) = 0.0668


def test_per_sample_errors_average_to_error():
    a, b = normal(600, seed=7), normal(600, 1.0, seed=8)
    res = proxy_a_distance(a, b)
    assert res.errors_a.shape == (600,) and res.errors_b.shape == (600,)
    assert res.errors_a.dtype == np.bool_ and res.errors_b.dtype == np.bool_
    assert np.concatenate([res.errors_a, res.errors_b]).mean() == pytest.approx(res.error)
    assert res.distance_unclipped == pytest.approx(2 * (1 - 2 * res.error))
    assert res.distance == pytest.approx(min(max(res.distance_unclipped, 0.0), 2.0))
    assert (res.folds, res.seed) == (5, 0)


def test_unequal_sizes_use_the_balanced_error():
    res = proxy_a_distance(normal(1500, seed=9), normal(300, seed=10))
    assert res.error == pytest.approx(0.5 * (res.errors_a.mean() + res.errors_b.mean()))
    assert res.distance <= 0.3  # unequal sizes alone do not make the samples separable


def test_clipping_reports_the_raw_value():
    res = proxy_a_distance(normal(200, seed=11), normal(200, seed=12))
    assert res.distance == max(res.distance_unclipped, 0.0)


def test_deterministic_for_a_seed():
    a, b = normal(500, seed=13), normal(500, 0.7, seed=14)
    first, second = proxy_a_distance(a, b, seed=3), proxy_a_distance(a, b, seed=3)
    assert first.error == second.error
    np.testing.assert_array_equal(first.errors_a, second.errors_a)
    np.testing.assert_array_equal(first.errors_b, second.errors_b)
    other = proxy_a_distance(a, b, seed=4, folds=3)
    assert (other.seed, other.folds) == (4, 3)


def test_torch_inputs():
    a, b = normal(300, seed=15), normal(300, 2.0, seed=16)
    res = proxy_a_distance(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    ref = proxy_a_distance(a.astype(np.float32), b.astype(np.float32))
    assert res.error == ref.error


def test_too_few_samples():
    with pytest.raises(ConfigError, match="at least 5 samples in each") as err:
        proxy_a_distance(normal(3), normal(100))
    assert "hundreds" in err.value.fix
    with pytest.raises(ConfigError, match="at least 10 samples"):
        proxy_a_distance(normal(100), normal(9), folds=10)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values(bad):
    a = normal(100)
    a[5] = bad
    with pytest.raises(ConfigError, match="NaN or infinite"):
        proxy_a_distance(a, normal(100))
    with pytest.raises(ConfigError, match="NaN or infinite"):
        proxy_a_distance(normal(100), a)


def test_bad_arguments():
    a, b = normal(100), normal(100, seed=1)
    for folds in (1, 0, 2.5, True):
        with pytest.raises(ConfigError, match="folds"):
            proxy_a_distance(a, b, folds=folds)
    with pytest.raises(ConfigError, match="seed"):
        proxy_a_distance(a, b, seed=0.5)
    with pytest.raises(ConfigError, match="same number of features"):
        proxy_a_distance(a, np.ones((100, 3)))
    with pytest.raises(ConfigError, match="shape"):
        proxy_a_distance(np.ones((100, 2, 2)), np.ones((100, 2, 2)))
