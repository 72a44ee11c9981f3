"""Every bad input of k-NN agreement and the shared-axes PCA gets one ConfigError with this
exact message and fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustlens.analysis import knn_agreement, knn_agreement_per_sample, pca_2d
from robustlens.errors import ConfigError
from tests.tolerances import float_tol

RNG = np.random.default_rng(0)
POINTS = RNG.standard_normal((6, 3))
LABELS = np.array([0, 1, 0, 1, 0, 1])
FLATTEN = "flatten each sample, e.g. x.reshape(len(x), -1)"
FINITE_FIX = "remove or repair those samples (a diverged model or attack produces them)"


def with_nan(count: int) -> np.ndarray:
    m = POINTS.copy()
    m.flat[:count] = np.nan
    return m


# (points, labels, k, message, fix)
KNN = [
    (POINTS[0], LABELS, 1, "points must have shape [N, D], got shape (3,)", FLATTEN),
    (
        "xyz",
        LABELS,
        1,
        "points must be a numeric array, got str",
        "pass a numpy array or torch tensor of numbers",
    ),
    (with_nan(2), LABELS, 1, "points holds 2 NaN or infinite value(s)", FINITE_FIX),
    (
        POINTS,
        LABELS[:5],
        1,
        "labels must have shape [6] (one per point), got shape (5,)",
        "pass one label per row of points",
    ),
    (
        POINTS,
        LABELS[:, None],
        1,
        "labels must have shape [6] (one per point), got shape (6, 1)",
        "pass one label per row of points",
    ),
    (POINTS, LABELS, 0, "k must be a positive integer, got 0", "use k=10"),
    (POINTS, LABELS, -2, "k must be a positive integer, got -2", "use k=10"),
    (POINTS, LABELS, True, "k must be a positive integer, got True", "use k=10"),
    (POINTS, LABELS, 2.0, "k must be a positive integer, got 2.0", "use k=10"),
    (
        POINTS,
        LABELS,
        6,
        "k = 6 neighbours need at least 7 points, got 6 (a point is not its own neighbour)",
        "lower k below 6 or pass more points",
    ),
    (
        POINTS,
        LABELS,
        9,
        "k = 9 neighbours need at least 10 points, got 6 (a point is not its own neighbour)",
        "lower k below 6 or pass more points",
    ),
]


@pytest.mark.parametrize("fn", [knn_agreement, knn_agreement_per_sample])
@pytest.mark.parametrize(("points", "labels", "k", "message", "fix"), KNN)
def test_knn_bad_inputs_have_one_exact_error(fn, points, labels, k, message, fix):
    with pytest.raises(ConfigError) as err:
        fn(points, labels, k=k)
    assert err.value.problem == message
    assert err.value.fix == fix


def test_largest_allowed_k_uses_every_other_point():
    """k = N − 1: every other point is a neighbour, so the agreement is (same − 1)/(N − 1)."""
    got = knn_agreement_per_sample(POINTS, LABELS, k=5)
    np.testing.assert_array_equal(got, np.full(6, 2 / 5))
    mean = knn_agreement(POINTS, torch.from_numpy(LABELS), k=np.int64(5))
    assert mean == pytest.approx(2 / 5, rel=float_tol(np.float64, 6))


# (reference, others, message, fix)
PCA = [
    (
        np.ones(5),
        (),
        "reference must have shape [N, D], got shape (5,)",
        FLATTEN,
    ),
    (
        np.ones((1, 3)),
        (),
        "pca_2d needs at least 2 samples with at least 2 features, got shape (1, 3)",
        "pass more samples or a representation with more features",
    ),
    (
        np.arange(4.0)[:, None],
        (),
        "pca_2d needs at least 2 samples with at least 2 features, got shape (4, 1)",
        "pass more samples or a representation with more features",
    ),
    (
        np.full((4, 3), 7.0),
        (),
        "reference is constant over samples (zero variance): PCA axes are undefined",
        "check that the representations were extracted from different inputs",
    ),
    (
        with_nan(1),
        (),
        "reference holds 1 NaN or infinite value(s)",
        FINITE_FIX,
    ),
    (
        POINTS,
        (POINTS, POINTS[:, :2]),
        "others[1] has 2 features but reference has 3",
        "project representations of the same layer",
    ),
    (
        POINTS,
        (POINTS[0],),
        "others[0] must have shape [N, D], got shape (3,)",
        FLATTEN,
    ),
    (
        POINTS,
        (POINTS, POINTS, with_nan(4)),
        "others[2] holds 4 NaN or infinite value(s)",
        FINITE_FIX,
    ),
]


@pytest.mark.parametrize(("reference", "others", "message", "fix"), PCA)
def test_pca_bad_inputs_have_one_exact_error(reference, others, message, fix):
    with pytest.raises(ConfigError) as err:
        pca_2d(reference, *others)
    assert err.value.problem == message
    assert err.value.fix == fix


@pytest.mark.parametrize(
    ("x", "message", "fix"),
    [
        (
            np.ones((2, 4)),
            "x has 4 features but the PCA was fitted on 3",
            "project representations of the same layer",
        ),
        (np.ones(3), "x must have shape [N, D], got shape (3,)", FLATTEN),
        (np.full((2, 3), np.inf), "x holds 6 NaN or infinite value(s)", FINITE_FIX),
    ],
)
def test_pca_transform_bad_inputs_have_one_exact_error(x, message, fix):
    fitted = pca_2d(POINTS)
    with pytest.raises(ConfigError) as err:
        fitted.transform(x)
    assert err.value.problem == message
    assert err.value.fix == fix


def test_smallest_accepted_pca_input():
    """Two samples of two features: one direction of variance, the second component has none."""
    ref = np.array([[0.0, 0.0], [2.0, 2.0]])
    res = pca_2d(ref)
    np.testing.assert_allclose(res.explained_variance_ratio, [1.0, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.mean, [1.0, 1.0])
    s = np.sqrt(2.0)
    np.testing.assert_allclose(np.abs(res.reference[:, 0]), [s, s], rtol=1e-15)


def test_huge_offsets_do_not_change_the_neighbours():
    """Points near 1e7 · (1, …, 1): without centring, the Gram formula's d² would carry an error
    of about eps·|x|² ≈ 1e-1, comparable to the d² themselves; centred, it is exact."""
    rng = np.random.default_rng(4)
    points, labels = rng.standard_normal((120, 6)), rng.integers(0, 3, 120)
    base = knn_agreement_per_sample(points, labels, k=5)
    np.testing.assert_array_equal(knn_agreement_per_sample(points + 1e7, labels, k=5), base)
    shifted = points + np.arange(6) * 1e7
    np.testing.assert_array_equal(knn_agreement_per_sample(shifted, labels, k=5), base)
