"""Confirmation: retrain the top configurations and their baselines with fresh seeds, in the study or afterwards.

A study picks its winner on the seeds it happened to draw, and the winner is partly the luckiest
draw. Confirmation retrains the top K configurations with N new seeds (the same N for every
configuration, so the comparison between them is paired), each with a target-only baseline on the
same seeds, and records the results in the study user attr ``tuneflow_confirmation`` — outside the
trials, so no sampler ever sees them. The best target-only configuration and the best transfer one
are always confirmed too (``role: target_only_reference`` / ``transfer_reference`` when not among the
top K), so "does transfer help?" compares like with like, both on the same fresh seeds. ``best`` and ``export`` then order by the confirmed means.

It runs in two ways: ``confirm: {top_k, seeds}`` in the study file runs it when the budget is spent
(:func:`confirm_in_study`: once per budget, claimed in storage like the prior), and ``tuneflow
confirm`` runs it afterwards (and overwrites the attr). Either way each configuration's result is
kept as it finishes (``tuneflow_confirmation_partial``), so an interrupted confirmation resumes where
it stopped, and ``training_samples`` records its compute.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from tuneflow.config.errors import ConfigError
from tuneflow.study.arms import arm_label, trial_arm
from tuneflow.study.objective import TransferObjective, trial_seeds
from tuneflow.study.results import (
    CONFIRMATION_ATTR,
    confirmed_predictions_attr,
    ranked_trials,
    with_confirmed_predictions,
    without_predictions,
)
from tuneflow.transfer.gain_stats import probability_first_beats_second

if TYPE_CHECKING:
    from tuneflow.study.runner import StudyPlan

# The trial number confirmation runs under: its seeds (config.seed + this, then drawn from it) are
# none a study's trial used, and every confirmed configuration shares them.
CONFIRM_NUMBER = 1_000_000
PARTIAL_ATTR = "tuneflow_confirmation_partial"  # study user attr: results so far, to resume an interrupted run
DONE_PREFIX = "tuneflow_confirmation_after:"  # study user attr per finished-trial count: the in-study run is done
REFERENCE = "target_only_reference"
TRANSFER_REFERENCE = "transfer_reference"

# The confirmed figures kept per configuration; the verdict pairs the transfer configuration with the
# target-only reference seed by seed and row by row (predictions, baselines), so those are kept too.
KEPT = ("accuracy", "precision", "recall", "f1", "seed_values", "value_mean", "value_sd", "transfer_gain_score",
        "transfer_gain_ci", "transfer_gain_p", "negative_transfer", "negative_transfer_evidence", "training_seconds",
        "training_samples", "seed_predictions", "validation_labels", "chance_score", "collapsed_seeds",
        "seed_scores_baseline", "transfer_baselines", "transfer_baseline", "source", "model")


class _ConfirmTrial(optuna.trial.FixedTrial):
    """The trial's own parameter values, the real study (for the baseline cache), and no pruner."""

    def __init__(self, params: dict[str, Any], study: optuna.Study):
        super().__init__(params, number=CONFIRM_NUMBER)
        self.study = study


def chosen_trials(study: optuna.Study, top_k: int) -> list[tuple[int, FrozenTrial, str]]:
    """(study rank, trial, role) of the top ``top_k``, then the best target-only trial and the best transfer
    trial when none of the top K is one (roles ``target_only_reference``, ``transfer_reference``): "does
    transfer help?" then compares two configurations confirmed on the same fresh seeds."""
    ranked = ranked_trials(study, None, confirmed_first=False)
    chosen = [(rank, trial, "top_k") for rank, trial in enumerate(ranked[:top_k], start=1)]
    for target_only, role in ((True, REFERENCE), (False, TRANSFER_REFERENCE)):
        if not any(trial_arm(t).target_only == target_only for _, t, _ in chosen):
            best = next(((rank, t) for rank, t in enumerate(ranked, start=1) if trial_arm(t).target_only == target_only), None)
            if best is not None:
                chosen.append((best[0], best[1], role))
    return chosen


def confirm(plan: "StudyPlan", study: optuna.Study, *, top_k: int = 2, seeds: int = 3,
            message: Callable[[str], None] | None = None, refresh: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Retrain the top ``top_k`` trials (and the best target-only one) with ``seeds`` fresh seeds; store and return it.

    ``refresh()`` is called after each configuration (the in-study run keeps its claim alive with it).
    """
    file = str(plan.config.path)
    if len(study.directions) > 1:
        raise ConfigError("confirm ranks by one value; a Pareto study has several", file=file, key="objective.mode")
    if seeds < 2:
        raise ConfigError("needs at least 2 seeds (an interval over seeds)", key="--seeds")
    # Target-only configurations train first: a transfer configuration with the same core values then finds
    # their runs as its paired baselines (same key, same seeds) instead of training them again.
    chosen = sorted(chosen_trials(study, top_k), key=lambda item: not trial_arm(item[1]).target_only)
    if not chosen:
        raise ConfigError(f"study {study.study_name!r} has no complete trial to confirm yet", file=file)
    config = plan.config.replaced(objective=dataclasses.replace(plan.config.objective, seeds=seeds))
    seed_values = trial_seeds(config.seed + CONFIRM_NUMBER, seeds)
    signature = {"seeds": seed_values, "trials": [t.number for _, t, _ in chosen]}
    stored = study.user_attrs  # one read: each access goes to storage
    partial = stored.get(PARTIAL_ATTR) or {}
    results = [with_confirmed_predictions(r, stored) for r in partial.get("results", [])] \
        if partial.get("signature") == signature else []
    objective = TransferObjective.for_plan(dataclasses.replace(plan, config=config))  # each trial's own source and model
    say = message or (lambda line: None)
    for rank, frozen, role in chosen[len(results):]:
        which = {REFERENCE: ", the best target-only one", TRANSFER_REFERENCE: ", the best transfer one"}.get(role, "")
        say(f"confirming trial {frozen.number} ({arm_label(frozen)}{which}) with {seeds} fresh seeds")
        trial = _ConfirmTrial(frozen.params, study)
        value = objective(trial)
        attrs = trial.user_attrs
        results.append({"trial": frozen.number, "study_rank": rank, "study_value": frozen.value, "value": float(value),
                        "arm": arm_label(frozen), "params": dict(frozen.params),
                        **({"role": role} if role != "top_k" else {}), **{k: attrs[k] for k in KEPT if k in attrs}})
        if "seed_predictions" in results[-1]:
            study.set_user_attr(confirmed_predictions_attr(frozen.number), results[-1]["seed_predictions"])
        study.set_user_attr(PARTIAL_ATTR, {"signature": signature, "results": [without_predictions(r) for r in results]})
        if refresh is not None:
            refresh()
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    order = sorted(results, key=lambda r: r["value"], reverse=maximize)
    confirmation = {
        "seeds": seed_values,
        "results": [without_predictions(r) for r in order],
        "ranking_holds": [r["trial"] for r in order] == [r["trial"] for r in sorted(results, key=lambda r: r["study_rank"])],
        "p_first_beats_second": _p_first_beats_second(order, maximize),
        "training_samples": sum(int(r.get("training_samples") or 0) for r in results),
        "after_trials": finished_count(study),
    }
    study.set_user_attr(CONFIRMATION_ATTR, confirmation)
    return confirmation


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)))


def confirm_in_study(plan: "StudyPlan", study: optuna.Study, *, once, message: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """``confirm:`` in the study file, when the budget is spent: once per budget (claimed), resumable.

    Skipped when nothing finished since the last confirmation, when another worker is confirming, or
    when the study has no complete trial. Returns the confirmation it wrote, else None.
    """
    settings = plan.config.confirm
    if settings is None or not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    done_attr = f"{DONE_PREFIX}{finished_count(study)}"
    ttl = _claim_ttl(study, seeds=settings.seeds)

    def claim() -> bool:
        return once.claim(f"confirm:{finished_count(study)}", done_attr=done_attr, ttl=ttl)

    if done_attr in study.user_attrs or not claim():
        return None
    confirmation = confirm(plan, study, top_k=settings.top_k, seeds=settings.seeds, message=message, refresh=claim)
    study.set_user_attr(done_attr, {"training_samples": confirmation["training_samples"]})
    return confirmation


def _claim_ttl(study: optuna.Study, *, seeds: int) -> float:
    """Long enough for one configuration's confirmation (seeds x the slowest trial, with room), at least 10 minutes."""
    durations = [t.duration.total_seconds() for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.duration]
    return max(600.0, 3.0 * seeds * max(durations, default=0.0))


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
    lines = [f"confirmed with {len(confirmation['seeds'])} fresh seeds {confirmation['seeds']}"
             + (f" ({confirmation['training_samples']:,} training samples)" if confirmation.get("training_samples") else "")]
    lines.append(f"{'rank':>4}  {'trial':>5}  {'study':>7}  {'mean ± sd':>17}  {'gain':>8}  {'gain 95% CI':>19}  {'p':>6}  negative transfer  arm")
    for rank, r in enumerate(confirmation["results"], start=1):
        sd = r.get("value_sd")
        ci = r.get("transfer_gain_ci")
        gain = r.get("transfer_gain_score")
        lines.append(
            f"{rank:>4}  {r['trial']:>5}  {r['study_value']:>7.4f}  {r['value']:>8.4f} ± {sd if sd is not None else 0:.4f}  "
            f"{'-' if gain is None else format(gain, '+.4f'):>8}  "
            f"{'-' if not ci else f'[{ci[0]:+.4f}, {ci[1]:+.4f}]':>19}  "
            f"{'-' if r.get('transfer_gain_p') is None else format(r['transfer_gain_p'], '.3f'):>6}  "
            f"{r.get('negative_transfer_evidence', '-'):<17}  {r.get('arm', '')}"
            + {REFERENCE: " (best target-only)", TRANSFER_REFERENCE: " (best transfer)"}.get(r.get("role"), "")
        )
    p = confirmation["p_first_beats_second"]
    verdict = "the study's ranking holds" if confirmation["ranking_holds"] else "the ranking changed under fresh seeds"
    lines.append(verdict + ("" if p is None else f"; P(#1 beats #2) = {p:.2f}"))
    return "\n".join(lines)
