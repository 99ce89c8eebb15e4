"""tuneflow: Optuna studies that find the best way to transfer a pretrained language model
from a source task to a target task.

The Python API (:mod:`tuneflow.api`) is importable from here: ``tuneflow.load_config``,
``tuneflow.run``, ``tuneflow.best``, ``tuneflow.verdict``, ``tuneflow.confirm``, ``tuneflow.export``,
``tuneflow.train``, ... (``dir(tuneflow)`` lists them all). It loads on first use, so ``import tuneflow``
stays instant and imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tuneflow")
    except PackageNotFoundError:  # a source tree on PYTHONPATH, not installed
        return "0+unknown"


__version__ = _version()

# The public API, in the order a study goes: check, run, look, confirm, export, train.
API = ("load_config", "validate", "run", "open_study", "status", "best", "verdict", "rank", "confirm", "export", "train",
       "report", "recorded_study_file", "ConfigError", "Validation", "Ranking")
__all__ = [*API, "__version__"]

if TYPE_CHECKING:
    from tuneflow.api import (
        Ranking,
        Validation,
        best,
        confirm,
        export,
        load_config,
        open_study,
        rank,
        recorded_study_file,
        report,
        run,
        status,
        train,
        validate,
        verdict,
    )
    from tuneflow.config.errors import ConfigError  # noqa: F401


def __getattr__(name: str):
    if name in API:
        from tuneflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'tuneflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API first-class in a notebook's tab completion (module-level names alone would hide it)."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
