"""The one training loop and evaluation. Read it top to bottom: epochs -> batches -> step."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from tuneflow.data.batching import EncodedSplit, bucketed_batches, collate
from tuneflow.training.runtime import Runtime


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite (the trial is pruned, not failed)."""


@dataclass
class FitStats:
    """What a call to :func:`fit` measured."""

    epoch_losses: list[float] = field(default_factory=list)
    examples_seen: int = 0
    seconds: float = 0.0

    @property
    def samples_per_second(self) -> float:
        return self.examples_seen / self.seconds if self.seconds > 0 else 0.0


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float, runtime: Runtime, head_lr: float | None = None,
    lora_lr: float | None = None,
) -> torch.optim.Optimizer:
    from tuneflow.models.methods import is_head_parameter, is_lora_parameter

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
        group_decay = weight_decay if p.ndim >= 2 else 0.0
        groups.setdefault((group_lr, group_decay), []).append(p)
    param_groups = [{"params": ps, "lr": g_lr, "weight_decay": g_wd} for (g_lr, g_wd), ps in groups.items()]
    # Fused AdamW is one kernel per step on CUDA and also measurably faster on CPU.
    fused = runtime.device.type in ("cuda", "cpu")
    return torch.optim.AdamW(param_groups, lr=lr, fused=fused)


def fit(
    model: nn.Module,
    data: EncodedSplit,
    *,
    runtime: Runtime,
    pad_id: int,
    epochs: int,
    lr: float,
    batch_size: int,
    head_lr: float | None = None,
    lora_lr: float | None = None,
    weight_decay: float = 0.0,
    warmup_ratio: float = 0.0,
    seed: int = 0,
    on_evaluate: Callable[[int], None] | None = None,
    evaluate_every_steps: int | None = None,
    stats: FitStats | None = None,
) -> FitStats:
    """Train ``model`` on ``data``. ``on_evaluate(k)`` runs after every epoch (and every N steps).

    ``on_evaluate`` is where the trial reports to Optuna; it may raise ``TrialPruned`` to stop.
    """
    from transformers import get_linear_schedule_with_warmup

    rng = np.random.default_rng(seed)
    lengths = data.lengths
    steps_per_epoch = math.ceil(len(data) / batch_size)
    total_steps = steps_per_epoch * epochs
    optimizer = make_optimizer(model, lr, weight_decay, runtime, head_lr, lora_lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
    stats = stats if stats is not None else FitStats()  # the caller's, filled in place: a pruned fit's partial figures survive
    evaluations = 0
    started = time.perf_counter()

    def evaluate() -> None:
        # Evaluation time is not training time: the clock stops around it.
        nonlocal evaluations, started
        stats.seconds += time.perf_counter() - started
        on_evaluate(evaluations)
        evaluations += 1
        model.train()
        started = time.perf_counter()

    forward = runtime.training_forward(model)
    step = 0
    for _epoch in range(epochs):
        model.train()
        # Summed on the device so the loop never waits for the GPU just to log a number.
        loss_sum = torch.zeros((), device=runtime.device)
        for index in bucketed_batches(lengths, batch_size, shuffle=True, rng=rng):
            batch = collate(data, index, pad_id=pad_id, device=runtime.device)
            with runtime.autocast():
                loss = forward(**batch).loss
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)  # free the gradients as soon as we can
            loss_sum += loss.detach().float()
            stats.examples_seen += len(index)
            step += 1
            mid_epoch = step % steps_per_epoch != 0
            if on_evaluate and evaluate_every_steps and step % evaluate_every_steps == 0 and mid_epoch:
                check_finite(loss_sum)
                evaluate()
        stats.epoch_losses.append(check_finite(loss_sum) / steps_per_epoch)
        if on_evaluate:
            evaluate()
    stats.seconds += time.perf_counter() - started
    return stats


def check_finite(loss_sum: torch.Tensor) -> float:
    """The epoch's summed loss as a float (one host sync); NaN or inf raises :class:`NonFiniteLoss`."""
    value = float(loss_sum)
    if not math.isfinite(value):
        raise NonFiniteLoss(f"training loss became {value}")
    return value
