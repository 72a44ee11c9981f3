"""The claims of Springer et al. (paper 001): Type B features (§4), universality of robust
features (§5.1, Fig. 3) and targeted transfer from slightly robust sources (§5.2, Fig. 6)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from robustlens.analysis.bootstrap import interval
from robustlens.claims.base import (
    ACCURACY,
    Claim,
    Replicate,
    ResultsView,
    ci_text,
    effect,
    label,
    register_claims,
)
from robustlens.claims.verdict import INCONCLUSIVE, Verdict, combine, every_part, from_sign
from robustlens.lenses import transfer, universality
from robustlens.lenses.base import StudyModel
from robustlens.papers import SPRINGER

CI = "95 % paired bootstrap CI over images"


def _family(robust: list[StudyModel]) -> tuple[str | None, list[StudyModel]]:
    """The training norm with the most robust models (ties: alphabetical, so the choice does
    not depend on set order) and its models by ε (study order within an ε)."""
    counts = Counter(m.train_norm for m in robust)
    if not counts:
        return None, []
    family = min(counts, key=lambda n: (-counts[n], str(n)))
    return family, sorted((m for m in robust if m.train_norm == family), key=lambda m: m.train_eps)


def _peak_part(view: ResultsView, by_eps: dict[float, tuple[float, np.ndarray]]) -> tuple:
    """Does accuracy over the sources' ε peak below the largest ε? The best R at a smaller ε
    (chosen on the full data) minus R at the largest ε, with its paired bootstrap interval,
    and how often the argmax over ε falls below the largest ε across resamples. ``by_eps``:
    per ε, R on all images and under each resample (pooled over the sources' seeds)."""
    eps = sorted(by_eps)
    full = np.array([by_eps[e][0] for e in eps])
    boot = np.stack([by_eps[e][1] for e in eps], axis=1)  # [B, K]
    best = int(np.argmax(full[:-1]))
    iv = interval(float(full[best] - full[-1]), boot[:, best] - boot[:, -1])
    argmax = np.argmax(boot, axis=1)
    below = float(np.mean(argmax < len(eps) - 1))
    modal = eps[int(np.bincount(argmax, minlength=len(eps)).argmax())]
    status = from_sign(iv.sign())
    text = (
        f"peak: best R below the largest ε (ε={eps[best]:g}) − R at ε={eps[-1]:g} = {iv.text()}; "
        f"argmax over ε below ε={eps[-1]:g} in {100 * below:.0f} % of resamples (most often "
        f"ε={modal:g})"
    )
    numbers = {
        "best_eps": eps[best],
        "largest_eps": eps[-1],
        "best_minus_largest": iv.__dict__,
        "argmax_below_largest": below,
        "modal_argmax_eps": modal,
    }
    return status, text, numbers


def check_universality(view: ResultsView) -> Verdict:
    """A standard model C' is more accurate on R_ε of the least robust source (ε > 0) than on
    R_0 of another standard model, and its accuracy over the sources' ε peaks below the
    largest ε (when there are at least three): the best R at a smaller ε beats R at the
    largest, paired over images (Fig. 3). Sources trained with several seeds are settings:
    R of a setting is C''s mean accuracy over its replicates' sets, with the seeds resampled
    (R_0's setting: the replicates of its natural setting other than C' itself)."""
    natural = view.natural
    if len(natural) < 2:
        return Verdict(
            INCONCLUSIVE,
            "needs two natural models: one robustifies R_0, the other is evaluated on it (the "
            "paper's C_0 and C'); a model's own R_0 is built from its own features",
        )

    def correct(evaluator: str, source: str) -> np.ndarray | None:
        name = universality.correct_name(evaluator, source)
        if not view.has_array("universality", evaluator, name):
            return None
        return view.array("universality", evaluator, name).astype(np.float64)

    pairs = [
        (e, z)
        for e in natural
        for z in natural
        if z.name != e.name and correct(e.name, z.name) is not None
    ]
    # the paper's C' shares C_0's architecture: prefer such a pair over a victim of another one
    pairs.sort(key=lambda p: p[0].card.arch != p[1].card.arch)
    if not pairs:
        listed = ", ".join(m.name for m in natural)
        return Verdict(
            INCONCLUSIVE,
            f"no R_0 from one natural model evaluated by another ({listed}): add a natural "
            "model to the lens's sources",
        )
    evaluator, zero = pairs[0][0].name, pairs[0][1]
    sources = [*natural, *view.robust]  # R_0 or R_ε of each that has one
    acc = {m.name: a for m in sources if (a := correct(evaluator, m.name)) is not None}
    zeros = [m for m in natural if m.group == zero.group]
    zeros = [m for m in zeros if m.name != evaluator and m.name in acc]
    family, robust = _family([m for m in view.robust if m.name in acc])
    if not robust:
        return Verdict(INCONCLUSIVE, "no robustified set from a robust source")
    settings = view.settings(robust)  # by ε, as ``robust``
    iv = view.difference_interval(settings[0], zeros, acc)
    parts = [from_sign(iv.sign())]
    by_eps: dict[float, tuple[float, np.ndarray]] = {}
    pooled = [(g[0].train_eps, view.pooled_samples([g], lambda m: acc[m.name])) for g in settings]
    for e in dict.fromkeys(e for e, _ in pooled):
        same = [r for eps, r in pooled if eps == e]  # settings of one ε: their mean
        by_eps[e] = (float(np.mean([f for f, _ in same])), np.mean([b for _, b in same], axis=0))
    r0 = float(np.mean([acc[m.name].mean() for m in zeros]))
    listing = ", ".join(f"ε={e:g}: {a:.3f}" for e, (a, _) in by_eps.items())
    evidence = (
        f"{evaluator} on R_0 from {label(zeros)}: {r0:.3f}; on R_ε from {family} sources: "
        f"{listing}; R at ε={robust[0].train_eps:g} − R_0 = {iv.text()}"
    )
    numbers: dict = {
        "evaluator": evaluator,
        "r0_source": zeros[0].group,
        "norm": family,
        "r0": r0,
        "by_eps": {e: a for e, (a, _) in by_eps.items()},
        "smallest_minus_r0": iv.__dict__,
    }
    seeded = [g for g in [zeros, *settings] if len(g) > 1]
    if seeded:
        evidence += f"; pooled over seeds: {', '.join(label(g) for g in seeded)}"
    what = f"{evaluator}'s accuracy on R_ε − on R_0"
    effects = [effect(f"ε={robust[0].train_eps:g} − R_0", what, iv, unit=ACCURACY)]
    if len(by_eps) >= 3:
        status, text, numbers["peak"] = _peak_part(view, by_eps)
        parts.append(status)
        evidence += f"; {text}"
        peak = numbers["peak"]
        effects.append(
            effect(
                f"ε={peak['best_eps']:g} − ε={peak['largest_eps']:g}",
                "best R below the largest ε − R at the largest ε",
                peak["best_minus_largest"],
                unit=ACCURACY,
            )
        )
    else:
        evidence += f"; peak not tested ({len(by_eps)} distinct ε, needs 3)"
    return Verdict(every_part(parts), evidence, ci_text(view, CI), numbers, effects=effects)


def check_targeted_transfer(view: ResultsView) -> Verdict:
    """For every victim: targeted success of examples from the smallest-ε robust source of one
    training norm (the norm with the most robust sources) minus that from a natural source of
    the same architecture, both among the transfer lens's own sources, paired over images
    (Fig. 6). Sources and victims trained with several seeds are settings: the difference is
    averaged over every victim × robust × natural replicate, each setting's seeds resampled."""
    anchor = view.models[0].name if view.models else ""
    names = set(view.array_names("transfer", anchor))
    hits = [hit for n in names if (hit := transfer.parse_hit(n)) is not None]
    made_on = {s for _, s in hits}
    victims = sorted({v for v, _ in hits if v not in made_on})
    order = {m.name: i for i, m in enumerate(view.models)}
    victims.sort(key=lambda v: (order.get(v, len(order)), v))
    sources = [m for m in view.models if m.name in made_on]
    natural = [m for m in sources if m.is_natural]
    if not victims or not sources:
        return Verdict(
            INCONCLUSIVE,
            "needs transfer results from a natural and a robust source on at least one victim",
        )
    if not natural:
        return Verdict(
            INCONCLUSIVE,
            f"no natural model among the transfer sources ({', '.join(m.name for m in sources)})"
            ": add one to the lens's sources",
        )
    nat = view.settings(natural)[0]
    same_arch = [m for m in sources if m.is_robust and m.card.arch == nat[0].card.arch]
    family, robust = _family(same_arch)
    if not robust:
        return Verdict(
            INCONCLUSIVE,
            f"no adversarially trained {nat[0].card.arch} model among the transfer sources "
            f"({', '.join(m.name for m in sources)}) to compare with {nat[0].name}",
        )
    rob = view.settings(robust)[0]
    signs, parts, effects = [], [], []
    what = f"targeted success from {rob[0].group} − from {nat[0].group}"
    numbers: dict = {"natural": nat[0].group, "robust": rob[0].group, "norm": family}
    for victim in _victim_settings(view, victims):
        rows = {
            (v.name, s.name): transfer.hit_name(v.name, s.name)
            for v in victim
            for s in [*rob, *nat]
        }
        if not all(view.has_array("transfer", anchor, n) for n in rows.values()):
            parts.append(f"{label(victim)}: missing results")
            continue
        hit = {k: view.array("transfer", anchor, n).astype(np.float64) for k, n in rows.items()}

        def gain(v: Replicate, r: Replicate, n: Replicate, hit=hit) -> np.ndarray:
            return hit[v.name, r.name] - hit[v.name, n.name]

        iv = view.pooled_interval([victim, rob, nat], gain)
        a, b = (
            np.mean([hit[v.name, s.name].mean() for v in victim for s in g]) for g in (rob, nat)
        )
        signs.append(iv.sign())
        text = f"{label(victim)}: {a:.3f} vs {b:.3f}, Δ {iv.text()}"
        clean = [transfer.clean_hit_name(v.name) for v in victim]
        if all(view.has_array("transfer", anchor, c) for c in clean):
            rate = np.mean([view.array("transfer", anchor, c).mean() for c in clean])
            text += f" (clean images predicted as the target: {rate:.3f})"
        parts.append(text)
        numbers[victim[0].group] = iv.__dict__
        effects.append(effect(f"on {label(victim)}", what, iv, unit=ACCURACY))
    head = (
        f"targeted success from {label(rob)} ({family} ε={rob[0].train_eps:g}, the smallest of "
        f"the {family} sources) vs from {label(nat)} (natural)"
    )
    if not signs:
        return Verdict(INCONCLUSIVE, f"{head}: no victim has both results; " + "; ".join(parts))
    others = sorted({str(m.train_norm) for m in same_arch} - {str(family)})
    if others:
        head += f"; sources of other norms ({', '.join(others)}) not compared"
    evidence = f"{head}: " + "; ".join(parts)
    return Verdict(combine(signs), evidence, ci_text(view, CI), numbers, effects=effects)


@dataclass(frozen=True)
class _Victim:
    """A victim as a replicate of its setting (a victim need not be a model of the view:
    another architecture's model the lens attacked)."""

    name: str
    group: str


def _victim_settings(view: ResultsView, victims: list[str]) -> list[list[_Victim]]:
    """The victims grouped by setting (a victim that is no model of the view is a setting of
    its own), in the order given."""
    setting = {m.name: m.group for m in view.models}
    groups: dict[str, list[_Victim]] = {}
    for v in victims:
        g = setting.get(v, v)
        groups.setdefault(g, []).append(_Victim(v, g))
    return list(groups.values())


def check_type_b(view: ResultsView) -> Verdict:
    """Models trained on zero-robust sets score above chance on the test set robustified
    against every robust source; those trained on negative-robust sets (the leakage control)
    at least on the least robust source's. Settings trained with several seeds (the trained
    models' or the sources') are pooled over every pair of replicates, seeds resampled."""
    chance = 1.0 / view.num_classes
    robust = sorted(view.robust, key=lambda m: m.train_eps)
    trained = [m for m in view.models if m.trained_on is not None]
    zero = [m for m in trained if m.trained_on.get("set") in ("zero", "zero-all")]
    negative = [m for m in trained if m.trained_on.get("set") == "negative"]
    if not (zero or negative) or not robust:
        return Verdict(
            INCONCLUSIVE,
            "needs models trained on zero- or negative-robust sets (train_on) and robustified "
            "sets from robust sources",
        )
    signs, parts, numbers, effects = [], [], {}, []
    sources_all = view.settings(robust)
    for group in view.settings(zero) + view.settings(negative):
        sources = sources_all if group[0] in zero else sources_all[:1]
        for source in sources:
            names = {
                (m.name, s.name): universality.correct_name(m.name, s.name)
                for m in group
                for s in source
            }
            if not all(view.has_array("universality", m, n) for (m, _), n in names.items()):
                continue
            above = {
                k: view.array("universality", k[0], n).astype(np.float64) - chance
                for k, n in names.items()
            }
            iv = view.pooled_interval([group, source], lambda m, s, a=above: a[m.name, s.name])
            signs.append(iv.sign())
            parts.append(f"{label(group)} on R from {label(source)}: accuracy − chance {iv.text()}")
            numbers[f"{group[0].group}/{source[0].group}"] = iv.__dict__
            row = f"{label(group)} on R from {label(source)}"
            effects.append(effect(row, f"accuracy − chance ({chance:.3f})", iv, unit=ACCURACY))
    if not signs:
        return Verdict(INCONCLUSIVE, "the universality lens has no results for these models")
    evidence = f"chance {chance:.3f}; " + "; ".join(parts)
    return Verdict(combine(signs), evidence, ci_text(view, CI), numbers, effects=effects)


CLAIMS_001: tuple[Claim, ...] = register_claims(
    Claim(
        "001-4-type-b",
        SPRINGER,
        "§4, Tables 1/5",
        "Classifiers trained on zero-robust (and, as a control, negative-robust) sets score "
        "above chance on robustified test sets: non-robust features entangled with robust "
        "ones (Type B) exist.",
        ("universality",),
        check_type_b,
    ),
    Claim(
        "001-5.1-universality",
        SPRINGER,
        "§5.1, Fig. 3",
        "A standard model is more accurate on test sets robustified against slightly robust "
        "models than on one robustified against another standard model, with a peak at a "
        "small ε.",
        ("universality",),
        check_universality,
    ),
    Claim(
        "001-5.2-targeted-transfer",
        SPRINGER,
        "§5.2, Fig. 6",
        "Targeted adversarial examples transfer better to other architectures when the source "
        "model is slightly robust than when it is natural.",
        ("transfer",),
        check_targeted_transfer,
    ),
)
