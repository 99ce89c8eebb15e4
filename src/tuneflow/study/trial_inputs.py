"""What a trial trains on, per model candidate and source: tokenizer and tokenised tasks, built lazily once per process.

A study with several sources or model candidates tokenises the target once per candidate and each
source once per candidate, the first time a trial picks that pair (a source no trial picks is never
tokenised). Each goes through the on-disk token cache, keyed by tokenizer and content, so other
workers and restarts read the ids back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuneflow.config.model_config import ModelConfig
from tuneflow.data.tasks import TaskData


@dataclass(frozen=True)
class ModelInputs:
    """One candidate: its config, resolved path, tokenizer and tokenised target."""

    label: str
    config: ModelConfig
    path: str
    tokenizer: Any
    target: Any  # PreparedTask


class TrialInputs:
    def __init__(self, *, target: TaskData, sources: dict[str, TaskData], models: dict[str, str], model_configs: dict[str, ModelConfig]):
        self.target = target
        self.sources = sources  # name -> loaded task, file order
        self.paths = models  # label -> resolved path, file order
        self.model_configs = model_configs
        self._models: dict[str, ModelInputs] = {}
        self._sources: dict[tuple[str, str], Any] = {}

    @property
    def first_model(self) -> str:
        return next(iter(self.paths))

    @property
    def first_source(self) -> str | None:
        return next(iter(self.sources), None)

    def model(self, label: str) -> ModelInputs:
        if label not in self._models:
            from tuneflow.data.prepared_task import PreparedTask
            from tuneflow.models.loading import load_tokenizer

            config = self.model_configs[label]
            tokenizer = load_tokenizer(self.paths[label], config.revision)
            target = PreparedTask.build(self.target, tokenizer, config.max_length)
            self._models[label] = ModelInputs(label, config, self.paths[label], tokenizer, target)
        return self._models[label]

    def source(self, label: str, name: str | None):
        """The source ``name`` tokenised for candidate ``label`` (None when the trial uses no source)."""
        if name is None:
            return None
        if (label, name) not in self._sources:
            from tuneflow.data.prepared_task import PreparedTask

            model = self.model(label)
            self._sources[(label, name)] = PreparedTask.build(self.sources[name], model.tokenizer, model.config.max_length)
        return self._sources[(label, name)]

    def tokenised(self) -> list[tuple[str, str]]:
        """(candidate, task) pairs tokenised so far in this process: the target as 'target'."""
        return [(label, "target") for label in self._models] + list(self._sources)
