"""Plain-text tables of trials for the terminal (`tuneflow best`) and the value format they share."""

from __future__ import annotations

from optuna.trial import FrozenTrial

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


def format_table(trials: list[FrozenTrial]) -> str:
    header = [name for name, _ in COLUMNS]
    rows = [[fn(t) for _, fn in COLUMNS] for t in trials]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
