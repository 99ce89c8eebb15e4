"""The one training loop, prediction, metrics, and where tensors live (device, precision).

May import: models, data, config.
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "runtime": ['Runtime'],
        "loop": ['fit', 'FitStats', 'NonFiniteLoss', 'make_optimizer', 'check_finite'],
        "multitask": ['fit_multitask', 'TwoTaskStep', 'pooled_features'],
        "predict": ['predict', 'head_predictions'],
        "metrics": ['classification_metrics'],
        "faults": ['fail_reason', 'is_cuda_oom', 'release_memory'],
    },
)
