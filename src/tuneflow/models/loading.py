"""Load tokenizers and pretrained classifiers; the encoder's weights are read once per process and copied per trial."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tuneflow.config.study_config import ModelConfig
from tuneflow.models.packaged import packaged_model_dir

PACKAGE_PREFIX = "package:"


def resolve_model_path(model: ModelConfig, base_dir: Path | None = None) -> str:
    """``package:NAME`` -> its folder; an existing local directory -> absolute path; else a hub id."""
    if model.name.startswith(PACKAGE_PREFIX):
        return str(packaged_model_dir(model.name[len(PACKAGE_PREFIX):]))
    for candidate in (Path(model.name), (base_dir or Path.cwd()) / model.name):
        if candidate.is_dir():
            return str(candidate.resolve())
    return model.name


@dataclass
class _Pretrained:
    config: object
    encoder_state: dict[str, torch.Tensor]  # base-model weights only; heads are per task


_PRETRAINED: dict[tuple[str, str | None], _Pretrained] = {}


def load_tokenizer(path: str, revision: str | None = None):
    return AutoTokenizer.from_pretrained(path, revision=revision)


def new_classifier(path: str, num_labels: int, revision: str | None = None) -> nn.Module:
    """A fresh classifier with pretrained encoder weights and a randomly initialised head."""
    key = (path, revision)
    if key not in _PRETRAINED:
        # from_pretrained draws from the RNG; restore it so the head below depends on the seed alone.
        rng_state = torch.random.get_rng_state()
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels, revision=revision)
        torch.random.set_rng_state(rng_state)
        prefix = model.base_model_prefix + "."
        state = {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(prefix)}
        _PRETRAINED[key] = _Pretrained(config=model.config, encoder_state=state)
        del model
    # Always built the same way, so the head's initialisation depends on the seed alone
    # (not on whether this was the process's first model).
    cached = _PRETRAINED[key]
    config = copy.deepcopy(cached.config)  # read from disk once, with the pretrained weights
    config.num_labels = num_labels  # also resets id2label / label2id to this many generic labels
    model = AutoModelForSequenceClassification.from_config(config)
    model.load_state_dict(cached.encoder_state, strict=False)
    return model
