"""The claims of Springer et al. (paper 001) on hand-made per-image results with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, ResultsView
from robustlens.claims.paper001 import check_targeted_transfer, check_universality
from tests.claims.test_paper000 import model

N = 400
NAT, NAT2 = model("natural"), model("natural2")
ROB = [model(f"l2-{e}", "pgd", "l2", e) for e in (0.25, 0.5, 1.0)]


def exact(p: float, seed: int) -> np.ndarray:
    """Per-image outcomes with exactly round(p·N) successes, shuffled (independent of others)."""
    out = np.zeros(N, dtype=bool)
    out[: round(p * N)] = True
    np.random.default_rng(seed).shuffle(out)
    return out


def view_of(lens: str, arrays: dict[str, np.ndarray], models) -> ResultsView:
    """A view whose ``lens`` stored ``arrays`` (by name) once for the whole study."""
    v = ResultsView(models, lambda ln, m, n: arrays.get(n) if ln == lens else None, {lens}, N,
                    10, lambda ln, m: sorted(arrays) if ln == lens else [])  # fmt: skip
    v.resamples = 300
    return v


def view(acc: dict[str, float], models=None, evaluator: str = "natural") -> ResultsView:
    """Nested outcomes (one shared uniform draw): strongly paired across sources."""
    base = np.random.default_rng(0).random(N)
    arrays = {f"correct/{evaluator}/{s}": base < p for s, p in acc.items()}
    return view_of("universality", arrays, models or [NAT, NAT2, *ROB])


def check(v: ResultsView, claim=check_universality):
    return claim(v)


def test_holds_when_small_eps_beats_r0_and_peaks_early():
    verdict = check(view({"natural2": 0.4, "l2-0.25": 0.7, "l2-0.5": 0.65, "l2-1.0": 0.5}))
    assert verdict.status == HOLDS, verdict.evidence
    peak = verdict.numbers["peak"]
    assert peak["best_eps"] == 0.25 and peak["largest_eps"] == 1.0
    base = np.random.default_rng(0).random(N)
    expected = (base < 0.7).mean() - (base < 0.5).mean()
    assert peak["best_minus_largest"]["estimate"] == pytest.approx(expected)
    assert peak["best_minus_largest"]["low"] > 0 and peak["argmax_below_largest"] > 0.95
    assert "argmax over ε below ε=1" in verdict.evidence and "resamples" in verdict.evidence


def test_fails_when_accuracy_keeps_growing_with_eps():
    verdict = check(view({"natural2": 0.4, "l2-0.25": 0.5, "l2-0.5": 0.6, "l2-1.0": 0.7}))
    assert verdict.status == FAILS
    assert verdict.numbers["peak"]["best_minus_largest"]["high"] < 0


def test_a_peak_within_the_noise_is_inconclusive_either_way():
    # independent outcomes a point apart: the point estimates alone would say "peak below the
    # largest ε" (holds) in the first case and "peak at the largest ε" (fails) in the second
    for rates in ((0.7, 0.71, 0.70), (0.7, 0.70, 0.71)):
        arrays = {"correct/natural/natural2": exact(0.4, 1)}
        for seed, (m, p) in enumerate(zip(ROB, rates, strict=True)):
            arrays[f"correct/natural/{m.name}"] = exact(p, 10 + seed)
        verdict = check(view_of("universality", arrays, [NAT, NAT2, *ROB]))
        assert verdict.status == INCONCLUSIVE, (rates, verdict.evidence)
        iv = verdict.numbers["peak"]["best_minus_largest"]
        assert iv["low"] < 0 < iv["high"]


def test_fails_when_the_least_robust_source_is_below_r0_even_with_an_early_peak():
    verdict = check(view({"natural2": 0.8, "l2-0.25": 0.6, "l2-0.5": 0.55, "l2-1.0": 0.5}))
    assert verdict.status == FAILS
    assert verdict.numbers["smallest_minus_r0"]["high"] < 0


def test_two_eps_decide_on_the_first_part_only_and_say_so():
    verdict = check(view({"natural2": 0.4, "l2-0.25": 0.7, "l2-0.5": 0.8}))
    assert verdict.status == HOLDS and "peak not tested" in verdict.evidence
    assert "peak" not in verdict.numbers


def test_needs_a_second_natural_model_and_its_r0():
    verdict = check(view({"natural2": 0.4, "l2-0.25": 0.7}, models=[NAT, *ROB]))
    assert verdict.status == INCONCLUSIVE and "two natural models" in verdict.evidence
    # the evaluator's own R_0 says nothing about shared features
    verdict = check(view({"natural": 0.9, "l2-0.25": 0.7, "l2-0.5": 0.6, "l2-1.0": 0.5}))
    assert verdict.status == INCONCLUSIVE and "no R_0" in verdict.evidence


def test_r0_of_the_first_natural_model_evaluated_by_the_second():
    # only the first natural model robustified: the second is the standard model C'
    verdict = check(
        view({"natural": 0.4, "l2-0.25": 0.7, "l2-0.5": 0.65, "l2-1.0": 0.5}, evaluator="natural2")
    )
    assert verdict.status == HOLDS, verdict.evidence
    assert (verdict.numbers["evaluator"], verdict.numbers["r0_source"]) == ("natural2", "natural")


def test_the_standard_model_shares_the_r0_source_architecture():
    # a natural victim of another architecture listed first is not the paper's C'
    victim = model("victim-mlp")
    victim.card.arch = "mlp"
    acc = {"natural2": 0.4, "l2-0.25": 0.7, "l2-0.5": 0.65, "l2-1.0": 0.5}
    base = np.random.default_rng(0).random(N)
    arrays = {f"correct/natural/{s}": base < p for s, p in acc.items()}
    arrays["correct/victim-mlp/natural2"] = base < 0.9
    arrays.update({f"correct/victim-mlp/{s}": base < 0.1 for s in acc if s != "natural2"})
    verdict = check(view_of("universality", arrays, [victim, NAT, NAT2, *ROB]))
    assert (verdict.numbers["evaluator"], verdict.numbers["r0_source"]) == ("natural", "natural2")
    assert verdict.status == HOLDS, verdict.evidence


def test_the_norm_is_chosen_among_the_lens_sources():
    # three L∞ models in the study, but only the two L2 ones robustified: the L2 family decides
    linf = [model(f"linf-{e}", "pgd", "linf", e) for e in (0.01, 0.02, 0.03)]
    acc = {"natural2": 0.4, "l2-0.25": 0.7, "l2-0.5": 0.6}
    verdict = check(view(acc, models=[NAT, NAT2, *linf, *ROB[:2]]))
    assert verdict.status == HOLDS, verdict.evidence
    assert verdict.numbers["norm"] == "l2"


def transfer_view(hits: dict[tuple[str, str], float], models=None) -> ResultsView:
    """hit/<victim>/<source> outcomes, nested per victim (strongly paired across sources)."""
    arrays = {}
    for (victim, source), p in hits.items():
        base = np.random.default_rng(sum(map(ord, victim))).random(N)
        arrays[f"hit/{victim}/{source}"] = base < p
    return view_of("transfer", arrays, models or [NAT, *ROB])


def test_targeted_transfer_from_a_slightly_robust_source():
    up = transfer_view({("mlp", "natural"): 0.1, ("mlp", "l2-0.25"): 0.3})
    verdict = check(up, check_targeted_transfer)
    assert verdict.status == HOLDS, verdict.evidence
    assert verdict.numbers["mlp"]["low"] > 0
    down = transfer_view({("mlp", "natural"): 0.3, ("mlp", "l2-0.25"): 0.1})
    assert check(down, check_targeted_transfer).status == FAILS
    none = transfer_view({})
    assert check(none, check_targeted_transfer).status == INCONCLUSIVE


def test_targeted_transfer_compares_the_smallest_eps_among_the_lens_sources():
    # l2-0.25 is a model of the study but not a transfer source: l2-0.5 is the smallest ε
    hits = {("mlp", "natural"): 0.1, ("mlp", "l2-0.5"): 0.3, ("mlp", "l2-1.0"): 0.05}
    verdict = check(transfer_view(hits), check_targeted_transfer)
    assert verdict.status == HOLDS, verdict.evidence
    assert verdict.numbers["robust"] == "l2-0.5"


def test_targeted_transfer_stays_within_one_norm():
    # a lone L∞ source of smaller ε than every L2 one does not replace the L2 family's smallest
    linf = model("linf-0.01", "pgd", "linf", 0.01)
    hits = {
        ("mlp", "natural"): 0.1,
        ("mlp", "linf-0.01"): 0.02,
        ("mlp", "l2-0.25"): 0.3,
        ("mlp", "l2-0.5"): 0.2,
    }
    verdict = check(transfer_view(hits, [NAT, linf, *ROB]), check_targeted_transfer)
    assert verdict.status == HOLDS, verdict.evidence
    assert (verdict.numbers["robust"], verdict.numbers["norm"]) == ("l2-0.25", "l2")
    assert "other norms (linf) not compared" in verdict.evidence


def test_targeted_transfer_is_judged_per_victim_and_ignores_white_box_results():
    both = {("mlp", "natural"): 0.1, ("mlp", "l2-0.25"): 0.3}
    # the source on its own examples is not a victim, however low its success
    white = {("l2-0.25", "l2-0.25"): 0.0, ("natural", "natural"): 0.9}
    verdict = check(transfer_view({**both, **white}), check_targeted_transfer)
    assert verdict.status == HOLDS and set(verdict.numbers) == {"natural", "robust", "norm", "mlp"}
    down = {("resnet", "natural"): 0.3, ("resnet", "l2-0.25"): 0.1}
    assert check(transfer_view({**both, **down}), check_targeted_transfer).status == FAILS
    flat = {("resnet", "natural"): 0.2, ("resnet", "l2-0.25"): 0.2}
    verdict = check(transfer_view({**both, **flat}), check_targeted_transfer)
    assert verdict.status == INCONCLUSIVE, verdict.evidence


def test_targeted_transfer_needs_a_natural_and_a_robust_source_of_one_architecture():
    only_robust = {("mlp", "l2-0.25"): 0.3, ("mlp", "l2-0.5"): 0.2}
    verdict = check(transfer_view(only_robust), check_targeted_transfer)
    assert verdict.status == INCONCLUSIVE and "no natural model" in verdict.evidence
    other = model("l2-0.25")
    other.card.recipe = {"method": "pgd", "norm": "l2", "eps": 0.25}
    other.card.arch = "resnet20"
    hits = {("mlp", "natural"): 0.1, ("mlp", "l2-0.25"): 0.3}
    verdict = check(transfer_view(hits, [NAT, other]), check_targeted_transfer)
    assert verdict.status == INCONCLUSIVE and "no adversarially trained" in verdict.evidence


def test_type_b_needs_constructed_models_and_checks_chance():
    from robustlens.claims.paper001 import check_type_b
    from robustlens.models import ModelCard

    zero = model("zero")
    zero.card.source = {"train_on": {"set": "zero", "source": "natural"}}
    neg = model("negative")
    neg.card.source = {"train_on": {"set": "negative", "source": "natural"}}
    assert isinstance(zero.card, ModelCard) and not zero.is_natural and not zero.is_robust
    base = np.random.default_rng(2).random(N)
    acc = {"zero": 0.3, "negative": 0.25}
    arrays = {
        ("universality", m, f"correct/{m}/{s.name}"): base < p for m, p in acc.items() for s in ROB
    }

    def names(lens, m):
        return [n for (ln, mn, n) in arrays if (ln, mn) == (lens, m)]

    v = ResultsView([NAT, *ROB, zero, neg], lambda ln, m, n: arrays.get((ln, m, n)),
                    {"universality"}, N, 10, names)  # fmt: skip
    v.resamples = 300
    assert check_type_b(v).status == HOLDS
    arrays = {k: base < 0.05 for k in arrays}
    v2 = ResultsView([NAT, *ROB, zero, neg], lambda ln, m, n: arrays.get((ln, m, n)),
                     {"universality"}, N, 10, names)  # fmt: skip
    v2.resamples = 300
    assert check_type_b(v2).status == FAILS
    v3 = view({"natural2": 0.4})
    assert check_type_b(v3).status == INCONCLUSIVE
