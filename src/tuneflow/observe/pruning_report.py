"""The report's "Pruned and failed trials": where each stopped, against what threshold, why; what pruning saved.

A pruned trial records ``pruned_at`` (step, share of its schedule, the value the pruner saw, the
threshold it fell below, the pruner) and ``training_samples_saved`` (what the rest of its schedule
would have trained); a failed one its ``fail_reason``. Trials recorded before those attrs existed
show their last reported step and value.
"""

from __future__ import annotations

import html
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuneflow.study.arms import arm_label

DASH = "—"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _where(trial: FrozenTrial) -> tuple[str, str, str]:
    """(where: share of the schedule and step, the value the pruner saw, the threshold and pruner)."""
    at = trial.user_attrs.get("pruned_at")
    if at:
        progress = at.get("progress")
        where = (f"{100 * progress:.0f}% " if progress is not None else "") + f"(step {at.get('step', '?')})"
        value = DASH if at.get("value") is None else f"{at['value']:.4f}"
        threshold = DASH if at.get("threshold") is None else f"{at['threshold']:.4f}"
        return where, value, threshold + (f" ({at['pruner']})" if at.get("pruner") else "")
    if trial.intermediate_values:
        step = max(trial.intermediate_values)
        return f"step {step}", f"{trial.intermediate_values[step]:.4f}", DASH
    return DASH, DASH, DASH


def pruned_rows(study: optuna.Study) -> list[list[str]]:
    """One row per pruned or failed trial: trial, arm, state, where, value, threshold, reason (escaped HTML)."""
    rows = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.PRUNED, TrialState.FAIL)):
        attrs = trial.user_attrs
        pruned = trial.state == TrialState.PRUNED
        where, value, threshold = _where(trial) if pruned else (DASH, DASH, DASH)
        reason = attrs.get("prune_reason" if pruned else "fail_reason") or DASH
        saved = attrs.get("training_samples_saved")
        rows.append([str(trial.number), _e(arm_label(trial)), "pruned" if pruned else "failed", _e(where), value, _e(threshold),
                     DASH if saved is None else f"{int(saved):,}", _e(reason)])
    return rows


def compute_sentence(study: optuna.Study) -> str:
    """What the study trained, in training samples, and what pruning spared it."""
    from tuneflow.study.compute import study_compute

    compute = study_compute(study)
    pruned_total = compute["pruned"] + compute["saved_by_pruning"]
    share = f" ({100 * compute['saved_by_pruning'] / pruned_total:.0f}% of what the pruned trials' full schedules would have trained)" if pruned_total else ""
    unknown = f"; {compute['trials_without_count']} trial(s) recorded before samples were counted" if compute["trials_without_count"] else ""
    return (f"Compute, in training samples (rows through one forward and backward pass): the trials trained {compute['trials']:,} "
            f"(complete {compute['complete']:,}, pruned {compute['pruned']:,}, failed {compute['failed']:,}), confirmation "
            f"{compute['confirmation']:,}; pruning saved {compute['saved_by_pruning']:,}{share}{unknown}.")


def pruned_section(study: optuna.Study, *, table: Callable[..., str], sentence: Callable[[str], str]) -> str:
    rows = pruned_rows(study)
    out = sentence(compute_sentence(study))
    if not rows:
        return out + sentence("No trial was pruned or failed.")
    header = ["trial", "arm", "state", "where it stopped (share of schedule)", "value", "threshold (pruner)", "samples saved", "reason"]
    return out + table(header, rows, left=3)
