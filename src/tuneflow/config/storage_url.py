"""Keep passwords in storage URLs out of every log line, table, export and note."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

# scheme://user:password@host -> scheme://user:***@host (works for any URL-shaped string).
_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^@\s]*)(?P<tail>@)")


def redact_url(url: str | None) -> str | None:
    """The URL with its password replaced by ``***``; also works on text containing URLs."""
    if url is None:
        return None
    return _CREDENTIALS.sub(lambda m: f"{m.group('head')}***{m.group('tail')}", url)


def redact_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Redact URL credentials and any literal secret values in free text (error messages, notes)."""
    text = redact_url(text) or ""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


JOURNAL_SCHEME = "journal://"


JOURNAL_SUFFIXES = (".log", ".jsonl")


REDIS_SCHEMES = ("redis://", "rediss://")


StorageKind = Literal["rdb", "journal", "redis"]


def storage_kind(url: str) -> StorageKind:
    if url.startswith(REDIS_SCHEMES):
        return "redis"
    if url.startswith(JOURNAL_SCHEME) or ("://" not in url and url.endswith(JOURNAL_SUFFIXES)):
        return "journal"
    return "rdb"


def journal_path(url: str) -> Path:
    """The file of a journal URL (``journal:///abs/x.log``, ``journal://rel/x.log`` or a bare path)."""
    return Path(url[len(JOURNAL_SCHEME):] if url.startswith(JOURNAL_SCHEME) else url)


def absolute_storage_url(url: str, base_dir: Path) -> str:
    """A journal file given by a relative path becomes ``journal:///absolute/path``; other URLs unchanged."""
    if storage_kind(url) != "journal":
        return url
    path = journal_path(url)
    return f"{JOURNAL_SCHEME}{path if path.is_absolute() else (base_dir / path).resolve()}"
