"""Claims whose lens failed read "not computed"; claims whose lens applies to none of the
study's models read "not applicable"; both stay in the claims table instead of disappearing."""

from __future__ import annotations

from robustlens.claims import (
    NOT_APPLICABLE,
    NOT_COMPUTED,
    ResultsView,
    evaluate_claims,
)
from robustlens.papers import paper_figure
from tests.claims.test_paper000 import model

MODELS = [model("natural"), model("linf-0.1", "pgd", "linf", 0.1)]


def view(lenses: set[str], planned: set[str]) -> ResultsView:
    v = ResultsView(MODELS, lambda lens, m, name: None, lenses, 100, 10)
    v.planned = planned
    return v


def statuses(v: ResultsView, lens: str) -> set[str]:
    return {
        verdict.status for claim, verdict in evaluate_claims(v, resamples=20) if lens in claim.needs
    }


def test_a_claim_whose_lens_applies_to_no_model_says_so():
    v = view(set(), {"filters"})
    v.not_applicable = {"filters": {"natural": "no 3×3 convolutions", "linf-0.1": "no 3×3"}}
    verdicts = [(c, vd) for c, vd in evaluate_claims(v, resamples=20) if "filters" in c.needs]
    assert verdicts, "the filter claims disappeared from the table"
    assert {vd.status for _, vd in verdicts} == {NOT_APPLICABLE}
    assert all("no 3×3 convolutions" in vd.evidence for _, vd in verdicts)


def test_a_claim_whose_lens_failed_is_not_computed():
    v = view({"filters"}, {"filters"})
    v.failed = {"filters": ["linf-0.1: NumericalError: NaN in conv1"]}
    verdicts = [(c, vd) for c, vd in evaluate_claims(v, resamples=20) if "filters" in c.needs]
    assert verdicts and {vd.status for _, vd in verdicts} == {NOT_COMPUTED}
    assert all("NaN in conv1" in vd.evidence for _, vd in verdicts)


def test_claims_of_lenses_the_study_does_not_ask_for_are_left_out():
    assert statuses(view(set(), set()), "filters") == set()


def test_models_a_lens_skips_are_named_in_the_evidence():
    arrays = {}
    v = view({"color"}, {"color"})
    v._arrays = lambda lens, m, name: arrays.get((lens, m, name))
    v.not_applicable = {"color": {"mlp": "no colour channels"}}
    verdicts = [vd for c, vd in evaluate_claims(v, resamples=20) if "color" in c.needs]
    assert verdicts and all("mlp left out (no colour channels)" in vd.evidence for vd in verdicts)
    assert all(vd.status not in (NOT_APPLICABLE, NOT_COMPUTED) for vd in verdicts)


def test_every_verdict_carries_the_papers_own_figure_for_its_claim():
    """Attached by claim id whatever the status; the status itself does not depend on it."""
    v = view({"color"}, {"color", "filters"})
    v.not_applicable = {"filters": {"natural": "no 3×3", "linf-0.1": "no 3×3"}}
    verdicts = evaluate_claims(v, resamples=20)
    assert {vd.status for _, vd in verdicts} >= {NOT_APPLICABLE}
    for claim, vd in verdicts:
        assert vd.paper_figure is paper_figure(claim.id) and vd.paper_figure is not None
    by_id = {c.id: vd for c, vd in verdicts}
    assert by_id["000-4.4-average"].paper_figure.reference == "Table 3"
    assert by_id["003-4.3-quality"].paper_figure.figure_only
