"""The universality claim of Springer et al. (paper 001) on hand-made per-image results."""

from __future__ import annotations

import numpy as np

from robustlens.study.claims import FAILS, HOLDS, INCONCLUSIVE, ResultsView
from robustlens.study.claims.paper001 import check_universality
from tests.study.claims.test_paper000 import model

N = 400
NAT, NAT2 = model("natural"), model("natural2")
ROB = [model(f"l2-{e}", "pgd", "l2", e) for e in (0.25, 0.5, 1.0)]


def view(acc: dict[str, float], models=None) -> ResultsView:
    base = np.random.default_rng(0).random(N)
    arrays = {("universality", "natural", f"correct/natural/{s}"): base < p for s, p in acc.items()}

    def names(lens, m):
        return [n for (ln, mn, n) in arrays if ln == lens]

    v = ResultsView(models or [NAT, NAT2, *ROB], lambda ln, m, n: arrays.get((ln, "natural", n)),
                    {"universality"}, N, 10, names)  # fmt: skip
    v.resamples = 300
    return v


def test_holds_when_small_eps_beats_r0_and_peaks_early():
    v = view({"natural2": 0.4, "l2-0.25": 0.7, "l2-0.5": 0.65, "l2-1.0": 0.5})
    verdict = check_universality(v, v.weights(N))
    assert verdict.status == HOLDS, verdict.evidence


def test_fails_when_accuracy_keeps_growing_with_eps():
    v = view({"natural2": 0.4, "l2-0.25": 0.5, "l2-0.5": 0.6, "l2-1.0": 0.7})
    assert check_universality(v, v.weights(N)).status == FAILS


def test_needs_a_second_natural_model():
    v = view({"natural2": 0.4, "l2-0.25": 0.7}, models=[NAT, *ROB])
    verdict = check_universality(v, v.weights(N))
    assert verdict.status == INCONCLUSIVE and "two natural models" in verdict.evidence


def transfer_view(hits: dict[str, float]) -> ResultsView:
    base = np.random.default_rng(1).random(N)
    arrays = {("transfer", "natural", f"hit/mlp/{s}"): base < p for s, p in hits.items()}

    def names(lens, m):
        return [n for (ln, mn, n) in arrays if ln == lens]

    v = ResultsView([NAT, *ROB], lambda ln, m, n: arrays.get((ln, "natural", n)), {"transfer"},
                    N, 10, names)  # fmt: skip
    v.resamples = 300
    return v


def test_targeted_transfer_from_a_slightly_robust_source():
    from robustlens.study.claims.paper001 import check_targeted_transfer

    up = transfer_view({"natural": 0.1, "l2-0.25": 0.3})
    assert check_targeted_transfer(up, up.weights(N)).status == HOLDS
    down = transfer_view({"natural": 0.3, "l2-0.25": 0.1})
    assert check_targeted_transfer(down, down.weights(N)).status == FAILS
    none = transfer_view({})
    assert check_targeted_transfer(none, none.weights(N)).status == INCONCLUSIVE


def test_type_b_needs_constructed_models_and_checks_chance():
    from robustlens.models import ModelCard
    from robustlens.study.claims.paper001 import check_type_b

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
    assert check_type_b(v, v.weights(N)).status == HOLDS
    arrays = {k: base < 0.05 for k in arrays}
    v2 = ResultsView([NAT, *ROB, zero, neg], lambda ln, m, n: arrays.get((ln, m, n)),
                     {"universality"}, N, 10, names)  # fmt: skip
    v2.resamples = 300
    assert check_type_b(v2, v2.weights(N)).status == FAILS
    v3 = view({"natural2": 0.4})
    assert check_type_b(v3, v3.weights(N)).status == INCONCLUSIVE
