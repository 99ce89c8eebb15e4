"""Faults inside a trial that must not take the worker down: CUDA out-of-memory, memory left behind.

An out-of-memory trial is recorded as FAIL with ``fail_reason: CUDA out of memory (batch_size N): ...``
and the worker frees what the trial held and goes on with the next one. (NaN/inf losses are pruned
by the objective, see ``tuneflow.training.NonFiniteLoss``.)
"""

from __future__ import annotations

import gc
import sys


def is_cuda_oom(err: BaseException) -> bool:
    torch = sys.modules.get("torch")  # never import torch just to classify an error
    if torch is not None and isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "CUDA out of memory" in str(err)


def fail_reason(err: BaseException, *, batch_size: int | None = None) -> str:
    """The ``fail_reason`` user attribute of a failed trial: one readable line."""
    text = " ".join(str(err).split())
    if is_cuda_oom(err):
        detail = text.removeprefix("CUDA out of memory").lstrip(". :")
        where = f" (batch_size {batch_size})" if batch_size is not None else ""
        return f"CUDA out of memory{where}: {detail}"[:500]
    return f"{type(err).__name__}: {text}"


def release_memory(*, collect: bool = True) -> None:
    """After a trial: drop what it left (model, optimizer, cached CUDA blocks). A full ``gc.collect``
    costs 0.1-0.3 s in a process holding torch and transformers, so callers skip it when the
    objective already collected (it does in its ``finally``) and no exception kept frames alive."""
    if collect:
        gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
