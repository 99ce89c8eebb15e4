"""Passwords in storage URLs never reach output, stored attributes or exports."""

from __future__ import annotations

import uuid

import optuna
import pytest

from tuneflow.config.storage_url import redact_url


def test_redact_url_variants():
    assert redact_url("postgresql+psycopg://bob:s3cret@db:5432/x") == "postgresql+psycopg://bob:***@db:5432/x"
    assert redact_url("redis://:s3cret@localhost:6379/0") == "redis://:***@localhost:6379/0"
    assert redact_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert "s3cret" not in redact_url("error connecting to mysql+pymysql://u:s3cret@h/db: refused")


def test_bad_password_never_printed(make_study, run_cli):
    # A real PostgreSQL URL with a wrong host: the connection fails, and the message must not leak.
    url = "postgresql+psycopg://tuneflow:hunter2secret@127.0.0.1:1/nodb"
    study_file = make_study()
    code, out, err = run_cli("run", study_file, "--storage", url)
    assert code == 2
    assert "hunter2secret" not in out + err
    assert "tuneflow:***@127.0.0.1" in err


@pytest.mark.postgres
def test_password_never_stored_or_exported(make_study, run_cli, tmp_path):
    """PostgreSQL here trusts local connections, so a URL with a password connects and runs a study."""
    pytest.importorskip("psycopg")
    name = f"redaction_{uuid.uuid4().hex[:8]}"
    url = "postgresql+psycopg://postgres:hunter2secret@127.0.0.1:5432/test"
    study_file = make_study(budget={"n_trials": 1}, name=name)
    try:
        code, out, err = run_cli("run", study_file, "--storage", url)
        assert code == 0, err
        study = optuna.load_study(study_name=name, storage=url)
        assert study.user_attrs["tuneflow_config"]["storage"] == "postgresql+psycopg://postgres:***@127.0.0.1:5432/test"
        exported = tmp_path / "e.yaml"
        code, out2, err2 = run_cli("export", "--storage", url, "--study-name", name, "-o", exported)
        code3, out3, err3 = run_cli("best", "--storage", url, "--study-name", name)
        assert code == 0 and code3 == 0
        everything = out + err + out2 + err2 + out3 + err3 + exported.read_text()
        assert "hunter2secret" not in everything
        assert "hunter2secret" not in str(study.user_attrs) + str([t.user_attrs for t in study.trials])
    finally:
        optuna.delete_study(study_name=name, storage=url)
