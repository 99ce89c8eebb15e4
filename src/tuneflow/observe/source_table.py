"""The report's "Transfer by source" section: a source x mapping table (x model, when the study searched several).

Each cell: how many trials used that source with that mapping, their mean transfer gain (score) with
a 95 % interval, and the best configuration found there. The interval is a t-interval over the cell's
complete trials when it has two or more (it spreads over their other hyperparameters too); with one
trial it is that trial's own interval (over seeds, or a bootstrap over validation rows). Target-only
rows are the reference (their gain is 0 by definition, not a measurement), and a source no trial
finished says "not tried" and why. Under it, the verdict per source (:mod:`tuneflow.study.verdict`).
"""

from __future__ import annotations

import html
import statistics
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuneflow.observe.verdict_report import source_verdict_table
from tuneflow.study.verdict import Verdict

DASH = "—"
TARGET_ONLY = "— (target only)"
SHOWN_PARAMS = ("method", "learning_rate", "batch_size", "epochs")


def source_section(study: optuna.Study, *, table: Callable[..., str], sentence: Callable[[str], str],
                   verdict: Verdict | None = None) -> str:
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    if not trials:
        return sentence("no finished trial yet")
    models = {t.user_attrs.get("model") for t in trials}
    by_model = len(models - {None}) > 1
    groups: dict[tuple, list[FrozenTrial]] = {}
    for t in trials:
        a = t.user_attrs
        key = (a.get("source") or TARGET_ONLY, (a.get("params") or {}).get("mapping", "?")) + ((a.get("model") or "?",) if by_model else ())
        groups.setdefault(key, []).append(t)
    maximize = len(study.directions) == 1 and study.direction == optuna.study.StudyDirection.MAXIMIZE
    rows = [[html.escape(str(k)) for k in key] + _cells(members, maximize, reference=key[0] == TARGET_ONLY)
            for key, members in sorted(groups.items())]
    seen = {key[0] for key in groups}
    for v in (verdict.per_source if verdict else ()):  # a source no trial ever ran with
        if v.outcome == "not_tried" and v.source not in seen:
            rows.append([html.escape(v.source), DASH, *([DASH] if by_model else []), "0", "0",
                         f"not tried: {html.escape(v.reason or '')}", DASH, DASH, DASH])
    header = ["source", "mapping", *(["model"] if by_model else []), "trials", "complete", "mean gain (score)", "gain 95% CI",
              "best value", "best configuration"]
    intro = sentence("Transfer gain of the weighted score against the target-only baseline (the same for every source), "
                     "by source and mapping strategy; the interval spans the cell's complete trials.")
    out = intro + table(header, rows, left=len(header) - 7)
    if verdict is not None and verdict.per_source:
        out += "<h3>Verdict by source</h3>" + sentence(
            "Each source's best configuration against the best target-only one, seed noise pooled over the study.") + \
            source_verdict_table(verdict, table=table)
    return out


def _cells(members: list[FrozenTrial], maximize: bool, *, reference: bool = False) -> list[str]:
    done = [t for t in members if t.state == TrialState.COMPLETE and t.values]
    gains = [t.user_attrs["transfer_gain_score"] for t in done if t.user_attrs.get("transfer_gain_score") is not None]
    if reference:  # target only: the baseline itself, its "gain" is 0 by definition
        cells = [str(len(members)), str(len(done)), "reference", "reference (target only)"]
    elif not done:
        reasons = "pruned or failed" if members else "no trial"
        cells = [str(len(members)), "0", f"not tried: every trial {reasons}", DASH]
    else:
        cells = [str(len(members)), str(len(done)), DASH if not gains else f"{statistics.fmean(gains):+.4f}", _interval(done, gains)]
    if not done:
        return cells + [DASH, DASH]
    best = (max if maximize else min)(done, key=lambda t: t.values[0])
    return cells + [f"{best.values[0]:.4f}", _configuration(best)]


def _interval(done: list[FrozenTrial], gains: list[float]) -> str:
    if len(gains) >= 2:
        from tuneflow.transfer.gain_stats import t_interval

        interval = t_interval(gains)
        return f"[{interval.low:+.4f}, {interval.high:+.4f}] (t, {len(gains)} trials)"
    ci = done[0].user_attrs.get("transfer_gain_ci") if gains else None
    return DASH if not ci else f"[{ci[0]:+.4f}, {ci[1]:+.4f}] ({done[0].user_attrs.get('transfer_gain_interval', '?')})"


def _configuration(trial: FrozenTrial) -> str:
    params: dict[str, Any] = trial.user_attrs.get("params") or {}
    shown = ", ".join(f"{k} {params[k]:.3g}" if isinstance(params.get(k), float) else f"{k} {params[k]}"
                      for k in SHOWN_PARAMS if k in params)
    return html.escape(f"trial {trial.number}: {shown}")


def model_line(record: dict[str, Any]) -> str:
    """The summary's model: its name, or the candidates' labels when the study searched several."""
    model = record.get("model") or {}
    candidates = model.get("candidates") or []
    if candidates:
        return "candidates: " + ", ".join(c.get("label") or str(c.get("name")) for c in candidates)
    return model.get("name", DASH)


def source_line(record: dict[str, Any]) -> str:
    """The summary's source(s): one name, or every source the study searched over."""
    sources = record.get("sources") or ([record["source"]] if record.get("source") else [])
    return ", ".join(s.get("name", "?") for s in sources) or DASH
