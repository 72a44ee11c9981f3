"""Published claims as records, checked on a study's own models (one module per paper)."""

from __future__ import annotations

from robustlens.study.claims.base import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Claim,
    ResultsView,
    Verdict,
)
from robustlens.study.claims.paper000 import CLAIMS_000
from robustlens.study.claims.paper001 import CLAIMS_001
from robustlens.study.claims.paper002_ensemble import CLAIMS_002_ENSEMBLE
from robustlens.study.claims.paper002_probes import CLAIMS_002
from robustlens.study.claims.paper002_saliency import CLAIMS_002_SALIENCY
from robustlens.study.claims.paper003 import CLAIMS_003
from robustlens.study.claims.paper004 import CLAIMS_004

CLAIMS: tuple[Claim, ...] = (
    CLAIMS_000
    + CLAIMS_001
    + CLAIMS_002_SALIENCY
    + CLAIMS_002
    + CLAIMS_002_ENSEMBLE
    + CLAIMS_003
    + CLAIMS_004
)


def evaluate_claims(
    view: ResultsView, *, resamples: int = 1000, seed: int = 0
) -> list[tuple[Claim, Verdict]]:
    """Every claim whose lenses the study ran, with its verdict."""
    view.resamples, view.seed = resamples, seed
    w = view.weights(view.n)
    out = []
    for claim in CLAIMS:
        missing = [lens for lens in claim.needs if lens not in view.lenses]
        if missing:
            continue
        try:
            verdict = claim.check(view.covering(claim.needs), w)
        except KeyError as exc:
            verdict = Verdict(INCONCLUSIVE, f"results missing: {exc}")
        out.append((claim, verdict))
    return out


__all__ = [
    "CLAIMS",
    "FAILS",
    "HOLDS",
    "INCONCLUSIVE",
    "Claim",
    "ResultsView",
    "Verdict",
    "evaluate_claims",
]
