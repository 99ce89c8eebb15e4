"""Trial images through Optuna's artifact API: uploaded for complete trials, downloadable, valid PNGs."""

from __future__ import annotations

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
from optuna.trial import TrialState
from PIL import Image

from tuneflow.observe.artifacts import artifacts_dir, sqlite_artifacts_dir
from tuneflow.study.runner import load_config


def _open(study_file):
    config = load_config(study_file)
    storage = optuna.storages.RDBStorage(config.storage_url())
    return optuna.load_study(study_name=config.name, storage=storage), storage, artifacts_dir(config)


def test_complete_trials_upload_images_that_download_back(finished_study, tmp_path):
    study, storage, folder = _open(finished_study)
    assert folder == finished_study.parent / "tiny_artifacts"  # beside tiny.db
    store = FileSystemArtifactStore(folder)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3
    for trial in complete:
        assert "artifact_error" not in trial.user_attrs
        metas = get_all_artifact_meta(trial, storage=storage)
        names = {m.filename for m in metas}
        assert names == {f"trial-{trial.number}-confusion-matrix.png", f"trial-{trial.number}-learning-curve.png"}
        for meta in metas:
            assert meta.mimetype == "image/png"
            path = tmp_path / meta.filename
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=meta.artifact_id)
            with Image.open(path) as image:
                image.verify()  # a complete, valid PNG
                assert image.format == "PNG" and image.size[0] > 200 and image.size[1] > 200


def test_pruned_trials_carry_no_images(finished_study):
    study, storage, _ = _open(finished_study)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert len(pruned) == 1
    assert get_all_artifact_meta(pruned[0], storage=storage) == []


def test_an_artifact_failure_is_recorded_and_the_trial_completes(make_study, run_cli, tmp_path):
    (tmp_path / "blocker").write_text("a file where the artifact folder should be")
    space = {"parameters": {"epochs": {"type": "fixed", "value": 1}, "learning_rate": {"type": "fixed", "value": 1e-3}}}
    study_file = make_study(search_space=space, budget={"n_trials": 1}, artifacts_dir="blocker")
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    trial = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}").trials[0]
    assert trial.state == TrialState.COMPLETE
    assert "blocker" in trial.user_attrs["artifact_error"]


@pytest.mark.parametrize(
    ("storage", "key", "expected"),
    [
        (None, None, "tiny_artifacts"),  # the default SQLite file tiny.db sits beside the study file
        ("sqlite:///{dir}/db/runs.db", None, "db/runs_artifacts"),
        ("postgresql+psycopg://u:pw@127.0.0.1/test", None, "tiny_artifacts"),
        ("postgresql+psycopg://u:pw@127.0.0.1/test", "shared/images", "shared/images"),
    ],
)
def test_artifact_folder_location(make_study, tmp_path, storage, key, expected):
    overrides = {"artifacts_dir": key} if key else {}
    if storage:
        overrides["storage"] = storage.format(dir=tmp_path)
    config = load_config(make_study(**overrides))
    assert artifacts_dir(config) == tmp_path.resolve() / expected


def test_sqlite_artifacts_dir_only_for_files():
    assert sqlite_artifacts_dir("sqlite:///:memory:") is None
    assert sqlite_artifacts_dir("postgresql+psycopg://u@h/db") is None
    assert sqlite_artifacts_dir("sqlite:////data/studies/a.db").as_posix() == "/data/studies/a_artifacts"
