"""Proxy A-distance between two samples (Garaev, Rasheed, Khan 2024, §3.3).

The A-distance of Ben-David, Blitzer, Crammer, Pereira, "Analysis of Representations for Domain
Adaptation", NeurIPS 2007, is estimated by the proxy of Ganin et al., "Domain-Adversarial
Training of Neural Networks", JMLR 17 (2016), §5.1: train a classifier to tell the two samples
apart, measure its held-out error ε, and report d̂_A = 2(1 − 2ε). Identical distributions give
ε ≈ 0.5 and d̂_A ≈ 0; perfectly separable ones give ε = 0 and d̂_A = 2. Garaev et al. compare
the per-sample cross-entropy losses of clean and adversarial test images this way.

Those two samples are paired: a_i and b_i are the clean and the attacked loss of the same image.
Folds drawn independently for the two samples put the copies of one image on different sides
of a split, so the classifier is trained on a near-twin of a test point with the opposite label
and the out-of-fold error is biased above 0.5 (a negative d̂_A for samples it cannot tell
apart). With ``paired=True`` the folds are drawn over images and both copies of an image are
always held out together.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold

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
    bootstrapping over samples; ``fold_a`` [Na] / ``fold_b`` [Nb]: the fold in which each
    sample was held out; ``folds``, ``seed``, ``paired``: the cross-validation used.
    """

    distance: float
    distance_unclipped: float
    error: float
    errors_a: np.ndarray
    errors_b: np.ndarray
    fold_a: np.ndarray
    fold_b: np.ndarray
    folds: int
    seed: int
    paired: bool


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
    a: ArrayLike, b: ArrayLike, *, folds: int = 5, seed: int = 0, paired: bool = False
) -> ADistanceResult:
    """Proxy A-distance (Ben-David et al. 2007; Ganin et al. 2016) between samples ``a`` and ``b``.

    ``a`` [Na] or [Na, F] is labelled 0 and ``b`` [Nb] or [Nb, F] labelled 1. A logistic
    regression on standardised features (scaler fitted on the training folds only; for 1-D
    inputs the features are v and sign(v)·log1p(|v|), so heavy-tailed values such as losses
    separate) is trained with ``folds``-fold cross-validation (stratified, or over items when
    ``paired``), shuffled with ``seed``; ``error`` is the out-of-fold misclassification rate.
    With Na ≠ Nb the classes are weighted inversely to their sizes, in training and in
    ``error`` (the mean of the two per-class error rates), so that unequal sizes alone do not
    make the samples look separable; with Na = Nb both are the plain rate. Deterministic for
    a given seed.

    ``paired``: a[i] and b[i] come from the same item (clean and attacked loss of one image),
    so Na = Nb is required; the folds are drawn over the N items and both copies of an item
    are always in the same fold (each fold then holds equal numbers of a and b). Use it for
    paired samples: independent folds bias the error above 0.5 (see the module docstring).
    """
    if not isinstance(paired, bool | np.bool_):
        raise ConfigError(f"paired must be True or False, got {paired!r}")
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
    if paired and len(fa) != len(fb):
        raise ConfigError(
            f"paired samples need one b for every a, got {len(fa)} and {len(fb)} samples",
            fix="pass a[i] and b[i] of the same item, or paired=False for independent samples",
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
    fold = np.zeros(len(y), dtype=np.int64)
    for k, (train, test) in enumerate(_splits(len(fa), len(fb), int(folds), int(seed), paired)):
        fold[test] = k
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
        fold_a=fold[: len(fa)].copy(),
        fold_b=fold[len(fa) :].copy(),
        folds=int(folds),
        seed=int(seed),
        paired=bool(paired),
    )


def _splits(
    na: int, nb: int, folds: int, seed: int, paired: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) positions into the stacked samples [a; b] for each fold: stratified by
    sample, or, when ``paired``, drawn over item indices with both copies of an item (i and
    na + i) always on the same side."""
    if not paired:
        y = np.concatenate([np.zeros(na, dtype=np.int64), np.ones(nb, dtype=np.int64)])
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros((na + nb, 1)), y))
    items = KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros((na, 1)))
    return [(np.concatenate([tr, tr + na]), np.concatenate([te, te + na])) for tr, te in items]


def item_folds(n: int, folds: int, seed: int) -> np.ndarray:
    """[n] the fold (0 … folds − 1) in which each item is held out: the shuffled K-fold split
    over items that ``proxy_a_distance(..., paired=True)`` uses."""
    fold = np.zeros(n, dtype=np.int64)
    for k, (_, test) in enumerate(_splits(n, n, folds, seed, True)[:folds]):
        fold[test[test < n]] = k
    return fold


NEWTON_STEPS = 25
"""Newton iterations of :func:`resampled_errors` (the 3-parameter problems converge in < 10)."""


def resampled_errors(
    a: ArrayLike, b: ArrayLike, weights: np.ndarray, *, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """The paired proxy A-distance's classifier error refitted on each bootstrap resample.

    ``a`` [N] and ``b`` [N] are the two copies of N items (clean and attacked loss of one
    image); ``weights`` [B, N] how often each item is drawn in each resample. Every resample
    reruns the cross-validation of :func:`proxy_a_distance` (``paired=True``): the items keep
    the folds of :func:`item_folds`, so an item's duplicates are held out together; on each
    fold the features are standardised with the training rows' (weighted) mean and std and the
    same L2-penalised logistic regression (sklearn's default C = 1, intercept unpenalised,
    both copies of an item weighted by its multiplicity, so the classes stay balanced) is
    fitted by Newton's method, all resamples at once. Returns [B] the out-of-fold error
    ½(error on a + error on b), each a weighted mean over the drawn items; a row of ones gives
    the error of the data itself."""
    fa, fb = _features(a, "a"), _features(b, "b")
    if len(fa) != len(fb) or fa.shape[1] != fb.shape[1]:
        raise ConfigError(f"a and b must be paired, got {len(fa)} and {len(fb)} samples")
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != len(fa):
        raise ConfigError(f"weights must have shape [B, {len(fa)}], got {w.shape}")
    if len(fa) < folds:
        raise ConfigError(f"{folds}-fold cross-validation needs at least {folds} items")
    x = np.concatenate([fa, fb])  # [2N, F]
    y = np.concatenate([np.zeros(len(fa)), np.ones(len(fb))])
    fold = np.tile(item_folds(len(fa), folds, seed), 2)
    mult = np.concatenate([w, w], axis=1)  # [B, 2N]
    wrong = np.zeros_like(mult)
    for k in range(folds):
        train, test = fold != k, fold == k
        # start every resample from the fit on the data itself: a few Newton steps then do
        start = _fit_weighted(x[train], y[train], np.ones((1, int(train.sum()))))
        theta = _fit_weighted(x[train], y[train], mult[:, train], start)
        z = _standardise(x, x[train], mult[:, train])  # [B, 2N, F]
        logit = np.matmul(z[:, test], theta[:, :-1, None])[..., 0] + theta[:, -1:]
        wrong[:, test] = (logit > 0) != (y[test] > 0.5)
    n_items = w.sum(axis=1)
    err_a = (mult[:, : len(fa)] * wrong[:, : len(fa)]).sum(axis=1) / n_items
    err_b = (mult[:, len(fa) :] * wrong[:, len(fa) :]).sum(axis=1) / n_items
    return 0.5 * (err_a + err_b)


def _standardise(x: np.ndarray, train: np.ndarray, w: np.ndarray) -> np.ndarray:
    """[B, rows, F] ``x`` standardised with the ``w``-weighted mean and std of ``train``."""
    total = w.sum(axis=1, keepdims=True)
    mean = (w @ train) / total  # [B, F]
    var = (w @ train**2) / total - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    std[std == 0.0] = 1.0
    return (x[None] - mean[:, None]) / std[:, None]


def _fit_weighted(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, start: np.ndarray | None = None
) -> np.ndarray:
    """[B, F + 1] (coefficients, intercept) minimising Σ w·logloss + ½‖coef‖² per row of w,
    by Newton's method from ``start`` [1, F + 1] (zeros when None)."""
    z = _standardise(x, x, w)
    z = np.concatenate([z, np.ones((*z.shape[:2], 1))], axis=2)  # [B, n, F + 1]
    ridge = np.eye(z.shape[2])
    ridge[-1, -1] = 0.0
    theta = np.zeros((w.shape[0], z.shape[2])) if start is None else np.repeat(start, len(w), 0)
    zt = z.transpose(0, 2, 1)  # [B, F + 1, n]
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-np.matmul(z, theta[..., None])[..., 0]))
        grad = np.matmul(zt, (w * (p - y))[..., None])[..., 0] + theta @ ridge
        hess = np.matmul(zt * (w * p * (1 - p))[:, None, :], z) + ridge
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return theta
