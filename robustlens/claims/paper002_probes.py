"""The claims of Itazuri et al. (paper 002) about what robust models rely on: accuracy under
median filtering, texture replacement and Gaussian blur (§4.1, Fig. 6, Table 2)."""

from __future__ import annotations

import numpy as np

from robustlens.analysis.bootstrap import Interval
from robustlens.claims.base import (
    ACCURACY,
    Claim,
    ResultsView,
    ci_text,
    effect,
    label,
    register_claims,
)
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
from robustlens.lenses.base import StudyModel
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


def _drop(view: ResultsView, model: str, probe: str) -> np.ndarray | None:
    """Per-image accuracy drop from clean images to ``probe`` at its largest level."""
    levels, clean = _levels(view, model, probe), _clean(view, model)
    if not levels or clean is None:
        return None
    return clean - levels[max(levels)]


def _mean_of(arrays: list[np.ndarray]) -> float:
    """The mean over replicates of each replicate's mean over images."""
    return float(np.mean([a.mean() for a in arrays]))


def _drop_versus_natural(view: ResultsView, probe: str) -> tuple[list[int], list[str], dict]:
    """Per robust setting: (natural's accuracy drop) − (robust's) from clean to ``probe`` at
    its largest level, each setting pooled over its seeds (paired over images); > 0 means the
    robust setting loses less."""
    nat = view.settings(view.natural)[0]
    signs, parts, numbers = [], [], {}
    for group in view.settings(view.robust):
        drops = {m.name: _drop(view, m.name, probe) for m in nat + group}
        if any(d is None for d in drops.values()):
            return [], [f"{probe}: results missing"], {}
        iv = view.difference_interval(nat, group, drops)
        signs.append(iv.sign())
        parts.append(
            f"{label(group)}: drop {_mean_of([drops[m.name] for m in group]):.3f} vs natural "
            f"{_mean_of([drops[m.name] for m in nat]):.3f}, difference {iv.text()}"
        )
        numbers[group[0].group] = iv.__dict__
    return signs, parts, numbers


def _loses_less_effects(numbers: dict, probe: str) -> list:
    """:func:`_drop_versus_natural`'s numbers as effects (> 0: the robust setting loses less)."""
    what = f"natural's accuracy drop − robust's, {probe}"
    return [effect(group, what, iv, unit=ACCURACY) for group, iv in numbers.items()]


def _ahead(
    view: ResultsView, nat: list[StudyModel], group: list[StudyModel], probe: str, at: float
) -> Interval | None:
    """The robust setting's accuracy − the natural setting's under ``probe`` at ``at``, paired
    over images and pooled over seeds (None when a replicate lacks that level)."""
    levels = {m.name: _levels(view, m.name, probe) for m in nat + group}
    if any(at not in lv for lv in levels.values()):
        return None
    return view.difference_interval(group, nat, {m: lv[at] for m, lv in levels.items()})


def _requires_pair(view: ResultsView) -> Verdict | None:
    if not view.natural or not view.robust:
        return Verdict(INCONCLUSIVE, "needs a natural and at least one robust model")
    return None


def check_median(view: ResultsView) -> Verdict:
    """§4.1, Fig. 6: "the adversarially trained model outperform[s] the standard trained one as
    the times of median filter increases". Two parts, each per robust setting with a paired
    interval (pooled over the seeds of a setting trained with several): the robust model's
    advantage (its accuracy − the natural one's) grows from clean images to the most median
    filtering (it loses less), and at the most filtering it is positive (the robust model is
    the more accurate one, the crossing of Fig. 6). Holds when both hold for every robust
    setting; fails when either part fails for one."""
    missing = _requires_pair(view)
    if missing:
        return missing
    ci = ci_text(view, CI)
    signs, parts, numbers = _drop_versus_natural(view, probes.MEDIAN_FILTER)
    nat = view.settings(view.natural)[0]
    levels = _levels(view, nat[0].name, probes.MEDIAN_FILTER)
    head = f"median filter applied {max(levels):g} times: " if levels else ""
    if not signs:
        return Verdict(INCONCLUSIVE, head + "; ".join(parts), ci, numbers)
    effects = _loses_less_effects(numbers, "median filter")
    ahead, texts, numbers = [], [], {"loses_less": numbers, "outperforms": {}}
    for group in view.settings(view.robust):
        at = max(_levels(view, group[0].name, probes.MEDIAN_FILTER))
        iv = _ahead(view, nat, group, probes.MEDIAN_FILTER, at)
        if iv is None:
            texts.append(f"{label(group)}: no natural result at {at:g} times")
            ahead.append(0)
            continue
        ahead.append(iv.sign())
        texts.append(f"{label(group)}: accuracy − natural's = {iv.text()}")
        numbers["outperforms"][group[0].group] = iv.__dict__
        what = f"accuracy − natural's, median filter applied {at:g} times"
        effects.append(effect(label(group), what, iv, unit=ACCURACY))
    status = both(signs, ahead)
    evidence = (
        f"{head}loses less: {'; '.join(parts)} | outperforms the natural model: {'; '.join(texts)}"
    )
    return Verdict(status, evidence, ci, numbers, effects=effects)


def check_texture(view: ResultsView) -> Verdict:
    """Robust settings lose less accuracy than the natural one on every texture-replacing
    probe (amplitude swap, edge map) and score higher on stylised images when the study has
    them (each setting pooled over its seeds)."""
    missing = _requires_pair(view)
    if missing:
        return missing
    nat = view.settings(view.natural)[0]
    statuses, parts, numbers, effects = [], [], {}, []
    for probe in probes.TEXTURE_PROBES:
        if not _levels(view, nat[0].name, probe):
            continue
        signs, texts, nums = _drop_versus_natural(view, probe)
        statuses.append(combine(signs) if signs else INCONCLUSIVE)
        parts.append(f"{probe.replace('_', ' ')}: {'; '.join(texts)}")
        numbers[probe] = nums
        effects += _loses_less_effects(nums, probe.replace("_", " "))
    if _levels(view, nat[0].name, probes.STYLIZED):
        signs, texts = [], []
        for group in view.settings(view.robust):
            iv = _ahead(view, nat, group, probes.STYLIZED, 1.0)
            if iv is None:
                continue
            signs.append(iv.sign())
            texts.append(f"{label(group)}: accuracy − natural's = {iv.text()}")
            what = "accuracy − natural's on stylised images"
            effects.append(effect(label(group), what, iv, unit=ACCURACY))
        statuses.append(combine(signs) if signs else INCONCLUSIVE)
        parts.append(f"stylised images: {'; '.join(texts)}")
    if not statuses:
        return Verdict(INCONCLUSIVE, "the probes lens ran no texture probe")
    status = every_part(statuses)
    return Verdict(status, " | ".join(parts), ci_text(view, CI), numbers, effects=effects)


def check_blur_gap(view: ResultsView) -> Verdict:
    """Under Gaussian blur the natural − robust accuracy gap stays what it is on clean images:
    its mean change over σ > 0 lies within ±5 points (an equivalence margin), per robust
    setting (pooled over its seeds)."""
    missing = _requires_pair(view)
    if missing:
        return missing
    nat = view.settings(view.natural)[0]
    first = _levels(view, nat[0].name, probes.GAUSSIAN_BLUR)
    if 0.0 not in first or len(first) < 2:
        return Verdict(INCONCLUSIVE, "needs blur at σ = 0 and at least one σ > 0")
    statuses, parts, numbers, effects = [], [], {}, []
    for group in view.settings(view.robust):
        levels = {m.name: _levels(view, m.name, probes.GAUSSIAN_BLUR) for m in nat + group}
        sigmas = [s for s in first if s > 0 and all(s in lv for lv in levels.values())]

        def change(n: StudyModel, r: StudyModel, lv=levels, sigmas=sigmas) -> np.ndarray:
            """The natural − robust gap under each σ minus the clean gap, averaged over σ."""
            gap0 = lv[n.name][0.0] - lv[r.name][0.0]
            return np.mean([(lv[n.name][s] - lv[r.name][s]) - gap0 for s in sigmas], axis=0)

        iv = view.pooled_interval([nat, group], change)
        if iv.low >= -GAP_MARGIN and iv.high <= GAP_MARGIN:
            statuses.append(HOLDS)
        elif iv.low > GAP_MARGIN or iv.high < -GAP_MARGIN:
            statuses.append(FAILS)
        else:
            statuses.append(INCONCLUSIVE)
        gap0 = _mean_of([levels[m.name][0.0] for m in nat]) - _mean_of(
            [levels[m.name][0.0] for m in group]
        )
        parts.append(
            f"{label(group)}: clean gap {gap0:+.3f}, mean change over σ ≤ {max(sigmas):g} "
            f"{iv.text()}"
        )
        numbers[group[0].group] = iv.__dict__
        what = "change of the natural − robust accuracy gap under blur (mean over σ > 0)"
        effects.append(effect(label(group), what, iv, side=0, margin=GAP_MARGIN, unit=ACCURACY))
    status = every_part(statuses)
    evidence = f"margin ±{GAP_MARGIN:g}; " + "; ".join(parts)
    return Verdict(status, evidence, ci_text(view, CI), numbers, effects=effects)


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
