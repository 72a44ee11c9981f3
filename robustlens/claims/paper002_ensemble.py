"""The late-fusion claim of Itazuri et al. (paper 002, §4.2, Fig. 7)."""

from __future__ import annotations

import numpy as np

from robustlens.claims.base import Claim, ResultsView, register_claims
from robustlens.claims.verdict import FAILS, HOLDS, INCONCLUSIVE, Verdict
from robustlens.lenses import ensemble
from robustlens.papers import ITAZURI

MARGIN = 0.01
""""At least as accurate": STD+ADV may trail its best single member by at most 1 point."""


def _targets(view: ResultsView) -> list[str]:
    names = view.array_names("ensemble", view.models[0].name) if view.models else []
    return list(dict.fromkeys(t for n in names if (t := ensemble.target_of(n)) is not None))


def check_fusion(view: ResultsView) -> Verdict:
    """Per target and STD+ADV pair: Δ = acc(pair) − acc(its better member), paired over the
    target's test images. A target counts for the claim when every pair's Δ interval lies
    above −1 point, against it when one lies below; the claim holds on a majority of targets
    for, fails on a majority against."""
    natural, robust = view.natural, view.robust
    if not natural or not robust:
        return Verdict(INCONCLUSIVE, "needs a natural and a robust model")
    targets = _targets(view)
    if not targets:
        return Verdict(INCONCLUSIVE, "the ensemble lens stored no results")
    votes, parts, numbers = [], [], {}
    anchor = view.models[0].name
    for target in targets:

        def correct(name: str, target: str = target) -> np.ndarray | None:
            key = ensemble.correct_name(target, name)
            if not view.has_array("ensemble", anchor, key):
                return None
            return view.array("ensemble", anchor, key).astype(np.float64)

        signs, texts = [], []
        for nat in natural:
            for rob in robust:
                pair = correct(ensemble.members_name([nat.name, rob.name]))
                if pair is None:
                    pair = correct(ensemble.members_name([rob.name, nat.name]))
                singles = [correct(nat.name), correct(rob.name)]
                if pair is None or any(s is None for s in singles):
                    continue
                best = max(singles, key=lambda s: s.mean())
                diff = pair - best
                iv = view.mean_interval(diff)
                signs.append(1 if iv.low > -MARGIN else (-1 if iv.high < -MARGIN else 0))
                texts.append(f"{nat.name}+{rob.name} − best single {iv.text()}")
                numbers.setdefault(target, {})[f"{nat.name}+{rob.name}"] = iv.__dict__
        if not signs:
            continue
        vote = 1 if all(s > 0 for s in signs) else (-1 if any(s < 0 for s in signs) else 0)
        votes.append(vote)
        parts.append(f"{target}: {', '.join(texts)}")
    if not votes:
        return Verdict(INCONCLUSIVE, "no STD+ADV pair with both single models")
    if sum(v > 0 for v in votes) > len(votes) / 2:
        status = HOLDS
    elif sum(v < 0 for v in votes) > len(votes) / 2:
        status = FAILS
    else:
        status = INCONCLUSIVE
    evidence = f"non-inferiority margin {MARGIN:g}; " + "; ".join(parts)
    return Verdict(status, evidence, "95 % paired bootstrap CI over each target's test images",
                   numbers)  # fmt: skip


CLAIMS_002_ENSEMBLE: tuple[Claim, ...] = register_claims(
    Claim(
        "002-4.2-fusion",
        ITAZURI,
        "§4.2, Fig. 7",
        "Late fusion of a natural and a robust feature extractor (STD+ADV) is at least as "
        "accurate as the better of the two alone on most target data sets.",
        ("ensemble",),
        check_fusion,
    ),
)
