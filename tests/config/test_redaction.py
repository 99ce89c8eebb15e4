"""Passwords in storage URLs never reach output, stored attributes or exports."""

from __future__ import annotations

import uuid

import optuna
import pytest

from tuneflow.config.storage_url import redact_text, redact_url


def test_redact_url_variants():
    assert redact_url("postgresql+psycopg://bob:s3cret@db:5432/x") == "postgresql+psycopg://bob:***@db:5432/x"
    assert redact_url("redis://:s3cret@localhost:6379/0") == "redis://:***@localhost:6379/0"
    assert redact_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert "s3cret" not in redact_url("error connecting to mysql+pymysql://u:s3cret@h/db: refused")


# Passwords with the characters that end a password or a host in a URL. What SQLAlchemy itself takes for
# the password (make_url(url).password) must never show, nor any piece of what the user typed.
SPECIAL_PASSWORDS = [
    # (URL, what SQLAlchemy says the password is, fragments that must not appear)
    ("postgresql+psycopg://bob:p%40ss%3Aw%2Frd@db:5432/x", "p@ss:w/rd", ["p%40ss", "ss%3A", "w%2Frd", "p@ss"]),
    ("postgresql+psycopg://bob:p:ss/wd@db:5432/x", "p:ss/wd", ["p:ss", "ss/wd"]),
    ("mysql+pymysql://bob:pa ss?#@db/x", "pa ss?#", ["pa ss", "ss?#"]),
    # A raw "@": SQLAlchemy stops the password at the first "@" and would render "ss@db" as the host
    # (the old pattern did the same, printing "bob:***@ss@db").
    ("postgresql+psycopg://bob:p@ss@db:5432/x", "p", ["ss@", "p@"]),
]


@pytest.mark.parametrize("url,password,fragments", SPECIAL_PASSWORDS)
def test_special_characters_in_passwords(url, password, fragments):
    from sqlalchemy.engine import make_url

    assert make_url(url).password == password  # what SQLAlchemy reads, so what it would connect with
    shown = redact_url(url)
    assert shown.startswith(url.split("://")[0] + "://bob:***@db") and shown.endswith("/x")
    for fragment in fragments:
        assert fragment not in shown, fragment
    # The same URL inside an error message (the pattern, not SQLAlchemy, redacts free text).
    # A space ends a URL in free text, so there only the caller can hide it: redact_text(text, [password]).
    text = redact_text(f"cannot connect to {url}: timeout", [password] if " " in password else [])
    assert "bob:***@" in text and text.endswith(": timeout")
    assert all(fragment not in text for fragment in fragments), text


def test_urls_without_passwords_come_back_as_written():
    for url in ("postgresql+psycopg://bob@db:5432/x?sslmode=require&application_name=t", "sqlite:///studies/demo.db",
                "journal:///tmp/j.log", "studies/j.jsonl", "redis://localhost:6379/0"):
        assert redact_url(url) == url
    assert redact_url("redis://:p@ss@localhost:6379/0") == "redis://:***@localhost:6379/0"  # redis-py takes the last "@"
    assert redact_text("a mysql://u:pw@h/d and redis://:pw2@h:1/0 both") == "a mysql://u:***@h/d and redis://:***@h:1/0 both"
    assert redact_text("reach me at http://host:8080/x or ops@example.com") == "reach me at http://host:8080/x or ops@example.com"


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
