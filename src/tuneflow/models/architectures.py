"""What tuneflow needs to know of a model family, answered from the model itself, keyed by ``config.model_type``.

PEFT and transformers are asked first: PEFT's per-architecture LoRA defaults, the model's
``_no_split_modules`` (its transformer block class), ``get_input_embeddings()``, and the pooling that
the family's own ``*ForSequenceClassification`` applies (causal models read the last non-padding
token). :data:`ARCHITECTURES` holds only what those do not say; a new family is one entry there.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

Pooling = Literal["first", "last"]


@dataclass(frozen=True)
class Architecture:
    """One family's answers; ``None`` means "ask the model" (see the module docstring)."""

    pooling: Pooling = "first"  # the token the head reads: [CLS] (encoders) or the last non-padding one (causal)
    layers: str | None = None  # dotted path from the base model to the ModuleList of blocks
    embeddings: tuple[str, ...] | None = None  # dotted paths from the base model, frozen by freeze_layers
    lora_targets: tuple[str, ...] | None = None  # when PEFT has no default for the family


# Encoders read position 0 (their heads pool [CLS]: BERT's pooler, DeBERTa's ContextPooler, DistilBERT's
# pre_classifier all take hidden[:, 0]); decoders read the last real token, as their heads do.
_BERT_LIKE = Architecture(layers="encoder.layer", embeddings=("embeddings",))
_DECODER = Architecture(pooling="last", layers="layers", embeddings=("embed_tokens",))
ARCHITECTURES: dict[str, Architecture] = {
    "bert": _BERT_LIKE,
    "roberta": _BERT_LIKE,
    "xlm-roberta": _BERT_LIKE,
    "electra": _BERT_LIKE,
    "deberta": _BERT_LIKE,
    "deberta-v2": _BERT_LIKE,
    "distilbert": Architecture(layers="transformer.layer", embeddings=("embeddings",), lora_targets=("q_lin", "v_lin")),
    "modernbert": Architecture(layers="layers", embeddings=("embeddings",), lora_targets=("Wqkv",)),
    "gpt2": Architecture(pooling="last", layers="h", embeddings=("wte", "wpe")),
    "llama": _DECODER,
    "qwen2": _DECODER,
    "qwen3": _DECODER,
    "mistral": _DECODER,
    "gemma": _DECODER,
    "gemma2": _DECODER,
    "phi3": _DECODER,
    "opt": Architecture(pooling="last", layers="decoder.layers", embeddings=("decoder.embed_tokens", "decoder.embed_positions")),
}

# Families without an entry: causal if transformers has a causal-LM class and no masked-LM one.
_GENERIC_ENCODER = Architecture()


@functools.lru_cache(maxsize=None)  # read per forward pass (pooling): answer each model type once
def architecture(model_type: str) -> Architecture:
    if model_type in ARCHITECTURES:
        return ARCHITECTURES[model_type]
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    causal = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    return Architecture(pooling="last") if causal else _GENERIC_ENCODER


def _unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside a PEFT wrapper (or the model itself)."""
    base = getattr(model, "get_base_model", None)
    return base() if callable(base) else model


def _get(module: nn.Module, path: str) -> nn.Module | None:
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def layer_stack(model: nn.Module) -> nn.ModuleList | None:
    """The stack of transformer blocks: the table's path, else the ModuleList of the model's ``_no_split_modules``."""
    from torch import nn

    model = _unwrap(model)
    base = model.base_model
    path = architecture(model.config.model_type).layers
    found = _get(base, path) if path else None
    if isinstance(found, nn.ModuleList):
        return found
    block_classes = set(getattr(model, "_no_split_modules", None) or ())
    for module in base.modules():
        if isinstance(module, nn.ModuleList) and len(module) and type(module[0]).__name__ in block_classes:
            return module
    return None


def embedding_modules(model: nn.Module) -> list[nn.Module]:
    """The input embeddings (and position embeddings where the family has them) that freeze_layers freezes."""
    model = _unwrap(model)
    paths = architecture(model.config.model_type).embeddings
    found = [m for m in (_get(model.base_model, p) for p in paths or ()) if m is not None]
    return found or [m for m in (getattr(model.base_model, "embeddings", None) or model.get_input_embeddings(),) if m is not None]


def head_modules(model: nn.Module) -> list[str]:
    """Top-level modules outside the base model that hold weights: the classification head.

    BERT: ``classifier``; DistilBERT: ``pre_classifier``, ``classifier``; DeBERTa: ``pooler``,
    ``classifier``; GPT-2 / Llama: ``score``. They are trained under LoRA and saved with the adapter.
    """
    model = _unwrap(model)
    return [name for name, child in model.named_children()
            if name != model.base_model_prefix and any(True for _ in child.parameters())]


def linear_modules(model: nn.Module) -> list[str]:
    """Names of every linear layer (``nn.Linear``, GPT-2's ``Conv1D``) outside the head."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    model = _unwrap(model)
    heads = tuple(f"{h}." for h in head_modules(model))
    return [name for name, m in model.named_modules()
            if isinstance(m, (nn.Linear, Conv1D)) and not (name + ".").startswith(heads)]


def default_lora_targets(model: nn.Module) -> list[str]:
    """PEFT's default for the family, else the table's, else every linear layer outside the head."""
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS,
    )

    model_type = _unwrap(model).config.model_type
    if model_type in PEFT_DEFAULTS:
        return list(PEFT_DEFAULTS[model_type])
    table = architecture(model_type).lora_targets
    return list(table) if table else linear_modules(model)


def lora_targets(model: nn.Module, spec: Iterable[str]) -> list[str]:
    """``lora_target_modules`` resolved on ``model``: ``auto``, ``all-linear``, or names that must exist."""
    names = [n for n in spec if n]
    if not names or names == ["auto"]:
        return default_lora_targets(model)
    if names == ["all-linear"]:
        return linear_modules(model)
    missing = missing_modules(names, [n for n, _ in _unwrap(model).named_modules()])
    if missing:
        raise ValueError(missing)
    return names


def missing_modules(names: Iterable[str], module_names: Iterable[str]) -> str | None:
    """A one-line "did you mean" message for target names that match no module (PEFT matches by suffix)."""
    from tuneflow.config.registry import unknown_name_message

    module_names = list(module_names)
    leaves = sorted({m.rsplit(".", 1)[-1] for m in module_names if m})
    for name in names:
        if name in ("auto", "all-linear"):
            continue
        if not any(m == name or m.endswith("." + name) for m in module_names):
            return unknown_name_message("lora_target_modules module", name, leaves)
    return None


def pooled_features(model: nn.Module, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """The vector the family's head reads from ``hidden`` (batch, length, size): what multi-task losses use.

    Causal models: the rightmost token that is not the padding token, exactly as their
    ``*ForSequenceClassification`` finds it. Encoders: position 0 ([CLS]).
    """
    import torch

    config = _unwrap(model).config
    if architecture(config.model_type).pooling == "first":
        return hidden[:, 0]
    non_pad = (input_ids != config.pad_token_id).to(torch.int32)
    positions = torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32)
    last = (positions * non_pad).argmax(-1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last.to(hidden.device)]


def ensure_pad_token(tokenizer) -> None:
    """Give a tokenizer without a padding token (most decoder LLMs) its end-of-sequence token as one."""
    if tokenizer.pad_token is not None:
        return
    if tokenizer.eos_token is None:
        from tuneflow.config.errors import ConfigError

        raise ConfigError("the tokenizer has neither a padding token nor an end-of-sequence token to pad with")
    tokenizer.pad_token = tokenizer.eos_token
