"""The Wilson score interval and McNemar's paired test (robustlens.proportions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, chi2

from robustlens.errors import ConfigError
from robustlens.proportions import (
    count_of,
    mcnemar,
    proportion,
    proportion_of,
    wilson_bounds,
    wilson_interval,
    z_value,
)
from tests.tolerances import float_tol

Z95 = 1.959963984540054  # Φ⁻¹(0.975)
# Hand values are written to 6 decimals: half a unit in the last place.
HAND = 5e-7


def test_z_is_the_two_sided_normal_quantile():
    assert z_value() == pytest.approx(Z95, rel=float_tol(np.float64))
    assert z_value(0.90) == pytest.approx(1.6448536269514722, rel=float_tol(np.float64))


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # k = 0: low = 0, high = z²/(n + z²) = 3.841459/13.841459
        (0, 10, 0.0, 0.277533),
        # k = n: low = n/(n + z²) = 10/13.841459, high = 1
        (10, 10, 0.722467, 1.0),
        # k = 5 of 10: centre 1/2, half = z/13.841459 · √(2.5 + 0.960365) = 0.263407
        (5, 10, 0.236593, 0.763407),
        # the example: centre 735.920730/1003.841459 = 0.733105, half = 0.027349
        (734, 1000, 0.705756, 0.760453),
    ],
)
def test_wilson_matches_hand_values(k, n, low, high):
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(low, abs=HAND)
    assert got[1] == pytest.approx(high, abs=HAND)


def test_wilson_edges_are_exact():
    assert wilson_interval(0, 7)[0] == 0.0
    assert wilson_interval(7, 7)[1] == 1.0
    low, high = wilson_interval(1, 1)
    assert high == 1.0 and 0.0 < low < 1.0


@pytest.mark.parametrize("n", [1, 2, 13, 100, 1000, 10_000])
def test_wilson_matches_scipy(n):
    """scipy's binomtest(...).proportion_ci(method='wilson') as an independent reference."""
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        low, high = wilson_interval(k, n)
        tol = float_tol(np.float64, n_terms=8, ulps=64)
        assert low == pytest.approx(ref.low, abs=tol), (k, n)
        assert high == pytest.approx(ref.high, abs=tol), (k, n)


def test_wilson_bounds_broadcast_and_contain_the_estimate():
    k = np.arange(0, 51)
    low, high = wilson_bounds(k, 50)
    assert low.shape == high.shape == k.shape
    assert np.all(low <= k / 50) and np.all(k / 50 <= high)
    assert np.all(np.diff(low) > 0) and np.all(np.diff(high) > 0)


def test_wilson_coverage_near_nominal_on_simulated_data():
    """Draw p ~ U[0.05, 0.95] and n ∈ {30, 100, 1000}, k ~ Binomial(n, p): the share of
    intervals that contain p estimates the coverage. Wilson's coverage averaged over p is
    within 0.003 of 95 % at these n (Brown, Cai & DasGupta 2001; 0.9527 at n = 30), so the
    estimate must lie within 4 standard errors of 0.95 plus that 0.003. The Wald interval's
    (0.918 at n = 30) fails the same check, which shows the check can fail."""
    rng = np.random.default_rng(20261204)
    trials = 20_000
    p = rng.uniform(0.05, 0.95, trials)
    n = rng.choice([30, 100, 1000], trials)
    k = rng.binomial(n, p)
    low, high = wilson_bounds(k, n)
    covered = float(np.mean((low <= p) & (p <= high)))
    se = math.sqrt(0.95 * 0.05 / trials)
    margin = 4 * se + 0.003
    assert abs(covered - 0.95) <= margin, covered

    small = n == 30
    phat = k[small] / 30
    half = Z95 * np.sqrt(phat * (1 - phat) / 30)
    wald = float(np.mean((phat - half <= p[small]) & (p[small] <= phat + half)))
    assert abs(wald - 0.95) > 4 * math.sqrt(0.95 * 0.05 / small.sum()) + 0.003


@pytest.mark.parametrize(("k", "n"), [(0, 0), (-1, 10), (11, 10), (1.5, 10), (True, 10), (3, 0)])
def test_wilson_refuses_bad_counts(k, n):
    with pytest.raises(ConfigError):
        wilson_interval(k, n)


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, "0.95"])
def test_wilson_refuses_bad_confidence(confidence):
    with pytest.raises(ConfigError, match="confidence"):
        wilson_interval(3, 10, confidence)


def test_proportion_prints_value_and_interval():
    assert str(proportion(734, 1000)) == "0.734 [0.706, 0.760]"
    of = proportion_of(torch.tensor([True, False, True, True]))
    assert (of.k, of.n) == (3, 4) and of.value == 0.75
    assert of.columns() == {"ci_low": of.low, "ci_high": of.high}
    with pytest.raises(ConfigError, match="boolean"):
        proportion_of(np.array([1, 0, 1]))


def test_count_of_recovers_k_from_a_stored_rate():
    rate = float(torch.tensor([True] * 734 + [False] * 266).float().mean())  # float32 mean
    assert count_of(rate, 1000) == 734
    assert count_of(0.0, 5) == 0 and count_of(1.0, 5) == 5
    with pytest.raises(ConfigError, match="not a proportion"):
        count_of(0.5004, 1000)
    with pytest.raises(ConfigError):
        count_of(1.2, 10)
    with pytest.raises(ConfigError):
        count_of(0.5, 0)


def _pairs(only_a: int, only_b: int, both: int = 7, neither: int = 4):
    a = [True] * only_a + [False] * only_b + [True] * both + [False] * neither
    b = [False] * only_a + [True] * only_b + [True] * both + [False] * neither
    return np.array(a), np.array(b)


@pytest.mark.parametrize(
    ("only_a", "only_b", "p"),
    [
        (3, 0, 2 / 8),  # 2 · P(X ≤ 0), X ~ Bin(3, ½)
        (10, 2, 2 * (1 + 12 + 66) / 4096),  # 2 · P(X ≤ 2), X ~ Bin(12, ½)
        (5, 5, 1.0),  # 2 · 638/1024 > 1, capped
        (0, 0, 1.0),  # nothing discordant
        (1, 0, 1.0),  # 2 · ½
    ],
)
def test_mcnemar_exact_hand_cases(only_a, only_b, p):
    result = mcnemar(*_pairs(only_a, only_b))
    assert result.method == "exact binomial"
    assert (result.only_a, result.only_b) == (only_a, only_b)
    assert result.statistic == min(only_a, only_b)
    assert result.p_value == pytest.approx(p, rel=float_tol(np.float64, 16))
    reference = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    assert result.p_value == pytest.approx(reference, rel=float_tol(np.float64, 64, ulps=64))


def test_mcnemar_chi_square_hand_case():
    result = mcnemar(*_pairs(30, 10))
    assert result.method == "chi-square, continuity-corrected"
    assert result.statistic == pytest.approx(19**2 / 40, rel=float_tol(np.float64))
    assert result.p_value == pytest.approx(chi2.sf(9.025, 1), rel=float_tol(np.float64, 64))
    assert result.p_value == pytest.approx(0.002663, abs=5e-7)  # hand: erfc(√4.5125)
    swapped = mcnemar(*reversed(_pairs(30, 10)))
    assert (swapped.only_a, swapped.only_b) == (10, 30)
    assert swapped.p_value == result.p_value
    equal = mcnemar(*_pairs(20, 20))
    assert equal.statistic == 0.0 and equal.p_value == 1.0


def test_mcnemar_switches_to_chi_square_at_25_discordant():
    assert mcnemar(*_pairs(20, 4)).method == "exact binomial"
    assert mcnemar(*_pairs(20, 5)).method == "chi-square, continuity-corrected"
    assert mcnemar(*_pairs(20, 5), exact_below=100).method == "exact binomial"


def test_mcnemar_accepts_tensors_and_refuses_bad_input():
    a, b = _pairs(4, 1)
    assert mcnemar(torch.from_numpy(a), torch.from_numpy(b)).discordant == 5
    with pytest.raises(ConfigError, match="same images"):
        mcnemar(a, b[:-1])
    with pytest.raises(ConfigError, match="boolean"):
        mcnemar(a.astype(int), b)
    with pytest.raises(ConfigError, match="at least one"):
        mcnemar(np.array([], dtype=bool), np.array([], dtype=bool))
