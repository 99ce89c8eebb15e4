"""Read-only commands write nothing: `best`, `status`, `report`, `export`, `dashboard`, `confirm` and
`tuneflow.open_study` create no database, journal, lock file or artifact folder; a study that is not there
is one line naming the storage and `tuneflow run`, exit 2. `export` and the report name the storage they
read; `best` shows each learning rate under its parameter's name."""

from __future__ import annotations

import hashlib
import shutil
import uuid

import optuna
import pytest
import yaml

# Each command with what it needs besides the study (outputs go to a folder of their own).
COMMANDS = {
    "best": [],
    "status": [],
    "export": ["-o", "{out}/best.yaml"],
    "report": ["-o", "{out}/report.html"],
    "dashboard": ["--port", "0"],
    "confirm": [],
    "cleanup": [],
}


def _listing(folder) -> dict[str, str]:
    """Every path under ``folder`` with a hash of its bytes: a write anywhere changes it."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _argv(command: str, out) -> list[str]:
    return [a.format(out=out) for a in COMMANDS[command]]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_study_that_never_ran_is_one_line_and_nothing_is_created(make_study, run_cli, tmp_path, tmp_path_factory, command):
    study_file = make_study()
    out = tmp_path_factory.mktemp("out")
    before = _listing(tmp_path)
    code, _, err = run_cli(command, study_file, *_argv(command, out))
    assert code == 2 and "Traceback" not in err, err
    assert err.strip() == (f"tuneflow: error: no study 'tiny' in sqlite:///{tmp_path / 'tiny.db'} "
                           f"(SQLite file '{tmp_path / 'tiny.db'}' does not exist); run it first: tuneflow run {study_file}")
    assert _listing(tmp_path) == before and not list(out.iterdir())


@pytest.mark.parametrize("storage", ["sqlite:///{tmp}/tyni.db", "journal:///{tmp}/tiny.log", "{tmp}/tiny.log"],
                         ids=["sqlite", "journal URL", "journal path"])
@pytest.mark.parametrize("command", ["best", "status", "export", "report", "dashboard"])
def test_a_mistyped_storage_creates_nothing(run_cli, tmp_path, tmp_path_factory, command, storage):
    out = tmp_path_factory.mktemp("out")
    code, _, err = run_cli(command, "--storage", storage.format(tmp=tmp_path), *_argv(command, out))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("tuneflow: error: no study in ") and "does not exist); run it first: tuneflow run STUDY.yaml" in err
    assert not list(tmp_path.iterdir()) and not list(out.iterdir())


@pytest.fixture
def copied_study(finished_study, tmp_path):
    """The shared finished study's database and file in a folder of their own (no lock file, no artifacts yet)."""
    folder = tmp_path / "copy"
    folder.mkdir()
    shutil.copy(finished_study.parent / "tiny.db", folder / "tiny.db")
    return shutil.copy(finished_study, folder / "study.yaml"), finished_study


@pytest.mark.parametrize("command", ["best", "status", "export", "report"])
def test_reading_an_existing_study_writes_nothing_beside_it(copied_study, run_cli, tmp_path_factory, command):
    study_file, _ = copied_study
    out = tmp_path_factory.mktemp("out")
    before = _listing(study_file.parent)
    code, _, err = run_cli(command, study_file, *_argv(command, out))
    assert code == 0, err
    assert _listing(study_file.parent) == before  # same files, same bytes: no lock file, journal or artifact folder


def test_the_dashboard_and_open_study_write_nothing(copied_study):
    import tuneflow
    from tuneflow.observe.dashboard import make_dashboard_server, resolve_target

    study_file, _ = copied_study
    before = _listing(study_file.parent)
    storage, artifacts = resolve_target(str(study_file), storage=None, artifacts=None)
    make_dashboard_server(storage, port=0, artifacts=artifacts).server_close()
    assert tuneflow.open_study(study_file).study_name == "tiny"
    with pytest.raises(tuneflow.ConfigError, match=r"no study 'tyni' in sqlite:///.*\(did you mean 'tiny'\? it holds: tiny\)"):
        tuneflow.open_study(storage=storage, study_name="tyni")
    assert _listing(study_file.parent) == before


@pytest.mark.postgres
def test_a_database_without_optuna_tables_is_left_without_them(run_cli):
    """PostgreSQL: Optuna's RDBStorage would create its tables on connect; the catalogue is read first."""
    import sqlalchemy

    admin = sqlalchemy.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT")
    name = f"tuneflow_ro_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    try:
        url = f"postgresql+psycopg://postgres:s3cr3t-pw@127.0.0.1:5432/{name}"
        code, _, err = run_cli("best", "--storage", url, "--study-name", "x")
        assert code == 2 and "s3cr3t-pw" not in err
        assert err.strip() == (f"tuneflow: error: no study 'x' in postgresql+psycopg://postgres:***@127.0.0.1:5432/{name} "
                               "(the database holds no Optuna studies); run it first: tuneflow run STUDY.yaml")
        engine = sqlalchemy.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        try:
            assert sqlalchemy.inspect(engine).get_table_names() == []
        finally:
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


# -- the storage they name, the learning rates they show ------------------------------------------------


def test_export_and_report_name_the_storage_they_read(copied_study, run_cli, tmp_path):
    study_file, original = copied_study
    read = f"sqlite:///{study_file.parent / 'tiny.db'}"
    code, _, err = run_cli("export", "--storage", read, "-o", tmp_path / "best.yaml")
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "best.yaml").read_text())["storage"] == read
    code, _, err = run_cli("report", study_file, "-o", tmp_path / "report.html")
    assert code == 0, err
    html = (tmp_path / "report.html").read_text()
    assert f'<td class="l">storage</td><td class="l">{read}</td>' in html
    first = f"sqlite:///{original.parent / 'tiny.db'}"
    assert f'<td class="l">first run from storage</td><td class="l">{first}</td>' in html
    assert f"storage: {read}" in html  # the best configuration's YAML, as `export` writes it


def test_best_names_each_learning_rate_after_its_parameter(tmp_path, run_cli):
    """The encoder's rate is `learning_rate` for every trial; LoRA's own rate has its own column."""
    url = f"sqlite:///{tmp_path / 'rates.db'}"
    study = optuna.create_study(study_name="rates", storage=url, direction="maximize")
    for number, (method, rates) in enumerate([("full", {"learning_rate": 2e-5}),
                                              ("lora", {"learning_rate": 3e-5, "lora_learning_rate": 4e-4})]):
        trial = study.ask()
        trial.set_user_attr("params", {"method": method, "mapping": "direct", **rates})
        study.tell(trial, 0.5 + number / 10)
    code, out, err = run_cli("best", "--storage", url)
    assert code == 0, err
    header, _, lora_row, full_row = out.splitlines()[1:5]
    names = header.split()
    column = names.index("learning_rate")
    assert names[column + 1] == "lora_learning_rate" and "lr" not in names
    assert lora_row.split()[column:column + 2] == ["3.00e-05", "4.00e-04"]
    assert full_row.split()[column:column + 2] == ["2.00e-05", "-"]
