"""The A-distance's classifier refitted on bootstrap resamples (``resampled_errors``)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from robustlens.analysis.adistance import (
    _features,
    item_folds,
    proxy_a_distance,
    resampled_errors,
)
from robustlens.analysis.bootstrap import interval, resample_weights
from robustlens.errors import ConfigError
from tests.claims.coverage import covers_nominal


def pair(n: int, seed: int, shift: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """Clean losses and attacked ones = clean · exp(N(shift, 0.5))."""
    rng = np.random.default_rng(seed)
    a = rng.gamma(2.0, 0.3, n)
    return a, a * np.exp(rng.normal(shift, 0.5, n))


def sklearn_cv_error(a, b, row: np.ndarray, folds: int, seed: int) -> float:
    """The paired cross-validation of one resample materialised (duplicates as rows, each
    item held out in its own fold) with scikit-learn's logistic regression run to
    convergence."""
    n = a.size
    fold = item_folds(n, folds, seed)
    fa, fb = _features(a, "a"), _features(b, "b")
    idx = np.repeat(np.arange(n), row.astype(int))
    wrong = []
    for k in range(folds):
        tr, te = idx[fold[idx] != k], idx[fold[idx] == k]
        x_tr = np.concatenate([fa[tr], fb[tr]])
        y_tr = np.r_[np.zeros(tr.size), np.ones(tr.size)]
        mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
        clf = LogisticRegression(max_iter=10_000, tol=1e-12).fit((x_tr - mean) / std, y_tr)
        wrong += [clf.predict((fa[te] - mean) / std) != 0, clf.predict((fb[te] - mean) / std) != 1]
    return float(np.concatenate(wrong).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unit_weights_give_the_error_of_the_paired_cross_validation(seed):
    """The folds of proxy_a_distance(paired=True); its error up to images on the decision
    boundary, where scikit-learn's default tolerance stops short of the optimum (one image
    pair at most here)."""
    n = 150
    a, b = pair(n, seed)
    ref = proxy_a_distance(a, b, folds=5, seed=seed, paired=True)
    got = resampled_errors(a, b, np.ones((1, n)), folds=5, seed=seed)[0]
    np.testing.assert_array_equal(item_folds(n, 5, seed), ref.fold_a)
    assert got == pytest.approx(sklearn_cv_error(a, b, np.ones(n), 5, seed), abs=1e-12)
    assert abs(got - ref.error) <= 1 / n


def test_a_resample_is_the_cross_validation_of_its_drawn_items():
    n, seed = 80, 3
    a, b = pair(n, seed)
    w = resample_weights(n, 3, 9)
    got = resampled_errors(a, b, w, folds=4, seed=seed)
    for row, expected in zip(w, got, strict=True):
        assert sklearn_cv_error(a, b, row, 4, seed) == pytest.approx(expected, abs=1e-12)


def test_identical_copies_are_at_chance_on_every_resample():
    a, _ = pair(40, 4)
    errors = resampled_errors(a, a.copy(), resample_weights(40, 50, 1))
    np.testing.assert_array_equal(errors, np.full(50, 0.5))


@pytest.mark.parametrize(
    ("b", "weights", "match"),
    [
        (np.ones(9), np.ones((1, 10)), "paired"),
        (np.ones(10), np.ones((1, 9)), "weights must have shape"),
        (np.ones(10), np.ones(10), "weights must have shape"),
    ],
)
def test_bad_input_is_refused(b, weights, match):
    with pytest.raises(ConfigError, match=match):
        resampled_errors(np.ones(10), b, weights)


@pytest.mark.slow
def test_interval_covers_the_large_sample_error():
    """200 simulated samples of 100 images: the percentile interval of the refitted error
    covers the classifier's error on a large sample (20 000 images) at the nominal 95 %
    (99.9 % Wilson band), and contains its own estimate."""
    a, b = pair(20_000, 99)
    truth = resampled_errors(a, b, np.ones((1, a.size)))[0]
    n, sims = 100, 200
    w = resample_weights(n, 200, 5)  # independent data per simulation, same resamples
    hits = 0
    for i in range(sims):
        a, b = pair(n, 1000 + i)
        est = resampled_errors(a, b, np.ones((1, n)), seed=i)[0]
        iv = interval(est, resampled_errors(a, b, w, seed=i))
        hits += iv.low <= truth <= iv.high
        assert iv.low <= iv.estimate <= iv.high
    assert covers_nominal(hits, sims), hits
