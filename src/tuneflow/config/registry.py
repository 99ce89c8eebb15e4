"""Name -> object tables that answer an unknown name with "did you mean ...? available: ..."."""

from __future__ import annotations

import difflib
from typing import Generic, Iterable, TypeVar

from tuneflow.config.errors import ConfigError

T = TypeVar("T")


def unknown_name_message(kind: str, name: str, available: Iterable[str]) -> str:
    choices = sorted(available)
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {kind} {name!r}; {hint}available: {', '.join(choices)}"


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
