"""The Python API: what the ``tuneflow`` command does, as functions for a notebook or a script.

    import tuneflow
    config = tuneflow.load_config("studies/demo.yaml")
    study = tuneflow.run(config, n_trials=5)
    tuneflow.best(study)                      # the best trials, best first
    tuneflow.confirm("studies/demo.yaml", top_k=2, seeds=3)  # fresh seeds for the top 2
    tuneflow.verdict(study)                   # does transfer help? plain words + the numbers
    tuneflow.export(study, "best.yaml", top_k=3)
    tuneflow.train("best.yaml", "final/")     # final training, scored once on the test split

Every function raises :class:`tuneflow.ConfigError` (one line naming the file and key) on bad input,
before anything is written to storage. The CLI (:mod:`tuneflow.cli`) is a thin layer over this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneflow.config.errors import ConfigError
from tuneflow.config.study_config import StudyConfig
from tuneflow.study.runner import load_config as _load_config

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from tuneflow.study.verdict import Verdict

PathLike = str | os.PathLike


def load_config(
    path: PathLike, *, data_root: str | None = None, storage: str | None = None, study_name: str | None = None
) -> StudyConfig:
    """Read and check a study file and its search space (no torch, nothing written)."""
    return _load_config(path, data_root=data_root, storage=storage, study_name=study_name)


def validate(path: PathLike, *, data_root: str | None = None) -> list[str]:
    """Check what ``run`` needs, without training or writing: the summary lines.

    The study file and its search space, the storage URL, earlier studies to warm-start from, every
    split of every task (columns, labels), each model (a local folder's config and tokenizer; a hub id
    on the hub, or marked "not checked offline"), the sampler's and pruner's arguments and the prior's
    candidates file. The first line says ``OK``, or what could not be checked offline.
    """
    from tuneflow.study.preflight import check_study, summary_lines

    # The checks plan_study runs before `run` touches storage, torch-free and reading no hub dataset.
    return summary_lines(check_study(load_config(path, data_root=data_root), file=str(path), thorough=False))


def run(
    study: PathLike | StudyConfig,
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
    """Run (or resume) a study from its file or loaded config; returns the Optuna study.

    ``n_trials`` adds that many trials (default: up to the file's ``budget.n_trials`` in total).
    Progress lines go to stderr (a live block on a terminal) unless ``quiet``. Resuming a study whose
    file changed what its values mean (model, tasks, objective, space, evaluation) raises
    :class:`ConfigError` naming the changed keys, unless ``allow_changes``. The first Ctrl-C (and SIGTERM
    with ``graceful_sigterm``) lets the running trial finish and then raises ``StopRequested`` (a
    ``KeyboardInterrupt``); a second one fails and re-queues the trial (see :mod:`tuneflow.fleet.workers`).
    """
    from tuneflow.observe.watching import watching_hooks
    from tuneflow.study.runner import plan_study, run_study

    if n_trials is not None and n_trials < 1:
        raise ConfigError("must be at least 1", key="n_trials")
    if timeout is not None and timeout <= 0:
        raise ConfigError("must be positive (seconds)", key="timeout")
    plan = plan_study(study, data_root=data_root, storage=storage, study_name=study_name)
    return run_study(plan, n_trials=n_trials, timeout=timeout, hooks=watching_hooks(quiet=quiet), allow_changes=allow_changes,
                     graceful_sigterm=graceful_sigterm)


def open_study(study_file: PathLike | None = None, *, storage: str | None = None, study_name: str | None = None) -> "optuna.Study":
    """An existing study, found through its study file or a storage URL (and name, when it holds several).

    Reads only: a study that is not there raises :class:`ConfigError` and creates nothing (no
    database file, tables or lock file).
    """
    from tuneflow.study.study_record import load_existing

    if study_file is not None and (storage is None or study_name is None):
        config = load_config(study_file)
        storage = storage or config.storage_url()
        study_name = study_name or config.name
    if storage is None:
        raise ConfigError("give --storage URL (or a study file)", key="storage")
    return load_existing(storage, study_name, study_file=None if study_file is None else str(study_file))


def _study(study: "optuna.Study | PathLike") -> "optuna.Study":
    return open_study(study) if isinstance(study, (str, os.PathLike)) else study


def best(study: "optuna.Study | PathLike", *, top_k: int = 10) -> list["FrozenTrial"]:
    """The best complete configurations, best first (the Pareto front for a multi-objective study).

    Identical configurations are one entry: a copy of their first trial with figures pooled over every
    seed (user attr ``pooled_trials`` names them).
    """
    from tuneflow.study.results import ranked_trials

    if top_k < 1:
        raise ConfigError("must be at least 1", key="top_k")
    return ranked_trials(_study(study), top_k)


def verdict(study: "optuna.Study | PathLike") -> "Verdict":
    """Does transfer help? The best transfer configuration against the best target-only one.

    A frozen dataclass: ``outcome`` (helped, hurt, unresolved, not_tried, no_reference), ``summary`` and
    ``recommendation`` in plain words (what `tuneflow run`, `best` and the report print), the two
    sides, the gain with its 95 % interval and p (``gain``, ``interval``, ``p``, ``seeds_needed``),
    and ``per_source``: the same for each source. ``str(verdict)`` is the summary.
    """
    from tuneflow.study.verdict import study_verdict

    return study_verdict(_study(study))


def confirm(
    study_file: PathLike, *, top_k: int = 2, seeds: int = 3, data_root: str | None = None, storage: str | None = None,
    study_name: str | None = None,
) -> dict[str, Any]:
    """Retrain the study's top ``top_k`` configurations and their baselines with ``seeds`` fresh seeds.

    Stores the result in the study (user attr ``tuneflow_confirmation``; no trial is added, so no
    sampler sees it) and returns it; :func:`best` and :func:`export` then order by the confirmed means.
    """
    from tuneflow.study.confirm import confirm as _confirm
    from tuneflow.study.runner import plan_study
    from tuneflow.study.study_record import load_existing

    if top_k < 1:
        raise ConfigError("must be at least 1", key="top_k")
    if seeds < 2:
        raise ConfigError("must be at least 2 (an interval over seeds)", key="seeds")
    config = load_config(study_file, data_root=data_root, storage=storage, study_name=study_name)
    study = load_existing(config.storage_url(), config.name, study_file=str(study_file))  # before the slower checks
    plan = plan_study(study_file, data_root=data_root, storage=storage, study_name=study_name)
    return _confirm(plan, study, top_k=top_k, seeds=seeds)


def export(study: "optuna.Study | PathLike", path: PathLike, *, top_k: int = 1) -> dict[str, Any]:
    """Write the best ``top_k`` configurations as YAML for :func:`train`; returns what was written.

    The verdict's recommendation comes first (:func:`verdict`): the transfer configuration only when
    transfer helped beyond the noise, else the best target-only one.
    """
    from tuneflow.final.export import export_trials, write_export

    if top_k < 1:
        raise ConfigError("must be at least 1", key="top_k")
    data = export_trials(_study(study), top_k)
    write_export(data, Path(path))
    return data


def train(export_path: PathLike, out_dir: PathLike, *, rank: int = 1) -> dict[str, Any]:
    """Final training of an exported configuration; saves model (or adapter) + tokenizer + metrics.json.

    Trains on the target's train + validation rows and scores once on its test split.
    """
    from tuneflow.final.export import load_export
    from tuneflow.final.final_training import train_final

    final = load_export(export_path, rank=rank)
    return train_final(final, Path(out_dir), file=str(export_path))


def report(study: "optuna.Study | PathLike", path: PathLike, *, storage_url: str | None = None,
           artifacts: Path | None = None) -> int:
    """Write one self-contained HTML report of the study; returns the number of plots in it."""
    from tuneflow.observe.report import write_report

    return write_report(_study(study), Path(path), storage_url=storage_url, artifacts=artifacts)
