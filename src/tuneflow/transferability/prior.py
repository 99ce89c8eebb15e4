"""``prior: logme``: rank candidates once per study, keep the scores with it, enqueue the best (source, mapping) first.

With ``prior_keep: N`` the ranking also decides which sources trials may sample: the N whose best
source-fine-tuned candidate scores highest are kept (study user attr ``tuneflow_kept_sources``,
read by the study layer before each trial samples ``source``), the others dropped with their
reason (``tuneflow_dropped_sources``). Both are written before the ranking itself, the attr every
other worker waits for, so no trial ever samples from a source list that is about to shrink.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tuneflow.transferability.candidates import (
    KIND_MAPPINGS,
    CandidateScore,
    default_candidates,
    load_candidates,
    source_names,
)
from tuneflow.transferability.ranking import rank_candidates
from tuneflow.transferability.source_choice import KEPT_SOURCES_ATTR, DROPPED_SOURCES_ATTR, SourceChoice, choose_sources

if TYPE_CHECKING:
    import optuna

    from tuneflow.config.search_space import SearchSpace
    from tuneflow.transferability.ranked_study import RankedStudy


RANKING_ATTR = "tuneflow_transferability"  # study user attr holding the last ranking


PRIOR_WAIT_TIMEOUT = 3 * 3600.0  # seconds a worker waits for another worker's ranking (with prior_keep)


class PriorWaitTimeout(RuntimeError):
    """Another worker claimed the ranking and it did not appear in time."""


def prior_trials(
    ranking: list[CandidateScore], space: "SearchSpace", *, top_k: int = 1, kept: list[str] | None = None
) -> list[dict[str, Any]]:
    """Parameter dicts for ``study.enqueue_trial``, from the best-ranked candidates down.

    Only the study's own models can become trials, through parameters the space samples: the
    ``mapping`` (source-fine-tuned -> ``sequential``, pretrained -> ``direct``), the ``source`` a
    candidate was tuned on and the ``model`` label, each where the space searches it (a fixed value
    must agree instead). Pooling has no trial parameter, so candidates that differ only in pooling
    give the same trial. Sources not in ``kept`` are skipped. The parameters the ranking says nothing
    about take the space's centre (:mod:`tuneflow.config.space_points`: the middle of each range, the
    documented default among choices), not whatever the sampler would draw. At most ``top_k`` distinct dicts.
    """
    from tuneflow.config.space_points import centre_params
    from tuneflow.transfer.base import get_strategy

    trials: list[dict[str, Any]] = []
    for score in ranking:
        if len(trials) >= top_k:
            break
        candidate = score.candidate
        if not candidate.study_model or (candidate.source and kept is not None and candidate.source_name not in kept):
            continue
        params = _trial_params(space, KIND_MAPPINGS[candidate.kind], candidate.source_name, candidate.model_label)
        if params:
            params = centre_params(space, chosen=params, strategies=get_strategy)
        if params and params not in trials:
            trials.append(params)
    return trials


def _trial_params(space: "SearchSpace", mapping: str, source: str | None, model: str) -> dict[str, Any] | None:
    """The searched parameters that reproduce (mapping, source, model); None where the space cannot."""
    from tuneflow.transfer.base import get_strategy

    params: dict[str, Any] = {}
    mapping_spec = space.parameters.get("mapping")
    if mapping_spec is not None and mapping_spec.type == "categorical":
        if mapping not in mapping_spec.choices:
            return None
        params["mapping"] = mapping
    else:  # the mapping is fixed: a candidate speaks for it only if both use a source, or neither does
        fixed = mapping_spec.value if mapping_spec is not None else "direct"
        if get_strategy(fixed).needs_source != (source is not None):
            return None
    for name, value in (("source", source), ("model", model)):
        spec = space.parameters.get(name)
        if value is None or spec is None:
            continue
        if spec.type == "categorical":
            if value not in spec.choices:
                return None
            params[name] = value
        elif spec.value != value:
            return None
    return params or None  # nothing searched: nothing to choose first


def record_scores(study: "optuna.Study", ranking: list[CandidateScore]) -> None:
    """Keep the ranking with the study (user attr ``tuneflow_transferability``), best first."""
    study.set_user_attr(
        RANKING_ATTR,
        {"scored_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "scores": [s.as_dict() for s in ranking]},
    )


def store_and_enqueue(study, ranking: list[CandidateScore], space, *, by: str, plan: "RankedStudy | None" = None) -> list[dict[str, Any]]:
    """Sources kept / dropped (``prior_keep``), then the enqueued trials, then the scores (what other workers wait for)."""
    choice = _record_choice(study, ranking, plan) if plan is not None else None
    kept = study.user_attrs.get(KEPT_SOURCES_ATTR)
    trials = prior_trials(ranking, space, kept=kept)
    for params in trials:
        study.enqueue_trial(params, user_attrs={"enqueued_by": by, "enqueued_as": "prior"}, skip_if_exists=True)
    record_scores(study, ranking)
    if choice is not None and choice.not_applied:
        study.set_user_attr(DROPPED_SOURCES_ATTR, choice.as_attr())  # says why nothing was dropped
    return trials


def _record_choice(study, ranking: list[CandidateScore], plan: "RankedStudy") -> SourceChoice | None:
    """With ``prior_keep``: write which sources trials may sample, unless trials sampled already (choices must not change)."""
    keep = plan.config.prior_keep
    if keep is None or KEPT_SOURCES_ATTR in study.user_attrs:
        return None
    sources = source_names(plan)
    choice = choose_sources(ranking, sources, keep)
    from optuna.trial import TrialState

    if any(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False)):
        return choice.unapplied("trials already sampled a source: their choices cannot change mid-study", sources)
    study.set_user_attr(DROPPED_SOURCES_ATTR, choice.as_attr())
    study.set_user_attr(KEPT_SOURCES_ATTR, choice.kept)  # last of the two: its presence means both are there
    return choice


def apply_prior(
    plan: "RankedStudy", study, *, progress=None, claim=None, timeout: float = PRIOR_WAIT_TIMEOUT, poll: float = 2.0
) -> list[dict[str, Any]]:
    """``prior: logme``: rank the candidates once per study, record the scores, enqueue the best first.

    A resumed study that already holds scores is left as it is (ranking again would re-enqueue).
    ``claim() -> bool`` (the study layer's claim in storage) says whether this worker is the one to
    rank when several start together. The others go straight to their trials, except with
    ``prior_keep`` (the ranking decides which sources trials may sample) or coverage (its trials are
    ordered by the ranking, and must be queued before anyone samples): then they wait for it
    (retrying the claim, which lapses if the ranker died) up to ``timeout`` seconds.
    """
    if RANKING_ATTR in study.user_attrs:
        return []
    config = plan.config
    deadline = time.monotonic() + timeout
    wait = config.prior_keep is not None or (config.coverage.enabled and config.sampler.name != "grid")  # grid: no coverage
    while claim is not None and not claim():
        if not wait or RANKING_ATTR in study.user_attrs:
            return []
        if time.monotonic() > deadline:
            raise PriorWaitTimeout(
                f"waited {timeout:.0f} s for another worker's LogME ranking (it decides the sources trials sample with prior_keep, "
                "and the order coverage tries the arms in); "
                "it never appeared: start this worker again once the ranker is done or gone"
            )
        time.sleep(poll)
    path = str(config.directory / config.prior_candidates) if config.prior_candidates else None
    spec = load_candidates(path) if path else default_candidates(plan)
    if config.prior_keep is not None:
        from tuneflow.transferability.candidates import resolve_candidates
        from tuneflow.transferability.source_choice import check_every_source_scored

        # Before the (slow) ranking: every source needs a score for prior_keep to compare them.
        check_every_source_scored(resolve_candidates(plan, spec, file=path), plan, file=path)
    ranking = rank_candidates(plan, spec, file=path, progress=progress)
    return store_and_enqueue(study, ranking, config.space, by="prior: logme", plan=plan)
