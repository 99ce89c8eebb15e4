"""Reading a finished (or running) study: ranked configurations, identical ones pooled into one.

Two trials with the same parameters, source, model and contract measured one configuration twice
(an enqueued trial, a re-queued one, or a sampler that drew it again): they are one row in `best`
and `export` and one candidate for `confirm`, their seeds pooled, so the configuration is not
counted as two pieces of evidence or confirmed twice.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState


def is_pareto(study: optuna.Study) -> bool:
    return len(study.directions) > 1


CONFIRMATION_ATTR = "tuneflow_confirmation"  # written by tuneflow.study.confirm

# Per-seed lists that pool by concatenation, and per-trial means that pool weighted by seeds.
SEED_LISTS = ("seeds", "seed_values", "seed_predictions", "seed_scores_baseline", "collapsed_seeds",
              "baseline_collapsed_seeds", "transfer_baselines")
SEED_MEANS = ("accuracy", "precision", "recall", "f1", "transfer_gain_accuracy", "transfer_gain_precision",
              "transfer_gain_recall", "transfer_gain_f1", "transfer_gain_score")


def is_target_only(trial: FrozenTrial) -> bool:
    return (trial.user_attrs.get("params") or trial.params).get("mapping", "direct") == "direct"


def configuration_key(trial: FrozenTrial) -> tuple:
    """What makes two trials one configuration: every parameter it trained with, its source, model and contract."""
    attrs = trial.user_attrs
    params = json.dumps(attrs.get("params") or trial.params, sort_keys=True, default=str)
    return params, attrs.get("source"), attrs.get("model"), attrs.get("contract")


def ranked_trials(
    study: optuna.Study, top_k: int | None = None, *, confirmed_first: bool = True, pool: bool = True,
    target_only: bool | None = None,
) -> list[FrozenTrial]:
    """Complete configurations, best first; in a Pareto study the front (``best_trials``), by its first target.

    ``pool``: identical configurations are one entry (see :func:`pooled`). After ``tuneflow confirm``
    the confirmed ones come first, in the order of their confirmed means (fresh seeds), then the
    others by their study value. ``target_only``: only ``direct`` configurations (True), only
    transfer ones (False), or all.
    """
    if is_pareto(study):
        front = list(study.best_trials)
        reverse = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        front.sort(key=lambda t: t.values[0], reverse=reverse)
        return front[:top_k] if top_k else front
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if target_only is not None:
        trials = [t for t in trials if is_target_only(t) == target_only]
    if pool:
        trials = [pooled(group) for group in configurations(trials)]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials.sort(key=lambda t: t.value, reverse=reverse)
    confirmation = study.user_attrs.get(CONFIRMATION_ATTR) if confirmed_first else None
    if confirmation:
        order = {r["trial"]: i for i, r in enumerate(confirmation["results"])}  # already best first
        position = lambda t: min((order[n] for n in t.user_attrs.get("pooled_trials", [t.number]) if n in order), default=len(order))
        trials.sort(key=position)  # stable: the rest keep the study's order
    return trials[:top_k] if top_k else trials


def configurations(trials: list[FrozenTrial]) -> list[list[FrozenTrial]]:
    """``trials`` grouped by :func:`configuration_key`, each group in trial order."""
    groups: dict[tuple, list[FrozenTrial]] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        groups.setdefault(configuration_key(trial), []).append(trial)
    return list(groups.values())


def pooled(group: list[FrozenTrial]) -> FrozenTrial:
    """One configuration's trials as one: a copy of the first, its value and figures pooled over every seed.

    The value and the metrics are means weighted by each trial's seeds; the per-seed lists are joined;
    ``pooled_trials`` names the trials. A single trial is returned as it is.
    """
    if len(group) == 1:
        return group[0]
    first = group[0]
    weights = np.array([len(t.user_attrs.get("seed_values") or [None]) for t in group], float)
    attrs = dict(first.user_attrs)
    for key in SEED_MEANS:
        if all(t.user_attrs.get(key) is not None for t in group):
            attrs[key] = float(np.average([t.user_attrs[key] for t in group], weights=weights))
    for key in SEED_LISTS:
        if all(key in t.user_attrs for t in group):
            attrs[key] = [item for t in group for item in (t.user_attrs[key] or [])]
    if isinstance(attrs.get("transfer_gain"), dict):  # metric -> gain, as the per-metric attrs now pooled
        attrs["transfer_gain"] = {m: attrs.get(f"transfer_gain_{m}", g) for m, g in attrs["transfer_gain"].items()}
    values = attrs.get("seed_values") or []
    if values:
        attrs["value_mean"] = float(np.mean(values))
        attrs["value_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    # The trial-level interval was over one trial's seeds; the pooled one is the study's (tuneflow.study.verdict).
    for key in ("transfer_gain_ci", "transfer_gain_p", "transfer_gain_ci_clipped"):
        attrs.pop(key, None)
    attrs["pooled_trials"] = [t.number for t in group]
    merged = copy.copy(first)
    merged.user_attrs = attrs
    merged.values = [float(v) for v in np.average([t.values for t in group], axis=0, weights=weights)]
    return merged


def confirmed(study: optuna.Study) -> dict[int, dict]:
    """Trial number -> its confirmed figures (empty when the study was never confirmed), predictions included."""
    attrs = study.user_attrs
    record = attrs.get(CONFIRMATION_ATTR) or {}
    return {r["trial"]: with_confirmed_predictions(r, attrs) for r in record.get("results", [])}


def confirmed_predictions_attr(trial_number: int) -> str:
    """The study attr holding one confirmed configuration's per-seed predictions.

    Why apart from the confirmation record: a study attr is one TEXT column, 64 KB on MySQL/MariaDB, and
    the predictions of several configurations would overflow it; each configuration's alone stays under
    the per-trial limit (``transfer.gain.PACKED_LIMIT``)."""
    return f"{CONFIRMATION_ATTR}_predictions:{trial_number}"


def without_predictions(result: dict) -> dict:
    """``result`` as the confirmation record keeps it: its predictions named, not inlined."""
    if "seed_predictions" not in result:
        return result
    kept = {k: v for k, v in result.items() if k != "seed_predictions"}
    return {**kept, "seed_predictions_attr": confirmed_predictions_attr(result["trial"])}


def with_confirmed_predictions(result: dict, attrs: dict) -> dict:
    """A confirmation record's result with its predictions read back from their own study attr."""
    name = result.get("seed_predictions_attr")
    if name is None or name not in attrs:
        return result
    return {**result, "seed_predictions": attrs[name]}


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts
