"""Where and in what precision tensors live: CPU or CUDA, bf16 autocast, optional torch.compile."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Runtime:
    """Where and in what precision tensors live."""

    device: torch.device
    amp_dtype: torch.dtype | None  # bf16 autocast on GPUs that support it, else full precision
    compile: bool = False  # torch.compile the training forward pass

    @classmethod
    def pick(cls, preference: str = "auto", *, compile: bool = False) -> "Runtime":
        if preference in ("auto", "cuda") and torch.cuda.is_available():
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else None
            return cls(torch.device("cuda"), dtype, compile)
        if preference == "cuda":
            raise RuntimeError("device: cuda was asked for, but no CUDA device is available")
        return cls(torch.device("cpu"), None, compile)

    def training_forward(self, model: nn.Module) -> nn.Module:
        """``model`` itself, or a compiled view of it sharing its parameters. Dynamic shapes, because
        bucketed batches change length every step; a fresh model per trial compiles once per trial."""
        return torch.compile(model, dynamic=True) if self.compile else model

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
