"""Check, run and confirm a study, and rank its candidate sources before it runs."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any, Callable

from tuneflow.api.study_files import PathLike, StudyLike, file_of, load_config
from tuneflow.config.errors import ConfigError
from tuneflow.config.study_config import StudyConfig
from tuneflow.study.preflight import Validation

if TYPE_CHECKING:
    import optuna

    from tuneflow.transferability.candidates import CandidateScore


def validate(study: StudyLike, *, data_root: str | None = None) -> Validation:
    """Check what :func:`run` needs, without training or writing anything.

    Checks the study file and its search space, the storage URL, earlier studies to warm-start from,
    every split of every task (columns, labels), each model (a local folder's config and tokenizer; a
    hub id on the hub, or marked "not checked offline"), the sampler's and pruner's arguments and the
    prior's candidates file.

    Args:
        study: The study file, or a study that recorded one.
        data_root: As for :func:`load_config`.

    Returns:
        What was checked; ``str(result)`` is the summary ``tuneflow validate`` prints (its first line
        says ``OK``, or what could not be checked offline) and ``result.as_dict()`` its ``--json``.

    Raises:
        ConfigError: The first problem, in one line naming the file and key.

    Examples:
        >>> print(tuneflow.validate("studies/demo.yaml"))
        studies/demo.yaml: OK
          study 'demo', 5 parameters from the study file
          ...
    """
    from tuneflow.study.preflight import check_study

    path, storage, study_name = file_of(study)
    config = load_config(path, data_root=data_root, storage=storage, study_name=study_name)
    # The checks plan_study runs before `run` touches storage, torch-free and reading no hub dataset.
    return Validation.of(check_study(config, file=str(path), thorough=False))


def run(
    study: "PathLike | StudyConfig | optuna.Study",
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    data_root: str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    quiet: bool = False,
    allow_changes: bool = False,
    graceful_sigterm: bool = False,
) -> "optuna.Study":
    """Run (or resume) a study.

    Progress lines go to stderr (a live block on a terminal) unless ``quiet``. The first Ctrl-C (and
    SIGTERM with ``graceful_sigterm``) lets the running trial finish and then raises ``StopRequested``
    (a ``KeyboardInterrupt``); a second one fails and re-queues the trial.

    Args:
        study: The study file, its loaded config (:func:`load_config`), or a study that recorded its file
            (resumed in the storage it was opened from).
        n_trials: Trials to add; None: up to the file's ``budget.n_trials`` in total.
        timeout: Seconds after which no new trial starts.
        data_root: As for :func:`load_config`.
        storage: Storage URL instead of the file's.
        study_name: Study name instead of the file's.
        quiet: No progress lines.
        allow_changes: Resume although the file changed what the values mean (model, tasks, objective,
            space, evaluation); the change is recorded. Without it, such a resume raises ConfigError
            naming the changed keys.
        graceful_sigterm: SIGTERM lets the running trial finish, like the first Ctrl-C.

    Returns:
        The Optuna study, with every trial so far.

    Raises:
        ConfigError: Bad input, before anything is written.

    Examples:
        >>> study = tuneflow.run("studies/demo.yaml", n_trials=5, quiet=True)
        >>> len(study.trials)
        5
    """
    from tuneflow.observe.watching import watching_hooks
    from tuneflow.study.runner import plan_study, run_study

    if n_trials is not None and n_trials < 1:
        raise ConfigError("must be at least 1", key="n_trials")
    if timeout is not None and timeout <= 0:
        raise ConfigError("must be positive (seconds)", key="timeout")
    if not isinstance(study, (StudyConfig, str, os.PathLike)):
        study, recorded_storage, study_name = file_of(study)
        storage = storage or recorded_storage
    plan = plan_study(study, data_root=data_root, storage=storage, study_name=study_name)
    return run_study(plan, n_trials=n_trials, timeout=timeout, hooks=watching_hooks(quiet=quiet), allow_changes=allow_changes,
                     graceful_sigterm=graceful_sigterm)


def confirm(
    study: StudyLike, *, top_k: int = 2, seeds: int = 3, data_root: str | None = None, storage: str | None = None,
    study_name: str | None = None,
) -> dict[str, Any]:
    """Retrain the study's top configurations and their baselines with fresh seeds.

    Stores the result in the study (user attr ``tuneflow_confirmation``; no trial is added, so no
    sampler sees it); :func:`best`, :func:`verdict` and :func:`export` then use the confirmed means.
    It trains, so it needs the study file's data and model: a study passed in is confirmed with the
    study file it recorded.

    Args:
        study: The study file, or a study that recorded one.
        top_k: How many of the best configurations to retrain (the best target-only and transfer ones
            are retrained too when not among them).
        seeds: Fresh seeds per configuration (at least 2: an interval over seeds).
        data_root: As for :func:`load_config`.
        storage: Storage URL instead of the file's (a study: the one it was opened from).
        study_name: Study name instead of the file's.

    Returns:
        The confirmation as stored: ``seeds`` (the fresh seeds), ``results`` (per configuration: ``trial``,
        ``role``, ``value``, ``value_mean``, ``value_sd``, the metrics and gains), ``training_samples``.

    Raises:
        ConfigError: Bad numbers, no such study, or (for a study) no study file recorded.

    Examples:
        >>> confirmation = tuneflow.confirm("studies/demo.yaml", top_k=2, seeds=3)
        >>> [r["trial"] for r in confirmation["results"]]
        [4, 1]
    """
    from tuneflow.study.confirm import confirm as _confirm
    from tuneflow.study.runner import plan_study
    from tuneflow.study.study_record import load_existing

    if top_k < 1:
        raise ConfigError("must be at least 1", key="top_k")
    if seeds < 2:
        raise ConfigError("must be at least 2 (an interval over seeds)", key="seeds")
    path, recorded_storage, recorded_name = file_of(study)
    storage, study_name = storage or recorded_storage, study_name or recorded_name
    if isinstance(study, (str, os.PathLike)):
        config = load_config(path, data_root=data_root, storage=storage, study_name=study_name)
        study = load_existing(config.storage_url(), config.name, study_file=str(path))  # before the slower checks
    plan = plan_study(path, data_root=data_root, storage=storage, study_name=study_name)
    return _confirm(plan, study, top_k=top_k, seeds=seeds)


@dataclasses.dataclass(frozen=True)
class Ranking:
    """What :func:`rank` found.

    Attributes:
        scores: The candidates, best first (``score.as_dict()``: the ``tuneflow rank --json`` entry).
        source_choice: What ``prior_keep`` keeps and drops, with why (None when the file sets no ``prior_keep``).
        enqueued: The trials enqueued (``record=True``): the best candidate's mapping, source and model.
        recorded: Whether the scores were stored with the study.
        study: The study's name.
        storage: The study's storage URL (password redacted).
    """

    scores: list["CandidateScore"]
    source_choice: dict[str, Any] | None
    enqueued: list[dict[str, Any]]
    recorded: bool
    study: str
    storage: str


def rank(
    study: StudyLike, *, candidates: PathLike | None = None, rows: int | None = None, record: bool = False,
    data_root: str | None = None, storage: str | None = None, study_name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Ranking:
    """Rank candidate encoders for a study by LogME / LEEP, without running trials.

    Args:
        study: The study file, or a study that recorded one.
        candidates: A candidates file (default: every model of the study, cls and mean pooling, as
            pretrained and fine-tuned on each source of the study).
        rows: Target training rows scored (default: the candidates file's, else 1000).
        record: Store the scores with the study (creating it if needed), apply ``prior_keep`` before any
            trial, and enqueue the best candidate's (mapping, source, model).
        data_root: As for :func:`load_config`.
        storage: Storage URL instead of the file's.
        study_name: Study name instead of the file's.
        progress: Called with a line per step (e.g. ``print``); None: silent.

    Returns:
        The ranking, best first, and what was recorded.

    Examples:
        >>> ranking = tuneflow.rank("studies/demo.yaml", rows=500)
        >>> ranking.scores[0].as_dict()["candidate"]
        'bert-base-uncased/mean'
    """
    from tuneflow.config.storage_url import redact_url
    from tuneflow.study.runner import plan_study, record_ranking
    from tuneflow.transferability.candidates import (
        default_candidates,
        load_candidates,
        source_names,
    )
    from tuneflow.transferability.ranking import rank_candidates

    if rows is not None and rows < 2:
        raise ConfigError("must be at least 2", key="rows")
    path, recorded_storage, recorded_name = file_of(study)
    plan = plan_study(path, data_root=data_root, storage=storage or recorded_storage, study_name=study_name or recorded_name)
    spec = load_candidates(candidates) if candidates else default_candidates(plan)
    if rows is not None:
        spec = dataclasses.replace(spec, rows=rows)
    scores = rank_candidates(plan, spec, file=None if candidates is None else str(candidates), progress=progress)
    enqueued: list[dict[str, Any]] = []
    choice = None
    if record:
        enqueued, choice = record_ranking(plan, scores)
    elif plan.config.prior_keep is not None:  # what the prior would keep: nothing is written without record
        from tuneflow.transferability.source_choice import choose_sources

        choice = choose_sources(scores, source_names(plan), plan.config.prior_keep).as_attr()
    return Ranking(scores=scores, source_choice=choice, enqueued=enqueued, recorded=record, study=plan.config.name,
                   storage=redact_url(plan.config.storage_url()))
