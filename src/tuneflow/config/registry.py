"""Name -> object tables that answer an unknown name with "did you mean ...? available: ..."."""

from __future__ import annotations

import difflib
from typing import Generic, Iterable, TypeVar

from tuneflow.config.errors import ConfigError

T = TypeVar("T")


def closest_name(name: str, available: Iterable[str], *, cutoff: float = 0.5) -> str | None:
    """The available name nearest to ``name`` (difflib), or None when none is near enough."""
    close = difflib.get_close_matches(str(name), list(available), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: str, available: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the nearest available name, else ``""``."""
    close = closest_name(name, available)
    return f"did you mean {close!r}? " if close else ""


def unknown_name_message(kind: str, name: str, available: Iterable[str]) -> str:
    choices = sorted(available)
    return f"unknown {kind} {name!r}; {did_you_mean(name, choices)}available: {', '.join(choices)}"


class Registry(Generic[T]):
    """A small named table; ``register`` is usable as a class decorator."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str):
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(unknown_name_message(self.kind, name, self._items))
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
