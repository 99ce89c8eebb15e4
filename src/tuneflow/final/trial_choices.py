"""A trial's own source task and model, read from the study record it was measured under (for ``export``).

A study with several sources or model candidates stores all of them (``sources``, ``model.candidates``);
each trial's user attrs ``source`` and ``model`` name the ones it used. Older trials (and one-source,
one-model studies) have only the record's ``source`` and ``model``, which are then the answer.
"""

from __future__ import annotations

from typing import Any

from tuneflow.config.model_config import ModelConfig, model_record
from tuneflow.config.schema import parse_dataclass


def trial_source(record: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The resolved source task the trial trained on (the record's first source when it names none)."""
    name = attrs.get("source")
    for task in record.get("sources") or ():
        if task.get("name") == name:
            return task
    return record.get("source")


def trial_model(record: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    """The plain one-model config of the trial's model candidate (the record's model when it has no candidates)."""
    model = record["model"]
    if not model.get("candidates"):
        return model
    choices = parse_dataclass(ModelConfig, model, "model").choices
    label = attrs.get("model") if attrs.get("model") in choices else next(iter(choices))
    chosen = model_record(choices[label])
    chosen["label"] = label  # tables and metrics.json name the candidate as the study did
    return chosen
