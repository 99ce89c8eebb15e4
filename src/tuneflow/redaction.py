"""Keep passwords in storage URLs out of every log line, table, export and note."""

from __future__ import annotations

import re

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
