"""How a study spends its budget: when trials evaluate (``evaluation``), which arms it measures before the
sampler exploits (``coverage``), and the confirmation it runs at the end (``confirm``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from tuneflow.config.errors import ConfigError

# Evaluations per target schedule when the study file says nothing: enough for the pruner to stop a
# weak trial at a quarter of its schedule, few enough that evaluating stays a small share of a trial.
DEFAULT_EVALUATIONS = 4


def _help(text: str, default: Any = dataclasses.MISSING):
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class EvaluationConfig:
    batch_size: int = _help("batch size for evaluation (no gradients, so larger is fine)", 128)
    every_n_steps: int | None = _help("also evaluate and report every N optimizer steps (besides each epoch's end)", None)
    per_schedule: int | Literal["epoch"] | None = _help(
        f"evaluate and report N times, evenly over each target stage's schedule (the last at its end), whatever its"
        f" epoch count, so a weak trial is pruned before it spends its budget; 'epoch': at each epoch's end;"
        f" default {DEFAULT_EVALUATIONS} (epoch when every_n_steps is set)", None)

    def __post_init__(self):
        if self.batch_size < 1:
            raise ConfigError("must be at least 1", key="batch_size")
        if self.every_n_steps is not None and self.every_n_steps < 1:
            raise ConfigError("must be at least 1", key="every_n_steps")
        if isinstance(self.per_schedule, int) and not 1 <= self.per_schedule <= 100:
            raise ConfigError("must be from 1 to 100 (or 'epoch')", key="per_schedule")
        if isinstance(self.per_schedule, int) and self.every_n_steps is not None:
            raise ConfigError("give either per_schedule or every_n_steps, not both", key="per_schedule")

    @property
    def evaluations_per_schedule(self) -> int | None:
        """Evaluations spread over each target schedule, or None (each epoch's end, and every_n_steps)."""
        return resolved_per_schedule(self.per_schedule, self.every_n_steps)

    @property
    def once_per_epoch(self) -> bool:
        """Evaluations happen at epoch ends only (so the live display can show epochs)."""
        return self.evaluations_per_schedule is None and self.every_n_steps is None


def resolved_per_schedule(per_schedule: Any, every_n_steps: int | None) -> int | None:
    """``evaluation.per_schedule`` as the loop takes it: a count, or None for once per epoch (see the field help)."""
    if per_schedule == "epoch":
        return None
    if per_schedule is None:
        return None if every_n_steps is not None else DEFAULT_EVALUATIONS
    return int(per_schedule)


@dataclass(frozen=True)
class CoverageConfig:
    """Measure every arm before the sampler exploits (see tuneflow.study.coverage)."""

    enabled: bool = _help(
        "before the sampler exploits, enqueue one trial per arm (target only; each mapping x source; per model"
        " candidate) at the space's centre, ordered by LogME with prior: logme; they count against the budget", True)
    learning_rates: int = _help(
        "learning rates each arm is tried at (1: the centre of each learning-rate range; 2: also its lower quartile;"
        " 3: also its upper quartile) while coverage takes at most half of budget.n_trials", 2)

    def __post_init__(self):
        if isinstance(self.learning_rates, bool) or not 1 <= self.learning_rates <= 3:
            raise ConfigError("must be 1, 2 or 3", key="learning_rates")


@dataclass(frozen=True)
class ConfirmConfig:
    """Retrain the best configurations with fresh seeds when the budget is spent (see tuneflow.study.confirm)."""

    top_k: int = _help("configurations to confirm (the best target-only and the best transfer one are added when not among them)", 2)
    seeds: int = _help("fresh seeds per configuration (the same seeds for every one, so comparisons are paired)", 3)

    def __post_init__(self):
        if isinstance(self.top_k, bool) or self.top_k < 1:
            raise ConfigError("must be at least 1", key="top_k")
        if isinstance(self.seeds, bool) or not 2 <= self.seeds <= 100:
            raise ConfigError("must be from 2 to 100 (an interval needs two seeds)", key="seeds")
