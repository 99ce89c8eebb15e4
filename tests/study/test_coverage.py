"""Coverage before exploitation: every arm queued once (per learning-rate rung) before the sampler chooses."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import optuna
import pytest

from tuneflow.study.arms import Arm, space_arms, trial_arm
from tuneflow.fleet.budget import gate_for
from tuneflow.fleet.claims import OncePerStudy
from tuneflow.study.coverage import ATTR_PREFIX, apply_coverage
from tuneflow.study.runner import load_config
from tuneflow.fleet.storage import open_storage
from tuneflow.transferability.prior import RANKING_ATTR

MAPPINGS = {"mapping": {"type": "categorical", "choices": ["direct", "sequential", "joint"]}}


@pytest.fixture
def covered(make_study, task_files, tmp_path):
    """``covered(**overrides) -> (config, study, once)``: a study with sources a and b, nothing run yet."""

    def make(**overrides):
        sources = [{"name": name, "files": {"train": str(task_files["source_train"])}} for name in ("a", "b")]
        space = {"parameters": {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "batch_size": {"type": "categorical", "choices": [16, 32]},
            "epochs": {"type": "int", "low": 1, "high": 3},
            **MAPPINGS,
        }}
        config = load_config(make_study(source=None, sources=sources, search_space=space, **overrides))
        return config, *_open(config)

    return make


def _open(config):
    url = config.storage_url()
    storage = open_storage(url, options=config.storage_options)
    study = optuna.create_study(study_name=config.name, storage=storage, load_if_exists=True, direction="maximize")
    return study, OncePerStudy(gate_for(url, storage, study.study_name), study)


LABELS = ["target only", "sequential from a", "sequential from b", "joint from a", "joint from b"]


def test_space_arms_and_trial_arms_agree(covered):
    config, study, _ = covered()
    arms = space_arms(config)
    assert [a.label for a in arms] == LABELS and arms[0].target_only and not arms[1].target_only
    assert space_arms(config, kept_sources=["b"])[1:] == [Arm("sequential", "b", None), Arm("joint", "b", None)]
    assert Arm("direct", None, "small").label == "target only [model small]"
    study.enqueue_trial({"mapping": "joint", "source": "b"})
    assert trial_arm(study.trials[0]) == Arm("joint", "b", None)


def test_each_arm_is_queued_at_the_centre_then_at_a_second_learning_rate(covered):
    config, study, once = covered(budget={"n_trials": 20})
    lines: list[str] = []
    record = apply_coverage(config, study, once=once, total=20, message=lines.append)
    waiting = study.trials
    # Two rounds fit in half the budget: every arm at the centre learning rate, then every arm at its lower quartile.
    assert [t.user_attrs["arm"] for t in waiting] == LABELS * 2
    assert [t.user_attrs["coverage_rung"] for t in waiting] == [0] * 5 + [1] * 5
    assert all(t.user_attrs["enqueued_as"] == "coverage" for t in waiting)
    first, second = waiting[0].system_attrs["fixed_params"], waiting[5].system_attrs["fixed_params"]
    assert first == {"learning_rate": pytest.approx(1e-3), "batch_size": 32, "epochs": 2, "mapping": "direct"}
    assert second == {**first, "learning_rate": pytest.approx(10 ** -3.5)}
    assert waiting[1].system_attrs["fixed_params"]["source"] == "a"
    assert record["arms"] == LABELS and not record["untried"] and study.user_attrs[f"{ATTR_PREFIX}20"] == record
    assert lines == ["coverage: 10 trial(s) enqueued for 5 arm(s) at 2 learning rates each: " + ", ".join(LABELS)]
    # Once per budget: starting again enqueues nothing.
    assert apply_coverage(config, study, once=once, total=20) is None and len(study.trials) == 10


def test_a_small_budget_warns_which_arms_go_untried_and_a_larger_one_tops_up(covered):
    config, study, once = covered(budget={"n_trials": 3})
    lines: list[str] = []
    apply_coverage(config, study, once=once, total=3, message=lines.append)
    assert [t.user_attrs["arm"] for t in study.trials] == LABELS[:3]
    assert lines[-1] == "warning: a budget of 3 trials leaves 2 of 5 arms untried: joint from a, joint from b"
    # Resumed with a budget of 8 (say `run --n-trials 5`): the two missing arms now fit; a second round does not (8 < 2 x 5).
    apply_coverage(config, study, once=once, total=8)
    assert [t.user_attrs["arm"] for t in study.trials] == LABELS


def test_arms_holding_trials_already_are_not_queued_again(covered):
    # A prior's or a warm start's trial covers its arm, whatever its learning rate.
    config, study, once = covered(coverage={"learning_rates": 1})
    study.enqueue_trial({"mapping": "sequential", "source": "b", "learning_rate": 3e-4}, user_attrs={"enqueued_as": "warm_start"})
    apply_coverage(config, study, once=once, total=20)
    assert [t.user_attrs.get("arm") for t in study.trials] == [None, "target only", "sequential from a", "joint from a", "joint from b"]


def test_with_a_logme_ranking_the_arms_go_best_first(covered):
    config, study, once = covered(coverage={"learning_rates": 1})
    scores = [  # the study's model fine-tuned on b, the model as it is, fine-tuned on a; an outside model is ignored
        {"source": "b", "logme": -0.5, "model_label": "m"}, {"source": None, "logme": -0.7, "model_label": "m"},
        {"source": "a", "logme": -0.9, "model_label": "m"}, {"source": "a", "logme": 5.0, "model_label": None},
    ]
    study.set_user_attr(RANKING_ATTR, {"scores": scores})
    apply_coverage(config, study, once=once, total=20)
    assert [t.user_attrs["arm"] for t in study.trials] == [
        "sequential from b", "joint from b", "target only", "sequential from a", "joint from a"]


def test_workers_starting_together_queue_the_arms_once(covered):
    config, study, _ = covered(coverage={"learning_rates": 1})

    def start(_worker: int) -> None:
        own, once = _open(config)  # each worker its own storage connection and claim owner
        apply_coverage(config, own, once=once, total=20, poll=0.05)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(start, range(4)))  # re-raises a worker's error here
    assert sorted(t.user_attrs["arm"] for t in study.trials) == sorted(LABELS)


def test_coverage_off_queues_nothing(covered):
    config, study, once = covered(coverage={"enabled": False})
    assert apply_coverage(config, study, once=once, total=20) is None and study.trials == []


def test_a_run_measures_both_mappings_first(make_study, run_cli):
    # The default tiny study: direct or sequential, a random sampler, 3 trials.
    study_file = make_study()
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}")
    arms = [t.user_attrs["arm"] for t in study.trials]
    assert arms[:2] == ["target only", "sequential from sentiment"] and len(arms) == 3
    assert [t.user_attrs.get("enqueued_as") for t in study.trials] == ["coverage", "coverage", None]
    assert "coverage: 2 trial(s) enqueued for 2 arm(s): target only, sequential from sentiment" in err
    assert all(t.user_attrs["training_samples"] > 0 for t in study.trials)
