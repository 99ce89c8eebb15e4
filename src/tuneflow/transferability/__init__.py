"""How promising is a candidate before training: LogME, LEEP, the ranking of candidates, the study prior.

May import: transfer, fleet, training, models, data, config.
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "scores": ['logme', 'leep'],
        "features": ['extract_features', 'encoder_features', 'head_probabilities'],
        "ranked_study": ['RankedStudy'],
        "candidates": ['CandidatesConfig', 'CandidateScore', 'load_candidates', 'default_candidates'],
        "ranking": ['rank_candidates', 'format_ranking', 'tune_on_source'],
        "prior": ['apply_prior', 'prior_trials', 'RANKING_ATTR', 'PriorWaitTimeout'],
        "source_choice": ['choose_sources', 'source_scores', 'format_source_choice', 'KEPT_SOURCES_ATTR', 'DROPPED_SOURCES_ATTR'],
    },
)
