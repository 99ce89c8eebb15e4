"""`tuneflow dashboard`: optuna-dashboard on loopback with the artifact store, its JSON API, a real browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import optuna
import pytest

from conftest import REPO
from tuneflow.study.runner import load_config
from tuneflow.observe.dashboard import NOTE_FOOTER, make_dashboard_server, resolve_target, study_note, sync_study_note

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


@pytest.fixture
def dashboard(finished_study):
    """The dashboard of the finished study, served from a thread on a free loopback port."""
    storage, artifacts = resolve_target(str(finished_study), storage=None, artifacts=None)
    server = make_dashboard_server(storage, host="127.0.0.1", port=0, artifacts=artifacts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_api_lists_the_study_with_metric_names_note_and_images(dashboard):
    studies = json.loads(_get(f"{dashboard}/api/studies"))["study_summaries"]
    assert [s["study_name"] for s in studies] == ["tiny"]
    study_id = studies[0]["study_id"]
    detail = json.loads(_get(f"{dashboard}/api/studies/{study_id}"))
    assert detail["objective_names"] == ["objective"]
    note = detail["note"]["body"]
    assert "## tiny" in note and "### Search space" in note and "`learning_rate`" in note and note.endswith(NOTE_FOOTER)
    assert json.loads(_get(f"{dashboard}/api/meta"))["artifact_is_available"] is True
    complete = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert len(complete) == 3
    for trial in complete:
        assert {a["filename"] for a in trial["artifacts"]} == {
            f"trial-{trial['number']}-confusion-matrix.png", f"trial-{trial['number']}-learning-curve.png"
        }
        # user attrs carry every metric, so the dashboard's tables show them
        assert {"accuracy", "precision", "recall", "f1"} <= {a["key"] for a in trial["user_attrs"]}
    artifact = complete[0]["artifacts"][0]
    image = _get(f"{dashboard}/artifacts/{study_id}/{complete[0]['trial_id']}/{artifact['artifact_id']}")
    assert image.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's `chromium` package)")
def test_dashboard_renders_the_study_in_headless_chromium(finished_study, tmp_path):
    # The real command in a subprocess; --port 0 picks a free port, which it prints first.
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    server = subprocess.Popen(
        [sys.executable, "-m", "tuneflow", "dashboard", str(finished_study), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        first = server.stdout.readline()  # blocks until the server listens (or exits)
        assert first.startswith("optuna-dashboard: http://127.0.0.1:"), first + server.stderr.read()
        url = first.split()[-1]
        assert "tiny_artifacts" in server.stdout.readline()
        screenshot = tmp_path / "dashboard.png"
        browser = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
        ]
        dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        subprocess.run([*browser, f"--screenshot={screenshot}", "--window-size=1280,800", url], capture_output=True, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=30)
    # The study list is drawn by the dashboard's JavaScript: the name is only in the DOM if it ran.
    assert ">1. tiny<" in dom, dom[-2000:]
    assert screenshot.stat().st_size > 5000 and screenshot.read_bytes().startswith(b"\x89PNG")


def test_note_describes_the_study_without_the_password(make_study):
    config = load_config(make_study(storage="postgresql+psycopg://postgres:s3cr3t-pw@127.0.0.1:5432/test"))
    note = study_note(config)
    assert "s3cr3t-pw" not in note and "postgres:***@127.0.0.1" in note
    for text in (f"`{config.model.name}` (max length 16)", "`topics`", "`sentiment`", "maximize 1·`f1` + 1·`accuracy`", "`random`", "`none`",
                 "3 trials", "`learning_rate`", "| `lora_r` | categorical | 4 | method = lora |", NOTE_FOOTER):
        assert text in note, text


def test_note_follows_the_study_file_until_someone_edits_it(make_study):
    from optuna_dashboard import get_note, save_note

    study = optuna.create_study()
    config = load_config(make_study())
    sync_study_note(study, config)
    assert get_note(study) == study_note(config)
    changed = load_config(make_study(budget={"n_trials": 7}))
    sync_study_note(study, changed)
    assert "7 trials" in get_note(study)
    save_note(study, "my own notes")  # edited in the dashboard: the footer is gone
    sync_study_note(study, config)
    assert get_note(study) == "my own notes"


def test_dashboard_refuses_a_missing_database(run_cli, tmp_path):
    code, _, err = run_cli("dashboard", "--storage", f"sqlite:///{tmp_path / 'nope.db'}", "--port", "0")
    assert code == 2 and f"no study in sqlite:///{tmp_path / 'nope.db'}" in err and "run it first" in err
    assert not list(tmp_path.iterdir())  # nothing was created: no database, no lock file


@pytest.mark.postgres
def test_printed_storage_url_is_redacted(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    url = "postgresql+psycopg://postgres:s3cr3t-pw@127.0.0.1:5432/test"
    optuna.storages.RDBStorage(url)  # Optuna's tables: the dashboard serves only a database that has them
    server = subprocess.Popen(
        [sys.executable, "-m", "tuneflow", "dashboard", "--storage", url, "--port", "0", "--artifacts-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        lines = server.stdout.readline() + server.stdout.readline()
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "http://127.0.0.1:" in lines and "postgres:***@127.0.0.1" in lines
    assert "s3cr3t-pw" not in lines + err


def test_default_target_is_loopback_and_the_study_artifacts(finished_study):
    from tuneflow.cli.main import build_parser

    args = build_parser().parse_args(["dashboard", str(finished_study)])
    assert (args.host, args.port) == ("127.0.0.1", 8080)
    storage, artifacts = resolve_target(str(finished_study), storage=None, artifacts=None)
    assert storage == f"sqlite:///{finished_study.parent / 'tiny.db'}" and artifacts == finished_study.parent / "tiny_artifacts"
    assert Path(resolve_target(None, storage=storage, artifacts=None)[1]) == artifacts  # found beside the SQLite file too
