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
    assert (res.folds, res.seed, res.paired) == (5, 0, False)


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


# --- paired samples (clean and attacked copy of the same image) --------------------------------


def twins(n: int, seed: int, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Loss-like a and b = a (+ tiny noise): two samples no classifier can tell apart."""
    rng = np.random.default_rng(seed)
    a = rng.exponential(1.0, n)
    return a, a + noise * rng.standard_normal(n)


def test_paired_folds_never_split_an_item_and_hold_equal_numbers_of_each_sample():
    a, b = normal(203, seed=20), normal(203, 0.5, seed=21)
    res = proxy_a_distance(a, b, paired=True, folds=5, seed=2)
    assert res.paired and res.fold_a.shape == res.fold_b.shape == (203,)
    np.testing.assert_array_equal(res.fold_a, res.fold_b)  # both copies held out together
    assert sorted(set(res.fold_a.tolist())) == [0, 1, 2, 3, 4]
    sizes = np.bincount(res.fold_a)
    assert sizes.max() - sizes.min() <= 1  # folds of 40 or 41 items (and as many b's)
    # independent (stratified) folds do split items: the copies of most images part ways
    unpaired = proxy_a_distance(a, b, folds=5, seed=2)
    assert not unpaired.paired
    assert (unpaired.fold_a != unpaired.fold_b).mean() > 0.5  # 4/5 expected by chance


def test_paired_estimate_of_indistinguishable_twins_is_at_chance():
    """b = a exactly: in a paired fold both copies of an item get the same prediction, so
    exactly one of them is wrong whatever the classifier: error = ½, A = 0, per image."""
    for seed in range(3):
        a, b = twins(500, seed)
        res = proxy_a_distance(a, b, paired=True, seed=seed)
        np.testing.assert_array_equal(res.errors_a ^ res.errors_b, np.ones(500, dtype=bool))
        assert res.error == 0.5 and res.distance_unclipped == 0.0


def test_paired_folds_remove_the_bias_of_split_twins():
    """b = a + 1e-6 noise, N = 500 items (2N = 1000 samples). Paired: the error is within 3
    binomial standard errors, 3·√(¼ / 2N) ≈ 0.047, of ½, i.e. |A| ≤ 4 × 0.047 ≈ 0.19 (in fact
    at ½ almost exactly). Independent folds train on the twin of a test point with the other
    label: their error is above ½ on average over seeds (A < 0, the quickstart's −0.15)."""
    n, seeds = 500, range(10)
    se = np.sqrt(0.25 / (2 * n))
    paired, unpaired = [], []
    for seed in seeds:
        a, b = twins(n, seed, noise=1e-6)
        p = proxy_a_distance(a, b, paired=True, seed=seed)
        assert abs(p.error - 0.5) <= 3 * se
        assert abs(p.distance_unclipped) <= 4 * 3 * se
        paired.append(p.error)
        unpaired.append(proxy_a_distance(a, b, seed=seed).error)
    assert abs(np.mean(paired) - 0.5) <= 0.002  # at chance up to the odd split twin
    biased = np.mean(unpaired) - 0.5
    # above ½ by more than 3 standard errors of the mean over seeds (≈ 0.026 vs ≈ 0.012)
    assert biased > 3 * np.std(unpaired, ddof=1) / np.sqrt(len(seeds))
    assert biased > 10 * abs(np.mean(paired) - 0.5)


def test_paired_needs_equal_sizes_and_a_boolean():
    with pytest.raises(ConfigError, match="one b for every a") as err:
        proxy_a_distance(normal(100), normal(99), paired=True)
    assert "paired=False" in err.value.fix
    with pytest.raises(ConfigError, match="paired must be True or False"):
        proxy_a_distance(normal(100), normal(100), paired="yes")
    with pytest.raises(ConfigError, match="at least 5 samples"):
        proxy_a_distance(normal(4), normal(4), paired=True)
