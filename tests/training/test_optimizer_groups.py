"""Which learning rate each parameter trains with: encoder, fresh head, LoRA matrices."""

from __future__ import annotations

import pytest
import torch

from tuneflow.config.trial_params import TrialParams
from tuneflow.models.methods import apply_method, is_head_parameter, is_lora_parameter
from tuneflow.models.loading import new_classifier
from tuneflow.training.runtime import Runtime
from tuneflow.training.optimizer import make_optimizer

CPU = Runtime(torch.device("cpu"), None)


def learning_rates(model, optimizer) -> dict[str, float]:
    by_id = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    return {name: by_id[id(p)] for name, p in model.named_parameters() if p.requires_grad}


def test_full_fine_tune_gives_the_head_its_own_rate(tiny_model_dir):
    model = apply_method(new_classifier(str(tiny_model_dir), 3), TrialParams(method="full"))
    rates = learning_rates(model, make_optimizer(model, 1e-4, 0.01, CPU, head_lr=1e-2, lora_lr=5e-3))
    assert {rates[n] for n in rates if is_head_parameter(model, n)} == {1e-2}
    assert {rates[n] for n in rates if not is_head_parameter(model, n)} == {1e-4}  # no LoRA here: lora_lr unused


def test_lora_matrices_get_the_lora_rate(tiny_model_dir):
    params = TrialParams(method="lora", lora_r=4)
    model = apply_method(new_classifier(str(tiny_model_dir), 3), params)
    rates = learning_rates(model, make_optimizer(model, 1e-4, 0.01, CPU, head_lr=1e-2, lora_lr=5e-3))
    lora = {n for n in rates if is_lora_parameter(n)}
    head = {n for n in rates if is_head_parameter(model, n)}
    assert lora and head and not lora & head
    assert {rates[n] for n in lora} == {5e-3}
    assert {rates[n] for n in head} == {1e-2}
    assert set(rates) == lora | head  # LoRA trains nothing else
    # Without a LoRA rate, the matrices train at the base rate.
    plain = learning_rates(model, make_optimizer(model, 1e-4, 0.01, CPU, head_lr=1e-2))
    assert {plain[n] for n in lora} == {1e-4}


def test_extra_modules_train_at_the_head_rate_without_decay_on_biases(tiny_model_dir):
    model = apply_method(new_classifier(str(tiny_model_dir), 3), TrialParams(method="head_only"))
    extra = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
    optimizer = make_optimizer(model, 1e-4, 0.01, CPU, head_lr=1e-2, extra_modules=[extra])
    groups = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    assert {groups[id(p)] for p in extra.parameters() if p.ndim == 2} == {(1e-2, 0.01)}
    assert {groups[id(p)] for p in extra.parameters() if p.ndim == 1} == {(1e-2, 0.0)}
    # Without a head rate they train at the base rate; the model's frozen encoder is not in the optimizer.
    plain = make_optimizer(model, 1e-4, 0.0, CPU, extra_modules=[extra])
    assert {g["lr"] for g in plain.param_groups} == {1e-4}
    assert sum(len(g["params"]) for g in plain.param_groups) == 4 + sum(p.requires_grad for p in model.parameters())


def test_lora_learning_rate_must_be_positive():
    from tuneflow.config.errors import ConfigError

    with pytest.raises(ConfigError, match="lora_learning_rate"):
        TrialParams(lora_learning_rate=0.0)
