"""Features and source-head probabilities of an encoder on target rows, for LogME and LEEP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from tuneflow.transferability.scores import Pooling

if TYPE_CHECKING:
    import torch
    from torch import nn


POOLINGS = ("cls", "mean")


def extract_features(
    model_path: str,
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    max_length: int = 128,
    batch_size: int = 64,
    pooling: Pooling = "cls",
    device: "str | torch.device" = "auto",
    revision: str | None = None,
) -> np.ndarray:
    """Pooled last-layer features (N x hidden, float32) of the pretrained encoder at ``model_path``."""
    from transformers import AutoModel

    from tuneflow.models.loading import load_tokenizer

    tokenizer = load_tokenizer(model_path, revision)
    encoder = AutoModel.from_pretrained(model_path, revision=revision)
    return encoder_features(
        encoder, tokenizer, texts, pairs, max_length=max_length, batch_size=batch_size, pooling=pooling, device=device
    )


def source_head_probabilities(
    model_path: str,
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    max_length: int = 128,
    batch_size: int = 64,
    device: "str | torch.device" = "auto",
    revision: str | None = None,
) -> np.ndarray:
    """Softmax outputs (N x C_source) of a saved sequence classifier's head, the input of :func:`leep`."""
    from transformers import AutoModelForSequenceClassification

    from tuneflow.models.loading import load_tokenizer

    tokenizer = load_tokenizer(model_path, revision)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, revision=revision)
    return head_probabilities(model, tokenizer, texts, pairs, max_length=max_length, batch_size=batch_size, device=device)


def encoder_features(
    encoder: "nn.Module",
    tokenizer,
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    max_length: int = 128,
    batch_size: int = 64,
    pooling: Pooling = "cls",
    device: "str | torch.device" = "auto",
) -> np.ndarray:
    """Pooled features from an in-memory encoder (a base model, or a classifier whose base model is used)."""
    import torch

    from tuneflow.data.batching import bucketed_batches, collate

    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    base = getattr(encoder, "base_model", encoder)  # a classifier -> its encoder; a base model -> itself
    runtime = _runtime(device)
    base = base.to(runtime.device).eval()
    data = _encode(tokenizer, texts, pairs, max_length)
    pad_id = tokenizer.pad_token_id or 0
    chunks, order = [], []
    with torch.no_grad():
        for index in bucketed_batches(data.lengths, batch_size, shuffle=False):
            batch = collate(data, index, pad_id=pad_id, device=runtime.device)
            batch.pop("labels")
            hidden = base(**batch).last_hidden_state.float()
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:  # mean over real tokens: padding must not dilute short rows
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
            chunks.append(pooled.cpu().numpy())
            order.append(index)
    out = np.empty((len(data), chunks[0].shape[1] if chunks else 0), dtype=np.float32)
    if chunks:
        out[np.concatenate(order)] = np.concatenate(chunks)
    return out


def head_probabilities(
    model: "nn.Module",
    tokenizer,
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    max_length: int = 128,
    batch_size: int = 64,
    device: "str | torch.device" = "auto",
) -> np.ndarray:
    """Softmax outputs of an in-memory sequence classifier (its head is the 'source' head of LEEP)."""
    from tuneflow.training.predict import predict

    runtime = _runtime(device)
    model = model.to(runtime.device)
    logits = predict(
        model, _encode(tokenizer, texts, pairs, max_length), runtime=runtime, pad_id=tokenizer.pad_token_id or 0, batch_size=batch_size
    ).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


def _encode(tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int):
    from tuneflow.data.batching import encode
    from tuneflow.data.tasks import TextSplit

    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"{len(pairs)} text pairs for {len(texts)} texts")
    split = TextSplit(texts=list(texts), pairs=list(pairs) if pairs is not None else None, labels=np.zeros(len(texts), dtype=np.int64))
    return encode(tokenizer, split, max_length)


def _runtime(device: "str | torch.device"):
    """A :class:`tuneflow.training.Runtime` in full precision: scores should not depend on autocast."""
    import torch

    from tuneflow.training.runtime import Runtime

    if isinstance(device, torch.device):
        return Runtime(device, None)
    return Runtime(Runtime.pick(device).device, None)
