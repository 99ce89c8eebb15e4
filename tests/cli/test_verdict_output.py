"""`tuneflow run`'s last lines, `tuneflow best`, the report's top and ``tuneflow.verdict`` say the same verdict."""

from __future__ import annotations

import html
import re

import tuneflow
from tuneflow.observe.verdict_report import GAIN_FOOTER, verdict_lines
from tuneflow.transfer.gain import unpack_predictions

SPACE = {"parameters": {
    "epochs": {"type": "fixed", "value": 1},
    "learning_rate": {"type": "fixed", "value": 3e-3},
    "batch_size": {"type": "fixed", "value": 32},
    "method": {"type": "fixed", "value": "head_only"},
    "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
}}


def test_run_best_report_and_api_agree_on_the_verdict(make_study, run_cli, tmp_path):
    study_file = make_study(search_space=SPACE, budget={"n_trials": 2}, sampler={"name": "grid"},
                            objective={"weights": {"f1": 1.0}, "seeds": 2})
    code, out, err = run_cli("run", study_file, "--quiet")
    assert code == 0, err
    verdict = tuneflow.verdict(study_file)
    lines = verdict_lines(verdict)
    assert out.splitlines()[-len(lines):] == lines  # the run ends with the verdict
    assert verdict.outcome in {"helped", "hurt", "unresolved"} and verdict.transfer and verdict.target_only
    assert verdict.comparison.method == "seeds+rows" and verdict.transfer.seeds == verdict.target_only.seeds == 2
    low, high = verdict.interval
    assert -1.0 <= low <= verdict.gain <= high <= 1.0

    code, out, err = run_cli("best", study_file)
    assert code == 0, err
    assert out.splitlines()[-len(lines):] == lines and GAIN_FOOTER in out
    assert "'base' marks a target-only trial" in out

    report = tmp_path / "report.html"
    assert run_cli("report", study_file, "-o", report)[0] == 0
    top = re.search(r'<section id="([^"]+)">(.*?)</section>', report.read_text(encoding="utf-8"), flags=re.S)
    assert top.group(1) == "verdict" and html.escape(verdict.summary) in top.group(2)
    assert html.escape(verdict.recommendation) in top.group(2)

    # Every completed trial kept what the verdict needs: per-seed predictions and the labels they refer to.
    study = tuneflow.open_study(study_file)
    for trial in study.trials:
        attrs = trial.user_attrs
        labels = unpack_predictions(study.user_attrs[attrs["validation_labels"]]["labels"])
        predictions = [unpack_predictions(p) for p in attrs["seed_predictions"]]
        assert len(predictions) == 2 and all(len(p) == len(labels) for p in predictions)
        assert 0 < attrs["chance_score"] < 1 and isinstance(attrs["collapsed_seeds"], list)
