"""The study contract: what gives a trial's value its meaning, hashed and kept with every trial.

Two trials' values compare only when both were measured with the same model and ``max_length``, the
same tasks (resolved files or hub ids, row caps, and the seed that carves validation out of train),
the same objective, search space and evaluation schedule. Those parts of the study file are the
*contract*; its hash is each trial's ``contract`` user attribute, and the whole resolved study config
of each contract is kept as the study user attr ``tuneflow_contract:<hash>`` (for ``export``).

Resuming a study with a file whose contract differs is refused, naming the changed keys, unless
``allow_changes``: then the new contract is recorded and ``tuneflow_contract_changes`` says from which
trial on, and what changed (the HTML report shows it). Sampler, pruner, budget, storage options,
device, ``warm_start``, ``coverage``, ``confirm`` and the like may change freely: they change how trials are found, not what a
value means (a warm start only enqueues configurations; adding one to a running study is allowed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from tuneflow.config.errors import ConfigError
from tuneflow.config.search_options import resolved_per_schedule
from tuneflow.config.study_config import CONFIG_ATTR  # the latest resolved study config

CONTRACT_KEYS = ("model", "source", "target", "seed", "objective", "search_space", "evaluation")
TRIAL_ATTR = "contract"  # trial user attr: the hash of the contract it was measured under
RECORD_PREFIX = "tuneflow_contract:"  # study user attr: the config record of each contract
CHANGES_ATTR = "tuneflow_contract_changes"  # study user attr: where the contract changed, and what


def contract_of(record: dict[str, Any]) -> dict[str, Any]:
    """The contract part of a config record (see :func:`tuneflow.study.study_record.config_record`)."""
    contract = {key: record.get(key) for key in CONTRACT_KEYS}
    if record.get("sources"):  # several sources (only then, so one-source studies keep their hash)
        contract["sources"] = record["sources"]
    # The evaluation batch size changes no value, only memory and speed; the schedule changes what is reported
    # (and, with objective.value: best, the value). Evaluations at epoch ends only (the schedule before
    # evaluation.per_schedule existed) leave the key out, so older studies keep their contract.
    evaluation = record.get("evaluation") or {}
    contract["evaluation"] = {"every_n_steps": evaluation.get("every_n_steps")}
    per_schedule = (resolved_per_schedule(evaluation["per_schedule"], evaluation.get("every_n_steps"))
                    if "per_schedule" in evaluation else None)  # a record older than the key: epoch ends
    if per_schedule is not None:
        contract["evaluation"]["per_schedule"] = per_schedule
    return contract


def contract_hash(contract: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(contract, sort_keys=True, default=str).encode()).hexdigest()[:16]


def changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted key paths whose values differ (``target.max_train_rows``, ``search_space.learning_rate.high``)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [prefix] if old != new else []
    keys = []
    for key in sorted(set(old) | set(new)):
        keys += changed_keys(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
    return keys


def check_and_record(study, record: dict[str, Any], *, allow_changes: bool, file: str | None) -> None:
    """Refuse a changed contract (unless ``allow_changes``), then keep ``record`` as the study's config."""
    attrs = study.user_attrs
    current = attrs.get(CONFIG_ATTR)
    old, new = (current or {}).get(TRIAL_ATTR), record[TRIAL_ATTR]
    if old is not None and old != new:
        keys = changed_keys(contract_of(attrs.get(RECORD_PREFIX + old) or current), contract_of(record))
        if not allow_changes:
            shown = ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
            raise ConfigError(
                f"study {study.study_name!r} was run with a different configuration (changed: {shown}); its trials' values "
                "would not compare. Use a new study name, or pass --allow-changes to record the new configuration", file=file,
            )
        change = {"from_trial": len(study.get_trials(deepcopy=False)), "contract": new, "previous": old, "changed": keys,
                  "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        study.set_user_attr(CHANGES_ATTR, [*attrs.get(CHANGES_ATTR, []), change])
    if RECORD_PREFIX + new not in attrs:
        study.set_user_attr(RECORD_PREFIX + new, record)
    if current != record:
        study.set_user_attr(CONFIG_ATTR, record)  # the latest file (budget, device, ...): status, notes, report


def record_for(study_attrs: dict[str, Any], trial) -> dict[str, Any] | None:
    """The config record a trial was measured under (its own contract's), else the study's latest."""
    own = trial.user_attrs.get(TRIAL_ATTR)
    return (study_attrs.get(RECORD_PREFIX + own) if own else None) or study_attrs.get(CONFIG_ATTR)


def contract_changes(study) -> list[dict[str, Any]]:
    """Where a study's contract changed (``--allow-changes``): ``from_trial``, ``changed`` keys, ``at``."""
    return list(study.user_attrs.get(CHANGES_ATTR, []))
