"""Paired bootstrap over evaluation images.

Every model of a study sees the same images, so a comparison between two models resamples the
images once and evaluates both statistics on the same resample. A resample is represented by
its multiplicity weights W[b, i] (how often image i was drawn in resample b); statistics that
are means or "for every image" counts are then matrix products with W.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def resample_weights(n: int, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """W[b, i]: how many times image i is drawn in resample b (each row sums to n)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    weights = np.zeros((resamples, n), dtype=np.float64)
    np.add.at(weights, (np.arange(resamples)[:, None], idx), 1.0)
    return weights


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of per-image ``values`` under each resample, ignoring NaN values."""
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    total = weights @ np.where(ok, values, 0.0)
    count = weights @ ok.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def always_true_count(indicator: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Columns of ``indicator`` [N, C] true for every drawn image, per resample."""
    misses = weights @ (~indicator.astype(bool)).astype(np.float64)  # [B, C]
    return (misses == 0).sum(axis=1).astype(np.float64)


@dataclass
class Interval:
    estimate: float
    low: float
    high: float

    def sign(self) -> int:
        """+1 if the interval lies above 0, −1 if below, 0 if it contains 0."""
        if self.low > 0:
            return 1
        if self.high < 0:
            return -1
        return 0

    def text(self, digits: int = 3) -> str:
        return f"{self.estimate:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"


def interval(estimate: float, samples: np.ndarray) -> Interval:
    """Percentile interval of bootstrap ``samples`` around the full-data ``estimate``."""
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return Interval(estimate, np.nan, np.nan)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return Interval(float(estimate), float(low), float(high))


def spearman_rows(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Spearman correlation of ``x`` [M] with each row of ``ys`` [B, M]."""
    out = np.empty(ys.shape[0])
    for b, y in enumerate(ys):
        if np.all(y == y[0]) or np.any(np.isnan(y)):
            out[b] = np.nan
        else:
            out[b] = stats.spearmanr(x, y).statistic
    return out


Statistic = Callable[[np.ndarray], np.ndarray]
"""A statistic of per-image data under weights W [B, N] → one value per resample [B]."""


def full_weights(n: int) -> np.ndarray:
    """The weights of the data itself (every image once), as a one-row W."""
    return np.ones((1, n))
