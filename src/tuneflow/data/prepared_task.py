"""A task's splits tokenised once per (tokenizer, max length), through the on-disk cache, shared by every trial."""

from __future__ import annotations

from dataclasses import dataclass

from tuneflow.data.batching import EncodedSplit
from tuneflow.data.tasks import TaskData
from tuneflow.data.token_cache import cached_encode


@dataclass(frozen=True)
class PreparedTask:
    """A task's data, tokenised once per (tokenizer, max length) and shared by every trial."""

    data: TaskData
    train: EncodedSplit
    validation: EncodedSplit

    @property
    def num_labels(self) -> int:
        return self.data.num_labels

    @classmethod
    def build(cls, data: TaskData, tokenizer, max_length: int) -> "PreparedTask":
        """Tokenised through the on-disk cache: other workers and restarts read the ids back."""

        def tokenise(split, name):
            return cached_encode(tokenizer, split, max_length, task_name=data.name, split_name=name)

        return cls(data=data, train=tokenise(data.train, "train"), validation=tokenise(data.validation, "validation"))
