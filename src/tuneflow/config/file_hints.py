"""Did-you-mean for a path that is not there: the nearest name in the folder the user pointed at.

A study names many files (data, search space, candidates, model folders); a typo in one should say
which name was meant, as an unknown key does, instead of only "not found".
"""

from __future__ import annotations

from pathlib import Path

from tuneflow.config.errors import ConfigError
from tuneflow.config.registry import closest_name


def nearest_file(path: str | Path, *, folders: bool = False, extra: tuple[str, ...] = ()) -> str | None:
    """The name nearest to ``path``'s own among those beside it (files, or with ``folders`` folders) and ``extra``."""
    path = Path(path)
    try:
        beside = [p.name for p in path.parent.iterdir() if (p.is_dir() if folders else p.is_file())]
    except OSError:  # the folder is missing or unreadable
        beside = []
    return closest_name(path.name, [*beside, *extra], cutoff=0.6)


def missing_file_hint(path: str | Path, *, folders: bool = False) -> str:
    """``"; did you mean 'x'?"``, ``"; folder F does not exist"`` or ``""``, to end a "not found" message."""
    path = Path(path)
    if not path.parent.is_dir():
        return f"; folder {str(path.parent)!r} does not exist"
    close = nearest_file(path, folders=folders)
    return f"; did you mean {close!r}?" if close else ""


def require_file(path: Path, *, file: str | None, key: str) -> None:
    """A :class:`ConfigError` naming ``file`` and ``key`` when ``path`` is not a file."""
    if not path.is_file():
        raise ConfigError(f"file not found: {path}{missing_file_hint(path)}", file=file, key=key)
