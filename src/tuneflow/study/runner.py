"""From a study file to a running study: check everything first, then touch storage, then optimise.

The order matters: config, data, model, sampler and pruner are all checked before the storage is
opened, so a rejected study writes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuneflow.config.study_config import StudyConfig, load_study_config
from tuneflow.data.tasks import TaskData
from tuneflow.study.hooks import StudyHooks
from tuneflow.study.preflight import check_study
from tuneflow.transfer.base import get_strategy

if TYPE_CHECKING:
    import optuna

    from tuneflow.transferability.candidates import CandidateScore


PRIOR_CLAIM_TTL = 3600.0  # seconds: a worker that starts later ranks again if the first ranker never finished


@dataclass
class StudyPlan:
    """A study that passed every check and has not touched storage yet.

    ``source`` / ``model_path``: the first source and model candidate (one-source, one-model code);
    ``sources`` (name -> task) and ``models`` (label -> path) hold all of them, in file order.
    """

    config: StudyConfig
    target: TaskData
    source: TaskData | None
    model_path: str
    sampler: Any
    pruner: Any
    record: dict[str, Any]
    sources: dict[str, TaskData] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)


def load_config(path, **overrides: Any) -> StudyConfig:
    """Read and check a study file against the registered mapping strategies (CLI overrides as keywords)."""
    return load_study_config(path, strategies=get_strategy, **overrides)


def plan_study(
    path_or_config: str | os.PathLike | StudyConfig, *, data_root: str | None = None, storage: str | None = None,
    study_name: str | None = None,
) -> StudyPlan:
    """Load and check the study file (or take a loaded config), its data, the model's tokenizer, sampler and pruner.

    The checks are :func:`tuneflow.study.preflight.check_study`'s, the same ``tuneflow validate`` runs.
    """
    from tuneflow.study.study_record import config_record

    if isinstance(path_or_config, StudyConfig):
        config, file = path_or_config, str(path_or_config.path)
    else:
        config = load_config(path_or_config, data_root=data_root, storage=storage, study_name=study_name)
        file = str(path_or_config)  # errors name the file as the user typed it
    checked = check_study(config, file=file, thorough=True)
    tasks, resolved, models = checked.tasks, checked.resolved, checked.models
    sources = {resolved[key].name: data for key, data in tasks.items() if key != "target"}  # file order
    return StudyPlan(
        config=config,
        target=tasks["target"],
        source=next(iter(sources.values()), None),
        model_path=next(iter(models.values())),
        sampler=checked.sampler,
        pruner=checked.pruner,
        record=config_record(config, resolved),
        sources=sources,
        models=models,
    )


def run_study(
    plan: StudyPlan, *, n_trials: int | None = None, timeout: float | None = None, hooks: StudyHooks | None = None,
    allow_changes: bool = False, graceful_sigterm: bool = False,
) -> "optuna.Study":
    """Open (or resume) the study and run trials. ``n_trials`` given = trials to add; else the budget's total.

    ``hooks`` are how a caller watches (progress, live display, dashboard note, images); none: silent.
    ``allow_changes``: resume even though the file's contract changed (see :mod:`tuneflow.study.contract`).
    ``graceful_sigterm``: SIGTERM lets the running trial finish, as the first Ctrl-C does (see
    :mod:`tuneflow.fleet.workers`).
    """
    from optuna.trial import TrialState

    from tuneflow.fleet.budget import gate_for
    from tuneflow.fleet.claims import OncePerStudy
    from tuneflow.fleet.storage import open_storage
    from tuneflow.fleet.workers import TrialLoop, budget_target
    from tuneflow.study.confirm import confirm_in_study
    from tuneflow.study.coverage import apply_coverage
    from tuneflow.study.distinct import distinct, exhausted
    from tuneflow.study.objective import TransferObjective
    from tuneflow.study.samplers import trial_samplers
    from tuneflow.study.study_record import create_or_load

    hooks = hooks or StudyHooks()
    config = plan.config
    url, file = config.storage_url(), str(config.path)
    storage = open_storage(url, options=config.storage_options, file=file)
    study = create_or_load(config, storage=storage, sampler=plan.sampler, pruner=plan.pruner, record=plan.record,
                           on_opened=hooks.on_study_opened, allow_changes=allow_changes)
    once = OncePerStudy(gate_for(url, storage, study.study_name), study)
    if config.prior == "logme":
        from tuneflow.transferability.prior import RANKING_ATTR, apply_prior

        # Workers starting together: one ranks, the others start trials (a dead ranker's claim lapses);
        # with prior_keep they wait for the ranking instead, since it decides the sources trials sample.
        apply_prior(plan, study, progress=hooks.on_message,
                    claim=lambda: once.claim("prior", done_attr=RANKING_ATTR, ttl=PRIOR_CLAIM_TTL))
    from tuneflow.study.warm_start import apply_warm_starts

    apply_warm_starts(config, study, once=once, message=hooks.on_message)  # once per study, like the prior
    # One budget rule for `run` and every `worker` (tuneflow.fleet.budget): trials of all processes count.
    total, n_trials = budget_target(study, add=n_trials, total=config.budget.n_trials)
    # Every arm (target only, each mapping x source, per model) is queued before the sampler exploits.
    apply_coverage(config, study, once=once, total=total, message=hooks.on_message)
    timeout = timeout if timeout is not None else config.budget.timeout
    objective = TransferObjective.for_plan(plan, hooks=hooks, contract=plan.record["contract"], once=once)

    def claim(key: str, number: int) -> bool:  # a configuration, for one running trial (tuneflow.study.distinct)
        return once.hold(key, trial=number)

    sampler_for = trial_samplers(config.sampler, seed=config.seed, space=config.space, file=file, claim=claim)
    if sampler_for is None:  # one shared sampler (grid, qmc): it too must not repeat a configuration
        study.sampler = distinct(study.sampler, space=config.space, seed=config.seed, claim=claim)
    progress = hooks.progress(study, n_trials) if hooks.progress is not None else None
    if progress is not None:
        progress.start()
    # A failing trial is recorded as FAIL with its reason and the study goes on; see tuneflow.fleet.workers.
    loop = TrialLoop(study, storage=storage, url=url, options=config.storage_options,
                     objective=objective, n_trials=total, timeout=timeout, callbacks=[progress] if progress else [],
                     sampler_for=sampler_for, nothing_new=lambda: exhausted(study, config.space),
                     graceful_sigterm=graceful_sigterm)
    try:
        loop.run()  # raises StopRequested when a signal stopped it: no confirmation then
    finally:  # a stopped worker, too, takes its live display down (the terminal gets its cursor back)
        if progress is not None:
            progress.finish()
    if config.confirm is not None and not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        confirm_in_study(plan, study, once=once, message=hooks.on_message)  # the budget is spent: confirm once
    return study


def record_ranking(plan: StudyPlan, ranking: list["CandidateScore"]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Open (or create) the study, store the scores, apply ``prior_keep``, enqueue the prior trials once."""
    from tuneflow.fleet.storage import open_storage
    from tuneflow.study.study_record import create_or_load
    from tuneflow.transferability.prior import store_and_enqueue
    from tuneflow.transferability.source_choice import DROPPED_SOURCES_ATTR

    config = plan.config
    storage = open_storage(config.storage_url(), options=config.storage_options, file=str(config.path))
    study = create_or_load(config, storage=storage, sampler=plan.sampler, pruner=plan.pruner, record=plan.record)
    enqueued = store_and_enqueue(study, ranking, config.space, by="tuneflow rank", plan=plan)
    return enqueued, study.user_attrs.get(DROPPED_SOURCES_ATTR)  # prior_keep's choice, if it made one
