"""Reading a finished (or running) study: ranked trials and a readable table."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

COLUMNS = (
    ("trial", lambda t: str(t.number)),
    ("value", lambda t: format_values(t.values)),
    ("accuracy", lambda t: _fmt(t.user_attrs.get("accuracy"))),
    ("precision", lambda t: _fmt(t.user_attrs.get("precision"))),
    ("recall", lambda t: _fmt(t.user_attrs.get("recall"))),
    ("f1", lambda t: _fmt(t.user_attrs.get("f1"))),
    ("mapping", lambda t: str(t.user_attrs.get("params", {}).get("mapping", "?"))),
    ("method", lambda t: str(t.user_attrs.get("params", {}).get("method", "?"))),
    ("lr", lambda t: _fmt(_encoder_rate(t.user_attrs.get("params", {})), ".2e")),
    ("batch", lambda t: str(t.user_attrs.get("params", {}).get("batch_size", "?"))),
    ("epochs", lambda t: str(t.user_attrs.get("params", {}).get("epochs", "?"))),
    ("train s", lambda t: _fmt(t.user_attrs.get("training_seconds"), ".1f")),
    ("gain", lambda t: _gain(t)),
)


def _encoder_rate(params: dict) -> float | None:
    """The rate the encoder side trains with: LoRA's matrices have their own when it is set."""
    if params.get("method") == "lora" and params.get("lora_learning_rate") is not None:
        return params["lora_learning_rate"]
    return params.get("learning_rate")


def _gain(trial: FrozenTrial) -> str:
    """Transfer gain of the score; a ``direct`` trial is the baseline itself, so it has none."""
    if trial.user_attrs.get("params", {}).get("mapping") == "direct" and "transfer_gain_score" in trial.user_attrs:
        return "base"
    return _fmt(trial.user_attrs.get("transfer_gain_score"), "+.4f")


def _fmt(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def format_values(values) -> str:
    """One value, or a Pareto trial's values joined by " / " (in target order)."""
    return "-" if not values else " / ".join(f"{v:.4g}" if abs(v) >= 1000 else f"{v:.4f}" for v in values)


def is_pareto(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def ranked_trials(study: optuna.Study, top_k: int | None = None) -> list[FrozenTrial]:
    """Complete trials, best first; in a Pareto study the front (``best_trials``), by its first target."""
    if is_pareto(study):
        front = list(study.best_trials)
        reverse = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        front.sort(key=lambda t: t.values[0], reverse=reverse)
        return front[:top_k] if top_k else front
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials.sort(key=lambda t: t.value, reverse=reverse)
    return trials[:top_k] if top_k else trials


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def format_table(trials: list[FrozenTrial]) -> str:
    header = [name for name, _ in COLUMNS]
    rows = [[fn(t) for _, fn in COLUMNS] for t in trials]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
