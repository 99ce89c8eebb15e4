"""tuneflow: Optuna studies that find the best way to transfer a pretrained language model
from a source task to a target task.

The Python API (:mod:`tuneflow.api`) is importable from here: ``tuneflow.load_config``,
``tuneflow.run``, ``tuneflow.best``, ``tuneflow.verdict``, ``tuneflow.export``, ``tuneflow.train``, ... It loads on first
use, so ``import tuneflow`` stays instant and imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

API = ("load_config", "validate", "run", "open_study", "best", "verdict", "confirm", "export", "train", "report", "ConfigError")
__all__ = [*API, "__version__"]

if TYPE_CHECKING:
    from tuneflow.api import (
        best,
        confirm,
        export,
        load_config,
        open_study,
        report,
        run,
        train,
        validate,
        verdict,
    )
    from tuneflow.config.errors import ConfigError  # noqa: F401


def __getattr__(name: str):
    if name in API:
        from tuneflow import api

        return getattr(api, name) if name != "ConfigError" else api.ConfigError
    raise AttributeError(f"module 'tuneflow' has no attribute {name!r}")
