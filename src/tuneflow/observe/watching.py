"""The hooks a person watching a study wants: progress lines (live on a terminal), the dashboard note, images."""

from __future__ import annotations

import sys

from tuneflow.observe.artifacts import upload_trial_artifacts
from tuneflow.observe.dashboard import sync_study_note
from tuneflow.observe.live_display import publish_evaluation
from tuneflow.observe.progress import ProgressPrinter
from tuneflow.study.hooks import StudyHooks


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def watching_hooks(*, quiet: bool = False) -> StudyHooks:
    """Everything :mod:`tuneflow.observe` shows. ``quiet`` drops the lines; the note and images stay."""
    return StudyHooks(
        on_study_opened=sync_study_note,
        on_evaluation=publish_evaluation,
        on_trial_completed=upload_trial_artifacts,
        on_message=None if quiet else _to_stderr,
        progress=lambda study, total: ProgressPrinter(study, total=total, quiet=quiet),
    )
