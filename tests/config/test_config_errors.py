"""Every config error is one line naming the file and key path; exit 2; nothing written to storage."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from conftest import REPO, study_dict, write_csv, write_study


def _set(d: dict, path: str, value) -> dict:
    d = copy.deepcopy(d)
    *parents, last = path.split(".")
    node = d
    for p in parents:
        node = node[p]
    node[last] = value
    return d


def _space(**params):
    return {"parameters": params}


CASES = [
    # (id, change to the study dict, key path expected in the message, words expected in the message)
    ("unknown key", lambda d: _set(d, "modle", {"name": "x"}), "modle", "did you mean 'model'"),
    ("unknown nested key", lambda d: _set(d, "target.max_rows", 10), "target.max_rows", "did you mean 'max_test_rows'"),
    ("wrong type", lambda d: _set(d, "model.max_length", "long"), "model.max_length", "expected an integer"),
    ("missing key", lambda d: {k: v for k, v in d.items() if k != "target"}, "target", "missing required key"),
    ("low >= high", lambda d: _set(d, "search_space", _space(learning_rate={"type": "float", "low": 0.1, "high": 0.01})),
     "parameters.learning_rate.low", "must be below high"),
    ("log with low <= 0", lambda d: _set(d, "search_space", _space(learning_rate={"type": "float", "low": 0, "high": 1, "log": True})),
     "parameters.learning_rate.log", "log scale needs low > 0"),
    ("unknown sampler", lambda d: _set(d, "sampler", {"name": "tpee"}), "sampler.name", "did you mean 'tpe'"),
    ("unknown pruner", lambda d: _set(d, "pruner", {"name": "medain"}), "pruner.name", "did you mean 'median'"),
    ("bad pruner kwargs", lambda d: _set(d, "pruner", {"name": "median", "kwargs": {"warmup": 1}}), "pruner.kwargs.warmup",
     "unknown MedianPruner argument 'warmup'; did you mean 'n_warmup_steps'?"),
    ("unknown mapping", lambda d: _set(d, "search_space", _space(mapping={"type": "categorical", "choices": ["direct", "sequentail"]})),
     "parameters.mapping", "did you mean 'sequential'"),
    ("unknown parameter", lambda d: _set(d, "search_space", _space(learning_rat={"type": "fixed", "value": 1})),
     "parameters.learning_rat", "did you mean 'learning_rate'"),
    ("unknown method", lambda d: _set(d, "search_space", _space(method={"type": "categorical", "choices": ["ful"]})),
     "parameters.method", "did you mean 'full'"),
    ("range a trial refuses", lambda d: _set(d, "search_space", _space(lora_learning_rate={"type": "float", "low": -1e-3, "high": 1e-3})),
     "parameters.lora_learning_rate", "-0.001: must be positive"),
    ("choice a trial refuses", lambda d: _set(d, "search_space", _space(batch_size={"type": "categorical", "choices": [16, 0]})),
     "parameters.batch_size", "0: must be positive"),
    ("warm-up ratio of 1", lambda d: _set(d, "search_space", _space(warmup_ratio={"type": "float", "low": 0.0, "high": 1.0})),
     "parameters.warmup_ratio", "must be in [0, 1)"),
    ("condition on a later parameter", lambda d: _set(d, "search_space", _space(
        lora_r={"type": "fixed", "value": 4, "when": {"method": "lora"}}, method={"type": "fixed", "value": "lora"})),
     "parameters.lora_r.when.method", "not a parameter defined above"),
    ("unknown metric", lambda d: _set(d, "objective", {"weights": {"f2": 1.0}}), "objective.weights.f2", "did you mean 'f1'"),
    ("negative weight", lambda d: _set(d, "objective", {"weights": {"f1": -1.0}}), "objective.weights.f1", ">= 0"),
    ("missing column", lambda d: _set(d, "target.text_column", "sentence"), "target.text_column", "column 'sentence' not found"),
    ("unreadable file", lambda d: _set(d, "target.files", {"train": "/nonexistent/train.csv"}), "target.files.train", "file not found"),
    ("compile not a boolean", lambda d: _set(d, "compile", "maybe"), "compile", "expected true or false"),
    ("bad storage URL", lambda d: _set(d, "storage", "nosuchdb://x"), "storage", "bad storage URL"),
    ("mapping needs a source", lambda d: _set({k: v for k, v in d.items() if k != "source"}, "search_space",
     _space(mapping={"type": "fixed", "value": "sequential"})), "source", "has no 'source'"),
    ("two data sources", lambda d: _set(d, "target.package", "bbcnews"), "target.package", "exactly one of hub, files, package"),
    ("unknown packaged corpus", lambda d: _set(d, "target", {"name": "t", "package": "bbc"}), "target.package", "did you mean 'bbcnews'"),
    ("coverage key misspelt", lambda d: _set(d, "coverage", {"enabeld": False}), "coverage.enabeld", "did you mean 'enabled'"),
    ("coverage learning rates", lambda d: _set(d, "coverage", {"learning_rates": 4}), "coverage.learning_rates", "must be 1, 2 or 3"),
    ("confirm with one seed", lambda d: _set(d, "confirm", {"top_k": 2, "seeds": 1}), "confirm.seeds", "must be from 2 to 100"),
    ("confirm key misspelt", lambda d: _set(d, "confirm", {"topk": 2}), "confirm.topk", "did you mean 'top_k'"),
    ("confirm in a Pareto study", lambda d: _set(_set(d, "confirm", {}), "objective", {
        "mode": "pareto", "targets": [{"metric": "f1"}, {"metric": "training_seconds", "direction": "minimize"}]}),
     "confirm", "a Pareto study has several"),
    ("evaluations per schedule", lambda d: _set(d, "evaluation", {"per_schedule": 0}), "evaluation.per_schedule", "must be from 1 to 100"),
    ("evaluations per schedule word", lambda d: _set(d, "evaluation", {"per_schedule": "epochs"}), "evaluation.per_schedule",
     "expected an integer | 'epoch'"),
    ("per_schedule and every_n_steps", lambda d: _set(d, "evaluation", {"per_schedule": 4, "every_n_steps": 2}),
     "evaluation.per_schedule", "not both"),
]


@pytest.mark.parametrize("change,key,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_config_error_is_one_line_with_file_and_key(tmp_path, tiny_model_dir, task_files, run_cli, command, change, key, words):
    study_file = write_study(tmp_path / "bad.yaml", change(study_dict(tiny_model_dir, task_files)))
    code, out, err = run_cli(command, study_file)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"tuneflow: error: {study_file}: "), lines[0]
    assert f": {key}: " in lines[0], lines[0]
    assert words in lines[0], lines[0]
    assert "Traceback" not in err
    assert not list(tmp_path.glob("*.db")), "a rejected config wrote to storage"


def test_error_names_the_search_space_file(tmp_path, tiny_model_dir, task_files, run_cli):
    space_file = tmp_path / "space.yaml"
    space_file.write_text("parameters:\n  epochs: {type: int, low: 3, high: 1}\n")
    study_file = write_study(tmp_path / "s.yaml", study_dict(tiny_model_dir, task_files, search_space="space.yaml"))
    code, _, err = run_cli("validate", study_file)
    assert code == 2 and f"{space_file}: parameters.epochs.low: low (3" in err


@pytest.mark.parametrize(
    "rows,key,words",
    [
        ([{"text": "a", "label": 7}, {"text": "b", "label": 0}], "target.label_column", "out of range"),
        ([{"text": "a", "label": "sprot"}, {"text": "b", "label": "sport"}], "target.label_names", "'sprot'"),
        ([], "target.files.train", "is empty"),
    ],
    ids=["label out of range", "unknown string label", "empty split"],
)
def test_data_errors(tmp_path, tiny_model_dir, task_files, run_cli, rows, key, words):
    bad = write_csv(tmp_path / "bad.csv", rows)
    study = study_dict(tiny_model_dir, task_files)
    study["target"]["files"]["train"] = str(bad)
    study_file = write_study(tmp_path / "s.yaml", study)
    code, _, err = run_cli("run", study_file)
    assert code == 2 and f": {key}: " in err and words in err, err
    assert not list(tmp_path.glob("*.db"))


def test_invalid_yaml(tmp_path, run_cli):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    code, _, err = run_cli("validate", path)
    assert code == 2 and str(path) in err and "not valid YAML" in err


def test_missing_study_file(tmp_path, run_cli):
    code, _, err = run_cli("validate", tmp_path / "nope.yaml")
    assert code == 2 and "cannot read file" in err


def test_validate_does_not_import_torch(make_study):
    study_file = make_study()
    code = (
        "import sys; from tuneflow.cli import main; rc = main(['validate', sys.argv[1]]);"
        "assert 'torch' not in sys.modules, 'validate imported torch'; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(study_file)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_top_level_cli_shim_matches_command(make_study):
    study_file = make_study()
    result = subprocess.run([sys.executable, "cli.py", "validate", str(study_file)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr
    bad = subprocess.run([sys.executable, "cli.py", "run", str(study_file) + ".missing"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
