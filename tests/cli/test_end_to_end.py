"""`tuneflow run` -> `best` -> `export` -> `train` on a real SQLite file with the tiny BERT."""

from __future__ import annotations

import json
import math

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from worker_processes import FAST

REQUIRED_ATTRS = {
    "accuracy", "precision", "recall", "f1", "per_class_f1", "confusion_matrix", "training_seconds",
    "samples_per_second", "trainable_parameters", "total_parameters", "device", "config", "seed", "params", "history",
}


def _study(path, name="tiny"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path.parent / (name + '.db')}")


def test_run_records_trials_and_user_attrs(finished_study):
    # The shared finished study (tests/finished_study.py): 3 complete trials over both mappings and methods.
    assert "complete 3, pruned 0, failed 0" in (finished_study.parent / "first-run.log").read_text()  # progress lines count states
    study = _study(finished_study)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 3 and {(t.params["mapping"], t.params["method"]) for t in trials} >= {("direct", "full"), ("sequential", "lora")}
    for trial in trials:
        assert REQUIRED_ATTRS <= set(trial.user_attrs), REQUIRED_ATTRS - set(trial.user_attrs)
        attrs = trial.user_attrs
        assert 0.0 <= attrs["accuracy"] <= 1.0
        # The objective is the normalised weighted mean of f1 and accuracy (weights 1 and 1).
        assert trial.value == pytest.approx((attrs["f1"] + attrs["accuracy"]) / 2)
        assert len(attrs["confusion_matrix"]) == 3 and set(attrs["per_class_f1"]) == {"sport", "money", "science"}
        assert attrs["seed"] == trial.number  # study seed 0 + trial number
        assert attrs["device"] == "cpu"
        # 4 reports by default, whatever the epoch count, at distinct optimizer steps: a schedule of fewer steps
        # (trial 1: 1 epoch of 32-row batches) reports once per step.
        rows, params = attrs["config"]["target_train_rows"], attrs["params"]
        schedule = math.ceil(rows / params["batch_size"]) * params["epochs"]
        assert len(attrs["history"]) == min(4, schedule) and schedule >= 3
        steps = sorted(trial.intermediate_values)  # the pruner's step: percent of the schedule done (whole optimizer steps)
        assert len(steps) == min(4, schedule) and steps[-1] == 100 and all(s % 25 == 0 for s in steps)
        assert 0 < attrs["trainable_parameters"] <= attrs["total_parameters"]
    assert study.user_attrs["tuneflow_config"]["target"]["name"] == "topics"


def test_resume_adds_n_trials(make_study, run_cli):
    study_file = make_study(budget={"n_trials": 1}, search_space={"parameters": FAST})  # cheap trials: counting is the point
    assert run_cli("run", study_file)[0] == 0
    assert run_cli("run", study_file)[0] == 0  # budget reached: runs nothing more
    assert len(_study(study_file).trials) == 1
    assert run_cli("run", study_file, "--n-trials", 2)[0] == 0
    assert len(_study(study_file).trials) == 3


def test_learning_happens(make_study, run_cli):
    """A full fine-tune with a sane learning rate beats chance (1/3) on the easy synthetic task."""
    space = {"parameters": {
        "learning_rate": {"type": "fixed", "value": 1e-2},
        "epochs": {"type": "fixed", "value": 3},
        "batch_size": {"type": "fixed", "value": 16},
    }}
    study_file = make_study(search_space=space, budget={"n_trials": 1})
    assert run_cli("run", study_file)[0] == 0
    assert _study(study_file).best_trial.user_attrs["accuracy"] > 0.6


def test_pruner_that_must_prune_prunes(make_study, run_cli):
    # Values are at most 1.0, so a threshold pruner with lower=1.1 prunes at the first report.
    study_file = make_study(pruner={"name": "threshold", "kwargs": {"lower": 1.1}}, budget={"n_trials": 2},
                            search_space={"parameters": FAST})
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    trials = _study(study_file).trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    assert all("pruned at 25% of its schedule (evaluation 0" in t.user_attrs["prune_reason"] for t in trials)
    assert all(len(t.intermediate_values) == 1 for t in trials)


def test_a_pruned_trial_counts_the_training_it_did(make_study, run_cli):
    # A direct trial pruned at its first evaluation: the epoch before it is still the trial's cost
    # (it used to be lost with the interrupted fit, leaving training_seconds at 0).
    space = {"parameters": {"mapping": {"type": "fixed", "value": "direct"}, "epochs": {"type": "fixed", "value": 2}}}
    study_file = make_study(search_space=space, pruner={"name": "threshold", "kwargs": {"lower": 1.1}}, budget={"n_trials": 1})
    assert run_cli("run", study_file)[0] == 0
    (trial,) = _study(study_file).trials
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["training_seconds"] > 0 and trial.user_attrs["samples_per_second"] > 0


def test_failing_trial_is_recorded_and_study_goes_on(make_study, run_cli):
    # Keeping the 2-label source head on a 3-label target cannot work: those trials fail with a reason.
    space = {"parameters": {
        "epochs": {"type": "fixed", "value": 1},
        "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
        "head": {"type": "fixed", "value": "keep", "when": {"mapping": "sequential"}},
    }}
    study_file = make_study(search_space=space, budget={"n_trials": 4}, sampler={"name": "grid"})
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    trials = _study(study_file).trials
    by_mapping = {t.params["mapping"]: t for t in trials}
    assert by_mapping["direct"].state == TrialState.COMPLETE
    failed = by_mapping["sequential"]
    assert failed.state == TrialState.FAIL
    assert "cannot keep the source head" in failed.user_attrs["fail_reason"]


def test_best_export_train_round_trip(finished_study, run_cli, tmp_path):
    code, out, _ = run_cli("best", finished_study)
    assert code == 0 and "accuracy" in out and out.count("\n") >= 4

    storage = f"sqlite:///{finished_study.parent / 'tiny.db'}"
    exported = tmp_path / "best.yaml"
    code, out, err = run_cli("export", "--storage", storage, "--study-name", "tiny", "--top-k", 2, "-o", exported)
    assert code == 0, err
    data = yaml.safe_load(exported.read_text())
    assert len(data["configs"]) == 2 and data["configs"][0]["rank"] == 1
    best = _study(finished_study).best_trial
    assert data["configs"][0]["trial"] == best.number
    assert data["configs"][0]["params"]["learning_rate"] == best.params["learning_rate"]

    out_dir = tmp_path / "final"
    code, out, err = run_cli("train", exported, "-o", out_dir)
    assert code == 0, err
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert {"accuracy", "precision", "recall", "f1"} <= set(metrics)
    assert metrics["split"] == "test" and metrics["test_rows"] == 30  # the finished study's test file
    assert (out_dir / "tokenizer_config.json").exists()
    weights = list(out_dir.glob("*.safetensors"))
    assert weights, "no model or adapter weights saved"

    # The saved model loads back with plain transformers / PEFT.
    if metrics["saved_as"] == "full_model":
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(out_dir)
        assert model.config.num_labels == 3
    else:
        assert (out_dir / "adapter_config.json").exists()


def test_evaluation_every_n_steps_reports_mid_epoch(make_study, run_cli):
    space = {"parameters": {"epochs": {"type": "fixed", "value": 1}, "batch_size": {"type": "fixed", "value": 16}}}
    study_file = make_study(search_space=space, budget={"n_trials": 1}, evaluation={"batch_size": 64, "every_n_steps": 2})
    assert run_cli("run", study_file)[0] == 0
    trial = _study(study_file).trials[0]
    steps = -(-trial.user_attrs["config"]["target_train_rows"] // 16)  # ceil: optimizer steps in the epoch
    expected = len([s for s in range(1, steps + 1) if s % 2 == 0 and s != steps]) + 1
    assert len(trial.intermediate_values) == expected == len(trial.user_attrs["history"])
