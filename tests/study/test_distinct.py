"""No wasted trials: a sampled trial never repeats a configuration the study measured, is measuring or has queued."""

from __future__ import annotations

import optuna
import pytest

from tuneflow.config.search_space import SearchSpace
from tuneflow.config.study_config import SamplerConfig, StorageOptionsConfig
from tuneflow.study.distinct import DRAFT_ATTR, all_configs, config_key, exhausted, untried_count
from tuneflow.study.samplers import trial_samplers
from tuneflow.fleet.storage import open_storage
from tuneflow.fleet.workers import TrialLoop
from worker_processes import run_pg_workers

# The kind of space: target only, or sequential from one of 4 sources, x 2 learning rates = 10 configurations.
SPACE = SearchSpace.from_mapping({"parameters": {
    "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
    "source": {"type": "categorical", "choices": ["a", "b", "c", "d"], "when": {"mapping": "sequential"}},
    "learning_rate": {"type": "categorical", "choices": [1e-4, 3e-4]},
}}, "test")
TPE = SamplerConfig(name="tpe", kwargs={"n_startup_trials": 3})


def _score(trial: optuna.Trial) -> float:
    # Target only at the larger learning rate is best: TPE, once it knows, keeps proposing it.
    values = SPACE.suggest(trial)
    return (1.0 if values["mapping"] == "direct" else 0.5) + (0.1 if values["learning_rate"] > 2e-4 else 0.0)


def _run(tmp_path, *, space: SearchSpace | None, n_trials: int, name: str = "s", enqueue=()) -> tuple[optuna.Study, TrialLoop]:
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    options = StorageOptionsConfig(heartbeat_interval=None)
    storage = open_storage(url, options=options)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for params in enqueue:
        study.enqueue_trial(params)
    loop = TrialLoop(study, storage=storage, url=url, options=options, objective=_score, n_trials=n_trials,
                     sampler_for=trial_samplers(TPE, seed=0, space=space),
                     nothing_new=(lambda: exhausted(study, space)) if space is not None else None)
    loop.run()
    return study, loop


def _keys(study: optuna.Study) -> list[tuple]:
    return [config_key(t.params) for t in study.trials]


def test_tpe_alone_repeats_configurations_on_a_small_discrete_space(tmp_path):
    # The behaviour this module exists to stop (sampler not wrapped): 8 trials, fewer distinct configurations.
    study, _ = _run(tmp_path, space=None, n_trials=8)
    keys = _keys(study)
    assert len(keys) == 8 and len(set(keys)) < 8


def test_wrapped_tpe_never_repeats_and_stops_when_every_configuration_is_tried(tmp_path, capsys):
    study, loop = _run(tmp_path, space=SPACE, n_trials=14)
    keys = _keys(study)
    assert len(keys) == len(set(keys)) == 10 == len(all_configs(SPACE))  # the whole space, each once, then a stop
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert loop.stopped_because == "all 10 configurations of the search space have been tried"
    assert "all 10 configurations of the search space have been tried; stopping" in capsys.readouterr().err
    # TPE proposed its favourite again and again; each time the nearest untried configuration ran instead.
    drafts = [t.system_attrs[DRAFT_ATTR] for t in study.trials]
    assert any(d.get("nearest_untried") for d in drafts) and drafts[0] == {"attempts": 1}
    assert untried_count(study, SPACE) == 0


def test_the_first_draws_are_the_samplers_own(tmp_path):
    # Wrapping changes nothing until a draw repeats: the start-up trials are the plain sampler's.
    plain, _ = _run(tmp_path, space=None, n_trials=4, name="plain")
    wrapped, _ = _run(tmp_path, space=SPACE, n_trials=4, name="wrapped")
    keys = _keys(plain)
    until_repeat = next((i for i in range(1, len(keys)) if keys[i] in keys[:i]), len(keys))
    assert until_repeat >= 1 and _keys(wrapped)[:until_repeat] == keys[:until_repeat]


def test_a_sampled_trial_does_not_repeat_a_queued_one(tmp_path):
    # Enqueued configurations (coverage, prior, warm starts) run as they are, and sampled trials avoid them.
    queued = [{"mapping": "direct", "learning_rate": lr} for lr in (1e-4, 3e-4)]
    study, _ = _run(tmp_path, space=SPACE, n_trials=6, enqueue=queued)
    keys = _keys(study)
    assert keys[:2] == [config_key(p) for p in queued] and len(set(keys)) == 6


@pytest.mark.parametrize("spec, count", [
    ({"x": {"type": "float", "low": 0.0, "high": 1.0}}, None),  # endless
    ({"x": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25}}, 5),
    ({"x": {"type": "int", "low": 1, "high": 3}, "y": {"type": "categorical", "choices": [1, 2], "when": {"x": 2}}}, 4),
])
def test_all_configs_counts_finite_spaces_with_their_conditions(spec, count):
    configs = all_configs(SearchSpace.from_mapping({"parameters": spec}, "t"))
    assert (configs if configs is None else len(configs)) == count


@pytest.mark.slow  # three worker processes (~15 s quiet); the claims it relies on are covered by test_claims
@pytest.mark.postgres
def test_three_workers_on_postgres_share_a_small_space_without_repeats(worker_study, pg_study_names, tmp_path):
    # 3 learning rates x 2 batch sizes = 6 configurations, a budget of 8: all 6 run once each, then every worker stops.
    space = {"learning_rate": {"type": "categorical", "choices": [1e-3, 2e-3, 3e-3]},
             "batch_size": {"type": "categorical", "choices": [8, 16]}}
    study_file = worker_study(n_trials=8, sampler={"name": "tpe", "kwargs": {"n_startup_trials": 2}}, space=space)
    study = run_pg_workers(tmp_path, study_file, pg_study_names, 3)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len({config_key(t.params) for t in complete}) == len(complete) == 6
    # Two workers may reach for the last configuration together: the one that loses records why and stops.
    others = [t for t in study.trials if t.state != optuna.trial.TrialState.COMPLETE]
    assert all("nothing new to try" in t.user_attrs.get("fail_reason", "") for t in others), [t.user_attrs for t in others]
