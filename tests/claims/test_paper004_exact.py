"""Paper 004's claims on tiny results worked by hand: every decision boundary on both sides,
the rows each claim reads, and the exact evidence and numbers it reports."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from robustlens.analysis.adistance import proxy_a_distance, resampled_errors
from robustlens.analysis.bootstrap import interval, weighted_mean
from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, Verdict
from robustlens.claims.paper004 import (
    check_a_distance,
    check_boundary,
    check_linf_hurts_more,
    check_norm_ratio,
    check_robust_data,
    check_svcca,
)
from tests.claims.exact import CI, flags, model, point, run, view

NAT = model("natural")
LINF = model("linf-0.1", "pgd", "linf", 0.1)
L2 = model("l2-1.5", "pgd", "l2", 1.5)
LACKS = "the grid lacks the rows 'pgd linf 0.025 …' and 'pgd l2 0.25 …'"


def ref(values: np.ndarray, v) -> object:
    """Mean of per-image values with the view's paired bootstrap interval (float64)."""
    values = np.asarray(values, dtype=np.float64)
    return interval(float(np.nanmean(values)), weighted_mean(values, v.weights(values.size)))


# ----------------------------------------------------------------------------- §3.1 L∞ vs L2


def linf_grid(rows: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Per model (accuracy flags under the L∞ row, under the L2 row), next to decoy rows that
    share the rows' prefix but are other budgets: the claim must never read them."""
    arrays = {}
    for name, (linf, l2) in rows.items():
        arrays[("attack_grid", name, "robust/pgd linf 0.0255 5")] = ~linf  # ε 0.0255
        arrays[("attack_grid", name, "robust/pgd linf 0.025")] = linf
        arrays[("attack_grid", name, "robust/pgd l2 0.25 100 @imagenet")] = ~l2
        arrays[("attack_grid", name, "robust/pgd l2 0.25 100 @cifar10")] = l2
    return arrays


def test_linf_claim_reports_each_models_accuracies_and_names_the_missing_rows():
    none, every = flags(0, 0, 0, 0), flags(1, 1, 1, 1)
    v = view([NAT, LINF, L2], linf_grid({"natural": (none, every), "l2-1.5": (none, every)}), 4)
    row = f"acc L2 − acc L∞ = {point(1)} (L∞ 0.000, L2 1.000)"
    one = {"linf": 0.0, "l2": 1.0, "estimate": 1.0, "low": 1.0, "high": 1.0}
    assert run(check_linf_hurts_more, v) == Verdict(
        HOLDS,
        f"natural: {row}; linf-0.1: {LACKS}; l2-1.5: {row}",
        CI,
        {"natural": one, "l2-1.5": one},
    )


@pytest.mark.parametrize(
    ("linf", "l2", "status", "text"),
    [
        (flags(1, 1, 1, 1), flags(0, 0, 0, 0), FAILS, point(-1)),
        (flags(1, 0, 1, 0), flags(1, 0, 1, 0), INCONCLUSIVE, point(0)),
    ],
)
def test_linf_claim_fails_when_l2_hurts_more_and_gives_no_verdict_on_a_tie(linf, l2, status, text):
    v = view([NAT], linf_grid({"natural": (linf, l2)}), 4)
    verdict = run(check_linf_hurts_more, v)
    assert (verdict.status, verdict.evidence) == (
        status,
        f"natural: acc L2 − acc L∞ = {text} (L∞ {linf.mean():.3f}, L2 {l2.mean():.3f})",
    )


def test_linf_claim_without_rows_has_no_verdict():
    v = view([NAT], {("attack_grid", "natural", "clean"): flags(1, 1)}, 2)
    assert run(check_linf_hurts_more, v) == Verdict(INCONCLUSIVE, f"natural: {LACKS}", CI, {})
    for row in ("robust/pgd linf 0.025 5", "robust/pgd l2 0.25 5"):  # one of the two rows
        v = view([NAT], {("attack_grid", "natural", row): flags(1, 1)}, 2)
        assert run(check_linf_hurts_more, v) == Verdict(INCONCLUSIVE, f"natural: {LACKS}", CI, {})


# ----------------------------------------------------------------------------- §3.2 ratios

SQRT_D = 4.0
RATIO_CI = (
    "95 % paired bootstrap CI over images of C1(L∞) − C2(L2) (an extreme of the sample: a "
    "resample's value is never below the data's, so the interval starts at its estimate)"
)


def ratio_arrays(name: str, linf: list[float], l2: list[float]) -> dict:
    """‖δ‖₂/‖δ‖∞ / √d per image (√d = 4), NaN for perturbations that were not kept (one
    more image, kept by neither)."""
    return {
        ("norm_ratio", name, "ratio/pgd linf 0.03 20"): SQRT_D * np.array([*linf, np.nan]),
        ("norm_ratio", name, "ratio/pgd l2 0.25 20"): SQRT_D * np.array([*l2, np.nan]),
        ("norm_ratio", name, "sqrt_d"): np.array([SQRT_D]),
    }


def test_ratio_ranges_apart_hold_and_are_reported_exactly():
    """natural: L∞ in [0.5, 1], L2 in [0.125, 0.25] (every resample too): C1(L∞) − C2(L2) =
    0.25 on the data and on every resample that draws both extremes."""
    arrays = ratio_arrays("natural", [0.5, 1.0, 0.75, 0.75], [0.125, 0.25, 0.25, 0.125])
    arrays |= ratio_arrays("linf-0.1", [np.nan] * 4, [0.25] * 4)
    v = view([NAT, LINF], arrays, 5)
    verdict = run(check_norm_ratio, v)
    gap = verdict.numbers["natural"]["gap"]
    assert gap["estimate"] == gap["low"] == 0.25 and gap["high"] >= 0.25
    assert verdict == Verdict(
        HOLDS,
        "natural: C1/√d, C2/√d L∞ = 0.50, 1.00 (4 kept), L2 = 0.12, 0.25 (4 kept); "
        f"C1(L∞) − C2(L2) = 0.25 [0.25, {gap['high']:.2g}]; "
        "linf-0.1: no kept PGD perturbation in L∞ or in L2",
        RATIO_CI,
        {
            "natural": {
                "C1/√d": 0.5,
                "C2/√d": 1.0,
                "l2 C1/√d": 0.125,
                "l2 C2/√d": 0.25,
                "gap": gap,
                "kept": {"linf": 4, "l2": 4},
            }
        },
    )


@pytest.mark.parametrize(
    ("linf", "l2", "status"),
    [
        ([0.6] * 6, [0.59] * 6, HOLDS),  # apart by a hair
        ([0.6] * 6, [0.6] * 6, INCONCLUSIVE),  # touching: not above
        ([0.6] * 6, [0.61] * 6, FAILS),  # every resample overlaps
        ([0.6] * 5 + [0.1], [0.3] * 6, INCONCLUSIVE),  # one L∞ outlier makes the overlap
        ([0.2] * 6, [0.5] * 6, FAILS),  # L2 above L∞ throughout
    ],
)
def test_ratio_ranges_on_either_side(linf, l2, status):
    v = view([NAT], ratio_arrays("natural", linf, l2), len(linf) + 1, resamples=400)
    verdict = run(check_norm_ratio, v)
    assert verdict.status == status, verdict.evidence
    gap = verdict.numbers["natural"]["gap"]
    assert gap["estimate"] == pytest.approx(min(linf) - max(l2), abs=1e-12)
    assert gap["low"] <= gap["estimate"] <= gap["high"]


def test_ratio_claim_reads_the_lens_own_images_when_the_study_has_more():
    """The norm-ratio lens looks at its own ``n`` images (300 in the quickstart), fewer than
    the study's evaluation set (1 000): the verdict is the one on those images alone."""
    arrays = ratio_arrays("natural", [0.6] * 6, [0.2] * 6)
    alone = run(check_norm_ratio, view([NAT], arrays, 7, resamples=300))
    in_a_bigger_study = run(check_norm_ratio, view([NAT], arrays, 1000, resamples=300))
    assert in_a_bigger_study.status == alone.status == HOLDS
    assert in_a_bigger_study.numbers == alone.numbers


def test_ratio_resamples_are_the_extremes_of_the_drawn_images():
    """Each resample's C1(L∞) − C2(L2) is the min over the drawn kept L∞ ratios minus the max
    over the drawn kept L2 ratios (paired: the same images for both)."""
    from robustlens.claims.paper004 import _extreme

    rng = np.random.default_rng(3)
    linf, l2 = 0.5 + 0.4 * rng.random(40), 0.2 + 0.4 * rng.random(40)
    linf[::7] = np.nan
    v = view([NAT], ratio_arrays("natural", list(linf), list(l2)), 41)
    w = v.weights(41)
    r_inf, r_2 = np.r_[linf, np.nan], np.r_[l2, np.nan]
    for b in range(0, 200, 37):
        drawn = w[b] > 0
        want = np.nanmin(r_inf[drawn]) - np.nanmax(r_2[drawn])
        got = _extreme(r_inf, w[b : b + 1], True)[0] - _extreme(r_2, w[b : b + 1], False)[0]
        assert got == pytest.approx(want, abs=1e-12)
    verdict = run(check_norm_ratio, v)
    gap = verdict.numbers["natural"]["gap"]
    assert gap["estimate"] == pytest.approx(np.nanmin(linf) - np.nanmax(l2), abs=1e-12)
    assert gap["low"] <= gap["estimate"] <= gap["high"]


def test_ratio_claim_of_a_study_without_models_says_nothing():
    assert run(check_norm_ratio, view([], {}, 4)) == Verdict(INCONCLUSIVE, "", RATIO_CI, {})


# ----------------------------------------------------------------------------- §3.3 A-distance


SEPARABLE, SAME = "separable", "same"


def a_losses(name: str, l2: str | float, linf: str | float, n: int, seed: int = 0) -> dict:
    """Clean losses and, per attack, attacked ones: far above every clean loss (SEPARABLE: the
    classifier is always right, A = 2), equal to the clean ones (SAME: exactly one copy of
    each image is wrong, A = 0), or clean · exp(N(shift, 0.5)) for a number ``shift``."""
    rng = np.random.default_rng(seed)
    clean = rng.uniform(0.1, 1.0, n)
    arrays = {("loss_dist", name, "loss/clean"): clean}
    for key, how in (("pgd l2 0.5 10", l2), ("pgd linf 0.05 5", linf)):
        if how == SEPARABLE:
            attacked = clean + 10.0
        elif how == SAME:
            attacked = clean.copy()
        else:
            attacked = clean * np.exp(rng.normal(float(how), 0.5, n))
        arrays[("loss_dist", name, f"loss/{key}")] = attacked
    return arrays


A_CI = f"{CI}, domain classifier refitted on each resample (5-fold, paired)"


def a_ref(arrays: dict, name: str, key: str, v) -> object:
    """A-distance of one model and attack with the interval of the refitted classifier."""
    clean, attacked = arrays[("loss_dist", name, "loss/clean")], arrays[("loss_dist", name, key)]
    full = resampled_errors(clean, attacked, np.ones((1, clean.size)), seed=v.seed)[0]
    boot = resampled_errors(clean, attacked, v.weights(clean.size), seed=v.seed)
    return interval(2 * (1 - 2 * full), 2 * (1 - 2 * boot))


def test_a_distance_exact_evidence_for_a_model_at_chance():
    """Natural: separable, A = 2. Robust: L2 losses unchanged by the attack (A = 0), L∞
    separable: closer in L2 only, all the way in L2 → fails; every resample gives the same."""
    n = 20
    arrays = a_losses("natural", SEPARABLE, SEPARABLE, n)
    arrays |= a_losses("l2-1.5", SAME, SEPARABLE, n, seed=1)
    v = view([NAT, L2], arrays, n)
    assert run(check_a_distance, v) == Verdict(
        FAILS,
        "natural: A(l2) = 2.00, natural: A(linf) = 2.00; "
        f"l2-1.5: A(l2) = {point(0)}, natural − robust = {point(2)}; "
        f"l2-1.5: A(linf) = {point(2)}, natural − robust = {point(0)}; "
        f"l2-1.5: A(L∞) − A(L2) = {point(2)}",
        A_CI,
        {"l2-1.5": {"l2": 0.0, "linf": 2.0}},
    )


def test_a_distance_interval_across_zero_leaves_the_claim_open():
    """L2: a faint shift, A near 0 with an interval across 0 (neither all the way nor not);
    L∞: A well above 0 and below the natural model's: no verdict, not a failure."""
    n = 60
    arrays = a_losses("natural", SEPARABLE, SEPARABLE, n)
    arrays |= a_losses("l2-1.5", 0.05, 1.5, n, seed=3)
    v = view([NAT, L2], arrays, n)
    verdict = run(check_a_distance, v)
    gap = a_ref(arrays, "l2-1.5", "loss/pgd l2 0.5 10", v)
    assert gap.low < 0 < gap.high
    assert gap.low <= gap.estimate <= gap.high
    assert verdict.status == INCONCLUSIVE, verdict.evidence
    assert f"l2-1.5: A(l2) = {gap.text()}, natural − robust = " in verdict.evidence


def test_a_distance_holds_when_robust_is_closer_but_not_at_chance_and_least_for_linf():
    n = 200
    arrays = a_losses("natural", SEPARABLE, SEPARABLE, n)
    arrays |= a_losses("l2-1.5", 0.6, 1.5, n, seed=4)
    v = view([NAT, L2], arrays, n)
    verdict = run(check_a_distance, v)
    assert verdict.status == HOLDS, verdict.evidence
    for norm, key in (("l2", "loss/pgd l2 0.5 10"), ("linf", "loss/pgd linf 0.05 5")):
        ref_iv = a_ref(arrays, "l2-1.5", key, v)
        assert verdict.numbers["l2-1.5"][norm] == ref_iv.estimate
        assert f"A({norm}) = {ref_iv.text()}" in verdict.evidence


def test_a_distance_fails_when_robust_models_are_further_from_clean():
    n = 100
    arrays = a_losses("natural", 0.6, 0.6, n)
    arrays |= a_losses("l2-1.5", SEPARABLE, SEPARABLE, n, seed=5)
    verdict = run(check_a_distance, view([NAT, L2], arrays, n))
    assert verdict.status == FAILS, verdict.evidence


def test_a_distance_interval_is_wider_than_with_the_classifier_held_fixed():
    """The lens's out-of-fold errors resampled with the classifiers held fixed leave out how
    the classifier would change with the data; refitted on each resample, the interval is
    wider (here on a weakly separable sample of 60 images)."""
    n = 60
    arrays = a_losses("natural", SEPARABLE, SEPARABLE, n)
    arrays |= a_losses("l2-1.5", 0.3, 1.5, n, seed=6)
    v = view([NAT, L2], arrays, n)
    clean = arrays[("loss_dist", "l2-1.5", "loss/clean")]
    attacked = arrays[("loss_dist", "l2-1.5", "loss/pgd l2 0.5 10")]
    fixed = proxy_a_distance(clean, attacked, folds=5, seed=v.seed, paired=True)
    per_image = 0.5 * (fixed.errors_a.astype(float) + fixed.errors_b)
    held = interval(
        2 * (1 - 2 * per_image.mean()), 2 * (1 - 2 * weighted_mean(per_image, v.weights(n)))
    )
    refit = a_ref(arrays, "l2-1.5", "loss/pgd l2 0.5 10", v)
    assert refit.estimate == pytest.approx(held.estimate, abs=1e-12)  # the same classifier
    assert refit.high - refit.low > held.high - held.low
    verdict = run(check_a_distance, v)
    assert f"l2-1.5: A(l2) = {refit.text()}" in verdict.evidence


@pytest.mark.parametrize(
    ("models", "arrays", "evidence"),
    [
        ([NAT], {}, "needs a natural and at least one robust model"),
        ([L2], {}, "needs a natural and at least one robust model"),
        ([NAT, L2], {}, "loss_dist lacks a PGD L2 or PGD L∞ setting"),
    ],
)
def test_a_distance_without_the_models_or_settings_it_needs(models, arrays, evidence):
    assert run(check_a_distance, view(models, arrays, 4)) == Verdict(INCONCLUSIVE, evidence)


def test_a_distance_names_a_robust_model_without_results_and_gives_no_verdict():
    n = 10
    arrays = a_losses("natural", SEPARABLE, SEPARABLE, n)
    arrays |= a_losses("l2-1.5", SAME, SEPARABLE, n)
    v = view([NAT, LINF, L2], arrays, n)
    verdict = run(check_a_distance, v)
    assert verdict.status == FAILS  # l2-1.5 is at chance in L2
    assert verdict.evidence.startswith(
        "natural: A(l2) = 2.00, natural: A(linf) = 2.00; "
        "linf-0.1: loss_dist lacks a PGD L2 or PGD L∞ setting; l2-1.5: A(l2) = "
    )


# ----------------------------------------------------------------------------- §4.1 SVCCA


def svcca(name: str, values: dict[str, tuple[float, np.ndarray | None]]) -> dict:
    arrays = {}
    for key, (value, boot) in values.items():
        arrays[("similarity", name, f"svcca/{key}")] = np.array([value])
        if boot is not None:
            arrays[("similarity", name, f"svcca_boot/{key}")] = boot
    return arrays


def shifted(value: float, by: np.ndarray) -> tuple[float, np.ndarray]:
    return value, value + by


SVCCA_CI = "95 % paired bootstrap CI over images (100 resamples)"


def test_svcca_exact_evidence_takes_the_lowest_attack_of_each_norm():
    noise = np.linspace(-0.01, 0.01, 100)
    nat = {
        "pgd l2 0.25 20": shifted(0.9, noise),
        "pgd l2 0.5 20": shifted(0.875, noise),
        "pgd linf 0.025 20": shifted(0.8125, noise),
        "pgd linf 0.05 20": shifted(0.75, noise),  # the lowest is not the first by name
    }
    rob = {k: shifted(v + 0.0625, noise) for k, (v, _) in nat.items()}
    # linf-0.1 (listed first) has no SVCCA results: it is passed over, not the end of the list
    v = view([LINF, NAT, L2], svcca("natural", nat) | svcca("l2-1.5", rob), 100)
    verdict = run(check_svcca, v)
    assert verdict.status == HOLDS, verdict.evidence
    assert verdict.interval == SVCCA_CI
    assert verdict.evidence == (
        "natural: lowest L∞ 0.750 vs lowest L2 0.875; "
        "l2-1.5: lowest L∞ 0.812 vs lowest L2 0.938; "
        + "; ".join(f"l2-1.5 − natural ({k}): +0.062" for k in nat)
    )
    assert verdict.numbers == {
        "natural": {k: v for k, (v, _) in nat.items()},
        "l2-1.5": {k: v for k, (v, _) in rob.items()},
    }


def test_svcca_without_bootstrap_samples_has_no_verdict():
    noise = np.linspace(-0.01, 0.01, 100)
    nat = {"pgd l2 0.25 20": (0.9, None), "pgd linf 0.025 20": shifted(0.75, noise)}
    rob = {"pgd l2 0.25 20": shifted(0.95, noise), "pgd linf 0.025 20": (0.8, None)}
    v = view([NAT, L2], svcca("natural", nat) | svcca("l2-1.5", rob), 100)
    assert run(check_svcca, v).status == INCONCLUSIVE
    # bootstrap samples of different lengths cannot be paired either
    nat = {
        k: shifted(v, noise[:50]) for k, v in (("pgd l2 0.25 20", 0.9), ("pgd linf 0.025 20", 0.7))
    }
    rob = {k: shifted(v, noise) for k, v in (("pgd l2 0.25 20", 0.95), ("pgd linf 0.025 20", 0.8))}
    v = view([NAT, L2], svcca("natural", nat) | svcca("l2-1.5", rob), 100)
    assert run(check_svcca, v).status == INCONCLUSIVE


def test_svcca_with_one_norm_per_model_cannot_hold_or_fail():
    """No model has both L2 and L∞ results: the "lowest under L∞" part has nothing to say,
    and the claim stays open even though the robust model's SVCCA is lower."""
    noise = np.linspace(-0.01, 0.01, 100)
    nat = svcca("natural", {"pgd linf 0.025 20": shifted(0.9, noise)})
    rob = svcca("l2-1.5", {"pgd linf 0.025 20": shifted(0.5, noise)})
    verdict = run(check_svcca, view([NAT, L2], nat | rob, 100))
    assert verdict == Verdict(
        INCONCLUSIVE,
        "l2-1.5 − natural (pgd linf 0.025 20): -0.400",
        SVCCA_CI,
        {"natural": {"pgd linf 0.025 20": 0.9}, "l2-1.5": {"pgd linf 0.025 20": 0.5}},
    )


def test_svcca_needs_a_natural_and_a_robust_model():
    assert run(check_svcca, view([NAT], {}, 4)) == Verdict(
        INCONCLUSIVE, "needs a natural and at least one robust model"
    )
    assert run(check_svcca, view([L2], {}, 4)).evidence == (
        "needs a natural and at least one robust model"
    )


# ----------------------------------------------------------------------------- §5 boundary


def test_boundary_exact_evidence_with_an_l2_and_an_linf_model():
    n = 4
    arrays = {
        ("boundary", "natural", "distance/l2"): np.array([0.5, 0.5, 0.5, np.inf]),
        ("boundary", "linf-0.1", "distance/l2"): np.array([1.0, 1.0, np.nan, 1.0]),
        ("boundary", "l2-1.5", "distance/l2"): np.full(n, 2.0),
    }
    v = view([NAT, LINF, L2], arrays, n)
    assert run(check_boundary, v) == Verdict(
        HOLDS,
        f"natural: mean L2 distance 0.500; l2-1.5: increase {point(1.5)} on 3 images; "
        f"linf-0.1: increase {point(0.5)} on 2 images; l2-1.5 − linf-0.1: {point(1)} on 3 "
        "images; DeepFool did not cross for: natural 1, l2-1.5 0, linf-0.1 1 of 4 images",
        CI,
        {
            "l2-1.5": {"estimate": 1.5, "low": 1.5, "high": 1.5, "images": 3},
            "linf-0.1": {"estimate": 0.5, "low": 0.5, "high": 0.5, "images": 2},
            "l2-1.5 − linf-0.1": {"estimate": 1.0, "low": 1.0, "high": 1.0, "images": 3},
            "failed": {"natural": 1, "l2-1.5": 0, "linf-0.1": 1},
        },
    )


def test_boundary_compares_models_on_the_images_where_both_crossed():
    """DeepFool fails on the natural model's two far images and on the same images for the L2
    model: per model, the natural mean (1.75) would exceed the L2 model's (1.0) and the claim
    would fail; on the two images where both crossed the L2 model is 0.5 further away."""
    arrays = {
        ("boundary", "natural", "distance/l2"): np.array([0.5, 0.5, 3.0, 3.0]),
        ("boundary", "l2-1.5", "distance/l2"): np.array([1.0, 1.0, np.nan, np.inf]),
        ("boundary", "linf-0.1", "distance/l2"): np.array([0.6, 0.6, 3.0, 3.0]),
    }
    verdict = run(check_boundary, view([NAT, LINF, L2], arrays, 4))
    assert verdict.numbers["l2-1.5"] == {"estimate": 0.5, "low": 0.5, "high": 0.5, "images": 2}
    assert verdict.numbers["l2-1.5 − linf-0.1"]["estimate"] == pytest.approx(0.4)
    assert verdict.numbers["failed"] == {"natural": 0, "l2-1.5": 2, "linf-0.1": 0}
    assert verdict.status == HOLDS


def test_boundary_without_common_images_is_inconclusive():
    arrays = {
        ("boundary", "natural", "distance/l2"): np.array([0.5, 0.5, np.nan, np.nan]),
        ("boundary", "l2-1.5", "distance/l2"): np.array([np.nan, np.nan, 1.0, 1.0]),
    }
    verdict = run(check_boundary, view([NAT, L2], arrays, 4))
    assert verdict.status == INCONCLUSIVE
    assert "l2-1.5: increase nan [nan, nan] on 0 images" in verdict.evidence


def test_boundary_on_a_natural_model_deepfool_never_crossed_says_so_without_a_warning():
    arrays = {
        ("boundary", "natural", "distance/l2"): np.array([np.nan, np.inf, np.nan, np.nan]),
        ("boundary", "l2-1.5", "distance/l2"): np.full(4, 1.0),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the mean of no distance used to warn and print nan
        verdict = run(check_boundary, view([NAT, L2], arrays, 4))
    assert verdict.status == INCONCLUSIVE
    assert verdict.evidence.startswith("natural: DeepFool reached the boundary of no image; ")
    assert verdict.numbers["failed"] == {"natural": 4, "l2-1.5": 0}


def test_boundary_without_linf_models_can_only_fail():
    n = 4
    up = {
        ("boundary", "natural", "distance/l2"): np.full(n, 0.5),
        ("boundary", "l2-1.5", "distance/l2"): np.full(n, 1.0),
    }
    v = view([NAT, L2], up, n)
    assert run(check_boundary, v) == Verdict(
        INCONCLUSIVE,
        f"natural: mean L2 distance 0.500; l2-1.5: increase {point(0.5)} on 4 images; "
        "no L∞-trained model to compare; DeepFool did not cross for: natural 0, l2-1.5 0 of 4 "
        "images",
        CI,
        {
            "l2-1.5": {"estimate": 0.5, "low": 0.5, "high": 0.5, "images": 4},
            "failed": {"natural": 0, "l2-1.5": 0},
        },
    )
    down = {**up, ("boundary", "l2-1.5", "distance/l2"): np.full(n, 0.25)}
    assert run(check_boundary, view([NAT, L2], down, n)).status == FAILS


@pytest.mark.parametrize(
    ("models", "evidence"),
    [
        ([L2], "needs a natural model"),
        ([NAT, LINF], "needs at least one L2-trained model"),
    ],
)
def test_boundary_without_the_models_it_needs(models, evidence):
    assert run(check_boundary, view(models, {}, 4)) == Verdict(INCONCLUSIVE, evidence)


def test_boundary_linf_increase_equal_to_l2_is_open():
    n = 4
    arrays = {
        ("boundary", "natural", "distance/l2"): np.full(n, 0.5),
        ("boundary", "linf-0.1", "distance/l2"): np.full(n, 2.0),
        ("boundary", "l2-1.5", "distance/l2"): np.full(n, 2.0),
    }
    assert run(check_boundary, view([NAT, LINF, L2], arrays, n)).status == INCONCLUSIVE


# ----------------------------------------------------------------------------- §3.1 robust data

DATA = model("robust-data", train_on={"set": "robustified", "source": "l2-1.5"})
NOT_ROBUST = " (not robust: accuracy under attack < 0.5 × clean; CIFAR units)"


def test_robust_data_exact_evidence_and_numbers():
    data_b = model("data-b", train_on={"set": "robustified", "source": "linf-0.1"})
    arrays = {
        ("attack_grid", "linf-0.1", "robust/pgd linf 0.025 5"): flags(1, 1, 1, 0),
        ("attack_grid", "l2-1.5", "robust/pgd linf 0.025 5"): flags(1, 1, 0, 0),
    }
    for name in ("robust-data", "data-b"):
        arrays[("attack_grid", name, "clean")] = flags(1, 1, 1, 1)
        arrays[("attack_grid", name, "robust/pgd linf 0.025 5")] = flags(0, 0, 0, 0)
        arrays[("attack_grid", name, "robust/fgsm linf 0.25")] = flags(0, 0, 0, 0)
    v = view([NAT, LINF, L2, DATA, data_b], arrays, 4)
    zero = {"estimate": 0.0, "low": 0.0, "high": 0.0}
    drop = {"estimate": 1.0, "low": 1.0, "high": 1.0}
    per_model = (
        f"(clean accuracy 1.000): pgd linf 0.025: accuracy 0.000, {point(0)} of clean (drop "
        f"{point(1)}); adversarially trained: linf-0.1 0.750, l2-1.5 0.500; fgsm linf 0.25: "
        f"accuracy 0.000, {point(0)} of clean (drop {point(1)})"
    )
    assert run(check_robust_data, v) == Verdict(
        HOLDS,
        f"robust-data {per_model}; data-b {per_model}" + NOT_ROBUST,
        CI,
        {
            f"{name}/{row}": {"clean": 1.0, "attacked": 0.0, "retained": zero, "drop": drop}
            for name in ("robust-data", "data-b")
            for row in ("pgd linf 0.025", "fgsm linf 0.25")
        },
    )


@pytest.mark.parametrize(
    ("attacked", "status"),
    [
        (flags(1, 1, 0, 0), INCONCLUSIVE),  # exactly half kept
        (flags(1, 1, 1, 0), FAILS),
        (flags(1, 0, 0, 0), HOLDS),
    ],
)
def test_robust_data_on_either_side_of_half_kept(attacked, status):
    arrays = {
        ("attack_grid", "robust-data", "clean"): np.ones(400, dtype=bool),
        ("attack_grid", "robust-data", "robust/pgd linf 0.025 5"): np.tile(attacked, 100),
    }
    verdict = run(check_robust_data, view([DATA], arrays, 400))
    assert verdict.status == status, verdict.evidence
    retained = verdict.numbers["robust-data/pgd linf 0.025"]["retained"]
    assert retained["estimate"] == attacked.mean()


@pytest.mark.parametrize(
    ("arrays", "part"),
    [
        ({}, "robust-data: no clean accuracy in the attack grid"),
        (
            {("attack_grid", "robust-data", "clean"): flags(1, 1)},
            "robust-data: the attack grid lacks the row 'pgd linf 0.025 …'",
        ),
        (
            {
                ("attack_grid", "robust-data", "clean"): flags(0, 0),
                ("attack_grid", "robust-data", "robust/pgd linf 0.025 5"): flags(0, 0),
            },
            "robust-data: clean accuracy 0, nothing to lose under attack",
        ),
    ],
)
def test_robust_data_model_without_usable_results(arrays, part):
    v = view([NAT, DATA], arrays, 2)
    assert run(check_robust_data, v) == Verdict(INCONCLUSIVE, part + NOT_ROBUST, CI, {})


def test_robust_data_needs_a_model_trained_on_a_robustified_set():
    other = model("zero-data", train_on={"set": "zero", "source": "l2-1.5"})
    assert run(check_robust_data, view([NAT, other], {}, 2)) == Verdict(
        INCONCLUSIVE,
        "needs a model trained on a robustified set (train_on set = 'robustified') in the "
        "attack grid",
    )


@pytest.mark.parametrize(
    "first",
    [
        {},  # no clean accuracy
        {("attack_grid", "data-a", "clean"): flags(1, 1, 1, 1)},  # no L∞ row
        {
            ("attack_grid", "data-a", "clean"): flags(0, 0, 0, 0),  # nothing to lose
            ("attack_grid", "data-a", "robust/pgd linf 0.025 5"): flags(0, 0, 0, 0),
        },
    ],
)
def test_robust_data_reads_every_trained_model_after_one_without_results(first):
    data_a = model("data-a", train_on={"set": "robustified", "source": "l2-1.5"})
    arrays = {
        **first,
        ("attack_grid", "robust-data", "clean"): flags(1, 1, 1, 1),
        ("attack_grid", "robust-data", "robust/pgd linf 0.025 5"): flags(1, 1, 1, 1),
    }
    verdict = run(check_robust_data, view([NAT, data_a, DATA], arrays, 4))
    assert verdict.status == FAILS  # the second model keeps all of its accuracy
    assert list(verdict.numbers) == ["robust-data/pgd linf 0.025"]


def test_robust_data_resamples_without_clean_correct_images_raise_no_warnings():
    """Resamples that draw only clean-wrong images divide by a zero clean accuracy (1/0 when
    they hold the second image only, 0/0 the third): the ratio is infinite or NaN there,
    silently, and the interval comes from the others."""
    import warnings

    arrays = {
        ("attack_grid", "robust-data", "clean"): flags(1, 0, 0),
        ("attack_grid", "robust-data", "robust/pgd linf 0.025 5"): flags(0, 1, 0),
    }
    v = view([DATA], arrays, 3, resamples=400)
    drawn = v.weights(3) > 0
    assert (drawn == [False, True, False]).all(axis=1).any()
    assert (drawn == [False, False, True]).all(axis=1).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = run(check_robust_data, v)
    assert verdict.numbers["robust-data/pgd linf 0.025"]["retained"]["estimate"] == 1.0


@pytest.mark.parametrize(
    ("kept", "end", "bound"),
    [
        # one image of six kept: ≥ 4 of six draws of it (ratio > ½) are rarer than 2.5 %, 3
        # are not, so the interval reaches ½ exactly from below
        ([1, 0, 0, 0, 0, 0], "high", 0.5),
        ([1, 1, 1, 1, 1, 0], "low", 0.5),  # and from above
    ],
)
def test_robust_data_interval_ending_exactly_at_half_is_open(kept, end, bound):
    arrays = {
        ("attack_grid", "robust-data", "clean"): np.ones(6, dtype=bool),
        ("attack_grid", "robust-data", "robust/pgd linf 0.025 5"): np.array(kept, dtype=bool),
    }
    verdict = run(check_robust_data, view([DATA], arrays, 6, resamples=400))
    assert verdict.numbers["robust-data/pgd linf 0.025"]["retained"][end] == bound
    assert verdict.status == INCONCLUSIVE


def test_a_distance_interval_starting_exactly_at_zero_is_not_above_it(monkeypatch):
    """L2: A = 1/6 whose resamples reach 0 in a third of the draws: the interval starts at 0
    itself, which is not above 0 ("not all the way" open), and the claim is inconclusive."""
    import robustlens.claims.paper004 as p004

    boot = np.tile([0.0, 1 / 6, 1 / 3], 100)
    given = {
        ("natural", "l2"): (2.0, np.full(300, 2.0)),
        ("natural", "linf"): (2.0, np.full(300, 2.0)),
        ("l2-1.5", "l2"): (1 / 6, boot),
        ("l2-1.5", "linf"): (1.0, np.full(300, 1.0)),
    }
    monkeypatch.setattr(p004, "_a_distance", lambda v, m, norm: given[(m, norm)])
    verdict = run(check_a_distance, view([NAT, L2], {}, 12))
    assert "l2-1.5: A(l2) = 0.167 [0, " in verdict.evidence
    assert verdict.status == INCONCLUSIVE, verdict.evidence
