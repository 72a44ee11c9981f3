"""Filter statistics of Gavrikov & Keuper (Eq. 7–10) on hand-made filters with known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import entropy
from sklearn.decomposition import PCA

from robustlens.analysis.filters import (
    EMPTY_BIN,
    KL_BINS,
    coefficient_divergence,
    depth_group,
    filter_basis,
    filter_matrix,
    filter_shift,
    histogram_pair,
    orthogonality,
    scaled_filters,
    sparse_mask,
    sparsity,
    symmetric_kl,
    variance_entropy,
)
from robustlens.errors import ConfigError
from tests.tolerances import float_tol


def layer(filters: list[np.ndarray], c_in: int = 1) -> np.ndarray:
    """[c_out, c_in, 3, 3] from a flat list of 3×3 filters."""
    w = np.stack([np.asarray(f, dtype=np.float64).reshape(3, 3) for f in filters])
    return w.reshape(len(filters) // c_in, c_in, 3, 3)


def one_hot(i: int, sign: float = 1.0) -> np.ndarray:
    f = np.zeros(9)
    f[i] = sign
    return f


# ------------------------------------------------------------------------- Eq. 2, 7


def test_filter_matrix_reshapes_out_times_in_filters():
    w = np.arange(2 * 3 * 9, dtype=float).reshape(2, 3, 3, 3)
    f = filter_matrix(w)
    assert f.shape == (6, 9)
    np.testing.assert_array_equal(f[4], w[1, 1].ravel())


def test_filter_matrix_refuses_non_conv_weights():
    with pytest.raises(ConfigError, match="4 dimensions"):
        filter_matrix(np.zeros((3, 9)))


def test_sparsity_counts_filters_within_one_percent_of_the_layer_max():
    # max |W| = 2 → ε₀ = 0.02: the zero filter and the 0.02 filter are sparse, 0.021 is not
    filters = [one_hot(0, 2.0), np.zeros(9), one_hot(3, 0.02), one_hot(4, -0.021)]
    w = layer(filters)
    np.testing.assert_array_equal(sparse_mask(w), [False, True, True, False])
    assert sparsity(w) == 0.5


def test_scaled_filters_drop_sparse_ones_and_divide_by_own_max():
    w = layer([np.full(9, 4.0) * np.linspace(-1, 0.5, 9), np.zeros(9), one_hot(2, -0.5)])
    f = scaled_filters(w)
    assert f.shape == (2, 9)
    np.testing.assert_allclose(np.abs(f).max(axis=1), 1.0)
    np.testing.assert_allclose(f[1], one_hot(2, -1.0))


# ------------------------------------------------------------------------- Eq. 4, 5, 8


def test_basis_explained_variance_matches_sklearn_pca():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(200, 9)) @ rng.normal(size=(9, 9))
    basis = filter_basis(f)
    reference = PCA().fit(f)
    # float64 throughout: rounding of a 200 × 9 decomposition, scaled by its conditioning
    tol = float_tol(np.float64, f.size) * np.linalg.cond(f - f.mean(axis=0))
    np.testing.assert_allclose(
        basis.explained_variance_ratio, reference.explained_variance_ratio_, atol=tol
    )
    # basis vectors agree up to sign
    dots = np.abs(np.sum(basis.basis * reference.components_, axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=tol)
    # Eq. 6: coefficients reconstruct the filters
    np.testing.assert_allclose(
        basis.coefficients(f) @ basis.basis + basis.mean, f, atol=tol * np.abs(f).max()
    )


def test_variance_entropy_is_zero_for_copies_of_one_filter():
    pattern = np.linspace(-1, 1, 9)
    w = layer([pattern * s for s in (0.5, 1.0, 3.0, 7.0)])  # identical after Eq. 3 scaling
    assert variance_entropy(w) == pytest.approx(0.0, abs=1e-12)


def test_variance_entropy_is_log10_9_for_isotropic_filters():
    # ±e_i for every i: zero mean, covariance ∝ I → every eigenvalue equal
    w = layer([one_hot(i, s) for i in range(9) for s in (1.0, -1.0)])
    assert variance_entropy(w) == pytest.approx(math.log10(9))
    assert math.log10(9) == pytest.approx(0.954, abs=5e-4)  # the paper's maximum


def test_variance_entropy_of_one_hot_filters_is_log10_8():
    # e_1 … e_9 once each: covariance (I − 11ᵀ/9)/8 has eight equal eigenvalues and one zero
    w = layer([one_hot(i) for i in range(9)])
    assert variance_entropy(w) == pytest.approx(math.log10(8))


def test_variance_entropy_uses_the_filters_unnormalised_and_drops_sparse_ones():
    """§3: the PCA for the entropy is fitted "without normalization of filters". ±2·e₀ and
    ±e₁ have covariance eigenvalues in the ratio 4 : 1 (EVR 0.8, 0.2); scaled by their own
    ‖F‖∞ (the pca.ipynb variant) they are ±e₀, ±e₁ with EVR 0.5, 0.5. The sparse filter
    (0.001·e₂ ≤ 2/100) is dropped in both, so it adds no third direction."""
    w = layer([one_hot(0, 2.0), one_hot(0, -2.0), one_hot(1), one_hot(1, -1.0), one_hot(2, 1e-3)])
    raw = -(0.8 * math.log10(0.8) + 0.2 * math.log10(0.2))
    assert variance_entropy(w) == pytest.approx(raw, rel=1e-12)
    assert variance_entropy(w, scaled=True) == pytest.approx(math.log10(2), rel=1e-12)


def test_variance_entropy_nan_with_fewer_than_two_filters_left():
    w = layer([one_hot(0), np.zeros(9)])
    assert math.isnan(variance_entropy(w))


def test_filter_basis_needs_two_filters():
    with pytest.raises(ConfigError, match="at least 2"):
        filter_basis(np.ones((1, 9)))


# ------------------------------------------------------------------------- Eq. 9


def test_orthogonality_of_orthogonal_banks_is_one():
    w = layer([one_hot(i) for i in range(4)])  # 4 banks, c_in = 1, disjoint supports
    assert orthogonality(w) == pytest.approx(1.0)


def test_orthogonality_of_parallel_banks_is_zero():
    pattern = np.linspace(-1, 1, 9)
    w = layer([pattern, 2 * pattern, 0.5 * pattern])
    assert orthogonality(w) == pytest.approx(0.0, abs=1e-12)


def test_orthogonality_by_hand_for_two_banks_at_sixty_degrees():
    a = one_hot(0)
    b = 0.5 * one_hot(0) + math.sqrt(3) / 2 * one_hot(1)  # cos = 0.5
    # 1 − (|0.5| + |0.5|) / (2·1) = 0.5
    assert orthogonality(layer([a, b])) == pytest.approx(0.5)


def test_orthogonality_uses_whole_filterbanks_across_input_channels():
    # two banks of two input channels each: orthogonal as stacks though channel 0 agrees
    bank1 = [one_hot(0), one_hot(1)]
    bank2 = [one_hot(0), one_hot(1, -1.0)]
    assert orthogonality(layer(bank1 + bank2, c_in=2)) == pytest.approx(1.0)


def test_orthogonality_is_nan_for_one_bank():
    assert math.isnan(orthogonality(layer([one_hot(0)])))


# ------------------------------------------------------------------------- Eq. 10


def test_symmetric_kl_matches_scipy_both_ways():
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert symmetric_kl(p, q) == pytest.approx(entropy(p, q) + entropy(q, p))
    by_hand = 0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75)
    by_hand += 0.25 * math.log(0.5) + 0.75 * math.log(0.75 / 0.5)
    assert symmetric_kl(p, q) == pytest.approx(by_hand)
    assert symmetric_kl(p, p) == 0.0


def test_histograms_share_range_and_fill_empty_bins_with_eps():
    # densities over [0, 1]: 10 / (10 · 1/70) = 70 in one bin, eps in the 69 others
    p, q = histogram_pair(np.zeros(10), np.ones(10))
    assert p.shape == q.shape == (KL_BINS,)
    assert p.sum() == pytest.approx(1.0) and q.sum() == pytest.approx(1.0)
    assert p[0] > 0.99 and q[-1] > 0.99
    assert p[1] == pytest.approx(EMPTY_BIN / (KL_BINS + (KL_BINS - 1) * EMPTY_BIN))


def test_coefficient_divergence_weights_axes():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 2))
    b = a.copy()
    b[:, 1] += 3.0  # only axis 1 differs
    total, per_axis = coefficient_divergence(a, b, np.array([0.9, 0.1]))
    assert per_axis[0] == pytest.approx(0.0)
    assert per_axis[1] > 1.0
    assert total == pytest.approx(0.1 * per_axis[1])


def test_all_axes_at_once_match_one_histogram_pair_per_axis_over_the_global_range():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(300, 3)), rng.normal(0.5, 2.0, size=(200, 3))
    _, per_axis = coefficient_divergence(a, b, np.ones(3))
    limits = (min(a.min(), b.min()), max(a.max(), b.max()))  # one range for every axis
    expected = [symmetric_kl(*histogram_pair(a[:, i], b[:, i], limits=limits)) for i in range(3)]
    np.testing.assert_allclose(per_axis, expected, rtol=float_tol(np.float64, 2 * KL_BINS))


def authors_distribution(x: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    """pca.ipynb's steps with numpy's own binning: density histogram, eps, renormalise."""
    v, _ = np.histogram(x, range=limits, bins=KL_BINS, density=True)
    v = v.astype(np.float64)
    v[v == 0] = EMPTY_BIN
    return v / v.sum()


def test_histograms_are_numpys_density_histograms_with_eps_filled_in():
    rng = np.random.default_rng(7)
    a = rng.normal(size=(400, 2)) * [1.0, 0.05]  # axis 1 spans a sliver of the global range
    b = rng.normal(0.3, 1.5, size=(250, 2)) * [1.0, 0.05]
    limits = (min(a.min(), b.min()), max(a.max(), b.max()))
    _, per_axis = coefficient_divergence(a, b, np.ones(2))
    for i in range(2):
        p, q = authors_distribution(a[:, i], limits), authors_distribution(b[:, i], limits)
        assert per_axis[i] == pytest.approx(
            entropy(p, q) + entropy(q, p), rel=float_tol(np.float64, 2 * KL_BINS)
        )
    # values outside a given range are left out, as np.histogram does
    inner = (-1.0, 1.0)
    p, _ = histogram_pair(a[:, 0], b[:, 0], limits=inner)
    np.testing.assert_allclose(
        p, authors_distribution(a[:, 0], inner), rtol=float_tol(np.float64, KL_BINS)
    )


def test_coefficient_divergence_by_hand_on_two_axes_with_empty_bins():
    """Two axes binned over the one global range [−1, 1] with 70 bins (width 2/70): the
    density of k of n values in a bin is k / (n · 2/70); empty bins get float32 eps."""
    a = np.array([[-1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    b = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.5]])
    width = 2 / KL_BINS

    def dist(bins_counts: dict[int, int], n: int) -> np.ndarray:
        d = np.full(KL_BINS, EMPTY_BIN)
        for j, k in bins_counts.items():
            d[j] = k / (n * width)
        return d / d.sum()

    # axis 0: a has 2 at −1 (bin 0) and 1 at 1 (bin 69); b has 3 at 1
    # axis 1: 0 falls in bin 35 (edge 0 starts it), 0.5 in bin 52 (edge 0.4857 … 0.5143)
    p0, q0 = dist({0: 2, 69: 1}, 3), dist({69: 3}, 3)
    p1, q1 = dist({35: 3}, 3), dist({35: 2, 52: 1}, 3)
    kl = [float(np.sum((p - q) * np.log(p / q))) for p, q in ((p0, q0), (p1, q1))]
    total, per_axis = coefficient_divergence(a, b, np.array([0.8, 0.2]))
    np.testing.assert_allclose(per_axis, kl, rtol=float_tol(np.float64, 4 * KL_BINS))
    assert total == pytest.approx(0.8 * kl[0] + 0.2 * kl[1], rel=float_tol(np.float64, 8 * KL_BINS))


def test_filter_shift_is_zero_between_identical_sets_and_positive_otherwise():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(300, 9))
    same = filter_shift([{("first", "3x3"): f}], [{("first", "3x3"): f.copy()}], "3x3")
    assert same is not None and same.divergence["first"] == pytest.approx(0.0)
    other = filter_shift(
        [{("first", "3x3"): f, ("d10", "3x3"): f}],
        [{("first", "3x3"): f, ("d10", "3x3"): 3 * f}],
        "3x3",
    )
    assert other is not None
    assert other.divergence["first"] == pytest.approx(0.0)
    assert other.divergence["d10"] > 0.1
    assert filter_shift([{("first", "5x5"): f}], [{("first", "3x3"): f}], "3x3") is None


def test_shuffled_baseline_removes_the_small_sample_bias_of_histogram_kl():
    rng = np.random.default_rng(3)
    same_small = [{("first", "3x3"): rng.normal(size=(30, 9))}]
    other_small = [{("first", "3x3"): rng.normal(size=(30, 9))}]
    shift = filter_shift(same_small, other_small, "3x3", permutations=30)
    assert shift is not None
    # one distribution, yet 70-bin histograms of 30 samples differ a lot
    assert shift.divergence["first"] > 1.0
    assert abs(shift.excess["first"]) < 0.25 * shift.divergence["first"]
    moved = [{("first", "3x3"): rng.normal(size=(30, 9)) + 2.0}]
    assert filter_shift(same_small, moved, "3x3", permutations=30).excess["first"] > 1.0
    assert filter_shift(same_small, other_small, "3x3").excess == {}


@pytest.mark.parametrize(
    ("index", "depth", "group"),
    [(0, 0.0, "first"), (1, 0.05, "d1"), (3, 0.1, "d1"), (4, 0.11, "d2"), (9, 1.0, "d10")],
)
def test_depth_groups_put_the_first_layer_apart_then_deciles(index, depth, group):
    assert depth_group(index, depth) == group


def test_permutation_p_value_and_excess_by_hand():
    from robustlens.analysis.filters import FilterShift

    basis = filter_basis(np.eye(3))
    shift = FilterShift("3x3", basis, {"d1": 2.5, "d2": 9.0}, {}, {"d1": np.array([1.0, 2.0, 3.0])})
    assert shift.p_value == {"d1": (1 + 1) / (1 + 3)}
    assert shift.excess == {"d1": pytest.approx(0.5)}
