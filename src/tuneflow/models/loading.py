"""Load tokenizers and pretrained classifiers; the pretrained weights are read once per process and copied per trial.

A checkpoint may be a bare encoder / decoder or already a classifier for another task: it is read
with its own head, and each trial builds a model for its task's labels, taking every pretrained
tensor except the per-label output rows (which start fresh, from the trial's seed).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tuneflow.config.study_config import ModelConfig
from tuneflow.models.architectures import ensure_pad_token
from tuneflow.models.checkpoint_info import resolve_model_path  # noqa: F401  (re-exported: callers import it from here)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class _Pretrained:
    config: object
    state: dict[str, torch.Tensor]  # every tensor the checkpoint held, except per-label head rows
    pad_token_id: int


_PRETRAINED: dict[tuple, _Pretrained] = {}


def load_tokenizer(path: str, revision: str | None = None):
    """The model's tokenizer, with a padding token (its end-of-sequence token when it has none)."""
    tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
    ensure_pad_token(tokenizer)
    return tokenizer


def _load_kwargs(options: ModelConfig | None) -> dict:
    if options is None:
        return {}
    kwargs = {"dtype": DTYPES[options.dtype]}
    if options.attn_implementation:
        kwargs["attn_implementation"] = options.attn_implementation
    return kwargs


def _label_dependent(config, keys: Sequence[str]) -> set[str]:
    """Head tensors whose shape follows the label count (built twice on the meta device to see which)."""
    shapes = []
    for n in (2, 3):
        c = copy.deepcopy(config)
        c.num_labels = n
        with torch.device("meta"):
            shapes.append({k: v.shape for k, v in AutoModelForSequenceClassification.from_config(c).state_dict().items()})
    return {k for k in keys if shapes[0].get(k) != shapes[1].get(k)}


def _pretrained(path: str, revision: str | None, options: ModelConfig | None) -> _Pretrained:
    key = (path, revision, options.dtype if options else None, options.attn_implementation if options else None)
    if key not in _PRETRAINED:
        # from_pretrained draws from the RNG; restore it so the head below depends on the seed alone.
        rng_state = torch.random.get_rng_state()
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, revision=revision, output_loading_info=True, **_load_kwargs(options))
        torch.random.set_rng_state(rng_state)
        state = model.state_dict()
        # Tensors the checkpoint did not hold were just drawn at random: a trial draws its own.
        kept = set(state) - set(info.get("missing_keys", ())) - _label_dependent(model.config, list(state))
        state = {k: state[k].detach().clone() for k in kept}
        _PRETRAINED[key] = _Pretrained(config=model.config, state=state, pad_token_id=load_tokenizer(path, revision).pad_token_id)
        del model
    return _PRETRAINED[key]


def new_classifier(
    path: str, num_labels: int, revision: str | None = None, *, label_names: Sequence[str] | None = None,
    options: ModelConfig | None = None,
) -> nn.Module:
    """A classifier for ``num_labels`` labels with the pretrained weights and a fresh per-label head.

    ``options`` carries ``model.dtype`` / ``attn_implementation`` / ``gradient_checkpointing`` /
    ``quantization``. ``label_names`` become the saved config's ``id2label`` / ``label2id``.
    """
    if options is not None and options.quantization:
        return _quantized_classifier(path, num_labels, revision, label_names=label_names, options=options)
    cached = _pretrained(path, revision, options)
    # Always built the same way, so the head's initialisation depends on the seed alone
    # (not on whether this was the process's first model).
    config = copy.deepcopy(cached.config)  # read from disk once, with the pretrained weights
    _set_labels(config, num_labels, label_names)
    config.pad_token_id = cached.pad_token_id  # causal heads find the last real token by it
    model = AutoModelForSequenceClassification.from_config(config, **_load_kwargs(options))
    model.load_state_dict(cached.state, strict=False)
    if options is not None and options.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def _set_labels(config, num_labels: int, label_names: Sequence[str] | None) -> None:
    config.num_labels = num_labels  # also resets id2label / label2id to this many generic labels
    if label_names is not None and len(label_names) == num_labels:
        config.id2label = {i: str(name) for i, name in enumerate(label_names)}
        config.label2id = {str(name): i for i, name in enumerate(label_names)}


def _quantized_classifier(path: str, num_labels: int, revision: str | None, *, label_names, options: ModelConfig) -> nn.Module:
    """QLoRA: quantised weights cannot be copied from a cache, so each trial loads them (bitsandbytes, CUDA)."""
    from transformers import AutoConfig, BitsAndBytesConfig

    compute = DTYPES["bfloat16" if options.dtype == "float32" else options.dtype]
    if options.quantization == "4bit":
        bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
                                 bnb_4bit_use_double_quant=True)
    else:
        bnb = BitsAndBytesConfig(load_in_8bit=True)
    config = AutoConfig.from_pretrained(path, revision=revision)
    _set_labels(config, num_labels, label_names)
    config.pad_token_id = load_tokenizer(path, revision).pad_token_id
    kwargs = _load_kwargs(options) | {"dtype": compute}
    model = AutoModelForSequenceClassification.from_pretrained(
        path, config=config, revision=revision, quantization_config=bnb, ignore_mismatched_sizes=True,
        device_map={"": torch.cuda.current_device()}, **kwargs)
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=options.gradient_checkpointing)
