"""The one training loop. Read it top to bottom: epochs -> micro-batches -> optimizer step -> evaluate.

Every strategy trains through :func:`fit`. ``direct`` and ``sequential`` give it one task; ``joint``,
``adversarial`` and ``align`` also give it the source split and an ``extra_loss``: then a source
batch goes through the same model (for LoRA the PEFT-wrapped one, so the adapters are active) next to
each target batch, and ``extra_loss`` sees the pooled features of both (the last-layer vector the
model's head reads: [CLS] for encoders, the last real token for causal models), the source labels and how far training has got. The target head
is the model's own classifier; extra heads (a source head, a domain classifier) come in as
``extra_modules`` and train at the head learning rate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from tuneflow.data.batching import EncodedSplit, bucketed_batches, collate
from tuneflow.models.architectures import pooled_features as architecture_pooling
from tuneflow.training.optimizer import make_optimizer, trained_parameters
from tuneflow.training.runtime import Runtime


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite (the trial is pruned, not failed)."""


@dataclass
class FitStats:
    """What a call to :func:`fit` measured."""

    epoch_losses: list[float] = field(default_factory=list)
    examples_seen: int = 0  # target and source rows
    planned_examples: int = 0  # what the whole schedule would see (two-task: source batches at full size)
    seconds: float = 0.0
    progress: float = 0.0  # share of the schedule's optimizer steps done (the same yardstick for every trial)
    trained_parameters: int = 0  # parameters the optimizer steps (extra modules included)

    @property
    def samples_per_second(self) -> float:
        return self.examples_seen / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class TwoTaskStep:
    """What the extra loss sees at one micro-batch of a two-task fit."""

    target_features: torch.Tensor  # (target batch, hidden)
    source_features: torch.Tensor  # (source batch, hidden)
    source_labels: torch.Tensor
    progress: float  # share of optimizer steps done, 0 at the first step -> 1 (for schedules)


ExtraLoss = Callable[[TwoTaskStep], torch.Tensor]


def pooled_features(model: nn.Module, outputs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The last-layer vector the model's own head reads, from a pass run with ``output_hidden_states=True``:
    [CLS] for encoders, the last non-padding token for causal models (:mod:`tuneflow.models.architectures`)."""
    return architecture_pooling(model, outputs.hidden_states[-1], batch["input_ids"])


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
    lora_plus_ratio: float | None = None,
    weight_decay: float = 0.0,
    warmup_ratio: float = 0.0,
    max_grad_norm: float | None = 1.0,
    gradient_accumulation_steps: int = 1,
    source: EncodedSplit | None = None,
    extra_loss: ExtraLoss | None = None,
    extra_modules: Sequence[nn.Module] = (),
    seed: int = 0,
    on_evaluate: Callable[[int], None] | None = None,
    evaluate_every_steps: int | None = None,
    evaluations_per_schedule: int | None = None,
    stats: FitStats | None = None,
) -> FitStats:
    """Train ``model`` on ``data`` (plus ``extra_loss`` over a ``source`` batch at every micro-batch).

    ``max_grad_norm`` clips the gradient of every trained parameter (0 or None: no clipping). The
    optimizer and the LR schedule step once per ``gradient_accumulation_steps`` micro-batches, and at
    the end of each epoch. ``on_evaluate(k)`` runs after every epoch (and every N optimizer steps),
    or, with ``evaluations_per_schedule: n``, n times evenly over the whole schedule whatever its epoch
    count (the last at its end): so a one-epoch trial can be stopped at a quarter of its epoch. It is
    where the trial reports to Optuna and may raise ``TrialPruned`` to stop.
    """
    from transformers import get_linear_schedule_with_warmup

    if (source is None) != (extra_loss is None):
        raise ValueError("a two-task fit needs both a source split and an extra loss")
    two_task = source is not None
    accumulate = int(gradient_accumulation_steps)
    if accumulate < 1:
        raise ValueError(f"gradient_accumulation_steps must be >= 1, got {gradient_accumulation_steps}")
    if two_task:
        target_rng, source_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        source_batches = _endless_batches(source.lengths, batch_size, source_rng)
    else:
        target_rng = np.random.default_rng(seed)  # single-task runs keep the batch order they always had
    batches_per_epoch = math.ceil(len(data) / batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / accumulate)  # optimizer steps: a partial last group still steps
    total_steps = steps_per_epoch * epochs
    # Optimizer steps after which to evaluate (None: at each epoch's end). Evenly spread, the last at the end.
    planned = {math.ceil(total_steps * k / evaluations_per_schedule) for k in range(1, evaluations_per_schedule + 1)} \
        if evaluations_per_schedule else None
    optimizer = make_optimizer(model, lr, weight_decay, runtime, head_lr, lora_lr, extra_modules=extra_modules,
                               lora_plus_ratio=lora_plus_ratio)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
    trained = trained_parameters(optimizer)
    clipped = trained if max_grad_norm else []
    stats = stats if stats is not None else FitStats()  # the caller's, filled in place: a pruned fit's partial figures survive
    stats.trained_parameters = sum(p.numel() for p in trained)
    stats.planned_examples = len(data) * epochs + (batches_per_epoch * epochs * min(batch_size, len(source)) if two_task else 0)
    modules = (model, *extra_modules)
    forward = runtime.training_forward(model)  # compiled or not, every forward pass of the fit goes through it
    evaluations = 0
    started = time.perf_counter()

    def evaluate() -> None:
        # Evaluation time is not training time: the clock stops around it.
        nonlocal evaluations, started
        stats.seconds += time.perf_counter() - started
        on_evaluate(evaluations)
        evaluations += 1
        _train_mode(modules, True)
        started = time.perf_counter()

    step = 0  # optimizer steps
    for _epoch in range(epochs):
        _train_mode(modules, True)
        # Summed on the device so the loop never waits for the GPU just to log a number.
        loss_sum = torch.zeros((), device=runtime.device)
        batches = bucketed_batches(data.lengths, batch_size, shuffle=True, rng=target_rng)
        for i, index in enumerate(batches):
            group_start = i - i % accumulate
            group_size = min(accumulate, len(batches) - group_start)  # the last group of an epoch may be short
            batch = collate(data, index, pad_id=pad_id, device=runtime.device)
            with runtime.autocast():
                if not two_task:
                    loss = forward(**batch).loss
                else:
                    source_batch = collate(source, next(source_batches), pad_id=pad_id, device=runtime.device)
                    source_labels = source_batch.pop("labels")
                    target_out = forward(**batch, output_hidden_states=True)
                    source_out = forward(**source_batch, output_hidden_states=True)
                    features = (pooled_features(model, target_out, batch), pooled_features(model, source_out, source_batch))
                    loss = target_out.loss + extra_loss(TwoTaskStep(*features, source_labels, step / total_steps))
            # Each micro-batch weighs the same in the step: the gradient is the mean over its group.
            (loss / group_size).backward()
            loss_sum += loss.detach().float()
            stats.examples_seen += len(index) + (len(source_labels) if two_task else 0)
            if i + 1 < group_start + group_size:
                continue  # keep accumulating
            if clipped:
                torch.nn.utils.clip_grad_norm_(clipped, max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)  # free the gradients as soon as we can
            step += 1
            stats.progress = step / total_steps
            mid_epoch = step % steps_per_epoch != 0
            due = step in planned if planned is not None else bool(evaluate_every_steps) and step % evaluate_every_steps == 0
            if on_evaluate and due and mid_epoch:
                check_finite(loss_sum)
                evaluate()
        stats.epoch_losses.append(check_finite(loss_sum) / batches_per_epoch)
        if on_evaluate and (planned is None or step in planned):
            evaluate()
    stats.seconds += time.perf_counter() - started
    _train_mode(modules, False)
    return stats


def check_finite(loss_sum: torch.Tensor) -> float:
    """The epoch's summed loss as a float (one host sync); NaN or inf raises :class:`NonFiniteLoss`."""
    value = float(loss_sum)
    if not math.isfinite(value):
        raise NonFiniteLoss(f"training loss became {value}")
    return value


def _endless_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Source batches for as long as the target needs them, reshuffled at every pass."""
    while True:
        yield from bucketed_batches(lengths, batch_size, shuffle=True, rng=rng)


def _train_mode(modules: Sequence[nn.Module], training: bool) -> None:
    for m in modules:
        m.train(training)
