"""Several seeds per configuration, a paired transfer gain with its interval, comparable pruning steps, costs."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from tuneflow.config.errors import ConfigError
from tuneflow.config.schema import parse_dataclass
from tuneflow.config.study_config import ObjectiveConfig
from tuneflow.study.objective import trial_seeds
from tuneflow.transfer.gain import BASELINE_PREFIX, negative_transfer_evidence, unpack_predictions
from tuneflow.transfer.gain_stats import (
    Interval,
    bootstrap_interval,
    clip_gain,
    t_interval,
    weighted_scores,
)


def _study(study_file, name="tiny"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_file.parent / (name + '.db')}")


def _space(mapping="sequential", epochs=1, method="full") -> dict:
    return {"parameters": {
        "epochs": {"type": "fixed", "value": epochs},
        "learning_rate": {"type": "fixed", "value": 3e-3},
        "batch_size": {"type": "fixed", "value": 32},
        "method": {"type": "fixed", "value": method},
        "mapping": {"type": "fixed", "value": mapping},
    }}


def test_k_seeds_give_a_mean_value_a_paired_gain_and_a_running_mean_to_the_pruner(make_study, run_cli):
    study_file = make_study(search_space=_space(), budget={"n_trials": 1}, objective={"weights": {"f1": 1.0}, "seeds": 2})
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = _study(study_file)
    (trial,) = study.trials
    a = trial.user_attrs
    assert trial.state == TrialState.COMPLETE
    assert a["seeds"] == trial_seeds(0, 2) and a["seeds"][0] == a["seed"] == 0 and len(set(a["seeds"])) == 2
    assert len(a["seed_values"]) == 2 and a["value_mean"] == pytest.approx(np.mean(a["seed_values"]))
    assert a["value_sd"] == pytest.approx(np.std(a["seed_values"], ddof=1))
    assert trial.value == pytest.approx(a["value_mean"]) == pytest.approx(a["f1"])
    # Four evaluations per seed (evaluation.per_schedule); the pruner saw seed 0's values, then at each same
    # point of seed 1's schedule the mean of both seeds there.
    values = [h["value"] for h in a["history"]]
    assert [h["seed"] for h in a["history"]] == [a["seeds"][0]] * 4 + [a["seeds"][1]] * 4
    expected = {25 * (k + 1): v for k, v in enumerate(values[:4])}
    expected.update({100 + 25 * (k + 1): np.mean([values[k], values[4 + k]]) for k in range(4)})  # + 100 per seed
    assert trial.intermediate_values == pytest.approx(expected)
    # A paired baseline per seed, each trained with that seed; the gain is the mean paired difference.
    baselines = {k: v for k, v in study.user_attrs.items() if k.startswith(BASELINE_PREFIX)}
    assert sorted(r["seed"] for r in baselines.values()) == sorted(a["seeds"]) and study.user_attrs["transfer_baseline_runs"] == 2
    by_seed = {r["seed"]: r for r in baselines.values()}
    differences = [v - by_seed[s]["metrics"]["f1"] for s, v in zip(a["seeds"], a["seed_values"])]
    assert a["transfer_gain_score"] == pytest.approx(np.mean(differences))
    expected = t_interval(differences)
    low, high, _ = clip_gain(expected.low, expected.high)  # two seeds: one degree of freedom, cut to [-1, 1]
    assert a["transfer_gain_interval"] == "t" and a["transfer_gain_ci"] == pytest.approx([low, high])
    assert a["transfer_gain_p"] == pytest.approx(expected.p)
    assert a["negative_transfer"] == (a["transfer_gain_ci"][1] < 0.0)
    # Costs count the source stage and the two baselines, apart and in total.
    assert a["training_seconds"] == pytest.approx(
        a["training_seconds_target"] + a["training_seconds_source"] + a["training_seconds_baseline"], abs=2e-3)
    assert a["training_seconds_baseline"] == pytest.approx(sum(r["training_seconds"] for r in baselines.values()), abs=2e-3)
    assert a["trained_parameters"] == a["trained_parameters_source"] + a["trained_parameters_target"] + a["trained_parameters_baseline"]


def test_one_seed_gain_has_a_bootstrap_interval_over_validation_rows(make_study, run_cli):
    study_file = make_study(search_space=_space(method="head_only"), budget={"n_trials": 1}, objective={"weights": {"f1": 1.0}})
    assert run_cli("run", study_file)[0] == 0
    study = _study(study_file)
    a = study.trials[0].user_attrs
    (record,) = (v for k, v in study.user_attrs.items() if k.startswith(BASELINE_PREFIX))
    assert a["transfer_gain_interval"] == "bootstrap" and len(unpack_predictions(record["predictions"])) == a["config"]["target_validation_rows"]
    low, high = a["transfer_gain_ci"]
    assert low <= a["transfer_gain_score"] <= high and 0.0 <= a["transfer_gain_p"] <= 1.0
    assert a["negative_transfer_evidence"] in {"significant", "inconclusive", "none"}
    # head_only + sequential: the source stage trained the whole encoder, the deployed model only its head.
    assert a["trained_parameters_source"] > 10 * a["trainable_parameters"] == 10 * a["trained_parameters_target"]


def test_paired_baseline_with_one_seed_trains_each_trials_baseline_with_its_own_seed(make_study, run_cli):
    study_file = make_study(search_space=_space(method="head_only"), budget={"n_trials": 2},
                            objective={"weights": {"f1": 1.0}, "paired_baseline": True})
    assert run_cli("run", study_file)[0] == 0
    study = _study(study_file)
    baselines = {k: v for k, v in study.user_attrs.items() if k.startswith(BASELINE_PREFIX)}
    trials = study.trials
    # Same core configuration in both trials: shared, they would reuse one baseline; paired, each has its own seed's.
    assert sorted(r["seed"] for r in baselines.values()) == sorted(t.user_attrs["seed"] for t in trials) == [0, 1]
    assert study.user_attrs["transfer_baseline_runs"] == 2
    for t in trials:
        a = t.user_attrs
        assert a["transfer_baseline_paired"] is True and baselines[a["transfer_baseline"]]["seed"] == a["seed"]
        assert a["transfer_gain_interval"] == "bootstrap"  # one seed: the interval is over validation rows


@pytest.mark.parametrize("per_schedule, steps", [
    (None, [25, 50, 75, 100, 125, 150, 175, 200]),  # the default: 4 evaluations per schedule, whatever the epochs
    ("epoch", [50, 100, 150, 200]),  # two epochs per seed: the halfway and the end of each seed's schedule
])
def test_schedule_steps_meet_at_the_same_share_of_the_schedule(make_study, run_cli, per_schedule, steps):
    evaluation = {"batch_size": 64, **({"per_schedule": per_schedule} if per_schedule else {})}
    study_file = make_study(search_space=_space(mapping="direct", epochs=2), budget={"n_trials": 1}, evaluation=evaluation,
                            objective={"report_step": "schedule", "seeds": 2, "transfer_baseline": False})
    assert run_cli("run", study_file)[0] == 0
    trial = _study(study_file).trials[0]
    # Seed 1's steps come after seed 0's (+ 100).
    assert sorted(trial.intermediate_values) == steps
    assert [h["progress"] for h in trial.user_attrs["history"]] == [s / 100 - (s > 100) for s in steps]


def test_value_best_takes_the_best_evaluation_and_says_where(make_study, run_cli):
    study_file = make_study(search_space=_space(mapping="direct", epochs=2), budget={"n_trials": 1},
                            objective={"value": "best", "weights": {"f1": 1.0}, "transfer_baseline": False})
    assert run_cli("run", study_file)[0] == 0
    trial = _study(study_file).trials[0]
    values = [h["value"] for h in trial.user_attrs["history"]]
    chosen = trial.user_attrs["chosen_evaluation"]
    assert chosen["index"] == int(np.argmax(values)) and chosen["rule"] == "best"
    assert trial.value == pytest.approx(max(values))


def test_weighted_scores_match_sklearn_and_the_bootstrap_is_paired():
    from tuneflow.training.metrics import classification_metrics

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 80)
    ours, theirs = labels.copy(), rng.integers(0, 3, 80)
    ours[:8] = (ours[:8] + 1) % 3
    weights = {"f1": 0.5, "accuracy": 0.2, "precision": 0.2, "recall": 0.1}
    m = classification_metrics(labels, theirs, ("a", "b", "c"))
    assert weighted_scores(labels, theirs, 3, weights)[0] == pytest.approx(sum(w * m[k] for k, w in weights.items()))
    better = bootstrap_interval(labels, ours, theirs, num_labels=3, weights=weights, seed=0)
    assert better.low > 0 and better.p < 0.01
    same = bootstrap_interval(labels, theirs, theirs, num_labels=3, weights=weights, seed=0)
    assert (same.low, same.high, same.mean) == (0.0, 0.0, 0.0)


def test_negative_transfer_needs_the_whole_interval_below_the_tolerance():
    assert negative_transfer_evidence(Interval(-0.05, -0.08, -0.02, 0.01, "t"), 0.0) == "significant"
    assert negative_transfer_evidence(Interval(-0.05, -0.08, -0.02, 0.01, "t"), 0.03) == "inconclusive"
    assert negative_transfer_evidence(Interval(-0.05, -0.12, 0.02, 0.2, "t"), 0.0) == "inconclusive"
    assert negative_transfer_evidence(Interval(0.05, 0.01, 0.09, 0.01, "t"), 0.0) == "none"
    assert negative_transfer_evidence(None, 0.0) == "inconclusive"


@pytest.mark.parametrize("objective, key", [({"seeds": 0}, "seeds"), ({"seeds": True}, "seeds"),
                                            ({"value": "mean"}, "value"), ({"report_step": "epoch"}, "report_step")])
def test_seed_and_step_keys_are_checked(objective, key):
    with pytest.raises(ConfigError) as err:
        parse_dataclass(ObjectiveConfig, objective)
    assert err.value.key == key
