"""Trial artifacts through Optuna's artifact API: where the store lives, and what each trial uploads.

The store is an Optuna ``FileSystemArtifactStore``. By default it sits beside a SQLite storage
(``<db folder>/<db name>_artifacts/``, i.e. ``<study dir>/<name>_artifacts/`` for the default
storage); for other storages beside the study file, unless the study key ``artifacts_dir`` says
where. Workers on several machines need that folder on a shared file system.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import optuna

    from tuneflow.config.study_config import StudyConfig
    from tuneflow.training.loop import FitStats


def sqlite_artifacts_dir(storage_url: str) -> Path | None:
    """``<db folder>/<db stem>_artifacts`` for a SQLite file URL; None for any other storage."""
    from tuneflow.config.storage_url import sqlite_file

    db = sqlite_file(storage_url)
    if db is None:  # a server database, in-memory SQLite, a journal file, redis: no SQLite file to sit beside
        return None
    db = db.resolve()
    return db.with_name(f"{db.stem}_artifacts")


def artifacts_dir(config: "StudyConfig") -> Path:
    """The study's artifact folder: ``artifacts_dir`` (relative to the study file), else beside the storage."""
    if config.artifacts_dir:
        return (config.directory / config.artifacts_dir).resolve()
    return sqlite_artifacts_dir(config.storage_url()) or (config.directory / f"{config.name}_artifacts").resolve()


def open_artifact_store(folder: Path):
    from optuna.artifacts import FileSystemArtifactStore

    folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(folder)


def upload_trial_artifacts(
    trial: "optuna.Trial",
    config: "StudyConfig",
    *,
    metrics: dict[str, Any],
    history: Sequence[dict[str, Any]],
    fit_stats: Sequence["FitStats"],
    label_names: Sequence[str],
) -> None:
    """Upload the confusion-matrix and learning-curve PNGs of a finished trial.

    Images are a convenience: a failure (full disk, unwritable folder) is recorded as the
    ``artifact_error`` user attr and never fails the trial.
    """
    from optuna.artifacts import upload_artifact

    from tuneflow.observe.trial_plots import confusion_matrix_png, learning_curve_png

    try:
        store = open_artifact_store(artifacts_dir(config))
        params = trial.user_attrs.get("params", {})
        what = f"trial {trial.number} ({params.get('mapping', '?')}/{params.get('method', '?')})"
        with tempfile.TemporaryDirectory(prefix="tuneflow-artifacts-") as tmp:
            files = [
                confusion_matrix_png(
                    metrics["confusion_matrix"], label_names, Path(tmp) / f"trial-{trial.number}-confusion-matrix.png",
                    title=f"{what}: target validation, accuracy {metrics['accuracy']:.3f}",
                ),
                learning_curve_png(
                    [s.epoch_losses for s in fit_stats], history, Path(tmp) / f"trial-{trial.number}-learning-curve.png",
                    title=what,
                ),
            ]
            for path in files:
                upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial, mimetype="image/png")
    except Exception as err:  # noqa: BLE001 - an image must never cost a trained trial
        trial.set_user_attr("artifact_error", f"{type(err).__name__}: {err}")
