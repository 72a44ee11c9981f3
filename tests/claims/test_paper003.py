"""The claims of Gavrikov & Keuper (paper 003) on hand-made filter results with known answers."""

from __future__ import annotations

import numpy as np

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, ResultsView, evaluate_claims
from robustlens.claims.paper003 import check_filter_quality, check_shift_by_depth
from tests.claims.test_paper000 import model

NAT = model("natural")
LINF = model("linf-0.1", "pgd", "linf", 0.1)
L2 = model("l2-1.5", "pgd", "l2", 1.5)
MODELS = [NAT, LINF, L2]
B = 200


def view(arrays: dict[tuple[str, str, str], np.ndarray]) -> ResultsView:
    def names(lens: str, m: str) -> list[str]:
        return [name for (ln, mn, name) in arrays if (ln, mn) == (lens, m)]

    v = ResultsView(
        MODELS, lambda lens, m, name: arrays.get((lens, m, name)), {"filters"}, 100, 10, names
    )
    v.resamples = B
    return v


def quality(values: dict[str, dict[str, float]], spread: float = 0.01) -> dict:
    """Two layers per model with the given metric means and bootstrap draws around them."""
    out = {}
    rng = np.random.default_rng(0)
    for name, metrics in values.items():
        for metric, v in metrics.items():
            layers = np.array([v, v])
            out[("filters", name, f"quality/{metric}")] = layers
            out[("filters", name, f"quality_boot/{metric}")] = layers[:, None] + spread * (
                rng.standard_normal((2, B)) if spread else 0
            )
    return out


GOOD = {"sparsity": 0.05, "variance_entropy": 0.8, "orthogonality": 0.7}
POOR = {"sparsity": 0.3, "variance_entropy": 0.6, "orthogonality": 0.5}


def test_quality_holds_when_every_robust_model_is_better_on_all_three():
    v = view(quality({"natural": POOR, "linf-0.1": GOOD, "l2-1.5": GOOD}))
    verdict = check_filter_quality(v)
    assert verdict.status == HOLDS, verdict.evidence
    assert abs(verdict.numbers["sparsity"]["linf-0.1"]["estimate"] - (0.05 - 0.3)) < 1e-12


def test_quality_fails_when_one_metric_goes_the_other_way():
    worse = {**GOOD, "orthogonality": 0.3}
    v = view(quality({"natural": POOR, "linf-0.1": GOOD, "l2-1.5": worse}))
    verdict = check_filter_quality(v)
    assert verdict.status == FAILS
    assert "orthogonality" in verdict.evidence


def test_quality_without_sparse_filters_rests_on_entropy_and_orthogonality():
    """No model has sparse filters: "fewer" cannot be shown, the sparsity part is left out
    (it used to make the claim inconclusive for ever) and the other two decide."""
    nat = {**POOR, "sparsity": 0.0}
    rob = {**GOOD, "sparsity": 0.0}
    v = view(quality({"natural": nat, "linf-0.1": rob, "l2-1.5": rob}, spread=0.0))
    verdict = check_filter_quality(v)
    assert verdict.status == HOLDS, verdict.evidence
    assert "left out: neither model has sparse filters" in verdict.evidence
    flat = {**GOOD, "sparsity": 0.0, "orthogonality": 0.3}  # less orthogonal than natural
    v = view(quality({"natural": nat, "linf-0.1": rob, "l2-1.5": flat}, spread=0.0))
    assert check_filter_quality(v).status == FAILS


def filters(shifts: dict[str, float], seed: int, groups=("first", "d3", "d5", "d10")) -> dict:
    """One 3×3 layer per depth group; coefficients shifted by ``shifts[group]``."""
    rng = np.random.default_rng(seed)
    out, index = {}, []
    for g in groups:
        name = f"filters/{g}/3x3/conv_{g}"
        f = rng.standard_normal((400, 9)) + shifts.get(g, 0.0)
        out[name] = f
        index.append(name)
    out["filters/index"] = np.array(index)
    return out


def shift_view(robust_shifts: dict[str, float], groups=("first", "d3", "d5", "d10")) -> ResultsView:
    arrays = {}
    for i, m in enumerate(MODELS):
        shifts = {} if m.is_natural else robust_shifts
        for name, a in filters(shifts, seed=i, groups=groups).items():
            arrays[("filters", m.name, name)] = a
    return view(arrays)


def test_shift_holds_when_first_and_deepest_layers_move_most():
    v = shift_view({"first": 1.5, "d10": 1.0, "d3": 0.1})
    verdict = check_shift_by_depth(v)
    assert verdict.status == HOLDS, verdict.evidence
    div = {k: v["excess"] for k, v in verdict.numbers.items()}
    assert div["first (3x3)"] > div["d10 (3x3)"] > div["d3 (3x3)"]


def test_shift_fails_when_a_middle_layer_moves_most():
    v = shift_view({"first": 0.2, "d5": 1.5, "d10": 0.2})
    assert check_shift_by_depth(v).status == FAILS


def test_shift_is_inconclusive_without_middle_layers():
    v = shift_view({"first": 1.0, "d10": 1.0}, groups=("first", "d10"))
    verdict = check_shift_by_depth(v)
    assert verdict.status == INCONCLUSIVE
    assert "deeper model" in verdict.evidence


def test_claims_of_003_are_evaluated_when_the_study_ran_the_filters_lens():
    arrays = {}
    for i, m in enumerate(MODELS):
        for name, a in filters({} if m.is_natural else {"first": 1.5, "d10": 1.0}, i).items():
            arrays[("filters", m.name, name)] = a
    arrays.update(quality({"natural": POOR, "linf-0.1": GOOD, "l2-1.5": GOOD}))
    ids = {
        claim.id: verdict.status for claim, verdict in evaluate_claims(view(arrays), resamples=B)
    }
    assert ids == {"003-4.3-quality": HOLDS, "003-4.2-shift": HOLDS}
