"""Proportions of n images: the Wilson score interval and McNemar's paired test.

An accuracy is k correct images of n, so its 95 % interval is the Wilson score interval
(Wilson 1927; recommended over the Wald interval by Brown, Cai and DasGupta 2001):

    centre = (k + z²/2) / (n + z²),   half = z / (n + z²) · √(k(n − k)/n + z²/4),

with z the two-sided normal quantile of the confidence (1.95996… for 95 %); at k = 0 the lower
bound is exactly 0 and at k = n the upper bound is exactly 1. Two models evaluated on the same
images are compared with McNemar's test on the images where they disagree, never by whether
two intervals overlap (the images are shared, so the two accuracies are not independent).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from robustlens.errors import ConfigError

CONFIDENCE = 0.95
EXACT_BELOW = 25
"""McNemar: exact binomial test when fewer than this many images are discordant."""


def _check_confidence(confidence: float) -> float:
    if not isinstance(confidence, numbers.Real) or not 0.0 < float(confidence) < 1.0:
        raise ConfigError(
            f"confidence must be a number strictly between 0 and 1, got {confidence!r}",
            fix="e.g. confidence=0.95",
        )
    return float(confidence)


def z_value(confidence: float = CONFIDENCE) -> float:
    """The two-sided standard normal quantile z with P(|Z| ≤ z) = ``confidence``."""
    return NormalDist().inv_cdf(0.5 + _check_confidence(confidence) / 2)


def _counts(k: Any, n: Any) -> tuple[np.ndarray, np.ndarray]:
    k_arr, n_arr = np.asarray(k), np.asarray(n)
    for name, arr in (("k", k_arr), ("n", n_arr)):
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError(f"{name} must be a whole number of images, got {arr.tolist()!r}")
    if np.any(n_arr < 1):
        raise ConfigError(
            "a proportion of n = 0 images has no interval",
            fix="evaluate on at least one image",
        )
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ConfigError(
            f"k must lie in 0..n, got k = {k_arr.tolist()!r} of n = {n_arr.tolist()!r}"
        )
    return k_arr.astype(np.float64), n_arr.astype(np.float64)


def wilson_bounds(k: Any, n: Any, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score bounds for arrays of counts ``k`` of ``n`` (broadcast), in float64."""
    kf, nf = _counts(k, n)
    z = z_value(confidence)
    z2 = z * z
    centre = (kf + z2 / 2) / (nf + z2)
    half = z / (nf + z2) * np.sqrt(kf * (nf - kf) / nf + z2 / 4)
    low = np.where(kf == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(kf == nf, 1.0, np.clip(centre + half, 0.0, 1.0))
    return low, high


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval (low, high) for ``k`` successes of ``n``; n = 0 is an error."""
    low, high = wilson_bounds(k, n, confidence)
    return float(low), float(high)


@dataclass(frozen=True)
class Proportion:
    """k of n with its Wilson interval; ``str`` gives ``0.734 [0.706, 0.760]``."""

    k: int
    n: int
    low: float
    high: float
    confidence: float = CONFIDENCE

    @property
    def value(self) -> float:
        return self.k / self.n

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def columns(self) -> dict[str, float]:
        """``ci_low``/``ci_high`` for a table row or a model card metric."""
        return {"ci_low": self.low, "ci_high": self.high}


def proportion(k: int, n: int, confidence: float = CONFIDENCE) -> Proportion:
    """``k`` of ``n`` as a :class:`Proportion` with its Wilson interval."""
    low, high = wilson_interval(k, n, confidence)
    return Proportion(int(k), int(n), low, high, confidence)


def proportion_of(correct: Any, confidence: float = CONFIDENCE) -> Proportion:
    """The proportion of true entries of a boolean vector (a tensor or array, one per image)."""
    flags = np.asarray(correct.cpu() if hasattr(correct, "cpu") else correct)
    if flags.dtype != bool:
        raise ConfigError(f"expected one boolean per image, got dtype {flags.dtype}")
    return proportion(int(flags.sum()), int(flags.size), confidence)


def count_of(rate: float, n: int) -> int:
    """The count k behind a stored proportion ``rate`` of ``n`` images (k = rate·n, rounded).

    Refuses a rate that is not k/n for a whole k (up to float32 rounding of the rate), which
    would mean it is not a proportion of those n images.
    """
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n must be a positive whole number of images, got {n!r}")
    if not isinstance(rate, numbers.Real) or not 0.0 <= float(rate) <= 1.0:
        raise ConfigError(f"a proportion must lie in [0, 1], got {rate!r}")
    k = round(float(rate) * n)
    if abs(k - float(rate) * n) > 4 * float(np.finfo(np.float32).eps) * n:
        raise ConfigError(f"{rate!r} is not a proportion of {n} images (k = {float(rate) * n:g})")
    return int(k)


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test: ``only_a`` images right only for model A, ``only_b`` only for B."""

    statistic: float
    p_value: float
    only_a: int
    only_b: int
    method: str  # "exact binomial" or "chi-square, continuity-corrected"

    @property
    def discordant(self) -> int:
        return self.only_a + self.only_b


def _exact_p(small: int, total: int) -> float:
    """Two-sided exact binomial p-value: 2·P(X ≤ small) for X ~ Binomial(total, 1/2), ≤ 1."""
    tail = sum(math.comb(total, i) for i in range(small + 1))
    return min(1.0, 2 * tail / 2**total)


def mcnemar(a_correct: Any, b_correct: Any, *, exact_below: int = EXACT_BELOW) -> McNemarResult:
    """McNemar's paired test of two models' per-image correctness on the same images.

    Only discordant images count: b = right for A only, c = right for B only. Under equal
    accuracy b ~ Binomial(b + c, 1/2). With b + c < ``exact_below`` (25) the two-sided exact
    binomial test is used, statistic = min(b, c), p = min(1, 2·P(X ≤ min(b, c))); otherwise
    the chi-square test with Edwards' continuity correction, statistic =
    max(|b − c| − 1, 0)² / (b + c) with 1 degree of freedom, p = erfc(√(statistic / 2)).
    No discordant image gives statistic 0 and p = 1.
    """
    a = np.asarray(a_correct.cpu() if hasattr(a_correct, "cpu") else a_correct)
    b = np.asarray(b_correct.cpu() if hasattr(b_correct, "cpu") else b_correct)
    if a.dtype != bool or b.dtype != bool:
        raise ConfigError(
            f"McNemar needs one boolean per image for each model, got {a.dtype} and {b.dtype}"
        )
    if a.shape != b.shape or a.ndim != 1:
        raise ConfigError(
            f"McNemar compares two models on the same images: shapes {a.shape} and {b.shape} "
            "must be equal and one-dimensional",
            fix="evaluate both models on the same images, in the same order",
        )
    if a.size == 0:
        raise ConfigError("McNemar needs at least one image")
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    total = only_a + only_b
    if total < exact_below:
        small = min(only_a, only_b)
        p = 1.0 if total == 0 else _exact_p(small, total)
        return McNemarResult(float(small), p, only_a, only_b, "exact binomial")
    stat = max(abs(only_a - only_b) - 1, 0) ** 2 / total
    return McNemarResult(
        stat, math.erfc(math.sqrt(stat / 2)), only_a, only_b, "chi-square, continuity-corrected"
    )
