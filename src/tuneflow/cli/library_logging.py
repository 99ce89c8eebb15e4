"""Library chatter off for command-line runs: tuneflow's own lines say what happened."""

from __future__ import annotations

import os
import warnings


def quiet_libraries() -> None:
    """Silence library chatter (load reports, progress bars); our own lines say what happened."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import optuna
    import transformers

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
