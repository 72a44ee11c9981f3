"""The results view claims read through, and how the claims table words verdicts that are not
verdicts (lens failed, lens not applicable, results missing, models left out)."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.analysis.bootstrap import resample_weights
from robustlens.claims import (
    CLAIMS,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_APPLICABLE,
    NOT_COMPUTED,
    ResultsView,
    Verdict,
    evaluate_claims,
)
from robustlens.claims.base import verdict_from
from robustlens.claims.verdict import both, combine, every_part
from tests.claims.exact import CI, model, view

NAT = model("natural")
R1 = model("linf-0.1", "pgd", "linf", 0.1)


def test_weights_follow_the_views_seed_and_resamples_and_are_shared():
    v = view([NAT], {}, 6, resamples=7)
    v.seed = 5
    w = v.weights(6)
    np.testing.assert_array_equal(w, resample_weights(6, 7, 5))
    assert not np.array_equal(w, resample_weights(6, 7, 0))
    assert v.weights(6) is w  # every model and claim gets the same resamples
    assert v.weights(3).shape == (7, 3)


def test_evaluate_claims_sets_the_resamples_and_seed_it_is_given():
    v = view([NAT], {}, 5, lenses=set())
    evaluate_claims(v, resamples=9, seed=4)
    assert (v.resamples, v.seed) == (9, 4)
    np.testing.assert_array_equal(v.weights(5), resample_weights(5, 9, 4))


def test_array_names_the_missing_array_and_lists_a_lens_arrays():
    arrays = {("filters", "natural", "a"): np.zeros(1), ("filters", "natural", "b"): np.ones(1)}
    v = view([NAT], arrays, 1)
    with pytest.raises(KeyError) as err:
        v.array("filters", "natural", "c")
    assert err.value.args == ("filters/natural/c",)
    assert v.array_names("filters", "natural") == ["a", "b"]
    assert (v.has_array("filters", "natural", "a"), v.has_array("filters", "x", "a")) == (
        True,
        False,
    )
    assert view([NAT], arrays, 1, names=False).array_names("filters", "natural") == []


def test_natural_and_robust_models_in_study_order():
    r2 = model("l2-1", "pgd", "l2", 1.0)
    nat_b = model("natural-b")
    v = view([R1, NAT, r2, nat_b], {}, 1)
    assert [m.name for m in v.natural] == ["natural", "natural-b"]
    assert [m.name for m in v.robust] == ["linf-0.1", "l2-1"]


@pytest.mark.parametrize(
    ("signs", "status"),
    [
        ([1, 1], HOLDS),
        ([1, 0], INCONCLUSIVE),
        ([1, -1], FAILS),
        ([0, -1], FAILS),
        ([], INCONCLUSIVE),
    ],
)
def test_combine_signs(signs, status):
    assert combine(signs) == status


@pytest.mark.parametrize(
    ("statuses", "status"),
    [
        ([HOLDS, HOLDS], HOLDS),
        ([HOLDS, INCONCLUSIVE], INCONCLUSIVE),
        ([INCONCLUSIVE, FAILS], FAILS),
        ([HOLDS, FAILS], FAILS),
        ([], INCONCLUSIVE),
    ],
)
def test_every_part(statuses, status):
    assert every_part(statuses) == status


def test_both_and_verdict_from():
    assert (both([1], [1]), both([1], [0]), both([1], [-1]), both([], [1])) == (
        HOLDS,
        INCONCLUSIVE,
        FAILS,
        INCONCLUSIVE,
    )
    assert verdict_from([1], ["a", "b"], {"x": 1}) == Verdict(HOLDS, "a; b", CI, {"x": 1})


def table(v: ResultsView, lens: str) -> list[tuple[str, Verdict]]:
    return [(c.id, vd) for c, vd in evaluate_claims(v, resamples=20) if lens in c.needs]


def test_a_failed_lens_gives_not_computed_with_every_failure_named():
    v = view([NAT, R1], {}, 4, lenses={"latent"})
    v.failed = {"latent": ["natural: OSError: disk full", "linf-0.1: ValueError: bad"]}
    rows = table(v, "latent")
    assert [i for i, _ in rows] == [c.id for c in CLAIMS if "latent" in c.needs]
    expected = Verdict(
        NOT_COMPUTED,
        "latent failed on natural: OSError: disk full; latent failed on linf-0.1: ValueError: "
        "bad — fix it and run the study again",
    )
    assert all(vd == expected for _, vd in rows)


def test_a_lens_without_results_or_not_applicable_to_any_model():
    v = view([NAT, R1], {}, 4, lenses=set())
    v.planned = {"latent", "filters"}
    v.not_applicable = {"filters": {"natural": "no 3×3 convolutions", "linf-0.1": "an MLP"}}
    assert {vd for _, vd in [(i, (vd.status, vd.evidence)) for i, vd in table(v, "latent")]} == {
        (NOT_COMPUTED, "lens latent has no results yet — run the study")
    }
    assert {(vd.status, vd.evidence) for _, vd in table(v, "filters")} == {
        (
            NOT_APPLICABLE,
            "lens filters does not apply to the study's models (natural: no 3×3 convolutions; "
            "linf-0.1: an MLP)",
        )
    }


def test_claims_of_lenses_neither_run_nor_planned_are_left_out():
    v = view([NAT, R1], {}, 4, lenses={"latent"})
    assert {c.needs for c, _ in evaluate_claims(v, resamples=20)} == {("latent",)}
    v.lenses, v.planned = set(), {"latent"}
    assert {c.needs for c, _ in evaluate_claims(v, resamples=20)} == {("latent",)}


def test_missing_results_are_named_and_left_out_models_noted():
    v = view([NAT, R1], {}, 4, lenses={"latent"})
    rows = table(v, "latent")
    assert rows[0][1] == Verdict(
        INCONCLUSIVE, "results missing: 'latent/linf-0.1/natural/retrained'"
    )
    v.not_applicable = {"latent": {"mlp": "no head", "cnn": "no features"}}
    rows = table(v, "latent")
    assert rows[0][1] == Verdict(
        INCONCLUSIVE,
        "results missing: 'latent/linf-0.1/natural/retrained'; mlp left out (no head); cnn left "
        "out (no features)",
    )


def test_a_left_out_note_keeps_the_verdicts_status_interval_and_numbers():
    n = 4
    arrays = {
        ("latent", "linf-0.1", f"{kind}/{when}"): np.full(n, flag)
        for kind, when, flag in (
            ("natural", "original", False),
            ("natural", "retrained", True),
            ("robust", "original", True),
            ("robust", "retrained", False),
        )
    }
    v = view([NAT, R1], arrays, n, lenses={"latent"})
    plain = dict(table(v, "latent"))["000-4.3-latent"]
    v.not_applicable = {"latent": {"mlp": "no head"}}
    noted = dict(table(v, "latent"))["000-4.3-latent"]
    assert noted == Verdict(
        HOLDS, plain.evidence + "; mlp left out (no head)", plain.interval, plain.numbers
    )
    assert plain.status == HOLDS


def test_a_fresh_view_resamples_as_evaluate_claims_does_by_default():
    def fresh() -> ResultsView:
        return ResultsView([NAT], lambda lens, m, name: None, set(), 5, 10)

    direct, table_view = fresh(), fresh()
    evaluate_claims(table_view)
    assert direct.planned == set() and direct.coverage == {}
    assert direct.failed == {} and direct.not_applicable == {}
    np.testing.assert_array_equal(direct.weights(5), table_view.weights(5))
    assert direct.weights(5).shape == (1000, 5)


def test_a_claim_needing_two_lenses_checks_each_of_them():
    from robustlens.claims import Claim, _without_results

    claim = Claim("x-1", "paper", "§1", "A claim.", ("latent", "color"), lambda v, w: None)
    v = view([NAT, R1], {}, 4, lenses={"latent"})
    assert _without_results(v, claim) == Verdict(
        NOT_COMPUTED, "lens color has no results yet — run the study"
    )
    v.lenses = {"latent", "color"}
    assert _without_results(v, claim) is None
    v.failed = {"color": ["natural: boom"]}
    assert _without_results(v, claim) == Verdict(
        NOT_COMPUTED, "color failed on natural: boom — fix it and run the study again"
    )


def test_a_left_out_note_on_empty_evidence_stands_alone():
    from robustlens.claims import Claim, _with_exclusions

    claim = Claim("x-1", "paper", "§1", "A claim.", ("color",), lambda v, w: None)
    v = view([NAT], {}, 4, lenses={"color"})
    v.not_applicable = {"color": {"mlp": "grey images"}}
    noted = _with_exclusions(v, claim, Verdict(HOLDS, "", "ci", {"a": 1}))
    assert noted == Verdict(HOLDS, "mlp left out (grey images)", "ci", {"a": 1})
    v.not_applicable = {"color": {"Xception": "grey images"}}  # the name is kept whole
    noted = _with_exclusions(v, claim, Verdict(HOLDS, ""))
    assert noted.evidence == "Xception left out (grey images)"
    v.not_applicable = {}
    plain = Verdict(FAILS, "e")
    assert _with_exclusions(v, claim, plain) is plain


def test_mean_interval_leaves_out_images_without_a_value():
    v = view([NAT], {}, 3)
    iv = v.mean_interval(np.array([1.0, np.nan, 3.0]))
    assert iv.estimate == 2.0
    assert 1.0 <= iv.low <= iv.high <= 3.0
    same = v.mean_interval(np.array([True, True, True]))
    assert (same.estimate, same.low, same.high) == (1.0, 1.0, 1.0)


def test_covering_keeps_the_models_every_lens_looked_at():
    r2 = model("l2-1", "pgd", "l2", 1.0)
    v = view([NAT, R1, r2], {}, 4)
    # a lens may name models the study no longer has: they never stand in for its own
    v.coverage = {"latent": {"natural", "ghost", "other"}, "color": {"natural", "linf-0.1"}}
    assert [m.name for m in v.covering(("latent",)).models] == ["natural"]
    assert [m.name for m in v.covering(("color",)).models] == ["natural", "linf-0.1"]
    assert [m.name for m in v.covering(("color", "latent")).models] == ["natural"]
    assert [m.name for m in v.covering(("latent", "color")).models] == ["natural"]
    assert [m.name for m in v.models] == ["natural", "linf-0.1", "l2-1"]  # a copy was cut
