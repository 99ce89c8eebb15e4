"""Model construction: a pretrained sequence classifier, made full / LoRA (PEFT) / head-only / freeze-k.

The pretrained weights are read from disk once per process and copied into each trial's model,
so a study does not pay the load for every trial.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from tuneflow.config.trial_params import TrialParams
from tuneflow.models.architectures import (
    embedding_modules,
    head_modules,
    layer_stack,
    lora_targets,
)


def head_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights outside the base model (the task head)."""
    prefix = model.base_model_prefix + "."
    return {k: v for k, v in model.state_dict().items() if not k.startswith(prefix)}


def transplant(source: nn.Module, target: nn.Module, *, keep_head: bool) -> None:
    """Copy the encoder (and, if asked and shapes agree, the head) of ``source`` into ``target``."""
    prefix = target.base_model_prefix + "."
    state = {k: v for k, v in source.state_dict().items() if k.startswith(prefix)}
    if keep_head:
        target_head = head_state(target)
        for k, v in head_state(source).items():
            if k not in target_head or target_head[k].shape != v.shape:
                raise ValueError(f"cannot keep the source head: {k} has shape {tuple(v.shape)}, target needs "
                                 f"{tuple(target_head[k].shape) if k in target_head else 'none'}")
            state[k] = v
    target.load_state_dict(state, strict=False)



def _freeze_bottom(model: nn.Module, k: int) -> None:
    """Freeze the embeddings (token and position) and the bottom ``k`` transformer blocks."""
    if k <= 0:
        return
    layers = layer_stack(model)
    if layers is None:
        raise ValueError(f"freeze_layers: cannot find the transformer blocks of {type(model).__name__}")
    if k > len(layers):
        raise ValueError(f"freeze_layers={k} but the model has {len(layers)} layers")
    for module in [*embedding_modules(model), *layers[:k]]:
        module.requires_grad_(False)


def apply_method(model: nn.Module, params: TrialParams, *, method: str | None = None) -> nn.Module:
    """Make ``model`` trainable the way ``params.method`` says; returns it (wrapped, for LoRA)."""
    method = method or params.method
    if method == "head_only":
        model.base_model.requires_grad_(False)
        return model
    if method == "full":
        _freeze_bottom(model, params.freeze_layers)
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    layers = layer_stack(model)
    n_layers = len(layers) if layers is not None else 0
    if params.freeze_layers > n_layers:
        raise ValueError(f"freeze_layers={params.freeze_layers} but the model has {n_layers} layers")
    init = params.init_lora_weights
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=lora_targets(model, params.lora_modules),
        # The whole head (DeBERTa's pooler, DistilBERT's pre_classifier too) trains and is saved with the adapter.
        modules_to_save=head_modules(model),
        use_rslora=params.use_rslora,
        use_dora=params.use_dora,
        init_lora_weights=True if init == "default" else init,
        # Freezing k layers under LoRA means: no adapters in the bottom k blocks.
        layers_to_transform=list(range(params.freeze_layers, n_layers)) if params.freeze_layers else None,
    )
    return get_peft_model(model, lora)


def plain_model(model: nn.Module) -> nn.Module:
    """The underlying transformers model, with LoRA weights merged in if it is a PEFT model."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    return model


def is_head_parameter(model: nn.Module, name: str) -> bool:
    """True for parameters of the task head (anything outside the base encoder), LoRA-wrapped or not."""
    peft = sys.modules.get("peft")  # never imported means not a PEFT model: skip the slow import
    if peft is not None and isinstance(model, peft.PeftModel):
        model = model.base_model.model
        name = name.removeprefix("base_model.model.")
    return not name.startswith(model.base_model_prefix + ".")


def is_lora_parameter(name: str) -> bool:
    """PEFT names LoRA's matrices ``lora_A`` / ``lora_B`` (``lora_embedding_A`` / ``_B`` on embeddings)."""
    return ".lora_" in name


def is_lora_b_parameter(name: str) -> bool:
    """LoRA's B matrices (``lora_B``, ``lora_embedding_B``), which LoRA+ trains at a higher rate."""
    return ".lora_B." in name or ".lora_embedding_B." in name


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
