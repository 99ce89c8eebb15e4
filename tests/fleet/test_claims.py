"""Once-per-study work happens once across workers: claims in storage, exact counters (real PostgreSQL)."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from tuneflow.config.study_config import StorageOptionsConfig
from tuneflow.fleet.budget import gate_for
from tuneflow.fleet.claims import OncePerStudy, claim_of
from tuneflow.fleet.storage import open_storage
from worker_processes import (
    PG_URL,
    assert_exactly,
    finish,
    spawn,
    unique,
)

pytestmark = pytest.mark.postgres
OPTIONS = StorageOptionsConfig(heartbeat_interval=None)


def _once(name: str) -> OncePerStudy:
    """A worker's view: its own storage connection, study object and gate."""
    storage = open_storage(PG_URL, options=OPTIONS)
    study = optuna.load_study(study_name=name, storage=storage)
    return OncePerStudy(gate_for(PG_URL, storage, name), study, poll=0.1)


def _together(n: int, work) -> list:
    """Run ``work(i)`` in n threads released at the same instant; their results in thread order."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


@pytest.fixture
def study_name(pg_study_names):
    name = unique("claims")
    pg_study_names.append(name)
    optuna.create_study(study_name=name, storage=open_storage(PG_URL, options=OPTIONS))
    return name


def test_one_of_many_workers_starting_together_wins_a_claim(study_name):
    onces = [_once(study_name) for _ in range(8)]
    won = _together(8, lambda i: onces[i].claim("prior", done_attr="ranking", ttl=60))
    assert won.count(True) == 1, won  # check-then-act without the lock lets several win
    winner = onces[won.index(True)]
    assert claim_of(winner.study, "prior")["owner"] == winner.owner
    assert not any(o.claim("prior", done_attr="ranking", ttl=60) for o in onces if o is not winner)  # still live
    winner.study.set_user_attr("ranking", {"done": True})
    assert not winner.claim("prior", done_attr="ranking", ttl=60)  # done: nobody does it again


def test_a_claim_whose_owner_vanished_lapses(study_name):
    first, later = _once(study_name), _once(study_name)
    assert first.claim("prior", done_attr="ranking", ttl=0.5)
    assert not later.claim("prior", done_attr="ranking", ttl=0.5)
    time.sleep(1.0)  # the first ranker never finished: its claim is past its ttl
    assert later.claim("prior", done_attr="ranking", ttl=0.5)


def test_trials_needing_one_baseline_wait_for_the_one_that_trains_it(study_name):
    onces = [_once(study_name) for _ in range(3)]
    trials = [onces[0].study.ask() for _ in range(3)]  # three RUNNING trials
    done_at: list[float] = []

    def need_baseline(i: int) -> tuple[bool, float]:
        mine = onces[i].wait_or_claim("transfer_baseline:abc", done_attr="transfer_baseline:abc", trial=trials[i].number)
        if mine:
            time.sleep(1.0)  # "training"
            done_at.append(time.monotonic())
            onces[i].study.set_user_attr("transfer_baseline:abc", {"metrics": {}})
        return mine, time.monotonic()

    outcomes = _together(3, need_baseline)
    assert [mine for mine, _ in outcomes].count(True) == 1, outcomes
    assert all(at >= done_at[0] for mine, at in outcomes if not mine)  # the others waited for the record


def test_a_baseline_claim_dies_with_its_trial(study_name):
    once, other = _once(study_name), _once(study_name)
    owner, waiter = once.study.ask(), once.study.ask()
    assert once.wait_or_claim("transfer_baseline:k", done_attr="transfer_baseline:k", trial=owner.number)
    once.study.tell(owner, state=TrialState.FAIL)  # e.g. out of memory while training the baseline
    started = time.monotonic()
    assert other.wait_or_claim("transfer_baseline:k", done_attr="transfer_baseline:k", trial=waiter.number)
    assert time.monotonic() - started < 5


def test_counters_are_exact_across_workers(study_name):
    onces = [_once(study_name) for _ in range(8)]
    _together(8, lambda i: [onces[i].increment("transfer_baseline_runs") for _ in range(5)])
    assert optuna.load_study(study_name=study_name, storage=PG_URL).user_attrs["transfer_baseline_runs"] == 40


def test_workers_starting_together_rank_once_and_train_each_baseline_once(worker_study, pg_study_names, tmp_path):
    """3 worker processes, ``prior: logme`` and one shared transfer-baseline key: one ranking, one baseline run."""
    # Three configurations that share one baseline key (the source stage's learning rate is not part of it):
    # a study never runs one configuration twice.
    space = {"mapping": {"type": "fixed", "value": "sequential"}, "source_epochs": {"type": "fixed", "value": 1},
             "learning_rate": {"type": "fixed", "value": 3e-3},
             "source_learning_rate": {"type": "categorical", "choices": [1e-3, 2e-3, 3e-3], "when": {"mapping": "sequential"}}}
    study_file = worker_study(n_trials=3, space=space, prior="logme",
                              objective={"weights": {"f1": 1.0}, "transfer_baseline": True})
    name = study_file.stem
    pg_study_names.append(name)
    workers = [spawn(tmp_path, "worker", study_file, "--storage", PG_URL, "--study-name", name) for _ in range(3)]
    results = [finish(w) for w in workers]
    assert all(code == 0 for code, _ in results), results
    rankers = [log for _, log in results if "scoring" in log and "candidate(s)" in log]
    assert len(rankers) == 1, [log[-2000:] for _, log in results]
    study = optuna.load_study(study_name=name, storage=PG_URL)
    assert_exactly(study, 3)
    assert "tuneflow_transferability" in study.user_attrs
    assert study.user_attrs["transfer_baseline_runs"] == 1
    assert len({t.user_attrs["transfer_baseline"] for t in study.trials}) == 1
