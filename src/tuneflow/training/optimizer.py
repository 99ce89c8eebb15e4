"""The optimizer of a fit: AdamW with a learning rate per kind of parameter (encoder, fresh head, LoRA, extra heads)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from tuneflow.training.runtime import Runtime


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float, runtime: Runtime, head_lr: float | None = None,
    lora_lr: float | None = None, *, extra_modules: Sequence[nn.Module] = (), lora_plus_ratio: float | None = None,
) -> torch.optim.Optimizer:
    """AdamW over every trainable parameter of ``model`` and of ``extra_modules`` (one group per rate and decay).

    ``lora_plus_ratio`` (LoRA+): LoRA's B matrices train at that multiple of the LoRA rate.
    """
    from tuneflow.models.methods import is_head_parameter, is_lora_b_parameter, is_lora_parameter

    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # Biases and LayerNorm weights are not decayed (the usual BERT recipe). A fresh head, and
        # LoRA's low-rank matrices (B starts at zero), want a larger step than pretrained weights.
        group_lr = lr
        if head_lr is not None and is_head_parameter(model, name):
            group_lr = head_lr
        elif lora_lr is not None and is_lora_parameter(name):
            group_lr = lora_lr
        if lora_plus_ratio and is_lora_b_parameter(name):
            group_lr = (lora_lr if lora_lr is not None else lr) * lora_plus_ratio
        groups.setdefault((group_lr, _decay(p, weight_decay)), []).append(p)
    param_groups = [{"params": ps, "lr": g_lr, "weight_decay": g_wd} for (g_lr, g_wd), ps in groups.items()]
    # Extra heads (a source head, a domain classifier) start from scratch like the target head, so
    # they train at the head learning rate; they get groups of their own, after the model's.
    extra: dict[float, list[nn.Parameter]] = {}
    for module in extra_modules:
        for p in module.parameters():
            if p.requires_grad:
                extra.setdefault(_decay(p, weight_decay), []).append(p)
    param_groups += [{"params": ps, "lr": head_lr or lr, "weight_decay": wd} for wd, ps in sorted(extra.items(), reverse=True)]
    # Fused AdamW is one kernel per step on CUDA and also measurably faster on CPU.
    fused = runtime.device.type in ("cuda", "cpu")
    return torch.optim.AdamW(param_groups, lr=lr, fused=fused)


def trained_parameters(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    """Every parameter the optimizer steps (what gradient clipping measures)."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def _decay(p: nn.Parameter, weight_decay: float) -> float:
    return weight_decay if p.ndim >= 2 else 0.0
