"""The claims of Itazuri et al. (paper 002) about sensitivity maps (§3.4, App. A)."""

from __future__ import annotations

import numpy as np

from robustlens.claims.base import Claim, ResultsView, ci_text, effect, label, register_claims
from robustlens.claims.verdict import INCONCLUSIVE, Verdict, combine, every_part
from robustlens.lenses import saliency
from robustlens.papers import ITAZURI

CI = "95 % paired bootstrap CI over images"


def check_high_frequency(view: ResultsView) -> Verdict:
    """For every method and robust setting, the share of map energy above ½ Nyquist is lower
    than the natural setting's on the same images (paired; a setting pooled over its seeds)."""
    if not view.natural or not view.robust:
        return Verdict(INCONCLUSIVE, "needs a natural and at least one robust model")
    nat = view.settings(view.natural)[0]
    statuses, parts, numbers, effects = [], [], {}, []
    what = "Δ share of map energy above ½ Nyquist (robust − natural)"
    for method in saliency.high_frequency_methods(view.array_names("saliency", nat[0].name)):
        key = saliency.high_frequency_name(method)
        signs, texts = [], []
        for group in view.settings(view.robust):
            share = {m.name: view.array("saliency", m.name, key) for m in nat + group}
            iv = view.difference_interval(group, nat, share)
            signs.append(-iv.sign())
            texts.append(f"{label(group)} Δ {iv.text()}")
            numbers.setdefault(method, {})[group[0].group] = iv.__dict__
            row = f"{method}: {label(group)}"
            effects.append(effect(row, what, iv, side=-1, unit="share of energy"))
        status = combine(signs)
        statuses.append(status)
        base = np.mean([np.nanmean(view.array("saliency", m.name, key)) for m in nat])
        parts.append(f"{method} (natural {base:.3f}): {', '.join(texts)} → {status}")
    if not statuses:
        return Verdict(INCONCLUSIVE, "the saliency lens stored no maps")
    status = every_part(statuses)
    return Verdict(status, "; ".join(parts), ci_text(view, CI), numbers, effects=effects)


def check_guided_sanity(view: ResultsView) -> Verdict:
    """With every layer randomised, guided backprop's maps keep a mean Spearman correlation
    below the lens's threshold with the trained model's maps, for every model (every setting,
    pooled over its seeds)."""
    signs, parts, numbers, effects = [], [], {}, []
    name = saliency.sanity_name("guided")
    for group in view.settings(view.models):
        group = [m for m in group if view.has_array("saliency", m.name, name)]
        if not group:
            continue
        threshold = float(view.array("saliency", group[0].name, saliency.SANITY_THRESHOLD)[0])
        iv = view.pooled_interval([group], lambda m: view.array("saliency", m.name, name)[-1])
        signs.append(1 if iv.high < threshold else (-1 if iv.low >= threshold else 0))
        parts.append(f"{label(group)}: Spearman after full randomisation {iv.text()}")
        numbers[group[0].group] = iv.__dict__
        what = "Spearman ρ of guided-backprop maps, trained vs fully randomised"
        effects.append(
            effect(label(group), what, iv, line=threshold, side=-1, unit="rank correlation")
        )
    if not signs:
        return Verdict(INCONCLUSIVE, "the saliency lens ran no sanity check of guided backprop")
    text = f"threshold {threshold:g}; " + "; ".join(parts)
    ci = ci_text(view, "95 % bootstrap CI over the check's images", "the check's images")
    return Verdict(combine(signs), text, ci, numbers, effects=effects)


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
