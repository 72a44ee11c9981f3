"""Declarative parameter constraints and the one check that applies them.

Every user-facing parameter (study file keys, training-recipe fields, lens parameters, command
line options) is described by a constraint: a type, an :class:`Interval`, :class:`Options`, a
path, a list of constrained items, or a named predicate; a Python list of constraints means
"any of them" and ``None`` in it allows None (an option left out). :func:`validate` checks a
mapping of values against a mapping of constraints and raises one :class:`ConfigError` in one
format::

    <where>: <key> = <value> is not allowed. use <what is allowed>[; <hint>]
    <where>: <key>: unknown key. did you mean '<name>'? allowed: <keys>

where ``<what is allowed>`` is the constraint's own description ("a whole number ≥ 1",
"one of 'linf', 'l2', 'l1'"). The design follows scikit-learn's parameter validation
(constraints as objects that test a value and describe themselves); the code is our own.
"""

from __future__ import annotations

import difflib
import math
import os
import typing
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any

from robustlens.errors import ConfigError

# ------------------------------------------------------------------------------ suggestions


def closest(name: str, names: Iterable[str]) -> str | None:
    """The known name nearest to ``name`` (difflib's ratio ≥ 0.6), or None."""
    found = difflib.get_close_matches(name, list(names), n=1)
    return found[0] if found else None


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the nearest known name, or ``""`` when none is near."""
    near = closest(name, names)
    return f"did you mean {near!r}? " if near else ""


# ---------------------------------------------------------------------------------- format


def place(where: str, key: str) -> str:
    """``where: key`` (or just one of them when the other is empty)."""
    return f"{where}: {key}" if where and key else where or key


SHOWN = 80
"""Values whose repr is longer than this are shown cut short in messages."""


def shown(value: Any) -> str:
    """``repr(value)`` (of the text, for a path), cut to about SHOWN characters."""
    text = repr(str(value) if isinstance(value, os.PathLike) else value)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def invalid(where: str, key: str, value: Any, allowed: str, hint: str | None = None) -> ConfigError:
    """The one error for a value that is not allowed: where, the value, what is allowed, and
    an optional hint on how to fix it."""
    fix = f"use {allowed}" + (f"; {hint}" if hint else "")
    return ConfigError(f"{place(where, key)} = {shown(value)} is not allowed", fix=fix)


def unknown_key(
    where: str, key: str, known: Iterable[str], *, noun: str = "key", last: str | None = None
) -> ConfigError:
    """The one error for a key that is not a parameter: where, the key, the nearest known
    name and all known names (sorted). ``last`` is the key's own name when ``key`` is a
    dotted path (what the suggestion is computed from)."""
    names = sorted(known)
    fix = f"{did_you_mean(last or key, names)}allowed: {', '.join(names) or '(none)'}"
    return ConfigError(f"{place(where, key)}: unknown {noun}", fix=fix)


# ----------------------------------------------------------------------------- constraints


@dataclass(frozen=True)
class Failure:
    """Which value (``key``, possibly an item ``key[i]``) broke which description."""

    key: str
    value: Any
    allowed: str


class Constraint:
    """What a parameter may be: ``accepts`` tests a value, ``describe`` says it in words
    ("a whole number ≥ 1"), ``convert`` gives the value to use (e.g. a float for a number)."""

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def convert(self, value: Any) -> Any:
        return value

    def failure(self, value: Any, key: str) -> Failure | None:
        """None when ``value`` is accepted, else what is wrong and where."""
        return None if self.accepts(value) else Failure(key, value, self.describe())

    def __str__(self) -> str:
        return self.describe()


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Anything(Constraint):
    """Any value (an annotation we do not check)."""

    def accepts(self, value: Any) -> bool:
        return True

    def describe(self) -> str:
        return "anything"


class NoneValue(Constraint):
    """None: the parameter left out."""

    def accepts(self, value: Any) -> bool:
        return value is None

    def describe(self) -> str:
        return "nothing (leave it out)"


class Integer(Constraint):
    """A whole number (a bool is not one)."""

    def accepts(self, value: Any) -> bool:
        return _is_integer(value)

    def describe(self) -> str:
        return "a whole number"


class Real(Constraint):
    """A finite number, whole or not (a bool is not one); used as a float."""

    def accepts(self, value: Any) -> bool:
        return _is_real(value)

    def describe(self) -> str:
        return "a finite number"

    def convert(self, value: Any) -> Any:
        return float(value)


class Boolean(Constraint):
    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


class Text(Constraint):
    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def describe(self) -> str:
        return "a string"


class Table(Constraint):
    """A TOML table (a dict)."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def describe(self) -> str:
        return "a table"


class PathValue(Constraint):
    """A file or folder path, given as text; used as a :class:`Path`."""

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, str) and value.strip() != "") or isinstance(value, os.PathLike)

    def describe(self) -> str:
        return "a path (text)"

    def convert(self, value: Any) -> Any:
        return Path(value)


def _number(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return f"{value:g}"


CLOSED = ("both", "left", "right", "neither")


class Interval(Constraint):
    """A whole (``kind="integer"``) or finite real (``kind="real"``) number between ``left``
    and ``right`` (None: unbounded on that side); ``closed`` says which ends belong to it:
    "both", "left", "right" or "neither"."""

    def __init__(
        self,
        kind: str | type,
        left: float | None,
        right: float | None,
        *,
        closed: str = "both",
    ) -> None:
        kind = {int: "integer", float: "real"}.get(kind, kind)  # type: ignore[call-overload]
        if kind not in ("integer", "real"):
            raise ValueError(f"Interval kind must be 'integer' or 'real', not {kind!r}")
        if closed not in CLOSED:
            raise ValueError(f"Interval closed must be one of {CLOSED}, not {closed!r}")
        if left is not None and right is not None and left > right:
            raise ValueError(f"Interval left end {left} is above its right end {right}")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def accepts(self, value: Any) -> bool:
        if not (_is_integer(value) if self.kind == "integer" else _is_real(value)):
            return False
        left_in = self.closed in ("both", "left")
        right_in = self.closed in ("both", "right")
        above = self.left is None or value > self.left or (left_in and value == self.left)
        below = self.right is None or value < self.right or (right_in and value == self.right)
        return above and below

    def describe(self) -> str:
        left_in = self.closed in ("both", "left")
        right_in = self.closed in ("both", "right")
        whole = self.kind == "integer"
        if self.left is not None and self.right is not None:
            noun = "a whole number" if whole else "a number"
            low, high = _number(self.left), _number(self.right)
            return f"{noun} in {'[' if left_in else '('}{low}, {high}{']' if right_in else ')'}"
        noun = "a whole number" if whole else "a finite number"
        if self.left is not None:
            return f"{noun} {'≥' if left_in else '>'} {_number(self.left)}"
        if self.right is not None:
            return f"{noun} {'≤' if right_in else '<'} {_number(self.right)}"
        return noun

    def convert(self, value: Any) -> Any:
        return value if self.kind == "integer" else float(value)


class Options(Constraint):
    """One of a fixed set of values (compared by type and value: 1 is not True)."""

    def __init__(self, options: Collection[Any]) -> None:
        unordered = isinstance(options, set | frozenset)
        self.options = tuple(sorted(options, key=repr) if unordered else options)

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(o) and value == o for o in self.options)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


class Satisfies(Constraint):
    """A value for which ``test`` is true, described in words by ``description`` (for rules
    no other constraint states, e.g. a name pattern)."""

    def __init__(self, test: Callable[[Any], bool], description: str) -> None:
        self.test, self.description = test, description

    def accepts(self, value: Any) -> bool:
        return bool(self.test(value))

    def describe(self) -> str:
        return self.description


class ListOf(Constraint):
    """A list (or tuple) whose every item meets ``item``; at least ``min_len`` items. Used as
    a tuple of the converted items; an item's failure names its index (``key[i]``)."""

    def __init__(self, item: Any = None, *, min_len: int = 0) -> None:
        self.item = Anything() if item is None else make_constraint(item)
        self.min_len = min_len

    def accepts(self, value: Any) -> bool:
        return self.failure(value, "") is None

    def describe(self) -> str:
        size = "a non-empty list" if self.min_len == 1 else "a list"
        if self.min_len > 1:
            size = f"a list of at least {self.min_len} items"
        return size if isinstance(self.item, Anything) else f"{size}, each {self.item}"

    def failure(self, value: Any, key: str) -> Failure | None:
        if not isinstance(value, list | tuple) or len(value) < self.min_len:
            return Failure(key, value, self.describe())
        for i, item in enumerate(value):
            found = self.item.failure(item, f"{key}[{i}]")
            if found is not None:
                return found
        return None

    def convert(self, value: Any) -> Any:
        return tuple(self.item.convert(v) for v in value)


class AnyOf(Constraint):
    """Any one of several constraints (what a Python list of constraints means)."""

    def __init__(self, options: Iterable[Any]) -> None:
        self.options = tuple(make_constraint(o) for o in options)

    def accepts(self, value: Any) -> bool:
        return any(o.accepts(value) for o in self.options)

    def describe(self) -> str:
        words = [o.describe() for o in self.options]
        return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"

    def failure(self, value: Any, key: str) -> Failure | None:
        if self.accepts(value):
            return None
        lists = [o for o in self.options if isinstance(o, ListOf)]
        if isinstance(value, list | tuple) and len(lists) == 1:
            return lists[0].failure(value, key)  # the list's own, more precise complaint
        return Failure(key, value, self.describe())

    def convert(self, value: Any) -> Any:
        return next(o for o in self.options if o.accepts(value)).convert(value)


_TYPES: dict[Any, Callable[[], Constraint]] = {
    int: Integer,
    float: Real,
    bool: Boolean,
    str: Text,
    dict: Table,
    Path: PathValue,
}


def make_constraint(spec: Any) -> Constraint:
    """A constraint from its short forms: a Constraint itself, None, a type (int, float,
    bool, str, dict, Path) or a list of these (any of them)."""
    if isinstance(spec, Constraint):
        return spec
    if spec is None:
        return NoneValue()
    if isinstance(spec, list):
        return AnyOf(spec)
    if spec in _TYPES:
        return _TYPES[spec]()
    raise TypeError(f"not a parameter constraint: {spec!r}")


def from_annotation(hint: Any) -> Constraint:
    """The constraint an annotation states: int, float, bool, str, tuple[X, ...] / list[X]
    (a list of X), X | None; anything else is not checked."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, UnionType):
        return AnyOf(None if a is type(None) else from_annotation(a) for a in args)
    if origin in (tuple, list):
        return ListOf(from_annotation(args[0]) if args else None)
    if hint in (int, float, bool, str):
        return make_constraint(hint)
    return Anything()


# ------------------------------------------------------------------------------ validation


def check(
    value: Any, constraint: Any, *, where: str = "", key: str = "", hint: str | None = None
) -> Any:
    """``value`` checked against one constraint (or its short form) and converted; raises
    the one ConfigError naming ``where`` and ``key`` otherwise."""
    rule = make_constraint(constraint)
    found = rule.failure(value, key)
    if found is not None:
        raise invalid(where, found.key, found.value, found.allowed, hint)
    return rule.convert(value)


def validate(
    values: Mapping[str, Any],
    constraints: Mapping[str, Any],
    *,
    where: str = "",
    prefix: str = "",
    hints: Mapping[str, str] | None = None,
    noun: str = "key",
    spell: Callable[[str], str] = str,
) -> dict[str, Any]:
    """``values`` checked against ``constraints`` (key → constraint), in the constraints'
    order; returns the given values converted (numbers as floats, lists as tuples).

    An unknown key, or the first value that breaks its constraint, raises one ConfigError:
    ``where`` names the file or the thing ("training recipe", a study file's path), ``prefix``
    the dotted path of the table the keys are in ("models[0].recipe"), ``hints`` a fix per
    key added to the allowed values, ``noun`` what a key is called ("parameter of lens 'x'"),
    ``spell`` how a key is written where the user wrote it (``--eval-n`` on the command line).
    """
    if not isinstance(values, Mapping):
        raise invalid(where, prefix, values, "a table")

    def full(key: str) -> str:
        return f"{prefix}.{spell(key)}" if prefix else spell(key)

    unknown = sorted(str(k) for k in values if k not in constraints)
    if unknown:
        known = [spell(str(k)) for k in constraints]
        raise unknown_key(where, full(unknown[0]), known, noun=noun, last=spell(unknown[0]))
    out: dict[str, Any] = {}
    for key, constraint in constraints.items():
        if key in values:
            hint = (hints or {}).get(key)
            out[key] = check(values[key], constraint, where=where, key=full(key), hint=hint)
    return out
