"""The Python API: what the ``tuneflow`` command does, as functions for a notebook or a script.

    import tuneflow
    config = tuneflow.load_config("studies/demo.yaml")
    study = tuneflow.run(config, n_trials=5)
    tuneflow.best(study)                      # the best trials, best first
    tuneflow.confirm(study, top_k=2, seeds=3) # fresh seeds for the top 2
    tuneflow.verdict(study)                   # does transfer help? plain words + the numbers
    tuneflow.export(study, "best.yaml", top_k=3)
    tuneflow.train("best.yaml", "final/")     # final training, scored once on the test split

Every function that reads a study takes its study file (``"studies/demo.yaml"``) or an
``optuna.Study`` (what :func:`run` and :func:`open_study` return). Those that need the study file's
config (:func:`validate`, :func:`run`, :func:`confirm`, :func:`rank`) find it, for a study, through
the path the study recorded when it ran (its ``tuneflow_config`` user attr), and say so when it is gone.

Every function raises :class:`tuneflow.ConfigError` (one line naming the file and key) on bad input,
before anything is written to storage. The CLI (:mod:`tuneflow.cli`) is a thin layer over this module.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tuneflow.config.errors import ConfigError
from tuneflow.config.study_config import StudyConfig
from tuneflow.study.runner import load_config as _load_config

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from tuneflow.transferability.candidates import CandidateScore
    from tuneflow.study.verdict import Verdict

__all__ = ["load_config", "validate", "run", "open_study", "status", "best", "verdict", "rank", "confirm", "export", "train",
           "report", "recorded_study_file", "ConfigError", "Validation", "Ranking"]

PathLike = str | os.PathLike
StudyLike = "optuna.Study | PathLike"  # a study, or its study file


def load_config(
    path: PathLike, *, data_root: str | None = None, storage: str | None = None, study_name: str | None = None
) -> StudyConfig:
    """Read and check a study file and its search space (no torch, nothing written).

    Args:
        path: The study file (YAML).
        data_root: Folder for relative data paths; switches hub tasks to their ``offline`` files.
        storage: Storage URL instead of the file's ``storage``.
        study_name: Study name instead of the file's ``name``.

    Returns:
        The checked config (``config.name``, ``config.space.parameters``, ``config.storage_url()``, ...).

    Raises:
        ConfigError: One line naming the file and key of the first problem.

    Examples:
        >>> config = tuneflow.load_config("studies/demo.yaml")
        >>> sorted(config.space.parameters)[:2]
        ['batch_size', 'epochs']
    """
    return _load_config(path, data_root=data_root, storage=storage, study_name=study_name)


@dataclasses.dataclass(frozen=True)
class Validation:
    """What :func:`validate` checked; ``str()`` gives the summary lines ``tuneflow validate`` prints.

    Attributes:
        file: The study file, as given.
        study: The study's name.
        parameters: How many parameters the search space has.
        space_source: Where the space came from (the file, or a named preset).
        models: One entry per model candidate: ``label``, ``description``, ``checked`` (False: a hub id
            not looked up offline).
        tasks: One entry per task: ``key`` (``target``, ``source``, ``sources[1]``), ``name``, ``hub``
            (the hub dataset id, not read; else None), ``labels``, ``train``, ``validation`` (rows) and
            ``validation_carved`` (True: carved out of train). The counts are None for a hub task.
        warm_start: One line per earlier study to warm-start from (and trials that would be skipped).
    """

    file: str
    study: str
    parameters: int
    space_source: str
    models: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    warm_start: list[str]

    @property
    def unchecked(self) -> list[str]:
        """Model candidates that could not be checked offline."""
        return [m["label"] for m in self.models if not m["checked"]]

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``tuneflow validate --json`` (``ok`` is True: a failed check raises instead)."""
        return {"file": self.file, "ok": True, "not_checked_offline": self.unchecked, "study": self.study,
                "parameters": self.parameters, "space_source": self.space_source, "models": self.models,
                "tasks": self.tasks, "warm_start": self.warm_start}

    def lines(self) -> list[str]:
        """The summary lines; the first says ``OK``, or what could not be checked offline."""
        unchecked = self.unchecked
        head = f"{self.file}: OK" + (f" as far as checked; not checked offline: model {', '.join(map(repr, unchecked))}" if unchecked else "")
        lines = [head, f"  study {self.study!r}, {self.parameters} parameters from {self.space_source}"]
        lines += [f"  model {m['label']!r}: {m['description']}" for m in self.models]
        for t in self.tasks:
            if t["hub"] is not None:
                lines.append(f"  {t['key']} {t['name']!r}: hub dataset {t['hub']!r} (not read by validate; use --data-root for offline files)")
            else:
                lines.append(f"  {t['key']} {t['name']!r}: {t['labels']} labels, train {t['train']}, validation {t['validation']}"
                             f"{' (carved from train)' if t['validation_carved'] else ''}")
        return lines + self.warm_start

    def __str__(self) -> str:
        return "\n".join(self.lines())


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
    from tuneflow.data.tasks import load_task, resolve_task
    from tuneflow.study.model_candidates import check_checkpoints
    from tuneflow.study.runner import source_keys, uses_source
    from tuneflow.study.samplers import make_pruner, make_sampler
    from tuneflow.study.storage import check_storage_url
    from tuneflow.study.warm_start import check_warm_starts

    path, storage, study_name = _file_of(study)
    config = load_config(path, data_root=data_root, storage=storage, study_name=study_name)
    file = str(path)
    check_storage_url(config.storage_url(), file=file)
    warm_lines = check_warm_starts(config, file=file)  # earlier studies: opened read-only
    task_entries = []
    tasks = {"target": config.target, **(source_keys(config) if uses_source(config) else {})}
    for key, task in tasks.items():
        task = resolve_task(task, data_root=config.data_root, base_dir=config.directory)
        if task.hub is not None:
            task_entries.append({"key": key, "name": task.name, "hub": task.hub.path, "labels": None, "train": None,
                                 "validation": None, "validation_carved": None})
            continue
        try:
            data = load_task(task, key=key, seed=config.seed)
        except ConfigError as err:
            raise err.at(file=file) from None
        task_entries.append({"key": key, "name": data.name, "hub": None, "labels": data.num_labels, "train": len(data.train),
                             "validation": len(data.validation), "validation_carved": bool(data.validation_carved)})
    models = check_checkpoints(config, file=file)  # torch-free, each model candidate
    make_sampler(config.sampler, seed=config.seed, space=config.space, file=file)
    make_pruner(config.pruner, file=file)
    if config.prior_candidates:
        from tuneflow.transferability.candidates import load_candidates

        load_candidates(config.directory / config.prior_candidates)
    return Validation(
        file=file, study=config.name, parameters=len(config.space.parameters), space_source=str(config.space.source),
        models=[{"label": label, "description": s.description, "checked": s.checked} for label, s in models.items()],
        tasks=task_entries, warm_start=warm_lines,
    )


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
        study, recorded_storage, study_name = _file_of(study)
        storage = storage or recorded_storage
    plan = plan_study(study, data_root=data_root, storage=storage, study_name=study_name)
    return run_study(plan, n_trials=n_trials, timeout=timeout, hooks=watching_hooks(quiet=quiet), allow_changes=allow_changes,
                     graceful_sigterm=graceful_sigterm)


def open_study(study_file: "PathLike | optuna.Study | None" = None, *, storage: str | None = None,
               study_name: str | None = None) -> "optuna.Study":
    """An existing study, found through its study file or a storage URL (and name, when it holds several).

    Reads only: a study that is not there raises ConfigError and creates nothing (no database file,
    tables or lock file).

    Args:
        study_file: The study file (its ``storage`` and ``name``); an ``optuna.Study`` is returned as is.
        storage: Storage URL (instead of the file's, or without a file).
        study_name: Study name; without a file or name, the storage's only study.

    Returns:
        The Optuna study.

    Raises:
        ConfigError: No such storage or study, or neither a file nor ``storage`` given.

    Examples:
        >>> study = tuneflow.open_study("studies/demo.yaml")
        >>> study = tuneflow.open_study(storage="sqlite:///studies/demo.db", study_name="demo")
    """
    from tuneflow.study.study_record import load_existing

    if study_file is not None and not isinstance(study_file, (str, os.PathLike)):
        return study_file
    if study_file is not None and (storage is None or study_name is None):
        config = load_config(study_file)
        storage = storage or config.storage_url()
        study_name = study_name or config.name
    if storage is None:
        raise ConfigError("give --storage URL (or a study file)", key="storage")
    return load_existing(storage, study_name, study_file=None if study_file is None else str(study_file))


def _study(study: StudyLike) -> "optuna.Study":
    return open_study(study) if isinstance(study, (str, os.PathLike)) else study


def recorded_study_file(study: "optuna.Study") -> Path:
    """The study file a study was run from, as it recorded it (user attr ``tuneflow_config``).

    Args:
        study: A study tuneflow ran.

    Returns:
        The study file's path.

    Raises:
        ConfigError: The study recorded no study file (not run by tuneflow), or the file is gone.

    Examples:
        >>> tuneflow.recorded_study_file(tuneflow.open_study(storage="sqlite:///demo.db"))
        PosixPath('/home/me/studies/demo.yaml')
    """
    from tuneflow.study.study_record import CONFIG_ATTR

    recorded = (study.user_attrs.get(CONFIG_ATTR) or {}).get("study_file")
    if not recorded:
        raise ConfigError(f"study {study.study_name!r} recorded no study file (was it run by tuneflow?); "
                          "pass the study file instead of the study")
    if not Path(recorded).is_file():
        raise ConfigError(f"study {study.study_name!r} was run from {recorded!r}, which is gone; pass the study file "
                          "instead of the study")
    return Path(recorded)


def _file_of(study: StudyLike) -> tuple[PathLike, str | None, str | None]:
    """(study file, storage URL, study name): a file as given (None, None: the file's); a study's recorded file,
    the storage it was opened from and its name."""
    if isinstance(study, (str, os.PathLike)):
        return study, None, None
    from tuneflow.study.storage import storage_url_of

    return recorded_study_file(study), storage_url_of(study), study.study_name


def best(study: StudyLike, *, top_k: int = 10) -> list["FrozenTrial"]:
    """The best complete configurations, best first (the Pareto front for a multi-objective study).

    Identical configurations are one entry: a copy of their first trial with figures pooled over every
    seed (user attr ``pooled_trials`` names them). After :func:`confirm`, the confirmed means order them.

    Args:
        study: The study, or its study file.
        top_k: How many configurations.

    Returns:
        Up to ``top_k`` trials, best first; ``trial.user_attrs`` holds the metrics (``accuracy``, ``f1``,
        ...), ``params``, ``arm``, ``transfer_gain_score`` and the like.

    Examples:
        >>> [t.number for t in tuneflow.best("studies/demo.yaml", top_k=3)]
        [4, 1, 7]
    """
    from tuneflow.study.results import ranked_trials

    if top_k < 1:
        raise ConfigError("must be at least 1", key="top_k")
    return ranked_trials(_study(study), top_k)


def verdict(study: StudyLike) -> "Verdict":
    """Does transfer help? The best transfer configuration against the best target-only one.

    Args:
        study: The study, or its study file.

    Returns:
        A frozen dataclass: ``outcome`` (``helped``, ``hurt``, ``unresolved``, ``not_tried``,
        ``no_reference``), ``summary`` and ``recommendation`` in plain words (what ``tuneflow run``,
        ``best`` and the report print), ``recommended_trial``, the two sides (``transfer``,
        ``target_only``), the gain with its 95 % interval and p (``gain``, ``interval``, ``p``,
        ``seeds_needed``), and ``per_source``: the same for each source. ``str(verdict)`` is the summary.

    Examples:
        >>> v = tuneflow.verdict("studies/demo.yaml")
        >>> v.outcome, v.interval
        ('helped', (0.012, 0.048))
    """
    from tuneflow.study.verdict import study_verdict

    return study_verdict(_study(study))


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
    path, recorded_storage, recorded_name = _file_of(study)
    storage, study_name = storage or recorded_storage, study_name or recorded_name
    if isinstance(study, (str, os.PathLike)):
        config = load_config(path, data_root=data_root, storage=storage, study_name=study_name)
        study = load_existing(config.storage_url(), config.name, study_file=str(path))  # before the slower checks
    plan = plan_study(path, data_root=data_root, storage=storage, study_name=study_name)
    return _confirm(plan, study, top_k=top_k, seeds=seeds)


def export(study: StudyLike, path: PathLike, *, top_k: int = 1) -> dict[str, Any]:
    """Write the best configurations as YAML for :func:`train`.

    The verdict's recommendation comes first (:func:`verdict`): the transfer configuration only when
    transfer helped beyond the noise, else the best target-only one.

    Args:
        study: The study, or its study file.
        path: The YAML file to write.
        top_k: How many configurations.

    Returns:
        What was written: ``configs`` (one per configuration: ``rank``, ``trial``, ``params``, ``config``
        to train with, ``validation_metrics``, ...) and the study's name and storage.

    Examples:
        >>> data = tuneflow.export("studies/demo.yaml", "best.yaml", top_k=3)
        >>> data["configs"][0]["trial"]
        4
    """
    from tuneflow.study.export import export_trials, write_export

    if top_k < 1:
        raise ConfigError("must be at least 1", key="top_k")
    data = export_trials(_study(study), top_k)
    write_export(data, Path(path))
    return data


def train(export_path: PathLike, out_dir: PathLike, *, rank: int = 1) -> dict[str, Any]:
    """Final training of an exported configuration, scored once on the target's test split.

    Trains on the target's train + validation rows; saves the model (or LoRA adapter), the tokenizer
    and ``metrics.json`` in ``out_dir``.

    Args:
        export_path: A file :func:`export` wrote.
        out_dir: Where the model, tokenizer and ``metrics.json`` go.
        rank: Which configuration of the file (1 = the best).

    Returns:
        The test metrics as in ``metrics.json``: ``accuracy``, ``precision``, ``recall``, ``f1``,
        ``test_rows``, ``saved_as`` (``model`` or ``adapter``) and what was trained.

    Examples:
        >>> tuneflow.train("best.yaml", "final/")["accuracy"]
        0.91
    """
    from tuneflow.study.export import load_export
    from tuneflow.study.final_training import train_final

    final = load_export(export_path, rank=rank)
    return train_final(final, Path(out_dir), file=str(export_path))


def report(study: StudyLike, path: PathLike, *, storage_url: str | None = None, artifacts: PathLike | None = None) -> Path:
    """Write one self-contained HTML report of the study (opens offline in any browser).

    The verdict, a summary, the best trials and config, Optuna's plots, pruned and failed trials,
    transfer tables and the best trial's images.

    Args:
        study: The study, or its study file.
        path: The HTML file to write.
        storage_url: The storage the report names (default: the one the study was read from).
        artifacts: Folder of the trials' images (default: the study file's, or beside a SQLite file).

    Returns:
        The path of the written report.

    Examples:
        >>> tuneflow.report("studies/demo.yaml", "report.html")
        PosixPath('report.html')
    """
    from tuneflow.observe.artifacts import sqlite_artifacts_dir
    from tuneflow.observe.dashboard import resolve_target
    from tuneflow.observe.report import write_report
    from tuneflow.study.storage import storage_url_of

    opened = _study(study)
    if isinstance(study, (str, os.PathLike)):
        storage_url, folder = resolve_target(str(study), storage=storage_url, artifacts=None if artifacts is None else str(artifacts))
    else:
        storage_url = storage_url or storage_url_of(opened)
        folder = Path(artifacts) if artifacts is not None else (sqlite_artifacts_dir(storage_url) if storage_url else None)
    write_report(opened, Path(path), storage_url=storage_url, artifacts=folder)
    return Path(path)


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
    from tuneflow.transferability.candidates import default_candidates, load_candidates, source_names
    from tuneflow.transferability.ranking import rank_candidates

    if rows is not None and rows < 2:
        raise ConfigError("must be at least 2", key="rows")
    path, recorded_storage, recorded_name = _file_of(study)
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


def status(study: "StudyLike | None" = None, *, storage: str | None = None, study_name: str | None = None) -> dict[str, Any]:
    """Trial counts, the budget, live workers and stale trials of a study (what ``tuneflow status`` prints).

    Args:
        study: The study, or its study file (opened with its ``storage_options``); None: ``storage``.
        storage: Storage URL instead of the file's, or without a file.
        study_name: Study name instead of the file's.

    Returns:
        The ``tuneflow status --json`` object: ``study``, ``storage`` (password redacted), ``trials``
        (``complete``, ``pruned``, ``failed``, ``running``, ``waiting``, ``retried``), ``budget``
        (``n_trials``: the file's total or None, ``finished``), ``heartbeats`` (``interval``,
        ``grace_period`` in seconds; None for journal storages) and ``running``: per running trial
        ``trial``, ``worker``, ``state`` (``alive``, ``stale``, ``silent``: no heartbeat yet, or
        ``running`` where there are no heartbeats), ``started_ago`` and ``heartbeat_ago`` in seconds.

    Examples:
        >>> tuneflow.status("studies/demo.yaml")["trials"]["complete"]
        12
    """
    from tuneflow.study.monitor import status_record
    from tuneflow.study.storage import storage_url_of

    if study is not None and not isinstance(study, (str, os.PathLike)):
        return status_record(study, url=storage or storage_url_of(study) or "?")
    opened, url, _, n_trials = monitored_study(study, storage=storage, study_name=study_name)
    return status_record(opened, url=url, n_trials=n_trials)


def monitored_study(study_file: PathLike | None, *, storage: str | None = None,
                    study_name: str | None = None) -> tuple["optuna.Study", str, Any, int | None]:
    """(study, storage URL, storage_options, the file's budget) for ``status`` and ``cleanup``: opened read-only
    with the study file's storage options (heartbeat, grace period, retries)."""
    from tuneflow.config.study_config import StorageOptionsConfig
    from tuneflow.study.study_record import load_existing

    options, n_trials = StorageOptionsConfig(), None
    if study_file:
        config = load_config(study_file, storage=storage, study_name=study_name)
        storage, study_name, options, n_trials = config.storage_url(), config.name, config.storage_options, config.budget.n_trials
    if storage is None:
        raise ConfigError("give --storage URL (or a study file)", key="storage")
    study = load_existing(storage, study_name, options=options, study_file=None if study_file is None else str(study_file))
    return study, storage, options, n_trials
