"""Transfer gain against a cached target-only baseline, negative transfer, and gain / cost objective terms."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from tuneflow.config.study_config import ObjectiveConfig
from tuneflow.config.errors import ConfigError
from tuneflow.config.schema import parse_dataclass
from tuneflow.transfer.gain import BASELINE_PREFIX, RUNS_ATTR, SCORE, is_negative_transfer

METRICS = ("accuracy", "precision", "recall", "f1")


def _study(study_file, name="tiny"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_file.parent / (name + '.db')}")


def _space(mapping) -> dict:
    # Core hyperparameters fixed, so every trial shares one baseline key.
    return {"parameters": {
        "epochs": {"type": "fixed", "value": 1},
        "learning_rate": {"type": "fixed", "value": 1e-3},
        "batch_size": {"type": "fixed", "value": 32},
        "mapping": {"type": "fixed", "value": mapping},
    }}


def _baselines(study) -> dict:
    return {k: v for k, v in study.user_attrs.items() if k.startswith(BASELINE_PREFIX)}


def test_baseline_is_trained_once_per_distinct_key(make_study, run_cli):
    study_file = make_study(search_space=_space("sequential"), budget={"n_trials": 3},
                            objective={"weights": {"f1": 1.0}, "negative_transfer_tolerance": 0.01})
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = _study(study_file)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    baselines = _baselines(study)
    assert len(baselines) == 1 and study.user_attrs[RUNS_ATTR] == 1
    (attr, record), = baselines.items()
    assert record["trained_by"] == "baseline run" and record["trial"] == 0 and record["seed"] == 0
    for trial in trials:
        attrs = trial.user_attrs
        assert attrs["transfer_baseline"] == attr
        for metric in METRICS:
            expected = attrs[metric] - record["metrics"][metric]
            assert attrs["transfer_gain"][metric] == pytest.approx(expected)
            assert attrs[f"transfer_gain_{metric}"] == pytest.approx(expected)
        assert attrs["transfer_gain_score"] == pytest.approx(attrs["transfer_gain"]["f1"])  # weights {f1: 1}
        assert attrs["negative_transfer"] == (attrs["transfer_gain_score"] < -0.01)
        # The trial's own cost excludes the baseline run.
        assert 0.0 <= attrs["source_retention"] <= 1.0 and attrs["training_seconds"] > 0


def test_a_direct_trial_is_its_own_baseline_and_is_reused(make_study, run_cli):
    first = make_study(search_space=_space("direct"), budget={"n_trials": 1}, objective={"transfer_baseline": True})
    code, _, err = run_cli("run", first)
    assert code == 0, err
    study = _study(first)
    direct = study.trials[0].user_attrs
    assert direct["transfer_gain"] == {m: 0.0 for m in (*METRICS, SCORE)} and direct["negative_transfer"] is False
    (record,) = _baselines(study).values()
    assert record["trained_by"] == "direct trial" and record["metrics"]["f1"] == direct["f1"]

    # Same study, same core parameters, now sequential: the cached direct trial is the baseline.
    second = make_study(search_space=_space("sequential"), budget={"n_trials": 2})
    code, _, err = run_cli("run", second, "--allow-changes")  # the study contract: mapping changed on purpose
    assert code == 0, err
    study = _study(second)
    assert len(_baselines(study)) == 1 and RUNS_ATTR not in study.user_attrs
    sequential = study.trials[1].user_attrs
    assert sequential["transfer_gain_f1"] == pytest.approx(sequential["f1"] - direct["f1"])

    # `best` shows the baseline trial as such, and the sequential trial's signed gain.
    code, out, err = run_cli("best", second)
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split() and line.split()[0].isdigit()}
    assert rows["0"][-1] == "base"
    assert rows["1"][-1] == f"{sequential['transfer_gain_score']:+.4f}"


def test_gain_and_cost_terms_make_the_value(make_study, run_cli):
    weights = {"f1": 1.0, "transfer_gain": 1.0, "training_seconds": -0.5, "trainable_parameters_millions": -0.5}
    study_file = make_study(search_space=_space("sequential"), budget={"n_trials": 1}, objective={"weights": weights})
    assert run_cli("run", study_file)[0] == 0
    trial = _study(study_file).trials[0]
    a = trial.user_attrs
    expected = (a["f1"] + a["transfer_gain_score"] - 0.5 * a["training_seconds"] - 0.5 * a["trainable_parameters"] / 1e6) / 3.0
    assert trial.value == pytest.approx(expected)
    assert a["history"][-1]["value"] == pytest.approx(a["f1"])  # reports (pruning) see the metric score only


def test_no_baseline_when_switched_off(make_study, run_cli):
    study_file = make_study(search_space=_space("sequential"), budget={"n_trials": 1}, objective={"transfer_baseline": False})
    assert run_cli("run", study_file)[0] == 0
    study = _study(study_file)
    assert not _baselines(study) and "transfer_gain" not in study.trials[0].user_attrs


def test_negative_transfer_flag():
    assert is_negative_transfer(-0.02, 0.0) and not is_negative_transfer(0.0, 0.0)
    assert not is_negative_transfer(-0.02, 0.05) and is_negative_transfer(-0.06, 0.05)


@pytest.mark.parametrize(
    "objective, key",
    [
        ({"weights": {"f1": -1.0}}, "weights.f1"),
        ({"weights": {"transfer_gain": -1.0, "f1": 1.0}}, "weights.transfer_gain"),
        ({"weights": {"training_seconds": -1.0}}, "weights"),  # no metric left for the reports
        ({"weights": {"f1": 1.0, "speed": 1.0}}, "weights.speed"),
        ({"weights": {"f1": 1.0, "transfer_gain": 1.0}, "transfer_baseline": False}, "transfer_baseline"),
        ({"negative_transfer_tolerance": -0.1}, "negative_transfer_tolerance"),
    ],
)
def test_objective_config_errors(objective, key):
    with pytest.raises(ConfigError) as err:
        parse_dataclass(ObjectiveConfig, objective)
    assert err.value.key == key


def test_cost_weights_may_be_negative_and_normalise_by_absolute_sum():
    config = parse_dataclass(ObjectiveConfig, {"weights": {"f1": 3.0, "training_seconds": -1.0}})
    assert config.normalised_weights() == {"f1": 0.75, "training_seconds": -0.25}
    assert config.metric_weights() == {"f1": 1.0}


def test_predictions_are_kept_packed_small_enough_for_any_storage():
    import numpy as np

    from tuneflow.transfer.gain import PACKED_LIMIT, pack_predictions, unpack_predictions

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 7600)  # AG News' test split, 4 classes
    seeds = [np.where(rng.random(7600) < 0.9, labels, rng.integers(0, 4, 7600)) for _ in range(5)]
    packed = [pack_predictions(p) for p in seeds]
    assert sum(map(len, packed)) < PACKED_LIMIT < 64_000  # MySQL's TEXT: 64 KB per attr
    assert all((unpack_predictions(s) == p).all() for s, p in zip(packed, seeds))
    assert (unpack_predictions([2, 0, 1]) == [2, 0, 1]).all()  # records written before packing
    many = np.arange(300)  # past 255 classes: two bytes a row
    assert pack_predictions(many).startswith("u2:") and (unpack_predictions(pack_predictions(many)) == many).all()
