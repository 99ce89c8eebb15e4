"""``tuneflow confirm``: retrain the top configurations and their baselines with fresh seeds before export.

A study picks its winner on the seeds it happened to draw, and the winner is partly the luckiest
draw. Confirmation retrains the top K configurations with N new seeds (the same N for every
configuration, so the comparison between them is paired), each with a target-only baseline on the
same seeds, and records the results in the study user attr ``tuneflow_confirmation`` — outside the
trials, so no sampler ever sees them. ``best`` and ``export`` then order by the confirmed means.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import optuna

from tuneflow.config.errors import ConfigError
from tuneflow.study.objective import TransferObjective, trial_seeds
from tuneflow.study.results import CONFIRMATION_ATTR, ranked_trials
from tuneflow.study.runner import StudyPlan
from tuneflow.transfer.gain_stats import probability_first_beats_second

# The trial number confirmation runs under: its seeds (config.seed + this, then drawn from it) are
# none a study's trial used, and every confirmed configuration shares them.
CONFIRM_NUMBER = 1_000_000

KEPT = ("accuracy", "precision", "recall", "f1", "seed_values", "value_mean", "value_sd", "transfer_gain_score",
        "transfer_gain_ci", "transfer_gain_p", "negative_transfer", "negative_transfer_evidence", "training_seconds")


class _ConfirmTrial(optuna.trial.FixedTrial):
    """The trial's own parameter values, the real study (for the baseline cache), and no pruner."""

    def __init__(self, params: dict[str, Any], study: optuna.Study):
        super().__init__(params, number=CONFIRM_NUMBER)
        self.study = study


def confirm(plan: StudyPlan, study: optuna.Study, *, top_k: int = 2, seeds: int = 3) -> dict[str, Any]:
    """Retrain the top ``top_k`` trials with ``seeds`` fresh seeds; store and return the confirmation."""
    file = str(plan.config.path)
    if len(study.directions) > 1:
        raise ConfigError("confirm ranks by one value; a Pareto study has several", file=file, key="objective.mode")
    if seeds < 2:
        raise ConfigError("needs at least 2 seeds (an interval over seeds)", key="--seeds")
    trials = ranked_trials(study, top_k, confirmed_first=False)
    if not trials:
        raise ConfigError(f"study {study.study_name!r} has no complete trial to confirm yet", file=file)
    config = plan.config.replaced(objective=dataclasses.replace(plan.config.objective, seeds=seeds))
    objective = TransferObjective.for_plan(dataclasses.replace(plan, config=config))  # each trial's own source and model
    results = []
    for rank, frozen in enumerate(trials, start=1):
        trial = _ConfirmTrial(frozen.params, study)
        value = objective(trial)
        attrs = trial.user_attrs
        results.append({"trial": frozen.number, "study_rank": rank, "study_value": frozen.value, "value": float(value),
                        **{k: attrs[k] for k in KEPT if k in attrs}})
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    order = sorted(results, key=lambda r: r["value"], reverse=maximize)
    confirmation = {
        "seeds": trial_seeds(config.seed + CONFIRM_NUMBER, seeds),
        "results": order,
        "ranking_holds": [r["trial"] for r in order] == [r["trial"] for r in results],
        "p_first_beats_second": _p_first_beats_second(order, maximize),
    }
    study.set_user_attr(CONFIRMATION_ATTR, confirmation)
    return confirmation


def _p_first_beats_second(order: list[dict[str, Any]], maximize: bool) -> float | None:
    """P(confirmed #1's mean score beats #2's), from their per-seed scores (paired seeds, t approximation)."""
    if len(order) < 2:
        return None
    first, second = (np.asarray(r["seed_values"], float) for r in order[:2])
    if not maximize:
        first, second = -first, -second
    return probability_first_beats_second(first, second)


def format_confirmation(confirmation: dict[str, Any]) -> str:
    """The lines ``tuneflow confirm`` prints: mean ± sd, gain and its interval per configuration, and the verdict."""
    lines = [f"confirmed with {len(confirmation['seeds'])} fresh seeds {confirmation['seeds']}"]
    lines.append(f"{'rank':>4}  {'trial':>5}  {'study':>7}  {'mean ± sd':>17}  {'gain':>8}  {'gain 95% CI':>19}  {'p':>6}  negative transfer")
    for rank, r in enumerate(confirmation["results"], start=1):
        sd = r.get("value_sd")
        ci = r.get("transfer_gain_ci")
        gain = r.get("transfer_gain_score")
        lines.append(
            f"{rank:>4}  {r['trial']:>5}  {r['study_value']:>7.4f}  {r['value']:>8.4f} ± {sd if sd is not None else 0:.4f}  "
            f"{'-' if gain is None else format(gain, '+.4f'):>8}  "
            f"{'-' if not ci else f'[{ci[0]:+.4f}, {ci[1]:+.4f}]':>19}  "
            f"{'-' if r.get('transfer_gain_p') is None else format(r['transfer_gain_p'], '.3f'):>6}  "
            f"{r.get('negative_transfer_evidence', '-')}"
        )
    p = confirmation["p_first_beats_second"]
    verdict = "the study's ranking holds" if confirmation["ranking_holds"] else "the ranking changed under fresh seeds"
    lines.append(verdict + ("" if p is None else f"; P(#1 beats #2) = {p:.2f}"))
    return "\n".join(lines)
