"""A lens's parameters: each field's constraint is its annotation narrowed by a :func:`rule`
in its metadata, rules over several fields are the class's ``refusals()``, and
:func:`check_params` checks both through :mod:`robustlens.params`, in its one error format."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from robustlens.errors import ConfigError
from robustlens.params import AnyOf, Constraint, from_annotation, invalid, make_constraint

RULE = "robustlens.rule"
HINT = "robustlens.hint"


def rule(constraint: Any, hint: str | None = None) -> dict[str, Any]:
    """Field metadata stating what a lens parameter may be beyond its annotation's type, in
    :mod:`robustlens.params`' terms, with an optional hint on how to fix a bad value::

        batch_size: int = field(default=250, metadata=rule(Interval(int, 1, None)))

    None stays allowed where the annotation is optional (``int | None``)."""
    return {RULE: make_constraint(constraint), HINT: hint}


@functools.cache
def param_constraints(params: type) -> dict[str, Constraint]:
    """Each field of a lens's parameter dataclass → its constraint: the field's :func:`rule`,
    or else the one its annotation states (int, float, bool, str, tuples of them, optional:
    see :func:`robustlens.params.from_annotation`)."""
    hints = typing.get_type_hints(params)
    out: dict[str, Constraint] = {}
    for f in dataclasses.fields(params):
        typed = from_annotation(hints[f.name])
        ruled = f.metadata.get(RULE)
        if ruled is None:
            out[f.name] = typed
        else:
            out[f.name] = AnyOf([ruled, None]) if typed.accepts(None) else ruled
    return out


def param_hints(params: type) -> dict[str, str]:
    """Each field of a lens's parameter dataclass → its :func:`rule`'s hint, where it has one."""
    return {f.name: f.metadata[HINT] for f in dataclasses.fields(params) if f.metadata.get(HINT)}


@dataclass(frozen=True)
class Refusal:
    """A parameter value that is not allowed: ``key`` (``key[i]`` for an item), the value,
    what is allowed and how to fix it (see :func:`robustlens.params.invalid`)."""

    key: str
    value: Any
    allowed: str
    hint: str | None = None

    def error(self, prefix: str | None = None, where: str = "") -> ConfigError:
        """The one ConfigError: at ``prefix.key`` (a study's ``<file>: lenses.<name>``) when
        ``prefix`` is given, else at ``where: key``."""
        key = f"{prefix}.{self.key}" if prefix else self.key
        return invalid("" if prefix else where, key, self.value, self.allowed, self.hint)


class ParamsRefused(ConfigError):
    """A lens parameter object refused by :func:`check_params`; ``refusal`` says which value,
    so that :meth:`LensSpec.resolve_params` names it where the study file set it."""

    def __init__(self, params: object, refusal: Refusal) -> None:
        error = refusal.error(where=type(params).__name__)
        super().__init__(error.problem, fix=error.fix)
        self.refusal = refusal


class LensParams:
    """Base of every lens's parameter dataclass: each field's constraint is its annotation
    narrowed by a :func:`rule` in its metadata, and :meth:`refusals` states the rules over
    several fields; creating the object checks both (:func:`check_params`)."""

    def __post_init__(self) -> None:
        check_params(self)

    def refusals(self) -> Iterator[Refusal]:
        """Values refused by a rule over several fields (e.g. ``n > k``), after every field
        met its own constraint; none by default."""
        return iter(())


def check_params(params: LensParams) -> None:
    """Raise :class:`ParamsRefused` (a ConfigError in the one format of
    :mod:`robustlens.params`, at ``<class>: <key>``) for the first field of ``params`` that
    breaks its constraint (:func:`param_constraints`), else for the first value its
    :meth:`LensParams.refusals` refuses."""
    for key, constraint in param_constraints(type(params)).items():
        found = constraint.failure(getattr(params, key), key)
        if found is not None:
            hint = param_hints(type(params)).get(key)
            raise ParamsRefused(params, Refusal(found.key, found.value, found.allowed, hint))
    refusal = next(iter(params.refusals()), None)
    if refusal is not None:
        raise ParamsRefused(params, refusal)
