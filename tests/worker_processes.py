"""Real ``tuneflow worker`` / ``launch`` processes for the many-worker tests, and what they share.

Worker processes start through ``BOOT``, which first imports ``fault_strategies`` (test-only mapping
strategies); the servers are the local PostgreSQL and Redis. Its fixtures (``worker_study``,
``pg_study_names``, and an autouse one that stops what a failed test left running) reach every test
through ``pytest_plugins`` in the root conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import REPO, study_dict, write_study
from tuneflow.fleet.budget import TrialCount

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_URL_WITH_PASSWORD = "postgresql+psycopg://postgres:hunter2secret@127.0.0.1:5432/test"  # trust auth ignores it
REDIS_URL = "redis://127.0.0.1:6379/0"
# Worker processes start through this, so tests/fault_strategies.py registers its misbehaving mapping
# strategies there (and never in this process, whose registry test_readme checks).
BOOT = "import sys, fault_strategies; from tuneflow.cli import main; sys.exit(main(sys.argv[1:]))"
WAIT = 300  # seconds a worker may take at most (a loaded 2-core machine); tests are much faster idle

FAST = {
    "epochs": {"type": "fixed", "value": 1},
    "learning_rate": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True},
    "mapping": {"type": "fixed", "value": "direct"},
}


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def spawn(tmp_path: Path, *argv, label: str = "worker") -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")]),
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }
    log = open(tmp_path / f"{label}-{uuid.uuid4().hex[:6]}.log", "w+")
    proc = subprocess.Popen([sys.executable, "-c", BOOT, *map(str, argv)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    proc.log = log
    _SPAWNED.append(proc)
    return proc


_SPAWNED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _stop_stray_processes():
    """A test that fails before finish() would leave its processes running (a launch's workers, in sessions
    of their own, among them): SIGTERM each one left (a launcher forwards it to its workers), then SIGKILL."""
    yield
    while _SPAWNED:
        proc = _SPAWNED.pop()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.log.close()


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        code = proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    proc.log.seek(0)
    return code, proc.log.read()


def wait_for_running(url: str, name: str, pick, *, timeout: float = WAIT, what: str, still_hoping=lambda: True):
    """The first non-None ``pick(trial)`` over the study's RUNNING trials that have sampled their
    parameters, polled until ``timeout`` (or until ``still_hoping()`` says it cannot come any more)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and still_hoping():
        try:
            study = optuna.load_study(study_name=name, storage=url)
        except KeyError:
            time.sleep(0.2)
            continue
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.params and (found := pick(trial)) is not None:
                return found
        time.sleep(0.1)
    raise AssertionError(f"{what} never ran a trial of {name}")


def wait_for_running_trial(url: str, name: str, pid: int, timeout: float = WAIT) -> int:
    """The number of the trial worker ``pid`` is running, once it has sampled its parameters."""
    return wait_for_running(url, name, lambda t: t.number if str(t.user_attrs.get("worker", "")).endswith(f":{pid}") else None,
                            timeout=timeout, what=f"worker {pid}")


def run_pg_workers(tmp_path: Path, study_file: Path, names: list[str], count: int) -> optuna.Study:
    """Start ``count`` quiet workers of ``study_file`` on the test PostgreSQL, wait for them all to exit 0, return the study."""
    name = study_file.stem
    names.append(name)  # pg_study_names: deleted afterwards
    workers = [spawn(tmp_path, "worker", study_file, "--storage", PG_URL, "--study-name", name, "--quiet") for _ in range(count)]
    results = [finish(w) for w in workers]
    assert all(code == 0 for code, _ in results), results
    return optuna.load_study(study_name=name, storage=PG_URL)


def assert_exactly(study: optuna.Study, n_trials: int) -> TrialCount:
    count = TrialCount.of(study.get_trials(deepcopy=False))
    assert count.finished == n_trials and count.running == 0 and count.waiting == 0, count
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    return count


@pytest.fixture
def worker_study(tmp_path, tiny_model_dir, task_files):
    """A study file whose trials take a fraction of a second (30 training rows, 1 epoch)."""

    def make(*, n_trials: int, space: dict | None = None, grace_period: int = 30, **overrides):
        # Beat every second (workers waiting for peers poll as often); a 30 s grace period keeps a
        # live worker on an overloaded test machine from being taken for dead.
        name = unique("w")
        study = study_dict(
            tiny_model_dir, task_files, name=name,
            search_space={"parameters": {**FAST, **(space or {})}},
            budget={"n_trials": n_trials},
            storage_options={"heartbeat_interval": 1, "grace_period": grace_period},
            **overrides,
        )
        study["target"]["max_train_rows"] = 30
        study["objective"].setdefault("transfer_baseline", False)  # no extra target-only run for the test strategies
        return write_study(tmp_path / f"{name}.yaml", study)

    return make


@pytest.fixture
def pg_study_names():
    """Names to delete from PostgreSQL afterwards."""
    pytest.importorskip("psycopg")
    names: list[str] = []
    yield names
    for name in names:
        try:
            optuna.delete_study(study_name=name, storage=PG_URL)
        except KeyError:
            pass
