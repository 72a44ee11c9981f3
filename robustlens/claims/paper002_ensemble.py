"""The late-fusion claim of Itazuri et al. (paper 002, §4.2, Fig. 7)."""

from __future__ import annotations

import numpy as np

from robustlens.claims.base import (
    ACCURACY,
    Claim,
    ResultsView,
    ci_text,
    effect,
    label,
    register_claims,
)
from robustlens.claims.verdict import FAILS, HOLDS, INCONCLUSIVE, Verdict
from robustlens.lenses import ensemble
from robustlens.lenses.base import StudyModel
from robustlens.papers import ITAZURI

CI = "95 % paired bootstrap CI over each target's test images"
MARGIN = 0.01
""""At least as accurate": STD+ADV may trail its best single member by at most 1 point."""


def _targets(view: ResultsView) -> list[str]:
    names = view.array_names("ensemble", view.models[0].name) if view.models else []
    return list(dict.fromkeys(t for n in names if (t := ensemble.target_of(n)) is not None))


def check_fusion(view: ResultsView) -> Verdict:
    """Per target and STD+ADV pair of settings: Δ = acc(pair) − acc(its better member), paired
    over the target's test images; a setting trained with several seeds is pooled over every
    pair of replicates (its better member chosen on the mean over seeds), with the seeds
    resampled too. A target counts for the claim when every pair's Δ interval lies above −1
    point, against it when one lies below; the claim holds on a majority of targets for, fails
    on a majority against."""
    natural, robust = view.settings(view.natural), view.settings(view.robust)
    if not natural or not robust:
        return Verdict(INCONCLUSIVE, "needs a natural and a robust model")
    targets = _targets(view)
    if not targets:
        return Verdict(INCONCLUSIVE, "the ensemble lens stored no results")
    votes, parts, numbers, effects = [], [], {}, []
    anchor = view.models[0].name
    for target in targets:

        def correct(*names: str, target: str = target) -> np.ndarray | None:
            for key in (
                ensemble.correct_name(target, ensemble.members_name(list(names))),
                ensemble.correct_name(target, ensemble.members_name(list(names[::-1]))),
            ):
                if view.has_array("ensemble", anchor, key):
                    return view.array("ensemble", anchor, key).astype(np.float64)
            return None  # fmt: skip

        signs, texts = [], []
        for nat in natural:
            for rob in robust:
                acc = {m.name: correct(m.name) for m in nat + rob}
                pairs = {(n.name, r.name): correct(n.name, r.name) for n in nat for r in rob}
                if any(a is None for a in [*acc.values(), *pairs.values()]):
                    continue
                means = [np.mean([acc[m.name].mean() for m in g]) for g in (nat, rob)]
                best = 0 if means[0] >= means[1] else 1

                def diff(n: StudyModel, r: StudyModel, best: int = best, acc=acc, pairs=pairs):
                    return pairs[n.name, r.name] - acc[(n, r)[best].name]

                iv = view.pooled_interval([nat, rob], diff)
                signs.append(1 if iv.low > -MARGIN else (-1 if iv.high < -MARGIN else 0))
                texts.append(f"{label(nat)}+{label(rob)} − best single {iv.text()}")
                key = f"{nat[0].group}+{rob[0].group}"
                numbers.setdefault(target, {})[key] = iv.__dict__
                row = f"{target}: {label(nat)}+{label(rob)}"
                what = "accuracy of STD+ADV − of its better member"
                effects.append(effect(row, what, iv, line=-MARGIN, unit=ACCURACY))
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
    ci = ci_text(view, CI, "each target's test images")
    return Verdict(status, evidence, ci, numbers, effects=effects)


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
