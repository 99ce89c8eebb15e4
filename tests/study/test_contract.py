"""A frozen study contract: a changed study file cannot silently change a running study."""

from __future__ import annotations

import optuna
import yaml

from conftest import study_dict, write_study
from tuneflow.study.contract import changed_keys


def _load(study_file):
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}")


FAST = {"parameters": {"epochs": {"type": "fixed", "value": 1}, "learning_rate": {"type": "float", "low": 1e-3, "high": 5e-3},
                       "mapping": {"type": "fixed", "value": "direct"}}}


def test_resuming_with_a_changed_contract_is_refused_then_allowed_and_recorded(tmp_path, tiny_model_dir, task_files, run_cli):
    study_file = tmp_path / "study.yaml"
    first = study_dict(tiny_model_dir, task_files, search_space=FAST, budget={"n_trials": 1})
    first["objective"]["transfer_baseline"] = False
    write_study(study_file, first)
    assert run_cli("run", study_file)[0] == 0
    before = _load(study_file)
    old_hash = before.trials[0].user_attrs["contract"]

    changed = yaml.safe_load(study_file.read_text())
    changed["model"]["max_length"] = 24
    changed["target"]["max_train_rows"] = 60
    changed["budget"]["n_trials"] = 2  # not part of the contract
    write_study(study_file, changed)
    code, out, err = run_cli("run", study_file)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "changed: model.max_length, target.max_train_rows" in err and "--allow-changes" in err
    after = _load(study_file)
    assert len(after.trials) == 1 and after.user_attrs == before.user_attrs  # nothing written

    code, _, err = run_cli("run", study_file, "--allow-changes")
    assert code == 0, err
    study = _load(study_file)
    new_hash = study.trials[1].user_attrs["contract"]
    assert new_hash != old_hash
    (change,) = study.user_attrs["tuneflow_contract_changes"]
    assert change["from_trial"] == 1 and change["previous"] == old_hash and change["contract"] == new_hash
    assert change["changed"] == ["model.max_length", "target.max_train_rows"]

    # Export writes each trial with the configuration it was measured under, not today's file.
    exported = tmp_path / "all.yaml"
    assert run_cli("export", study_file, "--top-k", 2, "-o", exported)[0] == 0
    lengths = {c["trial"]: (c["model"]["max_length"], c["target"].get("max_train_rows"))  # nulls are left out
               for c in yaml.safe_load(exported.read_text())["configs"]}
    assert lengths == {0: (16, None), 1: (24, 60)}

    # The report marks where the configuration changed.
    report = tmp_path / "report.html"
    assert run_cli("report", study_file, "-o", report)[0] == 0
    assert "model.max_length, target.max_train_rows" in report.read_text()


def test_sampler_budget_and_device_may_change_freely(make_study, run_cli):
    study_file = make_study(search_space=FAST, budget={"n_trials": 1})
    assert run_cli("run", study_file)[0] == 0
    study_file = make_study(search_space=FAST, budget={"n_trials": 2}, sampler={"name": "tpe"}, device="cpu",
                            pruner={"name": "median"})
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = _load(study_file)
    assert len(study.trials) == 2 and "tuneflow_contract_changes" not in study.user_attrs
    assert len({t.user_attrs["contract"] for t in study.trials}) == 1


def test_a_changed_search_space_names_the_parameter(make_study, run_cli):
    study_file = make_study(search_space=FAST, budget={"n_trials": 1})
    assert run_cli("run", study_file)[0] == 0
    space = {"parameters": {**FAST["parameters"], "learning_rate": {"type": "float", "low": 1e-3, "high": 9e-3}}}
    code, _, err = run_cli("run", make_study(search_space=space, budget={"n_trials": 2}))
    assert code == 2 and "changed: search_space.learning_rate.high" in err


def test_changed_keys_are_dotted_paths():
    old = {"model": {"name": "m", "max_length": 16}, "source": None, "search_space": {"lr": {"low": 1}}}
    new = {"model": {"name": "m", "max_length": 32}, "source": {"name": "s"}, "search_space": {"lr": {"low": 1}, "wd": {}}}
    assert changed_keys(old, new) == ["model.max_length", "search_space.wd", "source"]


def test_the_evaluation_schedule_is_in_the_contract_and_older_studies_keep_theirs():
    from tuneflow.study.contract import contract_hash, contract_of

    def evaluation(**keys):
        return contract_of({"evaluation": {"batch_size": 64, "every_n_steps": None, **keys}})["evaluation"]

    older = evaluation()  # a record written before evaluation.per_schedule existed: evaluations at epoch ends
    assert older == {"every_n_steps": None} == evaluation(per_schedule="epoch")
    assert evaluation(per_schedule=None) == {"every_n_steps": None, "per_schedule": 4} == evaluation(per_schedule=4)
    assert evaluation(per_schedule=None, every_n_steps=5) == {"every_n_steps": 5}
    assert contract_hash(contract_of({"evaluation": {"per_schedule": None}})) != contract_hash(contract_of({"evaluation": {}}))
