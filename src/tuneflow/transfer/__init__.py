"""Domain-mapping strategies: what moves from the source task to the target, one small class each.

A strategy registers itself by name (``@register_strategy``) so a search space can say
``mapping: adversarial``. Importing this package registers the built-in ones and imports no torch.
May import: fleet (the claims a baseline is trained under), training, models, data, config.
"""
import lazy_loader

# The built-in strategies register themselves on import (none of them imports torch at module level).
from tuneflow.transfer import adversarial, align, direct, joint, sequential  # noqa: F401, E402

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "base": ['MappingStrategy', 'register_strategy', 'get_strategy', 'strategy_names', 'resolve_params'],
        "context": ['TransferContext'],
        "configuration_run": ['configuration_context', 'run_configuration'],
        "gain": ['transfer_attrs', 'baseline_enabled', 'is_negative_transfer'],
        "losses": ['grad_reverse', 'dann_lambda', 'coral_loss', 'mmd_loss'],
    },
)
