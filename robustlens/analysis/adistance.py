"""Proxy A-distance between two samples (Garaev, Rasheed, Khan 2024, §3.3).

The A-distance of Ben-David, Blitzer, Crammer, Pereira, "Analysis of Representations for Domain
Adaptation", NeurIPS 2007, is estimated by the proxy of Ganin et al., "Domain-Adversarial
Training of Neural Networks", JMLR 17 (2016), §5.1: train a classifier to tell the two samples
apart, measure its held-out error ε, and report d̂_A = 2(1 − 2ε). Identical distributions give
ε ≈ 0.5 and d̂_A ≈ 0; perfectly separable ones give ε = 0 and d̂_A = 2. Garaev et al. compare
the per-sample cross-entropy losses of clean and adversarial test images this way.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from robustlens.analysis.similarity import ArrayLike, as_float64, check_finite
from robustlens.errors import ConfigError


@dataclass(frozen=True, eq=False)
class ADistanceResult:
    """Proxy A-distance of samples a (label 0) and b (label 1).

    ``distance``: 2(1 − 2·error) clipped to [0, 2]; ``distance_unclipped``: the same unclipped
    (negative when the classifier does worse than chance); ``error``: out-of-fold
    misclassification rate, balanced over the classes, ½(mean(errors_a) + mean(errors_b)),
    which is the pooled rate over all Na + Nb samples when Na = Nb; ``errors_a`` [Na] /
    ``errors_b`` [Nb]: which samples were misclassified out of fold (booleans), for
    bootstrapping over samples; ``folds``, ``seed``: the cross-validation used.
    """

    distance: float
    distance_unclipped: float
    error: float
    errors_a: np.ndarray
    errors_b: np.ndarray
    folds: int
    seed: int


def _features(x: ArrayLike, name: str) -> np.ndarray:
    """[N, F] features of one sample; 1-D values v become [v, sign(v)·log1p(|v|)]."""
    m = as_float64(x, name)
    if m.ndim == 1:
        m = np.stack([m, np.sign(m) * np.log1p(np.abs(m))], axis=1)
    elif m.ndim != 2:
        raise ConfigError(
            f"{name} must have shape [N] or [N, F], got shape {tuple(m.shape)}",
            fix="flatten each sample's features, e.g. x.reshape(len(x), -1)",
        )
    check_finite(m, name)
    return m


def proxy_a_distance(
    a: ArrayLike, b: ArrayLike, *, folds: int = 5, seed: int = 0
) -> ADistanceResult:
    """Proxy A-distance (Ben-David et al. 2007; Ganin et al. 2016) between samples ``a`` and ``b``.

    ``a`` [Na] or [Na, F] is labelled 0 and ``b`` [Nb] or [Nb, F] labelled 1. A logistic
    regression on standardised features (scaler fitted on the training folds only; for 1-D
    inputs the features are v and sign(v)·log1p(|v|), so heavy-tailed values such as losses
    separate) is trained with stratified ``folds``-fold cross-validation, shuffled with
    ``seed``; ``error`` is the out-of-fold misclassification rate. With Na ≠ Nb the classes are
    weighted inversely to their sizes, in training and in ``error`` (the mean of the two
    per-class error rates), so that unequal sizes alone do not make the samples look
    separable; with Na = Nb both are the plain rate. Deterministic for a given seed.
    """
    if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or folds < 2:
        raise ConfigError(f"folds must be an integer ≥ 2, got {folds!r}", fix="use folds=5")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    fa, fb = _features(a, "a"), _features(b, "b")
    if fa.shape[1] != fb.shape[1]:
        raise ConfigError(
            f"a and b must have the same number of features, got {fa.shape[1]} and {fb.shape[1]}",
            fix="compare the same quantity for both samples",
        )
    if min(len(fa), len(fb)) < folds:
        raise ConfigError(
            f"{folds}-fold cross-validation needs at least {folds} samples in each of a and b, "
            f"got {len(fa)} and {len(fb)}",
            fix=f"pass at least {folds} samples each (hundreds for a stable estimate) "
            "or lower folds",
        )
    x = np.concatenate([fa, fb])
    y = np.concatenate([np.zeros(len(fa), dtype=np.int64), np.ones(len(fb), dtype=np.int64)])
    wrong = np.zeros(len(y), dtype=bool)
    splitter = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=int(seed))
    for train, test in splitter.split(x, y):
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        std[std == 0.0] = 1.0
        clf = LogisticRegression(class_weight="balanced", max_iter=1000)
        clf.fit((x[train] - mean) / std, y[train])
        wrong[test] = clf.predict((x[test] - mean) / std) != y[test]
    error = 0.5 * (float(wrong[: len(fa)].mean()) + float(wrong[len(fa) :].mean()))
    raw = 2.0 * (1.0 - 2.0 * error)
    return ADistanceResult(
        distance=min(max(raw, 0.0), 2.0),
        distance_unclipped=raw,
        error=error,
        errors_a=wrong[: len(fa)].copy(),
        errors_b=wrong[len(fa) :].copy(),
        folds=int(folds),
        seed=int(seed),
    )
