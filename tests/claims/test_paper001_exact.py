"""Paper 001's claims on tiny results worked by hand: exact evidence and numbers, the models
and arrays each claim reads, and the messages of the claims that cannot be checked."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, Verdict
from robustlens.claims.paper001 import (
    check_targeted_transfer,
    check_type_b,
    check_universality,
)
from tests.claims.exact import CI, model, point, run, view

N = 4
NAT = model("natural")
NAT_B = model("natural-b")
NAT_WIDE = model("natural-wide", arch="resnet20")
A25 = model("l2-0.25a", "pgd", "l2", 0.25)
B25 = model("l2-0.25b", "pgd", "l2", 0.25)
R50 = model("l2-0.5", "pgd", "l2", 0.5)
R100 = model("l2-1", "pgd", "l2", 1.0)
LINF = model("linf-0.01", "pgd", "linf", 0.01)


def same(flag: int) -> np.ndarray:
    return np.full(N, bool(flag))


def universality(evaluator: str, accs: dict[str, int]) -> dict:
    return {
        ("universality", evaluator, f"correct/{evaluator}/{s}"): same(a) for s, a in accs.items()
    }


def interval_of(x: float) -> dict:
    return {"estimate": x, "low": x, "high": x}


def test_universality_exact_evidence_with_a_peak_below_the_largest_eps():
    """R_0: 0. ε 0.25: two sources (1 and 0, mean 0.5), ε 0.5: 1, ε 1: 0. The smallest-ε
    source (the first at 0.25) beats R_0 by 1; the peak is at ε 0.5 on every resample."""
    arrays = universality(
        "natural",
        {"natural-b": 0, "l2-0.25a": 1, "l2-0.25b": 0, "l2-0.5": 1, "l2-1": 0, "linf-0.01": 1},
    )
    v = view([NAT, NAT_B, LINF, R100, A25, R50, B25], arrays, N)
    assert run(check_universality, v) == Verdict(
        HOLDS,
        "natural on R_0 from natural-b: 0.000; on R_ε from l2 sources: ε=0.25: 0.500, "
        f"ε=0.5: 1.000, ε=1: 0.000; R at ε=0.25 − R_0 = {point(1)}; peak: best R below the "
        f"largest ε (ε=0.5) − R at ε=1 = {point(1)}; argmax over ε below ε=1 in 100 % of "
        "resamples (most often ε=0.5)",
        CI,
        {
            "evaluator": "natural",
            "r0_source": "natural-b",
            "norm": "l2",
            "r0": 0.0,
            "by_eps": {0.25: 0.5, 0.5: 1.0, 1.0: 0.0},
            "smallest_minus_r0": interval_of(1.0),
            "peak": {
                "best_eps": 0.5,
                "largest_eps": 1.0,
                "best_minus_largest": interval_of(1.0),
                "argmax_below_largest": 1.0,
                "modal_argmax_eps": 0.5,
            },
        },
    )


def test_universality_peak_at_the_largest_eps_fails_and_two_eps_are_not_a_peak():
    arrays = universality(
        "natural", {"natural-b": 0, "l2-0.25a": 1, "l2-0.25b": 0, "l2-0.5": 0, "l2-1": 1}
    )
    verdict = run(check_universality, view([NAT, NAT_B, A25, B25, R50, R100], arrays, N))
    assert verdict.status == FAILS
    assert verdict.evidence.endswith(
        f"peak: best R below the largest ε (ε=0.25) − R at ε=1 = {point(-0.5)}; argmax over ε "
        "below ε=1 in 0 % of resamples (most often ε=1)"
    )
    assert verdict.numbers["peak"]["argmax_below_largest"] == 0.0
    two = universality("natural", {"natural-b": 1, "l2-0.25a": 1, "l2-0.5": 0})
    verdict = run(check_universality, view([NAT, NAT_B, A25, R50], two, N))
    assert verdict.status == INCONCLUSIVE  # R at the smallest ε ties R_0
    assert verdict.evidence.endswith(
        f"R at ε=0.25 − R_0 = {point(0)}; peak not tested (2 distinct ε, needs 3)"
    )
    assert "peak" not in verdict.numbers
    worse = universality("natural", {"natural-b": 1, "l2-0.25a": 0, "l2-0.5": 0})
    assert run(check_universality, view([NAT, NAT_B, A25, R50], worse, N)).status == FAILS


def test_universality_prefers_an_evaluator_of_the_r0_sources_architecture():
    arrays = universality("natural-wide", {"natural": 1, "l2-0.25a": 0})
    arrays |= universality("natural-b", {"natural": 0, "l2-0.25a": 1})
    verdict = run(check_universality, view([NAT_WIDE, NAT, NAT_B, A25], arrays, N))
    assert (verdict.numbers["evaluator"], verdict.numbers["r0_source"]) == ("natural-b", "natural")
    assert verdict.status == HOLDS


@pytest.mark.parametrize(
    ("models", "arrays", "evidence"),
    [
        (
            [NAT, A25],
            {},
            "needs two natural models: one robustifies R_0, the other is evaluated on it (the "
            "paper's C_0 and C'); a model's own R_0 is built from its own features",
        ),
        (
            [NAT, NAT_B, A25],
            universality("natural", {"natural": 1, "l2-0.25a": 1}),
            "no R_0 from one natural model evaluated by another (natural, natural-b): add a "
            "natural model to the lens's sources",
        ),
        (
            [NAT, NAT_B, A25],
            universality("natural", {"natural-b": 1}),
            "no robustified set from a robust source",
        ),
    ],
)
def test_universality_without_what_it_needs(models, arrays, evidence):
    assert run(check_universality, view(models, arrays, N)) == Verdict(INCONCLUSIVE, evidence)


# ------------------------------------------------------------------------- targeted transfer


def transfer(anchor: str, hits: dict[tuple[str, str], int], clean: dict[str, int]) -> dict:
    arrays = {("transfer", anchor, f"hit/{v}/{s}"): same(h) for (v, s), h in hits.items()}
    arrays |= {("transfer", anchor, f"clean_hit/{v}"): same(c) for v, c in clean.items()}
    return arrays


HEAD = (
    "targeted success from l2-0.25a (l2 ε=0.25, the smallest of the l2 sources) vs from "
    "natural (natural)"
)


def test_targeted_transfer_exact_evidence_per_victim():
    hits = {
        ("mlp", "natural"): 0,
        ("mlp", "l2-0.25a"): 1,
        ("mlp", "l2-0.5"): 0,
        ("mlp", "linf-0.01"): 0,
        ("cnn", "natural"): 0,
        ("cnn", "l2-0.25a"): 1,
        ("alex", "natural"): 1,  # no result from the robust source
        ("mlp", "natural", "extra"): 1,
    }
    arrays = transfer("natural", {k[:2]: v for k, v in hits.items() if len(k) == 2}, {"mlp": 0})
    arrays[("transfer", "natural", "hit/mlp/natural/extra")] = same(0)  # not a hit/<v>/<s> row
    v = view([NAT, R50, A25, LINF], arrays, N)
    row = f"1.000 vs 0.000, Δ {point(1)}"
    assert run(check_targeted_transfer, v) == Verdict(
        HOLDS,
        f"{HEAD}; sources of other norms (linf) not compared: alex: missing results; "
        f"cnn: {row}; mlp: {row} (clean images predicted as the target: 0.000)",
        CI,
        {
            "natural": "natural",
            "robust": "l2-0.25a",
            "norm": "l2",
            "cnn": interval_of(1.0),
            "mlp": interval_of(1.0),
        },
    )


def test_targeted_transfer_victims_in_study_order_and_no_victim_with_both_results():
    mlp = model("zoo-mlp")  # a study model: before victims from outside it, whatever its name
    arrays = transfer(
        "zoo-mlp",
        {("alpha", "natural"): 1, ("zoo-mlp", "natural"): 0, ("zoo-mlp", "l2-0.25a"): 0},
        {},
    )
    arrays[("transfer", "zoo-mlp", "hit/alpha/l2-0.25a")] = same(0)
    verdict = run(check_targeted_transfer, view([mlp, NAT, A25], arrays, N))
    assert (
        verdict.evidence
        == f"{HEAD}: zoo-mlp: 0.000 vs 0.000, Δ {point(0)}; alpha: 0.000 vs 1.000, Δ {point(-1)}"
    )
    assert verdict.status == FAILS
    only_natural = transfer("natural", {("mlp", "natural"): 1, ("mlp", "l2-0.25a"): 1}, {})
    del only_natural[("transfer", "natural", "hit/mlp/l2-0.25a")]
    only_natural[("transfer", "natural", "hit/cnn/l2-0.25a")] = same(1)
    assert run(check_targeted_transfer, view([NAT, A25], only_natural, N)) == Verdict(
        INCONCLUSIVE,
        f"{HEAD}: no victim has both results; cnn: missing results; mlp: missing results",
    )


@pytest.mark.parametrize(
    ("models", "hits", "evidence"),
    [
        (
            [],
            {},
            "needs transfer results from a natural and a robust source on at least one victim",
        ),
        (
            [A25, R50],
            {("mlp", "l2-0.25a"): 1, ("mlp", "l2-0.5"): 1},
            "no natural model among the transfer sources (l2-0.25a, l2-0.5): add one to the "
            "lens's sources",
        ),
        (
            [NAT, model("wide-l2", "pgd", "l2", 0.25, arch="resnet20")],
            {("mlp", "natural"): 1, ("mlp", "wide-l2"): 1},
            "no adversarially trained small-cnn model among the transfer sources (natural, "
            "wide-l2) to compare with natural",
        ),
    ],
)
def test_targeted_transfer_without_the_sources_it_needs(models, hits, evidence):
    anchor = models[0].name if models else "natural"
    v = view(models, transfer(anchor, hits, {}), N)
    assert run(check_targeted_transfer, v) == Verdict(INCONCLUSIVE, evidence)


# ------------------------------------------------------------------------------------ Type B


def test_type_b_exact_evidence():
    zero = model("zero", train_on={"set": "zero", "source": "natural"})
    zero_all = model("zero-all", train_on={"set": "zero-all", "source": "natural"})
    neg = model("negative", train_on={"set": "negative", "source": "natural"})
    arrays = {}
    for m, s, a in (
        ("zero", "l2-0.5", 1),
        ("zero", "l2-0.25a", 1),
        ("zero-all", "l2-0.25a", 0),
        ("negative", "l2-0.25a", 1),
        ("negative", "l2-0.5", 0),  # the leakage control is read on the least robust only
    ):
        arrays[("universality", m, f"correct/{m}/{s}")] = same(a)
    v = view([NAT, R50, A25, zero, zero_all, neg], arrays, N, num_classes=4)
    assert run(check_type_b, v) == Verdict(
        FAILS,
        f"chance 0.250; zero on R from l2-0.25a: accuracy − chance {point(0.75)}; "
        f"zero on R from l2-0.5: accuracy − chance {point(0.75)}; "
        f"zero-all on R from l2-0.25a: accuracy − chance {point(-0.25)}; "
        f"negative on R from l2-0.25a: accuracy − chance {point(0.75)}",
        CI,
        {
            "zero/l2-0.25a": interval_of(0.75),
            "zero/l2-0.5": interval_of(0.75),
            "zero-all/l2-0.25a": interval_of(-0.25),
            "negative/l2-0.25a": interval_of(0.75),
        },
    )
    del arrays[("universality", "zero-all", "correct/zero-all/l2-0.25a")]
    assert (
        run(
            check_type_b, view([NAT, R50, A25, zero, zero_all, neg], arrays, N, num_classes=4)
        ).status
        == HOLDS
    )


@pytest.mark.parametrize("with_robust", [True, False])
def test_type_b_without_results_or_models(with_robust):
    zero = model("zero", train_on={"set": "zero", "source": "natural"})
    robustified = model("data", train_on={"set": "robustified", "source": "l2-0.5"})
    if with_robust:
        assert run(check_type_b, view([NAT, R50, zero], {}, N)) == Verdict(
            INCONCLUSIVE, "the universality lens has no results for these models"
        )
        models = [NAT, R50, robustified]
    else:
        models = [NAT, zero]
    assert run(check_type_b, view(models, {}, N)) == Verdict(
        INCONCLUSIVE,
        "needs models trained on zero- or negative-robust sets (train_on) and robustified "
        "sets from robust sources",
    )


def test_a_tie_between_norms_goes_to_the_first_by_name():
    """One L∞ and one L2 source (L∞ listed first, and of smaller ε): L2 is the family."""
    arrays = universality("natural", {"natural-b": 0, "linf-0.01": 0, "l2-0.5": 1})
    verdict = run(check_universality, view([NAT, NAT_B, LINF, R50], arrays, N))
    assert (verdict.numbers["norm"], verdict.status) == ("l2", HOLDS)
    hits = {("mlp", "natural"): 0, ("mlp", "linf-0.01"): 0, ("mlp", "l2-0.5"): 1}
    verdict = run(check_targeted_transfer, view([NAT, LINF, R50], transfer("natural", hits, {}), N))
    assert (verdict.numbers["robust"], verdict.status) == ("l2-0.5", HOLDS)


def test_targeted_transfer_names_every_other_norm_left_out():
    l1 = model("l1-5", "pgd", "l1", 5.0)
    hits = {
        ("mlp", "natural"): 0,
        ("mlp", "l2-0.25a"): 1,
        ("mlp", "l2-0.5"): 1,
        ("mlp", "linf-0.01"): 0,
        ("mlp", "l1-5"): 0,
    }
    v = view([NAT, A25, R50, LINF, l1], transfer("natural", hits, {}), N)
    assert run(check_targeted_transfer, v).evidence == (
        f"{HEAD}; sources of other norms (l1, linf) not compared: mlp: 1.000 vs 0.000, Δ {point(1)}"
    )


def test_targeted_transfer_needs_a_victim_and_a_source_of_the_study():
    message = "needs transfer results from a natural and a robust source on at least one victim"
    from_outside = transfer("natural", {("mlp", "ghost"): 1}, {})  # the source left the study
    white_box = transfer("natural", {("natural", "natural"): 1, ("l2-0.25a", "l2-0.25a"): 1}, {})
    for arrays in (from_outside, white_box):
        assert run(check_targeted_transfer, view([NAT, A25], arrays, N)) == Verdict(
            INCONCLUSIVE, message
        )


def test_type_b_reads_a_later_source_after_a_missing_one():
    zero = model("zero", train_on={"set": "zero", "source": "natural"})
    arrays = {("universality", "zero", "correct/zero/l2-0.5"): same(1)}
    verdict = run(check_type_b, view([NAT, A25, R50, zero], arrays, N, num_classes=4))
    assert verdict.numbers == {"zero/l2-0.5": interval_of(0.75)}
