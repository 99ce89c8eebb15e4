"""Transfer gain: a trial's target metrics minus those of a target-only baseline, and negative transfer.

The baseline is the ``direct`` strategy with the trial's model, target data, fine-tuning method and
core hyperparameters (every trial parameter except the mapping and its own values). Each distinct
baseline key is trained once and cached in the study (user attr ``transfer_baseline:<hash>``);
the cache is checked before anything trains. A ``direct`` trial is its own baseline: it stores itself
(when the key is new) and its gain is 0. Seed rule: a baseline run trains with the seed of the trial
that first needs it (``seed + trial number``, the trial's own seed), so that first comparison differs
only in the mapping; later trials with the same key reuse it rather than pay another run. Baseline
runs never report to the trial's pruner, and their time is not the trial's ``training_seconds``.
Two workers that need a new key at the same moment may both train it; the last write wins.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

from tuneflow.config.objective_terms import weighted_objective
from tuneflow.config.study_config import METRIC_NAMES, StudyConfig
from tuneflow.config.trial_params import CORE_PARAMETERS, TrialParams

if TYPE_CHECKING:
    import optuna

    from tuneflow.transfer.context import TransferContext


BASELINE_PREFIX = "transfer_baseline:"  # study user attr: one cached baseline per key


RUNS_ATTR = "transfer_baseline_runs"  # study user attr: how many baseline trainings happened


SCORE = "score"  # the gain of the weighted metric score (the objective's main metric)


def baseline_enabled(config: StudyConfig) -> bool:
    """``objective.transfer_baseline``; by default on when gain is an objective term or any mapping isn't direct."""
    if config.objective.transfer_baseline is not None:
        return config.objective.transfer_baseline
    spec = config.space.parameters.get("mapping")
    mappings = spec.possible_values() if spec else ("direct",)
    return config.objective.uses_transfer_gain() or any(m != "direct" for m in mappings)


def baseline_key(config: StudyConfig, params: TrialParams, *, model_path: str, target_rows: tuple[int, int]) -> dict[str, Any]:
    """Everything the target-only baseline's result depends on (the seed aside, see the module doc)."""
    return {
        "model": config.model.name,
        "model_path": model_path,
        "revision": config.model.revision,
        "max_length": config.model.max_length,
        "target": config.target.name,
        "target_rows": list(target_rows),
        "params": {name: getattr(params, name) for name in CORE_PARAMETERS if name != "mapping"},
    }


def key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def transfer_attrs(
    trial: "optuna.Trial", ctx: "TransferContext", metrics: dict[str, Any], *, config: StudyConfig, model_path: str
) -> dict[str, Any]:
    """``transfer_gain`` (metric -> gain), ``transfer_gain_<metric>``, ``negative_transfer``; may train the baseline."""
    if not baseline_enabled(config):
        return {}
    target = ctx.target
    key = baseline_key(config, ctx.params, model_path=model_path, target_rows=(len(target.train), len(target.validation)))
    attr = BASELINE_PREFIX + key_hash(key)
    study = trial.study
    record = study.user_attrs.get(attr)
    if ctx.params.mapping == "direct":
        if record is None:
            record = _record(key, metrics, seed=ctx.seed, trial=trial.number, trained_by="direct trial", seconds=ctx.training_seconds)
            study.set_user_attr(attr, record)
        baseline = {name: metrics[name] for name in METRIC_NAMES}  # the trial is its own baseline
    else:
        if record is None:
            base_metrics, seconds = train_baseline(ctx)
            record = _record(key, base_metrics, seed=ctx.seed, trial=trial.number, trained_by="baseline run", seconds=seconds)
            study.set_user_attr(attr, record)
            study.set_user_attr(RUNS_ATTR, int(study.user_attrs.get(RUNS_ATTR, 0)) + 1)
        baseline = record["metrics"]
    weights = config.objective.metric_weights()
    gains = {name: float(metrics[name]) - float(baseline[name]) for name in METRIC_NAMES}
    gains[SCORE] = weighted_objective(metrics, weights) - weighted_objective(baseline, weights)
    return {
        "transfer_gain": gains,
        **{f"transfer_gain_{name}": value for name, value in gains.items()},
        "negative_transfer": is_negative_transfer(gains[SCORE], config.objective.negative_transfer_tolerance),
        "transfer_baseline": attr,
    }


def is_negative_transfer(score_gain: float, tolerance: float) -> bool:
    return score_gain < -tolerance


def _record(key, metrics, *, seed: int, trial: int, trained_by: str, seconds: float) -> dict[str, Any]:
    return {
        "key": key,
        "metrics": {name: float(metrics[name]) for name in METRIC_NAMES},
        "seed": seed,
        "trial": trial,
        "trained_by": trained_by,
        "training_seconds": round(seconds, 3),
    }


def train_baseline(ctx: "TransferContext") -> tuple[dict[str, Any], float]:
    """Train ``direct`` with the trial's params and seed on a copy of its context; no reporting."""
    import gc

    from transformers import set_seed

    from tuneflow.transfer.direct import Direct

    params = dataclasses.replace(ctx.params, mapping="direct", mapping_params={})
    base_ctx = dataclasses.replace(ctx, params=params, report=None, fit_stats=[], records={})
    set_seed(ctx.seed)
    model = Direct().run(base_ctx)
    try:
        metrics = base_ctx.evaluate(model, base_ctx.target)
    finally:
        del model
        gc.collect()
    return metrics, base_ctx.training_seconds
