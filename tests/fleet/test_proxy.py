"""Large fleets: workers through ``tuneflow proxy`` (Optuna's gRPC storage proxy) on the real PostgreSQL."""

from __future__ import annotations

import re
import signal
import socket
import time

import optuna
import pytest
from optuna.trial import TrialState

from worker_processes import (
    PG_URL,
    WAIT,
    assert_exactly,
    finish,
    spawn,
    wait_for_running_trial,
)

pytestmark = pytest.mark.grpc  # the postgres tests are marked too (conftest skips them without the extras)


@pytest.fixture
def proxy(tmp_path):
    """A ``tuneflow proxy`` process in front of the local PostgreSQL; yields its grpc:// URL."""
    pytest.importorskip("psycopg")
    proc = spawn(tmp_path, "proxy", "--storage", PG_URL, "--port", 0, "--threads", 8, label="proxy")
    deadline = time.monotonic() + WAIT
    url = None
    while url is None and time.monotonic() < deadline and proc.poll() is None:
        proc.log.seek(0)
        found = re.search(r"at (grpc://127\.0\.0\.1:\d+)", proc.log.read())
        url = found.group(1) if found else time.sleep(0.2)
    assert url, finish(proc)
    yield url
    proc.send_signal(signal.SIGTERM)
    code, log = finish(proc)
    assert code == 128 + signal.SIGTERM, log


@pytest.mark.postgres
def test_four_workers_through_the_proxy_keep_the_budget_heartbeats_and_retries(proxy, worker_study, pg_study_names, tmp_path, run_cli):
    """Admission lock, heartbeats and retries all go through the proxy: one worker is killed mid-trial."""
    study_file = worker_study(n_trials=6, space={"mapping": {"type": "fixed", "value": "slow_direct"}}, grace_period=3)
    name = study_file.stem
    pg_study_names.append(name)
    workers = [spawn(tmp_path, "worker", study_file, "--storage", proxy, "--study-name", name, "--quiet") for _ in range(4)]
    victim = workers[0]
    lost = wait_for_running_trial(PG_URL, name, victim.pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    results = [finish(w) for w in workers[1:]]
    assert all(code == 0 for code, _ in results), results
    study = optuna.load_study(study_name=name, storage=PG_URL)
    count = assert_exactly(study, 6)
    assert count.complete == 6 and count.retried == 1
    retry = next(t for t in study.trials if t.user_attrs.get("retry_of") == lost)
    assert retry.state == TrialState.COMPLETE and retry.params == study.trials[lost].params
    first_draws = [tuple(sorted(t.params.items())) for t in study.trials if "retry_of" not in t.user_attrs]
    assert len(set(first_draws)) == len(first_draws)  # distinct work per worker, through the proxy too
    # (slow_direct is registered in the workers only, so status reads no study file here)
    code, out, err = run_cli("status", "--storage", proxy, "--study-name", name)
    assert code == 0 and "budget: 6 of 6 finished" in out and "1 failed trial(s) re-queued" in out, err
    assert "heartbeats: every" in out and "stale trials: 0" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_proxy_errors_are_one_line(make_study, run_cli, tmp_path):
    code, _, err = run_cli("run", make_study(storage=f"grpc://127.0.0.1:{_free_port()}"))
    assert code == 2 and "no proxy answers at grpc://127.0.0.1:" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.db"))
    code, _, err = run_cli("validate", make_study(storage="grpc://nowhere"))
    assert code == 2 and "expected grpc://HOST:PORT" in err
    code, _, err = run_cli("proxy", "--storage", f"journal:///{tmp_path / 'x.log'}")
    assert code == 2 and "the proxy serves an SQL database" in err


def test_a_plain_optuna_proxy_is_refused(make_study, run_cli, tmp_path):
    """Optuna's proxy alone has no budget lock or heartbeats for tuneflow: say so instead of overshooting."""
    from optuna.storages._grpc.server import make_server

    port = _free_port()
    server = make_server(optuna.storages.get_storage(f"sqlite:///{tmp_path / 'plain.db'}"), "127.0.0.1", port)
    server.start()
    try:
        code, _, err = run_cli("run", make_study(storage=f"grpc://127.0.0.1:{port}"))
    finally:
        server.stop(grace=None)
    assert code == 2 and "is a plain Optuna proxy: start `tuneflow proxy`" in err
