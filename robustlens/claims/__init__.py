"""Published claims as records, checked on a study's own models (one module per paper)."""

from __future__ import annotations

from robustlens.claims.base import CLAIM_REGISTRY, Claim, ResultsView, get_claim
from robustlens.claims.paper000 import CLAIMS_000
from robustlens.claims.paper001 import CLAIMS_001
from robustlens.claims.paper002_ensemble import CLAIMS_002_ENSEMBLE
from robustlens.claims.paper002_probes import CLAIMS_002
from robustlens.claims.paper002_saliency import CLAIMS_002_SALIENCY
from robustlens.claims.paper003 import CLAIMS_003
from robustlens.claims.paper004 import CLAIMS_004
from robustlens.claims.verdict import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_APPLICABLE,
    NOT_COMPUTED,
    Effect,
    Status,
    Verdict,
)
from robustlens.papers import paper_figure

CLAIMS: tuple[Claim, ...] = (
    CLAIMS_000
    + CLAIMS_001
    + CLAIMS_002_SALIENCY
    + CLAIMS_002
    + CLAIMS_002_ENSEMBLE
    + CLAIMS_003
    + CLAIMS_004
)
"""Every claim in the report's order (each paper module registers its own, by id)."""


def evaluate_claims(
    view: ResultsView, *, resamples: int = 1000, seed: int = 0
) -> list[tuple[Claim, Verdict]]:
    """Every claim whose lenses the study ran, with its verdict (and the paper's own figure
    for the claim attached to it, to read beside ours)."""
    view.resamples, view.seed = resamples, seed
    out = []
    for claim in CLAIMS:
        if any(lens not in view.lenses | view.planned for lens in claim.needs):
            continue  # the study does not ask for a lens the claim needs
        covered = view.covering(claim.needs)
        verdict = _without_results(view, claim)
        if verdict is None:
            try:
                verdict = claim.check(covered)
            except KeyError as exc:
                verdict = Verdict(INCONCLUSIVE, f"results missing: {exc}")
            verdict = _with_exclusions(view, claim, verdict)
            verdict.masking = {
                m.name: list(view.masking[m.name])
                for m in covered.models
                if view.masking.get(m.name)
            }
        verdict.paper_figure = paper_figure(claim.id)
        verdict.seeds = covered.seeds  # for the claims table: "single seed" or "N seeds"
        out.append((claim, verdict))
    return out


def _without_results(view: ResultsView, claim: Claim) -> Verdict | None:
    """ "not computed" when a lens the claim needs failed, "not applicable" when one applies
    to none of the study's models (or is missing its results for another reason), else None."""
    failed = [
        f"{lens} failed on {line}" for lens in claim.needs for line in view.failed.get(lens, [])
    ]
    if failed:
        return Verdict(NOT_COMPUTED, "; ".join(failed) + " — fix it and run the study again")
    for lens in claim.needs:
        if lens in view.lenses:
            continue
        skipped = view.not_applicable.get(lens, {})
        if skipped:
            reasons = "; ".join(f"{m}: {why}" for m, why in skipped.items())
            return Verdict(
                NOT_APPLICABLE, f"lens {lens} does not apply to the study's models ({reasons})"
            )
        return Verdict(NOT_COMPUTED, f"lens {lens} has no results yet — run the study")
    return None


def _with_exclusions(view: ResultsView, claim: Claim, verdict: Verdict) -> Verdict:
    """The verdict with a word on the models left out because a lens does not apply."""
    left = {m: why for lens in claim.needs for m, why in view.not_applicable.get(lens, {}).items()}
    if not left:
        return verdict
    note = "; ".join(f"{m} left out ({why})" for m, why in left.items())
    return Verdict(
        verdict.status, f"{verdict.evidence}; {note}".lstrip("; "), verdict.interval,
        verdict.numbers, effects=verdict.effects,
    )  # fmt: skip


__all__ = [
    "CLAIMS",
    "CLAIM_REGISTRY",
    "FAILS",
    "HOLDS",
    "INCONCLUSIVE",
    "NOT_APPLICABLE",
    "NOT_COMPUTED",
    "Claim",
    "Effect",
    "ResultsView",
    "Status",
    "Verdict",
    "evaluate_claims",
    "get_claim",
]
