"""After the study: export the best configurations to files, and train one of them on all the data, scored once on test.

May import: study, transferability, transfer, fleet, training, models, data, config.
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "export": ['export_trials', 'write_export', 'load_export', 'FinalConfig'],
        "final_training": ['train_final'],
        "trial_choices": ['trial_model', 'trial_source'],
    },
)
