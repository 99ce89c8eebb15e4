"""Optuna storage from a URL: checked before anything is written, with pool settings for long runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneflow.errors import ConfigError
from tuneflow.redaction import redact_text, redact_url

if TYPE_CHECKING:
    import optuna


def check_storage_url(url: str, *, file: str | None = None) -> None:
    """Parse the URL and find its SQLAlchemy dialect and driver, without connecting."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as err:
        raise ConfigError(f"bad storage URL {redact_url(url)!r}: {redact_text(str(err))}", file=file, key="storage") from None
    except ImportError as err:
        raise ConfigError(
            f"storage URL {redact_url(url)!r} needs a database driver that is not installed ({err.name or err})",
            file=file,
            key="storage",
        ) from None


def open_storage(url: str, *, file: str | None = None) -> "optuna.storages.RDBStorage":
    """An RDB storage; connection problems become one-line errors that never show the password."""
    import optuna
    from sqlalchemy.engine import make_url

    check_storage_url(url, file=file)
    engine_kwargs = {}
    if make_url(url).get_backend_name() != "sqlite":
        # Long studies outlive idle connections: test each one before use and recycle hourly.
        engine_kwargs = {"pool_pre_ping": True, "pool_recycle": 3600}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except Exception as err:  # driver / network / permission errors: one line for the user
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"cannot open storage {redact_url(url)!r}: {redact_text(first_line)}", file=file, key="storage") from None
