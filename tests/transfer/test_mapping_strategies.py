"""Every registered mapping strategy x every fine-tuning method trains on the tiny BERT; the losses behind them."""

from __future__ import annotations

import optuna
import pytest
import torch
from optuna.trial import TrialState

from tuneflow.transfer.base import get_strategy, strategy_names

METHODS = ("full", "lora", "head_only")
# Every strategy tuneflow ships (test modules may register deliberately broken ones, e.g. fault_strategies).
BUILT_IN = [name for name in strategy_names() if get_strategy(name).__module__.startswith("tuneflow.")]
# Strategies that supervise a source head with source labels report how much of it survives.
RETAINS_SOURCE = {"sequential", "joint", "adversarial"}


def _trial(study_file, name="tiny"):
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{study_file.parent / (name + '.db')}")
    return study.trials[0]


def _space(mapping: str, method: str, **extra) -> dict:
    params = {
        "epochs": {"type": "fixed", "value": 1},
        "learning_rate": {"type": "fixed", "value": 1e-3},
        "method": {"type": "fixed", "value": method},
        "freeze_layers": {"type": "fixed", "value": 1 if method != "head_only" else 0},
        "mapping": {"type": "fixed", "value": mapping},
    }
    params.update({k: {"type": "fixed", "value": v} for k, v in extra.items()})
    return {"parameters": params}


def test_every_strategy_trains_with_every_method(make_study, run_cli):
    """The contract: a registered strategy completes a trial with each method and reports target metrics.

    One grid study over every (strategy, method) pair: a study per pair would pay its setup 15 times."""
    space = _space("direct", "full")
    space["parameters"].update({
        "method": {"type": "categorical", "choices": list(METHODS)},
        "freeze_layers": {"type": "fixed", "value": 1, "when": {"method": ["full", "lora"]}},  # head_only: 0
        "mapping": {"type": "categorical", "choices": BUILT_IN},
    })
    pairs = len(BUILT_IN) * len(METHODS)
    study_file = make_study(search_space=space, sampler={"name": "grid"}, budget={"n_trials": pairs},
                            objective={"weights": {"f1": 1.0}, "transfer_baseline": False})
    code, _, err = run_cli("run", study_file, "--quiet")
    assert code == 0, err
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}").trials
    assert sorted((t.params["mapping"], t.params["method"]) for t in trials) == sorted(
        (mapping, method) for mapping in BUILT_IN for method in METHODS)
    for trial in trials:
        mapping, method, attrs = trial.params["mapping"], trial.params["method"], trial.user_attrs
        assert trial.state == TrialState.COMPLETE, (mapping, method, attrs.get("fail_reason"))
        assert attrs["params"]["freeze_layers"] == (0 if method == "head_only" else 1)
        assert 0.0 <= attrs["f1"] <= 1.0 and len(attrs["history"]) == 4
        assert trial.intermediate_values.keys() == {25, 50, 75, 100}  # 4 reports by default, spread over the schedule
        if method != "full":
            assert attrs["trainable_parameters"] < attrs["total_parameters"] / 2, (mapping, method)
        if mapping in RETAINS_SOURCE:
            assert 0.0 <= attrs["source_retention"] <= 1.0
        if mapping == "sequential":
            assert 0.0 <= attrs["source_accuracy_after_source"] <= 1.0
        assert "transfer_gain" not in attrs  # transfer_baseline: false


@pytest.mark.parametrize(
    "mapping, values",
    [("align", {"align_loss": "mmd", "mmd_weight": 2.0}), ("joint", {"source_weight_schedule": "linear_decay"}),
     ("sequential", {"head": "label_map"})],
)
def test_strategy_options_train(make_study, run_cli, mapping, values):
    study_file = make_study(search_space=_space(mapping, "full", **values), budget={"n_trials": 1},
                            objective={"transfer_baseline": False})
    assert run_cli("run", study_file)[0] == 0
    trial = _trial(study_file)
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("fail_reason")
    assert {k: trial.user_attrs["params"][k] for k in values} == values
    if mapping == "sequential":
        assert trial.user_attrs["head_mapped_labels"] == []  # sentiment and topic labels share no name


def test_strategy_parameters_only_with_their_mapping(make_study, run_cli):
    space = _space("direct", "full")
    space["parameters"]["align_loss"] = {"type": "categorical", "choices": ["coral", "mmd"]}
    code, _, err = run_cli("validate", make_study(search_space=space))
    assert code == 2 and "align_loss" in err


def test_unknown_choice_is_rejected_before_anything_runs(make_study, run_cli):
    code, _, err = run_cli("validate", make_study(search_space=_space("align", "full", align_loss="cosine")))
    assert code == 2 and "parameters.align_loss" in err and "coral" in err


def test_gradient_reversal_flips_and_scales_the_gradient():
    from tuneflow.transfer.losses import dann_lambda, grad_reverse

    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)  # identity forward
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.5 * w)
    assert dann_lambda(0.0, 0.3) == 0.0
    assert dann_lambda(1.0, 0.3) == pytest.approx(0.3 * (2 / (1 + torch.e**-10) - 1))
    assert 0 < dann_lambda(0.1) < dann_lambda(0.5) < 1


@pytest.mark.parametrize("name", ["coral", "mmd"])
def test_alignment_losses(name):
    from tuneflow.transfer.losses import ALIGN_LOSSES

    loss = ALIGN_LOSSES[name]
    torch.manual_seed(0)
    a = torch.randn(32, 8)
    assert float(loss(a, a.clone())) == pytest.approx(0.0, abs=1e-6)
    shifted = torch.randn(32, 8) * 3.0 + 2.0  # other mean (MMD) and other covariance (CORAL)
    # A batch from another distribution is farther than a fresh batch from the same one.
    assert float(loss(a, shifted)) > float(loss(a, torch.randn(32, 8))) > 0


def test_label_map_copies_rows_of_shared_label_names(tiny_model_dir):
    from tuneflow.transfer.heads import label_map_head
    from tuneflow.models.loading import new_classifier

    torch.manual_seed(1)
    source = new_classifier(str(tiny_model_dir), 2)
    torch.manual_seed(2)
    target = new_classifier(str(tiny_model_dir), 3)
    before = target.classifier.weight.detach().clone()
    mapped = label_map_head(source, target, source_labels=("World", "Sports"), target_labels=("sports", "business", "WORLD"))
    assert mapped == ["sports", "WORLD"]
    w, b = target.classifier.weight, target.classifier.bias
    assert torch.equal(w[0], source.classifier.weight[1]) and torch.equal(b[0], source.classifier.bias[1])
    assert torch.equal(w[2], source.classifier.weight[0]) and torch.equal(b[2], source.classifier.bias[0])
    assert torch.equal(w[1], before[1])  # no source label of that name: stays as initialised


def test_every_strategy_is_a_small_registered_class():
    assert {"direct", "sequential", "joint", "adversarial", "align"} <= set(BUILT_IN)
    for name in BUILT_IN:
        strategy = get_strategy(name)
        assert strategy.name == name and strategy.summary
        assert set(strategy.choices) <= set(strategy.parameters)
