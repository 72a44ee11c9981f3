"""The universality claim of Springer et al. (paper 001, §5.1, Fig. 3)."""

from __future__ import annotations

import numpy as np

from robustlens.study.claims.base import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Claim,
    ResultsView,
    Verdict,
    combine,
    every_part,
    mean_interval,
)

PAPER_001 = "001_3364f971c200652f (Springer et al.)"


def check_universality(view: ResultsView, w: np.ndarray) -> Verdict:
    """A standard model C' is more accurate on R_ε of the least robust source (ε > 0) than on
    R_0 of another standard model, and its accuracy over the sources' ε peaks below the
    largest ε (when there are at least three)."""
    natural = view.natural
    if len(natural) < 2:
        return Verdict(
            INCONCLUSIVE,
            "needs two natural models: one robustifies R_0, the other is evaluated on it (the "
            "paper's C_0 and C'); a model's own R_0 is built from its own features",
        )
    evaluator, zero = natural[0].name, natural[1].name

    def correct(source: str) -> np.ndarray | None:
        name = f"correct/{evaluator}/{source}"
        if not view.has_array("universality", evaluator, name):
            return None
        return view.array("universality", evaluator, name).astype(np.float64)

    base = correct(zero)
    if base is None:
        return Verdict(INCONCLUSIVE, f"no R_0 from {zero}: add it to the lens's sources")
    norms = {m.train_norm for m in view.robust}
    family = max(norms, key=lambda n: sum(m.train_norm == n for m in view.robust), default=None)
    robust = sorted((m for m in view.robust if m.train_norm == family), key=lambda m: m.train_eps)
    robust = [m for m in robust if correct(m.name) is not None]
    if not robust:
        return Verdict(INCONCLUSIVE, "no robustified set from a robust source")
    smallest = correct(robust[0].name)
    diff = smallest - base
    iv = mean_interval(view, diff)
    parts = [{1: HOLDS, -1: FAILS}.get(iv.sign(), INCONCLUSIVE)]
    accs = {m.train_eps: float(correct(m.name).mean()) for m in robust}
    listing = ", ".join(f"ε={e:g}: {a:.3f}" for e, a in accs.items())
    evidence = (
        f"{evaluator} on R_0 from {zero}: {base.mean():.3f}; on R_ε from {family} sources: "
        f"{listing}; R at ε={robust[0].train_eps:g} − R_0 = {iv.text()}"
    )
    if len(accs) >= 3:
        peak = max(accs, key=accs.get)
        parts.append(HOLDS if peak < max(accs) else FAILS)
        evidence += f"; peak at ε={peak:g}"
    numbers = {"r0": float(base.mean()), "by_eps": accs, "smallest_minus_r0": iv.__dict__}
    return Verdict(every_part(parts), evidence, "95 % paired bootstrap CI over images", numbers)


def check_targeted_transfer(view: ResultsView, w: np.ndarray) -> Verdict:
    """For every victim: targeted success of examples from the least robust robust source
    (ε > 0) minus that from a natural source of the same architecture, paired over images."""
    anchor = view.models[0].name if view.models else ""
    names = set(view.array_names("transfer", anchor))
    victims = sorted({n.split("/")[1] for n in names if n.startswith("hit/")})
    pairs = []
    if view.natural and view.robust:
        nat = view.natural[0].name
        rob = min(view.robust, key=lambda m: m.train_eps).name
        pairs = [
            (v, nat, rob)
            for v in victims
            if v not in (nat, rob) and {f"hit/{v}/{nat}", f"hit/{v}/{rob}"} <= names
        ]
    if not pairs:
        return Verdict(
            INCONCLUSIVE,
            "needs transfer results from a natural and a robust source on at least one victim",
        )
    signs, parts, numbers = [], [], {}
    for v, nat, rob in pairs:
        a = view.array("transfer", anchor, f"hit/{v}/{rob}").astype(np.float64)
        b = view.array("transfer", anchor, f"hit/{v}/{nat}").astype(np.float64)
        diff = a - b
        iv = mean_interval(view, diff)
        signs.append(iv.sign())
        parts.append(f"{v}: from {rob} {a.mean():.3f} vs from {nat} {b.mean():.3f}, Δ {iv.text()}")
        numbers[v] = iv.__dict__
    status = combine(signs)
    return Verdict(status, "; ".join(parts), "95 % paired bootstrap CI over images", numbers)


def check_type_b(view: ResultsView, w: np.ndarray) -> Verdict:
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
            name = f"correct/{m.name}/{s.name}"
            if not view.has_array("universality", m.name, name):
                continue
            c = view.array("universality", m.name, name).astype(np.float64) - chance
            iv = mean_interval(view, c)
            signs.append(iv.sign())
            parts.append(f"{m.name} on R from {s.name}: accuracy − chance {iv.text()}")
            numbers[f"{m.name}/{s.name}"] = iv.__dict__
    if not signs:
        return Verdict(INCONCLUSIVE, "the universality lens has no results for these models")
    evidence = f"chance {chance:.3f}; " + "; ".join(parts)
    return Verdict(combine(signs), evidence, "95 % paired bootstrap CI over images", numbers)


CLAIMS_001: tuple[Claim, ...] = (
    Claim(
        "001-4-type-b",
        PAPER_001,
        "§4, Tables 1/5",
        "Classifiers trained on zero-robust (and, as a control, negative-robust) sets score "
        "above chance on robustified test sets: non-robust features entangled with robust "
        "ones (Type B) exist.",
        ("universality",),
        check_type_b,
    ),
    Claim(
        "001-5.1-universality",
        PAPER_001,
        "§5.1, Fig. 3",
        "A standard model is more accurate on test sets robustified against slightly robust "
        "models than on one robustified against another standard model, with a peak at a "
        "small ε.",
        ("universality",),
        check_universality,
    ),
    Claim(
        "001-5.2-targeted-transfer",
        PAPER_001,
        "§5.2, Fig. 6",
        "Targeted adversarial examples transfer better to other architectures when the source "
        "model is slightly robust than when it is natural.",
        ("transfer",),
        check_targeted_transfer,
    ),
)
