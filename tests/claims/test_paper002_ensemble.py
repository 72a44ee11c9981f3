"""The late-fusion claim of Itazuri et al. (paper 002) on hand-made probe results."""

from __future__ import annotations

import numpy as np

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, ResultsView
from robustlens.claims.paper002_ensemble import check_fusion
from tests.claims.test_paper000 import model

N = 300
NAT = model("natural")
ROB = model("linf-0.1", "pgd", "linf", 0.1)


def view(acc: dict[str, dict[str, float]]) -> ResultsView:
    arrays = {}
    for t, (target, per) in enumerate(acc.items()):
        base = np.random.default_rng(t).random(N)
        for name, p in per.items():
            # nested draws: a more accurate combination is right wherever a less accurate one is
            arrays[("ensemble", "natural", f"correct/{target}/{name}")] = base < p

    def names(lens, m):
        return [n for (ln, mn, n) in arrays if ln == lens]

    v = ResultsView([NAT, ROB], lambda ln, m, n: arrays.get((ln, "natural", n)), {"ensemble"},
                    N, 10, names)  # fmt: skip
    v.resamples = 300
    return v


def per(nat, rob, fused):
    return {"natural": nat, "linf-0.1": rob, "natural+linf-0.1": fused}


def test_fusion_holds_on_most_targets():
    v = view({"a": per(0.6, 0.5, 0.7), "b": per(0.6, 0.7, 0.72), "c": per(0.5, 0.5, 0.3)})
    assert check_fusion(v).status == HOLDS


def test_fusion_fails_when_most_targets_are_worse():
    v = view({"a": per(0.6, 0.5, 0.4), "b": per(0.6, 0.7, 0.5), "c": per(0.5, 0.5, 0.6)})
    assert check_fusion(v).status == FAILS


def test_fusion_needs_both_kinds_of_model():
    v = view({"a": per(0.6, 0.5, 0.7)})
    v.models = [NAT]
    assert check_fusion(v).status == INCONCLUSIVE
