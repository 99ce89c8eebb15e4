"""`validate` checks what `run` needs without training: columns of every split, models, sampler / pruner
arguments, conditions and files. Each case: one line naming the file and key (with did-you-mean), exit 2,
the same refusal from `run`, nothing written; the API raises ConfigError."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import REPO, study_dict, write_csv, write_study


def _listing(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _refused(run_cli, study_file, key: str, words: str, *, commands=("validate", "run")) -> None:
    """Each command refuses in one line naming the file and key, the API raises ConfigError, nothing is written."""
    import tuneflow

    before = _listing(study_file.parent)
    for command in commands:
        code, _, err = run_cli(command, study_file)
        line = err.strip().splitlines()[-1] if err.strip() else ""
        assert code == 2 and "Traceback" not in err, err
        assert line.startswith("tuneflow: error: ") and f"{study_file.name}: {key}: " in line and words in line, line
    with pytest.raises(tuneflow.ConfigError) as raised:
        tuneflow.validate(study_file)
    assert f": {key}: " in str(raised.value)
    assert _listing(study_file.parent) == before, "a refused study wrote something"


def _edit(tiny_model_dir, task_files, change) -> dict:
    study = study_dict(tiny_model_dir, task_files)
    change(study)
    return study


# -- columns, in every split of every task ------------------------------------------------------------


def test_a_missing_label_column_names_the_file_and_its_columns(tmp_path, tiny_model_dir, task_files, run_cli):
    import tuneflow

    study = _edit(tiny_model_dir, task_files, lambda s: s["target"].update(label_column="lable"))
    study_file = write_study(tmp_path / "study.yaml", study)
    _refused(run_cli, study_file, "target.label_column",
             f"column 'lable' not found in {task_files['target_train']} (train split); did you mean 'label'? its columns: text, label")
    with pytest.raises(tuneflow.ConfigError, match="target.label_column"):  # not pandas' "No objects to concatenate"
        tuneflow.run(study_file, quiet=True)


def test_every_split_is_checked_not_only_train(tmp_path, tiny_model_dir, task_files, run_cli):
    test_rows = [{"text": "goal match", "topic": "sport"}, {"text": "bank trade", "topic": "money"}]
    bad_test = write_csv(tmp_path / "data" / "test_topic.csv", test_rows)
    study = _edit(tiny_model_dir, task_files, lambda s: s["target"]["files"].update(test=str(bad_test)))
    _refused(run_cli, write_study(tmp_path / "study.yaml", study), "target.label_column",
             f"column 'label' not found in {bad_test} (test split); its columns: text, topic")


def test_a_missing_pair_column_of_a_source_and_of_one_of_several_sources(tmp_path, tiny_model_dir, task_files, run_cli):
    study = _edit(tiny_model_dir, task_files, lambda s: s["source"].update(text_pair_column="txt"))
    _refused(run_cli, write_study(tmp_path / "one.yaml", study), "source.text_pair_column", "column 'txt' not found")

    second = write_csv(tmp_path / "data" / "second.csv", [{"sentence": "good", "label": 0}, {"sentence": "bad", "label": 1}] * 5)
    study = study_dict(tiny_model_dir, task_files)
    study["sources"] = [study.pop("source"), {"name": "second", "files": {"train": str(second)}}]
    _refused(run_cli, write_study(tmp_path / "two.yaml", study), "sources[1].text_column",
             "column 'text' not found in " + str(second) + " (train split); its columns: sentence, label")


# -- models --------------------------------------------------------------------------------------------


def test_every_model_gets_its_resolved_line(tmp_path, tiny_model_dir, task_files, run_cli):
    code, out, err = run_cli("validate", write_study(tmp_path / "one.yaml", study_dict(tiny_model_dir, task_files)))
    assert code == 0 and out.splitlines()[0].endswith(": OK"), err
    assert f"  model '{tiny_model_dir.name}': local folder {tiny_model_dir} (bert, 2 layers)" in out.splitlines()
    study = study_dict(tiny_model_dir, task_files)
    study["model"] = {"candidates": [{"name": str(tiny_model_dir), "label": "a"}, {"name": str(tiny_model_dir), "label": "b"}],
                      "max_length": 16}
    code, out, err = run_cli("validate", write_study(tmp_path / "two.yaml", study))
    assert code == 0 and "  model 'a': local folder" in out and "  model 'b': local folder" in out, err


@pytest.mark.parametrize("case", ["missing folder", "no config.json", "no tokenizer"])
def test_a_local_model_folder_must_hold_a_config_and_a_tokenizer(tmp_path, tiny_model_dir, task_files, run_cli, case):
    import shutil

    if case == "missing folder":
        (tmp_path / "models" / "tiny-bert").mkdir(parents=True)
        name, words = "models/tiny-brt", "model folder 'models/tiny-brt' not found"
        words += " (looked in the working directory and beside the study file); did you mean 'tiny-bert'?"
    else:
        folder = tmp_path / "model"
        shutil.copytree(tiny_model_dir, folder)
        for file in (["config.json"] if case == "no config.json" else ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]):
            (folder / file).unlink(missing_ok=True)
        name, words = str(folder), f"model folder '{folder}' has no {'config.json' if case == 'no config.json' else 'tokenizer'}"
    study = _edit(tiny_model_dir, task_files, lambda s: s["model"].update(name=name))
    _refused(run_cli, write_study(tmp_path / "study.yaml", study), "model.name", words)


def test_a_hub_id_offline_is_not_checked_and_never_reported_as_ok(tmp_path, tiny_model_dir, task_files, run_cli, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    study = _edit(tiny_model_dir, task_files, lambda s: s["model"].update(name="made-up-org/no-such-model-xyz"))
    study_file = write_study(tmp_path / "study.yaml", study)
    code, out, err = run_cli("validate", study_file)
    lines = out.splitlines()
    assert code == 0, err
    assert lines[0] == f"{study_file}: OK as far as checked; not checked offline: model 'no-such-model-xyz'"
    assert "  model 'no-such-model-xyz': hub id made-up-org/no-such-model-xyz, not checked offline" in lines


class _Hub(BaseHTTPRequestHandler):
    """A stand-in for the hub's model API on loopback (this machine has no network): one model exists."""

    def do_GET(self):  # noqa: N802 - http.server's name
        found = self.path.startswith("/api/models/real-org/real-model")
        body = json.dumps({"id": "real-org/real-model", "sha": "0" * 40,
                           "siblings": [{"rfilename": "config.json"}, {"rfilename": "tokenizer.json"}]}
                          if found else {"error": "Repository not found"}).encode()
        self.send_response(200 if found else 404)
        if not found:
            self.send_header("X-Error-Code", "RepoNotFound")  # what the hub sends for an unknown repository
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub_endpoint(monkeypatch):
    from huggingface_hub import constants

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    yield
    server.shutdown()
    server.server_close()


def test_a_hub_id_online_must_exist_on_the_hub(tmp_path, tiny_model_dir, task_files, run_cli, hub_endpoint):
    study = _edit(tiny_model_dir, task_files, lambda s: s["model"].update(name="made-up-org/no-such-model-xyz"))
    _refused(run_cli, write_study(tmp_path / "made_up.yaml", study), "model.name",
             "no local folder and no hub model named 'made-up-org/no-such-model-xyz'", commands=("validate",))
    study = _edit(tiny_model_dir, task_files, lambda s: s["model"].update(name="real-org/real-model"))
    code, out, err = run_cli("validate", write_study(tmp_path / "real.yaml", study))
    assert code == 0 and out.splitlines()[0].endswith(": OK"), err
    assert "  model 'real-model': hub model real-org/real-model (found on the hub)" in out


def test_model_checks_import_no_torch(tmp_path, tiny_model_dir, task_files):
    study = study_dict(tiny_model_dir, task_files)
    study["model"] = {"candidates": [{"name": str(tiny_model_dir), "label": "local"}, {"name": "made-up-org/no-such-model-xyz"}],
                      "max_length": 16}
    code = ("import sys; from tuneflow.cli import main; rc = main(['validate', sys.argv[1]]);"
            "assert 'torch' not in sys.modules, 'validate imported torch'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(write_study(tmp_path / "s.yaml", study))], capture_output=True,
                            text=True, cwd=REPO, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "model 'local': local folder" in result.stdout and "not checked offline" in result.stdout


# -- sampler / pruner arguments, conditions, files -----------------------------------------------------


@pytest.mark.parametrize("change,key,words", [
    (lambda s: s.update(sampler={"name": "tpe", "kwargs": {"n_startup_trial": 2}}), "sampler.kwargs.n_startup_trial",
     "unknown TPESampler argument 'n_startup_trial'; did you mean 'n_startup_trials'?"),
    (lambda s: s.update(pruner={"name": "percentile", "kwargs": {"percentil": 25.0}}), "pruner.kwargs.percentil",
     "unknown PercentilePruner argument 'percentil'; did you mean 'percentile'?"),
    (lambda s: s["search_space"]["parameters"]["lora_r"].update(when={"metod": "lora"}), "parameters.lora_r.when.metod",
     "condition refers to 'metod', which is not a parameter defined above (did you mean 'method'?"),
], ids=["sampler kwargs", "pruner kwargs", "when: unknown parameter"])
def test_arguments_and_conditions_get_did_you_mean(tmp_path, tiny_model_dir, task_files, run_cli, change, key, words):
    _refused(run_cli, write_study(tmp_path / "study.yaml", _edit(tiny_model_dir, task_files, change)), key, words)


@pytest.mark.parametrize("case", ["data file", "search space file", "prior candidates"])
def test_a_missing_file_gets_did_you_mean(tmp_path, tiny_model_dir, task_files, run_cli, case):
    if case == "data file":
        change, key = (lambda s: s["target"]["files"].update(train=str(tmp_path / "data" / "target_trian.csv"))), "target.files.train"
        words = f"file not found: {tmp_path / 'data' / 'target_trian.csv'}; did you mean 'target_train.csv'?"
    elif case == "search space file":
        (tmp_path / "my_space.yaml").write_text("parameters:\n  epochs: {type: fixed, value: 1}\n")
        change, key, words = (lambda s: s.update(search_space="my_spcae.yaml")), "search_space", "did you mean 'my_space.yaml'?"
    else:
        (tmp_path / "candidates.yaml").write_text("candidates: [{pooling: cls}]\n")
        change, key = (lambda s: s.update(prior="logme", prior_candidates="candidate.yaml")), "prior_candidates"
        words = f"file not found: {tmp_path / 'candidate.yaml'}; did you mean 'candidates.yaml'?"
    _refused(run_cli, write_study(tmp_path / "study.yaml", _edit(tiny_model_dir, task_files, change)), key, words)
