"""Registries: named tables of plain functions, one per layer class or op.

A miss is an ``UnsupportedError`` that names what was asked for and lists what is supported, so
an unsupported model fails up front with something a user can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from ..errors import UnsupportedError

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._table: dict[str, F] = {}

    def register(self, *names: str) -> Callable[[F], F]:
        def deco(fn: F) -> F:
            for name in names:
                if name in self._table:
                    raise ValueError(f"{self.what}: {name} registered twice")
                self._table[name] = fn
            return fn
        return deco

    def __contains__(self, name: str) -> bool:
        return name in self._table

    def get(self, name: str, *, layer: str | None = None) -> F:
        try:
            return self._table[name]
        except KeyError:
            raise UnsupportedError(
                f"{self.what} has no rule for {name}", layer=layer,
                hint=f"supported: {', '.join(sorted(self._table))}") from None

    def names(self) -> list[str]:
        return sorted(self._table)

    def missing(self, names: Iterable[str]) -> list[str]:
        return sorted({n for n in names if n not in self._table})
