"""The claims of Springer et al. (paper 001): Type B features (§4), universality of robust
features (§5.1, Fig. 3) and targeted transfer from slightly robust sources (§5.2, Fig. 6)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from robustlens.analysis.bootstrap import interval
from robustlens.claims.base import Claim, ResultsView, register_claims
from robustlens.claims.verdict import INCONCLUSIVE, Verdict, combine, every_part, from_sign
from robustlens.lenses import transfer, universality
from robustlens.lenses.base import StudyModel
from robustlens.papers import SPRINGER


def _family(robust: list[StudyModel]) -> tuple[str | None, list[StudyModel]]:
    """The training norm with the most robust models (ties: alphabetical, so the choice does
    not depend on set order) and its models by ε (study order within an ε)."""
    counts = Counter(m.train_norm for m in robust)
    if not counts:
        return None, []
    family = min(counts, key=lambda n: (-counts[n], str(n)))
    return family, sorted((m for m in robust if m.train_norm == family), key=lambda m: m.train_eps)


def _peak_part(view: ResultsView, by_eps: dict[float, np.ndarray]) -> tuple[str, str, dict]:
    """Does accuracy over the sources' ε peak below the largest ε? The best R at a smaller ε
    (chosen on the full data) minus R at the largest ε, with its paired bootstrap interval,
    and how often the argmax over ε falls below the largest ε across resamples."""
    eps = sorted(by_eps)
    values = np.stack([by_eps[e] for e in eps])  # [K, N]
    full = np.nanmean(values, axis=1)
    boot = np.stack([view.mean_samples(v)[1] for v in values], axis=1)  # [B, K]
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
    largest, paired over images (Fig. 3)."""
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
    pair = (pairs[0][0].name, pairs[0][1].name) if pairs else None
    if pair is None:
        listed = ", ".join(m.name for m in natural)
        return Verdict(
            INCONCLUSIVE,
            f"no R_0 from one natural model evaluated by another ({listed}): add a natural "
            "model to the lens's sources",
        )
    evaluator, zero = pair
    base = correct(evaluator, zero)
    family, robust = _family([m for m in view.robust if correct(evaluator, m.name) is not None])
    if not robust:
        return Verdict(INCONCLUSIVE, "no robustified set from a robust source")
    smallest = correct(evaluator, robust[0].name)
    iv = view.mean_interval(smallest - base)
    parts = [from_sign(iv.sign())]
    by_eps: dict[float, np.ndarray] = {}
    for e in dict.fromkeys(m.train_eps for m in robust):
        same = [correct(evaluator, m.name) for m in robust if m.train_eps == e]
        by_eps[e] = np.mean(same, axis=0)
    listing = ", ".join(f"ε={e:g}: {a.mean():.3f}" for e, a in by_eps.items())
    evidence = (
        f"{evaluator} on R_0 from {zero}: {base.mean():.3f}; on R_ε from {family} sources: "
        f"{listing}; R at ε={robust[0].train_eps:g} − R_0 = {iv.text()}"
    )
    numbers: dict = {
        "evaluator": evaluator,
        "r0_source": zero,
        "norm": family,
        "r0": float(base.mean()),
        "by_eps": {e: float(a.mean()) for e, a in by_eps.items()},
        "smallest_minus_r0": iv.__dict__,
    }
    if len(by_eps) >= 3:
        status, text, numbers["peak"] = _peak_part(view, by_eps)
        parts.append(status)
        evidence += f"; {text}"
    else:
        evidence += f"; peak not tested ({len(by_eps)} distinct ε, needs 3)"
    return Verdict(every_part(parts), evidence, "95 % paired bootstrap CI over images", numbers)


def check_targeted_transfer(view: ResultsView) -> Verdict:
    """For every victim: targeted success of examples from the smallest-ε robust source of one
    training norm (the norm with the most robust sources) minus that from a natural source of
    the same architecture, both among the transfer lens's own sources, paired over images
    (Fig. 6)."""
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
    nat = natural[0]
    same_arch = [m for m in sources if m.is_robust and m.card.arch == nat.card.arch]
    family, robust = _family(same_arch)
    if not robust:
        return Verdict(
            INCONCLUSIVE,
            f"no adversarially trained {nat.card.arch} model among the transfer sources "
            f"({', '.join(m.name for m in sources)}) to compare with {nat.name}",
        )
    rob = robust[0]
    signs, parts, numbers = [], [], {"natural": nat.name, "robust": rob.name, "norm": family}
    for v in victims:
        pair = (transfer.hit_name(v, rob.name), transfer.hit_name(v, nat.name))
        if not all(view.has_array("transfer", anchor, n) for n in pair):
            parts.append(f"{v}: missing results")
            continue
        a, b = (view.array("transfer", anchor, n).astype(np.float64) for n in pair)
        iv = view.mean_interval(a - b)
        signs.append(iv.sign())
        text = f"{v}: {a.mean():.3f} vs {b.mean():.3f}, Δ {iv.text()}"
        if view.has_array("transfer", anchor, transfer.clean_hit_name(v)):
            clean = view.array("transfer", anchor, transfer.clean_hit_name(v)).astype(np.float64)
            text += f" (clean images predicted as the target: {clean.mean():.3f})"
        parts.append(text)
        numbers[v] = iv.__dict__
    head = (
        f"targeted success from {rob.name} ({family} ε={rob.train_eps:g}, the smallest of the "
        f"{family} sources) vs from {nat.name} (natural)"
    )
    if not signs:
        return Verdict(INCONCLUSIVE, f"{head}: no victim has both results; " + "; ".join(parts))
    others = sorted({str(m.train_norm) for m in same_arch} - {str(family)})
    if others:
        head += f"; sources of other norms ({', '.join(others)}) not compared"
    evidence = f"{head}: " + "; ".join(parts)
    return Verdict(combine(signs), evidence, "95 % paired bootstrap CI over images", numbers)


def check_type_b(view: ResultsView) -> Verdict:
    """Models trained on zero-robust sets score above chance on the test set robustified
    against every robust source; those trained on negative-robust sets (the leakage control)
    at least on the least robust source's."""
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
    signs, parts, numbers = [], [], {}
    for m in zero + negative:
        sources = robust if m in zero else robust[:1]
        for s in sources:
            name = universality.correct_name(m.name, s.name)
            if not view.has_array("universality", m.name, name):
                continue
            c = view.array("universality", m.name, name).astype(np.float64) - chance
            iv = view.mean_interval(c)
            signs.append(iv.sign())
            parts.append(f"{m.name} on R from {s.name}: accuracy − chance {iv.text()}")
            numbers[f"{m.name}/{s.name}"] = iv.__dict__
    if not signs:
        return Verdict(INCONCLUSIVE, "the universality lens has no results for these models")
    evidence = f"chance {chance:.3f}; " + "; ".join(parts)
    return Verdict(combine(signs), evidence, "95 % paired bootstrap CI over images", numbers)


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
