"""Where a trial was pruned, and the value it fell below: the trial user attr ``pruned_at``.

Optuna's pruners answer yes or no. A user looking at a pruned trial wants to know against what:
the median of the other trials at that point of the schedule (median / percentile pruners), the
value that would have promoted it to the next rung (successive halving, Hyperband's bracket), or the
pruner's bound (threshold). :func:`pruned_at` works that out from the study as the pruner saw it,
right after it said yes; ``threshold`` is None where no single value decides (Wilcoxon, a patient
pruner's own patience, a successive-halving bootstrap).

And when a "yes" is waived (:func:`waived_for_arm`): with a pruner that compares trials (all but the
threshold pruner, whose bound the user set), a trial whose arm (target only, a mapping from a source,
a model) has no complete trial yet runs to its end, so every arm the study covers is measured once in
full. Why: a pruner compares a trial with every other trial at the same point of the schedule, and a
transfer arm (a new head after a source stage) can still be behind target-only runs halfway through
its schedule where it may end ahead; pruned there, the arm would never be measured
(benchmarks/search_vs_grid.py saw 3 of 4 sequential coverage trials pruned at half their schedule).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


def pruned_at(study: optuna.Study, trial_id: int, *, step: int, progress: float) -> dict[str, Any]:
    """``{step, progress, value, threshold, pruner}`` for a trial its pruner just pruned at ``step``.

    ``progress``: the share of the trial's own schedule done (all its seeds). ``value``: what the
    pruner compared (a median / percentile pruner compares the trial's best value so far).
    """
    frozen = study._storage.get_trial(trial_id)  # fresh: successive halving wrote its rung just now
    pruner = study.pruner
    value, threshold = _compared(pruner, study, frozen, step)
    return {"step": int(step), "progress": round(float(progress), 4), "value": _number(value),
            "threshold": _number(threshold), "pruner": type(pruner).__name__}


def _number(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _compared(pruner, study: optuna.Study, trial: FrozenTrial, step: int) -> tuple[float | None, float | None]:
    current = trial.intermediate_values.get(step)
    try:
        if isinstance(pruner, optuna.pruners.PercentilePruner):  # the median pruner is one too
            return _percentile(pruner, study, trial, step)
        if isinstance(pruner, optuna.pruners.HyperbandPruner):
            bracket = pruner._get_bracket_id(study, trial)
            return current, _rung_threshold(pruner._pruners[bracket], pruner._create_bracket_study(study, bracket), trial)
        if isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner):
            return current, _rung_threshold(pruner, study, trial)
        if isinstance(pruner, optuna.pruners.PatientPruner) and pruner._wrapped_pruner is not None:
            return _compared(pruner._wrapped_pruner, study, trial, step)
        if isinstance(pruner, optuna.pruners.ThresholdPruner):
            low, high = pruner._lower, pruner._upper
            return current, low if low is not None and current is not None and current < low else high
    except (AttributeError, IndexError, KeyError, ValueError):  # a private detail of Optuna moved: say nothing
        return current, None
    return current, None


def _percentile(pruner, study: optuna.Study, trial: FrozenTrial, step: int) -> tuple[float, float | None]:
    """The trial's best value so far, and the percentile of the complete trials' values at ``step``."""
    maximize = study.direction == StudyDirection.MAXIMIZE
    values = np.asarray(list(trial.intermediate_values.values()), dtype=float)
    best = float(np.nanmax(values) if maximize else np.nanmin(values))
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    others = np.asarray([t.intermediate_values[step] for t in completed if step in t.intermediate_values], dtype=float)
    if len(others) < pruner._n_min_trials or np.isnan(others).all():
        return best, None
    percentile = 100 - pruner._percentile if maximize else pruner._percentile
    return best, float(np.nanpercentile(others, percentile))


def _rung_threshold(pruner, study: optuna.Study, trial: FrozenTrial) -> float | None:
    """The value that would have promoted the trial from the rung it stopped at (Optuna's rule)."""
    rung = 0
    while f"completed_rung_{rung + 1}" in trial.system_attrs:
        rung += 1
    key = f"completed_rung_{rung}"
    if key not in trial.system_attrs:
        return None
    competing = [t.system_attrs[key] for t in study.get_trials(deepcopy=False) if key in t.system_attrs]
    if len(competing) <= pruner._bootstrap_count:
        return None  # pruned because too few trials had reached the rung: no value decided it
    index = max(len(competing) // pruner._reduction_factor - 1, 0)
    competing.sort()
    return float(competing[-(index + 1)] if study.direction == StudyDirection.MAXIMIZE else competing[index])


def waived_for_arm(study: optuna.Study, arm: str) -> bool:
    """Whether a prune of a trial of ``arm`` is waived: its pruner compares trials, and no trial of its arm is complete."""
    pruner = study.pruner
    if isinstance(pruner, optuna.pruners.PatientPruner):
        pruner = pruner._wrapped_pruner
    return not isinstance(pruner, optuna.pruners.ThresholdPruner) and not arm_measured(study, arm)


def arm_measured(study: optuna.Study, arm: str) -> bool:
    """Whether ``study`` holds a complete trial of ``arm`` (the trial user attr ``arm``; see :mod:`tuneflow.study.arms`)."""
    return any(t.user_attrs.get("arm") == arm for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
