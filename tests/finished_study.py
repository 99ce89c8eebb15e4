"""A small finished study (tiny BERT, real SQLite), shared by the report, artifact and dashboard tests."""

from __future__ import annotations

from pathlib import Path

import optuna

from conftest import SOURCE_WORDS, TARGET_WORDS, _rows, study_dict, write_csv, write_study

SPACE = {
    "parameters": {
        "learning_rate": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True},
        "batch_size": {"type": "categorical", "choices": [16, 32]},
        "epochs": {"type": "int", "low": 1, "high": 2},
        "method": {"type": "categorical", "choices": ["full", "lora"]},
        "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
        "source_epochs": {"type": "fixed", "value": 1, "when": {"mapping": "sequential"}},
    }
}
# Enqueued so every run covers both mappings and both methods, whatever the sampler draws.
TRIALS = [
    {"learning_rate": 4e-3, "batch_size": 16, "epochs": 2, "method": "full", "mapping": "direct"},
    {"learning_rate": 3e-3, "batch_size": 32, "epochs": 1, "method": "lora", "mapping": "sequential"},
    {"learning_rate": 2e-3, "batch_size": 32, "epochs": 2, "method": "lora", "mapping": "direct"},
    {"learning_rate": 2e-3, "batch_size": 32, "epochs": 2, "method": "full", "mapping": "direct"},  # pruned
]


def run_small_study(folder: Path, tiny_model_dir: Path) -> Path:
    """Three complete trials, then one a threshold pruner stops at its first evaluation.

    The first run's progress lines (stderr) are kept in ``first-run.log`` beside the study file."""
    import contextlib
    import io

    from tuneflow.cli.main import main

    files = {
        "target_train": write_csv(folder / "data" / "target_train.csv", _rows(TARGET_WORDS, 90, 1, string_labels=True)),
        "target_test": write_csv(folder / "data" / "target_test.csv", _rows(TARGET_WORDS, 30, 2, string_labels=True)),
        "source_train": write_csv(folder / "data" / "source_train.csv", _rows(SOURCE_WORDS, 60, 3)),
    }
    # No target-only baselines (they would double the training): transfer gain is tested on hand-made studies.
    objective = {"weights": {"f1": 1.0, "accuracy": 1.0}, "transfer_baseline": False}
    study = study_dict(tiny_model_dir, files, search_space=SPACE, budget={"n_trials": 3}, objective=objective)
    path = write_study(folder / "study.yaml", study)
    queue = optuna.create_study(study_name="tiny", storage=f"sqlite:///{folder / 'tiny.db'}", direction="maximize")
    for params in TRIALS[:3]:
        queue.enqueue_trial(params)
    progress = io.StringIO()
    with contextlib.redirect_stderr(progress):
        assert main(["run", str(path)]) == 0, progress.getvalue()
    (folder / "first-run.log").write_text(progress.getvalue(), encoding="utf-8")
    # One more trial, which a threshold pruner stops at its first evaluation (values are at most 1).
    queue.enqueue_trial(TRIALS[3])
    write_study(path, {**study, "pruner": {"name": "threshold", "kwargs": {"lower": 1.1}}, "budget": {"n_trials": 4}})
    assert main(["run", str(path), "--quiet"]) == 0
    return path
