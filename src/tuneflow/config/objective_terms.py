"""What a finished trial returns to Optuna: a weighted sum of terms, or one value per Pareto target.

Terms are the validation metrics, ``transfer_gain`` (the gain of the weighted metric score over the
target-only baseline) and costs. Weights are divided by the sum of their absolute values, so a cost
term with a negative weight lowers a maximised objective. Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

from tuneflow.config.study_config import METRIC_NAMES, ObjectiveConfig


def term_values(attrs: dict[str, Any]) -> dict[str, float]:
    """Every objective term available from a trial's user attrs."""
    values = {name: float(attrs[name]) for name in METRIC_NAMES}
    values["training_seconds"] = float(attrs["training_seconds"])
    values["trainable_parameters"] = float(attrs["trainable_parameters"])
    values["trainable_parameters_millions"] = attrs["trainable_parameters"] / 1e6
    # Every parameter update the trial paid for: source stage, target stage, baseline, all seeds.
    values["trained_parameters_millions"] = attrs.get("trained_parameters", attrs["trainable_parameters"]) / 1e6
    if "transfer_gain_score" in attrs:
        values["transfer_gain"] = float(attrs["transfer_gain_score"])
    return values


def objective_value(attrs: dict[str, Any], objective: ObjectiveConfig) -> float | tuple[float, ...]:
    """The trial's value: one float (single mode) or one per target (pareto mode)."""
    values = term_values(attrs)
    if objective.mode == "pareto":
        return tuple(values[target.metric] for target in objective.targets)
    return float(sum(weight * values[name] for name, weight in objective.normalised_weights().items()))


def weighted_objective(metrics: dict[str, Any], weights: dict[str, float]) -> float:
    """The weighted mean of the chosen metrics; ``weights`` are already normalised."""
    return float(sum(weight * metrics[name] for name, weight in weights.items()))
