"""Paper 002's claims (probes, saliency, late fusion) on tiny results worked by hand: exact
evidence and numbers, both sides of the margins and thresholds, and the messages of claims
that cannot be checked."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, Verdict
from robustlens.claims.paper002_ensemble import check_fusion
from robustlens.claims.paper002_probes import check_blur_gap, check_median, check_texture
from robustlens.claims.paper002_saliency import check_guided_sanity, check_high_frequency
from tests.claims.exact import CI, const, model, point, run, view

N = 4
NAT = model("natural")
NAT_B = model("natural-b")
R1 = model("linf-0.1", "pgd", "linf", 0.1)
R2 = model("l2-1", "pgd", "l2", 1.0)
PAIR = "needs a natural and at least one robust model"


def same(flag: int, n: int = N) -> np.ndarray:
    return np.full(n, bool(flag))


def interval_of(x: float) -> dict:
    return {"estimate": x, "low": x, "high": x}


def probes(per_model: dict[str, dict[tuple[str, float], int]]) -> dict:
    return {
        ("probes", name, f"correct/{probe}/{level:g}"): same(flag)
        for name, levels in per_model.items()
        for (probe, level), flag in levels.items()
    }


# ----------------------------------------------------------------------------- median filter


def test_median_exact_evidence_at_the_most_filtering():
    arrays = probes(
        {
            "natural": {("median_filter", 5): 0, ("median_filter", 0): 1, ("median_filter", 1): 1},
            "natural-b": {("median_filter", 0): 1, ("median_filter", 5): 1},
            "linf-0.1": {("median_filter", 0): 1, ("median_filter", 1): 0, ("median_filter", 5): 1},
        }
    )
    v = view([NAT, NAT_B, R1], arrays, N)
    assert run(check_median, v) == Verdict(
        HOLDS,
        "median filter applied 5 times: loses less: linf-0.1: drop 0.000 vs natural 1.000, "
        f"difference {point(1)} | outperforms the natural model: linf-0.1: accuracy − "
        f"natural's = {point(1)}",
        CI,
        {
            "loses_less": {"linf-0.1": interval_of(1.0)},
            "outperforms": {"linf-0.1": interval_of(1.0)},
        },
    )


def test_median_clean_accuracy_from_the_blur_probe_and_missing_results():
    arrays = probes(
        {
            "natural": {("median_filter", 3): 1, ("gaussian_blur", 0): 1},
            "linf-0.1": {("median_filter", 3): 0, ("gaussian_blur", 0): 1},
        }
    )
    v = view([NAT, R1], arrays, N)
    assert run(check_median, v) == Verdict(
        FAILS,
        "median filter applied 3 times: loses less: linf-0.1: drop 1.000 vs natural 0.000, "
        f"difference {point(-1)} | outperforms the natural model: linf-0.1: accuracy − "
        f"natural's = {point(-1)}",
        CI,
        {
            "loses_less": {"linf-0.1": interval_of(-1.0)},
            "outperforms": {"linf-0.1": interval_of(-1.0)},
        },
    )
    del arrays[("probes", "linf-0.1", "correct/median_filter/3")]
    assert run(check_median, view([NAT, R1], arrays, N)) == Verdict(
        INCONCLUSIVE, "median filter applied 3 times: median_filter: results missing", CI, {}
    )
    assert run(check_median, view([NAT, R1], {}, N)) == Verdict(
        INCONCLUSIVE, "median_filter: results missing", CI, {}
    )


def graded(acc: float, n: int = 100) -> np.ndarray:
    """Right on the first ``acc`` · n images."""
    return np.arange(n) < round(acc * n)


@pytest.mark.parametrize(
    ("robust_5", "status"),
    [
        (0.70, HOLDS),  # loses 0.1 (natural 0.4) and ends above the natural model's 0.5
        (0.40, FAILS),  # loses as much as the natural model (0.4) and ends below it
        (0.50, INCONCLUSIVE),  # loses less, ends level with the natural model
        (0.10, FAILS),  # loses more
    ],
)
def test_median_needs_the_robust_model_to_end_ahead(robust_5, status):
    """Natural 0.9 → 0.5 after five median filters; robust 0.8 → ``robust_5``. The old check
    (loses less) held at 0.5 already; the paper says the robust model outperforms."""
    n = 100
    arrays = {
        ("probes", "natural", "correct/median_filter/0"): graded(0.9),
        ("probes", "natural", "correct/median_filter/5"): graded(0.5),
        ("probes", "linf-0.1", "correct/median_filter/0"): graded(0.8),
        ("probes", "linf-0.1", "correct/median_filter/5"): graded(robust_5),
    }
    verdict = run(check_median, view([NAT, R1], arrays, n))
    assert verdict.status == status, verdict.evidence
    ahead = verdict.numbers["outperforms"]["linf-0.1"]
    assert ahead["estimate"] == pytest.approx(robust_5 - 0.5, abs=1e-12)
    assert ahead["low"] <= ahead["estimate"] <= ahead["high"]


@pytest.mark.parametrize("check", [check_median, check_texture, check_blur_gap])
@pytest.mark.parametrize("models", [[NAT], [R1], []])
def test_probe_claims_need_a_natural_and_a_robust_model(check, models):
    assert run(check, view(models, {}, N)) == Verdict(INCONCLUSIVE, PAIR)


# ----------------------------------------------------------------------------- texture


def test_texture_exact_evidence_for_each_probe_and_stylised_images():
    arrays = probes(
        {
            "natural": {
                ("median_filter", 0): 1,
                ("amplitude_swap", 1): 0,
                ("edge_map", 1): 0,
                ("stylized", 1): 0,
            },
            "linf-0.1": {
                ("median_filter", 0): 1,
                ("amplitude_swap", 1): 1,
                ("edge_map", 1): 0,
                ("stylized", 1): 1,
            },
        }
    )
    v = view([NAT, R1], arrays, N)
    assert run(check_texture, v) == Verdict(
        INCONCLUSIVE,
        f"amplitude swap: linf-0.1: drop 0.000 vs natural 1.000, difference {point(1)} | "
        f"edge map: linf-0.1: drop 1.000 vs natural 1.000, difference {point(0)} | "
        f"stylised images: linf-0.1: accuracy − natural's = {point(1)}",
        CI,
        {
            "amplitude_swap": {"linf-0.1": interval_of(1.0)},
            "edge_map": {"linf-0.1": interval_of(0.0)},
        },
    )
    arrays[("probes", "linf-0.1", "correct/edge_map/1")] = same(1)
    assert run(check_texture, view([NAT, R1], arrays, N)).status == HOLDS
    arrays[("probes", "linf-0.1", "correct/stylized/1")] = same(0)
    assert run(check_texture, view([NAT, R1], arrays, N)).status == INCONCLUSIVE
    arrays[("probes", "natural", "correct/stylized/1")] = same(1)
    assert run(check_texture, view([NAT, R1], arrays, N)).status == FAILS


def test_texture_with_one_probe_a_robust_model_without_stylised_images_or_none():
    arrays = probes(
        {
            "natural": {("median_filter", 0): 1, ("edge_map", 1): 0, ("stylized", 1): 0},
            "linf-0.1": {("median_filter", 0): 1, ("edge_map", 1): 1},
        }
    )
    assert run(check_texture, view([NAT, R1], arrays, N)) == Verdict(
        INCONCLUSIVE,
        f"edge map: linf-0.1: drop 0.000 vs natural 1.000, difference {point(1)} | "
        "stylised images: ",
        CI,
        {"edge_map": {"linf-0.1": interval_of(1.0)}},
    )
    del arrays[("probes", "linf-0.1", "correct/median_filter/0")]
    del arrays[("probes", "natural", "correct/stylized/1")]
    assert run(check_texture, view([NAT, R1], arrays, N)) == Verdict(
        INCONCLUSIVE, "edge map: edge_map: results missing", CI, {"edge_map": {}}
    )
    assert run(check_texture, view([NAT, R1], {}, N)) == Verdict(
        INCONCLUSIVE, "the probes lens ran no texture probe"
    )


# ----------------------------------------------------------------------------- blur gap

SIGMAS = [0.5 * (k + 1) for k in range(20)]


def blur(changes: list[int]) -> dict:
    """Natural always right; the robust model right on clean images and wrong, on the images
    marked by ``changes[i]``, under the first ``changes[i]`` of 20 σ: the gap changes by
    changes[i]/20 on image i (0.05 per σ)."""
    n = len(changes)
    arrays = {
        ("probes", "natural", "correct/gaussian_blur/0"): same(1, n),
        ("probes", "linf-0.1", "correct/gaussian_blur/0"): same(1, n),
    }
    for k, s in enumerate(SIGMAS):
        arrays[("probes", "natural", f"correct/gaussian_blur/{s:g}")] = same(1, n)
        wrong = np.array([k < abs(c) for c in changes])
        flip = np.array([c < 0 for c in changes])
        # a negative change: the natural model is the one that turns wrong
        arrays[("probes", "linf-0.1", f"correct/gaussian_blur/{s:g}")] = ~(wrong & ~flip)
        arrays[("probes", "natural", f"correct/gaussian_blur/{s:g}")] = ~(wrong & flip)
    return arrays


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ([1, 1], HOLDS),  # +0.05 exactly: within the margin
        ([-1, -1], HOLDS),  # −0.05 exactly
        ([0, 0], HOLDS),
        ([2, 2], FAILS),
        ([-2, -2], FAILS),
        ([1, 2], INCONCLUSIVE),  # interval [0.05, 0.1]: neither inside nor outside
        ([-1, -2], INCONCLUSIVE),  # [−0.1, −0.05]
    ],
)
def test_blur_gap_on_either_side_of_the_margin(changes, status):
    v = view([NAT, R1], blur(changes), len(changes))
    verdict = run(check_blur_gap, v)
    assert verdict.status == status, verdict.evidence
    low, high = (verdict.numbers["linf-0.1"][k] for k in ("low", "high"))
    assert (low, high) == (min(changes) / 20, max(changes) / 20)


def test_blur_gap_exact_evidence():
    arrays = probes(
        {
            "natural": {("gaussian_blur", 0): 1, ("gaussian_blur", 1): 1, ("gaussian_blur", 2): 0},
            "natural-b": {("gaussian_blur", 0): 0, ("gaussian_blur", 1): 0},
            "linf-0.1": {("gaussian_blur", 0): 0, ("gaussian_blur", 1): 0, ("gaussian_blur", 2): 0},
            "l2-1": {("gaussian_blur", 0): 1, ("gaussian_blur", 1): 1},
        }
    )
    v = view([NAT, NAT_B, R1, R2], arrays, N)
    # linf-0.1: clean gap 1, gaps 1 (σ 1) and 0 (σ 2): mean change −0.5; l2-1: no change
    assert run(check_blur_gap, v) == Verdict(
        FAILS,
        f"margin ±0.05; linf-0.1: clean gap +1.000, mean change over σ ≤ 2 {point(-0.5)}; "
        f"l2-1: clean gap +0.000, mean change over σ ≤ 1 {point(0)}",
        CI,
        {"linf-0.1": interval_of(-0.5), "l2-1": interval_of(0.0)},
    )


def test_blur_gap_needs_a_clean_and_a_blurred_level():
    only_clean = probes(
        {"natural": {("gaussian_blur", 0): 1}, "linf-0.1": {("gaussian_blur", 0): 1}}
    )
    no_clean = probes({"natural": {("gaussian_blur", 1): 1, ("gaussian_blur", 2): 1}})
    for arrays in (only_clean, no_clean):
        assert run(check_blur_gap, view([NAT, R1], arrays, N)) == Verdict(
            INCONCLUSIVE, "needs blur at σ = 0 and at least one σ > 0"
        )


# ----------------------------------------------------------------------------- saliency


def saliency(per_model: dict[str, dict[str, np.ndarray]]) -> dict:
    return {
        ("saliency", name, key): value
        for name, arrays in per_model.items()
        for key, value in arrays.items()
    }


def test_high_frequency_exact_evidence_per_method():
    half = np.array([0.5, 0.5, 0.5, np.nan])
    arrays = saliency(
        {
            "natural": {"high_frequency/grad": half, "high_frequency/smooth": half},
            "natural-b": {
                "high_frequency/grad": const(0.0, N),
                "high_frequency/smooth": const(0.0, N),
            },
            "linf-0.1": {
                "high_frequency/grad": const(0.25, N),
                "high_frequency/smooth": const(0.5, N),
            },
            "l2-1": {
                "high_frequency/grad": const(0.125, N),
                "high_frequency/smooth": const(0.25, N),
            },
        }
    )
    v = view([NAT, NAT_B, R1, R2], arrays, N)
    assert run(check_high_frequency, v) == Verdict(
        INCONCLUSIVE,
        f"grad (natural 0.500): linf-0.1 Δ {point(-0.25)}, l2-1 Δ {point(-0.375)} → holds; "
        f"smooth (natural 0.500): linf-0.1 Δ {point(0)}, l2-1 Δ {point(-0.25)} → inconclusive",
        CI,
        {
            "grad": {"linf-0.1": interval_of(-0.25), "l2-1": interval_of(-0.375)},
            "smooth": {"linf-0.1": interval_of(0.0), "l2-1": interval_of(-0.25)},
        },
    )
    arrays[("saliency", "linf-0.1", "high_frequency/smooth")] = const(0.75, N)
    assert run(check_high_frequency, view([NAT, R1, R2], arrays, N)).status == FAILS
    arrays[("saliency", "linf-0.1", "high_frequency/smooth")] = const(0.25, N)
    assert run(check_high_frequency, view([NAT, R1, R2], arrays, N)).status == HOLDS


def test_high_frequency_without_models_or_maps():
    for models in ([NAT], [R1]):
        assert run(check_high_frequency, view(models, {}, N)) == Verdict(INCONCLUSIVE, PAIR)
    assert run(check_high_frequency, view([NAT, R1], {}, N)) == Verdict(
        INCONCLUSIVE, "the saliency lens stored no maps"
    )


def sanity(per_model: dict[str, float], threshold: float = 0.5) -> dict:
    """Spearman per randomisation step [steps, N]: 1 and 0.75 before, ``last`` after the last
    step (the only one the claim reads)."""
    return saliency(
        {
            name: {
                "sanity/guided/spearman": np.stack([const(1.0, N), const(0.75, N), const(last, N)]),
                "sanity/threshold": np.array([threshold]),
            }
            for name, last in per_model.items()
        }
    )


SANITY_CI = "95 % bootstrap CI over the check's images"


def test_guided_sanity_exact_evidence_and_the_threshold_itself_fails():
    v = view([NAT_B, NAT, R1], sanity({"natural": 0.25, "linf-0.1": 0.5}), N)
    assert run(check_guided_sanity, v) == Verdict(
        FAILS,
        f"threshold 0.5; natural: Spearman after full randomisation {point(0.25)}; "
        f"linf-0.1: Spearman after full randomisation {point(0.5)}",
        SANITY_CI,
        {"natural": interval_of(0.25), "linf-0.1": interval_of(0.5)},
    )


@pytest.mark.parametrize(
    ("last", "status"),
    [
        ([0.4375] * 4, HOLDS),  # just below the threshold
        ([0.5] * 4, FAILS),  # at it
        ([0.25, 0.75] * 20, INCONCLUSIVE),  # across it
        ([0.5, 0.75], FAILS),  # interval from the threshold up
        ([0.25, 0.5], INCONCLUSIVE),  # interval up to the threshold
        ([0.25, 0.25, 0.25, np.nan], HOLDS),  # images without a value are left out
    ],
)
def test_guided_sanity_on_either_side_of_the_threshold(last, status):
    n = len(last)
    arrays = sanity({"natural": 0.0})
    arrays[("saliency", "natural", "sanity/guided/spearman")] = np.stack([const(1.0, n), last])
    verdict = run(check_guided_sanity, view([NAT], arrays, n))
    assert verdict.status == status, verdict.evidence
    if n == 2:  # two images: the interval runs exactly from one value to the other
        assert (verdict.numbers["natural"]["low"], verdict.numbers["natural"]["high"]) == (
            min(last),
            max(last),
        )


def test_guided_sanity_without_the_check():
    assert run(check_guided_sanity, view([NAT, R1], {}, N)) == Verdict(
        INCONCLUSIVE, "the saliency lens ran no sanity check of guided backprop"
    )


# ----------------------------------------------------------------------------- late fusion


def ensemble(targets: dict[str, dict[str, list[int]]], anchor: str = "natural") -> dict:
    return {
        ("ensemble", anchor, f"correct/{target}/{name}"): np.array(flags, dtype=bool)
        for target, per_model in targets.items()
        for name, flags in per_model.items()
    }


FUSION_CI = "95 % paired bootstrap CI over each target's test images"


def test_fusion_exact_evidence_per_target_and_pair():
    cifar = {"natural": [1, 1, 0, 1], "linf-0.1": [0, 0, 1, 1], "natural+linf-0.1": [1, 1, 1, 0]}
    # the pair stored the other way round is found too; the better single model is the robust one
    svhn = {"natural": [0, 0, 0, 0], "linf-0.1": [1, 1, 1, 1], "linf-0.1+natural": [1, 1, 1, 1]}
    v = view([NAT, R1], ensemble({"cifar": cifar, "svhn": svhn}), N)
    verdict = run(check_fusion, v)
    diff = np.array([0.0, 0.0, 1.0, -1.0])  # pair − natural, the better single model
    w = v.weights(N)
    boot = w @ diff / N
    low, high = np.quantile(boot, [0.025, 0.975])
    cifar_iv = {"estimate": 0.0, "low": float(low), "high": float(high)}
    assert verdict == Verdict(
        INCONCLUSIVE,
        f"non-inferiority margin 0.01; cifar: natural+linf-0.1 − best single "
        f"0 [{low:.3g}, {high:.3g}]; svhn: natural+linf-0.1 − best single {point(0)}",
        FUSION_CI,
        {"cifar": {"natural+linf-0.1": cifar_iv}, "svhn": {"natural+linf-0.1": interval_of(0.0)}},
    )


@pytest.mark.parametrize(
    ("pair_flags", "votes", "status"),
    [
        ([[1] * N, [1] * N, [0] * N], (1, 1, -1), HOLDS),  # 2 of 3 targets for
        ([[0] * N, [0] * N, [1] * N], (-1, -1, 1), FAILS),  # 2 of 3 against
        ([[1] * N, [0] * N], (1, -1), INCONCLUSIVE),  # a tie: no majority
        ([[1] * N, [1, 1, 0, 1]], (1, 0), INCONCLUSIVE),  # one for, one open: not a majority
    ],
)
def test_fusion_majority_of_targets(pair_flags, votes, status):
    targets = {
        f"t{i}": {"natural": [1] * N, "linf-0.1": [0] * N, "natural+linf-0.1": flags}
        for i, flags in enumerate(pair_flags)
    }
    verdict = run(check_fusion, view([NAT, R1], ensemble(targets), N))
    assert verdict.status == status, verdict.evidence
    for i, vote in enumerate(votes):
        iv = verdict.numbers[f"t{i}"]["natural+linf-0.1"]
        assert (iv["low"] > -0.01, iv["high"] < -0.01) == (vote > 0, vote < 0)


def test_fusion_one_pair_against_decides_the_target():
    target = {
        "natural": [1] * N,
        "natural-b": [1] * N,
        "linf-0.1": [0] * N,
        "natural+linf-0.1": [1] * N,
        "natural-b+linf-0.1": [0] * N,
    }
    v = view([NAT, NAT_B, R1], ensemble({"t": target}), N)
    assert run(check_fusion, v).status == FAILS


def test_fusion_without_models_results_or_pairs():
    for models in ([NAT], [R1]):
        assert run(check_fusion, view(models, {}, N)) == Verdict(
            INCONCLUSIVE, "needs a natural and a robust model"
        )
    assert run(check_fusion, view([NAT, R1], {}, N)) == Verdict(
        INCONCLUSIVE, "the ensemble lens stored no results"
    )
    singles_only = ensemble({"t": {"natural": [1] * N, "linf-0.1": [1] * N}})
    assert run(check_fusion, view([NAT, R1], singles_only, N)) == Verdict(
        INCONCLUSIVE, "no STD+ADV pair with both single models"
    )
    no_robust_single = ensemble({"t": {"natural": [1] * N, "natural+linf-0.1": [1] * N}})
    assert run(check_fusion, view([NAT, R1], no_robust_single, N)).evidence == (
        "no STD+ADV pair with both single models"
    )


def test_probe_evidence_lists_every_robust_model():
    arrays = probes(
        {
            "natural": {("median_filter", 0): 1, ("median_filter", 5): 0, ("edge_map", 1): 0},
            "linf-0.1": {("median_filter", 0): 1, ("median_filter", 5): 1, ("edge_map", 1): 1},
            "l2-1": {("median_filter", 0): 1, ("median_filter", 5): 0, ("edge_map", 1): 1},
        }
    )
    arrays |= probes({name: {("stylized", 1): 1} for name in ("natural", "linf-0.1", "l2-1")})
    v = view([NAT, R1, R2], arrays, N)
    assert run(check_median, v).evidence == (
        f"median filter applied 5 times: loses less: linf-0.1: drop 0.000 vs natural 1.000, "
        f"difference {point(1)}; l2-1: drop 1.000 vs natural 1.000, difference {point(0)} | "
        f"outperforms the natural model: linf-0.1: accuracy − natural's = {point(1)}; l2-1: "
        f"accuracy − natural's = {point(0)}"
    )
    assert run(check_texture, v).evidence == (
        f"edge map: linf-0.1: drop 0.000 vs natural 1.000, difference {point(1)}; l2-1: drop "
        f"0.000 vs natural 1.000, difference {point(1)} | stylised images: linf-0.1: accuracy − "
        f"natural's = {point(0)}; l2-1: accuracy − natural's = {point(0)}"
    )


def test_fusion_evidence_lists_every_pair_of_a_target():
    target = {
        "natural": [1] * N,
        "natural-b": [1] * N,
        "linf-0.1": [0] * N,
        "natural+linf-0.1": [1] * N,
        "natural-b+linf-0.1": [1] * N,
    }
    verdict = run(check_fusion, view([NAT, NAT_B, R1], ensemble({"t": target}), N))
    assert verdict.evidence == (
        f"non-inferiority margin 0.01; t: natural+linf-0.1 − best single {point(0)}, "
        f"natural-b+linf-0.1 − best single {point(0)}"
    )
    assert verdict.status == HOLDS


def test_clean_accuracy_comes_from_the_median_probe_before_the_blur_probe():
    arrays = probes(
        {
            name: {("median_filter", 0): 1, ("median_filter", 3): 0, ("gaussian_blur", 0): 0}
            for name in ("natural", "linf-0.1")
        }
    )
    arrays |= probes({"linf-0.1": {("median_filter", 3): 1}})
    verdict = run(check_median, view([NAT, R1], arrays, N))
    assert verdict.evidence == (
        f"median filter applied 3 times: loses less: linf-0.1: drop 0.000 vs natural 1.000, "
        f"difference {point(1)} | outperforms the natural model: linf-0.1: accuracy − "
        f"natural's = {point(1)}"
    )


def fusion_target(a: int, b: int, n: int = 100) -> dict[str, list[int]]:
    """The pair right where the natural model (the better single one) is wrong on ``a``
    images, and wrong where it is right on ``b``: Δ per image +1 (a), −1 (b), 0 (others)."""
    natural = [0] * a + [1] * (n - a)
    pair = [1] * a + [0] * b + [1] * (n - a - b)
    return {"natural": natural, "linf-0.1": [0] * n, "natural+linf-0.1": pair}


@pytest.mark.parametrize(
    ("a", "b", "end"),
    [(4, 1, "low"), (0, 4, "high")],  # with the view's resamples, an end at −1 point exactly
)
def test_fusion_interval_ending_exactly_at_the_margin_decides_nothing(a, b, end):
    v = view([NAT, R1], ensemble({"t": fusion_target(a, b)}), 100)
    verdict = run(check_fusion, v)
    assert verdict.numbers["t"]["natural+linf-0.1"][end] == -0.01
    assert verdict.status == INCONCLUSIVE


def test_fusion_open_targets_are_not_votes_against():
    open_target = {"natural": [1] * N, "linf-0.1": [0] * N, "natural+linf-0.1": [1, 1, 0, 1]}
    good = {"natural": [1] * N, "linf-0.1": [0] * N, "natural+linf-0.1": [1] * N}
    v = view([NAT, R1], ensemble({"a": open_target, "b": open_target, "c": good}), N)
    verdict = run(check_fusion, v)
    assert verdict.numbers["a"]["natural+linf-0.1"]["high"] == 0.0  # open: within 1 point
    assert verdict.status == INCONCLUSIVE


def test_fusion_reads_later_pairs_and_targets_after_missing_ones():
    target = {"natural": [1] * N, "natural-b": [1] * N, "linf-0.1": [0] * N}
    target["natural-b+linf-0.1"] = [1] * N  # natural+linf-0.1 was not fused
    first = {"natural": [1] * N, "linf-0.1": [1] * N}  # no pair at all
    v = view([NAT, NAT_B, R1], ensemble({"first": first, "second": target}), N)
    verdict = run(check_fusion, v)
    assert verdict.numbers == {"second": {"natural-b+linf-0.1": interval_of(0.0)}}
    assert verdict.status == HOLDS


def test_blur_gap_with_one_blurred_level_is_checked():
    arrays = probes(
        {
            "natural": {("gaussian_blur", 0): 1, ("gaussian_blur", 2): 1},
            "linf-0.1": {("gaussian_blur", 0): 1, ("gaussian_blur", 2): 1},
        }
    )
    assert run(check_blur_gap, view([NAT, R1], arrays, N)) == Verdict(
        HOLDS,
        f"margin ±0.05; linf-0.1: clean gap +0.000, mean change over σ ≤ 2 {point(0)}",
        CI,
        {"linf-0.1": interval_of(0.0)},
    )


def test_stylised_images_of_a_later_robust_model_count_after_one_without_them():
    arrays = probes(
        {
            "natural": {("median_filter", 0): 1, ("stylized", 1): 0},
            "linf-0.1": {("median_filter", 0): 1},
            "l2-1": {("median_filter", 0): 1, ("stylized", 1): 1},
        }
    )
    assert run(check_texture, view([NAT, R1, R2], arrays, N)) == Verdict(
        HOLDS, f"stylised images: l2-1: accuracy − natural's = {point(1)}", CI, {}
    )


def test_fusion_reads_a_later_robust_partner_after_a_missing_pair():
    target = {"natural": [1] * N, "linf-0.1": [0] * N, "l2-1": [0] * N, "natural+l2-1": [1] * N}
    verdict = run(check_fusion, view([NAT, R1, R2], ensemble({"t": target}), N))
    assert verdict.numbers == {"t": {"natural+l2-1": interval_of(0.0)}}
    assert verdict.status == HOLDS
