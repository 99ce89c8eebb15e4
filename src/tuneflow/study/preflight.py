"""Every check a study file gets before any storage is touched: one path for ``tuneflow validate`` and ``plan_study``.

In order: the storage URL, earlier studies to warm-start from (opened read-only), every task (columns,
labels), each model candidate, the sampler's and pruner's arguments, the prior's candidates file. A
failure is one :class:`ConfigError` naming the file and key, and nothing is written. ``thorough``
(the run path) also reads hub datasets and loads each candidate's tokenizer and builds it on the meta
device; without it (``validate``) the checks are torch-free and read no hub dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneflow.config.errors import ConfigError
from tuneflow.config.study_config import StudyConfig
from tuneflow.data.tasks import TaskData, load_task, resolve_task
from tuneflow.transfer.base import get_strategy

if TYPE_CHECKING:
    from tuneflow.config.study_config import TaskConfig


@dataclass
class CheckedStudy:
    """What the checks found: resolved and loaded tasks, models, sampler and pruner, warm-start lines."""

    config: StudyConfig
    file: str  # as the user typed it: errors and summaries name it so
    resolved: dict[str, "TaskConfig"]  # key path (target, source, sources[i]) -> task as it is read
    tasks: dict[str, TaskData | None]  # key path -> loaded task; None: a hub dataset validate does not read
    models: dict[str, Any]  # label -> resolved path (thorough) or ModelSource (what validate checked)
    sampler: Any
    pruner: Any
    warm_lines: list[str]


def uses_source(config: StudyConfig) -> bool:
    spec = config.space.parameters.get("mapping")
    names = spec.possible_values() if spec else ("direct",)
    return any(get_strategy(name).needs_source for name in names)


def source_keys(config: StudyConfig) -> dict[str, Any]:
    """Key path -> source task: ``source`` for the one-source form, ``sources[i]`` for the list."""
    if config.source is not None:
        return {"source": config.source}
    return {f"sources[{i}]": task for i, task in enumerate(config.sources)}


def check_study(config: StudyConfig, *, file: str, thorough: bool) -> CheckedStudy:
    """Run every check on a loaded study config (see the module docstring for what ``thorough`` adds)."""
    from tuneflow.fleet.storage import check_storage_url
    from tuneflow.study.model_candidates import check_checkpoints, check_models
    from tuneflow.study.samplers import make_pruner, make_sampler
    from tuneflow.study.warm_start import check_warm_starts

    check_storage_url(config.storage_url(), file=file)
    warm_lines = check_warm_starts(config, file=file)  # earlier studies exist (read only), before this study's storage
    tasks = {"target": config.target, **(source_keys(config) if uses_source(config) else {})}
    # Every source is read and checked now (a bad file fails before storage); trials tokenise them lazily.
    resolved = {key: resolve_task(task, data_root=config.data_root, base_dir=config.directory) for key, task in tasks.items()}
    loaded: dict[str, TaskData | None] = {}
    try:
        for key, task in resolved.items():
            loaded[key] = load_task(task, key=key, seed=config.seed) if thorough or task.hub is None else None
    except ConfigError as err:
        raise err.at(file=file) from None
    if thorough:  # each candidate: tokenizer, LoRA targets, freeze_layers, quantization
        models: dict[str, Any] = check_models(config, file=file)
    else:  # torch-free: a local folder's config and tokenizer, a hub id on the hub (or "not checked offline")
        models = check_checkpoints(config, file=file)
    sampler = make_sampler(config.sampler, seed=config.seed, space=config.space, file=file)
    pruner = make_pruner(config.pruner, file=file)
    if config.prior_candidates:
        from tuneflow.transferability.candidates import load_candidates

        load_candidates(config.directory / config.prior_candidates)
    return CheckedStudy(config=config, file=file, resolved=resolved, tasks=loaded, models=models, sampler=sampler,
                        pruner=pruner, warm_lines=warm_lines)


@dataclass(frozen=True)
class Validation:
    """What :func:`tuneflow.validate` checked; ``str()`` gives the summary lines ``tuneflow validate`` prints.

    Attributes:
        file: The study file, as given.
        study: The study's name.
        parameters: How many parameters the search space has.
        space_source: Where the space came from (the file, or a named preset).
        models: One entry per model candidate: ``label``, ``description``, ``checked`` (False: a hub id
            not looked up offline).
        tasks: One entry per task: ``key`` (``target``, ``source``, ``sources[1]``), ``name``, ``hub``
            (the hub dataset id, not read; else None), ``labels``, ``train``, ``validation`` (rows) and
            ``validation_carved`` (True: carved out of train). The counts are None for a hub task.
        warm_start: One line per earlier study to warm-start from (and trials that would be skipped).
    """

    file: str
    study: str
    parameters: int
    space_source: str
    models: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    warm_start: list[str]

    @classmethod
    def of(cls, checked: CheckedStudy) -> "Validation":
        """The summary of what :func:`check_study` found (torch-free: validate's models are ModelSources)."""
        tasks = []
        for key, task in checked.resolved.items():
            data = checked.tasks[key]
            if data is None:
                tasks.append({"key": key, "name": task.name, "hub": task.hub.path, "labels": None, "train": None,
                              "validation": None, "validation_carved": None})
            else:
                tasks.append({"key": key, "name": data.name, "hub": None, "labels": data.num_labels, "train": len(data.train),
                              "validation": len(data.validation), "validation_carved": bool(data.validation_carved)})
        config = checked.config
        return cls(file=checked.file, study=config.name, parameters=len(config.space.parameters),
                   space_source=str(config.space.source),
                   models=[{"label": label, "description": s.description, "checked": s.checked} for label, s in checked.models.items()],
                   tasks=tasks, warm_start=checked.warm_lines)

    @property
    def unchecked(self) -> list[str]:
        """Model candidates that could not be checked offline."""
        return [m["label"] for m in self.models if not m["checked"]]

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``tuneflow validate --json`` (``ok`` is True: a failed check raises instead)."""
        return {"file": self.file, "ok": True, "not_checked_offline": self.unchecked, "study": self.study,
                "parameters": self.parameters, "space_source": self.space_source, "models": self.models,
                "tasks": self.tasks, "warm_start": self.warm_start}

    def lines(self) -> list[str]:
        """The summary lines; the first says ``OK``, or what could not be checked offline."""
        unchecked = self.unchecked
        head = f"{self.file}: OK" + (f" as far as checked; not checked offline: model {', '.join(map(repr, unchecked))}" if unchecked else "")
        lines = [head, f"  study {self.study!r}, {self.parameters} parameters from {self.space_source}"]
        lines += [f"  model {m['label']!r}: {m['description']}" for m in self.models]
        for t in self.tasks:
            if t["hub"] is not None:
                lines.append(f"  {t['key']} {t['name']!r}: hub dataset {t['hub']!r} (not read by validate; use --data-root for offline files)")
            else:
                lines.append(f"  {t['key']} {t['name']!r}: {t['labels']} labels, train {t['train']}, validation {t['validation']}"
                             f"{' (carved from train)' if t['validation_carved'] else ''}")
        return lines + self.warm_start

    def __str__(self) -> str:
        return "\n".join(self.lines())
