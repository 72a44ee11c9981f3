"""The claims of Itazuri et al. (paper 002) about sensitivity maps (§3.4, App. A)."""

from __future__ import annotations

import numpy as np

from robustlens.claims.base import Claim, ResultsView, register_claims
from robustlens.claims.verdict import INCONCLUSIVE, Verdict, combine, every_part
from robustlens.lenses import saliency
from robustlens.papers import ITAZURI

CI = "95 % paired bootstrap CI over images"


def check_high_frequency(view: ResultsView) -> Verdict:
    """For every method and robust model, the share of map energy above ½ Nyquist is lower
    than the natural model's on the same images (paired)."""
    if not view.natural or not view.robust:
        return Verdict(INCONCLUSIVE, "needs a natural and at least one robust model")
    nat = view.natural[0].name
    statuses, parts, numbers = [], [], {}
    for method in saliency.high_frequency_methods(view.array_names("saliency", nat)):
        base = view.array("saliency", nat, saliency.high_frequency_name(method))
        signs, texts = [], []
        for m in view.robust:
            other = view.array("saliency", m.name, saliency.high_frequency_name(method))
            diff = other - base
            keep = ~np.isnan(diff)
            diff = diff[keep]
            iv = view.mean_interval(diff)
            signs.append(-iv.sign())
            texts.append(f"{m.name} Δ {iv.text()}")
            numbers.setdefault(method, {})[m.name] = iv.__dict__
        status = combine(signs)
        statuses.append(status)
        parts.append(f"{method} (natural {np.nanmean(base):.3f}): {', '.join(texts)} → {status}")
    if not statuses:
        return Verdict(INCONCLUSIVE, "the saliency lens stored no maps")
    status = every_part(statuses)
    return Verdict(status, "; ".join(parts), CI, numbers)


def check_guided_sanity(view: ResultsView) -> Verdict:
    """With every layer randomised, guided backprop's maps keep a mean Spearman correlation
    below the lens's threshold with the trained model's maps, for every model."""
    signs, parts, numbers = [], [], {}
    for m in view.models:
        name = saliency.sanity_name("guided")
        if not view.has_array("saliency", m.name, name):
            continue
        last = view.array("saliency", m.name, name)[-1]
        threshold = float(view.array("saliency", m.name, saliency.SANITY_THRESHOLD)[0])
        last = last[~np.isnan(last)]
        iv = view.mean_interval(last)
        signs.append(1 if iv.high < threshold else (-1 if iv.low >= threshold else 0))
        parts.append(f"{m.name}: Spearman after full randomisation {iv.text()}")
        numbers[m.name] = iv.__dict__
    if not signs:
        return Verdict(INCONCLUSIVE, "the saliency lens ran no sanity check of guided backprop")
    text = f"threshold {threshold:g}; " + "; ".join(parts)
    return Verdict(combine(signs), text, "95 % bootstrap CI over the check's images", numbers)


CLAIMS_002_SALIENCY: tuple[Claim, ...] = register_claims(
    Claim(
        "002-3.4-frequency",
        ITAZURI,
        "§3.4, Fig. 2",
        "Sensitivity maps of adversarially trained models carry less high-frequency energy "
        "(they follow larger-scale structure) than those of natural models.",
        ("saliency",),
        check_high_frequency,
    ),
    Claim(
        "002-A-guided-sanity",
        ITAZURI,
        "App. A, Fig. 10",
        "Guided backpropagation passes the cascading parameter-randomisation check: its maps "
        "change when the model's parameters are randomised.",
        ("saliency",),
        check_guided_sanity,
    ),
)
