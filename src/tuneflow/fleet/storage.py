"""Optuna storage from a URL, checked before anything is written, set up for long many-worker runs.

The URL picks the storage:

* ``sqlite:///study.db``, ``postgresql+psycopg://user:pw@host/db``, ``mysql+pymysql://...`` — any
  SQLAlchemy URL Optuna's ``RDBStorage`` supports. Heartbeats are on by default: a trial whose worker
  died is failed after the grace period and re-queued (``RetryHeartbeatStaleTrialCallback``).
* ``journal:///abs/path/study.log``, or a plain path ending in ``.log`` / ``.jsonl`` — Optuna's
  journal storage on a (shared) file. Relative paths: beside the study file, or from the working
  directory when given on the command line.
* ``redis://host:6379/0`` (``rediss://`` for TLS) — Optuna's journal storage on Redis.
* ``grpc://host:port`` — a ``tuneflow proxy`` (Optuna's gRPC storage proxy) in front of PostgreSQL or
  MySQL, for fleets too large for one database connection pool each (:mod:`tuneflow.fleet.grpc_client`).

Journal storages keep no heartbeats: ``tuneflow cleanup --older-than S`` fails a dead worker's trial.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneflow.config.errors import ConfigError, first_line
from tuneflow.config.storage_url import (
    GRPC_SCHEME,
    is_sqlite,
    journal_path,
    redact_text,
    redact_url,
    sqlite_file,
    storage_kind,
)

if TYPE_CHECKING:
    import optuna

    from tuneflow.config.study_config import StorageOptionsConfig


def _default_options() -> "StorageOptionsConfig":
    from tuneflow.config.study_config import StorageOptionsConfig

    return StorageOptionsConfig()


def grpc_address(url: str, *, file: str | None = None) -> tuple[str, int]:
    """(host, port) of a ``grpc://host:port`` URL."""
    host, _, port = url[len(GRPC_SCHEME):].rstrip("/").rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"expected grpc://HOST:PORT (port 1-65535), got {redact_url(url)!r}", file=file, key="storage")
    return host.strip("[]"), int(port)


def check_storage_url(url: str, *, file: str | None = None) -> None:
    """Check the URL and that its driver is installed, without connecting or writing anything."""
    if storage_kind(url) == "grpc":
        grpc_address(url, file=file)
        try:
            import grpc  # noqa: F401
        except ImportError:
            raise ConfigError(f"storage URL {redact_url(url)!r} needs grpcio (pip install 'tuneflow[grpc]')", file=file, key="storage") from None
        return
    kind = storage_kind(url)
    if kind == "journal":
        folder = journal_path(url).parent
        if not folder.is_dir():
            raise ConfigError(f"journal file folder {str(folder)!r} does not exist", file=file, key="storage")
        return
    if kind == "redis":
        try:
            import redis
        except ImportError:
            raise ConfigError(f"storage URL {redact_url(url)!r} needs the redis package (pip install 'tuneflow[redis]')", file=file, key="storage") from None
        try:
            redis.ConnectionPool.from_url(url)  # parses only
        except ValueError as err:
            raise ConfigError(f"bad storage URL {redact_url(url)!r}: {redact_text(str(err))}", file=file, key="storage") from None
        return
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


class Requeue:
    """Re-queue a failed trial with the same parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``).

    Used for trials whose worker died (heartbeat) or was stopped (SIGTERM / Ctrl-C). The copy starts
    with only ``retry_of`` as user attribute, so the outcome of the lost run does not stick to it.
    """

    def __init__(self, max_retries: int | None):
        import optuna

        with warnings.catch_warnings():  # experimental in Optuna since 2.8, stable in practice
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retries)

    def __call__(self, study, trial) -> None:
        import copy

        trial = copy.deepcopy(trial)  # Optuna's callback appends to the retry history in place
        trial.user_attrs = {"retry_of": trial.number}
        self._retry(study, trial)


def retry_callback(options: "StorageOptionsConfig") -> Requeue:
    return Requeue(options.max_retries)


def engine_kwargs(url: str, options: "StorageOptionsConfig") -> dict[str, Any]:
    """SQLAlchemy engine settings for studies that run for days with many workers."""
    if is_sqlite(url):
        # Several local workers write to one file: wait for the file lock instead of failing at once.
        return {"connect_args": {"timeout": 60}}
    return {
        "pool_pre_ping": True,  # test a pooled connection before use: servers drop idle ones
        "pool_recycle": options.pool_recycle,
        "pool_size": options.pool_size,
        "max_overflow": options.pool_size,
        "pool_timeout": 60,
        "connect_args": {"connect_timeout": 10},
    }


def missing_storage(url: str) -> str | None:
    """Why ``url`` holds no Optuna study (the file is missing, the database has no Optuna tables), else None.

    Looks without creating anything: opening a missing SQLite or journal file creates it, and
    Optuna's ``RDBStorage`` creates its tables in an empty database, so readers ask this first.
    """
    kind = storage_kind(url)
    if kind in ("grpc", "redis"):
        return None  # opening these reads only
    if kind == "journal":
        path = journal_path(url)
        return None if path.is_file() else f"journal file {str(path)!r} does not exist"
    import sqlalchemy

    if is_sqlite(url):
        database = sqlite_file(url)
        if database is None:
            return "an in-memory SQLite database holds no earlier study"
        if not database.is_file():
            return f"SQLite file {str(database)!r} does not exist"
        connect_args = {}
    else:
        connect_args = {"connect_timeout": 10}
    engine = sqlalchemy.create_engine(url, connect_args=connect_args)
    try:
        has_tables = sqlalchemy.inspect(engine).has_table("studies")  # reads the catalogue only
    except Exception as err:  # noqa: BLE001 - unreachable server, bad credentials, not a database: one line
        return f"cannot connect: {redact_text(first_line(err))}"
    finally:
        engine.dispose()
    return None if has_tables else "the database holds no Optuna studies"


def open_storage(url: str, *, options: "StorageOptionsConfig | None" = None, file: str | None = None,
                 read_only: bool = False) -> "optuna.storages.BaseStorage":
    """The storage a URL names; connection problems become one-line errors that never show the password.

    ``read_only``: for a storage that :func:`missing_storage` found to hold studies; no tables are
    created and no lock file is taken (``best``, ``report`` ... write nothing).
    """
    options = options or _default_options()
    check_storage_url(url, file=file)
    kind = storage_kind(url)
    try:
        if kind == "grpc":
            storage = _through_proxy(url, options, file=file)
        elif kind == "journal":
            storage = _journal_file(url, options)
        elif kind == "redis":
            storage = _journal_redis(url)
        else:
            storage = _rdb(url, options, read_only=read_only)
        _OPENED[storage] = url
        return storage
    except ConfigError:
        raise
    except Exception as err:  # driver / network / permission errors: one line for the user
        message = first_line(err)
        raise ConfigError(f"cannot open storage {redact_url(url)!r}: {redact_text(message)}", file=file, key="storage") from None


# Storage object -> the URL it was opened from: what `export` and the report name as the storage they read.
_OPENED: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def storage_url_of(study: "optuna.Study") -> str | None:
    """The URL of the storage ``study`` was read through (None when tuneflow did not open it and cannot tell)."""
    storage = study._storage
    backend = getattr(storage, "_backend", None)  # Optuna wraps an RDBStorage in its cache
    for candidate in (storage, backend):
        if candidate is not None and candidate in _OPENED:
            return _OPENED[candidate]
    url = getattr(backend if backend is not None else storage, "url", None)  # RDBStorage keeps its URL
    return url if isinstance(url, str) else None


def _rdb(url: str, options: "StorageOptionsConfig", *, read_only: bool):
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    heartbeat = {}
    if options.heartbeat_interval:
        heartbeat = {
            "heartbeat_interval": options.heartbeat_interval,
            "grace_period": options.grace_period,
            "heartbeat_stale_trial_callback": retry_callback(options),
        }
    for attempt in range(3):
        try:
            # Workers starting together on an empty database race to create Optuna's tables: local
            # processes on one SQLite file take turns; on a server, the loser retries. Readers create nothing.
            lock = contextlib.nullcontext() if read_only else _sqlite_creation_lock(url)
            with lock, warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url, options), skip_table_creation=read_only,
                                                  **heartbeat)
        except (IntegrityError, ProgrammingError):
            if attempt == 2:
                raise
            time.sleep(0.5 + attempt)


def _sqlite_creation_lock(url: str):
    database = sqlite_file(url)
    if database is not None:
        if os.access(database.parent, os.W_OK):  # a read-only folder (reading a shipped study) needs no lock
            return local_file_lock(database)
    return contextlib.nullcontext()


def local_file_lock(path: str | Path):
    """An exclusive lock on ``<path>.tuneflow-lock`` shared by the processes of one machine.

    ``filelock.FileLock`` takes ``flock`` on Unix: the kernel releases it when its holder's file
    descriptor closes, so a worker that dies holding it blocks nobody.
    """
    from filelock import FileLock

    return FileLock(f"{path}.tuneflow-lock")


def _through_proxy(url: str, options: "StorageOptionsConfig", *, file: str | None):
    """A ``tuneflow proxy``: heartbeats and retries as the study file says, the rest from the proxy."""
    import grpc

    from tuneflow.fleet.grpc_client import PROTOCOL, FleetStorage

    host, port = grpc_address(url, file=file)
    storage = FleetStorage(host=host, port=port, heartbeat_interval=options.heartbeat_interval,
                           grace_period=options.grace_period, on_stale=retry_callback(options))
    try:
        storage.wait_server_ready(timeout=10)
        hello = storage.call("hello")
    except ConnectionError:
        raise ConfigError(f"no proxy answers at {url} (start one with `tuneflow proxy --storage URL`)", file=file, key="storage") from None
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNIMPLEMENTED:
            raise ConfigError(f"{url} is a plain Optuna proxy: start `tuneflow proxy`, which also serves the budget lock and "
                              "heartbeats", file=file, key="storage") from None
        raise
    if hello.get("protocol") != PROTOCOL:
        raise ConfigError(f"the proxy at {url} speaks protocol {hello.get('protocol')}, this tuneflow {PROTOCOL}: "
                          "run the same tuneflow version on both", file=file, key="storage")
    return storage


def _journal_file(url: str, options: "StorageOptionsConfig"):
    from optuna.storages.journal import (
        JournalFileBackend,
        JournalFileOpenLock,
        JournalStorage,
    )

    path = str(journal_path(url))
    lock = JournalFileOpenLock(path) if options.journal_lock == "open" else None  # None: Optuna's symlink lock
    return JournalStorage(JournalFileBackend(path, lock_obj=lock))


def _journal_redis(url: str):
    import redis
    from optuna.storages.journal import JournalRedisBackend, JournalStorage

    redis.Redis.from_url(url, socket_connect_timeout=10).ping()  # fail now, in one line, if unreachable
    return JournalStorage(JournalRedisBackend(url))


def heartbeat_settings(storage) -> tuple[int, int] | None:
    """(interval, grace period) when the storage keeps heartbeats, else None."""
    interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
    if not interval:
        return None
    backend = getattr(storage, "_backend", storage)  # a study wraps its RDBStorage in a cache
    return interval, getattr(backend, "grace_period", None) or 2 * interval
