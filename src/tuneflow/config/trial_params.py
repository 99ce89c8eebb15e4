"""The hyperparameters one trial trains with: sampled values on top of documented defaults."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any, Literal

from tuneflow.config.errors import ConfigError
from tuneflow.config.registry import unknown_name_message

METHODS = ("full", "lora", "head_only")
# PEFT's initialisations that need nothing beyond the model (eva, corda, loftq need data or configs).
LORA_INITS = ("default", "gaussian", "pissa", "olora", "orthogonal")


@dataclass(frozen=True)
class TrialParams:
    """Everything that decides how one trial trains. Unset names keep these defaults."""

    learning_rate: float = field(default=5e-5, metadata={"help": "peak AdamW learning rate (linear warm-up and decay)"})
    head_learning_rate: float | None = field(
        default=None, metadata={"help": "learning rate of the new task head (default: learning_rate); head-only needs ~1e-3"}
    )
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    epochs: int = field(default=3, metadata={"help": "epochs on the target task"})
    warmup_ratio: float = field(default=0.0, metadata={"help": "share of steps with linear warm-up"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (not on biases/LayerNorm)"})
    max_grad_norm: float | None = field(
        default=1.0, metadata={"help": "clip the gradient norm of every trained parameter (extra heads included) to this before each optimizer"
                          " step; 0 or null: no clipping"}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "micro-batches per optimizer step (the effective batch is batch_size x this)"}
    )
    method: Literal["full", "lora", "head_only"] = field(
        default="full", metadata={"help": "full fine-tune, LoRA adapters (PEFT), or the head alone"}
    )
    lora_learning_rate: float | None = field(
        default=None, metadata={"help": "learning rate of the LoRA matrices (default: learning_rate); LoRA usually wants ~10x"}
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha"})
    lora_dropout: float = field(default=0.1, metadata={"help": "dropout on the LoRA path"})
    lora_target_modules: str = field(
        default="auto",
        metadata={"help": "comma-separated module names LoRA adapts (PEFT matches by suffix); auto: PEFT's default for the"
                          " architecture (else every linear layer outside the head); all-linear: every linear layer outside the head"},
    )
    use_rslora: bool = field(default=False, metadata={"help": "rank-stabilised LoRA: scale by alpha / sqrt(r) instead of alpha / r"})
    use_dora: bool = field(default=False, metadata={"help": "DoRA: learn each weight's magnitude apart from its LoRA direction"})
    init_lora_weights: str = field(
        default="default", metadata={"help": "LoRA initialisation (PEFT): default, gaussian, pissa, pissa_niter_N (fast SVD), olora, orthogonal"}
    )
    lora_plus_ratio: float | None = field(
        default=None, metadata={"help": "LoRA+: the B matrices train at this x the LoRA learning rate (e.g. 16; null: off)"}
    )
    freeze_layers: int = field(default=0, metadata={"help": "freeze the embeddings (token and position) and the bottom k transformer blocks (with LoRA: no adapters in them)"})
    mapping: str = field(default="direct", metadata={"help": "domain-mapping strategy: how the source task is used (a name in the strategy registry; direct = target only)"})
    mapping_params: dict[str, Any] = field(default_factory=dict, metadata={"help": "the strategy's own values"})

    def __post_init__(self):
        positive = ("learning_rate", "batch_size", "epochs", "lora_r", "lora_alpha")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError("must be positive", key=name)
        for key in ("head_learning_rate", "lora_learning_rate"):
            if getattr(self, key) is not None and getattr(self, key) <= 0:
                raise ConfigError("must be positive", key=key)
        if self.method not in METHODS:
            raise ConfigError(unknown_name_message("method", self.method, METHODS), key="method")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError("must be in [0, 1)", key="warmup_ratio")
        init = self.init_lora_weights
        if init not in LORA_INITS and not (isinstance(init, str) and init.startswith("pissa_niter_") and init[12:].isdigit()):
            raise ConfigError(unknown_name_message("init_lora_weights", init, LORA_INITS + ("pissa_niter_N",)), key="init_lora_weights")
        for key in ("use_rslora", "use_dora"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"must be true or false, got {getattr(self, key)!r}", key=key)
        if self.lora_plus_ratio is not None and not self.lora_plus_ratio > 0:
            raise ConfigError("must be positive (null: off)", key="lora_plus_ratio")
        if self.freeze_layers < 0:
            raise ConfigError("must be >= 0", key="freeze_layers")
        if self.max_grad_norm is not None and not self.max_grad_norm >= 0:
            raise ConfigError("must be >= 0 (0 or null: no clipping)", key="max_grad_norm")
        steps = self.gradient_accumulation_steps
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
            raise ConfigError(f"must be a whole number >= 1, got {steps!r}", key="gradient_accumulation_steps")

    @property
    def lora_modules(self) -> list[str]:
        return [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]

    def as_dict(self) -> dict[str, Any]:
        flat = {k: v for k, v in dataclasses.asdict(self).items() if k != "mapping_params"}
        flat.update(self.mapping_params)
        return flat


CORE_PARAMETERS = tuple(f.name for f in dataclasses.fields(TrialParams) if f.name != "mapping_params")
