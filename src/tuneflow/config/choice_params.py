"""The trial parameters ``source`` and ``model``: which source task and which model candidate a trial uses.

A study with several ``sources`` (or model ``candidates``) searches them by default: the space gains
a categorical parameter over their names, after every parameter of the file. The ``source`` one is
conditional on the mappings that train on a source (``direct`` trials use none). A space may define
either parameter itself, to restrict it (``categorical`` with fewer names) or fix it (``fixed``);
its values must then be names the study has. Nothing here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneflow.config.errors import ConfigError
from tuneflow.config.registry import unknown_name_message
from tuneflow.config.search_space import CHOICE_PARAMETERS, ParamSpec, SearchSpace  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from tuneflow.config.search_space import StrategyLookup
    from tuneflow.config.study_config import StudyConfig, TaskConfig


def check_sources(source: "TaskConfig | None", sources: "tuple[TaskConfig, ...]") -> None:
    """One of ``source`` (one task) or ``sources`` (a list), and distinct names: a trial picks a source by name."""
    if source is not None and sources:
        raise ConfigError("give either source (one task) or sources (a list of tasks), not both", key="sources")
    seen: set[str] = set()
    for i, task in enumerate(sources):
        if task.name in seen:
            raise ConfigError(f"two sources are named {task.name!r}; each source needs its own name", key=f"sources[{i}].name")
        seen.add(task.name)


def with_choice_parameters(space: SearchSpace, config: "StudyConfig", *, strategies: "StrategyLookup") -> SearchSpace:
    """Check the space's own ``source`` / ``model`` parameters, add the implicit ones; returns the space to use."""
    mapping_spec = space.parameters.get("mapping")
    mappings = list(mapping_spec.possible_values() or ()) if mapping_spec else ["direct"]
    needing = [m for m in mappings if _needs_source(strategies, m)]
    options = {
        "source": [t.name for t in config.source_tasks] if needing else [],
        "model": list(config.model.choices),
    }
    parameters = dict(space.parameters)
    for name, names in options.items():
        spec = parameters.get(name)
        if spec is not None:
            why = ("the study has no sources" if not config.source_tasks else "no mapping of the space trains on a source"
                   ) if name == "source" else "the study has no model candidates"
            _check_spec(name, spec, names, file=space.source, why=why)
        elif len(names) > 1:
            when = {"mapping": needing} if name == "source" and len(needing) < len(mappings) else None
            parameters[name] = ParamSpec(type="categorical", choices=tuple(names), when=when)
    if parameters == space.parameters:
        return space
    return SearchSpace(parameters=parameters, source=space.source)


def _needs_source(strategies: "StrategyLookup", mapping: str) -> bool:
    try:
        return strategies(mapping).needs_source
    except ConfigError:
        return False  # an unknown mapping: check_against names it with its file and key


def _check_spec(name: str, spec: ParamSpec, names: list[str], *, file: str, why: str) -> None:
    key = f"parameters.{name}"
    plural = {"source": "sources", "model": "model candidates"}[name]
    if spec.type not in ("categorical", "fixed"):
        raise ConfigError(f"{name} picks one of the study's {plural}: make it categorical or fixed", file=file, key=key)
    if not names:
        raise ConfigError(f"{name} has nothing to choose from: {why}", file=file, key=key)
    for value in spec.possible_values() or ():
        if value not in names:
            raise ConfigError(unknown_name_message(name, value, names), file=file, key=key)


def restrict_choices(space: SearchSpace, name: str, allowed: list[str] | None) -> SearchSpace:
    """The space with parameter ``name``'s choices cut to ``allowed`` (file order kept); unchanged if none remain."""
    spec = space.parameters.get(name)
    if not allowed or spec is None or spec.type != "categorical":
        return space
    kept = tuple(c for c in spec.choices if c in allowed)
    if not kept or kept == spec.choices:
        return space
    restricted = ParamSpec(type="categorical", choices=kept, when=spec.when)
    return SearchSpace(parameters={**space.parameters, name: restricted}, source=space.source)
