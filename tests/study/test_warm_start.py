"""``warm_start:``: the best configurations of earlier studies are enqueued once, fitted to this space.

Earlier studies are real storages: crafted with ``optuna.create_trial`` + ``study.add_trial`` (so a
test controls values and out-of-range parameters), or a real tiny tuneflow study (``finished_study``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from conftest import REPO
from tuneflow.config.search_space import SearchSpace
from tuneflow.fleet.budget import gate_for
from tuneflow.fleet.claims import OncePerStudy
from tuneflow.study.runner import load_config
from tuneflow.fleet.storage import open_storage
from tuneflow.study.warm_start import ATTR_PREFIX, TRIAL_ATTR, apply_warm_starts, best_first, fit_to_space, warm_records

# Cheap trials: no source stage, no baseline, a head or LoRA on the tiny model.
SPACE = {"parameters": {
    "learning_rate": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True},
    "batch_size": {"type": "categorical", "choices": [16, 32]},
    "epochs": {"type": "int", "low": 1, "high": 2},
    "method": {"type": "categorical", "choices": ["head_only", "lora"]},
    "lora_r": {"type": "categorical", "choices": [4], "when": {"method": "lora"}},
    "mapping": {"type": "fixed", "value": "direct"},
}}
DISTRIBUTIONS = {
    "learning_rate": FloatDistribution(1e-5, 1e-1, log=True), "batch_size": CategoricalDistribution([16, 32, 64]),
    "epochs": IntDistribution(1, 10), "method": CategoricalDistribution(["head_only", "full", "lora"]),
    "mapping": CategoricalDistribution(["direct", "sequential"]), "warmup_ratio": FloatDistribution(0.0, 0.5),
}
# value, params: the best cannot fit (batch 64 is no choice here); the second is clipped (lr, epochs).
EARLIER = [
    (0.95, {"learning_rate": 2e-3, "batch_size": 64, "epochs": 1, "method": "head_only", "mapping": "direct"}),
    (0.90, {"learning_rate": 2e-2, "batch_size": 32, "epochs": 7, "method": "head_only", "mapping": "direct", "warmup_ratio": 0.1}),
    (0.50, {"learning_rate": 3e-3, "batch_size": 16, "epochs": 1, "method": "lora", "mapping": "direct"}),
]


def _earlier_study(url: str, name: str = "earlier", trials=EARLIER, directions=("maximize",)) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=url, directions=list(directions))
    for values, params in trials:
        values = list(values) if isinstance(values, tuple) else [values]
        study.add_trial(create_trial(values=values, params=params, distributions={k: DISTRIBUTIONS[k] for k in params}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"batch_size": 16}, distributions={"batch_size": DISTRIBUTIONS["batch_size"]}))
    return study


def _this_study(study_file, name="tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_file.parent / (name + '.db')}")


def test_the_earlier_best_is_enqueued_clipped_and_once_across_a_resume(make_study, run_cli, tmp_path):
    _earlier_study(f"sqlite:///{tmp_path / 'earlier.db'}")
    warm = [{"storage": "sqlite:///earlier.db", "study": "earlier", "top_k": 2}]  # relative: beside the study file
    study_file = make_study(search_space=SPACE, budget={"n_trials": 1}, warm_start=warm)
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    (trial,) = _this_study(study_file).trials
    # Trial 1 of the earlier study (trial 0 has batch 64, which this space cannot take), moved into this space.
    assert trial.state == TrialState.COMPLETE
    assert trial.params == {"learning_rate": 5e-3, "batch_size": 32, "epochs": 2, "method": "head_only"}
    assert isinstance(trial.params["epochs"], int)
    origin = trial.user_attrs[TRIAL_ATTR]
    assert {k: origin[k] for k in ("storage", "study", "trial", "value")} == {
        "storage": f"sqlite:///{tmp_path / 'earlier.db'}", "study": "earlier", "trial": 1, "value": 0.90}
    assert origin["clipped"] == [{"param": "learning_rate", "from": 2e-2, "to": 5e-3}, {"param": "epochs", "from": 7, "to": 2}]
    (record,) = warm_records(_this_study(study_file).user_attrs)
    assert [s["trial"] for s in record["skipped"]] == [0] and "batch_size=64" in record["skipped"][0]["reason"]
    assert record["dropped"] == {"earlier": {"mapping": "this space fixes it to 'direct'", "warmup_ratio": "this space lacks it"}}
    assert err.count("dropped parameter(s) mapping (this space fixes it to 'direct'), warmup_ratio (this space lacks it)") == 1
    assert "enqueued 1 configuration(s) from study 'earlier' (its trials 1)" in err

    # Resumed: a sampled trial only, still one warm-started trial per earlier configuration.
    code, _, err = run_cli("run", study_file, "--n-trials", "1")
    assert code == 0, err
    assert "warm start" not in err
    study = _this_study(study_file)
    assert len(study.trials) == 2
    assert [t.number for t in study.trials if TRIAL_ATTR in t.user_attrs] == [0]
    assert len([k for k in study.user_attrs if k.startswith(ATTR_PREFIX)]) == 1


def test_an_entry_added_to_a_running_study_enqueues_only_what_is_new(make_study, tmp_path):
    url = f"sqlite:///{tmp_path / 'earlier.db'}"
    _earlier_study(url)
    first = make_study(search_space=SPACE, warm_start=[{"storage": url, "study": "earlier", "top_k": 2}])
    config = load_config(first)
    study = optuna.create_study(study_name="tiny", storage=config.storage_url(), direction="maximize")
    once = OncePerStudy(gate_for(config.storage_url(), study._storage, "tiny"), study)
    assert len(apply_warm_starts(config, study, once=once)["enqueued"]) == 1
    assert apply_warm_starts(config, study, once=once) is None  # the same entries: done already
    # top_k raised to 3: trial 2 is new; trial 1 is not enqueued again.
    wider = load_config(make_study(search_space=SPACE, warm_start=[{"storage": url, "study": "earlier", "top_k": 3}]))
    record = apply_warm_starts(wider, study, once=once)
    assert [e["trial"] for e in record["enqueued"]] == [2]
    assert {s["trial"]: s["reason"] for s in record["skipped"]}[1] == "enqueued already by an earlier warm start of this study"
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs[TRIAL_ATTR]["trial"] for t in waiting] == [1, 2]
    assert waiting[1].system_attrs["fixed_params"] == {"learning_rate": 3e-3, "batch_size": 16, "epochs": 1, "method": "lora"}


def test_a_warm_start_is_no_part_of_the_contract(make_study, tmp_path):
    from tuneflow.study.runner import plan_study

    _earlier_study(f"sqlite:///{tmp_path / 'earlier.db'}")
    plain = plan_study(make_study(search_space=SPACE))
    warm = plan_study(make_study("warm.yaml", search_space=SPACE, warm_start=[{"storage": "sqlite:///earlier.db", "study": "earlier"}]))
    assert warm.config.warm_start and warm.record["contract"] == plain.record["contract"]  # resuming with one added is allowed


def test_workers_starting_together_enqueue_once(make_study, tmp_path):
    url = f"sqlite:///{tmp_path / 'earlier.db'}"
    _earlier_study(url)
    config = load_config(make_study(search_space=SPACE, warm_start=[{"storage": url, "study": "earlier", "top_k": 3}]))
    optuna.create_study(study_name="tiny", storage=config.storage_url(), direction="maximize")
    n = 4
    barrier, results = threading.Barrier(n), [None] * n

    def worker(i: int) -> None:  # each with its own storage connection, study object and claim owner
        storage = open_storage(config.storage_url(), options=config.storage_options)
        study = optuna.load_study(study_name="tiny", storage=storage)
        once = OncePerStudy(gate_for(config.storage_url(), storage, "tiny"), study)
        barrier.wait()
        results[i] = apply_warm_starts(config, study, once=once)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(r is not None for r in results) == 1
    study = optuna.load_study(study_name="tiny", storage=config.storage_url())
    assert sorted(t.user_attrs[TRIAL_ATTR]["trial"] for t in study.trials) == [1, 2]  # trial 0 cannot fit: skipped


def test_fitting_clips_onto_steps_keeps_ints_and_skips_impossible_values():
    space = SearchSpace.from_mapping({"parameters": {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.25, "step": 0.1},  # grid 0, .1, .2
        "epochs": {"type": "int", "low": 2, "high": 9, "step": 3},  # grid 2, 5, 8
        "lora_r": {"type": "categorical", "choices": [4, 8]},
        "freeze": {"type": "categorical", "choices": [True, False]},
        "method": {"type": "fixed", "value": "lora"},
    }}, "<test>")
    fitted = fit_to_space({"learning_rate": 5e-6, "warmup_ratio": 0.24, "epochs": 9.6, "lora_r": 8.0, "freeze": False,
                           "method": "full", "dropout": 0.1}, space)
    assert fitted.reason is None
    assert fitted.params == {"learning_rate": 1e-4, "warmup_ratio": pytest.approx(0.2), "epochs": 8, "lora_r": 8, "freeze": False}
    assert isinstance(fitted.params["epochs"], int) and isinstance(fitted.params["lora_r"], int)
    assert fitted.dropped == {"method": "this space fixes it to 'lora'", "dropout": "this space lacks it"}
    assert [c["param"] for c in fitted.clipped] == ["learning_rate", "warmup_ratio", "epochs"]
    assert fit_to_space({"epochs": 1}, space).params == {"epochs": 2}
    # A value the space cannot take skips the configuration: 1 is not True, 16 no lora_r here, "x" no number.
    assert "freeze=1" in fit_to_space({"freeze": 1}, space).reason
    assert fit_to_space({"lora_r": 16}, space).params is None
    assert "is not a number" in fit_to_space({"epochs": "x"}, space).reason


def test_a_parameter_whose_condition_fails_here_is_left_out_not_checked():
    space = SearchSpace.from_mapping(SPACE, "<test>")  # lora_r: [4], only when method is lora; mapping fixed direct
    assert fit_to_space({"method": "head_only", "lora_r": 16}, space) == fit_to_space({"method": "head_only"}, space)
    assert fit_to_space({"method": "head_only", "lora_r": 16}, space).params == {"method": "head_only"}
    assert "lora_r=16" in fit_to_space({"method": "lora", "lora_r": 16}, space).reason
    with_source = SearchSpace.from_mapping({"parameters": {
        "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
        "source_epochs": {"type": "categorical", "choices": [1], "when": {"mapping": "sequential"}}}}, "<test>")
    assert fit_to_space({"mapping": "direct", "source_epochs": 3}, with_source).params == {"mapping": "direct"}
    assert fit_to_space({"mapping": "sequential", "source_epochs": 3}, with_source).params is None


def test_a_multi_objective_earlier_study_gives_its_pareto_front_first():
    study = _earlier_study(None, trials=[((0.70, 5.0), {"batch_size": 16}), ((0.90, 9.0), {"batch_size": 32}),
                                          ((0.50, 0.5), {"batch_size": 64}), ((0.95, 1.0), {"batch_size": 16})],
                           directions=("maximize", "minimize"))
    # The front is trials 3 (best first objective) and 2 (cheapest); 0 and 1 are dominated by 3. By the
    # first objective alone the order would be 3, 1, 0, 2: the front comes first instead.
    assert [t.number for t in best_first(study, None)] == [3, 2, 1, 0]
    assert [t.number for t in best_first(study, 2)] == [3, 2]
    single = _earlier_study(None, name="single", directions=("minimize",))
    assert [t.number for t in best_first(single, None)] == [2, 1, 0]  # failed trial 3 never counts


def test_a_real_tuneflow_study_warm_starts_another_and_the_report_shows_it(finished_study, make_study, run_cli, tmp_path):
    earlier = optuna.load_study(study_name="tiny", storage=f"sqlite:///{finished_study.parent / 'tiny.db'}")
    complete = [t for t in earlier.trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value)
    relative = os.path.relpath(finished_study.parent / "tiny.db", tmp_path)
    space = {"parameters": {**SPACE["parameters"], "method": {"type": "categorical", "choices": ["full", "lora"]}}}
    study_file = make_study(name="again", search_space=space, budget={"n_trials": 1},
                            warm_start=[{"storage": f"sqlite:///{relative}", "study": "tiny"}])
    code, out, err = run_cli("validate", study_file)
    assert code == 0, err
    assert f"warm start from study 'tiny' (sqlite:///{finished_study.parent / 'tiny.db'}): {len(complete)} complete trial(s); " \
           "of its best 1, 1 fit this space" in out
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    (trial,) = _this_study(study_file, "again").trials
    expected = {k: v for k, v in best.params.items() if k in ("learning_rate", "batch_size", "epochs", "method")}
    assert {k: trial.params[k] for k in expected} == expected and trial.user_attrs[TRIAL_ATTR]["trial"] == best.number
    assert trial.user_attrs[TRIAL_ATTR]["value"] == best.value
    from tuneflow.observe.report import build_report

    html = build_report(_this_study(study_file, "again"))
    section = html.split('<section id="warm-start">')[1].split("</section>")[0]
    row = section.split("<tbody>")[1].split("</tr>")[0]  # the warm-started trial's row
    cells = [c.rsplit(">", 1)[1] for c in row.split("</td>")[:-1]]
    assert cells[0] == str(trial.number) and cells[1] == f"tiny #{best.number}"
    assert cells[3:6] == [f"{best.value:.4f}", "complete", f"{trial.value:.4f}"]


def _bad_entries(tmp_path):
    _earlier_study(f"sqlite:///{tmp_path / 'earlier.db'}")
    return [
        ({"storage": "sqlite:///nowhere.db", "study": "earlier"}, "warm_start[0].storage", "does not exist"),
        ({"storage": "old.log", "study": "earlier"}, "warm_start[0].storage", "journal file"),
        ({"storage": "sqlite:///earlier.db", "study": "earlir"}, "warm_start[0].study", "did you mean 'earlier'"),
        ({"storage": "sqlite:///earlier.db", "study": "earlier", "top_k": 0}, "warm_start[0].top_k", "from 1 to 1000"),
        ({"storage": "postgresql+nosuchdriver://u:pw@h/db", "study": "earlier"}, "warm_start[0].storage", "bad storage URL"),
        ({"storage": "postgresql+psycopg://u:pw@127.0.0.1:1/db", "study": "earlier"}, "warm_start[0].storage", "cannot connect"),
    ]


@pytest.mark.parametrize("case", [*range(5), pytest.param(5, marks=pytest.mark.postgres)])  # 5 needs psycopg
def test_a_bad_reference_is_a_one_line_error_and_writes_nothing(case, make_study, run_cli, tmp_path):
    entry, key, words = _bad_entries(tmp_path)[case]
    study_file = make_study(search_space=SPACE, warm_start=[{"storage": "sqlite:///earlier.db", "study": "earlier"}, entry])
    key = key.replace("[0]", "[1]")  # the second entry is the bad one
    for command in ("validate", "run"):
        code, out, err = run_cli(command, study_file)
        assert code == 2, (command, err)
        assert len(err.strip().splitlines()) == 1 and key in err and words in err and str(study_file) in err, err
        assert "pw@" not in err
    assert not (tmp_path / "tiny.db").exists() and not (tmp_path / "nowhere.db").exists() and not (tmp_path / "old.log").exists()


def test_warm_starting_from_itself_is_refused(make_study, run_cli, tmp_path):
    study_file = make_study(search_space=SPACE, warm_start=[{"study": "tiny"}])  # no storage: this study's own
    optuna.create_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}", direction="maximize")
    code, _, err = run_cli("run", study_file)
    assert code == 2 and "warm_start[0].study: names this study itself" in err
    assert _this_study(study_file).trials == [] and _this_study(study_file).user_attrs == {}


def test_the_command_line_exits_2_with_one_line(make_study, tmp_path):
    study_file = make_study(search_space=SPACE, warm_start=[{"storage": "sqlite:///gone.db", "study": "old"}])
    result = subprocess.run([sys.executable, str(REPO / "cli.py"), "validate", str(study_file)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "warm_start[0].storage" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "gone.db").exists()


def test_a_journal_earlier_study_works(make_study, run_cli, tmp_path):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    _earlier_study(JournalStorage(JournalFileBackend(str(tmp_path / "old.log"))))
    study_file = make_study(search_space=SPACE, warm_start=[{"storage": "old.log", "study": "earlier", "top_k": 3}])
    code, out, err = run_cli("validate", study_file)
    assert code == 0, err
    assert f"warm start from study 'earlier' (journal://{tmp_path / 'old.log'}): 3 complete trial(s); of its best 3, 2 fit" in out
    assert "its trial 0 will be skipped: batch_size=64 is not one of this space's choices [16, 32]" in out
    config = load_config(study_file)
    study = optuna.create_study(study_name="tiny", storage=config.storage_url(), direction="maximize")
    apply_warm_starts(config, study, once=OncePerStudy(gate_for(config.storage_url(), study._storage, "tiny"), study))
    assert [t.user_attrs[TRIAL_ATTR]["trial"] for t in study.trials] == [1, 2]


@pytest.mark.postgres
def test_a_postgres_earlier_study_works_and_its_password_stays_hidden(make_study, run_cli, tmp_path):
    from worker_processes import PG_URL, PG_URL_WITH_PASSWORD, unique

    pytest.importorskip("psycopg")
    name = unique("warm_earlier")
    _earlier_study(PG_URL, name=name)
    try:
        study_file = make_study(search_space=SPACE, warm_start=[{"storage": PG_URL_WITH_PASSWORD, "study": name, "top_k": 2}])
        code, out, err = run_cli("validate", study_file)
        assert code == 0, err
        assert "postgres:***@127.0.0.1" in out and "hunter2secret" not in out
        config = load_config(study_file)
        study = optuna.create_study(study_name="tiny", storage=config.storage_url(), direction="maximize")
        apply_warm_starts(config, study, once=OncePerStudy(gate_for(config.storage_url(), study._storage, "tiny"), study))
        (trial,) = study.trials
        assert trial.user_attrs[TRIAL_ATTR]["trial"] == 1 and "hunter2secret" not in str(study.user_attrs)
    finally:
        optuna.delete_study(study_name=name, storage=PG_URL)


@pytest.mark.redis
def test_a_redis_earlier_study_works_and_a_missing_one_is_refused(make_study, run_cli, tmp_path):
    pytest.importorskip("redis")
    from worker_processes import REDIS_URL, unique

    from optuna.storages.journal import JournalRedisBackend, JournalStorage

    name = unique("warm_earlier")
    storage = JournalStorage(JournalRedisBackend(REDIS_URL))
    _earlier_study(storage, name=name)
    try:
        study_file = make_study(search_space=SPACE, warm_start=[{"storage": REDIS_URL, "study": name, "top_k": 2}])
        code, out, err = run_cli("validate", study_file)
        assert code == 0 and f"warm start from study '{name}' ({REDIS_URL}): 3 complete trial(s); of its best 2, 1 fit" in out, err
        missing = make_study(search_space=SPACE, warm_start=[{"storage": REDIS_URL, "study": name + "_gone"}])
        code, _, err = run_cli("run", missing)
        assert code == 2 and "warm_start[0].study: unknown study" in err and not (tmp_path / "tiny.db").exists()
    finally:
        optuna.delete_study(study_name=name, storage=storage)
