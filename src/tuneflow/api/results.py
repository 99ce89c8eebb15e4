"""What a study found: its best trials, the verdict, its status, the report, the export and final training."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneflow.api.study_files import PathLike, StudyLike, as_study, monitored_study
from tuneflow.config.errors import ConfigError

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from tuneflow.study.verdict import Verdict


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
    return ranked_trials(as_study(study), top_k)


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

    return study_verdict(as_study(study))


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
    from tuneflow.fleet.monitor import status_record
    from tuneflow.fleet.storage import storage_url_of

    if study is not None and not isinstance(study, (str, os.PathLike)):
        return status_record(study, url=storage or storage_url_of(study) or "?")
    opened, url, _, n_trials = monitored_study(study, storage=storage, study_name=study_name)
    return status_record(opened, url=url, n_trials=n_trials)


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
    from tuneflow.final.export import export_trials, write_export

    if top_k < 1:
        raise ConfigError("must be at least 1", key="top_k")
    data = export_trials(as_study(study), top_k)
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
    from tuneflow.final.export import load_export
    from tuneflow.final.final_training import train_final

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
    from tuneflow.fleet.storage import storage_url_of
    from tuneflow.observe.artifacts import sqlite_artifacts_dir
    from tuneflow.observe.dashboard import resolve_target
    from tuneflow.observe.report import write_report

    opened = as_study(study)
    if isinstance(study, (str, os.PathLike)):
        storage_url, folder = resolve_target(str(study), storage=storage_url, artifacts=None if artifacts is None else str(artifacts))
    else:
        storage_url = storage_url or storage_url_of(opened)
        folder = Path(artifacts) if artifacts is not None else (sqlite_artifacts_dir(storage_url) if storage_url else None)
    write_report(opened, Path(path), storage_url=storage_url, artifacts=folder)
    return Path(path)
