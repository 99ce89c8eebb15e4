"""The report's "Warm starts" section: which trials came from earlier studies, and how they did here.

Reads the study user attrs ``tuneflow_warm_start:*`` and each trial's ``warm_start_of`` (written by
:mod:`tuneflow.study.warm_start`). A trial re-queued after its worker died (``retry_of``) counts for
the warm start it retries. The report passes its own table and sentence helpers, so both look alike.
"""

from __future__ import annotations

import html
from typing import Any, Callable

import optuna

from tuneflow.config.storage_url import redact_text
from tuneflow.study.warm_start import TRIAL_ATTR, warm_records

DASH = "—"


def warm_started_trials(study: optuna.Study) -> dict[int, dict[str, Any]]:
    """This study's trial number -> the earlier trial it was warm-started from (retries included)."""
    origins: dict[int, dict[str, Any]] = {}
    for trial in study.get_trials(deepcopy=False):
        origin = trial.user_attrs.get(TRIAL_ATTR)
        if origin is None and trial.user_attrs.get("retry_of") in origins:
            origin = origins[trial.user_attrs["retry_of"]]
        if origin is not None:
            origins[trial.number] = origin
    return origins


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value)
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(DASH if value is None else value))


def warm_start_section(study: optuna.Study, *, table: Callable[..., str], sentence: Callable[[str], str]) -> str:
    """HTML: the warm-started trials (earlier value, state and value here, clipped parameters), then what was skipped."""
    records = warm_records(study.user_attrs)
    if not records:
        return sentence("no warm start: add `warm_start: [{study: NAME, storage: URL, top_k: K}]` to the study file.")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    rows = []
    for number, origin in sorted(warm_started_trials(study).items()):
        trial = trials[number]
        clipped = ", ".join(f"{c['param']} {c['from']!r} → {c['to']!r}" for c in origin.get("clipped", []))
        rows.append([str(number), html.escape(f"{origin['study']} #{origin['trial']}"), html.escape(redact_text(str(origin["storage"]))),
                     _value(origin.get("value")), trial.state.name.lower(), _value(trial.values if trial.values else None),
                     html.escape(clipped) or DASH])
    out = sentence("Configurations enqueued from earlier studies before sampling (their best complete trials, fitted to "
                   "this space), and how they did here.")
    out += table(["trial", "from", "storage", "earlier value", "state", "value here", "clipped"], rows, left=3) if rows else ""
    skipped = [s for r in records for s in r.get("skipped", [])]
    if skipped:
        out += "<h3>Skipped</h3>" + table(
            ["from", "earlier value", "reason"],
            [[html.escape(f"{s.get('study')} #{DASH if s.get('trial') is None else s['trial']}"), _value(s.get("value")),
              html.escape(redact_text(str(s.get("reason"))))] for s in skipped], left=3)
    dropped = {(study_name, name, why) for r in records for study_name, params in r.get("dropped", {}).items() for name, why in params.items()}
    if dropped:
        out += sentence("Dropped parameters (sampled as usual): " + "; ".join(f"{n} of {s} ({w})" for s, n, w in sorted(dropped)))
    return out
