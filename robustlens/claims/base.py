"""Claims as records, and the machinery that checks them on a study's own models.

Each claim names its paper and section, the sentence it makes, the lenses whose results it
needs, and a check that returns *holds*, *fails* or *inconclusive* with the numbers behind the
verdict and a 95 % paired bootstrap interval over the evaluation images. A claim about
"robust models" holds when every adversarially-trained model of the study shows the effect
(interval on the claimed side of 0), fails when any shows the opposite, and is inconclusive
otherwise — or when the study lacks the models the claim needs. A claim whose lens failed
reads *not computed*; one whose lens applies to none of the study's models, *not applicable*.
Claims are registered by id (:data:`CLAIM_REGISTRY`), as lenses are.

A study may train a setting with several seeds (``seeds = [0, 1]``: models ``natural@s0``,
``natural@s1``, each remembering its setting). The helpers :func:`versus_natural` and
:func:`grows_with_eps` then compare settings, not models: a setting's statistic is the mean
over its replicates, with the hierarchical bootstrap over seeds × images of
:mod:`robustlens.analysis.bootstrap`; with one model per setting they are the paired image
bootstrap, number for number. Every other check compares settings the same way, through
:meth:`ResultsView.pooled_samples` (a per-image quantity of one or more settings, e.g. robust −
natural accuracy, averaged over every combination of their replicates, each setting's seeds
resampled on their own and the images once for all: paired) or :meth:`ResultsView.pooled_draws`
(a statistic whose bootstrap draws a lens made, e.g. SVCCA or filter quality). Every verdict
carries the number of seeds per setting (``Verdict.seeds``) and says how its intervals were
found (:func:`ci_text`).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from robustlens.analysis.bootstrap import (
    Interval,
    full_weights,
    hierarchical_mean_interval,
    hierarchical_samples,
    interval,
    mean_interval,
    mean_samples,
    resample_weights,
    seed_weights,
    spearman_rows,
)
from robustlens.claims.verdict import Effect, Verdict, combine
from robustlens.lenses.base import StudyModel
from robustlens.papers import Paper, paper_figure
from robustlens.registry import Registry

MONOTONE = 0.8
"""Spearman ρ a "grows with ε" claim needs (besides an interval above 0) to hold."""
CI_IMAGES = "95 % paired bootstrap CI over images"


class Replicate(Protocol):
    """What pooling needs of a model: its name (to find its arrays) and its setting."""

    @property
    def name(self) -> str: ...

    @property
    def group(self) -> str: ...


class ResultsView:
    """Per-model arrays of the study's lens runs, for claims."""

    def __init__(
        self,
        models: list[StudyModel],
        arrays: Callable[[str, str, str], np.ndarray | None],
        lenses: set[str],
        n_images: int,
        num_classes: int,
        names: Callable[[str, str], list[str]] | None = None,
        coverage: dict[str, set[str]] | None = None,
    ) -> None:
        self._names = names
        self.models = models
        self.coverage = coverage or {}
        """The models each lens looked at (a lens not named here looked at all of them)."""
        self.planned: set[str] = set(lenses)
        """The lenses the study asks for (those with results are ``lenses``)."""
        self.failed: dict[str, list[str]] = {}
        """Per lens, its failed units as "model: error" lines."""
        self.not_applicable: dict[str, dict[str, str]] = {}
        """Per lens, the models it does not apply to, with the reason."""
        self.masking: dict[str, list[str]] = {}
        """Per model, the gradient-masking flags raised on it (the ``masking`` lens's audit)."""
        self._arrays = arrays
        self.lenses = lenses
        self.n = n_images
        self.num_classes = num_classes
        self.resamples = 1000
        self.seed = 0
        self._weights: dict[int, np.ndarray] = {}
        self._seed_weights: dict[tuple[str, int], np.ndarray] = {}

    def weights(self, n: int) -> np.ndarray:
        """Bootstrap weights over ``n`` images, the same for every model (paired)."""
        if n not in self._weights:
            self._weights[n] = resample_weights(n, self.resamples, self.seed)
        return self._weights[n]

    def settings(self, models: list[StudyModel]) -> list[list[StudyModel]]:
        """``models`` grouped by setting (the replicates of one setting, trained with different
        seeds; see :attr:`StudyModel.group`), in study order."""
        groups: dict[str, list[StudyModel]] = {}
        for m in models:
            groups.setdefault(m.group, []).append(m)
        return list(groups.values())

    @property
    def seeds(self) -> int:
        """The most training seeds any setting of the view has (1: one model per setting)."""
        return max((len(g) for g in self.settings(self.models)), default=1)

    def seed_weights(
        self, setting: str, replicates: int, resamples: int | None = None
    ) -> np.ndarray:
        """Bootstrap draws C [B, R] of a setting's replicates, the same in every claim
        (B: the view's resamples, or ``resamples`` to match draws a lens made)."""
        b = self.resamples if resamples is None else resamples
        key = (setting, replicates, b)
        if key not in self._seed_weights:
            self._seed_weights[key] = seed_weights(replicates, b, self.seed, setting)
        return self._seed_weights[key]

    def setting_samples(
        self, stat: ModelStat, group: list[StudyModel], w: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """A setting's statistic on all images and under each resample: one model's own
        (paired image bootstrap), or the mean over its replicates (hierarchical bootstrap over
        seeds × images, the same image weights ``w`` for every replicate)."""
        one = full_weights(w.shape[1])
        if len(group) == 1:
            return stat(self, group[0].name, one)[0], stat(self, group[0].name, w)
        full = float(np.mean([stat(self, m.name, one)[0] for m in group]))
        per_replicate = np.stack([stat(self, m.name, w) for m in group])
        counts = self.seed_weights(group[0].group, len(group))
        return full, hierarchical_samples(per_replicate, counts)

    def setting_mean_interval(self, values: list[np.ndarray], setting: str) -> Interval:
        """The mean of per-image ``values`` of one setting (one array per replicate, in the
        setting's order) with its 95 % interval: :meth:`mean_interval` for one replicate, else
        the hierarchical bootstrap over its seeds × the shared image weights."""
        if len(values) == 1:
            return self.mean_interval(values[0])
        stacked = np.stack([np.asarray(v, dtype=np.float64) for v in values])
        counts = self.seed_weights(setting, len(values))
        return hierarchical_mean_interval(stacked, self.weights(stacked.shape[1]), counts)

    def pooled_samples(
        self, roles: Sequence[Sequence[Replicate]], values: Callable[..., np.ndarray]
    ) -> tuple[float, np.ndarray]:
        """The mean of per-image ``values(m_1, …, m_k)`` (one model per role, e.g. a natural
        and a robust replicate for a paired difference) over every combination of the roles'
        replicates, and its value under each resample: each role's replicates drawn with its
        setting's seed weights, the images with the view's weights (the same for every
        combination: paired; NaN images ignored). One model per role: the paired image
        bootstrap of :meth:`mean_samples`, number for number."""
        counts = [self.seed_weights(g[0].group, len(g)) for g in roles]
        combos = list(itertools.product(*(range(len(g)) for g in roles)))
        full, boot = 0.0, np.zeros(self.resamples)
        for idx in combos:
            v = np.asarray(values(*(g[i] for g, i in zip(roles, idx, strict=True))), np.float64)
            f, b = mean_samples(v, self.weights(v.size))
            c = np.prod([cnt[:, i] for cnt, i in zip(counts, idx, strict=True)], axis=0)
            full += f
            boot += np.where(c > 0, c * b, 0.0)  # an undrawn combination adds nothing
        return full / len(combos), boot / len(combos)

    def pooled_interval(
        self, roles: Sequence[Sequence[Replicate]], values: Callable[..., np.ndarray]
    ) -> Interval:
        """:meth:`pooled_samples` as a 95 % percentile interval."""
        return interval(*self.pooled_samples(roles, values))

    def difference_interval(
        self,
        minuend: list[StudyModel],
        subtrahend: list[StudyModel],
        values: Mapping[str, np.ndarray],
    ) -> Interval:
        """The mean of per-image ``values[a] − values[b]`` (a replicate of ``minuend``, one of
        ``subtrahend``) over images and every pair of replicates, paired over images, each
        setting's seeds drawn on their own, with its 95 % interval (:meth:`pooled_samples`)."""
        return self.pooled_interval(
            [minuend, subtrahend], lambda a, b: values[a.name] - values[b.name]
        )

    def pooled_draws(
        self, group: list[StudyModel], estimates: Sequence[float], draws: Sequence[np.ndarray]
    ) -> tuple[float, np.ndarray]:
        """A setting's statistic from its replicates' estimates and the bootstrap draws [B] a
        lens made for each (paired across models when the lens pairs them): the mean of the
        estimates, and the draws averaged with B draws of the setting's seeds. One replicate:
        its own estimate and draws."""
        if len(group) == 1:
            return float(estimates[0]), np.asarray(draws[0], dtype=np.float64)
        b = min(len(d) for d in draws)
        stacked = np.stack([np.asarray(d, dtype=np.float64)[:b] for d in draws])
        counts = self.seed_weights(group[0].group, len(group), b)
        return float(np.mean(estimates)), hierarchical_samples(stacked, counts)

    def mean_samples(self, values: np.ndarray) -> tuple[float, np.ndarray]:
        """The mean of per-image ``values`` and its value under each of this view's
        resamples (paired: the same weights for every model)."""
        values = np.asarray(values, dtype=np.float64)
        return mean_samples(values, self.weights(values.size))

    def mean_interval(self, values: np.ndarray) -> Interval:
        """The mean of per-image ``values`` with its 95 % paired bootstrap interval."""
        values = np.asarray(values, dtype=np.float64)
        return mean_interval(values, self.weights(values.size))

    def covering(self, lenses: tuple[str, ...]) -> ResultsView:
        """The same view restricted to the models every one of ``lenses`` looked at (a claim
        is checked on the models its lenses saw, in study order)."""
        keep = {m.name for m in self.models}
        for lens in lenses:
            keep &= self.coverage.get(lens, keep)
        if len(keep) == len(self.models):
            return self
        view = copy.copy(self)
        view.models = [m for m in self.models if m.name in keep]
        return view

    def array(self, lens: str, model: str, name: str) -> np.ndarray:
        value = self._arrays(lens, model, name)
        if value is None:
            raise KeyError(f"{lens}/{model}/{name}")
        return value

    def array_names(self, lens: str, model: str) -> list[str]:
        """Names of the arrays a lens stored for a model."""
        return self._names(lens, model) if self._names else []

    def has_array(self, lens: str, model: str, name: str) -> bool:
        return self._arrays(lens, model, name) is not None

    @property
    def natural(self) -> list[StudyModel]:
        return [m for m in self.models if m.is_natural]

    @property
    def robust(self) -> list[StudyModel]:
        return [m for m in self.models if m.is_robust]


ModelStat = Callable[[ResultsView, str, np.ndarray], np.ndarray]
"""A per-model statistic under bootstrap weights W [B, N]: one value per resample [B]."""
Check = Callable[[ResultsView], Verdict]
"""A claim's check: the verdict on the models of a view (bootstrapping with ``view.weights``)."""


@dataclass(frozen=True)
class Claim:
    """A published claim: its id, paper and section, the sentence it makes, the lenses whose
    results it needs and the check that gives its verdict on a study's models."""

    id: str
    paper: Paper
    section: str
    statement: str
    needs: tuple[str, ...]
    check: Check


CLAIM_REGISTRY: Registry[Claim] = Registry("claim")
"""Every claim by id (``get_claim`` answers an unknown id with the known ones)."""


def register_claims(*claims: Claim) -> tuple[Claim, ...]:
    """Register ``claims`` by id; returns them in the order given (the report's order)."""
    return tuple(CLAIM_REGISTRY.add(c.id, c) for c in claims)


def get_claim(claim_id: str) -> Claim:
    return CLAIM_REGISTRY.get(claim_id)


def label(group: Sequence[Replicate]) -> str:
    """A setting in the evidence: its model's name, or ``linf-0.1 (2 seeds)``."""
    return group[0].name if len(group) == 1 else f"{group[0].group} ({len(group)} seeds)"


def ci_text(view: ResultsView, single: str = CI_IMAGES, over: str = "images") -> str:
    """How the helpers' intervals were found: ``single`` with one model per setting, else
    the hierarchical bootstrap over the seeds × ``over`` (what the lens resampled)."""
    seeds = view.seeds
    if seeds == 1:
        return single
    return f"95 % hierarchical bootstrap CI over seeds (up to {seeds} per setting) × {over}"


def versus_natural(
    view: ResultsView, stat: ModelStat, what: str, direction: int = 1
) -> tuple[list[int], list[str], dict]:
    """Δ = stat(robust) − stat(natural) per robust setting with paired bootstrap intervals
    (over seeds × images when a setting has several seeds)."""
    if not view.natural or not view.robust:
        return [], [f"needs a natural and at least one robust model ({what})"], {}
    w = view.weights(view.n)
    nat = view.settings(view.natural)[0]
    base_full, base_boot = view.setting_samples(stat, nat, w)
    signs, parts, numbers = [], [f"{label(nat)}: {what} = {base_full:.3g}"], {}
    for group in view.settings(view.robust):
        full, boot = view.setting_samples(stat, group, w)
        iv = interval(full - base_full, boot - base_boot)
        signs.append(iv.sign() * direction)
        parts.append(f"{label(group)}: Δ {what} = {iv.text()}")
        numbers[group[0].group] = {"delta": iv.estimate, "low": iv.low, "high": iv.high}
    numbers["natural"] = {"model": nat[0].group, "value": float(base_full)}
    return signs, parts, numbers


def grows_with_eps(
    view: ResultsView, stat: ModelStat, what: str, include_natural: bool = True
) -> tuple[list[int], list[str], dict]:
    """Spearman ρ between training ε and a statistic, per training norm with ≥ 3 settings (a
    setting's statistic is the mean over its seeds, resampled hierarchically)."""
    w = view.weights(view.n)
    signs, parts, numbers = [], [], {}
    robust = view.settings(view.robust)
    for norm in sorted({g[0].train_norm for g in robust if g[0].train_norm}):
        family = [g for g in robust if g[0].train_norm == norm]
        if include_natural:
            family = view.settings(view.natural)[:1] + family
        eps = np.array([g[0].train_eps for g in family])
        if len(set(eps)) < 3:
            parts.append(f"{norm}: {len(set(eps))} distinct ε (needs 3)")
            continue
        samples = [view.setting_samples(stat, g, w) for g in family]
        full = np.array([f for f, _ in samples])
        boot = np.stack([b for _, b in samples], axis=1)
        rho_full = spearman_rows(eps, full[None, :])[0]
        iv = interval(rho_full, spearman_rows(eps, boot))
        # "Grows with ε" asks for a (nearly) monotone trend, not just a positive correlation.
        signs.append(iv.sign() if iv.sign() < 0 or iv.estimate >= MONOTONE - 1e-9 else 0)
        parts.append(
            f"{norm}: ρ(ε, {what}) = {iv.text()} over ε = {', '.join(f'{e:g}' for e in eps)}"
        )
        numbers[norm] = {"rho": iv.estimate, "low": iv.low, "high": iv.high}
    return signs, parts, numbers


def verdict_from(
    signs: list[int],
    parts: list[str],
    numbers: dict,
    ci: str = CI_IMAGES,
    effects: list[Effect] | None = None,
) -> Verdict:
    status = combine(signs)
    return Verdict(status, "; ".join(parts), ci, numbers, effects=list(effects or []))


def effect(label: str, what: str, iv: Interval | Mapping, **decision) -> Effect:
    """An :class:`Effect` row from an interval (or its ``__dict__`` as kept in ``numbers``);
    ``decision``: the line, side, margin, unit, needs and paper of :class:`Effect`."""
    d = iv if isinstance(iv, Mapping) else iv.__dict__
    return Effect(label, what, float(d["estimate"]), float(d["low"]), float(d["high"]), **decision)


def delta_effects(numbers: Mapping, what: str, unit: str = "", direction: int = 1) -> list:
    """:func:`versus_natural`'s numbers as effects: per robust setting, Δ (robust − natural)
    of ``what`` with its interval; the claim wants it above 0 (``direction`` +1) or below."""
    nat = numbers.get("natural", {}).get("model", "natural")
    return [
        Effect(f"{group} − {nat}", f"Δ {what}", n["delta"], n["low"], n["high"], side=direction,
               unit=unit)
        for group, n in numbers.items()
        if group != "natural"
    ]  # fmt: skip


ACCURACY = "fraction of images"
"""The unit of an accuracy (or a difference of accuracies) in the claims' effects: 0–1."""


def paper_value(claim_id: str, what: str) -> float | None:
    """The paper's own value ``what`` for a claim (its data file), on the claims' scale: a
    percentage or percentage points as a fraction; None when the paper prints none."""
    figure = paper_figure(claim_id)
    for v in figure.values if figure else ():
        if v.what == what:
            return v.value / 100 if v.unit in ("%", "pp") else v.value
    return None


def rho_effects(numbers: Mapping, what: str) -> list:
    """:func:`grows_with_eps`'s numbers as effects: per training norm, Spearman ρ between
    training ε and ``what``, above 0 with an estimate of at least ``MONOTONE``."""
    return [
        Effect(f"{norm}-trained", f"Spearman ρ(training ε, {what})", n["rho"], n["low"],
               n["high"], unit="rank correlation", needs=MONOTONE)
        for norm, n in numbers.items()
    ]  # fmt: skip
