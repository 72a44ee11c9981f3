"""Paper 000's claims (and the shared Δ-versus-natural and grows-with-ε machinery) on tiny
results worked by hand: exact evidence, numbers and verdicts, and each boundary on both sides."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, NOT_APPLICABLE, Verdict
from robustlens.claims.paper000 import (
    check_contours,
    check_dense_grows,
    check_dense_more,
    check_grid,
    check_latent_grows,
    check_latent_tradeoff,
    check_pixel_average,
    check_redundancy,
)
from tests.claims.exact import CI, const, model, point, run, view

N = 4
NAT = model("natural")
NAT_B = model("natural-b")  # a second natural model: never the reference
R1 = model("linf-0.1", "pgd", "linf", 0.1)
R2 = model("linf-0.2", "pgd", "linf", 0.2)
R3 = model("linf-0.3", "pgd", "linf", 0.3)
L2 = model("l2-1", "pgd", "l2", 1.0)


def dense(per_tap: list[int], channels: int = 4) -> dict[str, np.ndarray]:
    """Per tap, exactly ``k`` maps dense on every image and the others on none."""
    out = {}
    for i, k in enumerate(per_tap):
        d = np.zeros((N, channels), dtype=bool)
        d[:, :k] = True
        out[f"b{i}"] = d
    return out


def activations(per_model: dict[str, list[int]]) -> dict:
    arrays = {}
    for name, per_tap in per_model.items():
        taps = dense(per_tap)
        arrays[("activations", name, "taps")] = np.array(list(taps))
        for tap, d in taps.items():
            arrays[("activations", name, f"dense/{tap}")] = d
    return arrays


def delta(value: float) -> dict:
    return {"delta": value, "low": value, "high": value}


def test_dense_more_reports_the_natural_count_and_each_delta():
    arrays = activations({"natural": [1, 0], "natural-b": [4, 4], "linf-0.1": [2, 1]})
    arrays |= activations({"linf-0.2": [0, 0]})
    v = view([NAT, NAT_B, R1, R2], arrays, N)
    assert run(check_dense_more, v) == Verdict(
        FAILS,
        f"natural: Σ_k N_k = 1; linf-0.1: Δ Σ_k N_k = {point(2)}; "
        f"linf-0.2: Δ Σ_k N_k = {point(-1)}; N_k counts maps dense on ≥ 99 % of the images; "
        "on every image (Fig. 1, no interval): natural 1, natural-b 8, linf-0.1 3, linf-0.2 0",
        CI,
        {
            "linf-0.1": delta(2.0),
            "linf-0.2": delta(-1.0),
            "natural": {"model": "natural", "value": 1.0},
        },
    )
    same = view([NAT, R1], activations({"natural": [1, 0], "linf-0.1": [0, 1]}), N)
    assert run(check_dense_more, same).status == INCONCLUSIVE
    more = view([NAT, R1], activations({"natural": [1, 0], "linf-0.1": [0, 2]}), N)
    assert run(check_dense_more, more).status == HOLDS


@pytest.mark.parametrize("models", [[NAT], [R1], []])
def test_dense_more_needs_a_natural_and_a_robust_model(models):
    v = view(models, activations({"natural": [1], "linf-0.1": [2]}), N)
    assert run(check_dense_more, v) == Verdict(
        INCONCLUSIVE, "needs a natural and at least one robust model (Σ_k N_k)", CI, {}
    )


def test_dense_grows_reads_each_norm_and_skips_one_with_too_few_eps():
    """l2 (sorted first) has one robust model: 2 distinct ε with the natural one; linf has three
    and the count grows with ε, ρ = 1 on every resample."""
    arrays = activations(
        {"natural": [1], "natural-b": [4], "l2-1": [3], "linf-0.1": [2], "linf-0.2": [3]}
    )
    v = view([NAT, NAT_B, L2, R1, R2], arrays, N)
    assert run(check_dense_grows, v) == Verdict(
        HOLDS,
        f"l2: 2 distinct ε (needs 3); linf: ρ(ε, Σ_k N_k) = {point(1)} over ε = 0, 0.1, 0.2; "
        "N_k counts maps dense on ≥ 99 % of the images; on every image (Fig. 1, no interval): "
        "natural 1, natural-b 4, l2-1 3, linf-0.1 2, linf-0.2 3",
        CI,
        {"linf": {"rho": 1.0, "low": 1.0, "high": 1.0}},
    )


@pytest.mark.parametrize(
    ("counts", "status"),
    [
        ([2, 1, 3, 5, 4], HOLDS),  # ranks 2 1 3 5 4: ρ = 0.8, just enough
        ([2, 3, 1, 4, 5], INCONCLUSIVE),  # ranks 2 3 1 4 5: ρ = 0.7, positive but not monotone
        ([5, 4, 3, 2, 1], FAILS),  # ρ = −1
    ],
)
def test_dense_grows_needs_rho_of_at_least_0_8(counts, status):
    models = [NAT, R1, R2, R3, model("linf-0.4", "pgd", "linf", 0.4)]
    arrays = activations(
        {m.name: [min(c, 4), max(c - 4, 0)] for m, c in zip(models, counts, strict=True)}
    )
    verdict = run(check_dense_grows, view(models, arrays, N))
    assert verdict.status == status, verdict.evidence
    rho = verdict.numbers["linf"]["rho"]
    assert rho == pytest.approx({HOLDS: 0.8, INCONCLUSIVE: 0.7, FAILS: -1.0}[status], abs=1e-12)


@pytest.mark.parametrize(
    ("models", "evidence"),
    [
        ([NAT], "needs ≥ 3 training ε of one norm"),
        ([NAT, R1], "linf: 2 distinct ε (needs 3)"),
    ],
)
def test_dense_grows_without_three_eps(models, evidence):
    arrays = activations({"natural": [1], "linf-0.1": [2]})
    assert run(check_dense_grows, view(models, arrays, N)) == Verdict(
        INCONCLUSIVE, evidence, "", {}
    )


def blocks(per_model: dict[str, tuple[list[float], list[float]]]) -> dict:
    """Per model, per tap: (redundant-map share, mean similarity), the same for every image; a
    third tap without values (NaN) is left out of the mean over blocks."""
    arrays = {}
    for name, (red, sim) in per_model.items():
        arrays[("activations", name, "taps")] = np.array(["b0", "b1", "b2"])
        for i, (r, s) in enumerate(zip([*red, np.nan], [*sim, np.nan], strict=True)):
            arrays[("activations", name, f"redundant_maps/b{i}")] = const(r, N)
            arrays[("activations", name, f"mean_similarity/b{i}")] = const(s, N)
    return arrays


def test_redundancy_exact_evidence_for_both_parts():
    arrays = blocks(
        {
            "natural": ([0.25, 0.75], [0.125, 0.125]),
            "natural-b": ([1.0, 1.0], [1.0, 1.0]),
            "linf-0.1": ([0.5, 1.0], [0.25, 0.5]),
        }
    )
    v = view([NAT, NAT_B, R1], arrays, N)
    assert run(check_redundancy, v) == Verdict(
        HOLDS,
        f"natural: C^R (mean over blocks) = 0.5; linf-0.1: Δ C^R (mean over blocks) = "
        f"{point(0.25)}; natural: S̄ (mean over blocks) = 0.125; linf-0.1: Δ S̄ (mean over "
        f"blocks) = {point(0.25)}",
        CI,
        {
            "redundant_maps": {
                "linf-0.1": delta(0.25),
                "natural": {"model": "natural", "value": 0.5},
            },
            "mean_similarity": {
                "linf-0.1": delta(0.25),
                "natural": {"model": "natural", "value": 0.125},
            },
        },
    )
    lower_similarity = blocks(
        {"natural": ([0.25, 0.75], [0.5, 0.5]), "linf-0.1": ([0.5, 1.0], [0.25, 0.5])}
    )
    assert run(check_redundancy, view([NAT, R1], lower_similarity, N)).status == FAILS


def latent(per_model: dict[str, tuple[int, int, int, int]]) -> dict:
    """Per model: natural accuracy (original, retrained), robust accuracy (original, retrained),
    each 0 or 1 on every image."""
    arrays = {}
    for name, (n0, n1, r0, r1) in per_model.items():
        for key, value in (
            ("natural/original", n0),
            ("natural/retrained", n1),
            ("robust/original", r0),
            ("robust/retrained", r1),
        ):
            arrays[("latent", name, key)] = np.full(N, bool(value))
    return arrays


def test_latent_tradeoff_exact_evidence():
    v = view([NAT, R1, R2], latent({"linf-0.1": (0, 1, 1, 0), "linf-0.2": (1, 1, 1, 0)}), N)
    up, zero, down = ({"estimate": x, "low": x, "high": x} for x in (1.0, 0.0, -1.0))
    assert run(check_latent_tradeoff, v) == Verdict(
        INCONCLUSIVE,
        f"linf-0.1: Δ natural acc = {point(1)}, Δ robust acc = {point(-1)}; "
        f"linf-0.2: Δ natural acc = {point(0)}, Δ robust acc = {point(-1)}",
        "95 % bootstrap CI over images",
        {
            "linf-0.1": {"natural": up, "robust": down},
            "linf-0.2": {"natural": zero, "robust": down},
        },
    )
    holds = view([R1], latent({"linf-0.1": (0, 1, 1, 0)}), N)
    assert run(check_latent_tradeoff, holds).status == HOLDS
    robust_up = view([R1], latent({"linf-0.1": (0, 1, 0, 1)}), N)
    assert run(check_latent_tradeoff, robust_up).status == FAILS
    assert run(check_latent_tradeoff, view([NAT], {}, N)) == Verdict(
        INCONCLUSIVE, "needs at least one robust model"
    )


def test_latent_grows_exact_evidence():
    """Δ natural −1, 0, 1 and Δ robust 1, 0, −1 over ε 0.1, 0.2, 0.3: ρ = 1 for both."""
    arrays = latent({"linf-0.1": (1, 0, 0, 1), "linf-0.2": (1, 1, 1, 1), "linf-0.3": (0, 1, 1, 0)})
    v = view([NAT, R1, R2, R3], arrays, N)
    rho = {"linf": {"rho": 1.0, "low": 1.0, "high": 1.0}}
    assert run(check_latent_grows, v) == Verdict(
        HOLDS,
        f"linf: ρ(ε, Δ natural acc) = {point(1)} over ε = 0.1, 0.2, 0.3; "
        f"linf: ρ(ε, −Δ robust acc) = {point(1)} over ε = 0.1, 0.2, 0.3",
        CI,
        {"natural": rho, "robust": rho},
    )
    # the robust part alone going the wrong way fails the claim
    arrays = latent({"linf-0.1": (1, 0, 1, 0), "linf-0.2": (1, 1, 1, 1), "linf-0.3": (0, 1, 0, 1)})
    assert run(check_latent_grows, view([NAT, R1, R2, R3], arrays, N)).status == FAILS


def test_latent_grows_needs_three_robust_models_of_one_norm():
    arrays = latent({"linf-0.1": (1, 0, 0, 1), "linf-0.2": (1, 1, 1, 1)})
    assert run(check_latent_grows, view([NAT, R1, R2], arrays, N)) == Verdict(
        INCONCLUSIVE, "linf: 2 distinct ε (needs 3); linf: 2 distinct ε (needs 3)"
    )
    assert run(check_latent_grows, view([NAT], {}, N)) == Verdict(
        INCONCLUSIVE, "needs ≥ 3 robust models of one norm"
    )


def color(per_model: dict[str, dict[str, object]]) -> dict:
    arrays = {}
    for name, probes in per_model.items():
        for key, value in probes.items():
            arrays[("color", name, key)] = np.broadcast_to(
                np.asarray(value, dtype=bool)[..., None], (*np.shape(value), N)
            ).copy()
    return arrays


def test_pixel_average_exact_evidence_with_chance():
    arrays = color({"natural": {"pixel_average": 0}, "linf-0.1": {"pixel_average": 1}})
    v = view([NAT, R1], arrays, N, num_classes=4)
    assert run(check_pixel_average, v) == Verdict(
        HOLDS,
        f"natural: pixel-average accuracy = 0; linf-0.1: Δ pixel-average accuracy = {point(1)}; "
        f"linf-0.1: accuracy − chance (0.25) = {point(0.75)}",
        CI,
        {"linf-0.1": delta(1.0), "natural": {"model": "natural", "value": 0.0}},
    )
    # better than the natural model but not than chance (here, chance is 1)
    v = view([NAT, R1], arrays, N, num_classes=1)
    verdict = run(check_pixel_average, v)
    assert verdict.status == INCONCLUSIVE
    assert verdict.evidence.endswith(f"linf-0.1: accuracy − chance (1) = {point(0)}")


RGB = {m.name: model(m.name, *m.card.recipe.values(), channels=3) for m in (NAT, NAT_B, R1)}
"""The same models on three-channel (colour) inputs."""


def test_contours_exact_drop_and_spread_over_colours():
    """[colours, thicknesses] accuracies. Natural: (1, 1), (1, 0): drop 0.25, per-colour means
    1 and 0.5, std 0.25. Robust: (1, 1), (0, 0): drop 0.5, std 0.5."""
    nat, nat_b, r1 = RGB["natural"], RGB["natural-b"], RGB["linf-0.1"]
    arrays = color(
        {
            "natural": {"clean": 1, "contour": [[1, 1], [1, 0]]},
            "natural-b": {"clean": 0, "contour": [[0, 0], [0, 0]]},
            "linf-0.1": {"clean": 1, "contour": [[1, 1], [0, 0]]},
        }
    )
    v = view([nat, nat_b, r1], arrays, N)
    assert run(check_contours, v) == Verdict(
        HOLDS,
        f"natural: contour drop = 0.25; linf-0.1: Δ contour drop = {point(0.25)}; "
        f"natural: std of drop over colours = 0.25; linf-0.1: Δ std of drop over colours = "
        f"{point(0.25)}",
        CI,
        {
            "drop": {"linf-0.1": delta(0.25), "natural": {"model": "natural", "value": 0.25}},
            "spread": {"linf-0.1": delta(0.25), "natural": {"model": "natural", "value": 0.25}},
        },
    )
    # a drop that differs between thicknesses but not between colours has no spread
    flat = color(
        {
            "natural": {"clean": 1, "contour": [[1, 1], [1, 1]]},
            "linf-0.1": {"clean": 1, "contour": [[1, 0], [1, 0]]},
        }
    )
    verdict = run(check_contours, view([nat, r1], flat, N))
    assert verdict.numbers["drop"]["linf-0.1"] == delta(0.5)
    assert verdict.numbers["spread"]["linf-0.1"] == delta(0.0)
    assert verdict.status == INCONCLUSIVE


CONTOUR_HOLDS = {
    "natural": {"clean": 1, "contour": [[1, 1], [1, 0]]},
    "linf-0.1": {"clean": 1, "contour": [[1, 1], [0, 0]]},
}
CONTOUR_FAILS = {
    "natural": {"clean": 1, "contour": [[1, 1], [0, 0]]},
    "linf-0.1": {"clean": 1, "contour": [[1, 1], [1, 1]]},
}


def test_contours_fail_on_colour_data_when_robust_models_lose_less():
    v = view([RGB["natural"], RGB["linf-0.1"]], color(CONTOUR_FAILS), N)
    verdict = run(check_contours, v)
    assert verdict.status == FAILS
    assert verdict.numbers["drop"]["linf-0.1"] == delta(-0.5)


@pytest.mark.parametrize("results", [CONTOUR_HOLDS, CONTOUR_FAILS], ids=["holds", "fails"])
def test_contours_are_not_applicable_on_one_channel_data(results):
    """The results that hold (or fail) on colour inputs say nothing about colour on grey-scale
    inputs, where the four contour colours are grey levels: not applicable, never fails."""
    rgb = run(check_contours, view([RGB["natural"], RGB["linf-0.1"]], color(results), N))
    grey = run(check_contours, view([NAT, R1], color(results), N))
    assert rgb.status in (HOLDS, FAILS)
    assert grey.status == NOT_APPLICABLE
    assert grey.evidence == (
        "natural, linf-0.1: one-channel input, where the contour colours (white, red, green, "
        f"blue) are four grey levels: a colour bias cannot be tested (for information: "
        f"{rgb.evidence})"
    )
    assert grey.numbers == rgb.numbers


def test_contours_not_applicable_when_any_model_is_grey():
    mixed = run(check_contours, view([RGB["natural"], R1], color(CONTOUR_HOLDS), N))
    assert mixed.status == NOT_APPLICABLE
    assert mixed.evidence.startswith("linf-0.1: one-channel input")


def test_grid_exact_evidence():
    arrays = color(
        {
            "natural": {"clean": 1, "grid": 1},
            "natural-b": {"clean": 1, "grid": 0},
            "linf-0.1": {"clean": 1, "grid": 0},
        }
    )
    v = view([NAT, NAT_B, R1], arrays, N)
    assert run(check_grid, v) == Verdict(
        HOLDS,
        f"natural: grid accuracy drop = 0; linf-0.1: Δ grid accuracy drop = {point(1)}",
        CI,
        {"linf-0.1": delta(1.0), "natural": {"model": "natural", "value": 0.0}},
    )


def test_deltas_and_rho_on_random_results_match_a_float64_reference():
    """Non-constant per-image results: each interval is the paired bootstrap of the statistic
    under the view's resamples (robust and natural on the same resample), computed here from
    the formulas."""
    from robustlens.analysis.bootstrap import interval, spearman_rows, weighted_mean
    from tests.tolerances import close

    n = 60
    rng = np.random.default_rng(11)
    flags_of = {name: rng.random((3, n)) < p for name, p in (("natural", 0.4), ("linf-0.1", 0.6))}
    arrays = {
        ("color", name, key): f[i]
        for name, f in flags_of.items()
        for i, key in enumerate(("clean", "grid", "pixel_average"))
    }
    v = view([NAT, R1], arrays, n)
    w = v.weights(n)
    drop = {name: f[0].astype(float) - f[1] for name, f in flags_of.items()}
    boot = {
        name: weighted_mean(f[0].astype(float), w) - weighted_mean(f[1].astype(float), w)
        for name, f in flags_of.items()
    }
    ref = interval(
        drop["linf-0.1"].mean() - drop["natural"].mean(), boot["linf-0.1"] - boot["natural"]
    )
    got = run(check_grid, v).numbers
    tol = close(np.float64, n)
    assert got["linf-0.1"]["delta"] == pytest.approx(ref.estimate, abs=tol["atol"])
    assert (got["linf-0.1"]["low"], got["linf-0.1"]["high"]) == pytest.approx(
        (ref.low, ref.high), abs=tol["atol"]
    )
    assert got["natural"]["value"] == pytest.approx(drop["natural"].mean(), abs=tol["atol"])
    assert ref.low < ref.high  # a real interval, not a point

    models = [R1, R2, R3]
    eps = np.array([0.1, 0.2, 0.3])
    p_after = {"linf-0.1": 0.3, "linf-0.2": 0.5, "linf-0.3": 0.7}
    latent_arrays, deltas = {}, []
    for m in models:
        before, after = rng.random(n) < 0.3, rng.random(n) < p_after[m.name]
        robust_before, robust_after = rng.random(n) < 0.8, rng.random(n) < 0.2
        for key, value in (
            ("natural/original", before),
            ("natural/retrained", after),
            ("robust/original", robust_before),
            ("robust/retrained", robust_after),
        ):
            latent_arrays[("latent", m.name, key)] = value
        deltas.append(
            weighted_mean(after.astype(float), w) - weighted_mean(before.astype(float), w)
        )
        latent_arrays[("latent", m.name, "full")] = np.array([after.mean() - before.mean()])
    v = view(models, latent_arrays, n)
    full = np.array([latent_arrays[("latent", m.name, "full")][0] for m in models])
    rho = interval(
        spearman_rows(eps, full[None, :])[0], spearman_rows(eps, np.stack(deltas, axis=1))
    )
    got = run(check_latent_grows, v).numbers["natural"]["linf"]
    assert (got["rho"], got["low"], got["high"]) == pytest.approx((rho.estimate, rho.low, rho.high))
    assert rho.low < rho.high
