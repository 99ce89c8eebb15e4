"""Optuna: samplers and pruners (never repeating a configuration), arms and coverage, the objective,
pruning records and compute, storage, the trial budget, workers, claims, the study contract, the gRPC
proxy, confirmation, export, final training.

Whoever watches a study (progress, dashboard note, images) passes ``StudyHooks``; this layer never
imports ``tuneflow.observe``. May import: transferability, transfer, training, models, data, config.
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
        "storage": ['open_storage', 'check_storage_url'],
        "study_record": ['create_or_load', 'load_existing', 'CONFIG_ATTR'],
        "budget": ['TrialCount', 'AdmissionLock', 'LocalGate', 'gate_for'],
        "claims": ['OncePerStudy'],
        "contract": ['contract_changes', 'record_for'],
        "proxy": ['serve'],
        "workers": ['TrialLoop', 'worker_id'],
        "launch": ['launch', 'plan_slots'],
        "monitor": ['status_text', 'cleanup'],
        "results": ['ranked_trials', 'is_pareto', 'state_counts', 'configuration_key', 'pooled'],
        "verdict": ['study_verdict', 'Verdict', 'configuration_gains'],
        "export": ['export_trials', 'write_export', 'load_export', 'FinalConfig'],
        "final_training": ['train_final'],
        "warm_start": ['check_warm_starts', 'apply_warm_starts', 'fit_to_space', 'best_first'],
        "arms": ['Arm', 'space_arms', 'trial_arm', 'arm_label'],
        "coverage": ['apply_coverage', 'plan_coverage'],
        "distinct": ['DistinctSampler', 'all_configs', 'untried_count'],
        "compute": ['study_compute'],
        "confirm": ['confirm', 'confirm_in_study', 'chosen_trials'],
    },
)
