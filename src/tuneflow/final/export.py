"""Best / top-k trials -> self-contained YAML configs that ``tuneflow train`` accepts.

The order is the verdict's (:mod:`tuneflow.study.verdict`): its recommended configuration first (the
transfer one only when transfer helped beyond the noise, else the best target-only one), then the
others as ``best`` ranks them. Identical configurations are one entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from tuneflow.config.errors import ConfigError
from tuneflow.config.schema import parse_dataclass
from tuneflow.config.storage_url import redact_url
from tuneflow.config.study_config import (
    CONFIG_ATTR,
    EvaluationConfig,
    ModelConfig,
    TaskConfig,
    read_yaml,
)
from tuneflow.final.trial_choices import trial_model, trial_source
from tuneflow.fleet.storage import storage_url_of
from tuneflow.study.contract import record_for
from tuneflow.study.results import confirmed, ranked_trials

EXPORT_FORMAT = 1


@dataclass(frozen=True)
class FinalConfig:
    """One exported configuration: model, tasks and every hyperparameter fixed."""

    model: ModelConfig
    target: TaskConfig
    params: dict[str, Any]
    source: TaskConfig | None = None
    seed: int = 0
    data_seed: int = 0  # the study's seed: the same validation/test carve as during selection
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    device: str = "auto"
    compile: bool = False
    # Informational, from the study.
    study: str | None = None
    trial: int | None = None
    rank: int | None = None
    value: float | None = None
    values: tuple[float, ...] | None = None  # a Pareto study's values, one per target
    validation_metrics: dict[str, float] = field(default_factory=dict)
    confirmed: dict[str, Any] | None = None  # `tuneflow confirm`'s figures for this trial (mean, sd, gain interval)
    # objective.value: best: the best evaluation's share of the target schedule; `train` stops at that epoch.
    train_share: float | None = None


@dataclass(frozen=True)
class ExportFile:
    tuneflow_export: int
    configs: tuple[FinalConfig, ...]
    storage: str | None = None
    verdict: str | None = None  # informational: the study's verdict when it was exported


def export_trials(study: optuna.Study, top_k: int = 1) -> dict[str, Any]:
    """The top ``k`` complete trials of ``study`` as a plain dict ready for YAML.

    Each trial's model, tasks, evaluation and seed come from the configuration it was measured under
    (its own contract, :mod:`tuneflow.study.contract`), not from today's study file.
    """
    attrs = study.user_attrs
    latest = attrs.get(CONFIG_ATTR)
    if latest is None:
        raise ConfigError(f"study {study.study_name!r} was not created by tuneflow (no {CONFIG_ATTR!r} attribute)")
    trials, verdict = _in_verdict_order(study)
    trials = trials[:top_k]
    if not trials:
        raise ConfigError(f"study {study.study_name!r} has no complete trial to export yet")
    confirmation = confirmed(study)
    configs = []
    for rank, trial in enumerate(trials, start=1):
        record = record_for(attrs, trial)
        chosen = trial.user_attrs.get("chosen_evaluation") or {}
        configs.append(
            {
                "study": study.study_name,
                "trial": trial.number,
                "rank": rank,
                "value": trial.values[0] if len(trial.values) == 1 else None,
                "values": list(trial.values) if len(trial.values) > 1 else None,
                "validation_metrics": {k: trial.user_attrs[k] for k in ("accuracy", "precision", "recall", "f1") if k in trial.user_attrs},
                "model": trial_model(record, trial.user_attrs),  # the trial's model candidate
                "source": trial_source(record, trial.user_attrs) if _needs_source(trial.user_attrs["params"]) else None,
                "target": record["target"],
                "params": trial.user_attrs["params"],
                "seed": trial.user_attrs.get("seed", record["seed"]),
                "data_seed": record["seed"],
                "evaluation": record["evaluation"],
                "device": latest["device"],  # where to train now: today's file
                "compile": latest.get("compile", False),
                "confirmed": _confirmed_figures(confirmation.get(trial.number)),
                "train_share": chosen.get("progress") if chosen.get("rule") == "best" and chosen.get("progress", 1) < 1 else None,
            }
        )
    # The storage read now (a copy, a server the study moved to), not the one the study was first run from.
    storage = redact_url(storage_url_of(study) or latest.get("storage"))
    return {"tuneflow_export": EXPORT_FORMAT, "storage": storage,
            "verdict": None if verdict is None else f"{verdict.summary} {verdict.recommendation}", "configs": configs}


def _in_verdict_order(study: optuna.Study):
    """Ranked configurations with the verdict's recommendation moved to the front (a Pareto study keeps its front)."""
    trials = ranked_trials(study)
    if not trials or len(study.directions) > 1:
        return trials, None
    from tuneflow.study.verdict import study_verdict

    verdict = study_verdict(study)
    first = [t for t in trials if verdict.recommended_trial in (t.user_attrs.get("pooled_trials") or [t.number])]
    return first + [t for t in trials if t not in first], verdict


def _confirmed_figures(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    keys = ("value", "value_mean", "value_sd", "seed_values", "transfer_gain_score", "transfer_gain_ci", "transfer_gain_p")
    return {k: result[k] for k in keys if result.get(k) is not None}


def _needs_source(params: dict[str, Any]) -> bool:
    from tuneflow.transfer.base import get_strategy

    return get_strategy(params.get("mapping", "direct")).needs_source


def write_export(data: dict[str, Any], path: Path) -> None:
    header = "# Exported by tuneflow: every sampled value is fixed. Train with: tuneflow train THIS_FILE -o DIR\n"
    path.write_text(header + yaml.safe_dump(_without_nulls(data), sort_keys=False), encoding="utf-8")


def _without_nulls(value: Any) -> Any:
    """Drop null keys so the file stays short (every dropped key has that default)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def load_export(path: str | Path, rank: int = 1) -> FinalConfig:
    """Read an export file and return the configuration of the given rank (1 = best)."""
    path = Path(path)
    try:
        export = parse_dataclass(ExportFile, read_yaml(path))
    except ConfigError as err:
        raise err.at(file=str(path)) from None
    if export.tuneflow_export != EXPORT_FORMAT:
        raise ConfigError(f"unsupported export format {export.tuneflow_export}", file=str(path), key="tuneflow_export")
    if not 1 <= rank <= len(export.configs):
        raise ConfigError(f"rank {rank} asked, the file holds {len(export.configs)} config(s)", file=str(path), key="configs")
    return export.configs[rank - 1]
