"""``warm_start:`` entries of a study file: earlier studies whose best configurations are tried first.

Only the file's shape is checked here; :mod:`tuneflow.study.warm_start` opens the earlier storages
(in ``validate`` and before a run touches its own storage) and enqueues the configurations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tuneflow.config.errors import ConfigError


@dataclass(frozen=True)
class WarmStartConfig:
    """One earlier study to warm-start from."""

    study: str = field(metadata={"help": "name of the earlier study in its storage"})
    storage: str | None = field(default=None, metadata={
        "help": "its storage URL (relative sqlite / journal paths: beside this study file); default: this study's storage"})
    top_k: int = field(default=1, metadata={"help": "how many of its best complete trials to enqueue first"})

    def __post_init__(self):
        if not self.study.strip():
            raise ConfigError("must name the earlier study", key="study")
        if self.storage is not None and not self.storage.strip():
            raise ConfigError("must be a storage URL (or leave it out for this study's storage)", key="storage")
        if isinstance(self.top_k, bool) or not 1 <= self.top_k <= 1000:
            raise ConfigError("must be an integer from 1 to 1000", key="top_k")
