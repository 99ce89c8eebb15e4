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


# --------------------------------------------------------------------------------------------
# The API is complete: listed for tab completion, documented, and every function takes a file or a study
# --------------------------------------------------------------------------------------------

FUNCTIONS = ("load_config", "validate", "run", "open_study", "status", "best", "verdict", "rank", "confirm", "export",
             "train", "report", "recorded_study_file")


def test_dir_and_all_list_the_api_and_every_name_resolves():
    for name in (*FUNCTIONS, "ConfigError", "Validation", "Ranking"):
        assert name in dir(tuneflow) and name in tuneflow.__all__
        assert getattr(tuneflow, name) is getattr(tuneflow.api, name)
    assert set(tuneflow.api.__all__) == set(tuneflow.__all__) - {"__version__"}  # the docs render api.__all__
    assert "TYPE_CHECKING" not in dir(tuneflow)  # the module's own plumbing stays out of tab completion


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_has_a_google_style_docstring_and_typed_return(name):
    import inspect

    function = getattr(tuneflow, name)
    doc = inspect.getdoc(function)
    for section in ("Args:", "Returns:", "Examples:"):
        assert f"\n{section}\n" in doc, f"{name}: no {section} section"
    args = doc.split("Args:\n")[1].split("\n\n")[0]
    for parameter in inspect.signature(function).parameters:
        assert f"    {parameter}:" in f"\n{args}", f"{name}: parameter {parameter!r} undocumented"
    assert inspect.signature(function).return_annotation is not inspect.Signature.empty


def test_read_functions_take_the_file_or_the_study_alike(finished_study, tmp_path):
    study = tuneflow.open_study(finished_study)
    assert tuneflow.open_study(study) is study
    assert [t.number for t in tuneflow.best(study)] == [t.number for t in tuneflow.best(finished_study)]
    assert tuneflow.verdict(study).summary == tuneflow.verdict(finished_study).summary

    by_file, by_study = tuneflow.status(finished_study), tuneflow.status(study)
    assert by_file == by_study
    assert by_file["trials"] == {"complete": 3, "pruned": 1, "failed": 0, "running": 0, "waiting": 0, "retried": 0}
    assert by_file["budget"] == {"n_trials": 4, "finished": 4} and by_file["study"] == "tiny"
    assert by_file["storage"] == f"sqlite:///{finished_study.parent / 'tiny.db'}" and by_file["running"] == []

    checked = tuneflow.validate(study)  # the file the study recorded
    assert isinstance(checked, tuneflow.Validation) and checked.study == "tiny"
    assert str(checked).splitlines()[0] == f"{finished_study}: OK"
    assert [t["key"] for t in checked.tasks] == ["target", "source"] and checked.tasks[0]["labels"] == 3
    assert tuneflow.recorded_study_file(study) == finished_study

    for given in (study, finished_study):
        path = tuneflow.report(given, tmp_path / f"report-{type(given).__name__}.html")
        assert path == tmp_path / f"report-{type(given).__name__}.html" and "<html" in path.read_text(encoding="utf-8")


def test_a_study_without_a_recorded_file_says_to_pass_the_file():
    study = optuna.create_study(study_name="bare")  # not run by tuneflow: no study file recorded
    for call in (tuneflow.validate, tuneflow.confirm, tuneflow.rank, tuneflow.run):
        with pytest.raises(tuneflow.ConfigError, match="'bare' recorded no study file.*pass the study file"):
            call(study)


def test_a_study_whose_file_is_gone_says_so(tmp_path):
    study = optuna.create_study(study_name="moved")  # what `run` records, for a file since moved away
    study.set_user_attr("tuneflow_config", {"study_file": str(tmp_path / "study.yaml")})
    for call in (lambda: tuneflow.confirm(study, top_k=1, seeds=2), lambda: tuneflow.recorded_study_file(study)):
        with pytest.raises(tuneflow.ConfigError, match="was run from .*study.yaml', which is gone; pass the study file"):
            call()


def test_run_and_confirm_take_the_study_itself(make_study):
    study = tuneflow.run(make_study(budget={"n_trials": 1}, search_space={"parameters": FAST}), quiet=True)
    study = tuneflow.run(study, n_trials=1, quiet=True)  # resumed through the file it recorded, in its storage
    assert len(study.trials) == 2

    confirmation = tuneflow.confirm(study, top_k=1, seeds=2)
    best = tuneflow.best(study, top_k=1)[0]
    assert confirmation["results"][0]["trial"] in {best.number, *best.user_attrs.get("pooled_trials", [])}
    assert len(confirmation["results"][0]["seed_values"]) == 2
    assert tuneflow.open_study(study.user_attrs["tuneflow_config"]["study_file"]).user_attrs["tuneflow_confirmation"] == confirmation


def test_rank_takes_the_study_and_writes_nothing_without_record(finished_study):
    study = tuneflow.open_study(finished_study)
    ranking = tuneflow.rank(study, rows=30)
    assert isinstance(ranking, tuneflow.Ranking) and not ranking.recorded and ranking.enqueued == []
    assert ranking.study == "tiny" and ranking.scores
    logme = [s.logme for s in ranking.scores]
    assert logme == sorted(logme, reverse=True)
    assert "tuneflow_transferability" not in str(tuneflow.open_study(finished_study).user_attrs)
