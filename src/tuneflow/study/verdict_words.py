"""The verdict in plain words: what was compared, what came out, what to do next.

Kept apart from the arithmetic (:mod:`tuneflow.study.verdict`) so that `tuneflow run`, `best`, the
report and ``tuneflow.verdict`` print the very same sentences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

from tuneflow.study.arms import arm_label
from tuneflow.study.results import is_target_only
from tuneflow.transfer.gain_stats import CHANCE_MARGIN
from tuneflow.transferability.source_choice import DROPPED_SOURCES_ATTR

if TYPE_CHECKING:
    import optuna

    from tuneflow.study.verdict import Side
    from tuneflow.transfer.gain_stats import GainInterval


def describe(trial: FrozenTrial) -> str:
    """``sequential from tweets (trial 4: full, lr 1.0e-04, 3 epochs)``: the arm, then what sets it apart."""
    attrs = trial.user_attrs
    params = attrs.get("params") or trial.params
    arm = arm_label(trial)
    numbers = attrs.get("pooled_trials") or [trial.number]
    which = f"trial {numbers[0]}" if len(numbers) == 1 else "trials " + ", ".join(map(str, numbers))
    rate = params.get("lora_learning_rate") if params.get("method") == "lora" and params.get("lora_learning_rate") else params.get("learning_rate")
    details = [str(params["method"])] if params.get("method") else []
    details += [f"lr {rate:.1e}"] if isinstance(rate, (int, float)) else []
    details += [f"{params['epochs']} epoch{'s' if params['epochs'] != 1 else ''}"] if params.get("epochs") is not None else []
    return f"{arm} ({which}{': ' + ', '.join(details) if details else ''})"


def _space_mappings(record: dict[str, Any]) -> list[str]:
    spec = (record.get("search_space") or {}).get("mapping")
    if not spec:
        return ["direct"]
    return list(spec.get("choices") or [spec.get("value", "direct")])


def space_allows_transfer(record: dict[str, Any]) -> bool:
    """Can a trial of this study's space train on a source at all?"""
    from tuneflow.transfer.base import get_strategy

    return any(get_strategy(m).needs_source for m in _space_mappings(record))


def not_tried_reason(study: "optuna.Study", record: dict[str, Any], *, source: str | None) -> str:
    """Why no transfer configuration (from ``source``, or any) finished, in words a user can act on."""
    if not space_allows_transfer(record):
        return "the search space has no mapping that uses a source (add e.g. sequential to mapping's choices)"
    if source is not None:
        dropped = {d.get("source"): d for d in (study.user_attrs.get(DROPPED_SOURCES_ATTR) or {}).get("dropped", [])}
        if source in dropped:
            return "prior_keep dropped it before any trial (its LogME ranked low)"
        spec = (record.get("search_space") or {}).get("source")
        offered = None if not spec else (spec.get("choices") or [spec.get("value")])
        if offered is not None and source not in offered:
            return "the search space does not offer it"
    ours = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("params") and not is_target_only(t)
            and (source is None or t.user_attrs.get("source") == source)]
    count = lambda state: sum(t.state == state for t in ours)
    pruned, failed, running = count(TrialState.PRUNED), count(TrialState.FAIL), count(TrialState.RUNNING)
    if pruned or failed:
        return f"every {'trial from it' if source else 'transfer trial'} was pruned or failed ({pruned} pruned, {failed} failed)" + (
            f"; {running} still running" if running else "")
    if running:
        return "its trials are still running"
    finished = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
    budget = (record.get("budget") or {}).get("n_trials")
    what = "any trial picked it" if source else "any transfer trial"
    if budget and finished >= budget:
        return f"the budget ran out ({finished} trials) before {what}; raise budget.n_trials"
    return f"no {'trial from it' if source else 'transfer trial'} has run yet ({finished} trials done)"


def _more_seeds(comparison: "GainInterval", reason: str | None) -> str:
    """The parenthesis after "no difference these seeds can resolve"."""
    if reason == "neither side learnt the task":
        return "neither side learnt the task: every seed is at chance level; look at the learning rate and epochs first"
    if comparison.method in ("rows", "none"):
        return "seed noise unmeasured: one seed per configuration; `tuneflow confirm` or objective.seeds >= 2 measures it"
    needed = comparison.seeds_needed
    if needed is None:
        if comparison.row_se and 1.96 * comparison.row_se >= abs(comparison.mean):
            return "more seeds would not: the validation rows' own noise is as large as the gain"
        return "no number of seeds would: the gain is about zero"
    more = max(1, needed - min(comparison.seeds))
    return f"about {more} more seed{'s' if more > 1 else ''} per configuration would: {needed} each"


def _basis(comparison: "GainInterval", confirmed: bool) -> str:
    n, m = comparison.seeds
    seeds = f"{n} {'confirmed ' if confirmed else ''}seeds each" if n == m else f"{n} and {m} seeds"
    parts = [seeds + (", paired" if comparison.paired else "")]
    if comparison.method in ("seeds", "seeds+rows"):
        parts.append("seed noise pooled over the study's configurations" + (" plus validation rows" if comparison.method == "seeds+rows" else ""))
    elif comparison.method == "rows":
        parts.append("validation rows only")
    return "; ".join(parts)


def format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


HEADS = {"helped": "transfer helped", "hurt": "transfer hurt"}


def summary(outcome: str, *, transfer: "Side | None" = None, target: "Side | None" = None,
            comparison: "GainInterval | None" = None, reason: str | None = None, source: str | None = None) -> str:
    """One sentence: the outcome, the two configurations, the gain with its interval and p, and on what it rests."""
    lead = f"{source}: " if source else ""
    if outcome == "not_tried":
        return f"{lead}transfer not tried: {reason}."
    if outcome == "no_reference":
        return (f"{lead}transfer measured ({transfer.label}, score {transfer.mean:.4f}) but nothing target-only to compare it "
                "with: add direct to mapping's choices, or keep objective.transfer_baseline on.")
    head = HEADS.get(outcome) or f"no difference these seeds can resolve ({_more_seeds(comparison, reason)})"
    clipped = " (clipped to the score's range)" if comparison.clipped else ""
    return (f"{lead}{head}: {transfer.label} scores {transfer.mean:.4f} against {target.mean:.4f} for {target.label}; "
            f"gain {comparison.mean:+.4f}, 95% CI [{comparison.low:+.4f}, {comparison.high:+.4f}]{clipped}, {format_p(comparison.p)} "
            f"({_basis(comparison, transfer.confirmed and target.confirmed)}).")


def recommendation(outcome: str, trial: int | None, side: "Side | None", *, other: "Side | None" = None) -> str:
    """Which configuration `export` writes first, and why."""
    if trial is None:
        return "nothing to recommend yet: no complete trial."
    label = side.label if side is not None else f"trial {trial}"
    if outcome == "helped":
        return f"recommended (export writes it first): {label}."
    if outcome in ("hurt", "unresolved") and other is not None and other.is_baseline:
        return (f"recommended: {label}; the study tried no target-only configuration, so to train without the source "
                "export it and set mapping: direct.")
    if outcome == "hurt":
        return f"recommended (export writes it first): {label}; transfer hurt."
    if outcome == "unresolved":
        return f"recommended (export writes it first): {label}; transfer did not beat it beyond the noise, and it is simpler and cheaper."
    return f"recommended (export writes it first): {label}."


def collapse_notes(*sides: "Side | None") -> tuple[str, ...]:
    """A line per side with seeds at chance level: such a seed is a failure to learn, not noise to average."""
    return tuple(f"{s.label}: {s.collapsed} of {s.seeds} seed{'s' if s.seeds != 1 else ''} collapsed to chance level"
                 + (f" (score <= {s.chance + CHANCE_MARGIN:.3f})" if s.chance is not None else "")
                 for s in sides if s is not None and s.collapsed)
