"""Scoring a search against the grid: regret of its pick, compute as a share of the grid's, and whether its
transfer verdict agrees with the grid's.

* The grid's verdict: the best transfer configuration against the best target-only one (each by its
  mean validation score over the grid's seeds), paired seed by seed (the same seed trains both), with
  a Student-t 95 % interval over the seeds: ``helped`` when it lies above 0, ``hurt`` below, else
  ``unresolved``.
* A naive verdict (HF, plain TPE: they have no notion of one): the best transfer configuration against
  the best target-only one by the tool's own measured values, ``helped`` / ``hurt`` by the sign;
  ``not tried`` when the tool measured no configuration on one side.
* Agreement is equality of the outcomes, so a tool that always answers "no difference" (``unresolved``)
  fails wherever the grid resolves the question.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from search_settings import Config

OUTCOMES = ("helped", "hurt", "unresolved", "not tried")


@dataclass(frozen=True)
class GridSummary:
    means: dict[Config, float]  # mean validation points over seeds
    tests: dict[Config, float]  # mean test points over seeds
    per_seed: dict[Config, list[float]]
    samples: int  # every grid run's training samples
    best: Config

    def regret(self, config: Config | None) -> float | None:
        """Points the grid's best is ahead of ``config`` (0 for the best itself)."""
        return None if config is None else self.means[self.best] - self.means[config]


@dataclass(frozen=True)
class GridVerdict:
    outcome: str
    transfer: Config | None
    target_only: Config | None
    gain: float | None  # points, paired mean
    low: float | None
    high: float | None
    p: float | None


def summarize_grid(runs: Mapping[Config, list[dict[str, Any]]]) -> GridSummary:
    means = {c: float(np.mean([r["validation"] for r in rs])) for c, rs in runs.items()}
    tests = {c: float(np.mean([r["test"] for r in rs])) for c, rs in runs.items()}
    per_seed = {c: [float(r["validation"]) for r in rs] for c, rs in runs.items()}
    samples = int(sum(r["samples"] for rs in runs.values() for r in rs))
    return GridSummary(means, tests, per_seed, samples, max(means, key=means.get))


def grid_verdict(summary: GridSummary) -> GridVerdict:
    from tuneflow.transfer.gain_stats import t_interval

    transfer = [c for c in summary.means if c.transfer]
    direct = [c for c in summary.means if not c.transfer]
    if not transfer or not direct:
        return GridVerdict("not tried", None, None, None, None, None, None)
    ours, theirs = max(transfer, key=summary.means.get), max(direct, key=summary.means.get)
    diffs = [a - b for a, b in zip(summary.per_seed[ours], summary.per_seed[theirs])]
    t = t_interval(diffs)
    outcome = "helped" if t.low > 0 else "hurt" if t.high < 0 else "unresolved"
    return GridVerdict(outcome, ours, theirs, t.mean, t.low, t.high, t.p)


def naive_verdict(measured: Mapping[Config, float]) -> str:
    """Best transfer value against best target-only value, by sign (what a tool without a verdict implies)."""
    transfer = [v for c, v in measured.items() if c.transfer]
    direct = [v for c, v in measured.items() if not c.transfer]
    if not transfer or not direct:
        return "not tried"
    best_t, best_d = max(transfer), max(direct)
    return "helped" if best_t > best_d else "hurt" if best_t < best_d else "unresolved"


def tuneflow_outcome(outcome: str) -> str:
    """tuneflow's verdict outcome in the benchmark's words."""
    return {"not_tried": "not tried", "no_reference": "not tried"}.get(outcome, outcome)


def agrees(tool: str, grid: GridVerdict) -> bool:
    return tool == grid.outcome


def best_of(measured: Mapping[Config, Iterable[float]]) -> Config | None:
    """A tool's pick by its own values: the configuration with the best mean of what it measured."""
    means = {c: float(np.mean(list(v))) for c, v in measured.items() if list(v)}
    return max(means, key=means.get) if means else None
