"""The one training loop, prediction, metrics, and where tensors live (device, precision).

May import: models, data, config.
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "runtime": ['Runtime'],
        "loop": ['fit', 'FitStats', 'NonFiniteLoss', 'check_finite', 'TwoTaskStep', 'ExtraLoss', 'pooled_features'],
        "optimizer": ['make_optimizer'],
        "predict": ['predict', 'Reader', 'LOGITS', 'head_reader'],
        "metrics": ['classification_metrics'],
        "faults": ['fail_reason', 'is_cuda_oom', 'release_memory'],
    },
)
