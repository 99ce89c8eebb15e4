"""The throughput ceiling, in the same process and on the same rows: the loop of
``../shared/gpu/anchors/ceiling.py`` at any batch size.

Its recipe: every batch padded and copied to the device before the clock starts, batches in one global
length order (least padding there can be), bf16 autocast on CUDA, fused AdamW, no schedule, no clipping,
one untimed warm-up epoch on the same model. (ceiling.py fuses AdamW on CUDA only; here the CPU gets the
fused kernel too, as tuneflow's loop does, so that a ceiling never loses on its optimizer.) Nothing a trial could do costs less per step, so
tuneflow's loop is reported as a share of it. (``ceiling.py`` itself only runs batches 32, 128 and 512 on
its own 8,000 rows; ``gpu_suite.sh`` runs it too, and its figures sit beside these.)
"""

from __future__ import annotations

import time

import numpy as np
from throughput_setup import LR, synchronize


def sorted_batches(data, batch_size: int) -> list[np.ndarray]:
    """ceiling.py's order: all rows sorted by length (stable), cut into batches."""
    order = np.argsort(data.lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def device_batches(data, batch_size: int, *, pad_id: int, device) -> list[tuple]:
    import torch

    out = []
    for index in sorted_batches(data, batch_size):
        width = max(len(data.input_ids[i]) for i in index)
        ids = torch.full((len(index), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(index), width), dtype=torch.long)
        for j, i in enumerate(index):
            row = torch.from_numpy(data.input_ids[i])
            ids[j, : len(row)] = row
            mask[j, : len(row)] = 1
        labels = torch.from_numpy(data.labels[index])
        out.append((ids.to(device), mask.to(device), labels.to(device)))
    return out


def run_plain_loop(model, data, *, runtime, pad_id: int, batch_size: int, epochs: int) -> tuple[float, dict]:
    """Warm up one epoch untimed, then time ``epochs`` epochs; returns (seconds, extra)."""
    import torch

    batches = device_batches(data, batch_size, pad_id=pad_id, device=runtime.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, fused=True)
    model.train()

    def epoch() -> None:
        for ids, mask, labels in batches:
            with runtime.autocast():
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    epoch()  # warm-up, as ceiling.py does
    synchronize(runtime.device)
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        epoch()
    synchronize(runtime.device)
    seconds = time.perf_counter() - started
    return seconds, {"cpu_seconds": round(time.process_time() - cpu_started, 3)}


def pad_fraction(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Share of the tokens the model processes that are padding."""
    total = sum(len(b) * int(lengths[b].max()) for b in batches)
    return 1.0 - float(lengths.sum()) / total if total else 0.0
