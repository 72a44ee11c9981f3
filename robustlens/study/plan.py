"""A study's plan: its lens units, each with the models it covers and its cache key.

A unit is one lens on one model (a model-scope lens) or one lens on all the models it covers
(a study-scope lens). :func:`lens_groups` is the one place a lens is expanded into units; the
execution, the results view and the status all read the units of a :class:`StudyPlan`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from robustlens.errors import ConfigError
from robustlens.lenses import LENSES, LensSpec, StudyModel
from robustlens.study.spec import LensPlan, StudySpec
from robustlens.study.store import run_key

T = TypeVar("T")


def params_dict(params: Any) -> dict[str, Any]:
    """A lens's parameters as stored and hashed into its cache key."""
    return dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)


def lens_groups(
    plan: LensPlan, spec: LensSpec, models: Sequence[T], name_of: Any = None
) -> list[list[T]]:
    """The groups of ``models`` (study order) one lens runs on: one per covered model for a
    model-scope lens, all covered models at once for a study-scope lens (none when it covers
    none of them). ``name_of`` gives a model's name (default: its ``name`` attribute)."""
    name = name_of or (lambda m: m.name)
    chosen = [m for m in models if plan.covers(name(m))]
    if spec.scope == "model":
        return [[m] for m in chosen]
    return [chosen] if chosen else []


def unit_key(
    plan: LensPlan, spec: LensSpec, group: Sequence[StudyModel], fingerprint: str, seed: int
) -> str:
    """The cache key of one lens on ``group``: lens, version, parameters, the models'
    digests, the evaluation data's fingerprint and the study seed."""
    return run_key(
        spec.name,
        spec.version,
        params_dict(plan.params),
        {m.name: m.digest for m in group},
        fingerprint,
        seed,
    )


@dataclass(frozen=True)
class Unit:
    """One lens on one model, or a study-scope lens on all the models it covers."""

    lens: LensPlan
    spec: LensSpec
    models: tuple[StudyModel, ...]
    key: str

    @property
    def scope_model(self) -> str | None:
        """The model of a model-scope unit; None for a study-scope unit."""
        return self.models[0].name if self.spec.scope == "model" else None

    @property
    def label(self) -> str:
        """``lens:model``, or ``lens:all`` for a study-scope unit."""
        return f"{self.lens.name}:{self.scope_model or 'all'}"

    @property
    def target(self) -> StudyModel | list[StudyModel]:
        """What the lens's ``run`` takes: one model, or the list of them."""
        return self.models[0] if self.spec.scope == "model" else list(self.models)

    @property
    def digests(self) -> dict[str, str]:
        return {m.name: m.digest for m in self.models}


@dataclass(frozen=True)
class StudyPlan:
    """The lens units of a study over a set of models (obtained, or as stored) and data."""

    spec: StudySpec
    models: tuple[StudyModel, ...]
    fingerprint: str
    """The evaluation data's fingerprint (part of every key)."""
    units: tuple[Unit, ...]

    @classmethod
    def of(cls, spec: StudySpec, models: Sequence[StudyModel], fingerprint: str) -> StudyPlan:
        """Every unit of ``spec``'s lenses over ``models``, in study order."""
        units = []
        for plan in spec.lenses:
            lens = LENSES.get(plan.name)
            for group in lens_groups(plan, lens, models):
                key = unit_key(plan, lens, group, fingerprint, spec.seed)
                units.append(Unit(plan, lens, tuple(group), key))
        return cls(spec, tuple(models), fingerprint, tuple(units))

    def lens_plan(self, lens: str) -> LensPlan:
        """The study's plan of ``lens``; ConfigError naming the study's lenses if it has none."""
        plan = self.spec.lens(lens)
        if plan is None:
            raise ConfigError(
                f"the study has no lens {lens!r}",
                fix=f"its lenses: {', '.join(p.name for p in self.spec.lenses) or 'none'}",
            )
        return plan

    def for_lens(self, lens: str) -> list[Unit]:
        """The units of ``lens`` (ConfigError if the study has no such lens)."""
        self.lens_plan(lens)
        return [u for u in self.units if u.lens.name == lens]


def expected_units(spec: StudySpec, lens: str) -> int:
    """How many units ``lens`` has once every model of the study is obtained."""
    plan = spec.lens(lens)
    if plan is None:
        return 0
    return len(lens_groups(plan, LENSES.get(lens), spec.models))
