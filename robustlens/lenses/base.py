"""What a lens is: parameters with paper defaults, a computation, and the figures it draws.

A lens computes, for one model (``scope = "model"``) or for all models of a study together
(``scope = "study"``), tidy tables (one row per model × layer × setting × metric) and per-image
arrays that claims bootstrap over. It never trains a model, parses a file or touches the
results store; the study runner caches each run by (lens, version, parameters, model digests,
data fingerprint). Figures are drawn from the stored tables of all models, so a report always
shows robust and natural models side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from robustlens.attacks.spec import NORM_NAMES
from robustlens.data.imageset import ImageSet
from robustlens.data.info import DatasetInfo
from robustlens.errors import RobustlensError
from robustlens.lenses.output import TIDY_COLUMNS
from robustlens.lenses.parameters import ParamsRefused, param_constraints, param_hints
from robustlens.models.base import RobustClassifier
from robustlens.models.card import ModelCard
from robustlens.models.mode import eval_mode
from robustlens.params import validate
from robustlens.registry import Registry


class LensNotApplicable(RobustlensError):
    """A lens that does not apply to a model, e.g. the filter lens on a network without 3×3
    convolutions. Not a failure: the runner records it per model with ``problem`` as the
    reason, the report shows it, and the claims that need the lens say so."""


@dataclass
class StudyModel:
    """A model of the study with what lenses need to know about how it was trained."""

    name: str
    model: RobustClassifier
    card: ModelCard
    digest: str
    setting: str = ""
    """The setting this model replicates with another training seed (``linf-0.1`` for
    ``linf-0.1@s1``, see a study entry's ``seeds``); empty for a model of its own."""

    @property
    def group(self) -> str:
        """The replicate group claims pool over: its setting, or its own name."""
        return self.setting or self.name

    @property
    def recipe(self) -> dict[str, Any]:
        return dict(self.card.recipe or {})

    @property
    def trained_on(self) -> dict[str, Any] | None:
        """The constructed training set (kind, source model, checks) the model was trained on,
        or None for the data set's own training split."""
        source = self.card.source
        return source.get("train_on") if isinstance(source, dict) else None

    @property
    def is_natural(self) -> bool:
        """Trained without adversarial examples on the data set's own training split."""
        if self.trained_on is not None:
            return False
        return self.recipe.get("method", "natural") == "natural" or not self.train_eps

    @property
    def is_robust(self) -> bool:
        """Adversarially trained on the data set's own training split."""
        return self.trained_on is None and not self.is_natural

    @property
    def train_norm(self) -> str | None:
        return (
            None if self.recipe.get("method", "natural") == "natural" else self.recipe.get("norm")
        )

    @property
    def train_eps(self) -> float:
        if self.recipe.get("method", "natural") == "natural":
            return 0.0
        return float(self.recipe.get("eps") or 0.0)

    def label(self) -> str:
        """Short description, e.g. ``linf-0.1 (L∞ ε=0.1)`` or ``natural``."""
        if self.trained_on is not None:
            on = self.trained_on
            return f"{self.name} (on the {on.get('set')} set of {on.get('source')})"
        if self.is_natural:
            return f"{self.name} (natural)"
        norm = NORM_NAMES.get(self.train_norm or "", (self.train_norm or "").upper())
        return f"{self.name} ({norm} ε={self.train_eps:g})"


@dataclass
class LensContext:
    """Everything a lens may use besides its models, data and parameters."""

    info: DatasetInfo
    seed: int
    device: torch.device
    load_split: Callable[[str, int | None], ImageSet]
    """Load another split of the study's data set: ``load_split("train", n)``."""
    progress: bool = False
    scratch: Path | None = None
    sets: Path | None = None
    """Where constructed sets are kept (``<study>/constructed``); None outside a study, where
    lenses keep them in memory only."""
    cache: dict[Any, Any] = field(default_factory=dict)
    """Results shared by the lenses of one run (e.g. adversarial examples, see common.py)."""


@dataclass
class LensResult:
    """Tidy tables, per-image arrays for claims, and notes for the report."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name, frame in self.tables.items():
            missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
            if missing:
                raise ValueError(f"lens table {name!r} lacks tidy columns {missing}")


Compute = Callable[..., LensResult]
Plot = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class LensSpec:
    """A registered lens.

    ``compute(model, data, params, ctx)`` for scope "model", or
    ``compute(models, data, params, ctx)`` for scope "study"; ``plot(tables, models, params,
    arrays=...)`` returns ``{title: matplotlib Figure}`` from the tables of every model
    (``arrays(model, name)`` reads a stored per-model array, or None), or, for a figure whose
    measure is degenerate (constant or undefined for every model), ``{title: why}``: the
    report says why in words instead of drawing flat lines; ``defaults(info)``
    gives the parameters' defaults for a data set (the paper's values, scaled to its
    resolution where the paper gives them for CIFAR / ImageNet only).
    """

    name: str
    title: str
    paper: str
    section: str
    description: str
    params: type
    compute: Compute
    plot: Plot | None = None
    scope: str = "model"
    version: int = 1
    defaults: Callable[[DatasetInfo], dict[str, Any]] | None = None
    applies: Callable[[StudyModel, Any], str | None] | None = None
    """For a model-scope lens: ``applies(model, params)`` is None when the lens can run on the
    model, else the reason it cannot (checked from the model's anatomy before any work)."""

    anatomy: str = ""
    """What the lens reads of a model by default and when it does not apply (docs/LENSES.md)."""

    def check_applicable(self, model: StudyModel, params: Any) -> None:
        """Raise :class:`LensNotApplicable` when the lens cannot run on ``model``."""
        reason = self.applies(model, params) if self.applies is not None else None
        if reason:
            raise LensNotApplicable(reason)

    def run(
        self,
        target: StudyModel | list[StudyModel],
        data: ImageSet,
        params: Any,
        ctx: LensContext,
    ) -> LensResult:
        """``compute`` with every model of ``target`` in eval mode, so looking at a model never
        changes it (BatchNorm statistics) nor depends on the mode it was left in; each model's
        own mode is restored afterwards."""
        group = target if isinstance(target, list) else [target]
        with eval_mode(*(m.model for m in group)):
            return self.compute(target, data, params, ctx)

    def resolve_params(self, info: DatasetInfo, overrides: Mapping[str, Any], where: str) -> Any:
        """The parameter object: defaults for ``info`` updated with ``overrides``, validated
        (each override against its constraint, see :func:`param_constraints`; then every value
        and the rules over several values, see :func:`check_params`), errors naming ``where``."""
        values = dict(self.defaults(info) if self.defaults else {})
        noun = f"parameter of lens {self.name!r}"
        rules, hints = param_constraints(self.params), param_hints(self.params)
        values.update(validate(overrides, rules, prefix=where, noun=noun, hints=hints))
        try:
            return self.params(**values)
        except ParamsRefused as exc:
            raise exc.refusal.error(where) from None


LENSES: Registry[LensSpec] = Registry("lens")


def register_lens(spec: LensSpec) -> LensSpec:
    return LENSES.add(spec.name, spec)


def list_lenses() -> list[str]:
    return LENSES.names()


def get_lens(name: str) -> LensSpec:
    return LENSES.get(name)
