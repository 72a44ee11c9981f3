"""Paper 003's claims worked by hand: exact filter-quality evidence from constant bootstrap
draws, and the depth-shift decision rule on hand-made (KL, excess, p) tables, each comparison
on both sides."""

from __future__ import annotations

import numpy as np
import pytest

import robustlens.claims.paper003 as paper003
from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, Verdict
from robustlens.claims.paper003 import (
    CI_FILTERS,
    PERMUTATIONS,
    check_filter_quality,
    check_shift_by_depth,
)
from tests.claims.exact import model, point, run, view

NAT = model("natural")
NAT_B = model("natural-b")
R1 = model("linf-0.1", "pgd", "linf", 0.1)
R2 = model("l2-1", "pgd", "l2", 1.0)
B = 8
PAIR = "needs a natural and at least one robust model"


def quality(per_model: dict[str, dict[str, list[float]]], boots: int = B) -> dict:
    """Per model and metric, the per-layer values; every bootstrap draw equals them."""
    out = {}
    for name, metrics in per_model.items():
        for metric, layers in metrics.items():
            values = np.array(layers, dtype=np.float64)
            out[("filters", name, f"quality/{metric}")] = values
            out[("filters", name, f"quality_boot/{metric}")] = np.repeat(
                values[:, None], boots, axis=1
            )
    return out


def iv(x: float) -> dict:
    return {"estimate": x, "low": x, "high": x}


def test_filter_quality_exact_evidence_with_a_layer_without_values():
    nat = {"sparsity": [0.5, 0.25], "variance_entropy": [0.5, np.nan], "orthogonality": [0.5, 0.5]}
    other = {"sparsity": [1.0, 1.0], "variance_entropy": [1.0, 1.0], "orthogonality": [1.0, 1.0]}
    rob = {"sparsity": [0.25, 0.25], "variance_entropy": [0.75, 0.75], "orthogonality": [0.5, 0.5]}
    rob2 = {"sparsity": [0.0, 0.0], "variance_entropy": [1.0, 1.0], "orthogonality": [1.0, 1.0]}
    arrays = quality({"natural": nat, "natural-b": other, "linf-0.1": rob, "l2-1": rob2})
    v = view([NAT, NAT_B, R1, R2], arrays, 4)
    assert run(check_filter_quality, v) == Verdict(
        INCONCLUSIVE,
        f"sparsity (lower claimed; natural 0.375): linf-0.1 Δ {point(-0.125)}, l2-1 Δ "
        f"{point(-0.375)} → holds; variance entropy (higher claimed; natural 0.5): linf-0.1 Δ "
        f"{point(0.25)}, l2-1 Δ {point(0.5)} → holds; orthogonality (higher claimed; natural "
        f"0.5): linf-0.1 Δ {point(0)}, l2-1 Δ {point(0.5)} → inconclusive",
        CI_FILTERS,
        {
            "sparsity": {"linf-0.1": iv(-0.125), "l2-1": iv(-0.375), "natural": 0.375},
            "variance_entropy": {"linf-0.1": iv(0.25), "l2-1": iv(0.5), "natural": 0.5},
            "orthogonality": {"linf-0.1": iv(0.0), "l2-1": iv(0.5), "natural": 0.5},
        },
    )


@pytest.mark.parametrize(
    ("rob", "status"),
    [
        ({"sparsity": [0.25], "variance_entropy": [0.75], "orthogonality": [0.75]}, HOLDS),
        ({"sparsity": [0.75], "variance_entropy": [0.75], "orthogonality": [0.75]}, FAILS),
        ({"sparsity": [0.25], "variance_entropy": [0.25], "orthogonality": [0.75]}, FAILS),
    ],
)
def test_filter_quality_directions(rob, status):
    nat = {"sparsity": [0.5], "variance_entropy": [0.5], "orthogonality": [0.5]}
    v = view([NAT, R1], quality({"natural": nat, "linf-0.1": rob}), 4)
    assert run(check_filter_quality, v).status == status


def test_filter_quality_draws_that_cannot_be_paired_give_no_interval():
    nat = {m: [0.5] for m in ("sparsity", "variance_entropy", "orthogonality")}
    rob = {"sparsity": [0.25], "variance_entropy": [0.75], "orthogonality": [0.75]}
    arrays = quality({"natural": nat}) | quality({"linf-0.1": rob}, boots=B + 1)
    verdict = run(check_filter_quality, view([NAT, R1], arrays, 4))
    assert verdict.status == INCONCLUSIVE
    assert verdict.evidence.startswith(
        "sparsity (lower claimed; natural 0.5): linf-0.1 Δ -0.25 [nan, nan]"
    )


@pytest.mark.parametrize("models", [[NAT], [R1]])
def test_filter_claims_need_a_natural_and_a_robust_model(models):
    for check in (check_filter_quality, check_shift_by_depth):
        assert run(check, view(models, {}, 4)) == Verdict(INCONCLUSIVE, PAIR)


# ----------------------------------------------------------------------------- depth shift

SHIFT_CI = (
    f"permutation test, {PERMUTATIONS} label shuffles of each group's filters; "
    "excess = KL − mean shuffled KL"
)


@pytest.fixture
def shifts(monkeypatch):
    """Replace the divergence computation by hand-made tables: the pooled one, and one per
    robust model (keyed by the model's name)."""
    tables: dict[str, dict] = {}
    calls: list[list[str]] = []

    def fake_filters(view, name):
        return name

    def fake_shifts(robust, natural, seed):
        """The first call of a check pools every robust model; later ones take one each."""
        assert natural == ["natural"] and seed == 0
        calls.append(robust)
        return tables["pooled"] if len(calls) == 1 else tables[robust[0]]

    tables["calls"] = calls  # type: ignore[assignment]
    monkeypatch.setattr(paper003, "_filters", fake_filters)
    monkeypatch.setattr(paper003, "_shifts", fake_shifts)
    return tables


def reset(tables, pooled: dict) -> None:
    tables["calls"].clear()
    tables["pooled"] = pooled


def decide(tables, pooled: dict, per_model: dict | None = None) -> Verdict:
    reset(tables, pooled)
    tables.update(per_model or {"linf-0.1": {}})
    return run(check_shift_by_depth, view([NAT, R1], {}, 4))


MIDDLE = {"d3 (3x3)": (0.5, 0.5, 0.01), "d5 (3x3)": (0.25, 0.25, 0.2)}


def table(first=None, deepest=None, middle=MIDDLE, deep_label="d10 (3x3)") -> dict:
    out = {} if first is None else {"first (3x3)": (1.0, *first)}
    out |= middle
    if deepest is not None:
        out[deep_label] = (1.0, *deepest)
    return out


@pytest.mark.parametrize(
    ("first", "deepest", "status"),
    [
        ((1.0, 0.01), (1.0, 0.01), HOLDS),
        ((0.5, 0.01), (1.0, 0.01), INCONCLUSIVE),  # first ties the top middle group
        ((1.0, 0.05), (1.0, 0.01), INCONCLUSIVE),  # p at α is not significant
        ((1.0, 0.01), (0.5, 0.01), INCONCLUSIVE),
        ((0.25, 0.01), (1.0, 0.01), FAILS),  # below a significant middle group
        ((1.0, 0.01), (0.25, 0.5), FAILS),
        (None, (1.0, 0.01), INCONCLUSIVE),  # no first layer
        ((1.0, 0.01), None, INCONCLUSIVE),
    ],
)
def test_shift_decision_on_either_side(shifts, first, deepest, status):
    verdict = decide(shifts, table(first, deepest))
    assert verdict.status == status, verdict.evidence


def test_shift_deepest_groups_and_significance_of_the_top_middle(shifts):
    # d9 counts among the deepest 20 %
    assert decide(shifts, table((1.0, 0.01), (1.0, 0.01), deep_label="d9 (3x3)")).status == HOLDS
    # d8 is a middle group: it is the top middle one and beats nothing
    assert decide(shifts, table((1.0, 0.01), (1.0, 0.01), deep_label="d8 (3x3)")).status == (
        INCONCLUSIVE
    )
    # the top middle group is not significant, another middle one is: no failure
    middle = {"d3 (3x3)": (0.5, 0.5, 0.2), "d5 (3x3)": (0.25, 0.25, 0.01)}
    assert decide(shifts, table((0.3, 0.01), (1.0, 0.01), middle)).status == INCONCLUSIVE
    # nor when the top middle group's p is α itself
    middle = {"d3 (3x3)": (0.5, 0.5, 0.05), "d5 (3x3)": (0.25, 0.25, 0.2)}
    assert decide(shifts, table((0.3, 0.01), (1.0, 0.01), middle)).status == INCONCLUSIVE
    # of a group's kernels the largest excess speaks for it
    pooled = table((1.0, 0.01), (1.0, 0.01)) | {"first (5x5)": (0.1, 0.1, 0.5)}
    assert decide(shifts, pooled).status == HOLDS


def test_shift_exact_evidence(shifts):
    pooled = table((1.0, 0.01), (0.75, 0.02))
    per_model = {"linf-0.1": table((0.5, 0.2), (1.0, 0.01)), "l2-1": {}}
    reset(shifts, pooled)
    shifts.update(per_model)
    verdict = run(check_shift_by_depth, view([NAT, R1, R2], {}, 4))
    listing = (
        "first (3x3): KL 1, excess 1, p 0.01, d3 (3x3): KL 0.5, excess 0.5, p 0.01, "
        "d5 (3x3): KL 0.25, excess 0.25, p 0.2, d10 (3x3): KL 1, excess 0.75, p 0.02"
    )
    assert verdict == Verdict(
        HOLDS,
        f"robust (pooled) vs natural, by depth group: {listing}; largest excess per model: "
        "linf-0.1 peaks at d10 (3x3)",
        SHIFT_CI,
        {label: {"kl": kl, "excess": ex, "p": p} for label, (kl, ex, p) in pooled.items()},
    )
    shifts["l2-1"] = table((0.9, 0.01), (0.1, 0.01))
    reset(shifts, pooled)
    verdict = run(check_shift_by_depth, view([NAT, R1, R2], {}, 4))
    assert verdict.evidence.endswith(
        "largest excess per model: linf-0.1 peaks at d10 (3x3), l2-1 peaks at first (3x3)"
    )


def test_shift_without_middle_groups_lists_what_it_found(shifts):
    verdict = decide(shifts, table((1.0, 0.01), (1.0, 0.01), middle={}))
    assert verdict == Verdict(
        INCONCLUSIVE,
        "KL by depth: first (3x3): KL 1, excess 1, p 0.01, d10 (3x3): KL 1, excess 1, p 0.01; "
        "needs layers between the first and the deepest 20 % to compare with (a deeper model, "
        "e.g. studies/filters-resnet20.toml)",
    )
    assert decide(shifts, {}).evidence.startswith("KL by depth: none; needs layers")


def stored_filters(shift: float, seed: int, small_kernel: bool) -> dict:
    """3×3 filters of four depth groups (the robust ones shifted in the first group), and,
    with ``small_kernel``, a single 1×1 filter: too few for a divergence of its own."""
    rng = np.random.default_rng(seed)
    out, index = {}, []
    for g in ("first", "d3", "d5", "d10"):
        name = f"filters/{g}/3x3/conv_{g}"
        out[name] = rng.standard_normal((200, 9)) + (shift if g == "first" else 0.0)
        index.append(name)
    if small_kernel:
        out["filters/d3/1x1/conv_pw"] = rng.standard_normal((1, 1))
        index.append("filters/d3/1x1/conv_pw")
    out["filters/index"] = np.array(index)
    return out


def test_shift_from_stored_filters_labels_groups_by_kernel_and_uses_every_shuffle():
    arrays = {}
    for i, (name, shift) in enumerate((("natural", 0.0), ("linf-0.1", 2.0))):
        for key, a in stored_filters(shift, i, small_kernel=True).items():
            arrays[("filters", name, key)] = a
    verdict = run(check_shift_by_depth, view([NAT, R1], arrays, 4))
    assert list(verdict.numbers) == ["first (3x3)", "d3 (3x3)", "d5 (3x3)", "d10 (3x3)"]
    # the strongly shifted first layer beats every shuffle: p = 1 / (1 + shuffles)
    assert verdict.numbers["first (3x3)"]["p"] == 1 / (1 + PERMUTATIONS)
    assert verdict.evidence.endswith("largest excess per model: linf-0.1 peaks at first (3x3)")
    again = run(check_shift_by_depth, view([NAT, R1], arrays, 4))
    assert again.numbers == verdict.numbers  # seeded shuffles


def test_shift_follows_the_views_seed_and_passes_over_a_model_without_filters():
    arrays = {}
    for i, (name, shift) in enumerate((("natural", 0.0), ("linf-0.1", 2.0))):
        for key, a in stored_filters(shift, i, small_kernel=False).items():
            arrays[("filters", name, key)] = a
    # l2-1 stored no filters (its lens unit left nothing): the others are still compared
    v = view([NAT, R1, R2], arrays, 4)
    seeded = run(check_shift_by_depth, v)
    assert list(seeded.numbers) == ["first (3x3)", "d3 (3x3)", "d5 (3x3)", "d10 (3x3)"]
    assert seeded.evidence.endswith("largest excess per model: linf-0.1 peaks at first (3x3)")
    v.seed = 3
    reseeded = run(check_shift_by_depth, v)
    assert reseeded.numbers["d3 (3x3)"]["excess"] != seeded.numbers["d3 (3x3)"]["excess"]
    assert reseeded.numbers["d3 (3x3)"]["kl"] == seeded.numbers["d3 (3x3)"]["kl"]
