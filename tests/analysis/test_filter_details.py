"""Details of the filter statistics (Gavrikov & Keuper 2022) worked by hand: degenerate
layers, the depth groups a shift is reported for, and its permutation baseline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from robustlens.analysis.filters import (
    EMPTY_BIN,
    KL_BINS,
    coefficient_divergence,
    depth_group,
    filter_basis,
    filter_shift,
    group_order,
    histogram_pair,
    orthogonality,
    pooled,
    sparse_mask,
    symmetric_kl,
    variance_entropy,
)
from tests.tolerances import float_tol


def test_orthogonality_counts_a_zero_bank_as_orthogonal_to_nothing():
    """Banks e₁ and 0: ŴŴᵀ = [[1, 0], [0, 0]], |ŴŴᵀ − I| sums to 1, so 1 − 1/(2·1) = ½."""
    w = np.zeros((2, 1, 1, 2))
    w[0, 0, 0, 0] = 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert orthogonality(w) == 0.5


def test_orthogonality_of_three_banks_by_hand():
    """Banks (1, 0), (1, 1)/√2·2, (0, −5): unit cosines 1/√2, 0, −1/√2 off the diagonal, each
    twice: 1 − 2(1/√2 + 0 + 1/√2) / (3·2) = 1 − √2/3."""
    w = np.array([[1.0, 0.0], [2.0, 2.0], [0.0, -5.0]]).reshape(3, 1, 1, 2)
    assert orthogonality(w) == pytest.approx(1 - np.sqrt(2) / 3, rel=float_tol(np.float64, 18))


def test_basis_of_identical_filters_has_no_explained_variance():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        basis = filter_basis(np.ones((3, 4)))
    np.testing.assert_array_equal(basis.explained_variance_ratio, np.zeros(3))
    np.testing.assert_array_equal(basis.mean, np.ones(4))


def test_basis_coefficients_by_hand():
    """Filters (0, 0), (2, 0), (0, 4): mean (⅔, 4/3); PCA of the centred rows by SVD; the
    coefficients of each filter along the basis reproduce the centred filters."""
    f = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    basis = filter_basis(f)
    np.testing.assert_allclose(basis.mean, [2 / 3, 4 / 3], rtol=float_tol(np.float64, 3))
    c = basis.coefficients(f)
    np.testing.assert_allclose(c @ basis.basis, f - basis.mean, atol=float_tol(np.float64, 6) * 4)
    # variance ratio: eigenvalues of the centred scatter matrix, normalised
    centred = f - f.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(centred.T @ centred))[::-1]
    np.testing.assert_allclose(
        basis.explained_variance_ratio, eig / eig.sum(), rtol=float_tol(np.float64, 6)
    )


def test_sparse_mask_of_a_zero_layer_is_all_sparse_and_entropy_is_nan():
    w = np.zeros((2, 3, 3, 3))
    assert sparse_mask(w).all() and sparse_mask(w).shape == (6,)
    assert np.isnan(variance_entropy(w))


def test_histograms_of_one_repeated_value_are_equal():
    """All values 3: the range is widened to [2.5, 3.5] (as np.histogram does), everything
    lands in bin 35 with density 1 / (1/70) = 70."""
    p, q = histogram_pair(np.full(5, 3.0), np.full(4, 3.0))
    assert p.shape == q.shape == (KL_BINS,)
    np.testing.assert_array_equal(p, q)
    assert p[35] == pytest.approx(KL_BINS / (KL_BINS + (KL_BINS - 1) * EMPTY_BIN), rel=1e-15)
    assert symmetric_kl(p, q) == 0.0
    total, per_axis = coefficient_divergence(np.full((5, 2), 3.0), np.full((4, 2), 3.0), [1, 1])
    assert total == 0.0 and per_axis.tolist() == [0.0, 0.0]


def test_coefficient_divergence_of_a_single_axis_by_hand():
    """a = {0, 0, 1}, b = {1, 1, 1}: 70 bins of width 1/70 over [0, 1]; as densities
    (count / (n · width)) a has 140/3 in the first bin and 70/3 in the last, b 70 in the last;
    empty bins hold float32 eps before renormalising (the authors' pca.ipynb)."""
    a, b = np.array([[0.0], [0.0], [1.0]]), np.array([[1.0], [1.0], [1.0]])
    pa = np.full(KL_BINS, EMPTY_BIN)
    pa[0], pa[-1] = 140 / 3, 70 / 3
    pb = np.full(KL_BINS, EMPTY_BIN)
    pb[-1] = 70.0
    pa, pb = pa / pa.sum(), pb / pb.sum()
    expected = float(np.sum((pa - pb) * np.log(pa / pb)))
    total, per_axis = coefficient_divergence(a, b, np.array([0.5]))
    assert per_axis[0] == pytest.approx(expected, rel=float_tol(np.float64, 4 * KL_BINS))
    assert total == pytest.approx(0.5 * expected, rel=float_tol(np.float64, 4 * KL_BINS))
    p, q = histogram_pair(a[:, 0], b[:, 0])
    np.testing.assert_allclose(p, pa, rtol=float_tol(np.float64, KL_BINS))
    np.testing.assert_allclose(q, pb, rtol=float_tol(np.float64, KL_BINS))


@pytest.mark.parametrize(
    ("index", "depth", "group"),
    [(2, 0.0, "d1"), (5, 0.35, "d4"), (6, 0.5, "d5"), (7, 0.99, "d10"), (8, 1.5, "d10")],
)
def test_depth_groups_at_the_edges(index, depth, group):
    assert depth_group(index, depth) == group


def test_group_order_puts_first_before_the_deciles():
    groups = ["d10", "d2", "first", "d1"]
    assert sorted(groups, key=group_order) == ["first", "d1", "d2", "d10"]
    assert [group_order(g) for g in ("first", "d1", "d10")] == [0, 1, 10]


def filters(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)) + shift


def test_pooled_filters_by_kernel_and_group():
    a, b, c = filters(3, 0), filters(2, 1), filters(4, 2)
    sets = [{("d1", "2x2"): a, ("d2", "2x2"): b}, {("d1", "2x2"): c, ("d1", "3x3"): filters(5, 3)}]
    np.testing.assert_array_equal(pooled(sets, "2x2"), np.concatenate([a, b, c]))
    np.testing.assert_array_equal(pooled(sets, "2x2", "d1"), np.concatenate([a, c]))
    assert pooled(sets, "5x5").shape == (0, 0)
    assert pooled(sets, "2x2", "d7").shape == (0, 0)


def test_filter_shift_reports_the_groups_both_sides_have_in_depth_order():
    """Groups of the first set: d10, first, d2, d5; of the second: d2, first, d10, d7. The
    shared ones are reported in depth order, even a group holding a single filter."""
    first = [{("d10", "2x2"): filters(6, 0), ("first", "2x2"): filters(5, 1)},
             {("d2", "2x2"): filters(1, 2), ("d5", "2x2"): filters(4, 3)}]  # fmt: skip
    second = [{("d2", "2x2"): filters(3, 4, 1.0), ("first", "2x2"): filters(1, 5)},
              {("d10", "2x2"): filters(7, 6), ("d7", "2x2"): filters(2, 7)}]  # fmt: skip
    shift = filter_shift(first, second, "2x2")
    assert shift is not None and shift.kernel == "2x2"
    assert list(shift.divergence) == ["first", "d2", "d10"]
    assert list(shift.per_axis) == ["first", "d2", "d10"]
    assert shift.shuffled == {}
    both = np.concatenate([pooled(first, "2x2"), pooled(second, "2x2")])
    reference = filter_basis(both)
    tol = float_tol(np.float64, both.size, ulps=64)  # float64 eigenvectors of the pooled set
    np.testing.assert_allclose(np.abs(shift.basis.basis), np.abs(reference.basis), atol=tol)
    np.testing.assert_allclose(shift.basis.mean, both.mean(axis=0), rtol=tol)
    # one histogram range for every group and axis: all coefficients of the pooled filters
    coefficients = reference.coefficients(both)
    limits = (coefficients.min(), coefficients.max())
    np.testing.assert_allclose(shift.limits, limits, rtol=tol, atol=tol)
    for g in shift.divergence:
        ca = reference.coefficients(pooled(first, "2x2", g))
        cb = reference.coefficients(pooled(second, "2x2", g))
        total, per_axis = coefficient_divergence(
            ca, cb, reference.explained_variance_ratio, limits=limits
        )
        assert shift.divergence[g] == pytest.approx(total, rel=tol)
        np.testing.assert_allclose(shift.per_axis[g], per_axis, rtol=tol, atol=tol)


@pytest.mark.parametrize(("na", "nb", "reported"), [(2, 2, True), (1, 5, False), (5, 1, False)])
def test_filter_shift_needs_two_filters_on_each_side(na, nb, reported):
    shift = filter_shift(
        [{("d1", "2x2"): filters(na, 0)}], [{("d1", "2x2"): filters(nb, 1)}], "2x2"
    )
    assert (shift is not None) is reported
    if reported:
        assert list(shift.divergence) == ["d1"]


def test_permutation_baseline_is_seeded_and_has_one_value_per_shuffle():
    first = [{("d1", "2x2"): filters(20, 0), ("d2", "2x2"): filters(8, 1)}]
    second = [{("d1", "2x2"): filters(15, 2, 0.5), ("d2", "2x2"): filters(9, 3)}]
    a = filter_shift(first, second, "2x2", permutations=7, seed=3)
    again = filter_shift(first, second, "2x2", permutations=7, seed=3)
    other = filter_shift(first, second, "2x2", permutations=7, seed=4)
    assert list(a.shuffled) == ["d1", "d2"]
    assert {g: v.shape for g, v in a.shuffled.items()} == {"d1": (7,), "d2": (7,)}
    for g in a.shuffled:
        np.testing.assert_array_equal(a.shuffled[g], again.shuffled[g])
        assert not np.array_equal(a.shuffled[g], other.shuffled[g])
        assert a.divergence[g] == other.divergence[g]  # the observed value is not shuffled
    assert np.all(a.shuffled["d1"] >= 0) and len(set(a.shuffled["d1"].tolist())) > 1


def test_each_shuffle_relabels_the_pooled_filters_into_sets_of_the_original_sizes(monkeypatch):
    from robustlens.analysis import filters as filters_module

    calls = []
    original = filters_module.coefficient_divergence

    def spy(ca, cb, weights, *args):
        calls.append((np.array(ca), np.array(cb), np.array(weights)))
        return original(ca, cb, weights, *args)

    monkeypatch.setattr(filters_module, "coefficient_divergence", spy)
    first = [{("d1", "2x2"): filters(20, 0)}]
    second = [{("d1", "2x2"): filters(15, 2, 0.5)}]
    shift = filter_shift(first, second, "2x2", permutations=4, seed=1)
    assert len(calls) == 5  # the observed split, then 4 shuffles
    observed_a, observed_b, weights = calls[0]
    pooled_rows = np.sort(np.concatenate([observed_a, observed_b]), axis=0)
    for ca, cb, w in calls[1:]:
        assert (ca.shape[0], cb.shape[0]) == (20, 15)
        np.testing.assert_array_equal(np.sort(np.concatenate([ca, cb]), axis=0), pooled_rows)
        np.testing.assert_array_equal(w, weights)
        assert not np.array_equal(ca, observed_a)
    expected = [original(ca, cb, w)[0] for ca, cb, w in calls[1:]]
    np.testing.assert_array_equal(shift.shuffled["d1"], expected)


def test_documented_constants_of_the_authors_notebooks():
    """70 histogram bins, empty bins at float32 eps, sparse below 1 % of the layer's max."""
    from robustlens.analysis.filters import SPARSE_FRACTION

    assert KL_BINS == 70
    assert float(np.finfo(np.float32).eps) == EMPTY_BIN
    assert SPARSE_FRACTION == 0.01
    p, _ = histogram_pair(np.arange(10.0), np.arange(10.0))
    assert p.shape == (70,)
    _, per_axis = coefficient_divergence(np.arange(10.0)[:, None], np.arange(10.0)[:, None], [1])
    assert per_axis.shape == (1,) and per_axis[0] == 0.0
