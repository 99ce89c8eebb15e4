"""The Python API: the README's notebook session, end to end on the tiny BERT."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

import tuneflow
from worker_processes import FAST


def test_notebook_session(make_study, tmp_path):
    # Cheap trials (direct, one epoch): the API calls are the point, not what the trials learn.
    config = tuneflow.load_config(make_study(budget={"n_trials": 2}, search_space={"parameters": FAST}))
    assert config.name == "tiny" and "learning_rate" in config.space.parameters

    study = tuneflow.run(config, quiet=True)
    assert isinstance(study, optuna.Study)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2

    best = tuneflow.best(study, top_k=5)
    assert [t.number for t in best] == [t.number for t in sorted(study.trials, key=lambda t: -t.value)]

    verdict = tuneflow.verdict(study)  # does transfer help? the same sentences `tuneflow best` prints
    assert str(verdict) == verdict.summary and verdict.outcome in {"helped", "hurt", "unresolved", "not_tried", "no_reference"}
    assert verdict.recommended_trial in {t.number for t in best}

    exported = tuneflow.export(study, tmp_path / "best.yaml", top_k=1)
    assert exported["configs"][0]["trial"] == verdict.recommended_trial  # export follows the verdict

    result = tuneflow.train(tmp_path / "best.yaml", tmp_path / "final")
    assert 0.0 <= result["accuracy"] <= 1.0
    saved = json.loads((tmp_path / "final" / "metrics.json").read_text())
    assert saved["accuracy"] == result["accuracy"]


def test_run_adds_trials_and_reopens_by_file(make_study):
    study_file = make_study(budget={"n_trials": 1}, search_space={"parameters": FAST})
    tuneflow.run(study_file, quiet=True)
    tuneflow.run(study_file, n_trials=1, quiet=True)
    assert len(tuneflow.open_study(study_file).trials) == 2


@pytest.mark.parametrize(("call", "key"), [
    (lambda f: tuneflow.run(f, n_trials=0), "n_trials"),
    (lambda f: tuneflow.run(f, timeout=-5), "timeout"),
])
def test_bad_numbers_are_config_errors_and_write_nothing(make_study, call, key):
    study_file = make_study()
    with pytest.raises(tuneflow.ConfigError, match=key):
        call(study_file)
    assert not list(study_file.parent.glob("*.db"))


def test_import_tuneflow_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, tuneflow; tuneflow.load_config; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
