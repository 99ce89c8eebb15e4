"""`--json` of `best`, `status` and `validate`: the keys their help promises, the same figures the text shows."""

from __future__ import annotations

import json

import tuneflow
from tuneflow.cli.fleet_commands import STATUS_KEYS
from tuneflow.cli.study_commands import BEST_KEYS, VALIDATE_KEYS


def _documented(keys: str, record: dict) -> None:
    for key in record:
        assert key in keys, f"--json key {key!r} not in the help"


def test_best_json(finished_study, run_cli):
    code, out, err = run_cli("best", finished_study, "--top-k", 2, "--json")
    assert code == 0, err
    record = json.loads(out)  # the whole of stdout is one JSON object
    _documented(BEST_KEYS, record)
    assert record["study"] == "tiny" and record["states"] == {"complete": 3, "pruned": 1}
    assert record["storage"] == f"sqlite:///{finished_study.parent / 'tiny.db'}" and record["pareto"] is False
    best = tuneflow.best(finished_study, top_k=2)
    assert [(r["rank"], r["trial"]) for r in record["trials"]] == [(1, best[0].number), (2, best[1].number)]
    for row, trial in zip(record["trials"], best):
        _documented(BEST_KEYS, row)
        assert row["value"] == trial.value and row["values"] == [trial.value] and row["confirmed"] is False
        assert row["params"] == trial.user_attrs["params"] and row["f1"] == trial.user_attrs["f1"]
        assert row["arm"] == trial.user_attrs["arm"] and row["seeds"] == 1
    verdict = tuneflow.verdict(finished_study)
    _documented(BEST_KEYS, record["verdict"])
    assert record["verdict"]["outcome"] == verdict.outcome and record["verdict"]["summary"] == verdict.summary
    assert record["verdict"]["recommended_trial"] == verdict.recommended_trial

    text = run_cli("best", finished_study, "--top-k", 2)[1]
    assert f"{best[0].value:.4f}" in text  # the table shows the same figures


def test_status_json(finished_study, run_cli):
    code, out, err = run_cli("status", finished_study, "--json")
    assert code == 0, err
    record = json.loads(out)
    _documented(STATUS_KEYS, record)
    assert record == tuneflow.status(finished_study)
    assert record["trials"]["complete"] == 3 and record["budget"] == {"n_trials": 4, "finished": 4}
    assert record["heartbeats"] == {"interval": 60, "grace_period": 180}  # the storage_options defaults
    by_url = json.loads(run_cli("status", "--storage", f"sqlite:///{finished_study.parent / 'tiny.db'}", "--json")[1])
    assert by_url["trials"] == record["trials"] and by_url["budget"]["n_trials"] == 4  # the budget the study recorded
    text = run_cli("status", finished_study)[1]
    assert "trials: complete 3, pruned 1, failed 0, running 0, waiting 0" in text and "budget: 4 of 4 finished" in text


def test_validate_json(make_study, run_cli):
    study_file = make_study()
    code, out, err = run_cli("validate", study_file, "--json")
    assert code == 0, err
    record = json.loads(out)
    _documented(VALIDATE_KEYS, record)
    assert record["ok"] is True and record["file"] == str(study_file) and record["study"] == "tiny"
    assert record["not_checked_offline"] == [] and record["parameters"] == 7
    assert [t["key"] for t in record["tasks"]] == ["target", "source"]
    assert {"key": "target", "name": "topics", "hub": None, "labels": 3} == {k: record["tasks"][0][k] for k in ("key", "name", "hub", "labels")}
    assert [m["checked"] for m in record["models"]] == [True]
    assert run_cli("validate", study_file)[1].splitlines()[0] == f"{study_file}: OK"


def test_validate_json_reports_a_failed_check_and_exits_2(make_study, run_cli):
    study_file = make_study(budget={"n_trials": 0})
    code, out, err = run_cli("validate", study_file, "--json")
    assert code == 2
    record = json.loads(out)
    assert record["ok"] is False and record["file"] == str(study_file) and "budget.n_trials" in record["error"]
    assert err.startswith("tuneflow: error: ") and "budget.n_trials" in err and "Traceback" not in err
