"""The claims of Garaev et al. (paper 004): unseen attacks, norm equivalence, loss
distributions, representation similarity and distance to the decision boundary."""

from __future__ import annotations

import numpy as np

from robustlens.analysis.bootstrap import Interval, interval, median_interval, weighted_mean
from robustlens.claims.base import Claim, ResultsView, ci_text, label, register_claims
from robustlens.claims.verdict import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Verdict,
    both,
    combine,
    every_part,
)
from robustlens.lenses import attack_grid, boundary, loss_dist, norm_ratio, similarity
from robustlens.lenses.common import attack_array, attack_keys
from robustlens.papers import GARAEV

CI = "95 % paired bootstrap CI over images"

LINF_ROW = "pgd linf 0.025"
L2_ROW = "pgd l2 0.25"
"""The two PGD rows of Tables 1–2 the §3.1 claim compares (paper units; any number of steps)."""

NEAR_SQRT_D = 0.75
FAR_BELOW_SQRT_D = 0.5
"""§3.2: L∞ ratios "near √d" = median ≥ 0.75·√d; L2 "far below" = median ≤ 0.5·√d (the paper's
Table 4 has L∞ C1 ≥ 0.72·√d and L2 C2 ≤ 0.27·√d)."""
MEDIAN_RESAMPLES = 200
"""Resamples of the bootstrap interval of a median ratio (unpaired: each model its own)."""


def _find(view: ResultsView, lens: str, model: str, prefix: str, stem: str) -> np.ndarray | None:
    """The array ``stem/<key>`` whose attack key starts with ``prefix`` (steps may differ) and
    whose budget is in the claims' CIFAR-10 units: a row written for another reference
    (``… @imagenet``, Table A1) is a different budget and never stands in for it."""
    for key in _keys(view, lens, model, stem):
        if "@" in key and not key.endswith("@cifar10"):
            continue
        plain = key.removesuffix("@cifar10").rstrip()
        if plain == prefix or plain.startswith(prefix + " "):
            return view.array(lens, model, attack_array(stem, key))
    return None


def _keys(view: ResultsView, lens: str, model: str, stem: str) -> list[str]:
    return attack_keys(view.array_names(lens, model), stem)


# ----------------------------------------------------------------------------- §3.1


def check_linf_hurts_more(view: ResultsView) -> Verdict:
    """For every model (every setting, pooled over its seeds), accuracy under PGD L∞
    (ε 0.025) < under PGD L2 (ε 0.25)."""
    signs, parts, numbers = [], [], {}
    for group in view.settings(view.models):
        rows = [
            (
                _find(view, "attack_grid", m.name, LINF_ROW, attack_grid.ROBUST),
                _find(view, "attack_grid", m.name, L2_ROW, attack_grid.ROBUST),
            )
            for m in group
        ]
        if any(linf is None or l2 is None for linf, l2 in rows):
            parts.append(f"{label(group)}: the grid lacks the rows '{LINF_ROW} …' and '{L2_ROW} …'")
            continue
        diffs = [l2.astype(np.float64) - linf.astype(np.float64) for linf, l2 in rows]
        iv = view.setting_mean_interval(diffs, group[0].group)
        linf_acc = float(np.mean([linf.mean() for linf, _ in rows]))
        l2_acc = float(np.mean([l2.mean() for _, l2 in rows]))
        signs.append(iv.sign())
        parts.append(
            f"{label(group)}: acc L2 − acc L∞ = {iv.text()} (L∞ {linf_acc:.3f}, L2 {l2_acc:.3f})"
        )
        numbers[group[0].group] = {"linf": linf_acc, "l2": l2_acc, **iv.__dict__}
    status = combine(signs) if signs else INCONCLUSIVE
    return Verdict(status, "; ".join(parts), ci_text(view, CI), numbers)


# ----------------------------------------------------------------------------- §3.2


def _median_ratio(view: ResultsView, model: str, norm: str) -> tuple[float, float, float] | None:
    """Median of ‖δ‖₂/‖δ‖∞ / √d for the model's PGD setting in ``norm``, with a CI."""
    keys = _keys(view, "norm_ratio", model, norm_ratio.RATIO)
    keys = [k for k in keys if k.startswith(f"pgd {norm} ")]
    if not keys:
        return None
    ratio = view.array("norm_ratio", model, attack_array(norm_ratio.RATIO, keys[0]))
    sqrt_d = float(view.array("norm_ratio", model, norm_ratio.SQRT_D)[0])
    ok = ratio[~np.isnan(ratio)] / sqrt_d
    if ok.size < 5:
        return None
    iv = median_interval(ok, MEDIAN_RESAMPLES, view.seed)
    return iv.estimate, iv.low, iv.high


def check_norm_ratio(view: ResultsView) -> Verdict:
    signs, parts, numbers = [], [], {}
    for m in view.models:
        linf, l2 = _median_ratio(view, m.name, "linf"), _median_ratio(view, m.name, "l2")
        if linf is None or l2 is None:
            parts.append(f"{m.name}: too few successful PGD perturbations in L∞ or L2")
            continue
        near = 1 if linf[1] >= NEAR_SQRT_D else (-1 if linf[2] < NEAR_SQRT_D else 0)
        far = 1 if l2[2] <= FAR_BELOW_SQRT_D else (-1 if l2[1] > FAR_BELOW_SQRT_D else 0)
        signs.append(min(near, far) if -1 not in (near, far) else -1)
        parts.append(
            f"{m.name}: median ratio/√d L∞ = {linf[0]:.2f} [{linf[1]:.2f}, {linf[2]:.2f}], "
            f"L2 = {l2[0]:.2f} [{l2[1]:.2f}, {l2[2]:.2f}]"
        )
        numbers[m.name] = {"linf": linf, "l2": l2}
    evidence = "; ".join(parts) + (
        f" (near √d: ≥ {NEAR_SQRT_D}; far below: ≤ {FAR_BELOW_SQRT_D})" if parts else ""
    )
    return Verdict(
        combine(signs) if signs else INCONCLUSIVE,
        evidence,
        "95 % bootstrap CI of the median",
        numbers,
    )


# ----------------------------------------------------------------------------- §3.3


def _a_distance(view: ResultsView, model: str, norm: str) -> tuple[float, np.ndarray] | None:
    """Proxy A-distance (clean vs PGD in ``norm``) and its bootstrap over images."""
    keys = _keys(view, "loss_dist", model, loss_dist.A_ERRORS)
    keys = [k for k in keys if k.startswith(f"pgd {norm} ")]
    if not keys:
        return None
    errors = view.array("loss_dist", model, attack_array(loss_dist.A_ERRORS, keys[0]))
    errors = errors.astype(np.float64)  # [2, N]
    per_image = errors.mean(axis=0)  # both copies of an image travel together
    estimate, boot = view.mean_samples(per_image)
    return 2 * (1 - 2 * estimate), 2 * (1 - 2 * boot)


def check_a_distance(view: ResultsView) -> Verdict:
    if not view.natural or not view.robust:
        return Verdict(INCONCLUSIVE, "needs a natural and at least one robust model")
    nat = view.natural[0]
    closer, not_all_the_way, least_linf, parts, numbers = [], [], [], [], {}
    base = {norm: _a_distance(view, nat.name, norm) for norm in ("l2", "linf")}
    if None in base.values():
        return Verdict(INCONCLUSIVE, "loss_dist lacks a PGD L2 or PGD L∞ setting")
    parts.append(", ".join(f"{nat.name}: A({n}) = {base[n][0]:.2f}" for n in base))
    for m in view.robust:
        a = {norm: _a_distance(view, m.name, norm) for norm in ("l2", "linf")}
        if None in a.values():
            parts.append(f"{m.name}: loss_dist lacks a PGD L2 or PGD L∞ setting")
            closer.append(0)  # no verdict for this model: the claim cannot hold
            continue
        for norm in ("l2", "linf"):
            iv = interval(base[norm][0] - a[norm][0], base[norm][1] - a[norm][1])
            closer.append(iv.sign())
            # "Not all the way": A above 0. The lens's paired folds make A = 0 exactly when
            # the two copies of every image are indistinguishable (one of them is always
            # wrong), so an interval at or below 0 says the classifier is at chance.
            gap = interval(a[norm][0], a[norm][1])
            not_all_the_way.append(1 if gap.low > 0 else (-1 if gap.high <= 0 else 0))
            parts.append(f"{m.name}: A({norm}) = {gap.text()}, natural − robust = {iv.text()}")
        order = interval(a["linf"][0] - a["l2"][0], a["linf"][1] - a["l2"][1])
        least_linf.append(order.sign())
        parts.append(f"{m.name}: A(L∞) − A(L2) = {order.text()}")
        numbers[m.name] = {norm: a[norm][0] for norm in a}
    status = both(closer, not_all_the_way)
    status = both([1 if status == HOLDS else (-1 if status == FAILS else 0)], least_linf)
    return Verdict(status, "; ".join(parts), CI, numbers)


# ----------------------------------------------------------------------------- §4.1


def _svcca(view: ResultsView, model: str) -> dict[str, tuple[float, np.ndarray | None]]:
    out = {}
    for key in _keys(view, "similarity", model, similarity.SVCCA):
        value = float(view.array("similarity", model, attack_array(similarity.SVCCA, key))[0])
        boot_name = attack_array(similarity.SVCCA_BOOT, key)
        boot = (
            view.array("similarity", model, boot_name)
            if view.has_array("similarity", model, boot_name)
            else None
        )
        out[key] = (value, boot)
    return out


def check_svcca(view: ResultsView) -> Verdict:
    if not view.natural or not view.robust:
        return Verdict(INCONCLUSIVE, "needs a natural and at least one robust model")
    nat = _svcca(view, view.natural[0].name)
    higher, lowest_linf, parts, numbers = [], [], [], {}
    for m in view.models:
        s = _svcca(view, m.name)
        if not s:
            continue
        numbers[m.name] = {k: v[0] for k, v in s.items()}
        linf = [k for k in s if k.split()[1] == "linf"]
        l2 = [k for k in s if k.split()[1] == "l2"]
        if linf and l2:  # the lowest SVCCA of the model comes from an L∞ attack
            worst_linf = min(linf, key=lambda k: s[k][0])
            worst_l2 = min(l2, key=lambda k: s[k][0])
            lowest_linf.append(_diff_sign(s[worst_l2], s[worst_linf]))
            parts.append(
                f"{m.name}: lowest L∞ {s[worst_linf][0]:.3f} vs lowest L2 {s[worst_l2][0]:.3f}"
            )
        if m.is_robust:
            for key, value in s.items():
                if key in nat:
                    sign = _diff_sign(value, nat[key])
                    higher.append(sign)
                    parts.append(f"{m.name} − natural ({key}): {value[0] - nat[key][0]:+.3f}")
    status = both(higher, lowest_linf) if higher and lowest_linf else INCONCLUSIVE
    return Verdict(
        status, "; ".join(parts), "95 % paired bootstrap CI over images (100 resamples)", numbers
    )


def _diff_sign(a: tuple[float, np.ndarray | None], b: tuple[float, np.ndarray | None]) -> int:
    """Sign of a − b from their paired bootstrap samples (0 when unknown or spanning 0)."""
    if a[1] is None or b[1] is None or len(a[1]) != len(b[1]):
        return 0
    return interval(a[0] - b[0], a[1] - b[1]).sign()


# ------------------------------------------------------------------------------- §5


def check_boundary(view: ResultsView) -> Verdict:
    """L2-trained models have a larger mean DeepFool L2 distance to the boundary than the
    natural one, and L∞-trained ones a smaller increase. The mean is over every evaluation
    image (the boundary lens's ``distance/l2``, measured from each image's clean prediction),
    so all models are compared on the same images, resample by resample; the correctly
    classified subsets differ between models and could not be paired."""
    if not view.natural:
        return Verdict(INCONCLUSIVE, "needs a natural model")
    l2_models = [m for m in view.robust if m.train_norm == "l2"]
    linf_models = [m for m in view.robust if m.train_norm == "linf"]
    if not l2_models:
        return Verdict(INCONCLUSIVE, "needs at least one L2-trained model")
    nat = view.natural[0]

    def distances(name: str) -> np.ndarray:
        d = view.array("boundary", name, boundary.distance_name("l2")).astype(np.float64)
        return np.where(np.isfinite(d), d, np.nan)

    base = distances(nat.name)
    base_mean, base_boot = view.mean_samples(base)
    means = {m.name: view.mean_samples(distances(m.name)) for m in l2_models + linf_models}
    increase = {
        name: interval(mean - base_mean, boot - base_boot) for name, (mean, boot) in means.items()
    }
    parts = [f"{nat.name}: mean L2 distance {base_mean:.3f}"]
    parts += [f"{name}: increase {iv.text()}" for name, iv in increase.items()]
    grows = [increase[m.name].sign() for m in l2_models]
    less = []
    for a in linf_models:
        for b in l2_models:
            est = increase[b.name].estimate - increase[a.name].estimate
            less.append(interval(est, means[b.name][1] - means[a.name][1]).sign())
    if not linf_models:
        parts.append("no L∞-trained model to compare")
    status = (
        both(grows, less) if less else (combine(grows) if combine(grows) == FAILS else INCONCLUSIVE)
    )
    return Verdict(status, "; ".join(parts), CI, {k: v.__dict__ for k, v in increase.items()})


ROBUST_DATA_ROWS = ("pgd linf 0.025", "pgd linf 0.25", "fgsm linf 0.025", "fgsm linf 0.25")
"""The L∞ rows of Tables 1–2 the robust-data claim reads (paper units; PGD with any number of
steps); the first is required, the others are used when the grid has them."""

RETAINED_AT_MOST = 0.5
"""§3.1 "not robust to L∞ attacks": under each L∞ row the robust-data model keeps less than
half of its clean accuracy (accuracy under attack / clean accuracy < 0.5). Tables 1–2 put the
robust-data models at 0.10–0.27 of clean under these rows and the adversarially trained ones
at 0.59–0.83 under the ε = 0.025 rows, so ½ separates "not robust" from "robust"."""


def _retained(
    view: ResultsView, clean: np.ndarray, attacked: np.ndarray
) -> tuple[Interval, Interval]:
    """Accuracy under attack / clean accuracy, and the drop clean − attacked, with paired
    bootstrap intervals over images (the ratio of the two resampled means)."""
    clean, attacked = clean.astype(np.float64), attacked.astype(np.float64)
    w = view.weights(clean.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = interval(
            float(attacked.mean() / clean.mean()),
            weighted_mean(attacked, w) / weighted_mean(clean, w),
        )
    return ratio, view.mean_interval(clean - attacked)


def check_robust_data(view: ResultsView) -> Verdict:
    """Every model trained on a robustified training set (D_R) keeps less than half of its
    clean accuracy under each L∞ row of the attack grid (PGD L∞ ε 0.025 required; PGD L∞ 0.25
    and FGSM L∞ 0.025 / 0.25 when present): the upper end of the paired bootstrap interval of
    accuracy under attack / clean accuracy lies below ``RETAINED_AT_MOST``. Fails when the
    lower end lies above it for some row. The adversarially trained models' accuracies under
    the same rows are reported beside it, as in Tables 1–2, without entering the verdict."""
    trained = [
        m
        for m in view.models
        if m.trained_on is not None and m.trained_on.get("set") == "robustified"
    ]
    if not trained:
        return Verdict(
            INCONCLUSIVE,
            "needs a model trained on a robustified set (train_on set = 'robustified') in the "
            "attack grid",
        )
    statuses, parts, numbers = [], [], {}
    for m in trained:
        if not view.has_array("attack_grid", m.name, attack_grid.CLEAN):
            parts.append(f"{m.name}: no clean accuracy in the attack grid")
            statuses.append(INCONCLUSIVE)
            continue
        clean = view.array("attack_grid", m.name, attack_grid.CLEAN).astype(bool)
        rows = {
            r: _find(view, "attack_grid", m.name, r, attack_grid.ROBUST) for r in ROBUST_DATA_ROWS
        }
        if rows[ROBUST_DATA_ROWS[0]] is None:
            parts.append(f"{m.name}: the attack grid lacks the row '{ROBUST_DATA_ROWS[0]} …'")
            statuses.append(INCONCLUSIVE)
            continue
        if not clean.any():
            parts.append(f"{m.name}: clean accuracy 0, nothing to lose under attack")
            statuses.append(INCONCLUSIVE)
            continue
        texts = []
        for row, attacked in rows.items():
            if attacked is None:
                continue
            ratio, drop = _retained(view, clean, attacked.astype(bool))
            if ratio.high < RETAINED_AT_MOST:
                statuses.append(HOLDS)
            elif ratio.low > RETAINED_AT_MOST:
                statuses.append(FAILS)
            else:
                statuses.append(INCONCLUSIVE)
            others = [
                f"{r.name} {a.mean():.3f}"
                for r in view.robust
                if (a := _find(view, "attack_grid", r.name, row, attack_grid.ROBUST)) is not None
            ]
            texts.append(
                f"{row}: accuracy {attacked.mean():.3f}, {ratio.text()} of clean "
                f"(drop {drop.text()})"
                + (f"; adversarially trained: {', '.join(others)}" if others else "")
            )
            numbers[f"{m.name}/{row}"] = {
                "clean": float(clean.mean()),
                "attacked": float(attacked.mean()),
                "retained": ratio.__dict__,
                "drop": drop.__dict__,
            }
        parts.append(f"{m.name} (clean accuracy {clean.mean():.3f}): " + "; ".join(texts))
    evidence = (
        "; ".join(parts)
        + f" (not robust: accuracy under attack < {RETAINED_AT_MOST:g} × clean; CIFAR units)"
    )
    return Verdict(every_part(statuses), evidence, CI, numbers)


CLAIMS_004: tuple[Claim, ...] = register_claims(
    Claim(
        "004-3.1-robust-data",
        GARAEV,
        "§3.1, Tables 1–2",
        "A model trained on a robust data set (D_R) is not robust to L∞ attacks of the paper's "
        "budgets: under PGD (and FGSM) L∞ its accuracy falls below half of its clean accuracy.",
        ("attack_grid",),
        check_robust_data,
    ),
    Claim(
        "004-3.1-linf",
        GARAEV,
        "§3.1, Tables 1–3",
        "L∞ attacks lower accuracy more than L2 attacks of the paper's budgets (PGD, ε = 0.025 "
        "vs 0.25 on CIFAR-10), also for adversarially trained models.",
        ("attack_grid",),
        check_linf_hurts_more,
    ),
    Claim(
        "004-3.2-ratio",
        GARAEV,
        "§3.2, Tables 4–6",
        "For L∞ perturbations ‖δ‖₂/‖δ‖∞ sits near √d, while L2 perturbations sit far below it.",
        ("norm_ratio",),
        check_norm_ratio,
    ),
    Claim(
        "004-3.3-adistance",
        GARAEV,
        "§3.3, Fig. 1–3",
        "Adversarial training brings the adversarial loss distribution closer to the clean one "
        "(smaller A-distance) but not all the way, least for L∞ attacks.",
        ("loss_dist",),
        check_a_distance,
    ),
    Claim(
        "004-4.1-svcca",
        GARAEV,
        "§4.1, Tables 7, A3",
        "SVCCA between clean and adversarial representations is higher for adversarially "
        "trained models, and lowest under L∞ attacks.",
        ("similarity",),
        check_svcca,
    ),
    Claim(
        "004-5-boundary",
        GARAEV,
        "§5, Table 8",
        "Adversarial training in L2 increases the mean L2 distance to the decision boundary; "
        "L∞ training increases it less.",
        ("boundary",),
        check_boundary,
    ),
)
