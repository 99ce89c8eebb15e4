"""The verdict where people read it: lines for the terminal, the report's first section, and its confirmation.

Every rendering prints the same :class:`~tuneflow.study.verdict.Verdict` sentences, so `tuneflow run`,
`tuneflow best`, the report and ``tuneflow.verdict`` cannot disagree.
"""

from __future__ import annotations

import html
from typing import Callable

import optuna

from tuneflow.study.results import CONFIRMATION_ATTR
from tuneflow.study.verdict import Side, Verdict

DASH = "—"

GAIN_FOOTER = (
    "gain: the configuration's weighted metric score minus its target-only baseline's (mapping direct, every other "
    "setting the same; trained with the trial's own seeds when paired); 'base' marks a target-only trial, which is its "
    "own baseline. gain 95% CI: over seeds (the study's seed noise pooled over its configurations) and validation rows, "
    "cut to [-1, +1]."
)


def verdict_lines(verdict: Verdict) -> list[str]:
    """The verdict for the terminal: the sentence, the recommendation, notes, and each source when there are several."""
    lines = [f"verdict: {verdict.summary}", f"  {verdict.recommendation}"]
    lines += [f"  note: {note}" for note in verdict.notes]
    if len(verdict.per_source) > 1:
        lines += ["  by source:"] + [f"    {v.summary}" for v in verdict.per_source]
    return lines


def _e(value) -> str:
    return html.escape(str(value))


def _side_row(role: str, side: Side | None) -> list[str]:
    if side is None:
        return [_e(role), DASH, DASH, DASH, DASH, DASH]
    return [_e(role), _e(side.label), f"{side.mean:.4f}", str(side.seeds), str(side.collapsed) if side.collapsed else "0",
            "yes" if side.confirmed else "no"]


def _gain_cells(verdict: Verdict) -> list[str]:
    c = verdict.comparison
    if c is None:
        return [DASH, DASH, DASH]
    clipped = " (clipped)" if c.clipped else ""
    return [f"{c.mean:+.4f}", f"[{c.low:+.4f}, {c.high:+.4f}]{clipped}", f"{c.p:.3f}"]


OUTCOME_WORDS = {"helped": "transfer helped", "hurt": "transfer hurt", "unresolved": "no difference resolved",
                 "not_tried": "not tried", "no_reference": "no target-only reference"}


def verdict_section(verdict: Verdict, *, table: Callable[..., str], sentence: Callable[[str], str]) -> str:
    """The report's first section: the verdict's words, the two configurations it compared, and each source."""
    out = f"<p><b>{_e(verdict.summary)}</b></p>" + sentence(verdict.recommendation)
    out += "".join(sentence("Note: " + note) for note in verdict.notes)
    if verdict.transfer or verdict.target_only:
        rows = [_side_row("transfer", verdict.transfer), _side_row("target only", verdict.target_only)]
        out += table(["", "configuration", "mean score", "seeds", "collapsed seeds", "confirmed"], rows, left=2)
    if len(verdict.per_source) > 1:
        out += sentence("By source (the table under Transfer by source has the numbers):")
        out += "<ul>" + "".join(f"<li>{_e(v.summary)}</li>" for v in verdict.per_source) + "</ul>"
    return out


def source_verdict_table(verdict: Verdict, *, table: Callable[..., str]) -> str:
    """Each source's best configuration against the best target-only one, or why it was not tried."""
    rows = [[_e(v.source), _e(OUTCOME_WORDS[v.outcome]), _e(v.transfer.label if v.transfer else (v.reason or DASH)),
             *_gain_cells(v)] for v in verdict.per_source]
    return table(["source", "verdict", "best configuration (or why not tried)", "gain", "gain 95% CI", "p"], rows, left=3)


def confirmation_section(study: optuna.Study, *, table: Callable[..., str], sentence: Callable[[str], str]) -> str:
    """``tuneflow confirm``'s retraining of the top trials with fresh seeds, or how to get it."""
    record = study.user_attrs.get(CONFIRMATION_ATTR)
    if not record:
        return sentence("not confirmed yet: `tuneflow confirm STUDY.yaml` retrains the top trials with fresh seeds")
    rows = []
    num = lambda value, spec=".4f": DASH if value is None else format(value, spec)
    for rank, r in enumerate(record["results"], start=1):
        ci = r.get("transfer_gain_ci")
        rows.append([str(rank), str(r["trial"]), num(r.get("study_value")), num(r.get("value")), num(r.get("value_sd")),
                     num(r.get("transfer_gain_score"), "+.4f"), DASH if not ci else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]",
                     num(r.get("transfer_gain_p"), ".3f"), _e(r.get("negative_transfer_evidence", DASH))])
    p = record.get("p_first_beats_second")
    verdict = ("The study's ranking holds" if record.get("ranking_holds") else "The ranking changed under fresh seeds") + (
        "" if p is None else f"; P(#1 beats #2) = {p:.2f}")
    return (sentence(f"The top trials retrained with {len(record['seeds'])} fresh seeds {record['seeds']}, each with a "
                     "target-only baseline on the same seeds; ordered by the confirmed mean.")
            + table(["rank", "trial", "study value", "confirmed mean", "sd", "gain", "gain 95% CI", "p", "negative transfer"], rows)
            + sentence(verdict))
