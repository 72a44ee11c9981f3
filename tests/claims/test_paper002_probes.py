"""The claims of Itazuri et al. (paper 002) on hand-made per-image probe results."""

from __future__ import annotations

import numpy as np

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, ResultsView, evaluate_claims
from robustlens.claims.paper002_probes import check_blur_gap, check_median, check_texture
from tests.claims.test_paper000 import model

N = 400
NAT = model("natural")
LINF = model("linf-0.1", "pgd", "linf", 0.1)
MODELS = [NAT, LINF]


def correct(p: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(N) < p


def graded(p: float, n: int) -> np.ndarray:
    """The ``round(p·n)`` easiest of ``n`` images correct, images ordered by one difficulty
    shared by every model and probe (as real images are: a hard image is hard everywhere)."""
    return np.arange(n) < round(p * n)


def view(accuracies: dict[str, dict[tuple[str, float], float]], n: int = N) -> ResultsView:
    """Independent random per-image draws at the given accuracies; ``graded`` ones for n ≠ N."""
    arrays = {}
    for i, (name, table) in enumerate(accuracies.items()):
        for j, ((probe, level), p) in enumerate(table.items()):
            draw = correct(p, 100 * i + j) if n == N else graded(p, n)
            arrays[("probes", name, f"correct/{probe}/{level:g}")] = draw

    def names(lens: str, m: str) -> list[str]:
        return [n for (ln, mn, n) in arrays if (ln, mn) == (lens, m)]

    v = ResultsView(MODELS, lambda ln, m, k: arrays.get((ln, m, k)), {"probes"}, n, 10, names)
    v.resamples = 300
    return v


def probes(clean, median5, blur, amplitude, edges):
    table = {("median_filter", 0): clean, ("median_filter", 5): median5}
    table[("gaussian_blur", 0)] = clean
    table.update({("gaussian_blur", s): a for s, a in blur.items()})
    table[("amplitude_swap", 1)] = amplitude
    table[("edge_map", 1)] = edges
    return table


def test_median_holds_when_the_robust_model_loses_less():
    v = view(
        {
            "natural": probes(0.9, 0.3, {1: 0.7}, 0.3, 0.3),
            "linf-0.1": probes(0.8, 0.7, {1: 0.6}, 0.6, 0.6),
        }
    )
    assert check_median(v).status == HOLDS
    assert check_texture(v).status == HOLDS


def test_median_fails_when_the_robust_model_loses_more():
    v = view(
        {
            "natural": probes(0.9, 0.8, {1: 0.7}, 0.8, 0.3),
            "linf-0.1": probes(0.8, 0.2, {1: 0.6}, 0.2, 0.6),
        }
    )
    assert check_median(v).status == FAILS
    verdict = check_texture(v)  # amplitude fails, edges hold → fails
    assert verdict.status == FAILS and "amplitude swap" in verdict.evidence


def test_blur_gap_holds_when_it_stays_and_fails_when_it_closes():
    # The gap is 0.1 at σ = 0, 1, 2. With graded images the natural model alone is right on
    # images [0.4n, 0.5n) ∪ [0.6n, 0.7n) ∪ [0.8n, 0.9n), so the per-image change of the gap is
    # −1, +½, +½ on those (mean exactly 0, variance 0.15): at n = 1000 the 95 % interval is
    # about ±1.96·√(0.15/1000) = ±0.024, inside the ±0.05 margin. (Independent draws at 400
    # images give ±0.07 and an inconclusive verdict.)
    stays = view(
        {
            "natural": probes(0.9, 0.5, {1: 0.7, 2: 0.5}, 0.5, 0.5),
            "linf-0.1": probes(0.8, 0.5, {1: 0.6, 2: 0.4}, 0.5, 0.5),
        },
        n=1000,
    )
    verdict = check_blur_gap(stays)
    assert verdict.status == HOLDS, verdict.evidence
    assert abs(verdict.numbers["linf-0.1"]["estimate"]) < 1e-12
    closes = view(
        {
            "natural": probes(0.9, 0.5, {1: 0.4, 2: 0.35}, 0.5, 0.5),
            "linf-0.1": probes(0.6, 0.5, {1: 0.6, 2: 0.55}, 0.5, 0.5),
        }
    )
    assert check_blur_gap(closes).status == FAILS


def test_blur_gap_holds_for_identical_behaviour():
    same = probes(0.9, 0.5, {1: 0.7, 2: 0.5}, 0.5, 0.5)
    arrays = {}
    for name in ("natural", "linf-0.1"):
        for j, ((probe, level), p) in enumerate(same.items()):
            arrays[("probes", name, f"correct/{probe}/{level:g}")] = correct(p, j)

    def names(lens, m):
        return [n for (ln, mn, n) in arrays if (ln, mn) == (lens, m)]

    v = ResultsView(MODELS, lambda ln, m, n: arrays.get((ln, m, n)), {"probes"}, N, 10, names)
    v.resamples = 300
    assert check_blur_gap(v).status == HOLDS


def test_claims_need_a_natural_and_a_robust_model_and_are_listed():
    v = view({"natural": probes(0.9, 0.3, {1: 0.7}, 0.3, 0.3)})
    v.models = [NAT]
    assert check_median(v).status == INCONCLUSIVE
    both = view(
        {
            "natural": probes(0.9, 0.3, {1: 0.7}, 0.3, 0.3),
            "linf-0.1": probes(0.8, 0.7, {1: 0.6}, 0.6, 0.6),
        }
    )
    ids = {c.id for c, _ in evaluate_claims(both, resamples=200)}
    assert {"002-4.1-median", "002-4.1-texture", "002-4.1-blur"} <= ids
