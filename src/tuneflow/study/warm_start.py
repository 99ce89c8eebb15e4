"""``warm_start:``: enqueue the best configurations of earlier studies before this one samples.

Each entry names an earlier study (``study``, its ``storage``, ``top_k``). Its COMPLETE trials are
ranked by value in its direction; for a multi-objective earlier study, its Pareto front comes first
(ordered by the first objective), then the other trials by the first objective. Each configuration
is fitted to *this* space (:func:`fit_to_space`): parameters this space lacks or fixes are dropped
(reported once), numbers are clipped into this space's ranges (ints stay ints, steps are kept), and a
categorical value this space cannot take skips the whole configuration, with the reason.

Checked before anything is written (:func:`check_warm_starts`, from ``plan_study`` and ``validate``):
the earlier storage must exist (opening a missing SQLite or journal file would create it) and hold
the study. Applied once per study (:func:`apply_warm_starts`): a claim in storage makes one of several
workers starting together do it; the study user attr ``tuneflow_warm_start:<hash of the entries>``
records what was enqueued and skipped, so a resume enqueues nothing twice, and a new entry added to a
running study is applied on its next start without repeating earlier ones. Each enqueued trial
carries the user attr ``warm_start_of`` (``storage`` redacted, ``study``, ``trial``, ``value``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from typing import TYPE_CHECKING, Any, Callable

from tuneflow.config.errors import ConfigError
from tuneflow.config.storage_url import absolute_storage_url, redact_url, sqlite_file

if TYPE_CHECKING:
    import optuna

    from tuneflow.config.search_space import ParamSpec, SearchSpace
    from tuneflow.config.study_config import StudyConfig
    from tuneflow.config.warm_start_config import WarmStartConfig
    from tuneflow.fleet.claims import OncePerStudy

ATTR_PREFIX = "tuneflow_warm_start:"  # study user attr: what one set of entries enqueued and skipped
TRIAL_ATTR = "warm_start_of"  # trial user attr: the earlier trial an enqueued configuration came from
CLAIM_TTL = 600.0  # seconds: a worker that died while enqueuing leaves the work to the next one to start


@dataclasses.dataclass(frozen=True)
class Fitted:
    """An earlier configuration made to fit this space, or the reason it cannot."""

    params: dict[str, Any] | None
    clipped: list[dict[str, Any]]  # {"param", "from", "to"} for each value moved into this space's range
    dropped: dict[str, str]  # parameter -> why this space does not take it
    reason: str | None = None  # set when the configuration is skipped


def storage_url_of(entry: "WarmStartConfig", config: "StudyConfig", *, file: str, key: str) -> str:
    """The earlier storage's URL: journal and SQLite paths relative to the study file; none = this study's storage."""
    from tuneflow.fleet.storage import check_storage_url

    if entry.storage is None:
        return config.storage_url()
    url = absolute_storage_url(entry.storage, config.directory)
    try:
        check_storage_url(url, file=file)
    except ConfigError as err:
        raise err.at(key_prefix=key) from None
    database = sqlite_file(url)
    if database is not None and not database.is_absolute():
        from sqlalchemy.engine import make_url

        url = make_url(url).set(database=str((config.directory / database).resolve())).render_as_string(hide_password=False)
    return url


def open_earlier(entry: "WarmStartConfig", index: int, config: "StudyConfig", *, file: str) -> tuple[str, "optuna.Study"]:
    """(URL, study) of one entry; a missing storage or study is a ConfigError naming ``warm_start[i].…``."""
    import optuna

    from tuneflow.config.registry import unknown_name_message
    from tuneflow.fleet.storage import missing_storage, open_storage

    key = f"warm_start[{index}]"
    url = storage_url_of(entry, config, file=file, key=key)
    options = dataclasses.replace(config.storage_options, heartbeat_interval=None)  # reading only: no heartbeats
    missing = missing_storage(url)
    if missing:
        raise ConfigError(f"earlier storage {redact_url(url)!r}: {missing}", file=file, key=f"{key}.storage")
    try:
        storage = open_storage(url, options=options, file=file, read_only=True)
    except ConfigError as err:
        raise ConfigError(err.message, file=file, key=f"{key}.storage") from None
    if entry.study == config.name and url == config.storage_url():
        raise ConfigError("names this study itself; warm-start from an earlier study", file=file, key=f"{key}.study")
    names = optuna.get_all_study_names(storage)
    if entry.study not in names:
        message = unknown_name_message("study", entry.study, names) if names else f"no study {entry.study!r} (the storage holds none)"
        raise ConfigError(f"{message} (storage {redact_url(url)!r})", file=file, key=f"{key}.study")
    return url, optuna.load_study(study_name=entry.study, storage=storage, sampler=optuna.samplers.RandomSampler())


def check_warm_starts(config: "StudyConfig", *, file: str) -> list[str]:
    """Open every earlier study without writing anything; summary lines for ``validate`` (what would be skipped, why)."""
    lines = []
    for index, entry in enumerate(config.warm_start):
        url, earlier = open_earlier(entry, index, config, file=file)
        ranked = best_first(earlier, None)
        fits = [(t.number, fit_to_space(t.params, config.space)) for t in ranked[:entry.top_k]]
        lines.append(f"  warm start from study {entry.study!r} ({redact_url(url)}): {len(ranked)} complete trial(s); "
                     f"of its best {len(fits)}, {sum(f.reason is None for _, f in fits)} fit this space")
        lines += [f"    its trial {number} will be skipped: {f.reason}" for number, f in fits if f.reason is not None]
    return lines


def best_first(study: "optuna.Study", top_k: int | None) -> list["optuna.trial.FrozenTrial"]:
    """COMPLETE trials best first: by value in the study's direction; multi-objective: Pareto front, then the rest."""
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    sign = -1.0 if study.directions[0] == StudyDirection.MAXIMIZE else 1.0
    front = {t.number for t in study.best_trials} if len(study.directions) > 1 else set()
    trials.sort(key=lambda t: (t.number not in front, sign * t.values[0]))  # stable: ties keep trial order
    return trials[:top_k] if top_k else trials


def _same_value(choice: Any, value: Any) -> bool:
    """Equal and of one kind (``True`` is not ``1``; ``8`` matches ``8.0``)."""
    numbers = (int, float)
    if isinstance(choice, bool) or isinstance(value, bool):
        return type(choice) is type(value) and choice == value
    if isinstance(choice, numbers) and isinstance(value, numbers):
        return choice == value
    return type(choice) is type(value) and choice == value


def _into_range(spec: "ParamSpec", value: float) -> float | int:
    """``value`` clipped into [low, high] and onto the step grid; an int parameter gets an int."""
    low, high = spec.low, spec.high
    if spec.type == "int":
        low, high, step = int(low), int(high), int(spec.step or 1)
        clipped = min(max(int(round(value)), low), high)
        steps = min(round((clipped - low) / step), (high - low) // step)
        return low + steps * step
    clipped = min(max(float(value), float(low)), float(high))
    if spec.step:
        steps = min(round((clipped - low) / spec.step), math.floor((high - low) / spec.step + 1e-9))
        clipped = float(low + steps * spec.step)
    return clipped


def _inactive(spec: "ParamSpec", known: dict[str, Any]) -> bool:
    """The parameter's ``when`` fails on values fitted already (conditions name earlier parameters only)."""
    for ref, condition in (spec.when or {}).items():
        options = condition if isinstance(condition, (list, tuple)) else [condition]
        if ref in known and known[ref] not in options:
            return True
    return False


def fit_to_space(params: dict[str, Any], space: "SearchSpace") -> Fitted:
    """Keep the parameters this space samples, moved into its ranges; skip what it cannot take.

    Parameters go in this space's order, so one whose condition fails here (``lora_r`` of a ``full``
    trial) is left out instead of being checked against choices it will never need.
    """
    fitted: dict[str, Any] = {}
    clipped: list[dict[str, Any]] = []
    dropped = {name: "this space lacks it" for name in params if name not in space.parameters}
    for name, spec in space.parameters.items():
        if name not in params or _inactive(spec, fitted):
            continue
        value = params[name]
        if spec.type == "fixed":
            dropped[name] = f"this space fixes it to {spec.value!r}"
            continue
        if spec.type == "categorical":
            match = [c for c in spec.choices if _same_value(c, value)]
            if not match:
                return Fitted(None, [], dropped, f"{name}={value!r} is not one of this space's choices {list(spec.choices)}")
            fitted[name] = match[0]
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return Fitted(None, [], dropped, f"{name}={value!r} is not a number, but this space's {name} is {spec.type}")
        fitted[name] = _into_range(spec, value)
        if fitted[name] != value:
            clipped.append({"param": name, "from": value, "to": fitted[name]})
    return Fitted(fitted, clipped, dropped)


def entries_key(config: "StudyConfig") -> str:
    """A short hash of the study file's warm-start entries (passwords redacted): one record per set."""
    entries = [[redact_url(e.storage) if e.storage else None, e.study, e.top_k] for e in config.warm_start]
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:12]


def warm_records(study_attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every warm-start record of a study, oldest first."""
    records = [v for k, v in study_attrs.items() if k.startswith(ATTR_PREFIX) and isinstance(v, dict)]
    return sorted(records, key=lambda r: r.get("at", ""))


def _origin(record: dict[str, Any]) -> tuple[Any, Any, Any]:
    return record.get("storage"), record.get("study"), record.get("trial")


def _tried_params(study: "optuna.Study") -> list[tuple[int | None, dict[str, Any]]]:
    """Each trial's parameters, enqueued (waiting) ones included."""
    return [(t.number, t.params or t.system_attrs.get("fixed_params") or {}) for t in study.get_trials(deepcopy=False)]


def apply_warm_starts(config: "StudyConfig", study: "optuna.Study", *, once: "OncePerStudy",
                      message: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """Enqueue the earlier studies' best configurations once per study; the record written, or None."""
    if not config.warm_start:
        return None
    key = entries_key(config)
    done_attr = ATTR_PREFIX + key
    if done_attr in study.user_attrs or not once.claim(f"warm_start:{key}", done_attr=done_attr, ttl=CLAIM_TTL):
        return None
    say = message or (lambda line: None)
    file = str(config.path)
    seen = {_origin(e) for r in warm_records(study.user_attrs) for e in r.get("enqueued", [])}
    tried = _tried_params(study)
    record: dict[str, Any] = {"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "entries": [],
                              "enqueued": [], "skipped": [], "dropped": {}}
    for index, entry in enumerate(config.warm_start):
        try:
            url, earlier = open_earlier(entry, index, config, file=file)
        except ConfigError as err:  # gone since it was checked: say so, warm-start from the others
            record["skipped"].append({"storage": entry.storage, "study": entry.study, "trial": None, "reason": str(err)})
            say(f"warm start: {err}")
            continue
        shown = redact_url(url)
        record["entries"].append({"storage": shown, "study": entry.study, "top_k": entry.top_k})
        dropped: dict[str, str] = {}
        enqueued = []
        for trial in best_first(earlier, entry.top_k):
            value = trial.value if len(trial.values) == 1 else list(trial.values)
            origin = {"storage": shown, "study": entry.study, "trial": trial.number, "value": value}
            fitted = fit_to_space(trial.params, config.space)
            dropped.update(fitted.dropped)
            reason = fitted.reason
            if reason is None and not fitted.params:
                reason = "none of its parameters is searched in this space"
            if reason is None and _origin(origin) in seen:
                reason = "enqueued already by an earlier warm start of this study"
            if reason is None:
                same = [n for n, p in tried if all(p.get(k) == v for k, v in fitted.params.items())]
                if same:
                    reason = ("another earlier trial fits this space as the same configuration" if same[0] is None
                              else f"this study already has these parameters (trial {same[0]})")
            if reason is not None:
                record["skipped"].append({**origin, "reason": reason})
                say(f"warm start: skipped trial {trial.number} of study {entry.study!r}: {reason}")
                continue
            attrs = {**origin, **({"clipped": fitted.clipped} if fitted.clipped else {})}
            study.enqueue_trial(fitted.params, user_attrs={TRIAL_ATTR: attrs, "enqueued_by": "warm_start"})
            seen.add(_origin(origin))
            tried.append((None, fitted.params))
            record["enqueued"].append({**attrs, "params": fitted.params})
            enqueued.append(trial.number)
        if dropped:
            record["dropped"][entry.study] = dropped
            say(f"warm start from {entry.study!r}: dropped parameter(s) "
                + ", ".join(f"{name} ({why})" for name, why in sorted(dropped.items())))
        say(f"warm start: enqueued {len(enqueued)} configuration(s) from study {entry.study!r}"
            + (f" (its trials {', '.join(map(str, enqueued))})" if enqueued else ""))
    study.set_user_attr(done_attr, record)
    return record
