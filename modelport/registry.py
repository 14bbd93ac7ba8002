"""Registries: named tables keyed by Keras layer class or op type, one type for every table.

A table is read like a mapping (``name in table``, ``table.get(name)``, ``table[name]``). Filling
it is explicit: registering a name twice is an error at import time unless the second entry says
``replace=True`` (a rule that deliberately takes over a generic one), so two families can never
silently overwrite each other. ``require`` is the lookup whose miss is an ``UnsupportedError``
naming what was asked for and listing what is supported, so an unsupported model fails up front
with something a user can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar

from .errors import UnsupportedError

V = TypeVar("V")
F = TypeVar("F", bound=Callable[..., Any])


class Registry(Mapping[str, V]):
    """A table of ``V`` by name (layer class or op type); see the module's docstring."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._table: dict[str, V] = {}

    def add(self, name: str, value: V, *, replace: bool = False) -> None:
        """Enter ``value`` under ``name``; a second entry needs ``replace=True``."""
        if name in self._table and not replace:
            raise ValueError(f"{self.what}: {name} registered twice")
        self._table[name] = value

    def remove(self, name: str) -> None:
        """Take ``name`` out again (a generic row that must not apply to it)."""
        del self._table[name]

    def register(self, *names: str, **bound: Any) -> Callable[[F], F]:
        """Decorator entering a function under ``names``; ``bound`` keyword arguments are fixed
        for these names (one function serving Conv1D/2D/3D with ``n=1/2/3``)."""
        def deco(fn: F) -> F:
            for name in names:
                # an entry is of this table's function type V, partial or not
                entry: Any = partial(fn, **bound) if bound else fn
                self.add(name, entry)
            return fn
        return deco

    def require(self, name: str, *, layer: str | None = None) -> V:
        """The entry for ``name``; a miss is an UnsupportedError listing what is supported."""
        try:
            return self._table[name]
        except KeyError:
            raise UnsupportedError(
                f"{self.what} has no rule for {name}", layer=layer,
                hint=f"supported: {', '.join(sorted(self._table))}") from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._table)

    def missing(self, names: Iterable[str]) -> list[str]:
        """Which of ``names`` have no entry, sorted."""
        return sorted({n for n in names if n not in self._table})

    def __getitem__(self, name: str) -> V:
        return self._table[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self._table)} entries)"
