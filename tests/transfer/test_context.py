"""The trial's ``max_grad_norm`` and ``gradient_accumulation_steps`` reach the loop, in a study and in final training."""

from __future__ import annotations

import json
import math

import optuna
import pytest
import torch
import yaml
from torch.optim.optimizer import register_optimizer_step_pre_hook


@pytest.fixture
def applied_norms():
    """The gradient norm every optimizer step of the process applies (after clipping)."""
    norms: list[float] = []

    def record(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norms.append(float(torch.nn.utils.get_total_norm(grads)))

    handle = register_optimizer_step_pre_hook(record)
    yield norms
    handle.remove()


def test_clipping_and_accumulation_reach_trials_and_final_training(make_study, run_cli, tmp_path, applied_norms):
    fixed = {"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "mapping": "joint", "max_grad_norm": 1e-3,
             "gradient_accumulation_steps": 2}
    study_file = make_study(search_space={"parameters": {k: {"type": "fixed", "value": v} for k, v in fixed.items()}},
                            budget={"n_trials": 1}, objective={"weights": {"f1": 1.0}, "transfer_baseline": False})
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    storage = f"sqlite:///{study_file.parent / 'tiny.db'}"
    (trial,) = optuna.load_study(study_name="tiny", storage=storage).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs.get("fail_reason")
    assert {k: trial.user_attrs["params"][k] for k in fixed} == fixed
    micro_batches = math.ceil(trial.user_attrs["config"]["target_train_rows"] / 16)
    assert len(applied_norms) == math.ceil(micro_batches / 2)  # one optimizer step per 2 micro-batches
    assert applied_norms and all(n == pytest.approx(1e-3, rel=1e-3) for n in applied_norms)  # clipped, source head included

    applied_norms.clear()
    exported = tmp_path / "best.yaml"
    assert run_cli("export", "--storage", storage, "--study-name", "tiny", "-o", exported)[0] == 0
    code, _, err = run_cli("train", exported, "-o", tmp_path / "final")
    assert code == 0, err
    metrics = json.loads((tmp_path / "final" / "metrics.json").read_text())
    assert metrics["params"]["gradient_accumulation_steps"] == 2
    assert len(applied_norms) == math.ceil(math.ceil(metrics["train_rows"] / 16) / 2)
    assert all(n == pytest.approx(1e-3, rel=1e-3) for n in applied_norms)
    assert yaml.safe_load(exported.read_text())["configs"][0]["params"]["max_grad_norm"] == 1e-3
