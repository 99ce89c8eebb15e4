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
    ("learning_rate", lambda t: _fmt(t.user_attrs.get("params", {}).get("learning_rate"), ".2e")),
    ("batch", lambda t: str(t.user_attrs.get("params", {}).get("batch_size", "?"))),
    ("epochs", lambda t: str(t.user_attrs.get("params", {}).get("epochs", "?"))),
    ("train s", lambda t: _fmt(t.user_attrs.get("training_seconds"), ".1f")),
    ("gain", lambda t: _gain(t)),
)

# With several seeds (or a confirmation): the spread the value came with. Placed before "gain".
SPREAD_COLUMNS = (
    ("seeds", lambda a: str(len(a.get("seed_values") or [None]))),
    ("mean±sd", lambda a: _mean_sd(a)),
    ("gain 95% CI", lambda a: "-" if not a.get("transfer_gain_ci") or _is_base(a) else "[{:+.3f},{:+.3f}]".format(*a["transfer_gain_ci"])),
)


def _mean_sd(attrs: dict) -> str:
    mean = attrs.get("value_mean")
    if mean is None:
        return "-"
    sd = attrs.get("value_sd")
    return f"{mean:.4f}" if sd is None else f"{mean:.4f}±{sd:.4f}"


def _is_base(attrs: dict) -> bool:
    """A ``direct`` trial is the baseline itself: its gain (0) and interval ([0, 0]) measure nothing."""
    return (attrs.get("params") or {}).get("mapping") == "direct"


def _gain(trial: FrozenTrial) -> str:
    """Transfer gain of the score; a ``direct`` trial is the baseline itself, so it has none."""
    if _is_base(trial.user_attrs) and "transfer_gain_score" in trial.user_attrs:
        return "base"
    return _fmt(trial.user_attrs.get("transfer_gain_score"), "+.4f")


def _spread(fn, confirmed: dict[int, dict]):
    """A spread column: the confirmed figures for a confirmed trial, its own user attrs otherwise."""
    return lambda t: (fn(confirmed[t.number]) + "*") if t.number in confirmed else fn(t.user_attrs)


def _fmt(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def format_values(values) -> str:
    """One value, or a Pareto trial's values joined by " / " (in target order)."""
    return "-" if not values else " / ".join(f"{v:.4g}" if abs(v) >= 1000 else f"{v:.4f}" for v in values)


def _collapsed(trial: FrozenTrial, confirmed: dict[int, dict]) -> str:
    """Seeds at chance level, of all seeds: a failure to learn that a mean would hide."""
    figures = confirmed.get(trial.number) or trial.user_attrs
    seeds = len(figures.get("seed_values") or [None])
    return f"{len(figures.get('collapsed_seeds') or [])}/{seeds}" + ("*" if trial.number in confirmed else "")


def format_table(trials: list[FrozenTrial], *, confirmed: dict[int, dict] | None = None, gains: dict | None = None) -> str:
    """One row per trial; ``confirmed`` (trial number -> figures from ``tuneflow confirm``) replaces the spread columns.

    ``gains``: trial number -> the study's interval of its gain (:func:`tuneflow.study.verdict.configuration_gains`),
    shown in "gain 95% CI" instead of the trial's own.
    """
    confirmed, gains = confirmed or {}, gains or {}
    spread = any(len(t.user_attrs.get("seed_values") or ()) > 1 for t in trials) or bool(confirmed)
    columns = list(COLUMNS)
    if spread:
        columns[-1:-1] = [(name, _spread(fn, confirmed)) for name, fn in SPREAD_COLUMNS]
    elif gains:
        columns[-1:-1] = [("gain 95% CI", lambda t: "-")]
    if gains:
        index = [name for name, _ in columns].index("gain 95% CI")
        own = columns[index][1]
        columns[index] = ("gain 95% CI", lambda t: "[{:+.3f},{:+.3f}]".format(gains[t.number].low, gains[t.number].high)
                          + ("*" if t.number in confirmed else "") if t.number in gains else own(t))
    if any((confirmed.get(t.number) or t.user_attrs).get("collapsed_seeds") for t in trials):
        columns[-1:-1] = [("collapsed", lambda t: _collapsed(t, confirmed))]
    if confirmed:
        columns[1] = ("value", lambda t: f"{confirmed[t.number]['value']:.4f}*" if t.number in confirmed else format_values(t.values))
    if any("lora_learning_rate" in t.user_attrs.get("params", {}) for t in trials):  # LoRA's own rate, under its own name
        rate = [name for name, _ in columns].index("learning_rate") + 1
        columns.insert(rate, ("lora_learning_rate", lambda t: _fmt(t.user_attrs.get("params", {}).get("lora_learning_rate"), ".2e")))
    method = [name for name, _ in columns].index("method") + 1
    if any("model" in t.params for t in trials):  # the study searched over model candidates
        columns.insert(method, ("model", lambda t: str(t.user_attrs.get("model") or "-")))
    if any(t.user_attrs.get("source") for t in trials):  # the source task each transfer trial used
        columns.insert(method, ("source", lambda t: str(t.user_attrs.get("source") or "-")))
    header = [name for name, _ in columns]
    rows = [[fn(t) for _, fn in columns] for t in trials]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
