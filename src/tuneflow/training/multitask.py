"""Two-task training: epochs over target batches, a source batch drawn alongside each, one extra loss.

It reads like :func:`tuneflow.training.fit` and reports the same way (``on_evaluate`` after each
epoch / every N steps), so pruning works unchanged. Both batches go through the same model — for
LoRA the PEFT-wrapped one, so the adapters are active — and the strategy's ``extra_loss`` sees the
pooled features of both (the last layer's [CLS] vector, which every BERT-family head reads), the
source labels and how far training has got. The target head is the model's own classifier; extra
heads (a source head, a domain classifier) are modules the strategy creates and passes in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from tuneflow.data.batching import EncodedSplit, bucketed_batches, collate
from tuneflow.training.loop import FitStats, check_finite, make_optimizer
from tuneflow.training.runtime import Runtime


@dataclass(frozen=True)
class TwoTaskStep:
    """What the extra loss sees at one optimizer step."""

    target_features: torch.Tensor  # (target batch, hidden)
    source_features: torch.Tensor  # (source batch, hidden)
    source_labels: torch.Tensor
    progress: float  # share of optimizer steps done, 0 at the first step -> 1 (for schedules)


ExtraLoss = Callable[[TwoTaskStep], torch.Tensor]


def pooled_features(outputs) -> torch.Tensor:
    """The last layer's [CLS] vector from a forward pass run with ``output_hidden_states=True``."""
    return outputs.hidden_states[-1][:, 0]


def _endless_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Source batches for as long as the target needs them, reshuffled at every pass."""
    while True:
        yield from bucketed_batches(lengths, batch_size, shuffle=True, rng=rng)


def fit_multitask(
    model: nn.Module,
    target: EncodedSplit,
    source: EncodedSplit,
    *,
    extra_loss: ExtraLoss,
    extra_modules: Sequence[nn.Module] = (),
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
    """Train ``model`` on ``target`` with ``extra_loss`` over a source batch at every step."""
    from transformers import get_linear_schedule_with_warmup

    target_rng, source_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    steps_per_epoch = math.ceil(len(target) / batch_size)
    total_steps = steps_per_epoch * epochs
    optimizer = make_optimizer(model, lr, weight_decay, runtime, head_lr, lora_lr)
    # Extra heads start from scratch like the target head, so they train at the head learning rate.
    for module in extra_modules:
        params = [p for p in module.parameters() if p.requires_grad]
        decayed = [p for p in params if p.ndim >= 2]
        plain = [p for p in params if p.ndim < 2]
        for group, decay in ((decayed, weight_decay), (plain, 0.0)):
            if group:
                optimizer.add_param_group({"params": group, "lr": head_lr or lr, "weight_decay": decay})
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
    source_batches = _endless_batches(source.lengths, batch_size, source_rng)
    stats = stats if stats is not None else FitStats()  # the caller's, filled in place: a pruned fit's partial figures survive
    evaluations = 0
    step = 0
    started = time.perf_counter()
    for _epoch in range(epochs):
        _train_mode(model, extra_modules, True)
        loss_sum = torch.zeros((), device=runtime.device)
        for index in bucketed_batches(target.lengths, batch_size, shuffle=True, rng=target_rng):
            batch = collate(target, index, pad_id=pad_id, device=runtime.device)
            source_batch = collate(source, next(source_batches), pad_id=pad_id, device=runtime.device)
            source_labels = source_batch.pop("labels")
            with runtime.autocast():
                target_out = model(**batch, output_hidden_states=True)
                source_out = model(**source_batch, output_hidden_states=True)
                extra = extra_loss(
                    TwoTaskStep(pooled_features(target_out), pooled_features(source_out), source_labels, step / total_steps)
                )
                loss = target_out.loss + extra
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach().float()
            stats.examples_seen += len(index) + len(source_labels)
            step += 1
            if evaluate_every_steps and step % evaluate_every_steps == 0 and step % steps_per_epoch != 0:
                check_finite(loss_sum)
                if on_evaluate is not None:
                    stats.seconds += time.perf_counter() - started
                    on_evaluate(evaluations)
                    started = time.perf_counter()
                    evaluations += 1
                    _train_mode(model, extra_modules, True)
        stats.epoch_losses.append(check_finite(loss_sum) / steps_per_epoch)
        stats.seconds += time.perf_counter() - started
        if on_evaluate is not None:
            on_evaluate(evaluations)  # evaluation time is not training time
            evaluations += 1
        started = time.perf_counter()
    stats.seconds += time.perf_counter() - started
    _train_mode(model, extra_modules, False)
    return stats


def _train_mode(model: nn.Module, modules: Sequence[nn.Module], training: bool) -> None:
    for m in (model, *modules):
        m.train(training)
