"""Analysis details that only a targeted test sees: SVCCA's variance cut on its SVD route,
ties in the permutation p-value, and the A-distance's feature scaling and class balance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from robustlens.analysis import proxy_a_distance, svcca
from robustlens.analysis import similarity as similarity_module
from robustlens.analysis.filters import FilterShift
from tests.tolerances import float_tol

# ---------------------------------------------------------------------------------- SVCCA


def with_singular_values(s: np.ndarray, n: int, seed: int) -> np.ndarray:
    """An [n, len(s)] matrix with centred columns and exactly the singular values ``s``."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((n, len(s))) - 0.0)
    u -= u.mean(axis=0)  # centred columns, then orthonormalised again
    u, _ = np.linalg.qr(u)
    v, _ = np.linalg.qr(rng.standard_normal((len(s), len(s))))
    return (u * s) @ v.T


def test_svd_route_keeps_directions_by_variance_not_by_singular_value(monkeypatch):
    """One strong direction and 30 weak ones (s from 10^-3.05 to 10^-3.4): the kept variances
    then span more than 10⁶, so SVCCA takes its SVD route. ``keep`` is set halfway between the
    variance fractions of the top 19 and top 20 directions, so by s² exactly 20 are kept; by s
    the 30 weak directions would hold 2 % of the total and all 31 would be kept."""
    s = np.concatenate([[1.0], np.geomspace(10**-3.05, 10**-3.4, 30)])
    x = with_singular_values(s, 120, seed=0)
    # LAPACK's singular values are exact up to a few ulp of the largest one times √(size).
    tol = float_tol(np.float64, x.size, ulps=16) * s.max()
    np.testing.assert_allclose(np.linalg.svd(x, compute_uv=False), s, rtol=0, atol=tol)
    ratio = np.cumsum(s**2) / np.sum(s**2)
    keep = float((ratio[18] + ratio[19]) / 2)
    by_s = np.cumsum(s) / np.sum(s)
    assert int(np.searchsorted(by_s, keep)) + 1 == 31  # what the wrong cut would give
    calls = []
    original = similarity_module._basis_svd

    def spy(xc, k):
        calls.append(k)
        return original(xc, k)

    monkeypatch.setattr(similarity_module, "_basis_svd", spy)
    y = np.random.default_rng(1).standard_normal((120, 3))
    res = svcca(x, y, keep=keep)
    assert calls, "the SVD route was not taken"
    assert res.kept_x == 20
    assert res.kept_y == 3


# ---------------------------------------------------------------------- permutation p-value


def test_permutation_p_value_counts_ties_as_at_least_as_extreme():
    # p = (1 + #{shuffled ≥ observed}) / (1 + #shuffles), by hand:
    # d1: observed 1.0, shuffles 0.5, 1.0, 1.0, 2.0 → (1 + 3) / 5 = 0.8
    # d2: observed 0.2, shuffles 0.1, 0.1, 0.1 → (1 + 0) / 4 = 0.25
    # d3: observed 0.3, shuffles all equal to it → (1 + 2) / 3 = 1
    shift = FilterShift(
        kernel="3x3",
        basis=None,  # type: ignore[arg-type]
        divergence={"d1": 1.0, "d2": 0.2, "d3": 0.3},
        per_axis={},
        shuffled={
            "d1": np.array([0.5, 1.0, 1.0, 2.0]),
            "d2": np.array([0.1, 0.1, 0.1]),
            "d3": np.array([0.3, 0.3]),
        },
    )
    assert shift.p_value == {"d1": 0.8, "d2": 0.25, "d3": 1.0}
    assert shift.baseline == pytest.approx({"d1": 1.125, "d2": 0.1, "d3": 0.3})
    assert shift.excess == pytest.approx({"d1": -0.125, "d2": 0.1, "d3": 0.0})


# ---------------------------------------------------------------------------- A-distance


def test_a_distance_does_not_depend_on_the_scale_of_the_features():
    """Two 2-D Gaussians 3 σ apart: Bayes error Φ(−1.5) = 0.0668, d̂_A ≈ 1.73 — at scale 1 and
    at scale 10⁻⁵ alike (the features are standardised before the regularised logistic
    regression; unscaled, the penalty flattens it to chance)."""
    rng = np.random.default_rng(6)
    a = rng.standard_normal((1500, 2))
    b = rng.standard_normal((1500, 2)) + np.array([3.0, 0.0])
    bayes = 2 * (1 - 2 * norm.cdf(-1.5))
    for scale in (1.0, 1e-5):
        res = proxy_a_distance(a * scale, b * scale)
        assert res.distance == pytest.approx(bayes, abs=0.1), scale


def test_a_distance_of_unequal_samples_uses_balanced_weights_and_error():
    """N(0, 1) (300 values) against N(1, 1) (2700 values). With the classes weighted equally
    the threshold sits halfway, at 0.5: each class is misclassified with probability
    Φ(−0.5) = 0.31 and d̂_A = 2(1 − 2Φ(−0.5)) = 0.77. Unweighted, the 9:1 majority pushes the
    threshold to about −1.7 (nearly every a wrong, balanced error ≈ 0.48, d̂_A ≈ 0.1)."""
    rng = np.random.default_rng(12)
    a = rng.standard_normal(300)
    b = rng.standard_normal(2700) + 1.0
    res = proxy_a_distance(a, b)
    expected = 2 * (1 - 2 * norm.cdf(-0.5))
    assert res.distance == pytest.approx(expected, abs=0.12)
    assert res.errors_a.mean() == pytest.approx(norm.cdf(-0.5), abs=0.06)
    assert res.errors_b.mean() == pytest.approx(norm.cdf(-0.5), abs=0.06)
    # The error is the mean of the two per-class rates, not the pooled rate (they differ here).
    balanced = 0.5 * (res.errors_a.mean() + res.errors_b.mean())
    pooled = np.concatenate([res.errors_a, res.errors_b]).mean()
    assert abs(balanced - pooled) > 1e-3
    assert res.error == pytest.approx(balanced, rel=1e-12)


def test_a_distance_uses_the_requested_folds_and_is_reproducible():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(60), rng.standard_normal(60) + 1.0
    for paired in (False, True):
        two = proxy_a_distance(a, b, folds=2, paired=paired)
        assert sorted(set(two.fold_a) | set(two.fold_b)) == [0, 1]
        three = proxy_a_distance(a, b, folds=3, seed=4, paired=paired)
        assert sorted(set(three.fold_a) | set(three.fold_b)) == [0, 1, 2]
        again = proxy_a_distance(a, b, folds=3, seed=4, paired=paired)
        assert np.array_equal(three.fold_a, again.fold_a)
        assert np.array_equal(three.fold_b, again.fold_b)


def test_one_dimensional_values_get_a_signed_log_feature():
    """1-D values v become the features [v, sign(v)·log1p(|v|)]."""
    from robustlens.analysis.adistance import _features

    v = np.array([-100.0, -1.0, 0.0, 1.0, 100.0])
    expected = np.stack([v, np.sign(v) * np.log1p(np.abs(v))], axis=1)
    np.testing.assert_array_equal(_features(v, "v"), expected)
