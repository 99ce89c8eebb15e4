"""``prior_keep: N``: which sources trials may sample, decided by each source's best LogME, and why the rest went.

A source's score is the best LogME of any candidate fine-tuned on it (any model, any pooling): the
best the ranking saw it do. The N best-scoring sources are kept (in file order, the order of the
trial parameter's choices); each dropped one records its score, its rank and its distance below
the best, so ``tuneflow rank`` and the report can say why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tuneflow.config.errors import ConfigError

if TYPE_CHECKING:
    from tuneflow.transferability.ranked_study import RankedStudy
    from tuneflow.transferability.candidates import Candidate, CandidateScore


KEPT_SOURCES_ATTR = "tuneflow_kept_sources"  # study user attr: list of source names trials may sample
DROPPED_SOURCES_ATTR = "tuneflow_dropped_sources"  # study user attr: what prior_keep dropped, and why


@dataclass(frozen=True)
class SourceChoice:
    keep: int  # prior_keep
    scores: dict[str, float]  # source -> best LogME, best first
    kept: list[str]  # file order
    dropped: list[dict[str, Any]]  # {source, logme, rank, below_best, reason}, best first
    not_applied: str | None = None  # why nothing was dropped although prior_keep asked

    def unapplied(self, why: str, sources: list[str]) -> "SourceChoice":
        return replace(self, kept=list(sources), dropped=[], not_applied=why)

    def as_attr(self) -> dict[str, Any]:
        return {"prior_keep": self.keep, "scores": self.scores, "kept": self.kept, "dropped": self.dropped,
                "not_applied": self.not_applied}


def source_scores(ranking: list["CandidateScore"]) -> dict[str, float]:
    """Source name -> the best LogME of a candidate fine-tuned on it, best first."""
    return best_by_source((score.candidate.source_name, score.logme) for score in ranking)


def best_by_source(pairs) -> dict[str, float]:
    """(source name or None, LogME) pairs -> each source's best LogME, best first (pretrained candidates: no name)."""
    best: dict[str, float] = {}
    for name, logme in pairs:
        if name and (name not in best or logme > best[name]):
            best[name] = logme
    return dict(sorted(best.items(), key=lambda item: -item[1]))


def choose_sources(ranking: list["CandidateScore"], sources: list[str], keep: int) -> SourceChoice:
    """Keep the ``keep`` best-scoring of ``sources``; the rest dropped, each with its reason."""
    scores = source_scores(ranking)
    ordered = [name for name in scores if name in sources]
    top = set(ordered[:keep])
    best_name = ordered[0] if ordered else None
    dropped = []
    for rank, name in enumerate(ordered, start=1):
        if name in top:
            continue
        below = scores[best_name] - scores[name]
        dropped.append({
            "source": name, "logme": scores[name], "rank": rank, "below_best": below,
            "reason": f"LogME {scores[name]:.4f} ranks {rank} of {len(ordered)} sources, {below:.4f} below the best "
                      f"({best_name}, {scores[best_name]:.4f}); prior_keep: {keep} keeps the top {keep}",
        })
    # Sources without a score are not ranked, so none is dropped for lack of one (resolve checks that first).
    kept = [name for name in sources if name in top or name not in scores]
    return SourceChoice(keep=keep, scores=scores, kept=kept, dropped=dropped)


def check_every_source_scored(candidates: list["Candidate"], plan: "RankedStudy", *, file: str | None) -> None:
    """``prior_keep`` compares sources by score: a candidates file must fine-tune on each of them."""
    tuned = {c.source_name for c in candidates if c.source and c.study_model}
    missing = [task.name for task in plan.config.source_tasks if task.name not in tuned]
    if missing:
        raise ConfigError(
            f"prior_keep compares sources by LogME, but no candidate of the study's model is fine-tuned on {', '.join(missing)}"
            " (add `source: true`)", file=file or str(plan.config.path), key="candidates" if file else "prior_keep",
        )


def format_source_choice(attr: dict[str, Any]) -> list[str]:
    """Lines saying which sources ``prior_keep`` kept and why each other one was dropped."""
    if attr.get("not_applied"):
        return [f"prior_keep: {attr['prior_keep']} dropped no source: {attr['not_applied']}"]
    lines = [f"prior_keep: {attr['prior_keep']} keeps {', '.join(attr['kept'])}"
             + ("" if attr["dropped"] else " (nothing dropped)")]
    lines += [f"  dropped {d['source']}: {d['reason']}" for d in attr["dropped"]]
    return lines
