"""Domain-mapping strategies, registered by name (``mapping: sequential`` in a search space)."""

from tuneflow.mapping.base import MappingStrategy, get_strategy, register_strategy, strategy_names
from tuneflow.mapping import adversarial, align, direct, joint, sequential  # noqa: F401  (registers the built-in strategies)

__all__ = ["MappingStrategy", "get_strategy", "register_strategy", "strategy_names"]
