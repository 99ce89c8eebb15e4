"""`objective: {mode: pareto}`: an Optuna multi-objective study, run -> best -> export -> train."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tuneflow.config.study_config import ObjectiveConfig
from tuneflow.config.errors import ConfigError
from tuneflow.config.schema import parse_dataclass

TARGETS = [
    {"metric": "f1", "direction": "maximize"},
    {"metric": "training_seconds", "direction": "minimize"},
    {"metric": "trainable_parameters", "direction": "minimize"},
]


def test_pareto_study_end_to_end(make_study, run_cli, tmp_path):
    space = {"parameters": {
        "epochs": {"type": "fixed", "value": 1},
        "learning_rate": {"type": "categorical", "choices": [1e-3, 2e-3]},  # 4 configurations: 3 distinct trials
        "method": {"type": "categorical", "choices": ["full", "head_only"]},
    }}
    # A pruner that would prune every single-objective trial: in pareto mode it is skipped, not fatal.
    study_file = make_study(
        search_space=space, budget={"n_trials": 3}, objective={"mode": "pareto", "targets": TARGETS},
        pruner={"name": "threshold", "kwargs": {"lower": 1.1}},
    )
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    assert "Pareto front of" in err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}")
    assert len(study.directions) == 3 and study.metric_names == ["f1", "training_seconds", "trainable_parameters"]
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for trial in trials:
        a = trial.user_attrs
        assert trial.values == pytest.approx([a["f1"], a["training_seconds"], a["trainable_parameters"]])
        assert not trial.intermediate_values and len(a["history"]) == 4  # history kept (4 evaluations), nothing reported

    code, out, _ = run_cli("best", study_file)
    assert code == 0 and "value = f1 / training_seconds / trainable_parameters" in out
    front = {t.number for t in study.best_trials}
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("---")) + 1
    table = lines[start:lines.index("", start)]  # the rows, up to the blank line before the footer and verdict
    assert {int(line.split()[0]) for line in table} == front

    exported = tmp_path / "front.yaml"
    code, _, err = run_cli("export", study_file, "--top-k", 5, "-o", exported)
    assert code == 0, err
    configs = yaml.safe_load(exported.read_text())["configs"]
    assert {c["trial"] for c in configs} == front
    assert all(len(c["values"]) == 3 and "value" not in c for c in configs)

    code, _, err = run_cli("train", exported, "-o", tmp_path / "final")
    assert code == 0, err
    assert json.loads((tmp_path / "final" / "metrics.json").read_text())["split"] == "test"


@pytest.mark.parametrize(
    "objective, key",
    [
        ({"mode": "pareto", "targets": [{"metric": "f1"}]}, "targets"),
        ({"mode": "pareto", "targets": [{"metric": "f1"}, {"metric": "f1", "direction": "minimize"}]}, "targets"),
        ({"targets": TARGETS}, "targets"),
        ({"mode": "pareto", "targets": [{"metric": "f1"}, {"metric": "latency"}]}, "targets[1].metric"),
    ],
)
def test_pareto_config_errors(objective, key):
    with pytest.raises(ConfigError) as err:
        parse_dataclass(ObjectiveConfig, objective)
    assert err.value.key == key


def test_cmaes_cannot_run_a_pareto_study(make_study, run_cli):
    study_file = make_study(objective={"mode": "pareto", "targets": TARGETS}, sampler={"name": "cmaes"})
    code, _, err = run_cli("validate", study_file)
    assert code == 2 and "sampler.name" in err
