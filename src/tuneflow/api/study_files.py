"""How the API names a study: its study file or an ``optuna.Study``, and how it finds one from the other."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneflow.config.errors import ConfigError
from tuneflow.config.study_config import StudyConfig
from tuneflow.study.runner import load_config as _load_config

if TYPE_CHECKING:
    import optuna


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


def as_study(study: StudyLike) -> "optuna.Study":
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
    from tuneflow.config.study_config import CONFIG_ATTR

    recorded = (study.user_attrs.get(CONFIG_ATTR) or {}).get("study_file")
    if not recorded:
        raise ConfigError(f"study {study.study_name!r} recorded no study file (was it run by tuneflow?); "
                          "pass the study file instead of the study")
    if not Path(recorded).is_file():
        raise ConfigError(f"study {study.study_name!r} was run from {recorded!r}, which is gone; pass the study file "
                          "instead of the study")
    return Path(recorded)


def file_of(study: StudyLike) -> tuple[PathLike, str | None, str | None]:
    """(study file, storage URL, study name): a file as given (None, None: the file's); a study's recorded file,
    the storage it was opened from and its name."""
    if isinstance(study, (str, os.PathLike)):
        return study, None, None
    from tuneflow.fleet.storage import storage_url_of

    return recorded_study_file(study), storage_url_of(study), study.study_name


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
