"""The peer: HF ``Trainer`` for the same work (model, rows, batch size, epochs, learning rate), run twice.

* ``defaults`` — what a user gets from ``TrainingArguments`` untouched: random batches, fp32, clipping
  at 1.0, no loader workers. A comparison against these flatters, so it is reported, not the anchor.
* ``tuned`` — HF at its best for the same work: length-grouped batches (``train_sampling_strategy=
  "group_by_length"`` in transformers 5), the precision tuneflow trains in (bf16 on a GPU), the same
  clipping, and on a GPU loader workers and pinned memory. The speedup targets are against this run.

``throughput.py`` times single ``train()`` calls; ``study_vs_hf_search.py`` gives the same settings to
``Trainer.hyperparameter_search``.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from throughput_setup import LR, MAX_GRAD_NORM, synchronize

KINDS = ("tuned", "defaults")  # tuned first: it is the anchor
LOADER_WORKERS = 2  # enough to collate the next batch while the GPU runs this one; on a CPU they only compete


def sampling_arguments() -> dict:
    """Length-grouped sampling, under the name this transformers release knows."""
    from transformers import TrainingArguments

    if "train_sampling_strategy" in {f.name for f in dataclasses.fields(TrainingArguments)}:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}  # transformers before the rename


def sampling_name(kind: str) -> str:
    return "group_by_length" if kind == "tuned" else "random"


def settings(kind: str, *, cuda: bool, bf16: bool) -> dict:
    """The ``TrainingArguments`` a run of ``kind`` sets beyond the work itself."""
    if kind == "defaults":
        return {}
    if kind != "tuned":
        raise ValueError(f"unknown HF run {kind!r}; expected one of {KINDS}")
    tuned = {**sampling_arguments(), "bf16": bf16, "max_grad_norm": MAX_GRAD_NORM}
    if cuda:
        tuned.update(dataloader_num_workers=LOADER_WORKERS, dataloader_pin_memory=True, dataloader_persistent_workers=True)
    return tuned


def describe(kind: str, *, cuda: bool, bf16: bool) -> str:
    """One line for the results file: what this run changed from ``TrainingArguments()``."""
    changed = settings(kind, cuda=cuda, bf16=bf16)
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "TrainingArguments defaults"


class RowsDataset:
    """What a Trainer user feeds it: token lists per row, padded later by DataCollatorWithPadding."""

    def __init__(self, data, index: np.ndarray | None = None):
        index = np.arange(len(data)) if index is None else index
        types = data.token_type_ids
        self.rows = []
        for i in index:
            row = {"input_ids": data.input_ids[i].tolist(), "attention_mask": [1] * len(data.input_ids[i]), "labels": int(data.labels[i])}
            if types is not None:
                row["token_type_ids"] = types[i].tolist()
            self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


class Rows:
    """What a Trainer user feeds it from texts: tokenised rows, padded per batch by ``DataCollatorWithPadding``."""

    def __init__(self, tokenizer, split, max_length: int):
        encoded = tokenizer(split.texts, truncation=True, max_length=max_length)
        self.rows = [{**{k: v[i] for k, v in encoded.items()}, "labels": int(split.labels[i])} for i in range(len(split))]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def hf_trainer(model, dataset, tokenizer, *, kind: str, batch_size: int, epochs: int, cuda: bool, bf16: bool, output_dir: str):
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        num_train_epochs=epochs,
        learning_rate=LR,
        save_strategy="no",
        report_to=[],
        logging_strategy="no",
        disable_tqdm=True,
        **settings(kind, cuda=cuda, bf16=bf16),
    )
    return Trainer(model=model, args=args, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer))


def run_hf(trainer, device) -> tuple[float, dict]:
    """One timed ``train()``: optimizer creation, the sampler, the loader and the epochs."""
    synchronize(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = trainer.train()
    synchronize(device)
    seconds = time.perf_counter() - started
    return seconds, {
        "cpu_seconds": round(time.process_time() - cpu_started, 3),
        "hf_reported_samples_per_s": round(result.metrics.get("train_samples_per_second", 0.0), 1),
    }


def dataloader_pad_fraction(trainer) -> float:
    """Share of the tokens in the batches HF's own training dataloader yields that are padding (one epoch)."""
    real = total = 0
    for batch in trainer.get_train_dataloader():
        mask = batch["attention_mask"]
        real += int(mask.sum())
        total += mask.numel()
    return 1.0 - real / total if total else 0.0
