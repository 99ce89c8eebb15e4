"""Reading a finished (or running) study: ranked trials and a readable table."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState


def is_pareto(study: optuna.Study) -> bool:
    return len(study.directions) > 1


CONFIRMATION_ATTR = "tuneflow_confirmation"  # written by tuneflow.study.confirm


def ranked_trials(study: optuna.Study, top_k: int | None = None, *, confirmed_first: bool = True) -> list[FrozenTrial]:
    """Complete trials, best first; in a Pareto study the front (``best_trials``), by its first target.

    After ``tuneflow confirm`` the confirmed trials come first, in the order of their confirmed
    means (fresh seeds), then the others by their study value.
    """
    if is_pareto(study):
        front = list(study.best_trials)
        reverse = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        front.sort(key=lambda t: t.values[0], reverse=reverse)
        return front[:top_k] if top_k else front
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials.sort(key=lambda t: t.value, reverse=reverse)
    confirmation = study.user_attrs.get(CONFIRMATION_ATTR) if confirmed_first else None
    if confirmation:
        order = {r["trial"]: i for i, r in enumerate(confirmation["results"])}  # already best first
        trials.sort(key=lambda t: order.get(t.number, len(order)))  # stable: the rest keep the study's order
    return trials[:top_k] if top_k else trials


def confirmed(study: optuna.Study) -> dict[int, dict]:
    """Trial number -> its confirmed figures (empty when the study was never confirmed)."""
    record = study.user_attrs.get(CONFIRMATION_ATTR) or {}
    return {r["trial"]: r for r in record.get("results", [])}


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts
