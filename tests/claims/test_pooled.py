"""ResultsView's pooling of settings (pooled_samples, difference_interval, pooled_draws)
against the two-stage bootstrap written out by hand."""

from __future__ import annotations

import dataclasses

import numpy as np

from robustlens.analysis.bootstrap import hierarchical_samples, seed_weights, weighted_mean
from tests.claims.exact import model, view
from tests.tolerances import close

N = 30
BASE_A, BASE_B = model("natural"), model("linf-0.1", "pgd", "linf", 0.1)


def replicates(base, count: int):
    return [
        dataclasses.replace(base, name=f"{base.name}@s{s}", setting=base.name) for s in range(count)
    ]


A, B = replicates(BASE_A, 2), replicates(BASE_B, 3)
RNG = np.random.default_rng(7)
VALUES = {m.name: RNG.normal(i, 1.0, N) for i, m in enumerate(A + B)}


def seeded_view(resamples: int = 150):
    return view(A + B, {}, N, resamples=resamples)


def test_one_model_per_role_is_the_paired_image_bootstrap_number_for_number():
    v = view([BASE_A, BASE_B], {}, N)
    values = VALUES[A[0].name]
    full, boot = v.pooled_samples([[BASE_A]], lambda m: values)
    ref_full, ref_boot = v.mean_samples(values)
    assert full == ref_full and np.array_equal(boot, ref_boot)
    diff = v.difference_interval([BASE_B], [BASE_A], {"natural": values, "linf-0.1": 2 * values})
    assert diff == v.mean_interval(2 * values - values)


def test_two_roles_average_every_pair_of_replicates_under_both_settings_seed_draws():
    v = seeded_view()
    w = v.weights(N)
    c_a, c_b = v.seed_weights("natural", 2), v.seed_weights("linf-0.1", 3)
    full, boot = v.pooled_samples([A, B], lambda a, b: VALUES[b.name] * VALUES[a.name])
    by_hand = np.zeros(v.resamples)
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            by_hand += c_a[:, i] * c_b[:, j] * weighted_mean(VALUES[b.name] * VALUES[a.name], w)
    np.testing.assert_allclose(boot, by_hand / 6, **close(np.float64, 6 * N, scale=5.0))
    products = [np.mean(VALUES[b.name] * VALUES[a.name]) for a in A for b in B]
    np.testing.assert_allclose(full, np.mean(products), **close(np.float64, 6 * N, scale=5.0))


def test_a_difference_of_settings_is_the_difference_of_their_hierarchical_means():
    """Each setting's seeds are drawn on their own stream (by setting name), the images once
    for both: Δ's draws are setting B's hierarchical mean − setting A's, resample by resample."""
    v = seeded_view()
    w = v.weights(N)
    iv = v.difference_interval(B, A, VALUES)
    means = {
        name: hierarchical_samples(
            np.stack([weighted_mean(VALUES[m.name], w) for m in group]),
            seed_weights(len(group), v.resamples, v.seed, name),
        )
        for name, group in (("natural", A), ("linf-0.1", B))
    }
    draws = means["linf-0.1"] - means["natural"]
    lo, hi = np.quantile(draws, [0.025, 0.975])
    tol = close(np.float64, 6 * N, scale=5.0)
    np.testing.assert_allclose([iv.low, iv.high], [lo, hi], **tol)
    estimate = np.mean([VALUES[m.name].mean() for m in B]) - np.mean(
        [VALUES[m.name].mean() for m in A]
    )
    np.testing.assert_allclose(iv.estimate, estimate, **tol)
    # the seeds widen the interval beyond the images' alone (the replicates' means differ by 1)
    only_images = v.mean_interval(VALUES[B[1].name] - VALUES[A[0].name])
    assert iv.high - iv.low > only_images.high - only_images.low


def test_lens_draws_are_averaged_over_as_many_seed_draws():
    v = seeded_view(resamples=1000)
    draws = [np.linspace(0, 1, 40) + k for k in range(3)]
    full, boot = v.pooled_draws(B, [0.5, 1.5, 2.5], draws)
    counts = seed_weights(3, 40, v.seed, "linf-0.1")
    assert full == 1.5 and boot.shape == (40,)
    np.testing.assert_allclose(boot, hierarchical_samples(np.stack(draws), counts), rtol=0)
    one_full, one_boot = v.pooled_draws(B[:1], [0.5], draws[:1])
    assert one_full == 0.5 and np.array_equal(one_boot, draws[0])
