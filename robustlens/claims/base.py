"""Claims as records, and the machinery that checks them on a study's own models.

Each claim names its paper and section, the sentence it makes, the lenses whose results it
needs, and a check that returns *holds*, *fails* or *inconclusive* with the numbers behind the
verdict and a 95 % paired bootstrap interval over the evaluation images. A claim about
"robust models" holds when every adversarially-trained model of the study shows the effect
(interval on the claimed side of 0), fails when any shows the opposite, and is inconclusive
otherwise — or when the study lacks the models the claim needs. A claim whose lens failed
reads *not computed*; one whose lens applies to none of the study's models, *not applicable*.
Claims are registered by id (:data:`CLAIM_REGISTRY`), as lenses are.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robustlens.analysis.bootstrap import (
    Interval,
    full_weights,
    interval,
    mean_interval,
    mean_samples,
    resample_weights,
    spearman_rows,
)
from robustlens.claims.verdict import Verdict, combine
from robustlens.lenses.base import StudyModel
from robustlens.papers import Paper
from robustlens.registry import Registry

MONOTONE = 0.8
"""Spearman ρ a "grows with ε" claim needs (besides an interval above 0) to hold."""


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
        self._arrays = arrays
        self.lenses = lenses
        self.n = n_images
        self.num_classes = num_classes
        self.resamples = 1000
        self.seed = 0
        self._weights: dict[int, np.ndarray] = {}

    def weights(self, n: int) -> np.ndarray:
        """Bootstrap weights over ``n`` images, the same for every model (paired)."""
        if n not in self._weights:
            self._weights[n] = resample_weights(n, self.resamples, self.seed)
        return self._weights[n]

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


def versus_natural(
    view: ResultsView, stat: ModelStat, what: str, direction: int = 1
) -> tuple[list[int], list[str], dict]:
    """Δ = stat(robust) − stat(natural) per robust model with paired bootstrap intervals."""
    if not view.natural or not view.robust:
        return [], [f"needs a natural and at least one robust model ({what})"], {}
    w = view.weights(view.n)
    nat = view.natural[0]
    one = full_weights(view.n)
    base_full, base_boot = stat(view, nat.name, one)[0], stat(view, nat.name, w)
    signs, parts, numbers = [], [f"{nat.name}: {what} = {base_full:.3g}"], {}
    for m in view.robust:
        iv = interval(stat(view, m.name, one)[0] - base_full, stat(view, m.name, w) - base_boot)
        signs.append(iv.sign() * direction)
        parts.append(f"{m.name}: Δ {what} = {iv.text()}")
        numbers[m.name] = {"delta": iv.estimate, "low": iv.low, "high": iv.high}
    numbers["natural"] = {"model": nat.name, "value": float(base_full)}
    return signs, parts, numbers


def grows_with_eps(
    view: ResultsView, stat: ModelStat, what: str, include_natural: bool = True
) -> tuple[list[int], list[str], dict]:
    """Spearman ρ between training ε and a statistic, per training norm with ≥ 3 models."""
    w = view.weights(view.n)
    signs, parts, numbers = [], [], {}
    one = full_weights(view.n)
    for norm in sorted({m.train_norm for m in view.robust if m.train_norm}):
        family = [m for m in view.robust if m.train_norm == norm]
        if include_natural:
            family = view.natural[:1] + family
        eps = np.array([m.train_eps for m in family])
        if len(set(eps)) < 3:
            parts.append(f"{norm}: {len(set(eps))} distinct ε (needs 3)")
            continue
        full = np.array([stat(view, m.name, one)[0] for m in family])
        boot = np.stack([stat(view, m.name, w) for m in family], axis=1)
        rho_full = spearman_rows(eps, full[None, :])[0]
        iv = interval(rho_full, spearman_rows(eps, boot))
        # "Grows with ε" asks for a (nearly) monotone trend, not just a positive correlation.
        signs.append(iv.sign() if iv.sign() < 0 or iv.estimate >= MONOTONE - 1e-9 else 0)
        parts.append(
            f"{norm}: ρ(ε, {what}) = {iv.text()} over ε = {', '.join(f'{e:g}' for e in eps)}"
        )
        numbers[norm] = {"rho": iv.estimate, "low": iv.low, "high": iv.high}
    return signs, parts, numbers


def verdict_from(signs: list[int], parts: list[str], numbers: dict) -> Verdict:
    status = combine(signs)
    return Verdict(status, "; ".join(parts), "95 % paired bootstrap CI over images", numbers)
