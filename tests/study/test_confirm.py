"""``tuneflow confirm``: the top trials retrained with fresh seeds, recorded outside the trials; best/export/report use it."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from tuneflow.study.confirm import CONFIRM_NUMBER
from tuneflow.study.objective import trial_seeds
from tuneflow.study.results import CONFIRMATION_ATTR, confirmed
from tuneflow.study.verdict import study_verdict
from tuneflow.transfer.gain import BASELINE_PREFIX


def _study(study_file, name="tiny"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_file.parent / (name + '.db')}")


SPACE = {"parameters": {
    "epochs": {"type": "fixed", "value": 1},
    "learning_rate": {"type": "categorical", "choices": [1e-3, 4e-3]},
    "batch_size": {"type": "fixed", "value": 32},
    "method": {"type": "fixed", "value": "full"},
    "mapping": {"type": "fixed", "value": "sequential"},
}}


@pytest.mark.slow
def test_confirm_retrains_the_top_trials_and_best_export_report_train_follow(make_study, run_cli, tmp_path):
    study_file = make_study(search_space=SPACE, budget={"n_trials": 2}, sampler={"name": "grid"}, objective={"weights": {"f1": 1.0}})
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    code, out, err = run_cli("confirm", study_file, "--top-k", "2", "--seeds", "2")
    assert code == 0, err
    study = _study(study_file)
    assert len(study.trials) == 2  # nothing the sampler could see was added
    record = study.user_attrs[CONFIRMATION_ATTR]
    seeds = trial_seeds(CONFIRM_NUMBER, 2)
    assert record["seeds"] == seeds and not set(seeds) & {s for t in study.trials for s in t.user_attrs["seeds"]}
    results = record["results"]
    assert sorted(r["trial"] for r in results) == [0, 1]
    assert [r["value"] for r in results] == sorted((r["value"] for r in results), reverse=True)  # best first
    for r in results:
        assert len(r["seed_values"]) == 2 and r["value"] == pytest.approx(sum(r["seed_values"]) / 2)
        low, high = r["transfer_gain_ci"]
        assert low <= r["transfer_gain_score"] <= high
    # Each confirmed seed has its own target-only baseline (paired), trained with that seed.
    baseline_seeds = {v["seed"] for k, v in study.user_attrs.items() if k.startswith(BASELINE_PREFIX)}
    assert set(seeds) <= baseline_seeds
    assert "±" in out and "P(#1 beats #2)" in out and ("holds" in out or "changed" in out)
    assert 0.0 <= record["p_first_beats_second"] <= 1.0

    # best: confirmed order and figures, marked.
    code, out, err = run_cli("best", study_file)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [r["trial"] for r in results]
    assert rows[0][1] == f"{results[0]['value']:.4f}*" and "±" in out and "confirmed with fresh seeds" in out

    # export follows the confirmed ranking and carries the confirmed figures.
    exported = tmp_path / "best.yaml"
    assert run_cli("export", study_file, "-o", exported, "--top-k", "2")[0] == 0
    configs = yaml.safe_load(exported.read_text())["configs"]
    assert [c["trial"] for c in configs] == [r["trial"] for r in results]
    assert configs[0]["confirmed"]["value"] == pytest.approx(results[0]["value"])

    # The report has the Confirmation section with both trials.
    report = tmp_path / "report.html"
    assert run_cli("report", study_file, "-o", report)[0] == 0
    html = report.read_text()
    assert 'id="confirmation"' in html and "P(#1 beats #2)" in html

    # Final training keeps the class names in the saved model.
    out_dir = tmp_path / "final"
    code, _, err = run_cli("train", exported, "-o", out_dir)
    assert code == 0, err
    config = json.loads((out_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "sport", "1": "money", "2": "science"}


def test_confirm_errors_are_one_line_and_write_nothing(make_study, run_cli):
    study_file = make_study(search_space=SPACE, budget={"n_trials": 1})
    code, _, err = run_cli("confirm", study_file, "--seeds", "1")
    assert code == 2 and "--seeds" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("confirm", study_file)  # no study yet
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_confirm_in_the_study_file_runs_once_the_budget_is_spent_with_the_best_target_only_reference(make_study, run_cli):
    from tuneflow.study.compute import study_compute

    space = {"parameters": {**SPACE["parameters"], "mapping": {"type": "categorical", "choices": ["direct", "sequential"]}}}
    study_file = make_study(search_space=space, budget={"n_trials": 2}, confirm={"top_k": 1, "seeds": 2})
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = _study(study_file)
    record = study.user_attrs[CONFIRMATION_ATTR]
    best = max(study.trials, key=lambda t: t.value)
    # Coverage measured both arms; the top trial is confirmed, and the best of the other side (target only, or
    # transfer) too: the verdict then compares two configurations confirmed on the same fresh seeds.
    by_trial = {r["trial"]: r for r in record["results"]}
    assert best.number in by_trial and len(record["results"]) == 2
    assert {r["arm"] for r in record["results"]} == {"target only", "sequential from sentiment"}
    other = "target_only_reference" if best.user_attrs["arm"] != "target only" else "transfer_reference"
    assert [r.get("role") for r in record["results"] if r["trial"] != best.number] == [other]
    for r in record["results"]:
        assert r["params"] == study.trials[r["trial"]].params and len(r["seed_values"]) == 2 and r["training_samples"] > 0
    assert record["training_samples"] == sum(r["training_samples"] for r in record["results"])
    # The predictions live in one study attr per configuration, not in the record (MySQL's TEXT holds 64 KB),
    # and the verdict reads them back: its gain rests on the rows too, not on the 2 seeds alone.
    assert all("seed_predictions" not in r for r in record["results"])
    assert all(len(confirmed(study)[r["trial"]]["seed_predictions"]) == 2 for r in record["results"])
    assert study_verdict(study).comparison.method == "seeds+rows"
    # Both arms were covered at the same core values: the target-only configuration is confirmed first, and the
    # transfer one finds its runs as its paired baselines (same key, same seeds) instead of training them again.
    assert study.user_attrs.get("transfer_baseline_runs", 0) == 0
    assert study_compute(study)["confirmation"] == record["training_samples"] and record["after_trials"] == 2
    assert "confirming trial" in err
    # Once per budget: running again (nothing left to run) confirms nothing new.
    code, _, err = run_cli("run", study_file)
    assert code == 0 and "confirming trial" not in err and study.user_attrs[CONFIRMATION_ATTR] == record


def test_an_interrupted_confirmation_resumes_where_it_stopped(make_study):
    from tuneflow.study.confirm import confirm
    from tuneflow.study.runner import plan_study, run_study

    space = {"parameters": {**SPACE["parameters"], "mapping": {"type": "categorical", "choices": ["direct", "sequential"]}}}
    plan = plan_study(str(make_study(search_space=space, budget={"n_trials": 2})))
    study = run_study(plan)
    said: list[str] = []

    def stop_at_the_second(line: str) -> None:
        said.append(line)
        if len(said) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        confirm(plan, study, top_k=2, seeds=2, message=stop_at_the_second)
    first = study.user_attrs["tuneflow_confirmation_partial"]["results"]
    assert len(first) == 1 and CONFIRMATION_ATTR not in study.user_attrs
    said.clear()
    record = confirm(plan, study, top_k=2, seeds=2, message=said.append)
    assert len(said) == 1  # only the second configuration trained again
    assert first[0] in record["results"] and len(record["results"]) == 2
