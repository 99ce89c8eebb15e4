"""Storage URLs: the one place that knows which kind of storage a URL names, and keeps its password out of every log line.

Kinds (:func:`storage_kind`): ``rdb`` (any SQLAlchemy database; :func:`sqlite_file` says whether it is
a SQLite file, and which), ``journal`` (a journal file), ``redis`` and ``grpc`` (a ``tuneflow proxy``).
Everything else asks these functions rather than looking at a URL itself. Passwords are replaced by
``***`` in every log line, table, export and note.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

# For text that is not one URL SQLAlchemy parses (redis://, journal paths, URLs inside error messages):
# scheme://user:password@host -> scheme://user:***@host. The password runs to the *last* "@" of the
# whitespace-free token, so a raw "@" in a password ("p@ss") is hidden whole (over-redacting an odd
# token beats leaking half a password).
_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<password>\S*)(?P<tail>@)")


def _redact_credentials(text: str) -> str:
    return _CREDENTIALS.sub(lambda m: f"{m.group('head')}***{m.group('tail')}", text)


def redact_url(url: str | None) -> str | None:
    """The URL with its password replaced by ``***``.

    Database URLs go through SQLAlchemy's own parser and ``render_as_string(hide_password=True)``, so
    what is hidden is exactly what SQLAlchemy would send as the password (percent-encoded ``%40``,
    ``:``, ``/``, spaces). A URL without a password comes back as written (SQLAlchemy's rendering
    would sort its query); anything else (text around a URL, a bad port, redis, journal files) goes
    through the pattern :func:`redact_text` uses.
    """
    if url is None:
        return None
    if storage_kind(url) != "rdb":
        return _redact_credentials(url)  # redis-py and the journal parse these, not SQLAlchemy
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return _redact_credentials(url)
    if parsed.password is None or "://" in f"{parsed.database} {parsed.query}":
        return _redact_credentials(url)  # nothing to hide here, or text with more URLs in it
    if parsed.host and "@" in parsed.host:
        # A raw "@" in the password: SQLAlchemy stops the password at the first "@" and takes the
        # rest ("ss@db") for the host, which would print part of the password; keep the real host.
        parsed = parsed.set(host=parsed.host.rpartition("@")[2])
    return parsed.render_as_string(hide_password=True)


def redact_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Redact URL credentials and any literal secret values in free text (error messages, notes)."""
    text = _redact_credentials(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


JOURNAL_SCHEME = "journal://"


JOURNAL_SUFFIXES = (".log", ".jsonl")


REDIS_SCHEMES = ("redis://", "rediss://")


GRPC_SCHEME = "grpc://"


StorageKind = Literal["rdb", "journal", "redis", "grpc"]


def storage_kind(url: str) -> StorageKind:
    """``grpc`` (a ``tuneflow proxy``), ``redis``, ``journal`` (``journal://`` or a ``*.log`` / ``*.jsonl`` path), else ``rdb``."""
    if url.startswith(GRPC_SCHEME):
        return "grpc"
    if url.startswith(REDIS_SCHEMES):
        return "redis"
    if url.startswith(JOURNAL_SCHEME) or ("://" not in url and url.endswith(JOURNAL_SUFFIXES)):
        return "journal"
    return "rdb"


def is_sqlite(url: "str | URL") -> bool:
    """A SQLite database URL (a file, or in memory)."""
    parsed = _sqlalchemy_url(url)
    return parsed is not None and parsed.get_backend_name() == "sqlite"


def sqlite_file(url: "str | URL") -> Path | None:
    """The database file of a SQLite URL, as written (a relative path stays relative); None for an
    in-memory SQLite database and for every other storage."""
    parsed = _sqlalchemy_url(url)
    if parsed is None or parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _sqlalchemy_url(url: "str | URL") -> "URL | None":
    """SQLAlchemy's parse of an ``rdb`` URL (an engine's ``URL`` as it is); None for other kinds or a URL that does not parse."""
    if isinstance(url, str) and storage_kind(url) != "rdb":
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def journal_path(url: str) -> Path:
    """The file of a journal URL (``journal:///abs/x.log``, ``journal://rel/x.log`` or a bare path)."""
    return Path(url.removeprefix(JOURNAL_SCHEME))


def absolute_storage_url(url: str, base_dir: Path) -> str:
    """A journal file given by a relative path becomes ``journal:///absolute/path``; other URLs unchanged."""
    if storage_kind(url) != "journal":
        return url
    path = journal_path(url)
    return f"{JOURNAL_SCHEME}{path if path.is_absolute() else (base_dir / path).resolve()}"
