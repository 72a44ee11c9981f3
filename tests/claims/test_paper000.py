"""Claims and the paired bootstrap, on hand-made per-image results with known answers."""

from __future__ import annotations

import numpy as np

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, ResultsView, evaluate_claims
from robustlens.claims.paper000 import (
    check_dense_grows,
    check_dense_more,
    check_grid,
    check_latent_tradeoff,
    check_pixel_average,
)
from tests.claims.exact import model  # also imported from here by other claim tests

N = 400
RESAMPLES = 300


def view_with(arrays: dict[tuple[str, str, str], np.ndarray], models, lenses) -> ResultsView:
    """A view whose checks bootstrap with 300 resamples, seed 0."""
    view = ResultsView(
        models, lambda lens, m, name: arrays.get((lens, m, name)), set(lenses), N, 10
    )
    view.resamples, view.seed = RESAMPLES, 0
    return view


def dense(always: int, channels: int = 8, seed: int = 0) -> np.ndarray:
    """Per-image dense indicators with exactly ``always`` maps dense for every image."""
    rng = np.random.default_rng(seed)
    out = rng.random((N, channels)) > 0.5
    out[:, :always] = True
    out[0, always:] = False  # the others miss at least one image
    return out


def activation_arrays(per_model: dict[str, int]) -> dict:
    arrays = {}
    for i, (name, always) in enumerate(per_model.items()):
        arrays[("activations", name, "taps")] = np.array(["block1"])
        arrays[("activations", name, "dense/block1")] = dense(always, seed=i)
    return arrays


NAT = model("natural")
R1 = model("linf-0.1", "pgd", "linf", 0.1)
R2 = model("linf-0.2", "pgd", "linf", 0.2)


def test_dense_claim_holds_fails_and_needs_a_natural_model():
    holds = view_with(
        activation_arrays({"natural": 1, "linf-0.1": 3, "linf-0.2": 5}),
        [NAT, R1, R2],
        ["activations"],
    )
    verdict = check_dense_more(holds)
    assert verdict.status == HOLDS, verdict.evidence
    assert verdict.numbers["linf-0.1"]["delta"] == 2 and verdict.numbers["linf-0.2"]["delta"] == 4
    fails = view_with(
        activation_arrays({"natural": 4, "linf-0.1": 2, "linf-0.2": 5}),
        [NAT, R1, R2],
        ["activations"],
    )
    assert check_dense_more(fails).status == FAILS
    no_natural = view_with(
        activation_arrays({"linf-0.1": 2, "linf-0.2": 5}), [R1, R2], ["activations"]
    )
    assert check_dense_more(no_natural).status == INCONCLUSIVE


def test_dense_growth_needs_three_budgets_and_follows_the_order():
    grows = view_with(
        activation_arrays({"natural": 1, "linf-0.1": 3, "linf-0.2": 5}),
        [NAT, R1, R2],
        ["activations"],
    )
    assert check_dense_grows(grows).status == HOLDS
    shrinks = view_with(
        activation_arrays({"natural": 5, "linf-0.1": 3, "linf-0.2": 1}),
        [NAT, R1, R2],
        ["activations"],
    )
    assert check_dense_grows(shrinks).status == FAILS
    two = view_with(activation_arrays({"natural": 1, "linf-0.1": 3}), [NAT, R1], ["activations"])
    verdict = check_dense_grows(two)
    assert verdict.status == INCONCLUSIVE and "needs 3" in verdict.evidence


def correct(rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(N, dtype=bool)
    out[rng.permutation(N)[: int(rate * N)]] = True
    return out


def test_accuracy_claims_see_only_differences_the_data_supports():
    arrays = {
        ("color", "natural", "pixel_average"): correct(0.10, 0),
        ("color", "linf-0.1", "pixel_average"): correct(0.30, 1),
        ("color", "natural", "clean"): correct(0.9, 2),
        ("color", "linf-0.1", "clean"): correct(0.8, 3),
        ("color", "natural", "grid"): correct(0.9, 2),  # no drop
        ("color", "linf-0.1", "grid"): correct(0.8, 3),  # no drop either
    }
    view = view_with(arrays, [NAT, R1], ["color"])
    assert check_pixel_average(view).status == HOLDS
    assert check_grid(view).status == INCONCLUSIVE  # equal drops: the CI spans 0
    arrays[("color", "linf-0.1", "pixel_average")] = correct(0.05, 4)  # below chance 0.1
    assert check_pixel_average(view_with(arrays, [NAT, R1], ["color"])).status == FAILS


def test_latent_tradeoff_per_robust_model():
    arrays = {
        ("latent", "linf-0.1", "natural/original"): correct(0.70, 0),
        ("latent", "linf-0.1", "natural/retrained"): correct(0.80, 1),
        ("latent", "linf-0.1", "robust/original"): correct(0.60, 2),
        ("latent", "linf-0.1", "robust/retrained"): correct(0.45, 3),
    }
    assert check_latent_tradeoff(view_with(arrays, [NAT, R1], ["latent"])).status == HOLDS
    arrays[("latent", "linf-0.1", "robust/retrained")] = correct(0.70, 3)
    assert check_latent_tradeoff(view_with(arrays, [NAT, R1], ["latent"])).status == FAILS


def test_only_claims_whose_lenses_ran_are_evaluated():
    view = view_with(
        activation_arrays({"natural": 1, "linf-0.1": 3, "linf-0.2": 5}),
        [NAT, R1, R2],
        ["activations"],
    )
    ids = [claim.id for claim, _ in evaluate_claims(view, resamples=100)]
    assert ids and all(i.startswith("000-4.1") or i.startswith("000-4.2") for i in ids)
    statuses = {claim.id: v.status for claim, v in evaluate_claims(view, resamples=100)}
    assert statuses["000-4.2-redundancy"] == INCONCLUSIVE  # its arrays are missing here


def test_growth_needs_a_nearly_monotone_trend():
    r3 = model("linf-0.3", "pgd", "linf", 0.3)
    # N_k by ε: 1, 3, 2, 5 → ρ = 0.8; 1, 5, 3, 2 → ρ = 0.2 (not a trend) → inconclusive
    mostly = activation_arrays({"natural": 1, "linf-0.1": 3, "linf-0.2": 2, "linf-0.3": 5})
    assert check_dense_grows(view_with(mostly, [NAT, R1, R2, r3], ["activations"])).status == HOLDS
    weak = activation_arrays({"natural": 1, "linf-0.1": 5, "linf-0.2": 3, "linf-0.3": 2})
    verdict = check_dense_grows(view_with(weak, [NAT, R1, R2, r3], ["activations"]))
    assert verdict.status == INCONCLUSIVE and "ρ(ε, Σ_k N_k) = 0.2" in verdict.evidence
