"""Reading a finished (or running) study: ranked trials and a readable table."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState


def is_pareto(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def ranked_trials(study: optuna.Study, top_k: int | None = None) -> list[FrozenTrial]:
    """Complete trials, best first; in a Pareto study the front (``best_trials``), by its first target."""
    if is_pareto(study):
        front = list(study.best_trials)
        reverse = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        front.sort(key=lambda t: t.values[0], reverse=reverse)
        return front[:top_k] if top_k else front
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials.sort(key=lambda t: t.value, reverse=reverse)
    return trials[:top_k] if top_k else trials


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts
