"""Task heads across tasks: ``head: label_map`` initialisation and re-attaching a source head later.

Imported only while a strategy trains (it needs torch).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from tuneflow.models.methods import head_state, plain_model, transplant
from tuneflow.training.predict import head_reader, predict


def feature_size(model: nn.Module) -> int:
    return int(model.config.hidden_size)  # PEFT models forward ``config`` to the wrapped model


def feature_head(hidden: int, out: int) -> nn.Module:
    """A small head on pooled features, shaped like BERT's pooler + classifier (source head, domain classifier)."""
    return nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out))


def record_source_retention(ctx, model: nn.Module, head: nn.Module) -> None:
    """``source_retention``: source validation accuracy of the source head on the final encoder."""
    data = ctx.source.validation
    logits = predict(model, data, runtime=ctx.runtime, pad_id=ctx.pad_id, batch_size=ctx.eval_batch_size, reader=head_reader(head, model))
    ctx.records["source_retention"] = float(np.mean(logits.argmax(axis=1) == data.labels)) if len(data) else float("nan")


def label_map_head(
    source: nn.Module, target: nn.Module, *, source_labels: tuple[str, ...], target_labels: tuple[str, ...]
) -> list[str]:
    """Copy the source head's rows of labels the target shares by name (case-insensitive) into ``target``.

    Other target rows keep their fresh initialisation. Head tensors with one row per label (the output
    layer's weight and bias) are mapped row by row; head tensors of equal shape that are not per-label
    (e.g. RoBERTa's dense layer before the output) are copied whole. Returns the mapped target labels.
    """
    by_name = {name.casefold(): i for i, name in enumerate(source_labels)}
    pairs = [(t, by_name[name.casefold()]) for t, name in enumerate(target_labels) if name.casefold() in by_name]
    target_head = head_state(target)
    update = {}
    for key, value in head_state(source).items():
        if key not in target_head:
            continue
        mine = target_head[key]
        per_label = value.shape[:1] == (len(source_labels),) and mine.shape[:1] == (len(target_labels),)
        if per_label and value.shape[1:] == mine.shape[1:]:
            rows = mine.clone()
            for t, s in pairs:
                rows[t] = value[s]
            update[key] = rows
        elif value.shape == mine.shape:
            update[key] = value.clone()
    if pairs:
        target.load_state_dict(update, strict=False)
    return [target_labels[t] for t, _ in pairs]


@torch.no_grad()
def source_accuracy_with_head(ctx, model: nn.Module, source_head: dict[str, torch.Tensor]) -> float:
    """Source validation accuracy of ``model``'s encoder under the source head it was trained with.

    Works on a merged copy, so the model the trial returns (possibly LoRA-wrapped) is left untouched.
    """
    encoder = plain_model(copy.deepcopy(model))
    probe = ctx.new_model(ctx.source)
    transplant(encoder, probe, keep_head=False)
    del encoder
    probe.load_state_dict(source_head, strict=False)
    probe.to(ctx.runtime.device)
    accuracy = ctx.evaluate(probe, ctx.source)["accuracy"]
    del probe
    return accuracy
