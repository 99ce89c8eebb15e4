"""The model as a searched choice: candidates, trial parameter `model`, a baseline per model, export/train, checks."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from conftest import study_dict, write_study
from tuneflow.transfer.gain import BASELINE_PREFIX

pytest_plugins = ["models.tiny_families"]  # the tiny_models fixture (tests/models/tiny_families.py)

SPACE = {"parameters": {
    "learning_rate": {"type": "fixed", "value": 3e-3},
    "batch_size": {"type": "fixed", "value": 16},
    "epochs": {"type": "fixed", "value": 1},
    "method": {"type": "fixed", "value": "full"},
    "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
    "source_epochs": {"type": "fixed", "value": 1, "when": {"mapping": "sequential"}},
}}


@pytest.fixture
def two_models(tmp_path, tiny_models, task_files):
    """``make(**model_keys) -> study file`` searching a tiny BERT and a tiny GPT-2 (labels bert, gpt2)."""

    def make(candidates=None, space=SPACE, **model_keys):
        study = study_dict(tiny_models["bert"], task_files, search_space=space, sampler={"name": "grid"}, budget={"n_trials": 4})
        study["model"] = {"candidates": candidates or [{"name": str(tiny_models["bert"]), "label": "bert"},
                                                       {"name": str(tiny_models["gpt2"]), "label": "gpt2", "max_length": 24}],
                          "max_length": 16, **model_keys}
        return write_study(tmp_path / "study.yaml", study)

    return make


def test_a_study_samples_both_models_each_with_its_own_baseline_and_train_trains_the_chosen(two_models, tiny_models, run_cli, tmp_path):
    study_file = two_models()
    code, out, err = run_cli("validate", study_file)
    assert code == 0 and "model 'bert'" in out and "model 'gpt2'" in out, err
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    trials = study.trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials), [t.user_attrs.get("fail_reason") for t in trials]
    # The grid visits model x mapping: both candidates, each with and without the source.
    assert sorted((t.user_attrs["model"], t.user_attrs["params"]["mapping"]) for t in trials) == [
        ("bert", "direct"), ("bert", "sequential"), ("gpt2", "direct"), ("gpt2", "sequential")]
    paths = {"bert": str(tiny_models["bert"]), "gpt2": str(tiny_models["gpt2"])}
    for t in trials:
        a = t.user_attrs
        assert t.params["model"] == a["model"] and a["model_path"] == paths[a["model"]] == a["config"]["model_path"]
        assert a["config"]["max_length"] == {"bert": 16, "gpt2": 24}[a["model"]]  # the candidate's own key wins
    # Different architectures really trained: GPT-2's tiny vocabulary and positions give another parameter count.
    totals = {t.user_attrs["model"]: t.user_attrs["total_parameters"] for t in trials}
    assert totals["bert"] != totals["gpt2"]
    # The target-only baseline is per model: its key holds the candidate's path (and max length).
    baselines = [v for k, v in study.user_attrs.items() if k.startswith(BASELINE_PREFIX)]
    assert sorted(b["key"]["model_path"] for b in baselines) == sorted(paths.values())
    for t in trials:
        base = study.user_attrs[t.user_attrs["transfer_baseline"]]
        assert base["key"]["model_path"] == t.user_attrs["model_path"] and base["key"]["max_length"] == t.user_attrs["config"]["max_length"]

    code, out, _ = run_cli("best", study_file)
    header = next(line for line in out.splitlines() if line.split()[:2] == ["trial", "value"]).split()
    assert code == 0 and "model" in header and "gpt2" in out
    exported = tmp_path / "best.yaml"
    assert run_cli("export", study_file, "-o", exported, "--top-k", "4")[0] == 0
    configs = yaml.safe_load(exported.read_text())["configs"]
    by_trial = {t.number: t.user_attrs["model"] for t in trials}
    assert {c["trial"]: c["model"]["label"] for c in configs} == by_trial
    assert all(c["model"]["name"] == paths[c["model"]["label"]] and "candidates" not in c["model"] for c in configs)
    rank = next(c["rank"] for c in configs if c["model"]["label"] == "gpt2")
    code, _, err = run_cli("train", exported, "-o", tmp_path / "final", "--rank", str(rank))
    assert code == 0, err
    assert json.loads((tmp_path / "final" / "metrics.json").read_text())["model"] == "gpt2"
    assert json.loads((tmp_path / "final" / "config.json").read_text())["model_type"] == "gpt2"  # the chosen model trained


def test_each_model_is_tokenised_once_per_process_when_first_picked(two_models):
    from tuneflow.study.objective import TransferObjective
    from tuneflow.study.runner import plan_study

    space = {"parameters": {**SPACE["parameters"], "mapping": {"type": "fixed", "value": "direct"},
                            "model": {"type": "fixed", "value": "gpt2"}}}
    del space["parameters"]["source_epochs"]
    plan = plan_study(two_models(space=space))
    assert list(plan.models) == ["bert", "gpt2"] and plan.model_path == plan.models["bert"]
    objective = TransferObjective.for_plan(plan)
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=2)
    assert [t.user_attrs["model"] for t in study.trials] == ["gpt2", "gpt2"]
    assert objective.inputs.tokenised() == [("gpt2", "target")]  # bert, never picked, never tokenised


@pytest.mark.parametrize("case, key, words", [
    ("labels", "model.candidates[1].label", "two candidates are labelled 'same'"),
    ("both", "model.name", "not both"),
    ("not_a_model", "model.candidates[1].name", "has no config.json"),
    ("lora_targets", "parameters.lora_target_modules", "model candidate 'gpt2'"),
])
def test_every_candidate_is_checked_before_the_study_starts(two_models, tiny_models, run_cli, tmp_path, case, key, words):
    bert = {"name": str(tiny_models["bert"]), "label": "bert"}
    space = SPACE
    if case == "labels":
        study_file = two_models([bert | {"label": "same"}, {"name": str(tiny_models["gpt2"]), "label": "same"}])
    elif case == "both":
        study_file = two_models(name=str(tiny_models["bert"]))
    elif case == "not_a_model":
        (tmp_path / "empty").mkdir()
        study_file = two_models([bert, {"name": str(tmp_path / "empty")}])
    else:  # BERT has query/value, GPT-2 has c_attn: the space fits one candidate only
        space = {"parameters": {**SPACE["parameters"], "method": {"type": "fixed", "value": "lora"},
                                "lora_target_modules": {"type": "fixed", "value": "query,value"}}}
        study_file = two_models(space=space)
    for command in ("validate", "run"):
        code, _, err = run_cli(command, study_file)
        last = err.strip().splitlines()[-1]
        assert code == 2 and key in last and words in last and "Traceback" not in err, err
    assert not (tmp_path / "tiny.db").exists()
