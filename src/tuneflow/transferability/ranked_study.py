"""What ranking needs of a checked study: its config, target, sources and model candidates (a ``StudyPlan`` is one).

The study layer's :class:`tuneflow.study.runner.StudyPlan` has these attributes, so it is passed as
it is; this layer names only what it reads, and never imports the layer above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tuneflow.config.study_config import StudyConfig
    from tuneflow.data.tasks import TaskData


class RankedStudy(Protocol):
    """A study whose file, tasks and models passed every check (nothing in storage yet)."""

    config: StudyConfig
    target: TaskData  # the target task, loaded
    sources: dict[str, TaskData]  # source name -> task, in file order
    models: dict[str, str]  # model candidate label -> resolved path, in file order
    model_path: str  # the first model candidate's path
