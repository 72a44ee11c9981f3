"""The hierarchical bootstrap over training seeds × images: with a seed effect, its interval
for a difference between two settings covers the true difference about 95 % of the time; an
interval over images only is too narrow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robustlens.analysis.bootstrap import (
    hierarchical_mean_interval,
    hierarchical_samples,
    interval,
    mean_interval,
    resample_weights,
    seed_weights,
    weighted_mean,
)
from tests.tolerances import float_tol

SIMS = 200
RESAMPLES = 400
SEEDS = 10
IMAGES = 100
TRUE_DELTA = 0.3
SEED_SD, IMAGE_SD, NOISE_SD = 0.5, 1.0, 1.0
Z_999 = 3.2905  # two-sided 99.9 % normal quantile


def wilson(hits: int, n: int, z: float = Z_999) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def simulate(rng: np.random.Generator) -> np.ndarray:
    """values[s, r, i] for settings s ∈ {natural, robust}: setting mean + seed effect + image
    effect (shared and per setting) + noise; the robust setting's mean is TRUE_DELTA higher."""
    shared = rng.normal(0, IMAGE_SD, IMAGES)
    out = np.empty((2, SEEDS, IMAGES))
    for s in range(2):
        seed_effect = rng.normal(0, SEED_SD, (SEEDS, 1))
        image_effect = rng.normal(0, IMAGE_SD, IMAGES)
        noise = rng.normal(0, NOISE_SD, (SEEDS, IMAGES))
        out[s] = s * TRUE_DELTA + seed_effect + shared + image_effect + noise
    return out


def delta_interval(values: np.ndarray, sim: int, over_seeds: bool):
    w = resample_weights(IMAGES, RESAMPLES, seed=sim)
    parts = []
    for s, name in enumerate(("natural", "robust")):
        counts = (
            seed_weights(SEEDS, RESAMPLES, sim, name) if over_seeds else np.ones((RESAMPLES, SEEDS))
        )
        per_replicate = np.stack([weighted_mean(v, w) for v in values[s]])
        parts.append((values[s].mean(), hierarchical_samples(per_replicate, counts)))
    return interval(parts[1][0] - parts[0][0], parts[1][1] - parts[0][1])


@pytest.fixture(scope="module")
def coverage() -> dict[bool, int]:
    hits = {True: 0, False: 0}
    for sim in range(SIMS):
        values = simulate(np.random.default_rng([sim, 16]))
        for over_seeds in hits:
            iv = delta_interval(values, sim, over_seeds)
            hits[over_seeds] += iv.low <= TRUE_DELTA <= iv.high
    return hits


def test_seeds_and_images_cover_the_true_difference_at_the_nominal_rate(coverage):
    # 185 of 200 seen (0.925; the (R − 1)/R plug-in factor with R = 10 seeds)
    low, high = wilson(coverage[True], SIMS)
    assert low <= 0.95 <= high, coverage


def test_an_interval_over_images_only_under_covers(coverage):
    # expected ≈ P(|Z| < 1.96·√(0.022/0.072)) ≈ 0.72 (0.715 seen): the seed variance is left out
    _, high = wilson(coverage[False], SIMS)
    assert high < 0.95, coverage


def test_one_replicate_is_the_paired_image_bootstrap_number_for_number():
    values = np.random.default_rng(3).normal(size=(1, 50))
    w = resample_weights(50, 200, 0)
    counts = seed_weights(1, 200, 0, "natural")
    assert np.array_equal(counts, np.ones((200, 1)))
    a = hierarchical_mean_interval(values, w, counts)
    b = mean_interval(values[0], w)
    tol = float_tol(np.float64, 50)
    assert abs(a.estimate - b.estimate) <= tol
    assert abs(a.low - b.low) <= tol and abs(a.high - b.high) <= tol


def test_seed_draws_are_multiplicities_in_a_stream_per_setting():
    a = seed_weights(3, 500, 0, "linf-0.1")
    assert a.shape == (500, 3) and np.all(a.sum(axis=1) == 3)
    assert np.array_equal(a, seed_weights(3, 500, 0, "linf-0.1"))
    assert not np.array_equal(a, seed_weights(3, 500, 0, "natural"))
    # each replicate is drawn once per resample on average
    assert np.all(np.abs(a.mean(axis=0) - 1) < 4 * math.sqrt(2 / 3 / 500))


def test_the_hierarchical_mean_weighs_replicates_by_their_draws():
    """Two replicates with constant values 0 and 1: a resample that draws replicate 1 twice
    has mean 1, once 0.5, never 0; the interval spans what the draws allow."""
    values = np.stack([np.zeros(20), np.ones(20)])
    w = resample_weights(20, 300, 0)
    counts = seed_weights(2, 300, 0, "x")
    iv = hierarchical_mean_interval(values, w, counts)
    assert iv.estimate == 0.5
    assert iv.low == 0.0 and iv.high == 1.0
    boot = hierarchical_samples(np.stack([weighted_mean(v, w) for v in values]), counts)
    assert np.array_equal(boot, counts[:, 1] / 2)
