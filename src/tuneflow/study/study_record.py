"""The study in storage: its resolved config record, and creating or resuming it (or opening an existing one)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, Any, Callable

from tuneflow.config.errors import ConfigError
from tuneflow.config.storage_url import redact_url
from tuneflow.config.study_config import StudyConfig
from tuneflow.study.contract import (
    TRIAL_ATTR,
    check_and_record,
    contract_hash,
    contract_of,
)

if TYPE_CHECKING:
    import optuna


def config_record(config: StudyConfig, tasks: dict[str, Any]) -> dict[str, Any]:
    """The resolved study config stored with the study (password-free, data paths absolute)."""
    from tuneflow.config.model_config import model_record

    sources = [_plain(dataclasses.asdict(task)) for key, task in tasks.items() if key != "target"]  # file order
    record = {
        "name": config.name,
        "description": config.description,
        "model": _plain(model_record(config.model)),  # the plain form's keys as before candidates existed
        "source": sources[0] if sources else None,  # the first source (the only one, in the one-source form)
        **({"sources": sources} if config.sources else {}),
        "target": _plain(dataclasses.asdict(tasks["target"])),
        "objective": _plain(dataclasses.asdict(config.objective)),
        "sampler": _plain(dataclasses.asdict(config.sampler)),
        "pruner": _plain(dataclasses.asdict(config.pruner)),
        "budget": dataclasses.asdict(config.budget),
        "evaluation": dataclasses.asdict(config.evaluation),
        "search_space": {name: _plain(dataclasses.asdict(spec)) for name, spec in config.space.parameters.items()},
        "seed": config.seed,
        "device": config.device,
        "compile": config.compile,
        "storage": redact_url(config.storage_url()),
        "study_file": str(config.path) if config.path else None,
    }
    record[TRIAL_ATTR] = contract_hash(contract_of(record))  # see tuneflow.study.contract
    return record


def _plain(value: Any) -> Any:
    """Tuples -> lists so the record is JSON and YAML friendly."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _directions(config: StudyConfig) -> dict[str, Any]:
    """``direction=`` for one objective; ``directions=`` (one per target) for a Pareto study."""
    objective = config.objective
    if objective.mode == "pareto":
        return {"directions": [t.direction for t in objective.targets]}
    return {"direction": objective.direction}


def metric_names(config: StudyConfig) -> list[str]:
    if config.objective.mode == "pareto":
        return [t.metric for t in config.objective.targets]
    return ["objective"]


def create_or_load(
    config: StudyConfig, *, storage, sampler, pruner, record: dict[str, Any],
    on_opened: Callable[["optuna.Study", StudyConfig], None] | None = None, allow_changes: bool = False,
) -> "optuna.Study":
    """Create the study, or resume it when it exists (``load_if_exists``).

    Resuming with a changed contract (model, tasks, objective, space, evaluation) is refused before
    anything is written, unless ``allow_changes`` (see :mod:`tuneflow.study.contract`).
    """
    import optuna

    study = optuna.create_study(
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        study_name=config.name,
        load_if_exists=True,
        **_directions(config),
    )
    check_and_record(study, record, allow_changes=allow_changes, file=str(config.path) if config.path else None)
    with warnings.catch_warnings():  # experimental in Optuna, stable in practice
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(metric_names(config))
    if on_opened is not None:
        on_opened(study, config)  # e.g. the Markdown note optuna-dashboard shows (tuneflow.observe)
    return study


def load_existing(storage_url: str, study_name: str | None, *, options=None, study_file: str | None = None) -> "optuna.Study":
    """An existing study, opened without writing; with no name, the only study in the storage.

    ``options``: the study file's storage_options. A missing storage or study is one line naming the
    storage and ``tuneflow run`` (``study_file`` when known), and nothing is created: no database
    file, no Optuna tables, no lock file.
    """
    import optuna

    from tuneflow.fleet.storage import missing_storage, open_storage

    missing = missing_storage(storage_url)
    if missing:
        raise ConfigError(no_study_message(study_name, storage_url, study_file, why=missing))
    storage = open_storage(storage_url, options=options, read_only=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if study_name is None:
        if len(names) > 1:
            raise ConfigError(f"storage holds {len(names)} studies ({', '.join(names)}); pass --study-name", key="study-name")
        if not names:
            raise ConfigError(no_study_message(None, storage_url, study_file, why="it holds none"))
        study_name = names[0]
    if study_name not in names:
        from tuneflow.config.registry import did_you_mean

        why = f"{did_you_mean(study_name, names)}it holds: {', '.join(names) or 'none'}"
        raise ConfigError(no_study_message(study_name, storage_url, study_file, why=why))
    return optuna.load_study(study_name=study_name, storage=storage)


def no_study_message(study_name: str | None, storage_url: str, study_file: str | None, *, why: str) -> str:
    """``no study 'X' in URL (why); run it first: tuneflow run FILE``, the password redacted."""
    study = f"study {study_name!r}" if study_name else "study"
    return f"no {study} in {redact_url(storage_url)} ({why}); run it first: tuneflow run {study_file or 'STUDY.yaml'}"
