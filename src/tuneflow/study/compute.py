"""Training compute in training samples: what each trial spent, what pruning saved, what the study spent.

Seconds are noisy (other jobs, a warm cache, the device); the number of training examples a trial
processed is not, so it is the unit a study's compute is counted in (the benchmark compares tools at
equal samples). A sample is one training row through one forward and backward pass: a source stage's
rows count, a two-task step counts both batches, and a target-only baseline a trial trained counts
for that trial (a baseline it found cached cost nothing).

Trial user attrs: ``training_samples`` (every trial, pruned and failed ones too) and, for pruned
trials, ``training_samples_saved``: what the rest of its schedule would have spent (the rest of the
stage it stopped in, and every later seed; baselines it would have needed are not counted, since
another trial may have trained them already). :func:`study_compute` sums them over the study.
"""

from __future__ import annotations

from typing import Any

from optuna.trial import TrialState

from tuneflow.study.results import CONFIRMATION_ATTR


def stage_samples(contexts) -> int:
    """Training samples of every stage of every seed's run."""
    return sum(stats.examples_seen for ctx in contexts for stats in ctx.fit_stats)


def baseline_samples(study_attrs: dict[str, Any], attrs: dict[str, Any], *, trial_number: int, target_rows: int, epochs: int,
                     existed: set[str] = frozenset()) -> int:
    """Samples of the target-only baselines this trial trained itself (cached ones cost it nothing).

    ``existed``: the baseline attrs the study held before the trial's baselines ran; they were not its work
    (confirmation runs every configuration under one trial number, so the number alone cannot tell).
    """
    names = attrs.get("transfer_baselines") or ([attrs["transfer_baseline"]] if attrs.get("transfer_baseline") else [])
    total = 0
    for name in dict.fromkeys(names):
        if name in existed:
            continue
        record = study_attrs.get(name) or {}
        if record.get("trained_by") == "baseline run" and record.get("trial") == trial_number:
            # A direct run sees every target row once per epoch.
            total += int(record.get("training_samples", target_rows * epochs))
    return total


def samples_saved(contexts, *, seeds: int) -> int:
    """What a pruned trial's schedule would still have spent: the rest of the stage it stopped in and all of
    every seed it did not start (each as long as the seed it stopped in)."""
    if not contexts or not contexts[-1].fit_stats:
        return 0
    current = contexts[-1]
    stage = current.fit_stats[-1]
    earlier_stages = sum(s.examples_seen for s in current.fit_stats[:-1])  # e.g. the source stage of this seed
    later_seeds = seeds - len(contexts)
    return max(stage.planned_examples - stage.examples_seen, 0) + later_seeds * (earlier_stages + stage.planned_examples)


def study_compute(study) -> dict[str, Any]:
    """Training samples spent by the study's COMPLETE, PRUNED and FAIL trials, saved by pruning, and spent
    by confirmation (``tuneflow_confirmation``); ``total`` = trials + confirmation."""
    spent = {"complete": 0, "pruned": 0, "failed": 0}
    keys = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
    saved = 0
    unknown = 0  # finished trials recorded before samples were counted
    for trial in study.get_trials(deepcopy=False, states=tuple(keys)):
        samples = trial.user_attrs.get("training_samples")
        if samples is None:
            unknown += 1
            continue
        spent[keys[trial.state]] += int(samples)
        saved += int(trial.user_attrs.get("training_samples_saved") or 0)
    confirmation = int((study.user_attrs.get(CONFIRMATION_ATTR) or {}).get("training_samples") or 0)
    trials = sum(spent.values())
    return {**spent, "trials": trials, "saved_by_pruning": saved, "confirmation": confirmation,
            "total": trials + confirmation, "trials_without_count": unknown}
