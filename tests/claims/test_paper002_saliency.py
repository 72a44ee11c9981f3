"""The saliency claims of Itazuri et al. (paper 002) on hand-made per-image numbers."""

from __future__ import annotations

import numpy as np

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, ResultsView
from robustlens.claims.paper002_saliency import check_guided_sanity, check_high_frequency
from tests.claims.test_paper000 import model

N = 200
NAT = model("natural")
LINF = model("linf-0.1", "pgd", "linf", 0.1)
MODELS = [NAT, LINF]


def view(arrays: dict) -> ResultsView:
    def names(lens, m):
        return [n for (ln, mn, n) in arrays if (ln, mn) == (lens, m)]

    v = ResultsView(MODELS, lambda ln, m, n: arrays.get((ln, m, n)), {"saliency"}, N, 10, names)
    v.resamples = 300
    return v


def hf(values: dict[str, dict[str, float]]) -> dict:
    rng = np.random.default_rng(0)
    return {
        ("saliency", name, f"high_frequency/{method}"): mean + 0.05 * rng.standard_normal(N)
        for name, per in values.items()
        for method, mean in per.items()
    }


def test_high_frequency_holds_when_robust_maps_are_smoother_for_every_method():
    v = view(
        hf(
            {
                "natural": {"vanilla": 0.4, "guided": 0.5},
                "linf-0.1": {"vanilla": 0.2, "guided": 0.3},
            }
        )
    )
    assert check_high_frequency(v).status == HOLDS


def test_high_frequency_fails_when_one_method_goes_the_other_way():
    v = view(
        hf(
            {
                "natural": {"vanilla": 0.4, "guided": 0.3},
                "linf-0.1": {"vanilla": 0.2, "guided": 0.5},
            }
        )
    )
    verdict = check_high_frequency(v)
    assert verdict.status == FAILS and "guided" in verdict.evidence


def sanity(last: dict[str, float]) -> dict:
    rng = np.random.default_rng(1)
    out = {}
    for name, mean in last.items():
        curve = np.stack([np.full(16, 0.9), mean + 0.02 * rng.standard_normal(16)])
        out[("saliency", name, "sanity/guided/spearman")] = curve
        out[("saliency", name, "sanity/threshold")] = np.array([0.5])
    return out


def test_guided_sanity_holds_fails_or_is_inconclusive_by_the_last_step():
    holds = view(sanity({"natural": 0.1, "linf-0.1": 0.2}))
    assert check_guided_sanity(holds).status == HOLDS
    fails = view(sanity({"natural": 0.1, "linf-0.1": 0.9}))
    assert check_guided_sanity(fails).status == FAILS
    none = view({})
    assert check_guided_sanity(none).status == INCONCLUSIVE
