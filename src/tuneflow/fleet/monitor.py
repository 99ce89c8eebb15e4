"""``tuneflow status`` and ``tuneflow cleanup``: who is working on a study, and failing dead workers' trials.

SQL storages keep a heartbeat per running trial (Optuna's ``trial_heartbeats`` table); a trial whose
heartbeat is older than the grace period belongs to a dead worker. Journal storages keep none, so
there a running trial's age (since it started) is all we know, and ``cleanup --older-than S`` decides.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuneflow.config.storage_url import redact_url
from tuneflow.fleet.budget import TrialCount
from tuneflow.fleet.storage import heartbeat_settings, retry_callback


def _engine(storage):
    backend = getattr(storage, "_backend", storage)  # a study wraps its RDBStorage in a cache
    return getattr(backend, "engine", None)


def heartbeat_ages(storage, study: optuna.Study) -> dict[int, float]:
    """Seconds since the last heartbeat of each running trial that has one (SQL storages and proxies only)."""
    if hasattr(storage, "heartbeat_ages"):  # grpc://: the proxy asks its database
        return storage.heartbeat_ages(study)
    engine = _engine(storage)
    if engine is None:
        return {}
    from sqlalchemy import DateTime, Integer, func, select, text

    study_id = storage.get_study_id_from_name(study.study_name)
    query = text(
        "SELECT t.number, h.heartbeat FROM trials t JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
        "WHERE t.study_id = :study_id AND t.state = 'RUNNING'"
    ).columns(number=Integer, heartbeat=DateTime)
    with engine.connect() as conn:
        # The database's clock, as Optuna uses it for heartbeats (workers' clocks may differ).
        now = conn.execute(select(func.now())).scalar().replace(tzinfo=None)
        rows = conn.execute(query, {"study_id": study_id}).all()
    return {number: (now - beat.replace(tzinfo=None)).total_seconds() for number, beat in rows}


@dataclass
class RunningTrial:
    number: int
    worker: str
    started_ago: float
    heartbeat_ago: float | None  # None: no heartbeat (journal storage, or heartbeats off)


def running_trials(study: optuna.Study) -> list[RunningTrial]:
    ages = heartbeat_ages(study._storage, study)
    now = datetime.datetime.now()
    return [
        RunningTrial(
            number=t.number,
            worker=str(t.user_attrs.get("worker", "?")),
            started_ago=(now - t.datetime_start).total_seconds() if t.datetime_start else 0.0,
            heartbeat_ago=ages.get(t.number),
        )
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    ]


def _budget(study: optuna.Study, n_trials: int | None) -> int | None:
    if n_trials is not None:
        return n_trials
    from tuneflow.config.study_config import CONFIG_ATTR

    return ((study.user_attrs.get(CONFIG_ATTR) or {}).get("budget") or {}).get("n_trials")


def status_record(study: optuna.Study, *, url: str, n_trials: int | None = None) -> dict[str, Any]:
    """The status as plain data (``tuneflow status --json``; its keys are stable, the URL's password redacted).

    ``running``: each running trial with ``state`` ``alive`` / ``stale`` (heartbeat past the grace period) /
    ``silent`` (no heartbeat yet), or ``running`` where the storage keeps no heartbeats.
    """
    count = TrialCount.of(study.get_trials(deepcopy=False))
    settings = heartbeat_settings(study._storage)
    grace = settings[1] if settings else None

    def state(r: RunningTrial) -> str:
        if settings is None:
            return "running"
        return "silent" if r.heartbeat_ago is None else ("alive" if r.heartbeat_ago <= grace else "stale")

    return {
        "study": study.study_name,
        "storage": redact_url(url),
        "trials": {"complete": count.complete, "pruned": count.pruned, "failed": count.failed, "running": count.running,
                   "waiting": count.waiting, "retried": count.retried},
        "budget": {"n_trials": _budget(study, n_trials), "finished": count.finished},
        "heartbeats": None if settings is None else {"interval": settings[0], "grace_period": grace},
        "running": [{"trial": r.number, "worker": r.worker, "state": state(r), "started_ago": round(r.started_ago, 1),
                     "heartbeat_ago": None if r.heartbeat_ago is None else round(r.heartbeat_ago, 1)}
                    for r in running_trials(study)],
    }


def status_text(study: optuna.Study, *, url: str, n_trials: int | None = None) -> str:
    """Counts by state, live workers and stale trials, as plain lines (the URL's password redacted)."""
    return format_status(status_record(study, url=url, n_trials=n_trials))


def format_status(record: dict[str, Any]) -> str:
    """The lines of ``tuneflow status`` from :func:`status_record`."""
    count, budget = record["trials"], record["budget"]
    lines = [
        f"study {record['study']!r} in {record['storage']}",
        f"trials: complete {count['complete']}, pruned {count['pruned']}, failed {count['failed']}, running {count['running']}, "
        f"waiting {count['waiting']}" + (f"; {count['retried']} failed trial(s) re-queued" if count["retried"] else ""),
        f"budget: {budget['finished']} of {budget['n_trials']} finished" if budget["n_trials"] is not None
        else f"budget: none (finished {budget['finished']})",
    ]
    running = record["running"]
    if record["heartbeats"] is None:
        lines.append("heartbeats: none (journal storage or heartbeats off); `tuneflow cleanup --older-than S` fails dead workers' trials")
        lines.append(f"running trials: {len(running)}")
        lines += [f"  trial {r['trial']}  worker {r['worker']}  started {r['started_ago']:.0f} s ago" for r in running]
        return "\n".join(lines)
    alive, stale, silent = ([r for r in running if r["state"] == s] for s in ("alive", "stale", "silent"))
    lines.append(f"heartbeats: every {record['heartbeats']['interval']} s, grace period {record['heartbeats']['grace_period']} s")
    lines.append(f"workers alive: {len({r['worker'] for r in alive})}")
    lines += [f"  {r['worker']}  trial {r['trial']}  last heartbeat {r['heartbeat_ago']:.0f} s ago" for r in alive]
    lines.append(f"stale trials: {len(stale)}" + ("  (workers fail and re-queue them; or `tuneflow cleanup`)" if stale else ""))
    lines += [f"  trial {r['trial']}  worker {r['worker']}  last heartbeat {r['heartbeat_ago']:.0f} s ago" for r in stale]
    if silent:
        lines.append(f"running trials without a heartbeat: {len(silent)}  (`tuneflow cleanup --older-than S` fails them)")
        lines += [f"  trial {r['trial']}  worker {r['worker']}  started {r['started_ago']:.0f} s ago" for r in silent]
    return "\n".join(lines)


def cleanup(study: optuna.Study, *, options, older_than: float | None = None) -> list[int]:
    """Fail (and re-queue) dead workers' running trials; returns their numbers.

    With heartbeats: those past the grace period (``optuna.storages.fail_stale_trials``). With
    ``older_than``: any running trial without a sign of life (heartbeat, else start) for that long.
    """
    import warnings

    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if heartbeat_settings(study._storage) is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    if older_than is not None:
        requeue = retry_callback(options)
        for r in running_trials(study):
            quiet_for = r.heartbeat_ago if r.heartbeat_ago is not None else r.started_ago
            if quiet_for >= older_than:
                _fail(study, r.number, f"failed by tuneflow cleanup: no sign of life for {quiet_for:.0f} s", requeue)
    return sorted(t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in before)


def _fail(study: optuna.Study, number: int, reason: str, requeue) -> None:
    trial: FrozenTrial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    try:
        study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
        frozen = study.tell(number, state=TrialState.FAIL)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
        return  # it finished meanwhile
    requeue(study, frozen)
