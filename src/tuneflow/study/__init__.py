"""The search: a study file planned and checked, arms covered, trials sampled (never repeated) and measured, confirmed, and its verdict.

Samplers and pruners, arms and coverage, the objective and its trial inputs, pruning records and
compute, warm starts, the study's record (contract, results) and its verdict. Whoever watches a study
(progress, dashboard note, images) passes ``StudyHooks``; this layer never imports ``tuneflow.observe``.
The workers, storage and budget it runs on are :mod:`tuneflow.fleet`; what comes after the study is
:mod:`tuneflow.final`. May import: transferability, transfer, fleet, training, models, data, config.
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "runner": ['StudyPlan', 'load_config', 'plan_study', 'run_study'],
        "hooks": ['StudyHooks'],
        "objective": ['TransferObjective'],
        "samplers": ['make_sampler', 'make_pruner', 'trial_samplers'],
        "study_record": ['create_or_load', 'load_existing', 'CONFIG_ATTR'],
        "contract": ['contract_changes', 'record_for'],
        "results": ['ranked_trials', 'is_pareto', 'state_counts', 'configuration_key', 'pooled'],
        "verdict": ['study_verdict', 'Verdict', 'configuration_gains'],
        "warm_start": ['check_warm_starts', 'apply_warm_starts', 'fit_to_space', 'best_first'],
        "arms": ['Arm', 'space_arms', 'trial_arm', 'arm_label'],
        "coverage": ['apply_coverage', 'plan_coverage'],
        "distinct": ['DistinctSampler', 'all_configs', 'untried_count'],
        "compute": ['study_compute'],
        "confirm": ['confirm', 'confirm_in_study', 'chosen_trials'],
    },
)
