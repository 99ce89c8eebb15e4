"""What the user wrote: the study file's schema, search spaces, trial parameters, storage URLs.

The bottom layer: it imports no other tuneflow layer and no torch, so ``tuneflow validate`` is fast.
It does not know which mapping strategies exist; whoever loads a study file passes a lookup
(``tuneflow.transfer.get_strategy``).
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "errors": ['ConfigError'],
        "registry": ['Registry', 'unknown_name_message'],
        "schema": ['parse_dataclass', 'field_help', 'read_yaml'],
        "study_config": ['StudyConfig', 'TaskConfig', 'ModelConfig', 'ObjectiveConfig', 'SamplerConfig', 'PrunerConfig', 'BudgetConfig', 'EvaluationConfig', 'CoverageConfig', 'ConfirmConfig', 'StorageOptionsConfig', 'METRIC_NAMES', 'load_study_config'],
        "model_config": ['ModelCandidate', 'model_record'],
        "choice_params": ['CHOICE_PARAMETERS', 'with_choice_parameters', 'restrict_choices'],
        "warm_start_config": ['WarmStartConfig'],
        "search_space": ['SearchSpace', 'ParamSpec', 'StrategyDeclaration', 'StrategyLookup', 'shipped_search_space'],
        "trial_params": ['TrialParams', 'METHODS', 'CORE_PARAMETERS'],
        "objective_terms": ['objective_value', 'term_values', 'weighted_objective'],
        "storage_url": ['redact_url', 'redact_text', 'absolute_storage_url', 'storage_kind', 'sqlite_file', 'is_sqlite'],
    },
)
