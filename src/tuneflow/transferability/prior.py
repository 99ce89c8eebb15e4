"""``prior: logme``: rank candidates once per study, keep the scores with it, enqueue the best mapping first."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tuneflow.transferability.candidates import (
    KIND_MAPPINGS,
    CandidateScore,
    default_candidates,
    load_candidates,
)
from tuneflow.transferability.ranking import rank_candidates

if TYPE_CHECKING:
    import optuna

    from tuneflow.config.search_space import SearchSpace
    from tuneflow.study.runner import StudyPlan


RANKING_ATTR = "tuneflow_transferability"  # study user attr holding the last ranking


def prior_trials(ranking: list[CandidateScore], space: "SearchSpace", *, top_k: int = 1) -> list[dict[str, Any]]:
    """Parameter dicts for ``study.enqueue_trial``, from the best-ranked candidates down.

    Only the study's own model can become a trial, and only through a mapping the space can sample
    (a categorical ``mapping`` parameter): source-fine-tuned -> ``sequential``, pretrained -> ``direct``.
    Pooling has no trial parameter, so candidates that differ only in pooling give the same trial.
    Unset parameters are sampled as usual. At most ``top_k`` distinct dicts.
    """
    spec = space.parameters.get("mapping")
    if spec is None or spec.type != "categorical":
        return []  # the mapping is not searched: there is nothing to choose first
    trials: list[dict[str, Any]] = []
    for score in ranking:
        if len(trials) >= top_k:
            break
        mapping = KIND_MAPPINGS[score.candidate.kind]
        params = {"mapping": mapping}
        if score.candidate.study_model and mapping in spec.choices and params not in trials:
            trials.append(params)
    return trials


def record_scores(study: "optuna.Study", ranking: list[CandidateScore]) -> None:
    """Keep the ranking with the study (user attr ``tuneflow_transferability``), best first."""
    study.set_user_attr(
        RANKING_ATTR,
        {"scored_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "scores": [s.as_dict() for s in ranking]},
    )


def store_and_enqueue(study, ranking: list[CandidateScore], space, *, by: str) -> list[dict[str, Any]]:
    record_scores(study, ranking)
    trials = prior_trials(ranking, space)
    for params in trials:
        study.enqueue_trial(params, user_attrs={"enqueued_by": by}, skip_if_exists=True)
    return trials


def apply_prior(plan: "StudyPlan", study, *, progress=None, claim=None) -> list[dict[str, Any]]:
    """``prior: logme``: rank the candidates once per study, record the scores, enqueue the best first.

    A resumed study that already holds scores is left as it is (ranking again would re-enqueue).
    ``claim() -> bool`` (the study layer's claim in storage) says whether this worker is the one to
    rank when several start together; the others go straight to their trials.
    """
    if RANKING_ATTR in study.user_attrs or (claim is not None and not claim()):
        return []
    config = plan.config
    path = str(config.directory / config.prior_candidates) if config.prior_candidates else None
    spec = load_candidates(path) if path else default_candidates(plan)
    ranking = rank_candidates(plan, spec, file=path, progress=progress)
    return store_and_enqueue(study, ranking, config.space, by="prior: logme")
