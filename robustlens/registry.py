"""A name → object table that answers unknown names with the allowed ones and a suggestion."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from robustlens.errors import ConfigError
from robustlens.params import did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names (case-insensitive, ``_`` and ``-`` equivalent) to objects of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().lower().replace("_", "-")

    def add(self, name: str, item: T) -> T:
        key = self._key(name)
        if key in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[key] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(item: T) -> T:
            return self.add(name, item)

        return decorate

    def get(self, name: str) -> T:
        if not isinstance(name, str):
            raise ConfigError(
                f"{self.kind} name must be a string, got {type(name).__name__}",
                fix=f"use one of: {', '.join(self.names())}",
            )
        key = self._key(name)
        if key not in self._items:
            hint = did_you_mean(key, self._items)
            raise ConfigError(
                f"unknown {self.kind} {name!r}",
                fix=f"{hint}Known {self.kind} names: {', '.join(self.names())}",
            )
        return self._items[key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._items[name]) for name in self.names()]
