"""The verdict on hand-built studies whose answer is known: outcomes, reasons, pooling, pairing, export order."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from scipy import stats

from tuneflow.final.export import export_trials
from tuneflow.study.results import CONFIRMATION_ATTR, ranked_trials
from tuneflow.study.verdict import configuration_gains, study_verdict
from tuneflow.transfer.gain_stats import pooled_seed_noise, seeds_and_rows_interval, seeds_to_resolve

SPACE = {"mapping": {"type": "categorical", "choices": ["direct", "sequential"]}}
LABELS = "tuneflow_validation_labels:test"


def _study(*, space=SPACE, budget=10, sources=("tweets",)) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    record = {"objective": {"weights": {"accuracy": 1.0}}, "budget": {"n_trials": budget}, "search_space": space,
              "sources": [{"name": s} for s in sources], "source": {"name": sources[0]}, "seed": 0,
              "target": {"name": "topics"}, "model": {"name": "tiny"}, "evaluation": {}, "device": "cpu", "storage": None}
    study.set_user_attr("tuneflow_config", record)
    return study


def _add(study, mapping, scores, *, seeds=None, lr=1e-4, source=None, state=TrialState.COMPLETE, **attrs) -> int:
    number = len(study.trials)
    seeds = seeds or [100 * number + i for i in range(len(scores))]
    user = {"params": {"mapping": mapping, "method": "full", "learning_rate": lr, "epochs": 2}, "seed_values": scores,
            "seeds": seeds, "seed": seeds[0], "source": source if mapping != "direct" else None, **attrs}
    study.add_trial(create_trial(state=state, value=float(np.mean(scores)) if state == TrialState.COMPLETE else None,
                                 params={"mapping": mapping}, distributions={"mapping": CategoricalDistribution(["direct", "sequential"])},
                                 user_attrs=user))
    return number


def test_transfer_helped_when_the_whole_interval_lies_above_zero():
    study = _study()
    _add(study, "direct", [0.70, 0.72, 0.71])
    best = _add(study, "sequential", [0.80, 0.82, 0.81], source="tweets")
    _add(study, "sequential", [0.60, 0.61, 0.62], lr=3e-4, source="tweets")
    verdict = study_verdict(study)
    # Known answer: pooled variance 1e-4 over 6 degrees of freedom, se = sqrt(1e-4 * 2/3).
    se = math.sqrt(1e-4 * 2 / 3)
    half = stats.t.ppf(0.975, 6) * se
    assert verdict.outcome == "helped" and verdict.gain == pytest.approx(0.10)
    assert verdict.interval == pytest.approx((0.10 - half, 0.10 + half)) and verdict.p < 0.001
    assert verdict.transfer.trial == best and verdict.target_only.trial == 0 and verdict.recommended_trial == best
    assert verdict.summary.startswith("transfer helped: sequential from tweets (trial 1") and "gain +0.1000" in verdict.summary
    assert str(verdict) == verdict.summary


def test_transfer_hurt_and_export_recommends_the_target_only_configuration():
    study = _study()
    _add(study, "sequential", [0.60, 0.62, 0.61], source="tweets")
    target = _add(study, "direct", [0.70, 0.72, 0.71])
    verdict = study_verdict(study)
    assert verdict.outcome == "hurt" and verdict.interval[1] < 0
    assert verdict.recommended_trial == target and "transfer hurt" in verdict.recommendation


def test_an_unresolved_gain_says_how_many_seeds_would_resolve_it():
    study = _study()
    target = _add(study, "direct", [0.70, 0.74])
    ours = _add(study, "sequential", [0.72, 0.76], source="tweets")
    verdict = study_verdict(study)
    noise = pooled_seed_noise([[0.70, 0.74], [0.72, 0.76]])  # variance 8e-4, 2 degrees of freedom
    expected = seeds_and_rows_interval([0.72, 0.76], [0.70, 0.74], paired=False, noise=noise)
    assert verdict.outcome == "unresolved" and verdict.interval == pytest.approx((expected.low, expected.high))
    needed = seeds_to_resolve(0.02, 2 * 8e-4)  # t(n-1) * sqrt(0.0016 / n) < 0.02: n = 18
    assert verdict.seeds_needed == needed == 18
    assert f"no difference these seeds can resolve (about {needed - 2} more seeds per configuration would: {needed} each)" in verdict.summary
    # Not beaten beyond the noise: export writes the simpler target-only configuration first.
    assert verdict.recommended_trial == target != ours
    assert "did not beat it beyond the noise" in verdict.recommendation


def test_a_zero_gain_cannot_be_resolved_by_any_number_of_seeds():
    study = _study()
    _add(study, "direct", [0.70, 0.74])
    _add(study, "sequential", [0.74, 0.70], source="tweets")
    verdict = study_verdict(study)
    assert verdict.outcome == "unresolved" and verdict.seeds_needed is None
    assert "no number of seeds would: the gain is about zero" in verdict.summary


def test_one_seed_per_configuration_measures_no_seed_noise_and_claims_nothing():
    study = _study()
    _add(study, "direct", [0.60])
    _add(study, "sequential", [0.90], source="tweets")
    verdict = study_verdict(study)
    assert verdict.outcome == "unresolved" and verdict.reason == "seed noise unmeasured"
    assert "`tuneflow confirm`" in verdict.summary


@pytest.mark.parametrize(("space", "trials", "reason"), [
    ({"mapping": {"type": "fixed", "value": "direct"}}, [], "the search space has no mapping that uses a source"),
    (SPACE, [], "the budget ran out (3 trials) before any transfer trial"),
    (SPACE, [TrialState.PRUNED, TrialState.FAIL], "every transfer trial was pruned or failed (1 pruned, 1 failed)"),
])
def test_transfer_not_tried_says_why(space, trials, reason):
    study = _study(space=space, budget=3)
    target = _add(study, "direct", [0.7, 0.71])
    for state in trials:
        _add(study, "sequential", [0.5], source="tweets", state=state)
    while len(study.trials) < 3:
        _add(study, "direct", [0.6, 0.62], lr=3e-4)
    verdict = study_verdict(study)
    assert verdict.outcome == "not_tried" and reason in verdict.summary and verdict.summary.startswith("transfer not tried: ")
    assert verdict.recommended_trial == target and verdict.comparison is None


def test_without_a_target_only_trial_the_transfer_configurations_own_baselines_are_the_reference():
    study = _study(space={"mapping": {"type": "fixed", "value": "sequential"}})
    study.set_user_attr("transfer_baseline:a", {"seed": 1, "predictions": None, "trained_by": "baseline run", "metrics": {"accuracy": 0.6}})
    study.set_user_attr("transfer_baseline:b", {"seed": 2, "predictions": None, "trained_by": "baseline run", "metrics": {"accuracy": 0.62}})
    ours = _add(study, "sequential", [0.80, 0.82], seeds=[1, 2], source="tweets", seed_scores_baseline=[0.60, 0.62],
                transfer_baselines=["transfer_baseline:a", "transfer_baseline:b"])
    verdict = study_verdict(study)
    assert verdict.target_only.is_baseline and verdict.comparison.paired and verdict.gain == pytest.approx(0.20)
    assert verdict.outcome == "helped" and verdict.recommended_trial == ours
    assert "its target-only baseline" in verdict.summary


def test_identical_configurations_are_one_row_with_their_seeds_pooled():
    study = _study()
    _add(study, "direct", [0.70, 0.72])
    first = _add(study, "sequential", [0.80], source="tweets")
    _add(study, "direct", [0.60, 0.61], lr=3e-4)
    again = _add(study, "sequential", [0.84, 0.86], source="tweets")  # the same configuration, measured again
    ranked = ranked_trials(study)
    assert [t.number for t in ranked] == [first, 0, 2]
    pooled = ranked[0]
    assert pooled.user_attrs["pooled_trials"] == [first, again] and pooled.user_attrs["seed_values"] == [0.80, 0.84, 0.86]
    assert pooled.value == pytest.approx(0.8333333) and pooled.user_attrs["value_mean"] == pytest.approx(0.8333333)
    assert ranked_trials(study, pool=False)[0].number == again  # unpooled, its luckier repeat would lead
    verdict = study_verdict(study)
    assert verdict.transfer.seeds == 3 and verdict.transfer.trials == (first, again)
    assert "trials 1, 3" in verdict.transfer.label
    assert [t.number for t in ranked_trials(study, target_only=True)] == [0, 2]


def test_confirmed_configurations_on_the_same_fresh_seeds_are_paired():
    study = _study()
    target = _add(study, "direct", [0.70])
    ours = _add(study, "sequential", [0.78], source="tweets")
    study.set_user_attr(CONFIRMATION_ATTR, {"seeds": [7, 8, 9], "results": [
        {"trial": ours, "value": 0.80, "seed_values": [0.79, 0.80, 0.81]},
        {"trial": target, "value": 0.75, "seed_values": [0.73, 0.76, 0.76], "role": "target_only_reference"},
    ]})
    verdict = study_verdict(study)
    assert verdict.transfer.confirmed and verdict.target_only.confirmed and verdict.comparison.paired
    assert verdict.gain == pytest.approx(0.05) and verdict.transfer.seeds == 3
    assert "3 confirmed seeds each, paired" in verdict.summary


def test_rows_join_the_interval_when_predictions_were_kept_and_collapsed_seeds_are_named():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    study = _study()
    study.set_user_attr(LABELS, {"labels": labels.tolist(), "num_labels": 3})
    miss = lambda rows: np.where(np.isin(np.arange(90), rows), (labels + 1) % 3, labels)  # wrong on those rows
    direct = [miss(range(0, 20)), miss(range(10, 30))]
    sequential = [np.zeros(90, int), miss(range(30, 40))]  # the first seed always says class 0: collapsed
    score = lambda preds: [float((p == labels).mean()) for p in preds]
    _add(study, "direct", score(direct), validation_labels=LABELS, seed_predictions=[p.tolist() for p in direct], chance_score=1 / 3)
    _add(study, "sequential", score(sequential), source="tweets", validation_labels=LABELS,
         seed_predictions=[p.tolist() for p in sequential], chance_score=1 / 3, collapsed_seeds=[100])
    verdict = study_verdict(study)
    assert verdict.comparison.method == "seeds+rows" and verdict.comparison.row_se > 0
    assert verdict.transfer.collapsed == 1
    assert verdict.notes == (f"{verdict.transfer.label}: 1 of 2 seeds collapsed to chance level (score <= 0.353)",)


def test_each_source_gets_its_own_verdict_and_an_untried_one_says_so():
    study = _study(sources=("tweets", "news"))
    study.set_user_attr("tuneflow_dropped_sources", {"dropped": [{"source": "news", "logme": -1.0}]})
    _add(study, "direct", [0.70, 0.72, 0.71])
    _add(study, "sequential", [0.80, 0.82, 0.81], source="tweets")
    verdict = study_verdict(study)
    tweets, news = verdict.per_source
    assert (tweets.source, tweets.outcome) == ("tweets", "helped") and tweets.summary.startswith("tweets: transfer helped")
    assert (news.source, news.outcome) == ("news", "not_tried") and "prior_keep dropped it" in news.summary


def test_export_writes_the_recommended_configuration_first():
    study = _study()
    target = _add(study, "direct", [0.70, 0.74])
    ours = _add(study, "sequential", [0.72, 0.76], source="tweets")
    assert ranked_trials(study)[0].number == ours  # best by value, but not beyond the noise
    exported = export_trials(study, 2)
    assert [c["trial"] for c in exported["configs"]] == [target, ours]
    assert exported["verdict"].startswith("no difference these seeds can resolve")


def test_best_gain_column_uses_the_study_interval_against_the_configurations_own_baselines():
    study = _study()
    _add(study, "direct", [0.70, 0.72, 0.71])
    ours = _add(study, "sequential", [0.80, 0.82, 0.81], source="tweets", seed_scores_baseline=[0.70, 0.72, 0.71])
    gains = configuration_gains(study, ranked_trials(study))
    assert set(gains) == {ours} and gains[ours].mean == pytest.approx(0.10) and gains[ours].low > 0


def test_two_sides_at_chance_level_say_nothing_about_transfer():
    study = _study()
    _add(study, "direct", [0.33, 0.34], chance_score=1 / 3, collapsed_seeds=[0, 1])
    _add(study, "sequential", [0.50, 0.52], source="tweets", chance_score=0.49, collapsed_seeds=[100, 101])
    verdict = study_verdict(study)
    assert verdict.outcome == "unresolved" and verdict.reason == "neither side learnt the task"
    assert "neither side learnt the task" in verdict.summary and len(verdict.notes) == 2
