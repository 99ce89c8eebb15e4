"""The report's "Transferability ranking" section: the LogME / LEEP scores the prior (or `tuneflow rank --record`)
kept with the study, each source's best score, and what ``prior_keep`` dropped and why.

Reads the study user attrs ``tuneflow_transferability`` and ``tuneflow_dropped_sources`` (written by
:mod:`tuneflow.transferability.prior`). The report passes its own table and sentence helpers.
"""

from __future__ import annotations

import html
from typing import Any, Callable

import optuna

from tuneflow.transferability.prior import RANKING_ATTR
from tuneflow.transferability.source_choice import DROPPED_SOURCES_ATTR, best_by_source

DASH = "—"


def _num(value: Any) -> str:
    return DASH if value is None else f"{value:.4f}"


def ranking_section(study: optuna.Study, *, table: Callable[..., str], sentence: Callable[[str], str]) -> str:
    """HTML: the ranking (best LogME first), the sources by their best score, and prior_keep's choice."""
    ranking = study.user_attrs.get(RANKING_ATTR)
    if not ranking or not ranking.get("scores"):
        return sentence("no transferability ranking: set `prior: logme`, or run `tuneflow rank STUDY.yaml --record`.")
    scores = ranking["scores"]
    rows = [[str(i), html.escape(str(s["candidate"])), html.escape(str(s.get("source") or DASH)),
             html.escape(str(s.get("model_label") or s.get("model") or DASH)), html.escape(str(s.get("pooling"))),
             _num(s.get("logme")), _num(s.get("leep"))] for i, s in enumerate(scores, start=1)]
    out = sentence(f"Scored before trials on {scores[0].get('rows', DASH)} target training rows at {ranking.get('scored_at', DASH)}; "
                   "higher is better. The prior enqueued the best (mapping, source, model) it could turn into a trial.")
    out += table(["rank", "candidate", "source", "model", "pooling", "LogME", "LEEP"], rows, left=5)
    best = best_by_source((s.get("source"), s["logme"]) for s in scores)
    choice = study.user_attrs.get(DROPPED_SOURCES_ATTR)
    if len(best) > 1 or choice:
        kept = set(choice["kept"]) if choice else set(best)
        dropped = {d["source"]: d["reason"] for d in (choice or {}).get("dropped", [])}
        source_rows = [[html.escape(name), _num(value), "kept" if name in kept else "dropped",
                        html.escape(dropped.get(name, DASH))] for name, value in best.items()]
        out += "<h3>Sources</h3>"
        if choice and choice.get("not_applied"):
            out += sentence(f"prior_keep: {choice['prior_keep']} dropped nothing: {choice['not_applied']}")
        elif choice:
            out += sentence(f"prior_keep: {choice['prior_keep']}: trials sample only {', '.join(choice['kept'])}.")
        out += table(["source", "best LogME", "trials", "why"], source_rows, left=4)
    return out
