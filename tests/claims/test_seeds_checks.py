"""Every check that compares models judges settings trained with several seeds as one setting,
pooled over its replicates (hierarchical bootstrap over seeds × images).

One table, one case per claim: hand-made per-model results for the roles *natural*, *good* (a
robust model that shows the claimed effect), *bad* (one that shows the opposite) and fixed
extra settings. Per-image values are constant, so every interval spans exactly the values of
the drawn seeds. For each case:

(a) a study of one model per setting (natural + good) holds; the same study with two agreeing
    seeds per setting gives the same verdict and, but for the seed count in each setting's
    label, the same evidence;
(b) a robust setting whose seeds disagree (good and bad) is inconclusive: its pooled
    estimate still lies on the claimed side, but the seeds' interval spans the line (judging
    each replicate as a model of its own, as before, the bad seed made the claim fail; taking
    the first replicate only, it held);
(c) the verdict says how many seeds stand behind it, and that its interval is hierarchical.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import robustlens.claims.paper004 as paper004
from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, Verdict, evaluate_claims
from robustlens.claims.paper001 import check_targeted_transfer, check_type_b, check_universality
from robustlens.claims.paper002_ensemble import check_fusion
from robustlens.claims.paper002_probes import check_blur_gap, check_median, check_texture
from robustlens.claims.paper002_saliency import check_guided_sanity, check_high_frequency
from robustlens.claims.paper003 import check_filter_quality, check_shift_by_depth
from robustlens.claims.paper004 import (
    check_a_distance,
    check_boundary,
    check_norm_ratio,
    check_svcca,
)
from robustlens.lenses.base import StudyModel
from tests.claims.exact import model, view
from tests.claims.test_paper003_exact import stored_filters

N = 12
RESAMPLES = 200
NAT = model("natural")
ROB = model("linf-0.1", "pgd", "linf", 0.1)
L2 = model("l2-1", "pgd", "l2", 1.0)
HIERARCHICAL = "95 % hierarchical bootstrap CI over seeds (up to 2 per setting)"

Roles = list[tuple[StudyModel, str]]
"""The models of a study, each with its role: natural, good, bad or fixed."""


def const(value: float) -> np.ndarray:
    return np.full(N, value, dtype=np.float64)


def replicate(base: StudyModel, seed: int) -> StudyModel:
    """``base`` trained with another seed: ``name@s<seed>`` of setting ``name``."""
    return dataclasses.replace(base, name=f"{base.name}@s{seed}", setting=base.name)


@dataclass
class Case:
    """A claim, the study it needs (natural and robust settings, fixed extras) and the
    arrays of a study given each model's role."""

    claim: str
    check: Callable
    build: Callable[[Roles], dict]
    robust: StudyModel = field(default_factory=lambda: ROB)
    natural: list[StudyModel] = field(default_factory=lambda: [NAT])
    extra: list[tuple[StudyModel, str]] = field(default_factory=list)
    same_evidence: bool = True
    """Whether the evidence of two agreeing seeds reads as one seed's but for the labels."""
    num_classes: int = 10


def single(case: Case, role: str = "good") -> Roles:
    return [*((m, "natural") for m in case.natural), (case.robust, role), *case.extra]


def seeded(case: Case, second: str) -> Roles:
    """Two seeds of every setting; the robust one's second seed plays ``second``."""
    out: Roles = []
    for base, role in single(case):
        for seed in (0, 1):
            out.append(
                (
                    replicate(base, seed),
                    second if (base.name, seed) == (case.robust.name, 1) else role,
                )
            )
    return out


def study(case: Case, roles: Roles):
    return view(
        [m for m, _ in roles],
        case.build(roles),
        N,
        resamples=RESAMPLES,
        num_classes=case.num_classes,
    )


# ----------------------------------------------------------------------------- builders


def universality(roles: Roles) -> dict:
    """The first natural model evaluates R from every other model: 0.2 on R_0, 0.8 on R from
    a good source, 0 from a bad one."""
    evaluator = roles[0][0].name
    acc = {"natural": 0.2, "good": 0.8, "bad": 0.0}
    return {
        ("universality", evaluator, f"correct/{evaluator}/{m.name}"): const(acc[role])
        for m, role in roles[1:]
    }


def transfer(roles: Roles) -> dict:
    """Targeted success on the victim ``mlp`` (no model of the study): 0.2 from natural
    sources, 0.8 from a good robust source, 0 from a bad one."""
    anchor = roles[0][0].name
    hit = {"natural": 0.2, "good": 0.8, "bad": 0.0}
    return {("transfer", anchor, f"hit/mlp/{m.name}"): const(hit[r]) for m, r in roles}


ZERO = model("zero", train_on={"set": "zero", "source": "natural"})


def type_b(roles: Roles) -> dict:
    """Models trained on zero-robust sets: accuracy 0.6 (good) or 0 (bad, below chance 0.1)
    on R from the robust source."""
    sources = [m for m, r in roles if r == "fixed"]
    acc = {"good": 0.6, "bad": 0.0}
    return {
        ("universality", m.name, f"correct/{m.name}/{s.name}"): const(acc[r])
        for m, r in roles
        if r in acc
        for s in sources
    }


def probes(levels: dict[str, dict[tuple[str, float], float]]) -> Callable[[Roles], dict]:
    def build(roles: Roles) -> dict:
        return {
            ("probes", m.name, f"correct/{probe}/{level:g}"): const(acc)
            for m, role in roles
            for (probe, level), acc in levels[role].items()
        }

    return build


MEDIAN = probes(
    {  # natural loses 0.6; good loses 0.1 and ends ahead by 0.4, bad loses 0.7, behind by 0.2
        "natural": {("median_filter", 0): 1.0, ("median_filter", 5): 0.4},
        "good": {("median_filter", 0): 0.9, ("median_filter", 5): 0.8},
        "bad": {("median_filter", 0): 0.9, ("median_filter", 5): 0.2},
    }
)
TEXTURE = probes(
    {  # natural loses 0.6 under the edge map; good 0.1, bad 0.7
        "natural": {("median_filter", 0): 1.0, ("edge_map", 1): 0.4},
        "good": {("median_filter", 0): 0.9, ("edge_map", 1): 0.8},
        "bad": {("median_filter", 0): 0.9, ("edge_map", 1): 0.2},
    }
)
BLUR = probes(
    {  # the gap stays (good) or grows by 0.3 (bad), outside the ±0.05 margin
        "natural": {("gaussian_blur", 0): 1.0, ("gaussian_blur", 1): 1.0},
        "good": {("gaussian_blur", 0): 0.8, ("gaussian_blur", 1): 0.8},
        "bad": {("gaussian_blur", 0): 0.8, ("gaussian_blur", 1): 0.5},
    }
)


def high_frequency(roles: Roles) -> dict:
    """High-frequency share 0.5 (natural), 0.3 (good: smoother), 0.6 (bad)."""
    share = {"natural": 0.5, "good": 0.3, "bad": 0.6}
    return {("saliency", m.name, "high_frequency/grad"): const(share[r]) for m, r in roles}


def sanity(roles: Roles) -> dict:
    """Spearman after full randomisation 0.1 (good, below the threshold 0.5), 0.9 (bad)."""
    last = {"natural": 0.1, "good": 0.1, "bad": 0.9}
    out = {}
    for m, r in roles:
        out[("saliency", m.name, "sanity/guided/spearman")] = np.stack([const(1.0), const(last[r])])
        out[("saliency", m.name, "sanity/threshold")] = np.array([0.5])
    return out


def fusion(roles: Roles) -> dict:
    """Natural 0.6, robust 0.5 alone; a pair with a good robust member 0.8 (+0.2 over the
    better single model), with a bad one 0.5 (−0.1, beyond the 1-point margin)."""
    anchor = roles[0][0].name
    out = {}
    for n, nr in roles:
        out[("ensemble", anchor, f"correct/t/{n.name}")] = const(0.6 if nr == "natural" else 0.5)
        if nr != "natural":
            continue
        for r, rr in roles:
            if rr != "natural":
                pair = const(0.8 if rr == "good" else 0.5)
                out[("ensemble", anchor, f"correct/t/{n.name}+{r.name}")] = pair
    return out


FILTERS = {  # layer means: fewer sparse filters, more entropy, more orthogonal (good)
    "natural": {"sparsity": 0.2, "variance_entropy": 0.5, "orthogonality": 0.5},
    "good": {"sparsity": 0.1, "variance_entropy": 0.7, "orthogonality": 0.7},
    "bad": {"sparsity": 0.25, "variance_entropy": 0.2, "orthogonality": 0.4},
}


def filters(roles: Roles) -> dict:
    """Two layers per model, every bootstrap draw equal to its value (200 draws, the lens's
    default: the seeds are drawn as often as the lens drew filters)."""
    out = {}
    for m, r in roles:
        for metric, value in FILTERS[r].items():
            out[("filters", m.name, f"quality/{metric}")] = np.full(2, value)
            out[("filters", m.name, f"quality_boot/{metric}")] = np.full((2, 200), value)
    return out


def ratios(roles: Roles) -> dict:
    """‖δ‖₂/‖δ‖∞ / √d: L∞ 0.6 and L2 0.3 (good: C1(L∞) − C2(L2) = 0.3), or L∞ 0.3 and L2 0.5
    (bad: −0.2)."""
    per = {"natural": (0.6, 0.3), "good": (0.6, 0.3), "bad": (0.3, 0.5)}
    out = {}
    for m, r in roles:
        linf, l2 = per[r]
        out[("norm_ratio", m.name, "ratio/pgd linf 0.03 20")] = 4.0 * const(linf)
        out[("norm_ratio", m.name, "ratio/pgd l2 0.25 20")] = 4.0 * const(l2)
        out[("norm_ratio", m.name, "sqrt_d")] = np.array([4.0])
    return out


SVCCA_VALUES = {  # per role: SVCCA under L∞ and L2 attacks (L∞ the lowest)
    "natural": (0.3, 0.5),
    "good": (0.6, 0.8),
    "bad": (0.1, 0.2),
}


def svcca(roles: Roles) -> dict:
    """SVCCA per attack with 100 paired draws of the lens, all equal to the value."""
    out = {}
    for m, r in roles:
        for key, value in zip(("pgd linf 0.03 20", "pgd l2 0.5 20"), SVCCA_VALUES[r], strict=True):
            out[("similarity", m.name, f"svcca/{key}")] = np.array([value])
            out[("similarity", m.name, f"svcca_boot/{key}")] = np.full(100, value)
    return out


def distances(roles: Roles) -> dict:
    """DeepFool L2 distances: natural 1, the L∞ model 1.2, the L2 model 2 (good) or 0.5
    (bad); the natural model's first image did not cross."""
    d = {"natural": 1.0, "fixed": 1.2, "good": 2.0, "bad": 0.5}
    out = {}
    for m, r in roles:
        values = const(d[r])
        if r == "natural":
            values[0] = np.nan
        out[("boundary", m.name, "distance/l2")] = values
    return out


A_VALUES = {"natural": (1.5, 1.5), "good": (0.5, 1.0), "bad": (1.8, 1.9)}
"""A-distance (L2, L∞) per role: the good robust model closer, not at 0, and L∞ the furthest."""


def a_distances(roles: Roles) -> dict:
    """Only the lens names: the A-distances themselves come from ``A_VALUES`` (the refit is
    tested in test_paper004*; here only the pooling of settings)."""
    return {("loss_dist", m.name, "stand-in"): np.zeros(1) for m, _ in roles}


CASES = [
    Case("001-5.1-universality", check_universality, universality, same_evidence=False,
         natural=[NAT, model("natural-b")]),
    Case("001-5.2-targeted-transfer", check_targeted_transfer, transfer),
    Case("001-4-type-b", check_type_b, type_b, robust=ZERO, natural=[], extra=[(ROB, "fixed")]),
    Case("002-4.1-median", check_median, MEDIAN),
    Case("002-4.1-texture", check_texture, TEXTURE),
    Case("002-4.1-blur", check_blur_gap, BLUR),
    Case("002-3.4-frequency", check_high_frequency, high_frequency),
    Case("002-A-guided-sanity", check_guided_sanity, sanity, natural=[]),
    Case("002-4.2-fusion", check_fusion, fusion),
    Case("003-4.3-quality", check_filter_quality, filters),
    Case("004-3.2-ratio", check_norm_ratio, ratios, same_evidence=False),
    Case("004-4.1-svcca", check_svcca, svcca),
    Case("004-5-boundary", check_boundary, distances, robust=L2, extra=[(ROB, "fixed")],
         same_evidence=False),
    Case("004-3.3-adistance", check_a_distance, a_distances),
]  # fmt: skip


@pytest.fixture(autouse=True)
def given_a_distances(monkeypatch):
    """A-distances by role, constant over resamples: the claim's pooling without the refit."""
    role_of: dict[str, str] = {}

    def fake(view, name: str, norm: str):
        value = A_VALUES[role_of[name]][0 if norm == "l2" else 1]
        return value, np.full(view.resamples, value)

    monkeypatch.setattr(paper004, "_a_distance", fake)
    return role_of


def judge(case: Case, roles: Roles, role_of: dict[str, str]) -> Verdict:
    role_of.update({m.name: r for m, r in roles})
    return case.check(study(case, roles))


def unlabelled(evidence: str, case: Case) -> str:
    """Seeded evidence as one seed's: each setting's label back to its model's name."""
    for base, _ in single(case):
        evidence = evidence.replace(f"{base.name} (2 seeds)", base.name)
    return evidence


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.claim)
def test_two_agreeing_seeds_read_as_one_seed(case, given_a_distances):
    one = judge(case, single(case), given_a_distances)
    assert one.status == HOLDS, one.evidence
    assert judge(case, single(case, "bad"), given_a_distances).status == FAILS
    two = judge(case, seeded(case, "good"), given_a_distances)
    assert two.status == one.status, two.evidence
    assert f"{case.robust.name} (2 seeds)" in two.evidence
    assert two.interval.startswith(HIERARCHICAL) and not one.interval.startswith(HIERARCHICAL)
    if case.same_evidence:
        assert unlabelled(two.evidence, case) == one.evidence
        assert two.numbers == one.numbers


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.claim)
def test_seeds_that_disagree_leave_the_claim_open(case, given_a_distances):
    verdict = judge(case, seeded(case, "bad"), given_a_distances)
    assert verdict.status == INCONCLUSIVE, verdict.evidence
    assert f"{case.robust.name} (2 seeds)" in verdict.evidence


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.claim)
def test_the_verdict_says_how_many_seeds_stand_behind_it(case, given_a_distances):
    for roles, text in ((single(case), "single seed"), (seeded(case, "bad"), "2 seeds")):
        given_a_distances.update({m.name: r for m, r in roles})
        verdicts = {c.id: v for c, v in evaluate_claims(study(case, roles), resamples=RESAMPLES)}
        verdict = verdicts[case.claim]
        assert verdict.seeds_text == text and verdict.seeds == (1 if text == "single seed" else 2)
        assert verdict.status == case.check(study(case, roles)).status


def test_victims_trained_with_seeds_are_one_victim_setting():
    """Two seeds of the victim ``cnn`` (a model of the study, not a source): one transfer
    comparison for the setting, whose seeds disagree, where each victim seed alone decides."""
    cnn = model("cnn", arch="cnn-b")
    victims = [replicate(cnn, 0), replicate(cnn, 1)]
    hits = {
        "cnn@s0": {"natural": 0.2, "linf-0.1": 0.8},
        "cnn@s1": {"natural": 0.5, "linf-0.1": 0.3},
    }
    arrays = {
        ("transfer", "natural", f"hit/{v}/{s}"): const(h)
        for v, per in hits.items()
        for s, h in per.items()
    }
    verdict = check_targeted_transfer(view([NAT, ROB, *victims], arrays, N, resamples=RESAMPLES))
    assert verdict.status == INCONCLUSIVE, verdict.evidence
    assert "cnn (2 seeds): 0.550 vs 0.350, Δ 0.2 [-0.2, 0.6]" in verdict.evidence
    assert set(verdict.numbers) == {"natural", "robust", "norm", "cnn"}


def test_the_filter_shift_names_each_robust_settings_peak_once():
    """003-4.2 pools every robust model's filters into its permutation test (as before);
    the peak it lists beside the verdict is per setting, from the filters of all its seeds."""
    arrays = {}
    robust = [replicate(ROB, 0), replicate(ROB, 1)]
    for i, (m, shift) in enumerate(((NAT, 0.0), (robust[0], 2.0), (robust[1], 2.0))):
        for key, a in stored_filters(shift, i, small_kernel=False).items():
            arrays[("filters", m.name, key)] = a
    verdict = check_shift_by_depth(view([NAT, *robust], arrays, 4))
    assert verdict.evidence.endswith(
        "largest excess per model: linf-0.1 (2 seeds) peaks at first (3x3)"
    )
