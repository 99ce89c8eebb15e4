"""Inference: one pass of a model over a split, keeping what a small reader picks of each batch.

Target evaluation reads the logits, source retention a separate head on the pooled features, the
transferability scores (LogME, LEEP) the encoder's pooled features or the source head's logits: all
of them through :func:`predict`, in the split's original order, with one copy to the host at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from tuneflow.data.batching import EncodedSplit, bucketed_batches, collate
from tuneflow.training.loop import pooled_features
from tuneflow.training.runtime import Runtime


@dataclass(frozen=True)
class Reader:
    """What :func:`predict` keeps of one batch: ``pick(outputs, batch)`` -> one row per example."""

    pick: Callable[[Any, dict[str, torch.Tensor]], torch.Tensor]
    hidden_states: bool = False  # ``pick`` reads ``outputs.hidden_states``: ask the model for them


LOGITS = Reader(lambda outputs, batch: outputs.logits)


def head_reader(head: nn.Module, model: nn.Module) -> Reader:
    """The logits of ``head`` (a source head on ``model``'s pooled features) instead of the model's own."""
    head.eval()
    return Reader(lambda outputs, batch: head(pooled_features(model, outputs, batch)), hidden_states=True)


@torch.no_grad()
def predict(
    model: nn.Module, data: EncodedSplit, *, runtime: Runtime, pad_id: int, batch_size: int, reader: Reader = LOGITS
) -> np.ndarray:
    """``reader``'s rows (logits by default) for every example, in the split's original order, as float32."""
    model.eval()
    out = np.empty((len(data), 0), dtype=np.float32)
    chunks, order = [], []
    extra = {"output_hidden_states": True} if reader.hidden_states else {}
    for index in bucketed_batches(data.lengths, batch_size, shuffle=False):
        batch = collate(data, index, pad_id=pad_id, device=runtime.device)
        batch.pop("labels")
        with runtime.autocast():
            rows = reader.pick(model(**batch, **extra), batch)
        chunks.append(rows.float())  # stays on the device: one copy to the host at the end, not one per batch
        order.append(index)
    if chunks:
        out = np.empty((len(data), chunks[0].shape[1]), dtype=np.float32)
        out[np.concatenate(order)] = torch.cat(chunks).cpu().numpy()
    return out
