"""The claims of Gavrikov & Keuper (paper 003): quality of robust models' filters and where
their coefficient distributions shift most."""

from __future__ import annotations

import warnings

import numpy as np

from robustlens.analysis.bootstrap import interval
from robustlens.analysis.filters import GroupedFilters, filter_shift, group_order
from robustlens.claims.base import Claim, ResultsView, ci_text, effect, label, register_claims
from robustlens.claims.verdict import (
    FAILS,
    INCONCLUSIVE,
    Status,
    Verdict,
    both,
    combine,
    every_part,
)
from robustlens.lenses.base import StudyModel
from robustlens.lenses.filters import grouped_filters, quality_boot_name, quality_name
from robustlens.papers import GAVRIKOV

CI_FILTERS = "95 % bootstrap CI over filters (filterbanks for orthogonality), per model"
DIRECTIONS = {"sparsity": -1, "variance_entropy": 1, "orthogonality": 1}
"""§4.3: robust models have fewer sparse filters, higher entropy, more orthogonal banks."""
UNITS = {
    "sparsity": "share of filters",
    "variance_entropy": "entropy, base 10",
    "orthogonality": "0–1",
}
"""The unit of each filter statistic, for the claim's picture."""
DEEPEST = ("d9", "d10")
"""§4.2: the shift peaks "in the last 20 % of the depth"."""
PERMUTATIONS = 50
"""Label shuffles per depth group: the baseline divergence and the permutation p-value."""
ALPHA = 0.05


def _layer_mean(view: ResultsView, model: str, metric: str) -> tuple[float, np.ndarray]:
    """The layer-averaged ``metric`` and its bootstrap draws, centred on it.

    The lens resamples filters (filterbanks for orthogonality) with replacement, and a
    resample's duplicates are perfectly redundant: a duplicated filterbank has cosine 1 with
    its copy, so the draws of orthogonality (and, less, of variance entropy) sit below the
    estimate whatever the model — by 0.05 for i.i.d. Gaussian 16-bank layers, enough to put
    the whole percentile interval below its estimate. The draws are shifted by the bootstrap
    estimate of that bias, mean(draws) − estimate (Efron & Tibshirani 1993, §10.2), so that
    they keep their spread and are centred on the estimate."""
    values = view.array("filters", model, quality_name(metric))
    boot = view.array("filters", model, quality_boot_name(metric))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN layers (e.g. one filterbank)
        value, draws = float(np.nanmean(values)), np.nanmean(boot, axis=0)
        bias = float(np.nanmean(draws)) - value if np.isfinite(draws).any() else 0.0
    return value, draws - bias


def check_filter_quality(view: ResultsView) -> Verdict:
    """§4.3, Fig. 7: robust models "form more diverse, less sparse, and more orthogonal
    convolution filters" — per robust model, Δ (robust − natural) of the layer-averaged
    sparsity (< 0), variance entropy (> 0) and orthogonality (> 0), each with a bootstrap
    interval over filters. A setting trained with several seeds is the mean over its
    replicates, its draws averaged over resampled seeds (:meth:`ResultsView.pooled_draws`).
    Holds when every part holds, fails when one fails.

    Sparsity is a share of near-zero filters, bounded below by 0: a natural model without
    sparse filters leaves nothing to have fewer of ("robust training further minimizes
    sparsity" cannot show), so the part cannot hold. Then it is left out of the verdict when
    the robust models have none either, fails when one has more (interval above 0) and is
    inconclusive otherwise; the verdict rests on entropy and orthogonality."""
    if not view.natural or not view.robust:
        return Verdict(INCONCLUSIVE, "needs a natural and at least one robust model")
    nat = view.settings(view.natural)[0]
    parts, numbers, statuses, effects = [], {}, [], []
    for metric, direction in DIRECTIONS.items():
        base, base_boot = _setting_mean(view, nat, metric)
        signs, texts, ivs = [], [], []
        for group in view.settings(view.robust):
            value, boot = _setting_mean(view, group, metric)
            draws = boot - base_boot if boot.shape == base_boot.shape else np.array([np.nan])
            iv = interval(value - base, draws)
            ivs.append(iv)
            signs.append(iv.sign() * direction)
            texts.append(f"{label(group)} Δ {iv.text()}")
            numbers.setdefault(metric, {})[group[0].group] = iv.__dict__
            what = f"Δ {metric.replace('_', ' ')} (robust − natural, mean over layers)"
            effects.append(effect(label(group), what, iv, side=direction, unit=UNITS[metric]))
        numbers.setdefault(metric, {})["natural"] = base
        want = "lower" if direction < 0 else "higher"
        head = f"{metric.replace('_', ' ')} ({want} claimed; {label(nat)} {base:.3g})"
        if metric == "sparsity" and _none_sparse(base, base_boot):
            status = _sparsity_at_floor(ivs)
            parts.append(
                f"{head}: {', '.join(texts)} → "
                + (
                    f"{status}"
                    if status is not None
                    else "left out: neither model has sparse filters, so fewer cannot be shown"
                )
            )
            if status is not None:
                statuses.append(status)
            continue
        status = combine(signs)
        statuses.append(status)
        parts.append(f"{head}: {', '.join(texts)} → {status}")
    status = every_part(statuses)
    ci = ci_text(view, CI_FILTERS, "filters (filterbanks for orthogonality)")
    return Verdict(status, "; ".join(parts), ci, numbers, effects=effects)


def _setting_mean(view: ResultsView, group: list[StudyModel], metric: str) -> tuple:
    """:func:`_layer_mean` of a setting: its one model's, or pooled over its seeds."""
    means = [_layer_mean(view, m.name, metric) for m in group]
    if len({d.shape for _, d in means}) > 1:  # draws of different lengths cannot be pooled
        return float(np.mean([v for v, _ in means])), np.array([np.nan])
    return view.pooled_draws(group, [v for v, _ in means], [d for _, d in means])


def _none_sparse(base: float, base_boot: np.ndarray) -> bool:
    """The natural model has no sparse filter, on the data and on every resample."""
    finite = base_boot[np.isfinite(base_boot)]
    return base == 0 and bool(np.all(finite == 0))


def _sparsity_at_floor(ivs: list) -> Status | None:
    """Sparsity against a natural model without sparse filters: fails when a robust model has
    more (interval above 0), None (not testable) when every robust model has none either
    (interval [0, 0]), else inconclusive."""
    if any(iv.low > 0 for iv in ivs):
        return FAILS
    if all(iv.estimate == 0 and iv.low == 0 and iv.high == 0 for iv in ivs):
        return None
    return INCONCLUSIVE


def _filters(view: ResultsView, model: str) -> GroupedFilters:
    return grouped_filters(
        lambda name: (
            view.array("filters", model, name) if view.has_array("filters", model, name) else None
        )
    )


def _shifts(robust: list[GroupedFilters], natural: list[GroupedFilters], seed: int) -> dict:
    """Group label (with its kernel size) → (divergence, excess over baseline, p-value)."""
    kernels = sorted({k for s in robust + natural for _, k in s})
    out = {}
    for kernel in kernels:
        shift = filter_shift(robust, natural, kernel, permutations=PERMUTATIONS, seed=seed)
        if shift is None:
            continue
        excess, p = shift.excess, shift.p_value
        for g, v in shift.divergence.items():
            out[f"{g} ({kernel})"] = (v, excess[g], p[g])
    return dict(sorted(out.items(), key=lambda kv: group_order(kv[0].split(" ")[0])))


def _depth(label: str) -> str:
    group = label.split(" ")[0]
    return "first" if group == "first" else ("deepest" if group in DEEPEST else "middle")


def check_shift_by_depth(view: ResultsView) -> Verdict:
    """The weighted KL between robust (pooled) and natural filters, above its label-shuffled
    baseline, is larger in the first layer, and in the deepest 20 % of layers, than anywhere
    in between (Fig. 1). Each part holds when its group's shift is significant (permutation
    test) and exceeds every middle group's; it fails when a significant middle group exceeds
    it."""
    if not view.natural or not view.robust:
        return Verdict(INCONCLUSIVE, "needs a natural and at least one robust model")
    natural = [_filters(view, m.name) for m in view.natural]
    robust = [_filters(view, m.name) for m in view.robust]
    shifts = _shifts(robust, natural, view.seed)
    listing = ", ".join(
        f"{label}: KL {kl:.3g}, excess {ex:.3g}, p {p:.2g}" for label, (kl, ex, p) in shifts.items()
    )
    middle = [(ex, p) for label, (_, ex, p) in shifts.items() if _depth(label) == "middle"]
    if not middle:
        return Verdict(
            INCONCLUSIVE,
            f"KL by depth: {listing or 'none'}; needs layers between the first and the deepest "
            "20 % to compare with (a deeper model, e.g. studies/filters-resnet20.toml)",
        )
    top_middle = max(ex for ex, _ in middle)
    top_middle_significant = any(p < ALPHA and ex == top_middle for ex, p in middle)
    parts = []
    for side in ("first", "deepest"):
        found = [(ex, p) for label, (_, ex, p) in shifts.items() if _depth(label) == side]
        if not found:
            parts.append(0)
            continue
        ex, p = max(found)
        if ex > top_middle and p < ALPHA:
            parts.append(1)
        elif ex < top_middle and top_middle_significant:
            parts.append(-1)
        else:
            parts.append(0)
    status = both([parts[0]], [parts[1]])
    per_model = []
    banks = dict(zip((m.name for m in view.robust), robust, strict=True))
    for group in view.settings(view.robust):
        own = _shifts([banks[m.name] for m in group], natural, view.seed)
        if own:
            per_model.append(f"{label(group)} peaks at {max(own, key=lambda k: own[k][1])}")
    evidence = f"robust (pooled) vs natural, by depth group: {listing}"
    if per_model:
        evidence += f"; largest excess per model: {', '.join(per_model)}"
    numbers = {label: {"kl": kl, "excess": ex, "p": p} for label, (kl, ex, p) in shifts.items()}
    return Verdict(
        status,
        evidence,
        f"permutation test, {PERMUTATIONS} label shuffles of each group's filters; "
        "excess = KL − mean shuffled KL",
        numbers,
    )


CLAIMS_003: tuple[Claim, ...] = register_claims(
    Claim(
        "003-4.3-quality",
        GAVRIKOV,
        "§4.3, Fig. 7",
        "Adversarially trained models have fewer sparse filters (when the natural model has "
        "any), higher variance entropy and more orthogonal filterbanks than naturally trained "
        "ones.",
        ("filters",),
        check_filter_quality,
    ),
    Claim(
        "003-4.2-shift",
        GAVRIKOV,
        "§4.2, Fig. 1",
        "Filter coefficients of robust and natural models differ most in the first "
        "convolution layer and in the deepest layers.",
        ("filters",),
        check_shift_by_depth,
    ),
)
