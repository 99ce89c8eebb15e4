"""The domain-mapping extension point: how knowledge moves from the source task to the target task.

A strategy is one small class: its own parameters (with defaults), whether it needs a source
task, and ``run(ctx)`` which trains and returns the target model. ``ctx`` (a
:class:`tuneflow.transfer.TransferContext`) gives it models, data and the training loop, and
reports target-validation metrics to Optuna whenever it trains with ``report=True``.
This module imports no torch, so ``tuneflow validate`` can check mapping names and parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from tuneflow.config.errors import ConfigError
from tuneflow.config.registry import Registry, unknown_name_message
from tuneflow.config.trial_params import CORE_PARAMETERS, TrialParams

if TYPE_CHECKING:
    from torch import nn

    from tuneflow.transfer.context import TransferContext


def resolve_params(values: dict[str, Any]) -> TrialParams:
    """Split a flat dict of sampled values into core fields and the chosen mapping's own values."""

    mapping = values.get("mapping", "direct")
    strategy = get_strategy(mapping)
    own = dict(strategy.parameters)
    core = {}
    for name, value in values.items():
        if name in CORE_PARAMETERS:
            core[name] = value
        elif name in own:
            own[name] = value
        # Values of other strategies' parameters cannot appear: the search space makes them conditional.
    strategy.check_params(own)
    return TrialParams(**core, mapping_params=own)


class MappingStrategy(ABC):
    name: ClassVar[str]
    summary: ClassVar[str] = ""
    needs_source: ClassVar[bool] = False
    # The strategy's own search-space parameters and their defaults.
    parameters: ClassVar[dict[str, Any]] = {}
    # Allowed values for parameters that take a fixed set of names.
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}

    @classmethod
    def check_params(cls, values: dict[str, Any]) -> None:
        for name, allowed in cls.choices.items():
            if values.get(name) not in allowed:
                raise ConfigError(unknown_name_message(f"{cls.name} {name}", values.get(name), map(str, allowed)), key=name)

    @abstractmethod
    def run(self, ctx: "TransferContext") -> "nn.Module":
        """Train on whatever tasks the strategy uses; return the model that predicts the target."""


STRATEGIES: Registry[type[MappingStrategy]] = Registry("mapping")


def register_strategy(cls: type[MappingStrategy]) -> type[MappingStrategy]:
    """Class decorator: make ``cls`` selectable as ``mapping: <cls.name>`` in a search space."""
    return STRATEGIES.register(cls.name)(cls)


def get_strategy(name: str) -> type[MappingStrategy]:
    return STRATEGIES.get(name)


def strategy_names() -> list[str]:
    return STRATEGIES.names()
