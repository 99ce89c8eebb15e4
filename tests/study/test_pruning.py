"""Multi-fidelity that saves compute: where a trial was pruned, the value it fell below, and the samples saved."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from tuneflow.study.compute import study_compute
from tuneflow.study.pruning import pruned_at


def _study(pruner) -> optuna.Study:
    return optuna.create_study(direction="maximize", pruner=pruner)


def _prune(study: optuna.Study, values: dict[int, float]) -> tuple[bool, optuna.Trial]:
    trial = study.ask()
    for step, value in values.items():
        trial.report(value, step)
    return trial.should_prune(), trial


def test_median_pruner_threshold_is_the_median_of_the_complete_trials_at_that_step():
    study = _study(optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    for value in (0.6, 0.7, 0.8):
        study.add_trial(create_trial(value=value, intermediate_values={25: value, 100: value}))
    pruned, trial = _prune(study, {25: 0.4})
    assert pruned
    assert pruned_at(study, trial._trial_id, step=25, progress=0.25) == {
        "step": 25, "progress": 0.25, "value": 0.4, "threshold": pytest.approx(0.7), "pruner": "MedianPruner"}


def test_percentile_pruner_compares_the_best_value_so_far():
    study = _study(optuna.pruners.PercentilePruner(25.0, n_startup_trials=1))
    for value in (0.2, 0.6, 0.7, 0.8):
        study.add_trial(create_trial(value=value, intermediate_values={25: value, 50: value}))
    pruned, trial = _prune(study, {25: 0.5, 50: 0.3})
    record = pruned_at(study, trial._trial_id, step=50, progress=0.5)
    # Kept: the top 25 % at step 50 are >= 0.725; the trial's best so far (0.5) is below it.
    assert pruned and record["value"] == 0.5 and record["threshold"] == pytest.approx(0.725)


def test_successive_halving_threshold_is_the_value_that_would_have_promoted_the_trial():
    study = _study(optuna.pruners.SuccessiveHalvingPruner(min_resource=25, reduction_factor=2))
    for value in (0.9, 0.8):
        pruned, trial = _prune(study, {25: value})
        study.tell(trial, value)
    pruned, trial = _prune(study, {25: 0.1})
    # Rung 0 holds 0.9, 0.8 and 0.1: only the best 1/2 (one value, 0.9) is promoted.
    assert pruned
    assert pruned_at(study, trial._trial_id, step=25, progress=0.25)["threshold"] == pytest.approx(0.9)


def test_a_patient_pruner_reports_its_wrapped_pruners_threshold_and_wilcoxon_none():
    study = _study(optuna.pruners.PatientPruner(optuna.pruners.MedianPruner(n_startup_trials=1), patience=0))
    study.add_trial(create_trial(value=0.9, intermediate_values={25: 0.9, 50: 0.9}))
    pruned, trial = _prune(study, {25: 0.3, 50: 0.2})
    assert pruned and pruned_at(study, trial._trial_id, step=50, progress=0.5)["threshold"] == pytest.approx(0.9)
    study = _study(optuna.pruners.ThresholdPruner(lower=0.5))
    pruned, trial = _prune(study, {25: 0.3})
    assert pruned and pruned_at(study, trial._trial_id, step=25, progress=0.25)["threshold"] == 0.5


def test_a_one_epoch_trial_is_pruned_at_a_quarter_of_its_epoch_and_the_rest_counts_as_saved(make_study, run_cli):
    # A pruner that stops every trial at its first report: with 4 evaluations per schedule (the default) that
    # is a quarter into the trial's only epoch, not after it.
    space = {"parameters": {"epochs": {"type": "fixed", "value": 1}, "learning_rate": {"type": "fixed", "value": 3e-3},
                            "batch_size": {"type": "fixed", "value": 8}, "mapping": {"type": "fixed", "value": "direct"}}}
    study_file = make_study(search_space=space, budget={"n_trials": 1}, pruner={"name": "threshold", "kwargs": {"lower": 1.1}})
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}")
    (trial,) = study.trials
    a = trial.user_attrs
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [25]
    # 102 training rows: 13 steps of 8 in the epoch; the first of 4 evaluations comes after step 4 (the pruner's
    # step is its nominal share, 25, so trials with other step counts meet it there; progress is the actual share).
    assert a["pruned_at"] == {"step": 25, "progress": round(4 / 13, 4), "value": trial.intermediate_values[25],
                              "threshold": 1.1, "pruner": "ThresholdPruner"}
    train_rows = a["config"]["target_train_rows"]
    assert a["training_samples"] == 4 * 8 and a["training_samples"] + a["training_samples_saved"] == train_rows
    assert "pruned at 31% of its schedule (evaluation 0, seed 0)" in a["prune_reason"] and "< 1.1000 (ThresholdPruner)" in a["prune_reason"]
    compute = study_compute(study)
    assert compute["pruned"] == 32 and compute["saved_by_pruning"] == train_rows - 32 and compute["total"] == 32


def test_the_first_trial_of_an_arm_runs_to_its_end_and_later_ones_can_be_pruned(make_study, run_cli):
    # A median pruner judges a transfer trial against target-only ones. The first sequential trial (a rate
    # too small to learn anything) falls below the learned target-only trial, but its arm has no complete
    # trial yet: it runs to its end, saying so. The second one of that arm is pruned.
    space = {"parameters": {"epochs": {"type": "fixed", "value": 3}, "batch_size": {"type": "fixed", "value": 16},
                            "learning_rate": {"type": "categorical", "choices": [1e-2, 1e-12, 2e-12]},
                            "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
                            "source_epochs": {"type": "fixed", "value": 1, "when": {"mapping": "sequential"}}}}
    study_file = make_study(search_space=space, budget={"n_trials": 3}, evaluation={"per_schedule": 1},
                            objective={"transfer_baseline": False}, coverage={"enabled": False},
                            pruner={"name": "median", "kwargs": {"n_startup_trials": 1, "n_warmup_steps": 0}})
    queue = optuna.create_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}", direction="maximize")
    for mapping, rate in (("direct", 1e-2), ("sequential", 1e-12), ("sequential", 2e-12)):
        queue.enqueue_trial({"mapping": mapping, "learning_rate": rate})
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    first, waived, pruned = optuna.load_study(study_name="tiny", storage=queue._storage).trials
    assert first.state == TrialState.COMPLETE and waived.value < first.value  # it was behind: a median pruner says yes
    assert waived.state == TrialState.COMPLETE
    assert waived.user_attrs["pruning_waived"] == {"step": 100, "reason": "first full measurement of its arm (sequential from sentiment)"}
    assert pruned.state == TrialState.PRUNED and "pruning_waived" not in pruned.user_attrs
