"""Verdicts carry their intervals as structured effects: the same numbers as the evidence
text, and a status that follows from where the effects' intervals lie against their line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robustlens.claims import FAILS, HOLDS, INCONCLUSIVE, Effect, Verdict
from robustlens.claims.base import paper_value
from robustlens.claims.paper000 import (
    check_dense_grows,
    check_dense_more,
    check_latent_tradeoff,
    check_pixel_average,
)
from robustlens.claims.paper002_probes import check_blur_gap, check_median, check_texture
from robustlens.claims.paper004 import check_boundary, check_linf_hurts_more, check_robust_data
from robustlens.claims.verdict import combine, every_part
from tests.claims.test_paper000 import NAT, R1, R2, activation_arrays, correct, view_with
from tests.claims.test_paper002_probes import probes
from tests.claims.test_paper002_probes import view as probe_view
from tests.claims.test_paper004 import boundary_view, grid, robust_data_view
from tests.claims.test_paper004 import view as grid_view


def panels(verdict: Verdict) -> dict[str, list[Effect]]:
    """The verdict's effects by what they measure (one panel of the picture each)."""
    out: dict[str, list[Effect]] = {}
    for e in verdict.effects:
        out.setdefault(e.what, []).append(e)
    return out


def status_from_effects(verdict: Verdict) -> str:
    """A part per panel, holding when all its intervals lie on the claimed side."""
    return every_part([combine([e.sign() for e in p]) for p in panels(verdict).values()])


def assert_stated(verdict: Verdict, digits: int = 3) -> None:
    """Every effect's interval is written, number for number, in the evidence text."""
    assert verdict.effects, verdict.evidence
    for e in verdict.effects:
        text = f"{e.estimate:.{digits}g} [{e.low:.{digits}g}, {e.high:.{digits}g}]"
        assert text in verdict.evidence, (text, verdict.evidence)


def test_an_effect_reads_its_interval_against_the_line_on_the_claimed_side():
    above = Effect("a", "x", 2.0, 1.0, 3.0)
    assert above.sign() == 1 and Effect("a", "x", 2.0, 1.0, 3.0, side=-1).sign() == -1
    assert Effect("a", "x", 0.1, -1.0, 1.0).sign() == 0
    assert Effect("a", "x", 0.3, 0.2, 0.4, line=0.5, side=-1).sign() == 1  # below ½: holds
    assert Effect("a", "x", 0.7, 0.6, 0.8, line=0.5, side=-1).sign() == -1
    # an equivalence margin: inside holds, wholly outside fails, across it neither
    assert Effect("a", "x", 0.0, -0.04, 0.03, side=0, margin=0.05).sign() == 1
    assert Effect("a", "x", 0.1, 0.06, 0.2, side=0, margin=0.05).sign() == -1
    assert Effect("a", "x", 0.04, 0.0, 0.08, side=0, margin=0.05).sign() == 0
    # ρ above 0 but below the 0.8 a trend needs: not shown
    assert Effect("a", "ρ", 0.5, 0.1, 0.9, needs=0.8).sign() == 0
    assert Effect("a", "ρ", 0.9, 0.1, 1.0, needs=0.8).sign() == 1
    assert Effect("a", "x", 1.0, math.nan, math.nan).sign() == 0
    with pytest.raises(ValueError, match="side"):
        Effect("a", "x", 1.0, 0.0, 2.0, side=2)


@pytest.mark.parametrize(("counts", "status"), [((1, 3, 5), HOLDS), ((4, 2, 5), FAILS)])
def test_dense_maps_effects_are_the_deltas_of_the_evidence(counts, status):
    arrays = activation_arrays(dict(zip(("natural", "linf-0.1", "linf-0.2"), counts, strict=True)))
    verdict = check_dense_more(view_with(arrays, [NAT, R1, R2], ["activations"]))
    assert verdict.status == status == status_from_effects(verdict)
    assert [e.label for e in verdict.effects] == ["linf-0.1 − natural", "linf-0.2 − natural"]
    for e, group in zip(verdict.effects, ("linf-0.1", "linf-0.2"), strict=True):
        n = verdict.numbers[group]
        assert (e.estimate, e.low, e.high) == (n["delta"], n["low"], n["high"])
        assert e.line == 0 and e.side == 1 and e.unit == "feature maps" and e.paper is None
    assert verdict.effects[0].estimate == counts[1] - counts[0]
    assert_stated(verdict)


def test_growth_effects_are_spearman_rho_that_must_reach_the_trend_line():
    arrays = activation_arrays({"natural": 1, "linf-0.1": 3, "linf-0.2": 5})
    verdict = check_dense_grows(view_with(arrays, [NAT, R1, R2], ["activations"]))
    (rho,) = verdict.effects
    assert rho.label == "linf-trained" and rho.needs == 0.8 and rho.estimate == 1.0
    assert rho.low == verdict.numbers["linf"]["low"]
    assert verdict.status == HOLDS == status_from_effects(verdict)


def test_latent_effects_carry_the_papers_own_changes_on_the_same_scale():
    arrays = {
        ("latent", "linf-0.1", "natural/original"): correct(0.70, 0),
        ("latent", "linf-0.1", "natural/retrained"): correct(0.80, 1),
        ("latent", "linf-0.1", "robust/original"): correct(0.60, 2),
        ("latent", "linf-0.1", "robust/retrained"): correct(0.45, 3),
    }
    verdict = check_latent_tradeoff(view_with(arrays, [NAT, R1], ["latent"]))
    natural, robust = verdict.effects
    # Table 1: +2.39 and −4.67 percentage points, as fractions of images like ours
    assert natural.paper == pytest.approx(0.0239) and robust.paper == pytest.approx(-0.0467)
    assert paper_value("000-4.3-latent", "natural accuracy change") == natural.paper
    assert natural.estimate == pytest.approx(0.10) and robust.estimate == pytest.approx(-0.15)
    assert natural.side == 1 and robust.side == -1
    assert verdict.status == HOLDS == status_from_effects(verdict)
    assert_stated(verdict)


def test_pixel_average_has_a_panel_against_natural_and_one_against_chance():
    arrays = {
        ("color", "natural", "pixel_average"): correct(0.10, 0),
        ("color", "linf-0.1", "pixel_average"): correct(0.05, 4),  # below chance
    }
    verdict = check_pixel_average(view_with(arrays, [NAT, R1], ["color"]))
    assert list(panels(verdict)) == [
        "Δ pixel-average accuracy",
        "pixel-average accuracy − chance (0.1)",
    ]
    assert verdict.status == FAILS == status_from_effects(verdict)
    assert_stated(verdict)


@pytest.mark.parametrize(
    ("natural", "robust", "status"),
    [
        (probes(0.9, 0.3, {1: 0.7}, 0.3, 0.3), probes(0.8, 0.7, {1: 0.6}, 0.6, 0.6), HOLDS),
        (probes(0.9, 0.8, {1: 0.7}, 0.8, 0.3), probes(0.8, 0.2, {1: 0.6}, 0.2, 0.6), FAILS),
    ],
)
def test_probe_effects_follow_the_two_parts_of_each_claim(natural, robust, status):
    v = probe_view({"natural": natural, "linf-0.1": robust})
    for check in (check_median, check_texture):
        verdict = check(v)
        assert verdict.status == status == status_from_effects(verdict), verdict.evidence
        assert_stated(verdict)
    assert len(panels(check_median(v))) == 2  # loses less; ends up more accurate
    assert len(panels(check_texture(v))) == 2  # one panel per texture probe


def test_blur_effects_have_an_equivalence_margin():
    v = probe_view(
        {
            "natural": probes(0.9, 0.3, {1: 0.8, 2: 0.7}, 0.3, 0.3),
            "linf-0.1": probes(0.8, 0.7, {1: 0.7, 2: 0.6}, 0.6, 0.6),
        }
    )
    verdict = check_blur_gap(v)
    (gap,) = verdict.effects
    assert gap.side == 0 and gap.margin == 0.05 and gap.line == 0
    assert verdict.status == status_from_effects(verdict)
    assert_stated(verdict)


def test_attack_grid_effects_read_against_zero_and_against_half_of_clean():
    v = grid_view(
        grid({"natural": (0.1, 0.6), "linf-0.1": (0.5, 0.8), "l2-1.5": (0.4, 0.8)}),
        {"attack_grid"},
    )
    verdict = check_linf_hurts_more(v)
    assert [e.label for e in verdict.effects] == ["natural", "linf-0.1", "l2-1.5"]
    for e in verdict.effects:
        assert e.estimate == pytest.approx(verdict.numbers[e.label]["estimate"])
    assert verdict.status == HOLDS == status_from_effects(verdict)
    assert_stated(verdict)
    rows = {"pgd linf 0.025 5": 0.7, "pgd linf 0.25 5": 0.1}
    data = check_robust_data(robust_data_view(0.8, rows))
    assert {e.line for e in data.effects} == {0.5} and {e.side for e in data.effects} == {-1}
    retained = data.numbers["robust-data/pgd linf 0.025"]["retained"]
    assert data.effects[0].estimate == retained["estimate"]
    assert data.status == FAILS == status_from_effects(data)


def test_boundary_effects_compare_l2_training_with_natural_and_with_linf_training():
    verdict = check_boundary(boundary_view({"natural": 0.5, "linf-0.1": 1.2, "l2-1.5": 2.0}))
    by_panel = panels(verdict)
    assert [len(p) for p in by_panel.values()] == [1, 1]
    (gain,) = by_panel["increase of the mean DeepFool L2 distance over natural"]
    assert gain.estimate == verdict.numbers["l2-1.5"]["estimate"]
    assert verdict.status == HOLDS == status_from_effects(verdict)
    assert_stated(verdict)


def test_an_inconclusive_verdict_without_intervals_has_no_effects():
    two = activation_arrays({"natural": 1, "linf-0.1": 3})
    verdict = check_dense_grows(view_with(two, [NAT, R1], ["activations"]))
    assert verdict.status == INCONCLUSIVE and verdict.effects == []
    (delta,) = check_dense_more(view_with(two, [NAT, R1], ["activations"])).effects
    assert np.isfinite([delta.estimate, delta.low, delta.high]).all()
