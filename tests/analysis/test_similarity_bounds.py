"""Edge cases of SVCCA and linear CKA: results stay in [0, 1] where rounding would push them
out, and the distinct-sample count of SVCCA's overlap guard is exact."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.analysis import linear_cka, svcca
from robustlens.errors import ConfigError
from tests.tolerances import float_tol


@pytest.mark.parametrize("seed", range(16))
def test_cka_of_a_representation_with_itself_is_one_and_never_above(seed):
    """‖XᵀX‖² / (‖XᵀX‖ ‖XᵀX‖) = 1; rounded, the ratio lands on 1 + eps for many of these
    (both routes: N < D through N×N Gram matrices, N ≥ D through D×D ones)."""
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(3, 40)), int(rng.integers(1, 60))
    x = rng.standard_normal((n, d))
    c = linear_cka(x, x)
    assert c <= 1.0
    assert c == pytest.approx(1.0, abs=float_tol(np.float64, n * d))


def orthogonal_spans(seed: int, route: str) -> tuple[np.ndarray, np.ndarray]:
    """x and y of 8 samples whose centred columns span orthogonal subspaces (3 and 4 of the 7
    dimensions of centred samples): their linear CKA is exactly 0."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((8, 7))
    q, _ = np.linalg.qr(a - a.mean(axis=0))  # orthonormal, zero-mean columns
    dx, dy = (20, 30) if route == "kernel" else (3, 4)
    return q[:, :3] @ rng.standard_normal((3, dx)), q[:, 3:] @ rng.standard_normal((4, dy))


@pytest.mark.parametrize("route", ["kernel", "feature"])
@pytest.mark.parametrize("seed", range(8))
def test_cka_of_orthogonal_representations_is_zero_and_never_negative(seed, route):
    x, y = orthogonal_spans(seed, route)
    c = linear_cka(x, y)
    assert c >= 0.0
    assert c <= float_tol(np.float64, x.size + y.size)
    res = svcca(x, y, keep=1.0)  # no shared direction: canonical correlations all 0
    assert (res.kept_x, res.kept_y) == (3, 4)
    assert np.all(res.correlations >= 0.0)
    np.testing.assert_allclose(res.correlations, 0.0, rtol=0, atol=1e-12)


def test_cka_of_a_rescaled_copy_with_offsets_is_one():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 7))
    assert linear_cka(x, -4.0 * x + 9.0) == pytest.approx(1.0, abs=float_tol(np.float64, 350))
    assert linear_cka(x, -4.0 * x + 9.0) <= 1.0


# x has two kept directions (variances 2 and 1 of the scaled, centred columns; keep = 0.99),
# y one: SVCCA needs more than 3 distinct samples, and 4 rows are given.
Y = np.array([[-1.0], [1.0], [0.0], [0.0]])


def test_rows_that_differ_only_in_the_sign_of_zero_are_one_sample():
    """Rows 3 and 4 are (0.0, 1) and (−0.0, 1): the same sample, so only 3 are distinct."""
    x = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-0.0, 1.0]])
    assert np.signbit(x[3, 0]) and not np.signbit(x[2, 0])
    with pytest.raises(ConfigError) as err:
        svcca(x, Y)
    assert err.value.problem.startswith(
        "svcca kept 2 + 1 singular directions but has only 3 samples (4 rows, 1 of them "
        "repeats of another row"
    )


def test_rows_that_differ_by_a_tiny_amount_are_distinct_samples():
    """Rows 3 and 4 differ by 1e-17 in the first column (far below 1 ulp of 1, far above the
    smallest float): they are distinct samples, so 4 > 2 + 1 and SVCCA runs."""
    x = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1e-17, 1.0]])
    y = np.array([[-1.0], [1.0], [0.0], [1e-17]])
    res = svcca(x, y)
    assert (res.kept_x, res.kept_y, res.n_samples) == (2, 1, 4)
    # y is x's first column: one canonical correlation, exactly 1
    assert res.correlations.shape == (1,)
    assert res.mean == pytest.approx(1.0, abs=float_tol(np.float64, 8))


def with_spectrum(s: np.ndarray, n: int, seed: int) -> np.ndarray:
    """An [n, len(s)] matrix with centred columns and singular values exactly ``s`` (up to
    rounding): orthonormal zero-mean U times diag(s) times an orthogonal V."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, len(s)))
    u, _ = np.linalg.qr(a - a.mean(axis=0))
    v, _ = np.linalg.qr(rng.standard_normal((len(s), len(s))))
    return (u * s) @ v.T


def test_keep_one_drops_directions_below_1e_minus_12_of_the_largest_variance():
    """Ten directions of variance 0.5e-12 of the largest hold 5e-12 of the total, so keep = 1
    would take them, but they are numerical noise by the 1e-12 rule; one direction at 1e-10 is
    kept (its variance exceeds both the rule and what keep leaves out)."""
    y = np.random.default_rng(9).standard_normal((400, 2))
    noise = with_spectrum(np.array([1.0] + [np.sqrt(0.5e-12)] * 10), 400, seed=1)
    assert svcca(noise, y, keep=1.0).kept_x == 1
    real = with_spectrum(np.array([1.0, np.sqrt(1e-10)]), 400, seed=2)
    assert svcca(real, y, keep=1.0).kept_x == 2


def known_pair(n: int, rank: int, seed: int, theta: np.ndarray) -> tuple:
    """Zero-mean orthonormal U [n, rank], W [n, rank] (all columns orthogonal) and
    V = U cos θ + W sin θ: the canonical correlations of U and V are exactly cos θ."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, 2 * rank))
    q, _ = np.linalg.qr(a - a.mean(axis=0))
    u, w = q[:, :rank], q[:, rank:]
    return u, u * np.cos(theta) + w * np.sin(theta), rng


@pytest.mark.parametrize("seed", range(4))
def test_as_many_features_as_samples(seed):
    """x [10, 10] of rank 3 (N = D, where either Gram matrix could be used): the basis must
    come from the same decomposition it is built from."""
    theta = np.array([0.2, 0.7, 1.3])
    u, v, rng = known_pair(10, 3, seed, theta)
    x = u * [3.0, 2.0, 1.0] @ rng.standard_normal((3, 10))
    assert x.shape == (10, 10)
    res = svcca(x, v, keep=1.0)
    assert (res.kept_x, res.kept_y) == (3, 3)
    tol = float_tol(np.float64, x.size, ulps=16)
    np.testing.assert_allclose(res.correlations, np.cos(theta), rtol=0, atol=tol)
    res = svcca(v, x, keep=1.0)
    np.testing.assert_allclose(res.correlations, np.cos(theta), rtol=0, atol=tol)


@pytest.mark.parametrize("seed", range(4))
def test_a_weak_kept_direction_is_found_accurately(seed):
    """Singular values 1, 0.8, 0.6, 0.5 and 3e-4, all kept: a variance spread of 1.1e7, so the
    basis comes from an SVD of the data (a Gram matrix squares the condition number and would
    lose about 1e-11 here); the canonical correlations cos θ come out to a few ulp."""
    theta = np.array([0.1, 0.4, 0.8, 1.2, 1.5])
    u, v, rng = known_pair(300, 5, seed, theta)
    q, r = np.linalg.qr(rng.standard_normal((5, 5)))
    x = u * np.array([1.0, 0.8, 0.6, 0.5, 3e-4]) @ (q * np.sign(np.diag(r)))
    res = svcca(x, v, keep=1.0)
    assert (res.kept_x, res.kept_y) == (5, 5)
    tol = float_tol(np.float64, x.size, ulps=16)
    np.testing.assert_allclose(res.correlations, np.cos(theta), rtol=0, atol=tol)


def test_keep_is_reached_when_a_share_equals_it():
    """Variances in the proportions ½, ¼, ¼: keep = 0.5 takes one direction, 0.75 two (the
    cumulative share equals keep, up to rounding, which must not push it to the next)."""
    s = np.sqrt([2.0, 1.0, 1.0])
    x = with_spectrum(s, 200, seed=3)
    y = np.random.default_rng(4).standard_normal((200, 2))
    assert svcca(x, y, keep=0.5).kept_x == 1
    assert svcca(x, y, keep=0.75).kept_x == 2
    assert svcca(x, y, keep=0.76).kept_x == 3
    assert svcca(x, y, keep=0.49).kept_x == 1


@pytest.mark.parametrize("seed", range(8))
def test_svcca_of_a_representation_with_itself_is_one_and_never_above(seed):
    """Every canonical correlation of x with itself is 1; rounded, most land on 1 + eps."""
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(20, 80)), int(rng.integers(1, 8))
    x = rng.standard_normal((n, d))
    res = svcca(x, x)
    assert np.all(res.correlations <= 1.0) and res.mean <= 1.0
    tol = float_tol(np.float64, n * d, ulps=16)
    np.testing.assert_allclose(res.correlations, 1.0, rtol=0, atol=tol)


def test_two_samples_are_enough_for_cka():
    """Two distinct samples: after centring both representations are ±the same row, so CKA is
    1 whatever the rows."""
    x = np.array([[0.0, 1.0, 5.0], [2.0, -1.0, 3.0]])
    y = np.array([[7.0], [-4.0]])
    assert linear_cka(x, y) == pytest.approx(1.0, abs=float_tol(np.float64, 8))


@pytest.mark.parametrize("scale", [2.0**-700, 2.0**700])
def test_extreme_scales_neither_overflow_nor_underflow(scale):
    """Squares of 2^±700 (about 1e±210) overflow or underflow in float64: both measures are
    scale-invariant, and inputs are rescaled before anything is squared (by a power of two,
    exactly, so the results are identical)."""
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((60, 4)), rng.standard_normal((60, 3))
    y[:, 0] += x[:, 0]
    base_s, base_c = svcca(x, y), linear_cka(x, y)
    res = svcca(x * scale, y * scale)
    np.testing.assert_array_equal(res.correlations, base_s.correlations)
    assert linear_cka(x * scale, y) == base_c
