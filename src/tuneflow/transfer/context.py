"""What a mapping strategy works with during one trial: models, tokenised tasks, the loop, reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from torch import nn

from tuneflow.config.trial_params import TrialParams
from tuneflow.data.prepared_task import PreparedTask
from tuneflow.models.loading import new_classifier
from tuneflow.models.methods import apply_method
from tuneflow.training.loop import ExtraLoss, FitStats, fit
from tuneflow.training.metrics import classification_metrics
from tuneflow.training.predict import predict
from tuneflow.training.runtime import Runtime

# Called with (validation metrics, evaluation index) each time the target stage evaluates.
Reporter = Callable[[dict[str, Any], int], None]


@dataclass
class TransferContext:
    params: TrialParams
    model_path: str
    target: PreparedTask
    source: PreparedTask | None
    runtime: Runtime
    pad_id: int
    seed: int
    eval_batch_size: int = 128
    evaluate_every_steps: int | None = None
    evaluations_per_schedule: int | None = None  # evaluations spread over the target schedule (None: each epoch)
    report: Reporter | None = None
    model_revision: str | None = None
    model_options: Any = None  # the study's ModelConfig: dtype, attention, gradient checkpointing, quantization
    # Filled in while the trial runs.
    fit_stats: list[FitStats] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)
    # The latest target predictions (the paired bootstrap of the gain pairs them row by row). Not a field:
    # no annotation, so a dataclasses.replace copy starts without them.
    last_predictions = None

    def new_model(self, task: PreparedTask) -> nn.Module:
        """A pretrained encoder with a fresh head for ``task`` (head init follows the trial seed)."""
        import torch

        torch.manual_seed(self.seed)
        return new_classifier(self.model_path, task.num_labels, self.model_revision,
                              label_names=task.data.label_names, options=self.model_options)

    def prepare(self, model: nn.Module, *, params: TrialParams | None = None) -> nn.Module:
        """Apply the fine-tuning method (full / LoRA / head-only, freeze-k) and move to the device."""
        return apply_method(model, params or self.params).to(self.runtime.device)

    def fit(
        self, model: nn.Module, task: PreparedTask, *, epochs: int, lr: float, report: bool,
        source: PreparedTask | None = None, extra_loss: ExtraLoss | None = None, extra_modules: Sequence[nn.Module] = (),
    ) -> FitStats:
        """Train on ``task``; with ``report=True`` evaluate the target (after each epoch, or as often as
        ``evaluations_per_schedule`` says) and report it.

        With ``source`` and ``extra_loss`` (``joint``, ``adversarial``, ``align``) a source batch goes
        alongside each target batch and ``extra_loss`` is added (see :func:`tuneflow.training.loop.fit`);
        reporting, and so pruning, is the same. Final training has no reporter: there the target stage
        trains without evaluating.
        """
        arguments = self._training_arguments(model, epochs=epochs, lr=lr, report=report)
        fit(
            model, task.train, source=source.train if source is not None else None, extra_loss=extra_loss,
            extra_modules=extra_modules, **arguments,
        )
        return arguments["stats"]

    def _training_arguments(self, model: nn.Module, *, epochs: int, lr: float, report: bool) -> dict[str, Any]:
        """What the training loop takes from the trial: its hyperparameters, seed and reporter."""
        on_evaluate = None
        if report and self.report is not None:

            def on_evaluate(index: int) -> None:
                self.report(self.evaluate(model, self.target), index)

        stats = FitStats()
        self.fit_stats.append(stats)  # before training: a trial pruned mid-fit still counts the time it spent
        return dict(
            runtime=self.runtime,
            pad_id=self.pad_id,
            epochs=epochs,
            lr=lr,
            batch_size=self.params.batch_size,
            head_lr=self.params.head_learning_rate,
            lora_lr=self.params.lora_learning_rate if self.params.method == "lora" else None,
            lora_plus_ratio=self.params.lora_plus_ratio if self.params.method == "lora" else None,
            weight_decay=self.params.weight_decay,
            warmup_ratio=self.params.warmup_ratio,
            max_grad_norm=self.params.max_grad_norm,
            gradient_accumulation_steps=self.params.gradient_accumulation_steps,
            seed=self.seed,
            on_evaluate=on_evaluate,
            evaluate_every_steps=self.evaluate_every_steps if on_evaluate else None,
            evaluations_per_schedule=self.evaluations_per_schedule if on_evaluate else None,
            stats=stats,
        )

    def evaluate(self, model: nn.Module, task: PreparedTask) -> dict[str, Any]:
        """Metrics on ``task``'s validation split (never its test split)."""
        logits = predict(model, task.validation, runtime=self.runtime, pad_id=self.pad_id, batch_size=self.eval_batch_size)
        predictions = np.argmax(logits, axis=1)
        if task is self.target:
            self.last_predictions = predictions
        return classification_metrics(task.validation.labels, predictions, task.data.label_names)

    def record_source_accuracy(self, model: nn.Module, *, stage: str) -> None:
        """Source validation accuracy, e.g. right after the source stage (to see what was learnt)."""
        self.records[f"source_accuracy_{stage}"] = self.evaluate(model, self.source)["accuracy"]

    @property
    def training_seconds(self) -> float:
        return sum(s.seconds for s in self.fit_stats)

    @property
    def samples_per_second(self) -> float:
        seen = sum(s.examples_seen for s in self.fit_stats)
        return seen / self.training_seconds if self.training_seconds > 0 else 0.0
