"""One trial budget for a whole study, however many workers share it.

The budget counts *used* trials: finished ones (complete, pruned, and failed-not-re-queued) plus
running ones. A failed trial that was re-queued (its worker died or was stopped) does not count; its
waiting copy counts once it runs. A worker starts a trial only while ``used < budget.n_trials`` —
a waiting one (re-queued, or enqueued by hand) first, else a new one — so N workers end with exactly
``n_trials`` finished trials. It counts and asks *under a lock shared by all workers*, so two workers
never both take the last slot (Optuna's ``MaxTrialsCallback`` counts without a lock and overshoots).
The lock covers the count and a *reservation* only: a waiting trial switched to RUNNING, or a new
RUNNING trial. Sampling happens after the lock is released (:mod:`tuneflow.fleet.workers` builds the
trial on the reserved id), so a slow sampler (GP, multivariate TPE, CMA-ES) never holds other workers up.
The same lock makes once-per-study work happen once (:meth:`LocalGate.claim`, :mod:`tuneflow.fleet.claims`)
and counters exact (:meth:`LocalGate.increment`). The lock:

* PostgreSQL: ``pg_advisory_xact_lock`` on a connection of the storage's own engine;
* MySQL / MariaDB: ``GET_LOCK``;
* SQLite and journal files: ``filelock.FileLock`` (``flock``) on ``<file>.tuneflow-lock`` beside the file;
* Redis: a Redis lock (expires after 2 minutes should its holder die);
* ``grpc://`` (a ``tuneflow proxy``): the proxy runs these operations under its database's lock.

A process that dies holding a database lock releases it with its connection; a file lock with its
file descriptor.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from tuneflow.config.storage_url import journal_path, sqlite_file, storage_kind
from tuneflow.fleet.storage import local_file_lock


def retried_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that were re-queued (Optuna's retry history names them)."""
    return {t.system_attrs["retry_history"][-1] for t in trials if t.system_attrs.get("retry_history")}


@dataclass(frozen=True)
class TrialCount:
    complete: int = 0
    pruned: int = 0
    failed: int = 0  # failed and not re-queued
    retried: int = 0  # failed and re-queued: not counted
    running: int = 0
    waiting: int = 0

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed

    @property
    def used(self) -> int:
        """What the budget has spent: finished and running trials."""
        return self.finished + self.running

    @classmethod
    def of(cls, trials: list[FrozenTrial]) -> "TrialCount":
        retried = retried_numbers(trials)
        by_state = {state: 0 for state in TrialState}
        n_retried = 0
        for trial in trials:
            if trial.state == TrialState.FAIL and trial.number in retried:
                n_retried += 1
            else:
                by_state[trial.state] += 1
        return cls(
            complete=by_state[TrialState.COMPLETE],
            pruned=by_state[TrialState.PRUNED],
            failed=by_state[TrialState.FAIL],
            retried=n_retried,
            running=by_state[TrialState.RUNNING],
            waiting=by_state[TrialState.WAITING],
        )


def admits(count: TrialCount, n_trials: int | None) -> bool:
    """May a worker start a trial (``study.ask()`` takes a waiting one first)?"""
    return n_trials is None or count.used < n_trials


def _key(study_name: str) -> tuple[int, str]:
    digest = hashlib.sha1(f"tuneflow:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True), f"tuneflow:{digest.hex()[:40]}"


def reserve_trial(study, n_trials: int | None) -> int | None:
    """Count, and when the budget admits one more, reserve a trial: its id, else None. Call under the lock.

    A waiting trial (re-queued or enqueued) is taken first, as ``study.ask()`` would; the reserved
    trial is RUNNING, so every other worker's count includes it from now on.
    """
    storage = study._storage
    trials = storage.get_all_trials(study._study_id, deepcopy=False)  # one read under the lock, not two
    if not admits(TrialCount.of(trials), n_trials):
        return None
    for waiting in [t for t in trials if t.state == TrialState.WAITING]:
        try:
            if storage.set_trial_state_values(waiting._trial_id, state=TrialState.RUNNING):
                return waiting._trial_id
        except UpdateFinishedTrialError:  # taken and finished meanwhile (a worker outside the lock)
            continue
    return storage.create_new_trial(study._study_id)


class LocalGate:
    """The study's short locked operations, run in this process under :class:`AdmissionLock`.

    A ``grpc://`` storage has the same three methods, run by the proxy under its database's lock.
    """

    def __init__(self, url: str, storage, study_name: str):
        self.lock = AdmissionLock(url, storage, study_name)

    def reserve(self, study, n_trials: int | None) -> int | None:
        with self.lock():
            return reserve_trial(study, n_trials)

    def claim(self, study, key: str, **claim) -> bool:
        from tuneflow.fleet.claims import try_claim

        with self.lock():
            return try_claim(study, key, **claim)

    def increment(self, study, attr: str, by: int = 1) -> int:
        with self.lock():
            value = int(study._storage.get_study_user_attrs(study._study_id).get(attr, 0)) + by
            study._storage.set_study_user_attr(study._study_id, attr, value)
            return value


def gate_for(url: str, storage, study_name: str):
    """The proxy's gate for a ``grpc://`` storage (it has ``reserve``), else a :class:`LocalGate`."""
    return storage if hasattr(storage, "reserve") else LocalGate(url, storage, study_name)


class AdmissionLock:
    """A short cross-process lock around "count, then reserve" for one study (see the module docstring)."""

    def __init__(self, url: str, storage, study_name: str):
        self.url = url
        self.storage = storage  # the storage open_storage returned (RDBStorage or JournalStorage), maybe cached
        self.study_name = study_name
        self._local = threading.Lock()  # threads of one process never race each other either

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._local, self._cross_process():
            yield

    def _cross_process(self):
        kind = storage_kind(self.url)
        if kind == "journal":
            return local_file_lock(journal_path(self.url))
        if kind == "redis":
            return _redis_lock(self.url, self.study_name)
        engine = getattr(self.storage, "_backend", self.storage).engine  # a proxy's storage is cached
        backend = engine.url.get_backend_name()
        if backend == "postgresql":
            return _postgres_lock(engine, self.study_name)
        if backend in ("mysql", "mariadb"):
            return _mysql_lock(engine, self.study_name)
        database = sqlite_file(engine.url)
        if database is not None:
            return local_file_lock(database)
        return contextlib.nullcontext()  # in-memory SQLite: one process only


@contextlib.contextmanager
def _postgres_lock(engine, study_name: str):
    from sqlalchemy import text

    key, _ = _key(study_name)
    # A transaction-level advisory lock: released at commit, or when a dead worker's connection drops.
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        yield


@contextlib.contextmanager
def _mysql_lock(engine, study_name: str):
    from sqlalchemy import text

    _, name = _key(study_name)
    with engine.connect() as conn:
        conn.execute(text("SELECT GET_LOCK(:name, -1)"), {"name": name})
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})


@contextlib.contextmanager
def _redis_lock(url: str, study_name: str):
    import redis

    _, name = _key(study_name)
    client = redis.Redis.from_url(url)
    with client.lock(name, timeout=120):
        yield
