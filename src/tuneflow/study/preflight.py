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


def summary_lines(checked: CheckedStudy) -> list[str]:
    """``tuneflow validate``'s report: ``FILE: OK`` (or what could not be checked offline), then study, models, tasks."""
    config, file = checked.config, checked.file
    unchecked = [label for label, source in checked.models.items() if not source.checked]
    head = f"{file}: OK" + (f" as far as checked; not checked offline: model {', '.join(map(repr, unchecked))}" if unchecked else "")
    lines = [head, f"  study {config.name!r}, {len(config.space.parameters)} parameters from {config.space.source}"]
    lines += [f"  model {label!r}: {source.description}" for label, source in checked.models.items()]
    for key, task in checked.resolved.items():
        data = checked.tasks[key]
        if data is None:
            lines.append(f"  {key} {task.name!r}: hub dataset {task.hub.path!r} (not read by validate; use --data-root for offline files)")
        else:
            lines.append(f"  {key} {data.name!r}: {data.num_labels} labels, train {len(data.train)}, "
                         f"validation {len(data.validation)}{' (carved from train)' if data.validation_carved else ''}")
    return lines + checked.warm_lines
