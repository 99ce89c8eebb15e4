"""How the layers above watch a study. The study layer calls these hooks and imports none of their code.

The CLI and the Python API build them from :mod:`tuneflow.observe` (progress lines and the live
display, the dashboard's study note, a trial's images); a bare ``StudyHooks()`` runs a study silently.
Optuna's ``study.optimize(callbacks=...)`` is the model: the core never imports what watches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import optuna

    from tuneflow.config.study_config import StudyConfig


class ProgressWatcher(Protocol):
    """Told when the study starts and ends, and (as an Optuna callback) after every trial."""

    def start(self) -> None: ...

    def __call__(self, study: "optuna.Study", trial: "optuna.trial.FrozenTrial") -> None: ...

    def finish(self) -> None: ...


@dataclass(frozen=True)
class StudyHooks:
    # (study, config) once the study is open: e.g. the Markdown note optuna-dashboard shows.
    on_study_opened: Callable[["optuna.Study", "StudyConfig"], None] | None = None
    # (trial number, evaluation index, value=, metrics=, epochs=) after each evaluation of the target.
    on_evaluation: Callable[..., None] | None = None
    # (trial, config, metrics=, history=, fit_stats=, label_names=) when a trial completes.
    on_trial_completed: Callable[..., None] | None = None
    # One line of news that is not about a trial (e.g. the LogME prior's progress).
    on_message: Callable[[str], None] | None = None
    # (study, trials to run or None) -> a watcher for this run.
    progress: Callable[["optuna.Study", int | None], ProgressWatcher] | None = None

    def study_opened(self, study: "optuna.Study", config: "StudyConfig") -> None:
        if self.on_study_opened is not None:
            self.on_study_opened(study, config)

    def evaluation(self, trial_number: int, index: int, **details: Any) -> None:
        if self.on_evaluation is not None:
            self.on_evaluation(trial_number, index, **details)

    def trial_completed(self, trial: "optuna.Trial", config: "StudyConfig", **details: Any) -> None:
        if self.on_trial_completed is not None:
            self.on_trial_completed(trial, config, **details)
