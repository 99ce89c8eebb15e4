"""From a study file to a running study: check everything first, then touch storage, then optimise.

The order matters: config, data, model, sampler and pruner are all checked before the storage is
opened, so a rejected study writes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneflow.config.errors import ConfigError
from tuneflow.config.study_config import StudyConfig, load_study_config
from tuneflow.data.tasks import TaskData, load_task, resolve_task
from tuneflow.study.hooks import StudyHooks
from tuneflow.transfer.base import get_strategy

if TYPE_CHECKING:
    import optuna

    from tuneflow.transferability.candidates import CandidateScore


PRIOR_CLAIM_TTL = 3600.0  # seconds: a worker that starts later ranks again if the first ranker never finished


@dataclass
class StudyPlan:
    """A study that passed every check and has not touched storage yet."""

    config: StudyConfig
    target: TaskData
    source: TaskData | None
    model_path: str
    sampler: Any
    pruner: Any
    record: dict[str, Any]


def uses_source(config: StudyConfig) -> bool:
    spec = config.space.parameters.get("mapping")
    names = spec.possible_values() if spec else ("direct",)
    return any(get_strategy(name).needs_source for name in names)


def load_config(path, **overrides: Any) -> StudyConfig:
    """Read and check a study file against the registered mapping strategies (CLI overrides as keywords)."""
    return load_study_config(path, strategies=get_strategy, **overrides)


def plan_study(
    path_or_config: str | os.PathLike | StudyConfig, *, data_root: str | None = None, storage: str | None = None,
    study_name: str | None = None,
) -> StudyPlan:
    """Load and check the study file (or take a loaded config), its data, the model's tokenizer, sampler and pruner."""
    from tuneflow.models.loading import load_tokenizer, resolve_model_path
    from tuneflow.study.samplers import make_pruner, make_sampler
    from tuneflow.study.storage import check_storage_url
    from tuneflow.study.study_record import config_record

    if isinstance(path_or_config, StudyConfig):
        config, file = path_or_config, str(path_or_config.path)
    else:
        config = load_config(path_or_config, data_root=data_root, storage=storage, study_name=study_name)
        file = str(path_or_config)  # errors name the file as the user typed it
    check_storage_url(config.storage_url(), file=file)
    resolved = {"target": resolve_task(config.target, data_root=config.data_root, base_dir=config.directory)}
    if config.source is not None and uses_source(config):
        resolved["source"] = resolve_task(config.source, data_root=config.data_root, base_dir=config.directory)
    try:
        tasks = {key: load_task(task, key=key, seed=config.seed) for key, task in resolved.items()}
    except ConfigError as err:
        raise err.at(file=file) from None
    model_path = resolve_model_path(config.model, config.directory)
    try:
        load_tokenizer(model_path, config.model.revision)
    except ConfigError as err:
        raise err.at(file=file, key_prefix="model.name") from None
    except Exception as err:  # not a model folder, not on the hub, no network: say so in one line
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"cannot load the model's tokenizer from {model_path!r}: {first_line}", file=file, key="model.name") from None
    from tuneflow.models.model_check import check_model

    check_model(config, model_path, file=file)  # built on the meta device: LoRA targets, freeze_layers, quantization
    sampler = make_sampler(config.sampler, seed=config.seed, space=config.space, file=file)
    pruner = make_pruner(config.pruner, file=file)
    return StudyPlan(
        config=config,
        target=tasks["target"],
        source=tasks.get("source"),
        model_path=model_path,
        sampler=sampler,
        pruner=pruner,
        record=config_record(config, resolved),
    )


def run_study(
    plan: StudyPlan, *, n_trials: int | None = None, timeout: float | None = None, hooks: StudyHooks | None = None,
    allow_changes: bool = False,
) -> "optuna.Study":
    """Open (or resume) the study and run trials. ``n_trials`` given = trials to add; else the budget's total.

    ``hooks`` are how a caller watches (progress, live display, dashboard note, images); none: silent.
    ``allow_changes``: resume even though the file's contract changed (see :mod:`tuneflow.study.contract`).
    """
    from tuneflow.study.budget import gate_for
    from tuneflow.study.claims import OncePerStudy
    from tuneflow.study.objective import TransferObjective
    from tuneflow.study.samplers import trial_samplers
    from tuneflow.study.storage import open_storage
    from tuneflow.study.study_record import create_or_load
    from tuneflow.study.workers import TrialLoop, budget_target

    hooks = hooks or StudyHooks()
    config = plan.config
    url, file = config.storage_url(), str(config.path)
    storage = open_storage(url, options=config.storage_options, file=file)
    study = create_or_load(config, storage=storage, sampler=plan.sampler, pruner=plan.pruner, record=plan.record,
                           on_opened=hooks.on_study_opened, allow_changes=allow_changes)
    once = OncePerStudy(gate_for(url, storage, study.study_name), study)
    if config.prior == "logme":
        from tuneflow.transferability.prior import RANKING_ATTR, apply_prior

        # Workers starting together: one ranks, the others start trials (a dead ranker's claim lapses).
        apply_prior(plan, study, progress=hooks.on_message,
                    claim=lambda: once.claim("prior", done_attr=RANKING_ATTR, ttl=PRIOR_CLAIM_TTL))
    # One budget rule for `run` and every `worker` (tuneflow.study.budget): trials of all processes count.
    total, n_trials = budget_target(study, add=n_trials, total=config.budget.n_trials)
    timeout = timeout if timeout is not None else config.budget.timeout
    objective = TransferObjective(config, target=plan.target, source=plan.source, model_path=plan.model_path, hooks=hooks,
                                  contract=plan.record["contract"], once=once)
    progress = hooks.progress(study, n_trials) if hooks.progress is not None else None
    if progress is not None:
        progress.start()
    # A failing trial is recorded as FAIL with its reason and the study goes on; see tuneflow.study.workers.
    loop = TrialLoop(study, storage=storage, url=url, options=config.storage_options,
                     objective=objective, n_trials=total, timeout=timeout, callbacks=[progress] if progress else [],
                     sampler_for=trial_samplers(config.sampler, seed=config.seed, space=config.space, file=file))
    loop.run()
    if progress is not None:
        progress.finish()
    return study


def record_ranking(plan: StudyPlan, ranking: list["CandidateScore"]) -> list[dict[str, Any]]:
    """Open (or create) the study, store the scores and enqueue the prior trials once."""
    from tuneflow.study.storage import open_storage
    from tuneflow.study.study_record import create_or_load
    from tuneflow.transferability.prior import store_and_enqueue

    config = plan.config
    storage = open_storage(config.storage_url(), options=config.storage_options, file=str(config.path))
    study = create_or_load(config, storage=storage, sampler=plan.sampler, pruner=plan.pruner, record=plan.record)
    return store_and_enqueue(study, ranking, config.space, by="tuneflow rank")
