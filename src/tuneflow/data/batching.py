"""Tokenised splits and length-bucketed, dynamically padded batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tuneflow.data.tasks import TextSplit

# How many batches' worth of examples are sorted by length together. Larger = less padding,
# smaller = more randomness in which examples meet in a batch.
BUCKET_BATCHES = 50


@dataclass(frozen=True)
class EncodedSplit:
    """Token ids per example (unpadded) and labels."""

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def encode(tokenizer, split: TextSplit, max_length: int) -> EncodedSplit:
    """Tokenise once, without padding: padding happens per batch, to that batch's longest row."""
    out = tokenizer(
        split.texts,
        split.pairs,
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
    )
    token_types = out.get("token_type_ids")
    return EncodedSplit(
        input_ids=[np.asarray(ids, dtype=np.int64) for ids in out["input_ids"]],
        token_type_ids=[np.asarray(t, dtype=np.int64) for t in token_types] if token_types is not None else None,
        labels=np.asarray(split.labels, dtype=np.int64),
    )


def bucketed_batches(lengths: np.ndarray, batch_size: int, *, shuffle: bool, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Index batches that cover every example exactly once, grouping rows of similar length.

    Shuffled: rows are shuffled, sorted by length inside chunks of ``BUCKET_BATCHES`` batches, cut into
    batches, and the batch order shuffled again. Not shuffled (evaluation): one global sort.
    """
    order = np.arange(len(lengths))
    if not shuffle:
        order = order[np.argsort(lengths, kind="stable")]
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng = rng or np.random.default_rng()
    order = rng.permutation(order)
    chunk = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), chunk):
        piece = order[start : start + chunk]
        piece = piece[np.argsort(lengths[piece], kind="stable")]
        batches.extend(piece[i : i + batch_size] for i in range(0, len(piece), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(data: EncodedSplit, index: np.ndarray, *, pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Pad one batch to its longest row and move it to ``device``."""
    rows = [data.input_ids[i] for i in index]
    width = max(len(r) for r in rows)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for j, row in enumerate(rows):
        input_ids[j, : len(row)] = row
        mask[j, : len(row)] = 1
    batch = {"input_ids": input_ids, "attention_mask": mask, "labels": data.labels[index]}
    if data.token_type_ids is not None:
        types = np.zeros((len(rows), width), dtype=np.int64)
        for j, i in enumerate(index):
            types[j, : len(data.token_type_ids[i])] = data.token_type_ids[i]
        batch["token_type_ids"] = types
    if device.type != "cuda":
        return {k: torch.from_numpy(v) for k, v in batch.items()}
    # From pinned memory the copy is asynchronous: the loop goes on to build the next batch while the
    # GPU still runs this step (a copy from pageable memory would wait for the GPU to catch up first).
    return {k: torch.from_numpy(v).pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
