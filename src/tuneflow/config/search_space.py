"""Search spaces: float / int / categorical / fixed parameters, with conditions, -> trial.suggest_*.

A space file looks like::

    parameters:
      learning_rate: {type: float, low: 1.0e-5, high: 5.0e-4, log: true}
      method: {type: categorical, choices: [full, lora, head_only]}
      lora_r: {type: categorical, choices: [4, 8, 16], when: {method: lora}}

Parameters are sampled in file order; ``when`` may only refer to earlier parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol

from tuneflow.config.errors import ConfigError
from tuneflow.config.file_hints import nearest_file
from tuneflow.config.registry import did_you_mean, unknown_name_message
from tuneflow.config.schema import parse_dataclass, read_yaml

if TYPE_CHECKING:
    import optuna

    from tuneflow.config.study_config import StudyConfig


SEARCH_SPACE_DIR = "search_spaces"  # shipped spaces, inside this package (the checkout links it at the top)


class StrategyDeclaration(Protocol):
    """What the config layer needs to know of a mapping strategy (``tuneflow.transfer.MappingStrategy``)."""

    parameters: dict[str, Any]
    choices: dict[str, tuple[Any, ...]]
    needs_source: bool


# name -> declaration; raises ConfigError ("did you mean") for an unknown name.
StrategyLookup = Callable[[str], StrategyDeclaration]


# Trial parameters that pick a source task / model candidate by name (tuneflow.config.choice_params).
CHOICE_PARAMETERS = ("source", "model")


def shipped_search_space_names() -> list[str]:
    return sorted(p.name for p in (resources.files("tuneflow.config") / SEARCH_SPACE_DIR).iterdir() if p.name.endswith(".yaml"))


def shipped_search_space(name: str) -> Path | None:
    """A search space that ships with tuneflow (``cpu_small.yaml``, ``default.yaml``, ...), if ``name`` is one."""
    path = resources.files("tuneflow.config") / SEARCH_SPACE_DIR / name
    return Path(str(path)) if path.is_file() else None


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a search space."""

    type: Literal["float", "int", "categorical", "fixed"] = field(metadata={
        "help": "float / int: a range (low, high); categorical: one of choices; fixed: value, applied but not sampled"})
    low: float | None = field(default=None, metadata={"help": "lower end of a float or int range (included)"})
    high: float | None = field(default=None, metadata={"help": "upper end of a float or int range (included)"})
    log: bool = field(default=False, metadata={"help": "sample the range on a log scale (needs low > 0; not with step)"})
    step: float | None = field(default=None, metadata={"help": "grid step of a float or int range"})
    choices: tuple[Any, ...] | None = field(default=None, metadata={
        "help": "categorical: the values to choose from (strings, numbers, booleans or null; distinct)"})
    value: Any = field(default=None, metadata={"help": "fixed: the value every trial gets"})
    when: dict[str, Any] | None = field(default=None, metadata={
        "help": "only sample this parameter when an earlier one has a value ({method: lora}) or one of a list"
                " ({mapping: [joint, adversarial]}); otherwise the trial keeps the default"})

    def __post_init__(self):
        numeric = self.type in ("float", "int")
        if numeric:
            if self.low is None or self.high is None:
                raise ConfigError(f"a {self.type} parameter needs low and high", key="low" if self.low is None else "high")
            if self.type == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
                raise ConfigError("an int parameter needs integer low and high", key="low")
            if self.low >= self.high:
                raise ConfigError(f"low ({self.low}) must be below high ({self.high})", key="low")
            if self.log and self.low <= 0:
                raise ConfigError("log scale needs low > 0", key="log")
            if self.log and self.step is not None:
                raise ConfigError("step cannot be combined with log", key="step")
            if self.step is not None and self.step <= 0:
                raise ConfigError("must be positive", key="step")
            if self.type == "int" and self.step is not None and not float(self.step).is_integer():
                raise ConfigError("an int parameter needs an integer step", key="step")
        else:
            for key in ("low", "high", "step"):
                if getattr(self, key) is not None:
                    raise ConfigError(f"only float and int parameters take {key}", key=key)
            if self.log:
                raise ConfigError("only float and int parameters take log", key="log")
        if self.type == "categorical":
            if not self.choices:
                raise ConfigError("a categorical parameter needs a non-empty list of choices", key="choices")
            if len(set(map(repr, self.choices))) != len(self.choices):
                raise ConfigError("choices must be distinct", key="choices")
            if any(not isinstance(c, (str, int, float, bool)) and c is not None for c in self.choices):
                raise ConfigError("choices must be strings, numbers, booleans or null", key="choices")
        elif self.choices is not None:
            raise ConfigError("only categorical parameters take choices", key="choices")
        if self.type == "fixed" and self.value is None:
            raise ConfigError("a fixed parameter needs a value", key="value")
        if self.type != "fixed" and self.value is not None:
            raise ConfigError("only fixed parameters take value", key="value")

    def possible_values(self) -> tuple[Any, ...] | None:
        """Every value this parameter can take, when that is a finite list (for conditions and grids)."""
        if self.type == "categorical":
            return self.choices
        if self.type == "fixed":
            return (self.value,)
        if self.type == "int":
            step = int(self.step or 1)
            return tuple(range(int(self.low), int(self.high) + 1, step))
        return None

    def suggest(self, trial: "optuna.Trial", name: str) -> Any:
        if self.type == "float":
            return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        if self.type == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        return self.value


def _matches(condition: Any, value: Any) -> bool:
    options = condition if isinstance(condition, (list, tuple)) else [condition]
    return value in options


def _check_trial_accepts(name: str, spec: ParamSpec, *, source: str) -> None:
    """Every value the space can give (the ends of a range, each choice) must be one a trial accepts,
    so a bad range fails here, before the study starts, not as failed trials later."""
    from tuneflow.config.trial_params import TrialParams

    values = spec.possible_values()
    if values is None:
        values = (spec.low, spec.high)
    for value in values:
        try:
            TrialParams(**{name: value})
        except ConfigError as err:
            raise ConfigError(f"{value!r}: {err.message}", file=source, key=f"parameters.{name}") from None
        except TypeError:  # e.g. a string where a number belongs: the trial reports it with its reason
            continue


@dataclass(frozen=True)
class SearchSpace:
    parameters: dict[str, ParamSpec]
    source: str = "<inline>"

    @classmethod
    def from_mapping(cls, raw: Any, source: str) -> "SearchSpace":
        if not isinstance(raw, dict) or set(raw) != {"parameters"}:
            extra = sorted(set(raw) - {"parameters"}) if isinstance(raw, dict) else None
            key = extra[0] if extra else "parameters"
            raise ConfigError("a search space is a mapping with one key, 'parameters'", file=source, key=key)
        params = raw["parameters"]
        if not isinstance(params, dict) or not params:
            raise ConfigError("expected a non-empty mapping of parameters", file=source, key="parameters")
        specs: dict[str, ParamSpec] = {}
        for name, spec in params.items():
            key = f"parameters.{name}"
            try:
                parsed = parse_dataclass(ParamSpec, spec, key)
            except ConfigError as err:
                raise err.at(file=source) from None
            for ref, condition in (parsed.when or {}).items():
                if ref not in specs:
                    if ref in params:  # sampled in file order: the value is not known yet when this one is sampled
                        where = "it is defined below; move it above"
                    else:
                        where = f"{did_you_mean(ref, specs)}defined above: {', '.join(specs) or 'none'}"
                    raise ConfigError(f"condition refers to {ref!r}, which is not a parameter defined above ({where})",
                                      file=source, key=f"{key}.when.{ref}")
                possible = specs[ref].possible_values()
                options = condition if isinstance(condition, (list, tuple)) else [condition]
                if possible is not None and not any(o in possible for o in options):
                    raise ConfigError(
                        f"{ref!r} never takes {condition!r}; its values are {list(possible)}", file=source, key=f"{key}.when.{ref}"
                    )
            specs[str(name)] = parsed
        return cls(parameters=specs, source=source)

    @classmethod
    def from_study_value(cls, value: Any, *, study_file: Path) -> "SearchSpace":
        """The study's ``search_space``: a file beside the study file, a shipped space, or inline."""
        if isinstance(value, dict):
            space = cls.from_mapping(value, str(study_file))
            return space
        if not isinstance(value, str):
            raise ConfigError("expected a file name or a mapping", file=str(study_file), key="search_space")
        candidates = [study_file.parent / value, shipped_search_space(value), Path(value)]
        for path in candidates:
            if path is not None and path.is_file():
                return cls.from_mapping(read_yaml(path), str(path))
        shipped = shipped_search_space_names()
        close = nearest_file(study_file.parent / value, extra=tuple(shipped))
        raise ConfigError(
            f"search space file {value!r} not found (looked beside the study file and among the shipped spaces: "
            f"{', '.join(shipped)}){f'; did you mean {close!r}?' if close else ''}",
            file=str(study_file),
            key="search_space",
        )

    def check_against(self, config: "StudyConfig", *, study_file: Path, strategies: "StrategyLookup") -> None:
        """Parameter names must be ones a trial understands; mappings must exist and have what they need."""
        from tuneflow.config.trial_params import CORE_PARAMETERS, METHODS

        mapping_spec = self.parameters.get("mapping")
        mappings = list(mapping_spec.possible_values() or ()) if mapping_spec else ["direct"]
        known = set(CORE_PARAMETERS) | set(CHOICE_PARAMETERS)  # source / model: tuneflow.config.choice_params
        for name in mappings:
            try:
                strategy = strategies(name)
            except ConfigError as err:
                raise err.at(file=self.source, key_prefix="parameters.mapping") from None
            known.update(strategy.parameters)
            for param, allowed in strategy.choices.items():  # e.g. align_loss: coral | mmd
                spec = self.parameters.get(param)
                for value in (spec.possible_values() or ()) if spec else ():
                    if value not in allowed:
                        message = unknown_name_message(f"{name} {param}", value, map(str, allowed))
                        raise ConfigError(message, file=self.source, key=f"parameters.{param}")
            if strategy.needs_source and not config.source_tasks:
                raise ConfigError(
                    f"mapping {name!r} trains on a source task, but the study has no 'source'", file=str(study_file), key="source"
                )
        for name, spec in self.parameters.items():
            if name not in known:
                raise ConfigError(unknown_name_message("parameter", name, known), file=self.source, key=f"parameters.{name}")
            if name == "method":
                for value in spec.possible_values() or ():
                    if value not in METHODS:
                        raise ConfigError(unknown_name_message("method", value, METHODS), file=self.source, key="parameters.method")
            if name in CORE_PARAMETERS and name not in ("method", "mapping"):
                _check_trial_accepts(name, spec, source=self.source)
        if config.sampler.name == "grid":
            for name, spec in self.parameters.items():
                if spec.possible_values() is None:
                    raise ConfigError(
                        "the grid sampler needs a finite list of values; make it categorical", file=self.source, key=f"parameters.{name}"
                    )

    def suggest(self, trial: "optuna.Trial") -> dict[str, Any]:
        """Sample every active parameter (conditions checked against earlier values)."""
        return self.walk(lambda name, spec, _values: spec.suggest(trial, name))

    def walk(self, pick: Callable[[str, ParamSpec, dict[str, Any]], Any]) -> dict[str, Any]:
        """Every active parameter's value, in file order: ``pick(name, spec, values so far)`` gives each one
        (fixed ones included), and a condition is checked against the values picked above it."""
        values: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            if self.active(name, values):
                values[name] = pick(name, spec, values)
        return values

    def active(self, name: str, values: dict[str, Any]) -> bool:
        """Is parameter ``name`` sampled, given the values of the parameters above it?"""
        when = self.parameters[name].when
        return not when or all(ref in values and _matches(cond, values[ref]) for ref, cond in when.items())

    def searched(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` without the fixed parameters: what a trial's ``params`` (and an enqueued trial) hold."""
        return {name: value for name, value in values.items() if self.parameters[name].type != "fixed"}

    def grid(self) -> dict[str, list[Any]]:
        """The value lists for Optuna's GridSampler (conditional parameters included)."""
        return {name: list(spec.possible_values()) for name, spec in self.parameters.items() if spec.type != "fixed"}

    def is_log(self, name: str) -> bool:
        spec = self.parameters.get(name)
        return bool(spec and spec.log)
