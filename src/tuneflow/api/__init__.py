"""The Python API: what the ``tuneflow`` command does, as functions for a notebook or a script.

    import tuneflow
    config = tuneflow.load_config("studies/demo.yaml")
    study = tuneflow.run(config, n_trials=5)
    tuneflow.best(study)                      # the best trials, best first
    tuneflow.confirm(study, top_k=2, seeds=3) # fresh seeds for the top 2
    tuneflow.verdict(study)                   # does transfer help? plain words + the numbers
    tuneflow.export(study, "best.yaml", top_k=3)
    tuneflow.train("best.yaml", "final/")     # final training, scored once on the test split

Every function that reads a study takes its study file (``"studies/demo.yaml"``) or an
``optuna.Study`` (what :func:`run` and :func:`open_study` return). Those that need the study file's
config (:func:`validate`, :func:`run`, :func:`confirm`, :func:`rank`) find it, for a study, through
the path the study recorded when it ran (its ``tuneflow_config`` user attr), and say so when it is gone.

Every function raises :class:`tuneflow.ConfigError` (one line naming the file and key) on bad input,
before anything is written to storage. The CLI (:mod:`tuneflow.cli`) is a thin layer over this module.
"""

from tuneflow.api.results import best, export, report, status, train, verdict
from tuneflow.api.search import Ranking, confirm, rank, run, validate
from tuneflow.api.study_files import (  # noqa: F401 (monitored_study: for the CLI)
           load_config,
           monitored_study,
           open_study,
           recorded_study_file,
)
from tuneflow.config.errors import ConfigError
from tuneflow.study.preflight import Validation

__all__ = ["load_config", "validate", "run", "open_study", "status", "best", "verdict", "rank", "confirm", "export", "train",
           "report", "recorded_study_file", "ConfigError", "Validation", "Ranking"]
