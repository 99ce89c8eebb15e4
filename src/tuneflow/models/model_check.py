"""Before a study starts: does the model have a classifier class, the modules LoRA targets, the layers to freeze?

Two ways in, one set of rules: ``validate`` reads the checkpoint without torch
(:func:`check_checkpoint`), ``run`` builds the model on the meta device, no weights read
(:func:`check_model`). Either raises a one-line :class:`ConfigError` naming the file and key.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterable
from pathlib import Path

from tuneflow.config.errors import ConfigError, first_line
from tuneflow.config.study_config import StudyConfig
from tuneflow.models.architectures import missing_modules
from tuneflow.models.checkpoint_info import (
    checkpoint_info,
    sequence_classification_types,
)


def check_checkpoint(config: StudyConfig, model_path: str, *, file: str) -> None:
    """The torch-free check of a local checkpoint (a hub id is checked when the study runs)."""
    _check_quantization(config, cuda=_has_nvidia_driver() and config.device != "cpu", file=file)
    info = checkpoint_info(model_path)
    if info is None:
        return
    _check_choices(config, model_type=info.model_type, num_layers=info.num_layers, module_names=info.module_names,
                   supported=sequence_classification_types(), file=file)


def check_model(config: StudyConfig, model_path: str, *, file: str) -> None:
    """The same rules against the model built from its ``config.json`` on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from tuneflow.models.architectures import layer_stack

    _check_quantization(config, cuda=torch.cuda.is_available() and config.device != "cpu", file=file)
    try:
        model_config = AutoConfig.from_pretrained(model_path, revision=config.model.revision)
    except Exception as err:  # noqa: BLE001  not a model folder, no network: one line
        raise ConfigError(f"cannot read the model's config from {model_path!r}: {first_line(err)}", file=file, key="model.name") from None
    _check_choices(config, model_type=model_config.model_type, num_layers=None, module_names=None,
                   supported=_supported_types(), file=file)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(model_config)
    layers = layer_stack(model)
    _check_choices(config, model_type=model_config.model_type, num_layers=len(layers) if layers is not None else 0,
                   module_names=[n for n, _ in model.named_modules()], supported=None, file=file)


def _supported_types() -> frozenset[str]:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    )

    return frozenset(MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)


def _check_choices(config: StudyConfig, *, model_type: str, num_layers: int | None, module_names: Iterable[str] | None,
                   supported: frozenset[str] | None, file: str) -> None:
    if supported is not None and model_type not in supported:
        raise ConfigError(f"model type {model_type!r} has no sequence-classification class in transformers", file=file, key="model.name")
    space = config.space
    targets = space.parameters.get("lora_target_modules")
    if module_names is not None and targets is not None:
        names = list(module_names)
        for value in targets.possible_values() or ():
            problem = missing_modules([m.strip() for m in str(value).split(",")], names)
            if problem:
                raise ConfigError(problem, file=space.source, key="parameters.lora_target_modules")
    freeze = space.parameters.get("freeze_layers")
    if num_layers is not None and freeze is not None:
        values = freeze.possible_values() or (freeze.high,)
        deepest = max(int(v) for v in values)
        if deepest > num_layers:
            raise ConfigError(f"freeze_layers reaches {deepest}, but the model has {num_layers} layers",
                              file=space.source, key="parameters.freeze_layers")


def _check_quantization(config: StudyConfig, *, cuda: bool, file: str) -> None:
    """QLoRA needs bitsandbytes and a CUDA GPU: say so before any trial fails on it."""
    quantization = config.model.quantization
    if quantization is None:
        return
    if not cuda:
        raise ConfigError(f"quantization {quantization!r} (bitsandbytes) needs a CUDA GPU; none here", file=file, key="model.quantization")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(f"quantization {quantization!r} needs bitsandbytes: pip install bitsandbytes", file=file, key="model.quantization")


def _has_nvidia_driver() -> bool:
    return Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi") is not None

