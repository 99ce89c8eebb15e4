"""Workers explore instead of repeating each other: one sampler stream per trial, sampling outside the lock."""

from __future__ import annotations

import threading

import optuna
import pytest

from tuneflow.config.study_config import SamplerConfig, StorageOptionsConfig
from tuneflow.fleet.budget import AdmissionLock
from tuneflow.study.samplers import trial_samplers
from tuneflow.fleet.storage import open_storage
from tuneflow.fleet.workers import TrialLoop
from worker_processes import assert_exactly, run_pg_workers


def _suggest(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    return x + trial.suggest_int("k", 0, 1000)


def _run(url: str, sampler: SamplerConfig, *, seed: int, n_trials: int, name: str = "s") -> optuna.Study:
    options = StorageOptionsConfig(heartbeat_interval=None)
    storage = open_storage(url, options=options)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    TrialLoop(study, storage=storage, url=url, options=options, objective=_suggest, n_trials=n_trials,
              sampler_for=trial_samplers(sampler, seed=seed)).run()
    return study


@pytest.mark.parametrize("sampler", [SamplerConfig(name="random"), SamplerConfig(name="tpe", kwargs={"n_startup_trials": 3})],
                         ids=["random", "tpe"])
def test_one_worker_with_one_seed_repeats_its_sequence(tmp_path, sampler):
    params = [[t.params for t in _run(f"sqlite:///{tmp_path / f'{run}.db'}", sampler, seed=seed, n_trials=8).trials]
              for run, seed in (("a", 7), ("b", 7), ("c", 8))]
    assert params[0] == params[1]  # same seed, one worker: the same trials, in order
    assert params[0] != params[2]
    assert len({tuple(p.values()) for p in params[0]}) == 8


def _first_draw(sampler) -> float:
    study = optuna.create_study(sampler=sampler)
    return study.ask().suggest_float("x", 0.0, 1.0)


@pytest.mark.parametrize("sampler", [SamplerConfig(name="random"), SamplerConfig(name="tpe", kwargs={"seed": 5})],
                         ids=["random", "tpe-seed-in-kwargs"])
def test_each_trial_number_has_its_own_stream(sampler):
    samplers = trial_samplers(sampler, seed=3)
    draws = [_first_draw(samplers(number)) for number in (0, 1, 2, 0)]
    assert draws[0] == draws[3]  # trial k draws the same whichever worker builds its sampler
    assert len(set(draws[:3])) == 3


def test_grid_and_qmc_share_one_sampler_by_design():
    # Grid point k goes to trial k (the grid is shuffled with the seed); QMC walks one sequence: both
    # need one seed across workers and are distinct without a stream per trial.
    assert trial_samplers(SamplerConfig(name="grid"), seed=0) is None
    assert trial_samplers(SamplerConfig(name="qmc"), seed=0) is None


class _LockProbe(optuna.samplers.RandomSampler):
    """Records, at each sampling step, whether another thread could take the study's admission lock."""

    def __init__(self, lock: AdmissionLock, seen: list[tuple[str, bool]]):
        super().__init__(seed=0)
        self.lock, self.seen = lock, seen

    def _probe(self, step: str) -> None:
        def take() -> None:
            with self.lock():
                pass

        other = threading.Thread(target=take, daemon=True)
        other.start()
        other.join(timeout=5)
        self.seen.append((step, not other.is_alive()))

    def before_trial(self, study, trial) -> None:
        self._probe("before_trial")

    def sample_independent(self, study, trial, name, distribution):
        self._probe("sample_independent")
        return super().sample_independent(study, trial, name, distribution)


def test_sampling_happens_outside_the_admission_lock(tmp_path):
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    options = StorageOptionsConfig(heartbeat_interval=None)
    storage = open_storage(url, options=options)
    study = optuna.create_study(study_name="lock", storage=storage)
    seen: list[tuple[str, bool]] = []
    probe = _LockProbe(AdmissionLock(url, open_storage(url, options=options), "lock"), seen)  # its own file lock
    TrialLoop(study, storage=storage, url=url, options=options, objective=_suggest, n_trials=2,
              sampler_for=lambda number: probe).run()
    assert {step for step, _ in seen} == {"before_trial", "sample_independent"}
    assert all(free for _, free in seen), seen  # the lock covered the count and the reservation only


@pytest.mark.postgres
def test_four_tpe_workers_on_postgres_draw_distinct_trials(worker_study, pg_study_names, tmp_path):
    # Before streams per trial, every worker's sampler had the study seed: trials 0-3 were one
    # configuration drawn four times (TPE's start-up trials are random draws). The random sampler's
    # case is test_workers.test_four_workers_on_postgres_finish_exactly_n_trials.
    sampler = {"name": "tpe", "kwargs": {"n_startup_trials": 3}}  # 3 start-up trials, then TPE proper
    study_file = worker_study(n_trials=8, sampler=sampler, space={"batch_size": {"type": "categorical", "choices": [8, 16]}})
    study = run_pg_workers(tmp_path, study_file, pg_study_names, 4)
    assert_exactly(study, 8)
    configurations = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(configurations)) == 8, configurations
