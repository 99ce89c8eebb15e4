"""Inference: logits for a split in its original order, and a separate head's predictions on pooled features."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tuneflow.data.batching import EncodedSplit, bucketed_batches, collate
from tuneflow.training.multitask import _train_mode, pooled_features
from tuneflow.training.runtime import Runtime


@torch.no_grad()
def predict(model: nn.Module, data: EncodedSplit, *, runtime: Runtime, pad_id: int, batch_size: int) -> np.ndarray:
    """Logits for every example, in the split's original order."""
    model.eval()
    out = np.empty((len(data), 0), dtype=np.float32)
    chunks, order = [], []
    for index in bucketed_batches(data.lengths, batch_size, shuffle=False):
        batch = collate(data, index, pad_id=pad_id, device=runtime.device)
        batch.pop("labels")
        with runtime.autocast():
            logits = model(**batch).logits
        chunks.append(logits.float())  # stays on the device: one copy to the host at the end, not one per batch
        order.append(index)
    if chunks:
        out = np.empty((len(data), chunks[0].shape[1]), dtype=np.float32)
        out[np.concatenate(order)] = torch.cat(chunks).cpu().numpy()
    return out


@torch.no_grad()
def head_predictions(
    model: nn.Module, head: nn.Module, data: EncodedSplit, *, runtime: Runtime, pad_id: int, batch_size: int
) -> np.ndarray:
    """Class predictions of ``head`` on the model's pooled features, in the split's order."""
    _train_mode(model, [head], False)
    out = np.empty(len(data), dtype=np.int64)
    for index in bucketed_batches(data.lengths, batch_size, shuffle=False):
        batch = collate(data, index, pad_id=pad_id, device=runtime.device)
        batch.pop("labels")
        with runtime.autocast():
            logits = head(pooled_features(model(**batch, output_hidden_states=True)))
        out[index] = logits.float().argmax(dim=1).cpu().numpy()
    return out
