"""The claims of Itazuri et al. (paper 002) about what robust models rely on: accuracy under
median filtering, texture replacement and Gaussian blur (§4.1, Fig. 6, Table 2)."""

from __future__ import annotations

import numpy as np

from robustlens.claims.base import Claim, ResultsView, register_claims
from robustlens.claims.verdict import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Verdict,
    both,
    combine,
    every_part,
)
from robustlens.lenses import probes
from robustlens.papers import ITAZURI

CI = "95 % paired bootstrap CI over images"
GAP_MARGIN = 0.05
"""§4.1 "the gap stays" under blur: the natural − robust accuracy gap moves by less than 5
points (averaged over σ > 0) from its value on clean images."""


def _levels(view: ResultsView, model: str, probe: str) -> dict[float, np.ndarray]:
    out = {}
    for name in view.array_names("probes", model):
        found = probes.parse_correct(name)
        if found is not None and found[0] == probe:
            out[found[1]] = view.array("probes", model, name).astype(np.float64)
    return dict(sorted(out.items()))


def _clean(view: ResultsView, model: str) -> np.ndarray | None:
    for probe in (probes.MEDIAN_FILTER, probes.GAUSSIAN_BLUR):
        levels = _levels(view, model, probe)
        if 0.0 in levels:
            return levels[0.0]
    return None


def _drop_versus_natural(
    view: ResultsView, probe: str, level: float | None
) -> tuple[list[int], list[str], dict]:
    """Per robust model: (natural's accuracy drop) − (robust's) from clean to ``probe`` at
    ``level`` (its largest when None); > 0 means the robust model loses less."""
    nat = view.natural[0]
    signs, parts, numbers = [], [], {}
    for m in view.robust:
        drops = []
        for model in (nat.name, m.name):
            levels, clean = _levels(view, model, probe), _clean(view, model)
            if not levels or clean is None:
                return [], [f"{probe}: results missing"], {}
            at = max(levels) if level is None else level
            drops.append(clean - levels[at])
        iv = view.mean_interval(drops[0] - drops[1])
        signs.append(iv.sign())
        parts.append(
            f"{m.name}: drop {drops[1].mean():.3f} vs natural {drops[0].mean():.3f}, "
            f"difference {iv.text()}"
        )
        numbers[m.name] = iv.__dict__
    return signs, parts, numbers


def _requires_pair(view: ResultsView) -> Verdict | None:
    if not view.natural or not view.robust:
        return Verdict(INCONCLUSIVE, "needs a natural and at least one robust model")
    return None


def check_median(view: ResultsView) -> Verdict:
    """§4.1, Fig. 6: "the adversarially trained model outperform[s] the standard trained one as
    the times of median filter increases". Two parts, each per robust model with a paired
    interval: the robust model's advantage (its accuracy − the natural one's) grows from clean
    images to the most median filtering (it loses less), and at the most filtering it is
    positive (the robust model is the more accurate one, the crossing of Fig. 6). Holds when
    both hold for every robust model; fails when either part fails for one."""
    missing = _requires_pair(view)
    if missing:
        return missing
    signs, parts, numbers = _drop_versus_natural(view, probes.MEDIAN_FILTER, None)
    levels = _levels(view, view.natural[0].name, probes.MEDIAN_FILTER)
    head = f"median filter applied {max(levels):g} times: " if levels else ""
    if not signs:
        return Verdict(INCONCLUSIVE, head + "; ".join(parts), CI, numbers)
    nat = _levels(view, view.natural[0].name, probes.MEDIAN_FILTER)
    ahead, texts, numbers = [], [], {"loses_less": numbers, "outperforms": {}}
    for m in view.robust:
        own = _levels(view, m.name, probes.MEDIAN_FILTER)
        at = max(own)
        if at not in nat:
            texts.append(f"{m.name}: no natural result at {at:g} times")
            ahead.append(0)
            continue
        iv = view.mean_interval(own[at] - nat[at])
        ahead.append(iv.sign())
        texts.append(f"{m.name}: accuracy − natural's = {iv.text()}")
        numbers["outperforms"][m.name] = iv.__dict__
    status = both(signs, ahead)
    evidence = (
        f"{head}loses less: {'; '.join(parts)} | outperforms the natural model: {'; '.join(texts)}"
    )
    return Verdict(status, evidence, CI, numbers)


def check_texture(view: ResultsView) -> Verdict:
    """Robust models lose less accuracy than the natural one on every texture-replacing probe
    (amplitude swap, edge map) and score higher on stylised images when the study has them."""
    missing = _requires_pair(view)
    if missing:
        return missing
    nat = view.natural[0].name
    statuses, parts, numbers = [], [], {}
    for probe in probes.TEXTURE_PROBES:
        if not _levels(view, nat, probe):
            continue
        signs, texts, nums = _drop_versus_natural(view, probe, None)
        statuses.append(combine(signs) if signs else INCONCLUSIVE)
        parts.append(f"{probe.replace('_', ' ')}: {'; '.join(texts)}")
        numbers[probe] = nums
    stylized = _levels(view, nat, probes.STYLIZED)
    if stylized:
        signs, texts = [], []
        for m in view.robust:
            own = _levels(view, m.name, probes.STYLIZED)
            if not own:
                continue
            iv = view.mean_interval(own[1.0] - stylized[1.0])
            signs.append(iv.sign())
            texts.append(f"{m.name}: accuracy − natural's = {iv.text()}")
        statuses.append(combine(signs) if signs else INCONCLUSIVE)
        parts.append(f"stylised images: {'; '.join(texts)}")
    if not statuses:
        return Verdict(INCONCLUSIVE, "the probes lens ran no texture probe")
    status = every_part(statuses)
    return Verdict(status, " | ".join(parts), CI, numbers)


def check_blur_gap(view: ResultsView) -> Verdict:
    """Under Gaussian blur the natural − robust accuracy gap stays what it is on clean images:
    its mean change over σ > 0 lies within ±5 points (an equivalence margin)."""
    missing = _requires_pair(view)
    if missing:
        return missing
    nat = _levels(view, view.natural[0].name, probes.GAUSSIAN_BLUR)
    if 0.0 not in nat or len(nat) < 2:
        return Verdict(INCONCLUSIVE, "needs blur at σ = 0 and at least one σ > 0")
    statuses, parts, numbers = [], [], {}
    for m in view.robust:
        rob = _levels(view, m.name, probes.GAUSSIAN_BLUR)
        sigmas = [s for s in nat if s > 0 and s in rob]
        gap0 = nat[0.0] - rob[0.0]
        change = np.mean([(nat[s] - rob[s]) - gap0 for s in sigmas], axis=0)
        iv = view.mean_interval(change)
        if iv.low >= -GAP_MARGIN and iv.high <= GAP_MARGIN:
            statuses.append(HOLDS)
        elif iv.low > GAP_MARGIN or iv.high < -GAP_MARGIN:
            statuses.append(FAILS)
        else:
            statuses.append(INCONCLUSIVE)
        parts.append(
            f"{m.name}: clean gap {gap0.mean():+.3f}, mean change over σ ≤ {max(sigmas):g} "
            f"{iv.text()}"
        )
        numbers[m.name] = iv.__dict__
    status = every_part(statuses)
    evidence = f"margin ±{GAP_MARGIN:g}; " + "; ".join(parts)
    return Verdict(status, evidence, CI, numbers)


CLAIMS_002: tuple[Claim, ...] = register_claims(
    Claim(
        "002-4.1-median",
        ITAZURI,
        "§4.1, Fig. 6",
        "As the median filter is applied repeatedly, adversarially trained models lose less "
        "accuracy than natural ones and end up outperforming them.",
        ("probes",),
        check_median,
    ),
    Claim(
        "002-4.1-texture",
        ITAZURI,
        "§4.1, Table 2",
        "Adversarially trained models lose less accuracy than natural ones when texture is "
        "replaced and shape kept.",
        ("probes",),
        check_texture,
    ),
    Claim(
        "002-4.1-blur",
        ITAZURI,
        "§4.1, Fig. 6",
        "Under Gaussian blur the accuracy gap between natural and robust models stays as it is.",
        ("probes",),
        check_blur_gap,
    ),
)
