"""Several source tasks: trial parameter `source`, one target-only baseline, per-source gains, export/train, errors."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from conftest import TARGET_WORDS, _rows, study_dict, write_csv, write_study
from tuneflow.study.contract import contract_of
from tuneflow.transfer.gain import BASELINE_PREFIX

# Every core value fixed: all trials share one baseline key, so one target-only baseline serves both sources.
SPACE = {"parameters": {
    "learning_rate": {"type": "fixed", "value": 3e-3},
    "batch_size": {"type": "fixed", "value": 16},
    "epochs": {"type": "fixed", "value": 1},
    "method": {"type": "fixed", "value": "full"},
    "mapping": {"type": "fixed", "value": "sequential"},
    "source_epochs": {"type": "fixed", "value": 1},
    "head": {"type": "fixed", "value": "label_map"},  # maps the source labels the target shares by name
}}


@pytest.fixture
def two_sources(tmp_path, tiny_model_dir, task_files):
    """``make(**overrides) -> study file`` with sources `sentiment` (negative/positive) and `topics2` (sport/money)."""
    topics2 = {k: TARGET_WORDS[k] for k in ("sport", "money")}
    second = write_csv(tmp_path / "data" / "topics2.csv", _rows(topics2, 60, 7, string_labels=True))
    sources = [
        {"name": "sentiment", "files": {"train": str(task_files["source_train"])}},
        {"name": "topics2", "files": {"train": str(second)}, "label_names": ["sport", "money"]},
    ]

    def make(filename: str = "study.yaml", **overrides):
        study = study_dict(tiny_model_dir, task_files, **{"search_space": SPACE, "sampler": {"name": "grid"},
                                                          "budget": {"n_trials": 2}, **overrides})
        study.pop("source")
        study.setdefault("sources", sources)
        return write_study(tmp_path / filename, study)

    return make


def _score(metrics: dict) -> float:
    return 0.5 * metrics["f1"] + 0.5 * metrics["accuracy"]  # the study's weights (f1: 1, accuracy: 1), normalised


def test_two_sources_are_both_sampled_with_gains_against_one_baseline(two_sources, run_cli, tmp_path):
    study_file = two_sources()
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    trials = {t.user_attrs["source"]: t for t in study.trials}
    assert sorted(trials) == ["sentiment", "topics2"]  # the grid over `source` visits both
    assert " from sentiment " in err and " from topics2 " in err  # the progress lines name each trial's source
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials.values())
    assert {name: t.params["source"] for name, t in trials.items()} == {"sentiment": "sentiment", "topics2": "topics2"}
    # Each trial trained on its own source: only topics2 shares label names with the target.
    assert trials["topics2"].user_attrs["head_mapped_labels"] == ["sport", "money"]
    assert trials["sentiment"].user_attrs["head_mapped_labels"] == []
    # One target-only baseline (its key has no source), trained once, and each source's gain is against it.
    baselines = {k: v for k, v in study.user_attrs.items() if k.startswith(BASELINE_PREFIX)}
    assert len(baselines) == 1 and study.user_attrs["transfer_baseline_runs"] == 1
    (attr, baseline), = baselines.items()
    assert "source" not in json.dumps(baseline["key"])
    for trial in trials.values():
        a = trial.user_attrs
        assert a["transfer_baseline"] == attr
        assert a["transfer_gain_score"] == pytest.approx(_score(a) - _score(baseline["metrics"]))
    record = study.user_attrs["tuneflow_config"]
    assert [s["name"] for s in contract_of(record)["sources"]] == ["sentiment", "topics2"]  # the contract holds both

    # `best`, the report, export and train all carry the trial's source.
    code, out, _ = run_cli("best", study_file)
    header = next(line for line in out.splitlines() if line.split()[:2] == ["trial", "value"]).split()
    assert code == 0 and "source" in header and "topics2" in out and "sentiment" in out
    from tuneflow.observe.report import build_report

    html = build_report(study)
    assert "Transfer by source" in html and html.count("topics2") >= 2
    exported = tmp_path / "best.yaml"
    assert run_cli("export", study_file, "-o", exported, "--top-k", "2")[0] == 0
    configs = yaml.safe_load(exported.read_text())["configs"]
    assert {c["trial"]: c["source"]["name"] for c in configs} == {t.number: name for name, t in trials.items()}
    rank = next(c["rank"] for c in configs if c["source"]["name"] == "topics2")
    code, _, err = run_cli("train", exported, "-o", tmp_path / "final", "--rank", str(rank))
    assert code == 0, err
    metrics = json.loads((tmp_path / "final" / "metrics.json").read_text())
    assert metrics["source"] == "topics2" and metrics["head_mapped_labels"] == ["sport", "money"]  # fine-tuned on topics2 first


def test_a_source_no_trial_picks_is_never_tokenised_and_the_prior_can_drop_one(two_sources):
    from tuneflow.study.objective import TransferObjective
    from tuneflow.study.runner import plan_study

    plan = plan_study(two_sources(sampler={"name": "random"}, objective={"weights": {"f1": 1.0}, "transfer_baseline": False}))
    assert list(plan.sources) == ["sentiment", "topics2"] and plan.source is plan.sources["sentiment"]
    assert plan.config.space.parameters["source"].choices == ("sentiment", "topics2")  # searched by default
    objective = TransferObjective.for_plan(plan)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("tuneflow_kept_sources", ["topics2"])  # what the LogME prior writes with prior_keep
    study.optimize(objective, n_trials=3)
    assert [t.user_attrs["source"] for t in study.trials] == ["topics2"] * 3
    label = next(iter(plan.models))
    assert objective.inputs.tokenised() == [(label, "target"), (label, "topics2")]  # sentiment never tokenised


def test_the_source_parameter_is_conditional_on_a_mapping_that_needs_one(two_sources):
    from tuneflow.study.runner import load_config

    space = {"parameters": {**SPACE["parameters"], "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
                            "source_epochs": {"type": "fixed", "value": 1, "when": {"mapping": "sequential"}},
                            "head": {"type": "fixed", "value": "new", "when": {"mapping": "sequential"}}}}
    config = load_config(two_sources(search_space=space))
    spec = config.space.parameters["source"]
    assert spec.choices == ("sentiment", "topics2") and spec.when == {"mapping": ["sequential"]}
    fixed = load_config(two_sources("fixed.yaml", search_space={"parameters": {**space["parameters"],
                                                                                "source": {"type": "fixed", "value": "topics2"}}}))
    assert fixed.space.parameters["source"].possible_values() == ("topics2",)


@pytest.mark.parametrize("change, key", [
    ("duplicate", "sources[1].name"),
    ("both", "sources"),
    ("unknown", "parameters.source"),
])
def test_bad_sources_are_one_line_config_errors(two_sources, run_cli, tmp_path, task_files, change, key):
    overrides = {}
    if change == "duplicate":
        overrides["sources"] = [{"name": "same", "files": {"train": str(task_files["source_train"])}}] * 2
    elif change == "unknown":
        overrides["search_space"] = {"parameters": {**SPACE["parameters"], "source": {"type": "categorical", "choices": ["sentiment", "reviews"]}}}
    study_file = two_sources(**overrides)
    if change == "both":
        raw = yaml.safe_load(study_file.read_text())
        raw["source"] = raw["sources"][0]
        study_file.write_text(yaml.safe_dump(raw))
    for command in ("validate", "run"):
        code, out, err = run_cli(command, study_file)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert f"{study_file}: {key}:" in err, err
    assert not (tmp_path / "tiny.db").exists()  # a rejected run writes nothing
