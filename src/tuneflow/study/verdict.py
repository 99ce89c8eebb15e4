"""The study's answer to "does transfer help, and from which source?": a verdict with its numbers.

The best transfer configuration is compared with the best target-only one (both as ``best`` ranks
them: confirmed first, identical configurations pooled), on the weighted metric score, per seed.
Each side's figures are its confirmed ones when ``tuneflow confirm`` (or the study's own
confirmation) retrained it, paired seed by seed when both were confirmed on the same fresh seeds,
else its trials' own. The interval is :func:`~tuneflow.transfer.gain_stats.seeds_and_rows_interval`:
the seed noise pooled over every configuration of the study plus the validation rows' share.

Outcomes: ``helped`` (the interval lies above 0), ``hurt`` (below), ``unresolved`` (it straddles 0,
or the study measured no seed noise), ``not_tried`` (no transfer configuration finished, and why),
``no_reference`` (nothing target-only to compare with). When no target-only configuration was
tried, the transfer configuration's own target-only baselines (same settings, ``mapping: direct``)
are the reference. ``export`` puts :attr:`Verdict.recommended_trial` first: the transfer
configuration only when transfer helped, else the target-only one, which is simpler and cheaper and
was not beaten beyond the noise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from tuneflow.config.study_config import CONFIG_ATTR
from tuneflow.study.results import (
    CONFIRMATION_ATTR,
    configurations,
    confirmed,
    is_pareto,
    is_target_only,
    pooled,
    ranked_trials,
)
from tuneflow.study.verdict_words import (
    collapse_notes,
    describe,
    not_tried_reason,
    recommendation,
    space_allows_transfer,
    summary,
)
from tuneflow.transfer.gain import BASELINE_PREFIX, unpack_predictions
from tuneflow.transfer.gain_stats import (
    GainInterval,
    pooled_seed_noise,
    row_standard_error,
    seeds_and_rows_interval,
)


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a configuration (or a transfer configuration's own baselines)."""

    trial: int  # the trial that stands for the configuration (export writes it)
    trials: tuple[int, ...]  # every trial pooled into it
    label: str  # plain words: "sequential from tweets (trial 4: full, lr 1e-04)"
    source: str | None
    mean: float  # mean metric score over its seeds
    seeds: int
    collapsed: int  # seeds at chance level
    chance: float | None
    confirmed: bool
    is_baseline: bool = False  # the transfer configuration's target-only baselines, not a trial of its own


@dataclass(frozen=True)
class Verdict:
    """Plain words (:attr:`summary`, :attr:`recommendation`) and the numbers behind them."""

    outcome: str  # helped | hurt | unresolved | not_tried | no_reference
    summary: str
    recommendation: str = ""
    recommended_trial: int | None = None
    transfer: Side | None = None
    target_only: Side | None = None
    comparison: GainInterval | None = None
    reason: str | None = None  # why transfer was not tried, or why the gain is not resolved
    source: str | None = None  # set on the per-source verdicts
    notes: tuple[str, ...] = ()  # e.g. seeds that collapsed to chance level
    per_source: tuple["Verdict", ...] = ()

    @property
    def gain(self) -> float | None:
        return None if self.comparison is None else self.comparison.mean

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.comparison is None else (self.comparison.low, self.comparison.high)

    @property
    def p(self) -> float | None:
        return None if self.comparison is None else self.comparison.p

    @property
    def seeds_needed(self) -> int | None:
        return None if self.comparison is None else self.comparison.seeds_needed

    def __str__(self) -> str:
        return self.summary


@dataclass(frozen=True)
class _Measured:
    side: Side
    scores: list[float]
    seeds: list[Any]
    predictions: list[list[int]] | None
    labels: str | None  # the study attr holding the validation labels the predictions refer to


def study_verdict(study: optuna.Study) -> Verdict:
    """The verdict of ``study`` (read-only; any state: a running study gets the verdict so far)."""
    record = study.user_attrs.get(CONFIG_ATTR) or {}
    ranked = _ranked(study)
    confirmation = confirmed(study)
    confirmation_seeds = (study.user_attrs.get(CONFIRMATION_ATTR) or {}).get("seeds") or []
    measure = lambda t: _measure(t, confirmation, confirmation_seeds, _metric_weights(study))
    noise = pooled_seed_noise(_seed_groups(study, ranked, confirmation))
    target = next((measure(t) for t in ranked if is_target_only(t)), None)
    first = ranked[0].number if ranked else None
    main = _verdict(study, record, [t for t in ranked if not is_target_only(t)], target, measure, noise, source=None, first=first)
    sources = [s.get("name") for s in (record.get("sources") or ([record["source"]] if record.get("source") else []))]
    if not sources or not space_allows_transfer(record):
        return main
    per_source = tuple(
        _verdict(study, record, [t for t in ranked if not is_target_only(t) and t.user_attrs.get("source") == name],
                 target, measure, noise, source=name, first=first)
        for name in sources)
    return replace(main, per_source=per_source)


def _verdict(study, record, transfer: list[FrozenTrial], target: _Measured | None, measure, noise, *, source, first) -> Verdict:
    """The verdict for ``transfer`` (ranked transfer configurations) against ``target`` (the best target-only one)."""
    if not transfer:
        reason = not_tried_reason(study, record, source=source)
        keep = target.side.trial if target else first
        return Verdict("not_tried", summary("not_tried", reason=reason, source=source), recommendation("not_tried", keep, target and target.side),
                       keep, target_only=target.side if target else None, reason=reason, source=source,
                       notes=collapse_notes(target and target.side))
    ours = measure(transfer[0])
    reference = target or _baseline_reference(study, transfer[0], ours)
    if reference is None:
        return Verdict("no_reference", summary("no_reference", transfer=ours.side, source=source),
                       recommendation("no_reference", ours.side.trial, ours.side), ours.side.trial, transfer=ours.side,
                       reason="no target-only run to compare with", source=source)
    comparison = _compare(study, ours, reference, noise)
    if all(side.side.seeds == side.side.collapsed for side in (ours, reference)):
        outcome, reason = "unresolved", "neither side learnt the task"  # two chance-level runs say nothing about transfer
    elif comparison.method in ("rows", "none"):
        outcome, reason = "unresolved", "seed noise unmeasured"
    else:
        outcome = "helped" if comparison.low > 0 else "hurt" if comparison.high < 0 else "unresolved"
        reason = None
    keep = ours.side.trial if outcome == "helped" or reference.side.is_baseline else reference.side.trial
    chosen = ours.side if keep == ours.side.trial else reference.side
    return Verdict(outcome, summary(outcome, transfer=ours.side, target=reference.side, comparison=comparison, reason=reason,
                                    source=source),
                   recommendation(outcome, keep, chosen, other=reference.side), keep, ours.side, reference.side, comparison,
                   reason, source, collapse_notes(ours.side, reference.side))


def _ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Configurations best first as ``best`` shows them; a Pareto study's by mean score (it has no one value)."""
    if not is_pareto(study):
        return ranked_trials(study)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    groups = [pooled(g) for g in configurations(done)]
    return sorted(groups, key=lambda t: t.user_attrs.get("value_mean", float("-inf")), reverse=True)


def _measure(trial: FrozenTrial, confirmation: dict[int, dict], confirmation_seeds: list, weights: dict[str, float]) -> _Measured:
    """A configuration's per-seed scores: confirmed ones when it was confirmed, else its trials'."""
    attrs = trial.user_attrs
    numbers = tuple(attrs.get("pooled_trials") or [trial.number])
    result = next((confirmation[n] for n in numbers if n in confirmation and confirmation[n].get("seed_values")), None)
    source = result or attrs
    scores = [float(v) for v in (source.get("seed_values") or [_score(trial, weights)])]
    seeds = list(confirmation_seeds) if result else list(attrs.get("seeds") or [attrs.get("seed")])
    predictions = source.get("seed_predictions")
    if not predictions or any(p is None for p in predictions) or len(predictions) != len(scores):
        predictions = None
    side = Side(trial.number, numbers, describe(trial), attrs.get("source"), float(np.mean(scores)), len(scores),
                len(source.get("collapsed_seeds") or []), source.get("chance_score", attrs.get("chance_score")), result is not None)
    return _Measured(side, scores, seeds, predictions, source.get("validation_labels") or attrs.get("validation_labels"))


def _score(trial: FrozenTrial, weights: dict[str, float]) -> float:
    """A trial recorded without per-seed values: its metric score from its metrics, else its (first) value."""
    if all(trial.user_attrs.get(m) is not None for m in weights):
        return sum(w * float(trial.user_attrs[m]) for m, w in weights.items())
    return trial.values[0]


def _baseline_reference(study: optuna.Study, trial: FrozenTrial, ours: _Measured) -> _Measured | None:
    """The transfer configuration's own target-only baselines (same settings, its seeds) as the reference."""
    confirmation = confirmed(study)
    result = next((confirmation[n] for n in ours.side.trials if n in confirmation), None) if ours.side.confirmed else None
    source = result or trial.user_attrs
    scores = source.get("seed_scores_baseline")
    if not scores:
        return None
    names = source.get("transfer_baselines") or [source.get("transfer_baseline")] * len(scores)
    records = [study.user_attrs.get(name) or {} for name in names]
    predictions = [r.get("predictions") for r in records]
    chance = ours.side.chance
    collapsed = len(source.get("baseline_collapsed_seeds") or [])
    side = Side(ours.side.trial, ours.side.trials, f"its target-only baseline (trial {trial.number}'s settings, mapping direct)",
                None, float(np.mean(scores)), len(scores), collapsed, chance, ours.side.confirmed, is_baseline=True)
    return _Measured(side, [float(s) for s in scores], [r.get("seed") for r in records],
                     predictions if all(p is not None for p in predictions) else None, ours.labels)


def _compare(study: optuna.Study, ours: _Measured, theirs: _Measured, noise) -> GainInterval:
    paired = None not in ours.seeds and ours.seeds == theirs.seeds
    row_se = None
    record = study.user_attrs.get(ours.labels) if ours.labels and ours.labels == (theirs.labels or ours.labels) else None
    if record and ours.predictions and theirs.predictions:
        labels = unpack_predictions(record["labels"])
        sides = [[unpack_predictions(p) for p in side.predictions] for side in (ours, theirs)]
        if all(len(p) == len(labels) for side in sides for p in side):  # the same rows, else no row share
            row_se = row_standard_error(labels, sides[0], sides[1], num_labels=record["num_labels"], weights=_metric_weights(study))
    return seeds_and_rows_interval(ours.scores, theirs.scores, paired=paired, noise=noise, row_se=row_se)


def _metric_weights(study: optuna.Study) -> dict[str, float]:
    """The study's metric weights, normalised (the score each seed's value is)."""
    weights = ((study.user_attrs.get(CONFIG_ATTR) or {}).get("objective") or {}).get("weights") or {"f1": 1.0}
    metrics = {k: float(w) for k, w in weights.items() if k in ("accuracy", "precision", "recall", "f1") and w > 0}
    total = sum(metrics.values()) or 1.0
    return {k: w / total for k, w in metrics.items()}


def _seed_groups(study: optuna.Study, ranked: list[FrozenTrial], confirmation: dict[int, dict]) -> list[list[float]]:
    """Every set of seeds of one configuration the study holds: pooled trials, confirmed results, and
    baselines of one key trained with several seeds (a direct trial's own record is its trial's)."""
    groups = [list(t.user_attrs.get("seed_values") or []) for t in ranked]
    groups += [list(r.get("seed_values") or []) for r in confirmation.values()]
    weights = _metric_weights(study)
    by_key: dict[str, list[float]] = {}
    for name, rec in study.user_attrs.items():
        if name.startswith(BASELINE_PREFIX) and isinstance(rec, dict) and rec.get("trained_by") == "baseline run":
            key = {k: v for k, v in (rec.get("key") or {}).items() if k != "seed"}
            score = sum(w * float(rec["metrics"][m]) for m, w in weights.items())
            by_key.setdefault(repr(sorted(key.items())), []).append(score)
    return groups + list(by_key.values())


def configuration_gains(study: optuna.Study, trials: list[FrozenTrial]) -> dict[int, GainInterval]:
    """Each transfer configuration's gain over its own target-only baselines, with the study's interval
    (pooled seed noise plus rows; confirmed figures where confirmed): what `best`'s gain columns show."""
    ranked = _ranked(study)
    confirmation = confirmed(study)
    seeds = (study.user_attrs.get(CONFIRMATION_ATTR) or {}).get("seeds") or []
    noise = pooled_seed_noise(_seed_groups(study, ranked, confirmation))
    gains = {}
    for trial in trials:
        if is_target_only(trial):
            continue
        ours = _measure(trial, confirmation, seeds, _metric_weights(study))
        reference = _baseline_reference(study, trial, ours)
        if reference is not None:
            gains[trial.number] = _compare(study, ours, reference, noise)
    return gains
