"""Details of the proxy A-distance: out-of-fold predictions of a standardised logistic
regression, stratified folds drawn with the seed, constant features, the clipped distance."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from robustlens.analysis import proxy_a_distance


def sample(n: int, shift: float, seed: int, dim: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)) + shift


def test_errors_are_the_out_of_fold_predictions_of_a_standardised_logistic_regression():
    """Rebuild each fold's classifier from the returned folds: scaler (mean, population std)
    from the training folds only, class-balanced logistic regression, predictions on the
    held-out fold."""
    a, b = sample(40, 0.0, 1) * [1.0, 1e3], sample(30, 0.8, 2) * [1.0, 1e3]
    res = proxy_a_distance(a, b, folds=4, seed=3)
    x = np.concatenate([a, b])
    y = np.r_[np.zeros(40, int), np.ones(30, int)]
    fold = np.r_[res.fold_a, res.fold_b]
    wrong = np.zeros(70, bool)
    for k in range(4):
        train, test = fold != k, fold == k
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        clf = LogisticRegression(class_weight="balanced", max_iter=1000)
        clf.fit((x[train] - mean) / std, y[train])
        wrong[test] = clf.predict((x[test] - mean) / std) != y[test]
    np.testing.assert_array_equal(res.errors_a, wrong[:40])
    np.testing.assert_array_equal(res.errors_b, wrong[40:])
    error = 0.5 * (wrong[:40].mean() + wrong[40:].mean())
    assert res.error == error
    assert res.distance_unclipped == 2.0 * (1.0 - 2.0 * error)
    # stratified: each of the 4 folds holds 10 of a and 7 or 8 of b
    assert np.bincount(res.fold_a).tolist() == [10, 10, 10, 10]
    assert sorted(np.bincount(res.fold_b).tolist()) == [7, 7, 8, 8]


def test_another_seed_draws_other_folds():
    a, b = sample(50, 0.0, 4), sample(50, 1.0, 5)
    first, other = proxy_a_distance(a, b, seed=1), proxy_a_distance(a, b, seed=2)
    assert not np.array_equal(first.fold_a, other.fold_a)
    p1 = proxy_a_distance(a, b, seed=1, paired=True)
    p2 = proxy_a_distance(a, b, seed=2, paired=True)
    assert not np.array_equal(p1.fold_a, p2.fold_a)


def test_a_constant_feature_is_ignored():
    """A feature constant in training has standard deviation 0: it is left unscaled (it then
    carries nothing), so the result is that of the other features alone."""
    a, b = sample(60, 0.0, 6, dim=1), sample(60, 0.7, 7, dim=1)
    with_constant = proxy_a_distance(np.c_[a, np.full(60, 5.0)], np.c_[b, np.full(60, 5.0)])
    alone = proxy_a_distance(a, b)
    assert np.isfinite(with_constant.error)
    np.testing.assert_array_equal(with_constant.errors_a, alone.errors_a)
    np.testing.assert_array_equal(with_constant.errors_b, alone.errors_b)


def test_distance_is_clipped_to_zero_and_two():
    separable = proxy_a_distance(sample(30, 0.0, 8), sample(30, 50.0, 9))
    assert separable.error == 0.0
    assert separable.distance == 2.0 == separable.distance_unclipped
    # b = a exactly with paired folds: one copy of each item is always wrong (error ½, d = 0);
    # with a few twins split across folds the error goes above ½ and d̂ below 0, clipped
    twins = sample(40, 0.0, 10, dim=1)
    unpaired = proxy_a_distance(twins, twins.copy(), seed=0)
    assert unpaired.distance_unclipped < 0.0
    assert unpaired.distance == 0.0
    assert unpaired.error > 0.5
