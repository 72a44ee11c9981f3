"""The claims of Carletti et al. (paper 000): activations, latent features, colour bias."""

from __future__ import annotations

import numpy as np

from robustlens.analysis.bootstrap import (
    always_true_count,
    frequent_count,
    full_weights,
    interval,
    weighted_mean,
)
from robustlens.claims.base import (
    ACCURACY,
    Claim,
    ModelStat,
    ResultsView,
    ci_text,
    delta_effects,
    effect,
    grows_with_eps,
    label,
    paper_value,
    register_claims,
    rho_effects,
    verdict_from,
    versus_natural,
)
from robustlens.claims.verdict import INCONCLUSIVE, NOT_APPLICABLE, Verdict, both
from robustlens.lenses import activations, color, latent
from robustlens.papers import CARLETTI

# -------------------------------------------------------------------- statistics (paper 000)


ALWAYS = 0.99
"""Share of the images on which a feature map must be densely active (Def. 3.2) to count as
"always densely active" in the claims' N_k (see :func:`dense_total`)."""


def dense_total(view: ResultsView, model: str, w: np.ndarray) -> np.ndarray:
    """Σ_k N_k over all blocks, where N_k counts the feature maps densely active (Def. 3.1–3.2,
    τ_dens of the activations above τ_act) on at least ``ALWAYS`` = 99 % of the (drawn)
    images: the paper's "always (or almost always) active" maps z1 (§4.1).

    Why not "on every image", as Fig. 1 counts on the whole test set: that count is an extreme
    of the sample. A bootstrap resample holds about 63 % distinct images, and a map dense on
    every drawn image need not be dense on every image, so each resample counts at least as
    many maps as the data and the percentile interval lies at or above the estimate, often
    excluding it. The share of images on which a map is dense is a mean over images and
    resamples like one; thresholding it counts the same maps as Fig. 1 when the maps are dense
    on all images or on clearly fewer, and its interval contains its estimate. The strict
    count is :func:`strict_dense_total`, reported beside it."""
    total = np.zeros(w.shape[0])
    for tap in view.array("activations", model, activations.TAPS):
        dense = view.array("activations", model, activations.per_tap(activations.DENSE, tap))
        total += frequent_count(dense, w, ALWAYS)
    return total


def strict_dense_total(view: ResultsView, model: str) -> int:
    """Σ_k N_k as Fig. 1 counts it: maps densely active on every evaluation image."""
    one = full_weights(view.n)
    return int(
        sum(
            always_true_count(
                view.array("activations", model, activations.per_tap(activations.DENSE, t)), one
            )[0]
            for t in view.array("activations", model, activations.TAPS)
        )
    )


def _strict_counts(view: ResultsView) -> str:
    counts = ", ".join(f"{m.name} {strict_dense_total(view, m.name)}" for m in view.models)
    return (
        f"N_k counts maps dense on ≥ {100 * ALWAYS:g} % of the images; "
        f"on every image (Fig. 1, no interval): {counts}"
    )


def _mean_over_blocks(metric: str) -> ModelStat:
    def stat(view: ResultsView, model: str, w: np.ndarray) -> np.ndarray:
        taps = view.array("activations", model, activations.TAPS)
        values = [
            weighted_mean(view.array("activations", model, activations.per_tap(metric, t)), w)
            for t in taps
        ]
        return np.nanmean(np.stack(values), axis=0)

    return stat


def _accuracy(lens: str, name: str) -> ModelStat:
    def stat(view: ResultsView, model: str, w: np.ndarray) -> np.ndarray:
        return weighted_mean(view.array(lens, model, name).astype(np.float64), w)

    return stat


def _drop(name: str) -> ModelStat:
    def stat(view: ResultsView, model: str, w: np.ndarray) -> np.ndarray:
        clean = _accuracy("color", color.CLEAN)(view, model, w)
        return clean - _accuracy("color", name)(view, model, w)

    return stat


def contour_drop(view: ResultsView, model: str, w: np.ndarray) -> np.ndarray:
    """Mean accuracy drop over colours and thicknesses."""
    contour = view.array("color", model, color.CONTOUR)  # [colors, thicknesses, N]
    clean = _accuracy("color", color.CLEAN)(view, model, w)
    accs = np.stack(
        [weighted_mean(c.astype(np.float64), w) for c in contour.reshape(-1, contour.shape[-1])]
    )
    return clean - accs.mean(axis=0)


def contour_spread(view: ResultsView, model: str, w: np.ndarray) -> np.ndarray:
    """Std over colours of the accuracy drop (averaged over thicknesses)."""
    contour = view.array("color", model, color.CONTOUR)
    per_color = np.stack(
        [
            np.mean([weighted_mean(t.astype(np.float64), w) for t in shade], axis=0)
            for shade in contour
        ]
    )
    return per_color.std(axis=0)


def _latent_delta(kind: str) -> ModelStat:
    def stat(view: ResultsView, model: str, w: np.ndarray) -> np.ndarray:
        after = view.array("latent", model, latent.correct_name(kind, latent.RETRAINED))
        before = view.array("latent", model, latent.correct_name(kind, latent.ORIGINAL))
        after = weighted_mean(after.astype(np.float64), w)
        before = weighted_mean(before.astype(np.float64), w)
        return after - before

    return stat


# ------------------------------------------------------------------------------- checks


DENSE_WHAT = "Σ_k N_k"


def check_dense_more(view: ResultsView) -> Verdict:
    signs, parts, numbers = versus_natural(view, dense_total, DENSE_WHAT)
    if signs:
        parts.append(_strict_counts(view))
    effects = delta_effects(numbers, DENSE_WHAT, "feature maps")
    return verdict_from(signs, parts, numbers, ci=ci_text(view), effects=effects)


def check_dense_grows(view: ResultsView) -> Verdict:
    signs, parts, numbers = grows_with_eps(view, dense_total, DENSE_WHAT)
    if signs:
        parts.append(_strict_counts(view))
    if not signs:
        return Verdict(
            INCONCLUSIVE, "; ".join(parts) or "needs ≥ 3 training ε of one norm", "", numbers
        )
    effects = rho_effects(numbers, DENSE_WHAT)
    return verdict_from(signs, parts, numbers, ci=ci_text(view), effects=effects)


def check_redundancy(view: ResultsView) -> Verdict:
    s1, p1, n1 = versus_natural(
        view, _mean_over_blocks(activations.REDUNDANT_MAPS), "C^R (mean over blocks)"
    )
    s2, p2, n2 = versus_natural(
        view, _mean_over_blocks(activations.MEAN_SIMILARITY), "S̄ (mean over blocks)"
    )
    effects = delta_effects(n1, "C^R (mean over blocks)", "redundant feature maps")
    effects += delta_effects(n2, "S̄ (mean over blocks)", "cosine similarity")
    return Verdict(
        both(s1, s2),
        "; ".join(p1 + p2),
        ci_text(view),
        {"redundant_maps": n1, "mean_similarity": n2},
        effects=effects,
    )


def check_latent_tradeoff(view: ResultsView) -> Verdict:
    if not view.robust:
        return Verdict(INCONCLUSIVE, "needs at least one robust model")
    w = view.weights(view.n)
    s_nat, s_rob, parts, numbers, effects = [], [], [], {}, []
    paper = {
        side: paper_value("000-4.3-latent", f"{side} accuracy change")
        for side in ("natural", "robust")
    }
    for group in view.settings(view.robust):
        nat = interval(*view.setting_samples(_latent_delta(latent.NATURAL), group, w))
        rob = interval(*view.setting_samples(_latent_delta(latent.ROBUST), group, w))
        s_nat.append(nat.sign())
        s_rob.append(-rob.sign())
        parts.append(f"{label(group)}: Δ natural acc = {nat.text()}, Δ robust acc = {rob.text()}")
        numbers[group[0].group] = {"natural": nat.__dict__, "robust": rob.__dict__}
        for what, iv, side in (("natural", nat, 1), ("robust", rob, -1)):
            change = f"Δ {what} accuracy after retraining the head"
            effects.append(
                effect(label(group), change, iv, side=side, unit=ACCURACY, paper=paper[what])
            )
    ci = ci_text(view, "95 % bootstrap CI over images")
    return Verdict(both(s_nat, s_rob), "; ".join(parts), ci, numbers, effects=effects)


def check_latent_grows(view: ResultsView) -> Verdict:
    def neg_robust(v: ResultsView, model: str, ww: np.ndarray) -> np.ndarray:
        return -_latent_delta(latent.ROBUST)(v, model, ww)

    s1, p1, n1 = grows_with_eps(
        view, _latent_delta(latent.NATURAL), "Δ natural acc", include_natural=False
    )
    s2, p2, n2 = grows_with_eps(view, neg_robust, "−Δ robust acc", include_natural=False)
    if not s1 or not s2:
        return Verdict(INCONCLUSIVE, "; ".join(p1 + p2) or "needs ≥ 3 robust models of one norm")
    return Verdict(
        both(s1, s2),
        "; ".join(p1 + p2),
        ci_text(view),
        {"natural": n1, "robust": n2},
        effects=rho_effects(n1, "Δ natural acc") + rho_effects(n2, "−Δ robust acc"),
    )


def check_pixel_average(view: ResultsView) -> Verdict:
    stat = _accuracy("color", color.PIXEL_AVERAGE)
    signs, parts, numbers = versus_natural(view, stat, "pixel-average accuracy")
    chance = 1.0 / view.num_classes
    w = view.weights(view.n)
    effects = delta_effects(numbers, "pixel-average accuracy", ACCURACY)
    for group in view.settings(view.robust):
        full, boot = view.setting_samples(stat, group, w)
        iv = interval(full - chance, boot - chance)
        signs.append(iv.sign())
        parts.append(f"{label(group)}: accuracy − chance ({chance:.3g}) = {iv.text()}")
        what = f"pixel-average accuracy − chance ({chance:.3g})"
        effects.append(effect(label(group), what, iv, unit=ACCURACY))
    return verdict_from(signs, parts, numbers, ci=ci_text(view), effects=effects)


COLOR_CHANNELS = 3
"""Input channels a model needs for a claim about colour (§3.4: red, green, blue contours)."""


def grey_models(view: ResultsView) -> list[str]:
    """The models of ``view`` that see fewer than three channels: on them the contour colours
    of §3.4 collapse to grey levels (luma 1, 0.299, 0.587, 0.114), so no colour is tested."""
    return [m.name for m in view.models if m.card.input_shape[0] < COLOR_CHANNELS]


def check_contours(view: ResultsView) -> Verdict:
    """Robust models lose more accuracy than the natural one under coloured contours, with a
    larger spread across colours (§4.4, Fig. 4, 8). A claim about colour: on one-channel data
    it is *not applicable* (the drops are still given, for information)."""
    s1, p1, n1 = versus_natural(view, contour_drop, "contour drop")
    s2, p2, n2 = versus_natural(view, contour_spread, "std of drop over colours")
    numbers = {"drop": n1, "spread": n2}
    effects = delta_effects(n1, "contour drop", ACCURACY)
    effects += delta_effects(n2, "std of drop over colours", ACCURACY)
    grey = grey_models(view)
    if grey:
        return Verdict(
            NOT_APPLICABLE,
            f"{', '.join(grey)}: one-channel input, where the contour colours (white, red, green, "
            "blue) are four grey levels: a colour bias cannot be tested (for information: "
            + "; ".join(p1 + p2)
            + ")",
            ci_text(view),
            numbers,
            effects=effects,
        )
    return Verdict(both(s1, s2), "; ".join(p1 + p2), ci_text(view), numbers, effects=effects)


def check_grid(view: ResultsView) -> Verdict:
    signs, parts, numbers = versus_natural(view, _drop(color.GRID), "grid accuracy drop")
    effects = delta_effects(numbers, "grid accuracy drop", ACCURACY)
    return verdict_from(signs, parts, numbers, ci=ci_text(view), effects=effects)


CLAIMS_000: tuple[Claim, ...] = register_claims(
    Claim(
        "000-4.1-dense",
        CARLETTI,
        "§4.1, Fig. 1, 5",
        "Adversarially-trained models have more feature maps that are densely active for all "
        "images (N_k) than natural models.",
        ("activations",),
        check_dense_more,
    ),
    Claim(
        "000-4.1-dense-eps",
        CARLETTI,
        "§4.1, Fig. 1, 5",
        "The number of always densely active feature maps grows with the training ε.",
        ("activations",),
        check_dense_grows,
    ),
    Claim(
        "000-4.2-redundancy",
        CARLETTI,
        "§4.2, Fig. 2–3, 6–7",
        "Adversarially-trained models have more redundant feature maps and a higher mean cosine "
        "similarity between active feature maps than natural models.",
        ("activations",),
        check_redundancy,
    ),
    Claim(
        "000-4.3-latent",
        CARLETTI,
        "§4.3, Tables 1–2",
        "Retraining the linear head of a robust model on natural data raises its natural accuracy "
        "and lowers its robust accuracy.",
        ("latent",),
        check_latent_tradeoff,
    ),
    Claim(
        "000-4.3-latent-eps",
        CARLETTI,
        "§4.3, Tables 1–2",
        "The gain in natural accuracy and the loss in robust accuracy from retraining the head "
        "grow with the training ε.",
        ("latent",),
        check_latent_grows,
    ),
    Claim(
        "000-4.4-average",
        CARLETTI,
        "§4.4, Tables 3–5",
        "Robust models classify pixel-averaged images better than natural models, and better "
        "than chance.",
        ("color",),
        check_pixel_average,
    ),
    Claim(
        "000-4.4-contour",
        CARLETTI,
        "§4.4, Fig. 4, 8",
        "Coloured contours lower the accuracy of robust models more than that of natural "
        "models, with a larger spread across colours.",
        ("color",),
        check_contours,
    ),
    Claim(
        "000-B-grid",
        CARLETTI,
        "App. B, Fig. 12",
        "Tiling the image in a 2×2 grid lowers the accuracy of robust models more than that of "
        "natural models.",
        ("color",),
        check_grid,
    ),
)
