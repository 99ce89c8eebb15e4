"""Named points of a search space: its centre, and the learning rates coverage tries per arm.

Where tuneflow itself chooses a configuration (the prior's first trial, each arm's coverage trial),
the parameters it has no reason to set take the space's *centre*, not its first choice:

* a range: its middle (the geometric middle of a ``log`` range; an int range or a stepped range
  rounds down onto its grid, so an epoch count rounds to the cheaper side);
* a list of choices: the documented default (:class:`~tuneflow.config.trial_params.TrialParams`, or
  the mapping strategy's own default, e.g. ``head: new``) when it is one of them; else, for numbers,
  the middle choice in sorted order, the lower of the two middle ones for an even count (a
  too-large learning rate can make every run collapse, a too-small one only trains slower); else the
  first choice;
* a fixed parameter: its value.

Learning rates (every parameter whose name ends in ``learning_rate``) walk a *ladder* instead:
rung 0 is the centre, rung 1 the lower quartile, rung 2 the upper quartile (in log space for log
ranges; for a list, the choices at those positions, each choice once). All learning rates of a
configuration stand on the same rung, so a LoRA or head-only trial moves with the rest.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from tuneflow.config.trial_params import TrialParams

if TYPE_CHECKING:
    from tuneflow.config.search_space import ParamSpec, SearchSpace, StrategyLookup

LADDER_QUANTILES = (0.5, 0.25, 0.75)  # centre, then below, then above


def is_learning_rate(name: str) -> bool:
    return name.endswith("learning_rate")


def documented_defaults(strategies: "StrategyLookup | None" = None, mapping: str | None = None) -> dict[str, Any]:
    """TrialParams' defaults, plus the mapping strategy's own defaults when it is known."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrialParams) if f.default is not dataclasses.MISSING}
    if strategies is not None and mapping is not None:
        try:
            defaults.update(strategies(mapping).parameters)
        except Exception:  # noqa: BLE001 - an unknown mapping: the space check names it
            pass
    return defaults


def _numeric(values: tuple[Any, ...]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _at_quantile(spec: "ParamSpec", q: float) -> Any:
    """The value at quantile ``q`` of a range (log-scaled for log ranges), on its grid, rounded down."""
    low, high = float(spec.low), float(spec.high)
    value = math.exp(math.log(low) + q * (math.log(high) - math.log(low))) if spec.log else low + q * (high - low)
    if spec.type == "int" or spec.step:
        step = float(spec.step or 1)
        value = low + math.floor((value - low) / step + 1e-9) * step
        return int(round(value)) if spec.type == "int" else float(value)
    return float(value)


def _choice_at_quantile(values: tuple[Any, ...], q: float) -> Any:
    ordered = sorted(values)
    index = min(max(math.ceil(q * len(ordered)) - 1, 0), len(ordered) - 1)
    return ordered[index]


def ladder(spec: "ParamSpec") -> list[Any]:
    """The distinct values of a learning-rate parameter's rungs, rung 0 first."""
    if spec.type == "fixed":
        return [spec.value]
    if spec.type == "categorical":
        if not _numeric(spec.choices):
            return [spec.choices[0]]
        points = [_choice_at_quantile(spec.choices, q) for q in LADDER_QUANTILES]
    else:
        points = [_at_quantile(spec, q) for q in LADDER_QUANTILES]
    return list(dict.fromkeys(points))


def centre_value(name: str, spec: "ParamSpec", defaults: dict[str, Any]) -> Any:
    """The value a parameter takes when tuneflow chooses for it (see the module docstring)."""
    if spec.type == "fixed":
        return spec.value
    if spec.type == "categorical":
        default = defaults.get(name, dataclasses.MISSING)
        if default is not dataclasses.MISSING and any(type(c) is type(default) and c == default for c in spec.choices):
            return default
        if _numeric(spec.choices):
            return _choice_at_quantile(spec.choices, 0.5)
        return spec.choices[0]
    return _at_quantile(spec, 0.5)


def centre_params(
    space: "SearchSpace", *, chosen: dict[str, Any] | None = None, rung: int = 0, strategies: "StrategyLookup | None" = None,
) -> dict[str, Any]:
    """A whole configuration (trial params, fixed ones left out): ``chosen`` values where given and the
    space takes them, learning rates on ``rung`` of their ladder, the centre elsewhere."""
    chosen = chosen or {}

    def pick(name: str, spec: "ParamSpec", values: dict[str, Any]) -> Any:
        if name in chosen and spec.type != "fixed":
            return chosen[name]
        if is_learning_rate(name) and spec.type != "fixed":
            steps = ladder(spec)
            return steps[rung] if rung < len(steps) else steps[0]
        return centre_value(name, spec, documented_defaults(strategies, values.get("mapping", "direct")))

    return space.searched(space.walk(pick))


def ladder_length(space: "SearchSpace") -> int:
    """How many distinct learning-rate rungs the space has (1 when it searches no learning rate)."""
    lengths = [len(ladder(spec)) for name, spec in space.parameters.items() if is_learning_rate(name) and spec.type != "fixed"]
    return max(lengths, default=1)
